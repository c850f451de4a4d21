#include "conn.h"

#include "app.h"
#include "log.h"
#include "mem.h"
#include "perm.h"
#include "ws.h"

#include <libwebsockets.h>
#include <string.h>

/* 424 bytes and malloc's 8 are a 432-byte chunk (conn.h). */
_Static_assert(sizeof(struct conn) <= 424, "struct conn grew past a 432-byte chunk");

/* A close frame's reason: its payload is at most 125 bytes, 2 of them the code. */
#define CLOSE_REASON_MAX 123
/* An empty out-queue's ring is given back after this long without a write. */
#define OUTQ_IDLE_MS 10000

/* lws 4.1's value of its private LWS_WRITE_CLOSE (see conn_on_writeable). */
#define LWS_WRITE_CLOSE_PRIVATE 4

/* A WRITEABLE packs queued frames into one JSON array frame up to this many
 * messages, so a busy socket costs far less than one syscall per message. */
#define PACK_MAX_FRAMES 512

static struct outq_limits limits(const struct conn *c)
{
    struct outq_limits l = {c->app->cfg.outq_frames, c->app->cfg.outq_bytes};
    return l;
}

void creq_link(struct conn *c, struct creq *r)
{
    r->c = c;
    r->next = c->reqs.next;
    r->prev = &c->reqs;
    c->reqs.next->prev = r;
    c->reqs.next = r;
    c->nreqs++;
}

void creq_unlink(struct creq *r)
{
    if (!r->c) return;
    r->c->nreqs--;
    r->prev->next = r->next;
    r->next->prev = r->prev;
    r->c = NULL;
    r->prev = r->next = NULL;
}

void conn_init(struct conn *c, struct app *app, struct lws *wsi)
{
    memset(c, 0, sizeof *c);
    c->app = app;
    c->wsi = wsi;
    c->ws = true;
    c->prole = ROLE_NONE; /* no rights until auth */
    c->id = ++app->next_conn_id;
    c->opened_ms = app_now_ms(app);
    c->reqs.next = c->reqs.prev = &c->reqs;
    lws_get_peer_simple(wsi, c->ip, sizeof c->ip);
    c->next = app->conns;
    if (app->conns) app->conns->prev = c;
    app->conns = c;
    app->nconns++;
    app->stats.conns_opened++;
}

/* ---- the end-of-turn writer -------------------------------------------------
 * A write through WRITEABLE costs a send(2) and two changes of the socket's
 * poll interest whatever it carries: lws_callback_on_writable turns POLLOUT
 * on and lws turns it off again before the callback (lws 4.1.6
 * core-net/service.c, lws_handle_POLLOUT_event), and its libuv glue does
 * each with uv_poll_start or uv_poll_stop, which in libuv 1.44 stop the
 * watcher first: an epoll_ctl DEL and an ADD every time.
 *
 * So a connection whose queue fills goes on the app's dirty list instead,
 * and a uv_check handle, which runs right after the turn's I/O callbacks,
 * packs and writes each one's queue with lws_write while lws holds nothing
 * back (lws_partial_buffered is 0): everything this turn's reads produced
 * still leaves in one write, and a socket that takes it never touches its
 * poll interest. What the kernel does not take lws keeps and arms POLLOUT
 * for itself (output.c, lws_issue_raw); conn_on_writeable writes the rest
 * then. lws_write outside a callback is fine for a server WebSocket in
 * lws 4.1.6: it checks nothing about its caller, and a wsi lws is closing
 * is never reached (a close we start unbinds the protocol and destroys the
 * conn before lws waits to send its close frame, close.c; a close the peer
 * starts sets closing, conn_on_peer_close). Other lws versions are not
 * verified: they keep the WRITEABLE path. */
#if LWS_LIBRARY_VERSION_NUMBER == 4001006
#define DIRECT_WRITE_VERIFIED 1
#else
#define DIRECT_WRITE_VERIFIED 0
#endif

static bool direct_ok(const struct conn *c)
{
    return DIRECT_WRITE_VERIFIED && c->app->cfg.direct_write && c->app->wready && c->ws &&
           !c->closing;
}

static void dirty_unlink(struct conn *c)
{
    struct app *a = c->app;
    if (!c->dirty) return;
    if (c->dirty_prev)
        c->dirty_prev->dirty_next = c->dirty_next;
    else
        a->dirty_head = c->dirty_next;
    if (c->dirty_next)
        c->dirty_next->dirty_prev = c->dirty_prev;
    else
        a->dirty_tail = c->dirty_prev;
    c->dirty_prev = c->dirty_next = NULL;
    c->dirty = false;
    a->ndirty--;
}

/* Its only work is to be active (libuv refuses an idle handle without a
 * callback). */
static void on_idle(uv_idle_t *h)
{
    (void)h;
}

static void dirty_push(struct conn *c)
{
    struct app *a = c->app;
    if (c->dirty) return;
    /* A turn that did not start with I/O (a timer's) must not then block in
     * the poll with this list waiting: an active idle handle keeps the
     * poll's timeout at 0 until the check has run. */
    if (!a->dirty_head) uv_idle_start(&a->widle, on_idle);
    c->dirty_next = NULL;
    c->dirty_prev = a->dirty_tail;
    if (a->dirty_tail)
        a->dirty_tail->dirty_next = c;
    else
        a->dirty_head = c;
    a->dirty_tail = c;
    c->dirty = true;
    a->ndirty++;
}

/* Output is waiting: write it at the end of this turn, or when the socket
 * says it can take it. */
static void kick(struct conn *c)
{
    if (direct_ok(c))
        dirty_push(c);
    else
        lws_callback_on_writable(c->wsi);
}

static int write_packed(struct conn *c);
static void after_write(struct conn *c);

static void write_direct(struct conn *c)
{
    struct app *a = c->app;
    bool wrote = false;
    while (c->q.count && direct_ok(c) && !lws_partial_buffered(c->wsi)) {
        if (write_packed(c) < 0) {
            /* The socket failed (lws marked it unusable): no close frame
             * can go, so lws drops the connection on its next service. */
            c->closing = true;
            outq_clear(&c->q);
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
            return;
        }
        a->stats.writes_direct++;
        wrote = true;
    }
    /* Anything left is behind what lws buffered, and lws asked for POLLOUT
     * when it buffered it: conn_on_writeable goes on from there. */
    if (wrote) after_write(c);
}

static void on_check(uv_check_t *h)
{
    struct app *a = h->data;
    /* Only the connections dirty now: one whose low-water hook queues more
     * at once waits for the next turn rather than looping here. */
    for (uint32_t n = a->ndirty; n && a->dirty_head; n--) {
        struct conn *c = a->dirty_head;
        dirty_unlink(c);
        write_direct(c);
    }
    if (!a->dirty_head) uv_idle_stop(&a->widle);
}

void conn_writes_start(struct app *a)
{
    uv_check_init(a->loop, &a->wcheck);
    uv_idle_init(a->loop, &a->widle);
    a->wcheck.data = a;
    a->widle.data = a;
    uv_check_start(&a->wcheck, on_check);
    a->wready = true;
}

void conn_writes_stop(struct app *a)
{
    if (!a->wready) return;
    a->wready = false;
    /* What waited for the check waits for WRITEABLE instead. */
    while (a->dirty_head) {
        struct conn *c = a->dirty_head;
        dirty_unlink(c);
        lws_callback_on_writable(c->wsi);
    }
    uv_check_stop(&a->wcheck);
    uv_idle_stop(&a->widle);
    uv_close((uv_handle_t *)&a->wcheck, NULL);
    uv_close((uv_handle_t *)&a->widle, NULL);
}

/* ---- write coalescing ------------------------------------------------------
 * Every write costs at least a send(2), whatever it carries.
 * A connection that wrote less than write_delay_ms ago is therefore not
 * kicked at once when its queue fills again: it waits in a list that one
 * timer kicks, so what arrives meanwhile leaves in the same packed write
 * (Nagle's idea in user space; Centrifugo's write_delay). A quiet
 * connection's first frame is never held, and nothing waits longer than
 * write_delay_ms. */

static void flush_unlink(struct conn *c)
{
    if (!c->flush_waiting) return;
    if (c->flush_prev)
        c->flush_prev->flush_next = c->flush_next;
    else
        c->app->flush_head = c->flush_next;
    if (c->flush_next) c->flush_next->flush_prev = c->flush_prev;
    c->flush_prev = c->flush_next = NULL;
    c->flush_waiting = false;
}

static void on_flush(uv_timer_t *t)
{
    struct app *a = t->data;
    while (a->flush_head) {
        struct conn *c = a->flush_head;
        flush_unlink(c);
        kick(c);
    }
}

/* Kicks c now, or holds it back when it wrote recently (see above). */
static void arm(struct conn *c)
{
    struct app *a = c->app;
    uint64_t d = a->cfg.write_delay_ms, now = app_now_ms(a);
    if (c->flush_waiting) return; /* the timer arms it */
    if (!d || c->closing || now - c->wrote_at >= d) {
        kick(c);
        return;
    }
    if (!a->flush_head) /* the first one held sets the time for all */
        uv_timer_start(&a->flush, on_flush, d - (now - c->wrote_at), 0);
    c->flush_prev = NULL;
    c->flush_next = a->flush_head;
    if (a->flush_head) a->flush_head->flush_prev = c;
    a->flush_head = c;
    c->flush_waiting = true;
    a->stats.writes_delayed++;
}

void conn_destroy(struct conn *c)
{
    struct app *a = c->app;
    if (!c->ws) return;
    flush_unlink(c);
    dirty_unlink(c);
    /* Unhook pending work first so no completion touches this memory. */
    while (c->reqs.next != &c->reqs)
        creq_unlink(c->reqs.next);
    a->gw_hooks->on_conn_gone(a->gw_hooks->ud, c); /* leaves its rooms */
    mem_free(c->subs);
    outq_clear(&c->q);
    mem_free(c->rx);
    if (c->prev)
        c->prev->next = c->next;
    else
        a->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    a->nconns--;
    a->stats.conns_closed++;
    log_debug("connection closed", "conn=%llu", (unsigned long long)c->id);
    c->ws = false;
}

void conn_close(struct conn *c, uint16_t code, const char *reason)
{
    if (c->closing) return;
    c->closing = true;
    c->close_code = code;
    c->close_reason = reason;
    outq_clear(&c->q);
    dirty_unlink(c);
    /* The close frame always goes from WRITEABLE (conn_on_writeable). */
    lws_callback_on_writable(c->wsi);
    /* A peer that does not read never makes us writeable again: lws kills
     * the connection after this timeout in that case. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, 2);
}

void conn_close_when_drained(struct conn *c, uint16_t code, const char *reason)
{
    if (c->closing) return;
    if (!c->q.count) {
        conn_close(c, code, reason);
        return;
    }
    c->close_when_drained = true;
    c->close_code = code;
    c->close_reason = reason;
}

int conn_send(struct conn *c, struct frame *f)
{
    if (c->closing) return -1;
    struct outq_limits l = limits(c);
    bool was_empty = c->q.count == 0;
    if (outq_push(&c->q, f, &l)) {
        c->app->stats.slow_consumers++;
        log_info("slow consumer closed", "conn=%llu queued_bytes=%zu queued_frames=%u",
                 (unsigned long long)c->id, c->q.bytes, c->q.count);
        conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "slow consumer");
        return -1;
    }
    if (was_empty) {
        c->moved_at = app_now_ms(c->app);
        arm(c);
    }
    return 0;
}

bool conn_low_water(const struct conn *c)
{
    return c->q.bytes <= c->app->cfg.outq_bytes / 4 && c->q.count <= c->app->cfg.outq_frames / 4;
}

void conn_check_stall(struct conn *c, uint64_t now, bool frozen)
{
    if (c->closing) return;
    if (!c->q.count) {
        /* Idle a while: the smallest ring goes too (48 bytes on each of
         * 100,000 idle connections), a busy one keeps it between writes. */
        if (c->q.ring && now - c->moved_at >= OUTQ_IDLE_MS) outq_release(&c->q);
        return;
    }
    if (frozen) {
        c->moved_at = now;
        return;
    }
    if (now - c->moved_at < c->app->cfg.outq_stall_ms) return;
    /* Paced recovery never lets a reading member's queue overflow, so a
     * peer that reads nothing would otherwise hold its queue for ever. */
    c->app->stats.slow_consumers++;
    log_info("slow consumer closed", "conn=%llu queued_bytes=%zu stalled_ms=%llu",
             (unsigned long long)c->id, c->q.bytes, (unsigned long long)(now - c->moved_at));
    conn_close(c, LWS_CLOSE_STATUS_POLICY_VIOLATION, "slow consumer");
}

int conn_send_ephemeral(struct conn *c, struct frame *f)
{
    /* Typing and presence are the first thing shed: a connection already
     * holding a quarter of its limit gets messages, not chatter. */
    if (c->closing || c->q.bytes > c->app->cfg.outq_bytes / 4 ||
        c->q.count > c->app->cfg.outq_frames / 4) {
        c->app->stats.ephemeral_dropped++;
        return -1;
    }
    return conn_send(c, f);
}

int conn_send_copy(struct conn *c, const char *p, size_t len)
{
    struct frame *f = frame_new(p, len);
    if (!f) {
        conn_close(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        return -1;
    }
    int rc = conn_send(c, f);
    frame_unref(f);
    return rc;
}

void conn_reply_ok(struct conn *c, int64_t id, const char *result, size_t len)
{
    struct app *a = c->app;
    int n = pp_encode_ok(a->scratch + FRAME_PRE, a->scratch_cap, id, result, len);
    if (n < 0) {
        conn_reply_err(c, id, PP_E_INTERNAL, "reply too large");
        return;
    }
    conn_send_copy(c, a->scratch + FRAME_PRE, (size_t)n);
}

void conn_reply_err(struct conn *c, int64_t id, enum pp_err_code code, const char *msg)
{
    char buf[512];
    int n = pp_encode_error(buf, sizeof buf, id, code, msg);
    if (n > 0) conn_send_copy(c, buf, (size_t)n);
}

bool conn_rx_pause(struct conn *c)
{
    if (c->rx_paused) return false;
    c->rx_paused = true;
    lws_rx_flow_control(c->wsi, 0);
    return true;
}

void conn_rx_resume_all(struct app *a)
{
    for (struct conn *c = a->conns; c; c = c->next)
        if (c->rx_paused) {
            c->rx_paused = false;
            lws_rx_flow_control(c->wsi, 1);
        }
}

/* Packs the queue's oldest frames into one frame and writes it: 0, or -1
 * when the socket failed. */
static int write_packed(struct conn *c)
{
    struct app *a = c->app;
    struct frame *first = outq_peek(&c->q, 0);
    unsigned char *out;
    size_t len;
    uint32_t used = 1;
    if (c->q.count == 1 || (size_t)first->len + 2 > a->scratch_cap) {
        /* Common case on a quiet socket: write the shared frame itself. */
        out = frame_data(first);
        len = first->len;
    } else {
        /* Pack several queued messages into one array frame. The copy is a
         * memcpy per message, far cheaper than a syscall per message. */
        unsigned char *p = (unsigned char *)a->scratch + FRAME_PRE;
        size_t n = 0;
        p[n++] = '[';
        used = 0;
        while (used < c->q.count && used < PACK_MAX_FRAMES) {
            struct frame *f = outq_peek(&c->q, used);
            /* the separator (or '[') and the closing ']' */
            if (n + f->len + (used ? 2 : 1) > a->scratch_cap) break;
            if (used) p[n++] = ',';
            memcpy(p + n, frame_data(f), f->len);
            n += f->len;
            used++;
        }
        p[n++] = ']';
        out = p;
        len = n;
    }
    /* lws copies whatever the kernel does not take, so the shared frame and
     * the scratch buffer are free for reuse once lws_write returns. */
    int w = lws_write(c->wsi, out, len, LWS_WRITE_TEXT);
    a->stats.writes++;
    c->wrote_at = c->moved_at = app_now_ms(a);
    for (uint32_t i = 0; i < used; i++)
        outq_pop(&c->q);
    return w < (int)len ? -1 : 0;
}

static void after_write(struct conn *c)
{
    struct app *a = c->app;
    if (!c->q.count && c->close_when_drained) /* shutdown: the last reply is out, now the close */
        conn_close(c, c->close_code, c->close_reason);
    /* Paced recovery refills below the low-water mark, before the queue
     * runs dry, so a reading client is never idle between pages for long. */
    if (!c->close_when_drained && conn_low_water(c))
        a->gw_hooks->on_conn_drained(a->gw_hooks->ud, c);
}

void conn_on_peer_close(struct conn *c)
{
    if (!c->ws || c->closing) return;
    c->closing = true;
    outq_clear(&c->q);
    dirty_unlink(c);
    flush_unlink(c);
    /* lws echoes the close on the next POLLOUT with no timeout of its own;
     * closing turns off our stall and auth checks, so a peer that stops
     * reading after its close would otherwise hold the slot for ever. (Not
     * PENDING_TIMEOUT_CLOSE_SEND: with that set, lws takes the close as sent
     * and drops the 1002 for a bad close payload.) */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, 5);
}

int conn_on_writeable(struct conn *c)
{
    if (c->closing) {
        log_debug("closing", "conn=%llu code=%u", (unsigned long long)c->id, c->close_code);
        /* lws 4.1 drops a close frame requested with lws_close_reason() from
         * this callback (warmcat/libwebsockets#1159), so the frame is written
         * here: its private LWS_WRITE_CLOSE opcode (4) is what lws itself
         * uses to send one. Then the connection is closed. */
        unsigned char buf[FRAME_PRE + 2 + CLOSE_REASON_MAX];
        size_t rl = c->close_reason ? strnlen(c->close_reason, CLOSE_REASON_MAX) : 0;
        buf[FRAME_PRE] = (unsigned char)(c->close_code >> 8);
        buf[FRAME_PRE + 1] = (unsigned char)c->close_code;
        if (rl) memcpy(buf + FRAME_PRE + 2, c->close_reason, rl);
        lws_write(c->wsi, buf + FRAME_PRE, 2 + rl,
                  (enum lws_write_protocol)LWS_WRITE_CLOSE_PRIVATE);
        return -1;
    }
    if (!c->q.count) return 0; /* a spare WRITEABLE is normal */
    if (write_packed(c) < 0) return -1;
    if (c->q.count) lws_callback_on_writable(c->wsi);
    after_write(c);
    return 0;
}
