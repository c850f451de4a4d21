/*
 * sbuf.h - a growing, NUL-terminated byte buffer for text put together
 * piece by piece (a MIME message, a rendered template, /metrics).
 *
 * Ownership: the caller owns the struct (zero it to start) and b, which it
 * frees with mem_free. An allocation failure sets bad and makes every later
 * put a no-op, so callers check once at the end.
 */
#ifndef PARLEY_SBUF_H
#define PARLEY_SBUF_H

#include <stdbool.h>
#include <stddef.h>

struct sbuf {
    char *b;    /* bytes, NUL-terminated once anything was put */
    size_t n;   /* used */
    size_t cap; /* allocated */
    bool bad;   /* an allocation failed */
};

/* Appends n bytes of s. */
void sbuf_put(struct sbuf *o, const char *s, size_t n);
/* Appends the string s. */
void sbuf_puts(struct sbuf *o, const char *s);
/* Appends printf-formatted text. */
void sbuf_printf(struct sbuf *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
