/*
 * http.h - one HTTP request on libwebsockets, from headers to response, for
 * routes that answer later (after a query, a Redis call or a password hash
 * on the thread pool).
 *
 * ws.c feeds the lws callbacks in: http_begin (LWS_CALLBACK_HTTP), http_body,
 * http_body_done, http_writeable, http_closed. Everything the handler needs
 * from the headers is copied at http_begin, so nothing depends on lws keeping
 * them. The response is written only from HTTP_WRITEABLE: headers first,
 * then the body, one lws_write each.
 *
 * Ownership: struct http_req is allocated (mem.h) at http_begin and owned by the
 * connection until it is answered; a handler with work in flight marks it
 * busy. If the client goes away meanwhile, http_closed clears req->wsi and the
 * completion must call http_alive(), which frees an orphaned request and
 * returns false.
 */
#ifndef PARLEY_HTTP_H
#define PARLEY_HTTP_H

#include "auth.h"
#include "perm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct app;
struct conn;
struct lws;

enum http_method { HM_GET, HM_POST, HM_PUT, HM_PATCH, HM_DELETE, HM_OPTIONS, HM_HEAD, HM_OTHER };

#define HTTP_MAX_ARGS 8 /* query arguments kept */
#define HTTP_MAX_IDS 3  /* ids taken from the path */
#define HTTP_MAX_XH 6   /* extra response headers */

struct http_req {
    struct app *app;                           /* owner of everything */
    struct lws *wsi;                           /* NULL once the client went away */
    enum http_method method;                   /* request method */
    char path[256];                            /* path without the query */
    char args[HTTP_MAX_ARGS][128];             /* query arguments "k=v", URL-decoded */
    int nargs;                                 /* how many */
    char ip[48];                               /* client address */
    const char *os, *browser;                  /* User-Agent families (static strings) */
    bool has_token;                            /* an Authorization: Bearer token was sent */
    unsigned char token_hash[AUTH_HASH_BYTES]; /* its hash */
    bool bad_token;                            /* Authorization present but malformed */
    size_t content_length;                     /* announced body size */
    char *body;                                /* request body (NUL-terminated), or NULL */
    size_t body_len;                           /* bytes received */
    bool busy;                                 /* a completion is pending */
    bool h2;                                   /* an HTTP/2 stream (TLS with ALPN h2) */
    uint64_t deadline;                         /* loop time (ms) by which the body must be in */
    /* Copied for GET and HEAD only (static files, web.c); "" when absent or too long. */
    char host[256];             /* Host */
    char if_none_match[512];    /* If-None-Match */
    char if_modified_since[64]; /* If-Modified-Since */
    char accept_encoding[256];  /* Accept-Encoding */
    /* Filled by the router and handlers. */
    const void *route;                     /* the matched route */
    char ids[HTTP_MAX_IDS][40];            /* path parameters in order */
    void *json;                            /* parsed body (cJSON *), or NULL */
    char person[40];                       /* authenticated person */
    char token_id[40];                     /* the token used */
    bool avatar;                           /* the person is an avatar (bot) */
    enum role role;                        /* role in the path's workspace, ROLE_NONE */
    char scratch[256];                     /* handler-specific (a token, an email key) */
    const char *not_found_code;            /* error code when the statement finds nothing */
    unsigned char secret[AUTH_HASH_BYTES]; /* handler-specific hash */
    /* The response. */
    int status;           /* HTTP status; 0 while unanswered */
    char *resp;           /* body (mem_alloc'd or cJSON's, freed with mem_free), or NULL */
    size_t resp_len;      /* its length */
    unsigned retry_after; /* seconds for Retry-After, 0: none */
    const char *allow;    /* Allow header (405), or NULL */
    char allow_buf[64];   /* storage for allow */
    const char *type;     /* Content-Type; NULL: application/json */
    bool close_after;     /* close the connection after answering */
    bool headers_sent;    /* step of the write */
    const char *resp_ref; /* body borrowed from an owner that outlives the request, or NULL */
    size_t resp_sent;     /* body bytes written so far (large bodies go out in pieces) */
    const char *cache;    /* Cache-Control; NULL: no-store */
    const char *csp;      /* Content-Security-Policy; NULL: the API's (nothing may load) */
    char csp_buf[512];    /* storage for csp (the page's names the Host it was asked for) */
    const char *xh_name[HTTP_MAX_XH];  /* more headers ("etag:"), static strings */
    const char *xh_value[HTTP_MAX_XH]; /* their values, outliving the request */
    int nxh;                           /* how many */
    /* A streamed answer (http_stream_start): pieces produced one at a time. */
    bool stream;                     /* the answer is streamed */
    void (*pull)(struct http_req *); /* asked for the next piece once one is written */
    void *stream_ud;                 /* the producer's state */
    void (*stream_free)(void *);     /* frees stream_ud with the request */
    unsigned char *piece;            /* the next piece, LWS_PRE and framing included */
    size_t piece_off, piece_len;     /* where its bytes start in piece, and how many */
    bool piece_last;                 /* it ends the answer */
    bool stream_abort;               /* the producer failed: close without the end */
};

/* LWS_CALLBACK_HTTP (uri and its length, as lws passes them): returns 0,
 * or -1 to close. */
int http_begin(struct app *a, struct conn *c, struct lws *wsi, const char *uri, size_t len);
int http_body(struct conn *c, const void *in, size_t len);
int http_body_done(struct conn *c);
int http_writeable(struct conn *c);
void http_closed(struct conn *c);

/* The parts of reading a request that need no socket (http_begin and
 * http_body run them on what lws parsed), so tests can drive them alone:
 * a new request (wsi may be NULL), NULL when out of memory; */
struct http_req *http_req_new(struct app *a, struct lws *wsi);
/* room for an announced body of n bytes: 0, or -ENOMEM; */
int http_req_body_begin(struct http_req *r, size_t n);
/* a piece of the body: 0 (also when the request is answered already or
 * answered now, 408 past its deadline), -EMSGSIZE past the announced size; */
int http_req_body_put(struct http_req *r, const void *in, size_t len);
/* and freeing one, with what it holds. */
void http_req_free(struct http_req *r);

/* Answers the request (takes body, which may be NULL). Safe to call once. */
void http_respond(struct http_req *r, int status, char *body, size_t len);
/* Answers with a body the request does not own (it must outlive the
 * request: web.c's files live until exit). HEAD gets the headers only. */
void http_respond_ref(struct http_req *r, int status, const char *body, size_t len);
/* Adds a response header (name with its colon, "etag:"); both strings must
 * outlive the request. -1 when HTTP_MAX_XH are already set. */
int http_add_header(struct http_req *r, const char *name, const char *value);
/* Answers {"error":{"code","message"[,"field"]}}; out of memory, 500
 * internal from a static body. */
void http_error(struct http_req *r, int status, const char *code, const char *message,
                const char *field);
/* A streamed answer of unknown length, so that a large one (an export)
 * never sits whole in memory: on HTTP/1.1 it goes chunked (with
 * Connection: close), on HTTP/2 as DATA frames. pull(r) is called after
 * the headers and after each piece is written; it produces the next piece
 * later, from a completion, with http_stream_put. At most one piece waits
 * at a time, and the next is asked for only when the socket took the last:
 * memory stays one piece however long the answer. ud (may be NULL) is
 * freed with the request by ud_free. */
void http_stream_start(struct http_req *r, int status, const char *type,
                       void (*pull)(struct http_req *r), void *ud, void (*ud_free)(void *));
/* The next piece: the n parts are copied, in order; last ends the answer.
 * 0, or -1 when out of memory (the answer is then aborted). */
int http_stream_put(struct http_req *r, const char *const *parts, const size_t *lens, int n,
                    bool last);
/* The producer failed midway: the connection is closed without the final
 * chunk, so the client sees a truncated transfer, never a short success. */
void http_stream_abort(struct http_req *r);

/* For completions: false (and r freed) when the client went away. */
bool http_alive(struct http_req *r);

/* The value of query argument name, or NULL. */
const char *http_arg(const struct http_req *r, const char *name);

#endif
