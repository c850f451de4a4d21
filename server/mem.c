#include "mem.h"

#include <stdlib.h>
#include <string.h>

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
