#include "http_api.h"

#include "apireq.h"
#include "app.h"
#include "auth.h"
#include "bus.h"
#include "http.h"
#include "jsonv.h"
#include "log.h"
#include "mem.h"
#include "moderation.h"
#include "perm.h"
#include "pwpolicy.h"
#include "rights.h"
#include "routes.h"
#include "signin.h"
#include "sql_account.h"
#include "sql_people.h"
#include "sql_rooms.h"
#include "stats.h"
#include "web.h"
#include "wsdelete.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* ---- routes -------------------------------------------------------------- */

static const char *const kinds[] = {"chat", "dialogue", NULL};
static const char *const visibilities[] = {"workspace", "members", NULL};
static const char *const invite_roles[] = {"admin", "keyuser", "member", NULL};
static const char *const ack_statuses[] = {"sent", "failed", "retry", NULL};

#define NAME(n, req)                                                                               \
    {                                                                                              \
        n, JV_TEXT, req, false, 1, 100, NULL                                                       \
    }
#define OPT_TEXT(n, max)                                                                           \
    {                                                                                              \
        n, JV_TEXT, false, true, 0, max, NULL                                                      \
    }
static const struct jv_field f_signup[] = {
    {"email", JV_EMAIL, true, false, 0, 0, NULL},
    {"password", JV_SECRET, true, false, AUTH_PW_MIN, AUTH_PW_MAX, NULL},
    OPT_TEXT("first_name", 100),
    OPT_TEXT("last_name", 100),
    {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_login[] = {
    {"email", JV_EMAIL, true, false, 0, 0, NULL},
    {"password", JV_SECRET, true, false, 1, AUTH_PW_MAX, NULL},
    {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_me[] = {OPT_TEXT("first_name", 100),
                                       OPT_TEXT("last_name", 100),
                                       OPT_TEXT("display_name", 100),
                                       {"picture_url", JV_URL, false, true, 0, 0, NULL},
                                       {"email", JV_EMAIL, false, true, 0, 0, NULL},
                                       {"phone", JV_PHONE, false, true, 0, 0, NULL},
                                       {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_ws_create[] = {
    {"name", JV_TEXT, true, false, 1, 200, NULL},
    {"allowed_domains", JV_DOMAINS, false, true, 0, 50, NULL},
    {"retention_days", JV_INT, false, true, 1, 36500, NULL},
    {"edit_window_s", JV_INT, false, false, 0, 604800, NULL},
    {"language", JV_TEXT, false, false, 2, 2, NULL},
    {"self_join", JV_BOOL, false, false, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, 0, NULL}};
static const char *const erasure_contents[] = {"delete", "keep", NULL};
static const struct jv_field f_ws_patch[] = {
    {"name", JV_TEXT, false, false, 1, 200, NULL},
    {"allowed_domains", JV_DOMAINS, false, true, 0, 50, NULL},
    {"retention_days", JV_INT, false, true, 1, 36500, NULL},
    {"edit_window_s", JV_INT, false, false, 0, 604800, NULL},
    {"erasure_content", JV_ENUM, false, false, 0, 0, erasure_contents},
    {"member_grace_days", JV_INT, false, false, 1, 3650, NULL},
    {"language", JV_TEXT, false, false, 2, 2, NULL},
    {"self_join", JV_BOOL, false, false, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, 0, NULL}};
/* Only the workspace's own fields: names and the picture live on the
 * account, which every workspace of the person shows, so they are the
 * person's to change (PATCH /me), never a workspace admin's. */
static const struct jv_field f_person[] = {OPT_TEXT("title", 200),
                                           OPT_TEXT("department", 200),
                                           {"superior_id", JV_UUID, false, true, 0, 0, NULL},
                                           {"role", JV_ENUM, false, false, 0, 0, invite_roles},
                                           {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_invite[] = {{"email", JV_EMAIL, false, false, 0, 0, NULL},
                                           {"phone", JV_PHONE, false, false, 0, 0, NULL},
                                           {"role", JV_ENUM, false, false, 0, 0, invite_roles},
                                           {"first_name", JV_TEXT, false, false, 0, 100, NULL},
                                           {"last_name", JV_TEXT, false, false, 0, 100, NULL},
                                           {"picture_url", JV_URL, false, false, 0, 0, NULL},
                                           {"title", JV_TEXT, false, false, 0, 200, NULL},
                                           {"department", JV_TEXT, false, false, 0, 200, NULL},
                                           {"superior_id", JV_UUID, false, false, 0, 0, NULL},
                                           {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_redeem[] = {
    {"token", JV_SECRET, true, false, 1, 128, NULL},
    {"password", JV_SECRET, false, false, AUTH_PW_MIN, AUTH_PW_MAX, NULL},
    OPT_TEXT("first_name", 100),
    OPT_TEXT("last_name", 100),
    {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_verify[] = {{"token", JV_SECRET, true, false, 1, 128, NULL},
                                           {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_resend[] = {{"email", JV_EMAIL, true, false, 0, 0, NULL},
                                           {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_ack[] = {{"status", JV_ENUM, true, false, 0, 0, ack_statuses},
                                        {"error", JV_TEXT, false, true, 0, 1000, NULL},
                                        {"attempt", JV_INT, false, false, 1, 2147483647, NULL},
                                        {"retry_after_s", JV_INT, false, false, 1, 86400, NULL},
                                        {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_room_create[] = {
    NAME("name", true),
    {"kind", JV_ENUM, false, false, 0, 0, kinds},
    {"visibility", JV_ENUM, false, false, 0, 0, visibilities},
    {"members", JV_UUIDS, false, false, 0, 1000, NULL},
    {"broadcast_reads", JV_BOOL, false, false, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_room_patch[] = {
    NAME("name", false),
    {"visibility", JV_ENUM, false, false, 0, 0, visibilities},
    {"archived", JV_BOOL, false, false, 0, 0, NULL},
    {"broadcast_reads", JV_BOOL, false, false, 0, 0, NULL},
    {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_room_member[] = {{"person_id", JV_UUID, true, false, 0, 0, NULL},
                                                {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_avatar_create[] = {NAME("name", true),
                                                  {"picture_url", JV_URL, false, true, 0, 0, NULL},
                                                  {"persona", JV_TEXT, false, false, 0, 4000, NULL},
                                                  {"owner_id", JV_UUID, false, false, 0, 0, NULL},
                                                  {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_avatar_patch[] = {NAME("name", false),
                                                 {"picture_url", JV_URL, false, true, 0, 0, NULL},
                                                 {"persona", JV_TEXT, false, false, 0, 4000, NULL},
                                                 {"owner_id", JV_UUID, false, false, 0, 0, NULL},
                                                 {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_avatar_token[] = {
    {"rooms", JV_UUIDS, false, false, 0, 100, NULL},
    {"expires_in_days", JV_INT, false, false, 1, 3650, NULL},
    {NULL, 0, 0, 0, 0, 0, NULL}};

static const char *const all_roles[] = {"owner",  "admin",  "keyuser", "support",
                                        "member", "avatar", NULL};
/* A body its handler checks itself (a rule set is not a flat field table). */
static const struct jv_field f_reason[] = {OPT_TEXT("reason", 500), {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_mute[] = {{"person_id", JV_UUID, true, false, 0, 0, NULL},
                                         {"room_id", JV_UUID, false, false, 0, 0, NULL},
                                         {"duration_s", JV_INT, true, false, 1, 31536000, NULL},
                                         OPT_TEXT("reason", 500),
                                         {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_unmute[] = {{"person_id", JV_UUID, true, false, 0, 0, NULL},
                                           {"room_id", JV_UUID, false, false, 0, 0, NULL},
                                           OPT_TEXT("reason", 500),
                                           {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_remove[] = {{"person_id", JV_UUID, true, false, 0, 0, NULL},
                                           OPT_TEXT("reason", 500),
                                           {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_settings[] = {{"locked", JV_BOOL, false, false, 0, 0, NULL},
                                             {"slow_mode_s", JV_INT, false, false, 0, 86400, NULL},
                                             OPT_TEXT("reason", 500),
                                             {NULL, 0, 0, 0, 0, 0, NULL}};
/* An erasure's reason is recorded: it must not name the person. */
static const struct jv_field f_erase[] = {{"reason", JV_TEXT, true, false, 1, 500, NULL},
                                          {NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_raw[] = {{NULL, 0, 0, 0, 0, 0, NULL}};
static const struct jv_field f_dry_run[] = {{"text", JV_SECRET, true, false, 1, 65536, NULL},
                                            {"room_id", JV_UUID, false, false, 0, 0, NULL},
                                            {"role", JV_ENUM, false, false, 0, 0, all_roles},
                                            {NULL, 0, 0, 0, 0, 0, NULL}};

static void r_health(struct http_req *r);
static void r_ready(struct http_req *r);
static void r_metrics(struct http_req *r);

/* A route's statement: its module's table and its index there (stmts.h). */
#define ACCOUNT(s) &sql_account, SA_##s
#define PEOPLE(s) &sql_people, SP_##s
#define ROOMS(s) &sql_rooms, SR_##s
#define MOD(m) &mod_sql, m
#define RIGHTS(s) &rights_sql, s
#define WSDEL(s) &wsdel_sql, s
#define NO_SQL NULL, -1
#define WS "/api/v1/workspaces/{ws}"
static const struct route routes[] = {
    {HM_GET, "/healthz", AU_NONE, -1, NULL, NO_SQL, r_health},
    {HM_GET, "/readyz", AU_NONE, -1, NULL, NO_SQL, r_ready},
    {HM_GET, "/metrics", AU_METRICS, -1, NULL, NO_SQL, r_metrics},
    {HM_POST, "/api/v1/auth/signup", AU_NONE, -1, f_signup, NO_SQL, signin_signup},
    {HM_POST, "/api/v1/auth/login", AU_NONE, -1, f_login, NO_SQL, signin_login},
    {HM_POST, "/api/v1/auth/verify", AU_NONE, -1, f_verify, NO_SQL, signin_verify},
    {HM_POST, "/api/v1/auth/verify/resend", AU_NONE, -1, f_resend, NO_SQL, signin_resend},
    {HM_POST, "/api/v1/auth/logout", AU_TOKEN, -1, NULL, ACCOUNT(LOGOUT), routes_logout},
    {HM_POST, "/api/v1/auth/revoke-all", AU_TOKEN, -1, NULL, ACCOUNT(REVOKE_ALL), NULL},
    {HM_GET, "/api/v1/me", AU_TOKEN, -1, NULL, ACCOUNT(ME_GET), NULL},
    {HM_PATCH, "/api/v1/me", AU_TOKEN, -1, f_me, ACCOUNT(ME_PATCH), routes_me_patch},
    {HM_DELETE, "/api/v1/me", AU_TOKEN, -1, NULL, RIGHTS(R_ERASE_ME), rights_erase_me},
    {HM_GET, "/api/v1/me/export", AU_TOKEN, -1, NULL, NO_SQL, rights_export_me},
    {HM_POST, "/api/v1/invitations/redeem", AU_NONE, -1, f_redeem, NO_SQL, signin_redeem},
    {HM_GET, "/api/v1/outbox", AU_OPERATOR, -1, NULL, PEOPLE(OUTBOX_LEASE), routes_outbox},
    {HM_GET, "/api/v1/outbox/{n}", AU_OPERATOR, -1, NULL, PEOPLE(OUTBOX_GET), NULL},
    {HM_POST, "/api/v1/outbox/{n}/ack", AU_OPERATOR, -1, f_ack, PEOPLE(OUTBOX_ACK), routes_ack},
    {HM_GET, "/api/v1/joinable", AU_TOKEN, -1, NULL, PEOPLE(JOINABLE), NULL},
    {HM_POST, "/api/v1/workspaces", AU_TOKEN, -1, f_ws_create, PEOPLE(WS_CREATE), routes_ws_create},
    {HM_GET, "/api/v1/workspaces", AU_TOKEN, -1, NULL, PEOPLE(WS_LIST), NULL},
    {HM_GET, WS, AU_WORKSPACE, P_WORKSPACE_READ, NULL, PEOPLE(WS_GET), NULL},
    {HM_PATCH, WS, AU_WORKSPACE, P_WORKSPACE_UPDATE, f_ws_patch, PEOPLE(WS_PATCH), routes_ws_patch},
    {HM_DELETE, WS, AU_WORKSPACE, P_WORKSPACE_DELETE, NULL, WSDEL(WD_DELETE), NULL},
    /* A deleted workspace is nobody's: the statement finds its owners. */
    {HM_POST, WS "/restore", AU_TOKEN, -1, NULL, WSDEL(WD_RESTORE), NULL},
    {HM_GET, "/api/v1/me/deleted-workspaces", AU_TOKEN, -1, NULL, WSDEL(WD_LIST), NULL},
    /* Not a member yet: the statement decides (404 unless it may join). */
    {HM_POST, WS "/join", AU_TOKEN, -1, NULL, PEOPLE(WS_JOIN), NULL},
    {HM_GET, WS "/people", AU_WORKSPACE, P_PEOPLE_LIST, NULL, PEOPLE(PEOPLE_LIST), NULL},
    {HM_GET, WS "/people/{id}", AU_WORKSPACE, P_PEOPLE_LIST, NULL, PEOPLE(PERSON_GET), NULL},
    {HM_PATCH, WS "/people/{id}", AU_WORKSPACE, P_PEOPLE_MANAGE, f_person, PEOPLE(PERSON_PATCH),
     routes_person_patch},
    {HM_DELETE, WS "/people/{id}", AU_WORKSPACE, P_PEOPLE_MANAGE, NULL, PEOPLE(PERSON_REMOVE),
     NULL},
    {HM_POST, WS "/people/{id}/restore", AU_WORKSPACE, P_PEOPLE_MANAGE, NULL,
     PEOPLE(PERSON_RESTORE), NULL},
    {HM_POST, WS "/people/{id}/erase", AU_WORKSPACE, P_PEOPLE_MANAGE, f_erase,
     RIGHTS(R_ERASE_MEMBER), NULL},
    {HM_GET, WS "/people/{id}/export", AU_WORKSPACE, P_PEOPLE_MANAGE, NULL, NO_SQL,
     rights_export_member},
    {HM_POST, WS "/invitations", AU_WORKSPACE, P_PEOPLE_INVITE, f_invite, PEOPLE(INVITE),
     routes_invite},
    {HM_GET, WS "/invitations", AU_WORKSPACE, P_PEOPLE_INVITE, NULL, PEOPLE(INVITE_LIST), NULL},
    {HM_DELETE, WS "/invitations/{id}", AU_WORKSPACE, P_PEOPLE_INVITE, NULL, PEOPLE(INVITE_REVOKE),
     NULL},
    {HM_POST, WS "/rooms", AU_WORKSPACE, P_ROOMS_MANAGE, f_room_create, ROOMS(ROOM_CREATE), NULL},
    {HM_GET, WS "/rooms", AU_WORKSPACE, P_ROOMS_LIST, NULL, ROOMS(ROOM_LIST), NULL},
    {HM_GET, WS "/rooms/{id}", AU_WORKSPACE, P_ROOMS_LIST, NULL, ROOMS(ROOM_GET), NULL},
    {HM_PATCH, WS "/rooms/{id}", AU_WORKSPACE, P_ROOMS_MANAGE, f_room_patch, ROOMS(ROOM_PATCH),
     NULL},
    {HM_GET, WS "/rooms/{id}/members", AU_WORKSPACE, P_ROOMS_LIST, NULL, ROOMS(ROOM_MEMBERS), NULL},
    {HM_POST, WS "/rooms/{id}/members", AU_WORKSPACE, P_ROOMS_MANAGE, f_room_member,
     ROOMS(ROOM_MEMBER_ADD), NULL},
    {HM_DELETE, WS "/rooms/{id}/members/{id2}", AU_WORKSPACE, P_ROOMS_MANAGE, NULL,
     ROOMS(ROOM_MEMBER_DEL), NULL},
    {HM_POST, WS "/avatars", AU_WORKSPACE, P_AVATARS_MANAGE, f_avatar_create, ROOMS(AVATAR_CREATE),
     NULL},
    {HM_GET, WS "/avatars", AU_WORKSPACE, P_AVATARS_LIST, NULL, ROOMS(AVATAR_LIST), NULL},
    {HM_GET, WS "/avatars/{id}", AU_WORKSPACE, P_AVATARS_LIST, NULL, ROOMS(AVATAR_GET), NULL},
    {HM_PATCH, WS "/avatars/{id}", AU_WORKSPACE, P_AVATARS_MANAGE, f_avatar_patch,
     ROOMS(AVATAR_PATCH), NULL},
    {HM_DELETE, WS "/avatars/{id}", AU_WORKSPACE, P_AVATARS_MANAGE, NULL, ROOMS(AVATAR_DELETE),
     NULL},
    {HM_POST, WS "/avatars/{id}/tokens", AU_WORKSPACE, P_AVATARS_MANAGE, f_avatar_token,
     ROOMS(AVATAR_TOKEN_CREATE), routes_avatar_token},
    {HM_GET, WS "/avatars/{id}/tokens", AU_WORKSPACE, P_AVATARS_MANAGE, NULL, ROOMS(AVATAR_TOKENS),
     NULL},
    {HM_DELETE, WS "/avatars/{id}/tokens/{id2}", AU_WORKSPACE, P_AVATARS_MANAGE, NULL,
     ROOMS(AVATAR_TOKEN_REVOKE), NULL},
    {HM_GET, WS "/visits", AU_WORKSPACE, P_VISITS_READ, NULL, ROOMS(VISITS), routes_visits},
    {HM_GET, WS "/guidelines", AU_WORKSPACE, P_GUIDELINES_READ, NULL, ROOMS(GL_GET), NULL},
    {HM_PUT, WS "/guidelines", AU_WORKSPACE, P_GUIDELINES_MANAGE, f_raw, ROOMS(GL_PUT),
     routes_gl_put},
    {HM_GET, WS "/rooms/{id}/guidelines", AU_WORKSPACE, P_GUIDELINES_READ, NULL, ROOMS(GL_GET),
     NULL},
    {HM_PUT, WS "/rooms/{id}/guidelines", AU_WORKSPACE, P_GUIDELINES_MANAGE, f_raw, ROOMS(GL_PUT),
     routes_gl_put},
    {HM_POST, WS "/guidelines/dry-run", AU_WORKSPACE, P_GUIDELINES_MANAGE, f_dry_run, NO_SQL,
     routes_gl_dry_run},
    {HM_GET, WS "/guidelines/audit", AU_WORKSPACE, P_GUIDELINES_MANAGE, NULL, ROOMS(GL_AUDIT),
     NULL},
    {HM_GET, WS "/rooms/{id}/pending", AU_WORKSPACE, P_ROOM_JOIN, NULL, MOD(M_PENDING), NULL},
    {HM_POST, WS "/rooms/{id}/pending/{n}/approve", AU_WORKSPACE, P_MODERATE, f_reason,
     MOD(M_APPROVE), NULL},
    {HM_POST, WS "/rooms/{id}/pending/{n}/reject", AU_WORKSPACE, P_MODERATE, f_reason,
     MOD(M_REJECT), NULL},
    {HM_POST, WS "/rooms/{id}/messages/{n}/delete", AU_WORKSPACE, P_MSG_SEND, f_reason,
     MOD(M_DELETE), NULL},
    {HM_POST, WS "/rooms/{id}/remove", AU_WORKSPACE, P_MODERATE, f_remove, MOD(M_REMOVE), NULL},
    {HM_PATCH, WS "/rooms/{id}/moderation", AU_WORKSPACE, P_MODERATE, f_settings, MOD(M_SETTINGS),
     NULL},
    {HM_GET, WS "/mutes", AU_WORKSPACE, P_MODERATE, NULL, MOD(M_MUTES), NULL},
    {HM_POST, WS "/mutes", AU_WORKSPACE, P_MODERATE, f_mute, MOD(M_MUTE), NULL},
    {HM_POST, WS "/mutes/lift", AU_WORKSPACE, P_MODERATE, f_unmute, MOD(M_UNMUTE), NULL},
    {HM_GET, WS "/moderation/log", AU_WORKSPACE, P_MODERATE, NULL, MOD(M_LOG), routes_mod_log},
    {HM_GET, WS "/evaluation", AU_WORKSPACE, P_EVALUATE, NULL, MOD(M_EVAL), routes_eval},
    {HM_GET, WS "/rooms/{id}/evaluation", AU_WORKSPACE, P_EVALUATE, NULL, MOD(M_EVAL), routes_eval},
};
#define NROUTES (sizeof routes / sizeof routes[0])

static const char *const method_names[] = {"GET",    "POST",    "PUT",  "PATCH",
                                           "DELETE", "OPTIONS", "HEAD", "?"};

void http_api_print_routes(FILE *f)
{
    for (size_t i = 0; i < NROUTES; i++)
        fprintf(f, "%s %s\n", method_names[routes[i].method], routes[i].path);
}

/* Matches path against a route pattern, capturing parameters into ids. */
static bool match(const char *pat, const char *path, char ids[HTTP_MAX_IDS][40], bool *bad_id)
{
    int n = 0;
    *bad_id = false;
    while (*pat && *path) {
        if (*pat == '{') {
            const char *close = strchr(pat, '}');
            const char *seg_end = strchr(path, '/');
            size_t len = seg_end ? (size_t)(seg_end - path) : strlen(path);
            bool is_int = !strncmp(pat, "{n}", 3);
            char v[40];
            if (!len || len >= sizeof v || n >= HTTP_MAX_IDS) return false;
            memcpy(v, path, len);
            v[len] = 0;
            bool ok = is_int ? strspn(v, "0123456789") == len && len <= 18 : jv_uuid(v);
            if (!ok) *bad_id = true; /* the route matches; the id names nothing */
            snprintf(ids[n++], 40, "%s", v);
            pat = close + 1;
            path += len;
            continue;
        }
        if (*pat++ != *path++) return false;
    }
    if (*path == '/' && !path[1]) path++; /* a trailing slash is tolerated */
    return !*pat && !*path;
}

/* ---- authentication ------------------------------------------------------ */

static void authorised(struct http_req *r)
{
    const struct route *rt = r->route;
    if (rt->auth == AU_WORKSPACE) {
        /* Not a member: the same answer as for a workspace that does not exist. */
        if (r->role == ROLE_NONE) {
            http_error(r, 404, "not_found", "no such workspace", NULL);
            return;
        }
        if (rt->perm >= 0 && !perm_allows(r->role, (enum perm)rt->perm)) {
            char m[96];
            snprintf(m, sizeof m, "your role (%s) may not do this (%s)", perm_role_name(r->role),
                     perm_name((enum perm)rt->perm));
            http_error(r, 403, "forbidden", m, NULL);
            return;
        }
    }
    if (rt->fn)
        rt->fn(r);
    else
        apireq_run_route(r);
}

static void on_auth(void *ud, PGresult *res, int err)
{
    struct http_req *r = ud;
    if (!apireq_rows(r, res, err)) return;
    if (PQntuples(res) == 0) {
        http_error(r, 401, "unauthorized", "invalid, expired or revoked token", NULL);
        return;
    }
    snprintf(r->person, sizeof r->person, "%s", PQgetvalue(res, 0, 0));
    snprintf(r->token_id, sizeof r->token_id, "%s", PQgetvalue(res, 0, 1));
    r->avatar = PQgetvalue(res, 0, 2)[0] == 't';
    r->role = PQgetisnull(res, 0, 3)
                  ? ROLE_NONE
                  : perm_role_parse(PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3));
    authorised(r);
}

void http_api_handle(struct http_req *r)
{
    struct app *a = r->app;
    a->stats.http_requests++;
    if ((r->method == HM_GET || r->method == HM_HEAD) && web_owns(r->path)) {
        web_serve(r);
        return;
    }
    const struct route *rt = NULL;
    char allow[64] = "";
    bool bad_id = false;
    for (size_t i = 0; i < NROUTES; i++) {
        char ids[HTTP_MAX_IDS][40] = {{0}};
        bool bad;
        if (!match(routes[i].path, r->path, ids, &bad)) continue;
        size_t n = strlen(allow);
        snprintf(allow + n, sizeof allow - n, "%s%s", n ? ", " : "",
                 method_names[routes[i].method]);
        if (routes[i].method == r->method) {
            rt = &routes[i];
            bad_id = bad;
            memcpy(r->ids, ids, sizeof ids);
        }
    }
    if (!rt && allow[0]) {
        snprintf(r->allow_buf, sizeof r->allow_buf, "%s", allow);
        r->allow = r->allow_buf;
        http_error(r, 405, "method_not_allowed", "method not allowed on this path", NULL);
        return;
    }
    if (!rt) {
        http_error(r, 404, "not_found", "no such route", NULL);
        return;
    }
    r->route = rt;
    if (bad_id) {
        http_error(r, 404, "not_found", "no such object", NULL);
        return;
    }
    if (rt->body == f_raw) {
        /* checked by the route's handler */
    } else if (rt->body) {
        struct jv_err e;
        /* approve, reject and delete take only an optional reason: the body
         * may be left out (elsewhere a missing body is a mistake, never {}:
         * a token minted unscoped and without expiry, a settings event) */
        r->json = jv_parse(r->body ? r->body : "", r->body_len, rt->body, rt->body == f_reason, &e);
        if (!r->json) {
            http_error(r, strcmp(e.code, "internal") ? 400 : 500, e.code, e.message, e.field);
            return;
        }
    } else if (r->body_len) {
        http_error(r, 400, "bad_request", "this route takes no body", NULL);
        return;
    }
    switch (rt->auth) {
    case AU_NONE:
        rt->fn(r);
        return;
    case AU_OPERATOR:
        if (!a->has_operator || !r->has_token || r->bad_token ||
            sodium_memcmp(r->token_hash, a->operator_hash, AUTH_HASH_BYTES)) {
            http_error(r, 401, "unauthorized", "operator token required", NULL);
            return;
        }
        authorised(r);
        return;
    case AU_METRICS:
        /* Not served without a token configured: the client port is
         * public, and the figures describe every workspace's traffic. */
        if (!a->has_metrics) {
            http_error(r, 404, "not_found", "no such route", NULL);
            return;
        }
        if (!r->has_token || r->bad_token ||
            sodium_memcmp(r->token_hash, a->metrics_hash, AUTH_HASH_BYTES)) {
            http_error(r, 401, "unauthorized", "metrics token required", NULL);
            return;
        }
        authorised(r);
        return;
    default:
        break;
    }
    if (!r->has_token || r->bad_token) {
        http_error(r, 401, "unauthorized",
                   r->has_token ? "malformed bearer token" : "Authorization: Bearer token required",
                   NULL);
        return;
    }
    const char *v[2] = {(const char *)r->token_hash, rt->auth == AU_WORKSPACE ? r->ids[0] : NULL};
    int len[2] = {AUTH_HASH_BYTES, 0}, fmt[2] = {1, 0};
    apireq_query(r, stmts_at(&sql_account, SA_AUTH), 2, v, len, fmt, on_auth);
}

/* ---- operational --------------------------------------------------------- */

static void r_health(struct http_req *r)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    apireq_respond_text(r, 200, ok, sizeof ok - 1);
}

static void r_ready(struct http_req *r)
{
    struct app *a = r->app;
    bool ready = db_ready(a->db) && bus_up(a->bus) && a->schema_ok && !a->draining;
    static const char yes[] = "{\"status\":\"ready\"}", no[] = "{\"status\":\"not ready\"}";
    if (ready)
        apireq_respond_text(r, 200, yes, sizeof yes - 1);
    else
        apireq_respond_text(r, 503, no, sizeof no - 1);
}

static void r_metrics(struct http_req *r)
{
    size_t n;
    char *text = r->app->api_hooks->render_metrics(r->app->api_hooks->ud, &n);
    if (!text) {
        http_error(r, 500, "internal", "out of memory", NULL);
        return;
    }
    r->type = "text/plain; version=0.0.4; charset=utf-8";
    http_respond(r, 200, text, n);
}

/* ---- jobs ---------------------------------------------------------------- */

static void on_anonymised(void *ud, PGresult *res, int err)
{
    (void)ud;
    if (!err && PQresultStatus(res) == PGRES_COMMAND_OK && atoi(PQcmdTuples(res)) > 0)
        log_info("visit log: IP addresses anonymised", "rows=%s", PQcmdTuples(res));
}

void http_api_anonymise(struct app *a)
{
    char days[16];
    snprintf(days, sizeof days, "%u", a->cfg.ip_retention_days);
    const char *v[1] = {days};
    db_query(a->db, -1, stmts_at(&sql_rooms, SR_ANONYMISE), 1, v, NULL, NULL, on_anonymised, NULL);
}

/* Reads a token file (one line, as `parleyd admin operator-token` writes)
 * into its hash. 0, or -1 after logging. */
static int token_file(const char *path, const char *what, unsigned char hash[AUTH_HASH_BYTES])
{
    FILE *f = fopen(path, "r");
    char t[128] = "";
    if (!f || !fgets(t, sizeof t, f)) {
        if (f) fclose(f);
        log_error("cannot read a token file", "what=%s path=%s", what, path);
        return -1;
    }
    fclose(f);
    t[strcspn(t, "\r\n")] = 0;
    int rc = auth_token_hash(t, strlen(t), hash);
    sodium_memzero(t, sizeof t);
    if (rc) {
        log_error("token file: not a token (parleyd admin operator-token makes one)",
                  "what=%s path=%s", what, path);
        return -1;
    }
    return 0;
}

int http_api_register_stmts(void)
{
    if (stmts_register(&sql_account) || stmts_register(&sql_people) || stmts_register(&sql_rooms))
        return -1;
    return 0;
}

int http_api_init(struct app *a, const struct http_api_hooks *hooks)
{
    a->api_hooks = mem_alloc(sizeof *a->api_hooks);
    if (!a->api_hooks) return -1;
    *a->api_hooks = *hooks;
    if (pwpolicy_init()) return -1;
    if (a->cfg.operator_token_file[0]) {
        if (token_file(a->cfg.operator_token_file, "operator", a->operator_hash)) return -1;
        a->has_operator = true;
    }
    if (a->cfg.metrics_token_file[0]) {
        if (token_file(a->cfg.metrics_token_file, "metrics", a->metrics_hash)) return -1;
        a->has_metrics = true;
    }
    return 0;
}

void http_api_free(struct app *a)
{
    mem_free(a->api_hooks);
    a->api_hooks = NULL;
}
