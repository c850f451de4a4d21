/*
 * config.h - the gateway's settings, in increasing precedence: defaults, the
 * configuration file (--config FILE or PARLEY_CONFIG), environment variables
 * (PARLEY_*), command-line flags. Validated once at start; a bad value stops
 * start-up with a message naming the setting and where it came from.
 * Immutable afterwards.
 */
#ifndef PARLEY_CONFIG_H
#define PARLEY_CONFIG_H

#include <stddef.h>
#include <stdint.h>

struct config {
    int port;                         /* WebSocket/HTTP listen port */
    char bind[64];                    /* listen address */
    char pg[1024];                    /* PostgreSQL conninfo */
    char pg_read[1024];               /* read-only conninfo (replica), "" for none */
    char redis_host[256];             /* Redis host */
    int redis_port;                   /* Redis port */
    char redis_cluster[1024];         /* Redis Cluster seeds host:port,...; empty: one server */
    char sql_dir[1024];               /* migrations directory (for the schema check and migrate) */
    size_t max_frame;                 /* bytes of one reassembled client message */
    size_t max_body;                  /* bytes of a message body */
    size_t outq_bytes;                /* a connection's out-queue limit in bytes */
    uint32_t outq_frames;             /* ... and in frames */
    uint32_t outq_stall_ms;           /* a connection whose out-queue has not moved for this long
                                         is closed as a slow consumer */
    uint32_t batch_max;               /* messages per write transaction at most */
    uint32_t batch_delay_us;          /* from one write batch leaving to the next, if not full */
    uint32_t batch_queue_max;         /* messages waiting for a batch at most (then rx flow off) */
    uint32_t replay_limit;            /* messages a join with since may replay at most */
    uint32_t auth_timeout_ms;         /* unauthenticated connections are closed after this */
    uint32_t auth_batch_max;          /* tokens per look-up query (authq.c) */
    uint32_t auth_inflight;           /* look-up queries in flight at once */
    uint32_t auth_queue_max;          /* auths waiting for a look-up at most (then busy) */
    uint32_t auth_wait_ms;            /* an auth expected to wait longer is answered busy */
    uint32_t per_ip_max;              /* connections (WebSocket and HTTP) per client IP */
    uint32_t max_conns;               /* connections in all; 0: from RLIMIT_NOFILE at start */
    uint32_t conn_reserve;            /* the last ones go only to addresses with none open */
    uint32_t http_request_timeout_ms; /* whole-request deadline (headers and body) */
    size_t http_max_header;           /* bytes of a request's headers (then 431) */
    uint32_t db_timeout_ms;           /* a query not answered by then fails with unavailable */
    uint32_t db_conns;                /* PostgreSQL connections (1 writer + readers) */
    uint32_t db_read_conns;           /* connections to pg_read */
    uint32_t max_rooms;               /* rooms one connection may join */
    uint32_t write_delay_ms;    /* a connection that wrote less than this ago waits to pack more */
    uint32_t presence_list_max; /* rooms with more people online get presence counts only */
    uint32_t direct_write; /* 1: write from the loop's check phase, not via WRITEABLE (conn.c) */
    uint32_t regex_jit;    /* 1: JIT-compile guideline regexes (0 under valgrind) */
    uint32_t coalesce_ms;  /* read and votes events: at most one per person/message per interval */
    uint32_t reorder_ms;   /* how long a gap in a room's bus stream may wait before a fetch */
    int log_level;         /* enum log_level */
    char tls_cert[1024];   /* PEM certificate chain: serve wss/https when set */
    char tls_key[1024];    /* PEM private key */
    char origins[2048];    /* comma-separated allowed Origin values; empty: any */
    uint32_t pwhash_ops;   /* argon2id passes (OWASP minimum 2) */
    uint32_t pwhash_mem_mib;        /* argon2id memory in MiB (OWASP minimum 19) */
    uint32_t session_ttl_h;         /* session tokens expire after this many hours */
    uint32_t invite_ttl_h;          /* invitations expire after this many hours */
    uint32_t verify_ttl_h;          /* secrets proving an address expire after (hours) */
    uint32_t login_max_account;     /* failed logins per account and IP per window, then 429 */
    uint32_t login_max_ip;          /* failed logins per client IP per window, then 429 */
    uint32_t login_window_s;        /* the rate-limit window */
    uint32_t signup_max_ip;         /* sign-ups per client IP per window */
    size_t http_max_body;           /* bytes of an HTTP request body (then 413) */
    uint32_t ip_retention_days;     /* visit-log IPs are anonymised after this many days */
    uint32_t anonymise_every_s;     /* how often the anonymisation job runs */
    uint32_t visit_retention_days;  /* visit-log rows are deleted after this many days */
    uint32_t retention_every_s;     /* how often the retention jobs run (one batch each) */
    uint32_t retention_batch;       /* rows of each kind one retention run removes at most */
    uint32_t purge_batch;           /* rows one purge run removes at most (paced: one a second) */
    char operator_token_file[1024]; /* file holding the operator's token (outbox); empty: none */
    char metrics_token_file[1024]; /* file holding the token /metrics requires; empty: not served */
    char web_root[1024];           /* the web client's files; empty: the installed default */
    size_t web_max_bytes;          /* their total in memory (with gzip copies): over it, no start */
    char config_file[1024];        /* where file settings came from (for logs) */
};

void config_defaults(struct config *c);

/* Applies the configuration file (if --config or PARLEY_CONFIG names one),
 * then PARLEY_* environment variables, then the flags in argv[0..argc).
 * Returns 0, or -1 after printing "parleyd: <setting>: <why>" to stderr. */
int config_load(struct config *c, int argc, char **argv);

/* True when origin (len bytes) is allowed by c->origins. */
int config_origin_allowed(const struct config *c, const char *origin, size_t len);

/* The web root to serve: --web-root, or the installed default when unset. */
const char *config_web_root(const struct config *c);

/* Prints the options table (for --help). */
void config_usage(const char *prog);

#endif
