#include "sizes.h"

#include <math.h>
#include <stdlib.h>

int sizes_zipf(int n, int m, double s, int *sizes)
{
    if (m < 1 || n < m || s < 0) return -1;
    /* Each room's 1 is given first; the other n - m are shared by weight. */
    double total = 0;
    for (int r = 0; r < m; r++)
        total += pow(r + 1, -s);
    int rest = n - m, given = 0;
    double *frac = malloc(sizeof *frac * (size_t)m);
    if (!frac) return -1;
    for (int r = 0; r < m; r++) {
        double share = rest * pow(r + 1, -s) / total;
        int whole = (int)share;
        sizes[r] = 1 + whole;
        frac[r] = share - whole;
        given += whole;
    }
    /* Largest remainder; ties go to the bigger room (the lower index), so
     * sizes stay non-increasing. */
    for (; given < rest; given++) {
        int best = 0;
        for (int r = 1; r < m; r++)
            if (frac[r] > frac[best]) best = r;
        sizes[best]++;
        frac[best] = -1;
    }
    free(frac);
    return 0;
}

void sizes_assign(int n, int m, const int *sizes, int *room_of)
{
    int *left = malloc(sizeof *left * (size_t)m), sum = 0;
    if (!left) abort();
    for (int r = 0; r < m; r++)
        sum += left[r] = sizes[r];
    if (sum != n) abort(); /* a caller's bug: the loop below would not end */
    int r = 0;
    for (int i = 0; i < n; i++) {
        while (!left[r])
            r = (r + 1) % m;
        room_of[i] = r;
        left[r]--;
        r = (r + 1) % m;
    }
    free(left);
}
