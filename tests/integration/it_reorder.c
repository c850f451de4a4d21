/* Integration: the reorder window end to end (real PostgreSQL, Redis and
 * parleyd). Messages are committed to PostgreSQL by the test and their bus
 * publishes crafted by it, so the order in which the gateway hears them is
 * the test's choice:
 *  - a pair published the wrong way round is HELD and given to every member
 *    in order from the bus, not read back from PostgreSQL per subscriber:
 *    the bodies are the bus copies and the gap-fetch counter does not move;
 *  - a seq that is never published is a real gap: nothing moves before the
 *    deadline (--reorder-ms), then exactly the missing seq is read from
 *    PostgreSQL and the held one follows from the window. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"
#include "parley_proto.h"

#define REORDER_MS 1500 /* the deadline the test's gateway is given */
#define GAPS "parley_recovery_gap_fetches_total"

static pid_t gw;
static int port;

static int setup(void **state)
{
    (void)state;
    char ms[16];
    snprintf(ms, sizeof ms, "%d", REORDER_MS);
    gw = it_own_gateway("gw-reorder", &port, "--reorder-ms", ms, NULL);
    return 0;
}

/* Commits n messages to the room the way the store does (the room's
 * last_seq taken under its row lock), with bodies "stored <seq>", and
 * publishes nothing. Returns the first seq. */
static int64_t commit_unpublished(const struct it_world *w, int n)
{
    const char *v = it_sqlf(
        "WITH r AS (UPDATE rooms SET last_seq = last_seq + %d WHERE id = '%s' RETURNING last_seq),"
        " i AS (INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body)"
        "  SELECT '%s', r.last_seq - %d + g, '%s', 'reorder-' || (r.last_seq - %d + g),"
        "         'stored ' || (r.last_seq - %d + g)"
        "  FROM r, generate_series(1, %d) g RETURNING seq)"
        " SELECT min(seq) FROM i",
        n, w->room, w->room, n, w->person[0], n, n, n);
    assert_non_null(v);
    return strtoll(v, NULL, 10);
}

/* The bus payload the store would publish for seq, with body "bus <seq>":
 * "<seq>\n" and the message push, in the order given, back to back on one
 * Redis connection. */
static void publish(const struct it_world *w, const int64_t *seqs, int n)
{
    redisContext *rc = redisConnect("127.0.0.1", IT.redis_port);
    assert_true(rc && !rc->err);
    char ch[64];
    snprintf(ch, sizeof ch, "room:%s", w->room);
    for (int i = 0; i < n; i++) {
        char body[32], cmid[32], p[1024];
        int bl = snprintf(body, sizeof body, "bus %lld", (long long)seqs[i]);
        int cl = snprintf(cmid, sizeof cmid, "reorder-%lld", (long long)seqs[i]);
        struct pp_message m = {
            .room = w->room,
            .seq = seqs[i],
            .sender = w->person[0],
            .client_msg_id = cmid,
            .client_msg_id_len = (size_t)cl,
            .body = body,
            .body_len = (size_t)bl,
            .ts = 1700000000000LL,
            .kind = PP_K_MESSAGE,
        };
        int h = snprintf(p, sizeof p, "%lld\n", (long long)seqs[i]);
        int jn = pp_encode_message(p + h, sizeof p - (size_t)h, &m);
        assert_true(jn > 0);
        redisAppendCommand(rc, "PUBLISH %s %b", ch, p, (size_t)(h + jn));
    }
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        assert_int_equal(redisGetReply(rc, (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        assert_true(r->integer >= 1); /* the gateway is subscribed */
        freeReplyObject(r);
    }
    redisFree(rc);
}

/* The next message push on c within ms: its seq, and its body in body. */
static int64_t next_message(struct wsc *c, int ms, char *body, size_t cap)
{
    cJSON *p = wsc_wait_push(c, "message", ms);
    if (!p) return -1;
    int64_t seq = wsc_int(p, "seq");
    const char *b = wsc_str(p, "body");
    snprintf(body, cap, "%s", b ? b : "");
    cJSON_Delete(p);
    return seq;
}

/* Two members on the test's gateway, one message sent normally (the live
 * path works and both are level); returns that message's seq. */
static int64_t two_members(struct it_world *w, struct wsc *m[2])
{
    it_world(w, 2, NULL);
    for (int i = 0; i < 2; i++) {
        m[i] = it_connect_port(port, NULL, w->tok[i]);
        assert_non_null(m[i]);
        cJSON *r = it_join(m[i], w->room, -1);
        assert_null(wsc_err_code(r));
        cJSON_Delete(r);
    }
    cJSON *r = it_send(m[0], w->room, "warm-up", "live");
    assert_null(wsc_err_code(r));
    int64_t seq = wsc_int(r, "ok.seq");
    cJSON_Delete(r);
    char body[64];
    for (int i = 0; i < 2; i++) {
        assert_int_equal(next_message(m[i], 3000, body, sizeof body), seq);
        assert_string_equal(body, "live");
    }
    return seq;
}

/* The counter once the room's own catch-ups (on subscribe) are over. */
static double settled_gap_fetches(void)
{
    double v = it_metric_port(port, GAPS), prev;
    do {
        usleep(300 * 1000);
        prev = v;
        v = it_metric_port(port, GAPS);
    } while (v != prev);
    return v;
}

static void reordered_publish_is_held_not_fetched(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *m[2];
    two_members(&w, m);
    double gaps0 = settled_gap_fetches();
    int64_t s1 = commit_unpublished(&w, 2), s2 = s1 + 1;
    const int64_t order[2] = {s2, s1}; /* the wrong way round */
    publish(&w, order, 2);
    for (int i = 0; i < 2; i++) {
        char body[64], want[64];
        for (int64_t s = s1; s <= s2; s++) {
            int64_t got = next_message(m[i], 3000, body, sizeof body);
            if (got != s)
                fprintf(stderr, "member %d: wanted seq %lld, got %lld\n", i, (long long)s,
                        (long long)got);
            assert_int_equal(got, s);
            /* From the window (the bus copy), not read back from PostgreSQL. */
            snprintf(want, sizeof want, "bus %lld", (long long)s);
            assert_string_equal(body, want);
        }
    }
    /* Well past the deadline: no fetch happened, and nothing else came. */
    usleep((REORDER_MS + 500) * 1000);
    assert_true(it_metric_port(port, GAPS) == gaps0);
    char body[64];
    for (int i = 0; i < 2; i++)
        assert_int_equal(next_message(m[i], 100, body, sizeof body), -1);
    wsc_close(m[0]);
    wsc_close(m[1]);
}

static void real_gap_is_fetched_after_the_deadline(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *m[2];
    two_members(&w, m);
    double gaps0 = settled_gap_fetches();
    int64_t s1 = commit_unpublished(&w, 2), s2 = s1 + 1;
    uint64_t t0 = it_now_ms();
    publish(&w, &s2, 1); /* s1 is never published */
    char body[64], want[64];
    /* Held: nothing before the deadline, and no fetch yet. */
    assert_int_equal(next_message(m[0], REORDER_MS * 2 / 3, body, sizeof body), -1);
    assert_true(it_metric_port(port, GAPS) == gaps0);
    for (int i = 0; i < 2; i++) {
        int64_t got = next_message(m[i], REORDER_MS + 3000, body, sizeof body);
        assert_int_equal(got, s1);
        /* The gap came from PostgreSQL, after the deadline. */
        assert_string_equal(body,
                            (snprintf(want, sizeof want, "stored %lld", (long long)s1), want));
        assert_true(it_now_ms() - t0 >= REORDER_MS - 50);
        got = next_message(m[i], 1000, body, sizeof body);
        assert_int_equal(got, s2);
        /* Only the missing seq was read: the held one is the bus copy. */
        assert_string_equal(body, (snprintf(want, sizeof want, "bus %lld", (long long)s2), want));
    }
    /* One fetch for the room, not one per member. */
    assert_true(settled_gap_fetches() == gaps0 + 1);
    wsc_close(m[0]);
    wsc_close(m[1]);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reordered_publish_is_held_not_fetched),
        cmocka_unit_test(real_gap_is_fetched_after_the_deadline),
    };
    return cmocka_run_group_tests(tests, setup, it_kill_spawned);
}
