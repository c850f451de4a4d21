/*
 * rows-store - the primary's write ceiling with the send batcher's own
 * statement (store.c's insert_batch, taken from the server's statement
 * table, not a copy): each of `conns` connections prepares it and commits
 * one batch of `batch` sends after another, each batch spread over random
 * rooms of `rooms`, for `secs` seconds, the way the store's batcher keeps
 * one batch in flight per connection. Prints one JSON line: rows committed
 * per second and the batch commit latency's median and p99.
 *
 *   rows-store CONNINFO [secs] [conns] [batch] [rooms]   (defaults 10 4 100 500)
 *
 * It makes its own workspace, rooms and sender. A benchmark, not a test:
 * loadtest/bench_rows.sh --store runs it against both schemas.
 */
#include "store.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_CONNS 64
#define MAX_LAT 200000 /* batch latencies kept per connection */

struct worker {
    const char *conninfo;
    int id, secs, batch, rooms;
    char (*room)[40];
    const char *sender;
    int64_t rows;
    int nlat;
    double *lat; /* ms */
    int failed;
};

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *run(void *arg)
{
    struct worker *w = arg;
    PGconn *pg = PQconnectdb(w->conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "rows-store: %s", PQerrorMessage(pg));
        w->failed = 1;
        PQfinish(pg);
        return NULL;
    }
    const struct db_stmt *st = &store_sql.stmts[ST_INSERT_BATCH];
    PGresult *r = PQprepare(pg, st->name, st->sql, st->nparams, NULL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        fprintf(stderr, "rows-store: prepare: %s", PQresultErrorMessage(r));
        w->failed = 1;
    }
    PQclear(r);
    size_t cap = (size_t)w->batch * 320 + 16; /* an item is about 250 bytes */
    char *json = malloc(cap);
    unsigned seed = (unsigned)w->id * 7919u + 1;
    double end = now_s() + w->secs;
    for (int64_t n = 0; !w->failed && json && now_s() < end; n++) {
        size_t len = 0;
        json[len++] = '[';
        for (int i = 0; i < w->batch; i++)
            len += (size_t)snprintf(json + len, cap - len,
                                    "%s{\"i\":%d,\"room\":\"%s\",\"sender\":\"%s\","
                                    "\"cmid\":\"w%d-%lld-%d\",\"body\":\"%064d\","
                                    "\"kind\":\"auto\",\"parent\":null}",
                                    i ? "," : "", i, w->room[rand_r(&seed) % (unsigned)w->rooms],
                                    w->sender, w->id, (long long)n, i, i);
        snprintf(json + len, cap - len, "]");
        const char *v[1] = {json};
        double t0 = now_s();
        r = PQexecPrepared(pg, st->name, 1, v, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(stderr, "rows-store: %s", PQresultErrorMessage(r));
            w->failed = 1;
        } else {
            w->rows += PQntuples(r);
            if (w->nlat < MAX_LAT) w->lat[w->nlat++] = (now_s() - t0) * 1e3;
        }
        PQclear(r);
    }
    free(json);
    PQfinish(pg);
    return NULL;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Runs one parameterised statement; its first value into out (may be NULL). */
static int one(PGconn *pg, const char *sql, int n, const char *const *v, char *out, size_t cap)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, v, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) >= 1;
    if (!ok) fprintf(stderr, "rows-store: %s", PQresultErrorMessage(r));
    if (ok && out) snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: rows-store CONNINFO [secs] [conns] [batch] [rooms]\n");
        return 2;
    }
    int secs = argc > 2 ? atoi(argv[2]) : 10, conns = argc > 3 ? atoi(argv[3]) : 4,
        batch = argc > 4 ? atoi(argv[4]) : 100, rooms = argc > 5 ? atoi(argv[5]) : 500;
    if (secs < 1 || conns < 1 || conns > MAX_CONNS || batch < 1 || batch > 10000 || rooms < 1 ||
        rooms > 100000) {
        fprintf(stderr, "rows-store: secs >= 1, conns 1..%d, batch 1..10000, rooms 1..100000\n",
                MAX_CONNS);
        return 2;
    }
    PGconn *pg = PQconnectdb(argv[1]);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "rows-store: %s", PQerrorMessage(pg));
        return 1;
    }
    char ws[40], sender[40], nr[16];
    char(*room)[40] = calloc((size_t)rooms, sizeof *room);
    snprintf(nr, sizeof nr, "%d", rooms);
    const char *wv[1] = {ws}, *rv[2] = {ws, nr};
    if (!room ||
        one(pg, "INSERT INTO workspaces (name) VALUES ('rows-store') RETURNING id", 0, NULL, ws,
            sizeof ws) ||
        one(pg,
            "INSERT INTO people (email, display_name) VALUES"
            " ('rows-store-' || $1 || '@load.invalid', 'rows-store') RETURNING id",
            1, wv, sender, sizeof sender))
        return 1;
    PGresult *r = PQexecParams(pg,
                               "INSERT INTO rooms (workspace_id, name) SELECT $1::uuid, 'r' || g"
                               " FROM generate_series(1, $2::int) g RETURNING id",
                               2, NULL, rv, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != rooms) {
        fprintf(stderr, "rows-store: rooms: %s", PQresultErrorMessage(r));
        return 1;
    }
    for (int i = 0; i < rooms; i++)
        snprintf(room[i], sizeof room[i], "%s", PQgetvalue(r, i, 0));
    PQclear(r);
    r = PQexec(pg, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'messages'::regclass");
    int parts = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    PQfinish(pg);

    struct worker w[MAX_CONNS];
    pthread_t th[MAX_CONNS];
    double t0 = now_s();
    for (int i = 0; i < conns; i++) {
        w[i] = (struct worker){.conninfo = argv[1],
                               .id = i,
                               .secs = secs,
                               .batch = batch,
                               .rooms = rooms,
                               .room = room,
                               .sender = sender,
                               .lat = calloc(MAX_LAT, sizeof(double))};
        if (!w[i].lat || pthread_create(&th[i], NULL, run, &w[i])) return 1;
    }
    int64_t rows = 0;
    int nlat = 0, failed = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(th[i], NULL);
        rows += w[i].rows;
        nlat += w[i].nlat;
        failed |= w[i].failed;
    }
    double span = now_s() - t0;
    double *all = calloc((size_t)nlat + 1, sizeof *all);
    if (!all) return 1;
    for (int i = 0, k = 0; i < conns; i++) {
        memcpy(all + k, w[i].lat, (size_t)w[i].nlat * sizeof *all);
        k += w[i].nlat;
        free(w[i].lat);
    }
    qsort(all, (size_t)nlat, sizeof *all, cmp_d);
    printf("{\"partitions\": %d, \"conns\": %d, \"batch\": %d, \"rooms\": %d, \"secs\": %.2f,"
           " \"rows\": %lld, \"rows_per_s\": %.0f, \"batches\": %d, \"batch_p50_ms\": %.2f,"
           " \"batch_p99_ms\": %.2f, \"failed\": %d}\n",
           parts, conns, batch, rooms, span, (long long)rows, (double)rows / span, nlat,
           nlat ? all[nlat / 2] : 0.0, nlat ? all[(int)(nlat * 0.99)] : 0.0, failed);
    free(all);
    free(room);
    return failed;
}
