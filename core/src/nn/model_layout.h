/* The "single" architecture (single.c, model_infer.c, model_train.c): where each parameter of
 * the network of model.md lives in the one float buffer (offsets in floats), shared by the
 * inference and training paths so that params and grads index the same way.
 * Built in one pass together with the public view table, so the two cannot disagree.
 * Internal to libtrc. */
#ifndef TRC_MODEL_LAYOUT_H
#define TRC_MODEL_LAYOUT_H

#include <stddef.h>

#include "layout.h"
#include "trc/model.h"

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

/* Fills L for a valid cfg. views (num_views entries) and inits may be NULL; when given they
 * receive every parameter in the order of model.md. */
void trc_model_layout_build(const trc_model_config *cfg, trc_model_layout *L, trc_param_view *views,
                            trc_init_spec *inits);

/* Attention of a one-token latent fused into one Linear: for every block i, fused + i*(d*d + d)
 * receives W_o V ([d, d], V the value rows of in_proj) followed by W_o v + c_o ([d]), so that
 * out_proj(V z + v) = (W_o V) z + (W_o v + c_o). blocks * d^3 multiply-adds. */
void trc_model_fuse_attention(const trc_model_layout *L, const float *params, float *fused);

/* The single architecture's entry points (its ops in single.c). model_infer.c: */
int trc_single_infer(const trc_model *model, size_t B, const float *x0, const float *target,
                     const float *time_left, float *u_out, float *iterates, int threads);
int trc_single_plan_create(const trc_model *model, void **out);
/* the same with bf16 weights (TRC_EUNSUPPORTED, saying why, where the CPU/path has none) */
int trc_single_plan_create_bf16(const trc_model *model, void **out);
int trc_single_plan_run(const void *plan, size_t B, const float *x0, const float *target,
                        const float *time_left, float *u_out, float *iterates, int threads);
void trc_single_plan_free(void *plan);
/* model_train.c: */
int trc_single_trainer_create(const trc_model *model, size_t max_batch, void **out);
void trc_single_trainer_free(void *tr);
int trc_single_trainer_set_threads(void *tr, int threads);
float *trc_single_trainer_grads(void *tr);
int trc_single_trainer_forward(void *tr, size_t B, const float *x0, const float *target,
                               const float *time_left, const trc_loss_rows *loss, float *u_out,
                               double *loss_sum);
int trc_single_trainer_backward(void *tr);

#endif
