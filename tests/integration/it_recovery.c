/* Integration: recovery of a large backlog. A client that reads at a normal
 * speed gets every message it missed, in order, once, and is not closed,
 * however large the bodies: after a join with since (replay_limit messages of
 * the maximum body), after the bus resubscribes (catch-up from PostgreSQL),
 * and after its gateway was stopped while others sent (a burst of queued
 * Redis messages). A client that does not read at all is still cut off. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "itest.h"

/* The fixture's settings (env.sh) and the protocol's default body limit. */
enum { REPLAY_LIMIT = 200, MAX_BODY = 4096 };

#define SLOW_SERIES "parley_connections_closed_total{reason=\"slow_consumer\"}"

/* A body of exactly MAX_BODY bytes as JSON string content. Odd messages are
 * made of quotes, which the push doubles in size when it escapes them (8 KiB
 * on the wire): pacing must count bytes, not messages. */
static const char *big_body(int i, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "m%05d ", i);
    size_t len = (size_t)n; /* decoded bytes so far */
    while (len < MAX_BODY && (size_t)n + 3 < cap) {
        if (i % 2) {
            buf[n++] = '\\';
            buf[n++] = '"';
        } else {
            buf[n++] = 'x';
        }
        len++;
    }
    buf[n] = '\0';
    return buf;
}

/* Sends count messages of the maximum body through c; returns the last seq. */
static int64_t send_big(struct wsc *c, const char *room, const char *tag, int from, int count)
{
    static char body[3 * MAX_BODY];
    char cmid[48];
    int64_t seq = 0;
    for (int i = from; i < from + count; i++) {
        snprintf(cmid, sizeof cmid, "%s-%d", tag, i);
        cJSON *r = it_send(c, room, cmid, big_body(i, body, sizeof body));
        if (wsc_err_code(r)) fprintf(stderr, "send %s: %s\n", cmid, wsc_str(r, "error.message"));
        assert_null(wsc_err_code(r));
        seq = wsc_int(r, "ok.seq");
        cJSON_Delete(r);
        /* Its own pushes are read too, so the sender is never the slow one. */
        cJSON *o;
        while ((o = wsc_next(c, 0)))
            cJSON_Delete(o);
    }
    return seq;
}

/* Reads c like an ordinary client until it has had every message of room up
 * to last or timeout_ms passed. Every message must be the next seq (no gap,
 * no duplicate) with a body of the full size. Returns the next seq expected. */
static int64_t read_until(struct wsc *c, const char *room, int64_t next, int64_t last,
                          int timeout_ms)
{
    uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
    while (next <= last && it_now_ms() < deadline && !wsc_is_closed(c)) {
        cJSON *m = wsc_next(c, 200);
        if (!m) continue;
        const char *p = wsc_str(m, "push");
        if (p && !strcmp(p, "message")) {
            assert_string_equal(wsc_str(m, "room"), room);
            assert_int_equal(wsc_int(m, "seq"), next);
            assert_int_equal(strlen(wsc_str(m, "body")), MAX_BODY);
            next++;
        }
        cJSON_Delete(m);
    }
    return next;
}

static void large_backlog_is_recovered_with_since(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *a, *b;
    int64_t since = it_pair(&w, 0, &a, 1, &b);
    wsc_close(b); /* b goes away */
    int64_t last = send_big(a, w.room, "away", 0, REPLAY_LIMIT);
    assert_int_equal(last, since + REPLAY_LIMIT);
    double slow0 = it_metric(1, SLOW_SERIES);
    /* Back on the other gateway: everything within replay_limit is owed. */
    b = it_connect_auth(1, w.tok[1]);
    cJSON *j = it_join(b, w.room, since);
    assert_null(wsc_err_code(j));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "ok"), "recovered")));
    cJSON_Delete(j);
    int64_t next = read_until(b, w.room, since + 1, last, 60000);
    assert_false(wsc_is_closed(b));
    assert_int_equal(next, last + 1);
    /* Then live, seamlessly, also for a second large burst. */
    int64_t more = send_big(a, w.room, "live", 0, 80);
    next = read_until(b, w.room, next, more, 60000);
    assert_false(wsc_is_closed(b));
    assert_int_equal(next, more + 1);
    cJSON *extra = wsc_wait_push(b, "message", 300);
    assert_null(extra); /* nothing twice */
    assert_true(it_metric(1, SLOW_SERIES) == slow0);
    /* The connection still answers. */
    cJSON *r = wsc_request(b, 3000, "\"op\":\"ping\"");
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    wsc_close(a);
    wsc_close(b);
}

/* The bus goes away while the room fills with large messages; when it comes
 * back the gateway catches the room up from PostgreSQL, and a member that
 * reads normally gets it all without being cut off. */
static void resubscribe_catchup_of_large_backlog(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *a, *b;
    int64_t base = it_pair(&w, 1, &a, 0, &b);
    double slow0 = it_metric(0, SLOW_SERIES);
    assert_int_equal(it_env("stop-redis"), 0);
    int64_t last = send_big(a, w.room, "outage", 0, REPLAY_LIMIT + 100);
    assert_int_equal(it_env("start-redis"), 0);
    int64_t next = read_until(b, w.room, base + 1, last, 60000);
    assert_false(wsc_is_closed(b));
    assert_int_equal(next, last + 1);
    assert_null(wsc_wait_push(b, "message", 300));
    assert_true(it_metric(0, SLOW_SERIES) == slow0);
    wsc_close(a);
    wsc_close(b);
}

/* A gateway stopped (SIGSTOP) while another takes large messages finds a
 * burst of them queued in Redis when it continues: its members that read
 * get every one, through the paced path, instead of being cut off. */
static void stopped_gateway_delivers_its_backlog(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *a, *b;
    int64_t base = it_pair(&w, 1, &a, 0, &b);
    double slow0 = it_metric(0, SLOW_SERIES);
    assert_int_equal(kill(IT.gw_pid[0], SIGSTOP), 0);
    int64_t last = send_big(a, w.room, "stopped", 0, REPLAY_LIMIT + 100);
    sleep(2);
    assert_int_equal(kill(IT.gw_pid[0], SIGCONT), 0);
    int64_t next = read_until(b, w.room, base + 1, last, 60000);
    assert_false(wsc_is_closed(b));
    assert_int_equal(next, last + 1);
    /* and live again afterwards */
    int64_t more = send_big(a, w.room, "after", 0, 3);
    next = read_until(b, w.room, next, more, 10000);
    assert_int_equal(next, more + 1);
    assert_null(wsc_wait_push(b, "message", 300));
    assert_true(it_metric(0, SLOW_SERIES) == slow0);
    wsc_close(a);
    wsc_close(b);
}

/* A member that never reads is still closed as a slow consumer, within a
 * bounded time, whatever path its messages take. */
static void never_reading_client_is_closed(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 2, NULL);
    struct wsc_opts small = {.rcvbuf = 4096};
    struct wsc *idle = it_connect_port(IT.gw[0], &small, w.tok[0]);
    assert_non_null(idle);
    cJSON_Delete(it_join(idle, w.room, -1));
    struct wsc *sender = it_member(1, w.tok[1], w.room);
    double slow0 = it_metric(0, SLOW_SERIES);
    /* Far more than the out-queue and the socket buffers hold. */
    int sent = 0;
    while (sent < 3000 && it_metric(0, SLOW_SERIES) == slow0) {
        send_big(sender, w.room, "flood", sent, 100);
        sent += 100;
    }
    uint64_t t0 = it_now_ms();
    while (it_metric(0, SLOW_SERIES) == slow0 && it_now_ms() - t0 < 30000)
        usleep(200000);
    assert_true(it_metric(0, SLOW_SERIES) > slow0);
    /* Reading now ends in the close, long before it could have had all. */
    int code = wsc_wait_closed(idle, 10000);
    assert_true(code == 1008 || code == -1);
    wsc_close(idle);
    wsc_close(sender);
}

/* A failed assertion must not leave the shared fixture broken. */
static int services_back(void **state)
{
    (void)state;
    kill(IT.gw_pid[0], SIGCONT);
    char out[256];
    if (it_run(out, sizeof out, "redis-cli -p %d ping", IT.redis_port) != 0 || !strstr(out, "PONG"))
        it_env("start-redis");
    return 0;
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(large_backlog_is_recovered_with_since),
        cmocka_unit_test_teardown(resubscribe_catchup_of_large_backlog, services_back),
        cmocka_unit_test_teardown(stopped_gateway_delivers_its_backlog, services_back),
        cmocka_unit_test(never_reading_client_is_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
