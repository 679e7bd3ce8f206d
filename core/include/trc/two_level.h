/* The original's later (a273222) two-level networks, shared/docs/model-v2.md: `two_level`
 * (SiLU FFN + LayerNorm blocks, trainable H_init/L_init) and `trm_style` (SwiGLU FFN + RMSNorm
 * blocks, fixed H_init/L_init buffers read from the checkpoint). One set of `layers` blocks is
 * shared by the z_L and z_H updates; H outer cycles of L z_L updates and one z_H update; decode
 * from z_H. Gradient truncation (on in every preset): only the last H cycle differentiates the
 * reasoning, so some parameters have an ABSENT gradient (not zero): AdamW and the clipping norm
 * skip them (trc_tl_optim_step). Parameters live in one float buffer with named views in
 * PyTorch state_dict order; gradients use the same layout. */
#ifndef TRC_TWO_LEVEL_H
#define TRC_TWO_LEVEL_H

#include <stddef.h>
#include <stdint.h>

#include "trc/model.h"
#include "trc/optim.h"
#include "trc/safetensors.h"

#define TRC_TL_MAX_LAYERS 16

typedef enum {
    TRC_TL_LN_SILU = 0,    /* two_level: LN(z + f(z)) with f = fc_out(silu(fc_in z)) */
    TRC_TL_RMS_SWIGLU = 1, /* trm_style: RMS(z + f(z)) with f = fc_out(silu(g) * q) */
} trc_tl_block_kind;

typedef struct trc_tl_config {
    char arch[16];     /* "two_level" or "trm_style" */
    char size[16];     /* "small", "medium", "large" or "custom" */
    int s, m, T;       /* problem shape; U = T*m */
    float bound;       /* control bound b */
    int d, h, ffn;     /* latent, encoder/decoder hidden, FFN width I (= int(d * (h / d))) */
    int layers, heads; /* shared blocks (L_layers), heads (recorded only) */
    int H, L;          /* H cycles, L cycles (>= 1) */
    int truncate;      /* 1: only the last H cycle differentiates the reasoning */
    int feedback;      /* 1: trajectory feedback through error_embedding (needs s == 2) */
    int kind;          /* trc_tl_block_kind, from arch */
    char system[32];   /* the system the model was trained for ("" if unknown) */
    double dt;         /* its time step (0 if unknown) */
} trc_tl_config;

/* Fills cfg for arch ("two_level" | "trm_style") and size ("small" | "medium" | "large"):
 * model-v2.md section 1 (truncation on, feedback off). */
int trc_tl_config_preset(const char *arch, const char *size, int s, int m, int T, float bound,
                         trc_tl_config *cfg);
int trc_tl_config_validate(const trc_tl_config *cfg);

/* A view's role: trained parameter, or buffer (stored in checkpoints, never trained). */
enum { TRC_TL_PARAM = 0, TRC_TL_BUFFER = 1 };

typedef struct trc_tl_model {
    trc_tl_config cfg;
    size_t num_floats;       /* parameters + buffers in `params` */
    size_t num_trainable;    /* parameters only (the counts of model-v2.md section 10) */
    float *params;           /* one allocation */
    trc_param_view *views;   /* every tensor in state_dict order */
    unsigned char *role;     /* [num_views] TRC_TL_PARAM or TRC_TL_BUFFER */
    unsigned char *has_grad; /* [num_views] 1 when the tensor's gradient is present */
    size_t num_views;
} trc_tl_model;

/* Number of trainable parameters of a configuration (0 if invalid). */
size_t trc_tl_param_count(const trc_tl_config *cfg);
/* 1 when the tensor `name` has no gradient under cfg (PyTorch's `grad is None`): the error
 * encoder; error_embedding without feedback; H_init/L_init when cycle 0 is truncated (H >= 2),
 * and always in trm_style, where they are buffers. */
int trc_tl_grad_absent(const trc_tl_config *cfg, const char *name);
int trc_tl_create(const trc_tl_config *cfg, trc_tl_model *model);
/* The original's initialization (model-v2.md section 8) from a seed. */
int trc_tl_init(trc_tl_model *model, uint64_t seed);
void trc_tl_free(trc_tl_model *model);
const trc_param_view *trc_tl_find(const trc_tl_model *model, const char *name);
/* Copies every tensor of st into model by name, strictly: each view present with its shape,
 * nothing extra. The FFN keys may use either spelling (ffn.fc_in / ffn.fc_out or the
 * ec6511d ffn.0 / ffn.3). */
int trc_tl_load_tensors(const trc_safetensors *st, trc_tl_model *model);
/* Infers arch and configuration from the tensor shapes of a state_dict export (no metadata):
 * RMS blocks (no norm bias) mean trm_style; H, L, truncation from the matching preset (or
 * 3, 4, on for custom shapes); b = 4 unless bound > 0. */
int trc_tl_config_from_tensors(const trc_safetensors *st, int m, float bound, trc_tl_config *cfg);

/* Checkpoints: these networks are architectures of the table (trc/arch.h: "two_level",
 * "trm_style"), so trc_checkpoint_load / trc_checkpoint_save read and write them as trc_model
 * (arch and names in the metadata; bare exports by their shapes). */

/* A simulator for trajectory feedback and process supervision: rolls one sample forward.
 * x0: [s], u: [T*m] -> traj: [(T+1)*s]; A: [T][s*s], Bm: [T][s*m] (row-major Jacobians of each
 * step at (x_t, u_t)) when not NULL. */
typedef struct trc_tl_sim {
    int s, m, T;
    void (*rollout)(void *ctx, const float *x0, const float *u, float *traj, double *A, double *Bm);
    void *ctx;
} trc_tl_sim;

/* Inference for B samples (thread-safe on a shared model; scratch per call). x0, target: [B, s];
 * time_left [B] (the encoder's last input, trc_model_infer_mt) may be NULL (1); u_out: [B, U];
 * iterates [(H+1), B, U] and latent [B, d] (final z_H) may be NULL. sim is required when
 * cfg.feedback, else ignored. */
int trc_tl_infer(const trc_tl_model *model, const trc_tl_sim *sim, size_t B, const float *x0,
                 const float *target, const float *time_left, float *u_out, float *iterates,
                 float *latent);

/* Training: the forward keeps what backward needs (every decoder step; the reasoning of the
 * differentiated cycles only). */
typedef struct trc_tl_trainer trc_tl_trainer;

int trc_tl_trainer_create(const trc_tl_model *model, size_t max_batch, trc_tl_trainer **out);
void trc_tl_trainer_free(trc_tl_trainer *tr);
/* Feedback simulator (required when cfg.feedback); the trainer keeps the pointer. */
void trc_tl_trainer_set_sim(trc_tl_trainer *tr, const trc_tl_sim *sim);
float *trc_tl_trainer_grads(trc_tl_trainer *tr);
/* Forward keeping activations (time_left as trc_tl_infer). iterates [(H+1), B, U] receives
 * every iterate (may be NULL); the trainer keeps its own copy (trc_tl_trainer_iterates). */
int trc_tl_trainer_forward(trc_tl_trainer *tr, size_t B, const float *x0, const float *target,
                           const float *time_left, float *iterates);
const float *trc_tl_trainer_iterates(const trc_tl_trainer *tr);
/* H cycles, rows of the last forward (0 if none) and U of the trainer's model. */
void trc_tl_trainer_shape(const trc_tl_trainer *tr, int *H, size_t *B, size_t *U);
/* MSE of the last iterate against u_expert [B, U] (over B*U elements); writes its gradient with
 * respect to every iterate into dU [(H+1), B, U] (zero but the last). */
double trc_tl_mse(const trc_tl_trainer *tr, const float *u_expert, float *dU);
/* Backward of the last forward given dU = d loss / d iterate k [(H+1), B, U]: overwrites the
 * gradient buffer (absent gradients are left zero; see model->has_grad). */
int trc_tl_trainer_backward(trc_tl_trainer *tr, const float *dU);
/* forward + MSE + backward in one call; *loss receives the MSE. */
int trc_tl_trainer_step_mse(trc_tl_trainer *tr, size_t B, const float *x0, const float *target,
                            const float *u_expert, float *loss);

/* Clipping and AdamW over the tensors whose gradient is present only, as torch does with
 * `grad is None`: an absent gradient gets no moment update, no weight decay and no part in the
 * clipping norm; buffers are never touched. opt has model->num_floats entries. max_norm <= 0
 * disables clipping; *norm_out (may be NULL) gets the norm before clipping. */
int trc_tl_optim_step(const trc_tl_model *model, trc_adamw *opt, float *grads, double lr,
                      double max_norm, double *norm_out);

/* Process supervision (model-v2.md section 9) over the iterates of the last forward. */
typedef enum { TRC_PROCESS_ORIGINAL = 0, TRC_PROCESS_CORRECTED = 1 } trc_process_variant;

typedef struct trc_process_opts {
    double weight;   /* lambda (0.1) */
    double q, r, qf; /* Q = q I, R = r I, Qf = qf I (1, 0.01, 10) */
    int variant;     /* trc_process_variant */
    /* per-component factors (NULL = 1): Q = q diag(wx), Qf = qf diag(wx) [s], R = r diag(wu)
     * [m] (the trajectory objectives' normalised units and free state components) */
    const double *wx, *wu;
} trc_process_opts;

/* costs [(H+1), B] (may be NULL) receive c_k per iterate and sample; *bc, *reward the two parts;
 * returns the total loss in *loss and its gradient with respect to every iterate in dU. */
int trc_tl_process_loss(const trc_tl_trainer *tr, const trc_tl_sim *sim, const float *x0,
                        const float *target, const float *u_expert, const trc_process_opts *po,
                        float *dU, double *loss, double *bc, double *reward, float *costs);

/* A simulator over a table system (trc_system_find(name)) with time step dt, in double
 * arithmetic (results rounded to float). ctx must stay alive while the sim is used. */
typedef struct trc_tl_sys_ctx {
    const void *sys; /* const trc_system * */
    double dt;
    int T;
} trc_tl_sys_ctx;
int trc_tl_sim_system(const char *name, double dt, int T, trc_tl_sys_ctx *ctx, trc_tl_sim *sim);

#endif
