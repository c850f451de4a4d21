#include "busfmt.h"

#include "parley_proto.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define MAX_DIGITS 18 /* below INT64_MAX, so no overflow check is needed */

int busfmt_channel(char *buf, size_t cap, const char *room_id)
{
    size_t pl = sizeof BUSFMT_ROOM_PREFIX - 1;
    if (!room_id || !pp_uuid_valid(room_id, BUSFMT_ID_LEN)) return -EINVAL;
    if (cap < BUSFMT_CHAN_CAP) return -ENOSPC;
    memcpy(buf, BUSFMT_ROOM_PREFIX, pl);
    memcpy(buf + pl, room_id, BUSFMT_ID_LEN);
    buf[pl + BUSFMT_ID_LEN] = '\0';
    return (int)(pl + BUSFMT_ID_LEN);
}

const char *busfmt_channel_room(const char *ch, size_t chlen)
{
    size_t pl = sizeof BUSFMT_ROOM_PREFIX - 1;
    if (chlen != pl + BUSFMT_ID_LEN || memcmp(ch, BUSFMT_ROOM_PREFIX, pl)) return NULL;
    return pp_uuid_valid(ch + pl, BUSFMT_ID_LEN) ? ch + pl : NULL;
}

/* Decimal digits of v (0 <= v < 10^18) and '\n' into buf. */
static int put_number(char *buf, size_t cap, int64_t v)
{
    char tmp[MAX_DIGITS];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v && n < MAX_DIGITS);
    if (v) return -EINVAL;
    if (cap < (size_t)n + 2) return -ENOSPC;
    for (int i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\n';
    buf[n + 1] = '\0';
    return n + 1;
}

int busfmt_message_header(char *buf, size_t cap, int64_t seq)
{
    return seq < 1 ? -EINVAL : put_number(buf, cap, seq);
}

int busfmt_event_header(char *buf, size_t cap)
{
    return put_number(buf, cap, 0);
}

int busfmt_marker(char *buf, size_t cap, int64_t seq)
{
    return busfmt_message_header(buf, cap, seq);
}

int busfmt_targeted_header(char *buf, size_t cap, const char *person, size_t plen)
{
    if (!person || !((plen == 1 && person[0] == '-') || pp_uuid_valid(person, plen)))
        return -EINVAL;
    if (cap < plen + 3) return -ENOSPC;
    buf[0] = 'm';
    memcpy(buf + 1, person, plen);
    buf[plen + 1] = '\n';
    buf[plen + 2] = '\0';
    return (int)plen + 2;
}

static bool gw_valid(const char *gw)
{
    for (int i = 0; i < BUSFMT_GW_LEN; i++)
        if (!((gw[i] >= '0' && gw[i] <= '9') || (gw[i] >= 'a' && gw[i] <= 'f'))) return false;
    return true;
}

int busfmt_presence_hint(char *buf, size_t cap, const char *gw)
{
    if (!gw || !gw_valid(gw)) return -EINVAL;
    if (cap < BUSFMT_GW_LEN + 3) return -ENOSPC;
    buf[0] = 'p';
    memcpy(buf + 1, gw, BUSFMT_GW_LEN);
    buf[BUSFMT_GW_LEN + 1] = '\n';
    buf[BUSFMT_GW_LEN + 2] = '\0';
    return BUSFMT_GW_LEN + 2;
}

int busfmt_decode(const char *p, size_t len, struct busfmt_msg *out)
{
    if (!p || !len) return -EINVAL;
    memset(out, 0, sizeof *out);
    /* The header line is short: look for its end only that far. */
    const char *nl = memchr(p, '\n', len < BUSFMT_HDR_CAP ? len : BUSFMT_HDR_CAP);
    if (!nl) return -EINVAL;
    size_t hl = (size_t)(nl - p);
    out->body = nl + 1;
    out->blen = len - hl - 1;
    if (p[0] == 'm') {
        const char *person = p + 1;
        size_t plen = hl - 1;
        if (!((plen == 1 && person[0] == '-') || pp_uuid_valid(person, plen)) || !out->blen)
            return -EINVAL;
        out->kind = BUSFMT_TARGETED;
        out->person = person;
        out->plen = plen;
        return 0;
    }
    if (p[0] == 'p') {
        if (hl != BUSFMT_GW_LEN + 1 || out->blen || !gw_valid(p + 1)) return -EINVAL;
        out->kind = BUSFMT_PRESENCE;
        out->gw = p + 1;
        out->body = NULL;
        return 0;
    }
    if (!hl || hl > MAX_DIGITS || (p[0] == '0' && hl > 1)) return -EINVAL;
    int64_t seq = 0;
    for (size_t i = 0; i < hl; i++) {
        if (p[i] < '0' || p[i] > '9') return -EINVAL;
        seq = seq * 10 + (p[i] - '0');
    }
    if (seq == 0) {
        if (!out->blen) return -EINVAL; /* an event needs a body */
        out->kind = BUSFMT_EVENT;
    } else {
        out->kind = out->blen ? BUSFMT_MESSAGE : BUSFMT_MARKER;
        out->seq = seq;
    }
    if (!out->blen) out->body = NULL;
    return 0;
}
