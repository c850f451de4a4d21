/*
 * dbread.h - reads that a streaming replica may answer (--pg-read): history,
 * replay and catch-up pages, evaluation reports. Without a replica they go
 * to the primary's readers exactly as db_query(a->db, -1, ...) would.
 *
 * The rule that never skips a message: a read of a room names a floor, a
 * seq the gateway knows is committed (one heard on the bus or in a marker,
 * the room's delivered position, the cursor a client holds). On the replica
 * the read is pipelined on one connection right behind ST_LAST_SEQ of the
 * room. A standby replays the primary's WAL in commit order and a later
 * statement on the same server sees at least what an earlier one saw, and a
 * room's seqs commit in seq order with rooms.last_seq (the row lock of the
 * store's batch), so when that check reads last_seq >= floor, the read behind
 * it sees every row of the room up to floor. When it reads less (the replica
 * lags), or either statement fails (a recovery conflict, a lost
 * connection), the read is sent again to the primary and the replica's
 * answer is dropped; so is a read when no replica connection is ready (the
 * replica is down: it comes back by itself when db reconnects). A caller
 * that cannot name a floor (a catch-up of unknown extent) reads the primary.
 *
 * A floor also covers what this gateway committed itself: store.c notes
 * each stored seq (dbread_note), and a read of the room asks the replica
 * for at least that, so a sender's history page after its ack holds its
 * message even before the bus brought it back (read-your-writes on one
 * gateway; a read on another gateway names the seq as a cursor). The notes
 * are a direct-mapped table of DBREAD_FLOORS rooms, kept only with a
 * replica: a room pushed out by another loses only this extra floor.
 *
 * A read without a room (room NULL: evaluation) takes the replica's answer
 * as it is, up to the replica's replay lag behind the primary.
 *
 * Counted in stats: pg_read_replica (answered by the replica) and
 * pg_read_fallback[DBREAD_BEHIND | DBREAD_ERROR | DBREAD_DOWN].
 *
 * Ownership: parameters are copied; cb is called exactly once when this
 * returns 0 (with err -EAGAIN etc. as db_query's callbacks are), never when
 * it returns an error.
 */
#ifndef PARLEY_DBREAD_H
#define PARLEY_DBREAD_H

#include "db.h"

#include <stdint.h>

struct app;

enum { DBREAD_BEHIND, DBREAD_ERROR, DBREAD_DOWN };

/* A floor nobody can name (a catch-up of unknown extent): the primary. */
#define DBREAD_PRIMARY INT64_MAX

enum { DBREAD_FLOORS = 1024 };

/* Read-only statement stmt (n text parameters v) on the replica if there is
 * one: with room, only when its last_seq there reaches floor. Returns 0 or a
 * db_query error (-EAGAIN, -ENOBUFS, -ENOMEM). */
int dbread_query(struct app *a, const char *room, int64_t floor, int stmt, int n,
                 const char *const *v, db_cb cb, void *ud);

/* seq of room was committed by this gateway (a no-op without a replica). */
void dbread_note(struct app *a, const char *room, int64_t seq);
void dbread_free(struct app *a);

#endif
