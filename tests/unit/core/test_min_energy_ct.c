/* min_energy_ct against independent mathematics. On the double integrator the continuous-time
 * minimum-energy control is affine, u(t) = c1 + c2 t, with (c1, c2) fixed by the two terminal
 * conditions (solved here by hand); the expert must hold its midpoint values, and held through
 * the exact discrete dynamics they land with zero velocity error and a position error of
 * exactly c2 T dt^3 / 12 (the midpoint rule's error on each interval, summed). The original
 * project's later version generates its data this way at dt = 0.33. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "trc/error.h"
#include "trc/expert.h"
#include "trc/rng.h"
#include "trc/system.h"

/* (c1, c2) of u(t) = c1 + c2 t taking (p0, v0) to (pT, vT) in time tf:
 *   c1 tf + c2 tf^2/2 = vT - v0,   c1 tf^2/2 + c2 tf^3/6 = pT - p0 - v0 tf. */
static void affine_optimum(const double *x0, const double *xT, double tf, double *c1, double *c2) {
    double a = tf, b = tf * tf / 2, c = tf * tf / 2, d = tf * tf * tf / 6;
    double r1 = xT[1] - x0[1], r2 = xT[0] - x0[0] - x0[1] * tf;
    double det = a * d - b * c;
    *c1 = (r1 * d - b * r2) / det;
    *c2 = (a * r2 - c * r1) / det;
}

static void check_dt(double dt, int T) {
    const trc_system *sys = trc_system_find("double_integrator");
    trc_expert_plan *plan = NULL;
    assert_int_equal(trc_expert_plan_create("min_energy_ct", sys, dt, T, 1e6, NULL, &plan), 0);
    trc_rng rng;
    trc_rng_seed(&rng, 7);
    double u[200], x[2], xn[2];
    for (int trial = 0; trial < 50; trial++) {
        double x0[2], xT[2];
        for (int i = 0; i < 2; i++) {
            x0[i] = 4 * trc_rng_uniform(&rng) - 2;
            xT[i] = 4 * trc_rng_uniform(&rng) - 2;
        }
        trc_expert_cost cost;
        assert_int_equal(trc_expert_solve(plan, x0, xT, u, &cost), 0);
        double c1, c2, effort = 0;
        affine_optimum(x0, xT, T * dt, &c1, &c2);
        for (int k = 0; k < T; k++) {
            double want = c1 + c2 * (k + 0.5) * dt;
            assert_true(fabs(u[k] - want) <= 1e-9 * (1 + fabs(want)));
            effort += u[k] * u[k];
        }
        assert_true(fabs(cost.effort - effort) <= 1e-9 * effort);
        memcpy(x, x0, sizeof x);
        for (int k = 0; k < T; k++) {
            sys->step(x, &u[k], dt, xn);
            memcpy(x, xn, sizeof x);
        }
        double dv = x[1] - xT[1], dp = x[0] - xT[0], want = c2 * T * dt * dt * dt / 12;
        assert_true(fabs(dv) <= 1e-10);
        assert_true(fabs(dp - want) <= 1e-9 * (1 + fabs(want)));
    }
    trc_expert_plan_free(plan);
}

/* The original's dt and ours. */
static void test_midpoint_samples_and_residual(void **state) {
    (void)state;
    check_dt(0.33, 15);
    check_dt(5.0 / 15.0, 15);
    check_dt(0.1, 50);
}

static void test_only_for_continuous_time_linear_systems(void **state) {
    (void)state;
    const trc_system *vdp = trc_system_find("van_der_pol");
    assert_non_null(vdp);
    trc_expert_plan *plan = NULL;
    assert_int_not_equal(
        trc_expert_plan_create("min_energy_ct", vdp, vdp->dt, vdp->T, vdp->bound, NULL, &plan), 0);
    assert_null(plan);
    assert_non_null(strstr(trc_errmsg(), "nonlinear"));
    assert_non_null(trc_expert_find("min_energy_ct"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_midpoint_samples_and_residual),
        cmocka_unit_test(test_only_for_continuous_time_linear_systems),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
