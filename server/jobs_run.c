/* One training job on a libuv pool thread: generate its dataset from the spec, train it with
 * trc_train into <data-dir>/jobs/<id>/ (epochs go to the store, progress to the live entry, the
 * cancel flag is checked at every batch), then publish the best checkpoint as
 * <models-dir>/<name>.safetensors in the registry. The outcome goes to jl->final_* for the loop
 * thread to record. */
#include "jobs_internal.h"

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

/* The spec's dataset, generated in chunks (chunk k seeded from the spec's seed and k), so the
 * same spec always gives the same data: a resumed run must see what the first run saw. */
static int make_dataset(const trc_train_spec *spec, const atomic_int *cancel, trc_dataset *out) {
    memset(out, 0, sizeof *out);
    trc_gen_settings gs;
    int rc = trc_gen_settings_default(spec->system, &gs);
    if (rc != TRC_OK)
        return rc;
    snprintf(gs.expert, sizeof gs.expert, "%s", spec->expert);
    gs.seed = spec->seed;
    size_t n = (size_t)spec->num_samples;
    if (n <= GEN_CHUNK)
        return trc_dataset_generate(&gs, n, out);
    for (size_t at = 0, k = 0; at < n; at += GEN_CHUNK, k++) {
        if (atomic_load(cancel))
            rc = trc_fail(TRC_ECANCELED, "cancelled while generating the dataset");
        trc_dataset part;
        memset(&part, 0, sizeof part);
        size_t take = n - at < GEN_CHUNK ? n - at : GEN_CHUNK;
        trc_gen_settings cs = gs;
        cs.seed = gs.seed + 0x9E3779B97F4A7C15ULL * k;
        if (rc == TRC_OK)
            rc = trc_dataset_generate(&cs, take, &part);
        if (rc == TRC_OK && k == 0)
            rc = trc_dataset_alloc(out, n, part.s, part.m, part.T);
        if (rc != TRC_OK) {
            trc_dataset_free(&part);
            trc_dataset_free(out);
            return rc;
        }
        size_t S = (size_t)part.s, U = (size_t)part.T * part.m, X = (size_t)(part.T + 1) * S;
        memcpy(out->initial_states + at * S, part.initial_states, take * S * sizeof(float));
        memcpy(out->target_states + at * S, part.target_states, take * S * sizeof(float));
        memcpy(out->control_sequences + at * U, part.control_sequences, take * U * sizeof(float));
        if (out->state_trajectories && part.state_trajectories)
            memcpy(out->state_trajectories + at * X, part.state_trajectories,
                   take * X * sizeof(float));
        if (out->costs && part.costs)
            memcpy(out->costs + at, part.costs, take * sizeof(float));
        if (k == 0) {
            out->has_settings = part.has_settings;
            out->settings = part.settings;
            out->settings.seed = spec->seed;
            /* the optional arrays are kept only if the generator gives them */
            if (!part.state_trajectories) {
                free(out->state_trajectories);
                out->state_trajectories = NULL;
            }
            if (!part.costs) {
                free(out->costs);
                out->costs = NULL;
            }
        }
        trc_dataset_free(&part);
    }
    return TRC_OK;
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
        rc = make_dataset(&jl->spec, &jl->cancel, &ds);
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
