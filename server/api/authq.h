/*
 * authq.h - the `auth` op under a sign-in burst: token look-ups batched into
 * one query for many tokens, and admission at the rate PostgreSQL answers.
 *
 * At most auth_inflight look-ups are in flight; each carries up to
 * auth_batch_max tokens, so an idle gateway answers a lone auth in one
 * round trip (its batch is sent at the end of the loop turn that read it)
 * while a burst fills batches from the queue. Auths beyond that wait in a
 * bounded queue. An auth is answered `busy` with retry_after_ms at once
 * when the queue is full or the wait expected from the measured batch time
 * passes auth_wait_ms, and later when it has waited auth_wait_ms anyway
 * (the database slowed down): a client is never left to reach its auth
 * timeout because the server was slow. While an auth is queued or looked up
 * (conn->auth_pending) the gateway's auth timeout does not close the
 * connection; a `busy` or `unavailable` answer starts the timeout afresh, so
 * the client may retry on the same connection after the hint.
 *
 * Each batch's sign-ins are written to the visit log in one statement.
 *
 * Ownership: the struct authq is app->authq (authq_new/authq_free). A queued
 * or looked-up auth holds a creq on its connection; a connection that closes
 * meanwhile is skipped (not looked up) or its answer dropped.
 */
#ifndef PARLEY_AUTHQ_H
#define PARLEY_AUTHQ_H

struct app;
struct conn;
struct pp_cmd;

/* 0, or -ENOMEM. */
int authq_new(struct app *a);
/* Answers nothing more: queued auths are dropped with their connections
 * (shutdown); look-ups in flight complete into freed-safe batches. */
void authq_free(struct app *a);

/* The `auth` op (handler.c's table). */
void authq_op(struct conn *c, const struct pp_cmd *cmd);

#endif
