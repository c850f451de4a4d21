/* Unit tests of the load generator's measuring parts: the log-linear
 * histogram against exact percentiles of known data, the seq checker, the
 * send stamps, the Engine.IO framing of the Socket.IO adapter and the
 * per-sender check of the nchan peer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "eio.h"
#include "hist.h"
#include "senders.h"
#include "seqcheck.h"
#include "sizes.h"
#include "stamp.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Exact percentile by rank, to compare with. */
static uint64_t exact(const uint64_t *sorted, size_t n, double p)
{
    size_t r = (size_t)(p / 100.0 * (double)n);
    return sorted[r >= n ? n - 1 : r];
}

static void histogram_percentiles_within_bucket_error(void **state)
{
    (void)state;
    enum { N = 100000 };
    static uint64_t v[N];
    struct lhist h;
    lhist_init(&h);
    srand(7);
    for (size_t i = 0; i < N; i++) {
        /* A long-tailed mix: mostly ~1 ms, some 10-100 ms, a few seconds. */
        uint64_t x = 500 + (uint64_t)(rand() % 1500);
        if (i % 50 == 0) x = 10000 + (uint64_t)(rand() % 90000);
        if (i % 5000 == 0) x = 2000000 + (uint64_t)(rand() % 1000000);
        v[i] = x;
        lhist_record(&h, x);
    }
    qsort(v, N, sizeof v[0], cmp_u64);
    assert_int_equal(h.count, N);
    assert_int_equal(h.max, v[N - 1]);
    assert_int_equal(h.min, v[0]);
    const double ps[] = {50, 90, 99, 99.9};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        uint64_t want = exact(v, N, ps[k]), got = lhist_percentile(&h, ps[k]);
        /* Never below the true value, and at most one bucket (1/32) above. */
        assert_true(got >= want);
        assert_true((double)got <= (double)want * (1.0 + 1.0 / 32) + 1);
    }
    assert_int_equal(lhist_percentile(&h, 100), v[N - 1]);
}

static void histogram_small_values_exact_and_merge(void **state)
{
    (void)state;
    struct lhist a, b;
    lhist_init(&a);
    lhist_init(&b);
    for (uint64_t i = 0; i < 10; i++)
        lhist_record(&a, i);
    for (uint64_t i = 10; i < 20; i++)
        lhist_record(&b, i);
    assert_int_equal(lhist_percentile(&a, 50), 5);
    lhist_merge(&a, &b);
    assert_int_equal(a.count, 20);
    assert_int_equal(a.max, 19);
    assert_int_equal(lhist_percentile(&a, 50), 10);
    struct lhist empty;
    lhist_init(&empty);
    assert_int_equal(lhist_percentile(&empty, 99), 0);
    /* Huge values land in the last bucket without overflow. */
    lhist_record(&empty, UINT64_MAX / 2);
    assert_int_equal(lhist_percentile(&empty, 50), UINT64_MAX / 2);
}

static void seqcheck_in_order(void **state)
{
    (void)state;
    struct seqcheck s;
    seqcheck_init(&s, 11);
    for (int64_t q = 11; q <= 1000; q++)
        seqcheck_see(&s, q);
    assert_int_equal(s.delivered, 990);
    assert_int_equal(s.duplicates, 0);
    assert_int_equal(s.out_of_order, 0);
    assert_int_equal(seqcheck_missing(&s, 1001), 0);
    assert_int_equal(seqcheck_missing(&s, 1003), 2);
}

static void seqcheck_gaps_dups_reorder(void **state)
{
    (void)state;
    struct seqcheck s;
    seqcheck_init(&s, 1);
    int64_t arrivals[] = {1, 2, 4, 5, 3, 3, 2, 7, 9, 8, 12};
    for (size_t i = 0; i < sizeof arrivals / sizeof arrivals[0]; i++)
        seqcheck_see(&s, arrivals[i]);
    /* 3 came after 4 and 5; 8 after 9; 7 and 12 early too. */
    assert_int_equal(s.duplicates, 2); /* the second 3, the late 2 */
    assert_int_equal(s.delivered, 9);  /* 1 2 4 5 3 7 9 8 12 */
    assert_int_equal(s.out_of_order,
                     6); /* 4 5 7 9 8 12 each arrived while a lower seq was missing */
    assert_int_equal(seqcheck_missing(&s, 13), 3); /* 6, 10, 11 */
    assert_int_equal(s.next, 6);
    seqcheck_see(&s, 6);
    assert_int_equal(s.next, 10);
    assert_int_equal(seqcheck_missing(&s, 13), 2);
    /* Far ahead: not tracked, reported. */
    seqcheck_see(&s, 10 + SEQCHECK_WINDOW + 5);
    assert_int_equal(s.beyond_window, 1);
}

/* Send stamps round-trip, carry no digits (a detector would redact them),
 * and anything else reads as no stamp. */
static void stamps_round_trip_without_digits(void **state)
{
    (void)state;
    const uint64_t v[] = {0, 1, 9, 10, 123456789012345ull, UINT64_MAX};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char s[STAMP_MAX + 8];
        size_t n = stamp_put(s, v[i]);
        assert_int_equal(n, strlen(s));
        assert_true(n < STAMP_MAX);
        assert_null(strpbrk(s, "0123456789"));
        strcat(s, " xxxx");
        if (v[i]) assert_true(stamp_get(s) == v[i]);
    }
    assert_true(stamp_get("tbcd rest") == 123);
    assert_true(stamp_get("123 digits") == 0);
    assert_true(stamp_get("t") == 0);
    assert_true(stamp_get("hello") == 0);
    assert_true(stamp_get("tjjjjjjjjjjjjjjjjjjjj") == 0); /* 20 nines: beyond 64 bits */
}

static void expect_frame(const char *text, enum eio_kind kind, int64_t id, const char *payload)
{
    struct eio_frame f;
    eio_parse(text, strlen(text), &f);
    assert_int_equal(f.kind, kind);
    assert_true(f.id == id);
    if (payload) {
        assert_non_null(f.payload);
        assert_int_equal(f.len, strlen(payload));
        assert_memory_equal(f.payload, payload, f.len);
    } else {
        assert_null(f.payload);
    }
}

/* Frames as a Socket.IO v4 server sends them, and what is not one of ours. */
static void room_sizes_zipf_and_assignment(void **state)
{
    (void)state;
    int z[4], u[4], room[100], count[4] = {0};
    /* 100 over 4 with s = 1: 4 given, 96 shared as 46.08, 23.04, 15.36,
     * 11.52; the one left over goes to the largest remainder (room 3). */
    assert_int_equal(sizes_zipf(100, 4, 1.0, z), 0);
    int want[4] = {47, 24, 16, 13};
    for (int r = 0; r < 4; r++)
        assert_int_equal(z[r], want[r]);
    /* s = 0 is uniform; ties go to the lower room. */
    assert_int_equal(sizes_zipf(10, 4, 0.0, u), 0);
    int even[4] = {3, 3, 2, 2};
    for (int r = 0; r < 4; r++)
        assert_int_equal(u[r], even[r]);
    /* A steep tail still leaves every room one member. */
    int big[50], sum = 0;
    assert_int_equal(sizes_zipf(60, 50, 3.0, big), 0);
    for (int r = 0; r < 50; r++) {
        assert_true(big[r] >= 1);
        if (r) assert_true(big[r] <= big[r - 1]);
        sum += big[r];
    }
    assert_int_equal(sum, 60);
    assert_int_equal(sizes_zipf(3, 4, 1.0, z), -1); /* fewer clients than rooms */
    assert_int_equal(sizes_zipf(10, 0, 1.0, z), -1);
    assert_int_equal(sizes_zipf(10, 4, -1.0, z), -1);
    /* Assignment: each room gets exactly its size, dealt round-robin. */
    sizes_assign(100, 4, want, room);
    for (int i = 0; i < 100; i++)
        count[room[i]]++;
    for (int r = 0; r < 4; r++)
        assert_int_equal(count[r], want[r]);
    assert_int_equal(room[0], 0);
    assert_int_equal(room[1], 1);
    assert_int_equal(room[2], 2);
    assert_int_equal(room[3], 3);
}

static void engineio_framing(void **state)
{
    (void)state;
    expect_frame("0{\"sid\":\"abc\",\"pingInterval\":25000}", EIO_OPEN, 0, NULL);
    expect_frame("2", EIO_PING, 0, NULL);
    expect_frame("40", EIO_CONNECTED, 0, NULL);
    expect_frame("40{\"sid\":\"x\"}", EIO_CONNECTED, 0, NULL);
    expect_frame("43[{\"ok\":1}]", EIO_OTHER, 0, NULL); /* an ack without its id */
    expect_frame("4312", EIO_OTHER, 0, NULL);           /* an id without a payload */
    expect_frame("437[{\"seq\":5}]", EIO_ACK, 7, "[{\"seq\":5}]");
    expect_frame("431099511627779[{\"error\":\"bad\"}]", EIO_ACK, 1099511627779LL,
                 "[{\"error\":\"bad\"}]");
    expect_frame("42[\"message\",{\"seq\":1}]", EIO_EVENT, 0, "[\"message\",{\"seq\":1}]");
    expect_frame("40/admin,{}", EIO_OTHER, 0, NULL); /* another namespace */
    expect_frame("3", EIO_OTHER, 0, NULL);
    expect_frame("6", EIO_OTHER, 0, NULL);
    expect_frame("", EIO_OTHER, 0, NULL);
    expect_frame("451-[\"bin\"]", EIO_OTHER, 0, NULL); /* binary attachments: not used */
    /* An emit asking for an ack, and one that does not fit. */
    char buf[64];
    size_t n = eio_emit(buf, sizeof buf, 42, "\"join\",\"r1\"");
    assert_int_equal(n, strlen("4242[\"join\",\"r1\"]"));
    assert_string_equal(buf, "4242[\"join\",\"r1\"]");
    assert_int_equal(eio_emit(buf, 8, 42, "\"join\",\"r1\""), 0);
    /* What we emit, the peer's acks parse back to the same id. */
    struct eio_frame f;
    eio_parse("4342[{}]", 8, &f);
    assert_int_equal(f.kind, EIO_ACK);
    assert_int_equal(f.id, 42);
}

/* The nchan peer's check: the prefix round-trips, garbage is no prefix, and
 * a lost, repeated or swapped send of one sender is seen (room of 3). */
static void senders_per_sender_counters(void **state)
{
    (void)state;
    char m[64];
    int slot;
    int64_t k;
    size_t h = senders_put(m, sizeof m, 12, 345);
    assert_int_equal(h, strlen("n12.345 "));
    strcpy(m + h, "tabc xxx");
    assert_int_equal(senders_parse(m, strlen(m), &slot, &k), h);
    assert_int_equal(slot, 12);
    assert_int_equal(k, 345);
    assert_int_equal(senders_parse("n12.345", 7, &slot, &k), 0); /* no space */
    assert_int_equal(senders_parse("x1.2 body", 9, &slot, &k), 0);
    assert_int_equal(senders_parse("n.2 body", 8, &slot, &k), 0);
    assert_int_equal(senders_put(m, 4, 12, 345), 0); /* does not fit */

    struct senders s;
    assert_int_equal(senders_init(&s, 3), 0);
    /* sender 0: 0..9 in order; sender 1: 4 lost; sender 2: 2 twice, 6 before 5 */
    for (int64_t i = 0; i < 10; i++) {
        assert_int_equal(senders_see(&s, 0, i), 0);
        if (i != 4) senders_see(&s, 1, i);
    }
    int64_t two[] = {0, 1, 2, 2, 3, 4, 6, 5, 7};
    for (size_t i = 0; i < sizeof two / sizeof two[0]; i++)
        senders_see(&s, 2, two[i]);
    assert_int_equal(senders_see(&s, 3, 0), -1); /* no such sender */
    assert_int_equal(s.unknown, 1);
    uint64_t sent[3] = {10, 10, 8}, d = 0, dups = 0, ooo = 0;
    assert_int_equal(senders_missing(&s, sent), 1); /* sender 1's 4 */
    senders_totals(&s, &d, &dups, &ooo);
    assert_int_equal(d, 10 + 9 + 8);
    assert_int_equal(dups, 1);
    assert_int_equal(ooo, 5 + 1); /* 1's 5..9 behind its gap; 2's 6 before 5 */
    sent[0] = 12;                 /* two sends of sender 0 never arrived */
    assert_int_equal(senders_missing(&s, sent), 3);
    senders_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stamps_round_trip_without_digits),
        cmocka_unit_test(histogram_percentiles_within_bucket_error),
        cmocka_unit_test(histogram_small_values_exact_and_merge),
        cmocka_unit_test(seqcheck_in_order),
        cmocka_unit_test(seqcheck_gaps_dups_reorder),
        cmocka_unit_test(engineio_framing),
        cmocka_unit_test(room_sizes_zipf_and_assignment),
        cmocka_unit_test(senders_per_sender_counters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
