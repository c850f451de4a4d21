/*
 * glset.h - the layout of a compiled rule set, shared by the two halves of
 * the guidelines engine: guidelines.c compiles it (and owns normalisation
 * and the Aho-Corasick automaton), gleval.c evaluates a text against it.
 * Not for other modules: they see guidelines.h only.
 *
 * Ownership: everything a set points to is the set's, allocated through
 * mem.h (pcre2 keeps its own allocator) and freed by gl_free.
 */
#ifndef PARLEY_GLSET_H
#define PARLEY_GLSET_H

#include "guidelines.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

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

/* Normalised text and, per byte of it, the span of the original code point
 * it came from (to mask the original). */
struct norm {
    char *s;
    size_t len, cap;
    size_t *from, *to;
};

/* Normalises text into n (NFKC-style, case folded, marks and default
 * ignorables removed, leetspeak folded when asked): 0, -EILSEQ when text is
 * not valid UTF-8, -ENOMEM. n is to be freed with gl_norm_free either way. */
int gl_norm_text(const char *text, size_t len, bool leet, struct norm *n);
void gl_norm_free(struct norm *n);

/* The node reached from node over byte c, or -1. */
static inline int gl_ac_child(const struct ac *a, int node, uint8_t c)
{
    if (node == 0) return a->root_next[c];
    const struct acnode *x = &a->n[node];
    for (int i = 0; i < x->nkids; i++)
        if (x->ch[i] == c) return x->kids[i];
    return -1;
}

#endif
