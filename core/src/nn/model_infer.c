/* trc_model_infer: the forward pass of model.md for a batch, keeping no activations beyond the
 * current step. Rows are processed in chunks (a fixed partition of the batch, so results do not
 * depend on the thread count) with scratch small enough to stay in cache; the scratch is
 * allocated per call, so any number of threads may infer on one read-only model.
 *
 * Attention fusion: out_proj(V z + v) = (W_o V) z + (W_o v + c_o): W_o V is formed once
 * (blocks * d^3 multiply-adds) and every block application then costs one d x d product
 * instead of two. The two forms agree to float rounding (~1e-7 relative).
 *
 * The "single" architecture's inference (its ops in single.c; trc_model_infer dispatches here).
 * Inference plans (trc_infer_plan_*): the forward pass over weights prepared once -- the
 * attention fused, every weight repacked for linear_packed.c's kernel -- for callers that run
 * many batches on one model (the server). trc_single_infer makes a plan per call: packing the
 * weights costs about one pass over them, less than a single-row product through weights stored
 * [out, in], and every caller then runs the kernels trcd runs. Bias, residual adds and SiLU run
 * in the products' epilogues (kernels/kernels.h). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"
#include "layers.h"
#include "linear_packed.h"
#include "model_layout.h"
#include "trc/error.h"
#include "trc/model.h"

#define CHUNK 128 /* rows per pass, at most */
#define MAX_THREADS 64

typedef struct scratch {
    float *x;                  /* [C, 2s+1] */
    float *hid;                /* [C, h] */
    float *z0, *z, *zin, *tmp; /* [C, d] */
    float *cat;                /* [C, d+U] */
    float *u, *r;              /* [C, U] */
} scratch;

/* One Linear of the forward pass: W [out, in] as stored (sgemm) or packed (linear_packed.h),
 * or (Wb not NULL) its bf16 copy (a plan of TRC_PRECISION_BF16; W is then unused). */
typedef struct lin {
    const float *W, *b;
    int in, out, packed;
    const uint16_t *Wb;
} lin;

/* The Linears of the forward pass, by index: 7 outside the blocks, then 5 per block. */
enum { LIN_ENC0, LIN_ENC3, LIN_GEN0, LIN_GEN3, LIN_CTRL, LIN_DEC0, LIN_DEC3, LIN_BLOCKS };
enum { BLK_FUSED, BLK_FFN0, BLK_FFN3, BLK_LINS };
#define NLIN (LIN_BLOCKS + BLK_LINS * TRC_MAX_BLOCKS)
#define BLK(i, k) (LIN_BLOCKS + BLK_LINS * (i) + (k))

typedef struct single_plan {
    const trc_model *model;
    trc_model_layout L;
    float *buf;     /* packed weights, then the fused attention biases */
    uint16_t *bbuf; /* bf16 plans: the packed bf16 weights (buf: the biases only) */
    lin lins[NLIN];
} single_plan;

/* y: [nb, out] = x: [nb, in] W^T + b (+ res: [nb, out] if not NULL), then silu if `silu`: the
 * residual and the activation run in the product's epilogue (y may not alias x or res) */
static void lin_forward_ex(const lin *l, float *y, const float *x, const float *res, int silu,
                           size_t nb) {
    if (l->Wb)
        trc_linear_bf16_forward_ln(y, x, l->Wb, l->b, res, silu, NULL, NULL, NULL, nb, l->in,
                                   l->out);
    else if (l->packed)
        trc_linear_packed_forward_ex(y, x, l->W, l->b, res, silu, nb, l->in, l->out);
    else
        trc_linear_forward_ex(y, x, l->W, l->b, res, silu, nb, l->in, l->out);
}

/* The same, then layer norm (ln: P's offsets) of each row of y into lny (lny = y: in place; lny
 * may alias res): packed, each tile of rows is normalised as soon as it is done, while in L1
 * (linear_packed.h; the same bits as a separate trc_layernorm_forward) */
static void lin_forward_ln(const lin *l, float *y, const float *x, const float *res, int silu,
                           const float *P, trc_lin_off ln, float *lny, size_t nb) {
    if (l->Wb)
        trc_linear_bf16_forward_ln(y, x, l->Wb, l->b, res, silu, P + ln.w, P + ln.b, lny, nb, l->in,
                                   l->out);
    else if (l->packed)
        trc_linear_packed_forward_ln(y, x, l->W, l->b, res, silu, P + ln.w, P + ln.b, lny, nb,
                                     l->in, l->out);
    else {
        trc_linear_forward_ex(y, x, l->W, l->b, res, silu, nb, l->in, l->out);
        trc_layernorm_forward(lny, NULL, NULL, y, P + ln.w, P + ln.b, nb, l->out);
    }
}

static void lin_forward(const lin *l, float *y, const float *x, size_t nb) {
    lin_forward_ex(l, y, x, NULL, 0, nb);
}

/* Everything one call shares between its threads (read-only while they run). */
typedef struct infer_job {
    const trc_model_layout *L;
    const float *P;
    const lin *lins; /* NLIN */
    size_t B, nchunks;
    const float *x0, *target, *time_left; /* time_left [B] or NULL (1) */
    float *u_out, *iterates;
} infer_job;

/* z: [nb, d] -> z: [nb, d], one reasoning block (model.md) with context z0: [nb, d]. */
static void block_forward(const infer_job *job, int i, const scratch *S, size_t nb) {
    const trc_model_layout *L = job->L;
    const float *P = job->P;
    const trc_block_off *o = &L->blk[i];
    int d = L->d;
    size_t nd = nb * (size_t)d;
    trc_residual_forward(S->zin, S->z, S->z0, nd);
    const lin *l = job->lins + BLK(i, 0);
    /* z = norm1(zin + attention(zin)), the attention fused into one Linear */
    lin_forward_ln(l + BLK_FUSED, S->z, S->zin, S->zin, 0, P, o->norm1, S->z, nb);
    lin_forward_ex(l + BLK_FFN0, S->hid, S->z, NULL, 1, nb); /* silu(ffn0(z)) */
    /* z = norm2(z + ffn3(..)) */
    lin_forward_ln(l + BLK_FFN3, S->tmp, S->hid, S->z, 0, P, o->norm2, S->z, nb);
}

/* in: [nb, k] -> out: [nb, o]: Linear(k -> h), silu, LN(h), Linear(h -> o); the shape shared by
 * the state encoder and both decoders. */
static void mlp_forward(const float *P, const lin *l0, trc_lin_off ln, const lin *l3,
                        const float *in, float *hid, float *out, size_t nb) {
    lin_forward_ln(l0, hid, in, NULL, 1, P, ln, hid, nb); /* LN(silu(l0(in))) */
    lin_forward(l3, out, hid, nb);
}

/* Rows [r0, r0+nb) of the batch. */
static void chunk_forward(const infer_job *job, const scratch *S, size_t r0, size_t nb) {
    const trc_model_layout *L = job->L;
    const float *P = job->P;
    int s = L->s, U = L->U, d = L->d, in = L->in_dim;
    size_t nU = nb * (size_t)U, BU = job->B * (size_t)U;
    const float *x0 = job->x0 + r0 * s, *target = job->target + r0 * s;
    for (size_t r = 0; r < nb; r++) {
        float *xr = S->x + r * (size_t)in;
        memcpy(xr, x0 + r * (size_t)s, (size_t)s * sizeof *xr);
        memcpy(xr + s, target + r * (size_t)s, (size_t)s * sizeof *xr);
        xr[2 * s] = job->time_left ? job->time_left[r0 + r] : 1.0f;
    }
    const lin *ls = job->lins;
    mlp_forward(P, ls + LIN_ENC0, L->enc2, ls + LIN_ENC3, S->x, S->hid, S->z0, nb);
    mlp_forward(P, ls + LIN_GEN0, L->gen2, ls + LIN_GEN3, S->z0, S->hid, S->u, nb);
    trc_tanhscale_forward(S->u, S->u, L->bound, nU);
    if (job->iterates)
        memcpy(job->iterates + r0 * U, S->u, nU * sizeof *S->u);
    for (int k = 0; k < L->K; k++) {
        lin_forward(ls + LIN_CTRL, S->z, S->u, nb);
        trc_residual_forward(S->z, S->z, S->z0, nb * (size_t)d);
        for (int j = 0; j < L->n; j++)
            for (int i = 0; i < L->blocks; i++)
                block_forward(job, i, S, nb);
        for (size_t r = 0; r < nb; r++) {
            float *c = S->cat + r * (size_t)(d + U);
            memcpy(c, S->z + r * (size_t)d, (size_t)d * sizeof *c);
            memcpy(c + d, S->u + r * (size_t)U, (size_t)U * sizeof *c);
        }
        mlp_forward(P, ls + LIN_DEC0, L->dec2, ls + LIN_DEC3, S->cat, S->hid, S->r, nb);
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
                      C * (d + U),
                      C * U,
                      C * U};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        sizes[i] = (sizes[i] + 15) / 16 * 16; /* every slot on a cache line */
        total += sizes[i];
    }
    if (base) {
        float **slots[] = {&S->x, &S->hid, &S->z0, &S->z, &S->zin, &S->tmp, &S->cat, &S->u, &S->r};
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
    atomic_size_t *next; /* the next chunk to take, shared: threads take chunks as they come free
                          * (one vCPU of this VM runs ~10% slower than the other at times) */
} worker;

static void *worker_main(void *p) {
    const worker *w = p;
    const infer_job *job = w->job;
    for (size_t c; (c = atomic_fetch_add(w->next, 1)) < job->nchunks;) {
        size_t r0 = job->B * c / job->nchunks, r1 = job->B * (c + 1) / job->nchunks;
        chunk_forward(job, &w->S, r0, r1 - r0);
    }
    return NULL;
}

/* The table of Linears over the parameters as stored and the fused attention. */
static void lins_plain(const trc_model_layout *L, const float *P, const float *fused, lin *ls) {
    int s2 = L->in_dim, d = L->d, h = L->h, U = L->U;
    const struct {
        int id;
        trc_lin_off o;
        int in, out;
    } outer[] = {{LIN_ENC0, L->enc0, s2, h},    {LIN_ENC3, L->enc3, h, d},
                 {LIN_GEN0, L->gen0, d, h},     {LIN_GEN3, L->gen3, h, U},
                 {LIN_CTRL, L->ctrl_emb, U, d}, {LIN_DEC0, L->dec0, d + U, h},
                 {LIN_DEC3, L->dec3, h, U}};
    for (size_t k = 0; k < sizeof outer / sizeof outer[0]; k++)
        ls[outer[k].id] =
            (lin){P + outer[k].o.w, P + outer[k].o.b, outer[k].in, outer[k].out, 0, NULL};
    size_t dd = (size_t)d * d;
    for (int i = 0; i < L->blocks; i++) {
        const trc_block_off *o = &L->blk[i];
        lin *l = ls + BLK(i, 0);
        const float *F = fused ? fused + (size_t)i * (dd + d) : NULL;
        l[BLK_FUSED] = (lin){F, F ? F + dd : NULL, d, d, 0, NULL};
        l[BLK_FFN0] = (lin){P + o->ffn0.w, P + o->ffn0.b, d, h, 0, NULL};
        l[BLK_FFN3] = (lin){P + o->ffn3.w, P + o->ffn3.b, h, d, 0, NULL};
    }
}

/* The forward pass of B rows over a table of Linears (validated arguments). */
static int infer_run(const trc_model_layout *L, const float *P, const lin *lins, size_t B,
                     const float *x0, const float *target, const float *time_left, float *u_out,
                     float *iterates, int threads) {
    infer_job job = {L,  P,      lins,      B,     (B + CHUNK - 1) / CHUNK,
                     x0, target, time_left, u_out, iterates};
    size_t T = (size_t)threads < job.nchunks ? (size_t)threads : job.nchunks;
    size_t C = (B + job.nchunks - 1) / job.nchunks; /* rows of the largest chunk */
    size_t per = scratch_layout(L, C, NULL, NULL);
    float *buf = trc_linear_packed_alloc(T * per);
    if (!buf)
        return trc_fail(TRC_ENOMEM, "model infer: cannot allocate scratch for %zu rows", C);
    worker w[MAX_THREADS] = {{0}};
    atomic_size_t next;
    atomic_init(&next, 0);
    for (size_t t = 0; t < T; t++) {
        w[t].job = &job;
        scratch_layout(L, C, buf + t * per, &w[t].S);
        w[t].next = &next;
    }
    trc_parallel_run(worker_main, w, sizeof *w, T);
    free(buf);

    for (size_t i = 0; i < B * (size_t)L->U; i++)
        if (!isfinite(u_out[i]))
            return trc_fail(TRC_ENUMERIC, "model infer: output %zu (sample %zu) is not finite", i,
                            i / (size_t)L->U);
    return 0;
}

static int check_args(const float *x0, const float *target, const float *u_out, size_t B,
                      int threads) {
    if (!x0 || !target || !u_out)
        return trc_fail(TRC_EINVAL, "model infer: NULL input or output");
    if (B == 0 || B > (size_t)INT32_MAX / 4)
        return trc_fail(TRC_EINVAL, "model infer: batch size must be in [1, %d], got %zu",
                        INT32_MAX / 4, B);
    if (threads < 1 || threads > MAX_THREADS)
        return trc_fail(TRC_EINVAL, "model infer: threads must be in [1, %d], got %d", MAX_THREADS,
                        threads);
    return 0;
}

/* Builds the layout of a created model and checks it matches its parameters. */
static int model_layout(const trc_model *model, trc_model_layout *L) {
    if (!model || !model->params)
        return trc_fail(TRC_EINVAL, "model infer: model not created");
    int rc = trc_model_config_validate(&model->cfg);
    if (rc)
        return rc;
    trc_model_layout_build(&model->cfg, L, NULL, NULL);
    if (L->num_params != model->num_params)
        return trc_fail(TRC_EINVAL, "model infer: parameter count does not match the config");
    return 0;
}

int trc_single_infer(const trc_model *model, size_t B, const float *x0, const float *target,
                     const float *time_left, float *u_out, float *iterates, int threads) {
    /* one plan per call: packing the weights (one pass over them) costs less than a product of
     * a single row, and every batch size then runs the same kernels as trcd */
    int rc = check_args(x0, target, u_out, B, threads);
    if (rc)
        return rc;
    void *plan;
    if ((rc = trc_single_plan_create(model, &plan)))
        return rc;
    rc = trc_single_plan_run(plan, B, x0, target, time_left, u_out, iterates, threads);
    trc_single_plan_free(plan);
    return rc;
}

/* The plan of trc_single_plan_create, with bf16 weights when bf16 (linear_packed.h). */
static int plan_create(const trc_model *model, int bf16, void **out) {
    *out = NULL;
    trc_model_layout L;
    int rc = model_layout(model, &L);
    if (rc)
        return rc;
    trc_model_blas_single();
    size_t d = (size_t)L.d, nfb = (size_t)L.blocks * (d * d + d);
    float *fused = malloc(nfb * sizeof *fused);
    single_plan *plan = calloc(1, sizeof *plan);
    if (!fused || !plan) {
        free(fused);
        free(plan);
        return trc_fail(TRC_ENOMEM, "infer plan: out of memory");
    }
    trc_model_fuse_attention(&L, model->params, fused);
    lin src[NLIN];
    lins_plain(&L, model->params, fused, src);
    /* pack every Linear the fused forward uses; the fused biases are copied after them */
    int used[NLIN] = {0};
    for (int k = 0; k < LIN_BLOCKS; k++)
        used[k] = 1;
    for (int i = 0; i < L.blocks; i++)
        used[BLK(i, BLK_FUSED)] = used[BLK(i, BLK_FFN0)] = used[BLK(i, BLK_FFN3)] = 1;
    size_t total = (size_t)L.blocks * d, btotal = 0;
    for (int k = 0; k < NLIN; k++)
        if (used[k] && bf16)
            btotal += trc_linear_bf16_size(src[k].in, src[k].out);
        else if (used[k])
            total += trc_linear_packed_size(src[k].in, src[k].out);
    plan->buf = trc_linear_packed_alloc(total);
    plan->bbuf = bf16 ? trc_linear_bf16_alloc(btotal) : NULL;
    if (!plan->buf || (bf16 && !plan->bbuf)) {
        free(fused);
        trc_single_plan_free(plan);
        return trc_fail(TRC_ENOMEM, "infer plan: cannot allocate %zu packed weights",
                        total + btotal / 2);
    }
    float *p = plan->buf, *fb = plan->buf + total - (size_t)L.blocks * d;
    uint16_t *pb = plan->bbuf;
    for (int k = 0; k < NLIN; k++) {
        if (!used[k])
            continue;
        if (bf16) {
            trc_linear_bf16_pack(pb, src[k].W, src[k].in, src[k].out);
            plan->lins[k] = (lin){NULL, src[k].b, src[k].in, src[k].out, 1, pb};
            pb += trc_linear_bf16_size(src[k].in, src[k].out);
            continue;
        }
        trc_linear_pack(p, src[k].W, src[k].in, src[k].out);
        plan->lins[k] = (lin){p, src[k].b, src[k].in, src[k].out, 1, NULL};
        p += trc_linear_packed_size(src[k].in, src[k].out);
    }
    for (int i = 0; i < L.blocks; i++) {
        memcpy(fb + (size_t)i * d, src[BLK(i, BLK_FUSED)].b, d * sizeof *fb);
        plan->lins[BLK(i, BLK_FUSED)].b = fb + (size_t)i * d;
    }
    free(fused);
    plan->model = model;
    plan->L = L;
    *out = plan;
    return 0;
}

int trc_single_plan_create(const trc_model *model, void **out) {
    return plan_create(model, 0, out);
}

int trc_single_plan_create_bf16(const trc_model *model, void **out) {
    const char *why;
    *out = NULL;
    if (!trc_linear_bf16_available(&why))
        return trc_fail(TRC_EUNSUPPORTED, "infer plan: %s", why);
    return plan_create(model, 1, out);
}

void trc_single_plan_free(void *p) {
    single_plan *plan = p;
    if (!plan)
        return;
    free(plan->buf);
    free(plan->bbuf);
    free(plan);
}

int trc_single_plan_run(const void *p, size_t B, const float *x0, const float *target,
                        const float *time_left, float *u_out, float *iterates, int threads) {
    const single_plan *plan = p;
    int rc = check_args(x0, target, u_out, B, threads);
    if (rc)
        return rc;
    return infer_run(&plan->L, plan->model->params, plan->lins, B, x0, target, time_left, u_out,
                     iterates, threads);
}
