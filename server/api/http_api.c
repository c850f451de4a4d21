#include "http_api.h"

#include "app.h"
#include "auth.h"
#include "bus.h"
#include "ctl.h"
#include "guidelines.h"
#include "http.h"
#include "jsonv.h"
#include "log.h"
#include "moderation.h"
#include "perm.h"
#include "pwpolicy.h"
#include "rights.h"
#include "rulecache.h"
#include "stats.h"
#include "store.h"
#include "web.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "apisql.h"

/* b ? 'k': the field was sent, so an update sets it (to null if null). */
#define SET(col, key) col " = CASE WHEN p.b ? '" key "' THEN p.b->>'" key "' ELSE " col " END"

#define PERSON_JSON                                                                                \
    "json_build_object('id', pe.id,"                                                               \
    " 'email', CASE WHEN " FLAG("c") " OR pe.id = p.actor THEN pe.email END,"                      \
                                     " 'phone', CASE WHEN " FLAG(                                  \
                                         "c") " OR pe.id = p.actor THEN pe.phone END,"             \
                                              " 'display_name', pe.display_name, 'first_name', "   \
                                              "pe.first_name, 'last_name', pe.last_name,"          \
                                              " 'picture_url', pe.picture_url, 'avatar', "         \
                                              "pe.is_avatar, 'role', wm.role, 'title', wm.title,"  \
                                              " 'department', wm.department, 'superior_id', "      \
                                              "wm.superior_id, 'joined_at', wm.created_at,"        \
                                              " 'removed_at', wm.removed_at)"
/* The newest pending change of an address of pe (purpose 'email' or
 * 'phone'); extra narrows it further. */
#define PENDING(kind, extra)                                                                       \
    "(SELECT v.address FROM verifications v WHERE v.person_id = pe.id AND v.purpose = '" kind      \
    "' AND v.used_at IS NULL AND v.expires_at > now()" extra                                       \
    " ORDER BY v.created_at DESC LIMIT 1)"
#define ME_JSON ME_JSON_WITH(PENDING("email", ""), PENDING("phone", ""))
#define ME_JSON_WITH(pending_email, pending_phone)                                                 \
    "json_build_object('id', pe.id, 'email', pe.email, 'phone', pe.phone,"                         \
    " 'email_verified', pe.email_verified_at IS NOT NULL, 'pending_email', " pending_email ","     \
    " 'phone_verified', pe.phone_verified_at IS NOT NULL, 'pending_phone', " pending_phone ","     \
    " 'display_name', pe.display_name, 'first_name', pe.first_name, 'last_name', pe.last_name,"    \
    " 'picture_url', pe.picture_url, 'avatar', pe.is_avatar, 'created_at', pe.created_at,"         \
    " 'workspaces', coalesce((SELECT json_agg(json_build_object('id', w.id, 'name', w.name,"       \
    " 'role', m.role) ORDER BY w.name, w.id) FROM workspace_members m"                             \
    " JOIN workspaces w ON w.id = m.workspace_id"                                                  \
    " WHERE m.person_id = pe.id AND m.removed_at IS NULL), '[]'))"
#define WS_JSON                                                                                    \
    "json_build_object('id', w.id, 'name', w.name, 'allowed_domains', w.allowed_domains,"          \
    " 'retention_days', w.retention_days, 'edit_window_s', w.edit_window_s,"                       \
    " 'erasure_content', w.erasure_content, 'member_grace_days', w.member_grace_days,"             \
    " 'language', w.language, 'self_join', w.self_join,"                                           \
    " 'created_at', w.created_at, 'role', wm.role)"
#define ROOM_JSON                                                                                  \
    "json_build_object('id', r.id, 'name', r.name, 'kind', r.kind, 'visibility', r.visibility,"    \
    " 'archived', r.archived_at IS NOT NULL, 'broadcast_reads', r.broadcast_reads,"                \
    " 'locked', r.locked, 'slow_mode_s', r.slow_mode_s,"                                           \
    " 'last_seq', r.last_seq, 'created_at', r.created_at)"
#define INVITE_JSON                                                                                \
    "json_build_object('id', i.id, 'email', i.email, 'phone', i.phone, 'role', i.role,"            \
    " 'profile', i.profile, 'created_at', i.created_at, 'expires_at', i.expires_at,"               \
    " 'status', CASE WHEN i.revoked_at IS NOT NULL THEN 'revoked'"                                 \
    " WHEN i.redeemed_at IS NOT NULL THEN 'redeemed' WHEN i.expires_at <= now() THEN 'expired'"    \
    " ELSE 'pending' END)"
/* Workspace w is open to person pe joining on their own: self-service
 * join on, and pe's proven email in one of its domains (exactly: a
 * subdomain is another organisation's). Avatars have no address. */
#define SELF_JOINS(w, pe)                                                                          \
    "(" w ".self_join AND " pe ".email_verified_at IS NOT NULL AND NOT " pe ".is_avatar"           \
    " AND " w ".allowed_domains @> ARRAY[split_part(" pe ".email, '@', 2)])"
/* An outbox item still to deliver: not sent or failed, and its invitation
 * or secret still good. */
#define OUTBOX_LIVE(o)                                                                             \
    "(" o ".sent_at IS NULL AND " o ".failed_at IS NULL"                                           \
    " AND NOT EXISTS (SELECT 1 FROM invitations i WHERE i.id = " o ".invitation_id"                \
    "  AND (i.revoked_at IS NOT NULL OR i.redeemed_at IS NOT NULL OR i.expires_at <= now()))"      \
    " AND NOT EXISTS (SELECT 1 FROM verifications v WHERE v.id = " o ".verification_id"            \
    "  AND (v.used_at IS NOT NULL OR v.expires_at <= now())))"
/* An item as the mailer sees it; language: its workspace's (NULL without
 * one); attempts counts leases, so it names this lease. */
// clang-format off
#define OUTBOX_JSON(o)                                                                             \
    "json_build_object('id', " o ".id, 'channel', " o ".channel, 'recipient', " o ".recipient,"    \
    " 'payload', " o ".payload, 'attempts', " o ".attempts, 'created_at', " o ".created_at,"       \
    " 'lease_expires_at', " o ".leased_until, 'lease_remaining_ms', greatest(0,"                   \
    " " TS_MS(o ".leased_until") " - " TS_MS("now()") "),"                                         \
    " 'language', (SELECT lw.language FROM workspaces lw WHERE lw.id = " o ".workspace_id))"
// clang-format on
#define AVATAR_JSON                                                                                \
    "json_build_object('id', pe.id, 'name', pe.display_name, 'picture_url', pe.picture_url,"       \
    " 'persona', av.persona, 'owner_id', av.owner_id, 'created_at', av.created_at,"                \
    " 'removed_at', wm.removed_at)"
#define TOKEN_JSON                                                                                 \
    "json_build_object('id', t.id, 'kind', t.kind, 'rooms', t.room_ids,"                           \
    " 'created_at', t.created_at, 'expires_at', t.expires_at, 'revoked_at', t.revoked_at)"
/* The person's own connection to a workspace (not removed). */
#define ACTIVE_MEMBER(who)                                                                         \
    "EXISTS (SELECT 1 FROM workspace_members am WHERE am.workspace_id = p.ws"                      \
    " AND am.person_id = " who " AND am.removed_at IS NULL AND am.role <> 'avatar')"
#define UA_OS "split_part(p.ua, '|', 1)"
#define UA_BROWSER "split_part(p.ua, '|', 2)"

enum api_stmt {
    A_AUTH,
    A_SIGNUP,
    A_VERIFY,
    A_RESEND,
    A_LOGIN_LOOKUP,
    A_LOGIN_FINISH,
    A_LOGOUT,
    A_REVOKE_ALL,
    A_ME_GET,
    A_ME_PATCH,
    A_WS_CREATE,
    A_WS_LIST,
    A_WS_GET,
    A_WS_PATCH,
    A_WS_DELETE,
    A_PEOPLE_LIST,
    A_PERSON_GET,
    A_PERSON_PATCH,
    A_PERSON_REMOVE,
    A_PERSON_RESTORE,
    A_INVITE,
    A_INVITE_LIST,
    A_INVITE_REVOKE,
    A_REDEEM_LOOKUP,
    A_REDEEM,
    A_OUTBOX_LEASE,
    A_OUTBOX_GET,
    A_OUTBOX_ACK,
    A_JOINABLE,
    A_WS_JOIN,
    A_ROOM_CREATE,
    A_ROOM_LIST,
    A_ROOM_GET,
    A_ROOM_PATCH,
    A_ROOM_MEMBERS,
    A_ROOM_MEMBER_ADD,
    A_ROOM_MEMBER_DEL,
    A_AVATAR_CREATE,
    A_AVATAR_LIST,
    A_AVATAR_GET,
    A_AVATAR_PATCH,
    A_AVATAR_DELETE,
    A_AVATAR_TOKEN_CREATE,
    A_AVATAR_TOKENS,
    A_AVATAR_TOKEN_REVOKE,
    A_VISITS,
    A_ANONYMISE,
    A_GL_GET,
    A_GL_PUT,
    A_GL_EFFECTIVE,
    A_GL_AUDIT,
    A__COUNT
};

// clang-format off
const struct db_stmt http_api_stmts[A__COUNT] = {
    /* Who holds the token, and their role in the path's workspace (NULL
     * when not an active member, or the token is scoped elsewhere). */
    [A_AUTH] = {"api_auth",
                "SELECT t.person_id::text, t.id::text, pe.is_avatar, wm.role"
                "  FROM access_tokens t JOIN people pe ON pe.id = t.person_id"
                "  LEFT JOIN workspace_members wm ON wm.person_id = t.person_id"
                "   AND wm.workspace_id = $2::uuid AND wm.removed_at IS NULL"
                "   AND (t.workspace_id IS NULL OR t.workspace_id = wm.workspace_id)"
                " WHERE t.hash = $1 AND t.revoked_at IS NULL"
                "   AND (t.expires_at IS NULL OR t.expires_at > now())",
                2},
    /* No account yet: a pending sign-up whose secret goes to the address
     * (y: the argon2id hash; z: "<secret hash hex> <secret> <ttl hours>").
     * An address that has an account gets a notice instead, and the answer
     * is the same, so sign-up does not tell who is registered. */
    [A_SIGNUP] = {"api_signup",
        P ", ex AS (SELECT 1 FROM people pe, p WHERE pe.email = p.b->>'email'),"
        " v AS (INSERT INTO verifications (purpose, hash, address, password_hash, profile,"
        "  expires_at)"
        "  SELECT 'signup', decode(split_part(p.z, ' ', 1), 'hex'), p.b->>'email', p.y,"
        "   p.b - 'email', now() + make_interval(hours => split_part(p.z, ' ', 3)::int)"
        "  FROM p WHERE NOT EXISTS (SELECT 1 FROM ex) RETURNING *),"
        " o AS (INSERT INTO outbox (channel, recipient, payload, verification_id)"
        "  SELECT 'email', v.address, jsonb_build_object('type', 'verification',"
        "   'purpose', 'signup', 'first_name', v.profile->>'first_name',"
        "   'token', split_part(p.z, ' ', 2), 'expires_at', v.expires_at), v.id FROM v, p"
        "  UNION ALL SELECT 'email', p.b->>'email', jsonb_build_object('type', 'address_in_use',"
        "   'via', 'signup'), NULL FROM p WHERE EXISTS (SELECT 1 FROM ex) RETURNING 1)"
        " SELECT 202, json_build_object('status', 'verification_sent'), NULL FROM p"
        " WHERE (SELECT count(*) FROM o) >= 0",
        NPARAMS},
    /* z: "<secret hash hex> <session hash hex> <ttl hours>". A sign-up
     * becomes an account with a session (201); a change of address takes
     * effect (200). An address taken meanwhile: 409, and nothing changes. */
    [A_VERIFY] = {"api_verify",
        P ", vr AS (SELECT v.* FROM verifications v, p"
        "  WHERE v.hash = decode(split_part(p.z, ' ', 1), 'hex') AND v.used_at IS NULL"
        "  AND v.expires_at > now() FOR UPDATE OF v),"
        " tk AS (SELECT EXISTS (SELECT 1 FROM people x WHERE x.id IS DISTINCT FROM vr.person_id"
        "  AND CASE WHEN vr.purpose = 'phone' THEN x.phone ELSE x.email END = vr.address) AS t"
        "  FROM vr),"
        " cr AS (INSERT INTO people (email, password_hash, first_name, last_name,"
        "  email_verified_at)"
        "  SELECT vr.address, vr.password_hash, vr.profile->>'first_name',"
        "   vr.profile->>'last_name', now() FROM vr, tk WHERE vr.purpose = 'signup' AND NOT tk.t"
        "  RETURNING *),"
        " ch AS (UPDATE people pe SET"
        "  email = CASE WHEN vr.purpose = 'email' THEN vr.address ELSE pe.email END,"
        "  email_verified_at = CASE WHEN vr.purpose = 'email' THEN now()"
        "   ELSE pe.email_verified_at END,"
        "  phone = CASE WHEN vr.purpose = 'phone' THEN vr.address ELSE pe.phone END,"
        "  phone_verified_at = CASE WHEN vr.purpose = 'phone' THEN now()"
        "   ELSE pe.phone_verified_at END"
        "  FROM vr, tk WHERE pe.id = vr.person_id AND NOT tk.t RETURNING pe.*),"
        " pe AS (SELECT * FROM cr UNION ALL SELECT * FROM ch),"
        /* used, with the other pending sign-ups of the address */
        " u AS (UPDATE verifications v SET used_at = now() FROM vr, tk WHERE NOT tk.t"
        "  AND (v.id = vr.id OR (vr.purpose = 'signup' AND v.purpose = 'signup'"
        "   AND v.address = vr.address AND v.used_at IS NULL)) RETURNING v.id),"
        " o AS (UPDATE outbox o SET payload = o.payload - 'token' FROM u"
        "  WHERE o.verification_id = u.id RETURNING 1),"
        " t AS (INSERT INTO access_tokens (hash, person_id, kind, expires_at)"
        "  SELECT decode(split_part(p.z, ' ', 2), 'hex'), cr.id, 'session',"
        "   now() + make_interval(hours => split_part(p.z, ' ', 3)::int) FROM cr, p"
        "  RETURNING expires_at),"
        " vi AS (INSERT INTO visits (person_id, kind, ip, os, browser)"
        "  SELECT cr.id, 'login', p.ip::inet, " UA_OS ", " UA_BROWSER " FROM cr, p)"
        " SELECT CASE WHEN tk.t THEN 409 WHEN vr.purpose = 'signup' THEN 201 ELSE 200 END,"
        "  CASE WHEN tk.t THEN " ERR("conflict", "", "this address already belongs to an account")
        "  WHEN vr.purpose = 'signup' THEN (SELECT json_build_object('expires_at', t.expires_at,"
        "   'person', " ME_JSON ") FROM t, pe)"
        "  ELSE (SELECT json_build_object('person', "
        ME_JSON_WITH(PENDING("email", " AND v.id <> vr.id"), PENDING("phone", " AND v.id <> vr.id"))
        ") FROM pe) END, NULL FROM vr, tk WHERE (SELECT count(*) FROM o) >= 0",
        NPARAMS},
    /* z: "<secret hash hex> <secret> <ttl hours>". The newest pending proof
     * of the address gets a new secret (the old one stops working and its
     * item is withdrawn); an account whose address was never proven gets
     * one. Anything else: nothing, with the same answer. */
    [A_RESEND] = {"api_resend",
        P ", cur AS (SELECT v.id FROM verifications v, p WHERE v.address = p.b->>'email'"
        "  AND v.purpose IN ('signup', 'email') AND v.used_at IS NULL AND v.expires_at > now()"
        "  ORDER BY v.created_at DESC LIMIT 1),"
        " acc AS (SELECT pe.id FROM people pe, p WHERE pe.email = p.b->>'email'"
        "  AND pe.email_verified_at IS NULL AND NOT pe.is_avatar"
        "  AND NOT EXISTS (SELECT 1 FROM cur)),"
        " nv AS (INSERT INTO verifications (purpose, hash, person_id, address, expires_at)"
        "  SELECT 'email', decode(split_part(p.z, ' ', 1), 'hex'), acc.id, p.b->>'email',"
        "   now() + make_interval(hours => split_part(p.z, ' ', 3)::int) FROM acc, p RETURNING *),"
        " uv AS (UPDATE verifications v SET hash = decode(split_part(p.z, ' ', 1), 'hex'),"
        "  expires_at = now() + make_interval(hours => split_part(p.z, ' ', 3)::int)"
        "  FROM cur, p WHERE v.id = cur.id RETURNING v.*),"
        " x AS (UPDATE outbox o SET payload = o.payload - 'token',"
        "  failed_at = coalesce(o.failed_at, CASE WHEN o.sent_at IS NULL THEN now() END),"
        "  last_error = coalesce(o.last_error, 'superseded by a new secret')"
        "  FROM uv WHERE o.verification_id = uv.id RETURNING 1),"
        " o AS (INSERT INTO outbox (channel, recipient, payload, verification_id)"
        "  SELECT 'email', a.address, jsonb_build_object('type', 'verification',"
        "   'purpose', a.purpose, 'first_name', a.profile->>'first_name',"
        "   'token', split_part(p.z, ' ', 2), 'expires_at', a.expires_at), a.id"
        "  FROM (SELECT * FROM nv UNION ALL SELECT * FROM uv) a, p RETURNING 1)"
        " SELECT 202, json_build_object('status', 'verification_sent'), NULL FROM p"
        " WHERE (SELECT count(*) FROM o) + (SELECT count(*) FROM x) >= 0",
        NPARAMS},
    [A_LOGIN_LOOKUP] = {"api_login_lookup",
                        "SELECT id::text, password_hash FROM people"
                        " WHERE email = $1 AND NOT is_avatar AND password_hash IS NOT NULL",
                        1},
    /* y: a new hash when the old parameters were weaker, else NULL. */
    [A_LOGIN_FINISH] = {"api_login_finish",
                        P ", u AS (UPDATE people SET password_hash = p.y FROM p"
                          "  WHERE people.id = p.actor AND p.y IS NOT NULL RETURNING 1),"
                          " v AS (INSERT INTO visits (person_id, kind, ip, os, browser)"
                          "  SELECT p.actor, 'login', p.ip::inet, " UA_OS ", " UA_BROWSER " FROM p),"
                          /* password_at: this session re-authenticated (DELETE /me) */
                          " t AS (INSERT INTO access_tokens (hash, person_id, kind, expires_at,"
                          "  password_at)"
                          "  SELECT decode(split_part(p.z, ' ', 1), 'hex'), p.actor, 'session',"
                          "   now() + make_interval(hours => split_part(p.z, ' ', 2)::int), now() FROM p"
                          "  RETURNING expires_at)"
                          " SELECT 200, json_build_object('expires_at', t.expires_at,"
                          " 'person', " ME_JSON "), NULL FROM t, p, people pe WHERE pe.id = p.actor",
                        NPARAMS},
    /* z: the token's id. */
    [A_LOGOUT] = {"api_logout",
                  P ", t AS (UPDATE access_tokens t SET revoked_at = now() FROM p"
                    "  WHERE t.id = p.z::uuid AND t.revoked_at IS NULL RETURNING t.id)"
                    " SELECT 204, NULL::json, 'token ' || t.id FROM t",
                  NPARAMS},
    [A_REVOKE_ALL] = {"api_revoke_all",
                      P ", t AS (UPDATE access_tokens t SET revoked_at = now() FROM p"
                        "  WHERE t.person_id = p.actor AND t.revoked_at IS NULL RETURNING 1)"
                        " SELECT 204, NULL::json, 'person ' || p.actor FROM p",
                      NPARAMS},
    [A_ME_GET] = {"api_me_get",
                  P " SELECT 200, " ME_JSON ", NULL FROM p JOIN people pe ON pe.id = p.actor",
                  NPARAMS},
    /* A new email or phone is not set: it waits, pending, for the secret
     * sent to it (z: "<email secret hash> <email secret> <phone secret
     * hash> <phone secret> <ttl hours>"); an address another account holds
     * gets a notice instead of the secret, with the same answer. null
     * clears an address at once. Names and picture change at once. */
    [A_ME_PATCH] = {"api_me_patch",
        P ", cur AS (SELECT pe.* FROM people pe, p WHERE pe.id = p.actor),"
        " ne AS (SELECT p.b->>'email' AS a FROM p, cur WHERE p.b->>'email' IS NOT NULL"
        "  AND (cur.email IS DISTINCT FROM p.b->>'email' OR cur.email_verified_at IS NULL)),"
        " np AS (SELECT p.b->>'phone' AS a FROM p, cur WHERE p.b->>'phone' IS NOT NULL"
        "  AND (cur.phone IS DISTINCT FROM p.b->>'phone' OR cur.phone_verified_at IS NULL)),"
        /* a new request replaces the pending one */
        " xv AS (UPDATE verifications v SET expires_at = now() FROM p WHERE v.person_id = p.actor"
        "  AND v.used_at IS NULL AND v.expires_at > now()"
        "  AND ((v.purpose = 'email' AND EXISTS (SELECT 1 FROM ne))"
        "   OR (v.purpose = 'phone' AND EXISTS (SELECT 1 FROM np))) RETURNING 1),"
        " ve AS (INSERT INTO verifications (purpose, hash, person_id, address, expires_at)"
        "  SELECT 'email', decode(split_part(p.z, ' ', 1), 'hex'), p.actor, ne.a,"
        "   now() + make_interval(hours => split_part(p.z, ' ', 5)::int) FROM p, ne"
        "  UNION ALL SELECT 'phone', decode(split_part(p.z, ' ', 3), 'hex'), p.actor, np.a,"
        "   now() + make_interval(hours => split_part(p.z, ' ', 5)::int) FROM p, np"
        "  RETURNING *),"
        " vt AS (SELECT ve.*, EXISTS (SELECT 1 FROM people x WHERE x.id <> ve.person_id"
        "  AND CASE WHEN ve.purpose = 'phone' THEN x.phone ELSE x.email END = ve.address) AS taken"
        "  FROM ve),"
        " o AS (INSERT INTO outbox (channel, recipient, payload, verification_id)"
        "  SELECT CASE WHEN vt.purpose = 'phone' THEN 'sms' ELSE 'email' END, vt.address,"
        "   CASE WHEN vt.taken THEN jsonb_build_object('type', 'address_in_use',"
        "    'via', vt.purpose || '_change')"
        "   ELSE jsonb_build_object('type', 'verification', 'purpose', vt.purpose,"
        "    'token', split_part(p.z, ' ', CASE WHEN vt.purpose = 'phone' THEN 4 ELSE 2 END),"
        "    'expires_at', vt.expires_at) END,"
        "   CASE WHEN NOT vt.taken THEN vt.id END FROM vt, p RETURNING 1),"
        " pe AS (UPDATE people pe SET"
        "  " SET("first_name", "first_name") ", " SET("last_name", "last_name") ","
        "  " SET("display_name", "display_name") ", " SET("picture_url", "picture_url") ","
        "  email = CASE WHEN jsonb_typeof(p.b->'email') = 'null' THEN NULL ELSE pe.email END,"
        "  email_verified_at = CASE WHEN jsonb_typeof(p.b->'email') = 'null' THEN NULL"
        "   ELSE pe.email_verified_at END,"
        "  phone = CASE WHEN jsonb_typeof(p.b->'phone') = 'null' THEN NULL ELSE pe.phone END,"
        "  phone_verified_at = CASE WHEN jsonb_typeof(p.b->'phone') = 'null' THEN NULL"
        "   ELSE pe.phone_verified_at END"
        "  FROM p WHERE pe.id = p.actor RETURNING pe.*)"
        " SELECT 200, "
        ME_JSON_WITH("coalesce((SELECT address FROM ve WHERE purpose = 'email'), "
                     PENDING("email", "") ")",
                     "coalesce((SELECT address FROM ve WHERE purpose = 'phone'), "
                     PENDING("phone", "") ")")
        ", NULL FROM pe WHERE (SELECT count(*) FROM o) + (SELECT count(*) FROM xv) >= 0",
        NPARAMS},
    [A_WS_CREATE] = {"api_ws_create",
                     P ", w AS (INSERT INTO workspaces (name, created_by, allowed_domains,"
                       " retention_days, language, self_join) SELECT p.b->>'name', p.actor,"
                       " ARRAY(SELECT jsonb_array_elements_text(coalesce(p.b->'allowed_domains',"
                       " '[]'))), (p.b->>'retention_days')::int, coalesce(p.b->>'language', 'en'),"
                       " coalesce((p.b->>'self_join')::boolean, false) FROM p RETURNING *),"
                       " wm AS (INSERT INTO workspace_members (workspace_id, person_id, role)"
                       "  SELECT w.id, p.actor, 'owner' FROM w, p RETURNING role)"
                       " SELECT 201, " WS_JSON ", NULL FROM w, wm",
                     NPARAMS},
    [A_WS_LIST] = {"api_ws_list",
                   P " SELECT 200, " ITEMS(WS_JSON, "w.name, w.id", "w.id") ", NULL FROM p"
                     " LEFT JOIN workspace_members wm ON wm.person_id = p.actor"
                     "  AND wm.removed_at IS NULL"
                     " LEFT JOIN workspaces w ON w.id = wm.workspace_id GROUP BY p.actor",
                   NPARAMS},
    [A_WS_GET] = {"api_ws_get",
                  P " SELECT 200, " WS_JSON ", NULL FROM p JOIN workspaces w ON w.id = p.ws"
                    " JOIN workspace_members wm ON wm.workspace_id = w.id AND wm.person_id = p.actor",
                  NPARAMS},
    [A_WS_PATCH] = {"api_ws_patch",
                    P ", w AS (UPDATE workspaces w SET " SET("name", "name") ","
                      " allowed_domains = CASE WHEN p.b ? 'allowed_domains' THEN ARRAY(SELECT"
                      "  jsonb_array_elements_text(coalesce(p.b->'allowed_domains', '[]')))"
                      "  ELSE w.allowed_domains END,"
                      " retention_days = CASE WHEN p.b ? 'retention_days'"
                      "  THEN (p.b->>'retention_days')::int ELSE w.retention_days END,"
                      " edit_window_s = coalesce((p.b->>'edit_window_s')::int, w.edit_window_s),"
                      " erasure_content = coalesce(p.b->>'erasure_content', w.erasure_content),"
                      " member_grace_days = coalesce((p.b->>'member_grace_days')::int,"
                      "  w.member_grace_days),"
                      " language = coalesce(p.b->>'language', w.language),"
                      " self_join = coalesce((p.b->>'self_join')::boolean, w.self_join)"
                      " FROM p WHERE w.id = p.ws RETURNING w.*)"
                      " SELECT 200, " WS_JSON ", NULL FROM w, p JOIN workspace_members wm"
                      " ON wm.workspace_id = p.ws AND wm.person_id = p.actor",
                    NPARAMS},
    /* Everything of the workspace goes in this one statement: rooms,
     * messages, memberships, tokens scoped to it, invitations, outbox,
     * visits (cascades), and its avatars, which exist only for it. */
    [A_WS_DELETE] = {"api_ws_delete",
                     P ", av AS (SELECT a.person_id FROM avatars a, p WHERE a.workspace_id = p.ws),"
                       " m AS (DELETE FROM messages USING rooms r, p"
                       "  WHERE messages.room_id = r.id AND r.workspace_id = p.ws RETURNING 1),"
                       " d AS (DELETE FROM workspaces w USING p WHERE w.id = p.ws"
                       "  AND (SELECT count(*) FROM m) >= 0 RETURNING w.id),"
                       " dp AS (DELETE FROM people WHERE id IN (SELECT person_id FROM av)"
                       "  AND EXISTS (SELECT 1 FROM d) RETURNING 1)"
                       " SELECT 204, NULL::json, 'workspace ' || d.id FROM d"
                       "  WHERE (SELECT count(*) FROM dp) >= 0",
                     NPARAMS},
    /* y flags: c (may see contacts), m (manages people: removed ones too). */
    [A_PEOPLE_LIST] = {"api_people_list",
                       P " SELECT 200, " ITEMS(PERSON_JSON,
                                                "pe.last_name NULLS LAST, pe.first_name, pe.id", "pe.id") ","
                         " NULL FROM p LEFT JOIN workspace_members wm ON wm.workspace_id = p.ws"
                         "  AND (wm.removed_at IS NULL OR " FLAG("m") ")"
                         " LEFT JOIN people pe ON pe.id = wm.person_id"
                         " GROUP BY p.actor, p.y",
                       NPARAMS},
    [A_PERSON_GET] = {"api_person_get",
                      P " SELECT 200, " PERSON_JSON ", NULL FROM p"
                        " JOIN workspace_members wm ON wm.workspace_id = p.ws AND wm.person_id = p.id1"
                        "  AND (wm.removed_at IS NULL OR " FLAG("m") ")"
                        " JOIN people pe ON pe.id = wm.person_id",
                      NPARAMS},
    /* Org fields and role live on the membership, the only row this route
     * writes (names live on the account: PATCH /me). The target must be one
     * the actor manages (x), except that anyone with people.manage may edit
     * their own fields but not their role. */
    [A_PERSON_PATCH] = {"api_person_patch",
        P ", t AS (SELECT wm.* FROM workspace_members wm, p"
        "  WHERE wm.workspace_id = p.ws AND wm.person_id = p.id1 AND wm.role <> 'avatar'),"
        " chk AS (SELECT CASE"
        "  WHEN NOT " MANAGES("t.role") " AND (t.person_id <> p.actor OR p.b ? 'role') THEN 403"
        "  WHEN p.b->>'superior_id' IS NOT NULL"
        "   AND (p.b->>'superior_id')::uuid = t.person_id THEN 400"
        "  WHEN p.b->>'superior_id' IS NOT NULL"
        "   AND NOT " ACTIVE_MEMBER("(p.b->>'superior_id')::uuid") " THEN 400"
        "  ELSE 200 END AS st FROM t, p),"
        " wm AS (UPDATE workspace_members wm SET"
        "  " SET("title", "title") ", " SET("department", "department") ","
        "  superior_id = CASE WHEN p.b ? 'superior_id'"
        "   THEN (p.b->>'superior_id')::uuid ELSE wm.superior_id END,"
        "  " SET("role", "role")
        "  FROM p, chk WHERE chk.st = 200 AND wm.workspace_id = p.ws AND wm.person_id = p.id1"
        "  RETURNING wm.*),"
        " pe AS (SELECT pe.* FROM people pe, p WHERE pe.id = p.id1)"
        " SELECT chk.st, CASE chk.st"
        "  WHEN 200 THEN (SELECT " PERSON_JSON " FROM pe, wm)"
        "  WHEN 403 THEN " ERR("forbidden", "", "you may not change this person or this field")
        "  ELSE " ERR("bad_field", "superior_id",
                      "superior_id: must be another active person of this workspace") " END,"
        "  CASE WHEN chk.st = 200 AND p.b ? 'role' AND p.b->>'role' <> t.role"
        "   THEN 'member ' || p.ws || ' ' || p.id1 END"
        " FROM chk, t, p",
        NPARAMS},
    [A_PERSON_REMOVE] = {"api_person_remove",
        P ", t AS (SELECT wm.* FROM workspace_members wm, p"
        "  WHERE wm.workspace_id = p.ws AND wm.person_id = p.id1 AND wm.role <> 'avatar'),"
        " chk AS (SELECT CASE WHEN t.person_id = p.actor OR NOT " MANAGES("t.role")
        "  THEN 403 ELSE 204 END AS st FROM t, p),"
        " u AS (UPDATE workspace_members wm SET removed_at = coalesce(wm.removed_at, now()),"
        "  removed_by = CASE WHEN wm.removed_at IS NULL THEN p.actor ELSE wm.removed_by END"
        "  FROM p, chk WHERE chk.st = 204 AND wm.workspace_id = p.ws AND wm.person_id = p.id1"
        "  RETURNING 1)"
        " SELECT chk.st,"
        "  CASE WHEN chk.st = 403 THEN " ERR("forbidden", "", "you may not remove this person") " END,"
        "  CASE WHEN chk.st = 204 THEN 'member ' || p.ws || ' ' || p.id1 END"
        " FROM chk, p WHERE (SELECT count(*) FROM u) >= 0",
        NPARAMS},
    [A_PERSON_RESTORE] = {"api_person_restore",
        P ", t AS (SELECT wm.* FROM workspace_members wm, p"
        "  WHERE wm.workspace_id = p.ws AND wm.person_id = p.id1 AND wm.role <> 'avatar'),"
        " chk AS (SELECT CASE WHEN NOT " MANAGES("t.role") " THEN 403 ELSE 200 END AS st"
        "  FROM t, p),"
        " wm AS (UPDATE workspace_members wm SET removed_at = NULL, removed_by = NULL"
        "  FROM p, chk WHERE chk.st = 200 AND wm.workspace_id = p.ws AND wm.person_id = p.id1"
        "  RETURNING wm.*)"
        " SELECT chk.st, CASE WHEN chk.st = 200"
        "  THEN (SELECT " PERSON_JSON " FROM wm JOIN people pe ON pe.id = wm.person_id)"
        "  ELSE " ERR("forbidden", "", "you may not restore this person") " END, NULL"
        " FROM chk, p",
        NPARAMS},
    /* z: "<invitation hash hex> <invitation token> <ttl hours>". The token
     * goes only to the outbox (the mailer delivers it), never to the
     * inviter: an inviter holding it could sign in as an existing account. */
    [A_INVITE] = {"api_invite",
        P ", w AS (SELECT w.* FROM workspaces w, p WHERE w.id = p.ws),"
        " chk AS (SELECT CASE"
        "  WHEN p.b->>'email' IS NOT NULL AND cardinality(w.allowed_domains) > 0"
        "   AND NOT (split_part(p.b->>'email', '@', 2) = ANY(w.allowed_domains)) THEN 'domain'"
        "  WHEN EXISTS (SELECT 1 FROM people pe JOIN workspace_members m"
        "   ON m.person_id = pe.id AND m.workspace_id = p.ws AND m.removed_at IS NULL"
        "   WHERE (pe.email = p.b->>'email' AND pe.email_verified_at IS NOT NULL)"
        "   OR (pe.phone = p.b->>'phone' AND pe.phone_verified_at IS NOT NULL)) THEN 'member'"
        "  WHEN p.b->>'superior_id' IS NOT NULL"
        "   AND NOT " ACTIVE_MEMBER("(p.b->>'superior_id')::uuid") " THEN 'superior'"
        "  ELSE 'ok' END AS c FROM w, p),"
        " i AS (INSERT INTO invitations (workspace_id, hash, email, phone, role, profile,"
        "  invited_by, expires_at)"
        "  SELECT p.ws, decode(split_part(p.z, ' ', 1), 'hex'), p.b->>'email', p.b->>'phone',"
        "   coalesce(p.b->>'role', 'member'), p.b - 'email' - 'phone' - 'role', p.actor,"
        "   now() + make_interval(hours => split_part(p.z, ' ', 3)::int)"
        "  FROM p, chk WHERE chk.c = 'ok' RETURNING *),"
        " o AS (INSERT INTO outbox (workspace_id, invitation_id, channel, recipient, payload)"
        "  SELECT i.workspace_id, i.id, CASE WHEN i.email IS NOT NULL THEN 'email' ELSE 'sms' END,"
        "   coalesce(i.email, i.phone),"
        "   jsonb_build_object('type', 'invitation', 'invitation_id', i.id,"
        "    'workspace_id', i.workspace_id, 'workspace_name', w.name,"
        "    'invited_by', (SELECT coalesce(display_name,"
        "      nullif(trim(concat(first_name, ' ', last_name)), ''), email)"
        "     FROM people WHERE id = p.actor),"
        "    'first_name', i.profile->>'first_name', 'role', i.role,"
        "    'token', split_part(p.z, ' ', 2), 'expires_at', i.expires_at)"
        "  FROM i, w, p RETURNING 1)"
        " SELECT CASE chk.c WHEN 'ok' THEN 201 WHEN 'member' THEN 409 ELSE 400 END,"
        "  CASE chk.c WHEN 'ok' THEN (SELECT " INVITE_JSON " FROM i)"
        "  WHEN 'domain' THEN " ERR("domain_not_allowed", "email",
                                    "email: this workspace only admits its allowed domains")
        "  WHEN 'member' THEN " ERR("already_member", "", "this person is already in the workspace")
        "  ELSE " ERR("bad_field", "superior_id",
                      "superior_id: not an active person of this workspace") " END, NULL"
        " FROM chk WHERE (SELECT count(*) FROM o) >= 0",
        NPARAMS},
    /* With each invitation's delivery (its newest outbox item), so the
     * inviter sees whether the mailer took, sent or failed it; never the
     * secret, which only the mailer and the invitee hold. */
    [A_INVITE_LIST] = {"api_invite_list",
        P " SELECT 200, " ITEMS("(" INVITE_JSON "::jsonb || jsonb_build_object('delivery', od.d))",
                                "i.created_at DESC, i.id", "i.id") ", NULL"
        " FROM p LEFT JOIN invitations i ON i.workspace_id = p.ws"
        " LEFT JOIN LATERAL (SELECT json_build_object('state', CASE"
        "  WHEN o.sent_at IS NOT NULL THEN 'sent' WHEN o.failed_at IS NOT NULL THEN 'failed'"
        "  WHEN o.last_error IS NOT NULL THEN 'retrying'"
        "  WHEN o.leased_until > now() THEN 'leased' ELSE 'queued' END,"
        "  'channel', o.channel, 'attempts', o.attempts, 'sent_at', o.sent_at,"
        "  'failed_at', o.failed_at, 'error', o.last_error) AS d"
        "  FROM outbox o WHERE o.invitation_id = i.id AND o.workspace_id = p.ws"
        "  ORDER BY o.id DESC LIMIT 1) od ON true GROUP BY p.ws",
        NPARAMS},
    [A_INVITE_REVOKE] = {"api_invite_revoke",
        P ", t AS (SELECT i.* FROM invitations i, p WHERE i.id = p.id1 AND i.workspace_id = p.ws),"
        " u AS (UPDATE invitations i SET revoked_at = now() FROM t"
        "  WHERE i.id = t.id AND t.redeemed_at IS NULL AND t.revoked_at IS NULL RETURNING i.id),"
        " o AS (UPDATE outbox o SET payload = o.payload - 'token',"
        "  failed_at = coalesce(o.failed_at, CASE WHEN o.sent_at IS NULL THEN now() END),"
        "  last_error = coalesce(o.last_error, 'invitation revoked')"
        "  FROM u WHERE o.invitation_id = u.id RETURNING 1)"
        " SELECT CASE WHEN t.redeemed_at IS NOT NULL THEN 409 ELSE 204 END,"
        "  CASE WHEN t.redeemed_at IS NOT NULL THEN " ERR("invitation_redeemed", "",
                                                         "the invitation was already redeemed")
        "  END, NULL FROM t WHERE (SELECT count(*) FROM o) >= 0",
        NPARAMS},
    /* $1: the invitation's hash; $2: the hash of the bearer token sent with
     * the redeem, or NULL. Which account holds the invited address, its
     * password hash, and whether the token is a session of that account. */
    [A_REDEEM_LOOKUP] = {"api_redeem_lookup",
        "SELECT i.email, i.phone, i.profile->>'first_name', i.profile->>'last_name',"
        "  pe.id::text, pe.password_hash, EXISTS (SELECT 1 FROM access_tokens t"
        "   WHERE t.hash = $2 AND t.person_id = pe.id AND t.kind = 'session'"
        "   AND t.workspace_id IS NULL AND t.revoked_at IS NULL"
        "   AND (t.expires_at IS NULL OR t.expires_at > now()))"
        " FROM invitations i LEFT JOIN people pe ON NOT pe.is_avatar"
        "  AND (pe.email = i.email OR pe.phone = i.phone)"
        " WHERE i.hash = $1 AND i.redeemed_at IS NULL AND i.revoked_at IS NULL"
        "  AND i.expires_at > now() LIMIT 1",
        2},
    /* actor: the account that holds the invited address, proven by its
     * password or a session of it (no token is minted: the person already
     * has one or signs in), or NULL: a new account, which the secret
     * proves owns the address (y: its password hash or NULL; it gets a
     * session). z: "<invitation hash hex> <session hash hex or -> <ttl
     * hours>". FOR UPDATE makes it single-use under concurrency: a second
     * redeem waits, then finds it redeemed; an account that took the
     * address meanwhile makes it 409. */
    [A_REDEEM] =
        {"api_redeem",
         P ", inv AS (SELECT i.* FROM invitations i, p"
           "  WHERE i.hash = decode(split_part(p.z, ' ', 1), 'hex') AND i.redeemed_at IS NULL"
           "  AND i.revoked_at IS NULL AND i.expires_at > now() FOR UPDATE OF i),"
           " ex AS (SELECT pe.id FROM people pe, inv WHERE pe.email = inv.email"
           "  OR pe.phone = inv.phone),"
           " st AS (SELECT (p.actor IS NULL AND NOT EXISTS (SELECT 1 FROM ex))"
           "  OR (p.actor IS NOT NULL AND EXISTS (SELECT 1 FROM ex WHERE ex.id = p.actor)) AS ok"
           "  FROM p),"
           " cr AS (INSERT INTO people (email, phone, first_name, last_name, picture_url,"
           "  password_hash, email_verified_at, phone_verified_at)"
           "  SELECT inv.email, inv.phone, coalesce(p.b->>'first_name', inv.profile->>'first_name'),"
           "   coalesce(p.b->>'last_name', inv.profile->>'last_name'), inv.profile->>'picture_url',"
           "   p.y, CASE WHEN inv.email IS NOT NULL THEN now() END,"
           "   CASE WHEN inv.phone IS NOT NULL THEN now() END"
           "  FROM inv, p, st WHERE st.ok AND p.actor IS NULL RETURNING id),"
           /* the secret and the password together prove the address */
           " lk AS (UPDATE people pe SET email_verified_at = CASE WHEN pe.email = inv.email"
           "   THEN coalesce(pe.email_verified_at, now()) ELSE pe.email_verified_at END,"
           "  phone_verified_at = CASE WHEN pe.phone = inv.phone"
           "   THEN coalesce(pe.phone_verified_at, now()) ELSE pe.phone_verified_at END"
           "  FROM inv, p, st WHERE st.ok AND pe.id = p.actor RETURNING pe.id),"
           " who AS (SELECT id FROM cr UNION ALL SELECT id FROM lk),"
           " m AS (INSERT INTO workspace_members (workspace_id, person_id, role, title,"
           "  department, superior_id)"
           "  SELECT inv.workspace_id, who.id, inv.role, inv.profile->>'title',"
           "   inv.profile->>'department', (inv.profile->>'superior_id')::uuid FROM inv, who"
           "  ON CONFLICT (workspace_id, person_id) DO UPDATE SET removed_at = NULL,"
           "   removed_by = NULL WHERE workspace_members.removed_at IS NOT NULL RETURNING 1),"
           " u AS (UPDATE invitations i SET redeemed_at = now(), redeemed_by = who.id"
           "  FROM who, inv WHERE i.id = inv.id RETURNING 1),"
           " o AS (UPDATE outbox o SET payload = o.payload - 'token' FROM inv, st"
           "  WHERE st.ok AND o.invitation_id = inv.id RETURNING 1),"
           " v AS (INSERT INTO visits (workspace_id, person_id, kind, ip, os, browser)"
           "  SELECT inv.workspace_id, cr.id, 'login', p.ip::inet, " UA_OS ", " UA_BROWSER
           "  FROM inv, cr, p),"
           " t AS (INSERT INTO access_tokens (hash, person_id, kind, expires_at)"
           "  SELECT decode(split_part(p.z, ' ', 2), 'hex'), cr.id, 'session',"
           "   now() + make_interval(hours => split_part(p.z, ' ', 3)::int) FROM cr, p"
           "  RETURNING expires_at)"
           " SELECT CASE WHEN st.ok THEN 200 ELSE 409 END, CASE WHEN st.ok"
           "  THEN json_build_object('person_id', (SELECT id FROM who),"
           "   'workspace_id', inv.workspace_id, 'role', inv.role,"
           "   'expires_at', (SELECT expires_at FROM t), 'new_account', p.actor IS NULL)"
           "  ELSE " ERR("conflict", "", "the account of this address changed meanwhile: retry")
           "  END, NULL FROM inv, st, p"
           " WHERE (SELECT count(*) FROM m) + (SELECT count(*) FROM u) + (SELECT count(*) FROM o) >= 0",
         NPARAMS},
    /* z: "<how many> <lease seconds> [channel]". A lease hides an item from other
     * mailers for its time; an item not acknowledged by then is handed out
     * again (with attempts one higher, which names the new lease). */
    [A_OUTBOX_LEASE] =
        {"api_outbox_lease",
         P ", s AS (SELECT o.id FROM outbox o, p WHERE " OUTBOX_LIVE("o")
           "  AND (o.leased_until IS NULL OR o.leased_until < now())"
           "  AND (split_part(p.z, ' ', 3) = '' OR o.channel = split_part(p.z, ' ', 3))"
           "  ORDER BY o.id LIMIT (SELECT split_part(p.z, ' ', 1)::int FROM p)"
           "  FOR UPDATE OF o SKIP LOCKED),"
           " u AS (UPDATE outbox o SET leased_until = now()"
           "  + make_interval(secs => split_part(p.z, ' ', 2)::int),"
           "  attempts = o.attempts + 1 FROM s, p WHERE o.id = s.id RETURNING o.*)"
           " SELECT 200, " ITEMS(OUTBOX_JSON("u"), "u.id", "u.id") ", NULL"
           " FROM p LEFT JOIN u ON true GROUP BY p.z",
         NPARAMS},
    /* z: the outbox id. The item while it is still to deliver (its lease,
     * whether this mailer's or not); no row (404) once it is sent, failed
     * or withdrawn (its invitation revoked, used or expired, its secret
     * used or replaced). A mailer asks right before sending. */
    [A_OUTBOX_GET] = {"api_outbox_get",
                      P " SELECT 200, " OUTBOX_JSON("o") ", NULL FROM outbox o, p"
                        " WHERE o.id = p.z::bigint AND " OUTBOX_LIVE("o"),
                      NPARAMS},
    /* z: the outbox id. sent/failed end the item and erase its secret;
     * retry hands it out again at once, or after retry_after_s. With
     * attempt, only the lease of that number is acknowledged: a mailer
     * whose lease ran out and was taken by another gets 409 lease_lost and
     * changes nothing (the outer SELECT sees the row as it was). */
    [A_OUTBOX_ACK] = {"api_outbox_ack",
                      P ", u AS (UPDATE outbox o SET"
                        "  sent_at = CASE WHEN p.b->>'status' = 'sent' THEN now() END,"
                        "  failed_at = CASE WHEN p.b->>'status' = 'failed' THEN now() END,"
                        "  leased_until = CASE WHEN p.b->>'status' = 'retry'"
                        "   AND p.b ? 'retry_after_s' THEN now()"
                        "   + make_interval(secs => (p.b->>'retry_after_s')::int) END,"
                        "  last_error = p.b->>'error',"
                        "  payload = CASE WHEN p.b->>'status' = 'retry' THEN o.payload"
                        "   ELSE o.payload - 'token' END"
                        "  FROM p WHERE o.id = p.z::bigint AND o.sent_at IS NULL"
                        "  AND o.failed_at IS NULL"
                        "  AND (NOT p.b ? 'attempt' OR o.attempts = (p.b->>'attempt')::int)"
                        "  RETURNING o.id)"
                        " SELECT 204, NULL::json, NULL FROM u"
                        " UNION ALL SELECT 409, " ERR("lease_lost", "attempt",
                        "attempt: the item was leased again since; this lease no longer holds")
                        ", NULL FROM outbox o, p WHERE NOT EXISTS (SELECT 1 FROM u)"
                        "  AND o.id = p.z::bigint AND o.sent_at IS NULL AND o.failed_at IS NULL",
                      NPARAMS},
    /* The workspaces the actor may join on their own: open to self-service
     * join, listing the domain of the actor's proven email, and without a
     * membership of the actor (a removed one included: removal stands). */
    [A_JOINABLE] = {"api_joinable",
        P " SELECT 200, " ITEMS("json_build_object('id', w.id, 'name', w.name,"
                                " 'domain', split_part(pe.email, '@', 2))", "w.name, w.id", "w.id")
        ", NULL FROM p JOIN people pe ON pe.id = p.actor"
        " LEFT JOIN workspaces w ON " SELF_JOINS("w", "pe")
        " AND NOT EXISTS (SELECT 1 FROM workspace_members m WHERE m.workspace_id = w.id"
        "  AND m.person_id = pe.id)"
        " GROUP BY p.actor",
        NPARAMS},
    /* Joining one of them with the member role: 201 with the workspace,
     * 409 for a member; no row (404, like a workspace that does not exist)
     * for any workspace the actor may not join, a removed membership
     * included. ON CONFLICT: a concurrent join of the same person. */
    [A_WS_JOIN] = {"api_ws_join",
        P ", pe AS (SELECT pe.* FROM people pe, p WHERE pe.id = p.actor),"
        " w AS (SELECT w.* FROM workspaces w, p, pe WHERE w.id = p.ws AND " SELF_JOINS("w", "pe")
        "),"
        " ex AS (SELECT m.* FROM workspace_members m, w, p WHERE m.workspace_id = w.id"
        "  AND m.person_id = p.actor),"
        " wm AS (INSERT INTO workspace_members (workspace_id, person_id, role)"
        "  SELECT w.id, p.actor, 'member' FROM w, p WHERE NOT EXISTS (SELECT 1 FROM ex)"
        "  ON CONFLICT DO NOTHING RETURNING role)"
        " SELECT CASE WHEN EXISTS (SELECT 1 FROM wm) THEN 201 ELSE 409 END,"
        "  CASE WHEN EXISTS (SELECT 1 FROM wm) THEN (SELECT " WS_JSON " FROM wm)"
        "  ELSE " ERR("already_member", "", "you are already in this workspace") " END, NULL"
        " FROM w WHERE NOT EXISTS (SELECT 1 FROM ex WHERE ex.removed_at IS NOT NULL)",
        NPARAMS},
    [A_ROOM_CREATE] = {"api_room_create",
        P ", bad AS (SELECT count(*) AS n FROM p,"
        "  jsonb_array_elements_text(coalesce(p.b->'members', '[]')) e(v)"
        "  WHERE NOT " ACTIVE_MEMBER("e.v::uuid") "),"
        " r AS (INSERT INTO rooms (workspace_id, name, kind, visibility, broadcast_reads)"
        "  SELECT p.ws, p.b->>'name', coalesce(p.b->>'kind', 'chat'),"
        "   coalesce(p.b->>'visibility', 'workspace'),"
        "   coalesce((p.b->>'broadcast_reads')::boolean, true) FROM p, bad WHERE bad.n = 0"
        "  RETURNING *),"
        " m AS (INSERT INTO room_members (room_id, person_id)"
        "  SELECT r.id, e.v::uuid FROM r, p,"
        "   jsonb_array_elements_text(coalesce(p.b->'members', '[]')) e(v) RETURNING 1)"
        " SELECT CASE WHEN bad.n = 0 THEN 201 ELSE 400 END,"
        "  CASE WHEN bad.n = 0 THEN (SELECT " ROOM_JSON " FROM r)"
        "  ELSE " ERR("bad_field", "members",
                      "members: not all are active people of this workspace") " END, NULL"
        " FROM bad WHERE (SELECT count(*) FROM m) >= 0",
        NPARAMS},
    /* y flags: r (manages rooms: sees every room), A (archived ones too).
     * Others see the rooms they may join. */
    [A_ROOM_LIST] = {"api_room_list",
                     P " SELECT 200, " ITEMS(ROOM_JSON, "r.name, r.id", "r.id") ", NULL FROM p"
                       " LEFT JOIN rooms r ON r.workspace_id = p.ws"
                       "  AND (r.archived_at IS NULL OR " FLAG("A") ")"
                       "  AND (" FLAG("r") " OR r.visibility = 'workspace' OR EXISTS (SELECT 1"
                       "   FROM room_members rm WHERE rm.room_id = r.id AND rm.person_id = p.actor))"
                       " GROUP BY p.ws",
                     NPARAMS},
    [A_ROOM_GET] = {"api_room_get",
                    P " SELECT 200, " ROOM_JSON ", NULL FROM p JOIN rooms r ON r.id = p.id1"
                      "  AND r.workspace_id = p.ws"
                      "  AND (" FLAG("r") " OR r.visibility = 'workspace' OR EXISTS (SELECT 1"
                      "   FROM room_members rm WHERE rm.room_id = r.id AND rm.person_id = p.actor))",
                    NPARAMS},
    /* Made members-only or archived: its gateways re-check who is in it
     * ("access", access.h). old is the row before the update. */
    [A_ROOM_PATCH] = {"api_room_patch",
                      P ", old AS (SELECT r.visibility, r.archived_at FROM rooms r, p"
                        "  WHERE r.id = p.id1 AND r.workspace_id = p.ws),"
                        " r AS (UPDATE rooms r SET " SET("name", "name") ", " SET(
                          "visibility", "visibility") ","
                        "  broadcast_reads = CASE WHEN p.b ? 'broadcast_reads'"
                        "   THEN (p.b->>'broadcast_reads')::boolean ELSE r.broadcast_reads END,"
                        "  archived_at = CASE WHEN NOT p.b ? 'archived' THEN r.archived_at"
                        "   WHEN (p.b->>'archived')::boolean THEN coalesce(r.archived_at, now())"
                        "   ELSE NULL END"
                        "  FROM p WHERE r.id = p.id1 AND r.workspace_id = p.ws RETURNING r.*)"
                        " SELECT 200, " ROOM_JSON ","
                        "  CASE WHEN (old.archived_at IS NULL AND r.archived_at IS NOT NULL)"
                        "   OR (old.visibility = 'workspace' AND r.visibility = 'members')"
                        "  THEN 'access ' || r.id END FROM r, old",
                      NPARAMS},
    [A_ROOM_MEMBERS] = {"api_room_members",
                        P " SELECT 200, json_build_object('visibility', r.visibility, 'items',"
                          "  coalesce((SELECT json_agg(json_build_object('id', pe.id, 'display_name',"
                          "   pe.display_name, 'first_name', pe.first_name, 'last_name', pe.last_name,"
                          "   'avatar', pe.is_avatar) ORDER BY pe.last_name NULLS LAST, pe.id)"
                          "   FROM workspace_members wm JOIN people pe ON pe.id = wm.person_id"
                          "   WHERE wm.workspace_id = p.ws AND wm.removed_at IS NULL"
                          "   AND (r.visibility = 'workspace' OR EXISTS (SELECT 1 FROM room_members rm"
                          "    WHERE rm.room_id = r.id AND rm.person_id = pe.id))), '[]')), NULL"
                          " FROM p JOIN rooms r ON r.id = p.id1 AND r.workspace_id = p.ws"
                          "  AND (" FLAG("r") " OR r.visibility = 'workspace' OR EXISTS (SELECT 1"
                          "   FROM room_members rm WHERE rm.room_id = r.id AND rm.person_id = p.actor))",
                        NPARAMS},
    [A_ROOM_MEMBER_ADD] = {"api_room_member_add",
        P ", r AS (SELECT r.* FROM rooms r, p WHERE r.id = p.id1 AND r.workspace_id = p.ws),"
        " ok AS (SELECT " ACTIVE_MEMBER("(p.b->>'person_id')::uuid") " AS ok FROM p),"
        " i AS (INSERT INTO room_members (room_id, person_id)"
        "  SELECT r.id, (p.b->>'person_id')::uuid FROM r, p, ok WHERE ok.ok"
        "  ON CONFLICT DO NOTHING RETURNING 1),"
        /* adding someone back lifts a removal */
        " u AS (DELETE FROM room_bans b USING r, p, ok WHERE ok.ok AND b.room_id = r.id"
        "  AND b.person_id = (p.b->>'person_id')::uuid RETURNING 1)"
        " SELECT CASE WHEN ok.ok THEN 204 ELSE 400 END,"
        "  CASE WHEN NOT ok.ok THEN " ERR("bad_field", "person_id",
                                         "person_id: not an active person of this workspace")
        "  END, NULL FROM r, ok WHERE (SELECT count(*) FROM i) + (SELECT count(*) FROM u) >= 0",
        NPARAMS},
    [A_ROOM_MEMBER_DEL] = {"api_room_member_del",
                           P ", d AS (DELETE FROM room_members rm USING rooms r, p"
                             "  WHERE rm.room_id = p.id1 AND rm.person_id = p.id2 AND r.id = rm.room_id"
                             "  AND r.workspace_id = p.ws RETURNING 1)"
                             /* a members-only room's gateways take them out */
                             " SELECT 204, NULL::json, 'access ' || p.id1 FROM d, p",
                           NPARAMS},
    [A_AVATAR_CREATE] = {"api_avatar_create",
        P ", own AS (SELECT coalesce((p.b->>'owner_id')::uuid, p.actor) AS id FROM p),"
        " chk AS (SELECT " ACTIVE_MEMBER("own.id") " AS ok FROM p, own),"
        " pe AS (INSERT INTO people (display_name, picture_url, is_avatar)"
        "  SELECT p.b->>'name', p.b->>'picture_url', true FROM p, chk WHERE chk.ok RETURNING *),"
        " wm AS (INSERT INTO workspace_members (workspace_id, person_id, role)"
        "  SELECT p.ws, pe.id, 'avatar' FROM p, pe RETURNING *),"
        " av AS (INSERT INTO avatars (person_id, workspace_id, persona, owner_id, created_by)"
        "  SELECT pe.id, p.ws, coalesce(p.b->>'persona', ''), own.id, p.actor FROM pe, p, own"
        "  RETURNING *)"
        " SELECT CASE WHEN chk.ok THEN 201 ELSE 400 END,"
        "  CASE WHEN chk.ok THEN (SELECT " AVATAR_JSON " FROM pe, av, wm)"
        "  ELSE " ERR("bad_field", "owner_id", "owner_id: not an active person of this workspace")
        "  END, NULL FROM chk",
        NPARAMS},
    [A_AVATAR_LIST] = {"api_avatar_list",
                       P " SELECT 200, " ITEMS(AVATAR_JSON, "pe.display_name, pe.id", "av.person_id") ", NULL FROM p"
                         " LEFT JOIN avatars av ON av.workspace_id = p.ws"
                         " LEFT JOIN people pe ON pe.id = av.person_id"
                         " LEFT JOIN workspace_members wm ON wm.person_id = av.person_id"
                         "  AND wm.workspace_id = p.ws GROUP BY p.ws",
                       NPARAMS},
    [A_AVATAR_GET] = {"api_avatar_get",
                      P " SELECT 200, " AVATAR_JSON ", NULL FROM p"
                        " JOIN avatars av ON av.workspace_id = p.ws AND av.person_id = p.id1"
                        " JOIN people pe ON pe.id = av.person_id"
                        " JOIN workspace_members wm ON wm.person_id = av.person_id"
                        "  AND wm.workspace_id = p.ws",
                      NPARAMS},
    [A_AVATAR_PATCH] = {"api_avatar_patch",
        P ", a AS (SELECT av.person_id FROM avatars av, p"
        "  WHERE av.workspace_id = p.ws AND av.person_id = p.id1),"
        " chk AS (SELECT p.b->>'owner_id' IS NULL"
        "  OR " ACTIVE_MEMBER("(p.b->>'owner_id')::uuid") " AS ok FROM p),"
        " av AS (UPDATE avatars av SET " SET("persona", "persona") ","
        "  owner_id = CASE WHEN p.b ? 'owner_id' THEN (p.b->>'owner_id')::uuid ELSE av.owner_id END"
        "  FROM p, a, chk WHERE chk.ok AND av.person_id = a.person_id RETURNING av.*),"
        " pe AS (UPDATE people pe SET"
        "  display_name = CASE WHEN p.b ? 'name' THEN p.b->>'name' ELSE pe.display_name END,"
        "  " SET("picture_url", "picture_url")
        "  FROM p, a, chk WHERE chk.ok AND pe.id = a.person_id RETURNING pe.*)"
        " SELECT CASE WHEN chk.ok THEN 200 ELSE 400 END,"
        "  CASE WHEN chk.ok THEN (SELECT " AVATAR_JSON " FROM pe, av, workspace_members wm, p"
        "   WHERE wm.person_id = pe.id AND wm.workspace_id = p.ws)"
        "  ELSE " ERR("bad_field", "owner_id", "owner_id: not an active person of this workspace")
        "  END, NULL FROM a, chk",
        NPARAMS},
    [A_AVATAR_DELETE] = {"api_avatar_delete",
                         P ", a AS (SELECT av.* FROM avatars av, p WHERE av.workspace_id = p.ws"
                           "  AND av.person_id = p.id1),"
                           " u AS (UPDATE workspace_members wm SET removed_at = coalesce(wm.removed_at,"
                           "  now()), removed_by = coalesce(wm.removed_by, p.actor) FROM a, p"
                           "  WHERE wm.person_id = a.person_id AND wm.workspace_id = p.ws RETURNING 1),"
                           " t AS (UPDATE access_tokens t SET revoked_at = now() FROM a"
                           "  WHERE t.person_id = a.person_id AND t.revoked_at IS NULL RETURNING 1)"
                           " SELECT 204, NULL::json, 'member ' || p.ws || ' ' || a.person_id FROM a, p"
                           " WHERE (SELECT count(*) FROM u) + (SELECT count(*) FROM t) >= 0",
                         NPARAMS},
    /* z: the token's hash (hex). */
    [A_AVATAR_TOKEN_CREATE] = {"api_avatar_token_create",
        P ", a AS (SELECT av.* FROM avatars av JOIN workspace_members wm"
        "  ON wm.person_id = av.person_id AND wm.workspace_id = av.workspace_id"
        "  AND wm.removed_at IS NULL, p WHERE av.person_id = p.id1 AND av.workspace_id = p.ws),"
        " bad AS (SELECT count(*) AS n FROM p,"
        "  jsonb_array_elements_text(coalesce(p.b->'rooms', '[]')) e(v)"
        "  WHERE NOT EXISTS (SELECT 1 FROM rooms r WHERE r.id = e.v::uuid"
        "   AND r.workspace_id = p.ws)),"
        " t AS (INSERT INTO access_tokens (hash, person_id, workspace_id, kind, expires_at,"
        "  room_ids)"
        "  SELECT decode(p.z, 'hex'), a.person_id, p.ws, 'api',"
        "   CASE WHEN p.b ? 'expires_in_days'"
        "    THEN now() + make_interval(days => (p.b->>'expires_in_days')::int) END,"
        "   CASE WHEN p.b ? 'rooms' THEN ARRAY(SELECT e.v::uuid"
        "    FROM jsonb_array_elements_text(p.b->'rooms') e(v)) END"
        "  FROM a, p, bad WHERE bad.n = 0 RETURNING *)"
        " SELECT CASE WHEN bad.n = 0 THEN 201 ELSE 400 END,"
        "  CASE WHEN bad.n = 0 THEN (SELECT " TOKEN_JSON " FROM t)"
        "  ELSE " ERR("bad_field", "rooms", "rooms: not all are rooms of this workspace") " END,"
        "  NULL FROM a, bad",
        NPARAMS},
    [A_AVATAR_TOKENS] = {"api_avatar_tokens",
                         P " SELECT 200, " ITEMS(TOKEN_JSON, "t.created_at DESC, t.id", "t.id") ", NULL"
                           " FROM p JOIN avatars av ON av.person_id = p.id1 AND av.workspace_id = p.ws"
                           " LEFT JOIN access_tokens t ON t.person_id = av.person_id"
                           " GROUP BY av.person_id",
                         NPARAMS},
    [A_AVATAR_TOKEN_REVOKE] = {"api_avatar_token_revoke",
                               P ", t AS (UPDATE access_tokens t SET revoked_at = coalesce(t.revoked_at,"
                                 "  now()) FROM avatars av, p WHERE t.id = p.id2 AND t.person_id = p.id1"
                                 "  AND av.person_id = t.person_id AND av.workspace_id = p.ws"
                                 "  RETURNING t.id)"
                                 " SELECT 204, NULL::json, 'token ' || t.id FROM t",
                               NPARAMS},
    /* z: "<limit> <before id or empty>". */
    [A_VISITS] = {"api_visits",
                  P " SELECT 200, " ITEMS("json_build_object('id', v.id, 'person_id', v.person_id,"
                                          " 'kind', v.kind, 'at', v.at, 'ip', host(v.ip),"
                                          " 'ip_anonymised', v.ip_anonymised, 'os', v.os,"
                                          " 'browser', v.browser)",
                                          "v.id DESC", "v.id") ", NULL"
                    " FROM p LEFT JOIN LATERAL (SELECT v.* FROM visits v WHERE v.workspace_id = p.ws"
                    "  AND (split_part(p.z, ' ', 2) = '' OR v.id < split_part(p.z, ' ', 2)::bigint)"
                    "  ORDER BY v.id DESC LIMIT split_part(p.z, ' ', 1)::int) v ON true GROUP BY p.ws",
                  NPARAMS},
    /* The host part zeroed: /24 of IPv4, /48 of IPv6 (what Google Analytics
     * and Matomo keep), so a log still tells networks apart. */
    [A_ANONYMISE] = {"api_anonymise",
                     /* Pending proofs (with sign-ups' password hashes) are
                      * kept a day past their end, then go with their items. */
                     "WITH d AS (DELETE FROM verifications WHERE expires_at < now() - interval"
                     "  '1 day' OR used_at < now() - interval '1 day')"
                     " UPDATE visits SET ip = CASE WHEN ip IS NULL THEN NULL"
                     "  WHEN family(ip) = 4 THEN set_masklen(network(set_masklen(ip, 24)), 32)"
                     "  ELSE set_masklen(network(set_masklen(ip, 48)), 128) END,"
                     " ip_anonymised = true"
                     " WHERE NOT ip_anonymised AND at < now() - make_interval(days => $1::int)",
                     1},
    /* Guidelines: id1 NULL for the workspace's, else a room of it. */
    [A_GL_GET] = {"api_gl_get",
        P " SELECT 200, json_build_object('rules', coalesce(g.rules->'rules', '[]'),"
        "  'version', coalesce(g.version, 0), 'updated_at', g.updated_at), NULL"
        " FROM p LEFT JOIN guidelines g ON g.workspace_id = p.ws"
        "  AND g.room_id IS NOT DISTINCT FROM p.id1"
        " WHERE p.id1 IS NULL OR EXISTS (SELECT 1 FROM rooms r WHERE r.id = p.id1"
        "  AND r.workspace_id = p.ws AND " ROOM_SEEN("r") ")",
        NPARAMS},
    /* The body was compiled by the gateway before this runs. */
    [A_GL_PUT] = {"api_gl_put",
        P ", ok AS (SELECT p.id1 IS NULL OR EXISTS (SELECT 1 FROM rooms r WHERE r.id = p.id1"
        "  AND r.workspace_id = p.ws AND " ROOM_SEEN("r") ") AS ok FROM p),"
        " old AS (SELECT g.rules FROM guidelines g, p WHERE g.workspace_id = p.ws"
        "  AND g.room_id IS NOT DISTINCT FROM p.id1),"
        " up AS (INSERT INTO guidelines (workspace_id, room_id, rules, updated_by)"
        "  SELECT p.ws, p.id1, p.b, p.actor FROM p, ok WHERE ok.ok"
        "  ON CONFLICT (workspace_id, coalesce(room_id, '00000000-0000-0000-0000-000000000000'))"
        "  DO UPDATE SET rules = EXCLUDED.rules, version = guidelines.version + 1,"
        "   updated_by = EXCLUDED.updated_by, updated_at = now() RETURNING *),"
        " au AS (INSERT INTO guideline_audit (workspace_id, room_id, actor_id, before, after)"
        "  SELECT up.workspace_id, up.room_id, p.actor, (SELECT rules FROM old), up.rules"
        "  FROM up, p RETURNING 1)"
        " SELECT 200, json_build_object('rules', up.rules->'rules', 'version', up.version,"
        "  'updated_at', up.updated_at), 'guidelines ' || p.ws FROM up, p"
        " WHERE (SELECT count(*) FROM au) >= 0",
        NPARAMS},
    /* The rules a room's messages pass: the workspace's and the room's. */
    [A_GL_EFFECTIVE] = {"api_gl_effective",
        P " SELECT (SELECT g.rules::text FROM guidelines g WHERE g.workspace_id = p.ws"
        "  AND g.room_id IS NULL), (SELECT g.rules::text FROM guidelines g"
        "  WHERE g.workspace_id = p.ws AND g.room_id = p.id1)"
        " FROM p WHERE p.id1 IS NULL OR EXISTS (SELECT 1 FROM rooms r WHERE r.id = p.id1"
        "  AND r.workspace_id = p.ws AND " ROOM_SEEN("r") ")",
        NPARAMS},
    [A_GL_AUDIT] = {"api_gl_audit",
        P " SELECT 200, " ITEMS("json_build_object('id', x.id, 'room_id', x.room_id,"
                               " 'actor_id', x.actor_id, 'at', x.at, 'before', x.before,"
                               " 'after', x.after)", "x.id DESC", "x.id") ", NULL"
        " FROM p LEFT JOIN LATERAL (SELECT * FROM guideline_audit a WHERE a.workspace_id = p.ws"
        "  ORDER BY a.id DESC LIMIT 100) x ON true GROUP BY p.ws",
        NPARAMS},
};
// clang-format on
const int http_api_nstmts = A__COUNT;

/* ---- routes -------------------------------------------------------------- */

enum auth_kind {
    AU_NONE,      /* public */
    AU_TOKEN,     /* any valid token */
    AU_WORKSPACE, /* a token of an active member of the path's workspace */
    AU_OPERATOR,  /* the operator token (outbox) */
    AU_METRICS,   /* the metrics token (/metrics) */
};

struct route;
typedef void (*route_fn)(struct http_req *r);

struct route {
    enum http_method method;     /* method */
    const char *path;            /* OpenAPI syntax: {ws} {id} {id2} are UUIDs, {n} an integer */
    enum auth_kind auth;         /* who may call */
    int perm;                    /* enum perm, or -1 */
    const struct jv_field *body; /* accepted body fields; NULL: no body */
    int stmt;                    /* statement run by run_route, or -1 */
    route_fn fn;                 /* custom handler, or NULL: run_route */
};

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
static void r_signup(struct http_req *r);
static void r_login(struct http_req *r);
static void r_redeem(struct http_req *r);
static void r_verify(struct http_req *r);
static void r_resend(struct http_req *r);
static void r_me_patch(struct http_req *r);
static void r_ws_create(struct http_req *r);
static void r_person_patch(struct http_req *r);
static void r_invite(struct http_req *r);
static void r_outbox(struct http_req *r);
static void r_ack(struct http_req *r);
static void r_ws_patch(struct http_req *r);
static void r_avatar_token(struct http_req *r);
static void r_logout(struct http_req *r);
static void r_visits(struct http_req *r);
static void r_gl_put(struct http_req *r);
static void r_gl_dry_run(struct http_req *r);
static void r_eval(struct http_req *r);
static void r_mod_log(struct http_req *r);

/* Moderation's statements follow the API's in the prepared set. */
#define MOD(m) (A__COUNT + (m))
/* ... and rights.c's after moderation's. */
#define RIGHTS(s) (A__COUNT + M__COUNT + (s))
#define WS "/api/v1/workspaces/{ws}"
static const struct route routes[] = {
    {HM_GET, "/healthz", AU_NONE, -1, NULL, -1, r_health},
    {HM_GET, "/readyz", AU_NONE, -1, NULL, -1, r_ready},
    {HM_GET, "/metrics", AU_METRICS, -1, NULL, -1, r_metrics},
    {HM_POST, "/api/v1/auth/signup", AU_NONE, -1, f_signup, -1, r_signup},
    {HM_POST, "/api/v1/auth/login", AU_NONE, -1, f_login, -1, r_login},
    {HM_POST, "/api/v1/auth/verify", AU_NONE, -1, f_verify, -1, r_verify},
    {HM_POST, "/api/v1/auth/verify/resend", AU_NONE, -1, f_resend, -1, r_resend},
    {HM_POST, "/api/v1/auth/logout", AU_TOKEN, -1, NULL, A_LOGOUT, r_logout},
    {HM_POST, "/api/v1/auth/revoke-all", AU_TOKEN, -1, NULL, A_REVOKE_ALL, NULL},
    {HM_GET, "/api/v1/me", AU_TOKEN, -1, NULL, A_ME_GET, NULL},
    {HM_PATCH, "/api/v1/me", AU_TOKEN, -1, f_me, A_ME_PATCH, r_me_patch},
    {HM_DELETE, "/api/v1/me", AU_TOKEN, -1, NULL, RIGHTS(R_ERASE_ME), rights_erase_me},
    {HM_GET, "/api/v1/me/export", AU_TOKEN, -1, NULL, -1, rights_export_me},
    {HM_POST, "/api/v1/invitations/redeem", AU_NONE, -1, f_redeem, -1, r_redeem},
    {HM_GET, "/api/v1/outbox", AU_OPERATOR, -1, NULL, A_OUTBOX_LEASE, r_outbox},
    {HM_GET, "/api/v1/outbox/{n}", AU_OPERATOR, -1, NULL, A_OUTBOX_GET, NULL},
    {HM_POST, "/api/v1/outbox/{n}/ack", AU_OPERATOR, -1, f_ack, A_OUTBOX_ACK, r_ack},
    {HM_GET, "/api/v1/joinable", AU_TOKEN, -1, NULL, A_JOINABLE, NULL},
    {HM_POST, "/api/v1/workspaces", AU_TOKEN, -1, f_ws_create, A_WS_CREATE, r_ws_create},
    {HM_GET, "/api/v1/workspaces", AU_TOKEN, -1, NULL, A_WS_LIST, NULL},
    {HM_GET, WS, AU_WORKSPACE, P_WORKSPACE_READ, NULL, A_WS_GET, NULL},
    {HM_PATCH, WS, AU_WORKSPACE, P_WORKSPACE_UPDATE, f_ws_patch, A_WS_PATCH, r_ws_patch},
    {HM_DELETE, WS, AU_WORKSPACE, P_WORKSPACE_DELETE, NULL, A_WS_DELETE, NULL},
    /* Not a member yet: the statement decides (404 unless it may join). */
    {HM_POST, WS "/join", AU_TOKEN, -1, NULL, A_WS_JOIN, NULL},
    {HM_GET, WS "/people", AU_WORKSPACE, P_PEOPLE_LIST, NULL, A_PEOPLE_LIST, NULL},
    {HM_GET, WS "/people/{id}", AU_WORKSPACE, P_PEOPLE_LIST, NULL, A_PERSON_GET, NULL},
    {HM_PATCH, WS "/people/{id}", AU_WORKSPACE, P_PEOPLE_MANAGE, f_person, A_PERSON_PATCH,
     r_person_patch},
    {HM_DELETE, WS "/people/{id}", AU_WORKSPACE, P_PEOPLE_MANAGE, NULL, A_PERSON_REMOVE, NULL},
    {HM_POST, WS "/people/{id}/restore", AU_WORKSPACE, P_PEOPLE_MANAGE, NULL, A_PERSON_RESTORE,
     NULL},
    {HM_POST, WS "/people/{id}/erase", AU_WORKSPACE, P_PEOPLE_MANAGE, f_erase,
     RIGHTS(R_ERASE_MEMBER), NULL},
    {HM_GET, WS "/people/{id}/export", AU_WORKSPACE, P_PEOPLE_MANAGE, NULL, -1,
     rights_export_member},
    {HM_POST, WS "/invitations", AU_WORKSPACE, P_PEOPLE_INVITE, f_invite, A_INVITE, r_invite},
    {HM_GET, WS "/invitations", AU_WORKSPACE, P_PEOPLE_INVITE, NULL, A_INVITE_LIST, NULL},
    {HM_DELETE, WS "/invitations/{id}", AU_WORKSPACE, P_PEOPLE_INVITE, NULL, A_INVITE_REVOKE, NULL},
    {HM_POST, WS "/rooms", AU_WORKSPACE, P_ROOMS_MANAGE, f_room_create, A_ROOM_CREATE, NULL},
    {HM_GET, WS "/rooms", AU_WORKSPACE, P_ROOMS_LIST, NULL, A_ROOM_LIST, NULL},
    {HM_GET, WS "/rooms/{id}", AU_WORKSPACE, P_ROOMS_LIST, NULL, A_ROOM_GET, NULL},
    {HM_PATCH, WS "/rooms/{id}", AU_WORKSPACE, P_ROOMS_MANAGE, f_room_patch, A_ROOM_PATCH, NULL},
    {HM_GET, WS "/rooms/{id}/members", AU_WORKSPACE, P_ROOMS_LIST, NULL, A_ROOM_MEMBERS, NULL},
    {HM_POST, WS "/rooms/{id}/members", AU_WORKSPACE, P_ROOMS_MANAGE, f_room_member,
     A_ROOM_MEMBER_ADD, NULL},
    {HM_DELETE, WS "/rooms/{id}/members/{id2}", AU_WORKSPACE, P_ROOMS_MANAGE, NULL,
     A_ROOM_MEMBER_DEL, NULL},
    {HM_POST, WS "/avatars", AU_WORKSPACE, P_AVATARS_MANAGE, f_avatar_create, A_AVATAR_CREATE,
     NULL},
    {HM_GET, WS "/avatars", AU_WORKSPACE, P_AVATARS_LIST, NULL, A_AVATAR_LIST, NULL},
    {HM_GET, WS "/avatars/{id}", AU_WORKSPACE, P_AVATARS_LIST, NULL, A_AVATAR_GET, NULL},
    {HM_PATCH, WS "/avatars/{id}", AU_WORKSPACE, P_AVATARS_MANAGE, f_avatar_patch, A_AVATAR_PATCH,
     NULL},
    {HM_DELETE, WS "/avatars/{id}", AU_WORKSPACE, P_AVATARS_MANAGE, NULL, A_AVATAR_DELETE, NULL},
    {HM_POST, WS "/avatars/{id}/tokens", AU_WORKSPACE, P_AVATARS_MANAGE, f_avatar_token,
     A_AVATAR_TOKEN_CREATE, r_avatar_token},
    {HM_GET, WS "/avatars/{id}/tokens", AU_WORKSPACE, P_AVATARS_MANAGE, NULL, A_AVATAR_TOKENS,
     NULL},
    {HM_DELETE, WS "/avatars/{id}/tokens/{id2}", AU_WORKSPACE, P_AVATARS_MANAGE, NULL,
     A_AVATAR_TOKEN_REVOKE, NULL},
    {HM_GET, WS "/visits", AU_WORKSPACE, P_VISITS_READ, NULL, A_VISITS, r_visits},
    {HM_GET, WS "/guidelines", AU_WORKSPACE, P_GUIDELINES_READ, NULL, A_GL_GET, NULL},
    {HM_PUT, WS "/guidelines", AU_WORKSPACE, P_GUIDELINES_MANAGE, f_raw, A_GL_PUT, r_gl_put},
    {HM_GET, WS "/rooms/{id}/guidelines", AU_WORKSPACE, P_GUIDELINES_READ, NULL, A_GL_GET, NULL},
    {HM_PUT, WS "/rooms/{id}/guidelines", AU_WORKSPACE, P_GUIDELINES_MANAGE, f_raw, A_GL_PUT,
     r_gl_put},
    {HM_POST, WS "/guidelines/dry-run", AU_WORKSPACE, P_GUIDELINES_MANAGE, f_dry_run, -1,
     r_gl_dry_run},
    {HM_GET, WS "/guidelines/audit", AU_WORKSPACE, P_GUIDELINES_MANAGE, NULL, A_GL_AUDIT, NULL},
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
    {HM_GET, WS "/moderation/log", AU_WORKSPACE, P_MODERATE, NULL, MOD(M_LOG), r_mod_log},
    {HM_GET, WS "/evaluation", AU_WORKSPACE, P_EVALUATE, NULL, MOD(M_EVAL), r_eval},
    {HM_GET, WS "/rooms/{id}/evaluation", AU_WORKSPACE, P_EVALUATE, NULL, MOD(M_EVAL), r_eval},
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

/* ---- answering ----------------------------------------------------------- */

static void respond_text(struct http_req *r, int status, const char *s, size_t len)
{
    char *b = len ? malloc(len) : NULL;
    if (len && !b) {
        http_error(r, 500, "internal", "out of memory", NULL);
        return;
    }
    if (b) memcpy(b, s, len);
    http_respond(r, status, b, len);
}

/* Maps a failed statement to an answer: constraint violations are the
 * client's (a conflict or a bad value), anything else is ours. */
static void respond_db_error(struct http_req *r, PGresult *res, int err)
{
    if (err == -ENOBUFS || err == -EAGAIN || err == -ETIMEDOUT) {
        r->retry_after = 1;
        http_error(r, 503, "unavailable", "storage unavailable, retry later", NULL);
        return;
    }
    const char *st = res ? db_sqlstate(res) : "";
    if (!strcmp(st, "23505")) {
        http_error(r, 409, "conflict", "already exists (email or phone in use?)", NULL);
    } else if (!strncmp(st, "23", 2) || !strncmp(st, "22", 2)) {
        http_error(r, 400, "bad_request", "a value is not acceptable", NULL);
    } else {
        log_error("api statement failed", "path=%s sqlstate=%s error=\"%s\"", r->path, st,
                  res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : "");
        http_error(r, 500, "internal", "internal error", NULL);
    }
}

/* Splices "token":"<text>" into the front of a JSON object body. */
static char *with_token(const char *json, size_t len, const char *token, size_t *out_len)
{
    size_t tl = strlen(token);
    char *b = malloc(len + tl + 16);
    if (!b || len < 2 || json[0] != '{') {
        free(b);
        return NULL;
    }
    int n = snprintf(b, len + tl + 16, "{\"token\":\"%s\"%s", token, json[1] == '}' ? "" : ",");
    memcpy(b + n, json + 1, len - 1);
    *out_len = (size_t)n + len - 1;
    return b;
}

/* A statement's standard answer: (status, body, control event). The event is
 * published even when the client has gone: the change is committed. */
static void on_stmt(void *ud, PGresult *res, int err)
{
    struct http_req *r = ud;
    struct app *a = r->app;
    bool ok = !err && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (ok && PQntuples(res) > 0) ctl_effects(a, res);
    if (!http_alive(r)) return;
    if (!ok) {
        respond_db_error(r, err ? NULL : res, err);
        return;
    }
    if (PQntuples(res) == 0) {
        if (r->not_found_code)
            http_error(r, 404, r->not_found_code,
                       strcmp(r->not_found_code, "verification_invalid")
                           ? "invitation not found, expired or already used"
                           : "verification secret not found, expired or already used",
                       NULL);
        else
            http_error(r, 404, "not_found", "no such object", NULL);
        return;
    }
    int status = atoi(PQgetvalue(res, 0, 0));
    const char *body = PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1);
    size_t len = body ? (size_t)PQgetlength(res, 0, 1) : 0;
    /* A freshly made secret is shown once, here, and stored only hashed. */
    if (body && status < 300 && r->scratch[0] == 'T') {
        size_t n;
        char *b = with_token(body, len, r->scratch + 1, &n);
        sodium_memzero(r->scratch, sizeof r->scratch);
        if (!b) {
            http_error(r, 500, "internal", "out of memory", NULL);
            return;
        }
        http_respond(r, status, b, n);
        return;
    }
    if (status >= 300) r->type = NULL; /* errors are JSON */
    respond_text(r, status, body, len);
}

static void hex(const unsigned char *in, size_t n, char *out)
{
    sodium_bin2hex(out, n * 2 + 1, in, n);
}

/* Runs a statement with the standard parameters; z is route-specific. */
void http_api_run(struct http_req *r, int stmt, const char *z)
{
    struct app *a = r->app;
    char x[64] = "", y[16] = "", ua[64];
    int n = 0;
    for (int t = 0; t < ROLE__COUNT; t++)
        if (perm_manages(r->role, (enum role)t))
            n += snprintf(x + n, sizeof x - (size_t)n, "%s%s", n ? "," : "", perm_role_name(t));
    int k = 0;
    if (perm_allows(r->role, P_PEOPLE_CONTACTS)) y[k++] = 'c';
    if (perm_allows(r->role, P_PEOPLE_MANAGE)) y[k++] = 'm';
    if (perm_allows(r->role, P_ROOMS_MANAGE)) y[k++] = 'r';
    const char *arch = http_arg(r, "archived");
    if (arch && !strcmp(arch, "true")) y[k++] = 'A';
    snprintf(ua, sizeof ua, "%s|%s", r->os, r->browser);
    if (perm_allows(r->role, P_MODERATE)) y[k++] = 'M';
    /* Path parameters in order: {ws} -> ws, {id} -> id1, {id2} -> id2, {n} -> z. */
    const char *ws = NULL, *id[2] = {NULL, NULL};
    int nid = 0, i = 0;
    for (const char *q = ((const struct route *)r->route)->path; (q = strchr(q, '{')); q++, i++) {
        if (!strncmp(q, "{ws}", 4))
            ws = r->ids[i];
        else if (!strncmp(q, "{n}", 3))
            z = r->ids[i];
        else if (nid < 2)
            id[nid++] = r->ids[i];
    }
    char *body = r->json ? cJSON_PrintUnformatted(r->json) : NULL;
    const char *v[NPARAMS] = {
        r->person[0] ? r->person : NULL, ws, id[0], id[1], body ? body : "{}", x, y, z, r->ip, ua,
    };
    int rc = db_query(a->db, -1, ST__COUNT + stmt, NPARAMS, v, NULL, NULL, on_stmt, r);
    free(body);
    if (rc) {
        respond_db_error(r, NULL, rc);
        return;
    }
    r->busy = true;
}

static void run_stmt(struct http_req *r, int stmt, const char *z)
{
    http_api_run(r, stmt, z);
}

static void run_route(struct http_req *r)
{
    run_stmt(r, ((const struct route *)r->route)->stmt, NULL);
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
        run_route(r);
}

static void on_auth(void *ud, PGresult *res, int err)
{
    struct http_req *r = ud;
    if (!http_alive(r)) return;
    if (err || PQresultStatus(res) != PGRES_TUPLES_OK) {
        respond_db_error(r, err ? NULL : res, err);
        return;
    }
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
        r->json = jv_parse(r->body ? r->body : "", r->body_len, rt->body, false, &e);
        if (!r->json) {
            http_error(r, 400, e.code, e.message, e.field);
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
    int rc = db_query(a->db, -1, ST__COUNT + A_AUTH, 2, v, len, fmt, on_auth, r);
    if (rc) {
        respond_db_error(r, NULL, rc);
        return;
    }
    r->busy = true;
}

/* ---- operational --------------------------------------------------------- */

static void r_health(struct http_req *r)
{
    static const char ok[] = "{\"status\":\"ok\"}";
    respond_text(r, 200, ok, sizeof ok - 1);
}

static void r_ready(struct http_req *r)
{
    struct app *a = r->app;
    bool ready = db_ready(a->db) && bus_up(a->bus) && a->schema_ok && !a->draining;
    static const char yes[] = "{\"status\":\"ready\"}", no[] = "{\"status\":\"not ready\"}";
    if (ready)
        respond_text(r, 200, yes, sizeof yes - 1);
    else
        respond_text(r, 503, no, sizeof no - 1);
}

static void r_metrics(struct http_req *r)
{
    size_t n;
    char *text = stats_render(r->app, &n);
    if (!text) {
        http_error(r, 500, "internal", "out of memory", NULL);
        return;
    }
    r->type = "text/plain; version=0.0.4; charset=utf-8";
    http_respond(r, 200, text, n);
}

/* ---- tokens minted by a route -------------------------------------------- */

/* A new token: its text goes in r->scratch ("T<text>") to be spliced into the
 * answer, its hash (hex) into zhex. */
static void mint(struct http_req *r, char zhex[AUTH_HASH_BYTES * 2 + 1])
{
    char text[AUTH_TOKEN_CHARS + 1];
    unsigned char h[AUTH_HASH_BYTES];
    auth_token_new(text, h);
    snprintf(r->scratch, sizeof r->scratch, "T%s", text);
    hex(h, sizeof h, zhex);
    sodium_memzero(text, sizeof text);
}

static void r_logout(struct http_req *r)
{
    run_stmt(r, A_LOGOUT, r->token_id);
}

static void r_avatar_token(struct http_req *r)
{
    char z[AUTH_HASH_BYTES * 2 + 1];
    mint(r, z);
    run_stmt(r, A_AVATAR_TOKEN_CREATE, z);
}

static void r_invite(struct http_req *r)
{
    cJSON *o = r->json;
    bool email = cJSON_GetObjectItemCaseSensitive(o, "email") != NULL;
    bool phone = cJSON_GetObjectItemCaseSensitive(o, "phone") != NULL;
    if (email == phone) {
        http_error(r, 400, "missing_field", "exactly one of email and phone is required",
                   email ? "phone" : "email");
        return;
    }
    cJSON *role = cJSON_GetObjectItemCaseSensitive(o, "role");
    enum role want =
        role ? perm_role_parse(role->valuestring, strlen(role->valuestring)) : ROLE_MEMBER;
    if (!perm_manages(r->role, want)) {
        http_error(r, 403, "forbidden", "you may not give this role", "role");
        return;
    }
    /* The secret goes only to the outbox: not spliced into the answer. */
    char text[AUTH_TOKEN_CHARS + 1], hx[AUTH_HASH_BYTES * 2 + 1], z[160];
    unsigned char h[AUTH_HASH_BYTES];
    auth_token_new(text, h);
    hex(h, sizeof h, hx);
    snprintf(z, sizeof z, "%s %s %u", hx, text, r->app->cfg.invite_ttl_h);
    sodium_memzero(text, sizeof text);
    run_stmt(r, A_INVITE, z);
    sodium_memzero(z, sizeof z);
}

static void r_person_patch(struct http_req *r)
{
    cJSON *role = cJSON_GetObjectItemCaseSensitive(r->json, "role");
    if (role &&
        !perm_manages(r->role, perm_role_parse(role->valuestring, strlen(role->valuestring)))) {
        http_error(r, 403, "forbidden", "you may not give this role", "role");
        return;
    }
    run_route(r);
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

static void r_ws_create(struct http_req *r)
{
    if (r->avatar) {
        http_error(r, 403, "forbidden", "avatars may not create workspaces", NULL);
        return;
    }
    if (!language_ok(r)) return;
    run_route(r);
}

static void r_ws_patch(struct http_req *r)
{
    if (!language_ok(r)) return;
    if (cJSON_GetObjectItemCaseSensitive(r->json, "self_join") &&
        !perm_allows(r->role, P_WORKSPACE_SELF_JOIN)) {
        http_error(r, 403, "forbidden", "only the owner opens the workspace to its domains",
                   "self_join");
        return;
    }
    run_route(r);
}

static void r_ack(struct http_req *r)
{
    cJSON *st = cJSON_GetObjectItemCaseSensitive(r->json, "status");
    if (cJSON_GetObjectItemCaseSensitive(r->json, "retry_after_s") &&
        strcmp(st->valuestring, "retry")) {
        http_error(r, 400, "bad_field", "retry_after_s: only with status retry", "retry_after_s");
        return;
    }
    run_route(r);
}

static void r_outbox(struct http_req *r)
{
    const char *l = http_arg(r, "limit");
    long n = l ? strtol(l, NULL, 10) : 50;
    if (l && (strspn(l, "0123456789") != strlen(l) || n < 1 || n > 500)) {
        http_error(r, 400, "bad_field", "limit: must be an integer from 1 to 500", "limit");
        return;
    }
    const char *ls = http_arg(r, "lease_s");
    long lease = ls ? strtol(ls, NULL, 10) : 300;
    if (ls && (strspn(ls, "0123456789") != strlen(ls) || lease < 1 || lease > 3600)) {
        http_error(r, 400, "bad_field", "lease_s: must be an integer from 1 to 3600", "lease_s");
        return;
    }
    const char *ch = http_arg(r, "channel");
    if (ch && strcmp(ch, "email") && strcmp(ch, "sms")) {
        http_error(r, 400, "bad_field", "channel: must be email or sms", "channel");
        return;
    }
    char z[40];
    snprintf(z, sizeof z, "%ld %ld %s", n, lease, ch ? ch : "");
    run_stmt(r, A_OUTBOX_LEASE, z);
}

static void r_visits(struct http_req *r)
{
    const char *l = http_arg(r, "limit"), *b = http_arg(r, "before");
    long n = l ? strtol(l, NULL, 10) : 100;
    if (l && (strspn(l, "0123456789") != strlen(l) || n < 1 || n > 1000)) {
        http_error(r, 400, "bad_field", "limit: must be an integer from 1 to 1000", "limit");
        return;
    }
    if (b && (!*b || strspn(b, "0123456789") != strlen(b) || strlen(b) > 18)) {
        http_error(r, 400, "bad_field", "before: must be a visit id", "before");
        return;
    }
    char z[48];
    snprintf(z, sizeof z, "%ld %s", n, b ? b : "");
    run_stmt(r, A_VISITS, z);
}

/* ---- guidelines ---------------------------------------------------------- */

static const char *jstr(const struct http_req *r, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(r->json, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

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

static void r_gl_put(struct http_req *r)
{
    struct gl_error e;
    struct gl_set *set = gl_compile(r->body ? r->body : "", r->body_len, &e);
    if (!set) {
        bad_rules(r, &e);
        return;
    }
    gl_free(set);
    r->json = cJSON_ParseWithLength(r->body, r->body_len);
    if (!r->json) {
        http_error(r, 400, "bad_json", "body is not valid JSON", NULL);
        return;
    }
    run_stmt(r, A_GL_PUT, NULL);
}

/* ?from=&to= (ISO 8601, default the last 30 days), ?format=csv|json. */
static void r_eval(struct http_req *r)
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
    run_stmt(r, MOD(M_EVAL), z);
}

/* ?room=<id> narrows the log to one room. */
static void r_mod_log(struct http_req *r)
{
    const char *room = http_arg(r, "room");
    if (room && !jv_uuid(room)) {
        http_error(r, 400, "bad_query", "room: a room id", "room");
        return;
    }
    run_stmt(r, MOD(M_LOG), room ? room : "");
}

static void on_effective(void *ud, PGresult *res, int err)
{
    struct http_req *r = ud;
    if (!http_alive(r)) return;
    if (err || PQresultStatus(res) != PGRES_TUPLES_OK) {
        respond_db_error(r, err ? NULL : res, err);
        return;
    }
    if (PQntuples(res) != 1) {
        http_error(r, 404, "not_found", "no such room", "room_id");
        return;
    }
    const char *w = PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0);
    const char *rm = PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1);
    char *merged = rulecache_merge(w, rm);
    struct gl_error e;
    struct gl_set *set = merged ? gl_compile(merged, strlen(merged), &e) : NULL;
    free(merged);
    if (!set) {
        bad_rules(r, &e);
        return;
    }
    const char *text = jstr(r, "text"), *role = jstr(r, "role");
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

static void r_gl_dry_run(struct http_req *r)
{
    const char *room = jstr(r, "room_id");
    const char *y = perm_allows(r->role, P_ROOMS_MANAGE) ? "r" : "";
    const char *v[NPARAMS] = {r->person, r->ids[0], room, NULL, "{}", "", y, "", r->ip, "|"};
    int rc = db_query(r->app->db, -1, ST__COUNT + A_GL_EFFECTIVE, NPARAMS, v, NULL, NULL,
                      on_effective, r);
    if (rc) {
        respond_db_error(r, NULL, rc);
        return;
    }
    r->busy = true;
}

/* ---- sign-up, verification, login, redeem ------------------------------- */

/* z for statements that create a session: "<hash hex> <ttl hours>". */
static void session_z(struct http_req *r, char *z, size_t cap)
{
    char hx[AUTH_HASH_BYTES * 2 + 1];
    mint(r, hx);
    snprintf(z, cap, "%s %u", hx, r->app->cfg.session_ttl_h);
}

/* A secret that proves an address: its text goes only to the outbox, its
 * hash to verifications. Writes "<hash hex> <secret>" into out. */
static void address_secret(char *out, size_t cap)
{
    char text[AUTH_TOKEN_CHARS + 1], hx[AUTH_HASH_BYTES * 2 + 1];
    unsigned char h[AUTH_HASH_BYTES];
    auth_token_new(text, h);
    hex(h, sizeof h, hx);
    snprintf(out, cap, "%s %s", hx, text);
    sodium_memzero(text, sizeof text);
}

/* Runs an account statement: actor is r->person (or NULL), y the password
 * hash, z route-specific; the body goes without its password. */
static void run_with_hash(struct http_req *r, int stmt, const char *pwhash, const char *z, db_cb cb)
{
    struct app *a = r->app;
    char ua[64];
    snprintf(ua, sizeof ua, "%s|%s", r->os, r->browser);
    /* The password never travels to PostgreSQL, only its hash. */
    cJSON *pw = cJSON_GetObjectItemCaseSensitive(r->json, "password");
    if (pw) sodium_memzero(pw->valuestring, strlen(pw->valuestring));
    cJSON_DeleteItemFromObjectCaseSensitive(r->json, "password");
    char *body = cJSON_PrintUnformatted(r->json);
    const char *v[NPARAMS] = {r->person[0] ? r->person : NULL,
                              NULL,
                              NULL,
                              NULL,
                              body ? body : "{}",
                              "",
                              pwhash,
                              z,
                              r->ip,
                              ua};
    int rc = db_query(a->db, -1, ST__COUNT + stmt, NPARAMS, v, NULL, NULL, cb, r);
    free(body);
    if (rc) {
        respond_db_error(r, NULL, rc);
        return;
    }
    r->busy = true;
}

static void pw_busy(struct http_req *r)
{
    r->retry_after = 1;
    http_error(r, 503, "busy", "too many sign-ins in progress, retry later", NULL);
}

/* After handing a hash or a check (rc) to the thread pool: the request is
 * busy until its completion, or answered now (busy pool: 503; else 500). */
static void pw_started(struct http_req *r, int rc)
{
    if (!rc)
        r->busy = true;
    else if (rc == -EBUSY)
        pw_busy(r);
    else
        http_error(r, 500, "internal", "could not hash or check the password", NULL);
}

/* 400 weak_password naming the rule, or false when pw may be used. */
static bool refuse_weak(struct http_req *r, const char *pw, const struct pw_context *ctx)
{
    char msg[200];
    if (!pwpolicy_check(pw, ctx, msg, sizeof msg)) return false;
    http_error(r, 400, "weak_password", msg, "password");
    return true;
}

static void on_signup_hash(void *ud, int rc, const char *hash)
{
    struct http_req *r = ud;
    if (!http_alive(r)) return;
    if (rc || !hash) {
        http_error(r, 500, "internal", "could not hash the password", NULL);
        return;
    }
    char z[200], sec[160];
    address_secret(sec, sizeof sec);
    snprintf(z, sizeof z, "%s %u", sec, r->app->cfg.verify_ttl_h);
    sodium_memzero(sec, sizeof sec);
    run_with_hash(r, A_SIGNUP, hash, z, on_stmt);
    sodium_memzero(z, sizeof z);
}

/* Sign-up hashes the password whether or not the address has an account,
 * so neither the answer nor its timing tells which. */
static void signup_hash(struct http_req *r)
{
    const char *pw = jstr(r, "password");
    struct pw_context ctx = {jstr(r, "email"), jstr(r, "first_name"), jstr(r, "last_name")};
    if (refuse_weak(r, pw, &ctx)) return;
    pw_started(r, auth_password_hash_async(r->app->loop, pw, strlen(pw), on_signup_hash, r));
}

static void resend_run(struct http_req *r)
{
    char z[200], sec[160];
    address_secret(sec, sizeof sec);
    snprintf(z, sizeof z, "%s %u", sec, r->app->cfg.verify_ttl_h);
    sodium_memzero(sec, sizeof sec);
    run_with_hash(r, A_RESEND, NULL, z, on_stmt);
    sodium_memzero(z, sizeof z);
}

/* Rate limits live in Redis, shared by every gateway, each over a fixed
 * window: sign-in attempts per account and client IP together (so that one
 * address guessing cannot lock the owner out of their account) and per
 * client IP; sign-ups and verification resends per client IP. Every attempt
 * counts before the password is checked (so parallel guesses are limited
 * too); a success clears the account's counter for that IP and gives the IP
 * its attempt back. */
static const char limit_lua[] = "local w = tonumber(ARGV[1])\n"
                                "for i = 1, #KEYS do\n"
                                "  local n = redis.call('INCR', KEYS[i])\n"
                                "  if n == 1 then redis.call('PEXPIRE', KEYS[i], w) end\n"
                                "  if n > tonumber(ARGV[i + 1]) then\n"
                                "    local t = redis.call('PTTL', KEYS[i])\n"
                                "    if t < 0 then redis.call('PEXPIRE', KEYS[i], w); t = w end\n"
                                "    return t\n"
                                "  end\n"
                                "end\n"
                                "return 0\n";

/* What r->scratch[0] holds while a limit is checked: which step follows. */
#define LIMIT_SIGNUP 'S'
#define LIMIT_RESEND 'V'

/* Sign-ups and resends count in their own per-IP bucket, so that creating
 * accounts does not spend the sign-in attempts of everyone behind the same
 * address. */
static void limit_keys(struct http_req *r, const char *email, char *acct, char *ip, size_t cap)
{
    unsigned char h[16];
    char hx[33];
    crypto_generichash(h, sizeof h, (const unsigned char *)email, strlen(email), NULL, 0);
    hex(h, sizeof h, hx);
    snprintf(acct, cap, "parley:rl:login:acct:%s:%s", hx, r->ip);
    bool signup = r->scratch[0] == LIMIT_SIGNUP || r->scratch[0] == LIMIT_RESEND;
    snprintf(ip, cap, "parley:rl:%s:ip:%s", signup ? "signup" : "login", r->ip);
}

static void ignore_reply(void *ud, const void *reply)
{
    (void)ud;
    (void)reply;
}

static void limit_success(struct http_req *r, const char *email)
{
    char acct[160], ip[160];
    limit_keys(r, email, acct, ip, sizeof acct);
    const char *a1[2] = {"DEL", acct}, *a2[2] = {"DECR", ip};
    size_t l1[2] = {3, strlen(acct)}, l2[2] = {4, strlen(ip)};
    bus_call(r->app->bus, ignore_reply, NULL, 2, a1, l1);
    bus_call(r->app->bus, ignore_reply, NULL, 2, a2, l2);
}

static void login_lookup(struct http_req *r);

static void on_limit(void *ud, const void *reply)
{
    struct http_req *r = ud;
    const redisReply *rep = reply;
    if (!http_alive(r)) return;
    if (!rep || rep->type != REDIS_REPLY_INTEGER) {
        /* Without the counters there is no brute-force protection: refuse
         * rather than let guesses through unlimited. */
        r->retry_after = 1;
        http_error(r, 503, "unavailable", "sign-in temporarily unavailable, retry later", NULL);
        return;
    }
    if (rep->integer > 0) {
        r->app->stats.logins_limited++;
        r->retry_after = (unsigned)((rep->integer + 999) / 1000);
        http_error(r, 429, "rate_limited", "too many attempts, retry later", NULL);
        return;
    }
    char step = r->scratch[0];
    r->scratch[0] = 0;
    if (step == LIMIT_SIGNUP)
        signup_hash(r);
    else if (step == LIMIT_RESEND)
        resend_run(r);
    else
        login_lookup(r);
}

static void check_limit(struct http_req *r, const char *email, bool with_account)
{
    struct app *a = r->app;
    char acct[160], ip[160], win[16], ma[16], mi[16];
    limit_keys(r, email, acct, ip, sizeof acct);
    snprintf(win, sizeof win, "%u", a->cfg.login_window_s * 1000u);
    snprintf(ma, sizeof ma, "%u", a->cfg.login_max_account);
    snprintf(mi, sizeof mi, "%u", with_account ? a->cfg.login_max_ip : a->cfg.signup_max_ip);
    const char *argv[8];
    size_t lens[8];
    int n = 0;
    argv[n++] = "EVAL";
    argv[n++] = limit_lua;
    argv[n++] = with_account ? "2" : "1";
    if (with_account) argv[n++] = acct;
    argv[n++] = ip;
    argv[n++] = win;
    if (with_account) argv[n++] = ma;
    argv[n++] = mi;
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    int rc = bus_call(a->bus, on_limit, r, n, argv, lens);
    if (rc) {
        r->retry_after = 1;
        http_error(r, 503, "unavailable", "sign-in temporarily unavailable, retry later", NULL);
        return;
    }
    r->busy = true;
}

static void r_signup(struct http_req *r)
{
    r->scratch[0] = LIMIT_SIGNUP;
    check_limit(r, jstr(r, "email"), false);
}

static void r_resend(struct http_req *r)
{
    r->scratch[0] = LIMIT_RESEND;
    check_limit(r, jstr(r, "email"), false);
}

/* Only a sign-up's answer (201) carries the session minted for it; a
 * confirmed change of address mints nothing. */
static void on_verify(void *ud, PGresult *res, int err)
{
    struct http_req *r = ud;
    if (!err && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
        atoi(PQgetvalue(res, 0, 0)) != 201)
        sodium_memzero(r->scratch, sizeof r->scratch);
    on_stmt(ud, res, err);
}

static void r_verify(struct http_req *r)
{
    const char *tok = jstr(r, "token");
    unsigned char h[AUTH_HASH_BYTES];
    if (auth_token_hash(tok, strlen(tok), h)) {
        http_error(r, 404, "verification_invalid",
                   "verification secret not found, expired or already used", NULL);
        return;
    }
    char hx[AUTH_HASH_BYTES * 2 + 1], sz[160], z[240];
    hex(h, sizeof h, hx);
    session_z(r, sz, sizeof sz);
    snprintf(z, sizeof z, "%s %s", hx, sz);
    cJSON_DeleteItemFromObjectCaseSensitive(r->json, "token");
    r->not_found_code = "verification_invalid";
    run_with_hash(r, A_VERIFY, NULL, z, on_verify);
}

/* An avatar is a bot of one workspace: an address on it could be matched
 * by an invitation and give whoever holds its token a person's role. */
static void r_me_patch(struct http_req *r)
{
    bool address = cJSON_GetObjectItemCaseSensitive(r->json, "email") ||
                   cJSON_GetObjectItemCaseSensitive(r->json, "phone");
    if (r->avatar && address) {
        http_error(r, 403, "forbidden", "avatars cannot have an email address or phone number",
                   NULL);
        return;
    }
    char e[160], ph[160], z[400];
    address_secret(e, sizeof e);
    address_secret(ph, sizeof ph);
    snprintf(z, sizeof z, "%s %s %u", e, ph, r->app->cfg.verify_ttl_h);
    sodium_memzero(e, sizeof e);
    sodium_memzero(ph, sizeof ph);
    run_stmt(r, A_ME_PATCH, z);
    sodium_memzero(z, sizeof z);
}

static void r_login(struct http_req *r)
{
    check_limit(r, jstr(r, "email"), true);
}

static void on_verified(void *ud, int rc, const char *newhash)
{
    struct http_req *r = ud;
    struct app *a = r->app;
    if (!http_alive(r)) return;
    if (rc) {
        a->stats.logins_failed++;
        http_error(r, 401, "invalid_credentials", "wrong email or password", NULL);
        return;
    }
    a->stats.logins_ok++;
    limit_success(r, jstr(r, "email"));
    char z[160];
    session_z(r, z, sizeof z);
    run_with_hash(r, A_LOGIN_FINISH, newhash, z, on_stmt);
}

static void on_lookup(void *ud, PGresult *res, int err)
{
    struct http_req *r = ud;
    if (!http_alive(r)) return;
    if (err || PQresultStatus(res) != PGRES_TUPLES_OK) {
        respond_db_error(r, err ? NULL : res, err);
        return;
    }
    /* An unknown email costs the same hash as a known one. */
    const char *stored = NULL;
    if (PQntuples(res) == 1) {
        snprintf(r->person, sizeof r->person, "%s", PQgetvalue(res, 0, 0));
        stored = PQgetvalue(res, 0, 1);
    }
    const char *pw = jstr(r, "password");
    pw_started(r, auth_password_verify_async(r->app->loop, stored, pw, strlen(pw), on_verified, r));
}

static void login_lookup(struct http_req *r)
{
    const char *v[1] = {jstr(r, "email")};
    int rc = db_query(r->app->db, -1, ST__COUNT + A_LOGIN_LOOKUP, 1, v, NULL, NULL, on_lookup, r);
    if (rc) {
        respond_db_error(r, NULL, rc);
        return;
    }
    r->busy = true;
}

/* Redeems the invitation whose hash is in r->secret: for r->person (an
 * existing account already proven) or, when empty, for a new account with
 * pwhash (or none). Only a new account gets a session. */
static void redeem_run(struct http_req *r, const char *pwhash)
{
    char ihx[AUTH_HASH_BYTES * 2 + 1], shx[160], z[240];
    hex(r->secret, sizeof r->secret, ihx);
    if (r->person[0])
        snprintf(shx, sizeof shx, "- 0");
    else
        session_z(r, shx, sizeof shx);
    snprintf(z, sizeof z, "%s %s", ihx, shx);
    cJSON_DeleteItemFromObjectCaseSensitive(r->json, "token");
    r->not_found_code = "invitation_invalid";
    run_with_hash(r, A_REDEEM, pwhash, z, on_stmt);
}

static void on_redeem_hash(void *ud, int rc, const char *hash)
{
    struct http_req *r = ud;
    if (!http_alive(r)) return;
    if (rc || !hash) {
        http_error(r, 500, "internal", "could not hash the password", NULL);
        return;
    }
    redeem_run(r, hash);
}

static void on_redeem_password(void *ud, int rc, const char *newhash)
{
    struct http_req *r = ud;
    (void)newhash; /* a rehash waits for the next login */
    if (!http_alive(r)) return;
    if (rc) {
        r->app->stats.logins_failed++;
        http_error(r, 401, "invalid_credentials", "wrong password for the account of this address",
                   "password");
        return;
    }
    redeem_run(r, NULL);
}

/* Who holds the invited address decides: nobody, a new account (the secret
 * proves the address); an account, its password or a session of it, never
 * the secret alone (an address is no proof of who owns an account). */
static void on_redeem_lookup(void *ud, PGresult *res, int err)
{
    struct http_req *r = ud;
    if (!http_alive(r)) return;
    if (err || PQresultStatus(res) != PGRES_TUPLES_OK) {
        respond_db_error(r, err ? NULL : res, err);
        return;
    }
    if (PQntuples(res) == 0) {
        http_error(r, 404, "invitation_invalid", "invitation not found, expired or already used",
                   NULL);
        return;
    }
    const char *pw = jstr(r, "password");
    int rc;
    if (PQgetisnull(res, 0, 4)) {
        if (!pw) {
            redeem_run(r, NULL);
            return;
        }
        const char *first = jstr(r, "first_name"), *last = jstr(r, "last_name");
        struct pw_context ctx = {
            PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0),
            first ? first : (PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2)),
            last ? last : (PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3))};
        if (refuse_weak(r, pw, &ctx)) return;
        rc = auth_password_hash_async(r->app->loop, pw, strlen(pw), on_redeem_hash, r);
    } else {
        snprintf(r->person, sizeof r->person, "%s", PQgetvalue(res, 0, 4));
        if (PQgetvalue(res, 0, 6)[0] == 't') {
            redeem_run(r, NULL);
            return;
        }
        if (!pw) {
            http_error(r, 401, "password_required",
                       "this address belongs to an account: give its password or sign in",
                       "password");
            return;
        }
        const char *stored = PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5);
        rc =
            auth_password_verify_async(r->app->loop, stored, pw, strlen(pw), on_redeem_password, r);
    }
    pw_started(r, rc);
}

static void r_redeem(struct http_req *r)
{
    const char *tok = jstr(r, "token");
    if (auth_token_hash(tok, strlen(tok), r->secret)) {
        http_error(r, 404, "invitation_invalid", "invitation not found, expired or already used",
                   NULL);
        return;
    }
    bool session = r->has_token && !r->bad_token;
    const char *v[2] = {(const char *)r->secret, session ? (const char *)r->token_hash : NULL};
    int len[2] = {AUTH_HASH_BYTES, session ? AUTH_HASH_BYTES : 0}, fmt[2] = {1, 1};
    int rc =
        db_query(r->app->db, -1, ST__COUNT + A_REDEEM_LOOKUP, 2, v, len, fmt, on_redeem_lookup, r);
    if (rc) {
        respond_db_error(r, NULL, rc);
        return;
    }
    r->busy = true;
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
    db_query(a->db, -1, ST__COUNT + A_ANONYMISE, 1, v, NULL, NULL, on_anonymised, NULL);
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

int http_api_init(struct app *a)
{
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
