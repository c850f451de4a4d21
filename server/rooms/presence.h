/*
 * presence.h - who is online in each room, across gateways. This
 * gateway's people in a room are written to a Redis sorted set per room
 * (score: expiry, so a dead gateway's entries vanish within seconds) when
 * they change and every 2 s while they do not (one ZADD per room per tick
 * was most of an idle gateway's Redis traffic); once a second the set is
 * read back, and the room's members get a snapshot, then joins and leaves
 * as diffs (only the count in a room of more than list_max people).
 *
 * Ownership: struct presence belongs to the room registry (one per gateway)
 * and must outlive the bus's pending replies (the registry is freed after
 * bus_close, which answers every pending reply). A room's view (struct pview)
 * is owned by its room and freed with presence_view_free. A Redis reply may
 * come after its room is gone, so it finds the room again by id through
 * the registry's find function.
 */
#ifndef PARLEY_PRESENCE_H
#define PARLEY_PRESENCE_H

#include <stdbool.h>
#include <stdint.h>

struct bus;
struct sub;
struct pview;
struct presence;

/* The room with this id, if it still exists: the address of its view pointer
 * and, in *head, its first member (the list goes on through sub->next). */
typedef struct pview **(*presence_find_fn)(void *ud, const char *room_id, struct sub **head);

/* NULL on allocation failure. */
struct presence *presence_new(struct bus *bus, uint32_t list_max, presence_find_fn find, void *ud);
void presence_free(struct presence *p);

/* The tick for one room (id NUL-terminated) with members from head, at
 * wall_ms (Unix time in ms: entries expire by it on every gateway): refresh
 * this gateway's entries when its people in the room changed, when they
 * were written PRESENCE_REFRESH_MS (2 s) ago, or when force is set (the bus
 * came back: Redis may have lost them), and read the room back (at most one
 * read in flight per room; a slow Redis skips a read, never a due refresh).
 * Creates *view on first use. */
void presence_room(struct presence *p, const char *room_id, struct pview **view, struct sub *head,
                   int64_t wall_ms, bool force);
/* A member that just joined gets the snapshot now if the view is known
 * (otherwise the next read sends it). */
void presence_snapshot(struct presence *p, const char *room_id, const struct pview *v,
                       struct sub *s);
/* People online in the room at the last read; 0 before the first. */
uint32_t presence_people(const struct pview *v);
void presence_view_free(struct pview *v);

#endif
