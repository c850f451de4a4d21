/*
 * slink.h - a sharded pub/sub subscriber link of our own: one TCP
 * connection on the libuv loop to one Redis server, SSUBSCRIBE /
 * SUNSUBSCRIBE out, `smessage` pushes and confirmations in.
 *
 * Why not hiredis: Debian's hiredis 0.14.1 async API knows only
 * (p)subscribe replies. An SSUBSCRIBE is an ordinary command to it, so the
 * first `smessage` push finds no callback and fails the assertion at
 * async.c:478 (the process aborts; checked with redis-server 7.0.15). Its
 * public parser (redisReader) and formatter (redisFormatCommandArgv) are
 * enough, and are what this uses.
 *
 * Redis answers each single-channel SSUBSCRIBE / SUNSUBSCRIBE with one
 * reply, in order; the link keeps a bounded FIFO of what it sent, so a
 * confirmation or an error (`-MOVED slot host:port` from a node that does
 * not own the channel's slot) is matched to its channel, and a
 * `sunsubscribe` nobody asked for (the slot moved away) is told apart.
 *
 * Bounded: at most SLINK_OUT_MAX bytes queued to write and SLINK_MAX_PENDING
 * commands unanswered; past either a call returns -ENOBUFS. A link whose
 * commands stay unanswered for timeout_ms of loop time, with nothing read
 * meanwhile, is dropped (as bus.c judges its publish link: on progress).
 * A lost link reconnects with backoff; every subscription is gone then
 * (on_down), and on_up says the caller may subscribe again.
 *
 * Ownership: the caller owns the link until slink_close, which frees it
 * once libuv has closed its handles. Hooks run on the loop thread; pointers
 * they get are valid during the call only. A hook may call slink_* on the
 * same link, except slink_close (use a flag and close after returning).
 */
#ifndef PARLEY_SLINK_H
#define PARLEY_SLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define SLINK_CHAN_MAX 64        /* longest channel name */
#define SLINK_MAX_PENDING 65536  /* commands unanswered */
#define SLINK_OUT_MAX (4u << 20) /* bytes waiting to be written */

struct slink;

struct slink_hooks {
    void *ud; /* passed to every hook */
    /* An smessage on a subscribed channel. */
    void (*on_message)(void *ud, struct slink *l, const char *ch, size_t chlen, const char *p,
                       size_t len);
    /* SSUBSCRIBE of ch confirmed. */
    void (*on_subscribed)(void *ud, struct slink *l, const char *ch, size_t chlen);
    /* ch is no longer subscribed: our SUNSUBSCRIBE confirmed (unsolicited
     * false), or the server dropped it because its slot moved (true). */
    void (*on_unsubscribed)(void *ud, struct slink *l, const char *ch, size_t chlen,
                            bool unsolicited);
    /* SSUBSCRIBE (sub true) or SUNSUBSCRIBE of ch answered with an error,
     * e.g. "MOVED 1234 127.0.0.1:7001": nothing changed on this link. */
    void (*on_refused)(void *ud, struct slink *l, const char *ch, size_t chlen, bool sub,
                       const char *err);
    /* Connected (again): subscribe. */
    void (*on_up)(void *ud, struct slink *l);
    /* Lost after being up: every subscription on it is gone. */
    void (*on_down)(void *ud, struct slink *l);
};

/* host is a numeric IPv4 or IPv6 address. NULL on allocation failure. */
struct slink *slink_new(uv_loop_t *loop, const char *host, int port, int timeout_ms,
                        const struct slink_hooks *hooks);
void slink_start(struct slink *l);
/* Stops and frees (after the loop turns); no hook runs after this. */
void slink_close(struct slink *l);

/* 0, -EAGAIN (not connected), -EINVAL (channel empty or too long),
 * -ENOBUFS (a bound is reached), -ENOMEM. */
int slink_ssubscribe(struct slink *l, const char *ch, size_t chlen);
int slink_sunsubscribe(struct slink *l, const char *ch, size_t chlen);

bool slink_up(const struct slink *l);
const char *slink_host(const struct slink *l);
int slink_port(const struct slink *l);
void *slink_data(const struct slink *l);          /* the caller's tag */
void slink_set_data(struct slink *l, void *data); /* set it */
unsigned long long slink_reconnects(const struct slink *l);

#endif
