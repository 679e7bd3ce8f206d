/* Tests of the .npy/.npz layer: files written by numpy itself (tests/data, made by
 * make_npz_fixtures.py), round trips, atomic writes, and rejection of corrupt, truncated and
 * malformed input (plus a mutation sweep that must never crash; run it under the sanitizers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trc/error.h"
#include "trc/fileio.h"
#include "trc/npz.h"
#include "trc/rng.h"

#include "../common.h"

/* Number of entries in test_tmpdir whose name contains ".tmp." (leftovers of a failed write). */
static int leftovers(void) {
    DIR *d = opendir(test_tmpdir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

static int setup(void **state) {
    (void)state;
    return test_tmpdir_make("npz");
}

static int teardown(void **state) {
    (void)state;
    return test_rm_rf(test_tmpdir);
}

static trc_npz *open_ok(const char *path) {
    trc_npz *z = NULL;
    if (trc_npz_open(path, &z))
        fail_msg("open %s: %s", path, trc_errmsg());
    return z;
}

static void read_ok(trc_npz *z, const char *key, trc_npy_array *a) {
    if (trc_npz_read(z, key, a))
        fail_msg("read %s: %s", key, trc_errmsg());
}

static void test_read_numpy_types(void **state) {
    (void)state;
    trc_npz *z = open_ok(test_data_path("numpy_types.npz"));
    assert_int_equal(trc_npz_count(z), 8);
    assert_string_equal(trc_npz_key(z, 0), "f32");
    assert_true(trc_npz_has(z, "words") && !trc_npz_has(z, "nope"));
    trc_npy_array a;
    float f[6];
    double d[6];
    read_ok(z, "f32", &a);
    assert_int_equal(a.dtype, TRC_NPY_F32);
    assert_int_equal(a.ndim, 2);
    assert_true(a.shape[0] == 2 && a.shape[1] == 3);
    assert_int_equal(trc_npy_to_f32(&a, f), 0);
    for (int i = 0; i < 6; i++)
        assert_true(f[i] == 0.5f * i);
    char sh[64];
    trc_npy_shape_str(&a, sh, sizeof sh);
    assert_string_equal(sh, "(2, 3)");
    trc_npy_free(&a);
    read_ok(z, "f64", &a);
    assert_int_equal(a.dtype, TRC_NPY_F64);
    assert_int_equal(trc_npy_to_f64(&a, d), 0);
    assert_true(d[0] == 1.0 && d[1] == -2.5 && d[2] == 1e-300 && d[3] == 3.25);
    trc_npy_shape_str(&a, sh, sizeof sh);
    assert_string_equal(sh, "(4,)");
    trc_npy_free(&a);
    read_ok(z, "i64", &a);
    assert_int_equal(a.dtype, TRC_NPY_I64);
    assert_int_equal(trc_npy_to_f64(&a, d), 0);
    assert_true(d[0] == -3 && d[1] == 0 && d[2] == 1099511627776.0);
    trc_npy_free(&a);
    read_ok(z, "i32", &a);
    assert_int_equal(a.dtype, TRC_NPY_I32);
    assert_int_equal(trc_npy_to_f32(&a, f), 0);
    assert_true(f[0] == 1 && f[1] == -2 && f[2] == 3 && f[3] == 4);
    trc_npy_free(&a);
    read_ok(z, "scalar", &a);
    assert_int_equal(a.ndim, 0);
    assert_int_equal(a.numel, 1);
    assert_int_equal(trc_npy_to_f64(&a, d), 0);
    assert_true(d[0] == 3.5);
    trc_npy_free(&a);
    read_ok(z, "text", &a);
    assert_int_equal(a.dtype, TRC_NPY_STR);
    char *s;
    assert_int_equal(trc_npy_to_f32(&a, f), TRC_EUNSUPPORTED);
    assert_int_equal(trc_npy_string(&a, 0, &s), 0);
    assert_string_equal(s, "h\xc3\xa9llo \xe2\x86\x92 \xe2\x9c\x93 \xf0\x9f\x98\x80");
    free(s);
    trc_npy_free(&a);
    read_ok(z, "words", &a);
    assert_int_equal(a.numel, 2);
    assert_int_equal(trc_npy_string(&a, 0, &s), 0);
    assert_string_equal(s, "a");
    free(s);
    assert_int_equal(trc_npy_string(&a, 1, &s), 0);
    assert_string_equal(s, "bcd");
    free(s);
    assert_int_equal(trc_npy_string(&a, 2, &s), TRC_EINVAL);
    trc_npy_free(&a);
    read_ok(z, "empty", &a);
    assert_int_equal(a.numel, 0);
    assert_true(a.shape[0] == 0 && a.shape[1] == 2);
    trc_npy_free(&a);
    trc_npz_close(z);
}

static void test_read_compressed(void **state) {
    (void)state;
    trc_npz *z = open_ok(test_data_path("numpy_compressed.npz"));
    trc_npy_array a;
    read_ok(z, "x", &a);
    float f[100];
    assert_int_equal(a.numel, 100);
    assert_int_equal(trc_npy_to_f32(&a, f), 0);
    for (int i = 0; i < 100; i++)
        assert_true(f[i] == (float)i);
    trc_npy_free(&a);
    trc_npz_close(z);
}

/* numpy stores a transposed array in Fortran order; reading gives the same row-major values as
 * the C-order file. */
static void test_read_fortran_order(void **state) {
    (void)state;
    trc_npz *zc = open_ok(test_data_path("numpy_f64_dataset.npz"));
    trc_npz *zf = open_ok(test_data_path("numpy_fortran_dataset.npz"));
    for (size_t i = 0; i < trc_npz_count(zc); i++) {
        trc_npy_array a, b;
        read_ok(zc, trc_npz_key(zc, i), &a);
        read_ok(zf, trc_npz_key(zc, i), &b);
        assert_int_equal(a.ndim, b.ndim);
        assert_memory_equal(a.shape, b.shape, sizeof a.shape);
        assert_memory_equal(a.data, b.data, a.nbytes);
        trc_npy_free(&a);
        trc_npy_free(&b);
    }
    trc_npz_close(zc);
    trc_npz_close(zf);
    /* a hand-made 2x3 Fortran-order int32 array: memory 1 4 2 5 3 6 is [[1, 2, 3], [4, 5, 6]] */
    const char *h = "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }";
    uint8_t buf[128] = "\x93NUMPY\x01\x00";
    size_t hl = strlen(h);
    buf[8] = (uint8_t)hl;
    buf[9] = 0;
    memcpy(buf + 10, h, hl);
    const int32_t mem[6] = {1, 4, 2, 5, 3, 6}, want[6] = {1, 2, 3, 4, 5, 6};
    memcpy(buf + 10 + hl, mem, sizeof mem);
    trc_npy_array a;
    assert_int_equal(trc_npy_parse(buf, 10 + hl + sizeof mem, &a), 0);
    assert_memory_equal(a.data, want, sizeof want);
    trc_npy_free(&a);
}

static void test_round_trip(void **state) {
    (void)state;
    float f32[12];
    double f64[3] = {M_PI, -0.0, 1e300};
    int64_t i64[2] = {INT64_MIN, INT64_MAX};
    int32_t i32[1] = {-7};
    for (int i = 0; i < 12; i++)
        f32[i] = (float)i / 7.0f;
    const char *meta = "{\"system\": \"double_integrator\", \"\xce\xbc\": 1}";
    trc_npz_item items[] = {
        {"floats", TRC_NPY_F32, 3, {2, 3, 2}, f32}, {"doubles", TRC_NPY_F64, 1, {3}, f64},
        {"longs", TRC_NPY_I64, 2, {1, 2}, i64},     {"ints", TRC_NPY_I32, 0, {0}, i32},
        {"metadata", TRC_NPY_STR, 0, {0}, meta},    {"nothing", TRC_NPY_F32, 2, {0, 5}, NULL},
    };
    const char *path = test_tmp_path("rt.npz");
    assert_int_equal(trc_npz_write(path, items, 6), 0);
    assert_int_equal(leftovers(), 0);
    trc_npz *z = open_ok(path);
    assert_int_equal(trc_npz_count(z), 6);
    trc_npy_array a;
    read_ok(z, "floats", &a);
    assert_int_equal(a.ndim, 3);
    assert_memory_equal(a.data, f32, sizeof f32);
    trc_npy_free(&a);
    read_ok(z, "doubles", &a);
    assert_memory_equal(a.data, f64, sizeof f64);
    trc_npy_free(&a);
    read_ok(z, "longs", &a);
    assert_memory_equal(a.data, i64, sizeof i64);
    trc_npy_free(&a);
    read_ok(z, "ints", &a);
    assert_int_equal(a.ndim, 0);
    assert_memory_equal(a.data, i32, sizeof i32);
    trc_npy_free(&a);
    read_ok(z, "metadata", &a);
    char *s;
    assert_int_equal(trc_npy_string(&a, 0, &s), 0);
    assert_string_equal(s, meta);
    free(s);
    trc_npy_free(&a);
    read_ok(z, "nothing", &a);
    assert_int_equal(a.numel, 0);
    trc_npy_free(&a);
    trc_npz_close(z);

    /* the same arrays give the same bytes; in-memory opening of them works too */
    uint8_t *b1, *b2;
    size_t l1, l2;
    assert_int_equal(trc_read_file(path, &b1, &l1), 0);
    assert_int_equal(trc_npz_write(path, items, 6), 0);
    assert_int_equal(trc_read_file(path, &b2, &l2), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    assert_int_equal(trc_npz_open_mem(b1, l1, "mem.npz", &z), 0);
    read_ok(z, "doubles", &a);
    assert_memory_equal(a.data, f64, sizeof f64);
    trc_npy_free(&a);
    trc_npz_close(z);
    free(b1);
    free(b2);
}

/* The .npy image is numpy's: version 1.0, header padded so data starts on a 64-byte boundary. */
static void test_encode_layout(void **state) {
    (void)state;
    double v[5] = {1, 2, 3, 4, 5};
    trc_npz_item it = {"v", TRC_NPY_F64, 1, {5}, v};
    uint8_t *buf;
    size_t len;
    assert_int_equal(trc_npy_encode(&it, &buf, &len), 0);
    assert_memory_equal(buf, "\x93NUMPY\x01\x00", 8);
    size_t hlen = buf[8] | (size_t)buf[9] << 8;
    assert_int_equal((10 + hlen) % 64, 0);
    assert_int_equal(buf[10 + hlen - 1], '\n');
    assert_int_equal(len, 10 + hlen + sizeof v);
    const char *expect = "{'descr': '<f8', 'fortran_order': False, 'shape': (5,), }";
    assert_memory_equal(buf + 10, expect, strlen(expect));
    trc_npy_array a;
    assert_int_equal(trc_npy_parse(buf, len, &a), 0);
    assert_memory_equal(a.data, v, sizeof v);
    trc_npy_free(&a);
    free(buf);
}

static void expect_open_fail(const char *name, int code, const char *msg) {
    trc_npz *z = (trc_npz *)1;
    int rc = trc_npz_open(test_data_path(name), &z);
    if (rc != code || !strstr(trc_errmsg(), msg) || !strstr(trc_errmsg(), name))
        fail_msg("%s: got %d '%s', want %d '%s'", name, rc, trc_errmsg(), code, msg);
    assert_null(z);
}

static void expect_read_fail(const char *name, const char *key, int code, const char *msg) {
    trc_npz *z = open_ok(test_data_path(name));
    trc_npy_array a;
    int rc = trc_npz_read(z, key, &a);
    if (rc != code || !strstr(trc_errmsg(), msg) || !strstr(trc_errmsg(), name) ||
        !strstr(trc_errmsg(), key))
        fail_msg("%s[%s]: got %d '%s', want %d '%s'", name, key, rc, trc_errmsg(), code, msg);
    assert_null(a.data);
    trc_npz_close(z);
}

static void test_bad_inputs(void **state) {
    (void)state;
    expect_open_fail("no_such_file.npz", TRC_EIO, "No such file");
    expect_open_fail("bad_not_zip.npz", TRC_EFORMAT, "not a valid .npz");
    expect_open_fail("bad_empty.npz", TRC_EFORMAT, "not a valid .npz");
    expect_open_fail("bad_truncated.npz", TRC_EFORMAT, "not a valid .npz");
    trc_npz *z = NULL;
    assert_int_equal(trc_npz_open(test_tmpdir, &z), TRC_EIO); /* a directory */
    expect_read_fail("bad_crc.npz", "control_sequences", TRC_EFORMAT, "CRC");
    expect_read_fail("bad_missing_key.npz", "control_sequences", TRC_ENOTFOUND, "missing key");
    expect_read_fail("bad_dtype.npz", "control_sequences", TRC_EUNSUPPORTED, "'<c16'");
    expect_read_fail("bad_bigendian.npz", "initial_states", TRC_EUNSUPPORTED, "big-endian");
    expect_read_fail("bad_header.npz", "initial_states", TRC_EFORMAT, "bad .npy header");
    expect_read_fail("bad_length.npz", "costs", TRC_EFORMAT, "truncated");
    /* the undamaged entries of a damaged archive still read */
    z = open_ok(test_data_path("bad_crc.npz"));
    trc_npy_array a;
    read_ok(z, "initial_states", &a);
    trc_npy_free(&a);
    trc_npz_close(z);
}

static void test_parse_rejects(void **state) {
    (void)state;
    struct {
        const char *header;
        int code;
        const char *msg;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 0, ""},
        {"{'descr': '<f4', 'fortran_order': False}", TRC_EFORMAT, "needs descr"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", TRC_EFORMAT,
         "unexpected or repeated key 'x'"},
        {"{'descr': '<f4', 'descr': '<f4', 'shape': (2,)}", TRC_EFORMAT, "repeated"},
        {"{'descr': '<f2', 'fortran_order': False, 'shape': (2,), }", TRC_EUNSUPPORTED, "'<f2'"},
        {"{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", TRC_EUNSUPPORTED, "'|b1'"},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", TRC_EUNSUPPORTED, "'|O'"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", TRC_EUNSUPPORTED,
         "structured"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", TRC_EFORMAT, "True or False"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", TRC_EFORMAT, "non-negative"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1), }",
         TRC_EUNSUPPORTED, "dimensions"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }",
         TRC_EFORMAT, "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
         TRC_EFORMAT, "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", TRC_EFORMAT,
         "needs 12 data bytes, found 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", TRC_EFORMAT, "found 8"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), } x", TRC_EFORMAT, "trailing"},
        {"{'descr': '<f4' 'fortran_order': False, 'shape': (2,), }", TRC_EFORMAT, "expected"},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 0, ""}, /* 1-d: same bytes */
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (1, 2), }", 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[256] = "\x93NUMPY\x01\x00";
        size_t hl = strlen(cases[i].header);
        buf[8] = (uint8_t)hl;
        buf[9] = 0;
        memcpy(buf + 10, cases[i].header, hl);
        memset(buf + 10 + hl, 0x41, 8); /* 8 data bytes: two float32 */
        trc_npy_array a;
        int rc = trc_npy_parse(buf, 10 + hl + 8, &a);
        if (rc != cases[i].code || (rc && !strstr(trc_errmsg(), cases[i].msg)))
            fail_msg("case %zu: got %d '%s', want %d '%s'", i, rc, trc_errmsg(), cases[i].code,
                     cases[i].msg);
        trc_npy_free(&a);
    }
    trc_npy_array a;
    assert_int_equal(trc_npy_parse((const uint8_t *)"\x93NUMPX\x01\x00\x00\x00", 10, &a),
                     TRC_EFORMAT);
    assert_int_equal(trc_npy_parse((const uint8_t *)"\x93NUMPY\x04\x00\x00\x00", 10, &a),
                     TRC_EUNSUPPORTED);
    assert_int_equal(trc_npy_parse((const uint8_t *)"\x93NUMPY\x01\x00\xff\x00", 10, &a),
                     TRC_EFORMAT);
}

/* Every truncation of a valid .npy image and thousands of random byte flips of a whole
 * archive: each either parses or fails cleanly (no crash, no leak). */
static void test_mutation_sweep(void **state) {
    (void)state;
    uint8_t *file;
    size_t len;
    assert_int_equal(trc_read_file(test_data_path("numpy_f64_dataset.npz"), &file, &len), 0);
    trc_npz *z = open_ok(test_data_path("numpy_f64_dataset.npz"));
    trc_npy_array a;
    read_ok(z, "costs", &a);
    uint8_t *img;
    size_t ilen;
    trc_npz_item it = {"costs", TRC_NPY_F64, 1, {a.shape[0]}, a.data};
    assert_int_equal(trc_npy_encode(&it, &img, &ilen), 0);
    for (size_t cut = 0; cut < ilen; cut++) {
        trc_npy_array b;
        assert_int_not_equal(trc_npy_parse(img, cut, &b), 0);
    }
    free(img);
    trc_npy_free(&a);
    trc_npz_close(z);

    trc_rng rng;
    trc_rng_seed(&rng, 1234);
    uint8_t *mut = malloc(len);
    int opened = 0, failed_reads = 0;
    for (int round = 0; round < 1500; round++) {
        memcpy(mut, file, len);
        int flips = 1 + (int)trc_rng_below(&rng, 4);
        for (int k = 0; k < flips; k++)
            mut[trc_rng_below(&rng, len)] ^= (uint8_t)(1 + trc_rng_below(&rng, 255));
        size_t mlen = round % 5 == 0 ? (size_t)trc_rng_below(&rng, len) : len;
        if (trc_npz_open_mem(mut, mlen, "mutant.npz", &z) != 0)
            continue;
        opened++;
        for (size_t i = 0; i < trc_npz_count(z); i++) {
            trc_npy_array b;
            if (trc_npz_read(z, trc_npz_key(z, i), &b) != 0)
                failed_reads++;
            trc_npy_free(&b);
        }
        trc_npz_close(z);
    }
    assert_true(opened > 0 && failed_reads > 0); /* the sweep reached the entry parser */
    free(mut);
    free(file);
}

/* Found by tests/fuzz/fuzz_npz.c: an empty buffer leaked its copy (libzip does not take an
 * empty buffer); it is refused as a format error, freeing everything. */
static void test_open_mem_empty(void **state) {
    (void)state;
    trc_npz *z = (trc_npz *)1;
    const uint8_t none[1] = {0};
    assert_int_equal(trc_npz_open_mem(none, 0, "empty.npz", &z), TRC_EFORMAT);
    assert_null(z);
    assert_non_null(strstr(trc_errmsg(), "empty.npz: not a valid .npz archive"));
}

static void test_write_errors(void **state) {
    (void)state;
    float v[2] = {1, 2};
    trc_npz_item good = {"v", TRC_NPY_F32, 1, {2}, v};
    assert_int_equal(trc_npz_write("/nonexistent-dir/x.npz", &good, 1), TRC_EIO);
    assert_non_null(strstr(trc_errmsg(), "/nonexistent-dir/x.npz: cannot create"));

    /* a failing write leaves the previous file intact and no temporary behind */
    const char *path = test_tmp_path("keep.npz");
    assert_int_equal(trc_npz_write(path, &good, 1), 0);
    uint8_t *before, *after;
    size_t lb, la;
    assert_int_equal(trc_read_file(path, &before, &lb), 0);
    trc_npz_item bad[3] = {good, {"s", TRC_NPY_STR, 1, {1}, "x"}, good};
    bad[2].key = "w";
    assert_int_equal(trc_npz_write(path, bad, 3), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "0-d"));
    trc_npz_item badkey = {"a/b", TRC_NPY_F32, 1, {2}, v};
    assert_int_equal(trc_npz_write(path, &badkey, 1), TRC_EINVAL);
    trc_npz_item badutf = {"s", TRC_NPY_STR, 0, {0}, "\xff\xfe"};
    assert_int_equal(trc_npz_write(path, &badutf, 1), TRC_EINVAL);
    trc_npz_item nodata = {"v", TRC_NPY_F32, 1, {2}, NULL};
    assert_int_equal(trc_npz_write(path, &nodata, 1), TRC_EINVAL);
    trc_npz_item dup[2] = {good, good};
    assert_int_not_equal(trc_npz_write(path, dup, 2), 0); /* the same key twice */
    assert_int_equal(trc_read_file(path, &after, &la), 0);
    assert_int_equal(lb, la);
    assert_memory_equal(before, after, lb);
    assert_int_equal(leftovers(), 0);
    free(before);
    free(after);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_numpy_types),   cmocka_unit_test(test_read_compressed),
        cmocka_unit_test(test_read_fortran_order), cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_encode_layout),      cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_parse_rejects),      cmocka_unit_test(test_mutation_sweep),
        cmocka_unit_test(test_write_errors),       cmocka_unit_test(test_open_mem_empty),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
