/*
 * rulecache.h - each room's send policy and effective guidelines, compiled,
 * on this gateway: loaded from PostgreSQL on a room's first send (the
 * workspace's rules with the room's overriding those of the same id; the
 * room's lock, slow mode and active mutes), dropped when a "guidelines
 * <workspace>" control event (ctl.c) says they changed, so a change made on
 * any gateway applies to the next message everywhere.
 *
 * Rooms whose effective rules are the same text (a workspace's rooms without
 * overrides) share one compiled set, so a set is compiled once per gateway.
 *
 * What a send does with them is the send stage's (send.h); this is the cache
 * only: load, invalidate, look up. While a room's entry loads, lookups wait
 * in arrival order (bounded) and are answered in that order when it is known.
 *
 * Ownership: entries and their compiled sets belong to the cache; a struct
 * rc_room it hands out is valid until the caller returns to the loop. A
 * waiting lookup's struct rc_wait belongs to the caller; the cache only
 * links it until its done callback runs (exactly once).
 */
#ifndef PARLEY_RULECACHE_H
#define PARLEY_RULECACHE_H

#include "parley_proto.h"

#include <stdbool.h>
#include <stdint.h>

struct app;
struct gl_set;

struct rc_mute {
    char person[PP_UUID_LEN + 1]; /* muted person */
    int64_t until;                /* Unix ms */
};

/* A room's policy and rules as cached: what its sends are checked against. */
struct rc_room {
    bool locked;                 /* read-only but for moderators */
    int slow_mode_s;             /* one message per person per N s; 0: off */
    const struct rc_mute *mutes; /* active mutes here (room's and workspace's) */
    int nmutes;
    const struct gl_set *set; /* the compiled guidelines, NULL when none */
};

/* A lookup waiting for its room to load. done gets the room, or NULL with
 * err -EAGAIN (storage down, or rules that do not compile: the sends are
 * refused, not let through unchecked) or -ECANCELED (the cache is being
 * freed: answer nothing, just release). */
struct rc_wait {
    struct rc_wait *next; /* the cache's, while waiting */
    void (*done)(struct rc_wait *w, const struct rc_room *room, int err);
};

int rulecache_new(struct app *a);
void rulecache_free(struct app *a);

/* The room's policy and rules: 0 with *out set when known; 1 when they are
 * loading (the load is started; w, when given, is queued and w->done runs
 * later, in arrival order; without w nothing waits: ask again with one, so
 * the common case of a known room needs no waiting copy); -ENOMEM, -EAGAIN
 * (storage unavailable) or -EBUSY (too many lookups waiting for the room). */
int rulecache_get(struct app *a, const char *room, const char *workspace, struct rc_wait *w,
                  const struct rc_room **out);

/* The workspace's guidelines changed: forget its rooms' compiled sets. */
void rulecache_invalidate(struct app *a, const char *workspace);

/* Merges a workspace's rule set with a room's ({"rules": [...]} each, either
 * may be NULL) into a new JSON text (mem_free), the room's rules replacing the
 * workspace's of the same id. NULL on bad input or allocation failure. */
char *rulecache_merge(const char *ws_rules, const char *room_rules);

#endif
