/* Unit tests of the message the deliverer mails: RFC 2047 encoded words
 * (UTF-8, at most 75 characters, never splitting a character), and a MIME
 * multipart/alternative message with the headers a mail server expects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "mem.h"
#include "smtp.h"

/* Decodes the encoded words of a header value back to UTF-8. */
static void decode_words(const char *v, char *out, size_t cap)
{
    size_t n = 0;
    const char *p = v;
    while ((p = strstr(p, "=?UTF-8?B?"))) {
        p += 10;
        const char *end = strstr(p, "?=");
        assert_non_null(end);
        size_t bin = 0;
        assert_int_equal(sodium_base642bin((unsigned char *)out + n, cap - n - 1, p,
                                           (size_t)(end - p), NULL, &bin, NULL,
                                           sodium_base64_VARIANT_ORIGINAL),
                         0);
        n += bin;
        p = end + 2;
    }
    out[n] = 0;
}

static void header_words(void **state)
{
    (void)state;
    char *w = smtp_header_word("Plain subject");
    assert_string_equal(w, "Plain subject");
    mem_free(w);
    /* "=?" in plain text would be read as an encoded word: encode it. */
    w = smtp_header_word("a =?b?= c");
    assert_non_null(strstr(w, "=?UTF-8?B?"));
    mem_free(w);
    const char *de = "Carla lädt Sie zu „Müller & Söhne GmbH – Strategie 2030“ auf Parley ein 😀";
    w = smtp_header_word(de);
    char back[512];
    decode_words(w, back, sizeof back);
    assert_string_equal(back, de);
    /* Each word at most 75 characters, folded with CRLF SP, and each
     * word's bytes whole characters. */
    const char *p = w;
    int words = 0;
    while (*p) {
        const char *e = strstr(p, "\r\n ");
        size_t len = e ? (size_t)(e - p) : strlen(p);
        assert_true(len <= 75);
        char one[128], dec[128];
        snprintf(one, sizeof one, "%.*s", (int)len, p);
        decode_words(one, dec, sizeof dec);
        assert_true((dec[0] & 0xc0) != 0x80);
        words++;
        p += len + (e ? 3 : 0);
    }
    assert_true(words >= 2);
    mem_free(w);
}

static void message(void **state)
{
    (void)state;
    struct smtp_cfg c = {.from = "parley@mail.example",
                         .from_name = "Parley Einladungen – Acme",
                         .reply_to = "help@mail.example"};
    struct mail m = {.to = "ina@client.example",
                     .subject = "Einladung zu Müller",
                     .text = "Hallo Ina,\nline two\n",
                     .html = "<p>Hallo</p>",
                     .message_id = "<parley.17.1700000000@mail.example>",
                     .date = 1700000000};
    size_t len;
    char *msg = smtp_build(&c, &m, &len);
    assert_non_null(msg);
    assert_int_equal(strlen(msg), len);
    assert_non_null(strstr(msg, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
    assert_non_null(strstr(msg, "From: =?UTF-8?B?"));
    assert_non_null(strstr(msg, "<parley@mail.example>\r\n"));
    assert_non_null(strstr(msg, "To: <ina@client.example>\r\n"));
    assert_non_null(strstr(msg, "Reply-To: <help@mail.example>\r\n"));
    assert_non_null(strstr(msg, "Subject: =?UTF-8?B?"));
    assert_non_null(strstr(msg, "Message-ID: <parley.17.1700000000@mail.example>\r\n"));
    assert_non_null(strstr(msg, "MIME-Version: 1.0\r\n"));
    assert_non_null(strstr(msg, "Auto-Submitted: auto-generated\r\n"));
    const char *ct = strstr(msg, "Content-Type: multipart/alternative; boundary=\"");
    assert_non_null(ct);
    char boundary[64];
    assert_int_equal(
        sscanf(ct, "Content-Type: multipart/alternative; boundary=\"%63[^\"]", boundary), 1);
    char delim[160];
    snprintf(delim, sizeof delim, "\r\n--%s\r\nContent-Type: text/plain; charset=UTF-8", boundary);
    const char *tp = strstr(msg, delim);
    assert_non_null(tp);
    snprintf(delim, sizeof delim, "\r\n--%s\r\nContent-Type: text/html; charset=UTF-8", boundary);
    const char *hp = strstr(msg, delim);
    assert_true(hp > tp);
    snprintf(delim, sizeof delim, "\r\n--%s--\r\n", boundary);
    assert_non_null(strstr(hp, delim));
    /* The text part is base64 of the text with CRLF line ends. */
    const char *b = strstr(tp, "base64\r\n\r\n") + 10;
    const char *e = strstr(b, "\r\n");
    unsigned char dec[128];
    size_t n = 0;
    assert_int_equal(sodium_base642bin(dec, sizeof dec, b, (size_t)(e - b), NULL, &n, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    assert_int_equal(n, strlen("Hallo Ina,\r\nline two\r\n"));
    assert_memory_equal(dec, "Hallo Ina,\r\nline two\r\n", n);
    /* Every line ends in CRLF; no bare LF. */
    for (const char *q = msg; (q = strchr(q, '\n')); q++)
        assert_int_equal(q[-1], '\r');
    mem_free(msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(header_words),
        cmocka_unit_test(message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
