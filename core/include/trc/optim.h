/* The optimizer of the original training: AdamW with decoupled weight decay (as
 * torch.optim.AdamW), global L2 gradient-norm clipping (as torch.nn.utils.clip_grad_norm_) and
 * the learning-rate schedulers (cosine annealing, step, reduce-on-plateau, none). Moments live in
 * the layout of the model's parameter buffer, so an update is one loop over num_params. */
#ifndef TRC_OPTIM_H
#define TRC_OPTIM_H

#include <stddef.h>
#include <stdint.h>

typedef struct trc_adamw {
    size_t n;            /* parameters */
    float *m, *v;        /* first and second moments, n floats each */
    int64_t step;        /* updates taken so far */
    double beta1, beta2; /* 0.9, 0.999 */
    double eps;          /* 1e-8 */
    double weight_decay; /* decoupled: p -= lr * wd * p before the Adam update */
    /* frozen ranges (trc_adamw_freeze): parameters whose gradient is absent, as torch's
     * `grad is None`: left untouched by every step (no decay; their gradient must be zero,
     * so their moments stay zero) */
    size_t *frozen; /* [nfrozen][2] offset, count */
    size_t nfrozen;
    float *frozen_save; /* scratch: their values across a step */
    size_t frozen_floats;
} trc_adamw;

/* Allocates zeroed moments for n parameters with the default betas and eps. */
int trc_adamw_init(trc_adamw *opt, size_t n, double weight_decay);
void trc_adamw_free(trc_adamw *opt);
/* Leaves params[offset, offset + count) untouched by every later step (an absent gradient). */
int trc_adamw_freeze(trc_adamw *opt, size_t offset, size_t count);
/* One AdamW update (step count + 1, bias correction as torch). params, grads: [n]. */
int trc_adamw_step(trc_adamw *opt, float *params, const float *grads, double lr);

/* Global L2 norm of g [n] (accumulated in double). */
double trc_grad_norm(const float *g, size_t n);
/* Scales g by max_norm / (norm + 1e-6) when that factor is below 1, as clip_grad_norm_.
 * Returns the norm before clipping in *norm_out (may be NULL). max_norm <= 0 disables.
 * TRC_ENUMERIC when the norm is not finite (g is left as is). */
int trc_clip_grad_norm(float *g, size_t n, double max_norm, double *norm_out);

typedef enum { TRC_SCHED_COSINE, TRC_SCHED_STEP, TRC_SCHED_PLATEAU, TRC_SCHED_NONE } trc_sched_kind;

/* Whether schedule `kind` reads the training option `option` (lr_min: cosine; step_size: step;
 * gamma: step and plateau; plateau_patience: plateau); trc_sched_option says whether any does.
 * Training refuses a schedule's option set for another schedule (it would be ignored). */
int trc_sched_reads(trc_sched_kind kind, const char *option);
int trc_sched_option(const char *option);

/* A learning-rate schedule stepped once per epoch. */
typedef struct trc_sched {
    trc_sched_kind kind;
    double base_lr;
    double lr_min;    /* cosine: the final rate */
    int t_max;        /* cosine: epochs to anneal over */
    int step_size;    /* step: epochs per decay */
    double gamma;     /* step / plateau: decay factor */
    int patience;     /* plateau: epochs without improvement before a decay */
    double threshold; /* plateau: relative improvement that counts (1e-4) */
    double min_lr;    /* plateau: floor (0, as torch) */
    /* state */
    int epoch;      /* steps taken */
    double lr;      /* current rate */
    double best;    /* plateau: best metric seen (+inf at first) */
    int bad_epochs; /* plateau: epochs since best */
} trc_sched;

/* Sets up a schedule at its starting rate. For cosine t_max > 0; for step step_size > 0 and
 * 0 < gamma <= 1; for plateau patience >= 0 and 0 < gamma < 1. */
int trc_sched_init(trc_sched *s, trc_sched_kind kind, double base_lr, double lr_min, int t_max,
                   int step_size, double gamma, int patience);
/* Ends an epoch: `metric` (the monitored loss) is used by plateau only. Returns the new rate.
 * cosine: lr_min + (base - lr_min) (1 + cos(pi e / t_max)) / 2 (e steps taken, as
 * CosineAnnealingLR's closed form); step: base * gamma^floor(e / step_size); plateau: lr *= gamma
 * after more than `patience` epochs without a relative improvement of threshold; none: base. */
double trc_sched_step(trc_sched *s, double metric);
/* Puts a schedule back where a saved run left it (after trc_sched_init with the run's settings):
 * epoch steps taken, the rate, plateau's best and bad epochs. A cosine's rate is recomputed for
 * its (possibly grown) t_max. */
void trc_sched_restore(trc_sched *s, int epoch, double lr, double best, int bad_epochs);
/* "cosine" | "step" | "plateau" | "none" <-> kind; parse fails with TRC_EINVAL naming the known. */
int trc_sched_parse(const char *name, trc_sched_kind *out);
const char *trc_sched_name(trc_sched_kind kind);

#endif
