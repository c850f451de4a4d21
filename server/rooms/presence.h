/*
 * presence.h - who is online in each room, across gateways. This
 * gateway's people in a room are written to a Redis sorted set per room
 * when they change (and every 4 min while they do not), followed by a
 * presence hint on the room's channel; a gateway reads a room back when a
 * hint from another gateway comes, when the gateways' liveness changes, and
 * every 30 s at the least. An idle room costs nothing. Each gateway keeps a
 * liveness key (written every 2 s, gone 10 s after it stops); readers leave
 * out the entries of a gateway whose key is gone, so a crashed gateway's
 * people leave within about 12 s. The room's members get a snapshot, then
 * joins and leaves as diffs (only the count in a room of more than
 * list_max people).
 *
 * Ownership: struct presence belongs to the room registry (one per gateway)
 * and must outlive the bus's pending replies (the registry is freed after
 * bus_close, which answers every pending reply; the registry frees it before
 * its rooms). A room's view (struct pview) is owned by its room and freed
 * with presence_view_free. A Redis reply may come after its room is gone,
 * so it finds the room again by id through the registry's find function.
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

/* Once a tick, before the rooms: writes this gateway's liveness key and
 * checks the other gateways' every 2 s. force (the bus came back): this
 * gateway takes a new id, so that entries it could not remove while Redis
 * was away go with the old id's key. */
void presence_tick(struct presence *p, int64_t wall_ms, bool force);
/* A graceful stop, once its clients are gone or cut off: deletes this
 * gateway's liveness key, so the other gateways leave out whatever entries
 * it could not remove (rooms still open when the links go) from their
 * next check of the key, 1 to 3 s later, instead of when it lapses (10 s).
 * No tick may follow (the drain stops them). */
void presence_leave(struct presence *p);
/* A presence hint for the room came from gateway gw (BUSFMT_GW_LEN
 * characters): the room is read on the next two ticks (a hint can overtake
 * its write when the room's channel and key live on different cluster
 * masters). gw NULL (after a resubscription: hints were missed, and a
 * failed-over master may have lost writes): the same, and this gateway's
 * entries are written again. Its own hints, and a NULL p or v, are
 * ignored. */
void presence_hint(struct presence *p, struct pview *v, const char *gw);
/* The tick for one room (id NUL-terminated) with members from head, at
 * wall_ms (Unix time in ms, the entries' clock on every gateway): writes
 * this gateway's entries and a hint when its people in the room changed,
 * or when force is set (the bus came back: Redis may have lost them),
 * rewrites them every 4 min, and reads the room back when a hint, a
 * liveness change or the 30 s bound asks (at most one read in flight per
 * room; a slow Redis skips a read, never a due write). Creates *view on
 * first use. */
void presence_room(struct presence *p, const char *room_id, struct pview **view, struct sub *head,
                   int64_t wall_ms, bool force);
/* A member that just joined gets the snapshot now if the view is known
 * (otherwise the next read sends it). */
void presence_snapshot(struct presence *p, const char *room_id, const struct pview *v,
                       struct sub *s);
/* People online in the room at the last read; 0 before the first. */
uint32_t presence_people(const struct pview *v);
/* Frees a room's view (v may be NULL). When this gateway still has entries
 * in the room (its last member left between two ticks), removes them and
 * hints first; p NULL (at teardown, the bus closed) leaves Redis alone. */
void presence_view_free(struct presence *p, const char *room_id, struct pview *v);

#endif
