/* Layer kinds of the a273222 networks that the single-latent model does not have, as
 * forward/backward pairs over plain float arrays (llm.c style, like ../layers.h): RMSNorm with
 * a weight only and eps inside the root, and the SwiGLU gate. Backward functions ACCUMULATE
 * (+=); a NULL gradient pointer skips that output. Internal to libtrc. */
#ifndef TRC_NN_LAYERS_H
#define TRC_NN_LAYERS_H

#include <stddef.h>

#define TRC_RMS_EPS 1e-5f

/* x: [B, C] -> y: [B, C] = x / sqrt(mean(x^2) + 1e-5) * w; rstd: [B] kept for backward (may be
 * NULL). y may alias x. */
void trc_rmsnorm_forward(float *y, float *rstd, const float *x, const float *w, size_t B, int C);
/* dy, x: [B, C], rstd: [B] -> dx: [B, C] (+=), dw: [C] (+=); either may be NULL */
void trc_rmsnorm_backward(float *dx, float *dw, const float *dy, const float *x, const float *w,
                          const float *rstd, size_t B, int C);

/* G: [B, 2I] (I = width; gate g = columns 0..I-1, value q = I..2I-1) -> S: [B, I] = silu(g) * q;
 * sig: [B, I] receives sigmoid(g) (may be NULL). */
void trc_swiglu_forward(float *S, float *sig, const float *G, size_t B, int width);
/* dS: [B, I], G: [B, 2I], sig: [B, I] -> dG: [B, 2I] (+=) */
void trc_swiglu_backward(float *dG, const float *dS, const float *G, const float *sig, size_t B,
                         int width);

/* Linear with every sum accumulated in double (rounded once to float), for the encoder and
 * decoder stacks of the two-level networks. Why: the original's decoders carry large weights
 * (the fixtures scale them x40 so that tanh saturates), so a float sum's rounding, which
 * depends on the BLAS kernel the machine gets, reaches ~1e-5 in the iterates; summed in double
 * our part of the error vanishes and the results no longer depend on the kernel. Those stacks
 * are ~6% of the multiply-adds.
 * x: [B, in], W: [out, in], b: [out] -> y: [B, out] */
void trc_linear_precise_forward(float *y, const float *x, const float *W, const float *b, size_t B,
                                int in, int out);
/* The same over weights widened and packed once (inference plans): doubles of W [out, in] once
 * packed, W -> Wd (panels of 8 outputs stored input by input), and the product, on the active
 * instruction-set path's kernel (identical bits on every path). */
size_t trc_linear_dpacked_size(int in, int out);
void trc_linear_dpack(double *Wd, const float *W, int in, int out);
void trc_linear_dpacked_forward(float *y, const float *x, const double *Wd, const float *b,
                                size_t B, int in, int out);
/* dy: [B, out], x: [B, in], W: [out, in] -> dx: [B, in] (+=, may be NULL), dW: [out, in] (+=),
 * db: [out] (+=) */
void trc_linear_precise_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                                 const float *W, size_t B, int in, int out);

#endif
