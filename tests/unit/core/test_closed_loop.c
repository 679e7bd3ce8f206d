/* Tests of closed-loop evaluation (trc_eval_closed_loop): a policy that replays a fixed
 * sequence reproduces open-loop evaluation exactly; process noise is deterministic in its seed;
 * under noise a feedback policy (lqr_finite re-solved from the current state) ends closer to the
 * target than the same expert's open-loop sequence under the same noise; bad input. */
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
#include "trc/system.h"

typedef struct replay {
    const float *u;
    int T, m, t;
} replay;

static int replay_policy(void *user, size_t n, const float *x, const float *target, int steps_left,
                         float *u) {
    (void)x;
    (void)target;
    replay *r = user;
    if (steps_left != r->T - r->t) /* told the steps left of every step */
        return trc_fail(TRC_EINVAL, "steps left %d at step %d of %d", steps_left, r->t, r->T);
    const size_t U = (size_t)r->T * r->m;
    for (size_t i = 0; i < n; i++) {
        memset(u + i * U, 0, U * sizeof *u);
        memcpy(u + i * U, r->u + i * U + (size_t)r->t * r->m, (size_t)r->m * sizeof *u);
    }
    r->t++;
    return TRC_OK;
}

/* The expert re-solved from every current state (receding horizon of T steps). */
typedef struct expert_policy {
    const trc_expert_plan *plan;
    int s, T, m;
} expert_policy;

static int expert_policy_fn(void *user, size_t n, const float *x, const float *target,
                            int steps_left, float *u) {
    (void)steps_left; /* receding: a whole horizon again */
    expert_policy *e = user;
    double xd[TRC_SYSTEM_MAX_S], td[TRC_SYSTEM_MAX_S], ud[1000];
    for (size_t i = 0; i < n; i++) {
        for (int r = 0; r < e->s; r++)
            xd[r] = x[i * e->s + r], td[r] = target[i * e->s + r];
        int rc = trc_expert_solve(e->plan, xd, td, ud, NULL);
        if (rc)
            return rc;
        for (int k = 0; k < e->T * e->m; k++)
            u[i * (size_t)e->T * e->m + k] = (float)ud[k];
    }
    return TRC_OK;
}

/* The expert re-solved from every current state for the steps left (shrinking horizon). */
typedef struct shrinking_policy {
    const trc_system *sys;
    const char *expert;
    double dt, bound;
    int s, T, m;
} shrinking_policy;

static int shrinking_policy_fn(void *user, size_t n, const float *x, const float *target,
                               int steps_left, float *u) {
    const shrinking_policy *e = user;
    double xd[TRC_SYSTEM_MAX_S], td[TRC_SYSTEM_MAX_S], ud[1000];
    trc_expert_plan *plan = NULL;
    int rc = trc_expert_plan_create(e->expert, e->sys, e->dt, steps_left, e->bound, NULL, &plan);
    for (size_t i = 0; !rc && i < n; i++) {
        for (int r = 0; r < e->s; r++)
            xd[r] = x[i * e->s + r], td[r] = target[i * e->s + r];
        rc = trc_expert_solve(plan, xd, td, ud, NULL);
        for (int k = 0; !rc && k < e->T * e->m; k++) /* the steps left, then zeros */
            u[i * (size_t)e->T * e->m + k] = k < steps_left * e->m ? (float)ud[k] : 0.0f;
    }
    trc_expert_plan_free(plan);
    return rc;
}

static int failing_policy(void *user, size_t n, const float *x, const float *target, int steps_left,
                          float *u) {
    (void)user, (void)n, (void)x, (void)target, (void)steps_left, (void)u;
    return trc_fail(TRC_ENUMERIC, "policy gave up");
}

static void test_replay_equals_open_loop(void **state) {
    (void)state;
    trc_gen_settings g;
    trc_gen_settings_default("van_der_pol", &g);
    snprintf(g.expert, sizeof g.expert, "lqr_finite");
    trc_dataset ds;
    assert_int_equal(trc_dataset_generate(&g, 25, &ds), 0);
    const trc_system *sys = trc_system_find("van_der_pol");
    trc_eval_stats open, closed;
    float fe_open[25], fe_closed[25], *applied = malloc(sizeof(float) * 25 * 100);
    assert_int_equal(trc_eval_controls(sys, g.dt, g.T, 25, ds.initial_states, ds.target_states,
                                       ds.control_sequences, 0.2, &open, fe_open),
                     0);
    replay r = {ds.control_sequences, g.T, 1, 0};
    const trc_eval_loop loop = {replay_policy, &r, 0.0, 1};
    assert_int_equal(trc_eval_closed_loop(sys, g.dt, g.T, 25, ds.initial_states, ds.target_states,
                                          &loop, 0.2, &closed, applied, fe_closed),
                     0);
    assert_int_equal(r.t, g.T); /* one policy call per step */
    assert_memory_equal(applied, ds.control_sequences, sizeof(float) * 25 * 100);
    assert_memory_equal(fe_open, fe_closed, sizeof fe_open);
    assert_true(open.err_mean == closed.err_mean && open.cost_mean == closed.cost_mean);
    assert_true(open.successes == closed.successes && closed.successes == 25);
    free(applied);
    trc_dataset_free(&ds);
}

/* Bellman's principle, the ground of trc_dataset_add_tails: the expert re-solved for the steps
 * left from each state of its own solution applies that solution again, so the shrinking closed
 * loop lands where the open loop does (double integrator, finite-horizon LQR, whose costs do not
 * depend on the step: exact up to the float32 rounding of the states it is given). */
static void test_shrinking_horizon_replays_the_optimum(void **state) {
    (void)state;
    trc_gen_settings g;
    trc_gen_settings_default("double_integrator", &g);
    snprintf(g.expert, sizeof g.expert, "lqr_finite");
    const size_t n = 8;
    trc_dataset ds;
    assert_int_equal(trc_dataset_generate(&g, n, &ds), 0);
    const trc_system *sys = trc_system_find("double_integrator");
    shrinking_policy sp = {sys, g.expert, g.dt, g.bound, 2, g.T, 1};
    const trc_eval_loop loop = {shrinking_policy_fn, &sp, 0.0, 1};
    float *applied = malloc(sizeof(float) * n * (size_t)g.T);
    trc_eval_stats st;
    int rc = trc_eval_closed_loop(sys, g.dt, g.T, n, ds.initial_states, ds.target_states, &loop,
                                  0.1, &st, applied, NULL);
    assert_int_equal(rc, 0);
    for (size_t k = 0; k < n * (size_t)g.T; k++)
        assert_true(fabsf(applied[k] - ds.control_sequences[k]) <=
                    1e-4f * (1.0f + fabsf(ds.control_sequences[k])));
    assert_int_equal(st.successes, n);
    free(applied);
    trc_dataset_free(&ds);
}

static void test_noise_and_feedback(void **state) {
    (void)state;
    trc_gen_settings g;
    trc_gen_settings_default("van_der_pol", &g);
    snprintf(g.expert, sizeof g.expert, "lqr_finite");
    const size_t n = 20;
    trc_dataset ds;
    assert_int_equal(trc_dataset_generate(&g, n, &ds), 0);
    const trc_system *sys = trc_system_find("van_der_pol");
    trc_expert_plan *plan;
    assert_int_equal(trc_expert_plan_create("lqr_finite", sys, g.dt, g.T, g.bound, NULL, &plan), 0);
    expert_policy ep = {plan, 2, g.T, 1};
    const double sigma = 0.05;
    trc_eval_stats fb, fb2, fb3, ol;
    trc_eval_loop loop = {expert_policy_fn, &ep, sigma, 11};
    assert_int_equal(trc_eval_closed_loop(sys, g.dt, g.T, n, ds.initial_states, ds.target_states,
                                          &loop, 0.2, &fb, NULL, NULL),
                     0);
    assert_int_equal(trc_eval_closed_loop(sys, g.dt, g.T, n, ds.initial_states, ds.target_states,
                                          &loop, 0.2, &fb2, NULL, NULL),
                     0);
    assert_true(fb.err_mean == fb2.err_mean && fb.cost_mean == fb2.cost_mean); /* seeded */
    loop.noise_seed = 12;
    assert_int_equal(trc_eval_closed_loop(sys, g.dt, g.T, n, ds.initial_states, ds.target_states,
                                          &loop, 0.2, &fb3, NULL, NULL),
                     0);
    assert_true(fb3.err_mean != fb.err_mean);
    /* the same noise on the open-loop sequence: it drifts, feedback corrects */
    replay r = {ds.control_sequences, g.T, 1, 0};
    const trc_eval_loop open = {replay_policy, &r, sigma, 11};
    assert_int_equal(trc_eval_closed_loop(sys, g.dt, g.T, n, ds.initial_states, ds.target_states,
                                          &open, 0.2, &ol, NULL, NULL),
                     0);
    assert_true(fb.err_mean < 0.5 * ol.err_mean);
    /* bad input */
    loop.noise_sigma = -1;
    assert_int_equal(trc_eval_closed_loop(sys, g.dt, g.T, n, ds.initial_states, ds.target_states,
                                          &loop, 0.2, &fb, NULL, NULL),
                     TRC_EINVAL);
    const trc_eval_loop bad = {failing_policy, NULL, 0, 0};
    assert_int_equal(trc_eval_closed_loop(sys, g.dt, g.T, n, ds.initial_states, ds.target_states,
                                          &bad, 0.2, &fb, NULL, NULL),
                     TRC_ENUMERIC);
    assert_non_null(strstr(trc_errmsg(), "policy gave up"));
    assert_int_equal(trc_eval_closed_loop(sys, g.dt, g.T, n, ds.initial_states, ds.target_states,
                                          NULL, 0.2, &fb, NULL, NULL),
                     TRC_EINVAL);
    trc_expert_plan_free(plan);
    trc_dataset_free(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_equals_open_loop),
        cmocka_unit_test(test_noise_and_feedback),
        cmocka_unit_test(test_shrinking_horizon_replays_the_optimum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
