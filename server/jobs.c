/* The job manager: the in-memory queue of jobs, a libuv loop on its own thread that dispatches
 * them onto libuv's worker pool (at most --max-jobs at once) and records their outcome, and the
 * operations behind the routes (submit, get, list, cancel, resume, delete). The SQLite store is
 * the record; the live list only adds what a running job knows between epochs and its cancel
 * flag. Lock order: jobs.mu, then the store's own lock. */
#include "jobs_internal.h"
#include "jobs_run.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "trc/error.h"
#include "trc/fileio.h"
#include "trc/train.h"

#define CANCEL_WAIT_MS 5000   /* a running job stops within one batch; wait this long for it */
#define SHUTDOWN_WAIT_MS 6000 /* trcd must exit within 10 s of SIGTERM */
#define REASON_CRASH "trcd stopped while the job was running (crash or kill)"
#define REASON_SHUTDOWN "trcd shutting down"
#define REASON_REQUEST "cancelled by request"

double jobs_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int job_dir(const jobs *m, const char *id, char *buf, size_t size) {
    int n = snprintf(buf, size, "%s/%s", m->jobs_dir, id);
    return n > 0 && (size_t)n < size ? TRC_OK : trc_fail(TRC_EINVAL, "job directory too long");
}

void jobs_scrub(const jobs *m, char *msg) {
    files_scrub(msg, m->data_dir);
    files_scrub(msg, m->models_dir);
}

static void new_id(char id[TRC_JOB_ID_MAX]) {
    unsigned char r[6];
    if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        /* getrandom cannot fail for 6 bytes once the pool is up; time and address as fallback */
        unsigned long long t = (unsigned long long)(jobs_now() * 1e6) ^ (uintptr_t)id;
        memcpy(r, &t, sizeof r);
    }
    for (size_t i = 0; i < sizeof r; i++)
        snprintf(id + 2 * i, 3, "%02x", r[i]);
}

/* ---- the live list (jobs.mu held) ---- */

static job_live *live_find(jobs *m, const char *id) {
    for (job_live *jl = m->live; jl; jl = jl->next)
        if (strcmp(jl->id, id) == 0)
            return jl;
    return NULL;
}

static void live_append(jobs *m, job_live *jl) {
    job_live **p = &m->live;
    while (*p)
        p = &(*p)->next;
    jl->next = NULL;
    *p = jl;
}

static void live_remove(jobs *m, job_live *jl) {
    for (job_live **p = &m->live; *p; p = &(*p)->next) {
        if (*p == jl) {
            *p = jl->next;
            jl->next = NULL;
            return;
        }
    }
}

static job_live *live_new(jobs *m, const char *id, const trc_train_spec *spec, int resume) {
    job_live *jl = calloc(1, sizeof *jl);
    if (!jl)
        return NULL;
    jl->mgr = m;
    snprintf(jl->id, sizeof jl->id, "%s", id);
    jl->spec = *spec;
    jl->resume = resume;
    atomic_init(&jl->cancel, 0);
    jl->epochs = spec->train.epochs;
    jl->eta_seconds = -1;
    jl->work.data = jl;
    return jl;
}

/* What only the live entry knows: progress within an epoch, the ETA and the current speed. */
static void overlay(jobs *m, trc_job *job) {
    job_live *jl = live_find(m, job->id);
    if (!jl || !jl->running)
        return;
    job->epoch = jl->epoch;
    job->epochs = jl->epochs;
    job->fraction = jl->fraction;
    job->eta_seconds = jl->eta_seconds;
    job->live_samples_per_sec = jl->samples_per_sec;
}

/* Seconds a client should wait before retrying a full queue: the soonest end of a running job. */
static int retry_after_locked(jobs *m) {
    double best = -1;
    for (job_live *jl = m->live; jl; jl = jl->next)
        if (jl->running && jl->eta_seconds >= 0 && (best < 0 || jl->eta_seconds < best))
            best = jl->eta_seconds;
    if (best < 0)
        return 10;
    return best < 1 ? 1 : best > 3600 ? 3600 : (int)ceil(best);
}

/* 1 when the job's directory holds a training state trc_train can resume from (read and
 * checked by core, which owns its format); else 0 with the reason in trc_errmsg(). */
static int has_saved_state(jobs *m, const char *id) {
    char dir[4200];
    trc_train_opts saved;
    return job_dir(m, id, dir, sizeof dir) == TRC_OK &&
           trc_train_saved_settings(dir, &saved) == TRC_OK;
}

/* ---- pruning ---- */

/* Deletes a finished job's files, then its rows (m->mu held): files first, so that on a full
 * disk the space they free lets SQLite write its journal. */
static int remove_job_locked(jobs *m, const char *id) {
    char dir[4200];
    if (job_dir(m, id, dir, sizeof dir) == TRC_OK && files_remove_tree(dir) != 0)
        log_msg("job %s: cannot remove its files: %s", id, strerror(errno));
    return jobstore_delete(m->store, id);
}

/* Retention: deletes finished jobs beyond --job-retention and older than --job-max-age, with
 * their files. Runs at start-up, when a job ends, on submit and on list (no timer to stop). */
static void prune(jobs *m) {
    if (!m->retention && m->max_age <= 0)
        return;
    char(*ids)[TRC_JOB_ID_MAX] = NULL;
    size_t n = 0, done = 0;
    double before = m->max_age > 0 ? jobs_now() - m->max_age : 0;
    pthread_mutex_lock(&m->mu);
    if (jobstore_expired(m->store, m->retention ? m->retention : SIZE_MAX, before, &ids, &n) !=
        TRC_OK)
        log_msg("jobs: cannot list finished jobs to prune: %s", trc_errmsg());
    for (size_t i = 0; i < n; i++) {
        if (live_find(m, ids[i]))
            continue; /* resumed meanwhile */
        if (remove_job_locked(m, ids[i]) == TRC_OK)
            done++;
        else
            log_msg("job %s: cannot prune: %s", ids[i], trc_errmsg());
    }
    pthread_mutex_unlock(&m->mu);
    free(ids);
    if (done)
        log_msg("jobs: pruned %zu finished job(s) and their files (--job-retention %zu, "
                "--job-max-age %.0f s)",
                done, m->retention, m->max_age);
}

/* ---- the loop thread ---- */

/* The runner's live progress, into the job's entry (read by GET /v1/jobs and /metrics). */
static void live_progress(void *user, int epoch, double fraction, double eta, double sps) {
    job_live *jl = user;
    pthread_mutex_lock(&jl->mgr->mu);
    jl->epoch = epoch;
    jl->fraction = fraction;
    jl->eta_seconds = eta;
    jl->samples_per_sec = sps;
    pthread_mutex_unlock(&jl->mgr->mu);
}

/* On a pool thread: the runner gets an explicit environment (jobs_run.h), not the manager. */
static void work_cb(uv_work_t *w) {
    job_live *jl = w->data;
    jobs *m = jl->mgr;
    char dir[4200];
    job_outcome out;
    job_env env = {m->store, m->app->registry, m->models_dir, dir, live_progress, jl};
    if (job_dir(m, jl->id, dir, sizeof dir) == TRC_OK) {
        job_run(&env, jl->id, &jl->spec, jl->resume, &jl->cancel, &out);
    } else {
        out = (job_outcome){.status = TRC_JOB_FAILED};
        snprintf(out.error, sizeof out.error, "%s", trc_errmsg());
    }
    jobs_scrub(m, out.error); /* the client sees paths relative to the data/models directory */
    pthread_mutex_lock(&m->mu);
    jl->final_status = out.status;
    jl->published = out.published;
    snprintf(jl->final_error, sizeof jl->final_error, "%s",
             out.status == TRC_JOB_CANCELLED && jl->cancel_reason[0] ? jl->cancel_reason
                                                                     : out.error);
    pthread_mutex_unlock(&m->mu);
    if (out.status == TRC_JOB_CANCELLED)
        log_msg("job %s (%s) cancelled: %s", jl->id, jl->spec.name, jl->final_error);
}

static void dispatch(jobs *m);

/* Back on the loop thread: record the outcome, free the slot, start the next job. */
static void after_work_cb(uv_work_t *w, int status) {
    job_live *jl = w->data;
    jobs *m = jl->mgr;
    (void)status; /* jobs are never uv_cancel'ed: a queued job is not handed to the pool yet */
    pthread_mutex_lock(&m->mu);
    char model[TRC_JOB_NAME_MAX + 1] = "", ckpt[TRC_JOB_NAME_MAX + 16] = "";
    if (jl->published) {
        snprintf(model, sizeof model, "%s", jl->spec.name);
        snprintf(ckpt, sizeof ckpt, "%s.safetensors", jl->spec.name);
    }
    if (jobstore_finish(m->store, jl->id, jl->final_status, jobs_now(), jl->final_error, model,
                        ckpt) != TRC_OK)
        log_msg("job %s: cannot record its end: %s", jl->id, trc_errmsg());
    live_remove(m, jl);
    m->n_running--;
    pthread_cond_broadcast(&m->changed);
    pthread_mutex_unlock(&m->mu);
    free(jl);
    prune(m);
    dispatch(m);
}

/* Hands queued jobs to the pool while slots are free; closes the loop once stopping and idle. */
static void dispatch(jobs *m) {
    pthread_mutex_lock(&m->mu);
    if (m->stopping) {
        if (m->n_running == 0 && !m->wake_closed) {
            m->wake_closed = 1;
            uv_close((uv_handle_t *)&m->wake, NULL); /* the loop ends: nothing else is active */
        }
        pthread_mutex_unlock(&m->mu);
        return;
    }
    for (job_live *jl = m->live; jl && m->n_running < m->max_jobs; jl = jl->next) {
        if (jl->running)
            continue;
        if (jobstore_mark_running(m->store, jl->id, jobs_now()) != TRC_OK) {
            log_msg("job %s: cannot mark it running: %s", jl->id, trc_errmsg());
            continue;
        }
        jl->running = 1;
        m->n_queued--;
        m->n_running++;
        int rc = uv_queue_work(&m->loop, &jl->work, work_cb, after_work_cb);
        if (rc != 0) {
            /* Only a programming error makes this fail; record it rather than lose the job. */
            jl->final_status = TRC_JOB_FAILED;
            snprintf(jl->final_error, sizeof jl->final_error, "cannot start the job: %s",
                     uv_strerror(rc));
            jobstore_finish(m->store, jl->id, TRC_JOB_FAILED, jobs_now(), jl->final_error, NULL,
                            NULL);
            live_remove(m, jl);
            m->n_running--;
            free(jl);
            break;
        }
    }
    pthread_mutex_unlock(&m->mu);
}

static void on_wake(uv_async_t *h) {
    dispatch(h->data);
}

static void *loop_main(void *arg) {
    jobs *m = arg;
    uv_run(&m->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---- life cycle ---- */

static void metrics_hook(app *a, metrics_text *out);

int jobs_init(app *a) {
    jobs *m = calloc(1, sizeof *m);
    if (!m) {
        log_msg("jobs: out of memory");
        return -1;
    }
    m->app = a;
    m->max_jobs = a->cfg.max_jobs > 0 ? a->cfg.max_jobs : 1;
    m->max_queue = a->cfg.max_queue >= 0 ? a->cfg.max_queue : 16;
    m->retention = a->cfg.job_retention > 0 ? (size_t)a->cfg.job_retention : 0;
    m->max_age = a->cfg.job_max_age > 0 ? a->cfg.job_max_age : 0;
    m->max_disk = a->cfg.max_jobs_disk;
    ratelimit_init(&m->rate, a->cfg.train_rate);
    snprintf(m->data_dir, sizeof m->data_dir, "%s", a->cfg.data_dir);
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->changed, NULL);
    snprintf(m->models_dir, sizeof m->models_dir, "%s", a->cfg.models_dir);
    char db[4200];
    snprintf(m->jobs_dir, sizeof m->jobs_dir, "%s/jobs", a->cfg.data_dir);
    snprintf(db, sizeof db, "%s/jobs.db", a->cfg.data_dir);
    int n_failed = 0;
    trc_job *queued = NULL;
    size_t n_queued = 0;
    if (trc_mkdir_p(m->jobs_dir) != TRC_OK || jobstore_open(db, &m->store) != TRC_OK ||
        jobstore_recover(m->store, jobs_now(), REASON_CRASH, &n_failed) != TRC_OK ||
        jobstore_list(m->store, TRC_JOB_QUEUED, &queued, &n_queued) != TRC_OK) {
        log_msg("jobs: %s", trc_errmsg());
        jobstore_close(m->store);
        ratelimit_free(&m->rate);
        free(m);
        return -1;
    }
    int stale = files_remove_stale_tmp(m->jobs_dir);
    if (stale > 0)
        log_msg("jobs: removed %d stale temporary file(s) left by an interrupted write", stale);
    if (n_failed > 0)
        log_msg("jobs: %d job(s) were running when trcd stopped; marked failed (resumable)",
                n_failed);
    /* The list is newest first: re-queue oldest first, beyond --max-queue if need be, since
     * these were accepted already. */
    for (size_t i = n_queued; i-- > 0;) {
        job_live *jl = live_new(m, queued[i].id, &queued[i].spec, 0);
        if (!jl)
            break;
        jl->resume = has_saved_state(m, jl->id); /* queued by resume: continue its run */
        live_append(m, jl);
        m->n_queued++;
    }
    if (n_queued > 0)
        log_msg("jobs: %zu queued job(s) re-queued", n_queued);
    jobstore_free_list(queued, n_queued);
    prune(m);
    if (uv_loop_init(&m->loop) != 0 || uv_async_init(&m->loop, &m->wake, on_wake) != 0) {
        log_msg("jobs: cannot set up the libuv loop");
        jobstore_close(m->store);
        ratelimit_free(&m->rate);
        free(m);
        return -1;
    }
    m->wake.data = m;
    /* libuv's pool serves only training jobs in trcd: size it to --max-jobs unless the
     * environment says otherwise. libuv reads it at the pool's first use (jobs_start); set here
     * because main.c calls jobs_init before it starts any other thread (setenv is not
     * thread-safe). */
    char n[16];
    snprintf(n, sizeof n, "%d", m->max_jobs);
    setenv("UV_THREADPOOL_SIZE", n, 0);
    a->jobs = m;
    a->jobs_metrics = metrics_hook;
    return 0;
}

int jobs_start(app *a) {
    jobs *m = a->jobs;
    if (!m || m->started)
        return -1;
    if (pthread_create(&m->thread, NULL, loop_main, m) != 0) {
        log_msg("jobs: cannot start the loop thread");
        return -1;
    }
    m->started = 1;
    uv_async_send(&m->wake);
    return 0;
}

void jobs_shutdown(app *a) {
    jobs *m = a->jobs;
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->stopping = 1;
    int running = 0;
    for (job_live *jl = m->live; jl; jl = jl->next) {
        if (jl->running) {
            snprintf(jl->cancel_reason, sizeof jl->cancel_reason, "%s", REASON_SHUTDOWN);
            atomic_store(&jl->cancel, 1);
            running++;
        }
    }
    if (running)
        log_msg("jobs: stopping %d running job(s)", running);
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += SHUTDOWN_WAIT_MS / 1000;
    while (m->n_running > 0 && pthread_cond_timedwait(&m->changed, &m->mu, &until) != ETIMEDOUT) {
    }
    if (m->n_running > 0) {
        /* A job stuck outside a batch (e.g. generating a huge dataset): record the shutdown
         * now and leave its thread alone; the process is about to exit. */
        for (job_live *jl = m->live; jl; jl = jl->next)
            if (jl->running)
                jobstore_finish(m->store, jl->id, TRC_JOB_CANCELLED, jobs_now(),
                                REASON_SHUTDOWN " (did not stop in time)", NULL, NULL);
        m->abandoned = 1;
        log_msg("jobs: %d job(s) did not stop in time", m->n_running);
        pthread_mutex_unlock(&m->mu);
        return;
    }
    if (m->started && !m->wake_closed)
        uv_async_send(&m->wake); /* dispatch sees stopping and closes the handle */
    pthread_mutex_unlock(&m->mu);
    if (m->started) {
        pthread_join(m->thread, NULL);
        m->started = 0;
    }
}

void jobs_free(app *a) {
    jobs *m = a->jobs;
    if (!m)
        return;
    a->jobs_metrics = NULL;
    if (m->started)
        jobs_shutdown(a);
    if (m->abandoned)
        return; /* a runner may still be using the store: the process is exiting anyway */
    if (!m->wake_closed) {
        m->wake_closed = 1;
        uv_close((uv_handle_t *)&m->wake, NULL);
        uv_run(&m->loop, UV_RUN_NOWAIT);
    }
    uv_loop_close(&m->loop);
    while (m->live) {
        job_live *jl = m->live;
        m->live = jl->next;
        free(jl);
    }
    jobstore_close(m->store);
    ratelimit_free(&m->rate);
    pthread_cond_destroy(&m->changed);
    pthread_mutex_destroy(&m->mu);
    free(m);
    a->jobs = NULL;
}

/* ---- operations ---- */

static int store_error(proto_error *err) {
    int rc = proto_fail(err, 500, "", "job store: %s", trc_errmsg());
    log_msg("jobs: %s", trc_errmsg());
    return rc;
}

/* The reply for a jobstore_get that failed with rc: 404 for an unknown job, else 500. */
static int get_failed(int rc, const char *id, proto_error *err) {
    return rc == TRC_ENOTFOUND ? proto_fail(err, 404, "", "job '%s' not found", id)
                               : store_error(err);
}

/* Locks m->mu and reads the job's plain fields (status, epoch, spec, name) into job. On failure
 * the lock is released again and the reply is in err. */
static int lock_and_get(jobs *m, const char *id, trc_job *job, proto_error *err) {
    pthread_mutex_lock(&m->mu);
    int rc = jobstore_get(m->store, id, job);
    if (rc != TRC_OK) {
        pthread_mutex_unlock(&m->mu);
        return get_failed(rc, id, err);
    }
    trc_job_free(job); /* only the plain fields are used */
    return 0;
}

static int refuse_draining(jobs *m, proto_error *err) {
    if (m->stopping || app_draining(m->app))
        return proto_fail(err, 503, "", "trcd is shutting down; no new training jobs");
    return 0;
}

int jobs_admit(jobs *m, const char *client, int *retry_after, proto_error *err) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int wait = ratelimit_take(&m->rate, client, (double)t.tv_sec + t.tv_nsec * 1e-9);
    *retry_after = wait;
    if (wait > 0)
        return proto_fail(err, 429, "",
                          "too many training requests from %s (--train-rate %.0f a minute); "
                          "retry in %d s",
                          client, m->rate.burst, wait);
    return 0;
}

/* 1 when a queued or running job other than `except` will publish `name` (m->mu held). */
static int name_in_use_locked(jobs *m, const char *name, const char *except) {
    for (job_live *jl = m->live; jl; jl = jl->next)
        if (strcmp(jl->spec.name, name) == 0 && (!except || strcmp(jl->id, except) != 0))
            return 1;
    return 0;
}

/* What a new job may not exceed: the disk of job files, the number of loaded models (the job
 * publishes one), and a served model of the same name (unless the spec says replace). */
/* Below this much free space on the data directory's disk a new job could not even write its
 * first checkpoint: refuse it clearly rather than fail it later. */
#define MIN_FREE_DISK (4u << 20)

static int check_disk(jobs *m, proto_error *err) {
    struct statvfs vfs;
    if (statvfs(m->data_dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < MIN_FREE_DISK)
        return proto_fail(err, 507, "",
                          "the data directory's disk is full (%.1f MB free): delete finished jobs "
                          "(DELETE /v1/jobs/{id}) or free space first",
                          (double)vfs.f_bavail * vfs.f_frsize / 1048576.0);
    if (!m->max_disk)
        return 0;
    uint64_t used = files_disk_usage(m->jobs_dir);
    if (used >= m->max_disk)
        return proto_fail(err, 507, "",
                          "job files use %.1f MB of disk, the limit (--max-jobs-disk) is %.1f "
                          "MB: delete finished jobs (DELETE /v1/jobs/{id}) first",
                          used / 1048576.0, m->max_disk / 1048576.0);
    return 0;
}

static int check_limits(jobs *m, const trc_train_spec *spec, proto_error *err) {
    if (check_disk(m, err) != 0)
        return -1;
    if (!spec->name[0])
        return registry_check_room(m->app->registry, "", err);
    model_snapshot *snap = registry_get(m->app->registry, spec->name);
    snapshot_release(snap);
    if (snap && !spec->replace)
        return proto_fail(err, 409, "name",
                          "a model named '%s' is already served; set \"replace\": true to "
                          "replace it with this job's result, or pick another name",
                          spec->name);
    return registry_check_room(m->app->registry, spec->name, err);
}

int jobs_submit(jobs *m, const trc_train_spec *spec, trc_job *out, int *retry_after,
                proto_error *err) {
    memset(out, 0, sizeof *out);
    *retry_after = 0;
    trc_job job;
    memset(&job, 0, sizeof job);
    job.spec = *spec;
    job.status = TRC_JOB_QUEUED;
    job.epochs = spec->train.epochs;
    job.eta_seconds = -1;
    prune(m); /* retention first: it may free the disk the check below needs */
    if (check_limits(m, spec, err) != 0)
        return -1;
    pthread_mutex_lock(&m->mu);
    if (refuse_draining(m, err) != 0)
        goto refused;
    if (spec->name[0] && name_in_use_locked(m, spec->name, NULL)) {
        proto_fail(err, 409, "name",
                   "a job named '%s' is already queued or running; wait for it or pick another "
                   "name",
                   spec->name);
        goto refused;
    }
    if (m->n_queued >= m->max_queue) {
        *retry_after = retry_after_locked(m);
        proto_fail(err, 503, "", "the job queue is full (%d queued); retry later", m->n_queued);
        goto refused;
    }
    int rc = TRC_EINVAL;
    for (int attempt = 0; attempt < 4 && rc == TRC_EINVAL; attempt++) {
        new_id(job.id);
        if (!spec->name[0])
            snprintf(job.spec.name, sizeof job.spec.name, "job-%s", job.id);
        snprintf(job.name, sizeof job.name, "%s", job.spec.name);
        job.created_at = jobs_now();
        rc = jobstore_insert(m->store, &job); /* EINVAL: the id exists, draw another */
    }
    if (rc != TRC_OK) {
        store_error(err);
        goto refused;
    }
    job_live *jl = live_new(m, job.id, &job.spec, 0);
    if (!jl) {
        jobstore_finish(m->store, job.id, TRC_JOB_FAILED, jobs_now(), "out of memory", NULL, NULL);
        proto_fail(err, 500, "", "out of memory");
        goto refused;
    }
    live_append(m, jl);
    m->n_queued++;
    uv_async_send(&m->wake); /* under the lock: the handle stays open while not stopping */
    pthread_mutex_unlock(&m->mu);
    log_msg("job %s (%s) queued", job.id, job.name);
    *out = job;
    return 0;
refused:
    pthread_mutex_unlock(&m->mu);
    return -1;
}

int jobs_get(jobs *m, const char *id, trc_job *out, proto_error *err) {
    int rc = jobstore_get(m->store, id, out);
    if (rc != TRC_OK)
        return get_failed(rc, id, err);
    pthread_mutex_lock(&m->mu);
    overlay(m, out);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

int jobs_list(jobs *m, int status, long long before, size_t limit, trc_job **out, size_t *n,
              long long *next, proto_error *err) {
    prune(m);
    if (jobstore_list_page(m->store, status, before, limit, out, n, next) != TRC_OK)
        return store_error(err);
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < *n; i++)
        overlay(m, &(*out)[i]);
    pthread_mutex_unlock(&m->mu);
    return 0;
}

int jobs_cancel(jobs *m, const char *id, trc_job *out, proto_error *err) {
    pthread_mutex_lock(&m->mu);
    job_live *jl = live_find(m, id);
    if (!jl) {
        pthread_mutex_unlock(&m->mu);
        int rc = jobs_get(m, id, out, err);
        if (rc != 0)
            return rc;
        trc_job_status st = out->status;
        trc_job_free(out);
        return proto_fail(err, 409, "", "job '%s' is already %s", id, trc_job_status_name(st));
    }
    if (!jl->running) {
        /* Still queued: nothing to stop, it just never starts. */
        live_remove(m, jl);
        m->n_queued--;
        int rc = jobstore_finish(m->store, id, TRC_JOB_CANCELLED, jobs_now(), REASON_REQUEST, NULL,
                                 NULL);
        pthread_mutex_unlock(&m->mu);
        free(jl);
        if (rc != TRC_OK)
            return store_error(err);
        log_msg("job %s cancelled while queued", id);
        return jobs_get(m, id, out, err);
    }
    if (!atomic_load(&jl->cancel))
        snprintf(jl->cancel_reason, sizeof jl->cancel_reason, "%s", REASON_REQUEST);
    atomic_store(&jl->cancel, 1);
    log_msg("job %s: cancel requested", id);
    /* trc_train checks the flag at every batch: wait for the job to leave the live list. */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += CANCEL_WAIT_MS / 1000;
    while (live_find(m, id) && pthread_cond_timedwait(&m->changed, &m->mu, &until) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&m->mu);
    return jobs_get(m, id, out, err);
}

int jobs_resume(jobs *m, const char *id, trc_job *out, int *retry_after, proto_error *err) {
    *retry_after = 0;
    trc_job job;
    if (check_disk(m, err) != 0)
        return -1;
    int rc = lock_and_get(m, id, &job, err);
    if (rc != 0)
        return rc;
    if (refuse_draining(m, err) != 0)
        goto refused;
    if (live_find(m, id) || (job.status != TRC_JOB_FAILED && job.status != TRC_JOB_CANCELLED)) {
        proto_fail(err, 409, "", "job '%s' is %s%s; only failed or cancelled jobs can be resumed",
                   id, trc_job_status_name(job.status),
                   live_find(m, id) ? " (still stopping)" : "");
        goto refused;
    }
    if (name_in_use_locked(m, job.spec.name, id)) {
        proto_fail(err, 409, "", "another job named '%s' is queued or running", job.spec.name);
        goto refused;
    }
    if (!has_saved_state(m, id)) {
        proto_fail(err, 409, "",
                   "job '%s' has no saved training state to resume from (it stopped before its "
                   "first batch)",
                   id); /* core's reason names server paths: not for the client */
        goto refused;
    }
    if (m->n_queued >= m->max_queue) {
        *retry_after = retry_after_locked(m);
        proto_fail(err, 503, "", "the job queue is full (%d queued); retry later", m->n_queued);
        goto refused;
    }
    job_live *jl = live_new(m, id, &job.spec, 1);
    if (!jl) {
        proto_fail(err, 500, "", "out of memory");
        goto refused;
    }
    if (jobstore_mark_queued(m->store, id) != TRC_OK) {
        free(jl);
        store_error(err);
        goto refused;
    }
    jl->epoch = job.epoch;
    live_append(m, jl);
    m->n_queued++;
    uv_async_send(&m->wake); /* under the lock: the handle stays open while not stopping */
    pthread_mutex_unlock(&m->mu);
    log_msg("job %s (%s) re-queued to resume", id, job.name);
    return jobs_get(m, id, out, err);
refused:
    pthread_mutex_unlock(&m->mu);
    return -1;
}

int jobs_delete(jobs *m, const char *id, proto_error *err) {
    trc_job job;
    int rc = lock_and_get(m, id, &job, err);
    if (rc != 0)
        return rc;
    if (live_find(m, id) || !trc_job_status_terminal(job.status)) {
        pthread_mutex_unlock(&m->mu);
        return proto_fail(err, 409, "", "job '%s' is %s; cancel it before deleting it", id,
                          trc_job_status_name(job.status));
    }
    rc = remove_job_locked(m, id);
    pthread_mutex_unlock(&m->mu);
    if (rc != TRC_OK)
        return store_error(err);
    log_msg("job %s deleted", id);
    return 0;
}

/* ---- /metrics ---- */

static void metrics_hook(app *a, metrics_text *out) {
    jobs *m = a->jobs;
    if (!m)
        return;
    long counts[TRC_JOB_NSTATUS];
    if (jobstore_count(m->store, counts) != TRC_OK)
        return;
    metrics_printf(out, "# HELP trcd_jobs Training jobs by state.\n# TYPE trcd_jobs gauge\n");
    for (int i = 0; i < TRC_JOB_NSTATUS; i++)
        metrics_printf(out, "trcd_jobs{state=\"%s\"} %ld\n", trc_job_status_name((trc_job_status)i),
                       counts[i]);
    metrics_printf(out, "# HELP trcd_job_samples_per_second Training samples/s of a running "
                        "job.\n# TYPE trcd_job_samples_per_second gauge\n");
    double total = 0;
    pthread_mutex_lock(&m->mu);
    for (job_live *jl = m->live; jl; jl = jl->next) {
        if (!jl->running)
            continue;
        /* ids are hex and names [A-Za-z0-9_.-]: nothing to escape in the labels */
        metrics_printf(out, "trcd_job_samples_per_second{job_id=\"%s\",name=\"%s\"} %.6g\n", jl->id,
                       jl->spec.name, jl->samples_per_sec);
        total += jl->samples_per_sec;
    }
    pthread_mutex_unlock(&m->mu);
    metrics_printf(out,
                   "# HELP trcd_training_samples_per_second Training samples/s of all "
                   "running jobs.\n# TYPE trcd_training_samples_per_second gauge\n"
                   "trcd_training_samples_per_second %.6g\n",
                   total);
}
