#include "room.h"

#include "app.h"
#include "bus.h"
#include "db.h"
#include "frame.h"
#include "log.h"
#include "mem.h"
#include "perm.h"
#include "store.h"
#include "stats.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <sodium.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROOM_WINDOW 64 /* out-of-order bus messages held per room */

static char presence_gw[12]; /* this gateway's id in presence entries */
#define FETCH_CHUNK 256      /* rows per catch-up or replay query */
#define CHAN_PREFIX "room:"

enum bus_state {
    BS_NONE,    /* not subscribed */
    BS_PENDING, /* SUBSCRIBE sent */
    BS_ON,      /* subscribed */
    BS_LEAVING, /* UNSUBSCRIBE sent */
};

struct held {
    int64_t seq;     /* room seq */
    struct frame *f; /* the push, ready to queue */
};

enum fetch_kind { F_INIT, F_CATCHUP, F_REPLAY };

/* A query in flight for a room or a sub; whichever goes first sets its
 * pointer here to NULL, and the completion then only frees the ticket. */
struct fetch {
    struct app *app;      /* owner */
    enum fetch_kind kind; /* what the result is for */
    struct room *room;    /* F_INIT, F_CATCHUP */
    struct sub *sub;      /* F_REPLAY */
};

struct room {
    char id[PP_UUID_LEN + 1];                    /* room uuid */
    char chan[sizeof CHAN_PREFIX + PP_UUID_LEN]; /* bus channel */
    size_t chlen;                                /* its length */
    struct room *hnext;                          /* hash chain */
    struct room *gnext;                          /* gap list link */
    bool in_gap_list;                            /* listed in rooms->gaps */
    struct sub *head;                            /* members */
    uint32_t nsubs;                              /* their number */
    bool ready;                                  /* delivered is known */
    int64_t delivered;                           /* last seq fanned out here */
    enum bus_state bs;                           /* bus subscription */
    bool catchup_wanted;                         /* fetch again when the current one ends */
    struct held win[ROOM_WINDOW];                /* sorted by seq, all > delivered + 1 */
    uint32_t nwin;                               /* entries in win */
    uint64_t gap_since;                          /* uv_now when the oldest gap appeared; 0: none */
    struct fetch *fetch;                         /* room query in flight */
    struct pview *view;                          /* presence as last read, or NULL */
};

/* Who is online in a room (distinct people), as last read from Redis. */
struct pview {
    uint32_t n, cap;                 /* people, allocation */
    char (*person)[PP_UUID_LEN + 1]; /* their ids */
    bool *avatar;                    /* avatar flags */
    uint32_t nlocal, local_cap;      /* this gateway's people at the last tick */
    char (*local)[PP_UUID_LEN + 3];  /* "person|a" entries written by this gateway */
    bool known;                      /* read at least once */
    bool pending;                    /* a read is in flight */
};

struct rooms {
    struct room **tab; /* buckets */
    uint32_t mask;     /* buckets - 1 */
    uint32_t count;    /* rooms */
    struct room *gaps; /* rooms that may have a gap to fetch */
};

static void catchup(struct app *a, struct room *r);
static void replay_next(struct app *a, struct sub *s);
static void room_bus_sync(struct app *a, struct room *r);

/* ---- registry ---------------------------------------------------------- */

static uint32_t hash_id(const char *id)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < PP_UUID_LEN; i++)
        h = (h ^ (unsigned char)id[i]) * 16777619u;
    return h;
}

int room_registry_new(struct app *a)
{
    struct rooms *rs = mem_calloc(1, sizeof *rs);
    if (!rs) return -1;
    rs->mask = 1023;
    rs->tab = mem_calloc(rs->mask + 1, sizeof *rs->tab);
    if (!rs->tab) {
        mem_free(rs);
        return -1;
    }
    a->rooms = rs;
    return 0;
}

static void room_free(struct app *a, struct room *r)
{
    struct rooms *rs = a->rooms;
    struct room **pp = &rs->tab[hash_id(r->id) & rs->mask];
    while (*pp != r)
        pp = &(*pp)->hnext;
    *pp = r->hnext;
    for (pp = &rs->gaps; *pp; pp = &(*pp)->gnext)
        if (*pp == r) {
            *pp = r->gnext;
            break;
        }
    if (r->fetch) r->fetch->room = NULL;
    for (uint32_t i = 0; i < r->nwin; i++)
        frame_unref(r->win[i].f);
    if (r->view) {
        mem_free(r->view->person);
        mem_free(r->view->avatar);
        mem_free(r->view->local);
        mem_free(r->view);
    }
    rs->count--;
    mem_free(r);
}

void room_registry_free(struct app *a)
{
    struct rooms *rs = a->rooms;
    if (!rs) return;
    for (uint32_t b = 0; b <= rs->mask; b++)
        while (rs->tab[b])
            room_free(a, rs->tab[b]);
    mem_free(rs->tab);
    mem_free(rs);
    a->rooms = NULL;
}

static struct room *room_lookup(struct app *a, const char *id)
{
    for (struct room *r = a->rooms->tab[hash_id(id) & a->rooms->mask]; r; r = r->hnext)
        if (!memcmp(r->id, id, PP_UUID_LEN)) return r;
    return NULL;
}

static void grow(struct rooms *rs)
{
    uint32_t nmask = rs->mask * 2 + 1;
    struct room **nt = mem_calloc(nmask + 1, sizeof *nt);
    if (!nt) return; /* keep the longer chains; still correct */
    for (uint32_t b = 0; b <= rs->mask; b++) {
        while (rs->tab[b]) {
            struct room *r = rs->tab[b];
            rs->tab[b] = r->hnext;
            r->hnext = nt[hash_id(r->id) & nmask];
            nt[hash_id(r->id) & nmask] = r;
        }
    }
    mem_free(rs->tab);
    rs->tab = nt;
    rs->mask = nmask;
}

static struct room *room_get(struct app *a, const char *id)
{
    struct room *r = room_lookup(a, id);
    if (r) return r;
    struct rooms *rs = a->rooms;
    if (rs->count > 2 * (rs->mask + 1)) grow(rs);
    r = mem_calloc(1, sizeof *r);
    if (!r) return NULL;
    memcpy(r->id, id, PP_UUID_LEN);
    r->chlen = (size_t)snprintf(r->chan, sizeof r->chan, CHAN_PREFIX "%s", r->id);
    uint32_t b = hash_id(id) & rs->mask;
    r->hnext = rs->tab[b];
    rs->tab[b] = r;
    rs->count++;
    return r;
}

static struct room *room_by_channel(struct app *a, const char *ch, size_t chlen)
{
    size_t pl = sizeof CHAN_PREFIX - 1;
    if (chlen != pl + PP_UUID_LEN || memcmp(ch, CHAN_PREFIX, pl)) return NULL;
    return room_lookup(a, ch + pl);
}

/* ---- encoding ---------------------------------------------------------- */

struct frame *room_encode_message(struct app *a, const struct pp_message *m)
{
    int n = pp_encode_message(a->scratch + FRAME_PRE, a->scratch_cap, m);
    return n < 0 ? NULL : frame_new(a->scratch + FRAME_PRE, (size_t)n);
}

/* A frame from a ST_FETCH/ST_BEFORE row. */
static struct frame *row_frame(struct app *a, const char *room, PGresult *res, int row)
{
    struct pp_message m;
    store_row_message(res, row, room, &m);
    return room_encode_message(a, &m);
}

/* ---- pacing -------------------------------------------------------------
 * A member is given stored messages (replay after since, or catch-up when it
 * fell behind) only as fast as its connection drains: a page is loaded when
 * its out-queue is at most a quarter full (conn_low_water) and fills it to
 * half at most, counted in bytes and frames. Live fan-out goes on to three
 * quarters; a member further behind is switched to paced catch-up from its
 * position instead of being cut off, which would only make a client that
 * reads come back and ask for the same backlog. The last quarter stays free
 * for replies and other pushes. A peer that reads nothing is still closed,
 * by the stall check (conn_check_stall). */

/* Bytes of bodies in one page read from storage. */
static size_t page_bytes(const struct app *a)
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

static bool live_fits(const struct conn *c, size_t len)
{
    const struct config *cfg = &c->app->cfg;
    return c->q.bytes + len <= cfg->outq_bytes / 4 * 3 && c->q.count < cfg->outq_frames / 4 * 3;
}

/* ---- fan-out ----------------------------------------------------------- */

static void deliver(struct app *a, struct room *r, int64_t seq, struct frame *f)
{
    for (struct sub *s = r->head, *next; s; s = next) {
        next = s->next;
        if (s->state != SUB_LIVE) continue; /* replay will reach this seq */
        if (seq <= s->pos) continue;        /* it has this one already */
        if (seq == s->pos + 1 && !live_fits(s->conn, f->len) && !s->conn->closing) {
            /* Too far behind for the queue: storage gives it the rest, paced
             * (and the room's later messages too, until it is level). */
            a->stats.paced_catchups++;
            s->state = SUB_REPLAY;
            replay_next(a, s);
        } else if (seq == s->pos + 1) {
            s->pos = seq;
            if (conn_send(s->conn, f) == 0) a->stats.frames_delivered++;
        } else {
            /* Cannot happen while delivered advances by one, but if it ever
             * does the member catches up from storage rather than skip. */
            s->state = SUB_REPLAY;
            replay_next(a, s);
        }
    }
    r->delivered = seq;
}

/* Unsequenced events (member, typing) are best-effort: shed under pressure. */
static void deliver_event(struct room *r, struct frame *f)
{
    for (struct sub *s = r->head; s; s = s->next)
        if (s->state == SUB_LIVE) conn_send_ephemeral(s->conn, f);
}

static void gap_list_add(struct app *a, struct room *r)
{
    if (r->in_gap_list) return;
    r->in_gap_list = true;
    r->gnext = a->rooms->gaps;
    a->rooms->gaps = r;
}

/* Delivers held messages that became next in line; drops stale ones. */
static void drain_window(struct app *a, struct room *r)
{
    uint32_t k = 0;
    while (k < r->nwin && r->win[k].seq <= r->delivered + 1) {
        if (r->win[k].seq == r->delivered + 1) deliver(a, r, r->win[k].seq, r->win[k].f);
        frame_unref(r->win[k].f);
        k++;
    }
    if (k) {
        memmove(r->win, r->win + k, (r->nwin - k) * sizeof r->win[0]);
        r->nwin -= k;
    }
    r->gap_since = r->nwin ? (r->gap_since ? r->gap_since : app_now_ms(a)) : 0;
    if (r->gap_since) gap_list_add(a, r);
}

static void hold(struct app *a, struct room *r, int64_t seq, const char *p, size_t len)
{
    uint32_t i = 0;
    while (i < r->nwin && r->win[i].seq < seq)
        i++;
    if (i < r->nwin && r->win[i].seq == seq) return; /* already held */
    if (r->nwin == ROOM_WINDOW) {
        /* Full: drop this one and fetch the gap now rather than wait. */
        r->gap_since = 1;
        gap_list_add(a, r);
        return;
    }
    struct frame *f = frame_new(p, len);
    if (!f) return;
    memmove(r->win + i + 1, r->win + i, (r->nwin - i) * sizeof r->win[0]);
    r->win[i].seq = seq;
    r->win[i].f = f;
    r->nwin++;
    if (!r->gap_since) r->gap_since = app_now_ms(a);
    gap_list_add(a, r);
}

static void accept_seq(struct app *a, struct room *r, int64_t seq, const char *p, size_t len)
{
    if (r->ready && seq <= r->delivered) return; /* duplicate */
    if (r->ready && seq == r->delivered + 1) {
        struct frame *f = frame_new(p, len);
        if (!f) return; /* the gap fetch will bring it */
        deliver(a, r, seq, f);
        frame_unref(f);
        if (r->nwin) drain_window(a, r);
        return;
    }
    hold(a, r, seq, p, len);
}

/* A push for one person's connections and the moderators' in the room
 * (person "-": moderators only), outside the room's sequence: reliable
 * (not shed), but not recovered by since (the pending op lists it again). */
static void deliver_targeted(struct room *r, const char *person, size_t plen, const char *json,
                             size_t jlen)
{
    struct frame *f = NULL;
    for (struct sub *s = r->head; s; s = s->next) {
        if (s->state != SUB_LIVE && s->state != SUB_REPLAY) continue;
        bool mine = plen == PP_UUID_LEN && !memcmp(s->conn->person, person, PP_UUID_LEN);
        if (!mine && !perm_allows((enum role)s->conn->prole, P_MODERATE)) continue;
        if (!f && !(f = frame_new(json, jlen))) return;
        conn_send(s->conn, f);
    }
    if (f) frame_unref(f);
}

void room_push(struct app *a, const char *room, const char *person, size_t plen, const char *json,
               size_t jlen)
{
    if (plen > PP_UUID_LEN || jlen > a->scratch_cap - 64) return;
    char *buf = a->scratch + FRAME_PRE;
    int h = snprintf(buf, 48, "m%.*s\n", (int)plen, person);
    memcpy(buf + h, json, jlen);
    char ch[64];
    int chlen = snprintf(ch, sizeof ch, CHAN_PREFIX "%.*s", PP_UUID_LEN, room);
    if (bus_publish(a->bus, ch, (size_t)chlen, buf, (size_t)h + jlen) == 0) {
        a->stats.bus_published++;
        return;
    }
    /* No bus: at least this gateway's members get it. */
    struct room *r = room_lookup(a, room);
    if (r) deliver_targeted(r, person, plen, json, jlen);
}

void room_revoke(struct app *a, struct sub *s, const char *reason)
{
    if (s->state == SUB_CHECKING) return;
    if (s->state == SUB_WAITING) {
        /* The join was not answered yet: it fails as if checked now. */
        bool banned = !strcmp(reason, "removed");
        conn_reply_err(s->conn, s->join_id, banned ? PP_E_FORBIDDEN : PP_E_ROOM_NOT_FOUND,
                       banned ? "you may not join this room" : "no such room");
    } else {
        char push[160];
        int n =
            snprintf(push, sizeof push, "{\"push\":\"removed\",\"room\":\"%s\",\"reason\":\"%s\"}",
                     s->room_id, reason);
        if (n > 0 && (size_t)n < sizeof push) conn_send_copy(s->conn, push, (size_t)n);
    }
    log_info("left: access revoked", "conn=%llu room=%s reason=%s", (unsigned long long)s->conn->id,
             s->room_id, reason);
    room_sub_leave(a, s);
}

void room_remove_person(struct app *a, const char *room, const char *person, const char *reason)
{
    struct room *r = room_lookup(a, room);
    if (!r) return;
    for (struct sub *s = r->head, *next; s; s = next) {
        next = s->next;
        if (strcmp(s->conn->person, person)) continue;
        room_revoke(a, s, reason); /* may free r, but only with its last sub */
    }
}

void room_on_bus_message(void *ud, const char *ch, size_t chlen, const char *p, size_t len)
{
    struct app *a = ud;
    a->stats.bus_received++;
    struct room *r = room_by_channel(a, ch, chlen);
    if (!r) return;
    if (len > 1 && p[0] == 'm') {
        const char *e = memchr(p, '\n', len < 48 ? len : 48);
        if (e) deliver_targeted(r, p + 1, (size_t)(e - p - 1), e + 1, len - (size_t)(e + 1 - p));
        return;
    }
    const char *nl = memchr(p, '\n', len < 24 ? len : 24);
    if (!nl) return;
    int64_t seq = 0;
    for (const char *q = p; q < nl; q++) {
        if (*q < '0' || *q > '9') return;
        seq = seq * 10 + (*q - '0');
    }
    const char *json = nl + 1;
    size_t jlen = len - (size_t)(json - p);
    if (jlen == 0) {
        /* Sync marker: a message up to seq was stored but not published. */
        if (!r->ready || seq > r->delivered) catchup(a, r);
        return;
    }
    if (seq == 0) {
        struct frame *f = frame_new(json, jlen);
        if (!f) return;
        deliver_event(r, f);
        frame_unref(f);
        return;
    }
    accept_seq(a, r, seq, json, jlen);
}

/* ---- room queries: init and catch-up ------------------------------------ */

static void join_reply(struct sub *s, bool recovered_field, bool recovered)
{
    char buf[160];
    struct pp_w w;
    pp_w_init(&w, buf, sizeof buf);
    pp_w_obj_begin(&w);
    pp_w_key(&w, "room");
    pp_w_str(&w, s->room_id, PP_UUID_LEN);
    pp_w_key(&w, "last_seq");
    pp_w_int(&w, s->room->delivered);
    if (recovered_field) {
        pp_w_key(&w, "recovered");
        pp_w_bool(&w, recovered);
    }
    pp_w_obj_end(&w);
    int n = pp_w_finish(&w);
    conn_reply_ok(s->conn, s->join_id, buf, n > 0 ? (size_t)n : 0);
}

/* A room with more people than presence-list-max gets presence counts, not
 * lists, and no per-person member events either: in a room of n, a wave of
 * n joins (a webinar starting, a gateway restarting) would otherwise fan out
 * n*n/2 events, far more than the room's messages. Local members count at
 * once; the room's presence view (read once a second) counts every gateway. */
static bool room_is_big(const struct app *a, const struct room *r)
{
    uint32_t max = a->cfg.presence_list_max;
    return r->nsubs > max || (r->view && r->view->known && r->view->n > max);
}

static void announce(struct app *a, struct sub *s, bool joined)
{
    if (room_is_big(a, s->room)) return;
    char buf[256];
    buf[0] = '0';
    buf[1] = '\n';
    int n = pp_encode_member(buf + 2, sizeof buf - 2, s->room_id, s->conn->person, joined);
    if (n > 0 && bus_publish(a->bus, s->room->chan, s->room->chlen, buf, (size_t)n + 2) == 0)
        a->stats.bus_published++;
}

static void presence_snapshot(struct app *a, struct sub *s);

/* The room knows its position: answer the join and start replay or live. */
static void sub_start(struct app *a, struct sub *s)
{
    stats_observe(&a->stats.op_seconds[SO_JOIN], (double)(uv_hrtime() - s->join_t0) / 1e9, 0);
    log_info("joined", "conn=%llu workspace=%s room=%s since=%lld", (unsigned long long)s->conn->id,
             s->conn->workspace, s->room_id, s->has_since ? (long long)s->since : -1LL);
    int64_t d = s->room->delivered;
    if (!s->has_since) {
        join_reply(s, false, false);
        s->pos = d;
        s->state = SUB_LIVE;
    } else if (s->since >= d) {
        join_reply(s, true, true);
        s->pos = s->since; /* it claims more than we delivered: never repeat */
        s->state = SUB_LIVE;
    } else if ((uint64_t)(d - s->since) > a->cfg.replay_limit) {
        join_reply(s, true, false);
        s->pos = d;
        s->state = SUB_LIVE;
    } else {
        join_reply(s, true, true);
        s->pos = s->since;
        s->state = SUB_REPLAY;
        a->stats.replays++;
        replay_next(a, s);
    }
    announce(a, s, true);
    presence_snapshot(a, s);
}

static void fail_waiting(struct app *a, struct room *r)
{
    for (struct sub *s = r->head, *next; s; s = next) {
        next = s->next;
        if (s->state != SUB_WAITING) continue;
        conn_reply_err(s->conn, s->join_id, PP_E_UNAVAILABLE, "storage unavailable");
        room_sub_leave(a, s);
    }
}

static void on_room_fetch(void *ud, PGresult *res, int err)
{
    struct fetch *ft = ud;
    struct app *a = ft->app;
    struct room *r = ft->room;
    enum fetch_kind kind = ft->kind;
    mem_free(ft);
    if (!r) return;
    r->fetch = NULL;
    bool ok = !err && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (kind == F_INIT) {
        if (!ok || PQntuples(res) != 1) {
            log_warn("room init failed", "room=%s", r->id);
            fail_waiting(a, r);
            return; /* fail_waiting may have freed the room */
        }
        int64_t last = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        if (!r->ready || last > r->delivered) r->delivered = last;
        r->ready = true;
        drain_window(a, r);
        for (struct sub *s = r->head, *next; s; s = next) {
            next = s->next;
            if (s->state == SUB_WAITING) sub_start(a, s);
        }
        if (r->catchup_wanted) catchup(a, r);
        return;
    }
    /* F_CATCHUP */
    a->stats.gap_fetches++;
    if (!ok) {
        r->gap_since = app_now_ms(a); /* try again after reorder_ms */
        r->catchup_wanted = true;
        gap_list_add(a, r);
        return;
    }
    int n = PQntuples(res);
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        int64_t seq = strtoll(PQgetvalue(res, i, COL_SEQ), NULL, 10);
        bytes += (size_t)PQgetlength(res, i, COL_BODY);
        if (seq != r->delivered + 1) continue;
        struct frame *f = row_frame(a, r->id, res, i);
        if (!f) break;
        deliver(a, r, seq, f);
        frame_unref(f);
    }
    drain_window(a, r);
    /* A page cut by its byte budget reaches it: there may be more. */
    if (n == FETCH_CHUNK || bytes >= page_bytes(a) || r->catchup_wanted) {
        r->catchup_wanted = false;
        catchup(a, r);
    } else if (r->nwin) {
        /* Held messages PostgreSQL did not show yet: wait and fetch again. */
        r->gap_since = app_now_ms(a);
        gap_list_add(a, r);
    }
}

static int room_query(struct app *a, struct room *r, enum fetch_kind kind)
{
    struct fetch *ft = mem_calloc(1, sizeof *ft);
    if (!ft) return -ENOMEM;
    ft->app = a;
    ft->kind = kind;
    ft->room = r;
    int rc;
    if (kind == F_INIT) {
        const char *v[1] = {r->id};
        rc = db_query(a->db, -1, ST_LAST_SEQ, 1, v, NULL, NULL, on_room_fetch, ft);
    } else {
        char after[24], lim[8], bytes[24];
        snprintf(after, sizeof after, "%lld", (long long)r->delivered);
        snprintf(lim, sizeof lim, "%d", FETCH_CHUNK);
        snprintf(bytes, sizeof bytes, "%zu", page_bytes(a));
        const char *v[4] = {r->id, after, lim, bytes};
        rc = db_query(a->db, -1, ST_FETCH, 4, v, NULL, NULL, on_room_fetch, ft);
    }
    if (rc) {
        mem_free(ft);
        return rc;
    }
    r->fetch = ft;
    return 0;
}

/* Brings the room up to what PostgreSQL has. */
static void catchup(struct app *a, struct room *r)
{
    if (!r->ready || r->fetch) {
        r->catchup_wanted = true;
        return;
    }
    r->catchup_wanted = false;
    if (room_query(a, r, F_CATCHUP)) {
        r->catchup_wanted = true;
        r->gap_since = app_now_ms(a);
        gap_list_add(a, r);
    }
}

void room_kick(struct app *a, const char *room_id)
{
    struct room *r = room_lookup(a, room_id);
    if (r && r->nsubs) catchup(a, r);
}

unsigned room_count(const struct app *a)
{
    return a->rooms ? a->rooms->count : 0;
}

unsigned room_subscribed_count(const struct app *a)
{
    unsigned n = 0;
    const struct rooms *rs = a->rooms;
    for (uint32_t b = 0; rs && b <= rs->mask; b++)
        for (const struct room *r = rs->tab[b]; r; r = r->hnext)
            n += r->bs == BS_ON;
    return n;
}

void room_tick(struct app *a)
{
    uint64_t now = app_now_ms(a);
    struct room **pp = &a->rooms->gaps;
    while (*pp) {
        struct room *r = *pp;
        if (!r->gap_since && !r->catchup_wanted) {
            *pp = r->gnext;
            r->in_gap_list = false;
            continue;
        }
        if (r->ready && !r->fetch && now - r->gap_since >= a->cfg.reorder_ms) {
            r->gap_since = r->nwin ? now : 0;
            catchup(a, r);
        }
        pp = &r->gnext;
    }
}

/* ---- replay for joins with since --------------------------------------- */

static void on_replay(void *ud, PGresult *res, int err)
{
    struct fetch *ft = ud;
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
        struct frame *f = row_frame(a, s->room_id, res, i);
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
    else if (n > 0 && s->pos < s->room->delivered)
        replay_next(a, s);
    else
        s->state = SUB_LIVE; /* caught up: on this thread nothing slips in between */
}

static void replay_next(struct app *a, struct sub *s)
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
    if (rows > FETCH_CHUNK) rows = FETCH_CHUNK;
    struct fetch *ft = mem_calloc(1, sizeof *ft);
    if (!ft) {
        conn_close(s->conn, 1011, "out of memory");
        return;
    }
    ft->app = a;
    ft->kind = F_REPLAY;
    ft->sub = s;
    char after[24], lim[16], bytes[24];
    snprintf(after, sizeof after, "%lld", (long long)s->pos);
    snprintf(lim, sizeof lim, "%u", rows ? rows : 1);
    snprintf(bytes, sizeof bytes, "%zu", room_bytes);
    const char *v[4] = {s->room_id, after, lim, bytes};
    if (db_query(a->db, -1, ST_FETCH, 4, v, NULL, NULL, on_replay, ft)) {
        mem_free(ft);
        conn_close(s->conn, 1013, "recovery unavailable, retry");
        return;
    }
    s->fetch = ft;
}

void room_conn_drained(struct app *a, struct conn *c)
{
    for (uint32_t i = 0; i < c->nsubs; i++)
        if (c->subs[i]->wait_drain) replay_next(a, c->subs[i]);
}

/* ---- membership -------------------------------------------------------- */

struct sub *room_find_sub(struct conn *c, const char *room_id)
{
    for (uint32_t i = 0; i < c->nsubs; i++)
        if (!memcmp(c->subs[i]->room_id, room_id, PP_UUID_LEN)) return c->subs[i];
    return NULL;
}

struct sub *room_sub_new(struct conn *c, const char *room_id, int64_t join_id, bool has_since,
                         int64_t since)
{
    if (c->nsubs == c->subs_cap) {
        uint32_t ncap = c->subs_cap ? c->subs_cap * 2 : 4;
        struct sub **n = mem_realloc(c->subs, ncap * sizeof *n);
        if (!n) return NULL;
        c->subs = n;
        c->subs_cap = ncap;
    }
    struct sub *s = mem_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->conn = c;
    memcpy(s->room_id, room_id, PP_UUID_LEN);
    s->state = SUB_CHECKING;
    s->join_id = join_id;
    s->join_t0 = uv_hrtime();
    s->has_since = has_since;
    s->since = since;
    c->subs[c->nsubs++] = s;
    return s;
}

static void room_bus_sync(struct app *a, struct room *r)
{
    bool want = r->nsubs > 0;
    log_debug("bus sync", "room=%s want=%d state=%d", r->id, want, r->bs);
    if (want && r->bs == BS_NONE) {
        if (bus_subscribe(a->bus, r->chan, r->chlen) == 0) r->bs = BS_PENDING;
    } else if (!want && r->bs == BS_ON) {
        if (bus_unsubscribe(a->bus, r->chan, r->chlen) == 0)
            r->bs = BS_LEAVING;
        else
            r->bs = BS_NONE;
    }
    if (!want && r->bs == BS_NONE) room_free(a, r);
}

void room_sub_enter(struct app *a, struct sub *s)
{
    struct room *r = room_get(a, s->room_id);
    if (!r) {
        conn_reply_err(s->conn, s->join_id, PP_E_INTERNAL, "out of memory");
        room_sub_leave(a, s);
        return;
    }
    s->room = r;
    s->state = SUB_WAITING;
    s->next = r->head;
    if (r->head) r->head->prev = s;
    r->head = s;
    r->nsubs++;
    room_bus_sync(a, r);
    if (r->ready) {
        sub_start(a, s);
    } else if (!r->fetch && room_query(a, r, F_INIT)) {
        fail_waiting(a, r);
    }
}

void room_sub_leave(struct app *a, struct sub *s)
{
    struct conn *c = s->conn;
    for (uint32_t i = 0; i < c->nsubs; i++)
        if (c->subs[i] == s) {
            c->subs[i] = c->subs[--c->nsubs];
            break;
        }
    if (s->check) s->check->obj = NULL;
    if (s->fetch) s->fetch->sub = NULL;
    struct room *r = s->room;
    if (r) {
        if (s->state == SUB_LIVE || s->state == SUB_REPLAY) announce(a, s, false);
        if (s->prev)
            s->prev->next = s->next;
        else
            r->head = s->next;
        if (s->next) s->next->prev = s->prev;
        r->nsubs--;
    }
    mem_free(s);
    if (r) room_bus_sync(a, r);
}

void room_conn_gone(struct app *a, struct conn *c)
{
    while (c->nsubs)
        room_sub_leave(a, c->subs[c->nsubs - 1]);
}

/* ---- bus state --------------------------------------------------------- */

void room_on_subscribed(void *ud, const char *ch, size_t chlen)
{
    struct app *a = ud;
    struct room *r = room_by_channel(a, ch, chlen);
    if (!r) return;
    log_debug("subscribed", "room=%s state=%d subs=%u", r->id, r->bs, r->nsubs);
    if (r->bs == BS_PENDING) r->bs = BS_ON;
    /* Messages committed before the subscription took effect never reach
     * us through the bus: read them from PostgreSQL. */
    catchup(a, r);
    room_bus_sync(a, r);
}

void room_on_unsubscribed(void *ud, const char *ch, size_t chlen)
{
    struct app *a = ud;
    struct room *r = room_by_channel(a, ch, chlen);
    if (!r) return;
    log_debug("unsubscribed", "room=%s subs=%u", r->id, r->nsubs);
    r->bs = BS_NONE;
    room_bus_sync(a, r); /* resubscribes if someone joined meanwhile, else frees */
}

static void for_each_room(struct app *a, void (*fn)(struct app *, struct room *))
{
    struct rooms *rs = a->rooms;
    for (uint32_t b = 0; b <= rs->mask; b++) {
        for (struct room *r = rs->tab[b], *next; r; r = next) {
            next = r->hnext;
            fn(a, r);
        }
    }
}

static void mark_unsubscribed(struct app *a, struct room *r)
{
    r->bs = BS_NONE;
    if (!r->nsubs) room_free(a, r);
}

void room_on_bus_down(void *ud)
{
    for_each_room(ud, mark_unsubscribed);
}

void room_on_bus_up(void *ud)
{
    log_info("bus up, resubscribing rooms", "rooms=%u", ((struct app *)ud)->rooms->count);
    for_each_room(ud, room_bus_sync);
}

/* ---- presence ------------------------------------------------------------ */

#define PRESENCE_TTL_MS 5000 /* a gateway that stops refreshing is gone after this */

static void presence_key(const struct room *r, char *key, size_t cap)
{
    snprintf(key, cap, "parley:presence:%s", r->id);
}

/* Encodes a presence push: the snapshot (list) or a diff, or just the count
 * in a large room. */
static struct frame *presence_frame(const struct app *a, const struct room *r,
                                    const struct pview *v, bool snapshot, const struct pview *old)
{
    uint32_t list_max = a->cfg.presence_list_max;
    size_t cap = 256 + (size_t)v->n * 64 + (old ? (size_t)old->n * 64 : 0);
    char *buf = mem_alloc(cap);
    if (!buf) return NULL;
    struct pp_w w;
    pp_w_init(&w, buf, cap);
    pp_w_obj_begin(&w);
    pp_w_key(&w, "push");
    pp_w_cstr(&w, "presence");
    pp_w_key(&w, "room");
    pp_w_cstr(&w, r->id);
    pp_w_key(&w, "count");
    pp_w_int(&w, v->n);
    if (v->n <= list_max) {
        for (int part = snapshot ? 2 : 0; part < 3; part++) {
            /* 0: joined (in v, not in old), 1: left (in old, not in v), 2: online */
            const struct pview *from = part == 1 ? old : v;
            const struct pview *not_in = part == 2 ? NULL : part == 1 ? v : old;
            pp_w_key(&w, part == 0 ? "joined" : part == 1 ? "left" : "online");
            pp_w_arr_begin(&w);
            for (uint32_t i = 0; from && i < from->n; i++) {
                bool found = false;
                for (uint32_t j = 0; not_in && j < not_in->n && !found; j++)
                    found = !strcmp(from->person[i], not_in->person[j]);
                if (found) continue;
                pp_w_obj_begin(&w);
                pp_w_key(&w, "person");
                pp_w_cstr(&w, from->person[i]);
                pp_w_key(&w, "avatar");
                pp_w_bool(&w, from->avatar[i]);
                pp_w_obj_end(&w);
            }
            pp_w_arr_end(&w);
        }
    }
    pp_w_obj_end(&w);
    int n = pp_w_finish(&w);
    struct frame *f = n > 0 ? frame_new(buf, (size_t)n) : NULL;
    mem_free(buf);
    return f;
}

static void presence_snapshot(struct app *a, struct sub *s)
{
    struct pview *v = s->room ? s->room->view : NULL;
    if (!v || !v->known) return; /* the first read sends it */
    struct frame *f = presence_frame(a, s->room, v, true, NULL);
    if (!f) return;
    if (conn_send_ephemeral(s->conn, f) == 0) s->pres_snap = true;
    frame_unref(f);
}

/* Views are kept sorted by person (on_presence), so equal views are equal
 * element by element. */
static bool view_same(const struct pview *x, const struct pview *y)
{
    if (x->n != y->n) return false;
    for (uint32_t i = 0; i < x->n; i++)
        if (memcmp(x->person[i], y->person[i], PP_UUID_LEN) || x->avatar[i] != y->avatar[i])
            return false;
    return true;
}

/* Presence lists are sorted so that de-duplicating and comparing them is
 * linear: a room of thousands did tens of millions of comparisons a second
 * with pairwise loops (half the gateway's CPU in a room of 5,000). */
struct pentry {
    char person[PP_UUID_LEN + 1]; /* id */
    bool avatar;                  /* avatar flag */
};

static int pentry_cmp(const void *x, const void *y)
{
    return memcmp(((const struct pentry *)x)->person, ((const struct pentry *)y)->person,
                  PP_UUID_LEN);
}

static int local_cmp(const void *x, const void *y)
{
    return strcmp(x, y);
}

/* A presence read in flight: it may outlive its room, so it names its owner
 * and the room instead of pointing at the room. */
struct pread {
    struct app *app;          /* owner: the registry is a->rooms */
    char id[PP_UUID_LEN + 1]; /* the room, if still there */
};

static void on_presence(void *ud, const void *reply)
{
    struct pread *rd = ud;
    const redisReply *rep = reply;
    struct app *a = rd->app;
    struct room *r = a->rooms ? room_lookup(a, rd->id) : NULL;
    mem_free(rd);
    if (!r || !r->view) return;
    struct pview *v = r->view;
    v->pending = false;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) return;
    /* Members are "person|gateway|avatar": people count once. */
    struct pentry *all = mem_alloc((rep->elements ? rep->elements : 1) * sizeof *all);
    struct pview nv = {0};
    nv.cap = rep->elements ? (uint32_t)rep->elements : 1;
    nv.person = mem_alloc(nv.cap * sizeof *nv.person);
    nv.avatar = mem_alloc(nv.cap * sizeof *nv.avatar);
    if (!all || !nv.person || !nv.avatar) {
        mem_free(all);
        mem_free(nv.person);
        mem_free(nv.avatar);
        return;
    }
    size_t na = 0;
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len < PP_UUID_LEN + 2) continue;
        memcpy(all[na].person, e->str, PP_UUID_LEN);
        all[na].person[PP_UUID_LEN] = '\0';
        all[na].avatar = e->str[e->len - 1] == '1';
        na++;
    }
    qsort(all, na, sizeof *all, pentry_cmp);
    for (size_t i = 0; i < na; i++) {
        if (nv.n && !memcmp(nv.person[nv.n - 1], all[i].person, PP_UUID_LEN)) continue;
        memcpy(nv.person[nv.n], all[i].person, PP_UUID_LEN + 1);
        nv.avatar[nv.n] = all[i].avatar;
        nv.n++;
    }
    mem_free(all);
    bool changed = !v->known || !view_same(&nv, v);
    struct frame *diff = changed && v->known ? presence_frame(a, r, &nv, false, v) : NULL;
    struct frame *snap = NULL;
    for (struct sub *s = r->head; s; s = s->next) {
        if (s->state != SUB_LIVE && s->state != SUB_REPLAY) continue;
        if (!s->pres_snap) {
            if (!snap) snap = presence_frame(a, r, &nv, true, NULL);
            if (snap && conn_send_ephemeral(s->conn, snap) == 0) s->pres_snap = true;
        } else if (diff) {
            conn_send_ephemeral(s->conn, diff);
        }
    }
    if (diff) frame_unref(diff);
    if (snap) frame_unref(snap);
    mem_free(v->person);
    mem_free(v->avatar);
    v->person = nv.person;
    v->avatar = nv.avatar;
    v->n = nv.n;
    v->cap = nv.cap;
    v->known = true;
}

static void ignore_reply(void *ud, const void *reply)
{
    (void)ud;
    (void)reply;
}

/* One command through bus_call with an argv built here. */
static void call(struct app *a, bus_reply_cb cb, void *ud, int argc, const char **argv)
{
    size_t *lens = mem_alloc((size_t)argc * sizeof *lens);
    if (!lens) {
        if (cb != ignore_reply) cb(ud, NULL);
        return;
    }
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (bus_call(a->bus, cb, ud, argc, argv, lens) && cb != ignore_reply) cb(ud, NULL);
    mem_free(lens);
}

static void presence_room(struct app *a, struct room *r)
{
    if (!r->head) return;
    if (!r->view && !(r->view = mem_calloc(1, sizeof *r->view))) return;
    struct pview *v = r->view;
    if (v->pending) return; /* Redis is slow: skip a beat rather than pile up */
    /* This gateway's people in the room now. */
    uint32_t n = 0;
    for (struct sub *s = r->head; s; s = s->next)
        n += s->state == SUB_LIVE || s->state == SUB_REPLAY;
    char(*cur)[PP_UUID_LEN + 3] = mem_alloc((n ? n : 1) * sizeof *cur);
    if (!cur) return;
    uint32_t k = 0;
    for (struct sub *s = r->head; s; s = s->next) {
        if (s->state != SUB_LIVE && s->state != SUB_REPLAY) continue;
        snprintf(cur[k++], sizeof cur[0], "%s|%c", s->conn->person, s->conn->avatar ? '1' : '0');
    }
    /* sorted, a person's several connections once (v->local stays sorted) */
    qsort(cur, k, sizeof *cur, local_cmp);
    uint32_t d = 0;
    for (uint32_t i = 0; i < k; i++)
        if (!d || strcmp(cur[d - 1], cur[i])) memmove(cur[d++], cur[i], sizeof cur[0]);
    k = d;
    char key[64], exp[24], now[24];
    presence_key(r, key, sizeof key);
    int64_t t = app_wall_ms();
    snprintf(exp, sizeof exp, "%lld", (long long)(t + PRESENCE_TTL_MS));
    snprintf(now, sizeof now, "%lld", (long long)t);
    /* Members are "person|gateway|avatar"; the person's avatar flag is last. */
    char(*members)[PP_UUID_LEN + 24] = mem_alloc((k + v->nlocal + 1) * sizeof *members);
    const char **argv = mem_alloc((2 + 2 * (size_t)(k + v->nlocal)) * sizeof *argv);
    if (!members || !argv) {
        mem_free(cur);
        mem_free(members);
        mem_free(argv);
        return;
    }
    uint32_t m = 0;
    if (k) {
        int argc = 0;
        argv[argc++] = "ZADD";
        argv[argc++] = key;
        for (uint32_t i = 0; i < k; i++, m++) {
            snprintf(members[m], sizeof members[m], "%.36s|%s|%c", cur[i], presence_gw,
                     cur[i][PP_UUID_LEN + 1]);
            argv[argc++] = exp;
            argv[argc++] = members[m];
        }
        call(a, ignore_reply, NULL, argc, argv);
    }
    /* People who left this gateway since the last tick: gone at once. */
    int argc = 0;
    argv[argc++] = "ZREM";
    argv[argc++] = key;
    for (uint32_t i = 0, j = 0; i < v->nlocal; i++) {
        /* both sorted: walk them together */
        int c = 1;
        while (j < k && (c = strcmp(cur[j], v->local[i])) < 0)
            j++;
        if (j < k && c == 0) continue; /* still here */
        snprintf(members[m], sizeof members[m], "%.36s|%s|%c", v->local[i], presence_gw,
                 v->local[i][PP_UUID_LEN + 1]);
        argv[argc++] = members[m++];
    }
    if (argc > 2) call(a, ignore_reply, NULL, argc, argv);
    const char *trim[4] = {"ZREMRANGEBYSCORE", key, "-inf", now};
    call(a, ignore_reply, NULL, 4, trim);
    const char *ttl[3] = {"PEXPIRE", key, "60000"};
    call(a, ignore_reply, NULL, 3, ttl);
    const char *rd[4] = {"ZRANGEBYSCORE", key, now, "+inf"};
    struct pread *pr = mem_alloc(sizeof *pr);
    if (pr) {
        pr->app = a;
        memcpy(pr->id, r->id, PP_UUID_LEN + 1);
        v->pending = true;
        call(a, on_presence, pr, 4, rd);
    }
    mem_free(v->local);
    v->local = cur;
    v->nlocal = k;
    v->local_cap = k;
    mem_free(members);
    mem_free(argv);
}

void room_presence_tick(struct app *a)
{
    if (!presence_gw[0]) {
        uint32_t x = randombytes_random();
        snprintf(presence_gw, sizeof presence_gw, "%08x", x);
    }
    if (!bus_up(a->bus)) return;
    for_each_room(a, presence_room);
}

void room_typing(struct app *a, struct sub *s)
{
    char buf[160];
    int n = snprintf(buf, sizeof buf, "0\n{\"push\":\"typing\",\"room\":\"%s\",\"person\":\"%s\"}",
                     s->room_id, s->conn->person);
    if (s->room && bus_publish(a->bus, s->room->chan, s->room->chlen, buf, (size_t)n) == 0) {
        a->stats.bus_published++;
        a->stats.typing_sent++;
    }
}
