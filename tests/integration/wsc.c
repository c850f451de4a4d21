#include "wsc.h"

#include "wsclient.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
    int close_code;         /* 0: open; >0 close frame code; -1 EOF without close */
    char close_reason[124]; /* its reason (a close frame carries at most 123 bytes) */
    int64_t next_id;        /* command ids */
    unsigned messages;      /* WebSocket messages received (an array counts once) */
    char *frag;             /* reassembly of fragmented server messages */
    size_t frag_len;
    unsigned char pong[125]; /* payload of the last pong received */
    int pong_len;            /* its length; -1: none yet */
};

static void parse(struct wsc *c);

const char *wsc_close_reason(const struct wsc *c)
{
    return c->close_reason;
}

int wsc_last_pong(const struct wsc *c, const unsigned char **payload)
{
    *payload = c->pong;
    return c->pong_len;
}

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
    char key[WSCL_KEY_LEN + 1], host[32], extra[600] = "", req[1024];
    wscl_key(nonce, key);
    snprintf(host, sizeof host, "127.0.0.1:%d", port);
    if (o && o->origin) snprintf(extra, 300, "Origin: %s\r\n", o->origin);
    if (o && o->user_agent)
        snprintf(extra + strlen(extra), 300, "User-Agent: %s\r\n", o->user_agent);
    struct wscl_upgrade u = {"/", host, key, "parley.v1", extra};
    int n = wscl_request(req, sizeof req, &u);
    struct wsc *c = calloc(1, sizeof *c);
    c->fd = fd;
    c->pong_len = -1;
    c->q = calloc(QMAX, sizeof *c->q);
    if (n < 0) goto fail;
    if (o && o->tls) {
        static SSL_CTX *ctx;
        if (!ctx) ctx = SSL_CTX_new(TLS_client_method());
        c->ssl = SSL_new(ctx);
        SSL_set_fd(c->ssl, fd);
        if (SSL_connect(c->ssl) != 1) goto fail;
    }
    if (write_all(fd, req, (size_t)n)) goto fail;
    uint64_t deadline = now_ms() + 5000;
    int status;
    bool accepted;
    size_t hl;
    while (!(hl = wscl_response((const char *)c->buf, c->len, key, &status, &accepted))) {
        if (now_ms() > deadline || fill(c, 100) < 0) goto fail;
    }
    if (http_status) *http_status = status;
    if (!accepted) goto fail;
    memmove(c->buf, c->buf + hl, c->len - hl);
    c->len -= hl;
    parse(c); /* the first frames may have come with the response */
    return c;
fail:
    wsc_close(c);
    return NULL;
}

void wsc_abort(struct wsc *c)
{
    if (!c) return;
    /* Linger 0: close sends a reset, not a FIN. */
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    wsc_close(c);
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
    /* opcode is the first byte as sent: the caller includes FIN (0x80) */
    unsigned char *m = malloc(wscl_frame_size(n));
    if (!m) return -1;
    size_t k = wscl_frame(m, (unsigned)opcode, p, n, 0x12345678);
    int rc = write_all(c->fd, m, k);
    free(m);
    return rc;
}

int wsc_send_raw2(struct wsc *c, int op1, const void *p1, size_t n1, int op2, const void *p2,
                  size_t n2)
{
    unsigned char *m = malloc(wscl_frame_size(n1) + wscl_frame_size(n2));
    if (!m) return -1;
    size_t k = wscl_frame(m, (unsigned)op1, p1, n1, 0x12345678);
    k += wscl_frame(m + k, (unsigned)op2, p2, n2, 0x12345678);
    int rc = write_all(c->fd, m, k);
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
    if (!c->len) return;
    size_t off = 0;
    struct wscl_in f;
    int r;
    while ((r = wscl_parse(c->buf + off, c->len - off, &f)) == 1) {
        const char *pl = (const char *)f.payload;
        if (f.opcode == 8) {
            c->close_code = wscl_close_code(&f);
            size_t rl = f.len > 2 ? f.len - 2 : 0;
            if (rl >= sizeof c->close_reason) rl = sizeof c->close_reason - 1;
            memcpy(c->close_reason, pl + (f.len > 2 ? 2 : 0), rl);
            c->close_reason[rl] = '\0';
        } else if (f.opcode == 9) {
            wsc_send_raw(c, 0x8a, pl, f.len);
        } else if (f.opcode == 10) {
            c->pong_len = f.len <= sizeof c->pong ? (int)f.len : (int)sizeof c->pong;
            memcpy(c->pong, pl, (size_t)c->pong_len);
        } else if (f.opcode == 1 || f.opcode == 0) {
            if (f.fin && f.opcode == 1) {
                on_message(c, pl, f.len);
            } else {
                c->frag = realloc(c->frag, c->frag_len + f.len);
                memcpy(c->frag + c->frag_len, pl, f.len);
                c->frag_len += f.len;
                if (f.fin) {
                    on_message(c, c->frag, c->frag_len);
                    c->frag_len = 0;
                }
            }
        }
        off += f.size;
    }
    if (r < 0 && !c->close_code) c->close_code = -1; /* not a server's frame: treat as cut */
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
