#include "stamp.h"

size_t stamp_put(char *out, uint64_t ns)
{
    char d[20];
    size_t n = 0;
    do {
        d[n++] = (char)('a' + ns % 10);
        ns /= 10;
    } while (ns);
    out[0] = 't';
    for (size_t i = 0; i < n; i++)
        out[1 + i] = d[n - 1 - i];
    out[1 + n] = 0;
    return 1 + n;
}

uint64_t stamp_get(const char *s)
{
    if (*s++ != 't') return 0;
    uint64_t v = 0;
    size_t n = 0;
    for (; *s >= 'a' && *s <= 'j' && n < 20; s++, n++) {
        uint64_t d = (uint64_t)(*s - 'a');
        if (v > (UINT64_MAX - d) / 10) return 0; /* not a stamp: overflows */
        v = v * 10 + d;
    }
    return n ? v : 0;
}
