#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum log_level cur_level = LOG_INFO;
static const char *const names[] = {"error", "warn", "info", "debug"};

void log_set_level(enum log_level l)
{
    cur_level = l;
}

enum log_level log_get_level(void)
{
    return cur_level;
}

int log_parse_level(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOG_DEBUG; i++)
        if (!strcmp(s, names[i])) {
            *out = (enum log_level)i;
            return 0;
        }
    return -1;
}

void log_msg(enum log_level l, const char *msg, const char *fmt, ...)
{
    if (l > cur_level) return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n =
        snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"%s\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000, names[l], msg);
    if (n < 0) return;
    if ((size_t)n < sizeof line - 2 && fmt && *fmt) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
        va_end(ap);
        if (m > 0) n += m;
    }
    if ((size_t)n >= sizeof line - 1) n = sizeof line - 2;
    line[n++] = '\n';
    /* One write per line so lines from concurrent processes do not interleave. */
    fwrite(line, 1, (size_t)n, stderr);
}

void log_lws_emit(int level, const char *line)
{
    /* lws lines end in '\n' and may contain quotes; keep them readable. */
    char clean[512];
    size_t j = 0;
    for (size_t i = 0; line[i] && j < sizeof clean - 1; i++) {
        char ch = line[i];
        if (ch == '\n' || ch == '\r') continue;
        clean[j++] = ch == '"' ? '\'' : ch;
    }
    clean[j] = '\0';
    enum log_level l = level & 1 ? LOG_ERROR : level & 2 ? LOG_WARN : LOG_INFO;
    log_msg(l, "lws", "detail=\"%s\"", clean);
}
