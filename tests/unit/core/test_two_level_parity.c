/* Parity of the two-level networks with the original (tests/data/v2/README.md): two_level_small,
 * trm_style_small and two_level_small_fb (trajectory feedback through the fixtures' ZOH double
 * integrator): every iterate and the final latent (1e-5 absolute), the MSE, every gradient
 * (1e-4 of each tensor's largest magnitude), which gradients are absent, and five AdamW steps
 * that skip the absent ones (losses within 1e-6 relative). */
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
#include "trc/optim.h"
#include "trc/two_level.h"

#define NB V2_NB
#define STEPS 5

/* The set of tensors without a gradient equals the case file's params_without_grad. */
static void check_absent(const trc_tl_model *m, const trc_safetensors *st) {
    const char *list = trc_st_meta(st, "params_without_grad");
    assert_non_null(list);
    size_t absent = 0;
    for (size_t i = 0; i < m->num_views; i++) {
        if (m->role[i] == TRC_TL_BUFFER) {
            assert_int_equal(m->has_grad[i], 0);
            continue;
        }
        const char *n = m->views[i].name, *p = strstr(list, n);
        size_t len = strlen(n);
        int listed = 0;
        while (p) { /* a whole comma-separated item, not a prefix of a longer name */
            if ((p == list || p[-1] == ',') && (p[len] == ',' || p[len] == '\0'))
                listed = 1;
            p = strstr(p + 1, n);
        }
        if (listed == m->has_grad[i])
            fail_msg("%s: gradient %s, reference %s", n, m->has_grad[i] ? "present" : "absent",
                     listed ? "absent" : "present");
        absent += listed;
    }
    size_t commas = 1;
    for (const char *c = list; *c; c++)
        commas += *c == ',';
    assert_int_equal(absent, commas);
}

static void run_case(const char *name, int feedback, const char *arch, size_t trainable) {
    trc_tl_model model;
    v2_load(name, feedback, &model);
    assert_string_equal(model.cfg.arch, arch);
    assert_string_equal(model.cfg.size, "small");
    assert_int_equal(model.num_trainable, trainable);
    trc_tl_sim sim = v2_zoh_sim();
    char file[256];
    snprintf(file, sizeof file, "v2/%s.case.safetensors", name);
    trc_safetensors st;
    read_st(file, &st);
    const size_t U = 15, H = (size_t)model.cfg.H, d = (size_t)model.cfg.d;
    float *x0 = tensor(&st, "x0", NB * 2), *tg = tensor(&st, "target", NB * 2);
    float *ue = tensor(&st, "u_expert", NB * U);
    float *want_it = tensor(&st, "iterates", (H + 1) * NB * U);
    float *want_lat = tensor(&st, "final_latent", NB * d), *want_loss = tensor(&st, "loss", 1);
    float *want_adam = tensor(&st, "adamw_losses", STEPS);
    check_absent(&model, &st);

    /* inference: batched and one row at a time */
    float *u = malloc(NB * U * sizeof *u), *it = malloc((H + 1) * NB * U * sizeof *it);
    float *lat = malloc(NB * d * sizeof *lat);
    assert_non_null(u), assert_non_null(it), assert_non_null(lat);
    assert_int_equal(trc_tl_infer(&model, &sim, NB, x0, tg, NULL, u, it, lat), TRC_OK);
    v2_check_close(it, want_it, (H + 1) * NB * U, 1e-5f, "iterates");
    v2_check_close(u, want_it + H * NB * U, NB * U, 1e-5f, "output");
    v2_check_close(lat, want_lat, NB * d, 1e-5f, "final_latent");
    for (size_t r = 0; r < NB; r++) {
        float u1[15];
        assert_int_equal(
            trc_tl_infer(&model, &sim, 1, x0 + 2 * r, tg + 2 * r, NULL, u1, NULL, NULL), TRC_OK);
        v2_check_close(u1, want_it + (H * NB + r) * U, U, 1e-5f, "single-row output");
    }
    if (feedback) { /* the errors each cycle saw (of the reference iterates: x_T amplifies an
                       iterate's rounding up to (T-t) dt per step) */
        float *want_err = tensor(&st, "errors", H * NB * 2);
        float traj[32];
        for (size_t k = 0; k < H; k++)
            for (size_t r = 0; r < NB; r++) {
                v2_zoh_rollout(NULL, x0 + 2 * r, want_it + (k * NB + r) * U, traj, NULL, NULL);
                float e[2] = {traj[30] - tg[2 * r], traj[31] - tg[2 * r + 1]};
                v2_check_close(e, want_err + (k * NB + r) * 2, 2, 1e-5f, "errors");
            }
        free(want_err);
    }

    /* training forward, MSE and backward */
    trc_tl_trainer *tr;
    assert_int_equal(trc_tl_trainer_create(&model, 16, &tr), TRC_OK);
    trc_tl_trainer_set_sim(tr, &sim);
    float loss;
    assert_int_equal(trc_tl_trainer_step_mse(tr, NB, x0, tg, ue, &loss), TRC_OK);
    v2_check_close(trc_tl_trainer_iterates(tr), want_it, (H + 1) * NB * U, 1e-5f,
                   "training iterates");
    assert_true(fabsf(loss - want_loss[0]) <= 1e-5f * fabsf(want_loss[0]));
    const float *g = trc_tl_trainer_grads(tr);
    size_t n = v2_check_grads(&model, g, &st, "grad.", 1e-4f, 0);
    assert_int_equal(n, model.num_views - (model.cfg.kind == TRC_TL_RMS_SWIGLU ? 2 : 0));
    /* absent gradients are exactly zero; the query/key rows are present and zero */
    for (size_t i = 0; i < model.num_views; i++)
        if (!model.has_grad[i])
            for (size_t j = 0; j < model.views[i].numel; j++)
                assert_true(g[model.views[i].offset + j] == 0.0f);
    /* repeatable: a different batch in between, then bit-identical gradients */
    float *g1 = malloc(model.num_floats * sizeof *g1);
    assert_non_null(g1);
    memcpy(g1, g, model.num_floats * sizeof *g1);
    assert_int_equal(trc_tl_trainer_step_mse(tr, 3, x0, tg, ue, &loss), TRC_OK);
    assert_int_equal(trc_tl_trainer_step_mse(tr, NB, x0, tg, ue, &loss), TRC_OK);
    assert_memory_equal(g1, trc_tl_trainer_grads(tr), model.num_floats * sizeof *g1);

    /* five AdamW steps with clipping, absent gradients skipped */
    float *before = malloc(model.num_floats * sizeof *before);
    assert_non_null(before);
    memcpy(before, model.params, model.num_floats * sizeof *before);
    trc_adamw opt;
    assert_int_equal(trc_adamw_init(&opt, model.num_floats, 1e-5), TRC_OK);
    for (int k = 0; k < STEPS; k++) {
        assert_int_equal(trc_tl_trainer_step_mse(tr, NB, x0, tg, ue, &loss), TRC_OK);
        double rel = fabs((double)loss - want_adam[k]) / fabs((double)want_adam[k]);
        if (getenv("V2_VERBOSE"))
            fprintf(stderr, "%s AdamW step %d: relative %.3g\n", name, k, rel);
        if (rel > 1e-6)
            fail_msg("%s AdamW step %d: loss %.9g, reference %.9g (relative %.2g)", name, k,
                     (double)loss, (double)want_adam[k], rel);
        assert_int_equal(trc_tl_optim_step(&model, &opt, trc_tl_trainer_grads(tr), 1e-3, 1.0, NULL),
                         TRC_OK);
    }
    assert_true(want_adam[STEPS - 1] < want_adam[0]);
    /* absent: untouched (no decay either); present: moved */
    for (size_t i = 0; i < model.num_views; i++) {
        const trc_param_view *v = &model.views[i];
        int same = memcmp(before + v->offset, model.params + v->offset, v->numel * 4) == 0;
        if (same == model.has_grad[i])
            fail_msg("%s: %s after AdamW", v->name, same ? "unchanged" : "changed");
    }
    trc_adamw_free(&opt);
    /* the generic optimizer path (train.c): clipping over everything (absent gradients are zero)
     * and AdamW with the absent tensors frozen gives the same losses */
    memcpy(model.params, before, model.num_floats * sizeof *before);
    assert_int_equal(trc_adamw_init(&opt, model.num_floats, 1e-5), TRC_OK);
    for (size_t i = 0; i < model.num_views; i++)
        if (!model.has_grad[i])
            assert_int_equal(trc_adamw_freeze(&opt, model.views[i].offset, model.views[i].numel),
                             TRC_OK);
    for (int k = 0; k < STEPS; k++) {
        assert_int_equal(trc_tl_trainer_step_mse(tr, NB, x0, tg, ue, &loss), TRC_OK);
        double rel = fabs((double)loss - want_adam[k]) / fabs((double)want_adam[k]);
        if (rel > 1e-6)
            fail_msg("%s generic AdamW step %d: relative %.2g", name, k, rel);
        float *gr = trc_tl_trainer_grads(tr);
        assert_int_equal(trc_clip_grad_norm(gr, model.num_floats, 1.0, NULL), TRC_OK);
        assert_int_equal(trc_adamw_step(&opt, model.params, gr, 1e-3), TRC_OK);
    }
    /* one more step at lr 1e-1, where (float)(1 - lr wd) < 1: a decay that would show */
    assert_int_equal(trc_tl_trainer_step_mse(tr, NB, x0, tg, ue, &loss), TRC_OK);
    assert_int_equal(trc_adamw_step(&opt, model.params, trc_tl_trainer_grads(tr), 1e-1), TRC_OK);
    for (size_t i = 0; i < model.num_views; i++)
        if (!model.has_grad[i])
            assert_memory_equal(before + model.views[i].offset,
                                model.params + model.views[i].offset,
                                model.views[i].numel * sizeof(float));
    trc_adamw_free(&opt);
    free(before);
    free(g1);
    trc_tl_trainer_free(tr);
    free(u), free(it), free(lat);
    free(x0), free(tg), free(ue), free(want_it), free(want_lat), free(want_loss), free(want_adam);
    trc_st_free(&st);
    trc_tl_free(&model);
}

static void test_two_level_small(void **state) {
    (void)state;
    run_case("two_level_small", 0, "two_level", 104990);
}

static void test_trm_style_small(void **state) {
    (void)state;
    run_case("trm_style_small", 0, "trm_style", 207454);
}

static void test_two_level_small_feedback(void **state) {
    (void)state;
    run_case("two_level_small_fb", 1, "two_level", 104990);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_level_small),
        cmocka_unit_test(test_trm_style_small),
        cmocka_unit_test(test_two_level_small_feedback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
