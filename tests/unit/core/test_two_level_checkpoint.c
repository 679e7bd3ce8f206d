/* The two-level networks through the normal checkpoint path (architectures table): the
 * original's exports (the v2 fixtures) load strictly as trc_model with their arch and match
 * their cases through trc_model_infer and trc_trainer (mse objective); ours round-trip bit for
 * bit under both key spellings with arch and names in the metadata; bad input is refused. */
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
#include "trc/arch.h"
#include "trc/checkpoint.h"
#include "trc/error.h"
#include "trc/model.h"
#include "trc/two_level.h"

static void load_fixture(const char *name, trc_model *m) {
    char file[128];
    snprintf(file, sizeof file, "v2/%s.safetensors", name);
    if (trc_checkpoint_load(test_data_path(file), NULL, m))
        fail_msg("%s: %s", file, trc_errmsg());
}

/* feedback: the fixture's run with trajectory feedback, here as the model setting (the
 * repository's double integrator at the fixture's dt = 5/15, simulated in double) */
static void normal_path(const char *name, const char *arch, size_t floats, int feedback) {
    trc_model m;
    load_fixture(name, &m);
    if (feedback) {
        m.cfg.feedback = 1;
        snprintf(m.cfg.system, sizeof m.cfg.system, "double_integrator");
        m.cfg.dt = 5.0 / 15.0;
        assert_int_equal(trc_model_config_validate(&m.cfg), TRC_OK);
    }
    assert_string_equal(m.cfg.arch, arch);
    assert_string_equal(m.cfg.size, "small");
    assert_int_equal(m.num_params, floats);
    assert_int_equal(m.cfg.K, 3);
    assert_int_equal(m.cfg.n, 4);
    char file[128];
    snprintf(file, sizeof file, "v2/%s.case.safetensors", name);
    trc_safetensors st;
    read_st(file, &st);
    float *x0 = tensor(&st, "x0", 16), *tg = tensor(&st, "target", 16);
    float *ue = tensor(&st, "u_expert", 120), *want = tensor(&st, "iterates", 480);
    float it[480], u[120];
    assert_int_equal(trc_model_infer(&m, 8, x0, tg, u, it), TRC_OK);
    v2_check_close(it, want, 480, 1e-5f, "iterates (trc_model_infer)");
    trc_trainer *tr;
    assert_int_equal(trc_trainer_create(&m, 8, &tr), TRC_OK);
    float loss, *wl = tensor(&st, "loss", 1);
    assert_int_equal(trc_trainer_forward(tr, 8, x0, tg, NULL, ue, u, &loss), TRC_OK);
    assert_true(fabsf(loss - wl[0]) <= 1e-5f * wl[0]);
    assert_int_equal(trc_trainer_backward(tr), TRC_OK);
    const float *g = trc_trainer_grads(tr);
    for (size_t i = 0; i < m.num_views; i++) {
        char gname[TRC_PARAM_NAME_MAX + 8];
        snprintf(gname, sizeof gname, "grad.%s", m.views[i].name);
        if (!trc_st_find(&st, gname)) { /* trm_style's buffers: no gradient, none computed */
            for (size_t j = 0; j < m.views[i].numel; j++)
                assert_true(g[m.views[i].offset + j] == 0.0f);
            continue;
        }
        float *wg = tensor(&st, gname, m.views[i].numel), mx = 0.0f;
        for (size_t j = 0; j < m.views[i].numel; j++)
            mx = fmaxf(mx, fabsf(wg[j]));
        v2_check_close(g + m.views[i].offset, wg, m.views[i].numel, 1e-4f * mx, gname);
        free(wg);
    }
    trc_trainer_free(tr);

    /* round trip, both spellings */
    const char *names[] = {TRC_NAMES_NEW, TRC_NAMES_OLD};
    for (int k = 0; k < 2; k++) {
        uint8_t *buf;
        size_t len;
        assert_int_equal(trc_checkpoint_encode_names(&m, names[k], "{\"epochs\": 1}", &buf, &len),
                         TRC_OK);
        trc_safetensors s2;
        assert_int_equal(trc_st_parse(buf, len, &s2), TRC_OK);
        assert_string_equal(trc_st_meta(&s2, "arch"), arch);
        assert_string_equal(trc_st_meta(&s2, "names"), names[k]);
        if (feedback)
            assert_string_equal(trc_st_meta(&s2, "feedback"), "true");
        else
            assert_null(trc_st_meta(&s2, "feedback"));
        assert_int_equal(
            trc_st_find(&s2, "recursive_reasoning.L_level.layers.1.ffn.0.bias") != NULL, k);
        trc_st_free(&s2);
        trc_model b;
        assert_int_equal(trc_checkpoint_decode(buf, len, NULL, &b), TRC_OK);
        assert_memory_equal(&m.cfg, &b.cfg, sizeof m.cfg);
        assert_memory_equal(m.params, b.params, m.num_params * sizeof(float));
        float u2[120];
        assert_int_equal(trc_model_infer(&b, 8, x0, tg, u2, NULL), TRC_OK);
        assert_memory_equal(u2, it + 3 * 120, sizeof u2);
        trc_model_free(&b);
        free(buf);
    }
    free(x0), free(tg), free(ue), free(want), free(wl);
    trc_st_free(&st);
    trc_model_free(&m);
}

static void test_two_level(void **state) {
    (void)state;
    normal_path("two_level_small", "two_level", 104990, 0);
}

static void test_trm_style(void **state) {
    (void)state;
    normal_path("trm_style_small", "trm_style", 207454 + 128, 0); /* + the buffers */
}

static void test_feedback(void **state) {
    (void)state;
    normal_path("two_level_small_fb", "two_level", 104990, 1);
    /* without the setting, the same parameters give other controls */
    trc_model m;
    load_fixture("two_level_small_fb", &m);
    trc_safetensors st;
    read_st("v2/two_level_small_fb.case.safetensors", &st);
    float *x0 = tensor(&st, "x0", 16), *tg = tensor(&st, "target", 16);
    float *want = tensor(&st, "iterates", 480), u[120];
    assert_int_equal(trc_model_infer(&m, 8, x0, tg, u, NULL), TRC_OK);
    float diff = 0.0f;
    for (int i = 0; i < 120; i++)
        diff = fmaxf(diff, fabsf(u[i] - want[360 + i]));
    assert_true(diff > 1e-3f);
    free(x0), free(tg), free(want);
    trc_st_free(&st);

    /* refusals: an architecture without feedback, no system, s != 2 (also from a file) */
    trc_model_config c = m.cfg;
    c.feedback = 1;
    assert_int_equal(trc_model_config_validate(&c), TRC_EINVAL); /* system not recorded */
    assert_non_null(strstr(trc_errmsg(), "not recorded"));
    snprintf(c.system, sizeof c.system, "rocket_landing");
    assert_int_equal(trc_model_config_validate(&c), TRC_EINVAL);
    trc_model_free(&m);
    assert_int_equal(trc_model_config_preset_arch("single", "small", 2, 1, 15, 4.0f, &c), TRC_OK);
    snprintf(c.system, sizeof c.system, "double_integrator");
    c.feedback = 1;
    assert_int_equal(trc_model_config_validate(&c), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "no trajectory feedback"));
    assert_int_equal(trc_model_config_preset_arch("trm_style", "small", 7, 3, 5, 4.0f, &c), TRC_OK);
    snprintf(c.system, sizeof c.system, "rocket_landing");
    assert_int_equal(trc_model_create(&c, &m), TRC_OK);
    m.cfg.feedback = 1; /* what a hostile or foreign writer could record */
    uint8_t *buf;
    size_t len;
    assert_int_equal(trc_checkpoint_encode_names(&m, TRC_NAMES_NEW, NULL, &buf, &len), TRC_OK);
    trc_model b;
    assert_int_equal(trc_checkpoint_decode(buf, len, NULL, &b), TRC_EFORMAT);
    assert_non_null(strstr(trc_errmsg(), "needs s = 2"));
    free(buf);
    trc_model_free(&m);
}

/* presets through the table, and refusals */
static void test_table(void **state) {
    (void)state;
    trc_model_config c;
    assert_int_equal(trc_model_config_preset_arch("two_level", "large", 2, 1, 15, 4.0f, &c),
                     TRC_OK);
    assert_int_equal(c.n, 6);
    assert_int_equal(trc_model_param_count(&c), 2077470);
    assert_int_equal(trc_model_config_preset_arch("trm_style", "medium", 2, 1, 15, 4.0f, &c),
                     TRC_OK);
    assert_int_equal(trc_model_param_count(&c), 463646 + 256);
    assert_int_equal(trc_model_config_preset_arch("three_level", "small", 2, 1, 15, 4.0f, &c),
                     TRC_EINVAL);
    assert_int_equal(trc_model_config_preset_arch("two_level", "small", 2, 1, 15, 4.0f, &c),
                     TRC_OK);
    c.K = 0;
    assert_int_equal(trc_model_config_validate(&c), TRC_EINVAL);
    /* initialization: H_init ~ N(0, 0.02^2), deterministic */
    c.K = 3;
    trc_model m;
    assert_int_equal(trc_model_create(&c, &m), TRC_OK);
    assert_int_equal(trc_model_init(&m, 3), TRC_OK);
    const trc_param_view *v = trc_model_find(&m, "recursive_reasoning.H_init");
    assert_non_null(v);
    double ss = 0;
    for (size_t j = 0; j < v->numel; j++)
        ss += (double)m.params[v->offset + j] * m.params[v->offset + j];
    assert_true(sqrt(ss / 64) > 0.01 && sqrt(ss / 64) < 0.03);
    assert_non_null(trc_model_find(&m, "recursive_reasoning.L_level.layers.0.ffn.0.weight"));
    trc_model_free(&m);
    /* tensors that fit no architecture */
    float w[4] = {1, 2, 3, 4};
    trc_st_out t = {"foo.weight", 2, {2, 2}, w};
    uint8_t *buf;
    size_t len;
    assert_int_equal(trc_st_encode(&t, 1, NULL, NULL, 0, &buf, &len), TRC_OK);
    assert_int_not_equal(trc_checkpoint_decode(buf, len, NULL, &m), TRC_OK);
    free(buf);
    /* the single-latent network writes either spelling too */
    assert_int_equal(trc_checkpoint_load(test_data_path("small_init.safetensors"), NULL, &m),
                     TRC_OK);
    assert_int_equal(trc_checkpoint_encode_names(&m, TRC_NAMES_NEW, NULL, &buf, &len), TRC_OK);
    trc_safetensors s2;
    assert_int_equal(trc_st_parse(buf, len, &s2), TRC_OK);
    assert_non_null(trc_st_find(&s2, "recursive_reasoning.reasoning_blocks.0.ffn.fc_out.bias"));
    assert_string_equal(trc_st_meta(&s2, "arch"), "single");
    trc_st_free(&s2);
    trc_model b;
    assert_int_equal(trc_checkpoint_decode(buf, len, NULL, &b), TRC_OK);
    assert_memory_equal(m.params, b.params, m.num_params * sizeof(float));
    trc_model_free(&b);
    free(buf);
    assert_int_equal(trc_checkpoint_encode_names(&m, "v3", NULL, &buf, &len), TRC_EINVAL);
    trc_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_level),
        cmocka_unit_test(test_trm_style),
        cmocka_unit_test(test_feedback),
        cmocka_unit_test(test_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
