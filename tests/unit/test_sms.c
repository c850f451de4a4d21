/* Unit tests of SMS segment counting: GSM 03.38 (basic alphabet, the
 * extension table counted twice and never split across parts) against
 * UCS-2 (UTF-16 units, surrogate pairs never split), at the 160/153 and
 * 70/67 edges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "sms.h"

/* n copies of s (two buffers in turn: two calls may feed one printf). */
static const char *rep(const char *s, int n)
{
    static char bufs[2][4096];
    static int turn;
    char *b = bufs[turn ^= 1];
    b[0] = 0;
    for (int i = 0; i < n; i++)
        strcat(b, s);
    return b;
}

static void count(const char *text, bool ucs2, int units, int segments)
{
    struct sms_count c;
    assert_int_equal(sms_count(text, &c), 0);
    assert_int_equal(c.ucs2, ucs2);
    assert_int_equal(c.units, units);
    assert_int_equal(c.segments, segments);
}

static void gsm7(void **state)
{
    (void)state;
    count("", false, 0, 1);
    count("Hello", false, 5, 1);
    /* German and Nordic letters are in the basic alphabet. */
    count("Grüße aus Köln, Åbo och Ørsted: ÄÖÜäöüßÉé", false, 41, 1);
    count(rep("a", 160), false, 160, 1);
    count(rep("a", 161), false, 161, 2);
    count(rep("a", 306), false, 306, 2);
    count(rep("a", 307), false, 307, 3);
    /* The extension table takes an escape and a septet. */
    count("€", false, 2, 1);
    count("{[~]}|^\\", false, 16, 1);
    count(rep("€", 80), false, 160, 1);
    count(rep("€", 81), false, 162, 2);
}

static void gsm7_escape_not_split(void **state)
{
    (void)state;
    /* 152 + 2 + 152 = 306 septets: two parts by arithmetic (2 x 153),
     * but the euro's escape and septet may not straddle them: part one
     * holds the 152 a, part two the euro and 151 b, part three one b. */
    char b[1024];
    snprintf(b, sizeof b, "%s€%s", rep("a", 152), rep("b", 152));
    count(b, false, 306, 3);
}

static void ucs2(void **state)
{
    (void)state;
    /* Cyrillic, Chinese and the curly quotes are outside GSM-7. */
    count("Привет", true, 6, 1);
    count("„Hallo“", true, 7, 1);
    count(rep("文", 70), true, 70, 1);
    count(rep("文", 71), true, 71, 2);
    count(rep("文", 134), true, 134, 2);
    count(rep("文", 135), true, 135, 3);
    /* One character outside GSM-7 makes the whole text UCS-2. */
    char b[512];
    snprintf(b, sizeof b, "%s✓", rep("a", 69));
    count(b, true, 70, 1);
    snprintf(b, sizeof b, "%s✓", rep("a", 70));
    count(b, true, 71, 2);
    /* An emoji is a surrogate pair: two units, never split. */
    count("😀", true, 2, 1);
    snprintf(b, sizeof b, "%s😀", rep("a", 66));
    count(b, true, 68, 1); /* 68 units fit one message */
}

static void surrogate_not_split(void **state)
{
    (void)state;
    char b[512];
    /* 66 units and a pair would make part one 68 > 67: the pair moves. */
    snprintf(b, sizeof b, "%s😀%s", rep("a", 66), rep("b", 10));
    count(b, true, 78, 2);
    snprintf(b, sizeof b, "%s😀%s", rep("a", 66), rep("b", 66));
    /* part one 66, part two pair + 65, part three 1 */
    count(b, true, 134, 3);
}

static void invalid_utf8(void **state)
{
    (void)state;
    struct sms_count c;
    assert_int_equal(sms_count("\xc3\x28", &c), -1);
    assert_int_equal(sms_count("\xed\xa0\x80", &c), -1); /* a surrogate */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(gsm7),         cmocka_unit_test(gsm7_escape_not_split),
        cmocka_unit_test(ucs2),         cmocka_unit_test(surrogate_not_split),
        cmocka_unit_test(invalid_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
