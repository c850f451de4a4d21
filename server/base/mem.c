#include "mem.h"

#include "parley_proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#ifdef __SANITIZE_ADDRESS__
/* libasan's (sanitizer/allocator_interface.h, which gcc does not ship) */
size_t __sanitizer_get_current_allocated_bytes(void);
size_t __sanitizer_get_free_bytes(void);
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

/* Heap pages the process keeps resident without using them: after a burst
 * of connections opened or closed (a restart, a mass reconnect), and after
 * transient work between long-lived allocations (a wave of presence reads
 * while connections still arrive), free holes stay resident; glibc gives
 * back only the top of the heap by itself. malloc_trim gives back every
 * whole free page. Measured at 100,000 idle connections over 7 gateways:
 * 0.53 KB a connection kept free at the end of a hold where nothing moved.
 *
 * When: on a quiet tick (a trim walks the heap, never in a burst), at most
 * every TRIM_EVERY ticks, and only if the resident memory that is not live
 * heap grew by MEM_TRIM_GAIN since the last trim: a heap already given back is
 * not walked again and again. A gateway under steady churn (over about 25
 * reconnections a second, 4 events each) has no quiet tick and is never
 * trimmed: the churn itself reuses the holes. */
#define TRIM_QUIET 100 /* connection events in a tick: still settled */
#define TRIM_EVERY 10  /* ticks (seconds) between looks at the heap */

bool mem_trim_looks(const struct mem_trim *t, uint64_t events)
{
    return !t->looked || (events - t->events <= TRIM_QUIET && t->ticks + 1 >= TRIM_EVERY);
}

bool mem_trim_due(struct mem_trim *t, uint64_t events, size_t resident, size_t in_use)
{
    bool look = mem_trim_looks(t, events);
    uint64_t recent = events - t->events;
    t->events = events;
    size_t slack = resident > in_use ? resident - in_use : 0;
    if (!t->looked) { /* the first tick: what is not heap (code, libraries) */
        t->looked = true;
        t->floor = slack;
        return false;
    }
    if (recent > TRIM_QUIET) return false; /* a burst's ticks do not count */
    if (!look) {
        t->ticks++;
        return false;
    }
    t->ticks = 0;
    if (slack < t->floor) t->floor = slack; /* the least seen is what a trim leaves */
    return slack >= t->floor + MEM_TRIM_GAIN;
}

/* Resident bytes of this process, 0 if unknown. */
static size_t resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    unsigned long size = 0, res = 0;
    int n = fscanf(f, "%lu %lu", &size, &res);
    fclose(f);
    return n == 2 ? res * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

int mem_trim_tick(uint64_t events)
{
    static struct mem_trim t;
    size_t used = 0, kept, res = 0;
    if (mem_trim_looks(&t, events)) { /* walks the heap's free lists: not every tick */
        mem_heap(&used, &kept);
        res = resident_bytes();
    }
    if (!mem_trim_due(&t, events, res, used)) return 0;
#ifdef __GLIBC__
    malloc_trim(0);
    mem_heap(&used, &kept);
    res = resident_bytes();
    t.floor = res > used ? res - used : 0;
    return 1;
#else
    return 0;
#endif
}

void mem_heap(size_t *in_use, size_t *kept_free)
{
#if defined(__SANITIZE_ADDRESS__)
    /* ASan's allocator serves every malloc, glibc's heap stays empty */
    *in_use = __sanitizer_get_current_allocated_bytes();
    *kept_free = __sanitizer_get_free_bytes();
#elif defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 mi = mallinfo2();
    *in_use = mi.uordblks + mi.hblkhd; /* small chunks + mmapped big ones */
    *kept_free = mi.fordblks;
#else
    *in_use = *kept_free = 0;
#endif
}
