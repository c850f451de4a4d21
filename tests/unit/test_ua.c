/* Unit tests of the User-Agent reduction: a table of real strings as
 * browsers, apps and tools send them, and bounded reading. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ua.h"

static const struct {
    const char *ua, *os, *browser;
} table[] = {
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36",
     "Windows", "Chrome"},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51",
     "Windows", "Edge"},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0", "Windows",
     "Firefox"},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36 OPR/109.0.0.0",
     "Windows", "Opera"},
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4.1 Safari/605.1.15",
     "macOS", "Safari"},
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36",
     "macOS", "Chrome"},
    {"Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0", "macOS",
     "Firefox"},
    {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
     "Safari/537.36",
     "Linux", "Chrome"},
    {"Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "Linux",
     "Firefox"},
    {"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/"
     "124.0.6367.60 Safari/537.36",
     "Linux", "Chrome"},
    {"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36",
     "Android", "Chrome"},
    {"Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
     "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
     "Android", "Samsung Internet"},
    {"Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0", "Android", "Firefox"},
    {"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.50",
     "Android", "Edge"},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
     "iOS", "Safari"},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
     "iOS", "Chrome"},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15",
     "iOS", "Firefox"},
    {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) EdgiOS/124.2478.50 Version/17.0 Mobile/15E148 Safari/604.1",
     "iOS", "Edge"},
    {"Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.4 Mobile/15E148 Safari/604.1",
     "iPadOS", "Safari"},
    {"Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36",
     "ChromeOS", "Chrome"},
    {"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Slack/4.37.101 Chrome/122.0.6261.156 Electron/29.3.0 Safari/537.36",
     "Windows", "Electron"},
    {"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "Other", "Bot"},
    {"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "Other", "Bot"},
    {"curl/7.88.1", "Other", "curl"},
    {"node", "Other", "Node.js"},
    {"undici", "Other", "Node.js"},
    {"parley-sdk/0.1 (node 20.11)", "Other", "Parley SDK"},
    {"Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0)", "Windows", "Other"},
    {"", "Other", "Other"},
    {"something else entirely", "Other", "Other"},
};

static void real_user_agents(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        struct ua_info u = ua_parse(table[i].ua, strlen(table[i].ua));
        if (strcmp(u.os, table[i].os) || strcmp(u.browser, table[i].browser)) {
            fprintf(stderr, "%s\n  want %s/%s, got %s/%s\n", table[i].ua, table[i].os,
                    table[i].browser, u.os, u.browser);
            bad++;
        }
    }
    assert_int_equal(bad, 0);
}

static void reads_only_len_bytes(void **state)
{
    (void)state;
    const char *ff = "Mozilla/5.0 (Windows NT 10.0; rv:125.0) Gecko/20100101 Firefox/125.0";
    /* Cut in the middle of "Firefox/": not Firefox, and no read past len. */
    size_t cut = (size_t)(strstr(ff, "Firefox/") - ff) + 4;
    struct ua_info u = ua_parse(ff, cut);
    assert_string_equal(u.browser, "Other");
    assert_string_equal(u.os, "Windows");
    u = ua_parse(NULL, 10);
    assert_string_equal(u.os, "Other");
    assert_string_equal(u.browser, "Other");
    u = ua_parse(ff, 0);
    assert_string_equal(u.browser, "Other");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(real_user_agents),
        cmocka_unit_test(reads_only_len_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
