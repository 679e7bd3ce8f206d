/* trc_model_infer: the forward pass of model.md for a batch, keeping no activations beyond the
 * current step. Rows are processed in chunks so scratch stays small and cache-resident; the
 * scratch is allocated per call, so any number of threads may infer on one read-only model. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "model_layout.h"
#include "trc/error.h"
#include "trc/model.h"

#define CHUNK 256 /* rows per pass: big enough for efficient sgemm, small enough for L2 */

typedef struct scratch {
    float *x;   /* [C, 2s+1] */
    float *hid; /* [C, h] */
    float *z0, *z, *zin, *A, *tmp; /* [C, d] */
    float *cat; /* [C, d+U] */
    float *u, *r; /* [C, U] */
} scratch;

/* z: [nb, d] -> z: [nb, d], one reasoning block (model.md) with context z0: [nb, d]. */
static void block_forward(const trc_model_layout *L, const float *P, const trc_block_off *o,
                          const scratch *S, size_t nb)
{
    int d = L->d, h = L->h;
    size_t nd = nb * (size_t)d;
    trc_residual_forward(S->zin, S->z, S->z0, nd);
    /* attention of one token: out_proj(V z + v), V and v the value rows of in_proj */
    trc_linear_forward(S->A, S->zin, P + o->in_w + 2 * (size_t)d * d, P + o->in_b + 2 * d, nb, d,
                       d);
    trc_linear_forward(S->tmp, S->A, P + o->out.w, P + o->out.b, nb, d, d);
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
                        int h, int o, const float *in, float *hid, float *out, size_t nb)
{
    trc_linear_forward(hid, in, P + l0.w, P + l0.b, nb, k, h);
    trc_silu_forward(hid, NULL, hid, nb * (size_t)h);
    trc_layernorm_forward(hid, NULL, NULL, hid, P + ln.w, P + ln.b, nb, h);
    trc_linear_forward(out, hid, P + l3.w, P + l3.b, nb, h, o);
}

static void chunk_forward(const trc_model_layout *L, const float *P, const scratch *S, size_t nb,
                          const float *x0, const float *target, float *u_out, float *iterates,
                          size_t B)
{
    int s = L->s, U = L->U, d = L->d, h = L->h, in = L->in_dim;
    size_t nU = nb * (size_t)U;
    for (size_t r = 0; r < nb; r++) {
        float *xr = S->x + r * (size_t)in;
        memcpy(xr, x0 + r * (size_t)s, (size_t)s * sizeof *xr);
        memcpy(xr + s, target + r * (size_t)s, (size_t)s * sizeof *xr);
        xr[2 * s] = 1.0f;
    }
    mlp_forward(P, L->enc0, L->enc2, L->enc3, in, h, d, S->x, S->hid, S->z0, nb);
    mlp_forward(P, L->gen0, L->gen2, L->gen3, d, h, U, S->z0, S->hid, S->u, nb);
    trc_tanhscale_forward(S->u, S->u, L->bound, nU);
    if (iterates)
        memcpy(iterates, S->u, nU * sizeof *S->u);
    for (int k = 0; k < L->K; k++) {
        trc_linear_forward(S->z, S->u, P + L->ctrl_emb.w, P + L->ctrl_emb.b, nb, U, d);
        trc_residual_forward(S->z, S->z, S->z0, nb * (size_t)d);
        for (int j = 0; j < L->n; j++)
            for (int i = 0; i < L->blocks; i++)
                block_forward(L, P, &L->blk[i], S, nb);
        for (size_t r = 0; r < nb; r++) {
            float *c = S->cat + r * (size_t)(d + U);
            memcpy(c, S->z + r * (size_t)d, (size_t)d * sizeof *c);
            memcpy(c + d, S->u + r * (size_t)U, (size_t)U * sizeof *c);
        }
        mlp_forward(P, L->dec0, L->dec2, L->dec3, d + U, h, U, S->cat, S->hid, S->r, nb);
        trc_tanhscale_forward(S->r, S->r, 0.5f * L->bound, nU);
        trc_residual_forward(S->u, S->u, S->r, nU);
        trc_clamp_forward(S->u, S->u, L->bound, nU);
        if (iterates)
            memcpy(iterates + (size_t)(k + 1) * B * U, S->u, nU * sizeof *S->u);
    }
    memcpy(u_out, S->u, nU * sizeof *S->u);
}

int trc_model_infer(const trc_model *model, size_t B, const float *x0, const float *target,
                    float *u_out, float *iterates)
{
    if (!model || !model->params)
        return trc_fail(TRC_EINVAL, "model infer: model not created");
    if (!x0 || !target || !u_out)
        return trc_fail(TRC_EINVAL, "model infer: NULL input or output");
    if (B == 0 || B > (size_t)INT32_MAX / 4)
        return trc_fail(TRC_EINVAL, "model infer: batch size must be in [1, %d], got %zu",
                        INT32_MAX / 4, B);
    int rc = trc_model_config_validate(&model->cfg);
    if (rc)
        return rc;
    trc_model_layout L;
    trc_model_layout_build(&model->cfg, &L, NULL, NULL);
    if (L.num_params != model->num_params)
        return trc_fail(TRC_EINVAL, "model infer: parameter count does not match the config");

    size_t C = B < CHUNK ? B : CHUNK, d = (size_t)L.d, U = (size_t)L.U;
    size_t sizes[] = {C * (size_t)L.in_dim, C * (size_t)L.h, C * d, C * d, C * d, C * d, C * d,
                      C * (d + U), C * U, C * U};
    size_t total = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        total += sizes[i];
    float *buf = malloc(total * sizeof *buf);
    if (!buf)
        return trc_fail(TRC_ENOMEM, "model infer: cannot allocate scratch for %zu rows", C);
    scratch S;
    float **slots[] = {&S.x, &S.hid, &S.z0, &S.z, &S.zin, &S.A, &S.tmp, &S.cat, &S.u, &S.r};
    float *p = buf;
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++) {
        *slots[i] = p;
        p += sizes[i];
    }

    for (size_t r0 = 0; r0 < B; r0 += C) {
        size_t nb = B - r0 < C ? B - r0 : C;
        chunk_forward(&L, model->params, &S, nb, x0 + r0 * L.s, target + r0 * L.s,
                      u_out + r0 * U, iterates ? iterates + r0 * U : NULL, B);
    }
    free(buf);

    for (size_t i = 0; i < B * U; i++)
        if (!isfinite(u_out[i]))
            return trc_fail(TRC_ENUMERIC, "model infer: output %zu (sample %zu) is not finite", i,
                            i / U);
    return 0;
}
