/* Training objectives: what a trainer's iterates are scored by. A trainer computes the network's
 * iterates (the controls after the initial generator and after each outer cycle); an objective
 * turns them into a loss and the gradient of that loss at every iterate, which the trainer's
 * backward then carries through the network. One ops table per objective
 * (core/src/train/<name>.c, registered by one line in core/src/train/objectives.h); "imitation"
 * (alias "mse": the original's imitation loss on the last iterate) is the default. Adding one:
 * docs/extending.md. */
#ifndef TRC_OBJECTIVE_H
#define TRC_OBJECTIVE_H

#include <stddef.h>

#include "trc/system.h"

/* The objectives' settable weights (training options of the same names, trc/train.h); the
 * defaults are the TRC_OBJ_DEF_* values. */
#define TRC_OBJ_DEF_IMITATION_WEIGHT 1.0
#define TRC_OBJ_DEF_TERMINAL_WEIGHT 1.0
#define TRC_OBJ_DEF_STATE_WEIGHT 0.0
#define TRC_OBJ_DEF_CONTROL_WEIGHT 0.0
#define TRC_OBJ_DEF_PROCESS_WEIGHT 0.1
#define TRC_OBJ_DEF_PROCESS_Q 1.0
#define TRC_OBJ_DEF_PROCESS_R 0.01
#define TRC_OBJ_DEF_PROCESS_QF 10.0
typedef struct trc_objective_params {
    double imitation_weight; /* mixed: weight of the imitation MSE */
    /* trajectory/mixed, per sample of the rollout x_0..x_T of the final controls u:
     * terminal |x_T - x*|^2, state mean_{t<T} |x_t - x*|^2, control mean_t |u_t|^2 */
    double terminal_weight, state_weight, control_weight;
    /* process/process_original: lambda and the cost's Q = q I, R = r I, Qf = qf I */
    double process_weight, process_q, process_r, process_qf;
} trc_objective_params;

/* The defaults above. */
void trc_objective_params_default(trc_objective_params *p);

/* At most this many named terms per objective (the loss curves show each). */
#define TRC_OBJECTIVE_MAX_TERMS 4

/* A normalised model's units (trc_model_config.norm; docs/training.md), as the simulating
 * objectives convert them: the network's iterate y is the physical control
 * clamp(u_mean + u_std y, -bound, bound) per component, and their losses are in normalised units
 * (a state error component divided by x_std, a control component by u_std). */
typedef struct trc_objective_units {
    const float *x_std;          /* [s] */
    const float *u_mean, *u_std; /* [m] */
    float bound;                 /* the physical control bound */
} trc_objective_units;

/* One batch as an objective sees it. Arrays are row-major; iterates is [(K+1), B, U]. */
typedef struct trc_objective_batch {
    size_t B;
    int K, U, s, m, T;
    float bound;
    const float *x0, *target; /* [B, s] the inputs */
    const float *u_expert;    /* [B, U]: the dataset's controls, in the network's units */
    /* [B, s] the physical states the simulator starts from and aims at (NULL: x0 and target
     * are physical), and the network's units (NULL: physical; see trc_objective_units) */
    const float *x0_sim, *target_sim;
    const trc_objective_units *units;
    /* [B] fraction of the horizon each row has left (tails, trc_model_config.time_left), or
     * NULL (1): only the first round(time_left T) steps of a row are planned, and scored */
    const float *time_left;
    const trc_system *system; /* may be NULL when the data name no system */
    double dt;
    const trc_objective_params *params; /* NULL = the defaults */
    /* [B, TRC_OBJECTIVE_MAX_TERMS] or NULL: rows write each row's share of each named term of
     * the loss (in loss units, so a row's shares sum to its share of the finished loss) */
    double *terms;
} trc_objective_batch;

typedef struct trc_objective {
    const char *name;
    const char *about; /* one line */
    /* Rows [r0, r1) of the batch: returns their share of the loss (summed in row order, before
     * finish) and writes their rows of grad [(K+1), B, U], d loss / d iterate. Called from the
     * trainer's threads on disjoint rows. */
    double (*rows)(const trc_objective_batch *b, const float *iterates, size_t r0, size_t r1,
                   float *grad);
    /* The loss from the sum of every row's share. */
    double (*finish)(const trc_objective_batch *b, double sum);
    int final_only; /* 1 when only the last iterate has a gradient */
    /* 1 when the gradient is by design not the loss's derivative (stop-gradients: "process");
     * its own tests check it (test_process_parity) */
    int surrogate_gradient;
    const char *alias; /* an older name also accepted by trc_objective_find, or NULL */
    /* The named terms of the loss, NULL-terminated (NULL when the loss is one term) */
    const char *const *terms;
    /* 1 when it simulates the data's system through its Jacobian (trc_objective_check) */
    int needs_jacobian;
    /* The training options (trc_objective_params' weights) its loss reads, NULL-terminated
     * (NULL: none); training refuses another objective's weight set for it */
    const char *const *reads;
    /* What rows can score (the trainer refuses the rest, naming the objective): a normalised
     * model (batch.units) and rows with a time left below 1 (batch.time_left: a tail) */
    int normalised, time_left;
} trc_objective;

size_t trc_objective_count(void);
const trc_objective *trc_objective_at(size_t i);
/* By name or alias; NULL with trc_errmsg listing the known ones (TRC_ENOTFOUND) when unknown. */
const trc_objective *trc_objective_find(const char *name);
/* Every name then every alias, NULL past the end (the choices of the `objective` option). */
const char *trc_objective_name_at(size_t i);
/* The names of the objectives that can train a model with normalisation (normalised = 1) and/or
 * a time-left input (time_left = 1), ", "-separated into buf [n] (truncated to fit). */
void trc_objective_names_with(int normalised, int time_left, char *buf, size_t n);
/* Whether o reads the training option `option` (o->reads); trc_objective_option: whether any
 * objective of the table does. */
int trc_objective_reads(const trc_objective *o, const char *option);
int trc_objective_option(const char *option);
/* The names of the objectives that read `option`, ", "-separated into buf [n]. */
void trc_objective_names_reading(const char *option, char *buf, size_t n);
/* Number of named terms (0 for a one-term loss). */
int trc_objective_nterms(const trc_objective *o);
/* Whether the objective can train on data of `system` (NULL: the data name none): 0, or
 * TRC_EUNSUPPORTED with a one-line reason naming the objective. */
int trc_objective_check(const trc_objective *o, const trc_system *system);
/* Each weight >= 0 and finite: 0, or TRC_EINVAL naming the field. */
int trc_objective_params_check(const trc_objective_params *p);

/* The objective a trainer (model.h) scores its iterates with ("mse" until set), with the system
 * and time step of the data (NULL and 0 when unknown; objectives that simulate need them). */
struct trc_trainer;
int trc_trainer_set_objective(struct trc_trainer *tr, const trc_objective *objective,
                              const trc_system *system, double dt);
/* Its weights (copied; the defaults until set). */
int trc_trainer_set_objective_params(struct trc_trainer *tr, const trc_objective_params *p);
/* The named terms of the last forward's loss into out[TRC_OBJECTIVE_MAX_TERMS]; returns their
 * number (0 when the objective has none). */
int trc_trainer_terms(const struct trc_trainer *tr, double *out);

#endif
