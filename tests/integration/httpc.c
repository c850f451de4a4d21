#include "httpc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int dial(int port, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (src) {
        struct sockaddr_in s = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &s.sin_addr);
        if (bind(fd, (struct sockaddr *)&s, sizeof s)) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void header(const char *head, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    out[0] = 0;
    for (const char *p = strstr(head, "\r\n"); p && p[2] != '\r'; p = strstr(p + 2, "\r\n")) {
        if (!strncasecmp(p + 2, name, n) && p[2 + n] == ':') {
            const char *v = p + 3 + n, *e = strstr(v, "\r\n");
            while (*v == ' ')
                v++;
            size_t l = e ? (size_t)(e - v) : strlen(v);
            if (l >= cap) l = cap - 1;
            memcpy(out, v, l);
            out[l] = 0;
            return;
        }
    }
}

static struct hres exchange(int fd, const char *req, size_t reqlen)
{
    struct hres r = {.status = -1};
    /* A server may answer (413, 411) and close before the whole request
     * is sent: stop writing and read what it said. */
    for (size_t off = 0; off < reqlen;) {
        ssize_t w = send(fd, req + off, reqlen - off, MSG_NOSIGNAL);
        if (w <= 0) break;
        off += (size_t)w;
    }
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (len + 4096 > cap) buf = realloc(buf, cap *= 2);
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n <= 0) break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = 0;
    char *end = strstr(buf, "\r\n\r\n");
    if (!end || sscanf(buf, "HTTP/1.%*d %d", &r.status) != 1) {
        r.status = -1;
        free(buf);
        return r;
    }
    *end = 0;
    r.head = strdup(buf);
    header(buf, "retry-after", r.retry_after, sizeof r.retry_after);
    header(buf, "allow", r.allow, sizeof r.allow);
    header(buf, "content-type", r.ctype, sizeof r.ctype);
    char cl[24];
    header(buf, "content-length", cl, sizeof cl);
    char *body = end + 4;
    r.len = len - (size_t)(body - buf);
    if (cl[0] && (size_t)atol(cl) < r.len) r.len = (size_t)atol(cl);
    char te[32];
    header(buf, "transfer-encoding", te, sizeof te);
    if (!strcmp(te, "chunked")) {
        /* Dechunked in place; a body without its last chunk is a failed
         * transfer (status -2), never a short success. */
        size_t in = 0, out = 0;
        bool whole = false;
        while (in < r.len) {
            char *eol = strstr(body + in, "\r\n");
            if (!eol) break;
            size_t n = strtoul(body + in, NULL, 16);
            in = (size_t)(eol - body) + 2;
            if (n == 0) {
                whole = true;
                break;
            }
            if (in + n + 2 > r.len) break;
            memmove(body + out, body + in, n);
            out += n;
            in += n + 2;
        }
        r.len = out;
        if (!whole) r.status = -2;
    }
    r.body = malloc(r.len + 1);
    memcpy(r.body, body, r.len);
    r.body[r.len] = 0;
    free(buf);
    r.json = cJSON_Parse(r.body);
    return r;
}

struct hres http_req(int port, const char *src, const char *method, const char *path,
                     const char *token, const char *body)
{
    struct hres fail = {.status = -1};
    int fd = dial(port, src);
    if (fd < 0) return fail;
    size_t blen = body ? strlen(body) : 0;
    size_t cap = 1024 + blen + strlen(path);
    char *req = malloc(cap);
    int n = snprintf(req, cap,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                     "User-Agent: parley-itest/1.0\r\n%s%s%s",
                     method, path, token ? "Authorization: Bearer " : "", token ? token : "",
                     token ? "\r\n" : "");
    if (body)
        n += snprintf(req + n, cap - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", blen);
    else
        n += snprintf(req + n, cap - (size_t)n, "\r\n");
    if (body) memcpy(req + n, body, blen);
    struct hres r = exchange(fd, req, (size_t)n + blen);
    free(req);
    return r;
}

struct hres http_reqf(int port, const char *src, const char *method, const char *token,
                      const char *body, const char *pathfmt, ...)
{
    char path[512];
    va_list ap;
    va_start(ap, pathfmt);
    vsnprintf(path, sizeof path, pathfmt, ap);
    va_end(ap);
    return http_req(port, src, method, path, token, body);
}

struct hres http_raw(int port, const char *raw, size_t len)
{
    struct hres fail = {.status = -1};
    int fd = dial(port, NULL);
    if (fd < 0) return fail;
    return exchange(fd, raw, len);
}

void hres_free(struct hres *r)
{
    cJSON_Delete(r->json);
    free(r->body);
    free(r->head);
    r->json = NULL;
    r->body = NULL;
    r->head = NULL;
}

int hres_header(const struct hres *r, const char *name, char *out, size_t cap)
{
    out[0] = 0;
    if (!r->head) return 0;
    header(r->head, name, out, cap);
    int n = 0;
    size_t len = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n"))
        if (!strncasecmp(p + 2, name, len) && p[2 + len] == ':') n++;
    return n;
}

const char *hres_str(const struct hres *r, const char *k)
{
    const cJSON *o = r->json;
    if (!strncmp(k, "error.", 6)) {
        o = cJSON_GetObjectItemCaseSensitive(o, "error");
        k += 6;
    }
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}
