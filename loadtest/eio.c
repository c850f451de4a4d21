#include "eio.h"

#include <inttypes.h>
#include <stdio.h>

void eio_parse(const char *p, size_t n, struct eio_frame *out)
{
    *out = (struct eio_frame){.kind = EIO_OTHER};
    if (n == 1 && p[0] == '2') {
        out->kind = EIO_PING;
    } else if (n >= 1 && p[0] == '0') {
        out->kind = EIO_OPEN;
    } else if (n >= 2 && p[0] == '4' && p[1] == '0' && (n == 2 || p[2] == '{')) {
        out->kind = EIO_CONNECTED; /* the default namespace only */
    } else if (n >= 3 && p[0] == '4' && p[1] == '3') {
        size_t i = 2;
        int64_t id = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9' && id < INT64_MAX / 10)
            id = id * 10 + (p[i++] - '0');
        if (i == 2 || i >= n || p[i] != '[') return; /* an ack names its emit */
        out->kind = EIO_ACK;
        out->id = id;
        out->payload = p + i;
        out->len = n - i;
    } else if (n >= 3 && p[0] == '4' && p[1] == '2' && p[2] == '[') {
        out->kind = EIO_EVENT;
        out->payload = p + 2;
        out->len = n - 2;
    }
}

size_t eio_emit(char *buf, size_t cap, int64_t id, const char *args)
{
    int k = snprintf(buf, cap, "42%" PRId64 "[%s]", id, args);
    return k > 0 && (size_t)k < cap ? (size_t)k : 0;
}
