/* Process supervision (model-v2.md section 9) against tests/data/v2/two_level_small_ps: the
 * iteration costs of every iterate (ZOH double integrator, Q = I, R = 0.01, Qf = 10 I), the two
 * parts of the loss, the total, and the gradients of the original loss (undetached normaliser)
 * and of the corrected variant; plus the properties that tell the two apart. */
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
#include "trc/checkpoint.h"
#include "trc/error.h"
#include "trc/objective.h"
#include "trc/system.h"
#include "trc/two_level.h"

#define NB V2_NB

typedef struct ps_case {
    trc_tl_model model;
    trc_safetensors st;
    trc_tl_trainer *tr;
    trc_tl_sim sim;
    float *x0, *tg, *ue, *dU;
} ps_case;

static void setup_case(ps_case *c) {
    v2_load("two_level_small", 0, &c->model);
    read_st("v2/two_level_small_ps.case.safetensors", &c->st);
    c->x0 = tensor(&c->st, "x0", NB * 2);
    c->tg = tensor(&c->st, "target", NB * 2);
    c->ue = tensor(&c->st, "u_expert", NB * 15);
    c->dU = malloc(4 * NB * 15 * sizeof *c->dU);
    assert_non_null(c->dU);
    c->sim = v2_zoh_sim();
    assert_int_equal(trc_tl_trainer_create(&c->model, NB, &c->tr), TRC_OK);
    assert_int_equal(trc_tl_trainer_forward(c->tr, NB, c->x0, c->tg, NULL, NULL), TRC_OK);
}

static void free_case(ps_case *c) {
    trc_tl_trainer_free(c->tr);
    free(c->x0), free(c->tg), free(c->ue), free(c->dU);
    trc_st_free(&c->st);
    trc_tl_free(&c->model);
}

static void check_rel(double got, float want, double tol, const char *what) {
    if (!(fabs(got - want) <= tol * fabs(want)))
        fail_msg("%s: got %.9g, want %.9g", what, got, (double)want);
}

static void run_variant(int variant) {
    ps_case c;
    setup_case(&c);
    float *want_it = tensor(&c.st, "iterates", 4 * NB * 15);
    v2_check_close(trc_tl_trainer_iterates(c.tr), want_it, 4 * NB * 15, 1e-5f, "iterates");
    trc_process_opts po = {0.1, 1.0, 0.01, 10.0, variant, NULL, NULL};
    double loss, bc, reward;
    float costs[4 * NB];
    assert_int_equal(
        trc_tl_process_loss(c.tr, &c.sim, c.x0, c.tg, c.ue, &po, c.dU, &loss, &bc, &reward, costs),
        TRC_OK);
    float *want_c = tensor(&c.st, "iteration_costs", 4 * NB);
    for (size_t i = 0; i < 4 * NB; i++)
        check_rel(costs[i], want_c[i], 1e-5, "iteration_costs");
    float *w_bc = tensor(&c.st, "bc_loss", 1), *w_rw = tensor(&c.st, "process_reward", 1);
    float *w_loss = tensor(&c.st, variant ? "loss_corrected" : "loss", 1);
    check_rel(bc, w_bc[0], 1e-5, "bc_loss");
    check_rel(reward, w_rw[0], 1e-5, "process_reward");
    check_rel(loss, w_loss[0], 1e-5, "loss");
    assert_int_equal(trc_tl_trainer_backward(c.tr, c.dU), TRC_OK);
    size_t n = v2_check_grads(&c.model, trc_tl_trainer_grads(c.tr), &c.st,
                              variant ? "grad_corrected." : "grad.", 1e-4f, variant);
    assert_true(n >= (variant ? 20 : c.model.num_views));
    /* the original pushes iterate 0 up (its cost's gradient is negative), the corrected never */
    int k0_nonzero = 0;
    for (size_t i = 0; i < NB * 15; i++)
        k0_nonzero |= c.dU[i] != 0.0f;
    assert_int_equal(k0_nonzero, variant == TRC_PROCESS_ORIGINAL);
    free(want_it), free(want_c), free(w_bc), free(w_rw), free(w_loss);
    free_case(&c);
}

static void test_original(void **state) {
    (void)state;
    run_variant(TRC_PROCESS_ORIGINAL);
}

static void test_corrected(void **state) {
    (void)state;
    run_variant(TRC_PROCESS_CORRECTED);
}

/* Same loss value; different gradients (the corrected one differs where iterate 0 matters). */
static void test_variants_differ(void **state) {
    (void)state;
    ps_case c;
    setup_case(&c);
    size_t P = c.model.num_floats;
    float *g[2];
    double l[2];
    for (int v = 0; v < 2; v++) {
        trc_process_opts po = {0.1, 1.0, 0.01, 10.0, v, NULL, NULL};
        assert_int_equal(
            trc_tl_process_loss(c.tr, &c.sim, c.x0, c.tg, c.ue, &po, c.dU, &l[v], NULL, NULL, NULL),
            TRC_OK);
        assert_int_equal(trc_tl_trainer_backward(c.tr, c.dU), TRC_OK);
        g[v] = malloc(P * sizeof *g[v]);
        assert_non_null(g[v]);
        memcpy(g[v], trc_tl_trainer_grads(c.tr), P * sizeof *g[v]);
    }
    assert_true(l[0] == l[1]);
    assert_true(memcmp(g[0], g[1], P * sizeof *g[0]) != 0);
    /* bad arguments */
    trc_process_opts bad = {0.1, 1.0, 0.01, 10.0, 7, NULL, NULL};
    double loss;
    assert_int_equal(
        trc_tl_process_loss(c.tr, &c.sim, c.x0, c.tg, c.ue, &bad, c.dU, &loss, NULL, NULL, NULL),
        TRC_EINVAL);
    bad.variant = 0, bad.weight = -1;
    assert_int_equal(
        trc_tl_process_loss(c.tr, &c.sim, c.x0, c.tg, c.ue, &bad, c.dU, &loss, NULL, NULL, NULL),
        TRC_EINVAL);
    free(g[0]), free(g[1]);
    free_case(&c);
}

/* The same through the objectives table and the public trainer (the model loaded by the normal
 * checkpoint path), simulating with the systems table's double integrator at dt = 5/15 (double
 * arithmetic, where the fixture's simulator is float32: costs agree to ~1e-6). */
static void test_objectives(void **state) {
    (void)state;
    trc_model m;
    assert_int_equal(
        trc_checkpoint_load(test_data_path("v2/two_level_small.safetensors"), NULL, &m), TRC_OK);
    trc_safetensors st;
    read_st("v2/two_level_small_ps.case.safetensors", &st);
    float *x0 = tensor(&st, "x0", NB * 2), *tg = tensor(&st, "target", NB * 2);
    float *ue = tensor(&st, "u_expert", NB * 15), *wl = tensor(&st, "loss", 1);
    const char *names[] = {"process_original", "process"};
    for (int v = 0; v < 2; v++) {
        trc_trainer *tr;
        assert_int_equal(trc_trainer_create(&m, NB, &tr), TRC_OK);
        const trc_objective *o = trc_objective_find(names[v]);
        assert_non_null(o);
        assert_int_equal(
            trc_trainer_set_objective(tr, o, trc_system_find("double_integrator"), 5.0 / 15.0),
            TRC_OK);
        float loss;
        assert_int_equal(trc_trainer_forward(tr, NB, x0, tg, NULL, ue, NULL, &loss), TRC_OK);
        check_rel(loss, wl[0], 1e-5, names[v]);
        assert_int_equal(trc_trainer_backward(tr), TRC_OK);
        const float *g = trc_trainer_grads(tr);
        size_t compared = 0;
        for (size_t i = 0; i < m.num_views; i++) {
            char gname[TRC_PARAM_NAME_MAX + 24];
            snprintf(gname, sizeof gname, "%s%s", v ? "grad_corrected." : "grad.", m.views[i].name);
            if (!trc_st_find(&st, gname))
                continue;
            float *w = tensor(&st, gname, m.views[i].numel), mx = 0.0f;
            for (size_t j = 0; j < m.views[i].numel; j++)
                mx = fmaxf(mx, fabsf(w[j]));
            v2_check_close(g + m.views[i].offset, w, m.views[i].numel, 1e-4f * mx, gname);
            free(w);
            compared++;
        }
        assert_true(compared >= (v ? 20u : m.num_views));
        trc_trainer_free(tr);
    }
    free(x0), free(tg), free(ue), free(wl);
    trc_st_free(&st);
    trc_model_free(&m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_original),
        cmocka_unit_test(test_corrected),
        cmocka_unit_test(test_variants_differ),
        cmocka_unit_test(test_objectives),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
