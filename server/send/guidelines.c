#include "guidelines.h"

#include "perm.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <ctype.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#define REGEX_MATCH_LIMIT 100000 /* backtracking steps per match attempt */
#define REGEX_DEPTH_LIMIT 1000   /* nested backtracking, interpreter */

enum kind { K_WORDS, K_REGEX, K_PII, K_LINKS, K_MAX_LENGTH, K_MAX_MENTIONS, K_RATE, K_SLOW };
enum pii { PII_EMAIL = 1, PII_PHONE = 2, PII_CARD = 4, PII_IBAN = 8 };

struct rule {
    char *id;              /* the rule's id ("rule-<n>" if not given) */
    enum kind kind;        /* what it checks */
    enum gl_action action; /* what a hit asks */
    unsigned exempt;       /* bit per role that the rule does not apply to */
    bool whole_words;      /* words: match whole words only (default) */
    bool leet;             /* words: also fold leetspeak (0->o, 1->i, 3->e, ...) */
    unsigned pii;          /* pii: detectors (enum pii bits) */
    char **domains;        /* links: allowed domains (none: every link hits) */
    int ndomains;
    long max;       /* limits: length, mentions, per minute, seconds */
    int bucket;     /* rate: index of its limit in gl_set.rates */
    pcre2_code *re; /* regex */
};

/* Aho-Corasick over the bytes of normalised terms. */
struct acnode {
    int *kids;   /* child node per edge */
    uint8_t *ch; /* edge bytes */
    int nkids;   /* edges */
    int fail;    /* longest proper suffix that is a node */
    int out;     /* term ending here, or -1 */
    int dict;    /* next node on the fail chain with a term, or -1 */
    int depth;   /* bytes from the root */
};

struct term {
    int rule; /* the words rule it belongs to */
    int len;  /* bytes */
};

struct ac {
    struct acnode *n;
    int nn, cap;
    int root_next[256]; /* the root's edges, dense */
    struct term *terms;
    int nterms, terms_cap;
};

struct gl_set {
    struct rule rules[GL_MAX_RULES];
    int nrules;
    int32_t rates[GL_MAX_RATES]; /* distinct rate limits, one token bucket each */
    int nrates;
    long slow_max;   /* the longest slow_mode rule, seconds (0: none) */
    struct ac ac[2]; /* [0] plain, [1] leetspeak-folded */
    bool any_leet;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
};

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

/* Normalised text and, per byte of it, the span of the original code point
 * it came from (to mask the original). */
struct norm {
    char *s;
    size_t len, cap;
    size_t *from, *to;
};

static int norm_put(struct norm *n, int32_t cp, size_t from, size_t to)
{
    uint8_t buf[4];
    utf8proc_ssize_t k = utf8proc_encode_char(cp, buf);
    if (n->len + (size_t)k + 1 > n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 256;
        while (cap < n->len + (size_t)k + 1)
            cap *= 2;
        char *s = realloc(n->s, cap);
        size_t *f = realloc(n->from, cap * sizeof *f);
        size_t *t = realloc(n->to, cap * sizeof *t);
        if (s) n->s = s;
        if (f) n->from = f;
        if (t) n->to = t;
        if (!s || !f || !t) return -1;
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
static int normalise(const char *text, size_t len, bool leet, struct norm *n)
{
    memset(n, 0, sizeof *n);
    /* Room for the usual case up front: one allocation, not a doubling series. */
    n->cap = len + 16;
    n->s = malloc(n->cap);
    n->from = malloc(n->cap * sizeof *n->from);
    n->to = malloc(n->cap * sizeof *n->to);
    if (!n->s || !n->from || !n->to) return -1;
    n->s[0] = 0;
    size_t i = 0;
    while (i < len) {
        int32_t cp;
        utf8proc_ssize_t k =
            utf8proc_iterate((const uint8_t *)text + i, (utf8proc_ssize_t)(len - i), &cp);
        if (k <= 0) return -1;
        if (cp < 0x80) {
            /* ASCII: case folding is all there is to do (and the common case);
             * the buffer was sized for it, so no growth check is needed while
             * the output stays within len. */
            int32_t c = cp >= 'A' && cp <= 'Z' ? cp + 32 : cp;
            if (leet) c = leet_fold(c);
            if (n->len + 2 > n->cap) {
                if (norm_put(n, c, i, i + 1)) return -1;
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
            if (norm_put(n, leet ? leet_fold(out[j]) : out[j], i, i + (size_t)k)) return -1;
        i += (size_t)k;
    }
    return 0;
}

static void norm_free(struct norm *n)
{
    free(n->s);
    free(n->from);
    free(n->to);
}

char *gl_normalise(const char *text, size_t len, bool leet)
{
    struct norm n;
    if (normalise(text, len, leet, &n)) {
        norm_free(&n);
        return NULL;
    }
    free(n.from);
    free(n.to);
    return n.s;
}

/* ---- Aho-Corasick ------------------------------------------------------- */

static int ac_node(struct ac *a, int depth)
{
    if (a->nn == a->cap) {
        int cap = a->cap ? a->cap * 2 : 256;
        struct acnode *n = realloc(a->n, (size_t)cap * sizeof *n);
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

static int ac_child(const struct ac *a, int node, uint8_t c)
{
    if (node == 0) return a->root_next[c];
    const struct acnode *x = &a->n[node];
    for (int i = 0; i < x->nkids; i++)
        if (x->ch[i] == c) return x->kids[i];
    return -1;
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
        int next = ac_child(a, node, c);
        if (next < 0) {
            next = ac_node(a, (int)i + 1);
            if (next < 0) return -1;
            if (node == 0) {
                a->root_next[c] = next;
            } else {
                struct acnode *x = &a->n[node];
                int *k = realloc(x->kids, (size_t)(x->nkids + 1) * sizeof *k);
                uint8_t *ch = realloc(x->ch, (size_t)(x->nkids + 1));
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
        struct term *t = realloc(a->terms, (size_t)cap * sizeof *t);
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
    int *queue = malloc((size_t)a->nn * sizeof *queue), qh = 0, qt = 0;
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
            while ((t = ac_child(a, f, c)) < 0 && f != 0)
                f = a->n[f].fail;
            if (t < 0 || t == v) t = 0;
            a->n[v].fail = t;
            a->n[v].dict = a->n[t].out >= 0 ? t : a->n[t].dict;
            queue[qt++] = v;
        }
    }
    free(queue);
    return 0;
}

static void ac_free(struct ac *a)
{
    for (int i = 0; i < a->nn; i++) {
        free(a->n[i].kids);
        free(a->n[i].ch);
    }
    free(a->n);
    free(a->terms);
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
    struct gl_set *s = calloc(1, sizeof *s);
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
        ru->id = strdup(id ? id->valuestring : defid);
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
                    char *norm = gl_normalise(t->valuestring, tl, v == 1);
                    if (!norm) BAD("terms: invalid UTF-8");
                    /* Leading and trailing blanks would defeat whole words. */
                    size_t nl = strlen(norm), b = 0;
                    while (b < nl && norm[b] == ' ')
                        b++;
                    while (nl > b && norm[nl - 1] == ' ')
                        nl--;
                    int rc = nl > b ? ac_add(&s->ac[v], norm + b, nl - b, s->nrules - 1) : 0;
                    free(norm);
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
                ru->domains = calloc((size_t)cJSON_GetArraySize(allow) + 1, sizeof *ru->domains);
                if (!ru->domains) BAD("out of memory");
                cJSON *d;
                cJSON_ArrayForEach(d, allow)
                {
                    if (!cJSON_IsString(d) || !valid_domain(d->valuestring))
                        BAD("allow: domain names");
                    char *dom = strdup(d->valuestring);
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
        free(r->id);
        if (r->re) pcre2_code_free(r->re);
        for (int d = 0; d < r->ndomains; d++)
            free(r->domains[d]);
        free(r->domains);
    }
    ac_free(&s->ac[0]);
    ac_free(&s->ac[1]);
    if (s->mctx) pcre2_match_context_free(s->mctx);
    if (s->jit) pcre2_jit_stack_free(s->jit);
    free(s);
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
            struct edit *e = realloc(st->edits, (size_t)cap * sizeof *e);
            if (!e) return;
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
        while ((next = ac_child(a, node, c)) < 0 && node != 0)
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
    char *out = malloc(cap);
    if (!out) return;
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
    if (normalise(text, len, false, &n[0]) || (s->any_leet && normalise(text, len, true, &n[1]))) {
        norm_free(&n[0]);
        norm_free(&n[1]);
        return -1;
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
            if (!md) break;
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
    free(st.edits);
    norm_free(&n[0]);
    norm_free(&n[1]);
    return 0;
}

void gl_verdict_free(struct gl_verdict *v)
{
    free(v->text);
    v->text = NULL;
}
