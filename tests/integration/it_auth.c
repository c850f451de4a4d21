/* Integration: authentication, workspace isolation and connection-level
 * guards (auth deadline, UTF-8, per-IP cap). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

static void expect_code(cJSON *r, const char *code)
{
    assert_non_null(r);
    assert_non_null(wsc_err_code(r));
    assert_string_equal(wsc_err_code(r), code);
    cJSON_Delete(r);
}

static void auth_required_then_failures(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *c = it_connect_auth(0, NULL);
    assert_non_null(c);
    expect_code(it_join(c, w.room, -1), "auth_required");
    expect_code(wsc_request(c, 3000, "\"op\":\"auth\",\"token\":\"not-a-token\""), "auth_failed");
    /* Well-formed but unknown. */
    expect_code(wsc_request(c, 3000, "\"op\":\"auth\",\"token\":\"%s\"",
                            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
                "auth_failed");
    cJSON *ok = wsc_request(c, 3000, "\"op\":\"auth\",\"token\":\"%s\"", w.tok[0]);
    assert_null(wsc_err_code(ok));
    assert_string_equal(wsc_str(ok, "ok.person"), w.person[0]);
    assert_string_equal(wsc_str(ok, "ok.workspace"), w.ws);
    assert_string_equal(wsc_str(ok, "ok.role"), "member");
    cJSON_Delete(ok);
    expect_code(wsc_request(c, 3000, "\"op\":\"auth\",\"token\":\"%s\"", w.tok[0]),
                "already_authenticated");
    wsc_close(c);
}

static void revoked_and_expired_tokens_fail(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 1, NULL);
    assert_non_null(it_admin("revoke-tokens %s", w.person[0]));
    struct wsc *c = it_connect_auth(0, NULL);
    expect_code(wsc_request(c, 3000, "\"op\":\"auth\",\"token\":\"%s\"", w.tok[0]), "auth_failed");
    /* A token with a 1 s lifetime stops working after it. */
    wsc_close(c);
    char tok[64];
    snprintf(tok, sizeof tok, "%s", it_admin("create-token %s %s 1", w.person[0], w.ws));
    sleep(2);
    c = it_connect_auth(0, NULL); /* a new one: the old would have hit the auth deadline */
    expect_code(wsc_request(c, 3000, "\"op\":\"auth\",\"token\":\"%s\"", tok), "auth_failed");
    wsc_close(c);
}

static void other_workspace_is_invisible(void **state)
{
    (void)state;
    struct it_world w1, w2;
    it_world(&w1, 1, NULL);
    it_world(&w2, 1, NULL);
    struct wsc *a = it_connect_auth(0, w1.tok[0]), *b = it_connect_auth(1, w2.tok[0]);
    /* A room of another workspace answers exactly like a room that does not exist. */
    cJSON *foreign = it_join(b, w1.room, -1);
    cJSON *none = it_join(b, "00000000-0000-4000-8000-000000000000", -1);
    assert_string_equal(wsc_err_code(foreign), "room_not_found");
    assert_string_equal(wsc_err_code(none), "room_not_found");
    assert_string_equal(wsc_str(foreign, "error.message"), wsc_str(none, "error.message"));
    cJSON_Delete(foreign);
    cJSON_Delete(none);
    /* Nor can it send there. */
    expect_code(it_send(b, w1.room, "x1", "intrusion"), "not_joined");
    /* Traffic of workspace 1 never reaches workspace 2. */
    cJSON_Delete(it_join(a, w1.room, -1));
    cJSON_Delete(it_join(b, w2.room, -1));
    cJSON_Delete(it_send(a, w1.room, "w1-msg", "private"));
    cJSON *m = wsc_wait_push(b, "message", 800);
    assert_null(m);
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT last_seq FROM rooms WHERE id = '%s'", w2.room);
    assert_string_equal(it_sql(sql), "0");
    wsc_close(a);
    wsc_close(b);
}

/* Not on the list: answered like a room that does not exist. */
static void members_only_room_is_not_found_until_added(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 1, "members");
    struct wsc *c = it_connect_auth(0, w.tok[0]);
    expect_code(it_join(c, w.room, -1), "room_not_found");
    assert_non_null(it_admin("add-member %s %s", w.room, w.person[0]));
    cJSON *j = it_join(c, w.room, -1);
    assert_null(wsc_err_code(j));
    cJSON_Delete(j);
    expect_code(it_join(c, w.room, -1), "already_joined");
    wsc_close(c);
}

static void unauthenticated_connection_is_closed(void **state)
{
    (void)state;
    struct wsc *c = it_connect_auth(0, NULL);
    uint64_t t0 = it_now_ms();
    /* Not before ~1 s (the fixture's deadline is 1.5 s): still open. */
    cJSON *early = wsc_next(c, 900);
    assert_null(early);
    assert_false(wsc_is_closed(c));
    int code = wsc_wait_closed(c, 5000);
    uint64_t dt = it_now_ms() - t0;
    assert_int_equal(code, 1008);
    assert_string_equal(wsc_close_reason(c), "auth timeout");
    assert_true(dt >= 1000 && dt < 4500);
    wsc_close(c);
}

static void invalid_utf8_closes_1007(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *c = it_connect_auth(0, w.tok[0]);
    const unsigned char bad[] = {'{', '"', 0xc3, 0x28, '"', '}'};
    wsc_send_raw(c, 0x81, bad, sizeof bad);
    assert_int_equal(wsc_wait_closed(c, 3000), 1007);
    wsc_close(c);
}

static void per_ip_cap_refuses_handshake(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *conns[32];
    struct wsc_opts o = {.src_ip = "127.0.0.77"};
    for (int i = 0; i < 32; i++) {
        conns[i] = wsc_connect(IT.gw[0], &o, NULL);
        assert_non_null(conns[i]);
        cJSON *r = wsc_request(conns[i], 3000, "\"op\":\"auth\",\"token\":\"%s\"", w.tok[0]);
        assert_null(wsc_err_code(r));
        cJSON_Delete(r);
    }
    int status = -1;
    struct wsc *over = wsc_connect(IT.gw[0], &o, &status);
    assert_null(over);
    assert_int_not_equal(status, 101);
    /* Another address is not affected. */
    struct wsc *other = it_connect_auth(0, w.tok[0]);
    assert_non_null(other);
    wsc_close(other);
    /* One closes: there is room again. */
    wsc_close(conns[0]);
    struct wsc *again = NULL;
    for (int i = 0; i < 40 && !again; i++) {
        usleep(50000);
        again = wsc_connect(IT.gw[0], &o, NULL);
    }
    assert_non_null(again);
    wsc_close(again);
    for (int i = 1; i < 32; i++)
        wsc_close(conns[i]);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(auth_required_then_failures),
        cmocka_unit_test(revoked_and_expired_tokens_fail),
        cmocka_unit_test(other_workspace_is_invisible),
        cmocka_unit_test(members_only_room_is_not_found_until_added),
        cmocka_unit_test(unauthenticated_connection_is_closed),
        cmocka_unit_test(invalid_utf8_closes_1007),
        cmocka_unit_test(per_ip_cap_refuses_handshake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
