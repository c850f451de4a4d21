/*
 * sms.h - text messages through an operator's HTTP SMS gateway: one POST
 * per message (JSON or form fields), a bearer or basic credential, the
 * E.164 number and the text; and how many segments a text takes (GSM 03.38
 * 7-bit alphabet, else UCS-2).
 *
 * sms_count is pure; sms_send blocks (libcurl) for at most the configured
 * timeout. Owns nothing beyond one call.
 */
#ifndef PARLEY_SMS_H
#define PARLEY_SMS_H

#include "sendres.h"

#include <stdbool.h>

/* How a text is encoded and how many segments it takes: GSM-7 fits 160
 * septets in one message and 153 per part of a longer one (characters of
 * the extension table take two and never straddle parts); UCS-2 fits 70
 * UTF-16 units, 67 per part (a surrogate pair is never split). */
struct sms_count {
    bool ucs2;    /* some character is outside the GSM-7 alphabet */
    int units;    /* septets (GSM-7) or UTF-16 code units (UCS-2) */
    int segments; /* messages the network sends */
};

/* -1 when text is not valid UTF-8. */
int sms_count(const char *text, struct sms_count *out);

enum sms_format { SMS_JSON, SMS_FORM };
enum sms_auth { SMS_AUTH_NONE, SMS_AUTH_BEARER, SMS_AUTH_BASIC };

struct sms_cfg {
    char url[1024];         /* the gateway's endpoint (http or https) */
    enum sms_format format; /* body as a JSON object or form fields */
    enum sms_auth auth;     /* how the credential is sent */
    char credential[512];   /* bearer token, or user:password for basic */
    char sender[64];        /* the sender id or number; "" leaves the field out */
    char to_field[64];      /* field names the gateway expects */
    char text_field[64];    /* ... */
    char from_field[64];    /* ... */
    char ca_file[1024];     /* CA bundle for https; "" for the system's */
    long timeout_s;         /* the whole request */
};

/* Posts one message. Outcome by HTTP status: 2xx ok; 408, 429, 5xx and
 * connection failures retry; other statuses fail with the answer's text. */
void sms_send(const struct sms_cfg *c, const char *to, const char *text, struct send_result *r);

#endif
