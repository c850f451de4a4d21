#include "rights.h"

#include "app.h"
#include "csv.h"
#include "http.h"
#include "apireq.h"
#include "log.h"
#include "mem.h"
#include "moderation.h"
#include "store.h"
#include "zipw.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "apisql.h"

/* A session counts as re-authentication for this long after the password
 * login that minted it (as GitHub's sudo mode). */
#define REAUTH_S "300"
/* Rows per export page: a page is one piece of the answer, so this bounds
 * the gateway's memory per export (bodies are at most --max-body). */
#define EXPORT_PAGE 500
#define EXPORT_PAGE_S "500"

/* Keyset pagination: every section is ordered by a (uuid, int8) pair, and
 * the key of a page's last row ("<uuid>|<n>") starts the next page. The
 * empty key is before everything. */
#define KU                                                                                         \
    "coalesce(nullif(split_part($3, '|', 1), ''), '00000000-0000-0000-0000-000000000000')::uuid"
#define KN "coalesce(nullif(split_part($3, '|', 2), ''), '-9223372036854775808')::int8"
#define AFTER(u, n) " (" u ", " n ") > (" KU ", " KN ")"
#define SCOPE(ws) " ($2::uuid IS NULL OR " ws " = $2::uuid)"
/* One page: (items joined by ',', count, last key). u, n: the key columns. */
#define PAGE(json, u, n, from)                                                                     \
    "SELECT string_agg(x.j, ',' ORDER BY x.rn), count(*)::int,"                                    \
    " (array_agg(x.k ORDER BY x.rn DESC))[1] FROM (SELECT (" json ")::text AS j,"                  \
    " " u "::text || '|' || " n " AS k, row_number() OVER (ORDER BY " u ", " n ") AS rn " from     \
    " AND" AFTER(u, n) " ORDER BY " u ", " n " LIMIT $4::int) x"
#define NIL "'00000000-0000-0000-0000-000000000000'::uuid"

// clang-format off
static const struct db_stmt rights_stmts[R__COUNT] = {
    /* The account goes whole: every workspace's data under a pseudonym,
     * then the person row (sql/009). Only with a session from a password
     * login of the last 5 minutes (401), and not while the person is the
     * only owner of a workspace (409: it would be left without one); a
     * deleted workspace (sql/011) does not count: it is going anyway. */
    [R_ERASE_ME] = {"rights_erase_me",
        P ", t AS (SELECT t.password_at > now() - interval '" REAUTH_S " seconds' AS fresh"
        "  FROM access_tokens t, p WHERE t.id = p.z::uuid AND t.person_id = p.actor),"
        " own AS (SELECT EXISTS (SELECT 1 FROM workspace_members m WHERE m.person_id = p.actor"
        "  AND m.role = 'owner' AND m.removed_at IS NULL AND " WS_LIVE("m.workspace_id")
        "  AND NOT EXISTS (SELECT 1"
        "   FROM workspace_members o WHERE o.workspace_id = m.workspace_id AND o.role = 'owner'"
        "   AND o.removed_at IS NULL AND o.person_id <> m.person_id)) AS sole FROM p),"
        " st AS (SELECT CASE WHEN NOT coalesce((SELECT fresh FROM t), false) THEN 401"
        "  WHEN own.sole THEN 409 ELSE 200 END AS st FROM own),"
        " e AS (SELECT parley_erase_account(p.actor) AS r FROM p, st WHERE st.st = 200)"
        " SELECT st.st, CASE st.st"
        "  WHEN 401 THEN " ERR("reauth_required", "", "sign in again with your password"
                               " (POST /api/v1/auth/login) and erase with that session within"
                               " 5 minutes")
        "  WHEN 409 THEN " ERR("sole_owner", "", "you are the only owner of a workspace:"
                               " delete it first")
        "  ELSE json_build_object('erased', true,"
        "   'workspaces', (SELECT jsonb_array_length(e.r->'workspaces') FROM e)) END,"
        "  CASE WHEN st.st = 200 THEN 'person ' || p.actor END"
        " FROM st, p, (SELECT count(*) FROM e) z",
        NPARAMS},
    /* A person's data in this workspace only; the account stays theirs. The
     * target must be one the actor manages (x); a pseudonym is 409. */
    [R_ERASE_MEMBER] = {"rights_erase_member",
        P ", t AS (SELECT wm.* FROM workspace_members wm, p"
        "  WHERE wm.workspace_id = p.ws AND wm.person_id = p.id1 AND wm.role <> 'avatar'),"
        " chk AS (SELECT CASE WHEN t.erased_at IS NOT NULL THEN 409"
        "  WHEN t.person_id = p.actor OR NOT " MANAGES("t.role") " THEN 403 ELSE 200 END AS st"
        "  FROM t, p),"
        " e AS (SELECT parley_erase_member(p.id1, p.ws, p.actor, 'admin', p.b->>'reason') AS r"
        "  FROM p, chk WHERE chk.st = 200)"
        " SELECT chk.st, CASE chk.st"
        "  WHEN 200 THEN (SELECT json_build_object('erased', true, 'pseudonym', e.r->'pseudonym',"
        "   'name', e.r->'name', 'counts', e.r->'counts') FROM e)"
        "  WHEN 409 THEN " ERR("already_erased", "", "the data of this person in this"
                               " workspace was already erased")
        "  ELSE " ERR("forbidden", "", "you may not erase this person") " END,"
        "  CASE WHEN chk.st = 200 THEN 'member ' || p.ws || ' ' || p.id1 END"
        " FROM chk, p, (SELECT count(*) FROM e) z",
        NPARAMS},
    /* The export is recorded before its first byte; no row: no such person
     * in the workspace (404). */
    [R_EXPORT_HEAD] = {"rights_export_head",
        "WITH s AS (SELECT pe.* FROM people pe WHERE pe.id = $1::uuid AND ($2::uuid IS NULL"
        "  OR EXISTS (SELECT 1 FROM workspace_members m WHERE m.workspace_id = $2::uuid"
        "   AND m.person_id = pe.id AND m.role <> 'avatar'))),"
        " l AS (INSERT INTO export_log (workspace_id, actor_id, subject_id)"
        "  SELECT $2::uuid, $3::uuid, s.id FROM s RETURNING at)"
        " SELECT '{\"format\":\"parley-export\",\"version\":1,\"generated_at\":'"
        "  || to_json(l.at)::text || ',\"subject\":' || to_json(s.id)::text"
        "  || ',\"workspace\":' || coalesce(to_json($2::uuid)::text, 'null')"
        "  || ',\"account\":' || json_build_object('id', s.id, 'email', s.email,"
        "   'phone', s.phone, 'email_verified', s.email_verified_at IS NOT NULL,"
        "   'phone_verified', s.phone_verified_at IS NOT NULL, 'display_name', s.display_name,"
        "   'first_name', s.first_name, 'last_name', s.last_name, 'picture_url', s.picture_url,"
        "   'avatar', s.is_avatar, 'pseudonym', s.pseudonym, 'created_at', s.created_at)::text"
        " FROM s, l",
        3},
    [R_EX_MEMBERSHIPS] = {"rights_ex_memberships",
        PAGE("json_build_object('workspace', w.id, 'workspace_name', w.name, 'role', m.role,"
             " 'title', m.title, 'department', m.department, 'superior_id', m.superior_id,"
             " 'joined_at', m.created_at, 'removed_at', m.removed_at)",
             "m.workspace_id", "0::int8",
             "FROM workspace_members m JOIN workspaces w ON w.id = m.workspace_id"
             " WHERE m.person_id = $1::uuid AND" SCOPE("m.workspace_id")),
        4},
    /* What they wrote: messages, entries, replies, and their edits (each
     * edit's text), in every room of the scope, deleted ones as stubs. */
    [R_EX_MESSAGES] = {"rights_ex_messages",
        PAGE("json_build_object('workspace', r.workspace_id, 'room', m.room_id, 'room_name',"
             " r.name, 'seq', m.seq, 'kind', m.kind, 'parent_seq', m.parent_seq,"
             " 'client_msg_id', m.client_msg_id, 'body', CASE WHEN m.kind = 'edit'"
             "  THEN m.body::json->>'body' ELSE m.body END,"
             " 'edit_of', CASE WHEN m.kind = 'edit' THEN (m.body::json->>'target')::int8 END,"
             " 'created_at', m.created_at, 'edited_at', m.edited_at, 'deleted_at', m.deleted_at,"
             " 'likes', m.like_count, 'ratings', m.star_count, 'star_sum', m.star_sum)",
             "m.room_id", "m.seq",
             "FROM messages m JOIN rooms r ON r.id = m.room_id WHERE m.sender_id = $1::uuid"
             " AND m.kind IN ('message', 'entry', 'reply', 'edit') AND" SCOPE("r.workspace_id")),
        4},
    [R_EX_READ] = {"rights_ex_read",
        PAGE("json_build_object('room', x.room_id, 'up_to', x.up_to, 'at', x.at)",
             "x.room_id", "0::int8",
             "FROM read_state x JOIN rooms r ON r.id = x.room_id WHERE x.person_id = $1::uuid"
             " AND" SCOPE("r.workspace_id")),
        4},
    [R_EX_SEEN] = {"rights_ex_seen",
        PAGE("json_build_object('room', x.room_id, 'seq', x.seq, 'at', x.at)",
             "x.room_id", "x.seq",
             "FROM seen x JOIN rooms r ON r.id = x.room_id WHERE x.person_id = $1::uuid"
             " AND" SCOPE("r.workspace_id")),
        4},
    [R_EX_LIKES] = {"rights_ex_likes",
        PAGE("json_build_object('room', x.room_id, 'seq', x.seq, 'at', x.at)",
             "x.room_id", "x.seq",
             "FROM likes x JOIN rooms r ON r.id = x.room_id WHERE x.person_id = $1::uuid"
             " AND" SCOPE("r.workspace_id")),
        4},
    [R_EX_RATINGS] = {"rights_ex_ratings",
        PAGE("json_build_object('room', x.room_id, 'seq', x.seq, 'stars', x.stars, 'at', x.at)",
             "x.room_id", "x.seq",
             "FROM ratings x JOIN rooms r ON r.id = x.room_id WHERE x.person_id = $1::uuid"
             " AND" SCOPE("r.workspace_id")),
        4},
    /* Invitations to them (with their own address) and by them (without
     * the invitee's: someone else's data). */
    [R_EX_INVITATIONS] = {"rights_ex_invitations",
        PAGE("json_build_object('id', i.id, 'workspace', i.workspace_id,"
             " 'direction', CASE WHEN i.invited_by = $1::uuid THEN 'sent' ELSE 'received' END,"
             " 'email', CASE WHEN i.invited_by = $1::uuid THEN NULL ELSE i.email END,"
             " 'phone', CASE WHEN i.invited_by = $1::uuid THEN NULL ELSE i.phone END,"
             " 'role', i.role, 'created_at', i.created_at, 'expires_at', i.expires_at,"
             " 'redeemed_at', i.redeemed_at, 'revoked_at', i.revoked_at)",
             "i.id", "0::int8",
             "FROM invitations i LEFT JOIN people pe ON pe.id = $1::uuid"
             " WHERE (i.invited_by = $1::uuid OR i.redeemed_by = $1::uuid OR i.email = pe.email"
             "  OR i.phone = pe.phone) AND" SCOPE("i.workspace_id")),
        4},
    [R_EX_MODERATION] = {"rights_ex_moderation",
        PAGE("json_build_object('id', x.id, 'workspace', x.workspace_id, 'room', x.room_id,"
             " 'action', x.action, 'seq', x.target_seq, 'pending', x.target_pending,"
             " 'actor_id', x.actor_id, 'reason', x.reason, 'at', x.at)",
             NIL, "x.id",
             "FROM moderation_log x WHERE x.target_person = $1::uuid AND" SCOPE("x.workspace_id")),
        4},
    [R_EX_HITS] = {"rights_ex_hits",
        PAGE("json_build_object('id', x.id, 'workspace', x.workspace_id, 'room', x.room_id,"
             " 'rule', x.rule_id, 'action', x.action, 'kind', x.kind, 'at', x.at)",
             NIL, "x.id",
             "FROM guideline_hits x WHERE x.person_id = $1::uuid AND" SCOPE("x.workspace_id")),
        4},
    [R_EX_HELD] = {"rights_ex_held",
        PAGE("json_build_object('id', x.id, 'workspace', r.workspace_id, 'room', x.room_id,"
             " 'client_msg_id', x.client_msg_id, 'body', x.body, 'parent_seq', x.parent_seq,"
             " 'state', x.state, 'rules', x.rules, 'created_at', x.created_at,"
             " 'decided_at', x.decided_at, 'seq', x.seq)",
             NIL, "x.id",
             "FROM pending x JOIN rooms r ON r.id = x.room_id WHERE x.sender_id = $1::uuid"
             " AND" SCOPE("r.workspace_id")),
        4},
    /* One workspace-wide mute and one per room at most: the room (or the
     * workspace) keys it. */
    [R_EX_MUTES] = {"rights_ex_mutes",
        PAGE("json_build_object('workspace', x.workspace_id, 'room', x.room_id,"
             " 'until', x.until, 'reason', x.reason, 'created_at', x.created_at)",
             "coalesce(x.room_id, x.workspace_id)", "0::int8",
             "FROM mutes x WHERE x.person_id = $1::uuid AND" SCOPE("x.workspace_id")),
        4},
    [R_EX_VISITS] = {"rights_ex_visits",
        PAGE("json_build_object('id', x.id, 'workspace', x.workspace_id, 'kind', x.kind,"
             " 'at', x.at, 'ip', host(x.ip), 'ip_anonymised', x.ip_anonymised, 'os', x.os,"
             " 'browser', x.browser)",
             NIL, "x.id",
             "FROM visits x WHERE x.person_id = $1::uuid AND" SCOPE("x.workspace_id")),
        4},
    /* Metadata only: a token's secret is never stored, and its hash stays. */
    [R_EX_TOKENS] = {"rights_ex_tokens",
        PAGE("json_build_object('id', x.id, 'kind', x.kind, 'workspace', x.workspace_id,"
             " 'rooms', x.room_ids, 'created_at', x.created_at, 'expires_at', x.expires_at,"
             " 'revoked_at', x.revoked_at)",
             "x.id", "0::int8",
             "FROM access_tokens x WHERE x.person_id = $1::uuid AND" SCOPE("x.workspace_id")),
        4},
    [R_RETENTION] = {"rights_retention", "SELECT parley_retention($1::int, $2::int)::text", 2},
};
// clang-format on
struct stmts_table rights_sql = {"rights", rights_stmts, R__COUNT, -1};

_Static_assert(RK__COUNT == STATS_RETENTION_KINDS, "stats.h counts every kind");

/* The statement's index in the prepared set (stmts.h). */
static int stmt_at(enum rights_stmt s)
{
    return stmts_at(&rights_sql, (int)s);
}

/* ---- erasure ------------------------------------------------------------- */

void rights_erase_me(struct http_req *r)
{
    if (r->avatar) {
        http_error(r, 403, "forbidden", "an avatar is erased by its workspace's admins", NULL);
        return;
    }
    apireq_run(r, stmt_at(R_ERASE_ME), r->token_id);
}

/* ---- export -------------------------------------------------------------- */

/* The list sections of the document, in order (protocol/EXPORT.md). */
static const struct {
    const char *name;      /* the member's name in the document */
    enum rights_stmt stmt; /* its page statement */
} sections[] = {
    {"memberships", R_EX_MEMBERSHIPS},
    {"messages", R_EX_MESSAGES},
    {"read_state", R_EX_READ},
    {"seen", R_EX_SEEN},
    {"likes", R_EX_LIKES},
    {"ratings", R_EX_RATINGS},
    {"invitations", R_EX_INVITATIONS},
    {"moderation", R_EX_MODERATION},
    {"guideline_hits", R_EX_HITS},
    {"held", R_EX_HELD},
    {"mutes", R_EX_MUTES},
    {"visits", R_EX_VISITS},
    {"tokens", R_EX_TOKENS},
};
#define NSECTIONS (int)(sizeof sections / sizeof sections[0])

struct export
{
    char subject[40];    /* whose data */
    char ws[40];         /* the workspace it is limited to, "" for all (own export) */
    int sec;             /* the section being written */
    char key[96];        /* the last key written in it, "" at its start */
    unsigned long items; /* items written in it */
    bool csv;            /* a ZIP of CSV files (one per section) instead of the JSON document */
    struct zipw zip;     /* the archive's state (csv) */
};

static void export_free(void *p)
{
    mem_free(p);
}

/* Hands piece o to the stream (and frees it); a failed build aborts. */
static void put_piece(struct http_req *r, struct sbuf *o, bool bad, bool last)
{
    if (bad || o->bad) {
        mem_free(o->b);
        log_error("export: piece failed", "%s", "out of memory or archive too large");
        http_stream_abort(r);
        return;
    }
    const char *parts[1] = {o->b ? o->b : ""};
    size_t lens[1] = {o->n};
    http_stream_put(r, parts, lens, 1, last);
    mem_free(o->b);
}

/* Appends the CSV lines of items (a page: JSON objects joined by ','),
 * with the header line first when head. false: not JSON (or no memory). */
static bool csv_lines(struct sbuf *o, const char *items, size_t len, bool head)
{
    struct sbuf j = {0};
    sbuf_put(&j, "[", 1);
    sbuf_put(&j, items, len);
    sbuf_put(&j, "]", 1);
    cJSON *arr = j.bad ? NULL : cJSON_ParseWithLength(j.b, j.n);
    mem_free(j.b);
    if (!arr) return false;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (head) csv_header(o, it);
        head = false;
        csv_row(o, it);
    }
    cJSON_Delete(arr);
    return true;
}

/* One page as CSV: section file name begins with its first page (its
 * header line from the first row's keys: a section without rows is an
 * empty file) and ends after its last; the archive after the last. */
static void csv_piece(struct http_req *r, struct export *x, const char *name, bool first,
                      const char *items, size_t len, int n, bool done, bool last)
{
    struct sbuf o = {0}, rows = {0};
    bool bad = false;
    if (first) {
        char file[ZIPW_NAME];
        snprintf(file, sizeof file, "%s.csv", name);
        zipw_begin(&x->zip, &o, file);
    }
    if (n > 0) {
        bad = !csv_lines(&rows, items, len, first);
        zipw_data(&x->zip, &o, rows.b, rows.n);
        bad |= rows.bad;
        mem_free(rows.b);
    }
    if (done) zipw_end(&x->zip, &o);
    if (last) zipw_finish(&x->zip, &o);
    put_piece(r, &o, bad || x->zip.bad, last);
}

static void on_page(void *ud, PGresult *res, int err)
{
    struct http_req *r = ud;
    if (!http_alive(r)) return;
    struct export *x = r->stream_ud;
    if (err || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        log_error("export page failed", "section=%s sqlstate=%s", sections[x->sec].name,
                  res ? db_sqlstate(res) : "");
        http_stream_abort(r);
        return;
    }
    int n = atoi(PQgetvalue(res, 0, 1));
    const char *items = PQgetvalue(res, 0, 0);
    size_t ilen = (size_t)PQgetlength(res, 0, 0);
    const char *name = sections[x->sec].name;
    bool first = x->items == 0 && x->key[0] == 0;
    unsigned long before = x->items;
    if (n > 0) {
        x->items += (unsigned long)n;
        snprintf(x->key, sizeof x->key, "%s", PQgetvalue(res, 0, 2));
    }
    /* a short page completes the section; after the last one, the export */
    bool done = n < EXPORT_PAGE;
    if (done) {
        x->sec++;
        x->key[0] = 0;
        x->items = 0;
    }
    bool last = done && x->sec == NSECTIONS;
    if (x->csv) {
        csv_piece(r, x, name, first, items, ilen, n, done, last);
        return;
    }
    const char *parts[5];
    size_t lens[5];
    int k = 0;
    char open[40];
    if (first) {
        snprintf(open, sizeof open, ",\"%s\":[", name);
        parts[k] = open;
        lens[k++] = strlen(open);
    }
    if (n > 0) {
        if (before) {
            parts[k] = ",";
            lens[k++] = 1;
        }
        parts[k] = items;
        lens[k++] = ilen;
    }
    if (done) {
        parts[k] = "]";
        lens[k++] = 1;
    }
    if (last) {
        parts[k] = "}\n";
        lens[k++] = 2;
    }
    http_stream_put(r, parts, lens, k, last);
}

static void export_pull(struct http_req *r)
{
    struct export *x = r->stream_ud;
    const char *v[4] = {x->subject, x->ws[0] ? x->ws : NULL, x->key, EXPORT_PAGE_S};
    int rc = db_query(r->app->db, -1, stmt_at(sections[x->sec].stmt), 4, v, NULL, NULL, on_page, r);
    if (rc) {
        http_stream_abort(r);
        return;
    }
    r->busy = true;
}

/* The CSV archive's first files from the document's head (its members
 * up to the account, without the closing brace): export.csv (format,
 * version, when, whose, which workspace) and account.csv. */
static void csv_head(struct http_req *r, struct export *x, const char *head, size_t len)
{
    struct sbuf j = {0}, o = {0}, a = {0}, b = {0};
    sbuf_put(&j, head, len);
    sbuf_put(&j, "}", 1);
    cJSON *doc = j.bad ? NULL : cJSON_ParseWithLength(j.b, j.n);
    mem_free(j.b);
    if (!doc) {
        http_stream_abort(r);
        return;
    }
    cJSON *acc = cJSON_DetachItemFromObjectCaseSensitive(doc, "account");
    csv_header(&a, doc);
    csv_row(&a, doc);
    if (acc) {
        csv_header(&b, acc);
        csv_row(&b, acc);
    }
    cJSON_Delete(acc);
    cJSON_Delete(doc);
    zipw_init(&x->zip, (int64_t)time(NULL));
    zipw_begin(&x->zip, &o, "export.csv");
    zipw_data(&x->zip, &o, a.b, a.n);
    zipw_end(&x->zip, &o);
    zipw_begin(&x->zip, &o, "account.csv");
    zipw_data(&x->zip, &o, b.b, b.n);
    zipw_end(&x->zip, &o);
    bool bad = a.bad || b.bad;
    mem_free(a.b);
    mem_free(b.b);
    put_piece(r, &o, bad || x->zip.bad, false);
}

static void on_head(void *ud, PGresult *res, int err)
{
    struct http_req *r = ud;
    if (!http_alive(r)) return;
    if (err || PQresultStatus(res) != PGRES_TUPLES_OK) {
        apireq_retry_later(r, "unavailable", "storage unavailable, retry later");
        return;
    }
    if (PQntuples(res) != 1) {
        http_error(r, 404, "not_found", "no such person", NULL);
        return;
    }
    struct export *x = mem_calloc(1, sizeof *x);
    if (!x) {
        http_error(r, 500, "internal", "out of memory", NULL);
        return;
    }
    snprintf(x->subject, sizeof x->subject, "%.36s", r->scratch);
    snprintf(x->ws, sizeof x->ws, "%.36s", r->scratch + 40);
    x->csv = r->scratch[80] == 'c';
    http_stream_start(r, 200, x->csv ? "application/zip" : "application/json", export_pull, x,
                      export_free);
    if (!x->csv) {
        const char *parts[1] = {PQgetvalue(res, 0, 0)};
        size_t lens[1] = {(size_t)PQgetlength(res, 0, 0)};
        http_stream_put(r, parts, lens, 1, false);
        return;
    }
    csv_head(r, x, PQgetvalue(res, 0, 0), (size_t)PQgetlength(res, 0, 0));
}

/* subject, ws (NULL: everything) and the format go through r->scratch to
 * the head's completion. ?format=json (the default) or csv; anything else
 * is 400 before the export is recorded. */
static void export_begin(struct http_req *r, const char *subject, const char *ws)
{
    const char *f = http_arg(r, "format");
    if (f && strcmp(f, "json") && strcmp(f, "csv")) {
        http_error(r, 400, "bad_field", "format: json or csv", "format");
        return;
    }
    snprintf(r->scratch, 40, "%s", subject);
    snprintf(r->scratch + 40, 40, "%s", ws ? ws : "");
    snprintf(r->scratch + 80, 8, "%s", f ? f : "json");
    const char *v[3] = {subject, ws, r->person};
    int rc = db_query(r->app->db, -1, stmt_at(R_EXPORT_HEAD), 3, v, NULL, NULL, on_head, r);
    if (rc) {
        apireq_retry_later(r, "unavailable", "storage unavailable, retry later");
        return;
    }
    r->busy = true;
}

void rights_export_me(struct http_req *r)
{
    export_begin(r, r->person, NULL);
}

void rights_export_member(struct http_req *r)
{
    export_begin(r, r->ids[1], r->ids[0]);
}

/* ---- retention ----------------------------------------------------------- */

const char *const rights_kind_names[RK__COUNT] = {
    "messages", "receipts",    "votes",  "held",           "members",   "visits",
    "tokens",   "invitations", "outbox", "workspace_rows", "workspaces"};

static void on_retention(void *ud, PGresult *res, int err)
{
    struct app *a = ud;
    if (err || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        if (!err) log_warn("retention job failed", "sqlstate=%s", db_sqlstate(res));
        return;
    }
    cJSON *o = cJSON_Parse(PQgetvalue(res, 0, 0));
    if (!o) return;
    char line[512];
    size_t n = 0;
    uint64_t total = 0;
    for (int k = 0; k < RK__COUNT; k++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(o, rights_kind_names[k]);
        uint64_t c = cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
        a->stats.retention_removed[k] += c;
        total += c;
        n += (size_t)snprintf(line + n, sizeof line - n, "%s%s=%llu", k ? " " : "",
                              rights_kind_names[k], (unsigned long long)c);
    }
    cJSON_Delete(o);
    a->stats.retention_runs++;
    if (total) log_info("retention: removed", "%s", line);
}

void rights_retention(struct app *a)
{
    char batch[16], days[16];
    snprintf(batch, sizeof batch, "%u", a->cfg.retention_batch);
    snprintf(days, sizeof days, "%u", a->cfg.visit_retention_days);
    const char *v[2] = {batch, days};
    db_query(a->db, -1, stmt_at(R_RETENTION), 2, v, NULL, NULL, on_retention, a);
}
