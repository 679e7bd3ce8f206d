/* The forward pass of the two-level networks and the activations it keeps, shared by inference
 * (nothing kept beyond the current step) and training (every decoder step, and every block
 * application of the differentiated H cycles). Arrays are [rows, features] for the B rows of
 * the batch. Internal to libtrc. */
#ifndef TRC_TWO_LEVEL_ACTS_H
#define TRC_TWO_LEVEL_ACTS_H

#include <stddef.h>

#include "two_level_layout.h"

/* One application of one shared block. */
typedef struct tl_app {
    float *zin, *A, *r1, *z1, *r2, *zout; /* [B, d]: input, V z + v, pre-norm1, norm1, pre-norm2 */
    float *G;                             /* [B, fc_in_out] fc_in output */
    float *sig, *S;                       /* [B, I] sigmoid of the gate, FFN hidden */
    float *m1, *rs1, *m2, *rs2;           /* [B] norm statistics (RMS: rs only) */
} tl_app;

/* A Linear -> silu -> LN -> Linear stack (encoder, decoders), one application. */
typedef struct tl_mlp {
    float *in;                            /* [B, k] input copy (decoder: [z_H, u]) */
    float *H, *sig, *S, *N, *mean, *rstd; /* [B, h] / [B] */
    float *out;                           /* [B, o] last Linear output (decoders: after tanh) */
} tl_mlp;

typedef struct tl_acts {
    size_t B;   /* rows the arrays hold */
    int nstore; /* H cycles whose block applications are kept (0: inference) */
    int ndec;   /* decoder steps kept (H, or 1 for inference) */
    float *arena;
    float *x, *z0, *zH, *zL, *c, *inj; /* [B, 2s+1], [B, d] x5 */
    float *iters;                      /* [H+1][B][U] */
    float *v;                          /* [ndec][B][U] pre-clamp */
    float *err;                        /* [H][B][2] feedback errors e_k */
    float *traj;                       /* [(T+1) s] one row's trajectory */
    tl_mlp enc, gen, *dec;             /* dec: [ndec] */
    tl_app *apps;                      /* [nstore * (L+1) * layers], then one scratch */
} tl_acts;

/* Allocates the activations for B rows; nstore 0 (inference) or the differentiated cycles. */
int tl_acts_alloc(const tl_layout *L, size_t B, int nstore, tl_acts *a);
void tl_acts_free(tl_acts *a);

/* Cycle k is differentiated (its reasoning is recorded for backward). */
static inline int tl_cycle_diff(const tl_layout *L, int k) {
    return !L->truncate || k == L->H - 1;
}
/* Index among the stored cycles of differentiated cycle k. */
static inline int tl_store_index(const tl_layout *L, int k) {
    return L->truncate ? 0 : k;
}

/* Weights packed once for inference (linear_packed.h; an inference plan, two_level_plan.c): per
 * layer the fused attention (see tl_fuse_attention) with its bias, fc_in and fc_out, and the
 * control embedding; the encoder's, generator's and decoder's Linears widened to double
 * (nn_layers.h, trc_linear_dpack: their sums stay in double). */
typedef struct tl_packed {
    const float *attn[TRC_TL_MAX_LAYERS], *attn_b[TRC_TL_MAX_LAYERS];
    const float *fc_in[TRC_TL_MAX_LAYERS], *fc_out[TRC_TL_MAX_LAYERS];
    const float *ctrl;
    const double *enc0, *enc3, *gen0, *gen3, *dec0, *dec3;
    /* train: the trainer's weights packed once per step -- the attention unfused (val: the
     * value rows of in_proj, out: out_proj; attn unused), the FFN, the control embedding and
     * the MLPs' doubles (tl_dlins_pack) */
    int train;
    const float *val[TRC_TL_MAX_LAYERS], *out[TRC_TL_MAX_LAYERS];
} tl_packed;

/* The forward pass for rows [0, B) of a (B <= a->B). sim is used when L->feedback. With pk
 * (inference: a->nstore == 0; or pk->train), the blocks and the control embedding run on the
 * packed weights, residual adds and SiLU in the products' epilogues, and `fused` is not used.
 * Returns TRC_ENUMERIC if an iterate is not finite. */
int tl_forward(const tl_layout *L, const float *P, const float *fused, const tl_packed *pk,
               const trc_tl_sim *sim, tl_acts *a, size_t B, const float *x0, const float *target,
               const float *time_left);
/* The MLP Linears summed in double (the encoder's, generator's and decoder's: tl_packed's enc0 ..
 * dec3): doubles they take widened and packed (trc_linear_dpack), and the packing of the
 * parameters P into dbuf with pk's pointers set to it. Plans pack once, trainers once a step
 * (a Linear summed from float weights widens and transposes them at every call: the decoders
 * run once per H cycle). */
size_t tl_dlins_size(const tl_layout *L);
void tl_dlins_pack(const tl_layout *L, const float *P, tl_packed *pk, double *dbuf);
/* The attention of every block fused (as the single-latent network's inference does): for block
 * i, fused + i * (d*d + d) receives W_o V ([d, d]) then W_o v + c_o ([d]). tl_forward uses it
 * when not NULL (one d x d product per application instead of two; A is then not kept). */
void tl_fuse_attention(const tl_layout *L, const float *P, float *fused);

#endif
