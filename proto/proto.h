/* The wire format of trcd in one place (see proto/openapi.yaml): JSON request bodies parsed and
 * validated into C structs, response bodies built from results, and the one error shape
 *   {"error": {"code": 400, "type": "invalid_request", "message": "...", "param": "state"}}.
 * Shared by the server and any C client; includes nothing from server/. */
#ifndef TRC_PROTO_H
#define TRC_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "trc/polish.h"

#define PROTO_NAME_MAX 64      /* model and job names: [A-Za-z0-9._-], 1..64, not starting '.' */
#define PROTO_MAX_DIM 64       /* largest state dimension a request may carry */
#define PROTO_MAX_STEPS 100000 /* largest steps_left a request may carry (the model bounds it) */
/* Largest |value| of a state or target: far beyond any system's working range, small enough
 * that the model and the simulation stay finite in float32 (3e38 would not). */
#define PROTO_MAX_ABS_STATE 1e6
#define PROTO_REAL_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9)) /* float32 round-trips */

/* An error destined for the client: HTTP status, the field at fault ("" if none), a message. */
typedef struct proto_error {
    int code;
    char param[64];
    char message[384];
} proto_error;

/* Records an error in err (may be NULL) and returns -1. */
int proto_fail(proto_error *err, int code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The error type for an HTTP status: 400 -> "invalid_request", 404 -> "not_found", ... */
const char *proto_error_type(int code);
/* {"error": {...}}; "param" is present only when err->param is not empty. */
json_t *proto_error_json(const proto_error *err);

/* Parses a JSON body; malformed JSON gives 400 naming line and column. Top level must be an
 * object. Returns a new reference or NULL with err filled. */
json_t *proto_parse_object(const char *body, size_t len, proto_error *err);
/* Checks that obj has no key outside `allowed` (NULL-terminated): 400 naming the first one. */
int proto_check_keys(const json_t *obj, const char *const *allowed, proto_error *err);
/* Validates a model or job name (see PROTO_NAME_MAX); param names the field for errors. */
int proto_check_name(const char *name, const char *param, proto_error *err);

/* Typed field readers for request objects. Each returns 0 when the field is absent (leaving
 * *out untouched), 1 when read, -1 with a 400 naming `key` on a wrong type or value. */
int proto_get_string(const json_t *obj, const char *key, const char **out, proto_error *err);
int proto_get_int(const json_t *obj, const char *key, long long lo, long long hi, long long *out,
                  proto_error *err);
int proto_get_number(const json_t *obj, const char *key, double lo, double hi, double *out,
                     proto_error *err);
int proto_get_bool(const json_t *obj, const char *key, int *out, proto_error *err);

/* A JSON real for a float32 value with the shortest decimal that reads back to the same float,
 * so 0.1f is sent as 0.1 and not 0.100000001. NULL for a non-finite value. */
json_t *proto_real_f32(float v);

/* ---- POST /v1/control ---- */

enum { PROTO_RET_TRAJECTORY = 1, PROTO_RET_ITERATIONS = 2 };

typedef struct proto_control_req {
    char model[PROTO_NAME_MAX + 1]; /* "" = the default model */
    int batch;                      /* 1 for the {"states", "targets"} form */
    size_t n;                       /* samples (1 for the single form) */
    int s;                          /* state dimension given in the request */
    int s_target;                   /* target dimension (single form; checked by check_dim) */
    float *states, *targets;        /* [n, s] each, malloc'd */
    unsigned ret;                   /* PROTO_RET_* bits */
    /* "polish": {"expert": "ilqr", "max_iters": N}: the model's answer as the warm start of an
     * iterative expert (trc/polish.h). polish_max_iters 0 = no polish. The parser checks the
     * expert alone and 1 <= N <= TRC_POLISH_MAX_ITERS; the server checks the model's system
     * and its own limit (proto_control_check_polish). */
    char polish_expert[32];
    int polish_max_iters;
    /* "steps_left": the steps of the model's horizon left (1..T) for every row, 0 when absent
     * (the whole horizon): the answer plans those steps only (a shrinking-horizon closed loop,
     * for a model trained with tails; proto_control_check_steps). */
    int steps_left;
} proto_control_req;

/* Parses and validates a control request. max_batch bounds n (over it: 413). On failure the
 * struct holds nothing to free. */
int proto_control_parse(const char *body, size_t len, size_t max_batch, proto_control_req *req,
                        proto_error *err);
/* 400 naming "state"/"states" (or "target"/"targets") unless the request's dimension is s. */
int proto_control_check_dim(const proto_control_req *req, int s, proto_error *err);
/* 400 naming "polish.expert" when the expert cannot polish on sys (e.g. a system without
 * Jacobians), "polish.max_iters" when it is over max_iters (the server's limit). 0 without a
 * polish. */
int proto_control_check_polish(const proto_control_req *req, const trc_system *sys, int max_iters,
                               proto_error *err);
/* 400 naming "steps_left" when it is over the model's horizon T, or below T for a model that
 * does not read the time left (trc_model_config.time_left). 0 when absent. */
int proto_control_check_steps(const proto_control_req *req, int T, int reads_time_left,
                              proto_error *err);
void proto_control_req_free(proto_control_req *req);

/* Results for a control request of n samples (all row-major, float32 unless noted). */
typedef struct proto_control_result {
    const char *model_name, *model_version;
    size_t n;
    int T, m, s, K;
    const float *controls;            /* [n, T*m] */
    const float *final_state;         /* [n, s] */
    const double *final_error, *cost; /* [n] */
    const float *trajectory;          /* [n, T+1, s] or NULL */
    const float *iterations;          /* [K+1, n, T*m] (model order) or NULL */
    const trc_polish_result *polish;  /* [n] or NULL: "polish" per sample (controls polished) */
    const char *polish_expert;
    int polish_max_iters;
    double timing_ms;
} proto_control_result;

/* The response as compact JSON text ending in a newline (single form when batch == 0), written
 * in one pass (proto/control_response.c); malloc'd, *len bytes. A non-finite value anywhere
 * gives NULL and a 422 in err (a NaN is never sent); out of memory a 500. */
char *proto_control_response_text(const proto_control_result *r, int batch, size_t *len,
                                  proto_error *err);
/* The same text parsed into an object (for callers that want a jansson tree). */
json_t *proto_control_response(const proto_control_result *r, int batch, proto_error *err);

/* ---- POST /v1/models/{name}/load (JSON form) ---- */

typedef struct proto_load_req {
    char checkpoint[1024]; /* relative path inside the models directory, no "..", not absolute */
} proto_load_req;

int proto_load_parse(const char *body, size_t len, proto_load_req *req, proto_error *err);
/* 400 unless path is relative, non-empty and has no ".." component (param names the field). */
int proto_check_relpath(const char *path, const char *param, proto_error *err);

#endif
