#include "web.h"

#include "app.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "mem.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <zlib.h>

#define WEB_MAX_FILES 10000 /* files in the table at most */
#define WEB_MAX_DEPTH 16    /* directory nesting walked at most */
#define WEB_URL_MAX 256     /* a URL path must fit struct http_req's path */

struct wfile {
    char *path;             /* URL path ("/app/main.js") */
    const char *type;       /* Content-Type */
    unsigned char *body;    /* the file's bytes */
    size_t len;             /* their number */
    unsigned char *gz;      /* gzip copy, or NULL (not compressible, or not smaller) */
    size_t gz_len;          /* its size */
    time_t mtime;           /* modification time at load (seconds) */
    char etag[40];          /* strong ETag of body: "<32 hex>" */
    char etag_gz[44];       /* of gz: "<32 hex>-gz" */
    char last_modified[32]; /* mtime as an IMF-fixdate */
};

struct web {
    struct wfile *files; /* sorted by path */
    size_t n;            /* files loaded */
    size_t cap;          /* slots allocated */
    size_t bytes;        /* bytes held (bodies and gzip copies) */
    size_t max;          /* their cap (--web-max-bytes) */
    char root[PATH_MAX]; /* the root, resolved (symbolic links must stay under it) */
};

/* ---- types --------------------------------------------------------------- */

struct wtype {
    const char *ext;   /* file name extension, lower case */
    const char *type;  /* Content-Type */
    bool compressible; /* worth a gzip copy */
};

static const struct wtype types[] = {
    {"html", "text/html; charset=utf-8", true},
    {"htm", "text/html; charset=utf-8", true},
    {"js", "text/javascript; charset=utf-8", true},
    {"mjs", "text/javascript; charset=utf-8", true},
    {"css", "text/css; charset=utf-8", true},
    {"json", "application/json", true},
    {"map", "application/json", true},
    {"webmanifest", "application/manifest+json", true},
    {"svg", "image/svg+xml", true},
    {"txt", "text/plain; charset=utf-8", true},
    {"png", "image/png", false},
    {"ico", "image/vnd.microsoft.icon", true},
    {"woff2", "font/woff2", false},
};
/* Every response also carries lws's X-Content-Type-Options: nosniff
 * (ws.c), so a browser never guesses a type for these. */
static const struct wtype unknown = {"", "application/octet-stream", false};

static const struct wtype *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot) return &unknown;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (!strcasecmp(dot + 1, types[i].ext)) return &types[i];
    return &unknown;
}

/* ---- loading ------------------------------------------------------------- */

static void file_free(struct wfile *f)
{
    mem_free(f->path);
    mem_free(f->body);
    mem_free(f->gz);
}

static void web_destroy(struct web *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n; i++)
        file_free(&w->files[i]);
    mem_free(w->files);
    mem_free(w);
}

/* A gzip copy of f's body when it saves at least 10%; 0, or -1 without memory. */
static int compress_file(struct wfile *f)
{
    if (f->len < 256) return 0; /* headers cost more than they would save */
    z_stream z;
    memset(&z, 0, sizeof z);
    /* windowBits 15 + 16: a gzip wrapper; zlib writes mtime 0 in it, so the
     * copy is the same on every gateway and every start. */
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) return -1;
    uLong bound = deflateBound(&z, (uLong)f->len);
    unsigned char *out = mem_alloc(bound);
    if (!out) {
        deflateEnd(&z);
        return -1;
    }
    z.next_in = f->body;
    z.avail_in = (uInt)f->len;
    z.next_out = out;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    size_t n = z.total_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END || n > f->len - f->len / 10) {
        mem_free(out);
        return 0;
    }
    unsigned char *fit = mem_realloc(out, n);
    f->gz = fit ? fit : out;
    f->gz_len = n;
    return 0;
}

static int read_all(const char *path, unsigned char *buf, size_t len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    size_t got = len ? fread(buf, 1, len, fp) : 0;
    /* One byte more than stat said means it grew meanwhile: refuse it
     * rather than serve half a file. */
    int more = fgetc(fp) != EOF;
    fclose(fp);
    return got == len && !more ? 0 : -1;
}

/* Adds the regular file fs (st) as URL path url. 0, or -1 logged. */
static int add_file(struct web *w, const char *fs, const char *url, const struct stat *st)
{
    if (w->n >= WEB_MAX_FILES) {
        log_error("web root has too many files", "root=%s max=%d", w->root, WEB_MAX_FILES);
        return -1;
    }
    if ((size_t)st->st_size > w->max || w->bytes + (size_t)st->st_size > w->max) {
        log_error("web root is over its memory limit: raise --web-max-bytes or remove files",
                  "root=%s max_bytes=%zu at=%s", w->root, w->max, url);
        return -1;
    }
    if (w->n == w->cap) {
        size_t ncap = w->cap ? w->cap * 2 : 64;
        struct wfile *nf = mem_realloc(w->files, ncap * sizeof *nf);
        if (!nf) return -1;
        w->files = nf;
        w->cap = ncap;
    }
    struct wfile *f = &w->files[w->n];
    memset(f, 0, sizeof *f);
    const struct wtype *t = type_of(url);
    f->type = t->type;
    f->len = (size_t)st->st_size;
    f->mtime = st->st_mtime;
    f->path = mem_strndup(url, strlen(url));
    f->body = mem_alloc(f->len);
    if (!f->path || !f->body || read_all(fs, f->body, f->len) ||
        (t->compressible && compress_file(f))) {
        log_error("cannot read a web file", "file=%s", fs);
        file_free(f);
        return -1;
    }
    unsigned char h[16];
    char hex[33];
    crypto_generichash(h, sizeof h, f->body, f->len, NULL, 0);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(f->etag, sizeof f->etag, "\"%s\"", hex);
    snprintf(f->etag_gz, sizeof f->etag_gz, "\"%s-gz\"", hex);
    struct tm tm;
    gmtime_r(&f->mtime, &tm);
    strftime(f->last_modified, sizeof f->last_modified, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    w->bytes += f->len + f->gz_len;
    if (w->bytes > w->max) {
        log_error("web root is over its memory limit: raise --web-max-bytes or remove files",
                  "root=%s max_bytes=%zu at=%s", w->root, w->max, url);
        file_free(f);
        return -1;
    }
    w->n++;
    return 0;
}

/* Names that are never public: dotfiles (.git, .env, editors' files),
 * packages and tests; names a URL could not carry cleanly. */
static bool skipped(const char *name, bool dir)
{
    if (name[0] == '.') return true;
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\' || *p == '%') return true;
    return dir && (!strcmp(name, "node_modules") || !strcmp(name, "test") ||
                   !strcmp(name, "tests") || !strcmp(name, "__tests__"));
}

static int walk(struct web *w, const char *dir, const char *url, int depth)
{
    DIR *d = opendir(dir);
    if (!d) {
        log_error("cannot read a web directory", "dir=%s error=\"%s\"", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        char fs[PATH_MAX], u[WEB_URL_MAX + 64];
        struct stat st;
        if (snprintf(fs, sizeof fs, "%s/%s", dir, e->d_name) >= (int)sizeof fs || lstat(fs, &st))
            continue;
        bool dir_like = S_ISDIR(st.st_mode);
        if (S_ISLNK(st.st_mode)) {
            /* Followed only when it stays inside the root. */
            char real[PATH_MAX];
            size_t rl = strlen(w->root);
            if (!realpath(fs, real) || strncmp(real, w->root, rl) || real[rl] != '/' ||
                stat(real, &st)) {
                log_warn("web file skipped: link out of the root", "file=%s", fs);
                continue;
            }
            dir_like = S_ISDIR(st.st_mode);
        }
        if (skipped(e->d_name, dir_like)) continue;
        if (snprintf(u, sizeof u, "%s/%s", url, e->d_name) >= WEB_URL_MAX) {
            log_warn("web file skipped: path too long", "file=%s", fs);
            continue;
        }
        if (dir_like) {
            if (depth >= WEB_MAX_DEPTH)
                log_warn("web directory skipped: nested too deep", "dir=%s", fs);
            else
                rc = walk(w, fs, u, depth + 1);
        } else if (S_ISREG(st.st_mode)) {
            rc = add_file(w, fs, u, &st);
        }
    }
    closedir(d);
    return rc;
}

static int cmp_file(const void *x, const void *y)
{
    return strcmp(((const struct wfile *)x)->path, ((const struct wfile *)y)->path);
}

int web_start(struct app *a)
{
    bool set = a->cfg.web_root[0] != 0;
    const char *root = config_web_root(&a->cfg);
    struct web *w = mem_calloc(1, sizeof *w);
    if (!w) return -1;
    w->max = a->cfg.web_max_bytes;
    a->web = w;
    if (!realpath(root, w->root)) {
        if (!set && errno == ENOENT) {
            /* A build that was not installed: the API still works. */
            log_warn("no web client served: the default web root does not exist", "root=%s", root);
            return 0;
        }
        log_error("cannot open the web root (--web-root)", "root=%s error=\"%s\"", root,
                  strerror(errno));
        return -1;
    }
    if (walk(w, w->root, "", 0)) return -1;
    if (w->n) qsort(w->files, w->n, sizeof *w->files, cmp_file); /* files is NULL when empty */
    log_info("web client loaded", "root=%s files=%zu bytes=%zu", w->root, w->n, w->bytes);
    return 0;
}

void web_free(struct app *a)
{
    web_destroy(a->web);
    a->web = NULL;
}

/* ---- serving ------------------------------------------------------------- */

bool web_owns(const char *path)
{
    if (!strcmp(path, "/healthz") || !strcmp(path, "/readyz") || !strcmp(path, "/metrics"))
        return false;
    return strncmp(path, "/api", 4) || (path[4] && path[4] != '/');
}

static const struct wfile *find(const struct web *w, const char *path)
{
    if (!w || !w->n) return NULL;
    struct wfile key = {.path = (char *)path};
    return bsearch(&key, w->files, w->n, sizeof *w->files, cmp_file);
}

/* A path that could only be an attempt to leave the root or reach a hidden
 * file (lws has already decoded %xx and removed "/./" and "/../"; this does
 * not rely on it). */
static bool unsafe(const char *p)
{
    if (p[0] != '/') return true;
    for (const char *c = p; *c; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '\\' || *c == '%') return true;
        if (c[0] == '/' && (c[1] == '/' || c[1] == '.')) return true;
    }
    return false;
}

/* Host as a browser sends it: a DNS name or IPv4 address, or an IPv6
 * literal in brackets, and an optional port. Anything else is not echoed
 * into the policy. */
static bool valid_host(const char *h)
{
    const char *p = h;
    if (*p == '[') {
        for (p++; *p && *p != ']'; p++)
            if (!strchr("0123456789abcdefABCDEF:.", *p)) return false;
        if (*p != ']' || p == h + 1) return false;
        p++;
    } else {
        for (; *p && *p != ':'; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'))
                return false;
        if (p == h) return false;
    }
    if (!*p) return true;
    if (*p++ != ':') return false;
    long port = 0;
    int digits = 0;
    for (; *p >= '0' && *p <= '9' && digits < 6; p++, digits++)
        port = port * 10 + (*p - '0');
    return !*p && digits && port >= 1 && port <= 65535;
}

/* The page's policy: everything from this origin only, no inline script or
 * style, and connections to this gateway (CSP's 'self' does not cover ws:
 * in every browser, so the WebSocket origin is named from Host). */
static void set_csp(struct http_req *r)
{
    bool ok = valid_host(r->host);
    snprintf(r->csp_buf, sizeof r->csp_buf,
             "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
             "font-src 'self'; connect-src 'self'%s%s%s; base-uri 'none'; "
             "frame-ancestors 'none'; form-action 'self'",
             ok ? " " : "", ok ? (r->app->cfg.tls_cert[0] ? "wss://" : "ws://") : "",
             ok ? r->host : "");
    r->csp = r->csp_buf;
}

/* Accept-Encoding allows gzip (RFC 9110 12.5.3): listed, or covered by
 * "*", with a q-value other than 0. */
static bool accepts_gzip(const char *ae)
{
    int gzip = -1, star = -1; /* -1 not named, 0 refused, 1 accepted */
    const char *p = ae;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p) break;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t tl = (size_t)(p - tok);
        int acc = 1;
        while (*p && *p != ',') {
            /* parameters: only q matters */
            while (*p == ' ' || *p == '\t' || *p == ';')
                p++;
            if ((*p == 'q' || *p == 'Q') && p[1] == '=') {
                p += 2;
                double q = strtod(p, NULL);
                acc = q > 0;
            }
            while (*p && *p != ',' && *p != ';')
                p++;
        }
        if ((tl == 4 && !strncasecmp(tok, "gzip", 4)) ||
            (tl == 6 && !strncasecmp(tok, "x-gzip", 6)))
            gzip = acc;
        else if (tl == 1 && *tok == '*')
            star = acc;
    }
    return gzip == 1 || (gzip == -1 && star == 1);
}

/* If-None-Match names this file's content (either encoding: both mean the
 * client holds the current bytes), or is "*". Weak comparison, as RFC
 * 9110 13.1.2 asks for this header. */
static bool etag_matches(const char *inm, const struct wfile *f)
{
    const char *p = inm;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (!*p) break;
        if (*p == '*') return true;
        if (!strncmp(p, "W/", 2)) p += 2;
        if (*p != '"') return false;
        const char *e = strchr(p + 1, '"');
        if (!e) return false;
        size_t n = (size_t)(e - p) + 1;
        if ((n == strlen(f->etag) && !memcmp(p, f->etag, n)) ||
            (f->gz && n == strlen(f->etag_gz) && !memcmp(p, f->etag_gz, n)))
            return true;
        p = e + 1;
    }
    return false;
}

/* If-Modified-Since at or after the file's time (only without If-None-Match). */
static bool not_modified_since(const char *ims, const struct wfile *f)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(ims, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end) return false; /* not an IMF-fixdate: ignored (RFC 9110 13.1.3) */
    return f->mtime <= timegm(&tm);
}

static void serve_file(struct http_req *r, const struct wfile *f)
{
    bool gz = f->gz && accepts_gzip(r->accept_encoding);
    set_csp(r);
    /* No build step means no content hashes in file names: every file is
     * revalidated (a 304 costs one small round trip) so a new deploy is
     * seen at once. */
    r->cache = "no-cache";
    r->type = f->type;
    http_add_header(r, "etag:", gz ? f->etag_gz : f->etag);
    http_add_header(r, "last-modified:", f->last_modified);
    if (f->gz) http_add_header(r, "vary:", "Accept-Encoding");
    if (gz) http_add_header(r, "content-encoding:", "gzip");
    bool fresh = r->if_none_match[0]       ? etag_matches(r->if_none_match, f)
                 : r->if_modified_since[0] ? not_modified_since(r->if_modified_since, f)
                                           : false;
    if (fresh) {
        http_respond_ref(r, 304, NULL, 0);
        return;
    }
    if (gz)
        http_respond_ref(r, 200, (const char *)f->gz, f->gz_len);
    else
        http_respond_ref(r, 200, (const char *)f->body, f->len);
}

void web_serve(struct http_req *r)
{
    const struct web *w = r->app->web;
    const char *path = r->path;
    char alt[WEB_URL_MAX + 16];
    if (unsafe(path)) {
        http_error(r, 404, "not_found", "no such file", NULL);
        return;
    }
    size_t n = strlen(path);
    const struct wfile *f = NULL;
    if (path[n - 1] == '/') {
        snprintf(alt, sizeof alt, "%sindex.html", path);
        f = find(w, alt);
    } else {
        f = find(w, path);
    }
    const char *last = strrchr(path, '/') + 1;
    if (!f && path[n - 1] != '/' && !strchr(last, '.')) {
        /* "/dir" with an index: its relative links need "/dir/". */
        snprintf(alt, sizeof alt, "%s/index.html", path);
        if (find(w, alt) && n + 2 <= sizeof r->scratch) {
            memcpy(r->scratch, path, n); /* path holds no NUL before n (http.c) */
            r->scratch[n] = '/';
            r->scratch[n + 1] = 0;
            http_add_header(r, "location:", r->scratch);
            r->type = "text/plain; charset=utf-8";
            http_respond_ref(r, 308, NULL, 0);
            return;
        }
    }
    if (!f && !strchr(last, '.')) f = find(w, "/index.html"); /* a client-side route */
    if (!f) {
        http_error(r, 404, "not_found", "no such file", NULL);
        return;
    }
    serve_file(r, f);
}
