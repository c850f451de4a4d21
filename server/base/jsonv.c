#include "jsonv.h"

#include "parley_proto.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

bool jv_utf8_text(const char *s, size_t len, bool allow_newlines)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        if (c < 0x80) {
            if ((c < 0x20 && !(allow_newlines && (c == '\n' || c == '\r' || c == '\t'))) ||
                c == 0x7f)
                return false;
            p++;
            continue;
        }
        int n = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 && c <= 0xdf ? 2 : 0;
        if (!n || end - p < n) return false;
        unsigned cp = c & (0x3f >> (n - 1));
        for (int i = 1; i < n; i++) {
            if ((p[i] & 0xc0) != 0x80) return false;
            cp = cp << 6 | (p[i] & 0x3f);
        }
        /* Overlong forms, surrogates and code points past U+10FFFF. */
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        p += n;
    }
    return true;
}

bool jv_domain(const char *s)
{
    size_t len = strlen(s), label = 0, labels = 0;
    if (len < 3 || len > 253) return false;
    const char *last = s;
    for (const char *p = s;; p++) {
        if (*p == '.' || !*p) {
            if (!label || label > 63 || p[-1] == '-' || *last == '-') return false;
            labels++;
            if (!*p) break;
            label = 0;
            last = p + 1;
            continue;
        }
        if (!isalnum((unsigned char)*p) && *p != '-') return false;
        label++;
    }
    /* The top-level label is alphabetic (no bare IP addresses). */
    for (const char *p = last; *p; p++)
        if (!isalpha((unsigned char)*p)) return false;
    return labels >= 2;
}

bool jv_email(const char *s)
{
    const char *at = strrchr(s, '@');
    size_t len = strlen(s);
    if (!at || at == s || len > 254 || (size_t)(at - s) > 64) return false;
    for (const char *p = s; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c >= 0x7f || strchr("\"(),:;<>@[\\]", c)) return false;
    }
    if (s[0] == '.' || at[-1] == '.' || strstr(s, "..")) return false;
    return jv_domain(at + 1);
}

bool jv_phone(const char *s)
{
    if (s[0] != '+' || s[1] < '1' || s[1] > '9') return false;
    size_t n = 0;
    for (const char *p = s + 1; *p; p++, n++)
        if (!isdigit((unsigned char)*p)) return false;
    return n >= 8 && n <= 15;
}

bool jv_url(const char *s)
{
    size_t len = strlen(s);
    const char *rest = !strncmp(s, "https://", 8)  ? s + 8
                       : !strncmp(s, "http://", 7) ? s + 7
                                                   : NULL;
    if (!rest || !*rest || len > 2000 || *rest == '/') return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) return false;
    return true;
}

bool jv_uuid(const char *s)
{
    if (strlen(s) != 36) return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-') return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

static void lower(cJSON *v)
{
    for (char *p = v->valuestring; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

static bool fail(struct jv_err *err, const char *code, const char *field, const char *msg)
{
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    if (field && *field)
        snprintf(err->message, sizeof err->message, "%s: %s", field, msg);
    else
        snprintf(err->message, sizeof err->message, "%s", msg);
    return false;
}

static bool check(cJSON *v, const struct jv_field *f, struct jv_err *err)
{
    if (cJSON_IsNull(v))
        return f->nullable ? true : fail(err, "bad_field", f->name, "may not be null");
    switch (f->type) {
    case JV_INT: {
        double d = v->valuedouble;
        if (!cJSON_IsNumber(v) || !isfinite(d) || d != floor(d) || d < (double)f->min ||
            d > (double)f->max) {
            char m[96];
            snprintf(m, sizeof m, "must be an integer from %lld to %lld", f->min, f->max);
            return fail(err, "bad_field", f->name, m);
        }
        return true;
    }
    case JV_BOOL:
        return cJSON_IsBool(v) ? true : fail(err, "bad_field", f->name, "must be true or false");
    case JV_DOMAINS:
    case JV_UUIDS: {
        if (!cJSON_IsArray(v)) return fail(err, "bad_field", f->name, "must be an array");
        int n = cJSON_GetArraySize(v);
        if (n > f->max) return fail(err, "bad_field", f->name, "too many entries");
        for (cJSON *e = v->child; e; e = e->next) {
            if (!cJSON_IsString(e))
                return fail(err, "bad_field", f->name, "entries must be strings");
            if (f->type == JV_DOMAINS) {
                lower(e);
                if (!jv_domain(e->valuestring))
                    return fail(err, "bad_field", f->name, "entries must be domain names");
            } else {
                if (!jv_uuid(e->valuestring))
                    return fail(err, "bad_field", f->name, "entries must be ids");
                for (cJSON *d = v->child; d != e; d = d->next)
                    if (!strcasecmp(d->valuestring, e->valuestring))
                        return fail(err, "bad_field", f->name, "duplicate entry");
            }
        }
        return true;
    }
    default:
        break;
    }
    if (!cJSON_IsString(v)) return fail(err, "bad_field", f->name, "must be a string");
    const char *s = v->valuestring;
    size_t len = strlen(s);
    switch (f->type) {
    case JV_TEXT:
        /* characters, as PostgreSQL's length() in the tables' checks and
         * JSON Schema's maxLength count them (a name of 100 CJK characters
         * is 300 bytes); valid UTF-8 first, or the count means nothing */
        if (!jv_utf8_text(s, len, false))
            return fail(err, "bad_field", f->name, "must be text without control characters");
        long long chars = (long long)pp_utf8_chars(s, len);
        if (chars < f->min || chars > f->max) {
            char m[96];
            snprintf(m, sizeof m, "must be %lld to %lld characters", f->min, f->max);
            return fail(err, "bad_field", f->name, m);
        }
        return true;
    case JV_SECRET:
        /* at least min characters (a password's strength is in them), at
         * most max bytes (what the server copies and hashes is bounded) */
        if (!jv_utf8_text(s, len, true))
            return fail(err, "bad_field", f->name, "must be valid text");
        if ((long long)pp_utf8_chars(s, len) < f->min || (long long)len > f->max) {
            char m[96];
            snprintf(m, sizeof m, "must be at least %lld characters and at most %lld bytes", f->min,
                     f->max);
            return fail(err, "bad_field", f->name, m);
        }
        return true;
    case JV_EMAIL:
        lower(v);
        return jv_email(s) ? true : fail(err, "bad_field", f->name, "must be an email address");
    case JV_PHONE:
        return jv_phone(s) ? true
                           : fail(err, "bad_field", f->name,
                                  "must be an E.164 number: + and 8 to 15 digits");
    case JV_URL:
        return jv_url(s) ? true : fail(err, "bad_field", f->name, "must be an http(s) URL");
    case JV_UUID:
        return jv_uuid(s) ? true : fail(err, "bad_field", f->name, "must be an id");
    case JV_ENUM:
        for (const char *const *c = f->choices; *c; c++)
            if (!strcmp(*c, s)) return true;
        return fail(err, "bad_field", f->name, "is not one of the allowed values");
    default:
        return fail(err, "bad_field", f->name, "unsupported");
    }
}

cJSON *jv_parse(const char *body, size_t len, const struct jv_field *fields, bool allow_empty,
                struct jv_err *err)
{
    if (len == 0 && allow_empty) {
        cJSON *o = cJSON_CreateObject();
        if (!o) fail(err, "internal", NULL, "out of memory");
        return o;
    }
    /* cJSON keeps strings as C strings: an escaped NUL would silently cut a
     * value short, so it is refused before parsing. Raw bytes are checked as
     * UTF-8 here because cJSON does not. */
    if (pp_json_has_nul(body, len)) {
        fail(err, "bad_json", NULL, "strings may not contain U+0000");
        return NULL;
    }
    if (!jv_utf8_text(body, len, true)) {
        fail(err, "bad_json", NULL, "body is not valid UTF-8 text");
        return NULL;
    }
    const char *end = NULL;
    unsigned long failures = pp_alloc_failures();
    cJSON *o = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (!o && pp_alloc_failures() != failures) {
        fail(err, "internal", NULL, "out of memory");
        return NULL;
    }
    if (o) {
        while (end < body + len && isspace((unsigned char)*end))
            end++;
        if (end != body + len) {
            cJSON_Delete(o);
            o = NULL;
        }
    }
    if (!o) {
        fail(err, "bad_json", NULL, "body is not valid JSON");
        return NULL;
    }
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        fail(err, "not_object", NULL, "body must be a JSON object");
        return NULL;
    }
    for (cJSON *v = o->child; v; v = v->next) {
        const struct jv_field *f = fields;
        while (f->name && strcmp(f->name, v->string))
            f++;
        bool ok =
            f->name ? check(v, f, err) : fail(err, "unknown_field", v->string, "unknown field");
        /* Duplicate keys are ambiguous: refused like unknown ones. */
        for (cJSON *d = o->child; ok && d != v; d = d->next)
            if (!strcmp(d->string, v->string))
                ok = fail(err, "bad_field", v->string, "duplicate key");
        if (!ok) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    for (const struct jv_field *f = fields; f->name; f++)
        if (f->required && !cJSON_GetObjectItemCaseSensitive(o, f->name)) {
            cJSON_Delete(o);
            fail(err, "missing_field", f->name, "required");
            return NULL;
        }
    return o;
}
