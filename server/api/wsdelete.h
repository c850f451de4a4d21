/*
 * wsdelete.h - deleting a workspace with a grace period (issue 17).
 *
 * DELETE /api/v1/workspaces/{ws} (owners) marks the workspace deleted: for
 * everyone, its owners included, it is then like a workspace that does not
 * exist (404 on every route, connections closed on every gateway, no
 * sign-in, invitation or self-join into it), but nothing is removed. Until
 * its purge_at (now + the workspace's grace setting, member_grace_days,
 * 30 days unless changed) an owner finds it in
 * GET /api/v1/me/deleted-workspaces and restores it with
 * POST /api/v1/workspaces/{ws}/restore; anyone else gets 404 there, so a
 * stranger cannot tell it from a workspace that never existed. After
 * purge_at the purge job (sql/011 parley_ws_purge) removes everything of
 * it in runs of at most --purge-batch rows, one run a second while work
 * is left, then the people whose only workspace it was.
 *
 * The routes are in http_api.c's table (statements only, no handler);
 * the statements are registered with the others (ops/lifecycle.c).
 *
 * Ownership: nothing between requests; the purge's in-flight flag is in
 * struct app.
 */
#ifndef PARLEY_WSDELETE_H
#define PARLEY_WSDELETE_H

#include "db.h"
#include "stmts.h"

struct app;

enum wsdel_stmt {
    WD_DELETE,  /* P convention -> 200 {id, name, deleted_at, purge_at} */
    WD_RESTORE, /* P convention; only an owner of the deleted workspace gets a row */
    WD_LIST,    /* P convention: the deleted workspaces the actor owns */
    WD_PURGE,   /* $1 batch -> {workspace, rows, done, counts} as text */
    WD__COUNT
};

/* Its statements, registered at start (stmts.h). */
extern struct stmts_table wsdel_sql;

/* Once a jobs tick (ops/lifecycle.c): a purge run when the last one left
 * work, and otherwise on the retention period; never two at once. */
void wsdel_purge_tick(struct app *a);

#endif
