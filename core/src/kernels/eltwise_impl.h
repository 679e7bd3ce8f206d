/* Element-wise layers (layers.h) over VL-lane GCC/clang vector extensions: one source compiled
 * once per instruction-set path. The including file defines VL (8 or 16), KFN (the function
 * attributes of its path: target, sanitizer exemption), SFX(name) (the path's suffix) and
 * optionally VFMA, VCLAMP, VRECIP (below), and includes this file once. NaN propagates through
 * every kernel, so a diverged model is reported (TRC_ENUMERIC), never hidden. No include guard:
 * included once per path. */
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef float vf __attribute__((vector_size(VL * 4)));
typedef int32_t vi __attribute__((vector_size(VL * 4)));

/* Vectors are never passed to or returned from functions (that is ABI-dependent for wide
 * vectors at the baseline): loads and stores are macros over an unaligned, aliasing vector
 * type, the rest macros or functions working through pointers. */
typedef float vfu __attribute__((vector_size(VL * 4), aligned(4), may_alias));
#define VLOAD(p) (*(const vfu *)(const void *)(p))
#define VSTORE(p, v) (*(vfu *)(void *)(p) = (v))
/* m ? a : b lane-wise, m from a comparison (all ones or zero) */
#define VSELECT(m, a, b) ((vf)(((vi)(a) & (m)) | ((vi)(b) & ~(m))))

/* the sum of the lanes, as a fixed tree (halves added until one lane is left: lane i + lane
 * i + w for w = VL/2, ..., 1), in registers: through an array (memcpy) it compiled to a scalar
 * loop of store-forwarded loads, ~60% of a layer norm's time */
typedef float vf8 __attribute__((vector_size(32)));
typedef float vf4 __attribute__((vector_size(16)));
typedef float vf2 __attribute__((vector_size(8)));
static inline KFN float vsum(const vf *v) {
    vf x = *v;
#if VL == 16
    vf8 h = __builtin_shufflevector(x, x, 0, 1, 2, 3, 4, 5, 6, 7) +
            __builtin_shufflevector(x, x, 8, 9, 10, 11, 12, 13, 14, 15);
#else
    vf8 h = x;
#endif
    vf4 q = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
    vf2 d = __builtin_shufflevector(q, q, 0, 1) + __builtin_shufflevector(q, q, 2, 3);
    return d[0] + d[1];
}

/* *v = the first n < VL floats of p, the other lanes zero */
static inline KFN void vload_n(vf *v, const float *p, size_t n) {
    memset(v, 0, sizeof *v);
    memcpy(v, p, n * sizeof *p);
}

/* Per-path primitives of vexp/vsigmoid, defaults in plain vector arithmetic: VFMA(a, b, c) =
 * a b + c (the AVX paths: one fused multiply-add; -std=c11 contracts nothing by itself, so the
 * polynomial cost twice the instructions), VCLAMP(x, lo, hi) (NaN passes through), VRECIP(r, d)
 * = 1 / d for d >= 1. Every op of the sigmoid sits in the SiLU epilogue of a product's tile,
 * 24 registers at a time. */
#ifndef VFMA
#define VFMA(a, b, c) ((a) * (b) + (c))
#endif
#ifndef VCLAMP
#define VCLAMP(x, lo, hi) VSELECT((x) < (lo), (lo), VSELECT((x) > (hi), (hi), (x)))
#endif

/* *x = exp(*x) (Cephes expf): x = k ln2 + r, |r| <= ln2/2, a degree-6 polynomial for exp(r),
 * 2^k built in the exponent bits. Relative error 7.6e-8 at most on [-87, 88] (test_kernels
 * measures it against double exp on a dense grid and asserts < 2.5e-7). Arguments are clamped
 * to [-87.3, 88.3], where the result stays a normal float; NaN passes through. */
static inline KFN void vexp(vf *xp) {
    const vf zero = {0};
    const vf hi = zero + 88.3f, lo = zero - 87.3f;
    vf x = VCLAMP(*xp, lo, hi);
    const vf magic = zero + 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    vf t = VFMA(x, zero + 1.44269504088896341f, magic);
    vf k = t - magic;
    vf r = VFMA(k, zero - 0.693359375f, x);
    r = VFMA(k, zero + 2.12194440e-4f, r);
    vf p = VFMA(r, zero + 1.9875691500e-4f, zero + 1.3981999507e-3f);
    p = VFMA(p, r, zero + 8.3334519073e-3f);
    p = VFMA(p, r, zero + 4.1665795894e-2f);
    p = VFMA(p, r, zero + 1.6666665459e-1f);
    p = VFMA(p, r, zero + 5.0000001201e-1f);
    vf y = VFMA(p, r * r, r) + 1.0f;
    vi e = ((vi)t - 0x4B400000 + 127) << 23; /* the low bits of t hold k */
    *xp = y * (vf)e;
}

/* *s = 1 / (1 + exp(-*x)); exactly 0 below -88, where the true value is not a normal float.
 * The AVX paths' VRECIP (the reciprocal estimate and a Newton step) replaces the division:
 * vdivps zmm issues once per ~10 cycles on one port, 24 of them per 6x4 tile's epilogue. */
static inline KFN void vsigmoid(vf *s, const vf *x) {
    const vf zero = {0};
    vf e = -*x;
    vexp(&e);
    vf d = 1.0f + e, r;
#ifdef VRECIP
    VRECIP(r, d);
#else
    r = 1.0f / d;
#endif
    *s = VSELECT(*x < -88.0f, zero, r);
}

static KFN void SFX(exp_n)(float *y, const float *x, size_t n) {
    size_t nv = n / VL * VL, tail = n - nv;
    vf v;
    for (size_t i = 0; i < nv; i += VL) {
        v = VLOAD(x + i);
        vexp(&v);
        VSTORE(y + i, v);
    }
    if (tail) {
        vload_n(&v, x + nv, tail);
        vexp(&v);
        memcpy(y + nv, &v, tail * sizeof *y);
    }
}

/* Layer norm of RB rows at once: each row's operations exactly as one row alone (the same bits),
 * interleaved so that the rows' dependency chains (sums of 8-16 vectors, the lane trees, the
 * square root and division: ~150 cycles of latency per row, ~40 of work) overlap. */
static inline __attribute__((always_inline)) KFN void
SFX(layernorm_rows)(float *y, float *mean, float *rstd, const float *x, const float *w,
                    const float *b, int C, const int RB) {
    size_t n = (size_t)C, nv = n / VL * VL;
    float mu[4], rs[4];
    /* two passes: the centered variance does not lose precision to cancellation */
    vf acc[4];
    _Pragma("GCC unroll 4") for (int j = 0; j < RB; j++) acc[j] = (vf){0};
    for (size_t i = 0; i < nv; i += VL)
        _Pragma("GCC unroll 4") for (int j = 0; j < RB; j++) acc[j] += VLOAD(x + j * n + i);
    _Pragma("GCC unroll 4") for (int j = 0; j < RB; j++) {
        mu[j] = vsum(&acc[j]);
        for (size_t i = nv; i < n; i++)
            mu[j] += x[j * n + i];
        mu[j] /= (float)C;
        acc[j] = (vf){0};
    }
    for (size_t i = 0; i < nv; i += VL)
        _Pragma("GCC unroll 4") for (int j = 0; j < RB; j++) {
            vf t = VLOAD(x + j * n + i) - mu[j];
            acc[j] += t * t;
        }
    _Pragma("GCC unroll 4") for (int j = 0; j < RB; j++) {
        float var = vsum(&acc[j]);
        const float *xr = x + j * n;
        for (size_t i = nv; i < n; i++)
            var += (xr[i] - mu[j]) * (xr[i] - mu[j]);
        var /= (float)C;
        rs[j] = 1.0f / sqrtf(var + 1e-5f);
    }
    _Pragma("GCC unroll 4") for (int j = 0; j < RB; j++) {
        const float *xr = x + j * n;
        float *yr = y + j * n;
        for (size_t i = 0; i < nv; i += VL)
            VSTORE(yr + i, (VLOAD(xr + i) - mu[j]) * rs[j] * VLOAD(w + i) + VLOAD(b + i));
        for (size_t i = nv; i < n; i++)
            yr[i] = (xr[i] - mu[j]) * rs[j] * w[i] + b[i];
        if (mean)
            mean[j] = mu[j];
        if (rstd)
            rstd[j] = rs[j];
    }
}

static KFN void SFX(layernorm_forward)(float *y, float *mean, float *rstd, const float *x,
                                       const float *w, const float *b, size_t B, int C) {
    size_t n = (size_t)C, r = 0;
#define LN_AT(p) ((p) ? (p) + r : NULL)
#define LN_ROWS(k) SFX(layernorm_rows)(y + r * n, LN_AT(mean), LN_AT(rstd), x + r * n, w, b, C, k)
    for (; r + 4 <= B; r += 4)
        LN_ROWS(4);
    switch (B - r) { /* the last 1-3 rows together (a tile of 6 rows: 4 + 2) */
    case 3:
        LN_ROWS(3);
        break;
    case 2:
        LN_ROWS(2);
        break;
    case 1:
        LN_ROWS(1);
        break;
    }
#undef LN_ROWS
#undef LN_AT
}

/* RMSNorm of RB rows at once (y = x rs w, rs = 1 / sqrt(mean(x^2) + eps)), each row's
 * operations exactly as one row alone, the rows' chains interleaved as in layernorm_rows. y may
 * be x: every row's sum is taken before any row is written. */
static inline __attribute__((always_inline)) KFN void SFX(rmsnorm_rows)(float *y, float *rstd,
                                                                        const float *x,
                                                                        const float *w, int C,
                                                                        float eps, const int RB) {
    size_t n = (size_t)C, nv = n / VL * VL;
    float rs[4];
    vf acc[4];
    _Pragma("GCC unroll 4") for (int j = 0; j < RB; j++) acc[j] = (vf){0};
    for (size_t i = 0; i < nv; i += VL)
        _Pragma("GCC unroll 4") for (int j = 0; j < RB; j++) {
            vf t = VLOAD(x + j * n + i);
            acc[j] += t * t;
        }
    _Pragma("GCC unroll 4") for (int j = 0; j < RB; j++) {
        const float *xr = x + j * n;
        float ss = vsum(&acc[j]);
        for (size_t i = nv; i < n; i++)
            ss += xr[i] * xr[i];
        rs[j] = 1.0f / sqrtf(ss / (float)C + eps);
    }
    _Pragma("GCC unroll 4") for (int j = 0; j < RB; j++) {
        const float *xr = x + j * n;
        float *yr = y + j * n;
        for (size_t i = 0; i < nv; i += VL)
            VSTORE(yr + i, VLOAD(xr + i) * rs[j] * VLOAD(w + i));
        for (size_t i = nv; i < n; i++)
            yr[i] = xr[i] * rs[j] * w[i];
        if (rstd)
            rstd[j] = rs[j];
    }
}

static KFN void SFX(rmsnorm_forward)(float *y, float *rstd, const float *x, const float *w,
                                     size_t B, int C, float eps) {
    size_t n = (size_t)C, r = 0;
#define RMS_ROWS(k) SFX(rmsnorm_rows)(y + r * n, rstd ? rstd + r : NULL, x + r * n, w, C, eps, k)
    for (; r + 4 <= B; r += 4)
        RMS_ROWS(4);
    switch (B - r) {
    case 3:
        RMS_ROWS(3);
        break;
    case 2:
        RMS_ROWS(2);
        break;
    case 1:
        RMS_ROWS(1);
        break;
    }
#undef RMS_ROWS
}

/* Rows [0, RB) of layernorm_backward_body: the row sums of RB rows interleaved (as in
 * layernorm_rows), then each row's outputs in row order, so dw and db receive the rows' terms
 * in the order one row at a time gives (the same bits). */
static inline __attribute__((always_inline)) KFN void
SFX(layernorm_backward_rows)(float *dx, float *dx2, float *dw, float *db, const float *dy,
                             const float *x, const float *w, const float *mean, const float *rstd,
                             int C, const int set, const int RB) {
    size_t n = (size_t)C, nv = n / VL * VL;
    /* dx = rstd * (dn - mean(dn) - xhat * mean(dn * xhat)), dn = dy * w */
    vf a0[4], a1[4];
    float m0[4], m1[4];
    _Pragma("GCC unroll 4") for (int j = 0; j < RB; j++) a0[j] = a1[j] = (vf){0};
    for (size_t i = 0; i < nv; i += VL)
        _Pragma("GCC unroll 4") for (int j = 0; j < RB; j++) {
            vf dn = VLOAD(dy + j * n + i) * VLOAD(w + i);
            a0[j] += dn;
            a1[j] += dn * ((VLOAD(x + j * n + i) - mean[j]) * rstd[j]);
        }
    _Pragma("GCC unroll 4") for (int j = 0; j < RB; j++) {
        const float *xr = x + j * n, *g = dy + j * n;
        float mu = mean[j], rs = rstd[j];
        float s0 = vsum(&a0[j]), s1 = vsum(&a1[j]);
        for (size_t i = nv; i < n; i++) {
            float dn = g[i] * w[i];
            s0 += dn;
            s1 += dn * ((xr[i] - mu) * rs);
        }
        m0[j] = s0 / (float)C;
        m1[j] = s1 / (float)C;
    }
    for (int j = 0; j < RB; j++) {
        const float *xr = x + j * n, *g = dy + j * n;
        float mu = mean[j], rs = rstd[j];
        float *dxr = dx ? dx + j * n : NULL, *dx2r = dx2 ? dx2 + j * n : NULL;
        size_t i = 0;
        for (; i < nv; i += VL) {
            vf gi = VLOAD(g + i), xhat = (VLOAD(xr + i) - mu) * rs;
            if (dxr) {
                vf gx = (gi * VLOAD(w + i) - m0[j] - xhat * m1[j]) * rs, acc = {0};
                if (!set)
                    acc = VLOAD(dxr + i);
                VSTORE(dxr + i, acc + gx);
                if (set && dx2r) {
                    const vf zero = {0};
                    VSTORE(dx2r + i, zero + gx);
                }
            }
            if (dw)
                VSTORE(dw + i, VLOAD(dw + i) + gi * xhat);
            if (db)
                VSTORE(db + i, VLOAD(db + i) + gi);
        }
        for (; i < n; i++) {
            float xhat = (xr[i] - mu) * rs;
            if (dxr) {
                float gv = (g[i] * w[i] - m0[j] - xhat * m1[j]) * rs;
                dxr[i] = (set ? 0.0f : dxr[i]) + gv;
                if (set && dx2r)
                    dx2r[i] = 0.0f + gv;
            }
            if (dw)
                dw[i] += g[i] * xhat;
            if (db)
                db[i] += g[i];
        }
    }
}

/* set: dx = (and dx2, if not NULL, =) 0 + the input gradient, the bits of adding it into
 * zeros (no memset and copy around it); else dx +=. */
static inline KFN void SFX(layernorm_backward_body)(float *dx, float *dx2, float *dw, float *db,
                                                    const float *dy, const float *x, const float *w,
                                                    const float *mean, const float *rstd, size_t B,
                                                    int C, const int set) {
    size_t n = (size_t)C, r = 0;
#define LNB_AT(p) ((p) ? (p) + r * n : NULL)
#define LNB_ROWS(k)                                                                                \
    SFX(layernorm_backward_rows)                                                                   \
    (LNB_AT(dx), LNB_AT(dx2), dw, db, dy + r * n, x + r * n, w, mean + r, rstd + r, C, set, k)
    for (; r + 4 <= B; r += 4)
        LNB_ROWS(4);
    switch (B - r) { /* the last 1-3 rows together */
    case 3:
        LNB_ROWS(3);
        break;
    case 2:
        LNB_ROWS(2);
        break;
    case 1:
        LNB_ROWS(1);
        break;
    }
#undef LNB_ROWS
#undef LNB_AT
}

static KFN void SFX(layernorm_backward)(float *dx, float *dw, float *db, const float *dy,
                                        const float *x, const float *w, const float *mean,
                                        const float *rstd, size_t B, int C) {
    SFX(layernorm_backward_body)(dx, NULL, dw, db, dy, x, w, mean, rstd, B, C, 0);
}

static KFN void SFX(layernorm_backward_set)(float *dx, float *dx2, float *dw, float *db,
                                            const float *dy, const float *x, const float *w,
                                            const float *mean, const float *rstd, size_t B, int C) {
    SFX(layernorm_backward_body)(dx, dx2, dw, db, dy, x, w, mean, rstd, B, C, 1);
}

static KFN void SFX(silu_forward)(float *y, float *sig, const float *x, size_t n) {
    size_t nv = n / VL * VL, tail = n - nv;
    vf v, s;
    for (size_t i = 0; i < nv; i += VL) {
        v = VLOAD(x + i);
        vsigmoid(&s, &v);
        if (sig)
            VSTORE(sig + i, s);
        VSTORE(y + i, v * s);
    }
    if (tail) {
        vload_n(&v, x + nv, tail);
        vsigmoid(&s, &v);
        v *= s;
        if (sig)
            memcpy(sig + nv, &s, tail * sizeof *sig);
        memcpy(y + nv, &v, tail * sizeof *y);
    }
}

/* y = silu(g) q, the SwiGLU gate (sig = sigmoid(g) if not NULL): silu_forward's bits, times q */
static KFN void SFX(swiglu_forward)(float *y, float *sig, const float *g, const float *q,
                                    size_t n) {
    size_t nv = n / VL * VL, tail = n - nv;
    vf v, s, w;
    for (size_t i = 0; i < nv; i += VL) {
        v = VLOAD(g + i);
        vsigmoid(&s, &v);
        if (sig)
            VSTORE(sig + i, s);
        VSTORE(y + i, v * s * VLOAD(q + i));
    }
    if (tail) {
        vload_n(&v, g + nv, tail);
        vload_n(&w, q + nv, tail);
        vsigmoid(&s, &v);
        v = v * s * w;
        if (sig)
            memcpy(sig + nv, &s, tail * sizeof *sig);
        memcpy(y + nv, &v, tail * sizeof *y);
    }
}

static KFN void SFX(silu_backward)(float *dx, const float *dy, const float *x, const float *sig,
                                   size_t n) {
    size_t nv = n / VL * VL;
    for (size_t i = 0; i < nv; i += VL) {
        vf s = VLOAD(sig + i);
        VSTORE(dx + i, VLOAD(dx + i) + VLOAD(dy + i) * s * (1.0f + VLOAD(x + i) * (1.0f - s)));
    }
    for (size_t i = nv; i < n; i++) {
        float s = sig[i];
        dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

/* y = y s (1 + x (1 - s)): silu_backward's product in place (trc_gemm's DSILU) */
static KFN void SFX(dsilu_inplace)(float *y, const float *x, const float *sig, size_t n) {
    size_t nv = n / VL * VL;
    for (size_t i = 0; i < nv; i += VL) {
        vf s = VLOAD(sig + i);
        VSTORE(y + i, VLOAD(y + i) * s * (1.0f + VLOAD(x + i) * (1.0f - s)));
    }
    for (size_t i = nv; i < n; i++) {
        float s = sig[i];
        y[i] = y[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

static KFN void SFX(residual_forward)(float *y, const float *a, const float *b, size_t n) {
    size_t nv = n / VL * VL;
    for (size_t i = 0; i < nv; i += VL)
        VSTORE(y + i, VLOAD(a + i) + VLOAD(b + i));
    for (size_t i = nv; i < n; i++)
        y[i] = a[i] + b[i];
}

static KFN void SFX(residual_backward)(float *dx, const float *dy, size_t n) {
    size_t nv = n / VL * VL;
    for (size_t i = 0; i < nv; i += VL)
        VSTORE(dx + i, VLOAD(dx + i) + VLOAD(dy + i));
    for (size_t i = nv; i < n; i++)
        dx[i] += dy[i];
}

/* y: [B, out] = x: [B, in] Wd^T + b (b may be NULL), every sum in double and rounded once to
 * float (nn_layers.h: the two-level networks' encoder and decoder stacks). Wd: W widened and
 * packed in panels of TRC_DPANEL outputs stored input by input (zero padded), as
 * linear_packed.h packs floats. Every step is a fused multiply-add (fma: rounded once), so every
 * path gives the same bits: the AVX paths' vector FMAs, the portable path's fma(). Tiles of 4
 * rows x 2 panels: 8 independent chains. */
typedef double vd __attribute__((vector_size(TRC_DPANEL * 8)));
typedef double vdu __attribute__((vector_size(TRC_DPANEL * 8), aligned(8), may_alias));

/* acc += x w, lane by lane, each rounded once (the compiler makes it one vector FMA where the
 * path has them) */
static inline KFN void vd_fma(vd *acc, double x, const vd *w) {
    for (int j = 0; j < TRC_DPANEL; j++)
        (*acc)[j] = __builtin_fma(x, (*w)[j], (*acc)[j]);
}

/* xd: the R rows of x widened to double (in apart), or NULL: then converted at every use (a
 * conversion and a register broadcast per row and k: the broadcasts shared the FMA ports) */
static inline KFN void SFX(dtile)(float *y, const float *x, const double *xd, const double *Wd,
                                  const float *b, int R, int P, int p0, int in, int out) {
    vd acc[4][2];
    for (int q = 0; q < P; q++) {
        vd init = {0};
        for (int j = 0; j < TRC_DPANEL; j++) {
            int o = (p0 + q) * TRC_DPANEL + j;
            init[j] = b && o < out ? (double)b[o] : 0.0;
        }
        for (int r = 0; r < R; r++)
            acc[r][q] = init;
    }
    const double *w0 = Wd + (size_t)p0 * in * TRC_DPANEL;
    const double *w1 = w0 + (size_t)in * TRC_DPANEL;
    if (R == 4 && P == 2 && xd)
        for (int i = 0; i < in; i++) {
            vd a = *(const vdu *)(const void *)(w0 + (size_t)i * TRC_DPANEL);
            vd c = *(const vdu *)(const void *)(w1 + (size_t)i * TRC_DPANEL);
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                double xv = xd[(size_t)r * in + i];
                vd_fma(&acc[r][0], xv, &a);
                vd_fma(&acc[r][1], xv, &c);
            }
        }
    else if (R == 4 && P == 2)
        for (int i = 0; i < in; i++) {
            vd a = *(const vdu *)(const void *)(w0 + (size_t)i * TRC_DPANEL);
            vd c = *(const vdu *)(const void *)(w1 + (size_t)i * TRC_DPANEL);
#pragma GCC unroll 4
            for (int r = 0; r < 4; r++) {
                double xv = x[(size_t)r * in + i];
                vd_fma(&acc[r][0], xv, &a);
                vd_fma(&acc[r][1], xv, &c);
            }
        }
    else
        for (int i = 0; i < in; i++)
            for (int q = 0; q < P; q++) {
                vd a = *(const vdu *)(const void *)((q ? w1 : w0) + (size_t)i * TRC_DPANEL);
                for (int r = 0; r < R; r++)
                    vd_fma(&acc[r][q], (double)x[(size_t)r * in + i], &a);
            }
    for (int r = 0; r < R; r++)
        for (int q = 0; q < P; q++)
            for (int j = 0; j < TRC_DPANEL; j++) {
                int o = (p0 + q) * TRC_DPANEL + j;
                if (o < out)
                    y[(size_t)r * out + o] = (float)acc[r][q][j];
            }
}

static KFN void SFX(dlinear_forward)(float *y, const float *x, const double *Wd, const float *b,
                                     size_t B, int in, int out) {
    int np = (out + TRC_DPANEL - 1) / TRC_DPANEL;
    enum { XD_MAX = 4 * 512 };
    double xd[XD_MAX]; /* 4 rows widened once, when they fit */
    for (size_t r0 = 0; r0 < B; r0 += 4) {
        int R = B - r0 < 4 ? (int)(B - r0) : 4, wide = R == 4 && 4 * (size_t)in <= XD_MAX;
        const float *xr = x + r0 * (size_t)in;
        for (size_t i = 0; wide && i < 4 * (size_t)in; i++)
            xd[i] = xr[i];
        for (int p0 = 0; p0 < np; p0 += 2)
            SFX(dtile)
        (y + r0 * (size_t)out, xr, wide ? xd : NULL, Wd, b, R, np - p0 < 2 ? 1 : 2, p0, in, out);
    }
}

/* C[M, N] = (beta ? C : 0) + A B in double: A(m, k) = A[m rsa + k csa], B row-major (ldb),
 * every sum in k order, one fused multiply-add per term (fma: the same bits on every path).
 * Tiles of 4 rows x 2 panels of 8 (8 independent chains); the columns past the last full panel
 * as one zero-padded panel (one by one, their serial chains took a third of the time). The
 * two-level networks' double-precision stacks (linear_precise.c): OpenBLAS's dgemm ran its generic
 * kernels on this CPU and took half of a two-level training step. */
static KFN void SFX(dgemm)(double *C, size_t ldc, const double *A, size_t rsa, size_t csa,
                           const double *B, size_t ldb, int M, int N, int K, int beta) {
    int nf = N / TRC_DPANEL * TRC_DPANEL;
    for (int m0 = 0; m0 < M; m0 += 4) {
        int R = M - m0 < 4 ? M - m0 : 4;
        const double *Am = A + (size_t)m0 * rsa;
        for (int n0 = 0; n0 < nf; n0 += 2 * TRC_DPANEL) {
            int P = nf - n0 >= 2 * TRC_DPANEL ? 2 : 1;
            vd acc[4][2];
            for (int r = 0; r < R; r++)
                for (int q = 0; q < P; q++) {
                    vd z = {0};
                    if (beta)
                        z = *(const vdu *)(const void *)(C + (size_t)(m0 + r) * ldc + n0 +
                                                         q * TRC_DPANEL);
                    acc[r][q] = z;
                }
            if (R == 4 && P == 2)
                for (int k = 0; k < K; k++) {
                    const double *bk = B + (size_t)k * ldb + n0;
                    vd b0 = *(const vdu *)(const void *)bk;
                    vd b1 = *(const vdu *)(const void *)(bk + TRC_DPANEL);
#pragma GCC unroll 4
                    for (int r = 0; r < 4; r++) {
                        double a = Am[(size_t)r * rsa + (size_t)k * csa];
                        vd_fma(&acc[r][0], a, &b0);
                        vd_fma(&acc[r][1], a, &b1);
                    }
                }
            else
                for (int k = 0; k < K; k++)
                    for (int q = 0; q < P; q++) {
                        vd b =
                            *(const vdu *)(const void *)(B + (size_t)k * ldb + n0 + q * TRC_DPANEL);
                        for (int r = 0; r < R; r++)
                            vd_fma(&acc[r][q], Am[(size_t)r * rsa + (size_t)k * csa], &b);
                    }
            for (int r = 0; r < R; r++)
                for (int q = 0; q < P; q++)
                    *(vdu *)(void *)(C + (size_t)(m0 + r) * ldc + n0 + q * TRC_DPANEL) = acc[r][q];
        }
        if (nf < N) { /* the last N - nf columns: B's rows copied into a zero-padded panel */
            int nt = N - nf;
            double tb[64 * TRC_DPANEL];
            vd acc[4];
            for (int r = 0; r < R; r++) {
                vd z = {0};
                for (int j = 0; j < nt && beta; j++)
                    z[j] = C[(size_t)(m0 + r) * ldc + nf + j];
                acc[r] = z;
            }
            for (int k0 = 0; k0 < K; k0 += 64) {
                int kc = K - k0 < 64 ? K - k0 : 64;
                for (int k = 0; k < kc; k++)
                    for (int j = 0; j < TRC_DPANEL; j++)
                        tb[k * TRC_DPANEL + j] = j < nt ? B[(size_t)(k0 + k) * ldb + nf + j] : 0.0;
                for (int k = 0; k < kc; k++) {
                    vd b = *(const vdu *)(const void *)(tb + k * TRC_DPANEL);
                    for (int r = 0; r < R; r++)
                        vd_fma(&acc[r], Am[(size_t)r * rsa + (size_t)(k0 + k) * csa], &b);
                }
            }
            for (int r = 0; r < R; r++)
                for (int j = 0; j < nt; j++)
                    C[(size_t)(m0 + r) * ldc + nf + j] = acc[r][j];
        }
    }
}
