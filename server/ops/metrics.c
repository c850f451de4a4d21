#include "metrics.h"

#include "app.h"
#include "auth.h"
#include "bus.h"
#include "conn.h"
#include "db.h"
#include "rights.h"
#include "room.h"
#include "stats.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing text buffer; render fails as a whole on allocation failure. */
struct out {
    char *p;    /* text */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
    int oom;    /* an allocation failed */
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !o->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t ncap = (o->cap + (size_t)n + 1) * 2;
        char *np = realloc(o->p, ncap);
        if (!np)
            o->oom = 1;
        else
            o->p = np, o->cap = ncap;
    }
}

static void metric(struct out *o, const char *name, const char *type, const char *help, double v)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

static void histogram(struct out *o, const char *name, const char *help, const char *labels,
                      const struct hist *h, int is_count, int header)
{
    const double *b = stats_bounds(is_count);
    if (header) put(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i < STATS_BUCKETS; i++) {
        cum += h->bucket[i];
        put(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, b[i], (unsigned long long)cum);
    }
    cum += h->bucket[STATS_BUCKETS];
    put(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
    put(o, "%s_sum%s%s%s %.17g\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
        h->sum);
    put(o, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
        (unsigned long long)h->count);
}

char *metrics_render(struct app *a, size_t *len)
{
    struct out o = {.cap = 16384};
    o.p = malloc(o.cap);
    if (!o.p) return NULL;
    const struct stats *s = &a->stats;
    size_t outq = 0;
    for (struct conn *c = a->conns; c; c = c->next)
        outq += c->q.bytes;

    metric(&o, "parley_connections_open", "gauge", "WebSocket connections open now.", a->nconns);
    metric(&o, "parley_connections_opened_total", "counter", "WebSocket connections established.",
           (double)s->conns_opened);
    put(&o, "# HELP parley_connections_closed_total WebSocket connections closed, by reason.\n"
            "# TYPE parley_connections_closed_total counter\n");
    uint64_t special = s->slow_consumers + s->auth_timeouts;
    put(&o, "parley_connections_closed_total{reason=\"slow_consumer\"} %llu\n",
        (unsigned long long)s->slow_consumers);
    put(&o, "parley_connections_closed_total{reason=\"auth_timeout\"} %llu\n",
        (unsigned long long)s->auth_timeouts);
    put(&o, "parley_connections_closed_total{reason=\"other\"} %llu\n",
        (unsigned long long)(s->conns_closed > special ? s->conns_closed - special : 0));
    put(&o,
        "# HELP parley_connections_refused_total TCP connections refused on accept, by reason.\n"
        "# TYPE parley_connections_refused_total counter\n"
        "parley_connections_refused_total{reason=\"per_ip_cap\"} %llu\n"
        "parley_connections_refused_total{reason=\"capacity\"} %llu\n",
        (unsigned long long)s->refused_ip_cap, (unsigned long long)s->refused_capacity);
    metric(&o, "parley_tcp_connections", "gauge", "TCP connections open (HTTP and WebSocket).",
           (double)a->tcp_conns);
    put(&o,
        "# HELP parley_handshakes_refused_total WebSocket upgrades refused, by reason.\n"
        "# TYPE parley_handshakes_refused_total counter\n"
        "parley_handshakes_refused_total{reason=\"origin\"} %llu\n"
        "parley_handshakes_refused_total{reason=\"malformed\"} %llu\n",
        (unsigned long long)s->refused_origin, (unsigned long long)s->refused_upgrade);
    metric(&o, "parley_outqueue_bytes", "gauge", "Bytes queued to all connections.", (double)outq);
    metric(&o, "parley_messages_received_total", "counter", "Send commands accepted for writing.",
           (double)s->msgs_received);
    metric(&o, "parley_messages_persisted_total", "counter", "Messages committed to PostgreSQL.",
           (double)s->msgs_persisted);
    metric(&o, "parley_messages_duplicate_total", "counter",
           "Retried sends answered with the stored message.", (double)s->msgs_duplicate);
    metric(&o, "parley_messages_delivered_total", "counter", "Message pushes queued to clients.",
           (double)s->frames_delivered);
    metric(&o, "parley_socket_writes_total", "counter", "WebSocket frames written.",
           (double)s->writes);
    metric(&o, "parley_socket_writes_direct_total", "counter",
           "Of those, written at the end of a loop turn without waiting for POLLOUT.",
           (double)s->writes_direct);
    metric(&o, "parley_socket_writes_delayed_total", "counter",
           "Writes held back up to write-delay-ms so that one write packs more.",
           (double)s->writes_delayed);
    metric(&o, "parley_write_batches_total", "counter", "Write transactions committed.",
           (double)s->batches);
    metric(&o, "parley_write_batch_retries_total", "counter",
           "Write transactions retried after a conflict.", (double)s->batch_retries);
    metric(&o, "parley_write_batch_failures_total", "counter",
           "Write transactions that failed (senders told unavailable or internal).",
           (double)s->batch_failures);
    histogram(&o, "parley_write_batch_size", "Messages per write transaction.", "", &s->batch_size,
              1, 1);
    histogram(&o, "parley_write_commit_seconds", "Write transaction latency.", "",
              &s->commit_seconds, 0, 1);
    metric(&o, "parley_redis_published_total", "counter", "PUBLISH commands sent.",
           (double)s->bus_published);
    metric(&o, "parley_redis_publish_failed_total", "counter",
           "Publishes not sent (Redis down or too many unanswered).",
           (double)s->bus_publish_failed);
    metric(&o, "parley_redis_received_total", "counter", "Messages received from Redis.",
           (double)s->bus_received);
    metric(&o, "parley_redis_reconnects_total", "counter", "Redis links re-established.",
           (double)bus_reconnects(a->bus));
    metric(&o, "parley_redis_up", "gauge", "1 when both Redis links are up.", bus_up(a->bus));
    metric(&o, "parley_rooms_local", "gauge", "Rooms with members on this gateway.", room_count(a));
    metric(&o, "parley_redis_subscriptions", "gauge", "Room channels subscribed.",
           room_subscribed_count(a));
    metric(&o, "parley_postgres_connections_ready", "gauge", "PostgreSQL connections ready.",
           db_ready_count(a->db));
    metric(&o, "parley_postgres_queries_pending", "gauge", "Queries waiting or in flight.",
           db_pending(a->db));
    metric(&o, "parley_postgres_reconnects_total", "counter",
           "PostgreSQL connections re-established.", (double)db_reconnects(a->db));
    metric(&o, "parley_postgres_errors_total", "counter",
           "PostgreSQL connections lost or queries timed out.", (double)db_errors(a->db));
    metric(&o, "parley_recovery_gap_fetches_total", "counter",
           "Room catch-ups read from PostgreSQL (gaps, bus recovery).", (double)s->gap_fetches);
    metric(&o, "parley_recovery_replays_total", "counter", "Joins with since that replayed.",
           (double)s->replays);
    metric(&o, "parley_recovery_replayed_messages_total", "counter",
           "Messages replayed to joining connections.", (double)s->replayed);
    metric(&o, "parley_recovery_paced_catchups_total", "counter",
           "Live members whose backlog went to paced catch-up instead of the out-queue.",
           (double)s->paced_catchups);
    metric(&o, "parley_ephemeral_dropped_total", "counter",
           "Typing and presence frames shed from connections under pressure.",
           (double)s->ephemeral_dropped);
    metric(&o, "parley_typing_sent_total", "counter", "Typing events published.",
           (double)s->typing_sent);
    metric(&o, "parley_http_requests_total", "counter", "HTTP requests routed.",
           (double)s->http_requests);
    put(&o,
        "# HELP parley_logins_total Password sign-ins, by outcome.\n"
        "# TYPE parley_logins_total counter\n"
        "parley_logins_total{outcome=\"ok\"} %llu\n"
        "parley_logins_total{outcome=\"failed\"} %llu\n"
        "parley_logins_total{outcome=\"rate_limited\"} %llu\n",
        (unsigned long long)s->logins_ok, (unsigned long long)s->logins_failed,
        (unsigned long long)s->logins_limited);
    metric(&o, "parley_password_jobs", "gauge",
           "argon2id jobs running or queued on the thread pool.", auth_password_jobs());
    metric(&o, "parley_visits_logged_total", "counter", "Visit-log rows for WebSocket sessions.",
           (double)s->visits_logged);
    metric(&o, "parley_guideline_checks_total", "counter",
           "Sends and edits evaluated against a rule set.", (double)s->gl_checks);
    metric(&o, "parley_guideline_hits_total", "counter", "Guideline hits recorded.",
           (double)s->gl_hits);
    metric(&o, "parley_guideline_compiles_total", "counter",
           "Rule sets compiled (rooms with the same rules share one).", (double)s->gl_compiles);
    put(&o,
        "# HELP parley_pace_checks_total Sends checked against their sender's pace in Redis, by "
        "outcome.\n"
        "# TYPE parley_pace_checks_total counter\n"
        "parley_pace_checks_total{outcome=\"counted\"} %llu\n"
        "parley_pace_checks_total{outcome=\"slow_mode\"} %llu\n"
        "parley_pace_checks_total{outcome=\"unavailable\"} %llu\n",
        (unsigned long long)s->pace_counted, (unsigned long long)s->pace_slowed,
        (unsigned long long)s->pace_unavailable);
    metric(&o, "parley_receipts_received_total", "counter",
           "Read, seen and vote commands accepted for writing.", (double)s->receipts_received);
    metric(&o, "parley_receipts_persisted_total", "counter",
           "Read, seen and vote commands committed.", (double)s->receipts_persisted);
    metric(&o, "parley_receipt_batches_total", "counter", "Receipt write transactions.",
           (double)s->receipt_batches);
    histogram(&o, "parley_receipt_commit_seconds", "Receipt transaction latency.", "",
              &s->receipt_commit_seconds, 0, 1);
    metric(&o, "parley_events_emitted_total", "counter",
           "Coalesced read and votes events written to room logs.", (double)s->events_emitted);
    metric(&o, "parley_retention_runs_total", "counter", "Retention job runs completed.",
           (double)s->retention_runs);
    put(&o, "# HELP parley_retention_removed_total Rows removed (or cut to stubs) by the retention "
            "jobs, by kind.\n# TYPE parley_retention_removed_total counter\n");
    for (int k = 0; k < STATS_RETENTION_KINDS; k++)
        put(&o, "parley_retention_removed_total{kind=\"%s\"} %llu\n", rights_kind_names[k],
            (unsigned long long)s->retention_removed[k]);
    static const char *const ops[SO__COUNT] = {"auth", "join", "send", "history", "receipt"};
    for (int i = 0; i < SO__COUNT; i++) {
        char label[32];
        snprintf(label, sizeof label, "op=\"%s\"", ops[i]);
        histogram(&o, "parley_op_seconds", "Command latency from receipt to reply.", label,
                  &s->op_seconds[i], 0, i == 0);
    }
    if (o.oom) {
        free(o.p);
        return NULL;
    }
    *len = o.len;
    return o.p;
}
