#include "zipw.h"

#include <string.h>
#include <time.h>
#include <zlib.h>

/* General purpose flags: 3 (sizes in a data descriptor after the data),
 * 11 (names are UTF-8). */
#define FLAGS 0x0808

static void put(struct zipw *z, struct sbuf *o, const void *p, size_t n)
{
    if (z->off + n > UINT32_MAX) z->bad = true;
    if (z->bad) return;
    sbuf_put(o, p, n);
    z->off += n;
}

static void u16(struct zipw *z, struct sbuf *o, uint16_t v)
{
    unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    put(z, o, b, 2);
}

static void u32(struct zipw *z, struct sbuf *o, uint32_t v)
{
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(z, o, b, 4);
}

void zipw_init(struct zipw *z, int64_t unix_s)
{
    memset(z, 0, sizeof *z);
    time_t t = (time_t)unix_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    if (tm.tm_year < 80) return; /* before 1980: DOS time 0 */
    z->dos_time = (uint16_t)((tm.tm_hour << 11) | (tm.tm_min << 5) | (tm.tm_sec / 2));
    z->dos_date = (uint16_t)(((tm.tm_year - 80) << 9) | ((tm.tm_mon + 1) << 5) | tm.tm_mday);
}

void zipw_begin(struct zipw *z, struct sbuf *o, const char *name)
{
    size_t len = strlen(name);
    if (z->open || z->n == ZIPW_MAX_FILES || len >= ZIPW_NAME) z->bad = true;
    if (z->bad) return;
    memcpy(z->f[z->n].name, name, len + 1);
    z->f[z->n].off = (uint32_t)z->off;
    z->f[z->n].crc = (uint32_t)crc32(0L, Z_NULL, 0);
    z->f[z->n].size = 0;
    z->n++;
    z->open = true;
    u32(z, o, 0x04034b50);
    u16(z, o, 20); /* version needed: 2.0 */
    u16(z, o, FLAGS);
    u16(z, o, 0); /* stored */
    u16(z, o, z->dos_time);
    u16(z, o, z->dos_date);
    u32(z, o, 0); /* crc and sizes: in the data descriptor */
    u32(z, o, 0);
    u32(z, o, 0);
    u16(z, o, (uint16_t)len);
    u16(z, o, 0); /* no extra field */
    put(z, o, name, len);
}

void zipw_data(struct zipw *z, struct sbuf *o, const char *p, size_t n)
{
    if (!z->open) z->bad = true;
    if (z->bad || n == 0) return;
    size_t before = z->off;
    put(z, o, p, n);
    if (z->bad) return;
    z->f[z->n - 1].crc = (uint32_t)crc32(z->f[z->n - 1].crc, (const Bytef *)p, (uInt)n);
    z->f[z->n - 1].size += (uint32_t)(z->off - before);
}

void zipw_end(struct zipw *z, struct sbuf *o)
{
    if (!z->open) z->bad = true;
    if (z->bad) return;
    z->open = false;
    u32(z, o, 0x08074b50);
    u32(z, o, z->f[z->n - 1].crc);
    u32(z, o, z->f[z->n - 1].size); /* compressed: stored, the same */
    u32(z, o, z->f[z->n - 1].size);
}

void zipw_finish(struct zipw *z, struct sbuf *o)
{
    if (z->open) z->bad = true;
    if (z->bad) return;
    uint64_t start = z->off;
    for (int i = 0; i < z->n; i++) {
        size_t len = strlen(z->f[i].name);
        u32(z, o, 0x02014b50);
        u16(z, o, 20); /* made by: 2.0 */
        u16(z, o, 20);
        u16(z, o, FLAGS);
        u16(z, o, 0);
        u16(z, o, z->dos_time);
        u16(z, o, z->dos_date);
        u32(z, o, z->f[i].crc);
        u32(z, o, z->f[i].size);
        u32(z, o, z->f[i].size);
        u16(z, o, (uint16_t)len);
        u16(z, o, 0); /* extra */
        u16(z, o, 0); /* comment */
        u16(z, o, 0); /* disk */
        u16(z, o, 0); /* internal attributes */
        u32(z, o, 0); /* external attributes */
        u32(z, o, z->f[i].off);
        put(z, o, z->f[i].name, len);
    }
    uint64_t size = z->off - start;
    u32(z, o, 0x06054b50);
    u16(z, o, 0);
    u16(z, o, 0);
    u16(z, o, (uint16_t)z->n);
    u16(z, o, (uint16_t)z->n);
    u32(z, o, (uint32_t)size);
    u32(z, o, (uint32_t)start);
    u16(z, o, 0); /* no comment */
}
