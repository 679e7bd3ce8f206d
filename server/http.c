/* The HTTP layer (see http.h) on libmicrohttpd in event-driven mode: a few event threads
 * (epoll) carry every connection, so an idle or slow connection costs a descriptor and a small
 * buffer, not a thread. Handlers never run on an event thread (except HTTP_INLINE ones, which
 * are quick): once the body is complete the connection is suspended and the request handed to
 * the worker pool (server/workpool.h); the worker answers, resumes the connection, and the
 * event thread sends the answer. Many workers can wait in the dynamic batcher at once, so
 * concurrent requests still join one batch.
 *
 * A request goes through on_request() several times: first with only the headers (framing,
 * size limits, routing, CORS preflight, cross-site and auth checks, Content-Type and
 * Content-Length are decided here, so a refused body is never stored), then once per body
 * chunk (kept in memory up to the route's limit, or streamed to an unlinked temporary file for
 * raw uploads), then with no data: the handler is dispatched; then, resumed, the answer goes
 * out. on_completed() frees it. deadline.h bounds the time to receive a request. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "deadline.h"
#include "http.h"
#include "http_rules.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "router.h"
#include "workpool.h"

#define MAX_HEADERS 8
#define LISTEN_BACKLOG 1024 /* connections the kernel holds while trcd is full or busy */
#define MHD_LOG_PER_SECOND 10
#define WINDOW_MS 100     /* window of the recent-concurrency estimate */
#define URL_MAX 8192      /* longer request targets: 414 */
#define HEADERS_MAX 16384 /* larger header blocks: 431 */
#define MHD_POOL                                                                                   \
    (32u << 10) /* libmicrohttpd's per-connection buffer (it answers HTML 414 or                   \
                   431 itself only past it) */
#define DISCARD_MAX                                                                                \
    (8u << 20) /* a refused body up to this size is read and dropped, so a                         \
                  client that sends it all before reading sees the answer */
#define RETRY_AFTER_BUSY "1"
#define INLINE_BODY_MAX                                                                            \
    (64u << 10) /* HTTP_DEFER handlers run on the event thread up to this body size (parsing       \
                   it is quick); larger bodies go to a worker */

typedef struct route_info {
    unsigned flags;
    http_handler fn;
} route_info;

struct http_server {
    app *app;
    struct MHD_Daemon *daemon;
    listener *listener; /* ours, not libmicrohttpd's: see listener.h */
    log_budget mhd_log; /* libmicrohttpd's messages: a client provokes one per refused connection */
    router router;
    route_info info[ROUTER_MAX_ROUTES];
    int port;
    workpool *pool;
    deadlines *deadlines;
    pthread_mutex_t lock; /* guards the counters below */
    pthread_cond_t idle;
    pthread_cond_t unhandled; /* handling dropped to 0 */
    int active;               /* requests between their first call and on_completed */
    int handling;             /* requests dispatched and not yet answered */
    int peak_cur, peak_prev;  /* most requests handled at once in this and the previous window */
    struct timespec window;   /* start of the current window (WINDOW_MS long) */
    size_t body_bytes;        /* memory held by request bodies (reserved at their length) */
    unsigned long long refused_busy, connections, closed_total;
    char *cors; /* copy of --cors-origin, split on ',' into cors_list */
    const char *cors_list[16];
    size_t ncors;
};

struct http_response {
    int status;
    int set;
    char *body;
    size_t len;
    const char *ctype;
    char *hname[MAX_HEADERS], *hvalue[MAX_HEADERS];
    int nh;
};

struct http_request {
    workpool_item item; /* first: the pool hands it back */
    http_server *srv;
    struct MHD_Connection *conn;
    deadline_conn *dl;
    const char *method;
    char *path;
    long route_idx; /* -1 when unmatched */
    const route_info *route;
    router_match m;
    rules_ctype ctype;
    char *body; /* malloc'd (JSON) or mapped from tmp_fd (raw) */
    size_t len, cap, limit, reserved;
    int raw;
    int tmp_fd;     /* raw uploads: an unlinked temporary file, -1 otherwise */
    int mapped;     /* body is an mmap of tmp_fd */
    int answered;   /* a response was queued */
    int dispatched; /* handed to the pool (or run inline) */
    int refused;    /* early answer in `pending`, sent when the body has been read and dropped */
    int close;      /* answered before the end of the body (or a framing error): close */
    int draining;   /* the server was draining when the handler started (http_draining) */
    size_t dropped; /* body bytes read and dropped */
    http_response pending; /* refused: the answer; dispatched: the handler's answer */
    struct timespec t0;
    int on_event_thread; /* the handler runs (ran) on the event thread */
    int deferred;        /* the handler called http_defer */
    atomic_int parts;    /* deferred: the handler's return and http_resume; the last resumes */
    workpool_item later; /* http_run_on_worker */
    void (*later_fn)(void *arg);
    void *later_arg;
};

static double elapsed(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* ---- routes ---- */

int http_route(http_server *srv, const char *method, const char *pattern, unsigned flags,
               http_handler fn) {
    long i = router_add(&srv->router, method, pattern);
    if (i < 0)
        return -1;
    srv->info[i].flags = flags;
    srv->info[i].fn = fn;
    return 0;
}

size_t http_route_count(const http_server *srv) {
    return srv->router.n;
}

void http_route_at(const http_server *srv, size_t i, const char **method, const char **pattern) {
    *method = srv->router.routes[i].method;
    *pattern = srv->router.routes[i].pattern;
}

/* ---- request accessors ---- */

const char *http_method(const http_request *req) {
    return req->method;
}
const char *http_path(const http_request *req) {
    return req->path;
}
const char *http_param(const http_request *req, const char *name) {
    return router_param(&req->m, name);
}
const char *http_query(const http_request *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}
typedef struct query_scan {
    const char *const *allowed;
    unsigned seen; /* bit i: allowed[i] given */
    const char *bad;
    int repeated;
} query_scan;

static enum MHD_Result scan_query(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value) {
    (void)kind;
    (void)value;
    query_scan *q = cls;
    for (unsigned i = 0; i < 32 && q->allowed[i]; i++)
        if (strcmp(key, q->allowed[i]) == 0) {
            q->repeated = (q->seen >> i) & 1u;
            q->seen |= 1u << i;
            if (!q->repeated)
                return MHD_YES;
            break;
        }
    q->bad = key;
    return MHD_NO; /* stop at the first fault */
}

int http_query_check(const http_request *req, const char *const *allowed, proto_error *err) {
    query_scan q = {.allowed = allowed};
    MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, scan_query, &q);
    if (!q.bad)
        return 0;
    if (q.repeated)
        return proto_fail(err, 400, q.bad, "query parameter '%.64s' is given more than once",
                          q.bad);
    char names[128] = "";
    for (size_t i = 0, n = 0; allowed[i] && n < sizeof names; i++)
        n += (size_t)snprintf(names + n, sizeof names - n, "%s%s", i ? ", " : "", allowed[i]);
    return proto_fail(err, 400, q.bad, "unknown query parameter '%.64s' (this route takes: %s)",
                      q.bad, allowed[0] ? names : "none");
}

int http_query_refuse(const http_request *req, http_response *res, const char *const *allowed) {
    static const char *const none[] = {NULL};
    proto_error err;
    if (!http_query_check(req, allowed ? allowed : none, &err))
        return 0;
    http_reply_proto_error(res, &err);
    return 1;
}

const char *http_header(const http_request *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}
const char *http_body(const http_request *req, size_t *len) {
    if (len)
        *len = req->len;
    return req->body ? req->body : "";
}
int http_body_is_raw(const http_request *req) {
    return req->raw;
}
int http_draining(const http_request *req) {
    return req->draining;
}
int http_client_addr(const http_request *req, char *buf, size_t size) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    const void *addr = NULL;
    if (sa && sa->sa_family == AF_INET)
        addr = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    else if (sa && sa->sa_family == AF_INET6)
        addr = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
    if (!addr || !inet_ntop(sa->sa_family, addr, buf, (socklen_t)size)) {
        snprintf(buf, size, "unknown");
        return -1;
    }
    return 0;
}

/* ---- answering ---- */

static void response_reset(http_response *res) {
    free(res->body);
    res->body = NULL;
    res->len = 0;
}

void http_reply_bytes(http_response *res, int status, const char *content_type, void *data,
                      size_t len) {
    response_reset(res);
    res->status = status;
    res->body = data;
    res->len = len;
    res->ctype = content_type;
    res->set = 1;
}

void http_reply_json(http_response *res, int status, json_t *body) {
    char *text = body ? json_dumps(body, PROTO_REAL_FLAGS) : NULL;
    json_decref(body);
    if (!text) {
        http_reply_error(res, 500, NULL, "could not encode the response");
        return;
    }
    size_t n = strlen(text);
    /* a trailing newline keeps curl output readable */
    char *p = realloc(text, n + 2);
    if (p) {
        text = p;
        text[n++] = '\n';
        text[n] = '\0';
    }
    http_reply_bytes(res, status, "application/json", text, n);
}

void http_reply_proto_error(http_response *res, const proto_error *err) {
    json_t *e = proto_error_json(err);
    char *text = e ? json_dumps(e, JSON_COMPACT) : NULL;
    json_decref(e);
    if (!text) {
        static const char oom[] = "{\"error\":{\"code\":500,\"type\":\"internal\","
                                  "\"message\":\"out of memory\"}}";
        text = strdup(oom);
        if (!text)
            return;
    }
    http_reply_bytes(res, err->code, "application/json", text, strlen(text));
}

void http_reply_error(http_response *res, int status, const char *param, const char *fmt, ...) {
    proto_error err = {.code = status};
    if (param)
        snprintf(err.param, sizeof err.param, "%s", param);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    http_reply_proto_error(res, &err);
}

int http_add_header(http_response *res, const char *name, const char *value) {
    if (res->nh == MAX_HEADERS)
        return -1;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return -1;
    }
    res->hname[res->nh] = n;
    res->hvalue[res->nh++] = v;
    return 0;
}

static void response_free(http_response *res) {
    response_reset(res);
    for (int i = 0; i < res->nh; i++) {
        free(res->hname[i]);
        free(res->hvalue[i]);
    }
    res->nh = 0;
}

/* ---- CORS, cross-site, auth ---- */

/* The Access-Control-Allow-Origin value for this Origin, or NULL when it is not allowed. */
static const char *cors_allow(const http_server *srv, const char *origin) {
    for (size_t i = 0; i < srv->ncors; i++) {
        if (strcmp(srv->cors_list[i], "*") == 0)
            return "*";
        if (origin && strcmp(srv->cors_list[i], origin) == 0)
            return origin;
    }
    return NULL;
}

static int equal_ct(const char *a, const char *b) {
    /* constant time in the length of b (the token) */
    size_t na = strlen(a), nb = strlen(b);
    unsigned char diff = na != nb;
    for (size_t i = 0; i < nb; i++)
        diff |= (unsigned char)(a[i < na ? i : 0] ^ b[i]);
    return diff == 0;
}

/* 0 when allowed; otherwise fills res with 401/403. */
static int check_auth(const http_server *srv, const http_request *req, http_response *res) {
    const char *token = srv->app->cfg.api_token;
    if (!token || !token[0] || !(req->route->flags & HTTP_AUTH))
        return 0;
    const char *h = http_header(req, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
        http_reply_error(res, 401, NULL, "this route needs \"Authorization: Bearer <token>\"");
        http_add_header(res, "WWW-Authenticate", "Bearer");
        return -1;
    }
    const char *given = h + 7;
    while (*given == ' ')
        given++;
    if (!equal_ct(given, token)) {
        http_reply_error(res, 403, NULL, "the bearer token is not valid");
        return -1;
    }
    return 0;
}

/* ---- sending ---- */

/* Counts and logs a finished request (answered, or its client gone first). */
static void record(const http_request *req, int status, size_t bytes) {
    const http_server *srv = req->srv;
    const app *a = srv->app;
    double secs = elapsed(&req->t0);
    metrics_observe_request(a->metrics, req->route_idx < 0 ? srv->router.n : (size_t)req->route_idx,
                            status, secs);
    if (a->cfg.access_log)
        log_msg("%s %.200s%s %d %zuB %.3fms", req->method, req->path,
                strlen(req->path) > 200 ? "..." : "", status, bytes, secs * 1e3);
}

static enum MHD_Result send_response(http_request *req, http_response *res) {
    http_server *srv = req->srv;
    app *a = srv->app;
    if (!res->set)
        http_reply_error(res, 500, NULL, "the handler gave no answer");
    struct MHD_Response *r =
        MHD_create_response_from_buffer(res->len, res->body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        response_free(res);
        return MHD_NO;
    }
    size_t bytes = res->len;
    res->body = NULL; /* owned by the MHD response now */
    if (res->ctype)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, res->ctype);
    for (int i = 0; i < res->nh; i++)
        MHD_add_response_header(r, res->hname[i], res->hvalue[i]);
    const char *allow = cors_allow(srv, http_header(req, "Origin"));
    if (allow) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, allow);
        MHD_add_response_header(r, "Access-Control-Expose-Headers", "Location, Retry-After");
        if (strcmp(allow, "*") != 0)
            MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
    }
    /* an answer before the end of the body closes: the rest is not read; so does one while
     * draining -- as its handler saw it, so that a /readyz 200 never comes with a close */
    if (req->close || (req->dispatched ? req->draining : app_draining(a)))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(req->conn, (unsigned)res->status, r);
    MHD_destroy_response(r);
    req->answered = 1;
    record(req, res->status, bytes);
    response_free(res);
    return ok;
}

static void set_error(http_response *res, int status, const char *allow, const char *fmt,
                      va_list ap) {
    proto_error err = {.code = status};
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    http_reply_proto_error(res, &err);
    if (allow)
        http_add_header(res, MHD_HTTP_HEADER_ALLOW, allow);
}

static enum MHD_Result answer_error(http_request *req, int status, const char *allow,
                                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result answer_error(http_request *req, int status, const char *allow,
                                    const char *fmt, ...) {
    http_response res = {0};
    va_list ap;
    va_start(ap, fmt);
    set_error(&res, status, allow, fmt, ap);
    va_end(ap);
    return send_response(req, &res);
}

/* Sends the refusal in req->pending now unless the body is to be read and dropped first. */
static enum MHD_Result send_early(http_request *req, unsigned long long length, int chunked) {
    int body = length > 0 || chunked;
    if (body && length <= DISCARD_MAX && !http_header(req, MHD_HTTP_HEADER_EXPECT))
        return MHD_YES; /* on_request sends it once the body has been dropped */
    req->close = body;
    return send_response(req, &req->pending);
}

/* Refuses a request whose body may still be on its way. When the body is announced small
 * enough (and the client is not waiting for "100 Continue"), the answer is kept until the body
 * has been read and dropped: a client that sends its whole body before reading (Python's
 * http.client, urllib) would otherwise get a reset instead of the answer. Otherwise it is sent
 * at once and the connection closed. */
static void refuse(http_request *req, unsigned long long length, int chunked, const char *extra,
                   const char *extra_value, int status, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
static void refuse(http_request *req, unsigned long long length, int chunked, const char *extra,
                   const char *extra_value, int status, const char *fmt, ...) {
    http_response *res = &req->pending;
    va_list ap;
    va_start(ap, fmt);
    set_error(res, status, NULL, fmt, ap);
    va_end(ap);
    if (extra)
        http_add_header(res, extra, extra_value);
    req->refused = 1;
    send_early(req, length, chunked);
}

/* Called with srv->lock held when a request is dispatched: keeps the peak of concurrent
 * requests over the last one or two windows, a cheap estimate of how many clients are sending
 * right now. */
static void note_concurrency(http_server *srv, const struct timespec *now) {
    long ms =
        (now->tv_sec - srv->window.tv_sec) * 1000 + (now->tv_nsec - srv->window.tv_nsec) / 1000000;
    if (ms >= WINDOW_MS) {
        srv->peak_prev = ms >= 2 * WINDOW_MS ? 0 : srv->peak_cur;
        srv->peak_cur = 0;
        srv->window = *now;
    }
    if (srv->handling > srv->peak_cur)
        srv->peak_cur = srv->handling;
}

int http_recent_concurrency(void *arg) {
    http_server *srv = arg;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&srv->lock);
    long ms =
        (now.tv_sec - srv->window.tv_sec) * 1000 + (now.tv_nsec - srv->window.tv_nsec) / 1000000;
    int peak = ms >= 2 * WINDOW_MS              ? 0
               : ms >= WINDOW_MS                ? srv->peak_cur
               : srv->peak_cur > srv->peak_prev ? srv->peak_cur
                                                : srv->peak_prev;
    pthread_mutex_unlock(&srv->lock);
    return peak;
}

/* ---- the header phase ---- */

static int preflight(http_request *req, const char *allow, http_response *res) {
    const char *origin = http_header(req, "Origin");
    const char *ok = cors_allow(req->srv, origin);
    if (!ok || !allow[0])
        return 0;
    char methods[96];
    snprintf(methods, sizeof methods, "%s, OPTIONS", allow);
    http_reply_bytes(res, 204, NULL, NULL, 0);
    http_add_header(res, "Access-Control-Allow-Methods", methods);
    http_add_header(res, "Access-Control-Allow-Headers", "Authorization, Content-Type");
    http_add_header(res, "Access-Control-Max-Age", "600");
    return 1;
}

typedef struct header_scan {
    const char *cl[4], *te[4];
    size_t ncl, nte;
    size_t bytes;
} header_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value) {
    (void)kind;
    header_scan *h = cls;
    h->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;
    if (!value)
        return MHD_YES;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0 && h->ncl < 4)
        h->cl[h->ncl++] = value;
    else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0 && h->nte < 4)
        h->te[h->nte++] = value;
    return MHD_YES;
}

/* Reserves n bytes of the body memory budget; 0 or -1 when it is spent. */
static int reserve(http_server *srv, http_request *req, size_t n) {
    int ok;
    pthread_mutex_lock(&srv->lock);
    ok = srv->body_bytes + n <= srv->app->cfg.max_body_memory;
    if (ok) {
        srv->body_bytes += n;
        req->reserved += n;
    } else {
        srv->refused_busy++;
    }
    pthread_mutex_unlock(&srv->lock);
    return ok ? 0 : -1;
}

static int open_upload(http_request *req) {
    const char *dir = req->srv->app->cfg.data_dir;
    /* unlinked from the start: nothing is left behind if trcd is killed mid-upload */
    req->tmp_fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (req->tmp_fd < 0) {
        char path[4096];
        snprintf(path, sizeof path, "%s/.upload-XXXXXX", dir);
        req->tmp_fd = mkostemp(path, O_CLOEXEC);
        if (req->tmp_fd < 0)
            return -1;
        unlink(path);
    }
    return 0;
}

/* Headers only: decide everything that does not need the body. Returns 1 when answered. */
static int on_headers(http_request *req, const char *version, enum MHD_Result *ret) {
    http_server *srv = req->srv;
    app *a = srv->app;
    header_scan h = {0};
    MHD_get_connection_values(req->conn, MHD_HEADER_KIND, scan_header, &h);
    unsigned long long length;
    int chunked;
    char msg[256];
    int status = rules_framing(h.cl, h.ncl, h.te, h.nte, &length, &chunked, msg, sizeof msg);
    if (status) {
        req->close = 1; /* the end of this request is unknown: nothing after it can be read */
        *ret = answer_error(req, status, NULL, "%s", msg);
        return 1;
    }
    if (strcmp(version, MHD_HTTP_VERSION_1_1) == 0 && !http_header(req, "Host")) {
        req->close = 1;
        *ret = answer_error(req, 400, NULL, "an HTTP/1.1 request needs a Host header");
        return 1;
    }
    if (strlen(req->path) >= URL_MAX) {
        *ret = answer_error(req, 414, NULL, "the request target is over %d bytes", URL_MAX);
        return 1;
    }
    if (h.bytes > HEADERS_MAX) {
        *ret = answer_error(req, 431, NULL, "the request headers are over %d bytes", HEADERS_MAX);
        return 1;
    }
    int has_body = length > 0 || chunked;
    long idx = router_find(&srv->router, req->method, req->path, &req->m);
    if (idx < 0) {
        if (strcmp(req->method, "OPTIONS") == 0) {
            http_response res = {0};
            if (preflight(req, req->m.allow, &res)) {
                *ret = send_response(req, &res);
                return 1;
            }
        }
        if (req->m.allow[0])
            refuse(req, length, chunked, MHD_HTTP_HEADER_ALLOW, req->m.allow, 405,
                   "method %s is not allowed on %s (allowed: %s)", req->method, req->path,
                   req->m.allow);
        else
            refuse(req, length, chunked, NULL, NULL, 404, "no route %s", req->path);
        return 1;
    }
    req->route_idx = idx;
    req->route = &srv->info[idx];
    unsigned flags = req->route->flags;
    /* state-changing routes: no request from a page of another site (CSRF), unless that
     * origin is allowed by --cors-origin */
    const char *origin = http_header(req, "Origin");
    if ((flags & HTTP_AUTH) && rules_cross_site(origin, http_header(req, "Host")) &&
        !cors_allow(srv, origin)) {
        refuse(req, length, chunked, NULL, NULL, 403,
               "cross-site request from Origin %.100s refused on a state-changing route "
               "(allow the origin with --cors-origin)",
               origin);
        return 1;
    }
    http_response res = {0};
    if (check_auth(srv, req, &res)) {
        req->pending = res;
        req->refused = 1;
        *ret = send_early(req, length, chunked);
        return 1;
    }
    /* bodies: JSON (curl's default form type when it parses as JSON, checked once read),
     * octet-stream on raw routes; any other declared type is refused on routes that take a
     * body or change state, even without a body (a cross-site form cannot get through) */
    req->ctype = rules_content_type(http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE));
    int takes_body = flags & (HTTP_BODY_JSON | HTTP_BODY_RAW);
    req->limit = a->cfg.max_body;
    if (takes_body || (flags & HTTP_AUTH)) {
        int ok = req->ctype == CTYPE_JSON || req->ctype == CTYPE_FORM ||
                 (req->ctype == CTYPE_NONE && !has_body) ||
                 (req->ctype == CTYPE_RAW && (flags & HTTP_BODY_RAW));
        if (!ok) {
            const char *ct = http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
            refuse(req, length, chunked, NULL, NULL, 415,
                   "Content-Type must be application/json%s, got %.100s",
                   (flags & HTTP_BODY_RAW) ? " or application/octet-stream" : "", ct ? ct : "none");
            return 1;
        }
        if (req->ctype == CTYPE_RAW) {
            req->raw = 1;
            req->limit = a->cfg.max_upload;
        }
    }
    if (length > req->limit) {
        refuse(req, length, chunked, NULL, NULL, 413,
               "request body of %llu bytes is over the limit of %zu", length, req->limit);
        return 1;
    }
    if (req->raw && has_body) {
        if (open_upload(req)) {
            refuse(req, length, chunked, NULL, NULL, 500,
                   "cannot store the upload in --data-dir: %s", strerror(errno));
            return 1;
        }
    } else if (length > 0) {
        if (reserve(srv, req, (size_t)length + 1)) {
            refuse(req, length, chunked, "Retry-After", RETRY_AFTER_BUSY, 503,
                   "request bodies in memory are at the limit (--max-body-memory %zu bytes); "
                   "retry shortly",
                   a->cfg.max_body_memory);
            return 1;
        }
        req->body = malloc((size_t)length + 1);
        if (!req->body) {
            refuse(req, length, chunked, NULL, NULL, 500, "out of memory");
            return 1;
        }
        req->cap = (size_t)length + 1;
    }
    return 0;
}

/* ---- the body ---- */

/* Returns 0, or the status to refuse with (413, 503, 500). */
static int append_body(http_request *req, const char *data, size_t n) {
    if (req->len + n > req->limit)
        return 413;
    if (req->raw) {
        for (size_t off = 0; off < n;) {
            ssize_t w = write(req->tmp_fd, data + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return 507;
            off += (size_t)w;
        }
        req->len += n;
        return 0;
    }
    if (req->len + n + 1 > req->cap) {
        size_t cap = req->cap ? req->cap * 2 : 4096;
        while (cap < req->len + n + 1)
            cap *= 2;
        if (cap > req->limit + 1)
            cap = req->limit + 1;
        if (reserve(req->srv, req, cap - req->cap))
            return 503;
        char *p = realloc(req->body, cap);
        if (!p)
            return 500;
        req->body = p;
        req->cap = cap;
    }
    memcpy(req->body + req->len, data, n);
    req->len += n;
    req->body[req->len] = '\0';
    return 0;
}

static void refuse_body(http_request *req, int status) {
    const app_config *c = &req->srv->app->cfg;
    switch (status) {
    case 413:
        refuse(req, 0, 1, NULL, NULL, 413, "request body is over the limit of %zu bytes",
               req->limit);
        break;
    case 503:
        refuse(req, 0, 1, "Retry-After", RETRY_AFTER_BUSY, 503,
               "request bodies in memory are at the limit (--max-body-memory %zu bytes); retry "
               "shortly",
               c->max_body_memory);
        break;
    case 507:
        refuse(req, 0, 1, NULL, NULL, 507, "cannot store the upload in --data-dir: %s",
               strerror(errno));
        break;
    default:
        refuse(req, 0, 1, NULL, NULL, 500, "out of memory");
    }
}

/* The body is complete: maps a raw upload; checks a form-typed body is JSON. 0 or answered. */
static int finish_body(http_request *req, enum MHD_Result *ret) {
    if (req->raw && req->tmp_fd >= 0 && req->len > 0) {
        void *p = mmap(NULL, req->len, PROT_READ, MAP_PRIVATE, req->tmp_fd, 0);
        if (p == MAP_FAILED) {
            *ret = answer_error(req, 500, NULL, "cannot map the upload: %s", strerror(errno));
            return 1;
        }
        req->body = p;
        req->mapped = 1;
    }
    if (req->ctype == CTYPE_FORM && req->len > 0) {
        /* curl -d sends application/x-www-form-urlencoded: accept the body when it is JSON */
        json_error_t e;
        json_t *j = json_loadb(req->body, req->len, JSON_DECODE_ANY, &e);
        json_decref(j);
        if (!j) {
            *ret = answer_error(req, 415, NULL,
                                "Content-Type must be application/json, got "
                                "application/x-www-form-urlencoded with a body that is not JSON");
            return 1;
        }
    }
    return 0;
}

const atomic_int *http_client_gone(const http_request *req) {
    return deadline_gone_flag(req->dl);
}

/* ---- handlers on the pool ---- */

static http_request *request_of(http_response *res) {
    return (http_request *)(void *)((char *)res - offsetof(http_request, pending));
}

void http_defer(http_response *res) {
    http_request *req = request_of(res);
    req->deferred = 1;
    atomic_store(&req->parts, 2);
    if (req->on_event_thread)
        MHD_suspend_connection(req->conn); /* a worker's connection is suspended already */
}

/* One of the two parts of a deferred answer is over; the second resumes the connection (the
 * request may be freed from then on). */
static void part_done(http_request *req) {
    if (atomic_fetch_sub(&req->parts, 1) == 1)
        MHD_resume_connection(req->conn);
}

void http_resume(http_response *res) {
    part_done(request_of(res));
}

static void run_later(workpool_item *item) {
    http_request *req = (http_request *)(void *)((char *)item - offsetof(http_request, later));
    req->later_fn(req->later_arg);
}

void http_run_on_worker(http_response *res, void (*fn)(void *arg), void *arg) {
    http_request *req = request_of(res);
    req->later_fn = fn;
    req->later_arg = arg;
    req->later.run = run_later;
    workpool_push(req->srv->pool, &req->later);
}

/* The route's handler, with the one view of the drain it and its answer share. */
static void call_handler(http_request *req) {
    req->draining = app_draining(req->srv->app);
    req->route->fn(req->srv->app, req, &req->pending);
}

static void run_handler(workpool_item *item) {
    http_request *req = (http_request *)item;
    call_handler(req);
    if (req->deferred)
        part_done(req);
    else
        MHD_resume_connection(req->conn);
}

static enum MHD_Result dispatch(http_request *req) {
    http_server *srv = req->srv;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    pthread_mutex_lock(&srv->lock);
    srv->handling++;
    note_concurrency(srv, &now);
    pthread_mutex_unlock(&srv->lock);
    req->dispatched = 1;
    deadline_pause(srv->deadlines, req->dl);
    unsigned flags = req->route->flags;
    if ((flags & HTTP_INLINE) || ((flags & HTTP_DEFER) && req->len <= INLINE_BODY_MAX)) {
        req->on_event_thread = 1;
        call_handler(req);
        if (req->deferred)
            part_done(req);
        return MHD_YES; /* otherwise answered by the caller */
    }
    MHD_suspend_connection(req->conn);
    req->item.run = run_handler;
    workpool_push(srv->pool, &req->item);
    return MHD_YES;
}

static enum MHD_Result answer_handled(http_request *req) {
    http_server *srv = req->srv;
    pthread_mutex_lock(&srv->lock);
    if (--srv->handling == 0)
        pthread_cond_broadcast(&srv->unhandled);
    pthread_mutex_unlock(&srv->lock);
    return send_response(req, &req->pending);
}

/* ---- the MHD callbacks ---- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    http_server *srv = cls;
    http_request *req = *con_cls;
    if (!req) {
        req = calloc(1, sizeof *req);
        if (!req)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &req->t0);
        req->srv = srv;
        req->conn = conn;
        req->method = method;
        req->route_idx = -1;
        req->tmp_fd = -1;
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        req->dl = ci ? ci->socket_context : NULL;
        req->path = strdup(url);
        *con_cls = req;
        pthread_mutex_lock(&srv->lock);
        srv->active++;
        pthread_mutex_unlock(&srv->lock);
        if (!req->path)
            return MHD_NO;
        enum MHD_Result ret = MHD_YES;
        on_headers(req, version, &ret);
        return ret;
    }
    if (req->answered) { /* answered at once: drop whatever body still arrives */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->refused) {
            /* read and drop a bounded amount, then answer and close */
            req->dropped += n;
            if (req->dropped <= DISCARD_MAX)
                return MHD_YES;
            req->close = 1;
            return send_response(req, &req->pending);
        }
        int status = append_body(req, upload_data, n);
        if (status) {
            refuse_body(req, status);
            req->dropped = req->len + n;
        }
        return MHD_YES;
    }
    if (req->refused)
        return send_response(req, &req->pending);
    if (req->dispatched)
        return answer_handled(req); /* resumed: the handler has answered */
    enum MHD_Result ret = MHD_YES;
    if (finish_body(req, &ret))
        return ret;
    ret = dispatch(req);
    if (req->on_event_thread && !req->deferred)
        return answer_handled(req);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    (void)toe;
    http_server *srv = cls;
    http_request *req = *con_cls;
    if (!req)
        return;
    if (req->dispatched && !req->answered) {
        /* the client went before the answer could be queued (libmicrohttpd saw its end of
         * file on resuming): still one request, counted as the handler answered it */
        pthread_mutex_lock(&srv->lock);
        if (--srv->handling == 0)
            pthread_cond_broadcast(&srv->unhandled);
        pthread_mutex_unlock(&srv->lock);
        record(req, req->pending.set ? req->pending.status : 499, 0);
    }
    deadline_restart(srv->deadlines, req->dl);
    if (req->mapped)
        munmap(req->body, req->len);
    else
        free(req->body);
    if (req->tmp_fd >= 0)
        close(req->tmp_fd);
    response_free(&req->pending);
    free(req->path);
    *con_cls = NULL;
    pthread_mutex_lock(&srv->lock);
    srv->body_bytes -= req->reserved;
    if (--srv->active == 0)
        pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->lock);
    free(req);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    http_server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        *socket_context = ci ? deadline_open(srv->deadlines, ci->connect_fd) : NULL;
        pthread_mutex_lock(&srv->lock);
        srv->connections++;
        pthread_mutex_unlock(&srv->lock);
    } else {
        deadline_close(srv->deadlines, *socket_context);
        *socket_context = NULL;
        pthread_mutex_lock(&srv->lock);
        srv->connections--;
        srv->closed_total++;
        pthread_mutex_unlock(&srv->lock);
        listener_wake(srv->listener); /* room for one more */
    }
}

/* The HTTP layer's section of /metrics (app->http_metrics). */
static void render_metrics(app *a, metrics_text *o) {
    http_server *srv = a->http;
    if (!srv)
        return;
    pthread_mutex_lock(&srv->lock);
    int active = srv->active;
    unsigned long long conns = srv->connections, busy = srv->refused_busy;
    size_t bytes = srv->body_bytes;
    pthread_mutex_unlock(&srv->lock);
    unsigned long long late = srv->deadlines ? deadline_expired_total(srv->deadlines) : 0;
    metrics_printf(o,
                   "# HELP trcd_http_requests_in_flight Requests between their headers and their "
                   "answer (this one included).\n# TYPE trcd_http_requests_in_flight gauge\n"
                   "trcd_http_requests_in_flight %d\n"
                   "# HELP trcd_http_connections Open HTTP connections.\n"
                   "# TYPE trcd_http_connections gauge\ntrcd_http_connections %llu\n"
                   "# HELP trcd_http_body_bytes Memory held by request bodies being received.\n"
                   "# TYPE trcd_http_body_bytes gauge\ntrcd_http_body_bytes %zu\n"
                   "# HELP trcd_http_body_memory_refusals_total Requests refused with 503 because "
                   "request bodies held --max-body-memory.\n"
                   "# TYPE trcd_http_body_memory_refusals_total counter\n"
                   "trcd_http_body_memory_refusals_total %llu\n"
                   "# HELP trcd_http_request_deadline_closes_total Connections closed for not "
                   "sending a whole request within --request-timeout.\n"
                   "# TYPE trcd_http_request_deadline_closes_total counter\n"
                   "trcd_http_request_deadline_closes_total %llu\n",
                   active, conns, bytes, busy, late);
}

/* ---- life ---- */

int http_create(app *a, http_server **out) {
    http_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return -1;
    srv->app = a;
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->idle, NULL);
    pthread_cond_init(&srv->unhandled, NULL);
    srv->mhd_log = (log_budget)LOG_BUDGET_INIT(MHD_LOG_PER_SECOND);
    if (a->cfg.cors_origin && a->cfg.cors_origin[0]) {
        srv->cors = strdup(a->cfg.cors_origin);
        char *save = NULL;
        for (char *t = srv->cors ? strtok_r(srv->cors, ",", &save) : NULL; t && srv->ncors < 16;
             t = strtok_r(NULL, ",", &save)) {
            while (*t == ' ')
                t++;
            size_t n = strlen(t);
            while (n && t[n - 1] == ' ')
                t[--n] = '\0';
            if (n)
                srv->cors_list[srv->ncors++] = t;
        }
    }
    a->http_metrics = render_metrics;
    *out = srv;
    return 0;
}

/* listener callbacks: a connection goes to libmicrohttpd, which closes it when refused (over
 * the per-client limit, or the total one while its count lags the accepts) */
static int hand_connection(void *arg, int fd, const struct sockaddr *addr, socklen_t len) {
    http_server *srv = arg;
    return MHD_add_connection(srv->daemon, fd, addr, len) == MHD_YES ? 0 : -1;
}

/* libmicrohttpd's own messages, mostly its refusal of a connection over --max-connections-per-ip
 * (one line per connection a client opens: a flood would be a flood of log): in trcd's format,
 * MHD_LOG_PER_SECOND at most, the rest counted. */
static void on_mhd_message(void *cls, const char *fmt, va_list ap) {
    http_server *srv = cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    log_limited(&srv->mhd_log, "libmicrohttpd: %s", msg);
}

static int has_room(void *arg) {
    http_server *srv = arg;
    pthread_mutex_lock(&srv->lock);
    int room = srv->connections < (unsigned long long)srv->app->cfg.max_connections;
    pthread_mutex_unlock(&srv->lock);
    return room;
}

int http_start(http_server *srv) {
    const app_config *c = &srv->app->cfg;
    if (workpool_create(c->workers, &srv->pool) ||
        deadlines_create((double)c->request_timeout, &srv->deadlines)) {
        log_msg("cannot start the HTTP worker threads");
        return -1;
    }
    char err[256];
    if (listener_open(c->host, c->port, LISTEN_BACKLOG, &srv->listener, err, sizeof err)) {
        log_msg("%s", err);
        return -1;
    }
    srv->port = listener_port(srv->listener);
    /* no listening socket inside libmicrohttpd: the listener hands it connections (its ITC
     * wakes the event thread that takes each) */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_message, srv,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        srv, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->io_threads, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)c->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)c->max_connections_per_ip, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)c->request_timeout, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MHD_POOL,
        MHD_OPTION_END);
    if (!srv->daemon) {
        log_msg("cannot start the HTTP event threads: %s", strerror(errno));
        return -1;
    }
    if (listener_start(srv->listener, hand_connection, has_room, srv, err, sizeof err)) {
        log_msg("%s", err);
        return -1;
    }
    return 0;
}

int http_bound_port(const http_server *srv) {
    return srv->port;
}

void http_quiesce(http_server *srv) {
    listener_close(srv->listener);
}

int http_drain(http_server *srv, int timeout_ms) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&srv->lock);
    while (srv->active > 0)
        if (pthread_cond_timedwait(&srv->idle, &srv->lock, &deadline) == ETIMEDOUT)
            break;
    int left = srv->active;
    pthread_mutex_unlock(&srv->lock);
    return left;
}

void http_destroy(http_server *srv) {
    if (!srv)
        return;
    /* handlers still running finish and resume their connections before the daemon stops
     * (libmicrohttpd must not be stopped with a connection suspended): deferred answers
     * (the batcher's) first, then the workers */
    if (srv->daemon) {
        pthread_mutex_lock(&srv->lock);
        while (srv->handling > 0)
            pthread_cond_wait(&srv->unhandled, &srv->lock);
        pthread_mutex_unlock(&srv->lock);
    }
    listener_close(srv->listener); /* nothing handed over to a stopping daemon */
    workpool_free(srv->pool);
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    listener_free(srv->listener); /* after the daemon: its closing connections wake it */
    log_budget_flush(&srv->mhd_log);
    pthread_mutex_destroy(&srv->mhd_log.lock);
    deadlines_free(srv->deadlines);
    if (srv->app->http == srv)
        srv->app->http_metrics = NULL;
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->idle);
    pthread_cond_destroy(&srv->unhandled);
    free(srv->cors);
    free(srv);
}
