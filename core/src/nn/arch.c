/* The architectures table (table.h; each architecture in its own file) and the public model
 * entry points that dispatch on a model's architecture: inference and inference plans. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "linear_packed.h"
#include "trc/arch.h"
#include "trc/error.h"

#define TRC_ARCH(name) extern const trc_arch trc_arch_##name;
#include "table.h"
#undef TRC_ARCH

static const trc_arch *const archs[] = {
#define TRC_ARCH(name) &trc_arch_##name,
#include "table.h"
#undef TRC_ARCH
};

#define NARCHS (sizeof archs / sizeof archs[0])
#define MAX_THREADS 64

size_t trc_arch_count(void) {
    return NARCHS;
}

const trc_arch *trc_arch_at(size_t i) {
    return i < NARCHS ? archs[i] : NULL;
}

const trc_arch *trc_arch_find(const char *name) {
    char known[256] = "";
    for (size_t i = 0; i < NARCHS; i++) {
        if (name && strcmp(name, archs[i]->name) == 0)
            return archs[i];
        size_t len = strlen(known);
        snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", archs[i]->name);
    }
    trc_fail(TRC_ENOTFOUND, "unknown architecture '%s' (known: %s)", name ? name : "(null)", known);
    return NULL;
}

const trc_arch *trc_arch_of(const trc_model_config *cfg) {
    return trc_arch_find(cfg->arch[0] ? cfg->arch : TRC_ARCH_DEFAULT);
}

const trc_arch_size *trc_arch_size_find(const trc_arch *a, const char *size) {
    for (size_t i = 0; a && size && i < a->nsizes; i++)
        if (strcmp(a->sizes[i].name, size) == 0)
            return &a->sizes[i];
    return NULL;
}

int trc_model_check_time_left(const trc_model_config *cfg, size_t B, const float *time_left) {
    for (size_t i = 0; time_left && i < B; i++) {
        float f = time_left[i];
        if (!(f > 0.0f && f <= 1.0f))
            return trc_fail(TRC_EINVAL,
                            "time left of row %zu must be a fraction of the horizon in (0, 1], "
                            "got %g",
                            i, (double)f);
        if (f != 1.0f && !cfg->time_left)
            return trc_fail(TRC_EINVAL,
                            "row %zu: this model was not trained on a time-left input (train "
                            "with --tails): it always plans a whole horizon of %d steps",
                            i, cfg->T);
    }
    return TRC_OK;
}

static int check_infer_args(const trc_model *model, const float *x0, const float *target,
                            const float *time_left, const float *u_out, size_t B, int threads) {
    if (!model || !model->params)
        return trc_fail(TRC_EINVAL, "model infer: model not created");
    if (!x0 || !target || !u_out)
        return trc_fail(TRC_EINVAL, "model infer: NULL input or output");
    if (B == 0 || B > (size_t)INT32_MAX / 4)
        return trc_fail(TRC_EINVAL, "model infer: batch size must be in [1, %d], got %zu",
                        INT32_MAX / 4, B);
    if (threads < 1 || threads > MAX_THREADS)
        return trc_fail(TRC_EINVAL, "model infer: threads must be in [1, %d], got %d", MAX_THREADS,
                        threads);
    int rc = trc_model_check_time_left(&model->cfg, B, time_left);
    return rc ? trc_fail_prefix(rc, "model infer: ") : TRC_OK;
}

/* The architecture of a created model with a valid configuration (the architecture's own entry
 * points check that the parameters match it, as they lay them out anyway). */
static const trc_arch *model_arch(const trc_model *model, const char *what) {
    if (!model || !model->params) {
        trc_fail(TRC_EINVAL, "%s: model not created", what);
        return NULL;
    }
    if (trc_model_config_validate(&model->cfg))
        return NULL;
    return trc_arch_of(&model->cfg);
}

/* Inference through the architecture's trainer forward, for an architecture without its own
 * infer: one forward definition serves both. Its "loss" copies the iterates out. */
typedef struct copy_ctx {
    float *iterates;  /* [(K+1), B, U] of the whole call, or NULL */
    size_t B, at, nb; /* the call's batch; this chunk's first row and rows */
    int K, U;
} copy_ctx;

static double copy_rows(const void *p, const float *its, size_t r0, size_t r1, float *grad) {
    const copy_ctx *c = p;
    size_t U = (size_t)c->U;
    (void)grad;
    for (int k = 0; c->iterates && k <= c->K; k++)
        memcpy(c->iterates + ((size_t)k * c->B + c->at + r0) * U,
               its + ((size_t)k * c->nb + r0) * U, (r1 - r0) * U * sizeof *its);
    return 0.0;
}

#define VIA_TRAINER_CHUNK 256

static int infer_via_trainer(const trc_arch *a, const trc_model *model, size_t B, const float *x0,
                             const float *target, const float *time_left, float *u_out,
                             float *iterates, int threads) {
    if (!a->trainer_create)
        return trc_fail(TRC_EUNSUPPORTED, "architecture %s has neither infer nor a trainer",
                        a->name);
    void *tr;
    size_t chunk = B < VIA_TRAINER_CHUNK ? B : VIA_TRAINER_CHUNK;
    int rc = a->trainer_create(model, chunk, &tr);
    if (rc)
        return rc;
    if (threads > 1 && (rc = a->trainer_set_threads(tr, threads))) {
        a->trainer_free(tr);
        return rc;
    }
    const trc_model_config *c = &model->cfg;
    size_t S = (size_t)c->s, U = (size_t)c->T * (size_t)c->m;
    copy_ctx ctx = {iterates, B, 0, 0, c->K, (int)U};
    trc_loss_rows lr = {copy_rows, &ctx, 1};
    for (size_t at = 0; at < B && rc == TRC_OK; at += chunk) {
        ctx.at = at;
        ctx.nb = B - at < chunk ? B - at : chunk;
        double sum;
        rc = a->trainer_forward(tr, ctx.nb, x0 + at * S, target + at * S,
                                time_left ? time_left + at : NULL, &lr, u_out + at * U, &sum);
    }
    a->trainer_free(tr);
    for (size_t i = 0; rc == TRC_OK && i < B * U; i++)
        if (!isfinite(u_out[i]))
            rc = trc_fail(TRC_ENUMERIC, "model infer: output %zu (sample %zu) is not finite", i,
                          i / U);
    return rc;
}

/* Normalisation around a call (trc_model_config.norm): the state and the target into the
 * network's units (*buf holds them, NULL when off), and the answer back into physical units. */
static int norm_inputs(const trc_model *model, size_t B, const float **x0, const float **target,
                       float **buf) {
    *buf = NULL;
    if (!model->cfg.norm)
        return TRC_OK;
    size_t n = B * (size_t)model->cfg.s;
    if (!(*buf = malloc(2 * n * sizeof **buf)))
        return trc_fail(TRC_ENOMEM, "model infer: out of memory (normalisation)");
    trc_model_norm_states(&model->cfg, B, *x0, *buf);
    trc_model_norm_states(&model->cfg, B, *target, *buf + n);
    *x0 = *buf;
    *target = *buf + n;
    return TRC_OK;
}

static void norm_outputs(const trc_model *model, size_t B, float *u_out, float *iterates) {
    const trc_model_config *c = &model->cfg;
    trc_model_denorm_controls(c, B * (size_t)c->T, u_out);
    if (iterates)
        trc_model_denorm_controls(c, (size_t)(c->K + 1) * B * (size_t)c->T, iterates);
}

/* Inference in the network's units. */
static int infer_raw(const trc_arch *a, const trc_model *model, size_t B, const float *x0,
                     const float *target, const float *time_left, float *u_out, float *iterates,
                     int threads) {
    if (!a->infer)
        return infer_via_trainer(a, model, B, x0, target, time_left, u_out, iterates, threads);
    return a->infer(model, B, x0, target, time_left, u_out, iterates, threads);
}

/* The public inference calls: arguments checked, inputs normalised, the network run (its own
 * inference, or the trainer's forward when via_trainer), controls back in physical units. */
static int infer_checked(const trc_model *model, size_t B, const float *x0, const float *target,
                         const float *time_left, float *u_out, float *iterates, int threads,
                         int via_trainer) {
    const trc_arch *a = model_arch(model, "model infer");
    if (!a)
        return TRC_EINVAL;
    int rc = check_infer_args(model, x0, target, time_left, u_out, B, threads);
    if (rc)
        return rc;
    trc_model_blas_single();
    float *nbuf;
    if ((rc = norm_inputs(model, B, &x0, &target, &nbuf)))
        return rc;
    rc = via_trainer
             ? infer_via_trainer(a, model, B, x0, target, time_left, u_out, iterates, threads)
             : infer_raw(a, model, B, x0, target, time_left, u_out, iterates, threads);
    if (!rc)
        norm_outputs(model, B, u_out, iterates);
    free(nbuf);
    return rc;
}

int trc_model_infer_via_trainer(const trc_model *model, size_t B, const float *x0,
                                const float *target, const float *time_left, float *u_out,
                                float *iterates, int threads) {
    return infer_checked(model, B, x0, target, time_left, u_out, iterates, threads, 1);
}

int trc_model_infer_mt(const trc_model *model, size_t B, const float *x0, const float *target,
                       const float *time_left, float *u_out, float *iterates, int threads) {
    return infer_checked(model, B, x0, target, time_left, u_out, iterates, threads, 0);
}

int trc_model_infer(const trc_model *model, size_t B, const float *x0, const float *target,
                    float *u_out, float *iterates) {
    return trc_model_infer_mt(model, B, x0, target, NULL, u_out, iterates, 1);
}

struct trc_infer_plan {
    const trc_arch *arch;
    const trc_model *model;
    void *impl; /* the architecture's plan, or NULL: run its infer */
    trc_precision precision;
};

static const char *const precision_names[] = {"fp32", "bf16"};

int trc_precision_parse(const char *name, trc_precision *out) {
    if (name && (strcmp(name, "fp32") == 0 || strcmp(name, "float32") == 0))
        *out = TRC_PRECISION_FP32;
    else if (name && (strcmp(name, "bf16") == 0 || strcmp(name, "bfloat16") == 0))
        *out = TRC_PRECISION_BF16;
    else
        return trc_fail(TRC_EINVAL, "unknown precision '%s' (fp32 or bf16)",
                        name ? name : "(null)");
    return TRC_OK;
}

const char *trc_precision_name(trc_precision p) {
    return p == TRC_PRECISION_FP32 || p == TRC_PRECISION_BF16 ? precision_names[p] : "?";
}

int trc_precision_available(trc_precision p, const char **why) {
    const char *w = "unknown precision";
    int ok = p == TRC_PRECISION_FP32 || (p == TRC_PRECISION_BF16 && trc_linear_bf16_available(&w));
    if (why)
        *why = ok ? "" : w;
    return ok;
}

trc_precision trc_infer_plan_precision(const trc_infer_plan *plan) {
    return plan ? plan->precision : TRC_PRECISION_FP32;
}

int trc_infer_plan_create(const trc_model *model, trc_infer_plan **out) {
    return trc_infer_plan_create_precision(model, TRC_PRECISION_FP32, out);
}

int trc_infer_plan_create_precision(const trc_model *model, trc_precision precision,
                                    trc_infer_plan **out) {
    if (!out)
        return trc_fail(TRC_EINVAL, "infer plan: NULL output");
    *out = NULL;
    const trc_arch *a = model_arch(model, "model infer");
    if (!a)
        return TRC_EINVAL;
    if (precision != TRC_PRECISION_FP32 && precision != TRC_PRECISION_BF16)
        return trc_fail(TRC_EINVAL, "infer plan: unknown precision %d", (int)precision);
    if (precision == TRC_PRECISION_BF16 && !a->plan_create_bf16)
        return trc_fail(TRC_EUNSUPPORTED,
                        "infer plan: bf16 weights are implemented for the single architecture "
                        "only (this model is %s)",
                        a->name);
    trc_model_blas_single();
    trc_infer_plan *plan = calloc(1, sizeof *plan);
    if (!plan)
        return trc_fail(TRC_ENOMEM, "infer plan: out of memory");
    plan->arch = a;
    plan->model = model;
    plan->precision = precision;
    int rc = precision == TRC_PRECISION_BF16 ? a->plan_create_bf16(model, &plan->impl)
             : a->plan_create                ? a->plan_create(model, &plan->impl)
                                             : TRC_OK;
    if (rc) {
        free(plan);
        return rc;
    }
    *out = plan;
    return TRC_OK;
}

void trc_infer_plan_free(trc_infer_plan *plan) {
    if (!plan)
        return;
    if (plan->impl)
        plan->arch->plan_free(plan->impl);
    free(plan);
}

int trc_infer_plan_run(const trc_infer_plan *plan, size_t B, const float *x0, const float *target,
                       const float *time_left, float *u_out, float *iterates, int threads) {
    if (!plan)
        return trc_fail(TRC_EINVAL, "infer plan: NULL plan");
    int rc = check_infer_args(plan->model, x0, target, time_left, u_out, B, threads);
    if (rc)
        return rc;
    float *nbuf;
    if ((rc = norm_inputs(plan->model, B, &x0, &target, &nbuf)))
        return rc;
    if (!plan->impl)
        rc = infer_raw(plan->arch, plan->model, B, x0, target, time_left, u_out, iterates, threads);
    else
        rc = plan->arch->plan_run(plan->impl, B, x0, target, time_left, u_out, iterates, threads);
    if (!rc)
        norm_outputs(plan->model, B, u_out, iterates);
    free(nbuf);
    return rc;
}
