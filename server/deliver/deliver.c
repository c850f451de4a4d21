#include "deliver.h"

#include "dconfig.h"
#include "log.h"
#include "mem.h"
#include "sbuf.h"
#include "sms.h"
#include "smtp.h"
#include "template.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- metrics ------------------------------------------------------------- */

static const double lat_bounds[] = {1, 5, 30, 60, 300, 1800, 3600, 21600};
#define NLAT (sizeof lat_bounds / sizeof lat_bounds[0])

/* Counters by channel (0 email, 1 sms) since start. */
static struct {
    uint64_t sent[2];          /* acknowledged sent */
    uint64_t failed[2];        /* acknowledged failed (permanent) */
    uint64_t retried[2];       /* acknowledged retry (transient) */
    uint64_t withdrawn;        /* not sent: revoked, used or expired meanwhile */
    uint64_t lease_lost;       /* not sent or not acknowledged: the lease had passed */
    uint64_t unknown;          /* items of a type this build has no template for */
    uint64_t gw_errors;        /* gateway calls that failed */
    uint64_t lat[2][NLAT + 1]; /* created to sent, seconds, cumulative per bucket */
    double lat_sum[2];         /* ... their sum */
    uint64_t sms_segments;     /* segments sent */
} M;

static void write_metrics(const struct dcfg *c)
{
    if (!c->metrics_file[0]) return;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", c->metrics_file);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        log_warn("metrics file not written", "errno=%d", errno);
        return;
    }
    static const char *const ch[2] = {"email", "sms"};
    fprintf(f,
            "# HELP parley_deliver_sent_total Messages the mail server or SMS gateway accepted.\n"
            "# TYPE parley_deliver_sent_total counter\n");
    for (int i = 0; i < 2; i++)
        fprintf(f, "parley_deliver_sent_total{channel=\"%s\"} %llu\n", ch[i],
                (unsigned long long)M.sent[i]);
    fprintf(f, "# HELP parley_deliver_failed_total Messages refused for good.\n"
               "# TYPE parley_deliver_failed_total counter\n");
    for (int i = 0; i < 2; i++)
        fprintf(f, "parley_deliver_failed_total{channel=\"%s\"} %llu\n", ch[i],
                (unsigned long long)M.failed[i]);
    fprintf(f, "# HELP parley_deliver_retried_total Transient failures handed back for a retry.\n"
               "# TYPE parley_deliver_retried_total counter\n");
    for (int i = 0; i < 2; i++)
        fprintf(f, "parley_deliver_retried_total{channel=\"%s\"} %llu\n", ch[i],
                (unsigned long long)M.retried[i]);
    fprintf(f,
            "# HELP parley_deliver_withdrawn_total Items not sent: withdrawn after the lease.\n"
            "# TYPE parley_deliver_withdrawn_total counter\n"
            "parley_deliver_withdrawn_total %llu\n"
            "# HELP parley_deliver_lease_lost_total Items whose lease had passed to another.\n"
            "# TYPE parley_deliver_lease_lost_total counter\n"
            "parley_deliver_lease_lost_total %llu\n"
            "# HELP parley_deliver_unknown_total Items of a type without templates.\n"
            "# TYPE parley_deliver_unknown_total counter\n"
            "parley_deliver_unknown_total %llu\n"
            "# HELP parley_deliver_gateway_errors_total Outbox calls to the gateway that failed.\n"
            "# TYPE parley_deliver_gateway_errors_total counter\n"
            "parley_deliver_gateway_errors_total %llu\n"
            "# HELP parley_deliver_sms_segments_total SMS segments sent.\n"
            "# TYPE parley_deliver_sms_segments_total counter\n"
            "parley_deliver_sms_segments_total %llu\n",
            (unsigned long long)M.withdrawn, (unsigned long long)M.lease_lost,
            (unsigned long long)M.unknown, (unsigned long long)M.gw_errors,
            (unsigned long long)M.sms_segments);
    fprintf(f, "# HELP parley_deliver_latency_seconds From the item's creation to its sending.\n"
               "# TYPE parley_deliver_latency_seconds histogram\n");
    for (int i = 0; i < 2; i++) {
        for (size_t b = 0; b < NLAT; b++)
            fprintf(f, "parley_deliver_latency_seconds_bucket{channel=\"%s\",le=\"%g\"} %llu\n",
                    ch[i], lat_bounds[b], (unsigned long long)M.lat[i][b]);
        fprintf(f, "parley_deliver_latency_seconds_bucket{channel=\"%s\",le=\"+Inf\"} %llu\n",
                ch[i], (unsigned long long)M.lat[i][NLAT]);
        fprintf(f, "parley_deliver_latency_seconds_sum{channel=\"%s\"} %.3f\n", ch[i],
                M.lat_sum[i]);
        fprintf(f, "parley_deliver_latency_seconds_count{channel=\"%s\"} %llu\n", ch[i],
                (unsigned long long)M.lat[i][NLAT]);
    }
    bool ok = !ferror(f);
    if (fclose(f) || !ok || rename(tmp, c->metrics_file))
        log_warn("metrics file not written", "errno=%d", errno);
}

static void observe_latency(int ch, double s)
{
    for (size_t b = 0; b < NLAT; b++)
        if (s <= lat_bounds[b]) M.lat[ch][b]++;
    M.lat[ch][NLAT]++;
    M.lat_sum[ch] += s;
}

/* ---- the gateway --------------------------------------------------------- */

/* The gateway's answer, at most 8 MiB (a larger one is refused). */
static size_t on_resp(char *d, size_t sz, size_t n, void *ud)
{
    struct sbuf *r = ud;
    size_t len = sz * n;
    if (r->n + len > (8u << 20)) r->bad = true;
    sbuf_put(r, d, len); /* nothing once bad */
    return len;
}

/* One call to the gateway with the operator token. Returns the HTTP
 * status (and the parsed JSON answer in *json when asked), or -1 when the
 * gateway could not be reached. */
static long gw_call(const struct dcfg *c, const char *method, const char *path, const char *body,
                    cJSON **json)
{
    if (json) *json = NULL;
    CURL *h = curl_easy_init();
    if (!h) return -1;
    char url[1200], auth[200];
    snprintf(url, sizeof url, "%s%s", c->gateway, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->operator_token);
    struct curl_slist *hd = curl_slist_append(NULL, auth);
    if (body) hd = curl_slist_append(hd, "Content-Type: application/json");
    struct sbuf r = {0};
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    if (body) curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_resp);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 15L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (c->gateway_ca_file[0]) curl_easy_setopt(h, CURLOPT_CAINFO, c->gateway_ca_file);
    CURLcode rc = curl_easy_perform(h);
    long status = -1;
    if (rc == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK || r.bad) {
        log_warn("gateway call failed", "method=%s path=%s error=\"%s\"", method, path,
                 r.bad ? "answer too large" : curl_easy_strerror(rc));
        status = -1;
    } else if (json && r.b) {
        *json = cJSON_Parse(r.b);
    }
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    if (r.b) sodium_memzero(r.b, r.n); /* leases carry secrets */
    mem_free(r.b);
    if (status < 0) M.gw_errors++;
    return status;
}

/* ---- one item ------------------------------------------------------------ */

void deliver_mask(const char *addr, char *out, unsigned cap)
{
    const char *at = strrchr(addr, '@');
    if (at && at > addr)
        snprintf(out, cap, "%c***%s", addr[0], at);
    else if (strlen(addr) > 6)
        snprintf(out, cap, "%.4s***%s", addr, addr + strlen(addr) - 2);
    else
        snprintf(out, cap, "***");
}

/* Seconds since the epoch of PostgreSQL's JSON timestamp
 * ("2024-05-01T12:34:56.123+00:00"); 0 when unparsable. */
static double parse_ts(const char *s)
{
    struct tm tm = {0};
    double sec = 0;
    int n = 0;
    if (!s || sscanf(s, "%d-%d-%dT%d:%d:%lf%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                     &tm.tm_min, &sec, &n) != 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    double t = (double)timegm(&tm) + sec;
    const char *z = s + n;
    int oh = 0, om = 0;
    if ((*z == '+' || *z == '-') && sscanf(z + 1, "%d:%d", &oh, &om) >= 1)
        t -= (*z == '+' ? 1 : -1) * (oh * 3600.0 + om * 60.0);
    return t;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static long num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
}

/* Acknowledges item id's lease number attempt; a few tries when the
 * gateway is away (else the item is leased again after its lease: at
 * least once). */
static void ack(const struct dcfg *c, long id, long attempt, const char *status, const char *error,
                long retry_after_s)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return;
    cJSON_AddStringToObject(o, "status", status);
    cJSON_AddNumberToObject(o, "attempt", (double)attempt);
    if (error) {
        char e[1001];
        snprintf(e, sizeof e, "%s",
                 error); /* the route takes 1000 characters; replies are shorter */
        cJSON_AddStringToObject(o, "error", e);
    }
    if (retry_after_s > 0) cJSON_AddNumberToObject(o, "retry_after_s", (double)retry_after_s);
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char path[64];
    snprintf(path, sizeof path, "/api/v1/outbox/%ld/ack", id);
    for (int i = 0; body && i < 3; i++) {
        long st = gw_call(c, "POST", path, body, NULL);
        if (st == 204) break;
        if (st == 409) {
            M.lease_lost++;
            log_warn("acknowledgement refused: the lease had passed", "item=%ld attempt=%ld", id,
                     attempt);
            break;
        }
        if (st >= 400 && st != 503) {
            log_warn("acknowledgement refused", "item=%ld status=%ld", id, st);
            break;
        }
        sleep(1);
    }
    cJSON_free(body);
}

/* expires_at as people read it, in UTC. */
static void fmt_expiry(const char *iso, char *out, size_t cap)
{
    double t = parse_ts(iso);
    out[0] = 0;
    if (t <= 0) return;
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, cap, "%Y-%m-%d %H:%M UTC", &tm);
}

/* The reply with the recipient's address masked, for the log. */
static void log_reply(const char *reply, const char *to, const char *masked, char *out, size_t cap)
{
    const char *hit = *to ? strstr(reply, to) : NULL;
    if (!hit)
        snprintf(out, cap, "%s", reply);
    else
        snprintf(out, cap, "%.*s%s%s", (int)(hit - reply), reply, masked, hit + strlen(to));
    for (char *p = out; *p; p++)
        if (*p == '"') *p = '\'';
}

static long backoff(const struct dcfg *c, long attempts)
{
    long s = c->retry_base_s;
    for (long i = 1; i < attempts && s < c->retry_max_s; i++)
        s *= 2;
    return s < c->retry_max_s ? s : c->retry_max_s;
}

static void process(const struct dcfg *c, const struct tpl_set *tpl, const cJSON *item)
{
    long id = num(item, "id"), attempt = num(item, "attempts");
    const char *channel = str(item, "channel"), *to = str(item, "recipient");
    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(item, "payload");
    if (id < 0 || attempt < 0 || !channel || !to || !cJSON_IsObject(pl)) {
        log_warn("outbox item malformed", "item=%ld", id);
        return;
    }
    int sms = !strcmp(channel, "sms");
    char masked[96];
    deliver_mask(to, masked, sizeof masked);
    int kind = tpl_kind_of(str(pl, "type"), str(pl, "purpose"));
    if (kind < 0) {
        /* A newer gateway's item: wait for a deliverer that knows it. */
        M.unknown++;
        log_warn("no template for this item type", "item=%ld type=\"%s\"", id,
                 str(pl, "type") ? str(pl, "type") : "");
        ack(c, id, attempt, "retry", "no template for this item type", c->retry_max_s);
        return;
    }
    if (!tpl_has_channel((enum tpl_kind)kind, sms) || (sms ? !c->sms_url[0] : !c->smtp_host[0])) {
        ack(c, id, attempt, "failed", "no template or no sender for this channel", 0);
        M.failed[sms]++;
        return;
    }
    const char *token = str(pl, "token");
    char link[1024] = "", expires[40];
    if (token && strpbrk(token, "/#?&% \"<>")) token = NULL; /* base64url only */
    if (token)
        snprintf(link, sizeof link, "%s/#/%s/%s", c->web_url,
                 kind == TPL_INVITATION ? "redeem" : "verify", token);
    if ((kind != TPL_ADDRESS_IN_USE) && !token) {
        ack(c, id, attempt, "failed", "the item carries no secret", 0);
        M.failed[sms]++;
        return;
    }
    fmt_expiry(str(pl, "expires_at"), expires, sizeof expires);
    struct tpl_vars v = {{
        [TV_WORKSPACE_NAME] = str(pl, "workspace_name"),
        [TV_INVITER] = str(pl, "invited_by"),
        [TV_FIRST_NAME] = str(pl, "first_name"),
        [TV_ROLE] = str(pl, "role"),
        [TV_LINK] = link,
        [TV_EXPIRES_AT] = expires,
        [TV_WEB_URL] = c->web_url,
    }};
    const char *lang = str(item, "language");
    const char *used = NULL;
    char *parts[TPL__PART] = {0};
    bool ok = true;
    for (int p = 0; p < TPL__PART; p++)
        if ((p == TPL_SMS) == (sms != 0)) {
            parts[p] = tpl_render(tpl, lang ? lang : c->default_language, (enum tpl_kind)kind,
                                  (enum tpl_part)p, &v, &used);
            ok = ok && parts[p];
        }
    struct sms_count cnt = {0};
    if (ok && sms && (sms_count(parts[TPL_SMS], &cnt) || cnt.segments > c->sms_max_segments)) {
        char e[120];
        snprintf(e, sizeof e, "the text needs %d segments, more than sms-max-segments (%ld)",
                 cnt.segments, c->sms_max_segments);
        ack(c, id, attempt, "failed", e, 0);
        M.failed[sms]++;
        ok = false;
    }
    /* Right before sending: still due, and still our lease with time to
     * spare (a revoked invitation is not sent; another deliverer's lease
     * is not trampled). */
    cJSON *cur = NULL;
    if (ok) {
        long st;
        char path[48];
        snprintf(path, sizeof path, "/api/v1/outbox/%ld", id);
        st = gw_call(c, "GET", path, NULL, &cur);
        if (st == 404) {
            M.withdrawn++;
            log_info("not sent: withdrawn meanwhile", "item=%ld kind=%s", id,
                     tpl_kind_name((enum tpl_kind)kind));
            ok = false;
        } else if (st != 200 || !cur) {
            ok = false; /* cannot tell: leave it to the lease */
        } else if (num(cur, "attempts") != attempt) {
            M.lease_lost++;
            log_warn("not sent: the lease passed to another deliverer", "item=%ld", id);
            ok = false;
        } else if (num(cur, "lease_remaining_ms") < (c->send_timeout_s + 5) * 1000) {
            ack(c, id, attempt, "retry", NULL, 0);
            ok = false;
        }
    }
    cJSON_Delete(cur);
    if (ok) {
        struct send_result r;
        double t0 = now_s();
        if (sms) {
            sms_send(&c->sms, to, parts[TPL_SMS], &r);
        } else {
            char mid[200];
            double created = parse_ts(str(item, "created_at"));
            const char *at = strrchr(c->smtp.from, '@');
            /* The same id for every attempt of the item, so that a
             * duplicate from at-least-once delivery can be recognised. */
            snprintf(mid, sizeof mid, "<parley.%ld.%lld@%s>", id, (long long)created, at + 1);
            struct mail m = {to,  parts[TPL_SUBJECT], parts[TPL_TEXT], parts[TPL_HTML],
                             mid, time(NULL)};
            smtp_send(&c->smtp, &m, &r);
        }
        char lr[600];
        log_reply(r.reply, to, masked, lr, sizeof lr);
        long ms = (long)((now_s() - t0) * 1000);
        if (r.outcome == SEND_OK) {
            ack(c, id, attempt, "sent", NULL, 0);
            M.sent[sms]++;
            if (sms) M.sms_segments += (uint64_t)cnt.segments;
            double lat = now_s() - parse_ts(str(item, "created_at"));
            observe_latency(sms, lat < 0 ? 0 : lat);
            log_info("sent", "item=%ld channel=%s kind=%s lang=%s to=%s attempt=%ld send_ms=%ld%s",
                     id, channel, tpl_kind_name((enum tpl_kind)kind), used, masked, attempt, ms,
                     sms ? (cnt.ucs2 ? " encoding=ucs2" : " encoding=gsm7") : "");
        } else if (r.outcome == SEND_FAILED || attempt >= c->max_attempts) {
            char e[700];
            snprintf(e, sizeof e, "%s%s", r.outcome == SEND_FAILED ? "" : "gave up: ", r.reply);
            ack(c, id, attempt, "failed", e, 0);
            M.failed[sms]++;
            log_warn("failed", "item=%ld channel=%s to=%s attempt=%ld code=%d reply=\"%s\"", id,
                     channel, masked, attempt, r.code, lr);
        } else {
            long after = backoff(c, attempt);
            ack(c, id, attempt, "retry", r.reply, after);
            M.retried[sms]++;
            log_warn("will retry",
                     "item=%ld channel=%s to=%s attempt=%ld code=%d retry_after_s=%ld "
                     "reply=\"%s\"",
                     id, channel, masked, attempt, r.code, after, lr);
        }
    }
    for (int p = 0; p < TPL__PART; p++)
        if (parts[p]) {
            sodium_memzero(parts[p], strlen(parts[p])); /* links hold secrets */
            mem_free(parts[p]);
        }
    sodium_memzero(link, sizeof link);
}

/* ---- the loop ------------------------------------------------------------ */

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void nap(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (!stopping && nanosleep(&ts, &ts) && errno == EINTR)
        ;
}

int deliver_main(int argc, char **argv)
{
    static struct dcfg c;
    int rc = dconfig_load(&c, argc, argv);
    if (rc) return rc > 0 ? 0 : 2;
    struct tpl_set *tpl = NULL;
    char err[1400];
    if (tpl_load(c.templates, c.default_language, &tpl, err, sizeof err)) {
        fprintf(stderr, "parleyd deliver: templates: %s\n", err);
        return 2;
    }
    if (sodium_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT)) {
        tpl_free(tpl);
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    char path[96];
    snprintf(path, sizeof path, "/api/v1/outbox?limit=%ld&lease_s=%ld%s", c.batch, c.lease_s,
             !c.smtp_host[0] ? "&channel=sms"
             : !c.sms_url[0] ? "&channel=email"
                             : "");
    log_info("deliverer started", "gateway=%s email=%s sms=%s lease_s=%ld batch=%ld", c.gateway,
             c.smtp_host[0] ? "on" : "off", c.sms_url[0] ? "on" : "off", c.lease_s, c.batch);
    write_metrics(&c);
    long wait = c.poll_ms;
    while (!stopping) {
        cJSON *lease = NULL;
        long st = gw_call(&c, "GET", path, NULL, &lease);
        cJSON *items = cJSON_GetObjectItemCaseSensitive(lease, "items");
        if (st != 200 || !cJSON_IsArray(items)) {
            if (st >= 0) log_warn("lease refused", "status=%ld", st);
            if (st >= 0) M.gw_errors++;
            cJSON_Delete(lease);
            write_metrics(&c);
            nap(wait);
            wait = wait * 2 < 30000 ? wait * 2 : 30000; /* the gateway is away: back off */
            continue;
        }
        wait = c.poll_ms;
        int n = cJSON_GetArraySize(items);
        const cJSON *it;
        cJSON_ArrayForEach(it, items)
        {
            if (stopping) {
                /* Hand back what we will not send, for the next deliverer. */
                ack(&c, num(it, "id"), num(it, "attempts"), "retry", NULL, 0);
                continue;
            }
            process(&c, tpl, it);
            write_metrics(&c);
        }
        cJSON_Delete(lease);
        write_metrics(&c);
        if (n == 0) {
            if (c.once) break;
            nap(c.poll_ms);
        }
    }
    log_info("deliverer stopped", "sent_email=%llu sent_sms=%llu failed=%llu retried=%llu",
             (unsigned long long)M.sent[0], (unsigned long long)M.sent[1],
             (unsigned long long)(M.failed[0] + M.failed[1]),
             (unsigned long long)(M.retried[0] + M.retried[1]));
    tpl_free(tpl);
    curl_global_cleanup();
    sodium_memzero(&c, sizeof c);
    return 0;
}
