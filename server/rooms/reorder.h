/*
 * reorder.h - a room's reorder window and its gap-fetch decisions, as pure
 * state: no loop, no clock, no I/O. The caller passes the time in, creates
 * and frees the held items, delivers, and runs the fetches this asks for.
 *
 * A room's order is its PostgreSQL seq. delivered is the last seq handed on;
 * a seq <= delivered is a duplicate, delivered + 1 goes on at once, a later
 * one is held (up to REORDER_WINDOW of them) until the seqs before it arrive.
 * A gap is a seq heard of (held, or dropped because the window was full or
 * the caller could not keep it) that is past delivered + 1 while
 * delivered + 1 itself has not come. Bus messages from several gateways may
 * cross on the way, so a gap is given deadline_ms to fill by itself; then
 * exactly the missing seqs before the first held one are fetched. A full
 * window asks for a fetch at once, of everything up to the highest seq seen.
 *
 * Storage: a room's window is empty nearly always (a seq arrives early
 * only when messages from several gateways cross on the bus), and a gateway
 * holds a copy of every room it has members in, so the held entries are
 * allocated (through mem.h) only when something is held: 4 at first,
 * doubled up to REORDER_WINDOW, and freed when the window empties again. A
 * failed allocation is treated as a full window: the seq is not kept, the
 * gap is fetched at once.
 *
 * Ownership: the window holds the caller's item pointers (frames) and hands
 * each one back exactly once, through reorder_pop or reorder_take; it owns
 * its entry array, which is gone whenever n is 0 (so a window handed back
 * empty needs no freeing).
 */
#ifndef PARLEY_REORDER_H
#define PARLEY_REORDER_H

#include <stdbool.h>
#include <stdint.h>

#define REORDER_WINDOW 64 /* out-of-order messages held per room */

struct reorder_held {
    int64_t seq; /* room seq */
    void *item;  /* the caller's (a frame) */
};

struct reorder {              /* 48 bytes: one per room copy on a gateway */
    int64_t delivered;        /* last seq handed on */
    int64_t seen;             /* highest seq heard of */
    struct reorder_held *win; /* sorted by seq, all > delivered + 1; NULL when n is 0 */
    uint64_t gap_since;       /* ms when the gap was noticed; 0: no gap */
    uint32_t n;               /* entries in win */
    uint32_t cap;             /* entries allocated in win */
    bool ready;               /* delivered is known (reorder_start) */
    bool fetch_now;           /* the window overflowed: do not wait */
};

/* What to do with a seq that arrived (reorder_offer). */
enum reorder_verdict {
    REORDER_DELIVER, /* next in line: deliver it, then reorder_advance */
    REORDER_HOLD,    /* early: give it to reorder_hold (or drop it: the gap is noted) */
    REORDER_DROP,    /* a duplicate or older than delivered */
    REORDER_FULL,    /* early and no room: dropped, a fetch is due now */
};

/* A range to read from storage: the count (>= 1) seqs after the last one
 * delivered (the room's catch-up reads from there). */
struct reorder_range {
    int64_t count;
};

void reorder_init(struct reorder *w);
/* The room's position is known (its last stored seq): never goes back. */
void reorder_start(struct reorder *w, int64_t last);
/* A seq arrived at now_ms: the verdict. Notes the gap for HOLD and FULL. */
enum reorder_verdict reorder_offer(struct reorder *w, int64_t seq, uint64_t now_ms);
/* Keeps item for seq after a REORDER_HOLD verdict: 0, or -ENOMEM when the
 * window could not grow. Then the item is the caller's still (free it) and
 * the window acts as if full: the gap is fetched now (reorder_due). */
int reorder_hold(struct reorder *w, int64_t seq, void *item);
/* A seq offered with the verdict DELIVER could not be handed on (no memory
 * for it): it is a gap, fetched after the deadline. */
void reorder_missed(struct reorder *w, int64_t seq, uint64_t now_ms);
/* seq (delivered + 1) was handed on: from the bus or from storage.
 * -EINVAL (nothing changes) for any other seq. */
int reorder_advance(struct reorder *w, int64_t seq);
/* Returns the held items that are no longer early, lowest first: 1 with
 * *seq and *item for one that is next in line (delivered has advanced to
 * it: deliver it), 2 for a stale one (drop it), 0 when there is none. The
 * caller frees each item it gets. */
int reorder_pop(struct reorder *w, int64_t *seq, void **item);
/* Takes any held item for freeing (the room is going): 1 or 0 when empty. */
int reorder_take(struct reorder *w, void **item);
/* Whether a fetch is due at now_ms; if so, *r is the range to read. */
bool reorder_due(const struct reorder *w, uint64_t now_ms, uint32_t deadline_ms,
                 struct reorder_range *r);
/* A fetch started at now_ms (for reorder_due or any other catch-up): a gap
 * left after it is given deadline_ms again. */
void reorder_fetching(struct reorder *w, uint64_t now_ms);
/* A gap is waiting (reorder_due will say yes at some time). */
bool reorder_gap(const struct reorder *w);

#endif
