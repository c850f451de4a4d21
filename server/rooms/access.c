#include "access.h"

#include "app.h"
#include "conn.h"
#include "db.h"
#include "log.h"
#include "mem.h"
#include "room.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of one [room, person, token] entry of the query's parameter. */
#define ENTRY_BYTES (3 * (PP_UUID_LEN + 3) + 4)
/* "<room>|<token>", the key a verdict is found by. */
#define KEY_LEN (2 * PP_UUID_LEN + 1)

/* A join no longer allowed, as the query answered it. */
struct verdict {
    char key[KEY_LEN + 1]; /* room|token */
    const char *reason;    /* into the result, valid during on_checked */
};

static int verdict_cmp(const void *x, const void *y)
{
    return memcmp(((const struct verdict *)x)->key, ((const struct verdict *)y)->key, KEY_LEN);
}

static void key_of(char *out, const char *room, const char *token)
{
    memcpy(out, room, PP_UUID_LEN);
    out[PP_UUID_LEN] = '|';
    memcpy(out + PP_UUID_LEN + 1, token, PP_UUID_LEN);
    out[KEY_LEN] = '\0';
}

/* Rows: (room, token, reason) of joins that must end. */
static void on_checked(void *ud, PGresult *res, int err)
{
    struct app *a = ud;
    if (err || PQresultStatus(res) != PGRES_TUPLES_OK) {
        log_warn("room access check failed; the next revalidation retries", "err=%d", err);
        return;
    }
    int n = PQntuples(res);
    if (!n) return;
    struct verdict *v = mem_alloc((size_t)n * sizeof *v);
    if (!v) return;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (PQgetlength(res, i, 0) != PP_UUID_LEN || PQgetlength(res, i, 1) != PP_UUID_LEN)
            continue;
        key_of(v[k].key, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
        v[k++].reason = PQgetvalue(res, i, 2);
    }
    qsort(v, (size_t)k, sizeof *v, verdict_cmp);
    unsigned revoked = 0;
    for (struct conn *c = a->conns; c; c = c->next) {
        if (!c->authed || c->closing) continue;
        /* room_revoke removes c->subs[i]: walk from the end */
        for (uint32_t i = c->nsubs; i-- > 0;) {
            struct sub *s = c->subs[i];
            if (s->state == SUB_CHECKING) continue; /* its own check decides */
            struct verdict key;
            key_of(key.key, s->room_id, c->token_id);
            const struct verdict *hit = bsearch(&key, v, (size_t)k, sizeof *v, verdict_cmp);
            if (!hit) continue;
            room_revoke(a, s, hit->reason);
            revoked++;
        }
    }
    mem_free(v);
    if (revoked) log_info("room access revoked", "joins=%u", revoked);
}

void access_check(struct app *a, const char *room)
{
    size_t cap = 64, len = 0;
    char *json = mem_alloc(cap);
    if (!json) return;
    json[len++] = '[';
    for (struct conn *c = a->conns; c; c = c->next) {
        if (!c->authed || c->closing) continue;
        for (uint32_t i = 0; i < c->nsubs; i++) {
            const struct sub *s = c->subs[i];
            if (s->state == SUB_CHECKING) continue;
            if (room && memcmp(s->room_id, room, PP_UUID_LEN)) continue;
            while (len + ENTRY_BYTES + 2 > cap) {
                char *g = mem_realloc(json, cap * 2);
                if (!g) {
                    mem_free(json);
                    return;
                }
                json = g;
                cap *= 2;
            }
            len += (size_t)snprintf(json + len, cap - len, "%s[\"%s\",\"%s\",\"%s\"]",
                                    len > 1 ? "," : "", s->room_id, c->person, c->token_id);
        }
    }
    json[len++] = ']';
    json[len] = '\0';
    if (len > 2) {
        const char *v[1] = {json};
        if (db_query(a->db, -1, ST_ACCESS, 1, v, NULL, NULL, on_checked, a))
            log_warn("room access check not sent; the next revalidation retries", "room=%s",
                     room ? room : "*");
    }
    mem_free(json);
}
