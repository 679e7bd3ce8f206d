/* trajectory / mixed: the loss of the simulated rollout of the network's final controls, with
 * the gradient through the simulator (the system table's step and Jacobians, by the adjoint of
 * trc_process_sample_cost, shared with process supervision and the two-level trainer,
 * nn/two_level_objectives.c). Per sample, with x_0..x_T the rollout of u = the last iterate from
 * x_0 to the target x*: trajectory = w_T |x_T - x*|^2 + w_x / T sum_{t<T} |x_t - x*|^2 + w_u / T
 * sum_{t<T} |u_t|^2 averaged over the batch (the running terms are means over the steps, so the
 * weights do not scale with T; t = 0 is a constant, kept so the sum has the iLQR cost's form).
 * "mixed" adds w_i x the imitation MSE of the last iterate. Only the last iterate has a gradient.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/two_level_arch.h"
#include "trc/objective.h"
#include "trc/two_level.h"

enum { T_IMITATION, T_TERMINAL, T_STATE, T_CONTROL };

static double rollout_rows(const trc_objective_batch *b, const float *iterates, size_t r0,
                           size_t r1, float *grad, int mixed) {
    const size_t U = (size_t)b->U, BU = b->B * U, s = (size_t)b->s, m = (size_t)b->m;
    const int K = b->K, T = b->T;
    trc_objective_params def;
    trc_objective_params_default(&def);
    const trc_objective_params *p = b->params ? b->params : &def;
    for (int k = 0; k <= K; k++)
        memset(grad + (size_t)k * BU + r0 * U, 0, (r1 - r0) * U * sizeof *grad);
    trc_tl_sys_ctx ctx;
    trc_tl_sim sim;
    if (!b->system || !b->system->jacobian || T < 1 || U != (size_t)T * m ||
        trc_tl_sim_system(b->system->name, b->dt > 0 ? b->dt : b->system->dt, T, &ctx, &sim) ||
        sim.s != b->s || sim.m != b->m)
        return NAN;
    float *traj = malloc(((size_t)T + 1) * s * sizeof *traj);
    double *A = malloc((size_t)T * (s * s + s * m) * sizeof *A);
    if (!traj || !A) {
        free(traj), free(A);
        return NAN;
    }
    double *Bm = A + (size_t)T * s * s;
    /* the rollout's cost with Q = w_x/T I, R = w_u/T I, Qf = w_T I, divided by B */
    const trc_process_opts po = {0.0, p->state_weight / T, p->control_weight / T,
                                 p->terminal_weight, TRC_PROCESS_CORRECTED};
    const double wi = mixed ? p->imitation_weight : 0.0, invB = 1.0 / (double)b->B;
    double acc = 0.0;
    for (size_t r = r0; r < r1; r++) {
        const size_t at = (size_t)K * BU + r * U;
        const float *u = iterates + at, *ue = b->u_expert + r * U;
        const float *x0 = b->x0 + r * s, *tg = b->target + r * s;
        float *g = grad + at;
        double imit = 0.0, usq = 0.0;
        for (size_t j = 0; j < U; j++) {
            double e = (double)u[j] - ue[j];
            imit += e * e;
            usq += (double)u[j] * u[j];
            if (wi > 0)
                g[j] = (float)(2.0 * wi * e / (double)BU);
        }
        imit *= wi / (double)BU;
        double c = trc_process_sample_cost(&sim, &po, x0, tg, u, traj, A, Bm, g, invB) * invB;
        double eT = 0.0;
        for (size_t j = 0; j < s; j++) {
            double e = (double)traj[(size_t)T * s + j] - tg[j];
            eT += e * e;
        }
        double term = p->terminal_weight * eT * invB, ctrl = po.r * usq * invB;
        acc += imit + c;
        if (b->terms) {
            double *t = b->terms + r * TRC_OBJECTIVE_MAX_TERMS;
            int o = mixed ? 0 : 1; /* trajectory has no imitation term */
            if (mixed)
                t[T_IMITATION] = imit;
            t[T_TERMINAL - o] = term;
            t[T_STATE - o] = c - term - ctrl;
            t[T_CONTROL - o] = ctrl;
        }
    }
    free(traj), free(A);
    return acc;
}

static double trajectory_rows(const trc_objective_batch *b, const float *it, size_t r0, size_t r1,
                              float *grad) {
    return rollout_rows(b, it, r0, r1, grad, 0);
}

static double mixed_rows(const trc_objective_batch *b, const float *it, size_t r0, size_t r1,
                         float *grad) {
    return rollout_rows(b, it, r0, r1, grad, 1);
}

static double rollout_finish(const trc_objective_batch *b, double sum) {
    (void)b;
    return sum; /* the rows' shares are already scaled */
}

static const char *const trajectory_terms[] = {"terminal", "state", "control", NULL};
static const char *const mixed_terms[] = {"imitation", "terminal", "state", "control", NULL};

const trc_objective trc_objective_trajectory = {
    .name = "trajectory",
    .about = "final-state error and running cost of the simulated rollout of the final controls "
             "(gradient through the simulator)",
    .rows = trajectory_rows,
    .finish = rollout_finish,
    .final_only = 1,
    .terms = trajectory_terms,
    .needs_jacobian = 1,
};

const trc_objective trc_objective_mixed = {
    .name = "mixed",
    .about = "imitation_weight x imitation MSE + the trajectory loss",
    .rows = mixed_rows,
    .finish = rollout_finish,
    .final_only = 1,
    .terms = mixed_terms,
    .needs_jacobian = 1,
};
