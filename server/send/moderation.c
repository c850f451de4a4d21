#include "moderation.h"

#include "apisql.h"
#include "app.h"
#include "conn.h"
#include "ctl.h"
#include "log.h"
#include "mem.h"
#include "perm.h"
#include "store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- SQL ------------------------------------------------------------------
 * Flag M in p.y: the actor may moderate (perm.c). Rows answered: (status,
 * body, control events separated by ';', push "<room> <person|-> <json>").
 * A room's log only grows under its row lock (lk), and only when the row
 * that needs the event was found (go), so a seq is never taken without its
 * row: recovery can never meet a hole. */
/* The room of the path, if the actor may see it (ROOM_SEEN). On the
 * WebSocket (id2: the session's token) archived rooms and, for a token
 * scoped to some rooms (an avatar's), the others do not exist either, as for
 * join (store.c, join_check). */
#define WS_ROOM_OPEN "(p.id2 IS NULL OR (r.archived_at IS NULL AND " TOKEN_OPENS("p.id2", "r") "))"
#define ROOM_OF_WS                                                                                 \
    " rm AS (SELECT r.id, r.kind FROM rooms r, p WHERE r.id = p.id1 AND r.workspace_id = p.ws"     \
    "  AND " ROOM_SEEN("r") " AND " WS_ROOM_OPEN ")"
/* The message z of the room, whether the actor may act on it (moderator, or
 * its sender within the workspace's window). */
#define TARGET                                                                                     \
    " m AS (SELECT x.seq, x.sender_id, x.deleted_at, x.sender_id = p.actor AS own,"                \
    "  x.created_at > now() - make_interval(secs => w.edit_window_s) AS fresh"                     \
    "  FROM messages x, rm, p, workspaces w WHERE x.room_id = rm.id AND x.seq = p.z::int8"         \
    "  AND x.kind IN ('message', 'entry', 'reply') AND w.id = p.ws)"
/* Appends one event row (kind, JSON body expression over go and al). */
#define APPEND(kind, json)                                                                         \
    " lk AS (SELECT r.id FROM rooms r JOIN rm ON r.id = rm.id WHERE EXISTS (SELECT 1 FROM go)"     \
    "  FOR UPDATE OF r),"                                                                          \
    " al AS (UPDATE rooms r SET last_seq = r.last_seq + 1," ROOM_TS " FROM lk WHERE r.id = lk.id"  \
    "  RETURNING r.id, r.last_seq, r.last_ts),"                                                    \
    " ev AS (INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body, kind, "           \
    "created_at)"                                                                                  \
    "  SELECT al.id, al.last_seq, p.actor, '~" kind "' || al.last_seq, (" json ")::text, '" kind   \
    "', al.last_ts FROM al, go, p RETURNING seq)"
#define SYNC "(SELECT 'sync ' || p.id1 || ' ' || ev.seq FROM ev)"
#define LOG(action, person, seq, pending, detail)                                                  \
    " lg AS (INSERT INTO moderation_log (workspace_id, room_id, actor_id, action, target_person,"  \
    "  target_seq, target_pending, reason, detail) SELECT p.ws, p.id1, p.actor, '" action          \
    "', " person ", " seq ", " pending ", p.b->>'reason', " detail " FROM go, p RETURNING 1)"
/* The target of a mute or removal: an active member the actor may act on
 * (members and avatars; others only if the actor manages their role). */
#define SUBJECT                                                                                    \
    " t AS (SELECT wm.person_id, wm.role IN ('member', 'avatar') OR " MANAGES(                     \
        "wm.role") " AS ok"                                                                        \
                   "  FROM workspace_members wm, p WHERE wm.workspace_id = p.ws AND "              \
                   "wm.removed_at IS NULL"                                                         \
                   "  AND wm.person_id = (p.b->>'person_id')::uuid),"                              \
                   " sc AS (SELECT (p.b->>'room_id') IS NULL OR EXISTS (SELECT 1 FROM rooms r"     \
                   "  WHERE r.id = (p.b->>'room_id')::uuid AND r.workspace_id = p.ws"              \
                   "  AND " WS_ROOM_OPEN ") AS ok FROM p)"
#define NOT_YOURS ERR("forbidden", "person_id", "your role may not act on this person")
#define CSVQ(x) "'\"' || replace(coalesce((" x ")::text, ''), '\"', '\"\"') || '\"'"

// clang-format off
static const struct db_stmt mod_stmts[M__COUNT] = {
    [M_DELETE] = {"mod_delete",
        P "," ROOM_OF_WS "," TARGET ","
        " go AS (SELECT m.* FROM m, p WHERE (" FLAG("M") " OR (m.own AND m.fresh))"
        "  AND m.deleted_at IS NULL),"
        APPEND("delete", "json_build_object('target', go.seq,"
               " 'by', CASE WHEN go.own THEN 'sender' ELSE 'moderator' END)") ","
        " up AS (UPDATE messages x SET body = '', deleted_at = now() FROM go, rm"
        "  WHERE x.room_id = rm.id AND x.seq = go.seq RETURNING 1),"
        /* the text of its earlier edits goes too */
        " ed AS (UPDATE messages x SET body = json_build_object('target', go.seq, 'body', '')::text"
        "  FROM go, rm WHERE x.room_id = rm.id AND x.kind = 'edit' AND x.seq > go.seq"
        "  AND (x.body::json->>'target')::int8 = go.seq RETURNING 1),"
        LOG("delete", "go.sender_id", "go.seq", "NULL::int8", "NULL::jsonb")
        " SELECT CASE WHEN " FLAG("M") " OR (m.own AND m.fresh) THEN 200 ELSE 403 END,"
        "  CASE WHEN " FLAG("M") " OR (m.own AND m.fresh) THEN json_build_object('room', p.id1,"
        "   'seq', m.seq, 'deleted', true, 'event_seq', (SELECT seq FROM ev))"
        "  WHEN m.own THEN " ERR("edit_window_closed", "seq", "too old to delete")
        "  ELSE " ERR("forbidden", "seq", "only its sender or a moderator may delete it") " END,"
        "  " SYNC ", NULL"
        " FROM m, p WHERE (SELECT count(*) FROM up) + (SELECT count(*) FROM ed)"
        "  + (SELECT count(*) FROM lg) >= 0",
        NPARAMS},
    [M_EDIT] = {"mod_edit",
        P "," ROOM_OF_WS "," TARGET ","
        " go AS (SELECT m.* FROM m WHERE m.own AND m.fresh AND m.deleted_at IS NULL),"
        APPEND("edit", "json_build_object('target', go.seq, 'body', p.b->>'body',"
               " 'edited', " TS_MS("now()") ")") ","
        " up AS (UPDATE messages x SET body = p.b->>'body', edited_at = now() FROM go, rm, p"
        "  WHERE x.room_id = rm.id AND x.seq = go.seq RETURNING 1),"
        LOG("edit", "go.sender_id", "go.seq", "NULL::int8", "NULL::jsonb")
        " SELECT CASE WHEN m.deleted_at IS NOT NULL THEN 404 WHEN m.own AND m.fresh THEN 200"
        "  ELSE 403 END,"
        "  CASE WHEN m.deleted_at IS NOT NULL THEN " ERR("no_such_message", "seq", "it was deleted")
        "  WHEN m.own AND m.fresh THEN json_build_object('room', p.id1, 'seq', m.seq,"
        "   'edited', " TS_MS("now()") ", 'event_seq', (SELECT seq FROM ev))"
        "  WHEN m.own THEN " ERR("edit_window_closed", "seq", "too old to edit")
        "  ELSE " ERR("forbidden", "seq", "only its sender may edit it") " END,"
        "  " SYNC ", NULL"
        " FROM m, p WHERE (SELECT count(*) FROM up) + (SELECT count(*) FROM lg) >= 0",
        NPARAMS},
    [M_PENDING] = {"mod_pending",
        P "," ROOM_OF_WS
        " SELECT 200, json_build_object('room', rm.id, 'items', coalesce((SELECT json_agg("
        "  json_build_object('id', x.id, 'sender', x.sender_id, 'client_msg_id', x.client_msg_id,"
        "   'body', x.body, 'state', x.state, 'parent', x.parent_seq, 'rules', x.rules,"
        "   'ts', " TS_MS("x.created_at") ") ORDER BY x.id) FROM (SELECT * FROM pending x"
        "   WHERE x.room_id = rm.id AND x.state IN ('held', 'shadow')"
        "   AND (" FLAG("M") " OR x.sender_id = p.actor) ORDER BY x.id LIMIT 500) x), '[]')),"
        "  NULL, NULL FROM rm, p",
        NPARAMS},
    /* The held message takes the room's next seq now and is delivered like
     * any message; a concurrent decision finds it no longer held (the row
     * lock of pd), so it is approved once. */
    [M_APPROVE] = {"mod_approve",
        P "," ROOM_OF_WS ","
        " go AS (SELECT x.* FROM pending x, rm, p WHERE x.id = p.z::int8 AND x.room_id = rm.id"
        "  AND x.state = 'held' FOR UPDATE OF x),"
        " lk AS (SELECT r.id, r.kind FROM rooms r JOIN go ON r.id = go.room_id FOR UPDATE OF r),"
        " al AS (UPDATE rooms r SET last_seq = r.last_seq + 1," ROOM_TS " FROM lk WHERE r.id = lk.id"
        "  RETURNING r.id, r.last_seq, r.kind, r.last_ts),"
        " ins AS (INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body, kind,"
        "  parent_seq, created_at) SELECT al.id, al.last_seq, go.sender_id, go.client_msg_id,"
        "  go.body, CASE WHEN al.kind <> 'dialogue' THEN 'message' WHEN go.parent_seq IS NULL"
        "  THEN 'entry' ELSE 'reply' END, CASE WHEN al.kind = 'dialogue' THEN go.parent_seq END,"
        "  al.last_ts FROM al, go RETURNING seq),"
        " up AS (UPDATE pending x SET state = 'approved', decided_by = p.actor,"
        "  decided_at = now(), seq = ins.seq FROM go, ins, p WHERE x.id = go.id RETURNING 1),"
        LOG("approve", "go.sender_id", "(SELECT seq FROM ins)", "go.id", "NULL::jsonb")
        " SELECT 200, json_build_object('room', p.id1, 'pending', go.id, 'state', 'approved',"
        "  'seq', ins.seq), 'sync ' || p.id1 || ' ' || ins.seq,"
        "  p.id1 || ' ' || go.sender_id || ' ' || json_build_object('push', 'pending',"
        "   'room', p.id1, 'id', go.id, 'state', 'approved', 'seq', ins.seq,"
        "   'sender', go.sender_id, 'client_msg_id', go.client_msg_id)::text"
        " FROM go, ins, p WHERE (SELECT count(*) FROM up) + (SELECT count(*) FROM lg) >= 0",
        NPARAMS},
    /* Rejected: the body is dropped, nothing of it is kept. */
    [M_REJECT] = {"mod_reject",
        P "," ROOM_OF_WS ","
        " go AS (UPDATE pending x SET state = 'rejected', body = '', decided_by = p.actor,"
        "  decided_at = now() FROM rm, p WHERE x.id = p.z::int8 AND x.room_id = rm.id"
        "  AND x.state IN ('held', 'shadow') RETURNING x.*),"
        LOG("reject", "go.sender_id", "NULL::int8", "go.id", "NULL::jsonb")
        " SELECT 200, json_build_object('room', p.id1, 'pending', go.id, 'state', 'rejected'),"
        "  NULL, p.id1 || ' ' || go.sender_id || ' ' || json_build_object('push', 'pending',"
        "   'room', p.id1, 'id', go.id, 'state', 'rejected', 'sender', go.sender_id,"
        "   'client_msg_id', go.client_msg_id)::text"
        " FROM go, p WHERE (SELECT count(*) FROM lg) >= 0",
        NPARAMS},
    /* Gateways keep each room's mutes with its guidelines: "guidelines ws"
     * drops them, the next send loads the new ones. */
    [M_MUTE] = {"mod_mute",
        P "," SUBJECT ","
        " go AS (INSERT INTO mutes (workspace_id, room_id, person_id, until, muted_by, reason)"
        "  SELECT p.ws, (p.b->>'room_id')::uuid, t.person_id,"
        "   now() + make_interval(secs => (p.b->>'duration_s')::int), p.actor, p.b->>'reason'"
        "  FROM p, t, sc WHERE t.ok AND sc.ok"
        "  ON CONFLICT (workspace_id, coalesce(room_id, '00000000-0000-0000-0000-000000000000'),"
        "   person_id) DO UPDATE SET until = EXCLUDED.until, muted_by = EXCLUDED.muted_by,"
        "   reason = EXCLUDED.reason, created_at = now() RETURNING *),"
        " lg AS (INSERT INTO moderation_log (workspace_id, room_id, actor_id, action,"
        "  target_person, reason, detail) SELECT p.ws, go.room_id, p.actor, 'mute', go.person_id,"
        "  go.reason, jsonb_build_object('until', go.until, 'duration_s', p.b->'duration_s')"
        "  FROM go, p RETURNING 1)"
        " SELECT CASE WHEN t.ok THEN 200 ELSE 403 END, CASE WHEN t.ok THEN (SELECT"
        "  json_build_object('person_id', go.person_id, 'room_id', go.room_id, 'until', go.until,"
        "  'reason', go.reason) FROM go) ELSE " NOT_YOURS " END,"
        "  CASE WHEN t.ok THEN 'guidelines ' || p.ws END, NULL"
        " FROM p, t, sc WHERE sc.ok AND (SELECT count(*) FROM lg) >= 0",
        NPARAMS},
    [M_UNMUTE] = {"mod_unmute",
        P "," SUBJECT ","
        " go AS (DELETE FROM mutes u USING p, t, sc WHERE t.ok AND sc.ok AND u.workspace_id = p.ws"
        "  AND u.person_id = t.person_id"
        "  AND u.room_id IS NOT DISTINCT FROM (p.b->>'room_id')::uuid RETURNING u.*),"
        " lg AS (INSERT INTO moderation_log (workspace_id, room_id, actor_id, action,"
        "  target_person, reason) SELECT p.ws, go.room_id, p.actor, 'unmute', go.person_id,"
        "  p.b->>'reason' FROM go, p RETURNING 1)"
        " SELECT CASE WHEN t.ok THEN 200 ELSE 403 END, CASE WHEN t.ok THEN json_build_object("
        "  'person_id', t.person_id, 'room_id', p.b->>'room_id', 'lifted', EXISTS (SELECT 1"
        "  FROM go)) ELSE " NOT_YOURS " END, CASE WHEN t.ok THEN 'guidelines ' || p.ws END, NULL"
        " FROM p, t, sc WHERE sc.ok AND (SELECT count(*) FROM lg) >= 0",
        NPARAMS},
    [M_MUTES] = {"mod_mutes",
        P " SELECT 200, " ITEMS("json_build_object('person_id', u.person_id, 'room_id', u.room_id,"
                                " 'until', u.until, 'muted_by', u.muted_by, 'reason', u.reason,"
                                " 'at', u.created_at)", "u.until, u.person_id", "u.person_id") ","
        "  NULL, NULL FROM p LEFT JOIN mutes u ON u.workspace_id = p.ws AND u.until > now()"
        " GROUP BY p.ws",
        NPARAMS},
    /* Removed: out of the room's member list, refused at join until added
     * back (which lifts the ban), and taken out of the room on every
     * gateway now ("kick"). */
    [M_REMOVE] = {"mod_remove",
        P "," ROOM_OF_WS "," SUBJECT ","
        " go AS (SELECT t.person_id FROM t, rm WHERE t.ok),"
        " del AS (DELETE FROM room_members x USING go, rm WHERE x.room_id = rm.id"
        "  AND x.person_id = go.person_id RETURNING 1),"
        " ban AS (INSERT INTO room_bans (room_id, person_id, banned_by, reason)"
        "  SELECT rm.id, go.person_id, p.actor, p.b->>'reason' FROM go, rm, p"
        "  ON CONFLICT (room_id, person_id) DO UPDATE SET banned_by = EXCLUDED.banned_by,"
        "   reason = EXCLUDED.reason, created_at = now() RETURNING 1),"
        LOG("remove", "go.person_id", "NULL::int8", "NULL::int8", "NULL::jsonb")
        " SELECT CASE WHEN t.ok THEN 200 ELSE 403 END, CASE WHEN t.ok THEN json_build_object("
        "  'room_id', rm.id, 'person_id', t.person_id, 'removed', true) ELSE " NOT_YOURS " END,"
        "  CASE WHEN t.ok THEN 'kick ' || rm.id || ' ' || t.person_id || ' removed' END, NULL"
        " FROM rm, t, p"
        " WHERE (SELECT count(*) FROM del) + (SELECT count(*) FROM ban)"
        "  + (SELECT count(*) FROM lg) >= 0",
        NPARAMS},
    /* Locked (read-only but for moderators) and slow mode are room
     * settings; the change is an event in the room's log so members learn
     * it in order, also when they recover. */
    [M_SETTINGS] = {"mod_settings",
        P "," ROOM_OF_WS ","
        " go AS (SELECT rm.id FROM rm),"
        " lk AS (SELECT r.id FROM rooms r JOIN rm ON r.id = rm.id FOR UPDATE OF r),"
        " al AS (UPDATE rooms r SET last_seq = r.last_seq + 1," ROOM_TS ","
        "  locked = coalesce((p.b->>'locked')::bool, r.locked),"
        "  slow_mode_s = coalesce((p.b->>'slow_mode_s')::int, r.slow_mode_s)"
        "  FROM lk, p WHERE r.id = lk.id"
        "  RETURNING r.id, r.last_seq, r.locked, r.slow_mode_s, r.last_ts),"
        " ev AS (INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body, kind,"
        "  created_at) SELECT al.id, al.last_seq, p.actor, '~settings' || al.last_seq,"
        "  json_build_object('locked', al.locked, 'slow_mode_s', al.slow_mode_s)::text,"
        "  'settings', al.last_ts FROM al, p RETURNING seq),"
        LOG("settings", "NULL::uuid", "NULL::int8", "NULL::int8",
            "jsonb_build_object('locked', p.b->'locked', 'slow_mode_s', p.b->'slow_mode_s')")
        " SELECT 200, json_build_object('room', al.id, 'locked', al.locked,"
        "  'slow_mode_s', al.slow_mode_s, 'event_seq', ev.seq),"
        "  'guidelines ' || p.ws || ';sync ' || al.id || ' ' || ev.seq, NULL"
        " FROM al, ev, p WHERE (SELECT count(*) FROM lg) >= 0",
        NPARAMS},
    [M_LOG] = {"mod_log",
        P " SELECT 200, " ITEMS("json_build_object('id', l.id, 'room_id', l.room_id,"
                                " 'actor_id', l.actor_id, 'action', l.action,"
                                " 'target_person', l.target_person, 'target_seq', l.target_seq,"
                                " 'target_pending', l.target_pending, 'reason', l.reason,"
                                " 'detail', l.detail, 'at', l.at)", "l.id DESC", "l.id") ","
        "  NULL, NULL FROM p LEFT JOIN LATERAL (SELECT * FROM moderation_log l"
        "  WHERE l.workspace_id = p.ws AND (p.z = '' OR l.room_id = p.z::uuid)"
        "  ORDER BY l.id DESC LIMIT 200) l ON true GROUP BY p.ws",
        NPARAMS},
    /* The numbers a consultant reports: z is "from|to|format" (ISO times or
     * empty: the last 30 days). Response time: a reply's delay after its
     * entry, or in chat a message's delay after the previous one when it
     * came from someone else (a turn), at most a day apart. The series
     * counts the same per UTC day (per week, month or year for longer
     * ranges, so a chart gets at most a few hundred points), empty ones
     * included. */
    [M_EVAL] = {"mod_eval",
        P ", rng0 AS (SELECT coalesce(nullif(split_part(p.z, '|', 1), '')::timestamptz,"
        "   now() - interval '30 days') AS t0,"
        "  coalesce(nullif(split_part(p.z, '|', 2), '')::timestamptz, now()) AS t1 FROM p),"
        " rng AS (SELECT t0, t1, CASE WHEN t1 - t0 <= interval '92 days' THEN 'day'"
        "  WHEN t1 - t0 <= interval '731 days' THEN 'week'"
        "  WHEN t1 - t0 <= interval '36600 days' THEN 'month' ELSE 'year' END AS b FROM rng0),"
        " rs AS (SELECT r.id, r.name, r.kind, r.visibility FROM rooms r, p"
        "  WHERE r.workspace_id = p.ws AND (p.id1 IS NULL OR r.id = p.id1)),"
        " msg AS (SELECT m.* FROM messages m JOIN rs ON rs.id = m.room_id, rng"
        "  WHERE m.kind IN ('message', 'entry', 'reply') AND m.deleted_at IS NULL"
        "  AND m.created_at >= rng.t0 AND m.created_at < rng.t1),"
        " turns AS (SELECT extract(epoch from m.created_at - e.created_at) AS s,"
        "  m.created_at AS at FROM msg m"
        "  JOIN messages e ON e.room_id = m.room_id AND e.seq = m.parent_seq WHERE m.kind = 'reply'"
        "  UNION ALL SELECT s, at FROM (SELECT extract(epoch from created_at - lag(created_at)"
        "   OVER w) AS s, created_at AS at, sender_id <> lag(sender_id) OVER w AS other FROM msg"
        "   WHERE kind = 'message' WINDOW w AS (PARTITION BY room_id ORDER BY seq)) c"
        "  WHERE c.other AND c.s <= 86400),"
        " ppl AS (SELECT m.sender_id AS person, count(*) AS messages,"
        "  count(*) FILTER (WHERE m.kind = 'reply') AS replies,"
        "  sum(m.like_count) AS likes, sum(m.star_count) AS ratings, sum(m.star_sum) AS stars"
        "  FROM msg m GROUP BY m.sender_id),"
        " ent AS (SELECT m.room_id, m.seq, (SELECT count(DISTINCT x.person_id) FROM ("
        "   SELECT s.person_id FROM read_state s WHERE s.room_id = m.room_id AND s.up_to >= m.seq"
        "   UNION SELECT s.person_id FROM seen s WHERE s.room_id = m.room_id AND s.seq = m.seq) x)"
        "   AS seen, (SELECT count(*) FROM workspace_members wm, rs WHERE rs.id = m.room_id"
        "   AND wm.workspace_id = p.ws AND wm.removed_at IS NULL AND wm.role <> 'avatar'"
        "   AND (rs.visibility = 'workspace' OR EXISTS (SELECT 1 FROM room_members x"
        "    WHERE x.room_id = m.room_id AND x.person_id = wm.person_id))) AS of"
        "  FROM msg m, p WHERE m.kind = 'entry' ORDER BY m.room_id, m.seq LIMIT 1000),"
        " hits AS (SELECT h.rule_id, h.action, count(*) AS n FROM guideline_hits h"
        "  JOIN rs ON rs.id = h.room_id, rng WHERE h.at >= rng.t0 AND h.at < rng.t1"
        "  GROUP BY h.rule_id, h.action),"
        " mods AS (SELECT l.action, count(*) AS n FROM moderation_log l, rng, p"
        "  WHERE l.workspace_id = p.ws AND (p.id1 IS NULL OR l.room_id = p.id1)"
        "  AND l.at >= rng.t0 AND l.at < rng.t1 GROUP BY l.action),"
        " tot AS (SELECT count(*) AS messages, count(DISTINCT sender_id) AS active,"
        "  count(*) FILTER (WHERE kind = 'reply') AS replies, coalesce(sum(like_count), 0) AS likes,"
        "  coalesce(sum(star_count), 0) AS ratings, coalesce(sum(star_sum), 0) AS stars FROM msg),"
        " med AS (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY s) AS s, count(*) AS n"
        "  FROM turns),"
        " bk AS (SELECT g AT TIME ZONE 'UTC' AS t FROM rng, generate_series("
        "  date_trunc(rng.b, rng.t0 AT TIME ZONE 'UTC'),"
        "  (rng.t1 AT TIME ZONE 'UTC') - interval '1 microsecond', ('1 ' || rng.b)::interval) g),"
        " mb AS (SELECT date_trunc(rng.b, m.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS t,"
        "  count(*) AS n, count(DISTINCT m.sender_id) AS active,"
        "  sum(m.star_count) AS ratings, sum(m.star_sum) AS stars FROM msg m, rng GROUP BY 1),"
        " tb AS (SELECT date_trunc(rng.b, x.at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS t,"
        "  count(*) AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY x.s) AS s"
        "  FROM turns x, rng GROUP BY 1),"
        " j AS (SELECT json_build_object('workspace', p.ws, 'room', p.id1, 'from', rng.t0,"
        "  'to', rng.t1, 'messages', tot.messages, 'active_people', tot.active,"
        "  'replies', tot.replies, 'responses', med.n,"
        "  'median_response_s', round(med.s::numeric, 3), 'likes', tot.likes,"
        "  'ratings', tot.ratings, 'star_avg', CASE WHEN tot.ratings > 0"
        "   THEN round(tot.stars::numeric / tot.ratings, 2) END,"
        "  'people', coalesce((SELECT json_agg(json_build_object('person_id', x.person,"
        "   'messages', x.messages, 'replies', x.replies, 'likes_received', x.likes,"
        "   'ratings_received', x.ratings, 'star_avg_received', CASE WHEN x.ratings > 0"
        "   THEN round(x.stars::numeric / x.ratings, 2) END) ORDER BY x.messages DESC, x.person)"
        "   FROM ppl x), '[]'),"
        "  'entries', coalesce((SELECT json_agg(json_build_object('room', e.room_id, 'seq', e.seq,"
        "   'seen', e.seen, 'of', e.of, 'share', CASE WHEN e.of > 0"
        "   THEN round(least(e.seen, e.of)::numeric / e.of, 3) END) ORDER BY e.room_id, e.seq)"
        "   FROM ent e), '[]'),"
        "  'guideline_hits', coalesce((SELECT json_agg(json_build_object('rule', h.rule_id,"
        "   'action', h.action, 'count', h.n) ORDER BY h.n DESC, h.rule_id, h.action)"
        "   FROM hits h), '[]'),"
        "  'moderation', coalesce((SELECT json_agg(json_build_object('action', d.action,"
        "   'count', d.n) ORDER BY d.action) FROM mods d), '[]'),"
        "  'bucket', rng.b,"
        "  'series', coalesce((SELECT json_agg(json_build_object('at', bk.t,"
        "   'messages', coalesce(mb.n, 0), 'active_people', coalesce(mb.active, 0),"
        "   'responses', coalesce(tb.n, 0), 'median_response_s', round(tb.s::numeric, 3),"
        "   'ratings', coalesce(mb.ratings, 0), 'star_avg', CASE WHEN mb.ratings > 0"
        "   THEN round(mb.stars::numeric / mb.ratings, 2) END) ORDER BY bk.t)"
        "   FROM bk LEFT JOIN mb ON mb.t = bk.t LEFT JOIN tb ON tb.t = bk.t), '[]')) AS o"
        "  FROM p, rng, tot, med)"
        /* CSV: one row per figure, the same figures as the JSON. */
        " SELECT 200, CASE WHEN split_part(p.z, '|', 3) = 'csv' THEN"
        "  (SELECT string_agg(line, E'\\r\\n' ORDER BY k) || E'\\r\\n' FROM ("
        "   SELECT 0 AS k, 'section,room,person,rule,action,seq,metric,value' AS line"
        "   UNION ALL SELECT 1, 'total,' || coalesce(p.id1::text, '') || ',,,,,' || t.key || ','"
        "    || coalesce(t.value, '') FROM json_each_text(j.o) t"
        "    WHERE t.key NOT IN ('people', 'entries', 'guideline_hits', 'moderation', 'workspace',"
        "     'room', 'bucket', 'series')"
        "   UNION ALL SELECT 2, 'person,,' || x.person || ',,,,' || v.key || ',' || v.value"
        "    FROM ppl x, LATERAL (VALUES ('messages', x.messages::text),"
        "     ('replies', x.replies::text), ('likes_received', x.likes::text),"
        "     ('ratings_received', x.ratings::text)) v(key, value)"
        "   UNION ALL SELECT 3, 'entry,' || e.room_id || ',,,,' || e.seq || ',seen,' || e.seen"
        "    || ',' || e.of FROM ent e"
        "   UNION ALL SELECT 4, 'guideline_hit,,,' || " CSVQ("h.rule_id") " || ',' || h.action"
        "    || ',,count,' || h.n FROM hits h"
        "   UNION ALL SELECT 5, 'moderation,,,,' || d.action || ',,count,' || d.n FROM mods d) s)"
        "  ELSE j.o::text END, NULL, NULL"
        " FROM p, j WHERE p.id1 IS NULL OR EXISTS (SELECT 1 FROM rs)",
        NPARAMS},
};
struct stmts_table mod_sql = {"moderation", mod_stmts, M__COUNT, -1};
// clang-format on

/* ---- WebSocket ops ------------------------------------------------------- */

struct mreq {
    struct creq cr;  /* link to the connection */
    struct app *app; /* for effects after the connection closed */
    int64_t id;      /* command id */
    enum pp_err_code not_found;
};

static int global_stmt(enum mod_stmt s)
{
    return stmts_at(&mod_sql, (int)s);
}

static enum pp_err_code code_of(const char *name)
{
    for (int k = 1; k < PP_E__COUNT; k++)
        if (!strcmp(name, pp_err_name((enum pp_err_code)k))) return (enum pp_err_code)k;
    return PP_E_FORBIDDEN;
}

static void on_mod(void *ud, PGresult *res, int err)
{
    struct mreq *q = ud;
    struct conn *c = q->cr.c;
    int64_t id = q->id;
    enum pp_err_code nf = q->not_found;
    struct app *a = q->app;
    creq_unlink(&q->cr);
    mem_free(q);
    bool ok = !err && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (ok) ctl_effects(a, res);
    if (!c) return;
    if (err) {
        conn_reply_err(c, id, err == -ENOBUFS ? PP_E_BUSY : PP_E_UNAVAILABLE,
                       "storage unavailable, retry later");
        return;
    }
    if (!ok) {
        const char *st = db_sqlstate(res);
        log_error("moderation statement failed", "conn=%llu sqlstate=%s error=\"%s\"",
                  (unsigned long long)c->id, st, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
        conn_reply_err(c, id, !strcmp(st, "23505") ? PP_E_BAD_REQUEST : PP_E_INTERNAL,
                       !strcmp(st, "23505") ? "conflicts with a stored message" : "internal error");
        return;
    }
    if (PQntuples(res) == 0) {
        conn_reply_err(c, id, nf,
                       nf == PP_E_NO_SUCH_PENDING   ? "no such held message in the room"
                       : nf == PP_E_NO_SUCH_MESSAGE ? "no message with this seq in the room"
                                                    : "no such room or person in your workspace");
        return;
    }
    int status = atoi(PQgetvalue(res, 0, 0));
    const char *body = PQgetvalue(res, 0, 1);
    size_t len = (size_t)PQgetlength(res, 0, 1);
    if (status < 300) {
        conn_reply_ok(c, id, len ? body : "{}", len ? len : 2);
        return;
    }
    /* {"error":{"code":..,"field":..,"message":..}} made by the statement */
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    conn_reply_err(c, id, cJSON_IsString(code) ? code_of(code->valuestring) : PP_E_FORBIDDEN,
                   cJSON_IsString(msg) ? msg->valuestring : "forbidden");
    cJSON_Delete(j);
}

static void run(struct conn *c, int64_t id, enum mod_stmt s, const char *room, const char *body,
                const char *z, enum pp_err_code not_found)
{
    struct app *a = c->app;
    struct mreq *q = mem_calloc(1, sizeof *q);
    if (!q) {
        conn_reply_err(c, id, PP_E_INTERNAL, "out of memory");
        return;
    }
    q->app = a;
    q->id = id;
    q->not_found = not_found;
    char x[64] = "";
    int n = 0;
    for (int t = 0; t < ROLE__COUNT; t++)
        if (perm_manages((enum role)c->prole, (enum role)t))
            n += snprintf(x + n, sizeof x - (size_t)n, "%s%s", n ? "," : "", perm_role_name(t));
    /* the flags apireq_run (apireq.c) gives the same statements */
    char y[4] = "";
    int k = 0;
    if (perm_allows((enum role)c->prole, P_MODERATE)) y[k++] = 'M';
    if (perm_allows((enum role)c->prole, P_ROOMS_MANAGE)) y[k++] = 'r';
    /* id2: the session's token (auth set it), for the rooms it opens
     * (ROOM_OF_WS); never NULL here, which would open archived rooms */
    const char *v[NPARAMS] = {c->person, c->workspace, room,  c->token_id, body, x,
                              y,         z ? z : "",   c->ip, "|"};
    creq_link(c, &q->cr);
    int rc = db_query(a->db, -1, global_stmt(s), NPARAMS, v, NULL, NULL, on_mod, q);
    if (rc) {
        creq_unlink(&q->cr);
        mem_free(q);
        conn_reply_err(c, id, rc == -ENOBUFS ? PP_E_BUSY : PP_E_UNAVAILABLE,
                       "storage unavailable, retry later");
    }
}

/* The body parameter: the command's fields as the statements read them. */
static void body_of(const struct pp_cmd *cmd, char *buf, size_t cap)
{
    struct pp_w w;
    pp_w_init(&w, buf, cap - 1);
    pp_w_obj_begin(&w);
    if (cmd->reason.str) {
        pp_w_key(&w, "reason");
        pp_w_str(&w, cmd->reason.str, cmd->reason.len);
    }
    if (cmd->person.str) {
        pp_w_key(&w, "person_id");
        pp_w_str(&w, cmd->person.str, cmd->person.len);
    }
    if (cmd->room.str && (cmd->op == PP_OP_MUTE || cmd->op == PP_OP_UNMUTE)) {
        pp_w_key(&w, "room_id");
        pp_w_str(&w, cmd->room.str, cmd->room.len);
    }
    if (cmd->op == PP_OP_MUTE) {
        pp_w_key(&w, "duration_s");
        pp_w_int(&w, cmd->duration_s);
    }
    if (cmd->has_locked) {
        pp_w_key(&w, "locked");
        pp_w_bool(&w, cmd->locked);
    }
    if (cmd->has_slow_mode) {
        pp_w_key(&w, "slow_mode_s");
        pp_w_int(&w, cmd->slow_mode_s);
    }
    pp_w_obj_end(&w);
    int n = pp_w_finish(&w);
    buf[n > 0 ? n : 0] = 0;
}

void mod_edit(struct app *a, struct conn *c, int64_t id, const char *room, int64_t seq,
              const char *body, size_t len)
{
    (void)a;
    size_t cap = 32 + 6 * len;
    char *json = mem_alloc(cap);
    if (!json) {
        conn_reply_err(c, id, PP_E_INTERNAL, "out of memory");
        return;
    }
    struct pp_w w;
    pp_w_init(&w, json, cap - 1);
    pp_w_obj_begin(&w);
    pp_w_key(&w, "body");
    pp_w_str(&w, body, len);
    pp_w_obj_end(&w);
    int n = pp_w_finish(&w);
    json[n > 0 ? n : 0] = 0;
    char z[24];
    snprintf(z, sizeof z, "%lld", (long long)seq);
    run(c, id, M_EDIT, room, json, z, PP_E_NO_SUCH_MESSAGE);
    mem_free(json);
}

void mod_op(struct conn *c, const struct pp_cmd *cmd)
{
    enum perm need = P_MODERATE;
    enum mod_stmt s;
    enum pp_err_code nf = PP_E_ROOM_NOT_FOUND;
    char z[24] = "";
    switch (cmd->op) {
    case PP_OP_DELETE: /* own messages too: the statement decides */
        need = P_MSG_SEND;
        s = M_DELETE;
        nf = PP_E_NO_SUCH_MESSAGE;
        snprintf(z, sizeof z, "%lld", (long long)cmd->seq);
        break;
    case PP_OP_PENDING:
        need = P_ROOM_JOIN;
        s = M_PENDING;
        break;
    case PP_OP_APPROVE:
    case PP_OP_REJECT:
        s = cmd->op == PP_OP_APPROVE ? M_APPROVE : M_REJECT;
        nf = PP_E_NO_SUCH_PENDING;
        snprintf(z, sizeof z, "%lld", (long long)cmd->pending);
        break;
    case PP_OP_MUTE:
        s = M_MUTE;
        break;
    case PP_OP_UNMUTE:
        s = M_UNMUTE;
        break;
    case PP_OP_REMOVE:
        s = M_REMOVE;
        break;
    case PP_OP_ROOM_SETTINGS:
        s = M_SETTINGS;
        break;
    default:
        conn_reply_err(c, cmd->id, PP_E_UNKNOWN_OP, "unknown op");
        return;
    }
    if (!perm_allows((enum role)c->prole, need)) {
        conn_reply_err(c, cmd->id, PP_E_FORBIDDEN,
                       need == P_MODERATE ? "your role may not moderate" : "your role may not");
        return;
    }
    char body[1024];
    body_of(cmd, body, sizeof body);
    bool room_scoped = cmd->op != PP_OP_MUTE && cmd->op != PP_OP_UNMUTE;
    run(c, cmd->id, s, room_scoped ? cmd->room.str : NULL, body, z, nf);
}
