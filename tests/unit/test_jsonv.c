/* Unit tests of request-body validation: the single-value checks and the
 * field table (unknown, missing, mistyped, duplicate, normalised). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "jsonv.h"
#include "parley_proto.h"

static void values(void **state)
{
    (void)state;
    assert_true(jv_email("ada@example.com"));
    assert_true(jv_email("first.last+tag@sub.example.co.uk"));
    assert_false(jv_email("ada@example"));
    assert_false(jv_email("@example.com"));
    assert_false(jv_email("ada@@example.com"));
    assert_false(jv_email("a da@example.com"));
    assert_false(jv_email("ada..b@example.com"));
    assert_false(jv_email("ada@-example.com"));
    assert_false(jv_email("ada@192.168.1.1"));
    assert_true(jv_phone("+4915112345678"));
    assert_true(jv_phone("+14155552671"));
    assert_false(jv_phone("015112345678"));
    assert_false(jv_phone("+0151123456"));
    assert_false(jv_phone("+49 151 123"));
    assert_false(jv_phone("+1234567"));          /* 7 digits: too short */
    assert_false(jv_phone("+1234567890123456")); /* 16 digits: past E.164 */
    assert_true(jv_url("https://cdn.example.com/a.png"));
    assert_false(jv_url("javascript:alert(1)"));
    assert_false(jv_url("https://"));
    assert_false(jv_url("https://a b"));
    assert_true(jv_uuid("123e4567-e89b-12d3-a456-426614174000"));
    assert_false(jv_uuid("123e4567e89b12d3a456426614174000"));
    assert_true(jv_utf8_text("Grüße", strlen("Grüße"), false));
    assert_false(jv_utf8_text("a\nb", 3, false));
    assert_true(jv_utf8_text("a\nb", 3, true));
    assert_false(jv_utf8_text("\xc0\xaf", 2, false));         /* overlong */
    assert_false(jv_utf8_text("\xed\xa0\x80", 3, false));     /* surrogate */
    assert_false(jv_utf8_text("\xf4\x90\x80\x80", 4, false)); /* past U+10FFFF */
}

static const char *const colours[] = {"red", "blue", NULL};
static const struct jv_field spec[] = {
    {"name", JV_TEXT, true, false, 1, 10, NULL},
    {"email", JV_EMAIL, false, true, 0, 0, NULL},
    {"n", JV_INT, false, false, 1, 5, NULL},
    {"colour", JV_ENUM, false, false, 0, 0, colours},
    {"domains", JV_DOMAINS, false, false, 0, 2, NULL},
    {"ids", JV_UUIDS, false, false, 0, 3, NULL},
    {"pw", JV_SECRET, false, false, 4, 12, NULL},
    {NULL, 0, 0, 0, 0, 0, NULL},
};

static void fails(const char *body, const char *code, const char *field)
{
    struct jv_err e;
    cJSON *o = jv_parse(body, strlen(body), spec, false, &e);
    assert_null(o);
    assert_string_equal(e.code, code);
    assert_string_equal(e.field, field);
}

static void table(void **state)
{
    (void)state;
    struct jv_err e;
    const char *ok = "{\"name\":\"x\",\"email\":\"Ada@Example.COM\",\"n\":5,\"colour\":\"red\","
                     "\"domains\":[\"Example.ORG\"]}";
    cJSON *o = jv_parse(ok, strlen(ok), spec, false, &e);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "email")->valuestring, "ada@example.com");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "domains"), 0)->valuestring,
                        "example.org");
    cJSON_Delete(o);
    fails("{\"name\":", "bad_json", "");
    fails("{\"name\":\"x\"} trailing", "bad_json", "");
    fails("[]", "not_object", "");
    fails("{}", "missing_field", "name");
    fails("{\"name\":\"x\",\"Name\":\"y\"}", "unknown_field", "Name");
    fails("{\"name\":\"x\",\"name\":\"y\"}", "bad_field", "name");
    fails("{\"name\":\"\"}", "bad_field", "name");
    fails("{\"name\":\"12345678901\"}", "bad_field", "name");
    fails("{\"name\":\"a\\tb\"}", "bad_field", "name");
    fails("{\"name\":\"a\\u0000b\"}", "bad_json", "");
    fails("{\"na\\u0000me\":\"x\"}", "bad_json", "");
    fails("{\"name\":\"a\\u0007\"}", "bad_field", "name");
    fails("{\"name\":\"a\\u007f\"}", "bad_field", "name");
    /* An escaped backslash before "u0000" is text, not a NUL. */
    const char *bs = "{\"name\":\"a\\\\u0000\"}";
    o = jv_parse(bs, strlen(bs), spec, false, &e);
    assert_non_null(o);
    assert_string_equal(cJSON_GetObjectItem(o, "name")->valuestring, "a\\u0000");
    cJSON_Delete(o);
    fails("{\"name\":\"x\",\"n\":6}", "bad_field", "n");
    fails("{\"name\":\"x\",\"n\":2.5}", "bad_field", "n");
    fails("{\"name\":\"x\",\"n\":\"2\"}", "bad_field", "n");
    fails("{\"name\":\"x\",\"colour\":\"green\"}", "bad_field", "colour");
    fails("{\"name\":\"x\",\"email\":7}", "bad_field", "email");
    fails("{\"name\":\"x\",\"domains\":[\"a.com\",\"b.com\",\"c.com\"]}", "bad_field", "domains");
    fails("{\"name\":\"x\",\"ids\":[\"123e4567-e89b-12d3-a456-426614174000\","
          "\"123E4567-E89B-12D3-A456-426614174000\"]}",
          "bad_field", "ids");
    fails("{\"name\":\"x\",\"n\":null}", "bad_field", "n");
    /* Nullable fields accept null (clears them on update). */
    const char *nul = "{\"name\":\"x\",\"email\":null}";
    o = jv_parse(nul, strlen(nul), spec, false, &e);
    assert_non_null(o);
    cJSON_Delete(o);
    /* Invalid UTF-8 in the raw body. */
    fails("{\"name\":\"\xff\"}", "bad_json", "");
    /* Text is counted in characters (ten letters of two bytes fit 10)... */
    const char *ten = "{\"name\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                      "\xc3\xa9\xc3\xa9\"}";
    o = jv_parse(ten, strlen(ten), spec, false, &e);
    assert_non_null(o);
    cJSON_Delete(o);
    fails("{\"name\":"
          "\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
          "\xc3\xa9\"}",
          "bad_field", "name");
    /* ... a secret's minimum too (three letters are three, not six), its
     * maximum in bytes (what is copied and hashed). */
    const char *four = "{\"name\":\"x\",\"pw\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}";
    o = jv_parse(four, strlen(four), spec, false, &e);
    assert_non_null(o);
    cJSON_Delete(o);
    fails("{\"name\":\"x\",\"pw\":\"\xc3\xa9\xc3\xa9\xc3\xa9\"}", "bad_field", "pw");
    fails("{\"name\":\"x\",\"pw\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}",
          "bad_field", "pw");
    assert_int_equal(pp_utf8_chars("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10), 4);
    /* An empty body is {} only where the caller allows it. */
    fails("", "bad_json", "");
    o = jv_parse("", 0, spec + 1, true, &e);
    assert_non_null(o);
    assert_null(o->child);
    cJSON_Delete(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values),
        cmocka_unit_test(table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
