/*
 * pwpolicy.h - which passwords are refused, as NIST SP 800-63B (5.1.1.2)
 * asks: length (AUTH_PW_MIN..AUTH_PW_MAX, checked with the body), words of
 * the account's own context (the email's local part, the names, the
 * service's name), and a maintained dictionary of common and cracked
 * passwords: libcrack2 with the word lists of Debian's cracklib-runtime.
 *
 * cracklib keeps no state between calls but is not documented as
 * thread-safe, so checks run on the loop thread only (a few milliseconds).
 */
#ifndef PARLEY_PWPOLICY_H
#define PARLEY_PWPOLICY_H

#include <stddef.h>

/* Opens the dictionary once to prove it is there: 0, or -1 (logged) so that
 * the gateway does not start without its word list. */
int pwpolicy_init(void);

/* The context a password must not contain; any may be NULL. */
struct pw_context {
    const char *email; /* the account's address (its local part is checked) */
    const char *first; /* first name */
    const char *last;  /* last name */
};

/* 0 when pw is acceptable; else -EINVAL and msg says which rule refused it
 * ("password: ..."), for a 400 weak_password answer. */
int pwpolicy_check(const char *pw, const struct pw_context *ctx, char *msg, size_t cap);

#endif
