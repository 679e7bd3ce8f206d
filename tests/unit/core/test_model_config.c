/* Model configuration and parameters: preset sizes and their exact parameter counts, the names
 * and shapes of model.md in order, validation of bad configurations, and the original
 * initialization (deterministic per seed, inside its distribution bounds). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trc/error.h"
#include "trc/model.h"

static void test_param_counts(void **state) {
    (void)state;
    const char *sizes[] = {"small", "medium", "large"};
    size_t want[] = {104862, 530590, 2604062};
    int d[] = {64, 128, 256}, h[] = {128, 256, 512}, blocks[] = {2, 3, 4}, heads[] = {2, 4, 8};
    for (int i = 0; i < 3; i++) {
        trc_model_config cfg;
        assert_int_equal(trc_model_config_preset(sizes[i], 2, 1, 15, 4.0f, &cfg), TRC_OK);
        assert_string_equal(cfg.size, sizes[i]);
        assert_int_equal(cfg.d, d[i]);
        assert_int_equal(cfg.h, h[i]);
        assert_int_equal(cfg.blocks, blocks[i]);
        assert_int_equal(cfg.heads, heads[i]);
        assert_int_equal(cfg.K, 3);
        assert_int_equal(cfg.n, 3);
        assert_int_equal(trc_model_param_count(&cfg), want[i]);
        trc_model model;
        assert_int_equal(trc_model_create(&cfg, &model), TRC_OK);
        assert_int_equal(model.num_params, want[i]);
        /* views tile the buffer exactly, in order */
        size_t off = 0;
        for (size_t v = 0; v < model.num_views; v++) {
            assert_int_equal(model.views[v].offset, off);
            size_t numel = (size_t)model.views[v].shape[0] *
                           (model.views[v].ndim == 2 ? (size_t)model.views[v].shape[1] : 1);
            assert_int_equal(model.views[v].numel, numel);
            off += numel;
        }
        assert_int_equal(off, want[i]);
        for (size_t j = 0; j < model.num_params; j++) /* created zeroed */
            assert_true(model.params[j] == 0.0f);
        trc_model_free(&model);
    }
    /* another problem shape changes the input, embedding and output layers only */
    trc_model_config cfg;
    assert_int_equal(trc_model_config_preset("small", 4, 2, 10, 1.0f, &cfg), TRC_OK);
    int s = 4, U = 20, dd = 64, hh = 128;
    size_t delta = (size_t)(2 * s + 1 - 5) * hh   /* state encoder input */
                   + (size_t)(s - 2) * (hh / 2)   /* error encoder input */
                   + (size_t)(U - 15) * dd        /* control embedding */
                   + (size_t)(U - 15) * (hh + 1)  /* generator output */
                   + (size_t)(U - 15) * hh        /* decoder input */
                   + (size_t)(U - 15) * (hh + 1); /* decoder output */
    assert_int_equal(trc_model_param_count(&cfg), 104862 + delta);
}

/* model.md's table, for blocks = 2, d = 64, h = 128, s = 2, U = 15 */
static void test_names_and_shapes(void **state) {
    (void)state;
    struct {
        const char *name;
        int r, c;
    } want[] = {
        {"state_encoder.encoder.0.weight", 128, 5},
        {"state_encoder.encoder.0.bias", 128, 0},
        {"state_encoder.encoder.2.weight", 128, 0},
        {"state_encoder.encoder.2.bias", 128, 0},
        {"state_encoder.encoder.3.weight", 64, 128},
        {"state_encoder.encoder.3.bias", 64, 0},
        {"error_encoder.encoder.0.weight", 64, 2},
        {"error_encoder.encoder.0.bias", 64, 0},
        {"error_encoder.encoder.2.weight", 64, 0},
        {"error_encoder.encoder.2.bias", 64, 0},
        {"error_encoder.encoder.3.weight", 64, 64},
        {"error_encoder.encoder.3.bias", 64, 0},
#define BLOCK(i)                                                                                   \
    {"recursive_reasoning.reasoning_blocks." #i ".attention.in_proj_weight", 192, 64},             \
        {"recursive_reasoning.reasoning_blocks." #i ".attention.in_proj_bias", 192, 0},            \
        {"recursive_reasoning.reasoning_blocks." #i ".attention.out_proj.weight", 64, 64},         \
        {"recursive_reasoning.reasoning_blocks." #i ".attention.out_proj.bias", 64, 0},            \
        {"recursive_reasoning.reasoning_blocks." #i ".norm1.weight", 64, 0},                       \
        {"recursive_reasoning.reasoning_blocks." #i ".norm1.bias", 64, 0},                         \
        {"recursive_reasoning.reasoning_blocks." #i ".ffn.0.weight", 128, 64},                     \
        {"recursive_reasoning.reasoning_blocks." #i ".ffn.0.bias", 128, 0},                        \
        {"recursive_reasoning.reasoning_blocks." #i ".ffn.3.weight", 64, 128},                     \
        {"recursive_reasoning.reasoning_blocks." #i ".ffn.3.bias", 64, 0},                         \
        {"recursive_reasoning.reasoning_blocks." #i ".norm2.weight", 64, 0},                       \
        {"recursive_reasoning.reasoning_blocks." #i ".norm2.bias", 64, 0}
        BLOCK(0),
        BLOCK(1),
#undef BLOCK
        {"recursive_reasoning.control_embedding.weight", 64, 15},
        {"recursive_reasoning.control_embedding.bias", 64, 0},
        {"recursive_reasoning.error_embedding.weight", 64, 2},
        {"recursive_reasoning.error_embedding.bias", 64, 0},
        {"initial_control_generator.decoder.0.weight", 128, 64},
        {"initial_control_generator.decoder.0.bias", 128, 0},
        {"initial_control_generator.decoder.2.weight", 128, 0},
        {"initial_control_generator.decoder.2.bias", 128, 0},
        {"initial_control_generator.decoder.3.weight", 15, 128},
        {"initial_control_generator.decoder.3.bias", 15, 0},
        {"control_decoder.decoder.0.weight", 128, 79},
        {"control_decoder.decoder.0.bias", 128, 0},
        {"control_decoder.decoder.2.weight", 128, 0},
        {"control_decoder.decoder.2.bias", 128, 0},
        {"control_decoder.decoder.3.weight", 15, 128},
        {"control_decoder.decoder.3.bias", 15, 0},
    };
    size_t n = sizeof want / sizeof want[0];
    trc_model_config cfg;
    assert_int_equal(trc_model_config_preset("small", 2, 1, 15, 4.0f, &cfg), TRC_OK);
    trc_model model;
    assert_int_equal(trc_model_create(&cfg, &model), TRC_OK);
    assert_int_equal(model.num_views, n);
    for (size_t i = 0; i < n; i++) {
        const trc_param_view *v = &model.views[i];
        assert_string_equal(v->name, want[i].name);
        assert_int_equal(v->ndim, want[i].c ? 2 : 1);
        assert_int_equal(v->shape[0], want[i].r);
        if (want[i].c)
            assert_int_equal(v->shape[1], want[i].c);
        assert_ptr_equal(trc_model_find(&model, want[i].name), v);
    }
    assert_null(trc_model_find(&model, "state_encoder.encoder.1.weight"));
    assert_null(trc_model_find(&model, NULL));
    trc_model_free(&model);
    trc_model_free(&model); /* idempotent */
}

static void test_validation(void **state) {
    (void)state;
    trc_model_config good, c;
    assert_int_equal(trc_model_config_preset("medium", 2, 1, 15, 4.0f, &good), TRC_OK);
    assert_int_equal(trc_model_config_validate(&good), TRC_OK);
    assert_int_equal(trc_model_config_preset("huge", 2, 1, 15, 4.0f, &c), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "huge"));
    assert_int_equal(trc_model_config_preset("small", 0, 1, 15, 4.0f, &c), TRC_EINVAL);
    assert_int_equal(trc_model_config_preset("small", 2, 1, 15, 0.0f, &c), TRC_EINVAL);
    assert_int_equal(trc_model_config_preset("small", 2, 1, 15, NAN, &c), TRC_EINVAL);
    assert_int_equal(trc_model_config_preset("small", 2, 1, 15, INFINITY, &c), TRC_EINVAL);
    assert_int_equal(trc_model_config_preset("small", 2, -1, 15, 4.0f, &c), TRC_EINVAL);
    assert_int_equal(trc_model_config_preset("small", 2, 1, 0, 4.0f, &c), TRC_EINVAL);
    assert_int_equal(trc_model_config_preset("small", 2, 1000, 1000, 4.0f, &c), TRC_EINVAL);
    assert_int_equal(trc_model_config_validate(NULL), TRC_EINVAL);

#define BAD(field, value, needle)                                                                  \
    do {                                                                                           \
        c = good;                                                                                  \
        c.field = value;                                                                           \
        assert_int_equal(trc_model_config_validate(&c), TRC_EINVAL);                               \
        assert_non_null(strstr(trc_errmsg(), needle));                                             \
        assert_int_equal(trc_model_param_count(&c), 0);                                            \
        trc_model m;                                                                               \
        assert_int_equal(trc_model_create(&c, &m), TRC_EINVAL);                                    \
        assert_null(m.params);                                                                     \
    } while (0)
    BAD(d, 0, "d (latent)");
    BAD(h, -4, "h (hidden)");
    BAD(blocks, 0, "blocks");
    BAD(blocks, TRC_MAX_BLOCKS + 1, "blocks");
    BAD(heads, 0, "heads");
    BAD(heads, 3, "divisible"); /* 128 % 3 != 0 */
    BAD(K, 0, "K (outer");
    BAD(n, 0, "n (inner");
    BAD(s, 100000, "s (state");
    BAD(dt, -0.1, "dt");
    BAD(dt, NAN, "dt");
    BAD(bound, -1.0f, "bound");
    BAD(d, 64, "custom"); /* "medium" with small's latent */
#undef BAD
    c = good;
    c.h = 255; /* the error encoder needs h/2 */
    assert_int_equal(trc_model_config_validate(&c), TRC_EINVAL);
    c = good;
    strcpy(c.size, "tiny");
    assert_int_equal(trc_model_config_validate(&c), TRC_EINVAL);
    c = good;
    memset(c.size, 'x', sizeof c.size); /* unterminated */
    assert_int_equal(trc_model_config_validate(&c), TRC_EINVAL);
    c = good;
    memset(c.system, 'x', sizeof c.system);
    assert_int_equal(trc_model_config_validate(&c), TRC_EINVAL);

    /* custom sizes are fine when self-consistent */
    c = good;
    strcpy(c.size, "custom");
    c.d = 24, c.h = 40, c.blocks = 5, c.heads = 3, c.K = 1, c.n = 7;
    strcpy(c.system, "double_integrator");
    c.dt = 0.1;
    assert_int_equal(trc_model_config_validate(&c), TRC_OK);
    assert_true(trc_model_param_count(&c) > 0);
}

static int view_is(const trc_param_view *v, const char *suffix) {
    size_t n = strlen(v->name), k = strlen(suffix);
    return n >= k && strcmp(v->name + n - k, suffix) == 0;
}

static void test_init(void **state) {
    (void)state;
    trc_model_config cfg;
    assert_int_equal(trc_model_config_preset("small", 2, 1, 15, 4.0f, &cfg), TRC_OK);
    trc_model a, b, c;
    assert_int_equal(trc_model_create(&cfg, &a), TRC_OK);
    assert_int_equal(trc_model_create(&cfg, &b), TRC_OK);
    assert_int_equal(trc_model_create(&cfg, &c), TRC_OK);
    assert_int_equal(trc_model_init(&a, 42), TRC_OK);
    assert_int_equal(trc_model_init(&b, 42), TRC_OK);
    assert_int_equal(trc_model_init(&c, 43), TRC_OK);
    assert_memory_equal(a.params, b.params, a.num_params * sizeof(float));
    assert_memory_not_equal(a.params, c.params, a.num_params * sizeof(float));

    for (size_t i = 0; i < a.num_views; i++) {
        const trc_param_view *v = &a.views[i];
        const float *p = a.params + v->offset;
        const char *nm = v->name;
        double bound; /* uniform in [-bound, bound]; 0 = all zero; -1 = all one */
        int fan_in = v->ndim == 2 ? v->shape[1] : 0, fan_out = v->shape[0];
        int is_ln = strstr(nm, "norm") != NULL || strstr(nm, "coder.2.") != NULL;
        int xavier_gain1 = strncmp(nm, "state_encoder.", 14) == 0 || strstr(nm, "in_proj") != NULL;
        int gen = strncmp(nm, "initial_control_generator.", 26) == 0;
        int dec = strncmp(nm, "control_decoder.", 16) == 0;
        if (is_ln)
            bound = view_is(v, ".weight") ? -1 : 0;
        else if (xavier_gain1 || gen || dec) {
            double gain = xavier_gain1 ? 1.0 : (gen ? 0.1 : 0.01);
            bound = v->ndim == 2 ? gain * sqrt(6.0 / (fan_in + fan_out)) : 0;
        } else if (strstr(nm, "out_proj")) {
            bound = v->ndim == 2 ? 1.0 / sqrt(fan_in) : 0;
        } else { /* default Linear: weight and bias in +-1/sqrt(fan_in of the weight) */
            const trc_param_view *w = v->ndim == 2 ? v : v - 1;
            bound = 1.0 / sqrt(w->shape[1]);
        }
        double maxabs = 0, sum = 0, sumsq = 0;
        for (size_t j = 0; j < v->numel; j++) {
            if (bound == -1) {
                assert_true(p[j] == 1.0f);
                continue;
            }
            if (bound == 0) {
                assert_true(p[j] == 0.0f);
                continue;
            }
            if (!(fabs(p[j]) <= bound * (1 + 1e-6)))
                fail_msg("%s[%zu] = %g outside +-%g", nm, j, (double)p[j], bound);
            maxabs = fmax(maxabs, fabs(p[j]));
            sum += p[j];
            sumsq += (double)p[j] * p[j];
        }
        if (bound > 0 && v->numel >= 1000) {
            /* it fills its range: uniform, so mean ~ 0 and variance ~ bound^2 / 3 */
            double mean = sum / v->numel, var = sumsq / v->numel - mean * mean;
            assert_true(maxabs > 0.95 * bound);
            assert_true(fabs(mean) < 0.1 * bound);
            assert_true(fabs(var / (bound * bound / 3.0) - 1.0) < 0.1);
        }
    }
    trc_model_free(&a);
    trc_model_free(&b);
    trc_model_free(&c);
    assert_int_equal(trc_model_init(&a, 1), TRC_EINVAL); /* freed */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_counts),
        cmocka_unit_test(test_names_and_shapes),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_init),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
