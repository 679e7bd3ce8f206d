/* The one table of instruction-set paths (one line each), and trc_gemm's driver: it cuts C into
 * register tiles of the active path and, when B is given transposed (a [N, K] weight), packs
 * blocks of it into panels on the stack first, so that every tile streams B with plain vector
 * loads. See kernels.h. */
#include "kernels.h"

#include <string.h>

static const trc_kernel_ops *const table[TRC_ISA_COUNT] = {
    [TRC_ISA_GENERIC] = &trc_kernels_generic,
#ifdef TRC_HAVE_X86_KERNELS
    [TRC_ISA_AVX2] = &trc_kernels_avx2,
    [TRC_ISA_AVX512] = &trc_kernels_avx512,
#endif
};

const trc_kernel_ops *trc_kernels_for(trc_isa isa) {
    return isa >= TRC_ISA_GENERIC && isa < TRC_ISA_COUNT ? table[isa] : NULL;
}

const trc_kernel_ops *trc_kernels(void) {
    const trc_kernel_ops *k = table[trc_isa_active()];
    return k ? k : &trc_kernels_generic;
}

#define KC 128   /* rows of B^T packed at a time */
#define KBLK 512 /* a longer K is cut into chunks of at most this (see trc_gemm) */
#define PB 4     /* panels of B^T packed at a time (with KC: 32 KB on the stack) */

/* One tile at rows m0, panels p0 of base's origin; A: its first row (base->rsa, csa apply). */
static void one_tile(const trc_kernel_ops *ops, const trc_tile_args *base, const float *A, int m0,
                     int p0, int R, int P, int lanes) {
    trc_tile_args t = *base;
    size_t c = (size_t)m0 * t.ldc + (size_t)p0 * TRC_PANEL;
    t.A = A;
    t.B += (size_t)p0 * t.pstride;
    t.C += c;
    if (t.bias)
        t.bias += (size_t)p0 * TRC_PANEL;
    if (t.res)
        t.res += (size_t)m0 * t.ldr + (size_t)p0 * TRC_PANEL;
    if (t.pre)
        t.pre += c;
    if (t.sig)
        t.sig += c;
    t.lanes = lanes;
    if (t.cold && (!t.from_c || t.last)) /* kernels.h; C is read at once with from_c */
        for (int r = 0; r < R; r++)
            for (int q = 0; q < P; q++) {
                size_t off = (size_t)r * t.ldc + (size_t)q * TRC_PANEL;
                __builtin_prefetch(t.C + off, 0, 3);
                if (t.last && t.res)
                    __builtin_prefetch(t.res + (size_t)r * t.ldr + (size_t)q * TRC_PANEL, 0, 3);
                if (t.last && t.pre)
                    __builtin_prefetch(t.pre + off, 0, 3);
                if (t.last && t.sig)
                    __builtin_prefetch(t.sig + off, 0, 3);
            }
    ops->tile(&t, R, P);
}

/* All panels [0, np) of rows [m0, m0 + R) (one row tile), P at a time. (Copying the tile's
 * rows of A k-major first, for constant broadcast offsets, was tried: the copy cost more than
 * it saved at these sizes, ~13% of a training step.) */
static void row_tile(const trc_kernel_ops *ops, const trc_tile_args *base, int m0, int R, int P,
                     int np, int lanes) {
    const float *A = base->A + (size_t)m0 * base->rsa;
    for (int p0 = 0; p0 < np; p0 += P) {
        int Pq = np - p0 < P ? np - p0 : P;
        one_tile(ops, base, A, m0, p0, R, Pq, p0 + Pq == np ? lanes : TRC_PANEL);
    }
}

/* What follows the epilogue on finished rows [m0, m0 + R) of C, if g asks for it (kernels.h):
 * DSILU's product with SiLU's derivative, then the layer norm into g->ln_y. */
static void row_norm(const trc_kernel_ops *ops, const trc_gemm_args *g, int m0, int R) {
    if (g && g->act == TRC_ACT_DSILU)
        for (int r = m0; r < m0 + R; r++) {
            size_t off = (size_t)r * g->ldc;
            ops->dsilu_inplace(g->C + off, g->pre + off, g->sig + off, (size_t)g->N);
        }
    if (!g || !g->ln_w)
        return;
    size_t off = (size_t)m0 * g->ldc;
    if (g->ldc == (size_t)g->N)
        ops->layernorm_forward(g->ln_y + off, NULL, NULL, g->C + off, g->ln_w, g->ln_b, (size_t)R,
                               g->N);
    else
        for (int r = 0; r < R; r++, off += g->ldc)
            ops->layernorm_forward(g->ln_y + off, NULL, NULL, g->C + off, g->ln_w, g->ln_b, 1,
                                   g->N);
}

/* Rows [0, M) x panels [0, np) of base's origin; lanes: valid columns of panel np-1. The rows
 * are one tile up to one_pass_rows, else cut into the fewest tiles of at most tile_rows, of
 * near-equal heights (32 rows: 6 6 5 5 5 5, not 6 6 6 6 6 2: a 2-row tile makes 8 multiply-adds per
 * 6 loads instead of 24 per 10). ln: the gemm whose rows are layer-normalised as each row tile is
 * done (NULL: none). */
static void sweep(const trc_kernel_ops *ops, const trc_tile_args *base, int M, int np, int lanes,
                  const trc_gemm_args *ln) {
    int RT = ops->tile_rows, nt = (M + RT - 1) / RT;
    if (M <= ops->one_pass_rows) /* one pass over B (kernels.h) */
        nt = 1;
    for (int t = 0, m0 = 0; t < nt; t++) {
        int R = M / nt + (t < M % nt);
        row_tile(ops, base, m0, R, ops->tile_panels(R), np, lanes);
        row_norm(ops, ln, m0, R);
        m0 += R;
    }
}

void trc_gemm(const trc_gemm_args *g) {
    if (g->M <= 0 || g->N <= 0)
        return;
    const trc_kernel_ops *ops = trc_kernels();
    int np = (g->N + TRC_PANEL - 1) / TRC_PANEL;
    trc_tile_args base = {.A = g->A,
                          .rsa = g->rsa,
                          .csa = g->csa,
                          .B = g->B,
                          .ldb = g->ldb,
                          .pstride = g->pstride,
                          .K = g->K,
                          .C = g->C,
                          .ldc = g->ldc,
                          .from_c = g->beta != 0,
                          .last = 1,
                          .lanes = TRC_PANEL,
                          .bias = g->bias,
                          .res = g->res,
                          .ldr = g->ldr,
                          .act = g->act,
                          .pre = g->pre,
                          .sig = g->sig,
                          .cold = g->cold};
    if (g->act == TRC_ACT_DSILU) /* the tiles store the product; row_norm finishes it */
        base.act = TRC_ACT_NONE;
    if (!g->btrans || g->K <= 0) {
        int lanes = g->N - (np - 1) * TRC_PANEL, nk = (g->K + KBLK - 1) / KBLK;
        if (nk <= 1) {
            sweep(ops, &base, g->M, np, lanes, g);
            return;
        }
        /* K in nk near-equal chunks, each swept over all of C: a chunk of A and B stays in L2
         * while every tile reads it (a weight gradient over 1,728 rows streamed both from
         * memory once per row tile: 47% of peak against 90% in chunks). Partial sums go
         * through C, so every output keeps its order of additions and its bits. */
        for (int c = 0, k0 = 0; c < nk; c++) {
            int k1 = (int)((long)g->K * (c + 1) / nk);
            trc_tile_args t = base;
            t.A += (size_t)k0 * g->csa;
            t.B += (size_t)k0 * g->ldb;
            t.K = k1 - k0;
            t.from_c = g->beta != 0 || c > 0;
            t.last = c == nk - 1;
            sweep(ops, &t, g->M, np, lanes, t.last ? g : NULL);
            k0 = k1;
        }
        return;
    }
    /* B(k, n) = B[n ldb + k]: blocks of KC x 16 PB packed as panels, K in order (a block's
     * partial sums go through C, which keeps every output's order of additions) */
    float buf[KC * PB * TRC_PANEL] __attribute__((aligned(64)));
    for (int n0 = 0; n0 < g->N; n0 += PB * TRC_PANEL) {
        int nb = g->N - n0 < PB * TRC_PANEL ? g->N - n0 : PB * TRC_PANEL;
        int npb = (nb + TRC_PANEL - 1) / TRC_PANEL;
        for (int k0 = 0; k0 < g->K; k0 += KC) {
            int kc = g->K - k0 < KC ? g->K - k0 : KC;
            /* full panels 16 k at a time by the path's 16x16 transpose if it has one (per
             * element this copy took as long as the products of 64 rows), the rest one by one */
            for (int n = 0; n < npb * TRC_PANEL; n++) {
                float *dst = buf + (size_t)(n / TRC_PANEL) * kc * TRC_PANEL + n % TRC_PANEL;
                int pfull = ops->pack16 && n / TRC_PANEL * TRC_PANEL + TRC_PANEL <= nb;
                int k = pfull ? kc / TRC_PANEL * TRC_PANEL : 0;
                if (pfull && n % TRC_PANEL == 0)
                    for (int kk = 0; kk < k; kk += TRC_PANEL)
                        ops->pack16(dst + (size_t)kk * TRC_PANEL,
                                    g->B + (size_t)(n0 + n) * g->ldb + k0 + kk, g->ldb);
                if (n < nb) {
                    const float *src = g->B + (size_t)(n0 + n) * g->ldb + k0;
                    for (; k < kc; k++)
                        dst[(size_t)k * TRC_PANEL] = src[k];
                } else
                    for (; k < kc; k++)
                        dst[(size_t)k * TRC_PANEL] = 0.0f;
            }
            trc_tile_args t = base;
            t.A = g->A + (size_t)k0 * g->csa;
            t.B = buf;
            t.ldb = TRC_PANEL;
            t.pstride = (size_t)kc * TRC_PANEL;
            t.K = kc;
            t.C = g->C + n0;
            t.from_c = g->beta != 0 || k0 > 0;
            t.last = k0 + kc == g->K;
            if (t.bias)
                t.bias += n0;
            if (t.res)
                t.res += n0;
            if (t.pre)
                t.pre += n0;
            if (t.sig)
                t.sig += n0;
            sweep(ops, &t, g->M, npb, nb - (npb - 1) * TRC_PANEL, NULL);
        }
    }
    row_norm(ops, g, 0, g->M); /* rows are complete only now */
}

int trc_bf16_available(const char **why) {
    const trc_kernel_ops *ops = trc_kernels();
    if (!ops->row_bf16) {
        *why = "bf16 weights need the avx512 kernel path (active: a path without a bf16 kernel)";
        return 0;
    }
    if (!trc_cpu_has_bf16()) {
        *why = "bf16 weights need a CPU with AVX512_BF16 (vdpbf16ps); this one has none";
        return 0;
    }
    return 1;
}

void trc_gemm_bf16(const trc_gemm_args *g, const uint16_t *Wb) {
    const trc_kernel_ops *ops = trc_kernels();
    for (int m = 0; m < g->M; m++) {
        ops->row_bf16(g->A + (size_t)m * g->rsa, g->K, Wb, g->N, g->C + (size_t)m * g->ldc, g->bias,
                      g->res ? g->res + (size_t)m * g->ldr : NULL, g->act == TRC_ACT_SILU);
        row_norm(ops, g, m, 1);
    }
}

uint16_t trc_bf16_round(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it one (quiet) */
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u); /* to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

size_t trc_bf16_packed_size(int K, int N) {
    return (size_t)((N + TRC_PANEL - 1) / TRC_PANEL) * (size_t)((K + 1) / 2) * 32;
}

void trc_bf16_pack(uint16_t *Wb, const float *W, int K, int N) {
    int np = (N + TRC_PANEL - 1) / TRC_PANEL, K2 = (K + 1) / 2;
    for (int p = 0; p < np; p++)
        for (int i = 0; i < K2; i++)
            for (int j = 0; j < TRC_PANEL; j++)
                for (int e = 0; e < 2; e++) {
                    int n = p * TRC_PANEL + j, k = 2 * i + e;
                    Wb[((size_t)p * K2 + i) * 32 + 2 * j + e] =
                        n < N && k < K ? trc_bf16_round(W[(size_t)n * K + k]) : 0;
                }
}

size_t trc_first_nonfinite(const float *x, size_t n) {
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uint32_t bad = 0;
        for (int j = 0; j < 64; j++) {
            uint32_t u;
            memcpy(&u, x + i + j, sizeof u);
            bad |= (u & 0x7f800000u) == 0x7f800000u;
        }
        if (bad)
            break;
    }
    for (; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        if ((u & 0x7f800000u) == 0x7f800000u)
            return i;
    }
    return n;
}
