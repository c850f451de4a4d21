#include "dbread.h"

#include "app.h"
#include "mem.h"
#include "stats.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One read on the replica: its check and the read itself hold a reference
 * each; the parameters are kept for a resend to the primary. */
struct rd {
    struct app *app; /* owner */
    db_cb cb;        /* the caller's */
    void *ud;        /* ... and its argument */
    int stmt;        /* the read's statement */
    int n;           /* its parameters */
    int refs;        /* queries of this read still owed a callback */
    int64_t floor;   /* the seq the check must reach */
    bool checked;    /* the check answered, and reached floor */
    bool room;       /* a read of a room (with a floor), not a report */
    char **v;        /* parameter copies (inside this allocation) */
};

struct dbread_floors {
    struct {
        char room[PP_UUID_LEN + 1];
        int64_t seq;
    } slot[DBREAD_FLOORS];
};

static unsigned floor_slot(const char *room)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = room; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % DBREAD_FLOORS;
}

void dbread_note(struct app *a, const char *room, int64_t seq)
{
    if (!a->dbr) return;
    if (!a->dbr_floors && !(a->dbr_floors = mem_calloc(1, sizeof *a->dbr_floors))) return;
    unsigned i = floor_slot(room);
    if (strcmp(a->dbr_floors->slot[i].room, room)) {
        snprintf(a->dbr_floors->slot[i].room, sizeof a->dbr_floors->slot[i].room, "%s", room);
        a->dbr_floors->slot[i].seq = 0;
    }
    if (seq > a->dbr_floors->slot[i].seq) a->dbr_floors->slot[i].seq = seq;
}

void dbread_free(struct app *a)
{
    mem_free(a->dbr_floors);
    a->dbr_floors = NULL;
}

/* The floor raised to what this gateway committed in room. */
static int64_t floor_with_own(const struct app *a, const char *room, int64_t floor)
{
    if (!a->dbr_floors) return floor;
    unsigned i = floor_slot(room);
    int64_t own = strcmp(a->dbr_floors->slot[i].room, room) ? 0 : a->dbr_floors->slot[i].seq;
    return own > floor ? own : floor;
}

static void rd_unref(struct rd *r)
{
    if (--r->refs == 0) mem_free(r);
}

/* The read goes to the primary; its answer goes straight to the caller. */
static void rd_primary(struct rd *r, int why)
{
    r->app->stats.pg_read_fallback[why]++;
    int rc = db_query(r->app->db, -1, r->stmt, r->n, (const char *const *)r->v, NULL, NULL, r->cb,
                      r->ud);
    if (rc) r->cb(r->ud, NULL, rc); /* this read was promised an answer */
}

static void on_check(void *ud, PGresult *res, int err)
{
    struct rd *r = ud;
    r->checked = !err && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
                 strtoll(PQgetvalue(res, 0, 0), NULL, 10) >= r->floor;
    rd_unref(r);
}

/* Whether a failed read is the replica's fault, so the primary should
 * answer it: a lost connection, a recovery conflict (the standby cancelled
 * the query to apply WAL), or a room's read timing out there. An error the
 * primary would give too (bad input) goes to the caller as it is, and so
 * does a report that outlived the deadline: run again on the primary it
 * would put there the load the replica is for. */
static bool replica_fault(const struct rd *r, const PGresult *res, int err)
{
    if (err) return err != -ETIMEDOUT || r->room;
    const char *st = db_sqlstate(res);
    return !strcmp(st, "40001") || !strcmp(st, "40P01") || !strcmp(st, "57P04") ||
           !strncmp(st, "08", 2);
}

static void on_read(void *ud, PGresult *res, int err)
{
    struct rd *r = ud;
    if ((err || PQresultStatus(res) != PGRES_TUPLES_OK) && replica_fault(r, res, err)) {
        rd_primary(r, DBREAD_ERROR);
    } else if (err || PQresultStatus(res) != PGRES_TUPLES_OK) {
        r->cb(r->ud, res, err); /* the caller's error, as the primary would give it */
    } else if (!r->checked) {
        rd_primary(r, DBREAD_BEHIND);
    } else {
        r->app->stats.pg_read_replica++;
        r->cb(r->ud, res, 0);
    }
    rd_unref(r);
}

int dbread_query(struct app *a, const char *room, int64_t floor, int stmt, int n,
                 const char *const *v, db_cb cb, void *ud)
{
    if (floor == DBREAD_PRIMARY) return db_query(a->db, -1, stmt, n, v, NULL, NULL, cb, ud);
    if (room) floor = floor_with_own(a, room, floor);
    int lane = a->dbr ? db_reader_lane(a->dbr) : -EAGAIN;
    if (lane < 0) {
        if (a->dbr) a->stats.pg_read_fallback[DBREAD_DOWN]++;
        return db_query(a->db, -1, stmt, n, v, NULL, NULL, cb, ud);
    }
    size_t sz = sizeof(struct rd) + (size_t)n * sizeof(char *);
    for (int i = 0; i < n; i++)
        sz += v[i] ? strlen(v[i]) + 1 : 0;
    struct rd *r = mem_alloc(sz);
    if (!r) return -ENOMEM;
    *r = (struct rd){.app = a, .cb = cb, .ud = ud, .stmt = stmt, .n = n, .floor = floor};
    r->v = (char **)(r + 1);
    char *p = (char *)(r->v + n);
    for (int i = 0; i < n; i++) {
        r->v[i] = v[i] ? memcpy(p, v[i], strlen(v[i]) + 1) : NULL;
        p += v[i] ? strlen(v[i]) + 1 : 0;
    }
    r->room = room != NULL;
    if (room) {
        const char *cv[1] = {room};
        if (db_query(a->dbr, lane, ST_LAST_SEQ, 1, cv, NULL, NULL, on_check, r) == 0) r->refs++;
    } else {
        r->checked = true; /* no floor: the replica's answer as it is */
    }
    if (db_query(a->dbr, lane, stmt, n, v, NULL, NULL, on_read, r) == 0) {
        r->refs++;
        return 0;
    }
    /* The pool would not take it: the primary, now. A check in flight
     * still holds r; its callback frees it. */
    a->stats.pg_read_fallback[DBREAD_DOWN]++;
    int rc = db_query(a->db, -1, stmt, n, v, NULL, NULL, cb, ud);
    if (r->refs == 0) mem_free(r);
    return rc;
}
