#include "apireq.h"

#include "app.h"
#include "ctl.h"
#include "dbread.h"
#include "log.h"
#include "mem.h"
#include "perm.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "apisql.h"

/* ---- answering ----------------------------------------------------------- */

void apireq_respond_text(struct http_req *r, int status, const char *s, size_t len)
{
    char *b = len ? mem_alloc(len) : NULL;
    if (len && !b) {
        http_error(r, 500, "internal", "out of memory", NULL);
        return;
    }
    if (b) memcpy(b, s, len);
    http_respond(r, status, b, len);
}

void apireq_retry_later(struct http_req *r, const char *code, const char *message)
{
    r->retry_after = 1;
    http_error(r, 503, code, message, NULL);
}

/* Maps a failed statement to an answer: constraint violations are the
 * client's (a conflict or a bad value), anything else is ours. */
void apireq_db_error(struct http_req *r, PGresult *res, int err)
{
    if (err == -ENOBUFS || err == -EAGAIN || err == -ETIMEDOUT) {
        apireq_retry_later(r, "unavailable", "storage unavailable, retry later");
        return;
    }
    const char *st = res ? db_sqlstate(res) : "";
    if (!strcmp(st, "23505")) {
        http_error(r, 409, "conflict", "already exists (email or phone in use?)", NULL);
    } else if (!strncmp(st, "23", 2) || !strncmp(st, "22", 2)) {
        http_error(r, 400, "bad_request", "a value is not acceptable", NULL);
    } else {
        log_error("api statement failed", "path=%s sqlstate=%s error=\"%s\"", r->path, st,
                  res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : "");
        http_error(r, 500, "internal", "internal error", NULL);
    }
}

/* Splices "token":"<text>" into the front of a JSON object body. */
static char *with_token(const char *json, size_t len, const char *token, size_t *out_len)
{
    size_t tl = strlen(token);
    char *b = mem_alloc(len + tl + 16);
    if (!b || len < 2 || json[0] != '{') {
        mem_free(b);
        return NULL;
    }
    int n = snprintf(b, len + tl + 16, "{\"token\":\"%s\"%s", token, json[1] == '}' ? "" : ",");
    memcpy(b + n, json + 1, len - 1);
    *out_len = (size_t)n + len - 1;
    return b;
}

/* A statement's standard answer: (status, body, control event). The event is
 * published even when the client has gone: the change is committed. */
void apireq_on_stmt(void *ud, PGresult *res, int err)
{
    struct http_req *r = ud;
    struct app *a = r->app;
    bool ok = !err && PQresultStatus(res) == PGRES_TUPLES_OK;
    if (ok && PQntuples(res) > 0) ctl_effects(a, res);
    if (!http_alive(r)) return;
    if (!ok) {
        apireq_db_error(r, err ? NULL : res, err);
        return;
    }
    if (PQntuples(res) == 0) {
        if (r->not_found_code)
            http_error(r, 404, r->not_found_code,
                       strcmp(r->not_found_code, "verification_invalid")
                           ? "invitation not found, expired or already used"
                           : "verification secret not found, expired or already used",
                       NULL);
        else
            http_error(r, 404, "not_found", "no such object", NULL);
        return;
    }
    int status = atoi(PQgetvalue(res, 0, 0));
    const char *body = PQgetisnull(res, 0, 1) ? NULL : PQgetvalue(res, 0, 1);
    size_t len = body ? (size_t)PQgetlength(res, 0, 1) : 0;
    /* A freshly made secret is shown once, here, and stored only hashed. */
    if (body && status < 300 && r->scratch[0] == 'T') {
        size_t n;
        char *b = with_token(body, len, r->scratch + 1, &n);
        sodium_memzero(r->scratch, sizeof r->scratch);
        if (!b) {
            http_error(r, 500, "internal", "out of memory", NULL);
            return;
        }
        http_respond(r, status, b, n);
        return;
    }
    if (status >= 300) r->type = NULL; /* errors are JSON */
    apireq_respond_text(r, status, body, len);
}

void apireq_hex(const unsigned char *in, size_t n, char *out)
{
    sodium_bin2hex(out, n * 2 + 1, in, n);
}

/* Runs a statement with the standard parameters; z is route-specific. */
static void run(struct http_req *r, int stmt, const char *z, bool replica);

void apireq_run(struct http_req *r, int stmt, const char *z)
{
    run(r, stmt, z, false);
}

void apireq_run_read(struct http_req *r, int stmt, const char *z)
{
    run(r, stmt, z, true);
}

static void run(struct http_req *r, int stmt, const char *z, bool replica)
{
    char x[64] = "", y[16] = "", ua[64];
    int n = 0;
    for (int t = 0; t < ROLE__COUNT; t++)
        if (perm_manages(r->role, (enum role)t))
            n += snprintf(x + n, sizeof x - (size_t)n, "%s%s", n ? "," : "", perm_role_name(t));
    int k = 0;
    if (perm_allows(r->role, P_PEOPLE_CONTACTS)) y[k++] = 'c';
    if (perm_allows(r->role, P_PEOPLE_MANAGE)) y[k++] = 'm';
    if (perm_allows(r->role, P_ROOMS_MANAGE)) y[k++] = 'r';
    const char *arch = http_arg(r, "archived");
    if (arch && !strcmp(arch, "true")) y[k++] = 'A';
    snprintf(ua, sizeof ua, "%s|%s", r->os, r->browser);
    if (perm_allows(r->role, P_MODERATE)) y[k++] = 'M';
    /* Path parameters in order: {ws} -> ws, {id} -> id1, {id2} -> id2, {n} -> z. */
    const char *ws = NULL, *id[2] = {NULL, NULL};
    int nid = 0, i = 0;
    for (const char *q = ((const struct route *)r->route)->path; (q = strchr(q, '{')); q++, i++) {
        if (!strncmp(q, "{ws}", 4))
            ws = r->ids[i];
        else if (!strncmp(q, "{n}", 3))
            z = r->ids[i];
        else if (nid < 2)
            id[nid++] = r->ids[i];
    }
    char *body = r->json ? cJSON_PrintUnformatted(r->json) : NULL;
    const char *v[NPARAMS] = {
        r->person[0] ? r->person : NULL, ws, id[0], id[1], body ? body : "{}", x, y, z, r->ip, ua,
    };
    int rc;
    if (!replica) {
        apireq_query(r, stmt, NPARAMS, v, NULL, NULL, apireq_on_stmt);
    } else if ((rc = dbread_query(r->app, NULL, 0, stmt, NPARAMS, v, apireq_on_stmt, r))) {
        apireq_db_error(r, NULL, rc);
    } else {
        r->busy = true;
    }
    mem_free(body);
}

void apireq_run_route(struct http_req *r)
{
    const struct route *rt = r->route;
    apireq_run(r, stmts_at(rt->sql, rt->stmt), NULL);
}

const char *apireq_jstr(const struct http_req *r, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(r->json, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Sends statement stmt for r with a callback that answers it: r is busy
 * until then, or answered here when the query cannot be sent. */
void apireq_query(struct http_req *r, int stmt, int n, const char *const *v, const int *len,
                  const int *fmt, db_cb cb)
{
    int rc = db_query(r->app->db, -1, stmt, n, v, len, fmt, cb, r);
    if (rc) {
        apireq_db_error(r, NULL, rc);
        return;
    }
    r->busy = true;
}

bool apireq_rows(struct http_req *r, PGresult *res, int err)
{
    if (!http_alive(r)) return false;
    if (err || PQresultStatus(res) != PGRES_TUPLES_OK) {
        apireq_db_error(r, err ? NULL : res, err);
        return false;
    }
    return true;
}

/* ---- tokens minted by a route -------------------------------------------- */

/* A new token: its text goes in r->scratch ("T<text>") to be spliced into the
 * answer, its hash (hex) into zhex. */
void apireq_mint(struct http_req *r, char zhex[AUTH_HASH_BYTES * 2 + 1])
{
    char text[AUTH_TOKEN_CHARS + 1];
    unsigned char h[AUTH_HASH_BYTES];
    auth_token_new(text, h);
    snprintf(r->scratch, sizeof r->scratch, "T%s", text);
    apireq_hex(h, sizeof h, zhex);
    sodium_memzero(text, sizeof text);
}
