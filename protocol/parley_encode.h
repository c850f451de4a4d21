/*
 * parley_encode.h - typed encoders of the replies and pushes the server sends
 * (PROTOCOL.md sections 2 and 4), one function per shape, so that every field
 * name and the order of the fields live here, next to the decoder, and not at
 * the call sites.
 *
 * Each pp_enc_* encoder appends one JSON value to a writer (struct pp_w,
 * parley_proto.h) the caller initialised over its own buffer; the caller calls
 * pp_w_finish() once and checks for overflow there. The older pp_encode_*
 * functions write a whole frame into a buffer instead. Nothing here allocates
 * or keeps state.
 * A reply encoder (pp_enc_*_ok) writes the object that goes inside "ok"
 * (conn_reply_ok wraps it); a push encoder writes the whole push object.
 *
 * Ids (room, person, sender, workspace) are canonical UUIDs: the encoders
 * write at most their first PP_UUID_LEN bytes, so a caller may pass a buffer
 * that is not NUL-terminated after the id. Other strings are NUL-terminated
 * unless a length is given, and are escaped (RFC 8259).
 */
#ifndef PARLEY_ENCODE_H
#define PARLEY_ENCODE_H

#include "parley_proto.h"

/* ---- messages, members, errors and the ok envelope ------------------------ */

/* Encoders: each returns the number of bytes written into buf, or -1 if it
 * does not fit. The output is one complete JSON object. */
int pp_encode_message(char *buf, size_t cap, const struct pp_message *m);
/* {"push":"member","room":...,"person":...,"event":"joined"|"left"} */
int pp_encode_member(char *buf, size_t cap, const char *room, const char *person, bool joined);
/* {"id":N,"error":{"code":..,"message":..}}; id 0 encodes as null. */
int pp_encode_error(char *buf, size_t cap, int64_t id, enum pp_err_code code, const char *message);
/* The same with "retry_after_ms": M in the error object (busy and
 * unavailable: how long the client should wait, with jitter, before trying
 * again); retry_after_ms < 0 leaves it out. */
int pp_encode_error_retry(char *buf, size_t cap, int64_t id, enum pp_err_code code,
                          const char *message, int64_t retry_after_ms);
/* {"id":N,"ok":<result>} where result_json is an encoded JSON value ("{}" if NULL). */
int pp_encode_ok(char *buf, size_t cap, int64_t id, const char *result_json, size_t result_len);
/* Writes an encoded message object (from pp_encode_message) into w as a value. */
void pp_w_message(struct pp_w *w, const struct pp_message *m);
/* The fields of the same message as an item of a history or entries reply
 * (no push, no room), into an object the caller opened (and closes). */
void pp_w_message_fields(struct pp_w *w, const struct pp_message *m);

/* ---- replies (the value of "ok") ----------------------------------------- */

/* auth: {"person","workspace","role"} */
void pp_enc_auth_ok(struct pp_w *w, const char *person, const char *workspace, const char *role);

/* join: {"room","last_seq"} and "recovered" when the join gave a since. */
void pp_enc_join_ok(struct pp_w *w, const char *room, int64_t last_seq, bool has_recovered,
                    bool recovered);

/* leave: {"room"} */
void pp_enc_leave_ok(struct pp_w *w, const char *room);

/* ping: {"ts"} */
void pp_enc_ping_ok(struct pp_w *w, int64_t ts);

/* typing: {"sent"} */
void pp_enc_typing_ok(struct pp_w *w, bool sent);

/* send, stored: {"room","seq","ts","duplicate"} and "kind" unless a chat
 * message (entries and replies say which they became). */
void pp_enc_send_ok(struct pp_w *w, const char *room, int64_t seq, int64_t ts, bool duplicate,
                    enum pp_kind kind);

/* send, held or shadowed: {"room","pending","state","ts","duplicate"}. */
void pp_enc_kept_ok(struct pp_w *w, const char *room, int64_t pending, const char *state,
                    int64_t ts, bool duplicate);

/* The answer to read, seen, like, unlike, rate and unrate. */
struct pp_receipt_ok {
    const char *room; /* uuid */
    bool read;        /* a read: the watermark is "up_to"; else "seq" */
    int64_t seq;      /* the watermark (read) or the message's seq */
    bool has_votes;   /* the command changed the aggregates: they follow */
    bool dialogue;    /* "stars" and "star_avg" (dialogue), else "likes" (chat) */
    int64_t likes;    /* chat */
    int64_t stars;    /* dialogue: number of ratings */
    int64_t star_sum; /* dialogue: their sum; star_avg = star_sum / stars, 2 decimals */
    int64_t v;        /* version of the aggregates */
};
/* {"room","up_to"|"seq"} then {"likes"|"stars","star_avg"} and "v" */
void pp_enc_receipt_ok(struct pp_w *w, const struct pp_receipt_ok *r);

/*
 * A history or entries page is the whole reply, written in three steps because
 * the caller decides row by row what fits:
 *   {"id":N,"ok":{"room":..,"messages"|"entries":[ items ],"has_more":b}}
 * Each item is a message's fields (pp_w_message_fields) and, for entries,
 * "replies" (pass replies < 0 for none).
 */
void pp_enc_page_begin(struct pp_w *w, int64_t id, const char *room, bool entries);
void pp_enc_page_item(struct pp_w *w, const struct pp_message *m, int64_t replies);
void pp_enc_page_end(struct pp_w *w, bool has_more);

/* ---- pushes -------------------------------------------------------------- */

/* {"push":"hello","protocol":"parley.v1","server","max_frame","max_body",
 *  "auth_timeout_ms"} */
void pp_enc_hello(struct pp_w *w, const char *server, int64_t max_frame, int64_t max_body,
                  int64_t auth_timeout_ms);

/* {"push":"typing","room","person"} */
void pp_enc_typing(struct pp_w *w, const char *room, const char *person);

/* {"push":"removed","room","reason"}; reason is "removed", "not_a_member",
 * "archived" or "deleted". */
void pp_enc_removed(struct pp_w *w, const char *room, const char *reason);

/* {"push":"flagged","room","sender","client_msg_id", "seq" (an edit: seq > 0),
 *  "rules":[rule ids]} */
void pp_enc_flagged(struct pp_w *w, const char *room, const char *sender, const char *cmid,
                    size_t cmid_len, int64_t seq, const char *const *rules, int nrules);

/*
 * A presence push, written in steps because the lists are the difference of
 * two views the caller holds:
 *   {"push":"presence","room","count"[,"joined":[..],"left":[..]|,"online":[..]]}
 * begin; then per list: list, person..., list_end; then end. Lists are left
 * out in rooms over presence-list-max (the caller simply writes none).
 */
enum pp_presence_list { PP_PRES_JOINED, PP_PRES_LEFT, PP_PRES_ONLINE };
void pp_enc_presence_begin(struct pp_w *w, const char *room, int64_t count);
void pp_enc_presence_list(struct pp_w *w, enum pp_presence_list which);
void pp_enc_presence_person(struct pp_w *w, const char *person, bool avatar); /* {person,avatar} */
void pp_enc_presence_list_end(struct pp_w *w);
void pp_enc_presence_end(struct pp_w *w);

/* ---- the fields of sequenced events ---------------------------------------
 * A votes or read event is stored in the room's log as the object of its own
 * fields; pp_w_message puts them after the push header when it is delivered.
 */

/* read: {"person","up_to"} */
void pp_enc_read_event(struct pp_w *w, const char *person, int64_t up_to);
/* votes: {"target","likes","v"} (chat) or {"target","stars","star_avg","v"} */
void pp_enc_votes_event(struct pp_w *w, int64_t target, bool dialogue, int64_t likes, int64_t stars,
                        int64_t star_sum, int64_t v);

#endif
