#include "itest.h"
#include "httpc.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <cjson/cJSON.h>

#include <libpq-fe.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

struct itest_env IT;

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == '"'))
        s[--n] = '\0';
}

static void read_token(const char *path, char *out, size_t cap)
{
    FILE *t = fopen(path, "r");
    if (t && fgets(out, (int)cap, t)) out[strcspn(out, "\r\n")] = 0;
    if (t) fclose(t);
}

void it_load_env(void)
{
    /* IT_ONLY=<test name pattern>: run one test of the program (loops that
     * chase a flake), as cmocka's filter. */
    if (getenv("IT_ONLY")) cmocka_set_test_filter(getenv("IT_ONLY"));
    const char *path = getenv("PARLEY_ENV_FILE");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) {
        fprintf(stderr, "itest: PARLEY_ENV_FILE not set or unreadable (run through ctest)\n");
        exit(1);
    }
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        trim(line);
        char *eq = strchr(line, '=');
        if (!eq) continue;
        *eq = '\0';
        char *v = eq + 1;
        if (*v == '"') v++;
        if (!strcmp(line, "PARLEY_PG"))
            snprintf(IT.pg, sizeof IT.pg, "%s", v);
        else if (!strcmp(line, "GW1_PORT"))
            IT.gw[0] = atoi(v);
        else if (!strcmp(line, "GW2_PORT"))
            IT.gw[1] = atoi(v);
        else if (!strcmp(line, "GW1_PID"))
            IT.gw_pid[0] = atoi(v);
        else if (!strcmp(line, "GW2_PID"))
            IT.gw_pid[1] = atoi(v);
        else if (!strcmp(line, "STATE_DIR"))
            snprintf(IT.state, sizeof IT.state, "%s", v);
        else if (!strcmp(line, "PARLEYD"))
            snprintf(IT.parleyd, sizeof IT.parleyd, "%s", v);
        else if (!strcmp(line, "ENV_SH"))
            snprintf(IT.env_sh, sizeof IT.env_sh, "%s", v);
        else if (!strcmp(line, "REDIS_PORT"))
            IT.redis_port = atoi(v);
        else if (!strcmp(line, "OPERATOR_TOKEN_FILE"))
            read_token(v, IT.operator_token, sizeof IT.operator_token);
        else if (!strcmp(line, "METRICS_TOKEN_FILE")) {
            snprintf(IT.metrics_token_file, sizeof IT.metrics_token_file, "%s", v);
            read_token(v, IT.metrics_token, sizeof IT.metrics_token);
        }
    }
    fclose(f);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
}

const char *it_admin(const char *fmt, ...)
{
    static char out[256];
    char args[1024], cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "'%s' admin --pg '%s' %s", IT.parleyd, IT.pg, args);
    FILE *p = popen(cmd, "r");
    if (!p) return NULL;
    out[0] = '\0';
    char *ok = fgets(out, sizeof out, p);
    int rc = pclose(p);
    if (!ok || rc != 0) return NULL;
    trim(out);
    return out;
}

int it_env(const char *cmd)
{
    char buf[1200];
    snprintf(buf, sizeof buf, "'%s' '%s' %s >/dev/null 2>&1", IT.env_sh, IT.state, cmd);
    return system(buf);
}

const char *it_sql(const char *sql)
{
    static char out[256];
    PGconn *pg = PQconnectdb(IT.pg);
    out[0] = '\0';
    if (PQstatus(pg) == CONNECTION_OK) {
        PGresult *r = PQexec(pg, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
            snprintf(out, sizeof out, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    PQfinish(pg);
    return out;
}

void it_world(struct it_world *w, int n, const char *visibility)
{
    char name[64];
    snprintf(name, sizeof name, "ws-%d", rand());
    snprintf(w->ws, sizeof w->ws, "%s", it_admin("create-workspace %s", name));
    snprintf(w->room, sizeof w->room, "%s",
             it_admin("create-room %s general %s", w->ws, visibility ? visibility : "workspace"));
    for (int i = 0; i < n && i < 8; i++) {
        snprintf(name, sizeof name, "p%d-%d@test.invalid", i, rand());
        snprintf(w->person[i], sizeof w->person[i], "%s",
                 it_admin("create-person %s %s member", w->ws, name));
        snprintf(w->tok[i], sizeof w->tok[i], "%s",
                 it_admin("create-token %s %s", w->person[i], w->ws));
    }
}

struct wsc *it_connect_port(int port, const struct wsc_opts *o, const char *tok)
{
    int status = 0;
    struct wsc *c = wsc_connect(port, o, &status);
    if (!c) {
        fprintf(stderr, "itest: connect to port %d failed (HTTP status %d)\n", port, status);
        return NULL;
    }
    cJSON *hello = wsc_wait_push(c, "hello", 2000);
    if (!hello) {
        fprintf(stderr, "itest: no hello from port %d\n", port);
        wsc_close(c);
        return NULL;
    }
    cJSON_Delete(hello);
    if (tok) {
        cJSON *r = wsc_request(c, 5000, "\"op\":\"auth\",\"token\":\"%s\"", tok);
        bool ok = r && !wsc_err_code(r);
        if (!ok) fprintf(stderr, "itest: auth failed: %s\n", r ? wsc_err_code(r) : "no reply");
        cJSON_Delete(r);
        if (!ok) {
            wsc_close(c);
            return NULL;
        }
    }
    return c;
}

struct wsc *it_connect_auth(int g, const char *tok)
{
    return it_connect_port(IT.gw[g], NULL, tok);
}

cJSON *it_join(struct wsc *c, const char *room, int64_t since)
{
    if (since < 0) return wsc_request(c, 5000, "\"op\":\"join\",\"room\":\"%s\"", room);
    return wsc_request(c, 5000, "\"op\":\"join\",\"room\":\"%s\",\"since\":%lld", room,
                       (long long)since);
}

cJSON *it_send(struct wsc *c, const char *room, const char *cmid, const char *body)
{
    return wsc_request(c, 5000,
                       "\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"%s\",\"body\":\"%s\"",
                       room, cmid, body);
}

void it_prime_batch(struct wsc *c, const char *room, const char *cmid)
{
    cJSON *r = it_send(c, room, cmid, "primer");
    assert_non_null(r);
    if (wsc_err_code(r)) fail_msg("the primer was answered %s", wsc_err_code(r));
    cJSON_Delete(r);
}

void it_send_big(struct wsc *c, const char *room, int n)
{
    static char body[3001];
    memset(body, 'q', 3000);
    for (int i = 0; i < n; i++) {
        char cmid[16];
        snprintf(cmid, sizeof cmid, "big-%d", i);
        cJSON *r = it_send(c, room, cmid, body);
        assert_non_null(r);
        if (wsc_err_code(r)) fail_msg("a big send was answered %s", wsc_err_code(r));
        cJSON_Delete(r);
    }
}

void it_ask_history(struct wsc *c, int port, const char *room, int n, int first_id)
{
    const char *series = "parley_op_seconds_count{op=\"history\"}";
    double before = it_metric_port(port, series);
    for (int i = 0; i < n; i++) {
        char msg[160];
        int len =
            snprintf(msg, sizeof msg, "{\"id\":%d,\"op\":\"history\",\"room\":\"%s\",\"limit\":20}",
                     first_id + i, room);
        assert_int_equal(wsc_send_text(c, msg, (size_t)len), 0);
    }
    for (int i = 0; i < 200 && it_metric_port(port, series) - before < n; i++)
        usleep(50000);
    assert_true(it_metric_port(port, series) - before >= n);
}

static cJSON *vreq(struct wsc *c, char *body, size_t cap, const char *fmt, va_list ap)
{
    vsnprintf(body, cap, fmt, ap);
    cJSON *r = wsc_request(c, 5000, "%s", body);
    assert_non_null(r);
    return r;
}

cJSON *it_req(struct wsc *c, const char *fmt, ...)
{
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    cJSON *r = vreq(c, body, sizeof body, fmt, ap);
    va_end(ap);
    return r;
}

cJSON *it_ok(struct wsc *c, const char *fmt, ...)
{
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    cJSON *r = vreq(c, body, sizeof body, fmt, ap);
    va_end(ap);
    if (wsc_err_code(r)) fprintf(stderr, "%s: %s\n", body, wsc_err_code(r));
    assert_null(wsc_err_code(r));
    return r;
}

double it_metric(int g, const char *series)
{
    return it_metric_port(IT.gw[g], series);
}

double it_metric_port(int port, const char *series)
{
    struct hres r = http_req(port, NULL, "GET", "/metrics", IT.metrics_token, NULL);
    size_t n = strlen(series);
    const char *p = r.status == 200 ? r.body : NULL;
    double v = -1;
    bool found = false;
    for (; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (!strncmp(p, series, n) && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            found = true;
            break;
        }
    if (!found) fprintf(stderr, "itest: no metric %s on port %d\n", series, port);
    hres_free(&r);
    if (!found) abort();
    return v;
}

long it_rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = atol(line + 6);
    fclose(f);
    return kb;
}

uint64_t it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int64_t it_pair(struct it_world *w, int g0, struct wsc **a, int g1, struct wsc **b)
{
    it_world(w, 2, NULL);
    *a = it_connect_auth(g0, w->tok[0]);
    *b = it_connect_auth(g1, w->tok[1]);
    cJSON *ja = *a ? it_join(*a, w->room, -1) : NULL;
    cJSON *jb = *b ? it_join(*b, w->room, -1) : NULL;
    if (!ja || !jb || wsc_err_code(ja) || wsc_err_code(jb)) {
        fprintf(stderr, "itest: could not set up two clients in a room\n");
        abort();
    }
    int64_t last = wsc_int(jb, "ok.last_seq");
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    return last;
}

int it_wait_subscribers(const char *room, int n, int ms)
{
    uint64_t end = it_now_ms() + (uint64_t)ms;
    do {
        char out[256];
        /* NUMSUB answers the channel's name, then its count. */
        if (it_run(out, sizeof out, "redis-cli -p %d PUBSUB NUMSUB room:%s | tail -n 1",
                   IT.redis_port, room) == 0 &&
            atoi(out) >= n)
            return 0;
        usleep(20000);
    } while (it_now_ms() < end);
    return -1;
}

int it_run(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

const char *it_sqlf(const char *fmt, ...)
{
    char q[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    return it_sql(q);
}

struct wsc *it_member(int g, const char *tok, const char *room)
{
    struct wsc *c = it_connect_auth(g, tok);
    cJSON *j = c ? it_join(c, room, -1) : NULL;
    if (!j || wsc_err_code(j)) {
        fprintf(stderr, "itest: could not join room %s on gateway %d\n", room, g);
        abort();
    }
    cJSON_Delete(j);
    return c;
}

int it_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(0x7f000001u);
    socklen_t l = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &l);
    close(fd);
    return ntohs(a.sin_port);
}

/* Every gateway a test program started, so that one left running by a
 * failed assertion (cmocka jumps out of the test) is stopped at the end. */
static pid_t spawned[64];
static int nspawned;

int it_kill_spawned(void **state)
{
    (void)state;
    /* waitpid answers 0 only for a child of ours still running: a pid
     * already reaped (and maybe reused by now) is never signalled. */
    for (int i = 0; i < nspawned; i++)
        if (waitpid(spawned[i], NULL, WNOHANG) == 0) {
            kill(spawned[i], SIGKILL);
            waitpid(spawned[i], NULL, 0);
        }
    return 0;
}

pid_t it_spawn(const char *log, const char *const *args)
{
    pid_t pid = fork();
    if (pid > 0 && nspawned < 64) spawned[nspawned++] = pid;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        const char *argv[40] = {IT.parleyd};
        int i = 1;
        for (; args[i - 1] && i < 37; i++)
            argv[i] = args[i - 1];
        argv[i++] = "--metrics-token-file"; /* it_metric_port reads every gateway's */
        argv[i++] = IT.metrics_token_file;
        argv[i] = NULL;
        execv(IT.parleyd, (char *const *)argv);
        _exit(127);
    }
    return pid;
}

int it_stop(pid_t pid)
{
    kill(pid, SIGTERM);
    int st = 0;
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    return -1;
}

int it_wait_ready(int port, int ms)
{
    for (int t = 0; t < ms; t += 50) {
        struct hres r = http_req(port, NULL, "GET", "/readyz", NULL, NULL);
        int st = r.status;
        hres_free(&r);
        if (st == 200) return 0;
        usleep(50000);
    }
    return -1;
}

pid_t it_own_gateway(const char *name, int *port, ...)
{
    *port = it_free_port();
    char ports[16], log[600], redis[64];
    snprintf(ports, sizeof ports, "%d", *port);
    snprintf(log, sizeof log, "%s/%s.log", IT.state, name);
    snprintf(redis, sizeof redis, "127.0.0.1:%d", IT.redis_port);
    const char *args[32] = {"serve", "--port", ports, "--pg", IT.pg, "--redis", redis};
    int n = 7;
    va_list ap;
    va_start(ap, port);
    for (const char *f; n < 31 && (f = va_arg(ap, const char *));)
        args[n++] = f;
    va_end(ap);
    args[n] = NULL;
    pid_t pid = it_spawn(log, args);
    if (it_wait_ready(*port, 10000)) {
        fprintf(stderr, "itest: gateway %s did not become ready (%s)\n", name, log);
        abort();
    }
    return pid;
}

bool it_outbox_take(const char *recipient, const char *type, char tok[64], long *id)
{
    tok[0] = 0;
    *id = 0;
    struct hres r =
        http_req(IT.gw[1], NULL, "GET", "/api/v1/outbox?limit=500", IT.operator_token, NULL);
    if (r.status != 200) {
        fprintf(stderr, "itest: outbox lease failed: %d %s\n", r.status, r.body);
        abort();
    }
    long found = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.json, "items"))
    {
        cJSON *p = cJSON_GetObjectItemCaseSensitive(it, "payload");
        cJSON *t = cJSON_GetObjectItemCaseSensitive(p, "type");
        cJSON *k = cJSON_GetObjectItemCaseSensitive(p, "token");
        long n = (long)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
        if (!strcmp(cJSON_GetObjectItemCaseSensitive(it, "recipient")->valuestring, recipient) &&
            cJSON_IsString(t) && !strcmp(t->valuestring, type) && n > found) {
            found = n;
            snprintf(tok, 64, "%s", cJSON_IsString(k) ? k->valuestring : "");
        }
    }
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.json, "items"))
    {
        long n = (long)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
        if (n == found) continue;
        struct hres a = http_reqf(IT.gw[1], NULL, "POST", IT.operator_token,
                                  "{\"status\":\"retry\"}", "/api/v1/outbox/%ld/ack", n);
        hres_free(&a);
    }
    hres_free(&r);
    *id = found;
    return found != 0;
}

void it_signup(const char *src, const char *email, const char *pw, const char *first, char tok[64],
               char id[40])
{
    char body[512], vt[64];
    long oid;
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"%s%s%s}", email, pw,
             first ? ",\"first_name\":\"" : "", first ? first : "", first ? "\"" : "");
    struct hres r = http_req(IT.gw[0], src, "POST", "/api/v1/auth/signup", NULL, body);
    if (r.status != 202) {
        fprintf(stderr, "itest: sign-up of %s: %d %s\n", email, r.status, r.body);
        abort();
    }
    hres_free(&r);
    char lower[256];
    snprintf(lower, sizeof lower, "%s", email);
    for (char *c = lower; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    if (!it_outbox_take(lower, "verification", vt, &oid) || !vt[0]) {
        fprintf(stderr, "itest: no verification item for %s\n", lower);
        abort();
    }
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", vt);
    r = http_req(IT.gw[1], src, "POST", "/api/v1/auth/verify", NULL, body);
    cJSON *p = cJSON_GetObjectItemCaseSensitive(r.json, "person");
    cJSON *pid = cJSON_GetObjectItemCaseSensitive(p, "id");
    if (r.status != 201 || strlen(hres_str(&r, "token")) != 43 || !cJSON_IsString(pid)) {
        fprintf(stderr, "itest: verify of %s: %d %s\n", email, r.status, r.body);
        abort();
    }
    snprintf(tok, 64, "%s", hres_str(&r, "token"));
    snprintf(id, 40, "%s", pid->valuestring);
    hres_free(&r);
    r = http_reqf(IT.gw[1], NULL, "POST", IT.operator_token, "{\"status\":\"sent\"}",
                  "/api/v1/outbox/%ld/ack", oid);
    hres_free(&r);
}
