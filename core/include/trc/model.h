/* The TRC network of docs/model.md: configuration, parameters in one float32 buffer
 * with named views, a batched inference path that keeps no activations, and a training path
 * (forward keeping activations + hand-written backward) over OpenBLAS sgemm. */
#ifndef TRC_MODEL_H
#define TRC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define TRC_MAX_BLOCKS 16
#define TRC_PARAM_NAME_MAX 96
#define TRC_NORM_MAX 64 /* largest s and m of a normalised model */

typedef struct trc_model_config {
    char arch[16];           /* architecture (trc/arch.h); "" means "single" */
    char size[16];           /* a size of the architecture ("small", ...) or "custom" */
    int s, m, T;             /* state dim, control dim, horizon; U = T*m */
    float bound;             /* control bound b */
    int d, h, blocks, heads; /* latent, hidden, reasoning blocks, attention heads (recorded only) */
    int K, n;                /* outer and inner refinement cycles (run-time settings) */
    char system[32];         /* the system the model was trained for ("" if unknown) */
    double dt;               /* its time step (0 if unknown) */
    /* 1: trajectory feedback (model-v2.md section 7): each cycle simulates the incoming iterate
     * on `system` (time step dt, 0 = the system's) and feeds x_T - x* through error_embedding.
     * Only architectures with trc_arch.feedback; needs a known system with s = 2. */
    int feedback;
    /* Normalisation (docs/checkpoints.md), off when norm = 0 (all zero: the network sees and
     * answers physical units, as before). With norm = 1 the network sees (x - x_mean) / x_std
     * for the state and the target, answers controls y in normalised units with the bound
     * trc_model_net_bound, and the model's controls are clamp(u_mean + u_std * y, -b, b) per
     * component: b stays the physical bound. Inference and the trainer apply it. */
    int norm;
    float x_mean[TRC_NORM_MAX], x_std[TRC_NORM_MAX]; /* [s] */
    float u_mean[TRC_NORM_MAX], u_std[TRC_NORM_MAX]; /* [m] */
    /* 1: the network was trained on tails of expert solutions (trc_train_opts.tails) and reads
     * the fraction of the horizon left, steps_left / T, as the encoder's last input (model.md's
     * constant 1.0). A closed loop then plans the steps that are left (a shrinking horizon)
     * instead of a fresh horizon at every step. 0: that input is always 1 (every model of the
     * original project). Checkpoint metadata "time_left". */
    int time_left;
} trc_model_config;

/* One named parameter tensor: a view into trc_model.params. */
typedef struct trc_param_view {
    char name[TRC_PARAM_NAME_MAX]; /* checkpoint key, e.g. "state_encoder.encoder.0.weight" */
    char alt[TRC_PARAM_NAME_MAX];  /* another spelling a checkpoint may use ("" = none) */
    size_t offset;                 /* in floats, into params (and grads, m, v) */
    size_t numel;
    int ndim;     /* 1 or 2 */
    int shape[2]; /* PyTorch shape: [out, in] for weights, [n] for vectors */
} trc_param_view;

typedef struct trc_model {
    trc_model_config cfg;
    size_t num_params;
    float *params;         /* one allocation, num_params floats */
    trc_param_view *views; /* every parameter, in the order of model.md */
    size_t num_views;
} trc_model;

/* Fills cfg for a named size ("small" | "medium" | "large") of the default architecture and
 * problem shape; K = n = 3. */
int trc_model_config_preset(const char *size, int s, int m, int T, float bound,
                            trc_model_config *cfg);
/* The same for a named architecture (NULL or "" = the default). */
int trc_model_config_preset_arch(const char *arch, const char *size, int s, int m, int T,
                                 float bound, trc_model_config *cfg);
/* Checks every field of cfg (positive dims, bound > 0, blocks <= TRC_MAX_BLOCKS, ...). */
int trc_model_config_validate(const trc_model_config *cfg);
/* The control bound in the network's units: b without normalisation, else the smallest bound
 * that reaches every physical [-b, b] component, max_i (b + |u_mean_i|) / u_std_i. */
float trc_model_net_bound(const trc_model_config *cfg);
/* Checks the normalisation fields of cfg (every value finite, std in [1e-9, 1e9], |mean| <=
 * 1e9, the network's bound <= 1e6); TRC_EINVAL naming the entry. */
int trc_model_norm_check(const trc_model_config *cfg);
/* Statistics given as JSON text {"x_mean": [s], "x_std": [s], "u_mean": [m], "u_std": [m]}
 * (for a checkpoint without them, e.g. the original's): checked, then set in cfg (which is left
 * unchanged on error). */
int trc_model_norm_from_json(trc_model_config *cfg, const char *text);
/* Statistics of normalisation from data: per component mean and standard deviation of x [n, s]
 * and u [n*T, m] (rows of m); a component that does not vary (std below 1e-6 of max(1, |mean|))
 * gets std 1. Sets cfg->norm = 1. */
int trc_model_norm_from_data(trc_model_config *cfg, size_t n, const float *x, size_t nu,
                             const float *u);
/* Into the network's units: x [B, s] -> xn [B, s] (a copy when norm is off). */
void trc_model_norm_states(const trc_model_config *cfg, size_t B, const float *x, float *xn);
/* Out of the network's units, in place: y [rows, m] -> clamp(u_mean + u_std y, -b, b). */
void trc_model_denorm_controls(const trc_model_config *cfg, size_t rows, float *y);
/* Controls into the network's units: u [rows, m] -> (u - u_mean) / u_std. */
void trc_model_norm_controls(const trc_model_config *cfg, size_t rows, const float *u, float *un);
/* Number of parameters of a configuration (104,862 for small with s=2, m=1, T=15). */
size_t trc_model_param_count(const trc_model_config *cfg);

/* Allocates a model with zeroed parameters and its view table. */
int trc_model_create(const trc_model_config *cfg, trc_model *model);
/* The original initialization (Xavier / uniform, model.md), from a seed. */
int trc_model_init(trc_model *model, uint64_t seed);
void trc_model_free(trc_model *model);
/* The view named `name` (or spelled `name` the other way), or NULL. */
const trc_param_view *trc_model_find(const trc_model *model, const char *name);

/* Threads: the model's matrices are small, and OpenBLAS's own threads only add waiting (measured
 * on 2 cores: single-sample inference 5x slower, training no faster). So the first
 * trc_model_infer* call or trc_trainer_create sets OpenBLAS to ONE thread per caller,
 * process-wide, once; parallelism comes from the callers' threads (e.g. concurrent requests)
 * and from the explicit `threads` settings below. */

/* Inference for a batch of B samples; thread-safe on a shared read-only model (scratch is
 * allocated per call). x0, target: [B, s]; u_out: [B, T*m]; iterates, if not NULL:
 * [(K+1), B, T*m] (the controls after the initial generator and after each outer cycle).
 * Every row plans a whole horizon. Returns TRC_ENUMERIC if an output is not finite. */
int trc_model_infer(const trc_model *model, size_t B, const float *x0, const float *target,
                    float *u_out, float *iterates);
/* The same with the fraction of the horizon each row has left, time_left [B] in (0, 1]
 * (steps_left / T; NULL = 1 for every row; values other than 1 need cfg.time_left), and the
 * batch split between `threads` threads (the caller's included). The rows are processed in a
 * fixed partition of chunks, so the results are identical for every thread count. Worth it for
 * batches of a few hundred rows and more. */
int trc_model_infer_mt(const trc_model *model, size_t B, const float *x0, const float *target,
                       const float *time_left, float *u_out, float *iterates, int threads);
/* Checks time_left [B] (NULL is fine) for a model: every value finite in (0, 1], and 1 unless
 * the model reads it (cfg.time_left); TRC_EINVAL naming the row. */
int trc_model_check_time_left(const trc_model_config *cfg, size_t B, const float *time_left);

/* An inference plan: the model's weights prepared once for many small batches (the attention of
 * each block fused into one product, every weight repacked for a register-blocked kernel that
 * beats sgemm below a few dozen rows, where sgemm's per-call packing dominates). About the
 * model's size in memory. The model must outlive the plan and its parameters must not change
 * while it exists. A row's result does not depend on the other rows of its batch (bit for bit),
 * and agrees with trc_model_infer to float rounding (~1e-6 relative). */
typedef struct trc_infer_plan trc_infer_plan;

int trc_infer_plan_create(const trc_model *model, trc_infer_plan **out);
/* Precision of a plan's weights. FP32, the default, is the model as trained. BF16 (an explicit
 * choice, never the default) rounds every weight matrix to bfloat16 (half the bytes: the
 * single-sample path reads its weights from L2 instead of L3) and each product's input row too,
 * summing in float (AVX512_BF16's vdpbf16ps); the rest (layer norms, SiLU, residuals, the
 * recursion) stays float. Controls differ from FP32 by ~1e-2 of the bound (README: measured
 * figures, pinned by test_infer_plan). Only the single architecture, on a CPU with
 * AVX512_BF16 and the avx512 path: elsewhere plan creation fails with TRC_EUNSUPPORTED and why. */
typedef enum { TRC_PRECISION_FP32 = 0, TRC_PRECISION_BF16 = 1 } trc_precision;
/* "fp32" (or "float32"), "bf16" (or "bfloat16"); TRC_EINVAL naming the choices otherwise */
int trc_precision_parse(const char *name, trc_precision *out);
const char *trc_precision_name(trc_precision p);
int trc_infer_plan_create_precision(const trc_model *model, trc_precision precision,
                                    trc_infer_plan **out);
trc_precision trc_infer_plan_precision(const trc_infer_plan *plan);
/* 1 when this CPU and kernel path run plans of precision p (FP32 always); else 0 and, in *why
 * (if not NULL), a sentence saying why. */
int trc_precision_available(trc_precision p, const char **why);
void trc_infer_plan_free(trc_infer_plan *plan);
/* trc_model_infer_mt through the plan; thread-safe on a shared plan. */
int trc_infer_plan_run(const trc_infer_plan *plan, size_t B, const float *x0, const float *target,
                       const float *time_left, float *u_out, float *iterates, int threads);

/* Training state: activations of every application of the shared blocks for up to
 * max_batch samples, and gradients in the layout of params. */
typedef struct trc_trainer trc_trainer;

int trc_trainer_create(const trc_model *model, size_t max_batch, trc_trainer **out);
void trc_trainer_free(trc_trainer *tr);
/* Threads a training step uses (default 1): the batch rows are split between them for the
 * forward pass and the activation gradients, and every weight gradient's output rows for the
 * rest. Bit-identical results for a given thread count. */
int trc_trainer_set_threads(trc_trainer *tr, int threads);
int trc_trainer_threads(const trc_trainer *tr);
/* Gradient buffer, num_params floats in the layout of model->params. */
float *trc_trainer_grads(trc_trainer *tr);
/* Forward keeping activations; returns the objective's loss against u_expert [B, T*m] in *loss.
 * time_left [B] as trc_model_infer_mt (NULL = 1). u_out [B, T*m] may be NULL. */
int trc_trainer_forward(trc_trainer *tr, size_t B, const float *x0, const float *target,
                        const float *time_left, const float *u_expert, float *u_out, float *loss);
/* Backward of the last forward: writes (overwrites) d loss / d params into the grads buffer. */
int trc_trainer_backward(trc_trainer *tr);

#endif
