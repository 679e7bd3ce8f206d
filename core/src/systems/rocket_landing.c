/* rocket_landing: a 3-DOF point-mass lander on Mars (issue 12), physical units throughout.
 *   state   x = [x, y, z, vx, vy, vz, m]  (m, m/s, kg; z is the altitude)
 *   control u = [Tx, Ty, Tz]              (N), |T_i| <= 15,000 N per component
 *   r' = v,  v' = T / m + (0, 0, -g),  m' = -|T|_eps / (Isp g0)
 * with the original's constants g = 3.71 m/s^2 (Mars), Isp = 200.7 s, g0 = 9.81 m/s^2, and
 * |T|_eps = sqrt(|T|^2 + eps^2), eps = 1 N: smooth at T = 0 (exact Jacobians everywhere), and
 * at most 1 N / (Isp g0) = 5e-4 kg/s more burn than |T| (0.025 kg over a whole landing).
 * One RK4 step per control (rk4.c), T = 50 steps of dt = 1 s.
 *
 * Sampling box (per component, system.h box_lo_k/box_hi_k): x, y in [-1500, 1500] m,
 * z in [600, 1500] m, vx, vy in [-20, 20] m/s, vz in [-30, -5] m/s, m in [1500, 2500] kg.
 * The original's masses went to 3,900 kg; above ~3,000 kg the 15 kN vertical bound leaves
 * less than 1.3 m/s^2 of braking against Mars gravity, so many such starts cannot stop within
 * the horizon: the box stops at 2,500 kg (>= 2.3 m/s^2 of braking). Dry mass 800 kg: the most
 * any admissible control burns in 50 s is 50 sqrt(3) 15,000 / (Isp g0) = 660 kg, so no
 * landing of the default horizon can reach it from >= 1,500 kg.
 *
 * Target: the origin at rest. The mass is free: the target's mass component is a reference
 * only (2,000 kg, the box's middle: the point the ilqr warm start linearises at), ignored by
 * the final error (error_s = 6) and weighted 1e-16 in the cost (2e-10 per kg of gradient).
 * Success (rollout/eval): L2 of the position and velocity errors below 1, which implies the
 * original's landing (horizontal < 10 m, altitude < 1 m, speed < 5 m/s at t = T).
 *
 * ilqr cost (the quadratic of ilqr.h with the default lqr_q 1, lqr_r 0.1): Q = diag(1e-2 on
 * position and velocity, 1e-16 on mass), Qf = 1e10 Q, i.e. a running fuel cost
 * 0.1 |T|^2 (N^2), a negligible running state cost, and 1e8 per m^2 and (m/s)^2 at t = T. */
#include "rk4.h"
#include "trc/system.h"

#include <math.h>

static const trc_system_param rl_params[] = {
    {"g", 3.71, "gravity, m/s^2 (Mars)"},
    {"isp", 200.7, "specific impulse, s"},
    {"g0", 9.81, "standard gravity for the mass flow, m/s^2"},
    {"thrust_eps", 1.0, "smoothing of |T| in the mass flow, N"},
    {"dry_mass", 800.0, "dry mass, kg (never reached from the default box and horizon)"},
};
#define RL_G (rl_params[0].value)
#define RL_ISP (rl_params[1].value)
#define RL_G0 (rl_params[2].value)
#define RL_EPS (rl_params[3].value)

static double thrust_norm(const double *u) {
    return sqrt(u[0] * u[0] + u[1] * u[1] + u[2] * u[2] + RL_EPS * RL_EPS);
}

static void rl_f(const double *x, const double *u, double *dx) {
    const double m = x[6];
    for (int i = 0; i < 3; i++) {
        dx[i] = x[3 + i];
        dx[3 + i] = u[i] / m;
    }
    dx[5] -= RL_G;
    dx[6] = -thrust_norm(u) / (RL_ISP * RL_G0);
}

static void rl_jac(const double *x, const double *u, double *Fx, double *Fu) {
    const double m = x[6], n = thrust_norm(u);
    for (int i = 0; i < 7 * 7; i++)
        Fx[i] = 0.0;
    for (int i = 0; i < 7 * 3; i++)
        Fu[i] = 0.0;
    for (int i = 0; i < 3; i++) {
        Fx[i * 7 + 3 + i] = 1.0;               /* d r'/d v */
        Fx[(3 + i) * 7 + 6] = -u[i] / (m * m); /* d v'/d m */
        Fu[(3 + i) * 3 + i] = 1.0 / m;         /* d v'/d T */
        Fu[6 * 3 + i] = -u[i] / (n * RL_ISP * RL_G0);
    }
}

static const trc_rk4_field rl_field = {7, 3, rl_f, rl_jac};
_Static_assert(7 + 3 <= TRC_RK4_MAX, "RK4 helper too small for rocket_landing");

static void rl_step(const double *x, const double *u, double dt, double *xn) {
    trc_rk4_step(&rl_field, x, u, dt, xn, NULL, NULL);
}

static void rl_jacobian(const double *x, const double *u, double dt, double *A, double *B) {
    double xn[7];
    trc_rk4_step(&rl_field, x, u, dt, xn, A, B);
}

/* The original's landing at t = T: horizontal error < 10 m, altitude < 1 m, speed < 5 m/s
 * (altitude and speed relative to the target's). */
static const char *const rl_metric_names[] = {"landed",           "horizontal_error_m",
                                              "altitude_error_m", "position_error_m",
                                              "speed_error_m_s",  "fuel_kg"};

static void rl_metrics(const double *x0, const double *xT, const double *tg, double *out) {
    double dx = xT[0] - tg[0], dy = xT[1] - tg[1], dz = xT[2] - tg[2];
    double dvx = xT[3] - tg[3], dvy = xT[4] - tg[4], dvz = xT[5] - tg[5];
    double h = sqrt(dx * dx + dy * dy), alt = fabs(dz),
           sp = sqrt(dvx * dvx + dvy * dvy + dvz * dvz);
    out[0] = h < 10.0 && alt < 1.0 && sp < 5.0;
    out[1] = h;
    out[2] = alt;
    out[3] = sqrt(h * h + dz * dz);
    out[4] = sp;
    out[5] = x0[6] - xT[6];
}

static const char *const rl_states[] = {"x", "y", "z", "vx", "vy", "vz", "mass"};
static const char *const rl_controls[] = {"thrust_x", "thrust_y", "thrust_z"};
static const double rl_box_lo[7] = {-1500.0, -1500.0, 600.0, -20.0, -20.0, -30.0, 1500.0};
static const double rl_box_hi[7] = {1500.0, 1500.0, 1500.0, 20.0, 20.0, -5.0, 2500.0};
static const double rl_target[7] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2000.0};
static const double rl_target_box[2] = {0.0, 0.0}; /* fraction 0 of the target box: rl_target */

const trc_system trc_system_rocket_landing = {
    .name = "rocket_landing",
    .about = "3-DOF Mars lander: r' = v, v' = T/m - g e_z, m' = -|T|/(Isp g0) (RK4; SI units)",
    .s = 7,
    .m = 3,
    .state_names = rl_states,
    .control_names = rl_controls,
    .dt = 1.0,
    .T = 50,
    .bound = 15000.0,
    .box_lo = 0.0, /* fractions of the per-component box below */
    .box_hi = 1.0,
    .box_lo_k = rl_box_lo,
    .box_hi_k = rl_box_hi,
    .target_lo_k = rl_target,
    .target_hi_k = rl_target,
    .success_threshold = 1.0,
    .error_s = 6,
    .nmetrics = 6,
    .metric_names = rl_metric_names,
    .metrics = rl_metrics,
    .linear = 0,
    .params = rl_params,
    .nparams = sizeof rl_params / sizeof rl_params[0],
    .step = rl_step,
    .jacobian = rl_jacobian,
    .field = rl_f,
    .field_jacobian = rl_jac,
    .target_box = rl_target_box,
    .cost_q = {1e-2, 1e-2, 1e-2, 1e-2, 1e-2, 1e-2, 1e-16},
    .cost_qf = 1e10,
};
