/*
 * eio.h - the Engine.IO v4 / Socket.IO v5 text framing that parley-load
 * speaks to the Socket.IO peer, as pure functions so unit tests check it.
 *
 *   "0{...}"          engine open              -> EIO_OPEN
 *   "2"               engine ping              -> EIO_PING (answer "3")
 *   "40" / "40{...}"  namespace "/" connected  -> EIO_CONNECTED
 *   "43<id>[...]"     an ack of emit <id>      -> EIO_ACK, id, payload = "[...]"
 *   "42[...]"         an event                 -> EIO_EVENT, payload = "[...]"
 * Anything else (noop, close, binary attachments, other namespaces) is
 * EIO_OTHER. Nothing is allocated; payload points into the frame.
 */
#ifndef PARLEY_EIO_H
#define PARLEY_EIO_H

#include <stddef.h>
#include <stdint.h>

enum eio_kind { EIO_OTHER, EIO_OPEN, EIO_PING, EIO_CONNECTED, EIO_ACK, EIO_EVENT };

struct eio_frame {
    enum eio_kind kind;  /* what the frame is */
    int64_t id;          /* EIO_ACK: the emit it answers */
    const char *payload; /* EIO_ACK, EIO_EVENT: the JSON array */
    size_t len;          /* its length */
};

void eio_parse(const char *p, size_t n, struct eio_frame *out);

/* Writes `42<id>[<args>]` (an emit asking for an ack) into buf; returns its
 * length, or 0 if it does not fit. args is the JSON of the array's items. */
size_t eio_emit(char *buf, size_t cap, int64_t id, const char *args);

#endif
