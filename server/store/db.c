#include "db.h"

#include "log.h"
#include "mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define DB_MAX_INFLIGHT 512   /* queries sent on one connection, awaiting results */
#define DB_MAX_QUEUED 20000   /* queries waiting on one connection, at most */
#define DB_TICK_MS 50         /* deadline and reconnect checks */
#define DB_BACKOFF_MIN_MS 100 /* first reconnect delay */
#define DB_BACKOFF_MAX_MS 2000
/* The client-side backstop, in query deadlines: PostgreSQL itself cancels a
 * statement at one deadline (statement_timeout), so only a server or network
 * that answers nothing at all for this long gets the connection reset. */
#define DB_BACKSTOP 2

struct job {
    struct job *next;  /* FIFO link (pending or in flight) */
    db_cb cb;          /* NULL for an internal prepare */
    void *ud;          /* callback argument */
    int stmt;          /* statement index */
    bool prepare;      /* a PQsendPrepare of stmt, not a query */
    bool setup;        /* the connection's SET statement_timeout, not a query */
    bool abandoned;    /* answered -ETIMEDOUT already: its result is dropped */
    bool got_null;     /* the NULL after this query's result was seen */
    int nparams;       /* number of parameters */
    uint64_t deadline; /* uv_now() ms after which the caller gets -ETIMEDOUT */
    PGresult *res;     /* the query's result, once it arrived */
    char **values;     /* parameter copies (inside this allocation) */
    int *lengths;      /* parameter lengths (inside this allocation) */
    int *formats;      /* parameter formats (inside this allocation) */
};

enum pc_state { PC_DOWN, PC_CONNECTING, PC_PREPARING, PC_READY };

struct pgconn {
    struct db *db;                     /* owner */
    int idx;                           /* lane number, for logs */
    PGconn *pg;                        /* NULL when down */
    uv_poll_t *poll;                   /* watches PQsocket(pg); freed in its close callback */
    int poll_fd;                       /* the fd poll watches */
    int events;                        /* UV_READABLE/UV_WRITABLE currently requested */
    enum pc_state state;               /* see enum */
    struct job *pend_head, *pend_tail; /* not sent yet */
    struct job *fly_head, *fly_tail;   /* sent, results awaited, in order */
    unsigned npend, nfly;              /* list lengths */
    int prep_left;                     /* prepares outstanding while PC_PREPARING */
    uint64_t progress_at;              /* last result, or first send to an idle pipeline */
    uint64_t silent_ms;                /* loop time owed answers without one (capped per tick) */
    uint64_t connect_deadline;         /* PC_CONNECTING gives up at this time */
    uint64_t retry_at;                 /* PC_DOWN reconnects at this time */
    unsigned backoff_ms;               /* next reconnect delay */
    bool was_up;                       /* has been ready once: log recoveries */
    bool dirty;                        /* queries queued since the last pump */
};

struct db {
    uv_loop_t *loop;             /* the one loop */
    char *conninfo;              /* owned copy */
    int n;                       /* connections */
    struct pgconn *c;            /* n connections */
    int timeout_ms;              /* query deadline */
    char setup_sql[64];          /* SET statement_timeout to timeout_ms */
    const struct db_stmt *stmts; /* borrowed: static table */
    int nstmts;
    uv_timer_t tick;               /* deadlines and reconnects */
    uint64_t last_tick;            /* when on_tick last ran */
    uv_prepare_t flush;            /* sends what this loop iteration queued, in one flush */
    int open_handles;              /* tick and flush until closed: free db at 0 */
    unsigned rr;                   /* round robin over readers */
    int first_reader;              /* lane 0 is the writer's unless db_readers_only */
    const char *tag;               /* logged after lane: "" or " pool=read" */
    bool closing;                  /* db_close called */
    unsigned long long reconnects; /* connections re-established */
    unsigned long long errors;     /* connections lost, queries timed out */
};

static void pc_connect(struct pgconn *pc);
static void pc_reset(struct pgconn *pc, int err, const char *why);

static uint64_t now_ms(struct db *db)
{
    return uv_now(db->loop);
}

const char *db_sqlstate(const PGresult *res)
{
    const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    return s ? s : "";
}

static void job_free(struct job *j)
{
    if (j->res) PQclear(j->res);
    mem_free(j);
}

static void on_poll_closed(uv_handle_t *h)
{
    mem_free(h);
}

static void poll_drop(struct pgconn *pc)
{
    if (!pc->poll) return;
    uv_close((uv_handle_t *)pc->poll, on_poll_closed);
    pc->poll = NULL;
    pc->events = 0;
}

static void on_poll(uv_poll_t *h, int status, int events);

/* (Re)arms the poll on the connection's current socket. libpq may change the
 * socket while connecting, so the fd is compared every time. */
static int poll_want(struct pgconn *pc, int events)
{
    int fd = PQsocket(pc->pg);
    if (fd < 0) return -1;
    if (pc->poll && pc->poll_fd != fd) poll_drop(pc);
    if (!pc->poll) {
        pc->poll = mem_alloc(sizeof *pc->poll);
        if (!pc->poll) return -1;
        if (uv_poll_init(pc->db->loop, pc->poll, fd)) {
            mem_free(pc->poll);
            pc->poll = NULL;
            return -1;
        }
        pc->poll->data = pc;
        pc->poll_fd = fd;
        pc->events = 0;
    }
    if (events != pc->events) {
        pc->events = events;
        uv_poll_start(pc->poll, events, on_poll);
    }
    return 0;
}

static void list_push(struct job **head, struct job **tail, struct job *j)
{
    j->next = NULL;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

static struct job *list_pop(struct job **head, struct job **tail)
{
    struct job *j = *head;
    if (j) {
        *head = j->next;
        if (!*head) *tail = NULL;
    }
    return j;
}

/* Sends waiting queries into the pipeline, each followed by a sync so one
 * failing query does not abort the others, then flushes. */
static void pc_pump(struct pgconn *pc)
{
    if (pc->state != PC_READY && pc->state != PC_PREPARING) return;
    while (pc->pend_head && pc->nfly < DB_MAX_INFLIGHT) {
        struct job *j = pc->pend_head;
        int ok;
        if (j->setup) {
            ok = PQsendQueryParams(pc->pg, pc->db->setup_sql, 0, NULL, NULL, NULL, NULL, 0);
        } else if (j->prepare) {
            const struct db_stmt *s = &pc->db->stmts[j->stmt];
            ok = PQsendPrepare(pc->pg, s->name, s->sql, s->nparams, NULL);
        } else {
            ok = PQsendQueryPrepared(pc->pg, pc->db->stmts[j->stmt].name, j->nparams,
                                     (const char *const *)j->values, j->lengths, j->formats, 0);
        }
        if (!ok || !PQpipelineSync(pc->pg)) {
            pc_reset(pc, -EAGAIN, PQerrorMessage(pc->pg));
            return;
        }
        list_pop(&pc->pend_head, &pc->pend_tail);
        pc->npend--;
        if (!pc->fly_head) pc->progress_at = now_ms(pc->db);
        list_push(&pc->fly_head, &pc->fly_tail, j);
        pc->nfly++;
    }
    int fl = PQflush(pc->pg);
    if (fl < 0) {
        pc_reset(pc, -EAGAIN, PQerrorMessage(pc->pg));
        return;
    }
    poll_want(pc, UV_READABLE | (fl ? UV_WRITABLE : 0));
}

static void pc_complete(struct pgconn *pc, struct job *j)
{
    if (j->prepare || j->setup) {
        ExecStatusType st = j->res ? PQresultStatus(j->res) : PGRES_FATAL_ERROR;
        if (st != PGRES_COMMAND_OK) {
            log_error("prepare failed", "lane=%d%s stmt=%s error=\"%s\"", pc->idx, pc->db->tag,
                      j->setup ? "statement_timeout" : pc->db->stmts[j->stmt].name,
                      j->res ? PQresultErrorField(j->res, PG_DIAG_MESSAGE_PRIMARY) : "none");
            job_free(j);
            pc_reset(pc, -EAGAIN, "prepare failed");
            return;
        }
        job_free(j);
        if (--pc->prep_left == 0) {
            pc->state = PC_READY;
            pc->backoff_ms = DB_BACKOFF_MIN_MS;
            log_info(pc->was_up ? "postgres reconnected" : "postgres connected", "lane=%d%s",
                     pc->idx, pc->db->tag);
            if (pc->was_up) pc->db->reconnects++;
            pc->was_up = true;
        }
        return;
    }
    /* Cancelled by statement_timeout (57014): the caller sees the deadline
     * error it always saw, from this query alone. */
    if (!j->abandoned && j->res && !strcmp(db_sqlstate(j->res), "57014")) {
        pc->db->errors++;
        j->cb(j->ud, NULL, -ETIMEDOUT);
    } else if (!j->abandoned) {
        j->cb(j->ud, j->res, 0);
    }
    job_free(j);
}

static void pc_drain(struct pgconn *pc)
{
    while (pc->pg && pc->fly_head) {
        if (PQisBusy(pc->pg)) break;
        PGresult *r = PQgetResult(pc->pg);
        struct job *j = pc->fly_head;
        if (!r) {
            if (j->got_null) break; /* nothing more has arrived */
            j->got_null = true;
            continue;
        }
        if (PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            pc->progress_at = now_ms(pc->db);
            list_pop(&pc->fly_head, &pc->fly_tail);
            pc->nfly--;
            pc_complete(pc, j);
            continue;
        }
        j->got_null = false;
        if (!j->res)
            j->res = r;
        else
            PQclear(r);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct pgconn *pc = h->data;
    if (status < 0) {
        pc_reset(pc, -EAGAIN, uv_strerror(status));
        return;
    }
    if (pc->state == PC_CONNECTING) {
        pc_connect(pc);
        return;
    }
    if (events & UV_READABLE) {
        if (!PQconsumeInput(pc->pg)) {
            pc_reset(pc, -EAGAIN, PQerrorMessage(pc->pg));
            return;
        }
        pc_drain(pc);
        if (!pc->pg) return; /* a completion reset the connection */
    }
    if (PQstatus(pc->pg) == CONNECTION_BAD) {
        pc_reset(pc, -EAGAIN, PQerrorMessage(pc->pg));
        return;
    }
    pc_pump(pc);
}

/* Fails every query of the connection with err, drops it and schedules a
 * reconnect. Callbacks run after the lists are detached, so a callback that
 * queries again sees a down connection and gets -EAGAIN. */
static void pc_reset(struct pgconn *pc, int err, const char *why)
{
    struct job *fly = pc->fly_head, *pend = pc->pend_head;
    pc->fly_head = pc->fly_tail = pc->pend_head = pc->pend_tail = NULL;
    pc->nfly = pc->npend = 0;
    if ((pc->state != PC_DOWN || pc->pg) && !pc->db->closing) {
        char clean[200];
        size_t k = 0;
        for (const char *s = why ? why : ""; *s && k < sizeof clean - 1; s++)
            clean[k++] = (*s == '\n' || *s == '"') ? ' ' : *s;
        clean[k] = '\0';
        log_warn("postgres connection lost", "lane=%d%s reason=\"%s\"", pc->idx, pc->db->tag,
                 clean);
        pc->db->errors++;
    }
    poll_drop(pc);
    if (pc->pg) PQfinish(pc->pg);
    pc->pg = NULL;
    pc->state = PC_DOWN;
    pc->retry_at = now_ms(pc->db) + pc->backoff_ms;
    pc->backoff_ms =
        pc->backoff_ms * 2 > DB_BACKOFF_MAX_MS ? DB_BACKOFF_MAX_MS : pc->backoff_ms * 2;
    for (struct job *lists[2] = {fly, pend}, **l = lists; l < lists + 2; l++) {
        while (*l) {
            struct job *j = *l;
            *l = j->next;
            if (j->cb && !j->abandoned) j->cb(j->ud, NULL, err);
            job_free(j);
        }
    }
}

static void pc_connect(struct pgconn *pc)
{
    struct db *db = pc->db;
    if (!pc->pg) {
        pc->pg = PQconnectStart(db->conninfo);
        if (!pc->pg || PQstatus(pc->pg) == CONNECTION_BAD) {
            pc_reset(pc, -EAGAIN, pc->pg ? PQerrorMessage(pc->pg) : "out of memory");
            return;
        }
        pc->state = PC_CONNECTING;
        pc->connect_deadline = now_ms(db) + (uint64_t)db->timeout_ms;
    }
    switch (PQconnectPoll(pc->pg)) {
    case PGRES_POLLING_READING:
        if (poll_want(pc, UV_READABLE)) pc_reset(pc, -EAGAIN, "poll");
        return;
    case PGRES_POLLING_WRITING:
        if (poll_want(pc, UV_WRITABLE)) pc_reset(pc, -EAGAIN, "poll");
        return;
    case PGRES_POLLING_OK:
        break;
    default:
        pc_reset(pc, -EAGAIN, PQerrorMessage(pc->pg));
        return;
    }
    if (PQsetnonblocking(pc->pg, 1) || !PQenterPipelineMode(pc->pg)) {
        pc_reset(pc, -EAGAIN, "pipeline mode");
        return;
    }
    pc->state = PC_PREPARING;
    pc->prep_left = db->nstmts + 1;
    for (int i = -1; i < db->nstmts; i++) {
        struct job *j = mem_calloc(1, sizeof *j);
        if (!j) {
            pc_reset(pc, -EAGAIN, "out of memory");
            return;
        }
        /* Sent first: every statement after it has PostgreSQL's deadline. */
        j->setup = i < 0;
        j->prepare = i >= 0;
        j->stmt = i < 0 ? 0 : i;
        j->deadline = now_ms(db) + (uint64_t)db->timeout_ms;
        list_push(&pc->pend_head, &pc->pend_tail, j);
        pc->npend++;
    }
    pc_pump(pc);
}

/* The late backstop. PostgreSQL cancels a slow statement itself at the
 * deadline (statement_timeout), and with one sync per query only that query
 * fails: the pipeline behind it goes on. So a connection is reset only when
 * it has answered nothing at all for DB_BACKSTOP deadlines while owing
 * answers (a dead server or network). A query still unanswered at
 * DB_BACKSTOP deadlines (a long queue ahead of it) is answered -ETIMEDOUT
 * alone: one not sent yet leaves the queue, one in flight is abandoned (its
 * result is dropped when it comes).
 *
 * Silence is judged on progress, not on the clock: a loop busy elsewhere
 * for seconds (a reconnect storm's burst of sign-ins in one turn) has not
 * read what PostgreSQL answered meanwhile, and timers run before the poll.
 * So what waits in the socket is read first, and a tick adds at most
 * 2 * DB_TICK_MS of silence (step). */
static void pc_expire(struct pgconn *pc, uint64_t now, uint64_t step)
{
    struct db *db = pc->db;
    if (pc->fly_head) {
        if (!PQconsumeInput(pc->pg)) {
            pc_reset(pc, -EAGAIN, PQerrorMessage(pc->pg));
            return;
        }
        pc_drain(pc);
        if (!pc->pg) return; /* a completion reset the connection */
        pc->dirty = true;    /* what waited behind the drained goes out this turn */
    }
    if (!pc->fly_head || pc->progress_at >= db->last_tick)
        pc->silent_ms = 0;
    else
        pc->silent_ms += step;
    uint64_t late = (uint64_t)db->timeout_ms * (DB_BACKSTOP - 1);
    if (pc->fly_head && pc->silent_ms >= late + (uint64_t)db->timeout_ms) {
        pc_reset(pc, -ETIMEDOUT, "no answer from postgres");
        return;
    }
    for (struct job *j = pc->fly_head; j && now >= j->deadline + late; j = j->next) {
        if (j->abandoned || !j->cb) continue;
        j->abandoned = true;
        db->errors++;
        j->cb(j->ud, NULL, -ETIMEDOUT);
    }
    while (pc->pend_head && pc->pend_head->cb && now >= pc->pend_head->deadline + late) {
        struct job *j = list_pop(&pc->pend_head, &pc->pend_tail);
        pc->npend--;
        db->errors++;
        j->cb(j->ud, NULL, -ETIMEDOUT);
        job_free(j);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct db *db = t->data;
    uint64_t now = now_ms(db), step = now - db->last_tick;
    if (step > 2 * DB_TICK_MS) step = 2 * DB_TICK_MS;
    for (int i = 0; i < db->n; i++) {
        struct pgconn *pc = &db->c[i];
        if (pc->state == PC_DOWN) {
            if (now >= pc->retry_at) pc_connect(pc);
        } else if (pc->state == PC_CONNECTING) {
            if (now >= pc->connect_deadline) pc_reset(pc, -ETIMEDOUT, "connect timeout");
        } else {
            pc_expire(pc, now, step);
        }
    }
    db->last_tick = now;
}

/* Runs before the loop sleeps: queries queued by this iteration's callbacks
 * go out together, and no db_query ever calls its callback before it returns. */
static void on_flush(uv_prepare_t *h)
{
    struct db *db = h->data;
    for (int i = 0; i < db->n; i++) {
        struct pgconn *pc = &db->c[i];
        if (pc->dirty) {
            pc->dirty = false;
            pc_pump(pc);
        }
    }
}

struct db *db_new(uv_loop_t *loop, const char *conninfo, int nconns, int timeout_ms,
                  const struct db_stmt *stmts, int nstmts)
{
    struct db *db = mem_calloc(1, sizeof *db);
    if (!db) return NULL;
    db->loop = loop;
    db->conninfo = mem_strndup(conninfo, strlen(conninfo));
    db->n = nconns;
    db->c = mem_calloc((size_t)nconns, sizeof *db->c);
    db->timeout_ms = timeout_ms;
    snprintf(db->setup_sql, sizeof db->setup_sql, "SET statement_timeout = %d", timeout_ms);
    db->stmts = stmts;
    db->nstmts = nstmts;
    if (!db->conninfo || !db->c) {
        mem_free(db->conninfo);
        mem_free(db->c);
        mem_free(db);
        return NULL;
    }
    for (int i = 0; i < nconns; i++) {
        db->c[i].db = db;
        db->c[i].idx = i;
        db->c[i].backoff_ms = DB_BACKOFF_MIN_MS;
    }
    db->first_reader = nconns > 1 ? 1 : 0;
    db->tag = "";
    uv_timer_init(loop, &db->tick);
    db->tick.data = db;
    uv_prepare_init(loop, &db->flush);
    db->flush.data = db;
    db->open_handles = 2;
    return db;
}

void db_start(struct db *db)
{
    for (int i = 0; i < db->n; i++)
        pc_connect(&db->c[i]);
    db->last_tick = now_ms(db);
    uv_timer_start(&db->tick, on_tick, DB_TICK_MS, DB_TICK_MS);
    uv_prepare_start(&db->flush, on_flush);
}

bool db_ready(const struct db *db)
{
    for (int i = 0; i < db->n; i++)
        if (db->c[i].state != PC_READY) return false;
    return true;
}

int db_ready_count(const struct db *db)
{
    int n = 0;
    for (int i = 0; i < db->n; i++)
        n += db->c[i].state == PC_READY;
    return n;
}

unsigned long long db_reconnects(const struct db *db)
{
    return db->reconnects;
}

unsigned long long db_errors(const struct db *db)
{
    return db->errors;
}

unsigned db_pending(const struct db *db)
{
    unsigned n = 0;
    for (int i = 0; i < db->n; i++)
        n += db->c[i].npend + db->c[i].nfly;
    return n;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct db *db = h->data;
    if (--db->open_handles) return;
    mem_free(db->c);
    mem_free(db->conninfo);
    mem_free(db);
}

void db_close(struct db *db)
{
    db->closing = true;
    for (int i = 0; i < db->n; i++) {
        struct pgconn *pc = &db->c[i];
        pc->was_up = false;
        pc_reset(pc, -EAGAIN, "shutdown");
    }
    uv_timer_stop(&db->tick);
    uv_prepare_stop(&db->flush);
    uv_close((uv_handle_t *)&db->tick, on_handle_closed);
    uv_close((uv_handle_t *)&db->flush, on_handle_closed);
}

void db_readers_only(struct db *db)
{
    db->first_reader = 0;
    db->tag = " pool=read";
}

int db_reader_lane(struct db *db)
{
    int nr = db->n - db->first_reader;
    if (db->closing || nr <= 0) return -EAGAIN;
    for (int k = 0; k < nr; k++) {
        int lane = db->first_reader + (int)(db->rr++ % (unsigned)nr);
        if (db->c[lane].state == PC_READY) return lane;
    }
    return -EAGAIN;
}

int db_query(struct db *db, int lane, int stmt, int nparams, const char *const *values,
             const int *lengths, const int *formats, db_cb cb, void *ud)
{
    if (db->closing) return -EAGAIN;
    if (lane < 0) lane = db_reader_lane(db);
    if (lane < 0) return lane;
    struct pgconn *pc = &db->c[lane < db->n ? lane : 0];
    if (pc->state != PC_READY) return -EAGAIN;
    if (pc->npend >= DB_MAX_QUEUED) return -ENOBUFS;

    /* One allocation holds the job and copies of its parameters. */
    size_t sz = sizeof(struct job) + (size_t)nparams * (sizeof(char *) + 2 * sizeof(int));
    for (int i = 0; i < nparams; i++)
        if (values[i])
            sz += (lengths && formats && formats[i] ? (size_t)lengths[i] : strlen(values[i])) + 1;
    struct job *j = mem_alloc(sz);
    if (!j) return -ENOMEM;
    memset(j, 0, sizeof *j);
    j->cb = cb;
    j->ud = ud;
    j->stmt = stmt;
    j->nparams = nparams;
    j->deadline = now_ms(db) + (uint64_t)db->timeout_ms;
    j->values = (char **)(j + 1);
    j->lengths = (int *)(j->values + nparams);
    j->formats = j->lengths + nparams;
    char *p = (char *)(j->formats + nparams);
    for (int i = 0; i < nparams; i++) {
        j->formats[i] = formats ? formats[i] : 0;
        if (!values[i]) {
            j->values[i] = NULL;
            j->lengths[i] = 0;
            continue;
        }
        size_t len = j->formats[i] ? (size_t)lengths[i] : strlen(values[i]);
        memcpy(p, values[i], len);
        p[len] = '\0';
        j->values[i] = p;
        j->lengths[i] = (int)len;
        p += len + 1;
    }
    list_push(&pc->pend_head, &pc->pend_tail, j);
    pc->npend++;
    pc->dirty = true;
    return 0;
}
