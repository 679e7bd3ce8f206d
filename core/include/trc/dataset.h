/* Datasets of (initial state, target, expert controls) in memory, their generation from an
 * expert, and their .npz form (the original project's lqr_dataset.npz layout). */
#ifndef TRC_DATASET_H
#define TRC_DATASET_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "trc/expert.h"

typedef struct trc_gen_settings {
    char system[32]; /* e.g. "double_integrator" */
    char expert[32]; /* e.g. "min_energy", "lqr", "lqr_finite" */
    int T;           /* horizon */
    double dt;       /* time step */
    double bound;    /* control bound */
    uint64_t seed;
    double box_lo, box_hi; /* uniform sampling box of the initial states */
    /* Sampling box of the targets; NAN (both) = the states' box. Van der Pol's default [0, 0] is
     * the origin (lo == hi gives that point; the draws are made all the same, so the random
     * stream does not depend on it). */
    double target_lo, target_hi;
    /* The expert's own parameters, in the order of its descriptors (trc_expert.params, e.g.
     * lqr_q, lqr_r, lqr_qf for lqr_finite); 0 means the descriptor's default. Set them by name
     * with trc_gen_settings_set_param. */
    double expert_params[TRC_EXPERT_MAX_PARAMS];
} trc_gen_settings;

/* Where a shard sits in the dataset it is part of (trc_dataset_generate_shard): shard `index`
 * of `count` holds candidates [first, first + its n) of the stream of a `total`-sample run,
 * every one kept (unconverged ones flagged) so trc_dataset_merge can rebuild the single run.
 * count = 0: not a shard. */
typedef struct trc_shard_info {
    int index, count;
    size_t total, first;
    int keep_unconverged; /* what the merged dataset does with unconverged samples */
} trc_shard_info;

typedef struct trc_dataset {
    size_t n;                  /* samples */
    int s, m, T;               /* state dim, control dim, horizon */
    float *initial_states;     /* [n, s] */
    float *target_states;      /* [n, s] */
    float *control_sequences;  /* [n, T, m] */
    float *state_trajectories; /* [n, T+1, s], NULL when the file had none */
    float *costs;              /* [n], NULL when the file had none */
    /* Per sample of an iterative expert (ilqr), NULL otherwise: [n, 2] backward passes and
     * converged (1 or 0), the .npz key "expert_solve"; [n] wall time of the solve in ms, the
     * key "expert_solve_ms" (the one key that differs between two identical runs). */
    float *solve_stats, *solve_ms;
    /* [n] steps of the horizon each sample has left (1..T; its controls after them are 0), NULL
     * when every sample has the whole horizon: the tails of trc_dataset_add_tails, the .npz
     * key "steps_left". */
    float *steps_left;
    int has_settings; /* 1 when `settings` is known (generated, or read from our metadata) */
    trc_gen_settings settings;
    trc_shard_info shard; /* count > 0 for a shard (metadata key "shard") */
    /* What the file records even without generation settings (our metadata's "dt"/"system",
     * or the sidecar <stem>.json of a foreign file): 0 / "" when it says nothing. A dataset
     * without a recorded dt gets none: the caller must be told it (trc eval --dt). */
    double dt;
    char system[32];
    /* What `costs` holds: "sum_u2" (ours), "lqr_quadratic", ... ("" unknown). The original
     * project's later files store sum(u^2) * dt ("sum_u2_dt"): declared (metadata or sidecar
     * "cost") or recognised from the controls with a known dt, they are converted to sum(u^2)
     * on load, and cost_converted_from says "sum_u2_dt". */
    char cost_label[24];
    char cost_converted_from[24];
} trc_dataset;

/* Fills `settings` with the defaults of the named system and the min_energy expert. */
int trc_gen_settings_default(const char *system, trc_gen_settings *settings);

/* Checks every field (known system and expert, T >= 1, dt > 0, bound > 0, box lo < hi, the
 * expert's parameters against its descriptors); the message names the field. */
int trc_gen_settings_validate(const trc_gen_settings *settings);
/* Sets the expert parameter `name` (e.g. "lqr_q") of settings->expert: TRC_EINVAL when that
 * expert has no such parameter (the message lists the experts that do). */
int trc_gen_settings_set_param(trc_gen_settings *settings, const char *name, double value);
/* The value of parameter `name` of settings->expert (0 = default), or NAN when it has none. */
double trc_gen_settings_param(const trc_gen_settings *settings, const char *name);

/* Draws n initial/target pairs uniformly from the box (one random stream: x0 then target of each
 * sample in turn) and solves each with the expert; trajectories by the system's step. */
int trc_dataset_generate(const trc_gen_settings *settings, size_t n, trc_dataset *out);
/* The same in chunks of `chunk` samples (0 = the default of 16384), checking `cancel` (may be
 * NULL) before each: TRC_ECANCELED when set, with nothing left in out. The data do not depend
 * on the chunk size: `trc generate` and a trcd job with the same settings write the same
 * bytes. */
int trc_dataset_generate_chunked(const trc_gen_settings *settings, size_t n, size_t chunk,
                                 const atomic_int *cancel, trc_dataset *out);

typedef struct trc_gen_options {
    int threads; /* solver threads; 0 = one per online CPU. The data do not depend on it. */
    /* An iterative expert's unconverged samples are dropped and replaced by the next draws of
     * the same stream (the set is the first n converged candidates) unless this is 1 (then
     * kept, and flagged in solve_stats). */
    int keep_unconverged;
    size_t chunk;             /* samples between cancel checks; 0 = 16384 */
    const atomic_int *cancel; /* may be NULL */
    size_t first; /* candidates of the stream skipped before the first draw (shards, merge) */
} trc_gen_options;

typedef struct trc_gen_summary {
    size_t drawn;       /* candidates drawn and solved (n plus the replaced ones) */
    size_t unconverged; /* of those, not converged (kept or replaced) */
    double iters_mean;  /* ilqr backward passes per kept sample (0 for direct experts) */
    double solve_ms_mean, solve_ms_median, solve_ms_p95; /* per kept sample (iterative only) */
} trc_gen_summary;

/* The general form: opt NULL = {1 thread, drop unconverged, default chunk, no cancel};
 * summary may be NULL. The output is the same for every thread count and chunk size. Fails
 * with TRC_ENUMERIC when more than n + n/2 + 64 candidates are needed for n converged ones. */
int trc_dataset_generate_with(const trc_gen_settings *settings, size_t n,
                              const trc_gen_options *opt, trc_dataset *out,
                              trc_gen_summary *summary);

/* Shard `index` of `count` of the n-sample run with these settings: the candidates
 * [index * n / count, (index + 1) * n / count) of the stream, all solved and kept (an iterative
 * expert's unconverged ones flagged in solve_stats); out->shard says where it sits.
 * keep_unconverged in opt is recorded for the merge. TRC_EINVAL for index/count out of range
 * or a shard with no sample (count > n). */
int trc_dataset_generate_shard(const trc_gen_settings *settings, size_t n, int index, int count,
                               const trc_gen_options *opt, trc_dataset *out,
                               trc_gen_summary *summary);
/* The first candidate and the size of shard `index` of `count` of an n-sample run. */
void trc_shard_range(size_t n, int index, int count, size_t *first, size_t *size);

/* Joins the shards of one run (any order) into exactly the dataset trc_dataset_generate_with
 * gives for the same settings and n: the converged samples in draw order, then (when some were
 * dropped) the next candidates after the run's last, solved here (opt: threads, cancel).
 * names[i] (the files, for messages) may be NULL. TRC_EINVAL, naming the file, for a dataset
 * that is not a shard, shards of different settings, sizes or shard counts, a missing or
 * duplicated shard, or a shard whose size is not its range. */
int trc_dataset_merge(const trc_dataset *shards, size_t count, const char *const *names,
                      const trc_gen_options *opt, trc_dataset *out, trc_gen_summary *summary);

/* Reads / writes the .npz form. Save is atomic (temporary name, fsync, rename). */
/* Reads a .npz (see dataset_io.c). A file without our metadata may have a sidecar beside it,
 * "<stem>.json" (data/orig.npz -> data/orig.json): {"dt": 0.33, "system": "double_integrator",
 * "cost": "sum_u2_dt"}, every key optional, no other key; it is how a foreign file records its
 * time step and cost convention. */
int trc_dataset_load(const char *path, trc_dataset *out);
int trc_dataset_save(const char *path, const trc_dataset *ds);

/* The dataset and `per_sample` tails of each of its samples (it needs state trajectories):
 * sample i, then its tails from distinct steps k drawn uniformly from 1..T-1 (seeded; every
 * step when per_sample >= T-1): initial state x_k of its trajectory, the same target, controls
 * u_k..u_{T-1} followed by zeros, steps_left T-k. By Bellman's principle a tail of an optimal
 * solution is the optimal solution from x_k with T-k steps left (the experts' costs do not
 * depend on the step), so the tails teach a network to plan the rest of a horizon. out has no
 * trajectories nor costs (a tail has neither for the whole horizon) and keeps the settings. */
int trc_dataset_add_tails(const trc_dataset *in, int per_sample, uint64_t seed, trc_dataset *out);

/* Allocates n rows of tails: states, targets, controls and steps_left (no trajectories nor costs:
 * a tail has neither for a whole horizon). */
int trc_dataset_alloc_tails(trc_dataset *ds, size_t n, int s, int m, int T);
/* The rows of in that are tails (steps_left < T), in order, into out: what trc dagger keeps of an
 * earlier round (--aggregate). TRC_EINVAL when there is none. */
int trc_dataset_tail_rows(const trc_dataset *in, trc_dataset *out);

/* Allocates the arrays of an empty dataset with the given sizes (trajectories and costs too). */
int trc_dataset_alloc(trc_dataset *ds, size_t n, int s, int m, int T);
void trc_dataset_free(trc_dataset *ds);

#endif
