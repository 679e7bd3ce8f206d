/* van_der_pol: x1' = x2, x2' = mu (1 - x1^2) x2 - x1 + u, one RK4 step per control step (rk4.c),
 * with the exact Jacobians of that step. Defaults as the original project: dt 0.05, T 100 (5 s),
 * |u| <= 2, starts in [-2, 2]^2, target the origin, success below 0.2, Q = diag(10, 5), R = 0.1,
 * Qf = 20 Q. */
#include "rk4.h"
#include "trc/system.h"

static const trc_system_param vdp_params[] = {
    {"mu", 1.0, "nonlinear damping"},
};
#define VDP_MU (vdp_params[0].value)

static void vdp_f(const double *x, const double *u, double *dx) {
    dx[0] = x[1];
    dx[1] = VDP_MU * (1.0 - x[0] * x[0]) * x[1] - x[0] + u[0];
}

static void vdp_jac(const double *x, const double *u, double *Fx, double *Fu) {
    (void)u;
    Fx[0] = 0.0, Fx[1] = 1.0;
    Fx[2] = -2.0 * VDP_MU * x[0] * x[1] - 1.0, Fx[3] = VDP_MU * (1.0 - x[0] * x[0]);
    Fu[0] = 0.0, Fu[1] = 1.0;
}

static const trc_rk4_field vdp_field = {2, 1, vdp_f, vdp_jac};
_Static_assert(2 + 1 <= TRC_RK4_MAX, "RK4 helper too small for van_der_pol");

static void vdp_step(const double *x, const double *u, double dt, double *xn) {
    trc_rk4_step(&vdp_field, x, u, dt, xn, NULL, NULL);
}

static void vdp_jacobian(const double *x, const double *u, double dt, double *A, double *B) {
    double xn[2];
    trc_rk4_step(&vdp_field, x, u, dt, xn, A, B);
}

static const char *const vdp_states[] = {"x1", "x2"};
static const char *const vdp_controls[] = {"u"};
static const double vdp_target_box[2] = {0.0, 0.0}; /* the origin */

const trc_system trc_system_van_der_pol = {
    .name = "van_der_pol",
    .about = "x1' = x2, x2' = mu (1 - x1^2) x2 - x1 + u (RK4)",
    .s = 2,
    .m = 1,
    .state_names = vdp_states,
    .control_names = vdp_controls,
    .dt = 0.05,
    .T = 100,
    .bound = 2.0,
    .box_lo = -2.0,
    .box_hi = 2.0,
    .success_threshold = 0.2,
    .linear = 0,
    .params = vdp_params,
    .nparams = sizeof vdp_params / sizeof vdp_params[0],
    .step = vdp_step,
    .jacobian = vdp_jacobian,
    .field = vdp_f,
    .field_jacobian = vdp_jac,
    .target_box = vdp_target_box,
    .cost_q = {10.0, 5.0},
    .cost_qf = 20.0,
};
