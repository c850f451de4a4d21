#include "smtp.h"

#include "mem.h"
#include "sbuf.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void b64(struct sbuf *o, const unsigned char *in, size_t n)
{
    char out[sodium_base64_ENCODED_LEN(57, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(out, sizeof out, in, n, sodium_base64_VARIANT_ORIGINAL);
    sbuf_puts(o, out);
}

static bool plain_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) return false;
    return true;
}

char *smtp_header_word(const char *s)
{
    struct sbuf o = {0};
    sbuf_put(&o, "", 0);
    if (plain_ascii(s) && !strstr(s, "=?")) {
        sbuf_puts(&o, s);
        return o.bad ? (mem_free(o.b), NULL) : o.b;
    }
    /* "=?UTF-8?B?" + 60 base64 characters + "?=" is 72: 45 bytes a word. */
    size_t len = strlen(s), at = 0;
    while (at < len) {
        size_t n = len - at < 45 ? len - at : 45;
        /* back off to the start of a character */
        while (n < len - at && n > 0 && ((unsigned char)s[at + n] & 0xc0) == 0x80)
            n--;
        if (at) sbuf_puts(&o, "\r\n ");
        sbuf_puts(&o, "=?UTF-8?B?");
        b64(&o, (const unsigned char *)s + at, n);
        sbuf_puts(&o, "?=");
        at += n;
    }
    if (o.bad) {
        mem_free(o.b);
        return NULL;
    }
    return o.b;
}

/* A header "Name: value" with value as an encoded word where needed. */
static void header(struct sbuf *o, const char *name, const char *value)
{
    char *w = smtp_header_word(value);
    if (!w) {
        o->bad = true;
        return;
    }
    sbuf_puts(o, name);
    sbuf_puts(o, ": ");
    sbuf_puts(o, w);
    sbuf_puts(o, "\r\n");
    mem_free(w);
}

/* A body part: text with CRLF line ends, base64 in 76-character lines. */
static void part(struct sbuf *o, const char *boundary, const char *type, const char *text)
{
    struct sbuf crlf = {0};
    sbuf_put(&crlf, "", 0);
    for (const char *p = text; *p; p++) {
        if (*p == '\n' && (p == text || p[-1] != '\r')) sbuf_put(&crlf, "\r", 1);
        sbuf_put(&crlf, p, 1);
    }
    if (crlf.bad) o->bad = true;
    sbuf_puts(o, "--");
    sbuf_puts(o, boundary);
    sbuf_puts(o, "\r\nContent-Type: ");
    sbuf_puts(o, type);
    sbuf_puts(o, "; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n");
    for (size_t at = 0; !crlf.bad && at < crlf.n; at += 57) {
        b64(o, (const unsigned char *)crlf.b + at, crlf.n - at < 57 ? crlf.n - at : 57);
        sbuf_puts(o, "\r\n");
    }
    mem_free(crlf.b);
}

/* The display name: a quoted string when it is plain ASCII, else an
 * encoded word. */
static void from_header(struct sbuf *o, const struct smtp_cfg *c)
{
    sbuf_puts(o, "From: ");
    if (c->from_name[0]) {
        bool q = plain_ascii(c->from_name) && !strpbrk(c->from_name, "\"\\") &&
                 !strstr(c->from_name, "=?");
        char *w = q ? NULL : smtp_header_word(c->from_name);
        if (q) {
            sbuf_puts(o, "\"");
            sbuf_puts(o, c->from_name);
            sbuf_puts(o, "\"");
        } else if (w) {
            sbuf_puts(o, w);
        } else {
            o->bad = true;
        }
        mem_free(w);
        sbuf_puts(o, " ");
    }
    sbuf_puts(o, "<");
    sbuf_puts(o, c->from);
    sbuf_puts(o, ">\r\n");
}

char *smtp_build(const struct smtp_cfg *c, const struct mail *m, size_t *len)
{
    struct sbuf o = {0};
    char date[64], boundary[64], rnd[16];
    struct tm tm;
    gmtime_r(&m->date, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    unsigned char r[12];
    randombytes_buf(r, sizeof r);
    sodium_bin2hex(rnd, sizeof rnd, r, 7);
    /* "=_" cannot occur in base64 or in quoted-printable text. */
    snprintf(boundary, sizeof boundary, "=_parley_%s", rnd);
    sbuf_puts(&o, "Date: ");
    sbuf_puts(&o, date);
    sbuf_puts(&o, "\r\n");
    from_header(&o, c);
    sbuf_puts(&o, "To: <");
    sbuf_puts(&o, m->to);
    sbuf_puts(&o, ">\r\n");
    if (c->reply_to[0]) {
        sbuf_puts(&o, "Reply-To: <");
        sbuf_puts(&o, c->reply_to);
        sbuf_puts(&o, ">\r\n");
    }
    header(&o, "Subject", m->subject);
    sbuf_puts(&o, "Message-ID: ");
    sbuf_puts(&o, m->message_id);
    sbuf_puts(&o, "\r\nMIME-Version: 1.0\r\n");
    /* RFC 3834: a message a program sent; vacation responders stay quiet. */
    sbuf_puts(&o, "Auto-Submitted: auto-generated\r\n");
    sbuf_puts(&o, "Content-Type: multipart/alternative; boundary=\"");
    sbuf_puts(&o, boundary);
    sbuf_puts(&o, "\"\r\n\r\n");
    part(&o, boundary, "text/plain", m->text);
    part(&o, boundary, "text/html", m->html);
    sbuf_puts(&o, "--");
    sbuf_puts(&o, boundary);
    sbuf_puts(&o, "--\r\n");
    if (o.bad) {
        mem_free(o.b);
        return NULL;
    }
    *len = o.n;
    return o.b;
}

/* ---- sending ------------------------------------------------------------- */

/* What the conversation showed: the server's last reply line, the first
 * refusal (4xx/5xx: after it libcurl still says QUIT and hears 221) with
 * the command it answered, and the last command's verb (never its
 * arguments: AUTH carries the credential). */
struct convo {
    char reply[400];     /* the last reply line */
    char err_reply[400]; /* the first 4xx or 5xx reply line */
    int err_code;        /* its code; 0: none */
    char err_verb[8];    /* the command it answered */
    char verb[8];        /* MAIL, RCPT, DATA, AUTH, EHLO, STAR(TTLS) ... */
    const char *msg;     /* the message being uploaded */
    size_t len;          /* its length */
    size_t at;           /* bytes uploaded so far */
};

static int on_debug(CURL *h, curl_infotype t, char *d, size_t n, void *ud)
{
    (void)h;
    struct convo *c = ud;
    if (t == CURLINFO_HEADER_OUT) {
        size_t k = 0;
        while (k < n && k < 4 && d[k] != ' ' && d[k] != '\r')
            k++;
        memcpy(c->verb, d, k);
        c->verb[k] = 0;
    } else if (t == CURLINFO_HEADER_IN) {
        /* one or more reply lines: keep the last */
        size_t end = n;
        while (end && (d[end - 1] == '\n' || d[end - 1] == '\r'))
            end--;
        size_t start = end;
        while (start && d[start - 1] != '\n')
            start--;
        size_t k = end - start < sizeof c->reply - 1 ? end - start : sizeof c->reply - 1;
        memcpy(c->reply, d + start, k);
        c->reply[k] = 0;
        for (char *p = c->reply; *p; p++)
            if ((unsigned char)*p < 0x20) *p = ' ';
        int code = atoi(c->reply);
        if (code >= 400 && code < 600 && !c->err_code) {
            c->err_code = code;
            memcpy(c->err_reply, c->reply, sizeof c->reply);
            memcpy(c->err_verb, c->verb, sizeof c->verb);
        }
    }
    return 0;
}

static size_t on_read(char *buf, size_t sz, size_t n, void *ud)
{
    struct convo *c = ud;
    size_t room = sz * n, left = c->len - c->at;
    size_t k = left < room ? left : room;
    memcpy(buf, c->msg + c->at, k);
    c->at += k;
    return k;
}

static const char *domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "localhost";
}

void smtp_send(const struct smtp_cfg *c, const struct mail *m, struct send_result *r)
{
    memset(r, 0, sizeof *r);
    r->outcome = SEND_RETRY;
    size_t len = 0;
    char *msg = smtp_build(c, m, &len);
    CURL *h = msg ? curl_easy_init() : NULL;
    if (!h) {
        snprintf(r->reply, sizeof r->reply, "out of memory");
        mem_free(msg);
        return;
    }
    char url[400], from[340], to[340];
    /* The path is the EHLO name: the sender's domain. */
    snprintf(url, sizeof url, "%s://%s:%d/%s", c->tls == SMTP_IMPLICIT ? "smtps" : "smtp", c->host,
             c->port, domain_of(c->from));
    snprintf(from, sizeof from, "<%s>", c->from);
    snprintf(to, sizeof to, "<%s>", m->to);
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    struct convo cv = {.msg = msg, .len = len};
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(h, CURLOPT_USE_SSL,
                     c->tls == SMTP_NONE ? (long)CURLUSESSL_NONE : (long)CURLUSESSL_ALL);
    if (c->user[0]) {
        curl_easy_setopt(h, CURLOPT_USERNAME, c->user);
        curl_easy_setopt(h, CURLOPT_PASSWORD, c->password);
    }
    if (c->ca_file[0]) curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &cv);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L); /* for on_debug; nothing is printed */
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, &cv);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->timeout_s < 10 ? c->timeout_s : 10L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        r->outcome = SEND_OK;
        r->code = atoi(cv.reply);
        snprintf(r->reply, sizeof r->reply, "%s", cv.reply);
    } else if (cv.err_code) {
        /* Refused: for good only when the envelope or the message was. */
        bool envelope = !strcmp(cv.err_verb, "MAIL") || !strcmp(cv.err_verb, "RCPT") ||
                        !strcmp(cv.err_verb, "DATA");
        r->code = cv.err_code;
        if (cv.err_code >= 500 && envelope) r->outcome = SEND_FAILED;
        snprintf(r->reply, sizeof r->reply, "%s", cv.err_reply);
    } else {
        snprintf(r->reply, sizeof r->reply, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(h);
    sodium_memzero(msg, len); /* it holds the secret link */
    mem_free(msg);
}
