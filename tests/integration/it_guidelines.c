/* Integration: communication guidelines with real servers. Rules set over
 * HTTP apply to every message before it is stored or seen - from people and
 * avatar bots alike - on both gateways; a change on one gateway applies on
 * the other; room overrides; dry runs; refusals of bad rule sets; audit. */
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

#define SRC "127.0.4.1"
#define PW "correct horse battery staple"

static int seq;

struct acct {
    char token[64], id[40];
};

static void signup(struct acct *a)
{
    char email[96];
    snprintf(email, sizeof email, "gl-%d-%d@example.com", getpid(), ++seq);
    it_signup(SRC, email, PW, NULL, a->token, a->id);
}

struct world {
    struct acct owner, member;
    char ws[40], room[40], room2[40], bot_tok[64];
};

static void create(const char *tok, const char *path, const char *body, char *id, char *field)
{
    struct hres r = http_req(IT.gw[0], NULL, "POST", path, tok, body);
    assert_int_equal(r.status, 201);
    snprintf(id, 64, "%s", hres_str(&r, field));
    hres_free(&r);
}

static void build(struct world *w)
{
    char path[160];
    signup(&w->owner);
    signup(&w->member);
    create(w->owner.token, "/api/v1/workspaces", "{\"name\":\"guided\"}", w->ws, "id");
    it_sqlf("INSERT INTO workspace_members (workspace_id, person_id, role) VALUES ('%s', '%s',"
            " 'member') RETURNING 1",
            w->ws, w->member.id);
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/rooms", w->ws);
    create(w->owner.token, path, "{\"name\":\"main\"}", w->room, "id");
    create(w->owner.token, path, "{\"name\":\"second\"}", w->room2, "id");
    char av[64];
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/avatars", w->ws);
    create(w->owner.token, path, "{\"name\":\"Ada\"}", av, "id");
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/avatars/%s/tokens", w->ws, av);
    create(w->owner.token, path, "{}", w->bot_tok, "token");
}

static int put_rules(int g, const char *tok, const char *ws, const char *room, const char *rules,
                     struct hres *out)
{
    char path[200];
    if (room)
        snprintf(path, sizeof path, "/api/v1/workspaces/%s/rooms/%s/guidelines", ws, room);
    else
        snprintf(path, sizeof path, "/api/v1/workspaces/%s/guidelines", ws);
    struct hres r = http_req(IT.gw[g], NULL, "PUT", path, tok, rules);
    int st = r.status;
    if (out)
        *out = r;
    else
        hres_free(&r);
    return st;
}

static const char rules1[] =
    "{\"rules\":[{\"id\":\"language\",\"kind\":\"words\",\"terms\":[\"darn\"],\"action\":\"mask\"},"
    "{\"id\":\"privacy\",\"kind\":\"pii\",\"detect\":[\"email\",\"card\"],\"action\":\"redact\"},"
    "{\"id\":\"codes\",\"kind\":\"regex\",\"pattern\":\"forbidden-[0-9]+\",\"action\":\"reject\"},"
    "{\"id\":\"links\",\"kind\":\"links\",\"action\":\"flag\"}]}";

/* c sends body; it is accepted and the watcher gets want as its body. The
 * push is returned (the caller frees it). */
static cJSON *sent_and_seen(struct wsc *c, struct wsc *watcher, const char *room, const char *cmid,
                            const char *body, const char *want)
{
    cJSON *r = it_send(c, room, cmid, body);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    cJSON *p = wsc_wait_push(watcher, "message", 3000);
    assert_non_null(p);
    assert_string_equal(wsc_str(p, "body"), want);
    return p;
}

/* c sends body; it is refused with code, the message names what, and
 * nothing is stored under cmid. */
static void refused(struct wsc *c, const char *room, const char *cmid, const char *body,
                    const char *code, const char *what)
{
    cJSON *r = it_send(c, room, cmid, body);
    assert_non_null(wsc_err_code(r)); /* accepted: the bug, reported as one */
    assert_string_equal(wsc_err_code(r), code);
    assert_non_null(strstr(wsc_str(r, "error.message"), what));
    cJSON_Delete(r);
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s' AND client_msg_id = '%s'", room,
                cmid),
        "0");
}

static void messages_are_checked_before_anyone_sees_them(void **state)
{
    (void)state;
    struct world w;
    build(&w);
    assert_int_equal(put_rules(0, w.owner.token, w.ws, NULL, rules1, NULL), 200);
    struct wsc *watcher = it_member(0, w.owner.token, w.room);
    struct wsc *m = it_member(1, w.member.token, w.room);
    struct wsc *bot = it_member(1, w.bot_tok, w.room);
    cJSON_Delete(sent_and_seen(m, watcher, w.room, "g1",
                               "well DARN it, mail me at ana@client.example",
                               "well **** it, mail me at [email removed]"));
    /* The original never reached storage. */
    assert_string_equal(it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s' AND (body ILIKE"
                                " '%%darn%%' OR body LIKE '%%ana@%%')",
                                w.room),
                        "0");
    /* A bot is held to the same rules. */
    cJSON *p = sent_and_seen(bot, watcher, w.room, "b1", "Darn, I am a bot", "****, I am a bot");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(p, "avatar")));
    cJSON_Delete(p);
    /* Rejected: the sender is told which guideline, nothing is stored. */
    refused(m, w.room, "g2", "the code is FORBIDDEN-42", "guideline_violation", "codes");
    assert_null(wsc_wait_push(watcher, "message", 300));
    /* Flagged: delivered, and the hit recorded for moderators. */
    cJSON_Delete(sent_and_seen(m, watcher, w.room, "g3", "see https://elsewhere.example/x",
                               "see https://elsewhere.example/x"));
    usleep(300000);
    assert_string_equal(it_sqlf("SELECT string_agg(rule_id || ':' || action, ',' ORDER BY id) FROM"
                                " guideline_hits WHERE room_id = '%s'",
                                w.room),
                        "language:mask,privacy:redact,language:mask,codes:reject,links:flag");
    /* Redactions that would take the body past max_body (4096; each 12-byte
     * address becomes a 15-byte placeholder): refused, nothing stored, and
     * the connection goes on. */
    char big[4096];
    size_t o = 0;
    for (int i = 0; i < 300; i++)
        o += (size_t)snprintf(big + o, sizeof big - o, "%sa%d@b.example", i ? " " : "", i % 10);
    assert_true(o < 4096 && o + 300 * 3 > 4096);
    refused(m, w.room, "g4", big, "body_too_long", "redactions");
    cJSON_Delete(sent_and_seen(m, watcher, w.room, "g5", "still here", "still here"));
    wsc_close(watcher);
    wsc_close(m);
    wsc_close(bot);
}

/* Rooms with the same effective rules share one compiled set per gateway;
 * a room override makes a set of its own. */
static void rooms_share_one_compiled_set(void **state)
{
    (void)state;
    struct world w;
    build(&w);
    char rules[256];
    snprintf(
        rules, sizeof rules, /* a term of this world only: no other room has these rules */
        "{\"rules\":[{\"id\":\"u\",\"kind\":\"words\",\"terms\":[\"w%.8s\"],\"action\":\"flag\"}]}",
        w.ws);
    assert_int_equal(put_rules(0, w.owner.token, w.ws, NULL, rules, NULL), 200);
    struct wsc *m1 = it_member(1, w.member.token, w.room);
    cJSON_Delete(it_join(m1, w.room2, -1));
    /* The change reaches gateway 1 through Redis, and a set it had read
     * before serves until then: send the term until it hits there. */
    char term[16], cmid[16];
    snprintf(term, sizeof term, "w%.8s", w.ws);
    double h0 = it_metric(1, "parley_guideline_hits_total");
    bool applied = false;
    cJSON *r;
    for (int i = 0; i < 40 && !applied; i++) {
        snprintf(cmid, sizeof cmid, "s1-%d", i);
        r = it_send(m1, w.room, cmid, term);
        assert_null(wsc_err_code(r));
        cJSON_Delete(r);
        applied = it_metric(1, "parley_guideline_hits_total") > h0;
        if (!applied) usleep(50000);
    }
    assert_true(applied);
    double c0 = it_metric(1, "parley_guideline_compiles_total");
    double k0 = it_metric(1, "parley_guideline_checks_total");
    r = it_send(m1, w.room2, "s2", "two");
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    assert_true(it_metric(1, "parley_guideline_compiles_total") == c0); /* the first room's set */
    assert_true(it_metric(1, "parley_guideline_checks_total") == k0 + 1);
    /* an override in the second room: its own set, the first room keeps the shared one */
    assert_int_equal(put_rules(0, w.owner.token, w.ws, w.room2,
                               "{\"rules\":[{\"id\":\"x\",\"kind\":\"max_length\","
                               "\"max\":100,\"action\":\"reject\"}]}",
                               NULL),
                     200);
    /* the change reaches gateway 1 through Redis: send until it applies */
    char longer[160];
    memset(longer, 'l', 150);
    longer[150] = 0;
    applied = false;
    for (int i = 0; i < 40 && !applied; i++) {
        snprintf(cmid, sizeof cmid, "s3-%d", i);
        r = it_send(m1, w.room2, cmid, longer);
        applied = wsc_err_code(r) != NULL;
        cJSON_Delete(r);
        if (!applied) usleep(50000);
    }
    assert_true(applied);
    r = it_send(m1, w.room, "s4", "four");
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    /* both rooms' entries were dropped by the change: the shared set once, the override once */
    assert_true(it_metric(1, "parley_guideline_compiles_total") == c0 + 2);
    wsc_close(m1);
}

static void a_change_on_one_gateway_applies_on_the_other(void **state)
{
    (void)state;
    struct world w;
    build(&w);
    assert_int_equal(put_rules(0, w.owner.token, w.ws, NULL, rules1, NULL), 200);
    struct wsc *m = it_member(1, w.member.token, w.room);
    cJSON *r = it_send(m, w.room, "c1", "oh heck");
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    /* gateway 1 has the rules compiled now; the change is made on gateway 0 */
    const char *stricter =
        "{\"rules\":[{\"id\":\"language\",\"kind\":\"words\",\"terms\":[\"darn\",\"heck\"],"
        "\"action\":\"reject\"}]}";
    assert_int_equal(put_rules(0, w.owner.token, w.ws, NULL, stricter, NULL), 200);
    const char *code = NULL;
    for (int i = 0; i < 40; i++) {
        char cmid[16];
        snprintf(cmid, sizeof cmid, "c2-%d", i);
        r = it_send(m, w.room, cmid, "oh heck again");
        code = wsc_err_code(r) ? "guideline_violation" : NULL;
        bool done = wsc_err_code(r) && !strcmp(wsc_err_code(r), "guideline_violation");
        cJSON_Delete(r);
        if (done) break;
        usleep(50000);
    }
    assert_non_null(code);
    /* A room override replaces the workspace rule of the same id in that room only. */
    const char *lenient =
        "{\"rules\":[{\"id\":\"language\",\"kind\":\"words\",\"terms\":[\"heck\"],"
        "\"action\":\"flag\"},{\"id\":\"slow\",\"kind\":\"slow_mode\",\"max\":30,"
        "\"action\":\"reject\"}]}";
    assert_int_equal(put_rules(1, w.owner.token, w.ws, w.room2, lenient, NULL), 200);
    struct wsc *m2 = it_member(0, w.member.token, w.room2);
    usleep(200000);
    r = it_send(m2, w.room2, "o1", "heck");
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    /* ... and its slow mode allows one message per 30 s. */
    r = it_send(m2, w.room2, "o2", "fine words");
    assert_string_equal(wsc_err_code(r), "guideline_violation");
    cJSON_Delete(r);
    wsc_close(m);
    wsc_close(m2);
}

static void editing_rules_dry_run_refusals_and_audit(void **state)
{
    (void)state;
    struct world w;
    build(&w);
    struct hres r;
    assert_int_equal(put_rules(0, w.owner.token, w.ws, NULL, rules1, NULL), 200);
    /* Dry run: verdict and hits, nothing stored. */
    char path[200], body[256];
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/guidelines/dry-run", w.ws);
    r = http_req(IT.gw[1], NULL, "POST", path, w.owner.token,
                 "{\"text\":\"darn, card 4111 1111 1111 1111\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "action"), "redact");
    assert_string_equal(hres_str(&r, "text"), "****, card [card removed]");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "hits")), 2);
    hres_free(&r);
    snprintf(body, sizeof body, "{\"text\":\"x\",\"room_id\":\"%s\"}",
             "00000000-0000-4000-8000-000000000000");
    r = http_req(IT.gw[1], NULL, "POST", path, w.owner.token, body);
    assert_int_equal(r.status, 404);
    hres_free(&r);
    /* A bad regex: the rule's index and the offset PCRE2 reports. */
    assert_int_equal(put_rules(0, w.owner.token, w.ws, NULL,
                               "{\"rules\":[{\"kind\":\"links\",\"action\":\"flag\"},{\"kind\":"
                               "\"regex\",\"pattern\":\"ab[c\",\"action\":\"flag\"}]}",
                               &r),
                     400);
    assert_string_equal(hres_str(&r, "error.code"), "bad_rule");
    assert_string_equal(hres_str(&r, "error.field"), "rules[1]");
    assert_int_equal(
        (int)cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "error"), "offset")->valuedouble, 4);
    hres_free(&r);
    assert_int_equal(
        put_rules(0, w.owner.token, w.ws, NULL, "{\"rules\":[{\"kind\":\"words\"}]}", NULL), 400);
    /* An unknown action is named. */
    assert_int_equal(put_rules(0, w.owner.token, w.ws, NULL,
                               "{\"rules\":[{\"kind\":\"links\",\"action\":\"quarantine\"}]}",
                               NULL),
                     400);
    /* Too large: refused by the body limit. */
    size_t big = 70000;
    char *huge = malloc(big + 64);
    int n = snprintf(huge, big + 64,
                     "{\"rules\":[{\"kind\":\"words\",\"action\":\"mask\",\"terms\":[\"");
    memset(huge + n, 'x', big);
    strcpy(huge + n + big, "\"]}]}");
    assert_int_equal(put_rules(0, w.owner.token, w.ws, NULL, huge, NULL), 413);
    free(huge);
    /* The rules in force are unchanged by the refusals. */
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/guidelines", w.ws);
    r = http_req(IT.gw[0], NULL, "GET", path, w.member.token, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal((int)cJSON_GetObjectItem(r.json, "version")->valuedouble, 1);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "rules")), 4);
    hres_free(&r);
    /* Members read the rules but may not change them; other workspaces see nothing. */
    assert_int_equal(put_rules(0, w.member.token, w.ws, NULL, rules1, NULL), 403);
    struct world other;
    build(&other);
    assert_int_equal(put_rules(0, other.owner.token, w.ws, NULL, rules1, NULL), 404);
    assert_int_equal(put_rules(0, w.owner.token, w.ws, other.room, rules1, NULL), 404);
    /* Audit: who, when, before and after. */
    assert_int_equal(put_rules(1, w.owner.token, w.ws, NULL, "{\"rules\":[]}", NULL), 200);
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/guidelines/audit", w.ws);
    r = http_req(IT.gw[0], NULL, "GET", path, w.owner.token, NULL);
    assert_int_equal(r.status, 200);
    cJSON *items = cJSON_GetObjectItem(r.json, "items");
    assert_int_equal(cJSON_GetArraySize(items), 2);
    cJSON *last = cJSON_GetArrayItem(items, 0);
    assert_string_equal(wsc_str(last, "actor_id"), w.owner.id);
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(last, "before"), "rules")), 4);
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(last, "after"), "rules")), 0);
    hres_free(&r);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(messages_are_checked_before_anyone_sees_them),
        cmocka_unit_test(a_change_on_one_gateway_applies_on_the_other),
        cmocka_unit_test(rooms_share_one_compiled_set),
        cmocka_unit_test(editing_rules_dry_run_refusals_and_audit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
