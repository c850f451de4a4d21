/* Integration: the gateway's write path (gateway/conn.c). Output is written
 * at the end of the loop turn while the socket takes it and through
 * WRITEABLE when it does not; either way a reader that cannot keep up gets
 * every message once, in order, and the direct path is really the one used.
 * The slow-consumer cut-off (it_failures), the shutdown flush (it_ops) and
 * the close codes (it_edge) run through the same path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "itest.h"

enum { N = 150, BODY = 16000 }; /* 2.4 MB of 16 KB frames: past the 1 MiB out-queue */

/* Takes what c has (waiting up to ms for the first), at most max message
 * pushes (0: all), checking that they come in seq order without a gap or a
 * repeat and, when body is not 0, that each carries a body of that length.
 * Returns how many. */
static int take_n(struct wsc *c, int64_t *next, int ms, size_t body, int max)
{
    int got = 0;
    cJSON *m;
    while ((!max || got < max) && (m = wsc_next(c, got ? 0 : ms))) {
        const char *p = wsc_str(m, "push");
        if (p && !strcmp(p, "message")) {
            assert_int_equal(wsc_int(m, "seq"), *next);
            if (body) assert_int_equal(strlen(wsc_str(m, "body")), body);
            (*next)++;
            got++;
        }
        cJSON_Delete(m);
    }
    return got;
}

static int take(struct wsc *c, int64_t *next, int ms)
{
    return take_n(c, next, ms, BODY, 0);
}

static int take_any(struct wsc *c, int64_t *next, int ms)
{
    return take_n(c, next, ms, 0, 0);
}

/* A member with a 4 KiB receive buffer reads at most one message per send
 * while N frames of 16 KB go to it: nearly every write is partial (lws
 * writes 4 KB a syscall and keeps the rest), and the member falls far enough
 * behind to be paced. All N arrive, once each, in order. */
static void slow_reader_gets_every_message_in_order(int port, const struct wsc_opts *o)
{
    struct it_world w;
    it_world(&w, 2, NULL);
    struct wsc_opts small = o ? *o : (struct wsc_opts){0};
    small.rcvbuf = 4096;
    struct wsc *slow = it_connect_port(port, &small, w.tok[0]);
    assert_non_null(slow);
    cJSON_Delete(it_join(slow, w.room, -1));
    struct wsc *sender = it_connect_port(port, o, w.tok[1]);
    assert_non_null(sender);
    cJSON_Delete(it_join(sender, w.room, -1));
    static char body[BODY + 1];
    memset(body, 'w', BODY);
    int64_t next = 1, snext = 1;
    int seen = 0;
    for (int i = 0; i < N; i++) {
        char cmid[32];
        snprintf(cmid, sizeof cmid, "w-%d", i);
        cJSON *r = it_send(sender, w.room, cmid, body);
        assert_null(wsc_err_code(r));
        cJSON_Delete(r);
        take(sender, &snext, 0);
        seen += take_n(slow, &next, 0, BODY, 1); /* at most one: stays behind */
    }
    uint64_t deadline = it_now_ms() + 20000;
    while (seen < N && it_now_ms() < deadline)
        seen += take(slow, &next, 200);
    assert_int_equal(seen, N);
    assert_int_equal(take(slow, &next, 300), 0); /* and nothing twice */
    assert_false(wsc_is_closed(slow));
    wsc_close(slow);
    wsc_close(sender);
}

static void partial_writes_keep_order_direct(void **state)
{
    (void)state;
    int port;
    pid_t pid = it_own_gateway("gw-write-direct", &port, "--max-body", "16384", NULL);
    double d0 = it_metric_port(port, "parley_socket_writes_direct_total");
    slow_reader_gets_every_message_in_order(port, NULL);
    double w1 = it_metric_port(port, "parley_socket_writes_total");
    double d1 = it_metric_port(port, "parley_socket_writes_direct_total");
    /* The direct path carried most writes: only what follows a partial one
     * waits for WRITEABLE. */
    assert_true(d1 - d0 > 100);
    assert_true(d1 <= w1);
    assert_int_equal(it_stop(pid), 0);
}

static void partial_writes_keep_order_writeable_only(void **state)
{
    (void)state;
    int port;
    pid_t pid =
        it_own_gateway("gw-write-cb", &port, "--max-body", "16384", "--direct-write", "0", NULL);
    slow_reader_gets_every_message_in_order(port, NULL);
    assert_true(it_metric_port(port, "parley_socket_writes_total") > N);
    assert_true(it_metric_port(port, "parley_socket_writes_direct_total") == 0);
    assert_int_equal(it_stop(pid), 0);
}

/* Over TLS lws_write goes through SSL_write, whose "would block" lws keeps
 * as a partial write too. */
static void partial_writes_keep_order_tls(void **state)
{
    (void)state;
    char cert[600], key[600], cmd[2000], log[600];
    snprintf(cert, sizeof cert, "%s/write-tls.crt", IT.state);
    snprintf(key, sizeof key, "%s/write-tls.key", IT.state);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
             "-keyout '%s' -out '%s' >/dev/null 2>&1",
             key, cert);
    assert_int_equal(system(cmd), 0);
    int port = it_free_port();
    char ports[16], redis[64];
    snprintf(ports, sizeof ports, "%d", port);
    snprintf(redis, sizeof redis, "127.0.0.1:%d", IT.redis_port);
    snprintf(log, sizeof log, "%s/gw-write-tls.log", IT.state);
    const char *args[] = {"serve",   "--port",     ports,        "--pg", IT.pg,
                          "--redis", redis,        "--tls-cert", cert,   "--tls-key",
                          key,       "--max-body", "16384",      NULL};
    pid_t pid = it_spawn(log, args);
    /* Ready once a TLS client authenticates (PostgreSQL may come later). */
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc_opts tls = {.tls = true};
    bool ready = false;
    for (int i = 0; i < 100 && !ready; i++) {
        usleep(100000);
        struct wsc *c = it_connect_port(port, &tls, w.tok[0]);
        ready = c != NULL;
        if (c) wsc_close(c);
    }
    assert_true(ready);
    slow_reader_gets_every_message_in_order(port, &tls);
    assert_int_equal(it_stop(pid), 0);
}

/* Members that vanish (a TCP reset) while a flood is queued to them: a
 * connection lws closes in a turn's I/O callbacks may already be on the
 * dirty list of that turn, and a direct write to a reset socket fails. The
 * gateway goes on serving the others and exits cleanly (an ASan build
 * reports any use of a freed connection there). */
static void members_reset_mid_flood(void **state)
{
    (void)state;
    int port;
    pid_t pid = it_own_gateway("gw-write-reset", &port, NULL);
    struct it_world w;
    it_world(&w, 3, NULL);
    enum { M = 40 };
    struct wsc *m[M];
    for (int i = 0; i < M; i++) {
        m[i] = it_connect_port(port, NULL, w.tok[0]);
        assert_non_null(m[i]);
        cJSON_Delete(it_join(m[i], w.room, -1));
    }
    struct wsc *watch = it_connect_port(port, NULL, w.tok[2]);
    assert_non_null(watch);
    cJSON_Delete(it_join(watch, w.room, -1));
    struct wsc *sender = it_connect_port(port, NULL, w.tok[1]);
    assert_non_null(sender);
    cJSON_Delete(it_join(sender, w.room, -1));
    static char body[4001];
    memset(body, 'r', 4000);
    int64_t next = 1;
    int seen = 0;
    for (int i = 0; i < 4 * M; i++) {
        char cmid[32];
        snprintf(cmid, sizeof cmid, "r-%d", i);
        /* Sent without waiting, so the reset below lands while the
         * gateway is fanning it out. */
        char msg[4200];
        int n = snprintf(msg, sizeof msg,
                         "{\"id\":%d,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":"
                         "\"%s\",\"body\":\"%s\"}",
                         100000 + i, w.room, cmid, body);
        assert_int_equal(wsc_send_text(sender, msg, (size_t)n), 0);
        if (i % 4 == 3) wsc_abort(m[i / 4]);
        cJSON *o;
        while ((o = wsc_next(sender, 0)))
            cJSON_Delete(o);
        seen += take_any(watch, &next, 0);
    }
    uint64_t deadline = it_now_ms() + 15000;
    while (seen < 4 * M && it_now_ms() < deadline)
        seen += take_any(watch, &next, 200);
    assert_int_equal(seen, 4 * M); /* the one reading member got everything, in order */
    assert_int_equal(it_wait_ready(port, 2000), 0);
    wsc_close(watch);
    wsc_close(sender);
    assert_int_equal(it_stop(pid), 0);
}

/* A command answered at once and a frame that makes lws close the
 * connection, read in one go: the connection goes on the dirty list and is
 * destroyed in the same loop turn, before the end-of-turn write. The
 * gateway must not touch it afterwards (ASan build: a use after free). */
static void connection_closed_in_the_turn_it_was_queued(void **state)
{
    (void)state;
    int port;
    pid_t pid = it_own_gateway("gw-write-gone", &port, NULL);
    struct it_world w;
    it_world(&w, 1, NULL);
    static const char ping[] = "{\"id\":1,\"op\":\"ping\"}";
    for (int i = 0; i < 20; i++) {
        struct wsc *c = it_connect_port(port, NULL, w.tok[0]);
        assert_non_null(c);
        assert_int_equal(wsc_send_raw2(c, 0x81, ping, sizeof ping - 1, 0x82, "x", 1), 0);
        assert_int_equal(wsc_wait_closed(c, 3000), 1003); /* text frames only */
        wsc_close(c);
    }
    assert_int_equal(it_wait_ready(port, 2000), 0);
    assert_int_equal(it_stop(pid), 0);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(partial_writes_keep_order_direct),
        cmocka_unit_test(partial_writes_keep_order_writeable_only),
        cmocka_unit_test(partial_writes_keep_order_tls),
        cmocka_unit_test(members_reset_mid_flood),
        cmocka_unit_test(connection_closed_in_the_turn_it_was_queued),
    };
    return cmocka_run_group_tests(tests, NULL, it_kill_spawned);
}
