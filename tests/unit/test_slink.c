/* Tests of the sharded pub/sub link (slink.h) against a real local cluster
 * (with_cluster.sh, PARLEY_TEST_CLUSTER_PORT): confirmations, smessage
 * pushes of every size, MOVED from a node that does not own the slot, the
 * unsolicited sunsubscribe when the slot moves, reconnection after the
 * server kills the link, the pending bound, and the watchdog on a server
 * that never answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "cslot.h"
#include "mem.h"
#include "slink.h"

struct seen {
    int up, down, subscribed, unsub, unsolicited, refused, messages;
    char last_err[128];
    char last_ch[SLINK_CHAN_MAX + 1];
    char *last_msg;
    size_t last_len;
};

static void h_message(void *ud, struct slink *l, const char *ch, size_t chlen, const char *p,
                      size_t len)
{
    struct seen *s = ud;
    (void)l;
    s->messages++;
    snprintf(s->last_ch, sizeof s->last_ch, "%.*s", (int)chlen, ch);
    free(s->last_msg);
    s->last_msg = malloc(len ? len : 1);
    memcpy(s->last_msg, p, len);
    s->last_len = len;
}

static void h_subscribed(void *ud, struct slink *l, const char *ch, size_t chlen)
{
    struct seen *s = ud;
    (void)l;
    s->subscribed++;
    snprintf(s->last_ch, sizeof s->last_ch, "%.*s", (int)chlen, ch);
}

static void h_unsubscribed(void *ud, struct slink *l, const char *ch, size_t chlen, bool unsol)
{
    struct seen *s = ud;
    (void)l;
    s->unsub++;
    s->unsolicited += unsol;
    snprintf(s->last_ch, sizeof s->last_ch, "%.*s", (int)chlen, ch);
}

static void h_refused(void *ud, struct slink *l, const char *ch, size_t chlen, bool sub,
                      const char *err)
{
    struct seen *s = ud;
    (void)l;
    (void)sub;
    s->refused++;
    snprintf(s->last_ch, sizeof s->last_ch, "%.*s", (int)chlen, ch);
    snprintf(s->last_err, sizeof s->last_err, "%s", err);
}

static void h_up(void *ud, struct slink *l)
{
    (void)l;
    ((struct seen *)ud)->up++;
}

static void h_down(void *ud, struct slink *l)
{
    (void)l;
    ((struct seen *)ud)->down++;
}

static const struct slink_hooks hooks_tpl = {
    .on_message = h_message,
    .on_subscribed = h_subscribed,
    .on_unsubscribed = h_unsubscribed,
    .on_refused = h_refused,
    .on_up = h_up,
    .on_down = h_down,
};

/* Each test's loop and what its link's hooks saw (setup and teardown). */
struct rig {
    uv_loop_t loop;
    struct seen s;
    struct slink_hooks h;
};

static int rig_setup(void **state)
{
    struct rig *t = calloc(1, sizeof *t);
    if (!t || uv_loop_init(&t->loop)) return -1;
    t->h = hooks_tpl;
    t->h.ud = &t->s;
    *state = t;
    return 0;
}

/* Every handle closed (the links too), so the loop closes. */
static int rig_teardown(void **state)
{
    struct rig *t = *state;
    int rc = uv_loop_close(&t->loop) ? -1 : 0;
    free(t->s.last_msg);
    free(t);
    return rc;
}

/* Runs the loop until *v >= want or ms pass; whether it got there. */
static bool run_until(uv_loop_t *loop, int *v, int want, int ms)
{
    uint64_t end = uv_hrtime() + (uint64_t)ms * 1000000u;
    while (*v < want && uv_hrtime() < end)
        uv_run(loop, UV_RUN_NOWAIT), usleep(1000);
    return *v >= want;
}

static int port(void)
{
    const char *p = getenv("PARLEY_TEST_CLUSTER_PORT");
    return p ? atoi(p) : 0;
}

/* The cluster's map, from the node at port(). */
static struct cslot_map *cluster_map(void)
{
    redisContext *c = redisConnect("127.0.0.1", port());
    assert_true(c && !c->err);
    redisReply *r = redisCommand(c, "CLUSTER SLOTS");
    struct cslot_map *m = malloc(sizeof *m);
    assert_int_equal(cslot_map_parse(m, r, "127.0.0.1"), 0);
    freeReplyObject(r);
    redisFree(c);
    return m;
}

static void close_link(uv_loop_t *loop, struct slink *l)
{
    slink_close(l);
    for (int i = 0; i < 50; i++)
        uv_run(loop, UV_RUN_NOWAIT);
}

/* subscribe, receive (small, binary and a payload bigger than one read),
 * unsubscribe: everything on the node that owns the channel's slot */
static void flow(void **state)
{
    struct rig *t = *state;
    if (!port()) skip();
    struct cslot_map *m = cluster_map();
    const char *ch = "room:{flow}";
    struct cslot_node *own = &m->node[m->owner[cslot_keyslot(ch, strlen(ch))]];
    struct slink *l = slink_new(&t->loop, own->host, own->port, 2000, &t->h);
    assert_int_equal(slink_ssubscribe(l, ch, strlen(ch)), -EAGAIN); /* not connected */
    slink_start(l);
    assert_true(run_until(&t->loop, &t->s.up, 1, 3000));
    assert_int_equal(slink_ssubscribe(l, ch, strlen(ch)), 0);
    assert_true(run_until(&t->loop, &t->s.subscribed, 1, 3000));
    assert_string_equal(t->s.last_ch, ch);
    redisContext *pub = redisConnect(own->host, own->port);
    static char big[300000];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)(i * 7);
    const struct {
        const char *p;
        size_t n;
    } msgs[] = {{"hello", 5}, {"a\0b\r\n", 5}, {big, sizeof big}};
    for (int i = 0; i < 3; i++) {
        redisReply *r = redisCommand(pub, "SPUBLISH %s %b", ch, msgs[i].p, msgs[i].n);
        assert_int_equal(r->integer, 1);
        freeReplyObject(r);
        assert_true(run_until(&t->loop, &t->s.messages, i + 1, 3000));
        assert_int_equal(t->s.last_len, msgs[i].n);
        assert_memory_equal(t->s.last_msg, msgs[i].p, msgs[i].n);
    }
    assert_int_equal(slink_sunsubscribe(l, ch, strlen(ch)), 0);
    assert_true(run_until(&t->loop, &t->s.unsub, 1, 3000));
    assert_int_equal(t->s.unsolicited, 0);
    redisReply *r = redisCommand(pub, "SPUBLISH %s x", ch);
    assert_int_equal(r->integer, 0); /* nobody listens any more */
    freeReplyObject(r);
    /* bounds on the arguments */
    char longch[SLINK_CHAN_MAX + 2];
    memset(longch, 'x', sizeof longch);
    assert_int_equal(slink_ssubscribe(l, longch, SLINK_CHAN_MAX + 1), -EINVAL);
    assert_int_equal(slink_ssubscribe(l, "", 0), -EINVAL);
    assert_int_equal(t->s.down, 0);
    redisFree(pub);
    close_link(&t->loop, l);
    free(m);
}

/* The master of m other than the owner of slot. */
static int other_master(const struct cslot_map *m, int slot)
{
    for (int i = 0; i < m->nnodes; i++)
        if (m->node[i].master < 0 && i != m->owner[slot]) return i;
    return -1;
}

/* CLUSTER SETSLOT slot how id on node i of m, which must answer OK. */
static void setslot(const struct cslot_map *m, int i, int slot, const char *how, const char *id)
{
    redisContext *n = redisConnect(m->node[i].host, m->node[i].port);
    assert_true(n && !n->err);
    redisReply *r = redisCommand(n, "CLUSTER SETSLOT %d %s %s", slot, how, id);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(n);
}

static void node_id(const struct cslot_map *m, int i, char *out, size_t cap)
{
    redisContext *n = redisConnect(m->node[i].host, m->node[i].port);
    assert_true(n && !n->err);
    redisReply *r = redisCommand(n, "CLUSTER MYID");
    snprintf(out, cap, "%s", r->str);
    freeReplyObject(r);
    redisFree(n);
}

/* Gives slot to master `to` of m as a reshard does: IMPORTING on `to`,
 * MIGRATING on the owner, then NODE on `to` first (its config epoch goes
 * up, so that gossip from the old owner cannot win the slot back), then on
 * the other masters. The test's slots hold no keys. */
static void give_slot(const struct cslot_map *m, int slot, int to)
{
    int from = m->owner[slot];
    char from_id[64], to_id[64];
    node_id(m, from, from_id, sizeof from_id);
    node_id(m, to, to_id, sizeof to_id);
    setslot(m, to, slot, "IMPORTING", from_id);
    setslot(m, from, slot, "MIGRATING", to_id);
    setslot(m, to, slot, "NODE", to_id);
    for (int i = 0; i < m->nnodes; i++)
        if (m->node[i].master < 0 && i != to) setslot(m, i, slot, "NODE", to_id);
}

/* A node that does not own the slot answers MOVED, matched to the channel;
 * when the slot moves away from the owner, it drops the subscription
 * unasked. */
static void moved(void **state)
{
    struct rig *t = *state;
    if (!port()) skip();
    struct cslot_map *m = cluster_map();
    const char *ch = "room:{moved}";
    int slot = cslot_keyslot(ch, strlen(ch));
    int oi = m->owner[slot], other = other_master(m, slot);
    struct slink *lo = slink_new(&t->loop, m->node[other].host, m->node[other].port, 2000, &t->h);
    slink_start(lo);
    assert_true(run_until(&t->loop, &t->s.up, 1, 3000));
    assert_int_equal(slink_ssubscribe(lo, ch, strlen(ch)), 0);
    assert_true(run_until(&t->loop, &t->s.refused, 1, 3000));
    char want[128];
    snprintf(want, sizeof want, "MOVED %d %s:%d", slot, m->node[oi].host, m->node[oi].port);
    assert_string_equal(t->s.last_err, want);
    assert_string_equal(t->s.last_ch, ch);
    /* subscribe on the owner, then give the slot to the other master */
    struct slink *l = slink_new(&t->loop, m->node[oi].host, m->node[oi].port, 2000, &t->h);
    slink_start(l);
    assert_true(run_until(&t->loop, &t->s.up, 2, 3000));
    assert_int_equal(slink_ssubscribe(l, ch, strlen(ch)), 0);
    assert_true(run_until(&t->loop, &t->s.subscribed, 1, 3000));
    give_slot(m, slot, other);
    assert_true(run_until(&t->loop, &t->s.unsolicited, 1, 5000));
    assert_string_equal(t->s.last_ch, ch);
    assert_int_equal(t->s.down, 0);
    close_link(&t->loop, lo);
    close_link(&t->loop, l);
    free(m);
}

/* Our SUNSUBSCRIBE crosses the server's own sunsubscribe of a channel
 * whose slot just moved: the push is taken as our answer, and the real
 * answer (an error naming the moved slot) must not be charged to the next
 * command, a SSUBSCRIBE of another channel, which then still succeeds on a
 * link that stays up. */
static void crossed_unsubscribe(void **state)
{
    struct rig *t = *state;
    if (!port()) skip();
    struct cslot_map *m = cluster_map();
    const char *x = "room:{crossed}";
    int slot = cslot_keyslot(x, strlen(x));
    int oi = m->owner[slot], other = other_master(m, slot);
    char y[64];
    for (int i = 0;; i++) { /* another channel on the same master */
        snprintf(y, sizeof y, "room:{crossed-%d}", i);
        if (m->owner[cslot_keyslot(y, strlen(y))] == oi && cslot_keyslot(y, strlen(y)) != slot)
            break;
    }
    struct slink *l = slink_new(&t->loop, m->node[oi].host, m->node[oi].port, 2000, &t->h);
    slink_start(l);
    assert_true(run_until(&t->loop, &t->s.up, 1, 3000));
    assert_int_equal(slink_ssubscribe(l, x, strlen(x)), 0);
    assert_true(run_until(&t->loop, &t->s.subscribed, 1, 3000));
    give_slot(m, slot, other);
    usleep(100 * 1000); /* the server's sunsubscribe is in our socket, unread */
    assert_int_equal(slink_sunsubscribe(l, x, strlen(x)), 0);
    assert_int_equal(slink_ssubscribe(l, y, strlen(y)), 0);
    assert_true(run_until(&t->loop, &t->s.subscribed, 2, 3000));
    assert_string_equal(t->s.last_ch, y);
    assert_int_equal(t->s.down, 0);
    assert_int_equal(t->s.refused, 0);
    close_link(&t->loop, l);
    free(m);
}

/* The server kills the link: on_down, a reconnect, and it works again. */
static void reconnect(void **state)
{
    struct rig *t = *state;
    if (!port()) skip();
    struct cslot_map *m = cluster_map();
    const char *ch = "room:{again}";
    struct cslot_node *own = &m->node[m->owner[cslot_keyslot(ch, strlen(ch))]];
    struct slink *l = slink_new(&t->loop, own->host, own->port, 2000, &t->h);
    slink_start(l);
    assert_true(run_until(&t->loop, &t->s.up, 1, 3000));
    assert_int_equal(slink_ssubscribe(l, ch, strlen(ch)), 0);
    assert_true(run_until(&t->loop, &t->s.subscribed, 1, 3000));
    redisContext *c = redisConnect(own->host, own->port);
    redisReply *r = redisCommand(c, "CLIENT KILL TYPE pubsub SKIPME yes");
    assert_true(r->integer >= 1);
    freeReplyObject(r);
    assert_true(run_until(&t->loop, &t->s.down, 1, 3000));
    assert_true(run_until(&t->loop, &t->s.up, 2, 5000));
    assert_int_equal(slink_reconnects(l), 1);
    assert_int_equal(slink_ssubscribe(l, ch, strlen(ch)), 0);
    assert_true(run_until(&t->loop, &t->s.subscribed, 2, 3000));
    r = redisCommand(c, "SPUBLISH %s back", ch);
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    assert_true(run_until(&t->loop, &t->s.messages, 1, 3000));
    redisFree(c);
    close_link(&t->loop, l);
    free(m);
}

/* Commands unanswered are bounded: past SLINK_MAX_PENDING, -ENOBUFS. */
static void pending_bound(void **state)
{
    struct rig *t = *state;
    if (!port()) skip();
    struct slink *l = slink_new(&t->loop, "127.0.0.1", port(), 2000, &t->h);
    slink_start(l);
    assert_true(run_until(&t->loop, &t->s.up, 1, 3000));
    int rc = 0, n = 0;
    char ch[32];
    while (n <= SLINK_MAX_PENDING && !rc) {
        snprintf(ch, sizeof ch, "{x}%d", n);
        if (!(rc = slink_ssubscribe(l, ch, strlen(ch)))) n++;
    }
    assert_int_equal(rc, -ENOBUFS);
    assert_int_equal(n, SLINK_MAX_PENDING);
    close_link(&t->loop, l);
}

/* A server that accepts and never answers: the link is dropped after its
 * timeout of loop time, and reconnects. */
static void watchdog(void **state)
{
    struct rig *t = *state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 8), 0);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    struct slink *l = slink_new(&t->loop, "127.0.0.1", ntohs(sa.sin_port), 300, &t->h);
    slink_start(l);
    assert_true(run_until(&t->loop, &t->s.up, 1, 3000));
    /* idle and silent is fine: nothing is owed */
    int none = 0;
    run_until(&t->loop, &none, 1, 600);
    assert_int_equal(t->s.down, 0);
    assert_int_equal(slink_ssubscribe(l, "ch", 2), 0);
    uint64_t t0 = uv_hrtime();
    assert_true(run_until(&t->loop, &t->s.down, 1, 3000));
    /* a tick's whole step counts, so up to one tick (100 ms) early */
    assert_true(uv_hrtime() - t0 >= 200 * 1000000ull);
    assert_true(run_until(&t->loop, &t->s.up, 2, 3000)); /* the kernel still accepts */
    close_link(&t->loop, l);
    close(fd);
}

int main(void)
{
    mem_fail_after(-1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(flow, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(moved, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(crossed_unsubscribe, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(reconnect, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(pending_bound, rig_setup, rig_teardown),
        cmocka_unit_test_setup_teardown(watchdog, rig_setup, rig_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
