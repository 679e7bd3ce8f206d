/* Linear layers for small batches (see linear_packed.h). OpenBLAS's sgemm repacks the weight
 * matrix on every call, which costs as much as the product itself when the batch has only a few
 * rows (the server's case). Here the weights are packed once, into panels of 16 outputs stored
 * input by input, and a register-blocked kernel streams each panel once per block of up to 6
 * rows: 12 AVX2 accumulators (6 rows x 16 outputs), or fewer rows and more panels at a time so
 * that even one row keeps 8 independent FMA chains going. The x86-64-v3 path (AVX2 + FMA) is
 * chosen at run time; elsewhere a plain C path computes the same sums in the same order (without
 * fused multiply-adds, so its last bits may differ from the AVX2 path's). */
#include <string.h>

#include "linear_packed.h"

#define ROWS 6 /* rows of a full tile */

size_t trc_linear_packed_size(int in, int out) {
    return (size_t)((out + TRC_PANEL - 1) / TRC_PANEL) * (size_t)in * TRC_PANEL;
}

void trc_linear_pack(float *Wp, const float *W, int in, int out) {
    int np = (out + TRC_PANEL - 1) / TRC_PANEL;
    for (int p = 0; p < np; p++) {
        float *panel = Wp + (size_t)p * (size_t)in * TRC_PANEL;
        for (int i = 0; i < in; i++)
            for (int j = 0; j < TRC_PANEL; j++) {
                int o = p * TRC_PANEL + j;
                panel[(size_t)i * TRC_PANEL + j] = o < out ? W[(size_t)o * (size_t)in + i] : 0.0f;
            }
    }
}

/* The 16 biases of panel p (zero past out, or all zero without b). */
static const float *panel_bias(const float *b, int p, int out, float *tmp) {
    int o0 = p * TRC_PANEL;
    if (b && o0 + TRC_PANEL <= out)
        return b + o0;
    memset(tmp, 0, TRC_PANEL * sizeof *tmp);
    if (b)
        memcpy(tmp, b + o0, (size_t)(out - o0) * sizeof *tmp);
    return tmp;
}

/* Copies the valid outputs of a finished panel row from tmp to y. */
static void panel_store_tail(float *y, const float *tmp, int p, int out) {
    memcpy(y, tmp, (size_t)(out - p * TRC_PANEL) * sizeof *y);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX2 1

/* The AVX2 kernel is left out of the sanitizers: in the sanitizer build (-O1) their checks keep
 * its accumulators out of registers, 20-40x slower, enough to push the integration suite's
 * largest requests past their time limits. Its memory accesses are still checked: by valgrind
 * (`make valgrind` runs test_infer_plan), by that test's bounds sentinels, and through the
 * portable path, which the sanitizers do instrument, computing the same sums. */
#if defined(__clang__) || __GNUC__ >= 8
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))
#else
#define NO_SANITIZE
#endif
#define AVX2 __attribute__((target("avx2,fma"))) NO_SANITIZE

/* y rows [0, R) x panels [p0, p0+P): x: [R, in] (row stride in), y: row stride out. */
static inline __attribute__((always_inline)) AVX2 void tile_avx2(float *y, const float *x,
                                                                 const float *Wp, const float *b,
                                                                 int in, int out, int p0, int R,
                                                                 int P) {
    __m256 acc[ROWS][4][2];
    float bt[4][TRC_PANEL];
#pragma GCC unroll 4
    for (int q = 0; q < P; q++) {
        const float *bq = panel_bias(b, p0 + q, out, bt[q]);
        __m256 b0 = _mm256_loadu_ps(bq), b1 = _mm256_loadu_ps(bq + 8);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            acc[r][q][0] = b0;
            acc[r][q][1] = b1;
        }
    }
    const size_t stride = (size_t)in * TRC_PANEL;
    const float *w = Wp + (size_t)p0 * stride;
    for (int i = 0; i < in; i++, w += TRC_PANEL) {
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            __m256 xv = _mm256_broadcast_ss(x + (size_t)r * (size_t)in + i);
#pragma GCC unroll 4
            for (int q = 0; q < P; q++) {
                acc[r][q][0] = _mm256_fmadd_ps(xv, _mm256_loadu_ps(w + q * stride), acc[r][q][0]);
                acc[r][q][1] =
                    _mm256_fmadd_ps(xv, _mm256_loadu_ps(w + q * stride + 8), acc[r][q][1]);
            }
        }
    }
#pragma GCC unroll 4
    for (int q = 0; q < P; q++) {
        int p = p0 + q;
        int full = (p + 1) * TRC_PANEL <= out;
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            float *yr = y + (size_t)r * (size_t)out + (size_t)p * TRC_PANEL;
            float *dst = full ? yr : bt[q];
            _mm256_storeu_ps(dst, acc[r][q][0]);
            _mm256_storeu_ps(dst + 8, acc[r][q][1]);
            if (!full)
                panel_store_tail(yr, bt[q], p, out);
        }
    }
}

/* One function per tile shape used, so that each keeps its accumulators in registers. */
#define TILE_FN(r, p)                                                                              \
    static AVX2 void tile_##r##_##p(float *y, const float *x, const float *Wp, const float *b,     \
                                    int in, int out, int p0) {                                     \
        tile_avx2(y, x, Wp, b, in, out, p0, r, p);                                                 \
    }
TILE_FN(6, 1)
TILE_FN(5, 1)
TILE_FN(4, 1)
TILE_FN(3, 1)
TILE_FN(3, 2)
TILE_FN(2, 1)
TILE_FN(2, 2)
TILE_FN(2, 3)
TILE_FN(1, 1)
TILE_FN(1, 2)
TILE_FN(1, 3)
TILE_FN(1, 4)
#undef TILE_FN

typedef void tile_fn(float *, const float *, const float *, const float *, int, int, int);
/* tiles[R][P]: R rows, P panels (P at most 6 / R, 4 for one row) */
static tile_fn *const tiles[ROWS + 1][5] = {
    [1] = {NULL, tile_1_1, tile_1_2, tile_1_3, tile_1_4},
    [2] = {NULL, tile_2_1, tile_2_2, tile_2_3},
    [3] = {NULL, tile_3_1, tile_3_2},
    [4] = {NULL, tile_4_1},
    [5] = {NULL, tile_5_1},
    [6] = {NULL, tile_6_1},
};

static AVX2 void forward_avx2(float *y, const float *x, const float *Wp, const float *b, size_t B,
                              int in, int out) {
    int np = (out + TRC_PANEL - 1) / TRC_PANEL;
    size_t full = B / ROWS * ROWS;
    /* panel outer: a panel stays in L1 while every full tile of rows uses it */
    for (int p = 0; p < np; p++)
        for (size_t r0 = 0; r0 < full; r0 += ROWS)
            tiles[ROWS][1](y + r0 * (size_t)out, x + r0 * (size_t)in, Wp, b, in, out, p);
    int R = (int)(B - full);
    if (R == 0)
        return;
    int P = R >= 4 ? 1 : R == 3 ? 2 : R == 2 ? 3 : 4; /* about 8-12 accumulators */
    for (int p0 = 0; p0 < np; p0 += P)
        tiles[R][np - p0 < P ? np - p0 : P](y + full * (size_t)out, x + full * (size_t)in, Wp, b,
                                            in, out, p0);
}
#endif

void trc_linear_packed_forward_c(float *y, const float *x, const float *Wp, const float *b,
                                 size_t B, int in, int out) {
    int np = (out + TRC_PANEL - 1) / TRC_PANEL;
    float acc[TRC_PANEL], bt[TRC_PANEL];
    for (size_t r = 0; r < B; r++) {
        const float *xr = x + r * (size_t)in;
        for (int p = 0; p < np; p++) {
            memcpy(acc, panel_bias(b, p, out, bt), sizeof acc);
            const float *w = Wp + (size_t)p * (size_t)in * TRC_PANEL;
            for (int i = 0; i < in; i++, w += TRC_PANEL)
                for (int j = 0; j < TRC_PANEL; j++)
                    acc[j] += xr[i] * w[j];
            float *yr = y + r * (size_t)out + (size_t)p * TRC_PANEL;
            if ((p + 1) * TRC_PANEL <= out)
                memcpy(yr, acc, sizeof acc);
            else
                panel_store_tail(yr, acc, p, out);
        }
    }
}

void trc_linear_packed_forward(float *y, const float *x, const float *Wp, const float *b, size_t B,
                               int in, int out) {
#ifdef HAVE_AVX2
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        forward_avx2(y, x, Wp, b, B, in, out);
        return;
    }
#endif
    trc_linear_packed_forward_c(y, x, Wp, b, B, in, out);
}
