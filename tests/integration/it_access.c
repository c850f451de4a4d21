/* Integration: room access changes reach live joins on every gateway at
 * once. A member joined on gateway 2 loses the room through gateway 1's
 * API (taken off a members-only room's list, the room made members-only,
 * the room archived, a moderator's removal): the member gets one `removed`
 * push saying why, and nothing more of the room; sends, history and reads
 * are refused and nothing is stored. Those who keep access are untouched. */
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

/* A workspace with a room, two members (0, 1) and an admin (tok[2]). */
static void world(struct it_world *w, const char *visibility)
{
    it_world(w, 3, visibility);
    it_sqlf("UPDATE workspace_members SET role = 'admin' WHERE workspace_id = '%s'"
            " AND person_id = '%s' RETURNING 1",
            w->ws, w->person[2]);
}

/* An API call through gateway 1 (index 0) that must succeed. */
static void api_ok(const struct it_world *w, const char *method, const char *body, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
static void api_ok(const struct it_world *w, const char *method, const char *body, const char *fmt,
                   ...)
{
    char path[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(path, sizeof path, fmt, ap);
    va_end(ap);
    struct hres r = http_req(IT.gw[0], NULL, method, path, w->tok[2], body);
    if (r.status >= 300) fprintf(stderr, "%s %s -> %d %s\n", method, path, r.status, r.body);
    assert_true(r.status >= 200 && r.status < 300);
    hres_free(&r);
}

/* The next `removed` push must name the room and the reason. */
static void expect_removed(struct wsc *c, const char *room, const char *reason)
{
    cJSON *p = wsc_wait_push(c, "removed", 5000);
    assert_non_null(p);
    assert_string_equal(wsc_str(p, "room"), room);
    if (!wsc_str(p, "reason") || strcmp(wsc_str(p, "reason"), reason)) {
        char *t = cJSON_PrintUnformatted(p);
        fprintf(stderr, "removed push: %s (expected reason %s)\n", t, reason);
        free(t);
    }
    assert_non_null(wsc_str(p, "reason"));
    assert_string_equal(wsc_str(p, "reason"), reason);
    cJSON_Delete(p);
}

static const char *code_of(cJSON *r)
{
    static char code[64];
    snprintf(code, sizeof code, "%s", r && wsc_err_code(r) ? wsc_err_code(r) : "ok");
    cJSON_Delete(r);
    return code;
}

/* Out of the room: every room command is refused, nothing is stored. */
static void expect_out(struct wsc *c, const char *room, const char *cmid)
{
    const char *last = it_sqlf("SELECT last_seq FROM rooms WHERE id = '%s'", room);
    char before[24];
    snprintf(before, sizeof before, "%s", last);
    assert_string_equal(code_of(it_send(c, room, cmid, "still here?")), "not_joined");
    assert_string_equal(code_of(wsc_request(c, 3000, "\"op\":\"history\",\"room\":\"%s\"", room)),
                        "not_joined");
    assert_string_equal(
        code_of(wsc_request(c, 3000, "\"op\":\"read\",\"room\":\"%s\",\"seq\":1", room)),
        "not_joined");
    assert_string_equal(it_sqlf("SELECT last_seq FROM rooms WHERE id = '%s'", room), before);
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s' AND client_msg_id = '%s'", room,
                cmid),
        "0");
}

/* A message sent now by someone still in must not reach c. */
static void expect_nothing_more(struct wsc *c, struct wsc *other, const char *room,
                                const char *cmid)
{
    cJSON *r = it_send(other, room, cmid, "after you left");
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    cJSON *p = wsc_wait_push(other, "message", 3000); /* it went out */
    assert_non_null(p);
    cJSON_Delete(p);
    assert_null(wsc_wait_push(c, "message", 500));
    assert_null(wsc_wait_push(c, "removed", 100)); /* one push, not two */
}

static void taken_off_the_list(void **state)
{
    (void)state;
    struct it_world w;
    world(&w, "members");
    assert_non_null(it_admin("add-member %s %s", w.room, w.person[0]));
    assert_non_null(it_admin("add-member %s %s", w.room, w.person[1]));
    struct wsc *x = it_member(1, w.tok[0], w.room);
    struct wsc *y = it_member(1, w.tok[1], w.room);
    api_ok(&w, "DELETE", NULL, "/api/v1/workspaces/%s/rooms/%s/members/%s", w.ws, w.room,
           w.person[0]);
    expect_removed(x, w.room, "not_a_member");
    expect_out(x, w.room, "x-after");
    expect_nothing_more(x, y, w.room, "y-after");
    /* And a new join is answered like a room that is not there. */
    assert_string_equal(code_of(it_join(x, w.room, -1)), "room_not_found");
    wsc_close(x);
    wsc_close(y);
}

/* Taking someone off the list of a room open to the workspace changes
 * nothing: they still may be in it. */
static void off_the_list_of_an_open_room_stays(void **state)
{
    (void)state;
    struct it_world w;
    world(&w, NULL);
    assert_non_null(it_admin("add-member %s %s", w.room, w.person[0]));
    struct wsc *x = it_member(1, w.tok[0], w.room);
    api_ok(&w, "DELETE", NULL, "/api/v1/workspaces/%s/rooms/%s/members/%s", w.ws, w.room,
           w.person[0]);
    assert_null(wsc_wait_push(x, "removed", 1000));
    assert_string_equal(code_of(it_send(x, w.room, "x-stays", "still in")), "ok");
    wsc_close(x);
}

static void room_made_members_only(void **state)
{
    (void)state;
    struct it_world w;
    world(&w, NULL);
    assert_non_null(it_admin("add-member %s %s", w.room, w.person[1]));
    struct wsc *x = it_member(1, w.tok[0], w.room); /* not listed */
    struct wsc *y = it_member(0, w.tok[1], w.room); /* listed */
    api_ok(&w, "PATCH", "{\"visibility\":\"members\"}", "/api/v1/workspaces/%s/rooms/%s", w.ws,
           w.room);
    expect_removed(x, w.room, "not_a_member");
    expect_out(x, w.room, "x-after");
    expect_nothing_more(x, y, w.room, "y-after");
    assert_null(wsc_wait_push(y, "removed", 300));
    wsc_close(x);
    wsc_close(y);
}

static void room_archived(void **state)
{
    (void)state;
    struct it_world w;
    world(&w, NULL);
    struct wsc *x = it_member(1, w.tok[0], w.room);
    struct wsc *y = it_member(0, w.tok[1], w.room);
    assert_string_equal(code_of(it_send(x, w.room, "before", "before the archive")), "ok");
    for (int i = 0; i < 2; i++) { /* both had it before the archive */
        cJSON *p = wsc_wait_push(i ? y : x, "message", 3000);
        assert_non_null(p);
        cJSON_Delete(p);
    }
    api_ok(&w, "PATCH", "{\"archived\":true}", "/api/v1/workspaces/%s/rooms/%s", w.ws, w.room);
    expect_removed(x, w.room, "archived");
    expect_removed(y, w.room, "archived");
    expect_out(x, w.room, "x-after");
    expect_out(y, w.room, "y-after");
    assert_null(wsc_wait_push(x, "message", 300));
    wsc_close(x);
    wsc_close(y);
}

/* Whatever the bus does, PostgreSQL has the last word: a send that reaches
 * an archived room (here archived behind the gateways' backs, so no event
 * took the member out) is refused with room_archived and not stored. */
static void send_to_archived_room_not_stored(void **state)
{
    (void)state;
    struct it_world w;
    world(&w, NULL);
    struct wsc *x = it_member(1, w.tok[0], w.room);
    assert_string_equal(code_of(it_send(x, w.room, "before", "before the archive")), "ok");
    it_sqlf("UPDATE rooms SET archived_at = now() WHERE id = '%s' RETURNING 1", w.room);
    cJSON *r = it_send(x, w.room, "after", "into the archive");
    assert_non_null(wsc_err_code(r));
    assert_string_equal(wsc_err_code(r), "room_archived");
    cJSON_Delete(r);
    assert_string_equal(it_sqlf("SELECT last_seq FROM rooms WHERE id = '%s'", w.room), "1");
    assert_string_equal(
        it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s' AND client_msg_id = 'after'",
                w.room),
        "0");
    /* A retry of a message stored before the archive is still a duplicate. */
    r = it_send(x, w.room, "before", "before the archive");
    assert_null(wsc_err_code(r));
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "duplicate")));
    cJSON_Delete(r);
    wsc_close(x);
}

/* A moderator's removal says so. */
static void removed_by_a_moderator(void **state)
{
    (void)state;
    struct it_world w;
    world(&w, NULL);
    struct wsc *x = it_member(1, w.tok[0], w.room);
    struct wsc *y = it_member(1, w.tok[1], w.room);
    char body[128];
    snprintf(body, sizeof body, "{\"person_id\":\"%s\"}", w.person[0]);
    api_ok(&w, "POST", body, "/api/v1/workspaces/%s/rooms/%s/remove", w.ws, w.room);
    expect_removed(x, w.room, "removed");
    expect_out(x, w.room, "x-after");
    expect_nothing_more(x, y, w.room, "y-after");
    assert_string_equal(code_of(it_join(x, w.room, -1)), "forbidden");
    wsc_close(x);
    wsc_close(y);
}

/* A change whose event was published while Redis was away never reaches
 * the other gateway over the bus: that gateway re-checks its joins against
 * PostgreSQL when its subscription comes back. */
static void access_change_missed_during_redis_outage_still_applies(void **state)
{
    (void)state;
    struct it_world w;
    world(&w, "members");
    assert_non_null(it_admin("add-member %s %s", w.room, w.person[0]));
    struct wsc *x = it_member(1, w.tok[0], w.room);
    assert_int_equal(it_env("stop-redis"), 0);
    api_ok(&w, "DELETE", NULL, "/api/v1/workspaces/%s/rooms/%s/members/%s", w.ws, w.room,
           w.person[0]);
    /* Gateway 2 did not hear of it. */
    assert_null(wsc_wait_push(x, "removed", 300));
    assert_int_equal(it_env("start-redis"), 0);
    expect_removed(x, w.room, "not_a_member");
    assert_string_equal(code_of(wsc_request(x, 3000, "\"op\":\"history\",\"room\":\"%s\"", w.room)),
                        "not_joined");
    wsc_close(x);
    for (int g = 0; g < 2; g++) { /* leave both gateways ready for the next test */
        int st = 0;
        for (int i = 0; i < 100 && st != 200; i++) {
            struct hres r = http_req(IT.gw[g], NULL, "GET", "/readyz", NULL, NULL);
            st = r.status;
            hres_free(&r);
            if (st != 200) usleep(100000);
        }
        assert_int_equal(st, 200);
    }
}

/* A new role changes what the session may do: it is closed (1008) on every
 * gateway and authenticates again with the new role. */
static void role_change_closes_session(void **state)
{
    (void)state;
    struct it_world w;
    world(&w, NULL);
    it_sqlf("UPDATE workspace_members SET role = 'keyuser' WHERE workspace_id = '%s'"
            " AND person_id = '%s' RETURNING 1",
            w.ws, w.person[0]);
    struct wsc *x = it_member(1, w.tok[0], w.room);
    api_ok(&w, "PATCH", "{\"role\":\"member\"}", "/api/v1/workspaces/%s/people/%s", w.ws,
           w.person[0]);
    assert_int_equal(wsc_wait_closed(x, 5000), 1008);
    wsc_close(x);
    x = it_connect_auth(1, w.tok[0]);
    cJSON *r = wsc_request(x, 3000, "\"op\":\"remove\",\"room\":\"%s\",\"person\":\"%s\"", w.room,
                           w.person[1]);
    assert_string_equal(code_of(r), "forbidden");
    wsc_close(x);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(taken_off_the_list),
        cmocka_unit_test(off_the_list_of_an_open_room_stays),
        cmocka_unit_test(room_made_members_only),
        cmocka_unit_test(room_archived),
        cmocka_unit_test(send_to_archived_room_not_stored),
        cmocka_unit_test(removed_by_a_moderator),
        cmocka_unit_test(access_change_missed_during_redis_outage_still_applies),
        cmocka_unit_test(role_change_closes_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
