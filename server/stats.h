/*
 * stats.h - plain counters of the gateway, read by /metrics (a later issue
 * turns these into the Prometheus text format).
 */
#ifndef PARLEY_STATS_H
#define PARLEY_STATS_H

#include <stdint.h>

struct stats {
    uint64_t conns_opened;       /* WebSocket connections established */
    uint64_t conns_closed;       /* ... and closed */
    uint64_t slow_consumers;     /* closed for passing the out-queue limit */
    uint64_t msgs_received;      /* send commands accepted for writing */
    uint64_t msgs_persisted;     /* rows committed (not counting duplicates) */
    uint64_t msgs_duplicate;     /* sends answered with an existing row */
    uint64_t frames_delivered;   /* message pushes queued to connections */
    uint64_t writes;             /* lws_write calls on WebSocket connections */
    uint64_t batches;            /* write transactions committed */
    uint64_t batch_retries;      /* batches retried after a conflict */
    uint64_t bus_published;      /* PUBLISH sent */
    uint64_t bus_publish_failed; /* PUBLISH not sent (bus down or full) */
    uint64_t gap_fetches;        /* room catch-ups from PostgreSQL */
    uint64_t replayed;           /* messages replayed to joining connections */
};

#endif
