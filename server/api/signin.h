/*
 * signin.h - the sign-in routes of the HTTP API: sign-up, address
 * verification and its resend, login, and redeeming an invitation, with the
 * password hashing and checking they hand to the thread pool (auth.h) and the
 * Redis rate limits in front of them.
 *
 * A password never reaches PostgreSQL, only its hash; an unknown address
 * costs the same hash as a known one, so neither answers nor timing tell
 * which addresses have accounts. Every attempt counts against its limits
 * before the password is checked; without Redis, sign-in refuses (503)
 * rather than run unlimited.
 *
 * Ownership: each route answers its request exactly once (directly or from
 * a callback) and keeps nothing after; secrets are wiped from the stack and
 * from the request once used.
 */
#ifndef PARLEY_SIGNIN_H
#define PARLEY_SIGNIN_H

#include <stddef.h>

struct http_req;

void signin_signup(struct http_req *r);
void signin_verify(struct http_req *r);
void signin_resend(struct http_req *r);
void signin_login(struct http_req *r);
void signin_redeem(struct http_req *r);

/* A secret that proves an address: its text goes only to the outbox, its
 * hash to verifications. Writes "<hash hex> <secret>" into out (cap >= 160). */
void signin_address_secret(char *out, size_t cap);

#endif
