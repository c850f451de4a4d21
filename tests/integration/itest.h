/*
 * itest.h - shared helpers of the integration tests: the environment written
 * by env.sh, `parleyd admin` through popen, and connect/auth/join shortcuts.
 */
#ifndef ITEST_H
#define ITEST_H

#include "wsc.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct itest_env {
    char pg[256];                 /* conninfo */
    int gw[2];                    /* gateway ports */
    int gw_pid[2];                /* gateway pids */
    char state[512];              /* state dir */
    char parleyd[512];            /* binary */
    char env_sh[512];             /* fixture script */
    int redis_port;               /* the Redis server */
    char operator_token[64];      /* the operator token (outbox API) */
    char metrics_token[64];       /* the token /metrics requires */
    char metrics_token_file[512]; /* ... and its file (for gateways a test starts) */
};

extern struct itest_env IT;

/* Reads $PARLEY_ENV_FILE; aborts the test program if missing. */
void it_load_env(void);
/* Runs `parleyd admin --pg ... <args>` and returns its first output line
 * (static buffer; NULL on failure). */
const char *it_admin(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Runs a shell command, capturing stdout and stderr into out; returns its
 * exit status (-1 if it could not run). */
int it_run(char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Runs `env.sh STATE <cmd>`; 0 on success. */
int it_env(const char *cmd);
/* Runs psql-free SQL through libpq; returns the first value (static buffer). */
const char *it_sql(const char *sql);
/* The same with a printf-formatted statement (the same static buffer). */
const char *it_sqlf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A workspace with one room and n people (tokens in tok[i], ids in person[i]). */
struct it_world {
    char ws[40];
    char room[40];
    char person[8][40];
    char tok[8][64];
};
void it_world(struct it_world *w, int n, const char *visibility);

/* A world of two people, person 0 connected to gateway g0 as *a and person 1
 * to g1 as *b, both joined to its room. Returns the room's last seq at b's
 * join (aborts the test on any failure). */
int64_t it_pair(struct it_world *w, int g0, struct wsc **a, int g1, struct wsc **b);
/* 0 once n gateways subscribe to room's bus channel, -1 after ms. A join is
 * answered before its gateway's SUBSCRIBE is (messages are caught up on it),
 * so a test of an unstored event across gateways waits for this first. */
int it_wait_subscribers(const char *room, int n, int ms);
/* Connect to gateway g (0/1), read hello, authenticate with tok. */
struct wsc *it_connect_auth(int g, const char *tok);
/* The same to any gateway's port, with client options (o may be NULL; tok
 * NULL: no auth). NULL on failure. */
struct wsc *it_connect_port(int port, const struct wsc_opts *o, const char *tok);
/* Connects to gateway g with tok and joins room (aborts the test on failure). */
struct wsc *it_member(int g, const char *tok, const char *room);
/* join room (since < 0: without since); returns the reply. */
cJSON *it_join(struct wsc *c, const char *room, int64_t since);
/* send; returns the reply */
cJSON *it_send(struct wsc *c, const char *room, const char *cmid, const char *body);
/* Sends one message (client_msg_id cmid) and requires it stored: on a quiet
 * gateway its batch leaves at once, so sends that follow within the
 * gateway's linger gather and leave together, as under load. */
void it_prime_batch(struct wsc *c, const char *room, const char *cmid);
/* Sends n messages of 3,000 bytes (client_msg_ids big-0 ...) and requires
 * each stored: a history page of 20 is then about 60 KB. */
void it_send_big(struct wsc *c, const char *room, int n);
/* Asks the gateway at port for n history pages of 20 (command ids
 * first_id ...) on c and waits until it has answered them all into c's
 * queue (its op counter), without reading them. */
void it_ask_history(struct wsc *c, int port, const char *room, int n, int first_id);
/* A command (the fields after "id", printf-style): the reply, which the
 * test requires (it fails on none in 5 s). */
cJSON *it_req(struct wsc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for a command that must succeed: the test fails,
 * naming the error code, when it does not. Returns the reply. */
cJSON *it_ok(struct wsc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
long it_rss_kb(int pid);
/* The value of an unlabelled metric (or of a full `name{labels}` series) in
 * gateway g's /metrics; aborts the test when it is missing. */
double it_metric(int g, const char *series);
double it_metric_port(int port, const char *series); /* the same, any gateway */
uint64_t it_now_ms(void);

/* Gateways a test starts itself (beside the fixture's two). */
int it_free_port(void); /* a loopback port free right now */
/* Starts parleyd with args (NULL-terminated, after the binary), output to
 * log, and --metrics-token-file added; returns the pid. */
pid_t it_spawn(const char *log, const char *const *args);
/* `parleyd serve` on a free port (*port) against the fixture's PostgreSQL
 * and Redis, with more flags (NULL-terminated), log STATE/<name>.log;
 * waits for /readyz (aborts the test if it never comes). */
pid_t it_own_gateway(const char *name, int *port, ...);
int it_wait_ready(int port, int ms); /* 0 once /readyz answers 200 */
/* SIGTERM, wait (5 s, then SIGKILL); the exit status, 128 for a signal,
 * -1 when it had to be killed. */
int it_stop(pid_t pid);
/* A cmocka group teardown: kills what it_spawn started and is still running. */
int it_kill_spawned(void **state);

/* The operator's mailer: leases the outbox and takes the newest item of
 * payload type `type` for recipient (its "token" into tok, "" when it has
 * none, and its id); the item stays leased. Every other item this lease
 * took is handed straight back ("retry") for the test that waits for it.
 * false when there is no such item. */
bool it_outbox_take(const char *recipient, const char *type, char tok[64], long *id);
/* A verified account the way a person makes one: sign-up from source
 * address src, the verification secret from the outbox, POST
 * /api/v1/auth/verify. Writes its session token and id (aborts the test
 * program on any failure). first may be NULL. */
void it_signup(const char *src, const char *email, const char *pw, const char *first, char tok[64],
               char id[40]);

#endif
