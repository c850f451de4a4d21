/* Unit tests of the guidelines engine: each rule kind, each action,
 * precedence, exemptions, evasion (case, full-width, diacritics, zero-width,
 * leetspeak), catastrophic patterns and limits of a rule set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guidelines.h"
#include "mem.h"
#include "perm.h"

static struct gl_set *compile(const char *json)
{
    struct gl_error e;
    struct gl_set *s = gl_compile(json, strlen(json), &e);
    if (!s) fail_msg("compile failed: rule %d offset %d: %s", e.rule, e.offset, e.message);
    return s;
}

/* One case: a rule set, a text, a sender role, the verdict expected. */
static const struct {
    const char *rules, *text;
    int role;
    const char *action;    /* expected action */
    const char *rewritten; /* expected text after mask/redact, or NULL: unchanged */
    const char *kind;      /* kind of the first hit, or NULL for none */
} cases[] = {
    /* words: whole words, normalised */
    {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"darn\"],\"action\":\"mask\"}]}", "well darn it",
     ROLE_MEMBER, "mask", "well **** it", "words"},
    {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"darn\"],\"action\":\"mask\"}]}", "darned good",
     ROLE_MEMBER, "allow", NULL, NULL},
    {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"darn\"],\"action\":\"mask\",\"whole_words\":"
     "false}]}",
     "darned good", ROLE_MEMBER, "mask", "****ed good", "words"},
    {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"darn\"],\"action\":\"mask\"}]}", "DARN!",
     ROLE_MEMBER, "mask", "****!", "words"},
    /* full-width letters */
    {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"darn\"],\"action\":\"reject\"}]}",
     "\xef\xbc\xa4\xef\xbc\xa1\xef\xbc\xb2\xef\xbc\xae", ROLE_MEMBER, "reject", NULL, "words"},
    /* diacritics and a zero-width joiner inside the word */
    {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"darn\"],\"action\":\"mask\"}]}",
     "d\xc3\xa1r\xe2\x80\x8dn", ROLE_MEMBER, "mask", "*****",
     "words"}, /* the joiner is masked too */
    /* leetspeak only where the rule asks */
    {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"darn\"],\"action\":\"mask\"}]}", "d4rn",
     ROLE_MEMBER, "allow", NULL, NULL},
    {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"darn\"],\"action\":\"mask\",\"leet\":true}]}",
     "d4rn", ROLE_MEMBER, "mask", "****", "words"},
    /* phrases */
    {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"over the moon\"],\"action\":\"flag\"}]}",
     "I am Over The Moon today", ROLE_MEMBER, "flag", NULL, "words"},
    /* regex on the normalised text */
    {"{\"rules\":[{\"kind\":\"regex\",\"pattern\":\"ticket-[0-9]+\",\"action\":\"redact\"}]}",
     "see TICKET-42 now", ROLE_MEMBER, "redact", "see [regex removed] now", "regex"},
    /* personal data */
    {"{\"rules\":[{\"kind\":\"pii\",\"detect\":[\"email\"],\"action\":\"redact\"}]}",
     "mail ana.b@example.org please", ROLE_MEMBER, "redact", "mail [email removed] please",
     "email"},
    {"{\"rules\":[{\"kind\":\"pii\",\"detect\":[\"card\"],\"action\":\"redact\"}]}",
     "card 4111 1111 1111 1111 ok", ROLE_MEMBER, "redact", "card [card removed] ok", "card"},
    {"{\"rules\":[{\"kind\":\"pii\",\"detect\":[\"card\"],\"action\":\"redact\"}]}",
     "not a card 4111 1111 1111 1112", ROLE_MEMBER, "allow", NULL, NULL},
    {"{\"rules\":[{\"kind\":\"pii\",\"detect\":[\"iban\"],\"action\":\"redact\"}]}",
     "IBAN DE89 3704 0044 0532 0130 00 thanks", ROLE_MEMBER, "redact", "IBAN [iban removed] thanks",
     "iban"},
    {"{\"rules\":[{\"kind\":\"pii\",\"detect\":[\"iban\"],\"action\":\"redact\"}]}",
     "DE89 3704 0044 0532 0130 01", ROLE_MEMBER, "allow", NULL, NULL},
    {"{\"rules\":[{\"kind\":\"pii\",\"detect\":[\"phone\"],\"action\":\"redact\"}]}",
     "call +49 151 2345 6789 today", ROLE_MEMBER, "redact", "call [phone removed] today", "phone"},
    {"{\"rules\":[{\"kind\":\"pii\",\"detect\":[\"phone\"],\"action\":\"redact\"}]}",
     "in 2024 we had 120 people", ROLE_MEMBER, "allow", NULL, NULL},
    /* links */
    {"{\"rules\":[{\"kind\":\"links\",\"action\":\"reject\"}]}", "look at https://evil.example/x",
     ROLE_MEMBER, "reject", NULL, "link"},
    {"{\"rules\":[{\"kind\":\"links\",\"allow\":[\"parley.example\"],\"action\":\"reject\"}]}",
     "docs at https://docs.parley.example/a and www.parley.example", ROLE_MEMBER, "allow", NULL,
     NULL},
    {"{\"rules\":[{\"kind\":\"links\",\"allow\":[\"parley.example\"],\"action\":\"reject\"}]}",
     "see https://notparley.example", ROLE_MEMBER, "reject", NULL, "link"},
    /* limits */
    {"{\"rules\":[{\"kind\":\"max_length\",\"max\":5,\"action\":\"reject\"}]}",
     "\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4", ROLE_MEMBER, "allow", NULL, NULL},
    {"{\"rules\":[{\"kind\":\"max_length\",\"max\":5,\"action\":\"reject\"}]}", "abcdef",
     ROLE_MEMBER, "reject", NULL, "max_length"},
    {"{\"rules\":[{\"kind\":\"max_mentions\",\"max\":2,\"action\":\"hold\"}]}",
     "@ann @bob @cy hello", ROLE_MEMBER, "hold", NULL, "max_mentions"},
    /* precedence: reject beats mask; the mask is not applied to a rejected text */
    {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"darn\"],\"action\":\"mask\"},"
     "{\"kind\":\"words\",\"terms\":[\"heck\"],\"action\":\"reject\"}]}",
     "darn heck", ROLE_MEMBER, "reject", NULL, "words"},
    {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"darn\"],\"action\":\"mask\"},"
     "{\"kind\":\"pii\",\"detect\":[\"email\"],\"action\":\"shadow\"}]}",
     "darn a@b.io", ROLE_MEMBER, "shadow", "**** a@b.io", "words"},
    /* exemptions */
    {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"darn\"],\"action\":\"reject\",\"exempt\":["
     "\"admin\"]}]}",
     "darn", ROLE_ADMIN, "allow", NULL, NULL},
    {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"darn\"],\"action\":\"reject\",\"exempt\":["
     "\"admin\"]}]}",
     "darn", ROLE_AVATAR, "reject", NULL, "words"},
};

static void table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct gl_set *s = compile(cases[i].rules);
        struct gl_ctx ctx = {.role = cases[i].role, .since_last_ms = -1};
        struct gl_verdict v;
        assert_int_equal(gl_eval(s, cases[i].text, strlen(cases[i].text), &ctx, &v), 0);
        const char *got = gl_action_name(v.action);
        if (strcmp(got, cases[i].action))
            fail_msg("case %zu (%s): action %s, want %s", i, cases[i].text, got, cases[i].action);
        if (cases[i].rewritten) {
            if (!v.text || strcmp(v.text, cases[i].rewritten))
                fail_msg("case %zu: text \"%s\", want \"%s\"", i, v.text ? v.text : "(unchanged)",
                         cases[i].rewritten);
        } else if (v.text) {
            fail_msg("case %zu: rewritten to \"%s\", want unchanged", i, v.text);
        }
        if (cases[i].kind) {
            assert_true(v.nhits > 0);
            assert_string_equal(v.hits[0].kind, cases[i].kind);
        } else {
            assert_int_equal(v.nhits, 0);
        }
        gl_verdict_free(&v);
        gl_free(s);
    }
}

static void all_hits_are_recorded(void **state)
{
    (void)state;
    struct gl_set *s = compile("{\"rules\":[{\"id\":\"w\",\"kind\":\"words\",\"terms\":[\"darn\","
                               "\"heck\"],\"action\":\"mask\"},{\"id\":\"p\",\"kind\":\"pii\","
                               "\"detect\":[\"email\"],\"action\":\"flag\"}]}");
    struct gl_ctx ctx = {.role = ROLE_MEMBER, .since_last_ms = -1};
    struct gl_verdict v;
    const char *t = "darn, heck: x@y.example";
    gl_eval(s, t, strlen(t), &ctx, &v);
    assert_int_equal(v.nhits, 3);
    assert_string_equal(v.hits[0].rule_id, "w");
    assert_string_equal(v.hits[2].rule_id, "p");
    assert_string_equal(gl_action_name(v.action), "mask");
    assert_string_equal(v.text, "****, ****: x@y.example");
    gl_verdict_free(&v);
    gl_free(s);
}

static void rate_and_slow_mode_use_the_context(void **state)
{
    (void)state;
    struct gl_set *s = compile("{\"rules\":[{\"kind\":\"rate\",\"max\":3,\"action\":\"reject\"},"
                               "{\"kind\":\"slow_mode\",\"max\":10,\"action\":\"reject\"},"
                               "{\"kind\":\"rate\",\"max\":10,\"action\":\"flag\"},"
                               "{\"kind\":\"rate\",\"max\":3,\"action\":\"hold\"}]}");
    /* two distinct limits: two buckets, in rule order; rules of one limit share one */
    int32_t rates[GL_MAX_RATES];
    assert_int_equal(gl_rates(s, rates), 2);
    assert_int_equal(rates[0], 3);
    assert_int_equal(rates[1], 10);
    assert_int_equal(gl_slow_max(s), 10);
    struct gl_verdict v;
    /* 2 tokens of 3 taken, 9 of 10: one is still in each bucket (no hit) */
    uint32_t some[GL_MAX_RATES] = {2000, 9000};
    struct gl_ctx ok = {.role = ROLE_MEMBER, .since_last_ms = 11000, .taken_milli = some};
    gl_eval(s, "hi", 2, &ok, &v);
    assert_string_equal(gl_action_name(v.action), "allow");
    assert_int_equal(v.nhits, 0);
    /* 2.001 taken: less than one token left in the 3-bucket (both its rules hit) */
    uint32_t three[GL_MAX_RATES] = {2001, 9000};
    struct gl_ctx fast = {.role = ROLE_MEMBER, .since_last_ms = 11000, .taken_milli = three};
    gl_eval(s, "hi", 2, &fast, &v);
    assert_int_equal(v.nhits, 2);
    assert_string_equal(v.hits[0].kind, "rate");
    assert_string_equal(gl_action_name(v.action), "reject");
    /* the 10-bucket empty too: the flag rule hits as well */
    uint32_t both[GL_MAX_RATES] = {0, 9500};
    struct gl_ctx flood = {.role = ROLE_MEMBER, .since_last_ms = 11000, .taken_milli = both};
    gl_eval(s, "hi", 2, &flood, &v);
    assert_int_equal(v.nhits, 1);
    assert_string_equal(gl_action_name(v.action), "flag");
    /* no buckets known (an edit, a dry run): rate rules do not apply */
    struct gl_ctx none = {.role = ROLE_MEMBER, .since_last_ms = -1};
    gl_eval(s, "hi", 2, &none, &v);
    assert_int_equal(v.nhits, 0);
    struct gl_ctx slow = {.role = ROLE_MEMBER, .since_last_ms = 4000, .taken_milli = some};
    gl_eval(s, "hi", 2, &slow, &v);
    assert_string_equal(v.hits[0].kind, "slow_mode");
    gl_free(s);
    /* more different limits than buckets: refused at the rule that is one too many */
    char big[2048];
    int n = snprintf(big, sizeof big, "{\"rules\":[");
    for (int i = 0; i <= GL_MAX_RATES; i++)
        n += snprintf(big + n, sizeof big - (size_t)n,
                      "%s{\"kind\":\"rate\",\"max\":%d,\"action\":\"flag\"}", i ? "," : "", i + 1);
    snprintf(big + n, sizeof big - (size_t)n, "]}");
    struct gl_error err;
    assert_null(gl_compile(big, strlen(big), &err));
    assert_int_equal(err.rule, GL_MAX_RATES);
    assert_non_null(strstr(err.message, "different limits"));
}

static void catastrophic_patterns_do_not_stall(void **state)
{
    (void)state;
    struct gl_set *s = compile("{\"rules\":[{\"kind\":\"regex\",\"pattern\":\"(a+)+$\","
                               "\"action\":\"flag\"}]}");
    char text[4096];
    memset(text, 'a', sizeof text - 2);
    text[sizeof text - 2] = 'b';
    text[sizeof text - 1] = 0;
    struct gl_ctx ctx = {.role = ROLE_MEMBER, .since_last_ms = -1};
    struct gl_verdict v;
    assert_int_equal(gl_eval(s, text, strlen(text), &ctx, &v), 0);
    /* Bounded: the limit is hit, and that counts against the message. */
    assert_true(v.nhits >= 1);
    assert_string_equal(v.hits[0].kind, "regex_limit");
    gl_verdict_free(&v);
    gl_free(s);
}

static void bad_rule_sets_are_refused(void **state)
{
    (void)state;
    struct {
        const char *json;
        int rule;
        const char *has;
    } bad[] = {
        {"[]", -1, "object"},
        {"{\"rules\":{}}", -1, "array"},
        {"{\"rules\":[],\"x\":1}", -1, "unknown"},
        {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"a\"],\"action\":\"nuke\"}]}", 0, "action"},
        {"{\"rules\":[{\"kind\":\"words\",\"terms\":[],\"action\":\"mask\"}]}", 0, "terms"},
        {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"a\"],\"action\":\"mask\"},"
         "{\"kind\":\"regex\",\"pattern\":\"(unclosed\",\"action\":\"flag\"}]}",
         1, "pattern"},
        {"{\"rules\":[{\"kind\":\"max_length\",\"max\":10,\"action\":\"mask\"}]}", 0, "needs"},
        {"{\"rules\":[{\"kind\":\"pii\",\"detect\":[\"dna\"],\"action\":\"redact\"}]}", 0,
         "detect"},
        {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"a\"],\"action\":\"mask\",\"exempt\":["
         "\"king\"]}]}",
         0, "exempt"},
        {"{\"rules\":[{\"kind\":\"links\",\"allow\":[\"not a domain\"],\"action\":\"reject\"}]}", 0,
         "allow"},
        {"{\"rules\":[{\"kind\":\"words\",\"terms\":[\"a\"],\"action\":\"mask\",\"colour\":1}]}", 0,
         "unknown"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct gl_error e;
        struct gl_set *s = gl_compile(bad[i].json, strlen(bad[i].json), &e);
        if (s) fail_msg("case %zu accepted: %s", i, bad[i].json);
        assert_int_equal(e.rule, bad[i].rule);
        if (!strstr(e.message, bad[i].has))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, e.message, bad[i].has);
    }
    /* A bad regex names the offset PCRE2 found. */
    const char *re = "{\"rules\":[{\"kind\":\"regex\",\"pattern\":\"ab[c\",\"action\":\"flag\"}]}";
    struct gl_error e;
    assert_null(gl_compile(re, strlen(re), &e));
    assert_int_equal(e.offset, 4);
    /* Too many terms: a limit, not an allocation failure. */
    size_t cap = 400000, n = 0;
    char *big = malloc(cap);
    n += (size_t)snprintf(big + n, cap - n,
                          "{\"rules\":[{\"kind\":\"words\",\"action\":\"mask\",\"terms\":[");
    for (int i = 0; i < GL_MAX_TERMS + 1; i++)
        n += (size_t)snprintf(big + n, cap - n, "%s\"t%d\"", i ? "," : "", i);
    n += (size_t)snprintf(big + n, cap - n, "]}]}");
    assert_null(gl_compile(big, n, &e));
    assert_non_null(strstr(e.message, "too many terms"));
    free(big);
}

static void normalisation(void **state)
{
    (void)state;
    char *n = gl_normalise("Stra\xc3\x9f"
                           "e \xef\xbc\xa1",
                           strlen("Stra\xc3\x9f"
                                  "e \xef\xbc\xa1"),
                           false);
    assert_string_equal(n, "strasse a");
    mem_free(n);
    n = gl_normalise("h3ll0 w0rld", 11, true);
    assert_string_equal(n, "hello world");
    mem_free(n);
    assert_null(gl_normalise("\xff", 1, false));
}

/* ---- allocation failures ---------------------------------------------- */

/* A rule set that reaches every allocation of compiling: ids, words (plain
 * and leetspeak, enough terms and bytes to grow the automaton's node, edge
 * and term arrays), a term whose normalisation outgrows its first buffer, a
 * regular expression, detectors, links with allowed domains, limits. */
static char *sweep_rules(void)
{
    size_t cap = 16384, n = 0;
    char *j = malloc(cap);
    n += (size_t)snprintf(j + n, cap - n,
                          "{\"rules\":[{\"id\":\"lang\",\"kind\":\"words\",\"action\":\"mask\","
                          "\"terms\":[\"darn\",\"\xef\xb7\xba\xef\xb7\xba\"");
    for (int i = 0; i < 90; i++)
        n += (size_t)snprintf(j + n, cap - n, ",\"w%02dxyz%c\"", i, 'a' + i % 26);
    n += (size_t)snprintf(
        j + n, cap - n,
        "]},{\"id\":\"leet\",\"kind\":\"words\",\"action\":\"flag\",\"leet\":true,"
        "\"terms\":[\"heck\",\"gosh darn it\"]},"
        "{\"kind\":\"regex\",\"pattern\":\"ticket-[0-9]+\",\"action\":\"redact\"},"
        "{\"id\":\"pii\",\"kind\":\"pii\",\"detect\":[\"email\",\"card\"],\"action\":\"redact\"},"
        "{\"id\":\"links\",\"kind\":\"links\",\"allow\":[\"Client.example\",\"docs.example\"],"
        "\"action\":\"flag\"},"
        "{\"id\":\"len\",\"kind\":\"max_length\",\"max\":5000,\"action\":\"reject\"},"
        "{\"id\":\"rate\",\"kind\":\"rate\",\"max\":20,\"action\":\"reject\"}]}");
    return j;
}

/* A text with more rewrites than the first edit buffer holds and characters
 * whose normalisation outgrows the first normalisation buffer. */
static const char *SWEEP_TEXT =
    "darn darn darn darn darn darn darn darn darn darn h3ck, see TICKET-7 and "
    "me@mail.example, https://evil.example/x and https://docs.example/ok "
    "\xef\xb7\xba\xef\xb7\xba\xef\xb7\xba\xef\xb7\xba\xef\xb7\xba\xef\xb7\xba\xef\xb7\xba"
    "\xef\xb7\xba \xef\xb7\xba\xef\xb7\xba w07xyzh";

static void verdicts_equal(const struct gl_verdict *a, const struct gl_verdict *b, long n)
{
    if (a->action != b->action || a->nhits != b->nhits || a->len != b->len ||
        (a->text == NULL) != (b->text == NULL) || (a->text && strcmp(a->text, b->text)))
        fail_msg("allocation %ld failed and the verdict changed: action %s/%s hits %d/%d", n,
                 gl_action_name(a->action), gl_action_name(b->action), a->nhits, b->nhits);
    for (int i = 0; i < a->nhits; i++)
        if (a->hits[i].rule != b->hits[i].rule || a->hits[i].action != b->hits[i].action ||
            !a->hits[i].rule_id || strcmp(a->hits[i].rule_id, b->hits[i].rule_id) ||
            a->hits[i].start != b->hits[i].start || a->hits[i].end != b->hits[i].end)
            fail_msg("allocation %ld failed and hit %d changed", n, i);
}

/* Every allocation of compiling the set fails in turn: each is refused as
 * out of memory (not as a bad rule set, not crashed), and a set compiled
 * when the failure came too late evaluates as the reference does. Leaks
 * are the ASan build's to find (PARLEY_SANITIZE=ON). The sweep ends after
 * 50 runs in a row that no failure reached. */
static void compile_survives_every_allocation_failure(void **state)
{
    (void)state;
    gl_use_jit(false); /* JIT compiles cost ms; the paths through mem.h are the same */
    char *j = sweep_rules();
    struct gl_error e;
    struct gl_set *ref = gl_compile(j, strlen(j), &e);
    if (!ref) fail_msg("reference: %s (rule %d)", e.message, e.rule);
    struct gl_verdict want, got;
    struct gl_ctx ctx = {.role = ROLE_MEMBER, .since_last_ms = -1};
    assert_int_equal(gl_eval(ref, SWEEP_TEXT, strlen(SWEEP_TEXT), &ctx, &want), 0);
    assert_int_equal(want.action, GL_REDACT);
    long failed = 0, streak = 0, n;
    for (n = 1; streak < 50; n++) {
        mem_fail_after(n);
        struct gl_set *s = gl_compile(j, strlen(j), &e);
        mem_fail_after(0);
        if (!s) {
            if (strcmp(e.message, "out of memory"))
                fail_msg("allocation %ld: refused as \"%s\" (rule %d)", n, e.message, e.rule);
            failed++;
            streak = 0;
            continue;
        }
        streak++;
        assert_int_equal(gl_eval(s, SWEEP_TEXT, strlen(SWEEP_TEXT), &ctx, &got), 0);
        verdicts_equal(&got, &want, n);
        gl_verdict_free(&got);
        gl_free(s);
    }
    /* the sweep went past the last allocation: every one before failed */
    assert_int_equal(failed, n - 51);
    assert_true(failed > 300);
    gl_verdict_free(&want);
    gl_free(ref);
    free(j);
    gl_use_jit(true);
}

/* Every allocation of evaluating fails in turn: each is -ENOMEM with no
 * text left to free (the caller refuses the message), never a verdict that
 * lets the text through with a span unmasked. */
static void eval_survives_every_allocation_failure(void **state)
{
    (void)state;
    gl_use_jit(false);
    char *j = sweep_rules();
    struct gl_error e;
    struct gl_set *s = gl_compile(j, strlen(j), &e);
    assert_non_null(s);
    struct gl_verdict want, got;
    struct gl_ctx ctx = {.role = ROLE_MEMBER, .since_last_ms = -1};
    assert_int_equal(gl_eval(s, SWEEP_TEXT, strlen(SWEEP_TEXT), &ctx, &want), 0);
    long failed = 0, streak = 0, n;
    for (n = 1; streak < 50; n++) {
        mem_fail_after(n);
        int rc = gl_eval(s, SWEEP_TEXT, strlen(SWEEP_TEXT), &ctx, &got);
        mem_fail_after(0);
        if (rc) {
            assert_int_equal(rc, -ENOMEM);
            assert_null(got.text);
            failed++;
            streak = 0;
            continue;
        }
        streak++;
        verdicts_equal(&got, &want, n);
        gl_verdict_free(&got);
    }
    assert_int_equal(failed, n - 51);
    assert_true(failed >= 5); /* normalisation (twice: leet), growth, edits, rewrite */
    /* invalid UTF-8 stays distinct from a failure */
    assert_int_equal(gl_eval(s, "\xff", 1, &ctx, &got), -EILSEQ);
    /* the normalisation exposed to tests fails cleanly too */
    mem_fail_after(1);
    assert_null(gl_normalise("darn", 4, false));
    mem_fail_after(0);
    gl_verdict_free(&want);
    gl_free(s);
    free(j);
    gl_use_jit(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table),
        cmocka_unit_test(all_hits_are_recorded),
        cmocka_unit_test(rate_and_slow_mode_use_the_context),
        cmocka_unit_test(catastrophic_patterns_do_not_stall),
        cmocka_unit_test(bad_rule_sets_are_refused),
        cmocka_unit_test(normalisation),
        cmocka_unit_test(compile_survives_every_allocation_failure),
        cmocka_unit_test(eval_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
