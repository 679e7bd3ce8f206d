/* The job runner (jobs_run.c): runs one training job on a pool thread from an explicit
 * environment (the store, the registry, the directories and a progress callback), so it needs
 * nothing of the job manager's internals; the manager (jobs.c) builds the environment and
 * records the outcome. */
#ifndef TRCD_JOBS_RUN_H
#define TRCD_JOBS_RUN_H

#include <stdatomic.h>

#include "jobstore.h"
#include "registry.h"
#include "train_spec.h"
#include "trc/dataset.h"

typedef struct job_env {
    jobstore *store;        /* epochs and progress of the job go here */
    registry *registry;     /* the trained model is published here ... */
    const char *models_dir; /* ... from <models_dir>/<name>.safetensors */
    const char *job_dir;    /* the job's own directory (checkpoints, state, stats) */
    /* Live progress (epochs done, fraction of the budget, ETA in s or -1, samples/s), called on
     * the runner's thread. */
    void (*progress)(void *user, int epoch, double fraction, double eta, double sps);
    void *user;
} job_env;

typedef struct job_outcome {
    trc_job_status status; /* succeeded, failed or cancelled */
    char error[512];       /* "" on success; "cancelled" when stopped by the flag */
    int published;         /* the model is in the registry under the spec's name */
} job_outcome;

/* Dataset, training (resuming from job_dir's state when `resume`), publishing. `cancel` is
 * checked at every batch. */
void job_run(const job_env *env, const char *id, const trc_train_spec *spec, int resume,
             const atomic_int *cancel, job_outcome *out);

/* The spec's dataset through the same core function as `trc generate`
 * (trc_dataset_generate_chunked: one random stream, chunks that check `cancel`), so the same
 * system, expert and seed give the same bytes as `trc generate --num-samples N --seed S`. */
int job_make_dataset(const trc_train_spec *spec, const atomic_int *cancel, trc_dataset *out);

#endif
