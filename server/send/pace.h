/*
 * pace.h - how fast one person sends in one room, over all their connections
 * and on every gateway: the room's slow mode and the guidelines' rate buckets
 * (token buckets, one per distinct limit) and slow_mode rules. The state is a
 * Redis hash per (room, person) changed by one Lua script, so two gateways
 * taking a send for the same person at once are serialised by Redis, and
 * Redis's clock is the only clock (gateways' clocks may differ).
 *
 * pace_take answers with the person's pace before this message and counts
 * it, unless the room's slow mode refuses it (then nothing is counted). A send
 * the guidelines then refuse is given back with pace_refund, so a refused
 * message never slows its sender.
 *
 * Ownership: the caller's strings are copied into the command; the result
 * passed to the callback is valid during the call only.
 */
#ifndef PARLEY_PACE_H
#define PARLEY_PACE_H

#include "guidelines.h"

#include <stdint.h>

struct bus;
struct pace;

typedef void (*pace_cb)(void *ud, struct pace *p);

struct pace {
    int32_t rates[GL_MAX_RATES];        /* bucket limits asked for (messages per minute) */
    int nrates;                         /* buckets */
    int64_t slow_ms;                    /* the room's slow mode (0: off or exempt) */
    int64_t keep_ms;                    /* how long an idle person's state must live */
    int64_t since_last_ms;              /* result: since the previous message, < 0: none */
    int64_t wait_ms;                    /* result: > 0 when the room's slow mode refused */
    int64_t at;                         /* result: Redis time of this message (ms) */
    uint32_t taken_milli[GL_MAX_RATES]; /* result: tokens taken before it, per bucket */
    pace_cb cb;                         /* pace_take's, for its reply */
    void *ud;
};

/* p holds the request and must live until cb: cb gets it back with the
 * result filled, or NULL when Redis did not answer (unreachable, or the link
 * was dropped). Called exactly once when pace_take returned 0;
 * -EAGAIN/-ENOBUFS/-ENOMEM otherwise. */
int pace_take(struct bus *b, const char *room, const char *person, struct pace *p, pace_cb cb,
              void *ud);

/* Gives back a message counted by pace_take (p as its callback got it). */
void pace_refund(struct bus *b, const char *room, const char *person, const struct pace *p);

#endif
