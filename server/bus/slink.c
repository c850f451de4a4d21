#include "slink.h"

#include "cslot.h"
#include "log.h"
#include "mem.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SLINK_TICK_MS 100
#define SLINK_BACKOFF_MIN_MS 100
#define SLINK_BACKOFF_MAX_MS 2000
#define SLINK_READ_BUF 65536

/* A command sent and not yet answered. */
struct pend {
    bool sub;                /* SSUBSCRIBE, else SUNSUBSCRIBE */
    unsigned char len;       /* channel length */
    char ch[SLINK_CHAN_MAX]; /* channel */
};

struct slink {
    uv_loop_t *loop;               /* the one loop */
    char host[64];                 /* numeric address */
    int port;                      /* its port */
    int timeout_ms;                /* silence and connect limit */
    struct slink_hooks hooks;      /* the caller */
    void *data;                    /* the caller's tag */
    uv_tcp_t tcp;                  /* the connection, when tcp_open */
    uv_connect_t creq;             /* its connect request */
    uv_write_t wreq;               /* the write in flight, when writing */
    uv_timer_t tick;               /* reconnects and the watchdog */
    bool tcp_open;                 /* tcp initialised and not yet closed */
    bool connecting;               /* connect requested, not answered */
    bool up;                       /* connected */
    bool writing;                  /* wreq in flight (wbuf) */
    bool closing;                  /* slink_close called */
    int handles;                   /* libuv handles not yet closed */
    redisReader *rd;               /* replies of the current connection */
    char *obuf, *wbuf;             /* queued bytes; bytes being written */
    size_t olen, ocap, wlen, wcap; /* their use and size */
    struct pend *pq;               /* FIFO of unanswered commands (ring) */
    size_t phead, pcount, pcap;    /* its first entry, entries, size */
    char rbuf[SLINK_READ_BUF];     /* libuv reads here */
    uint64_t retry_at;             /* reconnect when closed and now >= this */
    uint64_t connect_deadline;     /* a connect not done by then is dropped */
    unsigned backoff_ms;           /* next reconnect delay */
    unsigned long long nread;      /* bytes read, ever (progress) */
    unsigned long long nread_seen; /* at the previous tick */
    uint64_t silent_ms;            /* loop time with commands unanswered and nothing read */
    uint64_t last_tick;            /* when tick last ran */
    bool was_up;                   /* for the reconnect count and logs */
    unsigned long long reconnects; /* links re-established */
};

static uint64_t now_ms(const struct slink *l)
{
    return uv_now(l->loop);
}

static void handle_closed(uv_handle_t *h)
{
    struct slink *l = h->data;
    if (h == (uv_handle_t *)&l->tcp) l->tcp_open = false;
    if (--l->handles == 0 && l->closing) {
        mem_free(l->obuf);
        mem_free(l->wbuf);
        mem_free(l->pq);
        mem_free(l);
    }
}

/* Ends the current connection (idempotent); reconnects after the backoff
 * unless the link is closing. */
static void drop(struct slink *l, const char *why)
{
    if (!l->tcp_open || uv_is_closing((uv_handle_t *)&l->tcp)) return;
    bool was = l->up;
    l->up = false;
    l->connecting = false;
    l->olen = 0;
    l->pcount = 0;
    l->phead = 0;
    if (l->rd) {
        redisReaderFree(l->rd);
        l->rd = NULL;
    }
    uv_close((uv_handle_t *)&l->tcp, handle_closed);
    l->retry_at = now_ms(l) + l->backoff_ms;
    l->backoff_ms =
        l->backoff_ms * 2 > SLINK_BACKOFF_MAX_MS ? SLINK_BACKOFF_MAX_MS : l->backoff_ms * 2;
    if (l->closing) return;
    if (was) {
        log_warn("redis shard link lost", "node=%s:%d reason=\"%s\"", l->host, l->port, why);
        if (l->hooks.on_down) l->hooks.on_down(l->hooks.ud, l);
    } else {
        log_debug("redis shard connect failed", "node=%s:%d reason=\"%s\"", l->host, l->port, why);
    }
}

static void flush(struct slink *l);

static void on_written(uv_write_t *req, int status)
{
    struct slink *l = req->data;
    l->writing = false;
    l->wlen = 0;
    if (status < 0) {
        drop(l, uv_strerror(status));
        return;
    }
    flush(l);
}

/* Starts a write of what is queued unless one is in flight: the queue and
 * the in-flight buffer swap, so a burst of commands goes out in one write. */
static void flush(struct slink *l)
{
    if (l->writing || !l->olen || !l->up) return;
    char *b = l->wbuf;
    size_t c = l->wcap;
    l->wbuf = l->obuf;
    l->wcap = l->ocap;
    l->wlen = l->olen;
    l->obuf = b;
    l->ocap = c;
    l->olen = 0;
    uv_buf_t buf = uv_buf_init(l->wbuf, (unsigned)l->wlen);
    l->wreq.data = l;
    int rc = uv_write(&l->wreq, (uv_stream_t *)&l->tcp, &buf, 1, on_written);
    if (rc) {
        drop(l, uv_strerror(rc));
        return;
    }
    l->writing = true;
}

static struct pend *pend_head(struct slink *l)
{
    return l->pcount ? &l->pq[l->phead] : NULL;
}

static void pend_pop(struct slink *l)
{
    l->phead = (l->phead + 1) % l->pcap;
    l->pcount--;
}

static void on_reply(struct slink *l, redisReply *r)
{
    struct pend *h = pend_head(l);
    if (r->type == REDIS_REPLY_ERROR) {
        if (!h) {
            drop(l, "error reply to no command");
            return;
        }
        /* A MOVED for another slot answers a command already taken off the
         * queue: our SUNSUBSCRIBE, matched by the server's own sunsubscribe
         * of a channel whose slot had moved. Charging it to the next command
         * would shift every later reply and drop the link. */
        int slot;
        if ((sscanf(r->str, "MOVED %d", &slot) == 1 || sscanf(r->str, "ASK %d", &slot) == 1) &&
            slot != (int)cslot_keyslot(h->ch, h->len)) {
            log_debug("redis shard refusal of an answered command", "node=%s:%d err=\"%s\"",
                      l->host, l->port, r->str);
            return;
        }
        struct pend p = *h;
        pend_pop(l);
        log_debug("redis shard refused", "node=%s:%d ch=%.*s err=\"%s\"", l->host, l->port,
                  (int)p.len, p.ch, r->str);
        if (l->hooks.on_refused) l->hooks.on_refused(l->hooks.ud, l, p.ch, p.len, p.sub, r->str);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 3 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING) {
        drop(l, "unexpected reply");
        return;
    }
    const char *kind = r->element[0]->str;
    const char *ch = r->element[1]->str;
    size_t chlen = r->element[1]->len;
    bool head_is = h && h->len == chlen && !memcmp(h->ch, ch, chlen);
    if (!strcmp(kind, "smessage")) {
        redisReply *p = r->element[2];
        if (p->type == REDIS_REPLY_STRING)
            l->hooks.on_message(l->hooks.ud, l, ch, chlen, p->str, p->len);
    } else if (!strcmp(kind, "ssubscribe")) {
        if (!head_is || !h->sub) {
            drop(l, "ssubscribe reply out of order");
            return;
        }
        pend_pop(l);
        l->hooks.on_subscribed(l->hooks.ud, l, ch, chlen);
    } else if (!strcmp(kind, "sunsubscribe")) {
        /* ours, in order; anything else is the server dropping the channel */
        bool ours = head_is && !h->sub;
        if (ours) pend_pop(l);
        l->hooks.on_unsubscribed(l->hooks.ud, l, ch, chlen, !ours);
    } else {
        drop(l, "unexpected push");
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct slink *l = h->data;
    (void)hint;
    *buf = uv_buf_init(l->rbuf, sizeof l->rbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct slink *l = s->data;
    if (n < 0) {
        drop(l, n == UV_EOF ? "closed" : uv_strerror((int)n));
        return;
    }
    if (!n || !l->rd) return;
    l->nread += (unsigned long long)n;
    if (redisReaderFeed(l->rd, buf->base, (size_t)n) != REDIS_OK) {
        drop(l, "reader");
        return;
    }
    /* A hook may drop the link (rd freed) or not; look each turn. */
    while (l->rd && l->tcp_open && !uv_is_closing((uv_handle_t *)&l->tcp)) {
        void *r = NULL;
        if (redisReaderGetReply(l->rd, &r) != REDIS_OK) {
            drop(l, "protocol error");
            return;
        }
        if (!r) break;
        on_reply(l, r);
        freeReplyObject(r);
    }
}

static void on_connected(uv_connect_t *req, int status)
{
    struct slink *l = req->data;
    if (!l->connecting) return; /* dropped meanwhile (timeout) */
    l->connecting = false;
    if (status < 0) {
        drop(l, uv_strerror(status));
        return;
    }
    l->rd = redisReaderCreate();
    if (!l->rd || uv_read_start((uv_stream_t *)&l->tcp, on_alloc, on_read)) {
        drop(l, "out of memory");
        return;
    }
    uv_tcp_nodelay(&l->tcp, 1);
    uv_tcp_keepalive(&l->tcp, 1, 30);
    l->up = true;
    l->backoff_ms = SLINK_BACKOFF_MIN_MS;
    l->silent_ms = 0;
    if (l->was_up) l->reconnects++;
    log_info(l->was_up ? "redis shard reconnected" : "redis shard connected", "node=%s:%d", l->host,
             l->port);
    l->was_up = true;
    if (l->hooks.on_up) l->hooks.on_up(l->hooks.ud, l);
}

static void connect_now(struct slink *l)
{
    struct sockaddr_storage sa;
    if (uv_ip4_addr(l->host, l->port, (struct sockaddr_in *)&sa) &&
        uv_ip6_addr(l->host, l->port, (struct sockaddr_in6 *)&sa)) {
        log_warn("redis shard address is not numeric", "node=%s:%d", l->host, l->port);
        l->retry_at = now_ms(l) + SLINK_BACKOFF_MAX_MS;
        return;
    }
    if (uv_tcp_init(l->loop, &l->tcp)) {
        l->retry_at = now_ms(l) + l->backoff_ms;
        return;
    }
    l->tcp.data = l;
    l->tcp_open = true;
    l->handles++;
    l->creq.data = l;
    l->connecting = true;
    l->connect_deadline = now_ms(l) + (uint64_t)l->timeout_ms;
    int rc = uv_tcp_connect(&l->creq, &l->tcp, (struct sockaddr *)&sa, on_connected);
    if (rc) drop(l, uv_strerror(rc));
}

static void on_tick(uv_timer_t *t)
{
    struct slink *l = t->data;
    uint64_t now = now_ms(l);
    if (!l->tcp_open && now >= l->retry_at) connect_now(l);
    if (l->connecting && now >= l->connect_deadline) drop(l, "connect timeout");
    /* Judged on progress, like bus.c's publish link: only loop time counts
     * (a tick's share is capped), and anything read resets the count. */
    uint64_t step = now - l->last_tick;
    l->last_tick = now;
    if (step > 2 * SLINK_TICK_MS) step = 2 * SLINK_TICK_MS;
    if (!l->up || !l->pcount || l->nread != l->nread_seen)
        l->silent_ms = 0;
    else
        l->silent_ms += step;
    l->nread_seen = l->nread;
    if (l->up && l->silent_ms > (uint64_t)l->timeout_ms) {
        log_warn("redis shard timeout", "node=%s:%d unanswered=%zu", l->host, l->port, l->pcount);
        drop(l, "timeout");
    }
}

struct slink *slink_new(uv_loop_t *loop, const char *host, int port, int timeout_ms,
                        const struct slink_hooks *hooks)
{
    if (strlen(host) >= sizeof((struct slink *)0)->host) return NULL;
    struct slink *l = mem_calloc(1, sizeof *l);
    if (!l) return NULL;
    l->loop = loop;
    snprintf(l->host, sizeof l->host, "%s", host);
    l->port = port;
    l->timeout_ms = timeout_ms;
    l->hooks = *hooks;
    l->backoff_ms = SLINK_BACKOFF_MIN_MS;
    uv_timer_init(loop, &l->tick);
    l->tick.data = l;
    l->handles = 1;
    return l;
}

void slink_start(struct slink *l)
{
    l->last_tick = now_ms(l);
    connect_now(l);
    uv_timer_start(&l->tick, on_tick, SLINK_TICK_MS, SLINK_TICK_MS);
}

void slink_close(struct slink *l)
{
    l->closing = true;
    drop(l, "closed by us");
    if (l->rd) { /* drop skipped it: the connection was already closing */
        redisReaderFree(l->rd);
        l->rd = NULL;
    }
    uv_timer_stop(&l->tick);
    uv_close((uv_handle_t *)&l->tick, handle_closed);
}

/* Appends one formatted command, and remembers it. */
static int send_cmd(struct slink *l, bool sub, const char *ch, size_t chlen)
{
    if (!l->up) return -EAGAIN;
    if (!chlen || chlen > SLINK_CHAN_MAX) return -EINVAL;
    if (l->pcount == SLINK_MAX_PENDING) return -ENOBUFS;
    if (l->pcount == l->pcap) {
        size_t ncap = l->pcap ? l->pcap * 2 : 64;
        struct pend *n = mem_alloc(ncap * sizeof *n);
        if (!n) return -ENOMEM;
        for (size_t i = 0; i < l->pcount; i++)
            n[i] = l->pq[(l->phead + i) % l->pcap];
        mem_free(l->pq);
        l->pq = n;
        l->pcap = ncap;
        l->phead = 0;
    }
    const char *argv[2] = {sub ? "SSUBSCRIBE" : "SUNSUBSCRIBE", ch};
    size_t lens[2] = {sub ? 10 : 12, chlen};
    char *cmd = NULL;
    int n = redisFormatCommandArgv(&cmd, 2, argv, lens);
    if (n < 0) return -ENOMEM;
    if (l->olen + (size_t)n + l->wlen > SLINK_OUT_MAX) {
        redisFreeCommand(cmd);
        return -ENOBUFS;
    }
    if (l->olen + (size_t)n > l->ocap) {
        size_t ncap = l->ocap ? l->ocap : 4096;
        while (ncap < l->olen + (size_t)n)
            ncap *= 2;
        char *nb = mem_realloc(l->obuf, ncap);
        if (!nb) {
            redisFreeCommand(cmd);
            return -ENOMEM;
        }
        l->obuf = nb;
        l->ocap = ncap;
    }
    memcpy(l->obuf + l->olen, cmd, (size_t)n);
    l->olen += (size_t)n;
    redisFreeCommand(cmd);
    struct pend *p = &l->pq[(l->phead + l->pcount++) % l->pcap];
    p->sub = sub;
    p->len = (unsigned char)chlen;
    memcpy(p->ch, ch, chlen);
    flush(l);
    return 0;
}

int slink_ssubscribe(struct slink *l, const char *ch, size_t chlen)
{
    return send_cmd(l, true, ch, chlen);
}

int slink_sunsubscribe(struct slink *l, const char *ch, size_t chlen)
{
    return send_cmd(l, false, ch, chlen);
}

bool slink_up(const struct slink *l)
{
    return l->up;
}

const char *slink_host(const struct slink *l)
{
    return l->host;
}

int slink_port(const struct slink *l)
{
    return l->port;
}

void *slink_data(const struct slink *l)
{
    return l->data;
}

void slink_set_data(struct slink *l, void *data)
{
    l->data = data;
}

unsigned long long slink_reconnects(const struct slink *l)
{
    return l->reconnects;
}
