#include "room.h"

#include "app.h"
#include "bus.h"
#include "busfmt.h"
#include "db.h"
#include "dbread.h"
#include "frame.h"
#include "log.h"
#include "mem.h"
#include "perm.h"
#include "presence.h"
#include "reorder.h"
#include "replay.h"
#include "store.h"
#include "stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FETCH_CHUNK REPLAY_PAGE_ROWS /* rows per catch-up query */

enum bus_state {
    BS_NONE,    /* not subscribed */
    BS_PENDING, /* SUBSCRIBE sent */
    BS_ON,      /* subscribed */
    BS_LEAVING, /* UNSUBSCRIBE sent */
};

enum fetch_kind { F_INIT, F_CATCHUP };

/* A room's query in flight; a room freed first NULLs room, the completion frees it. */
struct fetch {
    struct app *app;      /* owner */
    enum fetch_kind kind; /* what the result is for */
    struct room *room;    /* the room, or NULL */
};

struct room {
    char id[PP_UUID_LEN + 1]; /* room uuid (its bus channel is made from it) */
    bool in_gap_list;         /* listed in rooms->gaps */
    bool catchup_wanted;      /* fetch again when the current one ends */
    uint8_t bs;               /* enum bus_state: bus subscription */
    uint32_t nsubs;           /* members */
    struct room *hnext;       /* hash chain */
    struct room *gnext;       /* gap list link */
    struct sub *head;         /* members */
    struct fetch *fetch;      /* room query in flight */
    struct pview *view;       /* presence as last read, or NULL */
    struct reorder ro;        /* delivered seq and the held frames */
    int64_t known;            /* a marker's seq, or DBREAD_PRIMARY: catch-ups' floor */
    uint64_t retry_at;        /* a failed catch-up is tried again then */
};
/* A copy of a room costs every gateway with a member in it (0.55 copies a
 * connection with rooms of 10 over 7 gateways): the channel name is made
 * when it is needed rather than kept (42 bytes), and the fields are packed,
 * so a room is a 152-byte allocation (a 160-byte chunk), not 224 (240). */
_Static_assert(sizeof(struct room) <= 152, "struct room grew");

/* The room's bus channel in ch; its length. */
static size_t room_chan(const struct room *r, char ch[BUSFMT_CHAN_CAP])
{
    int n = busfmt_channel(ch, BUSFMT_CHAN_CAP, r->id);
    return n > 0 ? (size_t)n : 0; /* room_get checked the id */
}

struct rooms {
    struct room **tab;     /* buckets */
    uint32_t mask;         /* buckets - 1 */
    uint32_t count;        /* rooms */
    struct room *gaps;     /* rooms that may have a gap to fetch */
    struct presence *pres; /* presence of every room (presence.h), from the first tick */
    bool pres_force;       /* the bus went down: rewrite every room's presence */
};

static void catchup(struct app *a, struct room *r);
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
    for (void *f; reorder_take(&r->ro, &f);)
        frame_unref(f);
    presence_view_free(a->rooms->pres, r->id, r->view);
    rs->count--;
    mem_free(r);
}

void room_registry_free(struct app *a)
{
    struct rooms *rs = a->rooms;
    if (!rs) return;
    presence_free(rs->pres); /* first: the bus is closed, so the rooms leave Redis alone */
    rs->pres = NULL;
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
    /* not a room id (its channel could not be made): join checks it, so
     * only a bug gets here */
    if (!pp_uuid_valid(id, PP_UUID_LEN)) return NULL;
    r = mem_calloc(1, sizeof *r);
    if (!r) return NULL;
    memcpy(r->id, id, PP_UUID_LEN);
    reorder_init(&r->ro);
    uint32_t b = hash_id(id) & rs->mask;
    r->hnext = rs->tab[b];
    rs->tab[b] = r;
    rs->count++;
    return r;
}

static struct room *room_by_channel(struct app *a, const char *ch, size_t chlen)
{
    const char *id = busfmt_channel_room(ch, chlen);
    return id ? room_lookup(a, id) : NULL;
}

/* ---- encoding ---------------------------------------------------------- */

struct frame *room_encode_message(struct app *a, const struct pp_message *m)
{
    int n = pp_encode_message(a->scratch + FRAME_PRE, a->scratch_cap, m);
    return n < 0 ? NULL : frame_new(a->scratch + FRAME_PRE, (size_t)n);
}

/* ---- fan-out ----------------------------------------------------------- */

static void deliver(struct app *a, struct room *r, int64_t seq, struct frame *f)
{
    for (struct sub *s = r->head, *next; s; s = next) {
        next = s->next;
        if (s->state != SUB_LIVE) continue; /* replay will reach this seq */
        if (seq <= s->pos) continue;        /* it has this one already */
        if (seq == s->pos + 1 && !replay_live_fits(s->conn, f->len) && !s->conn->closing) {
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
    int64_t seq;
    void *f;
    int k;
    while ((k = reorder_pop(&r->ro, &seq, &f))) {
        if (k == 1) deliver(a, r, seq, f);
        frame_unref(f);
    }
}

static void fetch_range(struct app *a, struct room *r, const struct reorder_range *rg);

/* The window's gap waited long enough, or the window is full: fetch it. */
static void gap_fetch_if_due(struct app *a, struct room *r, uint64_t now)
{
    struct reorder_range rg;
    if (!r->fetch && reorder_due(&r->ro, now, a->cfg.reorder_ms, &rg)) fetch_range(a, r, &rg);
}

static void accept_seq(struct app *a, struct room *r, int64_t seq, const char *p, size_t len)
{
    uint64_t now = app_now_ms(a);
    enum reorder_verdict v = reorder_offer(&r->ro, seq, now);
    if (v == REORDER_DROP) return;
    struct frame *f = v == REORDER_FULL ? NULL : frame_new(p, len);
    if (v != REORDER_DELIVER || !f) {
        /* A gap: the tick watches its deadline (a full window is due now). */
        if (v == REORDER_HOLD && f && reorder_hold(&r->ro, seq, f) < 0)
            frame_unref(f); /* not kept: the window fetches it now, as if full */
        if (v != REORDER_FULL && !f) reorder_missed(&r->ro, seq, now); /* fetched later */
        gap_list_add(a, r);
        gap_fetch_if_due(a, r, now);
        return;
    }
    reorder_advance(&r->ro, seq);
    deliver(a, r, seq, f);
    frame_unref(f);
    drain_window(a, r);
}

/* A push for one person's connections and the room's moderators (person "-":
 * only them), unsequenced: not shed, not recovered by since (ops list it again). */
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
    if (jlen > a->scratch_cap - BUSFMT_HDR_CAP) return;
    char *buf = a->scratch + FRAME_PRE;
    char ch[BUSFMT_CHAN_CAP];
    int h = busfmt_targeted_header(buf, BUSFMT_HDR_CAP, person, plen);
    int chlen = busfmt_channel(ch, sizeof ch, room);
    if (h < 0 || chlen < 0) return;
    memcpy(buf + h, json, jlen);
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
        conn_reply_err(s->conn, s->join->id, banned ? PP_E_FORBIDDEN : PP_E_ROOM_NOT_FOUND,
                       banned ? "you may not join this room" : "no such room");
    } else {
        char push[160];
        struct pp_w w;
        pp_w_init(&w, push, sizeof push);
        pp_enc_removed(&w, s->room_id, reason);
        int n = pp_w_finish(&w);
        if (n > 0) conn_send_copy(s->conn, push, (size_t)n);
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
    struct busfmt_msg m;
    if (!r || busfmt_decode(p, len, &m)) return;
    switch (m.kind) {
    case BUSFMT_TARGETED:
        deliver_targeted(r, m.person, m.plen, m.body, m.blen);
        break;
    case BUSFMT_MARKER:
        /* A message up to seq was stored but not published. */
        if (m.seq > r->known) r->known = m.seq;
        if (!r->ro.ready || m.seq > r->ro.delivered) catchup(a, r);
        break;
    case BUSFMT_EVENT: {
        struct frame *f = frame_new(m.body, m.blen);
        if (!f) return;
        deliver_event(r, f);
        frame_unref(f);
        break;
    }
    case BUSFMT_MESSAGE:
        accept_seq(a, r, m.seq, m.body, m.blen);
        break;
    case BUSFMT_PRESENCE:
        presence_hint(a->rooms->pres, r->view, m.gw);
        break;
    }
}

/* ---- room queries: init and catch-up ------------------------------------ */

static void join_reply(struct sub *s, bool recovered_field, bool recovered)
{
    char buf[160];
    struct pp_w w;
    pp_w_init(&w, buf, sizeof buf);
    pp_enc_join_ok(&w, s->room_id, s->room->ro.delivered, recovered_field, recovered);
    int n = pp_w_finish(&w);
    conn_reply_ok(s->conn, s->join->id, buf, n > 0 ? (size_t)n : 0);
}

/* A room with more people than presence-list-max gets presence counts, not
 * lists, and no per-person member events either: in a room of n, a wave of
 * n joins (a webinar starting, a gateway restarting) would otherwise fan out
 * n*n/2 events. Local members count at once, the presence view all of them. */
static bool room_is_big(const struct app *a, const struct room *r)
{
    uint32_t max = a->cfg.presence_list_max;
    return r->nsubs > max || presence_people(r->view) > max;
}

static void announce(struct app *a, struct sub *s, bool joined)
{
    if (room_is_big(a, s->room)) return;
    char buf[256];
    int h = busfmt_event_header(buf, sizeof buf);
    int n = pp_encode_member(buf + h, sizeof buf - (size_t)h, s->room_id, s->conn->person, joined);
    char ch[BUSFMT_CHAN_CAP];
    size_t chlen = room_chan(s->room, ch);
    if (n > 0 && bus_publish(a->bus, ch, chlen, buf, (size_t)(h + n)) == 0)
        a->stats.bus_published++;
}

/* The room knows its position: answer the join and start replay or live. */
static void sub_start(struct app *a, struct sub *s)
{
    struct sub_join *j = s->join;
    stats_observe(&a->stats.op_seconds[SO_JOIN], (double)(uv_hrtime() - j->t0) / 1e9, 0);
    log_info("joined", "conn=%llu workspace=%s room=%s since=%lld", (unsigned long long)s->conn->id,
             s->conn->workspace, s->room_id, j->has_since ? (long long)j->since : -1LL);
    int64_t d = s->room->ro.delivered;
    bool replay = false;
    if (!j->has_since) {
        join_reply(s, false, false);
        s->pos = d;
        s->state = SUB_LIVE;
    } else if (j->since >= d) {
        join_reply(s, true, true);
        s->pos = j->since; /* it claims more than we delivered: never repeat */
        s->state = SUB_LIVE;
    } else if ((uint64_t)(d - j->since) > a->cfg.replay_limit) {
        join_reply(s, true, false);
        s->pos = d;
        s->state = SUB_LIVE;
    } else {
        join_reply(s, true, true);
        s->pos = j->since;
        s->state = SUB_REPLAY;
        a->stats.replays++;
        replay = true;
    }
    sub_join_done(s); /* answered: what only the join needed goes */
    if (replay) replay_next(a, s);
    announce(a, s, true);
    if (a->rooms->pres) presence_snapshot(a->rooms->pres, s->room_id, s->room->view, s);
}

static void fail_waiting(struct app *a, struct room *r)
{
    for (struct sub *s = r->head, *next; s; s = next) {
        next = s->next;
        if (s->state != SUB_WAITING) continue;
        conn_reply_err(s->conn, s->join->id, PP_E_UNAVAILABLE, "storage unavailable");
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
        reorder_start(&r->ro, last);
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
        r->retry_at = app_now_ms(a) + a->cfg.reorder_ms;
        r->catchup_wanted = true;
        gap_list_add(a, r);
        return;
    }
    int n = PQntuples(res);
    size_t bytes = 0;
    for (int i = 0; i < n; i++) {
        int64_t seq = strtoll(PQgetvalue(res, i, COL_SEQ), NULL, 10);
        bytes += (size_t)PQgetlength(res, i, COL_BODY);
        if (seq != r->ro.delivered + 1) continue;
        struct frame *f = replay_row_frame(a, r->id, res, i);
        if (!f) break;
        reorder_advance(&r->ro, seq);
        deliver(a, r, seq, f);
        frame_unref(f);
    }
    drain_window(a, r);
    /* A page cut by its byte budget reaches it: there may be more. */
    bool more = n == FETCH_CHUNK || bytes >= replay_page_bytes(a) || r->catchup_wanted;
    if (!more && r->known == DBREAD_PRIMARY) r->known = 0; /* level with the primary */
    if (more) catchup(a, r);
    /* Otherwise a gap still open (held messages PostgreSQL did not show
     * yet) waits reorder_ms from this fetch's start and is fetched again. */
}

/* F_INIT, or F_CATCHUP of at most limit rows after delivered. */
static int room_query(struct app *a, struct room *r, enum fetch_kind kind, int64_t limit)
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
        /* A replica must reach the highest seq heard of (dbread.h). */
        int64_t floor = r->known > r->ro.seen ? r->known : r->ro.seen;
        rc = replay_page_query(a, r->id, r->ro.delivered, (uint32_t)limit, replay_page_bytes(a),
                               floor, on_room_fetch, ft);
    }
    if (rc) {
        mem_free(ft);
        return rc;
    }
    r->fetch = ft;
    return 0;
}

/* Reads the seqs of rg (NULL: everything, a page at a time) from
 * PostgreSQL. One fetch per room at a time: a request meanwhile becomes a
 * full catch-up when the current one ends. */
static void fetch_range(struct app *a, struct room *r, const struct reorder_range *rg)
{
    if (!r->ro.ready || r->fetch) {
        r->catchup_wanted = true;
        return;
    }
    /* A full catch-up still owed (a failed fetch, a marker past what we
     * have) must not shrink to this range: the range is part of it. */
    if (r->catchup_wanted) rg = NULL;
    uint64_t now = app_now_ms(a);
    int64_t limit = rg && rg->count < FETCH_CHUNK ? rg->count : FETCH_CHUNK;
    r->catchup_wanted = false;
    reorder_fetching(&r->ro, now);
    if (room_query(a, r, F_CATCHUP, limit > 0 ? limit : 1)) {
        r->catchup_wanted = true;
        r->retry_at = now + a->cfg.reorder_ms;
        gap_list_add(a, r);
    }
}

/* Brings the room up to what PostgreSQL has. */
static void catchup(struct app *a, struct room *r)
{
    fetch_range(a, r, NULL);
}

void room_kick(struct app *a, const char *room_id)
{
    struct room *r = room_lookup(a, room_id);
    if (r && r->nsubs) r->known = DBREAD_PRIMARY; /* how far: the store knows, not we */
    if (r && r->nsubs) catchup(a, r);
}

int64_t room_delivered(const struct room *r)
{
    return r->ro.delivered;
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
        if (!reorder_gap(&r->ro) && !r->catchup_wanted) {
            *pp = r->gnext;
            r->in_gap_list = false;
            continue;
        }
        pp = &r->gnext;
        if (!r->ro.ready || r->fetch) continue; /* their completions go on from here */
        if (r->catchup_wanted && now >= r->retry_at)
            catchup(a, r); /* a failed one, again */
        else
            gap_fetch_if_due(a, r, now);
    }
}

void room_conn_drained(struct app *a, struct conn *c)
{
    for (uint32_t i = 0; i < c->nsubs; i++)
        if (c->subs[i]->wait_drain) replay_next(a, c->subs[i]);
}

/* ---- membership -------------------------------------------------------- */

static void room_bus_sync(struct app *a, struct room *r)
{
    bool want = r->nsubs > 0;
    log_debug("bus sync", "room=%s want=%d state=%d", r->id, want, r->bs);
    char ch[BUSFMT_CHAN_CAP];
    if (want && r->bs == BS_NONE) {
        if (bus_subscribe(a->bus, ch, room_chan(r, ch)) == 0) r->bs = BS_PENDING;
    } else if (!want && r->bs == BS_ON) {
        if (bus_unsubscribe(a->bus, ch, room_chan(r, ch)) == 0)
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
        conn_reply_err(s->conn, s->join->id, PP_E_INTERNAL, "out of memory");
        room_sub_leave(a, s);
        return;
    }
    s->room = r;
    s->room_id = r->id; /* the join's copy goes with it */
    s->state = SUB_WAITING;
    s->next = r->head;
    if (r->head) r->head->prev = s;
    r->head = s;
    r->nsubs++;
    room_bus_sync(a, r);
    if (r->ro.ready) {
        sub_start(a, s);
    } else if (!r->fetch && room_query(a, r, F_INIT, 0)) {
        fail_waiting(a, r);
    }
}

void room_sub_leave(struct app *a, struct sub *s)
{
    sub_unlist(s);
    replay_cancel(s);
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
     * us through the bus: read them from the primary (how far is unknown). */
    r->known = DBREAD_PRIMARY;
    catchup(a, r);
    presence_hint(a->rooms->pres, r->view, NULL); /* hints were missed too */
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
    for (uint32_t b = 0; b <= rs->mask; b++)
        for (struct room *r = rs->tab[b], *next; r; r = next) {
            next = r->hnext;
            fn(a, r);
        }
}

static void mark_unsubscribed(struct app *a, struct room *r)
{
    r->bs = BS_NONE;
    if (!r->nsubs) room_free(a, r);
}

void room_on_bus_down(void *ud)
{
    ((struct app *)ud)->rooms->pres_force = true; /* Redis may come back empty */
    for_each_room(ud, mark_unsubscribed);
}

void room_on_bus_up(void *ud)
{
    log_info("bus up, resubscribing rooms", "rooms=%u", ((struct app *)ud)->rooms->count);
    for_each_room(ud, room_bus_sync);
}

/* ---- presence (presence.h) ------------------------------------------- */

static struct pview **find_view(void *ud, const char *room_id, struct sub **head)
{
    struct room *r = room_lookup(ud, room_id);
    if (r) *head = r->head;
    return r ? &r->view : NULL;
}

static void presence_of_room(struct app *a, struct room *r)
{
    presence_room(a->rooms->pres, r->id, &r->view, r->head, app_wall_ms(), a->rooms->pres_force);
}

void room_presence_tick(struct app *a)
{
    struct rooms *rs = a->rooms;
    if (!rs->pres && !(rs->pres = presence_new(a->bus, a->cfg.presence_list_max, find_view, a)))
        return;
    if (!bus_up(a->bus)) return;
    presence_tick(rs->pres, app_wall_ms(), rs->pres_force);
    for_each_room(a, presence_of_room);
    rs->pres_force = false;
}

void room_presence_leave(struct app *a)
{
    if (a->rooms->pres) presence_leave(a->rooms->pres); /* a link that is down: not sent */
}

void room_typing(struct app *a, struct sub *s)
{
    char buf[160];
    int h = busfmt_event_header(buf, sizeof buf);
    struct pp_w w;
    pp_w_init(&w, buf + h, sizeof buf - (size_t)h);
    pp_enc_typing(&w, s->room_id, s->conn->person);
    int n = pp_w_finish(&w);
    char ch[BUSFMT_CHAN_CAP];
    if (h > 0 && n > 0 && s->room &&
        bus_publish(a->bus, ch, room_chan(s->room, ch), buf, (size_t)(h + n)) == 0) {
        a->stats.bus_published++;
        a->stats.typing_sent++;
    }
}
