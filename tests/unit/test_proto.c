/* Unit tests of the protocol codec: strict decoding (every op, every error
 * class), the JSON writer's escaping and overflow handling, the encoders and
 * the client-side frame splitter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parley_proto.h"

#define ROOM "5bb74dc2-439c-47fe-9744-509cd4531e7f"
static const struct pp_limits LIM = {.max_body = 16};

static void valid_commands_decode(void **state)
{
    (void)state;
    struct pp_cmd c;
    struct pp_err e;
    const char *auth = "{\"id\":1,\"op\":\"auth\",\"token\":\"tok\",\"workspace\":\"" ROOM "\"}";
    assert_int_equal(pp_decode(auth, strlen(auth), &LIM, &c, &e), 0);
    assert_int_equal(c.op, PP_OP_AUTH);
    assert_int_equal(c.id, 1);
    assert_string_equal(c.token.str, "tok");
    assert_int_equal(c.token.len, 3);
    assert_string_equal(c.workspace.str, ROOM);
    pp_cmd_free(&c);

    const char *join =
        "{\"op\":\"join\",\"room\":\"" ROOM "\",\"since\":42,\"id\":9007199254740991}";
    assert_int_equal(pp_decode(join, strlen(join), &LIM, &c, &e), 0);
    assert_int_equal(c.op, PP_OP_JOIN);
    assert_int_equal(c.id, PP_MAX_ID);
    assert_true(c.has_since);
    assert_int_equal(c.since, 42);
    pp_cmd_free(&c);

    const char *send = "{\"id\":3,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"m1\","
                       "\"body\":\"h\\u00e9 \\\"q\\\"\"}";
    assert_int_equal(pp_decode(send, strlen(send), &LIM, &c, &e), 0);
    assert_int_equal(c.op, PP_OP_SEND);
    assert_string_equal(c.body.str, "h\xc3\xa9 \"q\"");
    assert_int_equal(c.body.len, 7);
    assert_string_equal(c.client_msg_id.str, "m1");
    pp_cmd_free(&c);

    const char *hist = "{\"id\":4,\"op\":\"history\",\"room\":\"" ROOM "\",\"before\":7}";
    assert_int_equal(pp_decode(hist, strlen(hist), &LIM, &c, &e), 0);
    assert_true(c.has_before);
    assert_false(c.has_after);
    assert_int_equal(c.before, 7);
    assert_int_equal(c.limit, PP_HISTORY_DEFAULT_LIMIT);
    pp_cmd_free(&c);

    const char *ping = "  {\"id\":5,\"op\":\"ping\"}\n";
    assert_int_equal(pp_decode(ping, strlen(ping), &LIM, &c, &e), 0);
    assert_int_equal(c.op, PP_OP_PING);
    pp_cmd_free(&c);

    /* The decoder never reads past len: a valid command followed by junk
     * outside the length decodes. */
    const char *cut = "{\"id\":6,\"op\":\"leave\",\"room\":\"" ROOM "\"}GARBAGE";
    assert_int_equal(pp_decode(cut, strlen(cut) - 7, &LIM, &c, &e), 0);
    assert_int_equal(c.op, PP_OP_LEAVE);
    pp_cmd_free(&c);
}

static void bad_commands_refused(void **state)
{
    (void)state;
    struct {
        const char *in;
        enum pp_err_code code;
        int64_t id; /* expected err.id */
    } cases[] = {
        {"", PP_E_BAD_JSON, 0},
        {"{", PP_E_BAD_JSON, 0},
        {"nope", PP_E_BAD_JSON, 0},
        {"[1]", PP_E_BAD_JSON, 0},
        {"\"s\"", PP_E_BAD_JSON, 0},
        {"{\"id\":1,\"op\":\"ping\"} x", PP_E_BAD_JSON, 0},
        {"{\"op\":\"ping\"}", PP_E_BAD_REQUEST, 0},
        {"{\"id\":\"1\",\"op\":\"ping\"}", PP_E_BAD_REQUEST, 0},
        {"{\"id\":0,\"op\":\"ping\"}", PP_E_BAD_REQUEST, 0},
        {"{\"id\":-3,\"op\":\"ping\"}", PP_E_BAD_REQUEST, 0},
        {"{\"id\":1.5,\"op\":\"ping\"}", PP_E_BAD_REQUEST, 0},
        {"{\"id\":9007199254740992,\"op\":\"ping\"}", PP_E_BAD_REQUEST, 0},
        {"{\"id\":1e400,\"op\":\"ping\"}", PP_E_BAD_REQUEST, 0},
        {"{\"id\":2}", PP_E_BAD_REQUEST, 2},
        {"{\"id\":2,\"op\":3}", PP_E_BAD_REQUEST, 2},
        {"{\"id\":2,\"op\":\"dance\"}", PP_E_UNKNOWN_OP, 2},
        {"{\"id\":3,\"op\":\"ping\",\"extra\":1}", PP_E_BAD_REQUEST, 3},
        {"{\"id\":3,\"op\":\"ping\",\"op\":\"ping\"}", PP_E_BAD_REQUEST, 3},
        {"{\"id\":3,\"id\":4,\"op\":\"ping\"}", PP_E_BAD_REQUEST, 0},
        {"{\"id\":4,\"op\":\"auth\"}", PP_E_BAD_REQUEST, 4},
        {"{\"id\":4,\"op\":\"auth\",\"token\":\"\"}", PP_E_BAD_REQUEST, 4},
        {"{\"id\":4,\"op\":\"auth\",\"token\":7}", PP_E_BAD_REQUEST, 4},
        {"{\"id\":4,\"op\":\"auth\",\"token\":\"t\",\"workspace\":\"x\"}", PP_E_BAD_REQUEST, 4},
        {"{\"id\":5,\"op\":\"join\"}", PP_E_BAD_REQUEST, 5},
        {"{\"id\":5,\"op\":\"join\",\"room\":\"5BB74DC2-439C-47FE-9744-509CD4531E7F\"}",
         PP_E_BAD_REQUEST, 5},
        {"{\"id\":5,\"op\":\"join\",\"room\":\"5bb74dc2-439c-47fe-9744-509cd4531e7\"}",
         PP_E_BAD_REQUEST, 5},
        {"{\"id\":5,\"op\":\"join\",\"room\":\"" ROOM "\",\"since\":-1}", PP_E_BAD_REQUEST, 5},
        {"{\"id\":5,\"op\":\"join\",\"room\":\"" ROOM "\",\"since\":\"1\"}", PP_E_BAD_REQUEST, 5},
        {"{\"id\":5,\"op\":\"join\",\"room\":\"" ROOM "\",\"body\":\"x\"}", PP_E_BAD_REQUEST, 5},
        {"{\"id\":6,\"op\":\"send\",\"room\":\"" ROOM "\",\"body\":\"x\"}", PP_E_BAD_REQUEST, 6},
        {"{\"id\":6,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"c\"}",
         PP_E_BAD_REQUEST, 6},
        {"{\"id\":6,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"c\",\"body\":\"\"}",
         PP_E_BAD_REQUEST, 6},
        {"{\"id\":6,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"c\",\"body\":null}",
         PP_E_BAD_REQUEST, 6},
        {"{\"id\":6,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"c\","
         "\"body\":\"01234567890123456\"}",
         PP_E_BODY_TOO_LONG, 6},
        {"{\"id\":6,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":"
         "\"0123456789012345678901234567890123456789012345678901234567890123X\",\"body\":\"b\"}",
         PP_E_BAD_REQUEST, 6},
        {"{\"id\":7,\"op\":\"history\",\"room\":\"" ROOM "\",\"limit\":0}", PP_E_BAD_REQUEST, 7},
        {"{\"id\":7,\"op\":\"history\",\"room\":\"" ROOM "\",\"limit\":101}", PP_E_BAD_REQUEST, 7},
        {"{\"id\":7,\"op\":\"history\",\"room\":\"" ROOM "\",\"before\":0}", PP_E_BAD_REQUEST, 7},
        {"{\"id\":7,\"op\":\"history\",\"room\":\"" ROOM "\",\"before\":5,\"after\":1}",
         PP_E_BAD_REQUEST, 7},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct pp_cmd c;
        struct pp_err e;
        int rc = pp_decode(cases[i].in, strlen(cases[i].in), &LIM, &c, &e);
        if (rc != -1 || e.code != cases[i].code || e.id != cases[i].id)
            fprintf(stderr, "case %zu: %s -> rc %d code %s id %lld (%s)\n", i, cases[i].in, rc,
                    pp_err_name(e.code), (long long)e.id, e.message);
        assert_int_equal(rc, -1);
        assert_int_equal(e.code, cases[i].code);
        assert_int_equal(e.id, cases[i].id);
        assert_true(strlen(e.message) > 0);
        /* The message names a field at most, never echoes a body. */
        assert_null(strstr(e.message, "0123456789"));
    }
}

static void body_exactly_at_limit_is_accepted(void **state)
{
    (void)state;
    const char *in = "{\"id\":6,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"c\","
                     "\"body\":\"0123456789012345\"}";
    struct pp_cmd c;
    struct pp_err e;
    assert_int_equal(pp_decode(in, strlen(in), &LIM, &c, &e), 0);
    assert_int_equal(c.body.len, 16);
    pp_cmd_free(&c);
}

static void writer_escapes_and_round_trips(void **state)
{
    (void)state;
    const char raw[] = "quote\" back\\ nl\n tab\t ctl\x01\x1f uni \xc3\xa9\xe2\x82\xac end";
    char buf[512];
    struct pp_w w;
    pp_w_init(&w, buf, sizeof buf);
    pp_w_obj_begin(&w);
    pp_w_key(&w, "s");
    pp_w_str(&w, raw, sizeof raw - 1);
    pp_w_key(&w, "n");
    pp_w_int(&w, -9007199254740991LL);
    pp_w_key(&w, "a");
    pp_w_arr_begin(&w);
    pp_w_bool(&w, true);
    pp_w_null(&w);
    pp_w_obj_begin(&w);
    pp_w_obj_end(&w);
    pp_w_raw(&w, "[1,2]", 5);
    pp_w_arr_end(&w);
    pp_w_obj_end(&w);
    int n = pp_w_finish(&w);
    assert_true(n > 0);
    cJSON *j = cJSON_ParseWithLength(buf, (size_t)n);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "s")->valuestring, raw);
    assert_true(cJSON_GetObjectItem(j, "n")->valuedouble == -9007199254740991.0);
    cJSON *a = cJSON_GetObjectItem(j, "a");
    assert_int_equal(cJSON_GetArraySize(a), 4);
    assert_true(cJSON_IsTrue(cJSON_GetArrayItem(a, 0)));
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(a, 1)));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetArrayItem(a, 3)), 2);
    cJSON_Delete(j);
}

static void writer_never_overflows(void **state)
{
    (void)state;
    struct pp_message m = {.room = ROOM,
                           .seq = 12,
                           .sender = ROOM,
                           .client_msg_id = "c\"1",
                           .client_msg_id_len = 3,
                           .body = "b\n\x02",
                           .body_len = 3,
                           .ts = 1700};
    char full[512];
    int need = pp_encode_message(full, sizeof full, &m);
    assert_true(need > 0);
    for (int cap = 0; cap <= need; cap++) {
        char buf[600];
        memset(buf, 0x5a, sizeof buf);
        int n = pp_encode_message(buf, (size_t)cap, &m);
        if (cap < need)
            assert_int_equal(n, -1);
        else
            assert_int_equal(n, need);
        for (size_t k = (size_t)cap; k < sizeof buf; k++)
            assert_int_equal((unsigned char)buf[k], 0x5a);
    }
}

static void encoders_produce_the_spec_shapes(void **state)
{
    (void)state;
    char buf[512];
    struct pp_message m = {.room = ROOM,
                           .seq = 7,
                           .sender = ROOM,
                           .client_msg_id = "x",
                           .client_msg_id_len = 1,
                           .body = "hi",
                           .body_len = 2,
                           .ts = 99};
    int n = pp_encode_message(buf, sizeof buf, &m);
    cJSON *j = cJSON_ParseWithLength(buf, (size_t)n);
    assert_string_equal(cJSON_GetObjectItem(j, "push")->valuestring, "message");
    assert_string_equal(cJSON_GetObjectItem(j, "room")->valuestring, ROOM);
    assert_int_equal(cJSON_GetObjectItem(j, "seq")->valuedouble, 7);
    assert_string_equal(cJSON_GetObjectItem(j, "body")->valuestring, "hi");
    assert_string_equal(cJSON_GetObjectItem(j, "client_msg_id")->valuestring, "x");
    assert_int_equal(cJSON_GetObjectItem(j, "ts")->valuedouble, 99);
    cJSON_Delete(j);

    n = pp_encode_error(buf, sizeof buf, 0, PP_E_BAD_JSON, "nope");
    buf[n] = '\0'; /* encoders write no terminator */
    assert_string_equal(buf,
                        "{\"id\":null,\"error\":{\"code\":\"bad_json\",\"message\":\"nope\"}}");
    assert_int_equal(n, (int)strlen(buf));
    n = pp_encode_ok(buf, sizeof buf, 12, "{\"seq\":3}", 9);
    buf[n] = '\0';
    assert_string_equal(buf, "{\"id\":12,\"ok\":{\"seq\":3}}");
    n = pp_encode_ok(buf, sizeof buf, 13, NULL, 0);
    buf[n] = '\0';
    assert_string_equal(buf, "{\"id\":13,\"ok\":{}}");
    n = pp_encode_member(buf, sizeof buf, ROOM, ROOM, false);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "\"event\":\"left\""));
    /* Every error code has a distinct, stable name. */
    for (int a = PP_E_BAD_JSON; a < PP_E__COUNT; a++)
        for (int b = a + 1; b < PP_E__COUNT; b++)
            assert_string_not_equal(pp_err_name((enum pp_err_code)a),
                                    pp_err_name((enum pp_err_code)b));
    assert_string_equal(pp_err_name(PP_E_UNAVAILABLE), "unavailable");
    assert_string_equal(pp_err_name((enum pp_err_code)999), "internal");
}

static int objects_seen;
static void count_obj(void *ud, const void *item)
{
    (void)ud;
    assert_true(cJSON_IsObject((const cJSON *)item));
    objects_seen++;
}

static void split_server_frames(void **state)
{
    (void)state;
    struct {
        const char *in;
        int want;
    } cases[] = {
        {"{\"push\":\"hello\"}", 1},
        {"[{\"a\":1},{\"b\":2},{\"c\":3}]", 3},
        {"[]", 0},
        {"[{\"a\":1},2]", -1},
        {"garbage", -1},
        {"7", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        objects_seen = 0;
        int n = pp_split_server_frame(cases[i].in, strlen(cases[i].in), count_obj, NULL);
        assert_int_equal(n, cases[i].want);
        if (n >= 0)
            assert_int_equal(objects_seen, n);
        else
            assert_int_equal(objects_seen, 0);
    }
}

/* The receipt and vote ops: their fields, ranges and own error codes. */
static void receipt_and_vote_commands(void **state)
{
    (void)state;
    struct pp_limits lim = {.max_body = 4096};
    struct pp_cmd c;
    struct pp_err e;
    char in[256];
    snprintf(in, sizeof in, "{\"id\":1,\"op\":\"read\",\"room\":\"%s\",\"seq\":0}", ROOM);
    assert_int_equal(pp_decode(in, strlen(in), &lim, &c, &e), 0);
    assert_int_equal(c.op, PP_OP_READ);
    assert_true(c.has_seq);
    pp_cmd_free(&c);
    snprintf(in, sizeof in, "{\"id\":1,\"op\":\"rate\",\"room\":\"%s\",\"seq\":3,\"stars\":5}",
             ROOM);
    assert_int_equal(pp_decode(in, strlen(in), &lim, &c, &e), 0);
    assert_int_equal(c.stars, 5);
    pp_cmd_free(&c);
    snprintf(in, sizeof in, "{\"id\":1,\"op\":\"entries\",\"room\":\"%s\",\"sort\":\"rating\"}",
             ROOM);
    assert_int_equal(pp_decode(in, strlen(in), &lim, &c, &e), 0);
    assert_true(c.by_rating);
    assert_int_equal(c.limit, PP_HISTORY_DEFAULT_LIMIT);
    pp_cmd_free(&c);
    const struct {
        const char *fmt;
        enum pp_err_code code;
    } bad[] = {
        {"{\"id\":1,\"op\":\"rate\",\"room\":\"%s\",\"seq\":3,\"stars\":6}",
         PP_E_STARS_OUT_OF_RANGE},
        {"{\"id\":1,\"op\":\"rate\",\"room\":\"%s\",\"seq\":3,\"stars\":0}",
         PP_E_STARS_OUT_OF_RANGE},
        {"{\"id\":1,\"op\":\"rate\",\"room\":\"%s\",\"seq\":3,\"stars\":2.5}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"rate\",\"room\":\"%s\",\"seq\":3}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"like\",\"room\":\"%s\",\"seq\":0}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"like\",\"room\":\"%s\",\"seq\":1,\"stars\":1}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"read\",\"room\":\"%s\",\"seq\":-1}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"entries\",\"room\":\"%s\",\"sort\":\"best\"}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"seen_entries\",\"room\":\"%s\",\"person\":\"bob\"}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"a\",\"body\":\"b\","
         "\"parent\":0}",
         PP_E_BAD_REQUEST},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(in, sizeof in, bad[i].fmt, ROOM);
        assert_int_equal(pp_decode(in, strlen(in), &lim, &c, &e), -1);
        if (e.code != bad[i].code) fail_msg("%s: got %s", in, pp_err_name(e.code));
        assert_int_equal(e.id, 1);
    }
}

static void event_pushes(void **state)
{
    (void)state;
    char buf[512];
    const char *ev = "{\"target\":3,\"likes\":2,\"v\":5}";
    struct pp_message m = {.room = ROOM,
                           .seq = 9,
                           .sender = ROOM,
                           .client_msg_id = "~x",
                           .client_msg_id_len = 2,
                           .body = ev,
                           .body_len = strlen(ev),
                           .ts = 1,
                           .kind = PP_K_VOTES};
    int n = pp_encode_message(buf, sizeof buf, &m);
    cJSON *j = cJSON_ParseWithLength(buf, (size_t)n);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "push")->valuestring, "votes");
    assert_int_equal(cJSON_GetObjectItem(j, "seq")->valuedouble, 9);
    assert_int_equal(cJSON_GetObjectItem(j, "likes")->valuedouble, 2);
    assert_null(cJSON_GetObjectItem(j, "body"));
    cJSON_Delete(j);
    struct pp_message r = {.room = ROOM,
                           .seq = 4,
                           .sender = ROOM,
                           .client_msg_id = "r",
                           .client_msg_id_len = 1,
                           .body = "re",
                           .body_len = 2,
                           .ts = 1,
                           .kind = PP_K_REPLY,
                           .parent = 2,
                           .has_votes = true,
                           .stars = 2,
                           .star_sum = 9,
                           .votes_v = 3};
    n = pp_encode_message(buf, sizeof buf, &r);
    j = cJSON_ParseWithLength(buf, (size_t)n);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "kind")->valuestring, "reply");
    assert_int_equal(cJSON_GetObjectItem(j, "parent")->valuedouble, 2);
    assert_true(cJSON_GetObjectItem(j, "star_avg")->valuedouble == 4.5);
    cJSON_Delete(j);
}

static void moderation_commands(void **state)
{
    (void)state;
    struct pp_limits lim = {.max_body = 16};
    struct pp_cmd c;
    struct pp_err e;
    char in[256];
    snprintf(in, sizeof in,
             "{\"id\":1,\"op\":\"mute\",\"person\":\"%s\",\"duration_s\":60,\"reason\":\"r\"}",
             ROOM);
    assert_int_equal(pp_decode(in, strlen(in), &lim, &c, &e), 0);
    assert_int_equal(c.op, PP_OP_MUTE);
    assert_int_equal(c.duration_s, 60);
    assert_null(c.room.str); /* the whole workspace */
    pp_cmd_free(&c);
    snprintf(in, sizeof in, "{\"id\":1,\"op\":\"room_settings\",\"room\":\"%s\",\"slow_mode_s\":0}",
             ROOM);
    assert_int_equal(pp_decode(in, strlen(in), &lim, &c, &e), 0);
    assert_true(c.has_slow_mode && !c.has_locked);
    pp_cmd_free(&c);
    snprintf(in, sizeof in, "{\"id\":1,\"op\":\"approve\",\"room\":\"%s\",\"pending\":7}", ROOM);
    assert_int_equal(pp_decode(in, strlen(in), &lim, &c, &e), 0);
    assert_int_equal(c.pending, 7);
    pp_cmd_free(&c);
    const struct {
        const char *fmt;
        enum pp_err_code code;
    } bad[] = {
        {"{\"id\":1,\"op\":\"room_settings\",\"room\":\"%s\"}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"room_settings\",\"room\":\"%s\",\"locked\":1}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"room_settings\",\"room\":\"%s\",\"slow_mode_s\":86401}",
         PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"mute\",\"room\":\"%s\",\"person\":\"x\",\"duration_s\":6}",
         PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"mute\",\"room\":\"%s\",\"duration_s\":0}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"approve\",\"room\":\"%s\",\"pending\":\"7\"}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"reject\",\"room\":\"%s\"}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"delete\",\"room\":\"%s\",\"seq\":0}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"delete\",\"room\":\"%s\",\"seq\":1,\"reason\":\"\"}",
         PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"edit\",\"room\":\"%s\",\"seq\":1}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"edit\",\"room\":\"%s\",\"seq\":1,\"body\":\"01234567890123456\"}",
         PP_E_BODY_TOO_LONG},
        {"{\"id\":1,\"op\":\"remove\",\"room\":\"%s\"}", PP_E_BAD_REQUEST},
        {"{\"id\":1,\"op\":\"pending\",\"room\":\"%s\",\"seq\":1}", PP_E_BAD_REQUEST},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(in, sizeof in, bad[i].fmt, ROOM);
        assert_int_equal(pp_decode(in, strlen(in), &lim, &c, &e), -1);
        if (e.code != bad[i].code) fail_msg("%s: got %s", in, pp_err_name(e.code));
    }
    /* A deleted stub and an edited message say so. */
    char buf[512];
    struct pp_message m = {.room = ROOM,
                           .seq = 2,
                           .sender = ROOM,
                           .client_msg_id = "c",
                           .client_msg_id_len = 1,
                           .body = "",
                           .body_len = 0,
                           .ts = 1,
                           .deleted = true,
                           .edited = 77};
    int n = pp_encode_message(buf, sizeof buf, &m);
    cJSON *j = cJSON_ParseWithLength(buf, (size_t)n);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "deleted")));
    assert_int_equal(cJSON_GetObjectItem(j, "edited")->valuedouble, 77);
    cJSON_Delete(j);
    assert_string_equal(pp_err_name(PP_E_EDIT_WINDOW), "edit_window_closed");
    assert_string_equal(pp_op_name(PP_OP_ROOM_SETTINGS), "room_settings");
}

static void uuid_validation(void **state)
{
    (void)state;
    assert_true(pp_uuid_valid(ROOM, 36));
    assert_false(pp_uuid_valid(ROOM, 35));
    assert_false(pp_uuid_valid("5bb74dc2x439c-47fe-9744-509cd4531e7f", 36));
    assert_false(pp_uuid_valid("5bb74dc2-439c-47fe-9744-509cd4531e7g", 36));
    assert_false(pp_uuid_valid(NULL, 36));
}

/* One rule for strings on the wire (PROTOCOL.md section 2, the same as the
 * HTTP API's): no U+0000 anywhere, escaped or raw, in a value or a key
 * (cJSON would cut the string there, so "visible\u0000hidden" would be
 * stored as "visible" and two client_msg_ids would collide); no other C0
 * control character or DEL, except tab, line feed and carriage return in a
 * message body. */
static void control_characters_refused(void **state)
{
    (void)state;
    static const struct pp_limits big = {.max_body = 4096};
    struct pp_cmd c;
    struct pp_err e;
    static const char *const bad[] = {
        /* NUL, escaped, in every kind of string */
        "{\"id\":7,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"m\","
        "\"body\":\"visible\\u0000hidden\"}",
        "{\"id\":7,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"dup\\u0000a\","
        "\"body\":\"x\"}",
        "{\"id\":7,\"op\":\"auth\",\"token\":\"tok\\u0000en\"}",
        "{\"id\":7,\"op\":\"ping\\u0000x\"}",
        "{\"id\":7,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"m\","
        "\"body\\u0000x\":\"y\",\"body\":\"x\"}",
        "{\"id\":7,\"op\":\"delete\",\"room\":\"" ROOM "\",\"seq\":1,\"reason\":\"a\\u0000\"}",
        "{\"id\":7,\"op\":\"join\",\"room\":\"" ROOM "\\u0000\"}",
        /* other C0 controls and DEL in a body */
        "{\"id\":7,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"m\","
        "\"body\":\"bell\\u0007\"}",
        "{\"id\":7,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"m\","
        "\"body\":\"esc\\u001b[31m\"}",
        "{\"id\":7,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"m\","
        "\"body\":\"bs\\b\"}",
        "{\"id\":7,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"m\","
        "\"body\":\"del\\u007f\"}",
        "{\"id\":7,\"op\":\"edit\",\"room\":\"" ROOM "\",\"seq\":1,\"body\":\"ff\\f\"}",
        /* any control in a single-line string (client_msg_id, reason) */
        "{\"id\":7,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"a\\nb\","
        "\"body\":\"x\"}",
        "{\"id\":7,\"op\":\"mute\",\"person\":\"" ROOM "\",\"duration_s\":5,\"reason\":\"a\\tb\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = pp_decode(bad[i], strlen(bad[i]), &big, &c, &e);
        if (rc == 0) {
            fprintf(stderr, "accepted: %s\n", bad[i]);
            pp_cmd_free(&c);
        }
        assert_int_equal(rc, -1);
        assert_int_equal(e.code, PP_E_BAD_REQUEST);
        assert_int_equal(e.id, 7); /* the error reply carries the id */
    }
    /* A raw NUL byte inside a string is refused the same way. */
    static const char raw[] = "{\"id\":7,\"op\":\"send\",\"room\":\"" ROOM
                              "\",\"client_msg_id\":\"m\",\"body\":\"a\0b\"}";
    assert_int_equal(pp_decode(raw, sizeof raw - 1, &big, &c, &e), -1);
    assert_int_equal(e.code, PP_E_BAD_REQUEST);

    /* Allowed: tab, line feed and carriage return in a body; an escaped
     * backslash followed by "u0000" is text, not a NUL; C1 and other
     * Unicode characters. */
    const char *ok = "{\"id\":8,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"m\","
                     "\"body\":\"a\\tb\\nc\\r\\nd \\\\u0000 \\u00e9\\u0085\"}";
    assert_int_equal(pp_decode(ok, strlen(ok), &big, &c, &e), 0);
    assert_string_equal(c.body.str, "a\tb\nc\r\nd \\u0000 \xc3\xa9\xc2\x85");
    pp_cmd_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_commands_decode),
        cmocka_unit_test(bad_commands_refused),
        cmocka_unit_test(body_exactly_at_limit_is_accepted),
        cmocka_unit_test(writer_escapes_and_round_trips),
        cmocka_unit_test(writer_never_overflows),
        cmocka_unit_test(encoders_produce_the_spec_shapes),
        cmocka_unit_test(split_server_frames),
        cmocka_unit_test(uuid_validation),
        cmocka_unit_test(receipt_and_vote_commands),
        cmocka_unit_test(event_pushes),
        cmocka_unit_test(moderation_commands),
        cmocka_unit_test(control_characters_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
