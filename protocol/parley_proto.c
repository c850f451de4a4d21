/*
 * parley_proto.c - strict decoding of client commands and the JSON writer for
 * protocol v1 (see PROTOCOL.md); the encoders are in parley_encode.c.
 */
#include "parley_proto.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

static const char *const err_names[PP_E__COUNT] = {
    [PP_OK] = "ok",
    [PP_E_BAD_JSON] = "bad_json",
    [PP_E_BAD_REQUEST] = "bad_request",
    [PP_E_UNKNOWN_OP] = "unknown_op",
    [PP_E_AUTH_REQUIRED] = "auth_required",
    [PP_E_AUTH_FAILED] = "auth_failed",
    [PP_E_ALREADY_AUTHENTICATED] = "already_authenticated",
    [PP_E_ROOM_NOT_FOUND] = "room_not_found",
    [PP_E_FORBIDDEN] = "forbidden",
    [PP_E_NOT_JOINED] = "not_joined",
    [PP_E_ALREADY_JOINED] = "already_joined",
    [PP_E_TOO_MANY_ROOMS] = "too_many_rooms",
    [PP_E_BODY_TOO_LONG] = "body_too_long",
    [PP_E_UNAVAILABLE] = "unavailable",
    [PP_E_BUSY] = "busy",
    [PP_E_INTERNAL] = "internal",
    [PP_E_NO_SUCH_MESSAGE] = "no_such_message",
    [PP_E_LIKES_NOT_ALLOWED] = "likes_not_allowed",
    [PP_E_RATINGS_NOT_ALLOWED] = "ratings_not_allowed",
    [PP_E_STARS_OUT_OF_RANGE] = "stars_out_of_range",
    [PP_E_BAD_PARENT] = "bad_parent",
    [PP_E_GUIDELINE] = "guideline_violation",
    [PP_E_MUTED] = "muted",
    [PP_E_ROOM_LOCKED] = "room_locked",
    [PP_E_SLOW_MODE] = "slow_mode",
    [PP_E_EDIT_WINDOW] = "edit_window_closed",
    [PP_E_NO_SUCH_PENDING] = "no_such_pending",
    [PP_E_ROOM_ARCHIVED] = "room_archived",
};

const char *pp_err_name(enum pp_err_code code)
{
    return (unsigned)code < PP_E__COUNT && err_names[code] ? err_names[code] : "internal";
}

static const char *const op_names[] = {
    [PP_OP_AUTH] = "auth",
    [PP_OP_JOIN] = "join",
    [PP_OP_LEAVE] = "leave",
    [PP_OP_SEND] = "send",
    [PP_OP_HISTORY] = "history",
    [PP_OP_PING] = "ping",
    [PP_OP_READ] = "read",
    [PP_OP_SEEN] = "seen",
    [PP_OP_LIKE] = "like",
    [PP_OP_UNLIKE] = "unlike",
    [PP_OP_RATE] = "rate",
    [PP_OP_UNRATE] = "unrate",
    [PP_OP_UNREAD] = "unread",
    [PP_OP_SEEN_BY] = "seen_by",
    [PP_OP_SEEN_ENTRIES] = "seen_entries",
    [PP_OP_ENTRIES] = "entries",
    [PP_OP_MY_VOTES] = "my_votes",
    [PP_OP_TYPING] = "typing",
    [PP_OP_DELETE] = "delete",
    [PP_OP_EDIT] = "edit",
    [PP_OP_PENDING] = "pending",
    [PP_OP_APPROVE] = "approve",
    [PP_OP_REJECT] = "reject",
    [PP_OP_MUTE] = "mute",
    [PP_OP_UNMUTE] = "unmute",
    [PP_OP_REMOVE] = "remove",
    [PP_OP_ROOM_SETTINGS] = "room_settings",
};
#define NOPS (sizeof op_names / sizeof op_names[0])

const char *pp_op_name(enum pp_op op)
{
    return (unsigned)op < NOPS && op_names[op] ? op_names[op] : "?";
}

bool pp_uuid_valid(const char *s, size_t len)
{
    if (!s || len != PP_UUID_LEN) return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-') return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

/* ---- decoding ----------------------------------------------------------- */

static int fail(struct pp_err *err, enum pp_err_code code, const char *fmt, const char *field)
{
    err->code = code;
    snprintf(err->message, sizeof err->message, fmt, field ? field : "");
    return -1;
}

/* An integral JSON number within [min, max]. */
static bool get_int(const cJSON *it, int64_t min, int64_t max, int64_t *out)
{
    if (!cJSON_IsNumber(it)) return false;
    double d = it->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < (double)min || d > (double)max) return false;
    *out = (int64_t)d;
    return true;
}

/* Which fields each op accepts (besides id and op). */
enum field {
    F_TOKEN = 1 << 0,
    F_WORKSPACE = 1 << 1,
    F_ROOM = 1 << 2,
    F_SINCE = 1 << 3,
    F_CMID = 1 << 4,
    F_BODY = 1 << 5,
    F_BEFORE = 1 << 6,
    F_AFTER = 1 << 7,
    F_LIMIT = 1 << 8,
    F_SEQ = 1 << 9,
    F_STARS = 1 << 10,
    F_PARENT = 1 << 11,
    F_PERSON = 1 << 12,
    F_SORT = 1 << 13,
    F_OFFSET = 1 << 14,
    F_REASON = 1 << 15,
    F_PENDING = 1 << 16,
    F_DURATION = 1 << 17,
    F_LOCKED = 1 << 18,
    F_SLOW = 1 << 19,
};

static const struct {
    const char *name; /* JSON key */
    enum field f;     /* bit */
} fields[] = {
    {"token", F_TOKEN},   {"workspace", F_WORKSPACE}, {"room", F_ROOM},
    {"since", F_SINCE},   {"client_msg_id", F_CMID},  {"body", F_BODY},
    {"before", F_BEFORE}, {"after", F_AFTER},         {"limit", F_LIMIT},
    {"seq", F_SEQ},       {"stars", F_STARS},         {"parent", F_PARENT},
    {"person", F_PERSON}, {"sort", F_SORT},           {"offset", F_OFFSET},
    {"reason", F_REASON}, {"pending", F_PENDING},     {"duration_s", F_DURATION},
    {"locked", F_LOCKED}, {"slow_mode_s", F_SLOW},
};

static const unsigned allowed[] = {
    [PP_OP_AUTH] = F_TOKEN | F_WORKSPACE,
    [PP_OP_JOIN] = F_ROOM | F_SINCE,
    [PP_OP_LEAVE] = F_ROOM,
    [PP_OP_SEND] = F_ROOM | F_CMID | F_BODY | F_PARENT,
    [PP_OP_HISTORY] = F_ROOM | F_BEFORE | F_AFTER | F_LIMIT,
    [PP_OP_PING] = 0,
    [PP_OP_READ] = F_ROOM | F_SEQ,
    [PP_OP_SEEN] = F_ROOM | F_SEQ,
    [PP_OP_LIKE] = F_ROOM | F_SEQ,
    [PP_OP_UNLIKE] = F_ROOM | F_SEQ,
    [PP_OP_RATE] = F_ROOM | F_SEQ | F_STARS,
    [PP_OP_UNRATE] = F_ROOM | F_SEQ,
    [PP_OP_UNREAD] = 0,
    [PP_OP_SEEN_BY] = F_ROOM | F_SEQ,
    [PP_OP_SEEN_ENTRIES] = F_ROOM | F_PERSON,
    [PP_OP_ENTRIES] = F_ROOM | F_SORT | F_LIMIT | F_OFFSET,
    [PP_OP_MY_VOTES] = F_ROOM,
    [PP_OP_TYPING] = F_ROOM,
    [PP_OP_DELETE] = F_ROOM | F_SEQ | F_REASON,
    [PP_OP_EDIT] = F_ROOM | F_SEQ | F_BODY,
    [PP_OP_PENDING] = F_ROOM,
    [PP_OP_APPROVE] = F_ROOM | F_PENDING | F_REASON,
    [PP_OP_REJECT] = F_ROOM | F_PENDING | F_REASON,
    [PP_OP_MUTE] = F_ROOM | F_PERSON | F_DURATION | F_REASON,
    [PP_OP_UNMUTE] = F_ROOM | F_PERSON | F_REASON,
    [PP_OP_REMOVE] = F_ROOM | F_PERSON | F_REASON,
    [PP_OP_ROOM_SETTINGS] = F_ROOM | F_LOCKED | F_SLOW | F_REASON,
};

/* cJSON keeps strings as C strings, so a string with a NUL would silently
 * end there: it must be refused before anything reads the parse tree. */
bool pp_json_has_nul(const char *buf, size_t len)
{
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char ch = buf[i];
        if (ch == '\0') return true;
        if (!in_str) {
            in_str = ch == '"';
        } else if (ch == '"') {
            in_str = false;
        } else if (ch == '\\' && i + 1 < len) {
            i++; /* the escaped character is never a quote that ends the string */
            if (buf[i] == 'u' && i + 4 < len && !memcmp(buf + i + 1, "0000", 4)) return true;
        }
    }
    return false;
}

/* The character rule for strings (PROTOCOL.md, section 2, the HTTP API's
 * too): no C0 control character and no DEL, except that text written by
 * people (a message body) may hold tab, line feed and carriage return. */
static bool text_ok(const char *s, size_t n, bool multiline)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == 0x7f) return false;
        if (ch < 0x20 && !(multiline && (ch == '\t' || ch == '\n' || ch == '\r'))) return false;
    }
    return true;
}

size_t pp_utf8_chars(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

static bool str_field(const cJSON *it, size_t min, size_t max, struct pp_str *out)
{
    if (!cJSON_IsString(it)) return false;
    size_t n = strlen(it->valuestring);
    if (n < min || n > max) return false;
    if (!text_ok(it->valuestring, n, false)) return false;
    out->str = it->valuestring;
    out->len = n;
    return true;
}

static int decode_fields(const cJSON *root, const struct pp_limits *lim, struct pp_cmd *c,
                         struct pp_err *err)
{
    unsigned seen = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!strcmp(it->string, "id") || !strcmp(it->string, "op")) continue;
        unsigned f = 0;
        for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
            if (!strcmp(it->string, fields[i].name)) f = fields[i].f;
        if (!f || !(allowed[c->op] & f))
            return fail(err, PP_E_BAD_REQUEST, "%s: unknown field for this op", it->string);
        seen |= f;
        const char *name = it->string;
        bool ok = true;
        switch ((enum field)f) {
        case F_TOKEN:
            ok = str_field(it, 1, PP_MAX_TOKEN, &c->token);
            break;
        case F_WORKSPACE:
            ok = cJSON_IsString(it) && pp_uuid_valid(it->valuestring, strlen(it->valuestring));
            if (ok) str_field(it, 0, PP_UUID_LEN, &c->workspace);
            break;
        case F_ROOM:
            ok = cJSON_IsString(it) && pp_uuid_valid(it->valuestring, strlen(it->valuestring));
            if (ok) str_field(it, 0, PP_UUID_LEN, &c->room);
            break;
        case F_SINCE:
            ok = c->has_since = get_int(it, 0, PP_MAX_ID, &c->since);
            break;
        case F_CMID:
            ok = str_field(it, 1, PP_MAX_CLIENT_MSG_ID, &c->client_msg_id);
            break;
        case F_BODY:
            if (!cJSON_IsString(it)) {
                ok = false;
                break;
            }
            if (strlen(it->valuestring) > lim->max_body)
                return fail(err, PP_E_BODY_TOO_LONG, "body: longer than the limit%s", "");
            if (!text_ok(it->valuestring, strlen(it->valuestring), true))
                return fail(err, PP_E_BAD_REQUEST,
                            "%s: control characters other than tab, line feed and carriage "
                            "return are not allowed",
                            name);
            ok = strlen(it->valuestring) >= 1;
            c->body.str = it->valuestring;
            c->body.len = strlen(it->valuestring);
            break;
        case F_BEFORE:
            ok = c->has_before = get_int(it, 1, PP_MAX_ID, &c->before);
            break;
        case F_AFTER:
            ok = c->has_after = get_int(it, 0, PP_MAX_ID, &c->after);
            break;
        case F_LIMIT: {
            int64_t l = 0;
            ok = get_int(it, 1, PP_HISTORY_MAX_LIMIT, &l);
            c->limit = (int)l;
            break;
        }
        case F_SEQ:
            /* read may say 0 (nothing read); the others name a message */
            ok = c->has_seq = get_int(it, c->op == PP_OP_READ ? 0 : 1, PP_MAX_ID, &c->seq);
            break;
        case F_STARS: {
            int64_t v = 0;
            if (!cJSON_IsNumber(it) || !get_int(it, INT64_MIN / 2, INT64_MAX / 2, &v)) {
                ok = false;
                break;
            }
            if (v < 1 || v > 5) return fail(err, PP_E_STARS_OUT_OF_RANGE, "stars: 1 to 5%s", "");
            c->stars = (int)v;
            break;
        }
        case F_PARENT:
            ok = c->has_parent = get_int(it, 1, PP_MAX_ID, &c->parent);
            break;
        case F_PERSON:
            ok = cJSON_IsString(it) && pp_uuid_valid(it->valuestring, strlen(it->valuestring));
            if (ok) str_field(it, 0, PP_UUID_LEN, &c->person);
            break;
        case F_SORT:
            ok = cJSON_IsString(it) &&
                 (!strcmp(it->valuestring, "newest") || !strcmp(it->valuestring, "rating"));
            if (ok) c->by_rating = !strcmp(it->valuestring, "rating");
            break;
        case F_OFFSET: {
            int64_t v = 0;
            ok = get_int(it, 0, 10000, &v);
            c->offset = (int)v;
            break;
        }
        case F_REASON: /* 500 characters, as the HTTP API and the table count them */
            ok = str_field(it, 1, 4 * 500, &c->reason) &&
                 pp_utf8_chars(c->reason.str, c->reason.len) <= 500;
            break;
        case F_PENDING:
            ok = get_int(it, 1, PP_MAX_ID, &c->pending);
            break;
        case F_DURATION:
            ok = get_int(it, 1, 31536000, &c->duration_s);
            break;
        case F_LOCKED:
            ok = c->has_locked = cJSON_IsBool(it);
            c->locked = cJSON_IsTrue(it);
            break;
        case F_SLOW: {
            int64_t v = 0;
            ok = c->has_slow_mode = get_int(it, 0, 86400, &v);
            c->slow_mode_s = (int)v;
            break;
        }
        }
        if (!ok)
            return fail(err, PP_E_BAD_REQUEST,
                        cJSON_IsString(it) &&
                                !text_ok(it->valuestring, strlen(it->valuestring), false)
                            ? "%s: control characters are not allowed"
                            : "%s: wrong type or out of range",
                        name);
    }
    /* Required fields per op. */
    unsigned need = 0;
    switch (c->op) {
    case PP_OP_AUTH:
        need = F_TOKEN;
        break;
    case PP_OP_JOIN:
    case PP_OP_LEAVE:
    case PP_OP_HISTORY:
        need = F_ROOM;
        break;
    case PP_OP_SEND:
        need = F_ROOM | F_CMID | F_BODY;
        break;
    case PP_OP_PING:
    case PP_OP_UNREAD:
    case PP_OP_MY_VOTES:
        break;
    case PP_OP_READ:
    case PP_OP_SEEN:
    case PP_OP_LIKE:
    case PP_OP_UNLIKE:
    case PP_OP_UNRATE:
    case PP_OP_SEEN_BY:
        need = F_ROOM | F_SEQ;
        break;
    case PP_OP_RATE:
        need = F_ROOM | F_SEQ | F_STARS;
        break;
    case PP_OP_SEEN_ENTRIES:
    case PP_OP_ENTRIES:
    case PP_OP_TYPING:
    case PP_OP_PENDING:
        need = F_ROOM;
        break;
    case PP_OP_DELETE:
        need = F_ROOM | F_SEQ;
        break;
    case PP_OP_EDIT:
        need = F_ROOM | F_SEQ | F_BODY;
        break;
    case PP_OP_APPROVE:
    case PP_OP_REJECT:
        need = F_ROOM | F_PENDING;
        break;
    case PP_OP_MUTE:
        need = F_PERSON | F_DURATION; /* without room: the whole workspace */
        break;
    case PP_OP_UNMUTE:
        need = F_PERSON;
        break;
    case PP_OP_REMOVE:
        need = F_ROOM | F_PERSON;
        break;
    case PP_OP_ROOM_SETTINGS:
        need = F_ROOM;
        break;
    }
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if ((need & fields[i].f) && !(seen & fields[i].f))
            return fail(err, PP_E_BAD_REQUEST, "%s: required", fields[i].name);
    if (c->op == PP_OP_ROOM_SETTINGS && !c->has_locked && !c->has_slow_mode)
        return fail(err, PP_E_BAD_REQUEST, "%s: give locked or slow_mode_s", "locked");
    if (c->has_before && c->has_after)
        return fail(err, PP_E_BAD_REQUEST, "%s: give before or after, not both", "before");
    if ((c->op == PP_OP_HISTORY || c->op == PP_OP_ENTRIES) && !c->limit)
        c->limit = PP_HISTORY_DEFAULT_LIMIT;
    return 0;
}

static void *(*user_alloc)(size_t);
static unsigned long alloc_failures;

static void *counted_alloc(size_t n)
{
    void *p = user_alloc(n);
    if (!p) alloc_failures++;
    return p;
}

void pp_set_allocator(void *(*alloc)(size_t), void (*release)(void *))
{
    user_alloc = alloc;
    cJSON_Hooks h = {.malloc_fn = counted_alloc, .free_fn = release};
    cJSON_InitHooks(&h);
}

unsigned long pp_alloc_failures(void)
{
    return alloc_failures;
}

int pp_decode(const char *buf, size_t len, const struct pp_limits *lim, struct pp_cmd *out,
              struct pp_err *err)
{
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    const char *end = NULL;
    unsigned long failures = alloc_failures;
    cJSON *root = len ? cJSON_ParseWithLengthOpts(buf, len, &end, false) : NULL;
    if (!root && alloc_failures != failures) return fail(err, PP_E_INTERNAL, "out of memory%s", "");
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fail(err, PP_E_BAD_JSON, "not a JSON object%s", "");
    }
    /* Nothing but white space may follow the object. */
    for (const char *p = end; p && p < buf + len; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') {
            cJSON_Delete(root);
            return fail(err, PP_E_BAD_JSON, "trailing data after the object%s", "");
        }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON *op = cJSON_GetObjectItemCaseSensitive(root, "op");
    int64_t idv = 0;
    if (!id || !get_int(id, 1, PP_MAX_ID, &idv)) {
        cJSON_Delete(root);
        return fail(err, PP_E_BAD_REQUEST, "id: %s",
                    id ? "must be an integer 1..2^53-1" : "required");
    }
    if (pp_json_has_nul(buf, len)) {
        cJSON_Delete(root);
        err->id = idv;
        return fail(err, PP_E_BAD_REQUEST, "strings may not contain U+0000%s", "");
    }
    /* Duplicate keys are refused: which one wins would be a guess. The id is
     * echoed unless it is the duplicated key. */
    for (const cJSON *a = root->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (!strcmp(a->string, b->string)) {
                if (strcmp(a->string, "id")) err->id = idv;
                fail(err, PP_E_BAD_REQUEST, "%s: duplicate key", a->string);
                cJSON_Delete(root);
                return -1;
            }
    err->id = idv;
    if (!cJSON_IsString(op)) {
        cJSON_Delete(root);
        return fail(err, PP_E_BAD_REQUEST, "op: %s", op ? "must be a string" : "required");
    }
    enum pp_op o = 0;
    for (unsigned i = 1; i < NOPS; i++)
        if (op_names[i] && !strcmp(op->valuestring, op_names[i])) o = (enum pp_op)i;
    if (!o) {
        cJSON_Delete(root);
        return fail(err, PP_E_UNKNOWN_OP, "unknown op%s", "");
    }
    out->id = idv;
    out->op = o;
    out->tree = root;
    if (decode_fields(root, lim, out, err)) {
        pp_cmd_free(out);
        err->id = idv;
        return -1;
    }
    return 0;
}

void pp_cmd_free(struct pp_cmd *cmd)
{
    if (!cmd) return;
    cJSON_Delete(cmd->tree);
    cmd->tree = NULL;
}

/* ---- writer ------------------------------------------------------------- */

void pp_w_init(struct pp_w *w, char *buf, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
}

static void put(struct pp_w *w, const char *p, size_t n)
{
    if (w->overflow) return;
    if (n > w->cap - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void putc_(struct pp_w *w, char c)
{
    if (w->overflow) return;
    if (w->len >= w->cap) {
        w->overflow = true;
        return;
    }
    w->buf[w->len++] = c;
}

/* Before any value or key: a comma if a sibling came before. */
static void item(struct pp_w *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    uint32_t bit = 1u << (w->depth & 31);
    if (w->need_comma & bit) putc_(w, ',');
    w->need_comma |= bit;
}

static void open_(struct pp_w *w, char c)
{
    item(w);
    putc_(w, c);
    w->depth++;
    w->need_comma &= ~(1u << (w->depth & 31));
}

static void close_(struct pp_w *w, char c)
{
    w->need_comma &= ~(1u << (w->depth & 31));
    w->depth--;
    putc_(w, c);
}

void pp_w_obj_begin(struct pp_w *w)
{
    open_(w, '{');
}
void pp_w_obj_end(struct pp_w *w)
{
    close_(w, '}');
}
void pp_w_arr_begin(struct pp_w *w)
{
    open_(w, '[');
}
void pp_w_arr_end(struct pp_w *w)
{
    close_(w, ']');
}

static void raw_string(struct pp_w *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    putc_(w, '"');
    size_t run = 0; /* bytes copied in one go between escapes */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        put(w, s + run, i - run);
        run = i + 1;
        char e[6] = {'\\', 0};
        size_t el = 2;
        switch (c) {
        case '"':
            e[1] = '"';
            break;
        case '\\':
            e[1] = '\\';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        case '\b':
            e[1] = 'b';
            break;
        case '\f':
            e[1] = 'f';
            break;
        default:
            e[1] = 'u';
            e[2] = '0';
            e[3] = '0';
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            el = 6;
        }
        put(w, e, el);
    }
    put(w, s + run, n - run);
    putc_(w, '"');
}

void pp_w_key(struct pp_w *w, const char *key)
{
    item(w);
    raw_string(w, key, strlen(key));
    putc_(w, ':');
    w->after_key = true;
}

void pp_w_str(struct pp_w *w, const char *s, size_t len)
{
    item(w);
    raw_string(w, s, len);
}

void pp_w_cstr(struct pp_w *w, const char *s)
{
    pp_w_str(w, s, strlen(s));
}

void pp_w_int(struct pp_w *w, int64_t v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", (long long)v);
    item(w);
    put(w, b, (size_t)n);
}

void pp_w_bool(struct pp_w *w, bool v)
{
    item(w);
    if (v)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void pp_w_null(struct pp_w *w)
{
    item(w);
    put(w, "null", 4);
}

void pp_w_raw(struct pp_w *w, const char *json, size_t len)
{
    item(w);
    put(w, json, len);
}

int pp_w_finish(struct pp_w *w)
{
    return w->overflow || w->len > (size_t)0x7fffffff ? -1 : (int)w->len;
}

/* ---- encoders ----------------------------------------------------------- */

const char *pp_kind_name(enum pp_kind k)
{
    static const char *const names[] = {"message", "entry",  "reply", "votes",
                                        "read",    "delete", "edit",  "settings"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "message";
}

/* ---- client side -------------------------------------------------------- */

int pp_split_server_frame(const char *buf, size_t len, pp_each_fn fn, void *ud)
{
    cJSON *root = len ? cJSON_ParseWithLength(buf, len) : NULL;
    if (!root) return -1;
    int n = 0;
    if (cJSON_IsObject(root)) {
        fn(ud, root);
        n = 1;
    } else if (cJSON_IsArray(root)) {
        for (const cJSON *it = root->child; it; it = it->next)
            if (!cJSON_IsObject(it)) {
                cJSON_Delete(root);
                return -1;
            }
        for (const cJSON *it = root->child; it; it = it->next, n++)
            fn(ud, it);
    } else {
        n = -1;
    }
    cJSON_Delete(root);
    return n;
}
