#include "routes.h"

#include "apireq.h"
#include "app.h"
#include "auth.h"
#include "guidelines.h"
#include "http.h"
#include "jsonv.h"
#include "mem.h"
#include "moderation.h"
#include "parley_proto.h"
#include "perm.h"
#include "rulecache.h"
#include "signin.h"
#include "sql_account.h"
#include "sql_people.h"
#include "sql_rooms.h"

#include <cjson/cJSON.h>
#include <sodium.h>
#include <stdlib.h>
#include <errno.h>
#include <string.h>

#include "apisql.h"

/* ---- accounts and tokens ------------------------------------------------- */

void routes_logout(struct http_req *r)
{
    apireq_run(r, stmts_at(&sql_account, SA_LOGOUT), r->token_id);
}

/* An avatar is a bot of one workspace: an address on it could be matched
 * by an invitation and give whoever holds its token a person's role. */
void routes_me_patch(struct http_req *r)
{
    bool address = cJSON_GetObjectItemCaseSensitive(r->json, "email") ||
                   cJSON_GetObjectItemCaseSensitive(r->json, "phone");
    if (r->avatar && address) {
        http_error(r, 403, "forbidden", "avatars cannot have an email address or phone number",
                   NULL);
        return;
    }
    char e[160], ph[160], z[400];
    signin_address_secret(e, sizeof e);
    signin_address_secret(ph, sizeof ph);
    snprintf(z, sizeof z, "%s %s %u", e, ph, r->app->cfg.verify_ttl_h);
    sodium_memzero(e, sizeof e);
    sodium_memzero(ph, sizeof ph);
    apireq_run(r, stmts_at(&sql_account, SA_ME_PATCH), z);
    sodium_memzero(z, sizeof z);
}

void routes_avatar_token(struct http_req *r)
{
    char z[AUTH_HASH_BYTES * 2 + 1];
    apireq_mint(r, z);
    apireq_run(r, stmts_at(&sql_rooms, SR_AVATAR_TOKEN_CREATE), z);
}

/* ---- workspaces, people, invitations, the outbox, the visit log --------- */

/* Whether the actor may give the body's "role" (absent: dflt); 403 if not. */
static bool role_givable(struct http_req *r, enum role dflt)
{
    cJSON *role = cJSON_GetObjectItemCaseSensitive(r->json, "role");
    enum role want = role ? perm_role_parse(role->valuestring, strlen(role->valuestring)) : dflt;
    if (perm_manages(r->role, want)) return true;
    http_error(r, 403, "forbidden", "you may not give this role", "role");
    return false;
}

/* Query argument name as an integer from lo to hi (absent: dflt) into *out;
 * 400 naming it if it is not one. */
static bool arg_int(struct http_req *r, const char *name, long dflt, long lo, long hi, long *out)
{
    const char *v = http_arg(r, name);
    *out = v ? strtol(v, NULL, 10) : dflt;
    if (!v || (strspn(v, "0123456789") == strlen(v) && *out >= lo && *out <= hi)) return true;
    char m[96];
    snprintf(m, sizeof m, "%s: must be an integer from %ld to %ld", name, lo, hi);
    http_error(r, 400, "bad_field", m, name);
    return false;
}

void routes_invite(struct http_req *r)
{
    bool email = cJSON_GetObjectItemCaseSensitive(r->json, "email") != NULL;
    bool phone = cJSON_GetObjectItemCaseSensitive(r->json, "phone") != NULL;
    if (email == phone) {
        http_error(r, 400, "missing_field", "exactly one of email and phone is required",
                   email ? "phone" : "email");
        return;
    }
    if (!role_givable(r, ROLE_MEMBER)) return;
    /* The secret goes only to the outbox: not spliced into the answer. */
    char text[AUTH_TOKEN_CHARS + 1], hx[AUTH_HASH_BYTES * 2 + 1], z[160];
    unsigned char h[AUTH_HASH_BYTES];
    auth_token_new(text, h);
    apireq_hex(h, sizeof h, hx);
    snprintf(z, sizeof z, "%s %s %u", hx, text, r->app->cfg.invite_ttl_h);
    sodium_memzero(text, sizeof text);
    apireq_run(r, stmts_at(&sql_people, SP_INVITE), z);
    sodium_memzero(z, sizeof z);
}

void routes_person_patch(struct http_req *r)
{
    /* no role given: nothing to check (the person keeps theirs) */
    if (!cJSON_GetObjectItemCaseSensitive(r->json, "role") || role_givable(r, ROLE_NONE))
        apireq_run_route(r);
}

/* A language is an ISO 639-1 code: two lower-case letters. */
static bool language_ok(struct http_req *r)
{
    cJSON *l = cJSON_GetObjectItemCaseSensitive(r->json, "language");
    if (!l || strspn(l->valuestring, "abcdefghijklmnopqrstuvwxyz") == 2) return true;
    http_error(r, 400, "bad_field", "language: must be an ISO 639-1 code such as en or de",
               "language");
    return false;
}

void routes_ws_create(struct http_req *r)
{
    if (r->avatar) {
        http_error(r, 403, "forbidden", "avatars may not create workspaces", NULL);
        return;
    }
    if (!language_ok(r)) return;
    apireq_run_route(r);
}

void routes_ws_patch(struct http_req *r)
{
    if (!language_ok(r)) return;
    if (cJSON_GetObjectItemCaseSensitive(r->json, "self_join") &&
        !perm_allows(r->role, P_WORKSPACE_SELF_JOIN)) {
        http_error(r, 403, "forbidden", "only the owner opens the workspace to its domains",
                   "self_join");
        return;
    }
    apireq_run_route(r);
}

void routes_ack(struct http_req *r)
{
    cJSON *st = cJSON_GetObjectItemCaseSensitive(r->json, "status");
    if (cJSON_GetObjectItemCaseSensitive(r->json, "retry_after_s") &&
        strcmp(st->valuestring, "retry")) {
        http_error(r, 400, "bad_field", "retry_after_s: only with status retry", "retry_after_s");
        return;
    }
    apireq_run_route(r);
}

void routes_outbox(struct http_req *r)
{
    long n, lease;
    if (!arg_int(r, "limit", 50, 1, 500, &n) || !arg_int(r, "lease_s", 300, 1, 3600, &lease))
        return;
    const char *ch = http_arg(r, "channel");
    if (ch && strcmp(ch, "email") && strcmp(ch, "sms")) {
        http_error(r, 400, "bad_field", "channel: must be email or sms", "channel");
        return;
    }
    char z[40];
    snprintf(z, sizeof z, "%ld %ld %s", n, lease, ch ? ch : "");
    apireq_run(r, stmts_at(&sql_people, SP_OUTBOX_LEASE), z);
}

void routes_visits(struct http_req *r)
{
    const char *b = http_arg(r, "before");
    long n;
    if (!arg_int(r, "limit", 100, 1, 1000, &n)) return;
    if (b && (!*b || strspn(b, "0123456789") != strlen(b) || strlen(b) > 18)) {
        http_error(r, 400, "bad_field", "before: must be a visit id", "before");
        return;
    }
    char z[48];
    snprintf(z, sizeof z, "%ld %s", n, b ? b : "");
    apireq_run(r, stmts_at(&sql_rooms, SR_VISITS), z);
}

/* ---- guidelines ---------------------------------------------------------- */

/* 400 naming the rule at fault and, for a regular expression, the offset. */
static void bad_rules(struct http_req *r, const struct gl_error *e)
{
    cJSON *o = cJSON_CreateObject(), *x = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(x, "code", "bad_rule");
    cJSON_AddStringToObject(x, "message", e->message);
    if (e->rule >= 0) {
        char f[32];
        snprintf(f, sizeof f, "rules[%d]", e->rule);
        cJSON_AddStringToObject(x, "field", f);
        cJSON_AddNumberToObject(x, "rule", e->rule);
        cJSON_AddNumberToObject(x, "offset", e->offset);
    }
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    http_respond(r, 400, t, t ? strlen(t) : 0);
}

void routes_gl_put(struct http_req *r)
{
    struct gl_error e;
    struct gl_set *set = gl_compile(r->body ? r->body : "", r->body_len, &e);
    if (!set) {
        bad_rules(r, &e);
        return;
    }
    gl_free(set);
    unsigned long failures = pp_alloc_failures();
    r->json = cJSON_ParseWithLength(r->body, r->body_len);
    if (!r->json) {
        if (pp_alloc_failures() != failures)
            http_error(r, 500, "internal", "out of memory", NULL);
        else
            http_error(r, 400, "bad_json", "body is not valid JSON", NULL);
        return;
    }
    apireq_run(r, stmts_at(&sql_rooms, SR_GL_PUT), NULL);
}

/* ?from=&to= (ISO 8601, default the last 30 days), ?format=csv|json. */
void routes_eval(struct http_req *r)
{
    const char *from = http_arg(r, "from"), *to = http_arg(r, "to"), *fmt = http_arg(r, "format");
    if (fmt && strcmp(fmt, "csv") && strcmp(fmt, "json")) {
        http_error(r, 400, "bad_query", "format: csv or json", "format");
        return;
    }
    bool csv = fmt && !strcmp(fmt, "csv");
    char z[300];
    snprintf(z, sizeof z, "%s|%s|%s", from ? from : "", to ? to : "", csv ? "csv" : "json");
    if (strchr(from ? from : "", '|') || strchr(to ? to : "", '|')) {
        http_error(r, 400, "bad_query", "from, to: ISO 8601 times", "from");
        return;
    }
    if (csv) r->type = "text/csv; charset=utf-8";
    apireq_run_read(r, stmts_at(&mod_sql, M_EVAL), z); /* a report: the replica may answer */
}

/* ?room=<id> narrows the log to one room. */
void routes_mod_log(struct http_req *r)
{
    const char *room = http_arg(r, "room");
    if (room && !jv_uuid(room)) {
        http_error(r, 400, "bad_query", "room: a room id", "room");
        return;
    }
    apireq_run(r, stmts_at(&mod_sql, M_LOG), room ? room : "");
}

static void on_effective(void *ud, PGresult *res, int err)
{
    struct http_req *r = ud;
    if (!apireq_rows(r, res, err)) return;
    if (PQntuples(res) != 1) {
        http_error(r, 404, "not_found", "no such room", "room_id");
        return;
    }
    const char *w = PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0);
    const char *rm = PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1);
    char *merged = rulecache_merge(w, rm);
    if (!merged) {
        http_error(r, 500, "internal", "out of memory", NULL);
        return;
    }
    struct gl_error e;
    struct gl_set *set = gl_compile(merged, strlen(merged), &e);
    mem_free(merged);
    if (!set) {
        bad_rules(r, &e);
        return;
    }
    const char *text = apireq_jstr(r, "text"), *role = apireq_jstr(r, "role");
    struct gl_ctx ctx = {.role = role ? perm_role_parse(role, strlen(role)) : r->role,
                         .since_last_ms = -1};
    struct gl_verdict v;
    int erc = gl_eval(set, text, strlen(text), &ctx, &v);
    if (erc) {
        gl_free(set);
        if (erc == -EILSEQ)
            http_error(r, 400, "bad_field", "text: not valid UTF-8", "text");
        else
            http_error(r, 500, "internal", "out of memory", NULL);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "action", gl_action_name(v.action));
    if (v.decisive >= 0) cJSON_AddStringToObject(o, "rule", v.hits[0].rule_id);
    for (int i = 0; i < v.nhits; i++)
        if (v.hits[i].rule == v.decisive) {
            cJSON_DeleteItemFromObjectCaseSensitive(o, "rule");
            cJSON_AddStringToObject(o, "rule", v.hits[i].rule_id);
            break;
        }
    if (v.text)
        cJSON_AddStringToObject(o, "text", v.text);
    else
        cJSON_AddNullToObject(o, "text");
    cJSON *hits = cJSON_AddArrayToObject(o, "hits");
    for (int i = 0; i < v.nhits; i++) {
        cJSON *h = cJSON_CreateObject();
        cJSON_AddStringToObject(h, "rule", v.hits[i].rule_id);
        cJSON_AddStringToObject(h, "action", gl_action_name(v.hits[i].action));
        cJSON_AddStringToObject(h, "kind", v.hits[i].kind);
        cJSON_AddNumberToObject(h, "start", (double)v.hits[i].start);
        cJSON_AddNumberToObject(h, "end", (double)v.hits[i].end);
        cJSON_AddItemToArray(hits, h);
    }
    gl_verdict_free(&v);
    gl_free(set);
    char *t = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    http_respond(r, 200, t, t ? strlen(t) : 0);
}

void routes_gl_dry_run(struct http_req *r)
{
    const char *room = apireq_jstr(r, "room_id");
    const char *y = perm_allows(r->role, P_ROOMS_MANAGE) ? "r" : "";
    const char *v[NPARAMS] = {r->person, r->ids[0], room, NULL, "{}", "", y, "", r->ip, "|"};
    apireq_query(r, stmts_at(&sql_rooms, SR_GL_EFFECTIVE), NPARAMS, v, NULL, NULL, on_effective);
}
