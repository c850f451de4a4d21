#include "sql_people.h"

#include "sql_shapes.h"

// clang-format off
static const struct db_stmt rows[SP__COUNT] = {
    [SP_WS_CREATE] = {"api_ws_create",
                     P ", w AS (INSERT INTO workspaces (name, created_by, allowed_domains,"
                       " retention_days, edit_window_s, language, self_join) SELECT p.b->>'name', p.actor,"
                       " ARRAY(SELECT jsonb_array_elements_text(coalesce(p.b->'allowed_domains',"
                       " '[]'))), (p.b->>'retention_days')::int,"
                       " coalesce((p.b->>'edit_window_s')::int, 900), coalesce(p.b->>'language', 'en'),"
                       " coalesce((p.b->>'self_join')::boolean, false) FROM p RETURNING *),"
                       " wm AS (INSERT INTO workspace_members (workspace_id, person_id, role)"
                       "  SELECT w.id, p.actor, 'owner' FROM w, p RETURNING role)"
                       " SELECT 201, " WS_JSON ", NULL FROM w, wm",
                     NPARAMS},
    [SP_WS_LIST] = {"api_ws_list",
                   P " SELECT 200, " ITEMS(WS_JSON, "w.name, w.id", "w.id") ", NULL FROM p"
                     " LEFT JOIN workspace_members wm ON wm.person_id = p.actor"
                     "  AND wm.removed_at IS NULL"
                     " LEFT JOIN " WS_ROW_LIVE("w", "wm.workspace_id")
                     " GROUP BY p.actor",
                   NPARAMS},
    [SP_WS_GET] = {"api_ws_get",
                  P " SELECT 200, " WS_JSON ", NULL FROM p JOIN workspaces w ON w.id = p.ws"
                    " JOIN workspace_members wm ON wm.workspace_id = w.id AND wm.person_id = p.actor",
                  NPARAMS},
    [SP_WS_PATCH] = {"api_ws_patch",
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
    /* y flags: c (may see contacts), m (manages people: removed ones too). */
    [SP_PEOPLE_LIST] = {"api_people_list",
                       P " SELECT 200, " ITEMS(PERSON_JSON,
                                                "pe.last_name NULLS LAST, pe.first_name, pe.id", "pe.id") ","
                         " NULL FROM p LEFT JOIN workspace_members wm ON wm.workspace_id = p.ws"
                         "  AND (wm.removed_at IS NULL OR " FLAG("m") ")"
                         " LEFT JOIN people pe ON pe.id = wm.person_id"
                         " GROUP BY p.actor, p.y",
                       NPARAMS},
    [SP_PERSON_GET] = {"api_person_get",
                      P " SELECT 200, " PERSON_JSON ", NULL FROM p"
                        " JOIN workspace_members wm ON wm.workspace_id = p.ws AND wm.person_id = p.id1"
                        "  AND (wm.removed_at IS NULL OR " FLAG("m") ")"
                        " JOIN people pe ON pe.id = wm.person_id",
                      NPARAMS},
    /* Org fields and role live on the membership, the only row this route
     * writes (names live on the account: PATCH /me). The target must be one
     * the actor manages (x), except that anyone with people.manage may edit
     * their own fields but not their role. */
    [SP_PERSON_PATCH] = {"api_person_patch",
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
    [SP_PERSON_REMOVE] = {"api_person_remove",
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
    [SP_PERSON_RESTORE] = {"api_person_restore",
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
    [SP_INVITE] = {"api_invite",
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
    [SP_INVITE_LIST] = {"api_invite_list",
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
    [SP_INVITE_REVOKE] = {"api_invite_revoke",
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
    /* z: "<how many> <lease seconds> [channel]". A lease hides an item from other
     * mailers for its time; an item not acknowledged by then is handed out
     * again (with attempts one higher, which names the new lease). */
    [SP_OUTBOX_LEASE] =
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
    [SP_OUTBOX_GET] = {"api_outbox_get",
                      P " SELECT 200, " OUTBOX_JSON("o") ", NULL FROM outbox o, p"
                        " WHERE o.id = p.z::bigint AND " OUTBOX_LIVE("o"),
                      NPARAMS},
    /* z: the outbox id. sent/failed end the item and erase its secret;
     * retry hands it out again at once, or after retry_after_s. With
     * attempt, only the lease of that number is acknowledged: a mailer
     * whose lease ran out and was taken by another gets 409 lease_lost and
     * changes nothing (the outer SELECT sees the row as it was). */
    [SP_OUTBOX_ACK] = {"api_outbox_ack",
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
    [SP_JOINABLE] = {"api_joinable",
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
    [SP_WS_JOIN] = {"api_ws_join",
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
};
// clang-format on

struct stmts_table sql_people = {"api people", rows, SP__COUNT, -1};
