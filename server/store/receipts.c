#include "receipts.h"

#include "app.h"
#include "batcher.h"
#include "conn.h"
#include "db.h"
#include "log.h"
#include "mem.h"
#include "stats.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PENDING_MAX 4096 /* coalesced events waiting for their interval */

/* One command. */
struct ritem {
    struct batch_item bi;         /* in the batcher's list */
    struct creq cr;               /* link to the connection */
    int64_t id;                   /* command id */
    uint64_t t0;                  /* uv_hrtime at receipt */
    enum pp_op op;                /* read, seen, like, unlike, rate, unrate */
    char room[PP_UUID_LEN + 1];   /* room */
    char person[PP_UUID_LEN + 1]; /* who */
    int64_t seq;                  /* the message (read: up to) */
    int stars;                    /* rate */
    bool answered;                /* its row came (an item is answered once) */
};

/* An event waiting for its coalescing interval. */
struct pend {
    enum pp_kind kind;                 /* PP_K_READ or PP_K_VOTES */
    char room[PP_UUID_LEN + 1];        /* room */
    char person[PP_UUID_LEN + 1];      /* read: the reader; votes: the last voter */
    int64_t seq;                       /* read: up to; votes: the message */
    bool dialogue;                     /* votes: stars (entry, reply) or likes (message) */
    int64_t likes, stars, star_sum, v; /* votes: aggregates and their version */
};

struct receipts {
    struct app *app;   /* owner */
    struct batcher *b; /* wait list, linger, the batch in flight */
    char *json;        /* batch parameter */
    size_t json_cap;
    uv_timer_t coalesce; /* flushes pending events every coalesce_ms */
    struct pend *pend;   /* pending events */
    uint32_t npend;
};

#define RITEM(p) batcher_entry(p, struct ritem, bi)

/* One statement per batch. Each item gets a status: a read beyond the room's
 * last seq, a vote or seen on a seq that is not a message, a like on a
 * dialogue entry or a rating on a chat message are refused and store
 * nothing. Aggregates change by deltas under the message row's lock, so
 * concurrent batches of two gateways add up. */
// clang-format off
const char receipts_batch_sql[] =
    "WITH input AS (SELECT * FROM json_to_recordset($1::json)"
    "  AS t(i int, k text, room uuid, person uuid, seq int8, stars int)),"
    " chk AS (SELECT i.*, r.broadcast_reads AS br, m.kind AS mk, CASE"
    "   WHEN i.k = 'read' THEN CASE WHEN i.seq > r.last_seq THEN 'no_such_message' ELSE 'ok' END"
    /* event rows (votes, read, delete, edit, settings) are in the log but are no messages */
    "   WHEN m.kind IS NULL OR m.kind NOT IN ('message', 'entry', 'reply') THEN 'no_such_message'"
    "   WHEN i.k IN ('like', 'unlike') AND m.kind <> 'message' THEN 'likes_not_allowed'"
    "   WHEN i.k IN ('rate', 'unrate') AND m.kind NOT IN ('entry', 'reply')"
    "    THEN 'ratings_not_allowed'"
    "   ELSE 'ok' END AS st"
    "  FROM input i JOIN rooms r ON r.id = i.room"
    /* A probe per item in its room's partition (sql/012): a join here may
     * be planned as a hash join over every partition. LIMIT 1 (the key is
     * unique) keeps it a probe. */
    "  LEFT JOIN LATERAL (SELECT x.kind FROM messages x WHERE x.room_id = i.room"
    "   AND x.seq = i.seq LIMIT 1) m ON true),"
    " ok AS (SELECT * FROM chk WHERE st = 'ok'),"
    " rd AS (INSERT INTO read_state AS rs (room_id, person_id, up_to)"
    "  SELECT room, person, max(seq) FROM ok WHERE k = 'read' GROUP BY room, person"
    "  ON CONFLICT (room_id, person_id) DO UPDATE SET up_to = greatest(rs.up_to, EXCLUDED.up_to),"
    "   at = CASE WHEN EXCLUDED.up_to > rs.up_to THEN now() ELSE rs.at END"
    "  RETURNING room_id, person_id, up_to),"
    /* Seen rows only above the watermark: reading in order costs no rows. */
    " sn AS (INSERT INTO seen (room_id, seq, person_id)"
    "  SELECT o.room, o.seq, o.person FROM ok o WHERE o.k = 'seen'"
    "   AND NOT EXISTS (SELECT 1 FROM read_state rs WHERE rs.room_id = o.room"
    "    AND rs.person_id = o.person AND rs.up_to >= o.seq)"
    "  ON CONFLICT DO NOTHING RETURNING 1),"
    " lk AS (INSERT INTO likes (room_id, seq, person_id)"
    "  SELECT room, seq, person FROM ok WHERE k = 'like' ON CONFLICT DO NOTHING"
    "  RETURNING room_id, seq),"
    " ul AS (DELETE FROM likes l USING ok WHERE ok.k = 'unlike' AND l.room_id = ok.room"
    "  AND l.room_id = ANY ((SELECT array_agg(DISTINCT room) FROM input)::uuid[])"
    "  AND l.seq = ok.seq AND l.person_id = ok.person RETURNING l.room_id, l.seq),"
    /* The subquery in RETURNING sees the rating before this statement. */
    " rt AS (INSERT INTO ratings AS ra (room_id, seq, person_id, stars)"
    "  SELECT room, seq, person, stars FROM ok WHERE k = 'rate'"
    "  ON CONFLICT (room_id, seq, person_id) DO UPDATE SET stars = EXCLUDED.stars, at = now()"
    "  RETURNING ra.room_id, ra.seq, ra.stars, (SELECT r0.stars FROM ratings r0"
    "   WHERE r0.room_id = ra.room_id AND r0.seq = ra.seq AND r0.person_id = ra.person_id) AS old),"
    " ur AS (DELETE FROM ratings ra USING ok WHERE ok.k = 'unrate' AND ra.room_id = ok.room"
    "  AND ra.room_id = ANY ((SELECT array_agg(DISTINCT room) FROM input)::uuid[])"
    "  AND ra.seq = ok.seq AND ra.person_id = ok.person RETURNING ra.room_id, ra.seq, ra.stars),"
    " d AS (SELECT room_id, seq, 1 AS dl, 0 AS dc, 0 AS ds FROM lk"
    "  UNION ALL SELECT room_id, seq, -1, 0, 0 FROM ul"
    "  UNION ALL SELECT room_id, seq, 0, CASE WHEN old IS NULL THEN 1 ELSE 0 END,"
    "   stars - coalesce(old, 0) FROM rt"
    "  UNION ALL SELECT room_id, seq, 0, -1, -stars FROM ur),"
    " agg AS (UPDATE messages m SET like_count = m.like_count + x.dl,"
    "   star_count = m.star_count + x.dc, star_sum = m.star_sum + x.ds, votes_v = m.votes_v + 1"
    "  FROM (SELECT room_id, seq, sum(dl) AS dl, sum(dc) AS dc, sum(ds) AS ds FROM d"
    "   GROUP BY room_id, seq) x"
    "  WHERE m.room_id = x.room_id AND m.seq = x.seq"
    /* the batch's rooms, known before the scan: whatever join the planner
     * picks, it reads only their partitions (sql/012) */
    "   AND m.room_id = ANY ((SELECT array_agg(DISTINCT room) FROM input)::uuid[])"
    "  RETURNING m.room_id, m.seq, m.like_count, m.star_count, m.star_sum, m.votes_v)"
    " SELECT c.i, c.st, c.br, rd.up_to, agg.like_count, agg.star_count, agg.star_sum,"
    "  agg.votes_v, c.mk"
    " FROM chk c"
    " LEFT JOIN rd ON c.k = 'read' AND c.st = 'ok' AND rd.room_id = c.room"
    "  AND rd.person_id = c.person"
    " LEFT JOIN agg ON c.k NOT IN ('read', 'seen') AND c.st = 'ok' AND agg.room_id = c.room"
    "  AND agg.seq = c.seq"
    " WHERE (SELECT count(*) FROM sn) >= 0";
// clang-format on

static const char *op_key(enum pp_op op)
{
    switch (op) {
    case PP_OP_READ:
        return "read";
    case PP_OP_SEEN:
        return "seen";
    case PP_OP_LIKE:
        return "like";
    case PP_OP_UNLIKE:
        return "unlike";
    case PP_OP_RATE:
        return "rate";
    default:
        return "unrate";
    }
}

static void on_coalesce(uv_timer_t *t);

/* Two items on the same vote may not share a batch: the upsert would touch
 * one row twice, and the order of like and unlike would be a guess. */
static bool clash(const struct ritem *x, const struct ritem *y)
{
    bool vx = x->op == PP_OP_LIKE || x->op == PP_OP_UNLIKE;
    bool vy = y->op == PP_OP_LIKE || y->op == PP_OP_UNLIKE;
    bool rx = x->op == PP_OP_RATE || x->op == PP_OP_UNRATE;
    bool ry = y->op == PP_OP_RATE || y->op == PP_OP_UNRATE;
    return ((vx && vy) || (rx && ry)) && x->seq == y->seq && !strcmp(x->room, y->room) &&
           !strcmp(x->person, y->person);
}

static int r_admit(void *ud, const struct batch *bt, struct batch_item *bi)
{
    (void)ud;
    for (uint32_t j = 0; j < bt->n; j++)
        if (clash(RITEM(bt->items[j]), RITEM(bi))) return BATCH_CUT; /* next batch */
    return BATCH_TAKE;
}

static int r_encode(struct pp_w *w, const struct batch *bt)
{
    pp_w_arr_begin(w);
    for (uint32_t i = 0; i < bt->n; i++) {
        const struct ritem *it = RITEM(bt->items[i]);
        pp_w_obj_begin(w);
        pp_w_key(w, "i");
        pp_w_int(w, i);
        pp_w_key(w, "k");
        pp_w_cstr(w, op_key(it->op));
        pp_w_key(w, "room");
        pp_w_str(w, it->room, PP_UUID_LEN);
        pp_w_key(w, "person");
        pp_w_str(w, it->person, PP_UUID_LEN);
        pp_w_key(w, "seq");
        pp_w_int(w, it->seq);
        pp_w_key(w, "stars");
        pp_w_int(w, it->stars);
        pp_w_obj_end(w);
    }
    pp_w_arr_end(w);
    return pp_w_finish(w);
}

/* ~175 bytes an item at most; an estimate (batcher_json grows on a miss). */
static int r_build(void *ud, const struct batch *bt)
{
    struct receipts *r = ud;
    return batcher_json(&r->json, &r->json_cap, 16 + (size_t)bt->n * 192, r_encode, bt);
}

static int r_run(void *ud, const struct batch *bt)
{
    (void)bt;
    struct receipts *r = ud;
    return batcher_query(r->b, r->app->db, ST_STATE_BATCH, r->json);
}

static void r_release(void *ud, struct batch_item *bi)
{
    (void)ud;
    struct ritem *it = RITEM(bi);
    creq_unlink(&it->cr);
    mem_free(it);
}

static void r_dispatch(void *ud, const struct batch *bt, void *res);
static void r_fail(void *ud, const struct batch *bt, int err, const char *sqlstate, void *res);

/* No backpressure here: a receipt is small and its sender waits for it. */
static const struct batcher_ops receipts_ops = {
    .admit = r_admit,
    .build = r_build,
    .run = r_run,
    .dispatch = r_dispatch,
    .fail = r_fail,
    .release = r_release,
};

int receipts_new(struct app *a)
{
    struct receipts *r = mem_calloc(1, sizeof *r);
    if (!r) return -1;
    r->app = a;
    struct batcher_cfg cfg = {a->cfg.batch_max, a->cfg.batch_queue_max, a->cfg.batch_delay_us};
    r->b = batcher_new(a->loop, &cfg, &receipts_ops, r);
    r->pend = mem_calloc(PENDING_MAX, sizeof *r->pend);
    if (!r->b || !r->pend) {
        if (r->b) batcher_free(r->b);
        mem_free(r->pend);
        mem_free(r);
        return -1;
    }
    uv_timer_init(a->loop, &r->coalesce);
    r->coalesce.data = r;
    a->receipts = r;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct receipts *r = h->data;
    mem_free(r->pend);
    mem_free(r->json);
    mem_free(r);
}

void receipts_free(struct app *a)
{
    struct receipts *r = a->receipts;
    if (!r) return;
    batcher_free(r->b);
    uv_timer_stop(&r->coalesce);
    uv_close((uv_handle_t *)&r->coalesce, on_closed);
    a->receipts = NULL;
}

bool receipts_idle(const struct app *a)
{
    const struct receipts *r = a->receipts;
    return !r || (batcher_idle(r->b) && !r->npend);
}

int receipts_submit(struct app *a, struct conn *c, const struct pp_cmd *cmd)
{
    struct receipts *r = a->receipts;
    if (batcher_full(r->b)) return -EBUSY;
    struct ritem *it = mem_calloc(1, sizeof *it);
    if (!it) return -EBUSY;
    it->id = cmd->id;
    it->t0 = uv_hrtime();
    it->op = cmd->op;
    memcpy(it->room, cmd->room.str, PP_UUID_LEN);
    memcpy(it->person, c->person, PP_UUID_LEN);
    it->seq = cmd->seq;
    it->stars = cmd->stars;
    creq_link(c, &it->cr);
    a->stats.receipts_received++;
    batcher_add(r->b, &it->bi); /* not full: checked above */
    return 0;
}

/* ---- coalesced events ---------------------------------------------------- */

static struct pend *pend_slot(struct receipts *r, enum pp_kind kind, const char *room,
                              const char *person, int64_t seq)
{
    for (uint32_t i = 0; i < r->npend; i++) {
        struct pend *p = &r->pend[i];
        if (p->kind != kind || strcmp(p->room, room)) continue;
        if (kind == PP_K_READ ? !strcmp(p->person, person) : p->seq == seq) return p;
    }
    if (r->npend == PENDING_MAX) return NULL;
    struct pend *p = &r->pend[r->npend++];
    memset(p, 0, sizeof *p);
    p->kind = kind;
    memcpy(p->room, room, PP_UUID_LEN);
    memcpy(p->person, person, PP_UUID_LEN);
    p->seq = seq;
    if (r->npend == 1) uv_timer_start(&r->coalesce, on_coalesce, r->app->cfg.coalesce_ms, 0);
    return p;
}

static void emit(struct receipts *r)
{
    struct app *a = r->app;
    for (uint32_t i = 0; i < r->npend; i++) {
        const struct pend *p = &r->pend[i];
        char body[256];
        struct pp_w w;
        pp_w_init(&w, body, sizeof body);
        if (p->kind == PP_K_READ)
            pp_enc_read_event(&w, p->person, p->seq);
        else
            pp_enc_votes_event(&w, p->seq, p->dialogue, p->likes, p->stars, p->star_sum, p->v);
        int n = pp_w_finish(&w);
        if (n < 0 || store_event(a, p->room, p->person, p->kind, body, (size_t)n))
            log_warn("event not queued (write queue full)", "room=%s kind=%s", p->room,
                     pp_kind_name(p->kind));
        else
            a->stats.events_emitted++;
    }
    r->npend = 0;
}

static void on_coalesce(uv_timer_t *t)
{
    emit(t->data);
}

void receipts_flush(struct app *a)
{
    struct receipts *r = a->receipts;
    if (!r) return;
    batcher_flush(r->b);
    uv_timer_stop(&r->coalesce);
    emit(r);
}

/* ---- results ------------------------------------------------------------- */

static void answer(struct receipts *r, struct ritem *it, PGresult *res, int row)
{
    struct conn *c = it->cr.c;
    const char *st = PQgetvalue(res, row, 1);
    bool ok = !strcmp(st, "ok");
    bool dialogue = strcmp(PQgetvalue(res, row, 8), "message") != 0;
    /* What changed is announced whether or not the sender is still here. */
    if (ok && it->op == PP_OP_READ && PQgetvalue(res, row, 2)[0] == 't' &&
        !PQgetisnull(res, row, 3)) {
        /* Only a report that moved the watermark is news to the room. */
        int64_t up = strtoll(PQgetvalue(res, row, 3), NULL, 10);
        struct pend *p = up == it->seq ? pend_slot(r, PP_K_READ, it->room, it->person, 0) : NULL;
        if (p && up > p->seq) p->seq = up;
    }
    if (ok && !PQgetisnull(res, row, 7)) {
        int64_t v = strtoll(PQgetvalue(res, row, 7), NULL, 10);
        struct pend *p = pend_slot(r, PP_K_VOTES, it->room, it->person, it->seq);
        if (p && v >= p->v) {
            memcpy(p->person, it->person, PP_UUID_LEN);
            p->dialogue = dialogue;
            p->likes = strtoll(PQgetvalue(res, row, 4), NULL, 10);
            p->stars = strtoll(PQgetvalue(res, row, 5), NULL, 10);
            p->star_sum = strtoll(PQgetvalue(res, row, 6), NULL, 10);
            p->v = v;
        }
    }
    if (!c) return;
    stats_observe(&c->app->stats.op_seconds[SO_RECEIPT], (double)(uv_hrtime() - it->t0) / 1e9, 0);
    if (!ok) {
        enum pp_err_code code = !strcmp(st, "likes_not_allowed")     ? PP_E_LIKES_NOT_ALLOWED
                                : !strcmp(st, "ratings_not_allowed") ? PP_E_RATINGS_NOT_ALLOWED
                                                                     : PP_E_NO_SUCH_MESSAGE;
        const char *msg = code == PP_E_LIKES_NOT_ALLOWED ? "dialogue entries take stars, not likes"
                          : code == PP_E_RATINGS_NOT_ALLOWED
                              ? "chat messages take likes, not stars"
                              : "no message with this seq in the room";
        conn_reply_err(c, it->id, code, msg);
        return;
    }
    char buf[224];
    struct pp_w w;
    struct pp_receipt_ok ro = {
        .room = it->room,
        .read = it->op == PP_OP_READ,
        .seq = it->op == PP_OP_READ && !PQgetisnull(res, row, 3)
                   ? strtoll(PQgetvalue(res, row, 3), NULL, 10)
                   : it->seq,
        /* The aggregates after this change (none when it changed nothing). */
        .has_votes = !PQgetisnull(res, row, 7),
        .dialogue = dialogue,
        .likes = strtoll(PQgetvalue(res, row, 4), NULL, 10),
        .stars = strtoll(PQgetvalue(res, row, 5), NULL, 10),
        .star_sum = strtoll(PQgetvalue(res, row, 6), NULL, 10),
        .v = strtoll(PQgetvalue(res, row, 7), NULL, 10),
    };
    pp_w_init(&w, buf, sizeof buf);
    pp_enc_receipt_ok(&w, &ro);
    int n = pp_w_finish(&w);
    conn_reply_ok(c, it->id, buf, n > 0 ? (size_t)n : 0);
}

static void r_fail(void *ud, const struct batch *bt, int err, const char *sqlstate, void *res)
{
    (void)ud;
    (void)err; /* any outcome but a failed statement is answered alike */
    enum pp_err_code code = PP_E_INTERNAL;
    const char *msg = "could not store";
    if (sqlstate) {
        log_error("receipt batch failed", "sqlstate=%s size=%u error=\"%s\"", sqlstate, bt->n,
                  PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
    } else {
        /* Read and vote operations are idempotent: the client may retry. */
        code = PP_E_UNAVAILABLE;
        msg = "storage unavailable, retry";
    }
    for (uint32_t i = 0; i < bt->n; i++) {
        struct ritem *it = RITEM(bt->items[i]);
        struct conn *c = it->cr.c;
        if (!c) continue;
        conn_reply_err(c, it->id, code, msg);
    }
}

static void r_dispatch(void *ud, const struct batch *bt, void *res_)
{
    struct receipts *r = ud;
    struct app *a = r->app;
    PGresult *res = res_;
    a->stats.receipt_batches++;
    stats_observe(&a->stats.receipt_commit_seconds, (double)(uv_hrtime() - bt->t0) / 1e9, 0);
    int n = PQntuples(res);
    for (int row = 0; row < n; row++) {
        long i = strtol(PQgetvalue(res, row, 0), NULL, 10);
        struct ritem *it = i >= 0 && (uint32_t)i < bt->n ? RITEM(bt->items[i]) : NULL;
        if (it && !it->answered) {
            answer(r, it, res, row);
            a->stats.receipts_persisted++;
            it->answered = true;
        }
    }
    /* An item without a row was not stored. */
    for (uint32_t i = 0; i < bt->n; i++) {
        struct ritem *it = RITEM(bt->items[i]);
        if (!it->answered && it->cr.c) {
            conn_reply_err(it->cr.c, it->id, PP_E_INTERNAL, "not stored");
        }
    }
}
