#include "metrics.h"

#include "app.h"
#include "auth.h"
#include "bus.h"
#include "conn.h"
#include "db.h"
#include "mem.h"
#include "rights.h"
#include "room.h"
#include "sbuf.h"
#include "stats.h"

#include <stdio.h>
#include <string.h>

static void metric(struct sbuf *o, const char *name, const char *type, const char *help, double v)
{
    sbuf_printf(o, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

/* A counter by one label: its header, then a line for each value. */
static void counter_by(struct sbuf *o, const char *name, const char *help, const char *label,
                       const char *const *values, const uint64_t *counts, int n)
{
    sbuf_printf(o, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (int i = 0; i < n; i++)
        sbuf_printf(o, "%s{%s=\"%s\"} %llu\n", name, label, values[i],
                    (unsigned long long)counts[i]);
}

static void histogram(struct sbuf *o, const char *name, const char *help, const char *labels,
                      const struct hist *h, int is_count, int header)
{
    const double *b = stats_bounds(is_count);
    if (header) sbuf_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (int i = 0; i < STATS_BUCKETS; i++) {
        cum += h->bucket[i];
        sbuf_printf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, b[i],
                    (unsigned long long)cum);
    }
    cum += h->bucket[STATS_BUCKETS];
    sbuf_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep, (unsigned long long)cum);
    sbuf_printf(o, "%s_sum%s%s%s %.17g\n", name, labels[0] ? "{" : "", labels, labels[0] ? "}" : "",
                h->sum);
    sbuf_printf(o, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
                labels[0] ? "}" : "", (unsigned long long)h->count);
}

char *metrics_render(struct app *a, size_t *len)
{
    struct sbuf o = {0};
    const struct stats *s = &a->stats;
    size_t outq = 0;
    for (struct conn *c = a->conns; c; c = c->next)
        outq += c->q.bytes;

    metric(&o, "parley_connections_open", "gauge", "WebSocket connections open now.", a->nconns);
    metric(&o, "parley_connections_opened_total", "counter", "WebSocket connections established.",
           (double)s->conns_opened);
    uint64_t special = s->slow_consumers + s->auth_timeouts;
    counter_by(&o, "parley_connections_closed_total", "WebSocket connections closed, by reason.",
               "reason", (const char *const[]){"slow_consumer", "auth_timeout", "other"},
               (const uint64_t[]){s->slow_consumers, s->auth_timeouts,
                                  s->conns_closed > special ? s->conns_closed - special : 0},
               3);
    counter_by(&o, "parley_connections_refused_total",
               "TCP connections refused on accept, by reason.", "reason",
               (const char *const[]){"per_ip_cap", "capacity"},
               (const uint64_t[]){s->refused_ip_cap, s->refused_capacity}, 2);
    size_t heap_used, heap_free;
    mem_heap(&heap_used, &heap_free);
    metric(&o, "parley_heap_in_use_bytes", "gauge", "Bytes in live allocations of the C heap.",
           (double)heap_used);
    metric(&o, "parley_heap_free_bytes", "gauge",
           "Bytes the C heap keeps in free chunks (fragmentation, until trimmed).",
           (double)heap_free);
    metric(&o, "parley_tcp_connections", "gauge", "TCP connections open (HTTP and WebSocket).",
           (double)a->tcp_conns);
    counter_by(&o, "parley_handshakes_refused_total", "WebSocket upgrades refused, by reason.",
               "reason", (const char *const[]){"origin", "malformed"},
               (const uint64_t[]){s->refused_origin, s->refused_upgrade}, 2);
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
    metric(&o, "parley_pg_read_replica_connections_ready", "gauge",
           "Connections to the read replica (--pg-read) ready.",
           a->dbr ? db_ready_count(a->dbr) : 0);
    metric(&o, "parley_pg_read_replica_total", "counter",
           "Reads (history, replay, catch-up, evaluation) answered by the replica.",
           (double)s->pg_read_replica);
    static const char *const why[] = {"behind", "error", "down"};
    counter_by(&o, "parley_pg_read_fallbacks_total",
               "Replica reads sent to the primary: the replica was behind the seq asked for, "
               "failed, or was not connected.",
               "reason", why, s->pg_read_fallback, 3);
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
    counter_by(&o, "parley_logins_total", "Password sign-ins, by outcome.", "outcome",
               (const char *const[]){"ok", "failed", "rate_limited"},
               (const uint64_t[]){s->logins_ok, s->logins_failed, s->logins_limited}, 3);
    metric(&o, "parley_password_jobs", "gauge",
           "argon2id jobs running or queued on the thread pool.", auth_password_jobs());
    metric(&o, "parley_visits_logged_total", "counter", "Visit-log rows for WebSocket sessions.",
           (double)s->visits_logged);
    metric(&o, "parley_auth_busy_total", "counter",
           "WebSocket auths answered busy with a retry hint (sign-in admission).",
           (double)s->auth_busy);
    metric(&o, "parley_auth_lookups_total", "counter",
           "Token look-up queries, each for a batch of WebSocket auths.", (double)s->auth_lookups);
    metric(&o, "parley_guideline_checks_total", "counter",
           "Sends and edits evaluated against a rule set.", (double)s->gl_checks);
    metric(&o, "parley_guideline_hits_total", "counter", "Guideline hits recorded.",
           (double)s->gl_hits);
    metric(&o, "parley_guideline_compiles_total", "counter",
           "Rule sets compiled (rooms with the same rules share one).", (double)s->gl_compiles);
    counter_by(&o, "parley_pace_checks_total",
               "Sends checked against their sender's pace in Redis, by outcome.", "outcome",
               (const char *const[]){"counted", "slow_mode", "unavailable"},
               (const uint64_t[]){s->pace_counted, s->pace_slowed, s->pace_unavailable}, 3);
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
    counter_by(&o, "parley_retention_removed_total",
               "Rows removed (or cut to stubs) by the retention jobs, by kind.", "kind",
               rights_kind_names, s->retention_removed, STATS_RETENTION_KINDS);
    static const char *const ops[SO__COUNT] = {"auth", "join", "send", "history", "receipt"};
    for (int i = 0; i < SO__COUNT; i++) {
        char label[32];
        snprintf(label, sizeof label, "op=\"%s\"", ops[i]);
        histogram(&o, "parley_op_seconds", "Command latency from receipt to reply.", label,
                  &s->op_seconds[i], 0, i == 0);
    }
    if (o.bad) {
        mem_free(o.b);
        return NULL;
    }
    *len = o.n;
    return o.b;
}
