#include "seqcheck.h"

#include <string.h>

void seqcheck_init(struct seqcheck *s, int64_t first)
{
    memset(s, 0, sizeof *s);
    s->next = first;
}

static int test_bit(const struct seqcheck *s, int64_t k)
{
    return (int)((s->ahead[k / 64] >> (k % 64)) & 1);
}

/* Shifts the window down by one: bit 0 leaves, a zero enters at the top. */
static void shift1(struct seqcheck *s)
{
    const int n = SEQCHECK_WINDOW / 64;
    for (int i = 0; i < n; i++) {
        s->ahead[i] >>= 1;
        if (i + 1 < n) s->ahead[i] |= (s->ahead[i + 1] & 1) << 63;
    }
}

void seqcheck_see(struct seqcheck *s, int64_t seq)
{
    if (seq < s->next) {
        s->duplicates++;
        return;
    }
    s->delivered++;
    if (seq == s->next) {
        s->next++;
        /* Slide over seqs that had arrived early. */
        while (test_bit(s, 0)) {
            shift1(s);
            s->next++;
        }
        shift1(s);
        return;
    }
    int64_t k = seq - s->next - 1; /* bit for seq */
    if (k >= SEQCHECK_WINDOW) {
        s->beyond_window++;
        return;
    }
    if (test_bit(s, k)) {
        s->delivered--;
        s->duplicates++;
        return;
    }
    s->ahead[k / 64] |= (uint64_t)1 << (k % 64);
    s->out_of_order++; /* it came before seq `next` */
}

uint64_t seqcheck_missing(const struct seqcheck *s, int64_t upto)
{
    if (upto <= s->next) return 0;
    uint64_t missing = (uint64_t)(upto - s->next);
    for (int64_t k = 0; k < SEQCHECK_WINDOW && s->next + 1 + k < upto; k++)
        if (test_bit(s, k)) missing--;
    return missing;
}
