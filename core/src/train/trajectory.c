/* trajectory / mixed: the loss of the simulated rollout of the network's final controls, with
 * the gradient through the simulator (the system table's step and Jacobians, by the adjoint of
 * trc_process_sample_cost, shared with process supervision and the two-level trainer,
 * nn/two_level_objectives.c). Per sample, with x_0..x_L the rollout of u = the last iterate from
 * x_0 to the target x* over the L steps the row plans (T, or a tail's steps left):
 * trajectory = w_T |x_L - x*|^2 + w_x / L sum_{t<L} |x_t - x*|^2 + w_u / L sum_{t<L} |u_t|^2
 * averaged over the batch (the running terms are means over the steps, so the weights do not
 * scale with L; t = 0 is a constant, kept so the sum has the iLQR cost's form). State errors
 * count the system's error_s components only (rocket_landing's mass is free). A normalised
 * model's iterates are converted to physical controls for the simulator and every term is in
 * normalised units (trc_objective_units), so one weight fits metres and kilograms alike.
 * "mixed" adds w_i x the imitation MSE of the last iterate (a tail's planned steps only, as
 * imitation). Only the last iterate has a gradient. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/two_level_arch.h"
#include "trc/objective.h"
#include "trc/two_level.h"

enum { T_IMITATION, T_TERMINAL, T_STATE, T_CONTROL };

/* Scratch of one rows call: the rollout, its Jacobians, the physical controls, d u / d y and
 * the gradient with respect to u. */
typedef struct {
    float *traj, *u, *dudy, *gu;
    double *A, *Bm;
} rollout_scratch;

static int scratch_alloc(rollout_scratch *w, size_t T, size_t s, size_t m) {
    w->traj = malloc((T + 1) * s * sizeof *w->traj);
    w->u = malloc(3 * T * m * sizeof *w->u);
    w->A = malloc(T * (s * s + s * m) * sizeof *w->A);
    w->dudy = w->u ? w->u + T * m : NULL;
    w->gu = w->u ? w->u + 2 * T * m : NULL;
    w->Bm = w->A ? w->A + T * s * s : NULL;
    return w->traj && w->u && w->A;
}

static void scratch_free(rollout_scratch *w) {
    free(w->traj), free(w->u), free(w->A);
}

/* The physical controls u [n] of a row's iterate y [n] and d u / d y: y itself (1), or
 * clamp(u_mean + u_std y, -b, b) for a normalised model (u_std inside the bound, 0 clamped). */
static void to_physical(const trc_objective_units *un, size_t n, size_t m, const float *y, float *u,
                        float *dudy) {
    for (size_t j = 0; j < n; j++) {
        if (!un) {
            u[j] = y[j], dudy[j] = 1.0f;
            continue;
        }
        float v = un->u_mean[j % m] + un->u_std[j % m] * y[j];
        int clamped = v > un->bound || v < -un->bound;
        u[j] = clamped ? (v > 0 ? un->bound : -un->bound) : v;
        dudy[j] = clamped ? 0.0f : un->u_std[j % m];
    }
}

static double rollout_rows(const trc_objective_batch *b, const float *iterates, size_t r0,
                           size_t r1, float *grad, int mixed) {
    const size_t U = (size_t)b->U, BU = b->B * U, s = (size_t)b->s, m = (size_t)b->m;
    const int K = b->K, T = b->T;
    trc_objective_params def;
    trc_objective_params_default(&def);
    const trc_objective_params *p = b->params ? b->params : &def;
    const trc_objective_units *un = b->units;
    for (int k = 0; k <= K; k++)
        memset(grad + (size_t)k * BU + r0 * U, 0, (r1 - r0) * U * sizeof *grad);
    trc_tl_sys_ctx ctx;
    trc_tl_sim sim;
    if (!b->system || !b->system->jacobian || T < 1 || U != (size_t)T * m ||
        trc_tl_sim_system(b->system->name, b->dt > 0 ? b->dt : b->system->dt, T, &ctx, &sim) ||
        sim.s != b->s || sim.m != b->m || s > TRC_SYSTEM_MAX_S || m > TRC_SYSTEM_MAX_M)
        return NAN;
    rollout_scratch w;
    if (!scratch_alloc(&w, (size_t)T, s, m)) {
        scratch_free(&w);
        return NAN;
    }
    /* the error's components and the units: weights per component */
    double wx[TRC_SYSTEM_MAX_S], wu[TRC_SYSTEM_MAX_M];
    const size_t es = b->system->error_s > 0 ? (size_t)b->system->error_s : s;
    for (size_t j = 0; j < s; j++)
        wx[j] = j >= es ? 0.0 : (un ? 1.0 / ((double)un->x_std[j] * un->x_std[j]) : 1.0);
    for (size_t j = 0; j < m; j++)
        wu[j] = un ? 1.0 / ((double)un->u_std[j] * un->u_std[j]) : 1.0;
    const float *X0 = b->x0_sim ? b->x0_sim : b->x0,
                *TG = b->target_sim ? b->target_sim : b->target;
    const double wi = mixed ? p->imitation_weight : 0.0, invB = 1.0 / (double)b->B;
    double acc = 0.0;
    for (size_t r = r0; r < r1; r++) {
        const size_t at = (size_t)K * BU + r * U;
        int L = T;
        if (b->time_left) {
            L = (int)lrintf(b->time_left[r] * (float)T);
            L = L < 1 ? 1 : (L > T ? T : L);
        }
        const size_t n = (size_t)L * m;
        const float *y = iterates + at, *ue = b->u_expert + r * U;
        const float *x0 = X0 + r * s, *tg = TG + r * s;
        float *g = grad + at;
        double imit = 0.0;
        for (size_t j = 0; j < n; j++) {
            double e = (double)y[j] - ue[j];
            imit += e * e;
            if (wi > 0)
                g[j] = (float)(2.0 * wi * e / (double)BU);
        }
        imit *= wi / (double)BU;
        /* the rollout's cost with Q = w_x/L diag(wx), R = w_u/L diag(wu), Qf = w_T diag(wx),
         * divided by B, over the L planned steps */
        const trc_process_opts po = {0.0,
                                     p->state_weight / L,
                                     p->control_weight / L,
                                     p->terminal_weight,
                                     TRC_PROCESS_CORRECTED,
                                     wx,
                                     wu};
        trc_tl_sys_ctx ctxL = ctx;
        trc_tl_sim simL = sim;
        ctxL.T = simL.T = L;
        simL.ctx = &ctxL;
        to_physical(un, n, m, y, w.u, w.dudy);
        memset(w.gu, 0, n * sizeof *w.gu);
        double c =
            trc_process_sample_cost(&simL, &po, x0, tg, w.u, w.traj, w.A, w.Bm, w.gu, invB) * invB;
        for (size_t j = 0; j < n; j++)
            g[j] += w.gu[j] * w.dudy[j];
        double eT = 0.0, usq = 0.0;
        for (size_t j = 0; j < s; j++) {
            double e = (double)w.traj[(size_t)L * s + j] - tg[j];
            eT += wx[j] * e * e;
        }
        for (size_t j = 0; j < n; j++)
            usq += wu[j % m] * (double)w.u[j] * w.u[j];
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
    scratch_free(&w);
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
static const char *const trajectory_reads[] = {"terminal_weight", "state_weight", "control_weight",
                                               NULL};
static const char *const mixed_reads[] = {"imitation_weight", "terminal_weight", "state_weight",
                                          "control_weight", NULL};

const trc_objective trc_objective_trajectory = {
    .name = "trajectory",
    .about = "final-state error and running cost of the simulated rollout of the final controls "
             "(gradient through the simulator)",
    .rows = trajectory_rows,
    .finish = rollout_finish,
    .final_only = 1,
    .terms = trajectory_terms,
    .reads = trajectory_reads,
    .needs_jacobian = 1,
    .normalised = 1,
    .time_left = 1,
};

const trc_objective trc_objective_mixed = {
    .name = "mixed",
    .about = "imitation_weight x imitation MSE + the trajectory loss",
    .rows = mixed_rows,
    .finish = rollout_finish,
    .final_only = 1,
    .terms = mixed_terms,
    .reads = mixed_reads,
    .needs_jacobian = 1,
    .normalised = 1,
    .time_left = 1,
};
