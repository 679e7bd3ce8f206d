/* The AVX-512 path (trc/cpu.h): 16-lane element-wise layers and GEMM tiles of up to 6 rows x 4
 * panels of one zmm each (24 accumulators of the 32 registers), ragged panels through masked
 * loads and stores. Every function carries the AVX-512 target attribute and is only called
 * after cpu.c has found the CPU runs it. Left out of the sanitizers: their checks in the -O1
 * sanitizer build keep the accumulators out of registers (20-40x slower); the memory accesses
 * are checked by test_kernels' guard-page and sentinel tests, and the same sums run
 * instrumented on the generic path. (valgrind does not emulate AVX-512: under it cpu.c sees an
 * AVX2 CPU.) */
#include "kernels.h"

#ifdef TRC_HAVE_X86_KERNELS
#include <immintrin.h>

#if defined(__clang__) || __GNUC__ >= 8
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))
#else
#define NO_SANITIZE
#endif
#define KFN __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma"))) NO_SANITIZE
#define VL 16
#define SFX(name) name##_avx512
/* the sigmoid's primitives (eltwise_impl.h): fused multiply-adds, and min/max for the clamp
 * (the NaN operand second, so NaN passes through) */
#define VFMA(a, b, c) ((vf)_mm512_fmadd_ps((__m512)(a), (__m512)(b), (__m512)(c)))
#define VCLAMP(x, lo, hi)                                                                          \
    ((vf)_mm512_min_ps((__m512)(hi), _mm512_max_ps((__m512)(lo), (__m512)(x))))
/* r = 1/d: the 14-bit estimate and one Newton step (relative error ~2^-23, d >= 1 here) */
#define VRECIP(r, d)                                                                               \
    do {                                                                                           \
        __m512 d_ = (__m512)(d), r_ = _mm512_rcp14_ps(d_);                                         \
        r_ = _mm512_fmadd_ps(r_, _mm512_fnmadd_ps(d_, r_, _mm512_set1_ps(1.0f)), r_);              \
        (r) = (vf)r_;                                                                              \
    } while (0)
#include "eltwise_impl.h"

typedef __m512 pv;
static inline KFN pv pv_zero(void) {
    return _mm512_setzero_ps();
}
static inline KFN pv pv_load(const float *p) {
    return _mm512_loadu_ps(p);
}
static inline KFN __mmask16 lane_mask(int lanes) {
    return (__mmask16)((1u << lanes) - 1u);
}
static inline KFN pv pv_loadm(const float *p, int lanes) {
    return lanes == TRC_PANEL ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(lane_mask(lanes), p);
}
static inline KFN pv pv_bcast(const float *p) {
    return _mm512_set1_ps(*p);
}
static inline KFN pv pv_fma(pv a, pv b, pv c) {
    return _mm512_fmadd_ps(a, b, c);
}
static inline KFN pv pv_add(pv a, pv b) {
    return _mm512_add_ps(a, b);
}
static inline KFN pv pv_mul(pv a, pv b) {
    return _mm512_mul_ps(a, b);
}
static inline KFN pv pv_sigmoid(pv v) {
    vf x = (vf)v, s;
    vsigmoid(&s, &x);
    return (pv)s;
}
static inline KFN void pv_storem(float *p, pv v, int lanes) {
    if (lanes == TRC_PANEL)
        _mm512_storeu_ps(p, v);
    else
        _mm512_mask_storeu_ps(p, lane_mask(lanes), v);
}

/* 6 rows x 4 panels: 10 loads per 24 FMAs (12 x 2: 14). Measured on the batch-1000 plan,
 * alternating A/B against 12 x 2 in one process: x1.035-1.086 (8 x 3: x1.02, 4 x 4: x0.95);
 * training at batch 64 unchanged. Products of 7 or 8 rows are one tile of 3 panels (one pass
 * over B instead of two tiles of 3-4 rows): the plan at batches of 7-8 rows x1.07-1.09, of
 * 9-16 rows in 9-12-row tiles of 2 panels x0.95-1.03, so those keep 6-row tiles. */
#define TILE_ROWS 8
#define TILE_PMAX 8
#define PV_PIN(v) __asm__("" : "+v"(v))
#include "tile_impl.h"

/* panels per tile of R rows: about 8-24 accumulators (8 independent FMA chains at least) */
static const int pmax[TILE_ROWS + 1] = {0, 8, 8, 4, 4, 4, 4, 3, 3};

TILE_FN(1, 1)
TILE_FN(1, 2)
TILE_FN(1, 3)
TILE_FN(1, 4)
TILE_FN(1, 5)
TILE_FN(1, 6)
TILE_FN(1, 7)
TILE_FN(1, 8)
TILE_FN(2, 1)
TILE_FN(2, 2)
TILE_FN(2, 3)
TILE_FN(2, 4)
TILE_FN(2, 5)
TILE_FN(2, 6)
TILE_FN(2, 7)
TILE_FN(2, 8)
TILE_FN(3, 1)
TILE_FN(3, 2)
TILE_FN(3, 3)
TILE_FN(3, 4)
TILE_FN(4, 1)
TILE_FN(4, 2)
TILE_FN(4, 3)
TILE_FN(4, 4)
TILE_FN(5, 1)
TILE_FN(5, 2)
TILE_FN(5, 3)
TILE_FN(5, 4)
TILE_FN(6, 1)
TILE_FN(6, 2)
TILE_FN(6, 3)
TILE_FN(6, 4)
TILE_FN(7, 1)
TILE_FN(7, 2)
TILE_FN(7, 3)
TILE_FN(8, 1)
TILE_FN(8, 2)
TILE_FN(8, 3)

typedef void tile_fn(const trc_tile_args *);
static tile_fn *const tiles[TILE_ROWS + 1][TILE_PMAX + 1] = {
    [1] = {NULL, tile_1_1, tile_1_2, tile_1_3, tile_1_4, tile_1_5, tile_1_6, tile_1_7, tile_1_8},
    [2] = {NULL, tile_2_1, tile_2_2, tile_2_3, tile_2_4, tile_2_5, tile_2_6, tile_2_7, tile_2_8},
    [3] = {NULL, tile_3_1, tile_3_2, tile_3_3, tile_3_4},
    [4] = {NULL, tile_4_1, tile_4_2, tile_4_3, tile_4_4},
    [5] = {NULL, tile_5_1, tile_5_2, tile_5_3, tile_5_4},
    [6] = {NULL, tile_6_1, tile_6_2, tile_6_3, tile_6_4},
    [7] = {NULL, tile_7_1, tile_7_2, tile_7_3},
    [8] = {NULL, tile_8_1, tile_8_2, tile_8_3},
};

/* bf16 weights (kernels.h: trc_gemm_bf16), AVX512_BF16's vdpbf16ps: one row at a time (the
 * single-sample path it is for), up to 8 panels (128 outputs) of accumulators per pass over the
 * row. vdpbf16ps adds a lane's two products (each exact in float) one after the other, each
 * sum rounded to nearest even, denormals flushed. */
#define KFN_BF16                                                                                   \
    __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,avx2,fma,avx512bf16"))) NO_SANITIZE

/* xp: the row's bf16 pairs (x[2i] low, x[2i+1] high), K2 of them; Wb: packed panels */
static ALWAYS_INLINE KFN_BF16 void row_bf16_body(const uint32_t *xp, int K2, const uint16_t *Wb,
                                                 size_t pstride, float *y, const float *bias,
                                                 const float *res, int silu, int lanes,
                                                 const int P) {
    __m512 acc[8];
#pragma GCC unroll 8
    for (int q = 0; q < P; q++)
        acc[q] = bias ? pv_loadm(bias + q * TRC_PANEL, q == P - 1 ? lanes : TRC_PANEL)
                      : _mm512_setzero_ps();
    for (int k = 0; k < K2; k++) {
        __m512bh a = (__m512bh)_mm512_set1_epi32((int)xp[k]);
#pragma GCC unroll 8
        for (int q = 0; q < P; q++)
            acc[q] = _mm512_dpbf16_ps(
                acc[q], a,
                (__m512bh)_mm512_load_si512((const void *)(Wb + q * pstride + (size_t)k * 32)));
    }
#pragma GCC unroll 8
    for (int q = 0; q < P; q++) {
        int lq = q == P - 1 ? lanes : TRC_PANEL;
        pv v = acc[q];
        if (res)
            v = pv_add(v, pv_loadm(res + q * TRC_PANEL, lq));
        if (silu)
            v = pv_mul(v, pv_sigmoid(v));
        pv_storem(y + q * TRC_PANEL, v, lq);
    }
}

#define ROW_BF16_FN(P)                                                                             \
    static KFN_BF16 void row_bf16_##P(const uint32_t *xp, int K2, const uint16_t *Wb,              \
                                      size_t pstride, float *y, const float *bias,                 \
                                      const float *res, int silu, int lanes) {                     \
        row_bf16_body(xp, K2, Wb, pstride, y, bias, res, silu, lanes, P);                          \
    }
ROW_BF16_FN(1)
ROW_BF16_FN(2)
ROW_BF16_FN(3)
ROW_BF16_FN(4)
ROW_BF16_FN(5)
ROW_BF16_FN(6)
ROW_BF16_FN(7)
ROW_BF16_FN(8)
typedef void row_bf16_fn(const uint32_t *, int, const uint16_t *, size_t, float *, const float *,
                         const float *, int, int);
static row_bf16_fn *const rows_bf16[9] = {NULL,       row_bf16_1, row_bf16_2,
                                          row_bf16_3, row_bf16_4, row_bf16_5,
                                          row_bf16_6, row_bf16_7, row_bf16_8};

/* x: [K] floats -> bf16 pairs (rounded to nearest even; a zero pads an odd K) */
static KFN_BF16 void x_to_bf16(uint32_t *xp, const float *x, int K) {
    uint16_t *h = (uint16_t *)(void *)xp;
    for (int k = 0; k < K; k += 16) {
        int n = K - k < 16 ? K - k : 16;
        __m256bh b = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(lane_mask(n), x + k));
        _mm256_mask_storeu_epi16(h + k, (__mmask16)((1u << n) - 1u), (__m256i)b);
    }
    if (K % 2)
        h[K] = 0;
}

/* One row: y[N] = bf16(x[K]) Wb + bias (+ res) (silu), panels 8 at a time. */
static void row_bf16(const float *x, int K, const uint16_t *Wb, int N, float *y, const float *bias,
                     const float *res, int silu) {
    enum { KMAX = 1024 }; /* floats of x converted at a time (pairs: KMAX / 2) */
    uint32_t xp[KMAX / 2] __attribute__((aligned(64)));
    int np = (N + TRC_PANEL - 1) / TRC_PANEL, K2 = (K + 1) / 2;
    size_t pstride = (size_t)K2 * 32;
    if (K > KMAX) { /* rare (no model has rows this long): K in pieces, partial sums via y */
        for (int k0 = 0; k0 < K; k0 += KMAX) {
            int kc = K - k0 < KMAX ? K - k0 : KMAX;
            x_to_bf16(xp, x + k0, kc);
            for (int p0 = 0; p0 < np; p0 += 8) {
                int P = np - p0 < 8 ? np - p0 : 8, last = p0 + P == np;
                int lanes = last ? N - (np - 1) * TRC_PANEL : TRC_PANEL;
                rows_bf16[P](
                    (const uint32_t *)xp, (kc + 1) / 2, Wb + (size_t)p0 * pstride + (size_t)k0 * 16,
                    pstride, y + p0 * TRC_PANEL,
                    k0     ? y + p0 * TRC_PANEL
                    : bias ? bias + p0 * TRC_PANEL
                           : NULL,
                    k0 + kc == K && res ? res + p0 * TRC_PANEL : NULL, k0 + kc == K && silu, lanes);
            }
        }
        return;
    }
    x_to_bf16(xp, x, K);
    for (int p0 = 0; p0 < np; p0 += 8) {
        int P = np - p0 < 8 ? np - p0 : 8;
        int lanes = p0 + P == np ? N - (np - 1) * TRC_PANEL : TRC_PANEL;
        rows_bf16[P](xp, K2, Wb + (size_t)p0 * pstride, pstride, y + p0 * TRC_PANEL,
                     bias ? bias + p0 * TRC_PANEL : NULL, res ? res + p0 * TRC_PANEL : NULL, silu,
                     lanes);
    }
}

/* 16x16 transpose: rows w[j in .. j in + 15] (j < 16) -> dst[16 i + j] (kernels.h: pack16):
 * pairs, then quads, then 128-bit lanes twice, 64 shuffles for 256 floats */
static KFN void pack16(float *dst, const float *w, size_t in) {
    __m512 r[16], t[16];
    for (int j = 0; j < 16; j++)
        r[j] = _mm512_loadu_ps(w + (size_t)j * in);
    for (int j = 0; j < 16; j += 2) {
        t[j] = _mm512_unpacklo_ps(r[j], r[j + 1]);
        t[j + 1] = _mm512_unpackhi_ps(r[j], r[j + 1]);
    }
    for (int j = 0; j < 16; j += 4) {
        r[j] = (__m512)_mm512_unpacklo_pd((__m512d)t[j], (__m512d)t[j + 2]);
        r[j + 1] = (__m512)_mm512_unpackhi_pd((__m512d)t[j], (__m512d)t[j + 2]);
        r[j + 2] = (__m512)_mm512_unpacklo_pd((__m512d)t[j + 1], (__m512d)t[j + 3]);
        r[j + 3] = (__m512)_mm512_unpackhi_pd((__m512d)t[j + 1], (__m512d)t[j + 3]);
    }
    /* r[4b + c] holds, in each 128-bit lane L, column 4L + c of rows 4b..4b+3 */
    for (int c = 0; c < 4; c++) {
        /* lanes 0,1 of rows-blocks 0,1 and 2,3 -> then gather lane L across the 4 blocks */
        __m512 a = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x88);      /* b0L0 b0L2 b1L0 b1L2 */
        __m512 b = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xdd);      /* b0L1 b0L3 b1L1 b1L3 */
        __m512 e = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x88); /* b2L0 b2L2 b3L0 b3L2 */
        __m512 f = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xdd); /* b2L1 b2L3 b3L1 b3L3 */
        t[c] = _mm512_shuffle_f32x4(a, e, 0x88);                    /* b0L0 b1L0 b2L0 b3L0 */
        t[8 + c] = _mm512_shuffle_f32x4(a, e, 0xdd);                /* b0L2 b1L2 b2L2 b3L2 */
        t[4 + c] = _mm512_shuffle_f32x4(b, f, 0x88);                /* b0L1 b1L1 b2L1 b3L1 */
        t[12 + c] = _mm512_shuffle_f32x4(b, f, 0xdd);               /* b0L3 b1L3 b2L3 b3L3 */
    }
    for (int i = 0; i < 16; i++)
        _mm512_storeu_ps(dst + 16 * i, t[i]);
}

static int tile_panels(int R) {
    return pmax[R];
}

static void tile(const trc_tile_args *t, int R, int P) {
    tiles[R][P](t);
}

const trc_kernel_ops trc_kernels_avx512 = {
    .isa = TRC_ISA_AVX512,
    .tile_rows = 6,
    .one_pass_rows = 8,
    .tile_panels = tile_panels,
    .tile = tile,
    .exp = exp_n_avx512,
    .layernorm_forward = layernorm_forward_avx512,
    .layernorm_backward = layernorm_backward_avx512,
    .layernorm_backward_set = layernorm_backward_set_avx512,
    .rmsnorm_forward = rmsnorm_forward_avx512,
    .silu_forward = silu_forward_avx512,
    .silu_backward = silu_backward_avx512,
    .swiglu_forward = swiglu_forward_avx512,
    .dsilu_inplace = dsilu_inplace_avx512,
    .residual_forward = residual_forward_avx512,
    .residual_backward = residual_backward_avx512,
    .dlinear_forward = dlinear_forward_avx512,
    .dgemm = dgemm_avx512,
    .row_bf16 = row_bf16,
    .pack16 = pack16,
};
#endif
