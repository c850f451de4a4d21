/* Integration: Redis restart, PostgreSQL outage and a slow consumer, with
 * the real servers stopped and started under the gateways. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

static void redis_restart_catches_up_from_postgres(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *a, *b;
    int64_t base = it_pair(&w, 0, &a, 1, &b);
    /* A room in slow mode: its pace is counted in Redis. */
    struct it_world s;
    it_world(&s, 1, NULL);
    it_sqlf("UPDATE rooms SET slow_mode_s = 1 WHERE id = '%s' RETURNING 1", s.room);
    struct wsc *c = it_member(0, s.tok[0], s.room);
    assert_int_equal(it_env("stop-redis"), 0);
    char cmid[32];
    for (int i = 0; i < 10; i++) {
        snprintf(cmid, sizeof cmid, "outage-%d", i);
        cJSON *r = it_send(a, w.room, cmid, "during the outage");
        assert_null(wsc_err_code(r)); /* PostgreSQL is up: acknowledged */
        cJSON_Delete(r);
    }
    /* ... but a slowed room's sends cannot be counted: refused, retry later */
    cJSON *r = it_send(c, s.room, "slowed", "during the outage");
    assert_string_equal(wsc_err_code(r), "unavailable");
    cJSON_Delete(r);
    assert_int_equal(it_env("start-redis"), 0);
    for (int i = 0; i < 10; i++) {
        cJSON *m = wsc_wait_push(b, "message", 10000);
        assert_non_null(m);
        assert_int_equal(wsc_int(m, "seq"), base + 1 + i);
        cJSON_Delete(m);
    }
    /* A message sent right after the restart arrives too, even if this
     * gateway's publish link is still reconnecting when it commits. */
    r = it_send(a, w.room, "after-restart", "after");
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    cJSON *m = wsc_wait_push(b, "message", 10000);
    assert_non_null(m);
    assert_int_equal(wsc_int(m, "seq"), base + 11);
    cJSON_Delete(m);
    /* Redis is back: the slowed room takes messages again */
    r = it_send(c, s.room, "slowed-after", "after");
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    wsc_close(a);
    wsc_close(b);
    wsc_close(c);
}

static void postgres_down_fails_fast_and_recovers(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *a, *b;
    it_pair(&w, 0, &a, 1, &b);
    assert_int_equal(it_env("stop-pg"), 0);
    uint64_t t0 = it_now_ms();
    cJSON *r = it_send(a, w.room, "pg-1", "while postgres is down");
    assert_string_equal(wsc_err_code(r), "unavailable");
    cJSON_Delete(r);
    r = wsc_request(a, 5000, "\"op\":\"history\",\"room\":\"%s\"", w.room);
    assert_string_equal(wsc_err_code(r), "unavailable");
    cJSON_Delete(r);
    assert_true(it_now_ms() - t0 < 5000);
    /* The connection stays up. */
    r = wsc_request(a, 3000, "\"op\":\"ping\"");
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    int rc = it_env("start-pg");
    assert_int_equal(rc, 0);
    /* The client retries with the same client_msg_id until it is stored. */
    int64_t seq = -1;
    for (int i = 0; i < 100 && seq < 0; i++) {
        r = it_send(a, w.room, "pg-1", "while postgres is down");
        if (!wsc_err_code(r))
            seq = wsc_int(r, "ok.seq");
        else {
            assert_string_equal(wsc_err_code(r), "unavailable");
            usleep(200000);
        }
        cJSON_Delete(r);
    }
    assert_int_equal(seq, 1);
    cJSON *m = wsc_wait_push(b, "message", 5000);
    assert_non_null(m);
    assert_int_equal(wsc_int(m, "seq"), 1);
    cJSON_Delete(m);
    assert_null(wsc_wait_push(b, "message", 300));
    wsc_close(a);
    wsc_close(b);
}

/* The same outage with the room's rules already cached (sends succeeded
 * before it), so nothing but the write itself touches PostgreSQL: every send
 * is answered `unavailable` at once, whether the writer lane is down or
 * reconnecting (a send queued on a lane that is not up waited for the next
 * failed reconnect: up to 0.8 s). Once the gateway is ready again, the first
 * send and the first read succeed: the new connections prepared their
 * statements before taking queries (a query sent before would fail
 * `internal`: "prepared statement does not exist"). */
static void postgres_down_warm_room_fails_fast_and_first_send_after_succeeds(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *a, *b;
    it_pair(&w, 0, &a, 1, &b);
    for (int i = 0; i < 3; i++) { /* the rules are cached, the writer lane is warm */
        char cmid[16];
        snprintf(cmid, sizeof cmid, "warm-%d", i);
        cJSON *r = it_send(a, w.room, cmid, "before the outage");
        assert_null(wsc_err_code(r));
        cJSON_Delete(r);
    }
    assert_int_equal(it_env("stop-pg"), 0);
    /* One send at a time over ~2 s (the lanes fail their reconnects with
     * growing backoff meanwhile: down and connecting are both covered). */
    enum { N = 12, BURST = 50 };
    uint64_t worst = 0;
    for (int i = 0; i < N; i++) {
        char cmid[16];
        snprintf(cmid, sizeof cmid, "down-%d", i);
        uint64_t t0 = it_now_ms();
        cJSON *r = it_send(a, w.room, cmid, "while postgres is down");
        uint64_t dt = it_now_ms() - t0;
        assert_non_null(r); /* answered (it_send waits 5 s) */
        assert_string_equal(wsc_err_code(r), "unavailable");
        cJSON_Delete(r);
        if (dt > worst) worst = dt;
        usleep(150000);
    }
    /* A pipelined burst: every send answered, all of them promptly. */
    uint64_t t0 = it_now_ms();
    for (int i = 0; i < BURST; i++) {
        char msg[200];
        int n =
            snprintf(msg, sizeof msg,
                     "{\"id\":%d,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"burst-%d\","
                     "\"body\":\"x\"}",
                     9000 + i, w.room, i);
        assert_int_equal(wsc_send_text(a, msg, (size_t)n), 0);
    }
    for (int i = 0; i < BURST; i++) {
        cJSON *r = wsc_next_reply(a, 3000);
        assert_non_null(r);
        assert_string_equal(wsc_err_code(r), "unavailable");
        cJSON_Delete(r);
    }
    uint64_t burst = it_now_ms() - t0;
    fprintf(stderr, "slowest unavailable answer %llu ms; a burst of %d answered in %llu ms\n",
            (unsigned long long)worst, BURST, (unsigned long long)burst);
    assert_true(worst < 500);
    assert_true(burst < 500);
    assert_int_equal(it_env("start-pg"), 0);
    /* The gateway is ready once every lane has reconnected and prepared. */
    assert_int_equal(it_wait_ready(IT.gw[0], 10000), 0);
    cJSON *r = it_send(a, w.room, "after-restart", "the first after the outage");
    assert_null(wsc_err_code(r));
    assert_int_equal(wsc_int(r, "ok.seq"), 4);
    cJSON_Delete(r);
    r = wsc_request(a, 3000, "\"op\":\"history\",\"room\":\"%s\"", w.room);
    assert_null(wsc_err_code(r));
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "messages")), 4);
    cJSON_Delete(r);
    /* nothing refused was stored */
    assert_string_equal(it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s'", w.room), "4");
    wsc_close(a);
    wsc_close(b);
}

/* Reads whatever the watcher has, so it never becomes a slow consumer
 * itself; counts message pushes and checks their order. */
static void drain_watcher(struct wsc *wt, int64_t *next, int *count)
{
    cJSON *m;
    while ((m = wsc_next(wt, 0))) {
        const char *p = wsc_str(m, "push");
        if (p && !strcmp(p, "message")) {
            assert_int_equal(wsc_int(m, "seq"), *next);
            (*next)++;
            (*count)++;
        }
        cJSON_Delete(m);
    }
}

static void slow_consumer_is_dropped_others_unaffected(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 3, NULL);
    struct wsc_opts small = {.rcvbuf = 4096};
    struct wsc *slow = wsc_connect(IT.gw[0], &small, NULL);
    assert_non_null(slow);
    cJSON_Delete(wsc_request(slow, 3000, "\"op\":\"auth\",\"token\":\"%s\"", w.tok[0]));
    cJSON_Delete(it_join(slow, w.room, -1));
    struct wsc *watch = it_connect_auth(0, w.tok[1]);
    cJSON_Delete(it_join(watch, w.room, -1));
    struct wsc *sender = it_connect_auth(1, w.tok[2]);
    cJSON_Delete(it_join(sender, w.room, -1));
    double slow0 = it_metric(0, "parley_connections_closed_total{reason=\"slow_consumer\"}");
    long rss0 = it_rss_kb(IT.gw_pid[0]);
    static char body[4001];
    memset(body, 'b', 4000);
    enum { N = 2500 }; /* 10 MB: far over 256 KiB of out-queue plus socket buffers */
    int64_t next = 1;
    int seen = 0;
    char cmid[32];
    for (int i = 0; i < N; i++) {
        snprintf(cmid, sizeof cmid, "flood-%d", i);
        cJSON *r = it_send(sender, w.room, cmid, body);
        assert_null(wsc_err_code(r));
        cJSON_Delete(r);
        drain_watcher(watch, &next, &seen);
        /* The sender's own pushes are not read either: drain them too. */
        cJSON *o;
        while ((o = wsc_next(sender, 0)))
            cJSON_Delete(o);
    }
    long rss1 = it_rss_kb(IT.gw_pid[0]);
    /* The watcher gets every message, in order. */
    uint64_t deadline = it_now_ms() + 10000;
    while (seen < N && it_now_ms() < deadline) {
        cJSON *m = wsc_next(watch, 200);
        if (!m) continue;
        const char *p = wsc_str(m, "push");
        if (p && !strcmp(p, "message")) {
            assert_int_equal(wsc_int(m, "seq"), next);
            next++;
            seen++;
        }
        cJSON_Delete(m);
    }
    assert_int_equal(seen, N);
    /* The slow one is cut off once its out-queue has not moved for
     * --outq-stall-ms (10 s): a reading member would be paced instead, so
     * it must not read before then. Reading now ends in a close, long
     * before it could have received everything. */
    uint64_t t0 = it_now_ms();
    while (it_metric(0, "parley_connections_closed_total{reason=\"slow_consumer\"}") == slow0 &&
           it_now_ms() - t0 < 30000)
        usleep(200000);
    int code = wsc_wait_closed(slow, 10000);
    assert_true(code == 1008 || code == -1);
    /* Memory stayed bounded while 10 MB went through. */
    assert_true(rss0 > 0 && rss1 > 0);
    assert_true(rss1 - rss0 < 64 * 1024);
    wsc_close(slow);
    wsc_close(watch);
    wsc_close(sender);
}

/* The gateway leaves idle checks to the kernel (lws's own walks every
 * connection per sign-in, ws.c): a member's server-side socket carries a
 * TCP keepalive timer, due in about 300 s. Read from /proc/net/tcp: local
 * port, state 01 (established), then "tr:when" where tr 2 is keepalive and
 * when is in clock ticks. */
static void idle_peers_are_watched_by_tcp_keepalive(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *a = it_member(0, w.tok[0], w.room);
    usleep(200000);
    FILE *f = fopen("/proc/net/tcp", "r");
    assert_non_null(f);
    char line[512];
    int keepalive = 0, other = 0;
    long ticks = sysconf(_SC_CLK_TCK);
    while (fgets(line, sizeof line, f)) {
        unsigned lport, st, tr;
        unsigned long when;
        if (sscanf(line, " %*d: %*x:%x %*x:%*x %x %*x:%*x %x:%lx", &lport, &st, &tr, &when) != 4 ||
            (int)lport != IT.gw[0] || st != 1)
            continue;
        if (tr == 2 && when > 250UL * (unsigned long)ticks && when <= 300UL * (unsigned long)ticks)
            keepalive++;
        else
            other++;
    }
    fclose(f);
    print_message("server-side sockets with a keepalive due in 250-300 s: %d, others %d\n",
                  keepalive, other);
    assert_true(keepalive >= 1);
    wsc_close(a);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(redis_restart_catches_up_from_postgres),
        cmocka_unit_test(postgres_down_fails_fast_and_recovers),
        cmocka_unit_test(postgres_down_warm_room_fails_fast_and_first_send_after_succeeds),
        cmocka_unit_test(slow_consumer_is_dropped_others_unaffected),
        cmocka_unit_test(idle_peers_are_watched_by_tcp_keepalive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
