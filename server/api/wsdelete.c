#include "wsdelete.h"

#include "app.h"
#include "log.h"
#include "rights.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "apisql.h"

#define DELETED_JSON(w)                                                                            \
    "json_build_object('id', " w ".id, 'name', " w ".name, 'deleted_at', " w ".deleted_at,"        \
    " 'purge_at', " w ".purge_at)"

// clang-format off
static const struct db_stmt wsdel_stmts[WD__COUNT] = {
    /* The route's permission made the actor an active owner of a workspace
     * that is not deleted (a deleted one is nobody's, api_auth); a
     * concurrent delete finds no row (404). The control event closes every
     * connection to it on every gateway. */
    [WD_DELETE] = {"wsdel_delete",
        P ", w AS (UPDATE workspaces w SET deleted_at = now(), deleted_by = p.actor,"
        "  purge_at = now() + make_interval(days => w.member_grace_days)"
        "  FROM p WHERE w.id = p.ws AND w.deleted_at IS NULL RETURNING w.*),"
        " l AS (INSERT INTO workspace_deletions (workspace_id, action, actor_id)"
        "  SELECT w.id, 'delete', p.actor FROM w, p RETURNING 1)"
        " SELECT 200, " DELETED_JSON("w") ", 'workspace ' || w.id FROM w"
        " WHERE (SELECT count(*) FROM l) >= 0",
        NPARAMS},
    /* Only an active owner gets anything but 404: for anyone else a
     * deleted workspace is one that does not exist. For an owner: 409 when
     * it is not deleted, 410 when its purge may have begun. */
    [WD_RESTORE] = {"wsdel_restore",
        P ", o AS (SELECT w.id, w.deleted_at, w.purge_at FROM p, workspaces w"
        "  JOIN workspace_members m ON m.workspace_id = w.id"
        "  WHERE w.id = p.ws AND m.person_id = p.actor AND m.role = 'owner'"
        "  AND m.removed_at IS NULL FOR UPDATE OF w),"
        " st AS (SELECT CASE WHEN o.deleted_at IS NULL THEN 409 WHEN o.purge_at <= now() THEN 410"
        "  ELSE 200 END AS st FROM o),"
        " u AS (UPDATE workspaces x SET deleted_at = NULL, deleted_by = NULL, purge_at = NULL"
        "  FROM st, p WHERE st.st = 200 AND x.id = p.ws RETURNING x.*),"
        " l AS (INSERT INTO workspace_deletions (workspace_id, action, actor_id)"
        "  SELECT u.id, 'restore', p.actor FROM u, p RETURNING 1)"
        " SELECT st.st, CASE st.st"
        "  WHEN 200 THEN (SELECT json_build_object('id', u.id, 'name', u.name, 'restored', true)"
        "   FROM u)"
        "  WHEN 409 THEN " ERR("not_deleted", "", "this workspace is not deleted")
        "  ELSE " ERR("purging", "", "the grace period is over: the workspace is being purged")
        " END, NULL FROM st WHERE (SELECT count(*) FROM l) >= 0",
        NPARAMS},
    /* What the actor may still restore. */
    [WD_LIST] = {"wsdel_list",
        P " SELECT 200, " ITEMS(DELETED_JSON("w"), "w.purge_at, w.id", "w.id") ", NULL FROM p"
        " LEFT JOIN workspace_members m ON m.person_id = p.actor AND m.role = 'owner'"
        "  AND m.removed_at IS NULL"
        " LEFT JOIN workspaces w ON w.id = m.workspace_id AND w.deleted_at IS NOT NULL"
        "  AND w.purge_at > now()"
        " GROUP BY p.actor",
        NPARAMS},
    [WD_PURGE] = {"wsdel_purge", "SELECT parley_ws_purge($1::int)::text", 1},
};
// clang-format on

struct stmts_table wsdel_sql = {"wsdelete", wsdel_stmts, WD__COUNT, -1};

/* ---- the purge ----------------------------------------------------------- */

static void on_purge(void *ud, PGresult *res, int err)
{
    struct app *a = ud;
    a->purge_busy = false;
    a->purge_more = false;
    if (err || PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        if (!err) log_warn("workspace purge failed", "sqlstate=%s", db_sqlstate(res));
        return;
    }
    cJSON *o = cJSON_Parse(PQgetvalue(res, 0, 0));
    if (!o) return;
    const cJSON *ws = cJSON_GetObjectItemCaseSensitive(o, "workspace");
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(o, "rows");
    if (cJSON_IsString(ws)) {
        uint64_t n =
            cJSON_IsNumber(rows) && rows->valuedouble > 0 ? (uint64_t)rows->valuedouble : 0;
        a->stats.retention_removed[RK_WS_ROWS] += n;
        /* work was found: another run next tick (this workspace's rest, or
         * the next one whose grace is over) */
        a->purge_more = true;
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "done"))) {
            a->stats.retention_removed[RK_WORKSPACES]++;
            log_info("workspace purged", "workspace=%s rows=%llu", ws->valuestring,
                     (unsigned long long)n);
        } else {
            log_debug("workspace purge: batch", "workspace=%s rows=%llu", ws->valuestring,
                      (unsigned long long)n);
        }
    }
    cJSON_Delete(o);
}

void wsdel_purge_tick(struct app *a)
{
    if (a->purge_busy) return;
    uint32_t every = a->cfg.retention_every_s;
    if (!a->purge_more && a->job_runs % every != 3 % every) return;
    char batch[16];
    snprintf(batch, sizeof batch, "%u", a->cfg.purge_batch);
    const char *v[1] = {batch};
    if (db_query(a->db, -1, stmts_at(&wsdel_sql, WD_PURGE), 1, v, NULL, NULL, on_purge, a) == 0)
        a->purge_busy = true;
}
