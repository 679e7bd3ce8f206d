/* Training of the two-level networks: the forward keeping activations (two_level.c), the MSE,
 * and the hand-written backward with model-v2.md's gradient truncation:
 *  - the decoder step u_{k+1} = R(zH_{k+1}, u_k) is differentiated in EVERY cycle (decoder
 *    parameters, the skip term and the decoder's u input carry gradient along the iterates);
 *  - the reasoning (the L z_L updates, the z_H update, control_embedding and error_embedding
 *    with the simulator) only in differentiated cycles; in the others zH_{k+1} is a constant,
 *    so the decoder's gradient with respect to it is dropped;
 *  - the starting zH, zL of a differentiated cycle receive gradient only from a differentiated
 *    previous cycle, or, for cycle 0, into H_init / L_init (summed over rows).
 * Weight gradients accumulate application by application (one sgemm each). */
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

struct trc_tl_trainer {
    const trc_tl_model *model;
    const trc_tl_sim *sim;
    tl_layout L;
    size_t max_batch, B; /* B of the last successful forward, 0 if none */
    tl_acts a;
    float *grads;
    const float *x0, *target; /* inputs of the last forward (feedback backward re-simulates) */
    float *x0c, *tgc;         /* copies of them */
    /* backward work space */
    float *du, *duk, *dv, *dout, *dcat, *gh1, *gh2, *dH;
    float *dz, *dzH, *dzL, *dinj, *dz0, *dt1, *dt2, *dA, *dS, *dG, *de;
    double *jac;
    /* the forward's block and control-embedding weights, packed at every forward (tl_packed
     * .train): each is then applied to B rows per application without being re-read
     * transposed (trc_linear_forward repacked B^T on every call) */
    tl_packed pk;
    float *wpack;
    double *dwpack; /* the MLPs' Linears widened and packed at every forward (tl_dlins_pack) */
};

/* Floats of the trainer's packed weights; with base, also sets tr->pk's pointers into it. */
static size_t pack_layout(struct trc_tl_trainer *tr, float *base) {
    const tl_layout *L = &tr->L;
    int d = L->d, I = L->ffn, fo = L->fc_in_out;
    size_t total = 0;
    for (int i = 0; i < L->layers; i++) {
        const float **s4[4] = {&tr->pk.val[i], &tr->pk.out[i], &tr->pk.fc_in[i], &tr->pk.fc_out[i]};
        int sh[4][2] = {{d, d}, {d, d}, {d, fo}, {I, d}};
        for (int k = 0; k < 4; k++) {
            if (base)
                *s4[k] = base + total;
            total += trc_linear_packed_size(sh[k][0], sh[k][1]);
        }
    }
    if (base)
        tr->pk.ctrl = base + total;
    total += trc_linear_packed_size(L->U, d);
    return total;
}

/* Packs the current parameters into tr->wpack (the layout of pack_layout). */
static void pack_weights(struct trc_tl_trainer *tr) {
    const tl_layout *L = &tr->L;
    const float *P = tr->model->params;
    int d = L->d, I = L->ffn, fo = L->fc_in_out;
    for (int i = 0; i < L->layers; i++) {
        const tl_block_off *o = &L->blk[i];
        trc_linear_pack((float *)tr->pk.val[i], P + o->in_w + 2 * (size_t)d * d, d, d);
        trc_linear_pack((float *)tr->pk.out[i], P + o->out.w, d, d);
        trc_linear_pack((float *)tr->pk.fc_in[i], P + o->fc_in.w, d, fo);
        trc_linear_pack((float *)tr->pk.fc_out[i], P + o->fc_out.w, I, d);
    }
    trc_linear_pack((float *)tr->pk.ctrl, P + L->ctrl_emb.w, L->U, d);
    tl_dlins_pack(L, P, &tr->pk, tr->dwpack);
}

int trc_tl_trainer_create(const trc_tl_model *model, size_t max_batch, trc_tl_trainer **out) {
    if (!out)
        return trc_fail(TRC_EINVAL, "two-level trainer: NULL output");
    *out = NULL;
    if (!model || !model->params)
        return trc_fail(TRC_EINVAL, "two-level trainer: model not created");
    if (max_batch == 0 || max_batch > (1u << 20))
        return trc_fail(TRC_EINVAL, "two-level trainer: max batch must be in [1, %u], got %zu",
                        1u << 20, max_batch);
    int rc = trc_tl_config_validate(&model->cfg);
    if (rc)
        return rc;
    struct trc_tl_trainer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return trc_fail(TRC_ENOMEM, "two-level trainer: out of memory");
    tr->model = model;
    tl_layout *L = &tr->L;
    tl_layout_build(&model->cfg, L, NULL, NULL, NULL);
    trc_model_blas_single();
    tr->max_batch = max_batch;
    rc = tl_acts_alloc(L, max_batch, L->truncate ? 1 : L->H, &tr->a);
    if (rc) {
        free(tr);
        return rc;
    }
    size_t B = max_batch, d = (size_t)L->d, U = (size_t)L->U, h = (size_t)L->h;
    size_t I = (size_t)L->ffn, fo = (size_t)L->fc_in_out, s = (size_t)L->s;
    tr->grads = calloc(model->num_floats, sizeof(float));
    float **bu[] = {&tr->du, &tr->duk, &tr->dv, &tr->dout};
    for (size_t i = 0; i < 4; i++)
        *bu[i] = malloc(B * U * sizeof(float));
    tr->dcat = malloc(B * (d + U) * sizeof(float));
    tr->gh1 = malloc(B * h * sizeof(float));
    tr->gh2 = malloc(B * h * sizeof(float));
    tr->dH = malloc(B * h * sizeof(float));
    float **bd[] = {&tr->dz, &tr->dzH, &tr->dzL, &tr->dinj, &tr->dz0, &tr->dt1, &tr->dt2, &tr->dA};
    for (size_t i = 0; i < 8; i++)
        *bd[i] = malloc(B * d * sizeof(float));
    tr->dS = malloc(B * I * sizeof(float));
    tr->dG = malloc(B * fo * sizeof(float));
    tr->de = malloc(B * 2 * sizeof(float));
    tr->x0c = malloc(B * s * sizeof(float));
    tr->tgc = malloc(B * s * sizeof(float));
    tr->jac = malloc((size_t)L->T * (s * s + s * (size_t)L->m) * sizeof(double));
    tr->wpack = trc_linear_packed_alloc(pack_layout(tr, NULL));
    if (tr->wpack)
        pack_layout(tr, tr->wpack);
    tr->dwpack = malloc(tl_dlins_size(L) * sizeof(double));
    tr->pk.train = 1;
    int ok = tr->grads && tr->dcat && tr->gh1 && tr->gh2 && tr->dH && tr->dS && tr->dG && tr->de &&
             tr->x0c && tr->tgc && tr->jac && tr->wpack && tr->dwpack;
    for (size_t i = 0; i < 4; i++)
        ok = ok && *bu[i];
    for (size_t i = 0; i < 8; i++)
        ok = ok && *bd[i];
    if (!ok) {
        trc_tl_trainer_free(tr);
        return trc_fail(TRC_ENOMEM, "two-level trainer: out of memory");
    }
    *out = tr;
    return TRC_OK;
}

void trc_tl_trainer_free(trc_tl_trainer *tr) {
    if (!tr)
        return;
    tl_acts_free(&tr->a);
    float *bufs[] = {tr->grads, tr->du, tr->duk, tr->dv,  tr->dout, tr->dcat, tr->gh1,  tr->gh2,
                     tr->dH,    tr->dz, tr->dzH, tr->dzL, tr->dinj, tr->dz0,  tr->dt1,  tr->dt2,
                     tr->dA,    tr->dS, tr->dG,  tr->de,  tr->x0c,  tr->tgc,  tr->wpack};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(tr->jac);
    free(tr->dwpack);
    free(tr);
}

void trc_tl_trainer_set_sim(trc_tl_trainer *tr, const trc_tl_sim *sim) {
    if (tr)
        tr->sim = sim;
}

float *trc_tl_trainer_grads(trc_tl_trainer *tr) {
    return tr ? tr->grads : NULL;
}

const float *trc_tl_trainer_iterates(const trc_tl_trainer *tr) {
    return tr && tr->B ? tr->a.iters : NULL;
}

void trc_tl_trainer_shape(const trc_tl_trainer *tr, int *H, size_t *B, size_t *U) {
    *H = tr ? tr->L.H : 0;
    *B = tr ? tr->B : 0;
    *U = tr ? (size_t)tr->L.U : 0;
}

int trc_tl_trainer_forward(trc_tl_trainer *tr, size_t B, const float *x0, const float *target,
                           const float *time_left, float *iterates) {
    if (!tr || !x0 || !target)
        return trc_fail(TRC_EINVAL, "two-level forward: NULL argument");
    if (B == 0 || B > tr->max_batch)
        return trc_fail(TRC_EINVAL, "two-level forward: batch size must be in [1, %zu], got %zu",
                        tr->max_batch, B);
    const tl_layout *L = &tr->L;
    if (L->feedback && (!tr->sim || !tr->sim->rollout || tr->sim->s != L->s || tr->sim->T != L->T ||
                        tr->sim->m != L->m))
        return trc_fail(TRC_EINVAL, "two-level forward: trajectory feedback needs a simulator of "
                                    "the model's shape");
    tr->B = 0;
    size_t s = (size_t)L->s;
    memcpy(tr->x0c, x0, B * s * sizeof(float));
    memcpy(tr->tgc, target, B * s * sizeof(float));
    /* the arrays of tr->a are laid out for max_batch rows; a batch uses their first B rows */
    pack_weights(tr);
    int rc = tl_forward(L, tr->model->params, NULL, &tr->pk, tr->sim, &tr->a, B, tr->x0c, tr->tgc,
                        time_left);
    if (rc)
        return rc;
    tr->B = B;
    if (iterates)
        memcpy(iterates, tr->a.iters, (size_t)(L->H + 1) * B * (size_t)L->U * sizeof(float));
    return TRC_OK;
}

double trc_tl_mse(const trc_tl_trainer *tr, const float *u_expert, float *dU) {
    const tl_layout *L = &tr->L;
    size_t nU = tr->B * (size_t)L->U;
    const float *uH = tr->a.iters + (size_t)L->H * nU;
    double acc = 0.0;
    for (size_t i = 0; i < nU; i++) {
        double e = (double)uH[i] - (double)u_expert[i];
        acc += e * e;
    }
    if (dU) {
        memset(dU, 0, (size_t)L->H * nU * sizeof *dU);
        float scale = 2.0f / (float)nU;
        for (size_t i = 0; i < nU; i++)
            dU[(size_t)L->H * nU + i] = scale * (uH[i] - u_expert[i]);
    }
    return acc / (double)nU;
}

/* ---- backward pieces ---- */

/* m->out's gradient dout: [B, o] -> din (+=, [B, k], NULL to skip); parameter gradients. */
static void mlp_backward(struct trc_tl_trainer *tr, trc_lin_off l0, trc_lin_off ln, trc_lin_off l3,
                         const tl_mlp *m, const float *dout, float *din, size_t B, int k, int h,
                         int o) {
    const float *P = tr->model->params;
    float *G = tr->grads;
    size_t nh = B * (size_t)h;
    memset(tr->gh1, 0, nh * sizeof(float));
    trc_linear_precise_backward(tr->gh1, G + l3.w, G + l3.b, dout, m->N, P + l3.w, B, h, o);
    memset(tr->gh2, 0, nh * sizeof(float));
    trc_layernorm_backward(tr->gh2, G + ln.w, G + ln.b, tr->gh1, m->S, P + ln.w, m->mean, m->rstd,
                           B, h);
    memset(tr->dH, 0, nh * sizeof(float));
    trc_silu_backward(tr->dH, tr->gh2, m->H, m->sig, nh);
    trc_linear_precise_backward(din, G + l0.w, G + l0.b, tr->dH, m->in, P + l0.w, B, k, h);
}

static void norm_backward(struct trc_tl_trainer *tr, trc_lin_off n, float *dx, const float *dy,
                          const float *x, const float *mean, const float *rstd, size_t B, int C) {
    const float *P = tr->model->params;
    float *G = tr->grads;
    if (n.b == TL_NONE)
        trc_rmsnorm_backward(dx, G + n.w, dy, x, P + n.w, rstd, B, C);
    else
        trc_layernorm_backward(dx, G + n.w, G + n.b, dy, x, P + n.w, mean, rstd, B, C);
}

/* dz: [B, d] gradient of a->zout -> dz: gradient of a->zin (overwritten). */
static void block_backward(struct trc_tl_trainer *tr, int i, const tl_app *a, float *dz, size_t B) {
    const tl_layout *L = &tr->L;
    const tl_block_off *o = &L->blk[i];
    const float *P = tr->model->params;
    float *G = tr->grads;
    int d = L->d, I = L->ffn, fo = L->fc_in_out;
    size_t nd = B * (size_t)d;
    float *dr2 = tr->dt1, *dz1 = tr->dt2, *dr1 = tr->dt1;
    memset(dr2, 0, nd * sizeof(float));
    norm_backward(tr, o->norm2, dr2, dz, a->r2, a->m2, a->rs2, B, d);
    memcpy(dz1, dr2, nd * sizeof(float)); /* residual r2 = z1 + ffn(z1) */
    memset(tr->dS, 0, B * (size_t)I * sizeof(float));
    trc_linear_backward(tr->dS, G + o->fc_out.w, G + o->fc_out.b, dr2, a->S, P + o->fc_out.w, B, I,
                        d);
    memset(tr->dG, 0, B * (size_t)fo * sizeof(float));
    if (L->kind == TRC_TL_LN_SILU)
        trc_silu_backward(tr->dG, tr->dS, a->G, a->sig, B * (size_t)I);
    else
        trc_swiglu_backward(tr->dG, tr->dS, a->G, a->sig, B, I);
    trc_linear_backward(dz1, G + o->fc_in.w, G + o->fc_in.b, tr->dG, a->z1, P + o->fc_in.w, B, d,
                        fo);
    memset(dr1, 0, nd * sizeof(float));
    norm_backward(tr, o->norm1, dr1, dz1, a->r1, a->m1, a->rs1, B, d);
    memcpy(dz, dr1, nd * sizeof(float)); /* residual r1 = zin + attn(zin) */
    memset(tr->dA, 0, nd * sizeof(float));
    trc_linear_backward(tr->dA, G + o->out.w, G + o->out.b, dr1, a->A, P + o->out.w, B, d, d);
    size_t vo = 2 * (size_t)d;
    trc_linear_backward(dz, G + o->in_w + vo * d, G + o->in_b + vo, tr->dA, a->zin,
                        P + o->in_w + vo * d, B, d, d);
}

/* Lmod(h, inj) backward over apps[0..layers): dz (gradient of the output) -> dz (gradient of
 * the sum h + inj, which is the gradient of both h and inj). */
static void lmod_backward(struct trc_tl_trainer *tr, const tl_app *apps, float *dz, size_t B) {
    for (int i = tr->L.layers - 1; i >= 0; i--)
        block_backward(tr, i, &apps[i], dz, B);
}

/* du (+=, [B, U]) from the error embedding's input gradient de [B, 2] through the simulator:
 * dL/du_t = B_t' lambda_{t+1}, lambda_T = de, lambda_t = A_t' lambda_{t+1}. */
static void feedback_backward(struct trc_tl_trainer *tr, const float *u, float *du, size_t B) {
    const tl_layout *L = &tr->L;
    int s = L->s, m = L->m, T = L->T, U = L->U;
    double *A = tr->jac, *Bm = tr->jac + (size_t)T * s * s;
    for (size_t r = 0; r < B; r++) {
        tr->sim->rollout(tr->sim->ctx, tr->x0c + r * s, u + r * U, tr->a.traj, A, Bm);
        double lam[16] = {0}, nl[16];
        for (int j = 0; j < 2; j++)
            lam[j] = tr->de[r * 2 + j];
        for (int t = T - 1; t >= 0; t--) {
            const double *At = A + (size_t)t * s * s, *Bt = Bm + (size_t)t * s * m;
            for (int j = 0; j < m; j++) {
                double g = 0.0;
                for (int q = 0; q < s; q++)
                    g += Bt[q * m + j] * lam[q];
                du[r * U + (size_t)t * m + j] += (float)g;
            }
            for (int q = 0; q < s; q++) {
                double g = 0.0;
                for (int p = 0; p < s; p++)
                    g += At[p * s + q] * lam[p];
                nl[q] = g;
            }
            memcpy(lam, nl, (size_t)s * sizeof *lam);
        }
    }
}

int trc_tl_trainer_backward(trc_tl_trainer *tr, const float *dU) {
    if (!tr || !dU)
        return trc_fail(TRC_EINVAL, "two-level backward: NULL argument");
    if (tr->B == 0)
        return trc_fail(TRC_EINVAL, "two-level backward: no successful forward to differentiate");
    const tl_layout *L = &tr->L;
    const float *P = tr->model->params;
    float *G = tr->grads;
    const tl_acts *a = &tr->a;
    size_t B = tr->B, d = (size_t)L->d, U = (size_t)L->U, nU = B * U, nd = B * d;
    size_t per_cycle = (size_t)(L->L + 1) * (size_t)L->layers;
    memset(G, 0, tr->model->num_floats * sizeof *G);
    memset(tr->dz0, 0, nd * sizeof(float));
    int carry = 0; /* dzH, dzL hold the gradient of the next cycle's starting states */
    memcpy(tr->du, dU + (size_t)L->H * nU, nU * sizeof(float));
    for (int k = L->H - 1; k >= 0; k--) {
        const float *u = a->iters + (size_t)k * nU;
        const tl_mlp *dec = &a->dec[k];
        /* u_{k+1} = clamp(v), v = u_k + r, r = (b/2) tanh(dec([zH, u_k])) */
        memset(tr->dv, 0, nU * sizeof(float));
        trc_clamp_backward(tr->dv, tr->du, a->v + (size_t)k * nU, L->bound, nU);
        for (size_t i = 0; i < nU; i++) /* residual, plus the loss's own gradient of u_k */
            tr->duk[i] = tr->dv[i] + dU[(size_t)k * nU + i];
        memset(tr->dout, 0, nU * sizeof(float));
        trc_tanhscale_backward(tr->dout, tr->dv, dec->out, 0.5f * L->bound, nU);
        memset(tr->dcat, 0, B * (d + U) * sizeof(float));
        mlp_backward(tr, L->dec0, L->dec2, L->dec3, dec, tr->dout, tr->dcat, B, L->d + L->U, L->h,
                     L->U);
        for (size_t r = 0; r < B; r++)
            for (size_t j = 0; j < U; j++)
                tr->duk[r * U + j] += tr->dcat[r * (d + U) + d + j];
        if (tl_cycle_diff(L, k)) {
            const tl_app *apps = &a->apps[(size_t)tl_store_index(L, k) * per_cycle];
            /* zH_{k+1}: from the decoder, plus the next cycle's start */
            for (size_t r = 0; r < B; r++)
                for (size_t j = 0; j < d; j++)
                    tr->dz[r * d + j] =
                        tr->dcat[r * (d + U) + j] + (carry ? tr->dzH[r * d + j] : 0.0f);
            if (!carry)
                memset(tr->dzL, 0, nd * sizeof(float));
            /* zH_{k+1} = Lmod(zH_k, zL_L): the sum's gradient goes to zH_k and zL_L */
            lmod_backward(tr, apps + (size_t)L->L * L->layers, tr->dz, B);
            memcpy(tr->dzH, tr->dz, nd * sizeof(float));
            trc_residual_backward(tr->dzL, tr->dz, nd);
            memset(tr->dinj, 0, nd * sizeof(float));
            for (int l = L->L - 1; l >= 0; l--) { /* zL_{l+1} = Lmod(zL_l, inj) */
                lmod_backward(tr, apps + (size_t)l * L->layers, tr->dzL, B);
                trc_residual_backward(tr->dinj, tr->dzL, nd);
            }
            /* inj = (zH_k + z0) + c, c = ctrl_emb(u_k) [+ err_emb(e_k)] */
            trc_residual_backward(tr->dzH, tr->dinj, nd);
            trc_residual_backward(tr->dz0, tr->dinj, nd);
            trc_linear_backward(tr->duk, G + L->ctrl_emb.w, G + L->ctrl_emb.b, tr->dinj, u,
                                P + L->ctrl_emb.w, B, L->U, L->d);
            if (L->feedback) {
                memset(tr->de, 0, B * 2 * sizeof(float));
                trc_linear_backward(tr->de, G + L->err_emb.w, G + L->err_emb.b, tr->dinj,
                                    a->err + (size_t)k * B * 2, P + L->err_emb.w, B, 2, L->d);
                feedback_backward(tr, u, tr->duk, B);
            }
            carry = 1;
        } else {
            carry = 0; /* zH_{k+1} and this cycle's states are constants */
        }
        memcpy(tr->du, tr->duk, nU * sizeof(float));
    }
    if (carry) /* cycle 0 differentiated: its starting states are H_init, L_init for every row */
        for (size_t r = 0; r < B; r++)
            for (size_t j = 0; j < d; j++) {
                G[L->H_init + j] += tr->dzH[r * d + j];
                G[L->L_init + j] += tr->dzL[r * d + j];
            }
    /* u_0 = b tanh(gen(z0)); z0 = enc(x) */
    memset(tr->dout, 0, nU * sizeof(float));
    trc_tanhscale_backward(tr->dout, tr->du, a->iters, L->bound, nU);
    mlp_backward(tr, L->gen0, L->gen2, L->gen3, &a->gen, tr->dout, tr->dz0, B, L->d, L->h, L->U);
    mlp_backward(tr, L->enc0, L->enc2, L->enc3, &a->enc, tr->dz0, NULL, B, L->in_dim, L->h, L->d);
    /* what has no gradient stays exactly zero: buffers, H_init/L_init under truncation */
    for (size_t i = 0; i < tr->model->num_views; i++)
        if (!tr->model->has_grad[i])
            memset(G + tr->model->views[i].offset, 0, tr->model->views[i].numel * sizeof *G);
    for (size_t i = 0; i < tr->model->num_floats; i++)
        if (!isfinite(G[i]))
            return trc_fail(TRC_ENUMERIC, "two-level backward: gradient %zu is not finite", i);
    return TRC_OK;
}

int trc_tl_trainer_step_mse(trc_tl_trainer *tr, size_t B, const float *x0, const float *target,
                            const float *u_expert, float *loss) {
    if (!tr || !u_expert || !loss)
        return trc_fail(TRC_EINVAL, "two-level step: NULL argument");
    int rc = trc_tl_trainer_forward(tr, B, x0, target, NULL, NULL);
    if (rc)
        return rc;
    size_t n = (size_t)(tr->L.H + 1) * B * (size_t)tr->L.U;
    float *dU = malloc(n * sizeof *dU);
    if (!dU)
        return trc_fail(TRC_ENOMEM, "two-level step: out of memory");
    *loss = (float)trc_tl_mse(tr, u_expert, dU);
    rc = isfinite(*loss) ? trc_tl_trainer_backward(tr, dU)
                         : trc_fail(TRC_ENUMERIC, "two-level step: loss is not finite");
    free(dU);
    return rc;
}
