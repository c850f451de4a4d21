#include "send.h"

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
#include "rulecache.h"
#include "store.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the decisions ------------------------------------------------------ */

bool send_pace_ask(const struct send_facts *f, struct pace *p)
{
    if (f->op != PP_OP_SEND || f->pace != SEND_PACE_UNASKED) return false;
    int64_t slow_ms =
        perm_allows((enum role)f->role, P_MODERATE) ? 0 : f->room->slow_mode_s * 1000LL;
    int32_t rates[GL_MAX_RATES];
    int nrates = gl_rates(f->room->set, rates);
    long gs = gl_slow_max(f->room->set);
    if (!slow_ms && !nrates && !gs && !f->behind) return false;
    if (p) {
        memset(p, 0, sizeof *p);
        p->slow_ms = slow_ms;
        p->nrates = nrates;
        memcpy(p->rates, rates, sizeof rates);
        p->keep_ms = 120000; /* a bucket at its cap drains in two minutes */
        if (p->slow_ms > p->keep_ms) p->keep_ms = p->slow_ms;
        if (gs * 1000LL > p->keep_ms) p->keep_ms = gs * 1000LL;
    }
    return true;
}

static void refuse(struct send_decision *d, enum pp_err_code code, const char *msg)
{
    d->act = SEND_REFUSE;
    d->code = code;
    snprintf(d->msg, sizeof d->msg, "%s", msg);
}

/* The room's own refusals: mutes and lock. Moderators are not held back by
 * a lock (a mute names its person, whatever their role). */
static bool policy_refuses(const struct send_facts *f, struct send_decision *d)
{
    const struct rc_room *r = f->room;
    for (int i = 0; i < r->nmutes; i++)
        if (!strcmp(r->mutes[i].person, f->person) && r->mutes[i].until > f->now_ms) {
            refuse(d, PP_E_MUTED, "");
            snprintf(d->msg, sizeof d->msg, "you are muted here for %lld more seconds",
                     (long long)((r->mutes[i].until - f->now_ms + 999) / 1000));
            return true;
        }
    if (r->locked && !perm_allows((enum role)f->role, P_MODERATE)) {
        refuse(d, PP_E_ROOM_LOCKED, "the room is locked (read-only)");
        return true;
    }
    return false;
}

void send_decide(const struct send_facts *f, struct send_decision *d)
{
    memset(d, 0, sizeof *d);
    /* A send the pace counted and that is then not sent is given back, so a
     * refused message never slows its sender. */
    d->refund = f->pace == SEND_PACE_OK;
    if (policy_refuses(f, d)) return;
    if (f->pace == SEND_PACE_DOWN) {
        refuse(d, PP_E_UNAVAILABLE, "rate limits unavailable, retry");
        return;
    }
    if (f->pace == SEND_PACE_SLOW) {
        refuse(d, PP_E_SLOW_MODE, "");
        snprintf(d->msg, sizeof d->msg, "slow mode: one message per %lld s; wait %lld ms",
                 (long long)(f->pv->slow_ms / 1000), (long long)f->pv->wait_ms);
        return;
    }
    if (send_pace_ask(f, NULL)) {
        d->act = SEND_PACE;
        d->refund = false;
        return;
    }
    if (f->eval_err == -EILSEQ) {
        refuse(d, PP_E_BAD_REQUEST, "body: not valid UTF-8");
        return;
    }
    if (f->eval_err) { /* not checked: not sent */
        refuse(d, PP_E_INTERNAL, "out of memory");
        return;
    }
    if (!f->v && f->room->set) {
        d->act = SEND_EVALUATE;
        d->refund = false;
        return;
    }
    const struct gl_verdict *v = f->v;
    enum gl_action act = v ? v->action : GL_ALLOW;
    /* An edit of a delivered message cannot wait for review: refused. */
    if (act == GL_REJECT || (f->op == PP_OP_EDIT && (act == GL_HOLD || act == GL_SHADOW))) {
        refuse(d, PP_E_GUIDELINE, "refused by a guideline");
        for (int i = 0; i < v->nhits; i++)
            if (v->hits[i].action == act) {
                snprintf(d->msg, sizeof d->msg, "refused by guideline \"%s\"", v->hits[i].rule_id);
                break;
            }
        return;
    }
    /* Each redaction becomes a placeholder of up to 23 bytes, so a body of
     * many short ones can grow far past what was sent. Readers, exports and
     * clients rely on max_body (the hello says it): such a body is refused,
     * never stored longer or cut. */
    if (v && v->text && v->len > f->max_body) {
        refuse(d, PP_E_BODY_TOO_LONG,
               "body: longer than the limit once the guidelines' "
               "redactions are applied");
        return;
    }
    d->refund = false;
    /* A rewritten body replaces the original, which is never stored. */
    d->rewrite = v && v->text;
    for (int i = 0; v && i < v->nhits; i++)
        d->flag |= v->hits[i].action == GL_FLAG;
    if (act == GL_HOLD || act == GL_SHADOW) {
        d->act = SEND_KEEP;
        d->held = act == GL_HOLD;
    } else {
        d->act = SEND_STORE;
    }
}

/* ---- the stage ---------------------------------------------------------- */

#define HITS_FLUSH 32768 /* bytes of buffered hit rows that force a write */

struct sendstage {
    char hits[HITS_FLUSH + 2048]; /* JSON array of hit rows not yet written */
    size_t hlen;                  /* its length (0: empty, else "[..." open) */
};

/* A send (or edit) waiting for its room's rules or its sender's pace. */
struct waiter {
    struct creq cr;       /* link to the connection; counted in its nreqs */
    struct rc_wait rw;    /* in line for the room's rules */
    enum send_pace paced; /* the pace step's result so far */
    struct pace pace;     /* the sender's pace in the room (pace.h) */
    bool spent;           /* stored, kept or edited: its pace stays counted */
    struct msgin in;      /* what was asked (strings inside this allocation) */
};

static void ignore_result(void *ud, PGresult *res, int err)
{
    (void)ud;
    (void)res;
    (void)err;
}

int send_new(struct app *a)
{
    a->send = mem_calloc(1, sizeof *a->send);
    return a->send ? 0 : -1;
}

void send_free(struct app *a)
{
    mem_free(a->send);
    a->send = NULL;
}

static void on_room(struct rc_wait *rw, const struct rc_room *r, int err);

/* A copy of in that outlives the command's frame, linked to c. */
static struct waiter *waiter_new(struct conn *c, const struct msgin *in)
{
    size_t cl = in->cmid.len, bl = in->body.len;
    struct waiter *w = mem_alloc(sizeof *w + cl + bl + 2);
    if (!w) return NULL;
    memset(w, 0, sizeof *w);
    w->in = *in;
    w->rw.done = on_room;
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

/* A send whose pace was counted and that went nowhere (refused, or failed on
 * any path) gives it back here, the one place every waiter ends: a refused
 * message never slows its sender. */
static void waiter_free(struct waiter *w)
{
    if (!w) return;
    struct conn *c = w->cr.c;
    if (c && w->paced == SEND_PACE_OK && !w->spent)
        pace_refund(c->app->bus, w->in.room, c->person, &w->pace);
    creq_unlink(&w->cr);
    mem_free(w);
}

void send_tick(struct app *a)
{
    struct sendstage *s = a->send;
    if (!s || !s->hlen) return;
    s->hits[s->hlen++] = ']';
    s->hits[s->hlen] = 0;
    const char *p[1] = {s->hits};
    if (db_query(a->db, -1, ST_HITS, 1, p, NULL, NULL, ignore_result, NULL))
        log_warn("guideline hits not recorded", "bytes=%zu", s->hlen);
    s->hlen = 0;
}

/* Hits are recorded for moderators and the evaluation, not answered: they
 * are buffered and written in one statement per tick (or when the buffer
 * fills), not one statement per message. */
static void record_hits(struct app *a, struct conn *c, const char *room, const struct gl_verdict *v)
{
    struct sendstage *s = a->send;
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
        s->hits[s->hlen] = s->hlen ? ',' : '[';
        memcpy(s->hits + s->hlen + 1, row, (size_t)n);
        s->hlen += 1 + (size_t)n;
        if (s->hlen >= HITS_FLUSH) send_tick(a);
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
        w->paced = SEND_PACE_DOWN;
    } else if (p->wait_ms > 0) {
        c->app->stats.pace_slowed++;
        w->paced = SEND_PACE_SLOW;
    } else {
        c->app->stats.pace_counted++;
        w->paced = SEND_PACE_OK;
    }
    route(c->app, c, &w->in, w);
}

/* Counts a send in its sender's pace before it is evaluated. Once one send
 * of a connection waits for Redis, the connection's later sends wait behind
 * it, whatever their room, so they are stored in the order they came. w,
 * when given, is the waiting copy of in and is consumed. */
static void pace_start(struct conn *c, const struct send_facts *f, const struct msgin *in,
                       struct waiter *w)
{
    if (!w && !(w = waiter_new(c, in))) {
        conn_reply_err(c, in->id, PP_E_INTERNAL, "out of memory");
        return;
    }
    send_pace_ask(f, &w->pace);
    if (pace_take(c->app->bus, in->room, c->person, &w->pace, on_paced, w)) {
        c->app->stats.pace_unavailable++;
        conn_reply_err(c, in->id, PP_E_UNAVAILABLE, "rate limits unavailable, retry");
        waiter_free(w);
    } else {
        c->pacing++;
    }
}

/* Runs the decisions for one send or edit whose room is known, and acts on
 * them. w, when given, is the waiting copy of in and is consumed. */
static void decide(struct app *a, struct conn *c, const struct rc_room *r, const struct msgin *in,
                   struct waiter *w)
{
    struct send_facts f = {.op = in->op,
                           .role = c->prole,
                           .person = c->person,
                           .now_ms = app_wall_ms(),
                           .room = r,
                           .behind = c->pacing > 0,
                           .pace = w ? w->paced : SEND_PACE_UNASKED,
                           .pv = w ? &w->pace : NULL,
                           .max_body = a->cfg.max_body};
    const struct pace *pc = f.pace == SEND_PACE_OK ? &w->pace : NULL;
    struct gl_verdict v = {.action = GL_ALLOW, .decisive = -1};
    struct send_decision d;
    send_decide(&f, &d);
    if (d.act == SEND_PACE) {
        pace_start(c, &f, in, w);
        return;
    }
    if (d.act == SEND_EVALUATE) {
        struct gl_ctx ctx = {.role = c->prole, .since_last_ms = -1};
        int32_t rates[GL_MAX_RATES];
        int nr = gl_rates(r->set, rates);
        if (pc) ctx.since_last_ms = pc->since_last_ms;
        /* buckets counted under the rules of the moment (they may have changed since) */
        if (pc && nr == pc->nrates && !memcmp(rates, pc->rates, (size_t)nr * sizeof *rates))
            ctx.taken_milli = pc->taken_milli;
        a->stats.gl_checks++;
        if ((f.eval_err = gl_eval(r->set, in->body.str, in->body.len, &ctx, &v)) == 0) {
            record_hits(a, c, in->room, &v);
            f.v = &v;
        }
        send_decide(&f, &d);
    }
    struct pp_str b = d.rewrite ? (struct pp_str){v.text, v.len} : in->body;
    if (d.act == SEND_REFUSE) {
        conn_reply_err(c, in->id, d.code, d.msg);
    } else if (in->op == PP_OP_EDIT) {
        mod_edit(a, c, in->id, in->room, in->seq, b.str, b.len);
    } else if (d.act == SEND_KEEP) {
        keep(a, c, in, &b, &v);
    } else if (store_send(a, c, in->id, in->room, &in->cmid, &b, in->parent)) {
        conn_reply_err(c, in->id, PP_E_BUSY, "server busy, retry later");
        d.refund = pc != NULL;
        d.flag = false;
    }
    if (w) w->spent = !d.refund; /* waiter_free gives a refund back */
    if (d.flag) notify_flag(a, c, in, &v);
    gl_verdict_free(&v);
    waiter_free(w);
}

/* The room's rules are known (or are not to be had). */
static void on_room(struct rc_wait *rw, const struct rc_room *r, int err)
{
    struct waiter *w = (struct waiter *)((char *)rw - offsetof(struct waiter, rw));
    struct conn *c = w->cr.c;
    if (c && r)
        decide(c->app, c, r, &w->in, w);
    else {
        if (c && err != -ECANCELED)
            conn_reply_err(c, w->in.id, PP_E_UNAVAILABLE, "guidelines unavailable, retry");
        waiter_free(w);
    }
}

void send_message(struct app *a, struct conn *c, const struct msgin *in)
{
    route(a, c, in, NULL);
}

/* To the room's rules, or in line for them while they load. w, when given,
 * is the waiting copy of in and is consumed. */
static void route(struct app *a, struct conn *c, const struct msgin *in, struct waiter *w)
{
    const struct rc_room *r = NULL;
    int rc = rulecache_get(a, in->room, c->workspace, w ? &w->rw : NULL, &r);
    if (rc == 1 && !w) { /* loading: a copy of the send waits in line */
        if (!(w = waiter_new(c, in))) {
            conn_reply_err(c, in->id, PP_E_INTERNAL, "out of memory");
            return;
        }
        rc = rulecache_get(a, in->room, c->workspace, &w->rw, &r);
    }
    if (rc == 0) {
        decide(a, c, r, in, w);
        return;
    }
    if (rc == 1) return; /* on_room goes on */
    if (rc == -ENOMEM)
        conn_reply_err(c, in->id, PP_E_INTERNAL, "out of memory");
    else if (rc == -EBUSY)
        conn_reply_err(c, in->id, PP_E_BUSY, "server busy, retry later");
    else
        conn_reply_err(c, in->id, PP_E_UNAVAILABLE, "storage unavailable, retry");
    waiter_free(w);
}
