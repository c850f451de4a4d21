#include "http.h"

#include "app.h"
#include "conn.h"
#include "http_api.h"
#include "log.h"
#include "ua.h"

#include <cjson/cJSON.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void req_free(struct http_req *r)
{
    if (!r) return;
    cJSON_Delete(r->json);
    /* Bodies and scratch may hold a password or a token shown once. */
    if (r->body) explicit_bzero(r->body, r->body_len);
    free(r->body);
    if (r->resp) explicit_bzero(r->resp, r->resp_len);
    free(r->resp);
    explicit_bzero(r, sizeof *r);
    free(r);
}

static enum http_method method_of(struct lws *wsi)
{
    static const struct {
        enum lws_token_indexes tok;
        enum http_method m;
    } t[] = {{WSI_TOKEN_GET_URI, HM_GET},       {WSI_TOKEN_POST_URI, HM_POST},
             {WSI_TOKEN_PUT_URI, HM_PUT},       {WSI_TOKEN_PATCH_URI, HM_PATCH},
             {WSI_TOKEN_DELETE_URI, HM_DELETE}, {WSI_TOKEN_OPTIONS_URI, HM_OPTIONS}};
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

static void dispatch(struct http_req *r)
{
    r->busy = false;
    http_api_handle(r);
}

int http_begin(struct app *a, struct conn *c, struct lws *wsi, const char *uri)
{
    if (c->req) { /* a pipelined request before the last one was answered */
        req_free(c->req);
        c->req = NULL;
    }
    struct http_req *r = calloc(1, sizeof *r);
    if (!r) return -1;
    c->req = r;
    r->app = a;
    r->wsi = wsi;
    r->role = ROLE_NONE;
    r->method = method_of(wsi);
    lws_get_peer_simple(wsi, r->ip, sizeof r->ip);
    char ua[512];
    int ulen = lws_hdr_copy(wsi, ua, sizeof ua, WSI_TOKEN_HTTP_USER_AGENT);
    struct ua_info ui = ua_parse(ua, ulen > 0 ? (size_t)ulen : 0);
    r->os = ui.os;
    r->browser = ui.browser;
    read_token(r, wsi);
    while (r->nargs < HTTP_MAX_ARGS &&
           lws_hdr_copy_fragment(wsi, r->args[r->nargs], sizeof r->args[0], WSI_TOKEN_HTTP_URI_ARGS,
                                 r->nargs) > 0)
        r->nargs++;
    if (strlen(uri) >= sizeof r->path) {
        http_error(r, 414, "uri_too_long", "path too long", NULL);
        return 0;
    }
    snprintf(r->path, sizeof r->path, "%s", uri);

    bool has_body = r->method == HM_POST || r->method == HM_PUT || r->method == HM_PATCH;
    char cl[24];
    int cll = lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    long long n = cll > 0 ? atoll(cl) : -1;
    if (!has_body) {
        /* lws reads no body for these methods: one sent would be parsed as
         * the next request, so it is refused and the connection closed. */
        if (n > 0) {
            r->close_after = true;
            http_error(r, 400, "bad_request", "this method takes no body", NULL);
            return 0;
        }
        dispatch(r);
        return 0;
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0) {
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
    r->content_length = (size_t)n;
    r->body = malloc(r->content_length + 1);
    if (!r->body) return -1;
    r->body[0] = 0;
    /* lws reports body completion only for POST with an explicit zero. */
    if (n == 0 && r->method != HM_POST) dispatch(r);
    return 0;
}

int http_body(struct conn *c, const void *in, size_t len)
{
    struct http_req *r = c->req;
    if (!r || !r->body || r->status) return 0; /* already answered: discard */
    if (len > r->content_length - r->body_len) return -1;
    memcpy(r->body + r->body_len, in, len);
    r->body_len += len;
    r->body[r->body_len] = 0;
    return 0;
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
        free(body);
        return;
    }
    r->status = status;
    r->resp = body;
    r->resp_len = body ? len : 0;
    if (r->wsi) lws_callback_on_writable(r->wsi);
}

void http_error(struct http_req *r, int status, const char *code, const char *message,
                const char *field)
{
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(e, "code", code);
    cJSON_AddStringToObject(e, "message", message);
    if (field && *field) cJSON_AddStringToObject(e, "field", field);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    r->type = NULL; /* errors are JSON whatever the route answers */
    http_respond(r, status, s, s ? strlen(s) : 0);
}

bool http_alive(struct http_req *r)
{
    r->busy = false;
    if (r->wsi) return true;
    req_free(r);
    return false;
}

const char *http_arg(const struct http_req *r, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < r->nargs; i++)
        if (!strncmp(r->args[i], name, n) && r->args[i][n] == '=') return r->args[i] + n + 1;
    return NULL;
}

int http_writeable(struct conn *c)
{
    struct http_req *r = c->req;
    struct lws *wsi = r ? r->wsi : NULL;
    if (!r || !r->status) return 0; /* spurious: nothing to write yet */
    if (!r->headers_sent) {
        unsigned char buf[LWS_PRE + 1024];
        unsigned char *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
        char ra[16];
        snprintf(ra, sizeof ra, "%u", r->retry_after);
        if (lws_add_http_common_headers(wsi, (unsigned)r->status,
                                        r->type ? r->type : "application/json", r->resp_len, &p,
                                        end) ||
            lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                        (const unsigned char *)"no-store", 8, &p, end) ||
            (r->retry_after &&
             lws_add_http_header_by_name(wsi, (const unsigned char *)"retry-after:",
                                         (const unsigned char *)ra, (int)strlen(ra), &p, end)) ||
            (r->allow && lws_add_http_header_by_name(
                             wsi, (const unsigned char *)"allow:", (const unsigned char *)r->allow,
                             (int)strlen(r->allow), &p, end)) ||
            lws_finalize_write_http_header(wsi, start, &p, end))
            return -1;
        r->headers_sent = true;
        if (r->resp_len) {
            lws_callback_on_writable(wsi);
            return 0;
        }
    } else {
        /* The body needs LWS_PRE bytes of headroom before it. */
        unsigned char *out = malloc(LWS_PRE + r->resp_len);
        if (!out) return -1;
        memcpy(out + LWS_PRE, r->resp, r->resp_len);
        int w = lws_write(wsi, out + LWS_PRE, r->resp_len, LWS_WRITE_HTTP_FINAL);
        free(out);
        if (w != (int)r->resp_len) return -1;
    }
    bool close = r->close_after;
    req_free(r);
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
        req_free(r);
}
