/*
 * gleval.c - evaluating a text against a compiled rule set (guidelines.h):
 * the detectors, word matching on the normalised text, regular expressions,
 * limits, then the rewrite of masked and redacted spans. Pure: no I/O, no
 * global state; every allocation through mem.h and checked, so a failure
 * refuses the message (-ENOMEM) instead of letting it through unmasked.
 */
#include "guidelines.h"

#include "glset.h"
#include "mem.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <utf8proc.h>

/* ---- detectors ---------------------------------------------------------- */

static bool luhn(const char *digits, int n)
{
    int sum = 0;
    for (int i = 0; i < n; i++) {
        int d = digits[n - 1 - i] - '0';
        if (i % 2) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        sum += d;
    }
    return sum % 10 == 0;
}

static bool iban_ok(const char *s, int n)
{
    /* Move the first four to the end, letters to 10..35, mod 97 == 1. */
    int rem = 0;
    for (int i = 0; i < n; i++) {
        char c = s[(i + 4) % n];
        if (isdigit((unsigned char)c))
            rem = (rem * 10 + (c - '0')) % 97;
        else if (isupper((unsigned char)c))
            rem = (rem * 100 + (c - 'A' + 10)) % 97;
        else
            return false;
    }
    return rem == 1;
}

typedef void (*hit_fn)(void *ud, const char *kind, size_t start, size_t end);

/* Digit runs with single spaces, dashes or dots between digits. */
static size_t digit_run(const char *t, size_t len, size_t i, char *digits, int *nd, int cap)
{
    size_t j = i;
    *nd = 0;
    while (j < len) {
        if (isdigit((unsigned char)t[j])) {
            if (*nd < cap) digits[*nd] = t[j];
            (*nd)++;
            j++;
        } else if ((t[j] == ' ' || t[j] == '-' || t[j] == '.') && j + 1 < len &&
                   isdigit((unsigned char)t[j + 1]) && j > i) {
            j++;
        } else {
            break;
        }
    }
    return j;
}

static bool word_byte(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

static void scan_pii(const char *t, size_t len, unsigned want, hit_fn fn, void *ud)
{
    for (size_t i = 0; i < len;) {
        /* Most bytes start nothing: '@' (email), capitals (IBAN), digits and
         * '+' (cards, phones). */
        unsigned char c = (unsigned char)t[i];
        if (c != '@' && c != '+' && (c < '0' || c > '9') && (c < 'A' || c > 'Z')) {
            i++;
            continue;
        }
        /* email: local@domain.tld */
        if ((want & PII_EMAIL) && t[i] == '@' && i > 0) {
            size_t a = i, b = i + 1;
            while (a > 0 && (isalnum((unsigned char)t[a - 1]) || strchr("._%+-", t[a - 1])))
                a--;
            size_t dot = 0;
            while (b < len && (isalnum((unsigned char)t[b]) || t[b] == '.' || t[b] == '-')) {
                if (t[b] == '.') dot = b;
                b++;
            }
            while (b > i + 1 && t[b - 1] == '.')
                b--;
            if (a < i && dot > i + 1 && dot + 2 < b + 1 && b - dot > 2) {
                fn(ud, "email", a, b);
                i = b;
                continue;
            }
        }
        /* IBAN: two letters, two digits, 11 to 30 letters or digits (groups of four) */
        if ((want & PII_IBAN) && i + 15 <= len && isupper((unsigned char)t[i]) &&
            isupper((unsigned char)t[i + 1]) && isdigit((unsigned char)t[i + 2]) &&
            isdigit((unsigned char)t[i + 3]) && (i == 0 || !word_byte(t[i - 1]))) {
            char buf[40];
            int n = 0;
            size_t j = i, end = i;
            while (j < len && n < 34) {
                if (isupper((unsigned char)t[j]) || isdigit((unsigned char)t[j])) {
                    buf[n++] = t[j++];
                    end = j;
                } else if (t[j] == ' ' && j + 1 < len &&
                           (isupper((unsigned char)t[j + 1]) || isdigit((unsigned char)t[j + 1]))) {
                    j++;
                } else {
                    break;
                }
            }
            if (n >= 15 && iban_ok(buf, n)) {
                fn(ud, "iban", i, end);
                i = end;
                continue;
            }
        }
        /* card numbers (Luhn) and phone numbers */
        if ((want & (PII_CARD | PII_PHONE)) && (isdigit((unsigned char)t[i]) || t[i] == '+') &&
            (i == 0 || !word_byte(t[i - 1]))) {
            bool plus = t[i] == '+';
            char digits[40];
            int nd;
            size_t j = digit_run(t, len, plus ? i + 1 : i, digits, &nd, 40);
            if (j < len && word_byte(t[j])) {
                i = j;
                continue;
            }
            if ((want & PII_CARD) && !plus && nd >= 13 && nd <= 19 && luhn(digits, nd)) {
                fn(ud, "card", i, j);
                i = j;
                continue;
            }
            if ((want & PII_PHONE) && nd >= 8 && nd <= 15 && (plus || nd >= 10)) {
                fn(ud, "phone", i, j);
                i = j;
                continue;
            }
            i = j > i ? j : i + 1;
            continue;
        }
        i++;
    }
}

/* Links: http(s):// or www. followed by a host. */
static void scan_links(const char *t, size_t len, const struct rule *r, hit_fn fn, void *ud)
{
    for (size_t i = 0; i < len; i++) {
        size_t h;
        char c0 = (char)(t[i] | 0x20);
        if (c0 != 'h' && c0 != 'w') continue; /* cheap filter before the comparisons */
        if (len - i >= 8 && !strncasecmp(t + i, "https://", 8))
            h = i + 8;
        else if (len - i >= 7 && !strncasecmp(t + i, "http://", 7))
            h = i + 7;
        else if (len - i >= 4 && !strncasecmp(t + i, "www.", 4) && (i == 0 || !word_byte(t[i - 1])))
            h = i;
        else
            continue;
        size_t e = h;
        while (e < len && (isalnum((unsigned char)t[e]) || t[e] == '.' || t[e] == '-'))
            e++;
        if (e == h) continue;
        size_t end = e;
        while (end < len && !isspace((unsigned char)t[end]))
            end++;
        bool allowed = false;
        for (int d = 0; d < r->ndomains && !allowed; d++) {
            size_t dl = strlen(r->domains[d]), hl = e - h;
            allowed = hl >= dl && !strncasecmp(t + e - dl, r->domains[d], dl) &&
                      (hl == dl || t[e - dl - 1] == '.');
        }
        if (!allowed) fn(ud, "link", i, end);
        i = end;
    }
}

/* ---- evaluation --------------------------------------------------------- */

struct edit {
    size_t start, end; /* original span */
    bool redact;       /* replace with a placeholder (else mask with *) */
    const char *kind;  /* for the placeholder */
};

struct evalstate {
    const struct gl_set *s;
    struct gl_verdict *v;
    int rule;
    struct edit *edits;
    int nedits, cap;
    bool nomem; /* an edit or the rewrite could not be allocated */
};

static void record(struct evalstate *st, int rule, const char *kind, size_t start, size_t end)
{
    const struct rule *r = &st->s->rules[rule];
    struct gl_verdict *v = st->v;
    if (v->decisive < 0 || r->action > v->action) { /* the strictest decides */
        v->action = r->action;
        v->decisive = rule;
    }
    if (v->nhits < GL_MAX_HITS)
        v->hits[v->nhits++] = (struct gl_hit){rule, r->id, r->action, kind, start, end};
    else
        v->truncated = true;
    if ((r->action == GL_MASK || r->action == GL_REDACT) && end > start) {
        if (st->nedits == st->cap) {
            int cap = st->cap ? st->cap * 2 : 8;
            struct edit *e = mem_realloc(st->edits, (size_t)cap * sizeof *e);
            if (!e) { /* a span left unmasked would let the text through: fail */
                st->nomem = true;
                return;
            }
            st->edits = e;
            st->cap = cap;
        }
        st->edits[st->nedits++] = (struct edit){start, end, r->action == GL_REDACT, kind};
    }
}

static void on_found(void *ud, const char *kind, size_t start, size_t end)
{
    struct evalstate *st = ud;
    record(st, st->rule, kind, start, end);
}

static bool is_word_cp(const char *s, size_t len, size_t at, bool before)
{
    /* The code point just before (or at) byte offset `at` of normalised text. */
    if (before) {
        if (at == 0) return false;
        size_t p = at - 1;
        while (p > 0 && ((unsigned char)s[p] & 0xc0) == 0x80)
            p--;
        at = p;
    } else if (at >= len) {
        return false;
    }
    int32_t cp;
    if (utf8proc_iterate((const uint8_t *)s + at, (utf8proc_ssize_t)(len - at), &cp) <= 0)
        return false;
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO) ||
           (c >= UTF8PROC_CATEGORY_ND && c <= UTF8PROC_CATEGORY_NO) || cp == '_';
}

static void match_words(struct evalstate *st, const struct ac *a, const struct norm *n, bool leet,
                        unsigned role_bit)
{
    if (!a->nn) return;
    int node = 0;
    for (size_t i = 0; i < n->len; i++) {
        uint8_t c = (uint8_t)n->s[i];
        int next;
        while ((next = gl_ac_child(a, node, c)) < 0 && node != 0)
            node = a->n[node].fail;
        node = next < 0 ? 0 : next;
        for (int o = a->n[node].out >= 0 ? node : a->n[node].dict; o >= 0; o = a->n[o].dict) {
            const struct term *t = &a->terms[a->n[o].out];
            const struct rule *r = &st->s->rules[t->rule];
            if ((r->exempt & role_bit) || r->leet != leet) continue;
            size_t end = i + 1, start = end - (size_t)t->len;
            if (r->whole_words &&
                (is_word_cp(n->s, n->len, start, true) || is_word_cp(n->s, n->len, end, false)))
                continue;
            record(st, t->rule, "words", n->from[start], n->to[end - 1]);
        }
    }
}

static int cmp_edit(const void *x, const void *y)
{
    const struct edit *a = x, *b = y;
    return a->start < b->start ? -1 : a->start > b->start;
}

/* Applies the edits to the original: overlapping spans merge (a redaction
 * wins over a mask); masks keep one '*' per character. */
static void rewrite(struct evalstate *st, const char *text, size_t len)
{
    struct gl_verdict *v = st->v;
    if (!st->nedits) return;
    qsort(st->edits, (size_t)st->nedits, sizeof *st->edits, cmp_edit);
    size_t cap = len + (size_t)st->nedits * 24 + 1;
    char *out = mem_alloc(cap);
    if (!out) {
        st->nomem = true;
        return;
    }
    size_t o = 0, pos = 0;
    for (int i = 0; i < st->nedits;) {
        struct edit e = st->edits[i++];
        while (i < st->nedits && st->edits[i].start < e.end) {
            if (st->edits[i].end > e.end) e.end = st->edits[i].end;
            if (st->edits[i].redact) {
                e.redact = true;
                e.kind = st->edits[i].kind;
            }
            i++;
        }
        if (e.start < pos) e.start = pos;
        memcpy(out + o, text + pos, e.start - pos);
        o += e.start - pos;
        if (e.redact) {
            o += (size_t)snprintf(out + o, cap - o, "[%s removed]", e.kind);
        } else {
            for (size_t p = e.start; p < e.end; p++)
                if (((unsigned char)text[p] & 0xc0) != 0x80) out[o++] = '*';
        }
        pos = e.end;
    }
    memcpy(out + o, text + pos, len - pos);
    o += len - pos;
    out[o] = 0;
    v->text = out;
    v->len = o;
}

int gl_eval(const struct gl_set *s, const char *text, size_t len, const struct gl_ctx *ctx,
            struct gl_verdict *v)
{
    memset(v, 0, sizeof *v);
    v->action = GL_ALLOW;
    v->decisive = -1;
    if (!s || !s->nrules) return 0;
    struct norm n[2];
    memset(n, 0, sizeof n);
    int rc = gl_norm_text(text, len, false, &n[0]);
    if (!rc && s->any_leet) rc = gl_norm_text(text, len, true, &n[1]);
    if (rc) {
        gl_norm_free(&n[0]);
        gl_norm_free(&n[1]);
        return rc;
    }
    struct evalstate st = {.s = s, .v = v};
    unsigned role_bit = ctx && ctx->role >= 0 ? 1u << ctx->role : 0;
    match_words(&st, &s->ac[0], &n[0], false, role_bit);
    if (s->any_leet) match_words(&st, &s->ac[1], &n[1], true, role_bit);
    size_t chars = 0;
    for (size_t i = 0; i < len; i++)
        chars += ((unsigned char)text[i] & 0xc0) != 0x80;
    pcre2_match_data *md = NULL;
    for (int i = 0; i < s->nrules; i++) {
        const struct rule *r = &s->rules[i];
        if (r->exempt & role_bit) continue;
        st.rule = i;
        switch (r->kind) {
        case K_REGEX: {
            if (!md) md = pcre2_match_data_create(4, NULL);
            if (!md) { /* the rule cannot run: the text is not let through unchecked */
                st.nomem = true;
                break;
            }
            PCRE2_SIZE off = 0;
            for (int guard = 0; guard < GL_MAX_HITS && off <= n[0].len; guard++) {
                /* The normalised text is valid UTF-8 by construction. */
                int rc = pcre2_match(r->re, (PCRE2_SPTR)n[0].s, n[0].len, off, PCRE2_NO_UTF_CHECK,
                                     md, s->mctx);
                if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
                    rc == PCRE2_ERROR_JIT_STACKLIMIT) {
                    /* A pattern that would stall is a hit on the whole text:
                     * the message is not let through unchecked. */
                    record(&st, i, "regex_limit", 0, len);
                    break;
                }
                if (rc < 0) break;
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                if (ov[1] > ov[0]) record(&st, i, "regex", n[0].from[ov[0]], n[0].to[ov[1] - 1]);
                off = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
            }
            break;
        }
        case K_PII:
            scan_pii(text, len, r->pii, on_found, &st);
            break;
        case K_LINKS:
            scan_links(text, len, r, on_found, &st);
            break;
        case K_MAX_LENGTH:
            if ((long)chars > r->max) record(&st, i, "max_length", 0, 0);
            break;
        case K_MAX_MENTIONS: {
            long m = 0;
            for (size_t k = 0; k + 1 < len; k++)
                if (text[k] == '@' && (k == 0 || isspace((unsigned char)text[k - 1])) &&
                    word_byte(text[k + 1]))
                    m++;
            if (m > r->max) record(&st, i, "max_mentions", 0, 0);
            break;
        }
        case K_RATE:
            /* the bucket holds less than one token */
            if (ctx && ctx->taken_milli &&
                (int64_t)ctx->taken_milli[r->bucket] > ((int64_t)r->max - 1) * 1000)
                record(&st, i, "rate", 0, 0);
            break;
        case K_SLOW:
            if (ctx && ctx->since_last_ms >= 0 && ctx->since_last_ms < r->max * 1000)
                record(&st, i, "slow_mode", 0, 0);
            break;
        default:
            break;
        }
    }
    if (md) pcre2_match_data_free(md);
    if (v->action != GL_REJECT) rewrite(&st, text, len);
    mem_free(st.edits);
    gl_norm_free(&n[0]);
    gl_norm_free(&n[1]);
    if (st.nomem) {
        gl_verdict_free(v);
        return -ENOMEM;
    }
    return 0;
}

void gl_verdict_free(struct gl_verdict *v)
{
    mem_free(v->text);
    v->text = NULL;
}
