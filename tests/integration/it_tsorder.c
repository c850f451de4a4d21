/* Integration: a room's ts never decreases along its seq (PROTOCOL.md: ts is
 * taken with the seq, at commit), whichever path assigned the seq: batched
 * sends from both gateways at once, a batch that waited for one room's lock
 * while it held none of the other's, an approved held message whose
 * statement began long before it got the room. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpc.h"
#include "itest.h"

/* Rows of room whose created_at is earlier than that of a lower seq. */
static long backwards_in_sql(const char *room)
{
    return atol(it_sqlf("SELECT count(*) FROM (SELECT created_at < lag(created_at)"
                        " OVER (ORDER BY seq) AS back FROM messages WHERE room_id = '%s') t"
                        " WHERE back",
                        room));
}

/* Pages the room's history with after and counts ts going backwards along
 * seq; *n gets the number of messages seen. */
static long backwards_in_history(struct wsc *c, const char *room, long *n)
{
    long back = 0;
    int64_t after = 0, prev_ts = 0, prev_seq = 0;
    *n = 0;
    for (;;) {
        cJSON *r =
            wsc_request(c, 5000, "\"op\":\"history\",\"room\":\"%s\",\"after\":%lld,\"limit\":100",
                        room, (long long)after);
        assert_null(wsc_err_code(r));
        cJSON *ms = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "messages");
        int k = cJSON_GetArraySize(ms);
        for (int i = 0; i < k; i++) {
            cJSON *m = cJSON_GetArrayItem(ms, i);
            int64_t seq = wsc_int(m, "seq"), ts = wsc_int(m, "ts");
            assert_true(seq > prev_seq);
            if (ts < prev_ts) back++;
            prev_ts = ts;
            prev_seq = after = seq;
            (*n)++;
        }
        bool more = cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "has_more"));
        cJSON_Delete(r);
        if (!k || !more) break;
    }
    return back;
}

struct sender {
    const struct it_world *w; /* the room and the tokens */
    int who;                  /* person index, also the gateway's parity */
    int count;                /* messages to send */
    int failures;             /* sends not acknowledged */
};

/* Sends its messages pipelined (all commands first, then the replies), so
 * both gateways' batches are large and overlap. */
static void *send_many(void *arg)
{
    struct sender *s = arg;
    struct wsc *c = it_connect_auth(s->who % 2, s->w->tok[s->who]);
    cJSON *j = c ? it_join(c, s->w->room, -1) : NULL;
    if (!j || wsc_err_code(j)) {
        s->failures = s->count;
        cJSON_Delete(j);
        if (c) wsc_close(c);
        return NULL;
    }
    cJSON_Delete(j);
    char msg[256];
    for (int i = 0; i < s->count; i++) {
        int n = snprintf(msg, sizeof msg,
                         "{\"id\":%d,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"p%d-%d\","
                         "\"body\":\"concurrent %d\"}",
                         1000 + i, s->w->room, s->who, i, i);
        if (wsc_send_text(c, msg, (size_t)n)) s->failures++;
    }
    for (int got = 0; got < s->count;) {
        cJSON *r = wsc_next_reply(c, 20000);
        if (!r) {
            s->failures += s->count - got;
            break;
        }
        if (wsc_err_code(r)) s->failures++;
        got++;
        cJSON_Delete(r);
    }
    wsc_close(c);
    return NULL;
}

static void concurrent_sends_keep_ts_in_seq_order(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 8, NULL);
    enum { SENDERS = 8, EACH = 250 };
    struct sender s[SENDERS];
    pthread_t th[SENDERS];
    for (int i = 0; i < SENDERS; i++) {
        s[i] = (struct sender){.w = &w, .who = i, .count = EACH};
        assert_int_equal(pthread_create(&th[i], NULL, send_many, &s[i]), 0);
    }
    for (int i = 0; i < SENDERS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(s[i].failures, 0);
    }
    assert_int_equal(atol(it_sqlf("SELECT last_seq FROM rooms WHERE id = '%s'", w.room)),
                     SENDERS * EACH);
    long back = backwards_in_sql(w.room);
    if (back)
        fprintf(stderr, "%ld of %d rows have a ts before the previous seq's\n", back,
                SENDERS * EACH);
    assert_int_equal(back, 0);
    struct wsc *c = it_member(0, w.tok[0], w.room);
    long n = 0;
    assert_int_equal(backwards_in_history(c, w.room, &n), 0);
    assert_int_equal(n, SENDERS * EACH);
    wsc_close(c);
}

/* The reply to command id (pushes that carry an "id" of their own, such
 * as pending, are skipped). */
static cJSON *reply_to(struct wsc *c, int64_t id)
{
    uint64_t deadline = it_now_ms() + 5000;
    while (it_now_ms() < deadline) {
        cJSON *r = wsc_next(c, 200);
        if (r && !cJSON_GetObjectItem(r, "push") && wsc_int(r, "id") == id) return r;
        cJSON_Delete(r);
    }
    return NULL;
}

/* A libpq session of the test's own, holding a row lock in a transaction. */
static PGconn *hold_lock(const char *sql)
{
    PGconn *pg = PQconnectdb(IT.pg);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    PGresult *r = PQexec(pg, "BEGIN");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    r = PQexec(pg, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    PQclear(r);
    return pg;
}

static void release_lock(PGconn *pg)
{
    PQclear(PQexec(pg, "COMMIT"));
    PQfinish(pg);
}

/* One gateway's batch holds sends to two rooms and waits for the first
 * room's lock (held here); meanwhile the other gateway stores a message in
 * the second room. The waiting batch then takes the second room's next seq:
 * its ts must not be earlier than the message before it. */
static void batch_that_waited_for_a_lock_keeps_ts_order(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 2, NULL);
    char r2[40];
    snprintf(r2, sizeof r2, "%s", it_admin("create-room %s second workspace", w.ws));
    /* Rooms are locked in id order: first is the smaller id. */
    const char *first = strcmp(w.room, r2) < 0 ? w.room : r2;
    const char *second = first == w.room ? r2 : w.room;
    struct wsc *a = it_connect_auth(0, w.tok[0]);
    cJSON_Delete(it_join(a, first, -1));
    cJSON_Delete(it_join(a, second, -1));
    struct wsc *b = it_member(1, w.tok[1], second);
    for (int round = 0; round < 3; round++) {
        char q[200], msg[2][300];
        snprintf(q, sizeof q, "SELECT 1 FROM rooms WHERE id = '%s' FOR UPDATE", first);
        PGconn *pg = hold_lock(q);
        /* Both sends leave in one write, so they land in one batch. */
        int n0 = snprintf(msg[0], sizeof msg[0],
                          "{\"id\":%d,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"f%d\","
                          "\"body\":\"first\"}",
                          10 + round, first, round);
        int n1 = snprintf(msg[1], sizeof msg[1],
                          "{\"id\":%d,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"s%d\","
                          "\"body\":\"second\"}",
                          20 + round, second, round);
        assert_int_equal(wsc_send_raw2(a, 0x81, msg[0], (size_t)n0, 0x81, msg[1], (size_t)n1), 0);
        usleep(300000); /* the batch is waiting for the lock now */
        char cmid[16];
        snprintf(cmid, sizeof cmid, "b%d", round);
        cJSON *r = it_send(b, second, cmid, "meanwhile");
        assert_null(wsc_err_code(r));
        cJSON_Delete(r);
        usleep(50000);
        release_lock(pg);
        for (int i = 0; i < 2; i++) {
            r = wsc_next_reply(a, 5000);
            assert_non_null(r);
            assert_null(wsc_err_code(r));
            cJSON_Delete(r);
        }
    }
    assert_int_equal(backwards_in_sql(second), 0);
    long n = 0;
    assert_int_equal(backwards_in_history(b, second, &n), 0);
    assert_int_equal(n, 6);
    wsc_close(a);
    wsc_close(b);
}

static const char hold_rules[] =
    "{\"rules\":[{\"id\":\"review\",\"kind\":\"words\",\"terms\":[\"contract\"],\"action\":"
    "\"hold\"}]}";

/* An approval that waited (here for the held message's row) while others
 * sent: the approved message takes the next seq, and a ts not before theirs. */
static void approval_that_waited_keeps_ts_order(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 3, NULL);
    it_sqlf("UPDATE workspace_members SET role = 'keyuser' WHERE workspace_id = '%s'"
            " AND person_id = '%s' RETURNING 1",
            w.ws, w.person[2]);
    char path[160];
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/guidelines", w.ws);
    struct hres h = http_req(IT.gw[0], NULL, "PUT", path, w.tok[2], hold_rules);
    assert_int_equal(h.status, 200);
    hres_free(&h);
    struct wsc *a = it_member(1, w.tok[0], w.room);
    struct wsc *mod = it_member(0, w.tok[2], w.room);
    cJSON *r = it_send(a, w.room, "held", "about the contract");
    assert_string_equal(wsc_str(r, "ok.state"), "held");
    int64_t pid = wsc_int(r, "ok.pending");
    cJSON_Delete(r);
    char q[128];
    snprintf(q, sizeof q, "SELECT 1 FROM pending WHERE id = %lld FOR UPDATE", (long long)pid);
    PGconn *pg = hold_lock(q);
    char msg[256];
    int n =
        snprintf(msg, sizeof msg, "{\"id\":77,\"op\":\"approve\",\"room\":\"%s\",\"pending\":%lld}",
                 w.room, (long long)pid);
    assert_int_equal(wsc_send_text(mod, msg, (size_t)n), 0);
    usleep(300000); /* the approval's statement has begun and waits */
    for (int i = 0; i < 3; i++) {
        char cmid[16];
        snprintf(cmid, sizeof cmid, "m%d", i);
        r = it_send(a, w.room, cmid, "meanwhile");
        assert_null(wsc_err_code(r));
        cJSON_Delete(r);
    }
    usleep(50000);
    release_lock(pg);
    r = reply_to(mod, 77);
    assert_non_null(r);
    assert_null(wsc_err_code(r));
    assert_int_equal(wsc_int(r, "ok.seq"), 4); /* after the three sends */
    cJSON_Delete(r);
    assert_int_equal(backwards_in_sql(w.room), 0);
    /* History through a third person: a and mod get pending pushes, whose
     * "id" wsc_request could take for the reply's. */
    struct wsc *c = it_member(1, w.tok[1], w.room);
    long k = 0;
    assert_int_equal(backwards_in_history(c, w.room, &k), 0);
    assert_int_equal(k, 4);
    wsc_close(a);
    wsc_close(c);
    wsc_close(mod);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(concurrent_sends_keep_ts_in_seq_order),
        cmocka_unit_test(batch_that_waited_for_a_lock_keeps_ts_order),
        cmocka_unit_test(approval_that_waited_keeps_ts_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
