/*
 * rulecache.h - each room's effective guidelines, compiled, on this gateway:
 * loaded from PostgreSQL on a room's first send (the workspace's rules with
 * the room's overriding those of the same id), dropped when a "guidelines
 * <workspace>" control event (ctl.c) says they changed, so a change made on
 * any gateway applies to the next message everywhere.
 *
 * Rooms whose effective rules are the same text (a workspace's rooms without
 * overrides) share one compiled set, so a set is compiled once per gateway.
 *
 * While a room's rules load, its sends wait in arrival order (bounded); then
 * each is evaluated. A send in a room with a slow mode or a rate rule then
 * waits for its sender's pace (pace.h, one Redis round trip); a connection's
 * sends keep their order through both waits. Then it is stored, kept for
 * review, or refused. Ownership: entries and their compiled sets belong to
 * the cache; waiting sends hold a creq to their connection and are dropped
 * unanswered if it closes.
 */
#ifndef PARLEY_RULECACHE_H
#define PARLEY_RULECACHE_H

#include "parley_proto.h"

struct app;
struct conn;
struct sub;

int rulecache_new(struct app *a);
void rulecache_free(struct app *a);

/* A send or an edit, as checked against the room's policy. */
struct msgin {
    enum pp_op op;              /* PP_OP_SEND or PP_OP_EDIT */
    int64_t id;                 /* command id */
    char room[PP_UUID_LEN + 1]; /* room */
    struct pp_str cmid;         /* send: client_msg_id */
    struct pp_str body;         /* the text */
    int64_t parent;             /* send: the entry replied to, 0 for none */
    int64_t seq;                /* edit: the message */
};

/* Checks a send or edit against the room's policy (mutes, lock, slow mode),
 * its sender's pace and the guidelines, then stores it, keeps it for review
 * (hold, shadow), or refuses it. Answers the command in every case. */
void rulecache_send(struct app *a, struct conn *c, const struct msgin *in);

/* Periodic (and at shutdown): writes the buffered guideline hits. */
void rulecache_tick(struct app *a);

/* The workspace's guidelines changed: forget its rooms' compiled sets. */
void rulecache_invalidate(struct app *a, const char *workspace);

/* Merges a workspace's rule set with a room's ({"rules": [...]} each, either
 * may be NULL) into a new malloc'd JSON text, the room's rules replacing the
 * workspace's of the same id. NULL on bad input or allocation failure. */
char *rulecache_merge(const char *ws_rules, const char *room_rules);

#endif
