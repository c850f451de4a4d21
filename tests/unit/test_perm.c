/* Unit tests of the permission matrix: the table in protocol/API.md is the
 * documentation people read, perm.c is what the server enforces; this test
 * reads the table and requires every cell to agree, and every permission to
 * be documented exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "perm.h"

static void doc_matches_code(void **state)
{
    (void)state;
    FILE *f = fopen(API_MD, "r");
    assert_non_null(f);
    char line[512];
    int seen[PERM__COUNT] = {0};
    enum role cols[ROLE__COUNT];
    int ncols = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "| ", 2)) continue;
        char *save = NULL, *cell = strtok_r(line + 1, "|\n", &save);
        char first[64];
        if (!cell || sscanf(cell, " %63s", first) != 1) continue;
        if (!strcmp(first, "permission")) { /* the header names the role columns */
            ncols = 0;
            for (char *c = strtok_r(NULL, "|\n", &save); c; c = strtok_r(NULL, "|\n", &save)) {
                char name[32];
                if (sscanf(c, " %31s", name) != 1) continue;
                enum role r = perm_role_parse(name, strlen(name));
                assert_int_not_equal(r, ROLE_NONE);
                cols[ncols++] = r;
            }
            assert_int_equal(ncols, ROLE__COUNT);
            continue;
        }
        char *name = first + (first[0] == '`'); /* `workspace.read` */
        name[strcspn(name, "`")] = 0;
        int p = -1;
        for (int i = 0; i < PERM__COUNT; i++)
            if (!strcmp(perm_name((enum perm)i), name)) p = i;
        if (p < 0) continue;
        seen[p]++;
        int k = 0;
        for (char *c = strtok_r(NULL, "|\n", &save); c && k < ncols;
             c = strtok_r(NULL, "|\n", &save), k++) {
            char v[16];
            assert_int_equal(sscanf(c, " %15s", v), 1);
            bool doc = !strcmp(v, "yes");
            assert_true(doc || !strcmp(v, "no"));
            if (doc != perm_allows(cols[k], (enum perm)p))
                fail_msg("API.md says %s for %s/%s, perm.c says %s", v, perm_name((enum perm)p),
                         perm_role_name(cols[k]), doc ? "no" : "yes");
        }
        assert_int_equal(k, ROLE__COUNT);
    }
    fclose(f);
    for (int i = 0; i < PERM__COUNT; i++)
        if (seen[i] != 1) fail_msg("%s documented %d times", perm_name((enum perm)i), seen[i]);
}

static void grants(void **state)
{
    (void)state;
    assert_true(perm_manages(ROLE_OWNER, ROLE_ADMIN));
    assert_false(perm_manages(ROLE_OWNER, ROLE_OWNER));
    assert_false(perm_manages(ROLE_ADMIN, ROLE_ADMIN));
    assert_true(perm_manages(ROLE_ADMIN, ROLE_MEMBER));
    assert_false(perm_manages(ROLE_KEYUSER, ROLE_MEMBER));
    for (int r = 0; r < ROLE__COUNT; r++) {
        /* Nobody grants support or avatar through people routes. */
        assert_false(perm_manages((enum role)r, ROLE_SUPPORT));
        assert_false(perm_manages((enum role)r, ROLE_AVATAR));
        assert_false(perm_allows(ROLE_NONE, (enum perm)r));
    }
    assert_int_equal(perm_role_parse("admin", 5), ROLE_ADMIN);
    assert_int_equal(perm_role_parse("admins", 6), ROLE_NONE);
    assert_int_equal(perm_role_parse("adm", 3), ROLE_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(doc_matches_code),
        cmocka_unit_test(grants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
