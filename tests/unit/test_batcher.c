/* Unit tests of the group-commit batcher (server/store/batcher.c) on a real
 * libuv loop, with a test executor in place of PostgreSQL: the test decides
 * when a run ends and how (committed, a SQLSTATE, a lost connection). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "batcher.h"
#include "mem.h"

#define MAXI 64 /* items one test makes at most */

struct titem {
    struct batch_item bi;
    int id;
    int key; /* admit cuts the batch before a second item with the same key */
};

enum { PENDING, DONE_OK, DONE_FAILED };

/* The test executor: records what the batcher asks of it. */
struct exec {
    uv_loop_t loop;
    struct batcher *b;
    int runs;                   /* run calls */
    int builds;                 /* build calls */
    int inflight;               /* runs started and not yet ended */
    int max_inflight;           /* the most at once */
    int tries;                  /* bt->tries of the last run */
    uint32_t last_n;            /* bt->n of the last run */
    uint64_t last_t0;           /* bt->t0 of the last run (when it left the list) */
    int last_ids[MAXI];         /* its items' ids, in order */
    int run_rc;                 /* what run returns (0: started) */
    int build_rc;               /* what build returns, unless it runs out of memory */
    bool cut_same_key;          /* admit: BATCH_CUT on a key already in the batch */
    int admit_first;            /* admit was asked about a batch's first item (never) */
    int dispatches, fails;      /* batches ended each way */
    int fail_err;               /* the last fail's err */
    int nomem_fails;            /* fails with -ENOMEM */
    char fail_state[8];         /* ... and sqlstate ("-" for NULL) */
    void *res_seen;             /* the res dispatch or fail got */
    int outcome[MAXI];          /* per item id: PENDING, DONE_OK, DONE_FAILED */
    int answered[MAXI];         /* how often each item got an outcome */
    int released[MAXI];         /* how often each item came back */
    int live;                   /* items made and not yet freed */
    bool pause_ok;              /* pause answers true */
    int pause_asks, resumes;    /* backpressure calls */
    uint32_t pause_nwait[MAXI]; /* batcher_waiting at each pause ask */
    char *param;                /* the built parameter (grown with mem_realloc, as store.c) */
    size_t param_cap;
};

static int e_admit(void *ud, const struct batch *bt, struct batch_item *bi)
{
    struct exec *e = ud;
    if (!bt->n) e->admit_first++;
    struct titem *it = batcher_entry(bi, struct titem, bi);
    if (e->cut_same_key)
        for (uint32_t j = 0; j < bt->n; j++)
            if (batcher_entry(bt->items[j], struct titem, bi)->key == it->key) return BATCH_CUT;
    return BATCH_TAKE;
}

static int e_build(void *ud, const struct batch *bt)
{
    struct exec *e = ud;
    e->builds++;
    size_t need = 16 + 8 * (size_t)bt->n;
    if (need > e->param_cap) {
        char *p = mem_realloc(e->param, need);
        if (!p) return -ENOMEM;
        e->param = p;
        e->param_cap = need;
    }
    snprintf(e->param, e->param_cap, "%u items", bt->n);
    return e->build_rc;
}

static int e_run(void *ud, const struct batch *bt)
{
    struct exec *e = ud;
    e->runs++;
    if (e->run_rc) return e->run_rc;
    e->inflight++;
    if (e->inflight > e->max_inflight) e->max_inflight = e->inflight;
    e->tries = bt->tries;
    e->last_n = bt->n;
    e->last_t0 = bt->t0;
    for (uint32_t i = 0; i < bt->n && i < MAXI; i++)
        e->last_ids[i] = batcher_entry(bt->items[i], struct titem, bi)->id;
    return 0;
}

static void settle(struct exec *e, const struct batch *bt, int outcome)
{
    for (uint32_t i = 0; i < bt->n; i++) {
        int id = batcher_entry(bt->items[i], struct titem, bi)->id;
        e->outcome[id] = outcome;
        e->answered[id]++;
    }
}

static void e_dispatch(void *ud, const struct batch *bt, void *res)
{
    struct exec *e = ud;
    e->dispatches++;
    e->res_seen = res;
    settle(e, bt, DONE_OK);
}

static void e_fail(void *ud, const struct batch *bt, int err, const char *sqlstate, void *res)
{
    struct exec *e = ud;
    e->fails++;
    e->fail_err = err;
    if (err == -ENOMEM) e->nomem_fails++;
    snprintf(e->fail_state, sizeof e->fail_state, "%s", sqlstate ? sqlstate : "-");
    e->res_seen = res;
    settle(e, bt, DONE_FAILED);
}

static void e_release(void *ud, struct batch_item *bi)
{
    struct exec *e = ud;
    struct titem *it = batcher_entry(bi, struct titem, bi);
    e->released[it->id]++;
    e->live--;
    mem_free(it);
}

static bool e_pause(void *ud, struct batch_item *bi)
{
    struct exec *e = ud;
    (void)bi;
    if (e->pause_asks < MAXI) e->pause_nwait[e->pause_asks] = batcher_waiting(e->b);
    e->pause_asks++;
    return e->pause_ok;
}

static void e_resume(void *ud)
{
    struct exec *e = ud;
    e->resumes++;
}

static const struct batcher_ops ops = {
    .admit = e_admit,
    .build = e_build,
    .run = e_run,
    .dispatch = e_dispatch,
    .fail = e_fail,
    .release = e_release,
    .pause = e_pause,
    .resume = e_resume,
};

/* 0, or -ENOMEM when the executor could not allocate the batcher. */
static int exec_init(struct exec *e, uint32_t batch_max, uint32_t queue_max, uint32_t linger_us)
{
    memset(e, 0, sizeof *e);
    assert_int_equal(uv_loop_init(&e->loop), 0);
    struct batcher_cfg cfg = {batch_max, queue_max, linger_us};
    e->b = batcher_new(&e->loop, &cfg, &ops, e);
    return e->b ? 0 : -ENOMEM;
}

/* Frees the batcher, lets libuv close its timer, checks nothing is left. */
static void exec_done(struct exec *e)
{
    if (e->b) batcher_free(e->b);
    e->b = NULL;
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    mem_free(e->param);
    e->param = NULL;
    assert_int_equal(e->live, 0);
}

/* Makes item id and queues it: what batcher_add answers, or -ENOMEM. */
static int add(struct exec *e, int id, int key)
{
    struct titem *it = mem_alloc(sizeof *it);
    if (!it) return -ENOMEM;
    memset(it, 0, sizeof *it);
    it->id = id;
    it->key = key;
    e->live++;
    int rc = batcher_add(e->b, &it->bi);
    if (rc) { /* refused: still ours */
        e->live--;
        mem_free(it);
    }
    return rc;
}

/* Ends the run in flight the way the database would. */
static void end_run(struct exec *e, int err, const char *sqlstate, void *res)
{
    assert_int_equal(e->inflight, 1);
    e->inflight--;
    batcher_done(e->b, err, sqlstate, res);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
}

/* Turns the loop for ms (a run in flight stays in flight meanwhile). */
static void let_time_pass(struct exec *e, uint64_t ms)
{
    uv_timer_t t;
    uv_timer_init(&e->loop, &t);
    uv_timer_start(&t, on_tick, ms, 0);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
}

/* No batch has left since the one that left at t0 (runs is still runs):
 * checked only while the linger since t0 is surely not over, with the
 * clock read after the batcher decided, so a machine that stalls for a
 * linger cannot fail it. */
static void assert_waiting(const struct exec *e, int runs, uint64_t t0, uint64_t linger_ms)
{
    if ((uv_hrtime() - t0) / 1000000 + 1 < linger_ms) assert_int_equal(e->runs, runs);
}

/* ---- gathering ---------------------------------------------------------- */

/* On a quiet batcher what one loop turn queues goes on the next turn,
 * together, without a linger; what comes after that batch left waits until
 * a linger after it (a lone send on a quiet gateway waited the linger out
 * before batches were spaced). */
static void a_quiet_batcher_sends_on_the_next_turn(void **state)
{
    (void)state;
    struct exec e;
    assert_int_equal(exec_init(&e, 8, 64, 30000), 0); /* 30 ms */
    assert_int_equal(add(&e, 0, 0), 0);
    assert_int_equal(add(&e, 1, 1), 0);
    assert_int_equal(e.runs, 0); /* not inside the turn that queued them */
    assert_false(batcher_idle(e.b));
    uv_run(&e.loop, UV_RUN_NOWAIT); /* one turn, no sleeping */
    assert_int_equal(e.runs, 1);
    assert_int_equal(e.builds, 1);
    assert_int_equal(e.last_n, 2);
    assert_int_equal(e.last_ids[0], 0);
    assert_int_equal(e.last_ids[1], 1);
    assert_int_equal(e.tries, 1);
    uint64_t t0 = e.last_t0;
    int res;
    end_run(&e, 0, NULL, &res);
    assert_int_equal(e.dispatches, 1);
    assert_ptr_equal(e.res_seen, &res);
    assert_int_equal(e.outcome[0], DONE_OK);
    assert_int_equal(e.released[0], 1);
    assert_int_equal(e.released[1], 1);
    assert_true(batcher_idle(e.b));
    assert_int_equal(e.admit_first, 0);
    /* The next one, a linger after the first left. */
    assert_int_equal(add(&e, 2, 2), 0);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_waiting(&e, 1, t0, 30);
    while (e.runs < 2)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_true((e.last_t0 - t0) / 1000000 >= 29); /* the timer's ms granularity */
    assert_int_equal(e.last_ids[0], 2);
    end_run(&e, 0, NULL, NULL);
    /* After a quiet spell longer than the linger, a lone send goes on the
     * next turn again: the rule is the time since the last batch, not a
     * wait for each send. */
    let_time_pass(&e, 40);
    assert_int_equal(add(&e, 3, 3), 0);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_int_equal(e.runs, 3);
    assert_int_equal(e.last_ids[0], 3);
    end_run(&e, 0, NULL, NULL);
    exec_done(&e);
}

/* batch_max waiting: the batch goes at once, without the linger; what
 * exceeds it waits for the next batch, in order, and a full one goes as
 * soon as the one in flight ends. */
static void full_batch_goes_at_once_and_is_capped(void **state)
{
    (void)state;
    struct exec e;
    assert_int_equal(exec_init(&e, 4, 64, 10000000), 0); /* a 10 s linger */
    for (int i = 0; i < 3; i++)
        assert_int_equal(add(&e, i, i), 0);
    assert_int_equal(e.runs, 0);
    assert_int_equal(add(&e, 3, 3), 0);
    assert_int_equal(e.runs, 1); /* no loop turn was needed */
    assert_int_equal(e.last_n, 4);
    for (int i = 4; i < 10; i++)
        assert_int_equal(add(&e, i, i), 0);
    assert_int_equal(batcher_waiting(e.b), 6);
    int next = 0;
    for (int batch = 0; batch < 3; batch++) {
        uint32_t want = batch < 2 ? 4 : 2;
        assert_int_equal(e.last_n, want);
        for (uint32_t i = 0; i < want; i++)
            assert_int_equal(e.last_ids[i], next++);
        /* A full batch leaves the moment this one ends; the last two are
         * short of one and wait out their linger (here: flushed). */
        end_run(&e, 0, NULL, NULL);
        if (batch == 1) {
            assert_int_equal(e.runs, 2);
            assert_int_equal(batcher_waiting(e.b), 2);
            batcher_flush(e.b);
        }
        assert_int_equal(e.runs, batch < 2 ? batch + 2 : 3);
    }
    assert_int_equal(e.dispatches, 3);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(e.outcome[i], DONE_OK);
        assert_int_equal(e.answered[i], 1);
        assert_int_equal(e.released[i], 1);
    }
    assert_true(batcher_idle(e.b));
    exec_done(&e);
}

/* One batch in flight: what arrives meanwhile gathers however long the run
 * takes (no second run, no linger firing into it), then goes as one batch. */
static void one_batch_in_flight(void **state)
{
    (void)state;
    struct exec e;
    assert_int_equal(exec_init(&e, 16, 64, 1000), 0);
    assert_int_equal(add(&e, 0, 0), 0);
    while (!e.runs)
        uv_run(&e.loop, UV_RUN_ONCE);
    for (int i = 1; i < 6; i++)
        assert_int_equal(add(&e, i, i), 0);
    let_time_pass(&e, 20); /* well past the linger */
    assert_int_equal(e.runs, 1);
    assert_int_equal(batcher_waiting(e.b), 5);
    end_run(&e, 0, NULL, NULL);
    assert_int_equal(e.runs, 2);
    assert_int_equal(e.last_n, 5);
    end_run(&e, 0, NULL, NULL);
    assert_int_equal(e.max_inflight, 1);
    assert_true(batcher_idle(e.b));
    /* batcher_flush sends at once what waits, and nothing when a run is on. */
    assert_int_equal(add(&e, 6, 6), 0);
    batcher_flush(e.b);
    assert_int_equal(e.runs, 3);
    assert_int_equal(add(&e, 7, 7), 0);
    batcher_flush(e.b);
    assert_int_equal(e.runs, 3);
    end_run(&e, 0, NULL, NULL);
    while (e.runs < 4) /* item 7 waits a linger (1 ms) after 6 left */
        uv_run(&e.loop, UV_RUN_ONCE);
    end_run(&e, 0, NULL, NULL);
    assert_int_equal(e.runs, 4);
    exec_done(&e);
}

/* Under load batches leave a linger apart, counted from when the one
 * before left, not from the end of its run: items that came during a short
 * run wait out the rest of the linger (so a fast database gets a commit per
 * linger, not one per run); items that have waited a linger, or fill a
 * batch, go the moment the run ends. */
static void a_short_run_does_not_shorten_the_linger(void **state)
{
    (void)state;
    struct exec e;
    assert_int_equal(exec_init(&e, 4, 64, 30000), 0); /* 30 ms */
    assert_int_equal(add(&e, 0, 0), 0);
    while (!e.runs)
        uv_run(&e.loop, UV_RUN_ONCE);
    uint64_t t0 = e.last_t0;
    assert_int_equal(add(&e, 1, 1), 0);
    assert_int_equal(add(&e, 2, 2), 0);
    end_run(&e, 0, NULL, NULL); /* a run far shorter than the linger */
    assert_waiting(&e, 1, t0, 30);
    while (e.runs < 2)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_true((e.last_t0 - t0) / 1000000 >= 29);
    assert_int_equal(e.last_n, 2);
    assert_int_equal(e.last_ids[0], 1);
    /* A linger went by during a long run: it goes as the run ends. */
    assert_int_equal(add(&e, 3, 3), 0);
    let_time_pass(&e, 40);
    assert_int_equal(e.runs, 2);
    end_run(&e, 0, NULL, NULL);
    assert_int_equal(e.runs, 3);
    assert_int_equal(e.last_ids[0], 3);
    /* A full batch does not wait for the linger. */
    for (int i = 4; i < 8; i++)
        assert_int_equal(add(&e, i, i), 0);
    end_run(&e, 0, NULL, NULL);
    assert_int_equal(e.runs, 4);
    assert_int_equal(e.last_n, 4);
    end_run(&e, 0, NULL, NULL);
    assert_true(batcher_idle(e.b));
    exec_done(&e);
}

/* Items left behind by a full batch wait a linger from when that batch
 * left, not from when the batch before it did. */
static void leftovers_wait_a_linger_after_the_full_batch(void **state)
{
    (void)state;
    struct exec e;
    assert_int_equal(exec_init(&e, 2, 64, 30000), 0); /* 30 ms */
    assert_int_equal(add(&e, 0, 0), 0);
    while (!e.runs)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(add(&e, 1, 1), 0);
    let_time_pass(&e, 20);
    assert_int_equal(add(&e, 2, 2), 0);
    assert_int_equal(add(&e, 3, 3), 0); /* left behind */
    end_run(&e, 0, NULL, NULL);         /* 1 and 2: a full batch, at once */
    assert_int_equal(e.runs, 2);
    assert_int_equal(e.last_ids[0], 1);
    uint64_t t1 = e.last_t0;
    end_run(&e, 0, NULL, NULL);
    assert_waiting(&e, 2, t1, 30); /* 1 and 2 left moments ago */
    while (e.runs < 3)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_true((e.last_t0 - t1) / 1000000 >= 29);
    assert_int_equal(e.last_ids[0], 3);
    end_run(&e, 0, NULL, NULL);
    exec_done(&e);
}

/* An item queued late in a long loop turn still waits out the linger:
 * libuv's timer counts from the turn's start, so it fires early and the
 * batcher waits out the rest. */
static struct exec *busy_e;
static void on_busy_turn(uv_timer_t *t)
{
    (void)t;
    uint64_t t0 = uv_hrtime();
    while (uv_hrtime() - t0 < 20 * 1000000ull) /* 20 ms of work in this turn */
        ;
    assert_int_equal(add(busy_e, 1, 1), 0);
}

static void linger_survives_a_long_turn(void **state)
{
    (void)state;
    struct exec e;
    assert_int_equal(exec_init(&e, 8, 64, 30000), 0); /* 30 ms */
    assert_int_equal(add(&e, 0, 0), 0);
    while (!e.runs)
        uv_run(&e.loop, UV_RUN_ONCE);
    uint64_t t0 = e.last_t0;
    end_run(&e, 0, NULL, NULL);
    busy_e = &e;
    uv_timer_t t;
    uv_timer_init(&e.loop, &t);
    uv_timer_start(&t, on_busy_turn, 1, 0);
    while (e.runs < 2)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_true((e.last_t0 - t0) / 1000000 >= 29);
    end_run(&e, 0, NULL, NULL);
    uv_close((uv_handle_t *)&t, NULL);
    exec_done(&e);
}

/* admit may close a batch before an item (receipts: two votes on one
 * message); the item then leads the next batch. */
static void admit_cuts_the_batch(void **state)
{
    (void)state;
    struct exec e;
    assert_int_equal(exec_init(&e, 8, 64, 0), 0);
    e.cut_same_key = true;
    assert_int_equal(add(&e, 0, 7), 0);
    assert_int_equal(add(&e, 1, 1), 0);
    assert_int_equal(add(&e, 2, 7), 0);
    assert_int_equal(add(&e, 3, 2), 0);
    while (!e.runs)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(e.last_n, 2);
    assert_int_equal(e.last_ids[1], 1);
    end_run(&e, 0, NULL, NULL);
    assert_int_equal(e.last_n, 2);
    assert_int_equal(e.last_ids[0], 2);
    assert_int_equal(e.last_ids[1], 3);
    end_run(&e, 0, NULL, NULL);
    assert_int_equal(e.admit_first, 0);
    exec_done(&e);
}

/* ---- retries and failures ----------------------------------------------- */

/* Each retryable SQLSTATE runs the same batch again, BATCHER_TRIES runs in
 * all; a retry that commits dispatches; exhausted, the batch fails with
 * the last state. */
static void retries_on_each_retryable_state(void **state)
{
    (void)state;
    static const char *const states[] = {"40P01", "40001", "23505"};
    for (int s = 0; s < 3; s++) {
        struct exec e;
        assert_int_equal(exec_init(&e, 8, 64, 0), 0);
        /* A retry that commits. */
        assert_int_equal(add(&e, 0, 0), 0);
        assert_int_equal(add(&e, 1, 1), 0);
        batcher_flush(e.b);
        end_run(&e, 0, states[s], NULL);
        assert_int_equal(e.runs, 2);
        assert_int_equal(e.tries, 2);
        assert_int_equal(e.last_n, 2); /* the same batch */
        assert_int_equal(e.builds, 1); /* its parameter is built once */
        assert_int_equal(e.released[0], 0);
        end_run(&e, 0, NULL, NULL);
        assert_int_equal(e.dispatches, 1);
        assert_int_equal(e.fails, 0);
        /* A conflict every time. */
        assert_int_equal(add(&e, 2, 2), 0);
        batcher_flush(e.b);
        int res;
        for (int t = 1; t <= BATCHER_TRIES; t++) {
            assert_int_equal(e.tries, t);
            end_run(&e, 0, states[s], &res);
        }
        assert_int_equal(e.runs, 2 + BATCHER_TRIES);
        assert_int_equal(e.fails, 1);
        assert_int_equal(e.fail_err, -EIO);
        assert_string_equal(e.fail_state, states[s]);
        assert_ptr_equal(e.res_seen, &res);
        assert_int_equal(e.outcome[2], DONE_FAILED);
        assert_int_equal(e.released[2], 1);
        exec_done(&e);
    }
}

/* Any other failed statement fails the batch on its first run. */
static void no_retry_on_other_states(void **state)
{
    (void)state;
    static const char *const states[] = {"23503", "23514", "42P01", "57014", "40002", "2350", ""};
    for (size_t s = 0; s < sizeof states / sizeof states[0]; s++) {
        struct exec e;
        assert_int_equal(exec_init(&e, 8, 64, 0), 0);
        assert_int_equal(add(&e, 0, 0), 0);
        assert_int_equal(add(&e, 1, 1), 0);
        batcher_flush(e.b);
        end_run(&e, 0, states[s], NULL);
        if (e.runs != 1) fprintf(stderr, "sqlstate \"%s\" was retried\n", states[s]);
        assert_int_equal(e.runs, 1);
        assert_int_equal(e.fails, 1);
        assert_int_equal(e.fail_err, -EIO);
        assert_string_equal(e.fail_state, states[s]);
        assert_int_equal(e.outcome[0], DONE_FAILED);
        assert_int_equal(e.outcome[1], DONE_FAILED);
        exec_done(&e);
    }
}

/* A lost connection, a run that cannot start and a parameter that cannot be
 * built each fail the whole batch once, with their error, and the next
 * batch still goes. */
static void fail_all_when_lost_or_not_run(void **state)
{
    (void)state;
    struct exec e;
    assert_int_equal(exec_init(&e, 3, 64, 0), 0);
    for (int i = 0; i < 5; i++)
        assert_int_equal(add(&e, i, i), 0);
    assert_int_equal(e.runs, 1);
    end_run(&e, -EAGAIN, NULL, NULL); /* lost: maybe committed, never retried */
    assert_int_equal(e.fails, 1);
    assert_int_equal(e.fail_err, -EAGAIN);
    assert_string_equal(e.fail_state, "-");
    assert_null(e.res_seen);
    for (int i = 0; i < 3; i++)
        assert_int_equal(e.outcome[i], DONE_FAILED);
    assert_int_equal(e.runs, 2); /* the rest went on */
    end_run(&e, -ETIMEDOUT, NULL, NULL);
    assert_int_equal(e.fail_err, -ETIMEDOUT);
    assert_int_equal(e.runs, 2);
    /* run refuses at once: failed without a callback. */
    e.run_rc = -EAGAIN;
    for (int i = 5; i < 8; i++)
        assert_int_equal(add(&e, i, i), 0);
    assert_int_equal(e.fails, 3);
    assert_int_equal(e.fail_err, -EAGAIN);
    /* build fails: not run at all. */
    e.run_rc = 0;
    e.build_rc = -ENOMEM;
    int runs = e.runs;
    for (int i = 8; i < 11; i++)
        assert_int_equal(add(&e, i, i), 0);
    assert_int_equal(e.runs, runs);
    assert_int_equal(e.fails, 4);
    assert_int_equal(e.fail_err, -ENOMEM);
    for (int i = 0; i < 11; i++) {
        assert_int_equal(e.answered[i], 1);
        assert_int_equal(e.outcome[i], DONE_FAILED);
        assert_int_equal(e.released[i], 1);
    }
    assert_int_equal(e.dispatches, 0);
    assert_true(batcher_idle(e.b));
    /* A completion with nothing in flight changes nothing. */
    batcher_done(e.b, 0, NULL, NULL);
    assert_int_equal(e.dispatches, 0);
    exec_done(&e);
}

/* ---- bounds and backpressure -------------------------------------------- */

/* queue_max waiting: the next add is refused and stays the caller's. */
static void full_queue_refuses(void **state)
{
    (void)state;
    struct exec e;
    assert_int_equal(exec_init(&e, 4, 16, 0), 0);
    for (int i = 0; i < 4; i++) /* in flight */
        assert_int_equal(add(&e, i, i), 0);
    for (int i = 4; i < 20; i++)
        assert_int_equal(add(&e, i, i), 0);
    assert_true(batcher_full(e.b));
    assert_int_equal(add(&e, 20, 20), -EBUSY);
    assert_int_equal(e.released[20], 0);
    assert_int_equal(batcher_waiting(e.b), 16);
    end_run(&e, 0, NULL, NULL);
    assert_false(batcher_full(e.b));
    assert_int_equal(add(&e, 21, 21), 0);
    /* Freed with a batch in flight and items waiting: every one comes back once. */
    exec_done(&e);
    for (int i = 0; i < 22; i++)
        if (i != 20) assert_int_equal(e.released[i], 1);
}

/* Backpressure: pause is asked for each item queued at or above half of
 * queue_max; resume comes once, when a batch ends with a quarter or less
 * waiting, and only after a pause that took effect. */
static void backpressure_thresholds(void **state)
{
    (void)state;
    struct exec e;
    assert_int_equal(exec_init(&e, 4, 16, 0), 0);
    e.pause_ok = true;
    for (int i = 0; i < 4; i++)
        assert_int_equal(add(&e, i, i), 0); /* in flight */
    for (int i = 4; i < 16; i++)
        assert_int_equal(add(&e, i, i), 0); /* 12 waiting */
    assert_int_equal(e.pause_asks, 5);      /* at 8, 9, 10, 11, 12 waiting */
    for (int k = 0; k < 5; k++)
        assert_int_equal(e.pause_nwait[k], 8 + k);
    end_run(&e, 0, NULL, NULL); /* 12 waiting when it ended */
    assert_int_equal(e.resumes, 0);
    end_run(&e, 0, NULL, NULL); /* 8 */
    assert_int_equal(e.resumes, 0);
    end_run(&e, 0, NULL, NULL); /* 4: a quarter */
    assert_int_equal(e.resumes, 1);
    end_run(&e, 0, NULL, NULL);
    assert_int_equal(e.resumes, 1);
    assert_true(batcher_idle(e.b));
    exec_done(&e);

    /* A pause that stopped nobody is not followed by a resume. */
    assert_int_equal(exec_init(&e, 4, 16, 0), 0);
    e.pause_ok = false;
    for (int i = 0; i < 14; i++)
        assert_int_equal(add(&e, i, i), 0);
    assert_int_equal(e.pause_asks, 3);
    while (e.inflight)
        end_run(&e, 0, NULL, NULL);
    assert_int_equal(e.resumes, 0);
    exec_done(&e);

    /* Without a pause hook (receipts) nothing is asked. */
    struct batcher_ops quiet = ops;
    quiet.pause = NULL;
    quiet.resume = NULL;
    memset(&e, 0, sizeof e);
    assert_int_equal(uv_loop_init(&e.loop), 0);
    struct batcher_cfg cfg = {4, 16, 0};
    e.b = batcher_new(&e.loop, &cfg, &quiet, &e);
    assert_non_null(e.b);
    for (int i = 0; i < 20; i++)
        assert_int_equal(add(&e, i, i), 0);
    while (e.inflight)
        end_run(&e, 0, NULL, NULL);
    assert_int_equal(e.pause_asks, 0);
    exec_done(&e);
}

/* Senders paused by backpressure send nothing more: what waits goes as the
 * run ends, without waiting out a linger that could gather nothing. */
static void paused_senders_skip_the_linger(void **state)
{
    (void)state;
    struct exec e;
    assert_int_equal(exec_init(&e, 8, 8, 30000), 0); /* pause at 4 waiting */
    e.pause_ok = true;
    assert_int_equal(add(&e, 0, 0), 0);
    while (!e.runs)
        uv_run(&e.loop, UV_RUN_ONCE);
    for (int i = 1; i < 5; i++)
        assert_int_equal(add(&e, i, i), 0);
    assert_int_equal(e.pause_asks, 1);
    end_run(&e, 0, NULL, NULL);
    assert_int_equal(e.runs, 2); /* at once: 4 of 8, lingered 0 ms */
    assert_int_equal(e.last_n, 4);
    end_run(&e, 0, NULL, NULL);
    assert_int_equal(e.resumes, 1);
    exec_done(&e);
}

/* ---- allocation failures ------------------------------------------------ */

/* One life of a batcher and its executor: made, items queued, batches run
 * with a conflict and a lost connection among them, freed. Every item made
 * ends with exactly one outcome and comes back once, whatever allocation
 * failed; returns how many items were refused (not made or not queued). */
static int life(struct exec *e, bool *made)
{
    *made = exec_init(e, 3, 16, 0) == 0;
    if (!*made) {
        assert_int_equal(uv_loop_close(&e->loop), 0);
        return -1;
    }
    int refused = 0;
    for (int i = 0; i < 10; i++)
        if (add(e, i, i)) refused++;
    int step = 0;
    while (e->inflight) {
        step++;
        if (step == 1)
            end_run(e, 0, "40P01", NULL);
        else if (step == 3)
            end_run(e, -EAGAIN, NULL, NULL);
        else
            end_run(e, 0, NULL, NULL);
    }
    for (int i = 10; i < 12; i++) /* fewer than batch_max: they wait for the linger */
        if (add(e, i, i)) refused++;
    uv_run(&e->loop, UV_RUN_DEFAULT); /* the linger fires */
    while (e->inflight)
        end_run(e, 0, NULL, NULL);
    assert_true(batcher_idle(e->b));
    exec_done(e);
    for (int i = 0; i < 12; i++) {
        assert_int_equal(e->answered[i], e->released[i]);
        assert_true(e->released[i] <= 1);
        if (e->released[i]) assert_int_not_equal(e->outcome[i], PENDING);
    }
    return refused;
}

/* Fails the 1st, 2nd, ... allocation of a life until a life runs out of
 * injections: each failure reaches the caller as an error (no batcher, an
 * item refused, a batch failed with -ENOMEM) and nothing leaks (e->live
 * here; ASan's leak check in the sanitized build). */
static void every_allocation_failure_is_handled(void **state)
{
    (void)state;
    struct exec e;
    bool made;
    /* The life without failures: how it should end. */
    assert_int_equal(life(&e, &made), 0);
    assert_true(made);
    assert_int_equal(e.fails, 1); /* the lost connection */
    int swept = 0, no_batcher = 0, refused = 0, nomem = 0;
    for (long k = 1; k < 1000; k++) {
        mem_fail_after(k);
        int r = life(&e, &made);
        /* Still armed: the life made fewer than k allocations; the first
         * allocation after it is the k-th and fails. */
        void *probe = mem_alloc(1);
        mem_fail_after(0);
        if (!probe) break;
        mem_free(probe);
        swept++;
        if (!made) {
            no_batcher++;
            continue;
        }
        if (r > 0) refused++;
        if (e.nomem_fails) nomem++;
        if (r == 0 && !e.nomem_fails) fail_msg("allocation %ld failed unseen", k);
    }
    /* batcher_new's two, the items', the parameter's. */
    assert_int_equal(no_batcher, 2);
    assert_int_equal(refused, 12);
    assert_true(nomem >= 1);
    assert_int_equal(swept, no_batcher + refused + nomem);
}

/* Writes n bytes of 'x' as one JSON string, whatever the estimate said. */
static int enc_long(struct pp_w *w, const struct batch *bt)
{
    static char text[5000];
    memset(text, 'x', sizeof text);
    pp_w_str(w, text, bt->n);
    return pp_w_finish(w);
}

/* An estimate that falls short costs a regrowth, never the batch (a short
 * estimate once failed every send of a batch of tiny ones `unavailable`). */
static void json_grows_past_a_short_estimate(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t cap = 0;
    struct batch bt = {.n = 4000};
    assert_int_equal(batcher_json(&buf, &cap, 16, enc_long, &bt), 0);
    assert_int_equal(strlen(buf), 4002); /* the quotes */
    assert_true(cap > 4002);
    mem_fail_after(1); /* the next growth fails: the error, not a half JSON */
    bt.n = 5000;
    size_t was = cap;
    int rc = batcher_json(&buf, &cap, cap, enc_long, &bt);
    mem_fail_after(0);
    assert_int_equal(rc, -ENOMEM);
    assert_int_equal(cap, was);
    mem_free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_quiet_batcher_sends_on_the_next_turn),
        cmocka_unit_test(a_short_run_does_not_shorten_the_linger),
        cmocka_unit_test(leftovers_wait_a_linger_after_the_full_batch),
        cmocka_unit_test(linger_survives_a_long_turn),
        cmocka_unit_test(full_batch_goes_at_once_and_is_capped),
        cmocka_unit_test(one_batch_in_flight),
        cmocka_unit_test(admit_cuts_the_batch),
        cmocka_unit_test(retries_on_each_retryable_state),
        cmocka_unit_test(no_retry_on_other_states),
        cmocka_unit_test(fail_all_when_lost_or_not_run),
        cmocka_unit_test(full_queue_refuses),
        cmocka_unit_test(backpressure_thresholds),
        cmocka_unit_test(paused_senders_skip_the_linger),
        cmocka_unit_test(every_allocation_failure_is_handled),
        cmocka_unit_test(json_grows_past_a_short_estimate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
