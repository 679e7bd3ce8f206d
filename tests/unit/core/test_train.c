/* The training loop on a tiny synthetic dataset with the small model: the loss goes down, the
 * same seed gives bit-identical checkpoints, the cancel flag stops within a batch and a resume
 * ends exactly where an uninterrupted run ends, stats and curves are written, val_split 0 keeps
 * the best by training loss, early stopping, and bad settings are refused. */
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

#include "trc/checkpoint.h"
#include "trc/error.h"
#include "trc/fileio.h"
#include "trc/rng.h"
#include "trc/train.h"

#include "../common.h"

#define NS 100 /* samples: 90 train (6 batches of 16), 10 validation */
#define SD 2   /* state dimension */
#define HZ 6   /* horizon */
#define EPOCHS 4

static float g_x0[NS * SD], g_tg[NS * SD], g_u[NS * HZ];
static trc_dataset g_ds;

/* A smooth, learnable map from (x0, target) to controls, bounded well inside b = 4. */
static void make_dataset(void) {
    trc_rng r;
    trc_rng_seed(&r, 7);
    for (int i = 0; i < NS; i++) {
        for (int k = 0; k < SD; k++) {
            g_x0[i * SD + k] = (float)trc_rng_range(&r, -2, 2);
            g_tg[i * SD + k] = (float)trc_rng_range(&r, -2, 2);
        }
        float dp = g_tg[i * SD] - g_x0[i * SD], dv = g_tg[i * SD + 1] - g_x0[i * SD + 1];
        for (int t = 0; t < HZ; t++)
            g_u[i * HZ + t] = 0.4f * dp * (1.0f - (float)t / HZ) + 0.3f * dv * ((float)t / HZ);
    }
    memset(&g_ds, 0, sizeof g_ds);
    g_ds.n = NS;
    g_ds.s = SD;
    g_ds.m = 1;
    g_ds.T = HZ;
    g_ds.initial_states = g_x0;
    g_ds.target_states = g_tg;
    g_ds.control_sequences = g_u;
}

static int setup(void **state) {
    (void)state;
    openblas_set_num_threads(1);
    make_dataset();
    return test_tmpdir_make("train");
}

static int teardown(void **state) {
    (void)state;
    return test_rm_rf(test_tmpdir);
}

static void opts_for(trc_train_opts *o, const char *sub) {
    trc_train_opts_default(o);
    snprintf(o->model_size, sizeof o->model_size, "small");
    o->K = 2;
    o->n = 1;
    o->epochs = EPOCHS;
    o->batch_size = 16;
    o->lr = 3e-3;
    o->seed = 5;
    if (sub)
        snprintf(o->out_dir, sizeof o->out_dir, "%s/%s", test_tmpdir, sub);
}

static char *path_in(const char *sub, const char *file) {
    static char buf[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s/%s", test_tmpdir, sub, file);
    return buf[k];
}

static int same_file(const char *a, const char *b) {
    uint8_t *x, *y;
    size_t nx, ny;
    assert_int_equal(trc_read_file(a, &x, &nx), TRC_OK);
    assert_int_equal(trc_read_file(b, &y, &ny), TRC_OK);
    int same = nx == ny && memcmp(x, y, nx) == 0;
    free(x);
    free(y);
    return same;
}

typedef struct counter {
    int batches, epochs, last_epoch;
    size_t batches_per_epoch;
    double first_loss, last_loss;
    /* cancel at (epoch, batch); the batches seen after the flag was raised */
    int cancel_epoch;
    size_t cancel_batch;
    atomic_int *flag;
    int after_flag;
    int stop_return; /* return non-zero at this epoch event */
} counter;

static int on_progress(void *user, const trc_progress *p) {
    counter *c = user;
    if (p->kind == TRC_PROGRESS_BATCH) {
        if (c->flag && atomic_load(c->flag))
            c->after_flag++;
        c->batches++;
        c->batches_per_epoch = p->batches;
        assert_true(p->batch >= 1 && p->batch <= p->batches);
        assert_true(isfinite(p->batch_loss));
        if (c->flag && p->epoch == c->cancel_epoch && p->batch == c->cancel_batch)
            atomic_store(c->flag, 1);
    } else {
        c->epochs++;
        c->last_epoch = p->epoch;
        assert_int_equal(p->history[p->epoch - 1].epoch, p->epoch);
        if (p->epoch == 1)
            c->first_loss = p->history[0].train_loss;
        c->last_loss = p->history[p->epoch - 1].train_loss;
        if (c->stop_return && p->epoch == c->stop_return)
            return 1;
    }
    return 0;
}

static json_t *load_json(const char *path) {
    json_error_t err;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        fail_msg("%s: %s", path, err.text);
    return j;
}

static void test_loss_goes_down_and_files_are_written(void **state) {
    (void)state;
    trc_train_opts o;
    opts_for(&o, "a");
    snprintf(o.data_path, sizeof o.data_path, "synthetic.npz");
    counter c = {0};
    trc_train_result res;
    assert_int_equal(trc_train(&g_ds, &o, on_progress, &c, NULL, &res), TRC_OK);
    assert_int_equal(res.epochs_run, EPOCHS);
    assert_int_equal(c.epochs, EPOCHS);
    assert_int_equal(c.batches_per_epoch, 6);
    assert_int_equal(c.batches, EPOCHS * 6);
    assert_true(c.last_loss < 0.5 * c.first_loss);
    assert_false(res.cancelled);
    assert_true(res.best_epoch >= 1 && res.best_epoch <= EPOCHS);
    assert_true(isfinite(res.best_loss));
    assert_string_equal(res.best_path, path_in("a", "best_model.safetensors"));
    assert_int_equal(res.model.num_params, trc_model_param_count(&res.model.cfg));

    /* The best checkpoint loads and holds the returned model. */
    trc_model loaded;
    assert_int_equal(trc_checkpoint_load(res.best_path, NULL, &loaded), TRC_OK);
    assert_int_equal(loaded.cfg.K, 2);
    assert_int_equal(loaded.cfg.n, 1);
    assert_memory_equal(loaded.params, res.model.params, loaded.num_params * sizeof(float));
    trc_model_free(&loaded);
    assert_int_equal(access(path_in("a", "optimizer_state.safetensors"), R_OK), 0);

    json_t *j = load_json(path_in("a", "training_stats.json"));
    json_t *ep = json_object_get(j, "epochs");
    assert_int_equal(json_array_size(ep), EPOCHS);
    for (size_t i = 0; i < EPOCHS; i++) {
        json_t *e = json_array_get(ep, i);
        assert_int_equal(json_integer_value(json_object_get(e, "epoch")), (json_int_t)i + 1);
        assert_true(json_is_real(json_object_get(e, "train_loss")));
        assert_true(json_is_real(json_object_get(e, "val_loss")));
        assert_true(json_real_value(json_object_get(e, "samples_per_sec")) > 0);
        assert_true(json_real_value(json_object_get(e, "seconds")) >= 0);
    }
    /* cosine: the first epoch trains at lr, the rate then falls */
    double lr0 = json_real_value(json_object_get(json_array_get(ep, 0), "lr"));
    double lr3 = json_real_value(json_object_get(json_array_get(ep, 3), "lr"));
    assert_float_equal(lr0, 3e-3, 1e-15);
    assert_true(lr3 < lr0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "data"), "n_val")), 10);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "data"), "path")),
                        "synthetic.npz");
    assert_string_equal(json_string_value(json_object_get(j, "monitor")), "val_loss");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(j, "settings"), "scheduler")), "cosine");
    json_decref(j);

    uint8_t *svg;
    size_t len;
    assert_int_equal(trc_read_file(path_in("a", "training_curves.svg"), &svg, &len), TRC_OK);
    assert_non_null(strstr((char *)svg, "<svg"));
    assert_non_null(strstr((char *)svg, "log scale"));
    assert_non_null(strstr((char *)svg, ">epoch<"));
    assert_non_null(strstr((char *)svg, "validation loss"));
    const char *first = strstr((char *)svg, "<polyline");
    assert_non_null(first);
    assert_non_null(strstr(first + 1, "<polyline")); /* train and validation */
    assert_non_null(strstr((char *)svg, "</svg>"));
    free(svg);
    trc_model_free(&res.model);
}

static void test_same_seed_same_bits(void **state) {
    (void)state;
    trc_train_opts o;
    trc_train_result res;
    opts_for(&o, "b1");
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_OK);
    trc_model_free(&res.model);
    opts_for(&o, "b2");
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_OK);
    trc_model_free(&res.model);
    assert_true(same_file(path_in("b1", "best_model.safetensors"),
                          path_in("b2", "best_model.safetensors")));
    assert_true(same_file(path_in("b1", "last_model.safetensors"),
                          path_in("b2", "last_model.safetensors")));
    opts_for(&o, "b3");
    o.seed = 6;
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_OK);
    trc_model_free(&res.model);
    assert_false(same_file(path_in("b1", "last_model.safetensors"),
                           path_in("b3", "last_model.safetensors")));
    /* Two threads per step: the same bits again for the same thread count. */
    opts_for(&o, "b4");
    o.threads = 2;
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_OK);
    trc_model_free(&res.model);
    opts_for(&o, "b5");
    o.threads = 2;
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_OK);
    trc_model_free(&res.model);
    assert_true(same_file(path_in("b4", "last_model.safetensors"),
                          path_in("b5", "last_model.safetensors")));
}

static void test_cancel_and_resume(void **state) {
    (void)state;
    trc_train_opts o;
    trc_train_result res;
    /* Uninterrupted reference run in "c0". */
    opts_for(&o, "c0");
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_OK);
    trc_model_free(&res.model);

    /* The flag goes up during batch 3 of epoch 2: no further batch runs. */
    atomic_int flag = 0;
    counter c = {.cancel_epoch = 2, .cancel_batch = 3, .flag = &flag};
    opts_for(&o, "c1");
    assert_int_equal(trc_train(&g_ds, &o, on_progress, &c, &flag, &res), TRC_ECANCELED);
    assert_non_null(strstr(trc_errmsg(), "cancelled"));
    assert_true(res.cancelled);
    assert_int_equal(c.after_flag, 0);
    assert_int_equal(c.batches, 6 + 3);
    assert_int_equal(res.epochs_run, 1);
    assert_non_null(res.model.params); /* the best so far */
    trc_model_free(&res.model);
    assert_int_equal(access(path_in("c1", "last_model.safetensors"), R_OK), 0);

    /* Resume: settings come from the saved run; the end is bit for bit the reference's. */
    trc_train_opts saved;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/c1", test_tmpdir);
    assert_int_equal(trc_train_saved_settings(dir, &saved), TRC_OK);
    assert_int_equal(saved.resume, 1);
    assert_int_equal(saved.epochs, EPOCHS);
    assert_int_equal(saved.K, 2);
    assert_float_equal(saved.lr, 3e-3, 0);
    counter c2 = {0};
    assert_int_equal(trc_train(&g_ds, &saved, on_progress, &c2, NULL, &res), TRC_OK);
    assert_int_equal(c2.batches, 3 + 2 * 6);
    assert_int_equal(res.epochs_run, EPOCHS);
    trc_model_free(&res.model);
    assert_true(same_file(path_in("c0", "last_model.safetensors"),
                          path_in("c1", "last_model.safetensors")));
    assert_true(same_file(path_in("c0", "best_model.safetensors"),
                          path_in("c1", "best_model.safetensors")));
    json_t *j = load_json(path_in("c1", "training_stats.json"));
    assert_int_equal(json_array_size(json_object_get(j, "epochs")), EPOCHS);
    json_decref(j);

    /* Stopping through the callback after epoch 1, then resuming with a larger budget. */
    counter c3 = {.stop_return = 1};
    opts_for(&o, "c2");
    assert_int_equal(trc_train(&g_ds, &o, on_progress, &c3, NULL, &res), TRC_ECANCELED);
    assert_int_equal(res.epochs_run, 1);
    trc_model_free(&res.model);
    o.resume = 1;
    o.epochs = EPOCHS + 1;
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_OK);
    assert_int_equal(res.epochs_run, EPOCHS + 1);
    trc_model_free(&res.model);

    /* A finished run resumed with the same budget has nothing left to do. */
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_OK);
    assert_int_equal(res.epochs_run, EPOCHS + 1);
    trc_model_free(&res.model);
}

static void test_resume_refusals(void **state) {
    (void)state;
    trc_train_opts o;
    trc_train_result res;
    opts_for(&o, "nothing-here");
    o.resume = 1;
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_ENOTFOUND);
    assert_non_null(strstr(trc_errmsg(), "optimizer_state.safetensors"));

    opts_for(&o, "c0"); /* finished in test_cancel_and_resume */
    o.resume = 1;
    o.lr = 1e-3;
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "'lr'"));

    opts_for(&o, "c0");
    o.resume = 1;
    o.epochs = 2;
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "budget"));

    opts_for(&o, "c0");
    o.resume = 1;
    g_u[5] += 0.25f; /* another dataset of the same shape */
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "dataset"));
    g_u[5] -= 0.25f;
}

static void test_no_validation_split(void **state) {
    (void)state;
    trc_train_opts o;
    opts_for(&o, "d");
    o.val_split = 0;
    o.scheduler = TRC_SCHED_NONE;
    trc_train_result res;
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_OK);
    trc_model_free(&res.model);
    json_t *j = load_json(path_in("d", "training_stats.json"));
    assert_string_equal(json_string_value(json_object_get(j, "monitor")), "train_loss");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "data"), "n_train")),
                     NS);
    json_t *ep = json_object_get(j, "epochs");
    int best = 0;
    double best_loss = INFINITY;
    for (size_t i = 0; i < json_array_size(ep); i++) {
        json_t *e = json_array_get(ep, i);
        assert_true(json_is_null(json_object_get(e, "val_loss")));
        assert_float_equal(json_real_value(json_object_get(e, "lr")), 3e-3, 0);
        double l = json_real_value(json_object_get(e, "train_loss"));
        if (l < best_loss) {
            best_loss = l;
            best = (int)i + 1;
        }
    }
    assert_int_equal(res.best_epoch, best);
    assert_float_equal(res.best_loss, best_loss, 1e-12);
    json_decref(j);

    /* Without an output directory nothing is written and the best model is still returned. */
    opts_for(&o, NULL);
    o.val_split = 0;
    o.epochs = 1;
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_OK);
    assert_string_equal(res.best_path, "");
    assert_non_null(res.model.params);
    trc_model_free(&res.model);
}

static void test_early_stopping(void **state) {
    (void)state;
    trc_train_opts o;
    opts_for(&o, "e");
    o.epochs = 30;
    o.patience = 2;
    o.lr = 0.5; /* far too large: the validation loss stops improving at once */
    o.scheduler = TRC_SCHED_NONE;
    trc_train_result res;
    int rc = trc_train(&g_ds, &o, NULL, NULL, NULL, &res);
    assert_int_equal(rc, TRC_OK);
    assert_true(res.stopped_early);
    assert_true(res.epochs_run < 30);
    assert_int_equal(res.epochs_run, res.best_epoch + 2);
    trc_model_free(&res.model);
    json_t *j = load_json(path_in("e", "training_stats.json"));
    assert_true(json_is_true(json_object_get(j, "stopped_early")));
    json_decref(j);
}

static void test_schedulers_in_the_loop(void **state) {
    (void)state;
    trc_train_opts o;
    trc_train_result res;
    opts_for(&o, "f");
    o.scheduler = TRC_SCHED_STEP;
    o.step_size = 2;
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_OK);
    trc_model_free(&res.model);
    json_t *j = load_json(path_in("f", "training_stats.json"));
    json_t *ep = json_object_get(j, "epochs");
    const double want[EPOCHS] = {3e-3, 3e-3, 3e-4, 3e-4};
    for (int i = 0; i < EPOCHS; i++)
        assert_float_equal(json_real_value(json_object_get(json_array_get(ep, (size_t)i), "lr")),
                           want[i], 1e-15);
    json_decref(j);
}

/* Each case breaks one setting; the message must name it. */
static void test_bad_settings(void **state) {
    (void)state;
    const char *words[] = {"epochs must",     "batch_size must", "lr must",  "val_split must",
                           "model_size must", "resume",          "patience", "gamma",
                           "K must",          "lr_min",          "threads"};
    for (int k = 0; k < (int)(sizeof words / sizeof *words); k++) {
        trc_train_opts o;
        trc_train_result res;
        opts_for(&o, NULL);
        switch (k) {
        case 0:
            o.epochs = 0;
            break;
        case 1:
            o.batch_size = -3;
            break;
        case 2:
            o.lr = NAN;
            break;
        case 3:
            o.val_split = 1.0;
            break;
        case 4:
            snprintf(o.model_size, sizeof o.model_size, "huge");
            break;
        case 5:
            o.resume = 1;
            break;
        case 6:
            o.patience = -1;
            break;
        case 7:
            o.scheduler = TRC_SCHED_PLATEAU;
            o.gamma = 1.0;
            break;
        case 8:
            o.K = 0;
            break;
        case 9:
            o.lr_min = 1.0;
            break;
        case 10:
            o.threads = 0;
            break;
        }
        assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_EINVAL);
        if (!strstr(trc_errmsg(), words[k]))
            fail_msg("case %d: '%s' does not name %s", k, trc_errmsg(), words[k]);
    }
    /* A dataset with a non-finite value, and one too small to split. */
    trc_train_opts o;
    trc_train_result res;
    opts_for(&o, NULL);
    g_x0[7] = NAN;
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "sample 3"));
    make_dataset();
    g_ds.n = 1;
    assert_int_equal(trc_train(&g_ds, &o, NULL, NULL, NULL, &res), TRC_EINVAL);
    assert_non_null(strstr(trc_errmsg(), "nothing to train"));
    g_ds.n = NS;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_goes_down_and_files_are_written),
        cmocka_unit_test(test_same_seed_same_bits),
        cmocka_unit_test(test_cancel_and_resume),
        cmocka_unit_test(test_resume_refusals),
        cmocka_unit_test(test_no_validation_split),
        cmocka_unit_test(test_early_stopping),
        cmocka_unit_test(test_schedulers_in_the_loop),
        cmocka_unit_test(test_bad_settings),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
