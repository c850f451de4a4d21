/*
 * stmts.h - the one registry of prepared statements. Every module that
 * queries PostgreSQL owns a table of statements (struct db_stmt) and
 * registers it once at start-up; the registry appends it to the set db.c
 * prepares on every connection and records where it starts (its base), so
 * a module finds its statement i at stmts_at(table, i) and never needs to
 * know how many statements any other module has.
 *
 * Ownership: the registry keeps pointers to the registered tables' rows
 * (static tables, never freed) and copies them into one bounded array;
 * stmts_all hands that array to db_new, which borrows it. Registration
 * happens on the loop thread before db_new and is not thread-safe.
 */
#ifndef PARLEY_STMTS_H
#define PARLEY_STMTS_H

#include "db.h"

/* Bounded: a start-up that would need more fails with a message naming the
 * module instead of growing without limit. */
#define STMTS_MAX 256

/* A module's statements and, once registered, where they start. */
struct stmts_table {
    const char *owner;           /* module name, for the start-up error */
    const struct db_stmt *stmts; /* its rows, index = the module's enum */
    int n;                       /* number of rows */
    int base;                    /* first index in the prepared set; -1 until registered */
};

/* Appends t's statements to the prepared set and sets t->base. Registering
 * a table that is already registered keeps its base (0). Returns 0,
 * -EINVAL (no rows), or -ENOSPC when the registry cannot hold all of t (then
 * nothing of t is added and the error is logged with t->owner). */
int stmts_register(struct stmts_table *t);

/* The prepared-set index of t's statement i. */
static inline int stmts_at(const struct stmts_table *t, int i)
{
    return t->base + i;
}

/* Every registered statement in order, for db_new; *n gets the count. */
const struct db_stmt *stmts_all(int *n);

/* Forgets every registration (unit tests; a process registers once). The
 * tables' bases go back to -1. */
void stmts_reset(void);

#endif
