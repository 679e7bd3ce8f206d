/* Unit tests of the training spec (defaults, every bound naming its field, unknown fields,
 * types, round trip through JSON) and of the Job object builder (nulls, NaN never sent). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "train_spec.h"
#include "trc/system.h"

/* Parses text as a spec; returns the parser's status and fills err. */
static int parse(const char *text, trc_train_spec *spec, proto_error *err) {
    json_error_t jerr;
    json_t *obj = json_loads(text, 0, &jerr);
    assert_non_null(obj);
    memset(err, 0, sizeof *err);
    int rc = trc_train_spec_parse(obj, spec, err);
    json_decref(obj);
    return rc;
}

static void expect_error(const char *text, const char *param, const char *needle) {
    trc_train_spec spec;
    proto_error err;
    int rc = parse(text, &spec, &err);
    if (rc != -1 || err.code != 400 || strcmp(err.param, param) != 0 ||
        !strstr(err.message, needle))
        fail_msg("%s: rc %d, code %d, param '%s', message '%s' (expected param '%s', '%s')", text,
                 rc, err.code, err.param, err.message, param, needle);
}

static void test_defaults(void **state) {
    (void)state;
    trc_train_spec spec;
    proto_error err;
    assert_int_equal(parse("{}", &spec, &err), 0);
    assert_string_equal(spec.name, "");
    assert_string_equal(spec.data.settings.system, "double_integrator");
    assert_string_equal(spec.data.settings.expert, "min_energy");
    assert_int_equal(spec.data.num_samples, 10000);
    assert_int_equal(spec.train.seed, 42);
    assert_string_equal(spec.train.model_size, "medium");
    assert_int_equal(spec.train.epochs, 100);
    assert_int_equal(spec.train.batch_size, 64);
    assert_true(spec.train.lr == 1e-3);
    assert_string_equal(trc_sched_name(spec.train.scheduler), "cosine");
    assert_int_equal(spec.train.patience, 20);
    assert_true(spec.train.val_split == 0.1);
    /* NULL (no body) is the same as {} */
    assert_int_equal(trc_train_spec_parse(NULL, &spec, &err), 0);
    assert_int_equal(spec.train.epochs, 100);
}

/* The data's horizon, dt, bound and box are the chosen system's, also after a round trip through
 * the stored JSON (the spec re-defaulted for its own system name once gave the double
 * integrator's). */
static void test_system_defaults(void **state) {
    (void)state;
    static const char *const systems[] = {"van_der_pol", "rocket_landing"};
    for (int i = 0; i < 2; i++) {
        const trc_system *sys = trc_system_find(systems[i]);
        char text[160];
        snprintf(text, sizeof text,
                 "{\"system\": \"%s\", \"expert\": \"ilqr\", \"num_samples\": 16, "
                 "\"batch_size\": 8}",
                 systems[i]);
        trc_train_spec spec[2];
        proto_error err;
        assert_int_equal(parse(text, &spec[0], &err), 0);
        json_t *j = trc_train_spec_to_json(&spec[0]);
        assert_int_equal(trc_train_spec_read(j, &spec[1], &err), 0);
        json_decref(j);
        for (int k = 0; k < 2; k++) {
            assert_string_equal(spec[k].data.settings.system, systems[i]);
            assert_int_equal(spec[k].data.settings.T, sys->T);
            assert_true(spec[k].data.settings.dt == sys->dt);
            assert_true(spec[k].data.settings.bound == sys->bound);
        }
    }
}

static void test_full_spec_and_round_trip(void **state) {
    (void)state;
    trc_train_spec spec, back;
    proto_error err;
    assert_int_equal(parse("{\"name\": \"my-model_1.v2\", \"system\": \"double_integrator\", "
                           "\"expert\": \"lqr\", \"num_samples\": 1e3, \"seed\": 7, "
                           "\"model_size\": \"small\", \"epochs\": 5, \"batch_size\": 32, "
                           "\"lr\": 0.002, \"scheduler\": \"step\", \"patience\": 0, "
                           "\"val_split\": 0}",
                           &spec, &err),
                     0);
    assert_string_equal(spec.name, "my-model_1.v2");
    assert_string_equal(spec.data.settings.expert, "lqr");
    assert_int_equal(spec.data.num_samples, 1000);
    assert_int_equal(spec.train.seed, 7);
    assert_string_equal(spec.train.model_size, "small");
    assert_int_equal(spec.train.epochs, 5);
    assert_int_equal(spec.train.batch_size, 32);
    assert_true(spec.train.lr == 0.002);
    assert_string_equal(trc_sched_name(spec.train.scheduler), "step");
    assert_int_equal(spec.train.patience, 0);
    assert_true(spec.train.val_split == 0);

    json_t *j = trc_train_spec_to_json(&spec);
    assert_non_null(j);
    /* "name" and every wire option of the tables */
    size_t nwire = 0;
    const void *base;
    while (trc_train_spec_option(nwire, &spec, &base))
        nwire++;
    assert_true(nwire >= 11);
    assert_int_equal(json_object_size(j), 1 + nwire);
    assert_int_equal(trc_train_spec_parse(j, &back, &err), 0);
    json_decref(j);
    assert_memory_equal(&spec, &back, sizeof spec);

    trc_train_opts opts;
    assert_int_equal(trc_train_spec_to_opts(&spec, &opts), 0);
    assert_int_equal(opts.epochs, 5);
    assert_int_equal(opts.batch_size, 32);
    assert_int_equal(opts.scheduler, TRC_SCHED_STEP);
    assert_int_equal(opts.seed, 7);
    assert_string_equal(opts.model_size, "small");
    assert_int_equal(trc_train_opts_validate(&opts), 0);

    /* options beyond the original twelve fields travel too; gamma 0 is the automatic value */
    assert_int_equal(parse("{\"K\": 2, \"n\": 1, \"gamma\": 0, \"bound\": 3.5, "
                           "\"weight_decay\": 0}",
                           &spec, &err),
                     0);
    assert_int_equal(spec.train.K, 2);
    assert_int_equal(spec.train.n, 1);
    assert_true(spec.train.bound == 3.5 && spec.train.gamma == 0 && spec.train.weight_decay == 0);
}

static void test_bounds_name_the_field(void **state) {
    (void)state;
    expect_error("{\"num_samples\": 0}", "num_samples", "between 1 and 1000000");
    /* every option of core's training table is a wire field, bounded by its table line */
    expect_error("{\"K\": 0}", "K", "K must be between 1 and 64, got 0");
    expect_error("{\"n\": 65}", "n", "between 1 and 64");
    expect_error("{\"weight_decay\": -1}", "weight_decay", "[0, 1]");
    expect_error("{\"gamma\": 1.5}", "gamma", "(0, 1]");
    expect_error("{\"lr\": 0.001, \"lr_min\": 0.01}", "lr_min", "lr_min must be in [0, lr]");
    expect_error("{\"scheduler\": \"plateau\", \"gamma\": 1}", "gamma", "plateau");
    /* an option the run would ignore: named, with who reads it */
    expect_error("{\"terminal_weight\": 5}", "terminal_weight",
                 "terminal_weight applies to objective trajectory, mixed");
    expect_error("{\"scheduler\": \"step\", \"plateau_patience\": 3}", "plateau_patience",
                 "applies to scheduler plateau");
    expect_error("{\"bound\": -2}", "bound", "bound");
    expect_error("{\"K\": 2.5}", "K", "integer");
    expect_error("{\"horizon\": 3}", "horizon", "unknown field"); /* not a wire option */
    expect_error("{\"num_samples\": 1000001}", "num_samples", "between 1 and 1000000");
    expect_error("{\"num_samples\": 2.5}", "num_samples", "integer");
    expect_error("{\"epochs\": 0}", "epochs", "between");
    expect_error("{\"epochs\": 10001}", "epochs", "between");
    expect_error("{\"batch_size\": 0}", "batch_size", "between");
    expect_error("{\"batch_size\": 100, \"num_samples\": 50}", "batch_size", "between 1 and 50");
    expect_error("{\"lr\": 0}", "lr", "lr");
    expect_error("{\"lr\": -1}", "lr", "lr");
    expect_error("{\"lr\": \"fast\"}", "lr", "number");
    expect_error("{\"patience\": -1}", "patience", "between");
    expect_error("{\"val_split\": 0.6}", "val_split", "val_split");
    expect_error("{\"val_split\": 0.1, \"num_samples\": 1, \"batch_size\": 1}", "val_split",
                 "nothing to train");
    expect_error("{\"model_size\": \"huge\"}", "model_size", "(known: small, medium, large)");
    expect_error("{\"scheduler\": \"warmup\"}", "scheduler", "warmup");
    expect_error("{\"system\": \"pendulum9\"}", "system", "pendulum9");
    expect_error("{\"expert\": \"oracle\"}", "expert", "oracle");
    /* the LQR family needs a linear system */
    expect_error("{\"system\": \"van_der_pol\", \"expert\": \"lqr\"}", "expert", "cannot solve");
    expect_error("{\"seed\": -1}", "seed", "between");
    expect_error("{\"name\": \"\"}", "name", "name");
    expect_error("{\"name\": \".hidden\"}", "name", "'.'");
    expect_error("{\"name\": \"../etc/passwd\"}", "name", "name");
    expect_error("{\"name\": \"a b\"}", "name", "name");
    expect_error("{\"name\": 5}", "name", "string");
    expect_error("{\"name\": "
                 "\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
                 "name", "name");
    expect_error("{\"epochs\": 3, \"colour\": \"red\"}", "colour", "unknown field");
    expect_error("{\"epochs\": null}", "epochs", "integer");
    /* below the schedules' lr_min the job would fail only once it ran: refused up front */
    expect_error("{\"lr\": 1e-300}", "lr", "lr_min");
    expect_error("{\"lr\": 9e-7}", "lr", "lr_min");
    expect_error("{\"replace\": 1}", "replace", "replace");
}

/* "replace" defaults to false, is kept, and round-trips through JSON only when set. */
static void test_replace(void **state) {
    (void)state;
    trc_train_spec spec, back;
    proto_error err;
    json_t *in = json_loads("{\"name\": \"m\", \"replace\": true, \"lr\": 1e-6}", 0, NULL);
    assert_int_equal(trc_train_spec_parse(in, &spec, &err), 0);
    json_decref(in);
    assert_int_equal(spec.replace, 1);
    json_t *out = trc_train_spec_to_json(&spec);
    assert_true(json_is_true(json_object_get(out, "replace")));
    assert_int_equal(trc_train_spec_read(out, &back, &err), 0);
    assert_int_equal(back.replace, 1);
    json_decref(out);
    trc_train_spec_default(&spec);
    assert_int_equal(spec.replace, 0);
    out = trc_train_spec_to_json(&spec);
    assert_null(json_object_get(out, "replace"));
    json_decref(out);
}

static void test_status_names(void **state) {
    (void)state;
    trc_job_status st;
    for (int i = 0; i < TRC_JOB_NSTATUS; i++) {
        assert_int_equal(trc_job_status_parse(trc_job_status_name((trc_job_status)i), &st), 0);
        assert_int_equal(st, i);
    }
    assert_int_not_equal(trc_job_status_parse("done", &st), 0);
    assert_false(trc_job_status_terminal(TRC_JOB_QUEUED));
    assert_false(trc_job_status_terminal(TRC_JOB_RUNNING));
    assert_true(trc_job_status_terminal(TRC_JOB_SUCCEEDED));
    assert_true(trc_job_status_terminal(TRC_JOB_FAILED));
    assert_true(trc_job_status_terminal(TRC_JOB_CANCELLED));
}

static void test_job_json(void **state) {
    (void)state;
    trc_job job;
    memset(&job, 0, sizeof job);
    snprintf(job.id, sizeof job.id, "0123456789ab");
    snprintf(job.name, sizeof job.name, "m1");
    trc_train_spec_default(&job.spec);
    snprintf(job.spec.name, sizeof job.spec.name, "m1");
    job.status = TRC_JOB_RUNNING;
    job.epoch = 2;
    job.epochs = 10;
    job.fraction = 0.25;
    job.eta_seconds = -1;
    job.created_at = 1795660200; /* 2026-11-26T02:30:00Z */
    job.started_at = 1795660201;
    trc_job_epoch hist[2] = {
        {1, 0.5, NAN, 1e-3, 1.5, 1000, ""},
        {2, 0.25, 0.3, 9e-4, 1.25, 1200, "{\"train_terms\":{\"terminal\":0.2,\"state\":0.05}}"}};
    job.history = malloc(sizeof hist);
    memcpy(job.history, hist, sizeof hist);
    job.n_history = 2;
    job.live_samples_per_sec = 1500;

    json_t *j = trc_job_to_json(&job);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "job_id")), "0123456789ab");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "running");
    assert_true(json_is_false(json_object_get(j, "terminal")));
    assert_string_equal(json_string_value(json_object_get(j, "created_at")),
                        "2026-11-26T02:30:00Z");
    assert_true(json_is_null(json_object_get(j, "finished_at")));
    assert_true(json_is_null(json_object_get(j, "result")));
    assert_true(json_is_null(json_object_get(j, "error")));
    json_t *p = json_object_get(j, "progress");
    assert_int_equal(json_integer_value(json_object_get(p, "epoch")), 2);
    assert_int_equal(json_integer_value(json_object_get(p, "epochs")), 10);
    assert_true(json_real_value(json_object_get(p, "fraction")) == 0.25);
    assert_true(json_is_null(json_object_get(p, "eta_seconds")));
    json_t *h = json_object_get(j, "history");
    assert_int_equal(json_array_size(h), 2);
    assert_true(json_is_null(json_object_get(json_array_get(h, 0), "val_loss")));
    assert_null(json_object_get(json_array_get(h, 0), "train_terms"));
    json_t *tt = json_object_get(json_array_get(h, 1), "train_terms"); /* merged into the row */
    assert_true(json_real_value(json_object_get(tt, "terminal")) == 0.2);
    json_t *mt = json_object_get(j, "metrics");
    assert_true(json_real_value(json_object_get(mt, "val_loss")) == 0.3);
    assert_true(json_real_value(json_object_get(mt, "samples_per_sec")) == 1500);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "spec"), "name")),
                        "m1");
    char *text = json_dumps(j, 0);
    assert_null(strstr(text, "nan")); /* never a NaN on the wire */
    free(text);
    json_decref(j);

    job.status = TRC_JOB_SUCCEEDED;
    job.finished_at = 1795660260;
    snprintf(job.result_model, sizeof job.result_model, "m1");
    snprintf(job.result_checkpoint, sizeof job.result_checkpoint, "m1.safetensors");
    j = trc_job_to_json(&job);
    assert_true(json_is_true(json_object_get(j, "terminal")));
    json_t *r = json_object_get(j, "result");
    assert_string_equal(json_string_value(json_object_get(r, "model")), "m1");
    assert_string_equal(json_string_value(json_object_get(r, "checkpoint")), "m1.safetensors");
    assert_string_equal(json_string_value(json_object_get(j, "finished_at")),
                        "2026-11-26T02:31:00Z");
    json_decref(j);

    /* no epoch finished yet: metrics null even while a live speed is known */
    trc_job_free(&job);
    job.live_samples_per_sec = 1500;
    j = trc_job_to_json(&job);
    assert_true(json_is_null(json_object_get(j, "metrics")));
    assert_int_equal(json_array_size(json_object_get(j, "history")), 0);
    json_decref(j);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_system_defaults),
        cmocka_unit_test(test_full_spec_and_round_trip),
        cmocka_unit_test(test_bounds_name_the_field),
        cmocka_unit_test(test_replace),
        cmocka_unit_test(test_status_names),
        cmocka_unit_test(test_job_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
