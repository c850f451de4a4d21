/*
 * outq.h - a connection's bounded out-queue of shared frames.
 *
 * A ring of frame references that grows by doubling up to its frame limit
 * (an idle connection holds no ring at all). Bounded twice, in frames and in
 * bytes: a push that would pass either limit is refused and the caller
 * closes the connection as a slow consumer (Redis's client-output-buffer-limit).
 *
 * Ownership: outq_push takes its own reference; outq_pop and outq_clear drop
 * the queue's references. The ring memory is owned by the queue.
 */
#ifndef PARLEY_OUTQ_H
#define PARLEY_OUTQ_H

#include "frame.h"

#include <stddef.h>
#include <stdint.h>

struct outq {
    struct frame **ring; /* capacity cap, NULL until the first push */
    uint32_t cap;        /* ring slots, a power of two */
    uint32_t head;       /* index of the oldest frame */
    uint32_t count;      /* frames queued */
    size_t bytes;        /* payload bytes queued */
};

struct outq_limits {
    uint32_t max_frames; /* frames at most */
    size_t max_bytes;    /* payload bytes at most */
};

/* 0, -ENOBUFS when a limit would be passed (nothing queued), -ENOMEM. */
int outq_push(struct outq *q, struct frame *f, const struct outq_limits *lim);
/* The i-th oldest frame (i < count); the queue keeps its reference. */
struct frame *outq_peek(const struct outq *q, uint32_t i);
/* Drops the oldest frame. */
void outq_pop(struct outq *q);
/* Drops every frame and the ring. */
void outq_clear(struct outq *q);
/* An empty queue gives its ring back (the next push allocates the smallest
 * again): for connections idle a while, not after every write. */
void outq_release(struct outq *q);

#endif
