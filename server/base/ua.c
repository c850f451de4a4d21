#include "ua.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* Whether needle occurs in the first len bytes of s (case-insensitive when
 * nocase): User-Agent strings are not NUL-terminated in lws's buffer. */
static bool has(const char *s, size_t len, const char *needle, bool nocase)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++) {
        size_t k = 0;
        while (k < n &&
               (nocase ? tolower((unsigned char)s[i + k]) == tolower((unsigned char)needle[k])
                       : s[i + k] == needle[k]))
            k++;
        if (k == n) return true;
    }
    return false;
}

static bool starts(const char *s, size_t len, const char *prefix)
{
    size_t n = strlen(prefix);
    return len >= n && !strncasecmp(s, prefix, n);
}

static const char *os_of(const char *s, size_t n)
{
    /* Order matters: iOS and Android strings also name Mac OS X and Linux. */
    if (has(s, n, "iPad", false)) return "iPadOS";
    if (has(s, n, "iPhone", false) || has(s, n, "iPod", false)) return "iOS";
    if (has(s, n, "Android", false)) return "Android";
    if (has(s, n, "CrOS", false)) return "ChromeOS";
    if (has(s, n, "Windows", false)) return "Windows";
    if (has(s, n, "Macintosh", false) || has(s, n, "Mac OS X", false)) return "macOS";
    if (has(s, n, "Linux", false) || has(s, n, "X11", false)) return "Linux";
    return "Other";
}

static const char *browser_of(const char *s, size_t n)
{
    if (has(s, n, "parley-sdk", true) || starts(s, n, "parley-")) return "Parley SDK";
    if (has(s, n, "bot", true) || has(s, n, "crawler", true) || has(s, n, "spider", true))
        return "Bot";
    if (starts(s, n, "curl/")) return "curl";
    if (starts(s, n, "node") || has(s, n, "node-fetch", true) || has(s, n, "undici", true))
        return "Node.js";
    /* Chromium derivatives carry "Chrome/" too: they are checked first. */
    if (has(s, n, "Edg/", false) || has(s, n, "EdgA/", false) || has(s, n, "EdgiOS/", false) ||
        has(s, n, "Edge/", false))
        return "Edge";
    if (has(s, n, "OPR/", false) || has(s, n, "Opera", false)) return "Opera";
    if (has(s, n, "SamsungBrowser/", false)) return "Samsung Internet";
    if (has(s, n, "Electron/", false)) return "Electron";
    if (has(s, n, "Firefox/", false) || has(s, n, "FxiOS/", false)) return "Firefox";
    if (has(s, n, "Chrome/", false) || has(s, n, "CriOS/", false) || has(s, n, "Chromium/", false))
        return "Chrome";
    if (has(s, n, "Safari/", false) && has(s, n, "Version/", false)) return "Safari";
    return "Other";
}

struct ua_info ua_parse(const char *ua, size_t len)
{
    struct ua_info i = {"Other", "Other"};
    if (!ua || !len) return i;
    i.os = os_of(ua, len);
    i.browser = browser_of(ua, len);
    return i;
}
