/* RMSNorm of the TRM-style blocks (model-v2.md section 3): no mean removal, no bias, eps inside
 * the root. The forward runs on the instruction-set path's kernel (kernels.h: sums in vector
 * lanes, four rows interleaved): in plain C, one serial chain of C adds a row, it was 12% of a
 * trm_style plan. The backward's row sums run in 16 partial sums (element i into sum i % 16, in
 * index order) added by a fixed tree. */
#include <math.h>

#include "kernels/kernels.h"
#include "nn_layers.h"

#define LANES 16

/* sum over i of a[i] * b[i] * c[i] in the order above */
static float dot3_lanes(const float *a, const float *b, const float *c, size_t n) {
    float s[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int j = 0; j < LANES; j++)
            s[j] += a[i + j] * b[i + j] * c[i + j];
    for (int j = 0; i < n; i++, j++)
        s[j] += a[i] * b[i] * c[i];
    for (int w = LANES / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++)
            s[j] += s[j + w];
    return s[0];
}

void trc_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, size_t B, int C) {
    trc_kernels()->rmsnorm_forward(y, rstd, x, w, B, C, TRC_RMS_EPS);
}

void trc_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                          const float *rstd, size_t B, int C) {
    size_t n = (size_t)C;
    for (size_t r = 0; r < B; r++) {
        const float *xr = x + r * n, *g = dy + r * n;
        float rs = rstd[r];
        /* y = x r w, r = (mean(x^2) + eps)^(-1/2): dx = r dn - r^3 x mean(dn x), dn = dy w */
        float c = rs * rs * rs * dot3_lanes(g, w, xr, n) / (float)C;
        if (dx)
            for (size_t i = 0; i < n; i++)
                dx[r * n + i] += rs * g[i] * w[i] - c * xr[i];
        if (dw)
            for (size_t i = 0; i < n; i++)
                dw[i] += g[i] * xr[i] * rs;
    }
}
