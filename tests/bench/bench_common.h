/* Shared by the benchmarks: clocks, medians, the CPU's model name, and this machine's FP32 FMA
 * peak per core measured in the same run (256- and 512-bit loops of 12 independent FMA chains, the
 * best of samples taken between the benchmarks' repetitions), so that every figure can be printed
 * as a fraction of what the core can do. */
#ifndef TRC_BENCH_COMMON_H
#define TRC_BENCH_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trc/cpu.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define BENCH_X86 1
#endif

static inline double bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of this thread's process: on a shared machine wall time includes waiting for a core,
 * so rates are given per CPU-second as well (what one busy core gives). */
static inline double bench_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int bench_cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, bench_cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* "model name" of /proc/cpuinfo, or "unknown" */
static inline void bench_cpu_model(char *out, size_t n) {
    snprintf(out, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "model name", 10) == 0) {
            const char *v = strchr(line, ':');
            if (v) {
                v += 1 + (v[1] == ' ');
                snprintf(out, n, "%.*s", (int)strcspn(v, "\n"), v);
            }
            break;
        }
    fclose(f);
}

#ifdef BENCH_X86
/* NCHAIN independent FMA chains, n iterations: NCHAIN x n x width x 2 flops. A chain can issue
 * one FMA per latency (4 cycles), so the ports (2) need >= 8 chains; measured on this project's
 * Xeon (model 207), 512-bit, best of 10: 4 chains 75 GFLOP/s, 6 108, 8 104-120, 10 140-148,
 * 12 140-146, 16 113-143, 24 125-143 -- the loop saturates from 10, so 12 leaves room and still
 * fits the registers at both widths (16 ymm, 32 zmm). The multiplier and addend come through
 * volatile loads and the chains' sum is returned, so the compiler can neither fold the loop nor
 * drop it. The inner loop gcc -O2 emits (objdump -d build/bench/bench_kernels, fma_loop_512):
 *     vfmadd132ps %zmm2,%zmm0,%zmm1    (x 12: zmm1, zmm3..zmm13; registers only)
 *     add $0x1,%rax; cmp %rax,%rdi; jne
 * -- no load or store inside, every accumulator in its own register; fma_loop_256 is the same
 * with ymm. */
#define BENCH_NCHAIN 12
__attribute__((target("avx2,fma"), noinline)) static float fma_loop_256(long n, float mv,
                                                                        float cv) {
    __m256 a[BENCH_NCHAIN], m = _mm256_set1_ps(mv), c = _mm256_set1_ps(cv);
    for (int i = 0; i < BENCH_NCHAIN; i++)
        a[i] = _mm256_set1_ps((float)i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < BENCH_NCHAIN; i++)
            a[i] = _mm256_fmadd_ps(a[i], m, c);
    for (int i = 1; i < BENCH_NCHAIN; i++)
        a[0] = _mm256_add_ps(a[0], a[i]);
    float s[8];
    _mm256_storeu_ps(s, a[0]);
    return s[0];
}

__attribute__((target("avx512f"), noinline)) static float fma_loop_512(long n, float mv, float cv) {
    __m512 a[BENCH_NCHAIN], m = _mm512_set1_ps(mv), c = _mm512_set1_ps(cv);
    for (int i = 0; i < BENCH_NCHAIN; i++)
        a[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < n; k++)
#pragma GCC unroll 12
        for (int i = 0; i < BENCH_NCHAIN; i++)
            a[i] = _mm512_fmadd_ps(a[i], m, c);
    for (int i = 1; i < BENCH_NCHAIN; i++)
        a[0] = _mm512_add_ps(a[0], a[i]);
    return _mm512_reduce_add_ps(a[0]);
}
#endif

/* The best FMA-loop rate seen so far in this process, per width ([0] 256, [1] 512; GFLOP/s per
 * CPU-second), and how many samples it is the best of. On this shared VM a core's throughput
 * varies by up to 2x from minute to minute (host load, sibling hyperthreads of other guests):
 * a peak measured once at the start read 84-88 GFLOP/s while kernels later reached 92-108. So
 * the benchmarks sample the peak between their timed repetitions (bench_peak_sample), and the
 * peak they divide by is the best sample of the whole run -- a maximum, taken at the moments
 * the kernels ran; bench_peak_check says if a figure still exceeded it. */
static double bench_peak_best[2];
static int bench_peak_count, bench_peak_warm;

/* Runs of the loop at one width (~0.5 ms each); keeps the best. 0 runs when the CPU lacks it. */
static inline void bench_peak_runs(int bits, int runs) {
#ifdef BENCH_X86
    if (bits == 256 ? !trc_isa_supported(TRC_ISA_AVX2) : !trc_isa_supported(TRC_ISA_AVX512))
        return;
    volatile float mv = 0.999999f, cv = 1e-7f, sink = 0.0f;
    const long n = bits == 256 ? 200000 : 100000; /* 2.4 / 1.2 M FMAs: ~0.5 ms */
    for (int r = 0; r < runs; r++) {
        double c0 = bench_cpu();
        sink += bits == 256 ? fma_loop_256(n, mv, cv) : fma_loop_512(n, mv, cv);
        double dt = bench_cpu() - c0;
        double g = dt > 0 ? (double)BENCH_NCHAIN * (double)n * (bits / 32) * 2.0 / dt * 1e-9 : 0;
        if (g > bench_peak_best[bits == 512])
            bench_peak_best[bits == 512] = g;
    }
    (void)sink;
#else
    (void)bits;
    (void)runs;
#endif
}

/* The best of the runs of the last bench_peak_sample, per width: the peak at that moment. */
static double bench_peak_last[2];

/* A few runs of both widths (~3 ms), between a benchmark's timed repetitions (never inside). */
static inline void bench_peak_sample(void) {
    double best[2] = {bench_peak_best[0], bench_peak_best[1]};
    bench_peak_best[0] = bench_peak_best[1] = 0;
    bench_peak_runs(512, 3);
    bench_peak_runs(256, 3);
    for (int i = 0; i < 2; i++) {
        bench_peak_last[i] = bench_peak_best[i];
        bench_peak_best[i] = best[i] > bench_peak_best[i] ? best[i] : bench_peak_best[i];
    }
    bench_peak_count++;
}

/* The active path's peak at the last sample (0: unknown path). Why a moment's peak: this VM's
 * core runs up to 2x slower for minutes at a time (the FMA loop itself read 81 and 162 GFLOP/s
 * in one run), so a rate divided by the run's best peak says more about the host than about the
 * code; a repetition's rate divided by the peak sampled just before and just after it does not. */
static inline double bench_peak_moment(void) {
    trc_isa isa = trc_isa_active();
    return isa == TRC_ISA_AVX512 ? bench_peak_last[1] : isa == TRC_ISA_AVX2 ? bench_peak_last[0] : 0;
}

/* GFLOP/s per CPU-second of one core at bits = 256 or 512: the best sample so far (0 when the
 * CPU lacks the width). The first call warms the core up (~50 ms: it reaches its wide-vector
 * clock) and takes 30 runs of each width. */
static inline double bench_fma_peak(int bits) {
    if (!bench_peak_warm) {
        bench_peak_warm = 1;
        bench_peak_runs(512, 60);
        bench_peak_runs(256, 30);
        bench_peak_best[0] = bench_peak_best[1] = 0; /* the warm-up does not count */
        bench_peak_runs(512, 30);
        bench_peak_runs(256, 30);
        bench_peak_count = 1;
    }
    return bench_peak_best[bits == 512];
}

/* Prints the run's peak and how close the figures came: max_frac is the largest figure's
 * fraction of its path's peak. Above 1 the peak was not sampled at the figure's best moment and
 * the run's "% of peak" figures overstate (it says so). */
static inline void bench_peak_check(double max_frac) {
    printf("FMA peak, best of %d samples spread over the run: 256-bit %.1f, 512-bit %.1f GFLOP/s "
           "(per CPU-second); the largest figure is %.0f%% of its path's peak%s\n",
           bench_peak_count, bench_peak_best[0], bench_peak_best[1], 100.0 * max_frac,
           max_frac > 1.0 ? " -- ABOVE it: this run's % figures overstate" : "");
}

/* The peak of the active path: 512-bit on avx512, 256-bit on avx2, 0 (unknown) otherwise. */
static inline double bench_path_peak(double p256, double p512) {
    trc_isa isa = trc_isa_active();
    return isa == TRC_ISA_AVX512 ? p512 : isa == TRC_ISA_AVX2 ? p256 : 0.0;
}

/* Prints the machine and path header every benchmark starts with; returns the two peaks. */
static inline void bench_header(const char *name, double *p256, double *p512) {
    char cpu[128];
    bench_cpu_model(cpu, sizeof cpu);
    *p256 = bench_fma_peak(256);
    *p512 = bench_fma_peak(512);
    printf("%s: CPU %s; kernels: %s (%s; best supported %s)\n", name, cpu,
           trc_isa_name(trc_isa_active()), trc_isa_reason(), trc_isa_name(trc_isa_best()));
    printf("FP32 FMA peak of one core, measured now: 256-bit %.1f GFLOP/s, 512-bit %.1f GFLOP/s "
           "(per CPU-second)\n",
           *p256, *p512);
    double load[3];
    if (getloadavg(load, 3) == 3)
        printf("load average %.2f %.2f %.2f (1/5/15 min; above ~0.5 the machine is shared and "
               "wall-clock rates drop)\n",
               load[0], load[1], load[2]);
}

#endif
