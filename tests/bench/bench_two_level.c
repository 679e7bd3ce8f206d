/* Benchmark of the a273222 networks against the single-latent one (medium, s=2, m=1, T=15, one
 * thread): training samples/s at batch 64 (forward + backward) and batch-1000 inference
 * samples/s, as medians, with each network's multiply-adds per sample, so that the figures
 * compare per multiply-add (issue 11: two_level medium within 20% of single medium). Wall and
 * CPU time are both printed (the machine may be shared). Usage: bench_two_level. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    double train_wall, train_cpu, infer_wall, infer_cpu;
} figures;

static void report(const char *name, double macs, const figures *f) {
    printf("%-18s %6.2f MMAC/sample  train b64: %7.0f samples/s (%7.0f per CPU-s, %5.2f GMAC/CPU-s)"
           "  infer b1000: %7.0f samples/s (%7.0f per CPU-s, %5.2f GMAC/CPU-s)\n",
           name, macs / 1e6, f->train_wall, f->train_cpu, 3.0 * macs * f->train_cpu / 1e9,
           f->infer_wall, f->infer_cpu, macs * f->infer_cpu / 1e9);
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
    double tw[REPS], tc[REPS], iw[REPS], ic[REPS];
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
            check(trc_trainer_forward(st, TRAIN_B, x0, tg, ue, NULL, &loss), "forward");
            check(trc_trainer_backward(st), "backward");
        }
        tw[r] = 10.0 * TRAIN_B / (now(CLOCK_MONOTONIC) - w0);
        tc[r] = 10.0 * TRAIN_B / (now(CLOCK_PROCESS_CPUTIME_ID) - c0);
        w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
        check(trc_model_infer(&sm, INFER_B, x0, tg, u, NULL), "infer");
        iw[r] = INFER_B / (now(CLOCK_MONOTONIC) - w0);
        ic[r] = INFER_B / (now(CLOCK_PROCESS_CPUTIME_ID) - c0);
    }
    f = (figures){median(tw, REPS), median(tc, REPS), median(iw, REPS), median(ic, REPS)};
    double smacs = macs_common(2, 15, 128, 256, 3) + 27 * macs_block(128, 256, 256);
    printf("medium, s=2 m=1 T=15, one thread; train GMAC counts forward x3 (forward + backward)\n");
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
            w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
            check(trc_tl_infer(&m, NULL, INFER_B, x0, tg, u, NULL, NULL), "infer");
            iw[r] = INFER_B / (now(CLOCK_MONOTONIC) - w0);
            ic[r] = INFER_B / (now(CLOCK_PROCESS_CPUTIME_ID) - c0);
        }
        f = (figures){median(tw, REPS), median(tc, REPS), median(iw, REPS), median(ic, REPS)};
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
