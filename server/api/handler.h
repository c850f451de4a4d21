/*
 * handler.h - the protocol ops: decode a client message, check it against
 * the state cached on the connection, and run it (auth, join, leave, send,
 * history, ping). Every command gets exactly one reply.
 *
 * The op table is the seam later issues extend (receipts, votes, moderation);
 * the guidelines engine will hook in before store_send.
 */
#ifndef PARLEY_HANDLER_H
#define PARLEY_HANDLER_H

#include <stddef.h>

struct conn;

/* One complete client message (reassembled text). */
void handler_dispatch(struct conn *c, const char *msg, size_t len);

#endif
