#include "store.h"

#include "apisql.h"
#include "app.h"
#include "batcher.h"
#include "bus.h"
#include "busfmt.h"
#include "conn.h"
#include "dbread.h"
#include "frame.h"
#include "log.h"
#include "mem.h"
#include "receipts.h"
#include "stats.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// clang-format off
#define ROW_COLS                                                                                   \
    "seq, sender_id::text, client_msg_id, body, " TS_MS("created_at") ","                          \
    " (SELECT is_avatar FROM people WHERE id = sender_id), kind, parent_seq, like_count,"          \
    " star_count, star_sum, votes_v, deleted_at IS NOT NULL, coalesce(" TS_MS("edited_at") ", 0)"
// clang-format on

// clang-format off
static const struct db_stmt store_stmts[ST__COUNT] = {
    /* One look-up for many tokens: $1 is [[hash hex, workspace or null],
     * ...]; at most two rows per item (more than one: the token is valid in
     * several workspaces), each tagged with its item's position (from 1). */
    [ST_AUTH] = {"auth",
                 "SELECT e.n, a.* FROM json_array_elements($1::json) WITH ORDINALITY e(v, n)"
                 " CROSS JOIN LATERAL (SELECT t.person_id::text, wm.workspace_id::text, wm.role,"
                 "  t.id::text, pe.is_avatar"
                 "  FROM access_tokens t JOIN people pe ON pe.id = t.person_id"
                 "  JOIN workspace_members wm ON wm.person_id = t.person_id"
                 "   AND wm.removed_at IS NULL AND NOT EXISTS (SELECT 1 FROM workspaces dw"
                 "    WHERE dw.id = wm.workspace_id AND dw.deleted_at IS NOT NULL)"
                 "   AND (t.workspace_id IS NULL OR wm.workspace_id = t.workspace_id)"
                 " WHERE t.hash = decode(e.v->>0, 'hex') AND t.revoked_at IS NULL"
                 "   AND (t.expires_at IS NULL OR t.expires_at > now())"
                 "   AND (e.v->>1 IS NULL OR wm.workspace_id = (e.v->>1)::uuid)"
                 " LIMIT 2) a ORDER BY e.n",
                 1},
    /* No row: a room the person may not even see (another workspace's, an
     * archived one, one outside an avatar token's rooms, or a members-only
     * room not listing them, unless they manage rooms): the same answer as
     * for no room at all. */
    [ST_JOIN_CHECK] = {"join_check",
                       "SELECT (r.visibility = 'workspace' OR EXISTS ("
                       "         SELECT 1 FROM room_members m"
                       "          WHERE m.room_id = r.id AND m.person_id = $3::uuid))"
                       "   AND NOT EXISTS (SELECT 1 FROM room_bans b"
                       "          WHERE b.room_id = r.id AND b.person_id = $3::uuid)"
                       "  FROM rooms r"
                       " WHERE r.id = $1::uuid AND r.workspace_id = $2::uuid"
                       "   AND r.archived_at IS NULL"
                       /* a token scoped to rooms (an avatar's) opens only those */
                       "   AND " TOKEN_OPENS("$4::uuid", "r")
                       "   AND ($5::bool OR r.visibility = 'workspace' OR EXISTS ("
                       "         SELECT 1 FROM room_members m"
                       "          WHERE m.room_id = r.id AND m.person_id = $3::uuid))",
                       5},
    [ST_LAST_SEQ] = {"last_seq", "SELECT last_seq FROM rooms WHERE id = $1::uuid", 1},
    /* A page of the room's log for catch-up and replay, bounded by rows and
     * by body bytes (a page of large bodies is short, one of small ones
     * long); the first row always comes, whatever its size. */
    [ST_FETCH] = {"fetch",
                  "SELECT " ROW_COLS " FROM (SELECT *,"
                  "  sum(octet_length(body)) OVER (ORDER BY seq) - octet_length(body) AS prior_bytes"
                  "  FROM messages WHERE room_id = $1::uuid AND seq > $2::int8"
                  "  ORDER BY seq LIMIT $3::int4) m"
                  " WHERE prior_bytes < $4::int8 ORDER BY seq",
                  4},
    [ST_BEFORE] = {"before",
                   "SELECT " ROW_COLS " FROM messages"
                   " WHERE room_id = $1::uuid AND seq < $2::int8"
                   "   AND kind IN ('message', 'entry', 'reply')"
                   " ORDER BY seq DESC LIMIT $3::int4",
                   3},
    /* History pages hold what people wrote; events are for live and replay. */
    [ST_HIST_AFTER] = {"hist_after",
                       "SELECT " ROW_COLS " FROM messages"
                       " WHERE room_id = $1::uuid AND seq > $2::int8"
                       "   AND kind IN ('message', 'entry', 'reply')"
                       " ORDER BY seq LIMIT $3::int4",
                       3},
    /* One statement, one implicit transaction. Rooms are locked in id order
     * (two gateways' batches never deadlock), seqs are taken from the locked
     * rows, rows already stored under the same (room, sender, client_msg_id)
     * are returned instead of inserted. */
    /* Sends and events. kind "auto" is a send: a message in a chat room,
     * an entry or (with a parent entry) a reply in a dialogue room; a parent
     * that is not an entry of this dialogue room refuses the send. */
    [ST_INSERT_BATCH] =
        {"insert_batch",
         "WITH input AS ("
         "  SELECT t.*, CASE WHEN t.kind <> 'auto' THEN t.kind"
         "    WHEN r.kind = 'dialogue' THEN CASE WHEN t.parent IS NULL THEN 'entry' ELSE 'reply' END"
         "    ELSE 'message' END AS k,"
         "   (t.parent IS NULL OR (r.kind = 'dialogue' AND pe.ok IS NOT NULL)) AS parent_ok,"
         /* an archived room takes nothing more, whatever a gateway still believes */
         "   r.archived_at IS NOT NULL AS archived"
         "  FROM json_to_recordset($1::json)"
         "    AS t(i int, room uuid, sender uuid, cmid text, body text, kind text, parent int8)"
         "  JOIN rooms r ON r.id = t.room"
         /* a probe in the item's room (as for existing below): an EXISTS
          * here may be planned as one hash of every room's entries */
         "  LEFT JOIN LATERAL (SELECT true AS ok FROM messages p WHERE p.room_id = t.room"
         "   AND p.seq = t.parent AND p.kind = 'entry' LIMIT 1) pe ON true),"
         /* A probe per item, not a join: the planner cannot know the
          * batch's rooms, and for a join it would read every partition of
          * messages (012); a lateral look-up reads the item's room's one.
          * LIMIT 1 (the key is unique) keeps it from being flattened. */
         " existing AS ("
         "  SELECT i.i, m.seq, m.created_at, m.body, m.kind, m.parent_seq FROM input i"
         "   CROSS JOIN LATERAL (SELECT x.seq, x.created_at, x.body, x.kind, x.parent_seq"
         "    FROM messages x WHERE x.room_id = i.room AND x.sender_id = i.sender"
         "    AND x.client_msg_id = i.cmid LIMIT 1) m),"
         " fresh AS ("
         "  SELECT i.*, row_number() OVER (PARTITION BY i.room ORDER BY i.i) AS rn"
         "    FROM input i WHERE i.parent_ok AND NOT i.archived"
         "    AND NOT EXISTS (SELECT 1 FROM existing e WHERE e.i = i.i)),"
         " counts AS (SELECT room, count(*) AS k FROM fresh GROUP BY room),"
         " locked AS ("
         "  SELECT r.id FROM rooms r WHERE r.id IN (SELECT room FROM counts)"
         "   ORDER BY r.id FOR UPDATE),"
         /* locked runs first, whole, as alloc's one-time filter: every room
          * is locked in id order before any is updated. (It was a join:
          * the planner, expecting one row, made it a nested loop rescanning
          * locked per room.) */
         " alloc AS ("
         "  UPDATE rooms r SET last_seq = r.last_seq + c.k," ROOM_TS " FROM counts c"
         "   WHERE r.id = c.room AND (SELECT count(*) FROM locked) > 0"
         "   RETURNING r.id, r.last_seq - c.k AS base, r.last_ts),"
         " placed AS ("
         "  SELECT f.i, f.room, a.base + f.rn AS seq, f.sender, f.cmid, f.body, f.k,"
         "   CASE WHEN f.k = 'reply' THEN f.parent END AS parent, a.last_ts"
         "   FROM fresh f JOIN alloc a ON a.id = f.room),"
         /* Runs to completion whether or not anything reads it, and an error
          * (a duplicate key) fails the whole statement: the answer is read
          * from placed, not joined back from the insert's RETURNING (which
          * a trigger rewriting messages' rows would need; there is none). */
         " ins AS ("
         "  INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body, kind, parent_seq,"
         "   created_at)"
         "  SELECT room, seq, sender, cmid, body, k, parent, last_ts FROM placed)"
         " SELECT p.i, p.seq, " TS_MS("p.last_ts") ", false, NULL, p.k, p.parent FROM placed p"
         " UNION ALL"
         " SELECT e.i, e.seq, " TS_MS("e.created_at") ", true, e.body, e.kind, e.parent_seq"
         "  FROM existing e"
         " UNION ALL"
         " SELECT i.i, 0, 0, false, NULL, CASE WHEN i.archived THEN 'archived' ELSE 'bad_parent'"
         "  END, NULL FROM input i"
         "  WHERE (i.archived OR NOT i.parent_ok)"
         "  AND NOT EXISTS (SELECT 1 FROM existing e WHERE e.i = i.i)",
         1},
    /* The visit log of one batch of sign-ins, in one statement (a peer whose
     * address lws could not tell is logged without one rather than failing
     * the batch's other rows). It is best
     * effort (a lost row must not fail a session), so its commit does not
     * wait for the WAL flush: set_config(..., true) lasts only for this
     * statement's own transaction (db.c syncs after every query). On durable
     * PostgreSQL a flush per batch would otherwise hold up every query
     * queued behind it on its connection. */
    [ST_VISIT] = {"visit",
                  "INSERT INTO visits (workspace_id, person_id, kind, ip, os, browser)"
                  " SELECT v.ws, v.person, 'websocket', NULLIF(v.ip, '')::inet, v.os, v.browser"
                  " FROM json_to_recordset($1::json)"
                  "  AS v(ws uuid, person uuid, ip text, os text, browser text)"
                  " WHERE set_config('synchronous_commit', 'off', true) = 'off'",
                  1},
    /* Answers the pairs that are no longer valid (usually none), so the
     * gateway's work is proportional to what it must close. */
    [ST_REVALIDATE] = {"revalidate",
                       "SELECT e->>0, e->>1 FROM json_array_elements($1::json) e"
                       " WHERE NOT EXISTS (SELECT 1 FROM access_tokens t"
                       "  JOIN workspace_members wm ON wm.person_id = t.person_id"
                       "   AND wm.workspace_id = (e->>1)::uuid AND wm.removed_at IS NULL"
                       "  JOIN " WS_ROW_LIVE("w", "wm.workspace_id")
                       "  WHERE t.id = (e->>0)::uuid AND t.revoked_at IS NULL"
                       "   AND (t.expires_at IS NULL OR t.expires_at > now())"
                       "   AND (t.workspace_id IS NULL OR t.workspace_id = wm.workspace_id))",
                       1},
    [ST_STATE_BATCH] = {"state_batch", receipts_batch_sql, 1},
    /* Unread: messages above the watermark, not mine, not seen out of order,
     * counted up to 10000 per room (a badge shows "9999+" anyway), in the
     * rooms I may join (join_check: not removed from it by a moderator, and
     * within the rooms the session's token $3 opens, when it is scoped). */
    [ST_UNREAD] = {"unread",
                   "SELECT json_build_object('rooms', coalesce(json_agg(json_build_object("
                   "  'room', r.id, 'last_seq', r.last_seq, 'up_to', coalesce(rs.up_to, 0),"
                   "  'unread', (SELECT count(*) FROM (SELECT 1 FROM messages m"
                   "   WHERE m.room_id = r.id AND m.seq > coalesce(rs.up_to, 0)"
                   "   AND m.kind IN ('message', 'entry', 'reply') AND m.sender_id <> $2::uuid"
                   "   AND NOT EXISTS (SELECT 1 FROM seen s WHERE s.room_id = m.room_id"
                   "    AND s.seq = m.seq AND s.person_id = $2::uuid) LIMIT 10000) u))"
                   "  ORDER BY r.name, r.id) FILTER (WHERE r.id IS NOT NULL), '[]'))"
                   " FROM (SELECT 1) one LEFT JOIN rooms r ON r.workspace_id = $1::uuid"
                   "  AND r.archived_at IS NULL AND (r.visibility = 'workspace' OR EXISTS ("
                   "   SELECT 1 FROM room_members rm WHERE rm.room_id = r.id AND rm.person_id = $2::uuid))"
                   "  AND NOT EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = r.id"
                   "   AND b.person_id = $2::uuid)"
                   "  AND " TOKEN_OPENS("$3::uuid", "r")
                   " LEFT JOIN read_state rs ON rs.room_id = r.id AND rs.person_id = $2::uuid",
                   3},
    /* Who has seen a message: everyone whose watermark covers it (the time
     * is when that watermark last moved) and everyone who saw it out of
     * order (the exact time); k of n, n being who may see the room. */
    [ST_SEEN_BY] = {"seen_by",
                    "SELECT m.kind IN ('message', 'entry', 'reply'), json_build_object("
                    "  'room', $1::uuid, 'seq', $2::int8, 'seen', coalesce((SELECT json_agg("
                    "   json_build_object('person', x.person_id, 'at', x.at, 'how', x.how)"
                    "   ORDER BY x.at, x.person_id) FROM ("
                    "    SELECT rs.person_id, rs.at, 'read' AS how FROM read_state rs"
                    "     WHERE rs.room_id = $1::uuid AND rs.up_to >= $2::int8"
                    "    UNION ALL SELECT s.person_id, s.at, 'seen' FROM seen s"
                    "     WHERE s.room_id = $1::uuid AND s.seq = $2::int8 AND NOT EXISTS ("
                    "      SELECT 1 FROM read_state rs WHERE rs.room_id = s.room_id"
                    "       AND rs.person_id = s.person_id AND rs.up_to >= s.seq)) x), '[]'),"
                    "  'count', (SELECT count(*) FROM read_state rs WHERE rs.room_id = $1::uuid"
                    "    AND rs.up_to >= $2::int8) + (SELECT count(*) FROM seen s"
                    "    WHERE s.room_id = $1::uuid AND s.seq = $2::int8 AND NOT EXISTS ("
                    "     SELECT 1 FROM read_state rs WHERE rs.room_id = s.room_id"
                    "      AND rs.person_id = s.person_id AND rs.up_to >= s.seq)),"
                    "  'of', (SELECT count(*) FROM rooms r JOIN workspace_members wm"
                    "    ON wm.workspace_id = r.workspace_id AND wm.removed_at IS NULL"
                    "    WHERE r.id = $1::uuid AND (r.visibility = 'workspace' OR EXISTS ("
                    "     SELECT 1 FROM room_members rm WHERE rm.room_id = r.id"
                    "      AND rm.person_id = wm.person_id))))"
                    " FROM messages m WHERE m.room_id = $1::uuid AND m.seq = $2::int8",
                    2},
    [ST_SEEN_ENTRIES] = {"seen_entries",
                         "SELECT json_build_object('room', $1::uuid, 'person', $2::uuid,"
                         "  'up_to', coalesce((SELECT up_to FROM read_state WHERE room_id = $1::uuid"
                         "   AND person_id = $2::uuid), 0),"
                         "  'seen', coalesce((SELECT json_agg(s.seq ORDER BY s.seq) FROM seen s"
                         "   WHERE s.room_id = $1::uuid AND s.person_id = $2::uuid), '[]'))",
                         2},
    [ST_ENTRIES] = {"entries",
                    "SELECT " ROW_COLS ", (SELECT count(*) FROM messages r WHERE r.room_id = m.room_id"
                    "  AND r.parent_seq = m.seq) FROM messages m"
                    " WHERE m.room_id = $1::uuid AND m.kind = 'entry'"
                    " ORDER BY CASE WHEN $2::bool THEN m.star_sum::float8 / nullif(m.star_count, 0)"
                    "  END DESC NULLS LAST, CASE WHEN $2::bool THEN m.star_count END DESC,"
                    "  m.seq DESC LIMIT $3::int4 OFFSET $4::int4",
                    4},
    [ST_MY_VOTES] = {"my_votes",
                     "SELECT json_build_object('likes', coalesce((SELECT json_agg(json_build_object("
                     "   'room', l.room_id, 'seq', l.seq, 'at', l.at) ORDER BY l.at DESC)"
                     "   FROM likes l JOIN rooms r ON r.id = l.room_id AND r.workspace_id = $1::uuid"
                     "   WHERE l.person_id = $2::uuid AND ($3::uuid IS NULL OR l.room_id = $3::uuid)),"
                     "  '[]'), 'ratings', coalesce((SELECT json_agg(json_build_object('room',"
                     "   g.room_id, 'seq', g.seq, 'stars', g.stars, 'at', g.at) ORDER BY g.at DESC)"
                     "   FROM ratings g JOIN rooms r ON r.id = g.room_id AND r.workspace_id = $1::uuid"
                     "   WHERE g.person_id = $2::uuid AND ($3::uuid IS NULL OR g.room_id = $3::uuid)),"
                     "  '[]'))",
                     3},
    /* A room's policy: its guidelines, lock, slow mode and active mutes. */
    [ST_GUIDELINES] = {"guidelines",
                       "SELECT (SELECT rules::text FROM guidelines WHERE workspace_id = $1::uuid"
                       "   AND room_id IS NULL),"
                       " (SELECT rules::text FROM guidelines WHERE workspace_id = $1::uuid"
                       "   AND room_id = $2::uuid),"
                       " r.locked, r.slow_mode_s, (SELECT coalesce(json_agg(json_build_array("
                       "   u.person_id, " TS_MS("u.until") ")), '[]') FROM (SELECT * FROM mutes u"
                       "   WHERE u.workspace_id = $1::uuid AND (u.room_id IS NULL"
                       "   OR u.room_id = $2::uuid) AND u.until > now() LIMIT 1000) u)"
                       " FROM rooms r WHERE r.id = $2::uuid AND r.workspace_id = $1::uuid",
                       2},
    /* A held or shadowed send: kept outside the room's sequence. A retry
     * with the same client_msg_id answers the row already kept. */
    [ST_PENDING_ADD] = {"pending_add",
                        "WITH ok AS (SELECT $5::int8 IS NULL OR (r.kind = 'dialogue' AND EXISTS ("
                        "   SELECT 1 FROM messages x WHERE x.room_id = r.id AND x.seq = $5::int8"
                        "   AND x.kind = 'entry')) AS ok, r.archived_at IS NOT NULL AS archived"
                        "  FROM rooms r WHERE r.id = $1::uuid),"
                        " ins AS (INSERT INTO pending (room_id, sender_id, client_msg_id, body,"
                        "   parent_seq, state, rules) SELECT $1::uuid, $2::uuid, $3, $4, $5::int8,"
                        "   $6, ARRAY(SELECT json_array_elements_text($7::json)) FROM ok"
                        "  WHERE ok.ok AND NOT ok.archived"
                        "  ON CONFLICT (room_id, sender_id, client_msg_id) DO NOTHING RETURNING *)"
                        " SELECT ok.ok, coalesce(ins.id, e.id), coalesce(ins.state, e.state),"
                        "  " TS_MS("coalesce(ins.created_at, e.created_at)") ", ins.id IS NULL,"
                        /* the push to the sender and the moderators, for a new one only */
                        "  (SELECT json_strip_nulls(json_build_object('push', 'pending',"
                        "   'room', ins.room_id, 'id', ins.id, 'state', ins.state,"
                        "   'sender', ins.sender_id, 'client_msg_id', ins.client_msg_id,"
                        "   'body', ins.body, 'parent', ins.parent_seq, 'rules', ins.rules,"
                        "   'ts', " TS_MS("ins.created_at") "))::text WHERE ins.id IS NOT NULL),"
                        "  ok.archived"
                        " FROM ok LEFT JOIN ins ON true LEFT JOIN pending e ON ins.id IS NULL"
                        "  AND e.room_id = $1::uuid AND e.sender_id = $2::uuid"
                        "  AND e.client_msg_id = $3",
                        7},
    [ST_HITS] = {"hits",
                 "INSERT INTO guideline_hits (workspace_id, room_id, person_id, rule_id, action, kind)"
                 " SELECT h.ws, h.room, h.person, h.rule, h.action, h.kind"
                 " FROM json_to_recordset($1::json)"
                 "  AS h(ws uuid, room uuid, person uuid, rule text, action text, kind text)",
                 1},
    /* The same rule as join_check, for joins already made: the room gone or
     * archived, the person removed from it by a moderator, or not on the
     * list of a members-only room. Usually no row. */
    [ST_ACCESS] = {"access",
                   "SELECT e->>0, e->>2, CASE WHEN r.id IS NULL THEN 'deleted'"
                   "  WHEN r.archived_at IS NOT NULL THEN 'archived'"
                   "  WHEN EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = r.id"
                   "   AND b.person_id = (e->>1)::uuid) THEN 'removed'"
                   "  ELSE 'not_a_member' END"
                   " FROM json_array_elements($1::json) e"
                   " LEFT JOIN rooms r ON r.id = (e->>0)::uuid"
                   " WHERE r.id IS NULL OR r.archived_at IS NOT NULL"
                   "  OR EXISTS (SELECT 1 FROM room_bans b WHERE b.room_id = r.id"
                   "   AND b.person_id = (e->>1)::uuid)"
                   "  OR NOT (r.visibility = 'workspace' OR EXISTS (SELECT 1 FROM room_members m"
                   "   WHERE m.room_id = r.id AND m.person_id = (e->>1)::uuid))",
                   1},
    [ST_SCHEMA] = {"schema", "SELECT coalesce(max(version), 0) FROM schema_migrations", 0},
};
struct stmts_table store_sql = {"store", store_stmts, ST__COUNT, -1};
// clang-format on

#define UNSENT_MAX 4096 /* rooms remembered with an unpublished message */

/* The highest seq of a room whose publish failed; announced with a sync
 * marker when the publish link returns, so every gateway catches up. */
struct unsent {
    char room[PP_UUID_LEN + 1]; /* room uuid */
    int64_t seq;                /* highest unpublished seq */
};

struct item {
    struct batch_item bi;         /* in the batcher's list */
    struct creq cr;               /* link to the sender's connection */
    struct item *dup_of;          /* an earlier item of the same batch with the same key */
    int64_t id;                   /* command id */
    uint64_t t0;                  /* uv_hrtime at receipt, for latency */
    uint64_t key;                 /* hash of (room, sender, client_msg_id) */
    char room[PP_UUID_LEN + 1];   /* room uuid */
    char sender[PP_UUID_LEN + 1]; /* person uuid */
    char *cmid;                   /* client_msg_id (inside this allocation) */
    size_t cmid_len;
    char *body; /* body (inside this allocation) */
    size_t body_len;
    int64_t seq, ts;      /* result */
    bool done, duplicate; /* result arrived; it was stored before */
    bool avatar;          /* the sender is an avatar */
    bool bad_parent;      /* result: refused, the parent is not an entry here */
    bool archived;        /* result: refused, the room is archived */
    enum pp_kind kind;    /* asked: PP_K_MESSAGE for a send (the room decides), or an event */
    int64_t parent;       /* send: the entry replied to, 0 for none */
    enum pp_kind stored;  /* result: what the row is */
};

/* The executor of the message batches (batcher.h does the batching). */
struct store_writer {
    struct app *app;          /* owner */
    struct store_hooks hooks; /* the way up (store.h) */
    struct batcher *b;        /* wait list, linger, the batch in flight */
    char *json;               /* the batch parameter */
    size_t json_cap;
    struct unsent unsent[UNSENT_MAX]; /* rooms to announce when the bus returns */
    uint32_t nunsent;                 /* entries in unsent */
};

#define ITEM(p) batcher_entry(p, struct item, bi)

static uint64_t key_of(const char *room, const char *sender, const char *cmid, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < PP_UUID_LEN; i++)
        h = (h ^ (unsigned char)room[i]) * 1099511628211ull;
    for (int i = 0; i < PP_UUID_LEN; i++)
        h = (h ^ (unsigned char)sender[i]) * 1099511628211ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)cmid[i]) * 1099511628211ull;
    return h;
}

static bool same_key(const struct item *x, const struct item *y)
{
    return x->key == y->key && x->cmid_len == y->cmid_len &&
           !memcmp(x->room, y->room, PP_UUID_LEN) && !memcmp(x->sender, y->sender, PP_UUID_LEN) &&
           !memcmp(x->cmid, y->cmid, x->cmid_len);
}

/* The same send twice in one batch would break the unique key and fail the
 * whole statement: the later copy takes the earlier's result. */
static int w_admit(void *ud, const struct batch *bt, struct batch_item *bi)
{
    (void)ud;
    struct item *it = ITEM(bi);
    for (uint32_t j = 0; j < bt->n; j++) {
        struct item *x = ITEM(bt->items[j]);
        if (!x->dup_of && same_key(x, it)) {
            it->dup_of = x;
            break;
        }
    }
    return BATCH_TAKE;
}

/* The batch as the JSON parameter: bodies are validated UTF-8, the writer
 * escapes them, PostgreSQL parses it once for all rows. */
static int w_encode(struct pp_w *pw, const struct batch *bt)
{
    pp_w_arr_begin(pw);
    for (uint32_t i = 0; i < bt->n; i++) {
        struct item *it = ITEM(bt->items[i]);
        if (it->dup_of) continue;
        pp_w_obj_begin(pw);
        pp_w_key(pw, "i");
        pp_w_int(pw, i);
        pp_w_key(pw, "room");
        pp_w_str(pw, it->room, PP_UUID_LEN);
        pp_w_key(pw, "sender");
        pp_w_str(pw, it->sender, PP_UUID_LEN);
        pp_w_key(pw, "cmid");
        pp_w_str(pw, it->cmid, it->cmid_len);
        pp_w_key(pw, "body");
        pp_w_str(pw, it->body, it->body_len);
        pp_w_key(pw, "kind");
        pp_w_cstr(pw, it->kind == PP_K_MESSAGE ? "auto" : pp_kind_name(it->kind));
        pp_w_key(pw, "parent");
        if (it->parent)
            pp_w_int(pw, it->parent);
        else
            pp_w_null(pw);
        pp_w_obj_end(pw);
    }
    pp_w_arr_end(pw);
    return pp_w_finish(pw);
}

/* An item's JSON besides its client_msg_id and body (escaped, 6 bytes a
 * byte at most): the keys, two uuids, the index, the longest kind and an
 * int64 parent, ~190 bytes. An estimate: batcher_json grows on a miss. */
#define ITEM_JSON_FIXED 256

static int w_build(void *ud, const struct batch *bt)
{
    struct store_writer *w = ud;
    stats_observe(&w->app->stats.batch_size, bt->n, 1);
    size_t need = 16;
    for (uint32_t i = 0; i < bt->n; i++)
        need += ITEM_JSON_FIXED + 6 * (ITEM(bt->items[i])->cmid_len + ITEM(bt->items[i])->body_len);
    return batcher_json(&w->json, &w->json_cap, need, w_encode, bt);
}

static int w_run(void *ud, const struct batch *bt)
{
    struct store_writer *w = ud;
    if (bt->tries > 1) w->app->stats.batch_retries++;
    return batcher_query(w->b, w->app->db, ST_INSERT_BATCH, w->json);
}

static void w_release(void *ud, struct batch_item *bi)
{
    (void)ud;
    struct item *it = ITEM(bi);
    creq_unlink(&it->cr);
    mem_free(it);
}

static bool w_pause(void *ud, struct batch_item *bi)
{
    (void)ud;
    struct conn *c = ITEM(bi)->cr.c;
    return c && conn_rx_pause(c);
}

/* Backpressure release: once the queue has room, read from everyone again. */
static void w_resume(void *ud)
{
    struct store_writer *w = ud;
    conn_rx_resume_all(w->app);
}

static void w_dispatch(void *ud, const struct batch *bt, void *res);
static void w_fail(void *ud, const struct batch *bt, int err, const char *sqlstate, void *res);

static const struct batcher_ops writer_ops = {
    .admit = w_admit,
    .build = w_build,
    .run = w_run,
    .dispatch = w_dispatch,
    .fail = w_fail,
    .release = w_release,
    .pause = w_pause,
    .resume = w_resume,
};

int store_batcher_new(struct app *a, const struct store_hooks *hooks)
{
    struct store_writer *w = mem_calloc(1, sizeof *w);
    if (!w) return -1;
    w->app = a;
    w->hooks = *hooks;
    struct batcher_cfg cfg = {a->cfg.batch_max, a->cfg.batch_queue_max, a->cfg.batch_delay_us};
    w->b = batcher_new(a->loop, &cfg, &writer_ops, w);
    if (!w->b) {
        mem_free(w);
        return -1;
    }
    a->writer = w;
    return 0;
}

void store_batcher_free(struct app *a)
{
    struct store_writer *w = a->writer;
    if (!w) return;
    batcher_free(w->b);
    mem_free(w->json);
    mem_free(w);
    a->writer = NULL;
}

bool store_congested(const struct app *a)
{
    return batcher_congested(a->writer->b);
}

bool store_idle(const struct app *a)
{
    return !a->writer || batcher_idle(a->writer->b);
}

void store_flush(struct app *a)
{
    batcher_flush(a->writer->b);
}

enum pp_kind store_kind(const char *s)
{
    for (int k = PP_K_MESSAGE; k <= PP_K_LAST; k++)
        if (!strcmp(s, pp_kind_name((enum pp_kind)k))) return (enum pp_kind)k;
    return PP_K_MESSAGE;
}

void store_row_message(PGresult *res, int row, const char *room, struct pp_message *m)
{
    memset(m, 0, sizeof *m);
    m->room = room;
    m->seq = strtoll(PQgetvalue(res, row, COL_SEQ), NULL, 10);
    m->sender = PQgetvalue(res, row, COL_SENDER);
    m->client_msg_id = PQgetvalue(res, row, COL_CMID);
    m->client_msg_id_len = (size_t)PQgetlength(res, row, COL_CMID);
    m->body = PQgetvalue(res, row, COL_BODY);
    m->body_len = (size_t)PQgetlength(res, row, COL_BODY);
    m->ts = strtoll(PQgetvalue(res, row, COL_TS), NULL, 10);
    m->avatar = PQgetvalue(res, row, COL_AVATAR)[0] == 't';
    m->kind = store_kind(PQgetvalue(res, row, COL_KIND));
    m->parent = strtoll(PQgetvalue(res, row, COL_PARENT), NULL, 10);
    m->has_votes = m->kind <= PP_K_REPLY;
    m->likes = strtoll(PQgetvalue(res, row, COL_LIKES), NULL, 10);
    m->stars = strtoll(PQgetvalue(res, row, COL_STARS), NULL, 10);
    m->star_sum = strtoll(PQgetvalue(res, row, COL_STAR_SUM), NULL, 10);
    m->votes_v = strtoll(PQgetvalue(res, row, COL_VOTES_V), NULL, 10);
    m->deleted = PQgetvalue(res, row, COL_DELETED)[0] == 't';
    m->edited = strtoll(PQgetvalue(res, row, COL_EDITED), NULL, 10);
}

int store_event(struct app *a, const char *room, const char *sender, enum pp_kind kind,
                const char *body, size_t len)
{
    struct batcher *b = a->writer->b;
    if (batcher_full(b)) return -EBUSY;
    struct item *it = mem_alloc(sizeof *it + 18 + len + 1);
    if (!it) return -ENOMEM;
    memset(it, 0, sizeof *it);
    it->t0 = uv_hrtime();
    it->kind = kind;
    memcpy(it->room, room, PP_UUID_LEN);
    memcpy(it->sender, sender, PP_UUID_LEN);
    /* Events need a client_msg_id of their own: "~" and 64 random bits. */
    it->cmid = (char *)(it + 1);
    uint64_t r = ((uint64_t)randombytes_random() << 32) | randombytes_random();
    it->cmid_len = (size_t)snprintf(it->cmid, 18, "~%016llx", (unsigned long long)r);
    it->body = it->cmid + 18;
    memcpy(it->body, body, len);
    it->body[len] = '\0';
    it->body_len = len;
    it->key = key_of(it->room, it->sender, it->cmid, it->cmid_len);
    it->cr.next = it->cr.prev = NULL; /* nobody to answer */
    a->stats.msgs_received++;
    batcher_add(b, &it->bi); /* not full: checked above */
    return 0;
}

int store_send(struct app *a, struct conn *c, int64_t id, const char *room,
               const struct pp_str *cmid, const struct pp_str *body, int64_t parent)
{
    struct batcher *b = a->writer->b;
    if (batcher_full(b)) return -EBUSY;
    struct item *it = mem_alloc(sizeof *it + cmid->len + body->len + 2);
    if (!it) return -EBUSY;
    memset(it, 0, sizeof *it);
    it->id = id;
    it->t0 = uv_hrtime();
    memcpy(it->room, room, PP_UUID_LEN);
    memcpy(it->sender, c->person, PP_UUID_LEN);
    it->avatar = c->avatar;
    it->cmid = (char *)(it + 1);
    memcpy(it->cmid, cmid->str, cmid->len);
    it->cmid[cmid->len] = '\0';
    it->cmid_len = cmid->len;
    it->body = it->cmid + cmid->len + 1;
    memcpy(it->body, body->str, body->len);
    it->body[body->len] = '\0';
    it->body_len = body->len;
    it->key = key_of(it->room, it->sender, it->cmid, it->cmid_len);
    it->parent = parent;
    creq_link(c, &it->cr);
    a->stats.msgs_received++;
    batcher_add(b, &it->bi); /* not full: checked above */
    return 0;
}

static void remember_unsent(struct store_writer *b, const char *room, int64_t seq)
{
    for (uint32_t i = 0; i < b->nunsent; i++)
        if (!memcmp(b->unsent[i].room, room, PP_UUID_LEN)) {
            if (seq > b->unsent[i].seq) b->unsent[i].seq = seq;
            return;
        }
    /* Full: that room's gateways learn of it from its next message instead. */
    if (b->nunsent == UNSENT_MAX) return;
    memcpy(b->unsent[b->nunsent].room, room, PP_UUID_LEN + 1);
    b->unsent[b->nunsent++].seq = seq;
}

/* A sync marker (busfmt.h) on the room's channel: gateways with members
 * there fetch up to seq. */
static int publish_marker(struct app *a, const char *room, int64_t seq)
{
    char ch[BUSFMT_CHAN_CAP], marker[BUSFMT_HDR_CAP];
    int chlen = busfmt_channel(ch, sizeof ch, room);
    int n = busfmt_marker(marker, sizeof marker, seq);
    if (chlen < 0 || n < 0) return -EINVAL;
    return bus_publish(a->bus, ch, (size_t)chlen, marker, (size_t)n);
}

void store_on_pub_up(void *ud)
{
    struct app *a = ud;
    struct store_writer *b = a->writer;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < b->nunsent; i++)
        if (publish_marker(a, b->unsent[i].room, b->unsent[i].seq))
            b->unsent[kept++] = b->unsent[i];
    b->nunsent = kept;
}

void store_announce(struct app *a, const char *room, int64_t seq)
{
    dbread_note(a, room, seq); /* a moderator's next page shows the change */
    if (publish_marker(a, room, seq) == 0) return;
    remember_unsent(a->writer, room, seq);            /* announced when the bus is back */
    a->writer->hooks.kick(a->writer->hooks.ud, room); /* local members fetch it now */
}

static void publish(struct app *a, struct item *it, const char *body, size_t body_len)
{
    char *p = a->scratch + FRAME_PRE;
    int h = busfmt_message_header(p, BUSFMT_HDR_CAP, it->seq);
    struct pp_message m = {
        .room = it->room,
        .seq = it->seq,
        .sender = it->sender,
        .client_msg_id = it->cmid,
        .client_msg_id_len = it->cmid_len,
        .body = body,
        .body_len = body_len,
        .ts = it->ts,
        .avatar = it->avatar,
        .kind = it->stored,
        .parent = it->parent,
    };
    int n = h < 0 ? -1 : pp_encode_message(p + h, a->scratch_cap - (size_t)h, &m);
    char ch[BUSFMT_CHAN_CAP];
    int chlen = busfmt_channel(ch, sizeof ch, it->room);
    if (n > 0 && chlen > 0 && bus_publish(a->bus, ch, (size_t)chlen, p, (size_t)(h + n)) == 0) {
        a->stats.bus_published++;
    } else {
        a->stats.bus_publish_failed++;
        a->writer->hooks.kick(a->writer->hooks.ud, it->room); /* members read PostgreSQL */
        remember_unsent(a->writer, it->room, it->seq);
    }
}

static void answer(struct item *it)
{
    struct conn *c = it->cr.c;
    if (!c) return;
    if (it->bad_parent || it->archived) {
        if (it->archived)
            conn_reply_err(c, it->id, PP_E_ROOM_ARCHIVED, "the room is archived; nothing stored");
        else
            conn_reply_err(c, it->id, PP_E_BAD_PARENT,
                           "parent: replies go to an entry of a dialogue room");
        return;
    }
    stats_observe(&c->app->stats.op_seconds[SO_SEND], (double)(uv_hrtime() - it->t0) / 1e9, 0);
    char buf[192];
    struct pp_w w;
    pp_w_init(&w, buf, sizeof buf);
    pp_enc_send_ok(&w, it->room, it->seq, it->ts, it->duplicate, it->stored);
    int n = pp_w_finish(&w);
    conn_reply_ok(c, it->id, buf, n > 0 ? (size_t)n : 0);
}

static void w_fail(void *ud, const struct batch *bt, int err, const char *sqlstate, void *res)
{
    (void)err; /* any outcome but a failed statement is answered alike */
    struct store_writer *w = ud;
    enum pp_err_code code = PP_E_INTERNAL;
    const char *msg = "could not store the message";
    if (sqlstate) {
        log_error("write batch failed", "sqlstate=%s size=%u error=\"%s\"", sqlstate, bt->n,
                  PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
    } else {
        /* The batch may or may not have committed; a retry with the same
         * client_msg_id returns the stored row if it did. */
        code = PP_E_UNAVAILABLE;
        msg = "storage unavailable, retry with the same client_msg_id";
    }
    w->app->stats.batch_failures++;
    for (uint32_t i = 0; i < bt->n; i++) {
        struct item *it = ITEM(bt->items[i]);
        if (it->cr.c) {
            conn_reply_err(it->cr.c, it->id, code, msg);
        }
    }
}

static void w_dispatch(void *ud, const struct batch *bt, void *res_)
{
    struct store_writer *w = ud;
    struct app *a = w->app;
    PGresult *res = res_;
    a->stats.batches++;
    stats_observe(&a->stats.commit_seconds, (double)(uv_hrtime() - bt->t0) / 1e9, 0);
    int n = PQntuples(res);
    for (int r = 0; r < n; r++) {
        long i = strtol(PQgetvalue(res, r, 0), NULL, 10);
        if (i < 0 || (uint32_t)i >= bt->n) continue;
        struct item *it = ITEM(bt->items[i]);
        it->done = true;
        if (!strcmp(PQgetvalue(res, r, 5), "bad_parent")) {
            it->bad_parent = true;
            continue;
        }
        if (!strcmp(PQgetvalue(res, r, 5), "archived")) {
            it->archived = true;
            continue;
        }
        it->seq = strtoll(PQgetvalue(res, r, 1), NULL, 10);
        it->ts = strtoll(PQgetvalue(res, r, 2), NULL, 10);
        it->duplicate = PQgetvalue(res, r, 3)[0] == 't';
        it->stored = store_kind(PQgetvalue(res, r, 5));
        it->parent = strtoll(PQgetvalue(res, r, 6), NULL, 10);
        dbread_note(a, it->room, it->seq); /* the sender's next page must hold it */
        if (it->duplicate) {
            a->stats.msgs_duplicate++;
            /* Published again in case the first publish was lost;
             * receivers drop seqs they have delivered. */
            publish(a, it, PQgetvalue(res, r, 4), (size_t)PQgetlength(res, r, 4));
        } else {
            a->stats.msgs_persisted++;
            publish(a, it, it->body, it->body_len);
        }
    }
    for (uint32_t i = 0; i < bt->n; i++) {
        struct item *it = ITEM(bt->items[i]);
        if (it->dup_of) {
            it->seq = it->dup_of->seq;
            it->ts = it->dup_of->ts;
            it->stored = it->dup_of->stored;
            it->parent = it->dup_of->parent;
            it->bad_parent = it->dup_of->bad_parent;
            it->archived = it->dup_of->archived;
            it->duplicate = !it->bad_parent && !it->archived;
            it->done = it->dup_of->done;
        }
        if (it->done)
            answer(it);
        else if (it->cr.c) {
            conn_reply_err(it->cr.c, it->id, PP_E_INTERNAL, "not stored");
        }
    }
}
