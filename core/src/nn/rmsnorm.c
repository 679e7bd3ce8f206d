/* RMSNorm of the TRM-style blocks (model-v2.md section 3): no mean removal, no bias, eps inside
 * the root. Sums in float, in index order, as the reference's x.pow(2).mean(-1). */
#include <math.h>

#include "nn_layers.h"

void trc_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, size_t B, int C) {
    size_t n = (size_t)C;
    for (size_t r = 0; r < B; r++) {
        const float *xr = x + r * n;
        float *yr = y + r * n;
        float ss = 0.0f;
        for (size_t i = 0; i < n; i++)
            ss += xr[i] * xr[i];
        float rs = 1.0f / sqrtf(ss / (float)C + TRC_RMS_EPS);
        for (size_t i = 0; i < n; i++)
            yr[i] = xr[i] * rs * w[i];
        if (rstd)
            rstd[r] = rs;
    }
}

void trc_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                          const float *rstd, size_t B, int C) {
    size_t n = (size_t)C;
    for (size_t r = 0; r < B; r++) {
        const float *xr = x + r * n, *g = dy + r * n;
        float rs = rstd[r];
        /* y = x r w, r = (mean(x^2) + eps)^(-1/2): dx = r dn - r^3 x mean(dn x), dn = dy w */
        float s = 0.0f;
        for (size_t i = 0; i < n; i++)
            s += g[i] * w[i] * xr[i];
        float c = rs * rs * rs * s / (float)C;
        for (size_t i = 0; i < n; i++) {
            if (dx)
                dx[r * n + i] += rs * g[i] * w[i] - c * xr[i];
            if (dw)
                dw[i] += g[i] * xr[i] * rs;
        }
    }
}
