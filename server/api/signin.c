#include "signin.h"

#include "apireq.h"
#include "app.h"
#include "auth.h"
#include "bus.h"
#include "http.h"
#include "mem.h"
#include "pwpolicy.h"
#include "sql_account.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "apisql.h"

/* ---- sessions, secrets and password hashing ------------------------------ */

/* z for statements that create a session: "<hash hex> <ttl hours>". */
static void session_z(struct http_req *r, char *z, size_t cap)
{
    char hx[AUTH_HASH_BYTES * 2 + 1];
    apireq_mint(r, hx);
    snprintf(z, cap, "%s %u", hx, r->app->cfg.session_ttl_h);
}

/* A secret that proves an address: its text goes only to the outbox, its
 * hash to verifications. Writes "<hash hex> <secret>" into out. */
void signin_address_secret(char *out, size_t cap)
{
    char text[AUTH_TOKEN_CHARS + 1], hx[AUTH_HASH_BYTES * 2 + 1];
    unsigned char h[AUTH_HASH_BYTES];
    auth_token_new(text, h);
    apireq_hex(h, sizeof h, hx);
    snprintf(out, cap, "%s %s", hx, text);
    sodium_memzero(text, sizeof text);
}

/* Runs an account statement: actor is r->person (or NULL), y the password
 * hash, z route-specific; the body goes without its password. */
static void run_with_hash(struct http_req *r, enum account_stmt s, const char *pwhash,
                          const char *z, db_cb cb)
{
    char ua[64];
    snprintf(ua, sizeof ua, "%s|%s", r->os, r->browser);
    /* The password never travels to PostgreSQL, only its hash. */
    cJSON *pw = cJSON_GetObjectItemCaseSensitive(r->json, "password");
    if (pw) sodium_memzero(pw->valuestring, strlen(pw->valuestring));
    cJSON_DeleteItemFromObjectCaseSensitive(r->json, "password");
    char *body = cJSON_PrintUnformatted(r->json);
    const char *v[NPARAMS] = {r->person[0] ? r->person : NULL,
                              NULL,
                              NULL,
                              NULL,
                              body ? body : "{}",
                              "",
                              pwhash,
                              z,
                              r->ip,
                              ua};
    apireq_query(r, stmts_at(&sql_account, s), NPARAMS, v, NULL, NULL, cb);
    mem_free(body);
}

static void pw_busy(struct http_req *r)
{
    apireq_retry_later(r, "busy", "too many sign-ins in progress, retry later");
}

/* After handing a hash or a check (rc) to the thread pool: the request is
 * busy until its completion, or answered now (busy pool: 503; else 500). */
static void pw_started(struct http_req *r, int rc)
{
    if (!rc)
        r->busy = true;
    else if (rc == -EBUSY)
        pw_busy(r);
    else
        http_error(r, 500, "internal", "could not hash or check the password", NULL);
}

/* 400 weak_password naming the rule, or false when pw may be used. */
static bool refuse_weak(struct http_req *r, const char *pw, const struct pw_context *ctx)
{
    char msg[200];
    if (!pwpolicy_check(pw, ctx, msg, sizeof msg)) return false;
    http_error(r, 400, "weak_password", msg, "password");
    return true;
}

static void on_signup_hash(void *ud, int rc, const char *hash)
{
    struct http_req *r = ud;
    if (!http_alive(r)) return;
    if (rc || !hash) {
        http_error(r, 500, "internal", "could not hash the password", NULL);
        return;
    }
    char z[200], sec[160];
    signin_address_secret(sec, sizeof sec);
    snprintf(z, sizeof z, "%s %u", sec, r->app->cfg.verify_ttl_h);
    sodium_memzero(sec, sizeof sec);
    run_with_hash(r, SA_SIGNUP, hash, z, apireq_on_stmt);
    sodium_memzero(z, sizeof z);
}

/* Sign-up hashes the password whether or not the address has an account,
 * so neither the answer nor its timing tells which. */
static void signup_hash(struct http_req *r)
{
    const char *pw = apireq_jstr(r, "password");
    struct pw_context ctx = {apireq_jstr(r, "email"), apireq_jstr(r, "first_name"),
                             apireq_jstr(r, "last_name")};
    if (refuse_weak(r, pw, &ctx)) return;
    pw_started(r, auth_password_hash_async(r->app->loop, pw, strlen(pw), on_signup_hash, r));
}

static void resend_run(struct http_req *r)
{
    char z[200], sec[160];
    signin_address_secret(sec, sizeof sec);
    snprintf(z, sizeof z, "%s %u", sec, r->app->cfg.verify_ttl_h);
    sodium_memzero(sec, sizeof sec);
    run_with_hash(r, SA_RESEND, NULL, z, apireq_on_stmt);
    sodium_memzero(z, sizeof z);
}

/* ---- rate limits (Redis) ------------------------------------------------- */

/* Rate limits live in Redis, shared by every gateway, each over a fixed
 * window: sign-in attempts per account and client IP together (so that one
 * address guessing cannot lock the owner out of their account) and per
 * client IP; sign-ups and verification resends per client IP. Every attempt
 * counts before the password is checked (so parallel guesses are limited
 * too); a success clears the account's counter for that IP and gives the IP
 * its attempt back. */
static const char limit_lua[] = "local w = tonumber(ARGV[1])\n"
                                "for i = 1, #KEYS do\n"
                                "  local n = redis.call('INCR', KEYS[i])\n"
                                "  if n == 1 then redis.call('PEXPIRE', KEYS[i], w) end\n"
                                "  if n > tonumber(ARGV[i + 1]) then\n"
                                "    local t = redis.call('PTTL', KEYS[i])\n"
                                "    if t < 0 then redis.call('PEXPIRE', KEYS[i], w); t = w end\n"
                                "    return t\n"
                                "  end\n"
                                "end\n"
                                "return 0\n";

/* What r->scratch[0] holds while a limit is checked: which step follows. */
#define LIMIT_SIGNUP 'S'
#define LIMIT_RESEND 'V'

/* Sign-ups and resends count in their own per-IP bucket, so that creating
 * accounts does not spend the sign-in attempts of everyone behind the same
 * address. */
static void limit_keys(struct http_req *r, const char *email, char *acct, char *ip, size_t cap)
{
    unsigned char h[16];
    char hx[33];
    crypto_generichash(h, sizeof h, (const unsigned char *)email, strlen(email), NULL, 0);
    apireq_hex(h, sizeof h, hx);
    /* One script reads both keys: the address is their hash tag, so on a
     * Redis Cluster they share a slot. */
    snprintf(acct, cap, "parley:rl:login:acct:%s:{%s}", hx, r->ip);
    bool signup = r->scratch[0] == LIMIT_SIGNUP || r->scratch[0] == LIMIT_RESEND;
    snprintf(ip, cap, "parley:rl:%s:ip:{%s}", signup ? "signup" : "login", r->ip);
}

static void ignore_reply(void *ud, const void *reply)
{
    (void)ud;
    (void)reply;
}

static void limit_success(struct http_req *r, const char *email)
{
    char acct[160], ip[160];
    limit_keys(r, email, acct, ip, sizeof acct);
    const char *a1[2] = {"DEL", acct}, *a2[2] = {"DECR", ip};
    size_t l1[2] = {3, strlen(acct)}, l2[2] = {4, strlen(ip)};
    bus_call(r->app->bus, ignore_reply, NULL, 2, a1, l1);
    bus_call(r->app->bus, ignore_reply, NULL, 2, a2, l2);
}

static void login_lookup(struct http_req *r);

static void on_limit(void *ud, const void *reply)
{
    struct http_req *r = ud;
    const redisReply *rep = reply;
    if (!http_alive(r)) return;
    if (!rep || rep->type != REDIS_REPLY_INTEGER) {
        /* Without the counters there is no brute-force protection: refuse
         * rather than let guesses through unlimited. */
        apireq_retry_later(r, "unavailable", "sign-in temporarily unavailable, retry later");
        return;
    }
    if (rep->integer > 0) {
        r->app->stats.logins_limited++;
        r->retry_after = (unsigned)((rep->integer + 999) / 1000);
        http_error(r, 429, "rate_limited", "too many attempts, retry later", NULL);
        return;
    }
    char step = r->scratch[0];
    r->scratch[0] = 0;
    if (step == LIMIT_SIGNUP)
        signup_hash(r);
    else if (step == LIMIT_RESEND)
        resend_run(r);
    else
        login_lookup(r);
}

static void check_limit(struct http_req *r, const char *email, bool with_account)
{
    struct app *a = r->app;
    char acct[160], ip[160], win[16], ma[16], mi[16];
    limit_keys(r, email, acct, ip, sizeof acct);
    snprintf(win, sizeof win, "%u", a->cfg.login_window_s * 1000u);
    snprintf(ma, sizeof ma, "%u", a->cfg.login_max_account);
    snprintf(mi, sizeof mi, "%u", with_account ? a->cfg.login_max_ip : a->cfg.signup_max_ip);
    const char *argv[8];
    size_t lens[8];
    int n = 0;
    argv[n++] = "EVAL";
    argv[n++] = limit_lua;
    argv[n++] = with_account ? "2" : "1";
    if (with_account) argv[n++] = acct;
    argv[n++] = ip;
    argv[n++] = win;
    if (with_account) argv[n++] = ma;
    argv[n++] = mi;
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    int rc = bus_call(a->bus, on_limit, r, n, argv, lens);
    if (rc) {
        apireq_retry_later(r, "unavailable", "sign-in temporarily unavailable, retry later");
        return;
    }
    r->busy = true;
}

/* ---- sign-up and verification -------------------------------------------- */

void signin_signup(struct http_req *r)
{
    r->scratch[0] = LIMIT_SIGNUP;
    check_limit(r, apireq_jstr(r, "email"), false);
}

void signin_resend(struct http_req *r)
{
    r->scratch[0] = LIMIT_RESEND;
    check_limit(r, apireq_jstr(r, "email"), false);
}

/* Only a sign-up's answer (201) carries the session minted for it; a
 * confirmed change of address mints nothing. */
static void on_verify(void *ud, PGresult *res, int err)
{
    struct http_req *r = ud;
    if (!err && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
        atoi(PQgetvalue(res, 0, 0)) != 201)
        sodium_memzero(r->scratch, sizeof r->scratch);
    apireq_on_stmt(ud, res, err);
}

void signin_verify(struct http_req *r)
{
    const char *tok = apireq_jstr(r, "token");
    unsigned char h[AUTH_HASH_BYTES];
    if (auth_token_hash(tok, strlen(tok), h)) {
        http_error(r, 404, "verification_invalid",
                   "verification secret not found, expired or already used", NULL);
        return;
    }
    char hx[AUTH_HASH_BYTES * 2 + 1], sz[160], z[240];
    apireq_hex(h, sizeof h, hx);
    session_z(r, sz, sizeof sz);
    snprintf(z, sizeof z, "%s %s", hx, sz);
    cJSON_DeleteItemFromObjectCaseSensitive(r->json, "token");
    r->not_found_code = "verification_invalid";
    run_with_hash(r, SA_VERIFY, NULL, z, on_verify);
}

/* ---- login --------------------------------------------------------------- */

void signin_login(struct http_req *r)
{
    check_limit(r, apireq_jstr(r, "email"), true);
}

static void on_verified(void *ud, int rc, const char *newhash)
{
    struct http_req *r = ud;
    struct app *a = r->app;
    if (!http_alive(r)) return;
    if (rc) {
        a->stats.logins_failed++;
        http_error(r, 401, "invalid_credentials", "wrong email or password", NULL);
        return;
    }
    a->stats.logins_ok++;
    limit_success(r, apireq_jstr(r, "email"));
    char z[160];
    session_z(r, z, sizeof z);
    run_with_hash(r, SA_LOGIN_FINISH, newhash, z, apireq_on_stmt);
}

static void on_lookup(void *ud, PGresult *res, int err)
{
    struct http_req *r = ud;
    if (!apireq_rows(r, res, err)) return;
    /* An unknown email costs the same hash as a known one. */
    const char *stored = NULL;
    if (PQntuples(res) == 1) {
        snprintf(r->person, sizeof r->person, "%s", PQgetvalue(res, 0, 0));
        stored = PQgetvalue(res, 0, 1);
    }
    const char *pw = apireq_jstr(r, "password");
    pw_started(r, auth_password_verify_async(r->app->loop, stored, pw, strlen(pw), on_verified, r));
}

static void login_lookup(struct http_req *r)
{
    const char *v[1] = {apireq_jstr(r, "email")};
    apireq_query(r, stmts_at(&sql_account, SA_LOGIN_LOOKUP), 1, v, NULL, NULL, on_lookup);
}

/* ---- redeeming an invitation --------------------------------------------- */

/* Redeems the invitation whose hash is in r->secret: for r->person (an
 * existing account already proven) or, when empty, for a new account with
 * pwhash (or none). Only a new account gets a session. */
static void redeem_run(struct http_req *r, const char *pwhash)
{
    char ihx[AUTH_HASH_BYTES * 2 + 1], shx[160], z[240];
    apireq_hex(r->secret, sizeof r->secret, ihx);
    if (r->person[0])
        snprintf(shx, sizeof shx, "- 0");
    else
        session_z(r, shx, sizeof shx);
    snprintf(z, sizeof z, "%s %s", ihx, shx);
    cJSON_DeleteItemFromObjectCaseSensitive(r->json, "token");
    r->not_found_code = "invitation_invalid";
    run_with_hash(r, SA_REDEEM, pwhash, z, apireq_on_stmt);
}

static void on_redeem_hash(void *ud, int rc, const char *hash)
{
    struct http_req *r = ud;
    if (!http_alive(r)) return;
    if (rc || !hash) {
        http_error(r, 500, "internal", "could not hash the password", NULL);
        return;
    }
    redeem_run(r, hash);
}

static void on_redeem_password(void *ud, int rc, const char *newhash)
{
    struct http_req *r = ud;
    (void)newhash; /* a rehash waits for the next login */
    if (!http_alive(r)) return;
    if (rc) {
        r->app->stats.logins_failed++;
        http_error(r, 401, "invalid_credentials", "wrong password for the account of this address",
                   "password");
        return;
    }
    redeem_run(r, NULL);
}

/* Who holds the invited address decides: nobody, a new account (the secret
 * proves the address); an account, its password or a session of it, never
 * the secret alone (an address is no proof of who owns an account). */
static void on_redeem_lookup(void *ud, PGresult *res, int err)
{
    struct http_req *r = ud;
    if (!apireq_rows(r, res, err)) return;
    if (PQntuples(res) == 0) {
        http_error(r, 404, "invitation_invalid", "invitation not found, expired or already used",
                   NULL);
        return;
    }
    const char *pw = apireq_jstr(r, "password");
    int rc;
    if (PQgetisnull(res, 0, 4)) {
        if (!pw) {
            redeem_run(r, NULL);
            return;
        }
        const char *first = apireq_jstr(r, "first_name"), *last = apireq_jstr(r, "last_name");
        struct pw_context ctx = {
            PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0),
            first ? first : (PQgetisnull(res, 0, 2) ? NULL : PQgetvalue(res, 0, 2)),
            last ? last : (PQgetisnull(res, 0, 3) ? NULL : PQgetvalue(res, 0, 3))};
        if (refuse_weak(r, pw, &ctx)) return;
        rc = auth_password_hash_async(r->app->loop, pw, strlen(pw), on_redeem_hash, r);
    } else {
        snprintf(r->person, sizeof r->person, "%s", PQgetvalue(res, 0, 4));
        if (PQgetvalue(res, 0, 6)[0] == 't') {
            redeem_run(r, NULL);
            return;
        }
        if (!pw) {
            http_error(r, 401, "password_required",
                       "this address belongs to an account: give its password or sign in",
                       "password");
            return;
        }
        const char *stored = PQgetisnull(res, 0, 5) ? NULL : PQgetvalue(res, 0, 5);
        rc =
            auth_password_verify_async(r->app->loop, stored, pw, strlen(pw), on_redeem_password, r);
    }
    pw_started(r, rc);
}

void signin_redeem(struct http_req *r)
{
    const char *tok = apireq_jstr(r, "token");
    if (auth_token_hash(tok, strlen(tok), r->secret)) {
        http_error(r, 404, "invitation_invalid", "invitation not found, expired or already used",
                   NULL);
        return;
    }
    bool session = r->has_token && !r->bad_token;
    const char *v[2] = {(const char *)r->secret, session ? (const char *)r->token_hash : NULL};
    int len[2] = {AUTH_HASH_BYTES, session ? AUTH_HASH_BYTES : 0}, fmt[2] = {1, 1};
    apireq_query(r, stmts_at(&sql_account, SA_REDEEM_LOOKUP), 2, v, len, fmt, on_redeem_lookup);
}
