/* process / process_original: the process-supervision loss of model-v2.md section 9 as
 * objectives, with the script's defaults (lambda 0.1, Q = I, R = 0.01 I, Qf = 10 I):
 *   loss = MSE(u_K, u_expert) - lambda / (B K) sum_b sum_k (n_{k-1} - n_k),
 *   n_k = c_k / (c_0 + 1e-6), c_k the trajectory cost of iterate k simulated by the data's system.
 * The sum over k telescopes to (c_0 - c_K) / (c_0 + 1e-6) per row, so rows are independent.
 * "process_original" differentiates it as the original does (normaliser not detached: iterate 0
 * is pushed to a worse cost); "process" is the corrected variant (stop-gradient on the
 * normaliser and the earlier iterate: lambda / (B K) sum_k c_k / (c_0 + 1e-6) with c_0 fixed).
 * They need the data's system (trc_trainer_set_objective); without one the loss is NaN, which
 * the trainer reports as not finite. lambda and the cost weights are the batch's params
 * (process_weight, process_q/r/qf); the terms are "imitation" and "process". */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/two_level_arch.h"
#include "trc/objective.h"
#include "trc/two_level.h"

static double process_rows(const trc_objective_batch *b, const float *iterates, size_t r0,
                           size_t r1, float *grad, int variant) {
    const size_t U = (size_t)b->U, BU = b->B * U, s = (size_t)b->s;
    const int K = b->K;
    for (int k = 0; k <= K; k++)
        memset(grad + (size_t)k * BU + r0 * U, 0, (r1 - r0) * U * sizeof *grad);
    trc_tl_sys_ctx ctx;
    trc_tl_sim sim;
    if (!b->system || K < 1 ||
        trc_tl_sim_system(b->system->name, b->dt > 0 ? b->dt : b->system->dt, b->T, &ctx, &sim) ||
        sim.s != b->s || sim.m != b->m)
        return NAN;
    float *traj = malloc(((size_t)b->T + 1) * s * sizeof *traj);
    double *A = malloc((size_t)b->T * (s * s + s * (size_t)b->m) * sizeof *A);
    if (!traj || !A) {
        free(traj), free(A);
        return NAN;
    }
    double *Bm = A + (size_t)b->T * s * s;
    trc_objective_params def;
    trc_objective_params_default(&def);
    const trc_objective_params *p = b->params ? b->params : &def;
    const trc_process_opts po = {p->process_weight, p->process_q, p->process_r, p->process_qf,
                                 variant,           NULL,         NULL};
    const double eps = 1e-6, lam = po.weight, BK = (double)b->B * K;
    const float scale = 2.0f / (float)BU;
    double acc = 0.0;
    for (size_t r = r0; r < r1; r++) {
        const float *uK = iterates + (size_t)K * BU + r * U, *ue = b->u_expert + r * U;
        double imit = 0.0;
        for (size_t j = 0; j < U; j++) {
            double e = (double)uK[j] - ue[j];
            imit += e * e / (double)BU;
            grad[(size_t)K * BU + r * U + j] = scale * (uK[j] - ue[j]);
        }
        acc += imit;
        const float *x0 = b->x0 + r * s, *tg = b->target + r * s;
        double c0 =
            trc_process_sample_cost(&sim, &po, x0, tg, iterates + r * U, traj, A, Bm, NULL, 0) +
            eps;
        double cK = trc_process_sample_cost(&sim, &po, x0, tg, iterates + (size_t)K * BU + r * U,
                                            traj, A, Bm, NULL, 0);
        double proc = -lam / BK * (c0 - eps - cK) / c0;
        acc += proc;
        if (b->terms) {
            b->terms[r * TRC_OBJECTIVE_MAX_TERMS] = imit;
            b->terms[r * TRC_OBJECTIVE_MAX_TERMS + 1] = proc;
        }
        for (int k = variant == TRC_PROCESS_ORIGINAL ? 0 : 1; k <= K; k++) {
            double g;
            if (variant == TRC_PROCESS_ORIGINAL) /* telescoped: only c_0 and c_K count */
                g = k == K ? lam / BK / c0 : (k == 0 ? -lam / BK * (cK + eps) / (c0 * c0) : 0.0);
            else
                g = lam / BK / c0;
            if (g != 0.0)
                trc_process_sample_cost(&sim, &po, x0, tg, iterates + (size_t)k * BU + r * U, traj,
                                        A, Bm, grad + (size_t)k * BU + r * U, g);
        }
    }
    free(traj), free(A);
    return acc;
}

static double corrected_rows(const trc_objective_batch *b, const float *it, size_t r0, size_t r1,
                             float *grad) {
    return process_rows(b, it, r0, r1, grad, TRC_PROCESS_CORRECTED);
}

static double original_rows(const trc_objective_batch *b, const float *it, size_t r0, size_t r1,
                            float *grad) {
    return process_rows(b, it, r0, r1, grad, TRC_PROCESS_ORIGINAL);
}

static const char *const process_terms[] = {"imitation", "process", NULL};

static double process_finish(const trc_objective_batch *b, double sum) {
    (void)b;
    return sum; /* the rows' shares are already scaled */
}

static const char *const process_reads[] = {"process_weight", "process_q", "process_r",
                                            "process_qf", NULL};

const trc_objective trc_objective_process = {
    .name = "process",
    .about = "MSE + process_weight x process supervision, corrected (sg on the normaliser and "
             "earlier iterate; process_variant original selects process_original)",
    .rows = corrected_rows,
    .finish = process_finish,
    .final_only = 0,
    .surrogate_gradient = 1,
    .terms = process_terms,
    .reads = process_reads,
    .needs_jacobian = 1,
};

const trc_objective trc_objective_process_original = {
    .name = "process_original",
    .about = "MSE + process_weight x process supervision as the original differentiates it "
             "(model-v2.md 9)",
    .rows = original_rows,
    .finish = process_finish,
    .final_only = 0,
    .terms = process_terms,
    .reads = process_reads,
    .needs_jacobian = 1,
};
