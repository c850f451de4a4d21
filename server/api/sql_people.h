/*
 * sql_people.h - the statements behind workspaces (sql_people.c): the
 * workspaces themselves, their people, invitations, self-service joining
 * and the outbox of messages to deliver. Each follows the calling
 * convention of apisql.h; statement s is stmts_at(&sql_people, s) once
 * http_api_register_stmts has registered the table.
 */
#ifndef PARLEY_SQL_PEOPLE_H
#define PARLEY_SQL_PEOPLE_H

#include "stmts.h"

enum people_stmt {
    SP_WS_CREATE,
    SP_WS_LIST,
    SP_WS_GET,
    SP_WS_PATCH,
    SP_PEOPLE_LIST,
    SP_PERSON_GET,
    SP_PERSON_PATCH,
    SP_PERSON_REMOVE,
    SP_PERSON_RESTORE,
    SP_INVITE,
    SP_INVITE_LIST,
    SP_INVITE_REVOKE,
    SP_OUTBOX_LEASE,
    SP_OUTBOX_GET,
    SP_OUTBOX_ACK,
    SP_JOINABLE,
    SP_WS_JOIN,
    SP__COUNT
};

extern struct stmts_table sql_people;

#endif
