/* Tests of the systems table: exact double-integrator steps, Van der Pol RK4 against a fine
 * reference integration, every system's Jacobian against finite differences, batch simulation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trc/error.h"
#include "trc/system.h"

static void test_lookup(void **state) {
    (void)state;
    assert_true(trc_system_count() >= 2);
    const trc_system *di = trc_system_find("double_integrator");
    assert_non_null(di);
    assert_int_equal(di->s, 2);
    assert_int_equal(di->m, 1);
    assert_int_equal(di->T, 15);
    assert_true(fabs(di->dt - 1.0 / 3.0) < 1e-15);
    assert_true(di->bound == 4.0);
    assert_true(di->box_lo == -2.0 && di->box_hi == 2.0);
    assert_true(di->linear);
    const trc_system *vdp = trc_system_find("van_der_pol");
    assert_non_null(vdp);
    assert_false(vdp->linear);
    assert_null(trc_system_find("pendulum9"));
    assert_non_null(strstr(trc_errmsg(), "unknown system 'pendulum9'"));
    assert_non_null(strstr(trc_errmsg(), "double_integrator"));
    assert_null(trc_system_at(trc_system_count()));
    for (size_t i = 0; i < trc_system_count(); i++)
        assert_ptr_equal(trc_system_find(trc_system_at(i)->name), trc_system_at(i));
}

/* Constant acceleration over the whole horizon: the exact ZOH rollout lands on the continuous
 * solution p0 + v0 t + a t^2 / 2 (an Euler scheme would not). */
static void test_double_integrator_exact(void **state) {
    (void)state;
    const trc_system *di = trc_system_find("double_integrator");
    double x0[2] = {0.7, -1.1}, u[15], traj[32];
    for (int t = 0; t < 15; t++)
        u[t] = 1.3;
    trc_system_rollout(di, di->dt, 15, x0, u, traj);
    double tf = 5.0;
    assert_true(fabs(traj[30] - (0.7 - 1.1 * tf + 0.5 * 1.3 * tf * tf)) < 1e-12);
    assert_true(fabs(traj[31] - (-1.1 + 1.3 * tf)) < 1e-12);
    /* one step by the stated formula */
    double x[2] = {0.5, 2.0}, uu = -3.0, xn[2], dt = 0.25;
    di->step(x, &uu, dt, xn);
    assert_true(xn[0] == 0.5 + 2.0 * dt + 0.5 * uu * dt * dt);
    assert_true(xn[1] == 2.0 + uu * dt);
}

static void vdp_field(const double *x, double u, double *dx) {
    dx[0] = x[1];
    dx[1] = (1.0 - x[0] * x[0]) * x[1] - x[0] + u;
}

static void fine_reference(const double *x, double u, double dt, double *y) {
    double h = dt / 1000.0;
    y[0] = x[0], y[1] = x[1];
    for (int i = 0; i < 1000; i++) {
        double k1[2], k2[2], k3[2], k4[2], t[2];
        vdp_field(y, u, k1);
        t[0] = y[0] + h / 2 * k1[0], t[1] = y[1] + h / 2 * k1[1];
        vdp_field(t, u, k2);
        t[0] = y[0] + h / 2 * k2[0], t[1] = y[1] + h / 2 * k2[1];
        vdp_field(t, u, k3);
        t[0] = y[0] + h * k3[0], t[1] = y[1] + h * k3[1];
        vdp_field(t, u, k4);
        y[0] += h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0]);
        y[1] += h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1]);
    }
}

/* One RK4 step agrees with a fine integration (1000 RK4 substeps) to the method's local error,
 * and that error shrinks like dt^5 (halving dt divides it by about 32). */
static void test_van_der_pol_step(void **state) {
    (void)state;
    const trc_system *vdp = trc_system_find("van_der_pol");
    const double starts[3][3] = {{1.0, 0.5, 0.3}, {-2.0, 2.0, -2.0}, {0.1, -1.5, 1.0}};
    for (int k = 0; k < 3; k++) {
        double x[2] = {starts[k][0], starts[k][1]}, u = starts[k][2], xn[2], y[2];
        double err[2];
        for (int half = 0; half < 2; half++) {
            double dt = vdp->dt / (half ? 2.0 : 1.0);
            vdp->step(x, &u, dt, xn);
            fine_reference(x, u, dt, y);
            err[half] = hypot(xn[0] - y[0], xn[1] - y[1]);
            assert_true(hypot(xn[0] - x[0], xn[1] - x[1]) > 1e-3); /* it moved */
        }
        assert_true(err[0] < 1e-4);
        assert_true(err[1] < err[0] / 20.0);
    }
}

/* Every table entry: A and B against central differences of its own step function, at fixed
 * points (for a system with per-component boxes, the same points as fractions of its box and
 * of its bound, so a rocket's mass is never 0). */
static void test_jacobians_fd(void **state) {
    (void)state;
    const double pts[4][3] = {{0.3, -0.7, 0.9}, {1.5, 1.2, -2.0}, {-1.9, 0.4, 0.0}, {0, 0, 0}};
    enum { MS = TRC_SYSTEM_MAX_S, MM = TRC_SYSTEM_MAX_M };
    for (size_t i = 0; i < trc_system_count(); i++) {
        const trc_system *sys = trc_system_at(i);
        const int s = sys->s, m = sys->m, boxed = sys->box_lo_k != NULL;
        for (int k = 0; k < 4; k++) {
            double x[MS] = {0}, u[MM] = {0}, A[MS * MS], B[MS * MM], xp[MS], xm[MS];
            for (int r = 0; r < s; r++) {
                const double f = (pts[k][r % 2] + 2.0) / 4.0; /* [-2, 2] -> [0, 1] */
                x[r] = boxed ? trc_system_draw(sys, 0, r,
                                               sys->box_lo + f * (sys->box_hi - sys->box_lo))
                             : pts[k][r % 2];
            }
            for (int q = 0; q < m; q++)
                u[q] = pts[k][2] * (boxed ? sys->bound / 2.0 : 1.0);
            sys->jacobian(x, u, sys->dt, A, B);
            for (int c = 0; c < s + m; c++) {
                double xx[MS], uu[MM];
                memcpy(xx, x, sizeof xx);
                memcpy(uu, u, sizeof uu);
                double *v = c < s ? &xx[c] : &uu[c - s];
                double v0 = *v, h = 1e-6 * fmax(1.0, fabs(v0));
                *v = v0 + h;
                sys->step(xx, uu, sys->dt, xp);
                *v = v0 - h;
                sys->step(xx, uu, sys->dt, xm);
                for (int r = 0; r < s; r++) {
                    double fd = (xp[r] - xm[r]) / (2 * h);
                    double an = c < s ? A[r * s + c] : B[r * m + (c - s)];
                    if (fabs(fd - an) > 1e-7 * (1 + fabs(fd)))
                        fail_msg("%s: d x+[%d]/d %s[%d] analytic %.12g vs fd %.12g", sys->name, r,
                                 c < s ? "x" : "u", c < s ? c : c - s, an, fd);
                }
            }
        }
    }
}

/* Every entry with a continuous-time field: Fx, Fu against central differences of the field,
 * and the field against the step (x+ = x + h f(x, u) + O(h^2) for a small h). */
static void test_field_jacobians_fd(void **state) {
    (void)state;
    const double pts[3][3] = {{0.3, -0.7, 0.9}, {1.5, 1.2, -2.0}, {-1.9, 0.4, 0.0}};
    int seen = 0;
    for (size_t i = 0; i < trc_system_count(); i++) {
        const trc_system *sys = trc_system_at(i);
        if (!sys->field)
            continue;
        assert_non_null(sys->field_jacobian);
        seen++;
        const int s = sys->s, m = sys->m;
        for (int k = 0; k < 3; k++) {
            enum { MS = TRC_SYSTEM_MAX_S, MM = TRC_SYSTEM_MAX_M };
            double x[MS] = {0}, u[MM] = {0}, Fx[MS * MS], Fu[MS * MM], fp[MS], fm[MS], f[MS],
                   xn[MS];
            const int boxed = sys->box_lo_k != NULL; /* as in test_jacobians_fd */
            for (int r = 0; r < s; r++) {
                const double fr = (pts[k][r % 2] + 2.0) / 4.0;
                x[r] = boxed ? trc_system_draw(sys, 0, r,
                                               sys->box_lo + fr * (sys->box_hi - sys->box_lo))
                             : pts[k][r % 2];
            }
            for (int q = 0; q < m; q++)
                u[q] = pts[k][2] * (boxed ? sys->bound / 2.0 : 1.0);
            sys->field_jacobian(x, u, Fx, Fu);
            for (int c = 0; c < s + m; c++) {
                double xx[MS], uu[MM];
                memcpy(xx, x, sizeof xx);
                memcpy(uu, u, sizeof uu);
                double *v = c < s ? &xx[c] : &uu[c - s];
                double v0 = *v, h = 1e-6 * fmax(1.0, fabs(v0));
                *v = v0 + h;
                sys->field(xx, uu, fp);
                *v = v0 - h;
                sys->field(xx, uu, fm);
                for (int r = 0; r < s; r++) {
                    double fd = (fp[r] - fm[r]) / (2 * h);
                    double an = c < s ? Fx[r * s + c] : Fu[r * m + (c - s)];
                    if (fabs(fd - an) > 1e-7 * (1 + fabs(fd)))
                        fail_msg("%s: d f[%d]/d %s[%d] analytic %.12g vs fd %.12g", sys->name, r,
                                 c < s ? "x" : "u", c < s ? c : c - s, an, fd);
                }
            }
            sys->field(x, u, f);
            sys->step(x, u, 1e-5, xn);
            for (int r = 0; r < s; r++)
                assert_true(fabs((xn[r] - x[r]) / 1e-5 - f[r]) <= 1e-3 * (1 + fabs(f[r])));
        }
    }
    assert_true(seen >= 1); /* van_der_pol */
}

/* Per-system defaults the original project fixed for Van der Pol. */
static void test_van_der_pol_defaults(void **state) {
    (void)state;
    const trc_system *v = trc_system_find("van_der_pol");
    assert_true(v->dt == 0.05 && v->T == 100 && v->bound == 2.0);
    assert_true(v->box_lo == -2.0 && v->box_hi == 2.0);
    assert_true(v->target_box && v->target_box[0] == 0 && v->target_box[1] == 0);
    assert_true(v->success_threshold == 0.2);
    assert_true(trc_system_cost_q(v, 0) == 10 && trc_system_cost_q(v, 1) == 5);
    assert_true(trc_system_cost_qf(v) == 20);
    const trc_system *d = trc_system_find("double_integrator");
    assert_true(!d->target_box && trc_system_cost_q(d, 0) == 1 && trc_system_cost_qf(d) == 100);
    for (size_t i = 0; i < trc_system_count(); i++)
        assert_true(trc_system_at(i)->success_threshold > 0);
}

static void test_simulate_batch(void **state) {
    (void)state;
    enum { N = 7, T = 9, MS = TRC_SYSTEM_MAX_S, MM = TRC_SYSTEM_MAX_M };
    for (size_t si = 0; si < trc_system_count(); si++) {
        const trc_system *sys = trc_system_at(si);
        const int s = sys->s, m = sys->m;
        float x0[N * MS], u[N * T * MM], traj[N * (T + 1) * MS];
        for (int i = 0; i < N * s; i++) /* for rocket_landing, every mass is >= 0.8 kg */
            x0[i] = (float)(0.3 * i - 1.0);
        for (int i = 0; i < N * T * m; i++)
            u[i] = (float)sin(0.7 * i);
        assert_int_equal(trc_simulate(sys, sys->dt, T, N, x0, u, traj), 0);
        for (int i = 0; i < N; i++) {
            double xd[MS], ud[T * MM], td[(T + 1) * MS];
            for (int r = 0; r < s; r++)
                xd[r] = x0[i * s + r];
            for (int t = 0; t < T * m; t++)
                ud[t] = u[i * T * m + t];
            trc_system_rollout(sys, sys->dt, T, xd, ud, td);
            for (int k = 0; k < (T + 1) * s; k++)
                assert_true(fabs(traj[i * (T + 1) * s + k] - td[k]) <= 1e-6 * (1 + fabs(td[k])));
        }
    }
    const trc_system *di = trc_system_find("double_integrator");
    float a[2] = {0}, b[1] = {0}, c[4];
    assert_int_equal(trc_simulate(di, di->dt, 0, 1, a, b, c), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "horizon"));
    assert_int_equal(trc_simulate(di, 0.0, 1, 1, a, b, c), TRC_EINVAL);
    assert_int_equal(trc_simulate(di, NAN, 1, 1, a, b, c), TRC_EINVAL);
    assert_int_equal(trc_simulate(NULL, 0.1, 1, 1, a, b, c), TRC_EINVAL);
    assert_int_equal(trc_simulate(di, 0.1, 1, 1, NULL, b, c), TRC_EINVAL);
    assert_int_equal(trc_simulate(di, 0.1, 1, 0, NULL, NULL, NULL), 0); /* empty batch */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_double_integrator_exact),
        cmocka_unit_test(test_van_der_pol_step),
        cmocka_unit_test(test_jacobians_fd),
        cmocka_unit_test(test_simulate_batch),
        cmocka_unit_test(test_field_jacobians_fd),
        cmocka_unit_test(test_van_der_pol_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
