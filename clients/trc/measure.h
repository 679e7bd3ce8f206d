/* Speed and memory of `trc eval` / `trc compare`, measured in the run: the model's inference time
 * per problem (one problem per call, and in batches), its peak memory, the expert's solve time
 * per problem (re-solved here, one thread), and the model's iterates for the refinement plot. */
#ifndef TRC_CLI_MEASURE_H
#define TRC_CLI_MEASURE_H

#include "model_run.h"

typedef struct model_measure {
    size_t timed;            /* single-problem calls timed */
    double ms_single_median; /* per problem, batch of 1 */
    double ms_single_mean;
    double ms_batched;         /* per problem, in batches of up to 1024 */
    size_t batch;              /* the batch of that measurement */
    long long peak_bytes;      /* peak resident memory growth while loading and running the model */
    const char *peak_method;   /* how: "VmHWM (reset by /proc/self/clear_refs)" or "ru_maxrss" */
    long long heap_bytes;      /* heap the loaded model holds (mallinfo2 in-use delta) */
    long long parameter_bytes; /* parameters * sizeof(float) */
    int K;                     /* outer cycles */
    float *iterates;           /* [(K+1), n, T*m] when asked for (malloc'd), else NULL */
} model_measure;

/* Loads f->checkpoint once more (under the memory probe), times up to `singles` problems of ds
 * one per call (median), and one batched pass over up to 1024 problems; with want_iterates also
 * runs the whole dataset keeping every iterate (out->iterates). Prints the error. */
int cli_model_measure(const char *cmd, const cli_model_flags *f, const trc_dataset *ds,
                      size_t singles, int want_iterates, model_measure *out);

/* The fields of m as a JSON object merged into the row text *row_json (replaced; malloc'd). */
int cli_measure_merge_json(char **row_json, const char *key, const char *json_object_text);
char *cli_model_measure_json(const model_measure *m);

typedef struct expert_measure {
    size_t timed;
    double ms_median, ms_mean;
    char expert[32];
} expert_measure;

/* Re-solves up to `count` problems of ds with the expert and settings it was generated with,
 * one at a time on this thread, timing each. CLI_FAIL with a message when ds records no expert
 * (*out->expert is then ""). */
int cli_expert_measure(const char *cmd, const trc_dataset *ds, size_t count, expert_measure *out);

/* Prints the speed-and-memory section of the report. m or e may be NULL. */
void cli_measure_print(const model_measure *m, const expert_measure *e);

#endif
