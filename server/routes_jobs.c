/* HTTP routes of training jobs: POST /v1/train (+ /train), GET /v1/jobs[?status=&limit=&cursor=],
 * GET /v1/jobs/{id}, POST /v1/jobs/{id}/cancel, POST /v1/jobs/{id}/resume, DELETE /v1/jobs/{id}.
 * Parsing and JSON building live in proto/train_spec.c, the work in jobs.c. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"
#include "jobstore.h"

static void reply_error(http_response *res, const proto_error *err, int retry_after) {
    if ((err->code == 503 || err->code == 429) && retry_after > 0) {
        char v[16];
        snprintf(v, sizeof v, "%d", retry_after);
        http_add_header(res, "Retry-After", v);
    }
    http_reply_proto_error(res, err);
}

static void reply_job(http_response *res, int status, const trc_job *job) {
    json_t *body = trc_job_to_json(job);
    if (!body)
        http_reply_error(res, 500, NULL, "out of memory building the job");
    else
        http_reply_json(res, status, body);
}

/* A server whose models directory is read-only (Kubernetes replicas) would train to the end and
 * then fail to publish: refuse up front and say where training runs instead. */
static int refuse_if_training_off(app *a, http_response *res) {
    if (a->cfg.training)
        return 0;
    http_reply_error(res, 403, NULL,
                     "training is disabled on this server (--training 0): run it as a Kubernetes "
                     "Job (docker/k8s/train-job.yaml), or on a server with a writable models "
                     "directory");
    return 1;
}

static void on_train(app *a, const http_request *req, http_response *res) {
    if (http_query_refuse(req, res, NULL))
        return;
    if (refuse_if_training_off(a, res))
        return;
    size_t len;
    const char *body = http_body(req, &len);
    proto_error err;
    memset(&err, 0, sizeof err);
    /* every attempt counts, valid or not: a flood of bad specs costs parsing too */
    char client[64];
    http_client_addr(req, client, sizeof client);
    int wait = 0;
    if (jobs_admit(a->jobs, client, &wait, &err) != 0) {
        reply_error(res, &err, wait);
        return;
    }
    json_t *obj = NULL;
    if (len > 0 && !(obj = proto_parse_object(body, len, &err))) {
        http_reply_proto_error(res, &err);
        return;
    }
    trc_train_spec spec;
    int rc = trc_train_spec_parse(obj, &spec, &err); /* an empty body means every default */
    json_decref(obj);
    if (rc != 0) {
        http_reply_proto_error(res, &err);
        return;
    }
    trc_job job;
    int retry_after = 0;
    if (jobs_submit(a->jobs, &spec, &job, &retry_after, &err) != 0) {
        reply_error(res, &err, retry_after);
        return;
    }
    char location[64];
    snprintf(location, sizeof location, "/v1/jobs/%s", job.id);
    http_add_header(res, "Location", location);
    http_reply_json(res, 202,
                    json_pack("{s:s, s:s, s:s}", "job_id", job.id, "name", job.name, "status",
                              trc_job_status_name(job.status)));
}

#define LIST_DEFAULT 100 /* jobs per page of GET /v1/jobs */
#define LIST_MAX 1000

/* An optional integer query argument in [lo, hi]; on a bad one answers 400 and returns -1. */
static int query_int(const http_request *req, const char *name, long long lo, long long hi,
                     long long *out, http_response *res) {
    const char *v = http_query(req, name);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > hi) {
        http_reply_error(res, 400, name, "%s must be an integer between %lld and %lld, got '%.40s'",
                         name, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

static void on_list(app *a, const http_request *req, http_response *res) {
    static const char *const query[] = {"status", "limit", "cursor", NULL};
    if (http_query_refuse(req, res, query))
        return;
    int status = -1;
    const char *filter = http_query(req, "status");
    if (filter) {
        trc_job_status st;
        if (trc_job_status_parse(filter, &st) != 0) {
            http_reply_error(res, 400, "status",
                             "status must be queued, running, succeeded, failed or cancelled, "
                             "got '%s'",
                             filter);
            return;
        }
        status = (int)st;
    }
    long long limit = LIST_DEFAULT, cursor = 0;
    if (query_int(req, "limit", 1, LIST_MAX, &limit, res) ||
        query_int(req, "cursor", 1, LLONG_MAX, &cursor, res))
        return;
    trc_job *list = NULL;
    size_t n = 0;
    long long next = 0;
    proto_error err;
    if (jobs_list(a->jobs, status, cursor, (size_t)limit, &list, &n, &next, &err) != 0) {
        http_reply_proto_error(res, &err);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        if (json_array_append_new(arr, trc_job_to_json(&list[i])) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    jobstore_free_list(list, n);
    char next_text[32];
    snprintf(next_text, sizeof next_text, "%lld", next);
    json_t *body = arr ? json_pack("{s:o, s:o}", "jobs", arr, "next_cursor",
                                   next ? json_string(next_text) : json_null())
                       : NULL;
    if (!body)
        http_reply_error(res, 500, NULL, "out of memory building the job list");
    else
        http_reply_json(res, 200, body);
}

static void on_get(app *a, const http_request *req, http_response *res) {
    if (http_query_refuse(req, res, NULL))
        return;
    trc_job job;
    proto_error err;
    if (jobs_get(a->jobs, http_param(req, "id"), &job, &err) != 0) {
        http_reply_proto_error(res, &err);
        return;
    }
    reply_job(res, 200, &job);
    trc_job_free(&job);
}

static void on_cancel(app *a, const http_request *req, http_response *res) {
    if (http_query_refuse(req, res, NULL))
        return;
    trc_job job;
    proto_error err;
    if (jobs_cancel(a->jobs, http_param(req, "id"), &job, &err) != 0) {
        http_reply_proto_error(res, &err);
        return;
    }
    reply_job(res, 200, &job);
    trc_job_free(&job);
}

static void on_resume(app *a, const http_request *req, http_response *res) {
    if (http_query_refuse(req, res, NULL))
        return;
    if (refuse_if_training_off(a, res))
        return;
    trc_job job;
    proto_error err;
    int retry_after = 0;
    const char *id = http_param(req, "id");
    if (jobs_resume(a->jobs, id, &job, &retry_after, &err) != 0) {
        reply_error(res, &err, retry_after);
        return;
    }
    char location[64];
    snprintf(location, sizeof location, "/v1/jobs/%s", job.id);
    http_add_header(res, "Location", location);
    reply_job(res, 202, &job);
    trc_job_free(&job);
}

static void on_delete(app *a, const http_request *req, http_response *res) {
    if (http_query_refuse(req, res, NULL))
        return;
    proto_error err;
    const char *id = http_param(req, "id");
    if (jobs_delete(a->jobs, id, &err) != 0) {
        http_reply_proto_error(res, &err);
        return;
    }
    http_reply_json(res, 200, json_pack("{s:s}", "deleted", id));
}

void jobs_register_routes(app *a, http_server *srv) {
    (void)a;
    http_route(srv, "POST", "/v1/train", HTTP_AUTH | HTTP_BODY_JSON, on_train);
    http_route(srv, "POST", "/train", HTTP_AUTH | HTTP_BODY_JSON, on_train);
    http_route(srv, "GET", "/v1/jobs", 0, on_list);
    http_route(srv, "GET", "/v1/jobs/{id}", 0, on_get);
    http_route(srv, "DELETE", "/v1/jobs/{id}", HTTP_AUTH, on_delete);
    http_route(srv, "POST", "/v1/jobs/{id}/cancel", HTTP_AUTH, on_cancel);
    http_route(srv, "POST", "/v1/jobs/{id}/resume", HTTP_AUTH, on_resume);
}
