/* The wire form of training: the spec of POST /v1/train (parse, validate, defaults, back to
 * JSON) and the Job object of GET /v1/jobs (see proto/openapi.yaml). */
#ifndef TRC_PROTO_TRAIN_SPEC_H
#define TRC_PROTO_TRAIN_SPEC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "trc/settings.h"
#include "trc/train.h"

#define TRC_JOB_NAME_MAX PROTO_NAME_MAX /* names published by jobs: proto_check_name */
#define TRC_JOB_ID_MAX 32               /* job ids are short lowercase hex strings */

/* A training job: its name, the data to generate and the training options. Every wire field
 * but "name" is an option of core's tables (trc/settings.h) with the TRC_OPT_WIRE bit, read,
 * checked (with the served limits, job_max) and written back by those tables. */
typedef struct trc_train_spec {
    char name[TRC_JOB_NAME_MAX + 1]; /* "" until the server fills "job-<id>" */
    trc_gen_request data;            /* system, expert, num_samples (the rest: the system's) */
    trc_train_opts train;            /* train.seed also seeds the data */
    int replace; /* "replace": the result may replace a served model of the same name (else 409) */
} trc_train_spec;

typedef enum {
    TRC_JOB_QUEUED,
    TRC_JOB_RUNNING,
    TRC_JOB_SUCCEEDED,
    TRC_JOB_FAILED,
    TRC_JOB_CANCELLED,
} trc_job_status;
#define TRC_JOB_NSTATUS 5

/* One row of a job's history (also its latest metrics). val_loss is NAN without validation. */
typedef struct trc_job_epoch {
    int epoch;
    double train_loss, val_loss, lr, seconds, samples_per_sec;
    /* the objective's named terms as a JSON object {"train_terms": {...}, "val_terms": {...}}
     * merged into the history row, or "" when the loss is one term */
    char terms[512];
} trc_job_epoch;

/* Everything GET /v1/jobs/{id} shows. Times are Unix seconds; 0 means "not yet" (null). */
typedef struct trc_job {
    char id[TRC_JOB_ID_MAX];
    char name[TRC_JOB_NAME_MAX + 1];
    trc_job_status status;
    trc_train_spec spec;
    int epoch, epochs;           /* progress: epochs done, budget */
    double fraction;             /* 0..1, finer than epochs while running */
    double eta_seconds;          /* < 0: unknown (null) */
    double live_samples_per_sec; /* > 0 while running: overrides the last epoch's figure */
    double created_at, started_at, finished_at;
    char result_model[TRC_JOB_NAME_MAX + 1];       /* "" = no result */
    char result_checkpoint[TRC_JOB_NAME_MAX + 16]; /* file name inside the models directory */
    char error[512];                               /* "" = no error */
    trc_job_epoch *history;                        /* malloc'd, ascending epochs */
    size_t n_history;
} trc_job;

/* The tables' defaults (double_integrator, min_energy, 10000 samples, seed 42, medium, 100
 * epochs, batch 64, lr 1e-3, cosine, patience 20, val_split 0.1, ...; name ""). */
void trc_train_spec_default(trc_train_spec *spec);
/* Fills spec from a JSON object (NULL = all defaults) and validates every field. Unknown fields,
 * wrong types, non-finite numbers and values out of bounds fail with -1 and a 400 in err naming
 * the field. */
int trc_train_spec_parse(const json_t *obj, trc_train_spec *spec, proto_error *err);
/* The fields of a spec (types, ranges, unknown keys) without the semantic checks of validate:
 * for specs read back from the job store. */
int trc_train_spec_read(const json_t *obj, trc_train_spec *spec, proto_error *err);
/* Checks a filled spec (bounds, known system/expert/size/scheduler, safe name): 0 or -1. */
int trc_train_spec_validate(const trc_train_spec *spec, proto_error *err);
/* The full spec (every field) as a JSON object; NULL on allocation failure. */
json_t *trc_train_spec_to_json(const trc_train_spec *spec);
/* The training options a spec stands for (out_dir and resume left to the caller). */
/* The wire options of a spec in order, with the struct each is bound to: i from 0 until it
 * returns NULL. *base receives &spec->data or &spec->train. */
const trc_option *trc_train_spec_option(size_t i, const trc_train_spec *spec, const void **base);
int trc_train_spec_to_opts(const trc_train_spec *spec, trc_train_opts *opts);

const char *trc_job_status_name(trc_job_status st);
/* Parses a status name; TRC_EINVAL for anything else. */
int trc_job_status_parse(const char *name, trc_job_status *out);
int trc_job_status_terminal(trc_job_status st);

/* Formats Unix seconds as RFC 3339 UTC ("2026-11-26T02:30:00Z"); buf needs 32 bytes. */
void trc_rfc3339(double unix_seconds, char *buf, size_t size);
/* The Job object of openapi.yaml; NULL on allocation failure. */
json_t *trc_job_to_json(const trc_job *job);
void trc_job_free(trc_job *job);

#endif
