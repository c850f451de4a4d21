/* Integration: the HTTP API over real HTTP against real gateways, PostgreSQL
 * and Redis - accounts and sessions, bad input, invitations and the outbox,
 * token revocation reaching live WebSocket connections on both gateways,
 * soft delete and restore, workspace deletion, avatars, the visit log and
 * its anonymisation, the sign-in rate limits, and expired sessions refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpc.h"
#include "itest.h"

/* Sign-in attempts are limited per source address: this program's own. */
#define SRC "127.0.2.1"
#define PW "correct horse battery staple"

static int seq;

/* A fresh account: its token (static per call slot) and id. */
struct acct {
    char email[96];
    char token[64];
    char id[40];
};

static void signup(struct acct *a, const char *tag)
{
    snprintf(a->email, sizeof a->email, "%s-%d-%d@example.com", tag, getpid(), ++seq);
    it_signup(SRC, a->email, PW, tag, a->token, a->id);
    for (char *c = a->email; *c; c++) /* the server keeps addresses in lower case */
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
}

static void new_workspace(const struct acct *owner, char ws[40])
{
    struct hres r = http_req(IT.gw[0], NULL, "POST", "/api/v1/workspaces", owner->token,
                             "{\"name\":\"API test\"}");
    assert_int_equal(r.status, 201);
    assert_string_equal(hres_str(&r, "role"), "owner");
    snprintf(ws, 40, "%s", hres_str(&r, "id"));
    hres_free(&r);
}

/* Puts a into workspace ws with role (the invitation path is tested on its own). */
static void add_member(const char *ws, const struct acct *a, const char *role)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO workspace_members (workspace_id, person_id, role)"
             " VALUES ('%s', '%s', '%s') RETURNING 1",
             ws, a->id, role);
    assert_string_equal(it_sql(sql), "1");
}

static void expect_error(struct hres r, int status, const char *code)
{
    if (r.status != status || strcmp(hres_str(&r, "error.code"), code))
        fprintf(stderr, "expected %d %s, got %d %s\n", status, code, r.status, r.body);
    assert_int_equal(r.status, status);
    assert_string_equal(hres_str(&r, "error.code"), code);
    hres_free(&r);
}

/* ---- accounts and sessions ----------------------------------------------- */

static void signup_login_logout(void **state)
{
    (void)state;
    struct acct a;
    signup(&a, "Login");
    /* Emails are case-insensitive: login with upper case works. */
    char body[256], upper[96];
    snprintf(upper, sizeof upper, "%s", a.email);
    upper[0] = 'L'; /* "login-..." as typed by someone else */
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"" PW "\"}", upper);
    struct hres r = http_req(IT.gw[1], SRC, "POST", "/api/v1/auth/login", NULL, body);
    assert_int_equal(r.status, 200);
    char tok[64];
    snprintf(tok, sizeof tok, "%s", hres_str(&r, "token"));
    assert_string_not_equal(tok, a.token);
    hres_free(&r);
    /* Only the hash is stored: the token text is nowhere in the database. */
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM access_tokens WHERE encode(hash, 'escape') LIKE "
                "'%%%s%%' OR hash::text LIKE '%%%s%%'",
                tok, tok),
        "0");
    /* The password is stored as argon2id with at least OWASP's parameters. */
    const char *h = it_sqlf("SELECT password_hash FROM people WHERE id = '%s'", a.id);
    assert_non_null(strstr(h, "$argon2id$v=19$m=19456,t=2,p=1$"));
    r = http_req(IT.gw[0], NULL, "GET", "/api/v1/me", tok, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "email"), a.email);
    hres_free(&r);
    /* Logout revokes this token only. */
    r = http_req(IT.gw[0], NULL, "POST", "/api/v1/auth/logout", tok, NULL);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    expect_error(http_req(IT.gw[1], NULL, "GET", "/api/v1/me", tok, NULL), 401, "unauthorized");
    r = http_req(IT.gw[1], NULL, "GET", "/api/v1/me", a.token, NULL);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    /* Revoke-all ends every session. */
    r = http_req(IT.gw[0], NULL, "POST", "/api/v1/auth/revoke-all", a.token, NULL);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    expect_error(http_req(IT.gw[0], NULL, "GET", "/api/v1/me", a.token, NULL), 401, "unauthorized");
    /* Wrong password, unknown account: the same answer. */
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"wrong password\"}", a.email);
    expect_error(http_req(IT.gw[0], SRC, "POST", "/api/v1/auth/login", NULL, body), 401,
                 "invalid_credentials");
    expect_error(http_req(IT.gw[0], SRC, "POST", "/api/v1/auth/login", NULL,
                          "{\"email\":\"nobody-here@example.com\",\"password\":\"whatever1\"}"),
                 401, "invalid_credentials");
    /* The same email twice: answered like any sign-up (it_accounts checks
     * that), and no second account. */
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"" PW "\"}", a.email);
    r = http_req(IT.gw[0], SRC, "POST", "/api/v1/auth/signup", NULL, body);
    assert_int_equal(r.status, 202);
    hres_free(&r);
    assert_string_equal(it_sqlf("SELECT count(*) FROM people WHERE email = '%s'", a.email), "1");
}

static void rehash_on_login(void **state)
{
    (void)state;
    struct acct a;
    signup(&a, "Rehash");
    /* A hash made with other parameters (3 passes) is replaced at login. */
    char old[crypto_pwhash_STRBYTES];
    assert_int_equal(sodium_init() >= 0, 1);
    assert_int_equal(
        crypto_pwhash_str_alg(old, PW, strlen(PW), 3, 19u << 20, crypto_pwhash_ALG_ARGON2ID13), 0);
    it_sqlf("UPDATE people SET password_hash = '%s' WHERE id = '%s' RETURNING 1", old, a.id);
    char body[256];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"" PW "\"}", a.email);
    struct hres r = http_req(IT.gw[0], SRC, "POST", "/api/v1/auth/login", NULL, body);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    const char *h = it_sqlf("SELECT password_hash FROM people WHERE id = '%s'", a.id);
    assert_non_null(strstr(h, "$m=19456,t=2,p=1$"));
    assert_string_not_equal(h, old);
    /* ... and the new hash still verifies. */
    r = http_req(IT.gw[1], SRC, "POST", "/api/v1/auth/login", NULL, body);
    assert_int_equal(r.status, 200);
    hres_free(&r);
}

static void bad_input(void **state)
{
    (void)state;
    struct acct a;
    signup(&a, "Bad");
    char ws[40];
    new_workspace(&a, ws);
    int g = IT.gw[0];
    expect_error(http_req(g, NULL, "POST", "/api/v1/workspaces", a.token, "{\"name\":"), 400,
                 "bad_json");
    expect_error(http_req(g, NULL, "POST", "/api/v1/workspaces", a.token, "[1]"), 400,
                 "not_object");
    expect_error(http_req(g, NULL, "POST", "/api/v1/workspaces", a.token,
                          "{\"name\":\"x\",\"colour\":\"red\"}"),
                 400, "unknown_field");
    expect_error(http_req(g, NULL, "POST", "/api/v1/workspaces", a.token, "{\"name\":7}"), 400,
                 "bad_field");
    expect_error(http_req(g, NULL, "POST", "/api/v1/workspaces", a.token, "{}"), 400,
                 "missing_field");
    expect_error(
        http_req(g, NULL, "POST", "/api/v1/workspaces", a.token, "{\"name\":\"a\\u0000b\"}"), 400,
        "bad_json");
    expect_error(http_req(g, NULL, "POST", "/api/v1/workspaces", a.token,
                          "{\"name\":\"x\",\"retention_days\":1.5}"),
                 400, "bad_field");
    expect_error(http_req(g, NULL, "POST", "/api/v1/workspaces", a.token,
                          "{\"name\":\"x\",\"allowed_domains\":[\"not a domain\"]}"),
                 400, "bad_field");
    /* The error names the field. */
    struct hres r = http_reqf(g, NULL, "POST", a.token, "{\"phone\":\"0171 555\"}",
                              "/api/v1/workspaces/%s/invitations", ws);
    assert_int_equal(r.status, 400);
    assert_string_equal(hres_str(&r, "error.field"), "phone");
    hres_free(&r);
    expect_error(http_reqf(g, NULL, "POST", a.token, "{\"email\":\"no-at-sign\"}",
                           "/api/v1/workspaces/%s/invitations", ws),
                 400, "bad_field");
    expect_error(http_reqf(g, NULL, "POST", a.token, "{}", "/api/v1/workspaces/%s/invitations", ws),
                 400, "missing_field");
    /* Nothing half-written: no workspace named "x" appeared. */
    assert_string_equal(it_sqlf("SELECT count(*) FROM workspaces WHERE created_by = '%s'", a.id),
                        "1");
    /* The edit window is taken when the workspace is made and when it is
     * changed, within its bounds. */
    struct hres e = http_req(g, NULL, "POST", "/api/v1/workspaces", a.token,
                             "{\"name\":\"Windowed\",\"edit_window_s\":60}");
    assert_int_equal(e.status, 201);
    char wws[40];
    snprintf(wws, sizeof wws, "%s", hres_str(&e, "id"));
    hres_free(&e);
    assert_string_equal(it_sqlf("SELECT edit_window_s FROM workspaces WHERE id = '%s'", wws), "60");
    e = http_reqf(g, NULL, "PATCH", a.token, "{\"edit_window_s\":120}", "/api/v1/workspaces/%s",
                  wws);
    assert_int_equal(e.status, 200);
    hres_free(&e);
    assert_string_equal(it_sqlf("SELECT edit_window_s FROM workspaces WHERE id = '%s'", wws),
                        "120");
    expect_error(http_reqf(g, NULL, "PATCH", a.token, "{\"edit_window_s\":604801}",
                           "/api/v1/workspaces/%s", wws),
                 400, "bad_field");
    assert_string_equal(it_sqlf("SELECT edit_window_s FROM workspaces WHERE id = '%s'", wws),
                        "120");
    /* Tokens. */
    expect_error(http_req(g, NULL, "GET", "/api/v1/me", NULL, NULL), 401, "unauthorized");
    expect_error(http_req(g, NULL, "GET", "/api/v1/me", "garbage", NULL), 401, "unauthorized");
    expect_error(
        http_req(g, NULL, "GET", "/api/v1/me", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL),
        401, "unauthorized");
    /* Routes and methods. */
    expect_error(http_req(g, NULL, "GET", "/api/v1/nothing", a.token, NULL), 404, "not_found");
    r = http_req(g, NULL, "PUT", "/api/v1/me", a.token, "{}");
    assert_int_equal(r.status, 405);
    assert_string_equal(r.allow, "GET, PATCH, DELETE");
    hres_free(&r);
    expect_error(
        http_reqf(g, NULL, "GET", a.token, NULL, "/api/v1/workspaces/%s/rooms/not-a-uuid", ws), 404,
        "not_found");
    /* An unknown workspace and a real one of someone else: the same 404. */
    expect_error(http_req(g, NULL, "GET", "/api/v1/workspaces/00000000-0000-0000-0000-000000000000",
                          a.token, NULL),
                 404, "not_found");
    /* Oversized body: 413 and the connection closed; the server lives on. */
    size_t big = 70000;
    char *huge = malloc(big + 32);
    int n = snprintf(huge, big + 32, "{\"name\":\"");
    memset(huge + n, 'x', big);
    strcpy(huge + n + big, "\"}");
    expect_error(http_req(g, NULL, "POST", "/api/v1/workspaces", a.token, huge), 413,
                 "body_too_large");
    free(huge);
    /* No Content-Length: 411. */
    const char raw[] = "POST /api/v1/workspaces HTTP/1.1\r\nHost: x\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
    r = http_raw(g, raw, sizeof raw - 1);
    assert_int_equal(r.status, 411);
    hres_free(&r);
    r = http_req(g, NULL, "GET", "/healthz", NULL, NULL);
    assert_int_equal(r.status, 200);
    hres_free(&r);
}

/* ---- invitations and the outbox ------------------------------------------ */

/* Leases the outbox and returns the invitation token sent to recipient. */
static void outbox_token(const char *recipient, char tok[64], long *outbox_id)
{
    tok[0] = 0;
    struct hres r =
        http_req(IT.gw[1], NULL, "GET", "/api/v1/outbox?limit=500", IT.operator_token, NULL);
    assert_int_equal(r.status, 200);
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.json, "items"))
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(it, "recipient")->valuestring, recipient))
            continue;
        cJSON *p = cJSON_GetObjectItemCaseSensitive(it, "payload");
        snprintf(tok, 64, "%s", cJSON_GetObjectItemCaseSensitive(p, "token")->valuestring);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(p, "type")->valuestring, "invitation");
        *outbox_id = (long)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
    }
    hres_free(&r);
    assert_int_equal(strlen(tok), 43);
}

static void invitation_lifecycle(void **state)
{
    (void)state;
    struct acct o;
    signup(&o, "Owner");
    char ws[40];
    new_workspace(&o, ws);
    char email[96], body[512];
    snprintf(email, sizeof email, "invitee-%d-%d@example.com", getpid(), ++seq);
    snprintf(body, sizeof body,
             "{\"email\":\"%s\",\"role\":\"keyuser\",\"first_name\":\"Ina\",\"title\":\"CFO\","
             "\"department\":\"Finance\",\"superior_id\":\"%s\"}",
             email, o.id);
    struct hres r =
        http_reqf(IT.gw[0], NULL, "POST", o.token, body, "/api/v1/workspaces/%s/invitations", ws);
    assert_int_equal(r.status, 201);
    assert_string_equal(hres_str(&r, "status"), "pending");
    /* The inviter never sees the secret. */
    assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "token"));
    char inv_id[40];
    snprintf(inv_id, sizeof inv_id, "%s", hres_str(&r, "id"));
    hres_free(&r);
    /* Without the operator token the outbox is closed. */
    expect_error(http_req(IT.gw[0], NULL, "GET", "/api/v1/outbox", o.token, NULL), 401,
                 "unauthorized");
    char tok[64];
    long oid = 0;
    outbox_token(email, tok, &oid);
    /* Leased: a second mailer does not get it again within the lease. */
    r = http_req(IT.gw[0], NULL, "GET", "/api/v1/outbox", IT.operator_token, NULL);
    assert_null(strstr(r.body, email));
    hres_free(&r);
    /* Redeem: a new account with the invited role and profile. */
    snprintf(body, sizeof body, "{\"token\":\"%s\",\"password\":\"" PW "\"}", tok);
    r = http_req(IT.gw[1], SRC, "POST", "/api/v1/invitations/redeem", NULL, body);
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "role"), "keyuser");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "new_account")));
    char stok[64], pid[40];
    snprintf(stok, sizeof stok, "%s", hres_str(&r, "token"));
    snprintf(pid, sizeof pid, "%s", hres_str(&r, "person_id"));
    hres_free(&r);
    char want[128];
    snprintf(want, sizeof want, "keyuser/CFO/Finance/%s", o.id);
    assert_string_equal(it_sqlf("SELECT role || '/' || title || '/' || department || '/' || "
                                "superior_id FROM workspace_members WHERE person_id = '%s'",
                                pid),
                        want);
    /* The session works, and the new password signs in. */
    r = http_reqf(IT.gw[0], NULL, "GET", stok, NULL, "/api/v1/workspaces/%s", ws);
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "role"), "keyuser");
    hres_free(&r);
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"" PW "\"}", email);
    r = http_req(IT.gw[0], SRC, "POST", "/api/v1/auth/login", NULL, body);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    /* Single use. */
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", tok);
    expect_error(http_req(IT.gw[0], SRC, "POST", "/api/v1/invitations/redeem", NULL, body), 404,
                 "invitation_invalid");
    /* Redeemed: the secret is erased from the outbox; the mailer's ack ends it. */
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM outbox WHERE id = %ld AND payload ? 'token'", oid), "0");
    r = http_reqf(IT.gw[0], NULL, "POST", IT.operator_token, "{\"status\":\"sent\"}",
                  "/api/v1/outbox/%ld/ack", oid);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    assert_string_equal(it_sqlf("SELECT sent_at IS NOT NULL FROM outbox WHERE id = %ld", oid), "t");
    r = http_reqf(IT.gw[0], NULL, "GET", o.token, NULL, "/api/v1/workspaces/%s/invitations", ws);
    assert_non_null(strstr(r.body, "\"redeemed\""));
    hres_free(&r);
    expect_error(http_reqf(IT.gw[0], NULL, "DELETE", o.token, NULL,
                           "/api/v1/workspaces/%s/invitations/%s", ws, inv_id),
                 409, "invitation_redeemed");
    /* Inviting someone already in: a conflict. */
    snprintf(body, sizeof body, "{\"email\":\"%s\"}", email);
    expect_error(
        http_reqf(IT.gw[0], NULL, "POST", o.token, body, "/api/v1/workspaces/%s/invitations", ws),
        409, "already_member");
}

/* The delivery of the invitation named id in the workspace's list: its
 * "delivery.state" (the answer is kept in *list for the caller to free). */
static const char *delivery_of(const char *tok, const char *ws, const char *id, struct hres *list)
{
    *list = http_reqf(IT.gw[0], NULL, "GET", tok, NULL, "/api/v1/workspaces/%s/invitations", ws);
    assert_int_equal(list->status, 200);
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(list->json, "items"))
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(it, "id")->valuestring, id)) continue;
        cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "delivery");
        assert_true(cJSON_IsObject(d));
        return cJSON_GetObjectItemCaseSensitive(d, "state")->valuestring;
    }
    fail_msg("invitation %s not listed", id);
    return NULL;
}

/* The inviter sees where each invitation's message is: queued, handed to a
 * mailer, sent, or failed with the mailer's reason; never its secret. */
static void invitation_delivery_state(void **state)
{
    (void)state;
    struct acct o;
    signup(&o, "Owner");
    char ws[40];
    new_workspace(&o, ws);
    char email[2][96], id[2][40], body[256];
    for (int i = 0; i < 2; i++) {
        snprintf(email[i], sizeof email[i], "delivery-%d-%d@example.com", getpid(), ++seq);
        snprintf(body, sizeof body, "{\"email\":\"%s\"}", email[i]);
        struct hres r = http_reqf(IT.gw[0], NULL, "POST", o.token, body,
                                  "/api/v1/workspaces/%s/invitations", ws);
        assert_int_equal(r.status, 201);
        snprintf(id[i], sizeof id[i], "%s", hres_str(&r, "id"));
        hres_free(&r);
    }
    struct hres l;
    assert_string_equal(delivery_of(o.token, ws, id[0], &l), "queued");
    hres_free(&l);
    /* The mailer leases both in one go. */
    char tok[2][64] = {"", ""};
    long oid[2] = {0, 0};
    struct hres r =
        http_req(IT.gw[1], NULL, "GET", "/api/v1/outbox?limit=500", IT.operator_token, NULL);
    assert_int_equal(r.status, 200);
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.json, "items"))
    {
        for (int i = 0; i < 2; i++) {
            if (strcmp(cJSON_GetObjectItemCaseSensitive(it, "recipient")->valuestring, email[i]))
                continue;
            cJSON *p = cJSON_GetObjectItemCaseSensitive(it, "payload");
            snprintf(tok[i], 64, "%s", cJSON_GetObjectItemCaseSensitive(p, "token")->valuestring);
            oid[i] = (long)cJSON_GetObjectItemCaseSensitive(it, "id")->valuedouble;
        }
    }
    hres_free(&r);
    assert_int_equal(strlen(tok[0]), 43);
    assert_int_equal(strlen(tok[1]), 43);
    assert_string_equal(delivery_of(o.token, ws, id[0], &l), "leased");
    assert_null(strstr(l.body, tok[0])); /* the secret is the invitee's alone */
    assert_null(strstr(l.body, tok[1]));
    hres_free(&l);
    r = http_reqf(IT.gw[0], NULL, "POST", IT.operator_token,
                  "{\"status\":\"failed\",\"error\":\"mailbox full\"}", "/api/v1/outbox/%ld/ack",
                  oid[0]);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    r = http_reqf(IT.gw[0], NULL, "POST", IT.operator_token, "{\"status\":\"sent\"}",
                  "/api/v1/outbox/%ld/ack", oid[1]);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    assert_string_equal(delivery_of(o.token, ws, id[0], &l), "failed");
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(l.json, "items"))
    {
        cJSON *d = cJSON_GetObjectItemCaseSensitive(it, "delivery");
        const char *iid = cJSON_GetObjectItemCaseSensitive(it, "id")->valuestring;
        assert_int_equal(cJSON_GetObjectItemCaseSensitive(d, "attempts")->valueint, 1);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(d, "channel")->valuestring, "email");
        if (!strcmp(iid, id[0]))
            assert_string_equal(cJSON_GetObjectItemCaseSensitive(d, "error")->valuestring,
                                "mailbox full");
        else
            assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(d, "sent_at")));
    }
    hres_free(&l);
    assert_string_equal(delivery_of(o.token, ws, id[1], &l), "sent");
    hres_free(&l);
}

static void invitation_expiry_revocation_and_links(void **state)
{
    (void)state;
    struct acct o, existing;
    signup(&o, "Owner");
    signup(&existing, "Existing");
    char ws[40], body[512], tok[64];
    long oid;
    new_workspace(&o, ws);
    /* Phone invitation that expires. */
    char phone[24];
    snprintf(phone, sizeof phone, "+4915%09d", (getpid() * 7 + ++seq) % 1000000000);
    snprintf(body, sizeof body, "{\"phone\":\"%s\"}", phone);
    struct hres r =
        http_reqf(IT.gw[0], NULL, "POST", o.token, body, "/api/v1/workspaces/%s/invitations", ws);
    assert_int_equal(r.status, 201);
    hres_free(&r);
    outbox_token(phone, tok, &oid);
    assert_string_equal(it_sqlf("SELECT channel FROM outbox WHERE id = %ld", oid), "sms");
    it_sqlf("UPDATE invitations SET expires_at = now() - interval '1 second' WHERE phone = '%s'"
            " RETURNING 1",
            phone);
    snprintf(body, sizeof body, "{\"token\":\"%s\",\"password\":\"" PW "\"}", tok);
    expect_error(http_req(IT.gw[0], SRC, "POST", "/api/v1/invitations/redeem", NULL, body), 404,
                 "invitation_invalid");
    assert_string_equal(it_sqlf("SELECT count(*) FROM people WHERE phone = '%s'", phone), "0");
    /* Revoked before use. */
    char email[96];
    snprintf(email, sizeof email, "revoked-%d-%d@example.com", getpid(), ++seq);
    snprintf(body, sizeof body, "{\"email\":\"%s\"}", email);
    r = http_reqf(IT.gw[0], NULL, "POST", o.token, body, "/api/v1/workspaces/%s/invitations", ws);
    char inv[40];
    snprintf(inv, sizeof inv, "%s", hres_str(&r, "id"));
    hres_free(&r);
    outbox_token(email, tok, &oid);
    r = http_reqf(IT.gw[0], NULL, "DELETE", o.token, NULL, "/api/v1/workspaces/%s/invitations/%s",
                  ws, inv);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    snprintf(body, sizeof body, "{\"token\":\"%s\"}", tok);
    expect_error(http_req(IT.gw[0], SRC, "POST", "/api/v1/invitations/redeem", NULL, body), 404,
                 "invitation_invalid");
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM outbox WHERE id = %ld AND payload ? 'token'", oid), "0");
    /* An existing account is linked with its own password (it_accounts),
     * not duplicated, and keeps its password. */
    snprintf(body, sizeof body, "{\"email\":\"%s\"}", existing.email);
    r = http_reqf(IT.gw[0], NULL, "POST", o.token, body, "/api/v1/workspaces/%s/invitations", ws);
    assert_int_equal(r.status, 201);
    hres_free(&r);
    outbox_token(existing.email, tok, &oid);
    snprintf(body, sizeof body, "{\"token\":\"%s\",\"password\":\"" PW "\"}", tok);
    r = http_req(IT.gw[1], SRC, "POST", "/api/v1/invitations/redeem", NULL, body);
    assert_int_equal(r.status, 200);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r.json, "new_account")));
    assert_null(cJSON_GetObjectItemCaseSensitive(r.json, "token"));
    assert_string_equal(hres_str(&r, "person_id"), existing.id);
    hres_free(&r);
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"" PW "\"}", existing.email);
    r = http_req(IT.gw[0], SRC, "POST", "/api/v1/auth/login", NULL, body);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    /* Allowed domains: an address outside them is refused. */
    r = http_reqf(IT.gw[0], NULL, "PATCH", o.token, "{\"allowed_domains\":[\"Client.Example\"]}",
                  "/api/v1/workspaces/%s", ws);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "client.example"));
    hres_free(&r);
    expect_error(http_reqf(IT.gw[0], NULL, "POST", o.token, "{\"email\":\"x@other.example\"}",
                           "/api/v1/workspaces/%s/invitations", ws),
                 400, "domain_not_allowed");
    r = http_reqf(IT.gw[0], NULL, "POST", o.token, "{\"email\":\"y@client.example\"}",
                  "/api/v1/workspaces/%s/invitations", ws);
    assert_int_equal(r.status, 201);
    hres_free(&r);
}

/* ---- revocation reaches live connections ---------------------------------- */

static void logout_closes_websockets_on_both_gateways(void **state)
{
    (void)state;
    struct acct o;
    signup(&o, "Live");
    char ws[40];
    new_workspace(&o, ws);
    char body[256];
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"" PW "\"}", o.email);
    struct hres r = http_req(IT.gw[0], SRC, "POST", "/api/v1/auth/login", NULL, body);
    char tok[64];
    snprintf(tok, sizeof tok, "%s", hres_str(&r, "token"));
    hres_free(&r);
    /* The same session token on both gateways, and another session. */
    struct wsc *a = it_connect_auth(0, tok), *b = it_connect_auth(1, tok);
    struct wsc *other = it_connect_auth(1, o.token);
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(other);
    r = http_req(IT.gw[0], NULL, "POST", "/api/v1/auth/logout", tok, NULL);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    assert_int_equal(wsc_wait_closed(a, 3000), 1008);
    assert_int_equal(wsc_wait_closed(b, 3000), 1008);
    assert_string_equal(wsc_close_reason(a), "access revoked");
    assert_string_equal(wsc_close_reason(b), "access revoked");
    /* The other session stays. */
    cJSON *p = wsc_request(other, 3000, "\"op\":\"ping\"");
    assert_non_null(p);
    assert_null(wsc_err_code(p));
    cJSON_Delete(p);
    wsc_close(a);
    wsc_close(b);
    wsc_close(other);
}

/* A revocation published while Redis is away never reaches the other
 * gateway over the bus; that gateway re-checks its sessions against
 * PostgreSQL when its subscription comes back. */
static void revocation_missed_during_redis_outage_still_applies(void **state)
{
    (void)state;
    struct acct o;
    signup(&o, "Outage");
    char ws[40];
    new_workspace(&o, ws);
    struct wsc *c = it_connect_auth(1, o.token);
    assert_non_null(c);
    assert_int_equal(it_env("stop-redis"), 0);
    struct hres r = http_req(IT.gw[0], NULL, "POST", "/api/v1/auth/revoke-all", o.token, NULL);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    /* Gateway 1 did not hear of it: the session is still open. */
    cJSON *p = wsc_request(c, 3000, "\"op\":\"ping\"");
    assert_non_null(p);
    assert_null(wsc_err_code(p));
    cJSON_Delete(p);
    assert_int_equal(it_env("start-redis"), 0);
    assert_int_equal(wsc_wait_closed(c, 10000), 1008);
    wsc_close(c);
    /* Sign-in needs Redis (its limits): wait until both gateways have it back. */
    for (int g = 0; g < 2; g++) {
        int st = 0;
        for (int i = 0; i < 100 && st != 200; i++) {
            r = http_req(IT.gw[g], NULL, "GET", "/readyz", NULL, NULL);
            st = r.status;
            hres_free(&r);
            if (st != 200) usleep(100000);
        }
        assert_int_equal(st, 200);
    }
}

static void soft_delete_and_restore(void **state)
{
    (void)state;
    struct acct o, m;
    signup(&o, "Owner");
    signup(&m, "Member");
    char ws[40];
    new_workspace(&o, ws);
    add_member(ws, &m, "member");
    struct hres r = http_reqf(IT.gw[0], NULL, "POST", o.token, "{\"name\":\"room\"}",
                              "/api/v1/workspaces/%s/rooms", ws);
    assert_int_equal(r.status, 201);
    char room[40];
    snprintf(room, sizeof room, "%s", hres_str(&r, "id"));
    hres_free(&r);
    struct wsc *c = it_connect_auth(1, m.token);
    assert_non_null(c);
    cJSON *j = it_join(c, room, -1);
    assert_null(wsc_err_code(j));
    cJSON_Delete(j);
    cJSON_Delete(it_send(c, room, "m1", "kept after removal"));
    r = http_reqf(IT.gw[0], NULL, "DELETE", o.token, NULL, "/api/v1/workspaces/%s/people/%s", ws,
                  m.id);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    /* Access revoked at once, on the other gateway too. */
    assert_int_equal(wsc_wait_closed(c, 3000), 1008);
    wsc_close(c);
    expect_error(http_reqf(IT.gw[1], NULL, "GET", m.token, NULL, "/api/v1/workspaces/%s", ws), 404,
                 "not_found");
    /* Data kept and marked. */
    assert_string_equal(it_sqlf("SELECT count(*) FROM messages WHERE sender_id = '%s'", m.id), "1");
    assert_string_equal(
        it_sqlf("SELECT removed_by FROM workspace_members WHERE person_id = '%s'", m.id), o.id);
    /* Listed as removed for managers only. */
    r = http_reqf(IT.gw[0], NULL, "GET", o.token, NULL, "/api/v1/workspaces/%s/people", ws);
    assert_non_null(strstr(r.body, m.id));
    hres_free(&r);
    r = http_reqf(IT.gw[0], NULL, "POST", o.token, NULL, "/api/v1/workspaces/%s/people/%s/restore",
                  ws, m.id);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    c = it_connect_auth(0, m.token);
    assert_non_null(c);
    wsc_close(c);
    /* Nobody removes themselves or the owner. */
    expect_error(http_reqf(IT.gw[0], NULL, "DELETE", o.token, NULL,
                           "/api/v1/workspaces/%s/people/%s", ws, o.id),
                 403, "forbidden");
}

static void workspace_deletion_removes_everything(void **state)
{
    (void)state;
    struct acct o, m;
    signup(&o, "Owner");
    signup(&m, "Member");
    char ws[40], room[40], av[40];
    new_workspace(&o, ws);
    add_member(ws, &m, "member");
    struct hres r = http_reqf(IT.gw[0], NULL, "POST", o.token, "{\"name\":\"r\"}",
                              "/api/v1/workspaces/%s/rooms", ws);
    snprintf(room, sizeof room, "%s", hres_str(&r, "id"));
    hres_free(&r);
    r = http_reqf(IT.gw[0], NULL, "POST", o.token, "{\"name\":\"Bot\"}",
                  "/api/v1/workspaces/%s/avatars", ws);
    assert_int_equal(r.status, 201);
    snprintf(av, sizeof av, "%s", hres_str(&r, "id"));
    hres_free(&r);
    r = http_reqf(IT.gw[0], NULL, "POST", o.token, "{}", "/api/v1/workspaces/%s/avatars/%s/tokens",
                  ws, av);
    char bot_tok[64];
    snprintf(bot_tok, sizeof bot_tok, "%s", hres_str(&r, "token"));
    hres_free(&r);
    r = http_reqf(IT.gw[0], NULL, "POST", o.token, "{\"email\":\"gone@example.com\"}",
                  "/api/v1/workspaces/%s/invitations", ws);
    hres_free(&r);
    struct wsc *c = it_connect_auth(1, m.token), *bot = it_connect_auth(0, bot_tok);
    assert_non_null(c);
    assert_non_null(bot);
    cJSON_Delete(it_join(bot, room, -1));
    cJSON_Delete(it_send(bot, room, "b1", "from the bot"));
    cJSON_Delete(it_join(c, room, -1));
    cJSON_Delete(it_send(c, room, "c1", "from the member"));
    /* A member may not delete it. */
    expect_error(http_reqf(IT.gw[0], NULL, "DELETE", m.token, NULL, "/api/v1/workspaces/%s", ws),
                 403, "forbidden");
    r = http_reqf(IT.gw[0], NULL, "DELETE", o.token, NULL, "/api/v1/workspaces/%s", ws);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    assert_int_equal(wsc_wait_closed(c, 3000), 1008);
    assert_int_equal(wsc_wait_closed(bot, 3000), 1008);
    wsc_close(c);
    wsc_close(bot);
    /* restorable for the grace period (it_wsdelete); then the purge job */
    it_sqlf("UPDATE workspaces SET purge_at = now() WHERE id = '%s' RETURNING 1", ws);
    for (int i = 0;
         i < 100 && strcmp(it_sqlf("SELECT count(*) FROM workspaces WHERE id = '%s'", ws), "0");
         i++)
        usleep(100000);
    const char *left =
        it_sqlf("SELECT (SELECT count(*) FROM workspaces WHERE id = '%1$s')"
                " + (SELECT count(*) FROM rooms WHERE workspace_id = '%1$s')"
                " + (SELECT count(*) FROM messages WHERE room_id = '%2$s')"
                " + (SELECT count(*) FROM workspace_members WHERE workspace_id = '%1$s')"
                " + (SELECT count(*) FROM invitations WHERE workspace_id = '%1$s')"
                " + (SELECT count(*) FROM outbox WHERE workspace_id = '%1$s')"
                " + (SELECT count(*) FROM visits WHERE workspace_id = '%1$s')"
                " + (SELECT count(*) FROM access_tokens WHERE workspace_id = '%1$s')"
                " + (SELECT count(*) FROM people WHERE id = '%3$s')",
                ws, room, av);
    assert_string_equal(left, "0");
    /* They belonged to no other workspace: their accounts went with it
     * (it_wsdelete: one who belongs elsewhere stays). */
    assert_string_equal(it_sqlf("SELECT count(*) FROM people WHERE id IN ('%s', '%s')", o.id, m.id),
                        "0");
}

/* ---- avatars ------------------------------------------------------------- */

static void avatar_tokens_rooms_and_revocation(void **state)
{
    (void)state;
    struct acct o, m;
    signup(&o, "Owner");
    signup(&m, "Member");
    char ws[40], r1[40], r2[40], av[40], tid[40], tok[64], body[256];
    new_workspace(&o, ws);
    add_member(ws, &m, "member");
    struct hres r;
    for (int i = 0; i < 2; i++) {
        r = http_reqf(IT.gw[0], NULL, "POST", o.token, "{\"name\":\"room\"}",
                      "/api/v1/workspaces/%s/rooms", ws);
        snprintf(i ? r2 : r1, 40, "%s", hres_str(&r, "id"));
        hres_free(&r);
    }
    r = http_reqf(IT.gw[0], NULL, "POST", o.token,
                  "{\"name\":\"Ada\",\"persona\":\"A patient facilitator\"}",
                  "/api/v1/workspaces/%s/avatars", ws);
    assert_int_equal(r.status, 201);
    snprintf(av, sizeof av, "%s", hres_str(&r, "id"));
    assert_string_equal(hres_str(&r, "owner_id"), o.id);
    hres_free(&r);
    /* A token scoped to room 1. */
    snprintf(body, sizeof body, "{\"rooms\":[\"%s\"],\"expires_in_days\":30}", r1);
    r = http_reqf(IT.gw[0], NULL, "POST", o.token, body, "/api/v1/workspaces/%s/avatars/%s/tokens",
                  ws, av);
    assert_int_equal(r.status, 201);
    snprintf(tok, sizeof tok, "%s", hres_str(&r, "token"));
    snprintf(tid, sizeof tid, "%s", hres_str(&r, "id"));
    hres_free(&r);
    /* Listing shows the token but never its secret. */
    r = http_reqf(IT.gw[0], NULL, "GET", o.token, NULL, "/api/v1/workspaces/%s/avatars/%s/tokens",
                  ws, av);
    assert_non_null(strstr(r.body, tid));
    assert_null(strstr(r.body, tok));
    hres_free(&r);
    struct wsc *bot = it_connect_auth(1, tok), *human = it_connect_auth(0, m.token);
    assert_non_null(bot);
    assert_non_null(human);
    cJSON *j = it_join(bot, r1, -1);
    assert_null(wsc_err_code(j));
    cJSON_Delete(j);
    j = it_join(bot, r2, -1);
    assert_string_equal(wsc_err_code(j), "room_not_found");
    cJSON_Delete(j);
    j = it_join(human, r1, -1);
    cJSON_Delete(j);
    cJSON_Delete(it_send(bot, r1, "hello-1", "Hello, I am Ada."));
    /* The message says it comes from an avatar, live and in history. */
    cJSON *push = wsc_wait_push(human, "message", 3000);
    assert_non_null(push);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(push, "avatar")));
    assert_string_equal(wsc_str(push, "sender"), av);
    cJSON_Delete(push);
    cJSON *h = wsc_request(human, 3000, "\"op\":\"history\",\"room\":\"%s\",\"limit\":5", r1);
    char *text = cJSON_PrintUnformatted(h);
    assert_non_null(strstr(text, "\"avatar\":true"));
    free(text);
    cJSON_Delete(h);
    /* A person's message carries no avatar flag. */
    cJSON_Delete(it_send(human, r1, "h-1", "hi"));
    push = wsc_wait_push(bot, "message", 3000);
    while (push && strcmp(wsc_str(push, "client_msg_id"), "h-1")) {
        cJSON_Delete(push);
        push = wsc_wait_push(bot, "message", 3000);
    }
    assert_non_null(push);
    assert_null(cJSON_GetObjectItemCaseSensitive(push, "avatar"));
    cJSON_Delete(push);
    /* Revoking the token disconnects the bot. */
    r = http_reqf(IT.gw[0], NULL, "DELETE", o.token, NULL,
                  "/api/v1/workspaces/%s/avatars/%s/tokens/%s", ws, av, tid);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    assert_int_equal(wsc_wait_closed(bot, 3000), 1008);
    wsc_close(bot);
    wsc_close(human);
    /* Avatars do not sign in with passwords or create workspaces. */
    r = http_reqf(IT.gw[0], NULL, "POST", o.token, "{}", "/api/v1/workspaces/%s/avatars/%s/tokens",
                  ws, av);
    snprintf(tok, sizeof tok, "%s", hres_str(&r, "token"));
    hres_free(&r);
    expect_error(http_req(IT.gw[0], NULL, "POST", "/api/v1/workspaces", tok, "{\"name\":\"x\"}"),
                 403, "forbidden");
    /* Removing the avatar revokes its tokens. */
    r = http_reqf(IT.gw[0], NULL, "DELETE", o.token, NULL, "/api/v1/workspaces/%s/avatars/%s", ws,
                  av);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    expect_error(http_reqf(IT.gw[0], NULL, "GET", tok, NULL, "/api/v1/workspaces/%s", ws), 401,
                 "unauthorized");
}

/* ---- rooms --------------------------------------------------------------- */

static void room_membership_and_archive(void **state)
{
    (void)state;
    struct acct o, in, out, sup;
    signup(&o, "Owner");
    signup(&in, "In");
    signup(&out, "Out");
    signup(&sup, "Support");
    char ws[40], room[40], body[256];
    new_workspace(&o, ws);
    add_member(ws, &in, "member");
    add_member(ws, &out, "member");
    add_member(ws, &sup, "support");
    snprintf(body, sizeof body,
             "{\"name\":\"Board\",\"kind\":\"dialogue\",\"visibility\":\"members\","
             "\"members\":[\"%s\"]}",
             in.id);
    struct hres r =
        http_reqf(IT.gw[0], NULL, "POST", o.token, body, "/api/v1/workspaces/%s/rooms", ws);
    assert_int_equal(r.status, 201);
    assert_string_equal(hres_str(&r, "kind"), "dialogue");
    snprintf(room, sizeof room, "%s", hres_str(&r, "id"));
    hres_free(&r);
    /* Joining over WebSocket checks the list; not on it, the room is not
     * there at all. */
    struct wsc *a = it_connect_auth(0, in.token), *b = it_connect_auth(1, out.token);
    cJSON *j = it_join(a, room, -1);
    assert_null(wsc_err_code(j));
    cJSON_Delete(j);
    j = it_join(b, room, -1);
    assert_string_equal(wsc_err_code(j), "room_not_found");
    cJSON_Delete(j);
    /* Out does not even see it in the list. */
    r = http_reqf(IT.gw[1], NULL, "GET", out.token, NULL, "/api/v1/workspaces/%s/rooms", ws);
    assert_null(strstr(r.body, room));
    hres_free(&r);
    snprintf(body, sizeof body, "{\"person_id\":\"%s\"}", out.id);
    r = http_reqf(IT.gw[0], NULL, "POST", o.token, body, "/api/v1/workspaces/%s/rooms/%s/members",
                  ws, room);
    assert_int_equal(r.status, 204);
    hres_free(&r);
    j = it_join(b, room, -1);
    assert_null(wsc_err_code(j));
    cJSON_Delete(j);
    r = http_reqf(IT.gw[1], NULL, "GET", out.token, NULL, "/api/v1/workspaces/%s/rooms/%s/members",
                  ws, room);
    assert_non_null(strstr(r.body, in.id));
    assert_non_null(strstr(r.body, out.id));
    hres_free(&r);
    /* Support reads but does not speak. */
    r = http_reqf(IT.gw[0], NULL, "POST", o.token, "{\"name\":\"Open\"}",
                  "/api/v1/workspaces/%s/rooms", ws);
    char open_room[40];
    snprintf(open_room, sizeof open_room, "%s", hres_str(&r, "id"));
    hres_free(&r);
    struct wsc *s = it_connect_auth(0, sup.token);
    j = it_join(s, open_room, -1);
    assert_null(wsc_err_code(j));
    cJSON_Delete(j);
    j = it_send(s, open_room, "s1", "hello");
    assert_string_equal(wsc_err_code(j), "forbidden");
    cJSON_Delete(j);
    assert_string_equal(it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s'", open_room),
                        "0");
    /* Large rooms can keep read state private. */
    r = http_reqf(IT.gw[0], NULL, "PATCH", o.token, "{\"broadcast_reads\":false}",
                  "/api/v1/workspaces/%s/rooms/%s", ws, room);
    assert_int_equal(r.status, 200);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r.json, "broadcast_reads")));
    hres_free(&r);
    /* Rename and archive: an archived room cannot be joined. */
    r = http_reqf(IT.gw[0], NULL, "PATCH", o.token, "{\"name\":\"Old\",\"archived\":true}",
                  "/api/v1/workspaces/%s/rooms/%s", ws, open_room);
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "name"), "Old");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "archived")));
    hres_free(&r);
    j = it_join(a, open_room, -1);
    assert_string_equal(wsc_err_code(j), "room_not_found");
    cJSON_Delete(j);
    r = http_reqf(IT.gw[0], NULL, "GET", o.token, NULL, "/api/v1/workspaces/%s/rooms", ws);
    assert_null(strstr(r.body, open_room));
    hres_free(&r);
    r = http_reqf(IT.gw[0], NULL, "GET", o.token, NULL, "/api/v1/workspaces/%s/rooms?archived=true",
                  ws);
    assert_non_null(strstr(r.body, open_room));
    hres_free(&r);
    wsc_close(a);
    wsc_close(b);
    wsc_close(s);
}

/* ---- profiles ------------------------------------------------------------ */

static void rectification(void **state)
{
    (void)state;
    struct acct o, m;
    signup(&o, "Owner");
    signup(&m, "Member");
    char ws[40];
    new_workspace(&o, ws);
    add_member(ws, &m, "member");
    struct hres r = http_req(IT.gw[0], NULL, "PATCH", "/api/v1/me", m.token,
                             "{\"first_name\":\"Mia\",\"phone\":\"+441632960961\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "first_name"), "Mia");
    /* A new phone number waits for the code sent to it (it_accounts). */
    assert_string_equal(hres_str(&r, "pending_phone"), "+441632960961");
    hres_free(&r);
    char body[256];
    /* The workspace's fields are the owner's; the names are Mia's own
     * (it_roles: account_fields_belong_to_the_person). */
    snprintf(body, sizeof body, "{\"title\":\"Head of HR\",\"superior_id\":\"%s\"}", o.id);
    r = http_reqf(IT.gw[1], NULL, "PATCH", o.token, body, "/api/v1/workspaces/%s/people/%s", ws,
                  m.id);
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "title"), "Head of HR");
    assert_string_equal(hres_str(&r, "first_name"), "Mia");
    hres_free(&r);
    /* A superior must be another person of this workspace. */
    snprintf(body, sizeof body, "{\"superior_id\":\"%s\"}", m.id);
    expect_error(http_reqf(IT.gw[1], NULL, "PATCH", o.token, body,
                           "/api/v1/workspaces/%s/people/%s", ws, m.id),
                 400, "bad_field");
    /* A member edits only themself. */
    expect_error(http_reqf(IT.gw[1], NULL, "PATCH", m.token, "{\"title\":\"CEO\"}",
                           "/api/v1/workspaces/%s/people/%s", ws, o.id),
                 403, "forbidden");
    assert_string_equal(
        it_sqlf("SELECT coalesce(title, '-') FROM workspace_members WHERE person_id = "
                "'%s' AND workspace_id = '%s'",
                o.id, ws),
        "-");
}

/* ---- the visit log ------------------------------------------------------- */

static void visit_log_and_anonymisation(void **state)
{
    (void)state;
    struct acct o;
    signup(&o, "Visits");
    char ws[40];
    new_workspace(&o, ws);
    struct wsc_opts opts = {
        .user_agent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
                      "Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51"};
    struct wsc *c = wsc_connect(IT.gw[1], &opts, NULL);
    assert_non_null(c);
    cJSON_Delete(wsc_wait_push(c, "hello", 2000));
    cJSON *a =
        wsc_request(c, 3000, "\"op\":\"auth\",\"token\":\"%s\",\"workspace\":\"%s\"", o.token, ws);
    assert_null(wsc_err_code(a));
    cJSON_Delete(a);
    wsc_close(c);
    /* The row is written after the auth reply: wait for it. */
    for (int i = 0;
         i < 50 &&
         strcmp(it_sqlf("SELECT count(*) FROM visits WHERE workspace_id = '%s'", ws), "1");
         i++)
        usleep(50000);
    struct hres r =
        http_reqf(IT.gw[0], NULL, "GET", o.token, NULL, "/api/v1/workspaces/%s/visits", ws);
    assert_int_equal(r.status, 200);
    cJSON *items = cJSON_GetObjectItemCaseSensitive(r.json, "items");
    assert_int_equal(cJSON_GetArraySize(items), 1);
    cJSON *v = cJSON_GetArrayItem(items, 0);
    assert_string_equal(wsc_str(v, "kind"), "websocket");
    assert_string_equal(wsc_str(v, "ip"), "127.0.0.1");
    assert_string_equal(wsc_str(v, "os"), "Windows");
    assert_string_equal(wsc_str(v, "browser"), "Edge");
    assert_string_equal(wsc_str(v, "person_id"), o.id);
    hres_free(&r);
    /* The job zeroes the host part of IPs older than the retention (7 days
     * in the test gateways; the job runs every second there). */
    it_sqlf("INSERT INTO visits (workspace_id, person_id, kind, at, ip) VALUES"
            " ('%1$s', '%2$s', 'login', now() - interval '8 days', '203.0.113.77'),"
            " ('%1$s', '%2$s', 'login', now() - interval '8 days', '2001:db8:1234:5678::9'),"
            " ('%1$s', '%2$s', 'login', now() - interval '6 days', '198.51.100.9') RETURNING 1",
            ws, o.id);
    const char *q = "SELECT string_agg(host(ip) || ':' || ip_anonymised, ',' ORDER BY at, id)"
                    " FROM visits WHERE workspace_id = '%s' AND kind = 'login'";
    const char *want = "203.0.113.0:true,2001:db8:1234:::true,198.51.100.9:false";
    for (int i = 0; i < 60 && strcmp(it_sqlf(q, ws), want); i++)
        usleep(100000);
    assert_string_equal(it_sqlf(q, ws), want);
    /* Members may not read the log. */
    struct acct m;
    signup(&m, "Nosy");
    add_member(ws, &m, "member");
    expect_error(
        http_reqf(IT.gw[0], NULL, "GET", m.token, NULL, "/api/v1/workspaces/%s/visits", ws), 403,
        "forbidden");
}

/* ---- sign-in limits ------------------------------------------------------ */

static void login_rate_limits(void **state)
{
    (void)state;
    struct acct a;
    signup(&a, "Limited");
    char bad[256], good[256];
    snprintf(bad, sizeof bad, "{\"email\":\"%s\",\"password\":\"not the password\"}", a.email);
    snprintf(good, sizeof good, "{\"email\":\"%s\",\"password\":\"" PW "\"}", a.email);
    /* Per account and address: 5 attempts per window in the test gateways,
     * shared by both gateways (the counters live in Redis); it_accounts
     * shows that another address is not locked out. */
    for (int i = 0; i < 5; i++)
        expect_error(http_req(IT.gw[i % 2], "127.0.2.2", "POST", "/api/v1/auth/login", NULL, bad),
                     401, "invalid_credentials");
    struct hres r = http_req(IT.gw[1], "127.0.2.2", "POST", "/api/v1/auth/login", NULL, good);
    assert_int_equal(r.status, 429);
    assert_string_equal(hres_str(&r, "error.code"), "rate_limited");
    assert_true(atoi(r.retry_after) > 0 && atoi(r.retry_after) <= 120);
    hres_free(&r);
    /* Per IP: 12 per window in the test gateways, across accounts. */
    int limited = 0;
    char body[256];
    for (int i = 0; i < 14; i++) {
        snprintf(body, sizeof body, "{\"email\":\"ghost%d-%d@example.com\",\"password\":\"x\"}",
                 getpid(), i);
        r = http_req(IT.gw[i % 2], "127.0.2.4", "POST", "/api/v1/auth/login", NULL, body);
        if (r.status == 429)
            limited++;
        else
            assert_int_equal(r.status, 401);
        hres_free(&r);
    }
    assert_int_equal(limited, 2);
    /* Another address is not affected. */
    struct acct b;
    signup(&b, "Unaffected");
    snprintf(body, sizeof body, "{\"email\":\"%s\",\"password\":\"" PW "\"}", b.email);
    r = http_req(IT.gw[0], "127.0.2.5", "POST", "/api/v1/auth/login", NULL, body);
    assert_int_equal(r.status, 200);
    hres_free(&r);
}

/* The HTTP API refuses a session whose expiry has passed, as the WebSocket
 * auth does (it_auth): 401 unauthorized on a route any token may call and on
 * one of the workspace's, where the same token answered 200 a moment before;
 * a fresh token of the same person still works. */
static void expired_token_refused(void **state)
{
    (void)state;
    struct acct a;
    signup(&a, "expiry");
    char ws[40];
    new_workspace(&a, ws);
    struct hres r = http_req(IT.gw[0], NULL, "GET", "/api/v1/me", a.token, NULL);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    r = http_reqf(IT.gw[0], NULL, "GET", a.token, NULL, "/api/v1/workspaces/%s", ws);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    /* Its expiry a second ago: nothing else about it changes. */
    assert_string_equal(it_sqlf("UPDATE access_tokens SET expires_at = now() - interval '1 second'"
                                " WHERE person_id = '%s' AND revoked_at IS NULL RETURNING 'x'",
                                a.id),
                        "x");
    r = http_req(IT.gw[0], NULL, "GET", "/api/v1/me", a.token, NULL);
    assert_int_equal(r.status, 401);
    assert_string_equal(hres_str(&r, "error.code"), "unauthorized");
    hres_free(&r);
    r = http_reqf(IT.gw[1], NULL, "GET", a.token, NULL, "/api/v1/workspaces/%s", ws);
    assert_int_equal(r.status, 401);
    assert_string_equal(hres_str(&r, "error.code"), "unauthorized");
    hres_free(&r);
    char fresh[64];
    const char *t = it_admin("create-token %s %s 3600", a.id, ws);
    assert_non_null(t);
    snprintf(fresh, sizeof fresh, "%s", t);
    r = http_req(IT.gw[1], NULL, "GET", "/api/v1/me", fresh, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "id"), a.id);
    hres_free(&r);
    r = http_reqf(IT.gw[0], NULL, "GET", fresh, NULL, "/api/v1/workspaces/%s", ws);
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "role"), "owner");
    hres_free(&r);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(signup_login_logout),
        cmocka_unit_test(expired_token_refused),
        cmocka_unit_test(rehash_on_login),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(invitation_lifecycle),
        cmocka_unit_test(invitation_delivery_state),
        cmocka_unit_test(invitation_expiry_revocation_and_links),
        cmocka_unit_test(logout_closes_websockets_on_both_gateways),
        cmocka_unit_test(revocation_missed_during_redis_outage_still_applies),
        cmocka_unit_test(soft_delete_and_restore),
        cmocka_unit_test(workspace_deletion_removes_everything),
        cmocka_unit_test(avatar_tokens_rooms_and_revocation),
        cmocka_unit_test(room_membership_and_archive),
        cmocka_unit_test(rectification),
        cmocka_unit_test(visit_log_and_anonymisation),
        cmocka_unit_test(login_rate_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
