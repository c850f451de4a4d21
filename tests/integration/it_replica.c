/* Integration: reads from a streaming replica (--pg-read) never skip a
 * message. The test starts a hot standby of the fixture's PostgreSQL
 * (scripts/services.sh: svc_pg_replica_start, pg_basebackup -R) and a
 * gateway of its own whose reads go there, then:
 *  - caught up, history, replay (join with since) and evaluation are
 *    answered by the replica (parley_pg_read_replica_total, and the
 *    gateway's sessions in the replica's pg_stat_activity);
 *  - with the replica's WAL replay paused while messages keep arriving,
 *    history, replay and a marker's catch-up are complete all the same:
 *    the replica is behind the committed seq asked for, so the read goes to
 *    the primary (parley_pg_read_fallbacks_total{reason="behind"});
 *  - with the replica stopped, every read is still answered, and once it is
 *    back the reads go to it again.
 * The gateway's --pg-read is a libpq multi-host conninfo whose first host is
 * down, with target_session_attrs=read-only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpc.h"
#include "itest.h"

#define REPLICA_TOTAL "parley_pg_read_replica_total"
#define BEHIND "parley_pg_read_fallbacks_total{reason=\"behind\"}"
#define ERRORS "parley_pg_read_fallbacks_total{reason=\"error\"}"
#define DOWN "parley_pg_read_fallbacks_total{reason=\"down\"}"
#define READY "parley_pg_read_replica_connections_ready"

static pid_t gw;
static int port, rport;
static char services[1024], rstate[700];

/* Runs a function of scripts/services.sh; aborts the test on failure. */
static void services_run(const char *fn_and_args)
{
    char out[4096];
    int rc = it_run(out, sizeof out, "bash -c '. %s && %s'", services, fn_and_args);
    if (rc) fprintf(stderr, "%s: %s\n", fn_and_args, out);
    assert_int_equal(rc, 0);
}

/* The fixture's PostgreSQL port, from its conninfo. */
static int pg_port_of(void)
{
    const char *p = strstr(IT.pg, "port=");
    return p ? atoi(p + 5) : 0;
}

static void replica_start(void)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "svc_pg_replica_start %s %d %d", rstate, pg_port_of(), rport);
    services_run(cmd);
}

/* One value from the replica, as the superuser (the replay controls). */
static char *replica_sql(const char *sql)
{
    static char val[256];
    char ci[128];
    snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d dbname=parley user=postgres", rport);
    PGconn *c = PQconnectdb(ci);
    if (PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        return NULL;
    }
    PGresult *r = PQexec(c, sql);
    val[0] = 0;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
        snprintf(val, sizeof val, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    PQfinish(c);
    return val;
}

static int64_t primary_last_seq(const char *room)
{
    return strtoll(it_sqlf("SELECT last_seq FROM rooms WHERE id = '%s'", room), NULL, 10);
}

static int64_t replica_last_seq(const char *room)
{
    char q[128];
    snprintf(q, sizeof q, "SELECT last_seq FROM rooms WHERE id = '%s'", room);
    const char *v = replica_sql(q);
    return v && v[0] ? strtoll(v, NULL, 10) : -1;
}

/* Until the replica has the room as the primary has it (10 s at most). */
static void replica_catch_up(const char *room)
{
    int64_t want = primary_last_seq(room);
    for (int i = 0; i < 200 && replica_last_seq(room) < want; i++)
        usleep(50 * 1000);
    assert_true(replica_last_seq(room) >= want);
}

static double metric(const char *series)
{
    return it_metric_port(port, series);
}

static void wait_metric(const char *series, double want, int ms)
{
    for (int i = 0; i < ms / 50 && metric(series) != want; i++)
        usleep(50 * 1000);
    assert_true(metric(series) == want);
}

static int setup(void **state)
{
    (void)state;
    char envsh[512];
    snprintf(envsh, sizeof envsh, "%s", IT.env_sh);
    snprintf(services, sizeof services, "%s/../../scripts/services.sh", dirname(envsh));
    snprintf(rstate, sizeof rstate, "%s/replica", IT.state);
    char out[1024];
    it_run(out, sizeof out, "bash -c '. %s && svc_pg_replica_stop %s; rm -rf %s'", services, rstate,
           rstate);
    rport = it_free_port();
    replica_start();
    /* libpq multi-host: a first host where nobody listens, then the
     * replica, which target_session_attrs=read-only accepts (a standby). */
    char ci[200];
    snprintf(ci, sizeof ci,
             "host=127.0.0.1,127.0.0.1 port=%d,%d dbname=parley user=parley"
             " target_session_attrs=read-only",
             it_free_port(), rport);
    gw = it_own_gateway("gw-replica", &port, "--pg-read", ci, "--reorder-ms", "300", NULL);
    return 0;
}

static int teardown(void **state)
{
    /* SIGTERM: a clean exit (and, in a sanitizer build, its leak check). */
    int st = it_stop(gw);
    if (st) fprintf(stderr, "gw-replica exited with %d\n", st);
    char out[1024];
    it_run(out, sizeof out, "bash -c '. %s && svc_pg_replica_stop %s; rm -rf %s'", services, rstate,
           rstate);
    return it_kill_spawned(state) || st;
}

/* A world whose person 0 is a member on the test's gateway (*m) and whose
 * person 1 sends through the fixture's gateway (*s). */
static void pair(struct it_world *w, struct wsc **m, struct wsc **s)
{
    it_world(w, 2, NULL);
    *m = it_connect_port(port, NULL, w->tok[0]);
    assert_non_null(*m);
    cJSON *r = it_join(*m, w->room, -1);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    *s = it_member(0, w->tok[1], w->room);
}

/* Sends n messages through s, each received live by m; returns the last seq. */
static int64_t send_n(struct wsc *s, struct wsc *m, const char *room, const char *tag, int n)
{
    int64_t last = 0;
    for (int i = 0; i < n; i++) {
        char cmid[48];
        snprintf(cmid, sizeof cmid, "%s-%d", tag, i);
        cJSON *r = it_send(s, room, cmid, tag);
        assert_null(wsc_err_code(r));
        last = wsc_int(r, "ok.seq");
        cJSON_Delete(r);
    }
    for (;;) {
        cJSON *p = wsc_wait_push(m, "message", 3000);
        assert_non_null(p);
        int64_t seq = wsc_int(p, "seq");
        cJSON_Delete(p);
        if (seq == last) return last;
    }
}

/* history on c with args: asserts the page holds exactly seqs first..last. */
static void history_is(struct wsc *c, const char *room, const char *args, int64_t first,
                       int64_t last)
{
    cJSON *r = wsc_request(c, 5000, "\"op\":\"history\",\"room\":\"%s\",%s", room, args);
    assert_null(wsc_err_code(r));
    cJSON *msgs = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "messages");
    int n = cJSON_GetArraySize(msgs);
    if (n != last - first + 1)
        fprintf(stderr, "history %s: %d messages, wanted %lld..%lld\n", args, n, (long long)first,
                (long long)last);
    assert_int_equal(n, last - first + 1);
    for (int i = 0; i < n; i++)
        assert_int_equal(wsc_int(cJSON_GetArrayItem(msgs, i), "seq"), first + i);
    cJSON_Delete(r);
}

/* A new connection of person tok joins with since: it gets since+1..last
 * replayed, in order, nothing missing. */
static void replay_is(const char *tok, const char *room, int64_t since, int64_t last)
{
    struct wsc *c = it_connect_port(port, NULL, tok);
    assert_non_null(c);
    cJSON *r = it_join(c, room, since);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    for (int64_t want = since + 1; want <= last; want++) {
        cJSON *p = wsc_wait_push(c, "message", 3000);
        int64_t got = p ? wsc_int(p, "seq") : -1;
        cJSON_Delete(p);
        if (got != want)
            fprintf(stderr, "replay: got %lld, wanted %lld\n", (long long)got, (long long)want);
        assert_int_equal(got, want);
    }
    wsc_close(c);
}

/* Commits n messages to the primary the way the store does and publishes
 * nothing but a sync marker of the last one (busfmt.h): the gateway's
 * members get them only through the room's catch-up. Returns the last seq. */
static int64_t commit_with_marker(const struct it_world *w, int n)
{
    int64_t last = strtoll(
        it_sqlf("WITH r AS (UPDATE rooms SET last_seq = last_seq + %d WHERE id = '%s'"
                " RETURNING last_seq),"
                " i AS (INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body)"
                "  SELECT '%s', r.last_seq - %d + g, '%s', 'marked-' || (r.last_seq - %d + g),"
                "  'stored' FROM r, generate_series(1, %d) g RETURNING seq)"
                " SELECT max(seq) FROM i",
                n, w->room, w->room, n, w->person[1], n, n),
        NULL, 10);
    redisContext *rc = redisConnect("127.0.0.1", IT.redis_port);
    assert_true(rc && !rc->err);
    redisReply *r = redisCommand(rc, "PUBLISH room:%s %lld\n", w->room, (long long)last);
    assert_non_null(r);
    assert_true(r->integer >= 1);
    freeReplyObject(r);
    redisFree(rc);
    return last;
}

static void caught_up_reads_go_to_the_replica(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *m, *s;
    pair(&w, &m, &s);
    int64_t last = send_n(s, m, w.room, "up", 5);
    replica_catch_up(w.room);
    double rep0 = metric(REPLICA_TOTAL), behind0 = metric(BEHIND);
    history_is(m, w.room, "\"limit\":50", 1, last);
    history_is(m, w.room, "\"after\":1,\"limit\":50", 2, last);
    replay_is(w.tok[0], w.room, 1, last);
    assert_true(metric(REPLICA_TOTAL) >= rep0 + 3);
    assert_true(metric(BEHIND) == behind0);
    /* The gateway's read sessions are the replica's. */
    const char *n = replica_sql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'parley'");
    assert_non_null(n);
    assert_true(atoi(n) >= 2);
    /* The evaluation report, by an admin, from the replica too. */
    char admin[40], tok[64];
    snprintf(admin, sizeof admin, "%s",
             it_admin("create-person %s evaluator-%d@example.test admin", w.ws, (int)getpid()));
    snprintf(tok, sizeof tok, "%s", it_admin("create-token %s %s", admin, w.ws));
    double rep1 = metric(REPLICA_TOTAL);
    struct hres h = http_reqf(port, NULL, "GET", tok, NULL,
                              "/api/v1/workspaces/%s/rooms/%s/evaluation", w.ws, w.room);
    assert_int_equal(h.status, 200);
    assert_int_equal(wsc_int(h.json, "messages"), last);
    hres_free(&h);
    assert_true(metric(REPLICA_TOTAL) == rep1 + 1);
    /* A bad date fails on the replica as it would on the primary: the
     * caller's error, not a second run there. */
    double err0 = metric(ERRORS);
    h = http_reqf(port, NULL, "GET", tok, NULL,
                  "/api/v1/workspaces/%s/rooms/%s/evaluation?from=not-a-date", w.ws, w.room);
    assert_int_equal(h.status, 400);
    hres_free(&h);
    assert_true(metric(ERRORS) == err0);
    wsc_close(m);
    wsc_close(s);
}

static void paused_replica_is_never_short(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *m, *s;
    pair(&w, &m, &s);
    int64_t first = send_n(s, m, w.room, "before", 3);
    replica_catch_up(w.room);
    assert_non_null(replica_sql("SELECT pg_wal_replay_pause()"));
    int64_t last = send_n(s, m, w.room, "paused", 5);
    /* The replica really is behind what the members have. */
    assert_true(replica_last_seq(w.room) < last);
    double behind0 = metric(BEHIND);
    history_is(m, w.room, "\"limit\":50", 1, last);
    history_is(m, w.room, "\"after\":2,\"limit\":50", 3, last);
    replay_is(w.tok[0], w.room, first, last);
    assert_true(metric(BEHIND) >= behind0 + 3);
    /* A catch-up for a marker: rows the bus never carried, read in full. */
    double behind1 = metric(BEHIND);
    int64_t marked = commit_with_marker(&w, 3);
    for (int64_t want = last + 1; want <= marked; want++) {
        cJSON *p = wsc_wait_push(m, "message", 3000);
        int64_t got = p ? wsc_int(p, "seq") : -1;
        cJSON_Delete(p);
        assert_int_equal(got, want);
    }
    assert_true(metric(BEHIND) >= behind1 + 1);
    /* Replay resumes: the reads go back to the replica. */
    assert_non_null(replica_sql("SELECT pg_wal_replay_resume()"));
    replica_catch_up(w.room);
    double rep0 = metric(REPLICA_TOTAL), behind2 = metric(BEHIND);
    history_is(m, w.room, "\"limit\":50", 1, marked);
    assert_true(metric(REPLICA_TOTAL) == rep0 + 1);
    assert_true(metric(BEHIND) == behind2);
    wsc_close(m);
    wsc_close(s);
}

/* Read-your-writes on one gateway: with the replica behind and the bus
 * holding back the publish (CLIENT PAUSE WRITE holds PUBLISH), the sender's
 * history page right after its ack still holds its message, because the
 * gateway knows it committed that seq (dbread_note), not from the bus. */
static void own_message_is_in_the_next_page(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *m, *s;
    pair(&w, &m, &s);
    int64_t first = send_n(s, m, w.room, "before", 2);
    replica_catch_up(w.room);
    assert_non_null(replica_sql("SELECT pg_wal_replay_pause()"));
    redisContext *rc = redisConnect("127.0.0.1", IT.redis_port);
    assert_true(rc && !rc->err);
    redisReply *rr = redisCommand(rc, "CLIENT PAUSE 3000 WRITE");
    assert_true(rr && rr->type == REDIS_REPLY_STATUS);
    freeReplyObject(rr);
    cJSON *r = it_send(m, w.room, "mine-1", "mine");
    assert_null(wsc_err_code(r));
    int64_t mine = wsc_int(r, "ok.seq");
    cJSON_Delete(r);
    assert_int_equal(mine, first + 1);
    double behind0 = metric(BEHIND);
    history_is(m, w.room, "\"limit\":50", 1, mine);
    assert_true(metric(BEHIND) >= behind0 + 1);
    rr = redisCommand(rc, "CLIENT UNPAUSE");
    freeReplyObject(rr);
    redisFree(rc);
    assert_non_null(replica_sql("SELECT pg_wal_replay_resume()"));
    wsc_close(m);
    wsc_close(s);
}

/* A page before a cursor shows older messages as of what the client
 * already got: a delete made through the other gateway (an event with a
 * later seq, delivered here) is in the page even while the replica, which
 * has the message itself, has not replayed the delete. */
static void older_page_shows_later_changes(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *m, *s;
    pair(&w, &m, &s);
    int64_t k = send_n(s, m, w.room, "to-delete", 1);
    replica_catch_up(w.room);
    assert_non_null(replica_sql("SELECT pg_wal_replay_pause()"));
    cJSON *r = wsc_request(s, 3000, "\"op\":\"delete\",\"room\":\"%s\",\"seq\":%lld", w.room,
                           (long long)k);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    cJSON *p = wsc_wait_push(m, "delete", 3000);
    assert_non_null(p);
    assert_int_equal(wsc_int(p, "target"), k);
    cJSON_Delete(p);
    r = wsc_request(m, 5000, "\"op\":\"history\",\"room\":\"%s\",\"before\":%lld,\"limit\":1",
                    w.room, (long long)(k + 1));
    assert_null(wsc_err_code(r));
    cJSON *msg =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "messages"), 0);
    assert_non_null(msg);
    assert_int_equal(wsc_int(msg, "seq"), k);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(msg, "deleted")));
    cJSON_Delete(r);
    assert_non_null(replica_sql("SELECT pg_wal_replay_resume()"));
    wsc_close(m);
    wsc_close(s);
}

static void stopped_replica_reads_still_answered(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *m, *s;
    pair(&w, &m, &s);
    int64_t first = send_n(s, m, w.room, "up", 2);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "svc_pg_replica_stop %s", rstate);
    services_run(cmd);
    int64_t last = send_n(s, m, w.room, "down", 4);
    double fb0 = metric(DOWN) + metric(ERRORS);
    history_is(m, w.room, "\"limit\":50", 1, last);
    replay_is(w.tok[0], w.room, first, last);
    assert_true(metric(DOWN) + metric(ERRORS) >= fb0 + 2);
    /* Back: the gateway reconnects by itself and reads from it again. */
    replica_start();
    wait_metric(READY, 2, 10000);
    replica_catch_up(w.room);
    double rep0 = metric(REPLICA_TOTAL);
    history_is(m, w.room, "\"limit\":50", 1, last);
    assert_true(metric(REPLICA_TOTAL) == rep0 + 1);
    wsc_close(m);
    wsc_close(s);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(caught_up_reads_go_to_the_replica),
        cmocka_unit_test(paused_replica_is_never_short),
        cmocka_unit_test(own_message_is_in_the_next_page),
        cmocka_unit_test(older_page_shows_later_changes),
        cmocka_unit_test(stopped_replica_reads_still_answered),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
