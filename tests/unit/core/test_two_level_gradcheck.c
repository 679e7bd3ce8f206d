/* Finite-difference checks of the two-level backward: the new layer kinds (RMSNorm, SwiGLU)
 * against 5-point differences of their float forward, and whole tiny networks (two_level and
 * trm_style, with and without truncation, with trajectory feedback) against central
 * differences of an independent double-precision forward written here from model-v2.md.
 * Truncation makes the gradient that of a function in which the truncated cycles' states are
 * constants: the reference freezes them at their values for the unperturbed parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../core/src/nn/nn_layers.h"
#include "trc/error.h"
#include "trc/rng.h"
#include "trc/two_level.h"

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

typedef double (*objective_fn)(void *ctx);

static void check_grad(const char *what, objective_fn obj, void *ctx, float *p, const float *grad,
                       size_t n, double h) {
    double maxabs = 0.0, *num = malloc(n * sizeof *num);
    assert_non_null(num);
    for (size_t i = 0; i < n; i++) {
        float orig = p[i];
        double f[4];
        const double st[4] = {-2, -1, 1, 2};
        for (int k = 0; k < 4; k++) {
            p[i] = (float)(orig + st[k] * h);
            f[k] = obj(ctx);
        }
        p[i] = orig;
        num[i] = (f[0] - 8.0 * f[1] + 8.0 * f[2] - f[3]) / (12.0 * h);
        maxabs = fmax(maxabs, fabs(num[i]));
    }
    double tol = 1e-3 * fmax(maxabs, 1e-3);
    for (size_t i = 0; i < n; i++)
        if (!(fabs(grad[i] - num[i]) <= tol))
            fail_msg("%s[%zu]: backward %.7g, finite difference %.7g", what, i, (double)grad[i],
                     num[i]);
    free(num);
}

/* ---- RMSNorm ---- */

typedef struct rms_ctx {
    float *x, *w, *y, *c, *rstd;
    size_t B;
    int C;
} rms_ctx;

static double rms_obj(void *p) {
    rms_ctx *k = p;
    trc_rmsnorm_forward(k->y, k->rstd, k->x, k->w, k->B, k->C);
    return dot(k->c, k->y, k->B * (size_t)k->C);
}

static void test_rmsnorm(void **state) {
    (void)state;
    trc_rng rng;
    trc_rng_seed(&rng, 3);
    enum { B = 3, C = 13 };
    float x[B * C], w[C], y[B * C], c[B * C], rstd[B];
    fill(&rng, x, B * C, -2, 3);
    fill(&rng, w, C, 0.5, 1.5);
    fill(&rng, c, B * C, -1, 1);
    rms_ctx k = {x, w, y, c, rstd, B, C};
    rms_obj(&k);
    for (int r = 0; r < B; r++) { /* eps inside the root, no mean removal, no bias */
        double ms = 0;
        for (int i = 0; i < C; i++)
            ms += (double)x[r * C + i] * x[r * C + i];
        ms /= C;
        for (int i = 0; i < C; i++) {
            double want = x[r * C + i] / sqrt(ms + 1e-5) * w[i];
            assert_true(fabs(y[r * C + i] - want) <= 1e-5 * (1 + fabs(want)));
        }
    }
    float dx[B * C] = {0}, dw[C] = {0};
    trc_rmsnorm_backward(dx, dw, c, x, w, rstd, B, C);
    check_grad("rmsnorm dx", rms_obj, &k, x, dx, B * C, 1e-2);
    check_grad("rmsnorm dw", rms_obj, &k, w, dw, C, 1e-2);
    /* in place */
    float y2[B * C];
    memcpy(y2, x, sizeof y2);
    trc_rmsnorm_forward(y2, NULL, y2, w, B, C);
    rms_obj(&k);
    assert_memory_equal(y2, y, sizeof y2);
}

/* ---- SwiGLU ---- */

typedef struct sw_ctx {
    float *G, *S, *sig, *c;
    size_t B;
    int I;
} sw_ctx;

static double sw_obj(void *p) {
    sw_ctx *k = p;
    trc_swiglu_forward(k->S, k->sig, k->G, k->B, k->I);
    return dot(k->c, k->S, k->B * (size_t)k->I);
}

static void test_swiglu(void **state) {
    (void)state;
    trc_rng rng;
    trc_rng_seed(&rng, 4);
    enum { B = 2, I = 11 };
    float G[B * 2 * I], S[B * I], sig[B * I], c[B * I];
    fill(&rng, G, B * 2 * I, -4, 4);
    fill(&rng, c, B * I, -1, 1);
    sw_ctx k = {G, S, sig, c, B, I};
    sw_obj(&k);
    for (int r = 0; r < B; r++) /* gate first, value second */
        for (int i = 0; i < I; i++) {
            double g = G[r * 2 * I + i], q = G[r * 2 * I + I + i];
            double want = g / (1 + exp(-g)) * q;
            assert_true(fabs(S[r * I + i] - want) <= 1e-5 * (1 + fabs(want)));
        }
    float dG[B * 2 * I] = {0};
    trc_swiglu_backward(dG, c, G, sig, B, I);
    check_grad("swiglu dG", sw_obj, &k, G, dG, B * 2 * I, 1e-2);
}

/* ---- whole networks against a double reference ---- */

enum { MAXF = 64, MAXH = 8 };

typedef struct dnet {
    const trc_tl_model *model;
    double *P;
    int s, U, T, d, h, I, layers, H, L, trunc, fb, rms;
    double b;
    size_t B;
    const float *x0, *tg, *ue;
    /* frozen (truncated) states: [H][B][d] after each cycle, recorded when `record` */
    double *fzH, *fzL;
    int record;
    /* tensors looked up by (string literal, string literal, index): names are resolved once */
    struct {
        const char *a, *b;
        int i;
        size_t off;
    } memo[128];
    int nmemo;
} dnet;

/* The tensor named a + b (b may be "") with %d in a replaced by i, through the memo. */
static const double *mpar(dnet *n, const char *a, const char *b, int i) {
    for (int k = 0; k < n->nmemo; k++)
        if (n->memo[k].a == a && n->memo[k].b == b && n->memo[k].i == i)
            return n->P + n->memo[k].off;
    char fmt[TRC_PARAM_NAME_MAX], name[TRC_PARAM_NAME_MAX];
    snprintf(fmt, sizeof fmt, "%s%s", a, b);
    snprintf(name, sizeof name, fmt, i);
    const trc_param_view *v = trc_tl_find(n->model, name);
    if (!v)
        fail_msg("no tensor %s", name);
    assert_true(n->nmemo < 128);
    n->memo[n->nmemo].a = a, n->memo[n->nmemo].b = b, n->memo[n->nmemo].i = i;
    n->memo[n->nmemo++].off = v->offset;
    return n->P + v->offset;
}

static void dlin(double *y, const double *x, const double *W, const double *c, int in, int out) {
    for (int o = 0; o < out; o++) {
        double a = c[o];
        for (int i = 0; i < in; i++)
            a += W[(size_t)o * in + i] * x[i];
        y[o] = a;
    }
}

static void dnorm(double *x, const double *w, const double *b, int C, int rms) {
    double mu = 0, var = 0;
    for (int i = 0; i < C && !rms; i++)
        mu += x[i] / C;
    for (int i = 0; i < C; i++)
        var += (x[i] - mu) * (x[i] - mu) / C;
    for (int i = 0; i < C; i++)
        x[i] = (x[i] - mu) / sqrt(var + 1e-5) * w[i] + (rms ? 0.0 : b[i]);
}

static double dsilu(double x) {
    return x / (1.0 + exp(-x));
}

static void dmlp(dnet *n, const char *pre, const double *in, int k, double *out, int o) {
    double hid[MAXF];
#define P_(sfx) mpar(n, pre, sfx, 0)
    dlin(hid, in, P_(".0.weight"), P_(".0.bias"), k, n->h);
    for (int i = 0; i < n->h; i++)
        hid[i] = dsilu(hid[i]);
    dnorm(hid, P_(".2.weight"), P_(".2.bias"), n->h, 0);
    dlin(out, hid, P_(".3.weight"), P_(".3.bias"), n->h, o);
#undef P_
}

/* z = blocks(z) */
static void dblocks(dnet *n, double *z) {
    int d = n->d, I = n->I;
    double t1[MAXF], t2[MAXF], g[2 * MAXF];
    for (int i = 0; i < n->layers; i++) {
#define BP(sfx) mpar(n, "recursive_reasoning.L_level.layers.%d.", sfx, i)
        dlin(t1, z, BP("attention.in_proj_weight") + 2 * d * d,
             BP("attention.in_proj_bias") + 2 * d, d, d);
        dlin(t2, t1, BP("attention.out_proj.weight"), BP("attention.out_proj.bias"), d, d);
        for (int j = 0; j < d; j++)
            z[j] += t2[j];
        dnorm(z, BP("norm1.weight"), n->rms ? NULL : BP("norm1.bias"), d, n->rms);
        dlin(g, z, BP("ffn.fc_in.weight"), BP("ffn.fc_in.bias"), d, n->rms ? 2 * I : I);
        for (int j = 0; j < I; j++)
            t1[j] = n->rms ? dsilu(g[j]) * g[I + j] : dsilu(g[j]);
        dlin(t2, t1, BP("ffn.fc_out.weight"), BP("ffn.fc_out.bias"), I, d);
        for (int j = 0; j < d; j++)
            z[j] += t2[j];
        dnorm(z, BP("norm2.weight"), n->rms ? NULL : BP("norm2.bias"), d, n->rms);
#undef BP
    }
}

/* exact double integrator, dt = 0.3: x_T for one sample */
static void dsim(const double *x0, const double *u, int T, double *xT) {
    double p = x0[0], v = x0[1], dt = 0.3;
    for (int t = 0; t < T; t++) {
        double pn = p + dt * v + 0.5 * dt * dt * u[t];
        v += dt * u[t];
        p = pn;
    }
    xT[0] = p, xT[1] = v;
}

static double dforward(dnet *n, double *u_out) {
    int s = n->s, U = n->U, d = n->d;
    double x[MAXF], z0[MAXF], zH[MAXF], zL[MAXF], u[MAXF], c[MAXF], inj[MAXF], z[MAXF];
    double cat[2 * MAXF], r[MAXF], e[2], xT[2];
    double loss = 0;
    for (size_t row = 0; row < n->B; row++) {
        for (int i = 0; i < s; i++)
            x[i] = n->x0[row * s + i], x[s + i] = n->tg[row * s + i];
        x[2 * s] = 1.0;
        dmlp(n, "state_encoder.encoder", x, 2 * s + 1, z0, d);
        dmlp(n, "initial_control_generator.decoder", z0, d, u, U);
        for (int i = 0; i < U; i++)
            u[i] = n->b * tanh(u[i]);
        memcpy(zH, mpar(n, "recursive_reasoning.H_init", "", 0), d * sizeof *zH);
        memcpy(zL, mpar(n, "recursive_reasoning.L_init", "", 0), d * sizeof *zL);
        for (int k = 0; k < n->H; k++) {
            dlin(c, u, mpar(n, "recursive_reasoning.control_embedding.weight", "", 0),
                 mpar(n, "recursive_reasoning.control_embedding.bias", "", 0), U, d);
            if (n->fb) {
                double x0d[2] = {n->x0[row * 2], n->x0[row * 2 + 1]};
                dsim(x0d, u, n->T, xT);
                e[0] = xT[0] - n->tg[row * 2], e[1] = xT[1] - n->tg[row * 2 + 1];
                dlin(inj, e, mpar(n, "recursive_reasoning.error_embedding.weight", "", 0),
                     mpar(n, "recursive_reasoning.error_embedding.bias", "", 0), 2, d);
                for (int i = 0; i < d; i++)
                    c[i] += inj[i];
            }
            int frozen = n->trunc && k < n->H - 1;
            double *fH = n->fzH + ((size_t)k * n->B + row) * d,
                   *fL = n->fzL + ((size_t)k * n->B + row) * d;
            if (frozen && !n->record) { /* a constant: the value of the unperturbed network */
                memcpy(zH, fH, d * sizeof *zH);
                memcpy(zL, fL, d * sizeof *zL);
            } else {
                for (int i = 0; i < d; i++)
                    inj[i] = (zH[i] + z0[i]) + c[i];
                for (int l = 0; l < n->L; l++) {
                    for (int i = 0; i < d; i++)
                        z[i] = zL[i] + inj[i];
                    dblocks(n, z);
                    memcpy(zL, z, d * sizeof *z);
                }
                for (int i = 0; i < d; i++)
                    z[i] = zH[i] + zL[i];
                dblocks(n, z);
                memcpy(zH, z, d * sizeof *z);
                if (frozen) {
                    memcpy(fH, zH, d * sizeof *zH);
                    memcpy(fL, zL, d * sizeof *zL);
                }
            }
            memcpy(cat, zH, d * sizeof *cat);
            memcpy(cat + d, u, U * sizeof *cat);
            dmlp(n, "control_decoder.decoder", cat, d + U, r, U);
            for (int i = 0; i < U; i++) {
                double v = u[i] + 0.5 * n->b * tanh(r[i]);
                u[i] = v < -n->b ? -n->b : (v > n->b ? n->b : v);
            }
        }
        for (int i = 0; i < U; i++) {
            double df = u[i] - n->ue[row * U + i];
            loss += df * df;
            if (u_out)
                u_out[row * U + i] = u[i];
        }
    }
    return loss / (double)(n->B * (size_t)U);
}

static void dsim_rollout(void *ctx, const float *x0, const float *u, float *traj, double *A,
                         double *Bm) {
    (void)ctx;
    double p = x0[0], v = x0[1], dt = 0.3;
    traj[0] = x0[0], traj[1] = x0[1];
    for (int t = 0; t < 3; t++) {
        double pn = p + dt * v + 0.5 * dt * dt * u[t];
        v += dt * u[t];
        p = pn;
        traj[2 * t + 2] = (float)p, traj[2 * t + 3] = (float)v;
        if (A && Bm) {
            A[4 * t] = 1, A[4 * t + 1] = dt, A[4 * t + 2] = 0, A[4 * t + 3] = 1;
            Bm[2 * t] = 0.5 * dt * dt, Bm[2 * t + 1] = dt;
        }
    }
}

static void net_case(const char *arch, int truncate, int H, int feedback) {
    trc_tl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.arch, sizeof cfg.arch, "%s", arch);
    strcpy(cfg.size, "custom");
    cfg.kind = strcmp(arch, "trm_style") == 0 ? TRC_TL_RMS_SWIGLU : TRC_TL_LN_SILU;
    cfg.s = 2, cfg.m = 1, cfg.T = 3, cfg.bound = 1.0f;
    cfg.d = 8, cfg.h = 12, cfg.ffn = 12, cfg.layers = 2, cfg.heads = 2;
    cfg.H = H, cfg.L = 2, cfg.truncate = truncate, cfg.feedback = feedback;
    trc_tl_model model;
    assert_int_equal(trc_tl_create(&cfg, &model), TRC_OK);
    assert_int_equal(trc_tl_init(&model, 5), TRC_OK);
    trc_rng rng;
    trc_rng_seed(&rng, 6);
    for (size_t i = 0; i < model.num_floats; i++) /* well inside every nonlinearity's range */
        model.params[i] += (float)trc_rng_range(&rng, -0.3, 0.3);
    float *db = model.params + trc_tl_find(&model, "control_decoder.decoder.3.bias")->offset;
    db[0] = 2.0f, db[1] = -1.5f; /* the clamp cuts somewhere */
    enum { B = 4, U = 3 };
    float x0[B * 2], tg[B * 2], ue[B * U];
    fill(&rng, x0, B * 2, -1, 1);
    fill(&rng, tg, B * 2, -1, 1);
    fill(&rng, ue, B * U, -1, 1);
    dnet n = {.model = &model,
              .P = malloc(model.num_floats * sizeof(double)),
              .s = 2,
              .U = U,
              .T = 3,
              .d = 8,
              .h = 12,
              .I = 12,
              .layers = 2,
              .H = H,
              .L = 2,
              .trunc = truncate,
              .fb = feedback,
              .rms = cfg.kind == TRC_TL_RMS_SWIGLU,
              .b = 1.0,
              .B = B,
              .x0 = x0,
              .tg = tg,
              .ue = ue,
              .fzH = malloc((size_t)H * B * 8 * sizeof(double)),
              .fzL = malloc((size_t)H * B * 8 * sizeof(double)),
              .record = 1};
    assert_non_null(n.P), assert_non_null(n.fzH), assert_non_null(n.fzL);
    for (size_t i = 0; i < model.num_floats; i++)
        n.P[i] = model.params[i];
    double u_ref[B * U], ref_loss = dforward(&n, u_ref);
    n.record = 0;

    trc_tl_sim sim = {2, 1, 3, dsim_rollout, NULL};
    trc_tl_trainer *tr;
    assert_int_equal(trc_tl_trainer_create(&model, B, &tr), TRC_OK);
    trc_tl_trainer_set_sim(tr, &sim);
    float loss;
    assert_int_equal(trc_tl_trainer_step_mse(tr, B, x0, tg, ue, &loss), TRC_OK);
    assert_true(fabs(loss - ref_loss) <= 1e-5 * fmax(1.0, ref_loss));
    const float *it = trc_tl_trainer_iterates(tr);
    int clamped = 0;
    for (size_t i = 0; i < B * U; i++) {
        assert_true(fabs(it[(size_t)H * B * U + i] - u_ref[i]) <= 1e-5);
        clamped += fabs(u_ref[i]) == 1.0;
    }
    assert_true(clamped > 0);
    const float *g = trc_tl_trainer_grads(tr);
    for (size_t v = 0; v < model.num_views; v++) {
        const trc_param_view *pv = &model.views[v];
        if (model.role[v] == TRC_TL_BUFFER) /* trm_style's fixed states: not parameters */
            continue;
        /* every element of small tensors, an even spread of 48 of the larger ones (their
         * maximum taken over the whole tensor's backward, so the tolerance does not shrink) */
        size_t step = pv->numel / 48 + 1;
        double maxabs = 0.0, *num = calloc(pv->numel, sizeof *num);
        assert_non_null(num);
        for (size_t j = 0; j < pv->numel; j++)
            maxabs = fmax(maxabs, fabs(g[pv->offset + j]));
        for (size_t j = 0; j < pv->numel; j += step) {
            double *p = &n.P[pv->offset + j], orig = *p, hs = 1e-6 * fmax(1.0, fabs(orig));
            *p = orig + hs;
            double fp = dforward(&n, NULL);
            *p = orig - hs;
            double fm = dforward(&n, NULL);
            *p = orig;
            num[j] = (fp - fm) / (2 * hs);
        }
        for (size_t j = 0; j < pv->numel; j += step) {
            double got = g[pv->offset + j];
            if (!model.has_grad[v]) { /* absent: exactly zero, and no part in the function */
                assert_true(got == 0.0);
                assert_true(fabs(num[j]) < 1e-9);
                continue;
            }
            if (!(fabs(got - num[j]) <= 1e-4 * maxabs + 1e-9))
                fail_msg("%s %s trunc=%d H=%d fb=%d: %s[%zu]: backward %.7g, reference %.7g "
                         "(max %.3g)",
                         arch, cfg.size, truncate, H, feedback, pv->name, j, got, num[j], maxabs);
        }
        free(num);
    }
    trc_tl_trainer_free(tr);
    free(n.P), free(n.fzH), free(n.fzL);
    trc_tl_free(&model);
}

static void test_two_level_truncated(void **state) {
    (void)state;
    net_case("two_level", 1, 3, 0);
}

static void test_two_level_full(void **state) {
    (void)state;
    net_case("two_level", 0, 2, 0); /* H_init, L_init get gradients */
}

static void test_two_level_feedback(void **state) {
    (void)state;
    net_case("two_level", 1, 3, 1);
    net_case("two_level", 0, 2, 1);
}

static void test_trm_style(void **state) {
    (void)state;
    net_case("trm_style", 1, 3, 0);
    net_case("trm_style", 0, 2, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_two_level_truncated),
        cmocka_unit_test(test_two_level_full),
        cmocka_unit_test(test_two_level_feedback),
        cmocka_unit_test(test_trm_style),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
