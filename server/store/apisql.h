/*
 * apisql.h - the calling convention of the statements behind the HTTP API
 * (sql_*.c, rights.c) and the moderation ops (moderation.c), shared so one
 * request builder (apireq_run) serves all of them.
 */
#ifndef PARLEY_APISQL_H
#define PARLEY_APISQL_H

/* ---- SQL ------------------------------------------------------------------
 * Every API statement takes the same ten parameters, named in the CTE p:
 * the acting person, the path's workspace and ids, the validated body, and
 * x/y/z for what the route needs (x: the roles the actor manages, from
 * perm.c; y: flags; z: route-specific), then the client's IP and
 * User-Agent families for the visit log. Each answers rows of (status, body
 * JSON, control events, and optionally a targeted push; see ctl.h): no row
 * means 404. Every object is looked up under
 * p.ws, so another workspace's id finds nothing. */
#define P                                                                                          \
    "WITH p AS (SELECT $1::uuid AS actor, $2::uuid AS ws, $3::uuid AS id1, $4::uuid AS id2,"       \
    " $5::jsonb AS b, $6::text AS x, $7::text AS y, $8::text AS z, $9::text AS ip,"                \
    " $10::text AS ua)"
#define NPARAMS 10

#define ERR(code, field, msg)                                                                      \
    "json_build_object('error', json_build_object('code', '" code "', 'field', '" field            \
    "', 'message', '" msg "'))"
/* A list answer; key is NULL on the row an outer join makes when there is nothing. */
#define ITEMS(json, order, key)                                                                    \
    "json_build_object('items', coalesce(json_agg(" json " ORDER BY " order ") FILTER (WHERE " key \
    " IS NOT NULL), '[]'))"
#define MANAGES(role) "(" role " = ANY(string_to_array(p.x, ',')))"
#define FLAG(f) "(strpos(p.y, '" f "') > 0)"
/* Whether the actor may see room r (a rooms row alias): managers (flag r)
 * see every room of the workspace, others the rooms open to the workspace
 * and those listing them as members. A room the actor may not see is
 * answered exactly like one that does not exist. */
#define ROOM_SEEN(r)                                                                               \
    "(" FLAG("r") " OR " r ".visibility = 'workspace' OR EXISTS (SELECT 1 FROM room_members rsx"   \
                  " WHERE rsx.room_id = " r ".id AND rsx.person_id = p.actor))"
/* Room r (a rooms row alias) is one the access token tok (a uuid
 * expression) opens: every room, unless the token is scoped to some rooms
 * (an avatar's), then those. */
#define TOKEN_OPENS(tok, r)                                                                        \
    "NOT EXISTS (SELECT 1 FROM access_tokens tko WHERE tko.id = " tok                              \
    " AND tko.room_ids IS NOT NULL AND NOT " r ".id = ANY(tko.room_ids))"
/* Milliseconds since the epoch of a timestamptz expression. */
#define TS_MS(col) "(extract(epoch from " col ") * 1000)::int8"
/* Workspace id is not deleted (sql/011): a deleted workspace is, for
 * everyone and every route, one that does not exist. */
#define WS_LIVE(id)                                                                                \
    "NOT EXISTS (SELECT 1 FROM workspaces dw WHERE dw.id = " id " AND dw.deleted_at IS NOT NULL)"
/* The same rule where the workspace's row is wanted (its name): joined as
 * w on id only while it is not deleted ("JOIN " WS_ROW_LIVE(...)). */
#define WS_ROW_LIVE(w, id) "workspaces " w " ON " w ".id = " id " AND " w ".deleted_at IS NULL"
/* The SET clause that takes a room's time with its seq (rooms r, under the
 * row lock): a message's created_at is this last_ts, never now(), the start
 * of a transaction that may have waited for the lock while later ones took
 * lower seqs. GREATEST keeps the order if the clock steps back (sql/008). */
#define ROOM_TS " last_ts = GREATEST(clock_timestamp(), r.last_ts)"

#endif
