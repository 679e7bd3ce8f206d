/* Evaluation of control sequences: simulate them from their initial states with the system's
 * step function and measure the final-state error against the targets, the control effort and
 * the success rate; plus the random baseline of the original comparison and a JSON report. */
#ifndef TRC_EVAL_H
#define TRC_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "trc/dataset.h"
#include "trc/system.h"

typedef struct trc_eval_stats {
    size_t n;
    int s;
    double threshold;
    /* final error |x_T - target| (L2 over the whole state); std is the sample std (n - 1),
     * as torch.std in the original comparison; 0 for n = 1 */
    double err_mean, err_std, err_min, err_max;
    double comp_mean_abs[TRC_SYSTEM_MAX_S]; /* mean |x_T[i] - target[i]| per component */
    double cost_mean, cost_std;             /* control effort sum_t |u_t|^2 per sample */
    size_t successes;                       /* samples with final error < threshold */
    double success_rate;
    /* the system's task metrics (system.h), means over the samples */
    int nmetrics;
    const char *const *metric_names;
    double metric_mean[TRC_SYSTEM_MAX_METRICS];
} trc_eval_stats;

/* x0, target: [n, s], u: [n, T, m] -> stats; final_err: [n] (may be NULL). Simulated and
 * scored by trc_rollout_score (trc/rollout.h). TRC_ENUMERIC when a sample's controls or trajectory
 * are not finite (the message names the sample). */
int trc_eval_controls(const trc_system *sys, double dt, int T, size_t n, const float *x0,
                      const float *target, const float *u, double threshold, trc_eval_stats *out,
                      float *final_err);

/* Closed-loop evaluation: at every step t the policy gives a control sequence from the current
 * state, the first control is applied to the true system, and the next state gets process noise
 * noise_sigma * N(0, I) (seeded; 0 = none). The policy is told the steps left, T - t: a
 * shrinking-horizon policy plans those (a model trained with tails, trc_model_config.time_left),
 * a receding-horizon one plans a whole horizon again and ignores it. */
typedef struct trc_eval_loop {
    /* x, target: [n, s] (the current states), steps_left in 1..T -> u: [n, T, m] (the first
     * steps_left controls planned, the rest ignored). 0 or a TRC_E* status. */
    int (*policy)(void *user, size_t n, const float *x, const float *target, int steps_left,
                  float *u);
    void *user;
    double noise_sigma;
    uint64_t noise_seed;
} trc_eval_loop;

/* Runs the loop T steps from x0 for all n samples at once (one policy call per step) -> stats
 * as trc_eval_controls (final error, effort of the applied controls, success); u_applied
 * [n, T, m] and final_err [n] may be NULL. Without noise, the applied controls replayed open
 * loop by trc_eval_controls give the same final states. */
int trc_eval_closed_loop(const trc_system *sys, double dt, int T, size_t n, const float *x0,
                         const float *target, const trc_eval_loop *loop, double threshold,
                         trc_eval_stats *out, float *u_applied, float *final_err);

/* The system and time step a dataset is evaluated with: `system` (may be NULL) and `dt` (> 0)
 * when given win; then what the file records (its settings, or its sidecar); else the one
 * system of its shape (s, m, T) (trc_system_resolve, the rule trc predict and trcd apply to
 * models). A time step is never assumed: a file that records none (the original project's
 * layout, without a sidecar) needs `dt`, else TRC_EINVAL saying how to give it. */
int trc_eval_resolve(const trc_dataset *ds, const char *system, double dt,
                     const trc_system **sys_out, double *dt_out);

/* count controls drawn N(0, sigma^2), unclipped, as the original's random baseline
 * (torch.randn_like(u) * 2.0); deterministic in seed. */
int trc_eval_random_controls(uint64_t seed, double sigma, size_t count, float *u);

/* Relative difference (a - b) / |b|; NAN when b is 0 (written as null in JSON). */
double trc_eval_rel(double a, double b);

/* A named row of a report. extra_json: a JSON object text merged into the row (may be NULL),
 * e.g. "{\"parameters\": 530590, \"inference_ms\": 3.1}". */
typedef struct trc_eval_row {
    const char *name;
    trc_eval_stats stats;
    const char *extra_json;
} trc_eval_row;

/* What was evaluated, for the report's header. Strings may be NULL. */
typedef struct trc_eval_context {
    const char *command; /* "eval" or "compare" */
    const char *data_path, *controls_path, *system;
    double dt;
    int T;
    size_t n;
    double threshold;
    int has_seed;
    uint64_t seed;
} trc_eval_context;

/* Writes the report atomically:
 *   {"command", "data", ..., "results": {"<row>": {stats}}, "relative": {"<row>": {...}}}
 * "relative" compares each row with the row named `reference` (error_mean_vs_<reference>,
 * cost_mean_vs_<reference>, success_rate_diff_vs_<reference>) and, when a row named `baseline`
 * exists, error_reduction_vs_<baseline>. reference/baseline may be NULL. */
int trc_eval_report_json(const char *path, const trc_eval_context *ctx, const trc_eval_row *rows,
                         size_t nrows, const char *reference, const char *baseline);

#endif
