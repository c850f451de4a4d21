#include "pwpolicy.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
/* crack.h uses size_t without including stddef.h (included by pwpolicy.h). */
#include <crack.h>

int pwpolicy_init(void)
{
    char err[256] = "";
    /* The Debian-specific check reports a missing or unreadable dictionary
     * instead of answering as if every password were fine. */
    if (!__DEBIAN_SPECIFIC__SafeFascistCheck("parley-probe-9f3a", GetDefaultCracklibDict(), err,
                                             sizeof err)) {
        log_error("password dictionary unavailable (install cracklib-runtime)",
                  "path=%s error=\"%s\"", GetDefaultCracklibDict(), strerror(errno));
        return -1;
    }
    return 0;
}

/* Case-insensitive: does hay contain needle (needle at least min bytes)? */
static bool contains(const char *hay, const char *needle, size_t nlen, size_t min)
{
    if (nlen < min) return false;
    for (const char *h = hay; *h; h++) {
        size_t i = 0;
        while (i < nlen && h[i] &&
               tolower((unsigned char)h[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == nlen) return true;
    }
    return false;
}

/* The email's local part, whole and in its runs of letters ("ina.berg77":
 * "berg"): a password built on them is the first guess of anyone who knows
 * the address. */
static bool has_local_part(const char *pw, const char *email)
{
    const char *at = email ? strchr(email, '@') : NULL;
    if (!at) return false;
    if (contains(pw, email, (size_t)(at - email), 3)) return true;
    for (const char *s = email; s < at;) {
        size_t n = 0;
        while (s + n < at && isalpha((unsigned char)s[n]))
            n++;
        if (contains(pw, s, n, 4)) return true;
        s += n ? n : 1;
    }
    return false;
}

int pwpolicy_check(const char *pw, const struct pw_context *ctx, char *msg, size_t cap)
{
    static const char service[] = "parley";
    const char *first = ctx ? ctx->first : NULL, *last = ctx ? ctx->last : NULL;
    const char *email = ctx ? ctx->email : NULL;
    if (has_local_part(pw, email)) {
        snprintf(msg, cap, "password: refused by the context rule: it contains your email address");
        return -EINVAL;
    }
    if ((first && contains(pw, first, strlen(first), 3)) ||
        (last && contains(pw, last, strlen(last), 3))) {
        snprintf(msg, cap, "password: refused by the context rule: it contains your name");
        return -EINVAL;
    }
    if (contains(pw, service, sizeof service - 1, 1)) {
        snprintf(msg, cap, "password: refused by the context rule: it contains the service's name");
        return -EINVAL;
    }
    /* cracklib's checks: dictionary words and their mangled forms, too few
     * distinct characters, keyboard and other systematic sequences. */
    char user[64] = "";
    const char *at = email ? strchr(email, '@') : NULL;
    if (at) snprintf(user, sizeof user, "%.*s", (int)(at - email), email);
    char gecos[256];
    snprintf(gecos, sizeof gecos, "%s %s", first ? first : "", last ? last : "");
    const char *why = FascistCheckUser(pw, GetDefaultCracklibDict(), user[0] ? user : "-", gecos);
    if (why) {
        snprintf(msg, cap, "password: refused by the dictionary rule: %s", why);
        return -EINVAL;
    }
    return 0;
}
