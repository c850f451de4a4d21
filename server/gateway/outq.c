#include "outq.h"

#include "mem.h"

#include <errno.h>
#include <string.h>

#define OUTQ_MIN_CAP 4u

static int grow(struct outq *q, uint32_t max_frames)
{
    uint32_t ncap = q->cap ? q->cap * 2 : OUTQ_MIN_CAP;
    if (ncap < q->cap) return -ENOMEM;
    (void)max_frames;
    struct frame **n = mem_alloc(sizeof *n * ncap);
    if (!n) return -ENOMEM;
    /* Unwrap the ring into the new array so head becomes 0. */
    for (uint32_t i = 0; i < q->count; i++)
        n[i] = q->ring[(q->head + i) & (q->cap - 1)];
    mem_free(q->ring);
    q->ring = n;
    q->cap = ncap;
    q->head = 0;
    return 0;
}

int outq_push(struct outq *q, struct frame *f, const struct outq_limits *lim)
{
    if (q->count + 1 > lim->max_frames || q->bytes + f->len > lim->max_bytes) return -ENOBUFS;
    if (q->count == q->cap) {
        int rc = grow(q, lim->max_frames);
        if (rc) return rc;
    }
    q->ring[(q->head + q->count) & (q->cap - 1)] = frame_ref(f);
    q->count++;
    q->bytes += f->len;
    return 0;
}

struct frame *outq_peek(const struct outq *q, uint32_t i)
{
    return i < q->count ? q->ring[(q->head + i) & (q->cap - 1)] : NULL;
}

void outq_pop(struct outq *q)
{
    if (!q->count) return;
    struct frame *f = q->ring[q->head];
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
    q->bytes -= f->len;
    frame_unref(f);
    if (!q->count && q->cap > OUTQ_MIN_CAP) {
        /* An empty queue gives a grown ring back (a burst should not pin
         * memory on an idle connection), but keeps the smallest one so a
         * steady trickle costs no malloc per message. */
        mem_free(q->ring);
        q->ring = NULL;
        q->cap = 0;
        q->head = 0;
    }
}

void outq_release(struct outq *q)
{
    if (q->count) return;
    mem_free(q->ring);
    q->ring = NULL;
    q->cap = 0;
    q->head = 0;
}

void outq_clear(struct outq *q)
{
    while (q->count)
        outq_pop(q);
    mem_free(q->ring);
    memset(q, 0, sizeof *q);
}
