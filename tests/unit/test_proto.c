/* Unit tests of the protocol codec: strict decoding (every op, every error
 * class), the JSON writer's escaping and overflow handling, the encoders and
 * the client-side frame splitter; every allocation of decoding failing in turn
 * (cJSON allocates through mem.h, as in the server). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mem.h"
#include "parley_encode.h"
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
    n = pp_encode_error_retry(buf, sizeof buf, 5, PP_E_BUSY, "later", 250);
    buf[n] = '\0';
    assert_string_equal(buf, "{\"id\":5,\"error\":{\"code\":\"busy\",\"message\":\"later\","
                             "\"retry_after_ms\":250}}");
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
    /* A reason is 500 characters (1,000 bytes of two-byte letters), not 500 bytes. */
    for (int n = 500; n <= 501; n++) {
        static char big[4096];
        int k =
            snprintf(big, sizeof big,
                     "{\"id\":1,\"op\":\"delete\",\"room\":\"%s\",\"seq\":1,\"reason\":\"", ROOM);
        for (int i = 0; i < n; i++)
            k += snprintf(big + k, sizeof big - (size_t)k, "\xc3\xa9");
        snprintf(big + k, sizeof big - (size_t)k, "\"}");
        assert_int_equal(pp_decode(big, strlen(big), &lim, &c, &e), n == 500 ? 0 : -1);
        if (n == 500) {
            assert_int_equal(c.reason.len, 1000);
            pp_cmd_free(&c);
        } else {
            assert_int_equal(e.code, PP_E_BAD_REQUEST);
        }
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

/* ---- typed encoders (parley_encode.h) ------------------------------------ */

#define PERSON "c6f3a8f0-1b2c-4d3e-8f40-5a6b7c8d9e0f"
/* Quotes, backslashes, control characters, a closing tag, non-ASCII and the
 * text of an escape: all must come back unchanged. */
#define HOSTILE "a\"b\\c\n\t\x01</script>\xc3\xa9\\u0000}]"

static char ebuf[2048];
static struct pp_w ew;

static struct pp_w *enc_begin(void)
{
    pp_w_init(&ew, ebuf, sizeof ebuf - 1);
    return &ew;
}

/* The text written since enc_begin, NUL-terminated. */
static const char *enc_text(void)
{
    int n = pp_w_finish(&ew);
    assert_true(n > 0);
    ebuf[n] = '\0';
    return ebuf;
}

/* The text written since enc_begin, parsed (the caller deletes it). */
static cJSON *enc_parse(void)
{
    const char *t = enc_text();
    cJSON *j = cJSON_Parse(t);
    assert_non_null(j);
    return j;
}

static const char *jstr(const cJSON *j, const char *k)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, k);
    assert_true(cJSON_IsString(it));
    return it->valuestring;
}

static double jnum(const cJSON *j, const char *k)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, k);
    assert_true(cJSON_IsNumber(it));
    return it->valuedouble;
}

static bool jbool(const cJSON *j, const char *k)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(j, k);
    assert_true(cJSON_IsBool(it));
    return cJSON_IsTrue(it);
}

/* The exact bytes are the contract with the web client and the tests: these
 * strings are what the server sent before the encoders existed. */
static void reply_encoders_keep_their_bytes(void **state)
{
    (void)state;
    pp_enc_auth_ok(enc_begin(), PERSON, ROOM, "member");
    assert_string_equal(enc_text(), "{\"person\":\"" PERSON "\",\"workspace\":\"" ROOM
                                    "\",\"role\":\"member\"}");
    pp_enc_join_ok(enc_begin(), ROOM, 42, false, true);
    assert_string_equal(enc_text(), "{\"room\":\"" ROOM "\",\"last_seq\":42}");
    pp_enc_join_ok(enc_begin(), ROOM, 0, true, false);
    assert_string_equal(enc_text(), "{\"room\":\"" ROOM "\",\"last_seq\":0,\"recovered\":false}");
    pp_enc_leave_ok(enc_begin(), ROOM);
    assert_string_equal(enc_text(), "{\"room\":\"" ROOM "\"}");
    pp_enc_ping_ok(enc_begin(), 1795347064726LL);
    assert_string_equal(enc_text(), "{\"ts\":1795347064726}");
    pp_enc_typing_ok(enc_begin(), true);
    assert_string_equal(enc_text(), "{\"sent\":true}");
    pp_enc_typing_ok(enc_begin(), false);
    assert_string_equal(enc_text(), "{\"sent\":false}");
    pp_enc_send_ok(enc_begin(), ROOM, 43, 1795347064726LL, false, PP_K_MESSAGE);
    assert_string_equal(enc_text(), "{\"room\":\"" ROOM
                                    "\",\"seq\":43,\"ts\":1795347064726,\"duplicate\":false}");
    pp_enc_send_ok(enc_begin(), ROOM, 44, 5, true, PP_K_REPLY);
    assert_string_equal(enc_text(),
                        "{\"room\":\"" ROOM
                        "\",\"seq\":44,\"ts\":5,\"duplicate\":true,\"kind\":\"reply\"}");
    pp_enc_kept_ok(enc_begin(), ROOM, 9, "held", 7, false);
    assert_string_equal(enc_text(),
                        "{\"room\":\"" ROOM
                        "\",\"pending\":9,\"state\":\"held\",\"ts\":7,\"duplicate\":false}");

    struct pp_receipt_ok r = {.room = ROOM, .read = true, .seq = 12};
    pp_enc_receipt_ok(enc_begin(), &r);
    assert_string_equal(enc_text(), "{\"room\":\"" ROOM "\",\"up_to\":12}");
    r = (struct pp_receipt_ok){.room = ROOM, .seq = 3, .has_votes = true, .likes = 2, .v = 8};
    pp_enc_receipt_ok(enc_begin(), &r);
    assert_string_equal(enc_text(), "{\"room\":\"" ROOM "\",\"seq\":3,\"likes\":2,\"v\":8}");
    r = (struct pp_receipt_ok){.room = ROOM,
                               .seq = 3,
                               .has_votes = true,
                               .dialogue = true,
                               .stars = 3,
                               .star_sum = 13,
                               .v = 9};
    pp_enc_receipt_ok(enc_begin(), &r);
    assert_string_equal(enc_text(),
                        "{\"room\":\"" ROOM "\",\"seq\":3,\"stars\":3,\"star_avg\":4.33,\"v\":9}");
    r.stars = r.star_sum = 0; /* the last rating taken back: no division by zero */
    pp_enc_receipt_ok(enc_begin(), &r);
    assert_string_equal(enc_text(),
                        "{\"room\":\"" ROOM "\",\"seq\":3,\"stars\":0,\"star_avg\":0.00,\"v\":9}");
    r.has_votes = false; /* a second like changes nothing: no aggregates */
    pp_enc_receipt_ok(enc_begin(), &r);
    assert_string_equal(enc_text(), "{\"room\":\"" ROOM "\",\"seq\":3}");

    struct pp_message m = {.room = ROOM,
                           .seq = 5,
                           .sender = PERSON,
                           .client_msg_id = "c",
                           .client_msg_id_len = 1,
                           .body = "hi",
                           .body_len = 2,
                           .ts = 6,
                           .kind = PP_K_ENTRY};
    struct pp_w *w = enc_begin();
    pp_enc_page_begin(w, 17, ROOM, true);
    pp_enc_page_item(w, &m, 0); /* an entry without replies still says so */
    m.seq = 6;
    m.kind = PP_K_MESSAGE;
    pp_enc_page_item(w, &m, -1);
    pp_enc_page_end(w, true);
    assert_string_equal(
        enc_text(), "{\"id\":17,\"ok\":{\"room\":\"" ROOM "\",\"entries\":["
                    "{\"seq\":5,\"sender\":\"" PERSON "\",\"client_msg_id\":\"c\",\"body\":\"hi\","
                    "\"ts\":6,\"kind\":\"entry\",\"replies\":0},"
                    "{\"seq\":6,\"sender\":\"" PERSON "\",\"client_msg_id\":\"c\",\"body\":\"hi\","
                    "\"ts\":6}],\"has_more\":true}}");
    w = enc_begin();
    pp_enc_page_begin(w, 18, ROOM, false);
    pp_enc_page_end(w, false);
    assert_string_equal(enc_text(), "{\"id\":18,\"ok\":{\"room\":\"" ROOM
                                    "\",\"messages\":[],\"has_more\":false}}");
}

static void push_encoders_keep_their_bytes(void **state)
{
    (void)state;
    pp_enc_hello(enc_begin(), "parleyd/0.1.0", 65536, 4096, 5000);
    assert_string_equal(enc_text(), "{\"push\":\"hello\",\"protocol\":\"parley.v1\",\"server\":"
                                    "\"parleyd/0.1.0\",\"max_frame\":65536,\"max_body\":4096,"
                                    "\"auth_timeout_ms\":5000}");
    pp_enc_typing(enc_begin(), ROOM, PERSON);
    assert_string_equal(enc_text(),
                        "{\"push\":\"typing\",\"room\":\"" ROOM "\",\"person\":\"" PERSON "\"}");
    pp_enc_removed(enc_begin(), ROOM, "not_a_member");
    assert_string_equal(enc_text(),
                        "{\"push\":\"removed\",\"room\":\"" ROOM "\",\"reason\":\"not_a_member\"}");
    const char *rules[2] = {"r1", "r2"};
    pp_enc_flagged(enc_begin(), ROOM, PERSON, "c-1", 3, 0, rules, 2);
    assert_string_equal(enc_text(),
                        "{\"push\":\"flagged\",\"room\":\"" ROOM "\",\"sender\":\"" PERSON
                        "\",\"client_msg_id\":\"c-1\",\"rules\":[\"r1\",\"r2\"]}");
    pp_enc_flagged(enc_begin(), ROOM, PERSON, "c-1", 3, 12, rules, 0); /* an edit */
    assert_string_equal(enc_text(),
                        "{\"push\":\"flagged\",\"room\":\"" ROOM "\",\"sender\":\"" PERSON
                        "\",\"client_msg_id\":\"c-1\",\"seq\":12,\"rules\":[]}");

    struct pp_w *w = enc_begin(); /* a diff: one joined, one left */
    pp_enc_presence_begin(w, ROOM, 2);
    pp_enc_presence_list(w, PP_PRES_JOINED);
    pp_enc_presence_person(w, PERSON, true);
    pp_enc_presence_list_end(w);
    pp_enc_presence_list(w, PP_PRES_LEFT);
    pp_enc_presence_person(w, ROOM, false);
    pp_enc_presence_list_end(w);
    pp_enc_presence_list(w, PP_PRES_ONLINE);
    pp_enc_presence_list_end(w);
    pp_enc_presence_end(w);
    assert_string_equal(enc_text(), "{\"push\":\"presence\",\"room\":\"" ROOM "\",\"count\":2,"
                                    "\"joined\":[{\"person\":\"" PERSON "\",\"avatar\":true}],"
                                    "\"left\":[{\"person\":\"" ROOM "\",\"avatar\":false}],"
                                    "\"online\":[]}");
    w = enc_begin(); /* a big room: the count only */
    pp_enc_presence_begin(w, ROOM, 5000);
    pp_enc_presence_end(w);
    assert_string_equal(enc_text(), "{\"push\":\"presence\",\"room\":\"" ROOM "\",\"count\":5000}");

    pp_enc_read_event(enc_begin(), PERSON, 41);
    assert_string_equal(enc_text(), "{\"person\":\"" PERSON "\",\"up_to\":41}");
    pp_enc_votes_event(enc_begin(), 7, false, 3, 0, 0, 11);
    assert_string_equal(enc_text(), "{\"target\":7,\"likes\":3,\"v\":11}");
    pp_enc_votes_event(enc_begin(), 7, true, 0, 2, 9, 12);
    assert_string_equal(enc_text(), "{\"target\":7,\"stars\":2,\"star_avg\":4.50,\"v\":12}");
}

/* What a person or a client chose (roles, reasons, client_msg_ids, bodies,
 * rule ids) comes back unchanged through a JSON parser, whatever it holds. */
static void encoders_escape_hostile_strings(void **state)
{
    (void)state;
    cJSON *j;
    pp_enc_auth_ok(enc_begin(), PERSON, ROOM, HOSTILE);
    j = enc_parse();
    assert_string_equal(jstr(j, "role"), HOSTILE);
    assert_string_equal(jstr(j, "person"), PERSON);
    assert_string_equal(jstr(j, "workspace"), ROOM);
    cJSON_Delete(j);

    pp_enc_kept_ok(enc_begin(), ROOM, 9, HOSTILE, 7, true);
    j = enc_parse();
    assert_string_equal(jstr(j, "state"), HOSTILE);
    assert_int_equal(jnum(j, "pending"), 9);
    assert_true(jbool(j, "duplicate"));
    cJSON_Delete(j);

    pp_enc_hello(enc_begin(), HOSTILE, 1, 2, 3);
    j = enc_parse();
    assert_string_equal(jstr(j, "server"), HOSTILE);
    assert_string_equal(jstr(j, "protocol"), PP_PROTOCOL_NAME);
    assert_int_equal(jnum(j, "auth_timeout_ms"), 3);
    cJSON_Delete(j);

    pp_enc_removed(enc_begin(), ROOM, HOSTILE);
    j = enc_parse();
    assert_string_equal(jstr(j, "reason"), HOSTILE);
    cJSON_Delete(j);

    const char *rules[2] = {HOSTILE, "plain"};
    pp_enc_flagged(enc_begin(), ROOM, PERSON, HOSTILE, strlen(HOSTILE), 4, rules, 2);
    j = enc_parse();
    assert_string_equal(jstr(j, "client_msg_id"), HOSTILE);
    assert_int_equal(jnum(j, "seq"), 4);
    const cJSON *rl = cJSON_GetObjectItemCaseSensitive(j, "rules");
    assert_int_equal(cJSON_GetArraySize(rl), 2);
    assert_string_equal(cJSON_GetArrayItem(rl, 0)->valuestring, HOSTILE);
    assert_string_equal(cJSON_GetArrayItem(rl, 1)->valuestring, "plain");
    cJSON_Delete(j);

    /* A client_msg_id is written to its given length, not to a NUL. */
    pp_enc_flagged(enc_begin(), ROOM, PERSON, "abcdef", 3, 0, rules, 0);
    j = enc_parse();
    assert_string_equal(jstr(j, "client_msg_id"), "abc");
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "seq"));
    cJSON_Delete(j);

    struct pp_message m = {.room = ROOM,
                           .seq = 5,
                           .sender = PERSON,
                           .client_msg_id = HOSTILE,
                           .client_msg_id_len = strlen(HOSTILE),
                           .body = HOSTILE,
                           .body_len = strlen(HOSTILE),
                           .ts = 6};
    struct pp_w *w = enc_begin();
    pp_enc_page_begin(w, 3, ROOM, false);
    pp_enc_page_item(w, &m, -1);
    pp_enc_page_end(w, false);
    j = enc_parse();
    assert_int_equal(jnum(j, "id"), 3);
    const cJSON *ok = cJSON_GetObjectItemCaseSensitive(j, "ok");
    assert_string_equal(jstr(ok, "room"), ROOM);
    assert_false(jbool(ok, "has_more"));
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(ok, "messages");
    assert_int_equal(cJSON_GetArraySize(msgs), 1);
    const cJSON *it = cJSON_GetArrayItem(msgs, 0);
    assert_string_equal(jstr(it, "body"), HOSTILE);
    assert_string_equal(jstr(it, "client_msg_id"), HOSTILE);
    assert_null(cJSON_GetObjectItemCaseSensitive(it, "replies"));
    cJSON_Delete(j);
}

/* Ids are written as their first PP_UUID_LEN bytes: a caller's buffer need
 * not end right after one, and an id never carries what follows it. */
static void encoders_bound_ids(void **state)
{
    (void)state;
    char room[PP_UUID_LEN + 8];
    memcpy(room, ROOM "\"tail", PP_UUID_LEN + 6); /* not terminated after the uuid */
    pp_enc_leave_ok(enc_begin(), room);
    assert_string_equal(enc_text(), "{\"room\":\"" ROOM "\"}");
    struct pp_receipt_ok r = {.room = room, .seq = 1};
    pp_enc_receipt_ok(enc_begin(), &r);
    assert_string_equal(enc_text(), "{\"room\":\"" ROOM "\",\"seq\":1}");
    /* A short (bad) id is written as it is, escaped, not read past its end. */
    pp_enc_typing(enc_begin(), "x\"", PERSON);
    cJSON *j = enc_parse();
    assert_string_equal(jstr(j, "room"), "x\"");
    cJSON_Delete(j);
}

/* An encoder that does not fit marks the writer and never writes past it. */
static void encoders_overflow_cleanly(void **state)
{
    (void)state;
    char small[40];
    memset(small, 'Z', sizeof small);
    struct pp_w w;
    pp_w_init(&w, small, 32);
    pp_enc_send_ok(&w, ROOM, 1, 2, false, PP_K_MESSAGE);
    assert_int_equal(pp_w_finish(&w), -1);
    for (size_t i = 32; i < sizeof small; i++)
        assert_int_equal(small[i], 'Z');
    for (size_t cap = 0; cap < 120; cap++) { /* every cut of a presence push */
        char b[128];
        pp_w_init(&w, b, cap);
        pp_enc_presence_begin(&w, ROOM, 1);
        pp_enc_presence_list(&w, PP_PRES_ONLINE);
        pp_enc_presence_person(&w, PERSON, false);
        pp_enc_presence_list_end(&w);
        pp_enc_presence_end(&w);
        int n = pp_w_finish(&w);
        assert_true(n == -1 || (n > 0 && (size_t)n <= cap));
    }
}

/* What a decode gave: enough to tell one outcome from another. */
struct outcome {
    int rc;
    enum pp_err_code code;
    int64_t id;
    enum pp_op op;
    char message[128];
};

static struct outcome decode_once(const char *in, const struct pp_limits *lim)
{
    struct pp_cmd c;
    struct pp_err e;
    struct outcome o = {.rc = pp_decode(in, strlen(in), lim, &c, &e)};
    if (o.rc) {
        o.code = e.code;
        o.id = e.id;
        snprintf(o.message, sizeof o.message, "%s", e.message);
    } else {
        o.id = c.id;
        o.op = c.op;
        pp_cmd_free(&c);
    }
    return o;
}

/* Every allocation of decoding fails in turn (as SQLite's tests do), for
 * frames of every shape, accepted and refused: each failure is answered
 * internal "out of memory" (never bad_json, which would blame the client's
 * frame, and never a command), and any decode whose allocations all
 * succeeded gives what it gives without injection. Nothing leaks: the ASan
 * build runs this under LeakSanitizer. */
static void decode_survives_every_allocation_failure(void **state)
{
    (void)state;
    static const struct pp_limits lim = {.max_body = 4096};
    static const char *const frames[] = {
        "{\"id\":1,\"op\":\"auth\",\"token\":\"tok\",\"workspace\":\"" ROOM "\"}",
        "{\"op\":\"join\",\"room\":\"" ROOM "\",\"since\":42,\"id\":7}",
        "{\"id\":3,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"m1\","
        "\"body\":\"h\\u00e9 \\\"q\\\"\",\"parent\":4}",
        "{\"id\":4,\"op\":\"history\",\"room\":\"" ROOM "\",\"before\":7,\"limit\":20}",
        "{\"id\":1,\"op\":\"rate\",\"room\":\"" ROOM "\",\"seq\":3,\"stars\":5}",
        "{\"id\":1,\"op\":\"mute\",\"person\":\"" ROOM "\",\"duration_s\":60,\"reason\":\"r\"}",
        "{\"id\":5,\"op\":\"send\",\"room\":\"" ROOM "\",\"client_msg_id\":\"m\",\"bogus\":[1,2]}",
        "{\"id\":6,\"op\":\"nope\"}",
        "{\"id\":6,\"op\":\"ping\",\"op\":\"ping\"}",
        "[1,2,3]",
    };
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
        struct outcome want = decode_once(frames[i], &lim);
        long failed = 0, streak = 0, n;
        for (n = 1; streak < 20; n++) {
            mem_fail_after(n);
            struct outcome got = decode_once(frames[i], &lim);
            mem_fail_after(0);
            if (got.rc && got.code == PP_E_INTERNAL) {
                assert_string_equal(got.message, "out of memory");
                failed++;
                streak = 0;
                continue;
            }
            streak++;
            if (got.rc != want.rc || got.code != want.code || got.id != want.id ||
                got.op != want.op || strcmp(got.message, want.message))
                fail_msg("%s: allocation %ld failing gave rc %d %s \"%s\", not rc %d %s", frames[i],
                         n, got.rc, pp_err_name(got.code), got.message, want.rc,
                         pp_err_name(want.code));
        }
        /* the sweep went past the last allocation: every one before failed */
        assert_int_equal(failed, n - 21);
        assert_true(failed >= 3);
    }
}

int main(void)
{
    mem_hook_json(); /* as the server does */
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
        cmocka_unit_test(reply_encoders_keep_their_bytes),
        cmocka_unit_test(push_encoders_keep_their_bytes),
        cmocka_unit_test(encoders_escape_hostile_strings),
        cmocka_unit_test(encoders_bound_ids),
        cmocka_unit_test(encoders_overflow_cleanly),
        cmocka_unit_test(decode_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
