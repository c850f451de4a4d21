/*
 * stats.h - the gateway's counters and histograms. Every layer counts here
 * (the struct lives in struct app); ops/metrics.c renders them for /metrics.
 *
 * Everything is updated on the loop thread, so plain integers suffice.
 * Histograms have fixed log-spaced buckets in seconds.
 */
#ifndef PARLEY_STATS_H
#define PARLEY_STATS_H

#include <stddef.h>
#include <stdint.h>

#define STATS_BUCKETS 14 /* upper bounds: stats_bounds(), then +Inf */

struct hist {
    uint64_t bucket[STATS_BUCKETS + 1]; /* counts per bucket (not cumulative), last = +Inf */
    uint64_t count;                     /* observations */
    double sum;                         /* their sum, in the histogram's unit */
};

#define STATS_RETENTION_KINDS 11 /* rights.h: enum rights_kind */

enum stats_op { SO_AUTH, SO_JOIN, SO_SEND, SO_HISTORY, SO_RECEIPT, SO__COUNT };

struct stats {
    uint64_t conns_opened;              /* WebSocket connections established */
    uint64_t conns_closed;              /* ... and closed, any reason */
    uint64_t slow_consumers;            /* closed for passing the out-queue limit */
    uint64_t auth_timeouts;             /* closed for not authenticating in time */
    uint64_t auth_busy;                 /* auths answered busy (admission, authq.c) */
    uint64_t auth_lookups;              /* token look-up queries sent (each for many auths) */
    uint64_t refused_ip_cap;            /* connections refused by the per-IP cap */
    uint64_t refused_capacity;          /* connections refused by the connection budget */
    uint64_t refused_upgrade;           /* malformed WebSocket upgrades refused */
    uint64_t refused_origin;            /* handshakes refused by the Origin allow-list */
    uint64_t msgs_received;             /* send commands accepted for writing */
    uint64_t msgs_persisted;            /* rows committed (not counting duplicates) */
    uint64_t msgs_duplicate;            /* sends answered with an existing row */
    uint64_t frames_delivered;          /* message pushes queued to connections */
    uint64_t writes;                    /* lws_write calls on WebSocket connections */
    uint64_t writes_direct;             /* of those, written from the check phase (conn.c) */
    uint64_t writes_delayed;            /* writes held back to pack more (write_delay_ms) */
    uint64_t batches;                   /* write transactions committed */
    uint64_t batch_retries;             /* batches retried after a conflict */
    uint64_t batch_failures;            /* batches answered unavailable/internal */
    uint64_t bus_published;             /* PUBLISH sent */
    uint64_t bus_publish_failed;        /* PUBLISH not sent (bus down or full) */
    uint64_t bus_received;              /* bus messages received */
    uint64_t gap_fetches;               /* room catch-ups from PostgreSQL */
    uint64_t replays;                   /* joins that replayed from storage */
    uint64_t replayed;                  /* messages replayed to joining connections */
    uint64_t paced_catchups;            /* live members switched to paced catch-up */
    uint64_t pg_read_replica;           /* reads answered by the replica (dbread.h) */
    uint64_t pg_read_fallback[3];       /* ... sent to the primary: behind, error, down */
    uint64_t receipts_received;         /* read/seen/vote commands accepted for writing */
    uint64_t receipts_persisted;        /* ... committed */
    uint64_t receipt_batches;           /* their write transactions */
    uint64_t events_emitted;            /* coalesced read and votes events queued */
    struct hist receipt_commit_seconds; /* receipt transaction latency */
    uint64_t ephemeral_dropped;         /* typing/presence frames shed under pressure */
    uint64_t typing_sent;               /* typing events published */
    uint64_t http_requests;             /* HTTP requests routed */
    uint64_t logins_ok;                 /* password logins that succeeded */
    uint64_t logins_failed;             /* ... that failed (wrong email or password) */
    uint64_t logins_limited;            /* sign-in attempts refused by the rate limit */
    uint64_t visits_logged;             /* visit-log rows written for WebSocket sessions */
    uint64_t gl_checks;                 /* sends and edits evaluated against guidelines */
    uint64_t gl_hits;                   /* guideline hits recorded */
    uint64_t gl_compiles;               /* rule sets compiled (rooms share identical sets) */
    uint64_t pace_counted;              /* sends counted in their sender's pace (Redis) */
    uint64_t pace_slowed;               /* sends refused there by a room's slow mode */
    uint64_t pace_unavailable;          /* sends refused because Redis did not answer */
    uint64_t retention_runs;            /* retention job runs that completed */
    uint64_t retention_removed[STATS_RETENTION_KINDS]; /* rows removed by them, by kind */
    struct hist batch_size;                            /* messages per write transaction */
    struct hist commit_seconds;                        /* write transaction latency */
    struct hist op_seconds[SO__COUNT];                 /* command latency, receipt to reply */
};

/* Adds one observation (in the histogram's unit: seconds, or a count). */
void stats_observe(struct hist *h, double v, int is_count);

/* The STATS_BUCKETS upper bounds of a histogram's buckets (seconds, or counts
 * when is_count), shared by stats_observe and the renderer. */
const double *stats_bounds(int is_count);

#endif
