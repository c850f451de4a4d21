/* Integration: the gateway's HTTP and WebSocket edge under hostile input.
 * Pipelined requests split at every byte, ambiguous framing (smuggling),
 * slow headers and bodies, a flood of slow requests from one address while
 * another chats, the connection budget's reserve, oversized headers, the
 * metrics token, malformed upgrades and close frames. Everything goes over
 * raw sockets so that the bytes are exactly the test's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "httpc.h"
#include "itest.h"

/* ---- raw sockets --------------------------------------------------------- */

static int raw_connect(int port, const char *src)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    if (src) {
        struct sockaddr_in s = {.sin_family = AF_INET};
        inet_pton(AF_INET, src, &s.sin_addr);
        if (bind(fd, (struct sockaddr *)&s, sizeof s)) {
            close(fd);
            return -1;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(0x7f000001u);
    if (connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) return; /* the server may have closed: the reads tell */
        p += w;
        n -= (size_t)w;
    }
}

/* Reads until the peer closes or timeout_ms passes; returns the bytes (NUL
 * terminated, malloc'd), *closed tells which. */
static char *read_all(int fd, int timeout_ms, size_t *len, bool *closed)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    uint64_t end = it_now_ms() + (uint64_t)timeout_ms;
    *closed = false;
    for (;;) {
        uint64_t now = it_now_ms();
        if (now >= end) break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(end - now)) <= 0) break;
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r <= 0) {
            *closed = r == 0 || errno == ECONNRESET;
            break;
        }
        n += (size_t)r;
        if (n == cap) break;
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* The statuses of the complete responses in buf, in order (at most max);
 * returns how many. A response's end is found from its Content-Length. */
static int responses(const char *buf, size_t len, int *status, int max)
{
    int n = 0;
    const char *p = buf, *end = buf + len;
    while (p < end && n < max) {
        int st;
        if (sscanf(p, "HTTP/1.1 %d", &st) != 1) break;
        const char *h = strstr(p, "\r\n\r\n");
        if (!h) break;
        const char *cl = strstr(p, "content-length: ");
        size_t body = cl && cl < h ? (size_t)atol(cl + 16) : 0;
        if ((size_t)(end - (h + 4)) < body) break;
        status[n++] = st;
        p = h + 4 + body;
    }
    return n;
}

/* One exchange: bytes sent (split at `split` with a pause between, 0: in
 * one write), everything read until the server closes. */
static int exchange(int port, const char *src, const char *req, size_t len, size_t split,
                    int *status, int max, bool *closed)
{
    int fd = raw_connect(port, src);
    assert_true(fd >= 0);
    if (split) {
        send_all(fd, req, split);
        usleep(2000); /* lands as separate reads on the server */
        send_all(fd, req + split, len - split);
    } else {
        send_all(fd, req, len);
    }
    size_t n;
    char *buf = read_all(fd, 5000, &n, closed);
    int k = responses(buf, n, status, max);
    free(buf);
    close(fd);
    return k;
}

/* CPU seconds (user + system) the process has used. */
static double cpu_s(int pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char *ok = fgets(line, sizeof line, f);
    fclose(f);
    if (!ok) return -1;
    const char *p = strrchr(line, ')');
    unsigned long ut = 0, st = 0;
    /* fields after the name: state(3) ... utime(14) stime(15) */
    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The gateway answers and does not burn CPU while idle. */
static void assert_gateway_idle_and_alive(int g)
{
    double c0 = cpu_s(IT.gw_pid[g]);
    usleep(1000000);
    double used = cpu_s(IT.gw_pid[g]) - c0;
    if (used > 0.3) fprintf(stderr, "gateway %d used %.2f s of CPU in 1 s idle\n", g, used);
    assert_true(used <= 0.3);
    struct hres h = http_req(IT.gw[g], NULL, "GET", "/healthz", NULL, NULL);
    assert_int_equal(h.status, 200);
    hres_free(&h);
}

/* ---- pipelining ------------------------------------------------------------ */

#define GET_H "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
#define POST_L "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
#define PATCH_ME "PATCH /api/v1/me HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
#define DELETE_R "DELETE /api/v1/auth/session HTTP/1.1\r\nHost: x\r\n\r\n"
#define PUT_G "PUT /api/v1/me HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
#define OPTIONS_H "OPTIONS /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
#define POST_0 "POST /api/v1/auth/logout HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"

/* Two or three requests in one stream, split at every byte boundary: the
 * first is answered (its status as alone), the connection then closes, and
 * nothing behind it is answered. Before the fix the first mix hung the
 * gateway at 100% CPU for good. */
static void pipelines_split_at_every_byte(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        int first; /* the first request's status when sent alone */
    } mixes[] = {
        {GET_H POST_L, 200},      {POST_L GET_H, 400}, {GET_H PATCH_ME, 200},
        {PATCH_ME DELETE_R, 401}, {DELETE_R PUT_G, 0}, {POST_L POST_L GET_H, 400},
        {OPTIONS_H GET_H, 0},     {PUT_G POST_L, 0},   {POST_0 GET_H, 401},
    };
    for (size_t m = 0; m < sizeof mixes / sizeof mixes[0]; m++) {
        const char *req = mixes[m].req;
        size_t len = strlen(req);
        bool closed;
        int want = mixes[m].first; /* 0: whatever the first split answers */
        for (size_t split = 0; split < len; split++) {
            int st[4];
            int n = exchange(IT.gw[0], NULL, req, len, split, st, 4, &closed);
            if (n != 1 || !closed || (want && st[0] != want)) {
                fprintf(stderr, "mix %zu split %zu: %d responses, first %d, closed %d\n", m, split,
                        n, n ? st[0] : -1, closed);
            }
            assert_int_equal(n, 1);
            assert_true(closed);
            if (!want) want = st[0]; /* every split answers like the first */
            assert_int_equal(st[0], want);
        }
    }
    assert_gateway_idle_and_alive(0);
}

/* ---- framing ---------------------------------------------------------------- */

/* A request whose body length is ambiguous is refused with 400 and the
 * connection closed: the smuggled request behind it is never answered. */
static void ambiguous_framing_is_refused_and_closed(void **state)
{
    (void)state;
    static const char *const heads[] = {
        "Content-Length: abc\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: 99999999999999999999\r\n",
        "Content-Length: 2\r\nContent-Length: 3\r\n",
        "Content-Length: 2\r\nContent-Length: 2\r\n",
        "Content-Length: 2\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: chunked\r\nContent-Length: 2\r\n",
    };
    for (size_t i = 0; i < sizeof heads / sizeof heads[0]; i++) {
        for (int get = 0; get < 2; get++) {
            char req[512];
            int len = snprintf(req, sizeof req,
                               "%s /api/v1/auth/login HTTP/1.1\r\nHost: x\r\n%s\r\n{}" GET_H,
                               get ? "GET" : "POST", heads[i]);
            int st[4];
            bool closed;
            int n = exchange(IT.gw[0], NULL, req, (size_t)len, 0, st, 4, &closed);
            if (n != 1 || st[0] != 400 || !closed)
                fprintf(stderr, "framing %zu (%s): %d responses, first %d, closed %d\n", i,
                        get ? "GET" : "POST", n, n ? st[0] : -1, closed);
            assert_int_equal(n, 1);
            assert_int_equal(st[0], 400);
            assert_true(closed);
        }
    }
    /* The same request with a proper length is served (the test is not
     * refusing everything). */
    int st[2];
    bool closed;
    const char ok[] = POST_L;
    assert_int_equal(exchange(IT.gw[0], NULL, ok, sizeof ok - 1, 0, st, 2, &closed), 1);
    assert_int_equal(st[0], 400); /* missing_field: the body was read as {} */
    assert_gateway_idle_and_alive(0);
}

/* Headers over --http-max-header (4096) are answered 431, not a silent
 * close; under the limit the same request is served. */
static void oversized_headers_get_431(void **state)
{
    (void)state;
    static char req[8192];
    char pad[5001];
    memset(pad, 'a', sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    int len =
        snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n\r\n", pad);
    int st[2];
    bool closed;
    assert_int_equal(exchange(IT.gw[0], NULL, req, (size_t)len, 0, st, 2, &closed), 1);
    assert_int_equal(st[0], 431);
    pad[3000] = 0;
    len = snprintf(req, sizeof req, "GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: %s\r\n\r\n", pad);
    assert_int_equal(exchange(IT.gw[0], NULL, req, (size_t)len, 0, st, 2, &closed), 1);
    assert_int_equal(st[0], 200);
}

/* ---- slow requests ---------------------------------------------------------- */

/* A body trickled a byte every 250 ms is cut at the whole-request deadline
 * (3 s in the fixture) with 408, although it never stalls for lws's 5 s. */
static void trickled_body_hits_the_request_deadline(void **state)
{
    (void)state;
    int fd = raw_connect(IT.gw[1], "127.0.0.81");
    assert_true(fd >= 0);
    const char head[] =
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n";
    send_all(fd, head, sizeof head - 1);
    uint64_t t0 = it_now_ms();
    size_t got = 0;
    bool closed = false;
    char *buf = NULL;
    while (it_now_ms() - t0 < 12000) {
        send_all(fd, " ", 1);
        buf = read_all(fd, 250, &got, &closed);
        if (got || closed) break;
        free(buf);
        buf = NULL;
    }
    uint64_t took = it_now_ms() - t0;
    int st[1] = {0};
    int n = buf ? responses(buf, got, st, 1) : 0;
    free(buf);
    close(fd);
    assert_int_equal(n, 1);
    assert_int_equal(st[0], 408);
    assert_true(took >= 2500 && took < 8000);
}

/* Headers trickled a byte every 250 ms are cut by the header deadline. */
static void trickled_headers_are_cut(void **state)
{
    (void)state;
    int fd = raw_connect(IT.gw[1], "127.0.0.82");
    assert_true(fd >= 0);
    const char head[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
    send_all(fd, head, sizeof head - 1);
    uint64_t t0 = it_now_ms();
    bool closed = false;
    while (!closed && it_now_ms() - t0 < 15000) {
        send_all(fd, "a", 1);
        size_t got;
        free(read_all(fd, 250, &got, &closed));
    }
    uint64_t took = it_now_ms() - t0;
    close(fd);
    assert_true(closed);
    assert_true(took >= 2000 && took < 8000);
}

/* A few hundred slow bodies from one address: past its cap (32 in the
 * fixture) the connections are refused at once, and meanwhile another
 * address signs in, chats and calls the API as usual. */
static void slow_flood_from_one_address_leaves_others_alone(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 2, NULL);
    double refused0 = it_metric(0, "parley_connections_refused_total{reason=\"per_ip_cap\"}");
    enum { FLOOD = 300 };
    static int fds[FLOOD];
    int held = 0;
    const char head[] =
        "POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{";
    for (int i = 0; i < FLOOD; i++) {
        fds[i] = raw_connect(IT.gw[0], "127.0.0.90");
        if (fds[i] >= 0) send_all(fds[i], head, sizeof head - 1);
    }
    /* Which of them the gateway kept: refused ones are closed at once. */
    usleep(300000);
    for (int i = 0; i < FLOOD; i++) {
        if (fds[i] < 0) continue;
        struct pollfd p = {.fd = fds[i], .events = POLLIN};
        char c;
        if (poll(&p, 1, 0) == 0 || recv(fds[i], &c, 1, MSG_DONTWAIT) > 0) held++;
    }
    assert_int_equal(held, 32);
    assert_true(it_metric(0, "parley_connections_refused_total{reason=\"per_ip_cap\"}") >=
                refused0 + FLOOD - 32);

    /* Another address: a chat across both gateways and an API call. */
    struct wsc_opts o = {.src_ip = "127.0.0.91"};
    struct wsc *a = it_connect_port(IT.gw[0], &o, w.tok[0]);
    assert_non_null(a);
    cJSON *j = it_join(a, w.room, -1);
    assert_null(wsc_err_code(j));
    cJSON_Delete(j);
    struct wsc *b = it_member(1, w.tok[1], w.room);
    cJSON *ack = it_send(a, w.room, "flood-1", "still here");
    assert_null(wsc_err_code(ack));
    int64_t seq = wsc_int(ack, "ok.seq");
    assert_true(seq > 0);
    cJSON_Delete(ack);
    bool seen = false;
    for (int i = 0; i < 20 && !seen; i++) {
        cJSON *m = wsc_next(b, 500);
        const char *push = m ? wsc_str(m, "push") : NULL;
        seen = push && !strcmp(push, "message") && wsc_int(m, "seq") == seq;
        cJSON_Delete(m);
    }
    assert_true(seen);
    struct hres me = http_req(IT.gw[0], "127.0.0.91", "GET", "/api/v1/me", w.tok[0], NULL);
    assert_int_equal(me.status, 200);
    hres_free(&me);
    wsc_close(a);
    wsc_close(b);
    for (int i = 0; i < FLOOD; i++)
        if (fds[i] >= 0) close(fds[i]);
}

/* The last --conn-reserve places of the connection budget go only to
 * addresses with no connection open: two addresses that fill the rest
 * cannot keep a health check (or a new person) out. */
static void connection_reserve_admits_new_addresses(void **state)
{
    (void)state;
    int port;
    pid_t pid = it_own_gateway("gw-budget", &port, "--max-conns", "40", "--conn-reserve", "8",
                               "--per-ip-max", "30", NULL);
    int fa[30], fb[30], na = 0, nb = 0;
    for (int i = 0; i < 30; i++) {
        fa[i] = raw_connect(port, "127.0.0.101");
        fb[i] = raw_connect(port, "127.0.0.102");
    }
    usleep(300000);
    for (int i = 0; i < 30; i++) {
        struct pollfd p[2] = {{.fd = fa[i], .events = POLLIN}, {.fd = fb[i], .events = POLLIN}};
        poll(p, 2, 0);
        if (fa[i] >= 0 && !(p[0].revents & (POLLIN | POLLHUP))) na++;
        if (fb[i] >= 0 && !(p[1].revents & (POLLIN | POLLHUP))) nb++;
    }
    /* Both addresses already hold connections when the budget reaches its
     * reserve, so together they get 40 - 8 places (the split between them
     * depends on arrival order, the sum does not). */
    assert_int_equal(na + nb, 32);
    /* A third address gets its health check from the reserve. */
    struct hres h = http_req(port, "127.0.0.103", "GET", "/healthz", NULL, NULL);
    assert_int_equal(h.status, 200);
    hres_free(&h);
    assert_true(it_metric_port(port, "parley_connections_refused_total{reason=\"capacity\"}") >=
                28);
    for (int i = 0; i < 30; i++) {
        if (fa[i] >= 0) close(fa[i]);
        if (fb[i] >= 0) close(fb[i]);
    }
    assert_int_equal(it_stop(pid), 0);
}

/* ---- metrics ---------------------------------------------------------------- */

static void metrics_need_the_token(void **state)
{
    (void)state;
    struct hres r = http_req(IT.gw[0], NULL, "GET", "/metrics", NULL, NULL);
    assert_int_equal(r.status, 401);
    hres_free(&r);
    r = http_req(IT.gw[0], NULL, "GET", "/metrics", "pt_0000000000000000000000000000000000000000",
                 NULL);
    assert_int_equal(r.status, 401);
    hres_free(&r);
    r = http_req(IT.gw[0], NULL, "GET", "/metrics", IT.metrics_token, NULL);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "parley_tcp_connections "));
    hres_free(&r);
}

/* ---- WebSocket upgrades and close frames ------------------------------------ */

static int upgrade_status(const char *method, const char *version, const char *key, int wsv)
{
    char req[512];
    int len = snprintf(req, sizeof req,
                       "%s / %s\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: %d\r\n"
                       "Sec-WebSocket-Protocol: parley.v1\r\n\r\n",
                       method, version, key, wsv);
    int fd = raw_connect(IT.gw[0], NULL);
    send_all(fd, req, (size_t)len);
    size_t n;
    bool closed;
    char *buf = read_all(fd, 2000, &n, &closed);
    int st = -1;
    sscanf(buf, "HTTP/1.%*d %d", &st);
    free(buf);
    close(fd);
    return st;
}

static void malformed_upgrades_are_refused(void **state)
{
    (void)state;
    const char *good = "dGhlIHNhbXBsZSBub25jZQ==";
    assert_int_equal(upgrade_status("GET", "HTTP/1.1", good, 13), 101);
    assert_int_not_equal(upgrade_status("GET", "HTTP/1.1", "abc", 13), 101);
    assert_int_not_equal(upgrade_status("GET", "HTTP/1.1", "dGhlIHNhbXBsZSBub25jZQ", 13), 101);
    assert_int_not_equal(upgrade_status("GET", "HTTP/1.1", good, 8), 101);
    assert_int_not_equal(upgrade_status("POST", "HTTP/1.1", good, 13), 101);
}

/* A close code that may not be sent (5000) or a 1-byte close payload is
 * answered with 1002, not echoed. A valid one is echoed. */
static void bad_close_frames_get_1002(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 1, NULL);
    const unsigned char c5000[] = {0x13, 0x88}, c1[] = {0x03}, c1000[] = {0x03, 0xe8};
    struct wsc *c = it_connect_auth(0, w.tok[0]);
    wsc_send_raw(c, 0x88, c5000, sizeof c5000);
    assert_int_equal(wsc_wait_closed(c, 3000), 1002);
    wsc_close(c);
    c = it_connect_auth(0, w.tok[0]);
    wsc_send_raw(c, 0x88, c1, sizeof c1);
    int code = wsc_wait_closed(c, 3000);
    assert_true(code == 1002 || code == 1006); /* 1006: closed without a frame */
    wsc_close(c);
    c = it_connect_auth(0, w.tok[0]);
    wsc_send_raw(c, 0x88, c1000, sizeof c1000);
    assert_int_equal(wsc_wait_closed(c, 3000), 1000);
    wsc_close(c);
}

/* A ping with the largest payload a control frame may carry (125 bytes)
 * is answered with that payload whole, also between the pieces of a
 * fragmented command longer than lws's receive buffer (ws.c keeps that
 * buffer just above 125 bytes: a control frame lives in it), and the
 * command still arrives whole. */
static void ping_of_125_bytes_between_fragments(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *c = it_connect_auth(0, w.tok[0]);
    cJSON_Delete(it_join(c, w.room, -1));
    unsigned char ping[125];
    for (size_t i = 0; i < sizeof ping; i++)
        ping[i] = (unsigned char)(i * 7 + 1);
    char body[600], cmd[800];
    memset(body, 'q', sizeof body - 1);
    body[sizeof body - 1] = 0;
    int n = snprintf(cmd, sizeof cmd,
                     "{\"id\":9,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"p125\","
                     "\"body\":\"%s\"}",
                     w.room, body);
    assert_int_equal(wsc_send_raw(c, 0x01, cmd, 300), 0);
    assert_int_equal(wsc_send_raw(c, 0x89, ping, sizeof ping), 0);
    assert_int_equal(wsc_send_raw(c, 0x80, cmd + 300, (size_t)n - 300), 0);
    cJSON *r = wsc_next_reply(c, 5000);
    assert_non_null(r);
    assert_null(wsc_err_code(r));
    assert_int_equal(wsc_int(r, "id"), 9);
    cJSON_Delete(r);
    const unsigned char *pong;
    for (int i = 0; i < 50 && wsc_last_pong(c, &pong) < 0; i++)
        cJSON_Delete(wsc_next(c, 100));
    assert_int_equal(wsc_last_pong(c, &pong), (int)sizeof ping);
    assert_memory_equal(pong, ping, sizeof ping);
    /* the body was stored whole */
    cJSON *h = wsc_request(c, 5000, "\"op\":\"history\",\"room\":\"%s\",\"limit\":1", w.room);
    assert_non_null(h);
    char *txt = cJSON_PrintUnformatted(h);
    assert_non_null(strstr(txt, body));
    free(txt);
    cJSON_Delete(h);
    wsc_close(c);
}

/* ---- write backpressure ------------------------------------------------------ */

/* A sender that outruns the write batcher is stopped reading once half of
 * --batch-queue-max waits (the store's backpressure hook), and every stopped
 * connection reads again once the queue is back under a quarter: a pipelined
 * burst far longer than the queue is answered to the last command (ok, or
 * busy for what lws had already read past the stop), never left hanging. */
static void write_backpressure_stops_and_resumes_the_sender(void **state)
{
    (void)state;
    int port; /* one send per transaction, so the queue fills behind it */
    pid_t pid = it_own_gateway("gw-backpressure", &port, "--batch-max", "1", "--batch-queue-max",
                               "16", NULL);
    (void)pid;
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *c = it_connect_port(port, NULL, w.tok[0]);
    assert_non_null(c);
    cJSON_Delete(it_join(c, w.room, -1));
    /* The room's rules are cached first: sends that arrive while they load
     * wait in the send stage, not in the write queue, so backpressure is
     * not what they meet. */
    cJSON *warm = it_send(c, w.room, "bp-warm", "x");
    assert_null(wsc_err_code(warm));
    cJSON_Delete(warm);
    enum { N = 400 };
    char msg[256];
    for (int i = 0; i < N; i++) {
        int n = snprintf(msg, sizeof msg,
                         "{\"id\":%d,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"bp-%d\","
                         "\"body\":\"x\"}",
                         1000 + i, w.room, i);
        assert_int_equal(wsc_send_text(c, msg, (size_t)n), 0);
    }
    int ok = 0, busy = 0;
    cJSON *o;
    while (ok + busy < N && (o = wsc_next_reply(c, 5000))) {
        const char *code = wsc_err_code(o);
        if (!code)
            ok++;
        else if (!strcmp(code, "busy"))
            busy++;
        else
            fail_msg("unexpected reply code %s", code);
        cJSON_Delete(o);
    }
    fprintf(stderr, "backpressure: %d stored, %d busy of %d\n", ok, busy, N);
    assert_int_equal(ok + busy, N); /* every command answered: reading resumed */
    /* The stop kept most of the burst out of the refusals: without it all
     * past the queue's 16 places would be busy. */
    assert_true(ok > N / 2);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM messages WHERE room_id = '%s'", w.room);
    assert_int_equal(atoi(it_sql(sql)), ok + 1);
    wsc_close(c);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pipelines_split_at_every_byte),
        cmocka_unit_test(ambiguous_framing_is_refused_and_closed),
        cmocka_unit_test(oversized_headers_get_431),
        cmocka_unit_test(trickled_body_hits_the_request_deadline),
        cmocka_unit_test(trickled_headers_are_cut),
        cmocka_unit_test(slow_flood_from_one_address_leaves_others_alone),
        cmocka_unit_test(connection_reserve_admits_new_addresses),
        cmocka_unit_test(metrics_need_the_token),
        cmocka_unit_test(malformed_upgrades_are_refused),
        cmocka_unit_test(bad_close_frames_get_1002),
        cmocka_unit_test(ping_of_125_bytes_between_fragments),
        cmocka_unit_test(write_backpressure_stops_and_resumes_the_sender),
    };
    return cmocka_run_group_tests(tests, NULL, it_kill_spawned);
}
