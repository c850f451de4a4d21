/*
 * lwsmem.h - libwebsockets' per-handshake header buffers kept off the malloc
 * heap, so a burst of connections does not leave the heap fragmented (see
 * lwsmem.c and BENCHMARKS.md, "Memory per idle connection").
 */
#ifndef PARLEY_LWSMEM_H
#define PARLEY_LWSMEM_H

#include <stddef.h>

/* Installs the allocator hook (process-wide, idempotent) before the first
 * lws context is created; header_data is the context's max_http_header_data.
 * 0, or -1 when the region is not used (lws then allocates with realloc as
 * usual). */
int lwsmem_install(size_t header_data);

#endif
