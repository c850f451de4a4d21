/*
 * parley_encode.c - the replies and pushes of protocol v1, one encoder per
 * shape (see parley_encode.h and PROTOCOL.md). The field order written here is
 * the order clients have always seen: keep it (the tests compare bytes).
 */
#include "parley_encode.h"

#include <stdio.h>
#include <string.h>

/* An id: its first PP_UUID_LEN bytes (callers hold ids in buffers that are
 * not always terminated right after them). */
static void w_uuid(struct pp_w *w, const char *s)
{
    pp_w_str(w, s, strnlen(s, PP_UUID_LEN));
}

static void kv_uuid(struct pp_w *w, const char *key, const char *s)
{
    pp_w_key(w, key);
    w_uuid(w, s);
}

static void kv_int(struct pp_w *w, const char *key, int64_t v)
{
    pp_w_key(w, key);
    pp_w_int(w, v);
}

static void kv_bool(struct pp_w *w, const char *key, bool v)
{
    pp_w_key(w, key);
    pp_w_bool(w, v);
}

static void kv_cstr(struct pp_w *w, const char *key, const char *s)
{
    pp_w_key(w, key);
    pp_w_cstr(w, s);
}

/* A star average with two decimals, as a JSON number (0.00 when unrated):
 * the same text the message encoder gives, so clients compare them. */
static void kv_star_avg(struct pp_w *w, int64_t stars, int64_t sum)
{
    char avg[24];
    int n = snprintf(avg, sizeof avg, "%.2f", stars ? (double)sum / (double)stars : 0.0);
    pp_w_key(w, "star_avg");
    pp_w_raw(w, avg, (size_t)n);
}

/* The aggregates, as a dialogue entry (stars) or a chat message (likes)
 * shows them, with their version: one shape for messages, vote acks and
 * votes events. */
static void kv_votes(struct pp_w *w, bool dialogue, int64_t likes, int64_t stars, int64_t star_sum,
                     int64_t v)
{
    if (dialogue) {
        kv_int(w, "stars", stars);
        kv_star_avg(w, stars, star_sum);
    } else {
        kv_int(w, "likes", likes);
    }
    kv_int(w, "v", v);
}

/* ---- messages, members, errors and the ok envelope ------------------------ */

void pp_w_message_fields(struct pp_w *w, const struct pp_message *m)
{
    pp_w_key(w, "seq");
    pp_w_int(w, m->seq);
    pp_w_key(w, "sender");
    pp_w_cstr(w, m->sender);
    pp_w_key(w, "client_msg_id");
    pp_w_str(w, m->client_msg_id, m->client_msg_id_len);
    pp_w_key(w, "body");
    pp_w_str(w, m->body, m->body_len);
    pp_w_key(w, "ts");
    pp_w_int(w, m->ts);
    if (m->avatar) {
        pp_w_key(w, "avatar");
        pp_w_bool(w, true);
    }
    if (m->kind != PP_K_MESSAGE) {
        pp_w_key(w, "kind");
        pp_w_cstr(w, pp_kind_name(m->kind));
    }
    if (m->kind == PP_K_REPLY) {
        pp_w_key(w, "parent");
        pp_w_int(w, m->parent);
    }
    if (m->deleted) {
        pp_w_key(w, "deleted");
        pp_w_bool(w, true);
    }
    if (m->edited) {
        pp_w_key(w, "edited");
        pp_w_int(w, m->edited);
    }
    if (m->has_votes)
        kv_votes(w, m->kind != PP_K_MESSAGE, m->likes, m->stars, m->star_sum, m->votes_v);
}

void pp_w_message(struct pp_w *w, const struct pp_message *m)
{
    pp_w_obj_begin(w);
    if (PP_KIND_IS_EVENT(m->kind)) {
        /* An event: its own fields, made by the server, follow the header. */
        pp_w_key(w, "push");
        pp_w_cstr(w, pp_kind_name(m->kind));
        pp_w_key(w, "room");
        pp_w_cstr(w, m->room);
        pp_w_key(w, "seq");
        pp_w_int(w, m->seq);
        pp_w_key(w, "ts");
        pp_w_int(w, m->ts);
        /* item() puts the comma before the raw fields */
        if (m->body_len > 2 && m->body[0] == '{' && m->body[m->body_len - 1] == '}')
            pp_w_raw(w, m->body + 1, m->body_len - 2);
        pp_w_obj_end(w);
        return;
    }
    pp_w_key(w, "push");
    pp_w_str(w, "message", 7);
    pp_w_key(w, "room");
    pp_w_cstr(w, m->room);
    pp_w_message_fields(w, m);
    pp_w_obj_end(w);
}

int pp_encode_message(char *buf, size_t cap, const struct pp_message *m)
{
    struct pp_w w;
    pp_w_init(&w, buf, cap);
    pp_w_message(&w, m);
    return pp_w_finish(&w);
}

int pp_encode_member(char *buf, size_t cap, const char *room, const char *person, bool joined)
{
    struct pp_w w;
    pp_w_init(&w, buf, cap);
    pp_w_obj_begin(&w);
    pp_w_key(&w, "push");
    pp_w_cstr(&w, "member");
    pp_w_key(&w, "room");
    pp_w_cstr(&w, room);
    pp_w_key(&w, "person");
    pp_w_cstr(&w, person);
    pp_w_key(&w, "event");
    pp_w_cstr(&w, joined ? "joined" : "left");
    pp_w_obj_end(&w);
    return pp_w_finish(&w);
}

static void w_id(struct pp_w *w, int64_t id)
{
    pp_w_key(w, "id");
    if (id > 0)
        pp_w_int(w, id);
    else
        pp_w_null(w);
}

int pp_encode_error(char *buf, size_t cap, int64_t id, enum pp_err_code code, const char *message)
{
    return pp_encode_error_retry(buf, cap, id, code, message, -1);
}

int pp_encode_error_retry(char *buf, size_t cap, int64_t id, enum pp_err_code code,
                          const char *message, int64_t retry_after_ms)
{
    struct pp_w w;
    pp_w_init(&w, buf, cap);
    pp_w_obj_begin(&w);
    w_id(&w, id);
    pp_w_key(&w, "error");
    pp_w_obj_begin(&w);
    pp_w_key(&w, "code");
    pp_w_cstr(&w, pp_err_name(code));
    pp_w_key(&w, "message");
    pp_w_cstr(&w, message ? message : "");
    if (retry_after_ms >= 0) {
        pp_w_key(&w, "retry_after_ms");
        pp_w_int(&w, retry_after_ms);
    }
    pp_w_obj_end(&w);
    pp_w_obj_end(&w);
    return pp_w_finish(&w);
}

int pp_encode_ok(char *buf, size_t cap, int64_t id, const char *result_json, size_t result_len)
{
    struct pp_w w;
    pp_w_init(&w, buf, cap);
    pp_w_obj_begin(&w);
    w_id(&w, id);
    pp_w_key(&w, "ok");
    if (result_json && result_len)
        pp_w_raw(&w, result_json, result_len);
    else
        pp_w_raw(&w, "{}", 2);
    pp_w_obj_end(&w);
    return pp_w_finish(&w);
}

/* ---- replies ------------------------------------------------------------- */

void pp_enc_auth_ok(struct pp_w *w, const char *person, const char *workspace, const char *role)
{
    pp_w_obj_begin(w);
    kv_uuid(w, "person", person);
    kv_uuid(w, "workspace", workspace);
    kv_cstr(w, "role", role);
    pp_w_obj_end(w);
}

void pp_enc_join_ok(struct pp_w *w, const char *room, int64_t last_seq, bool has_recovered,
                    bool recovered)
{
    pp_w_obj_begin(w);
    kv_uuid(w, "room", room);
    kv_int(w, "last_seq", last_seq);
    if (has_recovered) kv_bool(w, "recovered", recovered);
    pp_w_obj_end(w);
}

void pp_enc_leave_ok(struct pp_w *w, const char *room)
{
    pp_w_obj_begin(w);
    kv_uuid(w, "room", room);
    pp_w_obj_end(w);
}

void pp_enc_ping_ok(struct pp_w *w, int64_t ts)
{
    pp_w_obj_begin(w);
    kv_int(w, "ts", ts);
    pp_w_obj_end(w);
}

void pp_enc_typing_ok(struct pp_w *w, bool sent)
{
    pp_w_obj_begin(w);
    kv_bool(w, "sent", sent);
    pp_w_obj_end(w);
}

void pp_enc_send_ok(struct pp_w *w, const char *room, int64_t seq, int64_t ts, bool duplicate,
                    enum pp_kind kind)
{
    pp_w_obj_begin(w);
    kv_uuid(w, "room", room);
    kv_int(w, "seq", seq);
    kv_int(w, "ts", ts);
    kv_bool(w, "duplicate", duplicate);
    if (kind != PP_K_MESSAGE) kv_cstr(w, "kind", pp_kind_name(kind));
    pp_w_obj_end(w);
}

void pp_enc_kept_ok(struct pp_w *w, const char *room, int64_t pending, const char *state,
                    int64_t ts, bool duplicate)
{
    pp_w_obj_begin(w);
    kv_uuid(w, "room", room);
    kv_int(w, "pending", pending);
    kv_cstr(w, "state", state);
    kv_int(w, "ts", ts);
    kv_bool(w, "duplicate", duplicate);
    pp_w_obj_end(w);
}

void pp_enc_receipt_ok(struct pp_w *w, const struct pp_receipt_ok *r)
{
    pp_w_obj_begin(w);
    kv_uuid(w, "room", r->room);
    kv_int(w, r->read ? "up_to" : "seq", r->seq);
    if (r->has_votes) kv_votes(w, r->dialogue, r->likes, r->stars, r->star_sum, r->v);
    pp_w_obj_end(w);
}

void pp_enc_page_begin(struct pp_w *w, int64_t id, const char *room, bool entries)
{
    pp_w_obj_begin(w);
    kv_int(w, "id", id);
    pp_w_key(w, "ok");
    pp_w_obj_begin(w);
    kv_uuid(w, "room", room);
    pp_w_key(w, entries ? "entries" : "messages");
    pp_w_arr_begin(w);
}

void pp_enc_page_item(struct pp_w *w, const struct pp_message *m, int64_t replies)
{
    pp_w_obj_begin(w);
    pp_w_message_fields(w, m);
    if (replies >= 0) kv_int(w, "replies", replies);
    pp_w_obj_end(w);
}

void pp_enc_page_end(struct pp_w *w, bool has_more)
{
    pp_w_arr_end(w);
    kv_bool(w, "has_more", has_more);
    pp_w_obj_end(w);
    pp_w_obj_end(w);
}

/* ---- pushes -------------------------------------------------------------- */

static void push_begin(struct pp_w *w, const char *name)
{
    pp_w_obj_begin(w);
    kv_cstr(w, "push", name);
}

void pp_enc_hello(struct pp_w *w, const char *server, int64_t max_frame, int64_t max_body,
                  int64_t auth_timeout_ms)
{
    push_begin(w, "hello");
    kv_cstr(w, "protocol", PP_PROTOCOL_NAME);
    kv_cstr(w, "server", server);
    kv_int(w, "max_frame", max_frame);
    kv_int(w, "max_body", max_body);
    kv_int(w, "auth_timeout_ms", auth_timeout_ms);
    pp_w_obj_end(w);
}

void pp_enc_typing(struct pp_w *w, const char *room, const char *person)
{
    push_begin(w, "typing");
    kv_uuid(w, "room", room);
    kv_uuid(w, "person", person);
    pp_w_obj_end(w);
}

void pp_enc_removed(struct pp_w *w, const char *room, const char *reason)
{
    push_begin(w, "removed");
    kv_uuid(w, "room", room);
    kv_cstr(w, "reason", reason);
    pp_w_obj_end(w);
}

void pp_enc_flagged(struct pp_w *w, const char *room, const char *sender, const char *cmid,
                    size_t cmid_len, int64_t seq, const char *const *rules, int nrules)
{
    push_begin(w, "flagged");
    kv_uuid(w, "room", room);
    kv_uuid(w, "sender", sender);
    pp_w_key(w, "client_msg_id");
    pp_w_str(w, cmid, cmid_len);
    if (seq > 0) kv_int(w, "seq", seq);
    pp_w_key(w, "rules");
    pp_w_arr_begin(w);
    for (int i = 0; i < nrules; i++)
        pp_w_cstr(w, rules[i]);
    pp_w_arr_end(w);
    pp_w_obj_end(w);
}

void pp_enc_presence_begin(struct pp_w *w, const char *room, int64_t count)
{
    push_begin(w, "presence");
    kv_uuid(w, "room", room);
    kv_int(w, "count", count);
}

void pp_enc_presence_list(struct pp_w *w, enum pp_presence_list which)
{
    pp_w_key(w, which == PP_PRES_JOINED ? "joined" : which == PP_PRES_LEFT ? "left" : "online");
    pp_w_arr_begin(w);
}

void pp_enc_presence_person(struct pp_w *w, const char *person, bool avatar)
{
    pp_w_obj_begin(w);
    kv_uuid(w, "person", person);
    kv_bool(w, "avatar", avatar);
    pp_w_obj_end(w);
}

void pp_enc_presence_list_end(struct pp_w *w)
{
    pp_w_arr_end(w);
}

void pp_enc_presence_end(struct pp_w *w)
{
    pp_w_obj_end(w);
}

/* ---- event fields -------------------------------------------------------- */

void pp_enc_read_event(struct pp_w *w, const char *person, int64_t up_to)
{
    pp_w_obj_begin(w);
    kv_uuid(w, "person", person);
    kv_int(w, "up_to", up_to);
    pp_w_obj_end(w);
}

void pp_enc_votes_event(struct pp_w *w, int64_t target, bool dialogue, int64_t likes, int64_t stars,
                        int64_t star_sum, int64_t v)
{
    pp_w_obj_begin(w);
    kv_int(w, "target", target);
    kv_votes(w, dialogue, likes, stars, star_sum, v);
    pp_w_obj_end(w);
}
