#include "sms.h"

#include "mem.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

/* GSM 03.38: the basic alphabet (one septet each) and the extension table
 * (an escape and a septet). Everything else needs UCS-2. */
static const char gsm_basic[] = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
                                "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
static const char gsm_ext[] = "\f^{}\\[~]|€";

/* The next code point of s (advancing *s), or -1 for invalid UTF-8. */
static long next_cp(const unsigned char **s)
{
    const unsigned char *p = *s;
    unsigned c = *p;
    int n = c < 0x80                 ? 1
            : c >= 0xf0 && c <= 0xf4 ? 4
            : c >= 0xe0              ? 3
            : c >= 0xc2 && c <= 0xdf ? 2
                                     : 0;
    if (!n) return -1;
    long cp = n == 1 ? c : (long)(c & (0x3f >> (n - 1)));
    for (int i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80) return -1;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return -1;
    *s = p + n;
    return cp;
}

static bool in_set(const char *set, long cp)
{
    const unsigned char *p = (const unsigned char *)set;
    while (*p) {
        long c = next_cp(&p);
        if (c == cp) return true;
    }
    return false;
}

/* Packs characters of the given widths into parts of at most per units,
 * never splitting one character. */
static int pack(const char *text, bool ucs2, int per)
{
    const unsigned char *p = (const unsigned char *)text;
    int parts = 1, used = 0;
    while (*p) {
        long cp = next_cp(&p);
        int w = ucs2 ? (cp > 0xffff ? 2 : 1) : (in_set(gsm_ext, cp) ? 2 : 1);
        if (used + w > per) {
            parts++;
            used = 0;
        }
        used += w;
    }
    return parts;
}

int sms_count(const char *text, struct sms_count *out)
{
    memset(out, 0, sizeof *out);
    int septets = 0, utf16 = 0;
    bool gsm = true;
    for (const unsigned char *p = (const unsigned char *)text; *p;) {
        long cp = next_cp(&p);
        if (cp < 0) return -1;
        utf16 += cp > 0xffff ? 2 : 1;
        if (in_set(gsm_basic, cp))
            septets += 1;
        else if (in_set(gsm_ext, cp))
            septets += 2;
        else
            gsm = false;
    }
    out->ucs2 = !gsm;
    out->units = gsm ? septets : utf16;
    int single = gsm ? 160 : 70, per = gsm ? 153 : 67;
    out->segments = out->units == 0 ? 1 : out->units <= single ? 1 : pack(text, !gsm, per);
    return 0;
}

/* The gateway's answer, kept short: it goes into the outbox's last error. */
struct reply {
    char b[400]; /* the first bytes */
    size_t n;    /* how many */
};

static size_t on_body(char *d, size_t sz, size_t n, void *ud)
{
    struct reply *r = ud;
    size_t len = sz * n, room = sizeof r->b - 1 - r->n;
    memcpy(r->b + r->n, d, len < room ? len : room);
    r->n += len < room ? len : room;
    r->b[r->n] = 0;
    return len;
}

/* One line of printable text (the reply goes into JSON and logs). */
static void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20) *s = ' ';
}

static char *form_body(CURL *h, const struct sms_cfg *c, const char *to, const char *text)
{
    char *e_to = curl_easy_escape(h, to, 0), *e_text = curl_easy_escape(h, text, 0);
    char *e_from = c->sender[0] ? curl_easy_escape(h, c->sender, 0) : NULL;
    size_t n = strlen(c->to_field) + strlen(c->text_field) + strlen(c->from_field) + 8 +
               (e_to ? strlen(e_to) : 0) + (e_text ? strlen(e_text) : 0) +
               (e_from ? strlen(e_from) : 0);
    char *b = e_to && e_text && (e_from || !c->sender[0]) ? mem_alloc(n) : NULL;
    if (b)
        snprintf(b, n, "%s=%s&%s=%s%s%s%s%s", c->to_field, e_to, c->text_field, e_text,
                 e_from ? "&" : "", e_from ? c->from_field : "", e_from ? "=" : "",
                 e_from ? e_from : "");
    curl_free(e_to);
    curl_free(e_text);
    curl_free(e_from);
    return b;
}

static char *json_body(const struct sms_cfg *c, const char *to, const char *text)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, c->to_field, to);
    cJSON_AddStringToObject(o, c->text_field, text);
    if (c->sender[0]) cJSON_AddStringToObject(o, c->from_field, c->sender);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    char *b = s ? mem_strndup(s, strlen(s)) : NULL;
    cJSON_free(s);
    return b;
}

void sms_send(const struct sms_cfg *c, const char *to, const char *text, struct send_result *r)
{
    memset(r, 0, sizeof *r);
    r->outcome = SEND_RETRY;
    CURL *h = curl_easy_init();
    char *body = !h                      ? NULL
                 : c->format == SMS_FORM ? form_body(h, c, to, text)
                                         : json_body(c, to, text);
    if (!body) {
        snprintf(r->reply, sizeof r->reply, "out of memory");
        if (h) curl_easy_cleanup(h);
        return;
    }
    struct curl_slist *hd = curl_slist_append(
        NULL, c->format == SMS_FORM ? "Content-Type: application/x-www-form-urlencoded"
                                    : "Content-Type: application/json");
    char bearer[600];
    if (c->auth == SMS_AUTH_BEARER) {
        snprintf(bearer, sizeof bearer, "Authorization: Bearer %s", c->credential);
        hd = curl_slist_append(hd, bearer);
    } else if (c->auth == SMS_AUTH_BASIC) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERPWD, c->credential);
    }
    struct reply rep = {.n = 0};
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &rep);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, c->timeout_s);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (c->ca_file[0]) curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
    CURLcode rc = curl_easy_perform(h);
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    r->code = (int)status;
    if (rc != CURLE_OK) {
        snprintf(r->reply, sizeof r->reply, "%s", errbuf[0] ? errbuf : curl_easy_strerror(rc));
    } else {
        one_line(rep.b);
        snprintf(r->reply, sizeof r->reply, "HTTP %ld %s", status, rep.b);
        if (status >= 200 && status < 300)
            r->outcome = SEND_OK;
        else if (status >= 400 && status < 500 && status != 408 && status != 429)
            r->outcome = SEND_FAILED;
    }
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    mem_free(body);
    memset(bearer, 0, sizeof bearer);
}
