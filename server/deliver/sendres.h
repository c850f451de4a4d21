/*
 * sendres.h - the outcome of one attempt to send a message (smtp.c,
 * sms.c), which the deliverer turns into an outbox acknowledgement:
 * sent, retry later, or failed for good with the other side's reply.
 */
#ifndef PARLEY_SENDRES_H
#define PARLEY_SENDRES_H

enum send_outcome {
    SEND_OK,     /* accepted by the mail server or SMS gateway */
    SEND_RETRY,  /* transient: connection failure, SMTP 4xx, HTTP 5xx/429 */
    SEND_FAILED, /* permanent: SMTP 5xx for this message, HTTP 4xx */
};

struct send_result {
    enum send_outcome outcome; /* what to acknowledge */
    int code;                  /* SMTP reply or HTTP status; 0: none (no connection) */
    char reply[512];           /* the other side's reply or the local error, one line */
};

#endif
