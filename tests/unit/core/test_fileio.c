/* Tests of fileio: opening only regular files, whole-file reads, the temporary files of atomic
 * writes (naming, exclusivity, refusals), atomic replacement with nothing left behind, mkdir -p. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "trc/error.h"
#include "trc/fileio.h"

#include "../common.h"

static int setup(void **state) {
    (void)state;
    return test_tmpdir_make("fileio");
}

static int teardown(void **state) {
    (void)state;
    return test_rm_rf(test_tmpdir);
}

/* Number of entries in test_tmpdir (besides . and ..). */
static int entries(void) {
    DIR *d = opendir(test_tmpdir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void expect_msg(const char *needle) {
    if (!strstr(trc_errmsg(), needle))
        fail_msg("error '%s' does not mention '%s'", trc_errmsg(), needle);
}

static void test_open_and_read(void **state) {
    (void)state;
    const char *path = test_tmp_path("a.txt");
    assert_int_equal(trc_write_file_atomic(path, "hello", 5), TRC_OK);
    int fd;
    size_t size = 0;
    assert_int_equal(trc_open_regular(path, &fd, &size), TRC_OK);
    assert_true(fd >= 0);
    assert_int_equal(size, 5);
    close(fd);

    uint8_t *buf;
    size_t len;
    assert_int_equal(trc_read_file(path, &buf, &len), TRC_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "hello", 6); /* NUL-terminated */
    free(buf);

    assert_int_equal(trc_open_regular(test_tmp_path("none"), &fd, NULL), TRC_EIO);
    expect_msg("none: cannot open: No such file");
    assert_int_equal(trc_read_file(test_tmpdir, &buf, &len), TRC_EIO);
    expect_msg("not a regular file");
    assert_null(buf);
    assert_int_equal(len, 0);
}

static void test_create_tmp(void **state) {
    (void)state;
    const char *path = test_tmp_path("b.bin");
    char tmp[4200], tmp2[4200];
    int fd, fd2;
    assert_int_equal(trc_create_tmp(path, tmp, sizeof tmp, &fd), TRC_OK);
    assert_int_equal(trc_create_tmp(path, tmp2, sizeof tmp2, &fd2), TRC_OK);
    assert_true(strncmp(tmp, path, strlen(path)) == 0 && strstr(tmp, ".tmp.") != NULL);
    assert_string_not_equal(tmp, tmp2); /* each writer gets its own */
    assert_int_equal(write(fd, "xy", 2), 2);
    close(fd);
    close(fd2);
    unlink(tmp2);
    assert_int_equal(trc_commit_file(tmp, path), TRC_OK);
    assert_int_equal(entries(), 1); /* renamed into place */

    char small[8];
    assert_int_equal(trc_create_tmp(path, small, sizeof small, &fd), TRC_EINVAL);
    assert_int_equal(fd, -1);
    assert_int_equal(trc_create_tmp(test_tmp_path("no/dir/c"), tmp, sizeof tmp, &fd), TRC_EIO);
    expect_msg("cannot create");
    assert_int_equal(entries(), 1);
}

static void test_atomic_replace_and_mkdir(void **state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s", test_tmp_path("c.txt"));
    assert_int_equal(trc_write_file_atomic(path, "old", 3), TRC_OK);
    assert_int_equal(trc_write_file_atomic(path, "newer", 5), TRC_OK);
    uint8_t *buf;
    size_t len;
    assert_int_equal(trc_read_file(path, &buf, &len), TRC_OK);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "newer", 5);
    free(buf);
    assert_int_equal(entries(), 1); /* no temporary left */
    assert_int_equal(trc_write_file_atomic(test_tmp_path("no/dir/x"), "x", 1), TRC_EIO);

    char deep[600];
    snprintf(deep, sizeof deep, "%s/d/e/f", test_tmpdir);
    assert_int_equal(trc_mkdir_p(deep), TRC_OK);
    assert_int_equal(trc_mkdir_p(deep), TRC_OK); /* already there */
    struct stat st;
    assert_int_equal(stat(deep, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(trc_mkdir_p(test_tmp_path("c.txt")), TRC_EIO); /* a file */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_and_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_replace_and_mkdir, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
