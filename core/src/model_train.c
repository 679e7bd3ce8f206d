/* trc_trainer: the forward pass of model.md keeping every activation backward needs (each of
 * the K*n*blocks applications of the shared reasoning blocks included), the MSE loss, and the
 * hand-written backward into a gradient buffer laid out like the parameters.
 *
 * Activations of reasoning block i are stored as [blocks][K*n][B][features], so that block i's
 * K*n applications are one contiguous [K*n*B, features] matrix: backward first propagates the
 * activation gradients application by application (small sgemms, unavoidable: each depends on
 * the previous), keeping them, and then forms each shared weight's gradient with ONE sgemm over
 * all applications (a K*n*B-long inner dimension instead of K*n short ones). The decoder and the
 * control embedding, applied K times, are treated the same way. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "model_layout.h"
#include "trc/error.h"
#include "trc/model.h"

/* Per-block-application activations and gradients; each pointer addresses [blocks][KN][B][f]. */
typedef struct block_acts {
    float *zin, *A, *r1, *z1, *r2;   /* [.., d] block input + z0, V z + v, pre-norm1, norm1 out, pre-norm2 */
    float *H, *sig, *S;              /* [.., h] ffn0 output, its sigmoid, silu output */
    float *m1, *rs1, *m2, *rs2;      /* [.., 1] layer norm statistics */
    float *dA, *da, *dF;             /* [.., d] grads of V z + v, of out_proj output, of ffn3 output */
    float *dH;                       /* [.., h] grad of ffn0 output */
} block_acts;

/* A Linear -> silu -> LN -> Linear stack applied `count` times: [count][B][f]. */
typedef struct mlp_acts {
    float *in;                  /* [.., k] input (owned copy for the decoder: [z, u]) */
    float *H, *sig, *S, *mean, *rstd, *N; /* hidden pre-silu, sigmoid, silu out, LN stats, LN out */
    float *out;                 /* [.., o] output of the last Linear (after tanh scaling for decoders) */
    float *dH, *dout;           /* grads of the first and last Linear outputs */
} mlp_acts;

struct trc_trainer {
    const trc_model *model;
    trc_model_layout L;
    size_t max_batch, B; /* B of the last forward, 0 if none */
    float *grads;
    float *arena;
    size_t arena_floats;
    const float *u_expert; /* of the last forward, copied */
    float *target_u;       /* [B, U] */
    /* activations */
    float *x, *z0, *iters, *v; /* [B, 2s+1], [B, d], [K+1][B][U], [K][B][U] pre-clamp */
    mlp_acts enc, gen, dec;
    block_acts blk;
    float *dce; /* [K][B][d] grad of the control embedding output */
    /* backward work */
    float *dz, *dz0, *dzw, *du, *dv, *wh, *wh2, *wcat; /* [B, d] x3, [B, U] x2, [B, h] x2, [B, d+U] */
};

/* Number of floats an mlp_acts with `count` applications needs for B rows. */
static size_t carve(float **p, float **slot, size_t n)
{
    if (slot)
        *slot = p ? *p : NULL;
    if (p && *p)
        *p += n;
    return n;
}

static size_t carve_mlp(float **p, mlp_acts *a, size_t count, size_t B, int k, int h, int o,
                        int own_input)
{
    size_t t = 0, cb = count * B;
    t += carve(p, own_input ? &a->in : NULL, own_input ? cb * (size_t)k : 0);
    t += carve(p, &a->H, cb * (size_t)h);
    t += carve(p, &a->sig, cb * (size_t)h);
    t += carve(p, &a->S, cb * (size_t)h);
    t += carve(p, &a->mean, cb);
    t += carve(p, &a->rstd, cb);
    t += carve(p, &a->N, cb * (size_t)h);
    t += carve(p, &a->out, cb * (size_t)o);
    t += carve(p, &a->dH, cb * (size_t)h);
    t += carve(p, &a->dout, cb * (size_t)o);
    return t;
}

/* Lays out the arena for batch B; with p == NULL only counts. Returns floats used. */
static size_t layout_arena(struct trc_trainer *tr, float *base, size_t B)
{
    const trc_model_layout *L = &tr->L;
    float *p0 = base, **p = base ? &p0 : NULL;
    size_t d = (size_t)L->d, h = (size_t)L->h, U = (size_t)L->U, K = (size_t)L->K;
    size_t apps = (size_t)L->blocks * (size_t)L->K * (size_t)L->n * B;
    size_t t = 0;
    t += carve(p, &tr->target_u, B * U);
    t += carve(p, &tr->x, B * (size_t)L->in_dim);
    t += carve(p, &tr->z0, B * d);
    t += carve(p, &tr->iters, (K + 1) * B * U);
    t += carve(p, &tr->v, K * B * U);
    t += carve_mlp(p, &tr->enc, 1, B, L->in_dim, L->h, L->d, 0);
    t += carve_mlp(p, &tr->gen, 1, B, L->d, L->h, L->U, 0);
    t += carve_mlp(p, &tr->dec, K, B, L->d + L->U, L->h, L->U, 1);
    block_acts *a = &tr->blk;
    float **dslots[] = {&a->zin, &a->A, &a->r1, &a->z1, &a->r2, &a->dA, &a->da, &a->dF};
    for (size_t i = 0; i < sizeof dslots / sizeof dslots[0]; i++)
        t += carve(p, dslots[i], apps * d);
    float **hslots[] = {&a->H, &a->sig, &a->S, &a->dH};
    for (size_t i = 0; i < sizeof hslots / sizeof hslots[0]; i++)
        t += carve(p, hslots[i], apps * h);
    float **sslots[] = {&a->m1, &a->rs1, &a->m2, &a->rs2};
    for (size_t i = 0; i < sizeof sslots / sizeof sslots[0]; i++)
        t += carve(p, sslots[i], apps);
    t += carve(p, &tr->dce, K * B * d);
    t += carve(p, &tr->dz, B * d);
    t += carve(p, &tr->dz0, B * d);
    t += carve(p, &tr->dzw, B * d);
    t += carve(p, &tr->du, B * U);
    t += carve(p, &tr->dv, B * U);
    t += carve(p, &tr->wh, B * h);
    t += carve(p, &tr->wh2, B * h);
    t += carve(p, &tr->wcat, B * (d + U));
    return t;
}

int trc_trainer_create(const trc_model *model, size_t max_batch, trc_trainer **out)
{
    if (!out)
        return trc_fail(TRC_EINVAL, "trainer create: NULL output");
    *out = NULL;
    if (!model || !model->params)
        return trc_fail(TRC_EINVAL, "trainer create: model not created");
    if (max_batch == 0 || max_batch > (1u << 20))
        return trc_fail(TRC_EINVAL, "trainer create: max batch must be in [1, %u], got %zu",
                        1u << 20, max_batch);
    int rc = trc_model_config_validate(&model->cfg);
    if (rc)
        return rc;
    struct trc_trainer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return trc_fail(TRC_ENOMEM, "trainer create: out of memory");
    tr->model = model;
    trc_model_layout_build(&model->cfg, &tr->L, NULL, NULL);
    if (tr->L.num_params != model->num_params) {
        free(tr);
        return trc_fail(TRC_EINVAL, "trainer create: parameter count does not match the config");
    }
    tr->max_batch = max_batch;
    tr->arena_floats = layout_arena(tr, NULL, max_batch);
    tr->arena = malloc(tr->arena_floats * sizeof(float));
    tr->grads = calloc(model->num_params, sizeof(float));
    if (!tr->arena || !tr->grads) {
        size_t mb = (tr->arena_floats + model->num_params) * sizeof(float) >> 20;
        trc_trainer_free(tr);
        return trc_fail(TRC_ENOMEM, "trainer create: cannot allocate %zu MB of activations", mb);
    }
    *out = tr;
    return 0;
}

void trc_trainer_free(trc_trainer *tr)
{
    if (!tr)
        return;
    free(tr->arena);
    free(tr->grads);
    free(tr);
}

float *trc_trainer_grads(trc_trainer *tr)
{
    return tr ? tr->grads : NULL;
}

/* ---- forward ---- */

/* in: [B, k] -> a->out: [B, o] for application c of a Linear-silu-LN-Linear stack. */
static void mlp_forward(const float *P, trc_lin_off l0, trc_lin_off ln, trc_lin_off l3,
                        const mlp_acts *a, size_t c, const float *in, size_t B, int k, int h,
                        int o)
{
    size_t hb = c * B * (size_t)h, sb = c * B;
    float *H = a->H + hb, *sig = a->sig + hb, *S = a->S + hb, *N = a->N + hb;
    trc_linear_forward(H, in, P + l0.w, P + l0.b, B, k, h);
    trc_silu_forward(S, sig, H, B * (size_t)h);
    trc_layernorm_forward(N, a->mean + sb, a->rstd + sb, S, P + ln.w, P + ln.b, B, h);
    trc_linear_forward(a->out + c * B * (size_t)o, N, P + l3.w, P + l3.b, B, h, o);
}

/* Application `app` (= k*n + j) of block i: z: [B, d] -> zout: [B, d]. */
static void block_forward(const struct trc_trainer *tr, const float *P, int i, size_t app,
                          const float *z, float *zout, size_t B)
{
    const trc_model_layout *L = &tr->L;
    const trc_block_off *o = &L->blk[i];
    size_t KN = (size_t)L->K * (size_t)L->n, row = ((size_t)i * KN + app) * B;
    size_t d = (size_t)L->d, h = (size_t)L->h, nd = B * d;
    const block_acts *a = &tr->blk;
    float *zin = a->zin + row * d, *A = a->A + row * d, *r1 = a->r1 + row * d;
    float *z1 = a->z1 + row * d, *r2 = a->r2 + row * d;
    float *H = a->H + row * h, *sig = a->sig + row * h, *S = a->S + row * h;
    trc_residual_forward(zin, z, tr->z0, nd);
    trc_linear_forward(A, zin, P + o->in_w + 2 * d * d, P + o->in_b + 2 * d, B, L->d, L->d);
    trc_linear_forward(r1, A, P + o->out.w, P + o->out.b, B, L->d, L->d);
    trc_residual_forward(r1, r1, zin, nd);
    trc_layernorm_forward(z1, a->m1 + row, a->rs1 + row, r1, P + o->norm1.w, P + o->norm1.b, B,
                          L->d);
    trc_linear_forward(H, z1, P + o->ffn0.w, P + o->ffn0.b, B, L->d, L->h);
    trc_silu_forward(S, sig, H, B * h);
    trc_linear_forward(r2, S, P + o->ffn3.w, P + o->ffn3.b, B, L->h, L->d);
    trc_residual_forward(r2, r2, z1, nd);
    trc_layernorm_forward(zout, a->m2 + row, a->rs2 + row, r2, P + o->norm2.w, P + o->norm2.b, B,
                          L->d);
}

int trc_trainer_forward(trc_trainer *tr, size_t B, const float *x0, const float *target,
                        const float *u_expert, float *u_out, float *loss)
{
    if (!tr)
        return trc_fail(TRC_EINVAL, "trainer forward: NULL trainer");
    if (!x0 || !target || !u_expert || !loss)
        return trc_fail(TRC_EINVAL, "trainer forward: NULL input or loss");
    if (B == 0 || B > tr->max_batch)
        return trc_fail(TRC_EINVAL, "trainer forward: batch size must be in [1, %zu], got %zu",
                        tr->max_batch, B);
    tr->B = 0;
    layout_arena(tr, tr->arena, B);
    const trc_model_layout *L = &tr->L;
    const float *P = tr->model->params;
    int s = L->s, d = L->d, h = L->h, U = L->U, in = L->in_dim;
    size_t nU = B * (size_t)U, nd = B * (size_t)d;

    for (size_t r = 0; r < B; r++) {
        float *xr = tr->x + r * (size_t)in;
        memcpy(xr, x0 + r * (size_t)s, (size_t)s * sizeof *xr);
        memcpy(xr + s, target + r * (size_t)s, (size_t)s * sizeof *xr);
        xr[2 * s] = 1.0f;
    }
    memcpy(tr->target_u, u_expert, nU * sizeof *tr->target_u);
    mlp_forward(P, L->enc0, L->enc2, L->enc3, &tr->enc, 0, tr->x, B, in, h, d);
    memcpy(tr->z0, tr->enc.out, nd * sizeof *tr->z0);
    mlp_forward(P, L->gen0, L->gen2, L->gen3, &tr->gen, 0, tr->z0, B, d, h, U);
    trc_tanhscale_forward(tr->iters, tr->gen.out, L->bound, nU);

    float *z = tr->dzw; /* the running latent; backward work space is free during forward */
    for (int k = 0; k < L->K; k++) {
        const float *u = tr->iters + (size_t)k * nU;
        trc_linear_forward(z, u, P + L->ctrl_emb.w, P + L->ctrl_emb.b, B, U, d);
        trc_residual_forward(z, z, tr->z0, nd);
        for (int j = 0; j < L->n; j++)
            for (int i = 0; i < L->blocks; i++)
                block_forward(tr, P, i, (size_t)k * L->n + j, z, z, B);
        float *cat = tr->dec.in + (size_t)k * B * (d + U);
        for (size_t r = 0; r < B; r++) {
            memcpy(cat + r * (size_t)(d + U), z + r * (size_t)d, (size_t)d * sizeof *z);
            memcpy(cat + r * (size_t)(d + U) + d, u + r * (size_t)U, (size_t)U * sizeof *u);
        }
        mlp_forward(P, L->dec0, L->dec2, L->dec3, &tr->dec, (size_t)k, cat, B, d + U, h, U);
        float *rk = tr->dec.out + (size_t)k * nU, *vk = tr->v + (size_t)k * nU;
        trc_tanhscale_forward(rk, rk, 0.5f * L->bound, nU);
        trc_residual_forward(vk, u, rk, nU);
        trc_clamp_forward(tr->iters + (size_t)(k + 1) * nU, vk, L->bound, nU);
    }

    const float *uK = tr->iters + (size_t)L->K * nU;
    double acc = 0.0;
    for (size_t i = 0; i < nU; i++) {
        double e = (double)uK[i] - (double)u_expert[i];
        acc += e * e;
    }
    *loss = (float)(acc / (double)nU);
    if (u_out)
        memcpy(u_out, uK, nU * sizeof *u_out);
    if (!isfinite(*loss))
        return trc_fail(TRC_ENUMERIC, "trainer forward: loss is not finite");
    tr->B = B;
    return 0;
}

/* ---- backward ---- */

/* Given dout (application c, [B, o]) -> d(input) += into din ([B, k]), and the activation
 * gradient dH of the first Linear kept for the batched weight gradient; din may be NULL. Weight gradients of the
 * last Linear and of the LN are NOT formed here for stacks applied several times. */
static void mlp_backward_acts(const float *P, float *G, trc_lin_off l0, trc_lin_off ln,
                              trc_lin_off l3, const mlp_acts *a, size_t c, size_t B, int k, int h,
                              int o, float *wh, float *din)
{
    size_t hb = c * B * (size_t)h, sb = c * B, nh = B * (size_t)h;
    const float *dout = a->dout + c * B * (size_t)o;
    float *dH = a->dH + hb;
    memset(wh, 0, nh * sizeof *wh);
    trc_linear_backward_input(wh, dout, P + l3.w, B, h, o); /* grad of LN output */
    memset(dH, 0, nh * sizeof *dH);
    /* LN grads land in dH temporarily (as grad of silu output), then silu maps it in place */
    trc_layernorm_backward(dH, G + ln.w, G + ln.b, wh, a->S + hb, P + ln.w, a->mean + sb,
                           a->rstd + sb, B, h);
    memcpy(wh, dH, nh * sizeof *wh);
    memset(dH, 0, nh * sizeof *dH);
    trc_silu_backward(dH, wh, a->H + hb, a->sig + hb, nh);
    if (din)
        trc_linear_backward_input(din, dH, P + l0.w, B, k, h);
}

/* Weight gradients of a stack's two Linears over all `count` applications at once. */
static void mlp_backward_params(float *G, trc_lin_off l0, trc_lin_off l3, const mlp_acts *a,
                                const float *in, size_t rows, int k, int h, int o)
{
    trc_linear_backward_params(G + l3.w, G + l3.b, a->dout, a->N, rows, h, o);
    trc_linear_backward_params(G + l0.w, G + l0.b, a->dH, in, rows, k, h);
}

/* Application `app` of block i: dz (grad of its output, [B, d]) -> dz (grad of its input z),
 * dz0 += the context path. Keeps dA, da, dH, dF for the batched weight gradients. */
static void block_backward(struct trc_trainer *tr, int i, size_t app, size_t B)
{
    const trc_model_layout *L = &tr->L;
    const float *P = tr->model->params;
    float *G = tr->grads;
    const trc_block_off *o = &L->blk[i];
    size_t KN = (size_t)L->K * (size_t)L->n, row = ((size_t)i * KN + app) * B;
    size_t d = (size_t)L->d, h = (size_t)L->h, nd = B * d, nh = B * h;
    const block_acts *a = &tr->blk;
    float *dF = a->dF + row * d, *da = a->da + row * d, *dA = a->dA + row * d;
    float *dH = a->dH + row * h, *z1w = tr->dzw, *dS = tr->wh;

    memset(dF, 0, nd * sizeof *dF); /* grad of r2 = z1 + ffn3(..) */
    trc_layernorm_backward(dF, G + o->norm2.w, G + o->norm2.b, tr->dz, a->r2 + row * d,
                           P + o->norm2.w, a->m2 + row, a->rs2 + row, B, L->d);
    memcpy(z1w, dF, nd * sizeof *z1w); /* residual: grad of z1 */
    memset(dS, 0, nh * sizeof *dS);
    trc_linear_backward_input(dS, dF, P + o->ffn3.w, B, L->h, L->d);
    memset(dH, 0, nh * sizeof *dH);
    trc_silu_backward(dH, dS, a->H + row * h, a->sig + row * h, nh);
    trc_linear_backward_input(z1w, dH, P + o->ffn0.w, B, L->d, L->h);
    memset(da, 0, nd * sizeof *da); /* grad of r1 = zin + out_proj(..) */
    trc_layernorm_backward(da, G + o->norm1.w, G + o->norm1.b, z1w, a->r1 + row * d,
                           P + o->norm1.w, a->m1 + row, a->rs1 + row, B, L->d);
    memset(dA, 0, nd * sizeof *dA);
    trc_linear_backward_input(dA, da, P + o->out.w, B, L->d, L->d);
    memcpy(tr->dz, da, nd * sizeof *tr->dz); /* residual: grad of zin */
    trc_linear_backward_input(tr->dz, dA, P + o->in_w + 2 * d * d, B, L->d, L->d);
    trc_residual_backward(tr->dz0, tr->dz, nd); /* zin = z + z0 */
}

int trc_trainer_backward(trc_trainer *tr)
{
    if (!tr)
        return trc_fail(TRC_EINVAL, "trainer backward: NULL trainer");
    if (tr->B == 0)
        return trc_fail(TRC_EINVAL, "trainer backward: no successful forward to differentiate");
    const trc_model_layout *L = &tr->L;
    const float *P = tr->model->params;
    float *G = tr->grads;
    size_t B = tr->B, d = (size_t)L->d, U = (size_t)L->U, nU = B * U, nd = B * d;
    size_t KN = (size_t)L->K * (size_t)L->n;
    int h = L->h;
    memset(G, 0, tr->model->num_params * sizeof *G);
    memset(tr->dz0, 0, nd * sizeof *tr->dz0);

    /* loss = mean (u_K - u_expert)^2 over B*U elements */
    const float *uK = tr->iters + (size_t)L->K * nU;
    float scale = 2.0f / (float)nU;
    for (size_t i = 0; i < nU; i++)
        tr->du[i] = scale * (uK[i] - tr->target_u[i]);

    for (int k = L->K - 1; k >= 0; k--) {
        size_t kk = (size_t)k;
        /* u_{k+1} = clamp(u_k + (b/2) tanh(dec(..)), -b, b) */
        memset(tr->dv, 0, nU * sizeof *tr->dv);
        trc_clamp_backward(tr->dv, tr->du, tr->v + kk * nU, L->bound, nU);
        memcpy(tr->du, tr->dv, nU * sizeof *tr->du); /* residual: grad of u_k so far */
        float *dout = tr->dec.dout + kk * nU;
        memset(dout, 0, nU * sizeof *dout);
        trc_tanhscale_backward(dout, tr->dv, tr->dec.out + kk * nU, 0.5f * L->bound, nU);
        memset(tr->wcat, 0, B * (d + U) * sizeof *tr->wcat);
        mlp_backward_acts(P, G, L->dec0, L->dec2, L->dec3, &tr->dec, kk, B, L->d + L->U, h, L->U,
                          tr->wh, tr->wcat);
        for (size_t r = 0; r < B; r++) {
            const float *c = tr->wcat + r * (d + U);
            memcpy(tr->dz + r * d, c, d * sizeof *c);
            for (size_t t = 0; t < U; t++)
                tr->du[r * U + t] += c[d + t];
        }
        for (int j = L->n - 1; j >= 0; j--)
            for (int i = L->blocks - 1; i >= 0; i--)
                block_backward(tr, i, kk * L->n + j, B);
        /* z = z0 + control_embedding(u_k) */
        trc_residual_backward(tr->dz0, tr->dz, nd);
        float *dce = tr->dce + kk * nd;
        memcpy(dce, tr->dz, nd * sizeof *dce);
        trc_linear_backward_input(tr->du, dce, P + L->ctrl_emb.w, B, L->U, L->d);
    }

    /* u_0 = b tanh(gen(z0)) */
    memset(tr->gen.dout, 0, nU * sizeof *tr->gen.dout);
    trc_tanhscale_backward(tr->gen.dout, tr->du, tr->iters, L->bound, nU);
    mlp_backward_acts(P, G, L->gen0, L->gen2, L->gen3, &tr->gen, 0, B, L->d, h, L->U, tr->wh,
                      tr->dz0);
    mlp_backward_params(G, L->gen0, L->gen3, &tr->gen, tr->z0, B, L->d, h, L->U);
    /* z0 = enc(x); the input needs no gradient */
    memcpy(tr->enc.dout, tr->dz0, nd * sizeof *tr->dz0);
    mlp_backward_acts(P, G, L->enc0, L->enc2, L->enc3, &tr->enc, 0, B, L->in_dim, h, L->d,
                      tr->wh, NULL);
    mlp_backward_params(G, L->enc0, L->enc3, &tr->enc, tr->x, B, L->in_dim, h, L->d);

    /* shared weights: one sgemm per weight over all of its applications */
    mlp_backward_params(G, L->dec0, L->dec3, &tr->dec, tr->dec.in, (size_t)L->K * B,
                        L->d + L->U, h, L->U);
    trc_linear_backward_params(G + L->ctrl_emb.w, G + L->ctrl_emb.b, tr->dce, tr->iters,
                               (size_t)L->K * B, L->U, L->d);
    for (int i = 0; i < L->blocks; i++) {
        const trc_block_off *o = &L->blk[i];
        const block_acts *a = &tr->blk;
        size_t row = (size_t)i * KN * B, rows = KN * B;
        trc_linear_backward_params(G + o->in_w + 2 * d * d, G + o->in_b + 2 * d, a->dA + row * d,
                                   a->zin + row * d, rows, L->d, L->d);
        trc_linear_backward_params(G + o->out.w, G + o->out.b, a->da + row * d, a->A + row * d,
                                   rows, L->d, L->d);
        trc_linear_backward_params(G + o->ffn0.w, G + o->ffn0.b, a->dH + row * (size_t)h,
                                   a->z1 + row * d, rows, L->d, h);
        trc_linear_backward_params(G + o->ffn3.w, G + o->ffn3.b, a->dF + row * d,
                                   a->S + row * (size_t)h, rows, h, L->d);
    }
    for (size_t i = 0; i < tr->model->num_params; i++)
        if (!isfinite(G[i]))
            return trc_fail(TRC_ENUMERIC, "trainer backward: gradient %zu is not finite", i);
    return 0;
}
