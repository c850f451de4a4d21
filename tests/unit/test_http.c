/* Unit tests of reading an HTTP request without a socket (http.h's
 * http_req_* parts, which http_begin and http_body run on what lws parsed)
 * and of validating its JSON body (jsonv.h), with every allocation failing
 * in turn. The headers are copied into fixed fields of the request and
 * allocate nothing; what allocates is the request, its body buffer, the
 * parse of the body and the error answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <uv.h>

#include "app.h"
#include "http.h"
#include "jsonv.h"
#include "mem.h"

static const char *const KINDS[] = {"chat", "dialogue", NULL};
/* A route's table with a field of every kind that allocates or rewrites. */
static const struct jv_field FIELDS[] = {
    {"name", JV_TEXT, true, false, 1, 100, NULL},
    {"email", JV_EMAIL, false, true, 3, 254, NULL},
    {"kind", JV_ENUM, false, false, 0, 0, KINDS},
    {"size", JV_INT, false, false, 1, 1000, NULL},
    {"open", JV_BOOL, false, false, 0, 0, NULL},
    {"domains", JV_DOMAINS, false, false, 0, 4, NULL},
    {"members", JV_UUIDS, false, false, 0, 4, NULL},
    {NULL, 0, false, false, 0, 0, NULL},
};

static const char GOOD[] =
    "{\"name\":\"R\\u00e9union\",\"email\":\"Ada@Example.COM\",\"kind\":\"chat\",\"size\":12,"
    "\"open\":true,\"domains\":[\"example.com\",\"Example.org\"],"
    "\"members\":[\"123e4567-e89b-12d3-a456-426614174000\"]}";
static const char UNKNOWN[] = "{\"name\":\"x\",\"colour\":\"red\"}";
static const char NOT_JSON[] = "{\"name\":\"x\",";

/* What reading one request gave. */
struct outcome {
    int stage;       /* 0: read and valid; 1: no request; 2: no body buffer; 3: refused */
    int status;      /* the answer's status (stage 3) */
    char code[32];   /* jv_err code (stage 3) */
    char email[64];  /* the normalised email (stage 0) */
    bool answer_oom; /* the error answer could not be made: 500 from a static body */
};

/* The request's life as http_begin, http_body and the route dispatcher
 * run it: a new request, the announced body, the body in three pieces,
 * the validation, an error answer when refused, and the free. */
static struct outcome read_request(struct app *a, const char *body)
{
    struct outcome o = {0};
    size_t len = strlen(body);
    struct http_req *r = http_req_new(a, NULL);
    if (!r) {
        o.stage = 1;
        return o;
    }
    if (http_req_body_begin(r, len)) {
        o.stage = 2;
        http_req_free(r);
        return o;
    }
    size_t third = len / 3;
    assert_int_equal(http_req_body_put(r, body, third), 0);
    assert_int_equal(http_req_body_put(r, body + third, third), 0);
    assert_int_equal(http_req_body_put(r, body + 2 * third, len - 2 * third), 0);
    assert_int_equal(r->body_len, len);
    assert_memory_equal(r->body, body, len);
    struct jv_err e;
    r->json = jv_parse(r->body, r->body_len, FIELDS, false, &e);
    if (!r->json) {
        o.stage = 3;
        snprintf(o.code, sizeof o.code, "%s", e.code);
        http_error(r, strcmp(e.code, "internal") ? 400 : 500, e.code, e.message, e.field);
        o.status = r->status;
        o.answer_oom = !r->resp;
        /* the answer is whole: the code is there, or internal out of memory */
        const char *text = r->resp ? r->resp : r->resp_ref;
        assert_non_null(strstr(text, o.answer_oom ? "\"internal\"" : e.code));
        if (o.answer_oom) assert_int_equal(r->status, 500);
    } else {
        cJSON *em = cJSON_GetObjectItemCaseSensitive(r->json, "email");
        snprintf(o.email, sizeof o.email, "%s", cJSON_IsString(em) ? em->valuestring : "");
    }
    http_req_free(r);
    return o;
}

static void with_app(struct app *a, uv_loop_t *loop)
{
    memset(a, 0, sizeof *a);
    assert_int_equal(uv_loop_init(loop), 0);
    a->loop = loop;
    a->cfg.http_request_timeout_ms = 60000;
}

/* Every allocation of reading a request fails in turn, for a valid body, a
 * body with an unknown field and one that is not JSON: each failure ends
 * as a clear outcome (no request: the connection closes; no body buffer:
 * the same; the body: 500 internal, never 400 blaming the client), and any
 * run whose allocations all succeeded reads as without injection. Nothing
 * leaks: the ASan build runs this under LeakSanitizer. */
static void request_survives_every_allocation_failure(void **state)
{
    (void)state;
    struct app a;
    uv_loop_t loop;
    with_app(&a, &loop);
    const char *const bodies[] = {GOOD, UNKNOWN, NOT_JSON};
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        struct outcome want = read_request(&a, bodies[i]);
        assert_false(want.answer_oom);
        if (i == 0) {
            assert_int_equal(want.stage, 0);
            assert_string_equal(want.email, "ada@example.com");
        } else {
            assert_int_equal(want.stage, 3);
            assert_int_equal(want.status, 400);
            assert_string_equal(want.code, i == 1 ? "unknown_field" : "bad_json");
        }
        long failed = 0, streak = 0, n;
        int stages[4] = {0};
        for (n = 1; streak < 20; n++) {
            mem_fail_after(n);
            struct outcome got = read_request(&a, bodies[i]);
            mem_fail_after(0);
            bool oom = got.stage == 1 || got.stage == 2 ||
                       (got.stage == 3 && !strcmp(got.code, "internal")) || got.answer_oom;
            if (oom) {
                if (got.stage == 3) assert_int_equal(got.status, 500);
                stages[got.stage]++;
                failed++;
                streak = 0;
                continue;
            }
            streak++;
            assert_int_equal(got.stage, want.stage);
            assert_int_equal(got.status, want.status);
            assert_string_equal(got.code, want.code);
            assert_string_equal(got.email, want.email);
        }
        assert_int_equal(failed, n - 21);
        /* the request, its body and the parse each failed at least once */
        assert_int_equal(stages[1], 1);
        assert_int_equal(stages[2], 1);
        assert_true(stages[3] >= 3);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A body longer than announced is refused (the connection closes), and
 * pieces after an answer are dropped. */
static void body_bounds(void **state)
{
    (void)state;
    struct app a;
    uv_loop_t loop;
    with_app(&a, &loop);
    struct http_req *r = http_req_new(&a, NULL);
    assert_non_null(r);
    assert_int_equal(http_req_body_begin(r, 4), 0);
    assert_int_equal(http_req_body_put(r, "abc", 3), 0);
    assert_int_equal(http_req_body_put(r, "de", 2), -EMSGSIZE);
    assert_int_equal(http_req_body_put(r, "d", 1), 0);
    assert_string_equal(r->body, "abcd");
    http_error(r, 400, "bad_request", "no", NULL);
    assert_int_equal(http_req_body_put(r, "zz", 2), 0); /* answered: discarded */
    assert_int_equal(r->body_len, 4);
    http_req_free(r);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    mem_hook_json(); /* as the server does */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_survives_every_allocation_failure),
        cmocka_unit_test(body_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
