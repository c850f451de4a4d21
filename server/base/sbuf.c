#include "sbuf.h"

#include "mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Room for n more bytes and the NUL; false (and bad set) when out of memory. */
static bool reserve(struct sbuf *o, size_t n)
{
    if (o->bad) return false;
    if (o->n + n + 1 > o->cap) {
        size_t cap = (o->n + n + 1) * 2 + 256;
        char *b = mem_realloc(o->b, cap);
        if (!b) {
            o->bad = true;
            return false;
        }
        o->b = b;
        o->cap = cap;
    }
    return true;
}

void sbuf_put(struct sbuf *o, const char *s, size_t n)
{
    if (!reserve(o, n)) return;
    if (n) memcpy(o->b + o->n, s, n);
    o->n += n;
    o->b[o->n] = 0;
}

void sbuf_puts(struct sbuf *o, const char *s)
{
    sbuf_put(o, s, strlen(s));
}

void sbuf_printf(struct sbuf *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        o->bad = true;
        return;
    }
    if (!reserve(o, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(o->b + o->n, o->cap - o->n, fmt, ap);
    va_end(ap);
    o->n += (size_t)n;
}
