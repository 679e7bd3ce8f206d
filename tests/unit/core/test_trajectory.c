/* The trajectory objectives (train/trajectory.c): their loss and gradient against an
 * independent double-precision reference (the system table's step, the loss written out from
 * its definition, central differences in double), on van_der_pol, double_integrator and
 * rocket_landing, in physical and normalised units, over whole horizons and tails; the
 * terms sum to the loss; the checks that refuse a system without Jacobians, data without a
 * system and negative weights; and trc_train with the trajectory and mixed objectives on every
 * architecture of the table (terms in the history, training_stats.json and the resumable
 * state, bit for bit across a mid-epoch resume). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "trc/arch.h"
#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/objective.h"
#include "trc/optim.h"
#include "trc/rng.h"
#include "trc/system.h"
#include "trc/train.h"

#include "../common.h"

enum { B = 3, K = 1, MAXU = 60 };

/* A normalised model's units for a test (NULL: physical), with the reference's conversions. */
static const trc_objective_units *test_units(const trc_system *sys, int norm) {
    static float x_std[TRC_SYSTEM_MAX_S], u_mean[TRC_SYSTEM_MAX_M], u_std[TRC_SYSTEM_MAX_M];
    static trc_objective_units un;
    if (!norm)
        return NULL;
    for (int j = 0; j < sys->s; j++)
        x_std[j] = (float)(0.5 + 0.25 * j) * (sys->s == 7 ? 800.0f : 1.0f);
    for (int j = 0; j < sys->m; j++) {
        u_mean[j] = (float)(0.3 * j - 0.1) * (sys->m == 3 ? 3000.0f : 1.0f);
        u_std[j] = (float)(0.8 + 0.2 * j) * (sys->m == 3 ? 2500.0f : 1.0f);
    }
    un = (trc_objective_units){x_std, u_mean, u_std, sys->m == 3 ? 15000.0f : 1.2f};
    return &un;
}

/* The physical control of network output y in component j, in double. */
static double ref_physical(const trc_objective_units *un, int j, double y) {
    if (!un)
        return y;
    double v = un->u_mean[j] + un->u_std[j] * y;
    return v > un->bound ? un->bound : (v < -un->bound ? -un->bound : v);
}

/* The loss of one row from its definition, in double: the L planned steps rolled out with the
 * system's step from the network's output y, the state errors over the system's error_s
 * components, in normalised units when un is not NULL. */
static double ref_row(const trc_system *sys, double dt, int L, const float *x0, const float *tg,
                      const double *y, const float *ue, const trc_objective_params *p, int mixed,
                      size_t BU, const trc_objective_units *un) {
    const int s = sys->s, m = sys->m, es = sys->error_s > 0 ? sys->error_s : s;
    double x[TRC_SYSTEM_MAX_S], xn[TRC_SYSTEM_MAX_S], u[TRC_SYSTEM_MAX_M];
    double run_x = 0.0, run_u = 0.0, imit = 0.0;
    for (int j = 0; j < s; j++)
        x[j] = x0[j];
    for (int t = 0; t < L; t++) {
        for (int j = 0; j < es; j++) {
            double e = (x[j] - tg[j]) / (un ? un->x_std[j] : 1.0);
            run_x += e * e;
        }
        for (int j = 0; j < m; j++) {
            u[j] = ref_physical(un, j, y[t * m + j]);
            run_u += u[j] * u[j] / (un ? (double)un->u_std[j] * un->u_std[j] : 1.0);
            imit += (y[t * m + j] - ue[t * m + j]) * (y[t * m + j] - ue[t * m + j]);
        }
        sys->step(x, u, dt, xn);
        memcpy(x, xn, sizeof x);
    }
    double term = 0.0;
    for (int j = 0; j < es; j++) {
        double e = (x[j] - tg[j]) / (un ? un->x_std[j] : 1.0);
        term += e * e;
    }
    double l =
        (p->terminal_weight * term + p->state_weight * run_x / L + p->control_weight * run_u / L) /
        B;
    return mixed ? l + p->imitation_weight * imit / (double)BU : l;
}

/* Random test rows: unit-scale for the small systems, a lander's kilometres and kilograms for
 * rocket_landing (so the normalised units are what makes one weight fit). */
static void test_rows(const trc_system *sys, trc_rng *rng, float *x0, float *tg) {
    const int s = sys->s;
    for (int r = 0; r < B; r++)
        for (int j = 0; j < s; j++) {
            double scale = s == 7 ? (j < 3 ? 1500.0 : (j < 6 ? 40.0 : 0.0)) : 1.0;
            x0[r * s + j] = (float)(scale * trc_rng_range(rng, -1.5, 1.5));
            tg[r * s + j] = (float)(scale * trc_rng_range(rng, -0.3, 0.3));
            if (s == 7 && j == 2)
                x0[r * s + j] = (float)trc_rng_range(rng, 1500, 3000); /* altitude */
            if (s == 7 && j == 6) { /* mass: the target's is free (error_s) */
                x0[r * s + j] = (float)trc_rng_range(rng, 1500, 3900);
                tg[r * s + j] = 2000.0f;
            }
        }
}

/* The objective's loss and gradient for rows of `system` against ref_row and its central
 * differences; norm: a normalised model's units; tails: rows with 1, 1/2 and 1/4 of the
 * horizon left. */
static void check_gradient(const char *system, const char *objective, int T, int norm, int tails) {
    const trc_system *sys = trc_system_find(system);
    const trc_objective *o = trc_objective_find(objective);
    assert_non_null(sys);
    assert_non_null(o);
    assert_true(o->final_only && o->needs_jacobian && !o->surrogate_gradient);
    assert_true(o->normalised && o->time_left);
    const int s = sys->s, m = sys->m, U = T * m, mixed = strcmp(objective, "mixed") == 0;
    assert_true(U <= MAXU);
    const size_t BU = (size_t)B * U;
    float x0[B * TRC_SYSTEM_MAX_S], tg[B * TRC_SYSTEM_MAX_S], ue[B * MAXU];
    float it[(K + 1) * B * MAXU], grad[(K + 1) * B * MAXU];
    float tl[B] = {1.0f, 0.5f, 0.25f};
    int L[B] = {T, tails ? (int)lrintf(0.5f * T) : T, tails ? (int)lrintf(0.25f * T) : T};
    double terms[B * TRC_OBJECTIVE_MAX_TERMS];
    const trc_objective_units *un = test_units(sys, norm);
    trc_rng rng;
    trc_rng_seed(&rng, 11);
    test_rows(sys, &rng, x0, tg);
    for (size_t i = 0; i < BU; i++)
        ue[i] = (float)trc_rng_range(&rng, -1, 1);
    for (size_t i = 0; i < (K + 1) * BU; i++)
        it[i] = (float)trc_rng_range(&rng, -1.5, 1.5);
    trc_objective_params p = {.imitation_weight = 0.7,
                              .terminal_weight = 2.0,
                              .state_weight = 0.5,
                              .control_weight = 0.3};
    const double dt = sys->dt;
    trc_objective_batch b = {.B = B,
                             .K = K,
                             .U = U,
                             .s = s,
                             .m = m,
                             .T = T,
                             .bound = 2.0f,
                             .x0 = x0,
                             .target = tg,
                             .u_expert = ue,
                             .units = un,
                             .time_left = tails ? tl : NULL,
                             .system = sys,
                             .dt = dt,
                             .params = &p,
                             .terms = terms};
    double loss = o->finish(&b, o->rows(&b, it, 0, B, grad));
    /* the reference at the same (float) outputs, and its central differences in double */
    double ref = 0.0, gmax = 0.0, worst = 0.0;
    const float *uK = it + (size_t)K * BU;
    for (int r = 0; r < B; r++) {
        double y[MAXU];
        for (int j = 0; j < U; j++)
            y[j] = uK[r * U + j];
        ref += ref_row(sys, dt, L[r], x0 + r * s, tg + r * s, y, ue + r * U, &p, mixed, BU, un);
        for (int j = 0; j < U; j++)
            gmax = fmax(gmax, fabs(grad[(size_t)K * BU + (size_t)r * U + j]));
    }
    assert_true(fabs(loss - ref) <= 1e-5 * fabs(ref)); /* the rollout is rounded to float */
    for (int r = 0; r < B; r++) {
        double y[MAXU];
        for (int j = 0; j < U; j++)
            y[j] = uK[r * U + j];
        for (int j = 0; j < U; j++) {
            /* a lander's physical loss is ~1e7: a wider step keeps the difference above
             * double's rounding */
            const double h = !un && s == 7 ? 1e-3 : 1e-6, keep = y[j];
            y[j] = keep + h;
            double fp =
                ref_row(sys, dt, L[r], x0 + r * s, tg + r * s, y, ue + r * U, &p, mixed, BU, un);
            y[j] = keep - h;
            double fm =
                ref_row(sys, dt, L[r], x0 + r * s, tg + r * s, y, ue + r * U, &p, mixed, BU, un);
            y[j] = keep;
            double fd = (fp - fm) / (2 * h), g = grad[(size_t)K * BU + (size_t)r * U + j];
            worst = fmax(worst, fabs(fd - g) / gmax);
            if (j >= L[r] * m) /* past a tail's steps left: nothing planned, no gradient */
                assert_true(g == 0.0f);
        }
    }
    /* float32 gradient against a double reference: measured 1e-7..1e-6 of the largest entry */
    if (!(worst <= 1e-4))
        fail_msg("%s on %s (norm %d, tails %d): gradient off by %.3g of its largest entry",
                 objective, system, norm, tails, worst);
    for (size_t i = 0; i < (size_t)K * BU; i++) /* only the last iterate has a gradient */
        assert_true(grad[i] == 0.0f);
    /* the named terms sum to the loss */
    int nt = trc_objective_nterms(o);
    assert_int_equal(nt, mixed ? 4 : 3);
    double sum = 0.0;
    for (int r = 0; r < B; r++)
        for (int k = 0; k < nt; k++)
            sum += terms[r * TRC_OBJECTIVE_MAX_TERMS + k];
    assert_true(fabs(sum - loss) <= 1e-12 * fabs(loss));
    print_message("%-10s %-17s T=%2d norm %d tails %d loss %.6g  gradient within %.2g of its "
                  "largest entry\n",
                  objective, system, T, norm, tails, loss, worst);
}

static void test_gradient_against_double_reference(void **state) {
    (void)state;
    const char *objectives[] = {"trajectory", "mixed"};
    for (int i = 0; i < 2; i++)
        for (int v = 0; v < 4; v++) { /* physical / normalised units, whole horizons / tails */
            check_gradient("van_der_pol", objectives[i], 40, v & 1, v >> 1);
            check_gradient("double_integrator", objectives[i], 15, v & 1, v >> 1);
            check_gradient("rocket_landing", objectives[i], 20, v & 1, v >> 1);
        }
}

static void test_checks(void **state) {
    (void)state;
    const trc_objective *traj = trc_objective_find("trajectory");
    const trc_objective *imit = trc_objective_find("imitation");
    assert_ptr_equal(trc_objective_find("mse"), imit); /* the old name */
    assert_ptr_equal(trc_objective_at(0), imit);       /* the default */
    assert_null(trc_objective_find("nope"));
    assert_non_null(strstr(trc_errmsg(), "trajectory"));
    /* a system without a Jacobian, and data that name no system */
    trc_system nojac = *trc_system_find("van_der_pol");
    nojac.jacobian = NULL;
    assert_int_equal(trc_objective_check(traj, &nojac), TRC_EUNSUPPORTED);
    assert_non_null(strstr(trc_errmsg(), "no Jacobian"));
    assert_int_equal(trc_objective_check(traj, NULL), TRC_EUNSUPPORTED);
    assert_int_equal(trc_objective_check(imit, NULL), TRC_OK);
    assert_int_equal(trc_objective_check(traj, trc_system_find("van_der_pol")), TRC_OK);
    /* weights */
    trc_objective_params p;
    trc_objective_params_default(&p);
    assert_int_equal(trc_objective_params_check(&p), TRC_OK);
    p.state_weight = -1;
    assert_int_equal(trc_objective_params_check(&p), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "state_weight"));
    /* the options: objective by name or alias, process_variant only with process */
    trc_train_opts o;
    trc_train_opts_default(&o);
    assert_ptr_equal(trc_train_objective(&o), imit);
    snprintf(o.objective, sizeof o.objective, "process");
    o.process_variant = 1;
    assert_int_equal(trc_train_opts_validate(&o), TRC_OK);
    assert_string_equal(trc_train_objective(&o)->name, "process_original");
    snprintf(o.objective, sizeof o.objective, "trajectory");
    assert_int_equal(trc_train_opts_validate(&o), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "process_variant"));
    o.process_variant = 0;
    o.obj.terminal_weight = -0.5;
    assert_int_equal(trc_train_opts_validate(&o), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "terminal_weight"));
    trc_train_opts_default(&o);
    snprintf(o.objective, sizeof o.objective, "bogus");
    assert_int_equal(trc_train_opts_validate(&o), TRC_EINVAL);
    /* a weight the objective does not read, or a schedule's option for another schedule, would
     * be ignored: refused, naming who reads it */
    trc_train_opts_default(&o);
    o.obj.process_q = 2.0;
    snprintf(o.objective, sizeof o.objective, "mixed");
    assert_int_equal(trc_train_opts_validate(&o), TRC_EINVAL);
    assert_non_null(
        strstr(trc_errmsg(), "process_q applies to objective process, process_original"));
    snprintf(o.objective, sizeof o.objective, "process");
    assert_int_equal(trc_train_opts_validate(&o), TRC_OK);
    o.obj.imitation_weight = 0.5;
    assert_int_equal(trc_train_opts_validate(&o), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "imitation_weight applies to objective mixed"));
    trc_train_opts_default(&o);
    o.gamma = 0.3;
    assert_int_equal(trc_train_opts_validate(&o), TRC_EINVAL); /* cosine */
    assert_non_null(strstr(trc_errmsg(), "gamma applies to scheduler step, plateau"));
    o.scheduler = TRC_SCHED_PLATEAU;
    assert_int_equal(trc_train_opts_validate(&o), TRC_OK);
    o.lr_min = 1e-3;
    assert_int_equal(trc_train_opts_validate(&o), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "lr_min applies to scheduler cosine"));
    /* every weight of trc_objective_params is read by some objective, and only weights are */
    const char *weights[] = {"imitation_weight", "terminal_weight", "state_weight",
                             "control_weight",   "process_weight",  "process_q",
                             "process_r",        "process_qf"};
    for (size_t i = 0; i < sizeof weights / sizeof weights[0]; i++)
        assert_true(trc_objective_option(weights[i]));
    assert_false(trc_objective_option("lr") || trc_objective_option("objective"));
}

/* trc_train with a simulating objective on every architecture: finite losses whose terms sum
 * to them, in the history and in training_stats.json. */
static void test_train_every_architecture(void **state) {
    (void)state;
    trc_gen_settings gs;
    assert_int_equal(trc_gen_settings_default("van_der_pol", &gs), TRC_OK);
    snprintf(gs.expert, sizeof gs.expert, "ilqr");
    gs.T = 20;
    gs.seed = 3;
    trc_dataset ds;
    assert_int_equal(trc_dataset_generate(&gs, 48, &ds), TRC_OK);
    for (size_t a = 0; a < trc_arch_count(); a++) {
        for (int mixed = 0; mixed < 2; mixed++) {
            const trc_arch *arch = trc_arch_at(a);
            trc_train_opts o;
            trc_train_opts_default(&o);
            snprintf(o.arch, sizeof o.arch, "%s", arch->name);
            snprintf(o.model_size, sizeof o.model_size, "%s", arch->sizes[0].name);
            snprintf(o.objective, sizeof o.objective, "%s", mixed ? "mixed" : "trajectory");
            o.K = 2;
            o.n = 1;
            o.epochs = 2;
            o.batch_size = 16;
            o.val_split = 0.25;
            o.obj.state_weight = 0.1;
            o.obj.control_weight = 0.01;
            snprintf(o.out_dir, sizeof o.out_dir, "%s/%s_%d", test_tmpdir, arch->name, mixed);
            trc_train_result res;
            int rc = trc_train(&ds, &o, NULL, NULL, NULL, &res);
            if (rc)
                fail_msg("%s %s: %s", arch->name, o.objective, trc_errmsg());
            assert_int_equal(res.epochs_run, 2);
            trc_model_free(&res.model);
            char path[4200];
            snprintf(path, sizeof path, "%s/training_stats.json", o.out_dir);
            json_t *j = json_load_file(path, 0, NULL);
            assert_non_null(j);
            json_t *e = json_array_get(json_object_get(j, "epochs"), 1);
            const char *which[2] = {"train", "val"};
            for (int w = 0; w < 2; w++) {
                char key[16];
                snprintf(key, sizeof key, "%s_terms", which[w]);
                json_t *terms = json_object_get(e, key);
                assert_int_equal(json_object_size(terms), mixed ? 4 : 3);
                double sum = 0.0,
                       loss = json_number_value(json_object_get(e, w ? "val_loss" : "train_loss"));
                const char *name;
                json_t *v;
                json_object_foreach(terms, name, v) sum += json_number_value(v);
                assert_true(isfinite(loss) && loss > 0);
                if (!(fabs(sum - loss) <= 1e-6 * loss))
                    fail_msg("%s %s %s: terms sum to %.9g, loss %.9g", arch->name, o.objective, key,
                             sum, loss);
            }
            assert_string_equal(
                json_string_value(json_object_get(json_object_get(j, "settings"), "objective")),
                o.objective);
            json_decref(j);
            /* a resumed run reads the settings back */
            trc_train_opts saved;
            assert_int_equal(trc_train_saved_settings(o.out_dir, &saved), TRC_OK);
            assert_string_equal(saved.objective, o.objective);
            assert_true(saved.obj.state_weight == 0.1 && saved.obj.control_weight == 0.01);
        }
    }
    /* data that name no system: refused before anything is written */
    trc_dataset bare = ds;
    bare.has_settings = 0;
    bare.system[0] = '\0'; /* what a file without metadata or sidecar records */
    bare.dt = 0;
    trc_train_opts o;
    trc_train_opts_default(&o);
    snprintf(o.model_size, sizeof o.model_size, "small");
    snprintf(o.objective, sizeof o.objective, "trajectory");
    snprintf(o.out_dir, sizeof o.out_dir, "%s/bare", test_tmpdir);
    trc_train_result res;
    assert_int_equal(trc_train(&bare, &o, NULL, NULL, NULL, &res), TRC_EUNSUPPORTED);
    assert_non_null(strstr(trc_errmsg(), "names none"));
    FILE *f = fopen(o.out_dir, "r");
    assert_null(f);
    /* a system but no time step (a sidecar naming only the system): never a default dt */
    snprintf(bare.system, sizeof bare.system, "%s", ds.system);
    assert_int_equal(trc_train(&bare, &o, NULL, NULL, NULL, &res), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "records no time step"));
    f = fopen(o.out_dir, "r");
    assert_null(f);
    trc_dataset_free(&ds);
}

/* Stops the run at batch 2 of epoch 2 (mid-epoch, with term sums in flight). */
static int stop_mid_epoch(void *user, const trc_progress *p) {
    (void)user;
    return p->kind == TRC_PROGRESS_BATCH && p->epoch == 2 && p->batch == 2;
}

/* A run stopped mid-epoch and resumed ends with the same history, terms included, bit for bit,
 * as one never interrupted: the term sums of the unfinished epoch are in the saved state. */
static void test_resume_keeps_terms(void **state) {
    (void)state;
    trc_gen_settings gs;
    assert_int_equal(trc_gen_settings_default("double_integrator", &gs), TRC_OK);
    gs.seed = 4;
    trc_dataset ds;
    assert_int_equal(trc_dataset_generate(&gs, 64, &ds), TRC_OK);
    trc_train_opts o;
    trc_train_opts_default(&o);
    snprintf(o.model_size, sizeof o.model_size, "small");
    snprintf(o.objective, sizeof o.objective, "mixed");
    o.K = 1;
    o.n = 1;
    o.epochs = 3;
    o.batch_size = 16;
    o.obj.control_weight = 0.05;
    trc_train_result whole, part, rest;
    snprintf(o.out_dir, sizeof o.out_dir, "%s/whole", test_tmpdir);
    assert_int_equal(trc_train(&ds, &o, NULL, NULL, NULL, &whole), TRC_OK);
    snprintf(o.out_dir, sizeof o.out_dir, "%s/resumed", test_tmpdir);
    assert_int_equal(trc_train(&ds, &o, stop_mid_epoch, NULL, NULL, &part), TRC_ECANCELED);
    trc_model_free(&part.model);
    trc_train_opts r;
    assert_int_equal(trc_train_saved_settings(o.out_dir, &r), TRC_OK);
    assert_int_equal(trc_train(&ds, &r, NULL, NULL, NULL, &rest), TRC_OK);
    char pa[4200], pb[4200];
    snprintf(pa, sizeof pa, "%s/whole/training_stats.json", test_tmpdir);
    snprintf(pb, sizeof pb, "%s/resumed/training_stats.json", test_tmpdir);
    json_t *a = json_load_file(pa, 0, NULL), *b = json_load_file(pb, 0, NULL);
    assert_non_null(a);
    assert_non_null(b);
    for (size_t e = 0; e < 3; e++) {
        json_t *ea = json_array_get(json_object_get(a, "epochs"), e);
        json_t *eb = json_array_get(json_object_get(b, "epochs"), e);
        const char *keys[] = {"train_terms", "val_terms"};
        for (int k = 0; k < 2; k++)
            assert_true(json_equal(json_object_get(ea, keys[k]), json_object_get(eb, keys[k])));
        assert_true(json_number_value(json_object_get(ea, "train_loss")) ==
                    json_number_value(json_object_get(eb, "train_loss")));
    }
    assert_memory_equal(whole.model.params, rest.model.params,
                        whole.model.num_params * sizeof(float));
    json_decref(a);
    json_decref(b);
    trc_model_free(&whole.model);
    trc_model_free(&rest.model);
    trc_dataset_free(&ds);
}

/* --init: a run starts from a checkpoint's parameters (here with a learning rate too small to
 * move them), and refuses one of another size before writing anything. */
static void test_init_from_checkpoint(void **state) {
    (void)state;
    trc_gen_settings gs;
    assert_int_equal(trc_gen_settings_default("double_integrator", &gs), TRC_OK);
    trc_dataset ds;
    assert_int_equal(trc_dataset_generate(&gs, 32, &ds), TRC_OK);
    trc_train_opts o;
    trc_train_opts_default(&o);
    snprintf(o.model_size, sizeof o.model_size, "small");
    o.K = 1;
    o.n = 1;
    o.epochs = 2;
    o.batch_size = 16;
    snprintf(o.out_dir, sizeof o.out_dir, "%s/init_a", test_tmpdir);
    trc_train_result a, b;
    assert_int_equal(trc_train(&ds, &o, NULL, NULL, NULL, &a), TRC_OK);
    trc_train_opts f = o;
    snprintf(f.objective, sizeof f.objective, "mixed");
    snprintf(f.init, sizeof f.init, "%s", a.best_path);
    f.lr = 1e-12;
    f.lr_min = 0;
    f.seed = 99; /* another seed: without --init the parameters would differ entirely */
    f.epochs = 1;
    snprintf(f.out_dir, sizeof f.out_dir, "%s/init_b", test_tmpdir);
    assert_int_equal(trc_train(&ds, &f, NULL, NULL, NULL, &b), TRC_OK);
    double worst = 0.0;
    for (size_t i = 0; i < a.model.num_params; i++)
        worst = fmax(worst, fabs((double)a.model.params[i] - b.model.params[i]));
    assert_true(worst < 1e-6);
    trc_model_free(&b.model);
    snprintf(f.model_size, sizeof f.model_size, "medium");
    snprintf(f.out_dir, sizeof f.out_dir, "%s/init_c", test_tmpdir);
    assert_int_equal(trc_train(&ds, &f, NULL, NULL, NULL, &b), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "init: "));
    assert_null(fopen(f.out_dir, "r"));
    trc_model_free(&a.model);
    trc_dataset_free(&ds);
}

static int setup(void **state) {
    (void)state;
    openblas_set_num_threads(1);
    return test_tmpdir_make("trajectory");
}

static int teardown(void **state) {
    (void)state;
    return test_rm_rf(test_tmpdir);
}

/* A normalised lander with tails, trained on the simulated landing alone (objective trajectory,
 * terminal error only): the rollout's gradient reaches the network through the units and the
 * steps left, so the terminal term falls; process supervision, which scores neither, is refused
 * before anything is written, naming the objectives that can. */
static void test_normalised_tails_rocket(void **state) {
    (void)state;
    trc_gen_settings gs;
    assert_int_equal(trc_gen_settings_default("rocket_landing", &gs), TRC_OK);
    gs.seed = 5;
    snprintf(gs.expert, sizeof gs.expert, "ilqr");
    trc_dataset ds;
    assert_int_equal(trc_dataset_generate(&gs, 32, &ds), TRC_OK);
    trc_train_opts o;
    trc_train_opts_default(&o);
    snprintf(o.model_size, sizeof o.model_size, "%s", trc_arch_at(0)->sizes[0].name);
    snprintf(o.objective, sizeof o.objective, "trajectory");
    o.tails = 2;
    o.K = 1;
    o.n = 1;
    o.epochs = 8;
    o.batch_size = 16;
    o.val_split = 0;
    o.lr = 3e-3;
    snprintf(o.out_dir, sizeof o.out_dir, "%s/rocket_norm", test_tmpdir);
    trc_train_result res;
    if (trc_train(&ds, &o, NULL, NULL, NULL, &res))
        fail_msg("rocket trajectory with tails: %s", trc_errmsg());
    assert_true(res.model.cfg.norm && res.model.cfg.time_left);
    trc_model_free(&res.model);
    char path[4200];
    snprintf(path, sizeof path, "%s/training_stats.json", o.out_dir);
    json_t *j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    json_t *ep = json_object_get(j, "epochs");
    double first = json_number_value(
        json_object_get(json_object_get(json_array_get(ep, 0), "train_terms"), "terminal"));
    double last = json_number_value(json_object_get(
        json_object_get(json_array_get(ep, json_array_size(ep) - 1), "train_terms"), "terminal"));
    print_message("rocket, normalised, tails: terminal term %.4g after epoch 1, %.4g after %zu\n",
                  first, last, json_array_size(ep));
    assert_true(isfinite(first) && isfinite(last) && last < 0.5 * first);
    json_decref(j);

    snprintf(o.objective, sizeof o.objective, "process");
    o.tails = 0;
    snprintf(o.out_dir, sizeof o.out_dir, "%s/rocket_process", test_tmpdir);
    assert_int_equal(trc_train(&ds, &o, NULL, NULL, NULL, &res), TRC_EUNSUPPORTED);
    assert_non_null(strstr(trc_errmsg(), "normalisation"));
    assert_non_null(strstr(trc_errmsg(), "imitation, trajectory, mixed"));
    assert_int_equal(access(o.out_dir, F_OK), -1); /* nothing written */
    trc_dataset_free(&ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_against_double_reference),
        cmocka_unit_test(test_checks),
        cmocka_unit_test(test_train_every_architecture),
        cmocka_unit_test(test_resume_keeps_terms),
        cmocka_unit_test(test_init_from_checkpoint),
        cmocka_unit_test(test_normalised_tails_rocket),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
