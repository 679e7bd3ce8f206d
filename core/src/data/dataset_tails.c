/* Tails of expert solutions (trc_dataset_add_tails): the samples that teach a network to plan
 * the rest of a horizon, for closed loops whose horizon shrinks to the end of the problem. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/rng.h"

/* Row `to` of out := the tail of sample i of in from step k (k = 0: the sample itself). */
static void put_tail(const trc_dataset *in, size_t i, int k, trc_dataset *out, size_t to) {
    const size_t S = (size_t)in->s, M = (size_t)in->m, T = (size_t)in->T;
    const float *from =
        k ? in->state_trajectories + (i * (T + 1) + (size_t)k) * S : in->initial_states + i * S;
    memcpy(out->initial_states + to * S, from, S * sizeof(float));
    memcpy(out->target_states + to * S, in->target_states + i * S, S * sizeof(float));
    float *u = out->control_sequences + to * T * M;
    memcpy(u, in->control_sequences + (i * T + (size_t)k) * M, (T - (size_t)k) * M * sizeof(float));
    memset(u + (T - (size_t)k) * M, 0, (size_t)k * M * sizeof(float));
    out->steps_left[to] = (float)(in->T - k);
}

int trc_dataset_alloc_tails(trc_dataset *ds, size_t n, int s, int m, int T) {
    int rc = trc_dataset_alloc(ds, n, s, m, T);
    if (rc)
        return rc;
    free(ds->state_trajectories);
    free(ds->costs);
    ds->state_trajectories = NULL;
    ds->costs = NULL;
    if (!(ds->steps_left = malloc(n * sizeof *ds->steps_left))) {
        trc_dataset_free(ds);
        return trc_fail(TRC_ENOMEM, "dataset: cannot allocate %zu tails", n);
    }
    return TRC_OK;
}

int trc_dataset_tail_rows(const trc_dataset *in, trc_dataset *out) {
    memset(out, 0, sizeof *out);
    size_t n = 0;
    for (size_t i = 0; in->steps_left && i < in->n; i++)
        n += in->steps_left[i] < (float)in->T;
    if (n == 0)
        return trc_fail(TRC_EINVAL, "the dataset holds no tails (rows with steps_left < T)");
    int rc = trc_dataset_alloc_tails(out, n, in->s, in->m, in->T);
    if (rc)
        return rc;
    const size_t S = (size_t)in->s, U = (size_t)in->T * (size_t)in->m;
    for (size_t i = 0, to = 0; i < in->n; i++) {
        if (!(in->steps_left[i] < (float)in->T))
            continue;
        memcpy(out->initial_states + to * S, in->initial_states + i * S, S * sizeof(float));
        memcpy(out->target_states + to * S, in->target_states + i * S, S * sizeof(float));
        memcpy(out->control_sequences + to * U, in->control_sequences + i * U, U * sizeof(float));
        out->steps_left[to++] = in->steps_left[i];
    }
    return TRC_OK;
}

int trc_dataset_add_tails(const trc_dataset *in, int per_sample, uint64_t seed, trc_dataset *out) {
    if (!in || !out)
        return trc_fail(TRC_EINVAL, "tails: NULL dataset");
    memset(out, 0, sizeof *out);
    if (per_sample < 1)
        return trc_fail(TRC_EINVAL, "tails: per sample must be >= 1, got %d", per_sample);
    if (!in->state_trajectories)
        return trc_fail(TRC_EINVAL, "tails: the dataset has no state trajectories (the states "
                                    "x_k a tail starts from)");
    if (in->steps_left)
        return trc_fail(TRC_EINVAL, "tails: the dataset holds tails already");
    if (in->T < 2)
        return trc_fail(TRC_EINVAL, "tails: a horizon of %d step has no tail", in->T);
    int K = per_sample < in->T - 1 ? per_sample : in->T - 1;
    if (in->n > SIZE_MAX / (size_t)(K + 1) / 2)
        return trc_fail(TRC_EINVAL, "tails: %zu samples are too many", in->n);
    size_t n = in->n * (size_t)(K + 1);
    int rc = trc_dataset_alloc_tails(out, n, in->s, in->m, in->T);
    if (rc)
        return rc;
    uint32_t *steps = malloc((size_t)(in->T - 1) * sizeof *steps);
    if (!steps) {
        free(steps);
        trc_dataset_free(out);
        return trc_fail(TRC_ENOMEM, "tails: cannot allocate %zu samples", n);
    }
    trc_rng rng;
    trc_rng_seed(&rng, seed);
    for (size_t i = 0, to = 0; i < in->n; i++) {
        put_tail(in, i, 0, out, to++);
        for (int j = 0; j < in->T - 1; j++)
            steps[j] = (uint32_t)(j + 1);
        trc_rng_shuffle(&rng, steps, (uint32_t)(in->T - 1)); /* the first K: distinct steps */
        for (int j = 0; j < K; j++)
            put_tail(in, i, (int)steps[j], out, to++);
    }
    free(steps);
    out->has_settings = in->has_settings;
    out->settings = in->settings;
    out->dt = in->dt;
    memcpy(out->system, in->system, sizeof out->system);
    return TRC_OK;
}
