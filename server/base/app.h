/*
 * app.h - struct app, the root owner: the loop, the lws context, the bus, the
 * database, the room registry, the write batcher, the connections and the
 * counters. One per process; everything runs on its loop thread.
 *
 * This header and base/app.c are the bottom layer: the struct and the clocks.
 * Building the app, its timers, signals and shutdown are the top layer's
 * (ops/lifecycle.h), which also gives the lower layers their hooks upward.
 */
#ifndef PARLEY_APP_H
#define PARLEY_APP_H

#include "config.h"
#include "parley_proto.h"
#include "stats.h"

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct lws_context;
struct db;
struct bus;
struct rooms;
struct store_writer;
struct receipts;
struct rulecache;
struct sendstage;
struct conn;
struct iptab;
struct dbread_floors;
struct rxpool;
struct web;
struct gateway_hooks;
struct http_api_hooks;

struct app {
    struct config cfg;                /* immutable after start */
    struct pp_limits plim;            /* decoder limits from cfg */
    uv_loop_t *loop;                  /* the one loop */
    struct lws_context *lws;          /* WebSocket/HTTP server on the loop */
    struct db *db;                    /* PostgreSQL */
    struct db *dbr;                   /* the read replica (--pg-read), or NULL */
    struct dbread_floors *dbr_floors; /* seqs this gateway committed, per room (dbread.c) */
    struct bus *bus;                  /* Redis pub/sub */
    struct rooms *rooms;              /* local room registry */
    struct store_writer *writer;      /* the write batcher of messages and events (store.c) */
    struct receipts *receipts;        /* read state and votes: their batcher and events */
    struct rulecache *rules;          /* compiled guidelines per room */
    struct sendstage *send;           /* the send stage's buffered guideline hits */
    struct iptab *ips;                /* TCP connections per client IP (ws.c) */
    struct rxpool *rxpool;            /* spare reassembly buffers (ws.c) */
    struct web *web;                  /* the web client's files, in memory (web.c) */
    struct authq *authq;              /* sign-ins: batched look-ups, admission (authq.c) */
    uint32_t tcp_conns;               /* TCP connections admitted and still open */
    uint32_t max_conns;               /* their cap (--max-conns, or from RLIMIT_NOFILE) */
    struct conn *conns;               /* every established WebSocket connection */
    uint32_t nconns;                  /* their number */
    uint64_t next_conn_id;            /* for logs */
    uv_timer_t sweep;                 /* room gaps, auth deadlines, shutdown progress */
    uint64_t sweeps;                  /* sweep count: auth deadlines every 10th */
    uint64_t stall_checked_at;        /* uv_now of the last out-queue stall check */
    uv_signal_t sig_term;             /* SIGTERM: drain and exit */
    uv_signal_t sig_int;              /* SIGINT: same */
    uv_signal_t sig_usr1;             /* SIGUSR1: one log level more verbose */
    uv_signal_t sig_usr2;             /* SIGUSR2: one log level quieter */
    bool draining;                    /* shutting down: refuse new connections */
    uint64_t drain_started;           /* uv_now when the drain's current phase began */
    bool closing_clients;             /* drain phase 2: 1001 sent to everyone */
    bool settling;                    /* drain phase 3: clients gone, Redis answering the last */
    bool stopped;                     /* everything closed; the loop is winding down */
    int schema_version;               /* the migrations this build expects */
    bool schema_ok;                   /* the database was at schema_version when last checked */
    char *scratch;                    /* encode/pack buffer, FRAME_PRE + scratch_cap */
    size_t scratch_cap;               /* usable bytes after the headroom */
    struct stats stats;               /* counters */
    bool has_operator;                /* an operator token is configured (outbox API) */
    unsigned char operator_hash[32];  /* its BLAKE2b hash */
    bool has_metrics;                 /* a metrics token is configured (/metrics) */
    unsigned char metrics_hash[32];   /* its BLAKE2b hash */
    uv_timer_t jobs;                  /* periodic jobs: IP anonymisation, session revalidation */
    uv_timer_t flush;                 /* write coalescing: arms the connections below (conn.c) */
    struct conn *flush_head;          /* connections whose next write waits for it */
    uv_check_t wcheck;                /* after each turn's I/O: writes the dirty list (conn.c) */
    uv_idle_t widle;         /* active while that list is not empty: the poll won't block */
    bool wready;             /* the two handles above are initialised and not closed */
    struct conn *dirty_head; /* connections with output to write this turn, oldest first */
    struct conn *dirty_tail; /* (each at most once, so bounded by the connections) */
    uint32_t ndirty;         /* their number */
    uint64_t job_runs;       /* ticks of the jobs timer */
    bool purge_busy;         /* a purge run is in flight (wsdelete.c) */
    bool purge_more;         /* the last purge run left work: run again next tick */
    uint64_t access_epoch;   /* room access events seen (access.h): joins re-check */
    /* The ways up that the wiring (ops/lifecycle.c) gives the lower layers,
     * kept by each from its start to its end: the gateway's (ws.h, ws_start
     * to ws_finish) and the API's (http_api.h, http_api_init to _free). */
    struct gateway_hooks *gw_hooks;
    struct http_api_hooks *api_hooks;
};

uint64_t app_now_ms(const struct app *a); /* the loop's clock */
int64_t app_wall_ms(void);                /* Unix time in ms */

#endif
