/*
 * cslot.h - Redis Cluster's key space, pure: the CRC16 (XMODEM) of a key,
 * its slot under the `{hash tag}` rule, and the slot map (slot -> master,
 * and each master's replicas) read from a CLUSTER SLOTS reply.
 *
 * No maintained C cluster client is packaged for Debian 12, so the bus
 * routes by itself; this is the part that must agree with the server bit
 * for bit (tests/unit/test_cslot.c checks it against CLUSTER KEYSLOT).
 *
 * Ownership: nothing here allocates. A map is a plain struct the caller
 * owns (about 40 KB: allocate it, do not put it on a small stack); parsing
 * into it overwrites it whole, and a failed parse leaves it empty.
 */
#ifndef PARLEY_CSLOT_H
#define PARLEY_CSLOT_H

#include <stddef.h>
#include <stdint.h>

#define CSLOT_SLOTS 16384
#define CSLOT_MAX_NODES 64 /* masters and replicas together */
#define CSLOT_HOST_CAP 64  /* an address's text and its NUL */
#define CSLOT_NONE 0xffff  /* a slot nobody serves (map incomplete) */

struct cslot_node {
    char host[CSLOT_HOST_CAP]; /* as the cluster announces it */
    int port;                  /* client port */
    int master;                /* index of its master, or -1 for a master */
};

struct cslot_map {
    uint16_t owner[CSLOT_SLOTS];             /* slot -> master's index, or CSLOT_NONE */
    struct cslot_node node[CSLOT_MAX_NODES]; /* masters first seen first */
    int nnodes;                              /* used entries of node */
    int uncovered;                           /* slots with owner CSLOT_NONE */
};

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0), as Redis Cluster uses. */
uint16_t cslot_crc16(const void *p, size_t n);
/* The slot of a key or channel: the CRC of what is between the first `{`
 * and the next `}` when that is non-empty, else of the whole key; mod 16384. */
int cslot_keyslot(const void *key, size_t n);

/* Fills m from a CLUSTER SLOTS reply (a hiredis redisReply *): 0, or
 * -EINVAL (not a CLUSTER SLOTS reply: an error, a wrong shape, a slot out
 * of range, a port out of range), -ENOSPC (more than CSLOT_MAX_NODES
 * nodes or a host too long). An empty host in the reply (a node that does
 * not know its own address) becomes fallback_host, the address we asked. */
int cslot_map_parse(struct cslot_map *m, const void *redis_reply, const char *fallback_host);
/* Index of the node at host:port in m, or -1. */
int cslot_map_find(const struct cslot_map *m, const char *host, int port);

#endif
