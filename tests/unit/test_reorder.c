/* Unit tests of the reorder window (reorder.h): its decisions, with the time
 * passed in and plain tokens for the held items. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "reorder.h"

#define DEADLINE 100

/* The test's stand-in for frames: item k is &tok[k], so what comes back
 * can be told apart and counted. */
static char tok[1000];
static int freed[1000];

/* The room's side: a seq arrives at time now; whatever becomes deliverable
 * is appended to out[] in delivery order. */
struct sink {
    int64_t out[512];
    int n;
};

static void drain(struct reorder *w, struct sink *k)
{
    int64_t seq;
    void *item;
    int r;
    while ((r = reorder_pop(w, &seq, &item))) {
        long t = (char *)item - tok;
        assert_true(t >= 0 && t < 1000);
        freed[t]++;
        if (r == 1) k->out[k->n++] = seq;
        assert_int_equal(t, seq); /* each item comes back with its own seq */
    }
}

static enum reorder_verdict arrive(struct reorder *w, struct sink *k, int64_t seq, uint64_t now)
{
    enum reorder_verdict v = reorder_offer(w, seq, now);
    if (v == REORDER_DELIVER) {
        k->out[k->n++] = seq;
        assert_int_equal(reorder_advance(w, seq), 0);
        drain(w, k);
    } else if (v == REORDER_HOLD) {
        reorder_hold(w, seq, &tok[seq]);
    }
    return v;
}

static void started(struct reorder *w, int64_t last)
{
    memset(freed, 0, sizeof freed);
    reorder_init(w);
    reorder_start(w, last);
}

static void in_order_passes_through(void **state)
{
    (void)state;
    struct reorder w;
    struct sink k = {0};
    started(&w, 10);
    for (int64_t s = 11; s <= 30; s++)
        assert_int_equal(arrive(&w, &k, s, 1000 + (uint64_t)s), REORDER_DELIVER);
    assert_int_equal(k.n, 20);
    for (int i = 0; i < 20; i++)
        assert_int_equal(k.out[i], 11 + i);
    assert_int_equal(w.n, 0);
    assert_false(reorder_gap(&w));
    struct reorder_range r;
    assert_false(reorder_due(&w, 1000000, DEADLINE, &r));
}

static void out_of_order_held_until_gap_fills(void **state)
{
    (void)state;
    struct reorder w;
    struct sink k = {0};
    started(&w, 10);
    /* 13, 12 arrive before 11: nothing goes out until 11 does. */
    assert_int_equal(arrive(&w, &k, 13, 1000), REORDER_HOLD);
    assert_int_equal(arrive(&w, &k, 12, 1010), REORDER_HOLD);
    assert_int_equal(k.n, 0);
    assert_true(reorder_gap(&w));
    struct reorder_range r;
    assert_false(reorder_due(&w, 1000 + DEADLINE - 1, DEADLINE, &r)); /* not yet */
    assert_int_equal(arrive(&w, &k, 11, 1050), REORDER_DELIVER);
    assert_int_equal(k.n, 3);
    assert_int_equal(k.out[0], 11);
    assert_int_equal(k.out[1], 12);
    assert_int_equal(k.out[2], 13);
    assert_int_equal(w.delivered, 13);
    assert_int_equal(freed[12], 1);
    assert_int_equal(freed[13], 1);
    /* The gap filled by itself: no fetch, ever. */
    assert_false(reorder_gap(&w));
    assert_false(reorder_due(&w, 1000000, DEADLINE, &r));
}

static void old_gap_fetches_exactly_the_missing_range(void **state)
{
    (void)state;
    struct reorder w;
    struct sink k = {0};
    started(&w, 20);
    /* 21 and 22 never come; 23, 24 and (after another hole) 27 are held. */
    assert_int_equal(arrive(&w, &k, 24, 5000), REORDER_HOLD);
    assert_int_equal(arrive(&w, &k, 23, 5020), REORDER_HOLD);
    assert_int_equal(arrive(&w, &k, 27, 5040), REORDER_HOLD);
    struct reorder_range r;
    assert_false(reorder_due(&w, 5000 + DEADLINE - 1, DEADLINE, &r));
    /* The clock runs from the first gap, not the latest arrival. */
    assert_true(reorder_due(&w, 5000 + DEADLINE, DEADLINE, &r));
    assert_int_equal(r.after, 20);
    assert_int_equal(r.count, 2); /* 21 and 22, not the held 23 and 24 */
    reorder_fetching(&w, 5100);
    assert_false(reorder_due(&w, 5150, DEADLINE, &r)); /* one fetch at a time */
    /* The rows come from storage. */
    assert_int_equal(reorder_advance(&w, 21), 0);
    assert_int_equal(reorder_advance(&w, 23), -EINVAL); /* not next */
    assert_int_equal(reorder_advance(&w, 22), 0);
    drain(&w, &k);
    assert_int_equal(k.n, 2);
    assert_int_equal(k.out[0], 23);
    assert_int_equal(k.out[1], 24);
    /* 25 and 26 are still missing: their own deadline, from the fetch. */
    assert_true(reorder_gap(&w));
    assert_false(reorder_due(&w, 5100 + DEADLINE - 1, DEADLINE, &r));
    assert_true(reorder_due(&w, 5100 + DEADLINE, DEADLINE, &r));
    assert_int_equal(r.after, 24);
    assert_int_equal(r.count, 2);
}

static void full_window_fetches_at_once(void **state)
{
    (void)state;
    struct reorder w;
    struct sink k = {0};
    started(&w, 0);
    /* seq 1 is lost; 2 .. REORDER_WINDOW + 1 fill the window. */
    for (int64_t s = 2; s <= REORDER_WINDOW + 1; s++)
        assert_int_equal(arrive(&w, &k, s, 7000), REORDER_HOLD);
    assert_int_equal(w.n, REORDER_WINDOW);
    struct reorder_range r;
    assert_false(reorder_due(&w, 7001, DEADLINE, &r));
    assert_int_equal(arrive(&w, &k, REORDER_WINDOW + 3, 7002), REORDER_FULL);
    /* Due now, not after the deadline, for everything up to the highest seen. */
    assert_true(reorder_due(&w, 7002, DEADLINE, &r));
    assert_int_equal(r.after, 0);
    assert_int_equal(r.count, REORDER_WINDOW + 3);
    reorder_fetching(&w, 7003);
    assert_false(reorder_due(&w, 7004, DEADLINE, &r));
    /* The fetch brings 1: the window drains, then the dropped seqs still
     * missing (65, 66) come from the same fetch's rows. */
    assert_int_equal(reorder_advance(&w, 1), 0);
    drain(&w, &k);
    assert_int_equal(k.n, REORDER_WINDOW);
    assert_int_equal(w.delivered, REORDER_WINDOW + 1);
    assert_true(reorder_gap(&w));
    assert_int_equal(reorder_advance(&w, REORDER_WINDOW + 2), 0);
    assert_int_equal(reorder_advance(&w, REORDER_WINDOW + 3), 0);
    assert_false(reorder_gap(&w));
}

static void duplicates_and_old_dropped(void **state)
{
    (void)state;
    struct reorder w;
    struct sink k = {0};
    started(&w, 50);
    assert_int_equal(arrive(&w, &k, 50, 1), REORDER_DROP);
    assert_int_equal(arrive(&w, &k, 3, 1), REORDER_DROP);
    assert_int_equal(arrive(&w, &k, 51, 1), REORDER_DELIVER);
    assert_int_equal(arrive(&w, &k, 51, 1), REORDER_DROP);
    assert_int_equal(arrive(&w, &k, 53, 1), REORDER_HOLD);
    assert_int_equal(arrive(&w, &k, 53, 1), REORDER_DROP); /* already held */
    assert_int_equal(w.n, 1);
    assert_true(reorder_gap(&w));
    /* Storage delivered past what was held: the held copy is stale. */
    assert_int_equal(reorder_advance(&w, 52), 0);
    assert_int_equal(reorder_advance(&w, 53), 0);
    assert_int_equal(reorder_advance(&w, 54), 0);
    drain(&w, &k);
    assert_int_equal(k.n, 1); /* only 51 went out through the window's side */
    assert_int_equal(freed[53], 1);
    assert_int_equal(w.n, 0);
    assert_false(reorder_gap(&w));
}

static void before_start_everything_waits(void **state)
{
    (void)state;
    struct reorder w;
    struct sink k = {0};
    memset(freed, 0, sizeof freed);
    reorder_init(&w);
    /* The room does not know its position yet: hold, fetch nothing. */
    assert_int_equal(arrive(&w, &k, 8, 100), REORDER_HOLD);
    assert_int_equal(arrive(&w, &k, 9, 100), REORDER_HOLD);
    struct reorder_range r;
    assert_false(reorder_due(&w, 100000, DEADLINE, &r));
    /* Stored up to 7: 8 and 9 go out in order, no gap left. */
    reorder_start(&w, 7);
    drain(&w, &k);
    assert_int_equal(k.n, 2);
    assert_int_equal(k.out[0], 8);
    assert_int_equal(k.out[1], 9);
    assert_false(reorder_gap(&w));
    /* The position never goes back. */
    reorder_start(&w, 3);
    assert_int_equal(w.delivered, 9);
}

static void missed_and_taken(void **state)
{
    (void)state;
    struct reorder w;
    struct sink k = {0};
    started(&w, 5);
    /* The next seq came but could not be kept: fetched after the deadline. */
    assert_int_equal(reorder_offer(&w, 6, 300), REORDER_DELIVER);
    reorder_missed(&w, 6, 300);
    struct reorder_range r;
    assert_false(reorder_due(&w, 399, DEADLINE, &r));
    assert_true(reorder_due(&w, 400, DEADLINE, &r));
    assert_int_equal(r.after, 5);
    assert_int_equal(r.count, 1);
    /* A room that goes hands every held item back once. */
    assert_int_equal(arrive(&w, &k, 9, 300), REORDER_HOLD);
    assert_int_equal(arrive(&w, &k, 8, 300), REORDER_HOLD);
    void *item;
    int n = 0;
    while (reorder_take(&w, &item))
        n++;
    assert_int_equal(n, 2);
    assert_int_equal(w.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(in_order_passes_through),
        cmocka_unit_test(out_of_order_held_until_gap_fills),
        cmocka_unit_test(old_gap_fetches_exactly_the_missing_range),
        cmocka_unit_test(full_window_fetches_at_once),
        cmocka_unit_test(duplicates_and_old_dropped),
        cmocka_unit_test(before_start_everything_waits),
        cmocka_unit_test(missed_and_taken),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
