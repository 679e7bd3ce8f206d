/* Datasets in memory and their generation: uniform box sampling with one trc_rng stream, one
 * expert plan for the whole set, trajectories by the system's own step function, in chunks
 * that check a cancel flag (the same bytes whatever the chunk size). The .npz form lives in
 * dataset_io.c. */
#include "trc/dataset.h"
#include "base/parallel.h"
#include "trc/settings.h"
#include "trc/error.h"
#include "trc/expert.h"
#include "trc/rng.h"
#include "trc/system.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_SAMPLES 100000000u /* 1e8 samples; beyond that memory, not the math, is the limit */
#define DEFAULT_CHUNK 16384    /* samples between cancel checks */

void trc_dataset_free(trc_dataset *ds) {
    if (!ds)
        return;
    free(ds->initial_states);
    free(ds->target_states);
    free(ds->control_sequences);
    free(ds->state_trajectories);
    free(ds->costs);
    free(ds->solve_stats);
    free(ds->solve_ms);
    free(ds->steps_left);
    memset(ds, 0, sizeof *ds);
}

/* a * b * c * sizeof(float) without overflow, or 0 when it would overflow. */
static size_t bytes3(size_t a, size_t b, size_t c) {
    if (b && a > SIZE_MAX / b)
        return 0;
    size_t ab = a * b;
    if (c && ab > SIZE_MAX / c)
        return 0;
    size_t abc = ab * c;
    if (abc > SIZE_MAX / sizeof(float))
        return 0;
    return abc * sizeof(float);
}

int trc_dataset_alloc(trc_dataset *ds, size_t n, int s, int m, int T) {
    memset(ds, 0, sizeof *ds);
    if (n == 0 || s <= 0 || m <= 0 || T <= 0)
        return trc_fail(TRC_EINVAL, "dataset: sizes must be positive (n=%zu, s=%d, m=%d, T=%d)", n,
                        s, m, T);
    size_t bs = bytes3(n, (size_t)s, 1), bu = bytes3(n, (size_t)T, (size_t)m),
           bx = bytes3(n, (size_t)T + 1, (size_t)s), bc = bytes3(n, 1, 1);
    if (!bs || !bu || !bx || !bc)
        return trc_fail(TRC_EINVAL, "dataset: %zu samples are too many", n);
    ds->initial_states = calloc(1, bs);
    ds->target_states = calloc(1, bs);
    ds->control_sequences = calloc(1, bu);
    ds->state_trajectories = calloc(1, bx);
    ds->costs = calloc(1, bc);
    if (!ds->initial_states || !ds->target_states || !ds->control_sequences ||
        !ds->state_trajectories || !ds->costs) {
        trc_dataset_free(ds);
        return trc_fail(TRC_ENOMEM, "dataset: cannot allocate %zu samples", n);
    }
    ds->n = n;
    ds->s = s;
    ds->m = m;
    ds->T = T;
    return TRC_OK;
}

/* The generate option table's defaults, the system's horizon, dt, bound and box. */
int trc_gen_settings_default(const char *system, trc_gen_settings *g) {
    trc_gen_request req;
    int rc = system ? trc_gen_request_default(system, &req) : TRC_ENOTFOUND;
    if (rc) {
        memset(g, 0, sizeof *g);
        return rc;
    }
    *g = req.settings; /* expert_params all 0: the defaults */
    return TRC_OK;
}

int trc_gen_settings_set_param(trc_gen_settings *g, const char *name, double value) {
    const trc_expert *e = trc_expert_find(g->expert);
    if (!e)
        return TRC_ENOTFOUND;
    const trc_option *o = trc_expert_param_find(e, name);
    if (o) {
        g->expert_params[o->offset / sizeof(double)] = value;
        return TRC_OK;
    }
    char have[256] = "";
    size_t len = 0, count = 0;
    for (size_t i = 0; i < trc_expert_count(); i++)
        if (trc_expert_param_find(trc_expert_at(i), name) && len < sizeof have)
            count++;
    for (size_t i = 0, k = 0; i < trc_expert_count() && len < sizeof have; i++)
        if (trc_expert_param_find(trc_expert_at(i), name)) {
            k++;
            len += (size_t)snprintf(have + len, sizeof have - len, "%s%s",
                                    k == 1       ? ""
                                    : k == count ? " and "
                                                 : ", ",
                                    trc_expert_at(i)->name);
        }
    if (!count)
        return trc_fail(TRC_EINVAL, "no expert has a parameter %s", name);
    return trc_fail(TRC_EINVAL, "%s applies to the %s expert%s only", name, have,
                    count > 1 ? "s" : "");
}

double trc_gen_settings_param(const trc_gen_settings *g, const char *name) {
    const trc_expert *e = trc_expert_find(g->expert);
    const trc_option *o = e ? trc_expert_param_find(e, name) : NULL;
    return o ? g->expert_params[o->offset / sizeof(double)] : NAN;
}

int trc_gen_settings_validate(const trc_gen_settings *g) {
    if (strnlen(g->system, sizeof g->system) == sizeof g->system)
        return trc_fail(TRC_EINVAL, "system name is not terminated");
    if (strnlen(g->expert, sizeof g->expert) == sizeof g->expert)
        return trc_fail(TRC_EINVAL, "expert name is not terminated");
    if (!trc_system_find(g->system))
        return TRC_ENOTFOUND;
    int rc = trc_expert_check_name(g->expert);
    if (rc)
        return rc;
    /* horizon, dt, bound, box edges: their lines of the generate table (settings is the first
     * member of trc_gen_request, so those lines' offsets are offsets into *g) */
    const trc_option_set *set = trc_gen_option_set();
    for (size_t i = 0; i < set->count; i++) {
        const trc_option *o = &set->options[i];
        if (o->offset >= sizeof *g || o->type == TRC_OPT_STRING) /* names: checked above */
            continue;
        if ((rc = trc_option_check(o, g)) != TRC_OK)
            return rc;
    }
    if (!(g->box_lo < g->box_hi))
        return trc_fail(TRC_EINVAL, "sampling box needs lo < hi, got [%g, %g]", g->box_lo,
                        g->box_hi);
    if (isnan(g->target_lo) != isnan(g->target_hi))
        return trc_fail(TRC_EINVAL, "target box: give both edges or neither");
    if (!isnan(g->target_lo) &&
        (!isfinite(g->target_lo) || !isfinite(g->target_hi) || !(g->target_lo <= g->target_hi)))
        return trc_fail(TRC_EINVAL, "target box needs finite lo <= hi, got [%g, %g]", g->target_lo,
                        g->target_hi);
    double resolved[TRC_EXPERT_MAX_PARAMS];
    return trc_expert_params_resolve(trc_expert_find(g->expert), g->expert_params, resolved);
}

/* ---- generation: candidates drawn in order from one stream, solved in parallel, the first n
 * converged ones kept in draw order ---- */

#define MAX_THREADS 64
#define CLAIM 8 /* samples a worker takes at a time */

typedef struct gen_job {
    const trc_expert_plan *plan;
    trc_dataset *ds;
    size_t to;           /* slots [next, to) remain */
    atomic_size_t next;  /* the next unclaimed slot */
    unsigned char *conv; /* [n] per slot */
    atomic_int failed;
    pthread_mutex_t lock; /* the failure of the lowest slot wins: the same message on any count */
    size_t fail_at;
    int fail_rc;
    char fail_msg[256];
} gen_job;

static void gen_fail(gen_job *j, size_t i, int rc, const char *msg) {
    pthread_mutex_lock(&j->lock);
    if (!atomic_load(&j->failed) || i < j->fail_at) {
        j->fail_at = i;
        j->fail_rc = rc;
        snprintf(j->fail_msg, sizeof j->fail_msg, "%s", msg);
    }
    atomic_store(&j->failed, 1);
    pthread_mutex_unlock(&j->lock);
}

/* Solves slot i from its stored (float32) states into its controls, cost and records. */
static void solve_slot(gen_job *j, size_t i, double *u) {
    trc_dataset *ds = j->ds;
    const int s = ds->s, m = ds->m, T = ds->T;
    double x0[TRC_SYSTEM_MAX_S], xt[TRC_SYSTEM_MAX_S];
    for (int k = 0; k < s; k++) {
        x0[k] = ds->initial_states[i * s + k];
        xt[k] = ds->target_states[i * s + k];
    }
    trc_expert_cost cost;
    int rc = trc_expert_solve(j->plan, x0, xt, u, &cost);
    if (rc) {
        gen_fail(j, i, rc, trc_errmsg());
        return;
    }
    float *fu = ds->control_sequences + i * (size_t)T * m;
    for (int k = 0; k < T * m; k++)
        fu[k] = (float)u[k];
    ds->costs[i] = (float)cost.objective;
    j->conv[i] = (unsigned char)(cost.converged != 0);
    if (ds->solve_stats) {
        ds->solve_stats[2 * i] = (float)cost.iterations;
        ds->solve_stats[2 * i + 1] = (float)(cost.converged != 0);
        ds->solve_ms[i] = (float)cost.solve_ms;
    }
}

static void *gen_worker(void *arg) {
    gen_job *j = arg;
    double *u = malloc(sizeof(double) * (size_t)j->ds->T * j->ds->m);
    if (!u) {
        gen_fail(j, 0, TRC_ENOMEM, "dataset: cannot allocate");
        return NULL;
    }
    for (;;) {
        size_t a = atomic_fetch_add(&j->next, CLAIM);
        if (a >= j->to || atomic_load(&j->failed))
            break;
        size_t b = a + CLAIM < j->to ? a + CLAIM : j->to;
        for (size_t i = a; i < b; i++)
            solve_slot(j, i, u);
    }
    free(u);
    return NULL;
}

/* Solves slots [from, to) on up to `threads` threads, the calling one included (a thread that
 * fails to start leaves its share to the others). */
static int solve_slots(gen_job *j, size_t from, size_t to, int threads) {
    j->to = to;
    atomic_store(&j->next, from);
    size_t claims = (to - from + CLAIM - 1) / CLAIM;
    int nt = threads < 1 ? 1 : (threads > MAX_THREADS ? MAX_THREADS : threads);
    if ((size_t)nt > claims)
        nt = (int)claims;
    trc_parallel_run(gen_worker, j, 0, (size_t)nt); /* workers claim slots from one job */
    if (atomic_load(&j->failed))
        return trc_fail(j->fail_rc, "%s", j->fail_msg);
    return TRC_OK;
}

/* Moves slot i to slot to (to < i). */
static void move_slot(trc_dataset *ds, size_t to, size_t i) {
    const size_t s = (size_t)ds->s, U = (size_t)ds->T * ds->m;
    memcpy(ds->initial_states + to * s, ds->initial_states + i * s, sizeof(float) * s);
    memcpy(ds->target_states + to * s, ds->target_states + i * s, sizeof(float) * s);
    memcpy(ds->control_sequences + to * U, ds->control_sequences + i * U, sizeof(float) * U);
    ds->costs[to] = ds->costs[i];
    if (ds->solve_stats) {
        memcpy(ds->solve_stats + 2 * to, ds->solve_stats + 2 * i, sizeof(float) * 2);
        ds->solve_ms[to] = ds->solve_ms[i];
    }
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void summarize(const trc_dataset *ds, trc_gen_summary *sum) {
    if (!ds->solve_stats || ds->n == 0)
        return;
    double it = 0.0, tot = 0.0;
    for (size_t i = 0; i < ds->n; i++) {
        it += ds->solve_stats[2 * i];
        tot += ds->solve_ms[i];
    }
    sum->iters_mean = it / (double)ds->n;
    sum->solve_ms_mean = tot / (double)ds->n;
    float *ms = malloc(sizeof(float) * ds->n);
    if (ms) {
        memcpy(ms, ds->solve_ms, sizeof(float) * ds->n);
        qsort(ms, ds->n, sizeof(float), cmp_float);
        sum->solve_ms_median = ms[ds->n / 2];
        sum->solve_ms_p95 = ms[(size_t)(0.95 * (double)(ds->n - 1))];
        free(ms);
    }
}

static int default_threads(void) {
    long c = sysconf(_SC_NPROCESSORS_ONLN);
    return c < 1 ? 1 : (c > MAX_THREADS ? MAX_THREADS : (int)c);
}

int trc_dataset_generate(const trc_gen_settings *g, size_t n, trc_dataset *out) {
    return trc_dataset_generate_with(g, n, NULL, out, NULL);
}

int trc_dataset_generate_chunked(const trc_gen_settings *g, size_t n, size_t chunk,
                                 const atomic_int *cancel, trc_dataset *out) {
    const trc_gen_options o = {.threads = 1, .chunk = chunk, .cancel = cancel};
    return trc_dataset_generate_with(g, n, &o, out, NULL);
}

int trc_dataset_generate_with(const trc_gen_settings *g, size_t n, const trc_gen_options *opt,
                              trc_dataset *out, trc_gen_summary *summary) {
    memset(out, 0, sizeof *out);
    trc_gen_summary sum = {0};
    int rc = trc_gen_settings_validate(g);
    if (rc)
        return rc;
    if (n == 0 || n > MAX_SAMPLES)
        return trc_fail(TRC_EINVAL, "number of samples must be in 1..%u, got %zu", MAX_SAMPLES, n);
    const trc_gen_options o = opt ? *opt : (trc_gen_options){.threads = 1};
    if (o.threads < 0)
        return trc_fail(TRC_EINVAL, "threads must be >= 0, got %d", o.threads);
    const size_t chunk = o.chunk ? o.chunk : DEFAULT_CHUNK;
    const int threads = o.threads ? o.threads : default_threads();
    const trc_system *sys = trc_system_find(g->system);
    trc_expert_plan *plan;
    if ((rc = trc_expert_plan_create(g->expert, sys, g->dt, g->T, g->bound, g->expert_params,
                                     &plan)))
        return rc;
    const int s = sys->s, m = sys->m, T = g->T;
    const int iterative = trc_expert_find(g->expert)->iterative;
    gen_job job = {.plan = plan, .ds = out};
    pthread_mutex_init(&job.lock, NULL);
    if ((rc = trc_dataset_alloc(out, n, s, m, T)) == TRC_OK) {
        job.conv = calloc(n, 1);
        if (iterative) {
            out->solve_stats = calloc(n * 2, sizeof(float));
            out->solve_ms = calloc(n, sizeof(float));
        }
        if (!job.conv || (iterative && (!out->solve_stats || !out->solve_ms)))
            rc = trc_fail(TRC_ENOMEM, "dataset: cannot allocate");
    }
    const int same_box = isnan(g->target_lo);
    const double tlo = same_box ? g->box_lo : g->target_lo;
    const double thi = same_box ? g->box_hi : g->target_hi;
    const size_t max_drawn = n + n / 2 + 64;
    trc_rng rng; /* one stream for the whole set, whatever the chunks and threads */
    trc_rng_seed(&rng, g->seed);
    if (o.first > MAX_SAMPLES * 2u)
        rc = trc_fail(TRC_EINVAL, "first candidate %zu is beyond any run", o.first);
    /* a candidate is 2 s uniform draws (x0, then target), one u64 each: skipping candidates is
     * skipping draws, so a shard or a merge's tail continues the single run's stream */
    for (size_t i = 0; rc == TRC_OK && i < o.first * 2 * (size_t)s; i++)
        (void)trc_rng_u64(&rng);
    for (size_t at = 0; at < n && rc == TRC_OK; at += chunk) {
        const size_t end = n - at < chunk ? n : at + chunk;
        size_t kept = at;
        while (rc == TRC_OK && kept < end) {
            if (o.cancel && atomic_load(o.cancel)) {
                rc = trc_fail(TRC_ECANCELED, "cancelled while generating the dataset");
                break;
            }
            if (sum.drawn >= max_drawn) {
                rc = trc_fail(TRC_ENUMERIC,
                              "%s did not converge on %zu of %zu samples drawn; relax the problem "
                              "or keep unconverged samples",
                              g->expert, sum.unconverged, sum.drawn);
                break;
            }
            /* Draw into the free slots in order, rounded to the stored float32, so the stored
             * controls are the expert's answer for exactly the stored states. */
            for (size_t i = kept; i < end; i++) {
                float *fx = out->initial_states + i * s, *ft = out->target_states + i * s;
                for (int k = 0; k < s; k++)
                    fx[k] = (float)trc_system_draw(sys, 0, k,
                                                   trc_rng_range(&rng, g->box_lo, g->box_hi));
                for (int k = 0; k < s; k++) /* lo == hi: exactly lo */
                    ft[k] =
                        (float)trc_system_draw(sys, !same_box, k, trc_rng_range(&rng, tlo, thi));
            }
            if ((rc = solve_slots(&job, kept, end, threads)))
                break;
            sum.drawn += end - kept;
            size_t to = kept; /* keep the converged (or all) in draw order */
            for (size_t i = kept; i < end; i++) {
                sum.unconverged += !job.conv[i];
                if (!job.conv[i] && !o.keep_unconverged)
                    continue;
                if (to != i)
                    move_slot(out, to, i);
                to++;
            }
            kept = to;
        }
        if (rc == TRC_OK) /* the trajectories of the stored (float32) controls */
            rc = trc_simulate(sys, g->dt, T, end - at, out->initial_states + at * s,
                              out->control_sequences + at * (size_t)T * m,
                              out->state_trajectories + at * (size_t)(T + 1) * s);
    }
    free(job.conv);
    pthread_mutex_destroy(&job.lock);
    if (rc) {
        trc_expert_plan_free(plan);
        trc_dataset_free(out);
        return rc;
    }
    out->has_settings = 1;
    out->settings = *g;
    trc_expert_info info; /* the parameters as used (defaults filled) */
    trc_expert_plan_info(plan, &info);
    memcpy(out->settings.expert_params, info.params, sizeof out->settings.expert_params);
    trc_expert_plan_free(plan);
    snprintf(out->settings.system, sizeof out->settings.system, "%s", sys->name);
    out->dt = g->dt;
    snprintf(out->system, sizeof out->system, "%s", sys->name);
    snprintf(out->cost_label, sizeof out->cost_label, "%s",
             trc_expert_find(g->expert) ? trc_expert_find(g->expert)->cost_label : "");
    summarize(out, &sum);
    if (summary)
        *summary = sum;
    return TRC_OK;
}
