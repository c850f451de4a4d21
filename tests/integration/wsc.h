/*
 * wsc.h - a small blocking RFC 6455 client for the integration tests over
 * poll(), so tests can do what well-behaved clients never do: send invalid
 * UTF-8, binary or oversized frames, stop reading, bind a chosen source
 * address. The handshake and the frames are wsclient/ (shared with the load
 * generator); this file is the blocking I/O, TLS and the reply queue.
 *
 * Ownership: wsc_connect returns a client the caller frees with wsc_close.
 * Objects returned by wsc_next/wsc_request/wsc_wait_push are cJSON trees the
 * caller frees with cJSON_Delete.
 */
#ifndef WSC_H
#define WSC_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wsc;

struct wsc_opts {
    const char *src_ip;     /* bind to this source address (NULL: any) */
    int rcvbuf;             /* SO_RCVBUF before connect (0: default) */
    bool tls;               /* wss: TLS (certificate not verified: tests use self-signed) */
    const char *origin;     /* send this Origin header (NULL: none) */
    const char *user_agent; /* send this User-Agent header (NULL: none) */
};

/* Connects and upgrades. NULL on failure; *http_status gets the refused
 * status code (or 0 when the connection itself failed or was just closed). */
struct wsc *wsc_connect(int port, const struct wsc_opts *o, int *http_status);
void wsc_close(struct wsc *c);
/* Closes with a TCP reset (unread data dropped), as a crashed client does. */
void wsc_abort(struct wsc *c);

/* Sends one text frame (masked), possibly fragmented into n pieces. */
int wsc_send_text(struct wsc *c, const char *p, size_t len);
int wsc_send_fragmented(struct wsc *c, const char *p, size_t len, int pieces);
/* Sends a frame with any opcode and payload (binary, invalid UTF-8 ...). */
int wsc_send_raw(struct wsc *c, int opcode, const void *p, size_t len);
/* Two such frames in one write(2), so the server reads them in one go. */
int wsc_send_raw2(struct wsc *c, int op1, const void *p1, size_t n1, int op2, const void *p2,
                  size_t n2);

/* The next server object (a frame may carry an array: handed out one by one),
 * waiting at most timeout_ms. NULL on timeout or close. */
cJSON *wsc_next(struct wsc *c, int timeout_ms);
/* Sends {"id":<fresh>, ...json fields} and returns the reply with that id;
 * pushes that arrive meanwhile stay queued. fields is the JSON object body
 * without braces, e.g. "\"op\":\"ping\"". */
cJSON *wsc_request(struct wsc *c, int timeout_ms, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The next push of the given type (others of any type before it are dropped
 * if drop_others, else kept queued). */
cJSON *wsc_wait_push(struct wsc *c, const char *type, int timeout_ms);
/* The next reply (an object with an "id" member, null or not), leaving
 * pushes queued. */
cJSON *wsc_next_reply(struct wsc *c, int timeout_ms);
/* Number of objects queued (already received, not yet taken). */
int wsc_queued(struct wsc *c);

/* The close code the server sent (0: none yet), or -1 when the TCP
 * connection ended without a close frame. Waits up to timeout_ms reading. */
int wsc_wait_closed(struct wsc *c, int timeout_ms);
bool wsc_is_closed(const struct wsc *c);
/* The reason in the server's close frame ("" when none came). */
const char *wsc_close_reason(const struct wsc *c);
/* The payload of the last pong frame received so far (-1: none yet); it
 * is read as frames arrive (wsc_next and the like). */
int wsc_last_pong(const struct wsc *c, const unsigned char **payload);
/* WebSocket messages received so far; a packed array counts once. */
unsigned wsc_messages(const struct wsc *c);

/* Helpers on reply objects. */
const char *wsc_err_code(const cJSON *reply);      /* "bad_json" etc., NULL if ok */
int64_t wsc_int(const cJSON *o, const char *path); /* "ok.seq" style; INT64_MIN if absent */
const char *wsc_str(const cJSON *o, const char *path);

#endif
