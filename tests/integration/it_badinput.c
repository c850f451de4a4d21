/* Integration: malformed commands get stable error codes, the connection
 * survives and nothing is stored; oversized and binary frames close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

static const char *last_seq(const char *room)
{
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT last_seq FROM rooms WHERE id = '%s'", room);
    return it_sql(sql);
}

static void bad_commands_answered_connection_survives(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *c = it_connect_auth(0, w.tok[0]);
    cJSON_Delete(it_join(c, w.room, -1));
    char *long_body = malloc(4098);
    memset(long_body, 'x', 4097);
    long_body[4097] = '\0';
    static char frame[8192];
    struct {
        const char *raw; /* NULL: build from fmt with the room */
        const char *fmt;
        const char *code;
        long long id; /* expected id in the reply, 0 for null */
    } cases[] = {
        {"{not json", NULL, "bad_json", 0},
        {"[1,2,3]", NULL, "bad_json", 0},
        {"\"just a string\"", NULL, "bad_json", 0},
        {"{\"id\":\"7\",\"op\":\"ping\"}", NULL, "bad_request", 0},
        {"{\"id\":1.5,\"op\":\"ping\"}", NULL, "bad_request", 0},
        {"{\"id\":5,\"op\":\"fly\"}", NULL, "unknown_op", 5},
        {"{\"id\":6,\"op\":7}", NULL, "bad_request", 6},
        {NULL, "{\"id\":8,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":5,\"body\":\"x\"}",
         "bad_request", 8},
        {NULL, "{\"id\":9,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"c9\"}", "bad_request",
         9},
        {NULL,
         "{\"id\":10,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"c10\",\"body\":\"x\","
         "\"color\":\"red\"}",
         "bad_request", 10},
        {NULL,
         "{\"id\":11,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"c11\",\"body\":\"\"}",
         "bad_request", 11},
        {NULL, "{\"id\":12,\"op\":\"history\",\"room\":\"%s\",\"limit\":1000}", "bad_request", 12},
        {NULL,
         "{\"id\":13,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"c13\",\"body\":\"x\","
         "\"body\":\"y\"}",
         "bad_request", 13},
        {"{\"id\":14,\"op\":\"join\",\"room\":\"NOT-A-UUID\"}", NULL, "bad_request", 14},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *f = cases[k].raw;
        if (!f) {
            snprintf(frame, sizeof frame, cases[k].fmt, w.room);
            f = frame;
        }
        assert_int_equal(wsc_send_text(c, f, strlen(f)), 0);
        cJSON *r = wsc_next_reply(c, 3000);
        assert_non_null(r);
        assert_non_null(wsc_err_code(r));
        if (!wsc_err_code(r) || strcmp(wsc_err_code(r), cases[k].code)) {
            char *s = cJSON_PrintUnformatted(r);
            fprintf(stderr, "case %zu: %s\n", k, s);
            free(s);
        }
        assert_string_equal(wsc_err_code(r), cases[k].code);
        if (cases[k].id)
            assert_int_equal(wsc_int(r, "id"), cases[k].id);
        else
            assert_true(cJSON_IsNull(cJSON_GetObjectItem(r, "id")));
        cJSON_Delete(r);
    }
    /* Over-long body: its own code, with the id. */
    snprintf(
        frame, sizeof frame,
        "{\"id\":20,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"long\",\"body\":\"%s\"}",
        w.room, long_body);
    wsc_send_text(c, frame, strlen(frame));
    cJSON *r = wsc_next_reply(c, 3000);
    assert_string_equal(wsc_err_code(r), "body_too_long");
    assert_int_equal(wsc_int(r, "id"), 20);
    cJSON_Delete(r);
    /* Still usable, and nothing was stored. */
    cJSON *p = wsc_request(c, 3000, "\"op\":\"ping\"");
    assert_null(wsc_err_code(p));
    assert_true(wsc_int(p, "ok.ts") > 0);
    cJSON_Delete(p);
    assert_string_equal(last_seq(w.room), "0");
    /* A valid command split into fragments works. */
    snprintf(
        frame, sizeof frame,
        "{\"id\":30,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"frag\",\"body\":\"ok\"}",
        w.room);
    wsc_send_fragmented(c, frame, strlen(frame), 4);
    r = NULL;
    for (int i = 0; i < 5 && !r; i++) {
        cJSON *o = wsc_next_reply(c, 3000);
        if (o && wsc_int(o, "id") == 30)
            r = o;
        else
            cJSON_Delete(o);
    }
    assert_non_null(r);
    assert_int_equal(wsc_int(r, "ok.seq"), 1);
    cJSON_Delete(r);
    free(long_body);
    wsc_close(c);
}

static void oversized_message_closes_1009(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *c = it_connect_auth(0, w.tok[0]);
    size_t n = 70000; /* over the 65536 limit */
    char *big = malloc(n);
    memset(big, ' ', n);
    wsc_send_text(c, big, n);
    assert_int_equal(wsc_wait_closed(c, 3000), 1009);
    wsc_close(c);
    /* Also when the excess comes in fragments. */
    c = it_connect_auth(0, w.tok[0]);
    wsc_send_fragmented(c, big, n, 10);
    assert_int_equal(wsc_wait_closed(c, 3000), 1009);
    wsc_close(c);
    free(big);
    assert_string_equal(last_seq(w.room), "0");
}

/* The reply to command id on c, skipping anything else (NULL: none). */
static cJSON *reply_to(struct wsc *c, int64_t id)
{
    for (int i = 0; i < 50; i++) {
        cJSON *o = wsc_next_reply(c, 3000);
        if (!o) return NULL;
        if (wsc_int(o, "id") == id) return o;
        cJSON_Delete(o);
    }
    return NULL;
}

/* Messages over the gateway's receive buffer (ws.c) are reassembled in
 * buffers the gateway keeps for reuse (ws.c): two connections reassembling
 * at the same time, finishing in either order, never share one, also when
 * a third takes the buffer one of them gave back, and every body is stored
 * exactly as sent. */
static void long_messages_reassembled_in_turn(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 3, NULL);
    struct wsc *c[3];
    for (int k = 0; k < 3; k++) {
        c[k] = it_connect_auth(0, w.tok[k]);
        cJSON_Delete(it_join(c[k], w.room, -1));
    }
    enum { ROUNDS = 12, BODY = 1500 };
    static const char fill[3] = {'a', 'A', '0'}; /* + round: never '"' or '\\' */
    static char frame[2][BODY + 256];
    size_t len[2], cut[2][2];
    for (int r = 0; r < ROUNDS; r++) {
        /* Connections r % 3 and (r + 1) % 3 this round. */
        int who[2] = {r % 3, (r + 1) % 3};
        for (int j = 0; j < 2; j++) {
            int k = who[j];
            char body[BODY + 1];
            memset(body, fill[k] + r, BODY);
            body[BODY] = 0;
            len[j] = (size_t)snprintf(frame[j], sizeof frame[j],
                                      "{\"id\":%d,\"op\":\"send\",\"room\":\"%s\","
                                      "\"client_msg_id\":\"long-%d-%d\",\"body\":\"%s\"}",
                                      100 + r, w.room, k, r, body);
            cut[j][0] = len[j] / 3;
            cut[j][1] = 2 * len[j] / 3;
        }
        /* Both start and continue a message, then finish it in an order
         * that alternates by round: a buffer one gives back is the next
         * taken by another. */
        for (int j = 0; j < 2; j++)
            assert_int_equal(wsc_send_raw(c[who[j]], 0x01, frame[j], cut[j][0]), 0);
        usleep(3000);
        for (int j = 0; j < 2; j++)
            assert_int_equal(
                wsc_send_raw(c[who[j]], 0x00, frame[j] + cut[j][0], cut[j][1] - cut[j][0]), 0);
        usleep(3000);
        for (int i = 0; i < 2; i++) {
            int j = (r / 3 + i) % 2;
            assert_int_equal(
                wsc_send_raw(c[who[j]], 0x80, frame[j] + cut[j][1], len[j] - cut[j][1]), 0);
            usleep(3000);
        }
        for (int j = 0; j < 2; j++) {
            cJSON *rep = reply_to(c[who[j]], 100 + r);
            assert_non_null(rep);
            assert_null(wsc_err_code(rep));
            cJSON_Delete(rep);
        }
    }
    for (int r = 0; r < ROUNDS; r++)
        for (int k = r % 3, j = 0; j < 2; j++, k = (k + 1) % 3)
            assert_string_equal(it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s'"
                                        " AND client_msg_id = 'long-%d-%d'"
                                        " AND body = repeat(chr(%d), %d)",
                                        w.room, k, r, fill[k] + r, BODY),
                                "1");
    for (int k = 0; k < 3; k++)
        wsc_close(c[k]);
}

static void binary_frame_closes_1003(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *c = it_connect_auth(0, w.tok[0]);
    wsc_send_raw(c, 0x82, "\x01\x02\x03", 3);
    assert_int_equal(wsc_wait_closed(c, 3000), 1003);
    wsc_close(c);
}

/* U+0000 used to cut a string short ("visible\u0000hidden" was stored as
 * "visible", and client_msg_ids "dup\u0000a" and "dup\u0000b" collided, the
 * second answered duplicate and dropped). Every string with a NUL, and a
 * body with a C0 control other than tab, LF and CR, is bad_request with the
 * command's id; nothing is stored; the connection carries on. */
static void control_characters_refused_nothing_stored(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 2, NULL);
    struct wsc *c = it_member(0, w.tok[0], w.room);
    struct wsc *peer = it_member(1, w.tok[1], w.room);
    static const char *const bodies[][2] = {
        /* client_msg_id, body (JSON text inside the quotes) */
        {"nul-body", "visible\\u0000hidden"},
        {"dup\\u0000a", "first"},
        {"dup\\u0000b", "second"},
        {"bell", "ding\\u0007"},
        {"esc", "\\u001b[2J"},
        {"del", "rub\\u007f"},
        {"nl\\nid", "an id is one line"},
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char frame[512];
        snprintf(frame, sizeof frame,
                 "{\"id\":%zu,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"%s\","
                 "\"body\":\"%s\"}",
                 100 + i, w.room, bodies[i][0], bodies[i][1]);
        assert_int_equal(wsc_send_text(c, frame, strlen(frame)), 0);
        cJSON *r = wsc_next_reply(c, 3000);
        assert_non_null(r);
        if (!wsc_err_code(r)) fprintf(stderr, "accepted: %s\n", frame);
        assert_non_null(wsc_err_code(r));
        assert_string_equal(wsc_err_code(r), "bad_request");
        assert_int_equal(wsc_int(r, "id"), (int64_t)(100 + i));
        cJSON_Delete(r);
    }
    /* A NUL in the op, the room or a key is refused too. */
    static const char *const others[] = {
        "{\"id\":200,\"op\":\"ping\\u0000x\"}",
        "{\"id\":201,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"k\","
        "\"body\\u0000x\":\"y\",\"body\":\"z\"}",
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        char frame[512];
        snprintf(frame, sizeof frame, others[i], w.room);
        wsc_send_text(c, frame, strlen(frame));
        cJSON *r = wsc_next_reply(c, 3000);
        assert_non_null(r);
        assert_string_equal(wsc_err_code(r) ? wsc_err_code(r) : "ok", "bad_request");
        assert_int_equal(wsc_int(r, "id"), (int64_t)(200 + i));
        cJSON_Delete(r);
    }
    /* Nothing stored, nothing delivered. */
    assert_string_equal(last_seq(w.room), "0");
    assert_string_equal(it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s'", w.room), "0");
    assert_null(wsc_wait_push(peer, "message", 300));
    /* Tab, line feed and carriage return are text: stored intact. */
    cJSON *r = it_send(c, w.room, "multi", "line one\\nline\\ttwo\\r\\n");
    assert_null(wsc_err_code(r));
    assert_int_equal(wsc_int(r, "ok.seq"), 1);
    cJSON_Delete(r);
    assert_string_equal(
        it_sqlf("SELECT body = E'line one\\nline\\ttwo\\r\\n' FROM messages WHERE room_id = '%s'",
                w.room),
        "t");
    cJSON *p = wsc_wait_push(peer, "message", 3000);
    assert_non_null(p);
    assert_string_equal(wsc_str(p, "body"), "line one\nline\ttwo\r\n");
    cJSON_Delete(p);
    wsc_close(c);
    wsc_close(peer);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(bad_commands_answered_connection_survives),
        cmocka_unit_test(oversized_message_closes_1009),
        cmocka_unit_test(long_messages_reassembled_in_turn),
        cmocka_unit_test(binary_frame_closes_1003),
        cmocka_unit_test(control_characters_refused_nothing_stored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
