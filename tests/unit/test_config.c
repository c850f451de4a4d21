/* Unit tests of configuration loading: defaults, environment, flags, and a
 * clear refusal that names the setting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

/* Runs config_load with stderr captured into err. */
static int load(struct config *c, char *err, size_t errcap, int argc, char **argv)
{
    fflush(stderr);
    int saved = dup(2);
    FILE *tmp = tmpfile();
    dup2(fileno(tmp), 2);
    int rc = config_load(c, argc, argv);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(err, 1, errcap - 1, tmp);
    err[n] = '\0';
    fclose(tmp);
    return rc;
}

static void flags_override_env(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    config_defaults(&c);
    setenv("PARLEY_PORT", "9001", 1);
    setenv("PARLEY_PG", "dbname=x", 1);
    char *argv[] = {"--port", "9002", "--redis=10.1.2.3:7000", "--max-body", "2048"};
    assert_int_equal(load(&c, err, sizeof err, 5, argv), 0);
    assert_int_equal(c.port, 9002);
    assert_string_equal(c.pg, "dbname=x");
    assert_string_equal(c.redis_host, "10.1.2.3");
    assert_int_equal(c.redis_port, 7000);
    assert_int_equal(c.max_body, 2048);
    assert_int_equal(c.outq_bytes, 1 << 20); /* untouched default */
    unsetenv("PARLEY_PORT");
}

static void bad_values_name_the_setting(void **state)
{
    (void)state;
    struct {
        char *argv[2];
        const char *needle;
    } cases[] = {
        {{"--port", "70000"}, "port"},          {{"--port", "12x"}, "port"},
        {{"--redis", "nocolon"}, "redis"},      {{"--redis", "h:0"}, "redis"},
        {{"--log-level", "loud"}, "log-level"}, {{"--max-body", "0"}, "max-body"},
        {{"--outq-bytes", "10"}, "outq-bytes"}, {{"--nonsense", "1"}, "unknown option"},
    };
    setenv("PARLEY_PG", "dbname=x", 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct config c;
        char err[512];
        config_defaults(&c);
        assert_int_equal(load(&c, err, sizeof err, 2, cases[i].argv), -1);
        assert_non_null(strstr(err, cases[i].needle));
    }
    /* A bad environment value is named with its variable. */
    struct config c;
    char err[512];
    config_defaults(&c);
    setenv("PARLEY_REPLAY_LIMIT", "-1", 1);
    assert_int_equal(load(&c, err, sizeof err, 0, NULL), -1);
    assert_non_null(strstr(err, "PARLEY_REPLAY_LIMIT"));
    unsetenv("PARLEY_REPLAY_LIMIT");
}

static void pg_is_required(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    unsetenv("PARLEY_PG");
    config_defaults(&c);
    assert_int_equal(load(&c, err, sizeof err, 0, NULL), -1);
    assert_non_null(strstr(err, "pg"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flags_override_env),
        cmocka_unit_test(bad_values_name_the_setting),
        cmocka_unit_test(pg_is_required),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
