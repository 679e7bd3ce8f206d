/* Tests of the safetensors container: round trip, every validation rule on hand-made headers,
 * dtype conversion, the PyTorch-style fixtures, and a deterministic fuzz loop over truncations
 * and byte mutations of a real file (run it under SAN=1). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trc/error.h"
#include "trc/fileio.h"
#include "trc/rng.h"
#include "trc/safetensors.h"

#include "../common.h"

static void test_round_trip(void **state) {
    (void)state;
    float a[6] = {1, -2, 3.5f, 0, INFINITY, -0.0f}, b[3] = {7, 8, 9};
    trc_st_out t[3] = {{.name = "w", .ndim = 2, .shape = {2, 3}, .data = a},
                       {.name = "bias", .ndim = 1, .shape = {3}, .data = b},
                       {.name = "scalar", .ndim = 0, .data = b}};
    const char *keys[] = {"k", "x"}, *vals[] = {"v", "{\"json\": [1, 2]}"};
    uint8_t *buf;
    size_t len;
    assert_int_equal(trc_st_encode(t, 3, keys, vals, 2, &buf, &len), TRC_OK);
    uint64_t hlen;
    memcpy(&hlen, buf, 8);
    assert_int_equal(hlen % 8, 0);
    assert_int_equal(len, 8 + hlen + 4 * (6 + 3 + 1));
    trc_safetensors st;
    assert_int_equal(trc_st_parse(buf, len, &st), TRC_OK);
    free(buf);
    assert_int_equal(st.count, 3);
    assert_int_equal(st.meta_count, 2);
    assert_string_equal(trc_st_meta(&st, "x"), "{\"json\": [1, 2]}");
    assert_null(trc_st_meta(&st, "absent"));
    const trc_st_tensor *w = trc_st_find(&st, "w");
    assert_non_null(w);
    assert_int_equal(w->dtype, TRC_ST_F32);
    assert_int_equal(w->ndim, 2);
    assert_int_equal(w->shape[0], 2);
    assert_int_equal(w->shape[1], 3);
    float out[6];
    assert_int_equal(trc_st_to_f32(w, out), TRC_OK);
    assert_memory_equal(out, a, sizeof a);
    const trc_st_tensor *sc = trc_st_find(&st, "scalar");
    assert_int_equal(sc->ndim, 0);
    assert_int_equal(sc->numel, 1);
    assert_null(trc_st_find(&st, "nope"));
    trc_st_free(&st);
    trc_st_free(&st); /* idempotent */
}

static void test_fixtures_parse(void **state) {
    (void)state;
    const char *files[] = {"small_init.safetensors", "small_random.safetensors",
                           "small_init.case.safetensors", "small_random.case.safetensors"};
    for (size_t i = 0; i < 4; i++) {
        const char *path = test_data_path(files[i]);
        trc_safetensors st;
        int rc = trc_st_read_file(path, &st);
        if (rc != TRC_OK)
            fail_msg("%s", trc_errmsg());
        assert_int_equal(st.meta_count, 0);
        const trc_st_tensor *t = trc_st_find(&st, i < 2 ? "state_encoder.encoder.0.weight"
                                                        : "grad.state_encoder.encoder.0.weight");
        assert_non_null(t);
        assert_int_equal(t->shape[0], 128);
        assert_int_equal(t->shape[1], 5);
        trc_st_free(&st);
    }
}

/* Builds a file from a header text (padded with `pad` spaces) and `ndata` data bytes. */
static uint8_t *make_file(const char *header, size_t pad, size_t ndata, size_t *len) {
    size_t h = strlen(header) + pad;
    *len = 8 + h + ndata;
    uint8_t *b = calloc(1, *len);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, strlen(header));
    memset(b + 8 + strlen(header), ' ', pad);
    return b;
}

/* Parses header + ndata zero bytes; returns the status and checks the message mentions `want`. */
static int parse_text(const char *header, size_t ndata, const char *want) {
    size_t len;
    uint8_t *b = make_file(header, 0, ndata, &len);
    trc_safetensors st;
    int rc = trc_st_parse(b, len, &st);
    free(b);
    if (rc == TRC_OK) {
        trc_st_free(&st);
        return rc;
    }
    if (want && !strstr(trc_errmsg(), want))
        fail_msg("error '%s' does not mention '%s'", trc_errmsg(), want);
    /* a failed parse leaves the struct empty and safe to free */
    assert_null(st.buf);
    assert_int_equal(st.count, 0);
    trc_st_free(&st);
    return rc;
}

#define F32E(name, shape, b, e)                                                                    \
    "\"" name "\":{\"dtype\":\"F32\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void test_valid_edge_cases(void **state) {
    (void)state;
    assert_int_equal(parse_text("{}", 0, NULL), TRC_OK);
    assert_int_equal(parse_text("{\"__metadata__\":{}}", 0, NULL), TRC_OK);
    /* zero-sized tensors share an offset; order in the header differs from order in data */
    assert_int_equal(parse_text("{" F32E("b", "[2]", 8, 16) "," F32E("a", "[2]", 0, 8) "," F32E(
                                    "z", "[0,3]", 8, 8) "," F32E("y", "[0]", 16, 16) "}",
                                16, NULL),
                     TRC_OK);
    /* header padded with trailing spaces is valid */
    size_t len;
    uint8_t *b = make_file("{" F32E("a", "[1]", 0, 4) "}", 5, 4, &len);
    trc_safetensors st;
    assert_int_equal(trc_st_parse(b, len, &st), TRC_OK);
    assert_int_equal(st.count, 1);
    trc_st_free(&st);
    free(b);
}

static void test_bad_length(void **state) {
    (void)state;
    trc_safetensors st;
    uint8_t small[7] = {0};
    assert_int_equal(trc_st_parse(small, sizeof small, &st), TRC_EFORMAT);
    assert_int_equal(trc_st_parse(NULL, 0, &st), TRC_EFORMAT);
    size_t len;
    uint8_t *b = make_file("{}", 0, 0, &len);
    b[0] = 200; /* header length beyond the file */
    assert_int_equal(trc_st_parse(b, len, &st), TRC_EFORMAT);
    assert_non_null(strstr(trc_errmsg(), "beyond the end"));
    memset(b, 0xff, 8); /* header length beyond the bound */
    assert_int_equal(trc_st_parse(b, len, &st), TRC_EFORMAT);
    assert_non_null(strstr(trc_errmsg(), "bound"));
    uint64_t big = (uint64_t)TRC_ST_MAX_HEADER + 1;
    memcpy(b, &big, 8);
    assert_int_equal(trc_st_parse(b, len, &st), TRC_EFORMAT);
    free(b);
}

/* A header listing more tensors than a checkpoint can need is refused before it is parsed:
 * fast and with no allocation in proportion to it (ASan/valgrind would see one). */
static void test_too_many_tensors(void **state) {
    (void)state;
    size_t n = TRC_ST_MAX_TENSORS + 1, cap = n * 64 + 16, at = 0;
    char *h = malloc(cap);
    assert_non_null(h);
    h[at++] = '{';
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(h + at, cap - at,
                               "%s\"t%zu\":{\"dtype\":\"F32\",\"shape\":[0],"
                               "\"data_offsets\":[0,0]}",
                               i ? "," : "", i);
    h[at++] = '}';
    h[at] = '\0';
    assert_int_equal(parse_text(h, 0, "more than 4096 tensors"), TRC_EFORMAT);
    /* the same entries below the bound parse (empty tensors tile an empty data section) */
    h[0] = '{';
    at = 1;
    for (size_t i = 0; i < 100; i++)
        at += (size_t)snprintf(h + at, cap - at,
                               "%s\"t%zu\":{\"dtype\":\"F32\",\"shape\":[0],"
                               "\"data_offsets\":[0,0]}",
                               i ? "," : "", i);
    snprintf(h + at, cap - at, "}");
    assert_int_equal(parse_text(h, 0, NULL), TRC_OK);
    free(h);
}

static void test_bad_json(void **state) {
    (void)state;
    assert_int_equal(parse_text("{\"a\":", 0, "JSON"), TRC_EFORMAT);
    assert_int_equal(parse_text("[1,2]", 0, "'{'"), TRC_EFORMAT);
    assert_int_equal(parse_text("{} x", 0, "JSON"), TRC_EFORMAT);
    assert_int_equal(parse_text("{\"a\":1}", 0, "'a'"), TRC_EFORMAT);
    /* duplicate names */
    assert_int_equal(
        parse_text("{" F32E("a", "[1]", 0, 4) "," F32E("a", "[1]", 4, 8) "}", 8, "duplicate"),
        TRC_EFORMAT);
    /* invalid UTF-8 in the header */
    assert_int_equal(parse_text("{\"\xff\":{}}", 0, "JSON"), TRC_EFORMAT);
}

static void test_bad_metadata(void **state) {
    (void)state;
    assert_int_equal(parse_text("{\"__metadata__\":{\"k\":1}}", 0, "'k'"), TRC_EFORMAT);
    assert_int_equal(parse_text("{\"__metadata__\":{\"k\":{\"x\":\"y\"}}}", 0, "'k'"), TRC_EFORMAT);
    assert_int_equal(parse_text("{\"__metadata__\":[]}", 0, "__metadata__"), TRC_EFORMAT);
    assert_int_equal(parse_text("{\"__metadata__\":\"x\"}", 0, "__metadata__"), TRC_EFORMAT);
}

static void test_bad_entries(void **state) {
    (void)state;
    /* dtype */
    assert_int_equal(
        parse_text("{\"w\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'w'"),
        TRC_EFORMAT);
    assert_int_equal(
        parse_text("{\"w\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[0,2]}}", 2, "U16"),
        TRC_EUNSUPPORTED);
    assert_int_equal(
        parse_text("{\"w\":{\"dtype\":3,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype"),
        TRC_EFORMAT);
    assert_int_equal(parse_text("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "dtype"),
                     TRC_EFORMAT);
    /* shape */
    assert_int_equal(parse_text("{" F32E("w", "[-1]", 0, 4) "}", 4, "shape"), TRC_EFORMAT);
    assert_int_equal(parse_text("{" F32E("w", "[1.5]", 0, 4) "}", 4, "shape"), TRC_EFORMAT);
    assert_int_equal(parse_text("{" F32E("w", "3", 0, 12) "}", 12, "shape"), TRC_EFORMAT);
    assert_int_equal(parse_text("{" F32E("w", "[1,1,1,1,1,1,1,1,1]", 0, 4) "}", 4, "dimensions"),
                     TRC_EUNSUPPORTED);
    assert_int_equal(
        parse_text("{" F32E("w", "[4294967296,4294967296,4294967296]", 0, 4) "}", 4, "overflow"),
        TRC_EFORMAT);
    assert_int_equal(parse_text("{" F32E("w", "[4611686018427387904]", 0, 4) "}", 4, "overflow"),
                     TRC_EFORMAT);
    /* data_offsets */
    assert_int_equal(parse_text("{" F32E("w", "[1]", 4, 0) "}", 4, "begin"), TRC_EFORMAT);
    assert_int_equal(parse_text("{" F32E("w", "[1]", 0, 8) "}", 4, "beyond"), TRC_EFORMAT);
    assert_int_equal(parse_text("{" F32E("w", "[2]", 0, 4) "}", 4, "need 8"), TRC_EFORMAT);
    assert_int_equal(parse_text("{" F32E("w", "[1]", -4, 0) "}", 4, "data_offsets"), TRC_EFORMAT);
    assert_int_equal(parse_text("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                                "2 entries"),
                     TRC_EFORMAT);
    assert_int_equal(parse_text("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "data_offsets"),
                     TRC_EFORMAT);
    assert_int_equal(parse_text("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],"
                                "\"extra\":1}}",
                                4, "extra"),
                     TRC_EFORMAT);
    assert_int_equal(parse_text("{\"w\":[]}", 0, "'w'"), TRC_EFORMAT);
}

static void test_bad_tiling(void **state) {
    (void)state;
    /* gap at the start, between tensors, and at the end */
    assert_int_equal(parse_text("{" F32E("a", "[1]", 4, 8) "}", 8, "gap"), TRC_EFORMAT);
    assert_int_equal(
        parse_text("{" F32E("a", "[1]", 0, 4) "," F32E("b", "[1]", 8, 12) "}", 12, "'b'"),
        TRC_EFORMAT);
    assert_int_equal(parse_text("{" F32E("a", "[1]", 0, 4) "}", 8, "cover"), TRC_EFORMAT);
    /* overlap, including a zero-sized tensor inside another's range */
    assert_int_equal(
        parse_text("{" F32E("a", "[2]", 0, 8) "," F32E("b", "[1]", 4, 8) "}", 8, "overlap"),
        TRC_EFORMAT);
    assert_int_equal(
        parse_text("{" F32E("a", "[2]", 0, 8) "," F32E("b", "[0]", 4, 4) "}", 8, "'b'"),
        TRC_EFORMAT);
    /* data present but no tensors */
    assert_int_equal(parse_text("{}", 4, "cover"), TRC_EFORMAT);
}

/* One tensor of the given dtype holding `bytes`, at an odd offset inside the buffer. */
static void convert(const char *dtype, const void *bytes, size_t nbytes, size_t numel, float *out) {
    char header[160];
    snprintf(header, sizeof header,
             "{\"p\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
             "\"t\":{\"dtype\":\"%s\",\"shape\":[%zu],\"data_offsets\":[1,%zu]}}",
             dtype, numel, 1 + nbytes);
    size_t len;
    uint8_t *b = make_file(header, 0, 1 + nbytes, &len);
    memcpy(b + len - nbytes, bytes, nbytes);
    trc_safetensors st;
    assert_int_equal(trc_st_parse(b, len, &st), TRC_OK);
    free(b);
    const trc_st_tensor *t = trc_st_find(&st, "t");
    assert_int_equal(trc_st_to_f32(t, out), TRC_OK);
    assert_int_equal(trc_st_to_f32(trc_st_find(&st, "p"), out + numel), TRC_EUNSUPPORTED);
    trc_st_free(&st);
}

static void test_to_f32(void **state) {
    (void)state;
    float out[8];
    double d[5] = {1.5, -2.25, 1e300, -1e300, 1e-3};
    convert("F64", d, sizeof d, 5, out);
    assert_true(out[0] == 1.5f && out[1] == -2.25f && out[4] == (float)1e-3);
    assert_true(isinf(out[2]) && out[2] > 0 && isinf(out[3]) && out[3] < 0);
    /* F16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), inf, nan, -0, 0.333 */
    uint16_t h[8] = {0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x7e00, 0x8000, 0x3555};
    convert("F16", h, sizeof h, 8, out);
    assert_true(out[0] == 1.0f && out[1] == -2.0f && out[2] == 65504.0f);
    assert_true(out[3] == ldexpf(1.0f, -24) && isinf(out[4]) && isnan(out[5]));
    assert_true(out[6] == 0.0f && signbit(out[6]));
    assert_true(fabsf(out[7] - 0.33325195f) < 1e-7f);
    /* BF16: upper half of a float */
    uint16_t bf[3] = {0x3f80, 0xc040, 0x7f80};
    convert("BF16", bf, sizeof bf, 3, out);
    assert_true(out[0] == 1.0f && out[1] == -3.0f && isinf(out[2]));
}

static void test_encode_rejects(void **state) {
    (void)state;
    float a[2] = {1, 2};
    uint8_t *buf;
    size_t len;
    trc_st_out dup[2] = {{.name = "a", .ndim = 1, .shape = {1}, .data = a},
                         {.name = "a", .ndim = 1, .shape = {1}, .data = a + 1}};
    assert_int_equal(trc_st_encode(dup, 2, NULL, NULL, 0, &buf, &len), TRC_EINVAL);
    assert_null(buf);
    trc_st_out reserved = {.name = "__metadata__", .ndim = 1, .shape = {1}, .data = a};
    assert_int_equal(trc_st_encode(&reserved, 1, NULL, NULL, 0, &buf, &len), TRC_EINVAL);
    trc_st_out neg = {.name = "n", .ndim = 1, .shape = {-1}, .data = a};
    assert_int_equal(trc_st_encode(&neg, 1, NULL, NULL, 0, &buf, &len), TRC_EINVAL);
    trc_st_out nodata = {.name = "n", .ndim = 1, .shape = {2}, .data = NULL};
    assert_int_equal(trc_st_encode(&nodata, 1, NULL, NULL, 0, &buf, &len), TRC_EINVAL);
    trc_st_out badutf = {.name = "\xc3(", .ndim = 1, .shape = {1}, .data = a};
    assert_int_equal(trc_st_encode(&badutf, 1, NULL, NULL, 0, &buf, &len), TRC_EINVAL);
    const char *k[2] = {"x", "x"}, *v[2] = {"1", "2"};
    trc_st_out ok = {.name = "o", .ndim = 1, .shape = {2}, .data = a};
    assert_int_equal(trc_st_encode(&ok, 1, k, v, 2, &buf, &len), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "duplicate"));
    /* nothing at all is a valid (empty) file */
    assert_int_equal(trc_st_encode(NULL, 0, NULL, NULL, 0, &buf, &len), TRC_OK);
    trc_safetensors st;
    assert_int_equal(trc_st_parse(buf, len, &st), TRC_OK);
    assert_int_equal(st.count, 0);
    trc_st_free(&st);
    free(buf);
}

static void test_write_file(void **state) {
    (void)state;
    char dir[] = "/tmp/trc_st_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[600];
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    float a[3] = {1, 2, 3};
    trc_st_out t = {.name = "a", .ndim = 1, .shape = {3}, .data = a};
    assert_int_equal(trc_st_write_file(path, &t, 1, NULL, NULL, 0), TRC_OK);
    trc_safetensors st;
    assert_int_equal(trc_st_read_file(path, &st), TRC_OK);
    float out[3];
    assert_int_equal(trc_st_to_f32(trc_st_find(&st, "a"), out), TRC_OK);
    assert_memory_equal(out, a, sizeof a);
    trc_st_free(&st);
    snprintf(path, sizeof path, "%s/missing/x.safetensors", dir);
    assert_int_equal(trc_st_write_file(path, &t, 1, NULL, NULL, 0), TRC_EIO);
    assert_int_equal(trc_st_read_file(path, &st), TRC_EIO);
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    remove(path);
    assert_int_equal(rmdir(dir), 0); /* no temporary file left behind */
}

/* Truncations and random byte mutations of a real file: parse must return OK or an error code,
 * never crash or read out of bounds (the sanitizer build checks the latter). */
static void test_fuzz(void **state) {
    (void)state;
    const char *path = test_data_path("small_init.safetensors");
    uint8_t *orig;
    size_t len;
    assert_int_equal(trc_read_file(path, &orig, &len), TRC_OK);
    uint64_t hlen;
    memcpy(&hlen, orig, 8);
    /* keep the cases cheap: cut the data section to its first tensor's worth of bytes */
    size_t cut = 8 + (size_t)hlen + 4096 < len ? 8 + (size_t)hlen + 4096 : len;
    uint8_t *buf = malloc(len);
    assert_non_null(buf);
    trc_rng rng;
    trc_rng_seed(&rng, 12345);
    int ok = 0, err = 0;
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = len;
        memcpy(buf, orig, len);
        int kind = (int)trc_rng_below(&rng, 4);
        if (kind == 0) { /* truncation anywhere, mostly within the header */
            n = (size_t)trc_rng_below(&rng, cut + 1);
        } else { /* 1..8 byte mutations, mostly in the header where parsing happens */
            int muts = 1 + (int)trc_rng_below(&rng, 8);
            for (int k = 0; k < muts; k++) {
                size_t at = kind == 3 ? (size_t)trc_rng_below(&rng, 8)
                                      : (size_t)trc_rng_below(&rng, 8 + hlen);
                uint8_t v = kind == 2
                                ? (uint8_t) "{}[]\",:0123456789-e. \\u"[trc_rng_below(&rng, 24)]
                                : (uint8_t)trc_rng_below(&rng, 256);
                buf[at] = v;
            }
        }
        trc_safetensors st;
        int rc = trc_st_parse(buf, n, &st);
        if (rc == TRC_OK) {
            ok++;
            float tmp[64];
            for (size_t i = 0; i < st.count; i++) /* every tensor is readable */
                if (st.tensors[i].numel <= 64 &&
                    (st.tensors[i].dtype == TRC_ST_F32 || st.tensors[i].dtype == TRC_ST_F16))
                    assert_int_equal(trc_st_to_f32(&st.tensors[i], tmp), TRC_OK);
            for (size_t i = 0; i < st.count; i++)
                assert_true((const uint8_t *)st.tensors[i].data + st.tensors[i].nbytes <=
                            st.buf + st.len);
        } else {
            err++;
            assert_true(rc == TRC_EFORMAT || rc == TRC_EUNSUPPORTED);
            assert_true(strlen(trc_errmsg()) > 0);
        }
        trc_st_free(&st);
    }
    print_message("fuzz: %d parsed, %d rejected\n", ok, err);
    assert_true(ok > 0 && err > 0);
    free(buf);
    free(orig);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_fixtures_parse),
        cmocka_unit_test(test_valid_edge_cases),
        cmocka_unit_test(test_bad_length),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_too_many_tensors),
        cmocka_unit_test(test_bad_metadata),
        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_bad_tiling),
        cmocka_unit_test(test_to_f32),
        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_write_file),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
