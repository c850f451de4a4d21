#include "rulecache.h"

#include "app.h"
#include "conn.h"
#include "db.h"
#include "guidelines.h"
#include "log.h"
#include "mem.h"
#include "moderation.h"
#include "pace.h"
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

/* A send (or edit) waiting for its room's rules or its sender's pace. */
struct waiter {
    struct creq cr;      /* link to the connection; counted in its nreqs */
    struct waiter *next; /* in arrival order */
    bool paced;          /* pace below is known */
    struct pace pace;    /* the sender's pace in the room (pace.h) */
    struct msgin in;     /* what was asked (strings inside this allocation) */
};

struct mute {
    char person[PP_UUID_LEN + 1]; /* muted person */
    int64_t until;                /* Unix ms */
};

struct entry {
    struct entry *next;         /* hash chain */
    char room[PP_UUID_LEN + 1]; /* room */
    char ws[PP_UUID_LEN + 1];   /* its workspace */
    bool loading;               /* the query is in flight */
    bool stale;                 /* invalidated while loading: drop after use */
    struct compiled *rules;     /* compiled rules, NULL when none */
    const struct gl_set *set;   /* rules->set, or NULL */
    bool locked;                /* read-only but for moderators */
    int slow_mode_s;            /* one message per person per N s; 0: off */
    struct mute *mutes;         /* active mutes here (room's and workspace's) */
    int nmutes;
    struct waiter *wh, *wt; /* waiting sends */
    uint32_t nwait;
};

/* A rules query in flight: it may outlive its entry (and, at shutdown, the
 * cache), so it names its owner and its room instead of pointing at them. */
struct rload {
    struct app *app;            /* owner: the cache is a->rules */
    char room[PP_UUID_LEN + 1]; /* the entry to fill, if still there */
};

static void ignore_result(void *ud, PGresult *res, int err)
{
    (void)ud;
    (void)res;
    (void)err;
}

#define HITS_FLUSH 32768 /* bytes of buffered hit rows that force a write */

/* A compiled rule set, shared by every room whose effective rules are the
 * same text (all the rooms of a workspace without overrides): a set is
 * compiled once per gateway, not once per room (a few ms each). */
struct compiled {
    struct compiled *next; /* rc->sets */
    uint32_t h;            /* hash of text */
    char *text;            /* the merged rules, malloc'd */
    struct gl_set *set;    /* compiled from text */
    uint32_t refs;         /* entries using it */
};

struct rulecache {
    struct entry *b[1024];        /* buckets */
    struct compiled *sets;        /* compiled sets in use */
    uint32_t n;                   /* entries */
    char hits[HITS_FLUSH + 2048]; /* JSON array of hit rows not yet written */
    size_t hlen;                  /* its length (0: empty, else "[..." open) */
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
            free(text);
            c->refs++;
            return c;
        }
    struct compiled *c = mem_calloc(1, sizeof *c);
    a->stats.gl_compiles++;
    c->set = c ? gl_compile(text, strlen(text), ge) : NULL;
    if (!c || !c->set) {
        if (!c) snprintf(ge->message, sizeof ge->message, "out of memory");
        mem_free(c);
        free(text);
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
    free(c->text);
    mem_free(c);
}

int rulecache_new(struct app *a)
{
    a->rules = mem_calloc(1, sizeof *a->rules);
    return a->rules ? 0 : -1;
}

/* A copy of in that outlives the command's frame, linked to c. */
static struct waiter *waiter_new(struct conn *c, const struct msgin *in)
{
    size_t cl = in->cmid.len, bl = in->body.len;
    struct waiter *w = mem_alloc(sizeof *w + cl + bl + 2);
    if (!w) return NULL;
    memset(w, 0, sizeof *w);
    w->in = *in;
    char *p = (char *)(w + 1);
    if (cl) memcpy(p, in->cmid.str, cl);
    p[cl] = 0;
    w->in.cmid = (struct pp_str){p, cl};
    memcpy(p + cl + 1, in->body.str, bl);
    p[cl + 1 + bl] = 0;
    w->in.body = (struct pp_str){p + cl + 1, bl};
    creq_link(c, &w->cr);
    return w;
}

static void waiter_free(struct waiter *w)
{
    if (!w) return;
    creq_unlink(&w->cr);
    mem_free(w);
}

static void entry_free(struct rulecache *rc, struct entry *e)
{
    while (e->wh) {
        struct waiter *w = e->wh;
        e->wh = w->next;
        waiter_free(w);
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

/* ---- the send path ------------------------------------------------------- */

void rulecache_tick(struct app *a)
{
    struct rulecache *rc = a->rules;
    if (!rc || !rc->hlen) return;
    rc->hits[rc->hlen++] = ']';
    rc->hits[rc->hlen] = 0;
    const char *p[1] = {rc->hits};
    if (db_query(a->db, -1, ST_HITS, 1, p, NULL, NULL, ignore_result, NULL))
        log_warn("guideline hits not recorded", "bytes=%zu", rc->hlen);
    rc->hlen = 0;
}

/* Hits are recorded for moderators and the evaluation, not answered: they
 * are buffered and written in one statement per tick (or when the buffer
 * fills), not one statement per message. */
static void record_hits(struct app *a, struct conn *c, const char *room, const struct gl_verdict *v)
{
    struct rulecache *rc = a->rules;
    a->stats.gl_hits += (uint64_t)v->nhits;
    for (int i = 0; i < v->nhits; i++) {
        char row[1024];
        struct pp_w w;
        pp_w_init(&w, row, sizeof row);
        pp_w_obj_begin(&w);
        pp_w_key(&w, "ws");
        pp_w_cstr(&w, c->workspace);
        pp_w_key(&w, "room");
        pp_w_cstr(&w, room);
        pp_w_key(&w, "person");
        pp_w_cstr(&w, c->person);
        pp_w_key(&w, "rule");
        pp_w_cstr(&w, v->hits[i].rule_id);
        pp_w_key(&w, "action");
        pp_w_cstr(&w, gl_action_name(v->hits[i].action));
        pp_w_key(&w, "kind");
        pp_w_cstr(&w, v->hits[i].kind);
        pp_w_obj_end(&w);
        int n = pp_w_finish(&w);
        if (n < 0) continue;
        rc->hits[rc->hlen] = rc->hlen ? ',' : '[';
        memcpy(rc->hits + rc->hlen + 1, row, (size_t)n);
        rc->hlen += 1 + (size_t)n;
        if (rc->hlen >= HITS_FLUSH) rulecache_tick(a);
    }
}

/* A held or shadowed send being kept. */
struct keep {
    struct creq cr;               /* link to the sender's connection */
    struct app *app;              /* owner */
    int64_t id;                   /* command id */
    char room[PP_UUID_LEN + 1];   /* room */
    char sender[PP_UUID_LEN + 1]; /* sender */
};

/* The rule ids whose action is act, as a JSON array. */
static void rules_json(const struct gl_verdict *v, enum gl_action act, struct pp_w *w)
{
    pp_w_arr_begin(w);
    for (int i = 0; i < v->nhits; i++)
        if (v->hits[i].action == act) pp_w_cstr(w, v->hits[i].rule_id);
    pp_w_arr_end(w);
}

static void on_kept(void *ud, PGresult *res, int err)
{
    struct keep *k = ud;
    struct conn *c = k->cr.c;
    creq_unlink(&k->cr);
    bool ok = !err && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
    if (!ok) {
        if (c) conn_reply_err(c, k->id, PP_E_UNAVAILABLE, "storage unavailable, retry");
    } else if (PQgetvalue(res, 0, 6)[0] == 't') {
        if (c) conn_reply_err(c, k->id, PP_E_ROOM_ARCHIVED, "the room is archived; nothing stored");
    } else if (PQgetvalue(res, 0, 0)[0] != 't') {
        if (c)
            conn_reply_err(c, k->id, PP_E_BAD_PARENT,
                           "parent: replies go to an entry of a dialogue room");
    } else {
        if (c) {
            char buf[192];
            struct pp_w w;
            pp_w_init(&w, buf, sizeof buf);
            pp_enc_kept_ok(&w, k->room, strtoll(PQgetvalue(res, 0, 1), NULL, 10),
                           PQgetvalue(res, 0, 2), strtoll(PQgetvalue(res, 0, 3), NULL, 10),
                           PQgetvalue(res, 0, 4)[0] == 't');
            int n = pp_w_finish(&w);
            conn_reply_ok(c, k->id, buf, n > 0 ? (size_t)n : 0);
        }
        /* a new one: to the sender's connections and the moderators, everywhere */
        if (!PQgetisnull(res, 0, 5))
            room_push(k->app, k->room, k->sender, PP_UUID_LEN, PQgetvalue(res, 0, 5),
                      (size_t)PQgetlength(res, 0, 5));
    }
    mem_free(k);
}

/* Keeps a held or shadowed send outside the room's sequence; the statement
 * answers the push too. */
static void keep(struct app *a, struct conn *c, const struct msgin *in, const struct pp_str *b,
                 const struct gl_verdict *v)
{
    struct keep *k = mem_calloc(1, sizeof *k);
    if (!k) {
        conn_reply_err(c, in->id, PP_E_INTERNAL, "out of memory");
        return;
    }
    char rules[1024];
    struct pp_w w;
    pp_w_init(&w, rules, sizeof rules - 1);
    rules_json(v, v->action, &w);
    int rn = pp_w_finish(&w);
    if (rn < 0)
        snprintf(rules, sizeof rules, "[]");
    else
        rules[rn] = 0;
    k->app = a;
    k->id = in->id;
    memcpy(k->room, in->room, PP_UUID_LEN);
    memcpy(k->sender, c->person, PP_UUID_LEN);
    char parent[24];
    snprintf(parent, sizeof parent, "%lld", (long long)in->parent);
    const char *p[7] = {in->room,
                        c->person,
                        in->cmid.str,
                        b->str,
                        in->parent ? parent : NULL,
                        v->action == GL_HOLD ? "held" : "shadow",
                        rules};
    if (db_query(a->db, -1, ST_PENDING_ADD, 7, p, NULL, NULL, on_kept, k)) {
        mem_free(k);
        conn_reply_err(c, in->id, PP_E_UNAVAILABLE, "storage unavailable, retry");
        return;
    }
    creq_link(c, &k->cr);
}

/* Flagged: delivered, and the moderators are told (not the sender). */
static void notify_flag(struct app *a, struct conn *c, const struct msgin *in,
                        const struct gl_verdict *v)
{
    char buf[1024];
    struct pp_w w;
    const char *rules[GL_MAX_HITS];
    int nr = 0;
    for (int i = 0; i < v->nhits && nr < GL_MAX_HITS; i++)
        if (v->hits[i].action == GL_FLAG) rules[nr++] = v->hits[i].rule_id;
    pp_w_init(&w, buf, sizeof buf);
    pp_enc_flagged(&w, in->room, c->person, in->cmid.str, in->cmid.len,
                   in->op == PP_OP_EDIT ? in->seq : 0, rules, nr);
    int n = pp_w_finish(&w);
    if (n > 0) room_push(a, in->room, "-", 1, buf, (size_t)n);
}

/* The room's own refusals, before its guidelines: mutes and lock (slow mode
 * is counted with the pace). Moderators are not held back by a lock. */
static bool policy_refuses(struct conn *c, const struct entry *e, const struct msgin *in)
{
    int64_t wall = app_wall_ms();
    char msg[128];
    for (int i = 0; i < e->nmutes; i++)
        if (!strcmp(e->mutes[i].person, c->person) && e->mutes[i].until > wall) {
            snprintf(msg, sizeof msg, "you are muted here for %lld more seconds",
                     (long long)((e->mutes[i].until - wall + 999) / 1000));
            conn_reply_err(c, in->id, PP_E_MUTED, msg);
            return true;
        }
    if (e->locked && !perm_allows((enum role)c->prole, P_MODERATE)) {
        conn_reply_err(c, in->id, PP_E_ROOM_LOCKED, "the room is locked (read-only)");
        return true;
    }
    return false;
}

static void route(struct app *a, struct conn *c, const struct msgin *in, struct waiter *w);

static void on_paced(void *ud, struct pace *p)
{
    struct waiter *w = ud;
    struct conn *c = w->cr.c;
    if (!c) { /* the connection is gone */
        mem_free(w);
        return;
    }
    c->pacing--;
    if (!p) {
        c->app->stats.pace_unavailable++;
        conn_reply_err(c, w->in.id, PP_E_UNAVAILABLE, "rate limits unavailable, retry");
    } else if (p->wait_ms > 0) {
        c->app->stats.pace_slowed++;
        char msg[128];
        snprintf(msg, sizeof msg, "slow mode: one message per %lld s; wait %lld ms",
                 (long long)(p->slow_ms / 1000), (long long)p->wait_ms);
        conn_reply_err(c, w->in.id, PP_E_SLOW_MODE, msg);
    } else {
        c->app->stats.pace_counted++;
        w->paced = true;
        route(c->app, c, &w->in, w);
        return;
    }
    waiter_free(w);
}

/* Counts a send in its sender's pace before it is evaluated. Once one send
 * of a connection waits for Redis, the connection's later sends wait behind
 * it, whatever their room, so they are stored in the order they came. */
static bool pace_needed(struct conn *c, const struct entry *e, const struct msgin *in,
                        struct waiter **wp)
{
    if (in->op != PP_OP_SEND || (*wp && (*wp)->paced)) return false;
    struct pace p = {0};
    p.slow_ms = perm_allows((enum role)c->prole, P_MODERATE) ? 0 : e->slow_mode_s * 1000LL;
    p.nrates = gl_rates(e->set, p.rates);
    long gs = gl_slow_max(e->set);
    if (!p.slow_ms && !p.nrates && !gs && !c->pacing) return false;
    p.keep_ms = 120000; /* a bucket at its cap drains in two minutes */
    if (p.slow_ms > p.keep_ms) p.keep_ms = p.slow_ms;
    if (gs * 1000LL > p.keep_ms) p.keep_ms = gs * 1000LL;
    struct waiter *w = *wp ? *wp : waiter_new(c, in);
    if (!w) {
        conn_reply_err(c, in->id, PP_E_INTERNAL, "out of memory");
        return true;
    }
    w->pace = p;
    if (pace_take(c->app->bus, in->room, c->person, &w->pace, on_paced, w)) {
        c->app->stats.pace_unavailable++;
        conn_reply_err(c, in->id, PP_E_UNAVAILABLE, "rate limits unavailable, retry");
        waiter_free(w);
    } else {
        c->pacing++;
    }
    *wp = NULL; /* handed over */
    return true;
}

/* Evaluates and stores (or refuses) one send or edit; the room's rules are
 * known. w, when given, is the waiting copy of in and is consumed. */
static void decide(struct app *a, struct conn *c, const struct entry *e, const struct msgin *in,
                   struct waiter *w)
{
    if (policy_refuses(c, e, in)) goto done;
    if (pace_needed(c, e, in, &w)) return;
    const struct pace *pc = w && w->paced ? &w->pace : NULL;
    struct gl_verdict v = {.action = GL_ALLOW, .decisive = -1};
    if (e->set) {
        struct gl_ctx ctx = {.role = c->prole, .since_last_ms = -1};
        int32_t rates[GL_MAX_RATES];
        int nr = gl_rates(e->set, rates);
        if (pc) ctx.since_last_ms = pc->since_last_ms;
        /* buckets counted under the rules of the moment (they may have changed since) */
        if (pc && nr == pc->nrates && !memcmp(rates, pc->rates, (size_t)nr * sizeof *rates))
            ctx.taken_milli = pc->taken_milli;
        a->stats.gl_checks++;
        if (gl_eval(e->set, in->body.str, in->body.len, &ctx, &v)) {
            conn_reply_err(c, in->id, PP_E_BAD_REQUEST, "body: not valid UTF-8");
            if (pc) pace_refund(a->bus, in->room, c->person, pc);
            goto done;
        }
        record_hits(a, c, in->room, &v);
    }
    /* An edit of a delivered message cannot wait for review: refused. */
    bool refuse = v.action == GL_REJECT ||
                  (in->op == PP_OP_EDIT && (v.action == GL_HOLD || v.action == GL_SHADOW));
    if (refuse) {
        char msg[128];
        for (int i = 0; i < v.nhits; i++)
            if (v.hits[i].action == v.action) {
                snprintf(msg, sizeof msg, "refused by guideline \"%s\"", v.hits[i].rule_id);
                break;
            }
        conn_reply_err(c, in->id, PP_E_GUIDELINE, msg);
        if (pc) pace_refund(a->bus, in->room, c->person, pc); /* not sent: not counted */
        gl_verdict_free(&v);
        goto done;
    }
    /* A rewritten body replaces the original, which is never stored. */
    struct pp_str b = v.text ? (struct pp_str){v.text, v.len} : in->body;
    bool flagged = false;
    for (int i = 0; i < v.nhits; i++)
        flagged |= v.hits[i].action == GL_FLAG;
    if (in->op == PP_OP_EDIT) {
        mod_edit(a, c, in->id, in->room, in->seq, b.str, b.len);
    } else if (v.action == GL_HOLD || v.action == GL_SHADOW) {
        keep(a, c, in, &b, &v);
    } else if (store_send(a, c, in->id, in->room, &in->cmid, &b, in->parent)) {
        conn_reply_err(c, in->id, PP_E_BUSY, "server busy, retry later");
        if (pc) pace_refund(a->bus, in->room, c->person, pc);
        flagged = false;
    }
    if (flagged) notify_flag(a, c, in, &v);
    gl_verdict_free(&v);
done:
    waiter_free(w);
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
        e->locked = PQgetvalue(res, 0, 2)[0] == 't';
        e->slow_mode_s = atoi(PQgetvalue(res, 0, 3));
        cJSON *mj = cJSON_Parse(PQgetvalue(res, 0, 4));
        int nm = cJSON_GetArraySize(mj);
        e->mutes = nm ? mem_calloc((size_t)nm, sizeof *e->mutes) : NULL;
        const cJSON *m;
        cJSON_ArrayForEach(m, mj)
        {
            const cJSON *who = cJSON_GetArrayItem(m, 0), *until = cJSON_GetArrayItem(m, 1);
            if (e->mutes && cJSON_IsString(who) && cJSON_IsNumber(until)) {
                snprintf(e->mutes[e->nmutes].person, PP_UUID_LEN + 1, "%s", who->valuestring);
                e->mutes[e->nmutes++].until = (int64_t)until->valuedouble;
            }
        }
        cJSON_Delete(mj);
        const char *w = PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0);
        const char *r = PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1);
        if (w || r) {
            char *merged = rulecache_merge(w, r);
            struct gl_error ge = {.rule = -1, .message = "out of memory"};
            e->rules = merged ? compiled_get(a, merged, &ge) : NULL; /* takes merged */
            e->set = e->rules ? e->rules->set : NULL;
            if (!e->set)
                log_error("guidelines of a room do not compile together; sends refused",
                          "room=%s rule=%d why=\"%s\"", e->room, ge.rule, ge.message);
            ok = e->set != NULL;
        }
    }
    /* Waiting sends go on in arrival order; without rules known (storage
     * down, or a set that does not compile) they are refused, not let
     * through unchecked. */
    while (e->wh) {
        struct waiter *w = e->wh;
        e->wh = w->next;
        w->next = NULL;
        struct conn *c = w->cr.c;
        if (c && ok) {
            decide(a, c, e, &w->in, w);
            continue;
        }
        if (c) conn_reply_err(c, w->in.id, PP_E_UNAVAILABLE, "guidelines unavailable, retry");
        waiter_free(w);
    }
    e->nwait = 0;
    if (!ok || e->stale) entry_remove(rc, e);
}

void rulecache_send(struct app *a, struct conn *c, const struct msgin *in)
{
    route(a, c, in, NULL);
}

/* To the room's rules, or in line for them while they load. w, when given,
 * is the waiting copy of in and is consumed. */
static void route(struct app *a, struct conn *c, const struct msgin *in, struct waiter *w)
{
    struct rulecache *rc = a->rules;
    struct entry *e = lookup(rc, in->room);
    if (e && !e->loading) {
        decide(a, c, e, in, w);
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
        struct rload *key = mem_alloc(sizeof *key);
        if (!e || !key) {
            mem_free(e);
            mem_free(key);
            conn_reply_err(c, in->id, PP_E_INTERNAL, "out of memory");
            waiter_free(w);
            return;
        }
        memcpy(e->room, in->room, PP_UUID_LEN);
        memcpy(e->ws, c->workspace, PP_UUID_LEN);
        key->app = a;
        memcpy(key->room, in->room, PP_UUID_LEN + 1);
        const char *v[2] = {e->ws, e->room};
        if (db_query(a->db, -1, ST_GUIDELINES, 2, v, NULL, NULL, on_rules, key)) {
            mem_free(key);
            mem_free(e);
            conn_reply_err(c, in->id, PP_E_UNAVAILABLE, "storage unavailable, retry");
            waiter_free(w);
            return;
        }
        e->loading = true;
        uint32_t h = hash(e->room);
        e->next = rc->b[h];
        rc->b[h] = e;
        rc->n++;
    }
    if (e->nwait >= WAIT_MAX) {
        conn_reply_err(c, in->id, PP_E_BUSY, "server busy, retry later");
        waiter_free(w);
        return;
    }
    if (!w && !(w = waiter_new(c, in))) {
        conn_reply_err(c, in->id, PP_E_INTERNAL, "out of memory");
        return;
    }
    if (e->wt)
        e->wt->next = w;
    else
        e->wh = w;
    e->wt = w;
    e->nwait++;
}
