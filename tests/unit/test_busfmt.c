/* Unit tests of the bus format (busfmt.h): every header kind survives a
 * round trip, and every malformed payload or channel is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "busfmt.h"

#define ROOM "0b6f4a52-3c1e-4d2a-9f10-7e5d2c1b0a99"
#define PERSON "c2a1e3f4-5b6d-4e7f-8a9b-0c1d2e3f4a5b"

/* header + body into one payload */
static size_t join(char *out, const char *hdr, int hl, const char *body)
{
    memcpy(out, hdr, (size_t)hl);
    size_t bl = strlen(body);
    memcpy(out + hl, body, bl);
    return (size_t)hl + bl;
}

static void channel_round_trip(void **state)
{
    (void)state;
    char ch[BUSFMT_CHAN_CAP];
    int n = busfmt_channel(ch, sizeof ch, ROOM);
    assert_int_equal(n, 5 + 36);
    assert_string_equal(ch, "room:" ROOM);
    const char *id = busfmt_channel_room(ch, (size_t)n);
    assert_non_null(id);
    assert_memory_equal(id, ROOM, 36);
    /* The id need not be NUL-terminated (a substring of a control event). */
    char spec[96];
    snprintf(spec, sizeof spec, "%s/%s", ROOM, PERSON);
    assert_int_equal(busfmt_channel(ch, sizeof ch, spec), 41);
    assert_string_equal(ch, "room:" ROOM);
}

static void channel_refused(void **state)
{
    (void)state;
    char ch[BUSFMT_CHAN_CAP];
    assert_int_equal(busfmt_channel(ch, sizeof ch - 1, ROOM), -ENOSPC);
    assert_int_equal(busfmt_channel(ch, sizeof ch, "0b6f4a52"), -EINVAL);
    assert_int_equal(busfmt_channel(ch, sizeof ch, "0b6f4a52x3c1e-4d2a-9f10-7e5d2c1b0a99"),
                     -EINVAL);
    assert_int_equal(busfmt_channel(ch, sizeof ch, "0b6f4a52-3c1e-4d2a-9f10-7e5d2c1b0a9g"),
                     -EINVAL);
    assert_int_equal(busfmt_channel(ch, sizeof ch, NULL), -EINVAL);
    const char *bad[] = {
        "room:" ROOM "x",                             /* too long */
        "room:0b6f4a52-3c1e-4d2a-9f10-7e5d2c1b0a9",   /* too short */
        "ROOM:" ROOM,                                 /* prefix */
        "rooms" ROOM,                                 /* prefix */
        "room:0b6f4a52_3c1e-4d2a-9f10-7e5d2c1b0a99",  /* not a uuid */
        "room:0b6f4a52-3c1e-4d2a-9f10-7e5d2c1b0a9\n", /* not a uuid */
        "parley:ctl",                                 /* another channel */
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(busfmt_channel_room(bad[i], strlen(bad[i])));
}

static void message_round_trip(void **state)
{
    (void)state;
    const int64_t seqs[] = {1, 9, 10, 12345, 999999999999999999LL};
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
        char hdr[BUSFMT_HDR_CAP], p[128];
        int hl = busfmt_message_header(hdr, sizeof hdr, seqs[i]);
        assert_true(hl > 1);
        char want[32];
        snprintf(want, sizeof want, "%lld\n", (long long)seqs[i]);
        assert_string_equal(hdr, want);
        size_t len = join(p, hdr, hl, "{\"push\":\"message\"}");
        struct busfmt_msg m;
        assert_int_equal(busfmt_decode(p, len, &m), 0);
        assert_int_equal(m.kind, BUSFMT_MESSAGE);
        assert_int_equal(m.seq, seqs[i]);
        assert_int_equal(m.blen, 18);
        assert_memory_equal(m.body, "{\"push\":\"message\"}", 18);
        assert_null(m.person);
    }
}

static void marker_round_trip(void **state)
{
    (void)state;
    char p[BUSFMT_HDR_CAP];
    int n = busfmt_marker(p, sizeof p, 42);
    assert_int_equal(n, 3);
    assert_string_equal(p, "42\n");
    struct busfmt_msg m;
    assert_int_equal(busfmt_decode(p, (size_t)n, &m), 0);
    assert_int_equal(m.kind, BUSFMT_MARKER);
    assert_int_equal(m.seq, 42);
    assert_int_equal(m.blen, 0);
    assert_null(m.body);
}

static void event_round_trip(void **state)
{
    (void)state;
    char hdr[BUSFMT_HDR_CAP], p[64];
    int hl = busfmt_event_header(hdr, sizeof hdr);
    assert_int_equal(hl, 2);
    assert_string_equal(hdr, "0\n");
    size_t len = join(p, hdr, hl, "{\"push\":\"typing\"}");
    struct busfmt_msg m;
    assert_int_equal(busfmt_decode(p, len, &m), 0);
    assert_int_equal(m.kind, BUSFMT_EVENT);
    assert_int_equal(m.seq, 0);
    assert_int_equal(m.blen, len - 2);
    assert_ptr_equal(m.body, p + 2);
}

static void targeted_round_trip(void **state)
{
    (void)state;
    const char *people[] = {PERSON, "-"};
    for (int i = 0; i < 2; i++) {
        char hdr[BUSFMT_HDR_CAP], p[128];
        size_t plen = strlen(people[i]);
        int hl = busfmt_targeted_header(hdr, sizeof hdr, people[i], plen);
        assert_int_equal(hl, (int)plen + 2);
        assert_int_equal(hdr[0], 'm');
        size_t len = join(p, hdr, hl, "{\"push\":\"held\"}");
        struct busfmt_msg m;
        assert_int_equal(busfmt_decode(p, len, &m), 0);
        assert_int_equal(m.kind, BUSFMT_TARGETED);
        assert_int_equal(m.plen, plen);
        assert_memory_equal(m.person, people[i], plen);
        assert_int_equal(m.blen, 15);
        assert_memory_equal(m.body, "{\"push\":\"held\"}", 15);
    }
}

static void encoders_refuse(void **state)
{
    (void)state;
    char b[BUSFMT_HDR_CAP];
    assert_int_equal(busfmt_message_header(b, sizeof b, 0), -EINVAL);
    assert_int_equal(busfmt_message_header(b, sizeof b, -5), -EINVAL);
    assert_int_equal(busfmt_message_header(b, sizeof b, 1000000000000000000LL), -EINVAL);
    assert_int_equal(busfmt_marker(b, sizeof b, 0), -EINVAL);
    assert_int_equal(busfmt_message_header(b, 3, 100), -ENOSPC); /* "100\n" and NUL */
    assert_int_equal(busfmt_message_header(b, 5, 100), 4);
    assert_int_equal(busfmt_event_header(b, 2), -ENOSPC);
    assert_int_equal(busfmt_targeted_header(b, sizeof b, "x", 1), -EINVAL);
    assert_int_equal(busfmt_targeted_header(b, sizeof b, "--", 2), -EINVAL);
    assert_int_equal(busfmt_targeted_header(b, sizeof b, PERSON, 35), -EINVAL);
    assert_int_equal(busfmt_targeted_header(b, sizeof b, NULL, 0), -EINVAL);
    assert_int_equal(busfmt_targeted_header(b, 38, PERSON, 36), -ENOSPC);
    assert_int_equal(busfmt_targeted_header(b, 39, PERSON, 36), 38);
}

static void presence_hint_round_trip(void **state)
{
    (void)state;
    char b[16];
    int n = busfmt_presence_hint(b, sizeof b, "0a1b2c3d");
    assert_int_equal(n, 10);
    assert_string_equal(b, "p0a1b2c3d\n");
    struct busfmt_msg m;
    assert_int_equal(busfmt_decode(b, (size_t)n, &m), 0);
    assert_int_equal(m.kind, BUSFMT_PRESENCE);
    assert_memory_equal(m.gw, "0a1b2c3d", BUSFMT_GW_LEN);
    assert_null(m.body);
    assert_int_equal(m.blen, 0);
    assert_int_equal(busfmt_presence_hint(b, 10, "0a1b2c3d"), -ENOSPC);
    assert_int_equal(busfmt_presence_hint(b, sizeof b, "0a1b2c3"), -EINVAL);
    assert_int_equal(busfmt_presence_hint(b, sizeof b, "0a1b2cXd"), -EINVAL);
    assert_int_equal(busfmt_presence_hint(b, sizeof b, NULL), -EINVAL);
}

static void malformed_refused(void **state)
{
    (void)state;
    const char *bad[] = {
        "",                             /* empty */
        "12",                           /* no header line */
        "{\"push\":\"message\"}",       /* no header line */
        "\n{}",                         /* empty number */
        "0\n",                          /* an event without body */
        "00\n{}",                       /* zero-padded */
        "012\n{}",                      /* zero-padded */
        "-3\n{}",                       /* signed */
        "+3\n{}",                       /* signed */
        "3a\n{}",                       /* not a number */
        " 3\n{}",                       /* space */
        "1000000000000000000\n{}",      /* 19 digits */
        "99999999999999999999999\n",    /* overflow */
        "m\n{}",                        /* targeted, no person */
        "m-\n",                         /* targeted, no body */
        "m" PERSON "\n",                /* targeted, no body */
        "mx\n{}",                       /* targeted, bad person */
        "m" PERSON "0\n{}",             /* person too long */
        "m0b6f4a52-3c1e-4d2a-9f10\n{}", /* person too short */
        "x12\n{}",                      /* unknown kind */
        "p0a1b2c3d\n{}",                /* presence hint with a body */
        "p0a1b2c3\n",                   /* gateway too short */
        "p0a1b2c3d4\n",                 /* gateway too long */
        "p0A1B2C3D\n",                  /* upper case */
        "p0a1b2c3g\n",                  /* not hex */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct busfmt_msg m;
        if (busfmt_decode(bad[i], strlen(bad[i]), &m) != -EINVAL) fail_msg("accepted: %s", bad[i]);
    }
    struct busfmt_msg m;
    assert_int_equal(busfmt_decode(NULL, 0, &m), -EINVAL);
    /* The header line is looked for only within its longest length. */
    char long_hdr[64];
    memset(long_hdr, '1', sizeof long_hdr);
    long_hdr[50] = '\n';
    assert_int_equal(busfmt_decode(long_hdr, sizeof long_hdr, &m), -EINVAL);
    /* A body may hold newlines of its own. */
    assert_int_equal(busfmt_decode("7\n{\n}\n", 6, &m), 0);
    assert_int_equal(m.kind, BUSFMT_MESSAGE);
    assert_int_equal(m.blen, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(channel_round_trip),       cmocka_unit_test(channel_refused),
        cmocka_unit_test(message_round_trip),       cmocka_unit_test(marker_round_trip),
        cmocka_unit_test(event_round_trip),         cmocka_unit_test(targeted_round_trip),
        cmocka_unit_test(encoders_refuse),          cmocka_unit_test(malformed_refused),
        cmocka_unit_test(presence_hint_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
