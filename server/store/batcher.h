/*
 * batcher.h - group commit, one implementation for every batched write
 * (messages and events in store.c, read state and votes in receipts.c).
 *
 * Items wait in a list bounded by queue_max. Up to batch_max of them leave
 * the list as ONE batch, which an executor runs as one statement in one
 * transaction. Batches are spaced: one leaves linger_us after the one
 * before it left (on the next loop turn if that is past, as after a quiet
 * spell), or as soon as batch_max wait or a sender is paused (below). One
 * batch is in flight at a time: what arrives meanwhile gathers, and goes
 * when the batch in flight completes if it is full or the linger is over
 * by then, else when it is. So an item that fits in the next batch waits
 * at most the longer of a linger and the run ahead of it, a lone send on
 * a quiet gateway waits for nothing, and under load a batch holds at least
 * a linger's worth of items: about one commit per linger and gateway,
 * whatever the database's speed.
 *
 * The batching knows nothing of SQL or connections (batcher_query is only
 * the glue to db.h for the usual run). The executor (ops) builds
 * a batch's parameter once, runs it (again on a retry) and dispatches its
 * results, and reports the end of a run with batcher_done:
 *   - 40P01 (deadlock), 40001 (serialization) and 23505 (unique violation:
 *     another gateway stored the same retried item first) run the batch
 *     again, BATCHER_TRIES runs in all; the retry sees what committed since;
 *   - any other failed statement, a batch that could not be built or run,
 *     or one whose connection was lost (it may or may not have committed)
 *     fails as a whole (ops->fail), and the executor answers every item.
 * Backpressure: an item queued while the list is at least half full is
 * shown to ops->pause (stop reading from its sender); once a batch completes
 * with the list down to a quarter, ops->resume is called once.
 *
 * Ownership: the caller allocates each item with a struct batch_item inside.
 * batcher_add takes it on success (0); it comes back through ops->release
 * exactly once, after its batch was dispatched or failed, or at batcher_free.
 * On an error from batcher_add it stays the caller's. The batcher allocates
 * only in batcher_new; nothing on the way of an item.
 */
#ifndef PARLEY_BATCHER_H
#define PARLEY_BATCHER_H

#include "parley_proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define BATCHER_TRIES 3 /* runs of one batch at most (the first and two retries) */

/* The link of an item; embed it and get back with batcher_entry. */
struct batch_item {
    struct batch_item *next; /* waiting list */
};

#define batcher_entry(p, type, member) ((type *)(void *)((char *)(p)-offsetof(type, member)))

/* The batch in flight, as the executor sees it. */
struct batch {
    struct batch_item **items; /* in the order they were queued */
    uint32_t n;                /* 0: none in flight */
    int tries;                 /* 1 on the first run, 2 on the first retry ... */
    uint64_t t0;               /* uv_hrtime when the batch left the list (kept after) */
};

/* admit's answers. */
enum { BATCH_TAKE, BATCH_CUT };

struct batcher_ops {
    /* May it join the items gathered so far (bt->items[0..bt->n))? BATCH_CUT
     * closes the batch before it (it leads the next one; never asked for the
     * first item). It may also note how it relates to them (a duplicate).
     * NULL: every item is taken. */
    int (*admit)(void *ud, const struct batch *bt, struct batch_item *it);
    /* Builds the batch's parameter, once per batch: 0, or a negative errno
     * and the batch fails with it. */
    int (*build)(void *ud, const struct batch *bt);
    /* Starts a run: 0, and batcher_done follows (possibly before run
     * returns); or a negative errno, and batcher_done must not be called. */
    int (*run)(void *ud, const struct batch *bt);
    /* The run committed: res is what batcher_done was given. */
    void (*dispatch)(void *ud, const struct batch *bt, void *res);
    /* The batch failed as a whole. err -EIO: the statement failed (sqlstate
     * and res as given to batcher_done); other: it could not be built or
     * run, or its outcome is unknown (-EAGAIN, -ETIMEDOUT, -ENOMEM ...;
     * sqlstate and res NULL). */
    void (*fail)(void *ud, const struct batch *bt, int err, const char *sqlstate, void *res);
    /* Gives an item back (freed by the executor). */
    void (*release)(void *ud, struct batch_item *it);
    /* Optional backpressure: it was just queued while the list is at least
     * half full. true: its sender was told to stop reading (resume follows). */
    bool (*pause)(void *ud, struct batch_item *it);
    /* Every paused sender may read again. */
    void (*resume)(void *ud);
};

struct batcher_cfg {
    uint32_t batch_max; /* items per batch at most (>= 1) */
    uint32_t queue_max; /* items waiting at most */
    uint32_t linger_us; /* between one batch leaving and the next, unless batch_max wait (timer in
                           whole ms) */
};

struct batcher;

/* NULL when out of memory. ops and ud must outlive the batcher. */
struct batcher *batcher_new(uv_loop_t *loop, const struct batcher_cfg *cfg,
                            const struct batcher_ops *ops, void *ud);
/* Releases every item still waiting or in flight (an executor's run in
 * flight must not call batcher_done afterwards: close its connection
 * first), closes the timer; the memory goes when libuv has closed it. */
void batcher_free(struct batcher *b);

/* Queues it: 0, or -EBUSY when queue_max items wait (it stays the caller's). */
int batcher_add(struct batcher *b, struct batch_item *it);
/* The end of a run. err: 0 ran (sqlstate NULL: committed; else the failed
 * statement's SQLSTATE, "" when it has none), or negative: the outcome is
 * unknown (connection lost, deadline). res is handed to dispatch or fail. */
void batcher_done(struct batcher *b, int err, const char *sqlstate, void *res);
/* The usual build: the batch as one JSON text in *buf (an executor's, grown
 * as needed; *cap its size). enc writes the batch with w and returns
 * pp_w_finish's result. need is the executor's estimate; if it was short,
 * the buffer doubles and enc runs again, so an estimate is a matter of
 * speed, never of a batch failed. 0, or -ENOMEM. */
int batcher_json(char **buf, size_t *cap, size_t need,
                 int (*enc)(struct pp_w *w, const struct batch *bt), const struct batch *bt);
/* The usual run: prepared statement stmt with the one text parameter param
 * on db's writer lane, its end reported to batcher_done (a result without
 * rows counts as a failed statement, with its SQLSTATE). For ops->run. */
struct db;
int batcher_query(struct batcher *b, struct db *db, int stmt, const char *param);

/* Sends what waits now instead of at the linger's end (shutdown). */
void batcher_flush(struct batcher *b);

bool batcher_full(const struct batcher *b);      /* batcher_add would refuse */
bool batcher_congested(const struct batcher *b); /* at least half full */
bool batcher_idle(const struct batcher *b);      /* nothing waiting, nothing in flight */
uint32_t batcher_waiting(const struct batcher *b);

#endif
