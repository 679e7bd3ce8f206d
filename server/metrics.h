/* Prometheus metrics of trcd: requests by route and status, latency histograms per route,
 * inference batch sizes, model loads and failures; the jobs subsystem appends its own section
 * (jobs by state, training samples/s) through app->jobs_metrics. */
#ifndef TRCD_METRICS_H
#define TRCD_METRICS_H

#include <stddef.h>

#include "app.h"

typedef struct metrics metrics;

/* A growing text buffer for the exposition format. */
typedef struct metrics_text {
    char *buf;
    size_t len, cap;
    int failed; /* 1 after an allocation failure */
} metrics_text;

void metrics_printf(metrics_text *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* methods[i], routes[i]: the labels of route i; index num_routes counts unmatched requests.
 * The strings must outlive the metrics. */
int metrics_create(const char *const *methods, const char *const *routes, size_t num_routes,
                   metrics **out);
void metrics_free(metrics *m);
/* One finished request: route index (num_routes for "unmatched"), status and seconds. */
void metrics_observe_request(metrics *m, size_t route, int status, double seconds);
/* One model evaluation of `rows` samples gathered from `requests` requests. */
void metrics_observe_batch(metrics *m, size_t rows, size_t requests);
/* Renders everything (including the jobs hook and the registry's counters) as text. */
int metrics_render(metrics *m, app *a, metrics_text *out);

#endif
