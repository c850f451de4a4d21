/* Integration: deleting a workspace (issue 17). A deleted workspace is,
 * during its grace period, like one that does not exist for everyone (its
 * members and owners included: 404, connections closed, no sign-in); its
 * owners alone find it and restore it; a stranger cannot tell it from a
 * workspace that never existed. After the grace the purge removes every
 * row of it, from every table the catalog lists, in bounded runs, and the
 * people who belonged to no other workspace, and nothing of another
 * workspace. And a held message approved and later deleted keeps no text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpc.h"
#include "itest.h"

#define PW "Tr0ub4dor&3-horse-staple"

/* The API on gateway g: http_reqf with the arguments in this file's order. */
#define api(g, tok, method, body, ...) http_reqf(IT.gw[g], NULL, method, tok, body, __VA_ARGS__)

static int status_of(struct hres r)
{
    int s = r.status;
    hres_free(&r);
    return s;
}

/* A workspace with an owner, an admin, a member, a room and a few messages. */
struct place {
    char ws[40], room[40], name[48];
    char owner[40], owner_tok[64];
    char admin[40], admin_tok[64];
    char member[40], member_tok[64], member_email[80];
};

static void place_new(struct place *pl, const char *tag)
{
    snprintf(pl->name, sizeof pl->name, "%s-%d", tag, rand());
    snprintf(pl->ws, sizeof pl->ws, "%s", it_admin("create-workspace %s", pl->name));
    snprintf(pl->room, sizeof pl->room, "%s", it_admin("create-room %s chat workspace", pl->ws));
    char email[80];
    snprintf(email, sizeof email, "own-%d@wsdel.invalid", rand());
    snprintf(pl->owner, sizeof pl->owner, "%s",
             it_admin("create-person %s %s owner", pl->ws, email));
    snprintf(pl->owner_tok, sizeof pl->owner_tok, "%s",
             it_admin("create-token %s %s", pl->owner, pl->ws));
    snprintf(email, sizeof email, "adm-%d@wsdel.invalid", rand());
    snprintf(pl->admin, sizeof pl->admin, "%s",
             it_admin("create-person %s %s admin", pl->ws, email));
    snprintf(pl->admin_tok, sizeof pl->admin_tok, "%s",
             it_admin("create-token %s %s", pl->admin, pl->ws));
    snprintf(pl->member_email, sizeof pl->member_email, "mem-%d@wsdel.invalid", rand());
    snprintf(pl->member, sizeof pl->member, "%s",
             it_admin("create-person %s %s member", pl->ws, pl->member_email));
    snprintf(pl->member_tok, sizeof pl->member_tok, "%s",
             it_admin("create-token %s %s", pl->member, pl->ws));
}

static bool listed(const char *tok, const char *path, const char *id)
{
    struct hres r = api(0, tok, "GET", NULL, "%s", path);
    assert_int_equal(r.status, 200);
    bool found = strstr(r.body, id) != NULL;
    hres_free(&r);
    return found;
}

/* ---- grace period, visibility, restore ----------------------------------- */

static void test_grace_and_restore(void **st)
{
    (void)st;
    struct place a, b;
    place_new(&a, "wsdel");
    place_new(&b, "other");
    struct wsc *c = it_member(1, a.member_tok, a.room);
    cJSON_Delete(it_send(c, a.room, "m1", "kept through the grace"));

    /* only an owner deletes (403 for an admin), and the answer says until when */
    assert_int_equal(status_of(api(0, a.admin_tok, "DELETE", NULL, "/api/v1/workspaces/%s", a.ws)),
                     403);
    /* another workspace's owner: 404, as for a workspace that does not exist */
    assert_int_equal(status_of(api(0, b.owner_tok, "DELETE", NULL, "/api/v1/workspaces/%s", a.ws)),
                     404);
    struct hres r = api(0, a.owner_tok, "DELETE", NULL, "/api/v1/workspaces/%s", a.ws);
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "id"), a.ws);
    hres_free(&r);
    assert_string_equal(it_sqlf("SELECT purge_at - deleted_at BETWEEN interval '29 days 23 hours'"
                                " AND interval '30 days 1 hour' FROM workspaces WHERE id = '%s'",
                                a.ws),
                        "t");
    /* every gateway closes the connections to it */
    assert_int_equal(wsc_wait_closed(c, 3000), 1008);
    wsc_close(c);

    /* for everyone, its owner too: a workspace that does not exist */
    const char *toks[] = {a.owner_tok, a.admin_tok, a.member_tok};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(status_of(api(i % 2, toks[i], "GET", NULL, "/api/v1/workspaces/%s", a.ws)),
                         404);
        assert_int_equal(
            status_of(api(i % 2, toks[i], "GET", NULL, "/api/v1/workspaces/%s/rooms", a.ws)), 404);
        assert_false(listed(toks[i], "/api/v1/workspaces", a.ws));
        assert_false(listed(toks[i], "/api/v1/me", a.ws));
        assert_null(it_connect_auth(i % 2, toks[i]));
    }
    assert_int_equal(status_of(api(0, a.owner_tok, "DELETE", NULL, "/api/v1/workspaces/%s", a.ws)),
                     404);
    assert_int_equal(
        status_of(api(0, a.owner_tok, "PATCH", "{\"name\":\"x\"}", "/api/v1/workspaces/%s", a.ws)),
        404);
    /* its owners find it, nobody else does */
    assert_true(listed(a.owner_tok, "/api/v1/me/deleted-workspaces", a.ws));
    assert_false(listed(a.admin_tok, "/api/v1/me/deleted-workspaces", a.ws));
    assert_false(listed(b.owner_tok, "/api/v1/me/deleted-workspaces", a.ws));
    /* restore: an admin, a member, another workspace's owner get what a
     * workspace that never existed gets */
    const char *nobody = "00000000-0000-4000-8000-000000000abc";
    int never =
        status_of(api(0, b.owner_tok, "POST", NULL, "/api/v1/workspaces/%s/restore", nobody));
    assert_int_equal(never, 404);
    const char *strangers[] = {a.admin_tok, a.member_tok, b.owner_tok, b.admin_tok};
    for (int i = 0; i < 4; i++) {
        r = api(i % 2, strangers[i], "POST", NULL, "/api/v1/workspaces/%s/restore", a.ws);
        assert_int_equal(r.status, 404);
        assert_string_equal(hres_str(&r, "error.code"), "not_found");
        hres_free(&r);
    }
    /* ... and an owner's live workspace is not restorable */
    r = api(0, b.owner_tok, "POST", NULL, "/api/v1/workspaces/%s/restore", b.ws);
    assert_int_equal(r.status, 409);
    assert_string_equal(hres_str(&r, "error.code"), "not_deleted");
    hres_free(&r);
    /* nothing was removed meanwhile */
    assert_string_equal(it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s'", a.room), "1");

    r = api(1, a.owner_tok, "POST", NULL, "/api/v1/workspaces/%s/restore", a.ws);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    assert_int_equal(status_of(api(0, a.member_tok, "GET", NULL, "/api/v1/workspaces/%s", a.ws)),
                     200);
    assert_true(listed(a.member_tok, "/api/v1/workspaces", a.ws));
    c = it_member(0, a.member_tok, a.room);
    wsc_close(c);
    assert_string_equal(it_sqlf("SELECT body FROM messages WHERE room_id = '%s'", a.room),
                        "kept through the grace");
    assert_string_equal(it_sqlf("SELECT string_agg(action, ',' ORDER BY id) FROM"
                                " workspace_deletions WHERE workspace_id = '%s'",
                                a.ws),
                        "delete,restore");

    /* once the grace is over it cannot be restored: the purge job takes it
     * (the gateways' job, within seconds) and counts it in /metrics */
    double before = it_metric(0, "parley_retention_removed_total{kind=\"workspaces\"}") +
                    it_metric(1, "parley_retention_removed_total{kind=\"workspaces\"}");
    assert_int_equal(status_of(api(0, a.owner_tok, "DELETE", NULL, "/api/v1/workspaces/%s", a.ws)),
                     200);
    it_sqlf("UPDATE workspaces SET deleted_at = now() - interval '31 days',"
            " purge_at = now() - interval '1 day' WHERE id = '%s' RETURNING 1",
            a.ws);
    const char *gone = "";
    for (int i = 0; i < 100; i++) {
        gone = it_sqlf("SELECT count(*) FROM workspaces WHERE id = '%s'", a.ws);
        if (!strcmp(gone, "0")) break;
        usleep(100000);
    }
    assert_string_equal(gone, "0");
    assert_int_equal(
        status_of(api(0, a.owner_tok, "POST", NULL, "/api/v1/workspaces/%s/restore", a.ws)),
        401); /* its token went with it */
    double after = it_metric(0, "parley_retention_removed_total{kind=\"workspaces\"}") +
                   it_metric(1, "parley_retention_removed_total{kind=\"workspaces\"}");
    assert_true(after >= before + 1);
    /* the other workspace is untouched */
    assert_int_equal(status_of(api(0, b.member_tok, "GET", NULL, "/api/v1/workspaces/%s", b.ws)),
                     200);
}

/* A session holding the purge's lock, so that the gateways' purge job
 * skips its runs (bounded: 10 s); closing it releases the lock. */
static PGconn *purge_lock(void)
{
    PGconn *pg = PQconnectdb(IT.pg);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    for (int i = 0; i < 100; i++) {
        PGresult *r = PQexec(pg, "SELECT pg_try_advisory_lock(hashtext('parley_ws_purge'))");
        bool got = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if (got) return pg;
        usleep(100000);
    }
    PQfinish(pg);
    fail_msg("the purge's lock stayed taken for 10 s");
    return NULL;
}

/* After the grace, before the purge has run: 410 for its owner (and still
 * 404 for anyone else). The purge is held off by taking its lock. */
static void test_restore_too_late(void **st)
{
    (void)st;
    struct place a;
    place_new(&a, "late");
    assert_int_equal(status_of(api(0, a.owner_tok, "DELETE", NULL, "/api/v1/workspaces/%s", a.ws)),
                     200);
    PGconn *pg = purge_lock();
    it_sqlf("UPDATE workspaces SET purge_at = now() - interval '1 second' WHERE id = '%s'"
            " RETURNING 1",
            a.ws);
    struct hres r = api(0, a.owner_tok, "POST", NULL, "/api/v1/workspaces/%s/restore", a.ws);
    int admin = status_of(api(0, a.admin_tok, "POST", NULL, "/api/v1/workspaces/%s/restore", a.ws));
    bool shown = listed(a.owner_tok, "/api/v1/me/deleted-workspaces", a.ws);
    PQfinish(pg); /* the lock goes with the session, before any assertion can leave */
    assert_int_equal(r.status, 410);
    assert_string_equal(hres_str(&r, "error.code"), "purging");
    hres_free(&r);
    assert_int_equal(admin, 404);
    assert_false(shown);
    /* Then the gateways' job purges it, within seconds: gone before the
     * next test, whose own purge must find no other workspace due first. */
    const char *gone = "";
    for (int i = 0; i < 150 && strcmp(gone, "0"); i++) {
        gone = it_sqlf("SELECT count(*) FROM workspaces WHERE id = '%s'", a.ws);
        if (strcmp(gone, "0")) usleep(100000);
    }
    assert_string_equal(gone, "0");
}

/* ---- the purge ----------------------------------------------------------- */

/* Rows holding needle in any text, json or address column of any table
 * (from the catalog, so a table added later is covered). */
static long scan(PGconn *pg, const char *needle)
{
    PGresult *cols = PQexec(
        pg, "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), quote_ident(a.attname)"
            "  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid"
            " WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"
            "  AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            "  AND n.nspname NOT LIKE 'pg_toast%'"
            "  AND (t.typname IN ('text', 'varchar', 'bpchar', 'name', 'json', 'jsonb', 'inet',"
            "   'cidr', 'citext', 'xml') OR (t.typcategory = 'A' AND t.typelem IN (SELECT oid"
            "   FROM pg_type WHERE typname IN ('text', 'varchar', 'citext', 'inet'))))");
    assert_int_equal(PQresultStatus(cols), PGRES_TUPLES_OK);
    assert_true(PQntuples(cols) > 40);
    long hits = 0;
    for (int i = 0; i < PQntuples(cols); i++) {
        char q[400];
        snprintf(q, sizeof q,
                 "SELECT count(*) FROM %s WHERE strpos(lower(%s::text), lower($1)) > 0",
                 PQgetvalue(cols, i, 0), PQgetvalue(cols, i, 1));
        const char *v[1] = {needle};
        PGresult *r = PQexecParams(pg, q, 1, NULL, v, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        long n = atol(PQgetvalue(r, 0, 0));
        if (n)
            fprintf(stderr, "  \"%s\" found in %s.%s (%ld rows)\n", needle, PQgetvalue(cols, i, 0),
                    PQgetvalue(cols, i, 1), n);
        hits += n;
        PQclear(r);
    }
    PQclear(cols);
    return hits;
}

/* Rows of every table that name one of ids in a uuid column (any uuid
 * column: workspace_id, room_id, person_id, invited_by, ...), table by table
 * from the catalog, as "table=count;" for the tables with any. skip: a
 * table left out (the deletion record, which outlives the workspace). */
static void refs(PGconn *pg, const char *ids_array, const char *skip, char *out, size_t cap)
{
    /* table, column, whether it is an array */
    PGresult *cols = PQexec(
        pg, "SELECT quote_ident(c.relname), quote_ident(a.attname),"
            "  a.atttypid = 'uuid[]'::regtype FROM pg_attribute a"
            " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"
            "  AND n.nspname = current_schema() AND a.atttypid IN ('uuid'::regtype,"
            "   'uuid[]'::regtype) ORDER BY 1, 2");
    assert_int_equal(PQresultStatus(cols), PGRES_TUPLES_OK);
    assert_true(PQntuples(cols) > 30);
    out[0] = 0;
    size_t n = 0;
    for (int i = 0; i < PQntuples(cols); i++) {
        if (!strcmp(PQgetvalue(cols, i, 0), skip)) continue;
        char q[400];
        bool array = !strcmp(PQgetvalue(cols, i, 2), "t");
        if (!array)
            snprintf(q, sizeof q, "SELECT count(*) FROM %s x WHERE x.%s::text = ANY($1::text[])",
                     PQgetvalue(cols, i, 0), PQgetvalue(cols, i, 1));
        else
            snprintf(q, sizeof q, "SELECT count(*) FROM %s x WHERE x.%s::text[] && $1::text[]",
                     PQgetvalue(cols, i, 0), PQgetvalue(cols, i, 1));
        const char *v[1] = {ids_array};
        PGresult *r = PQexecParams(pg, q, 1, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) fprintf(stderr, "%s\n", PQerrorMessage(pg));
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        long k = atol(PQgetvalue(r, 0, 0));
        if (k && n < cap)
            n += (size_t)snprintf(out + n, cap - n, "%s.%s=%ld;", PQgetvalue(cols, i, 0),
                                  PQgetvalue(cols, i, 1), k);
        PQclear(r);
    }
    PQclear(cols);
}

/* Data of every kind in pl's workspace, with distinctive texts tagged t. */
static void fill(struct place *pl, const char *t, const char *only_id, const char *ip)
{
    struct wsc *c = it_member(0, pl->member_tok, pl->room);
    struct wsc *o = it_member(1, pl->owner_tok, pl->room);
    char body[64];
    snprintf(body, sizeof body, "%s-body", t);
    cJSON *x = it_send(c, pl->room, "b1", body);
    int64_t seq = wsc_int(x, "ok.seq");
    cJSON_Delete(x);
    cJSON_Delete(wsc_request(o, 5000, "\"op\":\"like\",\"room\":\"%s\",\"seq\":%lld", pl->room,
                             (long long)seq));
    cJSON_Delete(wsc_request(o, 5000, "\"op\":\"read\",\"room\":\"%s\",\"seq\":%lld", pl->room,
                             (long long)seq));
    wsc_close(c);
    wsc_close(o);
    /* many more, so that the purge takes several runs */
    it_sqlf("WITH r AS (UPDATE rooms SET last_seq = last_seq + 300 WHERE id = '%s'"
            " RETURNING id, last_seq)"
            " INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body)"
            " SELECT r.id, r.last_seq - 300 + g, '%s', 'bulk' || g, '%s-bulk-' || g"
            " FROM r, generate_series(1, 300) g RETURNING 1",
            pl->room, pl->member, t);
    it_sqlf("INSERT INTO seen (room_id, seq, person_id) SELECT '%s', g, '%s'"
            " FROM generate_series(2, 150) g RETURNING 1",
            pl->room, pl->owner);
    it_sqlf("INSERT INTO pending (room_id, sender_id, client_msg_id, body, state)"
            " VALUES ('%s', '%s', 'h1', '%s-held', 'held') RETURNING 1",
            pl->room, pl->member, t);
    it_sqlf("INSERT INTO guideline_hits (workspace_id, room_id, person_id, rule_id, action, kind)"
            " VALUES ('%s', '%s', '%s', 'r1', 'flag', 'word') RETURNING 1",
            pl->ws, pl->room, pl->member);
    it_sqlf("INSERT INTO mutes (workspace_id, person_id, until, muted_by, reason) VALUES"
            " ('%s', '%s', now() + interval '1 hour', '%s', '%s-mute') RETURNING 1",
            pl->ws, pl->member, pl->owner, t);
    it_sqlf("INSERT INTO room_bans (room_id, person_id, banned_by) VALUES ('%s', '%s', '%s')"
            " RETURNING 1",
            pl->room, pl->admin, pl->owner);
    it_sqlf("INSERT INTO moderation_log (workspace_id, room_id, actor_id, action, target_person,"
            " reason) VALUES ('%s', '%s', '%s', 'mute', '%s', '%s-modlog') RETURNING 1",
            pl->ws, pl->room, pl->owner, pl->member, t);
    it_sqlf("WITH i AS (INSERT INTO invitations (workspace_id, hash, email, role, invited_by,"
            " expires_at) VALUES ('%s', decode(md5(random()::text) || md5(random()::text), 'hex'),"
            " '%s-inv@wsdel.invalid', 'member', '%s', now() + interval '1 day') RETURNING *)"
            " INSERT INTO outbox (workspace_id, invitation_id, channel, recipient, payload)"
            " SELECT i.workspace_id, i.id, 'email', i.email, '{\"k\": \"%s-outbox\"}' FROM i"
            " RETURNING 1",
            pl->ws, t, pl->owner, t);
    it_sqlf("INSERT INTO visits (workspace_id, person_id, kind, ip) SELECT '%s', '%s',"
            " 'websocket', '%s' FROM generate_series(1, 40) RETURNING 1",
            pl->ws, pl->member, ip);
    /* a sign-in visit of no workspace: the person's own, gone with them */
    it_sqlf("INSERT INTO visits (person_id, kind, ip) VALUES ('%s', 'login', '%s') RETURNING 1",
            only_id, ip);
    it_sqlf("UPDATE people SET first_name = '%s-first', last_name = '%s-last' WHERE id = '%s'"
            " RETURNING 1",
            t, t, only_id);
    it_sqlf("UPDATE workspace_members SET title = '%s-title' WHERE person_id = '%s'"
            " AND workspace_id = '%s' RETURNING 1",
            t, only_id, pl->ws);
    /* an avatar of the workspace, a person row only it has */
    it_sqlf("WITH pe AS (INSERT INTO people (display_name, is_avatar) VALUES ('%s-bot', true)"
            " RETURNING id), av AS (INSERT INTO avatars (person_id, workspace_id, persona)"
            " SELECT pe.id, '%s', '%s-persona' FROM pe RETURNING 1)"
            " INSERT INTO workspace_members (workspace_id, person_id, role)"
            " SELECT '%s', pe.id, 'avatar' FROM pe RETURNING 1",
            t, pl->ws, t, pl->ws);
    /* The like's and the read's events are written after the coalescing
     * interval (--coalesce-ms), later than the acks: wait for them, or the
     * caller's "before" misses rows its "after" finds. */
    const char *events = "";
    for (int i = 0; i < 100 && strcmp(events, "t"); i++) {
        events = it_sqlf("SELECT EXISTS (SELECT 1 FROM messages m WHERE m.room_id = r.id"
                         " AND m.kind = 'votes') AND (NOT r.broadcast_reads OR EXISTS (SELECT 1"
                         " FROM messages m WHERE m.room_id = r.id AND m.kind = 'read'))"
                         " FROM rooms r WHERE r.id = '%s'",
                         pl->room);
        if (strcmp(events, "t")) usleep(100000);
    }
    assert_string_equal(events, "t");
}

/* The purge, run here in bounded runs (the gateways' job held off by its
 * lock): each run removes at most the batch; afterwards no row of any
 * table names the workspace, its rooms or the people who were only its,
 * no text of theirs is anywhere, and the other workspace (and the member
 * who belongs to both) has every row it had. */
static void test_purge_everything_of_it_only(void **st)
{
    (void)st;
    struct place a, b;
    place_new(&a, "purged");
    place_new(&b, "kept");
    /* the admin of a is also a member of b: their account stays */
    it_sqlf("INSERT INTO workspace_members (workspace_id, person_id, role) VALUES ('%s', '%s',"
            " 'member') RETURNING 1",
            b.ws, a.admin);
    char ta[32], tb[32], ipa[24], ipb[24];
    snprintf(ta, sizeof ta, "zpurge%d", rand());
    snprintf(tb, sizeof tb, "zkeep%d", rand());
    snprintf(ipa, sizeof ipa, "127.77.%d.%d", rand() % 250 + 1, rand() % 250 + 1);
    snprintf(ipb, sizeof ipb, "127.78.%d.%d", rand() % 250 + 1, rand() % 250 + 1);
    fill(&a, ta, a.member, ipa);
    fill(&b, tb, b.member, ipb);
    char rooma2[40];
    snprintf(rooma2, sizeof rooma2, "%s", it_admin("create-room %s second workspace", a.ws));

    PGconn *pg = PQconnectdb(IT.pg);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    char ids_a[400], ids_b[400], before_b[4096], after_b[4096], left_a[4096];
    /* what is the purged workspace's: it, its rooms, the people only it had */
    snprintf(ids_a, sizeof ids_a, "{%s,%s,%s,%s,%s}", a.ws, a.room, rooma2, a.member, a.owner);
    snprintf(ids_b, sizeof ids_b, "{%s,%s,%s,%s,%s}", b.ws, b.room, b.member, b.owner, b.admin);
    refs(pg, ids_b, "workspace_deletions", before_b, sizeof before_b);
    refs(pg, ids_a, "workspace_deletions", left_a, sizeof left_a);
    /* there is something to purge, of every kind filled */
    const char *kinds[] = {"messages.room_id=",        "seen.room_id=",
                           "likes.room_id=",           "read_state.room_id=",
                           "pending.room_id=",         "visits.workspace_id=",
                           "outbox.workspace_id=",     "avatars.workspace_id=",
                           "room_bans.room_id=",       "moderation_log.workspace_id=",
                           "mutes.workspace_id=",      "guideline_hits.workspace_id=",
                           "invitations.workspace_id="};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        assert_non_null(strstr(left_a, kinds[i]));
    assert_true(atoi(it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s'", a.room)) > 300);
    const char *bot = it_sqlf("SELECT person_id FROM avatars WHERE workspace_id = '%s'", a.ws);
    char avatar[40];
    snprintf(avatar, sizeof avatar, "%s", bot);

    assert_int_equal(status_of(api(0, a.owner_tok, "DELETE", NULL, "/api/v1/workspaces/%s", a.ws)),
                     200);
    PQfinish(pg);
    pg = purge_lock();
    it_sqlf("UPDATE workspaces SET purge_at = now() - interval '1 second' WHERE id = '%s'"
            " RETURNING 1",
            a.ws);
    int runs = 0;
    bool done = false;
    while (!done && runs < 200) {
        PGresult *r = PQexec(pg, "SELECT (j->>'rows')::int, (j->>'done')::boolean, j->>'workspace'"
                                 " FROM parley_ws_purge(50) j");
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        assert_string_equal(PQgetvalue(r, 0, 2), a.ws);
        assert_true(atoi(PQgetvalue(r, 0, 0)) <= 50);
        done = PQgetvalue(r, 0, 1)[0] == 't';
        PQclear(r);
        runs++;
    }
    assert_true(done);
    assert_true(runs >= 10); /* 300 messages, 149 seen, 40 visits, ...: many runs of 50 */
    PQclear(PQexec(pg, "SELECT pg_advisory_unlock(hashtext('parley_ws_purge'))"));

    refs(pg, ids_a, "workspace_deletions", left_a, sizeof left_a);
    if (left_a[0]) fprintf(stderr, "left of the purged workspace: %s\n", left_a);
    assert_string_equal(left_a, "");
    const char *texts[] = {ta, ipa, a.name, a.member_email};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        assert_int_equal(scan(pg, texts[i]), 0);
    assert_string_equal(it_sqlf("SELECT count(*) FROM people WHERE id IN ('%s', '%s', '%s')",
                                a.member, a.owner, avatar),
                        "0");
    /* the member of both stays, with b's rows; b is whole */
    assert_string_equal(it_sqlf("SELECT count(*) FROM people WHERE id = '%s'", a.admin), "1");
    assert_string_equal(it_sqlf("SELECT string_agg(workspace_id::text, ',') FROM"
                                " workspace_members WHERE person_id = '%s'",
                                a.admin),
                        b.ws);
    refs(pg, ids_b, "workspace_deletions", after_b, sizeof after_b);
    assert_string_equal(after_b, before_b);
    assert_true(scan(pg, tb) > 300);
    assert_true(scan(pg, ipb) >= 41);
    assert_string_equal(it_sqlf("SELECT action FROM workspace_deletions WHERE workspace_id = '%s'"
                                " ORDER BY id DESC LIMIT 1",
                                a.ws),
                        "purge");
    PQfinish(pg);
}

/* Many people who were only its, purged in small runs: the workspace row
 * goes only after the last of them. (A run that took as many people as it
 * was allowed and still had a few rows of budget left once deleted the
 * workspace, and with it the memberships that find the others: they stayed
 * for good.) */
static void test_purge_takes_every_person_before_the_workspace(void **st)
{
    (void)st;
    struct place a;
    place_new(&a, "crowd");
    char tag[32];
    snprintf(tag, sizeof tag, "crowd%d", rand());
    it_sqlf("WITH pe AS (INSERT INTO people (email, display_name)"
            " SELECT '%s-' || g || '@wsdel.invalid', 'Crowd ' || g FROM generate_series(1, 30) g"
            " RETURNING id)"
            " INSERT INTO workspace_members (workspace_id, person_id, role)"
            " SELECT '%s', id, 'member' FROM pe RETURNING 1",
            tag, a.ws);
    assert_int_equal(status_of(api(0, a.owner_tok, "DELETE", NULL, "/api/v1/workspaces/%s", a.ws)),
                     200);
    PGconn *pg = purge_lock();
    it_sqlf("UPDATE workspaces SET purge_at = now() - interval '1 second' WHERE id = '%s'"
            " RETURNING 1",
            a.ws);
    bool done = false;
    for (int runs = 0; !done && runs < 300; runs++) {
        PGresult *r = PQexec(pg, "SELECT (j->>'done')::boolean FROM parley_ws_purge(15) j");
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        done = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
    }
    PQclear(PQexec(pg, "SELECT pg_advisory_unlock(hashtext('parley_ws_purge'))"));
    PQfinish(pg);
    assert_true(done);
    assert_string_equal(it_sqlf("SELECT count(*) FROM workspaces WHERE id = '%s'", a.ws), "0");
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM people WHERE email LIKE '%s-%%@wsdel.invalid'", tag), "0");
}

/* ---- held messages ------------------------------------------------------- */

/* Approved, then deleted by its sender: the held copy's text goes too. */
static void test_approved_then_deleted_forgets_held_text(void **st)
{
    (void)st;
    struct place pl;
    place_new(&pl, "held");
    char text[48];
    snprintf(text, sizeof text, "heldtext%d", rand());
    struct wsc *c = it_member(0, pl.member_tok, pl.room);
    cJSON *x = it_send(c, pl.room, "a1", text);
    int64_t seq = wsc_int(x, "ok.seq");
    cJSON_Delete(x);
    /* as an approval leaves it: the held row with the seq its copy took */
    it_sqlf("INSERT INTO pending (room_id, sender_id, client_msg_id, body, state, decided_by,"
            " decided_at, seq) VALUES ('%s', '%s', 'a1-held', '%s', 'approved', '%s', now(), %lld)"
            " RETURNING 1",
            pl.room, pl.member, text, pl.owner, (long long)seq);
    struct hres r =
        api(0, pl.member_tok, "POST", "{}", "/api/v1/workspaces/%s/rooms/%s/messages/%lld/delete",
            pl.ws, pl.room, (long long)seq);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    wsc_close(c);
    PGconn *pg = PQconnectdb(IT.pg);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    assert_int_equal(scan(pg, text), 0);
    PQfinish(pg);
    assert_string_equal(
        it_sqlf("SELECT state || ':' || body FROM pending WHERE room_id = '%s'", pl.room),
        "approved:");
}

/* The only owner of a workspace may erase their account once it is
 * deleted (409 sole_owner before): a deleted workspace is going anyway. */
static void test_sole_owner_of_deleted_may_erase(void **st)
{
    (void)st;
    struct place pl;
    place_new(&pl, "sole");
    const char *email = it_sqlf("SELECT email FROM people WHERE id = '%s'", pl.owner);
    char mail[96], out[256], body[256];
    snprintf(mail, sizeof mail, "%s", email);
    assert_int_equal(it_run(out, sizeof out, "echo '%s' | '%s' admin --pg '%s' set-password %s", PW,
                            IT.parleyd, IT.pg, mail),
                     0);
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", mail, PW);
    struct hres r = http_req(IT.gw[0], "127.0.0.61", "POST", "/api/v1/auth/login", NULL, body);
    assert_int_equal(r.status, 200);
    char fresh[64];
    snprintf(fresh, sizeof fresh, "%s", hres_str(&r, "token"));
    hres_free(&r);
    r = api(0, fresh, "DELETE", NULL, "/api/v1/me");
    assert_int_equal(r.status, 409);
    assert_string_equal(hres_str(&r, "error.code"), "sole_owner");
    hres_free(&r);
    assert_int_equal(status_of(api(0, fresh, "DELETE", NULL, "/api/v1/workspaces/%s", pl.ws)), 200);
    assert_int_equal(status_of(api(1, fresh, "DELETE", NULL, "/api/v1/me")), 200);
    assert_string_equal(it_sqlf("SELECT count(*) FROM people WHERE id = '%s'", pl.owner), "0");
}

int main(void)
{
    it_load_env();
    srand((unsigned)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grace_and_restore),
        cmocka_unit_test(test_restore_too_late),
        cmocka_unit_test(test_purge_everything_of_it_only),
        cmocka_unit_test(test_purge_takes_every_person_before_the_workspace),
        cmocka_unit_test(test_approved_then_deleted_forgets_held_text),
        cmocka_unit_test(test_sole_owner_of_deleted_may_erase),
    };
    return cmocka_run_group_tests(tests, NULL, it_kill_spawned);
}
