/* Unit tests of the statement registry (stmts.h): each table gets the base
 * where its rows start in the prepared set, the set holds the rows in
 * order, registering twice changes nothing, and a table that does not fit
 * is refused whole, so no later base shifts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "stmts.h"

static const struct db_stmt rows_a[3] = {
    {"a0", "SELECT 0", 0}, {"a1", "SELECT $1", 1}, {"a2", "SELECT $1, $2", 2}};
static const struct db_stmt rows_b[2] = {{"b0", "SELECT 'b0'", 0}, {"b1", "SELECT 'b1'", 0}};
static struct db_stmt rows_big[STMTS_MAX];

static int reset(void **state)
{
    (void)state;
    stmts_reset();
    return 0;
}

static void bases_follow_each_other(void **state)
{
    (void)state;
    struct stmts_table a = {"a", rows_a, 3, -1}, b = {"b", rows_b, 2, -1};
    assert_int_equal(stmts_register(&a), 0);
    assert_int_equal(stmts_register(&b), 0);
    assert_int_equal(a.base, 0);
    assert_int_equal(b.base, 3);
    int n = -1;
    const struct db_stmt *all = stmts_all(&n);
    assert_int_equal(n, 5);
    /* each module's statement i is where stmts_at says */
    for (int i = 0; i < 3; i++)
        assert_string_equal(all[stmts_at(&a, i)].name, rows_a[i].name);
    for (int i = 0; i < 2; i++)
        assert_string_equal(all[stmts_at(&b, i)].sql, rows_b[i].sql);
    assert_int_equal(all[stmts_at(&a, 2)].nparams, 2);
}

static void registering_twice_keeps_the_base(void **state)
{
    (void)state;
    struct stmts_table a = {"a", rows_a, 3, -1}, b = {"b", rows_b, 2, -1};
    assert_int_equal(stmts_register(&a), 0);
    assert_int_equal(stmts_register(&b), 0);
    assert_int_equal(stmts_register(&a), 0);
    assert_int_equal(a.base, 0);
    int n;
    stmts_all(&n);
    assert_int_equal(n, 5);
}

static void a_full_registry_refuses_the_whole_table(void **state)
{
    (void)state;
    for (int i = 0; i < STMTS_MAX; i++)
        rows_big[i] = (struct db_stmt){"big", "SELECT 1", 0};
    struct stmts_table a = {"a", rows_a, 3, -1};
    struct stmts_table fill = {"fill", rows_big, STMTS_MAX - 4, -1};
    struct stmts_table b = {"b", rows_b, 2, -1};
    struct stmts_table exact = {"exact", rows_big, 1, -1};
    assert_int_equal(stmts_register(&a), 0);
    assert_int_equal(stmts_register(&fill), 0);
    /* one row left: b (two rows) does not fit, and nothing of it is added */
    assert_int_equal(stmts_register(&b), -ENOSPC);
    assert_int_equal(b.base, -1);
    int n;
    stmts_all(&n);
    assert_int_equal(n, STMTS_MAX - 1);
    /* the last row still fits exactly */
    assert_int_equal(stmts_register(&exact), 0);
    assert_int_equal(exact.base, STMTS_MAX - 1);
    stmts_all(&n);
    assert_int_equal(n, STMTS_MAX);
    struct stmts_table one_more = {"one more", rows_b, 1, -1};
    assert_int_equal(stmts_register(&one_more), -ENOSPC);
}

static void an_empty_table_is_refused(void **state)
{
    (void)state;
    struct stmts_table e = {"empty", rows_a, 0, -1};
    assert_int_equal(stmts_register(&e), -EINVAL);
    assert_int_equal(e.base, -1);
}

static void reset_forgets_the_bases(void **state)
{
    (void)state;
    struct stmts_table a = {"a", rows_a, 3, -1}, b = {"b", rows_b, 2, -1};
    assert_int_equal(stmts_register(&a), 0);
    assert_int_equal(stmts_register(&b), 0);
    stmts_reset();
    assert_int_equal(a.base, -1);
    assert_int_equal(b.base, -1);
    assert_int_equal(stmts_register(&b), 0);
    assert_int_equal(b.base, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(bases_follow_each_other, reset, reset),
        cmocka_unit_test_setup_teardown(registering_twice_keeps_the_base, reset, reset),
        cmocka_unit_test_setup_teardown(a_full_registry_refuses_the_whole_table, reset, reset),
        cmocka_unit_test_setup_teardown(an_empty_table_is_refused, reset, reset),
        cmocka_unit_test_setup_teardown(reset_forgets_the_bases, reset, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
