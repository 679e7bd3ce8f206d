/* Linear layers summed in double (see nn_layers.h for why). Plain loops: the stacks are small
 * (at most (d+U) x h per row), so they stay a minor part of a step. */
#include "nn_layers.h"

void trc_linear_precise_forward(float *y, const float *x, const float *W, const float *b, size_t B,
                                int in, int out) {
    for (size_t r = 0; r < B; r++) {
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
