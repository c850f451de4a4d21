/*
 * parleyd - the Parley gateway.
 *
 *   parleyd [serve] [options]    run the gateway (see --help)
 *   parleyd migrate [options]    apply pending sql/ migrations (--partitions N: the
 *                                message log's hash partitions, default 8)
 *   parleyd admin [options] ...  blocking admin commands
 *   parleyd routes               the HTTP routes (checked against the OpenAPI document)
 *   parleyd deliver [options]    deliver the outbox by email and SMS (its own process)
 */
#include "admin.h"
#include "app.h"
#include "auth.h"
#include "config.h"
#include "deliver.h"
#include "http_api.h"
#include "lifecycle.h"
#include "log.h"
#include "mem.h"
#include "web.h"
#include "ws.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* migrate and admin take --pg and --sql-dir (and the environment) too. */
static int tool_config(struct config *c, int *argc, char ***argv)
{
    config_defaults(c);
    int keep = 0;
    char **args = *argv;
    int n = *argc;
    char *conf_args[4];
    int nc = 0;
    for (int i = 0; i < n; i++) {
        if ((!strcmp(args[i], "--pg") || !strcmp(args[i], "--sql-dir")) && i + 1 < n && nc < 3) {
            conf_args[nc++] = args[i];
            conf_args[nc++] = args[++i];
        } else {
            args[keep++] = args[i];
        }
    }
    *argc = keep;
    return config_load(c, nc, conf_args);
}

/* migrate's own setting: --partitions N (taken out of argv), else
 * PARLEY_PARTITIONS, else the default. -1 (message printed) when invalid. */
static int migrate_partitions(int *argc, char **argv)
{
    const char *val = getenv("PARLEY_PARTITIONS");
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--partitions")) continue;
        val = i + 1 < *argc ? argv[i + 1] : "";
        int drop = i + 1 < *argc ? 2 : 1;
        memmove(argv + i, argv + i + drop, (size_t)(*argc - i - drop) * sizeof *argv);
        *argc -= drop;
        break;
    }
    if (!val) return ADMIN_PARTITIONS_DEFAULT;
    char *end = NULL;
    long p = strtol(val, &end, 10);
    if (!*val || *end || p < 1 || p > ADMIN_PARTITIONS_MAX) {
        fprintf(stderr, "parleyd: --partitions (PARLEY_PARTITIONS) takes 1 to %d\n",
                ADMIN_PARTITIONS_MAX);
        return -1;
    }
    return (int)p;
}

int main(int argc, char **argv)
{
    struct config cfg;
    int a = 1;
    mem_hook_json();
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        config_usage(argv[0]);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "migrate")) {
        int n = argc - 2;
        char **v = argv + 2;
        int parts = migrate_partitions(&n, v);
        if (parts < 0) return 2;
        if (tool_config(&cfg, &n, &v)) return 2;
        return admin_migrate(cfg.pg, cfg.sql_dir, parts) ? 1 : 0;
    }
    if (argc > 1 && !strcmp(argv[1], "admin")) {
        int n = argc - 2;
        char **v = argv + 2;
        if (tool_config(&cfg, &n, &v)) return 2;
        return admin_main(cfg.pg, n, v);
    }
    if (argc > 1 && !strcmp(argv[1], "deliver")) return deliver_main(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "routes")) {
        http_api_print_routes(stdout);
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "config-check")) {
        /* Validates the settings as serve would and prints where they landed. */
        config_defaults(&cfg);
        if (config_load(&cfg, argc - 2, argv + 2)) return 2;
        printf("ok: port=%d bind=%s redis=%s:%d sql-dir=%s tls=%s config=%s web-root=%s\n",
               cfg.port, cfg.bind, cfg.redis_host, cfg.redis_port, cfg.sql_dir,
               cfg.tls_cert[0] ? "on" : "off", cfg.config_file[0] ? cfg.config_file : "(none)",
               config_web_root(&cfg));
        return 0;
    }
    if (argc > 1 && !strcmp(argv[1], "serve")) a = 2;

    config_defaults(&cfg);
    if (config_load(&cfg, argc - a, argv + a)) return 2;
    log_set_level((enum log_level)cfg.log_level);
    if (auth_init()) {
        log_error("libsodium init failed", "%s", "");
        return 1;
    }
    int schema = admin_check_schema(cfg.pg, cfg.sql_dir);
    if (schema < 0) return 1;
    signal(SIGPIPE, SIG_IGN);

    uv_loop_t loop;
    uv_loop_init(&loop);
    static struct app app;
    if (lifecycle_start(&app, &cfg, &loop)) return 1;
    app.schema_version = schema;
    app.schema_ok = true;
    uv_run(&loop, UV_RUN_DEFAULT);
    /* The lws context finishes its destruction now that the loop is idle;
     * handles it closes late still get their callbacks. */
    ws_finish(&app);
    uv_run(&loop, UV_RUN_DEFAULT);
    web_free(&app); /* nothing can be writing a file now */
    http_api_free(&app);
    int rc = uv_loop_close(&loop);
    if (rc) log_warn("loop closed with handles open", "rc=%d", rc);
    return 0;
}
