/* Normalisation of a model's inputs and outputs (model.h, norm.c), for every architecture of the
 * table on rocket_landing's shape (s = 7, m = 3, T = 50): inference of a normalised model is the
 * network on normalised inputs with its answer mapped back and clamped per component; the
 * trainer's answer agrees with inference; the statistics survive a checkpoint round trip bit for
 * bit; hostile statistics in metadata or JSON are refused naming the key; a model without them
 * writes no normalisation key; statistics from data. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trc/arch.h"
#include "trc/checkpoint.h"
#include "trc/error.h"
#include "trc/model.h"
#include "trc/safetensors.h"

enum { S = 7, M = 3, T = 50, U = T * M, B = 5 };

static void expect_ok(int rc) {
    if (rc != TRC_OK)
        fail_msg("status %d: %s", rc, trc_errmsg());
}

static void expect_fail(int rc, int want, const char *needle) {
    if (rc != want)
        fail_msg("status %d (wanted %d): %s", rc, want, trc_errmsg());
    if (needle && !strstr(trc_errmsg(), needle))
        fail_msg("error '%s' does not mention '%s'", trc_errmsg(), needle);
}

/* Statistics on rocket_landing's scales (m, m/s, kg; N). */
static void set_stats(trc_model_config *c) {
    static const float xm[S] = {-5.9f, 0.2f, 1052.5f, 0.1f, -0.2f, -17.5f, 2003.8f};
    static const float xs[S] = {869.6f, 869.4f, 261.4f, 11.6f, 11.5f, 7.2f, 288.6f};
    static const float um[M] = {-3.3f, 7.2f, 7680.6f};
    static const float us[M] = {2488.8f, 2484.9f, 1985.3f};
    memcpy(c->x_mean, xm, sizeof xm), memcpy(c->x_std, xs, sizeof xs);
    memcpy(c->u_mean, um, sizeof um), memcpy(c->u_std, us, sizeof us);
    c->norm = 1;
}

/* The smallest size of architecture a, rocket shape, optionally normalised. */
static void make(const trc_arch *a, int norm, trc_model *m) {
    trc_model_config cfg;
    expect_ok(trc_model_config_preset_arch(a->name, a->sizes[0].name, S, M, T, 15000.0f, &cfg));
    cfg.K = 2, cfg.n = 2;
    snprintf(cfg.system, sizeof cfg.system, "rocket_landing");
    cfg.dt = 1.0;
    if (norm)
        set_stats(&cfg);
    expect_ok(trc_model_create(&cfg, m));
    expect_ok(trc_model_init(m, 11));
}

static void inputs(float *x0, float *tg) {
    static const double lo[S] = {-1500, -1500, 600, -20, -20, -30, 1500};
    static const double hi[S] = {1500, 1500, 1500, 20, 20, -5, 2500};
    for (int i = 0; i < B; i++)
        for (int k = 0; k < S; k++) {
            double r = 0.5 + 0.5 * sin(1.3 * i + 0.7 * k);
            x0[i * S + k] = (float)(lo[k] + r * (hi[k] - lo[k]));
            tg[i * S + k] = k == 6 ? 2000.0f : 0.0f;
        }
}

/* A normalised model answers clamp(u_mean + u_std y, -b, b), y the same network's answer on
 * (x - x_mean) / x_std; its iterates too, and the plan agrees with inference. */
static void test_infer_is_affine_around_the_network(void **state) {
    (void)state;
    for (size_t ai = 0; ai < trc_arch_count(); ai++) {
        const trc_arch *a = trc_arch_at(ai);
        trc_model nm, raw;
        make(a, 1, &nm);
        make(a, 0, &raw);
        assert_memory_equal(nm.params, raw.params, nm.num_params * sizeof(float));
        assert_true(trc_model_net_bound(&nm.cfg) > 11.0f && trc_model_net_bound(&nm.cfg) < 12.0f);
        assert_true(trc_model_net_bound(&raw.cfg) == 15000.0f);
        /* the raw model with the normalised model's network bound is the bare network */
        raw.cfg.bound = trc_model_net_bound(&nm.cfg);
        float x0[B * S], tg[B * S], xn[B * S], tn[B * S];
        inputs(x0, tg);
        trc_model_norm_states(&nm.cfg, B, x0, xn);
        trc_model_norm_states(&nm.cfg, B, tg, tn);
        const size_t NI = (size_t)(nm.cfg.K + 1) * B * U;
        float *u = malloc(B * U * sizeof *u), *y = malloc(B * U * sizeof *y);
        float *it = malloc(NI * sizeof *it), *ity = malloc(NI * sizeof *ity);
        float *up = malloc(B * U * sizeof *up);
        assert_non_null(u && y && it && ity && up);
        expect_ok(trc_model_infer(&nm, B, x0, tg, u, it));
        expect_ok(trc_model_infer(&raw, B, xn, tn, y, ity));
        trc_model_denorm_controls(&nm.cfg, B * T, y);
        trc_model_denorm_controls(&nm.cfg, (size_t)(nm.cfg.K + 1) * B * T, ity);
        for (size_t i = 0; i < (size_t)B * U; i++) {
            assert_true(fabsf(u[i]) <= 15000.0f);
            assert_true(u[i] == y[i]);
        }
        assert_memory_equal(it, ity, NI * sizeof *it);
        assert_memory_equal(it + (size_t)nm.cfg.K * B * U, u, B * U * sizeof *u);
        trc_infer_plan *plan;
        expect_ok(trc_infer_plan_create(&nm, &plan));
        expect_ok(trc_infer_plan_run(plan, B, x0, tg, NULL, up, NULL, 1));
        for (size_t i = 0; i < (size_t)B * U; i++)
            assert_true(fabsf(up[i] - u[i]) <= 1e-3f * (1.0f + fabsf(u[i])));
        trc_infer_plan_free(plan);
        /* the trainer sees the same network: its answer (physical) is inference's */
        trc_trainer *tr;
        expect_ok(trc_trainer_create(&nm, B, &tr));
        float loss;
        expect_ok(trc_trainer_forward(tr, B, x0, tg, NULL, u, up, &loss));
        for (size_t i = 0; i < (size_t)B * U; i++)
            assert_true(fabsf(up[i] - u[i]) <= 1e-3f * (1.0f + fabsf(u[i])));
        int unclamped = 1;
        for (size_t i = 0; i < (size_t)B * U; i++)
            unclamped &= fabsf(u[i]) < 15000.0f;
        assert_true(loss >= 0.0f && (!unclamped || loss < 1e-6f)); /* its own answer */
        expect_ok(trc_trainer_backward(tr));
        expect_fail(trc_trainer_forward(tr, B + 1, x0, tg, NULL, u, NULL, &loss), TRC_EINVAL,
                    "batch");
        trc_trainer_free(tr);
        free(u), free(y), free(it), free(ity), free(up);
        trc_model_free(&nm);
        trc_model_free(&raw);
    }
}

/* The trainer's loss is the MSE in normalised units: a uniform physical error of one u_std in
 * every component costs 1. */
static void test_loss_in_normalised_units(void **state) {
    (void)state;
    trc_model nm;
    make(trc_arch_find("single"), 1, &nm);
    nm.cfg.bound = 1e5f; /* far from the answers: no clamping */
    float x0[B * S], tg[B * S];
    inputs(x0, tg);
    float *u = malloc(B * U * sizeof *u), *ue = malloc(B * U * sizeof *ue);
    assert_non_null(u && ue);
    trc_trainer *tr;
    expect_ok(trc_trainer_create(&nm, B, &tr));
    float loss;
    expect_ok(trc_model_infer(&nm, B, x0, tg, u, NULL)); /* the model's answer */
    int unclamped = 1;
    for (size_t i = 0; i < (size_t)B * U; i++) {
        ue[i] = u[i] + nm.cfg.u_std[i % M];
        unclamped &= fabsf(u[i]) < nm.cfg.bound;
    }
    assert_true(unclamped);
    expect_ok(trc_trainer_forward(tr, B, x0, tg, NULL, ue, NULL, &loss));
    assert_true(fabsf(loss - 1.0f) < 1e-3f);
    trc_trainer_free(tr);
    free(u), free(ue);
    trc_model_free(&nm);
}

/* Encode -> decode keeps every statistic bit for bit and the answers; a model without
 * normalisation writes none of its keys. */
static void test_checkpoint_round_trip(void **state) {
    (void)state;
    for (size_t ai = 0; ai < trc_arch_count(); ai++) {
        trc_model m, back;
        make(trc_arch_at(ai), 1, &m);
        uint8_t *buf;
        size_t len;
        expect_ok(trc_checkpoint_encode(&m, NULL, &buf, &len));
        expect_ok(trc_checkpoint_decode(buf, len, NULL, &back));
        assert_int_equal(back.cfg.norm, 1);
        assert_memory_equal(back.cfg.x_mean, m.cfg.x_mean, S * sizeof(float));
        assert_memory_equal(back.cfg.x_std, m.cfg.x_std, S * sizeof(float));
        assert_memory_equal(back.cfg.u_mean, m.cfg.u_mean, M * sizeof(float));
        assert_memory_equal(back.cfg.u_std, m.cfg.u_std, M * sizeof(float));
        float x0[B * S], tg[B * S], u1[B * U], u2[B * U];
        inputs(x0, tg);
        expect_ok(trc_model_infer(&m, B, x0, tg, u1, NULL));
        expect_ok(trc_model_infer(&back, B, x0, tg, u2, NULL));
        assert_memory_equal(u1, u2, sizeof u1);
        trc_safetensors st;
        expect_ok(trc_st_parse(buf, len, &st));
        assert_string_equal(trc_st_meta(&st, "norm_u_std"), "2488.8,2484.9,1985.3");
        trc_st_free(&st);
        free(buf);
        trc_model_free(&back);
        trc_model_free(&m);

        make(trc_arch_at(ai), 0, &m);
        expect_ok(trc_checkpoint_encode(&m, NULL, &buf, &len));
        expect_ok(trc_st_parse(buf, len, &st));
        for (size_t k = 0; k < st.meta_count; k++)
            assert_null(strstr(st.meta_keys[k], "norm"));
        expect_ok(trc_checkpoint_decode(buf, len, NULL, &back));
        assert_int_equal(back.cfg.norm, 0);
        trc_st_free(&st);
        free(buf);
        trc_model_free(&back);
        trc_model_free(&m);
    }
}

/* Re-encodes st with the metadata key `key` set to `val` (NULL: removed). */
static int decode_with(const trc_safetensors *st, const char *key, const char *val,
                       trc_model *out) {
    const char *keys[32], *vals[32];
    size_t n = 0;
    for (size_t k = 0; k < st->meta_count && n < 32; k++) {
        if (strcmp(st->meta_keys[k], key) == 0)
            continue;
        keys[n] = st->meta_keys[k], vals[n++] = st->meta_values[k];
    }
    if (val)
        keys[n] = key, vals[n++] = val;
    trc_st_out *outs = calloc(st->count, sizeof *outs);
    assert_non_null(outs);
    for (size_t i = 0; i < st->count; i++) {
        outs[i].name = st->tensors[i].name;
        outs[i].ndim = st->tensors[i].ndim;
        memcpy(outs[i].shape, st->tensors[i].shape, sizeof outs[i].shape);
        outs[i].data = st->tensors[i].data;
    }
    uint8_t *buf;
    size_t len;
    expect_ok(trc_st_encode(outs, st->count, keys, vals, n, &buf, &len));
    free(outs);
    int rc = trc_checkpoint_decode(buf, len, NULL, out);
    free(buf);
    if (rc == TRC_OK)
        trc_model_free(out);
    return rc;
}

static void test_hostile_metadata(void **state) {
    (void)state;
    trc_model m, back;
    make(trc_arch_find("single"), 1, &m);
    uint8_t *buf;
    size_t len;
    expect_ok(trc_checkpoint_encode(&m, NULL, &buf, &len));
    trc_safetensors st;
    expect_ok(trc_st_parse(buf, len, &st));
    free(buf);
    trc_model_free(&m);
    const struct {
        const char *key, *val, *needle;
    } cases[] = {
        {"norm_x_std", NULL, "'norm_x_std' missing"},
        {"norm_u_mean", NULL, "'norm_u_mean' missing"},
        {"norm_x_std", "1,2,3", "'norm_x_std' has 3 values, expected s = 7"},
        {"norm_u_std", "1,2,3,4", "expected m = 3"},
        {"norm_u_std", "", "not a finite number"},
        {"norm_x_mean", "nan,0,0,0,0,0,0", "'norm_x_mean' entry 0 is not a finite"},
        {"norm_x_mean", "0,0,inf,0,0,0,0", "entry 2"},
        {"norm_x_mean", "0,0,1e39,0,0,0,0", "entry 2"}, /* beyond float */
        {"norm_x_mean", "0,0,0,0,0,0,", "entry 6"},
        {"norm_x_mean", "0,0,0,0,0,0,x", "entry 6"},
        {"norm_x_std", "1,1,1,1,1,1,0", "x_std[6] = 0 must be in"},
        {"norm_x_std", "1,1,1,-1,1,1,1", "x_std[3] = -1"},
        {"norm_u_std", "1,1,1e-12", "u_std[2]"},
        {"norm_u_mean", "0,0,1e12", "u_mean[2]"},
        {"norm_u_std", "1e-3,1,1", "bound in normalised units"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
        expect_fail(decode_with(&st, cases[c].key, cases[c].val, &back), TRC_EFORMAT,
                    cases[c].needle);
    expect_ok(decode_with(&st, "norm_u_std", "1,2,3", &back));
    trc_st_free(&st);
}

static void test_from_json_and_data(void **state) {
    (void)state;
    trc_model_config cfg;
    expect_ok(trc_model_config_preset("small", 2, 1, 4, 4.0f, &cfg));
    trc_model_config before = cfg;
    const char *bad[][2] = {
        {"[1]", "not a JSON object"},
        {"{\"x_mean\": [0, 0], \"x_std\": [1, 1], \"u_mean\": [0]}", "'u_std' must be an array"},
        {"{\"x_mean\": [0], \"x_std\": [1, 1], \"u_mean\": [0], \"u_std\": [1]}",
         "'x_mean' has 1 values, expected s = 2"},
        {"{\"x_mean\": [0, \"a\"], \"x_std\": [1, 1], \"u_mean\": [0], \"u_std\": [1]}",
         "'x_mean'[1] is not a number"},
        {"{\"x_mean\": [0, 0], \"x_std\": [1, 0], \"u_mean\": [0], \"u_std\": [1]}", "x_std[1]"},
        {"{\"x_mean\": [0, 0], \"x_std\": [1, 1], \"u_mean\": [0], \"u_std\": [1], \"y\": 1}",
         "unknown key 'y'"},
        {"{\"x_mean\": [0, 0], \"x_std\": [1, 1e300], \"u_mean\": [0], \"u_std\": [1]}",
         "x_std[1]"},
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        expect_fail(trc_model_norm_from_json(&cfg, bad[c][0]), TRC_EINVAL, bad[c][1]);
        assert_memory_equal(&cfg, &before, sizeof cfg); /* untouched on error */
    }
    expect_ok(trc_model_norm_from_json(
        &cfg, "{\"x_mean\": [1, 2], \"x_std\": [3, 4], \"u_mean\": [0.5], \"u_std\": [2]}"));
    assert_int_equal(cfg.norm, 1);
    assert_true(cfg.x_mean[1] == 2.0f && cfg.x_std[0] == 3.0f && cfg.u_std[0] == 2.0f);
    assert_true(trc_model_net_bound(&cfg) == 2.25f); /* (4 + 0.5) / 2 */
    expect_ok(trc_model_config_validate(&cfg));

    /* from data: mean and population std per component; a constant component gets std 1 */
    const float x[3 * 2] = {1, 5, 2, 5, 3, 5}, u[4] = {-1, 1, -1, 1};
    trc_model_config d = before;
    expect_ok(trc_model_norm_from_data(&d, 3, x, 4, u));
    assert_true(fabsf(d.x_mean[0] - 2.0f) < 1e-6f && fabsf(d.x_std[0] - sqrtf(2.0f / 3)) < 1e-6f);
    assert_true(d.x_mean[1] == 5.0f && d.x_std[1] == 1.0f);
    assert_true(d.u_mean[0] == 0.0f && d.u_std[0] == 1.0f);
    float xn[6], un[4];
    trc_model_norm_states(&d, 3, x, xn);
    assert_true(xn[1] == 0.0f && fabsf(xn[4] - 1.0f / sqrtf(2.0f / 3)) < 1e-5f);
    trc_model_norm_controls(&d, 4, u, un);
    assert_memory_equal(un, u, sizeof un);
    /* without normalisation every map is the identity */
    trc_model_norm_states(&before, 3, x, xn);
    assert_memory_equal(xn, x, sizeof xn);
    float y[4] = {9, -9, 3, -3};
    trc_model_denorm_controls(&before, 4, y);
    assert_true(y[0] == 9 && y[1] == -9);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_infer_is_affine_around_the_network),
        cmocka_unit_test(test_loss_in_normalised_units),
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_hostile_metadata),
        cmocka_unit_test(test_from_json_and_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
