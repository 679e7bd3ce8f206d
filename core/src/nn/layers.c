/* Forward/backward of the TRC layer kinds over float arrays; see layers.h. Linear layers are one
 * trc_gemm each (kernels/kernels.h: weights stay in PyTorch's [out, in] order, y = x W^T reads W
 * transposed), and the element-wise layers the active instruction-set path's kernels; both are
 * chosen at run time (trc/cpu.h). tanh and clamp are plain loops the compiler vectorizes. */
#include "layers.h"

#include <math.h>
#include <string.h>

#include "kernels/kernels.h"

void trc_linear_forward_ex(float *y, const float *x, const float *W, const float *b,
                           const float *res, int silu, size_t B, int in, int out) {
    trc_gemm(&(trc_gemm_args){.M = (int)B,
                              .N = out,
                              .K = in,
                              .A = x,
                              .rsa = (size_t)in,
                              .csa = 1,
                              .B = W,
                              .ldb = (size_t)in,
                              .btrans = 1,
                              .C = y,
                              .ldc = (size_t)out,
                              .bias = b,
                              .res = res,
                              .ldr = (size_t)out,
                              .act = silu ? TRC_ACT_SILU : TRC_ACT_NONE});
}

void trc_linear_forward(float *y, const float *x, const float *W, const float *b, size_t B, int in,
                        int out) {
    trc_linear_forward_ex(y, x, W, b, NULL, 0, B, in, out);
}

void trc_linear_silu_forward(float *S, float *H, float *sig, const float *x, const float *W,
                             const float *b, size_t B, int in, int out) {
    trc_gemm(&(trc_gemm_args){.M = (int)B,
                              .N = out,
                              .K = in,
                              .A = x,
                              .rsa = (size_t)in,
                              .csa = 1,
                              .B = W,
                              .ldb = (size_t)in,
                              .btrans = 1,
                              .C = S,
                              .ldc = (size_t)out,
                              .bias = b,
                              .act = TRC_ACT_SILU,
                              .pre = H,
                              .sig = sig});
}

void trc_linear_backward_input(float *dx, const float *dy, const float *W, size_t B, int in,
                               int out) {
    /* B(k = o, n = i) = W[o, i]: W row-major is already B */
    trc_gemm(&(trc_gemm_args){.M = (int)B,
                              .N = in,
                              .K = out,
                              .A = dy,
                              .rsa = (size_t)out,
                              .csa = 1,
                              .B = W,
                              .ldb = (size_t)in,
                              .pstride = TRC_PANEL,
                              .C = dx,
                              .ldc = (size_t)in,
                              .beta = 1,
                              .cold = 1});
}

void trc_linear_backward_input_dsilu(float *dH, const float *dy, const float *W, const float *H,
                                     const float *sig, size_t B, int in, int out) {
    trc_gemm(&(trc_gemm_args){.M = (int)B,
                              .N = in,
                              .K = out,
                              .A = dy,
                              .rsa = (size_t)out,
                              .csa = 1,
                              .B = W,
                              .ldb = (size_t)in,
                              .pstride = TRC_PANEL,
                              .C = dH,
                              .ldc = (size_t)in,
                              .act = TRC_ACT_DSILU,
                              .pre = (float *)H,
                              .sig = (float *)sig,
                              .cold = 1});
}

void trc_linear_weight_grad(float *dW, float *db, const float *dy, size_t ldy, const float *x,
                            size_t B, int in, int out, int beta) {
    if (dW) /* A(m = o, k = r) = dy[r, o]; B(k = r, n = i) = x[r, i] */
        trc_gemm(&(trc_gemm_args){.M = out,
                                  .N = in,
                                  .K = (int)B,
                                  .A = dy,
                                  .rsa = 1,
                                  .csa = ldy,
                                  .B = x,
                                  .ldb = (size_t)in,
                                  .pstride = TRC_PANEL,
                                  .C = dW,
                                  .ldc = (size_t)in,
                                  .beta = beta,
                                  .cold = 1});
    if (db) {
        if (!beta)
            memset(db, 0, (size_t)out * sizeof *db);
        /* row by row, db += dy[r]: the path's vector kernel (the plain loop stayed scalar,
         * ~3% of a training step); the same additions in the same order */
        const trc_kernel_ops *k = trc_kernels();
        for (size_t r = 0; r < B; r++)
            k->residual_backward(db, dy + r * ldy, (size_t)out);
    }
}

void trc_linear_backward_params(float *dW, float *db, const float *dy, const float *x, size_t B,
                                int in, int out) {
    trc_linear_weight_grad(dW, db, dy, (size_t)out, x, B, in, out, 1);
}

void trc_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                         const float *W, size_t B, int in, int out) {
    if (dx)
        trc_linear_backward_input(dx, dy, W, B, in, out);
    trc_linear_backward_params(dW, db, dy, x, B, in, out);
}

/* Element-wise layers: the active instruction-set path's implementation (kernels/). */
void trc_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                           const float *b, size_t B, int C) {
    trc_kernels()->layernorm_forward(y, mean, rstd, x, w, b, B, C);
}

void trc_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, const float *mean, const float *rstd, size_t B, int C) {
    trc_kernels()->layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, B, C);
}

void trc_layernorm_backward_set(float *dx, float *dx2, float *dw, float *db, const float *dy,
                                const float *x, const float *w, const float *mean,
                                const float *rstd, size_t B, int C) {
    trc_kernels()->layernorm_backward_set(dx, dx2, dw, db, dy, x, w, mean, rstd, B, C);
}

void trc_silu_forward(float *y, float *sig, const float *x, size_t n) {
    trc_kernels()->silu_forward(y, sig, x, n);
}

void trc_silu_backward(float *dx, const float *dy, const float *x, const float *sig, size_t n) {
    trc_kernels()->silu_backward(dx, dy, x, sig, n);
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

void trc_residual_forward(float *y, const float *a, const float *b, size_t n) {
    trc_kernels()->residual_forward(y, a, b, n);
}

void trc_residual_backward(float *dx, const float *dy, size_t n) {
    trc_kernels()->residual_backward(dx, dy, n);
}
