/* Finite-difference checks of the hand-written backward: each layer kind (linear, layer norm,
 * silu, tanh scaling, clamp, residual) and the whole network on a tiny configuration.
 *
 * Choice of method: the forward code is float32, so a derivative estimate can only be as good
 * as a float evaluation. We use the 5-point central stencil
 *     f'(x) ~ (f(x-2h) - 8 f(x-h) + 8 f(x+h) - f(x+2h)) / 12h,
 * whose truncation error is O(h^4), so a fairly large step (h ~ 1e-2) is accurate and the float
 * rounding noise (~1e-7 |f| / h) stays near 1e-5 relative. Scalar objectives are random
 * projections sum_j c_j y_j accumulated in double. Tolerances: 1e-3 of the largest gradient
 * magnitude of each tensor (the earlier wiring bug this suite was written against gave errors of
 * 1-4%). Points are kept away from the clamp's kinks, where no derivative exists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "isa_paths.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"
#include "trc/error.h"
#include "trc/model.h"
#include "trc/rng.h"

#define RTOL 1e-3

static void fill(trc_rng *rng, float *v, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++)
        v[i] = (float)trc_rng_range(rng, lo, hi);
}

static double dot(const float *c, const float *y, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)c[i] * (double)y[i];
    return s;
}

/* Evaluates the scalar objective of the current inputs. */
typedef double (*objective_fn)(void *ctx);

/* 5-point derivative of obj with respect to *p, step h. */
static double fd(objective_fn obj, void *ctx, float *p, double h) {
    float orig = *p;
    double f[4];
    const double steps[4] = {-2, -1, 1, 2};
    for (int k = 0; k < 4; k++) {
        *p = (float)(orig + steps[k] * h);
        f[k] = obj(ctx);
    }
    *p = orig;
    return (f[0] - 8.0 * f[1] + 8.0 * f[2] - f[3]) / (12.0 * h);
}

/* Compares grad[0..n) against finite differences of every element of p[0..n). */
static void check_grad(const char *what, objective_fn obj, void *ctx, float *p, const float *grad,
                       size_t n, double h) {
    double *num = malloc(n * sizeof *num), maxabs = 0.0;
    assert_non_null(num);
    for (size_t i = 0; i < n; i++) {
        num[i] = fd(obj, ctx, &p[i], h);
        maxabs = fmax(maxabs, fabs(num[i]));
    }
    double tol = RTOL * fmax(maxabs, 1e-3);
    for (size_t i = 0; i < n; i++)
        if (!(fabs(grad[i] - num[i]) <= tol))
            fail_msg("%s[%zu]: backward %.7g, finite difference %.7g (tolerance %.3g)", what, i,
                     (double)grad[i], num[i], tol);
    free(num);
}

/* ---- linear ---- */

typedef struct lin_ctx {
    float *x, *W, *b, *y, *c;
    size_t B;
    int in, out;
} lin_ctx;

static double lin_obj(void *p) {
    lin_ctx *k = p;
    trc_linear_forward(k->y, k->x, k->W, k->b, k->B, k->in, k->out);
    return dot(k->c, k->y, k->B * (size_t)k->out);
}

static void linear_case(size_t B, int in, int out) {
    trc_rng rng;
    trc_rng_seed(&rng, 11 + B);
    size_t nx = B * (size_t)in, nw = (size_t)out * in, ny = B * (size_t)out;
    lin_ctx k = {malloc(nx * 4),
                 malloc(nw * 4),
                 malloc((size_t)out * 4),
                 malloc(ny * 4),
                 malloc(ny * 4),
                 B,
                 in,
                 out};
    fill(&rng, k.x, nx, -1, 1);
    fill(&rng, k.W, nw, -1, 1);
    fill(&rng, k.b, (size_t)out, -1, 1);
    fill(&rng, k.c, ny, -1, 1);
    /* forward against a direct double computation */
    lin_obj(&k);
    for (size_t r = 0; r < B; r++)
        for (int o = 0; o < out; o++) {
            double s = k.b[o];
            for (int i = 0; i < in; i++)
                s += (double)k.x[r * in + i] * k.W[(size_t)o * in + i];
            assert_true(fabs(k.y[r * out + o] - s) <= 1e-5 * (1 + fabs(s)));
        }
    /* backward accumulates: start from a known offset and subtract it */
    float *dx = calloc(nx, 4), *dW = calloc(nw, 4), *db = calloc((size_t)out, 4);
    for (size_t i = 0; i < nx; i++)
        dx[i] = 0.5f;
    trc_linear_backward(dx, dW, db, k.c, k.x, k.W, B, in, out);
    for (size_t i = 0; i < nx; i++)
        dx[i] -= 0.5f;
    check_grad("linear dx", lin_obj, &k, k.x, dx, nx, 1e-2);
    check_grad("linear dW", lin_obj, &k, k.W, dW, nw, 1e-2);
    check_grad("linear db", lin_obj, &k, k.b, db, (size_t)out, 1e-2);
    /* no bias: y = x W^T */
    trc_linear_forward(k.y, k.x, k.W, NULL, B, in, out);
    assert_true(fabsf(k.y[0] - (float)(dot(k.x, k.W, (size_t)in))) <= 1e-5f);
    free(dx), free(dW), free(db);
    free(k.x), free(k.W), free(k.b), free(k.y), free(k.c);
}

static void test_linear(void **state) {
    (void)state;
    linear_case(4, 7, 5);
    linear_case(1, 9, 6); /* the single-row (sgemv) path */
}

/* ---- layer norm ---- */

typedef struct ln_ctx {
    float *x, *w, *b, *y, *c, *mean, *rstd;
    size_t B;
    int C;
} ln_ctx;

static double ln_obj(void *p) {
    ln_ctx *k = p;
    trc_layernorm_forward(k->y, k->mean, k->rstd, k->x, k->w, k->b, k->B, k->C);
    return dot(k->c, k->y, k->B * (size_t)k->C);
}

static void layernorm_case(size_t B, int C) {
    trc_rng rng;
    trc_rng_seed(&rng, 21 + (uint64_t)C);
    size_t n = B * (size_t)C;
    ln_ctx k = {malloc(n * 4),
                malloc((size_t)C * 4),
                malloc((size_t)C * 4),
                malloc(n * 4),
                malloc(n * 4),
                malloc(B * 4),
                malloc(B * 4),
                B,
                C};
    fill(&rng, k.x, n, -2, 3);
    fill(&rng, k.w, (size_t)C, 0.5, 1.5);
    fill(&rng, k.b, (size_t)C, -1, 1);
    fill(&rng, k.c, n, -1, 1);
    ln_obj(&k);
    /* forward against double: biased variance, eps 1e-5 */
    for (size_t r = 0; r < B; r++) {
        double mu = 0, var = 0;
        for (int i = 0; i < C; i++)
            mu += k.x[r * C + i];
        mu /= C;
        for (int i = 0; i < C; i++)
            var += (k.x[r * C + i] - mu) * (k.x[r * C + i] - mu);
        var /= C;
        for (int i = 0; i < C; i++) {
            double want = (k.x[r * C + i] - mu) / sqrt(var + 1e-5) * k.w[i] + k.b[i];
            assert_true(fabs(k.y[r * C + i] - want) <= 1e-5 * (1 + fabs(want)));
        }
    }
    float *dx = calloc(n, 4), *dw = calloc((size_t)C, 4), *db = calloc((size_t)C, 4);
    trc_layernorm_backward(dx, dw, db, k.c, k.x, k.w, k.mean, k.rstd, B, C);
    check_grad("layernorm dx", ln_obj, &k, k.x, dx, n, 1e-2);
    check_grad("layernorm dw", ln_obj, &k, k.w, dw, (size_t)C, 1e-2);
    check_grad("layernorm db", ln_obj, &k, k.b, db, (size_t)C, 1e-2);
    /* in place (y aliases x) gives the same output */
    float *y2 = malloc(n * 4);
    memcpy(y2, k.x, n * 4);
    trc_layernorm_forward(y2, NULL, NULL, y2, k.w, k.b, B, C);
    ln_obj(&k);
    assert_memory_equal(y2, k.y, n * 4);
    free(y2), free(dx), free(dw), free(db);
    free(k.x), free(k.w), free(k.b), free(k.y), free(k.c), free(k.mean), free(k.rstd);
}

static void test_layernorm(void **state) {
    (void)state;
    layernorm_case(3, 13); /* vector part + scalar tail */
    layernorm_case(2, 16);
    layernorm_case(2, 5); /* tail only */
}

/* ---- element-wise kinds ---- */

typedef struct ew_ctx {
    float *x, *y, *c, *aux;
    size_t n;
    int kind; /* 0 silu, 1 tanh scale, 2 clamp */
    float param;
} ew_ctx;

static double ew_obj(void *p) {
    ew_ctx *k = p;
    if (k->kind == 0)
        trc_silu_forward(k->y, k->aux, k->x, k->n);
    else if (k->kind == 1)
        trc_tanhscale_forward(k->y, k->x, k->param, k->n);
    else
        trc_clamp_forward(k->y, k->x, k->param, k->n);
    return dot(k->c, k->y, k->n);
}

static void test_silu(void **state) {
    (void)state;
    trc_rng rng;
    trc_rng_seed(&rng, 31);
    size_t n = 37;
    ew_ctx k = {malloc(n * 4), malloc(n * 4), malloc(n * 4), malloc(n * 4), n, 0, 0};
    fill(&rng, k.x, n, -6, 6);
    fill(&rng, k.c, n, -1, 1);
    ew_obj(&k);
    float *dx = calloc(n, 4);
    trc_silu_backward(dx, k.c, k.x, k.aux, n);
    check_grad("silu dx", ew_obj, &k, k.x, dx, n, 1e-2);
    /* accuracy of the vectorized exp over the whole float range, and special values */
    float xs[] = {-200, -100, -88, -87, -30, -10, -1,  -1e-3f, 0,      1e-3f,
                  0.5f, 1,    3,   10,  30,  88,  100, 1e30f,  -1e30f, NAN};
    size_t m = sizeof xs / sizeof xs[0];
    float ys[sizeof xs / sizeof xs[0]], sg[sizeof xs / sizeof xs[0]];
    trc_silu_forward(ys, sg, xs, m);
    for (size_t i = 0; i + 1 < m; i++) {
        double s = 1.0 / (1.0 + exp(-(double)xs[i])), want = xs[i] * s;
        assert_true(fabs(sg[i] - s) <= 1e-6 * s + 1e-37);
        assert_true(fabs(ys[i] - want) <= 1e-6 * fabs(want) + 1e-30);
    }
    assert_true(isnan(ys[m - 1])); /* NaN propagates, so non-finite outputs are detected */
    free(dx);
    free(k.x), free(k.y), free(k.c), free(k.aux);
}

static void test_tanhscale(void **state) {
    (void)state;
    trc_rng rng;
    trc_rng_seed(&rng, 41);
    size_t n = 19;
    ew_ctx k = {malloc(n * 4), malloc(n * 4), malloc(n * 4), NULL, n, 1, 2.0f};
    fill(&rng, k.x, n, -3, 3);
    fill(&rng, k.c, n, -1, 1);
    ew_obj(&k);
    for (size_t i = 0; i < n; i++)
        assert_true(fabs(k.y[i] - 2.0 * tanh(k.x[i])) <= 1e-6);
    float *dx = calloc(n, 4);
    trc_tanhscale_backward(dx, k.c, k.y, 2.0f, n);
    check_grad("tanh-scale dx", ew_obj, &k, k.x, dx, n, 1e-2);
    free(dx);
    free(k.x), free(k.y), free(k.c);
}

static void test_clamp(void **state) {
    (void)state;
    size_t n = 8;
    float b = 1.5f;
    /* inside, outside both sides, and exactly on the bounds (gradient 1 there, as PyTorch) */
    float x[] = {-3, -1.5f, -1, 0, 0.7f, 1.5f, 2, 40};
    float want_y[] = {-1.5f, -1.5f, -1, 0, 0.7f, 1.5f, 1.5f, 1.5f};
    float want_g[] = {0, 1, 1, 1, 1, 1, 0, 0};
    float y[8], c[8] = {1, 2, 3, 4, 5, 6, 7, 8}, dx[8] = {0};
    trc_clamp_forward(y, x, b, n);
    assert_memory_equal(y, want_y, sizeof y);
    trc_clamp_backward(dx, c, x, b, n);
    for (size_t i = 0; i < n; i++)
        assert_true(dx[i] == want_g[i] * c[i]);
    /* finite differences away from the kinks */
    float xs[] = {-3, -1, 0, 0.7f, 2, 40};
    float cs[] = {0.3f, -0.7f, 1.1f, 0.5f, -2, 0.25f};
    ew_ctx k = {xs, y, cs, NULL, 6, 2, b};
    float g[6] = {0};
    trc_clamp_backward(g, cs, xs, b, 6);
    check_grad("clamp dx", ew_obj, &k, xs, g, 6, 1e-2);
    /* NaN passes through, so a diverged model is detected */
    float nan_in = NAN, nan_out = 0;
    trc_clamp_forward(&nan_out, &nan_in, b, 1);
    assert_true(isnan(nan_out));
}

static void test_residual(void **state) {
    (void)state;
    float a[3] = {1, 2, 3}, b[3] = {10, 20, 30}, y[3], dx[3] = {1, 1, 1}, dy[3] = {4, 5, 6};
    trc_residual_forward(y, a, b, 3);
    assert_true(y[0] == 11 && y[1] == 22 && y[2] == 33);
    trc_residual_backward(dx, dy, 3);
    assert_true(dx[0] == 5 && dx[1] == 6 && dx[2] == 7);
}

/* ---- the whole network, tiny ----
 * For the network, float32 finite differences are hopeless: the recursion (K*n*blocks block
 * applications) accumulates ~1e-6 relative rounding in the loss, which a finite difference
 * divides by the step. So the test carries its own straightforward double-precision forward of
 * model.md (plain loops, parameters looked up by name), differentiates THAT by central
 * differences (step 1e-6: truncation ~1e-12, rounding ~1e-10), and compares with the float
 * backward. It doubles as an independent check of the float forward. */

typedef struct dnet {
    const trc_model *model;
    double *P; /* a double copy of the parameters, same layout */
    int s, U, d, h, blocks, K, n;
    double b;
    size_t B;
    const float *x0, *tg, *ue;
} dnet;

static const double *dparam(const dnet *net, const char *fmt, int i) {
    char name[TRC_PARAM_NAME_MAX];
    snprintf(name, sizeof name, fmt, i);
    const trc_param_view *v = trc_model_find(net->model, name);
    if (!v)
        fail_msg("no parameter %s", name);
    return net->P + v->offset;
}

/* y[out] = W[out, in] x[in] + c */
static void dlinear(double *y, const double *x, const double *W, const double *c, int in, int out) {
    for (int o = 0; o < out; o++) {
        double acc = c[o];
        for (int i = 0; i < in; i++)
            acc += W[(size_t)o * in + i] * x[i];
        y[o] = acc;
    }
}

static void dlayernorm(double *x, const double *w, const double *b, int C) {
    double mu = 0, var = 0;
    for (int i = 0; i < C; i++)
        mu += x[i];
    mu /= C;
    for (int i = 0; i < C; i++)
        var += (x[i] - mu) * (x[i] - mu);
    var /= C;
    for (int i = 0; i < C; i++)
        x[i] = (x[i] - mu) / sqrt(var + 1e-5) * w[i] + b[i];
}

static void dsilu(double *x, int n) {
    for (int i = 0; i < n; i++)
        x[i] = x[i] / (1.0 + exp(-x[i]));
}

/* Linear, silu, LN, Linear under prefix (.0, .2, .3) */
static void dmlp(const dnet *net, const char *prefix, const double *in, int k, double *hid,
                 double *out, int o) {
    char f[TRC_PARAM_NAME_MAX];
    const double *w0, *b0, *w2, *b2, *w3, *b3;
    snprintf(f, sizeof f, "%s.0.weight", prefix), w0 = dparam(net, f, 0);
    snprintf(f, sizeof f, "%s.0.bias", prefix), b0 = dparam(net, f, 0);
    snprintf(f, sizeof f, "%s.2.weight", prefix), w2 = dparam(net, f, 0);
    snprintf(f, sizeof f, "%s.2.bias", prefix), b2 = dparam(net, f, 0);
    snprintf(f, sizeof f, "%s.3.weight", prefix), w3 = dparam(net, f, 0);
    snprintf(f, sizeof f, "%s.3.bias", prefix), b3 = dparam(net, f, 0);
    dlinear(hid, in, w0, b0, k, net->h);
    dsilu(hid, net->h);
    dlayernorm(hid, w2, b2, net->h);
    dlinear(out, hid, w3, b3, net->h, o);
}

/* model.md's forward for every sample; returns the MSE and leaves the outputs in u_out */
static double dforward(const dnet *net, double *u_out) {
    enum { MAXF = 64 };
    int s = net->s, U = net->U, d = net->d, h = net->h;
    assert_true(d <= MAXF && h <= MAXF && U <= MAXF && 2 * s + 1 <= MAXF);
    double x[MAXF], z0[MAXF], z[MAXF], u[MAXF], hid[MAXF], t1[MAXF], t2[MAXF], cat[2 * MAXF];
    double loss = 0.0;
    const char *bp = "recursive_reasoning.reasoning_blocks.%d.";
    char f[TRC_PARAM_NAME_MAX];
    for (size_t r = 0; r < net->B; r++) {
        for (int i = 0; i < s; i++) {
            x[i] = net->x0[r * s + i];
            x[s + i] = net->tg[r * s + i];
        }
        x[2 * s] = 1.0;
        dmlp(net, "state_encoder.encoder", x, 2 * s + 1, hid, z0, d);
        dmlp(net, "initial_control_generator.decoder", z0, d, hid, u, U);
        for (int i = 0; i < U; i++)
            u[i] = net->b * tanh(u[i]);
        for (int k = 0; k < net->K; k++) {
            dlinear(z, u, dparam(net, "recursive_reasoning.control_embedding.weight", 0),
                    dparam(net, "recursive_reasoning.control_embedding.bias", 0), U, d);
            for (int i = 0; i < d; i++)
                z[i] += z0[i];
            for (int j = 0; j < net->n; j++)
                for (int blk = 0; blk < net->blocks; blk++) {
#define BP(suffix) (snprintf(f, sizeof f, "%s%s", bp, suffix), dparam(net, f, blk))
                    for (int i = 0; i < d; i++)
                        z[i] += z0[i];
                    /* value rows of in_proj, then out_proj */
                    dlinear(t1, z, BP("attention.in_proj_weight") + 2 * d * d,
                            BP("attention.in_proj_bias") + 2 * d, d, d);
                    dlinear(t2, t1, BP("attention.out_proj.weight"), BP("attention.out_proj.bias"),
                            d, d);
                    for (int i = 0; i < d; i++)
                        z[i] += t2[i];
                    dlayernorm(z, BP("norm1.weight"), BP("norm1.bias"), d);
                    dlinear(hid, z, BP("ffn.0.weight"), BP("ffn.0.bias"), d, h);
                    dsilu(hid, h);
                    dlinear(t2, hid, BP("ffn.3.weight"), BP("ffn.3.bias"), h, d);
                    for (int i = 0; i < d; i++)
                        z[i] += t2[i];
                    dlayernorm(z, BP("norm2.weight"), BP("norm2.bias"), d);
#undef BP
                }
            memcpy(cat, z, (size_t)d * sizeof *cat);
            memcpy(cat + d, u, (size_t)U * sizeof *cat);
            dmlp(net, "control_decoder.decoder", cat, d + U, hid, t1, U);
            for (int i = 0; i < U; i++) {
                double v = u[i] + 0.5 * net->b * tanh(t1[i]);
                u[i] = v < -net->b ? -net->b : (v > net->b ? net->b : v);
            }
        }
        for (int i = 0; i < U; i++) {
            double e = u[i] - net->ue[r * U + i];
            loss += e * e;
            if (u_out)
                u_out[r * U + i] = u[i];
        }
    }
    return loss / (double)(net->B * (size_t)U);
}

static void tiny_config(trc_model_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->size, "custom");
    /* h = 12 and U = 3 are not multiples of the 8-lane vectors: tails are exercised */
    cfg->s = 2, cfg->m = 1, cfg->T = 3, cfg->bound = 1.0f;
    cfg->d = 8, cfg->h = 12, cfg->blocks = 2, cfg->heads = 2, cfg->K = 2, cfg->n = 2;
}

static void test_model(void **state) {
    (void)state;
    trc_model_config cfg;
    tiny_config(&cfg);
    trc_model model;
    assert_int_equal(trc_model_create(&cfg, &model), TRC_OK);
    assert_int_equal(trc_model_init(&model, 5), TRC_OK);
    /* larger than the initialization, so every layer is well inside its nonlinear range */
    trc_rng rng;
    trc_rng_seed(&rng, 6);
    for (size_t i = 0; i < model.num_params; i++)
        model.params[i] += (float)trc_rng_range(&rng, -0.3, 0.3);
    /* push the first control of each step towards the bounds, so that the clamp cuts */
    float *dec_bias =
        model.params + trc_model_find(&model, "control_decoder.decoder.3.bias")->offset;
    dec_bias[0] = 2.0f;
    dec_bias[1] = -1.5f;
    enum { B = 5, U = 3 };
    float x0[B * 2], tg[B * 2], ue[B * U];
    fill(&rng, x0, B * 2, -2, 2);
    fill(&rng, tg, B * 2, -1, 1);
    fill(&rng, ue, B * U, -2, 2);

    dnet net = {
        &model, malloc(model.num_params * sizeof(double)), 2, U, 8, 12, 2, 2, 2, 1.0, B, x0, tg,
        ue};
    assert_non_null(net.P);
    for (size_t i = 0; i < model.num_params; i++)
        net.P[i] = model.params[i];

    /* the float forward (training and inference paths) against the double reference */
    trc_trainer *tr;
    assert_int_equal(trc_trainer_create(&model, B, &tr), TRC_OK);
    float u_tr[B * U], u_inf[B * U], it[(2 + 1) * B * U], loss;
    double u_ref[B * U];
    double ref_loss = dforward(&net, u_ref);
    assert_int_equal(trc_trainer_forward(tr, B, x0, tg, NULL, ue, u_tr, &loss), TRC_OK);
    assert_true(fabs(loss - ref_loss) <= 1e-5 * fmax(1.0, ref_loss));
    int clamped = 0;
    for (size_t i = 0; i < B * U; i++) {
        assert_true(fabs(u_tr[i] - u_ref[i]) <= 1e-5);
        clamped += fabs(u_ref[i]) == 1.0;
    }
    assert_true(clamped > 0); /* the clamp's zero-gradient branch takes part */
    assert_int_equal(trc_model_infer(&model, B, x0, tg, u_inf, it), TRC_OK);
    for (size_t i = 0; i < B * U; i++) {
        assert_true(fabsf(u_inf[i] - u_tr[i]) <= 1e-6f);
        assert_true(it[2 * B * U + i] == u_inf[i]);
    }
    for (size_t r = 0; r < B; r++) {
        float u1[U];
        assert_int_equal(trc_model_infer(&model, 1, x0 + 2 * r, tg + 2 * r, u1, NULL), TRC_OK);
        for (size_t j = 0; j < U; j++)
            assert_true(fabsf(u1[j] - u_tr[r * U + j]) <= 1e-5f);
    }

    /* every parameter's gradient against central differences of the double forward */
    assert_int_equal(trc_trainer_backward(tr), TRC_OK);
    const float *g = trc_trainer_grads(tr);
    for (size_t v = 0; v < model.num_views; v++) {
        const trc_param_view *pv = &model.views[v];
        double *num = malloc(pv->numel * sizeof *num), maxabs = 0.0;
        assert_non_null(num);
        for (size_t j = 0; j < pv->numel; j++) {
            double *p = &net.P[pv->offset + j], orig = *p, hstep = 1e-6 * fmax(1.0, fabs(orig));
            *p = orig + hstep;
            double fp = dforward(&net, NULL);
            *p = orig - hstep;
            double fm = dforward(&net, NULL);
            *p = orig;
            num[j] = (fp - fm) / (2 * hstep);
            maxabs = fmax(maxabs, fabs(num[j]));
        }
        int unused = strncmp(pv->name, "error_", 6) == 0 || strstr(pv->name, "error_embedding");
        for (size_t j = 0; j < pv->numel; j++) {
            double got = g[pv->offset + j];
            if (unused || maxabs == 0.0) { /* no part in the forward pass: exactly zero */
                assert_true(got == 0.0 && fabs(num[j]) < 1e-9);
                continue;
            }
            if (!(fabs(got - num[j]) <= 1e-4 * maxabs))
                fail_msg("%s[%zu]: backward %.7g, finite difference %.7g (tensor max %.3g)",
                         pv->name, j, got, num[j], maxabs);
        }
        free(num);
    }
    free(net.P);
    trc_trainer_free(tr);
    trc_model_free(&model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear), cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_silu),   cmocka_unit_test(test_tanhscale),
        cmocka_unit_test(test_clamp),  cmocka_unit_test(test_residual),
        cmocka_unit_test(test_model),
    };
    return RUN_EVERY_ISA(tests, NULL, NULL);
}
