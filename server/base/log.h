/*
 * log.h - one line per event in logfmt: `ts=... level=info msg="..." k=v`.
 * Never log message bodies, tokens or passwords: callers pass ids only.
 */
#ifndef PARLEY_LOG_H
#define PARLEY_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level l);
enum log_level log_get_level(void);
int log_parse_level(const char *s, enum log_level *out); /* 0 or -1 */

/* fmt continues the line after msg: pass `k=v` pairs, e.g. "conn=%llu". */
void log_msg(enum log_level l, const char *msg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_error(msg, ...) log_msg(LOG_ERROR, msg, __VA_ARGS__)
#define log_warn(msg, ...) log_msg(LOG_WARN, msg, __VA_ARGS__)
#define log_info(msg, ...) log_msg(LOG_INFO, msg, __VA_ARGS__)
#define log_debug(msg, ...)                                                                        \
    do {                                                                                           \
        if (log_get_level() >= LOG_DEBUG) log_msg(LOG_DEBUG, msg, __VA_ARGS__);                    \
    } while (0)

/* Routes libwebsockets' own logging through this logger. */
void log_lws_emit(int level, const char *line);

#endif
