#include "auth.h"

#include "mem.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

int auth_init(void)
{
    return sodium_init() < 0 ? -1 : 0;
}

static void hash_raw(const unsigned char raw[AUTH_TOKEN_BYTES], unsigned char hash[AUTH_HASH_BYTES])
{
    crypto_generichash(hash, AUTH_HASH_BYTES, raw, AUTH_TOKEN_BYTES, NULL, 0);
}

void auth_token_new(char text[AUTH_TOKEN_CHARS + 1], unsigned char hash[AUTH_HASH_BYTES])
{
    unsigned char raw[AUTH_TOKEN_BYTES];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(text, AUTH_TOKEN_CHARS + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    hash_raw(raw, hash);
    sodium_memzero(raw, sizeof raw);
}

int auth_token_hash(const char *text, size_t len, unsigned char hash[AUTH_HASH_BYTES])
{
    unsigned char raw[AUTH_TOKEN_BYTES];
    size_t n = 0;
    if (len != AUTH_TOKEN_CHARS) return -EINVAL;
    if (sodium_base642bin(raw, sizeof raw, text, len, NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) ||
        n != sizeof raw)
        return -EINVAL;
    hash_raw(raw, hash);
    sodium_memzero(raw, sizeof raw);
    return 0;
}

/* ---- passwords ----------------------------------------------------------- */

static unsigned long long pw_ops = 2;         /* argon2id passes */
static size_t pw_mem = 19u << 20;             /* argon2id memory */
static char pw_dummy[crypto_pwhash_STRBYTES]; /* verified when the account is unknown */
static unsigned pw_jobs;                      /* pending async jobs (loop thread only) */

_Static_assert(AUTH_PW_HASH_MAX >= crypto_pwhash_STRBYTES, "hash buffer");

int auth_password_init(unsigned ops, unsigned mem_mib)
{
    pw_ops = ops;
    pw_mem = (size_t)mem_mib << 20;
    char pw[32];
    randombytes_buf(pw, sizeof pw);
    int rc = crypto_pwhash_str_alg(pw_dummy, pw, sizeof pw, pw_ops, pw_mem,
                                   crypto_pwhash_ALG_ARGON2ID13);
    sodium_memzero(pw, sizeof pw);
    return rc ? -1 : 0;
}

int auth_password_hash(const char *pw, size_t len, char out[AUTH_PW_HASH_MAX])
{
    return crypto_pwhash_str_alg(out, pw, len, pw_ops, pw_mem, crypto_pwhash_ALG_ARGON2ID13)
               ? -ENOMEM
               : 0;
}

int auth_password_verify(const char *stored, const char *pw, size_t len, bool *rehash)
{
    *rehash = false;
    if (crypto_pwhash_str_verify(stored, pw, len)) return -EACCES;
    *rehash = crypto_pwhash_str_needs_rehash(stored, pw_ops, pw_mem) != 0;
    return 0;
}

/* One job: everything it needs is copied in, so the loop side may forget it. */
struct pw_job {
    uv_work_t w;                         /* libuv work request */
    auth_pw_cb cb;                       /* result, on the loop */
    void *ud;                            /* for cb */
    bool verify;                         /* verify (else hash) */
    bool dummy;                          /* verify against pw_dummy: always fails */
    int rc;                              /* result */
    bool have_new;                       /* out holds a new hash */
    char stored[crypto_pwhash_STRBYTES]; /* hash to verify against */
    char out[crypto_pwhash_STRBYTES];    /* new hash */
    size_t len;                          /* password length */
    char pw[AUTH_PW_MAX];                /* password, wiped after the work */
};

static void pw_work(uv_work_t *w)
{
    struct pw_job *j = w->data;
    if (!j->verify) {
        j->rc = auth_password_hash(j->pw, j->len, j->out);
        j->have_new = j->rc == 0;
    } else {
        bool rehash = false;
        j->rc = auth_password_verify(j->dummy ? pw_dummy : j->stored, j->pw, j->len, &rehash);
        if (j->dummy) j->rc = -EACCES;
        if (!j->rc && rehash) j->have_new = auth_password_hash(j->pw, j->len, j->out) == 0;
    }
    sodium_memzero(j->pw, sizeof j->pw);
}

static void pw_done(uv_work_t *w, int status)
{
    struct pw_job *j = w->data;
    pw_jobs--;
    int rc = status ? -ENOMEM : j->rc;
    j->cb(j->ud, rc, !rc && j->have_new ? j->out : NULL);
    sodium_memzero(j, sizeof *j);
    mem_free(j);
}

static int pw_submit(uv_loop_t *loop, bool verify, const char *stored, const char *pw, size_t len,
                     auth_pw_cb cb, void *ud)
{
    if (pw_jobs >= AUTH_PW_JOBS_MAX) return -EBUSY;
    if (len > AUTH_PW_MAX) return -EINVAL;
    if (stored && strlen(stored) >= crypto_pwhash_STRBYTES) stored = NULL; /* not ours: fails */
    struct pw_job *j = mem_calloc(1, sizeof *j);
    if (!j) return -ENOMEM;
    j->w.data = j;
    j->cb = cb;
    j->ud = ud;
    j->verify = verify;
    j->dummy = verify && !stored;
    if (stored) memcpy(j->stored, stored, strlen(stored) + 1);
    memcpy(j->pw, pw, len);
    j->len = len;
    int rc = uv_queue_work(loop, &j->w, pw_work, pw_done);
    if (rc) {
        sodium_memzero(j, sizeof *j);
        mem_free(j);
        return rc;
    }
    pw_jobs++;
    return 0;
}

int auth_password_hash_async(uv_loop_t *loop, const char *pw, size_t len, auth_pw_cb cb, void *ud)
{
    return pw_submit(loop, false, NULL, pw, len, cb, ud);
}

int auth_password_verify_async(uv_loop_t *loop, const char *stored, const char *pw, size_t len,
                               auth_pw_cb cb, void *ud)
{
    return pw_submit(loop, true, stored, pw, len, cb, ud);
}

unsigned auth_password_jobs(void)
{
    return pw_jobs;
}
