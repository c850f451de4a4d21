/* Integration: fan-out across two gateways, idempotent retries, recovery
 * with since, and history paging, against real PostgreSQL, Redis and parleyd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

/* Collects message pushes for room until n arrived or timeout; seqs into out. */
static int collect(struct wsc *c, const char *room, int64_t *seqs, char (*cmids)[32], int n,
                   int timeout_ms)
{
    int got = 0;
    uint64_t deadline = it_now_ms() + (uint64_t)timeout_ms;
    while (got < n && it_now_ms() < deadline) {
        cJSON *m = wsc_wait_push(c, "message", (int)(deadline - it_now_ms()));
        if (!m) break;
        if (!strcmp(wsc_str(m, "room"), room)) {
            seqs[got] = wsc_int(m, "seq");
            if (cmids) snprintf(cmids[got], 32, "%s", wsc_str(m, "client_msg_id"));
            got++;
        }
        cJSON_Delete(m);
    }
    return got;
}

static void fanout_two_gateways_same_order_exactly_once(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *a, *b;
    int64_t base = it_pair(&w, 0, &a, 1, &b);
    enum { N = 300 };
    static int64_t acked[N];
    static char sent_cmid[N][32];
    for (int i = 0; i < N; i++) {
        struct wsc *from = i % 2 ? b : a;
        snprintf(sent_cmid[i], 32, "f-%d", i);
        cJSON *r = it_send(from, w.room, sent_cmid[i], "hello");
        assert_null(wsc_err_code(r));
        acked[i] = wsc_int(r, "ok.seq");
        assert_false(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "duplicate")));
        cJSON_Delete(r);
    }
    static int64_t sa[N + 1], sb[N + 1];
    static char ca[N + 1][32], cb[N + 1][32];
    assert_int_equal(collect(a, w.room, sa, ca, N, 10000), N);
    assert_int_equal(collect(b, w.room, sb, cb, N, 10000), N);
    for (int i = 0; i < N; i++) {
        /* Dense, in order, identical on both gateways. */
        assert_int_equal(sa[i], base + 1 + i);
        assert_int_equal(sb[i], sa[i]);
        assert_string_equal(ca[i], cb[i]);
    }
    /* The acknowledged seq of every send is the seq its push carried. */
    for (int i = 0; i < N; i++) {
        int64_t k = acked[i] - base - 1;
        assert_true(k >= 0 && k < N);
        assert_string_equal(ca[k], sent_cmid[i]);
    }
    /* Nothing more arrives: exactly once. */
    assert_int_equal(collect(a, w.room, sa, NULL, 1, 300), 0);
    assert_int_equal(collect(b, w.room, sb, NULL, 1, 300), 0);
    wsc_close(a);
    wsc_close(b);
}

static void retry_returns_original_seq(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *a, *b;
    it_pair(&w, 0, &a, 1, &b);
    cJSON *r1 = it_send(a, w.room, "retry-1", "first");
    assert_null(wsc_err_code(r1));
    int64_t seq = wsc_int(r1, "ok.seq");
    cJSON *r2 = it_send(a, w.room, "retry-1", "first (again)");
    assert_int_equal(wsc_int(r2, "ok.seq"), seq);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r2, "ok"), "duplicate")));
    /* The same retry through the other gateway, on a new connection. */
    struct wsc *a2 = it_connect_auth(1, w.tok[0]);
    cJSON_Delete(it_join(a2, w.room, -1));
    cJSON *r3 = it_send(a2, w.room, "retry-1", "first (third time)");
    assert_int_equal(wsc_int(r3, "ok.seq"), seq);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r3, "ok"), "duplicate")));
    /* B got it exactly once, with the original body. */
    cJSON *m = wsc_wait_push(b, "message", 3000);
    assert_non_null(m);
    assert_int_equal(wsc_int(m, "seq"), seq);
    assert_string_equal(wsc_str(m, "body"), "first");
    cJSON_Delete(m);
    int64_t extra[4];
    assert_int_equal(collect(b, w.room, extra, NULL, 1, 500), 0);
    /* Stored once. */
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM messages WHERE room_id = '%s' AND client_msg_id = 'retry-1'",
             w.room);
    assert_string_equal(it_sql(sql), "1");
    cJSON_Delete(r1);
    cJSON_Delete(r2);
    cJSON_Delete(r3);
    wsc_close(a);
    wsc_close(a2);
    wsc_close(b);
}

static void rejoin_with_since_replays_then_live(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *a, *b;
    it_pair(&w, 0, &a, 0, &b);
    char cmid[32];
    for (int i = 0; i < 5; i++) {
        snprintf(cmid, sizeof cmid, "pre-%d", i);
        cJSON_Delete(it_send(a, w.room, cmid, "before"));
    }
    int64_t seen[64];
    assert_int_equal(collect(b, w.room, seen, NULL, 5, 5000), 5);
    int64_t last = seen[4];
    wsc_close(b);
    for (int i = 0; i < 20; i++) {
        snprintf(cmid, sizeof cmid, "gap-%d", i);
        cJSON_Delete(it_send(a, w.room, cmid, "while away"));
    }
    /* Back on the other gateway, from where it left. */
    b = it_connect_auth(1, w.tok[1]);
    cJSON *j = it_join(b, w.room, last);
    assert_null(wsc_err_code(j));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "ok"), "recovered")));
    assert_true(wsc_int(j, "ok.last_seq") >= last + 20);
    cJSON_Delete(j);
    /* Live messages sent while the replay may still run. */
    for (int i = 0; i < 5; i++) {
        snprintf(cmid, sizeof cmid, "live-%d", i);
        cJSON_Delete(it_send(a, w.room, cmid, "live"));
    }
    int64_t got[32];
    assert_int_equal(collect(b, w.room, got, NULL, 25, 5000), 25);
    for (int i = 0; i < 25; i++)
        assert_int_equal(got[i], last + 1 + i);
    assert_int_equal(collect(b, w.room, got, NULL, 1, 300), 0);
    wsc_close(a);
    wsc_close(b);
}

static void too_far_behind_is_not_recovered(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 2, NULL);
    struct wsc *a = it_connect_auth(0, w.tok[0]);
    cJSON_Delete(it_join(a, w.room, -1));
    char cmid[32];
    /* The fixture's replay limit is 200. */
    for (int i = 0; i < 205; i++) {
        snprintf(cmid, sizeof cmid, "far-%d", i);
        cJSON_Delete(it_send(a, w.room, cmid, "x"));
    }
    struct wsc *b = it_connect_auth(1, w.tok[1]);
    cJSON *j = it_join(b, w.room, 0);
    assert_null(wsc_err_code(j));
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "ok"), "recovered")));
    int64_t last = wsc_int(j, "ok.last_seq");
    assert_int_equal(last, 205);
    cJSON_Delete(j);
    cJSON_Delete(it_send(a, w.room, "after-far", "live"));
    cJSON *m = wsc_wait_push(b, "message", 3000);
    assert_non_null(m);
    assert_int_equal(wsc_int(m, "seq"), last + 1); /* live only, no replay */
    cJSON_Delete(m);
    wsc_close(a);
    wsc_close(b);
}

static void history_pages(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *a = it_connect_auth(0, w.tok[0]);
    cJSON_Delete(it_join(a, w.room, -1));
    char cmid[32];
    for (int i = 1; i <= 30; i++) {
        snprintf(cmid, sizeof cmid, "h-%d", i);
        cJSON_Delete(it_send(a, w.room, cmid, "history"));
    }
    struct {
        const char *args;
        int first, count;
        bool more;
    } cases[] = {
        {"\"limit\":10", 21, 10, true},          {"\"before\":21,\"limit\":10", 11, 10, true},
        {"\"before\":11", 1, 10, false},         {"\"after\":25,\"limit\":10", 26, 5, false},
        {"\"after\":0,\"limit\":3", 1, 3, true}, {"\"before\":1", 0, 0, false},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        cJSON *r =
            wsc_request(a, 5000, "\"op\":\"history\",\"room\":\"%s\",%s", w.room, cases[k].args);
        assert_null(wsc_err_code(r));
        cJSON *msgs = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "messages");
        assert_int_equal(cJSON_GetArraySize(msgs), cases[k].count);
        for (int i = 0; i < cases[k].count; i++) {
            cJSON *m = cJSON_GetArrayItem(msgs, i);
            assert_int_equal(wsc_int(m, "seq"), cases[k].first + i);
            snprintf(cmid, sizeof cmid, "h-%d", cases[k].first + i);
            assert_string_equal(wsc_str(m, "client_msg_id"), cmid);
            assert_string_equal(wsc_str(m, "sender"), w.person[0]);
        }
        assert_int_equal(
            cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "has_more")),
            cases[k].more);
        cJSON_Delete(r);
    }
    wsc_close(a);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fanout_two_gateways_same_order_exactly_once),
        cmocka_unit_test(retry_returns_original_seq),
        cmocka_unit_test(rejoin_with_since_replays_then_live),
        cmocka_unit_test(too_far_behind_is_not_recovered),
        cmocka_unit_test(history_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
