/* The "single" architecture: the TRC network of docs/model.md (one latent z refined by
 * shared reasoning blocks, K outer and n inner cycles). Its sizes, its parameter layout with the
 * PyTorch names (spelled here once, with the later version's ffn.fc_in/ffn.fc_out as the
 * alternative), the configuration a bare export implies, and its ops: inference and plans in
 * model_infer.c, the trainer in model_train.c. */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "kernels/kernels.h"
#include "model_layout.h"
#include "trc/arch.h"
#include "trc/error.h"

#define BLOCK_PREFIX "recursive_reasoning.reasoning_blocks."

static const trc_arch_size sizes[] = {
    {"small", 64, 128, 2, 2, 3, 3},
    {"medium", 128, 256, 3, 4, 3, 3},
    {"large", 256, 512, 4, 8, 3, 3},
};
#define NSIZES (sizeof sizes / sizeof sizes[0])

static int single_validate(const trc_model_config *cfg) {
    if (cfg->h % 2 != 0)
        return trc_fail(TRC_EINVAL,
                        "model config: h (hidden) must be even (the error encoder "
                        "uses h/2), got %d",
                        cfg->h);
    if (cfg->d % cfg->heads != 0)
        return trc_fail(TRC_EINVAL, "model config: d (%d) must be divisible by heads (%d)", cfg->d,
                        cfg->heads);
    return TRC_OK;
}

void trc_model_layout_build(const trc_model_config *cfg, trc_model_layout *L, trc_param_view *views,
                            trc_init_spec *inits) {
    memset(L, 0, sizeof *L);
    L->s = cfg->s;
    L->m = cfg->m;
    L->T = cfg->T;
    L->U = cfg->T * cfg->m;
    L->d = cfg->d;
    L->h = cfg->h;
    L->blocks = cfg->blocks;
    L->K = cfg->K;
    L->n = cfg->n;
    L->in_dim = 2 * cfg->s + 1;
    L->bound = trc_model_net_bound(cfg); /* the network's units (normalisation) */
    trc_layout_builder bd = {0, 0, views, inits};
    int s = cfg->s, U = L->U, d = cfg->d, h = cfg->h;

    L->enc0 = trc_layout_linear(&bd, "state_encoder.encoder.0", NULL, L->in_dim, h,
                                trc_init_xavier(1), TRC_INIT_ZEROS);
    L->enc2 = trc_layout_layernorm(&bd, "state_encoder.encoder.2", h);
    L->enc3 = trc_layout_linear(&bd, "state_encoder.encoder.3", NULL, h, d, trc_init_xavier(1),
                                TRC_INIT_ZEROS);

    L->err0 = trc_layout_linear_default(&bd, "error_encoder.encoder.0", NULL, s, h / 2);
    L->err2 = trc_layout_layernorm(&bd, "error_encoder.encoder.2", h / 2);
    L->err3 = trc_layout_linear_default(&bd, "error_encoder.encoder.3", NULL, h / 2, d);

    for (int i = 0; i < cfg->blocks; i++) {
        char p[56], name[TRC_PARAM_NAME_MAX], alt[TRC_PARAM_NAME_MAX];
        trc_block_off *B = &L->blk[i];
        snprintf(p, sizeof p, "recursive_reasoning.reasoning_blocks.%d.", i);
        snprintf(name, sizeof name, "%sattention.in_proj_weight", p);
        B->in_w = trc_layout_add(&bd, name, NULL, 3 * d, d, trc_init_xavier(1));
        snprintf(name, sizeof name, "%sattention.in_proj_bias", p);
        B->in_b = trc_layout_add(&bd, name, NULL, 3 * d, 0, TRC_INIT_ZEROS);
        snprintf(name, sizeof name, "%sattention.out_proj", p);
        B->out = trc_layout_linear(&bd, name, NULL, d, d, trc_init_fanin(d), TRC_INIT_ZEROS);
        snprintf(name, sizeof name, "%snorm1", p);
        B->norm1 = trc_layout_layernorm(&bd, name, d);
        /* the original's later version renamed ffn.0/ffn.3 to ffn.fc_in/ffn.fc_out */
        snprintf(name, sizeof name, "%sffn.0", p);
        snprintf(alt, sizeof alt, "%sffn.fc_in", p);
        B->ffn0 = trc_layout_linear_default(&bd, name, alt, d, h);
        snprintf(name, sizeof name, "%sffn.3", p);
        snprintf(alt, sizeof alt, "%sffn.fc_out", p);
        B->ffn3 = trc_layout_linear_default(&bd, name, alt, h, d);
        snprintf(name, sizeof name, "%snorm2", p);
        B->norm2 = trc_layout_layernorm(&bd, name, d);
    }
    L->ctrl_emb =
        trc_layout_linear_default(&bd, "recursive_reasoning.control_embedding", NULL, U, d);
    L->err_emb = trc_layout_linear_default(&bd, "recursive_reasoning.error_embedding", NULL, 2, d);

    L->gen0 = trc_layout_linear(&bd, "initial_control_generator.decoder.0", NULL, d, h,
                                trc_init_xavier(0.1f), TRC_INIT_ZEROS);
    L->gen2 = trc_layout_layernorm(&bd, "initial_control_generator.decoder.2", h);
    L->gen3 = trc_layout_linear(&bd, "initial_control_generator.decoder.3", NULL, h, U,
                                trc_init_xavier(0.1f), TRC_INIT_ZEROS);

    L->dec0 = trc_layout_linear(&bd, "control_decoder.decoder.0", NULL, d + U, h,
                                trc_init_xavier(0.01f), TRC_INIT_ZEROS);
    L->dec2 = trc_layout_layernorm(&bd, "control_decoder.decoder.2", h);
    L->dec3 = trc_layout_linear(&bd, "control_decoder.decoder.3", NULL, h, U,
                                trc_init_xavier(0.01f), TRC_INIT_ZEROS);
    L->num_params = bd.num_params;
    L->num_views = bd.num_views;
}

static void single_layout(const trc_model_config *cfg, trc_layout_builder *b) {
    trc_model_layout L;
    trc_model_layout_build(cfg, &L, b->views, b->inits);
    b->num_params = L.num_params;
    b->num_views = L.num_views;
}

void trc_model_fuse_attention(const trc_model_layout *L, const float *P, float *fused) {
    int d = L->d;
    for (int i = 0; i < L->blocks; i++) {
        const trc_block_off *o = &L->blk[i];
        float *F = fused + (size_t)i * ((size_t)d * d + d), *fb = F + (size_t)d * d;
        const float *V = P + o->in_w + 2 * (size_t)d * d, *v = P + o->in_b + 2 * d;
        /* F = W_o V; fb = c_o + W_o v (one row times W_o transposed) */
        trc_gemm(&(trc_gemm_args){.M = d,
                                  .N = d,
                                  .K = d,
                                  .A = P + o->out.w,
                                  .rsa = (size_t)d,
                                  .csa = 1,
                                  .B = V,
                                  .ldb = (size_t)d,
                                  .pstride = TRC_PANEL,
                                  .C = F,
                                  .ldc = (size_t)d});
        trc_gemm(&(trc_gemm_args){.M = 1,
                                  .N = d,
                                  .K = d,
                                  .A = v,
                                  .rsa = (size_t)d,
                                  .csa = 1,
                                  .B = P + o->out.w,
                                  .ldb = (size_t)d,
                                  .btrans = 1,
                                  .C = fb,
                                  .ldc = (size_t)d,
                                  .bias = P + o->out.b});
    }
}

/* The 2-D shape of a tensor needed to infer the configuration. */
static int shape2(const trc_safetensors *st, const char *name, int *rows, int *cols) {
    const trc_st_tensor *t = trc_st_find(st, name);
    if (!t)
        return trc_fail(TRC_EFORMAT,
                        "checkpoint: missing parameter '%s' (needed to infer the "
                        "configuration)",
                        name);
    if (t->ndim != 2 || t->shape[0] <= 0 || t->shape[1] <= 0 || t->shape[0] > INT_MAX ||
        t->shape[1] > INT_MAX)
        return trc_fail(TRC_EFORMAT, "checkpoint: parameter '%s' is not a non-empty matrix", name);
    *rows = (int)t->shape[0];
    *cols = (int)t->shape[1];
    return TRC_OK;
}

/* Number of reasoning blocks: one more than the largest index named in the file (a missing
 * block in between is then reported as a missing parameter). */
static int count_blocks(const trc_safetensors *st, int *blocks) {
    int max = -1;
    size_t plen = strlen(BLOCK_PREFIX);
    for (size_t i = 0; i < st->count; i++) {
        const char *name = st->tensors[i].name;
        if (strncmp(name, BLOCK_PREFIX, plen))
            continue;
        const char *p = name + plen;
        long idx = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 4)
            idx = idx * 10 + (*p++ - '0'), digits++;
        if (!digits || *p != '.' || (digits > 1 && name[plen] == '0'))
            return trc_fail(TRC_EFORMAT, "checkpoint: unexpected tensor '%s'", name);
        if (idx >= TRC_MAX_BLOCKS)
            return trc_fail(TRC_EUNSUPPORTED,
                            "checkpoint: tensor '%s': at most %d reasoning "
                            "blocks are supported",
                            name, TRC_MAX_BLOCKS);
        if (idx > max)
            max = (int)idx;
    }
    if (max < 0)
        return trc_fail(TRC_EFORMAT, "checkpoint: no reasoning block (no tensor named "
                                     "'" BLOCK_PREFIX "<i>.*')");
    *blocks = max + 1;
    return TRC_OK;
}

static int single_from_shapes(const trc_safetensors *st, int m, trc_model_config *cfg) {
    int h = 0, in = 0, d = 0, h2 = 0, U = 0, hu = 0, rc;
    if ((rc = shape2(st, "state_encoder.encoder.0.weight", &h, &in)) ||
        (rc = shape2(st, "state_encoder.encoder.3.weight", &d, &h2)) ||
        (rc = shape2(st, "control_decoder.decoder.3.weight", &U, &hu)))
        return rc;
    if (in < 3 || in % 2 == 0)
        return trc_fail(TRC_EFORMAT,
                        "checkpoint: parameter 'state_encoder.encoder.0.weight' has "
                        "%d inputs; expected 2s+1 (odd, >= 3)",
                        in);
    if (U % m)
        return trc_fail(TRC_EFORMAT,
                        "checkpoint: parameter 'control_decoder.decoder.3.weight' "
                        "has %d outputs, not a multiple of the control dimension m = %d",
                        U, m);
    int blocks = 0;
    if ((rc = count_blocks(st, &blocks)))
        return rc;
    memset(cfg, 0, sizeof *cfg);
    cfg->s = (in - 1) / 2;
    cfg->m = m;
    cfg->T = U / m;
    cfg->d = d;
    cfg->h = h;
    cfg->blocks = blocks;
    /* The head count changes no shape; the presets use one head per 32 latent features. */
    cfg->heads = d % 32 == 0 ? d / 32 : 1;
    cfg->bound = 4.0f;
    cfg->K = cfg->n = 3;
    snprintf(cfg->arch, sizeof cfg->arch, "single");
    snprintf(cfg->size, sizeof cfg->size, "custom");
    for (size_t i = 0; i < NSIZES; i++)
        if (sizes[i].d == d && sizes[i].h == h && sizes[i].blocks == blocks) {
            snprintf(cfg->size, sizeof cfg->size, "%s", sizes[i].name);
            cfg->heads = sizes[i].heads;
        }
    return TRC_OK;
}

const trc_arch trc_arch_single = {
    .name = "single",
    .about = "one latent refined by shared reasoning blocks (docs/model.md)",
    .sizes = sizes,
    .nsizes = NSIZES,
    .validate = single_validate,
    .layout = single_layout,
    .from_shapes = single_from_shapes,
    .infer = trc_single_infer,
    .plan_create = trc_single_plan_create,
    .plan_run = trc_single_plan_run,
    .plan_free = trc_single_plan_free,
    .plan_create_bf16 = trc_single_plan_create_bf16,
    .trainer_create = trc_single_trainer_create,
    .trainer_free = trc_single_trainer_free,
    .trainer_set_threads = trc_single_trainer_set_threads,
    .trainer_grads = trc_single_trainer_grads,
    .trainer_forward = trc_single_trainer_forward,
    .trainer_backward = trc_single_trainer_backward,
};
