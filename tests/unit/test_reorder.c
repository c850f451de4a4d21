/* Unit tests of the reorder window (reorder.h): its decisions, with the time
 * passed in and plain tokens for the held items; and the window with real
 * frames while every frame allocation fails in turn. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "frame.h"
#include "mem.h"
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
        assert_int_equal(reorder_hold(w, seq, &tok[seq]), 0);
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
    assert_int_equal(w.delivered, 20);
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
    assert_int_equal(w.delivered, 24);
    assert_int_equal(r.count, 2);
    void *item;
    while (reorder_take(&w, &item))
        ;
    assert_null(w.win); /* the storage went with the last item */
}

/* The window's storage exists only while something is held: none for a
 * room in order, grown by doubling to REORDER_WINDOW, gone when it empties. */
static void storage_only_while_holding(void **state)
{
    (void)state;
    struct reorder w;
    struct sink k = {0};
    started(&w, 0);
    assert_null(w.win);
    assert_int_equal(arrive(&w, &k, 1, 10), REORDER_DELIVER);
    assert_null(w.win); /* in order: nothing allocated */
    assert_int_equal(arrive(&w, &k, 3, 10), REORDER_HOLD);
    assert_non_null(w.win);
    assert_int_equal(w.cap, 4);
    for (int64_t s = 4; s <= REORDER_WINDOW + 2; s++)
        assert_int_equal(arrive(&w, &k, s, 10), REORDER_HOLD);
    assert_int_equal(w.n, REORDER_WINDOW);
    assert_int_equal(w.cap, REORDER_WINDOW);
    assert_int_equal(arrive(&w, &k, 2, 20), REORDER_DELIVER);
    assert_int_equal(k.n, REORDER_WINDOW + 2);
    assert_int_equal(w.n, 0);
    assert_null(w.win);
    assert_int_equal(w.cap, 0);
    /* and again on the next crossing */
    assert_int_equal(arrive(&w, &k, REORDER_WINDOW + 4, 30), REORDER_HOLD);
    assert_int_equal(w.cap, 4);
    assert_int_equal(arrive(&w, &k, REORDER_WINDOW + 3, 30), REORDER_DELIVER);
    assert_null(w.win);
    assert_false(reorder_gap(&w));
}

/* Each growth of the window failing in turn (4, 8, 16, 32, 64 entries):
 * the seq that could not be kept is not lost, the window acts as full (a
 * fetch is due at once, of everything up to the highest seen) and every
 * seq is handed on once, in order. */
static void failed_growth_is_a_full_window(void **state)
{
    (void)state;
    for (long n = 1; n <= 6; n++) {
        struct reorder w;
        struct sink k = {0};
        started(&w, 0);
        int refused = 0;
        int64_t first_refused = 0;
        mem_fail_after(n);
        for (int64_t s = 2; s <= REORDER_WINDOW + 1; s++) {
            assert_int_equal(reorder_offer(&w, s, 500), REORDER_HOLD);
            if (reorder_hold(&w, s, &tok[s]) < 0) {
                if (!refused++) first_refused = s;
                freed[s]++; /* the caller frees what was not kept */
            }
        }
        mem_fail_after(0);
        struct reorder_range r;
        if (n <= 5) {
            /* the n-th allocation failed: the first hold's (seq 2), then
             * the growth at the 5th, 9th, 17th, 33rd hold; the next hold
             * tries again, so one seq alone is refused */
            assert_int_equal(refused, 1);
            assert_int_equal(first_refused, n == 1 ? 2 : (4 << (n - 2)) + 2);
            assert_true(reorder_due(&w, 500, DEADLINE, &r)); /* now, not at the deadline */
            assert_int_equal(r.count, REORDER_WINDOW + 1);
        } else {
            assert_int_equal(refused, 0);
            assert_false(reorder_due(&w, 500, DEADLINE, &r));
            assert_true(reorder_due(&w, 500 + DEADLINE, DEADLINE, &r));
            assert_int_equal(r.count, 1); /* just 1 */
        }
        /* Storage's rows, as rooms/room.c applies them: only the next seq
         * in line is handed on, then the window drains. */
        reorder_fetching(&w, 600);
        for (int64_t q = 1; q <= r.count; q++) {
            if (q != w.delivered + 1) continue;
            assert_int_equal(reorder_advance(&w, q), 0);
            k.out[k.n++] = q;
            drain(&w, &k);
        }
        drain(&w, &k);
        assert_int_equal(k.n, REORDER_WINDOW + 1);
        for (int i = 0; i < k.n; i++)
            assert_int_equal(k.out[i], i + 1);
        for (int64_t s = 2; s <= REORDER_WINDOW + 1; s++)
            assert_int_equal(freed[s], 1); /* every item came back (or was refused) once */
        assert_false(reorder_gap(&w));
        assert_null(w.win);
    }
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
    assert_int_equal(w.delivered, 0);
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
    assert_int_equal(w.delivered, 5);
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

/* ---- the window with real frames, every allocation failing in turn ---- */

#define SWEEP_LAST 13 /* the room's seqs 1..13 */

/* The room's side with frames (gateway/frame.h, through mem.h), as
 * rooms/room.c's accept_seq, drain_window and fetch completion run it. */
struct room_side {
    struct reorder w;
    int64_t out[64]; /* delivered seqs, in order */
    int n;
    int live;    /* frames made and not yet unreferenced */
    int made;    /* frames made */
    int fetches; /* gap fetches */
    int fetched; /* seqs handed on from storage */
    int refused; /* frames the window could not keep (its storage failed) */
};

static void room_deliver(struct room_side *s, int64_t seq, struct frame *f)
{
    assert_true(s->n < 64);
    s->out[s->n++] = seq;
    if (f) { /* from the bus: the frame carries its own seq */
        char want[16];
        int len = snprintf(want, sizeof want, "m%lld", (long long)seq);
        assert_int_equal(f->len, len);
        assert_memory_equal(frame_data(f), want, (size_t)len);
    }
}

static void room_unref(struct room_side *s, struct frame *f)
{
    s->live--;
    frame_unref(f);
}

static void room_drain(struct room_side *s)
{
    int64_t seq;
    void *f;
    int k;
    while ((k = reorder_pop(&s->w, &seq, &f))) {
        if (k == 1) room_deliver(s, seq, f);
        room_unref(s, f);
    }
}

static void room_accept(struct room_side *s, int64_t seq, uint64_t now)
{
    enum reorder_verdict v = reorder_offer(&s->w, seq, now);
    if (v == REORDER_DROP) return;
    char p[16];
    int len = snprintf(p, sizeof p, "m%lld", (long long)seq);
    struct frame *f = v == REORDER_FULL ? NULL : frame_new(p, (size_t)len);
    if (f) s->live++, s->made++;
    if (v != REORDER_DELIVER || !f) {
        if (v == REORDER_HOLD && f && reorder_hold(&s->w, seq, f) < 0) {
            s->refused++;
            room_unref(s, f); /* fetched at once, as from a full window */
        }
        if (v != REORDER_FULL && !f) reorder_missed(&s->w, seq, now);
        return;
    }
    reorder_advance(&s->w, seq);
    room_deliver(s, seq, f);
    room_unref(s, f);
    room_drain(s);
}

/* The gap fetches, each after its deadline, until none is due: the rows
 * come from storage, are handed on and the window drained. */
static void room_fetch_all(struct room_side *s, uint64_t now)
{
    struct reorder_range r;
    for (int round = 0; round < 20 && reorder_gap(&s->w); round++, now += DEADLINE) {
        if (!reorder_due(&s->w, now, DEADLINE, &r)) continue;
        s->fetches++;
        reorder_fetching(&s->w, now);
        /* the rows after delivered; as room.c, a row not next in line (a
         * held one delivered meanwhile) is skipped, the window drained after */
        for (int64_t q = s->w.delivered + 1, end = q + r.count; q < end && q <= SWEEP_LAST; q++) {
            if (q != s->w.delivered + 1) continue;
            assert_int_equal(reorder_advance(&s->w, q), 0);
            room_deliver(s, q, NULL);
            s->fetched++;
        }
        room_drain(s);
    }
}

/* Seqs crossing on the bus: late, early, twice, and 9 never comes. 13
 * follows on its own. */
static const int64_t ARRIVALS[] = {2, 3, 1, 5, 4, 4, 7, 8, 6, 10, 12, 11, 3};

static struct room_side run_room(void)
{
    struct room_side s = {0};
    reorder_init(&s.w);
    reorder_start(&s.w, 0);
    uint64_t now = 1000;
    for (size_t i = 0; i < sizeof ARRIVALS / sizeof ARRIVALS[0]; i++)
        room_accept(&s, ARRIVALS[i], now++);
    room_fetch_all(&s, now + DEADLINE);
    /* Then 13, next in line and the last heard of: if its frame fails,
     * nothing but reorder_missed tells the window it exists. */
    now += 10 * DEADLINE;
    room_accept(&s, 13, now);
    room_fetch_all(&s, now + DEADLINE);
    return s;
}

/* The window's storage is allocated at each hold into an empty window: in
 * run_room at 2, 5, 7 and 10 (each crossing drains before the next). */
#define SWEEP_WINDOW_ALLOCS 4

/* Every allocation fails in turn, frames' and the window's: a seq whose
 * frame could not be made is a gap, fetched from storage after the
 * deadline; one the window had no storage for is fetched at once (as from
 * a full window). Each room seq is handed on exactly once and in order
 * whatever failed; every frame made is unreferenced (the count, and
 * LeakSanitizer in the ASan build, which also sees the window's storage). */
static void window_survives_every_allocation_failure(void **state)
{
    (void)state;
    struct room_side want = run_room();
    assert_int_equal(want.n, SWEEP_LAST);
    assert_int_equal(want.fetched, 1); /* 9 alone */
    assert_int_equal(want.made, SWEEP_LAST - 1);
    assert_int_equal(want.refused, 0);
    assert_null(want.w.win);
    long frame_failed = 0, window_failed = 0, refetched = 0;
    long total = want.made + SWEEP_WINDOW_ALLOCS;
    for (long n = 1; n <= total + 5; n++) {
        mem_fail_after(n);
        struct room_side got = run_room();
        mem_fail_after(0);
        assert_int_equal(got.live, 0);
        assert_int_equal(got.w.n, 0);
        assert_null(got.w.win);
        assert_int_equal(got.n, SWEEP_LAST);
        for (int i = 0; i < SWEEP_LAST; i++)
            if (got.out[i] != i + 1)
                fail_msg("allocation %ld failing: position %d handed on seq %lld", n, i,
                         (long long)got.out[i]);
        /* exactly one allocation failed while there were allocations */
        assert_true(got.refused <= 1);
        frame_failed += got.made == want.made - 1;
        window_failed += got.refused;
        if (n > total) assert_int_equal(got.made + got.refused, want.made);
        /* what was not delivered from a frame came from storage instead */
        assert_true(got.fetched + got.made - got.refused >= want.fetched + want.made);
        refetched += got.fetched > want.fetched;
    }
    /* a frame failing leaves one fewer made, but for 3 and 4: they come
     * twice on the bus and the second copy's frame is made instead */
    assert_int_equal(frame_failed, want.made - 2);
    assert_int_equal(window_failed, SWEEP_WINDOW_ALLOCS);
    /* Every failure cost a fetched row but two: 3 and 4 come twice on the
     * bus, and the second copy fills the gap the first one's failure left. */
    assert_int_equal(refetched, total - 2);
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
        cmocka_unit_test(storage_only_while_holding),
        cmocka_unit_test(failed_growth_is_a_full_window),
        cmocka_unit_test(window_survives_every_allocation_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
