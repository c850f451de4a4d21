#include "authq.h"

#include "app.h"
#include "auth.h"
#include "conn.h"
#include "db.h"
#include "log.h"
#include "mem.h"
#include "parley_encode.h"
#include "perm.h"
#include "stats.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AQ_TICK_MS 50          /* how often queued auths are checked for their wait */
#define AQ_FIRST_BATCH_MS 20   /* the batch time assumed before one was measured */
#define AQ_RETRY_MIN_MS 250    /* the shortest retry hint */
#define AQ_MAX_RESTARTS 8      /* refusals that restart one connection's auth deadline */
#define AQ_UNAVAILABLE_MS 1000 /* the hint when PostgreSQL is down or timed out */
#define AQ_ITEM_JSON 112       /* ["<64 hex>","<uuid>"], one look-up item at most */
#define AQ_VISIT_JSON 384      /* one visit-log object at most (bounded fields) */

struct aq_item {
    struct creq cr;                     /* to the connection; cr.c NULL once it closed */
    struct aq_item *next;               /* queue link */
    int64_t id;                         /* the command id to answer */
    uint64_t t0;                        /* uv_hrtime at arrival, for the auth latency */
    uint64_t queued_ms;                 /* app_now_ms at arrival, for the wait limit */
    char hash[2 * AUTH_HASH_BYTES + 1]; /* the token's hash, hex */
    char ws[PP_UUID_LEN + 1];           /* the workspace asked for, or "" */
};

struct aq_batch {
    struct authq *q;         /* owner */
    uint64_t sent_ms;        /* app_now_ms when sent, for the batch time */
    int n;                   /* items */
    struct aq_item *items[]; /* n items, in the query's order (item k is n = k + 1) */
};

struct authq {
    struct app *a;
    uv_check_t kick;             /* sends batches after a loop turn's reads */
    uv_timer_t tick;             /* answers auths that waited too long */
    int open_handles;            /* kick and tick until closed: free at 0 */
    struct aq_item *head, *tail; /* waiting, oldest first */
    uint32_t nqueued;            /* their number */
    uint32_t inflight;           /* look-ups sent, not answered */
    uint32_t batch_max;          /* tokens per look-up */
    uint32_t inflight_max;       /* look-ups at once */
    uint32_t queue_max;          /* auths waiting at most */
    uint32_t wait_ms;            /* longest an auth waits before `busy` */
    double batch_ms;             /* moving average of a look-up's round trip */
    char *json;                  /* parameter scratch (db_query copies it) */
    size_t json_cap;
};

static void item_free(struct aq_item *it)
{
    creq_unlink(&it->cr);
    mem_free(it);
}

static void observe(struct conn *c, const struct aq_item *it)
{
    stats_observe(&c->app->stats.op_seconds[SO_AUTH], (double)(uv_hrtime() - it->t0) / 1e9, 0);
}

/* A refusal the client retries after the hint: the auth timeout restarts, so
 * that retry fits on this connection; but only AQ_MAX_RESTARTS times, or a
 * client with any well-formed token could stay unauthenticated for ever by
 * retrying while the gateway is busy. */
static void answer_retry(struct conn *c, struct aq_item *it, enum pp_err_code code, const char *msg,
                         uint32_t retry_ms)
{
    char buf[256];
    c->auth_pending = false;
    if (c->auth_restarts < AQ_MAX_RESTARTS) {
        c->auth_restarts++;
        c->opened_ms = app_now_ms(c->app);
    }
    int n = pp_encode_error_retry(buf, sizeof buf, it->id, code, msg, retry_ms);
    if (n > 0) conn_send_copy(c, buf, (size_t)n);
    observe(c, it);
}

/* The wait, in ms, before an auth queued behind `ahead` others is answered:
 * whole rounds of look-ups at the measured batch time. */
static uint32_t expected_ms(const struct authq *q, uint32_t ahead)
{
    uint32_t per_round = q->batch_max * q->inflight_max;
    double ms = (double)(ahead / per_round + 1) * q->batch_ms;
    return ms > 1e9 ? 1000000000u : (uint32_t)ms;
}

/* How long a refused client should wait: until the queue has drained, within
 * bounds that keep the retry inside its auth timeout. */
static uint32_t retry_hint(const struct authq *q)
{
    uint32_t ms = expected_ms(q, q->nqueued), cap = q->a->cfg.auth_timeout_ms / 2;
    if (ms < AQ_RETRY_MIN_MS) ms = AQ_RETRY_MIN_MS;
    return ms > cap ? cap : ms;
}

static void on_visits(void *ud, PGresult *res, int err)
{
    (void)ud;
    if (err || PQresultStatus(res) != PGRES_COMMAND_OK)
        log_warn("visits not logged", "sqlstate=%s", err ? "" : db_sqlstate(res));
}

/* Fills the connection from row r and answers ok; the visit goes into w. */
static void answer_ok(struct conn *c, struct aq_item *it, PGresult *res, int r, struct pp_w *w)
{
    snprintf(c->person, sizeof c->person, "%s", PQgetvalue(res, r, 1));
    snprintf(c->workspace, sizeof c->workspace, "%s", PQgetvalue(res, r, 2));
    const char *role = PQgetvalue(res, r, 3);
    snprintf(c->token_id, sizeof c->token_id, "%s", PQgetvalue(res, r, 4));
    c->avatar = PQgetvalue(res, r, 5)[0] == 't';
    c->prole = perm_role_parse(role, strlen(role));
    c->authed = true;
    c->auth_pending = false;
    pp_w_obj_begin(w);
    pp_w_key(w, "ws");
    pp_w_cstr(w, c->workspace);
    pp_w_key(w, "person");
    pp_w_cstr(w, c->person);
    pp_w_key(w, "ip");
    pp_w_cstr(w, c->ip);
    pp_w_key(w, "os");
    pp_w_str(w, c->ua_os ? c->ua_os : "Other", strnlen(c->ua_os ? c->ua_os : "Other", 64));
    pp_w_key(w, "browser");
    pp_w_str(w, c->ua_browser ? c->ua_browser : "Other",
             strnlen(c->ua_browser ? c->ua_browser : "Other", 64));
    pp_w_obj_end(w);
    log_info("authenticated", "conn=%llu person=%s workspace=%s role=%s", (unsigned long long)c->id,
             c->person, c->workspace, role);
    char buf[160];
    struct pp_w o;
    pp_w_init(&o, buf, sizeof buf);
    pp_enc_auth_ok(&o, c->person, c->workspace, role);
    int len = pp_w_finish(&o);
    conn_reply_ok(c, it->id, buf, len > 0 ? (size_t)len : 0);
    observe(c, it);
}

static void pump(struct authq *q);

/* Answers every auth of b from the look-up's result (or err) and frees b. */
static void answer_batch(struct aq_batch *b, PGresult *res, int err)
{
    struct authq *q = b->q;
    struct app *a = q->a;
    q->inflight--;
    bool failed = err || PQresultStatus(res) != PGRES_TUPLES_OK;
    /* Only answers measure the database: a timed-out or refused look-up
     * folded in would raise the estimate past auth_wait_ms and keep it
     * there, refusing every auth after the outage. */
    if (!failed) {
        double took = (double)(app_now_ms(a) - b->sent_ms);
        q->batch_ms = q->batch_ms * 0.75 + (took < 1 ? 1 : took) * 0.25;
    }
    if (failed && !err)
        log_error("auth query failed", "tokens=%d sqlstate=%s", b->n, db_sqlstate(res));
    struct pp_w w;
    pp_w_init(&w, q->json, q->json_cap);
    pp_w_arr_begin(&w);
    int nvisits = 0, rows = failed ? 0 : PQntuples(res), r = 0;
    for (int k = 0; k < b->n; k++) {
        struct aq_item *it = b->items[k];
        struct conn *c = it->cr.c;
        int first = r, count = 0;
        while (r < rows && atoi(PQgetvalue(res, r, 0)) == k + 1) {
            r++;
            count++;
        }
        if (!c) {
            /* closed while looked up: nobody to answer */
        } else if (err == -ENOBUFS) {
            answer_retry(c, it, PP_E_BUSY, "server busy, retry later", retry_hint(q));
        } else if (err) {
            answer_retry(c, it, PP_E_UNAVAILABLE, "storage unavailable, retry later",
                         AQ_UNAVAILABLE_MS);
        } else if (failed) {
            c->auth_pending = false;
            conn_reply_err(c, it->id, PP_E_INTERNAL, "internal error");
        } else if (count == 0) {
            c->auth_pending = false;
            conn_reply_err(c, it->id, PP_E_AUTH_FAILED, "invalid, expired or revoked token");
            observe(c, it);
        } else if (count > 1) {
            c->auth_pending = false;
            conn_reply_err(c, it->id, PP_E_BAD_REQUEST,
                           "workspace: required, the token is valid in several workspaces");
        } else {
            answer_ok(c, it, res, first, &w);
            nvisits++;
        }
        item_free(it);
    }
    mem_free(b);
    /* The visit log: fire and forget (a lost row must not fail a session). */
    pp_w_arr_end(&w);
    int len = pp_w_finish(&w);
    if (nvisits && len > 0) {
        q->json[len] = '\0';
        const char *v[1] = {q->json};
        if (!db_query(a->db, -1, ST_VISIT, 1, v, NULL, NULL, on_visits, NULL))
            a->stats.visits_logged += (uint64_t)nvisits;
    } else if (nvisits) {
        log_warn("visits not logged", "sqlstate=%s", "too long");
    }
}

static void on_lookup(void *ud, PGresult *res, int err)
{
    struct authq *q = ((struct aq_batch *)ud)->q;
    answer_batch(ud, res, err);
    pump(q);
}

/* Sends one look-up of up to batch_max waiting auths; false when there was
 * nothing to send or it could not be sent (its auths are answered). */
static bool send_batch(struct authq *q)
{
    struct app *a = q->a;
    while (q->head && !q->head->cr.c) { /* closed while waiting */
        struct aq_item *it = q->head;
        q->head = it->next;
        q->nqueued--;
        item_free(it);
    }
    if (!q->head) {
        q->tail = NULL;
        return false;
    }
    struct aq_batch *b = mem_alloc(sizeof *b + q->batch_max * sizeof b->items[0]);
    if (!b) return false;
    b->q = q;
    b->n = 0;
    b->sent_ms = app_now_ms(a);
    struct pp_w w;
    pp_w_init(&w, q->json, q->json_cap);
    pp_w_arr_begin(&w);
    while (q->head && (uint32_t)b->n < q->batch_max) {
        struct aq_item *it = q->head;
        q->head = it->next;
        q->nqueued--;
        if (!it->cr.c) {
            item_free(it);
            continue;
        }
        pp_w_arr_begin(&w);
        pp_w_cstr(&w, it->hash);
        if (it->ws[0])
            pp_w_cstr(&w, it->ws);
        else
            pp_w_null(&w);
        pp_w_arr_end(&w);
        b->items[b->n++] = it;
    }
    if (!q->head) q->tail = NULL;
    pp_w_arr_end(&w);
    int len = pp_w_finish(&w);
    int rc = len > 0 ? 0 : -ENOMEM;
    if (!rc) {
        q->json[len] = '\0';
        const char *v[1] = {q->json};
        rc = db_query(a->db, -1, ST_AUTH, 1, v, NULL, NULL, on_lookup, b);
    }
    if (rc) {
        /* Answered as if the query had failed at once, without pumping
         * again from here (that recursed once per batch): the rest of the
         * queue waits for the next turn's kick. */
        q->inflight++;
        answer_batch(b, NULL, rc == -ENOMEM ? -EAGAIN : rc);
        return false;
    }
    q->inflight++;
    a->stats.auth_lookups++;
    return true;
}

/* Fills the look-up slots from the queue; stops at a batch that could not be
 * sent (the kick tries again next turn). */
static void pump(struct authq *q)
{
    while (q->head && q->inflight < q->inflight_max)
        if (!send_batch(q)) break;
    if (!q->head) uv_check_stop(&q->kick);
}

static void on_kick(uv_check_t *h)
{
    pump(h->data);
}

/* Auths that waited auth_wait_ms (the database slowed after they were
 * admitted) are told to come back rather than left to time out. */
static void on_tick(uv_timer_t *t)
{
    struct authq *q = t->data;
    uint64_t now = app_now_ms(q->a);
    while (q->head && now - q->head->queued_ms >= q->wait_ms) {
        struct aq_item *it = q->head;
        q->head = it->next;
        q->nqueued--;
        if (it->cr.c) {
            q->a->stats.auth_busy++;
            answer_retry(it->cr.c, it, PP_E_BUSY, "server busy, retry later", retry_hint(q));
        }
        item_free(it);
    }
    if (!q->head) q->tail = NULL;
}

void authq_op(struct conn *c, const struct pp_cmd *cmd)
{
    struct app *a = c->app;
    struct authq *q = a->authq;
    if (c->authed) {
        conn_reply_err(c, cmd->id, PP_E_ALREADY_AUTHENTICATED, "already authenticated");
        return;
    }
    if (c->auth_pending) {
        conn_reply_err(c, cmd->id, PP_E_BAD_REQUEST, "auth already in progress");
        return;
    }
    unsigned char hash[AUTH_HASH_BYTES];
    if (auth_token_hash(cmd->token.str, cmd->token.len, hash)) {
        conn_reply_err(c, cmd->id, PP_E_AUTH_FAILED, "invalid, expired or revoked token");
        return;
    }
    struct aq_item tmp = {.id = cmd->id, .t0 = uv_hrtime()};
    /* The estimate refuses only while look-ups are running to measure it:
     * with none in flight this auth goes out at once. */
    if (q->nqueued >= q->queue_max || (q->inflight && expected_ms(q, q->nqueued) > q->wait_ms)) {
        a->stats.auth_busy++;
        answer_retry(c, &tmp, PP_E_BUSY, "server busy, retry later", retry_hint(q));
        return;
    }
    struct aq_item *it = mem_calloc(1, sizeof *it);
    if (!it) {
        conn_reply_err(c, cmd->id, PP_E_INTERNAL, "out of memory");
        return;
    }
    *it = tmp;
    it->queued_ms = app_now_ms(a);
    for (int i = 0; i < AUTH_HASH_BYTES; i++)
        snprintf(it->hash + 2 * i, 3, "%02x", hash[i]);
    /* The decoder admits only a canonical UUID here. */
    snprintf(it->ws, sizeof it->ws, "%.*s", (int)cmd->workspace.len,
             cmd->workspace.str ? cmd->workspace.str : "");
    creq_link(c, &it->cr);
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->nqueued++;
    c->auth_pending = true;
    uv_check_start(&q->kick, on_kick);
}

int authq_new(struct app *a)
{
    struct authq *q = mem_calloc(1, sizeof *q);
    if (!q) return -ENOMEM;
    const struct config *cfg = &a->cfg;
    q->a = a;
    q->batch_max = cfg->auth_batch_max;
    q->inflight_max = cfg->auth_inflight;
    q->queue_max = cfg->auth_queue_max;
    /* Leave the client time to read `busy` before its own deadline. */
    q->wait_ms = cfg->auth_wait_ms < cfg->auth_timeout_ms * 3 / 4 ? cfg->auth_wait_ms
                                                                  : cfg->auth_timeout_ms * 3 / 4;
    q->batch_ms = AQ_FIRST_BATCH_MS;
    q->json_cap = (size_t)q->batch_max * AQ_VISIT_JSON + 16;
    q->json = mem_alloc(q->json_cap + 1);
    if (!q->json) {
        mem_free(q);
        return -ENOMEM;
    }
    uv_check_init(a->loop, &q->kick);
    q->kick.data = q;
    uv_timer_init(a->loop, &q->tick);
    q->tick.data = q;
    uv_timer_start(&q->tick, on_tick, AQ_TICK_MS, AQ_TICK_MS);
    uv_unref((uv_handle_t *)&q->tick);
    q->open_handles = 2;
    a->authq = q;
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    struct authq *q = h->data;
    if (--q->open_handles) return;
    mem_free(q->json);
    mem_free(q);
}

void authq_free(struct app *a)
{
    struct authq *q = a->authq;
    if (!q) return;
    a->authq = NULL;
    while (q->head) {
        struct aq_item *it = q->head;
        q->head = it->next;
        item_free(it);
    }
    uv_check_stop(&q->kick);
    uv_timer_stop(&q->tick);
    uv_close((uv_handle_t *)&q->kick, on_closed);
    uv_close((uv_handle_t *)&q->tick, on_closed);
}
