#include "wsc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define QMAX 65536 /* objects queued at most */

struct wsc {
    int fd;             /* socket */
    SSL *ssl;           /* TLS session, or NULL for plain ws */
    unsigned char *buf; /* received, not yet parsed */
    size_t len, cap;
    cJSON **q; /* queued objects (ring) */
    size_t qhead, qlen;
    int close_code;    /* 0: open; >0 close frame code; -1 EOF without close */
    int64_t next_id;   /* command ids */
    unsigned messages; /* WebSocket messages received (an array counts once) */
    char *frag;        /* reassembly of fragmented server messages */
    size_t frag_len;
};

static void parse(struct wsc *c);

unsigned wsc_messages(const struct wsc *c)
{
    return c->messages;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static ssize_t io_write(SSL *ssl, int fd, const void *p, size_t n)
{
    return ssl ? SSL_write(ssl, p, (int)n) : write(fd, p, n);
}

static ssize_t io_read(SSL *ssl, int fd, void *p, size_t n)
{
    return ssl ? SSL_read(ssl, p, (int)n) : read(fd, p, n);
}

static int write_all_ssl(SSL *ssl, int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = io_write(ssl, fd, s, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                struct pollfd pf = {fd, POLLOUT, 0};
                if (poll(&pf, 1, 5000) <= 0) return -1;
                continue;
            }
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

#define write_all(fd, p, n) write_all_ssl(c->ssl, fd, p, n)

static void b64(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = t[(v >> 6) & 63];
        out[o++] = t[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = t[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
}

/* Reads what is available (waiting up to timeout_ms for the first byte).
 * Returns bytes read, 0 on timeout, -1 on EOF/error. */
static int fill(struct wsc *c, int timeout_ms)
{
    struct pollfd pf = {c->fd, POLLIN, 0};
    /* TLS may hold decrypted bytes already read from the socket. */
    int r = c->ssl && SSL_pending(c->ssl) ? 1 : poll(&pf, 1, timeout_ms);
    if (r <= 0) return 0;
    if (c->cap - c->len < 65536) {
        c->cap = c->cap ? c->cap * 2 : 262144;
        c->buf = realloc(c->buf, c->cap);
    }
    ssize_t n = io_read(c->ssl, c->fd, c->buf + c->len, c->cap - c->len);
    if (n <= 0) return -1;
    c->len += (size_t)n;
    return (int)n;
}

struct wsc *wsc_connect(int port, const struct wsc_opts *o, int *http_status)
{
    if (http_status) *http_status = 0;
    /* CLOEXEC: servers the tests restart must not inherit our connections. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (o && o->rcvbuf) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof o->rcvbuf);
    if (o && o->src_ip) {
        struct sockaddr_in src = {.sin_family = AF_INET};
        inet_pton(AF_INET, o->src_ip, &src.sin_addr);
        if (bind(fd, (struct sockaddr *)&src, sizeof src)) {
            close(fd);
            return NULL;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(0x7f000001u);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return NULL;
    }
    unsigned char nonce[16];
    for (int i = 0; i < 16; i++)
        nonce[i] = (unsigned char)rand();
    char key[32], req[1024];
    b64(nonce, 16, key);
    char origin_hdr[300] = "";
    if (o && o->origin) snprintf(origin_hdr, sizeof origin_hdr, "Origin: %s\r\n", o->origin);
    char ua_hdr[300] = "";
    if (o && o->user_agent) snprintf(ua_hdr, sizeof ua_hdr, "User-Agent: %s\r\n", o->user_agent);
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: parley.v1\r\n%s%s\r\n",
                     port, key, origin_hdr, ua_hdr);
    struct wsc *c = calloc(1, sizeof *c);
    c->fd = fd;
    c->q = calloc(QMAX, sizeof *c->q);
    if (o && o->tls) {
        static SSL_CTX *ctx;
        if (!ctx) ctx = SSL_CTX_new(TLS_client_method());
        c->ssl = SSL_new(ctx);
        SSL_set_fd(c->ssl, fd);
        if (SSL_connect(c->ssl) != 1) goto fail;
    }
    if (write_all(fd, req, (size_t)n)) goto fail;
    uint64_t deadline = now_ms() + 5000;
    unsigned char *end = NULL;
    while (!(end = c->len ? memmem(c->buf, c->len, "\r\n\r\n", 4) : NULL)) {
        if (now_ms() > deadline || fill(c, 100) < 0) goto fail;
    }
    int status = 0;
    if (c->len > 12) sscanf((char *)c->buf + 9, "%3d", &status);
    if (http_status) *http_status = status;
    if (status != 101) goto fail;
    /* Sec-WebSocket-Accept = base64(SHA1(key + GUID)). */
    char cat[128], want[64];
    unsigned char sha[20];
    snprintf(cat, sizeof cat, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    SHA1((unsigned char *)cat, strlen(cat), sha);
    b64(sha, 20, want);
    *end = '\0';
    if (!strcasestr((char *)c->buf, want)) goto fail;
    size_t hl = (size_t)(end - c->buf) + 4;
    memmove(c->buf, c->buf + hl, c->len - hl);
    c->len -= hl;
    parse(c); /* the first frames may have come with the response */
    return c;
fail:
    wsc_close(c);
    return NULL;
}

void wsc_close(struct wsc *c)
{
    if (!c) return;
    if (c->ssl) SSL_free(c->ssl);
    close(c->fd);
    while (c->qlen) {
        cJSON_Delete(c->q[c->qhead]);
        c->qhead = (c->qhead + 1) % QMAX;
        c->qlen--;
    }
    free(c->q);
    free(c->buf);
    free(c->frag);
    free(c);
}

int wsc_send_raw(struct wsc *c, int opcode, const void *p, size_t n)
{
    unsigned char h[14];
    size_t hl = 0;
    h[hl++] = (unsigned char)opcode; /* caller includes FIN (0x80) */
    if (n < 126) {
        h[hl++] = 0x80 | (unsigned char)n;
    } else if (n < 65536) {
        h[hl++] = 0x80 | 126;
        h[hl++] = (unsigned char)(n >> 8);
        h[hl++] = (unsigned char)n;
    } else {
        h[hl++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[hl++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(h + hl, mask, 4);
    hl += 4;
    unsigned char *m = malloc(n + hl);
    memcpy(m, h, hl);
    for (size_t i = 0; i < n; i++)
        m[hl + i] = ((const unsigned char *)p)[i] ^ mask[i & 3];
    int rc = write_all(c->fd, m, n + hl);
    free(m);
    return rc;
}

int wsc_send_text(struct wsc *c, const char *p, size_t len)
{
    return wsc_send_raw(c, 0x81, p, len);
}

int wsc_send_fragmented(struct wsc *c, const char *p, size_t len, int pieces)
{
    size_t step = len / (size_t)pieces + 1, off = 0;
    int first = 1;
    while (off < len) {
        size_t n = len - off < step ? len - off : step;
        int fin = off + n == len;
        int op = (first ? 0x1 : 0x0) | (fin ? 0x80 : 0);
        if (wsc_send_raw(c, op, p + off, n)) return -1;
        off += n;
        first = 0;
    }
    return 0;
}

static void enqueue(struct wsc *c, cJSON *o)
{
    if (c->qlen == QMAX) {
        cJSON_Delete(o);
        return;
    }
    c->q[(c->qhead + c->qlen) % QMAX] = o;
    c->qlen++;
}

static void on_message(struct wsc *c, const char *p, size_t n)
{
    c->messages++;
    cJSON *j = cJSON_ParseWithLength(p, n);
    if (!j) return;
    if (cJSON_IsArray(j)) {
        while (cJSON_GetArraySize(j))
            enqueue(c, cJSON_DetachItemFromArray(j, 0));
        cJSON_Delete(j);
    } else {
        enqueue(c, j);
    }
}

/* Parses whole frames from the buffer into the queue. */
static void parse(struct wsc *c)
{
    size_t off = 0;
    while (c->len - off >= 2) {
        unsigned char *h = c->buf + off;
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (c->len - off < 4) break;
            len = (uint64_t)h[2] << 8 | h[3];
            hl = 4;
        } else if (len == 127) {
            if (c->len - off < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = len << 8 | h[2 + i];
            hl = 10;
        }
        if (c->len - off < hl + len) break;
        int op = h[0] & 0x0f, fin = h[0] & 0x80;
        const char *pl = (const char *)h + hl;
        if (op == 8) {
            c->close_code = len >= 2 ? ((unsigned char)pl[0] << 8 | (unsigned char)pl[1]) : 1005;
        } else if (op == 9) {
            wsc_send_raw(c, 0x8a, pl, (size_t)len);
        } else if (op == 1 || op == 0) {
            if (fin && op == 1) {
                on_message(c, pl, (size_t)len);
            } else {
                c->frag = realloc(c->frag, c->frag_len + (size_t)len);
                memcpy(c->frag + c->frag_len, pl, (size_t)len);
                c->frag_len += (size_t)len;
                if (fin) {
                    on_message(c, c->frag, c->frag_len);
                    c->frag_len = 0;
                }
            }
        }
        off += hl + (size_t)len;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
}

static cJSON *pop(struct wsc *c)
{
    if (!c->qlen) return NULL;
    cJSON *o = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % QMAX;
    c->qlen--;
    return o;
}

cJSON *wsc_next(struct wsc *c, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    for (bool tried = false;; tried = true) {
        if (c->qlen) return pop(c);
        if (c->close_code) return NULL;
        uint64_t now = now_ms();
        if (now >= deadline && tried) return NULL; /* a zero timeout still reads once */
        int r = fill(c, now >= deadline ? 0 : (int)(deadline - now));
        if (r < 0) {
            if (!c->close_code) c->close_code = -1;
            parse(c);
            continue;
        }
        parse(c);
    }
}

int wsc_queued(struct wsc *c)
{
    return (int)c->qlen;
}

bool wsc_is_closed(const struct wsc *c)
{
    return c->close_code != 0;
}

int wsc_wait_closed(struct wsc *c, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    while (!c->close_code && now_ms() < deadline) {
        int r = fill(c, 50);
        parse(c);
        while (c->qlen)
            cJSON_Delete(pop(c));
        if (r < 0 && !c->close_code) c->close_code = -1;
    }
    /* After a close frame, the server ends TCP: also drain to EOF. */
    return c->close_code;
}

/* id > 0: that reply; id == 0 with push NULL: any reply; push: that push. */
static cJSON *take_matching(struct wsc *c, int64_t id, const char *push)
{
    for (size_t i = 0; i < c->qlen; i++) {
        size_t k = (c->qhead + i) % QMAX;
        cJSON *o = c->q[k];
        bool hit;
        if (push) {
            const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "push");
            hit = cJSON_IsString(p) && !strcmp(p->valuestring, push);
        } else {
            /* A reply is an object with an id and no push: some pushes carry
             * an id of their own (a held message's "pending" push), which
             * may equal a command's id. */
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "id");
            hit = !cJSON_HasObjectItem(o, "push") &&
                  (id ? cJSON_IsNumber(v) && (int64_t)v->valuedouble == id : v != NULL);
        }
        if (!hit) continue;
        /* Remove slot i, keeping the order of the rest. */
        for (size_t j = i; j + 1 < c->qlen; j++)
            c->q[(c->qhead + j) % QMAX] = c->q[(c->qhead + j + 1) % QMAX];
        c->qlen--;
        return o;
    }
    return NULL;
}

static cJSON *wait_matching(struct wsc *c, int64_t id, const char *push, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        cJSON *o = take_matching(c, id, push);
        if (o) return o;
        if (c->close_code) return NULL;
        uint64_t now = now_ms();
        if (now >= deadline) return NULL;
        int r = fill(c, (int)(deadline - now));
        if (r < 0 && !c->close_code) c->close_code = -1;
        parse(c);
    }
}

cJSON *wsc_request(struct wsc *c, int timeout_ms, const char *fmt, ...)
{
    char body[70000], msg[70100];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    int64_t id = ++c->next_id;
    int n = snprintf(msg, sizeof msg, "{\"id\":%lld,%s}", (long long)id, body);
    if (wsc_send_text(c, msg, (size_t)n)) return NULL;
    return wait_matching(c, id, NULL, timeout_ms);
}

cJSON *wsc_next_reply(struct wsc *c, int timeout_ms)
{
    return wait_matching(c, 0, NULL, timeout_ms);
}

cJSON *wsc_wait_push(struct wsc *c, const char *type, int timeout_ms)
{
    return wait_matching(c, 0, type, timeout_ms);
}

static const cJSON *path_get(const cJSON *o, const char *path)
{
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *save = NULL, *t = strtok_r(buf, ".", &save); t && cur;
         t = strtok_r(NULL, ".", &save))
        cur = cJSON_GetObjectItemCaseSensitive(cur, t);
    return cur;
}

const char *wsc_err_code(const cJSON *reply)
{
    const cJSON *v = reply ? path_get(reply, "error.code") : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int64_t wsc_int(const cJSON *o, const char *path)
{
    const cJSON *v = o ? path_get(o, path) : NULL;
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : INT64_MIN;
}

const char *wsc_str(const cJSON *o, const char *path)
{
    const cJSON *v = o ? path_get(o, path) : NULL;
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
