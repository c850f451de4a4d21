/*
 * apireq.h - one request of the HTTP API once its route is matched: the
 * route it matched (struct route, whose table is in http_api.c), running a
 * statement for it with the standard parameters (apisql.h) and answering with
 * the statement's (status, body, events), and the small helpers the route
 * handlers share (routes.c, signin.c, rights.c).
 *
 * Ownership: a request is answered exactly once, by these functions or by
 * http.h's; a statement's answer is given from its callback, after which
 * the request is no longer the handler's. Bodies passed to http_respond are
 * handed over (http.c frees them).
 */
#ifndef PARLEY_APIREQ_H
#define PARLEY_APIREQ_H

#include "auth.h"
#include "http.h"
#include "stmts.h"

#include <stdbool.h>
#include <stddef.h>

struct jv_field;

enum auth_kind {
    AU_NONE,      /* public */
    AU_TOKEN,     /* any valid token */
    AU_WORKSPACE, /* a token of an active member of the path's workspace */
    AU_OPERATOR,  /* the operator token (outbox) */
    AU_METRICS,   /* the metrics token (/metrics) */
};

struct route;
typedef void (*route_fn)(struct http_req *r);

struct route {
    enum http_method method;       /* method */
    const char *path;              /* OpenAPI syntax: {ws} {id} {id2} are UUIDs, {n} an integer */
    enum auth_kind auth;           /* who may call */
    int perm;                      /* enum perm, or -1 */
    const struct jv_field *body;   /* accepted body fields; NULL: no body */
    const struct stmts_table *sql; /* the table of the statement run by apireq_run_route, */
    int stmt;                      /* and its index there; NULL, -1: none */
    route_fn fn;                   /* custom handler, or NULL: apireq_run_route */
};

/* Runs statement stmt (a prepared index, stmts_at(table, i)) with the
 * standard parameters and answers with its (status, body, events); z is
 * route-specific (a {n} in the path overrides it). */
void apireq_run(struct http_req *r, int stmt, const char *z);
/* The same for a read-only statement that a replica may answer as it is
 * (dbread.h: a report, up to the replica's lag behind the primary). */
void apireq_run_read(struct http_req *r, int stmt, const char *z);
/* Sends statement stmt (n parameters; lengths and formats as db_query's)
 * for r with a callback cb that answers it (ud: r). r is busy until then, or
 * answered at once (apireq_db_error) when the query cannot be sent. */
void apireq_query(struct http_req *r, int stmt, int n, const char *const *v, const int *len,
                  const int *fmt, db_cb cb);
/* In a query callback: true when r is still waiting and res holds rows;
 * false when r has gone or was answered here with the query's error. */
bool apireq_rows(struct http_req *r, PGresult *res, int err);
/* Runs the matched route's own statement (z NULL). */
void apireq_run_route(struct http_req *r);
/* The standard answer of a statement (a db_cb whose ud is the request). */
void apireq_on_stmt(void *ud, PGresult *res, int err);
/* Answers a failed query: 503 when storage is away, 409/400 for constraint
 * violations, 500 (logged) otherwise. res may be NULL. */
void apireq_db_error(struct http_req *r, PGresult *res, int err);
/* Answers 503 with code ("unavailable", "busy") and Retry-After: 1, for
 * what the client should simply try again. */
void apireq_retry_later(struct http_req *r, const char *code, const char *message);
/* Answers status with a copy of s (len bytes; 500 when out of memory). */
void apireq_respond_text(struct http_req *r, int status, const char *s, size_t len);
/* A new token: its text goes in r->scratch ("T<text>") to be spliced into
 * the answer once, its hash (hex) into zhex. */
void apireq_mint(struct http_req *r, char zhex[AUTH_HASH_BYTES * 2 + 1]);
/* Lower-case hex of n bytes into out (2n + 1 bytes). */
void apireq_hex(const unsigned char *in, size_t n, char *out);
/* The string member k of the validated body, or NULL. */
const char *apireq_jstr(const struct http_req *r, const char *k);

#endif
