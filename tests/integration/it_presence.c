/* Integration: presence and typing across two gateways. A snapshot on join,
 * then joins and leaves as diffs; a person with two connections counts once;
 * the entry of a gateway that stops refreshing (a dead one) expires within
 * seconds; a member who stays idle far past the entries' TTL (5 s) is still
 * listed on the other gateway, though an unchanged room is written to Redis
 * every other second only; typing reaches the other gateway and is
 * rate-limited. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "itest.h"

/* Whether list (an array of {person, avatar}) names person; *avatar set. */
static bool names(const cJSON *list, const char *person, bool *avatar)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, list)
    {
        if (!strcmp(wsc_str(e, "person"), person)) {
            if (avatar) *avatar = cJSON_IsTrue(cJSON_GetObjectItem(e, "avatar"));
            return true;
        }
    }
    return false;
}

/* Collects presence pushes for ms; counts how often person appears under
 * key ("joined", "left", "online") and returns the last count seen. */
static int watch(struct wsc *c, int ms, const char *person, const char *key, int *times,
                 bool *avatar)
{
    int last = -1;
    *times = 0;
    uint64_t end = it_now_ms() + (uint64_t)ms;
    while (it_now_ms() < end) {
        cJSON *p = wsc_wait_push(c, "presence", (int)(end - it_now_ms()));
        if (!p) break;
        last = (int)wsc_int(p, "count");
        if (names(cJSON_GetObjectItem(p, key), person, avatar)) (*times)++;
        cJSON_Delete(p);
    }
    return last;
}

static void snapshot_diffs_and_people_count_once(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 2, NULL);
    char bot[40], bot_tok[64];
    snprintf(bot, sizeof bot, "%s",
             it_admin("create-person %s bot-%d@test.invalid avatar", w.ws, rand()));
    snprintf(bot_tok, sizeof bot_tok, "%s", it_admin("create-token %s %s", bot, w.ws));
    struct wsc *a = it_member(0, w.tok[0], w.room);
    int times;
    /* The snapshot names A. */
    uint64_t end = it_now_ms() + 4000;
    cJSON *snap = NULL;
    while (!snap && it_now_ms() < end) {
        cJSON *p = wsc_wait_push(a, "presence", 4000);
        if (p && cJSON_GetObjectItem(p, "online") &&
            names(cJSON_GetObjectItem(p, "online"), w.person[0], NULL))
            snap = p;
        else
            cJSON_Delete(p);
    }
    assert_non_null(snap);
    cJSON_Delete(snap);
    /* B joins on both gateways: one "joined" for B, two people online. */
    struct wsc *b1 = it_member(1, w.tok[1], w.room), *b2 = it_member(0, w.tok[1], w.room);
    int count = watch(a, 3000, w.person[1], "joined", &times, NULL);
    assert_int_equal(times, 1);
    assert_int_equal(count, 2);
    /* The avatar is flagged. */
    struct wsc *bt = it_member(1, bot_tok, w.room);
    bool avatar = false;
    count = watch(a, 3000, bot, "joined", &times, &avatar);
    assert_int_equal(times, 1);
    assert_true(avatar);
    assert_int_equal(count, 3);
    /* One of B's connections leaves: B is still online. */
    wsc_close(b1);
    count = watch(a, 2500, w.person[1], "left", &times, NULL);
    assert_int_equal(times, 0);
    /* The last one leaves: B leaves. */
    wsc_close(b2);
    count = watch(a, 3000, w.person[1], "left", &times, NULL);
    assert_int_equal(times, 1);
    assert_int_equal(count, 2);
    wsc_close(bt);
    wsc_close(a);
}

static void dead_gateway_entries_expire(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *a = it_member(0, w.tok[0], w.room);
    int times;
    watch(a, 2500, w.person[0], "online", &times, NULL); /* the snapshot first */
    assert_int_equal(times, 1);
    /* An entry written by a gateway that then died: never refreshed. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long exp = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 3000;
    const char *ghost = "00000000-0000-4000-8000-00000000beef";
    char out[256];
    assert_int_equal(it_run(out, sizeof out,
                            "redis-cli -p %d ZADD parley:presence:{%s} %lld '%s|deadbeef|0'",
                            IT.redis_port, w.room, exp, ghost),
                     0);
    watch(a, 2500, ghost, "joined", &times, NULL);
    assert_int_equal(times, 1);
    watch(a, 5000, ghost, "left", &times, NULL);
    assert_int_equal(times, 1);
    wsc_close(a);
}

/* Redis's count of ZADD commands so far. */
static long zadds(void)
{
    char out[4096];
    assert_int_equal(it_run(out, sizeof out, "redis-cli -p %d INFO commandstats", IT.redis_port),
                     0);
    const char *z = strstr(out, "cmdstat_zadd:calls=");
    return z ? atol(z + strlen("cmdstat_zadd:calls=")) : 0;
}

static void idle_member_stays_listed_past_ttl(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 2, NULL);
    struct wsc *a = it_member(0, w.tok[0], w.room);
    struct wsc *b = it_member(1, w.tok[1], w.room);
    int times;
    /* B shows on A's gateway (in the snapshot or as joined). */
    uint64_t end = it_now_ms() + 4000;
    bool seen = false;
    while (!seen && it_now_ms() < end) {
        cJSON *p = wsc_wait_push(a, "presence", (int)(end - it_now_ms()));
        if (!p) break;
        seen = names(cJSON_GetObjectItem(p, "online"), w.person[1], NULL) ||
               names(cJSON_GetObjectItem(p, "joined"), w.person[1], NULL);
        cJSON_Delete(p);
    }
    assert_true(seen);
    /* Nobody moves for 2.5 TTLs: B never leaves A's view, and B's entry
     * is always live in Redis (its expiry is ahead of the clock). */
    long z0 = zadds();
    uint64_t t0 = it_now_ms();
    watch(a, 12500, w.person[1], "left", &times, NULL);
    uint64_t held = it_now_ms() - t0;
    assert_int_equal(times, 0);
    char out[512];
    assert_int_equal(it_run(out, sizeof out,
                            "redis-cli -p %d ZRANGEBYSCORE parley:presence:{%s} %lld +inf",
                            IT.redis_port, w.room, (long long)time(NULL) * 1000),
                     0);
    assert_non_null(strstr(out, w.person[1]));
    assert_non_null(strstr(out, w.person[0]));
    /* And the room was rewritten about every 2 s per gateway, not every
     * second (2 gateways: ~12 in 12.5 s, against 25 a tick apiece). */
    long z = zadds() - z0;
    print_message("ZADDs in %llu ms, 2 gateways: %ld\n", (unsigned long long)held, z);
    assert_true(z >= 2 * (long)(held / 2000) - 2);
    assert_true(z <= 2 * (long)(held / 2000) + 4);
    wsc_close(b);
    wsc_close(a);
}

static void typing_crosses_gateways_and_is_rate_limited(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *a, *b;
    it_pair(&w, 0, &a, 1, &b);
    cJSON *r = wsc_request(a, 3000, "\"op\":\"typing\",\"room\":\"%s\"", w.room);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "sent")));
    cJSON_Delete(r);
    r = wsc_request(a, 3000, "\"op\":\"typing\",\"room\":\"%s\"", w.room);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "ok"), "sent")));
    cJSON_Delete(r);
    cJSON *p = wsc_wait_push(b, "typing", 3000);
    assert_non_null(p);
    assert_string_equal(wsc_str(p, "person"), w.person[0]);
    assert_string_equal(wsc_str(p, "room"), w.room);
    cJSON_Delete(p);
    assert_null(wsc_wait_push(b, "typing", 500));
    /* Never stored. */
    char q[160];
    snprintf(q, sizeof q, "SELECT count(*) FROM messages WHERE room_id = '%s'", w.room);
    assert_string_equal(it_sql(q), "0");
    /* Not joined: refused. */
    struct it_world w2;
    it_world(&w2, 1, NULL);
    r = wsc_request(a, 3000, "\"op\":\"typing\",\"room\":\"%s\"", w2.room);
    assert_string_equal(wsc_err_code(r), "not_joined");
    cJSON_Delete(r);
    wsc_close(a);
    wsc_close(b);
}

int main(void)
{
    it_load_env();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(snapshot_diffs_and_people_count_once),
        cmocka_unit_test(dead_gateway_entries_expire),
        cmocka_unit_test(idle_member_stays_listed_past_ttl),
        cmocka_unit_test(typing_crosses_gateways_and_is_rate_limited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
