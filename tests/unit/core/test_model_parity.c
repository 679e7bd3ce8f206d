/* Parity of the C network with the independent reference (tests/data/FIXTURES.md): for the
 * small_init and small_random models, the iterates of a batch of 8 (inference and training
 * forward), the MSE loss and every parameter's gradient. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "isa_paths.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "trc/error.h"
#include "trc/model.h"
#include "trc/safetensors.h"

#define NB 8

typedef struct fixture_case {
    float *x0, *target, *u_expert, *iterates, loss;
} fixture_case;

static void load_case(const char *file, const trc_model *model, trc_safetensors *st,
                      fixture_case *c) {
    read_st(file, st);
    size_t U = (size_t)model->cfg.T * model->cfg.m, S = (size_t)model->cfg.s;
    c->x0 = tensor(st, "x0", NB * S);
    c->target = tensor(st, "target", NB * S);
    c->u_expert = tensor(st, "u_expert", NB * U);
    c->iterates = tensor(st, "iterates", (size_t)(model->cfg.K + 1) * NB * U);
    float *l = tensor(st, "loss", 1);
    c->loss = l[0];
    free(l);
}

static void free_case(fixture_case *c) {
    free(c->x0);
    free(c->target);
    free(c->u_expert);
    free(c->iterates);
}

static void check_close(const float *got, const float *want, size_t n, float tol,
                        const char *what) {
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= tol))
            fail_msg("%s[%zu]: got %.8g, want %.8g (tolerance %g)", what, i, (double)got[i],
                     (double)want[i], (double)tol);
}

static void run_parity(const char *name) {
    char file[256];
    trc_model model;
    snprintf(file, sizeof file, "%s.safetensors", name);
    load_model(file, &model);
    trc_safetensors st;
    fixture_case c;
    snprintf(file, sizeof file, "%s.case.safetensors", name);
    load_case(file, &model, &st, &c);
    size_t U = (size_t)model.cfg.T * model.cfg.m, K = (size_t)model.cfg.K;

    /* inference: every iterate */
    float *u = malloc(NB * U * sizeof *u), *it = malloc((K + 1) * NB * U * sizeof *it);
    assert_non_null(u);
    assert_non_null(it);
    assert_int_equal(trc_model_infer(&model, NB, c.x0, c.target, u, it), TRC_OK);
    check_close(it, c.iterates, (K + 1) * NB * U, 1e-5f, "iterates");
    check_close(u, c.iterates + K * NB * U, NB * U, 1e-5f, "output");
    /* one sample at a time takes the single-row path: same answers */
    for (size_t r = 0; r < NB; r++) {
        float u1[64];
        assert_int_equal(trc_model_infer(&model, 1, c.x0 + 2 * r, c.target + 2 * r, u1, NULL),
                         TRC_OK);
        check_close(u1, c.iterates + K * NB * U + r * U, U, 1e-5f, "single-sample output");
    }

    /* training, on 1, 2 and 3 threads (3 splits the 8 rows unevenly) */
    for (int threads = 1; threads <= 3; threads++) {
        trc_trainer *tr;
        assert_int_equal(trc_trainer_create(&model, 16, &tr), TRC_OK);
        assert_int_equal(trc_trainer_set_threads(tr, threads), TRC_OK);
        assert_int_equal(trc_trainer_threads(tr), threads);
        float loss = -1.0f;
        assert_int_equal(trc_trainer_forward(tr, NB, c.x0, c.target, NULL, c.u_expert, u, &loss),
                         TRC_OK);
        check_close(u, c.iterates + K * NB * U, NB * U, 1e-5f, "training output");
        assert_true(fabsf(loss - c.loss) <= 1e-5f * fmaxf(1.0f, fabsf(c.loss)));

        /* every parameter's gradient within 1e-4 of that tensor's largest magnitude */
        assert_int_equal(trc_trainer_backward(tr), TRC_OK);
        const float *g = trc_trainer_grads(tr);
        size_t nonzero_tensors = 0;
        for (size_t i = 0; i < model.num_views; i++) {
            const trc_param_view *v = &model.views[i];
            char gname[TRC_PARAM_NAME_MAX + 8];
            snprintf(gname, sizeof gname, "grad.%s", v->name);
            float *want = tensor(&st, gname, v->numel);
            float maxabs = 0.0f;
            for (size_t j = 0; j < v->numel; j++)
                maxabs = fmaxf(maxabs, fabsf(want[j]));
            if (maxabs > 0.0f)
                nonzero_tensors++;
            /* a tensor whose reference gradient is all zero must be exactly zero here too */
            check_close(g + v->offset, want, v->numel, 1e-4f * maxabs, gname);
            free(want);
        }
        /* all take part but the error encoder (6 tensors) and error embedding (2) */
        assert_int_equal(nonzero_tensors, model.num_views - 8);

        /* gradients are overwritten, not accumulated, and bit-identical when repeated (after a
         * different batch size in between) */
        size_t P = model.num_params;
        float *g1 = malloc(P * sizeof *g1);
        assert_non_null(g1);
        memcpy(g1, g, P * sizeof *g1);
        assert_int_equal(trc_trainer_forward(tr, 3, c.x0, c.target, NULL, c.u_expert, NULL, &loss),
                         TRC_OK);
        assert_int_equal(trc_trainer_backward(tr), TRC_OK);
        assert_int_equal(trc_trainer_forward(tr, NB, c.x0, c.target, NULL, c.u_expert, NULL, &loss),
                         TRC_OK);
        assert_int_equal(trc_trainer_backward(tr), TRC_OK);
        assert_memory_equal(g1, trc_trainer_grads(tr), P * sizeof *g1);
        free(g1);
        trc_trainer_free(tr);
    }

    free(u);
    free(it);
    free_case(&c);
    trc_st_free(&st);
    trc_model_free(&model);
}

static void test_small_init(void **state) {
    (void)state;
    run_parity("small_init");
}

static void test_small_random(void **state) {
    (void)state;
    run_parity("small_random");
}

/* A batch of 300 (the fixture's 8 samples repeated): several chunks and the fused attention
 * path, on 1, 2 and 3 threads; the same answers as the fixture, identical across threads. */
static void test_large_batch(void **state) {
    (void)state;
    trc_model model;
    load_model("small_random.safetensors", &model);
    trc_safetensors st;
    fixture_case c;
    load_case("small_random.case.safetensors", &model, &st, &c);
    enum { N = 300, U = 15, K = 3 };
    float *x0 = malloc(N * 2 * sizeof *x0), *tg = malloc(N * 2 * sizeof *tg);
    float *u[3], *it = malloc((K + 1) * N * U * sizeof *it);
    assert_non_null(x0);
    assert_non_null(tg);
    assert_non_null(it);
    for (size_t r = 0; r < N; r++) {
        memcpy(x0 + 2 * r, c.x0 + 2 * (r % NB), 2 * sizeof *x0);
        memcpy(tg + 2 * r, c.target + 2 * (r % NB), 2 * sizeof *tg);
    }
    for (int t = 0; t < 3; t++) {
        u[t] = malloc(N * U * sizeof *u[t]);
        assert_non_null(u[t]);
        assert_int_equal(
            trc_model_infer_mt(&model, N, x0, tg, NULL, u[t], t == 2 ? it : NULL, t + 1), TRC_OK);
        for (size_t r = 0; r < N; r++)
            check_close(u[t] + r * U, c.iterates + K * NB * U + (r % NB) * U, U, 1e-5f,
                        "large-batch output");
    }
    assert_memory_equal(u[0], u[1], N * U * sizeof *u[0]);
    assert_memory_equal(u[0], u[2], N * U * sizeof *u[0]);
    for (size_t k = 0; k <= K; k++)
        for (size_t r = 0; r < N; r++)
            check_close(it + (k * N + r) * U, c.iterates + (k * NB + r % NB) * U, U, 1e-5f,
                        "large-batch iterates");
    assert_int_equal(trc_model_infer_mt(&model, N, x0, tg, NULL, u[0], NULL, 0), TRC_EINVAL);
    for (int t = 0; t < 3; t++)
        free(u[t]);
    free(it);
    free(x0);
    free(tg);
    free_case(&c);
    trc_st_free(&st);
    trc_model_free(&model);
}

/* Non-finite outputs are reported; bad arguments are rejected. */
static void test_infer_errors(void **state) {
    (void)state;
    trc_model model;
    load_model("small_init.safetensors", &model);
    float x0[2] = {1, 0}, tg[2] = {0, 0}, u[15];
    assert_int_equal(trc_model_infer(&model, 0, x0, tg, u, NULL), TRC_EINVAL);
    assert_int_equal(trc_model_infer(&model, 1, NULL, tg, u, NULL), TRC_EINVAL);
    assert_int_equal(trc_model_infer(NULL, 1, x0, tg, u, NULL), TRC_EINVAL);
    x0[0] = NAN;
    assert_int_equal(trc_model_infer(&model, 1, x0, tg, u, NULL), TRC_ENUMERIC);
    assert_non_null(strstr(trc_errmsg(), "not finite"));
    trc_trainer *tr;
    assert_int_equal(trc_trainer_create(&model, 4, &tr), TRC_OK);
    float loss;
    assert_int_equal(trc_trainer_forward(tr, 1, x0, tg, NULL, u, NULL, &loss), TRC_ENUMERIC);
    assert_int_equal(trc_trainer_backward(tr), TRC_EINVAL); /* no successful forward */
    x0[0] = 1;
    assert_int_equal(trc_trainer_forward(tr, 5, x0, tg, NULL, u, NULL, &loss), TRC_EINVAL);
    assert_int_equal(trc_trainer_set_threads(tr, 0), TRC_EINVAL);
    trc_trainer_free(tr);
    assert_int_equal(trc_trainer_create(&model, 0, &tr), TRC_EINVAL);
    assert_null(tr);
    trc_model_free(&model);
}

/* Query and key rows of in_proj take no part: their gradient is exactly zero. */
static void test_qk_rows_zero_grad(void **state) {
    (void)state;
    trc_model model;
    load_model("small_random.safetensors", &model);
    trc_safetensors st;
    fixture_case c;
    load_case("small_random.case.safetensors", &model, &st, &c);
    trc_trainer *tr;
    assert_int_equal(trc_trainer_create(&model, NB, &tr), TRC_OK);
    float loss;
    assert_int_equal(trc_trainer_forward(tr, NB, c.x0, c.target, NULL, c.u_expert, NULL, &loss),
                     TRC_OK);
    assert_int_equal(trc_trainer_backward(tr), TRC_OK);
    const float *g = trc_trainer_grads(tr);
    int d = model.cfg.d;
    for (int i = 0; i < model.cfg.blocks; i++) {
        char name[TRC_PARAM_NAME_MAX];
        snprintf(name, sizeof name,
                 "recursive_reasoning.reasoning_blocks.%d.attention.in_proj_weight", i);
        const trc_param_view *w = trc_model_find(&model, name);
        assert_non_null(w);
        float vmax = 0.0f;
        for (size_t j = 0; j < (size_t)3 * d * d; j++) {
            if (j < (size_t)2 * d * d)
                assert_true(g[w->offset + j] == 0.0f);
            else
                vmax = fmaxf(vmax, fabsf(g[w->offset + j]));
        }
        assert_true(vmax > 0.0f); /* the value rows do get a gradient */
    }
    trc_trainer_free(tr);
    free_case(&c);
    trc_st_free(&st);
    trc_model_free(&model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_init),        cmocka_unit_test(test_small_random),
        cmocka_unit_test(test_qk_rows_zero_grad), cmocka_unit_test(test_large_batch),
        cmocka_unit_test(test_infer_errors),
    };
    return RUN_EVERY_ISA(tests, NULL, NULL);
}
