/*
 * receipts.h - read state and votes: read up to, seen out of order, like,
 * unlike, rate, unrate.
 *
 * Writes go through the group-commit batcher (batcher.h), as messages do:
 * one statement per batch, the next gathering while one is in flight, two
 * votes on the same message never in one batch; a command is answered only
 * after COMMIT. What changed is
 * then announced to the room as events in its log ('read': a person's
 * watermark moved; 'votes': a message's aggregates changed), coalesced so
 * that a burst costs at most one event per person or message per
 * --coalesce-ms. Events are sequenced, persisted and recovered with `since`
 * like messages (store_event); a 'votes' event carries the aggregate's
 * version, so a client keeps the newest whatever the order of two gateways'
 * events.
 *
 * Ownership: items link to their connection with a creq (a closed
 * connection's items are still written, not answered). Pending events are
 * owned here until handed to store_event.
 */
#ifndef PARLEY_RECEIPTS_H
#define PARLEY_RECEIPTS_H

#include "parley_proto.h"

#include <stdbool.h>

struct app;
struct conn;

/* The batch statement (prepared as ST_STATE_BATCH): $1 json array of
 * {i, k, room, person, seq, stars} -> (i, status, broadcast_reads, up_to,
 * likes, stars, star_sum, votes_v, message kind). */
extern const char receipts_batch_sql[];

int receipts_new(struct app *a);
void receipts_free(struct app *a);

/* Queues cmd (read, seen, like, unlike, rate, unrate); the reply goes to c
 * after commit. 0, or -EBUSY when the queue is full (answer busy). */
int receipts_submit(struct app *a, struct conn *c, const struct pp_cmd *cmd);

/* Nothing waiting, in flight, or pending as an event. */
bool receipts_idle(const struct app *a);
/* Writes what is waiting and hands pending events to the log (shutdown). */
void receipts_flush(struct app *a);

#endif
