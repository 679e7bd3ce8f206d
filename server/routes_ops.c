/* Operational routes: liveness (/healthz), readiness (/readyz: a model is loaded and the
 * server is not shutting down) and Prometheus metrics (/metrics). */
#include <stdlib.h>

#include "app.h"
#include "metrics.h"
#include "registry.h"
#include "routes.h"

static void on_healthz(app *a, const http_request *req, http_response *res) {
    (void)a;
    (void)req;
    http_reply_json(res, 200, json_pack("{s:s}", "status", "ok"));
}

static void on_readyz(app *a, const http_request *req, http_response *res) {
    if (http_draining(req)) {
        http_reply_error(res, 503, NULL, "shutting down");
        return;
    }
    if (registry_count(a->registry) == 0) {
        http_reply_error(res, 503, NULL, "no model is loaded yet");
        return;
    }
    http_reply_json(res, 200, json_pack("{s:s}", "status", "ready"));
}

static void on_metrics(app *a, const http_request *req, http_response *res) {
    (void)req;
    metrics_text out = {0};
    if (metrics_render(a->metrics, a, &out)) {
        free(out.buf);
        http_reply_error(res, 500, NULL, "out of memory");
        return;
    }
    http_reply_bytes(res, 200, "text/plain; version=0.0.4; charset=utf-8", out.buf, out.len);
}

int routes_ops_register(http_server *srv) {
    /* quick and never blocking: answered on the event thread, even with every worker busy */
    return http_route(srv, "GET", "/healthz", HTTP_INLINE, on_healthz) ||
           http_route(srv, "GET", "/readyz", HTTP_INLINE, on_readyz) ||
           http_route(srv, "GET", "/metrics", HTTP_INLINE, on_metrics);
}
