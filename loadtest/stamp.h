/*
 * stamp.h - the send time a load generator puts at the start of each body,
 * so every delivery can be timed (same machine: a monotonic clock).
 *
 * Written in letters ("t" then one letter a-j per decimal digit), not
 * digits: a long run of digits looks like a phone number to the guidelines'
 * personal-data detector, which would redact the stamp and so every latency
 * measured with guidelines on. Letters match no detector and no word rule
 * of the benchmarks (whole words only).
 */
#ifndef PARLEY_STAMP_H
#define PARLEY_STAMP_H

#include <stddef.h>
#include <stdint.h>

#define STAMP_MAX 22 /* "t" + 20 letters + NUL */

/* Writes ns into out (STAMP_MAX bytes at least); returns the length. */
size_t stamp_put(char *out, uint64_t ns);
/* The time at the start of s, or 0 when s does not start with a stamp. */
uint64_t stamp_get(const char *s);

#endif
