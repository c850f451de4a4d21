#include "sbuf.h"

#include "mem.h"

#include <string.h>

void sbuf_put(struct sbuf *o, const char *s, size_t n)
{
    if (o->bad) return;
    if (o->n + n + 1 > o->cap) {
        size_t cap = (o->n + n + 1) * 2 + 256;
        char *b = mem_realloc(o->b, cap);
        if (!b) {
            o->bad = true;
            return;
        }
        o->b = b;
        o->cap = cap;
    }
    if (n) memcpy(o->b + o->n, s, n);
    o->n += n;
    o->b[o->n] = 0;
}

void sbuf_puts(struct sbuf *o, const char *s)
{
    sbuf_put(o, s, strlen(s));
}
