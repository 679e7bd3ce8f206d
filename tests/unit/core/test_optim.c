/* AdamW against a hand computation in double, gradient clipping, and each scheduler's
 * learning-rate sequence against its closed form. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "trc/error.h"
#include "trc/optim.h"

#define N 9

static void fill(float *x, size_t n, float scale, float shift) {
    for (size_t i = 0; i < n; i++)
        x[i] = scale * sinf((float)i * 1.7f + shift);
}

static void test_adamw_matches_hand_computation(void **state) {
    (void)state;
    float p[N], g[N];
    double pd[N], md[N] = {0}, vd[N] = {0};
    fill(p, N, 0.8f, 0.3f);
    for (int i = 0; i < N; i++)
        pd[i] = p[i];
    trc_adamw opt;
    assert_int_equal(trc_adamw_init(&opt, N, 1e-2), TRC_OK);
    const double lr = 3e-3;
    for (int t = 1; t <= 4; t++) {
        fill(g, N, 0.5f / (float)t, (float)t);
        g[3] = 0.0f; /* a parameter without gradient still decays */
        assert_int_equal(trc_adamw_step(&opt, p, g, lr), TRC_OK);
        for (int i = 0; i < N; i++) {
            pd[i] -= lr * 1e-2 * pd[i];
            md[i] = 0.9 * md[i] + 0.1 * g[i];
            vd[i] = 0.999 * vd[i] + 0.001 * (double)g[i] * g[i];
            double mhat = md[i] / (1 - pow(0.9, t));
            double denom = sqrt(vd[i]) / sqrt(1 - pow(0.999, t)) + 1e-8;
            pd[i] -= lr * mhat / denom;
        }
        for (int i = 0; i < N; i++) {
            assert_true(fabs(p[i] - pd[i]) <= 1e-6 * fmax(1.0, fabs(pd[i])));
            assert_true(fabs(opt.m[i] - md[i]) <= 1e-6 * fmax(1e-3, fabs(md[i])));
            assert_true(fabs(opt.v[i] - vd[i]) <= 1e-6 * fmax(1e-6, fabs(vd[i])));
        }
    }
    assert_int_equal(opt.step, 4);
    trc_adamw_free(&opt);
}

static void test_adamw_decay_is_decoupled(void **state) {
    (void)state;
    float p[N], g[N] = {0};
    fill(p, N, 2.0f, 0.1f);
    float before[N];
    memcpy(before, p, sizeof p);
    trc_adamw opt;
    assert_int_equal(trc_adamw_init(&opt, N, 0.5), TRC_OK);
    assert_int_equal(trc_adamw_step(&opt, p, g, 0.1), TRC_OK);
    for (int i = 0; i < N; i++)
        assert_float_equal(p[i], before[i] * (float)(1.0 - 0.1 * 0.5), 1e-7);
    trc_adamw_free(&opt);
}

static void test_adamw_bad_input(void **state) {
    (void)state;
    trc_adamw opt;
    assert_int_equal(trc_adamw_init(&opt, 0, 0.0), TRC_EINVAL);
    assert_int_equal(trc_adamw_init(&opt, 3, -1.0), TRC_EINVAL);
    assert_int_equal(trc_adamw_init(&opt, 3, 0.0), TRC_OK);
    float p[3] = {0}, g[3] = {0};
    assert_int_equal(trc_adamw_step(&opt, p, g, NAN), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "learning rate"));
    trc_adamw_free(&opt);
    trc_adamw_free(&opt); /* idempotent */
}

static void test_clip_grad_norm(void **state) {
    (void)state;
    float g[4] = {3, 4, 0, 0}; /* norm 5 */
    double norm;
    assert_int_equal(trc_clip_grad_norm(g, 4, 1.0, &norm), TRC_OK);
    assert_float_equal(norm, 5.0, 1e-12);
    double scale = 1.0 / (5.0 + 1e-6);
    assert_float_equal(g[0], 3 * scale, 1e-7);
    assert_float_equal(g[1], 4 * scale, 1e-7);
    assert_float_equal(trc_grad_norm(g, 4), 5.0 * scale, 1e-6);

    float h[2] = {0.3f, 0.4f}; /* norm 0.5 < 1: untouched */
    assert_int_equal(trc_clip_grad_norm(h, 2, 1.0, &norm), TRC_OK);
    assert_true(h[0] == 0.3f && h[1] == 0.4f);

    float k[2] = {30, 40}; /* max_norm <= 0 disables clipping */
    assert_int_equal(trc_clip_grad_norm(k, 2, 0.0, &norm), TRC_OK);
    assert_true(k[0] == 30 && k[1] == 40);
    assert_float_equal(norm, 50.0, 1e-9);

    float bad[2] = {1, INFINITY};
    assert_int_equal(trc_clip_grad_norm(bad, 2, 1.0, NULL), TRC_ENUMERIC);
}

static void test_cosine_schedule(void **state) {
    (void)state;
    trc_sched s;
    const double lr = 1e-3, lr_min = 1e-6;
    const int T = 10;
    assert_int_equal(trc_sched_init(&s, TRC_SCHED_COSINE, lr, lr_min, T, 0, 0, 0), TRC_OK);
    assert_float_equal(s.lr, lr, 0);
    for (int e = 1; e <= T; e++) {
        double got = trc_sched_step(&s, 1.0);
        double want = lr_min + (lr - lr_min) * (1 + cos(M_PI * e / T)) / 2;
        assert_float_equal(got, want, 1e-15);
    }
    assert_float_equal(s.lr, lr_min, 1e-15);
    assert_int_equal(trc_sched_init(&s, TRC_SCHED_COSINE, lr, lr_min, 0, 0, 0, 0), TRC_EINVAL);
}

static void test_step_schedule(void **state) {
    (void)state;
    trc_sched s;
    assert_int_equal(trc_sched_init(&s, TRC_SCHED_STEP, 0.1, 0, 0, 3, 0.5, 0), TRC_OK);
    const double want[] = {0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125};
    for (int e = 1; e <= 9; e++)
        assert_float_equal(trc_sched_step(&s, 0), want[e - 1], 1e-15);
    assert_int_equal(trc_sched_init(&s, TRC_SCHED_STEP, 0.1, 0, 0, 0, 0.5, 0), TRC_EINVAL);
    assert_int_equal(trc_sched_init(&s, TRC_SCHED_STEP, 0.1, 0, 0, 3, 1.5, 0), TRC_EINVAL);
}

static void test_plateau_schedule(void **state) {
    (void)state;
    trc_sched s;
    assert_int_equal(trc_sched_init(&s, TRC_SCHED_PLATEAU, 1.0, 0, 0, 0, 0.5, 2), TRC_OK);
    /* improvements, then a flat stretch: the rate halves after 3 (> patience 2) bad epochs,
     * the counter restarts, and a relative change below 1e-4 is not an improvement. */
    const double metric[] = {1.0, 0.5, 0.5, 0.49999, 0.6, 0.5, 0.7, 0.8, 0.1, 0.2};
    const double want[] = {1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25};
    for (int e = 0; e < 10; e++)
        assert_float_equal(trc_sched_step(&s, metric[e]), want[e], 1e-15);
    assert_int_equal(trc_sched_init(&s, TRC_SCHED_PLATEAU, 1.0, 0, 0, 0, 1.0, 2), TRC_EINVAL);
}

static void test_none_schedule(void **state) {
    (void)state;
    trc_sched s;
    assert_int_equal(trc_sched_init(&s, TRC_SCHED_NONE, 2e-3, 0, 0, 0, 0, 0), TRC_OK);
    for (int e = 0; e < 5; e++)
        assert_float_equal(trc_sched_step(&s, 1.0 / (e + 1)), 2e-3, 0);
    assert_int_equal(trc_sched_init(&s, TRC_SCHED_NONE, 0.0, 0, 0, 0, 0, 0), TRC_EINVAL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_matches_hand_computation),
        cmocka_unit_test(test_adamw_decay_is_decoupled),
        cmocka_unit_test(test_adamw_bad_input),
        cmocka_unit_test(test_clip_grad_norm),
        cmocka_unit_test(test_cosine_schedule),
        cmocka_unit_test(test_step_schedule),
        cmocka_unit_test(test_plateau_schedule),
        cmocka_unit_test(test_none_schedule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
