#include "cslot.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

/* One table entry per high byte: the classic byte-wise CRC. Built at first
 * use rather than spelt out, so the polynomial is the only constant. */
static uint16_t crc_tab[256];
static int crc_ready;

static void crc_init(void)
{
    for (int b = 0; b < 256; b++) {
        uint16_t c = (uint16_t)(b << 8);
        for (int i = 0; i < 8; i++)
            c = (uint16_t)(c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1);
        crc_tab[b] = c;
    }
    crc_ready = 1;
}

uint16_t cslot_crc16(const void *p, size_t n)
{
    const unsigned char *s = p;
    uint16_t c = 0;
    if (!crc_ready) crc_init();
    for (size_t i = 0; i < n; i++)
        c = (uint16_t)((c << 8) ^ crc_tab[((c >> 8) ^ s[i]) & 0xff]);
    return c;
}

int cslot_keyslot(const void *key, size_t n)
{
    const char *k = key;
    const char *open = memchr(k, '{', n);
    if (open) {
        size_t from = (size_t)(open - k) + 1;
        const char *close = memchr(k + from, '}', n - from);
        /* `{}` (nothing between) does not count: the whole key is hashed */
        if (close && close > k + from)
            return cslot_crc16(k + from, (size_t)(close - k - from)) & 16383;
    }
    return cslot_crc16(k, n) & 16383;
}

int cslot_map_find(const struct cslot_map *m, const char *host, int port)
{
    for (int i = 0; i < m->nnodes; i++)
        if (m->node[i].port == port && !strcmp(m->node[i].host, host)) return i;
    return -1;
}

/* The node an entry [host, port, id, ...] names, added when new. */
static int node_of(struct cslot_map *m, const redisReply *e, const char *fallback, int master)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 2) return -EINVAL;
    const redisReply *h = e->element[0], *p = e->element[1];
    if (h->type != REDIS_REPLY_STRING || p->type != REDIS_REPLY_INTEGER) return -EINVAL;
    if (p->integer < 1 || p->integer > 65535) return -EINVAL;
    const char *host = h->len ? h->str : fallback ? fallback : "";
    if (strlen(host) >= CSLOT_HOST_CAP || (h->len && h->len >= CSLOT_HOST_CAP)) return -ENOSPC;
    int i = cslot_map_find(m, host, (int)p->integer);
    if (i >= 0) return i;
    if (m->nnodes == CSLOT_MAX_NODES) return -ENOSPC;
    i = m->nnodes++;
    snprintf(m->node[i].host, sizeof m->node[i].host, "%s", host);
    m->node[i].port = (int)p->integer;
    m->node[i].master = master;
    return i;
}

/* The whole struct, unused node entries too: maps are compared with memcmp. */
static void map_clear(struct cslot_map *m)
{
    memset(m, 0, sizeof *m);
    memset(m->owner, 0xff, sizeof m->owner);
    m->nnodes = 0;
    m->uncovered = CSLOT_SLOTS;
}

int cslot_map_parse(struct cslot_map *m, const void *redis_reply, const char *fallback_host)
{
    const redisReply *r = redis_reply;
    map_clear(m);
    if (!r || r->type != REDIS_REPLY_ARRAY) return -EINVAL;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        int rc = -EINVAL;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3) goto fail;
        const redisReply *lo = e->element[0], *hi = e->element[1];
        if (lo->type != REDIS_REPLY_INTEGER || hi->type != REDIS_REPLY_INTEGER) goto fail;
        if (lo->integer < 0 || hi->integer >= CSLOT_SLOTS || lo->integer > hi->integer) goto fail;
        int master = node_of(m, e->element[2], fallback_host, -1);
        if (master < 0) {
            rc = master;
            goto fail;
        }
        for (size_t j = 3; j < e->elements; j++) {
            int rep = node_of(m, e->element[j], fallback_host, master);
            if (rep < 0) {
                rc = rep;
                goto fail;
            }
        }
        for (long long s = lo->integer; s <= hi->integer; s++) {
            if (m->owner[s] == CSLOT_NONE) m->uncovered--;
            m->owner[s] = (uint16_t)master;
        }
        continue;
    fail:
        map_clear(m);
        return rc;
    }
    return 0;
}
