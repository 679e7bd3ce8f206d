/* Tests of datasets: settings, generation (box sampling, expert controls, trajectories, costs,
 * determinism), the .npz round trip with metadata, reading numpy's float64 files, and the
 * rejection of malformed files with the file and key named. */
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
#include "trc/npz.h"
#include "trc/system.h"

#include "../common.h"

static int setup(void **state) {
    (void)state;
    return test_tmpdir_make("dataset");
}

static int teardown(void **state) {
    (void)state;
    return test_rm_rf(test_tmpdir);
}

static void test_settings(void **state) {
    (void)state;
    trc_gen_settings g;
    assert_int_equal(trc_gen_settings_default("double_integrator", &g), 0);
    assert_string_equal(g.expert, "min_energy");
    assert_int_equal(g.T, 15);
    assert_true(fabs(g.dt - 1.0 / 3.0) < 1e-15 && g.bound == 4.0);
    assert_true(g.box_lo == -2.0 && g.box_hi == 2.0 && g.seed == 42);
    /* the expert's parameters by name: 0 = default; only an expert that has one takes it */
    assert_true(isnan(trc_gen_settings_param(&g, "lqr_q")));
    assert_int_equal(trc_gen_settings_set_param(&g, "lqr_q", 2.0), TRC_EINVAL);
    assert_non_null(
        strstr(trc_errmsg(), "lqr_q applies to the lqr, lqr_finite and ilqr experts only"));
    assert_int_equal(trc_gen_settings_validate(&g), 0);
    assert_int_equal(trc_gen_settings_default("nope", &g), TRC_ENOTFOUND);

    trc_gen_settings b;
    trc_gen_settings_default("double_integrator", &g);
    b = g, snprintf(b.system, sizeof b.system, "pendulum");
    assert_int_equal(trc_gen_settings_validate(&b), TRC_ENOTFOUND);
    assert_non_null(strstr(trc_errmsg(), "unknown system 'pendulum'"));
    b = g, snprintf(b.expert, sizeof b.expert, "mpc");
    assert_int_equal(trc_gen_settings_validate(&b), TRC_ENOTFOUND);
    assert_non_null(strstr(trc_errmsg(), "unknown expert 'mpc'"));
    b = g, b.T = 0;
    assert_int_equal(trc_gen_settings_validate(&b), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "horizon"));
    b = g, b.dt = -1;
    assert_int_equal(trc_gen_settings_validate(&b), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "dt must be"));
    b = g, b.bound = 0;
    assert_int_equal(trc_gen_settings_validate(&b), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "bound"));
    b = g, b.box_lo = 1, b.box_hi = 1;
    assert_int_equal(trc_gen_settings_validate(&b), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "lo < hi"));
    b = g, b.box_hi = INFINITY;
    assert_int_equal(trc_gen_settings_validate(&b), TRC_EINVAL);
    b = g, snprintf(b.expert, sizeof b.expert, "lqr");
    assert_int_equal(trc_gen_settings_set_param(&b, "lqr_r", -0.1), 0);
    assert_int_equal(trc_gen_settings_validate(&b), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "lqr_r"));
    b = g, memset(b.system, 'x', sizeof b.system);
    assert_int_equal(trc_gen_settings_validate(&b), TRC_EINVAL);
}

static void test_generate_min_energy(void **state) {
    (void)state;
    trc_gen_settings g;
    trc_gen_settings_default("double_integrator", &g);
    g.box_lo = -1.5, g.box_hi = 0.5;
    trc_dataset ds;
    const size_t n = 500;
    assert_int_equal(trc_dataset_generate(&g, n, &ds), 0);
    assert_true(ds.n == n && ds.s == 2 && ds.m == 1 && ds.T == 15);
    assert_true(ds.has_settings);
    assert_string_equal(ds.settings.system, "double_integrator");
    const trc_system *sys = trc_system_find("double_integrator");
    float *traj = malloc(sizeof(float) * n * 16 * 2);
    assert_int_equal(trc_simulate(sys, g.dt, 15, n, ds.initial_states, ds.control_sequences, traj),
                     0);
    assert_memory_equal(traj, ds.state_trajectories, sizeof(float) * n * 16 * 2);
    double mean_lo = 0;
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < 2; k++) {
            float a = ds.initial_states[i * 2 + k], b = ds.target_states[i * 2 + k];
            assert_true(a >= -1.5f && a <= 0.5f && b >= -1.5f && b <= 0.5f);
            assert_true(ds.state_trajectories[i * 32 + k] == a);
            /* float32 controls reach the target up to their rounding */
            assert_true(fabs(ds.state_trajectories[i * 32 + 30 + k] - b) < 1e-5);
            mean_lo += a;
        }
        double e = 0;
        for (int t = 0; t < 15; t++)
            e += (double)ds.control_sequences[i * 15 + t] * ds.control_sequences[i * 15 + t];
        assert_true(fabs(ds.costs[i] - e) < 1e-5 * (1 + e));
    }
    mean_lo /= 2.0 * n;
    assert_true(fabs(mean_lo - (-0.5)) < 0.05); /* uniform on [-1.5, 0.5] */

    /* same seed, same data; another seed, other data */
    trc_dataset d2, d3;
    assert_int_equal(trc_dataset_generate(&g, n, &d2), 0);
    assert_memory_equal(d2.control_sequences, ds.control_sequences, sizeof(float) * n * 15);
    g.seed = 43;
    assert_int_equal(trc_dataset_generate(&g, n, &d3), 0);
    assert_memory_not_equal(d3.initial_states, ds.initial_states, sizeof(float) * n * 2);
    free(traj);
    trc_dataset_free(&ds);
    trc_dataset_free(&d2);
    trc_dataset_free(&d3);
}

static void test_generate_lqr_and_errors(void **state) {
    (void)state;
    trc_gen_settings g;
    trc_gen_settings_default("double_integrator", &g);
    snprintf(g.expert, sizeof g.expert, "lqr_finite");
    trc_gen_settings_set_param(&g, "lqr_q", 2); /* lqr_r stays 0: the default */
    trc_gen_settings_set_param(&g, "lqr_qf", 10);
    trc_dataset ds;
    assert_int_equal(trc_dataset_generate(&g, 50, &ds), 0);
    assert_true(trc_gen_settings_param(&ds.settings, "lqr_q") == 2 &&
                trc_gen_settings_param(&ds.settings, "lqr_r") == 0.1 &&
                trc_gen_settings_param(&ds.settings, "lqr_qf") == 10);
    for (size_t i = 0; i < 50; i++) {
        double e = 0;
        for (int t = 0; t < 15; t++)
            e += 0.1 * ds.control_sequences[i * 15 + t] * ds.control_sequences[i * 15 + t];
        assert_true(ds.costs[i] > e); /* the quadratic cost includes the state terms */
    }
    trc_dataset_free(&ds);

    assert_int_equal(trc_dataset_generate(&g, 0, &ds), TRC_EINVAL);
    assert_null(ds.initial_states);
    trc_gen_settings_default("van_der_pol", &g);
    assert_int_equal(trc_dataset_generate(&g, 10, &ds), TRC_EUNSUPPORTED);
    assert_non_null(strstr(trc_errmsg(), "nonlinear"));
    trc_gen_settings_default("double_integrator", &g);
    g.T = 1;
    assert_int_equal(trc_dataset_generate(&g, 10, &ds), TRC_EUNSUPPORTED);
    assert_int_equal(trc_dataset_alloc(&ds, 0, 2, 1, 15), TRC_EINVAL);
    assert_int_equal(trc_dataset_alloc(&ds, SIZE_MAX / 2, 2, 1, 15), TRC_EINVAL);
    trc_dataset_free(&ds); /* freeing an empty dataset is fine */
}

static void test_save_load_round_trip(void **state) {
    (void)state;
    trc_gen_settings g;
    trc_gen_settings_default("double_integrator", &g);
    snprintf(g.expert, sizeof g.expert, "lqr");
    g.seed = 18446744073709551557ULL; /* above INT64_MAX: stored as a string */
    g.dt = 0.1 + 0.2;                 /* not representable in short decimal form */
    trc_dataset ds, back;
    assert_int_equal(trc_dataset_generate(&g, 64, &ds), 0);
    assert_int_equal(trc_dataset_save(test_tmp_path("a.npz"), &ds), 0);
    assert_int_equal(trc_dataset_load(test_tmp_path("a.npz"), &back), 0);
    assert_true(back.n == 64 && back.s == 2 && back.m == 1 && back.T == 15);
    assert_memory_equal(back.initial_states, ds.initial_states, 64 * 2 * sizeof(float));
    assert_memory_equal(back.target_states, ds.target_states, 64 * 2 * sizeof(float));
    assert_memory_equal(back.control_sequences, ds.control_sequences, 64 * 15 * sizeof(float));
    assert_memory_equal(back.state_trajectories, ds.state_trajectories, 64 * 32 * sizeof(float));
    assert_memory_equal(back.costs, ds.costs, 64 * sizeof(float));
    assert_true(back.has_settings);
    assert_string_equal(back.settings.system, "double_integrator");
    assert_string_equal(back.settings.expert, "lqr");
    assert_true(back.settings.seed == g.seed);
    assert_true(back.settings.dt == g.dt); /* exact through JSON */
    assert_true(back.settings.T == 15 && back.settings.bound == 4.0);
    assert_true(back.settings.box_lo == -2.0 && back.settings.box_hi == 2.0);
    assert_true(trc_gen_settings_param(&back.settings, "lqr_q") == 1.0 &&
                trc_gen_settings_param(&back.settings, "lqr_r") == 0.1);
    trc_dataset_free(&back);

    /* without settings or optional arrays: still a valid file, no settings come back */
    free(ds.state_trajectories);
    free(ds.costs);
    ds.state_trajectories = NULL;
    ds.costs = NULL;
    ds.has_settings = 0;
    assert_int_equal(trc_dataset_save(test_tmp_path("plain.npz"), &ds), 0);
    assert_int_equal(trc_dataset_load(test_tmp_path("plain.npz"), &back), 0);
    assert_false(back.has_settings);
    assert_null(back.state_trajectories);
    assert_null(back.costs);
    trc_dataset_free(&back);

    assert_int_equal(trc_dataset_save("/nonexistent-dir/x.npz", &ds), TRC_EIO);
    assert_int_equal(access("/nonexistent-dir/x.npz", F_OK), -1);
    trc_dataset empty = {0};
    assert_int_equal(trc_dataset_save(test_tmp_path("b.npz"), &empty), TRC_EINVAL);
    assert_int_equal(access(test_tmp_path("b.npz"), F_OK), -1);
    trc_dataset_free(&ds);
}

/* The metadata's "cost" of a saved dataset (NULL when absent; malloc'd). */
static char *saved_cost_label(const trc_dataset *ds) {
    assert_int_equal(trc_dataset_save(test_tmp_path("cost.npz"), ds), 0);
    trc_npz *z;
    trc_npy_array a;
    char *text = NULL;
    assert_int_equal(trc_npz_open(test_tmp_path("cost.npz"), &z), 0);
    assert_int_equal(trc_npz_read(z, "metadata", &a), 0);
    assert_int_equal(trc_npy_string(&a, 0, &text), 0);
    trc_npy_free(&a);
    trc_npz_close(z);
    json_t *o = json_loads(text, 0, NULL);
    assert_non_null(o);
    const char *c = json_string_value(json_object_get(o, "cost"));
    char *label = c ? strdup(c) : NULL;
    json_decref(o);
    free(text);
    return label;
}

static void expect_cost_label(trc_dataset *ds, const char *expert, const char *want) {
    snprintf(ds->settings.expert, sizeof ds->settings.expert, "%s", expert);
    char *got = saved_cost_label(ds);
    if (want ? !got || strcmp(got, want) != 0 : got != NULL)
        fail_msg("expert %s: cost label %s, want %s", expert, got ? got : "(none)",
                 want ? want : "(none)");
    free(got);
}

/* The "cost" label says what `costs` holds: sum u^2 for min_energy and for a model's predictions
 * (trc predict --data stores sum u^2 with expert "model"), the LQR cost for the LQR experts. */
static void test_cost_label(void **state) {
    (void)state;
    trc_gen_settings g;
    trc_gen_settings_default("double_integrator", &g);
    trc_dataset ds;
    assert_int_equal(trc_dataset_generate(&g, 4, &ds), 0);
    const size_t U = (size_t)ds.T * ds.m;
    for (size_t i = 0; i < ds.n; i++) { /* min_energy's objective is sum u^2 */
        double sum = 0;
        for (size_t k = 0; k < U; k++)
            sum += (double)ds.control_sequences[i * U + k] * ds.control_sequences[i * U + k];
        assert_true(fabs(sum - ds.costs[i]) <= 1e-5 * (1 + sum));
    }
    expect_cost_label(&ds, "min_energy", "sum_u2");
    expect_cost_label(&ds, "model", "sum_u2");
    expect_cost_label(&ds, "lqr", "lqr_quadratic");
    expect_cost_label(&ds, "lqr_finite", "lqr_quadratic");
    expect_cost_label(&ds, "someone_else", NULL); /* unknown: not labelled rather than wrong */
    trc_dataset_free(&ds);
}

/* The original project's layout as numpy writes it: float64, no metadata. The controls there
 * were computed by numpy (make_npz_fixtures.py), so this also cross-checks the dynamics. */
static void check_numpy_f64(const char *name) {
    trc_dataset ds;
    assert_int_equal(trc_dataset_load(test_data_path(name), &ds), 0);
    assert_true(ds.n == 8 && ds.s == 2 && ds.m == 1 && ds.T == 15);
    assert_false(ds.has_settings);
    assert_non_null(ds.state_trajectories);
    assert_non_null(ds.costs);
    const trc_system *sys = trc_system_find("double_integrator");
    float traj[8 * 16 * 2];
    assert_int_equal(
        trc_simulate(sys, sys->dt, 15, 8, ds.initial_states, ds.control_sequences, traj), 0);
    for (int i = 0; i < 8 * 16 * 2; i++)
        assert_true(fabs(traj[i] - ds.state_trajectories[i]) < 1e-5);
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 2; k++)
            assert_true(fabs(traj[i * 32 + 30 + k] - ds.target_states[i * 2 + k]) < 1e-5);
    trc_dataset_free(&ds);
}

static void test_load_numpy_f64(void **state) {
    (void)state;
    check_numpy_f64("numpy_f64_dataset.npz");
    check_numpy_f64("numpy_fortran_dataset.npz"); /* every array in Fortran order */
}

static void expect_load_fail(const char *name, int code, const char *msg) {
    trc_dataset ds;
    int rc = trc_dataset_load(test_data_path(name), &ds);
    if (rc != code || !strstr(trc_errmsg(), msg) || !strstr(trc_errmsg(), name))
        fail_msg("%s: got %d '%s', want %d '%s'", name, rc, trc_errmsg(), code, msg);
    assert_null(ds.initial_states);
}

static void test_load_rejects(void **state) {
    (void)state;
    expect_load_fail("missing.npz", TRC_EIO, "cannot open");
    expect_load_fail("bad_not_zip.npz", TRC_EFORMAT, "not a valid .npz");
    expect_load_fail("bad_truncated.npz", TRC_EFORMAT, "not a valid .npz");
    expect_load_fail("bad_crc.npz", TRC_EFORMAT, "key 'control_sequences': corrupt entry");
    expect_load_fail("bad_missing_key.npz", TRC_ENOTFOUND, "missing key 'control_sequences'");
    expect_load_fail("bad_shape.npz", TRC_EFORMAT,
                     "key 'control_sequences': expected shape (8, T, m), got (8, 15)");
    expect_load_fail("bad_mismatch.npz", TRC_EFORMAT, "key 'target_states': expected shape (8, 2)");
    expect_load_fail("bad_dtype.npz", TRC_EUNSUPPORTED, "key 'control_sequences'");
    expect_load_fail("bad_bigendian.npz", TRC_EUNSUPPORTED, "key 'initial_states'");
    expect_load_fail("bad_nan.npz", TRC_EFORMAT, "key 'initial_states': non-finite");
    expect_load_fail("bad_header.npz", TRC_EFORMAT, "key 'initial_states': bad .npy header");
    expect_load_fail("bad_length.npz", TRC_EFORMAT, "key 'costs'");
    expect_load_fail("bad_controls_T10.npz", TRC_ENOTFOUND, "missing key 'initial_states'");
    expect_load_fail("numpy_types.npz", TRC_ENOTFOUND, "missing key 'initial_states'");
}

static void test_metadata_handling(void **state) {
    (void)state;
    float x[4] = {0, 1, 2, 3}, u[2 * 3] = {0};
    trc_npz_item items[4] = {
        {"initial_states", TRC_NPY_F32, 2, {2, 2}, x},
        {"target_states", TRC_NPY_F32, 2, {2, 2}, x},
        {"control_sequences", TRC_NPY_F32, 3, {2, 3, 1}, u},
        {"metadata", TRC_NPY_STR, 0, {0}, "written by someone else"},
    };
    trc_dataset ds;
    assert_int_equal(trc_npz_write(test_tmp_path("foreign.npz"), items, 4), 0);
    assert_int_equal(trc_dataset_load(test_tmp_path("foreign.npz"), &ds), 0);
    assert_false(ds.has_settings);
    assert_int_equal(ds.T, 3);
    trc_dataset_free(&ds);
    items[3].data =
        "{\"format\": \"trc-dataset\", \"num_samples\": 2, \"s\": 2, \"m\": 1, \"T\": 4}";
    assert_int_equal(trc_npz_write(test_tmp_path("bad_meta.npz"), items, 4), 0);
    assert_int_equal(trc_dataset_load(test_tmp_path("bad_meta.npz"), &ds), TRC_EFORMAT);
    assert_non_null(strstr(trc_errmsg(), "key 'metadata': says N=2, s=2, m=1, T=4"));
    items[3].data =
        "{\"format\": \"trc-dataset\", \"num_samples\": 2, \"s\": 2, \"m\": 1, \"T\": 3,"
        " \"system\": \"double_integrator\", \"expert\": \"min_energy\"}";
    assert_int_equal(trc_npz_write(test_tmp_path("bad_meta.npz"), items, 4), 0);
    assert_int_equal(trc_dataset_load(test_tmp_path("bad_meta.npz"), &ds), TRC_EFORMAT);
    assert_non_null(strstr(trc_errmsg(), "incomplete generation settings"));
    /* without an expert: what a foreign file recorded (system, dt), no generation settings */
    items[3].data =
        "{\"format\": \"trc-dataset\", \"num_samples\": 2, \"s\": 2, \"m\": 1, \"T\": 3,"
        " \"system\": \"double_integrator\", \"dt\": 0.33}";
    assert_int_equal(trc_npz_write(test_tmp_path("recorded.npz"), items, 4), 0);
    assert_int_equal(trc_dataset_load(test_tmp_path("recorded.npz"), &ds), 0);
    assert_false(ds.has_settings);
    assert_string_equal(ds.system, "double_integrator");
    assert_true(ds.dt == 0.33);
    trc_dataset_free(&ds);
}

/* The original's later files: costs = sum(u^2) * dt, no metadata; a sidecar <stem>.json
 * records dt and the convention; the costs are read as sum(u^2) (ours) and saved so. */
static void test_sidecar_and_cost_convention(void **state) {
    (void)state;
    const double dt = 0.33;
    float x[4] = {0, 1, 2, 3}, u[2 * 3] = {1, 2, 3, -1, 0.5f, 0};
    float theirs[2] = {(float)(14 * dt), (float)(1.25 * dt)}, ours[2] = {14, 1.25f};
    trc_npz_item items[4] = {
        {"initial_states", TRC_NPY_F32, 2, {2, 2}, x},
        {"target_states", TRC_NPY_F32, 2, {2, 2}, x},
        {"control_sequences", TRC_NPY_F32, 3, {2, 3, 1}, u},
        {"costs", TRC_NPY_F32, 1, {2}, theirs},
    };
    trc_dataset ds;
    char path[512], side[512], again[512];
    snprintf(path, sizeof path, "%s", test_tmp_path("orig.npz"));
    snprintf(side, sizeof side, "%s", test_tmp_path("orig.json"));
    snprintf(again, sizeof again, "%s", test_tmp_path("again.npz"));
    assert_int_equal(trc_npz_write(path, items, 4), 0);
    remove(side);
    /* no sidecar: nothing recorded, costs as stored (their convention cannot be told) */
    assert_int_equal(trc_dataset_load(path, &ds), 0);
    assert_true(ds.dt == 0.0 && ds.system[0] == '\0' && ds.cost_label[0] == '\0');
    assert_float_equal(ds.costs[0], theirs[0], 1e-6);
    trc_dataset_free(&ds);
    /* a sidecar declaring the convention */
    FILE *f = fopen(side, "w");
    fputs("{\"dt\": 0.33, \"system\": \"double_integrator\", \"cost\": \"sum_u2_dt\"}", f);
    fclose(f);
    assert_int_equal(trc_dataset_load(path, &ds), 0);
    assert_true(ds.dt == 0.33);
    assert_string_equal(ds.system, "double_integrator");
    assert_string_equal(ds.cost_label, "sum_u2");
    assert_string_equal(ds.cost_converted_from, "sum_u2_dt");
    assert_float_equal(ds.costs[0], 14.0, 1e-5);
    assert_float_equal(ds.costs[1], 1.25, 1e-5);
    /* saved again: our convention, recorded in the metadata, read back without the sidecar */
    assert_int_equal(trc_dataset_save(again, &ds), 0);
    trc_dataset_free(&ds);
    assert_int_equal(trc_dataset_load(again, &ds), 0);
    assert_true(ds.dt == 0.33);
    assert_string_equal(ds.cost_label, "sum_u2");
    assert_string_equal(ds.cost_converted_from, "");
    assert_float_equal(ds.costs[0], 14.0, 1e-5);
    trc_dataset_free(&ds);
    /* only a dt: the convention is recognised from the controls */
    f = fopen(side, "w");
    fputs("{\"dt\": 0.33}", f);
    fclose(f);
    assert_int_equal(trc_dataset_load(path, &ds), 0);
    assert_string_equal(ds.cost_converted_from, "sum_u2_dt");
    assert_float_equal(ds.costs[1], 1.25, 1e-5);
    trc_dataset_free(&ds);
    items[3].data = ours; /* already sum(u^2): left alone, labelled */
    assert_int_equal(trc_npz_write(path, items, 4), 0);
    assert_int_equal(trc_dataset_load(path, &ds), 0);
    assert_string_equal(ds.cost_label, "sum_u2");
    assert_string_equal(ds.cost_converted_from, "");
    assert_float_equal(ds.costs[0], 14.0, 1e-6);
    trc_dataset_free(&ds);
    /* a bad sidecar is refused, naming it */
    f = fopen(side, "w");
    fputs("{\"dt\": -1}", f);
    fclose(f);
    assert_int_equal(trc_dataset_load(path, &ds), TRC_EFORMAT);
    assert_non_null(strstr(trc_errmsg(), "orig.json (sidecar of"));
    f = fopen(side, "w");
    fputs("{\"cost\": \"sum_u2_dt\", \"dtt\": 1}", f);
    fclose(f);
    assert_int_equal(trc_dataset_load(path, &ds), TRC_EFORMAT);
    assert_non_null(strstr(trc_errmsg(), "unknown key 'dtt'"));
    f = fopen(side, "w");
    fputs("{\"cost\": \"sum_u2_dt\"}", f);
    fclose(f);
    assert_int_equal(trc_dataset_load(path, &ds), TRC_EFORMAT);
    assert_non_null(strstr(trc_errmsg(), "needs the file's \"dt\""));
    remove(side);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_generate_min_energy),
        cmocka_unit_test(test_generate_lqr_and_errors),
        cmocka_unit_test(test_save_load_round_trip),
        cmocka_unit_test(test_cost_label),
        cmocka_unit_test(test_sidecar_and_cost_convention),
        cmocka_unit_test(test_load_numpy_f64),
        cmocka_unit_test(test_load_rejects),
        cmocka_unit_test(test_metadata_handling),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
