/* POST /v1/control (alias POST /control): parse and validate (proto), take the model snapshot,
 * run it through the dynamic batcher, simulate the controls with the model's system for the
 * final state, error, cost and trajectory, and answer (proto). The request is parsed where it
 * arrives (the event thread, for bodies up to 64 KiB) and answered by the batcher's executor:
 * no thread waits for it and none is woken for it (HTTP_DEFER, batcher_submit). */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "batcher.h"
#include "registry.h"
#include "routes.h"
#include "trc/error.h"
#include "trc/polish.h"
#include "trc/rollout.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* Simulates and scores each sample over the L steps planned (trc_rollout_score, as trc predict
 * and trc eval do). u: [n, L*m], traj: [n, L+1, s], final_state: [n, s]. */
static int simulate(const model_snapshot *snap, const proto_control_req *rq, int L, const float *u,
                    float *traj, float *final_state, double *final_error, double *cost) {
    const trc_model_config *c = &snap->model.cfg;
    size_t s = (size_t)c->s;
    double small[64]; /* one row or a few: no allocation */
    double *xf = rq->n * s <= 64 ? small : malloc(rq->n * s * sizeof *xf);
    trc_rollout_out ro = {
        .traj = traj, .final_state = xf, .final_error = final_error, .cost = cost};
    int rc =
        xf ? trc_rollout_score(snap->system, snap->dt, L, rq->n, rq->states, rq->targets, u, &ro)
           : trc_fail(TRC_ENOMEM, "out of memory");
    for (size_t i = 0; rc == TRC_OK && i < rq->n * s; i++)
        final_state[i] = (float)xf[i];
    if (xf != small)
        free(xf);
    return rc ? -1 : 0;
}

/* The model's answers u [n, L*m] (L steps planned) polished in place (trc/polish.h) with the
 * system's default expert weights; one report per sample in out [n]. Stops between rows
 * (TRC_ECANCELED) once the client is gone (gone may be NULL). */
static int polish(const model_snapshot *snap, const proto_control_req *rq, int L, float *u,
                  trc_polish_result *out, const atomic_int *gone) {
    const trc_model_config *c = &snap->model.cfg;
    trc_expert_plan *plan;
    int rc = trc_polish_plan_create(rq->polish_expert, snap->system, snap->dt, L, c->bound, NULL,
                                    rq->polish_max_iters, &plan);
    if (rc)
        return rc;
    const size_t s = (size_t)c->s, U = (size_t)L * (size_t)c->m;
    double *ui = malloc(2 * U * sizeof(double)), *uo = ui ? ui + U : NULL;
    double x0[PROTO_MAX_DIM], xt[PROTO_MAX_DIM];
    rc = ui ? TRC_OK : trc_fail(TRC_ENOMEM, "out of memory");
    for (size_t i = 0; rc == TRC_OK && i < rq->n; i++) {
        if (gone && atomic_load(gone)) {
            rc = TRC_ECANCELED;
            break;
        }
        for (size_t k = 0; k < s; k++)
            x0[k] = rq->states[i * s + k], xt[k] = rq->targets[i * s + k];
        for (size_t k = 0; k < U; k++)
            ui[k] = u[i * U + k];
        rc = trc_polish_run(plan, x0, xt, ui, uo, &out[i]);
        for (size_t k = 0; rc == TRC_OK && k < U; k++)
            u[i * U + k] = (float)uo[k];
    }
    free(ui);
    trc_expert_plan_free(plan);
    return rc;
}

/* Bytes a number takes in the response at most ("-1.23456789e-05,"): the estimate below is
 * an upper bound, so a request under --max-response never builds a bigger answer. */
#define BYTES_PER_NUMBER 16

/* What one request may ask for, checked before any work: the model evaluations (rows x K x
 * (n+1) block passes over the parameters) plus any polish (rows x max_iters iterations, each
 * counted as T (s+m)^3 multiply-adds: the dense products of a backward pass), together under
 * --max-work, and the size of the answer (--max-response), both 413 naming what to reduce. */
static int check_budget(app *a, const model_snapshot *snap, const proto_control_req *rq,
                        proto_error *err) {
    const trc_model_config *c = &snap->model.cfg;
    double work = (double)rq->n * c->K * (c->n + 1) * (double)snap->model.num_params;
    if (work > (double)a->cfg.max_work)
        return proto_fail(err, 413, rq->batch ? "states" : "state",
                          "%zu row(s) of model '%s' (K=%d, n=%d, %zu parameters) ask for %.3g "
                          "multiply-adds, over the limit of %.3g (--max-work): send at most %zu "
                          "row(s)",
                          rq->n, snap->name, c->K, c->n, snap->model.num_params, work,
                          (double)a->cfg.max_work,
                          (size_t)((double)a->cfg.max_work / (work / (double)rq->n)));
    /* the model alone fits: what is over is the polish */
    double sm = (double)(c->s + c->m), polish_work = (double)c->T * sm * sm * sm;
    if (rq->polish_max_iters) {
        double total = work + (double)rq->n * rq->polish_max_iters * polish_work;
        if (total > (double)a->cfg.max_work)
            return proto_fail(err, 413, "polish.max_iters",
                              "%zu row(s) of model '%s' with polish.max_iters %d ask for %.3g "
                              "multiply-adds, over the limit of %.3g (--max-work): lower "
                              "polish.max_iters or send fewer rows",
                              rq->n, snap->name, rq->polish_max_iters, total,
                              (double)a->cfg.max_work);
    }
    double U = (double)c->T * c->m, per_row = U + c->s + 2;
    if (rq->ret & PROTO_RET_TRAJECTORY)
        per_row += (double)(c->T + 1) * c->s;
    if (rq->ret & PROTO_RET_ITERATIONS)
        per_row += (double)(c->K + 1) * U;
    double bytes = per_row * BYTES_PER_NUMBER * (double)rq->n;
    if (bytes > (double)a->cfg.max_response)
        return proto_fail(err, 413, rq->ret ? "return" : (rq->batch ? "states" : "state"),
                          "the response to %zu row(s) would be up to %.1f MB, over the limit of "
                          "%.1f MB (--max-response): send at most %zu row(s)%s",
                          rq->n, bytes / 1048576.0, (double)a->cfg.max_response / 1048576.0,
                          (size_t)((double)a->cfg.max_response / (per_row * BYTES_PER_NUMBER)),
                          rq->ret ? " or leave out \"trajectory\"/\"iterations\"" : "");
    return 0;
}

/* Compacts u [n, T*m] to [n, L*m] and iters [K1, n, T*m] (may be NULL) to [K1, n, L*m] in place,
 * keeping the first L steps of each row (each destination is at or before its source). */
static void keep_steps(float *u, float *iters, size_t n, size_t K1, int T, int m, int L) {
    const size_t U = (size_t)T * (size_t)m, UL = (size_t)L * (size_t)m;
    for (size_t i = 0; i < n; i++)
        memmove(u + i * UL, u + i * U, UL * sizeof *u);
    for (size_t r = 0; iters && r < K1 * n; r++)
        memmove(iters + r * UL, iters + r * U, UL * sizeof *iters);
}

/* One request on its way: parsed and checked on the event thread (on_control), evaluated by
 * the batcher, then answered (answer) by the executor, or by a worker when it is slow work. */
typedef struct control_job {
    batcher_job job; /* first: the batcher hands it back */
    http_response *res;
    const atomic_int *gone;
    model_snapshot *snap;
    proto_control_req rq;
    float *u, *iters, *traj, *xf; /* [n, T*m], [(K+1), n, T*m], [n, T+1, s], [n, s] */
    double *fe, *cost;            /* [n]; fe is the block holding cost, u, traj and xf too */
    trc_polish_result *pol;       /* [n] or NULL */
    double t0;
} control_job;

/* Rows above which the answer (simulation, JSON) is written on a worker, not the executor. */
#define EXECUTOR_ANSWER_ROWS 64

static void control_job_free(control_job *cj) {
    free(cj->iters);
    free(cj->fe);
    free(cj->pol);
    if (cj->snap)
        snapshot_release(cj->snap);
    proto_control_req_free(&cj->rq);
    free(cj);
}

/* The answer once the model has run (rc: batcher_infer's status): polish, simulation, JSON. */
static void answer(control_job *cj) {
    const model_snapshot *snap = cj->snap;
    const trc_model_config *c = &snap->model.cfg;
    http_response *res = cj->res;
    proto_error err;
    int rc = cj->job.rc;
    /* L steps left to plan (all T unless steps_left says fewer) */
    const int L = cj->rq.steps_left ? cj->rq.steps_left : c->T;
    if (rc == TRC_OK && L < c->T) /* the first L steps of every row: the rest is not planned */
        keep_steps(cj->u, cj->iters, cj->rq.n, (size_t)c->K + 1, c->T, c->m, L);
    if (rc == TRC_ECANCELED) {
        /* nobody reads it; logged and counted as nginx does ("client closed request") */
        http_reply_error(res, 499, NULL, "the client closed the connection; work stopped");
    } else if (rc == TRC_ENUMERIC) {
        http_reply_error(res, 422, NULL,
                         "model '%s' produced a non-finite control (NaN or infinity) for "
                         "this input; nothing was sent",
                         snap->name);
    } else if (rc) {
        http_reply_error(res, 500, NULL, "inference failed: %s", trc_errmsg());
    } else if (cj->pol && (rc = polish(snap, &cj->rq, L, cj->u, cj->pol, cj->gone))) {
        if (rc == TRC_ECANCELED)
            http_reply_error(res, 499, NULL, "the client closed the connection; work stopped");
        else if (rc == TRC_ENUMERIC)
            http_reply_error(res, 422, "polish", "polish failed: %s", trc_errmsg());
        else
            http_reply_error(res, 500, NULL, "polish failed: %s", trc_errmsg());
    } else if (simulate(snap, &cj->rq, L, cj->u, cj->traj, cj->xf, cj->fe, cj->cost)) {
        http_reply_error(res, 500, NULL, "simulation failed: %s", trc_errmsg());
    } else {
        unsigned ret = cj->rq.ret;
        proto_control_result r = {.model_name = snap->name,
                                  .model_version = snap->sha256,
                                  .n = cj->rq.n,
                                  .T = L,
                                  .m = c->m,
                                  .s = c->s,
                                  .K = c->K,
                                  .controls = cj->u,
                                  .final_state = cj->xf,
                                  .final_error = cj->fe,
                                  .cost = cj->cost,
                                  .trajectory = (ret & PROTO_RET_TRAJECTORY) ? cj->traj : NULL,
                                  .iterations = cj->iters,
                                  .polish = cj->pol,
                                  .polish_expert = cj->rq.polish_expert,
                                  .polish_max_iters = cj->rq.polish_max_iters,
                                  .timing_ms = now_ms() - cj->t0};
        size_t text_len;
        char *text = proto_control_response_text(&r, cj->rq.batch, &text_len, &err);
        if (text)
            http_reply_bytes(res, 200, "application/json", text, text_len);
        else
            http_reply_proto_error(res, &err);
    }
    control_job_free(cj);
    http_resume(res);
}

static void answer_on_worker(void *arg) {
    answer(arg);
}

/* The batcher's done: a small answer is written here, on the executor; polish and large
 * batches go to a worker so that the executor returns to evaluating. */
static void evaluated(batcher_job *job) {
    control_job *cj = (control_job *)job;
    if (!job->rc && (cj->pol || cj->rq.n > EXECUTOR_ANSWER_ROWS))
        http_run_on_worker(cj->res, answer_on_worker, cj);
    else
        answer(cj);
}

static void on_control(app *a, const http_request *req, http_response *res) {
    if (http_query_refuse(req, res, NULL))
        return;
    control_job *cj = calloc(1, sizeof *cj);
    if (!cj) {
        http_reply_error(res, 500, NULL, "out of memory");
        return;
    }
    cj->t0 = now_ms();
    cj->res = res;
    cj->gone = http_client_gone(req);
    batcher_arrive(a->batcher);
    proto_error err;
    size_t len;
    const char *body = http_body(req, &len);
    if (proto_control_parse(body, len, a->cfg.max_batch, &cj->rq, &err)) {
        batcher_leave(a->batcher);
        http_reply_proto_error(res, &err);
        free(cj);
        return;
    }
    proto_control_req *rq = &cj->rq;
    cj->snap = registry_get(a->registry, rq->model);
    if (!cj->snap) {
        batcher_leave(a->batcher);
        http_reply_error(res, 404, "model", "model '%s' is not loaded",
                         rq->model[0] ? rq->model : "default");
        control_job_free(cj);
        return;
    }
    const model_snapshot *snap = cj->snap;
    const trc_model_config *c = &snap->model.cfg;
    if (proto_control_check_dim(rq, c->s, &err) ||
        proto_control_check_steps(rq, c->T, c->time_left, &err) ||
        proto_control_check_polish(rq, snap->system, a->cfg.max_polish_iters, &err) ||
        check_budget(a, snap, rq, &err)) {
        batcher_leave(a->batcher);
        http_reply_proto_error(res, &err);
        control_job_free(cj);
        return;
    }
    size_t n = rq->n, s = (size_t)c->s, U = (size_t)c->T * (size_t)c->m;
    size_t T1 = (size_t)c->T + 1, K1 = (size_t)c->K + 1;
    /* the per-row outputs in one block (one allocation instead of five per request): doubles
     * first, then floats */
    cj->fe = malloc(2 * n * sizeof(double) + n * (U + T1 * s + s) * sizeof(float));
    if (cj->fe) {
        cj->cost = cj->fe + n;
        cj->u = (float *)(void *)(cj->cost + n);
        cj->traj = cj->u + n * U;
        cj->xf = cj->traj + n * T1 * s;
    }
    cj->iters = (rq->ret & PROTO_RET_ITERATIONS) ? malloc(K1 * n * U * sizeof(float)) : NULL;
    cj->pol = rq->polish_max_iters ? malloc(n * sizeof *cj->pol) : NULL;
    if (!cj->fe || ((rq->ret & PROTO_RET_ITERATIONS) && !cj->iters) ||
        (rq->polish_max_iters && !cj->pol)) {
        batcher_leave(a->batcher);
        http_reply_error(res, 500, NULL, "out of memory");
        control_job_free(cj);
        return;
    }
    cj->job =
        (batcher_job){.snap = snap,
                      .n = n,
                      .x0 = rq->states,
                      .target = rq->targets,
                      .time_left = (float)(rq->steps_left ? rq->steps_left : c->T) / (float)c->T,
                      .u = cj->u,
                      .iterates = cj->iters,
                      .gone = cj->gone,
                      .done = evaluated};
    http_defer(res);
    batcher_submit(a->batcher, &cj->job);
}

int routes_control_register(http_server *srv) {
    return http_route(srv, "POST", "/v1/control", HTTP_BODY_JSON | HTTP_DEFER, on_control) ||
           http_route(srv, "POST", "/control", HTTP_BODY_JSON | HTTP_DEFER, on_control);
}
