/* two_level / trm_style configurations: parameter counts of model-v2.md section 10 (and the
 * per-component breakdown), the width rule, names and shapes in state_dict order, validation,
 * initialization, and loading errors (strict names and shapes, both key spellings). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "v2_fixture.h"
#include "trc/error.h"
#include "trc/two_level.h"

static size_t count(const char *arch, const char *size, int T) {
    trc_tl_config c;
    assert_int_equal(trc_tl_config_preset(arch, size, 2, 1, T, 4.0f, &c), TRC_OK);
    return trc_tl_param_count(&c);
}

static void test_counts(void **state) {
    (void)state;
    static const struct {
        const char *arch, *size;
        size_t t15, t100;
    } want[] = {
        {"two_level", "small", 104990, 143240},   {"two_level", "medium", 398366, 474696},
        {"two_level", "large", 2077470, 2229960}, {"trm_style", "small", 207454, 278344},
        {"trm_style", "medium", 463646, 539976},  {"trm_style", "large", 1633694, 1720904},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_int_equal(count(want[i].arch, want[i].size, 15), want[i].t15);
        assert_int_equal(count(want[i].arch, want[i].size, 100), want[i].t100);
    }
    /* trm_style stores 2d buffer values besides its parameters */
    trc_tl_config c;
    assert_int_equal(trc_tl_config_preset("trm_style", "small", 2, 1, 15, 4.0f, &c), TRC_OK);
    assert_int_equal(c.ffn, 256);
    assert_int_equal(c.h, 256);
    trc_tl_model m;
    assert_int_equal(trc_tl_create(&c, &m), TRC_OK);
    assert_int_equal(m.num_floats, 207454 + 128);
    /* breakdown: encoder 18,496 / error encoder 8,896 / blocks 132,992 */
    size_t enc = 0, err = 0, blk = 0;
    for (size_t i = 0; i < m.num_views; i++) {
        const char *n = m.views[i].name;
        enc += strncmp(n, "state_encoder.", 14) ? 0 : m.views[i].numel;
        err += strncmp(n, "error_encoder.", 14) ? 0 : m.views[i].numel;
        blk += strstr(n, ".L_level.layers.") ? m.views[i].numel : 0;
    }
    assert_int_equal(enc, 18496);
    assert_int_equal(err, 8896);
    assert_int_equal(blk, 132992);
    trc_tl_free(&m);
    assert_int_equal(trc_tl_config_preset("two_level", "large", 2, 1, 15, 4.0f, &c), TRC_OK);
    assert_int_equal(c.H, 3);
    assert_int_equal(c.L, 6);
    assert_int_equal(c.truncate, 1);
}

/* names and shapes in the order of the original's state_dict (the fixture file's tensors) */
static void test_names_match_fixture(void **state) {
    (void)state;
    const char *names[] = {"two_level_small", "trm_style_small"};
    for (int f = 0; f < 2; f++) {
        trc_tl_model m;
        v2_load(names[f], 0, &m);
        char file[128];
        snprintf(file, sizeof file, "v2/%s.safetensors", names[f]);
        trc_safetensors st;
        read_st(file, &st);
        assert_int_equal(st.count, m.num_views);
        for (size_t i = 0; i < m.num_views; i++) {
            const trc_st_tensor *t = trc_st_find(&st, m.views[i].name);
            assert_non_null(t);
            assert_int_equal(t->ndim, m.views[i].ndim);
        }
        /* state_dict order: H_init, L_init right after the error encoder; the control decoder
         * before the initial generator */
        assert_string_equal(m.views[12].name, "recursive_reasoning.H_init");
        assert_string_equal(m.views[m.num_views - 1].name,
                            "initial_control_generator.decoder.3.bias");
        trc_st_free(&st);
        trc_tl_free(&m);
    }
}

static void test_validation(void **state) {
    (void)state;
    trc_tl_config c, b;
    assert_int_equal(trc_tl_config_preset("two_level", "small", 2, 1, 15, 4.0f, &b), TRC_OK);
    assert_int_equal(trc_tl_config_preset("single", "small", 2, 1, 15, 4.0f, &c), TRC_EINVAL);
    assert_int_equal(trc_tl_config_preset("two_level", "huge", 2, 1, 15, 4.0f, &c), TRC_EINVAL);
    c = b, c.H = 0;
    assert_int_equal(trc_tl_config_validate(&c), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "H cycles"));
    c = b, c.L = 0;
    assert_int_equal(trc_tl_config_validate(&c), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "L cycles"));
    c = b, c.feedback = 1, c.s = 3;
    assert_int_equal(trc_tl_config_validate(&c), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "s = 2"));
    c = b, c.d = 96; /* not what "small" means */
    assert_int_equal(trc_tl_config_validate(&c), TRC_EINVAL);
    c = b, c.kind = TRC_TL_RMS_SWIGLU;
    assert_int_equal(trc_tl_config_validate(&c), TRC_EINVAL);
    c = b, c.bound = NAN;
    assert_int_equal(trc_tl_config_validate(&c), TRC_EINVAL);
    trc_tl_model m;
    c = b, c.layers = TRC_TL_MAX_LAYERS + 1;
    assert_int_equal(trc_tl_create(&c, &m), TRC_EINVAL);
    /* the H cycle count is a run-time setting: H = 1 differentiates cycle 0 (H_init gets a
     * gradient), the preset H = 3 does not */
    c = b, c.H = 1;
    assert_int_equal(trc_tl_create(&c, &m), TRC_OK);
    assert_int_equal(m.has_grad[12], 1);
    trc_tl_free(&m);
    assert_int_equal(trc_tl_create(&b, &m), TRC_OK);
    assert_int_equal(m.has_grad[12], 0);
    trc_tl_free(&m);
}

static void test_init(void **state) {
    (void)state;
    trc_tl_config c;
    assert_int_equal(trc_tl_config_preset("trm_style", "small", 2, 1, 15, 4.0f, &c), TRC_OK);
    trc_tl_model a, b;
    assert_int_equal(trc_tl_create(&c, &a), TRC_OK);
    assert_int_equal(trc_tl_create(&c, &b), TRC_OK);
    assert_int_equal(trc_tl_init(&a, 7), TRC_OK);
    assert_int_equal(trc_tl_init(&b, 7), TRC_OK);
    assert_memory_equal(a.params, b.params, a.num_floats * sizeof(float));
    const trc_param_view *v = trc_tl_find(&a, "recursive_reasoning.H_init");
    double ss = 0;
    for (size_t j = 0; j < v->numel; j++)
        ss += (double)a.params[v->offset + j] * a.params[v->offset + j];
    double sd = sqrt(ss / (double)v->numel);
    assert_true(sd > 0.01 && sd < 0.03); /* N(0, 0.02^2) */
    v = trc_tl_find(&a, "recursive_reasoning.L_level.layers.0.norm1.weight");
    for (size_t j = 0; j < v->numel; j++)
        assert_true(a.params[v->offset + j] == 1.0f);
    assert_null(trc_tl_find(&a, "recursive_reasoning.L_level.layers.0.norm1.bias"));
    v = trc_tl_find(&a, "recursive_reasoning.L_level.layers.0.ffn.fc_in.weight");
    assert_int_equal(v->shape[0], 512); /* [2I, d]: gate and value */
    for (size_t j = 0; j < v->numel; j++)
        assert_true(fabsf(a.params[v->offset + j]) <= 1.0f / 8.0f); /* U(+-1/sqrt(64)) */
    trc_tl_free(&a);
    trc_tl_free(&b);
}

/* A state_dict rewritten: one tensor renamed to the ec6511d spelling (loads), both spellings
 * (refused), a tensor missing, one extra, a wrong shape (each refused with its name). */
static void test_load_errors(void **state) {
    (void)state;
    trc_safetensors st;
    read_st("v2/two_level_small.safetensors", &st);
    size_t n = st.count;
    trc_st_out *outs = calloc(n + 1, sizeof *outs);
    float **data = calloc(n, sizeof *data);
    assert_non_null(outs), assert_non_null(data);
    for (size_t i = 0; i < n; i++) {
        const trc_st_tensor *t = &st.tensors[i];
        data[i] = malloc(t->numel * sizeof(float));
        assert_int_equal(trc_st_to_f32(t, data[i]), TRC_OK);
        outs[i] = (trc_st_out){t->name, t->ndim, {t->shape[0], t->shape[1]}, data[i]};
    }
    size_t k = (size_t)(trc_st_find(&st, "recursive_reasoning.L_level.layers.1.ffn.fc_in.weight") -
                        st.tensors);
    struct {
        const char *rename;  /* new name of tensor k, or NULL */
        int extra, drop, rc; /* append a copy of k under the old spelling / drop tensor k */
        const char *msg;
    } cases[] = {
        {"recursive_reasoning.L_level.layers.1.ffn.0.weight", 0, 0, TRC_OK, NULL},
        {NULL, 1, 0, TRC_EFORMAT, "given twice"},
        {NULL, 0, 1, TRC_EFORMAT, "missing tensor"},
        {"recursive_reasoning.L_level.layers.1.ffn.gate.weight", 0, 0, TRC_EFORMAT, "unexpected"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        trc_st_out saved = outs[k];
        size_t cnt = n;
        if (cases[c].rename)
            outs[k].name = cases[c].rename;
        if (cases[c].extra) {
            outs[n] = outs[k];
            outs[n].name = "recursive_reasoning.L_level.layers.1.ffn.0.weight";
            cnt = n + 1;
        }
        if (cases[c].drop)
            outs[k] = outs[--cnt];
        uint8_t *buf;
        size_t len;
        assert_int_equal(trc_st_encode(outs, cnt, NULL, NULL, 0, &buf, &len), TRC_OK);
        trc_safetensors s2;
        assert_int_equal(trc_st_parse(buf, len, &s2), TRC_OK);
        trc_tl_config cfg;
        assert_int_equal(trc_tl_config_from_tensors(&s2, 1, 0, &cfg), TRC_OK);
        trc_tl_model m;
        assert_int_equal(trc_tl_create(&cfg, &m), TRC_OK);
        int rc = trc_tl_load_tensors(&s2, &m);
        if (rc != cases[c].rc)
            fail_msg("case %zu: rc %d (%s)", c, rc, trc_errmsg());
        if (cases[c].msg)
            assert_non_null(strstr(trc_errmsg(), cases[c].msg));
        trc_tl_free(&m);
        trc_st_free(&s2);
        free(buf);
        outs[k] = saved;
        if (cases[c].drop)
            outs[n - 1] = (trc_st_out){st.tensors[n - 1].name,
                                       st.tensors[n - 1].ndim,
                                       {st.tensors[n - 1].shape[0], st.tensors[n - 1].shape[1]},
                                       data[n - 1]};
    }
    /* the single-latent fixture is no two-level model */
    trc_safetensors s1;
    read_st("v2/single_small.safetensors", &s1);
    trc_tl_config cfg;
    assert_int_equal(trc_tl_config_from_tensors(&s1, 1, 0, &cfg), TRC_EFORMAT);
    trc_st_free(&s1);
    for (size_t i = 0; i < n; i++)
        free(data[i]);
    free(data), free(outs);
    trc_st_free(&st);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),      cmocka_unit_test(test_names_match_fixture),
        cmocka_unit_test(test_validation),  cmocka_unit_test(test_init),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
