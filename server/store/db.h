/*
 * db.h - PostgreSQL on the loop: libpq in nonblocking pipeline mode on
 * uv_poll, a few connections (lane 0 for the write batcher, the others for
 * reads), prepared statements, per-query deadlines and reconnection.
 *
 * A query never blocks the loop. While a connection is down, queries fail at
 * once with -EAGAIN (the caller answers `unavailable`). Each connection runs
 * with statement_timeout equal to the query deadline and each query has its
 * own pipeline sync, so a statement slower than that is cancelled by
 * PostgreSQL and fails alone with -ETIMEDOUT; the queries pipelined behind it
 * go on. The client-side deadline is only a late backstop (twice the
 * deadline): a query still unanswered then fails alone with -ETIMEDOUT, and
 * a connection that has answered nothing for that long while owing answers
 * is reset (a silent server cannot be told apart from a dead one).
 *
 * Ownership: db_query copies its parameters. The PGresult handed to a
 * callback belongs to db and is cleared after the callback returns. As in
 * libuv, a db_query that returns an error never calls its callback.
 */
#ifndef PARLEY_DB_H
#define PARLEY_DB_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <uv.h>

struct db;

/* A statement prepared on every connection as it connects. */
struct db_stmt {
    const char *name; /* statement name */
    const char *sql;  /* text with $1..$n */
    int nparams;      /* number of parameters */
};

/* err: 0 (res is the query's result, which may be an error result),
 * -EAGAIN (connection lost), -ETIMEDOUT (cancelled at the deadline by
 * PostgreSQL, or unanswered at the backstop). */
typedef void (*db_cb)(void *ud, PGresult *res, int err);

struct db *db_new(uv_loop_t *loop, const char *conninfo, int nconns, int timeout_ms,
                  const struct db_stmt *stmts, int nstmts);
/* Starts connecting every connection; returns at once. */
void db_start(struct db *db);
/* True when every connection is up and has its statements prepared. */
bool db_ready(const struct db *db);
/* Fails every pending query with -EAGAIN, closes connections and handles;
 * the struct is freed once libuv has closed the handles. */
void db_close(struct db *db);

/* A pool with no writer (the replica's, --pg-read): lane 0 is a reader too;
 * its log lines say pool=read. */
void db_readers_only(struct db *db);
/* A ready reader's lane (round robin), to pin queries that must run in
 * order on one connection, hence one server; -EAGAIN when none is ready. */
int db_reader_lane(struct db *db);

/* lane 0: the writer connection; lane < 0: any reader (round robin).
 * values[i] may be NULL (SQL NULL); lengths/formats as in PQexecPrepared
 * (NULL means all text). Returns 0, -EAGAIN (down), -ENOBUFS (queue full),
 * -ENOMEM. */
int db_query(struct db *db, int lane, int stmt, int nparams, const char *const *values,
             const int *lengths, const int *formats, db_cb cb, void *ud);

/* Connections ready, connections re-established, errors (lost or timed out). */
int db_ready_count(const struct db *db);
unsigned long long db_reconnects(const struct db *db);
unsigned long long db_errors(const struct db *db);

/* Queries waiting or in flight, for backpressure and metrics. */
unsigned db_pending(const struct db *db);

/* "23505" etc. for an error result, "" otherwise. */
const char *db_sqlstate(const PGresult *res);

#endif
