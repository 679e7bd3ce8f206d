/* Tests of the iLQR expert and the linearised LQR against independent mathematics:
 *  - on the double integrator with a quadratic cost and no active bound, ilqr equals the
 *    lqr_finite expert (an independent Riccati implementation) to 1e-8, and one Newton step
 *    from u = 0 is already exact;
 *  - on Van der Pol, at every converged solution the projected gradient of J, computed here
 *    by an adjoint pass written in this file (itself checked against finite differences of
 *    J), is below 1e-6 relative, and J is never above the LQR feedback rollout's J;
 *  - lqr_finite on Van der Pol equals a Riccati recursion on the Euler linearisation at the
 *    origin written out here (the original project's construction);
 *  - a two-control system exercises the box QP with several controls;
 *  - determinism (bit-identical answers, datasets independent of the thread count) and bad
 *    input (R not positive definite, negative Q or Qf, a system without Jacobians). */
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
#include "trc/expert.h"
#include "trc/ilqr.h"
#include "trc/rng.h"
#include "trc/system.h"

#include "../common.h"

#define NS 4 /* largest s in these tests */
#define NM 2
#define TMAX 100

/* ---- independent cost and adjoint gradient (only sys->step and sys->jacobian are shared) ----
 */

typedef struct problem {
    const trc_system *sys;
    double dt, bound;
    int T;
    double Q[NS * NS], R[NM * NM], Qf[NS * NS];
} problem;

static double qform(int n, const double *M, const double *e) {
    double v = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            v += e[i] * M[i * n + j] * e[j];
    return v;
}

static double cost_of(const problem *p, const double *x0, const double *xt, const double *u) {
    const int s = p->sys->s, m = p->sys->m;
    double x[NS], xn[NS], e[NS], J = 0;
    memcpy(x, x0, sizeof(double) * s);
    for (int t = 0; t < p->T; t++) {
        for (int i = 0; i < s; i++)
            e[i] = x[i] - xt[i];
        J += qform(s, p->Q, e) + qform(m, p->R, u + t * m);
        p->sys->step(x, u + t * m, p->dt, xn);
        memcpy(x, xn, sizeof(double) * s);
    }
    for (int i = 0; i < s; i++)
        e[i] = x[i] - xt[i];
    return J + qform(s, p->Qf, e);
}

/* g = dJ/du by the discrete adjoint; returns J. */
static double adjoint_gradient(const problem *p, const double *x0, const double *xt,
                               const double *u, double *g) {
    const int s = p->sys->s, m = p->sys->m, T = p->T;
    double X[(TMAX + 1) * NS], lam[NS], nl[NS], A[NS * NS], B[NS * NM];
    memcpy(X, x0, sizeof(double) * s);
    for (int t = 0; t < T; t++)
        p->sys->step(X + t * s, u + t * m, p->dt, X + (t + 1) * s);
    for (int i = 0; i < s; i++) {
        lam[i] = 0;
        for (int j = 0; j < s; j++)
            lam[i] += (p->Qf[i * s + j] + p->Qf[j * s + i]) * (X[T * s + j] - xt[j]);
    }
    for (int t = T - 1; t >= 0; t--) {
        p->sys->jacobian(X + t * s, u + t * m, p->dt, A, B);
        for (int q = 0; q < m; q++) {
            double v = 0;
            for (int r = 0; r < m; r++)
                v += (p->R[q * m + r] + p->R[r * m + q]) * u[t * m + r];
            for (int i = 0; i < s; i++)
                v += B[i * m + q] * lam[i];
            g[t * m + q] = v;
        }
        for (int i = 0; i < s; i++) {
            double v = 0;
            for (int j = 0; j < s; j++)
                v += (p->Q[i * s + j] + p->Q[j * s + i]) * (X[t * s + j] - xt[j]) +
                     A[j * s + i] * lam[j];
            nl[i] = v;
        }
        memcpy(lam, nl, sizeof(double) * s);
    }
    return cost_of(p, x0, xt, u);
}

/* max_i |u_i - clip(u_i - g_i)| / (1 + J): zero exactly at a KKT point of the box problem. */
static double projected_gradient(const problem *p, const double *x0, const double *xt,
                                 const double *u) {
    double g[TMAX * NM];
    double J = adjoint_gradient(p, x0, xt, u, g), pg = 0;
    for (int i = 0; i < p->T * p->sys->m; i++) {
        double v = u[i] - g[i];
        v = v > p->bound ? p->bound : (v < -p->bound ? -p->bound : v);
        pg = fmax(pg, fabs(u[i] - v));
    }
    return pg / (1 + fabs(J));
}

static trc_ilqr *make_plan(const problem *p, const trc_ilqr_options *o) {
    trc_ilqr_problem pb = {p->sys, p->dt, p->T, p->bound, p->Q, p->R, p->Qf};
    trc_ilqr *plan = NULL;
    int rc = trc_ilqr_create(&pb, o, &plan);
    if (rc)
        fail_msg("trc_ilqr_create: %s", trc_errmsg());
    return plan;
}

static problem vdp_problem(void) {
    const trc_system *sys = trc_system_find("van_der_pol");
    problem p = {.sys = sys, .dt = sys->dt, .bound = sys->bound, .T = sys->T};
    p.Q[0] = 10, p.Q[3] = 5;
    p.R[0] = 0.1;
    p.Qf[0] = 200, p.Qf[3] = 100;
    return p;
}

/* ---- the adjoint of this file is right: central differences of J ---- */

static void test_adjoint_matches_finite_differences(void **state) {
    (void)state;
    problem p = vdp_problem();
    double x0[2] = {1.3, -0.8}, xt[2] = {0, 0}, u[TMAX], g[TMAX];
    for (int t = 0; t < p.T; t++)
        u[t] = 1.5 * sin(0.17 * t);
    adjoint_gradient(&p, x0, xt, u, g);
    const int idx[5] = {0, 17, 50, 88, 99};
    for (int k = 0; k < 5; k++) {
        const double h = 1e-6, u0 = u[idx[k]];
        u[idx[k]] = u0 + h;
        double Jp = cost_of(&p, x0, xt, u);
        u[idx[k]] = u0 - h;
        double Jm = cost_of(&p, x0, xt, u);
        u[idx[k]] = u0;
        double fd = (Jp - Jm) / (2 * h);
        if (fabs(fd - g[idx[k]]) > 1e-6 * (1 + fabs(fd)))
            fail_msg("dJ/du[%d]: adjoint %.12g, finite differences %.12g", idx[k], g[idx[k]], fd);
    }
}

/* ---- double integrator: ilqr = lqr_finite when no bound is active ---- */

static void test_double_integrator_equals_lqr_finite(void **state) {
    (void)state;
    const trc_system *di = trc_system_find("double_integrator");
    const double big = 1e9; /* no active bound: the unconstrained LQ problem */
    trc_expert_plan *lqr = NULL, *il = NULL;
    assert_int_equal(trc_expert_plan_create("lqr_finite", di, di->dt, di->T, big, NULL, &lqr), 0);
    assert_int_equal(trc_expert_plan_create("ilqr", di, di->dt, di->T, big, NULL, &il), 0);
    /* the same problem straight through ilqr.h, from u = 0 only: one Newton step is exact */
    problem p = {.sys = di, .dt = di->dt, .bound = big, .T = di->T};
    p.Q[0] = p.Q[3] = 1, p.R[0] = 0.1, p.Qf[0] = p.Qf[3] = 100;
    trc_ilqr_options o;
    trc_ilqr_options_default(&o);
    o.starts = TRC_ILQR_START_ZERO;
    trc_ilqr *zero = make_plan(&p, &o);
    trc_ilqr_work *w = trc_ilqr_work_create(zero);
    trc_rng rng;
    trc_rng_seed(&rng, 7);
    for (int k = 0; k < 40; k++) {
        double x0[2], xt[2], ul[15], ui[15], uz[15];
        for (int i = 0; i < 2; i++)
            x0[i] = trc_rng_range(&rng, -2, 2);
        for (int i = 0; i < 2; i++)
            xt[i] = trc_rng_range(&rng, -2, 2);
        trc_expert_cost cl, ci;
        assert_int_equal(trc_expert_solve(lqr, x0, xt, ul, &cl), 0);
        assert_int_equal(trc_expert_solve(il, x0, xt, ui, &ci), 0);
        trc_ilqr_result r;
        assert_int_equal(trc_ilqr_solve(zero, w, x0, xt, NULL, uz, &r), 0);
        double scale = 0;
        for (int t = 0; t < 15; t++)
            scale = fmax(scale, fabs(ul[t]));
        for (int t = 0; t < 15; t++) {
            if (fabs(ui[t] - ul[t]) > 1e-8 * (1 + scale))
                fail_msg("sample %d step %d: ilqr %.15g vs lqr_finite %.15g", k, t, ui[t], ul[t]);
            if (fabs(uz[t] - ul[t]) > 1e-8 * (1 + scale))
                fail_msg("sample %d step %d: one Newton step %.15g vs lqr_finite %.15g", k, t,
                         uz[t], ul[t]);
        }
        assert_true(fabs(ci.objective - cl.objective) <= 1e-10 * (1 + cl.objective));
        assert_true(ci.converged && r.converged);
        assert_int_equal(r.iterations, 1);
        assert_true(projected_gradient(&p, x0, xt, uz) <= 1e-9);
    }
    trc_ilqr_work_free(w);
    trc_ilqr_free(zero);
    trc_expert_plan_free(lqr);
    trc_expert_plan_free(il);
}

/* ---- Van der Pol: first-order optimality and never worse than the LQR feedback ---- */

static void test_van_der_pol_optimality(void **state) {
    (void)state;
    const trc_system *sys = trc_system_find("van_der_pol");
    problem p = vdp_problem();
    trc_expert_plan *il = NULL, *lq = NULL;
    assert_int_equal(trc_expert_plan_create("ilqr", sys, sys->dt, sys->T, sys->bound, NULL, &il),
                     0);
    assert_int_equal(
        trc_expert_plan_create("lqr_finite", sys, sys->dt, sys->T, sys->bound, NULL, &lq), 0);
    trc_rng rng;
    trc_rng_seed(&rng, 2024);
    int converged = 0, active = 0;
    const int n = 60;
    for (int k = 0; k < n; k++) {
        double x0[2] = {trc_rng_range(&rng, -2, 2), trc_rng_range(&rng, -2, 2)}, xt[2] = {0, 0};
        if (k == n - 1) /* another target: the problem is "reach x* at T" */
            xt[0] = 0.5, xt[1] = -0.3;
        double u[TMAX], ul[TMAX];
        trc_expert_cost c, cl;
        assert_int_equal(trc_expert_solve(il, x0, xt, u, &c), 0);
        assert_int_equal(trc_expert_solve(lq, x0, xt, ul, &cl), 0);
        double J = cost_of(&p, x0, xt, u), Jl = cost_of(&p, x0, xt, ul);
        assert_true(fabs(J - c.objective) <= 1e-9 * J); /* the reported cost is J */
        if (J > Jl * (1 + 1e-12))
            fail_msg("sample %d: ilqr J %.12g above the LQR rollout's %.12g", k, J, Jl);
        for (int t = 0; t < p.T; t++) {
            assert_true(fabs(u[t]) <= p.bound);
            active += fabs(u[t]) == p.bound;
        }
        if (!c.converged)
            continue;
        converged++;
        double pg = projected_gradient(&p, x0, xt, u);
        if (!(pg <= 1e-6))
            fail_msg("sample %d: relative projected gradient %.3g at a converged solution", k, pg);
    }
    assert_true(converged >= n - 1); /* every one in practice; the bench counts 10,000 */
    assert_true(active > 0);         /* the bound is active: this exercises the box QP */
    trc_expert_plan_free(il);
    trc_expert_plan_free(lq);
}

/* ---- lqr_finite on Van der Pol = Riccati on the Euler linearisation at the origin ---- */

static void test_lqr_finite_van_der_pol_is_euler_lqr(void **state) {
    (void)state;
    const trc_system *sys = trc_system_find("van_der_pol");
    const double dt = sys->dt, mu = 1.0;
    const int T = sys->T;
    /* A = I + dt [[0, 1], [-1, mu]], B = dt [0, 1]'; Q = diag(10, 5), R = 0.1, Qf = 20 Q */
    const double A[4] = {1, dt, -dt, 1 + mu * dt}, B[2] = {0, dt};
    const double Q[4] = {10, 0, 0, 5}, R = 0.1;
    double P[4] = {200, 0, 0, 100}, K[TMAX][2];
    for (int t = T - 1; t >= 0; t--) {
        double PB[2] = {P[0] * B[0] + P[1] * B[1], P[2] * B[0] + P[3] * B[1]};
        double S = R + B[0] * PB[0] + B[1] * PB[1];
        double BPA[2] = {PB[0] * A[0] + PB[1] * A[2], PB[0] * A[1] + PB[1] * A[3]};
        K[t][0] = BPA[0] / S, K[t][1] = BPA[1] / S;
        double Acl[4] = {A[0] - B[0] * K[t][0], A[1] - B[0] * K[t][1], A[2] - B[1] * K[t][0],
                         A[3] - B[1] * K[t][1]};
        double PAcl[4], Pn[4];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
                PAcl[i * 2 + j] = P[i * 2] * Acl[j] + P[i * 2 + 1] * Acl[2 + j];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++)
                Pn[i * 2 + j] = Q[i * 2 + j] + A[i] * PAcl[j] + A[2 + i] * PAcl[2 + j];
        P[0] = Pn[0], P[3] = Pn[3], P[1] = P[2] = 0.5 * (Pn[1] + Pn[2]);
    }
    trc_expert_plan *lq = NULL;
    assert_int_equal(trc_expert_plan_create("lqr_finite", sys, dt, T, sys->bound, NULL, &lq), 0);
    const double starts[3][2] = {{0.3, -0.2}, {1.9, 1.7}, {-1.2, 0.6}};
    for (int k = 0; k < 3; k++) {
        double x[2] = {starts[k][0], starts[k][1]}, xn[2], u[TMAX], zero[2] = {0, 0};
        assert_int_equal(trc_expert_solve(lq, x, zero, u, NULL), 0);
        for (int t = 0; t < T; t++) {
            double v = -(K[t][0] * x[0] + K[t][1] * x[1]);
            v = v > sys->bound ? sys->bound : (v < -sys->bound ? -sys->bound : v);
            if (fabs(v - u[t]) > 1e-10 * (1 + fabs(v)))
                fail_msg("start %d step %d: lqr_finite %.15g, Euler Riccati %.15g", k, t, u[t], v);
            sys->step(x, &v, dt, xn); /* through the true (RK4) dynamics */
            x[0] = xn[0], x[1] = xn[1];
        }
    }
    trc_expert_plan_free(lq);
}

/* ---- two controls: a planar double integrator, x = (px, py, vx, vy), u = (ax, ay) ---- */

static void pdi_step(const double *x, const double *u, double dt, double *xn) {
    for (int i = 0; i < 2; i++) {
        xn[i] = x[i] + dt * x[2 + i] + 0.5 * dt * dt * u[i];
        xn[2 + i] = x[2 + i] + dt * u[i];
    }
    xn[0] += 0.02 * dt * sin(x[1]); /* a weak nonlinearity so the iterations matter */
}

static void pdi_jacobian(const double *x, const double *u, double dt, double *A, double *B) {
    (void)u;
    memset(A, 0, sizeof(double) * 16);
    memset(B, 0, sizeof(double) * 8);
    for (int i = 0; i < 4; i++)
        A[i * 4 + i] = 1;
    for (int i = 0; i < 2; i++) {
        A[i * 4 + 2 + i] = dt;
        B[i * 2 + i] = 0.5 * dt * dt;
        B[(2 + i) * 2 + i] = dt;
    }
    A[0 * 4 + 1] += 0.02 * dt * cos(x[1]);
}

static const trc_system planar = {.name = "planar",
                                  .s = 4,
                                  .m = 2,
                                  .dt = 0.2,
                                  .T = 25,
                                  .bound = 0.6,
                                  .step = pdi_step,
                                  .jacobian = pdi_jacobian};

static void test_two_controls_box(void **state) {
    (void)state;
    problem p = {.sys = &planar, .dt = 0.2, .bound = 0.6, .T = 25};
    for (int i = 0; i < 4; i++)
        p.Q[i * 4 + i] = 1 + 0.5 * i, p.Qf[i * 4 + i] = 50;
    p.Q[1] = p.Q[4] = 0.3;                              /* coupled state weights */
    p.R[0] = 0.2, p.R[3] = 0.1, p.R[1] = p.R[2] = 0.05; /* coupled control weights */
    trc_ilqr *plan = make_plan(&p, NULL);
    trc_ilqr_work *w = trc_ilqr_work_create(plan);
    const double starts[3][4] = {{2, -1, 0, 0.5}, {-1.5, 2, 1, -1}, {0.2, 0.1, 0, 0}};
    for (int k = 0; k < 3; k++) {
        double xt[4] = {0}, u[50], ul[50], Jl;
        trc_ilqr_result r;
        assert_int_equal(trc_ilqr_solve(plan, w, starts[k], xt, NULL, u, &r), 0);
        assert_int_equal(trc_ilqr_lqr_rollout(plan, w, starts[k], xt, ul, &Jl), 0);
        assert_true(r.converged);
        assert_true(r.cost <= Jl * (1 + 1e-12));
        assert_true(fabs(r.cost - cost_of(&p, starts[k], xt, u)) <= 1e-9 * r.cost);
        double pg = projected_gradient(&p, starts[k], xt, u);
        if (!(pg <= 1e-6))
            fail_msg("start %d: projected gradient %.3g", k, pg);
        int at_bound = 0;
        for (int i = 0; i < 50; i++) {
            assert_true(fabs(u[i]) <= 0.6);
            at_bound += fabs(u[i]) == 0.6;
        }
        if (k < 2)
            assert_true(at_bound > 0); /* far starts saturate */
    }
    trc_ilqr_work_free(w);
    trc_ilqr_free(plan);
}

/* ---- warm starts: a given solution is used and kept when best ---- */

static void test_given_start(void **state) {
    (void)state;
    problem p = vdp_problem();
    trc_ilqr *plan = make_plan(&p, NULL);
    trc_ilqr_work *w = trc_ilqr_work_create(plan);
    double x0[2] = {1.1, -1.7}, xt[2] = {0, 0}, u[TMAX], u2[TMAX];
    trc_ilqr_result r, r2;
    assert_int_equal(trc_ilqr_solve(plan, w, x0, xt, NULL, u, &r), 0);
    trc_ilqr_options o;
    trc_ilqr_options_default(&o);
    o.starts = TRC_ILQR_START_GIVEN;
    trc_ilqr *given = make_plan(&p, &o);
    assert_int_equal(trc_ilqr_solve(given, w, x0, xt, u, u2, &r2), 0);
    assert_int_equal(r2.start, TRC_ILQR_START_GIVEN);
    assert_true(r2.converged && r2.iterations <= 1); /* already optimal */
    assert_true(fabs(r2.cost - r.cost) <= 1e-12 * r.cost);
    /* without a given solution and no other start, nothing can run */
    assert_int_equal(trc_ilqr_solve(given, w, x0, xt, NULL, u2, &r2), TRC_ENUMERIC);
    trc_ilqr_free(given);
    trc_ilqr_work_free(w);
    trc_ilqr_free(plan);
}

/* ---- the expert's warm-started solve (polish) ---- */

static void test_expert_solve_from(void **state) {
    (void)state;
    const trc_system *sys = trc_system_find("van_der_pol");
    trc_expert_plan *cold = NULL, *lq = NULL;
    assert_int_equal(trc_expert_plan_create("ilqr", sys, sys->dt, sys->T, sys->bound, NULL, &cold),
                     0);
    assert_int_equal(
        trc_expert_plan_create("lqr_finite", sys, sys->dt, sys->T, sys->bound, NULL, &lq), 0);
    double x0[2] = {1.7, -0.4}, xt[2] = {0, 0}, u[TMAX], guess[TMAX], up[TMAX];
    trc_expert_cost c, cp;
    assert_int_equal(trc_expert_solve(cold, x0, xt, u, &c), 0);
    /* a nearby guess (the optimum, perturbed) returns to the same optimum in few iterations */
    for (int t = 0; t < TMAX; t++)
        guess[t] = u[t] + 0.05 * sin(0.3 * t);
    assert_int_equal(trc_expert_solve_from(cold, x0, xt, guess, up, &cp), 0);
    assert_true(cp.converged);
    assert_true(fabs(cp.objective - c.objective) <= 1e-6 * c.objective);
    assert_true(cp.iterations < c.iterations);
    assert_int_equal(trc_expert_solve_from(lq, x0, xt, guess, up, &cp), TRC_EUNSUPPORTED);
    assert_non_null(strstr(trc_errmsg(), "cannot start from a guess"));
    trc_expert_plan_free(cold);
    trc_expert_plan_free(lq);
}

/* ---- determinism ---- */

static void test_deterministic(void **state) {
    (void)state;
    problem p = vdp_problem();
    trc_ilqr *plan = make_plan(&p, NULL);
    trc_ilqr_work *w1 = trc_ilqr_work_create(plan), *w2 = trc_ilqr_work_create(plan);
    double x0[2] = {-1.4, 1.9}, y0[2] = {0.7, 0.2}, xt[2] = {0, 0}, a[TMAX], b[TMAX], c[TMAX];
    assert_int_equal(trc_ilqr_solve(plan, w1, x0, xt, NULL, a, NULL), 0);
    assert_int_equal(trc_ilqr_solve(plan, w1, y0, xt, NULL, c, NULL), 0); /* dirty the work */
    assert_int_equal(trc_ilqr_solve(plan, w1, x0, xt, NULL, b, NULL), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_int_equal(trc_ilqr_solve(plan, w2, x0, xt, NULL, b, NULL), 0);
    assert_memory_equal(a, b, sizeof a);
    trc_ilqr_work_free(w1);
    trc_ilqr_work_free(w2);
    trc_ilqr_free(plan);

    /* a dataset does not depend on the thread count (all but the timing column) */
    trc_gen_settings g;
    assert_int_equal(trc_gen_settings_default("van_der_pol", &g), 0);
    snprintf(g.expert, sizeof g.expert, "ilqr");
    trc_dataset d1, d3;
    trc_gen_options o1 = {.threads = 1}, o3 = {.threads = 3};
    trc_gen_summary s1, s3;
    assert_int_equal(trc_dataset_generate_with(&g, 37, &o1, &d1, &s1), 0);
    assert_int_equal(trc_dataset_generate_with(&g, 37, &o3, &d3, &s3), 0);
    assert_memory_equal(d1.initial_states, d3.initial_states, 37 * 2 * sizeof(float));
    assert_memory_equal(d1.target_states, d3.target_states, 37 * 2 * sizeof(float));
    assert_memory_equal(d1.control_sequences, d3.control_sequences, 37 * 100 * sizeof(float));
    assert_memory_equal(d1.state_trajectories, d3.state_trajectories, 37 * 101 * 2 * sizeof(float));
    assert_memory_equal(d1.costs, d3.costs, 37 * sizeof(float));
    assert_memory_equal(d1.solve_stats, d3.solve_stats, 37 * 2 * sizeof(float));
    assert_true(s1.drawn == s3.drawn && s1.unconverged == s3.unconverged);
    for (size_t i = 0; i < 37; i++) {
        assert_true(d1.target_states[2 * i] == 0 && d1.target_states[2 * i + 1] == 0);
        assert_true(d1.solve_stats[2 * i] >= 1 && d1.solve_stats[2 * i + 1] == 1);
        assert_true(d1.solve_ms[i] >= 0);
    }
    trc_dataset_free(&d1);
    trc_dataset_free(&d3);
}

/* ---- unconverged samples: replaced by further draws, or kept when asked ---- */

static void test_unconverged_handling(void **state) {
    (void)state;
    trc_gen_settings g;
    assert_int_equal(trc_gen_settings_default("van_der_pol", &g), 0);
    snprintf(g.expert, sizeof g.expert, "ilqr");
    assert_int_equal(trc_gen_settings_set_param(&g, "max_iters", 3), 0); /* too few for some */
    const size_t n = 40;
    trc_dataset d, k, c;
    trc_gen_options drop = {.threads = 2}, keep = {.threads = 2, .keep_unconverged = 1};
    trc_gen_options chunked = {.threads = 1, .chunk = 7};
    trc_gen_summary sd, sk;
    assert_int_equal(trc_dataset_generate_with(&g, n, &drop, &d, &sd), 0);
    assert_int_equal(trc_dataset_generate_with(&g, n, &keep, &k, &sk), 0);
    assert_true(sk.unconverged > 0 && sk.unconverged < n);
    assert_true(sk.drawn == n && d.n == n && k.n == n);
    size_t flagged = 0;
    for (size_t i = 0; i < n; i++) {
        flagged += k.solve_stats[2 * i + 1] == 0;
        assert_true(d.solve_stats[2 * i + 1] == 1); /* only converged ones are kept */
    }
    assert_true(flagged == sk.unconverged);
    assert_true(sd.drawn == n + sd.unconverged); /* each dropped one was replaced */
    /* the set is the first n converged candidates of the stream, whatever the chunks */
    assert_int_equal(trc_dataset_generate_with(&g, n, &chunked, &c, NULL), 0);
    assert_memory_equal(c.initial_states, d.initial_states, n * 2 * sizeof(float));
    assert_memory_equal(c.control_sequences, d.control_sequences, n * 100 * sizeof(float));
    assert_memory_equal(c.state_trajectories, d.state_trajectories, n * 101 * 2 * sizeof(float));
    trc_dataset_free(&c);
    /* the kept converged samples come first in draw order in both */
    size_t j = 0;
    for (size_t i = 0; i < n && j < n; i++) {
        if (k.solve_stats[2 * i + 1] == 0)
            continue;
        assert_memory_equal(k.initial_states + 2 * i, d.initial_states + 2 * j, 2 * sizeof(float));
        assert_memory_equal(k.control_sequences + 100 * i, d.control_sequences + 100 * j,
                            100 * sizeof(float));
        j++;
    }
    trc_dataset_free(&d);
    trc_dataset_free(&k);
    /* one iteration converges (almost) nowhere: refused rather than looping */
    assert_int_equal(trc_gen_settings_set_param(&g, "max_iters", 1), 0);
    assert_int_equal(trc_dataset_generate_with(&g, n, &drop, &d, &sd), TRC_ENUMERIC);
    assert_non_null(strstr(trc_errmsg(), "did not converge"));
    assert_null(d.initial_states);
}

/* ---- the per-sample records and the target box survive the .npz round trip ---- */

static void test_dataset_round_trip(void **state) {
    (void)state;
    assert_int_equal(test_tmpdir_make("ilqr"), 0);
    trc_gen_settings g;
    assert_int_equal(trc_gen_settings_default("van_der_pol", &g), 0);
    snprintf(g.expert, sizeof g.expert, "ilqr");
    assert_int_equal(trc_gen_settings_set_param(&g, "max_iters", 40), 0);
    trc_dataset d, back;
    assert_int_equal(trc_dataset_generate(&g, 9, &d), 0);
    assert_int_equal(trc_dataset_save(test_tmp_path("v.npz"), &d), 0);
    assert_int_equal(trc_dataset_load(test_tmp_path("v.npz"), &back), 0);
    assert_non_null(back.solve_stats);
    assert_non_null(back.solve_ms);
    assert_memory_equal(back.solve_stats, d.solve_stats, 9 * 2 * sizeof(float));
    assert_memory_equal(back.solve_ms, d.solve_ms, 9 * sizeof(float));
    assert_memory_equal(back.costs, d.costs, 9 * sizeof(float));
    assert_true(back.has_settings && trc_gen_settings_param(&back.settings, "max_iters") == 40);
    assert_true(back.settings.target_lo == 0 && back.settings.target_hi == 0);
    assert_true(trc_gen_settings_param(&back.settings, "lqr_r") == 0.1);
    assert_true(trc_gen_settings_param(&back.settings, "lqr_qf") == 20.0); /* the system's */
    assert_string_equal(back.settings.expert, "ilqr");
    trc_dataset_free(&back);
    trc_dataset_free(&d);
    /* a double-integrator file keeps its old form: no target box, no solve records */
    trc_gen_settings_default("double_integrator", &g);
    assert_true(isnan(g.target_lo) && isnan(g.target_hi));
    assert_int_equal(trc_dataset_generate(&g, 5, &d), 0);
    assert_null(d.solve_stats);
    assert_int_equal(trc_dataset_save(test_tmp_path("d.npz"), &d), 0);
    assert_int_equal(trc_dataset_load(test_tmp_path("d.npz"), &back), 0);
    assert_null(back.solve_stats);
    assert_true(isnan(back.settings.target_lo));
    trc_dataset_free(&back);
    trc_dataset_free(&d);
    assert_int_equal(test_rm_rf(test_tmpdir), 0);
}

/* ---- bad input ---- */

static void test_bad_input(void **state) {
    (void)state;
    problem p = vdp_problem();
    trc_ilqr_problem pb = {p.sys, p.dt, p.T, p.bound, p.Q, p.R, p.Qf};
    trc_ilqr *plan = (trc_ilqr *)1;
    double R0[1] = {0}, Rn[1] = {-0.1}, Qn[4] = {10, 0, 0, -5}, Qasym[4] = {10, 1, 0, 5};
    pb.R = R0;
    assert_int_equal(trc_ilqr_create(&pb, NULL, &plan), TRC_EINVAL);
    assert_null(plan);
    assert_non_null(strstr(trc_errmsg(), "R must be positive definite"));
    pb.R = Rn;
    assert_int_equal(trc_ilqr_create(&pb, NULL, &plan), TRC_EINVAL);
    pb.R = p.R;
    pb.Q = Qn;
    assert_int_equal(trc_ilqr_create(&pb, NULL, &plan), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "Q must be positive semi-definite"));
    pb.Q = Qasym;
    assert_int_equal(trc_ilqr_create(&pb, NULL, &plan), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "symmetric"));
    pb.Q = p.Q;
    pb.Qf = Qn;
    assert_int_equal(trc_ilqr_create(&pb, NULL, &plan), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "Qf"));
    pb.Qf = p.Qf;
    pb.dt = 0;
    assert_int_equal(trc_ilqr_create(&pb, NULL, &plan), TRC_EINVAL);
    pb.dt = p.dt, pb.T = 0;
    assert_int_equal(trc_ilqr_create(&pb, NULL, &plan), TRC_EINVAL);
    pb.T = p.T, pb.bound = -1;
    assert_int_equal(trc_ilqr_create(&pb, NULL, &plan), TRC_EINVAL);
    pb.bound = p.bound;
    trc_ilqr_options o;
    trc_ilqr_options_default(&o);
    o.starts = 0;
    assert_int_equal(trc_ilqr_create(&pb, &o, &plan), TRC_EINVAL);
    /* a system without Jacobians */
    trc_system nojac = *p.sys;
    nojac.name = "no_jacobians";
    nojac.jacobian = NULL;
    pb.sys = &nojac;
    assert_int_equal(trc_ilqr_create(&pb, NULL, &plan), TRC_EUNSUPPORTED);
    assert_non_null(strstr(trc_errmsg(), "no_jacobians has no Jacobians"));
    trc_expert_plan *e = NULL;
    assert_int_equal(trc_expert_plan_create("ilqr", &nojac, 0.05, 100, 2, NULL, &e),
                     TRC_EUNSUPPORTED);
    assert_non_null(strstr(trc_errmsg(), "has no Jacobians"));
    /* through the expert's parameter descriptors: (lqr_q, lqr_r, lqr_qf, max_iters), 0 = default */
    double w[TRC_EXPERT_MAX_PARAMS] = {-1};
    assert_int_equal(trc_expert_plan_create("ilqr", p.sys, 0.05, 100, 2, w, &e), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "lqr_q"));
    w[0] = 0, w[1] = -0.1;
    assert_int_equal(trc_expert_plan_create("ilqr", p.sys, 0.05, 100, 2, w, &e), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "lqr_r"));
    w[1] = 0, w[2] = -20;
    assert_int_equal(trc_expert_plan_create("ilqr", p.sys, 0.05, 100, 2, w, &e), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "lqr_qf"));
    w[2] = 0, w[3] = 2.5;
    assert_int_equal(trc_expert_plan_create("ilqr", p.sys, 0.05, 100, 2, w, &e), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "max_iters"));
    w[0] = NAN, w[3] = 0;
    assert_int_equal(trc_expert_plan_create("ilqr", p.sys, 0.05, 100, 2, w, &e), TRC_EINVAL);
    w[0] = 0;
    assert_int_equal(trc_expert_plan_create("ilqr", p.sys, 0.05, 100, 2, w, &e), TRC_OK);
    trc_expert_info info; /* all defaults, lqr_qf resolved to the system's */
    trc_expert_plan_info(e, &info);
    assert_true(info.nparams == 4 && info.params[0] == 1 && info.params[1] == 0.1 &&
                info.params[2] == 20 && info.params[3] == 100);
    trc_expert_plan_free(e);
    assert_true(trc_expert_find("ilqr")->iterative && !trc_expert_find("lqr_finite")->iterative);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adjoint_matches_finite_differences),
        cmocka_unit_test(test_double_integrator_equals_lqr_finite),
        cmocka_unit_test(test_van_der_pol_optimality),
        cmocka_unit_test(test_lqr_finite_van_der_pol_is_euler_lqr),
        cmocka_unit_test(test_two_controls_box),
        cmocka_unit_test(test_given_start),
        cmocka_unit_test(test_expert_solve_from),
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_unconverged_handling),
        cmocka_unit_test(test_dataset_round_trip),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
