/* Route matching of trcd, pure (no HTTP library): method + path -> route index + parameters.
 *
 *   router r = {0};
 *   router_add(&r, "GET", "/v1/jobs/{id}");   -> 0     ("{name}": one non-empty segment)
 *   router_add(&r, "GET", "/{path*}");        -> 1     ("{name*}": the rest of the path)
 *   router_match m;
 *   router_find(&r, "GET", "/v1/jobs/7", &m)  -> 0, router_param(&m, "id") == "7"
 *
 * Fixed routes win over wildcards. GET routes also answer HEAD. When the path exists but not
 * for the method, the result is -1 and m.allow lists the methods that would match ("GET, HEAD,
 * POST"), for 405 + Allow and CORS preflights; with neither, -1 and an empty allow (404). */
#ifndef TRCD_ROUTER_H
#define TRCD_ROUTER_H

#include <stddef.h>

#define ROUTER_MAX_ROUTES 64
#define ROUTER_MAX_SEGS 8
#define ROUTER_SEG_MAX 160   /* longest pattern or path segment (names are at most 64) */
#define ROUTER_PATH_MAX 4096 /* longest path matched */

typedef struct router_route {
    char method[8];
    char pattern[128];
    char segs[ROUTER_MAX_SEGS][ROUTER_SEG_MAX]; /* "{x}" a parameter, "{x*}" the rest */
    int nseg;
    int wildcard; /* last segment is "{x*}" */
} router_route;

typedef struct router {
    router_route routes[ROUTER_MAX_ROUTES];
    size_t n;
} router;

typedef struct router_match {
    long route;     /* index, or -1 */
    char allow[64]; /* when route < 0: methods the path answers, ", "-separated; "" for 404 */
    int nparams;
    const char *name[ROUTER_MAX_SEGS];  /* the pattern's "{x}" segments */
    const char *value[ROUTER_MAX_SEGS]; /* into buf */
    char buf[ROUTER_PATH_MAX + ROUTER_MAX_SEGS];
} router_match;

/* Adds a route; method "GET", "POST", "DELETE", ... Returns its index, or -1 when the table is
 * full or the pattern is malformed (not starting with '/', too long, too many segments). */
long router_add(router *r, const char *method, const char *pattern);
/* Finds the route of (method, path); path is the decoded path without the query. Returns
 * m->route. */
long router_find(const router *r, const char *method, const char *path, router_match *m);
/* The value of the "{name}" (or "{name*}") parameter of a match, or NULL. */
const char *router_param(const router_match *m, const char *name);

#endif
