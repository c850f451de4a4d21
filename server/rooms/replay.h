/*
 * replay.h - stored messages for one member, read from PostgreSQL page by
 * page and paced by the member's connection: the replay after a join with
 * since, and the catch-up of a member that fell behind live fan-out.
 *
 * Pacing: a page is loaded when the member's out-queue is at most a quarter
 * full (conn_low_water) and fills it to half at most, counted in bytes and
 * frames. Live fan-out goes on to three quarters (replay_live_fits); a member
 * further behind is switched to paced catch-up from its position instead of
 * being cut off, which would only make a client that reads come back and ask
 * for the same backlog. The last quarter stays free for replies and other
 * pushes. A peer that reads nothing is still closed, by the stall check
 * (conn_check_stall).
 *
 * Ownership: a sub has at most one page query in flight (sub->fetch), owned
 * here; replay_cancel unhooks it when the sub goes, and its completion then
 * only frees the ticket.
 */
#ifndef PARLEY_REPLAY_H
#define PARLEY_REPLAY_H

#include "db.h"

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPLAY_PAGE_ROWS 256 /* rows per replay or catch-up query */

struct app;
struct conn;
struct frame;
struct sub;

/* Reads the member's next page after s->pos, now or (queue not drained
 * yet) once room_conn_drained calls again; SUB_LIVE once level with the
 * room. Closes the connection when storage fails: a silent gap is not an
 * option. */
void replay_next(struct app *a, struct sub *s);
/* The sub is going: its page query, if any, finds nobody. */
void replay_cancel(struct sub *s);
/* Another live message fits c's out-queue (three quarters of it). */
bool replay_live_fits(const struct conn *c, size_t len);
/* Bytes of bodies in one page read from storage. */
size_t replay_page_bytes(const struct app *a);
/* Sends ST_FETCH for room: at most rows rows after seq after, cut after the
 * row whose bodies reach bytes; through dbread_query with floor (a seq known
 * to be committed; DBREAD_PRIMARY: the primary). 0 or db_query's errors. */
int replay_page_query(struct app *a, const char *room, int64_t after, uint32_t rows, size_t bytes,
                      int64_t floor, db_cb cb, void *ud);
/* The push for a ST_FETCH/ST_BEFORE row of room (NULL on failure). */
struct frame *replay_row_frame(struct app *a, const char *room, PGresult *res, int row);

#endif
