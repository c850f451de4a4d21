/*
 * http_api.h - the HTTP JSON API under /api/v1/ (accounts, workspaces,
 * people, invitations and their outbox, rooms, avatars, the visit log) and
 * the operational endpoints (/healthz, /readyz, /metrics). The route table in
 * http_api.c is the list of routes; protocol/openapi.yaml documents each one
 * and a test checks the two agree (`parleyd routes` prints the table).
 *
 * Every request walks the same steps: route match (404, 405), body
 * validation (400, 413 earlier in http.c), token (401), membership of the
 * path's workspace (404, never revealing that another workspace's object
 * exists), permission from perm.c (403), then one SQL statement that scopes
 * every id to that workspace and answers status and body. Errors are
 * {"error":{"code","message","field"?}} with stable codes (API.md).
 *
 * Where things are: this file holds the route table, matching and the
 * token check; the statements live by area in sql_account.c, sql_people.c
 * and sql_rooms.c (and rights.c, moderation.c), running one and answering
 * in apireq.c, the handlers that check before running in routes.c, and
 * sign-in with its rate limits in signin.c.
 */
#ifndef PARLEY_HTTP_API_H
#define PARLEY_HTTP_API_H

#include "db.h"

#include <stdio.h>

struct app;
struct http_req;

void http_api_handle(struct http_req *r);

/* Registers the API's statement tables (sql_account.c, sql_people.c,
 * sql_rooms.c) in the statement registry (stmts.h): 0, or -1 (registry full,
 * logged). */
int http_api_register_stmts(void);

/* What the API hands up; the wiring (ops/lifecycle.c) fills it in and
 * http_api_init keeps a copy (a->api_hooks) until http_api_free. */
struct http_api_hooks {
    void *ud; /* passed to each hook */
    /* The /metrics text, mem_alloc'd (*len set; the route frees it), or NULL
     * when out of memory. */
    char *(*render_metrics)(void *ud, size_t *len);
};

/* Reads the operator token file named in the config (0, or -1 logged). */
int http_api_init(struct app *a, const struct http_api_hooks *hooks);
/* Frees what http_api_init kept (after the last request). */
void http_api_free(struct app *a);

/* Prints "METHOD PATH" per route, OpenAPI path syntax (parleyd routes). */
void http_api_print_routes(FILE *f);

/* The visit log's IP anonymisation job (run periodically by ops/lifecycle.c). */
void http_api_anonymise(struct app *a);

#endif
