/* Integration: workspace isolation and the role matrix over real HTTP.
 *
 * The isolation walk takes the route list from `parleyd routes` (so a route
 * added later is walked too) and calls every workspace route as the owner of
 * workspace A with workspace B's ids: nothing of B may leak and nothing of B
 * may change. The matrix test calls one request per permission (and every
 * guidelines, moderation and evaluation route) as each role and checks the
 * answer against the table in protocol/API.md; the WebSocket walk does the
 * same for every op of PROTOCOL.md, the moderation ops among them, and fails
 * when the codec knows an op it does not walk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpc.h"
#include "parley_proto.h"
#include "itest.h"

#define SRC "127.0.3.1"
#define PW "correct horse battery staple"

static int seq;

struct acct {
    char token[64];
    char id[40];
};

static void signup(struct acct *a)
{
    char email[96];
    snprintf(email, sizeof email, "roles-%d-%d@example.com", getpid(), ++seq);
    it_signup(SRC, email, PW, NULL, a->token, a->id);
}

/* POST that must succeed; returns the new object's id (static per call). */
static void create(const char *tok, const char *path, const char *body, char out[40])
{
    struct hres r = http_req(IT.gw[0], NULL, "POST", path, tok, body);
    if (r.status != 201) fprintf(stderr, "POST %s %s -> %d %s\n", path, body, r.status, r.body);
    assert_int_equal(r.status, 201);
    snprintf(out, 40, "%s", hres_str(&r, "id"));
    hres_free(&r);
}

static void join_ws(const char *ws, const char *person, const char *role)
{
    char q[256];
    snprintf(q, sizeof q,
             "INSERT INTO workspace_members (workspace_id, person_id, role)"
             " VALUES ('%s', '%s', '%s') RETURNING 1",
             ws, person, role);
    assert_string_equal(it_sql(q), "1");
}

/* ---- isolation ----------------------------------------------------------- */

struct world {
    struct acct owner, member;
    char ws[40], room[40], invitation[40], avatar[40], token_id[40], held[24];
};

static void build(struct world *w)
{
    char path[160], body[160];
    signup(&w->owner);
    signup(&w->member);
    create(w->owner.token, "/api/v1/workspaces", "{\"name\":\"iso\"}", w->ws);
    join_ws(w->ws, w->member.id, "member");
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/rooms", w->ws);
    snprintf(body, sizeof body,
             "{\"name\":\"secret\",\"visibility\":\"members\",\"members\":[\"%s\"]}", w->owner.id);
    create(w->owner.token, path, body, w->room);
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/invitations", w->ws);
    snprintf(body, sizeof body, "{\"email\":\"iso-%d-%d@example.com\"}", getpid(), ++seq);
    create(w->owner.token, path, body, w->invitation);
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/avatars", w->ws);
    create(w->owner.token, path, "{\"name\":\"Bot\"}", w->avatar);
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/avatars/%s/tokens", w->ws, w->avatar);
    create(w->owner.token, path, "{}", w->token_id);
    /* Something for the moderation routes to find: message 1, a held one. */
    it_sqlf("WITH a AS (UPDATE rooms SET last_seq = 1 WHERE id = '%s' RETURNING id)"
            " INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body)"
            " SELECT a.id, 1, '%s', 'iso', 'secret words' FROM a RETURNING 1",
            w->room, w->owner.id);
    snprintf(w->held, sizeof w->held, "%s",
             it_sqlf("INSERT INTO pending (room_id, sender_id, client_msg_id, body, state)"
                     " VALUES ('%s', '%s', 'iso-held', 'held words', 'held') RETURNING id",
                     w->room, w->member.id));
}

/* Everything of workspace ws, as one digest. */
static void snapshot(const char *ws, char out[64])
{
    char q[2048];
    snprintf(
        q, sizeof q,
        "SELECT md5(string_agg(x, '|' ORDER BY x)) FROM ("
        " SELECT w::text AS x FROM workspaces w WHERE id = '%1$s'"
        " UNION ALL SELECT m::text FROM workspace_members m WHERE workspace_id = '%1$s'"
        " UNION ALL SELECT r::text FROM rooms r WHERE workspace_id = '%1$s'"
        " UNION ALL SELECT rm::text FROM room_members rm JOIN rooms r ON r.id = rm.room_id"
        "  WHERE r.workspace_id = '%1$s'"
        " UNION ALL SELECT i::text FROM invitations i WHERE workspace_id = '%1$s'"
        " UNION ALL SELECT a::text FROM avatars a WHERE workspace_id = '%1$s'"
        " UNION ALL SELECT p::text FROM people p JOIN workspace_members m ON m.person_id = p.id"
        "  WHERE m.workspace_id = '%1$s'"
        " UNION ALL SELECT t::text FROM access_tokens t JOIN workspace_members m"
        "  ON m.person_id = t.person_id WHERE m.workspace_id = '%1$s'"
        " UNION ALL SELECT x::text FROM messages x JOIN rooms r ON r.id = x.room_id"
        "  WHERE r.workspace_id = '%1$s'"
        " UNION ALL SELECT x::text FROM pending x JOIN rooms r ON r.id = x.room_id"
        "  WHERE r.workspace_id = '%1$s'"
        " UNION ALL SELECT x::text FROM room_bans x JOIN rooms r ON r.id = x.room_id"
        "  WHERE r.workspace_id = '%1$s'"
        " UNION ALL SELECT x::text FROM mutes x WHERE workspace_id = '%1$s'"
        " UNION ALL SELECT x::text FROM moderation_log x WHERE workspace_id = '%1$s') s",
        ws);
    snprintf(out, 64, "%s", it_sql(q));
}

/* The id of B's object for the placeholder that follows segment `kind`. */
static const char *object_of(const struct world *b, const char *kind, bool second)
{
    if (!strcmp(kind, "people") || (second && !strcmp(kind, "members"))) return b->member.id;
    if (!strcmp(kind, "rooms")) return b->room;
    if (!strcmp(kind, "avatars")) return b->avatar;
    if (!strcmp(kind, "invitations")) return b->invitation;
    if (!strcmp(kind, "tokens")) return b->token_id;
    return b->member.id;
}

/* Expands a route pattern: {ws} -> ws, {id}/{id2} -> B's objects. */
static void expand(const char *pat, const char *ws, const struct world *b, char *out, size_t cap)
{
    char seg[32] = "";
    size_t n = 0;
    for (const char *p = pat; *p && n + 40 < cap;) {
        if (*p == '{') {
            const char *close = strchr(p, '}');
            /* {n}: B's message 1 or B's held message */
            const char *v = !strncmp(p, "{ws}", 4)  ? ws
                            : !strncmp(p, "{n}", 3) ? (!strcmp(seg, "pending") ? b->held : "1")
                                                    : object_of(b, seg, !strncmp(p, "{id2}", 5));
            n += (size_t)snprintf(out + n, cap - n, "%s", v);
            p = close + 1;
            continue;
        }
        if (*p == '/') { /* remember the last literal segment */
            const char *e = strchr(p + 1, '/');
            size_t l = e ? (size_t)(e - p - 1) : strlen(p + 1);
            if (p[1] != '{' && l < sizeof seg) {
                memcpy(seg, p + 1, l);
                seg[l] = 0;
            }
        }
        out[n++] = *p++;
    }
    out[n] = 0;
}

static const char *body_for(const char *method, const char *pat, const struct world *b)
{
    static char body[256];
    if (!strcmp(method, "PUT") && strstr(pat, "/guidelines")) return "{\"rules\":[]}";
    if (strstr(pat, "/dry-run")) {
        snprintf(body, sizeof body, "{\"text\":\"x\",\"room_id\":\"%s\"}", b->room);
        return body;
    }
    if (strcmp(method, "POST") && strcmp(method, "PATCH")) return NULL;
    const char *end = pat + strlen(pat);
    if (strstr(pat, "/members") && end[-1] == 's') {
        snprintf(body, sizeof body, "{\"person_id\":\"%s\"}", b->member.id);
        return body;
    }
    if (strstr(pat, "/invitations")) return "{\"email\":\"walk@example.com\"}";
    if (strstr(pat, "/mutes") || strstr(pat, "/remove")) {
        snprintf(body, sizeof body, "{\"person_id\":\"%s\"%s}", b->member.id,
                 strstr(pat, "/lift") || strstr(pat, "/remove") ? "" : ",\"duration_s\":60");
        return body;
    }
    if (strstr(pat, "/moderation")) return "{\"locked\":true}";
    if (strstr(pat, "/approve") || strstr(pat, "/reject") || strstr(pat, "/delete")) return "{}";
    if (strstr(pat, "/join")) return NULL; /* takes no body */
    if (strstr(pat, "/tokens") || strstr(pat, "/restore"))
        return strstr(pat, "/restore") ? NULL : "{}";
    if (strstr(pat, "/erase")) return "{\"reason\":\"walk\"}";
    if (strstr(pat, "/people/")) return "{\"title\":\"x\"}";
    return "{\"name\":\"x\"}";
}

static void cross_workspace_walk(void **state)
{
    (void)state;
    struct world a, b;
    build(&a);
    build(&b);
    char before[64], after[64];
    snapshot(b.ws, before);
    const char *b_ids[] = {b.ws,       b.room,      b.invitation, b.avatar,
                           b.token_id, b.member.id, b.owner.id};
    char out[16384];
    assert_int_equal(it_run(out, sizeof out, "'%s' routes", IT.parleyd), 0);
    int walked = 0;
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char method[16], pat[256];
        if (sscanf(line, "%15s %255s", method, pat) != 2 || !strstr(pat, "{ws}")) continue;
        /* Deleting A itself is not part of the walk. */
        if (!strcmp(method, "DELETE") && !strcmp(pat, "/api/v1/workspaces/{ws}")) {
            char path[512];
            expand(pat, b.ws, &b, path, sizeof path);
            struct hres r = http_req(IT.gw[walked % 2], NULL, method, path, a.owner.token, NULL);
            assert_int_equal(r.status, 404);
            hres_free(&r);
            walked++;
            continue;
        }
        for (int variant = 0; variant < 2; variant++) {
            char path[512];
            expand(pat, variant ? a.ws : b.ws, &b, path, sizeof path);
            /* Variant (b) of a route without ids acts on A itself: it may
             * succeed, but must not show anything of B. */
            bool acts_on_a = variant == 1 && !strstr(pat, "{id");
            const char *body = body_for(method, pat, &b);
            struct hres r = http_req(IT.gw[walked % 2], NULL, method, path, a.owner.token, body);
            if (!acts_on_a && r.status != 404)
                fprintf(stderr, "%s %s (%s) -> %d %s\n", method, path,
                        variant ? "A with B's ids" : "B", r.status, r.body);
            if (!acts_on_a) assert_int_equal(r.status, 404);
            for (size_t k = 0; k < sizeof b_ids / sizeof b_ids[0]; k++)
                if (r.body && strstr(r.body, b_ids[k])) {
                    fprintf(stderr, "%s %s leaked %s: %s\n", method, path, b_ids[k], r.body);
                    fail();
                }
            hres_free(&r);
            walked++;
        }
    }
    assert_true(walked >= 50);
    snapshot(b.ws, after);
    assert_string_equal(before, after);
    /* B's owner still sees B intact. */
    char path[128];
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/rooms/%s", b.ws, b.room);
    struct hres r = http_req(IT.gw[0], NULL, "GET", path, b.owner.token, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "name"), "secret");
    hres_free(&r);
}

/* ---- room existence --------------------------------------------------------
 * A room limited to a member list the caller is not on must be answered
 * exactly like a room that does not exist, and like another workspace's
 * room: every room-scoped route and op, byte for byte. */

/* Replaces {r} (room), {p} (a person) and {h} (a held message) in tmpl. */
static void fill(char *out, size_t cap, const char *tmpl, const char *room, const char *person,
                 const char *held)
{
    size_t n = 0;
    for (const char *t = tmpl; *t && n + 48 < cap; t++) {
        const char *v = !strncmp(t, "{r}", 3)   ? room
                        : !strncmp(t, "{p}", 3) ? person
                        : !strncmp(t, "{h}", 3) ? held
                                                : NULL;
        if (v) {
            n += (size_t)snprintf(out + n, cap - n, "%s", v);
            t += 2;
        } else {
            out[n++] = *t;
        }
    }
    out[n] = 0;
}

/* The reply without its id, as text. */
static char *reply_text(cJSON *r)
{
    cJSON_DeleteItemFromObjectCaseSensitive(r, "id");
    char *t = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return t;
}

static int mismatches;

/* Reports a difference and counts it (the walk shows every leak at once). */
static void mismatch(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void mismatch(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    mismatches++;
}

static void room_existence_walk(void **state)
{
    (void)state;
    struct world a, b;
    build(&a);
    build(&b);
    /* b.member is in workspace B but not on the list of B's room "secret". */
    char before[64], after[64];
    snapshot(b.ws, before);
    mismatches = 0;
    const char *unknown = "8f14e45f-ceea-467f-a8f5-1d2e3c4b5a69";
    const char *rooms[3] = {unknown, b.room, a.room};
    const char *what[3] = {"unknown room", "B's members-only room", "A's room"};
    /* HTTP: every route with a room in its path, as B's member. */
    char out[16384];
    assert_int_equal(it_run(out, sizeof out, "'%s' routes", IT.parleyd), 0);
    int walked = 0;
    for (char *save = NULL, *line = strtok_r(out, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char method[16], pat[256];
        if (sscanf(line, "%15s %255s", method, pat) != 2 || !strstr(pat, "/rooms/{id}")) continue;
        int status[3];
        char *body[3];
        for (int v = 0; v < 3; v++) {
            struct world x = b;
            snprintf(x.room, sizeof x.room, "%s", rooms[v]);
            char path[512];
            expand(pat, b.ws, &x, path, sizeof path);
            struct hres r = http_req(IT.gw[v % 2], NULL, method, path, b.member.token,
                                     body_for(method, pat, &x));
            status[v] = r.status;
            body[v] = strdup(r.body ? r.body : "");
            hres_free(&r);
        }
        for (int v = 1; v < 3; v++)
            if (status[v] != status[0] || strcmp(body[v], body[0]))
                mismatch("%s %s: %s -> %d %s, but %s -> %d %s\n", method, pat, what[0], status[0],
                         body[0], what[v], status[v], body[v]);
        for (int v = 0; v < 3; v++)
            free(body[v]);
        walked++;
    }
    assert_true(walked >= 12);
    /* WebSocket: every op that names a room. */
    static const char *const ops[] = {
        "\"op\":\"join\",\"room\":\"{r}\"",
        "\"op\":\"leave\",\"room\":\"{r}\"",
        "\"op\":\"send\",\"room\":\"{r}\",\"client_msg_id\":\"walk\",\"body\":\"x\"",
        "\"op\":\"history\",\"room\":\"{r}\"",
        "\"op\":\"read\",\"room\":\"{r}\",\"seq\":1",
        "\"op\":\"seen\",\"room\":\"{r}\",\"seq\":1",
        "\"op\":\"like\",\"room\":\"{r}\",\"seq\":1",
        "\"op\":\"unlike\",\"room\":\"{r}\",\"seq\":1",
        "\"op\":\"rate\",\"room\":\"{r}\",\"seq\":1,\"stars\":3",
        "\"op\":\"unrate\",\"room\":\"{r}\",\"seq\":1",
        "\"op\":\"seen_by\",\"room\":\"{r}\",\"seq\":1",
        "\"op\":\"seen_entries\",\"room\":\"{r}\"",
        "\"op\":\"entries\",\"room\":\"{r}\"",
        "\"op\":\"my_votes\",\"room\":\"{r}\"",
        "\"op\":\"typing\",\"room\":\"{r}\"",
        "\"op\":\"delete\",\"room\":\"{r}\",\"seq\":1",
        "\"op\":\"edit\",\"room\":\"{r}\",\"seq\":1,\"body\":\"y\"",
        "\"op\":\"pending\",\"room\":\"{r}\"",
        "\"op\":\"approve\",\"room\":\"{r}\",\"pending\":{h}",
        "\"op\":\"reject\",\"room\":\"{r}\",\"pending\":{h}",
        "\"op\":\"mute\",\"room\":\"{r}\",\"person\":\"{p}\",\"duration_s\":60",
        "\"op\":\"unmute\",\"room\":\"{r}\",\"person\":\"{p}\"",
        "\"op\":\"remove\",\"room\":\"{r}\",\"person\":\"{p}\"",
        "\"op\":\"room_settings\",\"room\":\"{r}\",\"locked\":true",
    };
    struct wsc *c[2] = {it_connect_auth(0, b.member.token), it_connect_auth(1, b.member.token)};
    assert_non_null(c[0]);
    assert_non_null(c[1]);
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        char *got[3];
        for (int v = 0; v < 3; v++) {
            char cmd[512];
            fill(cmd, sizeof cmd, ops[k], rooms[v], b.owner.id, b.held);
            cJSON *r = wsc_request(c[v % 2], 5000, "%s", cmd);
            assert_non_null(r);
            got[v] = reply_text(r);
        }
        for (int v = 1; v < 3; v++)
            if (strcmp(got[v], got[0]))
                mismatch("{%s}: %s -> %s, but %s -> %s\n", ops[k], what[0], got[0], what[v],
                         got[v]);
        for (int v = 0; v < 3; v++)
            free(got[v]);
    }
    wsc_close(c[0]);
    wsc_close(c[1]);
    assert_int_equal(mismatches, 0);
    snapshot(b.ws, after);
    assert_string_equal(before, after);
}

/* Message 1 of room, by person, as the owner of the room's log would have it. */
static void put_message(const char *room, const char *person)
{
    it_sqlf("WITH a AS (UPDATE rooms SET last_seq = 1 WHERE id = '%s' RETURNING id)"
            " INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body)"
            " SELECT a.id, 1, '%s', 'iso', 'old words' FROM a RETURNING 1",
            room, person);
}

/* The replies (without their ids) to cmd for room x and for a room id that
 * does not exist differ: counted as a mismatch. */
static void same_as_unknown(struct wsc *c, const char *cmd_tmpl, const char *room,
                            const char *person, const char *held, const char *what)
{
    const char *unknown = "8f14e45f-ceea-467f-a8f5-1d2e3c4b5a69";
    char cmd[512];
    char *got[2];
    for (int v = 0; v < 2; v++) {
        fill(cmd, sizeof cmd, cmd_tmpl, v ? room : unknown, person, held);
        cJSON *r = wsc_request(c, 5000, "%s", cmd);
        assert_non_null(r);
        got[v] = reply_text(r);
    }
    if (strcmp(got[0], got[1]))
        mismatch("{%s}: unknown room -> %s, but %s -> %s\n", cmd_tmpl, got[0], what, got[1]);
    free(got[0]);
    free(got[1]);
}

/* Whether unread on c lists room, and the same for room2. */
static void unread_lists(struct wsc *c, const char *room, bool listed, const char *room2,
                         bool listed2)
{
    cJSON *u = it_ok(c, "\"op\":\"unread\"");
    char *t = cJSON_PrintUnformatted(u);
    if ((strstr(t, room) != NULL) != listed || (strstr(t, room2) != NULL) != listed2)
        fail_msg("unread: %s (expected %s %s, %s %s)", t, room, listed ? "listed" : "not", room2,
                 listed2 ? "listed" : "not");
    free(t);
    cJSON_Delete(u);
}

/* On the WebSocket an archived room, and for a token scoped to some rooms (an
 * avatar's) every other room, is answered like a room that does not exist
 * (PROTOCOL.md, join), by the moderation ops a moderator or a bot may use
 * too, and nothing changes; unread lists only the rooms the session may
 * join (not those outside the token's rooms, nor one a moderator removed
 * the person from). */
static void archived_and_out_of_scope_rooms_do_not_exist(void **state)
{
    (void)state;
    struct world b;
    build(&b);
    char path[192], body[160], old[40], open[40], other[40], tok[64], held[24];
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/rooms", b.ws);
    create(b.owner.token, path, "{\"name\":\"old\"}", old);
    create(b.owner.token, path, "{\"name\":\"open\"}", open);
    create(b.owner.token, path, "{\"name\":\"other\"}", other);
    put_message(old, b.owner.id);
    put_message(other, b.owner.id);
    snprintf(held, sizeof held, "%s",
             it_sqlf("INSERT INTO pending (room_id, sender_id, client_msg_id, body, state)"
                     " VALUES ('%s', '%s', 'old-held', 'held words', 'held') RETURNING id",
                     old, b.member.id));
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/rooms/%s", b.ws, old);
    struct hres r = http_req(IT.gw[0], NULL, "PATCH", path, b.owner.token, "{\"archived\":true}");
    assert_int_equal(r.status, 200);
    hres_free(&r);
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/avatars/%s/tokens", b.ws, b.avatar);
    /* A forgotten body is a mistake here, not {} (an unscoped token without expiry). */
    r = http_req(IT.gw[0], NULL, "POST", path, b.owner.token, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(hres_str(&r, "error.code"), "bad_json");
    hres_free(&r);
    snprintf(body, sizeof body, "{\"rooms\":[\"%s\"]}", open);
    r = http_req(IT.gw[0], NULL, "POST", path, b.owner.token, body);
    assert_int_equal(r.status, 201);
    snprintf(tok, sizeof tok, "%s", hres_str(&r, "token"));
    hres_free(&r);
    char before[64], after[64];
    snapshot(b.ws, before);
    mismatches = 0;
    /* The owner moderates every room, archived ones not on the WebSocket. */
    static const char *const mod_ops[] = {
        "\"op\":\"pending\",\"room\":\"{r}\"",
        "\"op\":\"approve\",\"room\":\"{r}\",\"pending\":{h}",
        "\"op\":\"reject\",\"room\":\"{r}\",\"pending\":{h}",
        "\"op\":\"delete\",\"room\":\"{r}\",\"seq\":1",
        "\"op\":\"remove\",\"room\":\"{r}\",\"person\":\"{p}\"",
        "\"op\":\"room_settings\",\"room\":\"{r}\",\"locked\":true",
        "\"op\":\"mute\",\"room\":\"{r}\",\"person\":\"{p}\",\"duration_s\":60",
        "\"op\":\"unmute\",\"room\":\"{r}\",\"person\":\"{p}\"",
    };
    struct wsc *owner = it_connect_auth(0, b.owner.token), *bot = it_connect_auth(1, tok);
    assert_non_null(owner);
    assert_non_null(bot);
    for (size_t k = 0; k < sizeof mod_ops / sizeof mod_ops[0]; k++)
        same_as_unknown(owner, mod_ops[k], old, b.member.id, held, "an archived room");
    /* The bot's token opens "open" only: "other" and its message 1 are not there. */
    same_as_unknown(bot, "\"op\":\"pending\",\"room\":\"{r}\"", other, NULL, NULL,
                    "a room outside the token's");
    same_as_unknown(bot, "\"op\":\"delete\",\"room\":\"{r}\",\"seq\":1", other, NULL, NULL,
                    "a room outside the token's");
    assert_int_equal(mismatches, 0);
    snapshot(b.ws, after);
    assert_string_equal(before, after);
    /* ... while the room its token opens is there for it. */
    cJSON *mine = it_ok(bot, "\"op\":\"pending\",\"room\":\"%s\"", open);
    assert_string_equal(wsc_str(mine, "ok.room"), open);
    cJSON_Delete(mine);
    /* unread: the bot's token opens one room; the member, removed from
     * "open" by a moderator, no longer has it. */
    unread_lists(bot, open, true, other, false);
    unread_lists(bot, old, false, old, false);
    struct wsc *member = it_connect_auth(0, b.member.token);
    assert_non_null(member);
    unread_lists(member, open, true, other, true);
    cJSON_Delete(
        it_ok(owner, "\"op\":\"remove\",\"room\":\"%s\",\"person\":\"%s\"", open, b.member.id));
    unread_lists(member, open, false, other, true);
    wsc_close(owner);
    wsc_close(bot);
    wsc_close(member);
}

/* ---- the role matrix ----------------------------------------------------- */

enum { OWNER, ADMIN, KEYUSER, SUPPORT, MEMBER, AVATAR, NROLES };
static const char *const role_names[NROLES] = {"owner",   "admin",  "keyuser",
                                               "support", "member", "avatar"};

/* One request per permission, and who may (API.md's table). */
static const struct {
    /* path and body: %s is the workspace, %m a member, %r a room, %h a held
     * message (a fresh one for each call), %e a new email address */
    const char *perm, *method, *path, *body;
    const char *allowed; /* initials of the roles that may */
} checks[] = {
    {"workspace.read", "GET", "/api/v1/workspaces/%s", NULL, "OAKSMV"},
    {"workspace.update", "PATCH", "/api/v1/workspaces/%s", "{\"name\":\"matrix\"}", "OA"},
    {"people.list", "GET", "/api/v1/workspaces/%s/people", NULL, "OAKSMV"},
    {"people.invite", "POST", "/api/v1/workspaces/%s/invitations", "{\"email\":\"%e\"}", "OA"},
    {"people.manage", "PATCH", "/api/v1/workspaces/%s/people/%m", "{\"title\":\"t\"}", "OA"},
    {"rooms.list", "GET", "/api/v1/workspaces/%s/rooms", NULL, "OAKSMV"},
    {"rooms.manage", "POST", "/api/v1/workspaces/%s/rooms", "{\"name\":\"r\"}", "OAK"},
    {"avatars.list", "GET", "/api/v1/workspaces/%s/avatars", NULL, "OAKS"},
    {"avatars.manage", "POST", "/api/v1/workspaces/%s/avatars", "{\"name\":\"b\"}", "OA"},
    {"visits.read", "GET", "/api/v1/workspaces/%s/visits", NULL, "OA"},
    {"guidelines.read", "GET", "/api/v1/workspaces/%s/guidelines", NULL, "OAKSMV"},
    {"guidelines.read", "GET", "/api/v1/workspaces/%s/rooms/%r/guidelines", NULL, "OAKSMV"},
    {"guidelines.manage", "PUT", "/api/v1/workspaces/%s/guidelines", "{\"rules\":[]}", "OAK"},
    {"guidelines.manage", "PUT", "/api/v1/workspaces/%s/rooms/%r/guidelines", "{\"rules\":[]}",
     "OAK"},
    {"guidelines.manage", "POST", "/api/v1/workspaces/%s/guidelines/dry-run",
     "{\"text\":\"x\",\"room_id\":\"%r\"}", "OAK"},
    {"guidelines.manage", "GET", "/api/v1/workspaces/%s/guidelines/audit", NULL, "OAK"},
    /* every moderation route: the room's pending list is anyone's (their own) */
    {"room.join", "GET", "/api/v1/workspaces/%s/rooms/%r/pending", NULL, "OAKSMV"},
    /* (no body: every field of theirs is optional) */
    {"room.moderate", "POST", "/api/v1/workspaces/%s/rooms/%r/pending/%h/approve", NULL, "OAK"},
    {"room.moderate", "POST", "/api/v1/workspaces/%s/rooms/%r/pending/%h/reject", NULL, "OAK"},
    {"room.moderate", "PATCH", "/api/v1/workspaces/%s/rooms/%r/moderation", "{\"locked\":false}",
     "OAK"},
    {"room.moderate", "GET", "/api/v1/workspaces/%s/mutes", NULL, "OAK"},
    {"room.moderate", "POST", "/api/v1/workspaces/%s/mutes",
     "{\"person_id\":\"%m\",\"duration_s\":60}", "OAK"},
    {"room.moderate", "POST", "/api/v1/workspaces/%s/mutes/lift", "{\"person_id\":\"%m\"}", "OAK"},
    {"room.moderate", "GET", "/api/v1/workspaces/%s/moderation/log", NULL, "OAK"},
    {"room.moderate", "POST", "/api/v1/workspaces/%s/rooms/%r/remove", "{\"person_id\":\"%m\"}",
     "OAK"},
    {"evaluation.read", "GET", "/api/v1/workspaces/%s/evaluation", NULL, "OAK"},
    {"evaluation.read", "GET", "/api/v1/workspaces/%s/rooms/%r/evaluation", NULL, "OAK"},
    /* Not a permission of the table: an address on one's own account,
     * which every person may ask for (pending until confirmed) and no
     * avatar may have. */
    {"me.address", "PATCH", "/api/v1/me", "{\"email\":\"%e\"}", "OAKSM"},
    {"workspace.delete", "DELETE", "/api/v1/workspaces/%s", NULL, "O"},
};

struct mx {
    const char *ws, *member, *room, *held;
};

static void subst(char *out, size_t cap, const char *fmt, const struct mx *x)
{
    const char *ws = x->ws, *member = x->member;
    size_t n = 0;
    for (const char *p = fmt; *p && n + 80 < cap; p++) {
        if (*p == '%' && (p[1] == 'r' || p[1] == 'h')) {
            n += (size_t)snprintf(out + n, cap - n, "%s", p[1] == 'r' ? x->room : x->held);
            p++;
        } else if (*p == '%' && p[1] == 's') {
            n += (size_t)snprintf(out + n, cap - n, "%s", ws);
            p++;
        } else if (*p == '%' && p[1] == 'm') {
            n += (size_t)snprintf(out + n, cap - n, "%s", member);
            p++;
        } else if (*p == '%' && p[1] == 'e') {
            n += (size_t)snprintf(out + n, cap - n, "matrix-%d-%d@example.com", getpid(), ++seq);
            p++;
        } else {
            out[n++] = *p;
        }
    }
    out[n] = 0;
}

static void role_matrix(void **state)
{
    (void)state;
    struct acct who[NROLES], target;
    char ws[40], path[256];
    signup(&who[OWNER]);
    create(who[OWNER].token, "/api/v1/workspaces", "{\"name\":\"matrix\"}", ws);
    for (int r = ADMIN; r <= MEMBER; r++) {
        signup(&who[r]);
        join_ws(ws, who[r].id, role_names[r]);
    }
    signup(&target);
    join_ws(ws, target.id, "member");
    char av[40], tid[40];
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/avatars", ws);
    create(who[OWNER].token, path, "{\"name\":\"Matrix bot\"}", av);
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/avatars/%s/tokens", ws, av);
    struct hres r = http_req(IT.gw[0], NULL, "POST", path, who[OWNER].token, "{}");
    assert_int_equal(r.status, 201);
    snprintf(who[AVATAR].token, sizeof who[AVATAR].token, "%s", hres_str(&r, "token"));
    snprintf(tid, sizeof tid, "%s", hres_str(&r, "id"));
    hres_free(&r);
    char room[40];
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/rooms", ws);
    create(who[OWNER].token, path, "{\"name\":\"matrix\"}", room);
    int calls = 0;
    for (size_t c = 0; c < sizeof checks / sizeof checks[0]; c++) {
        /* The owner deletes last, after everyone else was refused. */
        for (int k = NROLES - 1; k >= 0; k--) {
            char body[256], held[24];
            snprintf(held, sizeof held, "%s",
                     it_sqlf("INSERT INTO pending (room_id, sender_id, client_msg_id, body, state)"
                             " VALUES ('%s', '%s', 'mx-%zu-%d', 'held', 'held') RETURNING id",
                             room, target.id, c, k));
            struct mx x = {ws, target.id, room, held};
            subst(path, sizeof path, checks[c].path, &x);
            if (checks[c].body) subst(body, sizeof body, checks[c].body, &x);
            bool may = strchr(checks[c].allowed, "OAKSMV"[k]) != NULL;
            r = http_req(IT.gw[k % 2], NULL, checks[c].method, path, who[k].token,
                         checks[c].body ? body : NULL);
            bool ok = r.status >= 200 && r.status < 300;
            if (ok != may ||
                (!may && (r.status != 403 || strcmp(hres_str(&r, "error.code"), "forbidden"))))
                fail_msg("%s as %s: %s %s -> %d %s (expected %s)", checks[c].perm, role_names[k],
                         checks[c].method, path, r.status, r.body, may ? "2xx" : "403 forbidden");
            hres_free(&r);
            calls++;
        }
    }
    assert_int_equal(calls, (int)(sizeof checks / sizeof checks[0]) * NROLES);
    /* The last check deleted the workspace: gone for everyone (restorable
     * by its owners for the grace period, it_wsdelete). */
    char q[160];
    snprintf(q, sizeof q, "SELECT count(*) FROM workspaces WHERE id = '%s' AND deleted_at IS NULL",
             ws);
    assert_string_equal(it_sql(q), "0");
    r = http_req(IT.gw[0], NULL, "GET", "/api/v1/workspaces", who[OWNER].token, NULL);
    assert_null(strstr(r.body, ws));
    hres_free(&r);
}

/* ---- the role matrix over the WebSocket ----------------------------------
 * Every op of PROTOCOL.md, the moderation ops among them, as each role: the
 * roles perm.c lets do it get ok, the others forbidden. Each call has a fresh
 * object of its own where the op uses one up (a held message to approve, a
 * message to delete), so the answer says only whether the role may. */

/* In tmpl: {r} the chat room, {d} the dialogue room, {e} an entry of it,
 * {s} the target's first message, {t} the target person, {o} this role's
 * own message (or {s} when its role sends none), {x} a message of the
 * target's for this call, {h} a held message for this call. */
struct wsx {
    const char *room, *dlg, *target;
    long entry, first, own, mine, held;
};

static void wsfill(char *out, size_t cap, const char *tmpl, const struct wsx *x)
{
    size_t n = 0;
    for (const char *t = tmpl; *t && n + 48 < cap; t++) {
        if (*t != '{' || !t[1] || t[2] != '}') {
            out[n++] = *t;
            continue;
        }
        char k = t[1];
        if (k == 'r' || k == 'd' || k == 't')
            n += (size_t)snprintf(out + n, cap - n, "%s",
                                  k == 'r'   ? x->room
                                  : k == 'd' ? x->dlg
                                             : x->target);
        else
            n += (size_t)snprintf(out + n, cap - n, "%ld",
                                  k == 'e'   ? x->entry
                                  : k == 's' ? x->first
                                  : k == 'o' ? x->own
                                  : k == 'x' ? x->mine
                                             : x->held);
        t += 2;
    }
    out[n] = 0;
}

static const struct {
    const char *op, *cmd; /* cmd: the fields after "op" */
    const char *allowed;  /* initials of the roles that may (perm.c) */
} wsops[] = {
    {"ping", "", "OAKSMV"},
    {"history", ",\"room\":\"{r}\"", "OAKSMV"},
    {"send", ",\"room\":\"{r}\",\"client_msg_id\":\"mx-{h}\",\"body\":\"hello\"", "OAKMV"},
    {"edit", ",\"room\":\"{r}\",\"seq\":{o},\"body\":\"edited\"", "OAKMV"},
    {"read", ",\"room\":\"{r}\",\"seq\":{s}", "OAKSMV"},
    {"seen", ",\"room\":\"{d}\",\"seq\":{e}", "OAKSMV"},
    {"like", ",\"room\":\"{r}\",\"seq\":{s}", "OAKMV"},
    {"unlike", ",\"room\":\"{r}\",\"seq\":{s}", "OAKMV"},
    {"rate", ",\"room\":\"{d}\",\"seq\":{e},\"stars\":4", "OAKMV"},
    {"unrate", ",\"room\":\"{d}\",\"seq\":{e}", "OAKMV"},
    {"unread", "", "OAKSMV"},
    {"seen_by", ",\"room\":\"{r}\",\"seq\":{s}", "OAKSMV"},
    {"seen_entries", ",\"room\":\"{d}\"", "OAKSMV"},
    {"seen_entries", ",\"room\":\"{d}\",\"person\":\"{t}\"", "OAK"},
    {"entries", ",\"room\":\"{d}\"", "OAKSMV"},
    {"my_votes", "", "OAKSMV"},
    {"typing", ",\"room\":\"{r}\"", "OAKMV"},
    {"pending", ",\"room\":\"{r}\"", "OAKSMV"},
    /* moderation */
    {"delete", ",\"room\":\"{r}\",\"seq\":{x},\"reason\":\"walk\"", "OAK"},
    {"approve", ",\"room\":\"{r}\",\"pending\":{h},\"reason\":\"walk\"", "OAK"},
    {"reject", ",\"room\":\"{r}\",\"pending\":{h},\"reason\":\"walk\"", "OAK"},
    {"room_settings", ",\"room\":\"{r}\",\"locked\":false,\"slow_mode_s\":0", "OAK"},
    {"mute", ",\"room\":\"{r}\",\"person\":\"{t}\",\"duration_s\":60", "OAK"},
    {"unmute", ",\"room\":\"{r}\",\"person\":\"{t}\"", "OAK"},
    {"mute", ",\"person\":\"{t}\",\"duration_s\":60", "OAK"},
    {"unmute", ",\"person\":\"{t}\"", "OAK"},
    /* one's own message, deleted by its sender within the window */
    {"delete", ",\"room\":\"{r}\",\"seq\":{o}", "OAKMV"},
    {"remove", ",\"room\":\"{r}\",\"person\":\"{t}\",\"reason\":\"walk\"", "OAK"},
    {"leave", ",\"room\":\"{r}\"", "OAKSMV"},
};

/* Sends one message and returns its seq. */
static long sent_seq(struct wsc *c, const char *room, const char *cmid, const char *body)
{
    cJSON *r = it_send(c, room, cmid, body);
    const cJSON *seq =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "ok"), "seq");
    if (!cJSON_IsNumber(seq)) {
        char *t = cJSON_PrintUnformatted(r);
        fail_msg("send %s in %s: %s", cmid, room, t);
    }
    long v = (long)seq->valuedouble;
    cJSON_Delete(r);
    return v;
}

static void ws_role_matrix(void **state)
{
    (void)state;
    struct acct who[NROLES], target;
    char ws[40], room[40], dlg[40], path[256];
    signup(&who[OWNER]);
    create(who[OWNER].token, "/api/v1/workspaces", "{\"name\":\"wsmatrix\"}", ws);
    for (int r = ADMIN; r <= MEMBER; r++) {
        signup(&who[r]);
        join_ws(ws, who[r].id, role_names[r]);
    }
    signup(&target);
    join_ws(ws, target.id, "member");
    char av[40];
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/avatars", ws);
    create(who[OWNER].token, path, "{\"name\":\"Walk bot\"}", av);
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/avatars/%s/tokens", ws, av);
    struct hres h = http_req(IT.gw[0], NULL, "POST", path, who[OWNER].token, "{}");
    assert_int_equal(h.status, 201);
    snprintf(who[AVATAR].token, sizeof who[AVATAR].token, "%s", hres_str(&h, "token"));
    hres_free(&h);
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/rooms", ws);
    create(who[OWNER].token, path, "{\"name\":\"walk\",\"visibility\":\"workspace\"}", room);
    create(who[OWNER].token, path,
           "{\"name\":\"walk-d\",\"kind\":\"dialogue\",\"visibility\":\"workspace\"}", dlg);
    /* everyone joined to both rooms (join is every role's: checked here) */
    struct wsc *c[NROLES], *tc = it_member(0, target.token, room);
    cJSON_Delete(it_join(tc, dlg, -1));
    struct wsx x = {.room = room, .dlg = dlg, .target = target.id};
    x.first = sent_seq(tc, room, "first", "first words");
    x.entry = sent_seq(tc, dlg, "entry", "an entry");
    long theirs[NROLES];
    for (int k = 0; k < NROLES; k++) {
        char cmid[32];
        snprintf(cmid, sizeof cmid, "for-%d", k);
        theirs[k] = sent_seq(tc, room, cmid, "to be deleted");
    }
    long own[NROLES];
    for (int k = 0; k < NROLES; k++) {
        c[k] = it_connect_auth(k % 2, who[k].token);
        assert_non_null(c[k]);
        for (int d = 0; d < 2; d++) {
            cJSON *r = it_join(c[k], d ? dlg : room, -1);
            if (!cJSON_GetObjectItemCaseSensitive(r, "ok"))
                fail_msg("join as %s: %s", role_names[k], cJSON_PrintUnformatted(r));
            cJSON_Delete(r);
        }
        own[k] = k == SUPPORT ? x.first : sent_seq(c[k], room, "own", "my words");
    }
    int calls = 0;
    for (size_t o = 0; o < sizeof wsops / sizeof wsops[0]; o++) {
        for (int k = 0; k < NROLES; k++) {
            x.own = own[k];
            x.mine = theirs[k];
            x.held = atol(it_sqlf("INSERT INTO pending (room_id, sender_id, client_msg_id, body,"
                                  " state) VALUES ('%s', '%s', 'wx-%zu-%d', 'held', 'held')"
                                  " RETURNING id",
                                  room, target.id, o, k));
            char fields[512], cmd[600];
            wsfill(fields, sizeof fields, wsops[o].cmd, &x);
            snprintf(cmd, sizeof cmd, "\"op\":\"%s\"%s", wsops[o].op, fields);
            cJSON *r = wsc_request(c[k], 5000, "%s", cmd);
            assert_non_null(r);
            bool may = strchr(wsops[o].allowed, "OAKSMV"[k]) != NULL;
            const cJSON *ok = cJSON_GetObjectItemCaseSensitive(r, "ok");
            const cJSON *code = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(r, "error"), "code");
            bool right =
                may ? ok != NULL : cJSON_IsString(code) && !strcmp(code->valuestring, "forbidden");
            if (!right) {
                char *t = cJSON_PrintUnformatted(r);
                fail_msg("{%s} as %s: %s (expected %s)", cmd, role_names[k], t,
                         may ? "ok" : "forbidden");
            }
            cJSON_Delete(r);
            calls++;
        }
    }
    assert_int_equal(calls, (int)(sizeof wsops / sizeof wsops[0]) * NROLES);
    /* every op the codec knows was walked (auth and join above) */
    for (int op = 1; strcmp(pp_op_name((enum pp_op)op), "?"); op++) {
        bool found = !strcmp(pp_op_name((enum pp_op)op), "auth") ||
                     !strcmp(pp_op_name((enum pp_op)op), "join");
        for (size_t o = 0; o < sizeof wsops / sizeof wsops[0] && !found; o++)
            found = !strcmp(wsops[o].op, pp_op_name((enum pp_op)op));
        if (!found) fail_msg("op %s is not walked", pp_op_name((enum pp_op)op));
    }
    /* what the moderators did, they did: the target's messages deleted by
     * owner, admin and key user only; the held ones decided by them only */
    assert_string_equal(it_sqlf("SELECT count(*) FROM messages WHERE room_id = '%s'"
                                " AND sender_id = '%s' AND deleted_at IS NOT NULL",
                                room, target.id),
                        "3");
    assert_string_equal(it_sqlf("SELECT count(*) FROM pending WHERE room_id = '%s'"
                                " AND state <> 'held'",
                                room),
                        "6");
    for (int k = 0; k < NROLES; k++)
        wsc_close(c[k]);
    wsc_close(tc);
}

static void contacts_visibility(void **state)
{
    (void)state;
    struct acct o, m;
    char ws[40], path[128];
    signup(&o);
    signup(&m);
    create(o.token, "/api/v1/workspaces", "{\"name\":\"contacts\"}", ws);
    join_ws(ws, m.id, "member");
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/people", ws);
    struct hres r = http_req(IT.gw[0], NULL, "GET", path, m.token, NULL);
    assert_int_equal(r.status, 200);
    int seen = 0;
    cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(r.json, "items"))
    {
        cJSON *email = cJSON_GetObjectItemCaseSensitive(p, "email");
        if (!strcmp(cJSON_GetObjectItemCaseSensitive(p, "id")->valuestring, m.id))
            assert_true(cJSON_IsString(email)); /* my own */
        else
            assert_true(cJSON_IsNull(email)); /* others': not for members */
        seen++;
    }
    assert_int_equal(seen, 2);
    hres_free(&r);
    r = http_req(IT.gw[1], NULL, "GET", path, o.token, NULL);
    assert_non_null(strstr(r.body, "roles-"));
    cJSON_ArrayForEach(p, cJSON_GetObjectItemCaseSensitive(r.json, "items"))
        assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(p, "email")));
    hres_free(&r);
}

static void role_grants(void **state)
{
    (void)state;
    struct acct o, admin, m, admin2;
    char ws[40], path[160];
    signup(&o);
    signup(&admin);
    signup(&m);
    signup(&admin2);
    create(o.token, "/api/v1/workspaces", "{\"name\":\"grants\"}", ws);
    join_ws(ws, admin.id, "admin");
    join_ws(ws, admin2.id, "admin");
    join_ws(ws, m.id, "member");
    struct {
        const char *tok, *target, *method, *body;
        int status;
    } cases[] = {
        {admin.token, m.id, "PATCH", "{\"role\":\"keyuser\"}", 200},
        {admin.token, m.id, "PATCH", "{\"role\":\"admin\"}", 403},
        {admin.token, o.id, "PATCH", "{\"title\":\"boss\"}", 403},
        {admin.token, admin2.id, "DELETE", NULL, 403},
        {admin.token, admin.id, "PATCH", "{\"role\":\"member\"}", 403},
        {o.token, o.id, "PATCH", "{\"role\":\"admin\"}", 403},
        {o.token, m.id, "PATCH", "{\"role\":\"admin\"}", 200},
        {o.token, admin2.id, "DELETE", NULL, 204},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "/api/v1/workspaces/%s/people/%s", ws, cases[i].target);
        struct hres r =
            http_req(IT.gw[i % 2], NULL, cases[i].method, path, cases[i].tok, cases[i].body);
        if (r.status != cases[i].status)
            fail_msg("case %zu: %s %s -> %d %s", i, cases[i].method,
                     cases[i].body ? cases[i].body : "", r.status, r.body);
        hres_free(&r);
    }
    char q[200];
    snprintf(q, sizeof q,
             "SELECT string_agg(role, ',' ORDER BY role) FROM workspace_members"
             " WHERE workspace_id = '%s' AND removed_at IS NULL",
             ws);
    /* owner, admin (unchanged), m promoted to admin; admin2 removed. */
    assert_string_equal(it_sql(q), "admin,admin,owner");
}

/* Names and the picture live on the account, which every workspace of the
 * person shows: an admin of one workspace writing them would change what
 * another workspace sees (impersonation). The people route takes only the
 * workspace's own fields; the person changes the account with PATCH /me. */
static void account_fields_belong_to_the_person(void **state)
{
    (void)state;
    struct acct oa, ob, x;
    char wa[40], wb[40], path[200];
    signup(&oa);
    signup(&ob);
    signup(&x);
    create(oa.token, "/api/v1/workspaces", "{\"name\":\"acct-a\"}", wa);
    create(ob.token, "/api/v1/workspaces", "{\"name\":\"acct-b\"}", wb);
    join_ws(wa, x.id, "member");
    join_ws(wb, x.id, "member");
    struct hres r = http_req(IT.gw[0], NULL, "PATCH", "/api/v1/me", x.token,
                             "{\"display_name\":\"Xavier\",\"first_name\":\"Xa\"}");
    assert_int_equal(r.status, 200);
    hres_free(&r);
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/people/%s", wa, x.id);
    static const char *const fields[][2] = {
        {"display_name", "{\"display_name\":\"CEO of B\"}"},
        {"first_name", "{\"first_name\":\"Eve\"}"},
        {"last_name", "{\"last_name\":\"Mallory\"}"},
        {"picture_url", "{\"picture_url\":\"https://evil.example/ceo.png\"}"},
        {"display_name", "{\"title\":\"CFO\",\"display_name\":\"CEO of B\"}"},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        /* as the workspace's owner, and as the person through this route */
        for (int who = 0; who < 2; who++) {
            r = http_req(IT.gw[i % 2], NULL, "PATCH", path, who ? x.token : oa.token, fields[i][1]);
            if (r.status != 400) fprintf(stderr, "%s -> %d %s\n", fields[i][1], r.status, r.body);
            assert_int_equal(r.status, 400);
            assert_string_equal(hres_str(&r, "error.code"), "unknown_field");
            assert_string_equal(hres_str(&r, "error.field"), fields[i][0]);
            hres_free(&r);
        }
    }
    /* Nothing changed on the account, and B shows what the person chose. */
    assert_string_equal(
        it_sqlf("SELECT display_name || '|' || first_name || '|' || coalesce(last_name, '-')"
                " || '|' || coalesce(picture_url, '-') FROM people WHERE id = '%s'",
                x.id),
        "Xavier|Xa|-|-");
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/people/%s", wb, x.id);
    r = http_req(IT.gw[1], NULL, "GET", path, ob.token, NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "display_name"), "Xavier");
    hres_free(&r);
    /* The workspace's own fields stay the admin's, in that workspace only. */
    snprintf(path, sizeof path, "/api/v1/workspaces/%s/people/%s", wa, x.id);
    r = http_req(IT.gw[0], NULL, "PATCH", path, oa.token,
                 "{\"title\":\"CFO\",\"department\":\"Finance\"}");
    assert_int_equal(r.status, 200);
    assert_string_equal(hres_str(&r, "title"), "CFO");
    assert_string_equal(hres_str(&r, "display_name"), "Xavier");
    hres_free(&r);
    assert_string_equal(it_sqlf("SELECT coalesce(title, '-') FROM workspace_members"
                                " WHERE workspace_id = '%s' AND person_id = '%s'",
                                wb, x.id),
                        "-");
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(cross_workspace_walk),
        cmocka_unit_test(room_existence_walk),
        cmocka_unit_test(archived_and_out_of_scope_rooms_do_not_exist),
        cmocka_unit_test(role_matrix),
        cmocka_unit_test(ws_role_matrix),
        cmocka_unit_test(contacts_visibility),
        cmocka_unit_test(role_grants),
        cmocka_unit_test(account_fields_belong_to_the_person),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
