/* The forward pass of model-v2.md section 6 (two_level and trm_style) and inference:
 *   z0 = enc(x0, x*), u0 = b tanh(gen(z0)), zH = H_init, zL = L_init
 *   for k < H: c = ctrl_emb(u_k) [+ err_emb(F(x0, u_k) - x*)]
 *              L times: zL = Lmod(zL, (zH + z0) + c);  zH = Lmod(zH, zL);  u_{k+1} = R(zH, u_k)
 * with Lmod(h, inj) = blocks(h + inj) and R(z, u) = clamp(u + (b/2) tanh(dec([z, u])), -b, b).
 * The same blocks serve both levels. Activations of a cycle are kept only when it is
 * differentiated (the last one under truncation); the others run in one scratch slot. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "layout.h"
#include "linear_packed.h"
#include "nn_layers.h"
#include "trc/error.h"
#include "trc/two_level.h"
#include "two_level_acts.h"

#define CHUNK 128   /* inference rows per pass */
#define FUSE_MIN 32 /* batch size from which inference fuses the attention */

static size_t carve(float **p, float **slot, size_t n) {
    if (p) {
        *slot = *p;
        *p += n;
    }
    return n;
}

static size_t carve_mlp(float **p, tl_mlp *m, size_t B, int k, int h, int o) {
    size_t t = 0;
    t += carve(p, &m->in, B * (size_t)k);
    float **hs[] = {&m->H, &m->sig, &m->S, &m->N};
    for (size_t i = 0; i < 4; i++)
        t += carve(p, hs[i], B * (size_t)h);
    t += carve(p, &m->mean, B);
    t += carve(p, &m->rstd, B);
    t += carve(p, &m->out, B * (size_t)o);
    return t;
}

static size_t carve_app(float **p, tl_app *a, size_t B, const tl_layout *L) {
    size_t t = 0, d = (size_t)L->d;
    float **ds[] = {&a->zin, &a->A, &a->r1, &a->z1, &a->r2, &a->zout};
    for (size_t i = 0; i < 6; i++)
        t += carve(p, ds[i], B * d);
    t += carve(p, &a->G, B * (size_t)L->fc_in_out);
    t += carve(p, &a->sig, B * (size_t)L->ffn);
    t += carve(p, &a->S, B * (size_t)L->ffn);
    float **ss[] = {&a->m1, &a->rs1, &a->m2, &a->rs2};
    for (size_t i = 0; i < 4; i++)
        t += carve(p, ss[i], B);
    return t;
}

static size_t napps(const tl_layout *L, int nstore) {
    return (size_t)nstore * (size_t)(L->L + 1) * (size_t)L->layers + 1;
}

static size_t layout_acts(const tl_layout *L, tl_acts *a, float *base) {
    float *p0 = base, **p = base ? &p0 : NULL;
    size_t B = a->B, d = (size_t)L->d, U = (size_t)L->U, t = 0;
    t += carve(p, &a->x, B * (size_t)L->in_dim);
    float **ds[] = {&a->z0, &a->zH, &a->zL, &a->c, &a->inj};
    for (size_t i = 0; i < 5; i++)
        t += carve(p, ds[i], B * d);
    t += carve(p, &a->iters, (size_t)(L->H + 1) * B * U);
    t += carve(p, &a->v, (size_t)a->ndec * B * U);
    t += carve(p, &a->err, (size_t)L->H * B * 2);
    t += carve(p, &a->traj, (size_t)(L->T + 1) * (size_t)L->s);
    t += carve_mlp(p, &a->enc, B, L->in_dim, L->h, L->d);
    t += carve_mlp(p, &a->gen, B, L->d, L->h, L->U);
    for (int k = 0; k < a->ndec; k++)
        t += carve_mlp(p, base ? &a->dec[k] : &(tl_mlp){0}, B, L->d + L->U, L->h, L->U);
    size_t n = napps(L, a->nstore);
    for (size_t i = 0; i < n; i++)
        t += carve_app(p, base ? &a->apps[i] : &(tl_app){0}, B, L);
    return t;
}

int tl_acts_alloc(const tl_layout *L, size_t B, int nstore, tl_acts *a) {
    memset(a, 0, sizeof *a);
    a->B = B;
    a->nstore = nstore;
    a->ndec = nstore ? L->H : 1;
    a->dec = calloc((size_t)a->ndec, sizeof *a->dec);
    a->apps = calloc(napps(L, nstore), sizeof *a->apps);
    size_t n = layout_acts(L, a, NULL);
    a->arena = malloc(n * sizeof(float));
    if (!a->dec || !a->apps || !a->arena) {
        tl_acts_free(a);
        return trc_fail(TRC_ENOMEM, "two-level: cannot allocate %zu MB of activations",
                        n * sizeof(float) >> 20);
    }
    layout_acts(L, a, a->arena);
    return TRC_OK;
}

void tl_acts_free(tl_acts *a) {
    free(a->arena);
    free(a->dec);
    free(a->apps);
    memset(a, 0, sizeof *a);
}

/* The Linears tl_dlins_* pack: where each goes in pk, its parameters and its shape. */
typedef struct dlin {
    const double **slot;
    trc_lin_off o;
    int in, out;
} dlin;

enum { DLINS = 6 };

static void dlins(const tl_layout *L, tl_packed *pk, dlin t[DLINS]) {
    int k = L->in_dim, h = L->h, d = L->d, U = L->U;
    const dlin all[DLINS] = {{&pk->enc0, L->enc0, k, h},     {&pk->enc3, L->enc3, h, d},
                             {&pk->gen0, L->gen0, d, h},     {&pk->gen3, L->gen3, h, U},
                             {&pk->dec0, L->dec0, d + U, h}, {&pk->dec3, L->dec3, h, U}};
    memcpy(t, all, sizeof all);
}

size_t tl_dlins_size(const tl_layout *L) {
    dlin t[DLINS];
    tl_packed pk = {0}; /* only the shapes are read */
    dlins(L, &pk, t);
    size_t total = 0;
    for (int j = 0; j < DLINS; j++)
        total += trc_linear_dpacked_size(t[j].in, t[j].out);
    return total;
}

void tl_dlins_pack(const tl_layout *L, const float *P, tl_packed *pk, double *dbuf) {
    dlin t[DLINS];
    dlins(L, pk, t);
    for (int j = 0; j < DLINS; j++) {
        trc_linear_dpack(dbuf, P + t[j].o.w, t[j].in, t[j].out);
        *t[j].slot = dbuf;
        dbuf += trc_linear_dpacked_size(t[j].in, t[j].out);
    }
}

/* in: [B, k] (copied into m->in unless it is m->in) -> m->out: [B, o]; with W0d, W3d the
 * Linears' weights widened and packed once (tl_packed), else as stored */
static void mlp_forward(const float *P, trc_lin_off l0, trc_lin_off ln, trc_lin_off l3,
                        const double *W0d, const double *W3d, const tl_mlp *m, const float *in,
                        size_t B, int k, int h, int o) {
    if (in != m->in)
        memcpy(m->in, in, B * (size_t)k * sizeof *in);
    if (W0d)
        trc_linear_dpacked_forward(m->H, m->in, W0d, P + l0.b, B, k, h);
    else
        trc_linear_precise_forward(m->H, m->in, P + l0.w, P + l0.b, B, k, h);
    trc_silu_forward(m->S, m->sig, m->H, B * (size_t)h);
    trc_layernorm_forward(m->N, m->mean, m->rstd, m->S, P + ln.w, P + ln.b, B, h);
    if (W3d)
        trc_linear_dpacked_forward(m->out, m->N, W3d, P + l3.b, B, h, o);
    else
        trc_linear_precise_forward(m->out, m->N, P + l3.w, P + l3.b, B, h, o);
}

static void norm_forward(const float *P, trc_lin_off n, float *y, float *mean, float *rstd,
                         const float *x, size_t B, int C) {
    if (n.b == TL_NONE)
        trc_rmsnorm_forward(y, rstd, x, P + n.w, B, C);
    else
        trc_layernorm_forward(y, mean, rstd, x, P + n.w, P + n.b, B, C);
}

/* block_forward over packed weights: r1 = zin + attn(zin) and r2 = z1 + fc_out(S) with the
 * residual in the epilogue, SiLU too for the SiLU FFN (the sums and their order are those of
 * block_forward's unpacked products). */
static void block_forward_packed(const tl_layout *L, const float *P, const tl_packed *pk, int i,
                                 const tl_app *a, size_t B) {
    const tl_block_off *o = &L->blk[i];
    int d = L->d, I = L->ffn;
    trc_linear_packed_forward_ex(a->r1, a->zin, pk->attn[i], pk->attn_b[i], a->zin, 0, B, d, d);
    norm_forward(P, o->norm1, a->z1, a->m1, a->rs1, a->r1, B, d);
    if (L->kind == TRC_TL_LN_SILU)
        trc_linear_packed_forward_ex(a->S, a->z1, pk->fc_in[i], P + o->fc_in.b, NULL, 1, B, d, I);
    else {
        trc_linear_packed_forward(a->G, a->z1, pk->fc_in[i], P + o->fc_in.b, B, d, L->fc_in_out);
        trc_swiglu_forward(a->S, a->sig, a->G, B, I);
    }
    trc_linear_packed_forward_ex(a->r2, a->S, pk->fc_out[i], P + o->fc_out.b, a->z1, 0, B, I, d);
    norm_forward(P, o->norm2, a->zout, a->m2, a->rs2, a->r2, B, d);
}

/* block_forward's unfused products over the trainer's weights packed once per step
 * (tl_packed.train), keeping what backward needs (A, G, sig): the same sums in the same order,
 * the residual adds (commuted) and SiLU in the epilogues, so the same bits; the outputs are
 * training's activations, not in cache (linear_packed.h: _cold). */
static void block_forward_train(const tl_layout *L, const float *P, const tl_packed *pk, int i,
                                const tl_app *a, size_t B) {
    const tl_block_off *o = &L->blk[i];
    int d = L->d, I = L->ffn;
    trc_linear_packed_forward_cold(a->A, a->zin, pk->val[i], P + o->in_b + 2 * (size_t)d, NULL, B,
                                   d, d);
    trc_linear_packed_forward_cold(a->r1, a->A, pk->out[i], P + o->out.b, a->zin, B, d, d);
    norm_forward(P, o->norm1, a->z1, a->m1, a->rs1, a->r1, B, d);
    if (L->kind == TRC_TL_LN_SILU)
        trc_linear_packed_silu_forward(a->S, a->G, a->sig, a->z1, pk->fc_in[i], P + o->fc_in.b, B,
                                       d, I);
    else {
        trc_linear_packed_forward_cold(a->G, a->z1, pk->fc_in[i], P + o->fc_in.b, NULL, B, d,
                                       L->fc_in_out);
        trc_swiglu_forward(a->S, a->sig, a->G, B, I);
    }
    trc_linear_packed_forward_cold(a->r2, a->S, pk->fc_out[i], P + o->fc_out.b, a->z1, B, I, d);
    norm_forward(P, o->norm2, a->zout, a->m2, a->rs2, a->r2, B, d);
}

/* a->zin: [B, d] -> a->zout: [B, d], shared block i (model-v2.md section 3). */
static void block_forward(const tl_layout *L, const float *P, const float *fused,
                          const tl_packed *pk, int i, const tl_app *a, size_t B) {
    const tl_block_off *o = &L->blk[i];
    int d = L->d, I = L->ffn;
    size_t nd = B * (size_t)d;
    if (pk) {
        if (pk->train)
            block_forward_train(L, P, pk, i, a, B);
        else
            block_forward_packed(L, P, pk, i, a, B);
        return;
    }
    if (fused) { /* (W_o V) z + (W_o v + c_o) */
        const float *F = fused + (size_t)i * ((size_t)d * d + d);
        trc_linear_forward(a->r1, a->zin, F, F + (size_t)d * d, B, d, d);
    } else { /* attention of one token: out_proj(V z + v), V and v the value rows of in_proj */
        trc_linear_forward(a->A, a->zin, P + o->in_w + 2 * (size_t)d * d,
                           P + o->in_b + 2 * (size_t)d, B, d, d);
        trc_linear_forward(a->r1, a->A, P + o->out.w, P + o->out.b, B, d, d);
    }
    trc_residual_forward(a->r1, a->zin, a->r1, nd);
    norm_forward(P, o->norm1, a->z1, a->m1, a->rs1, a->r1, B, d);
    trc_linear_forward(a->G, a->z1, P + o->fc_in.w, P + o->fc_in.b, B, d, L->fc_in_out);
    if (L->kind == TRC_TL_LN_SILU)
        trc_silu_forward(a->S, a->sig, a->G, B * (size_t)I);
    else
        trc_swiglu_forward(a->S, a->sig, a->G, B, I);
    trc_linear_forward(a->r2, a->S, P + o->fc_out.w, P + o->fc_out.b, B, I, d);
    trc_residual_forward(a->r2, a->z1, a->r2, nd);
    norm_forward(P, o->norm2, a->zout, a->m2, a->rs2, a->r2, B, d);
}

/* out = blocks(h + inj) over the applications apps[0..layers) (all the same slot when stride
 * is 0). */
static void lmod(const tl_layout *L, const float *P, const float *fused, const tl_packed *pk,
                 const tl_app *apps, int stride, const float *h, const float *inj, float *out,
                 size_t B) {
    size_t nd = B * (size_t)L->d;
    trc_residual_forward(apps[0].zin, h, inj, nd);
    for (int i = 0; i < L->layers; i++) {
        const tl_app *a = &apps[i * stride];
        if (i > 0)
            memcpy(a->zin, apps[(i - 1) * stride].zout, nd * sizeof(float));
        block_forward(L, P, fused, pk, i, a, B);
    }
    memcpy(out, apps[(L->layers - 1) * stride].zout, nd * sizeof(float));
}

/* err: [B, 2] = F(x0, u)_T - target for every row */
static void feedback_errors(const tl_layout *L, const trc_tl_sim *sim, tl_acts *a, size_t B,
                            const float *x0, const float *target, const float *u, float *err) {
    int s = L->s, U = L->U, T = L->T;
    for (size_t r = 0; r < B; r++) {
        sim->rollout(sim->ctx, x0 + r * s, u + r * U, a->traj, NULL, NULL);
        for (int j = 0; j < 2; j++)
            err[r * 2 + j] = a->traj[(size_t)T * s + j] - target[r * s + j];
    }
}

int tl_forward(const tl_layout *L, const float *P, const float *fused, const tl_packed *pk,
               const trc_tl_sim *sim, tl_acts *a, size_t B, const float *x0, const float *target,
               const float *time_left) {
    int s = L->s, d = L->d, h = L->h, U = L->U, in = L->in_dim;
    size_t nd = B * (size_t)d, nU = B * (size_t)U;
    for (size_t r = 0; r < B; r++) {
        float *x = a->x + r * in;
        memcpy(x, x0 + r * s, (size_t)s * sizeof *x);
        memcpy(x + s, target + r * s, (size_t)s * sizeof *x);
        x[2 * s] = time_left ? time_left[r] : 1.0f;
    }
    mlp_forward(P, L->enc0, L->enc2, L->enc3, pk ? pk->enc0 : NULL, pk ? pk->enc3 : NULL, &a->enc,
                a->x, B, in, h, d);
    memcpy(a->z0, a->enc.out, nd * sizeof(float));
    mlp_forward(P, L->gen0, L->gen2, L->gen3, pk ? pk->gen0 : NULL, pk ? pk->gen3 : NULL, &a->gen,
                a->z0, B, d, h, U);
    trc_tanhscale_forward(a->iters, a->gen.out, L->bound, nU);
    for (size_t r = 0; r < B; r++) {
        memcpy(a->zH + r * d, P + L->H_init, (size_t)d * sizeof(float));
        memcpy(a->zL + r * d, P + L->L_init, (size_t)d * sizeof(float));
    }
    size_t per_cycle = (size_t)(L->L + 1) * (size_t)L->layers;
    tl_app *scratch = &a->apps[napps(L, a->nstore) - 1];
    for (int k = 0; k < L->H; k++) {
        const float *u = a->iters + (size_t)k * nU;
        if (pk)
            trc_linear_packed_forward(a->c, u, pk->ctrl, P + L->ctrl_emb.b, B, U, d);
        else
            trc_linear_forward(a->c, u, P + L->ctrl_emb.w, P + L->ctrl_emb.b, B, U, d);
        if (L->feedback) {
            float *err = a->err + (size_t)k * B * 2;
            feedback_errors(L, sim, a, B, x0, target, u, err);
            /* c = ctrl_emb(u) + err_emb(e): the embedding into inj, added after */
            trc_linear_forward(a->inj, err, P + L->err_emb.w, P + L->err_emb.b, B, 2, d);
            trc_residual_forward(a->c, a->c, a->inj, nd);
        }
        trc_residual_forward(a->inj, a->zH, a->z0, nd);
        trc_residual_forward(a->inj, a->inj, a->c, nd);
        int keep = a->nstore > 0 && tl_cycle_diff(L, k);
        const tl_app *base = keep ? &a->apps[(size_t)tl_store_index(L, k) * per_cycle] : scratch;
        int stride = keep ? 1 : 0;
        for (int l = 0; l < L->L; l++)
            lmod(L, P, fused, pk, base + (keep ? (size_t)l * L->layers : 0), stride, a->zL, a->inj,
                 a->zL, B);
        lmod(L, P, fused, pk, base + (keep ? (size_t)L->L * L->layers : 0), stride, a->zH, a->zL,
             a->zH, B);
        /* u_{k+1} = clamp(u + (b/2) tanh(dec([zH, u])), -b, b) */
        const tl_mlp *dec = &a->dec[a->ndec > 1 ? k : 0];
        for (size_t r = 0; r < B; r++) {
            memcpy(dec->in + r * (size_t)(d + U), a->zH + r * d, (size_t)d * sizeof(float));
            memcpy(dec->in + r * (size_t)(d + U) + d, u + r * U, (size_t)U * sizeof(float));
        }
        mlp_forward(P, L->dec0, L->dec2, L->dec3, pk ? pk->dec0 : NULL, pk ? pk->dec3 : NULL, dec,
                    dec->in, B, d + U, h, U);
        trc_tanhscale_forward(dec->out, dec->out, 0.5f * L->bound, nU);
        float *v = a->v + (size_t)(a->ndec > 1 ? k : 0) * nU;
        trc_residual_forward(v, u, dec->out, nU);
        trc_clamp_forward(a->iters + (size_t)(k + 1) * nU, v, L->bound, nU);
    }
    const float *uH = a->iters + (size_t)L->H * nU;
    for (size_t i = 0; i < nU; i++)
        if (!isfinite(uH[i]))
            return trc_fail(TRC_ENUMERIC, "two-level forward: output is not finite");
    return TRC_OK;
}

int trc_tl_infer(const trc_tl_model *model, const trc_tl_sim *sim, size_t B, const float *x0,
                 const float *target, const float *time_left, float *u_out, float *iterates,
                 float *latent) {
    if (!model || !model->params || !x0 || !target || !u_out)
        return trc_fail(TRC_EINVAL, "two-level infer: NULL argument");
    if (B == 0)
        return trc_fail(TRC_EINVAL, "two-level infer: empty batch");
    if (model->cfg.feedback && (!sim || !sim->rollout))
        return trc_fail(TRC_EINVAL, "two-level infer: trajectory feedback needs a simulator");
    tl_layout L;
    tl_layout_build(&model->cfg, &L, NULL, NULL, NULL);
    if (sim && model->cfg.feedback && (sim->s != L.s || sim->T != L.T || sim->m != L.m))
        return trc_fail(TRC_EINVAL, "two-level infer: simulator shape does not match the model");
    trc_model_blas_single();
    tl_acts a;
    size_t C = B < CHUNK ? B : CHUNK;
    int rc = tl_acts_alloc(&L, C, 0, &a);
    if (rc)
        return rc;
    /* fusing costs layers * d^3 multiply-adds: worth it from a few dozen rows */
    float *fused = NULL;
    if (B >= FUSE_MIN) {
        fused = malloc((size_t)L.layers * ((size_t)L.d * L.d + L.d) * sizeof *fused);
        if (!fused) {
            tl_acts_free(&a);
            return trc_fail(TRC_ENOMEM, "two-level infer: out of memory");
        }
        tl_fuse_attention(&L, model->params, fused);
    }
    size_t U = (size_t)L.U, d = (size_t)L.d;
    for (size_t r0 = 0; r0 < B && rc == TRC_OK; r0 += C) {
        size_t nb = B - r0 < C ? B - r0 : C;
        rc = tl_forward(&L, model->params, fused, NULL, sim, &a, nb, x0 + r0 * L.s,
                        target + r0 * L.s, time_left ? time_left + r0 : NULL);
        if (rc)
            break;
        memcpy(u_out + r0 * U, a.iters + (size_t)L.H * nb * U, nb * U * sizeof(float));
        if (iterates)
            for (int k = 0; k <= L.H; k++)
                memcpy(iterates + ((size_t)k * B + r0) * U, a.iters + (size_t)k * nb * U,
                       nb * U * sizeof(float));
        if (latent)
            memcpy(latent + r0 * d, a.zH, nb * d * sizeof(float));
    }
    free(fused);
    tl_acts_free(&a);
    return rc;
}
