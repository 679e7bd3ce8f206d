/* Which instruction-set path libtrc's kernels run (GEMM, packed inference, element-wise layers).
 * Decided once per process, in one place (core/src/kernels/cpu.c): the best path the CPU
 * supports, unless the environment variable TRC_ISA (avx512 | avx2 | generic) asks for another.
 * A request above what the CPU supports, or an unknown name, falls back to the best supported
 * path, and trc_isa_reason() says why. */
#ifndef TRC_CPU_H
#define TRC_CPU_H

typedef enum {
    TRC_ISA_GENERIC = 0, /* portable C (vector extensions at the compiler's baseline) */
    TRC_ISA_AVX2 = 1,    /* x86-64 AVX2 + FMA: 256-bit FMA */
    TRC_ISA_AVX512 = 2,  /* x86-64 AVX-512 (F, DQ, BW, VL) + AVX2 + FMA: 512-bit FMA */
    TRC_ISA_COUNT
} trc_isa;

/* The path the kernels run now. */
trc_isa trc_isa_active(void);
/* The best path this CPU (and this build) supports. */
trc_isa trc_isa_best(void);
/* Nonzero when this CPU and build can run isa. */
int trc_isa_supported(trc_isa isa);
/* "generic", "avx2", "avx512" ("?" out of range). */
const char *trc_isa_name(trc_isa isa);
/* isa named name (as trc_isa_name prints it): 0, else TRC_EINVAL. */
int trc_isa_parse(const char *name, trc_isa *isa);
/* How the active path was chosen, one line: "best supported", "TRC_ISA=avx2", or the reason a
 * TRC_ISA request was not followed. */
const char *trc_isa_reason(void);
/* Switches the path for every later kernel call (tests and benchmarks run each path this way);
 * TRC_EINVAL, and no change, when the CPU cannot run it. Not meant to race with kernels running
 * on other threads: a call in flight may finish on the old path. */
int trc_isa_set(trc_isa isa);

#endif
