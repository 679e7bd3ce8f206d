/* Tests of evaluation: metrics on hand-computed cases, on expert data (near-zero error), the
 * random baseline's distribution, system resolution, and the JSON report. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/eval.h"
#include "trc/system.h"

#include "../common.h"

static int setup(void **state) {
    (void)state;
    return test_tmpdir_make("eval");
}

static int teardown(void **state) {
    (void)state;
    return test_rm_rf(test_tmpdir);
}

static const trc_system *di(void) {
    return trc_system_find("double_integrator");
}

/* Zero controls: x_T = (p + v T dt, v) exactly, so the errors are known in closed form. */
static void test_hand_computed(void **state) {
    (void)state;
    const int T = 3;
    const double dt = 0.5;
    float x0[3 * 2] = {0, 1, 1, 0, -1, 2};
    float tg[3 * 2] = {1.5, 1, 0, 0, 0, 0};
    float u[3 * 3] = {0};
    /* finals (1.5, 1), (1, 0), (2, 2) against the targets: errors 0, 1 and 3 */
    tg[4] = 2, tg[5] = -1;
    trc_eval_stats st;
    float fe[3];
    assert_int_equal(trc_eval_controls(di(), dt, T, 3, x0, tg, u, 0.5, &st, fe), 0);
    assert_true(fe[0] == 0.0f && fe[1] == 1.0f && fe[2] == 3.0f);
    assert_true(fabs(st.err_mean - 4.0 / 3.0) < 1e-12);
    /* sample std of {0, 1, 3}: mean 4/3, squares 16/9 + 1/9 + 25/9 = 42/9, / 2 = 7/3 */
    assert_true(fabs(st.err_std - sqrt(7.0 / 3.0)) < 1e-12);
    assert_true(st.err_min == 0.0 && st.err_max == 3.0);
    assert_true(fabs(st.comp_mean_abs[0] - 1.0 / 3.0) < 1e-12 && st.comp_mean_abs[1] == 1.0);
    assert_int_equal(st.successes, 1);
    assert_true(fabs(st.success_rate - 1.0 / 3.0) < 1e-12);
    assert_true(st.cost_mean == 0.0 && st.cost_std == 0.0);

    /* constant control 2 for one sample: cost T * 4, displacement a (T dt)^2 / 2 */
    float u1[3] = {2, 2, 2}, z[2] = {0, 0}, t1[2] = {2.25, 3};
    assert_int_equal(trc_eval_controls(di(), dt, T, 1, z, t1, u1, 0.1, &st, NULL), 0);
    assert_true(st.err_mean < 1e-12 && st.cost_mean == 12.0 && st.err_std == 0.0);
    assert_int_equal(st.successes, 1);
    /* strictly below the threshold counts */
    assert_int_equal(trc_eval_controls(di(), dt, T, 3, x0, tg, u, 1.0, &st, NULL), 0);
    assert_int_equal(st.successes, 1);
    assert_int_equal(trc_eval_controls(di(), dt, T, 3, x0, tg, u, 1.0001, &st, NULL), 0);
    assert_int_equal(st.successes, 2);
}

static void test_expert_data_and_errors(void **state) {
    (void)state;
    trc_gen_settings g;
    trc_gen_settings_default("double_integrator", &g);
    trc_dataset ds;
    assert_int_equal(trc_dataset_generate(&g, 1000, &ds), 0);
    trc_eval_stats st;
    assert_int_equal(trc_eval_controls(di(), g.dt, 15, ds.n, ds.initial_states, ds.target_states,
                                       ds.control_sequences, 0.1, &st, NULL),
                     0);
    assert_true(st.err_mean < 1e-5 && st.err_max < 1e-4);
    assert_true(st.success_rate == 1.0);
    double c = 0;
    for (size_t i = 0; i < ds.n; i++)
        c += ds.costs[i];
    assert_true(fabs(st.cost_mean - c / ds.n) < 1e-4 * st.cost_mean);
    assert_true(fabs(st.cost_mean - 7.19) < 0.6); /* about 7.2 */

    ds.control_sequences[5 * 15 + 3] = NAN;
    assert_int_equal(trc_eval_controls(di(), g.dt, 15, ds.n, ds.initial_states, ds.target_states,
                                       ds.control_sequences, 0.1, &st, NULL),
                     TRC_ENUMERIC);
    assert_non_null(strstr(trc_errmsg(), "sample 5"));
    assert_int_equal(trc_eval_controls(di(), g.dt, 15, 0, ds.initial_states, ds.target_states,
                                       ds.control_sequences, 0.1, &st, NULL),
                     TRC_EINVAL);
    assert_int_equal(trc_eval_controls(di(), g.dt, 15, 1, ds.initial_states, ds.target_states,
                                       ds.control_sequences, 0.0, &st, NULL),
                     TRC_EINVAL);
    assert_int_equal(trc_eval_controls(di(), 0, 15, 1, ds.initial_states, ds.target_states,
                                       ds.control_sequences, 0.1, &st, NULL),
                     TRC_EINVAL);
    trc_dataset_free(&ds);
}

static void test_random_controls(void **state) {
    (void)state;
    const size_t n = 200000;
    float *u = malloc(n * sizeof *u), *v = malloc(n * sizeof *v);
    assert_int_equal(trc_eval_random_controls(9, 2.0, n, u), 0);
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++)
        s += u[i], s2 += (double)u[i] * u[i];
    double mean = s / n, var = s2 / n - mean * mean;
    assert_true(fabs(mean) < 0.03);
    assert_true(fabs(var - 4.0) < 0.08);
    assert_int_equal(trc_eval_random_controls(9, 2.0, n, v), 0);
    assert_memory_equal(u, v, n * sizeof *u);
    assert_int_equal(trc_eval_random_controls(10, 2.0, n, v), 0);
    assert_memory_not_equal(u, v, n * sizeof *u);
    assert_int_equal(trc_eval_random_controls(9, NAN, n, v), TRC_EINVAL);
    free(u);
    free(v);
}

static void test_resolve(void **state) {
    (void)state;
    trc_dataset ds = {.n = 1, .s = 2, .m = 1, .T = 15};
    const trc_system *sys;
    double dt;
    /* no time step recorded and none given: never the system's default (issue 14) */
    assert_int_equal(trc_eval_resolve(&ds, NULL, 0, &sys, &dt), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "records no time step for double_integrator"));
    assert_non_null(strstr(trc_errmsg(), "--dt"));
    assert_int_equal(trc_eval_resolve(&ds, NULL, 0.33, &sys, &dt), 0);
    assert_string_equal(sys->name, "double_integrator");
    assert_true(dt == 0.33);
    assert_int_equal(trc_eval_resolve(&ds, "van_der_pol", 0.07, &sys, &dt), 0);
    assert_true(dt == 0.07);
    /* what the file records (settings or sidecar: ds.dt, ds.system) */
    snprintf(ds.system, sizeof ds.system, "double_integrator");
    ds.dt = 0.25;
    assert_int_equal(trc_eval_resolve(&ds, NULL, 0, &sys, &dt), 0);
    assert_true(dt == 0.25);
    assert_int_equal(trc_eval_resolve(&ds, NULL, 0.5, &sys, &dt), 0);
    assert_true(dt == 0.5); /* a given dt wins */
    /* another system: the file's dt is not its dt */
    assert_int_equal(trc_eval_resolve(&ds, "van_der_pol", 0, &sys, &dt), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "no time step for van_der_pol"));
    /* a dt recorded without a system belongs to the system the shape resolves to */
    ds.system[0] = '\0';
    assert_int_equal(trc_eval_resolve(&ds, NULL, 0, &sys, &dt), 0);
    assert_true(dt == 0.25);
    assert_int_equal(trc_eval_resolve(&ds, "nope", 0, &sys, &dt), TRC_ENOTFOUND);
    snprintf(ds.system, sizeof ds.system, "double_integrator");
    ds.s = 3;
    assert_int_equal(trc_eval_resolve(&ds, NULL, 0, &sys, &dt), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "data has s=3"));
}

static void test_report_json(void **state) {
    (void)state;
    trc_eval_row rows[3] = {
        {"random", {0}, NULL}, {"expert", {0}, NULL}, {"model", {0}, "{\"parameters\": 530590}"}};
    rows[0].stats = (trc_eval_stats){
        .n = 10, .s = 2, .err_mean = 4.0, .cost_mean = 60.0, .success_rate = 0.0, .threshold = 0.1};
    rows[1].stats = (trc_eval_stats){.n = 10,
                                     .s = 2,
                                     .err_mean = 0.5,
                                     .cost_mean = 7.0,
                                     .success_rate = 0.9,
                                     .successes = 9,
                                     .threshold = 0.1};
    rows[2].stats = (trc_eval_stats){
        .n = 10, .s = 2, .err_mean = 1.0, .cost_mean = 7.7, .success_rate = 0.5, .threshold = 0.1};
    rows[1].stats.comp_mean_abs[1] = 0.25;
    trc_eval_context ctx = {"compare", "test.npz", NULL, "double_integrator", 1.0 / 3, 15, 10,
                            0.1,       1,          7};
    assert_int_equal(
        trc_eval_report_json(test_tmp_path("r.json"), &ctx, rows, 3, "expert", "random"), 0);
    json_error_t je;
    json_t *o = json_load_file(test_tmp_path("r.json"), 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "data")), "test.npz");
    assert_true(json_is_null(json_object_get(o, "controls")));
    assert_int_equal(json_integer_value(json_object_get(o, "seed")), 7);
    json_t *res = json_object_get(o, "results");
    assert_int_equal(json_object_size(res), 3);
    json_t *ex = json_object_get(res, "expert");
    assert_true(json_real_value(json_object_get(ex, "error_mean")) == 0.5);
    assert_int_equal(json_integer_value(json_object_get(ex, "successes")), 9);
    assert_true(json_real_value(
                    json_array_get(json_object_get(ex, "component_mean_abs_error"), 1)) == 0.25);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(res, "model"), "parameters")), 530590);
    json_t *rel = json_object_get(o, "relative");
    assert_null(json_object_get(rel, "expert")
                    ? json_object_get(json_object_get(rel, "expert"), "error_mean_vs_expert")
                    : NULL);
    json_t *rm = json_object_get(rel, "model");
    assert_true(fabs(json_real_value(json_object_get(rm, "error_mean_vs_expert")) - 1.0) < 1e-12);
    assert_true(fabs(json_real_value(json_object_get(rm, "cost_mean_vs_expert")) - 0.1) < 1e-9);
    assert_true(fabs(json_real_value(json_object_get(rm, "success_rate_diff_vs_expert")) + 0.4) <
                1e-12);
    assert_true(fabs(json_real_value(json_object_get(rm, "error_reduction_vs_random")) - 0.75) <
                1e-12);
    json_decref(o);

    /* a zero reference gives null, not NaN; a bad extra object is refused and nothing written */
    rows[1].stats.err_mean = 0;
    assert_int_equal(trc_eval_report_json(test_tmp_path("r.json"), &ctx, rows, 3, "expert", NULL),
                     0);
    o = json_load_file(test_tmp_path("r.json"), 0, &je);
    assert_non_null(o);
    rm = json_object_get(json_object_get(o, "relative"), "model");
    assert_true(json_is_null(json_object_get(rm, "error_mean_vs_expert")));
    json_decref(o);
    rows[2].extra_json = "[1, 2]";
    assert_int_equal(trc_eval_report_json(test_tmp_path("bad.json"), &ctx, rows, 3, "expert", NULL),
                     TRC_EINVAL);
    assert_int_equal(access(test_tmp_path("bad.json"), F_OK), -1);
    rows[2].extra_json = NULL;
    assert_int_equal(trc_eval_report_json("/nonexistent-dir/r.json", &ctx, rows, 3, NULL, NULL),
                     TRC_EIO);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed),   cmocka_unit_test(test_expert_data_and_errors),
        cmocka_unit_test(test_random_controls), cmocka_unit_test(test_resolve),
        cmocka_unit_test(test_report_json),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
