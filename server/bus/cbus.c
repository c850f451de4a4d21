#include "cbus.h"

#include "busfmt.h"
#include "cslot.h"
#include "log.h"
#include "mem.h"
#include "slink.h"
#include "uvev.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CB_TICK_MS 100
#define CB_BACKOFF_MIN_MS 100
#define CB_BACKOFF_MAX_MS 2000
#define CB_MAX_UNANSWERED 50000 /* per master, as bus.c's publish link */
#define CB_MAX_SEEDS 16
#define CB_MAX_PARKED 4096 /* commands answered MOVED to a master not yet mapped */
#define CB_BUCKETS 4096

/* A master: its publish/command context and its subscriber link. */
struct cnode {
    struct cbus *cb;                  /* owner */
    char host[CSLOT_HOST_CAP];        /* address */
    int port;                         /* port */
    redisAsyncContext *ac;            /* NULL when down; hiredis frees it */
    bool up;                          /* connect callback said OK */
    bool was_up;                      /* for the reconnect count */
    uint64_t retry_at;                /* reconnect when down and now >= this */
    uint64_t connect_deadline;        /* a connect not done by then is abandoned */
    unsigned backoff_ms;              /* next reconnect delay */
    unsigned unanswered;              /* commands sent, reply not yet seen */
    unsigned long long answered;      /* replies seen, ever */
    unsigned long long answered_seen; /* at the previous tick */
    uint64_t silent_ms;               /* loop time owed replies without one */
    struct slink *sl;                 /* subscriber link */
};

enum cstate { C_WAIT, C_PENDING, C_ON, C_LEAVING };

/* A channel somebody subscribed: where, and whether it is still wanted. */
struct chan {
    struct chan *next;  /* hash chain */
    struct cnode *node; /* PENDING, ON, LEAVING: the node's link */
    enum cstate st;     /* see enum */
    bool wanted;        /* subscribed by the caller, not unsubscribed since */
    bool was_on;        /* confirmed before */
    bool recovering;    /* lost after being confirmed: the next confirmation recovers */
    size_t len;         /* channel length */
    char ch[];          /* channel */
};

/* A command in flight; its argv is kept for one retry after MOVED/ASK. */
struct req {
    struct cbus *cb;   /* owner */
    bus_reply_cb fn;   /* caller's callback, or NULL for a publish */
    void *ud;          /* for fn */
    int tries;         /* sends so far */
    int key;           /* argv index of the key that routes it */
    uint64_t deadline; /* parked: given up after this */
    struct req *pnext; /* in cbus.parked */
    int argc;          /* arguments */
    const char **argv; /* into the same allocation */
    size_t *lens;      /* their lengths */
};

struct cbus {
    uv_loop_t *loop;        /* the one loop */
    int timeout_ms;         /* silence and connect limit */
    struct bus_hooks hooks; /* room layer */
    struct {
        char host[CSLOT_HOST_CAP];
        int port;
    } seed[CB_MAX_SEEDS];                /* where to ask for the map first */
    int nseeds;                          /* used */
    struct cslot_map *map, *next;        /* current map; a spare to parse into */
    bool mapped;                         /* map holds a parsed reply */
    struct cnode *node[CSLOT_MAX_NODES]; /* map index -> master node, NULL for a replica */
    redisAsyncContext *mq;               /* CLUSTER SLOTS query in flight */
    uint64_t mq_deadline;                /* abandoned after this */
    unsigned mq_next;                    /* next address to ask */
    bool refresh_wanted;                 /* something asks for a new map */
    uint64_t refresh_at;                 /* not before this */
    bool dirty;                          /* channels may be waiting to subscribe */
    struct chan *tab[CB_BUCKETS];        /* channels */
    uv_timer_t tick;                     /* reconnects, watchdogs, refreshes */
    uint64_t last_tick;                  /* when on_tick last ran */
    bool was_up;                         /* cbus_up at the previous look */
    bool closing;                        /* cbus_close called */
    struct req *parked;                  /* MOVED to a master the map does not have yet */
    unsigned nparked;                    /* at most CB_MAX_PARKED */
    unsigned long long reconnects;       /* publish links re-established */
};

static uint64_t now_ms(const struct cbus *cb)
{
    return uv_now(cb->loop);
}

/* ---- channels ------------------------------------------------------------ */

static uint32_t chash(const char *ch, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)ch[i]) * 16777619u;
    return h & (CB_BUCKETS - 1);
}

static struct chan *chan_find(struct cbus *cb, const char *ch, size_t n)
{
    for (struct chan *c = cb->tab[chash(ch, n)]; c; c = c->next)
        if (c->len == n && !memcmp(c->ch, ch, n)) return c;
    return NULL;
}

static void chan_remove(struct cbus *cb, struct chan *c)
{
    struct chan **pp = &cb->tab[chash(c->ch, c->len)];
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    mem_free(c);
}

/* The channel is off its link for good (unsubscribed, or the link is gone
 * while leaving): tell the caller, forget it unless wanted again. */
static void chan_gone(struct cbus *cb, struct chan *c)
{
    c->st = C_WAIT;
    c->node = NULL;
    char ch[SLINK_CHAN_MAX];
    size_t n = c->len;
    memcpy(ch, c->ch, n);
    if (!c->wanted)
        chan_remove(cb, c);
    else
        cb->dirty = true;
    cb->hooks.on_unsubscribed(cb->hooks.ud, ch, n); /* may subscribe again */
}

/* Lost without being asked (link down, slot moved): subscribe again. One
 * nobody wants any more (its room left while it was pending) is gone now:
 * the room waits for that answer before it may subscribe again. */
static void chan_lost(struct cbus *cb, struct chan *c)
{
    if (c->st == C_LEAVING || !c->wanted) {
        chan_gone(cb, c);
        return;
    }
    c->st = C_WAIT;
    c->node = NULL;
    c->recovering = c->was_on;
    cb->dirty = true;
    cb->refresh_wanted = true;
}

static struct cnode *route(const struct cbus *cb, const char *k, size_t n)
{
    if (!cb->mapped) return NULL;
    uint16_t o = cb->map->owner[cslot_keyslot(k, n)];
    return o == CSLOT_NONE ? NULL : cb->node[o];
}

static void chan_try(struct cbus *cb, struct chan *c)
{
    if (c->st != C_WAIT || !c->wanted) return;
    struct cnode *n = route(cb, c->ch, c->len);
    if (!n || !slink_up(n->sl)) return;
    if (slink_ssubscribe(n->sl, c->ch, c->len) == 0) {
        c->st = C_PENDING;
        c->node = n;
    }
}

static void for_each_chan(struct cbus *cb, void (*fn)(struct cbus *, struct chan *, void *),
                          void *arg)
{
    for (int b = 0; b < CB_BUCKETS; b++)
        for (struct chan *c = cb->tab[b], *next; c; c = next) {
            next = c->next;
            fn(cb, c, arg);
        }
}

static void try_each(struct cbus *cb, struct chan *c, void *arg)
{
    (void)arg;
    chan_try(cb, c);
    if (c->st == C_WAIT && c->wanted) cb->dirty = true; /* still: the tick tries again */
}

static void lose_on(struct cbus *cb, struct chan *c, void *node)
{
    if (c->node == node) chan_lost(cb, c);
}

/* ---- subscriber links ---------------------------------------------------- */

static void sl_message(void *ud, struct slink *l, const char *ch, size_t chlen, const char *p,
                       size_t len)
{
    struct cbus *cb = ud;
    (void)l;
    cb->hooks.on_message(cb->hooks.ud, ch, chlen, p, len);
}

static void sl_subscribed(void *ud, struct slink *l, const char *ch, size_t chlen)
{
    struct cbus *cb = ud;
    struct chan *c = chan_find(cb, ch, chlen);
    if (!c || c->st != C_PENDING || c->node != slink_data(l)) return;
    c->st = C_ON;
    if (!c->wanted) {
        if (slink_sunsubscribe(l, ch, chlen) == 0)
            c->st = C_LEAVING;
        else
            chan_gone(cb, c); /* the link drops it; the room is told it is gone */
        return;
    }
    bool recovery = c->recovering;
    c->recovering = false;
    c->was_on = true;
    /* The room fetches what was committed meanwhile (its gap recovery). */
    cb->hooks.on_subscribed(cb->hooks.ud, ch, chlen);
    /* Other channels (control events) have no recovery of their own but
     * the full one: what on_up runs. */
    if (recovery && !busfmt_channel_room(ch, chlen) && cb->hooks.on_up)
        cb->hooks.on_up(cb->hooks.ud);
}

static void sl_unsubscribed(void *ud, struct slink *l, const char *ch, size_t chlen, bool unsol)
{
    struct cbus *cb = ud;
    struct chan *c = chan_find(cb, ch, chlen);
    log_debug("sunsubscribe", "channel=%.*s unsolicited=%d known=%d state=%d same_node=%d",
              (int)chlen, ch, unsol, c != NULL, c ? (int)c->st : -1,
              c ? c->node == slink_data(l) : 0);
    if (!c || c->node != slink_data(l)) return;
    if (unsol) log_info("redis slot moved, resubscribing", "channel=%.*s", (int)chlen, ch);
    if (unsol)
        chan_lost(cb, c);
    else if (c->st == C_LEAVING)
        chan_gone(cb, c);
}

static void sl_refused(void *ud, struct slink *l, const char *ch, size_t chlen, bool sub,
                       const char *err)
{
    struct cbus *cb = ud;
    struct chan *c = chan_find(cb, ch, chlen);
    (void)err;
    cb->refresh_wanted = true;
    if (!c || c->node != slink_data(l)) return;
    if (sub)
        chan_lost(cb, c);
    else
        chan_gone(cb, c);
}

static void sl_up(void *ud, struct slink *l)
{
    struct cbus *cb = ud;
    (void)l;
    cb->dirty = true; /* the tick subscribes what waits for this link */
}

static void sl_down(void *ud, struct slink *l)
{
    struct cbus *cb = ud;
    cb->refresh_wanted = true;
    for_each_chan(cb, lose_on, slink_data(l));
}

static const struct slink_hooks sl_hooks = {
    .on_message = sl_message,
    .on_subscribed = sl_subscribed,
    .on_unsubscribed = sl_unsubscribed,
    .on_refused = sl_refused,
    .on_up = sl_up,
    .on_down = sl_down,
};

/* ---- publish links ------------------------------------------------------- */

static void node_down(struct cnode *n, const char *why)
{
    bool was = n->up;
    n->ac = NULL; /* hiredis frees the context after this callback */
    n->up = false;
    n->unanswered = 0;
    n->retry_at = now_ms(n->cb) + n->backoff_ms;
    n->backoff_ms = n->backoff_ms * 2 > CB_BACKOFF_MAX_MS ? CB_BACKOFF_MAX_MS : n->backoff_ms * 2;
    if (n->cb->closing) return;
    n->cb->refresh_wanted = true;
    if (was)
        log_warn("redis shard connection lost", "node=%s:%d reason=\"%s\"", n->host, n->port, why);
}

static void on_node_connect(const redisAsyncContext *ac, int status)
{
    struct cnode *n = ac->data;
    if (status != REDIS_OK) {
        node_down(n, ac->errstr);
        return;
    }
    n->up = true;
    n->silent_ms = 0;
    n->backoff_ms = CB_BACKOFF_MIN_MS;
    if (n->was_up) n->cb->reconnects++;
    n->was_up = true;
}

static void on_node_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    node_down(ac->data, ac->errstr[0] ? ac->errstr : "closed");
}

static void node_connect(struct cnode *n)
{
    redisAsyncContext *ac = redisAsyncConnect(n->host, n->port);
    if (!ac || ac->err || uvev_attach(ac, n->cb->loop)) {
        if (ac) redisAsyncFree(ac);
        n->retry_at = now_ms(n->cb) + n->backoff_ms;
        return;
    }
    ac->data = n;
    redisAsyncSetConnectCallback(ac, on_node_connect);
    redisAsyncSetDisconnectCallback(ac, on_node_disconnect);
    n->ac = ac;
    n->connect_deadline = now_ms(n->cb) + (uint64_t)n->cb->timeout_ms;
}

static struct cnode *node_new(struct cbus *cb, const char *host, int port)
{
    struct cnode *n = mem_calloc(1, sizeof *n);
    if (!n) return NULL;
    n->cb = cb;
    snprintf(n->host, sizeof n->host, "%s", host);
    n->port = port;
    n->backoff_ms = CB_BACKOFF_MIN_MS;
    struct slink_hooks h = sl_hooks;
    h.ud = cb;
    n->sl = slink_new(cb->loop, host, port, cb->timeout_ms, &h);
    if (!n->sl) {
        mem_free(n);
        return NULL;
    }
    slink_set_data(n->sl, n);
    node_connect(n);
    slink_start(n->sl);
    log_info("redis shard master", "node=%s:%d", host, port);
    return n;
}

static void node_free(struct cbus *cb, struct cnode *n)
{
    if (n->ac) redisAsyncFree(n->ac); /* callbacks run now, with NULL replies */
    slink_close(n->sl);
    if (!cb->closing) for_each_chan(cb, lose_on, n);
    mem_free(n);
}

/* ---- commands ------------------------------------------------------------ */

static int req_send(struct cnode *n, struct req *q, bool ask);

static void on_req_reply(redisAsyncContext *ac, void *rv, void *priv)
{
    struct req *q = priv;
    struct cnode *n = ac->data;
    struct cbus *cb = q->cb;
    redisReply *r = rv;
    if (n->unanswered) n->unanswered--;
    n->answered++;
    if (r && r->type == REDIS_REPLY_ERROR && !cb->closing) {
        bool moved = !strncmp(r->str, "MOVED ", 6), ask = !strncmp(r->str, "ASK ", 4);
        /* The cluster changing under us: read the map again. */
        if (!strncmp(r->str, "CLUSTERDOWN", 11) || !strncmp(r->str, "TRYAGAIN", 8) ||
            !strncmp(r->str, "READONLY", 8))
            cb->refresh_wanted = true;
        if (moved || ask) {
            cb->refresh_wanted = true;
            char host[CSLOT_HOST_CAP];
            int slot, port;
            const char *sp = strrchr(r->str, ' '), *colon = strrchr(r->str, ':');
            if (q->tries < 2 && sp && colon > sp && (size_t)(colon - sp - 1) < sizeof host &&
                sscanf(r->str + (moved ? 6 : 4), "%d", &slot) == 1) {
                memcpy(host, sp + 1, (size_t)(colon - sp - 1));
                host[colon - sp - 1] = '\0';
                port = atoi(colon + 1);
                for (int i = 0; i < CSLOT_MAX_NODES; i++) {
                    struct cnode *t = cb->node[i];
                    if (t && t->port == port && !strcmp(t->host, host) && t->up)
                        if (req_send(t, q, ask) == 0) return;
                }
            }
            /* The new owner (a replica just promoted) is not mapped yet:
             * the command waits for the map rather than being lost (a
             * publish no one hears, while the other gateways have already
             * caught up on the new owner). Bounded in number and time. */
            if (q->tries < 3 && cb->nparked < CB_MAX_PARKED) {
                q->deadline = now_ms(cb) + (uint64_t)cb->timeout_ms;
                q->pnext = cb->parked;
                cb->parked = q;
                cb->nparked++;
                return;
            }
        }
    }
    if (q->fn) q->fn(q->ud, r);
    mem_free(q);
}

/* Sends the parked commands their route now names; gives up on those past
 * their deadline (a publish is then lost as on a lost link; a call is
 * answered NULL). */
static void unpark(struct cbus *cb, uint64_t now, bool all)
{
    for (struct req **pp = &cb->parked, *q; (q = *pp);) {
        struct cnode *n = cb->mapped ? route(cb, q->argv[q->key], q->lens[q->key]) : NULL;
        bool sent = !all && n && n->up && req_send(n, q, false) == 0;
        if (!sent && !all && now < q->deadline) {
            pp = &q->pnext;
            continue;
        }
        *pp = q->pnext;
        cb->nparked--;
        if (sent) continue;
        if (q->fn) q->fn(q->ud, NULL);
        mem_free(q);
    }
}

static int req_send(struct cnode *n, struct req *q, bool ask)
{
    if (!n || !n->up) return -EAGAIN;
    if (n->unanswered >= CB_MAX_UNANSWERED) return -ENOBUFS;
    if (ask && redisAsyncCommand(n->ac, NULL, NULL, "ASKING") != REDIS_OK) return -EAGAIN;
    if (redisAsyncCommandArgv(n->ac, on_req_reply, q, q->argc, q->argv, q->lens) != REDIS_OK)
        return -EAGAIN;
    n->unanswered++;
    q->tries++;
    return 0;
}

/* One allocation: the request, the argument vectors and the bytes. */
static struct req *req_new(struct cbus *cb, bus_reply_cb fn, void *ud, int argc, const char **argv,
                           const size_t *lens)
{
    size_t bytes = 0;
    for (int i = 0; i < argc; i++)
        bytes += lens[i];
    size_t vec = (size_t)argc * (sizeof(char *) + sizeof(size_t));
    struct req *q = mem_alloc(sizeof *q + vec + bytes);
    if (!q) return NULL;
    q->cb = cb;
    q->fn = fn;
    q->ud = ud;
    q->tries = 0;
    q->key = 1;
    q->argc = argc;
    q->argv = (const char **)(q + 1);
    q->lens = (size_t *)(q->argv + argc);
    char *d = (char *)(q->lens + argc);
    for (int i = 0; i < argc; i++) {
        memcpy(d, argv[i], lens[i]);
        q->argv[i] = d;
        q->lens[i] = lens[i];
        d += lens[i];
    }
    return q;
}

static int submit(struct cbus *cb, int k, bus_reply_cb fn, void *ud, int argc, const char **argv,
                  const size_t *lens)
{
    struct cnode *n = route(cb, argv[k], lens[k]);
    if (!n || !n->up) return -EAGAIN;
    if (n->unanswered >= CB_MAX_UNANSWERED) return -ENOBUFS;
    struct req *q = req_new(cb, fn, ud, argc, argv, lens);
    if (!q) return -ENOMEM;
    q->key = k;
    int rc = req_send(n, q, false);
    if (rc) mem_free(q);
    return rc;
}

int cbus_publish(struct cbus *cb, const char *ch, size_t chlen, const char *p, size_t len)
{
    const char *argv[3] = {"SPUBLISH", ch, p};
    size_t lens[3] = {8, chlen, len};
    return submit(cb, 1, NULL, NULL, 3, argv, lens);
}

int cbus_call(struct cbus *cb, bus_reply_cb fn, void *ud, int argc, const char **argv,
              const size_t *argvlen)
{
    /* The key decides the node: EVAL's first key, else the first argument. */
    int k = 1;
    if (argc >= 4 && (!strcasecmp(argv[0], "EVAL") || !strcasecmp(argv[0], "EVALSHA"))) k = 3;
    if (argc <= k) return -EINVAL;
    return submit(cb, k, fn, ud, argc, argv, argvlen);
}

int cbus_subscribe(struct cbus *cb, const char *ch, size_t chlen)
{
    if (!chlen || chlen > SLINK_CHAN_MAX) return -EINVAL;
    struct chan *c = chan_find(cb, ch, chlen);
    if (!c) {
        c = mem_calloc(1, sizeof *c + chlen);
        if (!c) return -ENOMEM;
        memcpy(c->ch, ch, chlen);
        c->len = chlen;
        uint32_t b = chash(ch, chlen);
        c->next = cb->tab[b];
        cb->tab[b] = c;
    }
    c->wanted = true;
    if (c->st == C_ON) {
        /* Subscribed already (the control channel at every on_up): ask
         * again, so the confirmation comes later, as the caller expects,
         * and not from inside this call. */
        if (slink_ssubscribe(c->node->sl, ch, chlen) == 0)
            c->st = C_PENDING;
        else
            chan_lost(cb, c);
    } else {
        chan_try(cb, c);
    }
    if (c->st == C_WAIT) cb->dirty = true;
    return 0;
}

int cbus_unsubscribe(struct cbus *cb, const char *ch, size_t chlen)
{
    struct chan *c = chan_find(cb, ch, chlen);
    if (!c) return -ENOENT;
    c->wanted = false;
    if (c->st == C_ON) {
        if (slink_sunsubscribe(c->node->sl, ch, chlen) == 0) {
            c->st = C_LEAVING;
            return 0;
        }
        chan_remove(cb, c); /* the link is failing: nothing to unsubscribe */
        return -EAGAIN;
    }
    if (c->st == C_WAIT) {
        chan_remove(cb, c);
        return -EAGAIN; /* nothing was subscribed: the caller forgets it now */
    }
    return 0; /* PENDING: unsubscribed when confirmed; LEAVING: already */
}

/* ---- the slot map ---------------------------------------------------------- */

static void apply_map(struct cbus *cb)
{
    struct cslot_map *m = cb->next;
    struct cnode *old[CSLOT_MAX_NODES], *fresh[CSLOT_MAX_NODES] = {0};
    memcpy(old, cb->node, sizeof old);
    for (int i = 0; i < m->nnodes; i++) {
        if (m->node[i].master >= 0) continue;
        for (int j = 0; j < CSLOT_MAX_NODES && !fresh[i]; j++)
            if (old[j] && old[j]->port == m->node[i].port &&
                !strcmp(old[j]->host, m->node[i].host)) {
                fresh[i] = old[j];
                old[j] = NULL;
            }
        if (!fresh[i]) fresh[i] = node_new(cb, m->node[i].host, m->node[i].port);
        if (!fresh[i]) cb->refresh_wanted = true; /* out of memory: a master unrouted */
    }
    cb->next = cb->map;
    cb->map = m;
    cb->mapped = true;
    memcpy(cb->node, fresh, sizeof fresh);
    for (int j = 0; j < CSLOT_MAX_NODES; j++)
        if (old[j]) {
            log_info("redis shard no longer a master", "node=%s:%d", old[j]->host, old[j]->port);
            node_free(cb, old[j]);
        }
    cb->dirty = true;
}

static void on_slots(redisAsyncContext *ac, void *rv, void *priv)
{
    struct cbus *cb = priv;
    redisReply *r = rv;
    if (r && !cb->closing) {
        if (cslot_map_parse(cb->next, r, ac->c.tcp.host) == 0 && cb->next->nnodes) {
            if (!cb->mapped || memcmp(cb->next, cb->map, sizeof *cb->map))
                log_info("redis cluster slot map", "masters_and_replicas=%d uncovered=%d",
                         cb->next->nnodes, cb->next->uncovered);
            apply_map(cb);
            cb->refresh_wanted = false;
        } else {
            log_warn("redis cluster slot map unreadable", "from=%s:%d", ac->c.tcp.host,
                     ac->c.tcp.port);
        }
    }
    if (cb->mq == ac) redisAsyncDisconnect(ac);
}

static void on_mq_connect(const redisAsyncContext *ac, int status)
{
    struct cbus *cb = ac->data;
    if (status != REDIS_OK && cb->mq == ac) cb->mq = NULL;
}

static void on_mq_disconnect(const redisAsyncContext *ac, int status)
{
    struct cbus *cb = ac->data;
    (void)status;
    if (cb->mq == ac) cb->mq = NULL;
}

/* Asks the next address in turn: the seeds, then every node of the map. */
static void refresh(struct cbus *cb)
{
    unsigned total = (unsigned)cb->nseeds + (cb->mapped ? (unsigned)cb->map->nnodes : 0);
    unsigned i = cb->mq_next++ % total;
    const char *host =
        i < (unsigned)cb->nseeds ? cb->seed[i].host : cb->map->node[i - cb->nseeds].host;
    int port = i < (unsigned)cb->nseeds ? cb->seed[i].port : cb->map->node[i - cb->nseeds].port;
    redisAsyncContext *ac = redisAsyncConnect(host, port);
    if (!ac || ac->err || uvev_attach(ac, cb->loop)) {
        if (ac) redisAsyncFree(ac);
        return;
    }
    ac->data = cb;
    redisAsyncSetConnectCallback(ac, on_mq_connect);
    redisAsyncSetDisconnectCallback(ac, on_mq_disconnect);
    redisAsyncCommand(ac, on_slots, cb, "CLUSTER SLOTS");
    cb->mq = ac;
    cb->mq_deadline = now_ms(cb) + (uint64_t)cb->timeout_ms;
}

/* ---- the tick ------------------------------------------------------------ */

static void node_tick(struct cnode *n, uint64_t now, uint64_t step)
{
    if (!n->ac && now >= n->retry_at) {
        node_connect(n);
    } else if (n->ac && !n->up && now >= n->connect_deadline) {
        redisAsyncFree(n->ac); /* never connected: no callback runs */
        node_down(n, "connect timeout");
    }
    /* Judged on progress, as bus.c's publish link (see there). */
    if (!n->ac || !n->up || !n->unanswered || n->answered != n->answered_seen) {
        n->silent_ms = 0;
    } else {
        redisAsyncHandleRead(n->ac);
        if (n->ac && n->answered == n->answered_seen) n->silent_ms += step;
        if (n->ac && n->up && n->silent_ms > (uint64_t)n->cb->timeout_ms) {
            log_warn("redis shard publish timeout", "node=%s:%d unanswered=%u", n->host, n->port,
                     n->unanswered);
            redisAsyncFree(n->ac); /* runs on_node_disconnect */
        }
    }
    n->answered_seen = n->answered;
}

static void on_tick(uv_timer_t *t)
{
    struct cbus *cb = t->data;
    uint64_t now = now_ms(cb);
    uint64_t step = now - cb->last_tick;
    cb->last_tick = now;
    if (step > 2 * CB_TICK_MS) step = 2 * CB_TICK_MS;
    bool all = cb->mapped && !cb->map->uncovered;
    for (int i = 0; cb->mapped && i < cb->map->nnodes; i++)
        if (cb->map->node[i].master < 0 && !cb->node[i]) all = false; /* node_new failed */
    for (int i = 0; i < CSLOT_MAX_NODES; i++)
        if (cb->node[i]) {
            node_tick(cb->node[i], now, step);
            if (!cb->node[i]->up || !slink_up(cb->node[i]->sl)) all = false;
        }
    if (cb->mq && now >= cb->mq_deadline) {
        /* hiredis runs no disconnect callback for a context that never
         * connected (a host that does not answer), so forget it here. */
        redisAsyncContext *ac = cb->mq;
        cb->mq = NULL;
        redisAsyncFree(ac);
    }
    if (!cb->mq && now >= cb->refresh_at && (!cb->mapped || cb->refresh_wanted || !all)) {
        refresh(cb);
        cb->refresh_at = now + CBUS_REFRESH_MS;
    }
    if (cb->dirty) {
        cb->dirty = false;
        for_each_chan(cb, try_each, NULL);
    }
    if (cb->parked) unpark(cb, now, false);
    if (all && !cb->was_up) {
        cb->was_up = true;
        log_info("redis cluster up", "%s", "");
        if (cb->hooks.on_pub_up) cb->hooks.on_pub_up(cb->hooks.ud);
        if (cb->hooks.on_up) cb->hooks.on_up(cb->hooks.ud);
    } else if (!all) {
        cb->was_up = false;
    }
}

/* ---- life ------------------------------------------------------------------ */

struct cbus *cbus_new(uv_loop_t *loop, const char *seeds, int timeout_ms,
                      const struct bus_hooks *hooks)
{
    struct cbus *cb = mem_calloc(1, sizeof *cb);
    if (!cb) return NULL;
    cb->map = mem_calloc(1, sizeof *cb->map);
    cb->next = mem_calloc(1, sizeof *cb->next);
    if (!cb->map || !cb->next) goto fail;
    for (const char *s = seeds; *s;) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        const char *colon = memchr(s, ':', n);
        if (!colon || colon == s || (size_t)(colon - s) >= CSLOT_HOST_CAP ||
            cb->nseeds == CB_MAX_SEEDS)
            goto fail;
        char *e;
        long port = strtol(colon + 1, &e, 10);
        if (e != s + n || port < 1 || port > 65535) goto fail;
        memcpy(cb->seed[cb->nseeds].host, s, (size_t)(colon - s));
        cb->seed[cb->nseeds].host[colon - s] = '\0';
        cb->seed[cb->nseeds++].port = (int)port;
        s = end ? end + 1 : s + n;
    }
    if (!cb->nseeds) goto fail;
    cb->loop = loop;
    cb->timeout_ms = timeout_ms;
    cb->hooks = *hooks;
    uv_timer_init(loop, &cb->tick);
    cb->tick.data = cb;
    return cb;
fail:
    log_error("redis cluster seeds unusable: want host:port[,host:port...]", "seeds=\"%s\"", seeds);
    mem_free(cb->map);
    mem_free(cb->next);
    mem_free(cb);
    return NULL;
}

void cbus_start(struct cbus *cb)
{
    cb->last_tick = now_ms(cb);
    refresh(cb);
    cb->refresh_at = now_ms(cb) + CBUS_REFRESH_MS;
    uv_timer_start(&cb->tick, on_tick, CB_TICK_MS, CB_TICK_MS);
}

static void on_tick_closed(uv_handle_t *h)
{
    struct cbus *cb = h->data;
    mem_free(cb->map);
    mem_free(cb->next);
    mem_free(cb);
}

void cbus_close(struct cbus *cb)
{
    cb->closing = true;
    unpark(cb, 0, true); /* answered NULL, as every command in flight is */
    redisAsyncContext *ac = cb->mq;
    cb->mq = NULL;
    if (ac) redisAsyncFree(ac);
    /* Each entry is cleared before its node is freed: the callbacks that
     * freeing runs (with NULL replies) must not route to a freed node. */
    for (int i = 0; i < CSLOT_MAX_NODES; i++) {
        struct cnode *n = cb->node[i];
        cb->node[i] = NULL;
        if (n) node_free(cb, n);
    }
    for (int b = 0; b < CB_BUCKETS; b++)
        while (cb->tab[b])
            chan_remove(cb, cb->tab[b]);
    uv_timer_stop(&cb->tick);
    uv_close((uv_handle_t *)&cb->tick, on_tick_closed);
}

bool cbus_up(const struct cbus *cb)
{
    return cb->was_up;
}

unsigned long long cbus_reconnects(const struct cbus *cb)
{
    unsigned long long n = cb->reconnects;
    for (int i = 0; i < CSLOT_MAX_NODES; i++)
        if (cb->node[i]) n += slink_reconnects(cb->node[i]->sl);
    return n;
}
