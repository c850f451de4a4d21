/*
 * ctl.h - access revocation across gateways. When a token is revoked, a
 * person signs out everywhere, is removed from a workspace, or a workspace
 * is deleted, every gateway must close the matching WebSocket connections
 * at once. The event goes over the Redis channel "ctl" (and is applied
 * locally at once, so a gateway does not depend on Redis for its own).
 *
 * Redis is a fast path, not the record: a gateway that missed events (bus
 * down) revalidates every authenticated connection against PostgreSQL when
 * its subscription comes back, and all of them every minute, which is also
 * how tokens that expire while connected are cut off.
 *
 * Events are text: "token <token-id>", "person <person-id>",
 * "member <workspace-id> <person-id>", "workspace <workspace-id>",
 * "guidelines <workspace-id>" (its rules, mutes or room settings changed:
 * drop the cached copies), "kick <room-id> <person-id> [reason]" (removed
 * from the room: take them out of it now) and "access <room-id>" (who may
 * be in the room changed: re-check the joins of it, access.h).
 */
#ifndef PARLEY_CTL_H
#define PARLEY_CTL_H

#include <stdbool.h>
#include <stddef.h>

struct app;

/* Applies the event here and publishes it to the other gateways. */
void ctl_publish(struct app *a, const char *event);

/* The effects a statement answered in row 0 (PGresult *): column 2, events
 * separated by ';' (published as above, except "sync <room-id> <seq>": rows
 * the statement appended to the room's log, announced with a sync marker on
 * the room's own channel so its gateways fetch them); column 3 if present, a push "<room>
 * <person|-> <json>" delivered on every gateway to that person's and the moderators' connections in
 * the room. */
void ctl_effects(struct app *a, const void *res);

/* Bus hooks: true when ch was the control channel (the message was handled). */
bool ctl_on_message(struct app *a, const char *ch, size_t chlen, const char *p, size_t len);
void ctl_on_bus_up(struct app *a);

/* Periodic: checks every authenticated connection's token and membership,
 * and every join's room access (access.h). */
void ctl_revalidate(struct app *a);

#endif
