/* The "trm_style" architecture: two-level network with SwiGLU FFN + RMSNorm blocks and fixed
 * initial states (model-v2.md). Sizes of model-v2.md section 1 (blocks = L_layers, K = H cycles, n
 * = L cycles); the ops are the two-level engine's (two_level_arch.c). */
#include "trc/arch.h"
#include "two_level_arch.h"

static const trc_arch_size sizes[] = {
    /* the original asks for expansion 4 but never sets hidden_dim: h = 256 everywhere */
    {"small", 64, 256, 2, 2, 3, 4},
    {"medium", 128, 256, 2, 4, 3, 4},
    {"large", 256, 256, 3, 8, 3, 6},
};

static int from_shapes(const trc_safetensors *st, int m, trc_model_config *cfg) {
    return tl_arch_from_shapes("trm_style", st, m, cfg);
}

const trc_arch trc_arch_trm_style = {
    .name = "trm_style",
    .about =
        "two-level network with SwiGLU FFN + RMSNorm blocks and fixed initial states (model-v2.md)",
    .sizes = sizes,
    .nsizes = sizeof sizes / sizeof sizes[0],
    .grad_last_cycle_only = 1,
    .validate = tl_arch_validate,
    .layout = tl_arch_layout,
    .from_shapes = from_shapes,
    .infer = tl_arch_infer,
    .plan_create = tl_plan_create,
    .plan_run = tl_plan_run,
    .plan_free = tl_plan_free,
    .trainer_create = tl_arch_trainer_create,
    .trainer_free = tl_arch_trainer_free,
    .trainer_set_threads = tl_arch_trainer_set_threads,
    .trainer_grads = tl_arch_trainer_grads,
    .trainer_forward = tl_arch_trainer_forward,
    .trainer_backward = tl_arch_trainer_backward,
    .grad_absent = tl_arch_grad_absent,
    .feedback = 1,
};
