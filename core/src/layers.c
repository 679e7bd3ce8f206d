/* Forward/backward of the TRC layer kinds over float arrays; see layers.h. Linear layers are one
 * OpenBLAS call each (weights stay in PyTorch's [out, in] order: y = x W^T is sgemm with W
 * transposed, and a single row is sgemv). Element-wise loops are written so the compiler can
 * vectorize them. */
#include "layers.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

void trc_linear_forward(float *y, const float *x, const float *W, const float *b, size_t B,
                        int in, int out)
{
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
                               int out)
{
    if (B == 1)
        cblas_sgemv(CblasRowMajor, CblasTrans, out, in, 1.0f, W, in, dy, 1, 1.0f, dx, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, in, out, 1.0f, dy, out, W,
                    in, 1.0f, dx, in);
}

void trc_linear_backward_params(float *dW, float *db, const float *dy, const float *x, size_t B,
                                int in, int out)
{
    if (dW)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, (int)B, 1.0f, dy, out, x,
                    in, 1.0f, dW, in);
    if (db)
        for (size_t r = 0; r < B; r++) {
            const float *g = dy + r * (size_t)out;
            for (int o = 0; o < out; o++)
                db[o] += g[o];
        }
}

void trc_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                         const float *W, size_t B, int in, int out)
{
    if (dx)
        trc_linear_backward_input(dx, dy, W, B, in, out);
    trc_linear_backward_params(dW, db, dy, x, B, in, out);
}

/* Sum of v[0..n) with 8 independent partial sums: short dependency chains, vectorizable, and
 * more accurate than one running float sum. */
static float sum8(const float *v, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += v[i + k];
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++)
        s += v[i];
    return s;
}

/* Sum of (v[i] - c)^2, as sum8. */
static float sqdev8(const float *v, float c, int n)
{
    float acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) {
            float t = v[i + k] - c;
            acc[k] += t * t;
        }
    float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) {
        float t = v[i] - c;
        s += t * t;
    }
    return s;
}

void trc_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                           const float *b, size_t B, int C)
{
    for (size_t r = 0; r < B; r++) {
        const float *xr = x + r * (size_t)C;
        float *yr = y + r * (size_t)C;
        /* two passes: the centered variance does not lose precision to cancellation */
        float mu = sum8(xr, C) / (float)C;
        float var = sqdev8(xr, mu, C) / (float)C;
        float rs = 1.0f / sqrtf(var + TRC_LN_EPS);
        for (int i = 0; i < C; i++)
            yr[i] = (xr[i] - mu) * rs * w[i] + b[i];
        if (mean)
            mean[r] = mu;
        if (rstd)
            rstd[r] = rs;
    }
}

void trc_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, const float *mean, const float *rstd, size_t B, int C)
{
    for (size_t r = 0; r < B; r++) {
        const float *xr = x + r * (size_t)C, *g = dy + r * (size_t)C;
        float mu = mean[r], rs = rstd[r];
        /* dx = rstd * (dn - mean(dn) - xhat * mean(dn * xhat)), dn = dy * w */
        float a0[8] = {0}, a1[8] = {0};
        int i = 0;
        for (; i + 8 <= C; i += 8)
            for (int k = 0; k < 8; k++) {
                float dn = g[i + k] * w[i + k];
                a0[k] += dn;
                a1[k] += dn * ((xr[i + k] - mu) * rs);
            }
        float s0 = ((a0[0] + a0[1]) + (a0[2] + a0[3])) + ((a0[4] + a0[5]) + (a0[6] + a0[7]));
        float s1 = ((a1[0] + a1[1]) + (a1[2] + a1[3])) + ((a1[4] + a1[5]) + (a1[6] + a1[7]));
        for (; i < C; i++) {
            float dn = g[i] * w[i];
            s0 += dn;
            s1 += dn * ((xr[i] - mu) * rs);
        }
        float m0 = s0 / (float)C, m1 = s1 / (float)C;
        for (i = 0; i < C; i++) {
            float xhat = (xr[i] - mu) * rs;
            if (dx)
                dx[r * (size_t)C + i] += (g[i] * w[i] - m0 - xhat * m1) * rs;
            if (dw)
                dw[i] += g[i] * xhat;
            if (db)
                db[i] += g[i];
        }
    }
}

void trc_silu_forward(float *y, float *sig, const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float s = 1.0f / (1.0f + expf(-v));
        if (sig)
            sig[i] = s;
        y[i] = v * s;
    }
}

void trc_silu_backward(float *dx, const float *dy, const float *x, const float *sig, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float s = sig[i];
        dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

void trc_tanhscale_forward(float *y, const float *x, float scale, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = scale * tanhf(x[i]);
}

void trc_tanhscale_backward(float *dx, const float *dy, const float *y, float scale, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float t = y[i] / scale;
        dx[i] += dy[i] * scale * (1.0f - t * t);
    }
}

void trc_clamp_forward(float *y, const float *x, float bound, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        y[i] = v < -bound ? -bound : (v > bound ? bound : v);
    }
}

void trc_clamp_backward(float *dx, const float *dy, const float *x, float bound, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (x[i] >= -bound && x[i] <= bound)
            dx[i] += dy[i];
}

void trc_residual_forward(float *y, const float *a, const float *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        y[i] = a[i] + b[i];
}

void trc_residual_backward(float *dx, const float *dy, size_t n)
{
    for (size_t i = 0; i < n; i++)
        dx[i] += dy[i];
}
