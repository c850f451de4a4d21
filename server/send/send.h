/*
 * send.h - the send stage: what happens to a message between the handler
 * that parsed it and the store that gives it a seq. In order:
 *
 *   policy      the room's own refusals: mutes (muted), lock (room_locked,
 *               moderators exempt)
 *   pace        the sender's pace in the room (pace.h, one Redis round trip,
 *               only in rooms with a slow mode or a rate/slow_mode rule):
 *               the room's slow mode (slow_mode, moderators exempt)
 *   guidelines  the room's effective rule set (the workspace's and the
 *               room's merged, rulecache.h), strictest hit first
 *   outcome     stored in the room's sequence (masked/redacted text if
 *               rewritten; moderators told when flagged), kept outside it for
 *               review (hold, shadow), or refused with a code
 *
 * The decisions are pure functions of send_facts (send_decide) so they can
 * be tested without an app, a loop or a database; send_message runs them
 * against the cache, Redis and PostgreSQL. A connection's sends keep their
 * order through both waits (rules loading, pace).
 *
 * Ownership: the stage owns the buffered guideline hits (written once per
 * tick); a waiting send holds a creq to its connection and is dropped
 * unanswered if the connection closes.
 */
#ifndef PARLEY_SEND_H
#define PARLEY_SEND_H

#include "parley_proto.h"

#include <stdbool.h>
#include <stdint.h>

struct app;
struct conn;
struct gl_verdict;
struct pace;
struct rc_room;

/* A send or an edit, as checked against the room's policy. */
struct msgin {
    enum pp_op op;              /* PP_OP_SEND or PP_OP_EDIT */
    int64_t id;                 /* command id */
    char room[PP_UUID_LEN + 1]; /* room */
    struct pp_str cmid;         /* send: client_msg_id */
    struct pp_str body;         /* the text */
    int64_t parent;             /* send: the entry replied to, 0 for none */
    int64_t seq;                /* edit: the message */
};

int send_new(struct app *a);
void send_free(struct app *a);

/* Checks a send or edit against the room's policy, its sender's pace and
 * the guidelines, then stores it, keeps it for review (hold, shadow), or
 * refuses it. Answers the command in every case. */
void send_message(struct app *a, struct conn *c, const struct msgin *in);

/* Periodic (and at shutdown): writes the buffered guideline hits. */
void send_tick(struct app *a);

/* ---- the decisions, pure ------------------------------------------------ */

enum send_pace {
    SEND_PACE_UNASKED, /* not counted (yet) */
    SEND_PACE_OK,      /* counted: pace result in pv */
    SEND_PACE_SLOW,    /* the room's slow mode refused it (nothing counted) */
    SEND_PACE_DOWN,    /* Redis did not answer (nothing counted) */
};

/* Everything the stage knows about a send at one step. */
struct send_facts {
    enum pp_op op;              /* PP_OP_SEND or PP_OP_EDIT */
    int role;                   /* the sender's enum role */
    const char *person;         /* the sender */
    int64_t now_ms;             /* Unix ms, for mutes */
    const struct rc_room *room; /* the room's policy and rules */
    bool behind;                /* the connection has a send waiting for its pace */
    enum send_pace pace;        /* the pace step's result */
    const struct pace *pv;      /* SEND_PACE_OK/SLOW: the result */
    int eval_err;               /* gl_eval's error: -EILSEQ (not UTF-8), -ENOMEM */
    const struct gl_verdict *v; /* the guidelines' verdict, NULL: not evaluated */
    size_t max_body;            /* --max-body: a rewrite longer than this is refused */
};

enum send_act {
    SEND_REFUSE,   /* answer with code and msg */
    SEND_PACE,     /* count it in the sender's pace (send_pace_ask), then decide again */
    SEND_EVALUATE, /* evaluate the room's guidelines, then decide again with the verdict */
    SEND_STORE,    /* store it in the room's sequence (an edit: apply it) */
    SEND_KEEP,     /* keep it outside the sequence for review (held or shadowed) */
};

struct send_decision {
    enum send_act act;
    enum pp_err_code code; /* SEND_REFUSE */
    char msg[128];         /* SEND_REFUSE: for the sender */
    bool refund;           /* the pace counted it but it is not sent: give it back */
    bool rewrite;          /* store the verdict's text, not the body */
    bool flag;             /* tell the moderators (flagged push) */
    bool held;             /* SEND_KEEP: held (else shadowed) */
};

/* The next step for a send given what is known: policy before pace before
 * guidelines; among the guidelines' hits the strictest decides (reject >
 * hold > shadow > redact > mask > flag > allow), a rewrite applies whatever
 * decides short of a refusal, and a flag hit tells the moderators whatever
 * decides short of a refusal. */
void send_decide(const struct send_facts *f, struct send_decision *d);

/* Whether the send must be counted in its sender's pace, and with what
 * limits (p, when not NULL, is filled): sends (not edits) in a room with a
 * slow mode (moderators exempt), a rate or a slow_mode rule, or whose
 * connection has another send waiting for its pace (to keep its order). */
bool send_pace_ask(const struct send_facts *f, struct pace *p);

#endif
