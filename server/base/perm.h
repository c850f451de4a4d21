/*
 * perm.h - who may do what: the one place that decides permissions, for
 * every HTTP route and every WebSocket op. The matrix is also written in
 * protocol/API.md; a unit test reads that table and checks it against this
 * code, so the documentation cannot drift.
 *
 * Roles are those of workspace_members.role. "Not a member" is not a role:
 * callers answer 404 for it (another workspace's objects are never revealed).
 */
#ifndef PARLEY_PERM_H
#define PARLEY_PERM_H

#include <stdbool.h>
#include <stddef.h>

enum role {
    ROLE_NONE = -1,
    ROLE_OWNER = 0, /* created the workspace; the only one who may delete it */
    ROLE_ADMIN,     /* consultants and client representatives the owner invited */
    ROLE_KEYUSER,   /* a client's key user: runs rooms, moderates */
    ROLE_SUPPORT,   /* the operator's service identity, added per workspace */
    ROLE_MEMBER,    /* an invited participant */
    ROLE_AVATAR,    /* a bot speaking as a persona */
    ROLE__COUNT
};

enum perm {
    P_WORKSPACE_READ,      /* read the workspace and its settings */
    P_WORKSPACE_UPDATE,    /* change name, allowed domains, retention */
    P_WORKSPACE_DELETE,    /* delete it permanently */
    P_WORKSPACE_SELF_JOIN, /* open it to people of its allowed domains joining on their own */
    P_PEOPLE_LIST,         /* list people and read profiles */
    P_PEOPLE_CONTACTS,     /* see their email addresses and phone numbers */
    P_PEOPLE_INVITE,       /* invite people, list and revoke invitations */
    P_PEOPLE_MANAGE,       /* edit others' profiles and roles, remove and restore */
    P_ROOMS_LIST,          /* list rooms and their members */
    P_ROOMS_MANAGE,        /* create, rename, archive rooms; edit room membership */
    P_AVATARS_LIST,        /* list avatars */
    P_AVATARS_MANAGE,      /* create, edit, remove avatars; issue and revoke their tokens */
    P_VISITS_READ,         /* read the workspace's visit log */
    P_ROOM_JOIN,           /* WebSocket: join a room the person may see, read history */
    P_MSG_SEND,            /* WebSocket: send a message */
    P_MSG_VOTE,            /* WebSocket: like and rate */
    P_RECEIPTS_OTHERS,     /* WebSocket: which entries another person has seen */
    P_GUIDELINES_READ,     /* read the communication guidelines */
    P_GUIDELINES_MANAGE,   /* replace them, test them (dry run), read their audit */
    P_MODERATE,            /* delete any message, mute, remove, decide held, lock, slow mode */
    P_EVALUATE,            /* read a room's or the workspace's evaluation */
    PERM__COUNT
};

/* "owner" -> ROLE_OWNER ...; ROLE_NONE for anything else. */
enum role perm_role_parse(const char *s, size_t len);
const char *perm_role_name(enum role r);
const char *perm_name(enum perm p); /* "workspace.read" ... as written in API.md */

bool perm_allows(enum role r, enum perm p);

/* Whether actor may give target the role, or act on a person who holds it
 * (edit, remove, restore). Owners manage admins and below; admins manage
 * key users and members; nobody grants owner, support or avatar over the
 * API (support is the operator's, avatars have their own routes). */
bool perm_manages(enum role actor, enum role target);

#endif
