/* Training spec parsing/validation and the Job object; see train_spec.h. */
#include "train_spec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "option_json.h"
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
    trc_gen_request_default(NULL, &spec->data);
    trc_train_opts_default(&spec->train);
}

/* The wire options: the data's (generate set), then the training's (train set). */
const trc_option *trc_train_spec_option(size_t i, const trc_train_spec *spec, const void **base) {
    const trc_option_set *sets[2] = {trc_gen_option_set(), trc_train_option_set()};
    const void *bases[2] = {&spec->data, &spec->train};
    for (int k = 0; k < 2; k++) {
        for (size_t j = 0; j < sets[k]->count; j++) {
            if (!(sets[k]->options[j].where & TRC_OPT_WIRE))
                continue;
            if (i-- == 0) {
                *base = bases[k];
                return &sets[k]->options[j];
            }
        }
    }
    return NULL;
}

static const trc_option *spec_option(const trc_train_spec *spec, const char *name,
                                     const void **base) {
    const trc_option *o;
    for (size_t i = 0; (o = trc_train_spec_option(i, spec, base)) != NULL; i++)
        if (strcmp(o->name, name) == 0)
            return o;
    return NULL;
}

/* The expert must exist and solve the system (the LQR family needs a linear one): building its
 * plan with the system's defaults proves both, in microseconds. */
static int check_expert(const trc_train_spec *spec, const trc_system *sys, proto_error *err) {
    const char *expert = spec->data.settings.expert;
    trc_expert_plan *plan = NULL;
    if (trc_expert_plan_create(expert, sys, sys->dt, sys->T, sys->bound, NULL, &plan) != TRC_OK)
        return proto_fail(err, 400, "expert", "expert '%s' cannot solve %s: %s", expert,
                          spec->data.settings.system, trc_errmsg());
    trc_expert_plan_free(plan);
    return 0;
}

int trc_train_spec_validate(const trc_train_spec *spec, proto_error *err) {
    if (spec->name[0] && proto_check_name(spec->name, "name", err) != 0)
        return -1;
    /* every wire option against its table line, with the served limits */
    const trc_option *o;
    const void *base;
    for (size_t i = 0; (o = trc_train_spec_option(i, spec, &base)) != NULL; i++)
        if (proto_option_check(o, base, err) != 0)
            return -1;
    const trc_system *sys = trc_system_find(spec->data.settings.system);
    if (!sys)
        return proto_fail(err, 400, "system", "unknown system '%s': %s", spec->data.settings.system,
                          trc_errmsg());
    const long n = spec->data.num_samples;
    const trc_option *bo = spec_option(spec, "batch_size", &base);
    long max_batch = bo ? (long)trc_option_max(bo, 1) : 1;
    if (n < max_batch)
        max_batch = n;
    if (spec->train.batch_size > max_batch)
        return proto_fail(err, 400, "batch_size",
                          "batch_size must be between 1 and %ld (min(num_samples, %.0f)), got %d",
                          max_batch, bo ? trc_option_max(bo, 1) : 0, spec->train.batch_size);
    /* The trainer holds out max(1, floor(n * val_split)) samples and needs one to train on. */
    if (spec->train.val_split > 0 && n < 2)
        return proto_fail(err, 400, "val_split",
                          "val_split %g of %ld sample leaves nothing to train on (use 0 or more "
                          "samples)",
                          spec->train.val_split, n);
    /* lr below the schedule's default floor would fail the job only once it ran: name lr, the
     * field the client set (a client-set lr_min above lr is named by the rule below) */
    trc_train_opts defaults;
    trc_train_opts_default(&defaults);
    if (spec->train.scheduler == TRC_SCHED_COSINE && spec->train.lr < spec->train.lr_min &&
        spec->train.lr_min == defaults.lr_min)
        return proto_fail(err, 400, "lr", "lr must be at least lr_min (%g), got %g",
                          spec->train.lr_min, spec->train.lr);
    /* the rules that tie two training options together; their messages start with the name */
    if (trc_train_opts_validate(&spec->train) != TRC_OK) {
        char param[32] = "";
        sscanf(trc_errmsg(), "%31[a-z_]", param);
        return proto_fail(err, 400, spec_option(spec, param, &base) ? param : "", "%s",
                          trc_errmsg());
    }
    /* an objective that simulates needs the system's Jacobian */
    if (trc_objective_check(trc_train_objective(&spec->train), sys) != TRC_OK)
        return proto_fail(err, 400, "objective", "%s", trc_errmsg());
    return check_expert(spec, sys, err);
}

/* Unknown keys: anything but "name", "replace" and the wire options. */
static int check_keys(const json_t *obj, const trc_train_spec *spec, proto_error *err) {
    const char *key;
    json_t *val;
    const void *base;
    json_object_foreach((json_t *)obj, key, val) {
        if (strcmp(key, "name") != 0 && strcmp(key, "replace") != 0 &&
            !spec_option(spec, key, &base))
            return proto_fail(err, 400, key, "unknown field '%s'", key);
    }
    return 0;
}

int trc_train_spec_read(const json_t *obj, trc_train_spec *spec, proto_error *err) {
    trc_train_spec_default(spec);
    if (!obj)
        return 0;
    if (!json_is_object(obj))
        return proto_fail(err, 400, "", "the training spec must be a JSON object");
    if (check_keys(obj, spec, err) != 0)
        return -1;
    const char *name = NULL;
    int got = proto_get_string(obj, "name", &name, err);
    if (got < 0)
        return -1;
    if (got) {
        if (strlen(name) >= sizeof spec->name)
            return proto_fail(err, 400, "name", "name is too long (at most %zu characters)",
                              sizeof spec->name - 1);
        snprintf(spec->name, sizeof spec->name, "%s", name);
        if (proto_check_name(spec->name, "name", err) != 0)
            return -1;
    }
    if (proto_get_bool(obj, "replace", &spec->replace, err) < 0)
        return -1;
    /* The system first: the data's other defaults are the system's. */
    const trc_option *o;
    const void *base;
    if ((o = spec_option(spec, "system", &base)) != NULL &&
        proto_option_read(obj, o, (void *)base, err) < 0)
        return -1;
    if (trc_gen_request_default(spec->data.settings.system, &spec->data) != TRC_OK)
        return proto_fail(err, 400, "system", "unknown system '%s'", spec->data.settings.system);
    for (size_t i = 0; (o = trc_train_spec_option(i, spec, &base)) != NULL; i++)
        if (proto_option_read(obj, o, (void *)base, err) < 0)
            return -1;
    spec->data.settings.seed = spec->train.seed;
    return 0;
}

int trc_train_spec_parse(const json_t *obj, trc_train_spec *spec, proto_error *err) {
    if (trc_train_spec_read(obj, spec, err) != 0)
        return -1;
    return trc_train_spec_validate(spec, err);
}

json_t *trc_train_spec_to_json(const trc_train_spec *spec) {
    json_t *obj = json_object();
    if (!obj)
        return NULL;
    int bad = 0;
    if (spec->name[0])
        bad |= json_object_set_new(obj, "name", json_string(spec->name));
    const trc_option *o;
    const void *base;
    for (size_t i = 0; (o = trc_train_spec_option(i, spec, &base)) != NULL; i++)
        bad |= json_object_set_new(obj, o->name, proto_option_value(o, base));
    if (spec->replace) /* absent means false: older stored specs read back the same */
        bad |= json_object_set_new(obj, "replace", json_true());
    if (bad) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

int trc_train_spec_to_opts(const trc_train_spec *spec, trc_train_opts *opts) {
    *opts = spec->train;
    return trc_train_opts_validate(opts);
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
    json_t *j = json_pack("{s:i, s:o, s:o, s:o, s:o, s:o}", "epoch", e->epoch, "train_loss",
                          num_or_null(e->train_loss), "val_loss", num_or_null(e->val_loss), "lr",
                          num_or_null(e->lr), "seconds", num_or_null(e->seconds), "samples_per_sec",
                          num_or_null(e->samples_per_sec));
    json_t *terms = j && e->terms[0] ? json_loads(e->terms, 0, NULL) : NULL;
    if (json_is_object(terms))
        json_object_update(j, terms);
    json_decref(terms);
    return j;
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
