/* Integration: what the group-commit batcher must keep true when several
 * sends share ONE batch (one statement, one transaction), against real
 * PostgreSQL, Redis and parleyd. Each test starts its own gateway whose
 * batch holds exactly the burst it sends (--batch-max) and whose linger is
 * long (--batch-delay-us 1 s). A primer send leaves first, alone (the
 * batcher was quiet); the burst that follows it waits out the linger, so
 * it leaves as one batch the moment its last send arrives; the write-batch
 * metrics then confirm it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itest.h"

#define LINGER_US "1000000" /* the most the configuration takes */

struct reply {
    const char *err; /* error code, NULL when ok (points into a static copy) */
    int64_t seq;
    bool duplicate;
};

/* Sends n pipelined sends on c (ids first_id..): rooms[i], cmids[i],
 * bodies[i], without waiting between them (collect_replies reads the answers). */
static void burst(struct wsc *c, int n, int first_id, const char *const *rooms,
                  const char *const *cmids, const char *const *bodies)
{
    for (int i = 0; i < n; i++) {
        char msg[512];
        int len = snprintf(msg, sizeof msg,
                           "{\"id\":%d,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"%s\","
                           "\"body\":\"%s\"}",
                           first_id + i, rooms[i], cmids[i], bodies[i]);
        assert_int_equal(wsc_send_text(c, msg, (size_t)len), 0);
    }
}

static void collect_replies(struct wsc *c, int n, int first_id, struct reply *out)
{
    static char codes[64][32];
    for (int i = 0; i < n; i++)
        out[i].err = "no reply";
    for (int got = 0; got < n; got++) {
        cJSON *r = wsc_next_reply(c, 15000);
        if (!r) fail_msg("%d of %d replies arrived", got, n);
        int k = (int)wsc_int(r, "id") - first_id;
        assert_true(k >= 0 && k < n && k < 64);
        const char *code = wsc_err_code(r);
        if (code) {
            snprintf(codes[k], sizeof codes[k], "%s", code);
            out[k].err = codes[k];
        } else {
            out[k].err = NULL;
            out[k].seq = wsc_int(r, "ok.seq");
            out[k].duplicate =
                cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "duplicate"));
        }
        cJSON_Delete(r);
    }
}

static int64_t last_seq(const char *room)
{
    return atoll(it_sqlf("SELECT last_seq FROM rooms WHERE id = '%s'", room));
}

/* The write batches a gateway formed so far (committed or not), and the
 * sends they held. */
static void batches(int port, double *count, double *items)
{
    *count = it_metric_port(port, "parley_write_batch_size_count");
    *items = it_metric_port(port, "parley_write_batch_size_sum");
}

/* With the in-batch duplicate check off by one, the two copies of a send
 * both reached the statement, broke the unique key, and every unrelated
 * send of the batch failed with `internal`. The copies come first and
 * adjacent (the case an off-by-one misses), and once more apart. */
static void duplicate_cmid_inside_one_batch(void **state)
{
    (void)state;
    enum { N = 8 };
    int port;
    it_own_gateway("gw-batch-dup", &port, "--batch-max", "8", "--batch-delay-us", LINGER_US, NULL);
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *c = it_connect_port(port, NULL, w.tok[0]);
    assert_non_null(c);
    cJSON_Delete(it_join(c, w.room, -1));
    /* Counted before the primer, so that only its round trip comes between
     * its batch leaving and the burst (the burst must come within the
     * linger): two batches, the primer's and the burst's. */
    int64_t base = last_seq(w.room) + 1; /* the primer's seq */
    double b0, s0, b1, s1;
    batches(port, &b0, &s0);
    it_prime_batch(c, w.room, "primer");

    const char *rooms[N];
    for (int i = 0; i < N; i++)
        rooms[i] = w.room;
    static const char *const cmids[N] = {"x", "x", "u1", "y", "u2", "u3", "u4", "y"};
    static const char *const bodies[N] = {"x one", "x two", "u1", "y one",
                                          "u2",    "u3",    "u4", "y two"};
    struct reply r[N];
    burst(c, N, 100, rooms, cmids, bodies);
    collect_replies(c, N, 100, r);

    batches(port, &b1, &s1);
    if (b1 - b0 != 2 || s1 - s0 != N + 1)
        fail_msg("the burst did not share one batch: %.0f batches, %.0f sends (the primer's"
                 " included)",
                 b1 - b0, s1 - s0);
    char failed[512] = "";
    for (int i = 0; i < N; i++)
        if (r[i].err)
            snprintf(failed + strlen(failed), sizeof failed - strlen(failed), " %d (%s): %s;", i,
                     cmids[i], r[i].err);
    if (failed[0]) fail_msg("sends of the batch failed:%s", failed);
    /* Each pair: one stored, one answered as its duplicate with the same seq. */
    static const int pairs[2][2] = {{0, 1}, {3, 7}};
    for (int p = 0; p < 2; p++) {
        const struct reply *a = &r[pairs[p][0]], *b = &r[pairs[p][1]];
        assert_int_equal(a->seq, b->seq);
        assert_true(a->duplicate != b->duplicate);
        assert_string_equal(
            it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s' AND client_msg_id = '%s'",
                    w.room, cmids[pairs[p][0]]),
            "1");
        /* The stored body is the copy answered as the original. */
        const char *stored = a->duplicate ? bodies[pairs[p][1]] : bodies[pairs[p][0]];
        assert_string_equal(it_sqlf("SELECT body FROM messages WHERE room_id = '%s' AND seq = %lld",
                                    w.room, (long long)a->seq),
                            stored);
    }
    /* Six rows, seqs dense; the unrelated sends are not duplicates. */
    bool seen[N] = {false};
    for (int i = 0; i < N; i++) {
        int64_t k = r[i].seq - base - 1;
        if (k < 0 || k >= 6)
            fail_msg("send %d got seq %lld outside %lld..%lld", i, (long long)r[i].seq,
                     (long long)base + 1, (long long)base + 6);
        seen[k] = true;
        if (cmids[i][0] == 'u') assert_false(r[i].duplicate);
    }
    for (int k = 0; k < 6; k++)
        if (!seen[k]) fail_msg("seq %lld was not given to any send", (long long)(base + 1 + k));
    assert_int_equal(last_seq(w.room), base + 6);
    /* Delivered once each: six pushes, none for the in-batch copy. */
    int pushes = 0;
    cJSON *m;
    while ((m = wsc_wait_push(c, "message", pushes < 6 ? 5000 : 300))) {
        if (wsc_int(m, "seq") == base) { /* the primer's */
            cJSON_Delete(m);
            continue;
        }
        assert_int_equal(wsc_int(m, "seq"), base + 1 + pushes);
        pushes++;
        cJSON_Delete(m);
    }
    assert_int_equal(pushes, 6);
    wsc_close(c);
}

/* Fails the test naming the first gap or repeat in room's seqs. */
static void assert_dense(const char *what, const char *room, int64_t base, const int64_t *seqs,
                         int n)
{
    bool seen[64] = {false};
    for (int i = 0; i < n; i++) {
        int64_t k = seqs[i] - base - 1;
        if (k < 0 || k >= n)
            fail_msg("%s, room %.8s: seq %lld is outside %lld..%lld (a skip)", what, room,
                     (long long)seqs[i], (long long)base + 1, (long long)base + n);
        if (seen[k]) fail_msg("%s, room %.8s: seq %lld twice", what, room, (long long)seqs[i]);
        seen[k] = true;
    }
    for (int k = 0; k < n; k++)
        if (!seen[k])
            fail_msg("%s, room %.8s: gap, seq %lld missing of %lld..%lld", what, room,
                     (long long)(base + 1 + k), (long long)base + 1, (long long)base + n);
}

/* Two rooms in one batch: each room's seqs are its own, dense, in the order
 * of that room's sends, whatever the other room took. Two senders, the
 * rooms interleaved unevenly. */
static void two_rooms_share_a_batch_seqs_dense(void **state)
{
    (void)state;
    enum { PER = 12, N = 2 * PER };
    int port;
    it_own_gateway("gw-batch-rooms", &port, "--batch-max", "24", "--batch-delay-us", LINGER_US,
                   NULL);
    struct it_world w;
    it_world(&w, 2, NULL);
    char room_b[40];
    snprintf(room_b, sizeof room_b, "%s", it_admin("create-room %s second workspace", w.ws));
    const char *room[2] = {w.room, room_b};
    struct wsc *c[2];
    for (int p = 0; p < 2; p++) {
        c[p] = it_connect_port(port, NULL, w.tok[p]);
        assert_non_null(c[p]);
        cJSON_Delete(it_join(c[p], room[0], -1));
        cJSON_Delete(it_join(c[p], room[1], -1));
    }
    int64_t base[2] = {last_seq(room[0]), last_seq(room[1]) + 1}; /* + the primer */
    double b0, s0, b1, s1;
    batches(port, &b0, &s0);
    it_prime_batch(c[0], room[1], "primer"); /* as in duplicate_cmid_inside_one_batch */

    /* Per sender PER sends: A A B A B B A B ... */
    static const int pattern[PER] = {0, 0, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1};
    const char *rooms[2][PER], *cmids[2][PER], *bodies[2][PER];
    static char cmid_buf[2][PER][16];
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < PER; i++) {
            rooms[p][i] = room[pattern[i] ^ p]; /* the second sender mirrors the first */
            snprintf(cmid_buf[p][i], 16, "s%d-%d", p, i);
            cmids[p][i] = cmid_buf[p][i];
            bodies[p][i] = cmid_buf[p][i];
        }
    burst(c[0], PER, 200, rooms[0], cmids[0], bodies[0]);
    burst(c[1], PER, 300, rooms[1], cmids[1], bodies[1]);
    struct reply r[2][PER];
    collect_replies(c[0], PER, 200, r[0]);
    collect_replies(c[1], PER, 300, r[1]);

    batches(port, &b1, &s1);
    if (b1 - b0 != 2 || s1 - s0 != N + 1)
        fail_msg("the sends did not share one batch: %.0f batches, %.0f sends (the primer's"
                 " included)",
                 b1 - b0, s1 - s0);
    int64_t seqs[2][N];
    int n[2] = {0, 0};
    int64_t prev[2][2] = {{0, 0}, {0, 0}}; /* per sender and room */
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < PER; i++) {
            if (r[p][i].err) fail_msg("sender %d send %d failed: %s", p, i, r[p][i].err);
            assert_false(r[p][i].duplicate);
            int k = rooms[p][i] == room[0] ? 0 : 1;
            /* One sender's sends to one room keep their order. */
            if (r[p][i].seq <= prev[p][k])
                fail_msg("sender %d, room %d: send %d got seq %lld after %lld", p, k, i,
                         (long long)r[p][i].seq, (long long)prev[p][k]);
            prev[p][k] = r[p][i].seq;
            seqs[k][n[k]++] = r[p][i].seq;
        }
    assert_int_equal(n[0], PER);
    assert_int_equal(n[1], PER);
    for (int k = 0; k < 2; k++) {
        assert_dense("acknowledged", room[k], base[k], seqs[k], n[k]);
        assert_int_equal(last_seq(room[k]), base[k] + PER);
        /* What PostgreSQL holds and what a member receives: the same seqs. */
        int64_t stored[PER];
        for (int i = 0; i < PER; i++)
            stored[i] = atoll(it_sqlf("SELECT seq FROM messages WHERE room_id = '%s'"
                                      " AND seq > %lld ORDER BY seq OFFSET %d LIMIT 1",
                                      room[k], (long long)base[k], i));
        assert_dense("stored", room[k], base[k], stored, PER);
    }
    /* A member of both rooms receives each room's seqs, dense. */
    int64_t pushed[2][N];
    int got[2] = {0, 0};
    uint64_t deadline = it_now_ms() + 10000;
    while (got[0] + got[1] < N && it_now_ms() < deadline) {
        cJSON *m = wsc_wait_push(c[1], "message", (int)(deadline - it_now_ms()));
        if (!m) break;
        int k = !strcmp(wsc_str(m, "room"), room[0]) ? 0 : 1;
        if (k == 1 && wsc_int(m, "seq") == base[1]) { /* the primer's */
            cJSON_Delete(m);
            continue;
        }
        if (got[k] < N) pushed[k][got[k]++] = wsc_int(m, "seq");
        cJSON_Delete(m);
    }
    for (int k = 0; k < 2; k++) {
        assert_int_equal(got[k], PER);
        assert_dense("delivered", room[k], base[k], pushed[k], got[k]);
    }
    for (int p = 0; p < 2; p++)
        wsc_close(c[p]);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(duplicate_cmid_inside_one_batch),
        cmocka_unit_test(two_rooms_share_a_batch_seqs_dense),
    };
    return cmocka_run_group_tests(tests, NULL, it_kill_spawned);
}
