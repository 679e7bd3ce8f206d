/* Benchmark: generating 10,000 min_energy samples of the double integrator (expert solve,
 * trajectories, costs) in memory, and the same plus writing the .npz, over several
 * repetitions; prints the medians and samples/s. */
#include "trc/dataset.h"
#include "trc/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define N 10000
#define REPS 15

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void) {
    trc_gen_settings g;
    if (trc_gen_settings_default("double_integrator", &g) != TRC_OK)
        return 1;
    double gen[REPS], save[REPS];
    char path[64];
    snprintf(path, sizeof path, "/tmp/trc-bench-generate-%ld.npz", (long)getpid());
    for (int r = 0; r < REPS; r++) {
        trc_dataset ds;
        g.seed = 42 + (uint64_t)r;
        double t0 = now();
        if (trc_dataset_generate(&g, N, &ds) != TRC_OK) {
            fprintf(stderr, "bench_generate: %s\n", trc_errmsg());
            return 1;
        }
        double t1 = now();
        if (trc_dataset_save(path, &ds) != TRC_OK) {
            fprintf(stderr, "bench_generate: %s\n", trc_errmsg());
            trc_dataset_free(&ds);
            return 1;
        }
        double t2 = now();
        gen[r] = t1 - t0;
        save[r] = t2 - t0;
        trc_dataset_free(&ds);
    }
    unlink(path);
    qsort(gen, REPS, sizeof gen[0], cmp);
    qsort(save, REPS, sizeof save[0], cmp);
    printf("generate %d min_energy samples (double_integrator, T=15), median of %d: %.2f ms "
           "(%.0f samples/s); min %.2f ms, max %.2f ms\n",
           N, REPS, 1e3 * gen[REPS / 2], N / gen[REPS / 2], 1e3 * gen[0], 1e3 * gen[REPS - 1]);
    printf("generate + write .npz (fsync'ed), median of %d: %.2f ms (%.0f samples/s)\n", REPS,
           1e3 * save[REPS / 2], N / save[REPS / 2]);
    return 0;
}
