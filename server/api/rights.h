/*
 * rights.h - people's data rights and the retention jobs: export of what
 * the server holds about a person (streamed JSON, or a ZIP of CSV files
 * with ?format=csv, protocol/EXPORT.md),
 * erasure of a person's account or of their data in one workspace
 * (pseudonyms, stubs; sql/009), and the periodic jobs that apply each
 * workspace's retention, erase removed members after their grace period and
 * remove expired visits, tokens, invitations and outbox items.
 *
 * The SQL lives in the statements below and in sql/009's functions; the
 * routes are in http_api.c's table (which calls the handlers here), and the
 * statements are registered with the others (ops/lifecycle.c).
 *
 * Ownership: an export's state belongs to its request (freed with it); the
 * jobs own nothing between runs.
 */
#ifndef PARLEY_RIGHTS_H
#define PARLEY_RIGHTS_H

#include "stmts.h"

#include <stdint.h>

struct app;
struct http_req;

enum rights_stmt {
    R_ERASE_ME,       /* P convention; z: the token id (must be a fresh password login) */
    R_ERASE_MEMBER,   /* P convention; id1: the person; b: {reason} */
    R_EXPORT_HEAD,    /* $1 subject, $2 workspace or NULL, $3 actor -> the document's head */
    R_EX_MEMBERSHIPS, /* sections: $1 subject, $2 workspace or NULL, $3 key, $4 limit */
    R_EX_MESSAGES,    /* -> (items joined by ',', count, last key) */
    R_EX_READ,
    R_EX_SEEN,
    R_EX_LIKES,
    R_EX_RATINGS,
    R_EX_INVITATIONS,
    R_EX_MODERATION,
    R_EX_HITS,
    R_EX_HELD,
    R_EX_MUTES,
    R_EX_VISITS,
    R_EX_TOKENS,
    R_RETENTION, /* $1 batch, $2 visit days -> counts (json) */
    R__COUNT
};

/* Its table in the statement registry (stmts.h). */
extern struct stmts_table rights_sql;

/* What the retention jobs removed, by kind, for /metrics. */
enum rights_kind {
    RK_MESSAGES,    /* message bodies cut to stubs by workspace retention */
    RK_RECEIPTS,    /* read state and seen rows */
    RK_VOTES,       /* likes and ratings */
    RK_HELD,        /* decided held messages */
    RK_MEMBERS,     /* removed members erased after the grace period */
    RK_VISITS,      /* visit-log rows past --visit-retention-days */
    RK_TOKENS,      /* expired or revoked tokens */
    RK_INVITATIONS, /* used, revoked and expired invitations */
    RK_OUTBOX,      /* acknowledged outbox items */
    RK_WS_ROWS,     /* rows of deleted workspaces purged after their grace (wsdelete.c) */
    RK_WORKSPACES,  /* deleted workspaces whose purge completed */
    RK__COUNT
};
extern const char *const rights_kind_names[RK__COUNT];

/* Route handlers (http_api.c's table). */
void rights_erase_me(struct http_req *r);      /* DELETE /api/v1/me */
void rights_export_me(struct http_req *r);     /* GET /api/v1/me/export */
void rights_export_member(struct http_req *r); /* GET .../people/{id}/export */

/* The retention jobs, one batch each run (the jobs timer in ops/lifecycle.c). */
void rights_retention(struct app *a);

#endif
