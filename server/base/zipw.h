/*
 * zipw.h - a ZIP archive written front to back, for a streamed answer
 * whose entries' sizes are not known when they start: each entry is
 * stored (no compression: the point is an archive any system opens, and
 * the gateway's CPU), its CRC and size follow its data in a data
 * descriptor, and the central directory comes last. Plain ZIP (no ZIP64):
 * an archive or entry of 4 GiB or more is refused (zipw.bad).
 *
 * Ownership: the caller owns the struct (zero it to start); bytes go to
 * the caller's sbuf, to be sent and emptied between calls.
 */
#ifndef PARLEY_ZIPW_H
#define PARLEY_ZIPW_H

#include "sbuf.h"

#include <stdbool.h>
#include <stdint.h>

#define ZIPW_MAX_FILES 24
#define ZIPW_NAME 32

struct zipw {
    struct {
        char name[ZIPW_NAME];
        uint32_t crc, size, off;
    } f[ZIPW_MAX_FILES];         /* the entries so far, for the central directory */
    int n;                       /* entries begun */
    bool open;                   /* entry n-1 takes data */
    uint64_t off;                /* bytes written so far */
    uint16_t dos_time, dos_date; /* the entries' time (set by zipw_begin) */
    bool bad;                    /* too many entries, too large, or misuse */
};

/* Sets the entries' modification time (Unix seconds, UTC). */
void zipw_init(struct zipw *z, int64_t unix_s);
/* Starts entry name (at most ZIPW_NAME - 1 bytes, UTF-8). */
void zipw_begin(struct zipw *z, struct sbuf *o, const char *name);
/* Appends n bytes to the open entry. */
void zipw_data(struct zipw *z, struct sbuf *o, const char *p, size_t n);
/* Ends the open entry (its data descriptor). */
void zipw_end(struct zipw *z, struct sbuf *o);
/* Writes the central directory and its end record; the archive is whole. */
void zipw_finish(struct zipw *z, struct sbuf *o);

#endif
