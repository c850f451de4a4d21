/*
 * sql_shapes.h - the JSON objects the API's statements answer with (a person,
 * the caller's own profile, a workspace, a room, an invitation, an outbox item,
 * an avatar, a token) and the SQL fragments several of them share, so every
 * route that returns an object returns the same shape (protocol/openapi.yaml).
 * Included by the sql_*.c tables only.
 */
#ifndef PARLEY_SQL_SHAPES_H
#define PARLEY_SQL_SHAPES_H

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
    " JOIN " WS_ROW_LIVE(                                                                          \
        "w", "m.workspace_id") " WHERE m.person_id = pe.id AND m.removed_at IS NULL), '[]'))"
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
    "(" w ".self_join AND " w ".deleted_at IS NULL AND " pe ".email_verified_at IS NOT NULL"       \
    " AND NOT " pe ".is_avatar"                                                                    \
    " AND " w ".allowed_domains @> ARRAY[split_part(" pe ".email, '@', 2)])"
/* An outbox item still to deliver: not sent or failed, and its invitation
 * or secret still good. */
/* clang-format cannot lay out a macro call among string pieces. */
// clang-format off
#define OUTBOX_LIVE(o)                                                                             \
    "(" o ".sent_at IS NULL AND " o ".failed_at IS NULL"                                           \
    " AND " WS_LIVE(o ".workspace_id")                                                             \
    " AND NOT EXISTS (SELECT 1 FROM invitations i WHERE i.id = " o ".invitation_id"                \
    "  AND (i.revoked_at IS NOT NULL OR i.redeemed_at IS NOT NULL OR i.expires_at <= now()))"      \
    " AND NOT EXISTS (SELECT 1 FROM verifications v WHERE v.id = " o ".verification_id"            \
    "  AND (v.used_at IS NOT NULL OR v.expires_at <= now())))"
// clang-format on
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

#endif
