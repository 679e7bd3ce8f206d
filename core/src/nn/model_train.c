/* The "single" architecture's trainer (its ops in single.c; trc_trainer_* dispatches here): the
 * forward pass of model.md keeping every activation backward needs (each of the K*n*blocks
 * applications of the shared reasoning blocks included), the loss's rows (an objective, see
 * trc/objective.h) with its gradient at every iterate, and the hand-written backward into a
 * gradient buffer laid out like the parameters.
 *
 * Activations of reasoning block i are stored as [blocks][K*n][B][features], so that block i's
 * K*n applications form one contiguous [K*n*B, features] matrix. Attention is fused (see
 * trc_model_fuse_attention): each application computes zin (W_o V)^T + (W_o v + c_o), one
 * d x d product instead of two, and its backward one instead of three. Backward runs in phases:
 *  1. activation gradients, application by application (each depends on the previous one),
 *     keeping the gradient at every Linear's output;
 *  2. every Linear's weight gradient as ONE GEMM over all of its applications (an inner
 *     dimension of K*n*B rows instead of K*n short ones); the decoder and the control
 *     embedding, applied K times, likewise; for the attention M = sum of da^T zin (da the
 *     gradient at the attention output);
 *  3. dW_o = M V^T + dc_o v^T, dV = W_o^T M, dv = W_o^T dc_o (V, v the value rows of in_proj).
 * With threads > 1 the batch rows are split between threads for the forward pass and phase 1
 * (rows are independent; layer-norm parameter gradients go to per-thread partial sums, added
 * in a fixed order), whole weight gradients (or their output rows, see assign_jobs) for phase 2
 * and the output rows of phase 3; the threads are a team kept for the trainer's life
 * (base/pool.h). Each thread runs the kernels (kernels/) single-threaded. Results depend on the
 * thread count only through rounding and are bit-identical from run to run for a given count. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/pool.h"
#include "kernels/kernels.h"
#include "layers.h"
#include "linear_packed.h"
#include "model_layout.h"
#include "trc/error.h"
#include "trc/model.h"

/* Per-block-application activations and gradients; each pointer addresses [blocks][KN][B][f]. */
typedef struct block_acts {
    float *zin, *r1, *z1, *r2;  /* [.., d] input + z0, pre-norm1, norm1 out, pre-norm2 */
    float *H, *sig, *S;         /* [.., h] ffn0 output, its sigmoid, silu output */
    float *m1, *rs1, *m2, *rs2; /* [.., 1] layer norm statistics */
    float *da, *dF;             /* [.., d] grads of the attention and ffn3 outputs */
    float *dH;                  /* [.., h] grad of ffn0 output */
} block_acts;

/* A Linear -> silu -> LN -> Linear stack applied `count` times: each pointer is [count][B][f]. */
typedef struct mlp_acts {
    float *in;                            /* [.., k] input (decoder only: its [z, u] copy) */
    float *H, *sig, *S, *mean, *rstd, *N; /* pre-silu, sigmoid, silu out, LN stats, LN out */
    float *out;                           /* [.., o] last Linear output (decoders: after tanh) */
    float *dH, *dout;                     /* grads of the first and last Linear outputs */
} mlp_acts;

/* One weight gradient of phase 2: dW = dY^T X (and db = column sums of dY) over `rows`. */
typedef struct wgrad_job {
    const float *dY, *X;
    float *dW, *db;
    size_t rows;
    int in, out;
} wgrad_job;

/* A layer norm's parameter gradient: `C` weights at param offset w, biases at b; partial sums
 * at lw, lb in each thread's compact buffer. */
typedef struct ln_grad {
    size_t w, b, lw, lb;
    int C;
} ln_grad;

/* The forward pass's Linears, packed (linear_packed.h) at the start of every forward: packing
 * is one pass over the weights, and each is then applied to K*n*B rows without re-reading
 * them transposed. */
enum { PK_ENC0, PK_ENC3, PK_GEN0, PK_GEN3, PK_DEC0, PK_DEC3, PK_CTRL, PK_BLOCKS };
#define PK_BLK(i, k) (PK_BLOCKS + 3 * (i) + (k)) /* k: 0 fused attention, 1 ffn0, 2 ffn3 */
#define PK_COUNT (PK_BLOCKS + 3 * TRC_MAX_BLOCKS)

#define MAX_THREADS 64
#define MAX_LN (3 + 2 * TRC_MAX_BLOCKS)
#define MAX_JOBS (7 + 4 * TRC_MAX_BLOCKS)

typedef struct single_trainer {
    const trc_model *model;
    trc_model_layout L;
    size_t max_batch, B; /* B of the last successful forward, 0 if none */
    int threads;
    trc_pool *pool; /* threads > 1: the team that runs the phases (base/pool.h) */
    float *grads;
    float *arena;
    size_t arena_floats;
    float *fused; /* [blocks][d*d + d] fused attention of the current parameters */
    float *wpack; /* the forward pass's weights packed for the kernels, once per forward */
    const float *wp[PK_COUNT];
    float *M; /* [blocks][d, d] sum of da^T zin over the applications */
    /* layer norms: their parameter gradients, per-thread partial sums [threads][ln_floats] */
    ln_grad ln_enc, ln_gen, ln_dec, ln_n1[TRC_MAX_BLOCKS], ln_n2[TRC_MAX_BLOCKS];
    size_t ln_floats;
    float *ln_part;
    double loss_part[MAX_THREADS];
    /* inputs of the last forward */
    const float *in_x0, *in_target, *in_time_left; /* time_left may be NULL (1) */
    /* activations (see layout_arena) */
    float *igrad;              /* [K+1][B][U] d loss / d iterate, written by the loss */
    float *x, *z0, *iters, *v; /* [B,2s+1], [B,d], [K+1][B][U], [K][B][U] */
    mlp_acts enc, gen, dec;
    block_acts blk;
    float *dce; /* [K][B][d] grad of the control embedding output */
    /* per-row work space; threads use disjoint rows */
    float *zrun, *dz, *dz0, *dzw, *du, *dv, *wh, *wh2, *wcat;
    wgrad_job jobs[MAX_JOBS];
    int njobs;
    int job_order[MAX_JOBS]; /* phase 2 by whole jobs (by_job): largest first */
    int by_job;
    atomic_int next_job;       /* by_job: the next of job_order a thread takes */
    const trc_loss_rows *loss; /* during a forward */
    int final_only;            /* the last forward's loss has gradients at the last iterate only */
} single_trainer;

/* Every slot starts on a cache line (the arena is line-aligned): the kernels' panel loads and
 * stores then never straddle two lines. */
static size_t carve(float **p, float **slot, size_t n) {
    n = (n + 15) / 16 * 16;
    if (p) {
        *slot = *p;
        *p += n;
    }
    return n;
}

static size_t carve_mlp(float **p, mlp_acts *a, size_t count, size_t B, int k, int h, int o,
                        int own_input) {
    size_t t = 0, cb = count * B;
    if (own_input)
        t += carve(p, &a->in, cb * (size_t)k);
    float **hslots[] = {&a->H, &a->sig, &a->S, &a->N, &a->dH};
    for (size_t i = 0; i < sizeof hslots / sizeof hslots[0]; i++)
        t += carve(p, hslots[i], cb * (size_t)h);
    t += carve(p, &a->mean, cb);
    t += carve(p, &a->rstd, cb);
    t += carve(p, &a->out, cb * (size_t)o);
    t += carve(p, &a->dout, cb * (size_t)o);
    return t;
}

/* Lays out the arena for batch B (so that arrays are dense for this B); with base == NULL only
 * counts. Returns the floats used. */
static size_t layout_arena(single_trainer *tr, float *base, size_t B) {
    const trc_model_layout *L = &tr->L;
    float *p0 = base, **p = base ? &p0 : NULL;
    size_t d = (size_t)L->d, h = (size_t)L->h, U = (size_t)L->U, K = (size_t)L->K;
    size_t apps = (size_t)L->blocks * (size_t)L->K * (size_t)L->n * B;
    size_t t = 0;
    t += carve(p, &tr->igrad, (K + 1) * B * U);
    t += carve(p, &tr->x, B * (size_t)L->in_dim);
    t += carve(p, &tr->z0, B * d);
    t += carve(p, &tr->iters, (K + 1) * B * U);
    t += carve(p, &tr->v, K * B * U);
    t += carve_mlp(p, &tr->enc, 1, B, L->in_dim, L->h, L->d, 0);
    t += carve_mlp(p, &tr->gen, 1, B, L->d, L->h, L->U, 0);
    t += carve_mlp(p, &tr->dec, K, B, L->d + L->U, L->h, L->U, 1);
    block_acts *a = &tr->blk;
    float **dslots[] = {&a->zin, &a->r1, &a->z1, &a->r2, &a->da, &a->dF};
    for (size_t i = 0; i < sizeof dslots / sizeof dslots[0]; i++)
        t += carve(p, dslots[i], apps * d);
    float **hslots[] = {&a->H, &a->sig, &a->S, &a->dH};
    for (size_t i = 0; i < sizeof hslots / sizeof hslots[0]; i++)
        t += carve(p, hslots[i], apps * h);
    float **sslots[] = {&a->m1, &a->rs1, &a->m2, &a->rs2};
    for (size_t i = 0; i < sizeof sslots / sizeof sslots[0]; i++)
        t += carve(p, sslots[i], apps);
    t += carve(p, &tr->dce, K * B * d);
    float **wslots[] = {&tr->zrun, &tr->dz, &tr->dz0, &tr->dzw};
    for (size_t i = 0; i < sizeof wslots / sizeof wslots[0]; i++)
        t += carve(p, wslots[i], B * d);
    t += carve(p, &tr->du, B * U);
    t += carve(p, &tr->dv, B * U);
    t += carve(p, &tr->wh, B * h);
    t += carve(p, &tr->wh2, B * h);
    t += carve(p, &tr->wcat, B * (d + U));
    return t;
}

static ln_grad ln_entry(trc_lin_off param, int C, size_t *compact) {
    ln_grad g = {param.w, param.b, *compact, *compact + (size_t)C, C};
    *compact += 2 * (size_t)C;
    return g;
}

/* The forward pass's weights as [out, in] pointers with their shapes; counts the packed floats
 * and, with base, sets tr->wp to their places in it. */
static size_t pack_layout(single_trainer *tr, float *base) {
    const trc_model_layout *L = &tr->L;
    int s2 = L->in_dim, d = L->d, h = L->h, U = L->U;
    int shape[PK_COUNT][2] = {
        [PK_ENC0] = {s2, h},    [PK_ENC3] = {h, d}, [PK_GEN0] = {d, h}, [PK_GEN3] = {h, U},
        [PK_DEC0] = {d + U, h}, [PK_DEC3] = {h, U}, [PK_CTRL] = {U, d}};
    for (int i = 0; i < L->blocks; i++) {
        shape[PK_BLK(i, 0)][0] = shape[PK_BLK(i, 0)][1] = d;
        shape[PK_BLK(i, 1)][0] = d;
        shape[PK_BLK(i, 1)][1] = h;
        shape[PK_BLK(i, 2)][0] = h;
        shape[PK_BLK(i, 2)][1] = d;
    }
    size_t total = 0;
    for (int k = 0; k < PK_BLOCKS + 3 * L->blocks; k++) {
        if (base)
            tr->wp[k] = base + total;
        total += trc_linear_packed_size(shape[k][0], shape[k][1]);
    }
    return total;
}

/* Packs the current parameters (and fused attention) into tr->wpack. */
static void pack_weights(single_trainer *tr) {
    const trc_model_layout *L = &tr->L;
    const float *P = tr->model->params;
    int s2 = L->in_dim, d = L->d, h = L->h, U = L->U;
    pack_layout(tr, tr->wpack);
    const struct {
        int k;
        size_t w;
        int in, out;
    } outer[] = {{PK_ENC0, L->enc0.w, s2, h},    {PK_ENC3, L->enc3.w, h, d},
                 {PK_GEN0, L->gen0.w, d, h},     {PK_GEN3, L->gen3.w, h, U},
                 {PK_DEC0, L->dec0.w, d + U, h}, {PK_DEC3, L->dec3.w, h, U},
                 {PK_CTRL, L->ctrl_emb.w, U, d}};
    for (size_t j = 0; j < sizeof outer / sizeof outer[0]; j++)
        trc_linear_pack((float *)tr->wp[outer[j].k], P + outer[j].w, outer[j].in, outer[j].out);
    for (int i = 0; i < L->blocks; i++) {
        const trc_block_off *o = &L->blk[i];
        trc_linear_pack((float *)tr->wp[PK_BLK(i, 0)], tr->fused + (size_t)i * ((size_t)d * d + d),
                        d, d);
        trc_linear_pack((float *)tr->wp[PK_BLK(i, 1)], P + o->ffn0.w, d, h);
        trc_linear_pack((float *)tr->wp[PK_BLK(i, 2)], P + o->ffn3.w, h, d);
    }
}

int trc_single_trainer_create(const trc_model *model, size_t max_batch, void **out) {
    *out = NULL;
    if (!model || !model->params)
        return trc_fail(TRC_EINVAL, "trainer create: model not created");
    if (max_batch == 0 || max_batch > (1u << 20))
        return trc_fail(TRC_EINVAL, "trainer create: max batch must be in [1, %u], got %zu",
                        1u << 20, max_batch);
    int rc = trc_model_config_validate(&model->cfg);
    if (rc)
        return rc;
    single_trainer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return trc_fail(TRC_ENOMEM, "trainer create: out of memory");
    tr->model = model;
    tr->threads = 1;
    trc_model_layout *L = &tr->L;
    trc_model_layout_build(&model->cfg, L, NULL, NULL);
    if (L->num_params != model->num_params) {
        free(tr);
        return trc_fail(TRC_EINVAL, "trainer create: parameter count does not match the config");
    }
    size_t c = 0;
    tr->ln_enc = ln_entry(L->enc2, L->h, &c);
    tr->ln_gen = ln_entry(L->gen2, L->h, &c);
    tr->ln_dec = ln_entry(L->dec2, L->h, &c);
    for (int i = 0; i < L->blocks; i++) {
        tr->ln_n1[i] = ln_entry(L->blk[i].norm1, L->d, &c);
        tr->ln_n2[i] = ln_entry(L->blk[i].norm2, L->d, &c);
    }
    tr->ln_floats = c;
    trc_model_blas_single();
    tr->max_batch = max_batch;
    tr->arena_floats = layout_arena(tr, NULL, max_batch);
    tr->arena = trc_linear_packed_alloc(tr->arena_floats);
    tr->grads = trc_linear_packed_alloc(model->num_params);
    if (tr->grads)
        memset(tr->grads, 0, model->num_params * sizeof(float));
    tr->ln_part = malloc(tr->ln_floats * sizeof(float));
    size_t d = (size_t)L->d;
    tr->fused = malloc((size_t)L->blocks * (d * d + d) * sizeof(float));
    tr->wpack = trc_linear_packed_alloc(pack_layout(tr, NULL));
    tr->M = trc_linear_packed_alloc((size_t)L->blocks * d * d);
    if (!tr->arena || !tr->grads || !tr->ln_part || !tr->fused || !tr->M || !tr->wpack) {
        size_t mb = (tr->arena_floats + model->num_params) * sizeof(float) >> 20;
        trc_single_trainer_free(tr);
        return trc_fail(TRC_ENOMEM, "trainer create: cannot allocate %zu MB of activations", mb);
    }
    *out = tr;
    return 0;
}

int trc_single_trainer_set_threads(void *p, int threads) {
    single_trainer *tr = p;
    if (threads < 1 || threads > MAX_THREADS)
        return trc_fail(TRC_EINVAL, "trainer threads must be in [1, %d], got %d", MAX_THREADS,
                        threads);
    if (threads == tr->threads)
        return 0;
    float *part = malloc((size_t)threads * tr->ln_floats * sizeof *part);
    trc_pool *pool = threads > 1 ? trc_pool_create((size_t)threads, TRC_POOL_SPIN_NS) : NULL;
    if (!part || (threads > 1 && !pool)) {
        free(part);
        trc_pool_free(pool);
        return trc_fail(TRC_ENOMEM, "trainer threads: out of memory");
    }
    free(tr->ln_part);
    tr->ln_part = part;
    trc_pool_free(tr->pool);
    tr->pool = pool;
    tr->threads = threads;
    tr->B = 0; /* partial sums of a previous forward are gone */
    return 0;
}

void trc_single_trainer_free(void *p) {
    single_trainer *tr = p;
    if (!tr)
        return;
    trc_pool_free(tr->pool);
    free(tr->arena);
    free(tr->grads);
    free(tr->ln_part);
    free(tr->fused);
    free(tr->wpack);
    free(tr->M);
    free(tr);
}

float *trc_single_trainer_grads(void *p) {
    single_trainer *tr = p;
    return tr->grads;
}

/* Runs fn(tr, t) for t = 0 .. threads-1, t = 0 on the calling thread. */
typedef void (*part_fn)(single_trainer *tr, int t);

typedef struct part_arg {
    single_trainer *tr;
    part_fn fn;
    int t;
} part_arg;

static void *part_main(void *p) {
    part_arg *a = p;
    a->fn(a->tr, a->t);
    return NULL;
}

/* Never fails: a part whose thread cannot be started runs on the calling thread instead. */
static void run_parts(single_trainer *tr, part_fn fn) {
    int T = tr->threads;
    part_arg args[MAX_THREADS];
    for (int t = 0; t < T; t++)
        args[t] = (part_arg){tr, fn, t};
    trc_pool_run(tr->pool, part_main, args, sizeof *args, (size_t)T);
}

/* Rows of thread t: [*r0, *r0 + return). */
static size_t rows_of(const single_trainer *tr, int t, size_t *r0) {
    size_t B = tr->B, T = (size_t)tr->threads;
    *r0 = B * (size_t)t / T;
    return B * ((size_t)t + 1) / T - *r0;
}

/* ---- forward ---- */

/* Application c of a Linear-silu-LN-Linear stack on rows [r0, r0+nb): in: [nb, k] -> out. */
static void mlp_forward(const float *P, const float *Wp0, const float *Wp3, trc_lin_off l0,
                        trc_lin_off ln, trc_lin_off l3, const mlp_acts *a, size_t c, size_t B,
                        size_t r0, size_t nb, const float *in, int k, int h, int o) {
    size_t row = c * B + r0, hb = row * (size_t)h;
    float *H = a->H + hb, *sig = a->sig + hb, *S = a->S + hb, *N = a->N + hb;
    trc_linear_packed_silu_forward(S, H, sig, in, Wp0, P + l0.b, nb, k, h);
    trc_layernorm_forward(N, a->mean + row, a->rstd + row, S, P + ln.w, P + ln.b, nb, h);
    trc_linear_packed_forward_cold(a->out + row * (size_t)o, N, Wp3, P + l3.b, NULL, nb, h, o);
}

/* Application `app` (= k*n + j) of block i on rows [r0, r0+nb): z -> zout (may alias). */
static void block_forward(const single_trainer *tr, int i, size_t app, size_t r0, size_t nb,
                          const float *z, float *zout) {
    const trc_model_layout *L = &tr->L;
    const float *P = tr->model->params;
    const trc_block_off *o = &L->blk[i];
    size_t KN = (size_t)L->K * (size_t)L->n, row = ((size_t)i * KN + app) * tr->B + r0;
    size_t d = (size_t)L->d, h = (size_t)L->h, nd = nb * d;
    const block_acts *a = &tr->blk;
    float *zin = a->zin + row * d, *r1 = a->r1 + row * d;
    const float *F = tr->fused + (size_t)i * (d * d + d);
    float *z1 = a->z1 + row * d, *r2 = a->r2 + row * d;
    float *H = a->H + row * h, *sig = a->sig + row * h, *S = a->S + row * h;
    trc_residual_forward(zin, z, tr->z0 + r0 * d, nd);
    /* r1 = zin + attention(zin), the attention fused (one Linear) */
    trc_linear_packed_forward_cold(r1, zin, tr->wp[PK_BLK(i, 0)], F + d * d, zin, nb, L->d, L->d);
    trc_layernorm_forward(z1, a->m1 + row, a->rs1 + row, r1, P + o->norm1.w, P + o->norm1.b, nb,
                          L->d);
    trc_linear_packed_silu_forward(S, H, sig, z1, tr->wp[PK_BLK(i, 1)], P + o->ffn0.b, nb, L->d,
                                   L->h);
    trc_linear_packed_forward_cold(r2, S, tr->wp[PK_BLK(i, 2)], P + o->ffn3.b, z1, nb, L->h, L->d);
    trc_layernorm_forward(zout, a->m2 + row, a->rs2 + row, r2, P + o->norm2.w, P + o->norm2.b, nb,
                          L->d);
}

static void forward_part(single_trainer *tr, int t) {
    size_t r0, nb = rows_of(tr, t, &r0);
    tr->loss_part[t] = 0.0;
    if (nb == 0)
        return;
    const trc_model_layout *L = &tr->L;
    const float *P = tr->model->params;
    size_t B = tr->B;
    int s = L->s, d = L->d, h = L->h, U = L->U, in = L->in_dim;
    size_t nU = nb * (size_t)U, BU = B * (size_t)U, nd = nb * (size_t)d;

    float *x = tr->x + r0 * (size_t)in;
    for (size_t r = 0; r < nb; r++) {
        memcpy(x + r * (size_t)in, tr->in_x0 + (r0 + r) * (size_t)s, (size_t)s * sizeof *x);
        memcpy(x + r * (size_t)in + s, tr->in_target + (r0 + r) * (size_t)s, (size_t)s * sizeof *x);
        x[r * (size_t)in + 2 * s] = tr->in_time_left ? tr->in_time_left[r0 + r] : 1.0f;
    }
    float *z0 = tr->z0 + r0 * d;
    mlp_forward(P, tr->wp[PK_ENC0], tr->wp[PK_ENC3], L->enc0, L->enc2, L->enc3, &tr->enc, 0, B, r0,
                nb, x, in, h, d);
    memcpy(z0, tr->enc.out + r0 * d, nd * sizeof *z0);
    mlp_forward(P, tr->wp[PK_GEN0], tr->wp[PK_GEN3], L->gen0, L->gen2, L->gen3, &tr->gen, 0, B, r0,
                nb, z0, d, h, U);
    trc_tanhscale_forward(tr->iters + r0 * U, tr->gen.out + r0 * U, L->bound, nU);

    float *z = tr->zrun + r0 * d;
    for (int k = 0; k < L->K; k++) {
        const float *u = tr->iters + (size_t)k * BU + r0 * U;
        trc_linear_packed_forward_cold(z, u, tr->wp[PK_CTRL], P + L->ctrl_emb.b, NULL, nb, U, d);
        trc_residual_forward(z, z, z0, nd);
        for (int j = 0; j < L->n; j++)
            for (int i = 0; i < L->blocks; i++)
                block_forward(tr, i, (size_t)k * L->n + j, r0, nb, z, z);
        float *cat = tr->dec.in + ((size_t)k * B + r0) * (d + U);
        for (size_t r = 0; r < nb; r++) {
            memcpy(cat + r * (size_t)(d + U), z + r * (size_t)d, (size_t)d * sizeof *z);
            memcpy(cat + r * (size_t)(d + U) + d, u + r * (size_t)U, (size_t)U * sizeof *u);
        }
        mlp_forward(P, tr->wp[PK_DEC0], tr->wp[PK_DEC3], L->dec0, L->dec2, L->dec3, &tr->dec,
                    (size_t)k, B, r0, nb, cat, d + U, h, U);
        size_t off = (size_t)k * BU + r0 * U;
        float *rk = tr->dec.out + off, *vk = tr->v + off;
        trc_tanhscale_forward(rk, rk, 0.5f * L->bound, nU);
        trc_residual_forward(vk, u, rk, nU);
        trc_clamp_forward(tr->iters + off + BU, vk, L->bound, nU);
    }
    tr->loss_part[t] = tr->loss->rows(tr->loss->ctx, tr->iters, r0, r0 + nb, tr->igrad);
}

int trc_single_trainer_forward(void *p, size_t B, const float *x0, const float *target,
                               const float *time_left, const trc_loss_rows *loss, float *u_out,
                               double *loss_sum) {
    single_trainer *tr = p;
    if (B == 0 || B > tr->max_batch)
        return trc_fail(TRC_EINVAL, "trainer forward: batch size must be in [1, %zu], got %zu",
                        tr->max_batch, B);
    layout_arena(tr, tr->arena, B);
    trc_model_fuse_attention(&tr->L, tr->model->params, tr->fused);
    pack_weights(tr);
    tr->B = B;
    tr->in_x0 = x0;
    tr->in_target = target;
    tr->in_time_left = time_left;
    tr->loss = loss;
    run_parts(tr, forward_part);
    tr->in_x0 = tr->in_target = tr->in_time_left = NULL;
    tr->loss = NULL;
    tr->final_only = loss->final_only;
    double acc = 0.0;
    for (int t = 0; t < tr->threads; t++)
        acc += tr->loss_part[t];
    *loss_sum = acc;
    size_t nU = B * (size_t)tr->L.U;
    if (u_out)
        memcpy(u_out, tr->iters + (size_t)tr->L.K * nU, nU * sizeof *u_out);
    return 0;
}

/* ---- backward, phase 1: activation gradients on rows [r0, r0+nb) ---- */

/* Application c of a stack, given a->dout: keeps a->dH (grad of the first Linear's output),
 * adds the input gradient into din ([nb, k], NULL to skip) and the LN parameter gradients into
 * the partial sums lw, lb. */
static void mlp_backward_acts(const single_trainer *tr, trc_lin_off l0, trc_lin_off ln,
                              trc_lin_off l3, const mlp_acts *a, size_t c, size_t r0, size_t nb,
                              int k, int h, int o, float *lw, float *lb, float *din) {
    const float *P = tr->model->params;
    size_t row = c * tr->B + r0, hb = row * (size_t)h, nh = nb * (size_t)h;
    float *dH = a->dH + hb, *gN = tr->wh + r0 * (size_t)h, *gS = tr->wh2 + r0 * (size_t)h;
    memset(gN, 0, nh * sizeof *gN);
    trc_linear_backward_input(gN, a->dout + row * (size_t)o, P + l3.w, nb, h, o);
    memset(gS, 0, nh * sizeof *gS);
    trc_layernorm_backward(gS, lw, lb, gN, a->S + hb, P + ln.w, a->mean + row, a->rstd + row, nb,
                           h);
    memset(dH, 0, nh * sizeof *dH);
    trc_silu_backward(dH, gS, a->H + hb, a->sig + hb, nh);
    if (din)
        trc_linear_backward_input(din, dH, P + l0.w, nb, k, h);
}

/* Application `app` of block i: tr->dz (grad of its output) -> tr->dz (grad of its input z);
 * dz0 += the context path. Keeps da, dH, dF for phase 2. */
static void block_backward(single_trainer *tr, int i, size_t app, size_t r0, size_t nb,
                           float *lng) {
    const trc_model_layout *L = &tr->L;
    const float *P = tr->model->params;
    const trc_block_off *o = &L->blk[i];
    size_t KN = (size_t)L->K * (size_t)L->n, row = ((size_t)i * KN + app) * tr->B + r0;
    size_t d = (size_t)L->d, h = (size_t)L->h, nd = nb * d;
    const block_acts *a = &tr->blk;
    float *dF = a->dF + row * d, *da = a->da + row * d;
    const float *F = tr->fused + (size_t)i * (d * d + d);
    float *dH = a->dH + row * h, *gz1 = tr->dzw + r0 * d;
    float *dz = tr->dz + r0 * d;
    const ln_grad *n1 = &tr->ln_n1[i], *n2 = &tr->ln_n2[i];

    /* dF: grad of r2 = z1 + ffn3(..); gz1 the same (residual: grad of z1) */
    trc_layernorm_backward_set(dF, gz1, lng + n2->lw, lng + n2->lb, dz, a->r2 + row * d,
                               P + o->norm2.w, a->m2 + row, a->rs2 + row, nb, L->d);
    /* dH = (dF W3) silu'(H), the silu's backward in the product's epilogue */
    trc_linear_backward_input_dsilu(dH, dF, P + o->ffn3.w, a->H + row * h, a->sig + row * h, nb,
                                    L->h, L->d);
    trc_linear_backward_input(gz1, dH, P + o->ffn0.w, nb, L->d, L->h);
    /* da: grad of r1 = zin + out_proj(..); dz the same (residual: grad of zin) */
    trc_layernorm_backward_set(da, dz, lng + n1->lw, lng + n1->lb, gz1, a->r1 + row * d,
                               P + o->norm1.w, a->m1 + row, a->rs1 + row, nb, L->d);
    trc_linear_backward_input(dz, da, F, nb, L->d, L->d); /* attention, fused */
    trc_residual_backward(tr->dz0 + r0 * d, dz, nd);      /* zin = z + z0 */
}

static void backward_acts(single_trainer *tr, int t) {
    float *lng = tr->ln_part + (size_t)t * tr->ln_floats;
    memset(lng, 0, tr->ln_floats * sizeof *lng);
    size_t r0, nb = rows_of(tr, t, &r0);
    if (nb == 0)
        return;
    const trc_model_layout *L = &tr->L;
    const float *P = tr->model->params;
    size_t B = tr->B, d = (size_t)L->d, U = (size_t)L->U, BU = B * U, nU = nb * U, nd = nb * d;
    int h = L->h;
    float *du = tr->du + r0 * U, *dv = tr->dv + r0 * U, *dz = tr->dz + r0 * d;
    float *dz0 = tr->dz0 + r0 * d, *wcat = tr->wcat + r0 * (d + U);
    memset(dz0, 0, nd * sizeof *dz0);

    /* the loss's gradient at the last iterate; the others join as the pass reaches them */
    memcpy(du, tr->igrad + (size_t)L->K * BU + r0 * U, nU * sizeof *du);

    for (int k = L->K - 1; k >= 0; k--) {
        size_t off = (size_t)k * BU + r0 * U;
        /* u_{k+1} = clamp(u_k + (b/2) tanh(dec([z, u_k])), -b, b) */
        memset(dv, 0, nU * sizeof *dv);
        trc_clamp_backward(dv, du, tr->v + off, L->bound, nU);
        memcpy(du, dv, nU * sizeof *du); /* residual: grad of u_k so far */
        float *dout = tr->dec.dout + off;
        memset(dout, 0, nU * sizeof *dout);
        trc_tanhscale_backward(dout, dv, tr->dec.out + off, 0.5f * L->bound, nU);
        memset(wcat, 0, nb * (d + U) * sizeof *wcat);
        mlp_backward_acts(tr, L->dec0, L->dec2, L->dec3, &tr->dec, (size_t)k, r0, nb, L->d + L->U,
                          h, L->U, lng + tr->ln_dec.lw, lng + tr->ln_dec.lb, wcat);
        for (size_t r = 0; r < nb; r++) {
            const float *c = wcat + r * (d + U);
            memcpy(dz + r * d, c, d * sizeof *c);
            for (size_t j = 0; j < U; j++)
                du[r * U + j] += c[d + j];
        }
        for (int j = L->n - 1; j >= 0; j--)
            for (int i = L->blocks - 1; i >= 0; i--)
                block_backward(tr, i, (size_t)k * L->n + j, r0, nb, lng);
        /* z = z0 + control_embedding(u_k) */
        trc_residual_backward(dz0, dz, nd);
        float *dce = tr->dce + (size_t)k * B * d + r0 * d;
        memcpy(dce, dz, nd * sizeof *dce);
        trc_linear_backward_input(du, dce, P + L->ctrl_emb.w, nb, L->U, L->d);
        if (!tr->final_only) /* d loss / d u_k of the iterate itself */
            trc_residual_backward(du, tr->igrad + off, nU);
    }

    /* u_0 = b tanh(gen(z0)) */
    memset(tr->gen.dout + r0 * U, 0, nU * sizeof(float));
    trc_tanhscale_backward(tr->gen.dout + r0 * U, du, tr->iters + r0 * U, L->bound, nU);
    mlp_backward_acts(tr, L->gen0, L->gen2, L->gen3, &tr->gen, 0, r0, nb, L->d, h, L->U,
                      lng + tr->ln_gen.lw, lng + tr->ln_gen.lb, dz0);
    /* z0 = enc(x); the input needs no gradient */
    memcpy(tr->enc.dout + r0 * d, dz0, nd * sizeof *dz0);
    mlp_backward_acts(tr, L->enc0, L->enc2, L->enc3, &tr->enc, 0, r0, nb, L->in_dim, h, L->d,
                      lng + tr->ln_enc.lw, lng + tr->ln_enc.lb, NULL);
}

/* ---- backward, phase 2: weight gradients, output rows split between threads ---- */

static void add_job_to(single_trainer *tr, float *dW, float *db, const float *dY, const float *X,
                       size_t rows, int in, int out) {
    tr->jobs[tr->njobs++] = (wgrad_job){dY, X, dW, db, rows, in, out};
}

static void add_job(single_trainer *tr, trc_lin_off p, const float *dY, const float *X, size_t rows,
                    int in, int out) {
    add_job_to(tr, tr->grads + p.w, tr->grads + p.b, dY, X, rows, in, out);
}

static void assign_jobs(single_trainer *tr);

static void make_jobs(single_trainer *tr) {
    const trc_model_layout *L = &tr->L;
    size_t B = tr->B, K = (size_t)L->K, KN = K * (size_t)L->n, d = (size_t)L->d;
    size_t h = (size_t)L->h;
    tr->njobs = 0;
    add_job(tr, L->enc0, tr->enc.dH, tr->x, B, L->in_dim, L->h);
    add_job(tr, L->enc3, tr->enc.dout, tr->enc.N, B, L->h, L->d);
    add_job(tr, L->gen0, tr->gen.dH, tr->z0, B, L->d, L->h);
    add_job(tr, L->gen3, tr->gen.dout, tr->gen.N, B, L->h, L->U);
    add_job(tr, L->dec0, tr->dec.dH, tr->dec.in, K * B, L->d + L->U, L->h);
    add_job(tr, L->dec3, tr->dec.dout, tr->dec.N, K * B, L->h, L->U);
    add_job(tr, L->ctrl_emb, tr->dce, tr->iters, K * B, L->U, L->d);
    const block_acts *a = &tr->blk;
    for (int i = 0; i < L->blocks; i++) {
        const trc_block_off *o = &L->blk[i];
        size_t row = (size_t)i * KN * B, rows = KN * B;
        /* M_i = da^T zin; its column sums are the out_proj bias gradient */
        add_job_to(tr, tr->M + (size_t)i * d * d, tr->grads + o->out.b, a->da + row * d,
                   a->zin + row * d, rows, L->d, L->d);
        add_job(tr, o->ffn0, a->dH + row * h, a->z1 + row * d, rows, L->d, L->h);
        add_job(tr, o->ffn3, a->dF + row * d, a->S + row * h, rows, L->h, L->d);
    }
    assign_jobs(tr);
}

/* Phase 2's split: whole weight gradients, each thread taking the largest one left, when that
 * balances within 10% (the medium model on two threads does); else the output rows of every one. A
 * whole gradient reads its dY and X once, from memory (they were written long before); split by
 * rows, every thread read all of X again, and two threads spent 29% more CPU in this phase than
 * one. Taking them as the threads come free also evens out a slower core (this VM's vCPUs differ by
 * ~10%). Either way each output is one thread's full sum in the same order: the same bits. */
static void assign_jobs(single_trainer *tr) {
    int T = tr->threads;
    double load[MAX_THREADS] = {0}, total = 0.0;
    int done[MAX_JOBS] = {0};
    for (int n = 0; n < tr->njobs; n++) {
        int big = -1;
        double most = -1.0;
        for (int j = 0; j < tr->njobs; j++) {
            const wgrad_job *w = &tr->jobs[j];
            double macs = (double)w->rows * w->in * w->out;
            if (!done[j] && macs > most) {
                most = macs;
                big = j;
            }
        }
        int least = 0; /* the balance of equal threads taking them in this order */
        for (int t = 1; t < T; t++)
            if (load[t] < load[least])
                least = t;
        done[big] = 1;
        tr->job_order[n] = big;
        load[least] += most;
        total += most;
    }
    double worst = 0.0;
    for (int t = 0; t < T; t++)
        worst = load[t] > worst ? load[t] : worst;
    tr->by_job = T > 1 && worst <= 1.1 * total / T;
    atomic_store(&tr->next_job, 0);
}

static void weight_grad_rows(const wgrad_job *w, int o0, int o1) {
    /* dW[o0:o1] = dY[:, o0:o1]^T X; db[o0:o1] = column sums of dY[:, o0:o1] */
    trc_linear_weight_grad(w->dW + (size_t)o0 * w->in, w->db + o0, w->dY + o0, (size_t)w->out, w->X,
                           w->rows, w->in, o1 - o0, 0);
}

static void backward_params(single_trainer *tr, int t) {
    if (tr->by_job) {
        for (int n; (n = atomic_fetch_add(&tr->next_job, 1)) < tr->njobs;) {
            const wgrad_job *w = &tr->jobs[tr->job_order[n]];
            weight_grad_rows(w, 0, w->out);
        }
        return;
    }
    int T = tr->threads;
    for (int j = 0; j < tr->njobs; j++) {
        const wgrad_job *w = &tr->jobs[j];
        int o0 = (int)((long)w->out * t / T), o1 = (int)((long)w->out * (t + 1) / T);
        if (o1 > o0)
            weight_grad_rows(w, o0, o1);
    }
}

/* Phase 3: W_o and the value rows of in_proj from M (rows split between threads). */
static void backward_attention(single_trainer *tr, int t) {
    const trc_model_layout *L = &tr->L;
    const float *P = tr->model->params;
    float *G = tr->grads;
    int d = L->d, T = tr->threads;
    int a0 = (int)((long)d * t / T), a1 = (int)((long)d * (t + 1) / T);
    if (a1 <= a0)
        return;
    for (int i = 0; i < L->blocks; i++) {
        const trc_block_off *o = &L->blk[i];
        const float *M = tr->M + (size_t)i * d * d, *Wo = P + o->out.w;
        const float *V = P + o->in_w + 2 * (size_t)d * d;
        const float *v = P + o->in_b + 2 * (size_t)d, *dc = G + o->out.b;
        float *dWo = G + o->out.w + (size_t)a0 * d, *dV = G + o->in_w + 2 * (size_t)d * d;
        float *dv = G + o->in_b + 2 * (size_t)d;
        /* dW_o[a0:a1] = M[a0:a1] V^T + dc_o[a0:a1] v^T  (the attention input is V zin + v) */
        trc_gemm(&(trc_gemm_args){.M = a1 - a0,
                                  .N = d,
                                  .K = d,
                                  .A = M + (size_t)a0 * d,
                                  .rsa = (size_t)d,
                                  .csa = 1,
                                  .B = V,
                                  .ldb = (size_t)d,
                                  .btrans = 1,
                                  .C = dWo,
                                  .ldc = (size_t)d});
        for (int a = a0; a < a1; a++)
            for (int j = 0; j < d; j++)
                dWo[(size_t)(a - a0) * d + j] += dc[a] * v[j];
        /* dV[a0:a1] = W_o[:, a0:a1]^T M;  dv[a0:a1] = W_o[:, a0:a1]^T dc_o */
        trc_gemm(&(trc_gemm_args){.M = a1 - a0,
                                  .N = d,
                                  .K = d,
                                  .A = Wo + a0,
                                  .rsa = 1,
                                  .csa = (size_t)d,
                                  .B = M,
                                  .ldb = (size_t)d,
                                  .pstride = TRC_PANEL,
                                  .C = dV + (size_t)a0 * d,
                                  .ldc = (size_t)d});
        for (int a = a0; a < a1; a++) {
            float acc = 0.0f;
            for (int k = 0; k < d; k++)
                acc += Wo[(size_t)k * d + a] * dc[k];
            dv[a] = acc;
        }
    }
}

/* Zeroes the parameters that take no part (error encoder and embedding, query/key rows) and
 * writes the layer-norm gradients from the per-thread partial sums, added in thread order. */
static void finish_grads(single_trainer *tr) {
    const trc_model_layout *L = &tr->L;
    float *G = tr->grads;
    size_t d = (size_t)L->d;
    /* error encoder: contiguous from err0.w to the end of err3.b; error embedding likewise */
    memset(G + L->err0.w, 0, (L->err3.b + d - L->err0.w) * sizeof *G);
    memset(G + L->err_emb.w, 0, (L->err_emb.b + d - L->err_emb.w) * sizeof *G);
    for (int i = 0; i < L->blocks; i++) {
        memset(G + L->blk[i].in_w, 0, 2 * d * d * sizeof *G);
        memset(G + L->blk[i].in_b, 0, 2 * d * sizeof *G);
    }
    const ln_grad *lns[MAX_LN];
    int nln = 0;
    lns[nln++] = &tr->ln_enc;
    lns[nln++] = &tr->ln_gen;
    lns[nln++] = &tr->ln_dec;
    for (int i = 0; i < L->blocks; i++) {
        lns[nln++] = &tr->ln_n1[i];
        lns[nln++] = &tr->ln_n2[i];
    }
    for (int j = 0; j < nln; j++) {
        const ln_grad *g = lns[j];
        for (int c = 0; c < g->C; c++) {
            float w = 0.0f, b = 0.0f;
            for (int t = 0; t < tr->threads; t++) {
                const float *part = tr->ln_part + (size_t)t * tr->ln_floats;
                w += part[g->lw + c];
                b += part[g->lb + c];
            }
            G[g->w + c] = w;
            G[g->b + c] = b;
        }
    }
}

int trc_single_trainer_backward(void *p) {
    single_trainer *tr = p;
    if (tr->B == 0)
        return trc_fail(TRC_EINVAL, "trainer backward: no successful forward to differentiate");
    make_jobs(tr);
    run_parts(tr, backward_acts);
    run_parts(tr, backward_params);
    run_parts(tr, backward_attention);
    finish_grads(tr); /* the caller (train/trainer.c) checks that they are finite */
    return 0;
}
