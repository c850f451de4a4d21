/*
 * parley-lws-floor - the transport floor peer for the Parley benchmarks.
 *
 * What it is: a minimal libwebsockets broadcast server speaking just enough
 * of the Parley wire protocol (auth, join, send, the `message` push) for
 * `parley-load --proto parley` (chat and bigroom scenarios) to run against it
 * unchanged. One process, one thread, the plain lws event loop. Each push is
 * encoded ONCE into a reference-counted buffer with LWS_PRE headroom; every
 * member's bounded out-queue takes a reference; each SERVER_WRITEABLE does
 * exactly one lws_write (several queued objects packed into one JSON array
 * frame, as parleyd does). Replies go through the same queue, so a sender
 * sees its ack and the pushes in the order they were made.
 *
 * What it does NOT do (so the comparison with parleyd is honest): no token
 * check (auth always succeeds), no workspace/room/permission checks (a room
 * is any string; it exists once joined), no persistence (seqs live in memory
 * and restart at 1), no Redis bus (one process only), no idempotency on
 * client_msg_id, no replay on join with `since` (answered `recovered: true`
 * only when there is nothing to replay), no guidelines or moderation, no
 * per-IP cap, no Origin check, no auth timeout, no hello push, no close-frame
 * reasons on slow-consumer close, no graceful drain on shutdown. Pushes carry
 * `room`, `seq` and `body` only (parleyd's also carry `sender`,
 * `client_msg_id` and `ts`); acks carry `seq` only. Commands are parsed with
 * cJSON, not parleyd's strict decoder.
 *
 * Bounds: a client message (fragments reassembled) of at most MAX_MSG bytes,
 * else the connection is closed with 1009; binary frames close with 1003;
 * UTF-8 is validated by lws. At most MAX_ROOMS rooms in all, MAX_CONN_ROOMS
 * per connection, room names of at most MAX_ROOM_NAME bytes. A room's member
 * array grows with its members (bounded by the connections lws accepts, i.e.
 * the fd limit). Each connection's out-queue is a ring of pointers growing up
 * to OUTQ_MAX_FRAMES entries and OUTQ_MAX_BYTES queued payload bytes (the
 * parleyd defaults); a connection that would exceed either is closed, never
 * grown beyond.
 *
 * Listens on 127.0.0.1 only:  parley-lws-floor PORT
 * prints "lws-floor on PORT" once listening; exits on SIGTERM or SIGINT.
 */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <libwebsockets.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MSG (64u * 1024u)     /* client message, reassembled */
#define MAX_ROOMS 65536u          /* rooms in the process */
#define ROOM_BUCKETS 16384u       /* hash buckets (power of two) */
#define MAX_ROOM_NAME 128u        /* bytes */
#define MAX_CONN_ROOMS 64u        /* rooms per connection (parleyd's default) */
#define OUTQ_MIN_CAP 8u           /* ring entries first allocated (power of two) */
#define OUTQ_MAX_FRAMES 4096u     /* ring entries at most (power of two) */
#define OUTQ_MAX_BYTES (1u << 20) /* queued payload bytes at most */
#define PACK_MAX_FRAMES 512u      /* objects packed into one array frame */
#define PACK_CAP (1u << 20)       /* bytes of one packed frame */
#define RX_KEEP 16384u            /* larger reassembly buffers are freed after use */

/* ---- shared frames ------------------------------------------------------ */

struct frame {
    uint32_t refs;       /* holders; freed when it drops to 0 */
    uint32_t len;        /* payload bytes */
    unsigned char buf[]; /* LWS_PRE headroom, then the payload */
};

static struct frame *frame_alloc(size_t len)
{
    struct frame *f = malloc(sizeof *f + LWS_PRE + len);
    if (!f) return NULL;
    f->refs = 1;
    f->len = (uint32_t)len;
    return f;
}

static unsigned char *frame_data(struct frame *f)
{
    return f->buf + LWS_PRE;
}

static void frame_unref(struct frame *f)
{
    if (f && --f->refs == 0) free(f);
}

/* ---- rooms and connections ------------------------------------------------ */

struct conn;

struct member {
    struct conn *c; /* the connection */
    uint32_t slot;  /* index of this room in c->rooms */
};

struct room {
    struct room *next; /* hash chain */
    int64_t seq;       /* last seq given out */
    struct member *m;  /* members, in join order until one leaves */
    uint32_t n, cap;
    size_t nlen;
    char name[]; /* nlen bytes + NUL */
};

struct croom {
    struct room *r; /* a room this connection joined */
    uint32_t idx;   /* its index in r->m */
};

/* Per-session data: lws allocates and zeroes it for each connection. */
struct conn {
    struct lws *wsi;
    bool live;    /* ESTABLISHED seen, not yet cleaned up */
    bool closing; /* to be closed at the next WRITEABLE */
    bool authed;
    struct frame **ring; /* out-queue: a ring of frame references */
    uint32_t head, count, cap;
    size_t bytes;      /* queued payload bytes */
    unsigned char *rx; /* reassembly of a fragmented message */
    size_t rx_len, rx_cap;
    struct croom *rooms; /* joined rooms */
    uint32_t nrooms, rooms_cap;
};

static struct {
    struct lws_context *ctx;
    struct room *buckets[ROOM_BUCKETS];
    uint32_t nrooms;
    unsigned char pack[LWS_PRE + PACK_CAP]; /* scratch for packed array frames */
} G;

static volatile sig_atomic_t interrupted;
static struct lws_context *volatile sig_ctx; /* what the signal handler wakes */

static uint32_t hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

/* The room called name, created when create is set. NULL when it does not
 * exist (or cannot be created: MAX_ROOMS reached, out of memory). */
static struct room *room_get(const char *name, size_t nlen, bool create)
{
    struct room **pp = &G.buckets[hash(name, nlen) & (ROOM_BUCKETS - 1)];
    for (struct room *r = *pp; r; r = r->next)
        if (r->nlen == nlen && !memcmp(r->name, name, nlen)) return r;
    if (!create || G.nrooms >= MAX_ROOMS) return NULL;
    struct room *r = calloc(1, sizeof *r + nlen + 1);
    if (!r) return NULL;
    memcpy(r->name, name, nlen);
    r->nlen = nlen;
    r->next = *pp;
    *pp = r;
    G.nrooms++;
    return r;
}

static void rooms_free(void)
{
    for (uint32_t i = 0; i < ROOM_BUCKETS; i++)
        while (G.buckets[i]) {
            struct room *r = G.buckets[i];
            G.buckets[i] = r->next;
            free(r->m);
            free(r);
        }
    G.nrooms = 0;
}

/* ---- the out-queue -------------------------------------------------------- */

static void outq_pop(struct conn *c)
{
    struct frame *f = c->ring[c->head];
    c->head = (c->head + 1) & (c->cap - 1);
    c->count--;
    c->bytes -= f->len;
    frame_unref(f);
    if (!c->count && c->cap > OUTQ_MIN_CAP) {
        /* A burst does not pin a grown ring on an idle connection. */
        free(c->ring);
        c->ring = NULL;
        c->cap = c->head = 0;
    }
}

static void outq_clear(struct conn *c)
{
    while (c->count)
        outq_pop(c);
    free(c->ring);
    c->ring = NULL;
    c->cap = c->head = 0;
}

/* Close at the next WRITEABLE; a peer that does not read (so never becomes
 * writeable) is cut off by lws after 2 s. */
static void conn_kill(struct conn *c)
{
    if (c->closing) return;
    c->closing = true;
    outq_clear(c);
    lws_callback_on_writable(c->wsi);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, 2);
}

/* Queues a reference to f; a connection that is over its bounds is closed. */
static void conn_push(struct conn *c, struct frame *f)
{
    if (c->closing) return;
    if (c->count >= OUTQ_MAX_FRAMES || c->bytes + f->len > OUTQ_MAX_BYTES) {
        conn_kill(c); /* slow consumer */
        return;
    }
    if (c->count == c->cap) {
        uint32_t ncap = c->cap ? c->cap * 2 : OUTQ_MIN_CAP;
        struct frame **n = malloc(sizeof *n * ncap);
        if (!n) {
            conn_kill(c);
            return;
        }
        for (uint32_t i = 0; i < c->count; i++) /* unwrap: head becomes 0 */
            n[i] = c->ring[(c->head + i) & (c->cap - 1)];
        free(c->ring);
        c->ring = n;
        c->cap = ncap;
        c->head = 0;
    }
    f->refs++;
    c->ring[(c->head + c->count) & (c->cap - 1)] = f;
    c->count++;
    c->bytes += f->len;
    if (c->count == 1) lws_callback_on_writable(c->wsi);
}

static void conn_send_copy(struct conn *c, const char *p, size_t n)
{
    struct frame *f = frame_alloc(n);
    if (!f) {
        conn_kill(c);
        return;
    }
    memcpy(frame_data(f), p, n);
    conn_push(c, f);
    frame_unref(f);
}

/* One lws_write per WRITEABLE: the only frame, or several packed into an
 * array. lws copies what the kernel does not take, so the shared frames and
 * the pack buffer are free for reuse once it returns. */
static int conn_writeable(struct conn *c)
{
    if (c->closing) return -1;
    if (!c->count) return 0;
    struct frame *first = c->ring[c->head];
    unsigned char *out;
    size_t len;
    uint32_t used = 1;
    if (c->count == 1 || (size_t)first->len + 2 > PACK_CAP) {
        out = frame_data(first);
        len = first->len;
    } else {
        unsigned char *p = G.pack + LWS_PRE;
        size_t n = 0;
        p[n++] = '[';
        used = 0;
        while (used < c->count && used < PACK_MAX_FRAMES) {
            struct frame *f = c->ring[(c->head + used) & (c->cap - 1)];
            if (n + f->len + 2 > PACK_CAP) break;
            if (used) p[n++] = ',';
            memcpy(p + n, frame_data(f), f->len);
            n += f->len;
            used++;
        }
        p[n++] = ']';
        out = p;
        len = n;
    }
    int w = lws_write(c->wsi, out, len, LWS_WRITE_TEXT);
    for (uint32_t i = 0; i < used; i++)
        outq_pop(c);
    if (w < (int)len) return -1;
    if (c->count) lws_callback_on_writable(c->wsi);
    return 0;
}

/* Leaves every room and drops every queued reference. */
static void conn_cleanup(struct conn *c)
{
    if (!c->live) return;
    c->live = false;
    for (uint32_t s = 0; s < c->nrooms; s++) {
        struct room *r = c->rooms[s].r;
        uint32_t i = c->rooms[s].idx;
        struct member last = r->m[--r->n];
        if (i != r->n) {
            r->m[i] = last; /* swap-remove; the moved member learns its new index */
            last.c->rooms[last.slot].idx = i;
        }
    }
    free(c->rooms);
    c->rooms = NULL;
    c->nrooms = c->rooms_cap = 0;
    outq_clear(c);
    free(c->rx);
    c->rx = NULL;
    c->rx_len = c->rx_cap = 0;
}

/* ---- JSON output ---------------------------------------------------------- */

/* Bytes of s as a JSON string literal, quotes included. */
static size_t esc_len(const char *s, size_t n)
{
    size_t l = 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\' || ch == '\b' || ch == '\f' || ch == '\n' || ch == '\r' ||
            ch == '\t')
            l += 2;
        else if (ch < 0x20)
            l += 6;
        else
            l++;
    }
    return l;
}

/* Writes s as a JSON string literal (esc_len bytes); returns the end. */
static char *esc_put(char *p, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    *p++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char e = 0;
        switch (ch) {
        case '"':
            e = '"';
            break;
        case '\\':
            e = '\\';
            break;
        case '\b':
            e = 'b';
            break;
        case '\f':
            e = 'f';
            break;
        case '\n':
            e = 'n';
            break;
        case '\r':
            e = 'r';
            break;
        case '\t':
            e = 't';
            break;
        default:
            break;
        }
        if (e) {
            *p++ = '\\';
            *p++ = e;
        } else if (ch < 0x20) {
            memcpy(p, "\\u00", 4);
            p[4] = hex[ch >> 4];
            p[5] = hex[ch & 15];
            p += 6;
        } else {
            *p++ = (char)ch;
        }
    }
    *p++ = '"';
    return p;
}

static char *put(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* {"id":ID,"ok":RESULT} */
static void reply_ok(struct conn *c, const char *id, const char *result, size_t rlen)
{
    char buf[64 + 8 * MAX_ROOM_NAME];
    int n = snprintf(buf, sizeof buf, "{\"id\":%s,\"ok\":%.*s}", id, (int)rlen, result);
    if (n > 0 && (size_t)n < sizeof buf) conn_send_copy(c, buf, (size_t)n);
}

/* {"id":ID,"error":{"code":CODE,"message":MSG}} */
static void reply_err(struct conn *c, const char *id, const char *code, const char *msg)
{
    char buf[256];
    int n = snprintf(buf, sizeof buf, "{\"id\":%s,\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}",
                     id, code, msg);
    if (n > 0 && (size_t)n < sizeof buf) conn_send_copy(c, buf, (size_t)n);
}

/* The message push, encoded once for every member of the room. */
static struct frame *encode_push(const struct room *r, int64_t seq, const char *body, size_t blen)
{
    char num[24];
    int nl = snprintf(num, sizeof num, "%" PRId64, seq);
    static const char a[] = "{\"push\":\"message\",\"room\":", b[] = ",\"seq\":",
                      d[] = ",\"body\":";
    size_t len = sizeof a - 1 + esc_len(r->name, r->nlen) + sizeof b - 1 + (size_t)nl + sizeof d -
                 1 + esc_len(body, blen) + 1;
    struct frame *f = frame_alloc(len);
    if (!f) return NULL;
    char *p = (char *)frame_data(f);
    p = put(p, a);
    p = esc_put(p, r->name, r->nlen);
    p = put(p, b);
    p = put(p, num);
    p = put(p, d);
    p = esc_put(p, body, blen);
    *p = '}';
    return f;
}

/* ---- commands ------------------------------------------------------------- */

static void op_join(struct conn *c, const char *id, const cJSON *j, const char *name, size_t nlen)
{
    for (uint32_t s = 0; s < c->nrooms; s++)
        if (c->rooms[s].r->nlen == nlen && !memcmp(c->rooms[s].r->name, name, nlen)) {
            reply_err(c, id, "already_joined", "already joined");
            return;
        }
    if (c->nrooms >= MAX_CONN_ROOMS) {
        reply_err(c, id, "too_many_rooms", "too many rooms on this connection");
        return;
    }
    struct room *r = room_get(name, nlen, true);
    if (!r) {
        reply_err(c, id, "unavailable", "room table full");
        return;
    }
    if (c->nrooms == c->rooms_cap) {
        uint32_t ncap = c->rooms_cap ? c->rooms_cap * 2 : 2;
        struct croom *n = realloc(c->rooms, sizeof *n * ncap);
        if (!n) {
            reply_err(c, id, "unavailable", "out of memory");
            return;
        }
        c->rooms = n;
        c->rooms_cap = ncap;
    }
    if (r->n == r->cap) {
        uint32_t ncap = r->cap ? r->cap * 2 : 4;
        struct member *n = realloc(r->m, sizeof *n * ncap);
        if (!n) {
            reply_err(c, id, "unavailable", "out of memory");
            return;
        }
        r->m = n;
        r->cap = ncap;
    }
    r->m[r->n] = (struct member){c, c->nrooms};
    c->rooms[c->nrooms++] = (struct croom){r, r->n};
    r->n++;

    char res[32 + 8 * MAX_ROOM_NAME], *p = res;
    p = put(p, "{\"room\":");
    p = esc_put(p, name, nlen);
    p += sprintf(p, ",\"last_seq\":%" PRId64, r->seq);
    const cJSON *since = cJSON_GetObjectItemCaseSensitive(j, "since");
    if (cJSON_IsNumber(since)) /* no replay here: recovered only if nothing is missing */
        p = put(p, (int64_t)since->valuedouble == r->seq ? ",\"recovered\":true"
                                                         : ",\"recovered\":false");
    *p++ = '}';
    reply_ok(c, id, res, (size_t)(p - res));
}

static void op_send(struct conn *c, const char *id, const cJSON *j, const char *name, size_t nlen)
{
    struct room *r = NULL;
    for (uint32_t s = 0; s < c->nrooms && !r; s++)
        if (c->rooms[s].r->nlen == nlen && !memcmp(c->rooms[s].r->name, name, nlen))
            r = c->rooms[s].r;
    if (!r) {
        reply_err(c, id, "not_joined", "join the room first");
        return;
    }
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(j, "body");
    if (!cJSON_IsString(body) || !body->valuestring[0]) {
        reply_err(c, id, "bad_request", "body");
        return;
    }
    int64_t seq = ++r->seq;
    char res[40];
    int rl = snprintf(res, sizeof res, "{\"seq\":%" PRId64 "}", seq);
    reply_ok(c, id, res, (size_t)rl);
    struct frame *f = encode_push(r, seq, body->valuestring, strlen(body->valuestring));
    if (!f) return;
    for (uint32_t i = 0; i < r->n; i++)
        conn_push(r->m[i].c, f);
    frame_unref(f);
}

static void on_command(struct conn *c, const char *in, size_t len)
{
    char id[32] = "null";
    cJSON *j = cJSON_ParseWithLength(in, len);
    if (!cJSON_IsObject(j)) {
        reply_err(c, id, "bad_json", "not a JSON object");
        cJSON_Delete(j);
        return;
    }
    const cJSON *idj = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (cJSON_IsNumber(idj)) snprintf(id, sizeof id, "%" PRId64, (int64_t)idj->valuedouble);
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(j, "op");
    const cJSON *room = cJSON_GetObjectItemCaseSensitive(j, "room");
    size_t nlen = cJSON_IsString(room) ? strlen(room->valuestring) : 0;
    if (!cJSON_IsString(op)) {
        reply_err(c, id, "bad_request", "op");
    } else if (!strcmp(op->valuestring, "auth")) {
        c->authed = true;
        reply_ok(c, id, "{}", 2);
    } else if (!c->authed) {
        reply_err(c, id, "auth_required", "authenticate first");
    } else if (strcmp(op->valuestring, "join") && strcmp(op->valuestring, "send")) {
        reply_err(c, id, "unknown_op", "unknown op");
    } else if (!nlen || nlen > MAX_ROOM_NAME) {
        reply_err(c, id, "bad_request", "room");
    } else if (!strcmp(op->valuestring, "join")) {
        op_join(c, id, j, room->valuestring, nlen);
    } else {
        op_send(c, id, j, room->valuestring, nlen);
    }
    cJSON_Delete(j);
}

static int close_with(struct lws *wsi, enum lws_close_status code, const char *why)
{
    lws_close_reason(wsi, code, (unsigned char *)why, strlen(why));
    return -1;
}

static int on_receive(struct conn *c, struct lws *wsi, const char *in, size_t len)
{
    if (c->closing) return 0;
    if (lws_frame_is_binary(wsi))
        return close_with(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "text frames only");
    bool done = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
    if (c->rx_len + len > MAX_MSG)
        return close_with(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, "message too large");
    if (done && !c->rx_len) { /* the usual case: a whole message, no copy */
        on_command(c, in, len);
        return 0;
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t ncap = c->rx_cap ? c->rx_cap : 4096;
        while (ncap < c->rx_len + len)
            ncap *= 2;
        if (ncap > MAX_MSG) ncap = MAX_MSG;
        unsigned char *n = realloc(c->rx, ncap);
        if (!n) return -1;
        c->rx = n;
        c->rx_cap = ncap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (done) {
        size_t n = c->rx_len;
        c->rx_len = 0;
        on_command(c, (const char *)c->rx, n);
        if (c->rx_cap > RX_KEEP) {
            free(c->rx);
            c->rx = NULL;
            c->rx_cap = 0;
        }
    }
    return 0;
}

/* ---- lws ------------------------------------------------------------------ */

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct conn *c = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        c->wsi = wsi;
        c->live = true;
        return 0;
    case LWS_CALLBACK_RECEIVE:
        return c && c->live ? on_receive(c, wsi, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return c && c->live ? conn_writeable(c) : -1;
    case LWS_CALLBACK_WS_SERVER_DROP_PROTOCOL:
        /* lws 4.1 may unbind the protocol before a close it waits for and then
         * never report CLOSED (see server/ws.c): clean up at whichever comes
         * first. */
    case LWS_CALLBACK_CLOSED:
        if (c) conn_cleanup(c);
        return 0;
    case LWS_CALLBACK_HTTP: /* not a WebSocket upgrade: nothing to serve */
        return -1;
    default:
        return 0;
    }
}

static const struct lws_protocols protocols[] = {
    /* The first protocol is also the one a client without a subprotocol gets.
     * tx_packet_size lets one send(2) take a whole packed frame (with 0, lws
     * would cut every send at rx_buffer_size and buffer the rest). */
    {"parley.v1", callback, sizeof(struct conn), 4096, 0, NULL, PACK_CAP + LWS_PRE},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
    struct lws_context *ctx = sig_ctx;
    if (ctx) lws_cancel_service(ctx);
}

int main(int argc, char **argv)
{
    char *end = NULL;
    long port = argc == 2 ? strtol(argv[1], &end, 10) : 0;
    if (argc != 2 || *end || port < 1 || port > 65535) {
        fprintf(stderr, "usage: parley-lws-floor PORT (listens on 127.0.0.1)\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: the poll returns */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    lws_set_log_level(LLL_ERR | LLL_WARN, NULL);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = (int)port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    /* IPv6 off, or lws 4.1 binds the wildcard address and ignores iface. */
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
    G.ctx = lws_create_context(&info);
    /* lws 4.1 returns a context even when the port could not be bound. */
    if (G.ctx && !lws_get_vhost_by_name(G.ctx, "default")) {
        lws_context_destroy(G.ctx);
        G.ctx = NULL;
    }
    if (!G.ctx) {
        fprintf(stderr, "parley-lws-floor: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    sig_ctx = G.ctx;
    printf("lws-floor on %ld\n", port);
    fflush(stdout);
    while (!interrupted)
        if (lws_service(G.ctx, 0) < 0) break;
    sig_ctx = NULL;
    lws_context_destroy(G.ctx); /* closes every connection: CLOSED cleans each up */
    rooms_free();
    return 0;
}
