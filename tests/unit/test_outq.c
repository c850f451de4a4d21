/* Unit tests of the shared frames and the bounded out-queue. */
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
#include "outq.h"

static void frame_refcount(void **state)
{
    (void)state;
    struct frame *f = frame_new("hello", 5);
    assert_non_null(f);
    assert_int_equal(f->refs, 1);
    assert_int_equal(f->len, 5);
    assert_memory_equal(frame_data(f), "hello", 5);
    assert_int_equal(frame_data(f)[5], '\0');
    /* Headroom lies before the payload, inside the same allocation. */
    assert_ptr_equal(frame_data(f), f->buf + FRAME_PRE);
    frame_ref(f);
    frame_ref(f);
    assert_int_equal(f->refs, 3);
    frame_unref(f);
    frame_unref(f);
    assert_int_equal(f->refs, 1);
    frame_unref(f); /* freed: ASan/valgrind report a leak or double free otherwise */
}

static void frame_alloc_failure(void **state)
{
    (void)state;
    mem_fail_after(1);
    assert_null(frame_new("x", 1));
    mem_fail_after(0);
    struct frame *f = frame_new("", 0);
    assert_non_null(f);
    assert_int_equal(f->len, 0);
    frame_unref(f);
}

static void outq_fifo_and_refs(void **state)
{
    (void)state;
    struct outq q = {0};
    struct outq_limits lim = {100, 1 << 20};
    struct frame *f[20];
    char buf[8];
    for (int i = 0; i < 20; i++) {
        int n = snprintf(buf, sizeof buf, "m%d", i);
        f[i] = frame_new(buf, (size_t)n);
        assert_int_equal(outq_push(&q, f[i], &lim), 0);
        assert_int_equal(f[i]->refs, 2); /* ours and the queue's */
    }
    assert_int_equal(q.count, 20);
    assert_int_equal(q.bytes, 10 * 2 + 10 * 3);
    /* Pop some, push more: the ring wraps and keeps order. */
    for (int i = 0; i < 7; i++) {
        assert_ptr_equal(outq_peek(&q, 0), f[i]);
        outq_pop(&q);
        assert_int_equal(f[i]->refs, 1);
    }
    for (int i = 0; i < 7; i++)
        assert_int_equal(outq_push(&q, f[i], &lim), 0);
    for (uint32_t i = 0; i < q.count; i++) {
        struct frame *want = i < 13 ? f[7 + i] : f[i - 13];
        assert_ptr_equal(outq_peek(&q, i), want);
    }
    assert_null(outq_peek(&q, q.count));
    outq_clear(&q);
    assert_int_equal(q.count, 0);
    assert_int_equal(q.bytes, 0);
    assert_null(q.ring);
    for (int i = 0; i < 20; i++) {
        assert_int_equal(f[i]->refs, 1);
        frame_unref(f[i]);
    }
}

static void outq_limits_refuse(void **state)
{
    (void)state;
    struct outq q = {0};
    struct frame *f = frame_new("0123456789", 10);
    /* Byte limit: 3 frames of 10 fit in 35 bytes, the 4th does not. */
    struct outq_limits by_bytes = {1000, 35};
    for (int i = 0; i < 3; i++)
        assert_int_equal(outq_push(&q, f, &by_bytes), 0);
    assert_int_equal(outq_push(&q, f, &by_bytes), -ENOBUFS);
    assert_int_equal(q.count, 3);
    assert_int_equal(f->refs, 4); /* a refused push takes no reference */
    outq_clear(&q);
    /* Frame limit. */
    struct outq_limits by_frames = {5, 1 << 20};
    for (int i = 0; i < 5; i++)
        assert_int_equal(outq_push(&q, f, &by_frames), 0);
    assert_int_equal(outq_push(&q, f, &by_frames), -ENOBUFS);
    assert_int_equal(q.count, 5);
    outq_clear(&q);
    assert_int_equal(f->refs, 1);
    frame_unref(f);
}

static void outq_growth_failure_keeps_queue(void **state)
{
    (void)state;
    struct outq q = {0};
    struct outq_limits lim = {1000, 1 << 20};
    struct frame *f = frame_new("x", 1);
    for (int i = 0; i < 4; i++)
        assert_int_equal(outq_push(&q, f, &lim), 0);
    mem_fail_after(1); /* the ring must grow for the 5th */
    assert_int_equal(outq_push(&q, f, &lim), -ENOMEM);
    mem_fail_after(0);
    assert_int_equal(q.count, 4);
    assert_int_equal(f->refs, 5);
    assert_int_equal(outq_push(&q, f, &lim), 0);
    assert_int_equal(q.count, 5);
    outq_clear(&q);
    assert_int_equal(f->refs, 1);
    frame_unref(f);
}

static void outq_shrinks_when_drained(void **state)
{
    (void)state;
    struct outq q = {0};
    struct outq_limits lim = {1000, 1 << 20};
    struct frame *f = frame_new("x", 1);
    for (int i = 0; i < 100; i++)
        outq_push(&q, f, &lim);
    assert_true(q.cap >= 100);
    while (q.count)
        outq_pop(&q);
    /* A burst's big ring is given back; a small one stays for the trickle. */
    assert_null(q.ring);
    outq_push(&q, f, &lim);
    outq_pop(&q);
    assert_non_null(q.ring);
    assert_int_equal(q.cap, 4);
    /* Released only when empty (an idle connection's, conn.c). */
    outq_push(&q, f, &lim);
    outq_release(&q);
    assert_non_null(q.ring);
    assert_int_equal(q.count, 1);
    outq_pop(&q);
    outq_release(&q);
    assert_null(q.ring);
    assert_int_equal(q.cap, 0);
    assert_int_equal(outq_push(&q, f, &lim), 0);
    assert_ptr_equal(outq_peek(&q, 0), f);
    outq_clear(&q);
    frame_unref(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frame_refcount),
        cmocka_unit_test(frame_alloc_failure),
        cmocka_unit_test(outq_fifo_and_refs),
        cmocka_unit_test(outq_limits_refuse),
        cmocka_unit_test(outq_growth_failure_keeps_queue),
        cmocka_unit_test(outq_shrinks_when_drained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
