#include "sql_account.h"

#include "sql_shapes.h"

// clang-format off
static const struct db_stmt rows[SA__COUNT] = {
    /* Who holds the token, and their role in the path's workspace (NULL
     * when not an active member, or the token is scoped elsewhere). */
    [SA_AUTH] = {"api_auth",
                "SELECT t.person_id::text, t.id::text, pe.is_avatar, wm.role"
                "  FROM access_tokens t JOIN people pe ON pe.id = t.person_id"
                "  LEFT JOIN workspace_members wm ON wm.person_id = t.person_id"
                "   AND wm.workspace_id = $2::uuid AND wm.removed_at IS NULL"
                "   AND " WS_LIVE("wm.workspace_id")
                "   AND (t.workspace_id IS NULL OR t.workspace_id = wm.workspace_id)"
                " WHERE t.hash = $1 AND t.revoked_at IS NULL"
                "   AND (t.expires_at IS NULL OR t.expires_at > now())",
                2},
    /* No account yet: a pending sign-up whose secret goes to the address
     * (y: the argon2id hash; z: "<secret hash hex> <secret> <ttl hours>").
     * An address that has an account gets a notice instead, and the answer
     * is the same, so sign-up does not tell who is registered. */
    [SA_SIGNUP] = {"api_signup",
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
    [SA_VERIFY] = {"api_verify",
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
    [SA_RESEND] = {"api_resend",
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
    [SA_LOGIN_LOOKUP] = {"api_login_lookup",
                        "SELECT id::text, password_hash FROM people"
                        " WHERE email = $1 AND NOT is_avatar AND password_hash IS NOT NULL",
                        1},
    /* y: a new hash when the old parameters were weaker, else NULL. */
    [SA_LOGIN_FINISH] = {"api_login_finish",
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
    [SA_LOGOUT] = {"api_logout",
                  P ", t AS (UPDATE access_tokens t SET revoked_at = now() FROM p"
                    "  WHERE t.id = p.z::uuid AND t.revoked_at IS NULL RETURNING t.id)"
                    " SELECT 204, NULL::json, 'token ' || t.id FROM t",
                  NPARAMS},
    [SA_REVOKE_ALL] = {"api_revoke_all",
                      P ", t AS (UPDATE access_tokens t SET revoked_at = now() FROM p"
                        "  WHERE t.person_id = p.actor AND t.revoked_at IS NULL RETURNING 1)"
                        " SELECT 204, NULL::json, 'person ' || p.actor FROM p",
                      NPARAMS},
    [SA_ME_GET] = {"api_me_get",
                  P " SELECT 200, " ME_JSON ", NULL FROM p JOIN people pe ON pe.id = p.actor",
                  NPARAMS},
    /* A new email or phone is not set: it waits, pending, for the secret
     * sent to it (z: "<email secret hash> <email secret> <phone secret
     * hash> <phone secret> <ttl hours>"); an address another account holds
     * gets a notice instead of the secret, with the same answer. null
     * clears an address at once. Names and picture change at once. */
    [SA_ME_PATCH] = {"api_me_patch",
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
    /* $1: the invitation's hash; $2: the hash of the bearer token sent with
     * the redeem, or NULL. Which account holds the invited address, its
     * password hash, and whether the token is a session of that account. */
    [SA_REDEEM_LOOKUP] = {"api_redeem_lookup",
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
    [SA_REDEEM] =
        {"api_redeem",
         P ", inv AS (SELECT i.* FROM invitations i, p"
           "  WHERE i.hash = decode(split_part(p.z, ' ', 1), 'hex') AND i.redeemed_at IS NULL"
           "  AND i.revoked_at IS NULL AND i.expires_at > now() AND " WS_LIVE("i.workspace_id")
           "  FOR UPDATE OF i),"
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
};
// clang-format on

struct stmts_table sql_account = {"api accounts", rows, SA__COUNT, -1};
