/*
 * ws.h - the only libwebsockets callback, and the context on the app's loop.
 * Maps callback reasons to conn_* (WebSocket) and http_* (the HTTP API and
 * the operational endpoints). Enforces the per-IP cap during the handshake (Debian's
 * lws has no peer limits), text-only frames and the reassembly size cap.
 */
#ifndef PARLEY_WS_H
#define PARLEY_WS_H

#include <stddef.h>

struct app;
struct conn;
struct http_req;

/* What the gateway hands up: the layers above it (the API, the rooms) are
 * reached only through these, so the gateway never calls up. The wiring
 * (ops/lifecycle.c) fills them in; ws_start keeps a copy (a->gw_hooks) until
 * ws_finish. Every member must be set. */
struct gateway_hooks {
    void *ud; /* passed to each hook */
    /* A complete text message from c (authenticated or not): decode it and
     * act on it. msg is valid during the call only. */
    void (*on_message)(void *ud, struct conn *c, const char *msg, size_t len);
    /* An HTTP request whose headers and body are in: route and answer it. */
    void (*on_request)(void *ud, struct http_req *r);
    /* c is being destroyed (its pending work already unhooked): forget it
     * everywhere it is a member. */
    void (*on_conn_gone)(void *ud, struct conn *c);
    /* c's out-queue is down to its low-water mark (conn_low_water): paced
     * work for it may go on. */
    void (*on_conn_drained)(void *ud, struct conn *c);
};

/* Creates the context and listens; 0 or -1. hooks is copied. */
int ws_start(struct app *a, const struct gateway_hooks *hooks);
void ws_stop(struct app *a);   /* destroys the context (closes every connection) */
void ws_finish(struct app *a); /* after the loop ended: completes the destruction */

#endif
