#include "template.h"

#include "jsonv.h"
#include "mem.h"
#include "sbuf.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A file is at most this big: templates are a few paragraphs. */
#define TPL_MAX_FILE (64 * 1024)
#define TPL_MAX_LANGS 32

static const char *const kind_names[TPL__KIND] = {
    [TPL_INVITATION] = "invitation",           [TPL_VERIFY_SIGNUP] = "verification_signup",
    [TPL_VERIFY_EMAIL] = "verification_email", [TPL_VERIFY_PHONE] = "verification_phone",
    [TPL_ADDRESS_IN_USE] = "address_in_use",
};
static const char *const part_ext[TPL__PART] = {"subject", "txt", "html", "sms"};
static const char *const var_names[TPL__VAR] = {
    [TV_WORKSPACE_NAME] = "workspace_name",
    [TV_INVITER] = "inviter",
    [TV_FIRST_NAME] = "first_name",
    [TV_ROLE] = "role",
    [TV_LINK] = "link",
    [TV_EXPIRES_AT] = "expires_at",
    [TV_WEB_URL] = "web_url",
};

#define EMAIL_PARTS (1u << TPL_SUBJECT | 1u << TPL_TEXT | 1u << TPL_HTML)
#define SMS_PARTS (1u << TPL_SMS)
#define V(x) (1u << (x))
#define SECRET_VARS (V(TV_FIRST_NAME) | V(TV_LINK) | V(TV_EXPIRES_AT) | V(TV_WEB_URL))

/* The files each kind needs (by the channels its items take) and the
 * placeholders its payload can fill: a placeholder the payload cannot fill
 * is as wrong as a misspelt one. */
static const struct {
    unsigned parts; /* bit per enum tpl_part */
    unsigned vars;  /* bit per enum tpl_var */
} kinds[TPL__KIND] = {
    [TPL_INVITATION] = {EMAIL_PARTS | SMS_PARTS, (1u << TPL__VAR) - 1},
    [TPL_VERIFY_SIGNUP] = {EMAIL_PARTS, SECRET_VARS},
    [TPL_VERIFY_EMAIL] = {EMAIL_PARTS, SECRET_VARS},
    [TPL_VERIFY_PHONE] = {SMS_PARTS, SECRET_VARS},
    [TPL_ADDRESS_IN_USE] = {EMAIL_PARTS | SMS_PARTS, V(TV_WEB_URL)},
};

/* A run of a file: literal text or a placeholder. */
struct seg {
    int var;    /* enum tpl_var, or -1 for literal text */
    size_t off; /* literal: where in the file's text */
    size_t len; /* literal: how many bytes */
};

struct tfile {
    char *text;       /* the file's bytes (NUL-terminated) */
    struct seg *segs; /* the file split at placeholders */
    int nseg;         /* how many */
};

struct tlang {
    char code[3];                         /* "en" */
    struct tfile f[TPL__KIND][TPL__PART]; /* the files; text NULL: not needed */
};

struct tpl_set {
    struct tlang langs[TPL_MAX_LANGS]; /* every language found */
    int n;                             /* how many */
    int def;                           /* index of the default language */
};

static int fail(char *err, size_t cap, const char *fmt, const char *a, const char *b)
{
    snprintf(err, cap, fmt, a, b);
    return -1;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = mem_alloc(TPL_MAX_FILE + 1);
    size_t n = b ? fread(b, 1, TPL_MAX_FILE + 1, f) : 0;
    fclose(f);
    if (!b || n > TPL_MAX_FILE) {
        mem_free(b);
        return NULL;
    }
    b[n] = 0;
    *len = n;
    return b;
}

/* Splits the text at {{name}} and checks each name against the kind. */
static int parse(struct tfile *t, size_t len, unsigned allowed, const char *path, char *err,
                 size_t cap)
{
    int max = 1;
    for (const char *q = t->text; (q = strstr(q, "{{")); q += 2)
        max += 2;
    t->segs = mem_calloc((size_t)max, sizeof *t->segs);
    if (!t->segs) return fail(err, cap, "%s: out of memory%s", path, "");
    size_t at = 0;
    while (at < len) {
        const char *open = strstr(t->text + at, "{{");
        size_t lit = open ? (size_t)(open - t->text) - at : len - at;
        if (lit) t->segs[t->nseg++] = (struct seg){-1, at, lit};
        if (!open) break;
        const char *close = strstr(open + 2, "}}");
        if (!close) return fail(err, cap, "%s: a placeholder is not closed with }}%s", path, "");
        const char *a = open + 2, *b = close;
        while (a < b && *a == ' ')
            a++;
        while (b > a && b[-1] == ' ')
            b--;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(b - a < 63 ? b - a : 63), a);
        int var = -1;
        for (int i = 0; i < TPL__VAR; i++)
            if (!strcmp(name, var_names[i])) var = i;
        if (var < 0 || !(allowed & V(var)))
            return fail(err, cap, "%s: unknown placeholder {{%s}}", path, name);
        t->segs[t->nseg++] = (struct seg){var, 0, 0};
        at = (size_t)(close + 2 - t->text);
    }
    return 0;
}

static int load_lang(struct tlang *l, const char *dir, char *err, size_t cap)
{
    for (int k = 0; k < TPL__KIND; k++)
        for (int p = 0; p < TPL__PART; p++) {
            if (!(kinds[k].parts & (1u << p))) continue;
            char path[1200];
            snprintf(path, sizeof path, "%s/%s/%s.%s", dir, l->code, kind_names[k], part_ext[p]);
            size_t len;
            struct tfile *t = &l->f[k][p];
            t->text = read_file(path, &len);
            if (!t->text)
                return fail(err, cap, "%s: missing, unreadable or over 64 KiB%s", path, "");
            /* Editors end files with a newline; a subject or a text
             * message has none. */
            if (p == TPL_SUBJECT || p == TPL_SMS)
                while (len && (t->text[len - 1] == '\n' || t->text[len - 1] == '\r'))
                    t->text[--len] = 0;
            if (!jv_utf8_text(t->text, len, p != TPL_SUBJECT))
                return fail(err, cap, "%s: not UTF-8 text (or a control character)%s", path,
                            p == TPL_SUBJECT ? " or a line break" : "");
            if (parse(t, len, kinds[k].vars, path, err, cap)) return -1;
        }
    return 0;
}

static int by_code(const void *a, const void *b)
{
    return strcmp(((const struct tlang *)a)->code, ((const struct tlang *)b)->code);
}

int tpl_load(const char *dir, const char *default_lang, struct tpl_set **out, char *err,
             size_t errcap)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return fail(err, errcap, "%s: cannot open the templates directory%s", dir, "");
    struct tpl_set *s = mem_calloc(1, sizeof *s);
    if (!s) {
        closedir(d);
        return fail(err, errcap, "%s: out of memory%s", dir, "");
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *n = e->d_name;
        if (strlen(n) != 2 || n[0] < 'a' || n[0] > 'z' || n[1] < 'a' || n[1] > 'z') continue;
        char path[1100];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, n);
        if (stat(path, &st) || !S_ISDIR(st.st_mode) || s->n == TPL_MAX_LANGS) continue;
        memcpy(s->langs[s->n++].code, n, 3);
    }
    closedir(d);
    qsort(s->langs, (size_t)s->n, sizeof s->langs[0], by_code);
    s->def = -1;
    for (int i = 0; i < s->n; i++) {
        if (!strcmp(s->langs[i].code, default_lang)) s->def = i;
        if (load_lang(&s->langs[i], dir, err, errcap)) {
            tpl_free(s);
            return -1;
        }
    }
    if (s->def < 0) {
        tpl_free(s);
        return fail(err, errcap, "%s: no templates for the default language %s", dir, default_lang);
    }
    *out = s;
    return 0;
}

void tpl_free(struct tpl_set *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++)
        for (int k = 0; k < TPL__KIND; k++)
            for (int p = 0; p < TPL__PART; p++) {
                mem_free(s->langs[i].f[k][p].text);
                mem_free(s->langs[i].f[k][p].segs);
            }
    mem_free(s);
}

int tpl_kind_of(const char *type, const char *purpose)
{
    if (!type) return -1;
    if (!strcmp(type, "invitation")) return TPL_INVITATION;
    if (!strcmp(type, "address_in_use")) return TPL_ADDRESS_IN_USE;
    if (strcmp(type, "verification") || !purpose) return -1;
    if (!strcmp(purpose, "signup")) return TPL_VERIFY_SIGNUP;
    if (!strcmp(purpose, "email")) return TPL_VERIFY_EMAIL;
    if (!strcmp(purpose, "phone")) return TPL_VERIFY_PHONE;
    return -1;
}

const char *tpl_kind_name(enum tpl_kind k)
{
    return k < TPL__KIND ? kind_names[k] : "?";
}

int tpl_has_channel(enum tpl_kind k, int sms)
{
    return k < TPL__KIND && (kinds[k].parts & (sms ? SMS_PARTS : EMAIL_PARTS)) != 0;
}

/* A value: HTML-escaped in HTML, on one line in a subject or text message
 * (a line break there would start a header or look like the sender's). */
static void put_value(struct sbuf *o, const char *v, enum tpl_part part)
{
    for (; v && *v; v++) {
        const char *rep = NULL;
        unsigned char c = (unsigned char)*v;
        if (part == TPL_HTML)
            rep = c == '&'    ? "&amp;"
                  : c == '<'  ? "&lt;"
                  : c == '>'  ? "&gt;"
                  : c == '"'  ? "&quot;"
                  : c == '\'' ? "&#39;"
                              : NULL;
        else if ((part == TPL_SUBJECT || part == TPL_SMS) && (c < 0x20 || c == 0x7f))
            rep = " ";
        if (rep)
            sbuf_put(o, rep, strlen(rep));
        else
            sbuf_put(o, v, 1);
    }
}

char *tpl_render(const struct tpl_set *s, const char *lang, enum tpl_kind k, enum tpl_part part,
                 const struct tpl_vars *v, const char **used)
{
    if (k >= TPL__KIND || part >= TPL__PART || !(kinds[k].parts & (1u << part))) return NULL;
    const struct tlang *l = &s->langs[s->def];
    for (int i = 0; lang && i < s->n; i++)
        if (!strcmp(s->langs[i].code, lang)) l = &s->langs[i];
    if (used) *used = l->code;
    const struct tfile *t = &l->f[k][part];
    struct sbuf o = {0};
    sbuf_put(&o, "", 0);
    for (int i = 0; i < t->nseg; i++) {
        const struct seg *g = &t->segs[i];
        if (g->var < 0)
            sbuf_put(&o, t->text + g->off, g->len);
        else
            put_value(&o, v->v[g->var], part);
    }
    if (o.bad) {
        mem_free(o.b);
        return NULL;
    }
    return o.b;
}
