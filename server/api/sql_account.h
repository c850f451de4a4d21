/*
 * sql_account.h - the statements behind accounts (sql_account.c): the API's
 * token check, sign-up, address verification, login, logout, the caller's
 * own profile (/me) and redeeming an invitation. Each follows the calling
 * convention of apisql.h; statement s is stmts_at(&sql_account, s) once
 * http_api_register_stmts has registered the table.
 */
#ifndef PARLEY_SQL_ACCOUNT_H
#define PARLEY_SQL_ACCOUNT_H

#include "stmts.h"

enum account_stmt {
    SA_AUTH,
    SA_SIGNUP,
    SA_VERIFY,
    SA_RESEND,
    SA_LOGIN_LOOKUP,
    SA_LOGIN_FINISH,
    SA_LOGOUT,
    SA_REVOKE_ALL,
    SA_ME_GET,
    SA_ME_PATCH,
    SA_REDEEM_LOOKUP,
    SA_REDEEM,
    SA__COUNT
};

extern struct stmts_table sql_account;

#endif
