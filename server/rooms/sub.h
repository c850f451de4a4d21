/*
 * sub.h - a connection's membership of one room. A member costs one struct
 * sub for as long as it stays (a 72-byte allocation, an 80-byte chunk); what
 * only its join needs (the command, its recovery point, the authorisation
 * query) is a struct sub_join beside it, freed once the join is answered.
 * At 100,000 idle connections each in one room that is 6 MB less than
 * keeping all of it (BENCHMARKS.md, memory per idle connection).
 *
 * Ownership: a sub is listed in its connection's subs array (sub_new,
 * sub_unlist) and owned by the room registry (room.h), which links it into
 * its room and frees it. The sub owns its sub_join.
 */
#ifndef PARLEY_SUB_H
#define PARLEY_SUB_H

#include "conn.h"

#include <stdbool.h>
#include <stdint.h>

struct room;
struct replay_fetch;
struct ticket;

enum sub_state {
    SUB_CHECKING, /* join authorisation query in flight; not in a room yet */
    SUB_WAITING,  /* in the room, waiting for it to learn its last seq */
    SUB_REPLAY,   /* being given stored messages, paced: after since, or fell behind */
    SUB_LIVE,     /* receiving fan-out */
};

struct sub_join {
    char room_id[PP_UUID_LEN + 1]; /* the room asked for, until the room holds its id */
    bool has_since;                /* join asked for recovery (from since) */
    int64_t since;                 /* recovery from this seq, when has_since */
    int64_t id;                    /* command id of the join */
    uint64_t t0;                   /* uv_hrtime at the join command, for latency */
    struct ticket *check;          /* join authorisation query in flight, or NULL */
    uint64_t epoch;                /* app access_epoch when the check was sent */
};

struct sub {
    struct conn *conn;          /* the member connection */
    struct room *room;          /* NULL while SUB_CHECKING */
    const char *room_id;        /* the room's id: the join's copy, then the room's own */
    struct sub *prev, *next;    /* in room's member list */
    struct sub_join *join;      /* while CHECKING or WAITING, else NULL */
    struct replay_fetch *fetch; /* replay query in flight, or NULL (replay.h) */
    int64_t pos;                /* last seq given to this connection */
    uint8_t state;              /* enum sub_state */
    bool wait_drain;            /* replay paused until the out-queue drains below low water */
    bool pres_snap;             /* the presence snapshot was sent */
};

/* The sub for room_id on c, or NULL. */
struct sub *sub_find(struct conn *c, const char *room_id);
/* Adds a SUB_CHECKING sub with its join to c (NULL on allocation failure). */
struct sub *sub_new(struct conn *c, const char *room_id, int64_t join_id, bool has_since,
                    int64_t since);
/* The join was answered: frees its part. Once in a room, room_id must
 * point at the room's own copy first. */
void sub_join_done(struct sub *s);
/* Takes s out of its connection's array and frees its join (a check in
 * flight is unhooked: its answer finds no sub). The caller frees s. */
void sub_unlist(struct sub *s);

#endif
