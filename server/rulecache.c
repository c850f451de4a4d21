#include "rulecache.h"

#include "app.h"
#include "conn.h"
#include "db.h"
#include "guidelines.h"
#include "log.h"
#include "mem.h"
#include "perm.h"
#include "room.h"
#include "store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_MAX 4096 /* rooms with compiled rules kept */
#define WAIT_MAX 1024  /* sends waiting for one room's rules */

/* A send waiting for its room's rules. */
struct waiter {
    struct creq cr;           /* link to the connection */
    struct waiter *next;      /* in arrival order */
    int64_t id;               /* command id */
    int64_t parent;           /* reply parent, 0 for none */
    struct pp_str cmid, body; /* copies, inside this allocation */
};

struct entry {
    struct entry *next;         /* hash chain */
    char room[PP_UUID_LEN + 1]; /* room */
    char ws[PP_UUID_LEN + 1];   /* its workspace */
    bool loading;               /* the query is in flight */
    bool stale;                 /* invalidated while loading: drop after use */
    struct gl_set *set;         /* compiled rules, NULL when none */
    struct waiter *wh, *wt;     /* waiting sends */
    uint32_t nwait;
};

static struct app *rulecache_app; /* for query completions that outlive their entry */

static void ignore_result(void *ud, PGresult *res, int err)
{
    (void)ud;
    (void)res;
    (void)err;
}

struct rulecache {
    struct entry *b[1024]; /* buckets */
    uint32_t n;            /* entries */
};

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h & 1023;
}

int rulecache_new(struct app *a)
{
    a->rules = mem_calloc(1, sizeof *a->rules);
    return a->rules ? 0 : -1;
}

static void entry_free(struct entry *e)
{
    while (e->wh) {
        struct waiter *w = e->wh;
        e->wh = w->next;
        creq_unlink(&w->cr);
        mem_free(w);
    }
    gl_free(e->set);
    mem_free(e);
}

static void entry_remove(struct rulecache *rc, struct entry *e)
{
    struct entry **pp = &rc->b[hash(e->room)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp) *pp = e->next;
    rc->n--;
    entry_free(e);
}

void rulecache_free(struct app *a)
{
    struct rulecache *rc = a->rules;
    if (!rc) return;
    for (int i = 0; i < 1024; i++)
        while (rc->b[i]) {
            struct entry *e = rc->b[i];
            rc->b[i] = e->next;
            entry_free(e);
        }
    mem_free(rc);
    a->rules = NULL;
}

void rulecache_invalidate(struct app *a, const char *workspace)
{
    struct rulecache *rc = a->rules;
    unsigned n = 0;
    for (int i = 0; rc && i < 1024; i++)
        for (struct entry *e = rc->b[i], *next; e; e = next) {
            next = e->next;
            if (strcmp(e->ws, workspace)) continue;
            n++;
            if (e->loading)
                e->stale = true;
            else
                entry_remove(rc, e);
        }
    if (n) log_info("guidelines changed", "workspace=%s rooms=%u", workspace, n);
}

char *rulecache_merge(const char *ws_rules, const char *room_rules)
{
    cJSON *w = ws_rules ? cJSON_Parse(ws_rules) : NULL;
    cJSON *r = room_rules ? cJSON_Parse(room_rules) : NULL;
    cJSON *out = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(out, "rules");
    cJSON *wl = cJSON_GetObjectItemCaseSensitive(w, "rules");
    cJSON *rl = cJSON_GetObjectItemCaseSensitive(r, "rules");
    cJSON *it;
    cJSON_ArrayForEach(it, wl)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        const cJSON *over = NULL, *x;
        cJSON_ArrayForEach(x, rl)
        {
            const cJSON *xid = cJSON_GetObjectItemCaseSensitive(x, "id");
            if (cJSON_IsString(id) && cJSON_IsString(xid) &&
                !strcmp(id->valuestring, xid->valuestring))
                over = x;
        }
        if (!over) cJSON_AddItemToArray(list, cJSON_Duplicate(it, true));
    }
    cJSON_ArrayForEach(it, rl) cJSON_AddItemToArray(list, cJSON_Duplicate(it, true));
    char *s = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    cJSON_Delete(w);
    cJSON_Delete(r);
    return s;
}

/* ---- the send path ------------------------------------------------------- */

static void record_hits(struct app *a, struct conn *c, const char *room, const struct gl_verdict *v)
{
    if (!v->nhits) return;
    char json[4096];
    size_t n = 0;
    n += (size_t)snprintf(json, sizeof json, "[");
    for (int i = 0; i < v->nhits && n < sizeof json - 200; i++)
        n += (size_t)snprintf(
            json + n, sizeof json - n, "%s{\"rule\":\"%s\",\"action\":\"%s\",\"kind\":\"%s\"}",
            i ? "," : "", v->hits[i].rule_id, gl_action_name(v->hits[i].action), v->hits[i].kind);
    snprintf(json + n, sizeof json - n, "]");
    const char *p[4] = {c->workspace, room, c->person, json};
    db_query(a->db, -1, ST_HITS, 4, p, NULL, NULL, ignore_result, NULL);
}

/* Evaluates and stores (or refuses) one send; the room's rules are known. */
static void checked_send(struct app *a, struct conn *c, const struct gl_set *set, const char *room,
                         int64_t id, const struct pp_str *cmid, const struct pp_str *body,
                         int64_t parent)
{
    struct sub *s = room_find_sub(c, room);
    uint64_t now = app_now_ms(a);
    struct gl_verdict v = {.action = GL_ALLOW, .decisive = -1};
    if (set) {
        struct gl_ctx ctx = {.role = c->prole, .since_last_ms = -1};
        if (s && s->last_send_ms) ctx.since_last_ms = (int64_t)(now - s->last_send_ms);
        if (s && now - s->window_start < 60000) ctx.last_minute = s->window_count;
        if (gl_eval(set, body->str, body->len, &ctx, &v)) {
            conn_reply_err(c, id, PP_E_BAD_REQUEST, "body: not valid UTF-8");
            return;
        }
        record_hits(a, c, room, &v);
    }
    if (v.action == GL_REJECT) {
        char msg[128];
        snprintf(msg, sizeof msg, "refused by guideline \"%s\"", v.hits[0].rule_id);
        for (int i = 0; i < v.nhits; i++)
            if (v.hits[i].action == GL_REJECT) {
                snprintf(msg, sizeof msg, "refused by guideline \"%s\"", v.hits[i].rule_id);
                break;
            }
        conn_reply_err(c, id, PP_E_GUIDELINE, msg);
        gl_verdict_free(&v);
        return;
    }
    /* A rewritten body replaces the original, which is never stored. */
    struct pp_str b = v.text ? (struct pp_str){v.text, v.len} : *body;
    if (store_send(a, c, id, room, cmid, &b, parent))
        conn_reply_err(c, id, PP_E_BUSY, "server busy, retry later");
    else
        c->inflight++;
    if (s) {
        if (now - s->window_start >= 60000) {
            s->window_start = now;
            s->window_count = 0;
        }
        s->window_count++;
        s->last_send_ms = now;
    }
    gl_verdict_free(&v);
}

static struct entry *lookup(struct rulecache *rc, const char *room)
{
    for (struct entry *e = rc->b[hash(room)]; e; e = e->next)
        if (!strcmp(e->room, room)) return e;
    return NULL;
}

static void on_rules(void *ud, PGresult *res, int err)
{
    char *room = ud;
    struct app *a = rulecache_app;
    struct rulecache *rc = a ? a->rules : NULL;
    struct entry *e = rc ? lookup(rc, room) : NULL;
    mem_free(room);
    if (!e) return;
    e->loading = false;
    bool ok = !err && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (ok && PQntuples(res) == 1) {
        const char *w = PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0);
        const char *r = PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1);
        if (w || r) {
            char *merged = rulecache_merge(w, r);
            struct gl_error ge;
            e->set = merged ? gl_compile(merged, strlen(merged), &ge) : NULL;
            if (!e->set)
                log_error("guidelines of a room do not compile together; sends refused",
                          "room=%s rule=%d why=\"%s\"", e->room, ge.rule, ge.message);
            free(merged);
            ok = e->set != NULL;
        }
    }
    /* Waiting sends go on in arrival order; without rules known (storage
     * down, or a set that does not compile) they are refused, not let
     * through unchecked. */
    while (e->wh) {
        struct waiter *w = e->wh;
        e->wh = w->next;
        struct conn *c = w->cr.c;
        creq_unlink(&w->cr);
        if (c) {
            if (c->inflight) c->inflight--;
            if (ok)
                checked_send(a, c, e->set, e->room, w->id, &w->cmid, &w->body, w->parent);
            else
                conn_reply_err(c, w->id, PP_E_UNAVAILABLE, "guidelines unavailable, retry");
        }
        mem_free(w);
    }
    e->nwait = 0;
    if (!ok || e->stale) entry_remove(rc, e);
}

void rulecache_send(struct app *a, struct conn *c, struct sub *s, const struct pp_cmd *cmd)
{
    (void)s;
    struct rulecache *rc = a->rules;
    rulecache_app = a;
    int64_t parent = cmd->has_parent ? cmd->parent : 0;
    struct entry *e = lookup(rc, cmd->room.str);
    if (e && !e->loading) {
        checked_send(a, c, e->set, cmd->room.str, cmd->id, &cmd->client_msg_id, &cmd->body, parent);
        return;
    }
    if (!e) {
        if (rc->n >= CACHE_MAX) { /* full: forget one idle room */
            for (int i = 0; i < 1024; i++)
                if (rc->b[i] && !rc->b[i]->loading) {
                    entry_remove(rc, rc->b[i]);
                    break;
                }
        }
        e = mem_calloc(1, sizeof *e);
        char *key = mem_alloc(PP_UUID_LEN + 1);
        if (!e || !key) {
            mem_free(e);
            mem_free(key);
            conn_reply_err(c, cmd->id, PP_E_INTERNAL, "out of memory");
            return;
        }
        memcpy(e->room, cmd->room.str, PP_UUID_LEN);
        memcpy(e->ws, c->workspace, PP_UUID_LEN);
        memcpy(key, cmd->room.str, PP_UUID_LEN + 1);
        const char *v[2] = {e->ws, e->room};
        if (db_query(a->db, -1, ST_GUIDELINES, 2, v, NULL, NULL, on_rules, key)) {
            mem_free(key);
            mem_free(e);
            conn_reply_err(c, cmd->id, PP_E_UNAVAILABLE, "storage unavailable, retry");
            return;
        }
        e->loading = true;
        uint32_t h = hash(e->room);
        e->next = rc->b[h];
        rc->b[h] = e;
        rc->n++;
    }
    if (e->nwait >= WAIT_MAX) {
        conn_reply_err(c, cmd->id, PP_E_BUSY, "server busy, retry later");
        return;
    }
    size_t cl = cmd->client_msg_id.len, bl = cmd->body.len;
    struct waiter *w = mem_alloc(sizeof *w + cl + bl + 2);
    if (!w) {
        conn_reply_err(c, cmd->id, PP_E_INTERNAL, "out of memory");
        return;
    }
    memset(w, 0, sizeof *w);
    w->id = cmd->id;
    w->parent = parent;
    char *p = (char *)(w + 1);
    memcpy(p, cmd->client_msg_id.str, cl);
    p[cl] = 0;
    w->cmid = (struct pp_str){p, cl};
    memcpy(p + cl + 1, cmd->body.str, bl);
    p[cl + 1 + bl] = 0;
    w->body = (struct pp_str){p + cl + 1, bl};
    creq_link(c, &w->cr);
    c->inflight++;
    if (e->wt)
        e->wt->next = w;
    else
        e->wh = w;
    e->wt = w;
    e->nwait++;
}
