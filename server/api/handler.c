#include "handler.h"

#include "app.h"
#include "authq.h"
#include "conn.h"
#include "db.h"
#include "dbread.h"
#include "log.h"
#include "mem.h"
#include "moderation.h"
#include "perm.h"
#include "receipts.h"
#include "room.h"
#include "send.h"
#include "store.h"
#include "stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Commands of one connection awaiting an answer, at most: a client cannot
 * make the gateway hold unbounded work on its behalf. */
#define MAX_NREQS 1024

static struct ticket *ticket_new(struct conn *c, int64_t id, void *obj)
{
    struct ticket *t = mem_calloc(1, sizeof *t);
    if (!t) return NULL;
    t->id = id;
    t->obj = obj;
    t->t0 = uv_hrtime();
    creq_link(c, &t->cr);
    return t;
}

/* Takes the connection out of a completed ticket and frees it; NULL when the
 * connection closed meanwhile. */
static struct conn *ticket_done(struct ticket *t, int op, int64_t *id, void **obj)
{
    struct conn *c = t->cr.c;
    uint64_t t0 = t->t0;
    *id = t->id;
    if (obj) *obj = t->obj;
    creq_unlink(&t->cr);
    mem_free(t);
    if (c && op >= 0)
        stats_observe(&c->app->stats.op_seconds[op], (double)(uv_hrtime() - t0) / 1e9, 0);
    return c;
}

static void reply_db_error(struct conn *c, int64_t id, int err)
{
    if (err == -ENOBUFS)
        conn_reply_err(c, id, PP_E_BUSY, "server busy, retry later");
    else
        conn_reply_err(c, id, PP_E_UNAVAILABLE, "storage unavailable, retry later");
}

/* ---- join / leave -------------------------------------------------------- */

static int join_check(struct conn *c, struct sub *s, int64_t id);

static void on_join_check(void *ud, PGresult *res, int err)
{
    int64_t id;
    void *obj;
    struct conn *c = ticket_done(ud, -1, &id, &obj); /* joins are timed at their reply */
    struct sub *s = obj;
    if (!c || !s) return; /* closed, or left (the leave answered the join) */
    struct app *a = c->app;
    s->join->check = NULL;
    if (err) {
        reply_db_error(c, id, err);
        room_sub_leave(a, s);
    } else if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_error("join check failed", "conn=%llu sqlstate=%s", (unsigned long long)c->id,
                  db_sqlstate(res));
        conn_reply_err(c, id, PP_E_INTERNAL, "internal error");
        room_sub_leave(a, s);
    } else if (PQntuples(res) != 1) {
        /* The same answer for a room of another workspace, or one limited
         * to a list the person is not on, as for none at all: nobody learns
         * that a room they may not see exists. */
        conn_reply_err(c, id, PP_E_ROOM_NOT_FOUND, "no such room");
        room_sub_leave(a, s);
    } else if (PQgetvalue(res, 0, 0)[0] != 't') {
        conn_reply_err(c, id, PP_E_FORBIDDEN, "you may not join this room");
        room_sub_leave(a, s);
    } else if (s->join->epoch != a->access_epoch) {
        /* A room access change arrived while this check ran: its answer
         * may predate the change, so it is asked again. */
        int rc = join_check(c, s, id);
        if (rc) {
            reply_db_error(c, id, rc);
            room_sub_leave(a, s);
        }
    } else {
        room_sub_enter(a, s); /* answers when the room knows its position */
    }
}

/* Sends the join's authorisation query; 0, or a db_query error (the caller
 * answers and drops s). */
static int join_check(struct conn *c, struct sub *s, int64_t id)
{
    struct app *a = c->app;
    struct ticket *t = ticket_new(c, id, s);
    if (!t) return -ENOMEM;
    s->join->check = t;
    s->join->epoch = a->access_epoch;
    const char *v[5] = {s->room_id, c->workspace, c->person, c->token_id,
                        perm_allows((enum role)c->prole, P_ROOMS_MANAGE) ? "t" : "f"};
    int rc = db_query(a->db, -1, ST_JOIN_CHECK, 5, v, NULL, NULL, on_join_check, t);
    if (rc) {
        int64_t tid;
        ticket_done(t, -1, &tid, NULL);
        s->join->check = NULL;
    }
    return rc;
}

static void op_join(struct conn *c, const struct pp_cmd *cmd)
{
    struct app *a = c->app;
    if (!perm_allows((enum role)c->prole, P_ROOM_JOIN)) {
        conn_reply_err(c, cmd->id, PP_E_FORBIDDEN, "your role may not join rooms");
        return;
    }
    if (sub_find(c, cmd->room.str)) {
        conn_reply_err(c, cmd->id, PP_E_ALREADY_JOINED, "already joined");
        return;
    }
    if (c->nsubs >= a->cfg.max_rooms) {
        conn_reply_err(c, cmd->id, PP_E_TOO_MANY_ROOMS, "too many rooms on this connection");
        return;
    }
    struct sub *s = sub_new(c, cmd->room.str, cmd->id, cmd->has_since, cmd->since);
    if (!s) {
        conn_reply_err(c, cmd->id, PP_E_INTERNAL, "out of memory");
        return;
    }
    int rc = join_check(c, s, cmd->id);
    if (rc) {
        room_sub_leave(a, s);
        if (rc == -ENOMEM)
            conn_reply_err(c, cmd->id, PP_E_INTERNAL, "out of memory");
        else
            reply_db_error(c, cmd->id, rc);
    }
}

static void reply_room(struct conn *c, int64_t id, const char *room)
{
    char buf[64];
    struct pp_w w;
    pp_w_init(&w, buf, sizeof buf);
    pp_enc_leave_ok(&w, room);
    int n = pp_w_finish(&w);
    conn_reply_ok(c, id, buf, n > 0 ? (size_t)n : 0);
}

static void op_leave(struct conn *c, const struct pp_cmd *cmd)
{
    struct sub *s = sub_find(c, cmd->room.str);
    if (!s) {
        conn_reply_err(c, cmd->id, PP_E_NOT_JOINED, "not joined");
        return;
    }
    if (s->state == SUB_CHECKING || s->state == SUB_WAITING)
        conn_reply_err(c, s->join->id, PP_E_NOT_JOINED, "left before the join completed");
    room_sub_leave(c->app, s);
    reply_room(c, cmd->id, cmd->room.str);
}

/* ---- send ---------------------------------------------------------------- */

static struct sub *joined(struct conn *c, const struct pp_cmd *cmd)
{
    struct sub *s = sub_find(c, cmd->room.str);
    if (!s || s->state == SUB_CHECKING || s->state == SUB_WAITING) {
        conn_reply_err(c, cmd->id, PP_E_NOT_JOINED, "join the room first");
        return NULL;
    }
    return s;
}

static void op_send(struct conn *c, const struct pp_cmd *cmd)
{
    if (!joined(c, cmd)) return;
    if (!perm_allows((enum role)c->prole, P_MSG_SEND)) {
        conn_reply_err(c, cmd->id, PP_E_FORBIDDEN, "your role may not send messages");
        return;
    }
    /* The guidelines run before anything is stored or sent. */
    struct msgin in = {.op = PP_OP_SEND,
                       .id = cmd->id,
                       .cmid = cmd->client_msg_id,
                       .body = cmd->body,
                       .parent = cmd->has_parent ? cmd->parent : 0};
    memcpy(in.room, cmd->room.str, PP_UUID_LEN + 1);
    send_message(c->app, c, &in);
}

/* An edit passes the room's guidelines like a send. */
static void op_edit(struct conn *c, const struct pp_cmd *cmd)
{
    if (!joined(c, cmd)) return;
    if (!perm_allows((enum role)c->prole, P_MSG_SEND)) {
        conn_reply_err(c, cmd->id, PP_E_FORBIDDEN, "your role may not send messages");
        return;
    }
    struct msgin in = {.op = PP_OP_EDIT, .id = cmd->id, .body = cmd->body, .seq = cmd->seq};
    memcpy(in.room, cmd->room.str, PP_UUID_LEN + 1);
    send_message(c->app, c, &in);
}

/* ---- history ------------------------------------------------------------- */

struct hist_req {
    struct ticket t;            /* must be first: freed through the ticket */
    char room[PP_UUID_LEN + 1]; /* the room asked about */
    int limit;                  /* rows asked for (one more was fetched) */
    bool descending;            /* rows arrive newest first */
    bool entries;               /* an entries list (ST_ENTRIES rows, with reply counts) */
};

/* A page of messages (history) or of entries: the rows nearest the cursor
 * that fit the scratch buffer and well inside the out-queue limit; has_more
 * tells the client to page on. */
static void on_history(void *ud, PGresult *res, int err)
{
    struct hist_req *h = ud;
    struct hist_req copy = *h;
    int64_t id;
    struct conn *c = ticket_done(&h->t, copy.entries ? -1 : SO_HISTORY, &id, NULL); /* frees h */
    if (!c) return;
    struct app *a = c->app;
    if (err) {
        reply_db_error(c, id, err);
        return;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        conn_reply_err(c, id, PP_E_INTERNAL, "internal error");
        return;
    }
    int n = PQntuples(res);
    bool more = n > copy.limit;
    if (more) n = copy.limit;
    size_t budget = a->scratch_cap < a->cfg.outq_bytes / 2 ? a->scratch_cap : a->cfg.outq_bytes / 2;
    size_t used = 256;
    int k = 0;
    for (; k < n; k++) {
        size_t row =
            320 + 6 * (size_t)(PQgetlength(res, k, COL_BODY) + PQgetlength(res, k, COL_CMID));
        if (used + row > budget) break;
        used += row;
    }
    if (k < n) more = true;
    struct pp_w w;
    pp_w_init(&w, a->scratch + FRAME_PRE, a->scratch_cap);
    pp_enc_page_begin(&w, id, copy.room, copy.entries);
    for (int j = 0; j < k; j++) {
        int r = copy.descending ? k - 1 - j : j;
        struct pp_message m;
        store_row_message(res, r, copy.room, &m);
        /* entries say how many replies they have */
        pp_enc_page_item(&w, &m,
                         copy.entries ? strtoll(PQgetvalue(res, r, COL_REPLIES), NULL, 10) : -1);
    }
    pp_enc_page_end(&w, more);
    int len = pp_w_finish(&w);
    if (len < 0) {
        conn_reply_err(c, id, PP_E_INTERNAL, "reply too large");
        return;
    }
    conn_send_copy(c, a->scratch + FRAME_PRE, (size_t)len);
}

/* The pending request of a history or entries page (NULL: answered). */
static struct hist_req *hist_req_new(struct conn *c, const struct pp_cmd *cmd)
{
    struct hist_req *h = mem_calloc(1, sizeof *h);
    if (!h) {
        conn_reply_err(c, cmd->id, PP_E_INTERNAL, "out of memory");
        return NULL;
    }
    h->t.id = cmd->id;
    h->t.t0 = uv_hrtime();
    creq_link(c, &h->t.cr);
    memcpy(h->room, cmd->room.str, PP_UUID_LEN);
    h->limit = cmd->limit;
    return h;
}

/* floor: as dbread_query's (DBREAD_PRIMARY: the primary). */
static void hist_query(struct conn *c, struct hist_req *h, int64_t floor, int stmt, int n,
                       const char *const *v)
{
    int rc = dbread_query(c->app, h->room, floor, stmt, n, v, on_history, h);
    if (rc) {
        int64_t id;
        ticket_done(&h->t, -1, &id, NULL);
        reply_db_error(c, id, rc);
    }
}

static void op_history(struct conn *c, const struct pp_cmd *cmd)
{
    struct sub *s = joined(c, cmd);
    if (!s) return;
    struct hist_req *h = hist_req_new(c, cmd);
    if (!h) return;
    h->descending = !cmd->has_after;
    char cursor[24], lim[12];
    snprintf(cursor, sizeof cursor, "%lld",
             (long long)(cmd->has_after    ? cmd->after
                         : cmd->has_before ? cmd->before
                                           : INT64_MAX));
    snprintf(lim, sizeof lim, "%d", cmd->limit + 1);
    const char *v[3] = {h->room, cursor, lim};
    /* What the page must not miss is committed: what this gateway delivered
     * in the room, or the client's cursor when it is further (a client that
     * read on another gateway). A replica short of that leaves the page to
     * the primary. */
    int64_t floor = room_delivered(s->room);
    if (cmd->has_after && cmd->after > floor) floor = cmd->after;
    /* Never lowered: an older row's state (a delete, an edit, its votes)
     * changes with later seqs, and the page must show it as of what this
     * client already got. */
    if (cmd->has_before && cmd->before - 1 > floor) floor = cmd->before - 1;
    hist_query(c, h, floor, cmd->has_after ? ST_HIST_AFTER : ST_BEFORE, 3, v);
}

/* ---- ping and dispatch --------------------------------------------------- */

static void op_ping(struct conn *c, const struct pp_cmd *cmd)
{
    char buf[48];
    struct pp_w w;
    pp_w_init(&w, buf, sizeof buf);
    pp_enc_ping_ok(&w, app_wall_ms());
    int n = pp_w_finish(&w);
    conn_reply_ok(c, cmd->id, buf, n > 0 ? (size_t)n : 0);
}

typedef void (*op_fn)(struct conn *c, const struct pp_cmd *cmd);

/* ---- read state and votes ----------------------------------------------- */

static void op_receipt(struct conn *c, const struct pp_cmd *cmd)
{
    if (!joined(c, cmd)) return;
    bool vote = cmd->op == PP_OP_LIKE || cmd->op == PP_OP_UNLIKE || cmd->op == PP_OP_RATE ||
                cmd->op == PP_OP_UNRATE;
    if (vote && !perm_allows((enum role)c->prole, P_MSG_VOTE)) {
        conn_reply_err(c, cmd->id, PP_E_FORBIDDEN, "your role may not vote");
        return;
    }
    if (receipts_submit(c->app, c, cmd))
        conn_reply_err(c, cmd->id, PP_E_BUSY, "server busy, retry later");
}

/* A query whose first column (or second, after an existence flag) is the
 * JSON result, answered as is. */
struct jq {
    struct ticket t; /* must be first: freed through the ticket */
    bool exists_col; /* column 0 says whether the message exists */
};

static void on_json_query(void *ud, PGresult *res, int err)
{
    struct jq *q = ud;
    bool exists_col = q->exists_col;
    int64_t id;
    struct conn *c = ticket_done(&q->t, -1, &id, NULL); /* frees q */
    if (!c) return;
    if (err) {
        reply_db_error(c, id, err);
        return;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_error("query failed", "conn=%llu sqlstate=%s", (unsigned long long)c->id,
                  db_sqlstate(res));
        conn_reply_err(c, id, PP_E_INTERNAL, "internal error");
        return;
    }
    if (PQntuples(res) != 1 || (exists_col && PQgetvalue(res, 0, 0)[0] != 't')) {
        conn_reply_err(c, id, PP_E_NO_SUCH_MESSAGE, "no message with this seq in the room");
        return;
    }
    int col = exists_col ? 1 : 0;
    conn_reply_ok(c, id, PQgetvalue(res, 0, col), (size_t)PQgetlength(res, 0, col));
}

static void json_query(struct conn *c, int64_t id, int stmt, int n, const char *const *v,
                       bool exists_col)
{
    struct jq *q = mem_calloc(1, sizeof *q);
    if (!q) {
        conn_reply_err(c, id, PP_E_INTERNAL, "out of memory");
        return;
    }
    q->t.id = id;
    q->t.t0 = uv_hrtime();
    q->exists_col = exists_col;
    creq_link(c, &q->t.cr);
    int rc = db_query(c->app->db, -1, stmt, n, v, NULL, NULL, on_json_query, q);
    if (rc) {
        int64_t qid;
        ticket_done(&q->t, -1, &qid, NULL);
        reply_db_error(c, qid, rc);
    }
}

static void op_unread(struct conn *c, const struct pp_cmd *cmd)
{
    const char *v[3] = {c->workspace, c->person, c->token_id};
    json_query(c, cmd->id, ST_UNREAD, 3, v, false);
}

static void op_seen_by(struct conn *c, const struct pp_cmd *cmd)
{
    if (!joined(c, cmd)) return;
    char seq[24];
    snprintf(seq, sizeof seq, "%lld", (long long)cmd->seq);
    const char *v[2] = {cmd->room.str, seq};
    json_query(c, cmd->id, ST_SEEN_BY, 2, v, true);
}

static void op_seen_entries(struct conn *c, const struct pp_cmd *cmd)
{
    if (!joined(c, cmd)) return;
    const char *who = cmd->person.str ? cmd->person.str : c->person;
    if (strcmp(who, c->person) && !perm_allows((enum role)c->prole, P_RECEIPTS_OTHERS)) {
        conn_reply_err(c, cmd->id, PP_E_FORBIDDEN, "your role may not see what others read");
        return;
    }
    const char *v[2] = {cmd->room.str, who};
    json_query(c, cmd->id, ST_SEEN_ENTRIES, 2, v, false);
}

static void op_my_votes(struct conn *c, const struct pp_cmd *cmd)
{
    const char *v[3] = {c->workspace, c->person, cmd->room.str};
    json_query(c, cmd->id, ST_MY_VOTES, 3, v, false);
}

static void op_entries(struct conn *c, const struct pp_cmd *cmd)
{
    if (!joined(c, cmd)) return;
    struct hist_req *h = hist_req_new(c, cmd);
    if (!h) return;
    h->entries = true;
    char lim[12], off[12];
    snprintf(lim, sizeof lim, "%d", cmd->limit + 1);
    snprintf(off, sizeof off, "%d", cmd->offset);
    const char *v[4] = {h->room, cmd->by_rating ? "true" : "false", lim, off};
    hist_query(c, h, DBREAD_PRIMARY, ST_ENTRIES, 4, v); /* votes change: as they are now */
}

/* Typing is ephemeral: never stored, at most one event per connection per
 * second (more are answered "sent": false), shed first under pressure. */
static void op_typing(struct conn *c, const struct pp_cmd *cmd)
{
    struct sub *s = joined(c, cmd);
    if (!s) return;
    if (!perm_allows((enum role)c->prole, P_MSG_SEND)) {
        conn_reply_err(c, cmd->id, PP_E_FORBIDDEN, "your role may not send messages");
        return;
    }
    uint64_t now = app_now_ms(c->app);
    bool sent = !c->typing_at || now - c->typing_at >= 1000;
    if (sent) {
        c->typing_at = now;
        room_typing(c->app, s);
    }
    char buf[24];
    struct pp_w w;
    pp_w_init(&w, buf, sizeof buf);
    pp_enc_typing_ok(&w, sent);
    int n = pp_w_finish(&w);
    conn_reply_ok(c, cmd->id, buf, n > 0 ? (size_t)n : 0);
}

/* The op table. */
static const op_fn ops[] = {
    [PP_OP_AUTH] = authq_op, /* authq.c: batched look-ups, admission */
    [PP_OP_JOIN] = op_join,       [PP_OP_LEAVE] = op_leave,
    [PP_OP_SEND] = op_send,       [PP_OP_HISTORY] = op_history,
    [PP_OP_PING] = op_ping,       [PP_OP_READ] = op_receipt,
    [PP_OP_SEEN] = op_receipt,    [PP_OP_LIKE] = op_receipt,
    [PP_OP_UNLIKE] = op_receipt,  [PP_OP_RATE] = op_receipt,
    [PP_OP_UNRATE] = op_receipt,  [PP_OP_UNREAD] = op_unread,
    [PP_OP_SEEN_BY] = op_seen_by, [PP_OP_SEEN_ENTRIES] = op_seen_entries,
    [PP_OP_ENTRIES] = op_entries, [PP_OP_MY_VOTES] = op_my_votes,
    [PP_OP_TYPING] = op_typing,   [PP_OP_DELETE] = mod_op,
    [PP_OP_EDIT] = op_edit,       [PP_OP_PENDING] = mod_op,
    [PP_OP_APPROVE] = mod_op,     [PP_OP_REJECT] = mod_op,
    [PP_OP_MUTE] = mod_op,        [PP_OP_UNMUTE] = mod_op,
    [PP_OP_REMOVE] = mod_op,      [PP_OP_ROOM_SETTINGS] = mod_op,
};

void handler_dispatch(struct conn *c, const char *msg, size_t len)
{
    struct app *a = c->app;
    struct pp_cmd cmd;
    struct pp_err err;
    if (c->closing) return;
    if (pp_decode(msg, len, &a->plim, &cmd, &err)) {
        conn_reply_err(c, err.id, err.code, err.message);
        return;
    }
    if (a->draining)
        conn_reply_err(c, cmd.id, PP_E_UNAVAILABLE, "server shutting down, reconnect");
    else if (cmd.op != PP_OP_AUTH && !c->authed)
        conn_reply_err(c, cmd.id, PP_E_AUTH_REQUIRED, "authenticate first");
    else if (c->nreqs >= MAX_NREQS)
        conn_reply_err(c, cmd.id, PP_E_BUSY, "too many commands in flight");
    else if ((size_t)cmd.op < sizeof ops / sizeof ops[0] && ops[cmd.op])
        ops[cmd.op](c, &cmd);
    else
        conn_reply_err(c, cmd.id, PP_E_UNKNOWN_OP, "unknown op");
    pp_cmd_free(&cmd);
}
