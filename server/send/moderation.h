/*
 * moderation.h - deleting and editing messages, deciding held messages,
 * mutes, removals, locked rooms and slow mode, the moderation log, and the
 * evaluation of a room or workspace.
 *
 * Every action is one SQL statement (the HTTP API's calling convention,
 * apisql.h) that checks workspace, room and role, makes the change, writes
 * the audit row and, when the room's members must learn of it, appends an
 * event to the room's log under the room lock ('delete', 'edit', 'settings'
 * rows, or the approved message itself). It answers (status, body, control
 * events, targeted push); ctl_effects() turns the last two into a sync
 * marker on the room's channel (every gateway fetches the new rows in
 * order), cache invalidations, removals and pushes to a sender and the
 * moderators. The same statements serve the WebSocket ops (here) and the
 * HTTP routes (http_api.c), so both paths behave alike.
 *
 * Ownership: requests hold a creq to their connection; a closed connection's
 * request still completes (the change is committed) and applies its effects.
 */
#ifndef PARLEY_MODERATION_H
#define PARLEY_MODERATION_H

#include "stmts.h"
#include "parley_proto.h"

struct app;
struct conn;

enum mod_stmt {
    M_DELETE,   /* z: seq; b: {reason?} */
    M_EDIT,     /* z: seq; b: {body} (already passed the guidelines) */
    M_PENDING,  /* held and shadowed messages of room id1 (mine unless flag M) */
    M_APPROVE,  /* z: pending id; b: {reason?} */
    M_REJECT,   /* z: pending id; b: {reason?} */
    M_MUTE,     /* b: {person_id, room_id?, duration_s, reason?} */
    M_UNMUTE,   /* b: {person_id, room_id?, reason?} */
    M_MUTES,    /* active mutes of the workspace */
    M_REMOVE,   /* room id1; b: {person_id, reason?} */
    M_SETTINGS, /* room id1; b: {locked?, slow_mode_s?, reason?} */
    M_LOG,      /* z: room or empty; the newest 200 actions */
    M_EVAL,     /* room id1 or NULL; z: "from|to|csv" */
    M__COUNT
};

/* Its table in the statement registry (stmts.h): statement m is
 * stmts_at(&mod_sql, m). */
extern struct stmts_table mod_sql;

/* WebSocket ops delete, edit (after the guidelines: mod_edit), pending,
 * approve, reject, mute, unmute, remove, room_settings. */
void mod_op(struct conn *c, const struct pp_cmd *cmd);

/* An edit whose new body passed the room's guidelines (send.c). */
void mod_edit(struct app *a, struct conn *c, int64_t id, const char *room, int64_t seq,
              const char *body, size_t len);

#endif
