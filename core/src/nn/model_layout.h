/* Where each parameter of the TRC network lives in the one float buffer (offsets in floats),
 * shared by the inference and training paths so that params and grads index the same way.
 * Built in one pass together with the public view table, so the two cannot disagree.
 * Internal to libtrc. */
#ifndef TRC_MODEL_LAYOUT_H
#define TRC_MODEL_LAYOUT_H

#include <stddef.h>

#include "trc/model.h"

typedef struct trc_lin_off {
    size_t w, b; /* weight [out, in], bias [out] */
} trc_lin_off;

typedef struct trc_block_off {
    size_t in_w, in_b; /* in_proj [3d, d], [3d]; the value rows start at 2d */
    trc_lin_off out, ffn0, ffn3;
    trc_lin_off norm1, norm2; /* LN weight and bias */
} trc_block_off;

typedef struct trc_model_layout {
    int s, m, T, U, d, h, blocks, K, n, in_dim; /* in_dim = 2s+1 */
    float bound;
    trc_lin_off enc0, enc2, enc3; /* state encoder */
    trc_lin_off err0, err2, err3; /* error encoder (unused by the forward pass) */
    trc_block_off blk[TRC_MAX_BLOCKS];
    trc_lin_off ctrl_emb, err_emb; /* control embedding; error embedding (unused) */
    trc_lin_off gen0, gen2, gen3;  /* initial control generator */
    trc_lin_off dec0, dec2, dec3;  /* control decoder */
    size_t num_params, num_views;
} trc_model_layout;

/* How a parameter tensor is initialized (model.md "Initialization used by the original"). */
typedef enum { TRC_INIT_ZERO, TRC_INIT_ONE, TRC_INIT_XAVIER, TRC_INIT_FANIN } trc_init_kind;

typedef struct trc_init_spec {
    trc_init_kind kind;
    float gain; /* Xavier gain */
    int fan_in; /* for TRC_INIT_FANIN: bound 1/sqrt(fan_in) */
} trc_init_spec;

/* Fills L for a valid cfg. views (num_views entries) and inits may be NULL; when given they
 * receive every parameter in the order of model.md. */
void trc_model_layout_build(const trc_model_config *cfg, trc_model_layout *L, trc_param_view *views,
                            trc_init_spec *inits);

/* Attention of a one-token latent fused into one Linear: for every block i, fused + i*(d*d + d)
 * receives W_o V ([d, d], V the value rows of in_proj) followed by W_o v + c_o ([d]), so that
 * out_proj(V z + v) = (W_o V) z + (W_o v + c_o). blocks * d^3 multiply-adds. */
void trc_model_fuse_attention(const trc_model_layout *L, const float *params, float *fused);

/* Sets OpenBLAS to one thread per caller, once per process (see model.h: the model's parallelism
 * is its callers' threads and its own, never BLAS's). */
void trc_model_blas_single(void);

#endif
