#include "ctl.h"

#include "access.h"
#include "app.h"
#include "bus.h"
#include "conn.h"
#include "db.h"
#include "log.h"
#include "mem.h"
#include "room.h"
#include "rulecache.h"
#include "store.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <string.h>

#define CTL_CHANNEL "ctl"

static void close_matching(struct app *a, const char *kind, const char *x, const char *y)
{
    unsigned n = 0;
    for (struct conn *c = a->conns; c; c = c->next) {
        if (!c->authed || c->closing) continue;
        bool hit =
            (!strcmp(kind, "token") && !strcmp(c->token_id, x)) ||
            (!strcmp(kind, "person") && !strcmp(c->person, x)) ||
            (!strcmp(kind, "member") && !strcmp(c->workspace, x) && y && !strcmp(c->person, y)) ||
            (!strcmp(kind, "workspace") && !strcmp(c->workspace, x));
        if (!hit) continue;
        conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION,
                   !strcmp(kind, "workspace") ? "workspace deleted" : "access revoked");
        n++;
    }
    if (n) log_info("connections closed: access revoked", "event=%s closed=%u", kind, n);
}

static void apply(struct app *a, const char *p, size_t len)
{
    char buf[160], *save = NULL;
    if (len >= sizeof buf) return;
    memcpy(buf, p, len);
    buf[len] = 0;
    const char *kind = strtok_r(buf, " ", &save);
    const char *x = strtok_r(NULL, " ", &save);
    const char *y = strtok_r(NULL, " ", &save);
    const char *z = strtok_r(NULL, " ", &save);
    bool room_event = kind && (!strcmp(kind, "kick") || !strcmp(kind, "access"));
    /* Joins whose check is in flight may have been answered before this
     * change: they are checked again (handler.c). */
    if (room_event) a->access_epoch++;
    if (kind && x && !strcmp(kind, "guidelines"))
        rulecache_invalidate(a, x);
    else if (kind && x && y && !strcmp(kind, "kick"))
        room_remove_person(a, x, y, z ? z : "removed");
    else if (kind && x && !strcmp(kind, "access"))
        access_check(a, x);
    else if (kind && x)
        close_matching(a, kind, x, y);
}

void ctl_publish(struct app *a, const char *event)
{
    size_t len = strlen(event);
    apply(a, event, len);
    if (bus_publish(a->bus, CTL_CHANNEL, sizeof CTL_CHANNEL - 1, event, len))
        log_warn("control event not published; other gateways revalidate", "event=\"%s\"", event);
}

void ctl_effects(struct app *a, const void *res_)
{
    PGresult *res = (PGresult *)res_;
    if (PQntuples(res) < 1) return;
    if (PQnfields(res) > 2 && !PQgetisnull(res, 0, 2)) {
        char ev[512], *save = NULL;
        snprintf(ev, sizeof ev, "%s", PQgetvalue(res, 0, 2));
        for (char *e = strtok_r(ev, ";", &save); e; e = strtok_r(NULL, ";", &save)) {
            char room[PP_UUID_LEN + 1];
            long long seq;
            /* rows appended to a room's log: its own channel, not "ctl" */
            if (sscanf(e, "sync %36s %lld", room, &seq) == 2)
                store_announce(a, room, seq);
            else
                ctl_publish(a, e);
        }
    }
    if (PQnfields(res) > 3 && !PQgetisnull(res, 0, 3)) {
        const char *spec = PQgetvalue(res, 0, 3);
        size_t len = (size_t)PQgetlength(res, 0, 3);
        const char *sp = len > PP_UUID_LEN + 2 ? strchr(spec + PP_UUID_LEN + 1, ' ') : NULL;
        if (spec[PP_UUID_LEN] == ' ' && sp)
            room_push(a, spec, spec + PP_UUID_LEN + 1, (size_t)(sp - spec - PP_UUID_LEN - 1),
                      sp + 1, len - (size_t)(sp + 1 - spec));
    }
}

bool ctl_on_message(struct app *a, const char *ch, size_t chlen, const char *p, size_t len)
{
    if (chlen != sizeof CTL_CHANNEL - 1 || memcmp(ch, CTL_CHANNEL, chlen)) return false;
    apply(a, p, len);
    return true;
}

void ctl_on_bus_up(struct app *a)
{
    bus_subscribe(a->bus, CTL_CHANNEL, sizeof CTL_CHANNEL - 1);
    ctl_revalidate(a); /* events published while we were away are lost */
}

/* ---- revalidation -------------------------------------------------------- */

static void on_invalid(void *ud, PGresult *res, int err)
{
    struct app *a = ud;
    if (err || PQresultStatus(res) != PGRES_TUPLES_OK) return; /* the next round retries */
    /* Rows are (token, workspace) pairs no longer valid. Only connections
     * that were in the query are candidates: one that authenticated since
     * was checked by its own auth. */
    int n = PQntuples(res);
    for (struct conn *c = a->conns; c; c = c->next) {
        if (!c->revalidating) continue;
        c->revalidating = false;
        for (int i = 0; i < n; i++)
            if (!c->closing && !strcmp(PQgetvalue(res, i, 0), c->token_id) &&
                !strcmp(PQgetvalue(res, i, 1), c->workspace)) {
                log_info("connection closed: token or membership no longer valid", "conn=%llu",
                         (unsigned long long)c->id);
                conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "access revoked");
            }
    }
}

void ctl_revalidate(struct app *a)
{
    access_check(a, NULL); /* room access changes whose event was lost */
    size_t cap = 64 + (size_t)a->nconns * 84, len = 0;
    char *json = mem_alloc(cap);
    if (!json) return;
    len += (size_t)snprintf(json, cap, "[");
    for (struct conn *c = a->conns; c; c = c->next) {
        if (!c->authed || c->closing) continue;
        c->revalidating = true;
        len += (size_t)snprintf(json + len, cap - len, "%s[\"%s\",\"%s\"]", len > 1 ? "," : "",
                                c->token_id, c->workspace);
    }
    snprintf(json + len, cap - len, "]");
    if (len > 1) {
        const char *v[1] = {json};
        db_query(a->db, -1, ST_REVALIDATE, 1, v, NULL, NULL, on_invalid, a);
    }
    mem_free(json);
}
