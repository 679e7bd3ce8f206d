/* Training spec parsing/validation and the Job object; see train_spec.h. */
#include "train_spec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trc/expert.h"
#include "trc/error.h"
#include "trc/model.h"
#include "trc/system.h"

static const char *const status_names[TRC_JOB_NSTATUS] = {"queued", "running", "succeeded",
                                                          "failed", "cancelled"};

const char *trc_job_status_name(trc_job_status st) {
    return (unsigned)st < TRC_JOB_NSTATUS ? status_names[st] : "unknown";
}

int trc_job_status_parse(const char *name, trc_job_status *out) {
    for (int i = 0; name && i < TRC_JOB_NSTATUS; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (trc_job_status)i;
            return TRC_OK;
        }
    }
    return trc_fail(TRC_EINVAL,
                    "unknown job status '%s' (queued, running, succeeded, failed, cancelled)",
                    name ? name : "");
}

int trc_job_status_terminal(trc_job_status st) {
    return st == TRC_JOB_SUCCEEDED || st == TRC_JOB_FAILED || st == TRC_JOB_CANCELLED;
}

void trc_train_spec_default(trc_train_spec *spec) {
    memset(spec, 0, sizeof *spec);
    snprintf(spec->system, sizeof spec->system, "double_integrator");
    snprintf(spec->expert, sizeof spec->expert, "min_energy");
    spec->num_samples = 10000;
    spec->seed = 42;
    snprintf(spec->model_size, sizeof spec->model_size, "medium");
    spec->epochs = 100;
    spec->batch_size = 64;
    spec->lr = 1e-3;
    snprintf(spec->scheduler, sizeof spec->scheduler, "cosine");
    spec->patience = 20;
    spec->val_split = 0.1;
}

/* The expert must exist and solve the system (the LQR family needs a linear one): building its
 * plan with the system's defaults proves both, in microseconds. */
static int check_expert(const trc_train_spec *spec, const trc_system *sys, proto_error *err) {
    if (trc_expert_check_name(spec->expert) != TRC_OK)
        return proto_fail(err, 400, "expert", "unknown expert '%s': %s", spec->expert,
                          trc_errmsg());
    trc_expert_plan *plan = NULL;
    if (trc_expert_plan_create(spec->expert, sys, sys->dt, sys->T, sys->bound, NULL, &plan) !=
        TRC_OK)
        return proto_fail(err, 400, "expert", "expert '%s' cannot solve %s: %s", spec->expert,
                          spec->system, trc_errmsg());
    trc_expert_plan_free(plan);
    return 0;
}

int trc_train_spec_validate(const trc_train_spec *spec, proto_error *err) {
    if (spec->name[0] && proto_check_name(spec->name, "name", err) != 0)
        return -1;
    const trc_system *sys = trc_system_find(spec->system);
    if (!sys)
        return proto_fail(err, 400, "system", "unknown system '%s': %s", spec->system,
                          trc_errmsg());
    if (spec->num_samples < 1 || spec->num_samples > TRC_SPEC_MAX_SAMPLES)
        return proto_fail(err, 400, "num_samples", "num_samples must be between 1 and %ld, got %ld",
                          TRC_SPEC_MAX_SAMPLES, spec->num_samples);
    trc_model_config cfg;
    if (trc_model_config_preset(spec->model_size, 1, 1, 1, 1.0f, &cfg) != TRC_OK)
        return proto_fail(err, 400, "model_size",
                          "model_size must be small, medium or large, got '%s'", spec->model_size);
    if (spec->epochs < 1 || spec->epochs > TRC_SPEC_MAX_EPOCHS)
        return proto_fail(err, 400, "epochs", "epochs must be between 1 and %d, got %d",
                          TRC_SPEC_MAX_EPOCHS, spec->epochs);
    long max_batch =
        spec->num_samples < TRC_SPEC_MAX_BATCH ? spec->num_samples : TRC_SPEC_MAX_BATCH;
    if (spec->batch_size < 1 || spec->batch_size > max_batch)
        return proto_fail(err, 400, "batch_size",
                          "batch_size must be between 1 and %ld (min(num_samples, %d)), got %d",
                          max_batch, TRC_SPEC_MAX_BATCH, spec->batch_size);
    /* the schedulers decay towards lr_min: lr below it would fail the job only once it ran */
    trc_train_opts defaults;
    trc_train_opts_default(&defaults);
    if (!isfinite(spec->lr) || spec->lr < defaults.lr_min || spec->lr > 10)
        return proto_fail(err, 400, "lr",
                          "lr must be in [%g, 10] (at least the schedule's lr_min), got %g",
                          defaults.lr_min, spec->lr);
    trc_sched_kind kind;
    if (trc_sched_parse(spec->scheduler, &kind) != TRC_OK)
        return proto_fail(err, 400, "scheduler",
                          "unknown scheduler '%s' (cosine, step, plateau, none)", spec->scheduler);
    if (spec->patience < 0 || spec->patience > TRC_SPEC_MAX_EPOCHS)
        return proto_fail(err, 400, "patience", "patience must be between 0 and %d, got %d",
                          TRC_SPEC_MAX_EPOCHS, spec->patience);
    if (!isfinite(spec->val_split) || spec->val_split < 0 || spec->val_split > 0.5)
        return proto_fail(err, 400, "val_split", "val_split must be in [0, 0.5], got %g",
                          spec->val_split);
    /* The trainer holds out max(1, floor(n * val_split)) samples and needs one to train on. */
    if (spec->val_split > 0 && spec->num_samples < 2)
        return proto_fail(err, 400, "val_split",
                          "val_split %g of %ld sample leaves nothing to train on (use 0 or more "
                          "samples)",
                          spec->val_split, spec->num_samples);
    return check_expert(spec, sys, err);
}

static const char *const spec_keys[] = {
    "name",       "system", "expert",    "num_samples", "seed",      "model_size", "epochs",
    "batch_size", "lr",     "scheduler", "patience",    "val_split", "replace",    NULL};

/* A string field copied into dst (absent: dst keeps its default). */
static int read_string(const json_t *obj, const char *key, char *dst, size_t size,
                       proto_error *err) {
    const char *v = NULL;
    int got = proto_get_string(obj, key, &v, err);
    if (got <= 0)
        return got;
    if (strlen(v) >= size)
        return proto_fail(err, 400, key, "%s is too long (at most %zu characters)", key, size - 1);
    snprintf(dst, size, "%s", v);
    return 0;
}

int trc_train_spec_read(const json_t *obj, trc_train_spec *spec, proto_error *err) {
    trc_train_spec_default(spec);
    if (!obj)
        return 0;
    if (!json_is_object(obj))
        return proto_fail(err, 400, "", "the training spec must be a JSON object");
    if (proto_check_keys(obj, spec_keys, err) != 0)
        return -1;
    long long x;
    if (read_string(obj, "name", spec->name, sizeof spec->name, err) < 0 ||
        read_string(obj, "system", spec->system, sizeof spec->system, err) < 0 ||
        read_string(obj, "expert", spec->expert, sizeof spec->expert, err) < 0 ||
        read_string(obj, "model_size", spec->model_size, sizeof spec->model_size, err) < 0 ||
        read_string(obj, "scheduler", spec->scheduler, sizeof spec->scheduler, err) < 0)
        return -1;
    if (json_object_get(obj, "name") && proto_check_name(spec->name, "name", err) != 0)
        return -1;
    int got;
    if ((got = proto_get_int(obj, "num_samples", 1, TRC_SPEC_MAX_SAMPLES, &x, err)) < 0)
        return -1;
    if (got)
        spec->num_samples = (long)x;
    if ((got = proto_get_int(obj, "seed", 0, INT64_MAX, &x, err)) < 0)
        return -1;
    if (got)
        spec->seed = (uint64_t)x;
    if ((got = proto_get_int(obj, "epochs", 1, TRC_SPEC_MAX_EPOCHS, &x, err)) < 0)
        return -1;
    if (got)
        spec->epochs = (int)x;
    if ((got = proto_get_int(obj, "batch_size", 1, TRC_SPEC_MAX_BATCH, &x, err)) < 0)
        return -1;
    if (got)
        spec->batch_size = (int)x;
    if ((got = proto_get_int(obj, "patience", 0, TRC_SPEC_MAX_EPOCHS, &x, err)) < 0)
        return -1;
    if (got)
        spec->patience = (int)x;
    if (proto_get_number(obj, "lr", 0, 10, &spec->lr, err) < 0 ||
        proto_get_number(obj, "val_split", 0, 0.5, &spec->val_split, err) < 0 ||
        proto_get_bool(obj, "replace", &spec->replace, err) < 0)
        return -1;
    return 0;
}

int trc_train_spec_parse(const json_t *obj, trc_train_spec *spec, proto_error *err) {
    if (trc_train_spec_read(obj, spec, err) != 0)
        return -1;
    return trc_train_spec_validate(spec, err);
}

json_t *trc_train_spec_to_json(const trc_train_spec *spec) {
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    if (spec->name[0])
        bad |= json_object_set_new(o, "name", json_string(spec->name));
    bad |= json_object_set_new(o, "system", json_string(spec->system));
    bad |= json_object_set_new(o, "expert", json_string(spec->expert));
    bad |= json_object_set_new(o, "num_samples", json_integer(spec->num_samples));
    bad |= json_object_set_new(o, "seed", json_integer((json_int_t)spec->seed));
    bad |= json_object_set_new(o, "model_size", json_string(spec->model_size));
    bad |= json_object_set_new(o, "epochs", json_integer(spec->epochs));
    bad |= json_object_set_new(o, "batch_size", json_integer(spec->batch_size));
    bad |= json_object_set_new(o, "lr", json_real(spec->lr));
    bad |= json_object_set_new(o, "scheduler", json_string(spec->scheduler));
    bad |= json_object_set_new(o, "patience", json_integer(spec->patience));
    bad |= json_object_set_new(o, "val_split", json_real(spec->val_split));
    if (spec->replace)
        bad |= json_object_set_new(o, "replace", json_true());
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int trc_train_spec_to_opts(const trc_train_spec *spec, trc_train_opts *opts) {
    trc_train_opts_default(opts);
    snprintf(opts->model_size, sizeof opts->model_size, "%s", spec->model_size);
    opts->epochs = spec->epochs;
    opts->batch_size = spec->batch_size;
    opts->lr = spec->lr;
    if (trc_sched_parse(spec->scheduler, &opts->scheduler) != TRC_OK)
        return trc_fail(TRC_EINVAL, "unknown scheduler '%s'", spec->scheduler);
    opts->patience = spec->patience;
    opts->val_split = spec->val_split;
    opts->seed = spec->seed;
    return TRC_OK;
}

void trc_rfc3339(double unix_seconds, char *buf, size_t size) {
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A finite number, or null: JSON has no NaN and the wire never carries one. */
static json_t *num_or_null(double v) {
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *time_or_null(double t) {
    if (t <= 0)
        return json_null();
    char buf[32];
    trc_rfc3339(t, buf, sizeof buf);
    return json_string(buf);
}

static json_t *epoch_json(const trc_job_epoch *e) {
    return json_pack("{s:i, s:o, s:o, s:o, s:o, s:o}", "epoch", e->epoch, "train_loss",
                     num_or_null(e->train_loss), "val_loss", num_or_null(e->val_loss), "lr",
                     num_or_null(e->lr), "seconds", num_or_null(e->seconds), "samples_per_sec",
                     num_or_null(e->samples_per_sec));
}

json_t *trc_job_to_json(const trc_job *job) {
    json_t *history = json_array();
    for (size_t i = 0; history && i < job->n_history; i++) {
        if (json_array_append_new(history, epoch_json(&job->history[i])) != 0) {
            json_decref(history);
            return NULL;
        }
    }
    if (!history)
        return NULL;
    json_t *metrics = json_null(); /* until the first epoch ends */
    if (job->n_history > 0) {
        const trc_job_epoch *last = &job->history[job->n_history - 1];
        double sps =
            job->live_samples_per_sec > 0 ? job->live_samples_per_sec : last->samples_per_sec;
        metrics = json_pack("{s:o, s:o, s:o, s:o}", "train_loss", num_or_null(last->train_loss),
                            "val_loss", num_or_null(last->val_loss), "lr", num_or_null(last->lr),
                            "samples_per_sec", num_or_null(sps));
    }
    json_t *progress =
        json_pack("{s:i, s:i, s:o, s:o}", "epoch", job->epoch, "epochs", job->epochs, "fraction",
                  num_or_null(job->fraction), "eta_seconds",
                  job->eta_seconds >= 0 ? num_or_null(job->eta_seconds) : json_null());
    json_t *result = job->result_model[0] ? json_pack("{s:s, s:s}", "model", job->result_model,
                                                      "checkpoint", job->result_checkpoint)
                                          : json_null();
    json_t *spec = trc_train_spec_to_json(&job->spec);
    json_t *error = job->error[0] ? json_string(job->error) : json_null();
    /* json_pack's "o" steals each reference, also on failure, so nothing leaks either way. */
    return json_pack("{s:s, s:s, s:s, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "job_id",
                     job->id, "name", job->name, "status", trc_job_status_name(job->status),
                     "terminal", trc_job_status_terminal(job->status), "spec", spec, "progress",
                     progress, "metrics", metrics, "history", history, "created_at",
                     time_or_null(job->created_at), "started_at", time_or_null(job->started_at),
                     "finished_at", time_or_null(job->finished_at), "result", result, "error",
                     error);
}

void trc_job_free(trc_job *job) {
    if (!job)
        return;
    free(job->history);
    job->history = NULL;
    job->n_history = 0;
}
