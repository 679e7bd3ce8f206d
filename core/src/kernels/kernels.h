/* The numeric kernels of libtrc, one implementation per instruction-set path (trc/cpu.h):
 * a register-tiled GEMM with fused epilogues (bias, residual, SiLU) and the element-wise layers.
 * Callers use trc_gemm() and the trc_k_* wrappers, which run the active path's table entry.
 * Internal to libtrc. */
#ifndef TRC_KERNELS_H
#define TRC_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "trc/cpu.h"

#define TRC_PANEL 16 /* columns of B (outputs) per panel: one zmm, two ymm */
#define TRC_DPANEL 8 /* outputs per panel of a double-precision packed weight (one zmm) */

/* SILU: silu(v), keeping v (pre) and sigmoid(v) (sig) if asked. DSILU: SiLU's backward fused
 * into the product that gives its output gradient: v s (1 + p (1 - s)) with p = pre(m, n) and
 * s = sig(m, n) read (what SILU kept), the same operations in the same order as silu_backward,
 * applied to each row tile as soon as it is done (in L1), like the layer norm. */
typedef enum { TRC_ACT_NONE = 0, TRC_ACT_SILU = 1, TRC_ACT_DSILU = 2 } trc_act;

/* C[M, N] = init + A[M, K] B[K, N] (+ res), then act, where init is C (beta = 1), else bias
 * (or 0 without bias). Every C(m, n) is init + A(m,0) B(0,n) + A(m,1) B(1,n) + ... in that order
 * (fused multiply-adds on the AVX paths), whatever M is, so a row's result does not depend on
 * the other rows. Layouts:
 *   A(m, k) = A[m * rsa + k * csa]                 (any strides: rows or columns of a matrix)
 *   btrans = 0: B(k, n) = B[(n / 16) * pstride + k * ldb + n % 16]
 *               (row-major [K, N]: ldb = N, pstride = 16; packed panels: ldb = 16, pstride = 16 K;
 *               a partial last panel is read with masked loads, so nothing past N is touched)
 *   btrans = 1: B(k, n) = B[n * ldb + k]           (B^T stored: a PyTorch weight [N, K])
 *   C(m, n) = C[m * ldc + n], res(m, n) = res[m * ldr + n].
 * With act = SILU, C receives silu(v); pre (if not NULL) v and sig (if not NULL) sigmoid(v),
 * both with stride ldc. With act = DSILU, C receives v s (1 + p (1 - s)), p and s read from pre
 * and sig (stride ldc; both given). C may not alias A, B or res.
 * With ln_w (and ln_b, ln_y), each finished row of C (all N outputs, after the
 * epilogue) is then layer-normalised into ln_y (stride ldc; ln_y = C: in place), by the path's
 * layernorm_forward, so bit for bit what a separate layer norm over C gives. With packed B
 * (btrans = 0) a row tile is normalised as soon as its last panel is stored, while its rows are
 * in L1; ln_y may then alias res (each row tile has read its rows of res by then). */
typedef struct trc_gemm_args {
    int M, N, K;
    const float *A;
    size_t rsa, csa;
    const float *B;
    size_t ldb, pstride;
    int btrans;
    float *C;
    size_t ldc;
    int beta;
    const float *bias;
    const float *res;
    size_t ldr;
    trc_act act;
    float *pre, *sig;
    const float *ln_w, *ln_b;
    float *ln_y;
    int cold; /* 1: C, res, pre, sig are likely not in cache (training's activations) */
} trc_gemm_args;

void trc_gemm(const trc_gemm_args *g);

/* One register tile: R rows x P panels of C at the origin the pointers are offset to. init:
 * from C (from_c), else bias[0..16P) or zero. The epilogue (res, act, pre, sig) runs when `last`
 * (the final chunk of K). lanes: valid columns of the tile's last panel (1..16). */
typedef struct trc_tile_args {
    const float *A;
    size_t rsa, csa;
    const float *B;
    size_t ldb, pstride;
    int K;
    float *C;
    size_t ldc;
    int from_c, last, lanes;
    const float *bias;
    const float *res;
    size_t ldr;
    trc_act act;
    float *pre, *sig;
    int cold; /* the driver prefetches the tile's epilogue lines before calling it */
} trc_tile_args;

/* One instruction-set path: its tiles and element-wise layers (layers.h documents the latter). */
typedef struct trc_kernel_ops {
    trc_isa isa;
    int tile_rows;             /* rows of a full tile */
    int one_pass_rows;         /* M up to this is one tile, above tile_rows too (0: none) */
    int (*tile_panels)(int R); /* panels per tile of R rows (R up to either of the above) */
    void (*tile)(const trc_tile_args *t, int R, int P);
    void (*exp)(float *y, const float *x, size_t n); /* y = exp(x), the epilogues' polynomial */
    void (*layernorm_forward)(float *y, float *mean, float *rstd, const float *x, const float *w,
                              const float *b, size_t B, int C);
    void (*layernorm_backward)(float *dx, float *dw, float *db, const float *dy, const float *x,
                               const float *w, const float *mean, const float *rstd, size_t B,
                               int C);
    /* layernorm_backward writing dx (and dx2 if not NULL) instead of adding into it */
    void (*layernorm_backward_set)(float *dx, float *dx2, float *dw, float *db, const float *dy,
                                   const float *x, const float *w, const float *mean,
                                   const float *rstd, size_t B, int C);
    /* y = x rs w, rs = 1 / sqrt(mean(x^2) + eps) per row (rstd[r] = rs if not NULL); y may be x */
    void (*rmsnorm_forward)(float *y, float *rstd, const float *x, const float *w, size_t B, int C,
                            float eps);
    void (*silu_forward)(float *y, float *sig, const float *x, size_t n);
    /* y = silu(g) q (sig = sigmoid(g) if not NULL): the SwiGLU gate in one pass */
    void (*swiglu_forward)(float *y, float *sig, const float *g, const float *q, size_t n);
    void (*silu_backward)(float *dx, const float *dy, const float *x, const float *sig, size_t n);
    /* y = y s (1 + x (1 - s)), in place (trc_gemm's DSILU, on each row tile while in L1) */
    void (*dsilu_inplace)(float *y, const float *x, const float *sig, size_t n);
    void (*residual_forward)(float *y, const float *a, const float *b, size_t n);
    void (*residual_backward)(float *dx, const float *dy, size_t n);
    /* y = x Wd^T + b summed in double (eltwise_impl.h; Wd as trc_linear_dpack packs it) */
    void (*dlinear_forward)(float *y, const float *x, const double *Wd, const float *b, size_t B,
                            int in, int out);
    /* C[M, N] = (beta ? C : 0) + A B in double (eltwise_impl.h; A(m, k) = A[m rsa + k csa],
     * B row-major) */
    void (*dgemm)(double *C, size_t ldc, const double *A, size_t rsa, size_t csa, const double *B,
                  size_t ldb, int M, int N, int K, int beta);
    /* Optional (NULL: plain C in linear_packed.c): 16 panel rows i0..i0+15 of a full panel from
     * W's 16 rows w (row stride in): dst[16 i + j] = w[j in + i] -- a 16x16 transpose */
    void (*pack16)(float *dst, const float *w, size_t in);
    /* Optional (NULL: the path has none): one row y[N] = bf16(x[K]) Wb + bias (+ res) (silu)
     * over bf16 weights packed by trc_bf16_pack; only called when trc_bf16_available(). */
    void (*row_bf16)(const float *x, int K, const uint16_t *Wb, int N, float *y, const float *bias,
                     const float *res, int silu);
} trc_kernel_ops;

/* The index of the first of x[0..n) that is not finite (inf or NaN), n when all are: blocks of
 * 64 by their exponent bits (a loop the compiler vectorizes; isfinite() per element compiled to
 * a compare and branch each, ~3% of a training step over the gradients). */
size_t trc_first_nonfinite(const float *x, size_t n);

/* bf16 weights (the inference plan's TRC_PRECISION_BF16): W [N, K] rounded to bfloat16 (nearest
 * even) and packed in panels of 16 outputs by pairs of inputs: panel p, pair i, lane j holds
 * W[16p + j][2i] then W[16p + j][2i + 1] (zero padded), 64 bytes per pair. Products take the
 * row's inputs rounded to bf16 too and sum in float (vdpbf16ps). */
size_t trc_bf16_packed_size(int K, int N); /* uint16 elements; a multiple of 32 */
void trc_bf16_pack(uint16_t *Wb, const float *W, int K, int N);
uint16_t trc_bf16_round(float v); /* nearest even; NaN stays NaN */
/* 1 when this CPU has AVX512_BF16 (cpu.c asks once) */
int trc_cpu_has_bf16(void);
/* 1 when the active path has a bf16 kernel and the CPU runs it; else 0 with why in *why */
int trc_bf16_available(const char **why);
/* trc_gemm over bf16 weights Wb (g->B, ldb, pstride, btrans, pre, sig unused; A by rows:
 * csa = 1; bias, res, act = SILU and the layer norm as trc_gemm). Row by row: a row's result
 * does not depend on the other rows. Only when trc_bf16_available(). */
void trc_gemm_bf16(const trc_gemm_args *g, const uint16_t *Wb);

/* The active path's table (trc_isa_active()). */
const trc_kernel_ops *trc_kernels(void);
/* A given path's table, NULL when this build has none for it. */
const trc_kernel_ops *trc_kernels_for(trc_isa isa);

extern const trc_kernel_ops trc_kernels_generic;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TRC_HAVE_X86_KERNELS 1
extern const trc_kernel_ops trc_kernels_avx2;
extern const trc_kernel_ops trc_kernels_avx512;
#endif

#endif
