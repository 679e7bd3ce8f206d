/* The training-job subsystem of trcd: a job manager (queue, a libuv loop thread dispatching
 * jobs onto libuv's worker pool, at most --max-jobs running), its SQLite store, and the routes
 * POST /v1/train, GET /v1/jobs[/{id}], POST /v1/jobs/{id}/cancel|resume, DELETE /v1/jobs/{id}.
 * Life cycle, called by main.c in this order: jobs_init, jobs_register_routes, jobs_start, ...,
 * jobs_shutdown, jobs_free. See docs/jobs.md. */
#ifndef TRCD_JOBS_H
#define TRCD_JOBS_H

#include <stddef.h>

#include "app.h"
#include "http.h"
#include "train_spec.h"

/* Opens <data-dir>/jobs.db, marks jobs found running as failed (the process died under them),
 * re-queues jobs found queued, sets a->jobs and a->jobs_metrics. */
int jobs_init(app *a);
/* POST /v1/train (+ /train), GET /v1/jobs, GET /v1/jobs/{id}, POST .../cancel, POST .../resume,
 * DELETE /v1/jobs/{id}. */
void jobs_register_routes(app *a, http_server *srv);
/* Starts the loop thread; queued jobs begin to run. */
int jobs_start(app *a);
/* Running jobs stop at their next batch with their state saved and are marked cancelled
 * ("trcd shutting down"); queued jobs stay queued for the next start. Returns within a few
 * seconds. */
void jobs_shutdown(app *a);
/* Closes the store and frees the manager. */
void jobs_free(app *a);

/* ---- the manager's operations (used by routes_jobs.c; errors carry the HTTP status) ---- */
typedef struct jobs jobs;

/* Stores a new queued job for spec (name "job-<id>" when the spec has none); 503 when the
 * queue is full (*retry_after gets seconds to wait) or trcd is shutting down, 507 when job
 * files use --max-jobs-disk or the model it would publish passes --max-models, 409 when the
 * name is a served model and the spec does not say "replace": true. */
int jobs_submit(jobs *m, const trc_train_spec *spec, trc_job *out, int *retry_after,
                proto_error *err);
/* One job with its live progress (404 for an unknown id). Free with trc_job_free. */
int jobs_get(jobs *m, const char *id, trc_job *out, proto_error *err);
/* A page of jobs newest first (status < 0: all), older than the cursor `before` (0: from the
 * newest), at most `limit`; *next gets the next page's cursor (0: none). Free with
 * jobstore_free_list. */
int jobs_list(jobs *m, int status, long long before, size_t limit, trc_job **out, size_t *n,
              long long *next, proto_error *err);
/* The per-client rate limit of POST /v1/train (--train-rate): 0, or 429 in err with the
 * seconds to wait in *retry_after. */
int jobs_admit(jobs *m, const char *client, int *retry_after, proto_error *err);
/* Cancels a queued job at once, or stops a running one at its next batch and waits briefly
 * for it; 409 when the job is already terminal. *out is the job afterwards. */
int jobs_cancel(jobs *m, const char *id, trc_job *out, proto_error *err);
/* Re-queues a failed or cancelled job to continue from its last checkpoint; 409 when it is
 * not failed/cancelled or has no saved state, 503 when the queue is full. */
int jobs_resume(jobs *m, const char *id, trc_job *out, int *retry_after, proto_error *err);
/* Deletes a terminal job's record and its files; 409 when it is queued or running. */
int jobs_delete(jobs *m, const char *id, proto_error *err);

#endif
