/*
 * access.h - room access changes reach live joins. When people lose the
 * right to be in a room (taken off a members-only room's list, the room made
 * members-only or archived), every gateway takes their joins of it out at
 * once, each with a `removed` push saying why, and the joins see nothing
 * more of the room.
 *
 * The statement that makes the change publishes "access <room-id>" on the
 * control channel (ctl.h); each gateway re-checks its own joins of that room
 * against PostgreSQL in one query and revokes those no longer allowed
 * (room_revoke). A moderator's removal names its person and needs no query
 * ("kick", ctl.h). Redis is a fast path, not the record: the periodic
 * revalidation re-checks every join of the gateway the same way. A join
 * whose check was in flight when an event arrived is checked again
 * (app access_epoch), since its answer may predate the change.
 *
 * Ownership: a check in flight holds no pointer to a join; its answer finds
 * the joins again by room and token, so joins that ended meanwhile are
 * simply not found.
 */
#ifndef PARLEY_ACCESS_H
#define PARLEY_ACCESS_H

struct app;

/* Re-checks this gateway's joins of room (NULL: of every room) and revokes
 * those no longer allowed. */
void access_check(struct app *a, const char *room);

#endif
