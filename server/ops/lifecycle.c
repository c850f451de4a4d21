#include "lifecycle.h"

#include "app.h"
#include "auth.h"
#include "authq.h"
#include "bus.h"
#include "conn.h"
#include "ctl.h"
#include "db.h"
#include "dbread.h"
#include "frame.h"
#include "guidelines.h"
#include "handler.h"
#include "http_api.h"
#include "log.h"
#include "metrics.h"
#include "moderation.h"
#include "mem.h"
#include "receipts.h"
#include "rights.h"
#include "wsdelete.h"
#include "room.h"
#include "rulecache.h"
#include "stmts.h"
#include "send.h"
#include "store.h"
#include "web.h"
#include "ws.h"

#include <libwebsockets.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define SWEEP_MS 20             /* room gaps, auth deadlines, shutdown steps */
#define DRAIN_FLUSH_MAX_MS 5000 /* shutdown: wait for pending writes at most */
#define DRAIN_CLOSE_MAX_MS 2000 /* shutdown: wait for clients to close at most */
#define DRAIN_SETTLE_MAX_MS 500 /* shutdown: wait for Redis's last answers at most */

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
}

/* Final step: everything is closed in dependency order and the loop ends
 * when the last handle is gone. */
static void app_stop(struct app *a)
{
    a->stopped = true;
    ws_stop(a);                   /* CLOSED for any connection left: they leave their rooms */
    if (a->dbr) db_close(a->dbr); /* first: its reads fall back to the primary, closed next */
    a->dbr = NULL;                /* freed when its handles close; nothing reads it now */
    dbread_free(a);
    db_close(a->db); /* pending queries complete with -EAGAIN */
    authq_free(a);
    bus_close(a->bus);
    receipts_free(a);
    rulecache_free(a);
    send_free(a);
    store_batcher_free(a);
    room_registry_free(a);
    uv_timer_stop(&a->sweep);
    uv_close((uv_handle_t *)&a->sweep, on_handle_closed);
    uv_timer_stop(&a->jobs);
    uv_close((uv_handle_t *)&a->jobs, on_handle_closed);
    uv_timer_stop(&a->flush);
    uv_close((uv_handle_t *)&a->flush, on_handle_closed);
    /* Closing the handles gives the signals back their default action, which
     * for a repeated SIGTERM (systemd, a supervisor, a second Ctrl-C) would
     * end the process in the middle of its bounded teardown with a signal
     * status instead of 0. Everything is already stopping: ignore them, with
     * both blocked meanwhile so that none lands between the close and the
     * ignore (one pending then is discarded when they are unblocked). */
    sigset_t term, old;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigaddset(&term, SIGINT);
    sigprocmask(SIG_BLOCK, &term, &old);
    uv_close((uv_handle_t *)&a->sig_term, on_handle_closed);
    uv_close((uv_handle_t *)&a->sig_int, on_handle_closed);
    signal(SIGTERM, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    sigprocmask(SIG_SETMASK, &old, NULL);
    uv_close((uv_handle_t *)&a->sig_usr1, on_handle_closed);
    uv_close((uv_handle_t *)&a->sig_usr2, on_handle_closed);
    log_info("stopped", "opened=%llu persisted=%llu delivered=%llu",
             (unsigned long long)a->stats.conns_opened, (unsigned long long)a->stats.msgs_persisted,
             (unsigned long long)a->stats.frames_delivered);
}

static void drain_step(struct app *a)
{
    uint64_t waited = app_now_ms(a) - a->drain_started;
    if (!a->closing_clients) {
        /* Receipts first: the events they leave are writes of the store. */
        if (!receipts_idle(a)) receipts_flush(a);
        bool idle = store_idle(a) && receipts_idle(a);
        if (!idle && waited < DRAIN_FLUSH_MAX_MS) return;
        if (!idle) log_warn("shutdown: pending writes not flushed in time", "%s", "");
        a->closing_clients = true;
        a->drain_started = app_now_ms(a);
        for (struct conn *c = a->conns; c; c = c->next)
            conn_close_when_drained(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
        return;
    }
    if (!a->settling) {
        if (a->nconns && waited < DRAIN_CLOSE_MAX_MS) return;
        /* Clients that did not read their last replies in time are cut off. */
        for (struct conn *c = a->conns; c; c = c->next)
            conn_close(c, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
        a->settling = true;
        a->drain_started = app_now_ms(a);
        room_presence_leave(a);
    }
    /* Sent and answered before the links go: the liveness key's deletion,
     * and the presence removals of rooms already freed (a room whose
     * unsubscribe is still unanswered, or whose clients were cut off, is
     * freed only with the links; the deletion covers it). Else the other
     * gateways would list those people until the key lapses (about 12 s). */
    if (!bus_settled(a->bus) && app_now_ms(a) - a->drain_started < DRAIN_SETTLE_MAX_MS) return;
    app_stop(a);
}

static void on_schema(void *ud, PGresult *res, int err)
{
    struct app *a = ud;
    if (err || PQresultStatus(res) != PGRES_TUPLES_OK) return; /* db readiness covers it */
    bool ok = atoi(PQgetvalue(res, 0, 0)) == a->schema_version;
    if (ok != a->schema_ok)
        log_warn(ok ? "schema current again" : "schema changed under this gateway",
                 "expected=%d found=%s", a->schema_version, PQgetvalue(res, 0, 0));
    a->schema_ok = ok;
}

static void on_sweep(uv_timer_t *t)
{
    struct app *a = t->data;
    room_tick(a);
    if (a->sweeps % 5 == 0) send_tick(a); /* guideline hits, every 100 ms */
    /* Auth deadlines need no 20 ms precision; walking every connection that
     * often would cost an idle gateway with many connections real CPU. */
    if (++a->sweeps % 10 == 0) {
        uint64_t now = app_now_ms(a);
        /* This check runs every 200 ms; a longer pause means the loop
         * itself was stopped (SIGSTOP) or starved, not the clients. */
        bool frozen = now - a->stall_checked_at > 2000;
        a->stall_checked_at = now;
        for (struct conn *c = a->conns; c; c = c->next) {
            /* Not while its auth is queued or looked up: authq answers it
             * in bounded time (busy at worst). */
            if (!c->authed && !c->closing && !c->auth_pending &&
                now - c->opened_ms >= a->cfg.auth_timeout_ms) {
                a->stats.auth_timeouts++;
                conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "auth timeout");
            }
            conn_check_stall(c, now, frozen);
        }
    }
    /* Readiness also means the schema is the one this build expects: a
     * migration run by a newer gateway makes this one not ready. */
    if (a->sweeps % 250 == 0 && !a->draining)
        db_query(a->db, -1, ST_SCHEMA, 0, NULL, NULL, NULL, on_schema, a);
    if (a->draining && !a->stopped) drain_step(a);
}

/* Once a second: give the heap's unused pages back when they grew (mem.c);
 * revalidate sessions every minute (revocations missed while
 * Redis was away, tokens that expired while connected) and anonymise old
 * visit-log IPs on the configured period, the first time shortly after start. */
static void on_jobs(uv_timer_t *t)
{
    struct app *a = t->data;
    /* A connection's set-up steps: opened, authenticated, joined; closed. */
    const struct stats *st = &a->stats;
    uint64_t t0 = uv_hrtime();
    if (mem_trim_tick(st->conns_opened + st->conns_closed + st->op_seconds[SO_AUTH].count +
                      st->op_seconds[SO_JOIN].count))
        log_debug("heap trimmed", "ms=%.2f", (double)(uv_hrtime() - t0) / 1e6);
    if (a->draining || !db_ready(a->db)) return;
    a->job_runs++;
    room_presence_tick(a);
    if (a->job_runs % 60 == 0) ctl_revalidate(a);
    if (a->job_runs % a->cfg.anonymise_every_s == 5 % a->cfg.anonymise_every_s)
        http_api_anonymise(a);
    if (a->job_runs % a->cfg.retention_every_s == 7 % a->cfg.retention_every_s) rights_retention(a);
    wsdel_purge_tick(a);
}

/* Bus hooks shared by the rooms and the control channel. */
static void on_bus_message(void *ud, const char *ch, size_t chlen, const char *p, size_t len)
{
    if (!ctl_on_message(ud, ch, chlen, p, len)) room_on_bus_message(ud, ch, chlen, p, len);
}

static void on_bus_up(void *ud)
{
    ctl_on_bus_up(ud);
    room_on_bus_up(ud);
}

/* Gateway hooks: messages to the command handler, requests to the HTTP API,
 * connection ends and drained out-queues to the rooms. */
static void on_ws_message(void *ud, struct conn *c, const char *msg, size_t len)
{
    (void)ud;
    handler_dispatch(c, msg, len);
}

static void on_http_request(void *ud, struct http_req *r)
{
    (void)ud;
    http_api_handle(r);
}

static void on_conn_gone(void *ud, struct conn *c)
{
    room_conn_gone(ud, c);
}

static void on_conn_drained(void *ud, struct conn *c)
{
    room_conn_drained(ud, c);
}

/* API hook: /metrics is rendered up here, where every layer may be read. */
static char *on_render_metrics(void *ud, size_t *len)
{
    return metrics_render(ud, len);
}

/* Store hook: unpublished rows are fetched by the room's local members. */
static void on_store_kick(void *ud, const char *room)
{
    room_kick(ud, room);
}

/* Every module's statements into the registry (stmts.h), prepared on every
 * PostgreSQL connection. The store's go first: its ST_X are used as prepared
 * indices as they are. Each module then finds its own by its table's base. */
static int register_stmts(void)
{
    if (stmts_register(&store_sql) || store_sql.base != 0) return -1;
    if (http_api_register_stmts() || stmts_register(&mod_sql) || stmts_register(&rights_sql) ||
        stmts_register(&wsdel_sql))
        return -1;
    return 0;
}

void lifecycle_drain(struct app *a)
{
    if (a->draining) return;
    log_info("shutting down", "connections=%u", a->nconns);
    a->draining = true;
    a->drain_started = app_now_ms(a);
    receipts_flush(a);
    store_flush(a);
    send_tick(a);
}

static void on_signal(uv_signal_t *h, int signum)
{
    if (signum == SIGUSR1 || signum == SIGUSR2) {
        int l = (int)log_get_level() + (signum == SIGUSR1 ? 1 : -1);
        if (l < LOG_ERROR) l = LOG_ERROR;
        if (l > LOG_DEBUG) l = LOG_DEBUG;
        log_set_level((enum log_level)l);
        log_warn("log level changed", "level=%d", l);
        return;
    }
    lifecycle_drain(h->data);
}

int lifecycle_start(struct app *a, const struct config *cfg, uv_loop_t *loop)
{
    memset(a, 0, sizeof *a);
    a->cfg = *cfg;
    a->loop = loop;
    a->plim.max_body = cfg->max_body;
    /* Big enough for a packed write, a history page and any one push. */
    a->scratch_cap = cfg->max_frame * 4 > (1u << 20) ? cfg->max_frame * 4 : (1u << 20);
    a->scratch = mem_alloc(FRAME_PRE + a->scratch_cap);
    struct store_hooks store_hooks = {
        .ud = a,
        .kick = on_store_kick,
    };
    if (!a->scratch || room_registry_new(a) || store_batcher_new(a, &store_hooks) ||
        receipts_new(a) || rulecache_new(a) || send_new(a) || authq_new(a)) {
        log_error("out of memory at start", "%s", "");
        return -1;
    }
    gl_use_jit(cfg->regex_jit != 0);
    struct http_api_hooks api_hooks = {.ud = a, .render_metrics = on_render_metrics};
    if (auth_password_init(cfg->pwhash_ops, cfg->pwhash_mem_mib) || http_api_init(a, &api_hooks)) {
        log_error("cannot initialise password hashing or the operator token", "%s", "");
        return -1;
    }
    if (register_stmts()) {
        log_error("cannot register the prepared statements", "%s", "");
        return -1;
    }
    int nstmts = 0;
    const struct db_stmt *stmts = stmts_all(&nstmts);
    a->db = db_new(loop, cfg->pg, (int)cfg->db_conns, (int)cfg->db_timeout_ms, stmts, nstmts);
    struct bus_hooks hooks = {
        .ud = a,
        .on_message = on_bus_message,
        .on_subscribed = room_on_subscribed,
        .on_unsubscribed = room_on_unsubscribed,
        .on_up = on_bus_up,
        .on_pub_up = store_on_pub_up,
        .on_down = room_on_bus_down,
    };
    a->bus = cfg->redis_cluster[0]
                 ? bus_new_cluster(loop, cfg->redis_cluster, (int)cfg->db_timeout_ms, &hooks)
                 : bus_new(loop, cfg->redis_host, cfg->redis_port, (int)cfg->db_timeout_ms, &hooks);
    if (!a->db || !a->bus) return -1;
    db_start(a->db);
    /* The replica pool prepares the same statements (a standby accepts
     * PREPARE of any of them) but runs only dbread.h's reads. */
    if (cfg->pg_read[0]) {
        a->dbr = db_new(loop, cfg->pg_read, (int)cfg->db_read_conns, (int)cfg->db_timeout_ms, stmts,
                        nstmts);
        if (!a->dbr) return -1;
        db_readers_only(a->dbr);
        db_start(a->dbr);
    }
    bus_start(a->bus);
    /* The files are read now, before the loop serves anyone. */
    if (web_start(a)) return -1;
    uv_timer_init(loop, &a->flush); /* before any connection can hold a write back */
    a->flush.data = a;
    struct gateway_hooks gw_hooks = {
        .ud = a,
        .on_message = on_ws_message,
        .on_request = on_http_request,
        .on_conn_gone = on_conn_gone,
        .on_conn_drained = on_conn_drained,
    };
    if (ws_start(a, &gw_hooks)) return -1;
    uv_timer_init(loop, &a->sweep);
    a->sweep.data = a;
    uv_timer_start(&a->sweep, on_sweep, SWEEP_MS, SWEEP_MS);
    uv_timer_init(loop, &a->jobs);
    a->jobs.data = a;
    uv_timer_start(&a->jobs, on_jobs, 1000, 1000);
    uv_signal_t *sigs[] = {&a->sig_term, &a->sig_int, &a->sig_usr1, &a->sig_usr2};
    int signums[] = {SIGTERM, SIGINT, SIGUSR1, SIGUSR2};
    for (int i = 0; i < 4; i++) {
        uv_signal_init(loop, sigs[i]);
        sigs[i]->data = a;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }
    return 0;
}
