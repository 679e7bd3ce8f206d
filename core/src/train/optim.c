/* AdamW, gradient-norm clipping and learning-rate schedules; see optim.h. The arithmetic
 * follows torch's single-tensor AdamW on float32 so that our losses track the reference. */
#include "trc/optim.h"
#include "trc/error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

int trc_adamw_init(trc_adamw *opt, size_t n, double weight_decay) {
    memset(opt, 0, sizeof *opt);
    if (n == 0)
        return trc_fail(TRC_EINVAL, "adamw: parameter count must be positive");
    if (!(weight_decay >= 0) || !isfinite(weight_decay))
        return trc_fail(TRC_EINVAL, "adamw: weight decay must be >= 0, got %g", weight_decay);
    opt->m = calloc(n, sizeof(float));
    opt->v = calloc(n, sizeof(float));
    if (!opt->m || !opt->v) {
        trc_adamw_free(opt);
        return trc_fail(TRC_ENOMEM, "adamw: cannot allocate moments for %zu parameters", n);
    }
    opt->n = n;
    opt->beta1 = 0.9;
    opt->beta2 = 0.999;
    opt->eps = 1e-8;
    opt->weight_decay = weight_decay;
    return TRC_OK;
}

void trc_adamw_free(trc_adamw *opt) {
    if (!opt)
        return;
    free(opt->m);
    free(opt->v);
    free(opt->frozen);
    free(opt->frozen_save);
    opt->m = opt->v = NULL;
    opt->frozen = NULL;
    opt->frozen_save = NULL;
    opt->n = opt->nfrozen = opt->frozen_floats = 0;
}

int trc_adamw_freeze(trc_adamw *opt, size_t offset, size_t count) {
    if (!opt || !opt->m || offset > opt->n || count > opt->n - offset)
        return trc_fail(TRC_EINVAL, "adamw: frozen range out of bounds");
    size_t *r = realloc(opt->frozen, (opt->nfrozen + 1) * 2 * sizeof *r);
    if (!r)
        return trc_fail(TRC_ENOMEM, "adamw: out of memory");
    opt->frozen = r;
    float *save = realloc(opt->frozen_save, (opt->frozen_floats + count + 1) * sizeof *save);
    if (!save)
        return trc_fail(TRC_ENOMEM, "adamw: out of memory");
    opt->frozen_save = save;
    r[2 * opt->nfrozen] = offset;
    r[2 * opt->nfrozen + 1] = count;
    opt->nfrozen++;
    opt->frozen_floats += count;
    return TRC_OK;
}

/* Copies the frozen ranges of params out (save = 1) or back (save = 0). */
static void frozen_copy(trc_adamw *opt, float *params, int save) {
    float *buf = opt->frozen_save;
    for (size_t k = 0; k < opt->nfrozen; k++) {
        float *p = params + opt->frozen[2 * k];
        size_t n = opt->frozen[2 * k + 1];
        memcpy(save ? buf : p, save ? p : buf, n * sizeof *p);
        buf += n;
    }
}

// params, grads, m, v: [n]; one pass: decay, moments, bias-corrected update
int trc_adamw_step(trc_adamw *opt, float *params, const float *grads, double lr) {
    if (!opt->m || !opt->v)
        return trc_fail(TRC_EINVAL, "adamw: optimizer not initialized");
    if (!(lr >= 0) || !isfinite(lr))
        return trc_fail(TRC_EINVAL, "adamw: learning rate must be >= 0, got %g", lr);
    opt->step++;
    frozen_copy(opt, params, 1); /* the step's arithmetic stays one pass; they are put back */
    double bc1 = 1.0 - pow(opt->beta1, (double)opt->step);
    double bc2 = 1.0 - pow(opt->beta2, (double)opt->step);
    /* Scalars rounded to float once, as torch does for a float32 tensor op with a double. */
    const float decay = (float)(1.0 - lr * opt->weight_decay);
    const float b1 = (float)opt->beta1, one_b1 = (float)(1.0 - opt->beta1);
    const float b2 = (float)opt->beta2, one_b2 = (float)(1.0 - opt->beta2);
    const float step_size = (float)(lr / bc1);
    const float bc2_sqrt = (float)sqrt(bc2);
    const float eps = (float)opt->eps;
    float *restrict p = params, *restrict m = opt->m, *restrict v = opt->v;
    const float *restrict g = grads;
    size_t i = 0;
#if defined(__SSE2__)
    /* Four at a time with the same operations in the same order: IEEE mul, add, div and sqrt
     * round the same in both paths, so the result does not depend on the path. (The compiler
     * does not vectorize the scalar loop itself: sqrtf may set errno.) */
    const __m128 vdecay = _mm_set1_ps(decay), vb1 = _mm_set1_ps(b1), v1b1 = _mm_set1_ps(one_b1);
    const __m128 vb2 = _mm_set1_ps(b2), v1b2 = _mm_set1_ps(one_b2), vstep = _mm_set1_ps(step_size);
    const __m128 vbc2 = _mm_set1_ps(bc2_sqrt), veps = _mm_set1_ps(eps);
    for (; i + 4 <= opt->n; i += 4) {
        __m128 gg = _mm_loadu_ps(g + i);
        __m128 pp = _mm_mul_ps(_mm_loadu_ps(p + i), vdecay);
        __m128 mm = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m + i)), _mm_mul_ps(v1b1, gg));
        __m128 vv =
            _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(v + i)), _mm_mul_ps(_mm_mul_ps(v1b2, gg), gg));
        __m128 denom = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vv), vbc2), veps);
        pp = _mm_sub_ps(pp, _mm_mul_ps(vstep, _mm_div_ps(mm, denom)));
        _mm_storeu_ps(p + i, pp);
        _mm_storeu_ps(m + i, mm);
        _mm_storeu_ps(v + i, vv);
    }
#endif
    for (; i < opt->n; i++) {
        p[i] *= decay;
        m[i] = b1 * m[i] + one_b1 * g[i];
        v[i] = b2 * v[i] + one_b2 * g[i] * g[i];
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * (m[i] / denom);
    }
    frozen_copy(opt, params, 0);
    return TRC_OK;
}

// g: [n] -> sqrt(sum g^2), in double with independent partial sums (a fixed order)
double trc_grad_norm(const float *g, size_t n) {
    double ss = 0.0;
    size_t i = 0;
#if defined(__SSE2__)
    __m128d a0 = _mm_setzero_pd(), a1 = _mm_setzero_pd(), a2 = _mm_setzero_pd(),
            a3 = _mm_setzero_pd();
    for (; i + 8 <= n; i += 8) {
        __m128 x = _mm_loadu_ps(g + i), y = _mm_loadu_ps(g + i + 4);
        __m128d x0 = _mm_cvtps_pd(x), x1 = _mm_cvtps_pd(_mm_movehl_ps(x, x));
        __m128d y0 = _mm_cvtps_pd(y), y1 = _mm_cvtps_pd(_mm_movehl_ps(y, y));
        a0 = _mm_add_pd(a0, _mm_mul_pd(x0, x0));
        a1 = _mm_add_pd(a1, _mm_mul_pd(x1, x1));
        a2 = _mm_add_pd(a2, _mm_mul_pd(y0, y0));
        a3 = _mm_add_pd(a3, _mm_mul_pd(y1, y1));
    }
    double part[2];
    _mm_storeu_pd(part, _mm_add_pd(_mm_add_pd(a0, a1), _mm_add_pd(a2, a3)));
    ss = part[0] + part[1];
#endif
    for (; i < n; i++)
        ss += (double)g[i] * (double)g[i];
    return sqrt(ss);
}

int trc_clip_grad_norm(float *g, size_t n, double max_norm, double *norm_out) {
    double norm = trc_grad_norm(g, n);
    if (norm_out)
        *norm_out = norm;
    if (!isfinite(norm))
        return trc_fail(TRC_ENUMERIC, "gradient norm is not finite");
    if (max_norm <= 0)
        return TRC_OK;
    double coef = max_norm / (norm + 1e-6);
    if (coef < 1.0) {
        const float c = (float)coef;
        for (size_t i = 0; i < n; i++)
            g[i] *= c;
    }
    return TRC_OK;
}

int trc_sched_init(trc_sched *s, trc_sched_kind kind, double base_lr, double lr_min, int t_max,
                   int step_size, double gamma, int patience) {
    memset(s, 0, sizeof *s);
    if (!(base_lr > 0) || !isfinite(base_lr))
        return trc_fail(TRC_EINVAL, "scheduler: learning rate must be positive, got %g", base_lr);
    switch (kind) {
    case TRC_SCHED_COSINE:
        if (t_max <= 0)
            return trc_fail(TRC_EINVAL, "cosine scheduler: epoch budget must be positive, got %d",
                            t_max);
        if (!(lr_min >= 0) || lr_min > base_lr)
            return trc_fail(TRC_EINVAL, "cosine scheduler: lr_min must be in [0, lr], got %g",
                            lr_min);
        break;
    case TRC_SCHED_STEP:
        if (step_size <= 0)
            return trc_fail(TRC_EINVAL, "step scheduler: step size must be positive, got %d",
                            step_size);
        if (!(gamma > 0 && gamma <= 1))
            return trc_fail(TRC_EINVAL, "step scheduler: gamma must be in (0, 1], got %g", gamma);
        break;
    case TRC_SCHED_PLATEAU:
        if (patience < 0)
            return trc_fail(TRC_EINVAL, "plateau scheduler: patience must be >= 0, got %d",
                            patience);
        if (!(gamma > 0 && gamma < 1))
            return trc_fail(TRC_EINVAL, "plateau scheduler: gamma must be in (0, 1), got %g",
                            gamma);
        break;
    case TRC_SCHED_NONE:
        break;
    default:
        return trc_fail(TRC_EINVAL, "unknown scheduler kind %d", (int)kind);
    }
    s->kind = kind;
    s->base_lr = base_lr;
    s->lr_min = lr_min;
    s->t_max = t_max;
    s->step_size = step_size;
    s->gamma = gamma;
    s->patience = patience;
    s->threshold = 1e-4;
    s->min_lr = 0.0;
    s->lr = base_lr;
    s->best = INFINITY;
    return TRC_OK;
}

/* CosineAnnealingLR's closed form after e epochs: the one place the formula lives. */
static double cosine_lr(const trc_sched *s, int e) {
    return s->lr_min + (s->base_lr - s->lr_min) * (1.0 + cos(M_PI * e / s->t_max)) / 2.0;
}

double trc_sched_step(trc_sched *s, double metric) {
    s->epoch++;
    switch (s->kind) {
    case TRC_SCHED_COSINE:
        s->lr = cosine_lr(s, s->epoch);
        break;
    case TRC_SCHED_STEP:
        s->lr = s->base_lr * pow(s->gamma, (double)(s->epoch / s->step_size));
        break;
    case TRC_SCHED_PLATEAU:
        /* ReduceLROnPlateau(mode=min, threshold_mode=rel, cooldown=0, eps=1e-8). */
        if (metric < s->best * (1.0 - s->threshold)) {
            s->best = metric;
            s->bad_epochs = 0;
        } else {
            s->bad_epochs++;
        }
        if (s->bad_epochs > s->patience) {
            double next = fmax(s->lr * s->gamma, s->min_lr);
            if (s->lr - next > 1e-8)
                s->lr = next;
            s->bad_epochs = 0;
        }
        break;
    case TRC_SCHED_NONE:
        break;
    }
    return s->lr;
}

static const char *const sched_names[] = {"cosine", "step", "plateau", "none"};

int trc_sched_parse(const char *name, trc_sched_kind *out) {
    for (int i = 0; i < 4; i++) {
        if (name && strcmp(name, sched_names[i]) == 0) {
            *out = (trc_sched_kind)i;
            return TRC_OK;
        }
    }
    return trc_fail(TRC_EINVAL, "unknown scheduler '%s' (known: cosine, step, plateau, none)",
                    name ? name : "(null)");
}

const char *trc_sched_name(trc_sched_kind kind) {
    return (unsigned)kind < 4 ? sched_names[kind] : "unknown";
}

static const struct {
    trc_sched_kind kind;
    const char *option;
} sched_reads[] = {
    {TRC_SCHED_COSINE, "lr_min"},
    {TRC_SCHED_STEP, "step_size"},
    {TRC_SCHED_STEP, "gamma"},
    {TRC_SCHED_PLATEAU, "gamma"},
    {TRC_SCHED_PLATEAU, "plateau_patience"},
};

int trc_sched_reads(trc_sched_kind kind, const char *option) {
    for (size_t i = 0; option && i < sizeof sched_reads / sizeof sched_reads[0]; i++)
        if (sched_reads[i].kind == kind && strcmp(sched_reads[i].option, option) == 0)
            return 1;
    return 0;
}

int trc_sched_option(const char *option) {
    for (int k = 0; k <= TRC_SCHED_NONE; k++)
        if (trc_sched_reads((trc_sched_kind)k, option))
            return 1;
    return 0;
}

void trc_sched_restore(trc_sched *s, int epoch, double lr, double best, int bad_epochs) {
    s->epoch = epoch;
    s->lr = lr;
    s->best = best;
    s->bad_epochs = bad_epochs;
    /* A grown budget stretches the cosine: the rate follows the new curve from here. */
    if (s->kind == TRC_SCHED_COSINE)
        s->lr = cosine_lr(s, epoch);
}
