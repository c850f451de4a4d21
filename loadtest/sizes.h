/*
 * sizes.h - room size distributions for parley-load: how many of n clients
 * each of m rooms gets. Uniform is what the fixture gives (client i in room
 * i % m); Zipf gives room r (0-based) a share proportional to 1/(r+1)^s,
 * as chat rooms are in practice (a few big ones, a long tail of small).
 */
#ifndef PARLEY_SIZES_H
#define PARLEY_SIZES_H

/* Fills sizes[0..m) with room sizes that sum to n, proportional to
 * 1/(r+1)^s (s = 0: as equal as possible), every room at least 1, largest
 * first; the rounding is by largest remainder, so the result is exact and
 * deterministic. Returns 0, or -1 when m < 1, n < m or s < 0. */
int sizes_zipf(int n, int m, double s, int *sizes);

/* Assigns client i (0 <= i < n) to a room so that room r gets sizes[r]:
 * rooms are dealt round-robin among those not yet full, so a room's members
 * spread over the clients (and so over gateways and generator processes).
 * room_of[] receives the room of each client. The sizes must sum to n. */
void sizes_assign(int n, int m, const int *sizes, int *room_of);

#endif
