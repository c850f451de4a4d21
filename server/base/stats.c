#include "stats.h"

/* Log-spaced, so one histogram covers a fast loopback commit and a stalled
 * one; the +Inf bucket is the last slot of struct hist. */
static const double sec_bounds[STATS_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const double count_bounds[STATS_BUCKETS] = {1,   2,   4,   8,    16,   32,   64,
                                                   128, 256, 512, 1024, 2048, 4096, 8192};

const double *stats_bounds(int is_count)
{
    return is_count ? count_bounds : sec_bounds;
}

void stats_observe(struct hist *h, double v, int is_count)
{
    const double *b = stats_bounds(is_count);
    int i = 0;
    while (i < STATS_BUCKETS && v > b[i])
        i++;
    h->bucket[i]++;
    h->count++;
    h->sum += v;
}
