/* The HTTP layer of trcd over libmicrohttpd: a route table (server/router.h), body accumulation
 * with limits, Content-Type, cross-site and bearer checks, CORS, request deadlines, one log
 * line per request, per-route metrics.
 *
 * For route authors (server/routes_*.c, e.g. "jobs" in server/routes_jobs.c):
 *   - Register at start-up, before http_start():
 *       http_route(srv, "POST", "/v1/jobs/{id}/cancel", HTTP_AUTH | HTTP_BODY_JSON, on_cancel);
 *     `{name}` matches one non-empty path segment; read it with http_param(req, "name").
 *   - Before a handler runs, this layer has already answered: bad framing (conflicting
 *     Content-Length, Content-Length with Transfer-Encoding: 400; a transfer coding other than
 *     chunked: 501), unknown path (404), wrong method (405 + Allow), a state-changing
 *     (HTTP_AUTH) request from a page of another site, i.e. an Origin neither the Host nor
 *     allowed by --cors-origin (403), missing/wrong bearer token on HTTP_AUTH routes when
 *     TRC_API_TOKEN is set (401/403), a body that is not JSON (415; accepted: application/json,
 *     and application/x-www-form-urlencoded, curl -d's default, when the body parses as JSON;
 *     HTTP_BODY_RAW also admits application/octet-stream; HTTP_AUTH routes refuse any other
 *     declared type even without a body), a body over --max-body (or --max-upload for raw
 *     bodies) (413), bodies in memory over --max-body-memory (503 + Retry-After), CORS
 *     preflight; it logs and counts every request (route pattern + status + latency).
 *   - A handler runs on a worker thread (never on an event thread) with the whole body: in
 *     memory for JSON, mapped from an unlinked temporary file in --data-dir for raw uploads
 *     (so an upload costs disk, not memory; http_body still returns it). It must answer
 *     exactly once through res: http_reply_json / http_reply_error / http_reply_proto_error /
 *     http_reply_bytes (+ http_add_header, e.g. Location, Retry-After). Forgetting to answer is
 *     a bug the layer turns into a 500. HTTP_INLINE handlers (quick ones: health, metrics) run
 *     on the event thread instead.
 *   - Handlers may block (the batcher does; --workers of them at once) but never for long:
 *     training runs elsewhere.
 *   - Error bodies always have the shape of proto.h; use the HTTP status to pick the type.
 */
#ifndef TRCD_HTTP_H
#define TRCD_HTTP_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct app;
typedef struct http_server http_server;
typedef struct http_request http_request;
typedef struct http_response http_response;

/* Route flags. */
enum {
    HTTP_AUTH = 1,      /* changes state: needs "Authorization: Bearer <TRC_API_TOKEN>" if set */
    HTTP_BODY_JSON = 2, /* takes a body: application/json when present (else 415) */
    HTTP_BODY_RAW = 4,  /* also takes application/octet-stream, up to --max-upload bytes */
    HTTP_INLINE = 8,    /* quick, never blocks: runs on the event thread, not a worker */
    HTTP_DEFER = 16,    /* may answer after returning (http_defer); quick until then: runs on
                           the event thread when the body is small, else on a worker */
};

typedef void (*http_handler)(struct app *app, const http_request *req, http_response *res);

/* ---- server life (main.c) ---- */
int http_create(struct app *app, http_server **out);
/* Registers a route; method is "GET", "POST", "DELETE" ("GET" routes also answer HEAD).
 * Returns 0, or -1 when the table is full or the pattern is malformed. */
int http_route(http_server *srv, const char *method, const char *pattern, unsigned flags,
               http_handler fn);
/* Binds --host:--port (port 0 picks a free one) and starts serving. */
int http_start(http_server *srv);
int http_bound_port(const http_server *srv);
/* The most requests handled at once over the last 100-200 ms: how many clients are sending now
 * (srv is an http_server *; the signature suits callbacks). Idle connections and requests still
 * being received do not count. */
int http_recent_concurrency(void *srv);
/* Stops accepting new connections (existing keep-alive connections are still served). */
void http_quiesce(http_server *srv);
/* Waits until no request is being handled, or timeout_ms passes; returns the number left. */
int http_drain(http_server *srv, int timeout_ms);
/* Closes every connection and frees the server. */
void http_destroy(http_server *srv);
/* The routes in registration order (for metrics labels). */
size_t http_route_count(const http_server *srv);
void http_route_at(const http_server *srv, size_t i, const char **method, const char **pattern);

/* ---- request accessors (valid during the handler) ---- */
const char *http_method(const http_request *req);
const char *http_path(const http_request *req);
/* The value of a `{name}` segment of the matched pattern, or NULL. */
const char *http_param(const http_request *req, const char *name);
/* A query-string argument (already URL-decoded), or NULL. */
const char *http_query(const http_request *req, const char *name);
/* 0 when every query-string argument is one of `allowed` (NULL-terminated) and none is given
 * twice; otherwise -1 and a 400 in err naming it. */
int http_query_check(const http_request *req, const char *const *allowed, proto_error *err);
/* http_query_check answering its 400 through res: 1 when answered (allowed NULL: no argument
 * is). For the top of a handler: `if (http_query_refuse(req, res, NULL)) return;`. */
int http_query_refuse(const http_request *req, http_response *res, const char *const *allowed);
/* A request header (case-insensitive name), or NULL. */
const char *http_header(const http_request *req, const char *name);
/* The body; "" when there is none. A JSON body is NUL-terminated for convenience (*len excludes
 * the NUL); a raw one (http_body_is_raw) is a read-only mapping and is not. */
const char *http_body(const http_request *req, size_t *len);
/* A flag that becomes 1 (within 100 ms) when the client has closed its side of the connection
 * or reset it while its request is handled: long work may stop (the answer would go nowhere).
 * NULL when the connection is not tracked. */
const atomic_int *http_client_gone(const http_request *req);
/* 1 when the body was sent as application/octet-stream (HTTP_BODY_RAW routes). */
int http_body_is_raw(const http_request *req);
/* Whether the server was shutting down when this request's handler started. Its answer then
 * closes the connection; a route that answers 503 while draining (/readyz) asks this, not the
 * app, so that its status and the close agree. */
int http_draining(const http_request *req);
/* The client's address as text ("127.0.0.1", "::1") into buf (INET6_ADDRSTRLEN = 46 bytes
 * suffice); "unknown" and -1 when the connection has none. */
int http_client_addr(const http_request *req, char *buf, size_t size);

/* ---- answering ---- */
/* Sends body (steals the reference) with Content-Type application/json. */
void http_reply_json(http_response *res, int status, json_t *body);
/* Sends the error shape; type from the status (proto_error_type); param may be NULL. */
void http_reply_error(http_response *res, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void http_reply_proto_error(http_response *res, const proto_error *err);
/* Sends data (malloc'd; ownership passes to the layer) with the given Content-Type. */
void http_reply_bytes(http_response *res, int status, const char *content_type, void *data,
                      size_t len);
/* Adds a response header (copied). Returns 0 or -1 when full. */
int http_add_header(http_response *res, const char *name, const char *value);

/* ---- answering later (HTTP_DEFER routes) ---- */
/* The handler answers after it returns: it keeps res (and the request: http_client_gone stays
 * valid), fills it later from any thread and calls http_resume(res) exactly once. */
void http_defer(http_response *res);
void http_resume(http_response *res);
/* Runs fn(arg) on a worker thread: for the slow part of a deferred answer, which must not run
 * on an event thread or in the batcher. */
void http_run_on_worker(http_response *res, void (*fn)(void *arg), void *arg);

#endif
