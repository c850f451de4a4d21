/*
 * store.h - typed PostgreSQL queries and the writer of messages and events.
 *
 * The writer runs the batches of the group-commit batcher (batcher.h): it
 * groups concurrent sends into one statement, one implicit
 * transaction: per-room seqs are taken with UPDATE rooms SET last_seq =
 * last_seq + k ... RETURNING (rooms locked in id order so two gateways never
 * deadlock), the rows are inserted, and a retried client_msg_id returns the
 * row already stored (the same send twice in one batch is written once, the
 * later copy answered as a duplicate). A batch is written when it is full,
 * or batch_delay_us after the previous one left (at once after a quiet
 * spell); while one batch commits the next one gathers. Only
 * after COMMIT is the sender answered and the push published, encoded once.
 *
 * Ownership: store_send and store_event copy what they need from the command; items link
 * to their connection with a creq, so a closed connection's items are still
 * written (and published) but not answered.
 */
#ifndef PARLEY_STORE_H
#define PARLEY_STORE_H

#include "db.h"
#include "stmts.h"
#include "parley_proto.h"

#include <stdbool.h>
#include <stdint.h>

struct app;
struct conn;

enum store_stmt {
    ST_AUTH,         /* $1 json [[token hash hex, workspace uuid or null], ...]
                        -> item (from 1), person, workspace, role, token id, is_avatar;
                        at most 2 rows per item, ordered by item */
    ST_JOIN_CHECK,   /* $1 room, $2 workspace, $3 person, $4 token id, $5 manages rooms
                        -> allowed (no row: not visible to the person) */
    ST_LAST_SEQ,     /* $1 room -> last_seq */
    ST_FETCH,        /* $1 room, $2 after seq, $3 limit, $4 byte budget -> rows ascending,
                        ending with the first whose bodies reach the budget */
    ST_BEFORE,       /* $1 room, $2 before seq, $3 limit -> messages descending (history) */
    ST_HIST_AFTER,   /* $1 room, $2 after seq, $3 limit -> messages ascending (history) */
    ST_INSERT_BATCH, /* $1 json array of sends -> (i, seq, ts, dup, body) */
    ST_VISIT,        /* $1 json [{ws, person, ip, os, browser}, ...] */
    ST_REVALIDATE,   /* $1 json [[token id, workspace], ...] -> the pairs no longer valid */
    ST_STATE_BATCH,  /* receipts.c: read state and votes, one batch */
    ST_UNREAD,       /* $1 workspace, $2 person -> json: unread per visible room */
    ST_SEEN_BY,      /* $1 room, $2 seq -> json: who has seen it, when; k of n */
    ST_SEEN_ENTRIES, /* $1 room, $2 person -> json: watermark and out-of-order seqs */
    ST_ENTRIES,      /* $1 room, $2 by rating, $3 limit, $4 offset -> ROW_COLS + replies */
    ST_MY_VOTES,     /* $1 workspace, $2 person, $3 room or NULL -> json: likes, ratings */
    ST_GUIDELINES,   /* $1 workspace, $2 room -> workspace rules, room rules (json text or
                        NULL), locked, slow_mode_s, mutes [[person, until ms], ...] */
    ST_PENDING_ADD,  /* $1 room, $2 sender, $3 cmid, $4 body, $5 parent, $6 state, $7 rules
                        json -> parent ok, id, state, ts, duplicate,
                        the pending push (NULL for a duplicate), room archived */
    ST_HITS,         /* $1 json [{ws, room, person, rule, action, kind}] */
    ST_ACCESS,       /* $1 json [[room, person, token id], ...] -> (room, token id, reason)
                        of the joins no longer allowed (access.c) */
    ST_SCHEMA,       /* -> the database's schema version */
    ST__COUNT
};

/* The store's table in the statement registry (stmts.h). It is registered
 * first (ops/lifecycle.c checks its base is 0), so ST_X is its own prepared index for
 * the modules that run the store's statements. */
extern struct stmts_table store_sql;

/* Columns of ST_FETCH and ST_BEFORE rows. */
enum {
    COL_SEQ,
    COL_SENDER,
    COL_CMID,
    COL_BODY,
    COL_TS,
    COL_AVATAR,
    COL_KIND,
    COL_PARENT,
    COL_LIKES,
    COL_STARS,
    COL_STAR_SUM,
    COL_VOTES_V,
    COL_DELETED,
    COL_EDITED,
    COL_REPLIES /* ST_ENTRIES only */
};

/* Fills m from a row of ST_FETCH/ST_BEFORE (pointers into res). */
void store_row_message(PGresult *res, int row, const char *room, struct pp_message *m);
/* "message" -> PP_K_MESSAGE ... */
enum pp_kind store_kind(const char *s);

/* What the store hands up: it does not know the rooms; the wiring
 * (ops/lifecycle.c) implements this. Every member must be set;
 * store_batcher_new copies the struct. (Backpressure needs no hook: the
 * connections are below the store, which calls conn_rx_pause.) */
struct store_hooks {
    void *ud; /* passed to each hook */
    /* Rows of room were committed but not published (bus down or full):
     * this gateway's members of the room should fetch them now. */
    void (*kick)(void *ud, const char *room);
};

int store_batcher_new(struct app *a, const struct store_hooks *hooks);
void store_batcher_free(struct app *a);

/* Queues a send; the reply goes to c when it commits (or fails).
 * Returns 0 or -EBUSY when the queue is full (the caller answers busy). */
int store_send(struct app *a, struct conn *c, int64_t id, const char *room,
               const struct pp_str *cmid, const struct pp_str *body, int64_t parent);

/* Queues an event (votes, read) into the room's log: sequenced, persisted,
 * published like a message; nobody is answered. body is a JSON object. */
int store_event(struct app *a, const char *room, const char *sender, enum pp_kind kind,
                const char *body, size_t len);

/* Rows up to seq were appended to room's log outside the batcher (a
 * moderation statement): tells every gateway with members there, now or
 * when the bus is back. */
void store_announce(struct app *a, const char *room, int64_t seq);

/* Bus hook: the publish link is back; announce what could not be published. */
void store_on_pub_up(void *ud);

/* True when the write queue is above its high-water mark: stop reading. */
bool store_congested(const struct app *a);
/* Nothing waiting and nothing in flight. */
bool store_idle(const struct app *a);
/* Writes what is waiting now (shutdown). */
void store_flush(struct app *a);

#endif
