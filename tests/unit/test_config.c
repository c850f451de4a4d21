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
    assert_int_equal(c.write_delay_ms, 0); /* the default: off */
    assert_int_equal(c.direct_write, 1);   /* the default: on */
    char *argv[] = {"--port",           "9002", "--redis=10.1.2.3:7000", "--max-body", "2048",
                    "--write-delay-ms", "25",   "--direct-write",        "0"};
    assert_int_equal(load(&c, err, sizeof err, 9, argv), 0);
    assert_int_equal(c.write_delay_ms, 25);
    assert_int_equal(c.direct_write, 0);
    assert_int_equal(c.port, 9002);
    assert_string_equal(c.pg, "dbname=x");
    assert_string_equal(c.redis_host, "10.1.2.3");
    assert_int_equal(c.redis_port, 7000);
    assert_int_equal(c.max_body, 2048);
    assert_int_equal(c.outq_bytes, 1 << 20); /* untouched default */
    unsetenv("PARLEY_PORT");
}

/* One Redis server unless a cluster is named; the flag wins over the env. */
static void redis_cluster_seeds(void **state)
{
    (void)state;
    struct config c;
    char err[512];
    config_defaults(&c);
    assert_string_equal(c.redis_cluster, "");
    setenv("PARLEY_PG", "dbname=x", 1);
    setenv("PARLEY_REDIS_CLUSTER", "127.0.0.1:7000", 1);
    char *none[] = {"--port", "9002"};
    assert_int_equal(load(&c, err, sizeof err, 2, none), 0);
    assert_string_equal(c.redis_cluster, "127.0.0.1:7000");
    char *argv[] = {"--redis-cluster", "10.0.0.1:7000,10.0.0.2:7001"};
    assert_int_equal(load(&c, err, sizeof err, 2, argv), 0);
    assert_string_equal(c.redis_cluster, "10.0.0.1:7000,10.0.0.2:7001");
    unsetenv("PARLEY_REDIS_CLUSTER");
}

static void bad_values_name_the_setting(void **state)
{
    (void)state;
    struct {
        char *argv[2];
        const char *needle;
    } cases[] = {
        {{"--port", "70000"}, "port"},
        {{"--port", "12x"}, "port"},
        {{"--redis", "nocolon"}, "redis"},
        {{"--redis", "h:0"}, "redis"},
        {{"--log-level", "loud"}, "log-level"},
        {{"--max-body", "0"}, "max-body"},
        {{"--outq-bytes", "10"}, "outq-bytes"},
        {{"--nonsense", "1"}, "unknown option"},
        {{"--write-delay-ms", "1001"}, "write-delay-ms"},
        {{"--direct-write", "2"}, "direct-write"},
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

static void file_env_flag_precedence(void **state)
{
    (void)state;
    char path[] = "/tmp/parley-config-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "# a comment\n\nport = 7001\nmax-body = 1000\n  replay-limit = 5  \n"
                       "pg = host=db.example port=5432 dbname=parley # not a comment\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct config c;
    char err[512];
    config_defaults(&c);
    setenv("PARLEY_MAX_BODY", "2000", 1);
    unsetenv("PARLEY_PG");
    char *argv[] = {"--config", path, "--replay-limit", "9"};
    assert_int_equal(load(&c, err, sizeof err, 4, argv), 0);
    assert_int_equal(c.port, 7001);      /* file over default */
    assert_int_equal(c.max_body, 2000);  /* environment over file */
    assert_int_equal(c.replay_limit, 9); /* flag over file */
    assert_string_equal(c.pg, "host=db.example port=5432 dbname=parley # not a comment");
    assert_string_equal(c.config_file, path);
    unsetenv("PARLEY_MAX_BODY");
    /* A bad line is named with the file and line number. */
    FILE *f = fopen(path, "w");
    fputs("port = 7001\nnonsense line\n", f);
    fclose(f);
    config_defaults(&c);
    assert_int_equal(load(&c, err, sizeof err, 2, argv), -1);
    assert_non_null(strstr(err, ":2"));
    f = fopen(path, "w");
    fputs("colour = blue\n", f);
    fclose(f);
    config_defaults(&c);
    assert_int_equal(load(&c, err, sizeof err, 2, argv), -1);
    assert_non_null(strstr(err, "unknown setting 'colour'"));
    unlink(path);
}

static void origin_allow_list_is_exact(void **state)
{
    (void)state;
    struct config c;
    config_defaults(&c);
    assert_true(config_origin_allowed(&c, "https://anything.example", 24)); /* empty: any */
    strcpy(c.origins, "https://app.example, http://localhost:3000");
    assert_true(config_origin_allowed(&c, "https://app.example", 19));
    assert_true(config_origin_allowed(&c, "http://localhost:3000", 21));
    assert_false(config_origin_allowed(&c, "https://app.example.evil", 24));
    assert_false(config_origin_allowed(&c, "https://app.exampl", 18));
    assert_false(config_origin_allowed(&c, "http://localhost", 16));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(flags_override_env),          cmocka_unit_test(redis_cluster_seeds),
        cmocka_unit_test(bad_values_name_the_setting), cmocka_unit_test(pg_is_required),
        cmocka_unit_test(file_env_flag_precedence),    cmocka_unit_test(origin_allow_list_is_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
