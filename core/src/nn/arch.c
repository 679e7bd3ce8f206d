/* The architectures table (table.h; each architecture in its own file) and the public model
 * entry points that dispatch on a model's architecture: inference and inference plans. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
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

static int check_infer_args(const trc_model *model, const float *x0, const float *target,
                            const float *u_out, size_t B, int threads) {
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
    return TRC_OK;
}

/* The architecture of a created model whose parameters match its configuration. */
static const trc_arch *model_arch(const trc_model *model, const char *what) {
    if (!model || !model->params) {
        trc_fail(TRC_EINVAL, "%s: model not created", what);
        return NULL;
    }
    if (trc_model_config_validate(&model->cfg))
        return NULL;
    trc_layout_builder L = {0, 0, NULL, NULL};
    trc_layout_run(&model->cfg, &L);
    if (L.num_params != model->num_params) {
        trc_fail(TRC_EINVAL, "%s: parameter count does not match the config", what);
        return NULL;
    }
    return trc_arch_of(&model->cfg);
}

int trc_model_infer_mt(const trc_model *model, size_t B, const float *x0, const float *target,
                       float *u_out, float *iterates, int threads) {
    const trc_arch *a = model_arch(model, "model infer");
    if (!a)
        return TRC_EINVAL;
    int rc = check_infer_args(model, x0, target, u_out, B, threads);
    if (rc)
        return rc;
    trc_model_blas_single();
    return a->infer(model, B, x0, target, u_out, iterates, threads);
}

int trc_model_infer(const trc_model *model, size_t B, const float *x0, const float *target,
                    float *u_out, float *iterates) {
    return trc_model_infer_mt(model, B, x0, target, u_out, iterates, 1);
}

struct trc_infer_plan {
    const trc_arch *arch;
    const trc_model *model;
    void *impl; /* the architecture's plan, or NULL: run its infer */
};

int trc_infer_plan_create(const trc_model *model, trc_infer_plan **out) {
    if (!out)
        return trc_fail(TRC_EINVAL, "infer plan: NULL output");
    *out = NULL;
    const trc_arch *a = model_arch(model, "model infer");
    if (!a)
        return TRC_EINVAL;
    trc_model_blas_single();
    trc_infer_plan *plan = calloc(1, sizeof *plan);
    if (!plan)
        return trc_fail(TRC_ENOMEM, "infer plan: out of memory");
    plan->arch = a;
    plan->model = model;
    int rc = a->plan_create ? a->plan_create(model, &plan->impl) : TRC_OK;
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
                       float *u_out, float *iterates, int threads) {
    if (!plan)
        return trc_fail(TRC_EINVAL, "infer plan: NULL plan");
    int rc = check_infer_args(plan->model, x0, target, u_out, B, threads);
    if (rc)
        return rc;
    if (!plan->impl)
        return plan->arch->infer(plan->model, B, x0, target, u_out, iterates, threads);
    return plan->arch->plan_run(plan->impl, B, x0, target, u_out, iterates, threads);
}
