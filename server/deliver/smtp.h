/*
 * smtp.h - email through the operator's mail server with libcurl: STARTTLS
 * or implicit TLS, authentication, the envelope and From/Reply-To from the
 * settings, and a MIME message with plain-text and HTML alternatives, an
 * RFC 2047 UTF-8 subject, Date, Message-ID and Auto-Submitted.
 *
 * smtp_build and smtp_header_word are pure (unit-tested); smtp_send blocks
 * for at most the configured timeout. Owns nothing beyond one call.
 */
#ifndef PARLEY_SMTP_H
#define PARLEY_SMTP_H

#include "sendres.h"

#include <stddef.h>
#include <time.h>

enum smtp_tls {
    SMTP_STARTTLS, /* plain connection upgraded with STARTTLS, which is required */
    SMTP_IMPLICIT, /* TLS from the first byte (smtps, port 465) */
    SMTP_NONE,     /* no TLS: a local relay only */
};

struct smtp_cfg {
    char host[256];      /* the mail server */
    int port;            /* its port */
    enum smtp_tls tls;   /* how the connection is protected */
    char user[256];      /* "" : no authentication */
    char password[256];  /* read from a file, never logged */
    char from[320];      /* envelope sender and From address */
    char from_name[128]; /* From display name ("" : none) */
    char reply_to[320];  /* Reply-To ("" : none) */
    char ca_file[1024];  /* CA bundle ("" : the system's) */
    long timeout_s;      /* the whole transaction */
};

/* One message to one recipient. */
struct mail {
    const char *to;         /* the recipient's address */
    const char *subject;    /* UTF-8, one line */
    const char *text;       /* the plain-text alternative (LF line ends) */
    const char *html;       /* the HTML alternative */
    const char *message_id; /* "<...@...>" */
    time_t date;            /* the Date header */
};

/* The message as sent (CRLF line ends), NUL-terminated; NULL when out of
 * memory. Caller frees with mem_free. */
char *smtp_build(const struct smtp_cfg *c, const struct mail *m, size_t *len);

/* s as a header value: unchanged when printable ASCII, else RFC 2047
 * encoded words (UTF-8, base64) of at most 75 characters, folded, never
 * splitting a character. NULL when out of memory; caller frees. */
char *smtp_header_word(const char *s);

/* Sends m. Outcome: ok; retry for connection failures, 4xx replies and
 * refusals before the envelope (EHLO, STARTTLS, AUTH: the operator's
 * configuration, not the recipient); failed for a 5xx reply to MAIL, RCPT
 * or the message, with that reply. */
void smtp_send(const struct smtp_cfg *c, const struct mail *m, struct send_result *r);

#endif
