/*
 * admin.h - the blocking command-line side of parleyd: `migrate`, the schema
 * check done before serving, and `admin` (workspaces, people, rooms, tokens)
 * until the HTTP API exists. Never runs on the event loop.
 */
#ifndef PARLEY_ADMIN_H
#define PARLEY_ADMIN_H

/* Applies pending migrations from sql_dir; 0 or -1 (message printed). */
int admin_migrate(const char *conninfo, const char *sql_dir);
/* The schema version sql_dir brings a database to (its highest migration),
 * when the database has exactly that; else -1 with a message saying whether
 * it is behind (run migrate) or ahead (upgrade parleyd). */
int admin_check_schema(const char *conninfo, const char *sql_dir);
/* `parleyd admin ...`: returns the process exit code. */
int admin_main(const char *conninfo, int argc, char **argv);

#endif
