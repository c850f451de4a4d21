/* Integration: data rights (issue 17). A person with data of every kind is
 * erased, by a workspace admin (from that workspace) or by themselves (the
 * account), and then every text, json and inet column of every table the
 * catalog lists is searched for their email, phone, names, IP and message
 * bodies: any hit fails. The same data is exported first and compared item
 * by item; retention turns old messages into stubs and removes old visits,
 * tokens and outbox items; bad input gets its stable codes. */
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
#include <zlib.h>

#include "httpc.h"
#include "itest.h"

#define PW "Tr0ub4dor&3-horse-staple"

/* The person whose data is followed, and what identifies them. */
struct subject {
    char id[40], tok[64]; /* account and a session */
    char email[96], phone[24], first[40], last[40], display[40], title[40], dept[40];
    char ip[24];      /* their source address */
    char body[3][48]; /* distinctive texts they wrote */
};

/* The API on gateway g: http_reqf with the arguments in this file's order. */
#define api(g, src, tok, method, body, ...) http_reqf(IT.gw[g], src, method, tok, body, __VA_ARGS__)

static int status_of(struct hres r)
{
    int s = r.status;
    if (s >= 300 && s != 401 && s != 403 && s != 404 && s != 409 && s != 400)
        fprintf(stderr, "unexpected: %d %s\n", s, r.body);
    hres_free(&r);
    return s;
}

/* ---- the catalog scan ---------------------------------------------------- */

/* Rows holding needle (case-insensitive) in any column of a text, json or
 * address type, of any table, found from pg_catalog: a table or column
 * added later is covered without touching this test. keep_person: an
 * account that is to stay (a workspace's erasure leaves the person their
 * account): rows that name its id but neither the workspace nor one of its
 * rooms (the person row, its sign-in visits and sessions) are not counted;
 * a row of the workspace that still names the person is. NULL: every row
 * counts. Prints every place it is found. */
static long scan_in(const char *needle, const char *keep_person, const char *ws, const char *room1,
                    const char *room2);
static long scan(const char *needle, const char *keep_person)
{
    return scan_in(needle, keep_person, NULL, NULL, NULL);
}

static long scan_in(const char *needle, const char *keep_person, const char *ws, const char *room1,
                    const char *room2)
{
    PGconn *pg = PQconnectdb(IT.pg);
    assert_int_equal(PQstatus(pg), CONNECTION_OK);
    PGresult *cols = PQexec(
        pg,
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), quote_ident(a.attname),"
        "  c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid"
        " WHERE c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"
        "  AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
        "  AND n.nspname NOT LIKE 'pg_toast%'"
        "  AND (t.typname IN ('text', 'varchar', 'bpchar', 'name', 'json', 'jsonb', 'inet',"
        "   'cidr', 'citext', 'xml') OR (t.typcategory = 'A' AND t.typelem IN (SELECT oid"
        "   FROM pg_type WHERE typname IN ('text', 'varchar', 'citext', 'inet'))))");
    assert_int_equal(PQresultStatus(cols), PGRES_TUPLES_OK);
    assert_true(PQntuples(cols) > 40); /* the catalog was read */
    long hits = 0;
    for (int i = 0; i < PQntuples(cols); i++) {
        char q[600];
        snprintf(q, sizeof q,
                 "SELECT count(*) FROM %s t WHERE strpos(lower(%s::text), lower($1)) > 0%s",
                 PQgetvalue(cols, i, 0), PQgetvalue(cols, i, 1),
                 keep_person ? " AND NOT (strpos(to_jsonb(t)::text, $2) > 0"
                               " AND strpos(to_jsonb(t)::text, $3) = 0"
                               " AND strpos(to_jsonb(t)::text, $4) = 0"
                               " AND strpos(to_jsonb(t)::text, $5) = 0)"
                             : "");
        const char *v[5] = {needle, keep_person, ws, room1, room2};
        PGresult *r = PQexecParams(pg, q, keep_person ? 5 : 1, NULL, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) fprintf(stderr, "%s\n", PQerrorMessage(pg));
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        long n = atol(PQgetvalue(r, 0, 0));
        if (n)
            fprintf(stderr, "  \"%s\" found in %s.%s (%ld rows)\n", needle, PQgetvalue(cols, i, 0),
                    PQgetvalue(cols, i, 1), n);
        hits += n;
        PQclear(r);
    }
    PQclear(cols);
    PQfinish(pg);
    return hits;
}

/* Every identifying value of s; n set to how many. */
static int needles(const struct subject *s, const char *out[16], bool account)
{
    int n = 0;
    if (account) {
        out[n++] = s->email;
        out[n++] = s->phone;
        out[n++] = s->first;
        out[n++] = s->last;
        out[n++] = s->display;
    }
    out[n++] = s->title;
    out[n++] = s->dept;
    out[n++] = s->ip;
    for (int i = 0; i < 3; i++)
        out[n++] = s->body[i];
    return n;
}

/* ---- a person with data of every kind ------------------------------------ */

struct place {
    char ws[40], room[40], dlg[40]; /* workspace, chat room, dialogue room */
    char owner[40], owner_tok[64];  /* its owner */
    char other[40], other_tok[64];  /* another member */
    char other_email[96];           /* ... and their address */
};

static void place_new(struct place *pl)
{
    char name[64];
    snprintf(name, sizeof name, "rights-%d", rand());
    snprintf(pl->ws, sizeof pl->ws, "%s", it_admin("create-workspace %s", name));
    snprintf(pl->room, sizeof pl->room, "%s", it_admin("create-room %s chat workspace", pl->ws));
    snprintf(pl->dlg, sizeof pl->dlg, "%s",
             it_sqlf("INSERT INTO rooms (workspace_id, name, kind) VALUES ('%s', 'dlg',"
                     " 'dialogue') RETURNING id",
                     pl->ws));
    snprintf(name, sizeof name, "own-%d@rights.invalid", rand());
    snprintf(pl->owner, sizeof pl->owner, "%s",
             it_admin("create-person %s %s owner", pl->ws, name));
    snprintf(pl->owner_tok, sizeof pl->owner_tok, "%s",
             it_admin("create-token %s %s", pl->owner, pl->ws));
    snprintf(pl->other_email, sizeof pl->other_email, "oth-%d@rights.invalid", rand());
    snprintf(pl->other, sizeof pl->other, "%s",
             it_admin("create-person %s %s member", pl->ws, pl->other_email));
    snprintf(pl->other_tok, sizeof pl->other_tok, "%s",
             it_admin("create-token %s %s", pl->other, pl->ws));
    it_sqlf("UPDATE people SET first_name = 'Otherfirst', last_name = 'Otherlast'"
            " WHERE id = '%s' RETURNING 1",
            pl->other);
}

/* A signed-up person with every kind of data in pl's workspace, written
 * through the real paths where there is one (WebSocket sends, edits,
 * likes, ratings, reads; sign-in; visits from their own address). Returns
 * the seq of the other member's message they liked. */
static int64_t subject_new(struct subject *s, const struct place *pl, bool signup)
{
    int k = rand();
    snprintf(s->email, sizeof s->email, "zed%d@rights.invalid", k);
    snprintf(s->phone, sizeof s->phone, "+4917%09d", k % 1000000000);
    snprintf(s->first, sizeof s->first, "Zorblat%d", k);
    snprintf(s->last, sizeof s->last, "Quenton%d", k);
    snprintf(s->display, sizeof s->display, "Zq%dDisplay", k);
    snprintf(s->title, sizeof s->title, "Chieftitle%d", k);
    snprintf(s->dept, sizeof s->dept, "Deptname%d", k);
    snprintf(s->ip, sizeof s->ip, "127.%d.%d.%d", 20 + k % 200, (k >> 8) % 250 + 1,
             (k >> 16) % 250 + 1);
    for (int i = 0; i < 3; i++)
        snprintf(s->body[i], sizeof s->body[i], "uniquebody%d-%d", i, k);
    if (signup) {
        /* their own account, which the workspace does not own */
        it_signup(s->ip, s->email, PW, s->first, s->tok, s->id);
        it_sqlf("INSERT INTO workspace_members (workspace_id, person_id, role) VALUES"
                " ('%s', '%s', 'member') RETURNING 1",
                pl->ws, s->id);
    } else {
        /* an account the operator made in the workspace, with a password */
        snprintf(s->id, sizeof s->id, "%s",
                 it_admin("create-person %s %s member", pl->ws, s->email));
        snprintf(s->tok, sizeof s->tok, "%s", it_admin("create-token %s %s", s->id, pl->ws));
        char out[256];
        assert_int_equal(it_run(out, sizeof out, "echo '%s' | '%s' admin --pg '%s' set-password %s",
                                PW, IT.parleyd, IT.pg, s->email),
                         0);
        it_sqlf("UPDATE people SET first_name = '%s' WHERE id = '%s' RETURNING 1", s->first, s->id);
    }
    it_sqlf("UPDATE people SET last_name = '%s', display_name = '%s', phone = '%s',"
            " phone_verified_at = now() WHERE id = '%s' RETURNING 1",
            s->last, s->display, s->phone, s->id);
    it_sqlf("UPDATE workspace_members SET title = '%s', department = '%s' WHERE person_id = '%s'"
            " AND workspace_id = '%s' RETURNING 1",
            s->title, s->dept, s->id, pl->ws);
    /* a login from their address (visit with the IP) */
    char body[256];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", s->email, PW);
    struct hres r = http_req(IT.gw[0], s->ip, "POST", "/api/v1/auth/login", NULL, body);
    assert_int_equal(r.status, 200);
    hres_free(&r);

    struct wsc_opts o = {.src_ip = s->ip};
    struct wsc *c = it_connect_port(IT.gw[0], &o, s->tok);
    struct wsc *oc = it_connect_auth(1, pl->other_tok);
    assert_non_null(c);
    assert_non_null(oc);
    cJSON_Delete(it_join(c, pl->room, -1));
    cJSON_Delete(it_join(oc, pl->room, -1));
    cJSON_Delete(it_join(c, pl->dlg, -1));
    cJSON *x = it_send(oc, pl->room, "o1", "otherpersonbody");
    int64_t theirs = wsc_int(x, "ok.seq");
    cJSON_Delete(x);
    x = it_send(c, pl->room, "s1", "a first draft");
    int64_t mine = wsc_int(x, "ok.seq");
    cJSON_Delete(x);
    x = it_send(c, pl->room, "s2", s->body[0]);
    assert_null(wsc_err_code(x));
    cJSON_Delete(x);
    assert_true(mine > 0 && theirs > 0);
    x = wsc_request(c, 5000, "\"op\":\"edit\",\"room\":\"%s\",\"seq\":%lld,\"body\":\"%s\"",
                    pl->room, (long long)mine, s->body[1]);
    assert_null(wsc_err_code(x));
    cJSON_Delete(x);
    x = wsc_request(c, 5000, "\"op\":\"like\",\"room\":\"%s\",\"seq\":%lld", pl->room,
                    (long long)theirs);
    assert_null(wsc_err_code(x));
    cJSON_Delete(x);
    x = wsc_request(c, 5000, "\"op\":\"read\",\"room\":\"%s\",\"seq\":%lld", pl->room,
                    (long long)theirs);
    cJSON_Delete(x);
    x = it_send(c, pl->dlg, "e1", "an entry of theirs");
    int64_t entry = wsc_int(x, "ok.seq");
    cJSON_Delete(x);
    x = wsc_request(c, 5000, "\"op\":\"rate\",\"room\":\"%s\",\"seq\":%lld,\"stars\":4", pl->dlg,
                    (long long)entry);
    cJSON_Delete(x);
    wsc_close(c);
    wsc_close(oc);
    /* kinds without a cheap path: a held message (with its approved copy's
     * text), a guideline hit, a mute, an invitation and its outbox item */
    it_sqlf("INSERT INTO pending (room_id, sender_id, client_msg_id, body, state)"
            " VALUES ('%s', '%s', 'h1', '%s', 'held') RETURNING 1",
            pl->room, s->id, s->body[2]);
    it_sqlf("INSERT INTO guideline_hits (workspace_id, room_id, person_id, rule_id, action, kind)"
            " VALUES ('%s', '%s', '%s', 'r1', 'flag', 'word') RETURNING 1",
            pl->ws, pl->room, s->id);
    it_sqlf("INSERT INTO mutes (workspace_id, person_id, until, muted_by, reason) VALUES"
            " ('%s', '%s', now() + interval '1 hour', '%s', 'noise') RETURNING 1",
            pl->ws, s->id, pl->owner);
    it_sqlf("WITH i AS (INSERT INTO invitations (workspace_id, hash, email, role, profile,"
            " invited_by, expires_at) VALUES ('%s', decode(md5(random()::text) || "
            "md5(random()::text), 'hex'), '%s', 'member',"
            " '{\"first_name\": \"%s\"}', '%s', now() + interval '1 day') RETURNING *)"
            " INSERT INTO outbox (workspace_id, invitation_id, channel, recipient, payload)"
            " SELECT i.workspace_id, i.id, 'email', i.email, jsonb_build_object('first_name',"
            " '%s') FROM i RETURNING 1",
            pl->ws, s->email, s->first, pl->owner, s->first);
    /* everything is stored before anything is checked */
    for (int i = 0;
         i < 50 && atoi(it_sqlf("SELECT count(*) FROM likes WHERE person_id = '%s'", s->id)) == 0;
         i++)
        usleep(100000);
    return theirs;
}

static void expect_found(const struct subject *s, bool account)
{
    const char *n[16];
    int k = needles(s, n, account);
    for (int i = 0; i < k; i++) {
        long h = scan(n[i], NULL);
        if (!h) fprintf(stderr, "not stored: %s\n", n[i]);
        assert_true(h > 0);
    }
}

/* ---- tests --------------------------------------------------------------- */

/* An admin erases a person from the workspace: the account stays theirs,
 * but no row outside it holds anything of theirs; their connection to the
 * workspace closes; the stubs keep the seqs; a second erase answers 409. */
static void test_admin_erase_scan(void **st)
{
    (void)st;
    struct place pl;
    struct subject s;
    place_new(&pl);
    int64_t liked = subject_new(&s, &pl, false);
    expect_found(&s, true);
    int64_t last = atoll(it_sqlf("SELECT last_seq FROM rooms WHERE id = '%s'", pl.room));
    struct wsc_opts o = {.src_ip = s.ip};
    struct wsc *c = it_connect_port(IT.gw[1], &o, s.tok);
    assert_non_null(c);

    struct hres r = api(0, NULL, pl.owner_tok, "POST", "{\"reason\":\"request 42\"}",
                        "/api/v1/workspaces/%s/people/%s/erase", pl.ws, s.id);
    assert_int_equal(r.status, 200);
    char name[40];
    snprintf(name, sizeof name, "%s", hres_str(&r, "name"));
    assert_true(!strncmp(name, "Former member ", 14) && strlen(name) == 18);
    char pseudo[40];
    snprintf(pseudo, sizeof pseudo, "%s", hres_str(&r, "pseudonym"));
    hres_free(&r);
    /* the other gateway closes their connection to this workspace */
    assert_int_equal(wsc_wait_closed(c, 3000), 1008);
    wsc_close(c);

    const char *n[16];
    int k = needles(&s, n, true);
    for (int i = 0; i < k; i++)
        assert_int_equal(scan_in(n[i], s.id, pl.ws, pl.room, pl.dlg), 0);
    /* the account is theirs still, with nothing of the workspace */
    assert_string_equal(it_sqlf("SELECT email FROM people WHERE id = '%s'", s.id), s.email);
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM workspace_members WHERE person_id = '%s'", s.id), "0");
    /* the room's log is whole: same seqs, theirs as stubs of the pseudonym */
    assert_int_equal(atoll(it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s'", pl.room)),
                     last);
    assert_string_equal(it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s' AND"
                                " sender_id = '%s' AND kind = 'message' AND body = ''"
                                " AND deleted_at IS NOT NULL",
                                pl.room, pseudo),
                        "2");
    assert_string_equal(it_sqlf("SELECT body FROM messages WHERE room_id = '%s' AND seq = %lld",
                                pl.room, (long long)liked),
                        "otherpersonbody");
    /* their like is gone from the aggregate */
    assert_string_equal(it_sqlf("SELECT like_count FROM messages WHERE room_id = '%s'"
                                " AND seq = %lld",
                                pl.room, (long long)liked),
                        "0");
    assert_string_equal(it_sqlf("SELECT display_name FROM people WHERE id = '%s'", pseudo), name);
    /* recorded without the data: who, when, policy, counts */
    assert_string_equal(it_sqlf("SELECT via || ' ' || policy || ' ' || (actor_id = '%s')::text"
                                " || ' ' || ((counts->>'messages')::int >= 3) FROM erasures"
                                " WHERE pseudonym_id = '%s'",
                                pl.owner, pseudo),
                        "admin delete true true");
    /* a second erase: the pseudonym answers 409, the old id is nobody here */
    r = api(0, NULL, pl.owner_tok, "POST", "{\"reason\":\"again\"}",
            "/api/v1/workspaces/%s/people/%s/erase", pl.ws, pseudo);
    assert_int_equal(r.status, 409);
    assert_string_equal(hres_str(&r, "error.code"), "already_erased");
    hres_free(&r);
    assert_int_equal(status_of(api(0, NULL, pl.owner_tok, "POST", "{\"reason\":\"again\"}",
                                   "/api/v1/workspaces/%s/people/%s/erase", pl.ws, s.id)),
                     404);
    /* their token scoped to the workspace went with it */
    assert_int_equal(status_of(api(1, NULL, s.tok, "GET", NULL, "/api/v1/workspaces/%s", pl.ws)),
                     401);
}

/* The person erases their account: only with a session of a fresh password
 * login; every gateway closes their connections; nothing of theirs is left
 * anywhere, not even the account. */
static void test_self_erase_scan(void **st)
{
    (void)st;
    struct place pl;
    struct subject s;
    place_new(&pl);
    subject_new(&s, &pl, true);
    expect_found(&s, true);
    struct wsc_opts o = {.src_ip = s.ip};
    struct wsc *c0 = it_connect_port(IT.gw[0], &o, s.tok);
    struct wsc *c1 = it_connect_port(IT.gw[1], &o, s.tok);
    assert_non_null(c0);
    assert_non_null(c1);

    /* the sign-up's session is not a re-authentication */
    struct hres r = api(0, NULL, s.tok, "DELETE", NULL, "/api/v1/me");
    assert_int_equal(r.status, 401);
    assert_string_equal(hres_str(&r, "error.code"), "reauth_required");
    hres_free(&r);
    assert_int_equal(status_of(api(0, NULL, NULL, "DELETE", NULL, "/api/v1/me")), 401);
    assert_string_equal(it_sqlf("SELECT count(*) FROM people WHERE id = '%s'", s.id), "1");

    char body[256], fresh[64];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", s.email, PW);
    r = http_req(IT.gw[1], s.ip, "POST", "/api/v1/auth/login", NULL, body);
    assert_int_equal(r.status, 200);
    snprintf(fresh, sizeof fresh, "%s", hres_str(&r, "token"));
    hres_free(&r);
    long records = atol(it_sql("SELECT count(*) FROM erasures WHERE workspace_id IS NULL"));
    r = api(1, NULL, fresh, "DELETE", NULL, "/api/v1/me");
    assert_int_equal(r.status, 200);
    hres_free(&r);
    assert_int_equal(wsc_wait_closed(c0, 3000), 1008);
    assert_int_equal(wsc_wait_closed(c1, 3000), 1008);
    wsc_close(c0);
    wsc_close(c1);

    const char *n[16];
    int k = needles(&s, n, true);
    for (int i = 0; i < k; i++)
        assert_int_equal(scan(n[i], NULL), 0);
    assert_string_equal(it_sqlf("SELECT count(*) FROM people WHERE id = '%s'", s.id), "0");
    /* the others' conversation stays readable, under the pseudonym */
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM messages m JOIN people pe"
                " ON pe.id = m.sender_id WHERE m.room_id = '%s'"
                " AND pe.display_name LIKE 'Former member %%' AND m.kind IN ('message', 'edit')",
                pl.room),
        "3"); /* two messages and an edit */
    /* gone means gone: the session, the password, a second erase */
    assert_int_equal(status_of(api(0, NULL, fresh, "GET", NULL, "/api/v1/me")), 401);
    assert_int_equal(status_of(api(0, NULL, fresh, "DELETE", NULL, "/api/v1/me")), 401);
    r = http_req(IT.gw[0], s.ip, "POST", "/api/v1/auth/login", NULL, body);
    assert_int_equal(r.status, 401);
    hres_free(&r);
    assert_int_equal(atol(it_sql("SELECT count(*) FROM erasures WHERE workspace_id IS NULL")),
                     records + 1);
    assert_string_equal(it_sql("SELECT via || ' ' || (counts->>'workspaces') FROM erasures"
                               " WHERE workspace_id IS NULL ORDER BY id DESC LIMIT 1"),
                        "self 1");
}

static cJSON *arr(cJSON *doc, const char *k)
{
    cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, k);
    assert_true(cJSON_IsArray(a));
    return a;
}

/* The export holds every kind of their data, and nobody else's beyond ids. */
static void test_export(void **st)
{
    (void)st;
    struct place pl;
    struct subject s;
    place_new(&pl);
    int64_t liked = subject_new(&s, &pl, true);
    struct hres r = api(0, NULL, s.tok, "GET", NULL, "/api/v1/me/export");
    assert_int_equal(r.status, 200);
    assert_non_null(r.json); /* chunked, whole */
    cJSON *d = r.json;
    assert_string_equal(wsc_str(d, "format"), "parley-export");
    assert_string_equal(wsc_str(d, "account.email"), s.email);
    assert_string_equal(wsc_str(d, "account.phone"), s.phone);
    assert_string_equal(wsc_str(d, "account.first_name"), s.first);
    cJSON *m = arr(d, "memberships");
    assert_int_equal(cJSON_GetArraySize(m), 1);
    assert_string_equal(wsc_str(cJSON_GetArrayItem(m, 0), "title"), s.title);
    /* messages: the message (now edited), its edit with the new text, the entry */
    cJSON *msgs = arr(d, "messages"), *it;
    int seen_edit = 0, seen_msg = 0, seen_entry = 0;
    cJSON_ArrayForEach(it, msgs)
    {
        const char *kind = wsc_str(it, "kind"), *b = wsc_str(it, "body");
        if (!strcmp(kind, "edit")) seen_edit += !strcmp(b, s.body[1]);
        if (!strcmp(kind, "message")) seen_msg += !strcmp(b, s.body[1]) || !strcmp(b, s.body[0]);
        if (!strcmp(kind, "entry")) seen_entry += !strcmp(b, "an entry of theirs");
    }
    assert_int_equal(cJSON_GetArraySize(msgs), 4);
    assert_int_equal(seen_edit + seen_msg + seen_entry, 4);
    cJSON *likes = arr(d, "likes");
    assert_int_equal(cJSON_GetArraySize(likes), 1);
    assert_int_equal(wsc_int(cJSON_GetArrayItem(likes, 0), "seq"), liked);
    assert_int_equal(cJSON_GetArraySize(arr(d, "ratings")), 1);
    assert_int_equal(wsc_int(cJSON_GetArrayItem(arr(d, "ratings"), 0), "stars"), 4);
    assert_int_equal(cJSON_GetArraySize(arr(d, "read_state")), 1);
    assert_int_equal(cJSON_GetArraySize(arr(d, "held")), 1);
    assert_string_equal(wsc_str(cJSON_GetArrayItem(arr(d, "held"), 0), "body"), s.body[2]);
    assert_int_equal(cJSON_GetArraySize(arr(d, "guideline_hits")), 1);
    assert_int_equal(cJSON_GetArraySize(arr(d, "mutes")), 1);
    assert_int_equal(cJSON_GetArraySize(arr(d, "invitations")), 1);
    bool ip = false;
    cJSON_ArrayForEach(it, arr(d, "visits")) ip |= !strcmp(wsc_str(it, "ip"), s.ip);
    assert_true(ip);
    assert_true(cJSON_GetArraySize(arr(d, "tokens")) >= 2);
    arr(d, "seen");
    arr(d, "moderation");
    /* nobody else's data beyond ids */
    assert_null(strstr(r.body, pl.other_email));
    assert_null(strstr(r.body, "Otherfirst"));
    assert_null(strstr(r.body, "otherpersonbody"));
    assert_null(strstr(r.body, "password"));
    hres_free(&r);
    /* recorded: who, whom, when */
    assert_string_equal(it_sqlf("SELECT count(*) FROM export_log WHERE actor_id = '%s'"
                                " AND subject_id = '%s' AND workspace_id IS NULL",
                                s.id, s.id),
                        "1");

    /* an admin's export is limited to their workspace */
    struct place other;
    place_new(&other);
    it_sqlf("INSERT INTO workspace_members (workspace_id, person_id, role) VALUES ('%s', '%s',"
            " 'member') RETURNING 1",
            other.ws, s.id);
    r = api(1, NULL, pl.owner_tok, "GET", NULL, "/api/v1/workspaces/%s/people/%s/export", pl.ws,
            s.id);
    assert_int_equal(r.status, 200);
    assert_non_null(r.json);
    assert_int_equal(cJSON_GetArraySize(arr(r.json, "memberships")), 1);
    assert_string_equal(wsc_str(r.json, "workspace"), pl.ws);
    hres_free(&r);
    assert_string_equal(it_sqlf("SELECT count(*) FROM export_log WHERE actor_id = '%s'"
                                " AND subject_id = '%s' AND workspace_id = '%s'",
                                pl.owner, s.id, pl.ws),
                        "1");
}

/* An export larger than many pages arrives whole, in order. */
static void test_export_pages(void **st)
{
    (void)st;
    struct place pl;
    place_new(&pl);
    it_sqlf("WITH r AS (UPDATE rooms SET last_seq = 1234 WHERE id = '%s' RETURNING id)"
            " INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body)"
            " SELECT r.id, g, '%s', 'c' || g, 'row ' || g FROM r, generate_series(1, 1234) g"
            " RETURNING 1",
            pl.room, pl.other);
    struct hres r = api(0, NULL, pl.other_tok, "GET", NULL, "/api/v1/me/export");
    assert_int_equal(r.status, 200);
    assert_non_null(r.json);
    cJSON *msgs = arr(r.json, "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 1234);
    int i = 1;
    cJSON *it;
    cJSON_ArrayForEach(it, msgs) assert_int_equal(wsc_int(it, "seq"), i++);
    hres_free(&r);
}

/* ---- the CSV export ------------------------------------------------------ */

/* File name of zip archive z (n bytes): its data and length, from the
 * central directory, its CRC checked; NULL when absent. */
static const char *zip_file(const char *z, size_t n, const char *name, size_t *len)
{
    const unsigned char *u = (const unsigned char *)z;
#define U16(p) ((unsigned)(p)[0] | (unsigned)(p)[1] << 8)
#define U32(p) (U16(p) | (uint32_t)U16((p) + 2) << 16)
    assert_true(n >= 22);
    const unsigned char *eocd = u + n - 22;
    assert_int_equal(U32(eocd), 0x06054b50);
    unsigned count = U16(eocd + 10);
    const unsigned char *cd = u + U32(eocd + 16);
    for (unsigned i = 0; i < count; i++) {
        assert_int_equal(U32(cd), 0x02014b50);
        unsigned nl = U16(cd + 28), el = U16(cd + 30), cl = U16(cd + 32);
        uint32_t crc = U32(cd + 16), size = U32(cd + 24), off = U32(cd + 42);
        if (nl == strlen(name) && !memcmp(cd + 46, name, nl)) {
            const unsigned char *lh = u + off;
            assert_int_equal(U32(lh), 0x04034b50);
            const unsigned char *data = lh + 30 + U16(lh + 26) + U16(lh + 28);
            assert_true(data + size <= u + n);
            assert_int_equal(crc32(0L, data, size), crc);
            *len = size;
            return (const char *)data;
        }
        cd += 46 + nl + el + cl;
    }
    return NULL;
#undef U16
#undef U32
}

/* RFC 4180 fields of csv (n bytes) into cells[row][col] (malloc'd
 * strings); the number of rows. */
#define CROWS 64
#define CCOLS 32
static int csv_parse(const char *csv, size_t n, char *cells[CROWS][CCOLS])
{
    int row = 0, col = 0;
    size_t i = 0;
    memset(cells, 0, sizeof(char *) * CROWS * CCOLS);
    while (i < n && row < CROWS) {
        char *f = malloc(n + 1);
        size_t k = 0;
        if (csv[i] == '"') {
            for (i++; i < n; i++) {
                if (csv[i] == '"' && i + 1 < n && csv[i + 1] == '"') {
                    f[k++] = '"';
                    i++;
                } else if (csv[i] == '"') {
                    i++;
                    break;
                } else {
                    f[k++] = csv[i];
                }
            }
        } else {
            while (i < n && csv[i] != ',' && csv[i] != '\r')
                f[k++] = csv[i++];
        }
        f[k] = 0;
        if (col < CCOLS)
            cells[row][col++] = f;
        else
            free(f);
        if (i < n && csv[i] == ',') {
            i++;
        } else { /* CRLF ends the row */
            assert_true(i + 1 < n && csv[i] == '\r' && csv[i + 1] == '\n');
            i += 2;
            row++;
            col = 0;
        }
    }
    return row;
}

static int csv_col(char *cells[CROWS][CCOLS], const char *name)
{
    for (int c = 0; c < CCOLS && cells[0][c]; c++)
        if (!strcmp(cells[0][c], name)) return c;
    fail_msg("no column %s", name);
    return -1;
}

static void csv_free(char *cells[CROWS][CCOLS])
{
    for (int r = 0; r < CROWS; r++)
        for (int c = 0; c < CCOLS; c++)
            free(cells[r][c]);
}

/* The CSV export: a ZIP of one CSV per kind, the JSON export's items as
 * rows; commas, quotes and line breaks quoted, and a body a spreadsheet
 * would run as a formula (=, +, -, @) defused with an apostrophe. */
static void test_export_csv(void **st)
{
    (void)st;
    struct place pl;
    struct subject s;
    place_new(&pl);
    subject_new(&s, &pl, true);
    static const char *const bodies[] = {"a,b", "say \"hi\"", "line1\nline2", "=SUM(A1:A9)",
                                         "+1",  "-2",         "@cmd",         "plain"};
    const int nb = (int)(sizeof bodies / sizeof bodies[0]);
    for (int i = 0; i < nb; i++)
        it_sqlf("WITH r AS (UPDATE rooms SET last_seq = last_seq + 1 WHERE id = '%s'"
                " RETURNING id, last_seq) INSERT INTO messages (room_id, seq, sender_id,"
                " client_msg_id, body) SELECT r.id, r.last_seq, '%s', 'csv%d', $q$%s$q$ FROM r"
                " RETURNING 1",
                pl.room, s.id, i, bodies[i]);
    struct hres r = api(0, NULL, s.tok, "GET", NULL, "/api/v1/me/export?format=csv");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.ctype, "application/zip"));
    size_t len;
    const char *f = zip_file(r.body, r.len, "account.csv", &len);
    assert_non_null(f);
    char *cells[CROWS][CCOLS];
    assert_int_equal(csv_parse(f, len, cells), 2);
    assert_string_equal(cells[1][csv_col(cells, "email")], s.email);
    assert_string_equal(cells[1][csv_col(cells, "first_name")], s.first);
    csv_free(cells);
    f = zip_file(r.body, r.len, "export.csv", &len);
    assert_non_null(f);
    assert_int_equal(csv_parse(f, len, cells), 2);
    assert_string_equal(cells[1][csv_col(cells, "subject")], s.id);
    csv_free(cells);

    /* messages.csv: every message, its body as written (formulas defused) */
    f = zip_file(r.body, r.len, "messages.csv", &len);
    assert_non_null(f);
    int rows = csv_parse(f, len, cells);
    assert_int_equal(rows, 1 + 4 + nb); /* header, subject_new's four, these */
    int bc = csv_col(cells, "body"), cc = csv_col(cells, "client_msg_id");
    int matched = 0;
    for (int row = 1; row < rows; row++) {
        const char *cm = cells[row][cc];
        if (strncmp(cm, "csv", 3)) continue;
        const char *want = bodies[atoi(cm + 3)];
        char defused[64];
        snprintf(defused, sizeof defused, "%s%s", strchr("=+-@", want[0]) ? "'" : "", want);
        assert_string_equal(cells[row][bc], defused);
        matched++;
    }
    assert_int_equal(matched, nb);
    csv_free(cells);
    /* raw: the quoting itself */
    char *raw = strndup(f, len);
    assert_non_null(strstr(raw, ",\"a,b\","));
    assert_non_null(strstr(raw, ",\"say \"\"hi\"\"\","));
    assert_non_null(strstr(raw, ",\"line1\nline2\","));
    assert_non_null(strstr(raw, ",\"'=SUM(A1:A9)\","));
    assert_non_null(strstr(raw, ",\"'@cmd\","));
    assert_non_null(strstr(raw, ",plain,"));
    free(raw);
    /* every kind has its file, rows where the JSON has items */
    const char *kinds[] = {"memberships", "read_state",  "seen",       "likes",
                           "ratings",     "invitations", "moderation", "guideline_hits",
                           "held",        "mutes",       "visits",     "tokens"};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        char name[40];
        snprintf(name, sizeof name, "%s.csv", kinds[k]);
        assert_non_null(zip_file(r.body, r.len, name, &len));
    }
    f = zip_file(r.body, r.len, "held.csv", &len);
    assert_int_equal(csv_parse(f, len, cells), 2);
    assert_string_equal(cells[1][csv_col(cells, "body")], s.body[2]);
    csv_free(cells);
    /* nobody else's data */
    assert_null(memmem(r.body, r.len, pl.other_email, strlen(pl.other_email)));
    assert_null(memmem(r.body, r.len, "otherpersonbody", 15));
    hres_free(&r);
    /* an admin's, scoped to the workspace; a format that does not exist is 400 */
    r = api(1, NULL, pl.owner_tok, "GET", NULL, "/api/v1/workspaces/%s/people/%s/export?format=csv",
            pl.ws, s.id);
    assert_int_equal(r.status, 200);
    assert_non_null(zip_file(r.body, r.len, "messages.csv", &len));
    hres_free(&r);
    long logged = atol(it_sqlf("SELECT count(*) FROM export_log WHERE subject_id = '%s'", s.id));
    r = api(0, NULL, s.tok, "GET", NULL, "/api/v1/me/export?format=xlsx");
    assert_int_equal(r.status, 400);
    assert_string_equal(hres_str(&r, "error.code"), "bad_field");
    hres_free(&r);
    assert_int_equal(atol(it_sqlf("SELECT count(*) FROM export_log WHERE subject_id = '%s'", s.id)),
                     logged);
}

/* Bad input: other workspaces are 404, roles 403, ranges 400. */
static void test_bad_input(void **st)
{
    (void)st;
    struct place a, b;
    place_new(&a);
    place_new(&b);
    /* another workspace's person: 404 for export and erase */
    assert_int_equal(status_of(api(0, NULL, a.owner_tok, "GET", NULL,
                                   "/api/v1/workspaces/%s/people/%s/export", a.ws, b.other)),
                     404);
    assert_int_equal(status_of(api(0, NULL, a.owner_tok, "POST", "{\"reason\":\"x\"}",
                                   "/api/v1/workspaces/%s/people/%s/erase", a.ws, b.other)),
                     404);
    /* not a member of the path's workspace: 404 too */
    assert_int_equal(status_of(api(0, NULL, a.owner_tok, "POST", "{\"reason\":\"x\"}",
                                   "/api/v1/workspaces/%s/people/%s/erase", b.ws, b.other)),
                     404);
    /* a member's role: 403 */
    assert_int_equal(status_of(api(0, NULL, a.other_tok, "GET", NULL,
                                   "/api/v1/workspaces/%s/people/%s/export", a.ws, a.owner)),
                     403);
    assert_int_equal(status_of(api(0, NULL, a.other_tok, "POST", "{\"reason\":\"x\"}",
                                   "/api/v1/workspaces/%s/people/%s/erase", a.ws, a.owner)),
                     403);
    /* nobody erases the owner through the API, nor themselves this way */
    assert_int_equal(status_of(api(0, NULL, a.owner_tok, "POST", "{\"reason\":\"x\"}",
                                   "/api/v1/workspaces/%s/people/%s/erase", a.ws, a.owner)),
                     403);
    /* a reason is required */
    struct hres r = api(0, NULL, a.owner_tok, "POST", "{}", "/api/v1/workspaces/%s/people/%s/erase",
                        a.ws, a.other);
    assert_int_equal(r.status, 400);
    assert_string_equal(hres_str(&r, "error.code"), "missing_field");
    hres_free(&r);
    /* without a token: 401 */
    assert_int_equal(status_of(api(0, NULL, NULL, "GET", NULL, "/api/v1/me/export")), 401);
    /* settings out of range: 400, and nothing changes */
    const char *bad[] = {"{\"retention_days\":0}", "{\"retention_days\":36501}",
                         "{\"member_grace_days\":0}", "{\"erasure_content\":\"shred\"}",
                         "{\"retention_days\":\"7\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        r = api(0, NULL, a.owner_tok, "PATCH", bad[i], "/api/v1/workspaces/%s", a.ws);
        assert_int_equal(r.status, 400);
        assert_string_equal(hres_str(&r, "error.code"), "bad_field");
        hres_free(&r);
    }
    r = api(0, NULL, a.owner_tok, "PATCH",
            "{\"retention_days\":30,\"member_grace_days\":10,\"erasure_content\":\"keep\"}",
            "/api/v1/workspaces/%s", a.ws);
    assert_int_equal(r.status, 200);
    assert_int_equal(wsc_int(r.json, "retention_days"), 30);
    assert_int_equal(wsc_int(r.json, "member_grace_days"), 10);
    assert_string_equal(wsc_str(r.json, "erasure_content"), "keep");
    hres_free(&r);
    /* the sole owner cannot erase their account: the workspace would be orphaned */
    char body[256], fresh[64], id[40], tok[64], email[64];
    snprintf(email, sizeof email, "solo%d@rights.invalid", rand());
    it_signup("127.0.0.9", email, PW, NULL, tok, id);
    r = api(0, NULL, tok, "POST", "{\"name\":\"mine\"}", "/api/v1/workspaces");
    assert_int_equal(r.status, 201);
    hres_free(&r);
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, PW);
    r = http_req(IT.gw[1], "127.0.0.9", "POST", "/api/v1/auth/login", NULL, body);
    snprintf(fresh, sizeof fresh, "%s", hres_str(&r, "token"));
    hres_free(&r);
    r = api(0, NULL, fresh, "DELETE", NULL, "/api/v1/me");
    assert_int_equal(r.status, 409);
    assert_string_equal(hres_str(&r, "error.code"), "sole_owner");
    hres_free(&r);
    assert_string_equal(it_sqlf("SELECT count(*) FROM people WHERE id = '%s'", id), "1");
}

/* "keep": the bodies stay, under the pseudonym. */
static void test_erase_keep_policy(void **st)
{
    (void)st;
    struct place pl;
    struct subject s;
    place_new(&pl);
    subject_new(&s, &pl, false);
    it_sqlf("UPDATE workspaces SET erasure_content = 'keep' WHERE id = '%s' RETURNING 1", pl.ws);
    struct hres r = api(0, NULL, pl.owner_tok, "POST", "{\"reason\":\"request\"}",
                        "/api/v1/workspaces/%s/people/%s/erase", pl.ws, s.id);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    assert_string_equal(it_sqlf("SELECT pe.display_name LIKE 'Former member %%' FROM messages m"
                                " JOIN people pe ON pe.id = m.sender_id WHERE m.room_id = '%s'"
                                " AND m.body = '%s' AND m.deleted_at IS NULL",
                                pl.room, s.body[1]),
                        "t");
    /* but not their profile, address or held messages */
    assert_int_equal(scan_in(s.title, s.id, pl.ws, pl.room, pl.dlg), 0);
    assert_int_equal(scan_in(s.ip, s.id, pl.ws, pl.room, pl.dlg), 0);
    assert_int_equal(scan_in(s.body[2], s.id, pl.ws, pl.room, pl.dlg), 0);
}

/* Retention: old messages become stubs (seqs whole), old visits, expired
 * tokens, acknowledged outbox items and members removed past the grace
 * period go; the job reports in /metrics. */
static void test_retention(void **st)
{
    (void)st;
    struct place pl;
    place_new(&pl);
    struct wsc *c = it_member(0, pl.other_tok, pl.room);
    char old[8][32];
    for (int i = 0; i < 8; i++) {
        snprintf(old[i], sizeof old[i], "retained%d-%d", i, rand());
        char cmid[16];
        snprintf(cmid, sizeof cmid, "r%d", i);
        cJSON_Delete(it_send(c, pl.room, cmid, old[i]));
    }
    wsc_close(c);
    double before = it_metric(0, "parley_retention_removed_total{kind=\"messages\"}") +
                    it_metric(1, "parley_retention_removed_total{kind=\"messages\"}");
    /* the first 5 are 3 days old (the order of ts along seq kept) */
    it_sqlf("UPDATE messages SET created_at = now() - interval '3 days' + seq * interval '1 ms'"
            " WHERE room_id = '%s' AND seq <= 5 RETURNING 1",
            pl.room);
    char email[64], vip[32];
    snprintf(vip, sizeof vip, "127.9.%d.%d", rand() % 250 + 1, rand() % 250 + 1);
    snprintf(email, sizeof email, "gone%d@rights.invalid", rand());
    char *removed = strdup(it_admin("create-person %s %s member", pl.ws, email));
    it_sqlf("UPDATE workspace_members SET removed_at = now() - interval '40 days'"
            " WHERE person_id = '%s' RETURNING 1",
            removed);
    it_sqlf("INSERT INTO visits (workspace_id, person_id, kind, at, ip) VALUES"
            " ('%s', '%s', 'login', now() - interval '40 days', '%s') RETURNING 1",
            pl.ws, pl.other, vip);
    it_sqlf("INSERT INTO access_tokens (hash, person_id, kind, expires_at) VALUES"
            " (decode(md5(random()::text) || md5(random()::text), 'hex'), '%s', 'session', now() - "
            "interval '2 days') RETURNING 1",
            pl.other);
    it_sqlf("INSERT INTO outbox (workspace_id, channel, recipient, payload, sent_at) VALUES"
            " ('%s', 'email', 'acked-%s', '{}', now() - interval '2 days') RETURNING 1",
            pl.ws, vip);
    it_sqlf("UPDATE workspaces SET retention_days = 1 WHERE id = '%s' RETURNING 1", pl.ws);

    /* the job runs every second on both gateways (one at a time) */
    const char *done = "";
    for (int i = 0; i < 100; i++) {
        done = it_sqlf("SELECT (SELECT count(*) FROM messages WHERE room_id = '%s' AND seq <= 5"
                       " AND body = '' AND deleted_at IS NOT NULL) = 5"
                       " AND NOT EXISTS (SELECT 1 FROM visits WHERE host(ip) = '%s')"
                       " AND NOT EXISTS (SELECT 1 FROM outbox WHERE recipient = 'acked-%s')"
                       " AND EXISTS (SELECT 1 FROM workspace_members WHERE workspace_id = '%s'"
                       "  AND erased_at IS NOT NULL)",
                       pl.room, vip, vip, pl.ws);
        if (!strcmp(done, "t")) break;
        usleep(100000);
    }
    assert_string_equal(done, "t");
    for (int i = 0; i < 5; i++)
        assert_int_equal(scan(old[i], NULL), 0);
    for (int i = 5; i < 8; i++)
        assert_true(scan(old[i], NULL) > 0);
    assert_int_equal(scan(email, NULL), 1); /* the account is not the workspace's */
    assert_string_equal(it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s'", pl.room),
                        "8");
    assert_string_equal(it_sqlf("SELECT count(*) FROM access_tokens WHERE person_id = '%s'"
                                " AND expires_at < now() - interval '1 day'",
                                pl.other),
                        "0");
    double after = it_metric(0, "parley_retention_removed_total{kind=\"messages\"}") +
                   it_metric(1, "parley_retention_removed_total{kind=\"messages\"}");
    assert_true(after >= before + 5);
    free(removed);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),         cmocka_unit_test(test_export),
        cmocka_unit_test(test_export_pages),      cmocka_unit_test(test_export_csv),
        cmocka_unit_test(test_admin_erase_scan),  cmocka_unit_test(test_self_erase_scan),
        cmocka_unit_test(test_erase_keep_policy), cmocka_unit_test(test_retention),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
