/* The generated API token: made only beyond loopback with no token and no opt-out, 64 hex
 * characters, stored 0600 in the data directory, reused on the next start, refused when the
 * stored file is readable by others. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "../common.h"
#include "../../../server/api_token.h"

static app_config config(const char *host) {
    app_config c;
    memset(&c, 0, sizeof c);
    c.host = host;
    c.data_dir = test_tmp_path("var");
    return c;
}

static int setup(void **state) {
    (void)state;
    return test_tmpdir_make("api-token");
}

static int teardown(void **state) {
    (void)state;
    return test_rm_rf(test_tmpdir);
}

static void test_loopback_hosts_need_no_token(void **state) {
    (void)state;
    const char *hosts[] = {"127.0.0.1", "127.0.0.2", "localhost", "::1"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        app_config c = config(hosts[i]);
        char err[256];
        assert_int_equal(api_token_ensure(&c, err, sizeof err), 0);
        assert_null(c.api_token);
    }
    assert_false(api_token_host_is_loopback("0.0.0.0"));
    assert_false(api_token_host_is_loopback("::"));
    assert_false(api_token_host_is_loopback("10.1.2.3"));
}

static void test_given_token_or_opt_out_is_kept(void **state) {
    (void)state;
    char err[256];
    app_config c = config("0.0.0.0");
    c.api_token = "mine";
    assert_int_equal(api_token_ensure(&c, err, sizeof err), 0);
    assert_string_equal(c.api_token, "mine");
    app_config d = config("0.0.0.0");
    d.insecure_no_auth = 1;
    assert_int_equal(api_token_ensure(&d, err, sizeof err), 0);
    assert_null(d.api_token);
}

static void test_generated_stored_0600_and_reused(void **state) {
    (void)state;
    char err[256], first[80];
    app_config c = config("0.0.0.0");
    assert_int_equal(api_token_ensure(&c, err, sizeof err), 0);
    assert_non_null(c.api_token);
    assert_int_equal(strlen(c.api_token), 64);
    assert_int_equal(strspn(c.api_token, "0123456789abcdef"), 64);
    snprintf(first, sizeof first, "%s", c.api_token);

    struct stat st;
    assert_int_equal(stat(test_tmp_path("var/api-token"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    FILE *f = fopen(test_tmp_path("var/api-token"), "r");
    char line[80] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    line[strcspn(line, "\n")] = '\0';
    assert_string_equal(line, first);

    app_config again = config("0.0.0.0");
    assert_int_equal(api_token_ensure(&again, err, sizeof err), 0);
    assert_string_equal(again.api_token, first); /* clients keep working across a restart */

    /* a stored token others can read is not trusted: a new one replaces it */
    assert_int_equal(chmod(test_tmp_path("var/api-token"), 0644), 0);
    app_config third = config("0.0.0.0");
    assert_int_equal(api_token_ensure(&third, err, sizeof err), 0);
    assert_string_not_equal(third.api_token, first);
    assert_int_equal(stat(test_tmp_path("var/api-token"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loopback_hosts_need_no_token),
        cmocka_unit_test(test_given_token_or_opt_out_is_kept),
        cmocka_unit_test(test_generated_stored_0600_and_reused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
