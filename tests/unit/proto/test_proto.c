/* proto/: request parsing and validation (every error class names its field), the response
 * builder (shapes, no NaN ever sent), the error shape and the field readers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jtext.h"
#include "proto.h"
#include "trc/system.h"

static int parse(const char *body, size_t max_batch, proto_control_req *req, proto_error *err) {
    memset(err, 0, sizeof *err);
    return proto_control_parse(body, strlen(body), max_batch, req, err);
}

/* Parsing body must fail with this status and param, and a message containing `needle`. */
static void expect_error(const char *body, int code, const char *param, const char *needle) {
    proto_control_req req;
    proto_error err;
    assert_int_equal(parse(body, 4096, &req, &err), -1);
    assert_int_equal(err.code, code);
    assert_string_equal(err.param, param);
    if (needle && !strstr(err.message, needle))
        fail_msg("message '%s' lacks '%s'", err.message, needle);
    assert_null(req.states);
    assert_null(req.targets);
}

static void test_single_ok(void **state) {
    (void)state;
    proto_control_req req;
    proto_error err;
    assert_int_equal(parse("{\"model\": \"m-1.b\", \"state\": [1, 0.5], \"target\": [0, -2e0],"
                           " \"return\": [\"trajectory\", \"iterations\"]}",
                           4096, &req, &err),
                     0);
    assert_int_equal(req.batch, 0);
    assert_int_equal(req.n, 1);
    assert_int_equal(req.s, 2);
    assert_string_equal(req.model, "m-1.b");
    assert_true(req.states[0] == 1.0f && req.states[1] == 0.5f);
    assert_true(req.targets[0] == 0.0f && req.targets[1] == -2.0f);
    assert_int_equal(req.ret, PROTO_RET_TRAJECTORY | PROTO_RET_ITERATIONS);
    assert_int_equal(proto_control_check_dim(&req, 2, &err), 0);
    assert_int_equal(proto_control_check_dim(&req, 3, &err), -1);
    assert_int_equal(err.code, 400);
    assert_string_equal(err.param, "state");
    proto_control_req_free(&req);
}

static void test_batch_ok(void **state) {
    (void)state;
    proto_control_req req;
    proto_error err;
    assert_int_equal(parse("{\"states\": [[1, 2], [3, 4], [5, 6]], "
                           "\"targets\": [[0, 0], [0, 1], [1, 0]]}",
                           3, &req, &err),
                     0);
    assert_int_equal(req.batch, 1);
    assert_int_equal(req.n, 3);
    assert_int_equal(req.s, 2);
    assert_string_equal(req.model, "");
    assert_true(req.states[4] == 5.0f && req.targets[5] == 0.0f && req.targets[3] == 1.0f);
    assert_int_equal(proto_control_check_dim(&req, 4, &err), -1);
    assert_string_equal(err.param, "states");
    proto_control_req_free(&req);
}

static void test_malformed_json(void **state) {
    (void)state;
    expect_error("{\"state\": [1, 0.5], \"target\": [0, 0", 400, "target", "line 1, column");
    expect_error("{\n  \"state\": [1, 0.5],\n  \"target\": [0, 0]\n", 400, "", "line 4");
    expect_error("", 400, "", "empty");
    expect_error("[1, 2]", 400, "", "JSON object");
    expect_error("{\"state\": [1, 0.5], \"state\": [1, 0.5]}", 400, "", "duplicate");
}

static void test_non_finite(void **state) {
    (void)state;
    expect_error("{\"state\": [1, NaN], \"target\": [0, 0]}", 400, "state", "line 1");
    expect_error("{\"state\": [1, 0], \"target\": [1e999, 0]}", 400, "target", "not finite");
    expect_error("{\"state\": [1, 0], \"target\": [1e39, 0]}", 400, "target", "float32");
    expect_error("{\"state\": [1, Infinity], \"target\": [0, 0]}", 400, "state", NULL);
    /* a valid float32 far outside any state: refused up front, not a 500 later */
    expect_error("{\"state\": [3e38, 3e38], \"target\": [0, 0]}", 400, "state", "plausible range");
    expect_error("{\"states\": [[0, 0], [1, -2e6]], \"targets\": [[0, 0], [0, 0]]}", 400, "states",
                 "states[1][1]");
}

/* state and target of different lengths parse; the dimension check against the model names the
 * one that is wrong. */
static void test_dimension_names_the_wrong_field(void **state) {
    (void)state;
    proto_control_req req;
    proto_error err;
    assert_int_equal(parse("{\"state\": [1, 2], \"target\": [1, 2, 3]}", 4096, &req, &err), 0);
    assert_int_equal(proto_control_check_dim(&req, 2, &err), -1);
    assert_string_equal(err.param, "target");
    assert_non_null(strstr(err.message, "got 3"));
    assert_int_equal(proto_control_check_dim(&req, 3, &err), -1);
    assert_string_equal(err.param, "state");
    assert_non_null(strstr(err.message, "got 2"));
    proto_control_req_free(&req);
}

static void test_missing_and_types(void **state) {
    (void)state;
    expect_error("{}", 400, "state", "missing");
    expect_error("{\"state\": [1, 2]}", 400, "target", "missing");
    expect_error("{\"target\": [1, 2]}", 400, "state", "missing");
    expect_error("{\"state\": \"1,2\", \"target\": [1, 2]}", 400, "state", "array");
    expect_error("{\"state\": [1, \"2\"], \"target\": [1, 2]}", 400, "state", "state[1]");
    expect_error("{\"state\": [1, 2], \"target\": [1, null]}", 400, "target", "target[1]");
    expect_error("{\"state\": [], \"target\": []}", 400, "state", "empty");
    expect_error("{\"state\": [1, 2], \"target\": [1, 2], \"model\": 3}", 400, "model", "string");
    expect_error("{\"state\": [1, 2], \"target\": [1, 2], \"model\": \"../x\"}", 400, "model",
                 NULL);
    expect_error("{\"state\": [1, 2], \"target\": [1, 2], \"model\": \"\"}", 400, "model", NULL);
}

static void test_unknown_field(void **state) {
    (void)state;
    expect_error("{\"state\": [1, 2], \"target\": [1, 2], \"temperature\": 1}", 400, "temperature",
                 "unknown field");
}

static void test_return_field(void **state) {
    (void)state;
    expect_error("{\"state\": [1, 2], \"target\": [1, 2], \"return\": \"trajectory\"}", 400,
                 "return", "array");
    expect_error("{\"state\": [1, 2], \"target\": [1, 2], \"return\": [\"costs\"]}", 400, "return",
                 "costs");
    expect_error("{\"state\": [1, 2], \"target\": [1, 2], \"return\": [1]}", 400, "return",
                 "string");
}

static void test_batch_errors(void **state) {
    (void)state;
    expect_error("{\"states\": [], \"targets\": []}", 400, "states", "empty");
    expect_error("{\"states\": [[1, 2]]}", 400, "targets", "missing");
    expect_error("{\"states\": [[1, 2]], \"targets\": [[1, 2], [3, 4]]}", 400, "targets", "rows");
    expect_error("{\"states\": [[1, 2], [1, 2, 3]], \"targets\": [[1, 2], [3, 4]]}", 400, "states",
                 "states[1]");
    expect_error("{\"states\": [[1, 2], [1, 2]], \"targets\": [[1, 2], [3]]}", 400, "targets",
                 "targets[1]");
    expect_error("{\"states\": [[1, 2]], \"targets\": [[1, \"x\"]]}", 400, "targets",
                 "targets[0][1]");
    expect_error("{\"states\": {\"a\": 1}, \"targets\": []}", 400, "states", "array");
    expect_error("{\"state\": [1, 2], \"target\": [1, 2], \"states\": [[1, 2]]}", 400, "states",
                 "either");
    proto_control_req req;
    proto_error err;
    assert_int_equal(parse("{\"states\": [[1, 2], [3, 4], [5, 6]], "
                           "\"targets\": [[0, 0], [0, 1], [1, 0]]}",
                           2, &req, &err),
                     -1);
    assert_int_equal(err.code, 413);
    assert_string_equal(err.param, "states");
}

static void test_response_shapes(void **state) {
    (void)state;
    /* two samples, T = 2, m = 1, s = 2, K = 1 */
    float u[4] = {0.1f, 0.2f, 0.3f, 0.4f}, xf[4] = {1, 2, 3, 4};
    float traj[12] = {0};
    float iters[8] = {1, 2, 3, 4, 5, 6, 7, 8}; /* [K+1=2, n=2, U=2] */
    double fe[2] = {0.5, 0.25}, cost[2] = {0.05, 0.25};
    proto_control_result r = {.model_name = "default",
                              .model_version = "abc",
                              .n = 2,
                              .T = 2,
                              .m = 1,
                              .s = 2,
                              .K = 1,
                              .controls = u,
                              .final_state = xf,
                              .final_error = fe,
                              .cost = cost,
                              .trajectory = traj,
                              .iterations = iters,
                              .timing_ms = 0.5};
    proto_error err;
    json_t *b = proto_control_response(&r, 1, &err);
    assert_non_null(b);
    json_t *c = json_object_get(b, "controls");
    assert_int_equal(json_array_size(c), 2);
    assert_int_equal(json_array_size(json_array_get(c, 1)), 2);
    assert_true(json_real_value(json_array_get(json_array_get(json_array_get(c, 1), 0), 0)) ==
                    (double)0.3f ||
                fabs(json_real_value(json_array_get(json_array_get(json_array_get(c, 1), 0), 0)) -
                     0.3) < 1e-7);
    assert_int_equal(json_array_size(json_object_get(b, "trajectory")), 2);
    assert_int_equal(json_array_size(json_array_get(json_object_get(b, "trajectory"), 0)), 3);
    json_t *it = json_object_get(b, "iterations"); /* [n][K+1][T][m] */
    assert_int_equal(json_array_size(it), 2);
    assert_int_equal(json_array_size(json_array_get(it, 0)), 2);
    /* sample 1, iterate 1, step 0 is iters[(1*2 + 1)*2 + 0] = 7 */
    assert_true(json_real_value(json_array_get(
                    json_array_get(json_array_get(json_array_get(it, 1), 1), 0), 0)) == 7.0);
    assert_true(json_real_value(json_array_get(json_object_get(b, "final_error"), 1)) == 0.25);
    assert_string_equal(json_string_value(json_object_get(json_object_get(b, "model"), "version")),
                        "abc");
    json_decref(b);

    r.n = 1;
    r.trajectory = NULL;
    r.iterations = NULL;
    json_t *s1 = proto_control_response(&r, 0, &err);
    assert_non_null(s1);
    assert_int_equal(json_array_size(json_object_get(s1, "controls")), 2); /* [T][m] */
    assert_true(json_is_real(json_object_get(s1, "cost")));
    assert_null(json_object_get(s1, "trajectory"));
    assert_null(json_object_get(s1, "iterations"));
    assert_int_equal(json_array_size(json_object_get(s1, "final_state")), 2);
    json_decref(s1);
}

static void test_polish_field(void **state) {
    (void)state;
    proto_control_req req;
    proto_error err;
    assert_int_equal(parse("{\"state\":[1,0],\"target\":[0,0],\"polish\":{\"expert\":\"ilqr\","
                           "\"max_iters\":7}}",
                           8, &req, &err),
                     0);
    assert_string_equal(req.polish_expert, "ilqr");
    assert_int_equal(req.polish_max_iters, 7);
    const trc_system *vdp = trc_system_find("van_der_pol");
    assert_int_equal(proto_control_check_polish(&req, vdp, 7, &err), 0);
    assert_int_equal(proto_control_check_polish(&req, vdp, 6, &err), -1);
    assert_string_equal(err.param, "polish.max_iters");
    trc_system nojac = *vdp;
    nojac.jacobian = NULL;
    assert_int_equal(proto_control_check_polish(&req, &nojac, 7, &err), -1);
    assert_string_equal(err.param, "polish.expert");
    assert_non_null(strstr(err.message, "Jacobians"));
    proto_control_req_free(&req);
    assert_int_equal(parse("{\"state\":[1,0],\"target\":[0,0]}", 8, &req, &err), 0);
    assert_int_equal(req.polish_max_iters, 0); /* no polish: nothing to check */
    assert_int_equal(proto_control_check_polish(&req, &nojac, 1, &err), 0);
    proto_control_req_free(&req);
    static const struct {
        const char *polish, *param, *text;
    } bad[] = {
        {"\"ilqr\"", "polish", "must be an object"},
        {"{\"max_iters\":3}", "polish.expert", "missing"},
        {"{\"expert\":3,\"max_iters\":3}", "polish.expert", "string"},
        {"{\"expert\":\"x\",\"max_iters\":3}", "polish.expert", "unknown expert 'x'"},
        {"{\"expert\":\"lqr\",\"max_iters\":3}", "polish.expert", "cannot start from a guess"},
        {"{\"expert\":\"ilqr\"}", "polish.max_iters", "missing"},
        {"{\"expert\":\"ilqr\",\"max_iters\":0}", "polish.max_iters", "1..100000"},
        {"{\"expert\":\"ilqr\",\"max_iters\":100001}", "polish.max_iters", "1..100000"},
        {"{\"expert\":\"ilqr\",\"max_iters\":1.5}", "polish.max_iters", "whole number"},
        {"{\"expert\":\"ilqr\",\"max_iters\":3,\"tol\":1}", "polish", "polish.tol"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char body[256];
        snprintf(body, sizeof body, "{\"state\":[1,0],\"target\":[0,0],\"polish\":%s}",
                 bad[i].polish);
        assert_int_equal(parse(body, 8, &req, &err), -1);
        assert_int_equal(err.code, 400);
        assert_string_equal(err.param, bad[i].param);
        assert_non_null(strstr(err.message, bad[i].text));
    }
}

static void test_polish_response(void **state) {
    (void)state;
    float u[2] = {0.1f, 0.2f}, xf[2] = {0, 0};
    double fe = 0.5, cost = 0.05;
    trc_polish_result pol = {
        .iterations = 3, .converged = 1, .cost_before = 9.0, .cost_after = 2.5, .ms = 0.25};
    proto_control_result r = {.model_name = "m",
                              .model_version = "v",
                              .n = 1,
                              .T = 2,
                              .m = 1,
                              .s = 2,
                              .K = 1,
                              .controls = u,
                              .final_state = xf,
                              .final_error = &fe,
                              .cost = &cost,
                              .polish = &pol,
                              .polish_expert = "ilqr",
                              .polish_max_iters = 5};
    proto_error err;
    for (int batch = 0; batch < 2; batch++) {
        json_t *b = proto_control_response(&r, batch, &err);
        assert_non_null(b);
        json_t *p = json_object_get(b, "polish");
        if (batch) {
            assert_int_equal(json_array_size(p), 1);
            p = json_array_get(p, 0);
        }
        assert_string_equal(json_string_value(json_object_get(p, "expert")), "ilqr");
        assert_int_equal(json_integer_value(json_object_get(p, "max_iters")), 5);
        assert_int_equal(json_integer_value(json_object_get(p, "iterations")), 3);
        assert_true(json_is_true(json_object_get(p, "converged")));
        assert_true(json_real_value(json_object_get(p, "cost_before")) == 9.0);
        assert_true(json_real_value(json_object_get(p, "cost_after")) == 2.5);
        assert_true(json_real_value(json_object_get(p, "ms")) == 0.25);
        json_decref(b);
    }
    pol.cost_after = NAN; /* never sent */
    assert_null(proto_control_response(&r, 0, &err));
    assert_int_equal(err.code, 422);
}

static void test_response_never_sends_nan(void **state) {
    (void)state;
    float u[2] = {0.1f, NAN}, xf[2] = {0, 0};
    double fe = 0, cost = 0;
    proto_control_result r = {.model_name = "m",
                              .model_version = "v",
                              .n = 1,
                              .T = 2,
                              .m = 1,
                              .s = 2,
                              .K = 1,
                              .controls = u,
                              .final_state = xf,
                              .final_error = &fe,
                              .cost = &cost};
    proto_error err;
    assert_null(proto_control_response(&r, 0, &err));
    assert_int_equal(err.code, 422);
    assert_null(proto_control_response(&r, 1, &err));
    u[1] = 0;
    fe = INFINITY;
    assert_null(proto_control_response(&r, 1, &err));
    fe = 0;
    xf[1] = -INFINITY;
    assert_null(proto_control_response(&r, 0, &err));
    xf[1] = 0;
    json_t *ok = proto_control_response(&r, 0, &err);
    assert_non_null(ok);
    json_decref(ok);
}

static void test_error_shape(void **state) {
    (void)state;
    proto_error err;
    assert_int_equal(proto_fail(&err, 413, "states", "too many: %d", 5), -1);
    json_t *j = proto_error_json(&err);
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"error\":{\"code\":413,\"message\":\"too many: 5\",\"param\":"
                              "\"states\",\"type\":\"payload_too_large\"}}");
    free(text);
    json_decref(j);
    proto_fail(&err, 404, NULL, "nope");
    j = proto_error_json(&err);
    assert_null(json_object_get(json_object_get(j, "error"), "param"));
    json_decref(j);
    assert_string_equal(proto_error_type(400), "invalid_request");
    assert_string_equal(proto_error_type(401), "unauthorized");
    assert_string_equal(proto_error_type(403), "forbidden");
    assert_string_equal(proto_error_type(405), "method_not_allowed");
    assert_string_equal(proto_error_type(409), "conflict");
    assert_string_equal(proto_error_type(415), "unsupported_media_type");
    assert_string_equal(proto_error_type(500), "internal");
    assert_string_equal(proto_error_type(503), "unavailable");
}

static void test_real_f32_shortest(void **state) {
    (void)state;
    json_t *a = json_pack("[o, o, o]", proto_real_f32(0.1f), proto_real_f32(-2.5f),
                          proto_real_f32(0.123456789f));
    char *text = json_dumps(a, PROTO_REAL_FLAGS);
    assert_string_equal(text, "[0.1,-2.5,0.12345679]"); /* 8 digits suffice, not 9 */
    free(text);
    json_decref(a);
    assert_null(proto_real_f32(NAN));
    assert_null(proto_real_f32(INFINITY));
    /* every value read back is the same float */
    for (float x = -3.0f; x < 3.0f; x += 0.0137f) {
        json_t *v = proto_real_f32(x);
        char *t = json_dumps(v, PROTO_REAL_FLAGS | JSON_ENCODE_ANY);
        assert_true(strtof(t, NULL) == x);
        free(t);
        json_decref(v);
    }
}

/* The float32 text of the /v1/control response (exact integer rounding, proto/jtext.c): over
 * 20,000 bit patterns of every magnitude it reads back as the same float, is a JSON real,
 * and is never longer than the C library's choice (%.7g when it reads back, else %.9g), with
 * the same value whenever %.7g reads back. */
static void test_f32_text_against_libc(void **state) {
    (void)state;
    char buf[40], ref[40];
    assert_int_equal(proto_f32_text(NAN, buf), 0);
    assert_int_equal(proto_f32_text(-INFINITY, buf), 0);
    static const struct {
        float v;
        const char *text;
    } fixed[] = {{0.0f, "0.0"},
                 {-0.0f, "-0.0"},
                 {4.0f, "4.0"},
                 {-1.02f, "-1.02"},
                 {0.1f, "0.1"},
                 {1e-5f, "1e-05"},
                 {12345678.0f, "12345678.0"},
                 {3e38f, "3e+38"},
                 {1.5e-40f, "1.500006e-40"}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        proto_f32_text(fixed[i].v, buf);
        assert_string_equal(buf, fixed[i].text);
    }
    uint32_t x = 2463534242u; /* xorshift32 */
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        float v;
        memcpy(&v, &x, sizeof v);
        if (!isfinite(v))
            continue;
        size_t n = proto_f32_text(v, buf);
        assert_int_equal(n, strlen(buf));
        assert_true(strtof(buf, NULL) == v);
        assert_true(strpbrk(buf, ".e") != NULL);
        int r = snprintf(ref, sizeof ref, "%.7g", (double)v);
        if (strtof(ref, NULL) == v)
            assert_true(strtod(buf, NULL) == strtod(ref, NULL));
        else
            r = snprintf(ref, sizeof ref, "%.9g", (double)v);
        assert_true(n <= (size_t)r + 2); /* + ".0" */
    }
}

/* The doubles of the response (final_error, cost, timing_ms): 9 significant digits, the same
 * value as %.9g (jansson's JSON_REAL_PRECISION(9) before), over every magnitude. */
static void test_f64_text_against_libc(void **state) {
    (void)state;
    char buf[40], ref[40];
    static const struct {
        double v;
        const char *text;
    } fixed[] = {{0.0, "0.0"},       {-0.0, "-0.0"},
                 {4.0, "4.0"},       {0.25, "0.25"},
                 {1e-7, "1e-07"},    {7.1, "7.1"},
                 {1e300, "1e+300"},  {0.0014, "0.0014"},
                 {3390.4, "3390.4"}, {1.0 / 3, "0.333333333"}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        proto_f64_text(fixed[i].v, buf);
        assert_string_equal(buf, fixed[i].text);
    }
    uint64_t x = 88172645463325252ull; /* xorshift64 */
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* a mantissa and a decimal exponent in -12..17: every branch of the formatter */
        double v = (double)(x >> 11) * 0x1p-53 * pow(10.0, (double)(int)(x % 30) - 12);
        if (x & 1)
            v = -v;
        size_t n = proto_f64_text(v, buf);
        assert_int_equal(n, strlen(buf));
        assert_true(strpbrk(buf, ".e") != NULL);
        snprintf(ref, sizeof ref, "%.9g", v);
        assert_true(strtod(buf, NULL) == strtod(ref, NULL));
    }
}

static void test_load_request(void **state) {
    (void)state;
    proto_load_req lr;
    proto_error err;
    const char *ok = "{\"checkpoint\": \"sub/best.safetensors\"}";
    assert_int_equal(proto_load_parse(ok, strlen(ok), &lr, &err), 0);
    assert_string_equal(lr.checkpoint, "sub/best.safetensors");
    const char *bad[] = {"{\"checkpoint\": \"../etc/passwd\"}",
                         "{\"checkpoint\": \"/etc/passwd\"}",
                         "{\"checkpoint\": \"a/../../b\"}",
                         "{\"checkpoint\": \"\"}",
                         "{\"checkpoint\": 3}",
                         "{}",
                         "{\"checkpoint\": \"a\", \"x\": 1}"};
    const char *param[] = {"checkpoint", "checkpoint", "checkpoint", "checkpoint",
                           "checkpoint", "checkpoint", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(proto_load_parse(bad[i], strlen(bad[i]), &lr, &err), -1);
        assert_int_equal(err.code, 400);
        assert_string_equal(err.param, param[i]);
    }
    assert_int_equal(proto_check_relpath("a..b/c", "p", &err), 0); /* only a ".." segment */
}

/* jtext_str: runs copied whole, escapes where JSON needs them; the text reads back as the
 * same string (jansson), for names with quotes, backslashes, control characters, UTF-8. */
static void test_jtext_str(void **state) {
    (void)state;
    const char *cases[] = {"",
                           "default",
                           "41649c2d0a9b8e7f41649c2d0a9b8e7f41649c2d0a9b8e7f41649c2d0a9b8e7f",
                           "a\"b\\c",
                           "\"",
                           "\\",
                           "tab\there\nnew\rret\x01\x1f end",
                           "caf\xc3\xa9 \xe2\x86\x92 x"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        jtext t = {0};
        jtext_str(&t, cases[i]);
        assert_false(t.failed);
        json_error_t e;
        json_t *j = json_loads(t.buf, JSON_DECODE_ANY, &e);
        assert_non_null(j);
        assert_string_equal(json_string_value(j), cases[i]);
        json_decref(j);
        free(t.buf);
    }
    jtext t = {0};
    jtext_str(&t, "q\"\x01");
    assert_string_equal(t.buf, "\"q\\\"\\u0001\"");
    free(t.buf);
}

static void test_field_readers(void **state) {
    (void)state;
    json_error_t je;
    json_t *o = json_loads("{\"i\": 5, \"r\": 2.0, \"f\": 2.5, \"s\": \"x\", \"b\": true, "
                           "\"big\": 100}",
                           0, &je);
    proto_error err;
    long long i = 0;
    double d = 0;
    int b = 0;
    const char *s = NULL;
    assert_int_equal(proto_get_int(o, "i", 0, 10, &i, &err), 1);
    assert_int_equal(i, 5);
    assert_int_equal(proto_get_int(o, "r", 0, 10, &i, &err), 1); /* integral real */
    assert_int_equal(i, 2);
    assert_int_equal(proto_get_int(o, "f", 0, 10, &i, &err), -1);
    assert_string_equal(err.param, "f");
    assert_int_equal(proto_get_int(o, "big", 0, 10, &i, &err), -1);
    assert_non_null(strstr(err.message, "between"));
    assert_int_equal(proto_get_int(o, "absent", 0, 10, &i, &err), 0);
    assert_int_equal(proto_get_number(o, "f", 0, 10, &d, &err), 1);
    assert_true(d == 2.5);
    assert_int_equal(proto_get_number(o, "s", 0, 10, &d, &err), -1);
    assert_int_equal(proto_get_string(o, "s", &s, &err), 1);
    assert_string_equal(s, "x");
    assert_int_equal(proto_get_string(o, "i", &s, &err), -1);
    assert_int_equal(proto_get_bool(o, "b", &b, &err), 1);
    assert_int_equal(b, 1);
    assert_int_equal(proto_get_bool(o, "i", &b, &err), -1);
    json_decref(o);
    assert_int_equal(proto_check_name("mymodel_2.v-1", "name", &err), 0);
    assert_int_equal(proto_check_name(".hidden", "name", &err), -1);
    assert_int_equal(proto_check_name("a/b", "name", &err), -1);
    assert_int_equal(proto_check_name("a b", "name", &err), -1);
    char longname[80];
    memset(longname, 'a', 65);
    longname[65] = '\0';
    assert_int_equal(proto_check_name(longname, "name", &err), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_ok),
        cmocka_unit_test(test_batch_ok),
        cmocka_unit_test(test_malformed_json),
        cmocka_unit_test(test_non_finite),
        cmocka_unit_test(test_missing_and_types),
        cmocka_unit_test(test_dimension_names_the_wrong_field),
        cmocka_unit_test(test_unknown_field),
        cmocka_unit_test(test_return_field),
        cmocka_unit_test(test_batch_errors),
        cmocka_unit_test(test_response_shapes),
        cmocka_unit_test(test_f32_text_against_libc),
        cmocka_unit_test(test_f64_text_against_libc),
        cmocka_unit_test(test_response_never_sends_nan),
        cmocka_unit_test(test_polish_field),
        cmocka_unit_test(test_polish_response),
        cmocka_unit_test(test_error_shape),
        cmocka_unit_test(test_real_f32_shortest),
        cmocka_unit_test(test_load_request),
        cmocka_unit_test(test_field_readers),
        cmocka_unit_test(test_jtext_str),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
