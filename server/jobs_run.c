/* One training job on a libuv pool thread (jobs_run.h): generate its dataset from the spec,
 * train it with trc_train into its directory (epochs go to the store, live progress to the
 * environment's callback, the cancel flag is checked at every batch), then publish the best
 * checkpoint as <models-dir>/<name>.safetensors in the registry. Everything it touches comes
 * from its job_env; the outcome goes back in a job_outcome. */
#include "jobs_run.h"

#include <jansson.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "registry.h"
#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/fileio.h"
#include "trc/train.h"

/* Samples generated per call: between chunks the cancel flag is checked, so even a job of a
 * million samples stops (or lets trcd shut down) within a fraction of a second. */
#define GEN_CHUNK 16384
/* Training threads yield to request threads: nice +10 on this thread only (Linux schedules
 * threads individually); with OpenBLAS at one thread per call its work runs here too. */
#define TRAIN_NICE 10

typedef struct run_ctx {
    const job_env *env;
    const char *id;
    int synced; /* the store's history matches trc_train's (first epoch event of this run) */
} run_ctx;

static double clamp01(double f) {
    return f < 0 ? 0 : f > 1 ? 1 : f;
}

static int on_progress(void *user, const trc_progress *p) {
    run_ctx *c = user;
    const job_env *env = c->env;
    double eta = isfinite(p->eta_seconds) && p->eta_seconds >= 0 ? p->eta_seconds : -1;
    if (p->kind == TRC_PROGRESS_BATCH) {
        double within = p->batches ? (double)p->batch / (double)p->batches : 0;
        env->progress(env->user, p->epoch - 1, clamp01((p->epoch - 1 + within) / p->epochs), eta,
                      p->samples_per_sec);
        return 0;
    }
    /* An epoch ended: its row goes to the store. The first event of a resumed run also writes
     * the rows before it (a kill can land between trc_train saving an epoch and reporting it)
     * and drops rows beyond it that the earlier run wrote and this one redoes. */
    int from = p->epoch - 1;
    if (!c->synced) {
        if (jobstore_trim_epochs(env->store, c->id, p->epoch) != TRC_OK)
            log_msg("job %s: %s", c->id, trc_errmsg());
        from = 0;
        c->synced = 1;
    }
    for (int i = from; i < p->epoch; i++) {
        const trc_epoch_stats *h = &p->history[i];
        trc_job_epoch e = {h->epoch,   h->train_loss,      h->val_loss, h->lr,
                           h->seconds, h->samples_per_sec, ""};
        if (h->nterms > 0 && p->term_names) { /* each term of the objective's loss */
            json_t *tt = json_object(), *vt = json_object();
            for (int k = 0; k < h->nterms; k++) {
                json_object_set_new(tt, p->term_names[k], json_real(h->train_terms[k]));
                json_object_set_new(vt, p->term_names[k],
                                    isfinite(h->val_terms[k]) ? json_real(h->val_terms[k])
                                                              : json_null());
            }
            json_t *j = json_pack("{s:o, s:o}", "train_terms", tt, "val_terms", vt);
            char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
            if (text && strlen(text) < sizeof e.terms)
                memcpy(e.terms, text, strlen(text) + 1);
            free(text);
            json_decref(j);
        }
        if (jobstore_put_epoch(env->store, c->id, &e) != TRC_OK)
            log_msg("job %s: %s", c->id, trc_errmsg()); /* training matters more than a row */
    }
    if (jobstore_set_progress(env->store, c->id, p->epoch, p->epochs) != TRC_OK)
        log_msg("job %s: %s", c->id, trc_errmsg());
    const trc_epoch_stats *st = &p->history[p->epoch - 1];
    env->progress(env->user, p->epoch, clamp01((double)p->epoch / p->epochs), eta,
                  st->samples_per_sec);
    return 0;
}

int job_make_dataset(const trc_train_spec *spec, const atomic_int *cancel, trc_dataset *out) {
    memset(out, 0, sizeof *out);
    trc_gen_settings gs = spec->data.settings;
    gs.seed = spec->train.seed;
    return trc_dataset_generate_chunked(&gs, (size_t)spec->data.num_samples, GEN_CHUNK, cancel,
                                        out);
}

/* Copies the best checkpoint to <models-dir>/<name>.safetensors (atomically) and loads it into
 * the registry under the spec's name, replacing a model of that name for new requests. */
static int publish(const job_env *env, const char *name, int replace, const trc_train_result *res) {
    if (!res->best_path[0])
        return trc_fail(TRC_EIO, "training left no best checkpoint");
    /* a model of this name may have been loaded since the job was submitted */
    model_snapshot *have = registry_get(env->registry, name);
    snapshot_release(have);
    if (have && !replace)
        return trc_fail(TRC_EINVAL,
                        "a model named '%s' is served (loaded after this job was submitted); "
                        "resume or resubmit with \"replace\": true to replace it",
                        name);
    char rel[TRC_JOB_NAME_MAX + 16], path[4200];
    snprintf(rel, sizeof rel, "%s.safetensors", name);
    int n = snprintf(path, sizeof path, "%s/%s", env->models_dir, rel);
    if (n < 0 || (size_t)n >= sizeof path)
        return trc_fail(TRC_EINVAL, "models directory path too long");
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = trc_mkdir_p(env->models_dir);
    if (rc == TRC_OK)
        rc = trc_read_file(res->best_path, &buf, &len);
    if (rc == TRC_OK)
        rc = trc_write_file_atomic(path, buf, len);
    free(buf);
    if (rc != TRC_OK)
        return trc_fail_prefix(rc, "writing %s: ", path);
    proto_error perr;
    memset(&perr, 0, sizeof perr);
    if (registry_load_file(env->registry, name, rel, &perr) != 0)
        return trc_fail(TRC_EFORMAT, "loading %s into the registry: %s", rel, perr.message);
    return TRC_OK;
}

static void finish(job_outcome *out, trc_job_status st, const char *fmt, const char *detail) {
    out->status = st;
    snprintf(out->error, sizeof out->error, fmt, detail);
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void job_run(const job_env *env, const char *id, const trc_train_spec *spec, int resume,
             const atomic_int *cancel, job_outcome *out) {
    memset(out, 0, sizeof *out);
    double t0 = now_seconds();
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), TRAIN_NICE);
    log_msg("job %s (%s) %s", id, spec->name, resume ? "resuming" : "started");

    trc_train_opts opts;
    trc_dataset ds;
    trc_train_result res;
    memset(&ds, 0, sizeof ds);
    memset(&res, 0, sizeof res);
    int rc = trc_train_spec_to_opts(spec, &opts);
    if (rc == TRC_OK &&
        snprintf(opts.out_dir, sizeof opts.out_dir, "%s", env->job_dir) >= (int)sizeof opts.out_dir)
        rc = trc_fail(TRC_EINVAL, "job directory path too long");
    if (rc == TRC_OK)
        rc = trc_mkdir_p(opts.out_dir);
    opts.resume = resume;
    if (rc == TRC_OK) {
        rc = job_make_dataset(spec, cancel, &ds);
        if (rc != TRC_OK && rc != TRC_ECANCELED)
            trc_fail_prefix(rc, "generating the dataset: ");
    }
    if (rc == TRC_OK) {
        run_ctx ctx = {env, id, 0};
        rc = trc_train(&ds, &opts, on_progress, &ctx, cancel, &res);
    }
    if (rc == TRC_OK) {
        /* A resumed run that had nothing left to do reports no epoch: record where it ended. */
        jobstore_set_progress(env->store, id, res.epochs_run, opts.epochs);
        rc = publish(env, spec->name, spec->replace, &res);
        if (rc == TRC_OK) {
            out->published = 1;
            finish(out, TRC_JOB_SUCCEEDED, "%s", "");
            log_msg("job %s (%s) succeeded in %.1f s: %d epoch(s), best %d, published as %s", id,
                    spec->name, now_seconds() - t0, res.epochs_run, res.best_epoch, spec->name);
        } else {
            finish(out, TRC_JOB_FAILED, "publishing the model failed: %s", trc_errmsg());
        }
    } else if (rc == TRC_ECANCELED) {
        finish(out, TRC_JOB_CANCELLED, "%s", "cancelled"); /* the manager knows why */
    } else {
        finish(out, TRC_JOB_FAILED, "training failed: %s", trc_errmsg());
    }
    if (out->status == TRC_JOB_FAILED)
        log_msg("job %s (%s) failed: %s", id, spec->name, out->error);
    trc_model_free(&res.model);
    trc_dataset_free(&ds);
}
