/* The tests every table entry gets without writing a line (docs/extending.md): they iterate
 * the systems, experts, architectures and objectives tables, so a new entry is checked as soon
 * as its table line exists.
 *   systems:       a complete descriptor; Jacobians against central differences at random
 *                  points; deterministic rollouts; the resolution rule finds it by its shape
 *                  (or says which systems share it)
 *   experts:       parameter descriptors that resolve to valid defaults; on every system it
 *                  accepts: finite controls within the bound, deterministic, a dataset that
 *                  saves and loads with its cost label; on the others: a clear refusal
 *   architectures: every size is valid and lays out distinct names; inference, plan and the
 *                  trainer's forward agree; the trainer's gradient against finite differences of
 *                  its own loss along random directions; checkpoint round trips with metadata and
 *                  as a bare export (the architecture recognised from its shapes)
 *   objectives:    the gradient at every iterate against central differences of the loss */
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
#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/expert.h"
#include "trc/model.h"
#include "trc/objective.h"
#include "trc/rng.h"
#include "trc/safetensors.h"
#include "trc/system.h"

#include "../common.h"

static int setup(void **state) {
    (void)state;
    return test_tmpdir_make("tables");
}

static int teardown(void **state) {
    (void)state;
    return test_rm_rf(test_tmpdir);
}

/* ---- systems ---- */

static void test_systems(void **state) {
    (void)state;
    assert_true(trc_system_count() >= 1);
    trc_rng rng;
    trc_rng_seed(&rng, 1);
    for (size_t i = 0; i < trc_system_count(); i++) {
        const trc_system *sys = trc_system_at(i);
        const int s = sys->s, m = sys->m;
        assert_non_null(sys->name);
        assert_non_null(sys->about);
        assert_true(s >= 1 && s <= TRC_SYSTEM_MAX_S && m >= 1 && m <= TRC_SYSTEM_MAX_M);
        assert_non_null(sys->state_names);
        assert_non_null(sys->control_names);
        for (int k = 0; k < s; k++)
            assert_true(sys->state_names[k] && sys->state_names[k][0]);
        for (int k = 0; k < m; k++)
            assert_true(sys->control_names[k] && sys->control_names[k][0]);
        assert_true(sys->dt > 0 && sys->T >= 1 && sys->bound > 0 && sys->box_lo < sys->box_hi);
        assert_true(sys->success_threshold > 0);
        for (size_t k = 0; k < sys->nparams; k++)
            assert_true(sys->params[k].name && isfinite(sys->params[k].value));
        assert_ptr_equal(trc_system_find(sys->name), sys);

        /* Jacobians against central differences at random points of the box */
        for (int trial = 0; trial < 5; trial++) {
            double x[TRC_SYSTEM_MAX_S], u[TRC_SYSTEM_MAX_M];
            double A[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_S], B[TRC_SYSTEM_MAX_S * TRC_SYSTEM_MAX_M];
            for (int k = 0; k < s; k++)
                x[k] = trc_system_draw(sys, 0, k, trc_rng_range(&rng, sys->box_lo, sys->box_hi));
            for (int k = 0; k < m; k++)
                u[k] = trc_rng_range(&rng, -sys->bound, sys->bound);
            sys->jacobian(x, u, sys->dt, A, B);
            for (int c = 0; c < s + m; c++) {
                double *v = c < s ? &x[c] : &u[c - s], orig = *v, h = 1e-6 * fmax(1, fabs(orig));
                double xp[TRC_SYSTEM_MAX_S], xm[TRC_SYSTEM_MAX_S];
                *v = orig + h;
                sys->step(x, u, sys->dt, xp);
                *v = orig - h;
                sys->step(x, u, sys->dt, xm);
                *v = orig;
                for (int r = 0; r < s; r++) {
                    double fd = (xp[r] - xm[r]) / (2 * h);
                    double an = c < s ? A[r * s + c] : B[r * m + (c - s)];
                    if (fabs(fd - an) > 1e-6 * (1 + fabs(an)))
                        fail_msg("%s: d x+[%d] / d %s[%d]: %.10g analytic vs %.10g", sys->name, r,
                                 c < s ? "x" : "u", c < s ? c : c - s, an, fd);
                }
            }
        }
        /* rollouts are deterministic */
        enum { N = 3 };
        const int T = sys->T;
        float *x0 = malloc(N * (size_t)s * 4), *u = malloc(N * (size_t)T * m * 4);
        float *t1 = malloc(N * (size_t)(T + 1) * s * 4), *t2 = malloc(N * (size_t)(T + 1) * s * 4);
        for (size_t k = 0; k < N * (size_t)s; k++)
            x0[k] = (float)trc_system_draw(sys, 0, (int)(k % (size_t)s),
                                           trc_rng_range(&rng, sys->box_lo, sys->box_hi));
        for (size_t k = 0; k < N * (size_t)T * m; k++)
            u[k] = (float)trc_rng_range(&rng, -sys->bound, sys->bound) * 0.1f;
        assert_int_equal(trc_simulate(sys, sys->dt, T, N, x0, u, t1), 0);
        assert_int_equal(trc_simulate(sys, sys->dt, T, N, x0, u, t2), 0);
        assert_memory_equal(t1, t2, N * (size_t)(T + 1) * s * 4);
        free(x0), free(u), free(t1), free(t2);

        /* the resolution rule: by name, and by shape unless another system shares it */
        const trc_system *got;
        assert_int_equal(trc_system_resolve(sys->name, "model", s, m, sys->T, &got), 0);
        assert_ptr_equal(got, sys);
        size_t same = 0;
        for (size_t j = 0; j < trc_system_count(); j++) {
            const trc_system *o = trc_system_at(j);
            same += o->s == s && o->m == m && o->T == sys->T;
        }
        int rc = trc_system_resolve(NULL, "model", s, m, sys->T, &got);
        if (same == 1) {
            assert_int_equal(rc, 0);
            assert_ptr_equal(got, sys);
        } else {
            assert_int_equal(rc, TRC_EINVAL);
            assert_non_null(strstr(trc_errmsg(), "more than one system"));
            assert_non_null(strstr(trc_errmsg(), sys->name));
        }
        assert_int_equal(trc_system_resolve(sys->name, "data", s + 1, m, sys->T, &got), TRC_EINVAL);
    }
    const trc_system *got;
    assert_int_equal(trc_system_resolve(NULL, "model", 1, 1, 99999, &got), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "no system has s=1, m=1, T=99999"));
    assert_int_equal(trc_system_resolve("warp", "model", 2, 1, 15, &got), TRC_ENOTFOUND);
}

/* ---- experts ---- */

static void test_experts(void **state) {
    (void)state;
    assert_true(trc_expert_count() >= 1);
    trc_rng rng;
    trc_rng_seed(&rng, 2);
    for (size_t e = 0; e < trc_expert_count(); e++) {
        const trc_expert *ex = trc_expert_at(e);
        assert_true(ex->name && ex->about && ex->cost_label && ex->accepts && ex->plan &&
                    ex->solve && ex->free);
        assert_ptr_equal(trc_expert_find(ex->name), ex);
        assert_true(ex->nparams <= TRC_EXPERT_MAX_PARAMS);
        double params[TRC_EXPERT_MAX_PARAMS];
        assert_int_equal(trc_expert_params_resolve(ex, NULL, params), 0);
        for (size_t k = 0; k < ex->nparams; k++) {
            const trc_option *o = &ex->params[k];
            assert_true(o->type == TRC_OPT_DOUBLE && o->offset % sizeof(double) == 0 &&
                        o->offset / sizeof(double) < TRC_EXPERT_MAX_PARAMS);
            assert_ptr_equal(trc_expert_param_find(ex, o->name), o);
            for (size_t j = 0; j < k; j++)
                assert_true(strcmp(o->name, ex->params[j].name) != 0 &&
                            o->offset != ex->params[j].offset);
        }
        for (size_t si = 0; si < trc_system_count(); si++) {
            const trc_system *sys = trc_system_at(si);
            trc_expert_plan *plan = NULL;
            int acc = ex->accepts(sys);
            int rc =
                trc_expert_plan_create(ex->name, sys, sys->dt, sys->T, sys->bound, NULL, &plan);
            if (acc != TRC_OK) { /* refused at plan creation with the same reason */
                assert_int_equal(rc, acc);
                assert_null(plan);
                continue;
            }
            assert_int_equal(rc, 0);
            const int s = sys->s, m = sys->m, U = sys->T * m;
            double *u = malloc((size_t)U * sizeof *u), *u2 = malloc((size_t)U * sizeof *u2);
            for (int trial = 0; trial < 8; trial++) {
                double x0[TRC_SYSTEM_MAX_S], xt[TRC_SYSTEM_MAX_S];
                for (int k = 0; k < s; k++) {
                    x0[k] =
                        trc_system_draw(sys, 0, k, trc_rng_range(&rng, sys->box_lo, sys->box_hi));
                    xt[k] =
                        trc_system_draw(sys, 0, k, trc_rng_range(&rng, sys->box_lo, sys->box_hi));
                }
                trc_expert_cost c, c2;
                assert_int_equal(trc_expert_solve(plan, x0, xt, u, &c), 0);
                assert_int_equal(trc_expert_solve(plan, x0, xt, u2, &c2), 0);
                assert_memory_equal(u, u2, (size_t)U * sizeof *u);
                for (int k = 0; k < U; k++)
                    assert_true(isfinite(u[k]) && fabs(u[k]) <= sys->bound);
                assert_true(isfinite(c.objective) && c.objective >= 0 && c.effort >= 0);
            }
            free(u), free(u2);
            trc_expert_plan_free(plan);

            /* a small dataset with this expert saves and loads with its cost label */
            trc_gen_settings g;
            assert_int_equal(trc_gen_settings_default(sys->name, &g), 0);
            snprintf(g.expert, sizeof g.expert, "%s", ex->name);
            trc_dataset ds, back;
            assert_int_equal(trc_dataset_generate(&g, 16, &ds), 0);
            char path[512];
            snprintf(path, sizeof path, "%s/%s_%s.npz", test_tmpdir, ex->name, sys->name);
            assert_int_equal(trc_dataset_save(path, &ds), 0);
            assert_int_equal(trc_dataset_load(path, &back), 0);
            assert_true(back.has_settings);
            assert_string_equal(back.settings.expert, ex->name);
            assert_memory_equal(back.settings.expert_params, ds.settings.expert_params,
                                sizeof ds.settings.expert_params);
            assert_memory_equal(back.control_sequences, ds.control_sequences,
                                ds.n * (size_t)U * sizeof(float));
            trc_dataset_free(&ds);
            trc_dataset_free(&back);
        }
    }
}

/* ---- architectures ---- */

enum { AB = 4, AS = 2, AM = 1, AT = 3 };

static void arch_config(const trc_arch *a, const trc_arch_size *z, trc_model_config *cfg) {
    assert_int_equal(trc_model_config_preset_arch(a->name, z->name, AS, AM, AT, 2.0f, cfg), 0);
    cfg->K = 2, cfg->n = 1; /* small recursion: quick, and far from float noise */
}

static void batch(trc_rng *rng, float *x0, float *tg, float *ue) {
    for (int k = 0; k < AB * AS; k++) {
        x0[k] = (float)trc_rng_range(rng, -2, 2);
        tg[k] = (float)trc_rng_range(rng, -2, 2);
    }
    for (int k = 0; k < AB * AT * AM; k++)
        ue[k] = (float)trc_rng_range(rng, -1, 1);
}

/* The trainer's loss with params moved by t along dir. */
static double loss_at(trc_trainer *tr, trc_model *model, const float *p0, const float *dir,
                      double t, const float *x0, const float *tg, const float *ue) {
    for (size_t i = 0; i < model->num_params; i++)
        model->params[i] = (float)(p0[i] + t * dir[i]);
    float loss;
    assert_int_equal(trc_trainer_forward(tr, AB, x0, tg, NULL, ue, NULL, &loss), 0);
    return loss;
}

static void arch_gradient(trc_model *model, trc_rng *rng) {
    float x0[AB * AS], tg[AB * AS], ue[AB * AT * AM];
    batch(rng, x0, tg, ue);
    trc_trainer *tr;
    assert_int_equal(trc_trainer_create(model, AB, &tr), 0);
    float loss;
    assert_int_equal(trc_trainer_forward(tr, AB, x0, tg, NULL, ue, NULL, &loss), 0);
    assert_int_equal(trc_trainer_backward(tr), 0);
    const size_t P = model->num_params;
    float *g = malloc(P * sizeof *g), *p0 = malloc(P * sizeof *p0), *dir = malloc(P * sizeof *dir);
    memcpy(g, trc_trainer_grads(tr), P * sizeof *g);
    memcpy(p0, model->params, P * sizeof *p0);
    for (int trial = 0; trial < 3; trial++) {
        /* a random direction scaled like each parameter (so small and large tensors move) */
        double gd = 0.0;
        for (size_t i = 0; i < P; i++) {
            dir[i] = (float)(trc_rng_range(rng, -1, 1) * (0.05 + fabs(p0[i])));
            gd += (double)g[i] * dir[i];
        }
        /* 5-point stencil: O(h^4) truncation, so h can be large against float rounding (measured
         * on single: 3e-7 to 4e-5 relative; a wiring bug gives percents) */
        const double h = 3e-3;
        double fd = (loss_at(tr, model, p0, dir, -2 * h, x0, tg, ue) -
                     8 * loss_at(tr, model, p0, dir, -h, x0, tg, ue) +
                     8 * loss_at(tr, model, p0, dir, h, x0, tg, ue) -
                     loss_at(tr, model, p0, dir, 2 * h, x0, tg, ue)) /
                    (12 * h);
        if (!(fabs(fd - gd) <= 2e-3 * fabs(gd) + 1e-6))
            fail_msg("%s: directional derivative %.8g by backward, %.8g by differences",
                     model->cfg.arch, gd, fd);
    }
    memcpy(model->params, p0, P * sizeof *p0);
    free(g), free(p0), free(dir);
    trc_trainer_free(tr);
}

static void arch_agree(const trc_model *model, trc_rng *rng) {
    float x0[AB * AS], tg[AB * AS], ue[AB * AT * AM], u_tr[AB * AT], u_inf[AB * AT],
        u_plan[AB * AT], loss;
    batch(rng, x0, tg, ue);
    trc_trainer *tr;
    assert_int_equal(trc_trainer_create(model, AB, &tr), 0);
    assert_int_equal(trc_trainer_forward(tr, AB, x0, tg, NULL, ue, u_tr, &loss), 0);
    trc_trainer_free(tr);
    assert_int_equal(trc_model_infer(model, AB, x0, tg, u_inf, NULL), 0);
    trc_infer_plan *plan;
    assert_int_equal(trc_infer_plan_create(model, &plan), 0);
    assert_int_equal(trc_infer_plan_run(plan, AB, x0, tg, NULL, u_plan, NULL, 1), 0);
    trc_infer_plan_free(plan);
    /* inference through the trainer's forward (an architecture without infer uses it) */
    float u_via[AB * AT], it_inf[3 * AB * AT], it_via[3 * AB * AT];
    assert_int_equal(trc_model_infer(model, AB, x0, tg, u_inf, it_inf), 0);
    assert_int_equal(trc_model_infer_via_trainer(model, AB, x0, tg, NULL, u_via, it_via, 1), 0);
    for (int k = 0; k < AB * AT; k++) {
        assert_true(fabsf(u_inf[k] - u_tr[k]) <= 1e-5f * (1 + fabsf(u_tr[k])));
        assert_true(fabsf(u_plan[k] - u_inf[k]) <= 1e-5f * (1 + fabsf(u_inf[k])));
        assert_true(u_via[k] == u_tr[k]); /* the same forward, the same rows */
    }
    assert_true(model->cfg.K <= 2); /* the buffers above hold up to 3 iterates */
    for (int k = 0; k < (model->cfg.K + 1) * AB * AT; k++) /* every iterate */
        assert_true(fabsf(it_via[k] - it_inf[k]) <= 1e-5f * (1 + fabsf(it_inf[k])));
}

static void arch_round_trip(const trc_model *model) {
    uint8_t *buf;
    size_t len;
    assert_int_equal(trc_checkpoint_encode(model, NULL, &buf, &len), 0);
    trc_model back;
    assert_int_equal(trc_checkpoint_decode(buf, len, NULL, &back), 0);
    assert_memory_equal(&back.cfg, &model->cfg, sizeof back.cfg);
    assert_int_equal(back.num_params, model->num_params);
    assert_memory_equal(back.params, model->params, model->num_params * sizeof(float));
    trc_model_free(&back);
    free(buf);

    /* a bare export (tensors only, as PyTorch's save_file writes): the shapes tell the
     * architecture, its size and the parameters */
    trc_st_out *outs = calloc(model->num_views, sizeof *outs);
    for (size_t i = 0; i < model->num_views; i++) {
        const trc_param_view *v = &model->views[i];
        outs[i] = (trc_st_out){.name = v->name, .ndim = v->ndim, .data = model->params + v->offset};
        for (int d = 0; d < v->ndim; d++)
            outs[i].shape[d] = v->shape[d];
    }
    assert_int_equal(trc_st_encode(outs, model->num_views, NULL, NULL, 0, &buf, &len), 0);
    free(outs);
    trc_load_overrides ov = {.bound = model->cfg.bound, .K = model->cfg.K, .n = model->cfg.n};
    assert_int_equal(trc_checkpoint_decode(buf, len, &ov, &back), 0);
    assert_string_equal(back.cfg.arch, model->cfg.arch);
    assert_string_equal(back.cfg.size, model->cfg.size);
    assert_memory_equal(back.params, model->params, model->num_params * sizeof(float));
    trc_model_free(&back);
    free(buf);
}

static void test_architectures(void **state) {
    (void)state;
    assert_true(trc_arch_count() >= 1);
    assert_string_equal(trc_arch_at(0)->name, TRC_ARCH_DEFAULT);
    trc_rng rng;
    trc_rng_seed(&rng, 3);
    for (size_t ai = 0; ai < trc_arch_count(); ai++) {
        const trc_arch *a = trc_arch_at(ai);
        assert_true(a->name && a->about && a->nsizes >= 1 && a->layout && a->from_shapes &&
                    a->trainer_create && a->trainer_forward && a->trainer_backward);
        assert_ptr_equal(trc_arch_find(a->name), a);
        for (size_t zi = 0; zi < a->nsizes; zi++) {
            trc_model_config cfg;
            arch_config(a, &a->sizes[zi], &cfg);
            if (a->grad_last_cycle_only)
                cfg.K = 1; /* where its truncated gradient is the whole gradient */
            assert_string_equal(cfg.arch, a->name);
            assert_true(trc_model_param_count(&cfg) > 0);
            trc_model model;
            assert_int_equal(trc_model_create(&cfg, &model), 0);
            for (size_t i = 0; i < model.num_views; i++) /* names are unique, spellings too */
                for (size_t j = 0; j < i; j++) {
                    assert_true(strcmp(model.views[i].name, model.views[j].name) != 0);
                    assert_true(!model.views[i].alt[0] ||
                                strcmp(model.views[i].alt, model.views[j].name) != 0);
                }
            if (zi == 0) { /* the numerical checks on the smallest size */
                assert_int_equal(trc_model_init(&model, 7), 0);
                arch_agree(&model, &rng);
                arch_gradient(&model, &rng);
                arch_round_trip(&model);
            }
            trc_model_free(&model);
        }
    }
    trc_model_config cfg;
    assert_int_equal(trc_model_config_preset_arch("warp", "small", 2, 1, 15, 4, &cfg), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "unknown architecture 'warp'"));
}

/* ---- objectives ---- */

static void test_objectives(void **state) {
    (void)state;
    assert_true(trc_objective_count() >= 1);
    assert_non_null(trc_objective_find("mse"));
    trc_rng rng;
    trc_rng_seed(&rng, 4);
    enum { B = 3, K = 2, U = 4 };
    float it[(K + 1) * B * U], ue[B * U], x0[B * 2], tg[B * 2], grad[(K + 1) * B * U];
    for (size_t i = 0; i < sizeof it / sizeof it[0]; i++)
        it[i] = (float)trc_rng_range(&rng, -1, 1);
    for (int i = 0; i < B * U; i++)
        ue[i] = (float)trc_rng_range(&rng, -1, 1);
    for (int i = 0; i < B * 2; i++)
        x0[i] = tg[i] = 0.0f;
    const trc_system *sys = trc_system_at(0);
    trc_objective_batch b = {.B = B,
                             .K = K,
                             .U = U,
                             .s = 2,
                             .m = 1,
                             .T = U,
                             .bound = 2.0f,
                             .x0 = x0,
                             .target = tg,
                             .u_expert = ue,
                             .system = sys,
                             .dt = sys->dt};
    for (size_t oi = 0; oi < trc_objective_count(); oi++) {
        const trc_objective *o = trc_objective_at(oi);
        assert_true(o->name && o->about && o->rows && o->finish);
        assert_ptr_equal(trc_objective_find(o->name), o);
        /* rows in two parts give the loss of one pass */
        double whole = o->finish(&b, o->rows(&b, it, 0, B, grad));
        double parts = o->finish(&b, o->rows(&b, it, 0, 1, grad) + o->rows(&b, it, 1, B, grad));
        assert_true(fabs(whole - parts) <= 1e-12 * (1 + fabs(whole)));
        float *g2 = malloc(sizeof grad);
        for (size_t i = 0; !o->surrogate_gradient && i < sizeof it / sizeof it[0]; i++) {
            float orig = it[i];
            const double h = 1e-3;
            it[i] = (float)(orig + h);
            double fp = o->finish(&b, o->rows(&b, it, 0, B, g2));
            it[i] = (float)(orig - h);
            double fm = o->finish(&b, o->rows(&b, it, 0, B, g2));
            it[i] = orig;
            double fd = (fp - fm) / ((double)(float)(orig + h) - (double)(float)(orig - h));
            if (!(fabs(fd - grad[i]) <= 1e-3 * (1 + fabs(fd))))
                fail_msg("%s: d loss / d iterate[%zu] = %.8g, differences %.8g", o->name, i,
                         (double)grad[i], fd);
            if (o->final_only && i < (size_t)K * B * U)
                assert_true(grad[i] == 0.0f);
        }
        free(g2);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_systems),
        cmocka_unit_test(test_experts),
        cmocka_unit_test(test_architectures),
        cmocka_unit_test(test_objectives),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
