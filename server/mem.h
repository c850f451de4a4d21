/*
 * mem.h - the one allocation wrapper (as SQLite does), so tests can make
 * allocation fail at a chosen point. Every allocation of the server goes
 * through these; libraries keep their own allocators.
 */
#ifndef PARLEY_MEM_H
#define PARLEY_MEM_H

#include <stddef.h>

void *mem_alloc(size_t n);             /* NULL on failure (or injected failure) */
void *mem_calloc(size_t n, size_t sz); /* zeroed; NULL on overflow or failure */
void *mem_realloc(void *p, size_t n);  /* like realloc; p untouched on failure */
void mem_free(void *p);
char *mem_strndup(const char *s, size_t n); /* NUL-terminated copy */

/* Tests: fail the n-th allocation from now (0 disables). */
void mem_fail_after(long n);

#endif
