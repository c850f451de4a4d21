/*
 * parley-load - a bounded load generator for parleyd (loopback only).
 *
 * Opens one WebSocket per token of a fixture file (made by
 * `parleyd admin load-fixture <people> <rooms>`), spreads them over the given
 * gateways, authenticates, joins each to its room, sends at a fixed rate per
 * client for a fixed duration, then waits for the last deliveries and
 * reports: sends, acks, deliveries, lost/duplicated/out-of-order deliveries
 * (checked by room seq) and end-to-end latency percentiles (monotonic clock:
 * the send time travels in the body).
 *
 * Every loop is bounded: --duration caps sending, a drain of at most 5 s
 * follows, and every address must be on 127.0.0.0/8.
 *
 *   parley-load --fixture F --gw 127.0.0.1:8081 [--gw ...] [--rate 5]
 *               [--duration 10] [--body 64] [--sources 4] [--json]
 */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_GW 16
#define RBUF_MAX (4 << 20)
#define DRAIN_MS 5000
#define MAX_SAMPLES (50u << 20)

enum phase { P_CONNECTING, P_HANDSHAKE, P_AUTH, P_JOIN, P_OPEN, P_DEAD };

struct client {
    int fd;              /* socket */
    int idx;             /* client number */
    int room;            /* room index */
    enum phase phase;    /* where it is */
    char *token;         /* access token */
    unsigned char *rbuf; /* received bytes not yet parsed */
    size_t rlen, rcap;
    unsigned char *wbuf; /* bytes not yet written */
    size_t wlen, wcap;
    uint64_t next_send; /* monotonic ns of the next send */
    int64_t last_seq;   /* last message seq seen (-1: none yet) */
    uint64_t sent, acked, errors, delivered, gaps, dups;
    int64_t next_id; /* command id */
};

static struct {
    struct sockaddr_in gw[MAX_GW];
    int ngw, sources, body, json;
    double rate, duration;
    char rooms[4096][40];
    int nrooms;
    int *members; /* per room */
    uint64_t *acked_in_room;
    uint32_t *lat;            /* delivery latencies in µs */
    unsigned long long nonce; /* makes client_msg_ids unique per run */
    size_t nlat;
} G;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *m)
{
    fprintf(stderr, "parley-load: %s\n", m);
    exit(2);
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
    unsigned char h[14];
    size_t hl = 0;
    h[hl++] = 0x81;
    if (n < 126) {
        h[hl++] = 0x80 | (unsigned char)n;
    } else if (n < 65536) {
        h[hl++] = 0x80 | 126;
        h[hl++] = (unsigned char)(n >> 8);
        h[hl++] = (unsigned char)n;
    } else {
        h[hl++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[hl++] = (unsigned char)(n >> (8 * i));
    }
    uint32_t r = (uint32_t)rand();
    unsigned char mask[4] = {(unsigned char)r, (unsigned char)(r >> 8), (unsigned char)(r >> 16),
                             (unsigned char)(r >> 24)};
    memcpy(h + hl, mask, 4);
    hl += 4;
    wappend(c, h, hl);
    size_t off = c->wlen;
    wappend(c, p, n);
    for (size_t i = 0; i < n; i++)
        c->wbuf[off + i] ^= mask[i & 3];
}

static void flush_out(int ep, struct client *c)
{
    while (c->wlen) {
        ssize_t w = write(c->fd, c->wbuf, c->wlen);
        if (w < 0) {
            if (errno == EAGAIN) break;
            c->phase = P_DEAD;
            return;
        }
        memmove(c->wbuf, c->wbuf + w, c->wlen - (size_t)w);
        c->wlen -= (size_t)w;
    }
    struct epoll_event ev = {.events = EPOLLIN | (c->wlen ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
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

static void on_object(struct client *c, const cJSON *o)
{
    const cJSON *push = cJSON_GetObjectItemCaseSensitive(o, "push");
    if (cJSON_IsString(push)) {
        if (strcmp(push->valuestring, "message")) return;
        int64_t seq = (int64_t)cJSON_GetObjectItemCaseSensitive(o, "seq")->valuedouble;
        const cJSON *body = cJSON_GetObjectItemCaseSensitive(o, "body");
        if (c->last_seq >= 0) {
            if (seq <= c->last_seq)
                c->dups++;
            else if (seq != c->last_seq + 1)
                c->gaps += (uint64_t)(seq - c->last_seq - 1);
        }
        if (seq > c->last_seq) c->last_seq = seq;
        c->delivered++;
        if (cJSON_IsString(body)) {
            uint64_t t = strtoull(body->valuestring, NULL, 10);
            uint64_t now = now_ns();
            if (t && now > t && G.nlat < MAX_SAMPLES)
                G.lat[G.nlat++] = (uint32_t)((now - t) / 1000);
        }
        return;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(o, "ok");
    if (!cJSON_IsNumber(id)) return;
    if (!ok) {
        c->errors++;
        if (c->phase != P_OPEN) {
            char *s = cJSON_PrintUnformatted(o);
            fprintf(stderr, "client %d: %s\n", c->idx, s);
            free(s);
            c->phase = P_DEAD;
        }
        return;
    }
    if (c->phase == P_AUTH) {
        c->phase = P_JOIN;
        send_cmd(c, "{\"id\":2,\"op\":\"join\",\"room\":\"%s\"}", G.rooms[c->room]);
    } else if (c->phase == P_JOIN) {
        c->last_seq = (int64_t)cJSON_GetObjectItemCaseSensitive(ok, "last_seq")->valuedouble;
        c->phase = P_OPEN;
    } else {
        c->acked++;
        G.acked_in_room[c->room]++;
    }
}

static void on_frame(struct client *c, const char *p, size_t n)
{
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

static void on_readable(int ep, struct client *c)
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
            c->phase = P_DEAD;
            return;
        }
        if (r < 0) break;
        c->rlen += (size_t)r;
    }
    size_t off = 0;
    if (c->phase == P_HANDSHAKE) {
        unsigned char *e = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
        if (!e) return;
        if (c->rlen < 12 || memcmp(c->rbuf + 9, "101", 3)) {
            c->phase = P_DEAD;
            return;
        }
        off = (size_t)(e - c->rbuf) + 4;
        c->phase = P_AUTH;
        send_cmd(c, "{\"id\":1,\"op\":\"auth\",\"token\":\"%s\"}", c->token);
    }
    while (c->rlen - off >= 2) {
        unsigned char *h = c->rbuf + off;
        uint64_t len = h[1] & 0x7f;
        size_t hl = 2;
        if (len == 126) {
            if (c->rlen - off < 4) break;
            len = ((uint64_t)h[2] << 8) | h[3];
            hl = 4;
        } else if (len == 127) {
            if (c->rlen - off < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++)
                len = (len << 8) | h[2 + i];
            hl = 10;
        }
        if (c->rlen - off < hl + len) break;
        int op = h[0] & 0x0f;
        if (op == 1)
            on_frame(c, (const char *)h + hl, (size_t)len);
        else if (op == 8)
            c->phase = P_DEAD;
        off += hl + (size_t)len;
    }
    memmove(c->rbuf, c->rbuf + off, c->rlen - off);
    c->rlen -= off;
    flush_out(ep, c);
}

static void start_client(int ep, struct client *c)
{
    struct sockaddr_in *gw = &G.gw[c->idx % G.ngw];
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) die("socket (raise ulimit -n?)");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)(c->idx % G.sources));
    if (bind(c->fd, (struct sockaddr *)&src, sizeof src)) die("bind to a 127.0.0.x source");
    if (connect(c->fd, (struct sockaddr *)gw, sizeof *gw) && errno != EINPROGRESS) die("connect");
    c->phase = P_HANDSHAKE;
    c->last_seq = -1;
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: parley.v1\r\n\r\n");
    wappend(c, req, (size_t)n);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    if (!G.nlat) return 0;
    size_t i = (size_t)(p / 100.0 * (double)(G.nlat - 1) + 0.5);
    return G.lat[i] / 1000.0;
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

int main(int argc, char **argv)
{
    const char *fixture = NULL;
    G.rate = 5;
    G.duration = 10;
    G.body = 64;
    G.sources = 4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            G.json = 1;
            continue;
        }
        if (!v) die("option needs a value");
        if (!strcmp(a, "--fixture"))
            fixture = v;
        else if (!strcmp(a, "--gw"))
            parse_gw(v);
        else if (!strcmp(a, "--rate"))
            G.rate = atof(v);
        else if (!strcmp(a, "--duration"))
            G.duration = atof(v);
        else if (!strcmp(a, "--body"))
            G.body = atoi(v);
        else if (!strcmp(a, "--sources"))
            G.sources = atoi(v);
        else
            die("unknown option");
        i++;
    }
    if (!fixture || !G.ngw) die("usage: parley-load --fixture F --gw 127.0.0.1:PORT [...]");
    if (G.rate <= 0 || G.rate > 10000 || G.duration <= 0 || G.duration > 3600)
        die("bad rate/duration");
    if (G.body < 24 || G.body > 60000 || G.sources < 1 || G.sources > 250) die("bad body/sources");

    FILE *f = fopen(fixture, "r");
    if (!f) die("cannot open fixture");
    struct client *cl = NULL;
    int n = 0, cap = 0;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        char tok[128];
        int room;
        if (!strncmp(line, "room ", 5) && G.nrooms < 4096) {
            sscanf(line + 5, "%39s", G.rooms[G.nrooms++]);
        } else if (sscanf(line, "token %d %127s", &room, tok) == 2) {
            if (n == cap) cl = realloc(cl, sizeof *cl * (size_t)(cap = cap ? cap * 2 : 256));
            memset(&cl[n], 0, sizeof cl[n]);
            cl[n].idx = n;
            cl[n].room = room;
            cl[n].token = strdup(tok);
            n++;
        }
    }
    fclose(f);
    if (!n || !G.nrooms) die("fixture has no tokens or rooms");
    G.members = calloc((size_t)G.nrooms, sizeof *G.members);
    G.acked_in_room = calloc((size_t)G.nrooms, sizeof *G.acked_in_room);
    G.lat = malloc(sizeof *G.lat * MAX_SAMPLES);
    for (int i = 0; i < n; i++)
        G.members[cl[i].room]++;

    int ep = epoll_create1(0);
    srand((unsigned)now_ns());
    G.nonce = (unsigned long long)now_ns() ^ ((unsigned long long)getpid() << 40);
    for (int i = 0; i < n; i++)
        start_client(ep, &cl[i]);

    uint64_t t0 = now_ns(), setup_deadline = t0 + 30000000000ull;
    int open = 0;
    struct epoll_event evs[512];
    /* Phase 1: connect, auth, join (at most 30 s). */
    while (open < n && now_ns() < setup_deadline) {
        int k = epoll_wait(ep, evs, 512, 10);
        for (int i = 0; i < k; i++) {
            struct client *c = evs[i].data.ptr;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(ep, c);
            else
                flush_out(ep, c);
        }
        open = 0;
        for (int i = 0; i < n; i++)
            open += cl[i].phase == P_OPEN;
    }
    if (open < n) fprintf(stderr, "parley-load: only %d of %d clients joined\n", open, n);
    uint64_t interval = (uint64_t)(1e9 / G.rate);
    uint64_t start = now_ns(), stop = start + (uint64_t)(G.duration * 1e9);
    for (int i = 0; i < n; i++)
        cl[i].next_send = start + (uint64_t)rand() % interval;
    char *body = malloc((size_t)G.body + 1);
    /* Phase 2: send for --duration; phase 3: drain at most DRAIN_MS. */
    uint64_t last_progress = start, total_sent = 0;
    for (;;) {
        uint64_t now = now_ns();
        bool sending = now < stop;
        if (!sending) {
            uint64_t acked = 0, sent = 0, want = 0, got = 0;
            for (int i = 0; i < n; i++) {
                acked += cl[i].acked + cl[i].errors;
                sent += cl[i].sent;
                got += cl[i].delivered;
            }
            for (int r = 0; r < G.nrooms; r++)
                want += G.acked_in_room[r] * (uint64_t)G.members[r];
            if ((acked == sent && got >= want) || now > stop + DRAIN_MS * 1000000ull) break;
        }
        if (sending) {
            for (int i = 0; i < n; i++) {
                struct client *c = &cl[i];
                if (c->phase != P_OPEN) continue;
                bool any = false;
                while (c->next_send <= now) {
                    int bl = snprintf(body, (size_t)G.body + 1, "%" PRIu64 " ", now_ns());
                    memset(body + bl, 'x', (size_t)(G.body - bl));
                    body[G.body] = '\0';
                    send_cmd(c,
                             "{\"id\":%" PRId64 ",\"op\":\"send\",\"room\":\"%s\","
                             "\"client_msg_id\":\"%llx-%d-%" PRId64 "\",\"body\":\"%s\"}",
                             c->next_id + 3, G.rooms[c->room], G.nonce, c->idx, c->next_id, body);
                    c->next_id++;
                    c->sent++;
                    total_sent++;
                    c->next_send += interval;
                    any = true;
                }
                if (any) flush_out(ep, c);
            }
        }
        int k = epoll_wait(ep, evs, 512, 1);
        for (int i = 0; i < k; i++) {
            struct client *c = evs[i].data.ptr;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(ep, c);
            else
                flush_out(ep, c);
        }
        if (!G.json && now - last_progress > 1000000000ull) {
            last_progress = now;
            fprintf(stderr, "\r[%5.1fs] sent %" PRIu64 " samples %zu", (now - start) / 1e9,
                    total_sent, G.nlat);
        }
    }
    double elapsed = (now_ns() - start) / 1e9;
    uint64_t sent = 0, acked = 0, errors = 0, got = 0, gaps = 0, dups = 0, want = 0, dead = 0;
    for (int i = 0; i < n; i++) {
        sent += cl[i].sent;
        acked += cl[i].acked;
        errors += cl[i].errors;
        got += cl[i].delivered;
        gaps += cl[i].gaps;
        dups += cl[i].dups;
        dead += cl[i].phase == P_DEAD;
    }
    for (int r = 0; r < G.nrooms; r++)
        want += G.acked_in_room[r] * (uint64_t)G.members[r];
    qsort(G.lat, G.nlat, sizeof *G.lat, cmp_u32);
    uint64_t lost = want > got ? want - got : 0;
    double send_s = G.duration;
    if (G.json) {
        printf(
            "{\"clients\":%d,\"rooms\":%d,\"gateways\":%d,\"rate\":%g,\"duration\":%g,"
            "\"sent\":%" PRIu64 ",\"acked\":%" PRIu64 ",\"errors\":%" PRIu64
            ",\"delivered\":%" PRIu64 ",\"expected\":%" PRIu64 ",\"lost\":%" PRIu64
            ",\"gaps\":%" PRIu64 ",\"dups\":%" PRIu64 ",\"dead\":%" PRIu64
            ",\"acked_per_s\":%.1f,\"delivered_per_s\":%.1f,"
            "\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f}\n",
            n, G.nrooms, G.ngw, G.rate, G.duration, sent, acked, errors, got, want, lost, gaps,
            dups, dead, acked / send_s, got / send_s, pct(50), pct(90), pct(99), pct(99.9),
            pct(100));
    } else {
        printf("\nclients %d rooms %d gateways %d rate %g/s each for %gs (%.1fs incl. drain)\n", n,
               G.nrooms, G.ngw, G.rate, G.duration, elapsed);
        printf("sent %" PRIu64 " acked %" PRIu64 " errors %" PRIu64 " (%.0f acked/s)\n", sent,
               acked, errors, acked / send_s);
        printf("delivered %" PRIu64 " of %" PRIu64 " expected (%.0f/s)\n", got, want, got / send_s);
        printf("latency ms: p50 %.2f p90 %.2f p99 %.2f p99.9 %.2f max %.2f\n", pct(50), pct(90),
               pct(99), pct(99.9), pct(100));
        if (lost || gaps || dups || dead || errors)
            printf("!!! LOST %" PRIu64 " GAPS %" PRIu64 " DUPLICATES %" PRIu64 " DEAD %" PRIu64
                   " ERRORS %" PRIu64 " !!!\n",
                   lost, gaps, dups, dead, errors);
    }
    return (lost || gaps || dups || dead) ? 1 : 0;
}
