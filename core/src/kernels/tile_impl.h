/* The register tile of trc_gemm (kernels.h) over a "panel vector" pv of 16 floats (one zmm, or
 * two ymm): R rows x P panels of accumulators live in registers for the whole K loop, then the
 * epilogue (residual, SiLU) runs on them before the (masked) store. The including file defines
 * KFN, TILE_ROWS, TILE_PMAX, SFX(name), the pv type and its operations (pv_zero, pv_load,
 * pv_loadm, pv_bcast, pv_fma, pv_add, pv_mul, pv_sigmoid, pv_storem), and after
 * including this file, one TILE_FN(R, P) line per tile shape. No include guard: included once per
 * path. */

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* The K loops prefetch the B rows (and, for A by columns, the A row) this many k ahead: with
 * rows 0.5-1 KB apart (a weight gradient's dY and X, a row-major W in the backward products)
 * a 4 KB page holds 4-8 of them and the hardware's streams barely start; data written long
 * before (training's activations) then came from L3 or memory at every k. Measured on the
 * training step (alternating A/B, same process): x1.09-1.12 at 8-24 ahead. Rows of A and packed
 * B panels are sequential and streamed by the hardware: there the prefetches only took load
 * slots (the plan's 1-row products, bound by reading the weights: 1.2x slower), so the loop
 * over rows of A prefetches B only when B is not packed (PF). Prefetches never fault: past
 * the end of an operand they are only wasted. */
#define TILE_PREFETCH 16

/* The P panels of B at this k into registers, once. In tiles of 2 and 3 rows gcc otherwise
 * folded each load into every row's FMA (8 and 12 loads of B per k instead of 4, load-bound: a
 * 3-row batch took longer than a 4-row one); PV_PIN (the path's) makes each a register. One row:
 * the folded loads are the best code; 4-6 rows: gcc loads once by itself, and pinning them
 * there measured 6% slower (4 rows). */
#ifndef PV_PIN
#define PV_PIN(v) ((void)0)
#endif
#define TILE_LOAD_B(LOADQ)                                                                         \
    _Pragma("GCC unroll 8") for (int q = 0; q < P; q++) {                                          \
        bq[q] = LOADQ;                                                                             \
        if (R == 2 || R == 3)                                                                      \
            PV_PIN(bq[q]);                                                                         \
    }

/* acc[r][q] += A(r, k) B(k, q) for k in [0, K); the last panel read with `lanes` lanes */
#define TILE_K_LOOP(LOADQ, RSA, PS)                                                                \
    for (int k = K; k > 0; k--, ap += csa, bp += ldb) {                                            \
        __builtin_prefetch(ap + pfa, 0, 3);                                                        \
        _Pragma("GCC unroll 8") for (int q = 0; q < P; q++)                                        \
            __builtin_prefetch(bp + q * (PS) + pfb, 0, 3);                                         \
        pv bq[TILE_PMAX];                                                                          \
        TILE_LOAD_B(LOADQ)                                                                         \
        _Pragma("GCC unroll 12") for (int r = 0; r < R; r++) {                                     \
            pv a = pv_bcast(ap + (size_t)r * (RSA));                                               \
            _Pragma("GCC unroll 8") for (int q = 0; q < P; q++) acc[r][q] =                        \
                pv_fma(a, bq[q], acc[r][q]);                                                       \
        }                                                                                          \
    }

/* The same for rows of A rsa apart (rsa > 1: the plan's activations, row-major): row r is read
 * through base pointer r / 3 (rows 0, 3, 6, 9) plus (r % 3) rsa, which x86 addresses as
 * base + rsa * 4 or * 8 -- with ap + r rsa instead, gcc kept the 12 row offsets on the stack and
 * reloaded 10 of them every k, 24 loads per 24 FMAs (the load ports' limit). LDB: ldb, or the
 * constant TRC_PANEL for packed B (one register fewer: with ldb, ps and K reloaded from the
 * stack every k, the plan's batch products ran 4% slower); k counts down for the same reason. */
#define TILE_K_LOOP_STRIDED(LOADQ, PF, LDB, PS)                                                    \
    {                                                                                              \
        const float *a0 = ap, *a3 = ap + 3 * rsa, *a6 = ap + 6 * rsa, *a9 = ap + 9 * rsa;          \
        for (int k = K; k > 0; k--, a0 += csa, a3 += csa, a6 += csa, a9 += csa, bp += (LDB)) {     \
            if (PF)                                                                                \
                _Pragma("GCC unroll 8") for (int q = 0; q < P; q++)                                \
                    __builtin_prefetch(bp + q * (PS) + pfb, 0, 3);                                 \
            pv bq[TILE_PMAX];                                                                      \
            TILE_LOAD_B(LOADQ)                                                                     \
            _Pragma("GCC unroll 12") for (int r = 0; r < R; r++) {                                 \
                const float *base = r < 3 ? a0 : r < 6 ? a3 : r < 9 ? a6 : a9;                     \
                pv a = pv_bcast(base + (size_t)(r % 3) * rsa);                                     \
                _Pragma("GCC unroll 8") for (int q = 0; q < P; q++) acc[r][q] =                    \
                    pv_fma(a, bq[q], acc[r][q]);                                                   \
            }                                                                                      \
        }                                                                                          \
    }

static ALWAYS_INLINE KFN void tile_body(const trc_tile_args *t, const int R, const int P) {
    pv acc[TILE_ROWS][TILE_PMAX];
    const int lanes = t->lanes;
    const size_t ldc = t->ldc, rsa = t->rsa, csa = t->csa, ldb = t->ldb, ps = t->pstride;
#pragma GCC unroll 8
    for (int q = 0; q < P; q++) {
        int lq = q == P - 1 ? lanes : TRC_PANEL;
        pv init = t->bias && !t->from_c ? pv_loadm(t->bias + q * TRC_PANEL, lq) : pv_zero();
#pragma GCC unroll 12
        for (int r = 0; r < R; r++)
            acc[r][q] = t->from_c ? pv_loadm(t->C + (size_t)r * ldc + q * TRC_PANEL, lq) : init;
    }
    const int K = t->K;
    const size_t pfa = TILE_PREFETCH * csa, pfb = TILE_PREFETCH * ldb;
    const float *ap = t->A, *bp = t->B;
    /* rsa == 1 (A packed by the driver, or read by columns): constant broadcast offsets */
    /* ps == TRC_PANEL (B row-major: a weight's rows in dX = dY W, activations in dW = dY^T X):
     * the panels' offsets are constants, which frees the registers gcc otherwise refilled from
     * the stack at every k */
    if (lanes == TRC_PANEL && rsa == 1 && ps == TRC_PANEL) {
        TILE_K_LOOP(pv_load(bp + q * TRC_PANEL), 1, TRC_PANEL)
    } else if (lanes == TRC_PANEL && rsa == 1) {
        TILE_K_LOOP(pv_load(bp + q * ps), 1, ps)
    } else if (lanes == TRC_PANEL && ldb != TRC_PANEL && ps == TRC_PANEL) {
        TILE_K_LOOP_STRIDED(pv_load(bp + q * TRC_PANEL), 1, ldb, TRC_PANEL)
    } else if (lanes == TRC_PANEL && ldb != TRC_PANEL) {
        TILE_K_LOOP_STRIDED(pv_load(bp + q * ps), 1, ldb, ps)
    } else if (lanes == TRC_PANEL) {
        TILE_K_LOOP_STRIDED(pv_load(bp + q * ps), 0, TRC_PANEL, ps)
    } else if (rsa == 1) {
        TILE_K_LOOP(q == P - 1 ? pv_loadm(bp + q * ps, lanes) : pv_load(bp + q * ps), 1, ps)
    } else {
        TILE_K_LOOP_STRIDED(q == P - 1 ? pv_loadm(bp + q * ps, lanes) : pv_load(bp + q * ps),
                            ldb != TRC_PANEL, ldb, ps)
    }
    /* The epilogue reads t's fields into locals first: the intrinsics' stores may alias
     * anything, so through t every field was reloaded and every test redone after each store
     * (per register: ~10 loads and branches around a 25-instruction sigmoid). */
    float *const C = t->C, *const pre = t->pre, *const sig = t->sig;
    const float *const res = t->last ? t->res : NULL;
    const size_t ldr = t->ldr;
    const int silu = t->last && t->act == TRC_ACT_SILU;
#pragma GCC unroll 8
    for (int q = 0; q < P; q++) {
        int lq = q == P - 1 ? lanes : TRC_PANEL;
#pragma GCC unroll 12
        for (int r = 0; r < R; r++) {
            pv v = acc[r][q];
            size_t off = (size_t)r * ldc + (size_t)q * TRC_PANEL;
            if (res)
                v = pv_add(v, pv_loadm(res + (size_t)r * ldr + q * TRC_PANEL, lq));
            if (silu) {
                pv s = pv_sigmoid(v);
                if (pre)
                    pv_storem(pre + off, v, lq);
                if (sig)
                    pv_storem(sig + off, s, lq);
                v = pv_mul(v, s);
            }
            pv_storem(C + off, v, lq);
        }
    }
}

/* One function per tile shape, so that each keeps its accumulators in registers. */
#define TILE_FN(R, P)                                                                              \
    static KFN void tile_##R##_##P(const trc_tile_args *t) {                                       \
        tile_body(t, R, P);                                                                        \
    }
