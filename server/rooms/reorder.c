#include "reorder.h"

#include "mem.h"

#include <errno.h>
#include <string.h>

void reorder_init(struct reorder *w)
{
    memset(w, 0, sizeof *w);
}

/* The gap is gone once everything heard of was handed on. */
static void settle(struct reorder *w)
{
    if (w->seen <= w->delivered) {
        w->gap_since = 0;
        w->fetch_now = false;
    }
}

/* A gap appeared at now (the clock of an older one keeps running). now is
 * never 0 on a real clock; 1 keeps "no gap" distinct if it were. */
static void note_gap(struct reorder *w, int64_t seq, uint64_t now)
{
    if (seq > w->seen) w->seen = seq;
    if (!w->gap_since) w->gap_since = now ? now : 1;
}

void reorder_start(struct reorder *w, int64_t last)
{
    if (!w->ready || last > w->delivered) w->delivered = last;
    w->ready = true;
    settle(w);
}

enum reorder_verdict reorder_offer(struct reorder *w, int64_t seq, uint64_t now_ms)
{
    if (w->ready && seq <= w->delivered) return REORDER_DROP;
    if (w->ready && seq == w->delivered + 1) return REORDER_DELIVER;
    uint32_t i = 0;
    while (i < w->n && w->win[i].seq < seq)
        i++;
    if (i < w->n && w->win[i].seq == seq) return REORDER_DROP; /* already held */
    note_gap(w, seq, now_ms);
    if (w->n == REORDER_WINDOW) {
        w->fetch_now = true;
        return REORDER_FULL;
    }
    return REORDER_HOLD;
}

void reorder_missed(struct reorder *w, int64_t seq, uint64_t now_ms)
{
    if (seq > w->delivered) note_gap(w, seq, now_ms);
}

#define REORDER_FIRST 4 /* entries at the first hold: crossings are mostly one or two deep */

int reorder_hold(struct reorder *w, int64_t seq, void *item)
{
    uint32_t i = 0;
    while (i < w->n && w->win[i].seq < seq)
        i++;
    if (w->n == REORDER_WINDOW || (i < w->n && w->win[i].seq == seq)) return -EINVAL; /* misuse */
    if (w->n == w->cap) {
        uint32_t cap = w->cap ? w->cap * 2 : REORDER_FIRST;
        if (cap > REORDER_WINDOW) cap = REORDER_WINDOW;
        struct reorder_held *nw = mem_realloc(w->win, cap * sizeof *nw);
        if (!nw) {
            /* As a full window: the gap is known (reorder_offer), fetch it now. */
            w->fetch_now = true;
            return -ENOMEM;
        }
        w->win = nw;
        w->cap = cap;
    }
    memmove(w->win + i + 1, w->win + i, (w->n - i) * sizeof w->win[0]);
    w->win[i].seq = seq;
    w->win[i].item = item;
    w->n++;
    return 0;
}

/* The window emptied: its storage goes until something is held again. */
static void release_if_empty(struct reorder *w)
{
    if (w->n) return;
    mem_free(w->win);
    w->win = NULL;
    w->cap = 0;
}

int reorder_advance(struct reorder *w, int64_t seq)
{
    if (!w->ready || seq != w->delivered + 1) return -EINVAL;
    w->delivered = seq;
    if (seq > w->seen) w->seen = seq;
    settle(w);
    return 0;
}

static void shift(struct reorder *w)
{
    memmove(w->win, w->win + 1, (w->n - 1) * sizeof w->win[0]);
    w->n--;
    release_if_empty(w);
}

int reorder_pop(struct reorder *w, int64_t *seq, void **item)
{
    if (!w->ready || !w->n || w->win[0].seq > w->delivered + 1) return 0;
    *seq = w->win[0].seq;
    *item = w->win[0].item;
    shift(w);
    if (*seq <= w->delivered) return 2;
    w->delivered = *seq;
    settle(w);
    return 1;
}

int reorder_take(struct reorder *w, void **item)
{
    if (!w->n) return 0;
    *item = w->win[w->n - 1].item;
    w->n--;
    release_if_empty(w);
    return 1;
}

bool reorder_gap(const struct reorder *w)
{
    return w->gap_since != 0;
}

bool reorder_due(const struct reorder *w, uint64_t now_ms, uint32_t deadline_ms,
                 struct reorder_range *r)
{
    if (!w->ready || !w->gap_since) return false;
    if (!w->fetch_now && now_ms - w->gap_since < deadline_ms) return false;
    if (!w->fetch_now && w->n && w->win[0].seq > w->delivered + 1)
        r->count = w->win[0].seq - w->delivered - 1; /* just the hole */
    else
        r->count = w->seen - w->delivered; /* everything up to the highest seen */
    return true;
}

void reorder_fetching(struct reorder *w, uint64_t now_ms)
{
    w->fetch_now = false;
    if (w->gap_since) w->gap_since = now_ms ? now_ms : 1;
}
