/* The HTTP layer (see http.h) on libmicrohttpd in thread-per-connection mode: each connection
 * has its own thread, so a handler that waits for the dynamic batcher blocks only its own
 * client, and every concurrent request can join the same batch.
 *
 * A request goes through on_request() several times: first with only the headers (routing,
 * CORS preflight, auth, Content-Type and Content-Length are decided here, so a refused body is
 * never read), then once per body chunk (accumulated up to the route's limit), then a last
 * time with no data, when the handler runs. on_completed() frees it. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

#define MAX_ROUTES 64
#define MAX_SEGS 8
#define MAX_HEADERS 8
#define WINDOW_MS 100 /* window of the recent-concurrency estimate */
#define SEG_MAX 160   /* longest path segment (names are at most 64) */

typedef struct route {
    char method[8];
    char pattern[128];
    char segs[MAX_SEGS][SEG_MAX]; /* pattern segments; "{x}" a parameter, "{x*}" the rest */
    int nseg;
    int wildcard; /* last segment is "{x*}" */
    unsigned flags;
    http_handler fn;
} route;

struct http_server {
    app *app;
    struct MHD_Daemon *daemon;
    route routes[MAX_ROUTES];
    size_t nroutes;
    int port;
    pthread_mutex_t lock; /* guards active (for the drain wait) */
    pthread_cond_t idle;
    int active;              /* requests between their first call and on_completed */
    int peak_cur, peak_prev; /* most requests at once in this and the previous window */
    struct timespec window;  /* start of the current window (WINDOW_MS long) */
    char *cors;              /* copy of --cors-origin, split on ',' into cors_list */
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
    http_server *srv;
    struct MHD_Connection *conn;
    const char *method;
    char *path;
    const route *route;
    size_t route_idx; /* srv->nroutes when unmatched */
    const char *pname[MAX_SEGS];
    char *pvalue[MAX_SEGS];
    int nparams;
    char *body;
    size_t len, cap, limit;
    int raw;
    int answered;    /* a response was queued */
    size_t overflow; /* bytes received once over the limit (chunked bodies) */
    int closing;     /* add "Connection: close" (draining) */
    struct timespec t0;
};

static double elapsed(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* ---- routes ---- */

static int split_path(const char *path, char segs[][SEG_MAX], int max) {
    int n = 0;
    if (*path != '/')
        return -1;
    const char *p = path + 1;
    if (!*p)
        return 0; /* "/" */
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (n == max || len >= SEG_MAX)
            return -1;
        memcpy(segs[n], p, len);
        segs[n][len] = '\0';
        n++;
        if (!slash)
            return n;
        p = slash + 1;
    }
}

int http_route(http_server *srv, const char *method, const char *pattern, unsigned flags,
               http_handler fn) {
    if (srv->nroutes == MAX_ROUTES || strlen(method) >= 8 || strlen(pattern) >= 128)
        return -1;
    route *r = &srv->routes[srv->nroutes];
    memset(r, 0, sizeof *r);
    snprintf(r->method, sizeof r->method, "%s", method);
    snprintf(r->pattern, sizeof r->pattern, "%s", pattern);
    r->nseg = split_path(pattern, r->segs, MAX_SEGS);
    if (r->nseg < 0)
        return -1;
    if (r->nseg > 0) {
        const char *last = r->segs[r->nseg - 1];
        size_t n = strlen(last);
        r->wildcard = n > 3 && last[0] == '{' && last[n - 2] == '*' && last[n - 1] == '}';
    }
    r->flags = flags;
    r->fn = fn;
    srv->nroutes++;
    return 0;
}

size_t http_route_count(const http_server *srv) {
    return srv->nroutes;
}

void http_route_at(const http_server *srv, size_t i, const char **method, const char **pattern) {
    *method = srv->routes[i].method;
    *pattern = srv->routes[i].pattern;
}

static int is_param(const char *seg) {
    return seg[0] == '{';
}

/* Does path (split into segs) match route r? Fills the request's parameters when req != NULL. */
static int path_matches(const route *r, char segs[][SEG_MAX], int nseg, const char *path,
                        http_request *req) {
    if (r->wildcard ? nseg < r->nseg - 1 : nseg != r->nseg)
        return 0;
    int fixed = r->wildcard ? r->nseg - 1 : r->nseg;
    for (int i = 0; i < fixed; i++) {
        if (is_param(r->segs[i])) {
            if (!segs[i][0])
                return 0;
        } else if (strcmp(r->segs[i], segs[i]) != 0) {
            return 0;
        }
    }
    if (!req)
        return 1;
    req->nparams = 0;
    for (int i = 0; i < fixed; i++)
        if (is_param(r->segs[i])) {
            req->pname[req->nparams] = r->segs[i];
            req->pvalue[req->nparams++] = strdup(segs[i]);
        }
    if (r->wildcard) {
        /* the rest of the path after the fixed segments, without its leading '/' */
        const char *p = path;
        for (int i = 0; i < fixed && p; i++)
            p = strchr(p + 1, '/');
        req->pname[req->nparams] = r->segs[r->nseg - 1];
        req->pvalue[req->nparams++] = strdup(p && *p == '/' ? p + 1 : "");
    }
    return 1;
}

static int method_is(const route *r, const char *method) {
    return strcmp(r->method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0);
}

/* Finds the route for (method, path): fixed routes first, then wildcards. Sets *allow to the
 * methods of non-wildcard routes matching the path (for 405). Returns the index or -1. */
static long match(http_server *srv, const char *method, const char *path, char *allow,
                  size_t allow_cap, http_request *req) {
    char segs[MAX_SEGS + 1][SEG_MAX];
    int nseg = split_path(path, segs, MAX_SEGS + 1);
    allow[0] = '\0';
    if (nseg < 0)
        return -1;
    /* pass 0: fixed routes; pass 1: wildcards, unless a fixed route has this path (405) */
    for (int pass = 0; pass < 2 && !(pass == 1 && allow[0]); pass++)
        for (size_t i = 0; i < srv->nroutes; i++) {
            const route *r = &srv->routes[i];
            if (r->wildcard != pass || !path_matches(r, segs, nseg, path, NULL))
                continue;
            if (method_is(r, method)) {
                if (req)
                    path_matches(r, segs, nseg, path, req);
                return (long)i;
            }
            if (!r->wildcard && !strstr(allow, r->method)) {
                size_t n = strlen(allow);
                snprintf(allow + n, allow_cap - n, "%s%s", n ? ", " : "", r->method);
            }
        }
    return -1;
}

/* ---- request accessors ---- */

const char *http_method(const http_request *req) {
    return req->method;
}
const char *http_path(const http_request *req) {
    return req->path;
}
const char *http_param(const http_request *req, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < req->nparams; i++) {
        const char *p = req->pname[i] + 1; /* skip '{' */
        if (strncmp(p, name, n) == 0 && (p[n] == '}' || (p[n] == '*' && p[n + 1] == '}')))
            return req->pvalue[i];
    }
    return NULL;
}
const char *http_query(const http_request *req, const char *name) {
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
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
    snprintf(err.param, sizeof err.param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    http_reply_proto_error(res, &err);
}

int http_add_header(http_response *res, const char *name, const char *value) {
    if (res->nh == MAX_HEADERS)
        return -1;
    res->hname[res->nh] = strdup(name);
    res->hvalue[res->nh] = strdup(value);
    if (!res->hname[res->nh] || !res->hvalue[res->nh]) {
        free(res->hname[res->nh]);
        free(res->hvalue[res->nh]);
        return -1;
    }
    res->nh++;
    return 0;
}

static void response_free(http_response *res) {
    free(res->body);
    for (int i = 0; i < res->nh; i++) {
        free(res->hname[i]);
        free(res->hvalue[i]);
    }
}

/* ---- CORS and auth ---- */

/* The value for Access-Control-Allow-Origin, or NULL when the origin is not allowed. */
static const char *cors_allow(const http_server *srv, const char *origin) {
    if (!origin || !srv->ncors)
        return NULL;
    for (size_t i = 0; i < srv->ncors; i++) {
        if (strcmp(srv->cors_list[i], "*") == 0)
            return "*";
        if (strcmp(srv->cors_list[i], origin) == 0)
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

/* "application/json" or "application/json; charset=utf-8" (case-insensitive). */
static int ctype_is(const char *ct, const char *want) {
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    size_t n = strlen(want);
    return strncasecmp(ct, want, n) == 0 && (ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ');
}

/* ---- sending ---- */

static enum MHD_Result send_response(http_request *req, http_response *res) {
    http_server *srv = req->srv;
    app *a = srv->app;
    if (!res->set)
        http_reply_error(res, 500, NULL, "the handler gave no answer");
    struct MHD_Response *r =
        MHD_create_response_from_buffer(res->len, res->body, MHD_RESPMEM_MUST_FREE);
    if (!r)
        return MHD_NO;
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
    if (req->closing || app_draining(a))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ok = MHD_queue_response(req->conn, (unsigned)res->status, r);
    MHD_destroy_response(r);
    req->answered = 1;
    double secs = elapsed(&req->t0);
    metrics_observe_request(a->metrics, req->route_idx, res->status, secs);
    if (a->cfg.access_log)
        log_msg("%s %s %d %zuB %.3fms", req->method, req->path, res->status, bytes, secs * 1e3);
    response_free(res);
    return ok;
}

static enum MHD_Result answer_error(http_request *req, int status, const char *allow,
                                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static enum MHD_Result answer_error(http_request *req, int status, const char *allow,
                                    const char *fmt, ...) {
    http_response res = {0};
    proto_error err = {.code = status};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.message, sizeof err.message, fmt, ap);
    va_end(ap);
    http_reply_proto_error(&res, &err);
    if (allow)
        http_add_header(&res, MHD_HTTP_HEADER_ALLOW, allow);
    return send_response(req, &res);
}

/* Called with srv->lock held when a request starts: keeps the peak of concurrent requests over
 * the last one or two windows, a cheap estimate of how many clients are sending right now. */
static void note_concurrency(http_server *srv, const struct timespec *now) {
    long ms =
        (now->tv_sec - srv->window.tv_sec) * 1000 + (now->tv_nsec - srv->window.tv_nsec) / 1000000;
    if (ms >= WINDOW_MS) {
        srv->peak_prev = ms >= 2 * WINDOW_MS ? 0 : srv->peak_cur;
        srv->peak_cur = 0;
        srv->window = *now;
    }
    if (srv->active > srv->peak_cur)
        srv->peak_cur = srv->active;
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

/* ---- the MHD callbacks ---- */

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

/* Headers only: decide everything that does not need the body. Returns 1 when answered. */
static int on_headers(http_request *req, enum MHD_Result *ret) {
    http_server *srv = req->srv;
    app *a = srv->app;
    char allow[64];
    long idx = match(srv, req->method, req->path, allow, sizeof allow, req);
    if (idx < 0) {
        req->route_idx = srv->nroutes;
        if (strcmp(req->method, "OPTIONS") == 0) {
            http_response res = {0};
            if (preflight(req, allow, &res)) {
                *ret = send_response(req, &res);
                return 1;
            }
        }
        if (allow[0])
            *ret = answer_error(req, 405, allow, "method %s is not allowed on %s (allowed: %s)",
                                req->method, req->path, allow);
        else
            *ret = answer_error(req, 404, NULL, "no route %s", req->path);
        return 1;
    }
    req->route = &srv->routes[idx];
    req->route_idx = (size_t)idx;
    http_response res = {0};
    if (check_auth(srv, req, &res)) {
        *ret = send_response(req, &res);
        return 1;
    }
    const char *cl = http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = http_header(req, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    unsigned long long length = cl ? strtoull(cl, NULL, 10) : 0;
    int has_body = length > 0 || (te && strcasestr(te, "chunked"));
    req->limit = a->cfg.max_body;
    if (has_body && (req->route->flags & (HTTP_BODY_JSON | HTTP_BODY_RAW))) {
        const char *ct = http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
        if ((req->route->flags & HTTP_BODY_RAW) && ctype_is(ct, "application/octet-stream")) {
            req->raw = 1;
            req->limit = a->cfg.max_upload;
        } else if (!ctype_is(ct, "application/json")) {
            *ret = answer_error(req, 415, NULL, "Content-Type must be application/json%s, got %s",
                                (req->route->flags & HTTP_BODY_RAW) ? " or application/octet-stream"
                                                                    : "",
                                ct ? ct : "none");
            return 1;
        }
    }
    if (length > req->limit) {
        *ret = answer_error(req, 413, NULL, "request body of %llu bytes is over the limit of %zu",
                            length, req->limit);
        return 1;
    }
    if (length > 0) {
        req->body = malloc((size_t)length + 1);
        if (!req->body) {
            *ret = answer_error(req, 500, NULL, "out of memory");
            return 1;
        }
        req->cap = (size_t)length + 1;
    }
    return 0;
}

static int append_body(http_request *req, const char *data, size_t n) {
    if (req->len + n > req->limit)
        return 413;
    if (req->len + n + 1 > req->cap) {
        size_t cap = req->cap ? req->cap * 2 : 4096;
        while (cap < req->len + n + 1)
            cap *= 2;
        if (cap > req->limit + 1)
            cap = req->limit + 1;
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

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)version;
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
        req->path = strdup(url);
        *con_cls = req;
        pthread_mutex_lock(&srv->lock);
        srv->active++;
        note_concurrency(srv, &req->t0);
        pthread_mutex_unlock(&srv->lock);
        if (!req->path)
            return MHD_NO;
        enum MHD_Result ret = MHD_YES;
        on_headers(req, &ret);
        return ret;
    }
    if (req->answered) { /* refused early: drop whatever body still arrives */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->overflow) {
            /* a body without Content-Length crossed the limit: libmicrohttpd can only answer
             * once the body ends, so the rest is counted, not stored; a client that keeps
             * sending far past the limit is disconnected */
            req->overflow += n;
            return req->overflow > 4 * req->limit + 65536 ? MHD_NO : MHD_YES;
        }
        int status = append_body(req, upload_data, n);
        if (status == 413)
            req->overflow = req->len + n;
        else if (status)
            req->overflow = (size_t)-1 / 2; /* out of memory: drop the connection */
        return req->overflow > 4 * req->limit + 65536 ? MHD_NO : MHD_YES;
    }
    if (req->overflow)
        return answer_error(req, 413, NULL, "request body is over the limit of %zu bytes",
                            req->limit);
    http_response res = {0};
    req->route->fn(srv->app, req, &res);
    return send_response(req, &res);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    (void)toe;
    http_server *srv = cls;
    http_request *req = *con_cls;
    if (!req)
        return;
    for (int i = 0; i < req->nparams; i++)
        free(req->pvalue[i]);
    free(req->body);
    free(req->path);
    free(req);
    *con_cls = NULL;
    pthread_mutex_lock(&srv->lock);
    if (--srv->active == 0)
        pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->lock);
}

/* ---- life ---- */

/* The HTTP layer's section of /metrics (app->http_metrics). */
static void render_metrics(app *a, metrics_text *o) {
    http_server *srv = a->http;
    if (!srv)
        return;
    pthread_mutex_lock(&srv->lock);
    int active = srv->active;
    pthread_mutex_unlock(&srv->lock);
    metrics_printf(o,
                   "# HELP trcd_http_requests_in_flight Requests between their headers and their "
                   "answer (this one included).\n# TYPE trcd_http_requests_in_flight gauge\n"
                   "trcd_http_requests_in_flight %d\n",
                   active);
}

int http_create(app *a, http_server **out) {
    http_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return -1;
    srv->app = a;
    pthread_mutex_init(&srv->lock, NULL);
    pthread_cond_init(&srv->idle, NULL);
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

int http_start(http_server *srv) {
    const app_config *c = &srv->app->cfg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICHOST | AI_PASSIVE};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", c->port);
    int rc = getaddrinfo(c->host, port, &hints, &ai);
    if (rc) {
        hints.ai_flags = AI_PASSIVE; /* a host name, e.g. localhost */
        rc = getaddrinfo(c->host, port, &hints, &ai);
    }
    if (rc || !ai) {
        log_msg("cannot resolve --host %s: %s", c->host, gai_strerror(rc));
        return -1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    srv->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR,
                                   ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
                                   MHD_OPTION_CONNECTION_LIMIT, (unsigned)c->max_connections,
                                   MHD_OPTION_CONNECTION_TIMEOUT, 60u,
                                   MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!srv->daemon) {
        log_msg("cannot listen on %s:%d: %s", c->host, c->port, strerror(errno));
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? info->port : c->port;
    return 0;
}

int http_bound_port(const http_server *srv) {
    return srv->port;
}

void http_quiesce(http_server *srv) {
    if (!srv->daemon)
        return;
    MHD_socket fd = MHD_quiesce_daemon(srv->daemon);
    if (fd != MHD_INVALID_SOCKET)
        close(fd);
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
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    pthread_mutex_destroy(&srv->lock);
    pthread_cond_destroy(&srv->idle);
    free(srv->cors);
    free(srv);
}
