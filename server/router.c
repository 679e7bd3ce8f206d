/* Route matching (see router.h): patterns are split into segments once, paths on each lookup;
 * a lookup is a linear scan of at most 64 routes, cheaper than the request parsing around it. */
#include <stdio.h>
#include <string.h>

#include "router.h"

/* Splits "/a/b/c" into segments; "/" has none. Returns the count, or -1 when the path does not
 * start with '/', has more than max segments or a segment of ROUTER_SEG_MAX bytes or more. */
static int split_path(const char *path, char segs[][ROUTER_SEG_MAX], int max) {
    if (*path != '/')
        return -1;
    const char *p = path + 1;
    if (!*p)
        return 0;
    for (int n = 0;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (n == max || len >= ROUTER_SEG_MAX)
            return -1;
        memcpy(segs[n], p, len);
        segs[n][len] = '\0';
        n++;
        if (!slash)
            return n;
        p = slash + 1;
    }
}

static int is_param(const char *seg) {
    return seg[0] == '{';
}

long router_add(router *r, const char *method, const char *pattern) {
    if (r->n == ROUTER_MAX_ROUTES || !method[0] || strlen(method) >= 8 || strlen(pattern) >= 128)
        return -1;
    router_route *rt = &r->routes[r->n];
    memset(rt, 0, sizeof *rt);
    snprintf(rt->method, sizeof rt->method, "%s", method);
    snprintf(rt->pattern, sizeof rt->pattern, "%s", pattern);
    rt->nseg = split_path(pattern, rt->segs, ROUTER_MAX_SEGS);
    if (rt->nseg < 0)
        return -1;
    for (int i = 0; i < rt->nseg; i++) {
        const char *s = rt->segs[i];
        size_t n = strlen(s);
        int param = is_param(s);
        if (param && (n < 3 || s[n - 1] != '}'))
            return -1;
        int star = param && s[n - 2] == '*';
        if (star && (i != rt->nseg - 1 || n < 4))
            return -1;
        rt->wildcard = star;
    }
    return (long)r->n++;
}

/* Does the path (split into segs) match rt? */
static int path_matches(const router_route *rt, char segs[][ROUTER_SEG_MAX], int nseg) {
    int fixed = rt->wildcard ? rt->nseg - 1 : rt->nseg;
    if (rt->wildcard ? nseg < fixed : nseg != rt->nseg)
        return 0;
    for (int i = 0; i < fixed; i++) {
        if (is_param(rt->segs[i]) ? !segs[i][0] : strcmp(rt->segs[i], segs[i]) != 0)
            return 0;
    }
    return 1;
}

static int method_is(const router_route *rt, const char *method) {
    return strcmp(rt->method, method) == 0 ||
           (strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0);
}

static void allow_add(router_match *m, const char *method) {
    size_t n = strlen(m->allow), k = strlen(method);
    /* already listed? (whole names: "GET" is not in "GETX") */
    for (const char *p = m->allow; (p = strstr(p, method)) != NULL; p += k)
        if ((p == m->allow || p[-1] == ' ') && (p[k] == ',' || p[k] == '\0'))
            return;
    snprintf(m->allow + n, sizeof m->allow - n, "%s%s", n ? ", " : "", method);
}

/* Copies the parameters of rt for the path into m->buf. */
static void take_params(const router_route *rt, char segs[][ROUTER_SEG_MAX], const char *path,
                        router_match *m) {
    int fixed = rt->wildcard ? rt->nseg - 1 : rt->nseg;
    size_t used = 0;
    m->nparams = 0;
    for (int i = 0; i < fixed; i++) {
        if (!is_param(rt->segs[i]))
            continue;
        size_t n = strlen(segs[i]);
        memcpy(m->buf + used, segs[i], n + 1);
        m->name[m->nparams] = rt->segs[i];
        m->value[m->nparams++] = m->buf + used;
        used += n + 1;
    }
    if (rt->wildcard) {
        /* the rest of the path after the fixed segments, without its leading '/' */
        const char *p = path;
        for (int i = 0; i < fixed && p; i++)
            p = strchr(p + 1, '/');
        const char *rest = p && *p == '/' ? p + 1 : "";
        size_t n = strlen(rest); /* fits: path is at most ROUTER_PATH_MAX - 1 */
        memcpy(m->buf + used, rest, n + 1);
        m->name[m->nparams] = rt->segs[rt->nseg - 1];
        m->value[m->nparams++] = m->buf + used;
    }
}

long router_find(const router *r, const char *method, const char *path, router_match *m) {
    char segs[ROUTER_MAX_SEGS + 1][ROUTER_SEG_MAX];
    m->route = -1;
    m->allow[0] = '\0';
    m->nparams = 0;
    int nseg = strlen(path) < ROUTER_PATH_MAX ? split_path(path, segs, ROUTER_MAX_SEGS + 1) : -1;
    if (nseg < 0)
        return -1;
    /* pass 0: fixed routes; pass 1: wildcards, unless a fixed route has this path */
    for (int pass = 0; pass < 2 && !m->allow[0]; pass++)
        for (size_t i = 0; i < r->n; i++) {
            const router_route *rt = &r->routes[i];
            if (rt->wildcard != pass || !path_matches(rt, segs, nseg))
                continue;
            if (method_is(rt, method)) {
                take_params(rt, segs, path, m);
                m->allow[0] = '\0';
                return m->route = (long)i;
            }
            allow_add(m, rt->method);
            if (strcmp(rt->method, "GET") == 0)
                allow_add(m, "HEAD");
        }
    return -1;
}

const char *router_param(const router_match *m, const char *name) {
    size_t n = strlen(name);
    for (int i = 0; i < m->nparams; i++) {
        const char *p = m->name[i] + 1; /* skip '{' */
        if (strncmp(p, name, n) == 0 && (p[n] == '}' || (p[n] == '*' && p[n + 1] == '}')))
            return m->value[i];
    }
    return NULL;
}
