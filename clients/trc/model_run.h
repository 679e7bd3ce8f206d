/* What the commands that use a trained model share (predict, info, eval, compare): the flags
 * of a checkpoint (with the settings a bare PyTorch export cannot tell), loading it with a
 * one-line error, the system it controls, and running it over a dataset in batches. */
#ifndef TRC_CLI_MODEL_RUN_H
#define TRC_CLI_MODEL_RUN_H

#include "cli.h"

#include <jansson.h>

#include "trc/dataset.h"
#include "trc/eval.h"
#include "trc/model.h"
#include "trc/system.h"

typedef struct cli_model_flags {
    const char *checkpoint; /* --checkpoint FILE */
    double bound;           /* --bound B (0: the file's, else 4) */
    int K, n, m;            /* -K, -n, -m (0: the file's, else 3, 3, 1) */
    int threads;            /* --threads N of the commands that run the model (0: one per CPU) */
    const char *norm;       /* --norm FILE: normalisation statistics (JSON), e.g. the original's */
} cli_model_flags;

/* The flag table entries of cli_model_flags `f` (six entries). */
#define CLI_MODEL_OPTS(f)                                                                          \
    CLI_OPT("--checkpoint", CLI_STR, &(f).checkpoint, "FILE", "model checkpoint (.safetensors)"),  \
        CLI_RANGE("--bound", CLI_DOUBLE, &(f).bound, "B",                                          \
                  "control bound of a checkpoint without metadata (default 4)", 0, 1e6, 1),        \
        CLI_RANGE("-K", CLI_INT, &(f).K, "K", "outer refinement cycles (default: the file's, 3)",  \
                  1, 64, 0),                                                                       \
        CLI_RANGE("-n", CLI_INT, &(f).n, "N", "inner reasoning cycles (default: the file's, 3)",   \
                  1, 64, 0),                                                                       \
        CLI_RANGE("-m", CLI_INT, &(f).m, "M",                                                      \
                  "control dimension of a checkpoint without metadata (default 1)", 1, 64, 0),     \
        CLI_OPT("--norm", CLI_STR, &(f).norm, "FILE",                                              \
                "normalisation statistics {x_mean, x_std, u_mean, u_std} (JSON) for a checkpoint " \
                "without them (default: the file's metadata, else none)")

/* --threads of the commands that run a model over many pairs (predict --data, eval, compare). */
#define CLI_MODEL_THREADS_OPT(f)                                                                   \
    CLI_RANGE("--threads", CLI_INT, &(f).threads, "N",                                             \
              "inference threads (default: one per CPU; the results do not depend on it)", 1, 64,  \
              0)

/* CLI_USAGE with "X needs --checkpoint" when a model flag (CLI_MODEL_OPTS, --threads) was given
 * without --checkpoint: with no model to apply to, it would change nothing. */
int cli_model_flags_need_checkpoint(const char *cmd, cli_opt *opts, size_t nopts);

/* Loads f->checkpoint; prints "trc <cmd>: ..." and returns CLI_FAIL (CLI_USAGE for a refused
 * override) on failure. */
int cli_model_load(const char *cmd, const cli_model_flags *f, trc_model *out);

/* The system the model controls and its time step: --system / --dt when given (NULL / 0 when
 * not), then the checkpoint's, then the one system of the model's shape (trc_system_resolve,
 * the rule trcd applies too) and the system's dt. Prints the error. */
int cli_model_system(const char *cmd, const trc_model *model, const char *system, double dt,
                     const trc_system **sys_out, double *dt_out);

/* Checks that the data's s, m and T are the model's; prints the error. */
int cli_model_fits(const char *cmd, const trc_model *model, const trc_dataset *ds,
                   const char *data_path);

/* The model's controls for every initial/target pair of ds: u_out [n, T*m], through one
 * inference plan (the kernels and packed weights trcd serves with) on `threads` threads (0: one
 * per CPU). Wall time in *seconds (may be NULL). Prints the error. */
int cli_model_predict(const char *cmd, const trc_model *model, const trc_dataset *ds, int threads,
                      float *u_out, double *seconds);
/* The same with the plan's weights in `precision` (trc predict --precision). */
int cli_model_predict_precision(const char *cmd, const trc_model *model, const trc_dataset *ds,
                                int threads, trc_precision precision, float *u_out,
                                double *seconds);

/* The architecture's name as trcd's /v1/models gives it ("single" for a configuration without). */
const char *cli_model_arch(const trc_model_config *c);

/* What a model is, named as trcd's /v1/models names it: {"arch", "size", "K", "n", "bound",
 * "feedback": bool, "normalised": bool, "time_left": bool} (NULL on allocation failure). */
json_t *cli_model_json(const trc_model *model);

/* {"checkpoint": ..., cli_model_json's keys, "parameters": N, "inference_ms_per_sample": x} as a
 * malloc'd JSON text for a report row (NULL on allocation failure). */
char *cli_model_row_json(const char *checkpoint, const trc_model *model, double seconds, size_t n);

/* Everything eval and compare need for a "model" row: loads f->checkpoint, checks it fits ds,
 * predicts every pair into *u_out [n, T*m] (malloc'd) and describes the model in *row_json
 * (malloc'd, see cli_model_row_json). Prints the error. */
int cli_model_controls(const char *cmd, const cli_model_flags *f, const trc_dataset *ds,
                       const char *data_path, float **u_out, char **row_json);

/* A model in closed loop over ds (trc_eval_closed_loop: at every step the model's sequence from
 * the current state, its first control applied to the true system, with process noise
 * noise_sigma seeded by noise_seed) -> stats, and its report row JSON (*row_json, malloc'd: the
 * checkpoint, model calls and calls per second). Prints one summary line; prints the error. */
int cli_model_closed_loop(const char *cmd, const cli_model_flags *f, const trc_dataset *ds,
                          const char *data_path, const trc_system *sys, double dt, double threshold,
                          double noise_sigma, uint64_t noise_seed, trc_eval_stats *out,
                          char **row_json);

#endif
