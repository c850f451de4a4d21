/*
 * senders.h - delivery checking for a peer without a room seq (nchan): each
 * message starts with "n<slot>.<k> ", its sender's place in the room and the
 * sender's own send counter (0, 1, ...). A channel delivers in publish order
 * and one sender publishes its sends in order, so a receiver checks per
 * (room, sender) that counters arrive each once and increasing; what is
 * missing below a sender's final send count at the end is lost.
 *
 * Ownership: a struct senders owns its array of checks (senders_init
 * allocates, senders_free frees); the caller owns the struct.
 */
#ifndef PARLEY_SENDERS_H
#define PARLEY_SENDERS_H

#include <stddef.h>
#include <stdint.h>

#include "seqcheck.h"

struct senders {
    int n;                 /* senders in the room */
    struct seqcheck *from; /* one per sender slot, expecting counter 0 first */
    uint64_t unknown;      /* messages naming no slot of the room (garbled) */
};

/* 0, or -1 when out of memory. */
int senders_init(struct senders *s, int n);
void senders_free(struct senders *s);
/* Writes the prefix "n<slot>.<k> " into out (cap bytes); returns its length,
 * 0 when it does not fit. */
size_t senders_put(char *out, size_t cap, int slot, int64_t k);
/* Reads the prefix of p (n bytes): the offset of what follows it, 0 when p
 * does not start with one. */
size_t senders_parse(const char *p, size_t n, int *slot, int64_t *k);
/* Counts a delivery of sender slot's send k; -1 when slot is not the room's. */
int senders_see(struct senders *s, int slot, int64_t k);
/* Sends never delivered: sent[i] is sender i's final send count. */
uint64_t senders_missing(const struct senders *s, const uint64_t *sent);
/* Sums over every sender: deliveries, duplicates, out of order. */
void senders_totals(const struct senders *s, uint64_t *delivered, uint64_t *dups, uint64_t *ooo);

#endif
