/*
 * parley-load - a bounded load generator for parleyd (loopback only).
 *
 * Opens one WebSocket per token of a fixture file (made by
 * `parleyd admin load-fixture <people> <rooms>`: person i is in room i % rooms,
 * or, with --zipf S, rooms sized by 1/rank^S), spreads them over the given gateways and over
 * several 127.0.0.x source addresses, authenticates, joins each to its room, then runs a scenario
 * for a fixed time and reports: sends, acks, errors by code, deliveries, and for every (client,
 * room) stream the seqs lost, duplicated or out of order, plus latency percentiles from a
 * log-linear histogram. The send time travels in the body (monotonic clock, same machine).
 *
 * Scenarios (each a documented command in loadtest/README.md):
 *   chat       steady sends at --rate per client (default)
 *   idle       connect, authenticate, join, then hold: memory per connection
 *              (--pid: the gateways whose RSS to measure; in every scenario
 *              their CPU over the send window is reported as pids_cpu_s, and
 *              the window itself on the monotonic clock as window_mono_s)
 *   bigroom    chat with a fixture of one room (the same loop; named for the bench)
 *   reconnect  chat while every client drops its connection every
 *              --reconnect-every seconds and rejoins with since on the other
 *              gateway: zero loss required
 *   moderation chat through the workspace's guidelines (rules in
 *              loadtest/README.md): one send in ten carries a term to mask,
 *              one a term to reject, one a term to flag; every verdict is
 *              checked at the receivers (a masked term delivered, or a
 *              rejected send acknowledged, is a leak)
 *   storm      every client on the first --gw under chat load; after
 *              --kill-after seconds the process named by --kill-pid (or the
 *              pid in --kill-pidfile) gets SIGKILL, and every client it held
 *              comes back through the other gateways with jittered backoff,
 *              rejoins with since and re-sends its unanswered sends with the
 *              same client_msg_id: reports how many authenticated again, the
 *              time until all recovered, and per member loss, duplicates and
 *              order. It kills nothing else.
 *
 * Reconnecting (storm and reconnect scenarios, and in every scenario an auth
 * or join answered busy or unavailable, or an HTTP 503/429 at the upgrade):
 * "full jitter" backoff, a random time below min(--backoff-max-ms,
 * --backoff-ms * 2^attempt), added to the server's retry_after_ms (or
 * Retry-After) when it gave one, so clients refused together do not come
 * back together; rotating to the next gateway each time, as the SDK does.
 *
 * --procs N splits the clients over N worker processes (one process's file
 * limit caps its connections): each worker runs its share on its own epoll;
 * they start sending at the same instant and share, through one anonymous
 * shared mapping, the per-room highest acknowledged seq, so every receiver
 * is checked against every sender; the parent merges their reports.
 *
 * Every loop is bounded: --duration caps the scenario, set-up is capped at
 * --setup-s (60 s) and the drain at 5 s; every gateway address must be on 127.0.0.0/8.
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eio.h"
#include "senders.h"
#include "hist.h"
#include "seqcheck.h"
#include "sizes.h"
#include "stamp.h"
#include "wsclient.h"

#define MAX_GW 16
#define MAX_ROOMS 16384 /* 100,000 clients in rooms of 10, with room to spare */
#define MAX_PIDS 8
#define MAX_CODES 16
#define RBUF_MAX (8 << 20)
#define DRAIN_MS 5000
#define MAX_PROCS 16
#define SEND_WINDOW 64           /* sends unanswered per client, at most */
#define STORM_SETTLE_MS 3000     /* chat load after the last client recovered */
#define MAX_RETRY_AFTER_MS 60000 /* a server hint is honoured up to this */

enum phase { P_HANDSHAKE, P_AUTH, P_JOIN, P_OPEN, P_WAIT, P_DEAD };
enum scenario { S_CHAT, S_IDLE, S_BIGROOM, S_RECONNECT, S_MODERATION, S_STORM };
enum proto { PR_PARLEY, PR_SOCKETIO, PR_NCHAN };

struct client {
    int fd;              /* socket, -1 when closed */
    int idx;             /* client number */
    int room;            /* room index */
    int gw;              /* gateway index in use */
    enum phase phase;    /* where it is */
    char *token;         /* access token */
    unsigned char *rbuf; /* received, not yet parsed */
    size_t rlen, rcap;
    unsigned char *wbuf; /* not yet written */
    size_t wlen, wcap;
    uint64_t next_send;         /* monotonic ns of the next send */
    uint64_t next_drop;         /* reconnect scenario: when to drop */
    uint64_t t_connect;         /* when the current connection attempt began */
    char key[WSCL_KEY_LEN + 1]; /* this connection's Sec-WebSocket-Key */
    bool joined_once;           /* seq checking has started */
    struct seqcheck sc;         /* delivery checking for its room */
    struct senders from;        /* nchan: delivery checking per sender of its room */
    uint64_t sent, acked, errors, reconnects, unrecovered;
    uint64_t rejected;  /* moderation: sends refused by the reject rule */
    int64_t next_id;    /* command ids */
    uint64_t next_read; /* --read-rate: monotonic ns of the next read report */
    uint64_t reads, reads_acked, read_errors; /* read reports and their answers */
    uint64_t events;                          /* sequenced events (read, votes) delivered */
    uint64_t read_t0[64];                     /* send times of read reports, by id % 64 */
    uint64_t retry_at;                        /* P_WAIT: when to connect again */
    int attempt;       /* connections failed in a row: the backoff's exponent */
    int64_t unans_lo;  /* the lowest send number not yet answered */
    uint64_t answered; /* bit i: send unans_lo + i answered */
    bool cut;          /* storm: was on the killed gateway when it died */
    bool reauthed;     /* storm: authenticated again after the kill */
    bool recovered;    /* storm: rejoined with since, recovered */
};

/* Read reports use ids from here on, so their answers are told apart. */
#define READ_ID_BASE (1LL << 40)

/* The moderation scenario's terms (its rule set is in loadtest/README.md) and
 * what a masked term becomes. Send k of a client carries KIND(k). */
#define TERM_MASK "zqmaskword"
#define TERM_MASKED "**********"
#define TERM_REJECT "zqrejectword"
#define TERM_FLAG "zqflagword"
enum kind { K_PLAIN, K_MASK, K_REJECT, K_FLAG };
static enum kind send_kind(int64_t k)
{
    return k % 10 == 3 ? K_MASK : k % 10 == 6 ? K_REJECT : k % 10 == 9 ? K_FLAG : K_PLAIN;
}

/* One worker's results, written by it, read by the parent once it exited. */
struct wres {
    uint64_t sent, acked, errors, delivered, dups, ooo, lost, dead, reconnects, unrecovered;
    uint64_t reads, reads_acked;
    uint64_t masked_seen;  /* deliveries whose term arrived masked */
    uint64_t rejected;     /* sends refused with guideline_violation, as they should be */
    uint64_t leaks;        /* a term delivered unmasked, or a send to reject acknowledged */
    int clients, open;     /* its share of the fixture, and how many joined */
    double cpu_s;          /* its own CPU time */
    struct lhist lat;      /* delivery latency, µs */
    struct lhist join_lat; /* connect to join ok, µs */
    struct lhist rlat;     /* read report to its answer, µs */
    struct lhist rec_lat;  /* storm: the kill to a cut client's rejoin ok, µs */
    uint64_t retries;      /* connection attempts after a failed or lost one */
    uint64_t refusals;     /* auth/join/upgrade refused busy or unavailable (retried) */
    uint64_t hinted;       /* of those, with retry_after_ms or Retry-After */
    uint64_t resent;       /* sends written again after a lost connection */
    int cut, reauthed, storm_recovered;  /* storm: clients cut, signed in again, recovered */
    uint64_t kill_ns, last_recovered_ns; /* storm: when the kill came, the last recovery */
    char codes[MAX_CODES][32];           /* error codes seen */
    uint64_t code_count[MAX_CODES];
};

/* Shared by every worker (an anonymous MAP_SHARED mapping made before fork). */
struct shared {
    uint64_t start_ns;                  /* when sending starts: set once, by the last ready */
    int ready;                          /* workers done with set-up */
    int acks_done;                      /* workers with every command answered after the stop */
    long rss1;                          /* the gateways' RSS when sending starts */
    double cpu0, cpu1;                  /* their CPU seconds then, and when the drain ended */
    uint64_t cpu1_ns;                   /* when the drain ended (monotonic; start_ns began it) */
    int drained;                        /* workers past the drain (the last sets cpu1) */
    double run_s;                       /* storm: the load's real length (it stops early) */
    uint64_t acked_in_room[MAX_ROOMS];  /* acknowledged messages, per room */
    uint64_t masked_in_room[MAX_ROOMS]; /* of those, carrying the term to mask */
    int64_t room_max_seq[MAX_ROOMS];    /* highest acknowledged seq, per room */
    struct wres w[MAX_PROCS];           /* one per worker */
};

static struct {
    struct sockaddr_in gw[MAX_GW];
    int ngw, sources, body, json;
    int procs, k;     /* worker processes, and which one this is */
    enum proto proto; /* what the gateways speak */
    enum scenario scenario;
    double rate, duration, reconnect_every;
    double read_rate;                  /* read reports per client per second (receipts load) */
    double connect_rate;               /* connections started per second in all, 0: at once */
    double zipf;                       /* room sizes by 1/rank^zipf; -1: the fixture's */
    double backoff_ms, backoff_max_ms; /* reconnection backoff: first cap, largest cap */
    double kill_after;                 /* storm: seconds of load before the kill */
    int kill_pid;                      /* storm: the process to kill */
    const char *kill_pidfile;          /* storm: or the file holding its pid */
    int max_clients;                   /* the fixture's first N tokens; 0: all */
    double setup_s;                    /* the bound on connecting, signing in, joining */
    const char *csv;
    int pids[MAX_PIDS], npids;
    char rooms[MAX_ROOMS][40];
    int nrooms;
    int *members;             /* per room */
    struct shared *S;         /* shared with the other workers */
    struct wres *R;           /* this worker's results (in S) */
    unsigned long long nonce; /* makes client_msg_ids unique per run */
    int ep;                   /* epoll */
} G;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Uniform enough over any interval in ns: rand() alone stops at 2^31 (2.1 s),
 * which packed every first send of a slow per-client rate into two seconds. */
static uint64_t rand64(void)
{
    return ((uint64_t)(unsigned)rand() << 31) ^ (uint64_t)(unsigned)rand();
}

static void die(const char *m)
{
    fprintf(stderr, "parley-load: %s\n", m);
    exit(2);
}

static void count_error(const char *code)
{
    struct wres *r = G.R;
    for (int i = 0; i < MAX_CODES; i++) {
        if (!r->codes[i][0]) snprintf(r->codes[i], sizeof r->codes[i], "%s", code);
        if (!strcmp(r->codes[i], code)) {
            r->code_count[i]++;
            return;
        }
    }
}

static void wappend(struct client *c, const void *p, size_t n)
{
    if (c->wlen + n > c->wcap) {
        c->wcap = (c->wlen + n) * 2;
        c->wbuf = realloc(c->wbuf, c->wcap);
        if (!c->wbuf) die("out of memory");
    }
    memcpy(c->wbuf + c->wlen, p, n);
    c->wlen += n;
}

/* A masked text frame, as a client must send. */
static void ws_send(struct client *c, const char *p, size_t n)
{
    size_t k = wscl_frame_size(n);
    if (c->wlen + k > c->wcap) {
        c->wcap = (c->wlen + k) * 2;
        c->wbuf = realloc(c->wbuf, c->wcap);
        if (!c->wbuf) die("out of memory");
    }
    c->wlen += wscl_frame(c->wbuf + c->wlen, 0x81, p, n, (uint32_t)rand());
}

static void send_cmd(struct client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_cmd(struct client *c, const char *fmt, ...)
{
    char buf[65536];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof buf) ws_send(c, buf, (size_t)n);
}

static void drop(struct client *c)
{
    if (c->fd >= 0) {
        epoll_ctl(G.ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->rlen = c->wlen = 0;
}

/* Does a lost connection come back? In the scenarios about losing them; in
 * the others a lost connection is a failure the report must show. */
static bool comes_back(void)
{
    return G.scenario == S_STORM || G.scenario == S_RECONNECT;
}

/* The connection is gone or refused. Without retry the client is dead;
 * otherwise it waits hint_ms (the server's retry_after_ms, 0: none) plus a
 * "full jitter" random time below min(max, first * 2^attempt), then tries
 * the next gateway: clients cut off together spread out instead of coming
 * back in one instant, and never sooner than the server asked. */
static void lose(struct client *c, uint64_t hint_ms, bool retry)
{
    drop(c);
    if (!retry) {
        c->phase = P_DEAD;
        return;
    }
    if (hint_ms > MAX_RETRY_AFTER_MS) hint_ms = MAX_RETRY_AFTER_MS;
    double cap = G.backoff_ms * (double)(1ull << (c->attempt < 30 ? c->attempt : 30));
    if (cap > G.backoff_max_ms) cap = G.backoff_max_ms;
    uint64_t jitter = cap >= 1 ? rand64() % (uint64_t)(cap * 1e6) : 0;
    c->retry_at = now_ns() + hint_ms * 1000000ull + jitter;
    c->attempt++;
    /* storm: before the kill every client belongs on the gateway to kill */
    if (G.scenario != S_STORM || G.R->kill_ns) c->gw++;
    c->phase = P_WAIT;
}

/* A refusal worth trying again later (PROTOCOL.md: busy, unavailable). */
static bool retryable(const char *code)
{
    return !strcmp(code, "busy") || !strcmp(code, "unavailable");
}

static void flush_out(struct client *c)
{
    while (c->wlen && c->fd >= 0) {
        ssize_t w = write(c->fd, c->wbuf, c->wlen);
        if (w < 0) {
            if (errno == EAGAIN) break;
            lose(c, 0, comes_back());
            return;
        }
        memmove(c->wbuf, c->wbuf + w, c->wlen - (size_t)w);
        c->wlen -= (size_t)w;
    }
    if (c->fd < 0) return;
    struct epoll_event ev = {.events = EPOLLIN | (c->wlen ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(G.ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void start_client(struct client *c)
{
    struct sockaddr_in *gw = &G.gw[c->gw % G.ngw];
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) die("socket (raise ulimit -n, or split the clients with --procs)");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* Several source addresses: each has its own ephemeral port range. */
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(c->idx % G.sources));
    if (bind(c->fd, (struct sockaddr *)&src, sizeof src)) die("bind to a 127.0.0.x source");
    c->phase = P_HANDSHAKE;
    c->t_connect = now_ns();
    if (connect(c->fd, (struct sockaddr *)gw, sizeof *gw) && errno != EINPROGRESS) {
        /* refused at once (a dead gateway on loopback): the next one, later */
        if (!comes_back()) die("connect");
        lose(c, 0, true);
        return;
    }
    unsigned char nonce[16];
    for (int i = 0; i < 16; i++)
        nonce[i] = (unsigned char)rand();
    wscl_key(nonce, c->key);
    char npath[80]; /* nchan: the room's channel in this run */
    snprintf(npath, sizeof npath, "/room/%s-%llx", G.rooms[c->room], G.nonce);
    struct wscl_upgrade u = {
        .path = G.proto == PR_SOCKETIO ? "/socket.io/?EIO=4&transport=websocket"
                : G.proto == PR_NCHAN  ? npath
                                       : "/",
        .host = "127.0.0.1",
        .key = c->key,
        .protocol = G.proto == PR_PARLEY ? "parley.v1" : NULL,
    };
    char req[512];
    int n = wscl_request(req, sizeof req, &u);
    if (n < 0) die("upgrade request too long");
    wappend(c, req, (size_t)n);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(G.ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void make_body(char *body, int64_t k);
static void nchan_send(struct client *c, int64_t k, const char *body);

/* Send k's answer arrived: false when it was already had (or is unknown). */
static bool mark_answered(struct client *c, int64_t k)
{
    if (k < c->unans_lo || k >= c->unans_lo + SEND_WINDOW) return false;
    uint64_t bit = 1ull << (k - c->unans_lo);
    if (c->answered & bit) return false;
    c->answered |= bit;
    while (c->answered & 1) {
        c->answered >>= 1;
        c->unans_lo++;
    }
    return true;
}

/* Writes send k: the same command id and client_msg_id every time, so a
 * send written again after a lost connection is stored once (the server
 * deduplicates) and answered under its own number. */
static void write_send(struct client *c, int64_t k)
{
    char body[65536];
    make_body(body, k);
    if (G.proto == PR_SOCKETIO) {
        static char args[65536 + 256], m[sizeof args + 32];
        snprintf(args, sizeof args,
                 "\"send\",{\"room\":\"%s\",\"client_msg_id\":\"%llx-%d-%" PRId64
                 "\",\"body\":\"%s\"}",
                 G.rooms[c->room], G.nonce, c->idx, k, body);
        size_t n = eio_emit(m, sizeof m, k + 3, args);
        if (n) ws_send(c, m, n);
    } else if (G.proto == PR_NCHAN) {
        nchan_send(c, k, body);
    } else
        send_cmd(c,
                 "{\"id\":%" PRId64 ",\"op\":\"send\",\"room\":\"%s\","
                 "\"client_msg_id\":\"%llx-%d-%" PRId64 "\",\"body\":\"%s\"}",
                 k + 3, G.rooms[c->room], G.nonce, c->idx, k, body);
}

/* Joined again: the sends the lost connection took unanswered go again. */
static void resend_unanswered(struct client *c)
{
    for (int64_t k = c->unans_lo; k < c->next_id; k++)
        if (!(c->answered & (1ull << (k - c->unans_lo)))) {
            write_send(c, k);
            G.R->resent++;
        }
}

/* A sequenced event (read, votes) takes a seq in the room: seen, not timed. */
static void on_event_push(struct client *c, const cJSON *o)
{
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(o, "seq");
    if (!cJSON_IsNumber(seq) || !c->joined_once) return;
    seqcheck_see(&c->sc, (int64_t)seq->valuedouble);
    c->events++;
}

static void on_message_push(struct client *c, const cJSON *o)
{
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(o, "seq");
    if (!cJSON_IsNumber(seq) || !c->joined_once) return;
    seqcheck_see(&c->sc, (int64_t)seq->valuedouble);
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(o, "body");
    if (cJSON_IsString(body)) {
        uint64_t t = stamp_get(body->valuestring), now = now_ns();
        if (t && now > t) lhist_record(&G.R->lat, (now - t) / 1000);
        if (G.scenario == S_MODERATION) {
            const char *b = body->valuestring;
            if (strstr(b, TERM_MASK) || strstr(b, TERM_REJECT)) G.R->leaks++;
            if (strstr(b, " " TERM_MASKED " ")) G.R->masked_seen++;
        }
    }
}

static void on_object(struct client *c, const cJSON *o)
{
    const cJSON *push = cJSON_GetObjectItemCaseSensitive(o, "push");
    if (cJSON_IsString(push)) {
        if (!strcmp(push->valuestring, "message"))
            on_message_push(c, o);
        else if (!strcmp(push->valuestring, "read") || !strcmp(push->valuestring, "votes"))
            on_event_push(c, o);
        return;
    }
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(o, "ok");
    const cJSON *idj = cJSON_GetObjectItemCaseSensitive(o, "id");
    int64_t rid = cJSON_IsNumber(idj) ? (int64_t)idj->valuedouble : 0;
    if (rid >= READ_ID_BASE) {
        if (ok) {
            c->reads_acked++;
            uint64_t t0 = c->read_t0[rid % 64];
            if (t0) lhist_record(&G.R->rlat, (now_ns() - t0) / 1000);
        } else {
            const cJSON *code = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(o, "error"), "code");
            count_error(cJSON_IsString(code) ? code->valuestring : "?");
            c->read_errors++;
        }
        return;
    }
    /* Sends are ids 3, 4, ...: send k has id k + 3. A send written again
     * after a lost connection is answered once on the new one; anything
     * else already answered is not counted twice. */
    bool is_send = c->phase == P_OPEN && rid >= 3;
    if (is_send && !mark_answered(c, rid - 3)) return;
    enum kind kind = is_send ? send_kind(rid - 3) : K_PLAIN;
    if (!ok) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(o, "error");
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
        const char *cs = cJSON_IsString(code) ? code->valuestring : "?";
        if (G.scenario == S_MODERATION && kind == K_REJECT && !strcmp(cs, "guideline_violation")) {
            c->rejected++; /* refused, as the rule says: answered, not an error */
            return;
        }
        count_error(cs);
        if (c->phase != P_OPEN && retryable(cs)) {
            /* auth or join refused for now: back off, at least the hint */
            const cJSON *ra = cJSON_GetObjectItemCaseSensitive(err, "retry_after_ms");
            uint64_t hint =
                cJSON_IsNumber(ra) && ra->valuedouble > 0 ? (uint64_t)ra->valuedouble : 0;
            G.R->refusals++;
            G.R->hinted += hint > 0;
            lose(c, hint, true);
            return;
        }
        c->errors++;
        if (c->phase != P_OPEN) lose(c, 0, false);
        return;
    }
    if (c->phase == P_AUTH) {
        c->phase = P_JOIN;
        if (c->cut && !c->reauthed) {
            c->reauthed = true;
            G.R->reauthed++;
        }
        if (c->joined_once)
            send_cmd(c, "{\"id\":2,\"op\":\"join\",\"room\":\"%s\",\"since\":%" PRId64 "}",
                     G.rooms[c->room], c->sc.next - 1);
        else
            send_cmd(c, "{\"id\":2,\"op\":\"join\",\"room\":\"%s\"}", G.rooms[c->room]);
    } else if (c->phase == P_JOIN) {
        const cJSON *last = cJSON_GetObjectItemCaseSensitive(ok, "last_seq");
        const cJSON *rec = cJSON_GetObjectItemCaseSensitive(ok, "recovered");
        bool fresh = !c->joined_once; /* nothing to recover: its first join */
        if (fresh) {
            seqcheck_init(&c->sc, (int64_t)last->valuedouble + 1);
            c->joined_once = true;
        } else if (cJSON_IsFalse(rec)) {
            c->unrecovered++; /* the server could not replay: messages lost to this client */
        }
        if (c->cut && !c->recovered && (fresh || !cJSON_IsFalse(rec))) {
            uint64_t now = now_ns();
            c->recovered = true;
            G.R->storm_recovered++;
            G.R->last_recovered_ns = now;
            lhist_record(&G.R->rec_lat, (now - G.R->kill_ns) / 1000);
        }
        lhist_record(&G.R->join_lat, (now_ns() - c->t_connect) / 1000);
        c->phase = P_OPEN;
        c->attempt = 0;
        resend_unanswered(c);
    } else {
        c->acked++;
        if (G.scenario == S_MODERATION && kind == K_REJECT) G.R->leaks++;
        __atomic_fetch_add(&G.S->acked_in_room[c->room], 1, __ATOMIC_RELAXED);
        if (G.scenario == S_MODERATION && kind == K_MASK)
            __atomic_fetch_add(&G.S->masked_in_room[c->room], 1, __ATOMIC_RELAXED);
        const cJSON *seq = cJSON_GetObjectItemCaseSensitive(ok, "seq");
        if (cJSON_IsNumber(seq)) {
            /* the room's highest acknowledged seq, over every worker */
            int64_t v = (int64_t)seq->valuedouble, cur;
            int64_t *m = &G.S->room_max_seq[c->room];
            cur = __atomic_load_n(m, __ATOMIC_RELAXED);
            while (v > cur && !__atomic_compare_exchange_n(m, &cur, v, false, __ATOMIC_RELAXED,
                                                           __ATOMIC_RELAXED)) {
            }
        }
    }
}

/* The Socket.IO peer (framing in eio.h): answer pings, connect to the
 * namespace, join with emit 2, and turn acks into the Parley reply shape. */
static void on_sio_frame(struct client *c, const char *p, size_t n)
{
    struct eio_frame f;
    eio_parse(p, n, &f);
    if (f.kind == EIO_PING) {
        ws_send(c, "3", 1);
    } else if (f.kind == EIO_OPEN && c->phase == P_AUTH) {
        ws_send(c, "40", 2);
    } else if (f.kind == EIO_CONNECTED && c->phase == P_AUTH) {
        char args[80], m[128];
        c->phase = P_JOIN;
        snprintf(args, sizeof args, "\"join\",\"%s\"", G.rooms[c->room]);
        size_t k = eio_emit(m, sizeof m, 2, args);
        if (k) ws_send(c, m, k);
    } else if (f.kind == EIO_ACK) {
        cJSON *arr = cJSON_ParseWithLength(f.payload, f.len);
        cJSON *res = arr ? cJSON_DetachItemFromArray(arr, 0) : NULL;
        cJSON_Delete(arr);
        if (!res) return;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)f.id);
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(res, "error");
        if (cJSON_IsString(err)) {
            cJSON *e = cJSON_AddObjectToObject(o, "error");
            cJSON_AddStringToObject(e, "code", err->valuestring);
            cJSON_Delete(res);
        } else {
            cJSON_AddItemToObject(o, "ok", res);
        }
        on_object(c, o);
        cJSON_Delete(o);
    } else if (f.kind == EIO_EVENT) {
        cJSON *arr = cJSON_ParseWithLength(f.payload, f.len);
        const cJSON *ev = cJSON_GetArrayItem(arr, 0), *data = cJSON_GetArrayItem(arr, 1);
        if (cJSON_IsString(ev) && !strcmp(ev->valuestring, "message") && data)
            on_message_push(c, data);
        cJSON_Delete(arr);
    }
}

/* The nchan peer (loadtest/peers/nchan): a client's websocket on /room/ROOM
 * is its join, every frame it writes is published to the room, and every
 * member, the writer too, receives it. No room seq and no answer: a message
 * starts with its sender's slot in the room and the sender's counter
 * (senders.h), checked per (room, sender); the sender's own copy coming back
 * is its acknowledgement (the message is in the channel then). */
#define NCHAN_MAX_PAIRS 2000000 /* (receiver, sender) checks, 56 bytes each */
static struct {
    int *slot;      /* by client idx: its place in its room */
    int *first;     /* by room: where its senders start in sent */
    uint64_t *sent; /* by first[room] + slot: sends written (shared by workers) */
} N;

/* Before the workers fork: slots, and the shared send counts. */
static void nchan_prepare(const struct client *cl, int n)
{
    uint64_t pairs = 0;
    N.slot = calloc((size_t)n, sizeof *N.slot);
    N.first = calloc((size_t)G.nrooms + 1, sizeof *N.first);
    if (!N.slot || !N.first) die("out of memory");
    for (int r = 0; r < G.nrooms; r++) {
        N.first[r + 1] = N.first[r] + G.members[r];
        pairs += (uint64_t)G.members[r] * (uint64_t)G.members[r];
    }
    if (pairs > NCHAN_MAX_PAIRS) die("nchan: rooms too large for a check per (receiver, sender)");
    int *fill = calloc((size_t)G.nrooms, sizeof *fill);
    if (!fill) die("out of memory");
    for (int i = 0; i < n; i++)
        N.slot[cl[i].idx] = fill[cl[i].room]++;
    free(fill);
    N.sent = mmap(NULL, sizeof *N.sent * ((size_t)n + 1), PROT_READ | PROT_WRITE,
                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (N.sent == MAP_FAILED) die("mmap");
}

/* The upgrade is the join: nothing to authenticate, nothing to recover. */
static void nchan_joined(struct client *c)
{
    if (!c->joined_once) {
        if (senders_init(&c->from, G.members[c->room])) die("out of memory");
        seqcheck_init(&c->sc, 1); /* no room seqs: nothing is ever missing there */
        c->joined_once = true;
    }
    lhist_record(&G.R->join_lat, (now_ns() - c->t_connect) / 1000);
    c->phase = P_OPEN;
    c->attempt = 0;
}

static void nchan_send(struct client *c, int64_t k, const char *body)
{
    static char m[65536 + 64];
    size_t h = senders_put(m, sizeof m, N.slot[c->idx], k);
    size_t b = strlen(body);
    if (!h || h + b > sizeof m) die("nchan: message too long");
    memcpy(m + h, body, b);
    ws_send(c, m, h + b);
    __atomic_store_n(&N.sent[N.first[c->room] + N.slot[c->idx]], (uint64_t)k + 1, __ATOMIC_RELAXED);
}

/* This client's messages never delivered, below each sender's send count. */
static uint64_t nchan_missing(const struct client *c)
{
    return senders_missing(&c->from, &N.sent[N.first[c->room]]);
}

static void on_nchan_frame(struct client *c, const char *p, size_t n)
{
    int slot;
    int64_t k;
    size_t off = senders_parse(p, n, &slot, &k);
    if (!off || senders_see(&c->from, slot, k)) {
        if (!off) c->from.unknown++;
        count_error("nchan_garbled");
        return;
    }
    if (slot == N.slot[c->idx] && c->phase == P_OPEN && mark_answered(c, k)) {
        c->acked++;
        __atomic_fetch_add(&G.S->acked_in_room[c->room], 1, __ATOMIC_RELAXED);
    }
    char st[STAMP_MAX + 1]; /* the stamp, terminated (the frame is not) */
    size_t sl = n - off < STAMP_MAX ? n - off : STAMP_MAX;
    memcpy(st, p + off, sl);
    st[sl] = '\0';
    uint64_t t = stamp_get(st), now = now_ns();
    if (t && now > t) lhist_record(&G.R->lat, (now - t) / 1000);
}

static void on_frame(struct client *c, const char *p, size_t n)
{
    if (G.proto == PR_SOCKETIO) {
        on_sio_frame(c, p, n);
        return;
    }
    if (G.proto == PR_NCHAN) {
        on_nchan_frame(c, p, n);
        return;
    }
    cJSON *j = cJSON_ParseWithLength(p, n);
    if (!j) return;
    if (cJSON_IsArray(j)) {
        const cJSON *o;
        cJSON_ArrayForEach(o, j) on_object(c, o);
    } else {
        on_object(c, j);
    }
    cJSON_Delete(j);
}

/* The Retry-After of an HTTP response head (n bytes), in ms: 0 when absent
 * or an HTTP date (this generator does not parse those). */
static uint64_t retry_after_header(const char *head, size_t n)
{
    static const char name[] = "\r\nretry-after:";
    size_t k = sizeof name - 1;
    for (size_t i = 0; i + k < n; i++)
        if (!strncasecmp(head + i, name, k)) {
            const char *p = head + i + k;
            while (p < head + n && *p == ' ')
                p++;
            uint64_t secs = 0;
            while (p < head + n && *p >= '0' && *p <= '9' && secs < 3600)
                secs = secs * 10 + (uint64_t)(*p++ - '0');
            return secs * 1000;
        }
    return 0;
}

static void on_readable(struct client *c)
{
    for (;;) {
        if (c->rcap - c->rlen < 65536) {
            if (c->rcap >= RBUF_MAX) die("receive buffer limit");
            c->rcap = c->rcap ? c->rcap * 2 : 131072;
            c->rbuf = realloc(c->rbuf, c->rcap);
            if (!c->rbuf) die("out of memory");
        }
        ssize_t r = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (r == 0 || (r < 0 && errno != EAGAIN)) {
            lose(c, 0, comes_back());
            return;
        }
        if (r < 0) break;
        c->rlen += (size_t)r;
    }
    size_t off = 0;
    if (c->phase == P_HANDSHAKE) {
        int status;
        bool accepted;
        off = wscl_response((const char *)c->rbuf, c->rlen, c->key, &status, &accepted);
        if (!off) return;
        if (!accepted) {
            /* 503 or 429: the gateway admits no more now; Retry-After says when */
            if (status == 503 || status == 429) {
                G.R->refusals++;
                uint64_t hint = retry_after_header((const char *)c->rbuf, off);
                G.R->hinted += hint > 0;
                lose(c, hint, true);
            } else
                lose(c, 0, false);
            return;
        }
        c->phase = P_AUTH;
        if (G.proto == PR_PARLEY)
            send_cmd(c, "{\"id\":1,\"op\":\"auth\",\"token\":\"%s\"}", c->token);
        if (G.proto == PR_NCHAN) nchan_joined(c);
    }
    struct wscl_in f;
    int r;
    while (c->fd >= 0 && (r = wscl_parse(c->rbuf + off, c->rlen - off, &f)) != 0) {
        if (r < 0 || f.opcode == 8) { /* not a server's frame, or a close */
            lose(c, 0, comes_back());
            return;
        }
        if (f.opcode == 1) on_frame(c, (const char *)f.payload, f.len);
        off += f.size;
    }
    if (c->fd < 0) return;
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    flush_out(c);
}

static void service(int timeout_ms)
{
    struct epoll_event evs[512];
    int k = epoll_wait(G.ep, evs, 512, timeout_ms);
    for (int i = 0; i < k; i++) {
        struct client *c = evs[i].data.ptr;
        if (c->fd < 0) continue;
        if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
            on_readable(c);
        else
            flush_out(c);
    }
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    fclose(f);
    return kb;
}

/* CPU seconds (user + system) of the --pid processes so far. */
static double pids_cpu_s(void)
{
    double t = 0;
    long hz = sysconf(_SC_CLK_TCK);
    for (int i = 0; i < G.npids; i++) {
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%d/stat", G.pids[i]);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* Fields after the command name, which may hold spaces: state is
         * field 3, utime and stime are 14 and 15. */
        const char *p = strrchr(buf, ')');
        unsigned long long ut = 0, st = 0;
        if (p &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
            t += (double)(ut + st) / (double)hz;
    }
    return t;
}

static long total_rss(void)
{
    long t = 0;
    for (int i = 0; i < G.npids; i++)
        t += rss_kb(G.pids[i]);
    return t;
}

static void parse_gw(const char *s)
{
    if (G.ngw == MAX_GW) die("too many --gw");
    char host[64];
    int port;
    if (sscanf(s, "%63[^:]:%d", host, &port) != 2) die("--gw HOST:PORT");
    struct sockaddr_in *a = &G.gw[G.ngw++];
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a->sin_addr) != 1) die("--gw needs an IPv4 address");
    if ((ntohl(a->sin_addr.s_addr) >> 24) != 127)
        die("--gw must be on 127.0.0.0/8 (loopback only)");
}

static const char *usage =
    "usage: parley-load --fixture FILE --gw 127.0.0.1:PORT [--gw ...]\n"
    "         [--scenario chat|idle|bigroom|reconnect|moderation] [--rate MSGS_PER_S_PER_CLIENT]\n"
    "         [--read-rate READ_REPORTS_PER_S_PER_CLIENT] [--procs N] [--connect-rate PER_S]\n"
    "         [--duration S] [--body BYTES] [--sources N] [--reconnect-every S]\n"
    "         [--pid GATEWAY_PID ...] [--csv HISTOGRAM.csv] [--proto parley|socketio|nchan] "
    "[--json]\n"
    "         [--zipf S]   (room sizes proportional to 1/rank^S instead of the fixture's equal "
    "ones)\n"
    "         [--clients N] (the fixture's first N tokens) [--backoff-ms MS] [--backoff-max-ms "
    "MS]\n"
    "         [--setup-s S] (the bound on set-up, default 60)\n"
    "         --scenario storm: --kill-pid PID | --kill-pidfile FILE [--kill-after S]";

static const char *const scenario_names[] = {"chat",      "idle",       "bigroom",
                                             "reconnect", "moderation", "storm"};

static void parse_args(int argc, char **argv, const char **fixture)
{
    G.rate = -1;
    G.duration = 10;
    G.body = 64;
    G.sources = 4;
    G.procs = 1;
    G.reconnect_every = 2;
    G.zipf = -1;
    G.backoff_ms = 250;
    G.backoff_max_ms = 10000;
    G.kill_after = 5;
    G.setup_s = 60;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            G.json = 1;
            continue;
        }
        if (!v) die(usage);
        if (!strcmp(a, "--fixture"))
            *fixture = v;
        else if (!strcmp(a, "--gw"))
            parse_gw(v);
        else if (!strcmp(a, "--read-rate"))
            G.read_rate = atof(v);
        else if (!strcmp(a, "--rate"))
            G.rate = atof(v);
        else if (!strcmp(a, "--duration"))
            G.duration = atof(v);
        else if (!strcmp(a, "--body"))
            G.body = atoi(v);
        else if (!strcmp(a, "--sources"))
            G.sources = atoi(v);
        else if (!strcmp(a, "--procs"))
            G.procs = atoi(v);
        else if (!strcmp(a, "--connect-rate"))
            G.connect_rate = atof(v);
        else if (!strcmp(a, "--reconnect-every"))
            G.reconnect_every = atof(v);
        else if (!strcmp(a, "--csv"))
            G.csv = v;
        else if (!strcmp(a, "--zipf"))
            G.zipf = atof(v);
        else if (!strcmp(a, "--setup-s"))
            G.setup_s = atof(v);
        else if (!strcmp(a, "--clients"))
            G.max_clients = atoi(v);
        else if (!strcmp(a, "--backoff-ms"))
            G.backoff_ms = atof(v);
        else if (!strcmp(a, "--backoff-max-ms"))
            G.backoff_max_ms = atof(v);
        else if (!strcmp(a, "--kill-after"))
            G.kill_after = atof(v);
        else if (!strcmp(a, "--kill-pid"))
            G.kill_pid = atoi(v);
        else if (!strcmp(a, "--kill-pidfile"))
            G.kill_pidfile = v;
        else if (!strcmp(a, "--pid") && G.npids < MAX_PIDS)
            G.pids[G.npids++] = atoi(v);
        else if (!strcmp(a, "--proto")) {
            if (!strcmp(v, "parley"))
                G.proto = PR_PARLEY;
            else if (!strcmp(v, "socketio"))
                G.proto = PR_SOCKETIO;
            else if (!strcmp(v, "nchan"))
                G.proto = PR_NCHAN;
            else
                die("--proto parley|socketio|nchan");
        } else if (!strcmp(a, "--scenario")) {
            int k = 0;
            while (k <= S_STORM && strcmp(v, scenario_names[k]))
                k++;
            if (k > S_STORM) die("--scenario chat|idle|bigroom|reconnect|moderation|storm");
            G.scenario = (enum scenario)k;
        } else
            die(usage);
        i++;
    }
    if (!*fixture || !G.ngw) die(usage);
    if (G.rate < 0) G.rate = G.scenario == S_IDLE ? 0 : G.scenario == S_BIGROOM ? 1 : 5;
    if (G.scenario == S_IDLE) G.rate = 0;
    if (G.rate > 10000 || G.duration <= 0 || G.duration > 3600) die("bad --rate or --duration");
    if (G.read_rate < 0 || G.read_rate > 1000) die("bad --read-rate");
    if (G.body < 24 || G.body > 60000 || G.sources < 1 || G.sources > 250)
        die("bad --body/--sources");
    if (G.procs < 1 || G.procs > MAX_PROCS) die("--procs must be 1..16");
    if (G.connect_rate < 0 || G.connect_rate > 1e6) die("bad --connect-rate");
    if (G.reconnect_every < 0.2) die("--reconnect-every must be at least 0.2 s");
    if (G.zipf != -1 && (G.zipf < 0 || G.zipf > 10)) die("--zipf must be 0..10");
    if (G.proto == PR_SOCKETIO && G.scenario == S_RECONNECT)
        die("the Socket.IO peer has no recovery: no reconnect scenario");
    if (G.proto == PR_SOCKETIO && G.scenario == S_MODERATION)
        die("the Socket.IO peer has no guidelines: no moderation scenario");
    if (G.proto == PR_NCHAN &&
        (G.scenario == S_RECONNECT || G.scenario == S_MODERATION || G.read_rate > 0))
        die("the nchan peer: chat, bigroom and idle only (no recovery, guidelines or receipts)");
    if (G.max_clients < 0) die("bad --clients");
    if (G.setup_s < 1 || G.setup_s > 600) die("--setup-s must be 1..600");
    if (G.backoff_ms < 1 || G.backoff_max_ms < G.backoff_ms || G.backoff_max_ms > 600000)
        die("--backoff-ms must be at least 1 and at most --backoff-max-ms (600000 at most)");
    if (G.scenario == S_STORM) {
        if (G.proto != PR_PARLEY) die("storm: the Parley protocol only (recovery needs since)");
        if (G.ngw < 2) die("storm: two --gw at least (the first is killed)");
        if (G.procs != 1) die("storm: one process (--procs 1)");
        if (!G.kill_pid == !G.kill_pidfile) die("storm: one of --kill-pid and --kill-pidfile");
        if (G.kill_after <= 0 || G.kill_after >= G.duration)
            die("storm: --kill-after must be within --duration");
    }
}

static struct client *read_fixture(const char *fixture, int *count)
{
    FILE *f = fopen(fixture, "r");
    if (!f) die("cannot open fixture");
    struct client *cl = NULL;
    int n = 0, cap = 0;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char tok[128];
        int room;
        if (!strncmp(line, "room ", 5)) {
            /* Not skipped quietly: their members' tokens would be, too. */
            if (G.nrooms == MAX_ROOMS) die("the fixture has more rooms than MAX_ROOMS");
            sscanf(line + 5, "%39s", G.rooms[G.nrooms++]);
        } else if (sscanf(line, "token %d %127s", &room, tok) == 2 && room >= 0 &&
                   room < MAX_ROOMS && (!G.max_clients || n < G.max_clients)) {
            if (n == cap) {
                cl = realloc(cl, sizeof *cl * (size_t)(cap = cap ? cap * 2 : 256));
                if (!cl) die("out of memory");
            }
            memset(&cl[n], 0, sizeof cl[n]);
            cl[n].fd = -1;
            cl[n].idx = n;
            cl[n].gw = n;
            cl[n].room = room;
            cl[n].token = strdup(tok);
            n++;
        }
    }
    fclose(f);
    if (!n || !G.nrooms) die("fixture has no tokens or rooms");
    *count = n;
    return cl;
}

/* One message body: the send stamp, the scenario's term for send k, padding. */
static void make_body(char *body, int64_t k)
{
    size_t bl = stamp_put(body, now_ns());
    body[bl++] = ' ';
    if (G.scenario == S_MODERATION) {
        static const char *const terms[] = {NULL, TERM_MASK, TERM_REJECT, TERM_FLAG};
        const char *t = terms[send_kind(k)];
        if (t) {
            memcpy(body + bl, t, strlen(t));
            bl += strlen(t);
            body[bl++] = ' ';
        }
    }
    if (bl < (size_t)G.body) {
        memset(body + bl, 'x', (size_t)G.body - bl);
        bl = (size_t)G.body;
    }
    body[bl] = '\0';
}

/* Waits, still servicing the sockets, until every worker has set up (or the
 * set-up time is over), so that all start sending at the same instant. */
static uint64_t start_together(uint64_t setup_end)
{
    __atomic_fetch_add(&G.S->ready, 1, __ATOMIC_SEQ_CST);
    uint64_t start;
    while (!(start = __atomic_load_n(&G.S->start_ns, __ATOMIC_SEQ_CST))) {
        uint64_t now = now_ns(), zero = 0;
        if ((__atomic_load_n(&G.S->ready, __ATOMIC_SEQ_CST) == G.procs || now > setup_end) &&
            __atomic_compare_exchange_n(&G.S->start_ns, &zero, now, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
            G.S->rss1 = total_rss(); /* set by the one that starts everyone */
            G.S->cpu0 = pids_cpu_s();
        } else
            service(5);
    }
    return start;
}

/* Clients whose backoff is over connect again. */
static void retry_due(struct client *cl, int n, uint64_t now)
{
    for (int i = 0; i < n; i++)
        if (cl[i].phase == P_WAIT && cl[i].retry_at <= now) {
            G.R->retries++;
            start_client(&cl[i]);
        }
}

/* storm: SIGKILL to the process named on the command line, and nothing else.
 * Every client then on that gateway (the first --gw) is cut. */
static void storm_kill(struct client *cl, int n)
{
    int pid = G.kill_pid;
    if (G.kill_pidfile) {
        FILE *f = fopen(G.kill_pidfile, "r");
        if (!f || fscanf(f, "%d", &pid) != 1) die("--kill-pidfile: no pid in that file");
        fclose(f);
    }
    if (pid <= 1) die("storm: no process to kill (--kill-pid or --kill-pidfile)");
    if (kill(pid, SIGKILL)) die("storm: kill failed (is that pid alive and ours?)");
    G.R->kill_ns = now_ns();
    for (int i = 0; i < n; i++)
        if (cl[i].phase != P_DEAD && cl[i].gw % G.ngw == 0) {
            cl[i].cut = true;
            G.R->cut++;
        }
    if (!G.json)
        fprintf(stderr, "\nparley-load: killed pid %d holding %d clients\n", pid, G.R->cut);
}

/* The scenario for this worker's clients (cl[0..n)), results into G.R. */
static void run_worker(struct client *cl, int n)
{
    struct wres *R = G.R;
    lhist_init(&R->lat);
    lhist_init(&R->join_lat);
    lhist_init(&R->rlat);
    lhist_init(&R->rec_lat);
    R->clients = n;
    G.ep = epoll_create1(EPOLL_CLOEXEC);
    srand((unsigned)now_ns() ^ (unsigned)getpid());
    /* Set-up: connect, authenticate, join (bounded), at --connect-rate
     * (this worker's share of it) or all at once. */
    uint64_t t0 = now_ns(), setup_end = t0 + (uint64_t)(G.setup_s * 1e9), counted = 0;
    double per_s = G.connect_rate / G.procs;
    int open = 0, started = 0;
    while (open < n && now_ns() < setup_end) {
        uint64_t due =
            per_s > 0 ? (uint64_t)((double)(now_ns() - t0) / 1e9 * per_s) + 1 : (uint64_t)n;
        while (started < n && (uint64_t)started < due)
            start_client(&cl[started++]);
        service(per_s > 0 ? 1 : 10);
        retry_due(cl, n, now_ns());
        /* Counting is O(clients): every 20 ms, not every turn (at 15,000 per
         * worker a count per 1 ms turn cost more CPU than the sockets). */
        if (now_ns() - counted < 20000000ull) continue;
        counted = now_ns();
        open = 0;
        for (int i = 0; i < n; i++)
            open += cl[i].phase == P_OPEN;
    }
    R->open = open;
    if (open < n) fprintf(stderr, "parley-load: only %d of %d clients joined\n", open, n);
    uint64_t start = start_together(setup_end);

    uint64_t interval = G.rate > 0 ? (uint64_t)(1e9 / G.rate) : 0;
    uint64_t read_interval = G.read_rate > 0 ? (uint64_t)(1e9 / G.read_rate) : 0;
    uint64_t stop = start + (uint64_t)(G.duration * 1e9);
    uint64_t drop_every = (uint64_t)(G.reconnect_every * 1e9);
    for (int i = 0; i < n; i++) {
        if (interval) cl[i].next_send = start + rand64() % interval;
        if (read_interval) cl[i].next_read = start + rand64() % read_interval;
        cl[i].next_drop = start + drop_every / 2 + rand64() % drop_every;
    }
    uint64_t last_progress = start, total_sent = 0;
    uint64_t kill_at = start + (uint64_t)(G.kill_after * 1e9);
    bool acks_done = false; /* this worker's share of S->acks_done is counted */
    for (;;) {
        uint64_t now = now_ns();
        if (G.scenario == S_STORM && !R->kill_ns && now >= kill_at && now < stop) storm_kill(cl, n);
        /* storm: once every cut client is back, a little more load, then stop */
        if (G.scenario == S_STORM && R->kill_ns && R->cut && R->storm_recovered == R->cut &&
            R->last_recovered_ns + STORM_SETTLE_MS * 1000000ull < stop)
            stop = R->last_recovered_ns + STORM_SETTLE_MS * 1000000ull;
        bool running = now < stop;
        retry_due(cl, n, now);
        if (!running) {
            /* Drain: every command answered in every worker (then each room's
             * highest acknowledged seq is final), and every stream here
             * complete up to it; or time is up. */
            bool done = true;
            for (int i = 0; i < n && done; i++) {
                const struct client *c = &cl[i];
                if (c->phase != P_DEAD && (c->acked + c->errors + c->rejected < c->sent ||
                                           c->reads_acked + c->read_errors < c->reads))
                    done = false;
            }
            if (done && !acks_done) {
                acks_done = true;
                __atomic_fetch_add(&G.S->acks_done, 1, __ATOMIC_SEQ_CST);
            }
            done = done && __atomic_load_n(&G.S->acks_done, __ATOMIC_SEQ_CST) == G.procs;
            for (int i = 0; i < n && done; i++) {
                const struct client *c = &cl[i];
                if (c->phase != P_DEAD && c->joined_once &&
                    (seqcheck_missing(&c->sc, G.S->room_max_seq[c->room] + 1) ||
                     (G.proto == PR_NCHAN && nchan_missing(c))))
                    done = false;
            }
            if (done || now > stop + DRAIN_MS * 1000000ull) break;
        }
        for (int i = 0; running && i < n; i++) {
            struct client *c = &cl[i];
            if (G.scenario == S_RECONNECT && c->phase == P_OPEN && now >= c->next_drop &&
                c->acked + c->errors + c->rejected == c->sent) {
                /* Drop and come back through the other gateway with since. */
                drop(c);
                c->gw++;
                c->reconnects++;
                c->next_drop = now + drop_every;
                start_client(c);
                continue;
            }
            if (c->phase == P_OPEN && read_interval && G.proto == PR_PARLEY && c->joined_once) {
                bool sent_read = false;
                while (c->next_read <= now) {
                    /* "read up to" the highest seq this client has without a gap */
                    int64_t id = READ_ID_BASE + (int64_t)c->reads;
                    c->read_t0[id % 64] = now_ns();
                    send_cmd(c,
                             "{\"id\":%" PRId64 ",\"op\":\"read\",\"room\":\"%s\",\"seq\":%" PRId64
                             "}",
                             id, G.rooms[c->room], c->sc.next - 1);
                    c->reads++;
                    c->next_read += read_interval;
                    sent_read = true;
                }
                if (sent_read) flush_out(c);
            }
            if (c->phase != P_OPEN || !interval) continue;
            bool any = false;
            /* at most SEND_WINDOW unanswered: a slow server slows the sender */
            while (c->next_send <= now && c->next_id - c->unans_lo < SEND_WINDOW) {
                write_send(c, c->next_id);
                c->next_id++;
                c->sent++;
                total_sent++;
                c->next_send += interval;
                any = true;
            }
            if (any) flush_out(c);
        }
        R->sent = total_sent; /* for worker 0's progress line */
        service(1);
        if (G.k == 0 && !G.json && now - last_progress > 1000000000ull) {
            last_progress = now;
            int conns = 0, waiting = 0;
            uint64_t all_sent = 0, all_got = 0;
            for (int i = 0; i < n; i++) {
                conns += cl[i].phase == P_OPEN;
                waiting += cl[i].phase == P_WAIT;
            }
            for (int w = 0; w < G.procs; w++) {
                all_sent += __atomic_load_n(&G.S->w[w].sent, __ATOMIC_RELAXED);
                all_got += __atomic_load_n(&G.S->w[w].lat.count, __ATOMIC_RELAXED);
            }
            fprintf(stderr,
                    "\r[%5.1fs] open %d (backing off %d)%s sent %" PRIu64 " delivered %" PRIu64
                    " p99 %.1f ms%s   ",
                    (double)(now - start) / 1e9, conns, waiting, G.procs > 1 ? " (worker 0)" : "",
                    all_sent, all_got, (double)lhist_percentile(&R->lat, 99) / 1000.0,
                    G.procs > 1 ? " (worker 0)" : "");
        }
    }
    if (G.scenario == S_STORM) G.S->run_s = (double)(stop - start) / 1e9;
    /* The gateways' CPU over the send window ends when the last worker is
     * past its drain, before any closes its connections. */
    if (__atomic_add_fetch(&G.S->drained, 1, __ATOMIC_SEQ_CST) == G.procs) {
        G.S->cpu1 = pids_cpu_s();
        G.S->cpu1_ns = now_ns();
    }
    for (uint64_t until = now_ns() + 2000000000ull;
         __atomic_load_n(&G.S->drained, __ATOMIC_SEQ_CST) < G.procs && now_ns() < until;)
        service(5);
    for (int i = 0; i < n; i++) {
        struct client *c = &cl[i];
        R->acked += c->acked;
        R->errors += c->errors;
        R->rejected += c->rejected;
        R->delivered += c->sc.delivered - c->events;
        R->reads += c->reads;
        R->reads_acked += c->reads_acked;
        R->dups += c->sc.duplicates;
        R->ooo += c->sc.out_of_order;
        R->dead += c->phase == P_DEAD;
        R->reconnects += c->reconnects;
        R->unrecovered += c->unrecovered;
        if (c->joined_once)
            R->lost +=
                seqcheck_missing(&c->sc, G.S->room_max_seq[c->room] + 1) + c->sc.beyond_window;
        if (G.proto == PR_NCHAN && c->joined_once) {
            R->lost += nchan_missing(c);
            senders_totals(&c->from, &R->delivered, &R->dups, &R->ooo);
            R->errors += c->from.unknown;
        }
        senders_free(&c->from);
    }
    R->sent = total_sent;
    R->cpu_s = self_cpu_s();
    for (int i = 0; i < n; i++) {
        drop(&cl[i]);
        free(cl[i].rbuf);
        free(cl[i].wbuf);
    }
    close(G.ep);
}

/* Adds worker w's results into the total. */
static void merge(struct wres *t, const struct wres *w)
{
    t->sent += w->sent;
    t->acked += w->acked;
    t->errors += w->errors;
    t->delivered += w->delivered;
    t->dups += w->dups;
    t->ooo += w->ooo;
    t->lost += w->lost;
    t->dead += w->dead;
    t->reconnects += w->reconnects;
    t->unrecovered += w->unrecovered;
    t->reads += w->reads;
    t->reads_acked += w->reads_acked;
    t->masked_seen += w->masked_seen;
    t->rejected += w->rejected;
    t->leaks += w->leaks;
    t->clients += w->clients;
    t->open += w->open;
    t->cpu_s += w->cpu_s;
    lhist_merge(&t->lat, &w->lat);
    lhist_merge(&t->join_lat, &w->join_lat);
    lhist_merge(&t->rlat, &w->rlat);
    lhist_merge(&t->rec_lat, &w->rec_lat);
    t->retries += w->retries;
    t->refusals += w->refusals;
    t->hinted += w->hinted;
    t->resent += w->resent;
    t->cut += w->cut;
    t->reauthed += w->reauthed;
    t->storm_recovered += w->storm_recovered;
    if (w->kill_ns) t->kill_ns = w->kill_ns;
    if (w->last_recovered_ns > t->last_recovered_ns) t->last_recovered_ns = w->last_recovered_ns;
    for (int i = 0; i < MAX_CODES && w->codes[i][0]; i++)
        for (int j = 0; j < MAX_CODES; j++) {
            if (!t->codes[j][0]) snprintf(t->codes[j], sizeof t->codes[j], "%s", w->codes[i]);
            if (!strcmp(t->codes[j], w->codes[i])) {
                t->code_count[j] += w->code_count[i];
                break;
            }
        }
}

int main(int argc, char **argv)
{
    const char *fixture = NULL;
    parse_args(argc, argv, &fixture);
    /* Each worker may use the whole per-process file limit. */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    int n = 0;
    struct client *cl = read_fixture(fixture, &n);
    G.members = calloc((size_t)G.nrooms, sizeof *G.members);
    if (!G.members) die("out of memory");
    if (G.zipf >= 0) {
        /* Every room is open to the fixture's workspace: deal the clients
         * over them again with the chosen sizes. */
        int *room_of = malloc(sizeof *room_of * (size_t)n);
        if (!room_of || sizes_zipf(n, G.nrooms, G.zipf, G.members))
            die("--zipf needs at least as many clients as rooms");
        sizes_assign(n, G.nrooms, G.members, room_of);
        for (int i = 0; i < n; i++)
            cl[i].room = room_of[i];
        free(room_of);
        memset(G.members, 0, sizeof *G.members * (size_t)G.nrooms);
    }
    for (int i = 0; i < n; i++)
        if (cl[i].room < G.nrooms) G.members[cl[i].room]++;
    if (G.scenario == S_STORM) /* everyone on the gateway that will die */
        for (int i = 0; i < n; i++)
            cl[i].gw = 0;
    G.S = mmap(NULL, sizeof *G.S, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (G.S == MAP_FAILED) die("mmap");
    if (G.proto == PR_NCHAN) nchan_prepare(cl, n);
    G.nonce = (unsigned long long)now_ns() ^ ((unsigned long long)getpid() << 40);
    long rss0 = total_rss();

    /* Worker k takes clients k, k + procs, ...; with one, this process is it. */
    pid_t kids[MAX_PROCS];
    int nkids = 0, rc = 0;
    for (int k = 0; k < G.procs; k++) {
        pid_t pid = G.procs > 1 ? fork() : 0;
        if (pid < 0) die("fork");
        if (pid > 0) {
            kids[nkids++] = pid;
            continue;
        }
        G.k = k;
        G.R = &G.S->w[k];
        int m = 0;
        for (int i = 0; i < n; i++) {
            if (i % G.procs == k)
                cl[m++] = cl[i];
            else
                free(cl[i].token);
        }
        run_worker(cl, m);
        for (int i = 0; i < m; i++)
            free(cl[i].token);
        if (G.procs == 1) break;
        free(cl);
        free(G.members);
        munmap(G.S, sizeof *G.S);
        exit(0);
    }
    for (int i = 0; i < nkids; i++) {
        int st;
        if (waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st)) rc = 1;
    }
    if (G.procs > 1)
        for (int i = 0; i < n; i++)
            free(cl[i].token);
    free(cl);

    struct wres T;
    memset(&T, 0, sizeof T);
    lhist_init(&T.lat);
    lhist_init(&T.join_lat);
    lhist_init(&T.rlat);
    lhist_init(&T.rec_lat);
    for (int k = 0; k < G.procs; k++)
        merge(&T, &G.S->w[k]);
    uint64_t want = 0, masked_want = 0;
    for (int r = 0; r < G.nrooms; r++) {
        want += G.S->acked_in_room[r] * (uint64_t)G.members[r];
        masked_want += G.S->masked_in_room[r] * (uint64_t)G.members[r];
    }
    double secs = G.S->run_s > 0 ? G.S->run_s : G.duration;
    int largest = 0;
    for (int r = 0; r < G.nrooms; r++)
        if (G.members[r] > largest) largest = G.members[r];
    double kb_per_conn = G.npids && T.open ? (double)(G.S->rss1 - rss0) / T.open : -1;
    if (G.csv) {
        FILE *cf = fopen(G.csv, "w");
        if (!cf) die("cannot write --csv file");
        lhist_write_csv(&T.lat, cf);
        fclose(cf);
    }
    char errs[1024] = "";
    size_t el = 0;
    for (int i = 0; i < MAX_CODES && T.codes[i][0]; i++)
        el += (size_t)snprintf(errs + el, sizeof errs - el, "%s\"%s\":%llu", el ? "," : "",
                               T.codes[i], (unsigned long long)T.code_count[i]);
    /* moderation: every delivery of a masked send arrives masked, nothing leaks */
    bool mod_bad = G.scenario == S_MODERATION && (T.leaks || T.masked_seen != masked_want);
    /* storm: the time from the kill until the last cut client had recovered */
    bool storm_bad = G.scenario == S_STORM && (!T.kill_ns || !T.cut || T.storm_recovered < T.cut);
    double storm_ms =
        G.scenario == S_STORM && !storm_bad ? (double)(T.last_recovered_ns - T.kill_ns) / 1e6 : -1;
#define MS(h, p) ((double)lhist_percentile(&(h), p) / 1000.0)
    if (G.json) {
        printf("{\"scenario\":\"%s\",\"clients\":%d,\"joined\":%d,\"rooms\":%d,"
               "\"largest_room\":%d,\"gateways\":%d,"
               "\"procs\":%d,\"rate\":%g,\"duration\":%g,\"sent\":%" PRIu64 ",\"acked\":%" PRIu64
               ",\"errors\":%" PRIu64 ",\"errors_by_code\":{%s},\"delivered\":%" PRIu64
               ",\"expected\":%" PRIu64 ",\"lost\":%" PRIu64 ",\"dups\":%" PRIu64
               ",\"out_of_order\":%" PRIu64 ",\"gaps\":%" PRIu64 ",\"dead\":%" PRIu64
               ",\"reconnects\":%" PRIu64 ",\"unrecovered\":%" PRIu64
               ",\"acked_per_s\":%.1f,\"delivered_per_s\":%.1f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,"
               "\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"join_p99_ms\":%.3f,"
               "\"kb_per_connection\":%.2f,\"generator_cpu_s\":%.3f,\"read_rate\":%g,"
               "\"reads\":%" PRIu64 ",\"reads_acked\":%" PRIu64 ",\"reads_acked_per_s\":%.1f,"
               "\"read_p50_ms\":%.3f,\"read_p99_ms\":%.3f,\"rejected\":%" PRIu64
               ",\"masked_seen\":%" PRIu64 ",\"masked_expected\":%" PRIu64 ",\"leaks\":%" PRIu64
               ",\"pids_cpu_s\":%.3f",
               scenario_names[G.scenario], T.clients, T.open, G.nrooms, largest, G.ngw, G.procs,
               G.rate, G.duration, T.sent, T.acked, T.errors, errs, T.delivered, want, T.lost,
               T.dups, T.ooo, T.lost, T.dead, T.reconnects, T.unrecovered, (double)T.acked / secs,
               (double)T.delivered / secs, MS(T.lat, 50), MS(T.lat, 90), MS(T.lat, 99),
               MS(T.lat, 99.9), MS(T.lat, 100), MS(T.join_lat, 99), kb_per_conn, T.cpu_s,
               G.read_rate, T.reads, T.reads_acked, (double)T.reads_acked / secs, MS(T.rlat, 50),
               MS(T.rlat, 99), T.rejected, T.masked_seen, masked_want, T.leaks,
               G.npids && G.S->cpu1 > 0 ? G.S->cpu1 - G.S->cpu0 : -1.0);
        printf(",\"retries\":%" PRIu64 ",\"refusals\":%" PRIu64 ",\"hinted\":%" PRIu64
               ",\"resent\":%" PRIu64 ",\"storm_cut\":%d,\"storm_reauthed\":%d"
               ",\"storm_recovered\":%d,\"storm_recover_ms\":%.1f,\"storm_recover_p50_ms\":%.1f"
               ",\"storm_recover_p99_ms\":%.1f,\"window_mono_s\":[%.6f,%.6f]}\n",
               T.retries, T.refusals, T.hinted, T.resent, T.cut, T.reauthed, T.storm_recovered,
               storm_ms, MS(T.rec_lat, 50), MS(T.rec_lat, 99), (double)G.S->start_ns / 1e9,
               (double)G.S->cpu1_ns / 1e9);
    } else {
        printf("\nscenario %s: %d clients (%d joined), %d rooms (largest %d), %d gateways, "
               "%d process%s, %g msg/s each, %gs\n",
               scenario_names[G.scenario], T.clients, T.open, G.nrooms, largest, G.ngw, G.procs,
               G.procs > 1 ? "es" : "", G.rate, G.duration);
        printf("sent %" PRIu64 " acked %" PRIu64 " (%.0f/s) errors %" PRIu64 " {%s}\n", T.sent,
               T.acked, (double)T.acked / secs, T.errors, errs);
        printf("delivered %" PRIu64 " of %" PRIu64 " expected (%.0f/s)\n", T.delivered, want,
               (double)T.delivered / secs);
        printf("latency ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f; join p99 %.1f ms\n",
               MS(T.lat, 50), MS(T.lat, 90), MS(T.lat, 99), MS(T.lat, 99.9), MS(T.lat, 100),
               MS(T.join_lat, 99));
        if (G.scenario == S_RECONNECT) printf("reconnects %" PRIu64 "\n", T.reconnects);
        if (T.retries || T.refusals)
            printf("reconnections %" PRIu64 " after losses or refusals; %" PRIu64
                   " refused busy/unavailable (%" PRIu64 " with a hint); %" PRIu64
                   " sends resent\n",
                   T.retries, T.refusals, T.hinted, T.resent);
        if (G.scenario == S_STORM)
            printf("storm: %d clients cut, %d authenticated again, %d recovered with since; "
                   "all recovered in %.0f ms (p50 %.0f ms, p99 %.0f ms per client)\n",
                   T.cut, T.reauthed, T.storm_recovered, storm_ms, MS(T.rec_lat, 50),
                   MS(T.rec_lat, 99));
        if (G.scenario == S_MODERATION)
            printf("guidelines: %" PRIu64 " sends rejected, %" PRIu64 " of %" PRIu64
                   " deliveries masked, %" PRIu64 " leaks\n",
                   T.rejected, T.masked_seen, masked_want, T.leaks);
        if (G.read_rate > 0)
            printf("read reports %" PRIu64 ", answered %" PRIu64
                   " (%.0f/s); p50 %.2f ms p99 %.2f ms\n",
                   T.reads, T.reads_acked, (double)T.reads_acked / secs, MS(T.rlat, 50),
                   MS(T.rlat, 99));
        if (kb_per_conn >= 0) printf("gateway memory per connection: %.2f KB\n", kb_per_conn);
        if (storm_bad)
            printf("!!! STORM: %d of %d cut clients recovered%s !!!\n", T.storm_recovered, T.cut,
                   T.kill_ns ? "" : " (no kill happened)");
        if (T.lost || T.dups || T.ooo || T.dead || T.unrecovered || mod_bad)
            printf("!!! LOST %" PRIu64 " DUPLICATES %" PRIu64 " OUT-OF-ORDER %" PRIu64
                   " DEAD %" PRIu64 " UNRECOVERED %" PRIu64 " GUIDELINE LEAKS %" PRIu64 " !!!\n",
                   T.lost, T.dups, T.ooo, T.dead, T.unrecovered,
                   T.leaks + (T.masked_seen != masked_want));
    }
    if (T.lost || T.dups || T.ooo || T.dead || T.unrecovered || T.open < T.clients || mod_bad ||
        storm_bad)
        rc = 1;
    free(G.members);
    munmap(G.S, sizeof *G.S);
    return rc;
}
