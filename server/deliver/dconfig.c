#include "dconfig.h"

#include "log.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PARLEY_TEMPLATE_DIR_DEFAULT
#define PARLEY_TEMPLATE_DIR_DEFAULT "templates"
#endif

enum okind { O_STR, O_LONG };

struct dopt {
    const char *flag; /* --name; the environment variable is PARLEY_NAME */
    enum okind kind;  /* string or number */
    size_t off;       /* in struct dcfg */
    size_t cap;       /* string buffer */
    long min, max;    /* number range */
    const char *help; /* one line */
};

#define S(f, h)                                                                                    \
    {                                                                                              \
        "--" #f, O_STR, offsetof(struct dcfg, f), sizeof(((struct dcfg *)0)->f), 0, 0, h           \
    }
#define N(f, lo, hi, h)                                                                            \
    {                                                                                              \
        "--" #f, O_LONG, offsetof(struct dcfg, f), 0, lo, hi, h                                    \
    }
/* Flags use dashes; the table names fields, so map '_' to '-' when matching. */
static const struct dopt dopts[] = {
    S(gateway, "a gateway's base URL, e.g. http://127.0.0.1:8080 (required)"),
    S(gateway_ca_file, "CA bundle for an https gateway"),
    S(operator_token_file, "file with the operator token (required)"),
    S(templates, "templates directory (<lang>/<kind>.{subject,txt,html,sms})"),
    S(default_language, "language for items without one or without templates (en)"),
    S(web_url, "the web client's URL; links go to #/redeem/ and #/verify/ (required)"),
    S(smtp_host, "mail server (none: no email)"),
    N(smtp_port, 1, 65535, "mail server port (587)"),
    S(smtp_tls, "starttls | implicit | none (starttls)"),
    {"--smtp-user", O_STR, offsetof(struct dcfg, smtp.user), sizeof(((struct smtp_cfg *)0)->user),
     0, 0, "SMTP user (none: no authentication)"},
    S(smtp_password_file, "file with the SMTP password"),
    {"--mail-from", O_STR, offsetof(struct dcfg, smtp.from), sizeof(((struct smtp_cfg *)0)->from),
     0, 0, "envelope sender and From address (required for email)"},
    {"--mail-from-name", O_STR, offsetof(struct dcfg, smtp.from_name),
     sizeof(((struct smtp_cfg *)0)->from_name), 0, 0, "From display name (Parley)"},
    {"--mail-reply-to", O_STR, offsetof(struct dcfg, smtp.reply_to),
     sizeof(((struct smtp_cfg *)0)->reply_to), 0, 0, "Reply-To address (none)"},
    {"--smtp-ca-file", O_STR, offsetof(struct dcfg, smtp.ca_file),
     sizeof(((struct smtp_cfg *)0)->ca_file), 0, 0, "CA bundle for the mail server"},
    S(sms_url, "SMS gateway endpoint (none: no SMS)"),
    S(sms_format, "json | form (json)"),
    S(sms_auth, "none | bearer | basic (none)"),
    S(sms_credential_file, "file with the bearer token or user:password"),
    {"--sms-sender", O_STR, offsetof(struct dcfg, sms.sender),
     sizeof(((struct sms_cfg *)0)->sender), 0, 0, "sender id or number (none)"},
    {"--sms-to-field", O_STR, offsetof(struct dcfg, sms.to_field),
     sizeof(((struct sms_cfg *)0)->to_field), 0, 0, "field of the number (to)"},
    {"--sms-text-field", O_STR, offsetof(struct dcfg, sms.text_field),
     sizeof(((struct sms_cfg *)0)->text_field), 0, 0, "field of the text (text)"},
    {"--sms-from-field", O_STR, offsetof(struct dcfg, sms.from_field),
     sizeof(((struct sms_cfg *)0)->from_field), 0, 0, "field of the sender (from)"},
    {"--sms-ca-file", O_STR, offsetof(struct dcfg, sms.ca_file),
     sizeof(((struct sms_cfg *)0)->ca_file), 0, 0, "CA bundle for the SMS gateway"},
    N(sms_max_segments, 1, 10, "texts needing more segments fail (4)"),
    N(send_timeout_s, 1, 600, "one send at most, seconds (60)"),
    N(lease_s, 10, 3600, "lease time, seconds (300)"),
    N(batch, 1, 500, "items per lease (20)"),
    N(poll_ms, 50, 600000, "wait when the outbox is empty (2000)"),
    N(retry_base_s, 1, 86400, "first retry after, seconds; doubles per attempt (30)"),
    N(retry_max_s, 1, 86400, "longest wait between retries, seconds (3600)"),
    N(max_attempts, 1, 1000, "a transient failure is final after this many attempts (50)"),
    N(once, 0, 1, "1: exit once the outbox is empty (0)"),
    S(metrics_file, "write Prometheus metrics to this file (none)"),
    S(log_level, "error | warn | info | debug (info)"),
};
#define NDOPTS (sizeof dopts / sizeof dopts[0])

static void defaults(struct dcfg *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->templates, sizeof c->templates, "%s", PARLEY_TEMPLATE_DIR_DEFAULT);
    strcpy(c->default_language, "en");
    strcpy(c->smtp_tls, "starttls");
    strcpy(c->sms_format, "json");
    strcpy(c->sms_auth, "none");
    strcpy(c->log_level, "info");
    strcpy(c->smtp.from_name, "Parley");
    strcpy(c->sms.to_field, "to");
    strcpy(c->sms.text_field, "text");
    strcpy(c->sms.from_field, "from");
    c->smtp_port = 587;
    c->sms_max_segments = 4;
    c->send_timeout_s = 60;
    c->lease_s = 300;
    c->batch = 20;
    c->poll_ms = 2000;
    c->retry_base_s = 30;
    c->retry_max_s = 3600;
    c->max_attempts = 50;
}

static bool flag_is(const char *flag, const char *arg)
{
    for (; *flag && *arg; flag++, arg++)
        if (*flag != *arg && !(*flag == '_' && *arg == '-')) return false;
    return !*flag && !*arg;
}

static int set(struct dcfg *c, const struct dopt *o, const char *v, const char *from)
{
    char *base = (char *)c;
    if (o->kind == O_STR) {
        if (strlen(v) >= o->cap) {
            fprintf(stderr, "parleyd deliver: %s (%s): value too long\n", o->flag + 2, from);
            return -1;
        }
        strcpy(base + o->off, v);
        return 0;
    }
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || !*v || *end || n < o->min || n > o->max) {
        fprintf(stderr, "parleyd deliver: %s (%s): must be an integer from %ld to %ld\n",
                o->flag + 2, from, o->min, o->max);
        return -1;
    }
    *(long *)(base + o->off) = n;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: parleyd deliver [options]\n"
                    "Every option is also an environment variable: --smtp-host is "
                    "PARLEY_SMTP_HOST.\n");
    for (size_t i = 0; i < NDOPTS; i++) {
        char f[64];
        snprintf(f, sizeof f, "%s", dopts[i].flag);
        for (char *p = f; *p; p++)
            if (*p == '_') *p = '-';
        fprintf(stderr, "  %-24s %s\n", f, dopts[i].help);
    }
}

/* Environment (PARLEY_NAME), then flags. */
static int load_args(struct dcfg *c, int argc, char **argv)
{
    for (size_t i = 0; i < NDOPTS; i++) {
        char env[64];
        int n = snprintf(env, sizeof env, "PARLEY_");
        for (const char *p = dopts[i].flag + 2; *p && n < 62; p++)
            env[n++] = *p == '-' || *p == '_' ? '_' : (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        env[n] = 0;
        const char *v = getenv(env);
        if (v && set(c, &dopts[i], v, env)) return -1;
    }
    for (int a = 0; a < argc; a++) {
        if (!strcmp(argv[a], "--help") || !strcmp(argv[a], "-h")) {
            usage();
            return 1;
        }
        const struct dopt *o = NULL;
        for (size_t i = 0; i < NDOPTS; i++)
            if (flag_is(dopts[i].flag, argv[a])) o = &dopts[i];
        if (!o || a + 1 >= argc) {
            fprintf(stderr, "parleyd deliver: %s: %s\n", argv[a],
                    o ? "needs a value" : "unknown option (see --help)");
            return -1;
        }
        if (set(c, o, argv[++a], "flag")) return -1;
    }
    return 0;
}

/* The first line of a file; the secret never reaches a log. */
static int read_secret(const char *path, char *out, size_t cap, const char *what)
{
    FILE *f = fopen(path, "r");
    bool ok = f && fgets(out, (int)cap, f);
    if (f) fclose(f);
    if (ok) out[strcspn(out, "\r\n")] = 0;
    if (!ok || !out[0]) {
        fprintf(stderr, "parleyd deliver: %s: cannot read %s\n", what, path);
        return -1;
    }
    return 0;
}

static int bad(const char *setting, const char *why)
{
    fprintf(stderr, "parleyd deliver: %s: %s\n", setting, why);
    return -1;
}

static int validate(struct dcfg *c)
{
    if (!c->gateway[0]) return bad("gateway", "required");
    if (strncmp(c->gateway, "http://", 7) && strncmp(c->gateway, "https://", 8))
        return bad("gateway", "must start with http:// or https://");
    if (!c->web_url[0]) return bad("web-url", "required (links point to the web client)");
    if (strncmp(c->web_url, "http://", 7) && strncmp(c->web_url, "https://", 8))
        return bad("web-url", "must start with http:// or https://");
    size_t w = strlen(c->web_url);
    while (w && c->web_url[w - 1] == '/')
        c->web_url[--w] = 0;
    if (!c->operator_token_file[0]) return bad("operator-token-file", "required");
    if (read_secret(c->operator_token_file, c->operator_token, sizeof c->operator_token,
                    "operator-token-file"))
        return -1;
    if (!c->smtp_host[0] && !c->sms_url[0])
        return bad("smtp-host", "set it, or sms-url, or both: nothing to deliver with");
    if (c->smtp_host[0]) {
        snprintf(c->smtp.host, sizeof c->smtp.host, "%s", c->smtp_host);
        c->smtp.port = (int)c->smtp_port;
        if (!strcmp(c->smtp_tls, "starttls"))
            c->smtp.tls = SMTP_STARTTLS;
        else if (!strcmp(c->smtp_tls, "implicit"))
            c->smtp.tls = SMTP_IMPLICIT;
        else if (!strcmp(c->smtp_tls, "none"))
            c->smtp.tls = SMTP_NONE;
        else
            return bad("smtp-tls", "must be starttls, implicit or none");
        if (!strchr(c->smtp.from, '@') || strpbrk(c->smtp.from, "<> \r\n"))
            return bad("mail-from", "required for email: an address like parley@example.com");
        if (c->smtp.reply_to[0] &&
            (!strchr(c->smtp.reply_to, '@') || strpbrk(c->smtp.reply_to, "<> \r\n")))
            return bad("mail-reply-to", "must be an address");
        if (strpbrk(c->smtp.from_name, "\r\n")) return bad("mail-from-name", "one line");
        if (c->smtp_password_file[0] && read_secret(c->smtp_password_file, c->smtp.password,
                                                    sizeof c->smtp.password, "smtp-password-file"))
            return -1;
        if (c->smtp.user[0] && !c->smtp.password[0])
            return bad("smtp-password-file", "required with smtp-user");
        c->smtp.timeout_s = c->send_timeout_s;
    }
    if (c->sms_url[0]) {
        if (strncmp(c->sms_url, "http://", 7) && strncmp(c->sms_url, "https://", 8))
            return bad("sms-url", "must start with http:// or https://");
        snprintf(c->sms.url, sizeof c->sms.url, "%s", c->sms_url);
        if (!strcmp(c->sms_format, "json"))
            c->sms.format = SMS_JSON;
        else if (!strcmp(c->sms_format, "form"))
            c->sms.format = SMS_FORM;
        else
            return bad("sms-format", "must be json or form");
        if (!strcmp(c->sms_auth, "none"))
            c->sms.auth = SMS_AUTH_NONE;
        else if (!strcmp(c->sms_auth, "bearer"))
            c->sms.auth = SMS_AUTH_BEARER;
        else if (!strcmp(c->sms_auth, "basic"))
            c->sms.auth = SMS_AUTH_BASIC;
        else
            return bad("sms-auth", "must be none, bearer or basic");
        if (c->sms.auth != SMS_AUTH_NONE &&
            (!c->sms_credential_file[0] ||
             read_secret(c->sms_credential_file, c->sms.credential, sizeof c->sms.credential,
                         "sms-credential-file")))
            return bad("sms-credential-file", "required with sms-auth bearer or basic");
        if (c->sms.auth == SMS_AUTH_BASIC && !strchr(c->sms.credential, ':'))
            return bad("sms-credential-file", "basic needs user:password");
        c->sms.timeout_s = c->send_timeout_s;
    }
    /* A send must end well inside its lease, or another deliverer could
     * take the item while we are still sending it. */
    if (c->send_timeout_s * 2 + 5 > c->lease_s)
        return bad("lease-s", "must be more than twice send-timeout-s plus 5 seconds");
    enum log_level l;
    if (log_parse_level(c->log_level, &l)) return bad("log-level", "error, warn, info or debug");
    log_set_level(l);
    return 0;
}

int dconfig_load(struct dcfg *c, int argc, char **argv)
{
    defaults(c);
    int rc = load_args(c, argc, argv);
    if (rc) return rc;
    return validate(c);
}
