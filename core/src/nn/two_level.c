/* The "two_level" architecture: two-level z_H/z_L network, SiLU FFN + LayerNorm blocks
 * (model-v2.md). Sizes of model-v2.md section 1 (blocks = L_layers, K = H cycles, n = L cycles);
 * the ops are the two-level engine's (two_level_arch.c). */
#include "trc/arch.h"
#include "two_level_arch.h"

static const trc_arch_size sizes[] = {
    {"small", 64, 128, 2, 2, 3, 4},
    {"medium", 128, 256, 2, 4, 3, 4},
    {"large", 256, 512, 3, 8, 3, 6},
};

static int from_shapes(const trc_safetensors *st, int m, trc_model_config *cfg) {
    return tl_arch_from_shapes("two_level", st, m, cfg);
}

const trc_arch trc_arch_two_level = {
    .name = "two_level",
    .about = "two-level z_H/z_L network, SiLU FFN + LayerNorm blocks (model-v2.md)",
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
