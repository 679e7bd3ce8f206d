/* The /v1/control response, written as JSON text in one pass (proto/jtext.h): trcd sends it as
 * it is; proto_control_response parses it back for callers that want a jansson tree. */
#include <stdlib.h>

#include "jtext.h"
#include "proto.h"

static void vector(jtext *t, const float *x, int n) {
    jtext_raw(t, "[", 1);
    for (int i = 0; i < n; i++) {
        if (i)
            jtext_raw(t, ",", 1);
        jtext_f32(t, x[i]);
    }
    jtext_raw(t, "]", 1);
}

/* [rows][cols] of floats as nested arrays. */
static void matrix(jtext *t, const float *x, int rows, int cols) {
    jtext_raw(t, "[", 1);
    for (int r = 0; r < rows && !t->failed; r++) {
        if (r)
            jtext_raw(t, ",", 1);
        vector(t, x + (size_t)r * (size_t)cols, cols);
    }
    jtext_raw(t, "]", 1);
}

/* Field k of sample i (0 controls, 1 final_state, 2 final_error, 3 cost, 4 trajectory,
 * 5 iterations [K+1][T][m], 6 polish). */
static void field(jtext *t, const proto_control_result *r, int k, size_t i) {
    size_t U = (size_t)r->T * (size_t)r->m;
    switch (k) {
    case 0:
        matrix(t, r->controls + i * U, r->T, r->m);
        break;
    case 1:
        vector(t, r->final_state + i * (size_t)r->s, r->s);
        break;
    case 2:
        jtext_f64(t, r->final_error[i]);
        break;
    case 3:
        jtext_f64(t, r->cost[i]);
        break;
    case 4:
        matrix(t, r->trajectory + i * (size_t)(r->T + 1) * (size_t)r->s, r->T + 1, r->s);
        break;
    case 5:
        jtext_raw(t, "[", 1);
        for (int it = 0; it <= r->K; it++) {
            if (it)
                jtext_raw(t, ",", 1);
            matrix(t, r->iterations + ((size_t)it * r->n + i) * U, r->T, r->m);
        }
        jtext_raw(t, "]", 1);
        break;
    default: {
        const trc_polish_result *p = &r->polish[i];
        jtext_lit(t, "{\"expert\":");
        jtext_str(t, r->polish_expert);
        jtext_lit(t, ",\"max_iters\":");
        jtext_int(t, r->polish_max_iters);
        jtext_lit(t, ",\"iterations\":");
        jtext_int(t, p->iterations);
        jtext_lit(t, p->converged ? ",\"converged\":true" : ",\"converged\":false");
        jtext_lit(t, ",\"cost_before\":");
        jtext_f64(t, p->cost_before);
        jtext_lit(t, ",\"cost_after\":");
        jtext_f64(t, p->cost_after);
        jtext_lit(t, ",\"ms\":");
        jtext_f64(t, p->ms);
        jtext_raw(t, "}", 1);
    }
    }
}

char *proto_control_response_text(const proto_control_result *r, int batch, size_t *len,
                                  proto_error *err) {
    static const char *const keys[7] = {"controls",   "final_state", "final_error", "cost",
                                        "trajectory", "iterations",  "polish"};
    const int wanted[7] = {
        1, 1, 1, 1, r->trajectory != NULL, r->iterations != NULL, r->polish != NULL};
    jtext t = {0};
    jtext_lit(&t, "{\"model\":{\"name\":");
    jtext_str(&t, r->model_name);
    jtext_lit(&t, ",\"version\":");
    jtext_str(&t, r->model_version);
    jtext_raw(&t, "}", 1);
    for (int k = 0; k < 7 && !t.failed && !t.nonfinite; k++) {
        if (!wanted[k])
            continue;
        jtext_lit(&t, ",\"");
        jtext_lit(&t, keys[k]);
        jtext_lit(&t, "\":");
        if (!batch) {
            field(&t, r, k, 0);
            continue;
        }
        jtext_raw(&t, "[", 1); /* the batch form: one array per field, a row per sample */
        for (size_t i = 0; i < r->n && !t.failed; i++) {
            if (i)
                jtext_raw(&t, ",", 1);
            field(&t, r, k, i);
        }
        jtext_raw(&t, "]", 1);
    }
    jtext_lit(&t, ",\"timing_ms\":");
    jtext_f64(&t, r->timing_ms);
    jtext_lit(&t, "}\n");
    if (t.failed || t.nonfinite) {
        free(t.buf);
        if (t.failed)
            proto_fail(err, 500, NULL, "out of memory");
        else
            proto_fail(err, 422, NULL,
                       "the model's output for this input is not finite (NaN or infinity); "
                       "nothing was sent");
        return NULL;
    }
    *len = t.len;
    return t.buf;
}

json_t *proto_control_response(const proto_control_result *r, int batch, proto_error *err) {
    size_t len;
    char *text = proto_control_response_text(r, batch, &len, err);
    if (!text)
        return NULL;
    json_error_t e;
    json_t *out = json_loadb(text, len, 0, &e);
    free(text);
    if (!out)
        proto_fail(err, 500, NULL, "could not build the response: %s", e.text);
    return out;
}
