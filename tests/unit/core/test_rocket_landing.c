/* rocket_landing's own mathematics (systems/rocket_landing.c): the Jacobians of the RK4 step,
 * the smoothed |T| term of the mass flow included, against central differences (also near
 * T = 0, where the smoothing matters); the mass burnt per step, |T|_eps dt / (Isp g0); free
 * fall with zero thrust against the closed form; the per-component sampling box and fixed
 * target of dataset generation; the final error ignoring the free mass; the linear experts'
 * refusal; and the ilqr expert landing a few sampled cases by the original's definition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/eval.h"
#include "trc/expert.h"
#include "trc/rollout.h"
#include "trc/system.h"

#include "../common.h"

enum { S = 7, M = 3 };

static const trc_system *rocket(void) {
    const trc_system *sys = trc_system_find("rocket_landing");
    assert_non_null(sys);
    assert_int_equal(sys->s, S);
    assert_int_equal(sys->m, M);
    return sys;
}

static double param(const trc_system *sys, const char *name) {
    for (size_t k = 0; k < sys->nparams; k++)
        if (strcmp(sys->params[k].name, name) == 0)
            return sys->params[k].value;
    fail_msg("rocket_landing has no parameter %s", name);
    return NAN;
}

static void check_jacobian(const trc_system *sys, double *x, double *u) {
    double A[S * S], B[S * M];
    sys->jacobian(x, u, sys->dt, A, B);
    for (int c = 0; c < S + M; c++) {
        double *v = c < S ? &x[c] : &u[c - S], orig = *v, h = 1e-5 * fmax(1, fabs(orig));
        double xp[S], xm[S];
        *v = orig + h;
        sys->step(x, u, sys->dt, xp);
        *v = orig - h;
        sys->step(x, u, sys->dt, xm);
        *v = orig;
        for (int r = 0; r < S; r++) {
            double fd = (xp[r] - xm[r]) / (2 * h), an = c < S ? A[r * S + c] : B[r * M + c - S];
            if (fabs(fd - an) > 1e-7 * (1 + fabs(an)))
                fail_msg("d x+[%d] / d %s[%d]: %.12g analytic vs %.12g", r, c < S ? "x" : "u",
                         c < S ? c : c - S, an, fd);
        }
    }
}

static void test_jacobians(void **state) {
    (void)state;
    const trc_system *sys = rocket();
    double x[S] = {-800.0, 1200.0, 900.0, 12.0, -7.0, -25.0, 2100.0};
    double u[M] = {-4000.0, 9000.0, 14000.0};
    check_jacobian(sys, x, u);
    /* the mass column and the |T| row are not trivially zero: the test sees them */
    double A[S * S], B[S * M];
    sys->jacobian(x, u, sys->dt, A, B);
    assert_true(fabs(A[5 * S + 6]) > 1e-4); /* d vz+ / d m = -Tz dt / m^2 */
    assert_true(B[6 * M + 2] < -1e-5);      /* d m+ / d Tz = -Tz / (|T| Isp g0) dt */
    /* near zero thrust, where only the smoothing keeps |T| differentiable */
    double u0[M] = {0.3, -0.2, 0.5};
    check_jacobian(sys, x, u0);
    double uz[M] = {0.0, 0.0, 0.0};
    check_jacobian(sys, x, uz);
}

static void test_mass_flow(void **state) {
    (void)state;
    const trc_system *sys = rocket();
    const double isp = param(sys, "isp"), g0 = param(sys, "g0"), eps = param(sys, "thrust_eps");
    assert_true(isp == 200.7 && g0 == 9.81 && param(sys, "g") == 3.71 && eps <= 1.0);
    double x[S] = {0.0, 0.0, 1000.0, 0.0, 0.0, -10.0, 2000.0}, xn[S];
    const double u[M] = {3000.0, -4000.0, 12000.0}; /* |T| = 13,000 N */
    sys->step(x, u, sys->dt, xn);
    const double want = sqrt(13000.0 * 13000.0 + eps * eps) * sys->dt / (isp * g0);
    assert_true(fabs((x[6] - xn[6]) - want) < 1e-9 * want);
    /* the smoothing costs at most eps dt / (Isp g0) against the exact |T| */
    assert_true(fabs((x[6] - xn[6]) - 13000.0 * sys->dt / (isp * g0)) <=
                eps * sys->dt / (isp * g0));
    /* hovering thrust holds the altitude over one step only to O(dt^2 dm/m): sanity on signs */
    const double hover[M] = {0.0, 0.0, 2000.0 * 3.71};
    x[5] = 0.0;
    sys->step(x, hover, sys->dt, xn);
    assert_true(xn[6] < x[6] && xn[5] > 0.0 && xn[5] < 1e-2 && fabs(xn[2] - x[2]) < 1e-2);
}

static void test_free_fall(void **state) {
    (void)state;
    const trc_system *sys = rocket();
    const double g = param(sys, "g"), eps = param(sys, "thrust_eps");
    const double mdot = eps / (param(sys, "isp") * param(sys, "g0"));
    const int T = sys->T;
    const double x0[S] = {300.0, -200.0, 1400.0, 5.0, -3.0, -12.0, 1800.0};
    double *u = calloc((size_t)T * M, sizeof *u), *tr = malloc((size_t)(T + 1) * S * sizeof *tr);
    trc_system_rollout(sys, sys->dt, T, x0, u, tr);
    for (int t = 0; t <= T; t++) {
        const double tt = t * sys->dt, *x = tr + (size_t)t * S;
        const double want[S] = {x0[0] + x0[3] * tt,
                                x0[1] + x0[4] * tt,
                                x0[2] + x0[5] * tt - 0.5 * g * tt * tt,
                                x0[3],
                                x0[4],
                                x0[5] - g * tt,
                                x0[6] - mdot * tt};
        for (int k = 0; k < S; k++)
            if (fabs(x[k] - want[k]) > 1e-9 * (1 + fabs(want[k])))
                fail_msg("t=%d x[%d] = %.12g, closed form %.12g", t, k, x[k], want[k]);
    }
    free(u), free(tr);
}

/* Generation draws every component inside its own box, the target is the origin at rest with
 * the reference mass, the final error ignores the mass, and the linear experts refuse. */
static void test_boxes_and_error(void **state) {
    (void)state;
    const trc_system *sys = rocket();
    trc_gen_settings g;
    assert_int_equal(trc_gen_settings_default("rocket_landing", &g), 0);
    snprintf(g.expert, sizeof g.expert, "lqr_finite"); /* direct: quick and deterministic */
    trc_dataset ds;
    assert_int_equal(trc_dataset_generate(&g, 64, &ds), 0);
    for (size_t i = 0; i < ds.n; i++)
        for (int k = 0; k < S; k++) {
            const float v = ds.initial_states[i * S + k], t = ds.target_states[i * S + k];
            assert_true(v >= (float)sys->box_lo_k[k] && v <= (float)sys->box_hi_k[k]);
            assert_true(t == (float)sys->target_lo_k[k]);
        }
    assert_true(ds.target_states[6] > 0.0f && ds.target_states[2] == 0.0f);
    trc_dataset_free(&ds);

    /* the same final position and velocity with any mass: the same error */
    const float x0[S] = {0, 0, 0, 0, 0, 0, 1700}, tg[S] = {0, 0, 0, 0, 0, 0, 2000};
    const float tg2[S] = {0, 0, 0, 0, 0, 0, 900};
    float *u = calloc((size_t)sys->T * M, sizeof *u);
    double e1, e2, xf[S];
    trc_rollout_out o1 = {.final_error = &e1, .final_state = xf}, o2 = {.final_error = &e2};
    assert_int_equal(trc_rollout_score(sys, sys->dt, sys->T, 1, x0, tg, u, &o1), 0);
    assert_int_equal(trc_rollout_score(sys, sys->dt, sys->T, 1, x0, tg2, u, &o2), 0);
    assert_true(e1 == e2);
    const double dz = xf[2], dv = xf[5];
    assert_true(fabs(e1 - sqrt(dz * dz + dv * dv)) < 1e-9 * e1); /* free fall: only z, vz */
    free(u);

    for (size_t e = 0; e < trc_expert_count(); e++) {
        const trc_expert *ex = trc_expert_at(e);
        trc_expert_plan *plan = NULL;
        int rc = trc_expert_plan_create(ex->name, sys, sys->dt, sys->T, sys->bound, NULL, &plan);
        if (rc == TRC_OK) {
            trc_expert_plan_free(plan);
            continue;
        }
        assert_int_equal(rc, TRC_EUNSUPPORTED);
        assert_non_null(strstr(trc_errmsg(), "rocket_landing"));
        assert_non_null(strstr(trc_errmsg(), "linear"));
    }
}

/* The ilqr expert lands sampled cases by the original's definition at t = T (horizontal
 * error < 10 m, altitude < 1 m, speed < 5 m/s), with the mass above the dry mass. */
static void test_ilqr_lands(void **state) {
    (void)state;
    const trc_system *sys = rocket();
    trc_gen_settings g;
    assert_int_equal(trc_gen_settings_default("rocket_landing", &g), 0);
    snprintf(g.expert, sizeof g.expert, "ilqr");
    trc_dataset ds;
    const trc_gen_options opt = {.threads = 1, .keep_unconverged = 1};
    trc_gen_summary sum;
    assert_int_equal(trc_dataset_generate_with(&g, 24, &opt, &ds, &sum), 0);
    assert_int_equal(sum.unconverged, 0);
    const int T = ds.T;
    for (size_t i = 0; i < ds.n; i++) {
        const float *xT = ds.state_trajectories + (i * (size_t)(T + 1) + T) * S;
        assert_true(hypot(xT[0], xT[1]) < 10.0 && fabs(xT[2]) < 1.0);
        assert_true(sqrt(xT[3] * xT[3] + xT[4] * xT[4] + xT[5] * xT[5]) < 5.0);
        assert_true(xT[6] > param(sys, "dry_mass") && xT[6] < ds.initial_states[i * S + 6]);
        for (int k = 0; k < T * M; k++)
            assert_true(fabsf(ds.control_sequences[i * (size_t)T * M + k]) <= sys->bound);
    }
    trc_dataset_free(&ds);
}

/* A dataset of s = 7, m = 3 landings survives save/load bit for bit; replaying its controls is
 * deterministic; evaluation's task metrics are the original's landing and the fuel burnt. */
static void test_dataset_round_trip_and_metrics(void **state) {
    (void)state;
    const trc_system *sys = rocket();
    assert_int_equal(test_tmpdir_make("rocket"), 0);
    trc_gen_settings g;
    assert_int_equal(trc_gen_settings_default("rocket_landing", &g), 0);
    snprintf(g.expert, sizeof g.expert, "ilqr");
    enum { N = 6 };
    trc_dataset d, back;
    assert_int_equal(trc_dataset_generate(&g, N, &d), 0);
    const int T = d.T;
    const size_t U = (size_t)T * M;
    assert_int_equal(trc_dataset_save(test_tmp_path("r.npz"), &d), 0);
    assert_int_equal(trc_dataset_load(test_tmp_path("r.npz"), &back), 0);
    assert_true(back.s == S && back.m == M && back.T == T && back.n == N);
    assert_memory_equal(back.initial_states, d.initial_states, N * S * sizeof(float));
    assert_memory_equal(back.target_states, d.target_states, N * S * sizeof(float));
    assert_memory_equal(back.control_sequences, d.control_sequences, N * U * sizeof(float));
    assert_memory_equal(back.state_trajectories, d.state_trajectories,
                        N * (size_t)(T + 1) * S * sizeof(float));
    assert_string_equal(back.settings.system, "rocket_landing");
    assert_string_equal(back.settings.expert, "ilqr");

    double *t1 = malloc(N * (size_t)(T + 1) * S * sizeof *t1);
    double *t2 = malloc(N * (size_t)(T + 1) * S * sizeof *t2);
    assert_non_null(t1 && t2);
    trc_rollout_out o1 = {.traj_d = t1}, o2 = {.traj_d = t2};
    assert_int_equal(trc_rollout_score(sys, sys->dt, T, N, back.initial_states, back.target_states,
                                       back.control_sequences, &o1),
                     0);
    assert_int_equal(trc_rollout_score(sys, sys->dt, T, N, back.initial_states, back.target_states,
                                       back.control_sequences, &o2),
                     0);
    assert_memory_equal(t1, t2, N * (size_t)(T + 1) * S * sizeof *t1);

    trc_eval_stats st;
    assert_int_equal(trc_eval_controls(sys, sys->dt, T, N, back.initial_states, back.target_states,
                                       back.control_sequences, 1.0, &st, NULL),
                     0);
    assert_int_equal(st.nmetrics, 6);
    assert_string_equal(st.metric_names[0], "landed");
    assert_true(st.metric_mean[0] == 1.0); /* every expert landing lands */
    double fuel = 0, h = 0;
    for (int i = 0; i < N; i++) {
        const double *xT = t1 + ((size_t)i * (T + 1) + T) * S;
        fuel += (back.initial_states[i * S + 6] - xT[6]) / N;
        h += hypot(xT[0], xT[1]) / N;
    }
    assert_string_equal(st.metric_names[5], "fuel_kg");
    assert_true(fabs(st.metric_mean[5] - fuel) < 1e-9 * fuel && fuel > 50);
    assert_true(fabs(st.metric_mean[1] - h) < 1e-12 + 1e-9 * h);
    /* a sequence that does nothing falls: not landed, no fuel but the smoothing's */
    float *zero = calloc(N * U, sizeof *zero);
    assert_non_null(zero);
    assert_int_equal(trc_eval_controls(sys, sys->dt, T, N, back.initial_states, back.target_states,
                                       zero, 1.0, &st, NULL),
                     0);
    assert_true(st.metric_mean[0] == 0.0 && st.metric_mean[5] < 0.05);
    free(zero), free(t1), free(t2);
    trc_dataset_free(&back);
    trc_dataset_free(&d);
    assert_int_equal(test_rm_rf(test_tmpdir), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jacobians),  cmocka_unit_test(test_mass_flow),
        cmocka_unit_test(test_free_fall),  cmocka_unit_test(test_boxes_and_error),
        cmocka_unit_test(test_ilqr_lands), cmocka_unit_test(test_dataset_round_trip_and_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
