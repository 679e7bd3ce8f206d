/* libFuzzer harness for trcd's router (server/router.c) over trcd's route table. The input is
 * "<method>\n<path>".
 * Run through `make fuzz` (tests/fuzz/README.md).
 *
 * What must hold: a match names a route of that method (GET also answers HEAD) whose pattern
 * has as many parameters as the match, each parameter of a "{x}" segment is non-empty and has
 * no '/', and putting the parameters back into the pattern gives the path again; no match
 * with a non-empty Allow means the path exists for other methods only. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/router.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const TABLE[][2] = {
    {"GET", "/healthz"},
    {"GET", "/readyz"},
    {"GET", "/metrics"},
    {"POST", "/v1/control"},
    {"POST", "/control"},
    {"GET", "/v1/models"},
    {"GET", "/v1/models/{name}"},
    {"DELETE", "/v1/models/{name}"},
    {"POST", "/v1/models/{name}/load"},
    {"POST", "/v1/train"},
    {"POST", "/train"},
    {"GET", "/v1/jobs"},
    {"GET", "/v1/jobs/{id}"},
    {"DELETE", "/v1/jobs/{id}"},
    {"POST", "/v1/jobs/{id}/cancel"},
    {"POST", "/v1/jobs/{id}/resume"},
    {"GET", "/{path*}"},
};

static router R;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (R.n == 0)
        for (size_t i = 0; i < sizeof TABLE / sizeof TABLE[0]; i++)
            if (router_add(&R, TABLE[i][0], TABLE[i][1]) != (long)i)
                abort();
    char *in = malloc(size + 1);
    if (!in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    char *nl = strchr(in, '\n');
    const char *method = in, *path = "";
    if (nl) {
        *nl = '\0';
        path = nl + 1;
    }
    router_match m;
    long r = router_find(&R, method, path, &m);
    if (r != m.route)
        abort();
    if (r >= 0) {
        const router_route *rt = &R.routes[r];
        if (m.allow[0])
            abort();
        if (strcmp(rt->method, method) != 0 &&
            !(strcmp(method, "HEAD") == 0 && strcmp(rt->method, "GET") == 0))
            abort();
        /* rebuild the path from the pattern and the parameters */
        char back[ROUTER_PATH_MAX + 16] = "";
        size_t k = 0;
        int np = 0;
        for (int i = 0; i < rt->nseg; i++) {
            const char *seg = rt->segs[i];
            if (seg[0] == '{') {
                const char *v = m.value[np++];
                if (!rt->wildcard || i < rt->nseg - 1) {
                    if (!v[0] || strchr(v, '/'))
                        abort();
                }
                seg = v;
            }
            k += (size_t)snprintf(back + k, sizeof back - k, "/%s", seg);
        }
        if (np != m.nparams)
            abort();
        if (strcmp(back, path) != 0)
            abort();
    }
    free(in);
    return 0;
}
