#include "uvev.h"

#include "mem.h"

/* hiredis event hooks on a uv_poll. Our own rather than hiredis 0.14's
 * adapters/libuv.h: that one drops poll errors (status < 0), and libuv reports
 * a refused connect exactly that way, so a reconnect to a Redis that is still
 * down would hang forever. Here an error is handed to hiredis as readiness,
 * and hiredis finds the socket error itself and fails the context. */
struct uvev {
    redisAsyncContext *ac; /* NULL once hiredis cleaned up */
    uv_poll_t poll;        /* on the context's fd */
    int events;            /* UV_READABLE | UV_WRITABLE wanted */
};

static void uvev_cb(uv_poll_t *h, int status, int events)
{
    struct uvev *e = h->data;
    if (status < 0) events = e->events ? e->events : UV_WRITABLE;
    if (e->ac && (events & UV_READABLE)) redisAsyncHandleRead(e->ac);
    if (e->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(e->ac);
}

static void uvev_set(struct uvev *e, int events)
{
    e->events = events;
    if (events)
        uv_poll_start(&e->poll, events, uvev_cb);
    else
        uv_poll_stop(&e->poll);
}

static void uvev_add_read(void *p)
{
    uvev_set(p, ((struct uvev *)p)->events | UV_READABLE);
}
static void uvev_del_read(void *p)
{
    uvev_set(p, ((struct uvev *)p)->events & ~UV_READABLE);
}
static void uvev_add_write(void *p)
{
    uvev_set(p, ((struct uvev *)p)->events | UV_WRITABLE);
}
static void uvev_del_write(void *p)
{
    uvev_set(p, ((struct uvev *)p)->events & ~UV_WRITABLE);
}

static void uvev_closed(uv_handle_t *h)
{
    mem_free(h->data);
}

static void uvev_cleanup(void *p)
{
    struct uvev *e = p;
    e->ac = NULL;
    uv_close((uv_handle_t *)&e->poll, uvev_closed);
}

int uvev_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    struct uvev *e = mem_calloc(1, sizeof *e);
    if (!e) return -1;
    if (uv_poll_init(loop, &e->poll, ac->c.fd)) {
        mem_free(e);
        return -1;
    }
    e->poll.data = e;
    e->ac = ac;
    ac->ev.data = e;
    ac->ev.addRead = uvev_add_read;
    ac->ev.delRead = uvev_del_read;
    ac->ev.addWrite = uvev_add_write;
    ac->ev.delWrite = uvev_del_write;
    ac->ev.cleanup = uvev_cleanup;
    return 0;
}
