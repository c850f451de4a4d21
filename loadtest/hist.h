/*
 * hist.h - a log-linear latency histogram (the HdrHistogram idea, small):
 * values in microseconds, buckets of relative width 1/32 (~3% error) from
 * 1 µs to about 1 hour, fixed memory, O(1) record, exact count and max.
 */
#ifndef PARLEY_HIST_H
#define PARLEY_HIST_H

#include <stdint.h>
#include <stdio.h>

#define HIST_SUB 32 /* linear sub-buckets per power of two */
#define HIST_POW 32 /* powers of two covered: up to 2^32 µs */

struct lhist {
    uint64_t b[HIST_POW * HIST_SUB]; /* counts */
    uint64_t count;                  /* values recorded */
    uint64_t max;                    /* largest value recorded */
    uint64_t min;                    /* smallest value recorded */
    double sum;                      /* for the mean */
};

void lhist_init(struct lhist *h);
void lhist_record(struct lhist *h, uint64_t us);
/* The value at percentile p (0..100): the upper edge of the bucket holding
 * it, clamped to the recorded max, so it never understates. 0 when empty. */
uint64_t lhist_percentile(const struct lhist *h, double p);
void lhist_merge(struct lhist *into, const struct lhist *from);
/* CSV rows `upper_bound_us,count` for non-empty buckets. */
void lhist_write_csv(const struct lhist *h, FILE *f);

#endif
