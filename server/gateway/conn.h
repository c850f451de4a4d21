/*
 * conn.h - one WebSocket connection: identity cached at auth, the rooms it
 * joined, its bounded out-queue, its reassembly buffer and its in-flight
 * asynchronous work.
 *
 * conn_send only queues and marks the connection dirty (for a connection
 * written to less than write_delay_ms ago, when that time is up: see
 * conn.c). Once per loop turn, right after the I/O callbacks, every dirty
 * connection's queue is packed and written with lws_write while the socket
 * takes it (Redis's beforeSleep / handleClientsWithPendingWrites); what it
 * does not take waits for WRITEABLE and conn_on_writeable, which is also
 * the only way out for the close frame. A
 * connection over its out-queue limit is closed asynchronously, like Redis
 * frees a client over client-output-buffer-limit.
 *
 * Ownership: the struct lives in libwebsockets' per-session memory (lws
 * allocates and frees it); conn_init/conn_destroy bracket its use. Work
 * that completes later (a query, a batched send) holds a struct creq linked
 * to the connection; conn_destroy unhooks every creq so completions for a
 * closed connection find creq->c == NULL and only free themselves. The
 * linked creqs are also the connection's count of unanswered work (nreqs):
 * creq_link and creq_unlink alone change it, so no path can forget one side.
 */
#ifndef PARLEY_CONN_H
#define PARLEY_CONN_H

#include "frame.h"
#include "outq.h"
#include "parley_proto.h"

#include <stdbool.h>
#include <stdint.h>

struct app;
struct lws;
struct sub;

/* A cancellable link from pending work back to its connection. */
struct creq {
    struct conn *c;           /* NULL once the connection is gone */
    struct creq *prev, *next; /* in c's list while c is set */
};

/* Pending work that may outlive both its connection and the object it
 * serves: cr unhooks on connection close, obj is set to NULL by the object's
 * owner when the object goes first. */
struct ticket {
    struct creq cr; /* link to the connection */
    void *obj;      /* the object served (a sub), or NULL */
    int64_t id;     /* command id to answer */
    uint64_t t0;    /* uv_hrtime when the command arrived, for latency */
};

/* One per connection for as long as it is open (lws's per-session data):
 * the small fields are packed beside token_id so that it takes a 432-byte
 * chunk (BENCHMARKS.md, memory per idle connection). */
struct conn {
    struct app *app;                 /* owner of everything */
    struct lws *wsi;                 /* the lws connection */
    uint64_t id;                     /* for logs */
    struct conn *prev, *next;        /* app's list of WebSocket connections */
    char ip[48];                     /* peer address, for the per-IP cap and logs */
    uint64_t opened_ms;              /* uv_now at ESTABLISHED: auth deadline base */
    bool ws;                         /* an established WebSocket (not HTTP) */
    bool authed;                     /* auth succeeded */
    bool auth_pending;               /* auth query in flight */
    uint8_t auth_restarts;           /* times a refusal restarted the auth deadline */
    bool closing;                    /* close requested; nothing more is queued */
    bool close_when_drained;         /* close once the out-queue is empty (shutdown) */
    bool rx_paused;                  /* reading stopped for backpressure */
    char person[PP_UUID_LEN + 1];    /* authenticated person */
    char workspace[PP_UUID_LEN + 1]; /* the workspace of this session */
    int prole;                       /* the same as enum role (perm.h) */
    struct outq q;                   /* frames waiting for WRITEABLE */
    unsigned char *rx;               /* reassembly of a fragmented message, or NULL */
    size_t rx_len;                   /* bytes in rx */
    size_t rx_cap;                   /* rx allocation */
    struct sub **subs;               /* rooms joined (or being joined) */
    uint32_t nsubs, subs_cap;        /* entries, allocation */
    struct creq reqs;                /* sentinel of in-flight work */
    uint32_t nreqs;                  /* creqs linked: work not yet answered (creq_link) */
    uint32_t pacing;                 /* sends waiting for their pace (send.c) */
    const char *close_reason;        /* reason for the close frame (a literal) */
    struct http_req *req;            /* HTTP: the request being served, or NULL */
    char token_id[PP_UUID_LEN + 1];  /* the token this session authenticated with */
    bool avatar;                     /* the person is an avatar (bot) */
    bool revalidating;               /* in the token check in flight (ctl.c) */
    bool flush_waiting;              /* in app's flush list */
    bool dirty;                      /* in app's dirty list: written at the end of this turn */
    uint16_t close_code;             /* status for the close frame */
    uint64_t typing_at;              /* uv_now of the last typing event sent (rate limit) */
    const char *ua_os, *ua_browser;  /* User-Agent families at the handshake */
    uint64_t wrote_at;               /* uv_now of the last write (write coalescing) */
    uint64_t moved_at;               /* uv_now the out-queue last moved (first frame, write) */
    struct conn *flush_prev;         /* neighbours in the flush list */
    struct conn *flush_next;         /* (NULL at its ends) */
    struct conn *dirty_prev;         /* neighbours in the dirty list */
    struct conn *dirty_next;         /* (NULL at its ends) */
};

void conn_init(struct conn *c, struct app *app, struct lws *wsi);
void conn_destroy(struct conn *c);

/* Queues a reference to f (the caller keeps its own). Returns 0, or -1 when
 * the connection is closing or was just closed for passing its limit.
 * Room messages do not come here past three quarters of the limit: a member
 * that far behind is switched to paced catch-up (rooms/replay.c), so the hard limit
 * cuts only a connection that also piles up replies and other pushes. */
int conn_send(struct conn *c, struct frame *f);
int conn_send_copy(struct conn *c, const char *p, size_t len);
/* Queues an ephemeral frame (typing, presence) unless the out-queue is
 * already under pressure: then it is dropped (-1), never the connection. */
int conn_send_ephemeral(struct conn *c, struct frame *f);
void conn_reply_ok(struct conn *c, int64_t id, const char *result, size_t len);
void conn_reply_err(struct conn *c, int64_t id, enum pp_err_code code, const char *msg);

/* Closes asynchronously with a WebSocket close code; queued frames are
 * dropped at once so their memory is freed now. reason is kept, not copied
 * (a literal; a close frame carries at most 123 bytes of it). */
void conn_close(struct conn *c, uint16_t code, const char *reason);
/* Closes after what is already queued has been written (shutdown: replies
 * to commands already answered must still reach the client). */
void conn_close_when_drained(struct conn *c, uint16_t code, const char *reason);

/* Write backpressure (the store's queue is backed up): stop reading from c;
 * false if it was stopped already. */
bool conn_rx_pause(struct conn *c);
/* ... and its release: every stopped connection of a reads again. */
void conn_rx_resume_all(struct app *a);

/* True while the out-queue is at most a quarter full (bytes and frames):
 * paced recovery loads its next page only then. */
bool conn_low_water(const struct conn *c);
/* Sweep: closes c as a slow consumer when frames have waited in its
 * out-queue for outq_stall_ms without a write (the peer reads nothing).
 * frozen: the loop itself did not run for a while (the process was stopped
 * or starved), so nobody had a chance to write: restart the clock instead.
 * An empty out-queue that has not moved for 10 s gives its ring back. */
void conn_check_stall(struct conn *c, uint64_t now, bool frozen);

/* LWS_CALLBACK_SERVER_WRITEABLE: 0, or -1 to close. */
int conn_on_writeable(struct conn *c);
/* LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: lws answers with its own close
 * frame, after which no data frame may follow: nothing more is queued or
 * written. */
void conn_on_peer_close(struct conn *c);

/* The end-of-turn writer's loop handles (ws_start) and their release
 * (ws_stop); after conn_writes_stop every write waits for WRITEABLE. */
void conn_writes_start(struct app *a);
void conn_writes_stop(struct app *a);

/* Links r to c and counts it in c->nreqs (the handler refuses commands past
 * a bound on it). Every link is matched by one creq_unlink, when the work
 * is answered and freed, or by conn_destroy. */
void creq_link(struct conn *c, struct creq *r);
/* Unlinks r and uncounts it; nothing when r is not linked (its connection
 * went away). */
void creq_unlink(struct creq *r);

#endif
