/* Integration: read state, likes and star ratings, dialogue entries and
 * replies, with real PostgreSQL, Redis and two gateways: watermark
 * monotonicity, out-of-order seen entries, seen-by answers, unread counts
 * across a reconnect, votes and their aggregates seen identically on both
 * gateways, coalescing under a burst, recovery with since, and the refusals
 * that store nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "itest.h"

static void ok(cJSON *r)
{
    if (wsc_err_code(r)) fprintf(stderr, "unexpected error %s\n", wsc_err_code(r));
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
}

static void err(cJSON *r, const char *code)
{
    assert_non_null(wsc_err_code(r));
    assert_string_equal(wsc_err_code(r), code);
    cJSON_Delete(r);
}

/* Sends and returns the seq. */
static int64_t send_msg(struct wsc *c, const char *room, const char *cmid, const char *extra)
{
    cJSON *r = wsc_request(c, 5000,
                           "\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"%s\","
                           "\"body\":\"text %s\"%s",
                           room, cmid, cmid, extra ? extra : "");
    assert_non_null(r);
    if (wsc_err_code(r)) fprintf(stderr, "send: %s\n", wsc_err_code(r));
    assert_null(wsc_err_code(r));
    int64_t seq = wsc_int(r, "ok.seq");
    cJSON_Delete(r);
    return seq;
}

/* Waits for a push of this type in room whose field key equals want
 * (integers), skipping others; returns it or NULL. */
static cJSON *wait_for(struct wsc *c, const char *type, const char *key, int64_t want, int ms)
{
    uint64_t end = it_now_ms() + (uint64_t)ms;
    while (it_now_ms() < end) {
        cJSON *p = wsc_wait_push(c, type, (int)(end - it_now_ms()));
        if (!p) return NULL;
        if (!key || wsc_int(p, key) == want) return p;
        cJSON_Delete(p);
    }
    return NULL;
}

/* A world: n people in one workspace, one room of the kind, everyone joined
 * (person i on gateway i % 2). */
struct rw {
    struct it_world w;
    char room[40];
    struct wsc *c[4];
};

static void rw_make(struct rw *x, int n, const char *kind)
{
    it_world(&x->w, n, NULL);
    snprintf(x->room, sizeof x->room, "%s",
             it_admin("create-room %s %s-room workspace %s", x->w.ws, kind, kind));
    for (int i = 0; i < n; i++) {
        x->c[i] = it_member(i % 2, x->w.tok[i], x->room);
    }
}

static void rw_free(struct rw *x, int n)
{
    for (int i = 0; i < n; i++)
        wsc_close(x->c[i]);
}

static void watermark_is_monotonic_and_seen_is_out_of_order(void **state)
{
    (void)state;
    struct rw x;
    rw_make(&x, 2, "dialogue");
    int64_t s[10];
    for (int i = 0; i < 10; i++) {
        char cmid[16];
        snprintf(cmid, sizeof cmid, "e%d", i);
        s[i] = send_msg(x.c[0], x.room, cmid, NULL);
    }
    /* Reports arrive reordered: the watermark never goes back. */
    cJSON *r =
        it_req(x.c[1], "\"op\":\"read\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)s[5]);
    assert_int_equal(wsc_int(r, "ok.up_to"), s[5]);
    cJSON_Delete(r);
    r = it_req(x.c[1], "\"op\":\"read\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)s[2]);
    assert_int_equal(wsc_int(r, "ok.up_to"), s[5]);
    cJSON_Delete(r);
    char want[32];
    snprintf(want, sizeof want, "%lld", (long long)s[5]);
    assert_string_equal(
        it_sqlf("SELECT up_to FROM read_state WHERE room_id = '%s' AND person_id = '%s'", x.room,
                x.w.person[1]),
        want);
    /* Seen below the watermark costs no row; above it, one row. */
    ok(it_req(x.c[1], "\"op\":\"seen\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)s[3]));
    ok(it_req(x.c[1], "\"op\":\"seen\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)s[8]));
    ok(it_req(x.c[1], "\"op\":\"seen\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)s[8]));
    snprintf(want, sizeof want, "%lld", (long long)s[8]);
    assert_string_equal(
        it_sqlf("SELECT string_agg(seq::text, ',') FROM seen WHERE room_id = '%s'", x.room), want);
    r = it_req(x.c[1], "\"op\":\"seen_entries\",\"room\":\"%s\"", x.room);
    assert_int_equal(wsc_int(r, "ok.up_to"), s[5]);
    cJSON *seen = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "seen");
    assert_int_equal(cJSON_GetArraySize(seen), 1);
    assert_int_equal((int64_t)cJSON_GetArrayItem(seen, 0)->valuedouble, s[8]);
    cJSON_Delete(r);
    /* Who has seen what: s[8] by person 1 (out of order), s[1] by person 1
     * (watermark); 1 of the room's 2 people. */
    r = it_req(x.c[0], "\"op\":\"seen_by\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)s[8]);
    assert_int_equal(wsc_int(r, "ok.count"), 1);
    assert_int_equal(wsc_int(r, "ok.of"), 2);
    cJSON *who = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "seen"), 0);
    assert_string_equal(wsc_str(who, "person"), x.w.person[1]);
    assert_string_equal(wsc_str(who, "how"), "seen");
    assert_non_null(wsc_str(who, "at"));
    cJSON_Delete(r);
    r = it_req(x.c[0], "\"op\":\"seen_by\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)s[1]);
    assert_int_equal(wsc_int(r, "ok.count"), 1);
    who = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "seen"), 0);
    assert_string_equal(wsc_str(who, "how"), "read");
    cJSON_Delete(r);
    r = it_req(x.c[0], "\"op\":\"seen_by\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)s[9]);
    assert_int_equal(wsc_int(r, "ok.count"), 0);
    cJSON_Delete(r);
    /* A member may not ask what someone else read; a member asking for
     * themself may. */
    err(it_req(x.c[0], "\"op\":\"seen_entries\",\"room\":\"%s\",\"person\":\"%s\"", x.room,
               x.w.person[1]),
        "forbidden");
    rw_free(&x, 2);
}

static void unread_counts_survive_reconnect(void **state)
{
    (void)state;
    struct rw x;
    rw_make(&x, 2, "chat");
    int64_t s[5];
    for (int i = 0; i < 5; i++) {
        char cmid[16];
        snprintf(cmid, sizeof cmid, "u%d", i);
        s[i] = send_msg(x.c[0], x.room, cmid, NULL);
    }
    const char *q = "\"op\":\"unread\"";
    cJSON *r = wsc_request(x.c[1], 5000, "%s", q);
    cJSON *room = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "rooms"), 0);
    assert_int_equal(wsc_int(room, "unread"), 5);
    cJSON_Delete(r);
    /* The sender has nothing unread: its own messages do not count. */
    r = wsc_request(x.c[0], 5000, "%s", q);
    room = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "rooms"), 0);
    assert_int_equal(wsc_int(room, "unread"), 0);
    cJSON_Delete(r);
    ok(it_req(x.c[1], "\"op\":\"read\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)s[2]));
    /* Reconnect on the other gateway: still 2 unread, then 1 after seeing the last. */
    wsc_close(x.c[1]);
    x.c[1] = it_connect_auth(0, x.w.tok[1]);
    r = wsc_request(x.c[1], 5000, "%s", q);
    room = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "rooms"), 0);
    assert_int_equal(wsc_int(room, "unread"), 2);
    assert_int_equal(wsc_int(room, "up_to"), s[2]);
    cJSON_Delete(r);
    cJSON_Delete(it_join(x.c[1], x.room, -1));
    ok(it_req(x.c[1], "\"op\":\"seen\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)s[4]));
    r = wsc_request(x.c[1], 5000, "%s", q);
    room = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "rooms"), 0);
    assert_int_equal(wsc_int(room, "unread"), 1);
    cJSON_Delete(r);
    rw_free(&x, 2);
}

/* Reads the newest votes event of target seen by c within ms. */
static cJSON *last_votes(struct wsc *c, int64_t target, int64_t want_v, int ms)
{
    uint64_t end = it_now_ms() + (uint64_t)ms;
    cJSON *best = NULL;
    while (it_now_ms() < end) {
        cJSON *p = wait_for(c, "votes", "target", target, (int)(end - it_now_ms()));
        if (!p) break;
        if (!best || wsc_int(p, "v") > wsc_int(best, "v")) {
            cJSON_Delete(best);
            best = p;
        } else {
            cJSON_Delete(p);
        }
        if (wsc_int(best, "v") >= want_v) break;
    }
    return best;
}

static void likes_are_seen_identically_on_both_gateways(void **state)
{
    (void)state;
    struct rw x;
    rw_make(&x, 3, "chat");
    int64_t m = send_msg(x.c[0], x.room, "likeme", NULL);
    for (int i = 0; i < 3; i++)
        ok(it_req(x.c[i], "\"op\":\"like\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)m));
    /* Idempotent: a second like changes nothing. */
    cJSON *r = it_req(x.c[1], "\"op\":\"like\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)m);
    assert_null(wsc_err_code(r));
    cJSON_Delete(r);
    r = it_req(x.c[2], "\"op\":\"unlike\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)m);
    assert_int_equal(wsc_int(r, "ok.likes"), 2);
    int64_t v = wsc_int(r, "ok.v");
    cJSON_Delete(r);
    /* Both gateways' clients end with the same aggregates at the same version. */
    for (int i = 0; i < 2; i++) {
        cJSON *p = last_votes(x.c[i], m, v, 3000);
        assert_non_null(p);
        assert_int_equal(wsc_int(p, "likes"), 2);
        assert_int_equal(wsc_int(p, "v"), v);
        cJSON_Delete(p);
    }
    assert_string_equal(it_sqlf("SELECT like_count || '/' || (SELECT count(*) FROM likes WHERE"
                                " room_id = '%s' AND seq = %lld) FROM messages WHERE room_id = '%s'"
                                " AND seq = %lld",
                                x.room, (long long)m, x.room, (long long)m),
                        "2/2");
    /* History carries the aggregates. */
    r = it_req(x.c[2], "\"op\":\"history\",\"room\":\"%s\",\"limit\":1", x.room);
    cJSON *item =
        cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "messages"), 0);
    assert_int_equal(wsc_int(item, "seq"), m);
    assert_int_equal(wsc_int(item, "likes"), 2);
    cJSON_Delete(r);
    /* Each person can list what they liked. */
    r = it_req(x.c[0], "\"op\":\"my_votes\"");
    cJSON *likes = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "likes");
    assert_int_equal(cJSON_GetArraySize(likes), 1);
    assert_int_equal(wsc_int(cJSON_GetArrayItem(likes, 0), "seq"), m);
    cJSON_Delete(r);
    rw_free(&x, 3);
}

static void star_ratings_change_and_average(void **state)
{
    (void)state;
    struct rw x;
    rw_make(&x, 3, "dialogue");
    int64_t e1 = send_msg(x.c[0], x.room, "entry1", NULL);
    int64_t e2 = send_msg(x.c[0], x.room, "entry2", NULL);
    char parent[48];
    snprintf(parent, sizeof parent, ",\"parent\":%lld", (long long)e1);
    int64_t reply = send_msg(x.c[1], x.room, "reply1", parent);
    ok(it_req(x.c[0], "\"op\":\"rate\",\"room\":\"%s\",\"seq\":%lld,\"stars\":5", x.room,
              (long long)e1));
    ok(it_req(x.c[1], "\"op\":\"rate\",\"room\":\"%s\",\"seq\":%lld,\"stars\":4", x.room,
              (long long)e1));
    ok(it_req(x.c[2], "\"op\":\"rate\",\"room\":\"%s\",\"seq\":%lld,\"stars\":1", x.room,
              (long long)e1));
    /* Changed, then removed. */
    ok(it_req(x.c[2], "\"op\":\"rate\",\"room\":\"%s\",\"seq\":%lld,\"stars\":3", x.room,
              (long long)e1));
    ok(it_req(x.c[1], "\"op\":\"rate\",\"room\":\"%s\",\"seq\":%lld,\"stars\":2", x.room,
              (long long)e2));
    cJSON *r =
        it_req(x.c[1], "\"op\":\"unrate\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)e1);
    assert_int_equal(wsc_int(r, "ok.stars"), 2);
    int64_t v = wsc_int(r, "ok.v");
    cJSON_Delete(r);
    for (int i = 0; i < 2; i++) {
        cJSON *p = last_votes(x.c[i], e1, v, 3000);
        assert_non_null(p);
        assert_int_equal(wsc_int(p, "stars"), 2);
        assert_true(cJSON_GetObjectItem(p, "star_avg")->valuedouble == 4.0);
        cJSON_Delete(p);
    }
    /* Entries by rating: e1 (avg 4) before e2 (avg 2); e1 has one reply. */
    r = it_req(x.c[2], "\"op\":\"entries\",\"room\":\"%s\",\"sort\":\"rating\"", x.room);
    cJSON *list = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "entries");
    assert_int_equal(cJSON_GetArraySize(list), 2);
    assert_int_equal(wsc_int(cJSON_GetArrayItem(list, 0), "seq"), e1);
    assert_int_equal(wsc_int(cJSON_GetArrayItem(list, 0), "replies"), 1);
    assert_int_equal(wsc_int(cJSON_GetArrayItem(list, 1), "seq"), e2);
    cJSON_Delete(r);
    r = it_req(x.c[2], "\"op\":\"entries\",\"room\":\"%s\",\"sort\":\"newest\",\"limit\":1",
               x.room);
    list = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "entries");
    assert_int_equal(wsc_int(cJSON_GetArrayItem(list, 0), "seq"), e2);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "has_more")));
    cJSON_Delete(r);
    /* Replies: to an entry only, one level. */
    char bad[48];
    snprintf(bad, sizeof bad, ",\"parent\":%lld", (long long)reply);
    r = wsc_request(x.c[1], 5000,
                    "\"op\":\"send\",\"room\":\"%s\",\"client_msg_id\":\"r2\","
                    "\"body\":\"x\"%s",
                    x.room, bad);
    err(r, "bad_parent");
    r = it_req(x.c[1], "\"op\":\"my_votes\",\"room\":\"%s\"", x.room);
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "ratings")), 1);
    cJSON_Delete(r);
    rw_free(&x, 3);
}

static void bursts_are_coalesced(void **state)
{
    (void)state;
    struct rw x;
    rw_make(&x, 4, "chat");
    int64_t m = send_msg(x.c[0], x.room, "hot", NULL);
    /* 40 like/unlike commands in a burst, pipelined on four connections. */
    for (int round = 0; round < 10; round++)
        for (int i = 0; i < 4; i++) {
            char body[160];
            int n = snprintf(body, sizeof body,
                             "{\"id\":%d,\"op\":\"%s\",\"room\":\"%s\",\"seq\":%lld}", 1000 + round,
                             round % 2 ? "unlike" : "like", x.room, (long long)m);
            assert_int_equal(wsc_send_text(x.c[i], body, (size_t)n), 0);
        }
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 10; k++) {
            cJSON *r = wsc_next_reply(x.c[i], 5000);
            assert_non_null(r);
            assert_null(wsc_err_code(r));
            cJSON_Delete(r);
        }
    /* Let the last interval pass, then count what arrived. */
    usleep(600000);
    int events = 0;
    int64_t last_likes = -1, last_v = -1;
    cJSON *p;
    while ((p = wsc_wait_push(x.c[0], "votes", 300))) {
        events++;
        if (wsc_int(p, "v") > last_v) {
            last_v = wsc_int(p, "v");
            last_likes = wsc_int(p, "likes");
        }
        cJSON_Delete(p);
    }
    /* 40 changes, two gateways, a 200 ms interval: a handful of events, and
     * the newest says what the database says (every round ended unliked). */
    printf("votes events for 40 changes: %d\n", events);
    assert_true(events >= 1 && events <= 12);
    assert_int_equal(last_likes, 0);
    assert_string_equal(
        it_sqlf("SELECT like_count FROM messages WHERE room_id = '%s' AND seq = %lld", x.room,
                (long long)m),
        "0");
    rw_free(&x, 4);
}

static void events_are_recovered_with_since(void **state)
{
    (void)state;
    struct rw x;
    rw_make(&x, 2, "chat");
    int64_t m = send_msg(x.c[0], x.room, "before", NULL);
    int64_t since = m;
    wsc_close(x.c[1]);
    ok(it_req(x.c[0], "\"op\":\"like\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)m));
    ok(it_req(x.c[0], "\"op\":\"read\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)m));
    usleep(500000); /* the events are written after their interval */
    int64_t after = send_msg(x.c[0], x.room, "after", NULL);
    x.c[1] = it_connect_auth(1, x.w.tok[1]);
    cJSON *j = it_join(x.c[1], x.room, since);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "ok"), "recovered")));
    cJSON_Delete(j);
    /* In seq order: the votes and read events, then the message. */
    int64_t prev = since;
    bool votes = false, read = false, msg = false;
    for (int k = 0; k < 3; k++) {
        cJSON *p = wsc_next(x.c[1], 3000);
        assert_non_null(p);
        const char *type = wsc_str(p, "push");
        int64_t seq = wsc_int(p, "seq");
        assert_int_equal(seq, prev + 1);
        prev = seq;
        if (!strcmp(type, "votes")) {
            votes = true;
            assert_int_equal(wsc_int(p, "likes"), 1);
        } else if (!strcmp(type, "read")) {
            read = true;
            assert_string_equal(wsc_str(p, "person"), x.w.person[0]);
            assert_int_equal(wsc_int(p, "up_to"), m);
        } else if (!strcmp(type, "message")) {
            msg = true;
            assert_int_equal(seq, after);
        }
        cJSON_Delete(p);
    }
    assert_true(votes && read && msg);
    rw_free(&x, 2);
}

static void refusals_store_nothing(void **state)
{
    (void)state;
    struct rw x, other;
    rw_make(&x, 2, "dialogue");
    rw_make(&other, 1, "chat");
    int64_t e = send_msg(x.c[0], x.room, "entry", NULL);
    int64_t om = send_msg(other.c[0], other.room, "theirs", NULL);
    const char *before = "SELECT (SELECT count(*) FROM likes) || '/' || (SELECT count(*) FROM"
                         " ratings) || '/' || (SELECT count(*) FROM seen) || '/' || (SELECT"
                         " count(*) FROM read_state)";
    char snap[64];
    snprintf(snap, sizeof snap, "%s", it_sql(before));
    err(it_req(x.c[1], "\"op\":\"read\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)e + 100),
        "no_such_message");
    err(it_req(x.c[1], "\"op\":\"seen\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)e + 100),
        "no_such_message");
    err(it_req(x.c[1], "\"op\":\"like\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)e),
        "likes_not_allowed");
    /* An event row of the log (an edit's) is no message: not seen, liked or rated. */
    cJSON *ed = it_ok(x.c[0], "\"op\":\"edit\",\"room\":\"%s\",\"seq\":%lld,\"body\":\"edited\"",
                      x.room, (long long)e);
    int64_t ev = wsc_int(ed, "ok.event_seq");
    cJSON_Delete(ed);
    assert_true(ev > e); /* (the edit writes none of the tables snap counts) */
    err(it_req(x.c[1], "\"op\":\"seen\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)ev),
        "no_such_message");
    err(it_req(x.c[1], "\"op\":\"like\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)ev),
        "no_such_message");
    err(it_req(x.c[1], "\"op\":\"rate\",\"room\":\"%s\",\"seq\":%lld,\"stars\":4", x.room,
               (long long)ev),
        "no_such_message");
    err(it_req(x.c[1], "\"op\":\"rate\",\"room\":\"%s\",\"seq\":%lld,\"stars\":6", x.room,
               (long long)e),
        "stars_out_of_range");
    err(it_req(x.c[1], "\"op\":\"rate\",\"room\":\"%s\",\"seq\":%lld,\"stars\":0", x.room,
               (long long)e),
        "stars_out_of_range");
    err(it_req(other.c[0], "\"op\":\"rate\",\"room\":\"%s\",\"seq\":%lld,\"stars\":3", other.room,
               (long long)om),
        "ratings_not_allowed");
    /* Another workspace's room and message: not joinable, so not votable. */
    err(it_req(x.c[1], "\"op\":\"like\",\"room\":\"%s\",\"seq\":%lld", other.room, (long long)om),
        "not_joined");
    err(it_join(x.c[1], other.room, -1), "room_not_found");
    err(it_req(x.c[1], "\"op\":\"read\",\"room\":\"%s\",\"seq\":1", other.room), "not_joined");
    err(it_req(x.c[1], "\"op\":\"seen_by\",\"room\":\"%s\",\"seq\":%lld", x.room,
               (long long)e + 50),
        "no_such_message");
    err(it_req(x.c[1], "\"op\":\"rate\",\"room\":\"%s\",\"seq\":%lld,\"stars\":\"5\"", x.room,
               (long long)e),
        "bad_request");
    err(it_req(x.c[1], "\"op\":\"read\",\"room\":\"%s\"", x.room), "bad_request");
    assert_string_equal(it_sql(before), snap);
    /* The connection survives all of it. */
    ok(it_req(x.c[1], "\"op\":\"rate\",\"room\":\"%s\",\"seq\":%lld,\"stars\":5", x.room,
              (long long)e));
    rw_free(&x, 2);
    rw_free(&other, 1);
}

static void large_rooms_keep_read_state_private(void **state)
{
    (void)state;
    struct rw x;
    rw_make(&x, 2, "chat");
    it_sqlf("UPDATE rooms SET broadcast_reads = false WHERE id = '%s' RETURNING 1", x.room);
    int64_t m = send_msg(x.c[0], x.room, "quiet", NULL);
    ok(it_req(x.c[1], "\"op\":\"read\",\"room\":\"%s\",\"seq\":%lld", x.room, (long long)m));
    cJSON *p = wsc_wait_push(x.c[0], "read", 700);
    assert_null(p);
    /* ... but the state is stored. */
    assert_string_equal(
        it_sqlf("SELECT up_to = %lld FROM read_state WHERE room_id = '%s'", (long long)m, x.room),
        "t");
    rw_free(&x, 2);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(watermark_is_monotonic_and_seen_is_out_of_order),
        cmocka_unit_test(unread_counts_survive_reconnect),
        cmocka_unit_test(likes_are_seen_identically_on_both_gateways),
        cmocka_unit_test(star_ratings_change_and_average),
        cmocka_unit_test(bursts_are_coalesced),
        cmocka_unit_test(events_are_recovered_with_since),
        cmocka_unit_test(refusals_store_nothing),
        cmocka_unit_test(large_rooms_keep_read_state_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
