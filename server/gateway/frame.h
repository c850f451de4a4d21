/*
 * frame.h - reference-counted, immutable WebSocket payloads with headroom.
 *
 * A push is encoded once and wrapped once; every recipient's out-queue holds
 * a reference to the same frame. FRAME_PRE bytes before the payload are free
 * for libwebsockets to write the WebSocket header into (its LWS_PRE), which
 * it does anew on each write, so sharing is safe on our single thread.
 *
 * Ownership: frame_new returns one reference; each holder drops its own with
 * frame_unref; the last unref frees.
 */
#ifndef PARLEY_FRAME_H
#define PARLEY_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* Must be >= LWS_PRE; ws.c checks that at compile time. Kept here so this
 * module and its tests do not depend on libwebsockets. */
#define FRAME_PRE 16

struct frame {
    uint32_t refs;       /* holders; the frame is freed when it drops to 0 */
    uint32_t len;        /* payload bytes */
    unsigned char buf[]; /* FRAME_PRE headroom, then len payload bytes */
};

/* Copies len bytes of payload. NULL on allocation failure or len > 4 GiB. */
struct frame *frame_new(const void *payload, size_t len);
/* A frame whose payload the caller fills in (len bytes). */
struct frame *frame_alloc(size_t len);

static inline unsigned char *frame_data(struct frame *f)
{
    return f->buf + FRAME_PRE;
}

static inline struct frame *frame_ref(struct frame *f)
{
    f->refs++;
    return f;
}

void frame_unref(struct frame *f);

#endif
