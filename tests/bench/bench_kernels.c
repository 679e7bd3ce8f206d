/* Benchmark of the GEMM kernels (core/src/kernels) on every instruction-set path this CPU runs,
 * for the shapes of the medium model (d = 128, h = 256): the inference plan's packed product
 * (128-row chunks), and training's forward (x W^T), input gradient (dY W) and weight gradient
 * (dY^T X over K n B = 576 rows). GFLOP/s per CPU-second, as a fraction of the path's FMA peak
 * measured in the same run, beside OpenBLAS's sgemm for the same product. Usage: bench_kernels. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/kernels.h"
#include "nn/linear_packed.h"
#include "bench_common.h"
#include "trc/model.h"
#include "trc/rng.h"

char *openblas_get_corename(void);

typedef struct shape {
    const char *what;
    int M, N, K;
    int kind; /* 0 packed (plan), 1 x W^T, 2 dY W, 3 dY^T X */
} shape;

static float *buf(size_t n, trc_rng *rng) {
    float *p = malloc(n * sizeof *p);
    if (!p)
        exit(1);
    for (size_t i = 0; i < n; i++)
        p[i] = (float)trc_rng_range(rng, -1.0, 1.0);
    return p;
}

/* one product of shape s: ours (blas = 0) or OpenBLAS's */
static void run(const shape *s, int blas, const float *A, const float *W, const float *Wp,
                float *C) {
    int M = s->M, N = s->N, K = s->K;
    switch (s->kind) {
    case 0:
        if (blas)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, W, K, 0.0f, C,
                        N);
        else
            trc_linear_packed_forward(C, A, Wp, NULL, (size_t)M, K, N);
        break;
    case 1:
        if (blas)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, K, W, K, 0.0f, C,
                        N);
        else
            trc_gemm(&(trc_gemm_args){.M = M,
                                      .N = N,
                                      .K = K,
                                      .A = A,
                                      .rsa = (size_t)K,
                                      .csa = 1,
                                      .B = W,
                                      .ldb = (size_t)K,
                                      .btrans = 1,
                                      .C = C,
                                      .ldc = (size_t)N});
        break;
    case 2: /* C[M, N] = A[M, K] W[K, N] */
        if (blas)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, W, N, 0.0f,
                        C, N);
        else
            trc_gemm(&(trc_gemm_args){.M = M,
                                      .N = N,
                                      .K = K,
                                      .A = A,
                                      .rsa = (size_t)K,
                                      .csa = 1,
                                      .B = W,
                                      .ldb = (size_t)N,
                                      .pstride = TRC_PANEL,
                                      .C = C,
                                      .ldc = (size_t)N});
        break;
    default: /* C[M, N] = A[K, M]^T W[K, N] */
        if (blas)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K, 1.0f, A, M, W, N, 0.0f, C,
                        N);
        else
            trc_gemm(&(trc_gemm_args){.M = M,
                                      .N = N,
                                      .K = K,
                                      .A = A,
                                      .rsa = 1,
                                      .csa = (size_t)M,
                                      .B = W,
                                      .ldb = (size_t)N,
                                      .pstride = TRC_PANEL,
                                      .C = C,
                                      .ldc = (size_t)N});
    }
}

static double gflops(const shape *s, int blas, const float *A, const float *W, const float *Wp,
                     float *C) {
    double flop = 2.0 * s->M * s->N * s->K, g[9];
    int reps = (int)(2e8 / flop) + 1;
    run(s, blas, A, W, Wp, C);
    for (int r = 0; r < 9; r++) {
        bench_peak_sample(); /* the peak at the same moments, outside the timed part */
        double c0 = bench_cpu();
        for (int i = 0; i < reps; i++)
            run(s, blas, A, W, Wp, C);
        g[r] = flop * reps / (bench_cpu() - c0) * 1e-9;
    }
    return bench_median(g, 9);
}

#ifdef BENCH_X86
/* BENCH_NCHAIN chains of VDPBF16PS (32 bf16 multiply-adds into 16 floats each), registers only,
 * like fma_loop_512: n x BENCH_NCHAIN x 32 multiply-adds. */
__attribute__((target("avx512f,avx512bf16"), noinline)) static float dpbf16_loop(long n, float mv) {
    __m512 a[BENCH_NCHAIN];
    __m512bh x = _mm512_cvtne2ps_pbh(_mm512_set1_ps(mv), _mm512_set1_ps(mv));
    for (int i = 0; i < BENCH_NCHAIN; i++)
        a[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < BENCH_NCHAIN; i++)
            a[i] = _mm512_dpbf16_ps(a[i], x, x);
    for (int i = 1; i < BENCH_NCHAIN; i++)
        a[0] = _mm512_add_ps(a[0], a[i]);
    return _mm512_reduce_add_ps(a[0]);
}
#endif

/* Why bf16 weights help the one-sample path less than half-width weights suggest: the rate of
 * bf16 dot products against fp32 FMAs, measured alternately (medians of 15 pairs). */
static void bf16_rate(void) {
#ifdef BENCH_X86
    const char *why = NULL;
    if (!trc_precision_available(TRC_PRECISION_BF16, &why)) {
        printf("bf16 dot products: not measured (%s)\n", why);
        return;
    }
    volatile float mv = 0.999f, cv = 1e-7f, sink = 0.0f;
    double bf[15], fp[15];
    const long n = 100000;
    for (int r = 0; r < 15; r++) {
        double c0 = bench_cpu();
        sink += dpbf16_loop(n, mv);
        double c1 = bench_cpu();
        sink += fma_loop_512(n, mv, cv);
        double c2 = bench_cpu();
        bf[r] = (double)BENCH_NCHAIN * n * 32 / (c1 - c0) * 1e-9;
        fp[r] = (double)BENCH_NCHAIN * n * 16 / (c2 - c1) * 1e-9;
    }
    (void)sink;
    double b = bench_median(bf, 15), f = bench_median(fp, 15);
    printf(
        "multiply-adds per CPU-second, registers only: VDPBF16PS %.1f G, FP32 FMA (512-bit) %.1f G "
        "(bf16 x%.2f): bf16 weights halve the bytes a one-sample pass reads but not the "
        "time its multiply-adds take\n",
        b, f, b / f);
#endif
}

int main(void) {
    double p256, p512;
    openblas_set_num_threads(1);
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_header("bench_kernels", &p256, &p512);
    printf("OpenBLAS core: %s (one thread)\n", openblas_get_corename());
    const shape shapes[] = {
        {"plan  ffn0 128 rows x 128 -> 256", 128, 256, 128, 0},
        {"plan  ffn3 128 rows x 256 -> 128", 128, 128, 256, 0},
        {"plan  1 row x 128 -> 256", 1, 256, 128, 0},
        {"train x W^T   64 x 128 -> 256", 64, 256, 128, 1},
        {"train x W^T   64 x 256 -> 128", 64, 128, 256, 1},
        {"train dY W    64 x 256 -> 128", 64, 128, 256, 2},
        {"train dY^T X  256 x 128, 576 rows", 256, 128, 576, 3},
    };
    enum { NSHAPE = sizeof shapes / sizeof shapes[0] };
    double blas[NSHAPE], g[NSHAPE][TRC_ISA_COUNT] = {{0}};
    trc_rng rng;
    trc_rng_seed(&rng, 3);
    trc_isa start = trc_isa_active();
    for (size_t i = 0; i < NSHAPE; i++) {
        const shape *s = &shapes[i];
        size_t na = (size_t)s->M * s->K, nw = (size_t)s->K * s->N;
        float *A = buf(na, &rng), *W = buf(nw, &rng), *C = buf((size_t)s->M * s->N, &rng);
        float *Wp = trc_linear_packed_alloc(trc_linear_packed_size(s->K, s->N)); /* as plans */
        if (!Wp)
            return 1;
        trc_linear_pack(Wp, W, s->K, s->N);
        blas[i] = gflops(s, 1, A, W, Wp, C);
        for (int isa = TRC_ISA_COUNT - 1; isa >= 0; isa--)
            if (trc_isa_set((trc_isa)isa) == 0)
                g[i][isa] = gflops(s, 0, A, W, Wp, C);
        free(A);
        free(W);
        free(C);
        free(Wp);
    }
    /* printed once every figure is in, as fractions of the peak of the whole run */
    double p[TRC_ISA_COUNT] = {0};
    p[TRC_ISA_AVX2] = bench_fma_peak(256);
    p[TRC_ISA_AVX512] = bench_fma_peak(512);
    double worst = 0.0; /* the largest fraction of its path's peak any figure reached */
    for (size_t i = 0; i < NSHAPE; i++) {
        printf("%-36s OpenBLAS %6.1f GFLOP/s |", shapes[i].what, blas[i]);
        for (int isa = TRC_ISA_COUNT - 1; isa >= 0; isa--) {
            if (!trc_isa_supported((trc_isa)isa))
                continue;
            if (p[isa] > 0) {
                printf(" %s %6.1f (%2.0f%%)", trc_isa_name((trc_isa)isa), g[i][isa],
                       100.0 * g[i][isa] / p[isa]);
                if (g[i][isa] / p[isa] > worst)
                    worst = g[i][isa] / p[isa];
            } else
                printf(" %s %6.1f", trc_isa_name((trc_isa)isa), g[i][isa]);
        }
        printf("\n");
    }
    bench_peak_check(worst);
    trc_isa_set(start);
    bf16_rate();
    return 0;
}
