/* Where each tensor of a two-level network (two_level, trm_style) lives in its one float buffer,
 * shared by the inference and training paths; built in one pass with the public view table so
 * the two cannot disagree. Internal to libtrc. */
#ifndef TRC_TWO_LEVEL_LAYOUT_H
#define TRC_TWO_LEVEL_LAYOUT_H

#include <stddef.h>

#include "layout.h"
#include "trc/two_level.h"

#define TL_NONE ((size_t)-1) /* a tensor the block kind does not have (RMS bias) */

typedef struct tl_block_off {
    size_t in_w, in_b;              /* in_proj [3d, d], [3d]; value rows from 2d */
    trc_lin_off out, fc_in, fc_out; /* fc_in [I or 2I, d], fc_out [d, I] */
    trc_lin_off norm1, norm2;       /* .b == TL_NONE for RMSNorm */
} tl_block_off;

typedef struct tl_layout {
    int s, m, T, U, d, h, ffn, layers, H, L, in_dim, kind, truncate, feedback;
    int fc_in_out; /* I (SiLU) or 2I (SwiGLU) */
    float bound;
    trc_lin_off enc0, enc2, enc3, err0, err2, err3;
    size_t H_init, L_init;
    tl_block_off blk[TRC_TL_MAX_LAYERS];
    trc_lin_off ctrl_emb, err_emb, dec0, dec2, dec3, gen0, gen2, gen3;
    size_t num_floats, num_views, num_trainable;
} tl_layout;

typedef enum { TL_INIT_ZERO, TL_INIT_ONE, TL_INIT_XAVIER, TL_INIT_FANIN, TL_INIT_NORMAL } tl_init;

typedef struct tl_init_spec {
    tl_init kind;
    float a; /* Xavier gain, or normal standard deviation */
    int fan_in;
} tl_init_spec;

/* Fills L for a valid cfg; views, roles, inits (num_views entries each) may be NULL. */
void tl_layout_build(const trc_tl_config *cfg, tl_layout *L, trc_param_view *views,
                     unsigned char *roles, tl_init_spec *inits);

#endif
