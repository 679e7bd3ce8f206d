/* Benchmark: the ilqr expert on rocket_landing (its defaults: T = 50 steps of 1 s, |T_i| <=
 * 15 kN, the per-component box of systems/rocket_landing.c). N landings (argv[1], default
 * 10,000) generated on 2 threads, unconverged ones kept so they are counted; prints the wall
 * and CPU time (issue 12 target: 10,000 in <= 120 s on 2 cores), the share converged and the
 * share landed by the original's definition at t = T (horizontal error < 10 m, altitude
 * < 1 m, speed < 5 m/s; target >= 99% each), the altitude and dry-mass violations along the
 * trajectories, and the fuel used. Medians over REPS runs (argv[2], default 1). */
#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/system.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct figures {
    size_t landed, below_ground, below_dry;
    double min_z, min_mass, fuel, worst_h, worst_z, worst_v;
} figures;

static figures score(const trc_dataset *ds, double dry) {
    figures f = {.min_z = HUGE_VAL, .min_mass = HUGE_VAL};
    const int s = ds->s, T = ds->T;
    for (size_t i = 0; i < ds->n; i++) {
        const float *tr = ds->state_trajectories + i * (size_t)(T + 1) * s;
        const float *tg = ds->target_states + i * (size_t)s, *xT = tr + (size_t)T * s;
        double zmin = HUGE_VAL;
        for (int t = 0; t <= T; t++) {
            zmin = fmin(zmin, tr[(size_t)t * s + 2]);
            f.min_mass = fmin(f.min_mass, tr[(size_t)t * s + 6]);
            f.below_dry += t == T && tr[(size_t)t * s + 6] < dry;
        }
        f.min_z = fmin(f.min_z, zmin);
        f.below_ground += zmin < -0.01; /* 1 cm: the terminal error is of that order */
        const double h = hypot(xT[0] - tg[0], xT[1] - tg[1]), z = fabs(xT[2] - tg[2]);
        const double v =
            sqrt((double)xT[3] * xT[3] + (double)xT[4] * xT[4] + (double)xT[5] * xT[5]);
        f.landed += h < 10.0 && z < 1.0 && v < 5.0;
        f.worst_h = fmax(f.worst_h, h), f.worst_z = fmax(f.worst_z, z),
        f.worst_v = fmax(f.worst_v, v);
        f.fuel += (double)tr[6] - xT[6];
    }
    f.fuel /= (double)ds->n;
    return f;
}

int main(int argc, char **argv) {
    const size_t n = argc > 1 ? (size_t)strtoull(argv[1], NULL, 10) : 10000;
    const int reps = argc > 2 ? atoi(argv[2]) : 1;
    if (n == 0 || reps < 1 || reps > 99) {
        fprintf(stderr, "usage: bench_rocket [N >= 1] [REPS 1..99]\n");
        return 2;
    }
    const trc_system *sys = trc_system_find("rocket_landing");
    trc_gen_settings g;
    if (!sys || trc_gen_settings_default("rocket_landing", &g) != TRC_OK)
        return 1;
    double dry = 0.0;
    for (size_t k = 0; k < sys->nparams; k++)
        if (sys->params[k].name[0] == 'd') /* dry_mass */
            dry = sys->params[k].value;
    snprintf(g.expert, sizeof g.expert, "ilqr");
    const trc_gen_options opt = {.threads = THREADS, .keep_unconverged = 1};
    double wall[99], cpu[99], conv[99], land[99], med[99], iters[99];
    figures f = {0};
    for (int r = 0; r < reps; r++) {
        trc_dataset ds;
        trc_gen_summary sum;
        double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
        if (trc_dataset_generate_with(&g, n, &opt, &ds, &sum) != TRC_OK) {
            fprintf(stderr, "bench_rocket: %s\n", trc_errmsg());
            return 1;
        }
        wall[r] = clock_s(CLOCK_MONOTONIC) - w0;
        cpu[r] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
        conv[r] = 100.0 * (double)(sum.drawn - sum.unconverged) / (double)sum.drawn;
        f = score(&ds, dry);
        land[r] = 100.0 * (double)f.landed / (double)ds.n;
        med[r] = sum.solve_ms_median;
        iters[r] = sum.iters_mean;
        trc_dataset_free(&ds);
    }
    printf("rocket_landing ilqr, %zu landings, %d threads, median of %d run(s):\n", n, THREADS,
           reps);
    printf("  wall %.2f s (target <= %.0f s for this n), CPU %.2f s, %.2f ms per solve (median), "
           "%.1f iterations (mean)\n",
           median(wall, reps), 120.0 * (double)n / 10000.0, median(cpu, reps), median(med, reps),
           median(iters, reps));
    printf("  converged %.2f%%, landed %.2f%% (target >= 99%% each)\n", median(conv, reps),
           median(land, reps));
    printf("  last run: worst at t=T horizontal %.3g m, altitude %.3g m, speed %.3g m/s; "
           "%zu more than 1 cm below ground (min z %.3g m), %zu below dry mass %.0f kg (min mass "
           "%.1f kg), "
           "fuel %.1f kg (mean)\n",
           f.worst_h, f.worst_z, f.worst_v, f.below_ground, f.min_z, f.below_dry, dry, f.min_mass,
           f.fuel);
    return 0;
}
