/* Prometheus counters and histograms of trcd (see metrics.h), rendered in the text exposition
 * format (version 0.0.4). One mutex guards the numbers: an observation is a few additions. */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batcher.h"
#include "metrics.h"
#include "trc/cpu.h"
#include "registry.h"

#define MAX_STATUS 24
static const double LAT_BUCKETS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
#define NLAT (sizeof LAT_BUCKETS / sizeof LAT_BUCKETS[0])
static const double ROW_BUCKETS[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096};
#define NROW (sizeof ROW_BUCKETS / sizeof ROW_BUCKETS[0])

typedef struct route_stats {
    int status[MAX_STATUS];
    uint64_t count[MAX_STATUS];
    int nstatus;
    uint64_t lat_bucket[NLAT + 1];
    double lat_sum;
    uint64_t lat_count;
} route_stats;

struct metrics {
    pthread_mutex_t lock;
    const char **methods, **routes; /* copies of the label arrays (strings not owned) */
    size_t nroutes;
    route_stats *stats; /* nroutes + 1 */
    uint64_t rows_bucket[NROW + 1], reqs_bucket[NROW + 1];
    double rows_sum, reqs_sum;
    uint64_t batches;
};

void metrics_printf(metrics_text *out, const char *fmt, ...) {
    if (out->failed)
        return;
    for (;;) {
        size_t room = out->cap - out->len;
        va_list ap;
        va_start(ap, fmt);
        int n = out->buf ? vsnprintf(out->buf + out->len, room, fmt, ap) : -2;
        va_end(ap);
        if (n >= 0 && (size_t)n < room) {
            out->len += (size_t)n;
            return;
        }
        if (n == -1) {
            out->failed = 1;
            return;
        }
        size_t cap = out->cap ? out->cap * 2 : 4096;
        while (n > 0 && cap - out->len <= (size_t)n)
            cap *= 2;
        char *p = realloc(out->buf, cap);
        if (!p) {
            out->failed = 1;
            return;
        }
        out->buf = p;
        out->cap = cap;
    }
}

int metrics_create(const char *const *methods, const char *const *routes, size_t num_routes,
                   metrics **out) {
    metrics *m = calloc(1, sizeof *m);
    if (!m)
        return -1;
    pthread_mutex_init(&m->lock, NULL);
    m->stats = calloc(num_routes + 1, sizeof *m->stats);
    m->methods = calloc(num_routes + 1, sizeof *m->methods);
    m->routes = calloc(num_routes + 1, sizeof *m->routes);
    if (!m->stats || !m->methods || !m->routes) {
        metrics_free(m);
        return -1;
    }
    for (size_t i = 0; i < num_routes; i++) {
        m->methods[i] = methods[i];
        m->routes[i] = routes[i];
    }
    m->nroutes = num_routes;
    *out = m;
    return 0;
}

void metrics_free(metrics *m) {
    if (!m)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m->stats);
    free(m->methods);
    free(m->routes);
    free(m);
}

static size_t bucket_of(const double *b, size_t n, double x) {
    size_t i = 0;
    while (i < n && x > b[i])
        i++;
    return i; /* n = +Inf */
}

void metrics_observe_request(metrics *m, size_t route, int status, double seconds) {
    if (!m)
        return;
    if (route > m->nroutes)
        route = m->nroutes;
    route_stats *r = &m->stats[route];
    pthread_mutex_lock(&m->lock);
    int k = 0;
    while (k < r->nstatus && r->status[k] != status)
        k++;
    if (k == r->nstatus && k < MAX_STATUS) {
        r->status[k] = status;
        r->nstatus++;
    }
    if (k < MAX_STATUS)
        r->count[k]++;
    r->lat_bucket[bucket_of(LAT_BUCKETS, NLAT, seconds)]++;
    r->lat_sum += seconds;
    r->lat_count++;
    pthread_mutex_unlock(&m->lock);
}

void metrics_observe_batch(metrics *m, size_t rows, size_t requests) {
    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    m->rows_bucket[bucket_of(ROW_BUCKETS, NROW, (double)rows)]++;
    m->reqs_bucket[bucket_of(ROW_BUCKETS, NROW, (double)requests)]++;
    m->rows_sum += (double)rows;
    m->reqs_sum += (double)requests;
    m->batches++;
    pthread_mutex_unlock(&m->lock);
}

static void render_hist(metrics_text *o, const char *name, const char *labels, const double *b,
                        size_t n, const uint64_t *bucket, double sum, uint64_t count) {
    uint64_t cum = 0;
    const char *sep = labels[0] ? "," : "";
    for (size_t i = 0; i < n; i++) {
        cum += bucket[i];
        metrics_printf(o, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, b[i],
                       (unsigned long long)cum);
    }
    cum += bucket[n];
    metrics_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                   (unsigned long long)cum);
    if (labels[0]) {
        metrics_printf(o, "%s_sum{%s} %.9g\n", name, labels, sum);
        metrics_printf(o, "%s_count{%s} %llu\n", name, labels, (unsigned long long)count);
    } else {
        metrics_printf(o, "%s_sum %.9g\n", name, sum);
        metrics_printf(o, "%s_count %llu\n", name, (unsigned long long)count);
    }
}

int metrics_render(metrics *m, app *a, metrics_text *o) {
    pthread_mutex_lock(&m->lock);
    metrics_printf(o, "# HELP trcd_http_requests_total HTTP requests by route and status.\n"
                      "# TYPE trcd_http_requests_total counter\n");
    char labels[512];
    for (size_t i = 0; i <= m->nroutes; i++) {
        const route_stats *r = &m->stats[i];
        for (int k = 0; k < r->nstatus; k++)
            metrics_printf(o,
                           "trcd_http_requests_total{method=\"%s\",route=\"%s\",status=\"%d\"} "
                           "%llu\n",
                           i < m->nroutes ? m->methods[i] : "any",
                           i < m->nroutes ? m->routes[i] : "unmatched", r->status[k],
                           (unsigned long long)r->count[k]);
    }
    metrics_printf(o, "# HELP trcd_http_request_duration_seconds Time from the request line to "
                      "the response being queued, by route.\n"
                      "# TYPE trcd_http_request_duration_seconds histogram\n");
    for (size_t i = 0; i <= m->nroutes; i++) {
        const route_stats *r = &m->stats[i];
        if (!r->lat_count)
            continue;
        snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\"",
                 i < m->nroutes ? m->methods[i] : "any",
                 i < m->nroutes ? m->routes[i] : "unmatched");
        render_hist(o, "trcd_http_request_duration_seconds", labels, LAT_BUCKETS, NLAT,
                    r->lat_bucket, r->lat_sum, r->lat_count);
    }
    metrics_printf(o, "# HELP trcd_inference_batch_rows Samples per model evaluation (after "
                      "dynamic batching).\n# TYPE trcd_inference_batch_rows histogram\n");
    render_hist(o, "trcd_inference_batch_rows", "", ROW_BUCKETS, NROW, m->rows_bucket, m->rows_sum,
                m->batches);
    metrics_printf(o, "# HELP trcd_inference_batch_requests Requests gathered into one model "
                      "evaluation.\n# TYPE trcd_inference_batch_requests histogram\n");
    render_hist(o, "trcd_inference_batch_requests", "", ROW_BUCKETS, NROW, m->reqs_bucket,
                m->reqs_sum, m->batches);
    pthread_mutex_unlock(&m->lock);

    if (a && a->batcher) {
        size_t rows;
        uint64_t abandoned;
        batcher_stats(a->batcher, &rows, &abandoned);
        metrics_printf(o,
                       "# HELP trcd_inference_rows_in_progress Samples being evaluated now.\n"
                       "# TYPE trcd_inference_rows_in_progress gauge\n"
                       "trcd_inference_rows_in_progress %zu\n"
                       "# HELP trcd_requests_abandoned_total Requests whose work stopped because "
                       "their client disconnected (queued or between chunks).\n"
                       "# TYPE trcd_requests_abandoned_total counter\n"
                       "trcd_requests_abandoned_total %llu\n",
                       rows, (unsigned long long)abandoned);
    }
    if (a && a->registry) {
        uint64_t loads, failures;
        registry_load_counts(a->registry, &loads, &failures);
        metrics_printf(o,
                       "# HELP trcd_model_loads_total Checkpoints loaded and published.\n"
                       "# TYPE trcd_model_loads_total counter\ntrcd_model_loads_total %llu\n",
                       (unsigned long long)loads);
        metrics_printf(o,
                       "# HELP trcd_model_load_failures_total Checkpoints refused on load.\n"
                       "# TYPE trcd_model_load_failures_total counter\n"
                       "trcd_model_load_failures_total %llu\n",
                       (unsigned long long)failures);
        metrics_printf(o,
                       "# HELP trcd_models_loaded Models currently served.\n"
                       "# TYPE trcd_models_loaded gauge\ntrcd_models_loaded %zu\n",
                       registry_count(a->registry));
    }
    /* which instruction-set path the kernels run (trc/cpu.h): an info-style gauge */
    metrics_printf(o,
                   "# HELP trcd_kernels_info Instruction-set path of the numeric kernels (isa) "
                   "and the best this CPU runs (best).\n# TYPE trcd_kernels_info gauge\n"
                   "trcd_kernels_info{isa=\"%s\",best=\"%s\"} 1\n",
                   trc_isa_name(trc_isa_active()), trc_isa_name(trc_isa_best()));
    if (a) {
        metrics_printf(o,
                       "# HELP trcd_ready 1 when /readyz answers 200.\n# TYPE trcd_ready "
                       "gauge\ntrcd_ready %d\n",
                       !app_draining(a) && a->registry && registry_count(a->registry) > 0);
        if (a->http_metrics)
            a->http_metrics(a, o);
        if (a->jobs_metrics)
            a->jobs_metrics(a, o);
    }
    return o->failed ? -1 : 0;
}
