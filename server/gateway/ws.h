/*
 * ws.h - the only libwebsockets callback, and the context on the app's loop.
 * Maps callback reasons to conn_* (WebSocket) and http_* (the HTTP API and
 * the operational endpoints). Enforces the per-IP cap during the handshake (Debian's
 * lws has no peer limits), text-only frames and the reassembly size cap.
 */
#ifndef PARLEY_WS_H
#define PARLEY_WS_H

struct app;

int ws_start(struct app *a);   /* creates the context and listens; 0 or -1 */
void ws_stop(struct app *a);   /* destroys the context (closes every connection) */
void ws_finish(struct app *a); /* after the loop ended: completes the destruction */

#endif
