/* Integration: moderation with real servers. Held messages wait for a
 * moderator and then arrive in order (a client recovering with since across
 * that moment sees no gap and no duplicate); shadowed messages reach only
 * their sender and the moderators, on both gateways; mutes, locks, slow
 * mode, removal, deletion and edits; moderation by a member (403) and across
 * workspaces (404); the audit log; the evaluation in JSON and CSV. */
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

/* person 0, 1: members; 2: key user (moderator) */
enum { A, B, MOD };

static void world(struct it_world *w)
{
    it_world(w, 3, NULL);
    it_sqlf("UPDATE workspace_members SET role = 'keyuser' WHERE workspace_id = '%s'"
            " AND person_id = '%s' RETURNING 1",
            w->ws, w->person[MOD]);
}

static int put_rules(const struct it_world *w, const char *rules)
{
    char path[160];
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/guidelines", w->ws);
    struct hres r = http_req(IT.gw[0], NULL, "PUT", path, w->tok[MOD], rules);
    int st = r.status;
    if (st != 200) fprintf(stderr, "PUT rules: %d %s\n", st, r.body);
    hres_free(&r);
    return st;
}

/* The API on gateway g: http_reqf with the arguments in this file's order. */
#define api(g, tok, method, body, ...) http_reqf(IT.gw[g], NULL, method, tok, body, __VA_ARGS__)

static int64_t send_ok(struct wsc *c, const char *room, const char *cmid, const char *body)
{
    cJSON *r = it_send(c, room, cmid, body);
    if (wsc_err_code(r)) fprintf(stderr, "send %s: %s\n", cmid, wsc_str(r, "error.message"));
    assert_null(wsc_err_code(r));
    int64_t seq = wsc_int(r, "ok.seq");
    cJSON_Delete(r);
    return seq;
}

static const char *send_err(struct wsc *c, const char *room, const char *cmid, const char *body)
{
    static char code[64];
    cJSON *r = it_send(c, room, cmid, body);
    snprintf(code, sizeof code, "%s", wsc_err_code(r) ? wsc_err_code(r) : "ok");
    cJSON_Delete(r);
    return code;
}

/* A command that must be refused with code. */
static void expect_err(struct wsc *c, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void expect_err(struct wsc *c, const char *code, const char *fmt, ...)
{
    char fields[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fields, sizeof fields, fmt, ap);
    va_end(ap);
    cJSON *r = wsc_request(c, 3000, "%s", fields);
    assert_non_null(wsc_err_code(r));
    assert_string_equal(wsc_err_code(r), code);
    cJSON_Delete(r);
}

/* Sends until the answer is want (a change made through another gateway
 * arrives over Redis within milliseconds); returns the last answer. */
static const char *send_until(struct wsc *c, const char *room, const char *prefix, const char *want)
{
    const char *code = "";
    for (int i = 0; i < 40; i++) {
        char cmid[32];
        snprintf(cmid, sizeof cmid, "%s-%d", prefix, i);
        code = send_err(c, room, cmid, "are we there yet");
        if (!strcmp(code, want)) break;
        usleep(50000);
    }
    return code;
}

/* The next "message" push, which must carry seq. */
static void expect_message(struct wsc *c, int64_t seq, const char *cmid)
{
    cJSON *p = wsc_wait_push(c, "message", 3000);
    assert_non_null(p);
    if (wsc_int(p, "seq") != seq) {
        char *t = cJSON_PrintUnformatted(p);
        fprintf(stderr, "unexpected: %s\n", t);
        free(t);
    }
    assert_int_equal(wsc_int(p, "seq"), seq);
    if (cmid) assert_string_equal(wsc_str(p, "client_msg_id"), cmid);
    cJSON_Delete(p);
}

static const char hold_rules[] =
    "{\"rules\":[{\"id\":\"review\",\"kind\":\"words\",\"terms\":[\"contract\"],\"action\":"
    "\"hold\"},"
    "{\"id\":\"spam\",\"kind\":\"words\",\"terms\":[\"casino\"],\"action\":\"shadow\"},"
    "{\"id\":\"watch\",\"kind\":\"words\",\"terms\":[\"budget\"],\"action\":\"flag\"},"
    "{\"id\":\"polite\",\"kind\":\"words\",\"terms\":[\"darn\"],\"action\":\"mask\"}]}";

static void held_message_arrives_in_order_when_approved(void **state)
{
    (void)state;
    struct it_world w;
    world(&w);
    assert_int_equal(put_rules(&w, hold_rules), 200);
    struct wsc *a = it_member(0, w.tok[A], w.room);
    struct wsc *b = it_member(1, w.tok[B], w.room);
    struct wsc *mod = it_member(1, w.tok[MOD], w.room);
    int64_t s1 = send_ok(a, w.room, "h1", "hello");
    expect_message(b, s1, "h1");
    /* Held: the sender is told, nothing takes a seq, nobody but the sender
     * and the moderators hears of it. */
    cJSON *r = it_send(a, w.room, "h2", "the contract draft is attached");
    assert_null(wsc_err_code(r));
    assert_string_equal(wsc_str(r, "ok.state"), "held");
    assert_int_equal(wsc_int(r, "ok.seq"), INT64_MIN);
    int64_t pid = wsc_int(r, "ok.pending");
    assert_true(pid > 0);
    cJSON_Delete(r);
    cJSON *p = wsc_wait_push(mod, "pending", 3000);
    assert_non_null(p);
    assert_int_equal(wsc_int(p, "id"), pid);
    assert_string_equal(wsc_str(p, "state"), "held");
    assert_string_equal(wsc_str(p, "body"), "the contract draft is attached");
    cJSON_Delete(p);
    p = wsc_wait_push(a, "pending", 3000); /* the sender's own copy */
    assert_non_null(p);
    cJSON_Delete(p);
    int64_t s2 = send_ok(a, w.room, "h3", "after the held one");
    assert_int_equal(s2, s1 + 1);
    expect_message(b, s2, "h3");
    assert_null(wsc_wait_push(b, "pending", 300));
    expect_message(a, s1, "h1"); /* the sender's own, in order, without the held one */
    expect_message(a, s2, "h3");
    /* A retry of the held send answers the same pending id. */
    r = it_send(a, w.room, "h2", "the contract draft is attached");
    assert_int_equal(wsc_int(r, "ok.pending"), pid);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "duplicate")));
    cJSON_Delete(r);
    /* b goes away at s2; a member may not decide; the moderator approves. */
    wsc_close(b);
    expect_err(a, "forbidden", "\"op\":\"approve\",\"room\":\"%s\",\"pending\":%lld", w.room,
               (long long)pid);
    r = wsc_request(mod, 3000, "\"op\":\"approve\",\"room\":\"%s\",\"pending\":%lld", w.room,
                    (long long)pid);
    assert_null(wsc_err_code(r));
    int64_t s3 = wsc_int(r, "ok.seq");
    assert_int_equal(s3, s2 + 1);
    cJSON_Delete(r);
    expect_message(a, s3, "h2");
    expect_err(mod, "no_such_pending", "\"op\":\"approve\",\"room\":\"%s\",\"pending\":%lld",
               w.room, (long long)pid);
    int64_t s4 = send_ok(a, w.room, "h4", "later");
    /* b recovers from s2 on the other gateway: s3 (the approved one), s4,
     * no gap, no duplicate. */
    b = it_connect_auth(0, w.tok[B]);
    r = it_join(b, w.room, s2);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    p = wsc_wait_push(b, "message", 3000);
    assert_int_equal(wsc_int(p, "seq"), s3);
    assert_string_equal(wsc_str(p, "body"), "the contract draft is attached");
    cJSON_Delete(p);
    expect_message(b, s4, "h4");
    assert_null(wsc_wait_push(b, "message", 300));
    assert_string_equal(
        it_sqlf("SELECT state || ':' || seq FROM pending WHERE id = %lld", (long long)pid),
        it_sqlf("SELECT 'approved:%lld'", (long long)s3));
    wsc_close(a);
    wsc_close(b);
    wsc_close(mod);
}

static void shadowed_messages_reach_only_sender_and_moderators(void **state)
{
    (void)state;
    struct it_world w;
    world(&w);
    assert_int_equal(put_rules(&w, hold_rules), 200);
    struct wsc *a0 = it_member(0, w.tok[A], w.room);
    struct wsc *a1 = it_member(1, w.tok[A], w.room); /* the sender's second device */
    struct wsc *b0 = it_member(0, w.tok[B], w.room);
    struct wsc *b1 = it_member(1, w.tok[B], w.room);
    struct wsc *m0 = it_member(0, w.tok[MOD], w.room);
    struct wsc *m1 = it_member(1, w.tok[MOD], w.room);
    int64_t s1 = send_ok(b0, w.room, "s1", "first");
    cJSON *r = it_send(a0, w.room, "s2", "best casino in town");
    assert_string_equal(wsc_str(r, "ok.state"), "shadow");
    int64_t pid = wsc_int(r, "ok.pending");
    cJSON_Delete(r);
    struct wsc *see[] = {a1, m0, m1};
    for (int i = 0; i < 3; i++) {
        cJSON *p = wsc_wait_push(see[i], "pending", 3000);
        assert_non_null(p);
        assert_string_equal(wsc_str(p, "state"), "shadow");
        assert_string_equal(wsc_str(p, "body"), "best casino in town");
        assert_int_equal(wsc_int(p, "id"), pid);
        cJSON_Delete(p);
    }
    assert_null(wsc_wait_push(b0, "pending", 300));
    assert_null(wsc_wait_push(b1, "pending", 100));
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s' AND body LIKE '%%casino%%'",
                w.room),
        "0");
    /* The room's sequence goes on without a hole. */
    int64_t s2 = send_ok(b1, w.room, "s3", "second");
    assert_int_equal(s2, s1 + 1);
    struct wsc *all[] = {a0, a1, b0, b1, m0, m1};
    for (int i = 0; i < 6; i++) {
        expect_message(all[i], s1, "s1");
        expect_message(all[i], s2, "s3");
    }
    /* Listing: the sender sees theirs, a moderator all, another member none. */
    r = wsc_request(a0, 3000, "\"op\":\"pending\",\"room\":\"%s\"", w.room);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "items")),
                     1);
    cJSON_Delete(r);
    r = wsc_request(b0, 3000, "\"op\":\"pending\",\"room\":\"%s\"", w.room);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "items")),
                     0);
    cJSON_Delete(r);
    struct hres h =
        api(1, w.tok[MOD], "GET", NULL, "/api/v1/workspaces/%s/rooms/%s/pending", w.ws, w.room);
    assert_int_equal(h.status, 200);
    assert_non_null(strstr(h.body, "casino"));
    hres_free(&h);
    /* Rejected over HTTP: the text is dropped. */
    h = api(0, w.tok[B], "POST", "{}", "/api/v1/workspaces/%s/rooms/%s/pending/%lld/reject", w.ws,
            w.room, (long long)pid);
    assert_int_equal(h.status, 403);
    hres_free(&h);
    h = api(0, w.tok[MOD], "POST", "{\"reason\":\"spam\"}",
            "/api/v1/workspaces/%s/rooms/%s/pending/%lld/reject", w.ws, w.room, (long long)pid);
    assert_int_equal(h.status, 200);
    hres_free(&h);
    cJSON *p = wsc_wait_push(a1, "pending", 3000);
    assert_string_equal(wsc_str(p, "state"), "rejected");
    cJSON_Delete(p);
    assert_string_equal(
        it_sqlf("SELECT state || ':' || body FROM pending WHERE id = %lld", (long long)pid),
        "rejected:");
    for (int i = 0; i < 6; i++)
        wsc_close(all[i]);
}

/* A Redis command through redis-cli; its first output line. */
static const char *redis(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *redis(const char *fmt, ...)
{
    static char out[256];
    char cmd[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    out[0] = 0;
    assert_int_equal(it_run(out, sizeof out, "redis-cli -p %d %s", IT.redis_port, cmd), 0);
    out[strcspn(out, "\n")] = 0;
    return out;
}

/* A person's rate bucket is one, over all their connections and gateways;
 * a refused message is given back; the bucket refills with time. */
static void rate_is_per_person_across_gateways(void **state)
{
    (void)state;
    struct it_world w;
    world(&w);
    assert_int_equal(put_rules(&w, "{\"rules\":[{\"id\":\"burst\",\"kind\":\"rate\",\"max\":3,"
                                   "\"action\":\"reject\"},{\"id\":\"noise\",\"kind\":\"words\","
                                   "\"terms\":[\"noise\"],\"action\":\"reject\"}]}"),
                     200);
    struct wsc *a0 = it_member(0, w.tok[A], w.room);
    struct wsc *a1 = it_member(1, w.tok[A], w.room);
    struct wsc *b = it_member(1, w.tok[B], w.room);
    /* refused by another rule: not counted (else the third send below fails) */
    assert_string_equal(send_err(a0, w.room, "n1", "noise"), "guideline_violation");
    send_ok(a0, w.room, "r1", "one");
    send_ok(a1, w.room, "r2", "two");
    send_ok(a0, w.room, "r3", "three");
    /* three a minute: the fourth is refused, whichever gateway it comes through */
    cJSON *r = it_send(a1, w.room, "r4", "four");
    assert_string_equal(wsc_err_code(r), "guideline_violation");
    assert_non_null(strstr(wsc_str(r, "error.message"), "burst"));
    cJSON_Delete(r);
    assert_string_equal(send_err(a0, w.room, "r5", "five"), "guideline_violation");
    /* another person has a bucket of their own */
    send_ok(b, w.room, "b1", "mine is full");
    /* twenty seconds give one token back (the bucket's clock is moved back
     * rather than the test sleeping): one send passes, the next does not */
    char key[128];
    snprintf(key, sizeof key, "parley:pace:{%s}:%s", w.room, w.person[A]);
    long long ttl = atoll(redis("PTTL %s", key));
    assert_true(ttl > 60000 && ttl <= 120000); /* idle state expires by itself */
    assert_string_equal(redis("HEXISTS %s b3", key), "1");
    redis("HINCRBY %s at -20500", key);
    send_ok(a1, w.room, "r6", "refilled");
    assert_string_equal(send_err(a0, w.room, "r7", "too soon"), "guideline_violation");
    /* the moderator raises the limit: a new bucket, sends pass again */
    assert_int_equal(put_rules(&w, "{\"rules\":[{\"id\":\"burst\",\"kind\":\"rate\","
                                   "\"max\":1000,\"action\":\"reject\"}]}"),
                     200);
    assert_string_equal(send_until(a0, w.room, "r8", "ok"), "ok");
    /* sends that each wait for Redis are still stored in the order they came */
    enum { PIPE = 20 };
    for (int i = 0; i < PIPE; i++) {
        char f[256];
        int n = snprintf(f, sizeof f,
                         "{\"id\":%d,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"p%d\","
                         "\"body\":\"in order\"}",
                         900000 + i, w.room, i);
        assert_int_equal(wsc_send_text(a0, f, (size_t)n), 0);
    }
    int64_t seqs[PIPE] = {0};
    for (int i = 0; i < PIPE; i++) {
        cJSON *rep = wsc_next_reply(a0, 5000);
        assert_non_null(rep);
        assert_null(wsc_err_code(rep));
        int64_t id = wsc_int(rep, "id") - 900000;
        assert_true(id >= 0 && id < PIPE);
        seqs[id] = wsc_int(rep, "ok.seq");
        cJSON_Delete(rep);
    }
    for (int i = 1; i < PIPE; i++)
        assert_true(seqs[i] == seqs[i - 1] + 1);
    wsc_close(a0);
    wsc_close(a1);
    wsc_close(b);
}

static void mutes_locks_slow_mode_and_removal(void **state)
{
    (void)state;
    struct it_world w;
    world(&w);
    struct wsc *a = it_member(0, w.tok[A], w.room);
    struct wsc *b = it_member(1, w.tok[B], w.room);
    struct wsc *mod = it_member(1, w.tok[MOD], w.room);
    send_ok(a, w.room, "m0", "before");
    /* A member may not mute. */
    expect_err(b, "forbidden",
               "\"op\":\"mute\",\"room\":\"%s\",\"person\":\"%s\",\"duration_s\":60", w.room,
               w.person[A]);
    cJSON *r = wsc_request(mod, 3000,
                           "\"op\":\"mute\",\"room\":\"%s\",\"person\":\"%s\",\"duration_s\":60,"
                           "\"reason\":\"cool down\"",
                           w.room, w.person[A]);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    assert_string_equal(send_until(a, w.room, "m1", "muted"), "muted");
    send_ok(b, w.room, "m2", "b is not muted");
    /* A workspace-wide mute over HTTP, made on the other gateway. */
    struct hres h = api(0, w.tok[MOD], "POST",
                        it_sqlf("SELECT '{\"person_id\":\"%s\",\"duration_s\":60}'", w.person[B]),
                        "/api/v1/workspaces/%s/mutes", w.ws);
    assert_int_equal(h.status, 200);
    hres_free(&h);
    assert_string_equal(send_until(b, w.room, "m3", "muted"), "muted");
    h = api(1, w.tok[MOD], "GET", NULL, "/api/v1/workspaces/%s/mutes", w.ws);
    assert_int_equal(h.status, 200);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(h.json, "items")), 2);
    hres_free(&h);
    /* Lifted: a speaks again (the change reaches gateway 0 through Redis). */
    h = api(1, w.tok[MOD], "POST",
            it_sqlf("SELECT '{\"person_id\":\"%s\",\"room_id\":\"%s\"}'", w.person[A], w.room),
            "/api/v1/workspaces/%s/mutes/lift", w.ws);
    assert_int_equal(h.status, 200);
    hres_free(&h);
    assert_string_equal(send_until(a, w.room, "m4", "ok"), "ok");
    /* Locked: read-only but for moderators; members learn it in order. */
    r = wsc_request(mod, 3000, "\"op\":\"room_settings\",\"room\":\"%s\",\"locked\":true", w.room);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    cJSON *p = wsc_wait_push(a, "settings", 3000);
    assert_non_null(p);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(p, "locked")));
    cJSON_Delete(p);
    assert_string_equal(send_until(a, w.room, "m5", "room_locked"), "room_locked");
    send_ok(mod, w.room, "m6", "moderators may speak");
    /* Slow mode instead: one message per 30 s. */
    r = wsc_request(mod, 3000,
                    "\"op\":\"room_settings\",\"room\":\"%s\",\"locked\":false,\"slow_mode_s\":30",
                    w.room);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    /* a's last accepted message was moments ago; the pace is the person's,
     * so a's second connection, on the other gateway, is slowed too */
    assert_string_equal(send_until(a, w.room, "m7", "slow_mode"), "slow_mode");
    struct wsc *a2 = it_member(1, w.tok[A], w.room);
    cJSON *sr = it_send(a2, w.room, "m8", "from my phone");
    assert_string_equal(wsc_err_code(sr), "slow_mode");
    assert_non_null(strstr(wsc_str(sr, "error.message"), "one message per 30 s"));
    cJSON_Delete(sr);
    wsc_close(a2);
    send_ok(mod, w.room, "m9", "moderators are not slowed");
    send_ok(mod, w.room, "m10", "at all");
    /* Removed: out of the room on its gateway now, and refused at join. */
    h = api(0, w.tok[MOD], "POST", it_sqlf("SELECT '{\"person_id\":\"%s\"}'", w.person[B]),
            "/api/v1/workspaces/%s/rooms/%s/remove", w.ws, w.room);
    assert_int_equal(h.status, 200);
    hres_free(&h);
    p = wsc_wait_push(b, "removed", 3000);
    assert_non_null(p);
    cJSON_Delete(p);
    assert_string_equal(send_err(b, w.room, "m11", "hello?"), "not_joined");
    r = it_join(b, w.room, -1);
    assert_string_equal(wsc_err_code(r), "forbidden");
    cJSON_Delete(r);
    /* A key user may not act on an admin (people they do not manage). */
    it_sqlf("UPDATE workspace_members SET role = 'admin' WHERE person_id = '%s' RETURNING 1",
            w.person[A]);
    h = api(0, w.tok[MOD], "POST", it_sqlf("SELECT '{\"person_id\":\"%s\"}'", w.person[A]),
            "/api/v1/workspaces/%s/rooms/%s/remove", w.ws, w.room);
    assert_int_equal(h.status, 403);
    hres_free(&h);
    /* The audit log has every action, with actor and reason. */
    h = api(1, w.tok[MOD], "GET", NULL, "/api/v1/workspaces/%s/moderation/log?room=%s", w.ws,
            w.room);
    assert_int_equal(h.status, 200);
    assert_string_equal(it_sqlf("SELECT string_agg(action, ',' ORDER BY id) FROM moderation_log"
                                " WHERE workspace_id = '%s'",
                                w.ws),
                        "mute,mute,unmute,settings,settings,remove");
    assert_non_null(strstr(h.body, "cool down"));
    assert_non_null(strstr(h.body, w.person[MOD]));
    hres_free(&h);
    wsc_close(a);
    wsc_close(b);
    wsc_close(mod);
}

static void delete_and_edit(void **state)
{
    (void)state;
    struct it_world w;
    world(&w);
    assert_int_equal(put_rules(&w, hold_rules), 200);
    struct wsc *a = it_member(0, w.tok[A], w.room);
    struct wsc *b = it_member(1, w.tok[B], w.room);
    struct wsc *mod = it_member(1, w.tok[MOD], w.room);
    int64_t s1 = send_ok(a, w.room, "d1", "first words");
    int64_t s2 = send_ok(b, w.room, "d2", "b speaks");
    /* Someone else's message: only moderators. */
    expect_err(b, "forbidden", "\"op\":\"delete\",\"room\":\"%s\",\"seq\":%lld", w.room,
               (long long)s1);
    expect_err(b, "forbidden", "\"op\":\"edit\",\"room\":\"%s\",\"seq\":%lld,\"body\":\"x\"",
               w.room, (long long)s1);
    /* Own edit: passes the guidelines (masked), pushed to all in order. */
    cJSON *r =
        wsc_request(a, 3000, "\"op\":\"edit\",\"room\":\"%s\",\"seq\":%lld,\"body\":\"darn typo\"",
                    w.room, (long long)s1);
    assert_null(wsc_err_code(r));
    int64_t e1 = wsc_int(r, "ok.event_seq");
    assert_int_equal(e1, s2 + 1);
    cJSON_Delete(r);
    cJSON *p = wsc_wait_push(b, "edit", 3000);
    assert_non_null(p);
    assert_int_equal(wsc_int(p, "seq"), e1);
    assert_int_equal(wsc_int(p, "target"), s1);
    assert_string_equal(wsc_str(p, "body"), "**** typo");
    cJSON_Delete(p);
    /* Held or refused rewrites do not become edits. */
    expect_err(a, "guideline_violation",
               "\"op\":\"edit\",\"room\":\"%s\",\"seq\":%lld,\"body\":\"see the contract\"", w.room,
               (long long)s1);
    /* Own delete, then a moderator's. */
    r = wsc_request(a, 3000, "\"op\":\"delete\",\"room\":\"%s\",\"seq\":%lld", w.room,
                    (long long)s1);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    struct hres h =
        api(0, w.tok[MOD], "POST", "{\"reason\":\"off topic\"}",
            "/api/v1/workspaces/%s/rooms/%s/messages/%lld/delete", w.ws, w.room, (long long)s2);
    assert_int_equal(h.status, 200);
    hres_free(&h);
    p = wsc_wait_push(b, "delete", 3000);
    assert_int_equal(wsc_int(p, "target"), s1);
    cJSON_Delete(p);
    p = wsc_wait_push(b, "delete", 3000);
    assert_int_equal(wsc_int(p, "target"), s2);
    cJSON_Delete(p);
    /* Stubs keep their seqs; the text is gone. */
    r = wsc_request(mod, 3000, "\"op\":\"history\",\"room\":\"%s\"", w.room);
    cJSON *msgs = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 2);
    for (int i = 0; i < 2; i++) {
        cJSON *m = cJSON_GetArrayItem(msgs, i);
        assert_int_equal(wsc_int(m, "seq"), i ? s2 : s1);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(m, "deleted")));
        assert_string_equal(wsc_str(m, "body"), "");
    }
    cJSON_Delete(r);
    assert_string_equal(it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s'"
                                " AND (body LIKE '%%typo%%' OR body LIKE '%%speaks%%')",
                                w.room),
                        "0");
    /* Deleting again changes nothing; unknown seq; the window closes. */
    expect_err(a, "no_such_message", "\"op\":\"delete\",\"room\":\"%s\",\"seq\":%lld", w.room,
               999LL);
    int64_t s3 = send_ok(a, w.room, "d3", "late");
    it_sqlf("UPDATE workspaces SET edit_window_s = 0 WHERE id = '%s' RETURNING 1", w.ws);
    expect_err(a, "edit_window_closed",
               "\"op\":\"edit\",\"room\":\"%s\",\"seq\":%lld,\"body\":\"y\"", w.room,
               (long long)s3);
    expect_err(a, "edit_window_closed", "\"op\":\"delete\",\"room\":\"%s\",\"seq\":%lld", w.room,
               (long long)s3);
    /* A client recovering from the start gets messages, stubs and events
     * in one unbroken sequence. */
    struct wsc *late = it_connect_auth(0, w.tok[B]);
    r = it_join(late, w.room, 0);
    cJSON_Delete(r);
    int64_t last = 0;
    for (cJSON *o; (o = wsc_next(late, 500));) {
        int64_t sq = wsc_int(o, "seq");
        if (sq != INT64_MIN && wsc_str(o, "push")) {
            assert_int_equal(sq, last + 1);
            last = sq;
        }
        cJSON_Delete(o);
    }
    assert_int_equal(last, s3);
    wsc_close(late);
    wsc_close(a);
    wsc_close(b);
    wsc_close(mod);
}

static void across_workspaces_nothing_is_found(void **state)
{
    (void)state;
    struct it_world w, x;
    world(&w);
    world(&x);
    struct wsc *xa = it_member(0, x.tok[A], x.room);
    int64_t s = send_ok(xa, x.room, "x1", "theirs");
    struct wsc *mod = it_connect_auth(1, w.tok[MOD]);
    expect_err(mod, "no_such_message", "\"op\":\"delete\",\"room\":\"%s\",\"seq\":%lld", x.room,
               (long long)s);
    expect_err(mod, "room_not_found", "\"op\":\"room_settings\",\"room\":\"%s\",\"locked\":true",
               x.room);
    expect_err(mod, "room_not_found", "\"op\":\"mute\",\"person\":\"%s\",\"duration_s\":60",
               x.person[A]);
    expect_err(mod, "room_not_found", "\"op\":\"remove\",\"room\":\"%s\",\"person\":\"%s\"", x.room,
               x.person[A]);
    struct hres h =
        api(0, w.tok[MOD], "GET", NULL, "/api/v1/workspaces/%s/rooms/%s/evaluation", w.ws, x.room);
    assert_int_equal(h.status, 404);
    hres_free(&h);
    assert_string_equal(it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s'"
                                " AND kind IN ('delete', 'settings')",
                                x.room),
                        "0");
    assert_string_equal(it_sqlf("SELECT count(*) FROM mutes WHERE person_id = '%s'", x.person[A]),
                        "0");
    wsc_close(xa);
    wsc_close(mod);
}

static void evaluation_in_json_and_csv(void **state)
{
    (void)state;
    struct it_world w;
    world(&w);
    assert_int_equal(put_rules(&w, hold_rules), 200);
    struct wsc *a = it_member(0, w.tok[A], w.room);
    struct wsc *b = it_member(1, w.tok[B], w.room);
    int64_t s1 = send_ok(a, w.room, "e1", "our budget");
    send_ok(a, w.room, "e2", "a again");
    send_ok(b, w.room, "e3", "b answers");
    cJSON *r =
        wsc_request(b, 3000, "\"op\":\"like\",\"room\":\"%s\",\"seq\":%lld", w.room, (long long)s1);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    assert_string_equal(send_err(b, w.room, "e4", "casino"), "ok"); /* shadowed */
    usleep(500000); /* the like's batch and the hits are written */
    struct hres h = api(1, w.tok[A], "GET", NULL, "/api/v1/workspaces/%s/evaluation", w.ws);
    assert_int_equal(h.status, 403);
    hres_free(&h);
    h = api(1, w.tok[MOD], "GET", NULL, "/api/v1/workspaces/%s/rooms/%s/evaluation", w.ws, w.room);
    assert_int_equal(h.status, 200);
    assert_int_equal(wsc_int(h.json, "messages"), 3);
    assert_int_equal(wsc_int(h.json, "active_people"), 2);
    assert_int_equal(wsc_int(h.json, "likes"), 1);
    assert_int_equal(wsc_int(h.json, "responses"), 1); /* a -> a is not a turn, a -> b is */
    cJSON *people = cJSON_GetObjectItem(h.json, "people");
    assert_int_equal(cJSON_GetArraySize(people), 2);
    assert_string_equal(wsc_str(cJSON_GetArrayItem(people, 0), "person_id"), w.person[A]);
    assert_int_equal(wsc_int(cJSON_GetArrayItem(people, 0), "messages"), 2);
    assert_int_equal(wsc_int(cJSON_GetArrayItem(people, 0), "likes_received"), 1);
    cJSON *hits = cJSON_GetObjectItem(h.json, "guideline_hits");
    assert_int_equal(cJSON_GetArraySize(hits), 2);
    hres_free(&h);
    h = api(0, w.tok[MOD], "GET", NULL, "/api/v1/workspaces/%s/evaluation?format=csv", w.ws);
    assert_int_equal(h.status, 200);
    assert_true(!strncmp(h.body, "section,room,person,rule,action,seq,metric,value\r\n", 50));
    assert_non_null(strstr(h.body, "total,,,,,,messages,3\r\n"));
    char line[160];
    snprintf(line, sizeof line, "person,,%s,,,,messages,2\r\n", w.person[A]);
    assert_non_null(strstr(h.body, line));
    assert_non_null(strstr(h.body, "guideline_hit,,,\"spam\",shadow,,count,1\r\n"));
    hres_free(&h);
    /* An empty range has nothing; a bad time or format is refused. */
    h = api(0, w.tok[MOD], "GET", NULL,
            "/api/v1/workspaces/%s/evaluation?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z",
            w.ws);
    assert_int_equal(wsc_int(h.json, "messages"), 0);
    hres_free(&h);
    h = api(0, w.tok[MOD], "GET", NULL, "/api/v1/workspaces/%s/evaluation?from=not-a-time", w.ws);
    assert_int_equal(h.status, 400);
    hres_free(&h);
    h = api(0, w.tok[MOD], "GET", NULL, "/api/v1/workspaces/%s/evaluation?format=xml", w.ws);
    assert_int_equal(h.status, 400);
    hres_free(&h);
    wsc_close(a);
    wsc_close(b);
}

/* Messages over time: the evaluation's series has one point per UTC day of
 * [from, to), empty days included, with each day's messages, people and
 * median response time, so a chart needs no second query. */
static void evaluation_series_by_day(void **state)
{
    (void)state;
    struct it_world w;
    world(&w);
    struct wsc *a = it_member(0, w.tok[A], w.room);
    struct wsc *b = it_member(1, w.tok[B], w.room);
    int64_t s1 = send_ok(a, w.room, "d1", "two days ago");
    send_ok(a, w.room, "d2", "today");
    send_ok(b, w.room, "d3", "today, answered");
    it_sqlf("UPDATE messages SET created_at = now() - interval '2 days' WHERE room_id = '%s'"
            " AND seq = %lld RETURNING 1",
            w.room, (long long)s1);
    char from[64], to[64];
    snprintf(from, sizeof from, "%s",
             it_sql("SELECT to_char(date_trunc('day', now(), 'UTC') - interval '3 days',"
                    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"));
    snprintf(to, sizeof to, "%s",
             it_sql("SELECT to_char(date_trunc('day', now(), 'UTC') + interval '1 day',"
                    " 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"));
    struct hres h =
        api(0, w.tok[MOD], "GET", NULL, "/api/v1/workspaces/%s/rooms/%s/evaluation?from=%s&to=%s",
            w.ws, w.room, from, to);
    assert_int_equal(h.status, 200);
    assert_non_null(wsc_str(h.json, "bucket"));
    assert_string_equal(wsc_str(h.json, "bucket"), "day");
    cJSON *series = cJSON_GetObjectItem(h.json, "series");
    assert_int_equal(cJSON_GetArraySize(series), 4);
    static const int want[4] = {0, 1, 0, 2};
    for (int i = 0; i < 4; i++) {
        cJSON *pt = cJSON_GetArrayItem(series, i);
        assert_int_equal(wsc_int(pt, "messages"), want[i]);
        assert_non_null(wsc_str(pt, "at"));
    }
    /* Day 0 starts at from; today's turn (a, then b) is measured on today. */
    assert_int_equal(strncmp(wsc_str(cJSON_GetArrayItem(series, 0), "at"), from, 10), 0);
    cJSON *today = cJSON_GetArrayItem(series, 3);
    assert_int_equal(wsc_int(today, "active_people"), 2);
    assert_int_equal(wsc_int(today, "responses"), 1);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(today, "median_response_s")));
    assert_true(
        cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetArrayItem(series, 1), "median_response_s")));
    hres_free(&h);
    /* A long range is counted by week, then by month, so a series stays short. */
    h = api(0, w.tok[MOD], "GET", NULL,
            "/api/v1/workspaces/%s/evaluation?from=2020-01-01T00:00:00Z&to=2021-01-01T00:00:00Z",
            w.ws);
    assert_string_equal(wsc_str(h.json, "bucket"), "week");
    hres_free(&h);
    h = api(0, w.tok[MOD], "GET", NULL,
            "/api/v1/workspaces/%s/evaluation?from=2000-01-01T00:00:00Z&to=2020-01-01T00:00:00Z",
            w.ws);
    assert_string_equal(wsc_str(h.json, "bucket"), "month");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(h.json, "series")), 240);
    hres_free(&h);
    wsc_close(a);
    wsc_close(b);
}

/* A connection may have at most 1024 commands unanswered; each kind of
 * pending work (a send waiting for its rules, a batched write, a held
 * message being kept, an edit, a receipt, a query) counts in that bound
 * while it runs and must give its slot back when answered. 1,100 commands of
 * every kind on one connection, each answered before the next: a slot that
 * one kind forgets to give back shows as "busy" before the end. */
static void answered_commands_free_their_slots(void **state)
{
    (void)state;
    struct it_world w;
    world(&w);
    assert_int_equal(put_rules(&w, hold_rules), 200);
    struct wsc *a = it_member(0, w.tok[A], w.room);
    enum { ROUNDS = 220 }; /* x 5 commands: past the bound of 1024 */
    for (int i = 0; i < ROUNDS; i++) {
        char cmid[32];
        snprintf(cmid, sizeof cmid, "slot%d", i);
        cJSON *r[5];
        r[0] = it_send(a, w.room, cmid, "plain words");
        int64_t seq = wsc_int(r[0], "ok.seq");
        snprintf(cmid, sizeof cmid, "held%d", i);
        r[1] = it_send(a, w.room, cmid, "about the contract");
        r[2] = wsc_request(a, 3000, "\"op\":\"edit\",\"room\":\"%s\",\"seq\":%lld,\"body\":\"e\"",
                           w.room, (long long)seq);
        r[3] = wsc_request(a, 3000, "\"op\":\"read\",\"room\":\"%s\",\"seq\":%lld", w.room,
                           (long long)seq);
        r[4] = wsc_request(a, 3000, "\"op\":\"history\",\"room\":\"%s\",\"limit\":1", w.room);
        for (int k = 0; k < 5; k++) {
            if (!r[k] || wsc_err_code(r[k])) {
                char *s0 = r[0] ? cJSON_PrintUnformatted(r[0]) : NULL;
                char *sk = r[k] ? cJSON_PrintUnformatted(r[k]) : NULL;
                fprintf(stderr, "round %d command %d: %s (send answered %s)\n", i, k,
                        sk ? sk : "no answer", s0 ? s0 : "nothing");
                free(s0);
                free(sk);
            }
            assert_non_null(r[k]);
            assert_null(wsc_err_code(r[k]));
            if (k == 1) assert_string_equal(wsc_str(r[k], "ok.state"), "held"); /* kept */
            cJSON_Delete(r[k]);
        }
    }
    wsc_close(a);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(held_message_arrives_in_order_when_approved),
        cmocka_unit_test(shadowed_messages_reach_only_sender_and_moderators),
        cmocka_unit_test(mutes_locks_slow_mode_and_removal),
        cmocka_unit_test(rate_is_per_person_across_gateways),
        cmocka_unit_test(delete_and_edit),
        cmocka_unit_test(answered_commands_free_their_slots),
        cmocka_unit_test(across_workspaces_nothing_is_found),
        cmocka_unit_test(evaluation_in_json_and_csv),
        cmocka_unit_test(evaluation_series_by_day),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
