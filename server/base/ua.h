/*
 * ua.h - User-Agent strings reduced to family names for the visit log: an
 * operating system family and a browser family, nothing finer (no versions,
 * no device models), so the log keeps what an admin needs and no fingerprint.
 * Pure functions, no allocation, no global state.
 */
#ifndef PARLEY_UA_H
#define PARLEY_UA_H

#include <stddef.h>

/* OS: Windows, macOS, iOS, iPadOS, Android, ChromeOS, Linux, Other.
 * Browser: Edge, Opera, Samsung Internet, Firefox, Chrome, Safari, Electron,
 * curl, Node.js, Parley SDK, Bot, Other. */
struct ua_info {
    const char *os;      /* static string */
    const char *browser; /* static string */
};

/* ua may be NULL or not NUL-terminated: at most len bytes are read. */
struct ua_info ua_parse(const char *ua, size_t len);

#endif
