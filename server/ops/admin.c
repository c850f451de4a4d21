#include "admin.h"

#include "auth.h"
#include "guidelines.h"
#include "jsonv.h"
#include "parley_proto.h"
#include "mem.h"
#include "pwpolicy.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MIGRATIONS 256

/* The set-up commands' output is their answer; PostgreSQL's notices
 * ("relation already exists, skipping") are not. (A NULL processor would
 * leave libpq's default, which prints them.) */
static void no_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *connect_db(const char *conninfo)
{
    PGconn *pg = PQconnectdb(conninfo);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(stderr, "parleyd: cannot connect to PostgreSQL: %s", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, no_notice, NULL);
    return pg;
}

/* Runs a parameterised statement; returns the result if its status is ok
 * (caller clears), else prints and returns NULL. */
static PGresult *run(PGconn *pg, const char *sql, int n, const char *const *v)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, v, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        fprintf(stderr, "parleyd: %s", PQresultErrorMessage(r));
        PQclear(r);
        return NULL;
    }
    return r;
}

/* Migration files NNN_name.sql, sorted by number. */
struct mig {
    int version;    /* NNN */
    char name[256]; /* file name */
};

static int cmp_mig(const void *x, const void *y)
{
    return ((const struct mig *)x)->version - ((const struct mig *)y)->version;
}

static int list_migrations(const char *dir, struct mig *out)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "parleyd: sql-dir: cannot open %s\n", dir);
        return -1;
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < MAX_MIGRATIONS) {
        size_t len = strlen(e->d_name);
        int v;
        if (len < 8 || strcmp(e->d_name + len - 4, ".sql") || sscanf(e->d_name, "%3d_", &v) != 1)
            continue;
        out[n].version = v;
        snprintf(out[n].name, sizeof out[n].name, "%s", e->d_name);
        n++;
    }
    closedir(d);
    qsort(out, (size_t)n, sizeof *out, cmp_mig);
    return n;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? mem_alloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        mem_free(buf);
        buf = NULL;
    }
    if (buf) buf[n] = '\0';
    fclose(f);
    return buf;
}

static int db_version(PGconn *pg)
{
    PGresult *r = PQexec(pg, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    int v = PQresultStatus(r) == PGRES_TUPLES_OK ? atoi(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return v;
}

int admin_migrate(const char *conninfo, const char *sql_dir, int partitions)
{
    if (partitions < 1 || partitions > ADMIN_PARTITIONS_MAX) {
        fprintf(stderr, "parleyd: --partitions must be between 1 and %d\n", ADMIN_PARTITIONS_MAX);
        return -1;
    }
    char nparts[16];
    snprintf(nparts, sizeof nparts, "%d", partitions);
    const char *pv[1] = {nparts};
    struct mig m[MAX_MIGRATIONS];
    int n = list_migrations(sql_dir, m);
    if (n < 0) return -1;
    PGconn *pg = connect_db(conninfo);
    if (!pg) return -1;
    int rc = -1;
    PGresult *r = run(pg,
                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      " version int PRIMARY KEY, name text NOT NULL,"
                      " applied_at timestamptz NOT NULL DEFAULT now())",
                      0, NULL);
    if (!r) goto out;
    PQclear(r);
    /* One migrator at a time across every gateway started together. */
    if (!(r = run(pg, "SELECT pg_advisory_lock(7277001)", 0, NULL))) goto out;
    PQclear(r);
    int cur = db_version(pg);
    if (n && cur > m[n - 1].version) {
        fprintf(stderr, "parleyd: database schema is at version %d, newer than this parleyd (%d)\n",
                cur, m[n - 1].version);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (m[i].version <= cur) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", sql_dir, m[i].name);
        char *sql = read_file(path);
        if (!sql) {
            fprintf(stderr, "parleyd: cannot read %s\n", path);
            goto out;
        }
        char ver[16];
        snprintf(ver, sizeof ver, "%d", m[i].version);
        const char *v[2] = {ver, m[i].name};
        PGresult *b = run(pg, "BEGIN", 0, NULL);
        /* A migration reads its settings with current_setting(); local to
         * its transaction, so nothing else sees them. */
        PGresult *s = b ? run(pg, "SELECT set_config('parley.partitions', $1, true)", 1, pv) : NULL;
        PGresult *x = s ? PQexec(pg, sql) : NULL;
        mem_free(sql);
        if (b) PQclear(b);
        if (s) PQclear(s);
        if (!x || PQresultStatus(x) != PGRES_COMMAND_OK) {
            fprintf(stderr, "parleyd: migration %s failed: %s", m[i].name,
                    x ? PQresultErrorMessage(x) : PQerrorMessage(pg));
            if (x) PQclear(x);
            PQclear(PQexec(pg, "ROLLBACK"));
            goto out;
        }
        PQclear(x);
        PGresult *ins =
            run(pg, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, v);
        if (!ins) {
            PQclear(PQexec(pg, "ROLLBACK"));
            goto out;
        }
        PQclear(ins);
        if (!(r = run(pg, "COMMIT", 0, NULL))) goto out;
        PQclear(r);
        printf("applied %s\n", m[i].name);
    }
    if (n && cur >= m[n - 1].version) printf("schema up to date (version %d)\n", cur);
    rc = 0;
out:
    PQfinish(pg);
    return rc;
}

int admin_check_schema(const char *conninfo, const char *sql_dir)
{
    struct mig m[MAX_MIGRATIONS];
    int n = list_migrations(sql_dir, m);
    if (n < 0) return -1;
    PGconn *pg = connect_db(conninfo);
    if (!pg) return -1;
    int cur = db_version(pg);
    PQfinish(pg);
    int want = n ? m[n - 1].version : 0;
    if (cur == want) return want;
    if (cur < want)
        fprintf(stderr,
                "parleyd: database schema is at version %d, behind this parleyd (%d): "
                "run 'parleyd migrate'\n",
                cur < 0 ? 0 : cur, want);
    else
        fprintf(stderr,
                "parleyd: database schema is at version %d, ahead of this parleyd (%d): "
                "upgrade parleyd\n",
                cur, want);
    return -1;
}

/* ---- admin commands ------------------------------------------------------ */

static int print_one(PGconn *pg, const char *sql, int n, const char *const *v)
{
    PGresult *r = run(pg, sql, n, v);
    if (!r) return 1;
    if (PQntuples(r) != 1) {
        fprintf(stderr, "parleyd: not found\n");
        PQclear(r);
        return 1;
    }
    printf("%s\n", PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

static char *make_token(PGconn *pg, const char *person, const char *ws, const char *ttl,
                        char text[AUTH_TOKEN_CHARS + 1])
{
    unsigned char hash[AUTH_HASH_BYTES];
    char hex[2 * AUTH_HASH_BYTES + 3] = "\\x";
    auth_token_new(text, hash);
    for (int i = 0; i < AUTH_HASH_BYTES; i++)
        sprintf(hex + 2 + 2 * i, "%02x", hash[i]);
    const char *v[4] = {hex, person, ws, ttl};
    PGresult *r = run(pg,
                      "INSERT INTO access_tokens (hash, person_id, workspace_id, kind, expires_at)"
                      " SELECT $1::bytea, $2::uuid, $3::uuid, 'api',"
                      "        CASE WHEN $4::int8 > 0 THEN now() + make_interval(secs => $4::int8)"
                      "        END"
                      "  WHERE EXISTS (SELECT 1 FROM workspace_members"
                      "                 WHERE person_id = $2::uuid AND workspace_id = $3::uuid)",
                      4, v);
    if (!r) return NULL;
    int ok = atoi(PQcmdTuples(r)) == 1;
    PQclear(r);
    if (!ok) fprintf(stderr, "parleyd: that person is not in that workspace\n");
    return ok ? text : NULL;
}

static const char *valid_role(const char *r)
{
    static const char *const roles[] = {"owner", "admin", "keyuser", "support", "member", "avatar"};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        if (!strcmp(r, roles[i])) return r;
    return NULL;
}

static int cmd_create_person(PGconn *pg, const char *ws, const char *email, const char *role)
{
    if (!valid_role(role)) {
        fprintf(stderr, "parleyd: role must be owner, admin, keyuser, support, member or avatar\n");
        return 1;
    }
    const char *v[3] = {ws, email, role};
    return print_one(
        pg,
        /* The operator vouches for the address; an avatar has
         * none (the argument names it instead). */
        "WITH p AS ("
        "  INSERT INTO people (email, email_verified_at, display_name, is_avatar)"
        "  SELECT CASE WHEN $3 = 'avatar' THEN NULL ELSE lower($2) END,"
        "   CASE WHEN $3 <> 'avatar' THEN now() END,"
        "   CASE WHEN $3 = 'avatar' THEN $2 END, $3 = 'avatar'"
        "  ON CONFLICT (email) DO UPDATE SET email = EXCLUDED.email,"
        "   email_verified_at = coalesce(people.email_verified_at, now()) RETURNING id),"
        " m AS ("
        "  INSERT INTO workspace_members (workspace_id, person_id, role)"
        "  SELECT $1::uuid, id, $3 FROM p"
        "  ON CONFLICT (workspace_id, person_id) DO UPDATE SET role = EXCLUDED.role,"
        "     removed_at = NULL RETURNING person_id)"
        " SELECT person_id FROM m",
        3, v);
}

/* Runs a statement whose first value is wanted (id into out). 0 or -1. */
static int one_value(PGconn *pg, const char *sql, int n, const char *const *v, char *out,
                     size_t cap)
{
    PGresult *r = run(pg, sql, n, v);
    if (!r) return -1;
    int ok = PQntuples(r) == 1;
    if (ok && out) snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
    if (!ok) fprintf(stderr, "parleyd: seed-demo: a statement found nothing\n");
    PQclear(r);
    return ok ? 0 : -1;
}

/* A password for a demo account: 4 groups of 4 lower-case letters and
 * digits (about 82 bits), passing the same policy as sign-up. */
static int demo_password(const char *email, char out[24])
{
    static const char alphabet[] = "abcdefghjkmnpqrstuvwxyz23456789";
    for (int attempt = 0; attempt < 10; attempt++) {
        int k = 0;
        for (int i = 0; i < 16; i++) {
            if (i && i % 4 == 0) out[k++] = '-';
            out[k++] = alphabet[randombytes_uniform(sizeof alphabet - 1)];
        }
        out[k] = 0;
        char why[200];
        struct pw_context ctx = {email, NULL, NULL};
        if (!pwpolicy_check(out, &ctx, why, sizeof why)) return 0;
    }
    return -1;
}

/* The demo workspace's guidelines: one rule of each kind a newcomer can
 * try from the chat (see protocol/GUIDELINES.md). */
static const char DEMO_RULES[] =
    "{\"rules\": ["
    "{\"id\": \"language\", \"kind\": \"words\", \"terms\": [\"darn\", \"rubbish\"],"
    " \"action\": \"mask\"},"
    "{\"id\": \"tickets\", \"kind\": \"regex\", \"pattern\": \"ticket-[0-9]+\","
    " \"action\": \"hold\"},"
    "{\"id\": \"secrets\", \"kind\": \"regex\", \"pattern\": \"password\\\\s*[:=]\","
    " \"action\": \"reject\"},"
    "{\"id\": \"privacy\", \"kind\": \"pii\", \"detect\": [\"card\", \"iban\"],"
    " \"action\": \"redact\"}"
    "]}";

/* Posts one row of a room's log as sender (index into ids); seq is the
 * room's next. parent: 0, or the seq a reply answers. */
static int demo_post(PGconn *pg, const char *room, const char *sender, int seq, const char *kind,
                     int parent, const char *body)
{
    char s[16], p[16], cmid[32];
    snprintf(s, sizeof s, "%d", seq);
    snprintf(p, sizeof p, "%d", parent);
    snprintf(cmid, sizeof cmid, "seed-%d", seq);
    const char *v[7] = {room, s, sender, cmid, body, kind, parent ? p : NULL};
    PGresult *r = run(pg,
                      "INSERT INTO messages (room_id, seq, sender_id, client_msg_id, body, kind,"
                      " parent_seq, created_at)"
                      " VALUES ($1, $2::int8, $3, $4, $5, $6, $7::int8,"
                      "  now() - make_interval(mins => 60 - $2::int8::int * 5))",
                      7, v);
    if (!r) return -1;
    PQclear(r);
    return 0;
}

/* A like (stars 0) or a rating, and the message row's aggregates. */
static int demo_vote(PGconn *pg, const char *room, int seq, const char *person, int stars)
{
    char s[16], st[8];
    snprintf(s, sizeof s, "%d", seq);
    snprintf(st, sizeof st, "%d", stars);
    const char *v[4] = {room, s, person, st};
    PGresult *r = run(pg,
                      stars ? "WITH x AS (INSERT INTO ratings (room_id, seq, person_id, stars)"
                              " VALUES ($1, $2, $3, $4::int2) RETURNING 1)"
                              " UPDATE messages SET star_count = star_count + 1,"
                              "  star_sum = star_sum + $4::int, votes_v = votes_v + 1"
                              " WHERE room_id = $1 AND seq = $2 AND EXISTS (SELECT 1 FROM x)"
                            : "WITH x AS (INSERT INTO likes (room_id, seq, person_id)"
                              " VALUES ($1, $2, $3) RETURNING 1)"
                              " UPDATE messages SET like_count = like_count + 1,"
                              "  votes_v = votes_v + 1"
                              " WHERE room_id = $1 AND seq = $2 AND $4::int = 0"
                              "  AND EXISTS (SELECT 1 FROM x)",
                      4, v);
    if (!r) return -1;
    PQclear(r);
    return 0;
}

/* Everything `seed_demo` makes, in one transaction. */
static int seed_demo_tx(PGconn *pg)
{
    struct gl_error ge;
    struct gl_set *rules = gl_compile(DEMO_RULES, sizeof DEMO_RULES - 1, &ge);
    if (!rules) {
        fprintf(stderr, "parleyd: seed-demo: guidelines: %s\n", ge.message);
        return -1;
    }
    gl_free(rules);
    if (pwpolicy_init() || auth_password_init(2, 19)) return -1;
    static const struct {
        const char *email, *role, *first, *last;
    } people[] = {{"consultant@demo.example", "owner", "Cora", "Consultant"},
                  {"alice@demo.example", "member", "Alice", "Adams"},
                  {"bob@demo.example", "member", "Bob", "Berg"}};
    enum { NP = 3 };
    char ws[64], id[NP][64], pw[NP][24], tok[NP][AUTH_TOKEN_CHARS + 1];
    for (int i = 0; i < NP; i++) {
        char hash[AUTH_PW_HASH_MAX];
        if (demo_password(people[i].email, pw[i]) || auth_password_hash(pw[i], strlen(pw[i]), hash))
            return -1;
        /* The operator vouches for the demo addresses: verified now. */
        const char *v[4] = {people[i].email, hash, people[i].first, people[i].last};
        if (one_value(pg,
                      "INSERT INTO people (email, email_verified_at, password_hash, first_name,"
                      " last_name, display_name) VALUES ($1, now(), $2, $3, $4, $3 || ' ' || $4)"
                      " ON CONFLICT (email) DO UPDATE SET password_hash = EXCLUDED.password_hash,"
                      "  email_verified_at = coalesce(people.email_verified_at, now())"
                      " RETURNING id",
                      4, v, id[i], sizeof id[i]))
            return -1;
    }
    const char *wv[1] = {id[0]};
    if (one_value(pg, "INSERT INTO workspaces (name, created_by) VALUES ('Demo', $1) RETURNING id",
                  1, wv, ws, sizeof ws))
        return -1;
    for (int i = 0; i < NP; i++) {
        const char *v[3] = {ws, id[i], people[i].role};
        if (one_value(pg,
                      "INSERT INTO workspace_members (workspace_id, person_id, role)"
                      " VALUES ($1, $2, $3) RETURNING person_id",
                      3, v, NULL, 0) ||
            !make_token(pg, id[i], ws, "0", tok[i]))
            return -1;
    }
    /* An avatar (bot) owned by the consultant, with its own token. */
    char bot[64], bot_tok[AUTH_TOKEN_CHARS + 1];
    const char *bv[2] = {ws, id[0]};
    if (one_value(pg,
                  "WITH p AS (INSERT INTO people (display_name, is_avatar)"
                  "  VALUES ('Demo Bot', true) RETURNING id),"
                  " m AS (INSERT INTO workspace_members (workspace_id, person_id, role)"
                  "  SELECT $1::uuid, id, 'avatar' FROM p),"
                  " a AS (INSERT INTO avatars (person_id, workspace_id, persona, owner_id,"
                  "  created_by) SELECT id, $1::uuid, 'Answers questions about the demo.',"
                  "  $2::uuid, $2::uuid FROM p)"
                  " SELECT id FROM p",
                  2, bv, bot, sizeof bot) ||
        !make_token(pg, bot, ws, "0", bot_tok))
        return -1;
    const char *gv[3] = {ws, DEMO_RULES, id[0]};
    PGresult *r = run(pg,
                      "WITH g AS (INSERT INTO guidelines (workspace_id, rules, updated_by)"
                      "  VALUES ($1, $2::jsonb, $3) RETURNING rules)"
                      " INSERT INTO guideline_audit (workspace_id, actor_id, after)"
                      " SELECT $1, $3, rules FROM g",
                      3, gv);
    if (!r) return -1;
    PQclear(r);
    char chat[64], dlg[64];
    const char *cv[2] = {ws, "general"}, *dv[2] = {ws, "ideas"};
    if (one_value(pg,
                  "INSERT INTO rooms (workspace_id, name, kind) VALUES ($1, $2, 'chat')"
                  " RETURNING id",
                  2, cv, chat, sizeof chat) ||
        one_value(pg,
                  "INSERT INTO rooms (workspace_id, name, kind) VALUES ($1, $2, 'dialogue')"
                  " RETURNING id",
                  2, dv, dlg, sizeof dlg))
        return -1;
    /* The chat: the last message went through the mask rule, and a held
     * one waits for the consultant in the moderation queue. */
    if (demo_post(pg, chat, id[0], 1, "message", 0,
                  "Welcome to the demo! Try the guidelines in this room: swearing is "
                  "masked, ticket numbers are held for review, passwords are refused.") ||
        demo_post(pg, chat, id[1], 2, "message", 0, "Hi Cora, glad to be here.") ||
        demo_post(pg, chat, id[2], 3, "message", 0,
                  "The kickoff questions are in the ideas room: rate them with stars.") ||
        demo_post(pg, chat, id[1], 4, "message", 0, "That **** printer again!") ||
        demo_vote(pg, chat, 1, id[1], 0) || demo_vote(pg, chat, 1, id[2], 0) ||
        demo_vote(pg, chat, 3, id[0], 0))
        return -1;
    const char *pv[5] = {chat, id[2], "Could someone look at ticket-4711 before Friday?", ws,
                         id[1]};
    if (!(r = run(pg,
                  "WITH h AS (INSERT INTO guideline_hits (workspace_id, room_id, person_id,"
                  "  rule_id, action, kind) VALUES ($4, $1, $5, 'language', 'mask', 'words'),"
                  "  ($4, $1, $2, 'tickets', 'hold', 'regex'))"
                  " INSERT INTO pending (room_id, sender_id, client_msg_id, body, state, rules)"
                  " VALUES ($1, $2, 'seed-held-1', $3, 'held', '{tickets}')",
                  5, pv)))
        return -1;
    PQclear(r);
    /* The dialogue: entries, replies under them, stars. */
    if (demo_post(pg, dlg, id[0], 1, "entry", 0, "What should we improve first in onboarding?") ||
        demo_post(pg, dlg, id[1], 2, "entry", 0, "A shorter sign-up form.") ||
        demo_post(pg, dlg, id[2], 3, "reply", 2, "Agreed, and fewer confirmation emails.") ||
        demo_post(pg, dlg, id[2], 4, "entry", 0, "A checklist for the first week.") ||
        demo_post(pg, dlg, id[0], 5, "reply", 4, "Good idea: I will draft one for Monday.") ||
        demo_vote(pg, dlg, 2, id[0], 5) || demo_vote(pg, dlg, 2, id[2], 4) ||
        demo_vote(pg, dlg, 4, id[0], 4) || demo_vote(pg, dlg, 4, id[1], 3) ||
        demo_vote(pg, dlg, 3, id[1], 5))
        return -1;
    const char *sv[2] = {chat, dlg};
    if (!(r = run(pg,
                  "UPDATE rooms SET last_seq = (SELECT max(seq) FROM messages m"
                  " WHERE m.room_id = rooms.id) WHERE id IN ($1, $2)",
                  2, sv)))
        return -1;
    PQclear(r);
    /* Printed once everything is in: the caller commits next. */
    printf("workspace %s (Demo)\nroom %s (general, chat)\nroom %s (ideas, dialogue)\n", ws, chat,
           dlg);
    for (int i = 0; i < NP; i++)
        printf("person %s (%s, %s) password %s token %s\n", id[i], people[i].email, people[i].role,
               pw[i], tok[i]);
    printf("avatar %s (Demo Bot) token %s\n", bot, bot_tok);
    return 0;
}

/* A demo workspace a newcomer can explore at once: three people who can
 * sign in (passwords printed), an avatar with a token, guidelines, a chat
 * room with messages and likes and one held for review, a dialogue room
 * with entries, replies and stars. All or nothing. */
static int seed_demo(PGconn *pg)
{
    PGresult *r = run(pg, "BEGIN", 0, NULL);
    if (!r) return 1;
    PQclear(r);
    if (seed_demo_tx(pg)) {
        PQclear(PQexec(pg, "ROLLBACK"));
        return 1;
    }
    r = run(pg, "COMMIT", 0, NULL);
    if (!r) return 1;
    PQclear(r);
    fflush(stdout);
    return 0;
}

/* A workspace with `rooms` rooms and `people` people (person i in room
 * i % rooms), each with a token: what a load test needs, in one transaction.
 * Prints `room <id>` lines, then `token <room index> <token>` lines. */
static int load_fixture(PGconn *pg, int people, int rooms)
{
    if (people < 1 || rooms < 1 || people > 1000000 || rooms > people) {
        fprintf(stderr, "parleyd: load-fixture: need 1 <= rooms <= people <= 1000000\n");
        return 2;
    }
    PGresult *r = run(pg, "BEGIN", 0, NULL);
    if (!r) return 1;
    PQclear(r);
    r = run(pg, "INSERT INTO workspaces (name) VALUES ('load') RETURNING id", 0, NULL);
    if (!r) return 1;
    char ws[64];
    snprintf(ws, sizeof ws, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    char nrooms[16];
    snprintf(nrooms, sizeof nrooms, "%d", rooms);
    const char *v[2] = {ws, nrooms};
    r = run(pg,
            "INSERT INTO rooms (workspace_id, name)"
            " SELECT $1::uuid, 'load-' || g FROM generate_series(1, $2::int) g RETURNING id",
            2, v);
    if (!r) return 1;
    for (int i = 0; i < PQntuples(r); i++)
        printf("room %s\n", PQgetvalue(r, i, 0));
    PQclear(r);
    for (int i = 0; i < people; i++) {
        char email[96];
        snprintf(email, sizeof email, "load-%s-%d@load.invalid", ws, i);
        const char *pv[2] = {ws, email};
        r = run(pg,
                "WITH p AS (INSERT INTO people (email, email_verified_at) VALUES ($2, now())"
                "  RETURNING id)"
                " INSERT INTO workspace_members (workspace_id, person_id, role)"
                " SELECT $1::uuid, id, 'member' FROM p RETURNING person_id",
                2, pv);
        if (!r) return 1;
        char person[64], tok[AUTH_TOKEN_CHARS + 1];
        snprintf(person, sizeof person, "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
        if (!make_token(pg, person, ws, "0", tok)) return 1;
        printf("token %d %s\n", i % rooms, tok);
    }
    r = run(pg, "COMMIT", 0, NULL);
    if (!r) return 1;
    PQclear(r);
    return 0;
}

static int set_password(PGconn *pg, const char *email)
{
    char pw[AUTH_PW_MAX + 2], hash[AUTH_PW_HASH_MAX];
    if (!fgets(pw, sizeof pw, stdin)) return 2;
    pw[strcspn(pw, "\r\n")] = 0;
    size_t len = strlen(pw);
    /* as the API counts (jsonv.h, JV_SECRET): characters at least, bytes at most */
    if (!jv_utf8_text(pw, len, true) || pp_utf8_chars(pw, len) < AUTH_PW_MIN || len > AUTH_PW_MAX) {
        fprintf(stderr, "parleyd: a password has at least %d characters and at most %d bytes\n",
                AUTH_PW_MIN, AUTH_PW_MAX);
        return 2;
    }
    /* The same rules as sign-up: an operator's choice is no better. */
    char why[200];
    struct pw_context ctx = {email, NULL, NULL};
    if (pwpolicy_init()) return 1;
    if (pwpolicy_check(pw, &ctx, why, sizeof why)) {
        fprintf(stderr, "parleyd: %s\n", why);
        return 2;
    }
    if (auth_password_init(2, 19) || auth_password_hash(pw, len, hash)) return 1;
    const char *v[2] = {email, hash};
    return print_one(pg,
                     "UPDATE people SET password_hash = $2 WHERE email = lower($1)"
                     " AND NOT is_avatar RETURNING 'ok'",
                     2, v);
}

static int operator_token(const char *path)
{
    char tok[AUTH_TOKEN_CHARS + 1];
    unsigned char hash[AUTH_HASH_BYTES];
    auth_token_new(tok, hash);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "parleyd: cannot write %s\n", path);
        if (fd >= 0) close(fd);
        return 1;
    }
    fprintf(f, "%s\n", tok);
    return fclose(f) ? 1 : 0;
}

static void admin_usage(void)
{
    fprintf(stderr,
            "usage: parleyd admin [--pg CONNINFO] <command>\n"
            "  create-workspace <name>                        prints the workspace id\n"
            "  create-person <workspace> <email> [role]       prints the person id\n"
            "  create-room <workspace> <name> [workspace|members] [chat|dialogue]\n"
            "                                                 prints the room id\n"
            "  add-member <room> <person>                     prints ok\n"
            "  create-token <person> <workspace> [ttl_seconds] prints the token (shown once)\n"
            "  revoke-tokens <person>                         prints how many were revoked\n"
            "  seed-demo                                      a demo workspace: people with "
            "passwords,\n"
            "                                                 an avatar, guidelines, rooms with "
            "content\n"
            "  set-password <email>                           reads the password from stdin\n"
            "  operator-token <file>                          writes a new operator token\n"
            "                                                 (for --operator-token-file)\n"
            "  load-fixture <people> <rooms>                  a load-test workspace with tokens\n");
}

int admin_main(const char *conninfo, int argc, char **argv)
{
    if (argc < 1 || !strcmp(argv[0], "help")) {
        admin_usage();
        return argc < 1 ? 2 : 0;
    }
    if (auth_init()) return 1;
    PGconn *pg = connect_db(conninfo);
    if (!pg) return 1;
    const char *cmd = argv[0];
    int rc = 2;
#define NEED(k)                                                                                    \
    if (argc < (k) + 1) {                                                                          \
        admin_usage();                                                                             \
        goto out;                                                                                  \
    }
    if (!strcmp(cmd, "create-workspace")) {
        NEED(1);
        const char *v[1] = {argv[1]};
        rc = print_one(pg, "INSERT INTO workspaces (name) VALUES ($1) RETURNING id", 1, v);
    } else if (!strcmp(cmd, "create-person")) {
        NEED(2);
        rc = cmd_create_person(pg, argv[1], argv[2], argc > 3 ? argv[3] : "member");
    } else if (!strcmp(cmd, "create-room")) {
        NEED(2);
        const char *v[4] = {argv[1], argv[2], argc > 3 ? argv[3] : "workspace",
                            argc > 4 ? argv[4] : "chat"};
        rc = print_one(pg,
                       "INSERT INTO rooms (workspace_id, name, visibility, kind)"
                       " VALUES ($1, $2, $3, $4) RETURNING id",
                       4, v);
    } else if (!strcmp(cmd, "add-member")) {
        NEED(2);
        const char *v[2] = {argv[1], argv[2]};
        rc = print_one(pg,
                       "INSERT INTO room_members (room_id, person_id)"
                       " SELECT r.id, wm.person_id FROM rooms r JOIN workspace_members wm"
                       "   ON wm.workspace_id = r.workspace_id AND wm.person_id = $2::uuid"
                       "  WHERE r.id = $1::uuid"
                       " ON CONFLICT DO NOTHING RETURNING 'ok'",
                       2, v);
    } else if (!strcmp(cmd, "create-token")) {
        NEED(2);
        char tok[AUTH_TOKEN_CHARS + 1];
        rc = make_token(pg, argv[1], argv[2], argc > 3 ? argv[3] : "0", tok) ? 0 : 1;
        if (!rc) printf("%s\n", tok);
    } else if (!strcmp(cmd, "revoke-tokens")) {
        NEED(1);
        const char *v[1] = {argv[1]};
        PGresult *r = run(pg,
                          "UPDATE access_tokens SET revoked_at = now()"
                          " WHERE person_id = $1::uuid AND revoked_at IS NULL",
                          1, v);
        rc = r ? 0 : 1;
        if (r) {
            printf("%s\n", PQcmdTuples(r));
            PQclear(r);
        }
    } else if (!strcmp(cmd, "load-fixture")) {
        NEED(2);
        rc = load_fixture(pg, atoi(argv[1]), atoi(argv[2]));
    } else if (!strcmp(cmd, "seed-demo")) {
        rc = seed_demo(pg);
    } else if (!strcmp(cmd, "set-password")) {
        NEED(1);
        rc = set_password(pg, argv[1]);
    } else if (!strcmp(cmd, "operator-token")) {
        NEED(1);
        rc = operator_token(argv[1]);
    } else {
        admin_usage();
    }
out:
    PQfinish(pg);
    return rc;
}
