#include "config.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef PARLEY_SQL_DIR_DEFAULT
#define PARLEY_SQL_DIR_DEFAULT "sql"
#endif
#ifndef PARLEY_WEB_DIR_DEFAULT
#define PARLEY_WEB_DIR_DEFAULT "/usr/local/share/parley/web"
#endif

/* One table drives the flags, the environment and --help, so they cannot
 * drift apart. */
enum kind { K_INT, K_SIZE, K_U32, K_STR, K_HOSTPORT, K_LEVEL };

struct opt {
    const char *flag;   /* --name */
    const char *env;    /* PARLEY_NAME */
    enum kind kind;     /* how the value parses */
    size_t off;         /* offset into struct config */
    size_t cap;         /* K_STR: buffer size */
    long long min, max; /* numeric range, inclusive */
    const char *help;   /* one line */
};

#define OFF(f) offsetof(struct config, f)
static const struct opt opts[] = {
    {"--port", "PARLEY_PORT", K_INT, OFF(port), 0, 1, 65535, "listen port (8080)"},
    {"--bind", "PARLEY_BIND", K_STR, OFF(bind), 64, 0, 0, "listen address (127.0.0.1)"},
    {"--pg", "PARLEY_PG", K_STR, OFF(pg), 1024, 0, 0, "PostgreSQL conninfo (required)"},
    {"--redis", "PARLEY_REDIS", K_HOSTPORT, 0, 0, 0, 0, "Redis HOST:PORT (127.0.0.1:6379)"},
    {"--redis-cluster", "PARLEY_REDIS_CLUSTER", K_STR, OFF(redis_cluster), 1024, 0, 0,
     "Redis Cluster seeds HOST:PORT[,HOST:PORT...]: sharded pub/sub (replaces --redis)"},
    {"--sql-dir", "PARLEY_SQL_DIR", K_STR, OFF(sql_dir), 1024, 0, 0, "migrations directory"},
    {"--max-frame", "PARLEY_MAX_FRAME", K_SIZE, OFF(max_frame), 0, 1024, 16 << 20,
     "bytes of one client message (65536)"},
    {"--max-body", "PARLEY_MAX_BODY", K_SIZE, OFF(max_body), 0, 1, 1 << 20,
     "bytes of a message body (4096)"},
    {"--outq-bytes", "PARLEY_OUTQ_BYTES", K_SIZE, OFF(outq_bytes), 0, 4096, 1LL << 30,
     "out-queue bytes per connection (1048576)"},
    {"--outq-frames", "PARLEY_OUTQ_FRAMES", K_U32, OFF(outq_frames), 0, 8, 1 << 20,
     "out-queue frames per connection (4096)"},
    {"--outq-stall-ms", "PARLEY_OUTQ_STALL_MS", K_U32, OFF(outq_stall_ms), 0, 100, 600000,
     "close a connection that has read nothing queued for this long (10000)"},
    {"--batch-max", "PARLEY_BATCH_MAX", K_U32, OFF(batch_max), 0, 1, 10000,
     "messages per write transaction (256)"},
    {"--batch-delay-us", "PARLEY_BATCH_DELAY_US", K_U32, OFF(batch_delay_us), 0, 0, 1000000,
     "time between one write batch leaving and the next unless --batch-max wait, in microseconds"
     " (10000)"},
    {"--batch-queue-max", "PARLEY_BATCH_QUEUE_MAX", K_U32, OFF(batch_queue_max), 0, 16, 1 << 20,
     "messages waiting to be written (8192)"},
    {"--replay-limit", "PARLEY_REPLAY_LIMIT", K_U32, OFF(replay_limit), 0, 0, 1000000,
     "messages replayed on join with since (1000)"},
    {"--auth-timeout-ms", "PARLEY_AUTH_TIMEOUT_MS", K_U32, OFF(auth_timeout_ms), 0, 100, 600000,
     "close unauthenticated connections after (5000)"},
    {"--auth-batch-max", "PARLEY_AUTH_BATCH_MAX", K_U32, OFF(auth_batch_max), 0, 1, 4096,
     "tokens per look-up query (256)"},
    {"--auth-inflight", "PARLEY_AUTH_INFLIGHT", K_U32, OFF(auth_inflight), 0, 1, 64,
     "token look-up queries in flight at once (2)"},
    {"--auth-queue-max", "PARLEY_AUTH_QUEUE_MAX", K_U32, OFF(auth_queue_max), 0, 1, 1000000,
     "auths waiting for a look-up, then busy (8192)"},
    {"--auth-wait-ms", "PARLEY_AUTH_WAIT_MS", K_U32, OFF(auth_wait_ms), 0, 10, 600000,
     "an auth expected to wait longer is answered busy (2000; at most 3/4 of auth-timeout-ms)"},
    {"--per-ip-max", "PARLEY_PER_IP_MAX", K_U32, OFF(per_ip_max), 0, 1, 1000000,
     "connections (WebSocket and HTTP) per client IP (256)"},
    {"--max-conns", "PARLEY_MAX_CONNS", K_U32, OFF(max_conns), 0, 0, 10000000,
     "connections in all (0: the descriptor limit less a reserve)"},
    {"--conn-reserve", "PARLEY_CONN_RESERVE", K_U32, OFF(conn_reserve), 0, 0, 100000,
     "last connections kept for addresses with none open (64)"},
    {"--http-request-timeout-ms", "PARLEY_HTTP_REQUEST_TIMEOUT_MS", K_U32,
     OFF(http_request_timeout_ms), 0, 100, 600000,
     "an HTTP request's headers and body must arrive within (10000)"},
    {"--http-max-header", "PARLEY_HTTP_MAX_HEADER", K_SIZE, OFF(http_max_header), 0, 1024, 7168,
     "bytes of an HTTP request's headers (then 431) (4096)"},
    {"--db-timeout-ms", "PARLEY_DB_TIMEOUT_MS", K_U32, OFF(db_timeout_ms), 0, 50, 600000,
     "query timeout (3000)"},
    {"--db-conns", "PARLEY_DB_CONNS", K_U32, OFF(db_conns), 0, 1, 64, "PostgreSQL connections (3)"},
    {"--pg-read", "PARLEY_PG_READ", K_STR, OFF(pg_read), 1024, 0, 0,
     "read-only conninfo (a streaming replica) for history, replay, evaluation (none)"},
    {"--db-read-conns", "PARLEY_DB_READ_CONNS", K_U32, OFF(db_read_conns), 0, 1, 64,
     "connections to --pg-read (2)"},
    {"--max-rooms", "PARLEY_MAX_ROOMS", K_U32, OFF(max_rooms), 0, 1, 10000,
     "rooms per connection (64)"},
    {"--write-delay-ms", "PARLEY_WRITE_DELAY_MS", K_U32, OFF(write_delay_ms), 0, 0, 1000,
     "a busy connection's next write waits this long to pack more (0: off)"},
    {"--presence-list-max", "PARLEY_PRESENCE_LIST_MAX", K_U32, OFF(presence_list_max), 0, 0, 100000,
     "larger rooms get presence counts, not lists (100)"},
    {"--direct-write", "PARLEY_DIRECT_WRITE", K_U32, OFF(direct_write), 0, 0, 1,
     "write a turn's output at once when the socket takes it: 1 or 0 (1)"},
    {"--regex-jit", "PARLEY_REGEX_JIT", K_U32, OFF(regex_jit), 0, 0, 1,
     "JIT-compile guideline regexes: 1 or 0 (1; 0 for valgrind)"},
    {"--coalesce-ms", "PARLEY_COALESCE_MS", K_U32, OFF(coalesce_ms), 0, 10, 60000,
     "coalesce read and votes events over (200)"},
    {"--reorder-ms", "PARLEY_REORDER_MS", K_U32, OFF(reorder_ms), 0, 1, 60000,
     "wait for a bus gap before fetching it (100)"},
    {"--log-level", "PARLEY_LOG_LEVEL", K_LEVEL, OFF(log_level), 0, 0, 0,
     "error|warn|info|debug (info)"},
    {"--tls-cert", "PARLEY_TLS_CERT", K_STR, OFF(tls_cert), 1024, 0, 0,
     "PEM certificate: serve wss:// and https://"},
    {"--tls-key", "PARLEY_TLS_KEY", K_STR, OFF(tls_key), 1024, 0, 0, "PEM private key"},
    {"--origins", "PARLEY_ORIGINS", K_STR, OFF(origins), 2048, 0, 0,
     "allowed Origin values, comma-separated (any)"},
    {"--pwhash-ops", "PARLEY_PWHASH_OPS", K_U32, OFF(pwhash_ops), 0, 2, 20,
     "argon2id passes (2; OWASP minimum)"},
    {"--pwhash-mem-mib", "PARLEY_PWHASH_MEM_MIB", K_U32, OFF(pwhash_mem_mib), 0, 19, 4096,
     "argon2id memory in MiB (19; OWASP minimum)"},
    {"--session-ttl-h", "PARLEY_SESSION_TTL_H", K_U32, OFF(session_ttl_h), 0, 1, 24 * 366,
     "session token lifetime in hours (720)"},
    {"--invite-ttl-h", "PARLEY_INVITE_TTL_H", K_U32, OFF(invite_ttl_h), 0, 1, 24 * 90,
     "invitation lifetime in hours (168)"},
    {"--verify-ttl-h", "PARLEY_VERIFY_TTL_H", K_U32, OFF(verify_ttl_h), 0, 1, 24 * 30,
     "address verification secret lifetime in hours (24)"},
    {"--login-max-account", "PARLEY_LOGIN_MAX_ACCOUNT", K_U32, OFF(login_max_account), 0, 1, 100000,
     "failed logins per account and client IP per window (10)"},
    {"--login-max-ip", "PARLEY_LOGIN_MAX_IP", K_U32, OFF(login_max_ip), 0, 1, 1000000,
     "failed logins per client IP per window (100)"},
    {"--signup-max-ip", "PARLEY_SIGNUP_MAX_IP", K_U32, OFF(signup_max_ip), 0, 1, 1000000,
     "sign-ups per client IP per window (20)"},
    {"--login-window-s", "PARLEY_LOGIN_WINDOW_S", K_U32, OFF(login_window_s), 0, 1, 86400,
     "login rate-limit window in seconds (900)"},
    {"--http-max-body", "PARLEY_HTTP_MAX_BODY", K_SIZE, OFF(http_max_body), 0, 1024, 1 << 20,
     "bytes of an HTTP request body (65536)"},
    {"--ip-retention-days", "PARLEY_IP_RETENTION_DAYS", K_U32, OFF(ip_retention_days), 0, 0, 3650,
     "visit-log IPs anonymised after days (7)"},
    {"--anonymise-every-s", "PARLEY_ANONYMISE_EVERY_S", K_U32, OFF(anonymise_every_s), 0, 1, 86400,
     "how often the IP anonymisation job runs (3600)"},
    {"--visit-retention-days", "PARLEY_VISIT_RETENTION_DAYS", K_U32, OFF(visit_retention_days), 0,
     1, 3650, "visit-log rows deleted after days (30)"},
    {"--retention-every-s", "PARLEY_RETENTION_EVERY_S", K_U32, OFF(retention_every_s), 0, 1, 86400,
     "how often the retention jobs run, one batch each (60)"},
    {"--retention-batch", "PARLEY_RETENTION_BATCH", K_U32, OFF(retention_batch), 0, 1, 100000,
     "rows of each kind one retention run removes at most (500)"},
    {"--purge-batch", "PARLEY_PURGE_BATCH", K_U32, OFF(purge_batch), 0, 10, 100000,
     "rows one run of a deleted workspace's purge removes at most (1000)"},
    {"--operator-token-file", "PARLEY_OPERATOR_TOKEN_FILE", K_STR, OFF(operator_token_file), 1024,
     0, 0, "file with the operator token for /api/v1/outbox (none)"},
    {"--metrics-token-file", "PARLEY_METRICS_TOKEN_FILE", K_STR, OFF(metrics_token_file), 1024, 0,
     0, "file with the token /metrics requires (none: /metrics is not served)"},
    {"--web-root", "PARLEY_WEB_ROOT", K_STR, OFF(web_root), 1024, 0, 0,
     "the web client's files, served on the port (" PARLEY_WEB_DIR_DEFAULT ")"},
    {"--web-max-bytes", "PARLEY_WEB_MAX_BYTES", K_SIZE, OFF(web_max_bytes), 0, 1024, 1LL << 30,
     "web files held in memory at most, gzip copies included (67108864)"},
};
#define NOPTS (sizeof opts / sizeof opts[0])

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof *c);
    c->port = 8080;
    strcpy(c->bind, "127.0.0.1");
    strcpy(c->redis_host, "127.0.0.1");
    c->redis_port = 6379;
    snprintf(c->sql_dir, sizeof c->sql_dir, "%s", PARLEY_SQL_DIR_DEFAULT);
    c->max_frame = 65536;
    c->max_body = 4096;
    c->outq_bytes = 1 << 20;
    c->outq_frames = 4096;
    c->outq_stall_ms = 10000;
    c->batch_max = 256;
    c->batch_delay_us = 10000;
    c->batch_queue_max = 8192;
    c->replay_limit = 1000;
    c->auth_timeout_ms = 5000;
    c->auth_batch_max = 256;
    c->auth_inflight = 2;
    c->auth_queue_max = 8192;
    c->auth_wait_ms = 2000;
    c->per_ip_max = 256;
    c->conn_reserve = 64;
    c->http_request_timeout_ms = 10000;
    c->http_max_header = 4096;
    c->db_timeout_ms = 3000;
    c->db_conns = 3;
    c->db_read_conns = 2;
    c->max_rooms = 64;
    c->write_delay_ms = 0;
    c->reorder_ms = 100;
    c->coalesce_ms = 200;
    c->regex_jit = 1;
    c->direct_write = 1;
    c->presence_list_max = 100;
    c->log_level = LOG_INFO;
    c->pwhash_ops = 2;
    c->pwhash_mem_mib = 19;
    c->session_ttl_h = 720;
    c->invite_ttl_h = 168;
    c->verify_ttl_h = 24;
    c->login_max_account = 10;
    c->login_max_ip = 100;
    c->login_window_s = 900;
    c->signup_max_ip = 20;
    c->http_max_body = 65536;
    c->ip_retention_days = 7;
    c->anonymise_every_s = 3600;
    c->web_max_bytes = 64 << 20;
    c->visit_retention_days = 30;
    c->retention_every_s = 60;
    c->retention_batch = 500;
    c->purge_batch = 1000;
}

static int bad(const struct opt *o, const char *from, const char *why)
{
    fprintf(stderr, "parleyd: %s (%s): %s\n", o->flag + 2, from, why);
    return -1;
}

static int apply(struct config *c, const struct opt *o, const char *v, const char *from)
{
    char *base = (char *)c;
    char *end;
    switch (o->kind) {
    case K_STR:
        if (strlen(v) >= o->cap) return bad(o, from, "value too long");
        strcpy(base + o->off, v);
        return 0;
    case K_LEVEL: {
        enum log_level l;
        if (log_parse_level(v, &l)) return bad(o, from, "must be error, warn, info or debug");
        *(int *)(base + o->off) = (int)l;
        return 0;
    }
    case K_HOSTPORT: {
        const char *colon = strrchr(v, ':');
        if (!colon || colon == v || (size_t)(colon - v) >= sizeof c->redis_host)
            return bad(o, from, "must be HOST:PORT");
        errno = 0;
        long p = strtol(colon + 1, &end, 10);
        if (errno || *end || end == colon + 1 || p < 1 || p > 65535)
            return bad(o, from, "port must be 1..65535");
        memcpy(c->redis_host, v, (size_t)(colon - v));
        c->redis_host[colon - v] = '\0';
        c->redis_port = (int)p;
        return 0;
    }
    default:
        break;
    }
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || *end || end == v) return bad(o, from, "not an integer");
    if (n < o->min || n > o->max) {
        char why[96];
        snprintf(why, sizeof why, "must be between %lld and %lld", o->min, o->max);
        return bad(o, from, why);
    }
    if (o->kind == K_INT)
        *(int *)(base + o->off) = (int)n;
    else if (o->kind == K_SIZE)
        *(size_t *)(base + o->off) = (size_t)n;
    else
        *(uint32_t *)(base + o->off) = (uint32_t)n;
    return 0;
}

static const struct opt *find_opt(const char *name, size_t len)
{
    for (size_t i = 0; i < NOPTS; i++)
        if (strlen(opts[i].flag) == len && !strncmp(opts[i].flag, name, len)) return &opts[i];
    return NULL;
}

/* `name = value` lines (the flag names without dashes), # comments. */
static int load_file(struct config *c, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "parleyd: config: cannot open %s\n", path);
        return -1;
    }
    char line[4096], where[1100];
    int lineno = 0, rc = 0;
    while (!rc && fgets(line, sizeof line, f)) {
        lineno++;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        size_t n = strlen(p);
        while (n && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' '))
            p[--n] = '\0';
        if (!*p || *p == '#') continue;
        char *eq = strchr(p, '=');
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!eq) {
            fprintf(stderr, "parleyd: %s: expected name = value\n", where);
            rc = -1;
            break;
        }
        char *k = p, *ke = eq;
        while (ke > k && (ke[-1] == ' ' || ke[-1] == '\t'))
            ke--;
        char *v = eq + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        char flag[64];
        snprintf(flag, sizeof flag, "--%.*s", (int)(ke - k), k);
        const struct opt *o = find_opt(flag, strlen(flag));
        if (!o || !strcmp(flag, "--config")) {
            fprintf(stderr, "parleyd: %s: unknown setting '%.*s'\n", where, (int)(ke - k), k);
            rc = -1;
        } else {
            rc = apply(c, o, v, where);
        }
    }
    fclose(f);
    if (!rc) snprintf(c->config_file, sizeof c->config_file, "%s", path);
    return rc;
}

int config_load(struct config *c, int argc, char **argv)
{
    /* The file first (lowest precedence after the defaults). */
    const char *file = getenv("PARLEY_CONFIG");
    for (int a = 0; a < argc; a++) {
        if (!strcmp(argv[a], "--config") && a + 1 < argc)
            file = argv[a + 1];
        else if (!strncmp(argv[a], "--config=", 9))
            file = argv[a] + 9;
    }
    if (file && *file && load_file(c, file)) return -1;
    for (size_t i = 0; i < NOPTS; i++) {
        const char *v = getenv(opts[i].env);
        if (v && apply(c, &opts[i], v, opts[i].env)) return -1;
    }
    for (int a = 0; a < argc; a++) {
        const char *arg = argv[a];
        const char *eq = strchr(arg, '=');
        size_t nlen = eq ? (size_t)(eq - arg) : strlen(arg);
        if (nlen == 8 && !strncmp(arg, "--config", 8)) {
            if (!eq) a++; /* already applied */
            continue;
        }
        const struct opt *o = find_opt(arg, nlen);
        if (!o) {
            fprintf(stderr, "parleyd: unknown option '%s' (see --help)\n", arg);
            return -1;
        }
        const char *v = eq ? eq + 1 : (a + 1 < argc ? argv[++a] : NULL);
        if (!v) return bad(o, "flag", "needs a value");
        if (apply(c, o, v, "flag")) return -1;
    }
    if (!c->pg[0]) return bad(&opts[2], "flag", "required (or set PARLEY_PG)");
    if (c->max_body + 1024 > c->max_frame)
        return bad(&opts[6], "flag", "must be at least 1024 bytes below max-frame");
    if (c->outq_bytes < c->max_frame) return bad(&opts[7], "flag", "must be at least max-frame");
    const struct opt *cert = find_opt("--tls-cert", 10), *key = find_opt("--tls-key", 9);
    if (!c->tls_cert[0] != !c->tls_key[0])
        return bad(cert, "flag", "tls-cert and tls-key go together");
    if (c->tls_cert[0] && access(c->tls_cert, R_OK))
        return bad(cert, "flag", "cannot read the file");
    if (c->tls_key[0] && access(c->tls_key, R_OK)) return bad(key, "flag", "cannot read the file");
    return 0;
}

int config_origin_allowed(const struct config *c, const char *origin, size_t len)
{
    if (!c->origins[0]) return 1;
    /* Exact matches only: prefix or suffix matching is how allow-lists leak. */
    for (const char *p = c->origins; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && *p == ' ')
            p++, n--;
        while (n && p[n - 1] == ' ')
            n--;
        if (n == len && !memcmp(p, origin, len)) return 1;
        if (!e) break;
        p = e + 1;
    }
    return 0;
}

const char *config_web_root(const struct config *c)
{
    return c->web_root[0] ? c->web_root : PARLEY_WEB_DIR_DEFAULT;
}

void config_usage(const char *prog)
{
    printf("usage: %s [serve] [--config FILE] [options]\n"
           "       %s config-check [--config FILE] [options]\n"
           "       %s migrate [--pg CONNINFO] [--sql-dir DIR] [--partitions N]\n"
           "       %s admin [--pg CONNINFO] <command> ... (see '%s admin help')\n\n"
           "settings: defaults < config file (name = value) < environment < flags\n"
           "options (flag / environment variable):\n",
           prog, prog, prog, prog, prog);
    for (size_t i = 0; i < NOPTS; i++)
        printf("  %-20s %-24s %s\n", opts[i].flag, opts[i].env, opts[i].help);
}
