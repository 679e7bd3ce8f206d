/* The durable record of training jobs: one SQLite database (<data-dir>/jobs.db, WAL mode) with a
 * jobs table and an epochs table (per-epoch history). Every call is serialized by one mutex, so
 * the store may be shared by request threads, training workers and the job loop. */
#ifndef TRC_SERVER_JOBSTORE_H
#define TRC_SERVER_JOBSTORE_H

#include <stddef.h>

#include "train_spec.h"

typedef struct jobstore jobstore;

/* Opens (creating if needed) the database at path and prepares every statement. */
int jobstore_open(const char *path, jobstore **out);
void jobstore_close(jobstore *js);

/* Inserts a new job (id, name, status, spec, created_at, progress; history is ignored).
 * TRC_EINVAL if the id exists. */
int jobstore_insert(jobstore *js, const trc_job *job);
/* Reads one job with its history. TRC_ENOTFOUND for an unknown id. Free with trc_job_free. */
int jobstore_get(jobstore *js, const char *id, trc_job *out);
/* Jobs newest first, each with its history; status < 0 lists all. Free with jobstore_free_list. */
int jobstore_list(jobstore *js, int status, trc_job **out, size_t *n);
void jobstore_free_list(trc_job *jobs, size_t n);
/* One page of the list: jobs older than the cursor `before` (0: from the newest), at most
 * `limit` (0: all); *next (may be NULL) gets the cursor of the next page, 0 when this is the
 * last. The cursor is the internal sequence number of the last job returned. */
int jobstore_list_page(jobstore *js, int status, long long before, size_t limit, trc_job **out,
                       size_t *n, long long *next);
/* Finished jobs (succeeded, failed, cancelled) to prune: all but the newest `keep`, plus those
 * finished before `before` (Unix seconds; <= 0: no age limit). *ids is malloc'd. */
int jobstore_expired(jobstore *js, size_t keep, double before, char (**ids)[TRC_JOB_ID_MAX],
                     size_t *n);
/* Number of jobs in each status (counts[TRC_JOB_NSTATUS]). */
int jobstore_count(jobstore *js, long counts[TRC_JOB_NSTATUS]);

/* A (re)started run: status running, started_at set, finished_at and error cleared. */
int jobstore_mark_running(jobstore *js, const char *id, double started_at);
/* Back to the queue (resume): status queued, finished_at, error and result cleared. */
int jobstore_mark_queued(jobstore *js, const char *id);
/* A terminal state with its error ("" or NULL for none) and result (NULL for none). */
int jobstore_finish(jobstore *js, const char *id, trc_job_status status, double finished_at,
                    const char *error, const char *result_model, const char *result_checkpoint);
/* Progress after an epoch: epochs done and budget. */
int jobstore_set_progress(jobstore *js, const char *id, int epoch, int epochs);
/* Inserts or replaces one history row. */
int jobstore_put_epoch(jobstore *js, const char *id, const trc_job_epoch *e);
/* Deletes history rows after epoch `keep` (a resumed run redoes them). */
int jobstore_trim_epochs(jobstore *js, const char *id, int keep);
/* Deletes a job and its history. TRC_ENOTFOUND for an unknown id. */
int jobstore_delete(jobstore *js, const char *id);

/* Start-up recovery: every job still `running` (the process died under it) becomes failed with
 * `reason` and finished_at = now; *n_failed (may be NULL) receives how many. */
int jobstore_recover(jobstore *js, double now, const char *reason, int *n_failed);

#endif
