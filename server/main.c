/* trcd: the TRC inference and training service. Wires the parts together (config, registry,
 * routes, metrics, batcher, jobs, HTTP), then waits for SIGTERM/SIGINT on the main thread and
 * shuts down in order: readiness 503, no new connections, running jobs stopped and saved,
 * requests in flight finished, everything freed (so ASan's leak check sees a clean exit). */
#include <cblas.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "api_token.h"
#include "app.h"
#include "batcher.h"
#include "config.h"
#include "http.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"
#include "registry.h"
#include "routes.h"
#include "trc/error.h"

#define DRAIN_MS 6000  /* requests in flight get this long to finish (exit within 10 s) */
#define BATCH_ROWS 256 /* most samples gathered into one evaluation */

#define SPARE_FDS 256 /* descriptors besides connections: models, jobs, database, logs */

/* Every connection is a descriptor: raise the soft RLIMIT_NOFILE as far as --max-connections
 * needs (within the hard limit); when the hard limit is lower, serve fewer connections and say
 * so rather than failing accept() under load. */
static void fit_fd_limit(app_config *c) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return;
    rlim_t want = (rlim_t)c->max_connections + SPARE_FDS;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want) {
        int fit = rl.rlim_cur > 2 * SPARE_FDS ? (int)(rl.rlim_cur - SPARE_FDS) : SPARE_FDS;
        log_msg("RLIMIT_NOFILE is %llu (hard %llu): serving at most %d connections, not %d",
                (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max, fit,
                c->max_connections);
        c->max_connections = fit;
    }
}

static int build_metrics(app *a) {
    size_t n = http_route_count(a->http);
    const char *methods[64], *routes[64];
    if (n > 64)
        return -1;
    for (size_t i = 0; i < n; i++)
        http_route_at(a->http, i, &methods[i], &routes[i]);
    return metrics_create(methods, routes, n, &a->metrics);
}

int main(int argc, char **argv) {
    static app a;
    char err[512];
    int prc = app_config_parse(argc, argv, &a.cfg, stdout, err, sizeof err);
    if (prc == 1)
        return 0;
    if (prc < 0) {
        fprintf(stderr, "trcd: %s\n", err);
        return 2;
    }
    if (api_token_ensure(&a.cfg, err, sizeof err)) {
        fprintf(stderr, "trcd: %s\n", err);
        return 1;
    }
    /* signals: handled by sigwait() below; every thread started later inherits the mask */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    openblas_set_num_threads(a.cfg.blas_threads);
    fit_fd_limit(&a.cfg);

    int status = 1;
    const char *stage = "";
    if (registry_create(a.cfg.models_dir, &a.registry)) {
        log_msg("%s", trc_errmsg());
        return 1;
    }
    registry_set_max_models(a.registry, (size_t)a.cfg.max_models);
    registry_set_default_dt(a.registry, a.cfg.dt);
    trc_precision precision = TRC_PRECISION_FP32;
    trc_precision_parse(a.cfg.precision, &precision); /* checked by app_config_parse */
    registry_set_precision(a.registry, precision);
    if (precision != TRC_PRECISION_FP32)
        log_msg("model weights in %s (--precision)", trc_precision_name(precision));
    int loaded = registry_load_dir(a.registry);
    model_snapshot *def = registry_get(a.registry, NULL);
    log_msg("%d model(s) loaded from %s%s", loaded, a.cfg.models_dir,
            def ? "" : "; none is named 'default', so requests must name a model");
    snapshot_release(def);
    int jobs_ok = 0, started = 0;
    if (http_create(&a, &a.http)) {
        stage = "http";
        goto out;
    }
    if (jobs_init(&a)) {
        stage = "jobs";
        goto out;
    }
    jobs_ok = 1;
    if (routes_ops_register(a.http) || routes_control_register(a.http) ||
        routes_models_register(a.http) || routes_catalog_register(a.http)) {
        stage = "routes";
        goto out;
    }
    jobs_register_routes(&a, a.http);
    if (routes_static_register(a.http) || build_metrics(&a)) {
        stage = "routes";
        goto out;
    }
    if (batcher_create(a.cfg.threads, a.cfg.batch_wait_us, BATCH_ROWS, a.metrics, &a.batcher)) {
        stage = "batcher";
        goto out;
    }
    batcher_set_clients(a.batcher, http_recent_concurrency, a.http);
    /* test-only (tests/integration/test_hostile_http.py): hold evaluations while a file exists */
    batcher_set_hold(a.batcher, getenv("TRCD_TEST_HOLD_FILE"));
    if (http_start(a.http)) {
        stage = "listen";
        goto out;
    }
    started = 1;
    log_msg("listening on http://%s:%d", a.cfg.host, http_bound_port(a.http));
    if (jobs_start(&a)) {
        stage = "jobs start";
        goto out;
    }
    int sig = 0;
    sigwait(&sigs, &sig);
    log_msg("%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    status = 0;
out:
    if (status)
        log_msg("start-up failed (%s)%s%s", stage, trc_errmsg()[0] ? ": " : "", trc_errmsg());
    atomic_store(&a.draining, 1);
    if (started)
        http_quiesce(a.http);
    if (jobs_ok)
        jobs_shutdown(&a);
    if (started) {
        int left = http_drain(a.http, DRAIN_MS);
        if (left)
            log_msg("%d request(s) still running after %d ms; closing", left, DRAIN_MS);
    }
    http_destroy(a.http);
    a.http = NULL;
    if (jobs_ok)
        jobs_free(&a);
    batcher_free(a.batcher);
    metrics_free(a.metrics);
    registry_free(a.registry);
    log_msg("stopped");
    return status;
}
