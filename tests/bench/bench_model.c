/* Benchmark of the TRC network (medium, s=2, m=1, T=15, K=n=3) against this machine, measured
 * in one run: the CPU's FP32 FMA peak (256- and 512-bit), training at batch 64 (forward +
 * backward), single-sample latency and batch-1000 inference of the inference plan trcd serves,
 * on 1 and 2 threads; every rate as samples/s (wall), samples per CPU-second and a fraction of
 * the active path's peak; then the lean PyTorch reference (tests/bench/peer_torch.py) measured
 * now on the same cores, 1 then 2 threads, and the ratios. Nothing is typed in: a peer that
 * cannot run prints "not measured". Usage: bench_model [path/to/peer_torch.py]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "bench_common.h"
#include "trc/error.h"
#include "trc/model.h"
#include "trc/rng.h"

static void fill(trc_rng *rng, float *v, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++)
        v[i] = (float)trc_rng_range(rng, lo, hi);
}

static void check(int rc, const char *what) {
    if (rc) {
        fprintf(stderr, "bench_model: %s: %s (%s)\n", what, trc_strerror(rc), trc_errmsg());
        exit(1);
    }
}

/* Multiply-adds of one sample's forward pass (attention fused: one d x d product per block
 * application), from the configuration. */
static double forward_macs(const trc_model_config *c) {
    double s = c->s, d = c->d, h = c->h, U = (double)c->T * c->m;
    double mlp_enc = (2 * s + 1) * h + h * d, mlp_gen = d * h + h * U;
    double block = d * d + d * h + h * d, cycle = U * d + c->n * c->blocks * block;
    double dec = (d + U) * h + h * U;
    return mlp_enc + mlp_gen + c->K * (cycle + dec);
}

typedef struct rate {
    double wall, cpu; /* samples/s, samples per CPU-second (medians) */
    double frac; /* fraction of the FMA peak at the moment (median over repetitions; 0: none) */
} rate;

/* Median rates of reps runs of fn(arg) on `threads` threads, each `count` samples of `flop` each.
 * The peak is sampled before and after every run (bench_common.h); a run's fraction is its GFLOP
 * per CPU-second (one thread) or per wall-second and core (more: issue 13's targets for two
 * threads are wall rates) over the mean of the two samples around it. */
static rate measure(void (*fn)(void *), void *arg, double count, int reps, double flop,
                    int threads) {
    double w[31], c[31], f[31];
    fn(arg);
    bench_peak_sample();
    for (int r = 0; r < reps; r++) {
        double before = bench_peak_moment();
        double t0 = bench_now(), c0 = bench_cpu();
        fn(arg);
        w[r] = count / (bench_now() - t0);
        c[r] = count / (bench_cpu() - c0);
        bench_peak_sample(); /* outside the timed part */
        double moment = 0.5 * (before + bench_peak_moment());
        double per_core = threads > 1 ? w[r] / threads : c[r];
        f[r] = moment > 0 ? per_core * flop * 1e-9 / moment : 0;
    }
    return (rate){bench_median(w, reps), bench_median(c, reps), bench_median(f, reps)};
}

typedef struct ctx {
    trc_trainer *tr;
    trc_infer_plan *plan;
    float *x0, *tg, *ue, *u;
    size_t U, B;
    int threads, step;
} ctx;

static void train_steps(void *p) { /* 10 steps of batch 64 */
    ctx *c = p;
    for (int s = 0; s < 10; s++, c->step++) {
        size_t off = (size_t)(c->step % 15) * 64;
        float loss;
        check(trc_trainer_forward(c->tr, 64, c->x0 + 2 * off, c->tg + 2 * off, NULL,
                                  c->ue + c->U * off, NULL, &loss),
              "forward");
        check(trc_trainer_backward(c->tr), "backward");
    }
}

static void plan_batch(void *p) {
    ctx *c = p;
    check(trc_infer_plan_run(c->plan, c->B, c->x0, c->tg, NULL, c->u, NULL, c->threads),
          "plan run");
}

/* "x% of peak" for a rate in samples per CPU-second */
/* Issue 13's targets were set on a Zen 5 core whose 512-bit FMA peak is 252 GFLOP/s (the issue's
 * table); on another core a target means the same fraction of that core's peak. */
#define ZEN5_PEAK 252.0

static void print_rate(const char *what, rate r, double flop_per_sample, double peak, double target,
                       const char *target_text, int wall) {
    double g = r.cpu * flop_per_sample * 1e-9;
    printf("%-40s %9.0f samples/s  %9.0f per CPU-second  %6.1f GFLOP/s", what, r.wall, r.cpu, g);
    if (peak > 0)
        printf(" = %4.1f%% of the run's best peak", 100.0 * g / peak);
    printf("   (target %s)\n", target_text);
    if (r.frac > 0) {
        double want = target * flop_per_sample * 1e-9 / ZEN5_PEAK;
        printf("%-40s %.1f%% of the peak at the moment (%s; median of the runs); target %.1f%% "
               "(%.0f per core at Zen 5's %.0f GFLOP/s): %s\n",
               "", 100.0 * r.frac, wall ? "wall rate per core" : "per CPU-second", 100.0 * want,
               target, ZEN5_PEAK, r.frac >= want ? "met" : "NOT met");
    }
}

/* The peer's figures for one thread count, parsed from peer_torch.py's output. */
typedef struct peer {
    int ok;
    rate train, b1k;
    double lat_ms;
    char info[96];
} peer;

static peer run_peer(const char *script, int threads) {
    peer p = {0};
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "OPENBLAS_NUM_THREADS=%d OMP_NUM_THREADS=%d /usr/bin/python3 %s "
             "--threads %d 2>/dev/null",
             threads, threads, script, threads);
    FILE *f = popen(cmd, "r");
    if (!f)
        return p;
    char line[256];
    int got = 0;
    while (fgets(line, sizeof line, f)) {
        got += sscanf(line, "train_b64 %lf %lf", &p.train.wall, &p.train.cpu) == 2;
        got += sscanf(line, "latency_ms %lf", &p.lat_ms) == 1;
        got += sscanf(line, "infer_b1000 %lf %lf", &p.b1k.wall, &p.b1k.cpu) == 2;
        if (strncmp(line, "torch ", 6) == 0)
            snprintf(p.info, sizeof p.info, "%.*s", (int)strcspn(line, "\n"), line);
    }
    p.ok = pclose(f) == 0 && got == 3;
    return p;
}

/* "x / y (xN)" of a TRC and peer rate for the table, or "not measured" */
static void peer_cell(char *out, size_t n, const peer *p, double trc, double peer_rate) {
    if (p->ok && peer_rate > 0)
        snprintf(out, n, "%.0f (TRC x%.1f)", peer_rate, trc / peer_rate);
    else
        snprintf(out, n, "not measured");
}

/* The README's Benchmarks table as markdown rows, ready to paste. */
/* bf16 weights' single-sample figures (lat_ms 0: not measured, why says why) */
typedef struct bf16_figures {
    double lat_ms, lat32_ms, max_abs, mean_abs;
    const char *why;
} bf16_figures;

static void readme_table(const trc_model_config *cfg, const trc_model *model, const rate *train,
                         double lat_ms, const rate *b1k, const peer *peers, double fwd, double trn,
                         double rss_mb, const bf16_figures *bf) {
    char cpu[128], c1[64], c2[64], c3[64];
    bench_cpu_model(cpu, sizeof cpu);
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) != 3)
        load[0] = -1;
    printf("-- README table (markdown; CPU %s, kernels %s, load average %.1f at the end; "
           "medians)\n",
           cpu, trc_isa_name(trc_isa_active()), load[0]);
    printf("| %s model (%zu parameters, %.2f M multiply-adds per sample forward) | TRC | %% of the "
           "path's FMA peak at the moment (per CPU-second) | lean PyTorch, same run | target "
           "(as a %% of this core's peak: issue 13's figure at Zen 5's %.0f GFLOP/s) |\n",
           cfg->size, model->num_params, fwd / 2 * 1e-6, ZEN5_PEAK);
    printf("|---|---|---|---|---|\n");
    const peer *p1 = &peers[1];
    peer_cell(c1, sizeof c1, p1, train[1].cpu, p1->train.cpu);
    printf("| training, batch 64, 1 thread | %.0f samples per CPU-second (%.0f/s wall) | %.0f%% | "
           "%s | >= 10,000 (%.0f%%) |\n",
           train[1].cpu, train[1].wall, 100.0 * train[1].frac, c1,
           100.0 * 10000 * trn * 1e-9 / ZEN5_PEAK);
    printf("| training, batch 64, 2 threads | %.0f samples/s wall (%.0f per CPU-second) | | | >= "
           "17,000 |\n",
           train[2].wall, train[2].cpu);
    if (p1->ok && p1->lat_ms > 0)
        snprintf(c2, sizeof c2, "%.3f ms (TRC x%.0f)", p1->lat_ms, p1->lat_ms / lat_ms);
    else
        snprintf(c2, sizeof c2, "not measured");
    printf(
        "| inference plan (what trcd serves), 1 sample | %.4f ms (wall, median) | | %s | <= 0.06 "
        "ms |\n",
        lat_ms, c2);
    if (bf->lat_ms > 0)
        printf(
            "| the same with bf16 weights (`--precision bf16`) | %.4f ms (fp32 %.4f interleaved, "
            "x%.2f) | controls vs fp32: max %.4f, mean %.4f (bound %g) | | explicit only |\n",
            bf->lat_ms, bf->lat32_ms, bf->lat32_ms / bf->lat_ms, bf->max_abs, bf->mean_abs,
            (double)cfg->bound);
    else
        printf("| the same with bf16 weights | not measured: %s | | | explicit only |\n", bf->why);
    peer_cell(c3, sizeof c3, p1, b1k[1].cpu, p1->b1k.cpu);
    printf("| inference plan, batch 1,000, 1 thread | %.0f samples per CPU-second (%.0f/s wall) | "
           "%.0f%% | %s | >= 40,000 (%.0f%%) |\n",
           b1k[1].cpu, b1k[1].wall, 100.0 * b1k[1].frac, c3,
           100.0 * 40000 * fwd * 1e-9 / ZEN5_PEAK);
    printf("| inference plan, batch 1,000, 2 threads | %.0f samples/s wall (%.0f per CPU-second) | "
           "| | >= 75,000 |\n",
           b1k[2].wall, b1k[2].cpu);
    printf("| peak memory of a training run | %.1f MB | | | < 64 MB |\n", rss_mb);
}

int main(int argc, char **argv) {
    const char *peer_script = argc > 1 ? argv[1] : "tests/bench/peer_torch.py";
    setvbuf(stdout, NULL, _IOLBF, 0); /* figures appear as they are measured */
    double p256, p512;
    bench_header("bench_model", &p256, &p512);
    trc_model_config cfg;
    trc_model model;
    check(trc_model_config_preset("medium", 2, 1, 15, 4.0f, &cfg), "config");
    check(trc_model_create(&cfg, &model), "create");
    check(trc_model_init(&model, 42), "init");
    size_t U = 15, NMAX = 1000;
    trc_rng rng;
    trc_rng_seed(&rng, 7);
    ctx c = {0};
    c.U = U;
    c.x0 = malloc(NMAX * 2 * sizeof *c.x0);
    c.tg = malloc(NMAX * 2 * sizeof *c.tg);
    c.ue = malloc(NMAX * U * sizeof *c.ue);
    c.u = malloc(NMAX * U * sizeof *c.u);
    if (!c.x0 || !c.tg || !c.ue || !c.u)
        return 1;
    fill(&rng, c.x0, NMAX * 2, -2, 2);
    fill(&rng, c.tg, NMAX * 2, -0.5, 0.5);
    fill(&rng, c.ue, NMAX * U, -4, 4);
    double macs = forward_macs(&cfg), fwd = 2 * macs, trn = 3 * fwd;
    printf("medium model, %zu parameters, K=%d n=%d: %.2f M multiply-adds per sample forward "
           "(training ~3x)\n",
           model.num_params, cfg.K, cfg.n, macs * 1e-6);

    /* training first, so that ru_maxrss reflects a training loop */
    check(trc_trainer_create(&model, 64, &c.tr), "trainer");
    rate train[3];
    for (int t = 1; t <= 2; t++) {
        check(trc_trainer_set_threads(c.tr, t), "threads");
        for (int w = 0; w < 2; w++)
            train_steps(&c);
        train[t] = measure(train_steps, &c, 640, 15, trn, t);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    trc_trainer_free(c.tr);

    check(trc_infer_plan_create(&model, &c.plan), "plan");
    enum { LAT_N = 2001 };
    static double lat[LAT_N];
    for (int w = 0; w < 50; w++)
        check(trc_infer_plan_run(c.plan, 1, c.x0, c.tg, NULL, c.u, NULL, 1), "plan run");
    for (int r = 0; r < LAT_N; r++) {
        size_t off = (size_t)r % NMAX;
        double t0 = bench_now();
        check(trc_infer_plan_run(c.plan, 1, c.x0 + 2 * off, c.tg + 2 * off, NULL, c.u, NULL, 1),
              "plan run");
        lat[r] = (bench_now() - t0) * 1e3;
    }
    double lat_ms = bench_median(lat, LAT_N);
    /* the same with bf16 weights (an explicit setting, where the CPU has AVX512_BF16): latency
     * measured interleaved with fp32 in this run, and how far its controls are from fp32's */
    const char *bf16_why = NULL;
    double lat16_ms = 0, lat32b_ms = 0, bf16_max = 0, bf16_mean = 0;
    trc_infer_plan *p16 = NULL;
    if (trc_precision_available(TRC_PRECISION_BF16, &bf16_why) &&
        trc_infer_plan_create_precision(&model, TRC_PRECISION_BF16, &p16) == TRC_OK) {
        static double l16[LAT_N];
        for (int w = 0; w < 50; w++)
            check(trc_infer_plan_run(p16, 1, c.x0, c.tg, NULL, c.u, NULL, 1), "bf16 run");
        for (int r = 0; r < LAT_N; r++) {
            size_t off = (size_t)r % NMAX;
            double t0 = bench_now();
            check(trc_infer_plan_run(c.plan, 1, c.x0 + 2 * off, c.tg + 2 * off, NULL, c.u, NULL, 1),
                  "plan run");
            double t1 = bench_now();
            check(trc_infer_plan_run(p16, 1, c.x0 + 2 * off, c.tg + 2 * off, NULL, c.u, NULL, 1),
                  "bf16 run");
            lat[r] = (t1 - t0) * 1e3;
            l16[r] = (bench_now() - t1) * 1e3;
        }
        lat32b_ms = bench_median(lat, LAT_N);
        lat16_ms = bench_median(l16, LAT_N);
        float *u32 = malloc(NMAX * U * sizeof *u32);
        if (!u32)
            return 1;
        check(trc_infer_plan_run(c.plan, NMAX, c.x0, c.tg, NULL, u32, NULL, 1), "plan run");
        check(trc_infer_plan_run(p16, NMAX, c.x0, c.tg, NULL, c.u, NULL, 1), "bf16 run");
        for (size_t i = 0; i < NMAX * U; i++) {
            double dd = fabs((double)c.u[i] - u32[i]);
            bf16_max = dd > bf16_max ? dd : bf16_max;
            bf16_mean += dd / (double)(NMAX * U);
        }
        free(u32);
        trc_infer_plan_free(p16);
    }
    rate b1k[3];
    c.B = NMAX;
    for (int t = 1; t <= 2; t++) {
        c.threads = t;
        b1k[t] = measure(plan_batch, &c, (double)NMAX, 15, fwd, t);
    }
    trc_infer_plan_free(c.plan);

    /* the peak: the best sample of the whole run (bench_common.h) */
    double peak = bench_path_peak(bench_fma_peak(256), bench_fma_peak(512));
    double top = train[1].cpu * trn > b1k[1].cpu * fwd ? train[1].cpu * trn : b1k[1].cpu * fwd;
    bench_peak_check(peak > 0 ? top * 1e-9 / peak : 0.0);
    printf("-- TRC (rates per CPU-second are per core; %% of the %s path's FMA peak)\n",
           trc_isa_name(trc_isa_active()));
    print_rate("train  batch 64, 1 thread", train[1], trn, peak, 10000, ">= 10,000 per core", 0);
    print_rate("train  batch 64, 2 threads", train[2], trn, peak, 8500, ">= 17,000 on 2 threads",
               1);
    printf("%-40s %9.4f ms median of %d   (target <= 0.06 ms)\n",
           "infer  1 sample (plan, as trcd serves)", lat_ms, LAT_N);
    if (lat16_ms > 0)
        printf("%-40s %9.4f ms median of %d, fp32 %.4f ms interleaved (x%.2f); controls vs fp32 "
               "on %zu rows: max |du| %.4f, mean %.4f (bound %g)\n",
               "infer  1 sample, bf16 weights", lat16_ms, LAT_N, lat32b_ms, lat32b_ms / lat16_ms,
               NMAX, bf16_max, bf16_mean, (double)cfg.bound);
    else
        printf("%-40s not measured: %s\n", "infer  1 sample, bf16 weights", bf16_why);
    print_rate("infer  batch 1000, 1 thread (plan)", b1k[1], fwd, peak, 40000, ">= 40,000 per core",
               0);
    print_rate("infer  batch 1000, 2 threads (plan)", b1k[2], fwd, peak, 37500,
               ">= 75,000 on 2 threads", 1);
    printf("peak RSS after the training loop: %.1f MB (target < 64)\n",
           (double)ru.ru_maxrss / 1024.0);

    printf("-- lean PyTorch reference (%s), measured now on the same cores\n", peer_script);
    peer peers[3] = {{0}};
    for (int t = 1; t <= 2; t++) {
        peer p = peers[t] = run_peer(peer_script, t);
        if (!p.ok) {
            printf("%d thread%s: not measured (no python3 with torch, or no %s)\n", t,
                   t > 1 ? "s" : "", peer_script);
            continue;
        }
        printf("%d thread%s (%s): train %.0f samples/s (%.0f per CPU-second), 1 sample %.3f ms, "
               "batch 1000 %.0f samples/s (%.0f per CPU-second)\n",
               t, t > 1 ? "s" : "", p.info, p.train.wall, p.train.cpu, p.lat_ms, p.b1k.wall,
               p.b1k.cpu);
        printf("   TRC / peer on %d thread%s: training x%.1f (per CPU-second x%.1f; target x3), "
               "1 sample x%.0f (target x15), batch 1000 x%.1f (per CPU-second x%.1f; target "
               "x2.5)\n",
               t, t > 1 ? "s" : "", train[t].wall / p.train.wall, train[t].cpu / p.train.cpu,
               p.lat_ms / lat_ms, b1k[t].wall / p.b1k.wall, b1k[t].cpu / p.b1k.cpu);
    }
    bf16_figures bf = {lat16_ms, lat32b_ms, bf16_max, bf16_mean, bf16_why};
    readme_table(&cfg, &model, train, lat_ms, b1k, peers, fwd, trn, (double)ru.ru_maxrss / 1024.0,
                 &bf);
    trc_model_free(&model);
    free(c.x0);
    free(c.tg);
    free(c.ue);
    free(c.u);
    return 0;
}
