#include "senders.h"

#include <stdio.h>
#include <stdlib.h>

int senders_init(struct senders *s, int n)
{
    s->n = n;
    s->unknown = 0;
    s->from = calloc((size_t)(n > 0 ? n : 1), sizeof *s->from);
    if (!s->from) return -1;
    for (int i = 0; i < n; i++)
        seqcheck_init(&s->from[i], 0);
    return 0;
}

void senders_free(struct senders *s)
{
    free(s->from);
    s->from = NULL;
    s->n = 0;
}

size_t senders_put(char *out, size_t cap, int slot, int64_t k)
{
    int w = snprintf(out, cap, "n%d.%lld ", slot, (long long)k);
    return w > 0 && (size_t)w < cap ? (size_t)w : 0;
}

/* Digits at p[*i..n) as a number; false when there are none (or too many). */
static int digits(const char *p, size_t n, size_t *i, int64_t *v)
{
    size_t start = *i;
    *v = 0;
    while (*i < n && p[*i] >= '0' && p[*i] <= '9' && *i - start < 18)
        *v = *v * 10 + (p[(*i)++] - '0');
    return *i > start;
}

size_t senders_parse(const char *p, size_t n, int *slot, int64_t *k)
{
    size_t i = 1;
    int64_t s;
    if (n < 5 || p[0] != 'n' || !digits(p, n, &i, &s) || i >= n || p[i++] != '.' ||
        !digits(p, n, &i, k) || i >= n || p[i++] != ' ' || s > 1000000000)
        return 0;
    *slot = (int)s;
    return i;
}

int senders_see(struct senders *s, int slot, int64_t k)
{
    if (slot < 0 || slot >= s->n) {
        s->unknown++;
        return -1;
    }
    seqcheck_see(&s->from[slot], k);
    return 0;
}

uint64_t senders_missing(const struct senders *s, const uint64_t *sent)
{
    uint64_t m = 0;
    for (int i = 0; i < s->n; i++)
        m += seqcheck_missing(&s->from[i], (int64_t)sent[i]);
    return m;
}

void senders_totals(const struct senders *s, uint64_t *delivered, uint64_t *dups, uint64_t *ooo)
{
    for (int i = 0; i < s->n; i++) {
        *delivered += s->from[i].delivered;
        *dups += s->from[i].duplicates;
        *ooo += s->from[i].out_of_order;
    }
}
