/* Linear layers summed in double (see nn_layers.h for why). From 8 rows the operands are
 * widened to double and multiplied by the kernels' dgemm (the widening costs one pass over the
 * weights, which fewer rows would not amortize; OpenBLAS's dgemm ran its generic kernels on
 * this project's CPU: half of a two-level training step); below, plain loops. Either way each
 * output is one double sum rounded once to float. */
#include <stdlib.h>

#include "kernels/kernels.h"
#include "nn_layers.h"

#define DGEMM_MIN 8

/* dst: [n] doubles <- src: [n] floats */
static void widen(double *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i];
}

size_t trc_linear_dpacked_size(int in, int out) {
    return (size_t)((out + TRC_DPANEL - 1) / TRC_DPANEL) * (size_t)in * TRC_DPANEL;
}

void trc_linear_dpack(double *Wd, const float *W, int in, int out) {
    int np = (out + TRC_DPANEL - 1) / TRC_DPANEL;
    for (int p = 0; p < np; p++)
        for (int i = 0; i < in; i++)
            for (int j = 0; j < TRC_DPANEL; j++) {
                int o = p * TRC_DPANEL + j;
                Wd[((size_t)p * in + i) * TRC_DPANEL + j] = o < out ? W[(size_t)o * in + i] : 0.0;
            }
}

void trc_linear_dpacked_forward(float *y, const float *x, const double *Wd, const float *b,
                                size_t B, int in, int out) {
    trc_kernels()->dlinear_forward(y, x, Wd, b, B, in, out);
}

void trc_linear_precise_forward(float *y, const float *x, const float *W, const float *b, size_t B,
                                int in, int out) {
    size_t nx = B * (size_t)in, nw = (size_t)out * in, ny = B * (size_t)out;
    double *buf = B >= DGEMM_MIN ? malloc((nx + nw + ny) * sizeof *buf) : NULL;
    if (buf) {
        double *xd = buf, *wt = buf + nx, *yd = wt + nw;
        widen(xd, x, nx);
        for (int o = 0; o < out; o++) /* W^T, row-major [in, out] */
            for (int i = 0; i < in; i++)
                wt[(size_t)i * out + o] = W[(size_t)o * in + i];
        for (size_t r = 0; r < B; r++)
            for (int o = 0; o < out; o++)
                yd[r * (size_t)out + o] = b ? b[o] : 0.0;
        trc_kernels()->dgemm(yd, (size_t)out, xd, (size_t)in, 1, wt, (size_t)out, (int)B, out, in,
                             1);
        for (size_t i = 0; i < ny; i++)
            y[i] = (float)yd[i];
        free(buf);
        return;
    }
    for (size_t r = 0; r < B; r++) { /* few rows (or no memory): plain loops */
        const float *xr = x + r * (size_t)in;
        for (int o = 0; o < out; o++) {
            const float *w = W + (size_t)o * in;
            double a0 = b ? b[o] : 0.0, a1 = 0.0;
            int i = 0;
            for (; i + 1 < in; i += 2) {
                a0 += (double)xr[i] * w[i];
                a1 += (double)xr[i + 1] * w[i + 1];
            }
            if (i < in)
                a0 += (double)xr[i] * w[i];
            y[r * (size_t)out + o] = (float)(a0 + a1);
        }
    }
}

void trc_linear_precise_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                                 const float *W, size_t B, int in, int out) {
    size_t nx = B * (size_t)in, nw = (size_t)out * in, ng = B * (size_t)out;
    double *buf = B >= DGEMM_MIN ? malloc((2 * nx + 2 * nw + ng) * sizeof *buf) : NULL;
    if (buf) {
        double *xd = buf, *wd = xd + nx, *gd = wd + nw, *dwd = gd + ng, *dxd = dwd + nw;
        widen(xd, x, nx);
        widen(wd, W, nw);
        widen(gd, dy, ng);
        /* dW = dY^T X, dx = dY W */
        const trc_kernel_ops *k = trc_kernels();
        k->dgemm(dwd, (size_t)in, gd, 1, (size_t)out, xd, (size_t)in, out, in, (int)B, 0);
        for (size_t i = 0; i < nw; i++)
            dW[i] += (float)dwd[i];
        if (dx) {
            widen(dxd, dx, nx);
            k->dgemm(dxd, (size_t)in, gd, (size_t)out, 1, wd, (size_t)in, (int)B, in, out, 1);
            for (size_t i = 0; i < nx; i++)
                dx[i] = (float)dxd[i];
        }
        for (int o = 0; o < out; o++) {
            double s = 0.0;
            for (size_t r = 0; r < B; r++)
                s += gd[r * (size_t)out + o];
            db[o] += (float)s;
        }
        free(buf);
        return;
    }
    if (dx)
        for (size_t r = 0; r < B; r++) {
            const float *g = dy + r * (size_t)out;
            for (int i = 0; i < in; i++) {
                double a = dx[r * (size_t)in + i];
                for (int o = 0; o < out; o++)
                    a += (double)g[o] * W[(size_t)o * in + i];
                dx[r * (size_t)in + i] = (float)a;
            }
        }
    for (int o = 0; o < out; o++) {
        double s = 0.0;
        for (size_t r = 0; r < B; r++)
            s += dy[r * (size_t)out + o];
        db[o] += (float)s;
        float *dw = dW + (size_t)o * in;
        for (int i = 0; i < in; i++) {
            double a = 0.0;
            for (size_t r = 0; r < B; r++)
                a += (double)dy[r * (size_t)out + o] * x[r * (size_t)in + i];
            dw[i] += (float)a;
        }
    }
}
