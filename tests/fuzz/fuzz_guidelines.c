/*
 * libFuzzer target for the guidelines engine. The first byte chooses the
 * mode: even, the input after it is a message evaluated against a fixed rule
 * set with every rule kind; odd, it is a rule set to compile (and, if it
 * compiles, to evaluate a fixed text). Never a crash, a leak, undefined
 * behaviour or a verdict that breaks its own invariants.
 *
 *   cmake -B build-fuzz -DCMAKE_C_COMPILER=clang -DPARLEY_FUZZ=ON
 *   cmake --build build-fuzz --target fuzz_guidelines
 *   ./build-fuzz/tests/fuzz/fuzz_guidelines -max_total_time=60 tests/fuzz/corpus_guidelines
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "guidelines.h"

static const char rules[] =
    "{\"rules\":["
    "{\"kind\":\"words\",\"terms\":[\"darn\",\"heck\",\"over the moon\",\"\xc3\xa9t\xc3\xa9\"],"
    "\"action\":\"mask\"},"
    "{\"kind\":\"words\",\"terms\":[\"bad\"],\"action\":\"flag\",\"leet\":true,\"whole_words\":"
    "false},"
    "{\"kind\":\"regex\",\"pattern\":\"(a+)+b|x{2,}y\",\"action\":\"redact\"},"
    "{\"kind\":\"pii\",\"detect\":[\"email\",\"phone\",\"card\",\"iban\"],\"action\":\"redact\"},"
    "{\"kind\":\"links\",\"allow\":[\"parley.example\"],\"action\":\"hold\"},"
    "{\"kind\":\"max_length\",\"max\":2000,\"action\":\"reject\"},"
    "{\"kind\":\"max_mentions\",\"max\":3,\"action\":\"shadow\"}]}";

static struct gl_set *fixed;

static void check(const struct gl_set *s, const char *text, size_t len)
{
    struct gl_ctx ctx = {.role = 4, .since_last_ms = -1};
    struct gl_verdict v;
    if (gl_eval(s, text, len, &ctx, &v)) return; /* invalid UTF-8: refused */
    if (v.nhits < 0 || v.nhits > GL_MAX_HITS) abort();
    if (v.nhits == 0 && v.action != GL_ALLOW) abort();
    for (int i = 0; i < v.nhits; i++) {
        if (v.hits[i].end > len || v.hits[i].start > v.hits[i].end) abort();
        if (v.hits[i].action > v.action) abort(); /* the strictest decides */
    }
    /* A rewrite is NUL-terminated, no longer than placeholders allow, and
     * never made for a rejected text. A mask keeps the length; a redacted
     * span of at least one byte becomes "[<kind> removed]", at most 23
     * bytes, so many one- or two-byte redactions grow a text up to 23-fold
     * (the bound here was 3x + 64 until the fuzzer found 70 bytes that
     * rightly became 277: corpus_guidelines/many-short-redactions). */
    if (v.text && (v.text[v.len] || v.len > 23 * len || v.action == GL_REJECT)) abort();
    gl_verdict_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!size) return 0;
    if (!fixed) {
        struct gl_error e;
        fixed = gl_compile(rules, sizeof rules - 1, &e);
        if (!fixed) abort();
    }
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    if (data[0] % 2 == 0) {
        check(fixed, p, n);
        return 0;
    }
    struct gl_error e;
    struct gl_set *s = gl_compile(p, n, &e);
    if (!s) {
        if (strnlen(e.message, sizeof e.message) == sizeof e.message || !e.message[0]) abort();
        return 0;
    }
    static const char text[] =
        "Darn! mail a@b.example, see https://x.example and 4111 1111 1111 1111";
    check(s, text, sizeof text - 1);
    gl_free(s);
    return 0;
}
