/* The application context of trcd: configuration (flags / TRC_* environment) and the parts that
 * live for the whole process. One `app` is created by main.c and passed to every handler.
 *
 * For the jobs subsystem ("jobs" owns server/jobs.h, server/jobs*.c, server/routes_jobs.c):
 * main.c calls, in this order (declare them in server/jobs.h):
 *     int  jobs_init(app *a);        after the registry loaded models; opens cfg.data_dir/jobs.db,
 *                                    sets a->jobs, marks jobs found running as failed
 *     void jobs_register_routes(app *a, http_server *srv);   POST /v1/train, /train, /v1/jobs...
 *     int  jobs_start(app *a);       starts the worker pool / loop thread
 *     void jobs_shutdown(app *a);    SIGTERM: running jobs stop at the next batch, are saved and
 *                                    marked cancelled; queued ones stay queued; returns when done
 *     void jobs_free(app *a);        closes the database, frees a->jobs
 * main.c owns signals: SIGTERM/SIGINT/SIGPIPE are blocked in every thread (threads inherit the
 * mask from main), so jobs must not install signal handlers.
 * Metrics: jobs sets a->jobs_metrics; metrics.c calls it on every scrape of /metrics to append
 * Prometheus text (jobs by state, training samples/s of running jobs).
 * Publishing a trained model: write it atomically to cfg.models_dir/<name>.safetensors, then
 * registry_load_file(a->registry, name, "<name>.safetensors", &err) (server/registry.h).
 * Before accepting work, check app_draining(a): while shutting down, answer 503. */
#ifndef TRCD_APP_H
#define TRCD_APP_H

#include <stdatomic.h>
#include <stddef.h>

struct registry;
struct metrics;
struct metrics_text;
struct batcher;
struct http_server;

typedef struct app_config {
    const char *host;           /* --host / TRC_HOST, default 127.0.0.1 */
    int port;                   /* --port / TRC_PORT, default 8080; 0 picks a free port */
    const char *models_dir;     /* --models-dir / TRC_MODELS_DIR, default models */
    const char *data_dir;       /* --data-dir / TRC_DATA_DIR, default var (jobs.db lives here) */
    const char *dashboard_dir;  /* --dashboard-dir / TRC_DASHBOARD_DIR, default clients/dashboard */
    const char *cors_origin;    /* --cors-origin / TRC_CORS_ORIGIN, comma-separated; NULL = off */
    const char *api_token;      /* TRC_API_TOKEN (environment only); NULL = no auth */
    size_t max_body;            /* --max-body, default 1 MiB: JSON bodies */
    size_t max_upload;          /* --max-upload, default 64 MiB: raw checkpoint uploads */
    size_t max_batch;           /* --max-batch, default 4096 samples per control request */
    int max_jobs;               /* --max-jobs, default 1: training jobs running at once */
    int max_queue;              /* --max-queue, default 64: queued jobs before 503 */
    int threads;                /* --threads, default = CPUs: inferences running at once */
    int max_connections;        /* --max-connections, default 4096 (each costs a descriptor) */
    int max_connections_per_ip; /* --max-connections-per-ip, default 64 */
    int request_timeout;        /* --request-timeout, default 30 s: whole request received */
    size_t max_body_memory;     /* --max-body-memory, default 256 MiB: JSON bodies in memory */
    int io_threads;             /* --io-threads, default 2: libmicrohttpd event threads */
    int workers;                /* --workers, default 64: handlers running at once */
    int batch_wait_us;          /* --batch-wait-us, default 200: wait for sending clients */
    int blas_threads;           /* --blas-threads, default 1: OpenBLAS threads per call */
    int access_log;             /* --access-log / TRC_ACCESS_LOG, default 1: a line per request */
    int training;               /* --training, default 1: 0 refuses POST /v1/train up front */
    int insecure_no_auth;       /* --insecure-no-auth: no generated token beyond loopback */
    /* limits of the jobs/models subsystem (server/jobs*.c, registry.c, routes_control.c) */
    int job_retention; /* --job-retention, default 100: finished jobs kept (oldest pruned) */
    int job_max_age;   /* --job-max-age, default 604800 s: finished jobs older are pruned; 0 off */
    int max_models;    /* --max-models, default 64: models loaded at once (507 beyond) */
    size_t max_jobs_disk;  /* --max-jobs-disk, default 4G: disk of <data-dir>/jobs (507 beyond) */
    int train_rate;        /* --train-rate, default 30: POST /v1/train per client per minute */
    size_t max_work;       /* --max-work, default 128G: rows*K*(n+1)*params of one request */
    size_t max_response;   /* --max-response, default 4M: estimated /v1/control response bytes */
    int max_polish_iters;  /* --max-polish-iters, default 100: /v1/control polish.max_iters */
    double dt;             /* --dt: time step of checkpoints recording none (0: refuse them) */
    const char *precision; /* --precision: the plans' weights, fp32 (default) or bf16 */
} app_config;

typedef struct app app;
/* Appends Prometheus text to out (see metrics_printf in server/metrics.h). */
typedef void (*app_metrics_hook)(app *a, struct metrics_text *out);

struct app {
    app_config cfg;
    struct registry *registry;     /* models by name (server/registry.h) */
    struct metrics *metrics;       /* counters and histograms (server/metrics.h) */
    struct batcher *batcher;       /* dynamic batching of /v1/control (server/batcher.h) */
    struct http_server *http;      /* the HTTP layer (server/http.h) */
    void *jobs;                    /* the job manager, owned by server/jobs*.c */
    app_metrics_hook jobs_metrics; /* set by jobs_init; NULL = no jobs section */
    app_metrics_hook http_metrics; /* set by http_create: connections, requests in flight */
    atomic_int draining;           /* 1 once shutdown began: /readyz 503, new work refused */
};

static inline int app_draining(app *a) {
    return atomic_load(&a->draining);
}

#endif
