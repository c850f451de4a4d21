#include "pace.h"

#include "bus.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

/* KEYS[1] the person's hash in the room: `last` (ms of the previous message),
 * `at` (ms the buckets were last drained), `b<limit>` (tokens taken).
 * ARGV: slow mode ms, ms to keep the hash, then the bucket limits.
 * Returns {since previous (-1: none), wait (> 0: refused), now, taken...};
 * the buckets' levels are in thousandths of a token. A bucket never holds
 * more than twice its limit taken, so a flood that is only flagged (not
 * refused) drains in two minutes at most. One HMGET and one HSET: each call
 * from Lua costs more than the work it does. */
static const char take_lua[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local k = KEYS[1]\n"
    "local f = {'last', 'at'}\n"
    "for i = 3, #ARGV do f[#f + 1] = 'b' .. ARGV[i] end\n"
    "local h = redis.call('HMGET', k, unpack(f))\n"
    "local last = tonumber(h[1])\n"
    "local since = last and math.max(0, now - last) or -1\n"
    "local slow = tonumber(ARGV[1])\n"
    "if since >= 0 and since < slow then return {since, slow - since, now} end\n"
    "local gone = math.max(0, now - (tonumber(h[2]) or now))\n"
    "local out = {since, 0, now}\n"
    "local set = {'last', now, 'at', now}\n"
    "for i = 3, #ARGV do\n"
    "  local cap = tonumber(ARGV[i])\n"
    "  local lv = math.max(0, (tonumber(h[i]) or 0) - gone * cap / 60000)\n"
    "  out[#out + 1] = math.floor(lv * 1000)\n"
    "  set[#set + 1] = f[i]\n"
    "  set[#set + 1] = math.min(lv + 1, 2 * cap)\n"
    "end\n"
    "redis.call('HSET', k, unpack(set))\n"
    "redis.call('PEXPIRE', k, ARGV[2])\n"
    "return out\n";

/* ARGV: the refunded message's time, the previous message's (-1: none), the
 * bucket limits. `last` goes back only if no later message moved it. */
static const char refund_lua[] = "local k = KEYS[1]\n"
                                 "if redis.call('HGET', k, 'last') == ARGV[1] then\n"
                                 "  if ARGV[2] == '-1' then redis.call('HDEL', k, 'last')\n"
                                 "  else redis.call('HSET', k, 'last', ARGV[2]) end\n"
                                 "end\n"
                                 "for i = 3, #ARGV do\n"
                                 "  local lv = tonumber(redis.call('HGET', k, 'b' .. ARGV[i]))\n"
                                 "  if lv then redis.call('HSET', k, 'b' .. ARGV[i], "
                                 "math.max(0, lv - 1)) end\n"
                                 "end\n"
                                 "return 0\n";

static int64_t int_at(const redisReply *r, size_t i)
{
    return r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer : -1;
}

static void on_take(void *ud, const void *reply)
{
    struct pace *p = ud;
    const redisReply *r = reply;
    bool ok = r && r->type == REDIS_REPLY_ARRAY && r->elements >= 3;
    if (ok) {
        p->since_last_ms = int_at(r, 0);
        p->wait_ms = int_at(r, 1);
        p->at = int_at(r, 2);
        if (p->wait_ms <= 0 && r->elements != 3 + (size_t)p->nrates) ok = false;
        for (int i = 0; ok && p->wait_ms <= 0 && i < p->nrates; i++) {
            int64_t v = int_at(r, 3 + (size_t)i);
            p->taken_milli[i] = v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
        }
    }
    p->cb(p->ud, ok ? p : NULL);
}

/* argv: EVAL script 1 key, then the numbers (formatted into nums). */
static int run(struct bus *b, const char *script, const char *room, const char *person, int64_t n1,
               int64_t n2, const struct pace *p, bus_reply_cb cb, void *ud)
{
    char key[96], nums[2 + GL_MAX_RATES][24];
    const char *argv[6 + GL_MAX_RATES];
    size_t lens[6 + GL_MAX_RATES];
    int n = 0;
    snprintf(key, sizeof key, "parley:pace:{%s}:%s", room, person); /* the room's slot */
    argv[n++] = "EVAL";
    argv[n++] = script;
    argv[n++] = "1";
    argv[n++] = key;
    snprintf(nums[0], sizeof nums[0], "%lld", (long long)n1);
    snprintf(nums[1], sizeof nums[1], "%lld", (long long)n2);
    argv[n++] = nums[0];
    argv[n++] = nums[1];
    for (int i = 0; i < p->nrates; i++) {
        snprintf(nums[2 + i], sizeof nums[2 + i], "%d", p->rates[i]);
        argv[n++] = nums[2 + i];
    }
    for (int i = 0; i < n; i++)
        lens[i] = strlen(argv[i]);
    return bus_call(b, cb, ud, n, argv, lens);
}

int pace_take(struct bus *b, const char *room, const char *person, struct pace *p, pace_cb cb,
              void *ud)
{
    p->cb = cb;
    p->ud = ud;
    return run(b, take_lua, room, person, p->slow_ms, p->keep_ms, p, on_take, p);
}

static void ignore_reply(void *ud, const void *reply)
{
    (void)ud;
    (void)reply;
}

void pace_refund(struct bus *b, const char *room, const char *person, const struct pace *p)
{
    int64_t prev = p->since_last_ms < 0 ? -1 : p->at - p->since_last_ms;
    /* best effort: a lost refund only slows the sender a little longer */
    (void)run(b, refund_lua, room, person, p->at, prev, p, ignore_reply, NULL);
}
