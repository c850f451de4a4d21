#include "stmts.h"

#include "log.h"

#include <errno.h>

/* One set per process: parleyd has one database and registers at start-up. */
static struct db_stmt all[STMTS_MAX];
static int used;
/* Registered tables, so stmts_reset can put their bases back. */
static struct stmts_table *tables[STMTS_MAX];
static int ntables;

int stmts_register(struct stmts_table *t)
{
    for (int i = 0; i < ntables; i++)
        if (tables[i] == t) return 0;
    if (t->n <= 0 || !t->stmts) return -EINVAL;
    /* All or nothing: a partly registered table would shift every later base. */
    if (t->n > STMTS_MAX - used) {
        log_error("statement registry full", "module=%s needs=%d used=%d max=%d", t->owner, t->n,
                  used, STMTS_MAX);
        return -ENOSPC;
    }
    for (int i = 0; i < t->n; i++)
        all[used + i] = t->stmts[i];
    t->base = used;
    used += t->n;
    tables[ntables++] = t; /* at most one per statement, so never past STMTS_MAX */
    return 0;
}

const struct db_stmt *stmts_all(int *n)
{
    *n = used;
    return all;
}

void stmts_reset(void)
{
    for (int i = 0; i < ntables; i++)
        tables[i]->base = -1;
    ntables = 0;
    used = 0;
}
