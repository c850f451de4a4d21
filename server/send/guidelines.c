#include "guidelines.h"

#include "glset.h"
#include "mem.h"
#include "perm.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <utf8proc.h>

#define REGEX_MATCH_LIMIT 100000 /* backtracking steps per match attempt */
#define REGEX_DEPTH_LIMIT 1000   /* nested backtracking, interpreter */

static bool use_jit = true; /* set once at start (gl_use_jit) */

void gl_use_jit(bool on)
{
    use_jit = on;
}

const char *gl_action_name(enum gl_action a)
{
    static const char *const n[] = {"allow", "flag", "mask", "redact", "shadow", "hold", "reject"};
    return (unsigned)a < 7 ? n[a] : "allow";
}

static int action_parse(const char *s)
{
    for (int i = 0; i < 7; i++)
        if (!strcmp(s, gl_action_name((enum gl_action)i))) return i;
    return -1;
}

/* ---- normalisation ------------------------------------------------------ */
static int norm_put(struct norm *n, int32_t cp, size_t from, size_t to)
{
    uint8_t buf[4];
    utf8proc_ssize_t k = utf8proc_encode_char(cp, buf);
    if (n->len + (size_t)k + 1 > n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 256;
        while (cap < n->len + (size_t)k + 1)
            cap *= 2;
        char *s = mem_realloc(n->s, cap);
        if (s) n->s = s;
        size_t *f = s ? mem_realloc(n->from, cap * sizeof *f) : NULL;
        if (f) n->from = f;
        size_t *t = f ? mem_realloc(n->to, cap * sizeof *t) : NULL;
        if (t) n->to = t;
        if (!t) return -ENOMEM; /* the arrays kept are at least n->cap long */
        n->cap = cap;
    }
    for (utf8proc_ssize_t i = 0; i < k; i++) {
        n->s[n->len] = (char)buf[i];
        n->from[n->len] = from;
        n->to[n->len] = to;
        n->len++;
    }
    n->s[n->len] = 0;
    return 0;
}

static int32_t leet_fold(int32_t c)
{
    switch (c) {
    case '0':
        return 'o';
    case '1':
    case '!':
    case '|':
        return 'i';
    case '3':
        return 'e';
    case '4':
    case '@':
        return 'a';
    case '5':
    case '$':
        return 's';
    case '7':
    case '+':
        return 't';
    case '8':
        return 'b';
    case '9':
        return 'g';
    default:
        return c;
    }
}

/* NFKC-style compatibility decomposition, case folding, marks and default
 * ignorables (zero-width joiners and the like) removed: "Ｆｒéé\u200dly" and
 * "freely" normalise alike. */
int gl_norm_text(const char *text, size_t len, bool leet, struct norm *n)
{
    memset(n, 0, sizeof *n);
    /* Room for the usual case up front: one allocation, not a doubling series. */
    n->cap = len + 16;
    n->s = mem_alloc(n->cap);
    n->from = mem_alloc(n->cap * sizeof *n->from);
    n->to = mem_alloc(n->cap * sizeof *n->to);
    if (!n->s || !n->from || !n->to) return -ENOMEM;
    n->s[0] = 0;
    size_t i = 0;
    while (i < len) {
        int32_t cp;
        utf8proc_ssize_t k =
            utf8proc_iterate((const uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0) return -EILSEQ;
        if (cp < 0x80) {
            /* ASCII: case folding is all there is to do (and the common case);
             * the buffer was sized for it, so no growth check is needed while
             * the output stays within len. */
            int32_t c = cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
            if (leet) c = leet_fold(c);
            if (n->len + 2 > n->cap) {
                if (norm_put(n, c, i, i + 1)) return -ENOMEM;
            } else {
                n->s[n->len] = (char)c;
                n->from[n->len] = i;
                n->to[n->len] = i + 1;
                n->s[++n->len] = 0;
            }
            i++;
            continue;
        }
        int32_t out[32];
        int last = 0;
        utf8proc_ssize_t m =
            utf8proc_decompose_char(cp, out, 32,
                                    UTF8PROC_COMPAT | UTF8PROC_CASEFOLD | UTF8PROC_STRIPMARK |
                                        UTF8PROC_IGNORE | UTF8PROC_DECOMPOSE,
                                    &last);
        if (m < 0 || m > 32) {
            out[0] = cp;
            m = 1;
        }
        for (utf8proc_ssize_t j = 0; j < m; j++)
            if (norm_put(n, leet ? leet_fold(out[j]) : out[j], i, i + (size_t)k)) return -ENOMEM;
        i += (size_t)k;
    }
    return 0;
}

void gl_norm_free(struct norm *n)
{
    mem_free(n->s);
    mem_free(n->from);
    mem_free(n->to);
    memset(n, 0, sizeof *n);
}

char *gl_normalise(const char *text, size_t len, bool leet)
{
    struct norm n;
    if (gl_norm_text(text, len, leet, &n)) {
        gl_norm_free(&n);
        return NULL;
    }
    char *s = n.s;
    n.s = NULL;
    gl_norm_free(&n);
    return s;
}

/* ---- Aho-Corasick ------------------------------------------------------- */

static int ac_node(struct ac *a, int depth)
{
    if (a->nn == a->cap) {
        int cap = a->cap ? a->cap * 2 : 256;
        struct acnode *n = mem_realloc(a->n, (size_t)cap * sizeof *n);
        if (!n) return -1;
        a->n = n;
        a->cap = cap;
    }
    struct acnode *x = &a->n[a->nn];
    memset(x, 0, sizeof *x);
    x->out = x->dict = -1;
    x->depth = depth;
    return a->nn++;
}

static int ac_add(struct ac *a, const char *term, size_t len, int rule)
{
    if (!a->nn) {
        if (ac_node(a, 0) < 0) return -1;
        for (int i = 0; i < 256; i++)
            a->root_next[i] = -1;
    }
    int node = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)term[i];
        int next = gl_ac_child(a, node, c);
        if (next < 0) {
            next = ac_node(a, (int)i + 1);
            if (next < 0) return -1;
            if (node == 0) {
                a->root_next[c] = next;
            } else {
                struct acnode *x = &a->n[node];
                int *k = mem_realloc(x->kids, (size_t)(x->nkids + 1) * sizeof *k);
                uint8_t *ch = mem_realloc(x->ch, (size_t)(x->nkids + 1));
                if (k) x->kids = k;
                if (ch) x->ch = ch;
                if (!k || !ch) return -1;
                x->kids[x->nkids] = next;
                x->ch[x->nkids] = c;
                x->nkids++;
            }
        }
        node = next;
    }
    if (a->n[node].out >= 0) return 0; /* the same term twice: one is enough */
    if (a->nterms == a->terms_cap) {
        int cap = a->terms_cap ? a->terms_cap * 2 : 64;
        struct term *t = mem_realloc(a->terms, (size_t)cap * sizeof *t);
        if (!t) return -1;
        a->terms = t;
        a->terms_cap = cap;
    }
    a->terms[a->nterms] = (struct term){rule, (int)len};
    a->n[node].out = a->nterms++;
    return 0;
}

/* Fail and dictionary links, breadth first. */
static int ac_build(struct ac *a)
{
    if (!a->nn) return 0;
    int *queue = mem_alloc((size_t)a->nn * sizeof *queue), qh = 0, qt = 0;
    if (!queue) return -1;
    for (int c = 0; c < 256; c++) {
        int k = a->root_next[c];
        if (k >= 0) {
            a->n[k].fail = 0;
            queue[qt++] = k;
        }
    }
    while (qh < qt) {
        int u = queue[qh++];
        struct acnode *x = &a->n[u];
        for (int i = 0; i < x->nkids; i++) {
            int v = x->kids[i];
            uint8_t c = x->ch[i];
            int f = x->fail;
            int t;
            while ((t = gl_ac_child(a, f, c)) < 0 && f != 0)
                f = a->n[f].fail;
            if (t < 0 || t == v) t = 0;
            a->n[v].fail = t;
            a->n[v].dict = a->n[t].out >= 0 ? t : a->n[t].dict;
            queue[qt++] = v;
        }
    }
    mem_free(queue);
    return 0;
}

static void ac_free(struct ac *a)
{
    for (int i = 0; i < a->nn; i++) {
        mem_free(a->n[i].kids);
        mem_free(a->n[i].ch);
    }
    mem_free(a->n);
    mem_free(a->terms);
}

/* ---- compiling ---------------------------------------------------------- */

static struct gl_set *fail(struct gl_set *s, struct gl_error *e, int rule, int offset,
                           const char *msg)
{
    e->rule = rule;
    e->offset = offset;
    snprintf(e->message, sizeof e->message, "%s", msg);
    gl_free(s);
    return NULL;
}

static bool known_key(const char *k, const char *const *allowed)
{
    for (; *allowed; allowed++)
        if (!strcmp(k, *allowed)) return true;
    return false;
}

static bool valid_domain(const char *d)
{
    size_t n = strlen(d);
    if (n < 3 || n > 253 || !strchr(d, '.')) return false;
    for (const char *p = d; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-') return false;
    return true;
}

struct gl_set *gl_compile(const char *json, size_t len, struct gl_error *err)
{
    memset(err, 0, sizeof *err);
    err->rule = -1;
    if (len > GL_MAX_JSON) return fail(NULL, err, -1, 0, "rule set too large (1 MiB at most)");
    cJSON *root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return fail(NULL, err, -1, 0, "not a JSON object");
    }
    struct gl_set *s = mem_calloc(1, sizeof *s);
    if (!s) {
        cJSON_Delete(root);
        return fail(NULL, err, -1, 0, "out of memory");
    }
    for (cJSON *k = root->child; k; k = k->next)
        if (strcmp(k->string, "rules")) {
            cJSON_Delete(root);
            return fail(s, err, -1, 0, "unknown field (only \"rules\")");
        }
    cJSON *rules = cJSON_GetObjectItemCaseSensitive(root, "rules");
    if (!cJSON_IsArray(rules)) {
        cJSON_Delete(root);
        return fail(s, err, -1, 0, "rules: an array is required");
    }
    if (cJSON_GetArraySize(rules) > GL_MAX_RULES) {
        cJSON_Delete(root);
        return fail(s, err, -1, 0, "too many rules (200 at most)");
    }
    int nterms = 0, nregex = 0, idx = 0;
    char msg[200];
#define BAD(...)                                                                                   \
    do {                                                                                           \
        snprintf(msg, sizeof msg, __VA_ARGS__);                                                    \
        cJSON_Delete(root);                                                                        \
        return fail(s, err, idx, 0, msg);                                                          \
    } while (0)
    for (cJSON *r = rules->child; r; r = r->next, idx++) {
        if (!cJSON_IsObject(r)) BAD("a rule must be an object");
        struct rule *ru = &s->rules[s->nrules++];
        ru->whole_words = true;
        static const char *const keys[] = {"id",     "kind",        "action", "exempt",
                                           "terms",  "whole_words", "leet",   "pattern",
                                           "detect", "allow",       "max",    NULL};
        for (cJSON *k = r->child; k; k = k->next)
            if (!known_key(k->string, keys)) BAD("unknown field \"%.40s\"", k->string);
        cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "id");
        cJSON *kind = cJSON_GetObjectItemCaseSensitive(r, "kind");
        cJSON *action = cJSON_GetObjectItemCaseSensitive(r, "action");
        if (id && (!cJSON_IsString(id) || !*id->valuestring || strlen(id->valuestring) > 64))
            BAD("id: a string of 1 to 64 bytes");
        char defid[24];
        snprintf(defid, sizeof defid, "rule-%d", idx);
        const char *idv = id ? id->valuestring : defid;
        if (!(ru->id = mem_strndup(idv, strlen(idv)))) BAD("out of memory");
        if (!cJSON_IsString(kind)) BAD("kind: required");
        static const char *const kinds[] = {"words",      "regex",        "pii",  "links",
                                            "max_length", "max_mentions", "rate", "slow_mode"};
        int kd = -1;
        for (int i = 0; i < 8; i++)
            if (!strcmp(kind->valuestring, kinds[i])) kd = i;
        if (kd < 0)
            BAD("kind: one of words, regex, pii, links, max_length, max_mentions, rate, slow_mode");
        ru->kind = (enum kind)kd;
        int act = cJSON_IsString(action) ? action_parse(action->valuestring) : -1;
        if (act < 0) BAD("action: one of allow, flag, mask, redact, shadow, hold, reject");
        ru->action = (enum gl_action)act;
        /* Rewriting needs a span: limits have none. */
        if ((act == GL_MASK || act == GL_REDACT) && kd >= K_MAX_LENGTH)
            BAD("action: %s needs a rule that finds text (words, regex, pii, links)",
                gl_action_name((enum gl_action)act));
        cJSON *ex = cJSON_GetObjectItemCaseSensitive(r, "exempt");
        if (ex) {
            if (!cJSON_IsArray(ex)) BAD("exempt: an array of roles");
            cJSON *e;
            cJSON_ArrayForEach(e, ex)
            {
                enum role ro = cJSON_IsString(e)
                                   ? perm_role_parse(e->valuestring, strlen(e->valuestring))
                                   : ROLE_NONE;
                if (ro == ROLE_NONE) BAD("exempt: unknown role");
                ru->exempt |= 1u << ro;
            }
        }
        cJSON *ww = cJSON_GetObjectItemCaseSensitive(r, "whole_words");
        cJSON *lt = cJSON_GetObjectItemCaseSensitive(r, "leet");
        if ((ww || lt) && kd != K_WORDS) BAD("whole_words and leet are for words rules");
        if (ww && !cJSON_IsBool(ww)) BAD("whole_words: true or false");
        if (lt && !cJSON_IsBool(lt)) BAD("leet: true or false");
        if (ww) ru->whole_words = cJSON_IsTrue(ww);
        if (lt) ru->leet = cJSON_IsTrue(lt);
        cJSON *terms = cJSON_GetObjectItemCaseSensitive(r, "terms");
        cJSON *pattern = cJSON_GetObjectItemCaseSensitive(r, "pattern");
        cJSON *detect = cJSON_GetObjectItemCaseSensitive(r, "detect");
        cJSON *allow = cJSON_GetObjectItemCaseSensitive(r, "allow");
        cJSON *max = cJSON_GetObjectItemCaseSensitive(r, "max");
        if ((terms != NULL) != (kd == K_WORDS)) BAD("terms: required for words rules, only there");
        if ((pattern != NULL) != (kd == K_REGEX))
            BAD("pattern: required for regex rules, only there");
        if ((detect != NULL) != (kd == K_PII)) BAD("detect: required for pii rules, only there");
        if (allow && kd != K_LINKS) BAD("allow: only for links rules");
        if ((max != NULL) != (kd >= K_MAX_LENGTH)) BAD("max: required for limit rules, only there");
        switch (ru->kind) {
        case K_WORDS: {
            if (!cJSON_IsArray(terms) || !cJSON_GetArraySize(terms))
                BAD("terms: a non-empty array");
            cJSON *t;
            cJSON_ArrayForEach(t, terms)
            {
                if (!cJSON_IsString(t) || !*t->valuestring) BAD("terms: non-empty strings");
                size_t tl = strlen(t->valuestring);
                if (tl > GL_MAX_PATTERN) BAD("terms: 1000 bytes at most each");
                if (++nterms > GL_MAX_TERMS) BAD("too many terms (20000 at most in a set)");
                for (int v = 0; v < (ru->leet ? 2 : 1); v++) {
                    struct norm n;
                    int rc = gl_norm_text(t->valuestring, tl, v == 1, &n);
                    if (rc) gl_norm_free(&n);
                    if (rc == -EILSEQ) BAD("terms: invalid UTF-8");
                    if (rc) BAD("out of memory");
                    /* Leading and trailing blanks would defeat whole words. */
                    size_t nl = n.len, b = 0;
                    while (b < nl && n.s[b] == ' ')
                        b++;
                    while (nl > b && n.s[nl - 1] == ' ')
                        nl--;
                    rc = nl > b ? ac_add(&s->ac[v], n.s + b, nl - b, s->nrules - 1) : 0;
                    gl_norm_free(&n);
                    if (rc) BAD("out of memory");
                }
            }
            if (ru->leet) s->any_leet = true;
            break;
        }
        case K_REGEX: {
            if (!cJSON_IsString(pattern) || !*pattern->valuestring)
                BAD("pattern: a non-empty string");
            if (strlen(pattern->valuestring) > GL_MAX_PATTERN) BAD("pattern: 1000 bytes at most");
            if (++nregex > GL_MAX_REGEX) BAD("too many regular expressions (50 at most)");
            int ec;
            PCRE2_SIZE off;
            /* Matched against the normalised (case-folded) text. */
            ru->re = pcre2_compile((PCRE2_SPTR)pattern->valuestring, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_NEVER_BACKSLASH_C,
                                   &ec, &off, NULL);
            if (!ru->re) {
                PCRE2_UCHAR why[120];
                pcre2_get_error_message(ec, why, sizeof why);
                snprintf(msg, sizeof msg, "pattern: %s", (const char *)why);
                cJSON_Delete(root);
                return fail(s, err, idx, (int)off, msg);
            }
            if (use_jit) pcre2_jit_compile(ru->re, PCRE2_JIT_COMPLETE); /* else: the interpreter */
            break;
        }
        case K_PII: {
            if (!cJSON_IsArray(detect) || !cJSON_GetArraySize(detect))
                BAD("detect: a non-empty array of email, phone, card, iban");
            cJSON *d;
            cJSON_ArrayForEach(d, detect)
            {
                const char *v = cJSON_IsString(d) ? d->valuestring : "";
                unsigned bit = !strcmp(v, "email")   ? PII_EMAIL
                               : !strcmp(v, "phone") ? PII_PHONE
                               : !strcmp(v, "card")  ? PII_CARD
                               : !strcmp(v, "iban")  ? PII_IBAN
                                                     : 0;
                if (!bit) BAD("detect: email, phone, card or iban");
                ru->pii |= bit;
            }
            break;
        }
        case K_LINKS:
            if (allow) {
                if (!cJSON_IsArray(allow) || cJSON_GetArraySize(allow) > 200)
                    BAD("allow: an array of up to 200 domains");
                ru->domains =
                    mem_calloc((size_t)cJSON_GetArraySize(allow) + 1, sizeof *ru->domains);
                if (!ru->domains) BAD("out of memory");
                cJSON *d;
                cJSON_ArrayForEach(d, allow)
                {
                    if (!cJSON_IsString(d) || !valid_domain(d->valuestring))
                        BAD("allow: domain names");
                    char *dom = mem_strndup(d->valuestring, strlen(d->valuestring));
                    if (!dom) BAD("out of memory");
                    for (char *p = dom; *p; p++)
                        *p = (char)tolower((unsigned char)*p);
                    ru->domains[ru->ndomains++] = dom;
                }
            }
            break;
        default:
            if (!cJSON_IsNumber(max) || max->valuedouble != (double)(long)max->valuedouble ||
                max->valuedouble < 1 || max->valuedouble > 1000000)
                BAD("max: an integer from 1 to 1000000");
            ru->max = (long)max->valuedouble;
            if (kd == K_SLOW && ru->max > s->slow_max) s->slow_max = ru->max;
            if (kd == K_RATE) {
                /* rules with the same limit share a bucket */
                int b = 0;
                while (b < s->nrates && s->rates[b] != ru->max)
                    b++;
                if (b == GL_MAX_RATES)
                    BAD("rate: at most %d different limits in a set", GL_MAX_RATES);
                if (b == s->nrates) s->rates[s->nrates++] = (int32_t)ru->max;
                ru->bucket = b;
            }
            break;
        }
    }
#undef BAD
    cJSON_Delete(root);
    if (ac_build(&s->ac[0]) || ac_build(&s->ac[1])) return fail(s, err, -1, 0, "out of memory");
    s->mctx = pcre2_match_context_create(NULL);
    s->jit = pcre2_jit_stack_create(32 * 1024, 256 * 1024, NULL);
    if (!s->mctx) return fail(s, err, -1, 0, "out of memory");
    pcre2_set_match_limit(s->mctx, REGEX_MATCH_LIMIT);
    pcre2_set_depth_limit(s->mctx, REGEX_DEPTH_LIMIT);
    if (s->jit) pcre2_jit_stack_assign(s->mctx, NULL, s->jit);
    return s;
}

void gl_free(struct gl_set *s)
{
    if (!s) return;
    for (int i = 0; i < s->nrules; i++) {
        struct rule *r = &s->rules[i];
        mem_free(r->id);
        if (r->re) pcre2_code_free(r->re);
        for (int d = 0; d < r->ndomains; d++)
            mem_free(r->domains[d]);
        mem_free(r->domains);
    }
    ac_free(&s->ac[0]);
    ac_free(&s->ac[1]);
    if (s->mctx) pcre2_match_context_free(s->mctx);
    if (s->jit) pcre2_jit_stack_free(s->jit);
    mem_free(s);
}

int gl_nrules(const struct gl_set *s)
{
    return s ? s->nrules : 0;
}

int gl_rates(const struct gl_set *s, int32_t out[GL_MAX_RATES])
{
    if (!s) return 0;
    memcpy(out, s->rates, (size_t)s->nrates * sizeof *out);
    return s->nrates;
}

long gl_slow_max(const struct gl_set *s)
{
    return s ? s->slow_max : 0;
}
