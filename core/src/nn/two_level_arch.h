/* The ops the two_level and trm_style architectures share (two_level_arch.c): the a273222
 * networks of model-v2.md behind the architectures table. trc_model_config maps onto
 * trc_tl_config as blocks -> layers, K -> H cycles, n -> L cycles, FFN width by the original's
 * rule int(d * (h / d)), truncation on (as every factory), feedback off (not a setting of
 * trc_model_config yet). Internal to libtrc. */
#ifndef TRC_TWO_LEVEL_ARCH_H
#define TRC_TWO_LEVEL_ARCH_H

#include "trc/arch.h"
#include "trc/two_level.h"

/* cfg (arch two_level or trm_style) -> t */
void tl_config_from_model(const trc_model_config *cfg, trc_tl_config *t);

int tl_arch_validate(const trc_model_config *cfg);
void tl_arch_layout(const trc_model_config *cfg, trc_layout_builder *b);
int tl_arch_from_shapes(const char *arch, const trc_safetensors *st, int m, trc_model_config *cfg);
int tl_arch_infer(const trc_model *model, size_t B, const float *x0, const float *target,
                  const float *time_left, float *u_out, float *iterates, int threads);
/* Inference plans (two_level_plan.c); a feedback model gets none (*plan = NULL). */
int tl_plan_create(const trc_model *model, void **plan);
int tl_plan_run(const void *plan, size_t B, const float *x0, const float *target,
                const float *time_left, float *u_out, float *iterates, int threads);
void tl_plan_free(void *plan);
int tl_arch_trainer_create(const trc_model *model, size_t max_batch, void **tr);
void tl_arch_trainer_free(void *tr);
int tl_arch_trainer_set_threads(void *tr, int threads);
float *tl_arch_trainer_grads(void *tr);
int tl_arch_trainer_forward(void *tr, size_t B, const float *x0, const float *target,
                            const float *time_left, const trc_loss_rows *loss, float *u_out,
                            double *loss_sum);
int tl_arch_trainer_backward(void *tr);
int tl_arch_grad_absent(const trc_model_config *cfg, const char *name);

/* Process supervision's cost of one sample (model-v2.md section 9): c = sum_{t<T} [q |x_t - x*|^2
 * + r |u_t|^2] + qf |x_T - x*|^2 along sim's rollout of u from x0 (traj: [(T+1) s] scratch);
 * when gu is not NULL, gu [T*m] += scale * dc/du by the adjoint of the rollout (A, Bm: scratch
 * for the Jacobians, [T][s*s] and [T][s*m]). Shared by trc_tl_process_loss and the process
 * objectives (train/process.c) and the trajectory objectives (train/trajectory.c). */
double trc_process_sample_cost(const trc_tl_sim *sim, const trc_process_opts *po, const float *x0,
                               const float *tg, const float *u, float *traj, double *A, double *Bm,
                               float *gu, double scale);

#endif
