/* The job manager's state (jobs.c; the runner, jobs_run.c, gets a job_env instead) and
 * one in-memory entry per queued or running job. Private to server/jobs*.c. */
#ifndef TRCD_JOBS_INTERNAL_H
#define TRCD_JOBS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <uv.h>

#include "jobs.h"
#include "jobstore.h"
#include "ratelimit.h"

typedef struct job_live job_live;

/* A queued or running job. The fields under "guarded" are read and written with jobs.mu held;
 * the others belong to whoever holds the entry (the manager while queued, the runner while
 * running). */
struct job_live {
    jobs *mgr;
    char id[TRC_JOB_ID_MAX];
    trc_train_spec spec;
    int resume;        /* continue from out_dir's saved state */
    atomic_int cancel; /* checked by trc_train at every batch */
    uv_work_t work;
    job_live *next;
    /* guarded */
    int running;             /* dispatched to the pool */
    char cancel_reason[128]; /* why cancel was set */
    int epoch, epochs;       /* live progress */
    double fraction, eta_seconds, samples_per_sec;
    /* the runner's outcome, recorded by the loop thread after the work ends */
    trc_job_status final_status;
    char final_error[512];
    int published; /* result = the spec's name */
};

struct jobs {
    app *app;
    jobstore *store;
    char models_dir[4096];
    char jobs_dir[4096]; /* <data-dir>/jobs: one directory per job */
    char data_dir[4096];
    int max_jobs, max_queue;
    size_t retention;  /* finished jobs kept (0: no count limit) */
    double max_age;    /* seconds a finished job is kept (0: no age limit) */
    uint64_t max_disk; /* bytes under jobs_dir before new jobs get 507 (0: no limit) */
    ratelimit rate;    /* POST /v1/train per client */

    pthread_mutex_t mu;
    pthread_cond_t changed; /* a job left the live list */
    job_live *live;         /* queued and running jobs, submission order */
    int n_queued, n_running;
    int stopping;    /* shutdown began: dispatch nothing more */
    int abandoned;   /* shutdown timed out: a runner may still use the store, never free it */
    int wake_closed; /* uv_close(wake) called: no more uv_async_send */

    uv_loop_t loop;
    uv_async_t wake; /* "look at the queue" (any thread) */
    pthread_t thread;
    int started;
};

/* <jobs_dir>/<id> into buf. */
int job_dir(const jobs *m, const char *id, char *buf, size_t size);
/* Current Unix time in seconds. */
double jobs_now(void);
/* Takes server paths out of a message for clients: paths read relative to the data or models
 * directory. */
void jobs_scrub(const jobs *m, char *msg);

#endif
