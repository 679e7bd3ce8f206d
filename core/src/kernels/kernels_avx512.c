/* The AVX-512 path (trc/cpu.h): 16-lane element-wise layers and GEMM tiles of up to 12 rows x 2
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

#define TILE_ROWS 12
#define TILE_PMAX 8
#include "tile_impl.h"

/* panels per tile of R rows: about 8-24 accumulators (8 independent FMA chains at least) */
static const int pmax[TILE_ROWS + 1] = {0, 8, 4, 4, 4, 4, 4, 3, 3, 2, 2, 2, 2};

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
TILE_FN(9, 1)
TILE_FN(9, 2)
TILE_FN(10, 1)
TILE_FN(10, 2)
TILE_FN(11, 1)
TILE_FN(11, 2)
TILE_FN(12, 1)
TILE_FN(12, 2)

typedef void tile_fn(const trc_tile_args *);
static tile_fn *const tiles[TILE_ROWS + 1][TILE_PMAX + 1] = {
    [1] = {NULL, tile_1_1, tile_1_2, tile_1_3, tile_1_4, tile_1_5, tile_1_6, tile_1_7, tile_1_8},
    [2] = {NULL, tile_2_1, tile_2_2, tile_2_3, tile_2_4},
    [3] = {NULL, tile_3_1, tile_3_2, tile_3_3, tile_3_4},
    [4] = {NULL, tile_4_1, tile_4_2, tile_4_3, tile_4_4},
    [5] = {NULL, tile_5_1, tile_5_2, tile_5_3, tile_5_4},
    [6] = {NULL, tile_6_1, tile_6_2, tile_6_3, tile_6_4},
    [7] = {NULL, tile_7_1, tile_7_2, tile_7_3},
    [8] = {NULL, tile_8_1, tile_8_2, tile_8_3},
    [9] = {NULL, tile_9_1, tile_9_2},
    [10] = {NULL, tile_10_1, tile_10_2},
    [11] = {NULL, tile_11_1, tile_11_2},
    [12] = {NULL, tile_12_1, tile_12_2},
};

static int tile_panels(int R) {
    return pmax[R];
}

static void tile(const trc_tile_args *t, int R, int P) {
    tiles[R][P](t);
}

const trc_kernel_ops trc_kernels_avx512 = {
    .isa = TRC_ISA_AVX512,
    .tile_rows = TILE_ROWS,
    .tile_panels = tile_panels,
    .tile = tile,
    .exp = exp_n_avx512,
    .layernorm_forward = layernorm_forward_avx512,
    .layernorm_backward = layernorm_backward_avx512,
    .silu_forward = silu_forward_avx512,
    .silu_backward = silu_backward_avx512,
    .residual_forward = residual_forward_avx512,
    .residual_backward = residual_backward_avx512,
    .dlinear_forward = dlinear_forward_avx512,
};
#endif
