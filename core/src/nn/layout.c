/* The layout builder (layout.h): parameters appended in checkpoint order with their names,
 * alternative spellings, shapes and initializations. */
#include "layout.h"
#include "trc/arch.h"

#include <stdio.h>
#include <string.h>

size_t trc_layout_add(trc_layout_builder *b, const char *name, const char *alt, int rows, int cols,
                      trc_init_spec init) {
    size_t off = b->num_params, numel = (size_t)rows * (size_t)(cols > 0 ? cols : 1);
    if (b->views) {
        trc_param_view *v = &b->views[b->num_views];
        snprintf(v->name, sizeof v->name, "%s", name);
        snprintf(v->alt, sizeof v->alt, "%s", alt ? alt : "");
        v->offset = off;
        v->numel = numel;
        v->ndim = cols > 0 ? 2 : 1;
        v->shape[0] = rows;
        v->shape[1] = cols > 0 ? cols : 0;
    }
    if (b->inits)
        b->inits[b->num_views] = init;
    b->num_params += numel;
    b->num_views++;
    return off;
}

/* "<prefix>.<leaf>" into buf, or NULL for a NULL prefix. */
static const char *join(char *buf, size_t size, const char *prefix, const char *leaf) {
    if (!prefix)
        return NULL;
    snprintf(buf, size, "%.80s.%s", prefix, leaf);
    return buf;
}

trc_lin_off trc_layout_linear(trc_layout_builder *b, const char *prefix, const char *alt_prefix,
                              int in, int out, trc_init_spec winit, trc_init_spec binit) {
    char name[TRC_PARAM_NAME_MAX], alt[TRC_PARAM_NAME_MAX];
    trc_lin_off o;
    o.w = trc_layout_add(b, join(name, sizeof name, prefix, "weight"),
                         join(alt, sizeof alt, alt_prefix, "weight"), out, in, winit);
    o.b = trc_layout_add(b, join(name, sizeof name, prefix, "bias"),
                         join(alt, sizeof alt, alt_prefix, "bias"), out, 0, binit);
    return o;
}

trc_lin_off trc_layout_linear_default(trc_layout_builder *b, const char *prefix,
                                      const char *alt_prefix, int in, int out) {
    return trc_layout_linear(b, prefix, alt_prefix, in, out, trc_init_fanin(in),
                             trc_init_fanin(in));
}

trc_lin_off trc_layout_layernorm(trc_layout_builder *b, const char *prefix, int C) {
    char name[TRC_PARAM_NAME_MAX];
    trc_lin_off o;
    o.w = trc_layout_add(b, join(name, sizeof name, prefix, "weight"), NULL, C, 0, TRC_INIT_ONES);
    o.b = trc_layout_add(b, join(name, sizeof name, prefix, "bias"), NULL, C, 0, TRC_INIT_ZEROS);
    return o;
}

void trc_layout_run(const trc_model_config *cfg, trc_layout_builder *b) {
    b->num_params = b->num_views = 0;
    trc_arch_of(cfg)->layout(cfg, b);
}
