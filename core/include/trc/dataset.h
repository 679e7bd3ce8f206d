/* Datasets of (initial state, target, expert controls) in memory, their generation from an
 * expert, and their .npz form (the original project's lqr_dataset.npz layout). */
#ifndef TRC_DATASET_H
#define TRC_DATASET_H

#include <stddef.h>
#include <stdint.h>

typedef struct trc_gen_settings {
    char system[32]; /* e.g. "double_integrator" */
    char expert[32]; /* e.g. "min_energy", "lqr", "lqr_finite" */
    int T;           /* horizon */
    double dt;       /* time step */
    double bound;    /* control bound */
    uint64_t seed;
    double box_lo, box_hi; /* uniform sampling box for both initial and target states */
    /* Weights of the LQR experts: Q = lqr_q I, R = lqr_r I, Qf = lqr_qf Q (see expert.h);
     * 0 means the default (1, 0.1, 100). Ignored by min_energy. */
    double lqr_q, lqr_r, lqr_qf;
} trc_gen_settings;

typedef struct trc_dataset {
    size_t n;                  /* samples */
    int s, m, T;               /* state dim, control dim, horizon */
    float *initial_states;     /* [n, s] */
    float *target_states;      /* [n, s] */
    float *control_sequences;  /* [n, T, m] */
    float *state_trajectories; /* [n, T+1, s], NULL when the file had none */
    float *costs;              /* [n], NULL when the file had none */
    int has_settings; /* 1 when `settings` is known (generated, or read from our metadata) */
    trc_gen_settings settings;
} trc_dataset;

/* Fills `settings` with the defaults of the named system and the min_energy expert. */
int trc_gen_settings_default(const char *system, trc_gen_settings *settings);

/* Checks every field (known system and expert, T >= 1, dt > 0, bound > 0, box lo < hi, finite
 * non-negative weights); the message names the field. */
int trc_gen_settings_validate(const trc_gen_settings *settings);

/* Draws n initial/target pairs uniformly from the box and solves each with the expert. */
int trc_dataset_generate(const trc_gen_settings *settings, size_t n, trc_dataset *out);

/* Reads / writes the .npz form. Save is atomic (temporary name, fsync, rename). */
int trc_dataset_load(const char *path, trc_dataset *out);
int trc_dataset_save(const char *path, const trc_dataset *ds);

/* Allocates the arrays of an empty dataset with the given sizes (trajectories and costs too). */
int trc_dataset_alloc(trc_dataset *ds, size_t n, int s, int m, int T);
void trc_dataset_free(trc_dataset *ds);

#endif
