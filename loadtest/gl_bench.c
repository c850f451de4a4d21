/*
 * gl-bench - the guidelines engine's verdict time, measured (not a test):
 * a 500-byte message against a rule set of 2,000 words, 20 regular
 * expressions and every detector (personal data, links, limits), N times;
 * prints the median and p99 of one evaluation and the compile time.
 *
 *   build/loadtest/gl-bench [evaluations]      (default 20000)
 */
#include "guidelines.h"
#include "perm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 20000;
    if (n < 100 || n > 10000000) n = 20000;
    /* 2,000 words shaped like real ones: consonant-vowel syllables. */
    size_t cap = 1 << 20, len = 0;
    char *json = malloc(cap);
    len += (size_t)snprintf(
        json + len, cap - len,
        "{\"rules\":[{\"id\":\"words\",\"kind\":\"words\",\"action\":\"mask\",\"terms\":[");
    const char *cons = "bcdfghjklmnprstvwz", *vow = "aeiou";
    srand(7);
    for (int i = 0; i < 2000; i++) {
        char w[16];
        int syl = 2 + rand() % 3, k = 0;
        for (int s = 0; s < syl; s++) {
            w[k++] = cons[rand() % 18];
            w[k++] = vow[rand() % 5];
        }
        w[k] = 0;
        len += (size_t)snprintf(json + len, cap - len, "%s\"%s\"", i ? "," : "", w);
    }
    len += (size_t)snprintf(json + len, cap - len, "]}");
    static const char *const res[20] = {"ticket-[0-9]{3,}",
                                        "\\\\b(?:ssn|social security)\\\\b",
                                        "acct\\\\s*#?\\\\d{6,}",
                                        "(?:buy|sell) now",
                                        "\\\\bpassword\\\\s*[:=]",
                                        "confidential",
                                        "\\\\b[0-9]{3}-[0-9]{2}-[0-9]{4}\\\\b",
                                        "internal only",
                                        "\\\\bapi[_-]?key\\\\b",
                                        "free money",
                                        "click here",
                                        "\\\\bwire transfer\\\\b",
                                        "\\\\bbitcoin\\\\b",
                                        "guaranteed returns?",
                                        "limited offer",
                                        "\\\\bvpn\\\\b",
                                        "do not share",
                                        "\\\\bsecret\\\\b",
                                        "hr-case-\\\\d+",
                                        "salary of \\\\d+"};
    for (int i = 0; i < 20; i++)
        len += (size_t)snprintf(json + len, cap - len,
                                ",{\"kind\":\"regex\",\"pattern\":\"%s\",\"action\":\"flag\"}",
                                res[i]);
    len += (size_t)snprintf(
        json + len, cap - len,
        ",{\"kind\":\"pii\",\"detect\":[\"email\",\"phone\",\"card\",\"iban\"],"
        "\"action\":\"redact\"},{\"kind\":\"links\",\"allow\":[\"parley.example\"],"
        "\"action\":\"hold\"},{\"kind\":\"max_length\",\"max\":4000,\"action\":"
        "\"reject\"},{\"kind\":\"max_mentions\",\"max\":10,\"action\":\"reject\"},"
        "{\"kind\":\"rate\",\"max\":30,\"action\":\"reject\"},{\"kind\":"
        "\"slow_mode\",\"max\":1,\"action\":\"reject\"}]}");
    struct gl_error e;
    double t0 = now_us();
    struct gl_set *s = gl_compile(json, len, &e);
    double compile_ms = (now_us() - t0) / 1000;
    if (!s) {
        fprintf(stderr, "gl-bench: compile failed: rule %d: %s\n", e.rule, e.message);
        return 1;
    }
    /* 500 bytes of ordinary workshop prose with one email and one link. */
    char msg[1200];
    const char *base =
        "Thanks everyone for the session this morning. As discussed, the team will review the "
        "onboarding survey results and prepare three options for the new feedback process. "
        "Please send comments to maria.lopez@client.example before Friday, and have a look at "
        "https://docs.parley.example/agenda for the updated agenda. We also agreed that the "
        "quarterly review will move to the second week of the month, and that every department "
        "nominates one person for the working group. Questions? Reply here or ping me directly. ";
    snprintf(msg, sizeof msg, "%s", base);
    msg[500] = 0; /* exactly 500 bytes */
    size_t mlen = strlen(msg);
    double *lat = malloc((size_t)n * sizeof *lat);
    uint32_t taken[GL_MAX_RATES] = {2000}; /* two tokens of the rate bucket taken */
    struct gl_ctx ctx = {.role = ROLE_MEMBER, .since_last_ms = 5000, .taken_milli = taken};
    int hits = 0;
    for (int i = 0; i < n; i++) {
        struct gl_verdict v;
        double a = now_us();
        gl_eval(s, msg, mlen, &ctx, &v);
        lat[i] = now_us() - a;
        hits = v.nhits;
        gl_verdict_free(&v);
    }
    qsort(lat, (size_t)n, sizeof *lat, cmp);
    printf("gl-bench: %zu-byte message, 2000 words + 20 regexes + pii + links + limits; "
           "compile %.1f ms; %d evaluations: median %.2f us, p99 %.2f us (%d hits each)\n",
           mlen, compile_ms, n, lat[n / 2], lat[(size_t)n * 99 / 100], hits);
    free(lat);
    free(json);
    gl_free(s);
    return 0;
}
