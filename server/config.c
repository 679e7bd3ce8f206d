/* Command-line flags and TRC_* environment variables of trcd, one table (see config.h). */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "trc/error.h"
#include "trc/model.h"

typedef enum { STR, INT, SIZE, BOOL, DBL } kind;

typedef struct option {
    const char *name; /* flag without "--" */
    kind kind;
    size_t offset;
    long long lo, hi;
    const char *help;
} option;

#define OFF(f) offsetof(app_config, f)
static const option OPTIONS[] = {
    {"host", STR, OFF(host), 0, 0, "address to listen on (default 127.0.0.1)"},
    {"port", INT, OFF(port), 0, 65535, "port (default 8080; 0 picks a free one)"},
    {"models-dir", STR, OFF(models_dir), 0, 0, "checkpoints served, *.safetensors (models)"},
    {"data-dir", STR, OFF(data_dir), 0, 0, "job database and job files (var)"},
    {"dashboard-dir", STR, OFF(dashboard_dir), 0, 0, "static files at / (clients/dashboard)"},
    {"cors-origin", STR, OFF(cors_origin), 0, 0,
     "allowed CORS origins, comma-separated or * (off)"},
    {"max-body", SIZE, OFF(max_body), 64, (long long)1 << 34, "JSON body limit (1M)"},
    {"max-upload", SIZE, OFF(max_upload), 64, (long long)1 << 36,
     "checkpoint upload body limit (64M)"},
    {"max-batch", SIZE, OFF(max_batch), 1, 1 << 24, "samples per control request (4096)"},
    {"max-jobs", INT, OFF(max_jobs), 1, 64, "training jobs running at once (1)"},
    {"max-queue", INT, OFF(max_queue), 1, 100000, "queued jobs before 503 (64)"},
    {"threads", INT, OFF(threads), 1, 256, "model evaluations at once (number of CPUs)"},
    {"max-connections", INT, OFF(max_connections), 1, 1000000,
     "open connections, each a file descriptor (4096)"},
    {"max-connections-per-ip", INT, OFF(max_connections_per_ip), 1, 1000000,
     "open connections from one client address (64)"},
    {"request-timeout", INT, OFF(request_timeout), 1, 3600,
     "seconds to receive a whole request, headers and body; also the idle limit (30)"},
    {"max-body-memory", SIZE, OFF(max_body_memory), 4096, (long long)1 << 40,
     "request bodies held in memory at once, 503 beyond (256M)"},
    {"io-threads", INT, OFF(io_threads), 1, 64, "HTTP event threads (2)"},
    {"workers", INT, OFF(workers), 1, 4096, "request handlers running at once (64)"},
    {"batch-wait-us", INT, OFF(batch_wait_us), 0, 100000,
     "max wait for sending clients to join a batch, us (200)"},
    {"blas-threads", INT, OFF(blas_threads), 1, 256, "OpenBLAS threads per call (1)"},
    {"access-log", BOOL, OFF(access_log), 0, 1, "one stderr line per request (1)"},
    {"training", BOOL, OFF(training), 0, 1,
     "accept POST /v1/train (1); 0 where models are read-only, e.g. Kubernetes replicas"},
    {"insecure-no-auth", BOOL, OFF(insecure_no_auth), 0, 1,
     "beyond loopback with no TRC_API_TOKEN, serve without a token instead of generating one (0)"},
    {"job-retention", INT, OFF(job_retention), 0, 1000000,
     "finished jobs kept, older ones deleted with their files; 0 = no count limit (100)"},
    {"job-max-age", INT, OFF(job_max_age), 0, INT32_MAX,
     "seconds a finished job is kept; 0 keeps them (604800 = 7 days)"},
    {"max-models", INT, OFF(max_models), 1, 100000, "models loaded at once (64)"},
    {"max-jobs-disk", SIZE, OFF(max_jobs_disk), 0, (long long)1 << 50,
     "disk used by job files before new jobs get 507; 0 = no limit (4G)"},
    {"train-rate", INT, OFF(train_rate), 0, 1000000,
     "POST /v1/train per client address per minute, 429 beyond; 0 = no limit (30)"},
    {"max-work", SIZE, OFF(max_work), 1, (long long)1 << 50,
     "rows*K*(n+1)*parameters one control request may ask (128G)"},
    {"max-response", SIZE, OFF(max_response), 4096, (long long)1 << 34,
     "estimated size of a control response before 413 (4M)"},
    {"max-polish-iters", INT, OFF(max_polish_iters), 1, 100000,
     "largest polish.max_iters of a control request (100)"},
    {"dt", DBL, OFF(dt), 0, 1000000,
     "time step of checkpoints that record none and have no sidecar (none: refused)"},
    {"precision", STR, OFF(precision), 0, 0,
     "model weights: fp32, or bf16 (AVX512_BF16 CPUs, single architecture; controls differ by "
     "~1e-2 of the bound) (fp32)"},
};
#define NOPT (sizeof OPTIONS / sizeof OPTIONS[0])

void app_config_usage(FILE *f) {
    fprintf(f, "usage: trcd [flags]\n"
               "Serves TRC models over HTTP/JSON (see docs/server.md, proto/openapi.yaml).\n"
               "Each flag can also be set as TRC_<NAME> in the environment (e.g. TRC_PORT);\n"
               "TRC_API_TOKEN (environment only) makes state-changing routes need a bearer "
               "token;\nwithout it, a server listening beyond loopback generates one (logged, "
               "kept in <data-dir>/api-token).\n\n");
    for (size_t i = 0; i < NOPT; i++)
        fprintf(f, "  --%-22s %s\n", OPTIONS[i].name, OPTIONS[i].help);
    fprintf(f, "  --%-22s %s\n  --%-22s %s\n", "help", "this text", "version", "print the version");
}

static void defaults(app_config *c) {
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = 8080;
    c->models_dir = "models";
    c->data_dir = "var";
    c->dashboard_dir = "clients/dashboard";
    c->precision = "fp32";
    c->max_body = 1u << 20;
    c->max_upload = 64u << 20;
    c->max_batch = 4096;
    c->max_jobs = 1;
    c->max_queue = 64;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    c->threads = n > 0 ? (int)n : 1;
    c->max_connections = 4096;
    c->max_connections_per_ip = 64;
    c->request_timeout = 30;
    c->max_body_memory = (size_t)256 << 20;
    c->io_threads = 2;
    c->workers = 64;
    c->batch_wait_us = 200;
    c->blas_threads = 1;
    c->access_log = 1;
    c->training = 1;
    c->job_retention = 100;
    c->job_max_age = 7 * 24 * 3600;
    c->max_models = 64;
    c->max_jobs_disk = (size_t)4 << 30;
    c->train_rate = 30;
    c->max_work = (size_t)128 << 30;
    c->max_response = 4u << 20;
    c->max_polish_iters = 100;
}

/* "123", "64K", "1M", "2G" (binary multiples). */
static int parse_size(const char *s, long long *out) {
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    int shift = 0;
    switch (toupper((unsigned char)*end)) {
    case 'K':
        shift = 10;
        end++;
        break;
    case 'M':
        shift = 20;
        end++;
        break;
    case 'G':
        shift = 30;
        end++;
        break;
    default:
        break;
    }
    if (*end == 'i' || *end == 'B')
        end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
    if (*end || v > (INT64_MAX >> shift))
        return -1;
    *out = v << shift;
    return 0;
}

static int set(app_config *c, const option *o, const char *val, const char *from, char *err,
               size_t errlen) {
    void *dst = (char *)c + o->offset;
    long long v = 0;
    if (o->kind == STR) {
        *(const char **)dst = val;
        return 0;
    }
    if (o->kind == BOOL) {
        if (!strcmp(val, "1") || !strcmp(val, "true") || !strcmp(val, "yes") || !strcmp(val, "on"))
            v = 1;
        else if (!strcmp(val, "0") || !strcmp(val, "false") || !strcmp(val, "no") ||
                 !strcmp(val, "off"))
            v = 0;
        else {
            snprintf(err, errlen, "%s: expected true or false, got '%s'", from, val);
            return -1;
        }
        *(int *)dst = (int)v;
        return 0;
    }
    if (o->kind == DBL) { /* a positive finite number within [lo, hi] */
        char *end;
        errno = 0;
        double d = strtod(val, &end);
        if (errno || end == val || *end || !(d > (double)o->lo && d <= (double)o->hi)) {
            snprintf(err, errlen, "%s: expected a number in (%lld, %lld], got '%s'", from, o->lo,
                     o->hi, val);
            return -1;
        }
        *(double *)dst = d;
        return 0;
    }
    int bad;
    if (o->kind == SIZE) {
        bad = parse_size(val, &v) != 0;
    } else {
        char *end;
        errno = 0;
        v = strtoll(val, &end, 10);
        bad = errno || end == val || *end;
    }
    if (bad) {
        snprintf(err, errlen, "%s: expected %s, got '%s'", from,
                 o->kind == SIZE ? "a size (e.g. 1048576, 1M)" : "an integer", val);
        return -1;
    }
    if (v < o->lo || v > o->hi) {
        snprintf(err, errlen, "%s: must be between %lld and %lld, got %lld", from, o->lo, o->hi, v);
        return -1;
    }
    if (o->kind == SIZE)
        *(size_t *)dst = (size_t)v;
    else
        *(int *)dst = (int)v;
    return 0;
}

int app_config_parse(int argc, char **argv, app_config *cfg, FILE *out, char *err, size_t errlen) {
    defaults(cfg);
    for (size_t i = 0; i < NOPT; i++) {
        char env[64] = "TRC_";
        size_t k = 4;
        for (const char *p = OPTIONS[i].name; *p && k < sizeof env - 1; p++)
            env[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        env[k] = '\0';
        const char *v = getenv(env);
        if (v && *v && set(cfg, &OPTIONS[i], v, env, err, errlen))
            return -1;
    }
    const char *token = getenv("TRC_API_TOKEN");
    cfg->api_token = token && *token ? token : NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            app_config_usage(out);
            return 1;
        }
        if (!strcmp(arg, "--version")) {
            fprintf(out, "trcd 1.0.0\n");
            return 1;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", arg);
            return -1;
        }
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const option *o = NULL;
        for (size_t k = 0; k < NOPT; k++)
            if (strlen(OPTIONS[k].name) == nlen && !strncmp(OPTIONS[k].name, name, nlen))
                o = &OPTIONS[k];
        if (!o) {
            snprintf(err, errlen, "unknown flag '--%.*s' (see --help)", (int)nlen, name);
            return -1;
        }
        const char *val = eq ? eq + 1 : NULL;
        if (!val) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--%s needs a value", o->name);
                return -1;
            }
            val = argv[++i];
        }
        char from[80];
        snprintf(from, sizeof from, "--%s", o->name);
        if (set(cfg, o, val, from, err, errlen))
            return -1;
    }
    if (!cfg->host[0] || !cfg->models_dir[0] || !cfg->data_dir[0]) {
        snprintf(err, errlen, "--host, --models-dir and --data-dir must not be empty");
        return -1;
    }
    if (cfg->cors_origin && !cfg->cors_origin[0])
        cfg->cors_origin = NULL;
    trc_precision p;
    const char *why;
    if (trc_precision_parse(cfg->precision, &p)) {
        snprintf(err, errlen, "--precision: %s", trc_errmsg());
        return -1;
    }
    if (!trc_precision_available(p, &why)) {
        snprintf(err, errlen, "--precision %s: %s", cfg->precision, why);
        return -1;
    }
    return 0;
}
