/* Architectures: the networks TRC can run and train, one ops table each (core/src/nn/<name>.c,
 * registered by one line in core/src/nn/table.h): the named sizes, the parameter layout with
 * the PyTorch names spelled once (and alternative spellings the loader accepts), the
 * configuration a bare PyTorch export implies by its shapes, inference (with an optional plan of
 * pre-packed weights) and the trainer (forward keeping activations, backward). A model's
 * architecture is trc_model_config.arch, recorded in checkpoint metadata ("arch"; a file
 * without it is "single", the network of docs/model.md). Adding one: docs/extending.md. */
#ifndef TRC_ARCH_H
#define TRC_ARCH_H

#include <stddef.h>

#include "trc/model.h"
#include "trc/safetensors.h"

#define TRC_ARCH_DEFAULT "single"

/* A named size of an architecture ("small", "medium", "large"). */
typedef struct trc_arch_size {
    const char *name;
    int d, h, blocks, heads;
    int K, n; /* its default cycles (0: 3 and 3) */
} trc_arch_size;

/* Receives the parameters of a layout in checkpoint order (core/src/nn/layout.h). */
typedef struct trc_layout_builder trc_layout_builder;

/* The loss an architecture's trainer applies to its iterates, for rows [r0, r1) of the batch:
 * iterates [(K+1), B, U] -> returns the rows' share of the loss (summed in row order) and
 * writes their rows of grad [(K+1), B, U] (d loss / d iterate). The trainer calls it once per
 * thread part, in part order. */
typedef struct trc_loss_rows {
    double (*rows)(const void *ctx, const float *iterates, size_t r0, size_t r1, float *grad);
    const void *ctx;
    int final_only; /* 1: grad is 0 for every iterate but the last (backward may skip them) */
} trc_loss_rows;

typedef struct trc_arch {
    const char *name;
    const char *about; /* one line */
    const trc_arch_size *sizes;
    size_t nsizes;
    /* 1 when backward differentiates only the last outer cycle by design (gradient truncation,
     * model-v2.md): it is then the exact gradient only at K = 1, where checks compare it with
     * finite differences. */
    int grad_last_cycle_only;
    /* Checks what is specific to the architecture (the generic fields are checked first). */
    int (*validate)(const trc_model_config *cfg);
    /* Adds every parameter, in checkpoint order (trc_layout_add and friends). */
    void (*layout)(const trc_model_config *cfg, trc_layout_builder *b);
    /* The configuration a bare export's tensors imply (m given: shapes tell only T*m).
     * TRC_ENOTFOUND (with a message) when the tensors are not this architecture's. */
    int (*from_shapes)(const trc_safetensors *st, int m, trc_model_config *cfg);

    /* Inference: [B, s] pairs -> u_out [B, U], iterates [(K+1), B, U] or NULL. Optional: without
     * it, inference runs the trainer's forward (one forward definition for both; a dedicated
     * infer keeps no activations and may use packed kernels, as single's does). */
    /* time_left [B] (NULL = 1): the encoder's last input per row (trc_model_infer_mt). */
    int (*infer)(const trc_model *model, size_t B, const float *x0, const float *target,
                 const float *time_left, float *u_out, float *iterates, int threads);
    /* Optional plan: weights prepared once for many small batches (NULL: plans call infer). */
    int (*plan_create)(const trc_model *model, void **plan);
    int (*plan_run)(const void *plan, size_t B, const float *x0, const float *target,
                    const float *time_left, float *u_out, float *iterates, int threads);
    void (*plan_free)(void *plan);
    /* Optional: a plan (run and freed as above) with bf16 weights (model.h, TRC_PRECISION_BF16);
     * NULL: the architecture has none. */
    int (*plan_create_bf16)(const trc_model *model, void **plan);

    /* Training: activations for up to max_batch rows, gradients in the layout of params. */
    int (*trainer_create)(const trc_model *model, size_t max_batch, void **tr);
    void (*trainer_free)(void *tr);
    int (*trainer_set_threads)(void *tr, int threads);
    float *(*trainer_grads)(void *tr);
    /* Forward of B rows keeping activations; calls loss->rows per thread part and returns the
     * sum of the parts (in part order) in *loss_sum. u_out [B, U] (the last iterate) may be
     * NULL. */
    int (*trainer_forward)(void *tr, size_t B, const float *x0, const float *target,
                           const float *time_left, const trc_loss_rows *loss, float *u_out,
                           double *loss_sum);
    /* Backward of the last forward with the loss's iterate gradients (as written by rows):
     * overwrites the parameter gradients. */
    int (*trainer_backward)(void *tr);
    /* Optional: 1 when the parameter `name` has no gradient at all under cfg (PyTorch's
     * `grad is None`: the optimizer leaves it untouched, trc_adamw_freeze), 0 otherwise. */
    int (*grad_absent)(const trc_model_config *cfg, const char *name);
    /* 1 when inference and training implement trc_model_config.feedback (the others refuse a
     * configuration that asks for it). */
    int feedback;
} trc_arch;

size_t trc_arch_count(void);
const trc_arch *trc_arch_at(size_t i);
/* NULL with trc_errmsg listing the known ones (TRC_ENOTFOUND) when unknown. */
const trc_arch *trc_arch_find(const char *name);
/* The architecture of a configuration ("" = TRC_ARCH_DEFAULT); NULL when unknown. */
const trc_arch *trc_arch_of(const trc_model_config *cfg);
/* trc_model_infer_mt through the architecture's trainer forward: what inference is for an
 * architecture without its own infer, and a check of one that has it. */
int trc_model_infer_via_trainer(const trc_model *model, size_t B, const float *x0,
                                const float *target, const float *time_left, float *u_out,
                                float *iterates, int threads);
/* The named size of an architecture, or NULL. */
const trc_arch_size *trc_arch_size_find(const trc_arch *a, const char *size);

#endif
