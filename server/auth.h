/*
 * auth.h - access tokens with libsodium: 32 random bytes, handed to the
 * client once as base64url, stored only as their BLAKE2b-256 hash. A token
 * is looked up by its hash, so the stored secret never leaves the database
 * and a database leak does not leak usable tokens.
 */
#ifndef PARLEY_AUTH_H
#define PARLEY_AUTH_H

#include <stddef.h>

#define AUTH_TOKEN_BYTES 32
#define AUTH_TOKEN_CHARS 43 /* base64url, no padding */
#define AUTH_HASH_BYTES 32

/* Initialises libsodium; 0 or -1. */
int auth_init(void);
/* A new token (NUL-terminated text) and its hash. */
void auth_token_new(char text[AUTH_TOKEN_CHARS + 1], unsigned char hash[AUTH_HASH_BYTES]);
/* Hash of a presented token; -EINVAL if it is not a well-formed token. */
int auth_token_hash(const char *text, size_t len, unsigned char hash[AUTH_HASH_BYTES]);

#endif
