/*
 * parley_proto.h - the Parley wire protocol v1: strict decoding of client
 * commands, the JSON writer, error codes and limits. The encoders of replies
 * and pushes are in parley_encode.h, which this header includes.
 *
 * Depends only on cJSON. The server, the load generator and the tests link it.
 * The wire spec is PROTOCOL.md beside this file; this header is its C form.
 *
 * Ownership: pp_decode() fills a struct pp_cmd whose string pointers point into
 * a parse tree owned by the struct; they stay valid until pp_cmd_free(). The
 * JSON writer (struct pp_w) writes into a caller-owned buffer and never
 * allocates. The one global state is the allocator given to
 * pp_set_allocator (cJSON's hooks are global too).
 */
#ifndef PARLEY_PROTO_H
#define PARLEY_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#define PP_PROTOCOL_NAME "parley.v1"

/* Defaults; the server may be configured with others and passes them in. */
#define PP_DEFAULT_MAX_FRAME 65536   /* bytes of one reassembled client message */
#define PP_DEFAULT_MAX_BODY 4096     /* bytes of a message body (UTF-8) */
#define PP_MAX_CLIENT_MSG_ID 64      /* bytes of a client_msg_id */
#define PP_MAX_TOKEN 128             /* bytes of an access token */
#define PP_HISTORY_DEFAULT_LIMIT 50  /* history rows when no limit is given */
#define PP_HISTORY_MAX_LIMIT 100     /* history rows at most */
#define PP_UUID_LEN 36               /* canonical text form, lower-case hex */
#define PP_MAX_ID 9007199254740991LL /* 2^53 - 1: ids must survive a JS double */

/* Stable error codes: the wire names are in pp_err_name(). Never renumber. */
enum pp_err_code {
    PP_OK = 0,
    PP_E_BAD_JSON,              /* "bad_json": the frame is not a JSON object */
    PP_E_BAD_REQUEST,           /* "bad_request": missing/unknown/mistyped field */
    PP_E_UNKNOWN_OP,            /* "unknown_op" */
    PP_E_AUTH_REQUIRED,         /* "auth_required": op before a successful auth */
    PP_E_AUTH_FAILED,           /* "auth_failed": token unknown, expired or revoked */
    PP_E_ALREADY_AUTHENTICATED, /* "already_authenticated" */
    PP_E_ROOM_NOT_FOUND,        /* "room_not_found": none in *your* workspace */
    PP_E_FORBIDDEN,             /* "forbidden": exists, but you may not */
    PP_E_NOT_JOINED,            /* "not_joined": join the room first */
    PP_E_ALREADY_JOINED,        /* "already_joined" */
    PP_E_TOO_MANY_ROOMS,        /* "too_many_rooms": per-connection cap */
    PP_E_BODY_TOO_LONG,         /* "body_too_long" */
    PP_E_UNAVAILABLE,           /* "unavailable": storage down; retry same client_msg_id */
    PP_E_BUSY,                  /* "busy": server over its queue limits; retry later */
    PP_E_INTERNAL,              /* "internal" */
    PP_E_NO_SUCH_MESSAGE,       /* "no_such_message": no message with that seq in the room */
    PP_E_LIKES_NOT_ALLOWED,     /* "likes_not_allowed": dialogue entries take stars, not likes */
    PP_E_RATINGS_NOT_ALLOWED,   /* "ratings_not_allowed": chat messages take likes, not stars */
    PP_E_STARS_OUT_OF_RANGE,    /* "stars_out_of_range": stars are 1 to 5 */
    PP_E_BAD_PARENT,            /* "bad_parent": replies go to an entry of a dialogue room */
    PP_E_GUIDELINE,             /* "guideline_violation": refused by a communication guideline */
    PP_E_MUTED,                 /* "muted": a moderator muted you here, until a time */
    PP_E_ROOM_LOCKED,           /* "room_locked": the room is read-only */
    PP_E_SLOW_MODE,             /* "slow_mode": one message per N seconds here; wait */
    PP_E_EDIT_WINDOW,           /* "edit_window_closed": too old to edit or delete */
    PP_E_NO_SUCH_PENDING,       /* "no_such_pending": no held message with that id to decide */
    PP_E_ROOM_ARCHIVED,         /* "room_archived": the room was archived; nothing stored */
    PP_E__COUNT
};

enum pp_op {
    PP_OP_AUTH = 1,
    PP_OP_JOIN,
    PP_OP_LEAVE,
    PP_OP_SEND,
    PP_OP_HISTORY,
    PP_OP_PING,
    PP_OP_READ,         /* read up to seq (monotonic watermark) */
    PP_OP_SEEN,         /* one entry seen, out of order */
    PP_OP_LIKE,         /* like a chat message */
    PP_OP_UNLIKE,       /* take the like back */
    PP_OP_RATE,         /* 1-5 stars on a dialogue entry or reply */
    PP_OP_UNRATE,       /* remove my rating */
    PP_OP_UNREAD,       /* my unread count per room */
    PP_OP_SEEN_BY,      /* who has seen a message, when; k of n */
    PP_OP_SEEN_ENTRIES, /* which entries a person has seen in a room */
    PP_OP_ENTRIES,      /* a dialogue room's entries, by newest or by rating */
    PP_OP_MY_VOTES,     /* what I liked or rated */
    PP_OP_TYPING,       /* ephemeral: I am typing in a room */
    PP_OP_DELETE,       /* delete a message: my own within the window, any as moderator */
    PP_OP_EDIT,         /* edit my own message within the window */
    PP_OP_PENDING,      /* held and shadowed messages: all (moderator) or my own */
    PP_OP_APPROVE,      /* moderator: deliver a held message (it takes its seq now) */
    PP_OP_REJECT,       /* moderator: drop a held or shadowed message */
    PP_OP_MUTE,         /* moderator: mute a person in a room or the workspace */
    PP_OP_UNMUTE,       /* moderator: lift a mute */
    PP_OP_REMOVE,       /* moderator: remove a person from a room */
    PP_OP_ROOM_SETTINGS /* moderator: lock the room, set slow mode */
};

/* Limits the decoder enforces; filled from server configuration. */
struct pp_limits {
    size_t max_body; /* body bytes at most (>= 1) */
};

/* A string slice into the parse tree (not NUL-terminated beyond len? it is:
 * cJSON strings are NUL-terminated, so str[len] == '\0' always holds). */
struct pp_str {
    const char *str; /* NUL-terminated UTF-8; NULL when absent */
    size_t len;      /* bytes, without the NUL */
};

/* One decoded client command. Only the fields of its op are set. */
struct pp_cmd {
    int64_t id;                  /* 1..PP_MAX_ID */
    enum pp_op op;               /* which command */
    struct pp_str token;         /* auth */
    struct pp_str workspace;     /* auth: optional uuid; required for a token valid in several */
    struct pp_str room;          /* join, leave, send, history: canonical lower-case UUID */
    bool has_since;              /* join: since given */
    int64_t since;               /* join: last seq the client has (>= 0) */
    struct pp_str client_msg_id; /* send: 1..PP_MAX_CLIENT_MSG_ID bytes */
    struct pp_str body;          /* send: 1..limits.max_body bytes */
    bool has_before;             /* history */
    int64_t before;              /* history: seqs < before (>= 1) */
    bool has_after;              /* history */
    int64_t after;               /* history: seqs > after (>= 0) */
    int limit;                   /* history, entries: 1..PP_HISTORY_MAX_LIMIT, default 50 */
    bool has_seq;                /* read, seen, like, unlike, rate, unrate, seen_by */
    int64_t seq;                 /* ... the message (>= 1; read: >= 0) */
    int stars;                   /* rate: 1..5 */
    bool has_parent;             /* send: a reply */
    int64_t parent;              /* send: the entry replied to */
    struct pp_str person;        /* seen_entries: optional uuid (default: me) */
    bool by_rating;              /* entries: sort "rating" (default "newest") */
    int offset;                  /* entries: 0..10000 */
    struct pp_str reason;        /* moderation: optional, 1..500 characters */
    int64_t pending;             /* approve, reject: the pending message id (>= 1) */
    int64_t duration_s;          /* mute: 1..31536000 seconds */
    bool has_locked, locked;     /* room_settings */
    bool has_slow_mode;          /* room_settings */
    int slow_mode_s;             /* ... 0..86400 (0: off) */
    void *tree;                  /* owned parse tree (cJSON *) */
};

/* Why a decode failed: the code, a human message naming the field, and the
 * command id when it could be read (so the error reply can carry it). */
struct pp_err {
    enum pp_err_code code;
    int64_t id;        /* 0 when unknown: the reply then carries "id":null */
    char message[128]; /* NUL-terminated, never contains input bytes beyond a field name */
};

/* Decodes one client frame (exactly one JSON object). Strict: unknown fields,
 * duplicate keys, wrong types, out-of-range numbers are refused. Returns 0 and
 * fills *out (free with pp_cmd_free) or returns -1 and fills *err (nothing to free). */
int pp_decode(const char *buf, size_t len, const struct pp_limits *lim, struct pp_cmd *out,
              struct pp_err *err);
void pp_cmd_free(struct pp_cmd *cmd);

/* cJSON's allocator. cJSON answers NULL both for text that is not JSON and
 * for want of memory; to tell them apart, this installs hooks that call
 * alloc and release and count the allocations that failed. pp_decode then
 * answers a frame it could not parse for want of memory with PP_E_INTERNAL
 * ("out of memory"), not bad_json. Call once, before anything parses. */
void pp_set_allocator(void *(*alloc)(size_t), void (*release)(void *));
/* Allocations through that allocator that failed so far: a parse that
 * returned NULL while this moved failed for want of memory. */
unsigned long pp_alloc_failures(void);

const char *pp_err_name(enum pp_err_code code); /* "bad_json", ...; "internal" if out of range */
const char *pp_op_name(enum pp_op op);          /* "auth", ...; "?" if out of range */
bool pp_uuid_valid(const char *s, size_t len);  /* canonical lower-case 8-4-4-4-12 */
/* Whether a JSON text holds U+0000 in a string (a key or a value), escaped
 * as \u0000 or as a raw byte; an escaped backslash before "u0000" is not
 * one. Both the decoder and the HTTP API refuse such input. */
bool pp_json_has_nul(const char *buf, size_t len);
/* The characters (code points) of n bytes of valid UTF-8: what a text
 * field's length is counted in, here, in the HTTP API and in the tables. */
size_t pp_utf8_chars(const char *s, size_t n);

/*
 * JSON writer into a caller buffer. Every call appends; on overflow the
 * writer sets overflow and stops writing, so callers check once at the end.
 * Commas between members/elements are inserted automatically.
 */
struct pp_w {
    char *buf;           /* caller-owned output buffer */
    size_t cap;          /* its size */
    size_t len;          /* bytes written so far */
    bool overflow;       /* a write did not fit; the content is unusable */
    int depth;           /* nesting depth, for comma bookkeeping */
    uint32_t need_comma; /* bit d set: the next item at depth d needs a comma */
    bool after_key;      /* a key was just written; its value needs no comma */
};

void pp_w_init(struct pp_w *w, char *buf, size_t cap);
void pp_w_obj_begin(struct pp_w *w);
void pp_w_obj_end(struct pp_w *w);
void pp_w_arr_begin(struct pp_w *w);
void pp_w_arr_end(struct pp_w *w);
void pp_w_key(struct pp_w *w, const char *key);           /* key is a trusted ASCII literal */
void pp_w_str(struct pp_w *w, const char *s, size_t len); /* escapes per RFC 8259 */
void pp_w_cstr(struct pp_w *w, const char *s);
void pp_w_int(struct pp_w *w, int64_t v);
void pp_w_bool(struct pp_w *w, bool v);
void pp_w_null(struct pp_w *w);
void pp_w_raw(struct pp_w *w, const char *json, size_t len); /* already-encoded JSON value */
/* Returns the length written, or -1 on overflow. */
int pp_w_finish(struct pp_w *w);

/* What a row of a room's log is: a message (chat), an entry or a reply
 * (dialogue), or an event recording a change of votes or of read state. */
enum pp_kind {
    PP_K_MESSAGE,
    PP_K_ENTRY,
    PP_K_REPLY,
    PP_K_VOTES,   /* event: a message's likes or stars changed */
    PP_K_READ,    /* event: a person's read watermark moved */
    PP_K_DELETE,  /* event: a message was deleted (its row is a stub now) */
    PP_K_EDIT,    /* event: a message was edited */
    PP_K_SETTINGS /* event: the room was locked or unlocked, slow mode changed */
};
#define PP_K_LAST PP_K_SETTINGS
/* An event rather than something a person wrote. */
#define PP_KIND_IS_EVENT(k) ((k) >= PP_K_VOTES)

/* A stored chat message as pushed to clients. */
struct pp_message {
    const char *room;          /* uuid */
    int64_t seq;               /* room sequence number, >= 1 */
    const char *sender;        /* uuid of the person */
    const char *client_msg_id; /* as the sender chose it */
    size_t client_msg_id_len;
    const char *body; /* UTF-8 */
    size_t body_len;
    int64_t ts;        /* milliseconds since the Unix epoch, server time at commit */
    bool avatar;       /* the sender is an avatar (bot): encoded as "avatar":true, else omitted */
    enum pp_kind kind; /* message, entry, reply; votes and read are events */
    int64_t parent;    /* reply: the entry's seq */
    /* Events: the event's fields as a server-made JSON object ("{...}"), in
     * body/body_len; the push is named after the kind. */
    bool has_votes;   /* the aggregates below are known (history, replay) */
    int64_t likes;    /* chat: likes */
    int64_t stars;    /* dialogue: number of ratings */
    int64_t star_sum; /* dialogue: their sum (star_avg = star_sum / stars) */
    int64_t votes_v;  /* version of the aggregates: higher is newer */
    bool deleted;     /* a stub: the body is gone ("deleted":true) */
    int64_t edited;   /* ms of the last edit, 0 if never ("edited":ms) */
};

const char *pp_kind_name(enum pp_kind k);

/*
 * Client side (tests, load generator): splits one server frame, which is either
 * one JSON object or a JSON array of objects, and calls fn once per object in
 * order. Returns the number of objects, or -1 if the frame is not valid.
 * The cJSON item passed to fn is owned by the call and freed after fn returns.
 */
typedef void (*pp_each_fn)(void *ud, const void *cjson_item);
int pp_split_server_frame(const char *buf, size_t len, pp_each_fn fn, void *ud);

/* The typed encoders of every reply and push: every user of the protocol gets
 * them with this header. */
#include "parley_encode.h"

#endif
