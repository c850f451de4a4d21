/*
 * uvev.h - hiredis async contexts on the libuv loop, through a uv_poll on
 * the context's socket. Our own rather than hiredis 0.14's adapters/libuv.h:
 * that one drops poll errors (status < 0), and libuv reports a refused
 * connect exactly that way, so a reconnect to a Redis that is still down
 * would hang forever. Used by the single-server bus and the cluster bus.
 *
 * Ownership: the poll state belongs to the context; hiredis's cleanup hook
 * closes the poll and frees it once libuv is done with it.
 */
#ifndef PARLEY_UVEV_H
#define PARLEY_UVEV_H

#include <hiredis/async.h>
#include <uv.h>

/* 0, or -1 (allocation or poll failure: free the context yourself). */
int uvev_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
