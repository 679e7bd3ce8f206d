/* Writes the checkpoint seeds of tests/fuzz/corpus/{fuzz_checkpoint,fuzz_safetensors}/: tiny
 * but complete TRC checkpoints (a custom configuration a few hundred parameters large, with and
 * without metadata), so the fuzzers mutate real files without the 425 KB of tests/data's.
 * Built and run by hand from the repository root after `make`:
 *   cc -std=c11 -D_GNU_SOURCE -Icore/include tests/fuzz/make_seeds.c build/libtrc.a \
 *       -lopenblas -ljansson -lzip -lm -lpthread -o build/make_seeds && build/make_seeds */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trc/checkpoint.h"
#include "trc/error.h"
#include "trc/model.h"
#include "trc/safetensors.h"

static int write_model(const char *path, int s, int m, int T, int d, int h, const char *summary,
                       int bare) {
    trc_model_config cfg;
    if (trc_model_config_preset("small", s, m, T, 4.0f, &cfg) != TRC_OK)
        return 1;
    snprintf(cfg.size, sizeof cfg.size, "custom");
    cfg.d = d;
    cfg.h = h;
    cfg.blocks = 1;
    cfg.heads = 1;
    cfg.K = cfg.n = 2;
    snprintf(cfg.system, sizeof cfg.system, "double_integrator");
    cfg.dt = 1.0 / 3.0;
    trc_model model;
    if (trc_model_create(&cfg, &model) != TRC_OK || trc_model_init(&model, 7) != TRC_OK)
        return 1;
    int rc;
    if (!bare) {
        rc = trc_checkpoint_save(path, &model, summary);
    } else { /* a PyTorch state_dict export: the parameters and no __metadata__ */
        trc_st_out *outs = calloc(model.num_views, sizeof *outs);
        for (size_t i = 0; outs && i < model.num_views; i++) {
            const trc_param_view *v = &model.views[i];
            outs[i] =
                (trc_st_out){.name = v->name, .ndim = v->ndim, .data = model.params + v->offset};
            for (int k = 0; k < v->ndim; k++)
                outs[i].shape[k] = v->shape[k];
        }
        rc = outs ? trc_st_write_file(path, outs, model.num_views, NULL, NULL, 0) : TRC_ENOMEM;
        free(outs);
    }
    trc_model_free(&model);
    if (rc)
        fprintf(stderr, "%s: %s\n", path, trc_errmsg());
    return rc != 0;
}

int main(void) {
    const char *dirs[] = {"tests/fuzz/corpus/fuzz_checkpoint",
                          "tests/fuzz/corpus/fuzz_safetensors"};
    int bad = 0;
    for (int i = 0; i < 2; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/tiny_meta.safetensors", dirs[i]);
        bad |= write_model(p, 2, 1, 3, 4, 4, "{\"epochs\": 1}", 0);
        snprintf(p, sizeof p, "%s/tiny_bare.safetensors", dirs[i]);
        bad |= write_model(p, 2, 1, 3, 4, 4, NULL, 1);
        snprintf(p, sizeof p, "%s/tiny_m2.safetensors", dirs[i]);
        bad |= write_model(p, 4, 2, 2, 2, 4, NULL, 0);
    }
    return bad;
}
