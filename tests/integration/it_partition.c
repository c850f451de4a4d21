/* it_partition: the message log hash-partitioned by room (sql/012).
 *
 * explain_touches_one_partition: the statements the server prepares for
 * history, replay (gap fetch), the send batcher (seq allocation and insert)
 * and the receipts batcher, taken from the server's own statement tables
 * (not copies), run under EXPLAIN ANALYZE for one room, in both of
 * PostgreSQL's plan modes, read exactly one partition of each partitioned
 * table they touch.
 *
 * migrate_moves_every_row: a database at the schema before 012 with
 * messages, events, seen rows, likes and ratings made through a gateway;
 * migrate; every row is still there, byte for byte, spread over the
 * partitions; history and since-replay through a gateway return it; new
 * sends continue each room's seq; migrate again changes nothing. */
#include "itest.h"
#include "receipts.h"
#include "store.h"

#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static const char *const PARTITIONED[] = {"messages", "seen", "likes", "ratings"};
enum { NPART_TABLES = 4 };

static PGconn *db(const char *conninfo)
{
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) fprintf(stderr, "connect: %s", PQerrorMessage(pg));
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    return pg;
}

static void exec_ok(PGconn *pg, const char *sql)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
    assert_true(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK);
    PQclear(r);
}

/* ---- EXPLAIN ------------------------------------------------------------ */

/* Partition scans of one plan, per partitioned table: which partitions
 * appear at all and which ran (a run-time pruned one shows "never
 * executed", loops 0). Partition names are <table>_p<n> (012). */
struct touched {
    char ran[NPART_TABLES][64][32];
    int nran[NPART_TABLES];
    bool queries_only; /* leave out what UPDATE, DELETE and INSERT read */
};

static void note_ran(struct touched *t, int k, const char *rel)
{
    for (int i = 0; i < t->nran[k]; i++)
        if (!strcmp(t->ran[k][i], rel)) return;
    if (t->nran[k] < 64) snprintf(t->ran[k][t->nran[k]++], 32, "%s", rel);
}

static void walk(cJSON *node, struct touched *t)
{
    if (t->queries_only &&
        !strcmp(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(node, "Node Type")),
                "ModifyTable"))
        return;
    cJSON *rel = cJSON_GetObjectItemCaseSensitive(node, "Relation Name");
    cJSON *loops = cJSON_GetObjectItemCaseSensitive(node, "Actual Loops");
    if (cJSON_IsString(rel)) {
        for (int k = 0; k < NPART_TABLES; k++) {
            size_t n = strlen(PARTITIONED[k]);
            const char *s = rel->valuestring;
            if (!strncmp(s, PARTITIONED[k], n) && !strncmp(s + n, "_p", 2) && s[n + 2] &&
                strspn(s + n + 2, "0123456789") == strlen(s + n + 2) && cJSON_IsNumber(loops) &&
                loops->valuedouble > 0)
                note_ran(t, k, s);
        }
    }
    cJSON *kids = cJSON_GetObjectItemCaseSensitive(node, "Plans"), *k;
    cJSON_ArrayForEach(k, kids) walk(k, t);
}

/* EXPLAIN ANALYZE of sql with the given parameters, prepared as the server
 * prepares it (parameter types from the text), under plan_cache_mode mode,
 * in a transaction that is rolled back. Fills t; prints the plan when
 * PARLEY_SHOW_PLANS is set. */
static void explain(PGconn *pg, const char *name, const char *mode, const char *sql, int n,
                    const char *const *params, struct touched *t)
{
    memset(t, 0, sizeof *t);
    t->queries_only = strstr(mode, "enable_nestloop") != NULL;
    PGresult *r = PQprepare(pg, "it_p", sql, n, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) fprintf(stderr, "%s", PQresultErrorMessage(r));
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    char q[8192];
    size_t len = (size_t)snprintf(
        q, sizeof q, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, FORMAT JSON) EXECUTE it_p(");
    for (int i = 0; i < n; i++) {
        char *lit = PQescapeLiteral(pg, params[i], strlen(params[i]));
        len += (size_t)snprintf(q + len, sizeof q - len, "%s%s", i ? ", " : "", lit);
        PQfreemem(lit);
    }
    snprintf(q + len, sizeof q - len, ")");
    exec_ok(pg, "BEGIN");
    char set[160];
    snprintf(set, sizeof set, "SET LOCAL plan_cache_mode = %s", mode);
    exec_ok(pg, set);
    r = PQexec(pg, q);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) fprintf(stderr, "%s", PQresultErrorMessage(r));
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    cJSON *plan = cJSON_Parse(PQgetvalue(r, 0, 0));
    assert_non_null(plan);
    if (getenv("PARLEY_SHOW_PLANS")) {
        char *s = cJSON_Print(plan);
        fprintf(stderr, "---- %s (%s)\n%s\n", name, mode, s);
        cJSON_free(s);
    }
    /* foreign key checks run as triggers outside the tree: they read rooms
     * and people, neither partitioned */
    walk(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(plan, 0), "Plan"), t);
    cJSON_Delete(plan);
    PQclear(r);
    exec_ok(pg, "ROLLBACK");
    exec_ok(pg, "DEALLOCATE it_p");
}

/* Every partitioned table in want was read in exactly one partition, and
 * no other partitioned table was read at all; of the queries alone
 * (t->queries_only), none read more than one, and messages is read. */
static void expect_one_each(const char *name, const char *mode, const struct touched *t,
                            const char *want)
{
    for (int k = 0; k < NPART_TABLES; k++) {
        bool wanted = strstr(want, PARTITIONED[k]) != NULL;
        bool ok = t->queries_only ? t->nran[k] <= 1 && (k || t->nran[k] == 1)
                                  : t->nran[k] == (wanted ? 1 : 0);
        if (!ok) {
            fprintf(stderr, "%s (%s): %s read in %d partitions:", name, mode, PARTITIONED[k],
                    t->nran[k]);
            for (int i = 0; i < t->nran[k]; i++)
                fprintf(stderr, " %s", t->ran[k][i]);
            fprintf(stderr, "\n");
        }
        assert_true(ok);
    }
}

static void explain_touches_one_partition(void **state)
{
    (void)state;
    /* Several rooms, so every partition has rows and statistics: a
     * statement that scanned all partitions would show them. */
    struct it_world w;
    it_world(&w, 2, NULL);
    char dlg[40], other[40];
    snprintf(dlg, sizeof dlg, "%s", it_admin("create-room %s ideas workspace dialogue", w.ws));
    PGconn *pg = db(IT.pg);
    /* Rows in 64 rooms of this workspace (in every partition), as a gateway
     * would store them, then fresh statistics. */
    char sql[2048];
    snprintf(sql, sizeof sql,
             "WITH r AS (INSERT INTO rooms (workspace_id, name, last_seq)"
             "  SELECT '%s', 'fill-' || g, 500 FROM generate_series(1, 64) g RETURNING id)"
             " INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body)"
             " SELECT r.id, s, '%s', 'c' || s, repeat('x', 40) FROM r, generate_series(1, 500) s",
             w.ws, w.person[0]);
    exec_ok(pg, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO likes (room_id, seq, person_id) SELECT m.room_id, m.seq, '%s'"
             " FROM messages m JOIN rooms r ON r.id = m.room_id"
             " WHERE r.workspace_id = '%s' AND m.seq %% 3 = 0",
             w.person[1], w.ws);
    exec_ok(pg, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO seen (room_id, seq, person_id) SELECT room_id, seq, '%s' FROM likes"
             " WHERE person_id = '%s';"
             "INSERT INTO ratings (room_id, seq, person_id, stars) SELECT room_id, seq, '%s', 3"
             " FROM likes WHERE person_id = '%s'",
             w.person[1], w.person[1], w.person[0], w.person[1]);
    exec_ok(pg, sql);
    exec_ok(pg, "ANALYZE messages; ANALYZE seen; ANALYZE likes; ANALYZE ratings");
    snprintf(other, sizeof other, "%s",
             it_sqlf("SELECT id FROM rooms WHERE workspace_id = '%s' AND name = 'fill-7'", w.ws));

    /* A chat room and a dialogue room with rows made through the server. */
    struct wsc *a = it_member(0, w.tok[0], w.room);
    cJSON_Delete(it_join(a, dlg, -1));
    char cmid[32];
    for (int i = 1; i <= 5; i++) {
        snprintf(cmid, sizeof cmid, "m-%d", i);
        cJSON_Delete(it_send(a, w.room, cmid, "hello"));
        cJSON_Delete(it_send(a, dlg, cmid, "an entry"));
    }
    wsc_close(a);

    const struct db_stmt *st = store_sql.stmts;
    assert_string_equal(st[ST_STATE_BATCH].sql, receipts_batch_sql);
    char send_json[1024], dup_json[1024], rcpt_chat[1024], rcpt_dlg[1024];
    snprintf(send_json, sizeof send_json,
             "[{\"i\":0,\"room\":\"%s\",\"sender\":\"%s\",\"cmid\":\"ex-1\",\"body\":\"b\","
             "\"kind\":\"auto\",\"parent\":null},"
             "{\"i\":1,\"room\":\"%s\",\"sender\":\"%s\",\"cmid\":\"m-2\",\"body\":\"hello\","
             "\"kind\":\"auto\",\"parent\":null}]",
             w.room, w.person[0], w.room, w.person[0]);
    /* a reply in the dialogue room: the parent entry is looked up too */
    snprintf(dup_json, sizeof dup_json,
             "[{\"i\":0,\"room\":\"%s\",\"sender\":\"%s\",\"cmid\":\"ex-2\",\"body\":\"b\","
             "\"kind\":\"auto\",\"parent\":1}]",
             dlg, w.person[1]);
    snprintf(rcpt_chat, sizeof rcpt_chat,
             "[{\"i\":0,\"k\":\"like\",\"room\":\"%s\",\"person\":\"%s\",\"seq\":2},"
             "{\"i\":1,\"k\":\"unlike\",\"room\":\"%s\",\"person\":\"%s\",\"seq\":3},"
             "{\"i\":2,\"k\":\"seen\",\"room\":\"%s\",\"person\":\"%s\",\"seq\":4},"
             "{\"i\":3,\"k\":\"read\",\"room\":\"%s\",\"person\":\"%s\",\"seq\":1}]",
             w.room, w.person[1], w.room, w.person[1], w.room, w.person[1], w.room, w.person[1]);
    snprintf(rcpt_dlg, sizeof rcpt_dlg,
             "[{\"i\":0,\"k\":\"rate\",\"room\":\"%s\",\"person\":\"%s\",\"seq\":2,\"stars\":4},"
             "{\"i\":1,\"k\":\"unrate\",\"room\":\"%s\",\"person\":\"%s\",\"seq\":3}]",
             dlg, w.person[1], dlg, w.person[1]);
    struct {
        const char *name;
        int stmt;
        int n;
        const char *p[4];
        const char *tables; /* the partitioned tables it reads */
    } cases[] = {
        {"history before", ST_BEFORE, 3, {w.room, "1000", "50"}, "messages"},
        {"history after", ST_HIST_AFTER, 3, {w.room, "0", "50"}, "messages"},
        {"history of a full room", ST_BEFORE, 3, {other, "1000", "50"}, "messages"},
        {"replay (gap fetch)", ST_FETCH, 4, {w.room, "0", "200", "262144"}, "messages"},
        {"replay of a full room", ST_FETCH, 4, {other, "100", "200", "262144"}, "messages"},
        {"send batch", ST_INSERT_BATCH, 1, {send_json}, "messages"},
        {"send batch, a reply", ST_INSERT_BATCH, 1, {dup_json}, "messages"},
        {"receipts batch, chat", ST_STATE_BATCH, 1, {rcpt_chat}, "messages likes"},
        {"receipts batch, dialogue", ST_STATE_BATCH, 1, {rcpt_dlg}, "messages ratings"},
    };
    /* The plan PostgreSQL picks depends on the tables' statistics, so each
     * statement is also planned with nested loops off: however its queries
     * are joined, they read one partition. Not what its UPDATE and DELETE
     * read there: PostgreSQL 15 prunes their target at run time only inside
     * a nested loop (with hash joins the receipts batch probes each
     * partition's index for the batch's rooms, which receipts.c bounds to
     * an index search each); those are checked in the plans PostgreSQL
     * chooses itself. */
    const char *modes[] = {"force_custom_plan", "force_generic_plan",
                           "force_custom_plan; SET LOCAL enable_nestloop = off"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        for (int m = 0; m < 3; m++) {
            struct touched t;
            explain(pg, cases[c].name, modes[m], st[cases[c].stmt].sql, cases[c].n, cases[c].p, &t);
            expect_one_each(cases[c].name, modes[m], &t, cases[c].tables);
        }
    /* the fill rooms go (the rest of the suite shares this database) */
    snprintf(sql, sizeof sql, "DELETE FROM rooms WHERE workspace_id = '%s' AND name LIKE 'fill-%%'",
             w.ws);
    exec_ok(pg, sql);
    PQfinish(pg);
}

/* ---- migration ---------------------------------------------------------- */

/* Row count and a digest of every row of table, in a stable order. */
static void digest(const char *table, char out[64])
{
    snprintf(out, 64, "%s",
             it_sqlf("SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, '|'"
                     " ORDER BY t::text), '')) FROM %s t",
                     table));
}

static const char *const KEPT[] = {"messages", "seen", "likes", "ratings", "rooms", "read_state"};
enum { NKEPT = 6, NCHAT = 5 };

static int64_t send_seq(struct wsc *c, const char *room, const char *cmid, const char *body,
                        int64_t parent)
{
    cJSON *r = parent ? it_ok(c,
                              "\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"%s\","
                              "\"body\":\"%s\",\"parent\":%lld",
                              room, cmid, body, (long long)parent)
                      : it_ok(c,
                              "\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"%s\","
                              "\"body\":\"%s\"",
                              room, cmid, body);
    int64_t seq = wsc_int(r, "ok.seq");
    cJSON_Delete(r);
    return seq;
}

static void quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

static void migrate_moves_every_row(void **state)
{
    (void)state;
    /* A database of its own in the suite's PostgreSQL (its superuser makes
     * it), brought to the schema before 012 with the migrations before it. */
    char su[400], dbname[32], conninfo[sizeof IT.pg + 96], saved[sizeof IT.pg], old_dir[700],
        out[4096], q[256];
    snprintf(dbname, sizeof dbname, "parley_mig_%d", (int)getpid());
    snprintf(su, sizeof su, "%s user=postgres", IT.pg);
    PGconn *admin = db(su);
    PQsetNoticeProcessor(admin, quiet, NULL);
    snprintf(q, sizeof q, "DROP DATABASE IF EXISTS %s WITH (FORCE)", dbname);
    exec_ok(admin, q);
    snprintf(q, sizeof q, "CREATE DATABASE %s OWNER parley", dbname);
    exec_ok(admin, q);
    snprintf(old_dir, sizeof old_dir, "%s/sql-before-012", IT.state);
    assert_int_equal(it_run(out, sizeof out,
                            "rm -rf '%s' && mkdir '%s' && for f in '%s'/*.sql; do"
                            " case \"${f##*/}\" in 00[0-9]_*|01[01]_*) cp \"$f\" '%s';; esac;"
                            " done; ls '%s' | grep -c sql",
                            old_dir, old_dir, SQL_DIR, old_dir, old_dir),
                     0);
    snprintf(conninfo, sizeof conninfo, "%s dbname=%s", IT.pg, dbname);
    snprintf(saved, sizeof saved, "%s", IT.pg);
    assert_true(strlen(conninfo) < sizeof IT.pg);
    memcpy(IT.pg, conninfo, strlen(conninfo) + 1); /* it_admin, it_sql, gateways: this one */
    assert_int_equal(it_run(out, sizeof out, "'%s' migrate --pg '%s' --sql-dir '%s'", IT.parleyd,
                            IT.pg, old_dir),
                     0);
    assert_string_equal(it_sql("SELECT max(version) FROM schema_migrations"), "11");
    assert_string_equal(it_sql("SELECT relkind FROM pg_class WHERE relname = 'messages'"), "r");

    /* Content made the way a gateway of that version makes it. */
    int port;
    pid_t gw = it_own_gateway("part-old", &port, "--sql-dir", old_dir, NULL);
    struct it_world w;
    it_world(&w, 2, NULL);
    char rooms[NCHAT + 1][40];
    int64_t sent[NCHAT + 1] = {0};
    snprintf(rooms[0], sizeof rooms[0], "%s", w.room);
    for (int k = 1; k < NCHAT; k++)
        snprintf(rooms[k], sizeof rooms[k], "%s", it_admin("create-room %s chat-%d", w.ws, k));
    snprintf(rooms[NCHAT], sizeof rooms[NCHAT], "%s",
             it_admin("create-room %s ideas workspace dialogue", w.ws));
    struct wsc *a = it_connect_port(port, NULL, w.tok[0]);
    struct wsc *b = it_connect_port(port, NULL, w.tok[1]);
    assert_non_null(a);
    assert_non_null(b);
    char cmid[32], body[64];
    for (int k = 0; k <= NCHAT; k++) {
        cJSON_Delete(it_join(a, rooms[k], -1));
        cJSON_Delete(it_join(b, rooms[k], -1));
    }
    for (int k = 0; k < NCHAT; k++) {
        for (int i = 1; i <= 4 + k; i++) {
            snprintf(cmid, sizeof cmid, "c%d-%d", k, i);
            snprintf(body, sizeof body, "room %d message %d", k, i);
            assert_int_equal(send_seq(a, rooms[k], cmid, body, 0), ++sent[k]);
        }
        cJSON_Delete(it_ok(b, "\"op\":\"like\",\"room\":\"%s\",\"seq\":2", rooms[k]));
        cJSON_Delete(it_ok(b, "\"op\":\"seen\",\"room\":\"%s\",\"seq\":3", rooms[k]));
        cJSON_Delete(it_ok(b, "\"op\":\"read\",\"room\":\"%s\",\"seq\":1", rooms[k]));
    }
    int64_t e1 = send_seq(a, rooms[NCHAT], "e1", "entry one", 0);
    int64_t e2 = send_seq(b, rooms[NCHAT], "e2", "entry two", 0);
    int64_t r1 = send_seq(b, rooms[NCHAT], "r1", "a reply", e1);
    assert_true(e1 > 0 && e2 > e1 && r1 > e2);
    sent[NCHAT] = 3;
    cJSON_Delete(it_ok(b, "\"op\":\"rate\",\"room\":\"%s\",\"seq\":%lld,\"stars\":5", rooms[NCHAT],
                       (long long)e1));
    cJSON_Delete(it_ok(a, "\"op\":\"rate\",\"room\":\"%s\",\"seq\":%lld,\"stars\":2", rooms[NCHAT],
                       (long long)e2));
    wsc_close(a);
    wsc_close(b);
    /* the coalesced votes and read events are stored by the drain */
    assert_int_equal(it_stop(gw), 0);
    assert_int_equal(atoi(it_sql("SELECT count(*) FROM seen")), NCHAT);
    assert_int_equal(atoi(it_sql("SELECT count(*) FROM likes")), NCHAT);
    assert_int_equal(atoi(it_sql("SELECT count(*) FROM ratings")), 2);
    assert_true(atoi(it_sql("SELECT count(*) FROM messages WHERE kind = 'votes'")) > 0);
    char before[NKEPT][64];
    for (int t = 0; t < NKEPT; t++)
        digest(KEPT[t], before[t]);
    int64_t last[NCHAT + 1];
    for (int k = 0; k <= NCHAT; k++)
        last[k] = atoll(it_sqlf("SELECT last_seq FROM rooms WHERE id = '%s'", rooms[k]));

    /* The migration, with 4 partitions. */
    assert_int_equal(it_run(out, sizeof out, "'%s' migrate --pg '%s' --sql-dir '%s' --partitions 4",
                            IT.parleyd, IT.pg, SQL_DIR),
                     0);
    assert_non_null(strstr(out, "applied 012_partition.sql"));
    for (int t = 0; t < NPART_TABLES; t++) {
        assert_string_equal(
            it_sqlf("SELECT relkind FROM pg_class WHERE relname = '%s'", PARTITIONED[t]), "p");
        assert_string_equal(it_sqlf("SELECT count(*) FROM pg_inherits WHERE inhparent ="
                                    " 'public.%s'::regclass",
                                    PARTITIONED[t]),
                            "4");
    }
    /* the rooms' rows went to more than one partition */
    assert_true(atoi(it_sql("SELECT count(DISTINCT tableoid) FROM messages")) > 1);
    for (int t = 0; t < NKEPT; t++) {
        char after[64];
        digest(KEPT[t], after);
        if (strcmp(before[t], after)) fprintf(stderr, "%s changed\n", KEPT[t]);
        assert_string_equal(before[t], after);
    }
    /* constraints and the trigger came along */
    assert_string_equal(it_sql("SELECT count(*) FROM pg_constraint WHERE conrelid ="
                               " 'messages'::regclass AND contype IN ('p', 'u', 'f')"),
                        "4");
    assert_string_equal(it_sql("SELECT count(*) FROM pg_trigger WHERE tgrelid ="
                               " 'messages'::regclass AND NOT tgisinternal"),
                        "1");

    /* Through a gateway of this version: every message in history, in
     * order, and since-replay from 0 brings the whole log. */
    gw = it_own_gateway("part-new", &port, "--sql-dir", SQL_DIR, NULL);
    a = it_connect_port(port, NULL, w.tok[0]);
    assert_non_null(a);
    for (int k = 0; k <= NCHAT; k++) {
        cJSON_Delete(it_join(a, rooms[k], -1));
        cJSON *r =
            it_ok(a, "\"op\":\"history\",\"room\":\"%s\",\"after\":0,\"limit\":100", rooms[k]);
        cJSON *msgs = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "messages");
        assert_int_equal(cJSON_GetArraySize(msgs), sent[k]);
        int64_t prev = 0;
        for (int i = 0; i < sent[k]; i++) {
            cJSON *m = cJSON_GetArrayItem(msgs, i);
            assert_true(wsc_int(m, "seq") > prev);
            prev = wsc_int(m, "seq");
            if (k == NCHAT) continue;
            assert_int_equal(wsc_int(m, "seq"), i + 1);
            snprintf(body, sizeof body, "room %d message %d", k, i + 1);
            assert_string_equal(wsc_str(m, "body"), body);
            assert_string_equal(wsc_str(m, "sender"), w.person[0]);
        }
        cJSON_Delete(r);
        /* new sends continue the room's seq */
        snprintf(cmid, sizeof cmid, "after-%d", k);
        assert_int_equal(send_seq(a, rooms[k], cmid, "after the migration", 0), last[k] + 1);
    }
    wsc_close(a);
    assert_int_equal(atoll(it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s'", rooms[0])),
                     last[0] + 1);

    /* Again: nothing to do. */
    assert_int_equal(it_run(out, sizeof out, "'%s' migrate --pg '%s' --sql-dir '%s' --partitions 4",
                            IT.parleyd, IT.pg, SQL_DIR),
                     0);
    assert_null(strstr(out, "applied"));
    assert_non_null(strstr(out, "schema up to date (version 12)"));
    assert_null(strstr(out, "NOTICE")); /* PostgreSQL's notices are not the command's answer */
    assert_int_equal(it_stop(gw), 0);

    snprintf(IT.pg, sizeof IT.pg, "%s", saved);
    snprintf(q, sizeof q, "DROP DATABASE %s WITH (FORCE)", dbname);
    exec_ok(admin, q);
    PQfinish(admin);
}

/* ---- the purge ------------------------------------------------------------ */

/* Rows of workspace ws in table (all four are room-scoped). */
static int64_t ws_rows(const char *table, const char *ws)
{
    return atoll(it_sqlf("SELECT count(*) FROM %s x JOIN rooms r ON r.id = x.room_id"
                         " WHERE r.workspace_id = '%s'",
                         table, ws));
}

/* Fills 16 rooms of world w (rows in every partition): 20 messages each,
 * likes, seen rows and ratings on some. */
static void fill(const struct it_world *w)
{
    char sql[1600];
    snprintf(sql, sizeof sql,
             "WITH r AS (INSERT INTO rooms (workspace_id, name, last_seq)"
             "  SELECT '%s', 'purge-' || g, 20 FROM generate_series(1, 16) g RETURNING id),"
             " m AS (INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body)"
             "  SELECT r.id, s, '%s', 'c' || s, 'x' FROM r, generate_series(1, 20) s"
             "  RETURNING room_id, seq),"
             " l AS (INSERT INTO likes (room_id, seq, person_id)"
             "  SELECT room_id, seq, '%s' FROM m WHERE seq %% 2 = 0),"
             " s AS (INSERT INTO seen (room_id, seq, person_id)"
             "  SELECT room_id, seq, '%s' FROM m WHERE seq %% 3 = 0)"
             " INSERT INTO ratings (room_id, seq, person_id, stars)"
             "  SELECT room_id, seq, '%s', 4 FROM m WHERE seq %% 4 = 0",
             w->ws, w->person[0], w->person[1], w->person[1], w->person[1]);
    PGconn *pg = db(IT.pg);
    exec_ok(pg, sql);
    PQfinish(pg);
}

/* The purge deletes a batch of a deleted workspace's rows by their place;
 * a ctid alone names a row only within one partition, so the purge must
 * leave every other workspace's rows where they share partitions. */
static void purge_keeps_other_workspaces(void **state)
{
    (void)state;
    struct it_world gone, kept;
    it_world(&gone, 2, NULL);
    it_world(&kept, 2, NULL);
    fill(&kept); /* first: its rows sit at the places the other's will take */
    fill(&gone);
    int64_t before[NPART_TABLES];
    for (int t = 0; t < NPART_TABLES; t++) {
        before[t] = ws_rows(PARTITIONED[t], kept.ws);
        assert_int_equal(ws_rows(PARTITIONED[t], gone.ws), before[t]);
        assert_true(before[t] > 0);
    }
    it_sqlf("UPDATE workspaces SET deleted_at = now(), purge_at = now() - interval '1 hour'"
            " WHERE id = '%s' RETURNING 1",
            gone.ws);
    /* small batches, as the job runs them (the gateways' job may take some) */
    for (int i = 0; i < 200; i++) {
        if (!strcmp(it_sqlf("SELECT count(*) FROM workspaces WHERE id = '%s'", gone.ws), "0"))
            break;
        it_sql("SELECT parley_ws_purge(50)");
    }
    assert_string_equal(it_sqlf("SELECT count(*) FROM workspaces WHERE id = '%s'", gone.ws), "0");
    for (int t = 0; t < NPART_TABLES; t++) {
        if (ws_rows(PARTITIONED[t], kept.ws) != before[t])
            fprintf(stderr, "%s: %lld of %lld rows left\n", PARTITIONED[t],
                    (long long)ws_rows(PARTITIONED[t], kept.ws), (long long)before[t]);
        assert_int_equal(ws_rows(PARTITIONED[t], kept.ws), before[t]);
    }
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(explain_touches_one_partition),
        cmocka_unit_test(migrate_moves_every_row),
        cmocka_unit_test(purge_keeps_other_workspaces),
    };
    return cmocka_run_group_tests(tests, NULL, it_kill_spawned);
}
