/* The AVX2 + FMA path (trc/cpu.h): 8-lane element-wise layers and GEMM tiles of up to 6 rows x
 * 1 panel of two ymm (12 accumulators of the 16 registers); fewer rows take more panels at a
 * time, so that one row still keeps 8 independent FMA chains. Ragged panels through
 * vmaskmovps. Left out of the sanitizers for the reason kernels_avx512.c gives; valgrind runs
 * this path (it emulates AVX2), and test_kernels' guard-page and sentinel tests check it. */
#include "kernels.h"

#ifdef TRC_HAVE_X86_KERNELS
#include <immintrin.h>

#if defined(__clang__) || __GNUC__ >= 8
#define NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))
#else
#define NO_SANITIZE
#endif
#define KFN __attribute__((target("avx2,fma"))) NO_SANITIZE
#define VL 8
#define SFX(name) name##_avx2
/* the sigmoid's primitives (eltwise_impl.h): fused multiply-adds, and min/max for the clamp
 * (the NaN operand second, so NaN passes through) */
#define VFMA(a, b, c) ((vf)_mm256_fmadd_ps((__m256)(a), (__m256)(b), (__m256)(c)))
#define VCLAMP(x, lo, hi)                                                                          \
    ((vf)_mm256_min_ps((__m256)(hi), _mm256_max_ps((__m256)(lo), (__m256)(x))))
/* r = 1/d: the 12-bit estimate and one Newton step (relative error ~2^-22, d >= 1 here) */
#define VRECIP(r, d)                                                                               \
    do {                                                                                           \
        __m256 d_ = (__m256)(d), r_ = _mm256_rcp_ps(d_);                                           \
        r_ = _mm256_fmadd_ps(r_, _mm256_fnmadd_ps(d_, r_, _mm256_set1_ps(1.0f)), r_);              \
        (r) = (vf)r_;                                                                              \
    } while (0)
#include "eltwise_impl.h"

typedef struct pv {
    __m256 lo, hi;
} pv;
static inline KFN pv pv_zero(void) {
    return (pv){_mm256_setzero_ps(), _mm256_setzero_ps()};
}
static inline KFN pv pv_load(const float *p) {
    return (pv){_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)};
}
/* lanes [0, n) of 8 set (n may be <= 0 or >= 8) */
static inline KFN __m256i lane_mask(int n) {
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}
static inline KFN pv pv_loadm(const float *p, int lanes) {
    if (lanes == TRC_PANEL)
        return pv_load(p);
    return (pv){_mm256_maskload_ps(p, lane_mask(lanes)),
                _mm256_maskload_ps(p + 8, lane_mask(lanes - 8))};
}
static inline KFN pv pv_bcast(const float *p) {
    __m256 a = _mm256_broadcast_ss(p);
    return (pv){a, a};
}
static inline KFN pv pv_fma(pv a, pv b, pv c) {
    return (pv){_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}
static inline KFN pv pv_add(pv a, pv b) {
    return (pv){_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)};
}
static inline KFN pv pv_mul(pv a, pv b) {
    return (pv){_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)};
}
static inline KFN pv pv_sigmoid(pv v) {
    vf a = (vf)v.lo, b = (vf)v.hi, sa, sb;
    vsigmoid(&sa, &a);
    vsigmoid(&sb, &b);
    return (pv){(__m256)sa, (__m256)sb};
}
static inline KFN void pv_storem(float *p, pv v, int lanes) {
    if (lanes == TRC_PANEL) {
        _mm256_storeu_ps(p, v.lo);
        _mm256_storeu_ps(p + 8, v.hi);
    } else {
        _mm256_maskstore_ps(p, lane_mask(lanes), v.lo);
        _mm256_maskstore_ps(p + 8, lane_mask(lanes - 8), v.hi);
    }
}

#define TILE_ROWS 6
#define TILE_PMAX 4
#define PV_PIN(v) __asm__("" : "+x"((v).lo), "+x"((v).hi))
#include "tile_impl.h"

/* panels per tile of R rows: 8-12 accumulators */
static const int pmax[TILE_ROWS + 1] = {0, 4, 3, 2, 1, 1, 1};

TILE_FN(1, 1)
TILE_FN(1, 2)
TILE_FN(1, 3)
TILE_FN(1, 4)
TILE_FN(2, 1)
TILE_FN(2, 2)
TILE_FN(2, 3)
TILE_FN(3, 1)
TILE_FN(3, 2)
TILE_FN(4, 1)
TILE_FN(5, 1)
TILE_FN(6, 1)

typedef void tile_fn(const trc_tile_args *);
static tile_fn *const tiles[TILE_ROWS + 1][TILE_PMAX + 1] = {
    [1] = {NULL, tile_1_1, tile_1_2, tile_1_3, tile_1_4},
    [2] = {NULL, tile_2_1, tile_2_2, tile_2_3},
    [3] = {NULL, tile_3_1, tile_3_2},
    [4] = {NULL, tile_4_1},
    [5] = {NULL, tile_5_1},
    [6] = {NULL, tile_6_1},
};

static int tile_panels(int R) {
    return pmax[R];
}

static void tile(const trc_tile_args *t, int R, int P) {
    tiles[R][P](t);
}

const trc_kernel_ops trc_kernels_avx2 = {
    .isa = TRC_ISA_AVX2,
    .tile_rows = TILE_ROWS,
    .tile_panels = tile_panels,
    .tile = tile,
    .exp = exp_n_avx2,
    .layernorm_forward = layernorm_forward_avx2,
    .layernorm_backward = layernorm_backward_avx2,
    .layernorm_backward_set = layernorm_backward_set_avx2,
    .rmsnorm_forward = rmsnorm_forward_avx2,
    .silu_forward = silu_forward_avx2,
    .silu_backward = silu_backward_avx2,
    .swiglu_forward = swiglu_forward_avx2,
    .dsilu_inplace = dsilu_inplace_avx2,
    .residual_forward = residual_forward_avx2,
    .residual_backward = residual_backward_avx2,
    .dlinear_forward = dlinear_forward_avx2,
    .dgemm = dgemm_avx2,
};
#endif
