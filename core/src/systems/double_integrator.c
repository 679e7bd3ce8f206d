/* double_integrator: x = [p, v], u = [a], the exact zero-order hold
 *   p+ = p + v dt + a dt^2 / 2,  v+ = v + a dt
 * Defaults as the original: T = 15 steps over 5 s, |u| <= 4, states in [-2, 2]^2. */
#include "trc/system.h"

static void di_step(const double *x, const double *u, double dt, double *xn) {
    xn[0] = x[0] + x[1] * dt + 0.5 * u[0] * dt * dt;
    xn[1] = x[1] + u[0] * dt;
}

static void di_jacobian(const double *x, const double *u, double dt, double *A, double *B) {
    (void)x;
    (void)u;
    A[0] = 1.0, A[1] = dt;
    A[2] = 0.0, A[3] = 1.0;
    B[0] = 0.5 * dt * dt;
    B[1] = dt;
}

static const double di_ct_A[] = {0.0, 1.0, 0.0, 0.0}, di_ct_B[] = {0.0, 1.0};
static const char *const di_states[] = {"position", "velocity"};
static const char *const di_controls[] = {"acceleration"};

const trc_system trc_system_double_integrator = {
    .name = "double_integrator",
    .about = "p' = v, v' = u (exact zero-order hold)",
    .s = 2,
    .m = 1,
    .state_names = di_states,
    .control_names = di_controls,
    .dt = 5.0 / 15.0,
    .T = 15,
    .bound = 4.0,
    .box_lo = -2.0,
    .box_hi = 2.0,
    .success_threshold = 0.1,
    .linear = 1,
    .ct_A = di_ct_A,
    .ct_B = di_ct_B,
    .step = di_step,
    .jacobian = di_jacobian,
    .cost_q = {1.0, 1.0},
    .cost_qf = 100.0,
};
