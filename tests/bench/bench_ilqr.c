/* Benchmark: the ilqr expert on Van der Pol (the system's defaults: T=100, dt=0.05, |u| <= 2,
 * starts in [-2, 2]^2, target the origin). 10,000 samples generated on 2 threads, unconverged
 * ones kept so they can be counted; prints the wall time (target <= 30 s), the share converged
 * (target >= 99.5%), the mean final error (target <= 0.01), the per-problem solve time (median
 * and p95 of each solve's wall time, and CPU time per problem), and lqr_finite's per-problem
 * time on the same samples for comparison. Medians over REPS runs. */
#include "trc/dataset.h"
#include "trc/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define N 10000
#define REPS 3
#define THREADS 2

static double clock_s(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double mean_final_error(const trc_dataset *ds) {
    double sum = 0.0;
    for (size_t i = 0; i < ds->n; i++) {
        const float *xT = ds->state_trajectories + (i * (size_t)(ds->T + 1) + ds->T) * ds->s;
        double e = 0.0;
        for (int k = 0; k < ds->s; k++) {
            double d = (double)xT[k] - ds->target_states[i * ds->s + k];
            e += d * d;
        }
        sum += sqrt(e);
    }
    return sum / (double)ds->n;
}

int main(void) {
    trc_gen_settings g;
    if (trc_gen_settings_default("van_der_pol", &g) != TRC_OK)
        return 1;
    snprintf(g.expert, sizeof g.expert, "ilqr");
    const trc_gen_options opt = {.threads = THREADS, .keep_unconverged = 1};
    double wall[REPS], cpu[REPS], conv[REPS], err[REPS], med[REPS], p95[REPS], iters[REPS];
    for (int r = 0; r < REPS; r++) {
        trc_dataset ds;
        trc_gen_summary sum;
        double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        if (trc_dataset_generate_with(&g, N, &opt, &ds, &sum) != TRC_OK) {
            fprintf(stderr, "bench_ilqr: %s\n", trc_errmsg());
            return 1;
        }
        wall[r] = clock_s(CLOCK_MONOTONIC) - w0;
        cpu[r] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        conv[r] = 100.0 * (double)(sum.drawn - sum.unconverged) / (double)sum.drawn;
        err[r] = mean_final_error(&ds);
        med[r] = sum.solve_ms_median;
        p95[r] = sum.solve_ms_p95;
        iters[r] = sum.iters_mean;
        trc_dataset_free(&ds);
    }
    /* lqr_finite on the same draws: the original's expert, for the per-problem comparison */
    snprintf(g.expert, sizeof g.expert, "lqr_finite");
    double lq[REPS], lq_err = 0.0;
    for (int r = 0; r < REPS; r++) {
        trc_dataset ds;
        double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        if (trc_dataset_generate_with(&g, N, &opt, &ds, NULL) != TRC_OK) {
            fprintf(stderr, "bench_ilqr: %s\n", trc_errmsg());
            return 1;
        }
        lq[r] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        lq_err = mean_final_error(&ds);
        trc_dataset_free(&ds);
    }
    double cpu_sorted[REPS];
    for (int r = 0; r < REPS; r++)
        cpu_sorted[r] = cpu[r];
    qsort(wall, REPS, sizeof wall[0], cmp);
    qsort(cpu_sorted, REPS, sizeof cpu_sorted[0], cmp);
    qsort(med, REPS, sizeof med[0], cmp);
    qsort(p95, REPS, sizeof p95[0], cmp);
    qsort(lq, REPS, sizeof lq[0], cmp);
    const double W = wall[REPS / 2];
    /* the data are the same every run (deterministic): one value each */
    printf("ilqr on van_der_pol: %d samples on %d threads, median of %d runs: %.2f s "
           "(target <= 30 s: %s); min %.2f s, max %.2f s\n",
           N, THREADS, REPS, W, W <= 30.0 ? "met" : "NOT met", wall[0], wall[REPS - 1]);
    printf("  converged %.2f%% (target >= 99.5%%: %s), mean final error %.5f (target <= 0.01: "
           "%s), %.1f iterations per sample\n",
           conv[0], conv[0] >= 99.5 ? "met" : "NOT met", err[0], err[0] <= 0.01 ? "met" : "NOT met",
           iters[0]);
    printf("  per problem: CPU %.3f ms; wall per solve median %.3f ms, p95 %.3f ms\n",
           1e3 * cpu_sorted[REPS / 2] / N, med[REPS / 2], p95[REPS / 2]);
    printf("lqr_finite (Euler-linearised LQR feedback) on the same samples: CPU %.4f ms per "
           "problem, mean final error %.5f\n",
           1e3 * lq[REPS / 2] / N, lq_err);
    return 0;
}
