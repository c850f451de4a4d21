/*
 * seqcheck.h - per-(client, room) delivery checking by room seq: counts
 * gaps (seqs skipped), duplicates and out-of-order arrivals. A gap that is
 * filled later is counted as out-of-order, not lost; seqs still missing at
 * the end are lost.
 */
#ifndef PARLEY_SEQCHECK_H
#define PARLEY_SEQCHECK_H

#include <stdint.h>

#define SEQCHECK_WINDOW 256 /* seqs ahead of the contiguous edge that are tracked */

struct seqcheck {
    int64_t next;                         /* the lowest seq not yet seen (all below were seen) */
    uint64_t ahead[SEQCHECK_WINDOW / 64]; /* bit k: seq next + 1 + k seen early */
    uint64_t delivered;                   /* accepted deliveries */
    uint64_t duplicates;                  /* seqs seen twice */
    uint64_t out_of_order;                /* seqs that arrived after a higher one */
    uint64_t beyond_window;               /* arrivals too far ahead to track (counted as gaps) */
};

/* Expect seq `first` next (the join's last_seq + 1). */
void seqcheck_init(struct seqcheck *s, int64_t first);
void seqcheck_see(struct seqcheck *s, int64_t seq);
/* Seqs below `upto` (exclusive) that were never seen. */
uint64_t seqcheck_missing(const struct seqcheck *s, int64_t upto);

#endif
