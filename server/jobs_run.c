/* One training job on a libuv pool thread: generate its dataset from the spec, train it with
 * trc_train into <data-dir>/jobs/<id>/ (epochs go to the store, progress to the live entry, the
 * cancel flag is checked at every batch), then publish the best checkpoint as
 * <models-dir>/<name>.safetensors in the registry. The outcome goes to jl->final_* for the loop
 * thread to record. */
#include "jobs_internal.h"
#include "jobs_run.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
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
    job_live *jl;
    int synced; /* the store's history matches trc_train's (first epoch event of this run) */
} run_ctx;

static void set_live(job_live *jl, int epoch, double fraction, double eta, double sps) {
    jobs *m = jl->mgr;
    pthread_mutex_lock(&m->mu);
    jl->epoch = epoch;
    jl->fraction = fraction < 0 ? 0 : fraction > 1 ? 1 : fraction;
    jl->eta_seconds = eta;
    jl->samples_per_sec = sps;
    pthread_mutex_unlock(&m->mu);
}

static int on_progress(void *user, const trc_progress *p) {
    run_ctx *c = user;
    job_live *jl = c->jl;
    jobs *m = jl->mgr;
    double eta = isfinite(p->eta_seconds) && p->eta_seconds >= 0 ? p->eta_seconds : -1;
    if (p->kind == TRC_PROGRESS_BATCH) {
        double within = p->batches ? (double)p->batch / (double)p->batches : 0;
        set_live(jl, p->epoch - 1, (p->epoch - 1 + within) / p->epochs, eta, p->samples_per_sec);
        return 0;
    }
    /* An epoch ended: its row goes to the store. The first event of a resumed run also writes
     * the rows before it (a kill can land between trc_train saving an epoch and reporting it)
     * and drops rows beyond it that the earlier run wrote and this one redoes. */
    int from = p->epoch - 1;
    if (!c->synced) {
        if (jobstore_trim_epochs(m->store, jl->id, p->epoch) != TRC_OK)
            log_msg("job %s: %s", jl->id, trc_errmsg());
        from = 0;
        c->synced = 1;
    }
    for (int i = from; i < p->epoch; i++) {
        const trc_epoch_stats *h = &p->history[i];
        trc_job_epoch e = {h->epoch, h->train_loss, h->val_loss,
                           h->lr,    h->seconds,    h->samples_per_sec};
        if (jobstore_put_epoch(m->store, jl->id, &e) != TRC_OK)
            log_msg("job %s: %s", jl->id, trc_errmsg()); /* training matters more than a row */
    }
    if (jobstore_set_progress(m->store, jl->id, p->epoch, p->epochs) != TRC_OK)
        log_msg("job %s: %s", jl->id, trc_errmsg());
    const trc_epoch_stats *st = &p->history[p->epoch - 1];
    set_live(jl, p->epoch, (double)p->epoch / p->epochs, eta, st->samples_per_sec);
    return 0;
}

int job_make_dataset(const trc_train_spec *spec, const atomic_int *cancel, trc_dataset *out) {
    memset(out, 0, sizeof *out);
    trc_gen_settings gs;
    int rc = trc_gen_settings_default(spec->system, &gs);
    if (rc != TRC_OK)
        return rc;
    snprintf(gs.expert, sizeof gs.expert, "%s", spec->expert);
    gs.seed = spec->seed;
    return trc_dataset_generate_chunked(&gs, (size_t)spec->num_samples, GEN_CHUNK, cancel, out);
}

/* Copies the best checkpoint to <models-dir>/<name>.safetensors (atomically) and loads it into
 * the registry under the spec's name, replacing a model of that name for new requests. */
static int publish(job_live *jl, const trc_train_result *res) {
    jobs *m = jl->mgr;
    const char *name = jl->spec.name;
    if (!res->best_path[0])
        return trc_fail(TRC_EIO, "training left no best checkpoint");
    char rel[TRC_JOB_NAME_MAX + 16], path[4200];
    snprintf(rel, sizeof rel, "%s.safetensors", name);
    int n = snprintf(path, sizeof path, "%s/%s", m->models_dir, rel);
    if (n < 0 || (size_t)n >= sizeof path)
        return trc_fail(TRC_EINVAL, "models directory path too long");
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = trc_mkdir_p(m->models_dir);
    if (rc == TRC_OK)
        rc = trc_read_file(res->best_path, &buf, &len);
    if (rc == TRC_OK)
        rc = trc_write_file_atomic(path, buf, len);
    free(buf);
    if (rc != TRC_OK)
        return trc_fail_prefix(rc, "writing %s: ", path);
    proto_error perr;
    memset(&perr, 0, sizeof perr);
    if (registry_load_file(m->app->registry, name, rel, &perr) != 0)
        return trc_fail(TRC_EFORMAT, "loading %s into the registry: %s", rel, perr.message);
    return TRC_OK;
}

static void finish(job_live *jl, trc_job_status st, const char *fmt, const char *detail) {
    jl->final_status = st;
    snprintf(jl->final_error, sizeof jl->final_error, fmt, detail);
}

void job_run(job_live *jl) {
    jobs *m = jl->mgr;
    double t0 = jobs_now();
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), TRAIN_NICE);
    log_msg("job %s (%s) %s", jl->id, jl->spec.name, jl->resume ? "resuming" : "started");

    trc_train_opts opts;
    trc_dataset ds;
    trc_train_result res;
    memset(&ds, 0, sizeof ds);
    memset(&res, 0, sizeof res);
    int rc = trc_train_spec_to_opts(&jl->spec, &opts);
    if (rc == TRC_OK)
        rc = job_dir(m, jl->id, opts.out_dir, sizeof opts.out_dir);
    if (rc == TRC_OK)
        rc = trc_mkdir_p(opts.out_dir);
    opts.resume = jl->resume;
    if (rc == TRC_OK) {
        rc = job_make_dataset(&jl->spec, &jl->cancel, &ds);
        if (rc != TRC_OK && rc != TRC_ECANCELED)
            trc_fail_prefix(rc, "generating the dataset: ");
    }
    if (rc == TRC_OK) {
        run_ctx ctx = {jl, 0};
        rc = trc_train(&ds, &opts, on_progress, &ctx, &jl->cancel, &res);
    }
    if (rc == TRC_OK) {
        /* A resumed run that had nothing left to do reports no epoch: record where it ended. */
        jobstore_set_progress(m->store, jl->id, res.epochs_run, opts.epochs);
        rc = publish(jl, &res);
        if (rc == TRC_OK) {
            jl->published = 1;
            finish(jl, TRC_JOB_SUCCEEDED, "%s", "");
            log_msg("job %s (%s) succeeded in %.1f s: %d epoch(s), best %d, published as %s",
                    jl->id, jl->spec.name, jobs_now() - t0, res.epochs_run, res.best_epoch,
                    jl->spec.name);
        } else {
            finish(jl, TRC_JOB_FAILED, "publishing the model failed: %s", trc_errmsg());
        }
    } else if (rc == TRC_ECANCELED) {
        pthread_mutex_lock(&m->mu);
        finish(jl, TRC_JOB_CANCELLED, "%s", jl->cancel_reason[0] ? jl->cancel_reason : "cancelled");
        pthread_mutex_unlock(&m->mu);
        log_msg("job %s (%s) cancelled: %s", jl->id, jl->spec.name, jl->final_error);
    } else {
        finish(jl, TRC_JOB_FAILED, "training failed: %s", trc_errmsg());
    }
    if (jl->final_status == TRC_JOB_FAILED)
        log_msg("job %s (%s) failed: %s", jl->id, jl->spec.name, jl->final_error);
    trc_model_free(&res.model);
    trc_dataset_free(&ds);
}
