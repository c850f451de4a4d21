/*
 * guidelines.h - a workspace's communication guidelines: rules every message
 * passes before it is stored or seen. A rule set is compiled once (from the
 * JSON in protocol/GUIDELINES.md) and evaluated as a pure function
 * (text, rule set, sender context) -> verdict: no I/O, no global state, safe
 * to fuzz.
 *
 * Matching: word and phrase lists on Unicode-normalised text (NFKC, case
 * folded, marks and default-ignorable characters such as zero-width joiners
 * removed, optionally leetspeak folded), all terms of a rule set in one
 * Aho-Corasick pass; PCRE2 regular expressions with match and depth limits;
 * detectors for email addresses, phone numbers, payment card numbers (Luhn)
 * and IBANs (mod 97); links (all, or outside allowed domains); length and
 * mention limits; per-person rate and room slow mode (from the context).
 *
 * Actions, strictest first: reject, hold, shadow, redact, mask, flag, allow.
 * The strictest action of all hits decides; mask and redact rewrite the text
 * (the original of a redaction is never stored); every hit is reported.
 *
 * Ownership: gl_compile returns a set the caller frees with gl_free; a
 * verdict owns its rewritten text (gl_verdict_free). Every allocation goes
 * through mem.h (PCRE2, cJSON and utf8proc keep their own allocators).
 *
 * Files: guidelines.c compiles (and normalises), gleval.c evaluates; glset.h
 * is the compiled set's layout they share.
 */
#ifndef PARLEY_GUIDELINES_H
#define PARLEY_GUIDELINES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gl_action { GL_ALLOW, GL_FLAG, GL_MASK, GL_REDACT, GL_SHADOW, GL_HOLD, GL_REJECT };

#define GL_MAX_RULES 200      /* rules in a set */
#define GL_MAX_TERMS 20000    /* words and phrases in a set, all rules together */
#define GL_MAX_REGEX 50       /* regular expressions in a set */
#define GL_MAX_PATTERN 1000   /* bytes of one pattern or term */
#define GL_MAX_JSON (1 << 20) /* bytes of a rule set */
#define GL_MAX_HITS 32        /* hits reported per message */
#define GL_MAX_RATES 8        /* different rate limits in a set (a token bucket each) */

struct gl_set;

/* Why a rule set was refused: the rule's index (-1: the set as a whole), a
 * message, and for a regular expression the offset PCRE2 reports. */
struct gl_error {
    int rule;
    int offset;
    char message[200];
};

/* What the evaluation knows about the sender beyond the text: the person's
 * pace in the room, over all their connections and gateways (pace.h). */
struct gl_ctx {
    int role;              /* enum role (perm.h): rules may exempt roles */
    int64_t since_last_ms; /* since this person's last message in the room; < 0: none */
    /* Per rate limit of the set (gl_rates order), the tokens this person has
     * taken from its bucket before this message, in thousandths; a bucket of
     * limit max holds max tokens and refills at max per minute. NULL: the
     * rate rules do not apply (edits, dry runs). */
    const uint32_t *taken_milli;
};

struct gl_hit {
    int rule;              /* index in the set */
    const char *rule_id;   /* the rule's id (owned by the set) */
    enum gl_action action; /* what the rule asks */
    const char *kind;      /* "words", "regex", "email", "phone", "card", "iban", "link", ... */
    size_t start, end;     /* byte span in the original text (0, 0 for limits) */
};

struct gl_verdict {
    enum gl_action action; /* the strictest of the hits, GL_ALLOW without hits */
    int decisive;          /* the rule that decided, -1 without hits */
    char *text;            /* the rewritten text (masked/redacted), or NULL if unchanged */
    size_t len;            /* its length */
    struct gl_hit hits[GL_MAX_HITS];
    int nhits;      /* hits recorded (at most GL_MAX_HITS) */
    bool truncated; /* more hits than recorded */
};

/* Process-wide, before any compile: whether regular expressions are JIT
 * compiled (default yes). Valgrind cannot follow JIT-generated code and
 * reports false errors in it, so the valgrind test pass turns it off. */
void gl_use_jit(bool on);

struct gl_set *gl_compile(const char *json, size_t len, struct gl_error *err);
void gl_free(struct gl_set *s);
int gl_nrules(const struct gl_set *s);
/* The set's distinct rate limits (messages per minute), in bucket order. */
int gl_rates(const struct gl_set *s, int32_t out[GL_MAX_RATES]);
/* The longest slow_mode rule in seconds, 0 if none. */
long gl_slow_max(const struct gl_set *s);

/* 0; -EILSEQ when text is not valid UTF-8, -ENOMEM when an allocation
 * failed (the caller refuses the message either way: a text is never let
 * through unchecked or unmasked). v needs no freeing after an error. */
int gl_eval(const struct gl_set *s, const char *text, size_t len, const struct gl_ctx *ctx,
            struct gl_verdict *v);
void gl_verdict_free(struct gl_verdict *v);

const char *gl_action_name(enum gl_action a);

/* The normalisation used for word matching, exposed for tests: returns a
 * NUL-terminated string to free with mem_free (NULL on invalid UTF-8 or
 * allocation failure). */
char *gl_normalise(const char *text, size_t len, bool leet);

#endif
