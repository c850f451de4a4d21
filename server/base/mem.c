#include "mem.h"

#include "parley_proto.h"

#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* Countdown to an injected failure; 0 means never. Single-threaded by design
 * (the loop thread), the thread-pool work in later modules does not allocate
 * through here. */
static long fail_countdown;

static int should_fail(void)
{
    if (fail_countdown > 0 && --fail_countdown == 0) return 1;
    return 0;
}

void mem_fail_after(long n)
{
    fail_countdown = n;
}

void *mem_alloc(size_t n)
{
    return should_fail() ? NULL : malloc(n ? n : 1);
}

void *mem_calloc(size_t n, size_t sz)
{
    return should_fail() ? NULL : calloc(n ? n : 1, sz ? sz : 1);
}

void *mem_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : realloc(p, n ? n : 1);
}

void mem_free(void *p)
{
    free(p);
}

char *mem_strndup(const char *s, size_t n)
{
    char *d = mem_alloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

void mem_hook_json(void)
{
    /* cJSON then prints by allocate-and-copy instead of realloc (it uses
     * realloc only with the C library's own pair): a copy per doubling of
     * what is printed, paid for making every JSON allocation injectable. */
    pp_set_allocator(mem_alloc, mem_free);
}

/* After a burst of connections opened or closed (a restart, a mass
 * reconnect) the heap is left with free holes between the connections that
 * stayed; glibc keeps them resident. malloc_trim gives their whole pages back
 * (~0.3 KB per idle connection measured at 10,000). Only once a burst has
 * settled: never per connection, nor every second during steady churn. */
#define TRIM_BURST 1000 /* connection events since the last trim */
#define TRIM_QUIET 100  /* at most this many in the last tick: settled */

int mem_trim_tick(uint64_t events)
{
    static uint64_t at_trim, at_tick;
    uint64_t recent = events - at_tick;
    at_tick = events;
    if (events - at_trim < TRIM_BURST || recent > TRIM_QUIET) return 0;
    at_trim = events;
#ifdef __GLIBC__
    malloc_trim(0);
    return 1;
#else
    return 0;
#endif
}
