/* The inference plan (trc_infer_plan_*) and its packed small-batch kernel (linear_packed.c):
 * the kernel against a double-precision product for awkward shapes and every batch size up to
 * two full tiles, on every instruction-set path the CPU runs (isa_paths.h), bit-for-bit batch
 * invariance, parity of the plan with the reference fixture (every iterate), agreement with
 * trc_model_infer, and argument errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "isa_paths.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/linear_packed.h"
#include "fixture.h"
#include "trc/error.h"
#include "trc/model.h"
#include "trc/rng.h"
#include "trc/safetensors.h"

#define NB 8

static void fill(trc_rng *rng, float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        v[i] = (float)trc_rng_range(rng, -1.0, 1.0);
}

typedef void linear_fn(float *, const float *, const float *, const float *, size_t, int, int);

/* y = x W^T + b for in/out not multiples of the panel, with and without bias, B = 1..13 */
static void check_packed_kernel(linear_fn *forward) {
    const int shapes[][2] = {{5, 256}, {256, 15}, {143, 128}, {128, 17}, {1, 1}, {33, 48}};
    trc_rng rng;
    trc_rng_seed(&rng, 7);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int in = shapes[s][0], out = shapes[s][1];
        size_t maxB = 13;
        float *W = malloc((size_t)in * out * sizeof *W), *b = malloc((size_t)out * sizeof *b);
        float *x = malloc(maxB * in * sizeof *x), *y = malloc(maxB * out * sizeof *y);
        float *y1 = malloc((size_t)out * sizeof *y1);
        float *Wp = malloc(trc_linear_packed_size(in, out) * sizeof *Wp);
        assert_true(W && b && x && y && y1 && Wp);
        fill(&rng, W, (size_t)in * out);
        fill(&rng, b, (size_t)out);
        fill(&rng, x, maxB * in);
        trc_linear_pack(Wp, W, in, out);
        for (int with_bias = 0; with_bias <= 1; with_bias++)
            for (size_t B = 1; B <= maxB; B++) {
                const float *bias = with_bias ? b : NULL;
                /* sentinel past the last row: nothing is written beyond y[B, out] */
                if (B < maxB)
                    y[B * out] = 12345.0f;
                forward(y, x, Wp, bias, B, in, out);
                if (B < maxB)
                    assert_true(y[B * out] == 12345.0f);
                for (size_t r = 0; r < B; r++) {
                    for (int o = 0; o < out; o++) {
                        double want = bias ? bias[o] : 0.0;
                        for (int i = 0; i < in; i++)
                            want += (double)x[r * in + i] * W[(size_t)o * in + i];
                        double got = y[r * out + o];
                        if (!(fabs(got - want) <= 1e-5 * (1.0 + in)))
                            fail_msg("in=%d out=%d B=%zu y[%zu,%d] = %g, want %g", in, out, B, r, o,
                                     got, want);
                    }
                    /* the row alone gives the same bits */
                    forward(y1, x + r * in, Wp, bias, 1, in, out);
                    assert_memory_equal(y1, y + r * out, (size_t)out * sizeof *y1);
                }
            }
        free(W);
        free(b);
        free(x);
        free(y);
        free(y1);
        free(Wp);
    }
}

static void test_packed_kernel(void **state) {
    (void)state;
    check_packed_kernel(trc_linear_packed_forward); /* the path this group runs */
}

static void check_close(const float *got, const float *want, size_t n, float tol,
                        const char *what) {
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= tol))
            fail_msg("%s[%zu]: got %.8g, want %.8g (tolerance %g)", what, i, (double)got[i],
                     (double)want[i], (double)tol);
}

/* the plan reproduces the reference iterates of the fixture models */
static void run_fixture(const char *name) {
    char file[256];
    trc_model model;
    snprintf(file, sizeof file, "%s.safetensors", name);
    load_model(file, &model);
    trc_safetensors st;
    snprintf(file, sizeof file, "%s.case.safetensors", name);
    read_st(file, &st);
    size_t U = (size_t)model.cfg.T * model.cfg.m, S = (size_t)model.cfg.s, K = (size_t)model.cfg.K;
    float *x0 = tensor(&st, "x0", NB * S), *target = tensor(&st, "target", NB * S);
    float *want = tensor(&st, "iterates", (K + 1) * NB * U);
    float *u = malloc(NB * U * sizeof *u), *it = malloc((K + 1) * NB * U * sizeof *it);
    assert_true(u && it);
    trc_infer_plan *plan;
    assert_int_equal(trc_infer_plan_create(&model, &plan), TRC_OK);
    assert_int_equal(trc_infer_plan_run(plan, NB, x0, target, NULL, u, it, 1), TRC_OK);
    check_close(it, want, (K + 1) * NB * U, 1e-5f, "iterates");
    check_close(u, want + K * NB * U, NB * U, 1e-5f, "output");
    for (size_t r = 0; r < NB; r++) {
        float u1[64];
        assert_true(U <= 64);
        assert_int_equal(trc_infer_plan_run(plan, 1, x0 + r * S, target + r * S, NULL, u1, NULL, 1),
                         TRC_OK);
        assert_memory_equal(u1, u + r * U, U * sizeof *u1);
    }
    trc_infer_plan_free(plan);
    free(x0);
    free(target);
    free(want);
    free(u);
    free(it);
    trc_st_free(&st);
    trc_model_free(&model);
}

static void test_fixture_small_init(void **state) {
    (void)state;
    run_fixture("small_init");
}

static void test_fixture_small_random(void **state) {
    (void)state;
    run_fixture("small_random");
}

/* a small model (every path of the plan, cheap under valgrind): the plan agrees with
 * trc_model_infer (sgemm, fused attention from 32 rows) for several batch sizes; rows are
 * bit-identical whatever batch they are in and on 1 or 2 threads */
static void test_against_infer(void **state) {
    (void)state;
    trc_model_config cfg;
    trc_model model;
    assert_int_equal(trc_model_config_preset("small", 2, 1, 15, 4.0f, &cfg), TRC_OK);
    assert_int_equal(trc_model_create(&cfg, &model), TRC_OK);
    assert_int_equal(trc_model_init(&model, 3), TRC_OK);
    trc_infer_plan *plan;
    assert_int_equal(trc_infer_plan_create(&model, &plan), TRC_OK);
    enum { MAXB = 140, U = 15 }; /* 2 chunks of rows: the thread split is exercised */
    float *x0 = malloc(MAXB * 2 * sizeof *x0), *tg = malloc(MAXB * 2 * sizeof *tg);
    float *u = malloc(MAXB * U * sizeof *u), *ref = malloc(MAXB * U * sizeof *ref);
    float *all = malloc(MAXB * U * sizeof *all);
    assert_true(x0 && tg && u && ref && all);
    trc_rng rng;
    trc_rng_seed(&rng, 11);
    fill(&rng, x0, MAXB * 2);
    fill(&rng, tg, MAXB * 2);
    /* all rows at once; then single rows, smaller batches and two threads give the same bits */
    assert_int_equal(trc_infer_plan_run(plan, MAXB, x0, tg, NULL, all, NULL, 1), TRC_OK);
    const size_t singles[] = {0, 1, 5, 6, 7, 71, MAXB - 1};
    for (size_t k = 0; k < sizeof singles / sizeof singles[0]; k++) {
        size_t r = singles[k];
        assert_int_equal(trc_infer_plan_run(plan, 1, x0 + 2 * r, tg + 2 * r, NULL, u, NULL, 1),
                         TRC_OK);
        assert_memory_equal(u, all + r * U, U * sizeof *u);
    }
    const size_t Bs[] = {2, 5, 7, 40};
    for (size_t k = 0; k < sizeof Bs / sizeof Bs[0]; k++) {
        size_t B = Bs[k];
        assert_int_equal(trc_infer_plan_run(plan, B, x0, tg, NULL, u, NULL, 1), TRC_OK);
        assert_memory_equal(u, all, B * U * sizeof *u);
        assert_int_equal(trc_model_infer(&model, B, x0, tg, ref, NULL), TRC_OK);
        check_close(u, ref, B * U, 1e-5f, "plan vs trc_model_infer");
    }
    assert_int_equal(trc_infer_plan_run(plan, MAXB, x0, tg, NULL, u, NULL, 2), TRC_OK);
    assert_memory_equal(u, all, MAXB * U * sizeof *u);
    trc_infer_plan_free(plan);
    free(x0);
    free(tg);
    free(u);
    free(ref);
    free(all);
    trc_model_free(&model);
}

static void test_errors(void **state) {
    (void)state;
    trc_model_config cfg;
    trc_model model;
    assert_int_equal(trc_model_config_preset("small", 2, 1, 15, 4.0f, &cfg), TRC_OK);
    assert_int_equal(trc_model_create(&cfg, &model), TRC_OK);
    trc_infer_plan *plan = NULL;
    assert_int_equal(trc_infer_plan_create(&model, NULL), TRC_EINVAL);
    trc_model empty = {0};
    assert_int_equal(trc_infer_plan_create(&empty, &plan), TRC_EINVAL);
    assert_null(plan);
    assert_int_equal(trc_infer_plan_create(&model, &plan), TRC_OK);
    float x[2] = {0}, u[15];
    assert_int_equal(trc_infer_plan_run(NULL, 1, x, x, NULL, u, NULL, 1), TRC_EINVAL);
    assert_int_equal(trc_infer_plan_run(plan, 0, x, x, NULL, u, NULL, 1), TRC_EINVAL);
    assert_int_equal(trc_infer_plan_run(plan, 1, NULL, x, NULL, u, NULL, 1), TRC_EINVAL);
    assert_int_equal(trc_infer_plan_run(plan, 1, x, x, NULL, u, NULL, 0), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "threads"));
    /* a non-finite output is reported, as by trc_model_infer */
    model.params[model.views[0].offset] = NAN;
    trc_infer_plan_free(plan);
    assert_int_equal(trc_infer_plan_create(&model, &plan), TRC_OK);
    x[0] = 1.0f;
    assert_int_equal(trc_infer_plan_run(plan, 1, x, x, NULL, u, NULL, 1), TRC_ENUMERIC);
    trc_infer_plan_free(plan);
    trc_infer_plan_free(NULL);
    trc_model_free(&model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_packed_kernel),
        cmocka_unit_test(test_fixture_small_init),
        cmocka_unit_test(test_fixture_small_random),
        cmocka_unit_test(test_against_infer),
        cmocka_unit_test(test_errors),
    };
    return RUN_EVERY_ISA(tests, NULL, NULL);
}
