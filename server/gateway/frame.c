#include "frame.h"

#include "mem.h"

#include <string.h>

struct frame *frame_alloc(size_t len)
{
    if (len > UINT32_MAX - FRAME_PRE - 1) return NULL;
    struct frame *f = mem_alloc(sizeof *f + FRAME_PRE + len + 1);
    if (!f) return NULL;
    f->refs = 1;
    f->len = (uint32_t)len;
    f->buf[FRAME_PRE + len] = '\0'; /* convenient for parsers and logs */
    return f;
}

struct frame *frame_new(const void *payload, size_t len)
{
    struct frame *f = frame_alloc(len);
    if (f && len) memcpy(frame_data(f), payload, len);
    return f;
}

void frame_unref(struct frame *f)
{
    if (f && --f->refs == 0) mem_free(f);
}
