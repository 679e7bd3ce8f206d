/* Forward/backward of the TRC layer kinds over float arrays; see layers.h. Linear layers are one
 * OpenBLAS call each (weights stay in PyTorch's [out, in] order: y = x W^T is sgemm with W
 * transposed, and a single row is sgemv). Element-wise loops are written so the compiler can
 * vectorize them. */
#include "layers.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

void trc_linear_forward(float *y, const float *x, const float *W, const float *b, size_t B, int in,
                        int out) {
    float beta = 0.0f;
    if (b) {
        for (size_t r = 0; r < B; r++)
            memcpy(y + r * (size_t)out, b, (size_t)out * sizeof *y);
        beta = 1.0f;
    }
    if (B == 1) /* a single row: sgemv avoids sgemm's packing, which dominates at this size */
        cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, W, in, x, 1, beta, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, out, in, 1.0f, x, in, W, in,
                    beta, y, out);
}

void trc_linear_backward_input(float *dx, const float *dy, const float *W, size_t B, int in,
                               int out) {
    if (B == 1)
        cblas_sgemv(CblasRowMajor, CblasTrans, out, in, 1.0f, W, in, dy, 1, 1.0f, dx, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, in, out, 1.0f, dy, out, W,
                    in, 1.0f, dx, in);
}

void trc_linear_backward_params(float *dW, float *db, const float *dy, const float *x, size_t B,
                                int in, int out) {
    if (dW)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, (int)B, 1.0f, dy, out, x, in,
                    1.0f, dW, in);
    if (db)
        for (size_t r = 0; r < B; r++) {
            const float *g = dy + r * (size_t)out;
            for (int o = 0; o < out; o++)
                db[o] += g[o];
        }
}

void trc_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                         const float *W, size_t B, int in, int out) {
    if (dx)
        trc_linear_backward_input(dx, dy, W, B, in, out);
    trc_linear_backward_params(dW, db, dy, x, B, in, out);
}

/* Element-wise kernels use 8-lane vectors (GCC/clang vector extensions: portable C that maps to
 * one AVX register, or two SSE ones) and, on x86-64, are compiled twice -- for x86-64-v3 (AVX2 +
 * FMA) and the baseline -- with the best chosen at load time. */
#if defined(__x86_64__) &&                                                                         \
    ((defined(__clang__) && __clang_major__ >= 16) || (!defined(__clang__) && __GNUC__ >= 12))
/* (clang before 16 names the dispatcher "f.ifunc" in C, so callers in other files do not
 * link: make fuzz builds with Debian 12's clang 14.) */
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SIMD_CLONES
#endif

typedef float vf __attribute__((vector_size(32)));
typedef int32_t vi __attribute__((vector_size(32)));
#define VL 8

/* Vectors are never passed to or returned from functions (that is ABI-dependent for 32-byte
 * vectors in the baseline build): loads and stores are macros over an unaligned, aliasing
 * vector type, the rest macros or functions working through pointers. */
typedef float vfu __attribute__((vector_size(32), aligned(4), may_alias));
#define VLOAD(p) (*(const vfu *)(const void *)(p))
#define VSTORE(p, v) (*(vfu *)(void *)(p) = (v))
#define VSUM(v) ((((v)[0] + (v)[1]) + ((v)[2] + (v)[3])) + (((v)[4] + (v)[5]) + ((v)[6] + (v)[7])))
/* m ? a : b lane-wise, m from a comparison (all ones or zero) */
#define VSELECT(m, a, b) ((vf)(((vi)(a) & (m)) | ((vi)(b) & ~(m))))

/* *v = the first n < VL floats of p, the other lanes zero */
static inline void vload_n(vf *v, const float *p, size_t n) {
    memset(v, 0, sizeof *v);
    memcpy(v, p, n * sizeof *p);
}

/* *x = exp(*x), relative error ~2e-7 (Cephes expf): x = k ln2 + r, |r| <= ln2/2, a degree-6
 * polynomial for exp(r), 2^k built in the exponent bits. Arguments are clamped to
 * [-87.3, 88.3], where the result stays a normal float; NaN passes through. */
static inline void vexp(vf *xp) {
    const vf hi = {88.3f, 88.3f, 88.3f, 88.3f, 88.3f, 88.3f, 88.3f, 88.3f};
    const vf lo = -hi + 1.0f; /* -87.3 */
    vf x = *xp;
    x = VSELECT(x > hi, hi, x);
    x = VSELECT(x < lo, lo, x);
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    vf t = x * 1.44269504088896341f + magic;
    vf k = t - magic;
    vf r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    vf p = r * 1.9875691500e-4f + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    vf y = p * (r * r) + r + 1.0f;
    vi e = ((vi)t - 0x4B400000 + 127) << 23; /* the low bits of t hold k */
    *xp = y * (vf)e;
}

/* *s = 1 / (1 + exp(-*x)); exactly 0 below -88, where the true value is not a normal float */
static inline void vsigmoid(vf *s, const vf *x) {
    const vf zero = {0};
    vf e = -*x;
    vexp(&e);
    *s = VSELECT(*x < -88.0f, zero, 1.0f / (1.0f + e));
}

SIMD_CLONES
void trc_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                           const float *b, size_t B, int C) {
    size_t n = (size_t)C, nv = n / VL * VL;
    for (size_t r = 0; r < B; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        /* two passes: the centered variance does not lose precision to cancellation */
        vf acc = {0};
        for (size_t i = 0; i < nv; i += VL)
            acc += VLOAD(xr + i);
        float mu = VSUM(acc);
        for (size_t i = nv; i < n; i++)
            mu += xr[i];
        mu /= (float)C;
        vf dev = {0};
        for (size_t i = 0; i < nv; i += VL) {
            vf t = VLOAD(xr + i) - mu;
            dev += t * t;
        }
        float var = VSUM(dev);
        for (size_t i = nv; i < n; i++)
            var += (xr[i] - mu) * (xr[i] - mu);
        var /= (float)C;
        float rs = 1.0f / sqrtf(var + TRC_LN_EPS);
        for (size_t i = 0; i < nv; i += VL)
            VSTORE(yr + i, (VLOAD(xr + i) - mu) * rs * VLOAD(w + i) + VLOAD(b + i));
        for (size_t i = nv; i < n; i++)
            yr[i] = (xr[i] - mu) * rs * w[i] + b[i];
        if (mean)
            mean[r] = mu;
        if (rstd)
            rstd[r] = rs;
    }
}

SIMD_CLONES
void trc_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, const float *mean, const float *rstd, size_t B, int C) {
    size_t n = (size_t)C, nv = n / VL * VL;
    for (size_t r = 0; r < B; r++) {
        const float *xr = x + r * n, *g = dy + r * n;
        float mu = mean[r], rs = rstd[r];
        /* dx = rstd * (dn - mean(dn) - xhat * mean(dn * xhat)), dn = dy * w */
        vf a0 = {0}, a1 = {0};
        for (size_t i = 0; i < nv; i += VL) {
            vf dn = VLOAD(g + i) * VLOAD(w + i);
            a0 += dn;
            a1 += dn * ((VLOAD(xr + i) - mu) * rs);
        }
        float s0 = VSUM(a0), s1 = VSUM(a1);
        for (size_t i = nv; i < n; i++) {
            float dn = g[i] * w[i];
            s0 += dn;
            s1 += dn * ((xr[i] - mu) * rs);
        }
        float m0 = s0 / (float)C, m1 = s1 / (float)C;
        size_t i = 0;
        for (; i < nv; i += VL) {
            vf gi = VLOAD(g + i), xhat = (VLOAD(xr + i) - mu) * rs;
            if (dx)
                VSTORE(dx + r * n + i,
                       VLOAD(dx + r * n + i) + (gi * VLOAD(w + i) - m0 - xhat * m1) * rs);
            if (dw)
                VSTORE(dw + i, VLOAD(dw + i) + gi * xhat);
            if (db)
                VSTORE(db + i, VLOAD(db + i) + gi);
        }
        for (; i < n; i++) {
            float xhat = (xr[i] - mu) * rs;
            if (dx)
                dx[r * n + i] += (g[i] * w[i] - m0 - xhat * m1) * rs;
            if (dw)
                dw[i] += g[i] * xhat;
            if (db)
                db[i] += g[i];
        }
    }
}

SIMD_CLONES
void trc_silu_forward(float *y, float *sig, const float *x, size_t n) {
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

SIMD_CLONES
void trc_silu_backward(float *dx, const float *dy, const float *x, const float *sig, size_t n) {
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

void trc_tanhscale_forward(float *y, const float *x, float scale, size_t n) {
    for (size_t i = 0; i < n; i++)
        y[i] = scale * tanhf(x[i]);
}

void trc_tanhscale_backward(float *dx, const float *dy, const float *y, float scale, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float t = y[i] / scale;
        dx[i] += dy[i] * scale * (1.0f - t * t);
    }
}

void trc_clamp_forward(float *y, const float *x, float bound, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = v < -bound ? -bound : (v > bound ? bound : v);
    }
}

void trc_clamp_backward(float *dx, const float *dy, const float *x, float bound, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (x[i] >= -bound && x[i] <= bound)
            dx[i] += dy[i];
}

SIMD_CLONES
void trc_residual_forward(float *y, const float *a, const float *b, size_t n) {
    size_t nv = n / VL * VL;
    for (size_t i = 0; i < nv; i += VL)
        VSTORE(y + i, VLOAD(a + i) + VLOAD(b + i));
    for (size_t i = nv; i < n; i++)
        y[i] = a[i] + b[i];
}

SIMD_CLONES
void trc_residual_backward(float *dx, const float *dy, size_t n) {
    size_t nv = n / VL * VL;
    for (size_t i = 0; i < nv; i += VL)
        VSTORE(dx + i, VLOAD(dx + i) + VLOAD(dy + i));
    for (size_t i = nv; i < n; i++)
        dx[i] += dy[i];
}
