#include "presence.h"

#include "bus.h"
#include "busfmt.h"
#include "frame.h"
#include "log.h"
#include "mem.h"
#include "room.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Entries are written when this gateway's people in a room change, and
 * every other gateway reads the room again when a presence hint on the
 * room's channel says so: an idle room costs no Redis traffic. (Reading
 * every room every second, as before, was most of what 100,000 idle
 * connections over 7 gateways cost: 30,000 Redis commands a second for
 * 20,000 of them.) Who is gone without a word (a crashed or stopped gateway)
 * is told by its liveness key, one per gateway, not by its entries
 * expiring: readers leave out the entries of a gateway whose key is gone. */
#define PRESENCE_ENTRY_TTL_MS 600000 /* an entry's score: stale ones go at the latest then */
#define PRESENCE_REFRESH_MS                                                                        \
    (PRESENCE_ENTRY_TTL_MS * 2 / 5) /* rewritten this often when unchanged */
#define PRESENCE_KEY_TTL "1200000"  /* the set itself, ms */
#define PRESENCE_LIVE_TTL_MS 10000  /* a gateway's liveness key: it is gone after this */
#define PRESENCE_LIVE_EVERY_MS 2000 /* the key written, the others' checked, this often */
/* A room is read at least this often even without a hint: a hint lost with
 * a link, or one that overtook its write (in a cluster the room's channel
 * and its presence key may live on different masters), costs 30 s at most. */
#define PRESENCE_SAFETY_MS 30000
#define PRESENCE_GWS 64 /* other gateways tracked; one past that is taken as alive */

/* Another gateway, as its liveness key last said. */
struct gwlive {
    struct presence *p;         /* owner, for the reply */
    char id[BUSFMT_GW_LEN + 1]; /* its id in the entries */
    bool checked;               /* answered at least once: until then its entries are left out */
    bool dead;                  /* its key was gone at the last check */
    bool pending;               /* a check is in flight */
    int64_t seen_ms;            /* wall ms its entries were last read (the oldest dead one goes) */
};

struct presence {
    struct bus *bus;       /* commands go on its publish link */
    uint32_t list_max;     /* larger rooms get counts only */
    presence_find_fn find; /* rooms by id, for replies */
    void *ud;              /* its argument */
    char gw[12];           /* this gateway's id in the entries */
    int64_t live_ms;       /* wall ms the liveness key was last written; 0: never */
    int64_t grace_ms;      /* until then a "gone" answer is not believed (see presence_tick) */
    uint32_t epoch;        /* bumped when a gateway dies or comes back: every room reads again */
    uint32_t ngws;         /* gws in use */
    struct gwlive gws[PRESENCE_GWS];
};

/* A person in a view: the id as its 16 bytes, not its 36 characters (every
 * gateway holding one of a room's members keeps the room's whole view: at
 * rooms of 10 over 7 gateways this was 0.1 KB per idle connection). */
#define ID_BYTES 16
struct pentry {
    uint8_t id[ID_BYTES]; /* the uuid's bytes */
    bool avatar;          /* avatar flag */
};

/* Who is online in a room (distinct people), as last read from Redis. */
struct pview {
    uint32_t n;            /* people */
    struct pentry *people; /* them, sorted by id */
    uint32_t nlocal;       /* this gateway's people at the last tick */
    struct pentry *local;  /* their entries as written, sorted (local_cmp) */
    bool known;            /* read at least once */
    bool pending;          /* a read is in flight */
    uint8_t dirty;         /* ticks that still read: a hint came (2: it may overtake its write) */
    uint32_t epoch;        /* the presence epoch at the last read */
    int64_t written_ms;    /* wall ms of the last refresh (ZADD); 0: never */
    int64_t read_ms;       /* wall ms of the last read */
    uint64_t sig;          /* local_sig at the last write */
    uint32_t nsig;         /* and the count it was over */
};

/* A read in flight: the room is found again by id when it is answered. */
struct pread {
    struct presence *p;         /* owner */
    int64_t t;                  /* wall ms it was sent */
    char room[PP_UUID_LEN + 1]; /* the room read */
};

struct presence *presence_new(struct bus *bus, uint32_t list_max, presence_find_fn find, void *ud)
{
    struct presence *p = mem_calloc(1, sizeof *p);
    if (!p) return NULL;
    p->bus = bus;
    p->list_max = list_max;
    p->find = find;
    p->ud = ud;
    snprintf(p->gw, sizeof p->gw, "%08x", randombytes_random());
    return p;
}

void presence_free(struct presence *p)
{
    mem_free(p);
}

uint32_t presence_people(const struct pview *v)
{
    return v && v->known ? v->n : 0;
}

static void presence_key(const char *room, char *key, size_t cap)
{
    snprintf(key, cap, "parley:presence:{%s}", room); /* a room's keys share a slot */
}

static void live_key(const char *gw, char *key, size_t cap)
{
    snprintf(key, cap, "parley:gateway:{%.*s}", BUSFMT_GW_LEN, gw);
}

/* The tracked gateway with this id (BUSFMT_GW_LEN characters), added if
 * new (unchecked: left out until its key answers); NULL when the table is
 * full of live or pending ones (its entries are then taken as they are). */
static struct gwlive *gw_track(struct presence *p, const char *id, int64_t now)
{
    struct gwlive *slot = NULL;
    for (uint32_t i = 0; i < p->ngws; i++) {
        struct gwlive *g = &p->gws[i];
        if (!memcmp(g->id, id, BUSFMT_GW_LEN)) {
            g->seen_ms = now;
            return g;
        }
        if (g->dead && !g->pending && (!slot || g->seen_ms < slot->seen_ms)) slot = g;
    }
    if (p->ngws < PRESENCE_GWS) slot = &p->gws[p->ngws++];
    if (!slot) return NULL;
    memset(slot, 0, sizeof *slot);
    slot->p = p;
    memcpy(slot->id, id, BUSFMT_GW_LEN);
    slot->seen_ms = now;
    return slot;
}

/* A canonical id's text (8-4-4-4-12, lower case) as bytes; -EINVAL if it is not one. */
static int id_pack(const char *s, uint8_t out[ID_BYTES])
{
    size_t n = 0;
    if (!pp_uuid_valid(s, PP_UUID_LEN) ||
        sodium_hex2bin(out, ID_BYTES, s, PP_UUID_LEN, "-", &n, NULL) || n != ID_BYTES)
        return -EINVAL;
    return 0;
}

static void id_text(const uint8_t id[ID_BYTES], char out[PP_UUID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    int k = 0;
    for (int i = 0; i < ID_BYTES; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out[k++] = '-';
        out[k++] = hex[id[i] >> 4];
        out[k++] = hex[id[i] & 15];
    }
    out[k] = '\0';
}

/* An entry as written: "person|gateway|avatar", from a local one. */
static void entry(const struct presence *p, const struct pentry *local, char *out, size_t cap)
{
    char id[PP_UUID_LEN + 1];
    id_text(local->id, id);
    snprintf(out, cap, "%s|%s|%c", id, p->gw, local->avatar ? '1' : '0');
}

/* Encodes a presence push: the snapshot (list) or a diff, or just the count
 * in a large room. */
static struct frame *presence_frame(const struct presence *p, const char *room,
                                    const struct pview *v, bool snapshot, const struct pview *old)
{
    uint32_t list_max = p->list_max;
    size_t cap = 256 + (size_t)v->n * 64 + (old ? (size_t)old->n * 64 : 0);
    char *buf = mem_alloc(cap);
    if (!buf) return NULL;
    struct pp_w w;
    pp_w_init(&w, buf, cap);
    pp_enc_presence_begin(&w, room, v->n);
    if (v->n <= list_max) {
        for (int part = snapshot ? 2 : 0; part < 3; part++) {
            /* 0: joined (in v, not in old), 1: left (in old, not in v), 2: online */
            const struct pview *from = part == 1 ? old : v;
            const struct pview *not_in = part == 2 ? NULL : part == 1 ? v : old;
            pp_enc_presence_list(&w, part == 0   ? PP_PRES_JOINED
                                     : part == 1 ? PP_PRES_LEFT
                                                 : PP_PRES_ONLINE);
            for (uint32_t i = 0; from && i < from->n; i++) {
                bool found = false;
                const struct pentry *e = &from->people[i];
                for (uint32_t j = 0; not_in && j < not_in->n && !found; j++)
                    found = !memcmp(e->id, not_in->people[j].id, ID_BYTES);
                if (found) continue;
                char id[PP_UUID_LEN + 1];
                id_text(e->id, id);
                pp_enc_presence_person(&w, id, e->avatar);
            }
            pp_enc_presence_list_end(&w);
        }
    }
    pp_enc_presence_end(&w);
    int n = pp_w_finish(&w);
    struct frame *f = n > 0 ? frame_new(buf, (size_t)n) : NULL;
    mem_free(buf);
    return f;
}

void presence_snapshot(struct presence *p, const char *room_id, const struct pview *v,
                       struct sub *s)
{
    if (!v || !v->known) return; /* the first read sends it */
    struct frame *f = presence_frame(p, room_id, v, true, NULL);
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
        if (memcmp(x->people[i].id, y->people[i].id, ID_BYTES) ||
            x->people[i].avatar != y->people[i].avatar)
            return false;
    return true;
}

/* Presence lists are sorted so that de-duplicating and comparing them is
 * linear: a room of thousands did tens of millions of comparisons a second
 * with pairwise loops (half the gateway's CPU in a room of 5,000). The
 * bytes of canonical ids sort as their text does. */
static int pentry_cmp(const void *x, const void *y)
{
    return memcmp(((const struct pentry *)x)->id, ((const struct pentry *)y)->id, ID_BYTES);
}

/* Local entries: by id, then avatar flag (a person's connections agree). */
static int local_cmp(const void *x, const void *y)
{
    return memcmp(x, y, sizeof(struct pentry));
}

static void gw_check(struct presence *p, struct gwlive *g);

static void on_presence(void *ud, const void *reply)
{
    struct pread *rd = ud;
    const redisReply *rep = reply;
    struct presence *p = rd->p;
    int64_t t = rd->t;
    struct sub *head = NULL;
    struct pview **vp = p->find(p->ud, rd->room, &head);
    char room[PP_UUID_LEN + 1];
    memcpy(room, rd->room, sizeof room);
    mem_free(rd);
    if (!vp || !*vp) return;
    struct pview *v = *vp;
    v->pending = false;
    if (!rep || rep->type != REDIS_REPLY_ARRAY) {
        if (!v->dirty) v->dirty = 1; /* again next tick */
        return;
    }
    /* Members are "person|gateway|avatar": people count once. */
    struct pentry *all = mem_alloc((rep->elements ? rep->elements : 1) * sizeof *all);
    if (!all) return;
    size_t na = 0;
    for (size_t i = 0; i < rep->elements; i++) {
        const redisReply *e = rep->element[i];
        if (e->type != REDIS_REPLY_STRING || e->len != PP_UUID_LEN + BUSFMT_GW_LEN + 3) continue;
        /* a gone gateway's entries are left out (and left to expire), and
         * an unknown one's until its key answers (asked at once) */
        const char *gw = e->str + PP_UUID_LEN + 1;
        struct gwlive *g = memcmp(gw, p->gw, BUSFMT_GW_LEN) ? gw_track(p, gw, t) : NULL;
        if (g && !g->checked && !g->pending) gw_check(p, g);
        if (g && (g->dead || !g->checked)) continue;
        if (id_pack(e->str, all[na].id)) continue;
        all[na].avatar = e->str[e->len - 1] == '1';
        na++;
    }
    qsort(all, na, sizeof *all, pentry_cmp);
    /* de-duplicated in place (a person on several gateways counts once),
     * then the array is cut to its size: views are kept by the thousand */
    struct pview nv = {.people = all};
    for (size_t i = 0; i < na; i++) {
        if (nv.n && !memcmp(all[nv.n - 1].id, all[i].id, ID_BYTES)) continue;
        all[nv.n++] = all[i];
    }
    if (nv.n < rep->elements) {
        struct pentry *fit = mem_realloc(all, (nv.n ? nv.n : 1) * sizeof *all);
        if (fit) nv.people = fit;
    }
    bool changed = !v->known || !view_same(&nv, v);
    struct frame *diff = changed && v->known ? presence_frame(p, room, &nv, false, v) : NULL;
    struct frame *snap = NULL;
    for (struct sub *s = head; s; s = s->next) {
        if (s->state != SUB_LIVE && s->state != SUB_REPLAY) continue;
        if (!s->pres_snap) {
            if (!snap) snap = presence_frame(p, room, &nv, true, NULL);
            if (snap && conn_send_ephemeral(s->conn, snap) == 0) s->pres_snap = true;
        } else if (diff) {
            conn_send_ephemeral(s->conn, diff);
        }
    }
    if (diff) frame_unref(diff);
    if (snap) frame_unref(snap);
    /* an unchanged view keeps its array: the long-lived one stays put */
    if (changed) {
        mem_free(v->people);
        v->people = nv.people;
        v->n = nv.n;
    } else {
        mem_free(nv.people);
    }
    v->known = true;
}

static void ignore_reply(void *ud, const void *reply)
{
    (void)ud;
    (void)reply;
}

/* One command through bus_call with an argv built here: 0, or -1 when it
 * was not sent (cb then had its NULL reply). */
static int call(struct presence *p, bus_reply_cb cb, void *ud, int argc, const char **argv)
{
    size_t *lens = mem_alloc((size_t)argc * sizeof *lens);
    int rc = -1;
    if (lens) {
        for (int i = 0; i < argc; i++)
            lens[i] = strlen(argv[i]);
        rc = bus_call(p->bus, cb, ud, argc, argv, lens) ? -1 : 0;
    }
    if (rc && cb != ignore_reply) cb(ud, NULL);
    mem_free(lens);
    return rc;
}

/* Whether cur (k sorted entries) is what was written last tick. */
static bool local_same(const struct pview *v, const struct pentry *cur, uint32_t k)
{
    return k == v->nlocal && (!k || !memcmp(cur, v->local, k * sizeof *cur));
}

/* Reads the room back (one read in flight at most). */
static void presence_read(struct presence *p, const char *room_id, struct pview *v, int64_t t)
{
    if (v->pending) { /* Redis is slow: skip a beat rather than pile up, but read after it */
        if (!v->dirty) v->dirty = 1;
        return;
    }
    v->read_ms = t;
    v->epoch = p->epoch;
    if (v->dirty) v->dirty--;
    char key[64], now[24];
    presence_key(room_id, key, sizeof key);
    snprintf(now, sizeof now, "%lld", (long long)t);
    const char *rd[4] = {"ZRANGEBYSCORE", key, now, "+inf"};
    struct pread *pr = mem_alloc(sizeof *pr);
    if (!pr) return;
    pr->p = p;
    pr->t = t;
    memcpy(pr->room, room_id, PP_UUID_LEN);
    pr->room[PP_UUID_LEN] = '\0';
    v->pending = true;
    call(p, on_presence, pr, 4, rd);
}

/* Tells the other gateways that this one changed its entries in the room
 * (after the writes, on the same link in a single Redis). */
static void hint(struct presence *p, const char *room_id)
{
    char ch[BUSFMT_CHAN_CAP], msg[16];
    int cl = busfmt_channel(ch, sizeof ch, room_id);
    int ml = busfmt_presence_hint(msg, sizeof msg, p->gw);
    if (cl > 0 && ml > 0) bus_publish(p->bus, ch, (size_t)cl, msg, (size_t)ml);
}

void presence_hint(struct presence *p, struct pview *v, const char *gw)
{
    if (!p || !v || (gw && !memcmp(gw, p->gw, BUSFMT_GW_LEN))) return;
    v->dirty = 2;
    if (!gw) v->written_ms = 0; /* and write ours again: the master may have lost them */
}

static void on_live(void *ud, const void *reply)
{
    struct gwlive *g = ud;
    struct presence *p = g->p;
    const redisReply *rep = reply;
    g->pending = false;
    if (!rep || rep->type != REDIS_REPLY_INTEGER) return; /* no answer says nothing */
    bool dead = rep->integer == 0;
    if (g->checked && dead == g->dead) return;
    if (dead && g->checked && p->live_ms < p->grace_ms) return; /* not believed yet */
    bool was_shown = g->checked && !g->dead;
    if (g->checked)
        log_info(dead ? "gateway gone, its people leave presence" : "gateway back in presence",
                 "gateway=%s", g->id);
    g->checked = true;
    g->dead = dead;
    if (was_shown != !dead) p->epoch++; /* every room reads again */
}

static void gw_check(struct presence *p, struct gwlive *g)
{
    char key[48];
    live_key(g->id, key, sizeof key);
    const char *ex[2] = {"EXISTS", key};
    g->pending = true;
    call(p, on_live, g, 2, ex);
}

void presence_tick(struct presence *p, int64_t wall_ms, bool force)
{
    if (force) {
        /* Redis is back, and may have lost our entries; rooms freed while
         * it was away could not remove theirs. A new id: the old one's key
         * lapses, and with it whatever it left behind; every room is
         * written again under the new one (force). */
        snprintf(p->gw, sizeof p->gw, "%08x", randombytes_random());
        p->live_ms = 0;
    }
    /* Every 2 s (a tick early is on time: the ticks run on the loop's
     * clock, this is the wall clock). */
    if (p->live_ms && wall_ms >= p->live_ms && wall_ms - p->live_ms < PRESENCE_LIVE_EVERY_MS - 500)
        return;
    /* After a gap in our own ticks long enough for the others' keys to have
     * lapsed for the same reason (Redis or PostgreSQL away), they get one
     * key lifetime to write theirs again before they are believed gone. A
     * shorter gap (a loop slowed down by a busy machine) cannot have done
     * that, and must not slow the finding of a dead gateway down. */
    if (!p->live_ms || wall_ms - p->live_ms > PRESENCE_LIVE_TTL_MS - 2 * PRESENCE_LIVE_EVERY_MS)
        p->grace_ms = wall_ms + PRESENCE_LIVE_TTL_MS;
    p->live_ms = wall_ms ? wall_ms : 1;
    char key[48], ttl[16];
    live_key(p->gw, key, sizeof key);
    snprintf(ttl, sizeof ttl, "%d", PRESENCE_LIVE_TTL_MS);
    const char *set[5] = {"SET", key, "1", "PX", ttl};
    call(p, ignore_reply, NULL, 5, set);
    for (uint32_t i = 0; i < p->ngws; i++)
        if (!p->gws[i].pending) gw_check(p, &p->gws[i]);
}

void presence_leave(struct presence *p)
{
    char key[48];
    live_key(p->gw, key, sizeof key);
    const char *del[2] = {"DEL", key};
    call(p, ignore_reply, NULL, 2, del);
}

void presence_view_free(struct presence *p, const char *room_id, struct pview *v)
{
    if (!v) return;
    if (p && v->nlocal) {
        char key[64];
        char(*members)[PP_UUID_LEN + 24] = mem_alloc(v->nlocal * sizeof *members);
        const char **argv = mem_alloc((2 + (size_t)v->nlocal) * sizeof *argv);
        presence_key(room_id, key, sizeof key);
        if (members && argv) {
            argv[0] = "ZREM";
            argv[1] = key;
            for (uint32_t i = 0; i < v->nlocal; i++) {
                entry(p, &v->local[i], members[i], sizeof members[i]);
                argv[2 + i] = members[i];
            }
            call(p, ignore_reply, NULL, 2 + (int)v->nlocal, argv);
            hint(p, room_id);
        }
        mem_free(members);
        mem_free(argv);
    }
    mem_free(v->people);
    mem_free(v->local);
    mem_free(v);
}

/* This gateway's members in the room, as a count and an order-free sum of
 * their people's hashes: when both are what was last written, the sorted
 * list (an allocation, a sort and a string per member, per room, every
 * tick: a fifth of an idle gateway's CPU at 7,000 connections) is not built. */
static uint64_t local_sig(struct sub *head, uint32_t *n)
{
    uint64_t sig = 0;
    *n = 0;
    for (struct sub *s = head; s; s = s->next) {
        if (s->state != SUB_LIVE && s->state != SUB_REPLAY) continue;
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */
        for (int i = 0; i < PP_UUID_LEN; i++)
            h = (h ^ (unsigned char)s->conn->person[i]) * 1099511628211ULL;
        sig += h * 2 + (s->conn->avatar ? 1 : 0);
        (*n)++;
    }
    return sig;
}

/* Reads the room if something may have changed elsewhere: a hint, a
 * gateway gone or back, or the 30 s bound (or the clock stepped back). */
static void read_if_due(struct presence *p, const char *room_id, struct pview *v, int64_t t)
{
    if (!v->known || v->dirty || v->epoch != p->epoch || t < v->read_ms ||
        t - v->read_ms >= PRESENCE_SAFETY_MS)
        presence_read(p, room_id, v, t);
}

void presence_room(struct presence *p, const char *room_id, struct pview **view, struct sub *head,
                   int64_t wall_ms, bool force)
{
    /* No member here any more: once more, to remove this gateway's entries. */
    if (!head && (!*view || !(*view)->nlocal)) return;
    if (!*view && !(*view = mem_calloc(1, sizeof **view))) return;
    struct pview *v = *view;
    int64_t t = wall_ms;
    uint32_t n;
    uint64_t sig = local_sig(head, &n);
    /* Unchanged here and written recently (the wall clock did not step
     * back): the entries stand; a slow Redis never delays a due refresh. */
    bool fresh = v->written_ms && t >= v->written_ms && t - v->written_ms < PRESENCE_REFRESH_MS;
    if (!force && fresh && n == v->nsig && sig == v->sig) {
        read_if_due(p, room_id, v, t);
        return;
    }
    /* 17 bytes a person (kept as v->local, one per room copy on a gateway) */
    struct pentry *cur = mem_alloc((n ? n : 1) * sizeof *cur);
    if (!cur) return;
    uint32_t k = 0;
    for (struct sub *s = head; s; s = s->next) {
        if (s->state != SUB_LIVE && s->state != SUB_REPLAY) continue;
        if (id_pack(s->conn->person, cur[k].id)) continue; /* never: auth gave it */
        cur[k++].avatar = s->conn->avatar;
    }
    /* sorted, a person's several connections once (v->local stays sorted) */
    qsort(cur, k, sizeof *cur, local_cmp);
    uint32_t d = 0;
    for (uint32_t i = 0; i < k; i++)
        if (!d || local_cmp(&cur[d - 1], &cur[i])) cur[d++] = cur[i];
    k = d;
    /* The signature moved but not the people (a second connection of
     * someone here): only it is new. */
    bool same = local_same(v, cur, k);
    if (!force && fresh && same) {
        mem_free(cur);
        v->sig = sig;
        v->nsig = n;
        read_if_due(p, room_id, v, t);
        return;
    }
    char key[64], exp[24], now[24];
    presence_key(room_id, key, sizeof key);
    snprintf(exp, sizeof exp, "%lld", (long long)(t + PRESENCE_ENTRY_TTL_MS));
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
    int bad = 0; /* a command not sent: nothing is taken as written, all again next tick */
    if (k) {
        int argc = 0;
        argv[argc++] = "ZADD";
        argv[argc++] = key;
        for (uint32_t i = 0; i < k; i++, m++) {
            entry(p, &cur[i], members[m], sizeof members[m]);
            argv[argc++] = exp;
            argv[argc++] = members[m];
        }
        bad |= call(p, ignore_reply, NULL, argc, argv);
    }
    /* People who left this gateway since the last tick: gone at once. */
    int argc = 0;
    argv[argc++] = "ZREM";
    argv[argc++] = key;
    for (uint32_t i = 0, j = 0; i < v->nlocal; i++) {
        /* both sorted: walk them together */
        int c = 1;
        while (j < k && (c = local_cmp(&cur[j], &v->local[i])) < 0)
            j++;
        if (j < k && c == 0) continue; /* still here */
        entry(p, &v->local[i], members[m], sizeof members[m]);
        argv[argc++] = members[m++];
    }
    if (argc > 2) bad |= call(p, ignore_reply, NULL, argc, argv);
    const char *trim[4] = {"ZREMRANGEBYSCORE", key, "-inf", now};
    bad |= call(p, ignore_reply, NULL, 4, trim);
    const char *ttl[3] = {"PEXPIRE", key, PRESENCE_KEY_TTL};
    bad |= call(p, ignore_reply, NULL, 3, ttl);
    mem_free(members);
    mem_free(argv);
    if (bad) {
        mem_free(cur);
        return;
    }
    v->written_ms = t ? t : 1;
    v->sig = sig;
    v->nsig = n;
    if (!same || force) hint(p, room_id);
    if (k) presence_read(p, room_id, v, t); /* nobody here to tell when 0 */
    mem_free(v->local);
    v->local = cur;
    v->nlocal = k;
}
