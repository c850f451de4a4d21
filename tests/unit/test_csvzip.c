/* Unit tests of the export's encoders: CSV cells (quoting, formula
 * defusing, value kinds) and the streamed ZIP writer (structure, CRCs,
 * offsets, and refusal of misuse). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "csv.h"
#include "mem.h"
#include "zipw.h"

static void cell_is(const char *in, const char *want)
{
    struct sbuf o = {0};
    csv_text(&o, in, strlen(in));
    assert_false(o.bad);
    assert_string_equal(o.b ? o.b : "", want);
    mem_free(o.b);
}

static void test_cells(void **st)
{
    (void)st;
    cell_is("plain", "plain");
    cell_is("", "");
    cell_is("a,b", "\"a,b\"");
    cell_is("say \"hi\"", "\"say \"\"hi\"\"\"");
    cell_is("\"", "\"\"\"\"");
    cell_is("line1\nline2", "\"line1\nline2\"");
    cell_is("cr\rhere", "\"cr\rhere\"");
    /* what a spreadsheet would run as a formula */
    cell_is("=SUM(A1)", "\"'=SUM(A1)\"");
    cell_is("+1", "\"'+1\"");
    cell_is("-2", "\"'-2\"");
    cell_is("@cmd", "\"'@cmd\"");
    cell_is("\tx", "\"'\tx\"");
    cell_is("=\"q\",", "\"'=\"\"q\"\",\"");
    /* only at the start */
    cell_is("a=b", "a=b");
    cell_is("x-1", "x-1");
}

static void test_rows(void **st)
{
    (void)st;
    cJSON *o = cJSON_Parse("{\"seq\": 12345678901, \"body\": \"-x\", \"n\": null, \"ok\": true,"
                           " \"neg\": -3, \"f\": 1.5, \"rules\": [\"a\", \"b\"]}");
    assert_non_null(o);
    struct sbuf b = {0};
    csv_header(&b, o);
    csv_row(&b, o);
    assert_false(b.bad);
    assert_string_equal(b.b, "seq,body,n,ok,neg,f,rules\r\n"
                             "12345678901,\"'-x\",,true,-3,1.5,\"[\"\"a\"\",\"\"b\"\"]\"\r\n");
    mem_free(b.b);
    cJSON_Delete(o);
}

#define U16(p) ((unsigned)(p)[0] | (unsigned)(p)[1] << 8)
#define U32(p) (U16(p) | (uint32_t)U16((p) + 2) << 16)

static void test_zip(void **st)
{
    (void)st;
    struct zipw z;
    struct sbuf o = {0};
    zipw_init(&z, 1764892800); /* 2025-12-05 00:00:00 UTC */
    zipw_begin(&z, &o, "a.csv");
    zipw_data(&z, &o, "hello,", 6);
    zipw_data(&z, &o, "world\r\n", 7);
    zipw_end(&z, &o);
    zipw_begin(&z, &o, "empty.csv");
    zipw_end(&z, &o);
    zipw_finish(&z, &o);
    assert_false(z.bad);
    assert_false(o.bad);
    const unsigned char *u = (const unsigned char *)o.b;
    assert_int_equal(z.off, o.n);
    const unsigned char *e = u + o.n - 22;
    assert_int_equal(U32(e), 0x06054b50);
    assert_int_equal(U16(e + 10), 2);
    const unsigned char *cd = u + U32(e + 16);
    assert_int_equal(U32(e + 12), (u + o.n - 22) - cd); /* the directory's size */
    /* entry 1: name, sizes, CRC, and its local header with the data after */
    assert_int_equal(U32(cd), 0x02014b50);
    assert_int_equal(U16(cd + 8), 0x0808);
    assert_int_equal(U16(cd + 12), 0);                         /* 00:00:00 */
    assert_int_equal(U16(cd + 14), (45 << 9) | (12 << 5) | 5); /* 2025-12-05 */
    assert_int_equal(U32(cd + 24), 13);
    assert_int_equal(U32(cd + 20), 13);
    assert_int_equal(U32(cd + 16), crc32(0L, (const Bytef *)"hello,world\r\n", 13));
    assert_memory_equal(cd + 46, "a.csv", 5);
    const unsigned char *lh = u + U32(cd + 42);
    assert_int_equal(U32(lh), 0x04034b50);
    assert_memory_equal(lh + 30, "a.csv", 5);
    assert_memory_equal(lh + 35, "hello,world\r\n", 13);
    const unsigned char *dd = lh + 35 + 13;
    assert_int_equal(U32(dd), 0x08074b50);
    assert_int_equal(U32(dd + 4), U32(cd + 16));
    /* entry 2: empty, CRC 0 */
    const unsigned char *cd2 = cd + 46 + 5;
    assert_int_equal(U32(cd2), 0x02014b50);
    assert_int_equal(U32(cd2 + 24), 0);
    assert_int_equal(U32(cd2 + 16), 0);
    assert_memory_equal(cd2 + 46, "empty.csv", 9);
    assert_int_equal(U32(u + U32(cd2 + 42)), 0x04034b50);
    mem_free(o.b);
}

static void test_zip_misuse(void **st)
{
    (void)st;
    struct zipw z;
    struct sbuf o = {0};
    zipw_init(&z, 0);
    zipw_data(&z, &o, "x", 1); /* no entry open */
    assert_true(z.bad);
    zipw_init(&z, 0);
    zipw_begin(&z, &o, "a-name-that-is-far-too-long-for-an-entry.csv");
    assert_true(z.bad);
    zipw_init(&z, 0);
    zipw_begin(&z, &o, "a");
    zipw_finish(&z, &o); /* an entry still open */
    assert_true(z.bad);
    zipw_init(&z, 0);
    for (int i = 0; i <= ZIPW_MAX_FILES; i++) {
        zipw_begin(&z, &o, "f");
        zipw_end(&z, &o);
    }
    assert_true(z.bad);
    mem_free(o.b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cells),
        cmocka_unit_test(test_rows),
        cmocka_unit_test(test_zip),
        cmocka_unit_test(test_zip_misuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
