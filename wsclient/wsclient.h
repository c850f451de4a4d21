/*
 * wsclient.h - the client side of RFC 6455, shared by the integration tests'
 * blocking client (tests/integration/wsc.c) and the load generator's epoll
 * clients (loadtest/parley_load.c): the upgrade request and the check of the
 * server's answer, masked frames out, frames in.
 *
 * Pure functions over the caller's buffers: no I/O and no allocation, so each
 * caller keeps its own I/O (poll with TLS, epoll over thousands of sockets)
 * and unit tests check the protocol part alone. Nothing here is used by the
 * server (server/gateway/ws.c speaks through libwebsockets).
 */
#ifndef PARLEY_WSCLIENT_H
#define PARLEY_WSCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WSCL_KEY_LEN 24 /* Sec-WebSocket-Key: base64 of 16 bytes */
#define WSCL_HDR_MAX 14 /* a client frame's header: 2 + 8 length + 4 mask */

/* Sec-WebSocket-Key for a 16-byte nonce the caller chose (random per
 * connection, as the RFC asks). key gets WSCL_KEY_LEN characters and a NUL. */
void wscl_key(const unsigned char nonce[16], char key[WSCL_KEY_LEN + 1]);

/* The upgrade request. path, host, key required; protocol (the
 * Sec-WebSocket-Protocol value) and extra (whole header lines, each ending
 * in \r\n) may be NULL. Returns its length, or -1 when it does not fit cap. */
struct wscl_upgrade {
    const char *path;     /* "/" or "/socket.io/?EIO=4&transport=websocket" */
    const char *host;     /* Host header value */
    const char *key;      /* from wscl_key */
    const char *protocol; /* subprotocol asked for, or NULL */
    const char *extra;    /* more header lines, or NULL */
};
int wscl_request(char *buf, size_t cap, const struct wscl_upgrade *u);

/* The server's answer to the upgrade, p[0..n). Returns the length of its
 * header block once it is complete (frames may follow in the same read), 0
 * before. *status gets the HTTP status (0 when the status line is not HTTP);
 * *accepted is true only for a 101 whose Sec-WebSocket-Accept answers key:
 * anything else is not the connection asked for. */
size_t wscl_response(const char *p, size_t n, const char *key, int *status, bool *accepted);

/* Bytes a masked frame of n payload bytes takes. */
size_t wscl_frame_size(size_t n);
/* Writes one masked client frame into out (wscl_frame_size(n) bytes): first
 * is the first byte as sent, FIN included (0x81 a text message, 0x01 the
 * first fragment, 0x88 a close ...); the payload is XORed with mask (the
 * four bytes of mask, most significant first). Returns the bytes written. */
size_t wscl_frame(unsigned char *out, unsigned first, const void *p, size_t n, uint32_t mask);

/* One frame as the server sent it. */
struct wscl_in {
    unsigned opcode;              /* 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong */
    bool fin;                     /* last fragment of its message */
    const unsigned char *payload; /* inside the caller's buffer */
    size_t len;                   /* payload bytes */
    size_t size;                  /* the whole frame, header included */
};
/* Parses the frame at p[0..n): 1 with *f filled, 0 while it is incomplete,
 * -1 when no server may send it (masked, or a length over 2^63). */
int wscl_parse(const unsigned char *p, size_t n, struct wscl_in *f);

/* A close frame's status code: 1005 (none) when its payload is shorter
 * than two bytes. */
int wscl_close_code(const struct wscl_in *f);

#endif
