/* The training loop as a library function: data split, batches, AdamW, schedulers, early
 * stopping, checkpoints, resume. Reports through a callback and stops when a flag is set;
 * prints nothing itself. */
#ifndef TRC_TRAIN_H
#define TRC_TRAIN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "trc/dataset.h"
#include "trc/model.h"
#include "trc/objective.h"
#include "trc/optim.h" /* trc_sched_kind */

typedef struct trc_train_opts {
    char arch[16];            /* architecture (trc/arch.h); "" = the default, "single" */
    char model_size[16];      /* a size of the architecture: "small" | "medium" | "large" */
    int K, n;                 /* refinement cycles (default 3, 3) */
    int epochs;               /* epoch budget (default 100) */
    int batch_size;           /* default 64 */
    double lr;                /* default 1e-3 */
    double weight_decay;      /* default 1e-5 */
    double grad_clip;         /* global L2 norm, default 1.0; <= 0 disables */
    trc_sched_kind scheduler; /* default cosine, to lr_min over the epoch budget */
    double lr_min;            /* default 1e-6 */
    int step_size;            /* step scheduler: epochs per decay (default 30) */
    double gamma;         /* step/plateau decay factor; <= 0 (default): 0.1 for step, 0.5 plateau */
    int plateau_patience; /* plateau scheduler: epochs without improvement before a decay (10) */
    int patience;         /* early stopping: epochs without improvement (default 20; 0 = off) */
    double val_split;     /* fraction held out (default 0.1); 0 = keep best by training loss */
    uint64_t seed;        /* split, shuffling and initialization (default 42) */
    char out_dir[4096];   /* where checkpoints, stats and curves go ("" = nowhere) */
    int resume;           /* continue from out_dir's last checkpoint and optimizer state */
    double bound;         /* control bound b; <= 0: the dataset's settings, else 4.0 */
    char data_path[4096]; /* recorded in training_stats.json only ("" = not known) */
    int threads;          /* threads of each training step (default 1); results depend on it */
    /* The loss (trc/objective.h): a name or alias of the objectives table ("" = "imitation"),
     * with process_variant 1 (original) turning "process" into "process_original". */
    char objective[24];
    int process_variant;      /* 0 corrected (default), 1 original */
    trc_objective_params obj; /* the objective's weights */
    int feedback;             /* trajectory feedback (trc_model_config.feedback; default off) */
    char names[8];            /* checkpoint key spelling: "a273222" (default) or "ec6511d" */
    /* A checkpoint of the same architecture, size and shape to start from instead of the
     * seeded initialization ("" = none): e.g. imitation first, then a trajectory objective. */
    char init[4096];
    char normalize[8]; /* "auto" (default), "on", "off": statistics of normalisation from the
                          training split (auto: on for a system with per-component boxes) */
    /* Tails of each expert solution added to the data (trc_dataset_add_tails; 0 = none, the
     * default): the model then reads the time left (trc_model_config.time_left). */
    int tails;
} trc_train_opts;

/* Filled by trc_train_opts_default; every field then validated by trc_train_opts_validate. */
void trc_train_opts_default(trc_train_opts *opts);
int trc_train_opts_validate(const trc_train_opts *opts);
/* The settings of the run saved in out_dir (its optimizer_state.safetensors), with out_dir,
 * resume = 1 and data_path (as recorded) filled in: what `trc train --resume DIR` starts from.
 * A resumed run must use these settings; only the epoch budget may change (grow). */
int trc_train_saved_settings(const char *out_dir, trc_train_opts *opts);
/* The objective the settings select (never NULL for validated settings). */
const trc_objective *trc_train_objective(const trc_train_opts *opts);

typedef struct trc_epoch_stats {
    int epoch;                   /* 1-based */
    double train_loss, val_loss; /* val_loss is NAN without a validation split */
    double lr, seconds, samples_per_sec;
    /* The objective's named terms (trc_objective.terms; nterms 0 for a one-term loss), each in
     * loss units: they sum to train_loss / val_loss (val_terms NAN without a split). */
    int nterms;
    double train_terms[TRC_OBJECTIVE_MAX_TERMS], val_terms[TRC_OBJECTIVE_MAX_TERMS];
} trc_epoch_stats;

typedef enum { TRC_PROGRESS_BATCH, TRC_PROGRESS_EPOCH } trc_progress_kind;

typedef struct trc_progress {
    trc_progress_kind kind;
    int epoch, epochs;              /* current (1-based) and budget */
    size_t batch, batches;          /* within the epoch (1-based) */
    double batch_loss;              /* for TRC_PROGRESS_BATCH */
    double samples_per_sec;         /* running, this epoch */
    double eta_seconds;             /* for the whole run */
    const trc_epoch_stats *history; /* epochs so far, history[0..epoch-1] (EPOCH events) */
    int best_epoch;
    int improved;                  /* 1 when this epoch wrote a new best checkpoint */
    const char *const *term_names; /* the objective's terms (history[].nterms of them) */
} trc_progress;

/* Return non-zero to stop training (treated like the cancel flag). */
typedef int (*trc_progress_fn)(void *user, const trc_progress *p);

typedef struct trc_train_result {
    int epochs_run;
    int best_epoch;
    double best_loss;  /* validation loss (training loss with val_split 0) */
    int stopped_early; /* patience ran out */
    int cancelled;
    char best_path[4096], last_path[4096]; /* "" when out_dir is "" */
    trc_model model;                       /* the best model (caller frees with trc_model_free) */
} trc_train_result;

/* Trains on ds. cancel may be NULL; it is checked at least once per batch, and on cancel the
 * last checkpoint and optimizer state are saved (so --resume continues) and TRC_ECANCELED is
 * returned with result->cancelled = 1 and result->model valid. */
int trc_train(const trc_dataset *ds, const trc_train_opts *opts, trc_progress_fn progress,
              void *user, const atomic_int *cancel, trc_train_result *result);

#endif
