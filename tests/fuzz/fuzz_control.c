/* libFuzzer harness for POST /v1/control's body (proto_control_parse, check_dim, response).
 * Run through `make fuzz` (tests/fuzz/README.md). The input is the request body.
 *
 * A request that parses must hold what the parser promises: n >= 1 samples of s in 1..64
 * finite float32 values, n <= max_batch; a refused one must carry a 4xx with a message and no
 * memory. The parsed states then go through the response builder as if they were the model's
 * output, and the JSON text must read back to the same floats bit for bit (the wire's float32
 * round trip). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_BATCH 64

static void check_error(const proto_error *err) {
    if (err->code < 400 || err->code > 499 || !err->message[0])
        abort();
}

/* Every number of the array `a` (nested as the response builds it) equals x[0..n-1]. */
static size_t same_floats(const json_t *a, const float *x, size_t n, size_t at) {
    if (json_is_array(a)) {
        size_t i;
        const json_t *v;
        json_array_foreach(a, i, v) at = same_floats(v, x, n, at);
        return at;
    }
    if (!json_is_number(a) || at >= n || (float)json_number_value(a) != x[at])
        abort();
    return at + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    proto_control_req req;
    proto_error err = {0};
    if (proto_control_parse((const char *)data, size, MAX_BATCH, &req, &err) != 0) {
        check_error(&err);
        if (req.states || req.targets)
            abort();
        return 0;
    }
    if (req.n < 1 || req.n > MAX_BATCH || req.s < 1 || req.s > PROTO_MAX_DIM || req.s_target < 1 ||
        req.s_target > PROTO_MAX_DIM || (!req.batch && req.n != 1))
        abort();
    /* an accepted polish names an expert that can polish, with a budget in range */
    if (req.polish_max_iters &&
        (req.polish_max_iters < 1 || req.polish_max_iters > TRC_POLISH_MAX_ITERS ||
         trc_polish_check(req.polish_expert, NULL) != 0))
        abort();
    size_t rows = req.n * (size_t)req.s;
    for (size_t i = 0; i < rows; i++)
        if (!isfinite(req.states[i]) || (req.batch && !isfinite(req.targets[i])))
            abort();
    if (proto_control_check_dim(&req, req.s, &err) != 0) {
        check_error(&err); /* single form whose target length differs from the state's */
        if (req.batch || req.s == req.s_target)
            abort();
        proto_control_req_free(&req);
        return 0;
    }
    /* The states play every role: controls [n, T=s, m=1], final state [n, s]. */
    double *scalars = malloc(req.n * sizeof *scalars);
    if (!scalars)
        abort();
    for (size_t i = 0; i < req.n; i++)
        scalars[i] = req.states[i * (size_t)req.s];
    proto_control_result r = {.model_name = "default",
                              .model_version = "v",
                              .n = req.n,
                              .T = req.s,
                              .m = 1,
                              .s = req.s,
                              .K = 0,
                              .controls = req.states,
                              .final_state = req.states,
                              .final_error = scalars,
                              .cost = scalars,
                              .timing_ms = 1.0};
    json_t *out = proto_control_response(&r, req.batch, &err);
    if (!out)
        abort(); /* every value is finite, so building must succeed */
    char *text = json_dumps(out, PROTO_REAL_FLAGS);
    json_t *back = text ? json_loads(text, 0, NULL) : NULL;
    if (!back)
        abort();
    same_floats(json_object_get(back, "controls"), req.states, rows, 0);
    same_floats(json_object_get(back, "final_state"), req.states, rows, 0);
    json_decref(back);
    free(text);
    json_decref(out);
    free(scalars);
    proto_control_req_free(&req);
    return 0;
}
