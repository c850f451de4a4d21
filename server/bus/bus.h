/*
 * bus.h - Redis pub/sub between gateways: hiredis async on the loop, one
 * context to publish and one to subscribe, reconnection with backoff, and
 * our own bound on unanswered publishes (hiredis 0.14 has no async timeouts).
 *
 * Redis is the fast path, not the record: a publish may be lost when Redis
 * goes away, and the room layer catches up from PostgreSQL when the bus
 * comes back (on_up) or when it sees a gap.
 *
 * The bus carries bytes: what a room's channel is called and what its
 * payloads look like (stored messages, events, sync markers, targeted
 * pushes) is busfmt.h's, for publishers and subscribers alike.
 *
 * Ownership: bus_publish copies the payload into hiredis's buffer. Hooks are
 * called on the loop thread; the channel and payload pointers are valid for
 * the duration of the call only.
 */
#ifndef PARLEY_BUS_H
#define PARLEY_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct bus;

struct bus_hooks {
    void *ud; /* passed to every hook */
    /* A message on a subscribed channel. */
    void (*on_message)(void *ud, const char *ch, size_t chlen, const char *p, size_t len);
    /* SUBSCRIBE / UNSUBSCRIBE of ch confirmed by Redis. */
    void (*on_subscribed)(void *ud, const char *ch, size_t chlen);
    void (*on_unsubscribed)(void *ud, const char *ch, size_t chlen);
    /* The subscribe connection is (re)established: resubscribe everything. */
    void (*on_up)(void *ud);
    /* The publish connection is (re)established. */
    void (*on_pub_up)(void *ud);
    /* The subscribe connection is lost: every subscription is gone. Never
     * called in cluster mode: the cluster bus subscribes again by itself
     * and calls on_subscribed again (cbus.h). */
    void (*on_down)(void *ud);
};

struct bus *bus_new(uv_loop_t *loop, const char *host, int port, int timeout_ms,
                    const struct bus_hooks *hooks);
/* Cluster mode (cbus.h): seeds is "host:port[,host:port...]"; NULL on a
 * malformed list. Everything below then works on the cluster. */
struct bus *bus_new_cluster(uv_loop_t *loop, const char *seeds, int timeout_ms,
                            const struct bus_hooks *hooks);
void bus_start(struct bus *b);
void bus_close(struct bus *b);

/* 0, -EAGAIN (not connected), -ENOBUFS (too many unanswered publishes). */
int bus_publish(struct bus *b, const char *ch, size_t chlen, const char *p, size_t len);
/* 0 or -EAGAIN; confirmation arrives through on_subscribed/on_unsubscribed. */
int bus_subscribe(struct bus *b, const char *ch, size_t chlen);
int bus_unsubscribe(struct bus *b, const char *ch, size_t chlen);

/* A command on the publish connection (rate-limit counters and the like).
 * cb gets the reply, or NULL when the link failed or the command could not
 * be answered in time (the watchdog drops a silent link); it is called
 * exactly once when bus_call returned 0. The reply is valid during the call. */
typedef void (*bus_reply_cb)(void *ud, const void *redis_reply);
int bus_call(struct bus *b, bus_reply_cb cb, void *ud, int argc, const char **argv,
             const size_t *argvlen);

bool bus_up(const struct bus *b);                       /* both connections established */
unsigned long long bus_reconnects(const struct bus *b); /* links re-established */
/* Every publish and command sent has its answer, or its link is down (no
 * answer will come); on a cluster, every command (its publishes are not
 * counted). A stop waits for this, so that what its last moments queued
 * (its presence key's deletion, the removals of rooms its clients left)
 * reaches Redis before the links are freed with it unsent. */
bool bus_settled(const struct bus *b);

#endif
