/*
 * mem.h - the one allocation wrapper (as SQLite does), so tests can make
 * allocation fail at a chosen point. Every allocation of the server goes
 * through these; libraries keep their own allocators.
 */
#ifndef PARLEY_MEM_H
#define PARLEY_MEM_H

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
 * (opened, authenticated, joined, closed): returns the heap's free pages to
 * the system once a burst of them has settled. 1 when it trimmed. */
int mem_trim_tick(uint64_t events);

/* Tests: fail the n-th allocation from now (0 disables). */
void mem_fail_after(long n);

#endif
