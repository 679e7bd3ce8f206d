/* imitation (alias mse): the original's imitation loss, mean (u_K - u_expert)^2 over the B*U
 * entries of the last iterate; d loss / d u_K = 2 (u_K - u_expert) / (B U), every other iterate 0.
 */
#include <string.h>

#include "trc/objective.h"

static double mse_rows(const trc_objective_batch *b, const float *iterates, size_t r0, size_t r1,
                       float *grad) {
    const size_t U = (size_t)b->U, BU = b->B * U, nU = (r1 - r0) * U;
    const size_t last = (size_t)b->K * BU + r0 * U;
    const float *uK = iterates + last, *ue = b->u_expert + r0 * U;
    float *g = grad + last;
    const float scale = 2.0f / (float)BU;
    double acc = 0.0;
    for (size_t i = 0; i < nU; i++) {
        double e = (double)uK[i] - (double)ue[i];
        acc += e * e;
        g[i] = scale * (uK[i] - ue[i]);
    }
    for (int k = 0; k < b->K; k++) /* no gradient at the earlier iterates */
        memset(grad + (size_t)k * BU + r0 * U, 0, nU * sizeof *grad);
    return acc;
}

static double mse_finish(const trc_objective_batch *b, double sum) {
    return sum / ((double)b->B * (double)b->U);
}

const trc_objective trc_objective_mse = {
    .name = "imitation",
    .about =
        "mean squared error of the last iterate against the expert's controls (the original's)",
    .alias = "mse",
    .rows = mse_rows,
    .finish = mse_finish,
    .final_only = 1,
};
