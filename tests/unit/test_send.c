/* Unit tests of the send stage's decisions (send_decide, send_pace_ask):
 * policy (mutes, lock) before pace (the room's slow mode, rate and
 * slow_mode rules) before guidelines; among the guidelines' hits the
 * strictest decides, rewrites and flags apply to what is delivered or kept,
 * a refused send's pace is given back; moderators are exempt from lock and
 * slow mode, roles from the rules that name them. The verdicts come from
 * real rule sets (a workspace's and a room's, merged as the cache merges
 * them) evaluated by the guidelines engine: no app, loop or database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guidelines.h"
#include "pace.h"
#include "perm.h"
#include "rulecache.h"
#include "send.h"

#define ME "11111111-1111-1111-1111-111111111111"
#define OTHER "22222222-2222-2222-2222-222222222222"
#define NOW 1700000000000LL

/* The workspace's rules and a room's override: merged, the room's "watch"
 * (flag) replaces the workspace's "watch" (reject). */
static const char *WS_RULES =
    "{\"rules\":["
    "{\"id\":\"no-gamma\",\"kind\":\"words\",\"terms\":[\"gamma\"],\"action\":\"reject\"},"
    "{\"id\":\"review-beta\",\"kind\":\"words\",\"terms\":[\"beta\"],\"action\":\"hold\"},"
    "{\"id\":\"hide-eta\",\"kind\":\"words\",\"terms\":[\"eta\"],\"action\":\"shadow\"},"
    "{\"id\":\"watch\",\"kind\":\"words\",\"terms\":[\"omega\"],\"action\":\"reject\"},"
    "{\"id\":\"staff-ok\",\"kind\":\"words\",\"terms\":[\"zeta\"],\"action\":\"reject\","
    "\"exempt\":[\"owner\",\"admin\"]}"
    "]}";
static const char *ROOM_RULES =
    "{\"rules\":["
    "{\"id\":\"watch\",\"kind\":\"words\",\"terms\":[\"omega\"],\"action\":\"flag\"},"
    "{\"id\":\"flag-alpha\",\"kind\":\"words\",\"terms\":[\"alpha\"],\"action\":\"flag\"},"
    "{\"id\":\"mask-delta\",\"kind\":\"words\",\"terms\":[\"delta\"],\"action\":\"mask\"},"
    "{\"id\":\"redact-mail\",\"kind\":\"pii\",\"detect\":[\"email\"],\"action\":\"redact\"}"
    "]}";

struct fixture {
    struct gl_set *set;  /* WS_RULES with ROOM_RULES over them */
    struct rc_room room; /* policy: none, rules: set */
    struct gl_verdict v; /* the last evaluation */
    struct send_facts f; /* a member's send, not yet paced or evaluated */
    struct pace pv;      /* a pace result */
    struct rc_mute mutes[2];
};

static int setup(void **state)
{
    struct fixture *x = calloc(1, sizeof *x);
    char *merged = rulecache_merge(WS_RULES, ROOM_RULES);
    assert_non_null(merged);
    struct gl_error e;
    x->set = gl_compile(merged, strlen(merged), &e);
    free(merged);
    assert_non_null(x->set);
    x->room.set = x->set;
    x->f = (struct send_facts){.op = PP_OP_SEND,
                               .role = ROLE_MEMBER,
                               .person = ME,
                               .now_ms = NOW,
                               .room = &x->room,
                               .pace = SEND_PACE_UNASKED,
                               .max_body = 4096};
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *x = *state;
    gl_verdict_free(&x->v);
    gl_free(x->set);
    free(x);
    return 0;
}

/* Evaluates text as the stage does (the sender's role) and decides. */
static void decide_text(struct fixture *x, const char *text, struct send_decision *d)
{
    gl_verdict_free(&x->v);
    struct gl_ctx ctx = {.role = x->f.role, .since_last_ms = -1};
    assert_int_equal(gl_eval(x->room.set, text, strlen(text), &ctx, &x->v), 0);
    x->f.v = &x->v;
    send_decide(&x->f, d);
}

/* ---- no rules, policy only ---------------------------------------------- */

static void plain_room_stores(void **state)
{
    struct fixture *x = *state;
    x->room.set = NULL;
    struct send_decision d;
    send_decide(&x->f, &d);
    assert_int_equal(d.act, SEND_STORE);
    assert_false(d.flag);
    assert_false(d.rewrite);
    assert_false(d.refund);
}

static void rules_are_evaluated_before_storing(void **state)
{
    struct fixture *x = *state;
    struct send_decision d;
    send_decide(&x->f, &d);
    assert_int_equal(d.act, SEND_EVALUATE);
    decide_text(x, "hello there", &d);
    assert_int_equal(d.act, SEND_STORE);
}

static void muted_sender_is_refused_with_time_left(void **state)
{
    struct fixture *x = *state;
    x->mutes[0] = (struct rc_mute){.person = OTHER, .until = NOW + 999999};
    x->mutes[1] = (struct rc_mute){.person = ME, .until = NOW + 41500};
    x->room.mutes = x->mutes;
    x->room.nmutes = 2;
    struct send_decision d;
    send_decide(&x->f, &d);
    assert_int_equal(d.act, SEND_REFUSE);
    assert_int_equal(d.code, PP_E_MUTED);
    assert_string_equal(d.msg, "you are muted here for 42 more seconds");
    /* another person's mute is not mine */
    x->f.person = "33333333-3333-3333-3333-333333333333";
    send_decide(&x->f, &d);
    assert_int_equal(d.act, SEND_EVALUATE);
}

static void expired_mute_lets_through(void **state)
{
    struct fixture *x = *state;
    x->mutes[0] = (struct rc_mute){.person = ME, .until = NOW};
    x->room.mutes = x->mutes;
    x->room.nmutes = 1;
    x->room.set = NULL;
    struct send_decision d;
    send_decide(&x->f, &d);
    assert_int_equal(d.act, SEND_STORE);
}

static void a_mute_holds_moderators_too(void **state)
{
    struct fixture *x = *state;
    x->mutes[0] = (struct rc_mute){.person = ME, .until = NOW + 1000};
    x->room.mutes = x->mutes;
    x->room.nmutes = 1;
    x->f.role = ROLE_KEYUSER;
    struct send_decision d;
    send_decide(&x->f, &d);
    assert_int_equal(d.code, PP_E_MUTED);
}

/* Locked rooms are read-only but for the roles that moderate. */
static void lock_spares_moderators_only(void **state)
{
    struct fixture *x = *state;
    x->room.locked = true;
    x->room.set = NULL;
    for (int r = 0; r < ROLE__COUNT; r++) {
        x->f.role = r;
        struct send_decision d;
        send_decide(&x->f, &d);
        if (perm_allows((enum role)r, P_MODERATE)) {
            assert_int_equal(d.act, SEND_STORE);
        } else {
            assert_int_equal(d.act, SEND_REFUSE);
            assert_int_equal(d.code, PP_E_ROOM_LOCKED);
        }
    }
    /* the matrix as it stands: members and avatars are held back */
    x->f.role = ROLE_AVATAR;
    struct send_decision d;
    send_decide(&x->f, &d);
    assert_int_equal(d.code, PP_E_ROOM_LOCKED);
    x->f.role = ROLE_ADMIN; /* a consultant moderates */
    send_decide(&x->f, &d);
    assert_int_equal(d.act, SEND_STORE);
}

static void mute_comes_before_lock(void **state)
{
    struct fixture *x = *state;
    x->room.locked = true;
    x->mutes[0] = (struct rc_mute){.person = ME, .until = NOW + 1000};
    x->room.mutes = x->mutes;
    x->room.nmutes = 1;
    struct send_decision d;
    send_decide(&x->f, &d);
    assert_int_equal(d.code, PP_E_MUTED);
}

/* Policy refusals come before the guidelines: a locked room's send that the
 * rules would reject is refused as locked, and never evaluated. */
static void policy_before_guidelines(void **state)
{
    struct fixture *x = *state;
    x->room.locked = true;
    struct send_decision d;
    decide_text(x, "gamma", &d);
    assert_int_equal(d.code, PP_E_ROOM_LOCKED);
    x->f.v = NULL;
    send_decide(&x->f, &d);
    assert_int_equal(d.act, SEND_REFUSE);
    assert_int_equal(d.code, PP_E_ROOM_LOCKED);
}

/* ---- pace ---------------------------------------------------------------- */

static void slow_mode_asks_the_pace_first(void **state)
{
    struct fixture *x = *state;
    x->room.slow_mode_s = 10;
    struct send_decision d;
    send_decide(&x->f, &d);
    assert_int_equal(d.act, SEND_PACE); /* before the guidelines */
    struct pace p;
    assert_true(send_pace_ask(&x->f, &p));
    assert_int_equal(p.slow_ms, 10000);
    assert_int_equal(p.nrates, 0);
    assert_int_equal(p.keep_ms, 120000);
    /* the pace said wait: refused, nothing evaluated, nothing to give back */
    x->pv = (struct pace){.slow_ms = 10000, .wait_ms = 3250};
    x->f.pace = SEND_PACE_SLOW;
    x->f.pv = &x->pv;
    send_decide(&x->f, &d);
    assert_int_equal(d.act, SEND_REFUSE);
    assert_int_equal(d.code, PP_E_SLOW_MODE);
    assert_string_equal(d.msg, "slow mode: one message per 10 s; wait 3250 ms");
    assert_false(d.refund);
    /* counted: on to the guidelines */
    x->f.pace = SEND_PACE_OK;
    send_decide(&x->f, &d);
    assert_int_equal(d.act, SEND_EVALUATE);
    /* Redis down: refused as unavailable, not let through uncounted */
    x->f.pace = SEND_PACE_DOWN;
    send_decide(&x->f, &d);
    assert_int_equal(d.code, PP_E_UNAVAILABLE);
    assert_false(d.refund);
}

static void slow_mode_long_keeps_state_longer(void **state)
{
    struct fixture *x = *state;
    x->room.slow_mode_s = 600;
    struct pace p;
    assert_true(send_pace_ask(&x->f, &p));
    assert_int_equal(p.keep_ms, 600000);
}

static void moderators_and_edits_skip_slow_mode(void **state)
{
    struct fixture *x = *state;
    x->room.slow_mode_s = 10;
    x->room.set = NULL;
    struct send_decision d;
    for (int r = 0; r < ROLE__COUNT; r++) {
        x->f.role = r;
        send_decide(&x->f, &d);
        assert_int_equal(d.act, perm_allows((enum role)r, P_MODERATE) ? SEND_STORE : SEND_PACE);
    }
    x->f.role = ROLE_MEMBER;
    x->f.op = PP_OP_EDIT;
    send_decide(&x->f, &d);
    assert_int_equal(d.act, SEND_STORE);
}

static void rate_rules_are_paced_for_everyone(void **state)
{
    struct fixture *x = *state;
    struct gl_error e;
    const char *j = "{\"rules\":[{\"id\":\"r\",\"kind\":\"rate\",\"max\":20,\"action\":\"reject\"},"
                    "{\"id\":\"s\",\"kind\":\"slow_mode\",\"max\":300,\"action\":\"reject\"}]}";
    struct gl_set *s = gl_compile(j, strlen(j), &e);
    assert_non_null(s);
    x->room.set = s;
    x->f.role = ROLE_OWNER; /* the room's slow mode spares moderators; rules do not */
    struct pace p;
    assert_true(send_pace_ask(&x->f, &p));
    assert_int_equal(p.slow_ms, 0);
    assert_int_equal(p.nrates, 1);
    assert_int_equal(p.rates[0], 20);
    assert_int_equal(p.keep_ms, 300000);
    x->room.set = x->set;
    gl_free(s);
}

/* A connection with a send waiting for its pace: the next waits behind it. */
static void a_send_behind_a_paced_one_waits(void **state)
{
    struct fixture *x = *state;
    x->room.set = NULL;
    x->f.behind = true;
    struct send_decision d;
    send_decide(&x->f, &d);
    assert_int_equal(d.act, SEND_PACE);
    x->f.pace = SEND_PACE_OK;
    send_decide(&x->f, &d);
    assert_int_equal(d.act, SEND_STORE);
}

/* A mute that arrived while the pace was asked: refused, and given back. */
static void refused_after_counting_is_refunded(void **state)
{
    struct fixture *x = *state;
    x->f.pace = SEND_PACE_OK;
    x->f.pv = &x->pv;
    struct send_decision d;
    decide_text(x, "gamma", &d);
    assert_int_equal(d.code, PP_E_GUIDELINE);
    assert_true(d.refund);
    x->f.eval_err = -EILSEQ;
    x->f.v = NULL;
    send_decide(&x->f, &d);
    assert_int_equal(d.code, PP_E_BAD_REQUEST);
    assert_true(d.refund);
    /* the guidelines could not run (out of memory): refused, not let through */
    x->f.eval_err = -ENOMEM;
    send_decide(&x->f, &d);
    assert_int_equal(d.act, SEND_REFUSE);
    assert_int_equal(d.code, PP_E_INTERNAL);
    assert_true(d.refund);
    x->f.eval_err = 0;
    x->mutes[0] = (struct rc_mute){.person = ME, .until = NOW + 1000};
    x->room.mutes = x->mutes;
    x->room.nmutes = 1;
    send_decide(&x->f, &d);
    assert_int_equal(d.code, PP_E_MUTED);
    assert_true(d.refund);
    /* delivered: counted, kept */
    x->room.nmutes = 0;
    decide_text(x, "alpha", &d);
    assert_int_equal(d.act, SEND_STORE);
    assert_false(d.refund);
}

/* ---- guidelines: the strictest decides ----------------------------------- */

/* One text, what the stage does with it. */
static const struct {
    const char *text;
    enum pp_op op;
    int role;
    enum send_act act;
    bool held, flag, rewrite;
    const char *refusal; /* the message of a refusal */
} verdicts[] = {
    {"hello", PP_OP_SEND, ROLE_MEMBER, SEND_STORE, false, false, false, NULL},
    {"alpha", PP_OP_SEND, ROLE_MEMBER, SEND_STORE, false, true, false, NULL},
    {"delta", PP_OP_SEND, ROLE_MEMBER, SEND_STORE, false, false, true, NULL},
    /* mask and flag both apply */
    {"alpha delta", PP_OP_SEND, ROLE_MEMBER, SEND_STORE, false, true, true, NULL},
    /* redact with mask: rewritten */
    {"delta a@b.example", PP_OP_SEND, ROLE_MEMBER, SEND_STORE, false, false, true, NULL},
    /* hold beats flag and mask; both still apply to what is kept */
    {"alpha beta delta", PP_OP_SEND, ROLE_MEMBER, SEND_KEEP, true, true, true, NULL},
    {"beta", PP_OP_SEND, ROLE_MEMBER, SEND_KEEP, true, false, false, NULL},
    /* shadow below hold */
    {"eta", PP_OP_SEND, ROLE_MEMBER, SEND_KEEP, false, false, false, NULL},
    {"eta beta", PP_OP_SEND, ROLE_MEMBER, SEND_KEEP, true, false, false, NULL},
    {"beta eta", PP_OP_SEND, ROLE_MEMBER, SEND_KEEP, true, false, false, NULL},
    /* reject beats everything, and a refused send is not flagged */
    {"alpha beta gamma delta", PP_OP_SEND, ROLE_MEMBER, SEND_REFUSE, false, false, false,
     "refused by guideline \"no-gamma\""},
    {"gamma alpha", PP_OP_SEND, ROLE_MEMBER, SEND_REFUSE, false, false, false,
     "refused by guideline \"no-gamma\""},
    /* the room's "watch" (flag) replaced the workspace's (reject) */
    {"omega", PP_OP_SEND, ROLE_MEMBER, SEND_STORE, false, true, false, NULL},
    /* exemptions: the rule names owner and admin (consultants); avatars pass
     * the guidelines like people */
    {"zeta", PP_OP_SEND, ROLE_MEMBER, SEND_REFUSE, false, false, false,
     "refused by guideline \"staff-ok\""},
    {"zeta", PP_OP_SEND, ROLE_AVATAR, SEND_REFUSE, false, false, false,
     "refused by guideline \"staff-ok\""},
    {"zeta", PP_OP_SEND, ROLE_ADMIN, SEND_STORE, false, false, false, NULL},
    {"zeta", PP_OP_SEND, ROLE_OWNER, SEND_STORE, false, false, false, NULL},
    {"zeta", PP_OP_SEND, ROLE_KEYUSER, SEND_REFUSE, false, false, false,
     "refused by guideline \"staff-ok\""},
    /* an edit cannot wait for review: refused, naming the rule */
    {"beta", PP_OP_EDIT, ROLE_MEMBER, SEND_REFUSE, false, false, false,
     "refused by guideline \"review-beta\""},
    {"eta", PP_OP_EDIT, ROLE_MEMBER, SEND_REFUSE, false, false, false,
     "refused by guideline \"hide-eta\""},
    {"alpha delta", PP_OP_EDIT, ROLE_MEMBER, SEND_STORE, false, true, true, NULL},
};

static void strictest_wins(void **state)
{
    struct fixture *x = *state;
    for (size_t i = 0; i < sizeof verdicts / sizeof *verdicts; i++) {
        x->f.op = verdicts[i].op;
        x->f.role = verdicts[i].role;
        struct send_decision d;
        decide_text(x, verdicts[i].text, &d);
        if (d.act != verdicts[i].act || d.held != verdicts[i].held || d.flag != verdicts[i].flag ||
            d.rewrite != verdicts[i].rewrite)
            fail_msg("case %zu \"%s\" (%s, role %d): act %d held %d flag %d rewrite %d", i,
                     verdicts[i].text, verdicts[i].op == PP_OP_EDIT ? "edit" : "send",
                     verdicts[i].role, d.act, d.held, d.flag, d.rewrite);
        if (verdicts[i].refusal) {
            assert_int_equal(d.code, PP_E_GUIDELINE);
            assert_string_equal(d.msg, verdicts[i].refusal);
        }
        assert_false(d.refund); /* never counted */
    }
}

/* What is stored for a rewrite is the verdict's text, the original never. */
static void rewrite_is_the_verdicts_text(void **state)
{
    struct fixture *x = *state;
    struct send_decision d;
    decide_text(x, "mail a@b.example about delta", &d);
    assert_true(d.rewrite);
    assert_string_equal(x->v.text, "mail [email removed] about *****");
}

/* A rewrite longer than max_body (a redaction's placeholder is longer
 * than what it replaces) is refused, and a paced send is given back; one
 * of exactly max_body is stored. */
static void rewrite_past_max_body_is_refused(void **state)
{
    struct fixture *x = *state;
    struct send_decision d;
    const char *text = "mail a@b.example about delta";
    const size_t out = strlen("mail [email removed] about *****");
    assert_true(out > strlen(text));
    x->f.max_body = out;
    decide_text(x, text, &d);
    assert_int_equal(d.act, SEND_STORE);
    assert_true(d.rewrite);
    x->f.max_body = out - 1;
    x->f.pace = SEND_PACE_OK;
    x->f.pv = &x->pv;
    decide_text(x, text, &d);
    assert_int_equal(d.act, SEND_REFUSE);
    assert_int_equal(d.code, PP_E_BODY_TOO_LONG);
    assert_non_null(strstr(d.msg, "redactions"));
    assert_false(d.rewrite);
    assert_true(d.refund);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(plain_room_stores),
        T(rules_are_evaluated_before_storing),
        T(muted_sender_is_refused_with_time_left),
        T(expired_mute_lets_through),
        T(a_mute_holds_moderators_too),
        T(lock_spares_moderators_only),
        T(mute_comes_before_lock),
        T(policy_before_guidelines),
        T(slow_mode_asks_the_pace_first),
        T(slow_mode_long_keeps_state_longer),
        T(moderators_and_edits_skip_slow_mode),
        T(rate_rules_are_paced_for_everyone),
        T(a_send_behind_a_paced_one_waits),
        T(refused_after_counting_is_refunded),
        T(strictest_wins),
        T(rewrite_is_the_verdicts_text),
        T(rewrite_past_max_body_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
