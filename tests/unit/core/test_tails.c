/* Tails of expert solutions and the time-left input (trc_dataset_add_tails,
 * trc_model_config.time_left): the rows a tail holds, that a tail is the expert's own answer for
 * the steps left (re-solved independently), and a model trained with tails reading the time
 * left through every inference path, its checkpoint and its refusals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trc/arch.h"
#include "trc/checkpoint.h"
#include "trc/dagger.h"
#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/eval.h"
#include "trc/expert.h"
#include "trc/model.h"
#include "trc/rollout.h"
#include "trc/system.h"
#include "trc/train.h"

static void make_data(const char *expert, size_t n, trc_dataset *ds) {
    trc_gen_settings g;
    assert_int_equal(trc_gen_settings_default("double_integrator", &g), 0);
    snprintf(g.expert, sizeof g.expert, "%s", expert);
    assert_int_equal(trc_dataset_generate(&g, n, ds), 0);
}

static void test_tail_rows(void **state) {
    (void)state;
    trc_dataset ds, tl, again;
    make_data("min_energy", 6, &ds);
    const int T = ds.T, K = 4;
    const size_t S = 2, U = (size_t)T;
    assert_int_equal(trc_dataset_add_tails(&ds, K, 7, &tl), 0);
    assert_int_equal(tl.n, ds.n * (K + 1));
    assert_null(tl.state_trajectories);
    assert_non_null(tl.steps_left);
    for (size_t i = 0; i < ds.n; i++) {
        const size_t r0 = i * (K + 1);
        assert_true(tl.steps_left[r0] == (float)T); /* the sample itself first */
        assert_memory_equal(tl.control_sequences + r0 * U, ds.control_sequences + i * U,
                            U * sizeof(float));
        for (int j = 1; j <= K; j++) {
            const size_t r = r0 + (size_t)j;
            int left = (int)tl.steps_left[r], k = T - left;
            assert_true(left >= 1 && left <= T - 1 && (float)left == tl.steps_left[r]);
            for (int q = 1; q < j; q++) /* distinct steps */
                assert_true(tl.steps_left[r0 + (size_t)q] != tl.steps_left[r]);
            assert_memory_equal(tl.initial_states + r * S,
                                ds.state_trajectories + (i * (size_t)(T + 1) + (size_t)k) * S,
                                S * sizeof(float));
            assert_memory_equal(tl.target_states + r * S, ds.target_states + i * S,
                                S * sizeof(float));
            assert_memory_equal(tl.control_sequences + r * U, ds.control_sequences + i * U + k,
                                (size_t)left * sizeof(float));
            for (int t = left; t < T; t++)
                assert_true(tl.control_sequences[r * U + (size_t)t] == 0.0f);
        }
    }
    /* seeded: the same draw again, another seed another */
    assert_int_equal(trc_dataset_add_tails(&ds, K, 7, &again), 0);
    assert_memory_equal(again.steps_left, tl.steps_left, tl.n * sizeof(float));
    trc_dataset_free(&again);
    assert_int_equal(trc_dataset_add_tails(&ds, K, 8, &again), 0);
    assert_true(memcmp(again.steps_left, tl.steps_left, tl.n * sizeof(float)) != 0);
    trc_dataset_free(&again);
    /* as many as there are steps: every step once */
    assert_int_equal(trc_dataset_add_tails(&ds, 100, 7, &again), 0);
    assert_int_equal(again.n, ds.n * (size_t)T);
    float seen[64] = {0};
    for (int j = 0; j < T; j++)
        seen[(int)again.steps_left[(size_t)j]] += 1.0f;
    for (int left = 1; left <= T; left++)
        assert_true(seen[left] == 1.0f);
    trc_dataset_free(&again);
    /* refusals: tails of tails, no trajectories, per_sample < 1 */
    assert_int_equal(trc_dataset_add_tails(&tl, 1, 7, &again), TRC_EINVAL);
    assert_int_equal(trc_dataset_add_tails(&ds, 0, 7, &again), TRC_EINVAL);
    float *traj = ds.state_trajectories;
    ds.state_trajectories = NULL;
    assert_int_equal(trc_dataset_add_tails(&ds, 1, 7, &again), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "trajectories"));
    ds.state_trajectories = traj;
    trc_dataset_free(&tl);
    trc_dataset_free(&ds);
}

/* Bellman's principle checked on the data: the expert solved again from a tail's initial state
 * for its steps left gives the tail's controls (minimum energy on the double integrator, whose
 * exact solution makes this a check to float32 rounding). */
static void test_tail_is_the_expert_answer(void **state) {
    (void)state;
    trc_dataset ds, tl;
    make_data("min_energy", 5, &ds);
    assert_int_equal(trc_dataset_add_tails(&ds, 6, 3, &tl), 0);
    const trc_system *sys = trc_system_find("double_integrator");
    int checked = 0;
    for (size_t r = 0; r < tl.n; r++) {
        int left = (int)tl.steps_left[r];
        if (left < 2) /* one step cannot reach a 2-D target: min_energy refuses it */
            continue;
        trc_expert_plan *plan = NULL;
        assert_int_equal(trc_expert_plan_create("min_energy", sys, ds.settings.dt, left,
                                                ds.settings.bound, NULL, &plan),
                         0);
        double x[2] = {tl.initial_states[r * 2], tl.initial_states[r * 2 + 1]};
        double t[2] = {tl.target_states[r * 2], tl.target_states[r * 2 + 1]};
        double u[64];
        assert_int_equal(trc_expert_solve(plan, x, t, u, NULL), 0);
        for (int k = 0; k < left; k++) {
            float want = tl.control_sequences[r * (size_t)tl.T + (size_t)k];
            assert_true(fabs(u[k] - want) <= 2e-4 * (1.0 + fabs(want)));
        }
        trc_expert_plan_free(plan);
        checked++;
    }
    assert_true(checked >= 20);
    trc_dataset_free(&tl);
    trc_dataset_free(&ds);
}

/* A small model trained one epoch on ds with 2 tails of each sample; the settings it used. */
static trc_train_opts train_with_tails(const trc_dataset *ds, trc_train_result *res) {
    trc_train_opts o;
    trc_train_opts_default(&o);
    snprintf(o.model_size, sizeof o.model_size, "small");
    o.epochs = 1;
    o.batch_size = 32;
    o.tails = 2;
    assert_int_equal(trc_train(ds, &o, NULL, NULL, NULL, res), 0);
    return o;
}

/* A small model trained with tails reads the time left: it changes the answer, the plan and
 * the trainer's forward agree with inference, the checkpoint keeps the setting, and a model
 * trained without tails refuses a time left other than 1. */
static void test_model_reads_time_left(void **state) {
    (void)state;
    trc_dataset ds;
    make_data("min_energy", 64, &ds);
    trc_train_result res;
    trc_train_opts o = train_with_tails(&ds, &res);
    trc_model *m = &res.model;
    assert_int_equal(m->cfg.time_left, 1);

    const size_t B = 3, U = (size_t)m->cfg.T;
    float tl[3] = {1.0f, 0.5f, 1.0f / 15.0f}, ones[3] = {1, 1, 1};
    float x0[6], tg[6];
    for (size_t r = 0; r < B; r++) { /* one problem, three times left */
        memcpy(x0 + r * 2, ds.initial_states, 2 * sizeof(float));
        memcpy(tg + r * 2, ds.target_states, 2 * sizeof(float));
    }
    float *u = malloc(B * U * sizeof(float)), *u1 = malloc(B * U * sizeof(float)),
          *up = malloc(B * U * sizeof(float)), *ut = malloc(B * U * sizeof(float));
    assert_int_equal(trc_model_infer_mt(m, B, x0, tg, tl, u, NULL, 1), 0);
    assert_int_equal(trc_model_infer_mt(m, B, x0, tg, ones, u1, NULL, 1), 0);
    assert_memory_equal(u, u1, U * sizeof(float)); /* row 0: time left 1 */
    assert_true(memcmp(u + U, u1 + U, U * sizeof(float)) != 0);
    assert_true(memcmp(u + 2 * U, u + U, U * sizeof(float)) != 0);
    trc_infer_plan *plan;
    assert_int_equal(trc_infer_plan_create(m, &plan), 0);
    assert_int_equal(trc_infer_plan_run(plan, B, x0, tg, tl, up, NULL, 2), 0);
    assert_int_equal(trc_model_infer_via_trainer(m, B, x0, tg, tl, ut, NULL, 1), 0);
    for (size_t i = 0; i < B * U; i++) {
        assert_true(fabsf(up[i] - u[i]) <= 1e-5f * (1.0f + fabsf(u[i])));
        assert_true(fabsf(ut[i] - u[i]) <= 1e-4f * (1.0f + fabsf(u[i])));
    }
    /* the imitation loss scores a tail's steps left only: the rest gets no gradient */
    trc_trainer *tr;
    assert_int_equal(trc_trainer_create(m, B, &tr), 0);
    float *ue = calloc(B * U, sizeof(float)), *uo = malloc(B * U * sizeof(float)), loss;
    for (size_t i = 0; i < B * U; i++)
        ue[i] = 0.01f * (float)(i % 7);
    assert_int_equal(trc_trainer_forward(tr, B, x0, tg, tl, ue, uo, &loss), 0);
    double want = 0.0;
    for (size_t r = 0; r < B; r++)
        for (size_t t = 0; t < (size_t)lrintf(tl[r] * (float)U); t++) /* m = 1 */
            want +=
                ((double)uo[r * U + t] - ue[r * U + t]) * ((double)uo[r * U + t] - ue[r * U + t]);
    want /= (double)(B * U);
    assert_true(fabs(loss - want) <= 1e-5 * want);
    float *g = trc_trainer_grads(tr), loss2;
    assert_int_equal(trc_trainer_backward(tr), 0);
    float *g1 = malloc(m->num_params * sizeof(float));
    memcpy(g1, g, m->num_params * sizeof(float));
    for (size_t t = 1; t < U; t++) /* change the expert's controls past row 2's steps left */
        ue[2 * U + t] += 5.0f;
    assert_int_equal(trc_trainer_forward(tr, B, x0, tg, tl, ue, uo, &loss2), 0);
    assert_int_equal(trc_trainer_backward(tr), 0);
    assert_true(loss2 == loss);
    assert_memory_equal(g1, g, m->num_params * sizeof(float));
    free(g1);
    free(ue);
    free(uo);
    trc_trainer_free(tr);

    /* refused: outside (0, 1] */
    float bad[3] = {1.0f, 0.0f, 1.0f};
    assert_int_equal(trc_infer_plan_run(plan, B, x0, tg, bad, up, NULL, 1), TRC_EINVAL);
    bad[1] = NAN;
    assert_int_equal(trc_model_infer_mt(m, B, x0, tg, bad, up, NULL, 1), TRC_EINVAL);
    bad[1] = 1.5f;
    assert_int_equal(trc_model_infer_mt(m, B, x0, tg, bad, up, NULL, 1), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "row 1"));
    trc_infer_plan_free(plan);

    /* the checkpoint keeps it; without it, only 1 is accepted */
    char path[] = "/tmp/trc_tails_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(trc_checkpoint_save(path, m, NULL), 0);
    trc_model back;
    assert_int_equal(trc_checkpoint_load(path, NULL, &back), 0);
    assert_int_equal(back.cfg.time_left, 1);
    back.cfg.time_left = 0;
    assert_int_equal(trc_model_infer_mt(&back, B, x0, tg, ones, u1, NULL, 1), 0);
    assert_int_equal(trc_model_infer_mt(&back, B, x0, tg, tl, u1, NULL, 1), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "--tails"));
    trc_model_free(&back);
    unlink(path);

    /* process supervision cannot score a tail; the objectives that can are named */
    snprintf(o.objective, sizeof o.objective, "process");
    assert_int_equal(trc_train_opts_validate(&o), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "imitation, trajectory, mixed"));
    snprintf(o.objective, sizeof o.objective, "mixed");
    assert_int_equal(trc_train_opts_validate(&o), TRC_OK);
    free(u);
    free(u1);
    free(up);
    free(ut);
    trc_model_free(m);
    trc_dataset_free(&ds);
}

/* The model's shrinking closed loop (the test's own, through trc_eval_closed_loop). */
typedef struct shrink {
    const trc_model *m;
} shrink;

static int shrink_policy(void *user, size_t n, const float *x, const float *target, int steps_left,
                         float *u) {
    const shrink *p = user;
    float *tl = malloc(n * sizeof *tl);
    for (size_t i = 0; i < n; i++)
        tl[i] = (float)steps_left / (float)p->m->cfg.T;
    int rc = trc_model_infer_mt(p->m, n, x, target, tl, u, NULL, 1);
    free(tl);
    return rc;
}

/* DAgger rows: each is a state the model's closed loop visited at t = T - steps_left, with the
 * expert's plan for the steps left from there (both recomputed here independently); concat
 * keeps every row and fills steps_left; the .npz keeps steps_left and refuses a bad one. */
static void test_dagger_rows(void **state) {
    (void)state;
    trc_dataset ds;
    make_data("lqr_finite", 40, &ds);
    trc_train_result res;
    train_with_tails(&ds, &res);
    const trc_model *m = &res.model;
    trc_dataset few = ds, rows, rows2;
    few.n = 6; /* the first problems (views into ds) */
    const trc_dagger_opts dopt = {3, 11, 2}, one = {3, 11, 1};
    trc_dagger_summary sum;
    assert_int_equal(trc_dagger_collect(m, &few, &dopt, &rows, &sum), 0);
    assert_int_equal(rows.n, 18);
    assert_int_equal(sum.labelled, 18);
    assert_int_equal(trc_dagger_collect(m, &few, &one, &rows2, NULL), 0); /* thread count */
    assert_memory_equal(rows.control_sequences, rows2.control_sequences,
                        rows.n * (size_t)ds.T * sizeof(float));
    trc_dataset_free(&rows2);
    /* the closed loop again, here */
    const int T = ds.T;
    shrink sp = {m};
    const trc_eval_loop loop = {shrink_policy, &sp, 0.0, 0};
    float *applied = malloc(6 * (size_t)T * sizeof(float)),
          *traj = malloc(6 * (size_t)(T + 1) * 2 * sizeof(float));
    trc_eval_stats st;
    assert_int_equal(trc_eval_closed_loop(trc_system_find("double_integrator"), ds.settings.dt, T,
                                          6, few.initial_states, few.target_states, &loop, 1.0, &st,
                                          applied, NULL),
                     0);
    trc_rollout_out ro = {.traj = traj};
    assert_int_equal(trc_rollout_score(trc_system_find("double_integrator"), ds.settings.dt, T, 6,
                                       few.initial_states, few.target_states, applied, &ro),
                     0);
    for (size_t r = 0; r < rows.n; r++) {
        size_t i = r / 3;
        int L = (int)rows.steps_left[r], t = T - L;
        assert_true(L >= 1 && L <= T - 1);
        assert_memory_equal(rows.initial_states + r * 2, traj + (i * (size_t)(T + 1) + t) * 2,
                            2 * sizeof(float));
        trc_expert_plan *plan;
        assert_int_equal(trc_expert_plan_create("lqr_finite", trc_system_find("double_integrator"),
                                                ds.settings.dt, L, ds.settings.bound, NULL, &plan),
                         0);
        double x[2] = {rows.initial_states[r * 2], rows.initial_states[r * 2 + 1]};
        double tg[2] = {few.target_states[i * 2], few.target_states[i * 2 + 1]}, u[64];
        assert_int_equal(trc_expert_solve(plan, x, tg, u, NULL), 0);
        for (int k = 0; k < T; k++)
            assert_true(rows.control_sequences[r * (size_t)T + (size_t)k] ==
                        (k < L ? (float)u[k] : 0.0f));
        trc_expert_plan_free(plan);
    }
    /* concat: the problems (a whole horizon each), then the rows */
    trc_dataset all, back;
    assert_int_equal(trc_dataset_concat(&few, &rows, &all), 0);
    assert_int_equal(all.n, 24);
    assert_null(all.state_trajectories);
    for (size_t r = 0; r < all.n; r++)
        assert_true(all.steps_left[r] == (r < 6 ? (float)T : rows.steps_left[r - 6]));
    assert_memory_equal(all.control_sequences + 6 * (size_t)T, rows.control_sequences,
                        rows.n * (size_t)T * sizeof(float));
    /* the .npz keeps steps_left; eval refuses tails (not whole problems) */
    char path[] = "/tmp/trc_dagger_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(trc_dataset_save(path, &all), 0);
    assert_int_equal(trc_dataset_load(path, &back), 0);
    assert_memory_equal(back.steps_left, all.steps_left, all.n * sizeof(float));
    const trc_system *sys;
    double dt;
    assert_int_equal(trc_eval_resolve(&back, NULL, 0.0, &sys, &dt), TRC_EINVAL);
    trc_dataset_free(&back);
    all.steps_left[3] = 2.5f;
    assert_int_equal(trc_dataset_save(path, &all), 0);
    assert_int_equal(trc_dataset_load(path, &back), TRC_EFORMAT);
    assert_non_null(strstr(trc_errmsg(), "steps_left[3]"));
    unlink(path);
    /* refusals: a model without the time-left input, data with tails */
    trc_model plain = *m;
    plain.cfg.time_left = 0;
    assert_int_equal(trc_dagger_collect(&plain, &few, &dopt, &rows2, NULL), TRC_EINVAL);
    assert_int_equal(trc_dagger_collect(m, &all, &dopt, &rows2, NULL), TRC_EINVAL);
    free(applied);
    free(traj);
    trc_dataset_free(&all);
    trc_dataset_free(&rows);
    trc_model_free(&res.model);
    trc_dataset_free(&ds);
}

/* Every architecture reads the time left the same way through each inference path: inference,
 * the plan and the trainer's forward agree row by row, and a time left of 1 is the whole-horizon
 * answer (seeded initialisations, no training needed). */
static void test_every_arch_reads_time_left(void **state) {
    (void)state;
    for (size_t a = 0; a < trc_arch_count(); a++) {
        const trc_arch *arch = trc_arch_at(a);
        trc_model_config cfg;
        assert_int_equal(trc_model_config_preset_arch(arch->name, "small", 2, 1, 15, 4.0f, &cfg),
                         0);
        cfg.time_left = 1;
        trc_model m;
        assert_int_equal(trc_model_create(&cfg, &m), 0);
        assert_int_equal(trc_model_init(&m, 5 + a), 0);
        const size_t B = 3, U = 15;
        const float x0[6] = {1, 0.5f, -1, 0.2f, 0.3f, -0.7f}, tg[6] = {0};
        const float tl[3] = {1.0f, 0.4f, 0.2f}, ones[3] = {1, 1, 1};
        float u[45], u1[45], up[45], ut[45];
        assert_int_equal(trc_model_infer_mt(&m, B, x0, tg, tl, u, NULL, 1), 0);
        assert_int_equal(trc_model_infer_mt(&m, B, x0, tg, ones, u1, NULL, 1), 0);
        assert_memory_equal(u, u1, U * sizeof(float));
        assert_true(memcmp(u + U, u1 + U, U * sizeof(float)) != 0);
        trc_infer_plan *plan;
        assert_int_equal(trc_infer_plan_create(&m, &plan), 0);
        assert_int_equal(trc_infer_plan_run(plan, B, x0, tg, tl, up, NULL, 2), 0);
        assert_int_equal(trc_model_infer_via_trainer(&m, B, x0, tg, tl, ut, NULL, 1), 0);
        for (size_t i = 0; i < B * U; i++) {
            assert_true(fabsf(up[i] - u[i]) <= 1e-4f * (1.0f + fabsf(u[i])));
            assert_true(fabsf(ut[i] - u[i]) <= 1e-4f * (1.0f + fabsf(u[i])));
        }
        trc_infer_plan_free(plan);
        trc_model_free(&m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tail_rows),
        cmocka_unit_test(test_tail_is_the_expert_answer),
        cmocka_unit_test(test_model_reads_time_left),
        cmocka_unit_test(test_dagger_rows),
        cmocka_unit_test(test_every_arch_reads_time_left),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
