/* The SwiGLU gate of the TRM-style FFN (model-v2.md section 3): fc_in's outputs are [g ; q],
 * gate first, and the FFN's hidden layer is silu(g) * q. */
#include "nn_layers.h"

#include "kernels/kernels.h"

void trc_swiglu_forward(float *S, float *sig, const float *G, size_t B, int width) {
    size_t n = (size_t)width;
    const trc_kernel_ops *ops = trc_kernels();
    /* one pass (silu, then a pass multiplying by q, were 12% of a trm_style plan) */
    for (size_t r = 0; r < B; r++) {
        const float *g = G + r * 2 * n;
        ops->swiglu_forward(S + r * n, sig ? sig + r * n : NULL, g, g + n, n);
    }
}

void trc_swiglu_backward(float *dG, const float *dS, const float *G, const float *sig, size_t B,
                         int width) {
    size_t n = (size_t)width;
    for (size_t r = 0; r < B; r++) {
        const float *g = G + r * 2 * n, *q = g + n, *sg = sig + r * n, *ds = dS + r * n;
        float *dg = dG + r * 2 * n, *dq = dg + n;
        for (size_t i = 0; i < n; i++) {
            float s = sg[i], silu = g[i] * s;
            dq[i] += ds[i] * silu;
            dg[i] += ds[i] * q[i] * s * (1.0f + g[i] * (1.0f - s));
        }
    }
}
