/* Benchmark of the a273222 networks against the single-latent one (medium, s=2, m=1, T=15):
 * training samples/s at batch 64 (forward + backward, one thread) and batch-1000 inference
 * samples/s through the inference plan trcd serves with (1 and 2 threads), as medians, with each
 * network's multiply-adds per sample, so that the figures compare per multiply-add (issue 11:
 * two_level medium within 20% of single medium; the ratio is printed). Wall and CPU time are
 * both printed (the machine may be shared). Usage: bench_two_level. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trc/cpu.h"
#include "trc/error.h"
#include "trc/model.h"
#include "trc/rng.h"
#include "trc/two_level.h"

enum { TRAIN_B = 64, INFER_B = 1000, REPS = 7 };

static double now(clockid_t c) {
    struct timespec ts;
    clock_gettime(c, &ts);
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

static void check(int rc, const char *what) {
    if (rc) {
        fprintf(stderr, "bench_two_level: %s: %s (%s)\n", what, trc_strerror(rc), trc_errmsg());
        exit(1);
    }
}

/* multiply-adds of one forward per sample: encoder, generator, decoders, embeddings, blocks
 * (attention counted unfused, V then out_proj, as the original computes it) */
static double macs_common(int s, int U, int d, int h, int cycles) {
    double enc = (2.0 * s + 1) * h + (double)h * d, gen = (double)d * h + (double)h * U;
    double dec = ((double)d + U) * h + (double)h * U, emb = (double)U * d;
    return enc + gen + cycles * (dec + emb);
}

static double macs_block(int d, int fc_in_out, int I) {
    return 2.0 * d * d + (double)d * fc_in_out + (double)I * d;
}

typedef struct figures {
    double train_wall, train_cpu, infer_wall, infer_cpu, infer2_wall;
} figures;

/* GMAC per CPU-second of the single-latent network (training, inference), once measured */
static double single_train_gmac, single_infer_gmac;

static void report(const char *name, double macs, const figures *f) {
    double tg = 3.0 * macs * f->train_cpu / 1e9, ig = macs * f->infer_cpu / 1e9;
    printf("%-10s %5.2f MMAC/sample  train b64: %6.0f samples/s (%6.0f per CPU-s, %5.2f GMAC/CPU-s)"
           "  infer b1000 (plan): %6.0f samples/s (%6.0f per CPU-s, %5.2f GMAC/CPU-s), 2 threads "
           "%6.0f samples/s",
           name, macs / 1e6, f->train_wall, f->train_cpu, tg, f->infer_wall, f->infer_cpu, ig,
           f->infer2_wall);
    if (single_train_gmac > 0)
        printf("  | per multiply-add vs single: train %3.0f%%, infer %3.0f%% (target >= 80%%)",
               100.0 * tg / single_train_gmac, 100.0 * ig / single_infer_gmac);
    else
        single_train_gmac = tg, single_infer_gmac = ig;
    printf("\n");
}

/* batch-1000 inference through a plan of m: median samples/s (wall, CPU) on `threads` */
static void infer_rates(const trc_model *m, const float *x0, const float *tg, float *u, int threads,
                        double *wall, double *cpu) {
    trc_infer_plan *plan;
    check(trc_infer_plan_create(m, &plan), "plan");
    check(trc_infer_plan_run(plan, INFER_B, x0, tg, NULL, u, NULL, threads), "plan run"); /* warm */
    double iw[REPS], ic[REPS];
    for (int r = 0; r < REPS; r++) {
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        check(trc_infer_plan_run(plan, INFER_B, x0, tg, NULL, u, NULL, threads), "plan run");
        iw[r] = INFER_B / (now(CLOCK_MONOTONIC) - w0);
        ic[r] = INFER_B / (now(CLOCK_PROCESS_CPUTIME_ID) - c0);
    }
    trc_infer_plan_free(plan);
    *wall = median(iw, REPS);
    if (cpu)
        *cpu = median(ic, REPS);
}

int main(void) {
    trc_rng rng;
    trc_rng_seed(&rng, 1);
    float *x0 = malloc(INFER_B * 2 * sizeof *x0), *tg = malloc(INFER_B * 2 * sizeof *tg);
    float *ue = malloc(INFER_B * 15 * sizeof *ue), *u = malloc(INFER_B * 15 * sizeof *u);
    if (!x0 || !tg || !ue || !u)
        return 1;
    for (int i = 0; i < INFER_B * 2; i++)
        x0[i] = (float)trc_rng_range(&rng, -2, 2), tg[i] = (float)trc_rng_range(&rng, -2, 2);
    for (int i = 0; i < INFER_B * 15; i++)
        ue[i] = (float)trc_rng_range(&rng, -1, 1);
    double tw[REPS], tc[REPS];
    figures f;

    /* single-latent medium: K = n = 3, 3 blocks; the training backward covers every cycle */
    trc_model_config sc;
    trc_model sm;
    check(trc_model_config_preset("medium", 2, 1, 15, 4.0f, &sc), "preset");
    check(trc_model_create(&sc, &sm), "create");
    check(trc_model_init(&sm, 1), "init");
    trc_trainer *st;
    check(trc_trainer_create(&sm, TRAIN_B, &st), "trainer");
    for (int r = 0; r < REPS; r++) {
        float loss;
        double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        for (int k = 0; k < 10; k++) {
            check(trc_trainer_forward(st, TRAIN_B, x0, tg, NULL, ue, NULL, &loss), "forward");
            check(trc_trainer_backward(st), "backward");
        }
        tw[r] = 10.0 * TRAIN_B / (now(CLOCK_MONOTONIC) - w0);
        tc[r] = 10.0 * TRAIN_B / (now(CLOCK_PROCESS_CPUTIME_ID) - c0);
    }
    f = (figures){median(tw, REPS), median(tc, REPS), 0, 0, 0};
    infer_rates(&sm, x0, tg, u, 1, &f.infer_wall, &f.infer_cpu);
    infer_rates(&sm, x0, tg, u, 2, &f.infer2_wall, NULL);
    double smacs = macs_common(2, 15, 128, 256, 3) + 27 * macs_block(128, 256, 256);
    printf("medium, s=2 m=1 T=15; training on one thread (GMAC counts forward x3: forward + "
           "backward), inference through the plan on 1 thread, then 2; kernels: %s\n",
           trc_isa_name(trc_isa_active()));
    report("single", smacs, &f);
    trc_trainer_free(st);
    trc_model_free(&sm);

    const char *archs[] = {"two_level", "trm_style"};
    for (int a = 0; a < 2; a++) {
        trc_tl_config c;
        trc_tl_model m;
        check(trc_tl_config_preset(archs[a], "medium", 2, 1, 15, 4.0f, &c), "preset");
        check(trc_tl_create(&c, &m), "create");
        check(trc_tl_init(&m, 1), "init");
        trc_tl_trainer *tr;
        check(trc_tl_trainer_create(&m, TRAIN_B, &tr), "trainer");
        for (int r = 0; r < REPS; r++) {
            float loss;
            double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
            for (int k = 0; k < 10; k++)
                check(trc_tl_trainer_step_mse(tr, TRAIN_B, x0, tg, ue, &loss), "step");
            tw[r] = 10.0 * TRAIN_B / (now(CLOCK_MONOTONIC) - w0);
            tc[r] = 10.0 * TRAIN_B / (now(CLOCK_PROCESS_CPUTIME_ID) - c0);
        }
        f = (figures){median(tw, REPS), median(tc, REPS), 0, 0, 0};
        /* inference as trcd runs it: the same network as a trc_model, through its plan */
        trc_model_config mc;
        trc_model mm;
        check(trc_model_config_preset_arch(archs[a], "medium", 2, 1, 15, 4.0f, &mc), "preset");
        check(trc_model_create(&mc, &mm), "create");
        check(trc_model_init(&mm, 1), "init");
        infer_rates(&mm, x0, tg, u, 1, &f.infer_wall, &f.infer_cpu);
        infer_rates(&mm, x0, tg, u, 2, &f.infer2_wall, NULL);
        trc_model_free(&mm);
        int apps = c.H * (c.L + 1) * c.layers;
        int fo = c.kind == TRC_TL_RMS_SWIGLU ? 2 * c.ffn : c.ffn;
        double macs = macs_common(2, 15, c.d, c.h, c.H) + apps * macs_block(c.d, fo, c.ffn);
        report(archs[a], macs, &f);
        trc_tl_trainer_free(tr);
        trc_tl_free(&m);
    }
    free(x0), free(tg), free(ue), free(u);
    return 0;
}
