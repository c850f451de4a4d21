#include "wsclient.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* RFC 6455 1.3: the server proves it read the key by hashing it with this. */
#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static void b64(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n) v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = t[v >> 18];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = '\0';
}

void wscl_key(const unsigned char nonce[16], char key[WSCL_KEY_LEN + 1])
{
    b64(nonce, 16, key);
}

int wscl_request(char *buf, size_t cap, const struct wscl_upgrade *u)
{
    int n = snprintf(buf, cap,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s%s%s\r\n",
                     u->path, u->host, u->key, u->protocol ? "Sec-WebSocket-Protocol: " : "",
                     u->protocol ? u->protocol : "", u->protocol ? "\r\n" : "",
                     u->extra ? u->extra : "");
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* The value of header name in the block h[0..n) (lines after the status
 * line), trimmed; NULL when absent. */
static const char *header(const char *h, size_t n, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    const char *end = h + n;
    for (const char *l = h; l < end;) {
        const char *eol = memchr(l, '\n', (size_t)(end - l));
        if (!eol) eol = end;
        if ((size_t)(eol - l) > nl && l[nl] == ':' && !strncasecmp(l, name, nl)) {
            const char *v = l + nl + 1, *e = eol;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
            *vlen = (size_t)(e - v);
            return v;
        }
        l = eol + 1;
    }
    return NULL;
}

size_t wscl_response(const char *p, size_t n, const char *key, int *status, bool *accepted)
{
    *status = 0;
    *accepted = false;
    const char *end = n >= 4 ? memmem(p, n, "\r\n\r\n", 4) : NULL;
    if (!end) return 0;
    size_t hlen = (size_t)(end - p) + 4;
    /* "HTTP/1.1 101 Switching Protocols" */
    if (hlen > 12 && !memcmp(p, "HTTP/1.", 7) && p[8] == ' ') {
        int s = 0;
        for (int i = 9; i < 12 && p[i] >= '0' && p[i] <= '9'; i++)
            s = s * 10 + (p[i] - '0');
        *status = s >= 100 ? s : 0;
    }
    if (*status != 101) return hlen;
    char cat[WSCL_KEY_LEN + sizeof WS_GUID], want[32];
    unsigned char sha[SHA_DIGEST_LENGTH];
    int k = snprintf(cat, sizeof cat, "%s%s", key, WS_GUID);
    if (k < 0 || (size_t)k >= sizeof cat) return hlen;
    SHA1((const unsigned char *)cat, (size_t)k, sha);
    b64(sha, sizeof sha, want);
    size_t vlen;
    const char *v = header(p, hlen, "Sec-WebSocket-Accept", &vlen);
    *accepted = v && vlen == strlen(want) && !memcmp(v, want, vlen);
    return hlen;
}

size_t wscl_frame_size(size_t n)
{
    return n + (n < 126 ? 6 : n < 65536 ? 8 : 14);
}

size_t wscl_frame(unsigned char *out, unsigned first, const void *p, size_t n, uint32_t mask)
{
    size_t hl = 0;
    out[hl++] = (unsigned char)first;
    if (n < 126) {
        out[hl++] = 0x80 | (unsigned char)n; /* 0x80: masked, as every client frame must be */
    } else if (n < 65536) {
        out[hl++] = 0x80 | 126;
        out[hl++] = (unsigned char)(n >> 8);
        out[hl++] = (unsigned char)n;
    } else {
        out[hl++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            out[hl++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    const unsigned char m[4] = {(unsigned char)(mask >> 24), (unsigned char)(mask >> 16),
                                (unsigned char)(mask >> 8), (unsigned char)mask};
    memcpy(out + hl, m, 4);
    hl += 4;
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        out[hl + i] = s[i] ^ m[i & 3];
    return hl + n;
}

int wscl_parse(const unsigned char *p, size_t n, struct wscl_in *f)
{
    if (n < 2) return 0;
    if (p[1] & 0x80) return -1; /* a server never masks */
    uint64_t len = p[1] & 0x7f;
    size_t hl = 2;
    if (len == 126) {
        if (n < 4) return 0;
        len = (uint64_t)p[2] << 8 | p[3];
        hl = 4;
    } else if (len == 127) {
        if (n < 10) return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | p[2 + i];
        if (len >> 63) return -1;
        hl = 10;
    }
    if (n - hl < len) return 0;
    f->opcode = p[0] & 0x0f;
    f->fin = (p[0] & 0x80) != 0;
    f->payload = p + hl;
    f->len = (size_t)len;
    f->size = hl + (size_t)len;
    return 1;
}

int wscl_close_code(const struct wscl_in *f)
{
    return f->len >= 2 ? f->payload[0] << 8 | f->payload[1] : 1005;
}
