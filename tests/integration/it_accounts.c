/* Integration: an address grants nothing until its owner proves it (issue
 * 14) - sign-up through a verification secret in the outbox, sign-up that
 * does not reveal a registered address, invitation takeover by a squatted or
 * changed address, email changes confirmed before they count, avatars
 * without addresses, refused passwords, and a sign-in limit that one
 * attacker's address cannot use to lock the owner out. Real PostgreSQL,
 * Redis and both gateways; the tests play the operator's mailer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpc.h"
#include "itest.h"

/* Sign-in attempts are limited per source address: this program's own. */
#define SRC "127.0.7.1"
#define PW "correct horse battery staple"

static int seq;

struct acct {
    char email[96];
    char token[64];
    char id[40];
};

static void fresh_email(char *out, size_t cap, const char *tag)
{
    snprintf(out, cap, "%s-%d-%d@client.example", tag, getpid(), ++seq);
}

static void account(struct acct *a, const char *tag)
{
    fresh_email(a->email, sizeof a->email, tag);
    it_signup(SRC, a->email, PW, NULL, a->token, a->id);
}

static void expect_error(struct hres r, int status, const char *code)
{
    if (r.status != status || strcmp(hres_str(&r, "error.code"), code))
        fprintf(stderr, "expected %d %s, got %d %s\n", status, code, r.status, r.body);
    assert_int_equal(r.status, status);
    assert_string_equal(hres_str(&r, "error.code"), code);
    hres_free(&r);
}

static struct hres post(const char *path, const char *tok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static struct hres post(const char *path, const char *tok, const char *fmt, ...)
{
    char body[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof body, fmt, ap);
    va_end(ap);
    return http_req(IT.gw[0], SRC, "POST", path, tok, body);
}

static void workspace(const struct acct *owner, char ws[40])
{
    struct hres r = http_req(IT.gw[0], NULL, "POST", "/api/v1/workspaces", owner->token,
                             "{\"name\":\"Accounts test\"}");
    assert_int_equal(r.status, 201);
    snprintf(ws, 40, "%s", hres_str(&r, "id"));
    hres_free(&r);
}

/* Invites email to ws as admin and returns the secret the mailer delivers. */
static void invite(const struct acct *owner, const char *ws, const char *email, char tok[64])
{
    char body[256];
    long oid;
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"role\":\"admin\"}", email);
    struct hres r = http_reqf(IT.gw[0], NULL, "POST", owner->token, body,
                              "/api/v1/workspaces/%s/invitations", ws);
    assert_int_equal(r.status, 201);
    hres_free(&r);
    assert_true(it_outbox_take(email, "invitation", tok, &oid));
    assert_int_equal(strlen(tok), 43);
}

static const char *role_of(const char *ws, const char *person)
{
    return it_sqlf("SELECT coalesce((SELECT role FROM workspace_members WHERE workspace_id = '%s'"
                   " AND person_id = '%s'), 'none')",
                   ws, person);
}

/* ---- sign-up and verification -------------------------------------------- */

static void signup_creates_the_account_only_when_the_address_is_proven(void **state)
{
    (void)state;
    char email[96], tok[64];
    long oid;
    fresh_email(email, sizeof email, "Fresh");
    struct hres r =
        post("/api/v1/auth/signup", NULL,
             "{\"email\":\"%s\",\"password\":\"" PW "\",\"first_name\":\"Fay\"}", email);
    assert_int_equal(r.status, 202);
    assert_string_equal(hres_str(&r, "status"), "verification_sent");
    assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "token"));
    hres_free(&r);
    for (char *c = email; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    /* Nothing holds the address yet: no account, and its password does not sign in. */
    assert_string_equal(it_sqlf("SELECT count(*) FROM people WHERE email = '%s'", email), "0");
    expect_error(
        post("/api/v1/auth/login", NULL, "{\"email\":\"%s\",\"password\":\"" PW "\"}", email), 401,
        "invalid_credentials");
    /* The secret travels through the outbox only, stored hashed. */
    assert_true(it_outbox_take(email, "verification", tok, &oid));
    assert_int_equal(strlen(tok), 43);
    assert_string_equal(it_sqlf("SELECT payload->>'purpose' FROM outbox WHERE id = %ld", oid),
                        "signup");
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM verifications WHERE encode(hash, 'escape') LIKE '%%%s%%'",
                tok),
        "0");
    /* A wrong or malformed secret finds nothing. */
    expect_error(post("/api/v1/auth/verify", NULL,
                      "{\"token\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}"),
                 404, "verification_invalid");
    expect_error(post("/api/v1/auth/verify", NULL, "{\"token\":\"short\"}"), 404,
                 "verification_invalid");
    /* The secret makes the account, verified, and signs it in. */
    r = post("/api/v1/auth/verify", NULL, "{\"token\":\"%s\"}", tok);
    assert_int_equal(r.status, 201);
    assert_int_equal(strlen(hres_str(&r, "token")), 43);
    cJSON *p = cJSON_GetObjectItemCaseSensitive(r.json, "person");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "email")->valuestring, email);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "first_name")->valuestring, "Fay");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "email_verified")));
    char session[64];
    snprintf(session, sizeof session, "%s", hres_str(&r, "token"));
    hres_free(&r);
    r = http_req(IT.gw[1], NULL, "GET", "/api/v1/me", session, NULL);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    r = post("/api/v1/auth/login", NULL, "{\"email\":\"%s\",\"password\":\"" PW "\"}", email);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    /* Single use, and erased from the outbox once used. */
    expect_error(post("/api/v1/auth/verify", NULL, "{\"token\":\"%s\"}", tok), 404,
                 "verification_invalid");
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM outbox WHERE id = %ld AND payload ? 'token'", oid), "0");
    assert_string_equal(it_sqlf("SELECT count(*) FROM people WHERE email = '%s'", email), "1");
}

static void resend_replaces_the_secret(void **state)
{
    (void)state;
    char email[96], old[64], tok[64];
    long oid, oid2;
    fresh_email(email, sizeof email, "resend");
    struct hres r =
        post("/api/v1/auth/signup", NULL, "{\"email\":\"%s\",\"password\":\"" PW "\"}", email);
    assert_int_equal(r.status, 202);
    hres_free(&r);
    assert_true(it_outbox_take(email, "verification", old, &oid));
    r = post("/api/v1/auth/verify/resend", NULL, "{\"email\":\"%s\"}", email);
    assert_int_equal(r.status, 202);
    assert_string_equal(hres_str(&r, "status"), "verification_sent");
    hres_free(&r);
    assert_true(it_outbox_take(email, "verification", tok, &oid2));
    assert_true(oid2 > oid);
    assert_string_not_equal(tok, old);
    /* The earlier item is withdrawn and its secret no longer works. */
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM outbox WHERE id = %ld AND payload ? 'token'", oid), "0");
    expect_error(post("/api/v1/auth/verify", NULL, "{\"token\":\"%s\"}", old), 404,
                 "verification_invalid");
    r = post("/api/v1/auth/verify", NULL, "{\"token\":\"%s\"}", tok);
    assert_int_equal(r.status, 201);
    hres_free(&r);
    /* An address with nothing to verify: the same answer, and no mail. */
    char nobody[96];
    fresh_email(nobody, sizeof nobody, "nobody");
    r = post("/api/v1/auth/verify/resend", NULL, "{\"email\":\"%s\"}", nobody);
    assert_int_equal(r.status, 202);
    assert_string_equal(hres_str(&r, "status"), "verification_sent");
    hres_free(&r);
    assert_string_equal(it_sqlf("SELECT count(*) FROM outbox WHERE recipient = '%s'", nobody), "0");
}

static void signup_does_not_reveal_a_registered_address(void **state)
{
    (void)state;
    struct acct owner;
    account(&owner, "owner");
    char fresh[96];
    fresh_email(fresh, sizeof fresh, "unused");
    struct hres a = post("/api/v1/auth/signup", NULL,
                         "{\"email\":\"%s\",\"password\":\"another long secret 7\"}", owner.email);
    struct hres b = post("/api/v1/auth/signup", NULL,
                         "{\"email\":\"%s\",\"password\":\"another long secret 7\"}", fresh);
    /* The same status, body and type for both. */
    assert_int_equal(a.status, 202);
    assert_int_equal(b.status, a.status);
    assert_string_equal(a.body, b.body);
    assert_string_equal(a.ctype, b.ctype);
    hres_free(&a);
    hres_free(&b);
    /* The owner hears of it through the outbox, with no secret; the account
     * and its password are untouched. */
    char tok[64];
    long oid;
    assert_true(it_outbox_take(owner.email, "address_in_use", tok, &oid));
    assert_string_equal(tok, "");
    assert_false(it_outbox_take(owner.email, "verification", tok, &oid));
    a = post("/api/v1/auth/login", NULL, "{\"email\":\"%s\",\"password\":\"" PW "\"}", owner.email);
    assert_int_equal(a.status, 200);
    hres_free(&a);
    expect_error(post("/api/v1/auth/login", NULL,
                      "{\"email\":\"%s\",\"password\":\"another long secret 7\"}", owner.email),
                 401, "invalid_credentials");
}

/* ---- invitation takeover ------------------------------------------------- */

static void squatting_an_address_at_signup_gains_no_role(void **state)
{
    (void)state;
    struct acct owner;
    account(&owner, "consultant");
    char ws[40], ceo[96], tok[64];
    workspace(&owner, ws);
    fresh_email(ceo, sizeof ceo, "ceo");
    /* The attacker signs up first with the CEO's address... */
    struct hres r = post("/api/v1/auth/signup", NULL,
                         "{\"email\":\"%s\",\"password\":\"attacker chose this 1\"}", ceo);
    assert_int_equal(r.status, 202);
    hres_free(&r);
    expect_error(post("/api/v1/auth/login", NULL,
                      "{\"email\":\"%s\",\"password\":\"attacker chose this 1\"}", ceo),
                 401, "invalid_credentials");
    /* ... the real CEO is invited as admin and redeems: a new account of
     * their own, and the attacker's password opens nothing. */
    invite(&owner, ws, ceo, tok);
    r = post("/api/v1/invitations/redeem", NULL,
             "{\"token\":\"%s\",\"password\":\"the real ceo password 9\"}", tok);
    assert_int_equal(r.status, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "new_account")));
    char pid[40];
    snprintf(pid, sizeof pid, "%s", hres_str(&r, "person_id"));
    hres_free(&r);
    assert_string_equal(role_of(ws, pid), "admin");
    assert_string_equal(
        it_sqlf("SELECT email_verified_at IS NOT NULL FROM people WHERE id = '%s'", pid), "t");
    expect_error(post("/api/v1/auth/login", NULL,
                      "{\"email\":\"%s\",\"password\":\"attacker chose this 1\"}", ceo),
                 401, "invalid_credentials");
    /* The attacker's pending sign-up can no longer make an account. */
    char vt[64];
    long oid;
    assert_true(it_outbox_take(ceo, "verification", vt, &oid));
    expect_error(post("/api/v1/auth/verify", NULL, "{\"token\":\"%s\"}", vt), 409, "conflict");
}

static void redeeming_for_an_existing_account_needs_its_password(void **state)
{
    (void)state;
    struct acct owner, ina;
    account(&owner, "consultant");
    account(&ina, "ina");
    char ws[40], ws2[40], tok[64];
    workspace(&owner, ws);
    invite(&owner, ws, ina.email, tok);
    /* The secret alone does not bind a role to the account, nor sign it in. */
    expect_error(post("/api/v1/invitations/redeem", NULL, "{\"token\":\"%s\"}", tok), 401,
                 "password_required");
    expect_error(post("/api/v1/invitations/redeem", NULL,
                      "{\"token\":\"%s\",\"password\":\"not the password 1\"}", tok),
                 401, "invalid_credentials");
    assert_string_equal(role_of(ws, ina.id), "none");
    const char *before =
        it_sqlf("SELECT count(*) FROM access_tokens WHERE person_id = '%s'", ina.id);
    char ntok[16];
    snprintf(ntok, sizeof ntok, "%s", before);
    /* With the account's password: the role, and no new token (the person
     * signs in as usual; a token minted here would open all their
     * workspaces to whoever held the invitation). */
    struct hres r =
        post("/api/v1/invitations/redeem", NULL, "{\"token\":\"%s\",\"password\":\"" PW "\"}", tok);
    assert_int_equal(r.status, 200);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r.json, "new_account")));
    assert_string_equal(hres_str(&r, "person_id"), ina.id);
    assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "token"));
    hres_free(&r);
    assert_string_equal(role_of(ws, ina.id), "admin");
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM access_tokens WHERE person_id = '%s'", ina.id), ntok);
    /* Or with a session of that account (and only that account). */
    workspace(&owner, ws2);
    invite(&owner, ws2, ina.email, tok);
    expect_error(post("/api/v1/invitations/redeem", owner.token, "{\"token\":\"%s\"}", tok), 401,
                 "password_required");
    r = post("/api/v1/invitations/redeem", ina.token, "{\"token\":\"%s\"}", tok);
    assert_int_equal(r.status, 200);
    assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "token"));
    hres_free(&r);
    assert_string_equal(role_of(ws2, ina.id), "admin");
}

static void an_email_change_counts_only_once_confirmed(void **state)
{
    (void)state;
    struct acct owner, mallory, victim;
    account(&owner, "consultant");
    account(&mallory, "mallory");
    char ws[40], cfo[96], tok[64], vt[64];
    long oid;
    workspace(&owner, ws);
    fresh_email(cfo, sizeof cfo, "cfo");
    /* Mallory sets the CFO's address on her account: it stays pending. */
    char body[256];
    snprintf(body, sizeof body, "{\"email\":\"%s\"}", cfo);
    struct hres r = http_req(IT.gw[0], NULL, "PATCH", "/api/v1/me", mallory.token, body);
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "email"), mallory.email);
    assert_string_equal(hres_str(&r, "pending_email"), cfo);
    hres_free(&r);
    /* The CFO is invited and redeems: their own account, not Mallory's. */
    invite(&owner, ws, cfo, tok);
    r = post("/api/v1/invitations/redeem", NULL,
             "{\"token\":\"%s\",\"password\":\"cfo password here 3\"}", tok);
    assert_int_equal(r.status, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "new_account")));
    hres_free(&r);
    assert_string_equal(role_of(ws, mallory.id), "none");
    /* Mallory's confirmation went to the CFO's mailbox; used now, the
     * address is taken. */
    assert_true(it_outbox_take(cfo, "verification", vt, &oid));
    assert_string_equal(it_sqlf("SELECT payload->>'purpose' FROM outbox WHERE id = %ld", oid),
                        "email");
    expect_error(post("/api/v1/auth/verify", NULL, "{\"token\":\"%s\"}", vt), 409, "conflict");
    assert_string_equal(it_sqlf("SELECT email FROM people WHERE id = '%s'", mallory.id),
                        mallory.email);
    /* A real change: pending until the secret sent to the new address comes back. */
    char mine[96];
    fresh_email(mine, sizeof mine, "victim-new");
    account(&victim, "victim");
    snprintf(body, sizeof body, "{\"email\":\"%s\"}", mine);
    r = http_req(IT.gw[0], NULL, "PATCH", "/api/v1/me", victim.token, body);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    assert_true(it_outbox_take(mine, "verification", vt, &oid));
    r = post("/api/v1/auth/verify", NULL, "{\"token\":\"%s\"}", vt);
    assert_int_equal(r.status, 200);
    assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "token"));
    hres_free(&r);
    r = http_req(IT.gw[1], NULL, "GET", "/api/v1/me", victim.token, NULL);
    assert_string_equal(hres_str(&r, "email"), mine);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "email_verified")));
    assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "pending_email") &&
                        cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r.json, "pending_email"))
                    ? "pending"
                    : NULL);
    hres_free(&r);
    /* An address of another account: the same answer, and a notice to its owner. */
    snprintf(body, sizeof body, "{\"email\":\"%s\"}", owner.email);
    r = http_req(IT.gw[0], NULL, "PATCH", "/api/v1/me", mallory.token, body);
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "pending_email"), owner.email);
    hres_free(&r);
    assert_true(it_outbox_take(owner.email, "address_in_use", tok, &oid));
    assert_string_equal(tok, "");
}

static void avatars_carry_no_address(void **state)
{
    (void)state;
    struct acct owner;
    account(&owner, "consultant");
    char ws[40], bot[40], bot_tok[64], body[256], email[96];
    workspace(&owner, ws);
    fresh_email(email, sizeof email, "bot");
    snprintf(body, sizeof body, "{\"name\":\"Bot\",\"email\":\"%s\"}", email);
    expect_error(
        http_reqf(IT.gw[0], NULL, "POST", owner.token, body, "/api/v1/workspaces/%s/avatars", ws),
        400, "unknown_field");
    struct hres r = http_reqf(IT.gw[0], NULL, "POST", owner.token, "{\"name\":\"Bot\"}",
                              "/api/v1/workspaces/%s/avatars", ws);
    assert_int_equal(r.status, 201);
    snprintf(bot, sizeof bot, "%s", hres_str(&r, "id"));
    hres_free(&r);
    expect_error(http_reqf(IT.gw[0], NULL, "PATCH", owner.token, body,
                           "/api/v1/workspaces/%s/avatars/%s", ws, bot),
                 400, "unknown_field");
    r = http_reqf(IT.gw[0], NULL, "POST", owner.token, "{}",
                  "/api/v1/workspaces/%s/avatars/%s/tokens", ws, bot);
    assert_int_equal(r.status, 201);
    snprintf(bot_tok, sizeof bot_tok, "%s", hres_str(&r, "token"));
    hres_free(&r);
    /* The avatar's own token cannot give it an address either. */
    snprintf(body, sizeof body, "{\"email\":\"%s\"}", email);
    expect_error(http_req(IT.gw[0], NULL, "PATCH", "/api/v1/me", bot_tok, body), 403, "forbidden");
    expect_error(
        http_req(IT.gw[0], NULL, "PATCH", "/api/v1/me", bot_tok, "{\"phone\":\"+4915112345678\"}"),
        403, "forbidden");
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM people WHERE id = '%s' AND email IS NULL AND phone IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM verifications WHERE person_id = '%s')",
                bot, bot),
        "1");
    r = http_req(IT.gw[0], NULL, "PATCH", "/api/v1/me", bot_tok, "{\"display_name\":\"Botty\"}");
    assert_int_equal(r.status, 200);
    hres_free(&r);
}

/* ---- passwords ----------------------------------------------------------- */

static void expect_weak(const char *path, const char *body, const char *rule)
{
    struct hres r = http_req(IT.gw[0], SRC, "POST", path, NULL, body);
    if (r.status != 400) fprintf(stderr, "%s %s -> %d %s\n", path, body, r.status, r.body);
    assert_int_equal(r.status, 400);
    assert_string_equal(hres_str(&r, "error.code"), "weak_password");
    assert_string_equal(hres_str(&r, "error.field"), "password");
    if (!strstr(hres_str(&r, "error.message"), rule))
        fprintf(stderr, "expected rule %s in %s\n", rule, r.body);
    assert_non_null(strstr(hres_str(&r, "error.message"), rule));
    hres_free(&r);
}

static void common_and_context_passwords_are_refused(void **state)
{
    (void)state;
    char email[96], body[512];
    snprintf(email, sizeof email, "gwendolyn.marsh%d@client.example", getpid());
    const char *bad[][2] = {
        {"qwertyuiop", "dictionary"},        /* a keyboard walk in every cracked list */
        {"password123", "dictionary"},       /* a dictionary word with digits */
        {"aaaaaaaaaaaaaa", "dictionary"},    /* too few different characters */
        {"Marsh-and-friends-77", "context"}, /* a piece of the email's local part */
        {"my parley login 2024", "context"}, /* the service's name */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"%s\"}", email, bad[i][0]);
        expect_weak("/api/v1/auth/signup", body, bad[i][1]);
    }
    /* The name given with it. */
    snprintf(
        body, sizeof body,
        "{\"email\":\"%s\",\"password\":\"Quillonbright horse 5\",\"last_name\":\"Quillonbright\"}",
        email);
    expect_weak("/api/v1/auth/signup", body, "context");
    /* Nothing was queued or stored for the refused attempts. */
    assert_string_equal(it_sqlf("SELECT count(*) FROM outbox WHERE recipient = '%s'", email), "0");
    assert_string_equal(it_sqlf("SELECT count(*) FROM verifications WHERE address = '%s'", email),
                        "0");
    /* The same rules when an invitation makes the account. */
    struct acct owner;
    account(&owner, "consultant");
    char ws[40], tok[64], invitee[96];
    workspace(&owner, ws);
    snprintf(invitee, sizeof invitee, "bartholomew%d@client.example", getpid());
    invite(&owner, ws, invitee, tok);
    snprintf(body, sizeof body, "{\"token\":\"%s\",\"password\":\"bartholomew is me\"}", tok);
    expect_weak("/api/v1/invitations/redeem", body, "context");
    snprintf(body, sizeof body, "{\"token\":\"%s\",\"password\":\"1234567890\"}", tok);
    expect_weak("/api/v1/invitations/redeem", body, "dictionary");
    assert_string_equal(it_sqlf("SELECT count(*) FROM people WHERE email = '%s'", invitee), "0");
    /* A good one passes (and the refused attempts did not use the invitation). */
    snprintf(body, sizeof body, "{\"token\":\"%s\",\"password\":\"" PW "\"}", tok);
    struct hres r = http_req(IT.gw[0], SRC, "POST", "/api/v1/invitations/redeem", NULL, body);
    assert_int_equal(r.status, 200);
    hres_free(&r);
}

/* ---- sign-in limits ------------------------------------------------------ */

static void an_attackers_address_cannot_lock_the_owner_out(void **state)
{
    (void)state;
    struct acct a;
    account(&a, "locked");
    char bad[256], good[256];
    snprintf(bad, sizeof bad, "{\"email\":\"%s\",\"password\":\"not the password\"}", a.email);
    snprintf(good, sizeof good, "{\"email\":\"%s\",\"password\":\"" PW "\"}", a.email);
    /* 5 attempts per account and address per window in the test gateways,
     * counted across both gateways. */
    for (int i = 0; i < 5; i++)
        expect_error(http_req(IT.gw[i % 2], "127.0.7.2", "POST", "/api/v1/auth/login", NULL, bad),
                     401, "invalid_credentials");
    struct hres r = http_req(IT.gw[1], "127.0.7.2", "POST", "/api/v1/auth/login", NULL, good);
    assert_int_equal(r.status, 429);
    assert_true(atoi(r.retry_after) > 0 && atoi(r.retry_after) <= 120);
    hres_free(&r);
    /* The owner, from their own address, signs in. */
    r = http_req(IT.gw[0], "127.0.7.3", "POST", "/api/v1/auth/login", NULL, good);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    /* The per-address limit still holds: 12 per window across accounts. */
    int limited = 0;
    char body[256];
    for (int i = 0; i < 14; i++) {
        snprintf(body, sizeof body, "{\"email\":\"spray%d-%d@example.com\",\"password\":\"x\"}",
                 getpid(), i);
        r = http_req(IT.gw[i % 2], "127.0.7.4", "POST", "/api/v1/auth/login", NULL, body);
        if (r.status == 429)
            limited++;
        else
            assert_int_equal(r.status, 401);
        hres_free(&r);
    }
    assert_int_equal(limited, 2);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signup_creates_the_account_only_when_the_address_is_proven),
        cmocka_unit_test(resend_replaces_the_secret),
        cmocka_unit_test(signup_does_not_reveal_a_registered_address),
        cmocka_unit_test(squatting_an_address_at_signup_gains_no_role),
        cmocka_unit_test(redeeming_for_an_existing_account_needs_its_password),
        cmocka_unit_test(an_email_change_counts_only_once_confirmed),
        cmocka_unit_test(avatars_carry_no_address),
        cmocka_unit_test(common_and_context_passwords_are_refused),
        cmocka_unit_test(an_attackers_address_cannot_lock_the_owner_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
