/* Linear layers for small batches over weights repacked once: the inference plan's kernel
 * (model.h, trc_infer_plan). Internal to libtrc. */
#ifndef TRC_LINEAR_PACKED_H
#define TRC_LINEAR_PACKED_H

#include <stddef.h>
#include <stdint.h>

/* Floats of W: [out, in] once packed: ceil(out / 16) panels of [in][16], zero padded. */
size_t trc_linear_packed_size(int in, int out);
/* Room for n floats aligned to a cache line (64 bytes), or NULL; free() releases it. Packed
 * weights must start on a line: a panel load that straddles two lines halves the 1-row
 * kernel's speed (measured 56 -> 32 GFLOP/s from L2). Each packed Linear is a multiple of 16
 * floats, so Linears packed one after another in such a buffer all start on a line. */
float *trc_linear_packed_alloc(size_t n);
/* W: [out, in] -> Wp: packed panels (panel p, input i, lane j holds W[16p + j][i]). */
void trc_linear_pack(float *Wp, const float *W, int in, int out);
/* x: [B, in], Wp: packed W [out, in], b: [out] or NULL -> y: [B, out]   (y = x W^T + b)
 * Every output is b[o] + x[r,0] W[o,0] + x[r,1] W[o,1] + ... accumulated in that order whatever
 * B is, so a row's result does not depend on the other rows of its batch. y may not alias x.
 * Runs the active instruction-set path (trc/cpu.h). */
void trc_linear_packed_forward(float *y, const float *x, const float *Wp, const float *b, size_t B,
                               int in, int out);
/* The same, then + res ([B, out], or NULL), then silu if `silu`, on the accumulators before
 * they are stored (fused epilogue). y may not alias x or res. */
void trc_linear_packed_forward_ex(float *y, const float *x, const float *Wp, const float *b,
                                  const float *res, int silu, size_t B, int in, int out);
/* The same as _ex, then each row of y layer-normalised (weights lnw, lnb: [out]) into lny:
 * [B, out] (lny = y: in place; lny may alias res). Bit for bit y = _ex(..) then
 * trc_layernorm_forward(lny, NULL, NULL, y, lnw, lnb, B, out), but each tile of rows is
 * normalised as soon as it is done, while it is in L1 (kernels.h). */
void trc_linear_packed_forward_ln(float *y, const float *x, const float *Wp, const float *b,
                                  const float *res, int silu, const float *lnw, const float *lnb,
                                  float *lny, size_t B, int in, int out);
/* _ex without SiLU for outputs (and res) likely not in cache, training's activations: each
 * tile prefetches its output lines before its products (kernels.h: cold); the same bits */
void trc_linear_packed_forward_cold(float *y, const float *x, const float *Wp, const float *b,
                                    const float *res, size_t B, int in, int out);
/* bf16 weights (an inference plan of TRC_PRECISION_BF16, model.h): W [out, in] rounded to
 * bfloat16 and packed by pairs of inputs (kernels.h: trc_bf16_pack); the products take x
 * rounded to bf16 too and sum in float (AVX512_BF16's vdpbf16ps). Sizes in uint16 elements;
 * each packed Linear is a multiple of 64 bytes, so Linears packed one after another in a
 * trc_linear_bf16_alloc buffer all start on a line. */
size_t trc_linear_bf16_size(int in, int out);
uint16_t *trc_linear_bf16_alloc(size_t n);
void trc_linear_bf16_pack(uint16_t *Wb, const float *W, int in, int out);
/* 1 when this CPU and the active kernel path run bf16 products; else 0 and why (a sentence) */
int trc_linear_bf16_available(const char **why);
/* trc_linear_packed_forward_ln over bf16 weights (lnw NULL: no layer norm); row by row, so a
 * row's result does not depend on the other rows. Only when trc_linear_bf16_available(). */
void trc_linear_bf16_forward_ln(float *y, const float *x, const uint16_t *Wb, const float *b,
                                const float *res, int silu, const float *lnw, const float *lnb,
                                float *lny, size_t B, int in, int out);
/* x: [B, in], Wp: packed W -> H = x W^T + b, sig = sigmoid(H), S = H sig: [B, out] (training's
 * Linear + silu in one pass; its outputs treated as not in cache, as _cold) */
void trc_linear_packed_silu_forward(float *S, float *H, float *sig, const float *x, const float *Wp,
                                    const float *b, size_t B, int in, int out);

#endif
