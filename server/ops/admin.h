/*
 * admin.h - the blocking command-line side of parleyd: `migrate`, the schema
 * check done before serving, and `admin` (workspaces, people, rooms, tokens)
 * until the HTTP API exists. Never runs on the event loop.
 */
#ifndef PARLEY_ADMIN_H
#define PARLEY_ADMIN_H

/* The message log's hash partitions when `migrate --partitions` is not
 * given (sql/012_partition.sql). */
#define ADMIN_PARTITIONS_DEFAULT 8
#define ADMIN_PARTITIONS_MAX 1024

/* Applies pending migrations from sql_dir; 0 or -1 (message printed).
 * partitions: how many hash partitions the migration that partitions the
 * message log makes (1..ADMIN_PARTITIONS_MAX); it reaches each migration's
 * transaction as the setting parley.partitions, and changes nothing once
 * that migration is applied. */
int admin_migrate(const char *conninfo, const char *sql_dir, int partitions);
/* The schema version sql_dir brings a database to (its highest migration),
 * when the database has exactly that; else -1 with a message saying whether
 * it is behind (run migrate) or ahead (upgrade parleyd). */
int admin_check_schema(const char *conninfo, const char *sql_dir);
/* `parleyd admin ...`: returns the process exit code. */
int admin_main(const char *conninfo, int argc, char **argv);

#endif
