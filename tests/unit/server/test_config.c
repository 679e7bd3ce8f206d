/* trcd's configuration: defaults, TRC_* environment, flags winning over it, sizes with
 * suffixes, and a one-line error for every bad value. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../../server/config.h"

static int parse(int argc, char **argv, app_config *c, char *err) {
    FILE *out = fopen("/dev/null", "w");
    int rc = app_config_parse(argc, argv, c, out, err, 256);
    fclose(out);
    return rc;
}

static void clear_env(void) {
    const char *vars[] = {"TRC_PORT",       "TRC_HOST",        "TRC_MAX_BODY", "TRC_API_TOKEN",
                          "TRC_ACCESS_LOG", "TRC_CORS_ORIGIN", "TRC_MAX_BATCH"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        unsetenv(vars[i]);
}

static void test_defaults(void **state) {
    (void)state;
    clear_env();
    app_config c;
    char err[256];
    char *argv[] = {"trcd"};
    assert_int_equal(parse(1, argv, &c, err), 0);
    assert_string_equal(c.host, "127.0.0.1");
    assert_int_equal(c.port, 8080);
    assert_string_equal(c.models_dir, "models");
    assert_string_equal(c.data_dir, "var");
    assert_int_equal(c.max_body, 1u << 20);
    assert_int_equal(c.max_batch, 4096);
    assert_int_equal(c.max_jobs, 1);
    assert_null(c.cors_origin);
    assert_null(c.api_token);
    assert_int_equal(c.access_log, 1);
    assert_true(c.threads >= 1);
    /* the jobs/models limits */
    assert_int_equal(c.job_retention, 100);
    assert_int_equal(c.job_max_age, 604800);
    assert_int_equal(c.max_models, 64);
    assert_true(c.max_jobs_disk == (size_t)4 << 30);
    assert_int_equal(c.train_rate, 30);
    assert_true(c.max_work == (size_t)128 << 30);
    assert_int_equal(c.max_response, 4u << 20);
    char *argv2[] = {"trcd", "--max-jobs-disk", "64K", "--train-rate=0", "--max-work", "1G"};
    assert_int_equal(parse(6, argv2, &c, err), 0);
    assert_int_equal(c.max_jobs_disk, 64u << 10);
    assert_int_equal(c.train_rate, 0);
    assert_true(c.max_work == (size_t)1 << 30);
}

static void test_env_and_flags(void **state) {
    (void)state;
    clear_env();
    setenv("TRC_PORT", "9000", 1);
    setenv("TRC_MAX_BODY", "2M", 1);
    setenv("TRC_API_TOKEN", "tok", 1);
    setenv("TRC_ACCESS_LOG", "off", 1);
    app_config c;
    char err[256];
    char *argv[] = {"trcd", "--port",       "0", "--max-body=64K", "--cors-origin",
                    "*",    "--models-dir", "/m"};
    assert_int_equal(parse(8, argv, &c, err), 0);
    assert_int_equal(c.port, 0); /* the flag wins */
    assert_int_equal(c.max_body, 64u << 10);
    assert_string_equal(c.cors_origin, "*");
    assert_string_equal(c.models_dir, "/m");
    assert_string_equal(c.api_token, "tok");
    assert_int_equal(c.access_log, 0);
    char *argv2[] = {"trcd"};
    assert_int_equal(parse(1, argv2, &c, err), 0);
    assert_int_equal(c.port, 9000);
    assert_int_equal(c.max_body, 2u << 20);
    clear_env();
}

static void test_errors(void **state) {
    (void)state;
    clear_env();
    app_config c;
    char err[256];
    struct {
        int argc;
        char *argv[3];
        const char *needle;
    } bad[] = {
        {2, {"trcd", "--port"}, "needs a value"},
        {3, {"trcd", "--port", "x"}, "integer"},
        {3, {"trcd", "--port", "70000"}, "between"},
        {3, {"trcd", "--max-body", "1Q"}, "size"},
        {2, {"trcd", "--bogus"}, "unknown flag"},
        {2, {"trcd", "stray"}, "unexpected argument"},
        {3, {"trcd", "--access-log", "maybe"}, "true or false"},
        {3, {"trcd", "--host", ""}, "empty"},
        {3, {"trcd", "--max-models", "0"}, "between"},
        {3, {"trcd", "--train-rate", "-1"}, "between"},
        {3, {"trcd", "--max-response", "1K"}, "between"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(parse(bad[i].argc, bad[i].argv, &c, err), -1);
        if (!strstr(err, bad[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, err, bad[i].needle);
    }
    setenv("TRC_MAX_BATCH", "-3", 1);
    char *argv[] = {"trcd"};
    assert_int_equal(parse(1, argv, &c, err), -1);
    assert_non_null(strstr(err, "TRC_MAX_BATCH"));
    clear_env();
    char *help[] = {"trcd", "--help"};
    assert_int_equal(parse(2, help, &c, err), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_env_and_flags),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
