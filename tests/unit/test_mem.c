/* The heap's figures and the policy that gives free pages back (mem.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "mem.h"

#define MB ((size_t)1 << 20)
#define GAIN MEM_TRIM_GAIN

/* One tick: the heap is offered only when the policy looks, as the gateway does. */
static bool tick(struct mem_trim *t, uint64_t events, size_t slack, bool *looked)
{
    *looked = mem_trim_looks(t, events);
    return mem_trim_due(t, events, *looked ? 100 * MB + slack : 0, *looked ? 100 * MB : 0);
}

static void trims_when_slack_grew_on_a_quiet_tick(void **state)
{
    (void)state;
    struct mem_trim t = {0};
    bool looked;
    /* the first tick is the baseline: 10 MB not heap */
    assert_false(tick(&t, 0, 10 * MB, &looked));
    assert_true(looked);
    /* quiet ticks look every 10th */
    for (int i = 1; i < 10; i++) {
        assert_false(tick(&t, (uint64_t)i, 50 * MB, &looked));
        assert_false(looked);
    }
    assert_true(tick(&t, 10, 10 * MB + GAIN, &looked));
    assert_true(looked);
    /* the caller trimmed and left 11 MB: less than the gain more is not
     * worth a walk */
    t.floor = 11 * MB;
    for (int i = 11; i < 20; i++)
        assert_false(tick(&t, (uint64_t)i, 0, &looked));
    assert_false(tick(&t, 20, 11 * MB + GAIN - 1, &looked));
    assert_true(looked);
    for (int i = 21; i < 30; i++)
        assert_false(tick(&t, (uint64_t)i, 0, &looked));
    assert_true(tick(&t, 30, 11 * MB + GAIN, &looked));
}

static void never_in_a_burst(void **state)
{
    (void)state;
    struct mem_trim t = {0};
    bool looked;
    assert_false(tick(&t, 0, 10 * MB, &looked));
    uint64_t ev = 0;
    /* 1,000 connection events a tick for a minute: never looked at */
    for (int i = 0; i < 60; i++) {
        ev += 1000;
        assert_false(tick(&t, ev, 500 * MB, &looked));
        assert_false(looked);
    }
    /* settled: ten quiet ticks, then the holes the burst left go */
    for (int i = 0; i < 9; i++)
        assert_false(tick(&t, ev, 500 * MB, &looked));
    assert_true(tick(&t, ev, 500 * MB, &looked));
}

static void floor_follows_the_least_seen(void **state)
{
    (void)state;
    struct mem_trim t = {0};
    bool looked;
    assert_false(tick(&t, 0, 30 * MB, &looked));
    for (int i = 1; i < 10; i++)
        tick(&t, 0, 0, &looked);
    /* less than the baseline: libraries unmapped, the heap's top given back */
    assert_false(tick(&t, 0, 8 * MB, &looked));
    assert_true(looked);
    assert_int_equal(t.floor, 8 * MB);
    for (int i = 1; i < 10; i++)
        tick(&t, 0, 0, &looked);
    assert_true(tick(&t, 0, 8 * MB + GAIN, &looked)); /* the gain over the new floor */
}

/* The gateway's own tick: the holes a burst left are given back once, on the
 * tenth quiet tick after it, and the heap is not walked again while nothing
 * new is left resident. (With ASan, whose freed blocks wait in quarantine,
 * the trim gives nothing back but is still called once.) */
static void tick_trims_a_bursts_holes_once(void **state)
{
    (void)state;
    uint64_t ev = 0;
    assert_int_equal(mem_trim_tick(ev), 0); /* the baseline */
    enum { N = 96 * 1024, KEEP = 64 };      /* 48 MB of 512-byte blocks */
    void **blk = calloc(N, sizeof *blk);
    assert_non_null(blk);
    for (int i = 0; i < N; i++) {
        blk[i] = mem_alloc(512);
        assert_non_null(blk[i]);
        memset(blk[i], 1, 512);
    }
    for (int i = 0; i < N; i++) /* one in 64 stays: whole free pages between */
        if (i % KEEP) {
            mem_free(blk[i]);
            blk[i] = NULL;
        }
    for (int t = 0; t < 5; t++) { /* still in the burst */
        ev += 1000;
        assert_int_equal(mem_trim_tick(ev), 0);
    }
    int trims = 0, at = -1;
    for (int t = 0; t < 10; t++)
        if (mem_trim_tick(ev)) {
            trims++;
            at = t;
        }
    assert_int_equal(trims, 1);
    assert_int_equal(at, 9);
    for (int t = 0; t < 30; t++) /* nothing new resident: no second walk */
        assert_int_equal(mem_trim_tick(ev), 0);
    for (int i = 0; i < N; i += KEEP)
        mem_free(blk[i]);
    free(blk);
}

static void heap_figures_count_live_bytes(void **state)
{
    (void)state;
    size_t used0, free0, used1, free1;
    mem_heap(&used0, &free0);
    char *p = mem_alloc(4 * MB);
    assert_non_null(p);
    memset(p, 1, 4 * MB);
    mem_heap(&used1, &free1);
    assert_true(used1 >= used0 + 4 * MB);
    mem_free(p);
    mem_heap(&used1, &free1);
    assert_true(used1 < used0 + MB);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trims_when_slack_grew_on_a_quiet_tick),
        cmocka_unit_test(never_in_a_burst),
        cmocka_unit_test(floor_follows_the_least_seen),
        cmocka_unit_test(tick_trims_a_bursts_holes_once),
        cmocka_unit_test(heap_figures_count_live_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
