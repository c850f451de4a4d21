#include "ws.h"

#include "app.h"
#include "config.h"
#include "conn.h"
#include "http.h"
#include "log.h"
#include "lwsmem.h"
#include "mem.h"
#include "stats.h"
#include "ua.h"

#include <libwebsockets.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(LWS_PRE <= FRAME_PRE, "frame headroom must hold LWS_PRE");

/* ---- per-IP connection counts ------------------------------------------ */

struct ipent {
    struct ipent *next; /* chain */
    uint32_t n;         /* WebSocket connections from this address */
    char ip[48];        /* the address */
};

struct iptab {
    struct ipent *b[1024]; /* buckets */
};

static struct ipent **ip_slot(struct app *a, const char *ip)
{
    uint32_t h = 2166136261u;
    for (const char *p = ip; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    struct ipent **pp = &a->ips->b[h & 1023];
    while (*pp && strcmp((*pp)->ip, ip))
        pp = &(*pp)->next;
    return pp;
}

static uint32_t ip_count(struct app *a, const char *ip)
{
    struct ipent *e = *ip_slot(a, ip);
    return e ? e->n : 0;
}

/* Counts one more connection from ip; the entry, or NULL without memory. */
static struct ipent *ip_hold(struct app *a, const char *ip)
{
    struct ipent **pp = ip_slot(a, ip), *e = *pp;
    if (!e) {
        e = mem_calloc(1, sizeof *e);
        if (!e) return NULL;
        snprintf(e->ip, sizeof e->ip, "%s", ip);
        *pp = e;
    }
    e->n++;
    return e;
}

static void ip_release(struct app *a, struct ipent *e)
{
    if (--e->n) return;
    struct ipent **pp = ip_slot(a, e->ip);
    *pp = e->next;
    mem_free(e);
}

/* Admission of a new TCP connection, before it has said anything: every
 * connection (HTTP or WebSocket) counts against its address's cap, and the
 * last conn_reserve places under max_conns go only to addresses with none
 * open, so that a few addresses holding slow requests cannot take the
 * descriptors a health check or a new person needs. Established clients
 * need no new descriptor and are not affected. Returns 0 to admit. */
static int tcp_admit(struct app *a, struct lws *wsi)
{
    char ip[48];
    lws_get_peer_simple(wsi, ip, sizeof ip);
    if (a->draining) return -1;
    uint32_t mine = ip_count(a, ip);
    if (mine >= a->cfg.per_ip_max) {
        a->stats.refused_ip_cap++;
        log_warn("per-ip cap reached, connection refused", "ip=%s cap=%u", ip, a->cfg.per_ip_max);
        return -1;
    }
    uint32_t room = a->max_conns > a->tcp_conns ? a->max_conns - a->tcp_conns : 0;
    if (!room || (mine && room <= a->cfg.conn_reserve)) {
        a->stats.refused_capacity++;
        log_warn("connection budget reached, connection refused", "ip=%s open=%u max=%u", ip,
                 a->tcp_conns, a->max_conns);
        return -1;
    }
    struct ipent *e = ip_hold(a, ip);
    if (!e) return -1;
    lws_set_opaque_user_data(wsi, e);
    a->tcp_conns++;
    return 0;
}

/* ---- WebSocket ----------------------------------------------------------- */

/* What lws 4.1 lets through in an upgrade request and RFC 6455 4.1/4.2.1
 * does not: a method other than GET, a version other than 13, a
 * Sec-WebSocket-Key that is not 16 bytes in base64. Returns the reason, or
 * NULL to let the upgrade go on. (An HTTP/1.0 upgrade is not seen: lws
 * 4.1 keeps the request's version to itself; PROTOCOL.md says so.) */
static const char *upgrade_fault(struct lws *wsi)
{
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) return "method";
    char v[8];
    if (lws_hdr_copy(wsi, v, sizeof v, WSI_TOKEN_VERSION) != 2 || strcmp(v, "13")) return "version";
    char key[32];
    unsigned char raw[24];
    if (lws_hdr_copy(wsi, key, sizeof key, WSI_TOKEN_KEY) != 24 ||
        lws_b64_decode_string(key, (char *)raw, sizeof raw) != 16)
        return "key";
    return NULL;
}

/* A close frame from the client whose code may not be sent on the wire
 * (RFC 6455 7.4): lws 4.1 echoes codes of 3000 and up unchecked and a
 * one-byte payload as it is. Answered 1002 (protocol error) instead. */
static int close_fault(struct lws *wsi, unsigned char *in, size_t len)
{
    if (len == 1 || (len >= 2 && ((in[0] << 8) | in[1]) >= 5000)) {
        if (len >= 2) { /* rewritten in place: lws echoes this buffer */
            in[0] = LWS_CLOSE_STATUS_PROTOCOL_ERR >> 8;
            in[1] = LWS_CLOSE_STATUS_PROTOCOL_ERR & 0xff;
            return 0;
        }
        static const char why[] = "bad close payload";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR, (unsigned char *)why, sizeof why - 1);
        return -1;
    }
    return 0;
}

static void send_hello(struct app *a, struct conn *c)
{
    char buf[256];
    struct pp_w w;
    pp_w_init(&w, buf, sizeof buf);
    pp_enc_hello(&w, "parleyd/0.1.0", (int64_t)a->cfg.max_frame, (int64_t)a->cfg.max_body,
                 a->cfg.auth_timeout_ms);
    int n = pp_w_finish(&w);
    if (n > 0) conn_send_copy(c, buf, (size_t)n);
}

/* ---- reassembly buffers ------------------------------------------------ */

/* Every message longer than RX_BUFFER (a 500-byte body is one) is
 * reassembled in a buffer of RXBUF bytes or more. Freed ones of exactly
 * RXBUF wait here for the next such message instead of going back to the
 * allocator each time: at most RXPOOL of them (256 KB), so the pool is
 * bounded whatever the number of connections; larger ones are freed. */
#define RXBUF 4096
#define RXPOOL 64

struct rxpool {
    int n;                      /* buffers held */
    unsigned char *buf[RXPOOL]; /* each RXBUF bytes, owned by the pool */
};

static unsigned char *rxpool_take(struct app *a)
{
    struct rxpool *p = a->rxpool;
    return p && p->n ? p->buf[--p->n] : NULL;
}

/* Takes ownership of buf (cap bytes; NULL is fine). */
static void rxpool_give(struct app *a, unsigned char *buf, size_t cap)
{
    struct rxpool *p = a->rxpool;
    if (buf && p && cap == RXBUF && p->n < RXPOOL)
        p->buf[p->n++] = buf;
    else
        mem_free(buf);
}

static void rxpool_free(struct app *a)
{
    struct rxpool *p = a->rxpool;
    if (!p) return;
    while (p->n)
        mem_free(p->buf[--p->n]);
    mem_free(p);
    a->rxpool = NULL;
}

static int ws_receive(struct app *a, struct conn *c, struct lws *wsi, const char *in, size_t len)
{
    if (lws_frame_is_binary(wsi)) {
        static const char why[] = "text frames only";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, (unsigned char *)why,
                         sizeof why - 1);
        return -1;
    }
    bool done = lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
    if (done && !c->rx_len) {
        /* The usual case: a whole message in one piece, no copy. */
        a->gw_hooks->on_message(a->gw_hooks->ud, c, in, len);
        return 0;
    }
    if (c->rx_len + len > a->cfg.max_frame) {
        static const char why[] = "message too large";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
                         sizeof why - 1);
        return -1;
    }
    if (c->rx_len + len > c->rx_cap) {
        size_t ncap = c->rx_cap ? c->rx_cap : RXBUF;
        while (ncap < c->rx_len + len)
            ncap *= 2;
        if (ncap > a->cfg.max_frame) ncap = a->cfg.max_frame;
        unsigned char *n = NULL;
        if (!c->rx && ncap == RXBUF) n = rxpool_take(a);
        if (!n) n = mem_realloc(c->rx, ncap);
        if (!n) return -1;
        c->rx = n;
        c->rx_cap = ncap;
    }
    memcpy(c->rx + c->rx_len, in, len);
    c->rx_len += len;
    if (done) {
        size_t n = c->rx_len;
        c->rx_len = 0;
        a->gw_hooks->on_message(a->gw_hooks->ud, c, (const char *)c->rx, n);
        /* No reassembly buffer is kept by the connection between messages
         * (an idle connection should not hold 4 KB for its last one), but a
         * 4 KB one goes back to the pool for the next message over
         * RX_BUFFER, of this connection or another. */
        rxpool_give(a, c->rx, c->rx_cap);
        c->rx = NULL;
        c->rx_cap = 0;
    }
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct conn *c = user;
    struct lws_context *ctx = lws_get_context(wsi);
    struct app *a = ctx ? lws_context_user(ctx) : NULL;
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        return a && a->draining ? 1 : 0;
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        return a ? tcp_admit(a, wsi) : -1;
    case LWS_CALLBACK_WSI_DESTROY: {
        /* Every admitted connection ends here once, whatever it became. */
        struct ipent *e = lws_get_opaque_user_data(wsi);
        if (e && a) {
            lws_set_opaque_user_data(wsi, NULL);
            ip_release(a, e);
            a->tcp_conns--;
        }
        return 0;
    }
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: {
        char ip[48];
        lws_get_peer_simple(wsi, ip, sizeof ip);
        if (a->draining) return 1;
        const char *fault = upgrade_fault(wsi);
        if (fault) {
            a->stats.refused_upgrade++;
            log_warn("malformed upgrade refused", "ip=%s fault=%s", ip, fault);
            return 1;
        }
        /* Cross-site WebSocket hijacking: a browser always sends Origin, so
         * a page of another site is refused here. Clients that are not
         * browsers (bots, SDKs) send none and authenticate with a token. */
        char origin[256];
        int olen = lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN);
        if (olen > 0 && !config_origin_allowed(&a->cfg, origin, (size_t)olen)) {
            a->stats.refused_origin++;
            log_warn("origin not allowed, handshake refused", "ip=%s", ip);
            return 1;
        }
        if (olen < 0 || olen >= (int)sizeof origin - 1) {
            if (a->cfg.origins[0] && lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0) return 1;
        }
        return 0;
    }
    case LWS_CALLBACK_ESTABLISHED: {
        conn_init(c, a, wsi);
        /* Only the families are kept (visit log), not the whole string. */
        char ua[512];
        int ulen = lws_hdr_copy(wsi, ua, sizeof ua, WSI_TOKEN_HTTP_USER_AGENT);
        struct ua_info ui = ua_parse(ua, ulen > 0 ? (size_t)ulen : 0);
        c->ua_os = ui.os;
        c->ua_browser = ui.browser;
        log_debug("connection opened", "conn=%llu ip=%s", (unsigned long long)c->id, c->ip);
        send_hello(a, c);
        return 0;
    }
    case LWS_CALLBACK_RECEIVE:
        return ws_receive(a, c, wsi, in, len);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE: {
        int rc = close_fault(wsi, in, len);           /* -1: lws closes now, with 1002 */
        if (!rc && c && c->ws) conn_on_peer_close(c); /* lws's echo must be the last frame */
        return rc;
    }
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return conn_on_writeable(c);
    case LWS_CALLBACK_WS_SERVER_DROP_PROTOCOL:
        /* lws 4.1 unbinds the protocol before a close it must wait for (a
         * close frame to a socket that does not drain) and then may never
         * report CLOSED: the connection ends for us at whichever comes first. */
    case LWS_CALLBACK_CLOSED:
        if (c && c->ws) conn_destroy(c);
        return 0;
    case LWS_CALLBACK_HTTP:
        return c ? http_begin(a, c, wsi, (const char *)in, len) : -1;
    case LWS_CALLBACK_HTTP_BODY:
        return c ? http_body(c, in, len) : -1;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return c ? http_body_done(c) : -1;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return c ? http_writeable(c) : -1;
    case LWS_CALLBACK_CLOSED_HTTP:
        if (c) http_closed(c); /* a request in flight finishes without a client */
        return 0;
    default:
        return 0;
    }
}

/* Memory per idle connection (BENCHMARKS.md): lws allocates RX_BUFFER
 * (+ LWS_PRE + 4) per WebSocket for as long as it is open. A message longer
 * than that arrives in several RECEIVE callbacks and ws_receive reassembles
 * it (up to max_frame) in a pooled buffer, so this bounds only the piece
 * size, not the message size. 128 holds auth, join and receipts whole, and
 * a control frame (at most 125 bytes of payload, RFC 6455 5.5), which lws
 * keeps in this buffer: it must not go lower. A send of more than a few
 * words is reassembled; at 256 every idle connection cost 0.13 KB more, and
 * at 512 0.38 KB. TX_PACKET keeps writes as they were:
 * with tx_packet_size 0, lws 4.1 caps each socket write at rx_buffer_size
 * (+ LWS_PRE + 4) and buffers the rest for the next POLLOUT (output.c). */
#define RX_BUFFER 128
#define TX_PACKET 4096
/* lws's buffer for a request's headers (one per request in progress, kept
 * off the malloc heap by lwsmem.c). lws closes a request that overflows it
 * without a word, so it is larger than --http-max-header (at most 7168),
 * and http.c answers 431 to what lies between. */
#define HEADER_DATA 8192

/* Sent on every HTTP answer (lws_add_http_common_headers adds them). What
 * LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE sends,
 * less its Content-Security-Policy, whose connect-src lets a page reach
 * any ws: or wss: host: http.c sets a policy per answer instead (the API's
 * forbids everything; a page's allows only this gateway). */
static const struct lws_protocol_vhost_options sec_headers[] = {
    {NULL, NULL, "referrer-policy:", "no-referrer"},
    {&sec_headers[0], NULL, "x-frame-options:", "deny"},
    {&sec_headers[1], NULL, "x-xss-protection:", "1; mode=block"},
    {&sec_headers[2], NULL, "x-content-type-options:", "nosniff"},
};

static const struct lws_protocols protocols[] = {
    {PP_PROTOCOL_NAME, callback, sizeof(struct conn), RX_BUFFER, 0, NULL, TX_PACKET},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int ws_start(struct app *a, const struct gateway_hooks *hooks)
{
    /* Before the context: a connection may arrive as soon as it listens. */
    a->gw_hooks = mem_alloc(sizeof *a->gw_hooks);
    if (!a->gw_hooks) return -1;
    *a->gw_hooks = *hooks;
    a->ips = mem_calloc(1, sizeof *a->ips);
    if (!a->ips) return -1;
    a->rxpool = mem_calloc(1, sizeof *a->rxpool);
    if (!a->rxpool) return -1;
    conn_writes_start(a);
    int lv = LLL_ERR | LLL_WARN;
    if (a->cfg.log_level >= LOG_DEBUG) lv |= LLL_NOTICE;
    lws_set_log_level(lv, log_lws_emit);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    void *loops[1] = {a->loop};
    info.port = a->cfg.port;
    info.iface = a->cfg.bind;
    info.max_http_header_data = HEADER_DATA;
    /* lws's limit on a request's headers arriving (lws does not restart it
     * per byte); http.c keeps the same deadline for the body. */
    info.timeout_secs_ah_idle = (int)((a->cfg.http_request_timeout_ms + 999) / 1000);
    a->max_conns = a->cfg.max_conns;
    if (!a->max_conns) {
        /* The descriptors this process may open, less what PostgreSQL,
         * Redis, the log and lws's own need. */
        struct rlimit rl;
        rlim_t n = getrlimit(RLIMIT_NOFILE, &rl) ? 1024 : rl.rlim_cur;
        if (n == RLIM_INFINITY || n > 10000000) n = 10000000;
        a->max_conns = n > 128 ? (uint32_t)n - 64 : 64;
    }
    /* Once per process, before the first context; failure only means lws
     * keeps using malloc for them. */
    if (lwsmem_install(HEADER_DATA) < 0)
        log_info("lws header buffers stay on the heap", "bytes=%d", HEADER_DATA);
    info.protocols = protocols;
    info.user = a;
    info.foreign_loops = loops;
    info.count_threads = 1;
    info.pcontext = &a->lws; /* lws sets it to NULL once fully destroyed */
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
    info.headers = &sec_headers[3];
    /* lws 4.1's idle check ("validity": a PING after 300 s of silence)
     * keeps a timer per connection in one sorted list that it walks from the
     * head on every insert; a new connection's timer always goes last, so
     * every sign-in walked all the gateway's connections (two thirds of a
     * gateway's CPU while 100,000 connected over 7 gateways). It is off;
     * the kernel's TCP keepalive finds dead peers on about the same schedule
     * (silent 300 s, then 3 probes 10 s apart) at no cost to the loop. */
    static const lws_retry_bo_t no_validity = {.secs_since_valid_ping = 0};
    info.retry_and_idle_policy = &no_validity;
    info.ka_time = 300;
    info.ka_probes = 3;
    info.ka_interval = 10;
    /* With IPv6 on, lws 4.1 binds the wildcard address and ignores an IPv4
     * iface: listen on exactly the address asked for. */
    if (!strchr(a->cfg.bind, ':')) info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    if (a->cfg.tls_cert[0]) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = a->cfg.tls_cert;
        info.ssl_private_key_filepath = a->cfg.tls_key;
    }
    a->lws = lws_create_context(&info);
    /* lws 4.1 returns a context even when the listen socket could not be
     * bound (its default vhost is then missing): that is a failed start. */
    if (a->lws && !lws_get_vhost_by_name(a->lws, "default")) {
        lws_context_destroy(a->lws);
        a->lws = NULL;
    }
    if (!a->lws) {
        log_error("cannot listen", "bind=%s port=%d", a->cfg.bind, a->cfg.port);
        return -1;
    }
    log_info("listening", "bind=%s port=%d protocol=%s tls=%s max_conns=%u", a->cfg.bind,
             a->cfg.port, PP_PROTOCOL_NAME, a->cfg.tls_cert[0] ? "on" : "off", a->max_conns);
    return 0;
}

void ws_finish(struct app *a)
{
    if (a->lws) lws_context_destroy(a->lws);
    /* Connections closed during the destruction above still called them.
     * Every connection ws_stop's destruction closed releases its address's
     * count in WSI_DESTROY, from libuv's close callback in a later loop
     * turn: the counts are freed only now. */
    mem_free(a->gw_hooks);
    a->gw_hooks = NULL;
    rxpool_free(a);
    if (a->ips) {
        for (int i = 0; i < 1024; i++)
            while (a->ips->b[i]) {
                struct ipent *e = a->ips->b[i];
                a->ips->b[i] = e->next;
                mem_free(e);
            }
        mem_free(a->ips);
        a->ips = NULL;
    }
}

void ws_stop(struct app *a)
{
    conn_writes_stop(a); /* before lws starts to take the connections apart */
    /* With a foreign loop, destruction finishes over later loop turns; main
     * calls ws_finish after the loop to complete it (as the lws examples do). */
    if (a->lws) lws_context_destroy(a->lws);
}
