#include "sql_rooms.h"

#include "sql_shapes.h"

// clang-format off
static const struct db_stmt rows[SR__COUNT] = {
    [SR_ROOM_CREATE] = {"api_room_create",
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
    [SR_ROOM_LIST] = {"api_room_list",
                     P " SELECT 200, " ITEMS(ROOM_JSON, "r.name, r.id", "r.id") ", NULL FROM p"
                       " LEFT JOIN rooms r ON r.workspace_id = p.ws"
                       "  AND (r.archived_at IS NULL OR " FLAG("A") ")"
                       "  AND (" FLAG("r") " OR r.visibility = 'workspace' OR EXISTS (SELECT 1"
                       "   FROM room_members rm WHERE rm.room_id = r.id AND rm.person_id = p.actor))"
                       " GROUP BY p.ws",
                     NPARAMS},
    [SR_ROOM_GET] = {"api_room_get",
                    P " SELECT 200, " ROOM_JSON ", NULL FROM p JOIN rooms r ON r.id = p.id1"
                      "  AND r.workspace_id = p.ws"
                      "  AND (" FLAG("r") " OR r.visibility = 'workspace' OR EXISTS (SELECT 1"
                      "   FROM room_members rm WHERE rm.room_id = r.id AND rm.person_id = p.actor))",
                    NPARAMS},
    /* Made members-only or archived: its gateways re-check who is in it
     * ("access", access.h). old is the row before the update. */
    [SR_ROOM_PATCH] = {"api_room_patch",
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
    [SR_ROOM_MEMBERS] = {"api_room_members",
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
    [SR_ROOM_MEMBER_ADD] = {"api_room_member_add",
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
    [SR_ROOM_MEMBER_DEL] = {"api_room_member_del",
                           P ", d AS (DELETE FROM room_members rm USING rooms r, p"
                             "  WHERE rm.room_id = p.id1 AND rm.person_id = p.id2 AND r.id = rm.room_id"
                             "  AND r.workspace_id = p.ws RETURNING 1)"
                             /* a members-only room's gateways take them out */
                             " SELECT 204, NULL::json, 'access ' || p.id1 FROM d, p",
                           NPARAMS},
    [SR_AVATAR_CREATE] = {"api_avatar_create",
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
    [SR_AVATAR_LIST] = {"api_avatar_list",
                       P " SELECT 200, " ITEMS(AVATAR_JSON, "pe.display_name, pe.id", "av.person_id") ", NULL FROM p"
                         " LEFT JOIN avatars av ON av.workspace_id = p.ws"
                         " LEFT JOIN people pe ON pe.id = av.person_id"
                         " LEFT JOIN workspace_members wm ON wm.person_id = av.person_id"
                         "  AND wm.workspace_id = p.ws GROUP BY p.ws",
                       NPARAMS},
    [SR_AVATAR_GET] = {"api_avatar_get",
                      P " SELECT 200, " AVATAR_JSON ", NULL FROM p"
                        " JOIN avatars av ON av.workspace_id = p.ws AND av.person_id = p.id1"
                        " JOIN people pe ON pe.id = av.person_id"
                        " JOIN workspace_members wm ON wm.person_id = av.person_id"
                        "  AND wm.workspace_id = p.ws",
                      NPARAMS},
    [SR_AVATAR_PATCH] = {"api_avatar_patch",
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
    [SR_AVATAR_DELETE] = {"api_avatar_delete",
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
    [SR_AVATAR_TOKEN_CREATE] = {"api_avatar_token_create",
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
    [SR_AVATAR_TOKENS] = {"api_avatar_tokens",
                         P " SELECT 200, " ITEMS(TOKEN_JSON, "t.created_at DESC, t.id", "t.id") ", NULL"
                           " FROM p JOIN avatars av ON av.person_id = p.id1 AND av.workspace_id = p.ws"
                           " LEFT JOIN access_tokens t ON t.person_id = av.person_id"
                           " GROUP BY av.person_id",
                         NPARAMS},
    [SR_AVATAR_TOKEN_REVOKE] = {"api_avatar_token_revoke",
                               P ", t AS (UPDATE access_tokens t SET revoked_at = coalesce(t.revoked_at,"
                                 "  now()) FROM avatars av, p WHERE t.id = p.id2 AND t.person_id = p.id1"
                                 "  AND av.person_id = t.person_id AND av.workspace_id = p.ws"
                                 "  RETURNING t.id)"
                                 " SELECT 204, NULL::json, 'token ' || t.id FROM t",
                               NPARAMS},
    /* z: "<limit> <before id or empty>". */
    [SR_VISITS] = {"api_visits",
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
    [SR_ANONYMISE] = {"api_anonymise",
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
    [SR_GL_GET] = {"api_gl_get",
        P " SELECT 200, json_build_object('rules', coalesce(g.rules->'rules', '[]'),"
        "  'version', coalesce(g.version, 0), 'updated_at', g.updated_at), NULL"
        " FROM p LEFT JOIN guidelines g ON g.workspace_id = p.ws"
        "  AND g.room_id IS NOT DISTINCT FROM p.id1"
        " WHERE p.id1 IS NULL OR EXISTS (SELECT 1 FROM rooms r WHERE r.id = p.id1"
        "  AND r.workspace_id = p.ws AND " ROOM_SEEN("r") ")",
        NPARAMS},
    /* The body was compiled by the gateway before this runs. */
    [SR_GL_PUT] = {"api_gl_put",
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
    [SR_GL_EFFECTIVE] = {"api_gl_effective",
        P " SELECT (SELECT g.rules::text FROM guidelines g WHERE g.workspace_id = p.ws"
        "  AND g.room_id IS NULL), (SELECT g.rules::text FROM guidelines g"
        "  WHERE g.workspace_id = p.ws AND g.room_id = p.id1)"
        " FROM p WHERE p.id1 IS NULL OR EXISTS (SELECT 1 FROM rooms r WHERE r.id = p.id1"
        "  AND r.workspace_id = p.ws AND " ROOM_SEEN("r") ")",
        NPARAMS},
    [SR_GL_AUDIT] = {"api_gl_audit",
        P " SELECT 200, " ITEMS("json_build_object('id', x.id, 'room_id', x.room_id,"
                               " 'actor_id', x.actor_id, 'at', x.at, 'before', x.before,"
                               " 'after', x.after)", "x.id DESC", "x.id") ", NULL"
        " FROM p LEFT JOIN LATERAL (SELECT * FROM guideline_audit a WHERE a.workspace_id = p.ws"
        "  ORDER BY a.id DESC LIMIT 100) x ON true GROUP BY p.ws",
        NPARAMS},
};
// clang-format on

struct stmts_table sql_rooms = {"api rooms", rows, SR__COUNT, -1};
