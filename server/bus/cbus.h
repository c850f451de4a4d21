/*
 * cbus.h - the bus on a Redis Cluster with sharded pub/sub (Redis 7):
 * SPUBLISH and key commands go to the master that owns the slot of the
 * channel or key (one hiredis async context per master), SSUBSCRIBE to a
 * subscriber link of our own (slink.h) per master. bus.c delegates here
 * when the bus was made with bus_new_cluster; the interface and its hooks
 * are bus.h's.
 *
 * The slot map (cslot.h) is read with CLUSTER SLOTS from a seed or any
 * node known before; it is read again on MOVED/ASK, on a lost link, on an
 * SSUBSCRIBE refused and on a subscription the server drops (the slot
 * moved), every CBUS_REFRESH_MS while something is unresolved.
 *
 * Subscriptions are kept here, per channel, not by the caller: a channel
 * whose shard link is lost or whose slot moved is subscribed again on the
 * slot's owner by this module, and on_subscribed runs again when that is
 * confirmed. The room layer's on_subscribed fetches what it missed from
 * PostgreSQL (its gap recovery), so no member misses a message; on_down is
 * never called, and on_up (rooms and the control channel resubscribe and
 * revalidate) runs when every master is reachable again and after the
 * control channel (any channel that is not a room's) was subscribed anew.
 *
 * A publish answered MOVED or ASK is sent again once, to the node named
 * (ASKING first for ASK) when a link to it is up; otherwise it is lost
 * like a publish to a Redis that went away, and the rooms' reorder window
 * fetches the gap when the next message or sync marker arrives.
 *
 * Ownership: the cbus owns its nodes, links, map and channel table;
 * cbus_close frees everything (the last pieces when libuv has closed them).
 */
#ifndef PARLEY_CBUS_H
#define PARLEY_CBUS_H

#include "bus.h"

#define CBUS_REFRESH_MS 500

struct cbus;

/* seeds: "host:port[,host:port...]". NULL on a malformed list or no memory. */
struct cbus *cbus_new(uv_loop_t *loop, const char *seeds, int timeout_ms,
                      const struct bus_hooks *hooks);
void cbus_start(struct cbus *cb);
void cbus_close(struct cbus *cb);
int cbus_publish(struct cbus *cb, const char *ch, size_t chlen, const char *p, size_t len);
int cbus_subscribe(struct cbus *cb, const char *ch, size_t chlen);
int cbus_unsubscribe(struct cbus *cb, const char *ch, size_t chlen);
int cbus_call(struct cbus *cb, bus_reply_cb fn, void *ud, int argc, const char **argv,
              const size_t *argvlen);
bool cbus_up(const struct cbus *cb);
unsigned long long cbus_reconnects(const struct cbus *cb);

#endif
