/*
 * busfmt.h - the one owner of what travels on a room's bus channel: the
 * channel name and the header in front of each payload. Publishers (the
 * store, the room layer) encode with it and the room layer decodes with it,
 * so the two sides cannot drift apart.
 *
 * Channel: `room:<uuid>` (the canonical lower-case text form).
 * Payloads, each a header line and then a body (JSON, not looked at here):
 *   `<seq>\n<body>`     a stored message, seq >= 1 (the room's order)
 *   `0\n<body>`         an unsequenced event (member, typing): best effort
 *   `<seq>\n`           a sync marker, no body: the room has reached seq, a
 *                       gateway that is behind fetches from PostgreSQL
 *   `m<person>\n<body>` a push for one person's connections and the room's
 *                       moderators; person is a uuid, or "-" for the
 *                       moderators only
 *   `p<gateway>\n`      presence hint, no body: that gateway (8 lower-case
 *                       hex digits) changed its entries in the room's
 *                       presence set; the others read the set again
 * Numbers are decimal without sign or leading zeros, at most 18 digits.
 *
 * Ownership: nothing is allocated. Encoders write into the caller's buffer;
 * the decoder points into the payload it was given.
 */
#ifndef PARLEY_BUSFMT_H
#define PARLEY_BUSFMT_H

#include <stddef.h>
#include <stdint.h>

#define BUSFMT_ROOM_PREFIX "room:"
#define BUSFMT_ID_LEN 36 /* a uuid's text form (PP_UUID_LEN) */
/* A channel name and its NUL. */
#define BUSFMT_CHAN_CAP (sizeof BUSFMT_ROOM_PREFIX + BUSFMT_ID_LEN)
/* The longest header (`m<uuid>\n`, or 18 digits and \n) and a NUL. */
#define BUSFMT_HDR_CAP (BUSFMT_ID_LEN + 3)

enum busfmt_kind {
    BUSFMT_MESSAGE,  /* seq >= 1, body */
    BUSFMT_EVENT,    /* seq 0, body */
    BUSFMT_MARKER,   /* seq >= 1, no body */
    BUSFMT_TARGETED, /* person, body */
    BUSFMT_PRESENCE, /* gateway, no body */
};

#define BUSFMT_GW_LEN 8 /* a gateway's id in presence hints and entries */

struct busfmt_msg {
    enum busfmt_kind kind; /* see enum */
    int64_t seq;           /* MESSAGE, MARKER; 0 otherwise */
    const char *person;    /* TARGETED: the uuid or "-" (not NUL-terminated) */
    size_t plen;           /* its length: BUSFMT_ID_LEN or 1 */
    const char *gw;        /* PRESENCE: the gateway (BUSFMT_GW_LEN, not NUL-terminated) */
    const char *body;      /* MESSAGE, EVENT, TARGETED: into the payload */
    size_t blen;           /* its length, >= 1 */
};

/* Writes `room:<id>` and a NUL into buf; the length, or -EINVAL (the first
 * BUSFMT_ID_LEN characters of room_id are not a uuid; it need not be
 * NUL-terminated, and is not read further), -ENOSPC (cap too small). */
int busfmt_channel(char *buf, size_t cap, const char *room_id);
/* The room id inside a room channel name (BUSFMT_ID_LEN characters, not
 * NUL-terminated), or NULL when ch is not one. */
const char *busfmt_channel_room(const char *ch, size_t chlen);

/* Header writers: the header (NUL-terminated) into buf; its length without
 * the NUL, or -EINVAL for an out-of-range argument, -ENOSPC. The body is
 * the caller's to append after it. */
int busfmt_message_header(char *buf, size_t cap, int64_t seq); /* `<seq>\n`, seq >= 1 */
int busfmt_event_header(char *buf, size_t cap);                /* `0\n` */
int busfmt_marker(char *buf, size_t cap, int64_t seq);         /* `<seq>\n`, the whole payload */
/* `m<person>\n`; person is a uuid (plen BUSFMT_ID_LEN) or "-" (plen 1). */
int busfmt_targeted_header(char *buf, size_t cap, const char *person, size_t plen);
/* `p<gw>\n`, the whole payload; gw is BUSFMT_GW_LEN lower-case hex digits. */
int busfmt_presence_hint(char *buf, size_t cap, const char *gw);

/* Decodes a payload: 0 and *out filled, or -EINVAL for anything that is not
 * exactly one of the forms above (no header line, empty or signed or
 * zero-padded or too long a number, a seq 0 without body, a message
 * header without body, a targeted push to a malformed person, a presence
 * hint with a body or a malformed gateway id). */
int busfmt_decode(const char *p, size_t len, struct busfmt_msg *out);

#endif
