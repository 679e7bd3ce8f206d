/* Benchmark of the TRC network (medium, s=2, m=1, T=15): training samples/s at batch 64
 * (forward + backward), single-sample inference latency, batch-1000 inference throughput, and
 * the peak RSS of a training loop; for 1 and 2 OpenBLAS threads. Prints medians and the ratio
 * to the PyTorch peers quoted in issue 3. Usage: bench_model. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "trc/error.h"
#include "trc/model.h"
#include "trc/rng.h"

/* Peers, same kind of machine, PyTorch 1.13 CPU, one thread (issue 3). */
#define ORIG_TRAIN 815.0
#define LEAN_TRAIN 1076.0
#define ORIG_LAT_MS 11.4
#define LEAN_LAT_MS 5.3
#define ORIG_B1000 5900.0
#define LEAN_B1000 7300.0

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time of the whole process: on a shared machine wall time includes waiting for a core,
 * so samples per CPU-second is printed beside it (what an idle core would give, roughly). */
static double cpu_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void fill(trc_rng *rng, float *v, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++)
        v[i] = (float)trc_rng_range(rng, lo, hi);
}

static int check(int rc, const char *what) {
    if (rc) {
        fprintf(stderr, "bench_model: %s: %s (%s)\n", what, trc_strerror(rc), trc_errmsg());
        exit(1);
    }
    return rc;
}

int main(int argc, char **argv) {
    (void)argc;
    (void)argv;
    trc_model_config cfg;
    trc_model model;
    check(trc_model_config_preset("medium", 2, 1, 15, 4.0f, &cfg), "config");
    check(trc_model_create(&cfg, &model), "create");
    check(trc_model_init(&model, 42), "init");
    size_t U = 15, NMAX = 1000;
    trc_rng rng;
    trc_rng_seed(&rng, 7);
    float *x0 = malloc(NMAX * 2 * sizeof *x0), *tg = malloc(NMAX * 2 * sizeof *tg);
    float *ue = malloc(NMAX * U * sizeof *ue), *u = malloc(NMAX * U * sizeof *u);
    if (!x0 || !tg || !ue || !u)
        return 1;
    fill(&rng, x0, NMAX * 2, -2, 2);
    fill(&rng, tg, NMAX * 2, -0.5, 0.5);
    fill(&rng, ue, NMAX * U, -4, 4);
    printf("medium model, %zu parameters, K=%d n=%d\n", model.num_params, cfg.K, cfg.n);

    /* training first, so that ru_maxrss reflects a training loop */
    trc_trainer *tr;
    check(trc_trainer_create(&model, 64, &tr), "trainer");
    int threads_list[] = {1, 2};
    for (int ti = 0; ti < 2; ti++) {
        int threads = threads_list[ti];
        openblas_set_num_threads(1); /* the model's own threads split the work */
        check(trc_trainer_set_threads(tr, threads), "threads");
        enum { REPS = 15, STEPS = 10 };
        double train[REPS], train_cpu[REPS];
        float loss;
        for (int w = 0; w < 5; w++) { /* warm-up */
            check(trc_trainer_forward(tr, 64, x0, tg, ue, NULL, &loss), "forward");
            check(trc_trainer_backward(tr), "backward");
        }
        for (int r = 0; r < REPS; r++) {
            double t0 = now(), c0 = cpu_now();
            for (int s = 0; s < STEPS; s++) {
                size_t off = (size_t)((r * STEPS + s) % 15) * 64;
                check(trc_trainer_forward(tr, 64, x0 + 2 * off, tg + 2 * off, ue + U * off, NULL,
                                          &loss),
                      "forward");
                check(trc_trainer_backward(tr), "backward");
            }
            train[r] = STEPS * 64 / (now() - t0);
            train_cpu[r] = STEPS * 64 / (cpu_now() - c0);
        }
        double tps = median(train, REPS), tps_cpu = median(train_cpu, REPS);
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);

        enum { LAT_N = 2001, B1K_N = 15 };
        static double lat[LAT_N];
        for (int w = 0; w < 50; w++)
            check(trc_model_infer(&model, 1, x0, tg, u, NULL), "infer");
        for (int r = 0; r < LAT_N; r++) {
            size_t off = (size_t)r % NMAX;
            double t0 = now();
            check(trc_model_infer(&model, 1, x0 + 2 * off, tg + 2 * off, u, NULL), "infer");
            lat[r] = (now() - t0) * 1e3;
        }
        double lat_ms = median(lat, LAT_N);
        double b1k[B1K_N], b1k_cpu[B1K_N];
        check(trc_model_infer_mt(&model, NMAX, x0, tg, u, NULL, threads), "infer");
        for (int r = 0; r < B1K_N; r++) {
            double t0 = now(), c0 = cpu_now();
            check(trc_model_infer_mt(&model, NMAX, x0, tg, u, NULL, threads), "infer");
            b1k[r] = (double)NMAX / (now() - t0);
            b1k_cpu[r] = (double)NMAX / (cpu_now() - c0);
        }
        double b1k_sps = median(b1k, B1K_N), b1k_cpu_sps = median(b1k_cpu, B1K_N);

        printf("-- model threads: %d (OpenBLAS: %d per caller)\n", threads,
               openblas_get_num_threads());
        printf("train  medium batch 64 : %8.0f samples/s   (x%.1f original %.0f, x%.1f lean %.0f; "
               "target >= 4000)\n",
               tps, tps / ORIG_TRAIN, ORIG_TRAIN, tps / LEAN_TRAIN, LEAN_TRAIN);
        printf("       (%.0f samples per CPU-second)\n", tps_cpu);
        printf("infer  medium 1 sample : %8.4f ms median  (x%.0f faster than original %.1f ms, "
               "x%.0f lean %.1f ms; target <= 0.3)\n",
               lat_ms, ORIG_LAT_MS / lat_ms, ORIG_LAT_MS, LEAN_LAT_MS / lat_ms, LEAN_LAT_MS);
        printf("infer  medium batch 1000: %8.0f samples/s   (x%.1f original %.0f, x%.1f lean %.0f; "
               "target >= 15000)\n",
               b1k_sps, b1k_sps / ORIG_B1000, ORIG_B1000, b1k_sps / LEAN_B1000, LEAN_B1000);
        printf("       (%.0f samples per CPU-second)\n", b1k_cpu_sps);
        printf("peak RSS after training loop: %.1f MB (target < 64)\n",
               (double)ru.ru_maxrss / 1024.0);
    }
    trc_trainer_free(tr);

    /* The inference plan trcd serves with: weights packed once per loaded model. */
    trc_infer_plan *plan;
    check(trc_infer_plan_create(&model, &plan), "plan");
    enum { PLAN_LAT_N = 2001, PLAN_B1K_N = 15 };
    static double plat[PLAN_LAT_N];
    for (int w = 0; w < 50; w++)
        check(trc_infer_plan_run(plan, 1, x0, tg, u, NULL, 1), "plan run");
    for (int r = 0; r < PLAN_LAT_N; r++) {
        size_t off = (size_t)r % NMAX;
        double t0 = now();
        check(trc_infer_plan_run(plan, 1, x0 + 2 * off, tg + 2 * off, u, NULL, 1), "plan run");
        plat[r] = (now() - t0) * 1e3;
    }
    double plat_ms = median(plat, PLAN_LAT_N);
    printf("-- inference plan (packed weights, as trcd serves)\n");
    printf("infer  medium 1 sample : %8.4f ms median  (x%.0f faster than original %.1f ms, "
           "x%.0f lean %.1f ms; target <= 0.3)\n",
           plat_ms, ORIG_LAT_MS / plat_ms, ORIG_LAT_MS, LEAN_LAT_MS / plat_ms, LEAN_LAT_MS);
    for (int threads = 1; threads <= 2; threads++) {
        double pb[PLAN_B1K_N];
        check(trc_infer_plan_run(plan, NMAX, x0, tg, u, NULL, threads), "plan run");
        for (int r = 0; r < PLAN_B1K_N; r++) {
            double t0 = now();
            check(trc_infer_plan_run(plan, NMAX, x0, tg, u, NULL, threads), "plan run");
            pb[r] = (double)NMAX / (now() - t0);
        }
        double sps = median(pb, PLAN_B1K_N);
        printf("infer  medium batch 1000, %d thread%s: %8.0f samples/s   (x%.1f original %.0f, "
               "x%.1f lean %.0f; target >= 15000)\n",
               threads, threads > 1 ? "s" : "", sps, sps / ORIG_B1000, ORIG_B1000, sps / LEAN_B1000,
               LEAN_B1000);
    }
    trc_infer_plan_free(plan);
    trc_model_free(&model);
    free(x0);
    free(tg);
    free(ue);
    free(u);
    return 0;
}
