#include "csv.h"

#include <stdio.h>
#include <string.h>

void csv_text(struct sbuf *o, const char *s, size_t n)
{
    /* a formula in a spreadsheet starts with one of these */
    bool formula = n > 0 && strchr("=+-@\t\r", s[0]) != NULL;
    bool quote = formula;
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\n' || s[i] == '\r';
    if (!quote) {
        sbuf_put(o, s, n);
        return;
    }
    sbuf_put(o, "\"", 1);
    if (formula) sbuf_put(o, "'", 1);
    size_t from = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '"') {
            sbuf_put(o, s + from, i + 1 - from); /* the quote, then its double */
            sbuf_put(o, "\"", 1);
            from = i + 1;
        }
    sbuf_put(o, s + from, n - from);
    sbuf_put(o, "\"", 1);
}

void csv_header(struct sbuf *o, const cJSON *obj)
{
    const cJSON *v;
    bool first = true;
    cJSON_ArrayForEach(v, obj)
    {
        if (!first) sbuf_put(o, ",", 1);
        first = false;
        csv_text(o, v->string ? v->string : "", v->string ? strlen(v->string) : 0);
    }
    sbuf_put(o, "\r\n", 2);
}

static void cell(struct sbuf *o, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        csv_text(o, v->valuestring, strlen(v->valuestring));
    } else if (cJSON_IsNull(v)) {
        /* empty */
    } else if (cJSON_IsBool(v)) {
        sbuf_puts(o, cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNumber(v)) {
        char t[32];
        double d = v->valuedouble;
        /* ids and seqs are integers (exact below 2^53) */
        /* the range first: a double out of long long's range must not be cast */
        if (d > -9007199254740992.0 && d < 9007199254740992.0 && d == (double)(long long)d)
            snprintf(t, sizeof t, "%lld", (long long)d);
        else
            snprintf(t, sizeof t, "%.17g", d);
        sbuf_puts(o, t);
    } else {
        /* an array or object: its JSON text */
        char *t = cJSON_PrintUnformatted(v);
        if (!t) {
            o->bad = true;
            return;
        }
        csv_text(o, t, strlen(t));
        cJSON_free(t);
    }
}

void csv_row(struct sbuf *o, const cJSON *obj)
{
    const cJSON *v;
    bool first = true;
    cJSON_ArrayForEach(v, obj)
    {
        if (!first) sbuf_put(o, ",", 1);
        first = false;
        cell(o, v);
    }
    sbuf_put(o, "\r\n", 2);
}
