/* Unit tests of the shared WebSocket client part (wsclient/): the examples
 * of RFC 6455 (the accept key of 1.3, the masked "Hello" of 5.7), the three
 * length encodings both ways, and answers to the upgrade that must not be
 * taken for an accepted one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "wsclient.h"

static const char RFC_KEY[] = "dGhlIHNhbXBsZSBub25jZQ==";

static void key_is_base64_of_the_nonce(void **state)
{
    (void)state;
    char key[WSCL_KEY_LEN + 1];
    wscl_key((const unsigned char *)"the sample nonce", key); /* RFC 6455 1.3 */
    assert_string_equal(key, RFC_KEY);
}

static void request_names_key_protocol_and_extra_headers(void **state)
{
    (void)state;
    char buf[512];
    struct wscl_upgrade u = {"/", "127.0.0.1:80", RFC_KEY, "parley.v1", "Origin: http://x\r\n"};
    int n = wscl_request(buf, sizeof buf, &u);
    assert_int_equal(n, (int)strlen(buf));
    assert_non_null(strstr(buf, "GET / HTTP/1.1\r\n"));
    assert_non_null(strstr(buf, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
    assert_non_null(strstr(buf, "\r\nSec-WebSocket-Protocol: parley.v1\r\n"));
    assert_non_null(strstr(buf, "\r\nOrigin: http://x\r\n\r\n"));
    u.protocol = u.extra = NULL;
    n = wscl_request(buf, sizeof buf, &u);
    assert_null(strstr(buf, "Protocol"));
    assert_int_equal(n, (int)strlen(buf));
    assert_int_equal(wscl_request(buf, 40, &u), -1); /* does not fit */
}

static void response_accepted_only_with_the_right_accept(void **state)
{
    (void)state;
    const char ok[] =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nsec-websocket-accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        "\r\n\x81\x02hi";
    int st;
    bool acc;
    size_t hl = wscl_response(ok, sizeof ok - 1, RFC_KEY, &st, &acc);
    assert_int_equal(hl, sizeof ok - 1 - 4); /* the frame after it is not part of it */
    assert_int_equal(st, 101);
    assert_true(acc);
    /* incomplete: not yet an answer */
    assert_int_equal(wscl_response(ok, 40, RFC_KEY, &st, &acc), 0);
    assert_false(acc);
    /* another key's accept, or none */
    const char wrong[] = "HTTP/1.1 101 Switching Protocols\r\n"
                         "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOp=\r\n\r\n";
    assert_int_equal(wscl_response(wrong, sizeof wrong - 1, RFC_KEY, &st, &acc), sizeof wrong - 1);
    assert_int_equal(st, 101);
    assert_false(acc);
    const char none[] = "HTTP/1.1 101 Switching Protocols\r\nX-Sec-WebSocket-Accept: "
                        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
    wscl_response(none, sizeof none - 1, RFC_KEY, &st, &acc);
    assert_false(acc);
    /* refused: the status for the caller, never accepted */
    const char refused[] = "HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n";
    assert_int_equal(wscl_response(refused, sizeof refused - 1, RFC_KEY, &st, &acc),
                     sizeof refused - 1);
    assert_int_equal(st, 403);
    assert_false(acc);
    const char junk[] = "SSH-2.0-OpenSSH\r\n\r\n";
    wscl_response(junk, sizeof junk - 1, RFC_KEY, &st, &acc);
    assert_int_equal(st, 0);
    assert_false(acc);
}

static void masked_hello_as_in_the_rfc(void **state)
{
    (void)state;
    /* RFC 6455 5.7: a single-frame masked text message "Hello" */
    const unsigned char want[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    unsigned char out[32];
    assert_int_equal(wscl_frame_size(5), sizeof want);
    assert_int_equal(wscl_frame(out, 0x81, "Hello", 5, 0x37fa213d), sizeof want);
    assert_memory_equal(out, want, sizeof want);
}

/* A server frame (unmasked) of n bytes, for the parser. */
static size_t server_frame(unsigned char *out, unsigned first, const unsigned char *p, size_t n)
{
    size_t hl = 0;
    out[hl++] = (unsigned char)first;
    if (n < 126) {
        out[hl++] = (unsigned char)n;
    } else if (n < 65536) {
        out[hl++] = 126;
        out[hl++] = (unsigned char)(n >> 8);
        out[hl++] = (unsigned char)n;
    } else {
        out[hl++] = 127;
        for (int i = 7; i >= 0; i--)
            out[hl++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    if (n) memcpy(out + hl, p, n); /* p may be NULL for an empty payload */
    return hl + n;
}

static void lengths_both_ways(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, 125, 126, 127, 65535, 65536, 70000};
    unsigned char *p = malloc(70000), *f = malloc(70000 + 14), *un = malloc(70000);
    for (size_t i = 0; i < 70000; i++)
        p[i] = (unsigned char)(i * 7 + 3);
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        /* ours: header length by size class, payload unmasks to the input */
        size_t k = wscl_frame(f, 0x82, p, n, 0xa1b2c3d4);
        assert_int_equal(k, wscl_frame_size(n));
        assert_int_equal(k - n, n < 126 ? 6 : n < 65536 ? 8 : 14);
        const unsigned char *m = f + (k - n - 4);
        for (size_t i = 0; i < n; i++)
            un[i] = f[k - n + i] ^ m[i & 3];
        assert_memory_equal(un, p, n);
        /* theirs: whole, and every proper prefix is incomplete */
        size_t fs = server_frame(f, 0x81, p, n);
        struct wscl_in in;
        assert_int_equal(wscl_parse(f, fs, &in), 1);
        assert_int_equal(in.opcode, 1);
        assert_true(in.fin);
        assert_int_equal(in.len, n);
        assert_int_equal(in.size, fs);
        assert_memory_equal(in.payload, p, n);
        for (size_t cut = 0; cut < fs; cut += (cut < 16 ? 1 : 997))
            assert_int_equal(wscl_parse(f, cut, &in), 0);
    }
    free(p);
    free(f);
    free(un);
}

static void fragments_close_codes_and_bad_frames(void **state)
{
    (void)state;
    unsigned char f[32];
    struct wscl_in in;
    server_frame(f, 0x01, (const unsigned char *)"ab", 2); /* first fragment */
    assert_int_equal(wscl_parse(f, 4, &in), 1);
    assert_false(in.fin);
    assert_int_equal(in.opcode, 1);
    server_frame(f, 0x88, (const unsigned char *)"\x03\xe9why", 5);
    assert_int_equal(wscl_parse(f, 7, &in), 1);
    assert_int_equal(in.opcode, 8);
    assert_int_equal(wscl_close_code(&in), 1001);
    server_frame(f, 0x88, NULL, 0);
    assert_int_equal(wscl_parse(f, 2, &in), 1);
    assert_int_equal(wscl_close_code(&in), 1005);
    /* a masked server frame, a length with the top bit set */
    const unsigned char masked[] = {0x81, 0x81, 1, 2, 3, 4, 'x'};
    assert_int_equal(wscl_parse(masked, sizeof masked, &in), -1);
    const unsigned char huge[] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1};
    assert_int_equal(wscl_parse(huge, sizeof huge, &in), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_is_base64_of_the_nonce),
        cmocka_unit_test(request_names_key_protocol_and_extra_headers),
        cmocka_unit_test(response_accepted_only_with_the_right_accept),
        cmocka_unit_test(masked_hello_as_in_the_rfc),
        cmocka_unit_test(lengths_both_ways),
        cmocka_unit_test(fragments_close_codes_and_bad_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
