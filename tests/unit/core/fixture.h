/* Loading the reference fixtures (tests/data/FIXTURES.md) of the parity tests: safetensors files,
 * their tensors as float32, and the fixtures' small model with its parameters. Header-only:
 * each test file is its own binary. Include after <cmocka.h>; failures end the test. */
#ifndef TRC_TESTS_FIXTURE_H
#define TRC_TESTS_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>

#include "../common.h"
#include "trc/error.h"
#include "trc/model.h"
#include "trc/safetensors.h"

/* Reads the fixture file `name` into st. */
static inline void read_st(const char *name, trc_safetensors *st) {
    const char *path = test_data_path(name);
    if (trc_st_read_file(path, st))
        fail_msg("%s: %s", path, trc_errmsg());
}

/* Copies the tensor `name` (of exactly `numel` elements) out as float32 into a new buffer. */
static inline float *tensor(const trc_safetensors *st, const char *name, size_t numel) {
    const trc_st_tensor *t = trc_st_find(st, name);
    if (!t)
        fail_msg("fixture tensor %s missing", name);
    assert_int_equal(t->numel, numel);
    float *v = malloc(numel * sizeof *v);
    assert_non_null(v);
    assert_int_equal(trc_st_to_f32(t, v), TRC_OK);
    return v;
}

/* The fixtures' model: config small, s=2, m=1, T=15, b=4; parameters loaded by name, every one
 * with its shape, nothing extra, nothing missing. */
static inline void load_model(const char *file, trc_model *model) {
    trc_model_config cfg;
    assert_int_equal(trc_model_config_preset("small", 2, 1, 15, 4.0f, &cfg), TRC_OK);
    assert_int_equal(trc_model_create(&cfg, model), TRC_OK);
    trc_safetensors st;
    read_st(file, &st);
    assert_int_equal(st.count, model->num_views);
    for (size_t i = 0; i < model->num_views; i++) {
        const trc_param_view *v = &model->views[i];
        const trc_st_tensor *t = trc_st_find(&st, v->name);
        if (!t)
            fail_msg("parameter %s missing from %s", v->name, file);
        assert_int_equal(t->ndim, v->ndim);
        for (int k = 0; k < v->ndim; k++)
            assert_int_equal(t->shape[k], v->shape[k]);
        assert_int_equal(trc_st_to_f32(t, model->params + v->offset), TRC_OK);
    }
    trc_st_free(&st);
}

#endif
