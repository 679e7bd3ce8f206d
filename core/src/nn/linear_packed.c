/* Linear layers for small batches (see linear_packed.h). A general sgemm repacks the weight
 * matrix on every call, which costs as much as the product itself when the batch has only a few
 * rows (the server's case). Here the weights are packed once, into panels of 16 outputs stored
 * input by input, and trc_gemm's register tiles (kernels/kernels.h: AVX-512, AVX2 + FMA or
 * portable C, chosen at run time) stream each panel once per tile of rows, with the bias, the
 * residual and SiLU applied to the accumulators before they are stored. */
#include "linear_packed.h"

#include <stdlib.h>

#include "kernels/kernels.h"

size_t trc_linear_packed_size(int in, int out) {
    return (size_t)((out + TRC_PANEL - 1) / TRC_PANEL) * (size_t)in * TRC_PANEL;
}

float *trc_linear_packed_alloc(size_t n) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    return aligned_alloc(64, bytes ? bytes : 64);
}

void trc_linear_pack(float *Wp, const float *W, int in, int out) {
    int np = (out + TRC_PANEL - 1) / TRC_PANEL;
    void (*pack16)(float *, const float *, size_t) = trc_kernels()->pack16;
    /* full panels 16 inputs at a time by the path's 16x16 transpose, if it has one; the rest
     * lane by lane: each weight row read in order into its lane of the panel (8-16 KB, in L1).
     * Reading 16 rows at once, element by element, was 3% of a training step (the trainer
     * packs every step). */
    for (int p = 0; p < np; p++) {
        float *panel = Wp + (size_t)p * (size_t)in * TRC_PANEL;
        int i0 = 0;
        if (pack16 && (p + 1) * TRC_PANEL <= out)
            for (; i0 + TRC_PANEL <= in; i0 += TRC_PANEL)
                pack16(panel + (size_t)i0 * TRC_PANEL,
                       W + (size_t)p * TRC_PANEL * (size_t)in + (size_t)i0, (size_t)in);
        for (int j = 0; j < TRC_PANEL; j++) {
            int o = p * TRC_PANEL + j;
            float *dst = panel + j;
            if (o < out) {
                const float *src = W + (size_t)o * (size_t)in;
                for (int i = i0; i < in; i++)
                    dst[(size_t)i * TRC_PANEL] = src[i];
            } else
                for (int i = i0; i < in; i++)
                    dst[(size_t)i * TRC_PANEL] = 0.0f;
        }
    }
}

void trc_linear_packed_forward_ex(float *y, const float *x, const float *Wp, const float *b,
                                  const float *res, int silu, size_t B, int in, int out) {
    trc_linear_packed_forward_ln(y, x, Wp, b, res, silu, NULL, NULL, NULL, B, in, out);
}

void trc_linear_packed_forward_ln(float *y, const float *x, const float *Wp, const float *b,
                                  const float *res, int silu, const float *lnw, const float *lnb,
                                  float *lny, size_t B, int in, int out) {
    trc_gemm(&(trc_gemm_args){.M = (int)B,
                              .N = out,
                              .K = in,
                              .A = x,
                              .rsa = (size_t)in,
                              .csa = 1,
                              .B = Wp,
                              .ldb = TRC_PANEL,
                              .pstride = (size_t)in * TRC_PANEL,
                              .C = y,
                              .ldc = (size_t)out,
                              .bias = b,
                              .res = res,
                              .ldr = (size_t)out,
                              .act = silu ? TRC_ACT_SILU : TRC_ACT_NONE,
                              .ln_w = lnw,
                              .ln_b = lnb,
                              .ln_y = lny});
}

void trc_linear_packed_forward_cold(float *y, const float *x, const float *Wp, const float *b,
                                    const float *res, size_t B, int in, int out) {
    trc_gemm(&(trc_gemm_args){.M = (int)B,
                              .N = out,
                              .K = in,
                              .A = x,
                              .rsa = (size_t)in,
                              .csa = 1,
                              .B = Wp,
                              .ldb = TRC_PANEL,
                              .pstride = (size_t)in * TRC_PANEL,
                              .C = y,
                              .ldc = (size_t)out,
                              .bias = b,
                              .res = res,
                              .ldr = (size_t)out,
                              .cold = 1});
}

void trc_linear_packed_forward(float *y, const float *x, const float *Wp, const float *b, size_t B,
                               int in, int out) {
    trc_linear_packed_forward_ex(y, x, Wp, b, NULL, 0, B, in, out);
}

void trc_linear_packed_silu_forward(float *S, float *H, float *sig, const float *x, const float *Wp,
                                    const float *b, size_t B, int in, int out) {
    trc_gemm(&(trc_gemm_args){.M = (int)B,
                              .N = out,
                              .K = in,
                              .A = x,
                              .rsa = (size_t)in,
                              .csa = 1,
                              .B = Wp,
                              .ldb = TRC_PANEL,
                              .pstride = (size_t)in * TRC_PANEL,
                              .C = S,
                              .ldc = (size_t)out,
                              .bias = b,
                              .act = TRC_ACT_SILU,
                              .pre = H,
                              .sig = sig,
                              .cold = 1});
}

size_t trc_linear_bf16_size(int in, int out) {
    return trc_bf16_packed_size(in, out);
}

uint16_t *trc_linear_bf16_alloc(size_t n) {
    size_t bytes = (n * sizeof(uint16_t) + 63) / 64 * 64;
    return aligned_alloc(64, bytes ? bytes : 64);
}

void trc_linear_bf16_pack(uint16_t *Wb, const float *W, int in, int out) {
    trc_bf16_pack(Wb, W, in, out);
}

int trc_linear_bf16_available(const char **why) {
    return trc_bf16_available(why);
}

void trc_linear_bf16_forward_ln(float *y, const float *x, const uint16_t *Wb, const float *b,
                                const float *res, int silu, const float *lnw, const float *lnb,
                                float *lny, size_t B, int in, int out) {
    trc_gemm_bf16(&(trc_gemm_args){.M = (int)B,
                                   .N = out,
                                   .K = in,
                                   .A = x,
                                   .rsa = (size_t)in,
                                   .csa = 1,
                                   .C = y,
                                   .ldc = (size_t)out,
                                   .bias = b,
                                   .res = res,
                                   .ldr = (size_t)out,
                                   .act = silu ? TRC_ACT_SILU : TRC_ACT_NONE,
                                   .ln_w = lnw,
                                   .ln_b = lnb,
                                   .ln_y = lny},
                  Wb);
}
