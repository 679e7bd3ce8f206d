/* Helpers shared by the unit tests: fixture paths under $TRC_TEST_DATA and a temporary directory
 * per test binary. Header-only: each test file is its own binary, so everything here is static
 * (inline, so a file that uses only part of it compiles without unused-function warnings). */
#ifndef TRC_TESTS_COMMON_H
#define TRC_TESTS_COMMON_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* The fixture `name` under $TRC_TEST_DATA (default tests/data); a static buffer, overwritten by
 * the next call. */
static inline const char *test_data_path(const char *name) {
    static char path[1024];
    const char *d = getenv("TRC_TEST_DATA");
    snprintf(path, sizeof path, "%s/%s", d && *d ? d : "tests/data", name);
    return path;
}

/* The test's temporary directory, made by test_tmpdir_make. */
static char test_tmpdir[256];

/* Makes a fresh directory /tmp/trc-test-<tag>-XXXXXX into test_tmpdir; 0 or -1 (a cmocka setup
 * can return it). */
static inline int test_tmpdir_make(const char *tag) {
    snprintf(test_tmpdir, sizeof test_tmpdir, "/tmp/trc-test-%s-XXXXXX", tag);
    return mkdtemp(test_tmpdir) ? 0 : -1;
}

/* `name` inside test_tmpdir; a static buffer, overwritten by the next call. */
static inline const char *test_tmp_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir, name);
    return path;
}

static inline int test_rm_entry(const char *path, const struct stat *st, int flag,
                                struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything below it (like rm -rf); 0 or -1. */
static inline int test_rm_rf(const char *dir) {
    return nftw(dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

#endif
