#include "batcher.h"

#include "db.h"
#include "mem.h"

#include <errno.h>
#include <string.h>

struct batcher {
    const struct batcher_ops *ops;
    void *ud;
    struct batcher_cfg cfg;
    struct batch_item *wait_head, *wait_tail; /* not yet in a batch */
    uint32_t nwait;
    struct batch bt;   /* in flight; its items array has batch_max slots */
    uv_timer_t linger; /* the rest of the linger since the last batch left */
    bool linger_on;
    bool paused; /* ops->pause stopped a sender: resume once the list drains */
};

static void flush(struct batcher *b);
static void linger(struct batcher *b);
static void linger_or_flush(struct batcher *b);

/* The timer counts from the loop's time, taken when the turn began: after
 * a long turn it fires early, and linger_or_flush waits out the rest. */
static void on_linger(uv_timer_t *t)
{
    struct batcher *b = t->data;
    b->linger_on = false;
    linger_or_flush(b);
}

struct batcher *batcher_new(uv_loop_t *loop, const struct batcher_cfg *cfg,
                            const struct batcher_ops *ops, void *ud)
{
    struct batcher *b = mem_calloc(1, sizeof *b);
    if (!b) return NULL;
    b->ops = ops;
    b->ud = ud;
    b->cfg = *cfg;
    if (!b->cfg.batch_max) b->cfg.batch_max = 1;
    b->bt.items = mem_calloc(b->cfg.batch_max, sizeof *b->bt.items);
    if (!b->bt.items) {
        mem_free(b);
        return NULL;
    }
    uv_timer_init(loop, &b->linger);
    b->linger.data = b;
    return b;
}

static void on_closed(uv_handle_t *h)
{
    struct batcher *b = h->data;
    mem_free(b->bt.items);
    mem_free(b);
}

void batcher_free(struct batcher *b)
{
    if (!b) return;
    while (b->wait_head) {
        struct batch_item *it = b->wait_head;
        b->wait_head = it->next;
        b->ops->release(b->ud, it);
    }
    b->wait_tail = NULL;
    b->nwait = 0;
    for (uint32_t i = 0; i < b->bt.n; i++)
        b->ops->release(b->ud, b->bt.items[i]);
    b->bt.n = 0;
    uv_timer_stop(&b->linger);
    uv_close((uv_handle_t *)&b->linger, on_closed);
}

bool batcher_full(const struct batcher *b)
{
    return b->nwait >= b->cfg.queue_max;
}

bool batcher_congested(const struct batcher *b)
{
    return b->nwait >= b->cfg.queue_max / 2;
}

bool batcher_idle(const struct batcher *b)
{
    return !b->nwait && !b->bt.n;
}

uint32_t batcher_waiting(const struct batcher *b)
{
    return b->nwait;
}

int batcher_add(struct batcher *b, struct batch_item *it)
{
    if (batcher_full(b)) return -EBUSY;
    it->next = NULL;
    if (b->wait_tail)
        b->wait_tail->next = it;
    else
        b->wait_head = it;
    b->wait_tail = it;
    b->nwait++;
    /* Stop reading from this sender instead of growing the list. */
    if (b->ops->pause && batcher_congested(b) && b->ops->pause(b->ud, it)) b->paused = true;
    if (b->bt.n) return 0; /* gathers while the batch in flight commits */
    if (b->nwait >= b->cfg.batch_max || b->paused)
        flush(b);
    else
        linger(b);
    return 0;
}

/* Nanoseconds until the next batch may leave: a linger after the last one
 * left (bt.t0 stays when its run ends; 0 before the first). Batches are
 * spaced, items do not each wait: after a quiet spell a send leaves on the
 * next loop turn, and under load one batch leaves per linger. */
static uint64_t linger_left(const struct batcher *b)
{
    if (!b->bt.t0) return 0;
    uint64_t since = uv_hrtime() - b->bt.t0;
    uint64_t linger = (uint64_t)b->cfg.linger_us * 1000;
    return since < linger ? linger - since : 0;
}

/* Sets the timer, if it is not set, for the end of the linger (0 left: the
 * next loop turn, so that what one turn's reads queue still goes as one
 * batch). */
static void linger(struct batcher *b)
{
    if (b->linger_on) return;
    b->linger_on = true;
    uv_timer_start(&b->linger, on_linger, (linger_left(b) + 999999) / 1000000, 0);
}

/* The timer fired, or a run ended: what waits goes now if it makes a full
 * batch, the linger since the last batch left is over or paused senders
 * wait for it, else when the linger will be over. (Items once went as a
 * run ended; on a fast database that made a statement of every two or
 * three sends under load, with its fixed cost each time: BENCHMARKS.md,
 * "Batches under load".) */
static void linger_or_flush(struct batcher *b)
{
    if (!b->nwait) return;
    if (b->nwait >= b->cfg.batch_max || b->paused || !linger_left(b))
        flush(b);
    else
        linger(b);
}

/* A run; one that cannot start ends here (the callback never comes). */
static void submit(struct batcher *b)
{
    int rc = b->ops->run(b->ud, &b->bt);
    if (rc) batcher_done(b, rc, NULL, NULL);
}

static void flush(struct batcher *b)
{
    if (b->bt.n || !b->nwait) return;
    if (b->linger_on) {
        uv_timer_stop(&b->linger);
        b->linger_on = false;
    }
    struct batch *bt = &b->bt;
    while (b->wait_head && bt->n < b->cfg.batch_max) {
        struct batch_item *it = b->wait_head;
        if (bt->n && b->ops->admit && b->ops->admit(b->ud, bt, it) == BATCH_CUT)
            break; /* it leads the next batch */
        b->wait_head = it->next;
        if (!b->wait_head) b->wait_tail = NULL;
        b->nwait--;
        it->next = NULL;
        bt->items[bt->n++] = it;
    }
    bt->tries = 1;
    bt->t0 = uv_hrtime();
    int rc = b->ops->build(b->ud, bt);
    if (rc) {
        batcher_done(b, rc, NULL, NULL);
        return;
    }
    submit(b);
}

void batcher_flush(struct batcher *b)
{
    flush(b);
}

static void on_query(void *ud, PGresult *res, int err)
{
    bool failed = !err && PQresultStatus(res) != PGRES_TUPLES_OK;
    batcher_done(ud, err, failed ? db_sqlstate(res) : NULL, res);
}

int batcher_json(char **buf, size_t *cap, size_t need,
                 int (*enc)(struct pp_w *w, const struct batch *bt), const struct batch *bt)
{
    /* bounded: at most 2^19 times the estimate */
    for (int tries = 0; tries < 20; tries++, need = *cap * 2) {
        if (need > *cap) {
            char *n = mem_realloc(*buf, need);
            if (!n) return -ENOMEM;
            *buf = n;
            *cap = need;
        }
        struct pp_w w;
        pp_w_init(&w, *buf, *cap);
        int n = enc(&w, bt);
        if (n >= 0 && (size_t)n < *cap) {
            (*buf)[n] = '\0';
            return 0;
        }
    }
    return -ENOMEM;
}

int batcher_query(struct batcher *b, struct db *db, int stmt, const char *param)
{
    const char *v[1] = {param};
    return db_query(db, 0, stmt, 1, v, NULL, NULL, on_query, b);
}

static bool retryable(const char *st)
{
    return !strcmp(st, "40P01") || !strcmp(st, "40001") || !strcmp(st, "23505");
}

void batcher_done(struct batcher *b, int err, const char *sqlstate, void *res)
{
    struct batch *bt = &b->bt;
    if (!bt->n) return; /* nothing in flight: not ours */
    if (!err && sqlstate) {
        if (retryable(sqlstate) && bt->tries < BATCHER_TRIES) {
            bt->tries++;
            submit(b);
            return;
        }
        b->ops->fail(b->ud, bt, -EIO, sqlstate, res);
    } else if (err) {
        b->ops->fail(b->ud, bt, err, NULL, NULL);
    } else {
        b->ops->dispatch(b->ud, bt, res);
    }
    for (uint32_t i = 0; i < bt->n; i++)
        b->ops->release(b->ud, bt->items[i]);
    bt->n = 0;
    if (b->paused && b->nwait <= b->cfg.queue_max / 4) {
        b->paused = false;
        b->ops->resume(b->ud);
    }
    linger_or_flush(b);
}
