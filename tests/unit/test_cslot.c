/* Unit tests of the cluster key space (cslot.h): fixed CRC and slot vectors,
 * the hash-tag rules, and the slot map read from a CLUSTER SLOTS reply
 * captured from a real cluster. When PARLEY_TEST_CLUSTER_PORT names a node
 * of a running cluster (ctest starts one: with_cluster.sh), the slots of a
 * few thousand keys are checked against its CLUSTER KEYSLOT and the map
 * parsed from its own CLUSTER SLOTS is checked against where keys live. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cslot.h"

static void crc_vectors(void **state)
{
    (void)state;
    assert_int_equal(cslot_crc16("123456789", 9), 0x31c3); /* the XMODEM check value */
    assert_int_equal(cslot_crc16("", 0), 0);
}

/* Values read from CLUSTER KEYSLOT of Redis 7.0.15. */
static void slot_vectors(void **state)
{
    (void)state;
    static const struct {
        const char *k;
        int slot;
    } v[] = {
        {"foo", 12182}, {"bar", 5061},    {"123456789", 12739},
        {"hello", 866}, {"", 0},          {"{user1000}.following", 3443},
        {"{}", 15257},  {"{{a}}", 10276}, {"a{b}c{d}", 3300},
        {"{", 4092},    {"}{", 12793},    {"{a", 10276},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        assert_int_equal(cslot_keyslot(v[i].k, strlen(v[i].k)), v[i].slot);
}

static void hash_tags(void **state)
{
    (void)state;
    int s = cslot_keyslot("room", 4);
    /* the tag alone decides */
    assert_int_equal(cslot_keyslot("{room}", 6), s);
    assert_int_equal(cslot_keyslot("parley:presence:{room}", 22), s);
    assert_int_equal(cslot_keyslot("x{room}y{other}", 15), s);
    /* the first `{` and the next `}` */
    assert_int_equal(cslot_keyslot("{{room}}", 8), cslot_keyslot("{room", 5));
    /* an empty tag does not count: the whole key is hashed */
    assert_int_equal(cslot_keyslot("{}room", 6), cslot_crc16("{}room", 6) & 16383);
    assert_int_equal(cslot_keyslot("{}{room}", 8), cslot_crc16("{}{room}", 8) & 16383);
    /* no closing brace: the whole key */
    assert_int_equal(cslot_keyslot("{room", 5), cslot_crc16("{room", 5) & 16383);
    /* bytes, not strings: a NUL inside a tag is part of it */
    assert_int_equal(cslot_keyslot("{a\0b}", 5), cslot_crc16("a\0b", 3) & 16383);
}

/* A CLUSTER SLOTS reply of a three-master cluster with a replica each,
 * captured from redis-server 7.0.15 (svc_redis_cluster_start). */
static const char captured[] =
    "*3\r\n*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:53984\r\n$40\r\n"
    "0cbe0b9b09a8287c48f04542c0529cfd2b3dfc9c\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n:53989\r\n$40\r\n"
    "8a1f3c16ed04c9db8d9ebb98f42c6f553e64c93d\r\n*0\r\n*4\r\n:5461\r\n:10922\r\n*4\r\n$9\r\n"
    "127.0.0.1\r\n:53985\r\n$40\r\ne454ced42f736daff90faf444fdfc5006dddbf27\r\n*0\r\n*4\r\n$9\r\n"
    "127.0.0.1\r\n:53987\r\n$40\r\n4f3d28717f0e6106ddabb890d87ac510819127ee\r\n*0\r\n*4\r\n"
    ":10923\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:53986\r\n$40\r\n"
    "a4e5a0919fe0b380ba1621a47de6cf1998a455e9\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n:53988\r\n$40\r\n"
    "67ed15cb88dab39d5f26dcbe812f49e967b9cb58\r\n*0\r\n";

static redisReply *parse_resp(const char *p, size_t n)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, p, n), REDIS_OK);
    assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
    redisReaderFree(rd);
    assert_non_null(r);
    return r;
}

static void map_captured(void **state)
{
    (void)state;
    struct cslot_map *m = malloc(sizeof *m);
    assert_non_null(m);
    redisReply *r = parse_resp(captured, sizeof captured - 1);
    assert_int_equal(cslot_map_parse(m, r, "127.0.0.1"), 0);
    assert_int_equal(m->nnodes, 6);
    assert_int_equal(m->uncovered, 0);
    int m0 = cslot_map_find(m, "127.0.0.1", 53984), m1 = cslot_map_find(m, "127.0.0.1", 53985),
        m2 = cslot_map_find(m, "127.0.0.1", 53986);
    assert_true(m0 >= 0 && m1 >= 0 && m2 >= 0);
    assert_int_equal(m->owner[0], m0);
    assert_int_equal(m->owner[5460], m0);
    assert_int_equal(m->owner[5461], m1);
    assert_int_equal(m->owner[10922], m1);
    assert_int_equal(m->owner[10923], m2);
    assert_int_equal(m->owner[16383], m2);
    assert_int_equal(m->node[m0].master, -1);
    assert_int_equal(m->node[cslot_map_find(m, "127.0.0.1", 53989)].master, m0);
    assert_int_equal(m->node[cslot_map_find(m, "127.0.0.1", 53987)].master, m1);
    assert_int_equal(m->node[cslot_map_find(m, "127.0.0.1", 53988)].master, m2);
    assert_int_equal(cslot_map_find(m, "127.0.0.1", 1), -1);
    freeReplyObject(r);
    free(m);
}

static void map_refused(void **state)
{
    (void)state;
    struct cslot_map *m = malloc(sizeof *m);
    assert_non_null(m);
    static const char *bad[] = {
        "-ERR This instance has cluster support disabled\r\n",
        "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n",  /* slot out of range */
        "*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\nh\r\n:1\r\n",      /* reversed range */
        "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:0\r\n",      /* port 0 */
        "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\nh\r\n:65536\r\n",  /* port too big */
        "*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\nh\r\n",            /* no port */
        "*1\r\n*2\r\n:0\r\n:1\r\n",                             /* no master */
        "*1\r\n*3\r\n$1\r\n0\r\n:1\r\n*2\r\n$1\r\nh\r\n:1\r\n", /* slot as string */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        redisReply *r = parse_resp(bad[i], strlen(bad[i]));
        assert_int_equal(cslot_map_parse(m, r, "x"), -EINVAL);
        assert_int_equal(m->nnodes, 0);
        assert_int_equal(m->uncovered, CSLOT_SLOTS);
        freeReplyObject(r);
    }
    /* an empty host is the address asked; a partial map counts its holes */
    const char *part = "*1\r\n*3\r\n:0\r\n:99\r\n*2\r\n$0\r\n\r\n:7000\r\n";
    redisReply *r = parse_resp(part, strlen(part));
    assert_int_equal(cslot_map_parse(m, r, "10.0.0.1"), 0);
    assert_int_equal(cslot_map_find(m, "10.0.0.1", 7000), 0);
    assert_int_equal(m->uncovered, CSLOT_SLOTS - 100);
    assert_int_equal(m->owner[100], CSLOT_NONE);
    freeReplyObject(r);
    /* a host that does not fit */
    char big[256];
    snprintf(big, sizeof big, "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$%d\r\n%0*d\r\n:1\r\n", CSLOT_HOST_CAP,
             CSLOT_HOST_CAP, 0);
    r = parse_resp(big, strlen(big));
    assert_int_equal(cslot_map_parse(m, r, "x"), -ENOSPC);
    freeReplyObject(r);
    free(m);
}

/* ---- against a running cluster ----------------------------------------- */

static int cluster_port(void)
{
    const char *p = getenv("PARLEY_TEST_CLUSTER_PORT");
    return p ? atoi(p) : 0;
}

/* Keys that exercise the tag rules: random bytes from an alphabet heavy in
 * braces, plus the edge cases by name. */
static size_t make_key(unsigned *seed, char *k, size_t cap)
{
    static const char alpha[] = "{{}}ab{}c\0z:-x9";
    size_t n = (size_t)(rand_r(seed) % (cap < 24 ? cap : 24));
    for (size_t i = 0; i < n; i++)
        k[i] = alpha[rand_r(seed) % (sizeof alpha - 1)];
    return n;
}

static void live_keyslot(void **state)
{
    (void)state;
    int port = cluster_port();
    if (!port) skip();
    redisContext *c = redisConnect("127.0.0.1", port);
    assert_true(c && !c->err);
    enum { N = 4000 };
    static char keys[N][24];
    static size_t lens[N];
    static const char *named[] = {"{}",  "{{a}}",  "a{b}c{d}", "{",    "}",        "{}{a}",
                                  "a{}", "{a}{b}", "}{a}",     "{{}}", "room:{x}", "{\xff}"};
    unsigned seed = 19;
    for (int i = 0; i < N; i++) {
        if ((size_t)i < sizeof named / sizeof named[0]) {
            lens[i] = strlen(named[i]);
            memcpy(keys[i], named[i], lens[i]);
        } else {
            lens[i] = make_key(&seed, keys[i], sizeof keys[i]);
        }
        const char *argv[3] = {"CLUSTER", "KEYSLOT", keys[i]};
        size_t al[3] = {7, 7, lens[i]};
        redisAppendCommandArgv(c, 3, argv, al);
    }
    int braces = 0;
    for (int i = 0; i < N; i++) {
        redisReply *r = NULL;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        if (cslot_keyslot(keys[i], lens[i]) != r->integer)
            fail_msg("key %d (%.*s): ours %d, Redis %lld", i, (int)lens[i], keys[i],
                     cslot_keyslot(keys[i], lens[i]), r->integer);
        braces += memchr(keys[i], '{', lens[i]) != NULL;
        freeReplyObject(r);
    }
    assert_true(braces > N / 2); /* the sample did exercise the tag rule */
    redisFree(c);
}

/* The map parsed from the cluster's own CLUSTER SLOTS: every slot covered,
 * three masters with a replica each, and a key read on the master the map
 * names is served there (no MOVED), while another master redirects to it. */
static void live_map(void **state)
{
    (void)state;
    int port = cluster_port();
    if (!port) skip();
    redisContext *c = redisConnect("127.0.0.1", port);
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, "CLUSTER SLOTS");
    struct cslot_map *m = malloc(sizeof *m);
    assert_non_null(m);
    assert_int_equal(cslot_map_parse(m, r, "127.0.0.1"), 0);
    freeReplyObject(r);
    redisFree(c);
    assert_int_equal(m->uncovered, 0);
    assert_int_equal(m->nnodes, 6);
    int masters = 0;
    for (int i = 0; i < m->nnodes; i++)
        masters += m->node[i].master < 0;
    assert_int_equal(masters, 3);
    redisContext *mc[CSLOT_MAX_NODES] = {0};
    for (int k = 0; k < 300; k++) {
        char key[32];
        snprintf(key, sizeof key, "k%d", k);
        int slot = cslot_keyslot(key, strlen(key));
        int own = m->owner[slot];
        for (int i = 0; i < m->nnodes; i++) {
            if (m->node[i].master >= 0) continue;
            if (!mc[i]) mc[i] = redisConnect(m->node[i].host, m->node[i].port);
            r = redisCommand(mc[i], "GET %s", key);
            assert_non_null(r);
            if (i == own) {
                assert_int_equal(r->type, REDIS_REPLY_NIL);
            } else {
                char want[96];
                snprintf(want, sizeof want, "MOVED %d %s:%d", slot, m->node[own].host,
                         m->node[own].port);
                assert_int_equal(r->type, REDIS_REPLY_ERROR);
                assert_string_equal(r->str, want);
            }
            freeReplyObject(r);
        }
    }
    for (int i = 0; i < CSLOT_MAX_NODES; i++)
        if (mc[i]) redisFree(mc[i]);
    free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crc_vectors), cmocka_unit_test(slot_vectors),
        cmocka_unit_test(hash_tags),   cmocka_unit_test(map_captured),
        cmocka_unit_test(map_refused), cmocka_unit_test(live_keyslot),
        cmocka_unit_test(live_map),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
