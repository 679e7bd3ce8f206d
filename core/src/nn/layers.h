/* The layer kinds of the TRC network as forward/backward pairs over plain float arrays
 * (llm.c style): row-major activations [rows, features], weights as PyTorch stores them
 * [out, in]. Backward functions ACCUMULATE (+=) into every gradient they are given, so shared
 * weights applied many times sum naturally; a NULL gradient pointer skips that output.
 * Internal to libtrc. */
#ifndef TRC_LAYERS_H
#define TRC_LAYERS_H

#include <stddef.h>

#define TRC_LN_EPS 1e-5f

/* x: [B, in], W: [out, in], b: [out] or NULL -> y: [B, out]   (y = x W^T + b) */
void trc_linear_forward(float *y, const float *x, const float *W, const float *b, size_t B, int in,
                        int out);
/* The same, then + res ([B, out], or NULL), then silu if `silu`, applied to the product's
 * registers before they are stored (a fused epilogue: one pass over y instead of three).
 * y may not alias x or res. */
void trc_linear_forward_ex(float *y, const float *x, const float *W, const float *b,
                           const float *res, int silu, size_t B, int in, int out);
/* x: [B, in], W: [out, in], b: [out] -> H = x W^T + b, sig = sigmoid(H), S = H sig: [B, out]
 * (training's Linear + silu, one pass: the activation runs in the product's epilogue) */
void trc_linear_silu_forward(float *S, float *H, float *sig, const float *x, const float *W,
                             const float *b, size_t B, int in, int out);
/* dy: [B, out], W: [out, in] -> dx: [B, in] (+=)   (dx += dy W) */
void trc_linear_backward_input(float *dx, const float *dy, const float *W, size_t B, int in,
                               int out);
/* dy: [B, out], W: [out, in], H, sig: [B, in] (a Linear + silu's pre-activation and sigmoid)
 * -> dH: [B, in] = (dy W) * silu'(H)   (the Linear's input gradient through the SiLU before it,
 * one pass: trc_silu_backward's operations in the product's epilogue; dH is overwritten) */
void trc_linear_backward_input_dsilu(float *dH, const float *dy, const float *W, const float *H,
                                     const float *sig, size_t B, int in, int out);
/* dy: [B, out], x: [B, in] -> dW: [out, in] (+= dy^T x), db: [out] (+= column sums) or NULL */
void trc_linear_backward_params(float *dW, float *db, const float *dy, const float *x, size_t B,
                                int in, int out);
/* dy: [B, out] (row stride ldy >= out), x: [B, in] -> dW: [out, in] (= or, with beta, += dy^T x),
 * db: [out] (likewise the column sums of dy) or NULL. dW may be NULL. */
void trc_linear_weight_grad(float *dW, float *db, const float *dy, size_t ldy, const float *x,
                            size_t B, int in, int out, int beta);
/* The two above together; dx, dW, db may each be NULL. */
void trc_linear_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                         const float *W, size_t B, int in, int out);

/* x: [B, C] -> y: [B, C] normalized (biased variance, eps 1e-5), scaled by w, shifted by b.
 * mean, rstd: [B], kept for backward; may be NULL (inference). y may alias x. */
void trc_layernorm_forward(float *y, float *mean, float *rstd, const float *x, const float *w,
                           const float *b, size_t B, int C);
/* dy, x: [B, C], mean, rstd: [B] -> dx: [B, C] (+=), dw, db: [C] (+=); any output may be NULL */
void trc_layernorm_backward(float *dx, float *dw, float *db, const float *dy, const float *x,
                            const float *w, const float *mean, const float *rstd, size_t B, int C);
/* The same writing dx: [B, C] (and dx2, if not NULL) instead of adding into it: the values of
 * a memset, trc_layernorm_backward and a copy, in one pass */
void trc_layernorm_backward_set(float *dx, float *dx2, float *dw, float *db, const float *dy,
                                const float *x, const float *w, const float *mean,
                                const float *rstd, size_t B, int C);

/* x: [n] -> y: [n] = x * sigmoid(x); sig: [n] receives sigmoid(x) if not NULL. y may alias x. */
void trc_silu_forward(float *y, float *sig, const float *x, size_t n);
/* dy, x, sig: [n] -> dx: [n] (+=)   (d silu = sig * (1 + x (1 - sig))) */
void trc_silu_backward(float *dx, const float *dy, const float *x, const float *sig, size_t n);

/* x: [n] -> y: [n] = scale * tanh(x). y may alias x. */
void trc_tanhscale_forward(float *y, const float *x, float scale, size_t n);
/* dy, y (the forward output): [n] -> dx: [n] (+=)   (d = scale (1 - (y/scale)^2)) */
void trc_tanhscale_backward(float *dx, const float *dy, const float *y, float scale, size_t n);

/* x: [n] -> y: [n] = min(max(x, -bound), bound). y may alias x. */
void trc_clamp_forward(float *y, const float *x, float bound, size_t n);
/* dy, x (the forward input): [n] -> dx: [n] (+= dy where -bound <= x <= bound, else 0) */
void trc_clamp_backward(float *dx, const float *dy, const float *x, float bound, size_t n);

/* a, b: [n] -> y: [n] = a + b. y may alias a or b. (Its backward is dy flowing to both.) */
void trc_residual_forward(float *y, const float *a, const float *b, size_t n);
/* dy: [n] -> dx: [n] (+= dy) */
void trc_residual_backward(float *dx, const float *dy, size_t n);

#endif
