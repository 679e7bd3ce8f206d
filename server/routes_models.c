/* The model routes: list, describe, load (a file of the models directory, or the checkpoint
 * itself as an application/octet-stream body, with ?dt= for one that records no time step)
 * and delete. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "registry.h"
#include "routes.h"
#include "trc/checkpoint.h"

static void on_list(app *a, const http_request *req, http_response *res) {
    if (http_query_refuse(req, res, NULL))
        return;
    json_t *out = registry_list_json(a->registry);
    if (out)
        http_reply_json(res, 200, out);
    else
        http_reply_error(res, 500, NULL, "out of memory");
}

/* Replies with the description of the loaded model `name`; when it is not loaded, with status
 * `missing` and "model '<name>' <why>". */
static void reply_model(app *a, http_response *res, const char *name, int missing,
                        const char *why) {
    model_snapshot *snap = registry_get(a->registry, name);
    if (!snap) {
        http_reply_error(res, missing, "name", "model '%s' %s", name, why);
        return;
    }
    http_reply_json(res, 200, snapshot_info_json(snap));
    snapshot_release(snap);
}

static void on_get(app *a, const http_request *req, http_response *res) {
    if (http_query_refuse(req, res, NULL))
        return;
    reply_model(a, res, http_param(req, "name"), 404, "is not loaded");
}

/* ?dt= of an upload: the time step, in seconds, of a checkpoint that records none. *dt = 0 when
 * absent; -1 with a 400 naming "dt" unless a plain decimal number in (0, TRC_CKPT_MAX_DT]. */
static int query_dt(const http_request *req, double *dt, proto_error *err) {
    static const char *const allowed[] = {"dt", NULL};
    *dt = 0;
    if (http_query_check(req, allowed, err))
        return -1;
    const char *v = http_query(req, "dt");
    if (!v)
        return 0;
    char *end = NULL;
    /* digits, point, exponent only: no "nan", "inf", hex floats or spaces */
    double x = v[0] && strspn(v, "0123456789.eE+-") == strlen(v) ? strtod(v, &end) : NAN;
    if (!isfinite(x) || !end || *end || !(x > 0) || x > TRC_CKPT_MAX_DT)
        return proto_fail(err, 400, "dt",
                          "dt must be the time step in seconds, a number > 0 and <= %g "
                          "(e.g. ?dt=0.1), got '%.40s'",
                          TRC_CKPT_MAX_DT, v);
    *dt = x;
    return 0;
}

static void on_load(app *a, const http_request *req, http_response *res) {
    const char *name = http_param(req, "name");
    proto_error err;
    double dt;
    if (proto_check_name(name, "name", &err) || query_dt(req, &dt, &err)) {
        http_reply_proto_error(res, &err);
        return;
    }
    size_t len;
    const char *body = http_body(req, &len);
    int rc;
    if (http_body_is_raw(req)) {
        if (len == 0) {
            http_reply_error(res, 400, "body", "the checkpoint body is empty");
            return;
        }
        rc = registry_load_bytes(a->registry, name, (const uint8_t *)body, len, dt, &err);
    } else if (dt > 0) {
        http_reply_error(res, 400, "dt",
                         "dt is for uploads (application/octet-stream): a checkpoint of the "
                         "models directory takes its time step from its metadata or its "
                         "sidecar <stem>.json");
        return;
    } else {
        proto_load_req lr;
        rc = proto_load_parse(body, len, &lr, &err);
        if (!rc)
            rc = registry_load_file(a->registry, name, lr.checkpoint, &err);
    }
    if (rc) {
        http_reply_proto_error(res, &err);
        return;
    }
    reply_model(a, res, name, 409, "was deleted while loading"); /* between the load and now */
}

static void on_delete(app *a, const http_request *req, http_response *res) {
    if (http_query_refuse(req, res, NULL))
        return;
    const char *name = http_param(req, "name");
    proto_error err;
    if (registry_remove(a->registry, name, &err)) {
        http_reply_proto_error(res, &err);
        return;
    }
    http_reply_json(res, 200, json_pack("{s:s}", "deleted", name));
}

int routes_models_register(http_server *srv) {
    return http_route(srv, "GET", "/v1/models", 0, on_list) ||
           http_route(srv, "GET", "/v1/models/{name}", 0, on_get) ||
           http_route(srv, "DELETE", "/v1/models/{name}", HTTP_AUTH, on_delete) ||
           http_route(srv, "POST", "/v1/models/{name}/load",
                      HTTP_AUTH | HTTP_BODY_JSON | HTTP_BODY_RAW, on_load);
}
