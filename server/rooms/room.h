/*
 * room.h - the local room registry: which connections of this gateway are in
 * which room, the bus subscription of each room (SUBSCRIBE on the first local
 * join, UNSUBSCRIBE after the last leave), in-order fan-out, catch-up from
 * PostgreSQL, and joins. Beside it in rooms/: the reorder window's decisions
 * (reorder.h), paced replay of stored messages for one member (replay.h) and
 * presence (presence.h); the bus format is busfmt.h's.
 *
 * Order: a room's order is its PostgreSQL seq. The room's window (reorder.h)
 * knows the last seq fanned out here; a bus message with a seq at or below it
 * is a duplicate, an early one waits in the window until the gap fills or
 * reorder_ms passes, then the missing seqs are fetched from PostgreSQL. Each
 * member keeps its own position (sub->pos) and is given a seq only if it is
 * pos + 1, so no client ever sees a gap or a duplicate. A live member whose
 * queue would pass three quarters of its limit is switched to paced
 * catch-up from its pos (replay.h) instead of being cut off.
 *
 * Ownership: the registry owns rooms and subs. A sub is owned by its room and
 * listed in its connection's subs array. A room with no subs is freed once its
 * bus subscription is gone. Fetch tickets are unhooked when their room goes.
 */
#ifndef PARLEY_ROOM_H
#define PARLEY_ROOM_H

#include "conn.h"
#include "sub.h"

#include <stdbool.h>
#include <stdint.h>

struct app;
struct frame;
struct room;
struct replay_fetch;

int room_registry_new(struct app *a);
void room_registry_free(struct app *a);

/* Authorisation passed: enter the room; the join reply is sent when the room
 * knows its position, then replay or live fan-out follows. */
void room_sub_enter(struct app *a, struct sub *s);
/* Leaves (any state) and frees the sub; announces it if it was in the room. */
void room_sub_leave(struct app *a, struct sub *s);
/* Connection closing: leave every room. */
void room_conn_gone(struct app *a, struct conn *c);
/* Connection's out-queue drained below its low-water mark (conn_low_water):
 * resume paused replays and catch-ups. */
void room_conn_drained(struct app *a, struct conn *c);

/* A committed message could not be published: fetch it for local members. */
void room_kick(struct app *a, const char *room_id);

/* Bus hooks. */
void room_on_bus_message(void *ud, const char *ch, size_t chlen, const char *p, size_t len);
void room_on_subscribed(void *ud, const char *ch, size_t chlen);
void room_on_unsubscribed(void *ud, const char *ch, size_t chlen);
void room_on_bus_up(void *ud);
void room_on_bus_down(void *ud);

/* The last seq fanned out in r (replay.h: a member is level with it). */
int64_t room_delivered(const struct room *r);

/* Rooms with local members, and rooms subscribed on the bus (metrics). */
unsigned room_count(const struct app *a);
unsigned room_subscribed_count(const struct app *a);

/* Periodic: fetch gaps that waited longer than reorder_ms. */
void room_tick(struct app *a);

/* Presence, once a second, for every room (presence.h). */
void room_presence_tick(struct app *a);
/* A graceful stop whose clients are gone or cut off: the others leave this
 * gateway's people out from their next check (presence_leave). */
void room_presence_leave(struct app *a);

/* Moderation (ctl.c): a push for person (or "-") and the moderators of the
 * room on every gateway; the person taken out of the room here. */
void room_push(struct app *a, const char *room, const char *person, size_t plen, const char *json,
               size_t jlen);
void room_remove_person(struct app *a, const char *room, const char *person, const char *reason);
/* Access to the room was lost (access.h): a member gets a `removed` push
 * with the reason ("removed", "not_a_member", "archived", "deleted"), a
 * join not answered yet is refused; then s is left and freed. Not for
 * SUB_CHECKING subs (their check decides). */
void room_revoke(struct app *a, struct sub *s, const char *reason);

/* Typing: publishes an ephemeral typing event for c in the room. */
void room_typing(struct app *a, struct sub *s);

/* Encodes a stored message as a push into a new frame (NULL on failure). */
struct frame *room_encode_message(struct app *a, const struct pp_message *m);

#endif
