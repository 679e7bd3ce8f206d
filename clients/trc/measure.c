/* Speed and memory measured in the run; see measure.h. Peak memory is the growth of the
 * process's resident high-water mark (VmHWM, reset through /proc/self/clear_refs so the data
 * loaded before does not hide it) while the model is loaded and run; where that reset is not
 * allowed, the growth of getrusage's ru_maxrss (a lower bound). malloc_trim first returns the
 * free heap to the system, so what the model reuses of earlier allocations counts too. The heap the
 * loaded model holds comes from glibc's mallinfo2. */
#include "measure.h"

#include "trc/error.h"
#include "trc/expert.h"

#include <jansson.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BATCH 1024

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return 1e3 * (double)ts.tv_sec + 1e-6 * (double)ts.tv_nsec;
}

/* A "Name:   123 kB" line of /proc/self/status in bytes, or -1. */
static long long proc_status_bytes(const char *name) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long long v = -1;
    size_t len = strlen(name);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, name, len) == 0 && line[len] == ':') {
            v = 1024 * strtoll(line + len + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static long long maxrss_bytes(void) {
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? 1024LL * ru.ru_maxrss : -1;
}

static long long heap_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return (long long)(mi.uordblks + mi.hblkhd);
}

typedef struct mem_probe {
    int hwm_reset;
    long long base;
} mem_probe;

static void probe_begin(mem_probe *p) {
    /* free heap pages go back to the system first, so memory the model reuses from earlier
     * allocations (the data, a previous load) is counted as it is touched again */
    malloc_trim(0);
    FILE *f = fopen("/proc/self/clear_refs", "w");
    /* "5" resets the peak RSS to the current RSS (Linux >= 4.0) */
    p->hwm_reset = f && fputs("5", f) >= 0;
    if (f && fclose(f) != 0)
        p->hwm_reset = 0;
    p->base = p->hwm_reset ? proc_status_bytes("VmRSS") : maxrss_bytes();
    if (p->base < 0) {
        p->hwm_reset = 0;
        p->base = maxrss_bytes();
    }
}

static long long probe_end(const mem_probe *p, const char **method) {
    long long now = p->hwm_reset ? proc_status_bytes("VmHWM") : maxrss_bytes();
    *method = p->hwm_reset ? "VmHWM growth (peak reset by /proc/self/clear_refs)"
                           : "ru_maxrss growth (a lower bound)";
    return now >= p->base ? now - p->base : 0;
}

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Every iterate of the model over ds: [(K+1), n, U]. */
static int run_iterates(const trc_model *model, const trc_dataset *ds, float **out) {
    const size_t S = (size_t)ds->s, U = (size_t)ds->T * ds->m, n = ds->n;
    const size_t K1 = (size_t)model->cfg.K + 1;
    float *all = malloc(sizeof(float) * K1 * n * U);
    float *it = malloc(sizeof(float) * K1 * BATCH * U), *u = malloc(sizeof(float) * BATCH * U);
    int rc = all && it && u ? TRC_OK : trc_fail(TRC_ENOMEM, "cannot allocate the iterates");
    for (size_t at = 0; rc == TRC_OK && at < n; at += BATCH) {
        size_t B = n - at < BATCH ? n - at : BATCH;
        rc = trc_model_infer(model, B, ds->initial_states + at * S, ds->target_states + at * S, u,
                             it);
        for (size_t k = 0; rc == TRC_OK && k < K1; k++)
            memcpy(all + (k * n + at) * U, it + k * B * U, sizeof(float) * B * U);
    }
    free(it);
    free(u);
    if (rc) {
        free(all);
        return rc;
    }
    *out = all;
    return TRC_OK;
}

int cli_model_measure(const char *cmd, const cli_model_flags *f, const trc_dataset *ds,
                      size_t singles, int want_iterates, model_measure *out) {
    memset(out, 0, sizeof *out);
    const size_t S = (size_t)ds->s, U = (size_t)ds->T * ds->m;
    mem_probe p;
    probe_begin(&p);
    long long heap0 = heap_in_use();
    trc_model model;
    int rc = cli_model_load(cmd, f, &model);
    if (rc)
        return rc;
    out->heap_bytes = heap_in_use() - heap0;
    if (out->heap_bytes <= 0) /* an allocator mallinfo2 does not see (e.g. a sanitizer's) */
        out->heap_bytes = -1;
    out->parameter_bytes = (long long)(model.num_params * sizeof(float));
    out->K = model.cfg.K;
    if ((rc = cli_model_fits(cmd, &model, ds, "the data"))) {
        trc_model_free(&model);
        return rc;
    }
    out->batch = ds->n < BATCH ? ds->n : BATCH;
    out->timed = ds->n < singles ? ds->n : singles;
    float *u = malloc(sizeof(float) * out->batch * U);
    double *ms = malloc(sizeof(double) * (out->timed ? out->timed : 1));
    rc = u && ms ? TRC_OK : trc_fail(TRC_ENOMEM, "cannot allocate");
    /* one problem per call, through an inference plan: trcd's path for small batches */
    trc_infer_plan *plan = NULL;
    if (rc == TRC_OK)
        rc = trc_infer_plan_create(&model, &plan);
    for (size_t i = 0; rc == TRC_OK && i < out->timed; i++) {
        double t0 = now_ms();
        rc = trc_infer_plan_run(plan, 1, ds->initial_states + i * S, ds->target_states + i * S,
                                NULL, u, NULL, 1);
        ms[i] = now_ms() - t0;
        out->ms_single_mean += ms[i];
    }
    if (rc == TRC_OK && out->timed) {
        qsort(ms, out->timed, sizeof *ms, cmp_double);
        out->ms_single_median = ms[out->timed / 2];
        out->ms_single_mean /= (double)out->timed;
    }
    if (rc == TRC_OK) { /* one batch */
        double t0 = now_ms();
        rc = trc_model_infer(&model, out->batch, ds->initial_states, ds->target_states, u, NULL);
        out->ms_batched = (now_ms() - t0) / (double)out->batch;
    }
    out->peak_bytes = probe_end(&p, &out->peak_method);
    trc_infer_plan_free(plan);
    free(u);
    free(ms);
    if (rc == TRC_OK && want_iterates)
        rc = run_iterates(&model, ds, &out->iterates);
    trc_model_free(&model);
    if (rc)
        return cli_lib_error(cmd, rc, 0);
    return CLI_OK;
}

char *cli_model_measure_json(const model_measure *m) {
    json_t *j = json_pack(
        "{s:f, s:f, s:I, s:f, s:I, s:I, s:s, s:o, s:I}", "inference_ms_per_problem",
        m->ms_single_median, "inference_ms_per_problem_mean", m->ms_single_mean,
        "inference_calls_timed", (json_int_t)m->timed, "inference_ms_per_problem_batched",
        m->ms_batched, "inference_batch", (json_int_t)m->batch, "peak_memory_bytes",
        (json_int_t)m->peak_bytes, "peak_memory_method", m->peak_method, "model_heap_bytes",
        m->heap_bytes >= 0 ? json_integer(m->heap_bytes) : json_null(), "parameter_bytes",
        (json_int_t)m->parameter_bytes);
    if (!j)
        return NULL;
    char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6));
    json_decref(j);
    return text;
}

int cli_measure_merge_json(char **row_json, const char *key, const char *text) {
    json_t *row = *row_json ? json_loads(*row_json, 0, NULL) : json_object();
    json_t *add = text ? json_loads(text, 0, NULL) : NULL;
    int rc = -1;
    if (row && add && json_is_object(row)) {
        if (key)
            json_object_set(row, key, add);
        else
            json_object_update(row, add);
        char *merged = json_dumps(row, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
        if (merged) {
            free(*row_json);
            *row_json = merged;
            rc = 0;
        }
    }
    json_decref(row);
    json_decref(add);
    return rc;
}

int cli_expert_measure(const char *cmd, const trc_dataset *ds, size_t count, expert_measure *out) {
    memset(out, 0, sizeof *out);
    if (!ds->has_settings)
        return cli_error(CLI_FAIL, cmd,
                         "the data records no expert (a file without trc metadata): its solve "
                         "time cannot be measured");
    const trc_gen_settings *g = &ds->settings;
    snprintf(out->expert, sizeof out->expert, "%s", g->expert);
    const trc_system *sys = trc_system_find(g->system);
    trc_expert_plan *plan = NULL;
    int rc =
        sys ? trc_expert_plan_create(g->expert, sys, g->dt, g->T, g->bound, g->expert_params, &plan)
            : trc_fail(TRC_ENOTFOUND, "unknown system '%s'", g->system);
    if (rc)
        return cli_lib_error(cmd, rc, 0);
    const int s = ds->s;
    out->timed = ds->n < count ? ds->n : count;
    double *u = malloc(sizeof(double) * (size_t)ds->T * ds->m);
    double *ms = malloc(sizeof(double) * (out->timed ? out->timed : 1));
    rc = u && ms ? TRC_OK : trc_fail(TRC_ENOMEM, "cannot allocate");
    for (size_t i = 0; rc == TRC_OK && i < out->timed; i++) {
        double x0[TRC_SYSTEM_MAX_S], xt[TRC_SYSTEM_MAX_S];
        for (int k = 0; k < s; k++) {
            x0[k] = ds->initial_states[i * s + k];
            xt[k] = ds->target_states[i * s + k];
        }
        double t0 = now_ms();
        rc = trc_expert_solve(plan, x0, xt, u, NULL);
        ms[i] = now_ms() - t0;
        out->ms_mean += ms[i];
    }
    if (rc == TRC_OK && out->timed) {
        qsort(ms, out->timed, sizeof *ms, cmp_double);
        out->ms_median = ms[out->timed / 2];
        out->ms_mean /= (double)out->timed;
    }
    free(u);
    free(ms);
    trc_expert_plan_free(plan);
    return rc ? cli_lib_error(cmd, rc, 0) : CLI_OK;
}

void cli_measure_print(const model_measure *m, const expert_measure *e) {
    printf("\nspeed and memory (this machine, one thread):\n");
    if (e && e->timed)
        printf("  expert (%s) solve      %10.4f ms per problem (median of %zu solves here; mean "
               "%.4f)\n",
               e->expert, e->ms_median, e->timed, e->ms_mean);
    if (m) {
        if (m->timed)
            printf("  model inference        %10.4f ms per problem (median of %zu calls of one "
                   "problem, inference plan; mean %.4f)\n",
                   m->ms_single_median, m->timed, m->ms_single_mean);
        printf("  %-22s %10.4f ms per problem in a batch of %zu\n",
               m->timed ? "" : "model inference", m->ms_batched, m->batch);
        if (e && e->timed && m->ms_single_median > 0)
            printf("  model vs expert        %10.1fx faster per problem (one problem per call)\n",
                   e->ms_median / m->ms_single_median);
        printf("  model memory           %10.2f MiB peak (%s), ", (double)m->peak_bytes / 1048576.0,
               m->peak_method);
        if (m->heap_bytes >= 0)
            printf("%.2f MiB held after loading (heap, mallinfo2), ",
                   (double)m->heap_bytes / 1048576.0);
        printf("%.2f MiB of parameters\n", (double)m->parameter_bytes / 1048576.0);
    }
}
