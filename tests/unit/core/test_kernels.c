/* The kernels of core/src/kernels on every instruction-set path the CPU runs: trc_gemm in each
 * layout (B transposed, row-major, packed panels; A by rows or by columns; accumulate) with
 * every epilogue (bias, residual, SiLU keeping its pre-activation and sigmoid) against a
 * double-precision product, SiLU's backward in the epilogue against the separate kernel, for shapes
 * around the tile and panel edges; the layer norm fused after the epilogue against a separate one,
 * bit for bit; a row's bits do not depend on the other rows; nothing is read or written outside the
 * operands (matrices placed against an inaccessible page); the vector exp's and SiLU's error
 * against double precision; and the path choice itself (TRC_ISA, unsupported and unknown requests).
 */
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
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/kernels.h"
#include "nn/layers.h"
#include "nn/linear_packed.h"
#include "nn/nn_layers.h"
#include "trc/error.h"
#include "trc/rng.h"

static void fill(trc_rng *rng, float *v, size_t n) {
    for (size_t i = 0; i < n; i++)
        v[i] = (float)trc_rng_range(rng, -1.0, 1.0);
}

enum { LAY_BTRANS, LAY_ROWMAJOR, LAY_PACKED, LAY_ACOLS, LAY_COUNT };
static const char *const lay_names[] = {"B transposed", "B row-major", "B packed", "A by columns"};

typedef struct operands {
    int M, N, K;
    float *A, *W, *Bp, *bias, *res, *C, *pre, *sig, *C0;
    /* A(m, k) and W(n, k), the logical operands, for the reference */
    double *Ad, *Wd;
} operands;

/* set by test_gemm_layer_norm: run_gemm's next products also layer-normalise their rows */
static const float *ln_w_next, *ln_b_next;
static float *ln_y_next;
/* set by test_gemm_dsilu: run_gemm's next products use act = DSILU over o->pre, o->sig */
static int dsilu_next;

/* C = A W^T (+ ...) in layout lay, over rows [m0, m0 + M) of the operands */
static void run_gemm(const operands *o, int lay, int m0, int M, int beta, int epi) {
    int N = o->N, K = o->K;
    trc_gemm_args g = {
        .M = M, .N = N, .K = K, .C = o->C + (size_t)m0 * N, .ldc = (size_t)N, .beta = beta};
    if (!beta && (epi & 1))
        g.bias = o->bias;
    if (epi & 2) {
        g.res = o->res + (size_t)m0 * N;
        g.ldr = (size_t)N;
    }
    if (epi & 4) {
        g.act = TRC_ACT_SILU;
        g.pre = o->pre + (size_t)m0 * N;
        g.sig = o->sig + (size_t)m0 * N;
    }
    if (dsilu_next) {
        g.act = TRC_ACT_DSILU;
        g.pre = o->pre + (size_t)m0 * N;
        g.sig = o->sig + (size_t)m0 * N;
    }
    if (ln_w_next) {
        g.ln_w = ln_w_next;
        g.ln_b = ln_b_next;
        g.ln_y = ln_y_next + (size_t)m0 * N;
    }
    if (lay == LAY_ACOLS) { /* A stored [K, Mtotal]: A(m, k) = A[k * Mtotal + m] */
        g.A = o->A + m0;
        g.rsa = 1;
        g.csa = (size_t)o->M;
    } else {
        g.A = o->A + (size_t)m0 * K;
        g.rsa = (size_t)K;
        g.csa = 1;
    }
    if (lay == LAY_BTRANS) {
        g.B = o->W;
        g.ldb = (size_t)K;
        g.btrans = 1;
    } else if (lay == LAY_PACKED) {
        g.B = o->Bp;
        g.ldb = TRC_PANEL;
        g.pstride = (size_t)K * TRC_PANEL;
    } else { /* W^T stored row-major [K, N] in Bp's place */
        g.B = o->Bp;
        g.ldb = (size_t)N;
        g.pstride = TRC_PANEL;
    }
    trc_gemm(&g);
}

static double silu_d(double v) {
    return v / (1.0 + exp(-v));
}

static void check_shape(trc_rng *rng, int M, int N, int K) {
    operands o = {.M = M, .N = N, .K = K};
    size_t mk = (size_t)M * K, nk = (size_t)N * K, mn = (size_t)M * N;
    o.A = malloc(mk * sizeof(float));
    o.W = malloc(nk * sizeof(float));
    o.Bp = malloc((trc_linear_packed_size(K, N) + nk) * sizeof(float));
    o.bias = malloc((size_t)N * sizeof(float));
    o.res = malloc(mn * sizeof(float));
    o.C = malloc((mn + 1) * sizeof(float));
    o.C0 = malloc(mn * sizeof(float));
    o.pre = malloc(mn * sizeof(float));
    o.sig = malloc(mn * sizeof(float));
    float *row = malloc((size_t)N * sizeof(float));
    float *Araw = malloc(mk * sizeof(float));
    assert_true(o.A && o.W && o.Bp && o.bias && o.res && o.C && o.C0 && o.pre && o.sig && row &&
                Araw);
    fill(rng, Araw, mk);
    fill(rng, o.W, nk);
    fill(rng, o.bias, (size_t)N);
    fill(rng, o.res, mn);
    fill(rng, o.C0, mn);
    for (int lay = 0; lay < LAY_COUNT; lay++) {
        /* A as the layout wants it; B packed, or W^T row-major */
        for (int m = 0; m < M; m++)
            for (int k = 0; k < K; k++)
                o.A[lay == LAY_ACOLS ? (size_t)k * M + m : (size_t)m * K + k] =
                    Araw[(size_t)m * K + k];
        if (lay == LAY_PACKED)
            trc_linear_pack(o.Bp, o.W, K, N);
        else
            for (int k = 0; k < K; k++)
                for (int n = 0; n < N; n++)
                    o.Bp[(size_t)k * N + n] = o.W[(size_t)n * K + k];
        for (int epi = 0; epi < 8; epi++)
            for (int beta = 0; beta <= 1; beta++) {
                memcpy(o.C, o.C0, mn * sizeof(float));
                o.C[mn] = 4242.0f; /* sentinel just past C */
                run_gemm(&o, lay, 0, M, beta, epi);
                assert_true(o.C[mn] == 4242.0f);
                for (int m = 0; m < M; m++)
                    for (int n = 0; n < N; n++) {
                        size_t i = (size_t)m * N + n;
                        double v = beta ? o.C0[i] : (epi & 1) ? o.bias[n] : 0.0, mag = fabs(v);
                        for (int k = 0; k < K; k++) {
                            double p = (double)Araw[(size_t)m * K + k] * o.W[(size_t)n * K + k];
                            v += p;
                            mag += fabs(p);
                        }
                        if (epi & 2) {
                            v += o.res[i];
                            mag += fabs(o.res[i]);
                        }
                        double tol = 2e-6 * (mag + 1.0);
                        if ((epi & 4) && !(fabs(o.pre[i] - v) <= tol))
                            fail_msg("%s M=%d N=%d K=%d epi=%d beta=%d pre[%d,%d] = %g, want %g",
                                     lay_names[lay], M, N, K, epi, beta, m, n, (double)o.pre[i], v);
                        double want = (epi & 4) ? silu_d(v) : v;
                        if (!(fabs(o.C[i] - want) <= tol))
                            fail_msg("%s M=%d N=%d K=%d epi=%d beta=%d C[%d,%d] = %g, want %g",
                                     lay_names[lay], M, N, K, epi, beta, m, n, (double)o.C[i],
                                     want);
                        if ((epi & 4) && !(fabs(o.sig[i] - 1.0 / (1.0 + exp(-v))) <= 1e-6 + tol))
                            fail_msg("%s sig[%d,%d] = %g", lay_names[lay], m, n, (double)o.sig[i]);
                    }
                /* every row alone gives the same bits as in the batch */
                if (beta == 0 && lay != LAY_ACOLS)
                    for (int m = 0; m < M; m += 5) {
                        float *Cm = o.C + (size_t)m * N;
                        memcpy(row, Cm, (size_t)N * sizeof *row);
                        run_gemm(&o, lay, m, 1, 0, epi);
                        assert_memory_equal(row, Cm, (size_t)N * sizeof *row);
                    }
            }
    }
    free(o.A);
    free(o.W);
    free(o.Bp);
    free(o.bias);
    free(o.res);
    free(o.C);
    free(o.C0);
    free(o.pre);
    free(o.sig);
    free(row);
    free(Araw);
}

static void test_gemm_layouts(void **state) {
    (void)state;
    trc_rng rng;
    trc_rng_seed(&rng, 5);
    const int Ms[] = {1, 2, 3, 5, 6, 7, 8, 12, 13, 25};
    /* K = 1100: trc_gemm cuts K into chunks (kernels.c, KBLK) for B not transposed */
    const int NKs[][2] = {{1, 1},    {15, 5},   {16, 128}, {17, 33},
                          {48, 130}, {69, 300}, {256, 7},  {21, 1100}};
    for (size_t i = 0; i < sizeof Ms / sizeof Ms[0]; i++)
        for (size_t j = 0; j < sizeof NKs / sizeof NKs[0]; j++)
            check_shape(&rng, Ms[i], NKs[j][0], NKs[j][1]);
}

/* trc_linear_pack (the path's 16x16 transposes where it has them, lane by lane for the rest)
 * against its definition: panel p, input i, lane j holds W[16p + j][i], zero past out. */
static void test_linear_pack(void **state) {
    (void)state;
    const int shapes[][2] = {{128, 256}, {256, 128}, {5, 256}, {143, 40}, {256, 15}, {17, 33}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int in = shapes[si][0], out = shapes[si][1];
        float *W = malloc((size_t)in * out * sizeof *W);
        float *Wp = trc_linear_packed_alloc(trc_linear_packed_size(in, out));
        assert_true(W && Wp);
        for (int k = 0; k < in * out; k++)
            W[k] = (float)k + 0.5f;
        trc_linear_pack(Wp, W, in, out);
        for (int p = 0; p < (out + TRC_PANEL - 1) / TRC_PANEL; p++)
            for (int i = 0; i < in; i++)
                for (int j = 0; j < TRC_PANEL; j++) {
                    int o = p * TRC_PANEL + j;
                    float want = o < out ? W[(size_t)o * in + i] : 0.0f;
                    float got = Wp[((size_t)p * in + i) * TRC_PANEL + j];
                    if (got != want)
                        fail_msg("pack in=%d out=%d panel %d input %d lane %d: %g, want %g", in,
                                 out, p, i, j, (double)got, (double)want);
                }
        free(W);
        free(Wp);
    }
}

/* trc_layernorm_backward_set (dx and dx2 written) gives the bits of a memset, the
 * accumulating trc_layernorm_backward and a copy, parameter gradients included. */
static void test_layernorm_backward_set(void **state) {
    (void)state;
    trc_rng rng;
    trc_rng_seed(&rng, 41);
    const int Bs[] = {1, 7}, Cs[] = {16, 69, 128};
    for (size_t bi = 0; bi < 2; bi++)
        for (size_t ci = 0; ci < 3; ci++) {
            int B = Bs[bi], C = Cs[ci];
            size_t n = (size_t)B * C;
            float *x = malloc(n * sizeof *x), *dy = malloc(n * sizeof *dy);
            float *y = malloc(n * sizeof *y), *w = malloc((size_t)C * sizeof *w);
            float *b = malloc((size_t)C * sizeof *b), *mean = malloc((size_t)B * sizeof *mean);
            float *rstd = malloc((size_t)B * sizeof *rstd), *dx = malloc(n * sizeof *dx);
            float *dx1 = malloc(n * sizeof *dx1), *dx2 = malloc(n * sizeof *dx2);
            float *g = calloc(4 * (size_t)C, sizeof *g);
            assert_true(x && dy && y && w && b && mean && rstd && dx && dx1 && dx2 && g);
            fill(&rng, x, n);
            fill(&rng, dy, n);
            fill(&rng, w, (size_t)C);
            fill(&rng, b, (size_t)C);
            trc_layernorm_forward(y, mean, rstd, x, w, b, (size_t)B, C);
            memset(dx, 0, n * sizeof *dx);
            trc_layernorm_backward(dx, g, g + C, dy, x, w, mean, rstd, (size_t)B, C);
            fill(&rng, dx1, n); /* overwritten, whatever they held */
            fill(&rng, dx2, n);
            trc_layernorm_backward_set(dx1, dx2, g + 2 * C, g + 3 * C, dy, x, w, mean, rstd,
                                       (size_t)B, C);
            assert_memory_equal(dx, dx1, n * sizeof *dx);
            assert_memory_equal(dx, dx2, n * sizeof *dx);
            assert_memory_equal(g, g + 2 * C, 2 * (size_t)C * sizeof *g);
            free(x);
            free(dy);
            free(y);
            free(w);
            free(b);
            free(mean);
            free(rstd);
            free(dx);
            free(dx1);
            free(dx2);
            free(g);
        }
}

/* The layer norms take rows four at a time, the last 1-3 together (their dependency chains
 * interleaved): B rows in one call give the bits of B calls of one row each, forward and backward,
 * parameter gradients (which receive the rows' terms in row order) included. */
static void test_layernorm_rows_at_once(void **state) {
    (void)state;
    trc_rng rng;
    trc_rng_seed(&rng, 43);
    const int Cs[] = {16, 69, 128, 256}, Bs[] = {5, 6, 11}; /* 4 + 1, 4 + 2, 4 + 4 + 3 */
    for (size_t k = 0; k < 12; k++) {
        int B = Bs[k % 3], C = Cs[k / 3];
        size_t n = (size_t)B * C;
        float *x = malloc(n * sizeof *x), *dy = malloc(n * sizeof *dy);
        float *y = malloc(n * sizeof *y), *y1 = malloc(n * sizeof *y1);
        float *w = malloc((size_t)C * sizeof *w), *b = malloc((size_t)C * sizeof *b);
        float *st = malloc(4 * (size_t)B * sizeof *st), *dx = malloc(n * sizeof *dx);
        float *dx1 = malloc(n * sizeof *dx1), *g = calloc(4 * (size_t)C, sizeof *g);
        assert_true(x && dy && y && y1 && w && b && st && dx && dx1 && g);
        fill(&rng, x, n);
        fill(&rng, dy, n);
        fill(&rng, w, (size_t)C);
        fill(&rng, b, (size_t)C);
        fill(&rng, dx, n);
        memcpy(dx1, dx, n * sizeof *dx);
        trc_layernorm_forward(y, st, st + B, x, w, b, (size_t)B, C);
        for (int r = 0; r < B; r++)
            trc_layernorm_forward(y1 + (size_t)r * C, st + 2 * B + r, st + 3 * B + r,
                                  x + (size_t)r * C, w, b, 1, C);
        assert_memory_equal(y, y1, n * sizeof *y);
        assert_memory_equal(st, st + 2 * B, 2 * (size_t)B * sizeof *st);
        trc_layernorm_backward(dx, g, g + C, dy, x, w, st, st + B, (size_t)B, C);
        for (int r = 0; r < B; r++)
            trc_layernorm_backward(dx1 + (size_t)r * C, g + 2 * C, g + 3 * C, dy + (size_t)r * C,
                                   x + (size_t)r * C, w, st + r, st + B + r, 1, C);
        assert_memory_equal(dx, dx1, n * sizeof *dx);
        assert_memory_equal(g, g + 2 * C, 2 * (size_t)C * sizeof *g);
        free(x);
        free(dy);
        free(y);
        free(y1);
        free(w);
        free(b);
        free(st);
        free(dx);
        free(dx1);
        free(g);
    }
}

/* The path's RMSNorm and SwiGLU gate (the TRM-style blocks) against their definitions in double;
 * RMSNorm's rows at once and in place give the bits of one row alone, out of place. */
static void test_rmsnorm_and_swiglu(void **state) {
    (void)state;
    trc_rng rng;
    trc_rng_seed(&rng, 47);
    const int Cs[] = {16, 69, 128, 256}, Bs[] = {5, 6, 11};
    for (size_t k = 0; k < 12; k++) {
        int B = Bs[k % 3], C = Cs[k / 3];
        size_t n = (size_t)B * C;
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *y1 = malloc(n * sizeof *y1);
        float *w = malloc((size_t)C * sizeof *w), *rs = malloc(2 * (size_t)B * sizeof *rs);
        float *G = malloc(2 * n * sizeof *G), *sig = malloc(n * sizeof *sig);
        assert_true(x && y && y1 && w && rs && G && sig);
        fill(&rng, x, n);
        fill(&rng, w, (size_t)C);
        fill(&rng, G, 2 * n);
        trc_rmsnorm_forward(y, rs, x, w, (size_t)B, C);
        for (int r = 0; r < B; r++) {
            const float *xr = x + (size_t)r * C;
            trc_rmsnorm_forward(y1 + (size_t)r * C, rs + B + r, xr, w, 1, C);
            double ss = 0;
            for (int i = 0; i < C; i++)
                ss += (double)xr[i] * xr[i];
            double inv = 1.0 / sqrt(ss / C + (double)TRC_RMS_EPS);
            assert_true(fabs(rs[r] - inv) <= 1e-6 * inv);
            for (int i = 0; i < C; i++) {
                double want = xr[i] * inv * w[i];
                assert_true(fabs(y[(size_t)r * C + i] - want) <= 1e-6 * (fabs(want) + 1e-3));
            }
        }
        assert_memory_equal(y, y1, n * sizeof *y);
        assert_memory_equal(rs, rs + B, (size_t)B * sizeof *rs);
        memcpy(y1, x, n * sizeof *x);
        trc_rmsnorm_forward(y1, NULL, y1, w, (size_t)B, C); /* in place */
        assert_memory_equal(y, y1, n * sizeof *y);

        trc_swiglu_forward(y, sig, G, (size_t)B, C);
        trc_swiglu_forward(y1, NULL, G, (size_t)B, C);
        assert_memory_equal(y, y1, n * sizeof *y);
        for (int r = 0; r < B; r++)
            for (int i = 0; i < C; i++) {
                double g = G[(size_t)r * 2 * C + i], q = G[(size_t)r * 2 * C + C + i];
                double s = 1.0 / (1.0 + exp(-g)), want = g * s * q;
                assert_true(fabs(sig[(size_t)r * C + i] - s) <= 1e-6);
                assert_true(fabs(y[(size_t)r * C + i] - want) <= 1e-6 * (fabs(want) + 1e-3));
            }
        free(x);
        free(y);
        free(y1);
        free(w);
        free(rs);
        free(G);
        free(sig);
    }
}

/* The path's dgemm against a plain double loop (fma in k order, as documented: the same bits),
 * A by rows and by columns, accumulating or not, around the tile and panel edges. */
static void test_dgemm(void **state) {
    (void)state;
    trc_rng rng;
    trc_rng_seed(&rng, 57);
    const int shapes[][3] = {{1, 5, 3}, {4, 16, 7}, {6, 21, 64}, {9, 40, 33}, {64, 128, 17}};
    const trc_kernel_ops *k = trc_kernels();
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
        double *A = malloc((size_t)M * K * sizeof *A), *B = malloc((size_t)K * N * sizeof *B);
        double *C = malloc((size_t)M * N * sizeof *C), *C0 = malloc((size_t)M * N * sizeof *C0);
        assert_true(A && B && C && C0);
        for (size_t i = 0; i < (size_t)M * K; i++)
            A[i] = trc_rng_range(&rng, -1.0, 1.0);
        for (size_t i = 0; i < (size_t)K * N; i++)
            B[i] = trc_rng_range(&rng, -1.0, 1.0);
        for (size_t i = 0; i < (size_t)M * N; i++)
            C0[i] = trc_rng_range(&rng, -1.0, 1.0);
        for (int cols = 0; cols < 2; cols++) /* A [M, K] by rows, or [K, M] read by columns */
            for (int beta = 0; beta < 2; beta++) {
                size_t rsa = cols ? 1 : (size_t)K, csa = cols ? (size_t)M : 1;
                memcpy(C, C0, (size_t)M * N * sizeof *C);
                k->dgemm(C, (size_t)N, A, rsa, csa, B, (size_t)N, M, N, K, beta);
                for (int m = 0; m < M; m++)
                    for (int n = 0; n < N; n++) {
                        double want = beta ? C0[(size_t)m * N + n] : 0.0;
                        for (int kk = 0; kk < K; kk++)
                            want = fma(A[m * rsa + kk * csa], B[(size_t)kk * N + n], want);
                        if (C[(size_t)m * N + n] != want)
                            fail_msg("dgemm M=%d N=%d K=%d cols=%d beta=%d [%d,%d]: %.17g, want "
                                     "%.17g",
                                     M, N, K, cols, beta, m, n, C[(size_t)m * N + n], want);
                    }
            }
        free(A);
        free(B);
        free(C);
        free(C0);
    }
}

/* act = DSILU (SiLU's backward in the epilogue) gives the bits of the same product followed by
 * the path's silu_backward into zeros, in every layout, around the tile and panel edges and
 * with K in chunks. */
static void test_gemm_dsilu(void **state) {
    (void)state;
    trc_rng rng;
    trc_rng_seed(&rng, 33);
    const int shapes[][3] = {{1, 16, 7}, {5, 69, 40}, {12, 32, 128}, {13, 256, 33}, {64, 17, 600}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        int M = shapes[si][0], N = shapes[si][1], K = shapes[si][2];
        size_t mn = (size_t)M * N, nk = (size_t)N * K;
        operands o = {.M = M, .N = N, .K = K};
        o.A = malloc((size_t)M * K * sizeof(float));
        o.W = malloc(nk * sizeof(float));
        o.Bp = malloc((trc_linear_packed_size(K, N) + nk) * sizeof(float));
        o.C = malloc(mn * sizeof(float));
        o.pre = malloc(mn * sizeof(float));
        o.sig = malloc(mn * sizeof(float));
        float *plain = malloc(mn * sizeof(float)), *want = malloc(mn * sizeof(float));
        assert_true(o.A && o.W && o.Bp && o.C && o.pre && o.sig && plain && want);
        fill(&rng, o.W, nk);
        for (size_t i = 0; i < mn; i++) { /* a pre-activation and its sigmoid, as SILU keeps */
            o.pre[i] = (float)trc_rng_range(&rng, -6.0, 6.0);
            o.sig[i] = (float)(1.0 / (1.0 + exp(-(double)o.pre[i])));
        }
        for (int lay = 0; lay < LAY_COUNT; lay++) {
            fill(&rng, o.A, (size_t)M * K);
            if (lay == LAY_PACKED)
                trc_linear_pack(o.Bp, o.W, K, N);
            else
                for (int k = 0; k < K; k++)
                    for (int n = 0; n < N; n++)
                        o.Bp[(size_t)k * N + n] = o.W[(size_t)n * K + k];
            run_gemm(&o, lay, 0, M, 0, 0);
            memcpy(plain, o.C, mn * sizeof(float));
            memset(want, 0, mn * sizeof(float));
            trc_silu_backward(want, plain, o.pre, o.sig, mn);
            dsilu_next = 1;
            run_gemm(&o, lay, 0, M, 0, 0);
            dsilu_next = 0;
            for (size_t i = 0; i < mn; i++)
                if (!(o.C[i] == want[i]))
                    fail_msg("%s M=%d N=%d K=%d: dsilu C[%zu] = %.9g, want %.9g", lay_names[lay], M,
                             N, K, i, (double)o.C[i], (double)want[i]);
        }
        free(o.A);
        free(o.W);
        free(o.Bp);
        free(o.C);
        free(o.pre);
        free(o.sig);
        free(plain);
        free(want);
    }
}

/* trc_gemm with a layer norm of each row (ln_w/ln_b/ln_y) gives the bits of the same gemm
 * followed by a separate trc_layernorm_forward: in place, into another buffer, and (packed B)
 * into the residual's buffer; every layout, with and without residual and SiLU, for row counts
 * around the tile sizes and row lengths around the panel width. */
static void test_gemm_layer_norm(void **state) {
    (void)state;
    trc_rng rng;
    trc_rng_seed(&rng, 21);
    const int Ms[] = {1, 5, 12, 13, 25, 130}, Ns[] = {16, 69, 128, 256};
    for (size_t mi = 0; mi < sizeof Ms / sizeof Ms[0]; mi++)
        for (size_t ni = 0; ni < sizeof Ns / sizeof Ns[0]; ni++) {
            int M = Ms[mi], N = Ns[ni], K = M == 13 ? 1100 : 40; /* 1100: K in chunks */
            size_t mn = (size_t)M * N, nk = (size_t)N * K;
            operands o = {.M = M, .N = N, .K = K};
            o.A = malloc((size_t)M * K * sizeof(float));
            o.W = malloc(nk * sizeof(float));
            o.Bp = malloc((trc_linear_packed_size(K, N) + nk) * sizeof(float));
            o.bias = malloc((size_t)N * sizeof(float));
            o.res = malloc(mn * sizeof(float));
            o.C = malloc(mn * sizeof(float));
            o.pre = malloc(mn * sizeof(float));
            o.sig = malloc(mn * sizeof(float));
            float *want = malloc(mn * sizeof(float)), *y = malloc(mn * sizeof(float));
            float *lw = malloc((size_t)N * sizeof(float)), *lb = malloc((size_t)N * sizeof(float));
            float *res0 = malloc(mn * sizeof(float));
            assert_true(o.A && o.W && o.Bp && o.bias && o.res && o.C && o.pre && o.sig && want &&
                        y && lw && lb && res0);
            fill(&rng, o.W, nk);
            fill(&rng, o.bias, (size_t)N);
            fill(&rng, res0, mn);
            fill(&rng, lw, (size_t)N);
            fill(&rng, lb, (size_t)N);
            for (int lay = 0; lay < LAY_COUNT; lay++) {
                fill(&rng, o.A, (size_t)M * K);
                if (lay == LAY_PACKED)
                    trc_linear_pack(o.Bp, o.W, K, N);
                else
                    for (int k = 0; k < K; k++)
                        for (int n = 0; n < N; n++)
                            o.Bp[(size_t)k * N + n] = o.W[(size_t)n * K + k];
                for (int epi = 1; epi < 8; epi += 2) /* bias, then + residual, SiLU */
                    for (int dest = 0; dest < 3; dest++) {
                        if (dest == 2 && (lay != LAY_PACKED || !(epi & 2)))
                            continue; /* into res: packed B only */
                        memcpy(o.res, res0, mn * sizeof(float));
                        run_gemm(&o, lay, 0, M, 0, epi);
                        trc_layernorm_forward(want, NULL, NULL, o.C, lw, lb, (size_t)M, N);
                        float *out = dest == 0 ? o.C : dest == 1 ? y : o.res;
                        /* the same product again, normalised as it goes */
                        ln_w_next = lw;
                        ln_b_next = lb;
                        ln_y_next = out;
                        run_gemm(&o, lay, 0, M, 0, epi);
                        ln_w_next = ln_b_next = NULL;
                        ln_y_next = NULL;
                        if (memcmp(out, want, mn * sizeof(float)) != 0)
                            fail_msg("%s M=%d N=%d epi=%d dest=%d: fused layer norm differs",
                                     lay_names[lay], M, N, epi, dest);
                    }
            }
            free(o.A);
            free(o.W);
            free(o.Bp);
            free(o.bias);
            free(o.res);
            free(o.C);
            free(o.pre);
            free(o.sig);
            free(want);
            free(y);
            free(lw);
            free(lb);
            free(res0);
        }
}

/* trc_first_nonfinite: the first inf or NaN wherever it sits (first element, inside a block of
 * 64, in the ragged tail), n when none; large, tiny and negative finite values are not flagged */
static void test_first_nonfinite(void **state) {
    (void)state;
    const size_t ns[] = {0, 1, 63, 64, 65, 130, 1000};
    const float bad[] = {INFINITY, -INFINITY, NAN};
    float *x = malloc(1000 * sizeof *x);
    assert_non_null(x);
    for (size_t a = 0; a < sizeof ns / sizeof ns[0]; a++) {
        size_t n = ns[a];
        for (size_t i = 0; i < n; i++)
            x[i] = i % 3 == 0 ? 3.4e38f : i % 3 == 1 ? -1e-42f : (float)i;
        assert_int_equal(trc_first_nonfinite(x, n), n);
        for (size_t at = 0; at < n; at += (n > 70 ? 37 : 1))
            for (int b = 0; b < 3; b++) {
                float keep = x[at];
                x[at] = bad[b];
                if (at + 1 < n)
                    x[n - 1] = NAN; /* a later one does not count */
                assert_int_equal(trc_first_nonfinite(x, n), at);
                x[at] = keep;
                if (at + 1 < n)
                    x[n - 1] = (float)(n - 1) * 0.5f;
            }
    }
    free(x);
}

/* n floats ending exactly at an inaccessible page: any read or write past them faults */
typedef struct guarded {
    void *base;
    size_t len;
    float *p;
} guarded;

static guarded guard_alloc(size_t n, trc_rng *rng) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE), bytes = n * sizeof(float);
    size_t data = (bytes + page - 1) / page * page;
    guarded g = {.len = data + page};
    g.base = mmap(NULL, g.len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g.base != MAP_FAILED);
    assert_int_equal(mprotect((char *)g.base + data, page, PROT_NONE), 0);
    g.p = (float *)((char *)g.base + data - bytes);
    fill(rng, g.p, n);
    return g;
}

static void test_gemm_guard_pages(void **state) {
    (void)state;
    trc_rng rng;
    trc_rng_seed(&rng, 9);
    const int shapes[][3] = {{13, 17, 9}, {1, 15, 130}, {7, 33, 1}, {25, 1, 40}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        guarded A = guard_alloc((size_t)M * K, &rng), B = guard_alloc((size_t)N * K, &rng);
        guarded C = guard_alloc((size_t)M * N, &rng), R = guard_alloc((size_t)M * N, &rng);
        guarded bias = guard_alloc((size_t)N, &rng), P = guard_alloc((size_t)M * N, &rng);
        guarded S = guard_alloc((size_t)M * N, &rng);
        guarded Bp = guard_alloc(trc_linear_packed_size(K, N), &rng);
        trc_linear_pack(Bp.p, B.p, K, N);
        for (int lay = 0; lay < 3; lay++) {
            trc_gemm_args g = {.M = M,
                               .N = N,
                               .K = K,
                               .A = A.p,
                               .rsa = (size_t)K,
                               .csa = 1,
                               .B = B.p,
                               .C = C.p,
                               .ldc = (size_t)N,
                               .bias = bias.p,
                               .res = R.p,
                               .ldr = (size_t)N,
                               .act = TRC_ACT_SILU,
                               .pre = P.p,
                               .sig = S.p};
            if (lay == 0) {
                g.btrans = 1;
                g.ldb = (size_t)K;
            } else if (lay == 1) { /* B as a row-major [K, N] */
                g.ldb = (size_t)N;
                g.pstride = TRC_PANEL;
            } else {
                g.B = Bp.p;
                g.ldb = TRC_PANEL;
                g.pstride = (size_t)K * TRC_PANEL;
            }
            trc_gemm(&g);
            g.bias = NULL;
            g.beta = 1;
            trc_gemm(&g);
            /* A by columns: A(m, k) = A[k M + m], the last element last */
            g.A = A.p;
            g.rsa = 1;
            g.csa = (size_t)M;
            trc_gemm(&g);
        }
        guarded all[] = {A, B, C, R, bias, P, S, Bp};
        for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
            munmap(all[i].base, all[i].len);
    }
}

/* the polynomial exp and SiLU of the active path against double precision */
static void test_exp_and_silu_error(void **state) {
    (void)state;
    const trc_kernel_ops *k = trc_kernels();
    enum { N = 175001 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y), *s = malloc(N * sizeof *s);
    assert_true(x && y && s);
    for (int i = 0; i < N; i++)
        x[i] = -87.0f + 175.0f * (float)i / (N - 1);
    k->exp(y, x, N);
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        double want = exp((double)x[i]), e = fabs(y[i] - want) / want;
        worst = e > worst ? e : worst;
    }
    printf("  [%s] exp: max relative error %.3g on [-87, 88]\n", trc_isa_name(k->isa), worst);
    assert_true(worst < 2.5e-7);
    for (int i = 0; i < N; i++)
        x[i] = -20.0f + 40.0f * (float)i / (N - 1);
    k->silu_forward(y, s, x, N);
    double wsilu = 0.0;
    for (int i = 0; i < N; i++) {
        double want = silu_d(x[i]), e = fabs(y[i] - want) / (fabs(want) + 1e-30);
        if (fabs(x[i]) > 1e-3)
            wsilu = e > wsilu ? e : wsilu;
    }
    printf("  [%s] silu: max relative error %.3g on [-20, 20]\n", trc_isa_name(k->isa), wsilu);
    assert_true(wsilu < 1e-6);
    /* NaN passes through; large arguments stay finite */
    x[0] = NAN;
    x[1] = 200.0f;
    x[2] = -200.0f;
    k->exp(y, x, 3);
    assert_true(isnan(y[0]) && isfinite(y[1]) && y[2] >= 0.0f && y[2] < 1e-37f);
    free(x);
    free(y);
    free(s);
}

/* TRC_ISA in a fresh process (the choice is made once per process): this binary run again
 * (argv[0]: under valgrind /proc/self/exe is valgrind) with --isa-child prints the path it
 * chose, the best it could, and why. The child runs natively (valgrind does not follow exec),
 * so its best is its own. */
static const char *self_path;

static int child_isa(const char *env, int *best, char *reason, size_t n) {
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 1);
        setenv("TRC_ISA", env, 1);
        execl(self_path, self_path, "--isa-child", (char *)NULL);
        _exit(127);
    }
    close(fd[1]);
    char buf[200] = {0};
    ssize_t r = read(fd[0], buf, sizeof buf - 1);
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    assert_true(r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    int isa = -1, off = 0;
    assert_int_equal(sscanf(buf, "%d %d %n", &isa, best, &off), 2);
    snprintf(reason, n, "%s", buf + off);
    return isa;
}

/* The double-sum Linear over widened, packed weights (two-level plans) against the plain double
 * Linear: both one double sum rounded once, so within one float rounding of each other; and the
 * same bits on every path (multiplies and adds are never contracted): the first path run records
 * its results, the others must match them. */
static void test_dlinear(void **state) {
    (void)state;
    /* 4-row tiles with the rows widened once (9 x 256, 16 x 512), converted at every use
     * (8 x 600), and the rows past the last full tile */
    static const int shapes[][3] = {{1, 5, 256},  {7, 143, 15},  {9, 256, 128},
                                    {4, 256, 15}, {16, 512, 20}, {8, 600, 17}};
    static float first[6][9 * 256];
    static int have_first;
    trc_rng rng;
    trc_rng_seed(&rng, 11);
    for (size_t c = 0; c < sizeof shapes / sizeof shapes[0]; c++) {
        int B = shapes[c][0], in = shapes[c][1], out = shapes[c][2];
        float *x = malloc((size_t)B * in * sizeof *x), *W = malloc((size_t)out * in * sizeof *W);
        float *b = malloc((size_t)out * sizeof *b), *y = malloc((size_t)B * out * sizeof *y);
        float *yr = malloc((size_t)B * out * sizeof *yr);
        double *Wd = malloc(trc_linear_dpacked_size(in, out) * sizeof *Wd);
        assert_true(x && W && b && y && yr && Wd);
        for (int i = 0; i < B * in; i++)
            x[i] = (float)trc_rng_range(&rng, -2, 2);
        for (int i = 0; i < out * in; i++)
            W[i] = (float)trc_rng_range(&rng, -40, 40);
        for (int i = 0; i < out; i++)
            b[i] = (float)trc_rng_range(&rng, -1, 1);
        trc_linear_dpack(Wd, W, in, out);
        trc_linear_dpacked_forward(y, x, Wd, b, (size_t)B, in, out);
        trc_linear_precise_forward(yr, x, W, b, (size_t)B, in, out);
        for (int i = 0; i < B * out; i++)
            if (!(fabsf(y[i] - yr[i]) <= 1.2e-7f * fabsf(yr[i])))
                fail_msg("dlinear %dx%d->%d [%d]: %.9g, double Linear %.9g", B, in, out, i,
                         (double)y[i], (double)yr[i]);
        if (have_first)
            assert_memory_equal(y, first[c], (size_t)B * out * sizeof *y);
        else
            memcpy(first[c], y, (size_t)B * out * sizeof *y);
        free(x), free(W), free(b), free(y), free(yr), free(Wd);
    }
    have_first = 1;
}

static void test_isa_choice(void **state) {
    (void)state;
    char reason[200];
    int best = -1;
    int got = child_isa("", &best, reason, sizeof reason);
    assert_int_equal(got, best);
    assert_string_equal(reason, "best supported");
    for (int i = 0; i <= best; i++) {
        assert_int_equal(child_isa(trc_isa_name((trc_isa)i), &best, reason, sizeof reason), i);
        assert_non_null(strstr(reason, "TRC_ISA="));
    }
    got = child_isa("avx1024", &best, reason, sizeof reason);
    assert_int_equal(got, best);
    assert_non_null(strstr(reason, "not avx512, avx2 or generic"));
    if (best < TRC_ISA_AVX512) { /* above what the CPU runs: the best it runs, and why */
        int want = best;
        got = child_isa(trc_isa_name((trc_isa)(best + 1)), &best, reason, sizeof reason);
        assert_int_equal(got, want);
        assert_non_null(strstr(reason, "this CPU runs at most"));
    }
    assert_true(trc_isa_supported(TRC_ISA_GENERIC) && trc_isa_supported(trc_isa_best()));
    trc_isa isa;
    assert_int_equal(trc_isa_parse("avx2", &isa), TRC_OK);
    assert_int_equal(isa, TRC_ISA_AVX2);
    assert_int_equal(trc_isa_parse("sse", &isa), TRC_EINVAL);
    assert_int_equal(trc_isa_set(TRC_ISA_COUNT), TRC_EINVAL);
    if (trc_isa_best() < TRC_ISA_AVX512)
        assert_int_equal(trc_isa_set(TRC_ISA_AVX512), TRC_EINVAL);
    assert_string_equal(trc_isa_name(TRC_ISA_AVX512), "avx512");
    assert_string_equal(trc_isa_name(TRC_ISA_COUNT), "?");
    assert_int_equal(trc_kernels_for(TRC_ISA_GENERIC)->isa, TRC_ISA_GENERIC);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--isa-child") == 0) {
        printf("%d %d %s", (int)trc_isa_active(), (int)trc_isa_best(), trc_isa_reason());
        return 0;
    }
    self_path = argv[0];
    const struct CMUnitTest paths[] = {
        cmocka_unit_test(test_gemm_layouts),
        cmocka_unit_test(test_gemm_layer_norm),
        cmocka_unit_test(test_gemm_dsilu),
        cmocka_unit_test(test_linear_pack),
        cmocka_unit_test(test_layernorm_backward_set),
        cmocka_unit_test(test_layernorm_rows_at_once),
        cmocka_unit_test(test_rmsnorm_and_swiglu),
        cmocka_unit_test(test_dgemm),
        cmocka_unit_test(test_gemm_guard_pages),
        cmocka_unit_test(test_exp_and_silu_error),
        cmocka_unit_test(test_dlinear),
    };
    const struct CMUnitTest once[] = {cmocka_unit_test(test_isa_choice),
                                      cmocka_unit_test(test_first_nonfinite)};
    return RUN_EVERY_ISA(paths, NULL, NULL) + cmocka_run_group_tests(once, NULL, NULL);
}
