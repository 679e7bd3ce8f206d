/* The layout builder an architecture's layout() fills: every parameter tensor in checkpoint
 * order, with its PyTorch name (and an alternative spelling the loader also accepts), shape and
 * initialization, each at the next offset of the one float buffer. Internal to libtrc. */
#ifndef TRC_NN_LAYOUT_H
#define TRC_NN_LAYOUT_H

#include <stddef.h>

#include "trc/arch.h"
#include "trc/model.h"

/* How a parameter tensor is initialized (model.md "Initialization used by the original"). */
/* TRC_INIT_NORMAL: N(0, gain^2) (the two-level networks' H_init/L_init, model-v2.md) */
typedef enum {
    TRC_INIT_ZERO,
    TRC_INIT_ONE,
    TRC_INIT_XAVIER,
    TRC_INIT_FANIN,
    TRC_INIT_NORMAL
} trc_init_kind;

typedef struct trc_init_spec {
    trc_init_kind kind;
    float gain; /* Xavier gain */
    int fan_in; /* for TRC_INIT_FANIN: bound 1/sqrt(fan_in) */
} trc_init_spec;

struct trc_layout_builder {
    size_t num_params, num_views;
    trc_param_view *views; /* NULL: count only */
    trc_init_spec *inits;  /* NULL: no inits wanted */
};

typedef struct trc_lin_off {
    size_t w, b; /* weight [out, in], bias [out] */
} trc_lin_off;

static const trc_init_spec TRC_INIT_ZEROS = {TRC_INIT_ZERO, 0, 0};
static const trc_init_spec TRC_INIT_ONES = {TRC_INIT_ONE, 0, 0};

static inline trc_init_spec trc_init_xavier(float gain) {
    return (trc_init_spec){TRC_INIT_XAVIER, gain, 0};
}
static inline trc_init_spec trc_init_fanin(int fan_in) {
    return (trc_init_spec){TRC_INIT_FANIN, 0, fan_in};
}

/* A tensor [rows, cols] (cols 0: a vector [rows]) named `name` (alt: another spelling or NULL).
 * Returns its offset in floats. */
size_t trc_layout_add(trc_layout_builder *b, const char *name, const char *alt, int rows, int cols,
                      trc_init_spec init);
/* Linear(in -> out): "<prefix>.weight" [out, in] and "<prefix>.bias" [out] (alt_prefix: the
 * other spelling of the prefix, or NULL). */
trc_lin_off trc_layout_linear(trc_layout_builder *b, const char *prefix, const char *alt_prefix,
                              int in, int out, trc_init_spec winit, trc_init_spec binit);
/* The default PyTorch Linear: weight and bias uniform in +-1/sqrt(in). */
trc_lin_off trc_layout_linear_default(trc_layout_builder *b, const char *prefix,
                                      const char *alt_prefix, int in, int out);
/* LayerNorm(C): weight (ones) and bias (zeros). */
trc_lin_off trc_layout_layernorm(trc_layout_builder *b, const char *prefix, int C);

/* Runs the architecture's layout for cfg into b (views/inits as given in b, counts reset). */
void trc_layout_run(const trc_model_config *cfg, trc_layout_builder *b);

/* Sets OpenBLAS to one thread per caller, once per process (see model.h: the model's parallelism
 * is its callers' threads and its own, never BLAS's). */
void trc_model_blas_single(void);

#endif
