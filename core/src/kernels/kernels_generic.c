/* The portable path (trc/cpu.h): element-wise layers over 8-lane vector extensions at the
 * compiler's baseline, and a plain C tile computing the same sums in the same order as the AVX
 * paths (without fused multiply-adds, so its last bits may differ). The sanitizers instrument
 * this path. */
#include <math.h>

#include "kernels.h"

#define KFN
#define VL 8
#define SFX(name) name##_generic
#include "eltwise_impl.h"

static float sigmoid1(float v) {
    return v < -88.0f ? 0.0f : 1.0f / (1.0f + expf(-v));
}

/* One row x one panel at a time: acc[16] = init; acc += A(r, k) B(k, :) for k in order. */
static void tile(const trc_tile_args *t, int R, int P) {
    for (int r = 0; r < R; r++)
        for (int q = 0; q < P; q++) {
            int lanes = q == P - 1 ? t->lanes : TRC_PANEL;
            size_t off = (size_t)r * t->ldc + (size_t)q * TRC_PANEL;
            float acc[TRC_PANEL] = {0};
            for (int j = 0; j < lanes; j++)
                acc[j] = t->from_c ? t->C[off + j] : t->bias ? t->bias[q * TRC_PANEL + j] : 0.0f;
            const float *a = t->A + (size_t)r * t->rsa, *b = t->B + (size_t)q * t->pstride;
            if (lanes == TRC_PANEL) /* a constant trip count: the compiler vectorizes it */
                for (int k = 0; k < t->K; k++, a += t->csa, b += t->ldb)
                    for (int j = 0; j < TRC_PANEL; j++)
                        acc[j] += *a * b[j];
            else
                for (int k = 0; k < t->K; k++, a += t->csa, b += t->ldb)
                    for (int j = 0; j < lanes; j++)
                        acc[j] += *a * b[j];
            for (int j = 0; j < lanes; j++) {
                float v = acc[j];
                if (t->last) {
                    if (t->res)
                        v += t->res[(size_t)r * t->ldr + (size_t)q * TRC_PANEL + j];
                    if (t->act == TRC_ACT_SILU) {
                        float s = sigmoid1(v);
                        if (t->pre)
                            t->pre[off + j] = v;
                        if (t->sig)
                            t->sig[off + j] = s;
                        v *= s;
                    }
                }
                t->C[off + j] = v;
            }
        }
}

static int tile_panels(int R) {
    (void)R;
    return 1;
}

const trc_kernel_ops trc_kernels_generic = {
    .isa = TRC_ISA_GENERIC,
    .tile_rows = 4,
    .tile_panels = tile_panels,
    .tile = tile,
    .exp = exp_n_generic,
    .layernorm_forward = layernorm_forward_generic,
    .layernorm_backward = layernorm_backward_generic,
    .layernorm_backward_set = layernorm_backward_set_generic,
    .rmsnorm_forward = rmsnorm_forward_generic,
    .silu_forward = silu_forward_generic,
    .silu_backward = silu_backward_generic,
    .swiglu_forward = swiglu_forward_generic,
    .dsilu_inplace = dsilu_inplace_generic,
    .residual_forward = residual_forward_generic,
    .residual_backward = residual_backward_generic,
    .dlinear_forward = dlinear_forward_generic,
    .dgemm = dgemm_generic,
};
