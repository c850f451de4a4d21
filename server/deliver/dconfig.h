/*
 * dconfig.h - the deliverer's settings: flags and PARLEY_* environment
 * variables, defaults, validation, and the secrets read from their files.
 * The caller owns the struct; dconfig_load fills it in once at start.
 */
#ifndef PARLEY_DCONFIG_H
#define PARLEY_DCONFIG_H

#include "sms.h"
#include "smtp.h"

struct dcfg {
    char gateway[512];              /* base URL of a gateway: http(s)://host:port */
    char gateway_ca_file[1024];     /* CA bundle for an https gateway ("" : the system's) */
    char operator_token_file[1024]; /* the operator token's file */
    char operator_token[128];       /* ... read from it */
    char templates[1024];           /* templates directory */
    char default_language[8];       /* when the item's workspace has no language we ship */
    char web_url[512];             /* the web client: links go to its #/redeem and #/verify pages */
    char smtp_host[256];           /* "" : no email */
    char smtp_tls[16];             /* starttls | implicit | none */
    char smtp_password_file[1024]; /* the SMTP password's file */
    char sms_url[1024];            /* "" : no SMS */
    char sms_format[8];            /* json | form */
    char sms_auth[8];              /* none | bearer | basic */
    char sms_credential_file[1024]; /* bearer token or user:password */
    long smtp_port;                 /* 587 for STARTTLS, 465 implicit */
    long send_timeout_s;            /* one send at most */
    long sms_max_segments;          /* a longer text fails instead of costing more */
    long lease_s;                   /* how long a lease holds */
    long batch;                     /* items per lease */
    long poll_ms;                   /* wait when the outbox is empty */
    long retry_base_s;              /* first backoff; doubles per attempt */
    long retry_max_s;               /* backoff ceiling */
    long max_attempts;              /* then a transient failure is final */
    long once;                      /* 1: exit when the outbox is empty */
    char metrics_file[1024];        /* Prometheus text file ("" : none) */
    char log_level[8];              /* error | warn | info | debug */
    struct smtp_cfg smtp;           /* the mail server */
    struct sms_cfg sms;             /* the SMS gateway */
};

/* Defaults, then the environment, then argv (the flags after "deliver"),
 * then validation, which also reads the secret files and sets the log
 * level. 0: ready; 1: --help was printed; -1: a bad setting (printed). */
int dconfig_load(struct dcfg *c, int argc, char **argv);

#endif
