#include "http.h"

#include "app.h"
#include "config.h"
#include "conn.h"
#include "ws.h"
#include "log.h"
#include "mem.h"
#include "ua.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* HTTPS only: browsers remember to use https for a year. */
static const char HSTS[] = "max-age=31536000";
/* JSON answers load nothing and may be framed by nobody; pages set their
 * own (web.c). lws's canned policy is not used: its connect-src allows any
 * ws: or wss: host (ws.c). */
static const char API_CSP[] = "default-src 'none'; frame-ancestors 'none'";
/* A large body (a static file) goes out in pieces of this size, one per
 * WRITEABLE: lws keeps what the socket did not take and asks again only
 * once it is sent, so a slow reader holds one piece, not a copy of all. */
#define HTTP_PIECE (64 * 1024)

void http_req_free(struct http_req *r)
{
    if (!r) return;
    cJSON_Delete(r->json);
    /* Bodies and scratch may hold a password or a token shown once. */
    if (r->body) explicit_bzero(r->body, r->body_len);
    mem_free(r->body);
    if (r->resp) explicit_bzero(r->resp, r->resp_len);
    mem_free(r->resp);
    mem_free(r->piece);
    if (r->stream_free) r->stream_free(r->stream_ud);
    explicit_bzero(r, sizeof *r);
    mem_free(r);
}

struct http_req *http_req_new(struct app *a, struct lws *wsi)
{
    struct http_req *r = mem_calloc(1, sizeof *r);
    if (!r) return NULL;
    r->app = a;
    r->wsi = wsi;
    r->deadline = uv_now(a->loop) + a->cfg.http_request_timeout_ms;
    r->role = ROLE_NONE;
    return r;
}

int http_req_body_begin(struct http_req *r, size_t n)
{
    r->content_length = n;
    r->body = mem_alloc(n + 1);
    if (!r->body) return -ENOMEM;
    r->body[0] = 0;
    return 0;
}

int http_req_body_put(struct http_req *r, const void *in, size_t len)
{
    if (!r->body || r->status) return 0; /* already answered: discard */
    if (len > r->content_length - r->body_len) return -EMSGSIZE;
    /* lws restarts its stall timeout on every piece, so a body trickled a
     * byte at a time would hold the connection for ever: the request as a
     * whole has a deadline (its headers had lws's header timeout). */
    if (uv_now(r->app->loop) > r->deadline) {
        r->close_after = true;
        http_error(r, 408, "request_timeout", "the request took too long to arrive", NULL);
        return 0;
    }
    if (!len) return 0; /* lws hands an empty body over as (NULL, 0) */
    memcpy(r->body + r->body_len, in, len);
    r->body_len += len;
    r->body[r->body_len] = 0;
    return 0;
}

static enum http_method method_of(struct lws *wsi)
{
    static const struct {
        enum lws_token_indexes tok;
        enum http_method m;
    } t[] = {{WSI_TOKEN_GET_URI, HM_GET},       {WSI_TOKEN_POST_URI, HM_POST},
             {WSI_TOKEN_PUT_URI, HM_PUT},       {WSI_TOKEN_PATCH_URI, HM_PATCH},
             {WSI_TOKEN_DELETE_URI, HM_DELETE}, {WSI_TOKEN_OPTIONS_URI, HM_OPTIONS},
             {WSI_TOKEN_HEAD_URI, HM_HEAD}};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (lws_hdr_total_length(wsi, t[i].tok)) return t[i].m;
    return HM_OTHER;
}

static void read_token(struct http_req *r, struct lws *wsi)
{
    char h[160];
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n <= 0) return;
    r->has_token = true;
    r->bad_token = true;
    if (n >= (int)sizeof h || lws_hdr_copy(wsi, h, sizeof h, WSI_TOKEN_HTTP_AUTHORIZATION) != n)
        return;
    if (strncasecmp(h, "Bearer ", 7)) return;
    const char *t = h + 7;
    while (*t == ' ')
        t++;
    if (!auth_token_hash(t, strlen(t), r->token_hash)) r->bad_token = false;
}

/* A header's value into out, or "" when absent or longer than out holds
 * (a validator that does not fit is as good as none: the full answer). */
static void copy_header(struct lws *wsi, enum lws_token_indexes t, char *out, size_t cap)
{
    int n = lws_hdr_total_length(wsi, t);
    if (n <= 0 || n >= (int)cap || lws_hdr_copy(wsi, out, (int)cap, t) != n) out[0] = 0;
}

static void dispatch(struct http_req *r)
{
    r->busy = false;
    r->app->gw_hooks->on_request(r->app->gw_hooks->ud, r);
}

/* Strict Content-Length (RFC 9112 6.3, 8.6): one value of decimal digits
 * that fits. lws joins repeated headers into one value with a separator,
 * so two Content-Length headers (equal or not) fail here too. -1: absent;
 * -2: present but malformed. */
static long long content_length(struct lws *wsi)
{
    int total = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (total <= 0) return -1; /* absent (or empty: lws reads no body either) */
    char cl[24];
    if (total >= (int)sizeof cl ||
        lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) != total)
        return -2;
    long long n = 0;
    for (int i = 0; i < total; i++) {
        if (cl[i] < '0' || cl[i] > '9') return -2;
        n = n * 10 + (cl[i] - '0');
        if (n > (1LL << 40)) return -2; /* no overflow; far over any body limit */
    }
    return n;
}

/* Bytes of the request's headers that lws kept (every header it knows,
 * which is every one it stores). Requests over --http-max-header are
 * answered 431; lws's own buffer is larger (ws.c) so that they reach us. */
static size_t header_bytes(struct lws *wsi)
{
    size_t n = 0;
    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        int l = lws_hdr_total_length(wsi, (enum lws_token_indexes)t);
        if (l > 0) n += (size_t)l;
    }
    return n;
}

int http_begin(struct app *a, struct conn *c, struct lws *wsi, const char *uri, size_t len)
{
    /* One request per connection (see close_after below), so a second one
     * cannot begin over the first; if lws ever did begin one, the
     * connection ends rather than lose or mix the first one's state. */
    if (c->req) return -1;
    struct http_req *r = http_req_new(a, wsi);
    if (!r) return -1;
    c->req = r;
    /* Every response closes its connection. lws 4.1 mishandles requests
     * pipelined behind another: it re-parses them from its buffer list in
     * an idle handler, calling body completion on every loop turn while the
     * first is in flight, and one packet (GET then POST with a length) hung
     * a gateway at 100% CPU. Holding the reading (lws_rx_flow_control)
     * instead was tried: with the libuv loop, lws then never delivered the
     * first response's WRITEABLE (epoll kept reporting POLLOUT). Closing after the first answer is
     * what RFC 9112 9.6 allows, and no byte behind a request is ever read as another request.
     * HTTP/2 (over TLS, by ALPN) frames each request in its own stream and is not affected; there a
     * Connection header is a protocol error. */
    r->h2 = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COLON_PATH) > 0;
    r->close_after = !r->h2; /* an HTTP/2 stream ends by itself, its connection stays */
    r->method = method_of(wsi);
    lws_get_peer_simple(wsi, r->ip, sizeof r->ip);
    char ua[512];
    int ulen = lws_hdr_copy(wsi, ua, sizeof ua, WSI_TOKEN_HTTP_USER_AGENT);
    struct ua_info ui = ua_parse(ua, ulen > 0 ? (size_t)ulen : 0);
    r->os = ui.os;
    r->browser = ui.browser;
    read_token(r, wsi);
    if (r->method == HM_GET || r->method == HM_HEAD) {
        copy_header(wsi, WSI_TOKEN_HOST, r->host, sizeof r->host);
        copy_header(wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH, r->if_none_match, sizeof r->if_none_match);
        copy_header(wsi, WSI_TOKEN_HTTP_IF_MODIFIED_SINCE, r->if_modified_since,
                    sizeof r->if_modified_since);
        copy_header(wsi, WSI_TOKEN_HTTP_ACCEPT_ENCODING, r->accept_encoding,
                    sizeof r->accept_encoding);
    }
    while (r->nargs < HTTP_MAX_ARGS &&
           lws_hdr_copy_fragment(wsi, r->args[r->nargs], sizeof r->args[0], WSI_TOKEN_HTTP_URI_ARGS,
                                 r->nargs) > 0)
        r->nargs++;
    if (len >= sizeof r->path) {
        http_error(r, 414, "uri_too_long", "path too long", NULL);
        return 0;
    }
    /* lws decodes %00 into the path: as a C string it would end there
     * ("/%00/../x" would read as "/"), so such a path names nothing. */
    if (memchr(uri, 0, len)) {
        http_error(r, 404, "not_found", "no such route", NULL);
        return 0;
    }
    snprintf(r->path, sizeof r->path, "%s", uri);

    /* Framing first: a request whose length is ambiguous is answered and
     * the connection closed, so no byte after it is ever read as another
     * request (request smuggling behind a proxy that framed it otherwise). */
    bool has_body = r->method == HM_POST || r->method == HM_PUT || r->method == HM_PATCH;
    long long n = content_length(wsi);
    bool chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
    if (n == -2 || (chunked && n >= 0)) {
        r->close_after = true;
        http_error(r, 400, "bad_request",
                   n == -2 ? "Content-Length must be one decimal number"
                           : "Content-Length and Transfer-Encoding together",
                   NULL);
        return 0;
    }
    if (header_bytes(wsi) > a->cfg.http_max_header) {
        r->close_after = true;
        char m[64];
        snprintf(m, sizeof m, "headers over %zu bytes", a->cfg.http_max_header);
        http_error(r, 431, "headers_too_large", m, NULL);
        return 0;
    }
    if (!has_body) {
        /* lws reads no body for these methods: one sent would be parsed as
         * the next request, so it is refused and the connection closed. */
        if (n > 0 || chunked) {
            r->close_after = true;
            http_error(r, 400, "bad_request", "this method takes no body", NULL);
            return 0;
        }
        dispatch(r);
        return 0;
    }
    if (chunked) {
        r->close_after = true;
        http_error(r, 411, "length_required", "Content-Length required (no chunked bodies)", NULL);
        return 0;
    }
    if (n < 0) {
        /* Neither length nor chunking: no body (RFC 9112 6.3). lws would
         * wait for one, so this connection serves only this request. */
        r->close_after = true;
        dispatch(r);
        return 0;
    }
    if ((unsigned long long)n > a->cfg.http_max_body) {
        r->close_after = true;
        char m[64];
        snprintf(m, sizeof m, "body over %zu bytes", a->cfg.http_max_body);
        http_error(r, 413, "body_too_large", m, NULL);
        return 0;
    }
    if (http_req_body_begin(r, (size_t)n)) return -1;
    /* lws reports body completion only for POST with an explicit zero. */
    if (n == 0 && r->method != HM_POST) dispatch(r);
    return 0;
}

int http_body(struct conn *c, const void *in, size_t len)
{
    return c->req && http_req_body_put(c->req, in, len) ? -1 : 0;
}

int http_body_done(struct conn *c)
{
    struct http_req *r = c->req;
    if (r && !r->status && !r->busy) dispatch(r);
    return 0;
}

void http_respond(struct http_req *r, int status, char *body, size_t len)
{
    if (r->status) {
        mem_free(body);
        return;
    }
    r->status = status;
    r->resp = body;
    r->resp_len = body ? len : 0;
    if (r->wsi) lws_callback_on_writable(r->wsi);
}

void http_respond_ref(struct http_req *r, int status, const char *body, size_t len)
{
    if (r->status) return;
    r->resp_ref = body;
    http_respond(r, status, NULL, 0);
    r->resp_len = body ? len : 0;
}

int http_add_header(struct http_req *r, const char *name, const char *value)
{
    if (r->nxh >= HTTP_MAX_XH) return -1;
    r->xh_name[r->nxh] = name;
    r->xh_value[r->nxh++] = value;
    return 0;
}

void http_error(struct http_req *r, int status, const char *code, const char *message,
                const char *field)
{
    /* The answer when the error itself cannot be put together: cJSON leaves
     * out a member it had no memory for, and a body missing its code would
     * tell the client nothing. Not the request's fault, so 500. */
    static const char OOM[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    bool ok = e && cJSON_AddStringToObject(e, "code", code) &&
              cJSON_AddStringToObject(e, "message", message) &&
              (!field || !*field || cJSON_AddStringToObject(e, "field", field));
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    r->type = NULL; /* errors are JSON whatever the route answers */
    r->csp = NULL;
    r->cache = NULL;
    r->nxh = 0;
    if (s)
        http_respond(r, status, s, strlen(s));
    else
        http_respond_ref(r, 500, OOM, sizeof OOM - 1);
}

bool http_alive(struct http_req *r)
{
    r->busy = false;
    if (r->wsi) return true;
    http_req_free(r);
    return false;
}

const char *http_arg(const struct http_req *r, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < r->nargs; i++)
        if (!strncmp(r->args[i], name, n) && r->args[i][n] == '=') return r->args[i] + n + 1;
    return NULL;
}

/* One header by name (with its colon); 0 or -1 when it does not fit. */
static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end)
               ? -1
               : 0;
}

static int write_headers(struct http_req *r, struct lws *wsi)
{
    unsigned char buf[LWS_PRE + 2048];
    unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    char ra[16];
    snprintf(ra, sizeof ra, "%u", r->retry_after);
    /* 304 has no body: neither a type nor a length describes one. */
    bool nm = r->status == 304;
    if (lws_add_http_common_headers(wsi, (unsigned)r->status,
                                    nm        ? NULL
                                    : r->type ? r->type
                                              : "application/json",
                                    nm || r->stream ? LWS_ILLEGAL_HTTP_CONTENT_LEN : r->resp_len,
                                    &p, end) ||
        /* A streamed answer on HTTP/1.1 is chunked; without a length lws
         * adds Connection: close itself. */
        (r->stream && !r->h2 && add_header(wsi, "transfer-encoding:", "chunked", &p, end)) ||
        add_header(wsi, "cache-control:", r->cache ? r->cache : "no-store", &p, end) ||
        add_header(wsi, "content-security-policy:", r->csp ? r->csp : API_CSP, &p, end) ||
        (r->retry_after && add_header(wsi, "retry-after:", ra, &p, end)) ||
        (r->allow && add_header(wsi, "allow:", r->allow, &p, end)) ||
        (r->app->cfg.tls_cert[0] && add_header(wsi, "strict-transport-security:", HSTS, &p, end)) ||
        (r->close_after && !r->h2 && !r->stream &&
         add_header(wsi, "connection:", "close", &p, end)))
        return -1;
    for (int i = 0; i < r->nxh; i++)
        if (add_header(wsi, r->xh_name[i], r->xh_value[i], &p, end)) return -1;
    return lws_finalize_write_http_header(wsi, start, &p, end) ? -1 : 0;
}

void http_stream_start(struct http_req *r, int status, const char *type,
                       void (*pull)(struct http_req *r), void *ud, void (*ud_free)(void *))
{
    r->stream = true;
    r->pull = pull;
    r->stream_ud = ud;
    r->stream_free = ud_free;
    r->type = type;
    http_respond(r, status, NULL, 0);
}

/* A streamed answer whose client takes no piece for this long is ended. */
#define STREAM_STALL_S 30

/* Chunk framing around a piece on HTTP/1.1: "<hex>\r\n" before, "\r\n"
 * after, and the last chunk "0\r\n\r\n" after the final piece. */
#define CHUNK_HEAD 18
#define CHUNK_TAIL 7

int http_stream_put(struct http_req *r, const char *const *parts, const size_t *lens, int n,
                    bool last)
{
    size_t len = 0;
    for (int i = 0; i < n; i++)
        len += lens[i];
    mem_free(r->piece);
    r->piece = mem_alloc(LWS_PRE + CHUNK_HEAD + len + CHUNK_TAIL);
    if (!r->piece) {
        http_stream_abort(r);
        return -1;
    }
    unsigned char *body = r->piece + LWS_PRE + CHUNK_HEAD, *p = body;
    for (int i = 0; i < n; i++) {
        memcpy(p, parts[i], lens[i]);
        p += lens[i];
    }
    r->piece_off = LWS_PRE + CHUNK_HEAD;
    r->piece_len = len;
    if (!r->h2) {
        /* An empty chunk would end the body: an empty piece is sent as
         * nothing but the end, or not at all. */
        char h[CHUNK_HEAD + 1];
        int hl = len ? snprintf(h, sizeof h, "%zx\r\n", len) : 0;
        memcpy(body - hl, h, (size_t)hl);
        r->piece_off -= (size_t)hl;
        r->piece_len += (size_t)hl;
        if (len) {
            memcpy(p, "\r\n", 2);
            p += 2;
            r->piece_len += 2;
        }
        if (last) {
            memcpy(p, "0\r\n\r\n", 5);
            r->piece_len += 5;
        }
    }
    r->piece_last = last;
    if (r->wsi) lws_callback_on_writable(r->wsi);
    return 0;
}

void http_stream_abort(struct http_req *r)
{
    r->stream_abort = true;
    if (r->wsi) lws_callback_on_writable(r->wsi);
}

/* Asks the producer for the next piece unless one waits or is coming. */
static void stream_more(struct http_req *r)
{
    if (r->piece || r->busy || r->stream_abort || r->piece_last) return;
    r->pull(r);
}

static int stream_writeable(struct conn *c, struct http_req *r)
{
    struct lws *wsi = r->wsi;
    if (r->stream_abort) {
        log_warn("streamed answer aborted", "path=%s", r->path);
        return -1; /* the completion (if any) frees r */
    }
    if (!r->piece) return 0;
    bool last = r->piece_last;
    /* The piece is taken before the write: a partial write is kept by lws,
     * and WRITEABLE comes back only once it is out. */
    int w = r->piece_len ? lws_write(wsi, r->piece + r->piece_off, r->piece_len,
                                     last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP)
                         : 0;
    int want = (int)r->piece_len;
    mem_free(r->piece);
    r->piece = NULL;
    if (w != want) return -1;
    if (!last) {
        /* lws ends an HTTP/1.1 connection a few seconds (keepalive_timeout)
         * into its answer; a long stream (an export) is instead allowed
         * STREAM_STALL_S without progress, counted from each piece. */
        lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, STREAM_STALL_S);
        stream_more(r);
        return 0;
    }
    bool h2 = r->h2;
    if (r->busy) return -1; /* cannot happen: nothing is asked for after the last */
    http_req_free(r);
    c->req = NULL;
    /* An HTTP/1.1 answer without a length ends with its connection. */
    if (!h2) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int http_writeable(struct conn *c)
{
    struct http_req *r = c->req;
    struct lws *wsi = r ? r->wsi : NULL;
    if (!r || !r->status) return 0; /* spurious: nothing to write yet */
    if (r->stream && r->headers_sent) return stream_writeable(c, r);
    /* HEAD: the headers GET would send, Content-Length included, and no body. */
    size_t body_len = r->method == HM_HEAD ? 0 : r->resp_len;
    if (!r->headers_sent) {
        if (write_headers(r, wsi)) return -1;
        r->headers_sent = true;
        if (r->stream) {
            if (r->piece)
                lws_callback_on_writable(wsi);
            else
                stream_more(r);
            return 0;
        }
        if (body_len) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else {
        /* The body needs LWS_PRE bytes of headroom before it. */
        const char *src = r->resp ? r->resp : r->resp_ref;
        size_t n = body_len - r->resp_sent;
        if (n > HTTP_PIECE) n = HTTP_PIECE;
        bool last = r->resp_sent + n == body_len;
        unsigned char *out = mem_alloc(LWS_PRE + n);
        if (!out) return -1;
        memcpy(out + LWS_PRE, src + r->resp_sent, n);
        int w = lws_write(wsi, out + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
        mem_free(out);
        if (w != (int)n) return -1;
        r->resp_sent += n;
        if (!last) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    }
    bool close = r->close_after;
    http_req_free(r);
    c->req = NULL;
    if (close) return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

void http_closed(struct conn *c)
{
    struct http_req *r = c->req;
    c->req = NULL;
    if (!r) return;
    if (r->busy)
        r->wsi = NULL; /* the completion frees it */
    else
        http_req_free(r);
}
