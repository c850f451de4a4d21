/* Integration: sign-in storms and slow queries. A statement slower than the
 * query deadline fails alone (PostgreSQL cancels it; the queries pipelined
 * behind it on the same connection succeed); auths are looked up in batches
 * whose refused tokens do not spoil the others; a burst of auths is answered
 * ok or busy with a retry hint, never left to time out. The test holds table
 * locks from its own PostgreSQL session to make a query slow on purpose. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

/* A session of the test's own that holds lock until released. */
static PGconn *hold_lock(const char *table)
{
    PGconn *pg = PQconnectdb(IT.pg);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    char sql[160];
    snprintf(sql, sizeof sql, "BEGIN; LOCK TABLE %s IN ACCESS EXCLUSIVE MODE", table);
    PGresult *r = PQexec(pg, sql);
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    return pg;
}

static void release_lock(PGconn *pg)
{
    PQclear(PQexec(pg, "ROLLBACK"));
    PQfinish(pg);
}

static void send_auth(struct wsc *c, int64_t id, const char *tok, const char *ws)
{
    char buf[512];
    int n = ws ? snprintf(buf, sizeof buf,
                          "{\"id\":%lld,\"op\":\"auth\",\"token\":\"%s\",\"workspace\":\"%s\"}",
                          (long long)id, tok, ws)
               : snprintf(buf, sizeof buf, "{\"id\":%lld,\"op\":\"auth\",\"token\":\"%s\"}",
                          (long long)id, tok);
    assert_int_equal(wsc_send_text(c, buf, (size_t)n), 0);
}

/* One reader connection (--db-conns 2: the writer and one reader), so the
 * blocked join and the histories share a pipeline. The join's check reads
 * room_bans, which the test locks; history reads only messages. Before,
 * the join's deadline reset the connection and failed the histories too. */
static void slow_query_fails_alone(void **state)
{
    (void)state;
    int port;
    pid_t pid =
        it_own_gateway("gw-slowq", &port, "--db-conns", "2", "--db-timeout-ms", "1000", NULL);
    struct it_world w, w2;
    it_world(&w, 2, NULL);
    snprintf(w2.room, sizeof w2.room, "%s", it_admin("create-room %s second workspace", w.ws));
    struct wsc *a = it_connect_port(port, NULL, w.tok[0]);
    struct wsc *b = it_connect_port(port, NULL, w.tok[1]);
    assert_non_null(a);
    assert_non_null(b);
    cJSON *r = it_join(b, w.room, -1);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    double reconnects = it_metric_port(port, "parley_postgres_reconnects_total");

    PGconn *lock = hold_lock("room_bans");
    char buf[256];
    int n = snprintf(buf, sizeof buf, "{\"id\":7,\"op\":\"join\",\"room\":\"%s\"}", w2.room);
    assert_int_equal(wsc_send_text(a, buf, (size_t)n), 0);
    usleep(200 * 1000); /* the join's check is on the wire, blocked */
    enum { H = 5 };
    for (int i = 0; i < H; i++) {
        n = snprintf(buf, sizeof buf, "{\"id\":%d,\"op\":\"history\",\"room\":\"%s\",\"limit\":5}",
                     100 + i, w.room);
        assert_int_equal(wsc_send_text(b, buf, (size_t)n), 0);
    }
    /* PostgreSQL cancels the join's check at 1 s; the histories follow.
     * Whether it was PostgreSQL's cancel and not the gateway's 2 s backstop
     * is told by the lane not being reset (below), not by the clock, which
     * a loaded machine stretches. */
    r = wsc_next_reply(a, 5000);
    assert_non_null(r);
    assert_string_equal(wsc_err_code(r), "unavailable");
    cJSON_Delete(r);
    for (int i = 0; i < H; i++) {
        r = wsc_next_reply(b, 5000);
        assert_non_null(r);
        if (wsc_err_code(r)) fprintf(stderr, "history %d: %s\n", i, wsc_err_code(r));
        assert_null(wsc_err_code(r));
        assert_int_equal(wsc_int(r, "id"), 100 + i);
        cJSON_Delete(r);
    }
    release_lock(lock);
    /* The lane was never reset, and it still answers. */
    assert_true(it_metric_port(port, "parley_postgres_reconnects_total") == reconnects);
    r = it_join(a, w2.room, -1);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    wsc_close(a);
    wsc_close(b);
    it_stop(pid);
}

/* A gateway whose loop stalls (stopped here for 2.5 s, more than the
 * 2 x 1 s backstop) while PostgreSQL answers a query in flight: on waking,
 * its timers run before it polls, and judging by the clock alone reset the
 * lane and failed the query whose answer was waiting in the socket. The
 * answer is read and delivered; the lane is not reset. */
static void stalled_loop_keeps_postgres_lanes(void **state)
{
    (void)state;
    int port;
    pid_t pid =
        it_own_gateway("gw-stall", &port, "--db-conns", "2", "--db-timeout-ms", "1000", NULL);
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *a = it_connect_port(port, NULL, w.tok[0]);
    assert_non_null(a);
    double reconnects = it_metric_port(port, "parley_postgres_reconnects_total");
    PGconn *lock = hold_lock("room_bans");
    char buf[256];
    int n = snprintf(buf, sizeof buf, "{\"id\":7,\"op\":\"join\",\"room\":\"%s\"}", w.room);
    assert_int_equal(wsc_send_text(a, buf, (size_t)n), 0);
    usleep(150 * 1000); /* the join's check is on the wire, blocked by the lock */
    assert_int_equal(kill(pid, SIGSTOP), 0);
    usleep(200 * 1000);
    release_lock(lock); /* PostgreSQL answers into the stopped gateway's socket */
    usleep(2300 * 1000);
    assert_int_equal(kill(pid, SIGCONT), 0);
    cJSON *r = wsc_next_reply(a, 5000);
    assert_non_null(r);
    if (wsc_err_code(r)) fprintf(stderr, "join: %s\n", wsc_err_code(r));
    assert_null(wsc_err_code(r));
    assert_int_equal(wsc_int(r, "id"), 7);
    cJSON_Delete(r);
    assert_true(it_metric_port(port, "parley_postgres_reconnects_total") == reconnects);
    wsc_close(a);
    it_stop(pid);
}

/* One look-up slot: the first auth's batch is held by a lock on
 * access_tokens, the others queue and go together in the next one, where
 * the refused tokens are refused and the rest accepted. */
static void batch_refuses_bad_tokens_alone(void **state)
{
    (void)state;
    int port;
    pid_t pid = it_own_gateway("gw-batch", &port, "--auth-inflight", "1", NULL);
    struct it_world w, other;
    it_world(&w, 8, NULL);
    it_world(&other, 1, NULL);
    /* 2: expired, 3: revoked, 4: removed from the workspace; 5 asks for a
     * workspace it is not in; 0, 1, 6, 7 are good. */
    it_sqlf("UPDATE access_tokens SET expires_at = now() - interval '1 minute'"
            " WHERE person_id = '%s'",
            w.person[2]);
    it_admin("revoke-tokens %s", w.person[3]);
    it_sqlf("UPDATE workspace_members SET removed_at = now() WHERE person_id = '%s'", w.person[4]);
    struct wsc *c[9];
    for (int i = 0; i < 9; i++) {
        c[i] = it_connect_port(port, NULL, NULL);
        assert_non_null(c[i]);
    }
    double lookups = it_metric_port(port, "parley_auth_lookups_total");
    PGconn *lock = hold_lock("access_tokens");
    send_auth(c[8], 1, other.tok[0], NULL); /* the held batch */
    usleep(200 * 1000);
    for (int i = 0; i < 8; i++)
        send_auth(c[i], 1, w.tok[i], i == 5 ? other.ws : NULL);
    usleep(200 * 1000); /* all read and queued */
    release_lock(lock);
    cJSON *r = wsc_next_reply(c[8], 5000);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    for (int i = 0; i < 8; i++) {
        r = wsc_next_reply(c[i], 5000);
        assert_non_null(r);
        bool bad = i >= 2 && i <= 5;
        if (bad) {
            assert_string_equal(wsc_err_code(r), "auth_failed");
        } else {
            assert_null(wsc_err_code(r));
            assert_string_equal(wsc_str(r, "ok.person"), w.person[i]);
            assert_string_equal(wsc_str(r, "ok.workspace"), w.ws);
        }
        cJSON_Delete(r);
    }
    /* Exactly two look-ups: the held one and the batch of eight. */
    assert_true(it_metric_port(port, "parley_auth_lookups_total") == lookups + 2);
    /* The accepted ones are signed in: they can join. */
    r = it_join(c[7], w.room, -1);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    /* One visit-log row per accepted session (written in one insert). */
    for (int k = 0; k < 50 && strcmp(it_sqlf("SELECT count(*) FROM visits WHERE workspace_id ="
                                             " '%s' AND kind = 'websocket'",
                                             w.ws),
                                     "4");
         k++)
        usleep(50 * 1000);
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM visits WHERE workspace_id = '%s' AND kind = 'websocket'",
                w.ws),
        "4");
    for (int i = 0; i < 9; i++)
        wsc_close(c[i]);
    it_stop(pid);
}

/* N connections authenticate at once while the look-ups are held: the
 * gateway admits what its queue holds and answers the rest busy with a
 * hint at once; nothing times out or fails. Those told busy retry on the
 * same connection after the hint and all get in. */
static void burst_is_admitted_or_told_busy(void **state)
{
    (void)state;
    enum { N = 2000, QMAX = 500 };
    int port;
    pid_t pid =
        it_own_gateway("gw-burst", &port, "--per-ip-max", "5000", "--auth-inflight", "1",
                       "--auth-batch-max", "64", "--auth-queue-max", "500", "--db-timeout-ms",
                       "10000", "--auth-timeout-ms", "20000", "--auth-wait-ms", "8000", NULL);
    struct it_world w;
    it_world(&w, 8, NULL);
    struct wsc **c = calloc(N, sizeof *c);
    for (int i = 0; i < N; i++) {
        c[i] = it_connect_port(port, NULL, NULL);
        assert_non_null(c[i]);
    }
    PGconn *lock = hold_lock("access_tokens");
    uint64_t t0 = it_now_ms();
    for (int i = 0; i < N; i++)
        send_auth(c[i], 1, w.tok[i % 8], NULL);
    int ok = 0, busy = 0;
    bool *pending = calloc(N, sizeof *pending);
    int64_t *retry = calloc(N, sizeof *retry);
    /* Those past the queue are answered while the lock still holds (how
     * soon depends on the machine's load, so the test waits for them, up to
     * a bound; nothing admitted can answer before the lock goes). */
    for (int i = 0; i < N; i++)
        pending[i] = true;
    for (uint64_t until = it_now_ms() + 20000; busy < N - QMAX - 64 && it_now_ms() < until;) {
        for (int i = 0; i < N; i++) {
            if (!pending[i]) continue;
            cJSON *r = wsc_next_reply(c[i], 1);
            if (!r) continue;
            assert_string_equal(wsc_err_code(r), "busy");
            retry[i] = wsc_int(r, "error.retry_after_ms");
            assert_true(retry[i] > 0 && retry[i] <= 10000); /* half the auth timeout */
            pending[i] = false;
            busy++;
            cJSON_Delete(r);
        }
    }
    assert_true(busy >= N - QMAX - 64);
    release_lock(lock);
    for (int i = 0; i < N; i++) {
        if (!pending[i]) continue;
        cJSON *r = wsc_next_reply(c[i], 8000);
        assert_non_null(r);
        const char *e = wsc_err_code(r);
        if (e) {
            assert_string_equal(e, "busy");
            retry[i] = wsc_int(r, "error.retry_after_ms");
            assert_true(retry[i] > 0);
            busy++;
            pending[i] = false;
        } else {
            ok++;
        }
        cJSON_Delete(r);
    }
    assert_true(ok >= QMAX);
    assert_int_equal(ok + busy, N);
    fprintf(stderr, "burst: %d ok, %d busy in %llu ms\n", ok, busy,
            (unsigned long long)(it_now_ms() - t0));
    /* The retries, after the largest hint: every connection gets in, none
     * was closed for its auth timeout meanwhile. */
    int64_t wait = 0;
    for (int i = 0; i < N; i++)
        if (retry[i] > wait) wait = retry[i];
    usleep((useconds_t)wait * 1000);
    int left = busy;
    for (int round = 0; left && round < 20; round++) {
        for (int i = 0; i < N; i++)
            if (retry[i] && !pending[i]) {
                send_auth(c[i], 2, w.tok[i % 8], NULL);
                pending[i] = true;
            }
        int64_t next = 0;
        for (int i = 0; i < N; i++) {
            if (!retry[i] || !pending[i]) continue;
            cJSON *r = wsc_next_reply(c[i], 8000);
            assert_non_null(r);
            pending[i] = false;
            if (!wsc_err_code(r)) {
                retry[i] = 0;
                left--;
            } else {
                assert_string_equal(wsc_err_code(r), "busy");
                retry[i] = wsc_int(r, "error.retry_after_ms");
                if (retry[i] > next) next = retry[i];
            }
            cJSON_Delete(r);
        }
        usleep((useconds_t)next * 1000);
    }
    assert_int_equal(left, 0);
    assert_true(it_metric_port(port, "parley_connections_closed_total{reason=\"auth_timeout\"}") ==
                0);
    for (int i = 0; i < N; i++)
        wsc_close(c[i]);
    free(c);
    free(pending);
    free(retry);
    it_stop(pid);
}

/* Look-ups that time out (the token table locked past the 500 ms deadline)
 * are answered `unavailable` and must not count as the database's pace:
 * folded into the estimate they raised it past --auth-wait-ms, and from
 * then on every auth was told busy, long after the database was back. */
static void timed_out_lookups_do_not_lock_out_auth(void **state)
{
    (void)state;
    int port;
    pid_t pid = it_own_gateway("gw-lockout", &port, "--db-timeout-ms", "500", "--auth-wait-ms",
                               "300", "--auth-timeout-ms", "5000", NULL);
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *c = it_connect_port(port, NULL, NULL);
    assert_non_null(c);
    PGconn *lock = hold_lock("access_tokens");
    for (int i = 1; i <= 6; i++) {
        send_auth(c, i, w.tok[0], NULL);
        cJSON *r = wsc_next_reply(c, 5000);
        assert_non_null(r);
        assert_string_equal(wsc_err_code(r), "unavailable");
        assert_true(wsc_int(r, "error.retry_after_ms") > 0);
        cJSON_Delete(r);
    }
    release_lock(lock);
    send_auth(c, 7, w.tok[0], NULL);
    cJSON *r = wsc_next_reply(c, 5000);
    assert_non_null(r);
    if (wsc_err_code(r)) fprintf(stderr, "auth after the outage: %s\n", wsc_err_code(r));
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    wsc_close(c);
    it_stop(pid);
}

/* The auth timeout (1 s here) does not close a connection whose auth the
 * gateway is still looking up (held 1.5 s by a lock): the answer comes. */
static void looked_up_auth_outlives_auth_timeout(void **state)
{
    (void)state;
    int port;
    pid_t pid = it_own_gateway("gw-authwait", &port, "--auth-timeout-ms", "1000", NULL);
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *c = it_connect_port(port, NULL, NULL);
    assert_non_null(c);
    PGconn *lock = hold_lock("access_tokens");
    send_auth(c, 1, w.tok[0], NULL);
    usleep(1500 * 1000);
    release_lock(lock);
    cJSON *r = wsc_next_reply(c, 3000);
    assert_non_null(r);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    assert_false(wsc_is_closed(c));
    wsc_close(c);
    it_stop(pid);
}

/* A burst of joins while the gateway's loop is held up (here: Redis paused
 * for 1.8 s so the burst's publishes stay unanswered, and the gateway
 * stopped for 1.3 s of it, as a loop busy with thousands of joins is). The
 * link answered as soon as it could; judged by the clock it was declared
 * dead with its whole pipeline (the reconnect storm's "redis publish
 * timeout"). Now silence counts only while the loop turns: no reset, every
 * join answered, and the room still delivers through Redis. */
static void join_burst_keeps_redis_link(void **state)
{
    (void)state;
    enum { N = 200 };
    int port;
    pid_t pid = it_own_gateway("gw-joinburst", &port, "--per-ip-max", "5000", "--db-timeout-ms",
                               "1000", NULL);
    struct it_world w;
    it_world(&w, 8, NULL);
    struct wsc **c = calloc(N, sizeof *c);
    for (int i = 0; i < N; i++) {
        c[i] = it_connect_port(port, NULL, w.tok[i % 8]);
        assert_non_null(c[i]);
    }
    double resets = it_metric_port(port, "parley_redis_reconnects_total");
    char out[256];
    assert_int_equal(it_run(out, sizeof out, "redis-cli -p %d CLIENT PAUSE 1800", IT.redis_port),
                     0);
    uint64_t t0 = it_now_ms();
    for (int i = 0; i < N; i++) {
        char buf[160];
        int n = snprintf(buf, sizeof buf, "{\"id\":7,\"op\":\"join\",\"room\":\"%s\"}", w.room);
        assert_int_equal(wsc_send_text(c[i], buf, (size_t)n), 0);
    }
    usleep(300 * 1000);
    assert_int_equal(kill(pid, SIGSTOP), 0);
    usleep(1300 * 1000);
    assert_int_equal(kill(pid, SIGCONT), 0);
    int ok = 0;
    for (int i = 0; i < N; i++) {
        cJSON *r = wsc_next_reply(c[i], 10000);
        assert_non_null(r);
        assert_null(wsc_err_code(r));
        ok++;
        cJSON_Delete(r);
    }
    fprintf(stderr, "join burst: %d joins answered in %llu ms\n", ok,
            (unsigned long long)(it_now_ms() - t0));
    usleep(500 * 1000);
    assert_true(it_metric_port(port, "parley_redis_reconnects_total") == resets);
    /* The link still carries the room: a message reaches another member. */
    cJSON *r = it_send(c[0], w.room, "burst-1", "after the burst");
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    cJSON *m = wsc_wait_push(c[N - 1], "message", 5000);
    assert_non_null(m);
    cJSON_Delete(m);
    for (int i = 0; i < N; i++)
        wsc_close(c[i]);
    free(c);
    assert_int_equal(it_stop(pid), 0);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slow_query_fails_alone),
        cmocka_unit_test(stalled_loop_keeps_postgres_lanes),
        cmocka_unit_test(batch_refuses_bad_tokens_alone),
        cmocka_unit_test(burst_is_admitted_or_told_busy),
        cmocka_unit_test(looked_up_auth_outlives_auth_timeout),
        cmocka_unit_test(timed_out_lookups_do_not_lock_out_auth),
        cmocka_unit_test(join_burst_keeps_redis_link),
    };
    return cmocka_run_group_tests(tests, NULL, it_kill_spawned);
}
