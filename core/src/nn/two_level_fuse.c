/* The attention of a one-token latent fused into one Linear per block for inference (as the
 * single-latent network's trc_model_fuse_attention): out_proj(V z + v) = (W_o V) z + (W_o v + c_o).
 * Its own file: <cblas.h> brings <complex.h>, whose macro I would clash with the FFN width. */
#include <cblas.h>
#include <string.h>

#include "two_level_acts.h"

void tl_fuse_attention(const tl_layout *L, const float *P, float *fused) {
    int d = L->d;
    for (int i = 0; i < L->layers; i++) {
        const tl_block_off *o = &L->blk[i];
        float *F = fused + (size_t)i * ((size_t)d * d + d), *fb = F + (size_t)d * d;
        const float *V = P + o->in_w + 2 * (size_t)d * d, *v = P + o->in_b + 2 * (size_t)d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0f, P + o->out.w, d, V, d,
                    0.0f, F, d);
        memcpy(fb, P + o->out.b, (size_t)d * sizeof *fb);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, d, d, 1.0f, P + o->out.w, d, v, 1, 1.0f, fb, 1);
    }
}
