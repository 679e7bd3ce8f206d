/* The job runner's entry points that do not need the manager (jobs_run.c). */
#ifndef TRCD_JOBS_RUN_H
#define TRCD_JOBS_RUN_H

#include <stdatomic.h>

#include "train_spec.h"
#include "trc/dataset.h"

/* The spec's dataset through the same core function as `trc generate`
 * (trc_dataset_generate_chunked: one random stream, chunks that check `cancel`), so the same
 * system, expert and seed give the same bytes as `trc generate --num-samples N --seed S`. */
int job_make_dataset(const trc_train_spec *spec, const atomic_int *cancel, trc_dataset *out);

#endif
