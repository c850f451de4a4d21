#include "bus.h"

#include "cbus.h"
#include "log.h"
#include "mem.h"
#include "uvev.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <string.h>

#define BUS_TICK_MS 100
#define BUS_BACKOFF_MIN_MS 100
#define BUS_BACKOFF_MAX_MS 2000
#define BUS_MAX_UNANSWERED 50000 /* publishes in flight before we shed */

enum { PUB = 0, SUB = 1 };

struct link {
    struct bus *b;             /* owner */
    int which;                 /* PUB or SUB */
    redisAsyncContext *ac;     /* NULL when down; hiredis frees it */
    bool up;                   /* connect callback said OK */
    uint64_t retry_at;         /* reconnect when down and now >= this */
    uint64_t connect_deadline; /* a connect not done by then is abandoned */
    unsigned backoff_ms;       /* next reconnect delay */
    bool was_up;               /* for "reconnected" logs */
};

struct bus {
    uv_loop_t *loop;                  /* the one loop */
    char host[256];                   /* Redis host */
    int port;                         /* Redis port */
    int timeout_ms;                   /* unanswered publish limit in time */
    struct bus_hooks hooks;           /* room layer */
    struct link l[2];                 /* PUB and SUB */
    uv_timer_t tick;                  /* reconnects and the publish watchdog */
    unsigned unanswered;              /* publishes sent, reply not yet seen */
    unsigned cl_calls;                /* cluster: bus_calls not yet answered (bus_settled) */
    unsigned long long answered;      /* replies seen on the publish link, ever */
    unsigned long long answered_seen; /* answered at the previous tick */
    uint64_t silent_ms;               /* loop time with commands unanswered and no reply */
    uint64_t last_tick;               /* when on_tick last ran */
    bool closing;                     /* bus_close called */
    unsigned long long reconnects;    /* links re-established */
    struct cbus *cl;                  /* cluster mode: everything is delegated there */
};

static void link_connect(struct link *l);

static uint64_t now_ms(struct bus *b)
{
    return uv_now(b->loop);
}

static void link_down(struct link *l, const char *why)
{
    struct bus *b = l->b;
    bool was = l->up;
    l->ac = NULL; /* hiredis frees the context after this callback */
    l->up = false;
    l->retry_at = now_ms(b) + l->backoff_ms;
    l->backoff_ms = l->backoff_ms * 2 > BUS_BACKOFF_MAX_MS ? BUS_BACKOFF_MAX_MS : l->backoff_ms * 2;
    if (l->which == PUB) b->unanswered = 0;
    if (b->closing) return;
    if (was)
        log_warn("redis connection lost", "link=%s reason=\"%s\"", l->which ? "sub" : "pub", why);
    if (was && l->which == SUB && b->hooks.on_down) b->hooks.on_down(b->hooks.ud);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct link *l = ac->data;
    if (status != REDIS_OK) {
        link_down(l, ac->errstr);
        return;
    }
    l->up = true;
    l->backoff_ms = BUS_BACKOFF_MIN_MS;
    log_info(l->was_up ? "redis reconnected" : "redis connected", "link=%s",
             l->which ? "sub" : "pub");
    if (l->was_up) l->b->reconnects++;
    l->was_up = true;
    if (l->which == PUB) {
        l->b->silent_ms = 0;
        if (l->b->hooks.on_pub_up) l->b->hooks.on_pub_up(l->b->hooks.ud);
    }
    if (l->which == SUB && l->b->hooks.on_up) l->b->hooks.on_up(l->b->hooks.ud);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    struct link *l = ac->data;
    (void)status;
    link_down(l, ac->errstr[0] ? ac->errstr : "closed");
}

static void link_connect(struct link *l)
{
    struct bus *b = l->b;
    redisAsyncContext *ac = redisAsyncConnect(b->host, b->port);
    if (!ac) {
        l->retry_at = now_ms(b) + l->backoff_ms;
        return;
    }
    if (ac->err) {
        log_debug("redis connect failed", "reason=\"%s\"", ac->errstr);
        redisAsyncFree(ac);
        l->retry_at = now_ms(b) + l->backoff_ms;
        return;
    }
    ac->data = l;
    if (uvev_attach(ac, b->loop)) {
        redisAsyncFree(ac);
        l->retry_at = now_ms(b) + l->backoff_ms;
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    l->ac = ac;
    l->connect_deadline = now_ms(b) + (uint64_t)b->timeout_ms;
}

static void on_tick(uv_timer_t *t)
{
    struct bus *b = t->data;
    uint64_t now = now_ms(b);
    for (int i = 0; i < 2; i++) {
        struct link *l = &b->l[i];
        if (!l->ac && now >= l->retry_at)
            link_connect(l);
        else if (l->ac && !l->up && now >= l->connect_deadline) {
            /* Never connected, so hiredis calls no callback when freed. */
            redisAsyncFree(l->ac);
            link_down(l, "connect timeout");
        }
    }
    /* A Redis that accepts publishes but never answers is as good as gone:
     * drop the link so it reconnects (the room layer recovers from PostgreSQL).
     * Judged on progress, not on age: any reply resets the count, and only
     * time the loop was turning counts as silence. A loop busy elsewhere for
     * seconds (a burst of thousands of joins in one turn) has not read what
     * Redis answered meanwhile; judging it by the clock dropped a healthy
     * link with thousands of commands in flight, and every one of them with
     * it. So a tick's contribution is capped, and before the link is judged
     * silent the replies already waiting in the socket are read. */
    uint64_t step = now - b->last_tick;
    b->last_tick = now;
    if (step > 2 * BUS_TICK_MS) step = 2 * BUS_TICK_MS;
    struct link *p = &b->l[PUB];
    if (!p->ac || !p->up || !b->unanswered) {
        b->silent_ms = 0;
    } else if (b->answered != b->answered_seen) {
        b->silent_ms = 0;
    } else {
        redisAsyncHandleRead(p->ac); /* may fail the context: on_disconnect */
        if (b->answered != b->answered_seen)
            b->silent_ms = 0;
        else
            b->silent_ms += step;
        if (p->ac && p->up && b->unanswered && b->silent_ms > (uint64_t)b->timeout_ms) {
            log_warn("redis publish timeout", "unanswered=%u silent_ms=%llu", b->unanswered,
                     (unsigned long long)b->silent_ms);
            redisAsyncFree(p->ac); /* runs on_disconnect */
        }
    }
    b->answered_seen = b->answered;
}

struct bus *bus_new(uv_loop_t *loop, const char *host, int port, int timeout_ms,
                    const struct bus_hooks *hooks)
{
    struct bus *b = mem_calloc(1, sizeof *b);
    if (!b) return NULL;
    b->loop = loop;
    snprintf(b->host, sizeof b->host, "%s", host);
    b->port = port;
    b->timeout_ms = timeout_ms;
    b->hooks = *hooks;
    for (int i = 0; i < 2; i++) {
        b->l[i].b = b;
        b->l[i].which = i;
        b->l[i].backoff_ms = BUS_BACKOFF_MIN_MS;
    }
    uv_timer_init(loop, &b->tick);
    b->tick.data = b;
    return b;
}

struct bus *bus_new_cluster(uv_loop_t *loop, const char *seeds, int timeout_ms,
                            const struct bus_hooks *hooks)
{
    struct bus *b = mem_calloc(1, sizeof *b);
    if (!b) return NULL;
    if (!(b->cl = cbus_new(loop, seeds, timeout_ms, hooks))) {
        mem_free(b);
        return NULL;
    }
    return b;
}

void bus_start(struct bus *b)
{
    if (b->cl) {
        cbus_start(b->cl);
        return;
    }
    link_connect(&b->l[PUB]);
    link_connect(&b->l[SUB]);
    b->last_tick = now_ms(b);
    uv_timer_start(&b->tick, on_tick, BUS_TICK_MS, BUS_TICK_MS);
}

static void on_tick_closed(uv_handle_t *h)
{
    mem_free(h->data);
}

void bus_close(struct bus *b)
{
    if (b->cl) {
        cbus_close(b->cl);
        mem_free(b);
        return;
    }
    b->closing = true;
    for (int i = 0; i < 2; i++)
        if (b->l[i].ac) redisAsyncFree(b->l[i].ac);
    uv_timer_stop(&b->tick);
    uv_close((uv_handle_t *)&b->tick, on_tick_closed);
}

bool bus_settled(const struct bus *b)
{
    if (b->cl) return !b->cl_calls; /* the cluster's publishes (hints) are not waited for */
    return !b->l[PUB].up || !b->unanswered;
}

unsigned long long bus_reconnects(const struct bus *b)
{
    if (b->cl) return cbus_reconnects(b->cl);
    return b->reconnects;
}

bool bus_up(const struct bus *b)
{
    if (b->cl) return cbus_up(b->cl);
    return b->l[PUB].up && b->l[SUB].up;
}

static void on_pub_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct bus *b = priv;
    (void)ac;
    (void)r;
    if (b->unanswered) b->unanswered--;
    b->answered++;
}

int bus_publish(struct bus *b, const char *ch, size_t chlen, const char *p, size_t len)
{
    if (b->cl) return cbus_publish(b->cl, ch, chlen, p, len);
    struct link *l = &b->l[PUB];
    if (!l->up) return -EAGAIN;
    if (b->unanswered >= BUS_MAX_UNANSWERED) return -ENOBUFS;
    if (redisAsyncCommand(l->ac, on_pub_reply, b, "PUBLISH %b %b", ch, chlen, p, len) != REDIS_OK)
        return -EAGAIN;
    b->unanswered++;
    return 0;
}

/* A bus_call in flight: hiredis calls back once, with NULL if the context
 * is freed first. */
struct call {
    struct bus *b;   /* owner */
    bus_reply_cb cb; /* caller's callback */
    void *ud;        /* for cb */
};

static void on_call_reply(redisAsyncContext *ac, void *r, void *priv)
{
    struct call *c = priv;
    (void)ac;
    if (c->b->unanswered) c->b->unanswered--;
    c->b->answered++;
    c->cb(c->ud, r);
    mem_free(c);
}

/* A cluster's: cbus answers every call, with NULL at the latest in cbus_close. */
static void on_cl_call_reply(void *ud, const void *r)
{
    struct call *c = ud;
    c->b->cl_calls--;
    c->cb(c->ud, r);
    mem_free(c);
}

int bus_call(struct bus *b, bus_reply_cb cb, void *ud, int argc, const char **argv,
             const size_t *argvlen)
{
    if (b->cl) {
        struct call *c = mem_alloc(sizeof *c);
        if (!c) return -ENOMEM;
        *c = (struct call){b, cb, ud};
        int rc = cbus_call(b->cl, on_cl_call_reply, c, argc, argv, argvlen);
        if (rc)
            mem_free(c);
        else
            b->cl_calls++;
        return rc;
    }
    struct link *l = &b->l[PUB];
    if (!l->up) return -EAGAIN;
    if (b->unanswered >= BUS_MAX_UNANSWERED) return -ENOBUFS;
    struct call *c = mem_alloc(sizeof *c);
    if (!c) return -ENOMEM;
    c->b = b;
    c->cb = cb;
    c->ud = ud;
    if (redisAsyncCommandArgv(l->ac, on_call_reply, c, argc, argv, argvlen) != REDIS_OK) {
        mem_free(c);
        return -EAGAIN;
    }
    b->unanswered++;
    return 0;
}

static void on_sub_reply(redisAsyncContext *ac, void *rv, void *priv)
{
    struct bus *b = priv;
    redisReply *r = rv;
    (void)ac;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
    redisReply *kind = r->element[0], *ch = r->element[1];
    if (kind->type != REDIS_REPLY_STRING || ch->type != REDIS_REPLY_STRING) return;
    if (!strcmp(kind->str, "message")) {
        redisReply *p = r->element[2];
        if (p->type == REDIS_REPLY_STRING)
            b->hooks.on_message(b->hooks.ud, ch->str, ch->len, p->str, p->len);
    } else if (!strcmp(kind->str, "subscribe")) {
        b->hooks.on_subscribed(b->hooks.ud, ch->str, ch->len);
    } else if (!strcmp(kind->str, "unsubscribe")) {
        b->hooks.on_unsubscribed(b->hooks.ud, ch->str, ch->len);
    }
}

int bus_subscribe(struct bus *b, const char *ch, size_t chlen)
{
    if (b->cl) return cbus_subscribe(b->cl, ch, chlen);
    struct link *l = &b->l[SUB];
    if (!l->up) return -EAGAIN;
    if (redisAsyncCommand(l->ac, on_sub_reply, b, "SUBSCRIBE %b", ch, chlen) != REDIS_OK)
        return -EAGAIN;
    return 0;
}

int bus_unsubscribe(struct bus *b, const char *ch, size_t chlen)
{
    if (b->cl) return cbus_unsubscribe(b->cl, ch, chlen);
    struct link *l = &b->l[SUB];
    if (!l->up) return -EAGAIN;
    if (redisAsyncCommand(l->ac, NULL, NULL, "UNSUBSCRIBE %b", ch, chlen) != REDIS_OK)
        return -EAGAIN;
    return 0;
}
