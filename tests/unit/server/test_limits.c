/* Unit tests of trcd's small limit helpers: the per-client token bucket of POST /v1/train
 * (burst, refill, Retry-After, a bounded table under many addresses) and the file helpers
 * (temporary-file names, stale-file cleanup, disk usage, server paths taken out of messages). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../../server/files.h"
#include "../../../server/ratelimit.h"

#include "../common.h"

static void test_bucket(void **state) {
    (void)state;
    static ratelimit rl;
    ratelimit_init(&rl, 6); /* 6 a minute: one token every 10 s */
    for (int i = 0; i < 6; i++)
        assert_int_equal(ratelimit_take(&rl, "10.0.0.1", 100.0), 0);
    assert_int_equal(ratelimit_take(&rl, "10.0.0.1", 100.0), 10);
    assert_int_equal(ratelimit_take(&rl, "10.0.0.1", 104.0), 6); /* 0.4 token refilled */
    assert_int_equal(ratelimit_take(&rl, "10.0.0.2", 104.0), 0); /* another client */
    assert_int_equal(ratelimit_take(&rl, "10.0.0.1", 110.0), 0); /* one token again */
    assert_int_equal(ratelimit_take(&rl, "10.0.0.1", 110.0), 10);
    /* a long pause refills up to the burst, not beyond */
    for (int i = 0; i < 6; i++)
        assert_int_equal(ratelimit_take(&rl, "10.0.0.1", 10000.0), 0);
    assert_true(ratelimit_take(&rl, "10.0.0.1", 10000.0) > 0);
    ratelimit_free(&rl);
    ratelimit_init(&rl, 0); /* off */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(ratelimit_take(&rl, "10.0.0.1", 1.0), 0);
    ratelimit_free(&rl);
}

/* More addresses than slots: the table reuses the slot idle longest; memory stays fixed. */
static void test_many_clients(void **state) {
    (void)state;
    static ratelimit rl;
    ratelimit_init(&rl, 1);
    char addr[32];
    for (int i = 0; i < 3 * RATELIMIT_SLOTS; i++) {
        snprintf(addr, sizeof addr, "10.1.%d.%d", i / 256, i % 256);
        assert_int_equal(ratelimit_take(&rl, addr, (double)i), 0);
    }
    /* the newest address is still limited */
    assert_true(ratelimit_take(&rl, addr, 3.0 * RATELIMIT_SLOTS) > 0);
    ratelimit_free(&rl);
}

static void test_tmp_names(void **state) {
    (void)state;
    assert_true(files_is_tmp("a.safetensors.tmp.123.0"));
    assert_true(files_is_tmp("x.tmp.1.tmp.2.3"));
    assert_false(files_is_tmp("a.safetensors"));
    assert_false(files_is_tmp("notes.tmp.txt"));
    assert_false(files_is_tmp("a.tmp.12."));
    assert_false(files_is_tmp("a.tmp..3"));
    assert_false(files_is_tmp("a.tmp.1.2x"));
}

static void write_file(const char *dir, const char *name, size_t n) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fputc('x', f);
    fclose(f);
}

static void test_stale_and_usage(void **state) {
    (void)state;
    assert_int_equal(test_tmpdir_make("limits"), 0);
    char sub[300], path[600];
    snprintf(sub, sizeof sub, "%s/job", test_tmpdir);
    assert_int_equal(mkdir(sub, 0755), 0);
    write_file(test_tmpdir, "m.safetensors", 100);
    write_file(test_tmpdir, "m.safetensors.tmp.77.1", 100);
    write_file(sub, "last.safetensors.tmp.77.2", 100000);
    write_file(sub, "keep.tmp.txt", 10);
    uint64_t before = files_disk_usage(test_tmpdir);
    assert_true(before >= 100000);
    assert_int_equal(files_remove_stale_tmp(test_tmpdir), 2);
    assert_true(files_disk_usage(test_tmpdir) < before);
    snprintf(path, sizeof path, "%s/keep.tmp.txt", sub);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/m.safetensors.tmp.77.1", test_tmpdir);
    assert_int_not_equal(access(path, F_OK), 0);
    assert_int_equal(files_remove_tree(sub), 0);
    assert_int_not_equal(access(sub, F_OK), 0);
    assert_int_equal(files_disk_usage("/nonexistent/trc"), 0);
    /* paths under the directory read relative to it */
    char msg[1024];
    snprintf(msg, sizeof msg, "writing %s/jobs/ab/last.safetensors: full; and %s/x", test_tmpdir,
             test_tmpdir);
    files_scrub(msg, test_tmpdir);
    assert_string_equal(msg, "writing jobs/ab/last.safetensors: full; and x");
    assert_int_equal(test_rm_rf(test_tmpdir), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_many_clients),
        cmocka_unit_test(test_tmp_names),
        cmocka_unit_test(test_stale_and_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
