/*
 * sql_rooms.h - the statements behind rooms (sql_rooms.c): rooms and their
 * members, avatars and their tokens, guidelines, and the visit log with its
 * anonymisation job. Each follows the calling convention of apisql.h;
 * statement s is stmts_at(&sql_rooms, s) once http_api_register_stmts has
 * registered the table.
 */
#ifndef PARLEY_SQL_ROOMS_H
#define PARLEY_SQL_ROOMS_H

#include "stmts.h"

enum rooms_stmt {
    SR_ROOM_CREATE,
    SR_ROOM_LIST,
    SR_ROOM_GET,
    SR_ROOM_PATCH,
    SR_ROOM_MEMBERS,
    SR_ROOM_MEMBER_ADD,
    SR_ROOM_MEMBER_DEL,
    SR_AVATAR_CREATE,
    SR_AVATAR_LIST,
    SR_AVATAR_GET,
    SR_AVATAR_PATCH,
    SR_AVATAR_DELETE,
    SR_AVATAR_TOKEN_CREATE,
    SR_AVATAR_TOKENS,
    SR_AVATAR_TOKEN_REVOKE,
    SR_VISITS,
    SR_ANONYMISE,
    SR_GL_GET,
    SR_GL_PUT,
    SR_GL_EFFECTIVE,
    SR_GL_AUDIT,
    SR__COUNT
};

extern struct stmts_table sql_rooms;

#endif
