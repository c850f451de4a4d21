/* Integration: self-service join by company domain (issue 20) - a
 * workspace's owner opens it to the proven addresses of its allowed
 * domains; those people find it and join as members; unproven addresses,
 * other domains, removed members and closed workspaces never match, and
 * cannot tell such a workspace from one that does not exist. Also the
 * workspace language setting the deliverer's templates follow. */
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

#define SRC "127.0.2.20"
#define PW "correct horse battery staple"

static int seq;

struct acct {
    char email[128]; /* lower case */
    char token[64];  /* session */
    char id[40];     /* person id */
};

/* A proven account at domain (sign-up, then the secret from the outbox). */
static void signup_at(struct acct *a, const char *domain)
{
    snprintf(a->email, sizeof a->email, "sj-%d-%d@%s", getpid(), ++seq, domain);
    it_signup(SRC, a->email, PW, "Sami", a->token, a->id);
}

static void expect_error(struct hres r, int status, const char *code)
{
    if (r.status != status || strcmp(hres_str(&r, "error.code"), code))
        fprintf(stderr, "expected %d %s, got %d %s\n", status, code, r.status, r.body);
    assert_int_equal(r.status, status);
    assert_string_equal(hres_str(&r, "error.code"), code);
    hres_free(&r);
}

/* Whether ws is among GET /api/v1/joinable for tok. */
static bool joinable(const char *tok, const char *ws)
{
    struct hres r = http_req(IT.gw[1], NULL, "GET", "/api/v1/joinable", tok, NULL);
    assert_int_equal(r.status, 200);
    bool found = false;
    cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(r.json, "items"))
    {
        cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        if (cJSON_IsString(id) && !strcmp(id->valuestring, ws)) found = true;
    }
    hres_free(&r);
    return found;
}

static void settings_and_permissions(void **state)
{
    (void)state;
    struct acct o, adm;
    signup_at(&o, "owner.example");
    signup_at(&adm, "owner.example");
    struct hres r = http_req(IT.gw[0], NULL, "POST", "/api/v1/workspaces", o.token,
                             "{\"name\":\"Corp\",\"allowed_domains\":[\"Corp.Example\"]}");
    assert_int_equal(r.status, 201);
    char ws[40];
    snprintf(ws, sizeof ws, "%s", hres_str(&r, "id"));
    /* Off by default, English by default. */
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(r.json, "self_join")));
    assert_string_equal(hres_str(&r, "language"), "en");
    hres_free(&r);
    assert_string_equal(it_sqlf("INSERT INTO workspace_members (workspace_id, person_id, role)"
                                " VALUES ('%s', '%s', 'admin') RETURNING 1",
                                ws, adm.id),
                        "1");
    /* Opening the workspace to a whole company is the owner's decision. */
    expect_error(http_reqf(IT.gw[0], NULL, "PATCH", adm.token, "{\"self_join\":true}",
                           "/api/v1/workspaces/%s", ws),
                 403, "forbidden");
    assert_string_equal(it_sqlf("SELECT self_join FROM workspaces WHERE id = '%s'", ws), "f");
    /* An admin may change the language; bad values are refused. */
    r = http_reqf(IT.gw[0], NULL, "PATCH", adm.token, "{\"language\":\"de\"}",
                  "/api/v1/workspaces/%s", ws);
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "language"), "de");
    hres_free(&r);
    expect_error(http_reqf(IT.gw[0], NULL, "PATCH", adm.token, "{\"language\":\"DE\"}",
                           "/api/v1/workspaces/%s", ws),
                 400, "bad_field");
    expect_error(http_reqf(IT.gw[0], NULL, "PATCH", o.token, "{\"self_join\":\"yes\"}",
                           "/api/v1/workspaces/%s", ws),
                 400, "bad_field");
    assert_string_equal(it_sqlf("SELECT language FROM workspaces WHERE id = '%s'", ws), "de");
    r = http_reqf(IT.gw[0], NULL, "PATCH", o.token, "{\"self_join\":true}", "/api/v1/workspaces/%s",
                  ws);
    assert_int_equal(r.status, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r.json, "self_join")));
    hres_free(&r);
}

static void join_by_domain(void **state)
{
    (void)state;
    char dom[64];
    snprintf(dom, sizeof dom, "corp%d.example", getpid());
    struct acct o, ina, other, sub, unproven, gone;
    signup_at(&o, "consulting.example");
    signup_at(&ina, dom);
    signup_at(&other, "elsewhere.example");
    char subdom[80];
    snprintf(subdom, sizeof subdom, "eu.%s", dom);
    signup_at(&sub, subdom);
    signup_at(&unproven, dom);
    signup_at(&gone, dom);
    /* An account from before addresses had to be proven. */
    it_sqlf("UPDATE people SET email_verified_at = NULL WHERE id = '%s' RETURNING 1", unproven.id);

    char body[256], ws[40];
    snprintf(body, sizeof body, "{\"name\":\"Client\",\"allowed_domains\":[\"%s\"]}", dom);
    struct hres r = http_req(IT.gw[0], NULL, "POST", "/api/v1/workspaces", o.token, body);
    assert_int_equal(r.status, 201);
    snprintf(ws, sizeof ws, "%s", hres_str(&r, "id"));
    hres_free(&r);

    /* Closed (the default): nobody finds it, and joining is 404 as for a
     * workspace that does not exist. */
    assert_false(joinable(ina.token, ws));
    expect_error(
        http_reqf(IT.gw[0], NULL, "POST", ina.token, NULL, "/api/v1/workspaces/%s/join", ws), 404,
        "not_found");
    r = http_reqf(IT.gw[0], NULL, "PATCH", o.token, "{\"self_join\":true}", "/api/v1/workspaces/%s",
                  ws);
    assert_int_equal(r.status, 200);
    hres_free(&r);

    /* A removed member may not come back on their own. */
    it_sqlf("INSERT INTO workspace_members (workspace_id, person_id, role, removed_at)"
            " VALUES ('%s', '%s', 'member', now()) RETURNING 1",
            ws, gone.id);
    assert_false(joinable(gone.token, ws));
    expect_error(
        http_reqf(IT.gw[0], NULL, "POST", gone.token, NULL, "/api/v1/workspaces/%s/join", ws), 404,
        "not_found");
    assert_string_equal(it_sqlf("SELECT removed_at IS NOT NULL FROM workspace_members"
                                " WHERE workspace_id = '%s' AND person_id = '%s'",
                                ws, gone.id),
                        "t");

    /* Other domains, subdomains and unproven addresses never match. */
    const struct acct *no[] = {&other, &sub, &unproven};
    for (int i = 0; i < 3; i++) {
        assert_false(joinable(no[i]->token, ws));
        expect_error(
            http_reqf(IT.gw[1], NULL, "POST", no[i]->token, NULL, "/api/v1/workspaces/%s/join", ws),
            404, "not_found");
    }
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM workspace_members WHERE workspace_id = '%s'", ws), "2");

    /* The proven address of the domain: found, joined as a member. */
    assert_true(joinable(ina.token, ws));
    r = http_reqf(IT.gw[1], NULL, "POST", ina.token, NULL, "/api/v1/workspaces/%s/join", ws);
    assert_int_equal(r.status, 201);
    assert_string_equal(hres_str(&r, "id"), ws);
    assert_string_equal(hres_str(&r, "role"), "member");
    hres_free(&r);
    assert_false(joinable(ina.token, ws));
    expect_error(
        http_reqf(IT.gw[0], NULL, "POST", ina.token, NULL, "/api/v1/workspaces/%s/join", ws), 409,
        "already_member");
    r = http_reqf(IT.gw[0], NULL, "GET", ina.token, NULL, "/api/v1/workspaces/%s/rooms", ws);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    assert_string_equal(it_sqlf("SELECT role FROM workspace_members WHERE workspace_id = '%s'"
                                " AND person_id = '%s' AND removed_at IS NULL",
                                ws, ina.id),
                        "member");

    /* Closed again: the next person of the domain no longer gets in. */
    struct acct late;
    signup_at(&late, dom);
    r = http_reqf(IT.gw[0], NULL, "PATCH", o.token, "{\"self_join\":false}",
                  "/api/v1/workspaces/%s", ws);
    assert_int_equal(r.status, 200);
    hres_free(&r);
    assert_false(joinable(late.token, ws));
    expect_error(
        http_reqf(IT.gw[0], NULL, "POST", late.token, NULL, "/api/v1/workspaces/%s/join", ws), 404,
        "not_found");
    /* No token: 401. */
    expect_error(http_reqf(IT.gw[0], NULL, "POST", NULL, NULL, "/api/v1/workspaces/%s/join", ws),
                 401, "unauthorized");
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(settings_and_permissions),
        cmocka_unit_test(join_by_domain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
