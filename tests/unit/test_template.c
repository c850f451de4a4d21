/* Unit tests of the deliverer's templates: the shipped English and German
 * sets load; rendering fills placeholders, escapes values in HTML, keeps
 * a subject on one line and falls back to the default language; a template
 * with an unknown placeholder, one its kind cannot fill, an unclosed one or
 * a missing file refuses the load, naming the file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mem.h"
#include "template.h"

static const struct tpl_vars vars = {{
    [TV_WORKSPACE_NAME] = "Acme <R&D>",
    [TV_INVITER] = "Carla \"CC\" Consultant",
    [TV_FIRST_NAME] = "Ina",
    [TV_ROLE] = "member",
    [TV_LINK] = "https://app.example/#/redeem/abc_DEF-123",
    [TV_EXPIRES_AT] = "2030-01-02 03:04 UTC",
    [TV_WEB_URL] = "https://app.example",
}};

static void shipped(void **state)
{
    (void)state;
    struct tpl_set *s;
    char err[512];
    assert_int_equal(tpl_load(TEMPLATES, "en", &s, err, sizeof err), 0);
    const char *used;
    char *t = tpl_render(s, "en", TPL_INVITATION, TPL_TEXT, &vars, &used);
    assert_string_equal(used, "en");
    assert_non_null(strstr(t, "Carla \"CC\" Consultant invites you"));
    assert_non_null(strstr(t, "https://app.example/#/redeem/abc_DEF-123"));
    assert_non_null(strstr(t, "until 2030-01-02 03:04 UTC"));
    mem_free(t);
    /* HTML escapes the values, never the template's own markup. */
    t = tpl_render(s, "en", TPL_INVITATION, TPL_HTML, &vars, &used);
    assert_non_null(strstr(t, "<strong>Acme &lt;R&amp;D&gt;</strong>"));
    assert_non_null(strstr(t, "Carla &quot;CC&quot; Consultant"));
    assert_null(strstr(t, "<R&D>"));
    mem_free(t);
    /* German through the workspace's language. */
    t = tpl_render(s, "de", TPL_INVITATION, TPL_SUBJECT, &vars, &used);
    assert_string_equal(used, "de");
    assert_string_equal(t, "Carla \"CC\" Consultant lädt Sie zu Acme <R&D> auf Parley ein");
    mem_free(t);
    /* A language without templates: the default. */
    t = tpl_render(s, "fi", TPL_VERIFY_SIGNUP, TPL_SUBJECT, &vars, &used);
    assert_string_equal(used, "en");
    assert_string_equal(t, "Confirm your Parley account");
    mem_free(t);
    /* A part the kind does not have. */
    assert_null(tpl_render(s, "en", TPL_VERIFY_PHONE, TPL_HTML, &vars, &used));
    assert_true(tpl_has_channel(TPL_VERIFY_PHONE, 1));
    assert_false(tpl_has_channel(TPL_VERIFY_PHONE, 0));
    assert_false(tpl_has_channel(TPL_VERIFY_SIGNUP, 1));
    tpl_free(s);
}

static void one_line_subject(void **state)
{
    (void)state;
    struct tpl_set *s;
    char err[512];
    assert_int_equal(tpl_load(TEMPLATES, "en", &s, err, sizeof err), 0);
    struct tpl_vars v = vars;
    v.v[TV_INVITER] = "Eve\r\nBcc: victim@example.com";
    char *t = tpl_render(s, "en", TPL_INVITATION, TPL_SUBJECT, &v, NULL);
    assert_null(strchr(t, '\n'));
    assert_null(strchr(t, '\r'));
    mem_free(t);
    tpl_free(s);
}

static void kinds(void **state)
{
    (void)state;
    assert_int_equal(tpl_kind_of("invitation", NULL), TPL_INVITATION);
    assert_int_equal(tpl_kind_of("verification", "signup"), TPL_VERIFY_SIGNUP);
    assert_int_equal(tpl_kind_of("verification", "email"), TPL_VERIFY_EMAIL);
    assert_int_equal(tpl_kind_of("verification", "phone"), TPL_VERIFY_PHONE);
    assert_int_equal(tpl_kind_of("address_in_use", NULL), TPL_ADDRESS_IN_USE);
    assert_int_equal(tpl_kind_of("verification", NULL), -1);
    assert_int_equal(tpl_kind_of("export_ready", NULL), -1);
}

/* A copy of the shipped English set in a temporary directory with one
 * file replaced (content NULL: removed); returns the directory. */
static char variant_dir[256];

static const char *variant(const char *file, const char *content)
{
    char *dir = variant_dir;
    snprintf(variant_dir, sizeof variant_dir, "/tmp/parley-tpl-%d", getpid());
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s && cp -r %s/en %s/", dir, dir, TEMPLATES,
             dir);
    assert_int_equal(system(cmd), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/en/%s", dir, file);
    if (!content) {
        unlink(path);
    } else {
        FILE *f = fopen(path, "w");
        fputs(content, f);
        fclose(f);
    }
    return dir;
}

static void refused(const char *file, const char *content, const char *why)
{
    struct tpl_set *s = (struct tpl_set *)1;
    char err[512];
    assert_int_equal(tpl_load(variant(file, content), "en", &s, err, sizeof err), -1);
    assert_null(s);
    if (!strstr(err, why) || !strstr(err, file)) fail_msg("message: %s", err);
}

static void bad_templates(void **state)
{
    (void)state;
    refused("invitation.txt", "Hello {{firstname}}, {{link}}", "unknown placeholder {{firstname}}");
    /* A placeholder another kind has but this one cannot fill. */
    refused("address_in_use.txt", "{{inviter}} tried", "unknown placeholder {{inviter}}");
    refused("verification_email.html", "<a href=\"{{link}\">", "not closed");
    refused("invitation.sms", NULL, "missing");
    refused("verification_signup.subject", "Welcome\nBcc: x", "line break");
    refused("invitation.txt", "bad \xff byte", "not UTF-8");
    /* Spaces inside the braces are allowed; the default must exist. */
    struct tpl_set *s;
    char err[512];
    assert_int_equal(tpl_load(variant("invitation.sms", "{{ link }}"), "en", &s, err, sizeof err),
                     0);
    char *t = tpl_render(s, NULL, TPL_INVITATION, TPL_SMS, &vars, NULL);
    assert_string_equal(t, "https://app.example/#/redeem/abc_DEF-123");
    mem_free(t);
    tpl_free(s);
    assert_int_equal(tpl_load(variant("invitation.sms", "x"), "de", &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "default language de"));
}

/* The variants' directory goes with the run. */
static int remove_variant(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", variant_dir);
    return variant_dir[0] && system(cmd) != 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(shipped),
        cmocka_unit_test(one_line_subject),
        cmocka_unit_test(kinds),
        cmocka_unit_test(bad_templates),
    };
    return cmocka_run_group_tests(tests, NULL, remove_variant);
}
