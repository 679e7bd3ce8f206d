/* POST /v1/control: the request ({state, target} or {states, targets}, model, return) parsed
 * into proto_control_req (the response is written by proto/control_response.c). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "trc/error.h"

static const char *const control_keys[] = {"model",  "state",  "target",     "states", "targets",
                                           "return", "polish", "steps_left", NULL};
static const char *const polish_keys[] = {"expert", "max_iters", NULL};

/* Reads a JSON array of numbers into dst[0..len-1]; *len is its length. With want > 0 the
 * array must have exactly want values (checked before anything is written to dst). */
static int read_vector(const json_t *arr, const char *param, size_t row, int batch, int want,
                       float *dst, int *len, proto_error *err) {
    char where[48] = "";
    if (batch)
        snprintf(where, sizeof where, "[%zu]", row);
    if (!json_is_array(arr))
        return proto_fail(err, 400, param, "%s%s must be an array of numbers", param, where);
    size_t n = json_array_size(arr);
    if (n == 0)
        return proto_fail(err, 400, param, "%s%s must not be empty", param, where);
    if (n > PROTO_MAX_DIM)
        return proto_fail(err, 400, param, "%s%s has %zu values, more than %d", param, where, n,
                          PROTO_MAX_DIM);
    if (want > 0 && n != (size_t)want)
        return proto_fail(err, 400, param, "%s%s has %zu values but states[0] has %d", param, where,
                          n, want);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_number(v))
            return proto_fail(err, 400, param, "%s%s[%zu] must be a number", param, where, i);
        double x = json_number_value(v);
        if (!isfinite(x) || fabs(x) > 3.4e38)
            return proto_fail(err, 400, param, "%s%s[%zu] must be a finite float32 number", param,
                              where, i);
        if (fabs(x) > PROTO_MAX_ABS_STATE)
            return proto_fail(err, 400, param,
                              "%s%s[%zu] = %g is outside the plausible range [-%g, %g] of a "
                              "state",
                              param, where, i, x, PROTO_MAX_ABS_STATE, PROTO_MAX_ABS_STATE);
        if (dst)
            dst[i] = (float)x;
    }
    *len = (int)n;
    return 0;
}

static int parse_return(const json_t *ret, unsigned *bits, proto_error *err) {
    if (!json_is_array(ret))
        return proto_fail(err, 400, "return",
                          "return must be an array of \"trajectory\" and/or \"iterations\"");
    size_t i;
    json_t *v;
    json_array_foreach(ret, i, v) {
        const char *s = json_string_value(v);
        if (!s)
            return proto_fail(err, 400, "return", "return[%zu] must be a string", i);
        if (strcmp(s, "trajectory") == 0)
            *bits |= PROTO_RET_TRAJECTORY;
        else if (strcmp(s, "iterations") == 0)
            *bits |= PROTO_RET_ITERATIONS;
        else
            return proto_fail(err, 400, "return",
                              "return[%zu] is '%s': expected \"trajectory\" or \"iterations\"", i,
                              s);
    }
    return 0;
}

/* "polish": {"expert": NAME, "max_iters": N}; errors name "polish.<field>". */
static int parse_polish(const json_t *pol, proto_control_req *req, proto_error *err) {
    if (!json_is_object(pol))
        return proto_fail(err, 400, "polish",
                          "polish must be an object {\"expert\": \"ilqr\", \"max_iters\": N}");
    const char *bad = NULL, *k;
    json_t *v;
    json_object_foreach((json_t *)pol, k, v) {
        int known = 0;
        for (const char *const *a = polish_keys; *a; a++)
            known |= strcmp(k, *a) == 0;
        if (!known && !bad)
            bad = k;
    }
    if (bad)
        return proto_fail(err, 400, "polish",
                          "unknown field 'polish.%s' (known: expert, max_iters)", bad);
    const json_t *e = json_object_get(pol, "expert"), *it = json_object_get(pol, "max_iters");
    if (!e)
        return proto_fail(err, 400, "polish.expert", "missing field 'polish.expert'");
    if (!json_is_string(e))
        return proto_fail(err, 400, "polish.expert", "polish.expert must be a string");
    if (trc_polish_check(json_string_value(e), NULL))
        return proto_fail(err, 400, "polish.expert", "polish.expert: %s", trc_errmsg());
    if (!it)
        return proto_fail(err, 400, "polish.max_iters", "missing field 'polish.max_iters'");
    if (!json_is_integer(it) || json_integer_value(it) < 1 ||
        json_integer_value(it) > TRC_POLISH_MAX_ITERS)
        return proto_fail(err, 400, "polish.max_iters",
                          "polish.max_iters must be a whole number in 1..%d", TRC_POLISH_MAX_ITERS);
    snprintf(req->polish_expert, sizeof req->polish_expert, "%s", json_string_value(e));
    req->polish_max_iters = (int)json_integer_value(it);
    return 0;
}

static int parse_single(const json_t *root, proto_control_req *req, proto_error *err) {
    const json_t *st = json_object_get(root, "state"), *tg = json_object_get(root, "target");
    if (!st)
        return proto_fail(err, 400, "state", "missing field 'state'");
    if (!tg)
        return proto_fail(err, 400, "target", "missing field 'target'");
    float xs[PROTO_MAX_DIM], xt[PROTO_MAX_DIM];
    int ns, nt;
    if (read_vector(st, "state", 0, 0, 0, xs, &ns, err) ||
        read_vector(tg, "target", 0, 0, 0, xt, &nt, err))
        return -1;
    /* A length mismatch is reported by check_dim against the model's dimension, so that the
     * error names the field that is wrong rather than the one that differs. */
    req->n = 1;
    req->s = ns;
    req->s_target = nt;
    req->states = malloc(sizeof(float) * (size_t)ns);
    req->targets = malloc(sizeof(float) * (size_t)nt);
    if (!req->states || !req->targets)
        return proto_fail(err, 500, NULL, "out of memory");
    memcpy(req->states, xs, sizeof(float) * (size_t)ns);
    memcpy(req->targets, xt, sizeof(float) * (size_t)nt);
    return 0;
}

static int parse_batch(const json_t *root, size_t max_batch, proto_control_req *req,
                       proto_error *err) {
    const json_t *st = json_object_get(root, "states"), *tg = json_object_get(root, "targets");
    if (!st)
        return proto_fail(err, 400, "states", "missing field 'states'");
    if (!tg)
        return proto_fail(err, 400, "targets", "missing field 'targets'");
    if (!json_is_array(st))
        return proto_fail(err, 400, "states", "states must be an array of arrays of numbers");
    if (!json_is_array(tg))
        return proto_fail(err, 400, "targets", "targets must be an array of arrays of numbers");
    size_t n = json_array_size(st);
    if (n == 0)
        return proto_fail(err, 400, "states", "states must not be empty");
    if (n > max_batch)
        return proto_fail(err, 413, "states", "batch of %zu samples is over the limit of %zu", n,
                          max_batch);
    if (json_array_size(tg) != n)
        return proto_fail(err, 400, "targets", "targets has %zu rows but states has %zu",
                          json_array_size(tg), n);
    int s;
    if (read_vector(json_array_get(st, 0), "states", 0, 1, 0, NULL, &s, err))
        return -1;
    req->n = n;
    req->s = req->s_target = s;
    req->states = malloc(sizeof(float) * n * (size_t)s);
    req->targets = malloc(sizeof(float) * n * (size_t)s);
    if (!req->states || !req->targets)
        return proto_fail(err, 500, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int got;
        if (read_vector(json_array_get(st, i), "states", i, 1, s, req->states + i * (size_t)s, &got,
                        err) ||
            read_vector(json_array_get(tg, i), "targets", i, 1, s, req->targets + i * (size_t)s,
                        &got, err))
            return -1;
    }
    return 0;
}

int proto_control_parse(const char *body, size_t len, size_t max_batch, proto_control_req *req,
                        proto_error *err) {
    memset(req, 0, sizeof *req);
    json_t *root = proto_parse_object(body, len, err);
    if (!root)
        return -1;
    int rc = proto_check_keys(root, control_keys, err);
    const char *model = NULL;
    if (!rc && proto_get_string(root, "model", &model, err) < 0)
        rc = -1;
    if (!rc && model && proto_check_name(model, "model", err))
        rc = -1;
    if (!rc && model)
        snprintf(req->model, sizeof req->model, "%s", model);
    json_t *ret = json_object_get(root, "return");
    if (!rc && ret && parse_return(ret, &req->ret, err))
        rc = -1;
    json_t *pol = json_object_get(root, "polish");
    if (!rc && pol && parse_polish(pol, req, err))
        rc = -1;
    long long steps = 0;
    if (!rc && proto_get_int(root, "steps_left", 1, PROTO_MAX_STEPS, &steps, err) < 0)
        rc = -1;
    req->steps_left = (int)steps;
    int single = json_object_get(root, "state") || json_object_get(root, "target");
    int batch = json_object_get(root, "states") || json_object_get(root, "targets");
    if (!rc && single && batch)
        rc = proto_fail(err, 400, "states",
                        "give either state/target (one sample) or states/targets (a batch)");
    if (!rc) {
        req->batch = batch;
        rc = batch ? parse_batch(root, max_batch, req, err) : parse_single(root, req, err);
    }
    json_decref(root);
    if (rc)
        proto_control_req_free(req);
    return rc;
}

int proto_control_check_dim(const proto_control_req *req, int s, proto_error *err) {
    if (req->s == s && req->s_target == s)
        return 0;
    if (req->s == s)
        return proto_fail(err, 400, "target", "target must have %d values for model '%s', got %d",
                          s, req->model[0] ? req->model : "default", req->s_target);
    return proto_fail(err, 400, req->batch ? "states" : "state",
                      "%s must have %d values for model '%s', got %d",
                      req->batch ? "each row of states" : "state", s,
                      req->model[0] ? req->model : "default", req->s);
}

int proto_control_check_polish(const proto_control_req *req, const trc_system *sys, int max_iters,
                               proto_error *err) {
    if (!req->polish_max_iters)
        return 0;
    if (trc_polish_check(req->polish_expert, sys))
        return proto_fail(err, 400, "polish.expert", "polish.expert: %s", trc_errmsg());
    if (req->polish_max_iters > max_iters)
        return proto_fail(err, 400, "polish.max_iters",
                          "polish.max_iters is %d, over this server's limit of %d "
                          "(--max-polish-iters)",
                          req->polish_max_iters, max_iters);
    return 0;
}

int proto_control_check_steps(const proto_control_req *req, int T, int reads_time_left,
                              proto_error *err) {
    if (!req->steps_left || req->steps_left == T)
        return 0;
    if (req->steps_left > T)
        return proto_fail(err, 400, "steps_left",
                          "steps_left must be in 1..%d (the horizon of model '%s'), got %d", T,
                          req->model[0] ? req->model : "default", req->steps_left);
    if (!reads_time_left)
        return proto_fail(err, 400, "steps_left",
                          "model '%s' was not trained with tails (trc train --tails): it plans a "
                          "whole horizon of %d steps; leave out steps_left or send %d",
                          req->model[0] ? req->model : "default", T, T);
    return 0;
}

void proto_control_req_free(proto_control_req *req) {
    free(req->states);
    free(req->targets);
    req->states = req->targets = NULL;
    req->n = 0;
}
