/* Integration: presence and typing across two gateways. A snapshot on join,
 * then joins and leaves as diffs (carried to the other gateway by presence
 * hints); a person with two connections counts once; the people of a gateway
 * whose liveness key lapses leave, and come back with it; an idle room is
 * neither written nor read in Redis, and its members stay listed; typing
 * reaches the other gateway and is rate-limited. */
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

/* Milliseconds until a presence push names person under key, or -1 after ms. */
static long until(struct wsc *c, int ms, const char *person, const char *key)
{
    uint64_t t0 = it_now_ms(), end = t0 + (uint64_t)ms;
    while (it_now_ms() < end) {
        cJSON *p = wsc_wait_push(c, "presence", (int)(end - it_now_ms()));
        if (!p) break;
        bool hit = names(cJSON_GetObjectItem(p, key), person, NULL);
        cJSON_Delete(p);
        if (hit) return (long)(it_now_ms() - t0);
    }
    return -1;
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
    /* The bot was the last member on its gateway: its entry goes with it. */
    wsc_close(bt);
    assert_true(until(a, 5000, bot, "left") >= 0);
    wsc_close(a);
}

/* A gateway whose liveness key goes (a crashed or stopped one) has its
 * people leave the others' views, and join again if the key comes back:
 * readers leave a gone gateway's entries out and never delete them. */
static void gone_gateways_people_leave(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 1, NULL);
    struct wsc *a = it_member(0, w.tok[0], w.room);
    int times;
    watch(a, 2500, w.person[0], "online", &times, NULL); /* the snapshot first */
    assert_int_equal(times, 1);
    /* Another gateway's entry, its liveness key (4 s to live) and its hint. */
    char gw[9], out[256];
    snprintf(gw, sizeof gw, "%08x", (unsigned)rand());
    const char *ghost = "00000000-0000-4000-8000-00000000beef";
    assert_int_equal(it_run(out, sizeof out,
                            "redis-cli -p %d SET parley:gateway:{%s} 1 PX 4000 && "
                            "redis-cli -p %d ZADD parley:presence:{%s} %lld '%s|%s|0' && "
                            "printf 'p%s\n' | redis-cli -p %d -x PUBLISH room:%s",
                            IT.redis_port, gw, IT.redis_port, w.room,
                            (long long)time(NULL) * 1000 + 600000, ghost, gw, gw, IT.redis_port,
                            w.room),
                     0);
    /* unknown to A's gateway: shown once its key has answered (until, not
     * watch: a watch of the whole window would swallow the "left" that may
     * follow inside it on a slow machine) */
    assert_true(until(a, 5000, ghost, "joined") >= 0);
    /* The key lapses (4 s after it was set) and is checked every 2 s (15 s
     * also covers a grace after a long stall of the gateway on a busy machine). */
    long ms = until(a, 15000, ghost, "left");
    print_message("the ghost left %ld ms after it joined\n", ms);
    assert_true(ms >= 0);
    /* Its entry is still there (nobody deletes another gateway's entries). */
    assert_int_equal(it_run(out, sizeof out,
                            "redis-cli -p %d ZSCORE parley:presence:{%s} '%s|%s|0'", IT.redis_port,
                            w.room, ghost, gw),
                     0);
    assert_true(atoll(out) > 0);
    /* The gateway is back: its people with it, without a hint. */
    assert_int_equal(it_run(out, sizeof out, "redis-cli -p %d SET parley:gateway:{%s} 1 PX 20000",
                            IT.redis_port, gw),
                     0);
    assert_true(until(a, 8000, ghost, "joined") >= 0);
    assert_int_equal(it_run(out, sizeof out,
                            "redis-cli -p %d DEL parley:gateway:{%s} && "
                            "redis-cli -p %d ZREM parley:presence:{%s} '%s|%s|0'",
                            IT.redis_port, gw, IT.redis_port, w.room, ghost, gw),
                     0);
    wsc_close(a);
}

/* Stops the gateway pid (exit status 0); a, on another gateway, must then
 * see person leave. *exit_ms: from the SIGTERM to the exit; returns the ms
 * from the exit to the leave. */
static long stop_and_see_leave(struct wsc *a, pid_t pid, const char *person, uint64_t *exit_ms)
{
    uint64_t t0 = it_now_ms();
    assert_int_equal(it_stop(pid), 0);
    *exit_ms = it_now_ms() - t0;
    long ms = until(a, 20000, person, "left");
    print_message("left %ld ms after the exit (%llu ms after the SIGTERM)\n", ms,
                  (unsigned long long)*exit_ms);
    assert_true(ms >= 0);
    return ms;
}

/* A gateway stopped gracefully, its client taking the close: the room
 * empties as the client goes, and its entries' removal and hint reach the
 * others before the links go (about a second), not when the gateway's
 * liveness key lapses (10 to 12 s). */
static void a_stopped_gateways_people_leave_as_it_stops(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 2, NULL);
    int port;
    pid_t pid = it_own_gateway("gw-pres-stop", &port, NULL);
    struct wsc *a = it_member(0, w.tok[0], w.room);
    struct wsc *b = it_connect_port(port, NULL, w.tok[1]);
    assert_non_null(b);
    cJSON_Delete(it_join(b, w.room, -1));
    assert_true(until(a, 5000, w.person[1], "joined") >= 0);
    uint64_t exit_ms;
    assert_true(stop_and_see_leave(a, pid, w.person[1], &exit_ms) < 4000);
    wsc_abort(b);
    wsc_close(a);
}

/* A client that reads nothing while the gateway stops: its queue never
 * drains, so the drain cuts it off after 2 s and its room is left only as
 * the links go. The stopping gateway deletes its liveness key first, so
 * the others leave it out at their next check of the key (1 to 3 s), not
 * when the key lapses (8 to 10 s after the exit). */
static void a_stopped_gateways_stuck_client_leaves_too(void **state)
{
    (void)state;
    struct it_world w;
    it_world(&w, 2, NULL);
    int port; /* an out-queue that takes more than the sockets do */
    pid_t pid = it_own_gateway("gw-pres-stuck", &port, "--outq-bytes", "67108864", NULL);
    struct wsc *a = it_member(0, w.tok[0], w.room);
    it_send_big(a, w.room, 20); /* a history page is 60 KB */
    struct wsc_opts small = {.rcvbuf = 4096};
    struct wsc *b = it_connect_port(port, &small, w.tok[1]);
    assert_non_null(b);
    cJSON_Delete(it_join(b, w.room, -1));
    assert_true(until(a, 5000, w.person[1], "joined") >= 0);
    enum { PAGES = 100 };
    it_ask_history(b, port, w.room, PAGES, 500); /* all answered into its queue */
    uint64_t exit_ms;
    long ms = stop_and_see_leave(a, pid, w.person[1], &exit_ms);
    assert_true(exit_ms >= 1900); /* the drain waited for it, then cut it off */
    assert_true(ms < 5500);
    wsc_abort(b);
    wsc_close(a);
}

/* Redis's count of calls of cmd so far. */
static long calls(const char *cmd)
{
    char out[8192], key[64];
    assert_int_equal(it_run(out, sizeof out, "redis-cli -p %d INFO commandstats", IT.redis_port),
                     0);
    snprintf(key, sizeof key, "cmdstat_%s:calls=", cmd);
    const char *z = strstr(out, key);
    return z ? atol(z + strlen(key)) : 0;
}

static void idle_room_costs_no_redis_traffic(void **state)
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
    /* Nobody moves for 12.5 s (past the old 5 s entry TTL): B never leaves
     * A's view, B's entry stays live in Redis, and the room is neither
     * written nor read (a read every tick, as before, made 25 a gateway). */
    usleep(2500000); /* the hint's two reads, a tick apart */
    long z0 = calls("zadd"), r0 = calls("zrangebyscore");
    watch(a, 12500, w.person[1], "left", &times, NULL);
    assert_int_equal(times, 0);
    char out[512];
    assert_int_equal(it_run(out, sizeof out,
                            "redis-cli -p %d ZRANGEBYSCORE parley:presence:{%s} %lld +inf",
                            IT.redis_port, w.room, (long long)time(NULL) * 1000),
                     0);
    assert_non_null(strstr(out, w.person[1]));
    assert_non_null(strstr(out, w.person[0]));
    long z = calls("zadd") - z0, r = calls("zrangebyscore") - r0;
    print_message("in 12.5 s idle, 2 gateways: %ld ZADD, %ld reads\n", z, r);
    assert_int_equal(z, 0);
    /* None is due (the 30 s bound is not reached); the ghost of the test
     * before going for good may cost its gateway one. */
    assert_true(r <= 2);
    /* Both gateways keep their liveness keys. */
    assert_int_equal(it_run(out, sizeof out,
                            "redis-cli -p %d --scan --pattern 'parley:gateway:*' | wc -l",
                            IT.redis_port),
                     0);
    assert_true(atoi(out) >= 2);
    wsc_close(b);
    wsc_close(a);
}

static void typing_crosses_gateways_and_is_rate_limited(void **state)
{
    (void)state;
    struct it_world w;
    struct wsc *a, *b;
    it_pair(&w, 0, &a, 1, &b);
    assert_int_equal(it_wait_subscribers(w.room, 2, 5000), 0);
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
        cmocka_unit_test(gone_gateways_people_leave),
        cmocka_unit_test(a_stopped_gateways_people_leave_as_it_stops),
        cmocka_unit_test(a_stopped_gateways_stuck_client_leaves_too),
        cmocka_unit_test(idle_room_costs_no_redis_traffic),
        cmocka_unit_test(typing_crosses_gateways_and_is_rate_limited),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
