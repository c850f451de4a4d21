/* Integration: the web client served as static files (server/web.c) by a
 * gateway of this test's own, started on a web root the test writes under
 * the state directory: content types, the page's Content-Security-Policy,
 * ETag and Last-Modified with 304, gzip, HEAD, client-side routes, paths
 * that try to leave the root or reach hidden files, the API's JSON 404s,
 * files changed on disk (served from the next start) and the memory cap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "httpc.h"
#include "itest.h"

/* A marker only the file outside the root holds. */
#define SECRET "outside-the-root-7f3a9c"

static char root[600];
static int port;
static pid_t gw;

static char big_txt[300000]; /* a compressible file of several write pieces */
static unsigned char logo[3000];
static const char index_html[] = "<!doctype html><meta charset=utf-8><title>Parley test</title>"
                                 "<link rel=stylesheet href=/app/style.css>"
                                 "<script type=module src=/app/main.js></script>\n";
static const char style_v1[] = "body { color: #222; }\n";
static const char style_v2[] = "body { color: #c00; }\n";
static const char docs_html[] = "<!doctype html><title>docs</title>\n";

static void put(const char *rel, const void *data, size_t len)
{
    char p[800], dir[900];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    snprintf(dir, sizeof dir, "mkdir -p \"$(dirname '%s')\"", p);
    char out[256];
    assert_int_equal(it_run(out, sizeof out, "%s", dir), 0);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void put_str(const char *rel, const char *s)
{
    put(rel, s, strlen(s));
}

static void start_gateway(void)
{
    gw = it_own_gateway("gw-web", &port, "--web-root", root, NULL);
}

static int setup(void **state)
{
    (void)state;
    it_load_env();
    char out[256];
    snprintf(root, sizeof root, "%s/webroot", IT.state);
    it_run(out, sizeof out, "rm -rf '%s' '%s/outside.txt'", root, IT.state);
    for (size_t i = 0; i < sizeof big_txt; i++)
        big_txt[i] = "parley static files, "[i % 21];
    srand(42);
    for (size_t i = 0; i < sizeof logo; i++)
        logo[i] = (unsigned char)rand();
    put_str("index.html", index_html);
    char js[40000];
    for (size_t i = 0; i < sizeof js; i++)
        js[i] = "export const x = 1;\n"[i % 20];
    put("app/main.js", js, sizeof js);
    put_str("app/style.css", style_v1);
    put_str("app/data.json", "{\"ok\":true}");
    put_str("app/mod.mjs", "export default 1;\n");
    put("logo.png", logo, sizeof logo);
    put("big.txt", big_txt, sizeof big_txt);
    put_str("blob.xyz", "what is this");
    put_str("docs/index.html", docs_html);
    /* Never public: dotfiles, test folders, packages, and a file outside
     * the root reached through a link. */
    put_str(".env", SECRET);
    put_str(".git/config", SECRET);
    put_str("sdk/test/spec.js", SECRET);
    put_str("node_modules/x/index.js", SECRET);
    char p[800];
    snprintf(p, sizeof p, "%s/outside.txt", IT.state);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(SECRET, f);
    fclose(f);
    it_run(out, sizeof out, "ln -s ../outside.txt '%s/link.txt'", root);
    start_gateway();
    return 0;
}

static int teardown(void **state)
{
    if (gw > 0) it_stop(gw);
    return it_kill_spawned(state);
}

/* A request with extra header lines (each ending in \r\n). */
static struct hres req(const char *method, const char *path, const char *headers)
{
    char raw[4096];
    int n = snprintf(raw, sizeof raw,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n%sConnection: close\r\n\r\n", method,
                     path, port, headers ? headers : "");
    return http_raw(port, raw, (size_t)n);
}

static void hdr(const struct hres *r, const char *name, char *out, size_t cap)
{
    hres_header(r, name, out, cap);
}

static void test_types_and_bodies(void **state)
{
    (void)state;
    static const struct {
        const char *path, *type;
    } t[] = {
        {"/index.html", "text/html; charset=utf-8"},
        {"/app/main.js", "text/javascript; charset=utf-8"},
        {"/app/mod.mjs", "text/javascript; charset=utf-8"},
        {"/app/style.css", "text/css; charset=utf-8"},
        {"/app/data.json", "application/json"},
        {"/logo.png", "image/png"},
        {"/big.txt", "text/plain; charset=utf-8"},
        {"/blob.xyz", "application/octet-stream"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        struct hres r = req("GET", t[i].path, NULL);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.ctype, t[i].type);
        char v[128];
        /* lws's X-Content-Type-Options is on every answer, once. */
        assert_int_equal(hres_header(&r, "x-content-type-options", v, sizeof v), 1);
        assert_string_equal(v, "nosniff");
        hdr(&r, "content-encoding", v, sizeof v);
        assert_string_equal(v, ""); /* not asked for */
        hres_free(&r);
    }
    struct hres r = req("GET", "/logo.png", NULL);
    assert_int_equal(r.len, sizeof logo);
    assert_memory_equal(r.body, logo, sizeof logo);
    hres_free(&r);
    r = req("GET", "/big.txt", NULL);
    assert_int_equal(r.len, sizeof big_txt);
    assert_memory_equal(r.body, big_txt, sizeof big_txt);
    hres_free(&r);
    /* "/" is index.html, which every deploy must reach at once. */
    r = req("GET", "/", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, index_html);
    char v[64];
    hdr(&r, "cache-control", v, sizeof v);
    assert_string_equal(v, "no-cache");
    hres_free(&r);
}

static void test_csp(void **state)
{
    (void)state;
    char want[600], v[600];
    snprintf(want, sizeof want,
             "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
             "font-src 'self'; connect-src 'self' ws://127.0.0.1:%d; base-uri 'none'; "
             "frame-ancestors 'none'; form-action 'self'",
             port);
    struct hres r = req("GET", "/", NULL);
    assert_int_equal(hres_header(&r, "content-security-policy", v, sizeof v), 1);
    assert_string_equal(v, want);
    hres_free(&r);
    /* A Host that is not a host[:port] is not echoed into the policy. */
    const char *bad[] = {"Host: evil.example; script-src *\r\n", "Host: a b\r\n",
                         "Host: x.example:99999\r\n", "Host: [::1\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char raw[512];
        int n = snprintf(raw, sizeof raw, "GET / HTTP/1.1\r\n%sConnection: close\r\n\r\n", bad[i]);
        r = http_raw(port, raw, (size_t)n);
        assert_int_equal(r.status, 200);
        assert_int_equal(hres_header(&r, "content-security-policy", v, sizeof v), 1);
        assert_non_null(strstr(v, "connect-src 'self'; base-uri"));
        assert_null(strstr(v, "evil"));
        hres_free(&r);
    }
    /* An IPv6 literal with a port is a host. */
    char raw[512];
    int n = snprintf(raw, sizeof raw,
                     "GET / HTTP/1.1\r\nHost: [::1]:8080\r\nConnection: close\r\n\r\n");
    r = http_raw(port, raw, (size_t)n);
    hdr(&r, "content-security-policy", v, sizeof v);
    assert_non_null(strstr(v, "connect-src 'self' ws://[::1]:8080;"));
    hres_free(&r);
    /* The API's answers allow nothing to load, and say so once. */
    r = req("GET", "/healthz", NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(hres_header(&r, "content-security-policy", v, sizeof v), 1);
    assert_string_equal(v, "default-src 'none'; frame-ancestors 'none'");
    hres_free(&r);
}

static void test_etag(void **state)
{
    (void)state;
    struct hres r = req("GET", "/app/style.css", NULL);
    char etag[80], h[256], v[80];
    hdr(&r, "etag", etag, sizeof etag);
    assert_int_equal(strlen(etag), 34); /* a strong tag: quoted, no W/ */
    assert_int_equal(etag[0], '"');
    hres_free(&r);
    /* The same tag from the other gateway's view of the same bytes: it is
     * the content's, so a second start gives it too (test_changed_on_disk). */
    const char *match[] = {"%s", "W/%s", "\"nope\", %s", "*"};
    for (size_t i = 0; i < sizeof match / sizeof match[0]; i++) {
        char val[160];
        snprintf(val, sizeof val, match[i], etag);
        snprintf(h, sizeof h, "If-None-Match: %s\r\n", val);
        r = req("GET", "/app/style.css", h);
        assert_int_equal(r.status, 304);
        assert_int_equal(r.len, 0);
        hdr(&r, "etag", v, sizeof v);
        assert_string_equal(v, etag);
        hres_free(&r);
    }
    r = req("GET", "/app/style.css", "If-None-Match: \"0123456789abcdef0123456789abcdef\"\r\n");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, style_v1);
    hres_free(&r);
    /* Another file's tag does not match. */
    r = req("GET", "/index.html", NULL);
    char other[80];
    hdr(&r, "etag", other, sizeof other);
    assert_string_not_equal(other, etag);
    hres_free(&r);
}

static void test_last_modified(void **state)
{
    (void)state;
    struct hres r = req("GET", "/app/data.json", NULL);
    char lm[64], h[256];
    hdr(&r, "last-modified", lm, sizeof lm);
    hres_free(&r);
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    assert_non_null(strptime(lm, "%a, %d %b %Y %H:%M:%S GMT", &tm));
    /* The file's own mtime. */
    char p[800];
    struct stat st;
    snprintf(p, sizeof p, "%s/app/data.json", root);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal((long)timegm(&tm), (long)st.st_mtime);
    snprintf(h, sizeof h, "If-Modified-Since: %s\r\n", lm);
    r = req("GET", "/app/data.json", h);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.len, 0);
    hres_free(&r);
    /* A day earlier: modified since. */
    time_t earlier = st.st_mtime - 86400;
    char date[64];
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime(&earlier));
    snprintf(h, sizeof h, "If-Modified-Since: %s\r\n", date);
    r = req("GET", "/app/data.json", h);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"ok\":true}");
    hres_free(&r);
    /* Not a date: ignored. */
    r = req("GET", "/app/data.json", "If-Modified-Since: yesterday\r\n");
    assert_int_equal(r.status, 200);
    hres_free(&r);
    /* If-None-Match decides when both are sent. */
    snprintf(h, sizeof h, "If-Modified-Since: %s\r\nIf-None-Match: \"other\"\r\n", lm);
    r = req("GET", "/app/data.json", h);
    assert_int_equal(r.status, 200);
    hres_free(&r);
}

static size_t gunzip(const char *in, size_t len, char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)len;
    z.next_out = (unsigned char *)out;
    z.avail_out = (uInt)cap;
    assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = z.total_out;
    inflateEnd(&z);
    return n;
}

static void test_gzip(void **state)
{
    (void)state;
    static char out[sizeof big_txt + 16];
    char v[128], plain_etag[80], gz_etag[80];
    struct hres r = req("GET", "/big.txt", NULL);
    hdr(&r, "vary", v, sizeof v);
    assert_string_equal(v, "Accept-Encoding");
    hdr(&r, "etag", plain_etag, sizeof plain_etag);
    hres_free(&r);
    const char *yes[] = {"gzip", "deflate, gzip;q=0.5, br", "*", "GZIP"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        char h[128];
        snprintf(h, sizeof h, "Accept-Encoding: %s\r\n", yes[i]);
        r = req("GET", "/big.txt", h);
        assert_int_equal(r.status, 200);
        hdr(&r, "content-encoding", v, sizeof v);
        assert_string_equal(v, "gzip");
        assert_true(r.len < sizeof big_txt / 10);
        hdr(&r, "content-length", v, sizeof v);
        assert_int_equal(atol(v), (long)r.len);
        assert_int_equal(gunzip(r.body, r.len, out, sizeof out), sizeof big_txt);
        assert_memory_equal(out, big_txt, sizeof big_txt);
        /* Another representation, another strong tag. */
        hdr(&r, "etag", gz_etag, sizeof gz_etag);
        assert_string_not_equal(gz_etag, plain_etag);
        hres_free(&r);
    }
    const char *no[] = {"gzip;q=0", "br", "*, gzip;q=0", "identity"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        char h[128];
        snprintf(h, sizeof h, "Accept-Encoding: %s\r\n", no[i]);
        r = req("GET", "/big.txt", h);
        hdr(&r, "content-encoding", v, sizeof v);
        assert_string_equal(v, "");
        assert_int_equal(r.len, sizeof big_txt);
        hres_free(&r);
    }
    /* The gzip copy's tag revalidates too. */
    char h[256];
    snprintf(h, sizeof h, "Accept-Encoding: gzip\r\nIf-None-Match: %s\r\n", gz_etag);
    r = req("GET", "/big.txt", h);
    assert_int_equal(r.status, 304);
    hres_free(&r);
    /* PNG is not compressed (nor varied) whatever the client accepts. */
    r = req("GET", "/logo.png", "Accept-Encoding: gzip\r\n");
    hdr(&r, "content-encoding", v, sizeof v);
    assert_string_equal(v, "");
    assert_int_equal(hres_header(&r, "vary", v, sizeof v), 0);
    assert_memory_equal(r.body, logo, sizeof logo);
    hres_free(&r);
}

static void test_head(void **state)
{
    (void)state;
    struct hres g = req("GET", "/app/main.js", NULL);
    struct hres h = req("HEAD", "/app/main.js", NULL);
    assert_int_equal(h.status, 200);
    assert_int_equal(h.len, 0);
    char a[128], b[128];
    hdr(&h, "content-length", a, sizeof a);
    assert_int_equal(atol(a), 40000);
    assert_int_equal(g.len, 40000);
    const char *same[] = {"content-type", "etag", "last-modified", "cache-control",
                          "content-security-policy"};
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        hdr(&g, same[i], a, sizeof a);
        hdr(&h, same[i], b, sizeof b);
        assert_string_equal(a, b);
    }
    hres_free(&g);
    hres_free(&h);
    /* HEAD with gzip: the compressed length, no body. */
    h = req("HEAD", "/big.txt", "Accept-Encoding: gzip\r\n");
    hdr(&h, "content-encoding", a, sizeof a);
    assert_string_equal(a, "gzip");
    hdr(&h, "content-length", a, sizeof a);
    assert_true(atol(a) > 0 && atol(a) < (long)sizeof big_txt / 10);
    assert_int_equal(h.len, 0);
    hres_free(&h);
    h = req("HEAD", "/missing.js", NULL);
    assert_int_equal(h.status, 404);
    assert_int_equal(h.len, 0);
    hres_free(&h);
}

static void test_routes(void **state)
{
    (void)state;
    /* Client-side routes (no dot in the last segment) are the app's page. */
    const char *app[] = {"/rooms/123", "/console", "/w/abc/room/def/", "/apix"};
    for (size_t i = 0; i < sizeof app / sizeof app[0]; i++) {
        struct hres r = req("GET", app[i], NULL);
        assert_int_equal(r.status, 200);
        assert_string_equal(r.ctype, "text/html; charset=utf-8");
        assert_string_equal(r.body, index_html);
        hres_free(&r);
    }
    /* A directory with its own index: "/docs" moves to "/docs/" (so its
     * relative links resolve), which serves it. */
    struct hres r = req("GET", "/docs", NULL);
    char v[128];
    assert_int_equal(r.status, 308);
    hdr(&r, "location", v, sizeof v);
    assert_string_equal(v, "/docs/");
    hres_free(&r);
    r = req("GET", "/docs/", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, docs_html);
    hres_free(&r);
    /* A missing file is a JSON 404, not the page. */
    r = req("GET", "/app/missing.js", NULL);
    assert_int_equal(r.status, 404);
    assert_string_equal(r.ctype, "application/json");
    assert_string_equal(hres_str(&r, "error.code"), "not_found");
    assert_string_equal(hres_str(&r, "error.message"), "no such file");
    hres_free(&r);
    /* The API keeps its own answers: unknown API paths are JSON 404s (GET
     * and HEAD too), other methods on page paths are the router's. */
    const char *api[] = {"/api", "/api/", "/api/v1/nope", "/api/v1/workspaces/x/y/z"};
    for (size_t i = 0; i < sizeof api / sizeof api[0]; i++) {
        r = req("GET", api[i], NULL);
        assert_int_equal(r.status, 404);
        assert_string_equal(r.ctype, "application/json");
        assert_string_equal(hres_str(&r, "error.code"), "not_found");
        assert_string_equal(hres_str(&r, "error.message"), "no such route");
        hres_free(&r);
    }
    r = http_req(port, NULL, "POST", "/index.html", NULL, "{}");
    assert_int_equal(r.status, 404);
    assert_string_equal(hres_str(&r, "error.message"), "no such route");
    hres_free(&r);
    r = req("GET", "/readyz", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.ctype, "application/json");
    hres_free(&r);
    /* /metrics stays the API's (401 without its token), not the page. */
    r = req("GET", "/metrics", NULL);
    assert_int_equal(r.status, 401);
    hres_free(&r);
}

static void test_traversal(void **state)
{
    (void)state;
    /* Every one names a file (a dot in its last segment), so none may fall
     * back to the page: each is a 404, and none shows the secret. */
    const char *paths[] = {
        "/../outside.txt",
        "/app/../../outside.txt",
        "/%2e%2e/outside.txt",
        "/%2E%2E/%2e%2e/outside.txt",
        "/app/%2e%2e/%2e%2e/outside.txt",
        "/%2e%2e%2foutside.txt",
        "/..%2f..%2foutside.txt",
        "/%252e%252e/outside.txt",
        "//outside.txt",
        "/app//..//..//outside.txt",
        "/app\\..\\..\\outside.txt",
        "/..\\outside.txt",
        "/%5c..%5coutside.txt",
        "/.env",
        "/%2eenv",
        "/.git/config",
        "/app/../.git/config",
        "/link.txt",
        "/sdk/test/spec.js",
        "/node_modules/x/index.js",
        "/./.env",
        "/index.html/../../outside.txt",
    };
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        struct hres r = req("GET", paths[i], NULL);
        if (r.status != 404) fprintf(stderr, "path %s: status %d\n", paths[i], r.status);
        assert_int_equal(r.status, 404);
        assert_null(strstr(r.body ? r.body : "", SECRET));
        hres_free(&r);
    }
    /* An encoded NUL: lws 4.1 drops the connection while parsing, before
     * the request reaches the gateway (-1: no answer); never a file. */
    const char *nul[] = {"/app/main.js%00.txt", "/%00/../outside.txt", "/outside.txt%00"};
    for (size_t i = 0; i < sizeof nul / sizeof nul[0]; i++) {
        struct hres r = req("GET", nul[i], NULL);
        if (r.status != 404 && r.status != -1)
            fprintf(stderr, "path %s: status %d\n", nul[i], r.status);
        assert_true(r.status == 404 || r.status == -1);
        assert_null(strstr(r.body ? r.body : "", SECRET));
        hres_free(&r);
    }
    /* Without a dot the page answers, never the file. */
    const char *noext[] = {"/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"};
    for (size_t i = 0; i < sizeof noext / sizeof noext[0]; i++) {
        struct hres r = req("GET", noext[i], NULL);
        assert_true(r.status == 404 || (r.status == 200 && !strcmp(r.body, index_html)));
        assert_null(strstr(r.body ? r.body : "", "root:"));
        hres_free(&r);
    }
}

static void test_changed_on_disk(void **state)
{
    (void)state;
    struct hres r = req("GET", "/app/style.css", NULL);
    char etag1[80], etag2[80];
    hdr(&r, "etag", etag1, sizeof etag1);
    hres_free(&r);
    put_str("app/style.css", style_v2);
    put_str("app/new.js", "export const late = 1;\n");
    /* Loaded at start: the running gateway keeps what it read. */
    r = req("GET", "/app/style.css", NULL);
    assert_string_equal(r.body, style_v1);
    hdr(&r, "etag", etag2, sizeof etag2);
    assert_string_equal(etag2, etag1);
    hres_free(&r);
    r = req("GET", "/app/new.js", NULL);
    assert_int_equal(r.status, 404);
    hres_free(&r);
    /* A restart serves the new bytes under a new tag; the old tag no
     * longer matches. */
    assert_int_equal(it_stop(gw), 0);
    start_gateway();
    char h[128];
    snprintf(h, sizeof h, "If-None-Match: %s\r\n", etag1);
    r = req("GET", "/app/style.css", h);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, style_v2);
    hdr(&r, "etag", etag2, sizeof etag2);
    assert_string_not_equal(etag2, etag1);
    hres_free(&r);
    r = req("GET", "/app/new.js", NULL);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    /* Unchanged files keep their tag across starts (it is the content's). */
    put_str("app/style.css", style_v1);
}

/* Waits up to 20 s for pid to exit; its exit status, or -1. */
static int wait_exit(pid_t pid)
{
    for (int i = 0; i < 400; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

static void test_refuses_to_start(void **state)
{
    (void)state;
    char log[700], ports[16], redis[64], out[4096];
    snprintf(ports, sizeof ports, "%d", it_free_port());
    snprintf(redis, sizeof redis, "127.0.0.1:%d", IT.redis_port);
    snprintf(log, sizeof log, "%s/gw-web-limit.log", IT.state);
    /* big.txt alone is over 64 KiB. */
    const char *over[] = {"serve", "--port",          ports,   "--pg",
                          IT.pg,   "--redis",         redis,   "--web-root",
                          root,    "--web-max-bytes", "65536", NULL};
    assert_int_equal(wait_exit(it_spawn(log, over)), 1);
    assert_int_equal(it_run(out, sizeof out, "cat '%s'", log), 0);
    assert_non_null(strstr(out, "web root is over its memory limit"));
    /* A root named explicitly must exist. */
    snprintf(log, sizeof log, "%s/gw-web-missing.log", IT.state);
    const char *missing[] = {"serve", "--port",     ports,
                             "--pg",  IT.pg,        "--redis",
                             redis,   "--web-root", "/nonexistent/parley-web",
                             NULL};
    assert_int_equal(wait_exit(it_spawn(log, missing)), 1);
    assert_int_equal(it_run(out, sizeof out, "cat '%s'", log), 0);
    assert_non_null(strstr(out, "cannot open the web root"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types_and_bodies),
        cmocka_unit_test(test_csp),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_last_modified),
        cmocka_unit_test(test_gzip),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_traversal),
        cmocka_unit_test(test_changed_on_disk),
        cmocka_unit_test(test_refuses_to_start),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
