/* imitation (alias mse): the original's imitation loss, mean (u_K - u_expert)^2 over the B*U
 * entries of the last iterate; d loss / d u_K = 2 (u_K - u_expert) / (B U), every other iterate 0.
 * A tail (time_left < 1) is scored on the steps it has left only: what follows them is not
 * planned (its entries count as 0 in the mean and get no gradient). */
#include <math.h>
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
    for (size_t r = 0; r < r1 - r0; r++) {
        size_t planned = U;
        if (b->time_left) /* steps left times m */
            planned = (size_t)lrintf(b->time_left[r0 + r] * (float)b->T) * (size_t)b->m;
        for (size_t i = r * U; i < r * U + U; i++) {
            int scored = i - r * U < planned;
            double e = scored ? (double)uK[i] - (double)ue[i] : 0.0;
            acc += e * e;
            g[i] = scored ? scale * (uK[i] - ue[i]) : 0.0f;
        }
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
    .normalised = 1, /* it compares in the network's units */
    .time_left = 1,
};
