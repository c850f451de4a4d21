#include "rulecache.h"

#include "app.h"
#include "db.h"
#include "guidelines.h"
#include "log.h"
#include "mem.h"
#include "store.h" /* the statement ids */

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_MAX 4096 /* rooms with compiled rules kept */
#define WAIT_MAX 1024  /* lookups waiting for one room's rules */

struct entry {
    struct entry *next;         /* hash chain */
    char room[PP_UUID_LEN + 1]; /* room */
    char ws[PP_UUID_LEN + 1];   /* its workspace */
    bool loading;               /* the query is in flight */
    bool stale;                 /* invalidated while loading: drop after use */
    struct compiled *rules;     /* compiled rules, NULL when none */
    struct rc_room pub;         /* what lookups see; pub.set is rules->set */
    struct rc_mute *mutes;      /* pub.mutes, owned */
    struct rc_wait *wh, *wt;    /* waiting lookups */
    uint32_t nwait;
};

/* A rules query in flight: it may outlive its entry (and, at shutdown, the
 * cache), so it names its owner and its room instead of pointing at them. */
struct rload {
    struct app *app;            /* owner: the cache is a->rules */
    char room[PP_UUID_LEN + 1]; /* the entry to fill, if still there */
};

/* A compiled rule set, shared by every room whose effective rules are the
 * same text (all the rooms of a workspace without overrides): a set is
 * compiled once per gateway, not once per room (a few ms each). */
struct compiled {
    struct compiled *next; /* rc->sets */
    uint32_t h;            /* hash of text */
    char *text;            /* the merged rules (cJSON's, mem_free) */
    struct gl_set *set;    /* compiled from text */
    uint32_t refs;         /* entries using it */
};

struct rulecache {
    struct entry *b[1024]; /* buckets */
    struct compiled *sets; /* compiled sets in use */
    uint32_t n;            /* entries */
};

static uint32_t fnv(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static uint32_t hash(const char *s)
{
    return fnv(s) & 1023;
}

/* The compiled set of text (taken: freed here or kept), shared if another
 * room has the same; NULL with ge filled when it does not compile. */
static struct compiled *compiled_get(struct app *a, char *text, struct gl_error *ge)
{
    struct rulecache *rc = a->rules;
    uint32_t h = fnv(text);
    for (struct compiled *c = rc->sets; c; c = c->next)
        if (c->h == h && !strcmp(c->text, text)) {
            mem_free(text);
            c->refs++;
            return c;
        }
    struct compiled *c = mem_calloc(1, sizeof *c);
    a->stats.gl_compiles++;
    c->set = c ? gl_compile(text, strlen(text), ge) : NULL;
    if (!c || !c->set) {
        if (!c) snprintf(ge->message, sizeof ge->message, "out of memory");
        mem_free(c);
        mem_free(text);
        return NULL;
    }
    c->h = h;
    c->text = text;
    c->refs = 1;
    c->next = rc->sets;
    rc->sets = c;
    return c;
}

static void compiled_put(struct rulecache *rc, struct compiled *c)
{
    if (!c || --c->refs) return;
    struct compiled **pp = &rc->sets;
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    gl_free(c->set);
    mem_free(c->text);
    mem_free(c);
}

int rulecache_new(struct app *a)
{
    a->rules = mem_calloc(1, sizeof *a->rules);
    return a->rules ? 0 : -1;
}

static void entry_free(struct rulecache *rc, struct entry *e)
{
    while (e->wh) {
        struct rc_wait *w = e->wh;
        e->wh = w->next;
        w->next = NULL;
        w->done(w, NULL, -ECANCELED);
    }
    compiled_put(rc, e->rules);
    mem_free(e->mutes);
    mem_free(e);
}

static void entry_remove(struct rulecache *rc, struct entry *e)
{
    struct entry **pp = &rc->b[hash(e->room)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp) *pp = e->next;
    rc->n--;
    entry_free(rc, e);
}

void rulecache_free(struct app *a)
{
    struct rulecache *rc = a->rules;
    if (!rc) return;
    for (int i = 0; i < 1024; i++)
        while (rc->b[i]) {
            struct entry *e = rc->b[i];
            rc->b[i] = e->next;
            entry_free(rc, e);
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

static struct entry *lookup(struct rulecache *rc, const char *room)
{
    for (struct entry *e = rc->b[hash(room)]; e; e = e->next)
        if (!strcmp(e->room, room)) return e;
    return NULL;
}

static void on_rules(void *ud, PGresult *res, int err)
{
    struct rload *ld = ud;
    struct app *a = ld->app;
    struct rulecache *rc = a->rules;
    struct entry *e = rc ? lookup(rc, ld->room) : NULL;
    mem_free(ld);
    if (!e) return;
    e->loading = false;
    bool ok = !err && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (ok) {
        e->pub.locked = PQgetvalue(res, 0, 2)[0] == 't';
        e->pub.slow_mode_s = atoi(PQgetvalue(res, 0, 3));
        cJSON *mj = cJSON_Parse(PQgetvalue(res, 0, 4));
        int nm = cJSON_GetArraySize(mj);
        e->mutes = nm ? mem_calloc((size_t)nm, sizeof *e->mutes) : NULL;
        const cJSON *m;
        cJSON_ArrayForEach(m, mj)
        {
            const cJSON *who = cJSON_GetArrayItem(m, 0), *until = cJSON_GetArrayItem(m, 1);
            if (e->mutes && cJSON_IsString(who) && cJSON_IsNumber(until)) {
                snprintf(e->mutes[e->pub.nmutes].person, PP_UUID_LEN + 1, "%s", who->valuestring);
                e->mutes[e->pub.nmutes++].until = (int64_t)until->valuedouble;
            }
        }
        cJSON_Delete(mj);
        e->pub.mutes = e->mutes;
        const char *w = PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0);
        const char *r = PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1);
        if (w || r) {
            char *merged = rulecache_merge(w, r);
            struct gl_error ge = {.rule = -1, .message = "out of memory"};
            e->rules = merged ? compiled_get(a, merged, &ge) : NULL; /* takes merged */
            e->pub.set = e->rules ? e->rules->set : NULL;
            if (!e->pub.set)
                log_error("guidelines of a room do not compile together; sends refused",
                          "room=%s rule=%d why=\"%s\"", e->room, ge.rule, ge.message);
            ok = e->pub.set != NULL;
        }
    }
    /* Waiting lookups go on in arrival order; without the rules known
     * (storage down, or a set that does not compile) they are told so. */
    while (e->wh) {
        struct rc_wait *w = e->wh;
        e->wh = w->next;
        w->next = NULL;
        w->done(w, ok ? &e->pub : NULL, ok ? 0 : -EAGAIN);
    }
    e->wt = NULL;
    e->nwait = 0;
    if (!ok || e->stale) entry_remove(rc, e);
}

int rulecache_get(struct app *a, const char *room, const char *workspace, struct rc_wait *w,
                  const struct rc_room **out)
{
    struct rulecache *rc = a->rules;
    struct entry *e = lookup(rc, room);
    if (e && !e->loading) {
        *out = &e->pub;
        return 0;
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
        struct rload *key = mem_alloc(sizeof *key);
        if (!e || !key) {
            mem_free(e);
            mem_free(key);
            return -ENOMEM;
        }
        memcpy(e->room, room, PP_UUID_LEN);
        memcpy(e->ws, workspace, PP_UUID_LEN);
        key->app = a;
        memcpy(key->room, room, PP_UUID_LEN + 1);
        const char *v[2] = {e->ws, e->room};
        if (db_query(a->db, -1, ST_GUIDELINES, 2, v, NULL, NULL, on_rules, key)) {
            mem_free(key);
            mem_free(e);
            return -EAGAIN;
        }
        e->loading = true;
        uint32_t h = hash(e->room);
        e->next = rc->b[h];
        rc->b[h] = e;
        rc->n++;
    }
    if (!w) return 1;
    if (e->nwait >= WAIT_MAX) return -EBUSY;
    w->next = NULL;
    if (e->wt)
        e->wt->next = w;
    else
        e->wh = w;
    e->wt = w;
    e->nwait++;
    return 1;
}
