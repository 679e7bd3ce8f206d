/* Tests of trc/polish.h, the one polish of `trc compare --polish` and trcd's /v1/control:
 *  - validation: an unknown expert, an expert that cannot start from a guess, a system without
 *    Jacobians, an iteration budget out of range, each with its own status and message;
 *  - on Van der Pol: the cost never rises (after <= before), the budget bounds the iterations,
 *    more iterations never end higher, the cost before is J at the guess (the cold optimum as a
 *    guess gives the cold optimum's J back), a guess beyond the bound is clipped first, and a
 *    nearby guess reaches the cold optimum in fewer iterations than the cold start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "trc/error.h"
#include "trc/expert.h"
#include "trc/polish.h"
#include "trc/system.h"

#include "../common.h"

#define TMAX 100

static void test_check(void **state) {
    (void)state;
    const trc_system *vdp = trc_system_find("van_der_pol");
    assert_int_equal(trc_polish_check("ilqr", vdp), TRC_OK);
    assert_int_equal(trc_polish_check("ilqr", NULL), TRC_OK);
    assert_int_equal(trc_polish_check("nope", vdp), TRC_ENOTFOUND);
    assert_non_null(strstr(trc_errmsg(), "unknown expert 'nope'"));
    assert_int_equal(trc_polish_check("lqr_finite", vdp), TRC_EUNSUPPORTED);
    assert_non_null(strstr(trc_errmsg(), "cannot start from a guess"));
    trc_system nojac = *vdp; /* the same system without Jacobians */
    nojac.jacobian = NULL;
    assert_int_equal(trc_polish_check("ilqr", &nojac), TRC_EUNSUPPORTED);
    assert_non_null(strstr(trc_errmsg(), "Jacobians"));
    trc_expert_plan *p = (trc_expert_plan *)1;
    assert_int_equal(
        trc_polish_plan_create("ilqr", &nojac, vdp->dt, vdp->T, vdp->bound, NULL, 5, &p),
        TRC_EUNSUPPORTED);
    assert_null(p);
    const int bad[2] = {0, TRC_POLISH_MAX_ITERS + 1};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(
            trc_polish_plan_create("ilqr", vdp, vdp->dt, vdp->T, vdp->bound, NULL, bad[i], &p),
            TRC_EINVAL);
        assert_non_null(strstr(trc_errmsg(), "max_iters"));
        assert_null(p);
    }
}

static void test_van_der_pol(void **state) {
    (void)state;
    const trc_system *sys = trc_system_find("van_der_pol");
    assert_true(sys->T * sys->m <= TMAX);
    const int U = sys->T * sys->m;
    trc_expert_plan *cold = NULL, *p[4] = {NULL};
    const int budget[4] = {1, 2, 5, 100};
    assert_int_equal(trc_expert_plan_create("ilqr", sys, sys->dt, sys->T, sys->bound, NULL, &cold),
                     0);
    for (int b = 0; b < 4; b++)
        assert_int_equal(trc_polish_plan_create("ilqr", sys, sys->dt, sys->T, sys->bound, NULL,
                                                budget[b], &p[b]),
                         0);
    double x0[2] = {1.7, -0.4}, xt[2] = {0, 0}, opt[TMAX], guess[TMAX], u[TMAX];
    trc_expert_cost c;
    assert_int_equal(trc_expert_solve(cold, x0, xt, opt, &c), 0);

    /* a rough guess: the cost falls, within the budget, and more iterations never end higher */
    for (int t = 0; t < U; t++)
        guess[t] = 0.5 * sin(0.2 * t);
    trc_polish_result r[4];
    for (int b = 0; b < 4; b++) {
        assert_int_equal(trc_polish_run(p[b], x0, xt, guess, u, &r[b]), 0);
        assert_true(r[b].iterations >= 1 && r[b].iterations <= budget[b]);
        assert_true(r[b].cost_after <= r[b].cost_before);
        assert_true(r[b].ms >= 0.0);
        for (int t = 0; t < U; t++)
            assert_true(fabs(u[t]) <= sys->bound);
        if (b) {
            assert_true(r[b].cost_after <= r[b - 1].cost_after);
            assert_true(r[b].cost_before == r[0].cost_before);
        }
    }
    assert_true(r[0].cost_after < r[0].cost_before); /* one step of a rough guess helps */

    /* the cold optimum as the guess: J before is its J, and it stays there */
    assert_int_equal(trc_polish_run(p[3], x0, xt, opt, u, &r[0]), 0);
    assert_true(fabs(r[0].cost_before - c.objective) <= 1e-12 * c.objective);
    assert_true(r[0].cost_after <= r[0].cost_before);

    /* a guess beyond the bound starts from its clipped self */
    double over[TMAX], clip[TMAX];
    for (int t = 0; t < U; t++) {
        over[t] = (t % 2 ? 10.0 : -10.0) * sys->bound;
        clip[t] = (t % 2 ? 1.0 : -1.0) * sys->bound;
    }
    trc_polish_result ro, rc;
    assert_int_equal(trc_polish_run(p[0], x0, xt, over, u, &ro), 0);
    assert_int_equal(trc_polish_run(p[0], x0, xt, clip, u, &rc), 0);
    assert_true(ro.cost_before == rc.cost_before);

    /* a nearby guess (the optimum, perturbed) reaches the optimum in fewer iterations */
    for (int t = 0; t < U; t++)
        guess[t] = opt[t] + 0.05 * sin(0.3 * t);
    assert_int_equal(trc_polish_run(p[3], x0, xt, guess, u, &r[0]), 0);
    assert_true(r[0].converged);
    assert_true(fabs(r[0].cost_after - c.objective) <= 1e-6 * c.objective);
    assert_true(r[0].iterations < c.iterations);

    trc_expert_plan_free(cold);
    for (int b = 0; b < 4; b++)
        trc_expert_plan_free(p[b]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_van_der_pol),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
