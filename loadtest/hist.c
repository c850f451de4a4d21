#include "hist.h"

#include <string.h>

void lhist_init(struct lhist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

/* Bucket index: values below HIST_SUB are exact; above, the top 5 bits after
 * the leading one pick the sub-bucket. */
static unsigned idx(uint64_t v)
{
    if (v < HIST_SUB) return (unsigned)v;
    unsigned lz = (unsigned)__builtin_clzll(v);
    unsigned pow = 63 - lz; /* v in [2^pow, 2^(pow+1)) */
    unsigned sub = (unsigned)(v >> (pow - 5)) & (HIST_SUB - 1);
    unsigned i = (pow - 4) * HIST_SUB + sub;
    return i < HIST_POW * HIST_SUB ? i : HIST_POW * HIST_SUB - 1;
}

/* The largest value that lands in bucket i. */
static uint64_t upper(unsigned i)
{
    if (i < HIST_SUB) return i;
    unsigned pow = i / HIST_SUB + 4, sub = i % HIST_SUB;
    uint64_t base = ((uint64_t)HIST_SUB + sub) << (pow - 5);
    return base + ((uint64_t)1 << (pow - 5)) - 1;
}

void lhist_record(struct lhist *h, uint64_t us)
{
    h->b[idx(us)]++;
    h->count++;
    h->sum += (double)us;
    if (us > h->max) h->max = us;
    if (us < h->min) h->min = us;
}

uint64_t lhist_percentile(const struct lhist *h, double p)
{
    if (!h->count) return 0;
    if (p >= 100) return h->max;
    uint64_t rank = (uint64_t)(p / 100.0 * (double)h->count);
    if (rank >= h->count) rank = h->count - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_POW * HIST_SUB; i++) {
        seen += h->b[i];
        if (seen > rank) {
            /* The last bucket also holds everything beyond the range. */
            if (i == HIST_POW * HIST_SUB - 1) return h->max;
            uint64_t u = upper(i);
            return u < h->max ? u : h->max;
        }
    }
    return h->max;
}

void lhist_merge(struct lhist *into, const struct lhist *from)
{
    for (unsigned i = 0; i < HIST_POW * HIST_SUB; i++)
        into->b[i] += from->b[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->max > into->max) into->max = from->max;
    if (from->min < into->min) into->min = from->min;
}

void lhist_write_csv(const struct lhist *h, FILE *f)
{
    fprintf(f, "upper_us,count\n");
    for (unsigned i = 0; i < HIST_POW * HIST_SUB; i++)
        if (h->b[i])
            fprintf(f, "%llu,%llu\n", (unsigned long long)upper(i), (unsigned long long)h->b[i]);
}
