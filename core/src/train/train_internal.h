/* What the training loop (train.c), its options (options.c), its saved state (train_state.c)
 * and its reports (train_report.c) share: one run's bookkeeping. Private to libtrc. */
#ifndef TRC_TRAIN_INTERNAL_H
#define TRC_TRAIN_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "trc/optim.h"
#include "trc/rng.h"
#include "trc/train.h"

#define TRC_BEST_FILE "best_model.safetensors"
#define TRC_LAST_FILE "last_model.safetensors"
#define TRC_STATE_FILE "optimizer_state.safetensors"
#define TRC_STATS_FILE "training_stats.json"
#define TRC_CURVES_FILE "training_curves.svg"

/* Everything that decides what a run does next; saved in the optimizer state so that a resumed
 * run continues bit for bit. Times are bookkeeping only. */
typedef struct trc_run {
    trc_train_opts o; /* effective settings */
    const trc_dataset *ds;
    size_t n_train, n_val;
    uint64_t data_hash;

    trc_model model;
    trc_adamw opt;
    trc_sched sched;
    trc_rng epoch_rng; /* generator state before the current epoch's shuffle */

    int epoch_done;        /* completed epochs */
    size_t batch_done;     /* batches of the current epoch already applied (mid-epoch resume) */
    double epoch_loss_sum; /* sum of batch loss * batch size over those batches */
    size_t epoch_samples;
    double epoch_train_seconds; /* training time spent on the current epoch so far */
    /* the objective's named terms: sums of batch term * batch size, as epoch_loss_sum */
    const trc_objective *objective;
    int nterms;
    double epoch_term_sum[TRC_OBJECTIVE_MAX_TERMS];

    trc_epoch_stats *history; /* epoch_done entries, capacity o.epochs */
    double best_loss;         /* +inf until the first epoch */
    int best_epoch;           /* 0 until the first epoch */
    int bad_epochs;           /* epochs since best (early stopping) */
    int stopped_early, cancelled;
} trc_run;

/* FNV-1a over the dataset's sizes and arrays: a resumed run must see the same data. */
uint64_t trc_train_data_hash(const trc_dataset *ds);

/* The run's settings as JSON (every field that shapes the result) and back (options.c). */
json_t *trc_train_settings_json(const trc_train_opts *o);
int trc_train_settings_parse(const json_t *j, trc_train_opts *o);
/* The decay factor the scheduler uses: gamma, or its per-scheduler default when gamma <= 0. */
double trc_train_effective_gamma(const trc_train_opts *o);

/* optimizer_state.safetensors in out_dir: params, moments and every scalar of trc_run. */
int trc_train_state_save(const trc_run *run, const char *path);
/* Restores a run prepared with the same settings (model and optimizer allocated). */
int trc_train_state_load(trc_run *run, const char *path);
/* Reads only the saved settings. */
int trc_train_state_settings(const char *path, trc_train_opts *o);

/* The training summary stored in each checkpoint's metadata (deterministic: no times).
 * `epoch` is the epoch that produced the parameters. Returns a malloc'd string or NULL. */
char *trc_train_summary(const trc_run *run, int epoch);

/* {"name": value, ...} of the objective's named terms (NaN as null). */
json_t *trc_train_terms_json(const trc_objective *obj, const double *v, int n);
/* Reads such an object back into v[0..n) (a missing name: NaN). */
void trc_train_terms_parse(const json_t *j, const trc_objective *obj, double *v, int n);

/* training_stats.json: settings, dataset split, model, per-epoch history and the outcome. */
int trc_train_write_stats(const trc_run *run, const char *path);
/* training_curves.svg: train and validation loss against epoch on a log-scale y axis. */
int trc_train_write_curves(const trc_epoch_stats *hist, int count, int best_epoch,
                           const char *path);
/* The same with the objective's named terms as dashed lines (term_names may be NULL). */
int trc_train_write_curves_terms(const trc_epoch_stats *hist, int count, int best_epoch,
                                 const char *const *term_names, const char *path);

#endif
