/* Inference plans of the two-level networks (two_level, trm_style; trc/arch.h plan ops): the
 * attention fused and every block weight and the control embedding packed once
 * (linear_packed.h), so that a plan runs the kernels the single-latent plan runs, the residual
 * adds and SiLU in the products' epilogues; the batch is cut into fixed chunks of rows, shared
 * between threads (results do not depend on the thread count). The encoder and decoder stacks
 * keep their double sums (nn_layers.h explains why), over weights widened once. A model with
 * trajectory feedback needs a simulator per call: it gets no plan (plans then run its infer). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"
#include "linear_packed.h"
#include "nn_layers.h"
#include "trc/error.h"
#include "two_level_acts.h"
#include "two_level_arch.h"

#define CHUNK 128 /* rows per pass */
#define MAX_THREADS 64

typedef struct tl_plan {
    tl_layout L;
    const float *P; /* the model's parameters (borrowed) */
    float *buf;     /* packed weights, then the fused attention biases */
    double *dbuf;   /* the encoder's, generator's and decoder's weights widened */
    tl_packed pk;
} tl_plan;

int tl_plan_create(const trc_model *model, void **out) {
    *out = NULL;
    trc_tl_config t;
    tl_config_from_model(&model->cfg, &t);
    if (t.feedback)
        return TRC_OK; /* no plan: see above */
    tl_plan *plan = calloc(1, sizeof *plan);
    if (!plan)
        return trc_fail(TRC_ENOMEM, "two-level plan: out of memory");
    tl_layout *L = &plan->L;
    tl_layout_build(&t, L, NULL, NULL, NULL);
    if (L->num_floats != model->num_params) {
        free(plan);
        return trc_fail(TRC_EINVAL, "two-level plan: parameter count does not match the config");
    }
    int d = L->d, I = L->ffn, F = L->fc_in_out;
    size_t dd = (size_t)d * d, per = trc_linear_packed_size(d, d) + trc_linear_packed_size(d, F) +
                                     trc_linear_packed_size(I, d);
    size_t total =
        (size_t)L->layers * per + trc_linear_packed_size(L->U, d) + (size_t)L->layers * (size_t)d;
    size_t dtotal = tl_dlins_size(L);
    float *fused = malloc((size_t)L->layers * (dd + d) * sizeof *fused);
    plan->buf = trc_linear_packed_alloc(total);
    plan->dbuf = aligned_alloc(64, (dtotal * sizeof(double) + 63) / 64 * 64);
    if (!fused || !plan->buf || !plan->dbuf) {
        free(fused);
        tl_plan_free(plan);
        return trc_fail(TRC_ENOMEM, "two-level plan: cannot allocate %zu packed weights", total);
    }
    const float *P = model->params;
    tl_fuse_attention(L, P, fused);
    float *p = plan->buf, *fb = plan->buf + total - (size_t)L->layers * d;
    for (int i = 0; i < L->layers; i++) {
        const tl_block_off *o = &L->blk[i];
        const float *Fi = fused + (size_t)i * (dd + d);
        trc_linear_pack(p, Fi, d, d);
        plan->pk.attn[i] = p;
        p += trc_linear_packed_size(d, d);
        memcpy(fb + (size_t)i * d, Fi + dd, (size_t)d * sizeof *fb);
        plan->pk.attn_b[i] = fb + (size_t)i * d;
        trc_linear_pack(p, P + o->fc_in.w, d, F);
        plan->pk.fc_in[i] = p;
        p += trc_linear_packed_size(d, F);
        trc_linear_pack(p, P + o->fc_out.w, I, d);
        plan->pk.fc_out[i] = p;
        p += trc_linear_packed_size(I, d);
    }
    trc_linear_pack(p, P + L->ctrl_emb.w, L->U, d);
    plan->pk.ctrl = p;
    tl_dlins_pack(L, P, &plan->pk, plan->dbuf);
    free(fused);
    plan->P = P;
    *out = plan;
    return TRC_OK;
}

void tl_plan_free(void *p) {
    tl_plan *plan = p;
    if (!plan)
        return;
    free(plan->buf);
    free(plan->dbuf);
    free(plan);
}

typedef struct tl_job {
    const tl_plan *plan;
    size_t B, nchunks;
    const float *x0, *target, *time_left; /* time_left [B] or NULL (1) */
    float *u_out, *iterates;
} tl_job;

typedef struct tl_worker {
    const tl_job *job;
    size_t c0, c1; /* chunks [c0, c1) */
    int rc;
    char msg[256]; /* the error detail (trc_errmsg is per thread) */
} tl_worker;

static void *worker_main(void *p) {
    tl_worker *w = p;
    const tl_job *job = w->job;
    const tl_layout *L = &job->plan->L;
    size_t U = (size_t)L->U, s = (size_t)L->s;
    tl_acts a;
    size_t C = (job->B + job->nchunks - 1) / job->nchunks;
    w->rc = tl_acts_alloc(L, C, 0, &a);
    for (size_t c = w->c0; w->rc == TRC_OK && c < w->c1; c++) {
        size_t r0 = job->B * c / job->nchunks, nb = job->B * (c + 1) / job->nchunks - r0;
        w->rc = tl_forward(L, job->plan->P, NULL, &job->plan->pk, NULL, &a, nb, job->x0 + r0 * s,
                           job->target + r0 * s, job->time_left ? job->time_left + r0 : NULL);
        if (w->rc)
            break;
        memcpy(job->u_out + r0 * U, a.iters + (size_t)L->H * nb * U, nb * U * sizeof(float));
        if (job->iterates)
            for (int k = 0; k <= L->H; k++)
                memcpy(job->iterates + ((size_t)k * job->B + r0) * U, a.iters + (size_t)k * nb * U,
                       nb * U * sizeof(float));
    }
    if (w->rc)
        snprintf(w->msg, sizeof w->msg, "%s", trc_errmsg());
    if (a.arena)
        tl_acts_free(&a);
    return NULL;
}

int tl_plan_run(const void *p, size_t B, const float *x0, const float *target,
                const float *time_left, float *u_out, float *iterates, int threads) {
    const tl_plan *plan = p;
    if (threads < 1 || threads > MAX_THREADS)
        return trc_fail(TRC_EINVAL, "two-level plan: threads must be in [1, %d], got %d",
                        MAX_THREADS, threads);
    if (B == 0)
        return trc_fail(TRC_EINVAL, "two-level plan: empty batch");
    tl_job job = {plan, B, (B + CHUNK - 1) / CHUNK, x0, target, time_left, u_out, iterates};
    size_t T = (size_t)threads < job.nchunks ? (size_t)threads : job.nchunks;
    tl_worker w[MAX_THREADS] = {{0}};
    for (size_t t = 0; t < T; t++)
        w[t] = (tl_worker){&job, job.nchunks * t / T, job.nchunks * (t + 1) / T, TRC_OK, ""};
    trc_parallel_run(worker_main, w, sizeof *w, T);
    for (size_t t = 0; t < T; t++) /* the first failing chunk's error, on this thread */
        if (w[t].rc)
            return trc_fail(w[t].rc, "%s", w[t].msg);
    return TRC_OK;
}
