#include "replay.h"

#include "app.h"
#include "conn.h"
#include "db.h"
#include "dbread.h"
#include "frame.h"
#include "mem.h"
#include "room.h"
#include "store.h"
#include "stats.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>

/* A page query in flight; sub is NULL once the sub went (replay_cancel). */
struct replay_fetch {
    struct app *app; /* owner */
    struct sub *sub; /* the member, or NULL */
};

struct frame *replay_row_frame(struct app *a, const char *room, PGresult *res, int row)
{
    struct pp_message m;
    store_row_message(res, row, room, &m);
    return room_encode_message(a, &m);
}

size_t replay_page_bytes(const struct app *a)
{
    return a->cfg.outq_bytes / 2;
}

/* Another stored message fits the member's share of its out-queue (the
 * first always does, so every page makes progress). */
static bool paced_fits(const struct conn *c, size_t len)
{
    const struct config *cfg = &c->app->cfg;
    if (!c->q.count) return true;
    return c->q.bytes + len <= cfg->outq_bytes / 2 && c->q.count < cfg->outq_frames / 2;
}

bool replay_live_fits(const struct conn *c, size_t len)
{
    const struct config *cfg = &c->app->cfg;
    return c->q.bytes + len <= cfg->outq_bytes / 4 * 3 && c->q.count < cfg->outq_frames / 4 * 3;
}

void replay_cancel(struct sub *s)
{
    if (s->fetch) s->fetch->sub = NULL;
    s->fetch = NULL;
}

static void on_replay(void *ud, PGresult *res, int err)
{
    struct replay_fetch *ft = ud;
    struct app *a = ft->app;
    struct sub *s = ft->sub;
    mem_free(ft);
    if (!s) return;
    s->fetch = NULL;
    if (err || PQresultStatus(res) != PGRES_TUPLES_OK) {
        /* The join was answered already; a silent gap is not an option, so
         * the client is told to reconnect and recover with since. */
        conn_close(s->conn, 1013, "recovery unavailable, retry");
        return;
    }
    int n = PQntuples(res);
    bool full = false; /* the member's share of its queue is used: wait */
    for (int i = 0; i < n && !s->conn->closing; i++) {
        int64_t seq = strtoll(PQgetvalue(res, i, COL_SEQ), NULL, 10);
        if (seq <= s->pos) continue;
        struct frame *f = replay_row_frame(a, s->room_id, res, i);
        if (!f) {
            conn_close(s->conn, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
            return;
        }
        if (!paced_fits(s->conn, f->len)) {
            /* Read again from here once the connection has drained. */
            frame_unref(f);
            full = true;
            break;
        }
        s->pos = seq;
        conn_send(s->conn, f);
        frame_unref(f);
        a->stats.replayed++;
    }
    if (s->conn->closing) return;
    /* Until level with the room; the live messages it skipped meanwhile are
     * all stored (delivered never passes what PostgreSQL has). An empty page
     * below delivered (rows gone to retention) goes live: fan-out sends the
     * member back here if the next seq is not pos + 1. */
    if (full)
        s->wait_drain = true; /* the queue is not empty: a write will resume it */
    else if (n > 0 && s->pos < room_delivered(s->room))
        replay_next(a, s);
    else
        s->state = SUB_LIVE; /* caught up: on this thread nothing slips in between */
}

void replay_next(struct app *a, struct sub *s)
{
    if (s->fetch || s->conn->closing) return;
    struct conn *c = s->conn;
    if (!conn_low_water(c)) {
        s->wait_drain = true; /* resume from room_conn_drained */
        return;
    }
    s->wait_drain = false;
    /* The page is bounded by what the queue may still take, in bytes and
     * in frames; on_replay checks each frame again (escaping makes a push
     * larger than its body). */
    size_t room_bytes = a->cfg.outq_bytes / 2 - c->q.bytes;
    uint32_t rows = a->cfg.outq_frames / 2 - c->q.count;
    if (rows > REPLAY_PAGE_ROWS) rows = REPLAY_PAGE_ROWS;
    struct replay_fetch *ft = mem_calloc(1, sizeof *ft);
    if (!ft) {
        conn_close(s->conn, 1011, "out of memory");
        return;
    }
    ft->app = a;
    ft->sub = s;
    /* Replay runs up to the room's delivered seq, committed: a replica that
     * has not reached it yet leaves the page to the primary. */
    if (replay_page_query(a, s->room_id, s->pos, rows ? rows : 1, room_bytes,
                          room_delivered(s->room), on_replay, ft)) {
        mem_free(ft);
        conn_close(s->conn, 1013, "recovery unavailable, retry");
        return;
    }
    s->fetch = ft;
}

int replay_page_query(struct app *a, const char *room, int64_t after, uint32_t rows, size_t bytes,
                      int64_t floor, db_cb cb, void *ud)
{
    char sa[24], sl[16], sb[24];
    snprintf(sa, sizeof sa, "%lld", (long long)after);
    snprintf(sl, sizeof sl, "%u", rows);
    snprintf(sb, sizeof sb, "%zu", bytes);
    const char *v[4] = {room, sa, sl, sb};
    return dbread_query(a, room, floor, ST_FETCH, 4, v, cb, ud);
}
