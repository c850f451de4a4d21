/*
 * auth.h - access tokens with libsodium: 32 random bytes, handed to the
 * client once as base64url, stored only as their BLAKE2b-256 hash. A token
 * is looked up by its hash, so the stored secret never leaves the database
 * and a database leak does not leak usable tokens.
 */
#ifndef PARLEY_AUTH_H
#define PARLEY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define AUTH_TOKEN_BYTES 32
#define AUTH_TOKEN_CHARS 43 /* base64url, no padding */
#define AUTH_HASH_BYTES 32

/* Initialises libsodium; 0 or -1. */
int auth_init(void);
/* A new token (NUL-terminated text) and its hash. */
void auth_token_new(char text[AUTH_TOKEN_CHARS + 1], unsigned char hash[AUTH_HASH_BYTES]);
/* Hash of a presented token; -EINVAL if it is not a well-formed token. */
int auth_token_hash(const char *text, size_t len, unsigned char hash[AUTH_HASH_BYTES]);

/* ---- passwords ----------------------------------------------------------
 * argon2id through libsodium's crypto_pwhash_str: the stored text carries its
 * own parameters, so a hash made with weaker ones is recognised and replaced
 * at the next successful login. Hashing costs tens of milliseconds and 19+ MiB,
 * so the gateway only ever runs it on libuv's thread pool, never on the loop,
 * and bounds how many run or wait at once. */

#define AUTH_PW_MIN 10       /* characters of a password, at least (NIST 800-63B: 8) */
#define AUTH_PW_MAX 256      /* and at most: argon2 cost does not depend on it, but memory does */
#define AUTH_PW_HASH_MAX 128 /* crypto_pwhash_STRBYTES */
#define AUTH_PW_JOBS_MAX 64  /* hash/verify jobs running or queued at once */

/* Sets the argon2id cost (passes, memory in MiB) for new hashes and precomputes
 * a dummy hash so that a login for an unknown account costs as much as a real
 * one (no timing oracle for which emails have accounts). 0 or -1. */
int auth_password_init(unsigned ops, unsigned mem_mib);

/* Synchronous forms (admin CLI, tests). hash: 0 or -ENOMEM. verify: 0 on a
 * match, -EACCES otherwise; *rehash tells whether the stored parameters differ
 * from the current ones. */
int auth_password_hash(const char *pw, size_t len, char out[AUTH_PW_HASH_MAX]);
int auth_password_verify(const char *stored, const char *pw, size_t len, bool *rehash);

/* Result of an asynchronous job, on the loop thread. rc: 0 (hashed, or
 * verified), -EACCES (wrong password), -ENOMEM. newhash: the hash made (hash
 * job), or a rehash made after a successful verify with old parameters, else
 * NULL; valid during the call only. */
typedef void (*auth_pw_cb)(void *ud, int rc, const char *newhash);

/* Copies pw (wiped after use). stored NULL verifies against the dummy hash
 * and always fails. Returns 0, or -EBUSY when AUTH_PW_JOBS_MAX jobs are
 * already pending (the callback is then never called). */
int auth_password_hash_async(uv_loop_t *loop, const char *pw, size_t len, auth_pw_cb cb, void *ud);
int auth_password_verify_async(uv_loop_t *loop, const char *stored, const char *pw, size_t len,
                               auth_pw_cb cb, void *ud);

/* Jobs pending now (metrics). */
unsigned auth_password_jobs(void);

#endif
