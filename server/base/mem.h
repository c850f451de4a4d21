/*
 * mem.h - the one allocation wrapper (as SQLite does), so tests can make
 * allocation fail at a chosen point. Every allocation of the server goes
 * through these; libraries keep their own allocators.
 */
#ifndef PARLEY_MEM_H
#define PARLEY_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

void *mem_alloc(size_t n);             /* NULL on failure (or injected failure) */
void *mem_calloc(size_t n, size_t sz); /* zeroed; NULL on overflow or failure */
void *mem_realloc(void *p, size_t n);  /* like realloc; p untouched on failure */
void mem_free(void *p);
char *mem_strndup(const char *s, size_t n); /* NUL-terminated copy */

/* Makes cJSON allocate through these too (by pp_set_allocator, so that
 * parsers can tell a failed allocation from bad JSON): its trees and printed
 * strings are injectable and freed with mem_free (or cJSON_free). Call once,
 * before anything parses or prints JSON. */
void mem_hook_json(void);

/* Called about once a second with a running count of connection events
 * (opened, authenticated, joined, closed): gives the heap's free pages back
 * to the system when resident memory that is not live heap has grown, on a
 * tick that is not in a burst. 1 when it trimmed. */
int mem_trim_tick(uint64_t events);

/* mem_trim_tick's policy, apart so that tests can drive it: state between
 * ticks (zero it to start). */
struct mem_trim {
    uint64_t events; /* the count at the last tick */
    uint32_t ticks;  /* quiet ticks since the last look (a burst's do not count) */
    bool looked;     /* floor is set */
    size_t floor;    /* resident bytes not in live heap after the last trim (or the least seen) */
};
/* New slack (resident bytes not in live heap) worth a trim. Each trim walks
 * the heap (milliseconds at 60 MB) at most every 10 s, so the gain is small:
 * what is left above the floor is charged to every connection, and 2 MB was
 * 0.14 KB of each of 14,000 idle ones on a gateway (BENCHMARKS.md). */
#define MEM_TRIM_GAIN ((size_t)512 << 10)
/* Whether this tick looks at the heap: the first one (a baseline), then a
 * quiet one every 10 s. */
bool mem_trim_looks(const struct mem_trim *t, uint64_t events);
/* Whether to trim now, given this tick's count and, on a tick that looks,
 * the resident and live heap bytes (ignored on others). The caller that
 * trims sets floor to what is left not live afterwards. */
bool mem_trim_due(struct mem_trim *t, uint64_t events, size_t resident, size_t in_use);

/* The heap's bytes in live allocations and in free chunks it keeps (both 0
 * where the C library does not say). RSS minus these is code, stacks and
 * what libraries map themselves. */
void mem_heap(size_t *in_use, size_t *kept_free);

/* Tests: fail the n-th allocation from now (0 disables). */
void mem_fail_after(long n);

#endif
