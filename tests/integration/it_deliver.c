/* Integration: `parleyd deliver` against the real outbox of the fixture's
 * gateways, a real mail server (aiosmtpd, smtp_sink.py) and an HTTP SMS
 * gateway (sms_sink.py) on loopback ports (issue 20): the invitation mail
 * parsed by Python's email package and its link redeemed; SMS with 500
 * retried and 400 failed; two deliverers delivering every item once; a
 * deliverer killed mid-lease and its items delivered by the other after
 * the lease; the mail server down then up; a revoked invitation's item not
 * sent; templates with an unknown placeholder refused at start; and the
 * mailer contract itself (lease time, channel, the check before sending,
 * acknowledgements naming their lease). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpc.h"
#include "itest.h"

#define SRC "127.0.2.21"
#define PW "correct horse battery staple"
#define WEB "https://app.parley.example"

static int seq;
static char tmp[600]; /* this program's scratch directory under the state dir */

/* ---- processes ----------------------------------------------------------- */

static pid_t pids[32];
static int npids;

/* Starts argv (NULL-terminated) with output to log. */
static pid_t spawn(const char *log, const char *const *argv)
{
    pid_t pid = fork();
    if (pid == 0) {
        /* Gone with this program, even when an assertion aborts it: a
         * deliverer left behind would take the next test's items. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (pid > 0 && npids < 32) pids[npids++] = pid;
    return pid;
}

static void stop(pid_t pid, int sig)
{
    if (pid <= 0) return;
    kill(pid, sig);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid) return;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* After each test: whatever a failed one left running (only our
 * children: waitpid answers 0 for a child still running). */
static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < npids; i++)
        if (waitpid(pids[i], NULL, WNOHANG) == 0) stop(pids[i], SIGKILL);
    npids = 0;
    return 0;
}

static bool exists(const char *dir, const char *name)
{
    char p[800];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return access(p, F_OK) == 0;
}

static void wait_file(const char *dir, const char *name, int ms)
{
    for (int t = 0; t < ms && !exists(dir, name); t += 50)
        usleep(50000);
    if (!exists(dir, name)) fail_msg("%s/%s never appeared", dir, name);
}

/* A mail server on port writing to a fresh dir (returned in dir). */
static pid_t smtp_sink(int port, char dir[700])
{
    snprintf(dir, 700, "%s/mail-%d-%d", tmp, port, ++seq);
    mkdir(dir, 0755);
    char ports[16], log[800];
    snprintf(ports, sizeof ports, "%d", port);
    snprintf(log, sizeof log, "%s.log", dir);
    const char *argv[] = {"/usr/bin/python3", SINKS "/smtp_sink.py", ports, dir, NULL};
    pid_t pid = spawn(log, argv);
    wait_file(dir, "ready", 10000);
    return pid;
}

static pid_t sms_sink(int port, char dir[700])
{
    snprintf(dir, 700, "%s/sms-%d-%d", tmp, port, ++seq);
    mkdir(dir, 0755);
    char ports[16], log[800];
    snprintf(ports, sizeof ports, "%d", port);
    snprintf(log, sizeof log, "%s.log", dir);
    const char *argv[] = {"/usr/bin/python3", SINKS "/sms_sink.py", ports, dir, NULL};
    pid_t pid = spawn(log, argv);
    wait_file(dir, "ready", 10000);
    return pid;
}

/* A deliverer of the fixture's gateway 0 (email to smtp_port when > 0,
 * SMS to sms_port when > 0), with short retries; more flags after. Its
 * log is TMP/<name>.log, its metrics TMP/<name>.prom. */
static pid_t deliverer(const char *name, int smtp_port, int sms_port, ...)
{
    static char gw[64], sp[16], sms_url[96], log[800], prom[800], cred[800];
    snprintf(gw, sizeof gw, "http://127.0.0.1:%d", IT.gw[0]);
    snprintf(sp, sizeof sp, "%d", smtp_port);
    snprintf(sms_url, sizeof sms_url, "http://127.0.0.1:%d/send", sms_port);
    snprintf(log, sizeof log, "%s/%s.log", tmp, name);
    snprintf(prom, sizeof prom, "%s/%s.prom", tmp, name);
    snprintf(cred, sizeof cred, "%s/sms.cred", tmp);
    FILE *f = fopen(cred, "w");
    fputs("sms-secret-credential\n", f);
    fclose(f);
    char otf[600];
    snprintf(otf, sizeof otf, "%s/operator.token", IT.state);
    const char *argv[64] = {IT.parleyd,
                            "deliver",
                            "--gateway",
                            gw,
                            "--operator-token-file",
                            otf,
                            "--web-url",
                            WEB "/",
                            "--lease-s",
                            "20",
                            "--send-timeout-s",
                            "5",
                            "--retry-base-s",
                            "1",
                            "--retry-max-s",
                            "2",
                            "--poll-ms",
                            "200",
                            "--metrics-file",
                            prom};
    int n = 20;
    if (smtp_port > 0) {
        const char *m[] = {"--smtp-host",
                           "127.0.0.1",
                           "--smtp-port",
                           sp,
                           "--smtp-tls",
                           "none",
                           "--mail-from",
                           "parley@mail.parley.example",
                           "--mail-reply-to",
                           "help@parley.example",
                           NULL};
        for (int i = 0; m[i]; i++)
            argv[n++] = m[i];
    }
    if (sms_port > 0) {
        const char *m[] = {
            "--sms-url", sms_url,        "--sms-auth", "bearer", "--sms-credential-file",
            cred,        "--sms-sender", "Parley",     NULL};
        for (int i = 0; m[i]; i++)
            argv[n++] = m[i];
    }
    va_list ap;
    va_start(ap, sms_port);
    for (const char *a; n < 62 && (a = va_arg(ap, const char *));)
        argv[n++] = a;
    va_end(ap);
    argv[n] = NULL;
    return spawn(log, argv);
}

/* ---- what arrived -------------------------------------------------------- */

static cJSON *read_json(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    static char b[1 << 16];
    size_t n = fread(b, 1, sizeof b - 1, f);
    fclose(f);
    b[n] = 0;
    return cJSON_Parse(b);
}

/* Messages in dir for rcpt: how many, and the first (caller frees) in *first. */
static int mails(const char *dir, const char *rcpt, cJSON **first)
{
    if (first) *first = NULL;
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".json")) continue;
        char p[1000];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        cJSON *m = read_json(p);
        cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(m, "rcpt"), 0);
        if (cJSON_IsString(r) && !strcmp(r->valuestring, rcpt)) {
            n++;
            if (first && !*first) {
                *first = m;
                continue;
            }
        }
        cJSON_Delete(m);
    }
    if (d) closedir(d);
    return n;
}

static cJSON *wait_mail(const char *dir, const char *rcpt, int ms)
{
    cJSON *m = NULL;
    for (int t = 0; t < ms; t += 100) {
        if (mails(dir, rcpt, &m)) return m;
        usleep(100000);
    }
    fail_msg("no mail for %s in %s", rcpt, dir);
    return NULL;
}

/* SMS requests for number: how many, and the last one's fields (caller frees). */
static int texts(const char *dir, const char *to, cJSON **last)
{
    char p[800], line[4096];
    snprintf(p, sizeof p, "%s/sms.jsonl", dir);
    FILE *f = fopen(p, "r");
    int n = 0;
    if (last) *last = NULL;
    while (f && fgets(line, sizeof line, f)) {
        cJSON *r = cJSON_Parse(line);
        cJSON *fl = cJSON_GetObjectItemCaseSensitive(r, "fields");
        cJSON *t = cJSON_GetObjectItemCaseSensitive(fl, "to");
        if (cJSON_IsString(t) && !strcmp(t->valuestring, to)) {
            n++;
            if (last) {
                cJSON_Delete(*last);
                *last = r;
                continue;
            }
        }
        cJSON_Delete(r);
    }
    if (f) fclose(f);
    return n;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

/* The part of type t of a parsed mail. */
static const char *part(const cJSON *m, const char *t)
{
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(m, "parts"))
    {
        if (!strcmp(jstr(p, "type"), t)) return jstr(p, "body");
    }
    return "";
}

/* The secret of the first link to the web client's page (redeem/verify). */
static void link_secret(const char *text, const char *page, char tok[64])
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, WEB "/#/%s/", page);
    const char *l = strstr(text, prefix);
    if (!l) fail_msg("no %s link in: %s", page, text);
    l += strlen(prefix);
    size_t n = strspn(l, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");
    assert_int_equal(n, 43);
    snprintf(tok, 64, "%.*s", (int)n, l);
}

/* A metric's value in a deliverer's text file (-1: absent). */
static double prom(const char *name, const char *series)
{
    char p[800], line[512];
    snprintf(p, sizeof p, "%s/%s.prom", tmp, name);
    FILE *f = fopen(p, "r");
    double v = -1;
    size_t n = strlen(series);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, series, n) && line[n] == ' ') v = strtod(line + n + 1, NULL);
    if (f) fclose(f);
    return v;
}

/* ---- the API side -------------------------------------------------------- */

struct acct {
    char email[128]; /* lower case */
    char token[64];  /* session */
    char id[40];     /* person id */
};

static void signup(struct acct *a, const char *first)
{
    snprintf(a->email, sizeof a->email, "dl-%d-%d@consult.example", getpid(), ++seq);
    it_signup(SRC, a->email, PW, first, a->token, a->id);
}

static void workspace(const struct acct *o, const char *name, const char *lang, char ws[40])
{
    char body[256];
    snprintf(body, sizeof body, "{\"name\":\"%s\",\"language\":\"%s\"}", name, lang);
    struct hres r = http_req(IT.gw[0], NULL, "POST", "/api/v1/workspaces", o->token, body);
    assert_int_equal(r.status, 201);
    snprintf(ws, 40, "%s", hres_str(&r, "id"));
    hres_free(&r);
}

/* Invites an email ("@" in addr) or phone; returns the invitation id. */
static void invite(const struct acct *o, const char *ws, const char *addr, char id[40])
{
    char body[256];
    snprintf(body, sizeof body, "{\"%s\":\"%s\",\"first_name\":\"Ina\"}",
             strchr(addr, '@') ? "email" : "phone", addr);
    struct hres r =
        http_reqf(IT.gw[1], NULL, "POST", o->token, body, "/api/v1/workspaces/%s/invitations", ws);
    if (r.status != 201) fprintf(stderr, "invite: %d %s\n", r.status, r.body);
    assert_int_equal(r.status, 201);
    if (id) snprintf(id, 40, "%s", hres_str(&r, "id"));
    hres_free(&r);
}

/* The invitation's delivery as the console shows it (GET .../invitations). */
static void delivery(const struct acct *o, const char *ws, const char *inv, char status[16],
                     char error[256])
{
    struct hres r =
        http_reqf(IT.gw[0], NULL, "GET", o->token, NULL, "/api/v1/workspaces/%s/invitations", ws);
    assert_int_equal(r.status, 200);
    status[0] = error[0] = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.json, "items"))
    {
        if (strcmp(jstr(it, "id"), inv)) continue;
        cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "delivery");
        snprintf(status, 16, "%s", jstr(d, "state"));
        snprintf(error, 256, "%s", jstr(d, "error"));
    }
    hres_free(&r);
}

static void wait_delivery(const struct acct *o, const char *ws, const char *inv, const char *want,
                          char error[256])
{
    char st[16];
    for (int t = 0; t < 20000; t += 100) {
        delivery(o, ws, inv, st, error);
        if (!strcmp(st, want)) return;
        usleep(100000);
    }
    fail_msg("invitation %s: delivery %s, wanted %s (%s)", inv, st, want, error);
}

/* Earlier test programs leave items behind (handed back, never acked):
 * end them, so that this program's deliverers see only its own. */
static void quiet_outbox(void)
{
    it_sql("UPDATE outbox SET failed_at = now(), last_error = 'ended by it_deliver'"
           " WHERE sent_at IS NULL AND failed_at IS NULL RETURNING 1");
}

/* ---- tests --------------------------------------------------------------- */

static void outbox_contract(void **state)
{
    (void)state;
    quiet_outbox();
    struct acct o;
    signup(&o, "Olga");
    char ws[40], inv[40], email[128];
    workspace(&o, "Contract", "de", ws);
    snprintf(email, sizeof email, "contract-%d@client.example", getpid());
    invite(&o, ws, email, inv);
    /* Another channel's lease does not take it. */
    struct hres r = http_req(IT.gw[0], NULL, "GET", "/api/v1/outbox?limit=500&channel=sms",
                             IT.operator_token, NULL);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body, email));
    hres_free(&r);
    r = http_req(IT.gw[0], NULL, "GET", "/api/v1/outbox?channel=fax", IT.operator_token, NULL);
    assert_int_equal(r.status, 400);
    hres_free(&r);
    r = http_req(IT.gw[0], NULL, "GET", "/api/v1/outbox?lease_s=0", IT.operator_token, NULL);
    assert_int_equal(r.status, 400);
    hres_free(&r);
    /* A two-second lease, with the workspace's language. */
    r = http_req(IT.gw[0], NULL, "GET", "/api/v1/outbox?limit=500&lease_s=2&channel=email",
                 IT.operator_token, NULL);
    assert_int_equal(r.status, 200);
    cJSON *item = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r.json, "items"), 0);
    assert_string_equal(jstr(item, "recipient"), email);
    assert_string_equal(jstr(item, "language"), "de");
    long id = (long)cJSON_GetObjectItemCaseSensitive(item, "id")->valuedouble;
    int a1 = cJSON_GetObjectItemCaseSensitive(item, "attempts")->valueint;
    double left = cJSON_GetObjectItemCaseSensitive(item, "lease_remaining_ms")->valuedouble;
    assert_true(left > 0 && left <= 2000);
    hres_free(&r);
    /* The check before sending: the item, its lease's number. */
    r = http_reqf(IT.gw[1], NULL, "GET", IT.operator_token, NULL, "/api/v1/outbox/%ld", id);
    assert_int_equal(r.status, 200);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(r.json, "attempts")->valueint, a1);
    hres_free(&r);
    r = http_req(IT.gw[1], NULL, "GET", "/api/v1/outbox/999999999", IT.operator_token, NULL);
    assert_int_equal(r.status, 404);
    hres_free(&r);
    r = http_reqf(IT.gw[1], NULL, "GET", o.token, NULL, "/api/v1/outbox/%ld", id);
    assert_int_equal(r.status, 401);
    hres_free(&r);
    /* The lease runs out: another lease takes it, with the next number. */
    usleep(2300000);
    r = http_req(IT.gw[1], NULL, "GET", "/api/v1/outbox?limit=500&lease_s=60", IT.operator_token,
                 NULL);
    assert_non_null(strstr(r.body, email));
    hres_free(&r);
    /* The first lease's acknowledgement changes nothing. */
    char body[128];
    snprintf(body, sizeof body, "{\"status\":\"sent\",\"attempt\":%d}", a1);
    r = http_reqf(IT.gw[0], NULL, "POST", IT.operator_token, body, "/api/v1/outbox/%ld/ack", id);
    assert_int_equal(r.status, 409);
    assert_string_equal(hres_str(&r, "error.code"), "lease_lost");
    hres_free(&r);
    assert_string_equal(it_sqlf("SELECT sent_at IS NULL AND payload ? 'token' FROM outbox"
                                " WHERE id = %ld",
                                id),
                        "t");
    /* retry_after_s only with retry; the current lease retries later. */
    snprintf(body, sizeof body, "{\"status\":\"sent\",\"retry_after_s\":5,\"attempt\":%d}", a1 + 1);
    r = http_reqf(IT.gw[0], NULL, "POST", IT.operator_token, body, "/api/v1/outbox/%ld/ack", id);
    assert_int_equal(r.status, 400);
    hres_free(&r);
    snprintf(body, sizeof body,
             "{\"status\":\"retry\",\"retry_after_s\":600,\"attempt\":%d,\"error\":\"421 busy\"}",
             a1 + 1);
    r = http_reqf(IT.gw[0], NULL, "POST", IT.operator_token, body, "/api/v1/outbox/%ld/ack", id);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    assert_string_equal(
        it_sqlf("SELECT leased_until > now() + interval '500 seconds' AND last_error = '421 busy'"
                " FROM outbox WHERE id = %ld",
                id),
        "t");
    r = http_req(IT.gw[1], NULL, "GET", "/api/v1/outbox?limit=500", IT.operator_token, NULL);
    assert_null(strstr(r.body, email));
    hres_free(&r);
    char st[16], err[256];
    delivery(&o, ws, inv, st, err);
    assert_string_equal(st, "retrying");
    assert_string_equal(err, "421 busy");
    /* Revoked: no longer due. */
    r = http_reqf(IT.gw[0], NULL, "DELETE", o.token, NULL, "/api/v1/workspaces/%s/invitations/%s",
                  ws, inv);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    r = http_reqf(IT.gw[1], NULL, "GET", IT.operator_token, NULL, "/api/v1/outbox/%ld", id);
    assert_int_equal(r.status, 404);
    hres_free(&r);
}

static void email_invitation_redeemed(void **state)
{
    (void)state;
    quiet_outbox();
    int port = it_free_port();
    char dir[700];
    pid_t sink = smtp_sink(port, dir);
    /* Signed up before a deliverer runs: it_signup takes the proof from
     * the outbox itself. */
    struct acct o;
    signup(&o, "Carla");
    pid_t d = deliverer("mail", port, 0, NULL);
    char ws[40], wsde[40], inv[40], inv2[40], inv3[40], email[128], email2[128], refused[128];
    workspace(&o, "Acme <R&D> Oy", "en", ws);
    workspace(&o, "Müller & Söhne", "de", wsde);
    snprintf(email, sizeof email, "ina-%d@client.example", getpid());
    snprintf(email2, sizeof email2, "jonas-%d@client.example", getpid());
    snprintf(refused, sizeof refused, "refuse-%d@client.example", getpid());
    invite(&o, ws, email, inv);
    invite(&o, wsde, email2, inv2);
    invite(&o, ws, refused, inv3);

    cJSON *m = wait_mail(dir, email, 20000);
    /* Python's email parser finds nothing wrong with it. */
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(m, "defects")), 0);
    assert_string_equal(jstr(m, "mail_from"), "parley@mail.parley.example");
    assert_string_equal(jstr(m, "from"), "Parley <parley@mail.parley.example>");
    assert_string_equal(jstr(m, "reply_to"), "help@parley.example");
    assert_string_equal(jstr(m, "to"), email);
    assert_string_equal(jstr(m, "subject"), "Carla invites you to Acme <R&D> Oy on Parley");
    assert_string_equal(jstr(m, "mime_version"), "1.0");
    assert_string_equal(jstr(m, "auto_submitted"), "auto-generated");
    assert_string_equal(jstr(m, "content_type"), "multipart/alternative");
    assert_non_null(strstr(jstr(m, "message_id"), "@mail.parley.example>"));
    assert_true(strlen(jstr(m, "date")) > 20);
    const char *text = part(m, "text/plain"), *html = part(m, "text/html");
    assert_non_null(strstr(text, "Hello Ina,"));
    assert_non_null(strstr(html, "<strong>Acme &lt;R&amp;D&gt; Oy</strong>"));
    char tok[64], tok_html[64];
    link_secret(text, "redeem", tok);
    link_secret(html, "redeem", tok_html);
    assert_string_equal(tok, tok_html);
    cJSON_Delete(m);

    /* Following the link: the person is in the workspace. */
    char body[256];
    snprintf(body, sizeof body, "{\"token\":\"%s\",\"password\":\"" PW "\"}", tok);
    struct hres r = http_req(IT.gw[1], SRC, "POST", "/api/v1/invitations/redeem", NULL, body);
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "workspace_id"), ws);
    char pid_[40];
    snprintf(pid_, sizeof pid_, "%s", hres_str(&r, "person_id"));
    hres_free(&r);
    assert_string_equal(it_sqlf("SELECT role FROM workspace_members WHERE workspace_id = '%s'"
                                " AND person_id = '%s' AND removed_at IS NULL",
                                ws, pid_),
                        "member");
    char st[16], err[256];
    wait_delivery(&o, ws, inv, "sent", err);

    /* The workspace's language picks the templates; the subject is
     * encoded (RFC 2047) and decodes back. */
    m = wait_mail(dir, email2, 20000);
    assert_string_equal(jstr(m, "subject"), "Carla lädt Sie zu Müller & Söhne auf Parley ein");
    assert_non_null(strstr(jstr(m, "raw_headers"), "Subject: =?UTF-8?B?"));
    assert_non_null(strstr(part(m, "text/plain"), "Guten Tag Ina,"));
    cJSON_Delete(m);

    /* Refused for good: failed, with the server's reply in the console. */
    wait_delivery(&o, ws, inv3, "failed", err);
    assert_non_null(strstr(err, "550"));
    assert_non_null(strstr(err, "mailbox unavailable"));
    assert_int_equal(mails(dir, refused, NULL), 0);
    delivery(&o, ws, inv, st, err);
    assert_string_equal(st, "sent");

    /* Metrics, and logs without secrets or full addresses. */
    for (int t = 0; t < 50 && prom("mail", "parley_deliver_sent_total{channel=\"email\"}") < 2; t++)
        usleep(100000);
    assert_true(prom("mail", "parley_deliver_sent_total{channel=\"email\"}") >= 2);
    assert_true(prom("mail", "parley_deliver_failed_total{channel=\"email\"}") >= 1);
    assert_true(prom("mail", "parley_deliver_latency_seconds_count{channel=\"email\"}") >= 2);
    char out[4096], logp[800];
    snprintf(logp, sizeof logp, "%s/mail.prom", tmp);
    if (access("/usr/bin/promtool", X_OK) == 0) {
        int rc = it_run(out, sizeof out, "/usr/bin/promtool check metrics < '%s'", logp);
        if (rc) fprintf(stderr, "promtool: %s\n", out);
        assert_int_equal(rc, 0);
    }
    stop(d, SIGTERM);
    stop(sink, SIGTERM);
    snprintf(logp, sizeof logp, "%s/mail.log", tmp);
    FILE *f = fopen(logp, "r");
    static char logtext[1 << 16];
    size_t n = fread(logtext, 1, sizeof logtext - 1, f);
    fclose(f);
    logtext[n] = 0;
    assert_non_null(strstr(logtext, "msg=\"sent\""));
    assert_non_null(strstr(logtext, "msg=\"failed\""));
    assert_null(strstr(logtext, tok));
    assert_null(strstr(logtext, email));
    assert_null(strstr(logtext, refused));
    assert_non_null(strstr(logtext, "@client.example"));
}

static void sms_gateway(void **state)
{
    (void)state;
    quiet_outbox();
    int port = it_free_port();
    char dir[700];
    pid_t sink = sms_sink(port, dir);
    struct acct o;
    signup(&o, "Carla");
    pid_t d = deliverer("sms", 0, port, NULL);
    char ws[40], ok_inv[40], flaky_inv[40], bad_inv[40], ok[32], flaky[32], badn[32];
    workspace(&o, "Text Oy", "en", ws);
    int k = rand() % 1000000;
    snprintf(ok, sizeof ok, "+3584%06d0001", k);
    snprintf(flaky, sizeof flaky, "+3584%06d0500", k);
    snprintf(badn, sizeof badn, "+3584%06d0400", k);
    invite(&o, ws, ok, ok_inv);
    invite(&o, ws, flaky, flaky_inv);
    invite(&o, ws, badn, bad_inv);
    char err[256];
    wait_delivery(&o, ws, ok_inv, "sent", err);
    /* The number and the text arrive, with the credential. */
    cJSON *t;
    assert_int_equal(texts(dir, ok, &t), 1);
    cJSON *fl = cJSON_GetObjectItemCaseSensitive(t, "fields");
    assert_string_equal(jstr(fl, "from"), "Parley");
    assert_string_equal(jstr(t, "authorization"), "Bearer sms-secret-credential");
    assert_string_equal(jstr(t, "content_type"), "application/json");
    assert_non_null(strstr(jstr(fl, "text"), "Carla invites you to Text Oy on Parley: "));
    char tok[64];
    link_secret(jstr(fl, "text"), "redeem", tok);
    cJSON_Delete(t);
    /* 500: retried, then sent. */
    wait_delivery(&o, ws, flaky_inv, "sent", err);
    assert_int_equal(texts(dir, flaky, NULL), 2);
    assert_string_equal(
        it_sqlf("SELECT attempts FROM outbox WHERE invitation_id = '%s'", flaky_inv), "2");
    /* 400: failed, with the gateway's answer. */
    wait_delivery(&o, ws, bad_inv, "failed", err);
    assert_non_null(strstr(err, "400"));
    assert_non_null(strstr(err, "invalid destination number"));
    assert_int_equal(texts(dir, badn, NULL), 1);
    /* A phone number's proof goes by SMS to the verify page. */
    char phone[32], body[96];
    snprintf(phone, sizeof phone, "+3585%06d0002", k);
    snprintf(body, sizeof body, "{\"phone\":\"%s\"}", phone);
    struct hres r = http_req(IT.gw[0], NULL, "PATCH", "/api/v1/me", o.token, body);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    for (int i = 0; i < 200 && texts(dir, phone, NULL) == 0; i++)
        usleep(100000);
    assert_int_equal(texts(dir, phone, &t), 1);
    fl = cJSON_GetObjectItemCaseSensitive(t, "fields");
    assert_non_null(strstr(jstr(fl, "text"), "Confirm your number for Parley: "));
    link_secret(jstr(fl, "text"), "verify", tok);
    cJSON_Delete(t);
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", tok);
    r = http_req(IT.gw[1], SRC, "POST", "/api/v1/auth/verify", NULL, body);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    assert_string_equal(it_sqlf("SELECT phone FROM people WHERE id = '%s'", o.id), phone);
    for (int i = 0; i < 50 && prom("sms", "parley_deliver_sent_total{channel=\"sms\"}") < 3; i++)
        usleep(100000);
    assert_int_equal(prom("sms", "parley_deliver_sent_total{channel=\"sms\"}"), 3);
    assert_int_equal(prom("sms", "parley_deliver_retried_total{channel=\"sms\"}"), 1);
    assert_int_equal(prom("sms", "parley_deliver_failed_total{channel=\"sms\"}"), 1);
    stop(d, SIGTERM);
    stop(sink, SIGTERM);
}

#define MANY 30

static void two_deliverers_exactly_once(void **state)
{
    (void)state;
    quiet_outbox();
    int port = it_free_port();
    char dir[700];
    pid_t sink = smtp_sink(port, dir);
    struct acct o;
    signup(&o, "Carla");
    char ws[40], rc[MANY][96];
    workspace(&o, "Many", "en", ws);
    for (int i = 0; i < MANY; i++) {
        snprintf(rc[i], sizeof rc[i], "many-%d-%d@client.example", getpid(), i);
        invite(&o, ws, rc[i], NULL);
    }
    /* Small batches, so that both lease from the same backlog at once. */
    pid_t d1 = deliverer("twin1", port, 0, "--batch", "3", NULL);
    pid_t d2 = deliverer("twin2", port, 0, "--batch", "3", NULL);
    for (int t = 0; t < 400; t++) {
        int got = 0;
        for (int i = 0; i < MANY; i++)
            got += mails(dir, rc[i], NULL) > 0;
        if (got == MANY) break;
        usleep(100000);
    }
    usleep(1500000); /* a duplicate would have time to arrive */
    for (int i = 0; i < MANY; i++)
        if (mails(dir, rc[i], NULL) != 1)
            fail_msg("%s received %d times", rc[i], mails(dir, rc[i], NULL));
    assert_string_equal(it_sqlf("SELECT count(*) FROM outbox o JOIN invitations i"
                                " ON i.id = o.invitation_id WHERE i.workspace_id = '%s'"
                                " AND o.sent_at IS NOT NULL AND o.attempts = 1",
                                ws),
                        "30");
    /* Between them, every item once. */
    assert_int_equal(prom("twin1", "parley_deliver_sent_total{channel=\"email\"}") +
                         prom("twin2", "parley_deliver_sent_total{channel=\"email\"}"),
                     MANY);
    stop(d1, SIGTERM);
    stop(d2, SIGTERM);
    stop(sink, SIGTERM);
}

/* A mail server that accepts connections and never answers. */
static int black_hole(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(0x7f000001u);
    socklen_t l = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 16), 0);
    getsockname(fd, (struct sockaddr *)&a, &l);
    *port = ntohs(a.sin_port);
    return fd;
}

static void killed_mid_lease(void **state)
{
    (void)state;
    quiet_outbox();
    int hole_port, port = it_free_port();
    int hole = black_hole(&hole_port);
    char dir[700];
    pid_t sink = smtp_sink(port, dir);
    struct acct o;
    signup(&o, "Carla");
    char ws[40], rc[4][96];
    workspace(&o, "Killed", "en", ws);
    for (int i = 0; i < 4; i++) {
        snprintf(rc[i], sizeof rc[i], "kill-%d-%d@client.example", getpid(), i);
        invite(&o, ws, rc[i], NULL);
    }
    /* A leases all four and hangs on the first send. */
    pid_t a = deliverer("victim", hole_port, 0, "--batch", "10", "--send-timeout-s", "6",
                        "--lease-s", "18", NULL);
    char q[512];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM outbox o JOIN invitations i ON i.id = o.invitation_id"
             " WHERE i.workspace_id = '%s' AND o.attempts = 1 AND o.leased_until > now()",
             ws);
    for (int t = 0; t < 100 && strcmp(it_sql(q), "4"); t++)
        usleep(100000);
    assert_string_equal(it_sql(q), "4");
    usleep(500000); /* into its first send */
    stop(a, SIGKILL);
    char lease_end[32];
    snprintf(lease_end, sizeof lease_end, "%s",
             it_sqlf("SELECT extract(epoch from min(o.leased_until)) FROM outbox o"
                     " JOIN invitations i ON i.id = o.invitation_id WHERE i.workspace_id = '%s'",
                     ws));
    /* B delivers them, but only once the lease has run out. */
    pid_t b = deliverer("heir", port, 0, NULL);
    for (int i = 0; i < 4; i++) {
        cJSON *m = wait_mail(dir, rc[i], 40000);
        double at = cJSON_GetObjectItemCaseSensitive(m, "received_at")->valuedouble;
        assert_true(at >= atof(lease_end) - 0.5);
        cJSON_Delete(m);
    }
    usleep(1000000);
    for (int i = 0; i < 4; i++)
        assert_int_equal(mails(dir, rc[i], NULL), 1);
    assert_string_equal(it_sqlf("SELECT count(*) FROM outbox o JOIN invitations i"
                                " ON i.id = o.invitation_id WHERE i.workspace_id = '%s'"
                                " AND o.sent_at IS NOT NULL AND o.attempts = 2",
                                ws),
                        "4");
    stop(b, SIGTERM);
    stop(sink, SIGTERM);
    close(hole);
}

static void smtp_down_then_up(void **state)
{
    (void)state;
    quiet_outbox();
    int port = it_free_port(); /* nothing listens there yet */
    struct acct o;
    signup(&o, "Carla");
    pid_t d = deliverer("patient", port, 0, NULL);
    char ws[40], rc[3][96];
    workspace(&o, "Patience", "en", ws);
    for (int i = 0; i < 3; i++) {
        snprintf(rc[i], sizeof rc[i], "wait-%d-%d@client.example", getpid(), i);
        invite(&o, ws, rc[i], NULL);
    }
    char q[512];
    snprintf(q, sizeof q,
             "SELECT count(*) FROM outbox o JOIN invitations i ON i.id = o.invitation_id"
             " WHERE i.workspace_id = '%s' AND o.attempts >= 2 AND o.sent_at IS NULL"
             " AND o.failed_at IS NULL AND o.last_error IS NOT NULL",
             ws);
    for (int t = 0; t < 200 && strcmp(it_sql(q), "3"); t++)
        usleep(100000);
    /* Waiting, retried, nothing lost or given up. */
    assert_string_equal(it_sql(q), "3");
    assert_true(prom("patient", "parley_deliver_retried_total{channel=\"email\"}") >= 3);
    char dir[700];
    pid_t sink = smtp_sink(port, dir);
    for (int i = 0; i < 3; i++)
        cJSON_Delete(wait_mail(dir, rc[i], 20000));
    snprintf(q, sizeof q,
             "SELECT count(*) FROM outbox o JOIN invitations i ON i.id = o.invitation_id"
             " WHERE i.workspace_id = '%s' AND o.sent_at IS NOT NULL",
             ws);
    for (int t = 0; t < 50 && strcmp(it_sql(q), "3"); t++)
        usleep(100000);
    assert_string_equal(it_sql(q), "3");
    stop(d, SIGTERM);
    stop(sink, SIGTERM);
}

static void revoked_meanwhile_not_sent(void **state)
{
    (void)state;
    quiet_outbox();
    int port = it_free_port();
    char dir[700];
    pid_t sink = smtp_sink(port, dir);
    struct acct o;
    signup(&o, "Carla");
    char ws[40], slow[96], later[96], inv[40];
    workspace(&o, "Revoked", "en", ws);
    snprintf(slow, sizeof slow, "slow-%d@client.example", getpid());
    snprintf(later, sizeof later, "later-%d@client.example", getpid());
    invite(&o, ws, slow, NULL);
    invite(&o, ws, later, inv);
    /* One lease takes both; the first send is slow (3 s in DATA). */
    pid_t d = deliverer("revoker", port, 0, "--send-timeout-s", "10", "--lease-s", "30", NULL);
    wait_file(dir, "slow-started", 20000);
    assert_string_equal(it_sqlf("SELECT attempts FROM outbox WHERE invitation_id = '%s'", inv),
                        "1");
    struct hres r = http_reqf(IT.gw[0], NULL, "DELETE", o.token, NULL,
                              "/api/v1/workspaces/%s/invitations/%s", ws, inv);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    cJSON_Delete(wait_mail(dir, slow, 20000));
    for (int t = 0; t < 50 && prom("revoker", "parley_deliver_withdrawn_total") < 1; t++)
        usleep(100000);
    assert_int_equal(prom("revoker", "parley_deliver_withdrawn_total"), 1);
    assert_int_equal(mails(dir, later, NULL), 0);
    assert_string_equal(it_sqlf("SELECT last_error FROM outbox WHERE invitation_id = '%s'", inv),
                        "invitation revoked");
    stop(d, SIGTERM);
    stop(sink, SIGTERM);
}

static void bad_templates_refused_at_start(void **state)
{
    (void)state;
    char t[700], cmd[2000], out[4096];
    snprintf(t, sizeof t, "%s/badtpl", tmp);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", t, TEMPLATES, t);
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "%s/de/invitation.txt", t);
    FILE *f = fopen(cmd, "w");
    fputs("Hallo {{first_name}}, {{inviter_name}} lädt Sie ein: {{link}}\n", f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s/operator.token", IT.state);
    int rc = it_run(out, sizeof out,
                    "'%s' deliver --gateway http://127.0.0.1:%d --operator-token-file '%s'"
                    " --web-url " WEB " --smtp-host 127.0.0.1 --smtp-tls none"
                    " --mail-from parley@mail.parley.example --templates '%s'",
                    IT.parleyd, IT.gw[0], cmd, t);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "de/invitation.txt: unknown placeholder {{inviter_name}}"));
    /* Settings too: a bad one names itself. */
    rc = it_run(out, sizeof out,
                "'%s' deliver --gateway http://127.0.0.1:%d --operator-token-file '%s'"
                " --web-url " WEB " --smtp-host 127.0.0.1 --smtp-tls sometimes"
                " --mail-from parley@mail.parley.example",
                IT.parleyd, IT.gw[0], cmd);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(out, "smtp-tls: must be starttls, implicit or none"));
}

/* Every deliverer this program ran exited or was stopped: in a sanitizer
 * build their logs hold any report (the fixture checks only gateways'). */
static void deliverer_logs_clean(void **state)
{
    (void)state;
    char out[4096];
    int rc = it_run(out, sizeof out,
                    "grep -l 'ERROR: AddressSanitizer\\|ERROR: LeakSanitizer\\|runtime error:' "
                    "'%s'/*.log",
                    tmp);
    if (rc == 0) fail_msg("sanitizer reports in: %s", out);
    assert_int_equal(rc, 1); /* grep: no match */
}

int main(void)
{
    it_load_env();
    snprintf(tmp, sizeof tmp, "%s/it_deliver", IT.state);
    mkdir(tmp, 0755);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(outbox_contract, teardown),
        cmocka_unit_test_teardown(bad_templates_refused_at_start, teardown),
        cmocka_unit_test_teardown(email_invitation_redeemed, teardown),
        cmocka_unit_test_teardown(sms_gateway, teardown),
        cmocka_unit_test_teardown(two_deliverers_exactly_once, teardown),
        cmocka_unit_test_teardown(killed_mid_lease, teardown),
        cmocka_unit_test_teardown(smtp_down_then_up, teardown),
        cmocka_unit_test_teardown(revoked_meanwhile_not_sent, teardown),
        cmocka_unit_test(deliverer_logs_clean),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
