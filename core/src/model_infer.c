/* trc_model_infer: the forward pass of model.md for a batch, keeping no activations beyond the
 * current step. Rows are processed in chunks (a fixed partition of the batch, so results do not
 * depend on the thread count) with scratch small enough to stay in cache; the scratch is
 * allocated per call, so any number of threads may infer on one read-only model.
 *
 * Attention fusion: out_proj(V z + v) = (W_o V) z + (W_o v + c_o). For a batch of at least
 * FUSE_MIN rows, W_o V is formed once per call (blocks * d^3 multiply-adds) and every block
 * application then costs one d x d product instead of two; for fewer rows forming it would
 * cost more than it saves. The two forms agree to float rounding (~1e-7 relative). */
#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "model_layout.h"
#include "trc/error.h"
#include "trc/model.h"

#define CHUNK 128   /* rows per pass, at most */
#define FUSE_MIN 32 /* batch size from which the attention is fused */
#define MAX_THREADS 64

typedef struct scratch {
    float *x;                      /* [C, 2s+1] */
    float *hid;                    /* [C, h] */
    float *z0, *z, *zin, *A, *tmp; /* [C, d] */
    float *cat;                    /* [C, d+U] */
    float *u, *r;                  /* [C, U] */
} scratch;

/* Everything one call shares between its threads (read-only while they run). */
typedef struct infer_job {
    const trc_model_layout *L;
    const float *P;
    const float *fused; /* per block: W_o V [d, d] then W_o v + c_o [d]; NULL if not fused */
    size_t B, nchunks;
    const float *x0, *target;
    float *u_out, *iterates;
} infer_job;

/* z: [nb, d] -> z: [nb, d], one reasoning block (model.md) with context z0: [nb, d]. */
static void block_forward(const infer_job *job, int i, const scratch *S, size_t nb) {
    const trc_model_layout *L = job->L;
    const float *P = job->P;
    const trc_block_off *o = &L->blk[i];
    int d = L->d, h = L->h;
    size_t nd = nb * (size_t)d;
    trc_residual_forward(S->zin, S->z, S->z0, nd);
    if (job->fused) {
        const float *F = job->fused + (size_t)i * ((size_t)d * d + d);
        trc_linear_forward(S->tmp, S->zin, F, F + (size_t)d * d, nb, d, d);
    } else {
        /* attention of one token: out_proj(V z + v), V and v the value rows of in_proj */
        trc_linear_forward(S->A, S->zin, P + o->in_w + 2 * (size_t)d * d, P + o->in_b + 2 * d, nb,
                           d, d);
        trc_linear_forward(S->tmp, S->A, P + o->out.w, P + o->out.b, nb, d, d);
    }
    trc_residual_forward(S->z, S->zin, S->tmp, nd);
    trc_layernorm_forward(S->z, NULL, NULL, S->z, P + o->norm1.w, P + o->norm1.b, nb, d);
    trc_linear_forward(S->hid, S->z, P + o->ffn0.w, P + o->ffn0.b, nb, d, h);
    trc_silu_forward(S->hid, NULL, S->hid, nb * (size_t)h);
    trc_linear_forward(S->tmp, S->hid, P + o->ffn3.w, P + o->ffn3.b, nb, h, d);
    trc_residual_forward(S->z, S->z, S->tmp, nd);
    trc_layernorm_forward(S->z, NULL, NULL, S->z, P + o->norm2.w, P + o->norm2.b, nb, d);
}

/* in: [nb, k] -> out: [nb, o]: Linear(k -> h), silu, LN(h), Linear(h -> o); the shape shared by
 * the state encoder and both decoders. */
static void mlp_forward(const float *P, trc_lin_off l0, trc_lin_off ln, trc_lin_off l3, int k,
                        int h, int o, const float *in, float *hid, float *out, size_t nb) {
    trc_linear_forward(hid, in, P + l0.w, P + l0.b, nb, k, h);
    trc_silu_forward(hid, NULL, hid, nb * (size_t)h);
    trc_layernorm_forward(hid, NULL, NULL, hid, P + ln.w, P + ln.b, nb, h);
    trc_linear_forward(out, hid, P + l3.w, P + l3.b, nb, h, o);
}

/* Rows [r0, r0+nb) of the batch. */
static void chunk_forward(const infer_job *job, const scratch *S, size_t r0, size_t nb) {
    const trc_model_layout *L = job->L;
    const float *P = job->P;
    int s = L->s, U = L->U, d = L->d, h = L->h, in = L->in_dim;
    size_t nU = nb * (size_t)U, BU = job->B * (size_t)U;
    const float *x0 = job->x0 + r0 * s, *target = job->target + r0 * s;
    for (size_t r = 0; r < nb; r++) {
        float *xr = S->x + r * (size_t)in;
        memcpy(xr, x0 + r * (size_t)s, (size_t)s * sizeof *xr);
        memcpy(xr + s, target + r * (size_t)s, (size_t)s * sizeof *xr);
        xr[2 * s] = 1.0f;
    }
    mlp_forward(P, L->enc0, L->enc2, L->enc3, in, h, d, S->x, S->hid, S->z0, nb);
    mlp_forward(P, L->gen0, L->gen2, L->gen3, d, h, U, S->z0, S->hid, S->u, nb);
    trc_tanhscale_forward(S->u, S->u, L->bound, nU);
    if (job->iterates)
        memcpy(job->iterates + r0 * U, S->u, nU * sizeof *S->u);
    for (int k = 0; k < L->K; k++) {
        trc_linear_forward(S->z, S->u, P + L->ctrl_emb.w, P + L->ctrl_emb.b, nb, U, d);
        trc_residual_forward(S->z, S->z, S->z0, nb * (size_t)d);
        for (int j = 0; j < L->n; j++)
            for (int i = 0; i < L->blocks; i++)
                block_forward(job, i, S, nb);
        for (size_t r = 0; r < nb; r++) {
            float *c = S->cat + r * (size_t)(d + U);
            memcpy(c, S->z + r * (size_t)d, (size_t)d * sizeof *c);
            memcpy(c + d, S->u + r * (size_t)U, (size_t)U * sizeof *c);
        }
        mlp_forward(P, L->dec0, L->dec2, L->dec3, d + U, h, U, S->cat, S->hid, S->r, nb);
        trc_tanhscale_forward(S->r, S->r, 0.5f * L->bound, nU);
        trc_residual_forward(S->u, S->u, S->r, nU);
        trc_clamp_forward(S->u, S->u, L->bound, nU);
        if (job->iterates)
            memcpy(job->iterates + (size_t)(k + 1) * BU + r0 * U, S->u, nU * sizeof *S->u);
    }
    memcpy(job->u_out + r0 * U, S->u, nU * sizeof *S->u);
}

/* Floats of one scratch for chunks of up to C rows; with base, also sets the pointers. */
static size_t scratch_layout(const trc_model_layout *L, size_t C, float *base, scratch *S) {
    size_t d = (size_t)L->d, U = (size_t)L->U;
    size_t sizes[] = {C * (size_t)L->in_dim,
                      C * (size_t)L->h,
                      C * d,
                      C * d,
                      C * d,
                      C * d,
                      C * d,
                      C * (d + U),
                      C * U,
                      C * U};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        total += sizes[i];
    if (base) {
        float **slots[] = {&S->x, &S->hid, &S->z0,  &S->z, &S->zin,
                           &S->A, &S->tmp, &S->cat, &S->u, &S->r};
        float *p = base;
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            *slots[i] = p;
            p += sizes[i];
        }
    }
    return total;
}

typedef struct worker {
    const infer_job *job;
    scratch S;
    size_t c0, c1; /* chunks [c0, c1) */
} worker;

static void *worker_main(void *p) {
    const worker *w = p;
    const infer_job *job = w->job;
    for (size_t c = w->c0; c < w->c1; c++) {
        size_t r0 = job->B * c / job->nchunks, r1 = job->B * (c + 1) / job->nchunks;
        chunk_forward(job, &w->S, r0, r1 - r0);
    }
    return NULL;
}

int trc_model_infer_mt(const trc_model *model, size_t B, const float *x0, const float *target,
                       float *u_out, float *iterates, int threads) {
    if (!model || !model->params)
        return trc_fail(TRC_EINVAL, "model infer: model not created");
    if (!x0 || !target || !u_out)
        return trc_fail(TRC_EINVAL, "model infer: NULL input or output");
    if (B == 0 || B > (size_t)INT32_MAX / 4)
        return trc_fail(TRC_EINVAL, "model infer: batch size must be in [1, %d], got %zu",
                        INT32_MAX / 4, B);
    if (threads < 1 || threads > MAX_THREADS)
        return trc_fail(TRC_EINVAL, "model infer: threads must be in [1, %d], got %d", MAX_THREADS,
                        threads);
    int rc = trc_model_config_validate(&model->cfg);
    if (rc)
        return rc;
    trc_model_layout L;
    trc_model_layout_build(&model->cfg, &L, NULL, NULL);
    if (L.num_params != model->num_params)
        return trc_fail(TRC_EINVAL, "model infer: parameter count does not match the config");
    trc_model_blas_single();

    infer_job job = {&L, model->params, NULL,  B,       (B + CHUNK - 1) / CHUNK,
                     x0, target,        u_out, iterates};
    size_t T = (size_t)threads < job.nchunks ? (size_t)threads : job.nchunks;
    size_t C = (B + job.nchunks - 1) / job.nchunks; /* rows of the largest chunk */
    size_t per = scratch_layout(&L, C, NULL, NULL);
    size_t d = (size_t)L.d, nfused = B >= FUSE_MIN ? (size_t)L.blocks * (d * d + d) : 0;
    float *buf = malloc((T * per + nfused) * sizeof *buf);
    if (!buf)
        return trc_fail(TRC_ENOMEM, "model infer: cannot allocate scratch for %zu rows", C);
    worker w[MAX_THREADS] = {{0}};
    for (size_t t = 0; t < T; t++) {
        w[t].job = &job;
        scratch_layout(&L, C, buf + t * per, &w[t].S);
        w[t].c0 = job.nchunks * t / T;
        w[t].c1 = job.nchunks * (t + 1) / T;
    }
    if (nfused) {
        job.fused = buf + T * per;
        trc_model_fuse_attention(&L, model->params, buf + T * per);
    }
    pthread_t th[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (size_t t = 1; t < T; t++)
        started[t] = pthread_create(&th[t], NULL, worker_main, &w[t]) == 0;
    worker_main(&w[0]);
    for (size_t t = 1; t < T; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            worker_main(&w[t]); /* could not start a thread: do its share here */
    }
    free(buf);

    for (size_t i = 0; i < B * (size_t)L.U; i++)
        if (!isfinite(u_out[i]))
            return trc_fail(TRC_ENUMERIC, "model infer: output %zu (sample %zu) is not finite", i,
                            i / (size_t)L.U);
    return 0;
}

int trc_model_infer(const trc_model *model, size_t B, const float *x0, const float *target,
                    float *u_out, float *iterates) {
    return trc_model_infer_mt(model, B, x0, target, u_out, iterates, 1);
}
