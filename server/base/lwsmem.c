#include "lwsmem.h"

#include <libwebsockets.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

/*
 * Why: lws 4.1 attaches an "allocated header" (a ~1 KB struct plus
 * max_http_header_data bytes) to every connection as soon as it is accepted
 * and frees it at the WebSocket upgrade. After a burst of connections (a
 * gateway restart, a mass reconnect) thousands of these 4 KB buffers were
 * live at once, interleaved on the malloc heap with the connections' long-
 * lived allocations; once freed they leave holes glibc can neither reuse
 * (nothing that size is allocated afterwards) nor return (malloc_trim
 * releases only whole free pages). Measured at 10,000 connections (with
 * ws.c's 512-byte receive buffer): the heap stayed ~30 MB larger than what
 * was in use, ~3 KB per idle connection.
 *
 * How: the header data buffers get one page each from a region of their
 * own; a freed page is given back to the kernel at once (MADV_DONTNEED), so
 * the burst leaves nothing resident. Every other lws allocation, and any
 * header buffer the region cannot take (full, or a size that is not one
 * page), goes to realloc as before. The region is reserved once, never
 * unmapped (lws may free into it until its context is gone).
 */

#define SLAB_PAGE 4096u     /* one header buffer */
#define SLAB_MAX 65536u     /* pages reserved at most (256 MB of address space) */
#define AH_REASON "ah data" /* lws 4.1's tag for the header buffer (parsers.c) */

static struct {
    unsigned char *base; /* the region, or NULL: everything goes to realloc */
    uint32_t cap;        /* pages in the region */
    uint32_t top;        /* pages handed out at least once */
    uint32_t nfree;      /* entries in freel */
    uint32_t *freel;     /* indexes of pages given back */
    pthread_mutex_t mu;  /* lws is single-threaded here; cheap insurance */
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int in_region(const void *p)
{
    const unsigned char *c = p;
    return S.base && c >= S.base && c < S.base + (size_t)S.cap * SLAB_PAGE;
}

static void *slab_get(void)
{
    void *p = NULL;
    pthread_mutex_lock(&S.mu);
    if (S.nfree)
        p = S.base + (size_t)S.freel[--S.nfree] * SLAB_PAGE;
    else if (S.top < S.cap)
        p = S.base + (size_t)S.top++ * SLAB_PAGE;
    pthread_mutex_unlock(&S.mu);
    return p; /* zero-filled or as left; lws initialises what it reads */
}

static void slab_put(void *p)
{
    /* Drop the page now: the next use faults in a zero page. */
    madvise(p, SLAB_PAGE, MADV_DONTNEED);
    pthread_mutex_lock(&S.mu);
    S.freel[S.nfree++] = (uint32_t)(((unsigned char *)p - S.base) / SLAB_PAGE);
    pthread_mutex_unlock(&S.mu);
}

/* lws_set_allocator's contract: realloc semantics, size 0 frees. */
static void *lws_alloc_cb(void *ptr, size_t size, const char *reason)
{
    if (ptr && in_region(ptr)) {
        if (!size) {
            slab_put(ptr);
            return NULL;
        }
        if (size <= SLAB_PAGE) return ptr;
        void *n = malloc(size); /* lws 4.1 never grows it; handled anyway */
        if (!n) return NULL;
        memcpy(n, ptr, SLAB_PAGE);
        slab_put(ptr);
        return n;
    }
    if (!ptr && size == SLAB_PAGE && reason && !strcmp(reason, AH_REASON)) {
        void *p = slab_get();
        if (p) return p;
    }
    if (size) return realloc(ptr, size);
    free(ptr);
    return NULL;
}

int lwsmem_install(size_t header_data)
{
    if (S.base) return 0; /* already installed (process-wide) */
    /* One buffer per page, or madvise could not drop it alone. */
    if (header_data != SLAB_PAGE || sysconf(_SC_PAGESIZE) != (long)SLAB_PAGE) return -1;
    /* Enough pages for every descriptor this process may hold (lws sizes its
     * header pool the same way), within SLAB_MAX. */
    struct rlimit rl;
    uint64_t want = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (uint64_t)rl.rlim_cur : 1024;
    if (want > SLAB_MAX) want = SLAB_MAX;
    if (want < 64) want = 64;
    uint32_t *fl = malloc((size_t)want * sizeof *fl);
    if (!fl) return -1;
    void *b = mmap(NULL, (size_t)want * SLAB_PAGE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (b == MAP_FAILED) {
        free(fl);
        return -1;
    }
    S.base = b;
    S.cap = (uint32_t)want;
    S.freel = fl;
    lws_set_allocator(lws_alloc_cb);
    return 0;
}
