/* DAgger rows (trc/dagger.h): the model's closed loop through trc_eval_closed_loop, the states
 * it visited by trc_rollout_score of the controls it applied, the expert's plans for the steps
 * left from some of them. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"
#include "trc/dagger.h"
#include "trc/error.h"
#include "trc/eval.h"
#include "trc/expert.h"
#include "trc/rng.h"
#include "trc/rollout.h"
#include "trc/system.h"

/* ---- the closed loop: the model planning the steps left ---- */

typedef struct loop_ctx {
    trc_infer_plan *plan;
    int T, threads;
    float *time_left; /* [n] */
} loop_ctx;

static int model_policy(void *user, size_t n, const float *x, const float *target, int steps_left,
                        float *u) {
    loop_ctx *c = user;
    for (size_t i = 0; i < n; i++)
        c->time_left[i] = (float)steps_left / (float)c->T;
    return trc_infer_plan_run(c->plan, n, x, target, c->time_left, u, NULL, c->threads);
}

/* ---- the labels: the expert from the visited states, in parallel ---- */
/* plans[L] is NULL for a number of steps the expert cannot plan (its rows are left out). */

typedef struct label_job {
    const trc_dataset *ds;
    const float *traj;             /* [n, T+1, s] visited states */
    const int *step;               /* [rows] the step t of each row */
    trc_expert_plan *const *plans; /* [T]: plans[L] for L steps left */
    trc_dataset *out;              /* rows [rows] */
    unsigned char *conv;           /* [rows] */
    size_t rows, per;              /* rows, and rows per problem */
    atomic_size_t next;
    atomic_int rc;
} label_job;

static void *label_worker(void *arg) {
    label_job *j = arg;
    const trc_dataset *ds = j->ds;
    const size_t S = (size_t)ds->s, M = (size_t)ds->m, T = (size_t)ds->T;
    double x[TRC_SYSTEM_MAX_S], tg[TRC_SYSTEM_MAX_S], *u = malloc(T * M * sizeof *u);
    if (!u) {
        atomic_store(&j->rc, TRC_ENOMEM);
        return NULL;
    }
    for (size_t r; (r = atomic_fetch_add(&j->next, 1)) < j->rows && !atomic_load(&j->rc);) {
        size_t i = r / j->per, t = (size_t)j->step[r], L = T - t;
        const float *xt = j->traj + (i * (T + 1) + t) * S;
        if (!j->plans[L]) { /* no expert plan for L steps: left out */
            j->conv[r] = 0;
            continue;
        }
        for (size_t k = 0; k < S; k++)
            x[k] = xt[k], tg[k] = ds->target_states[i * S + k];
        trc_expert_cost cost = {0};
        int rc = trc_expert_solve(j->plans[L], x, tg, u, &cost);
        if (rc == TRC_ENUMERIC) { /* a state the expert cannot solve from: left out */
            j->conv[r] = 0;
            continue;
        }
        if (rc) {
            atomic_store(&j->rc, rc);
            break;
        }
        trc_dataset *o = j->out;
        memcpy(o->initial_states + r * S, xt, S * sizeof(float));
        memcpy(o->target_states + r * S, ds->target_states + i * S, S * sizeof(float));
        float *fu = o->control_sequences + r * T * M;
        for (size_t k = 0; k < T * M; k++)
            fu[k] = k < L * M ? (float)u[k] : 0.0f;
        o->steps_left[r] = (float)L;
        /* a direct expert has no convergence flag: its answer is the solution */
        j->conv[r] = (unsigned char)(!trc_expert_find(ds->settings.expert)->iterative ||
                                     cost.converged != 0);
    }
    free(u);
    return NULL;
}

static int check_inputs(const trc_model *model, const trc_dataset *ds, const trc_dagger_opts *o,
                        const trc_system **sys) {
    if (!model || !ds || !o)
        return trc_fail(TRC_EINVAL, "dagger: NULL argument");
    if (!model->cfg.time_left)
        return trc_fail(TRC_EINVAL, "the model does not read the time left (train it "
                                    "with --tails first): its closed loop re-plans whole "
                                    "horizons");
    if (!ds->has_settings)
        return trc_fail(TRC_EINVAL, "the data records no generation settings (the expert "
                                    "that labels the states)");
    if (ds->steps_left)
        return trc_fail(TRC_EINVAL, "the data holds tails: give whole problems (trc generate)");
    if (ds->s != model->cfg.s || ds->m != model->cfg.m || ds->T != model->cfg.T)
        return trc_fail(TRC_EINVAL,
                        "the data (s=%d, m=%d, T=%d) is not the model's "
                        "(s=%d, m=%d, T=%d)",
                        ds->s, ds->m, ds->T, model->cfg.s, model->cfg.m, model->cfg.T);
    if (ds->T < 2)
        return trc_fail(TRC_EINVAL, "a horizon of %d step has no state to label", ds->T);
    if (o->per_sample < 1 || o->threads < 1 || o->threads > TRC_PARALLEL_MAX)
        return trc_fail(TRC_EINVAL, "per_sample >= 1 and threads in 1..%d, got %d, %d",
                        TRC_PARALLEL_MAX, o->per_sample, o->threads);
    if (!(*sys = trc_system_find(ds->settings.system)))
        return trc_fail_prefix(TRC_EINVAL, "dagger: ");
    return TRC_OK;
}

/* out: rows of per labelled states of each problem, slots [n * per]; traj [n, T+1, s]. */
static int label(const trc_system *sys, const trc_dataset *ds, const trc_dagger_opts *o,
                 const float *traj, trc_dataset *out, size_t *unconverged) {
    const int T = ds->T, per = o->per_sample < T - 1 ? o->per_sample : T - 1;
    const size_t rows = ds->n * (size_t)per;
    int rc = trc_dataset_alloc_tails(out, rows, ds->s, ds->m, T);
    if (rc)
        return rc;
    int *step = malloc(rows * sizeof *step);
    uint32_t *steps = malloc((size_t)(T - 1) * sizeof *steps);
    unsigned char *conv = calloc(rows, 1);
    trc_expert_plan **plans = calloc((size_t)T, sizeof *plans);
    unsigned char *unsolvable = calloc((size_t)T, 1);
    if (!step || !steps || !conv || !plans || !unsolvable)
        rc = trc_fail(TRC_ENOMEM, "dagger: out of memory");
    trc_rng rng;
    trc_rng_seed(&rng, o->seed);
    for (size_t i = 0; !rc && i < ds->n; i++) {
        for (int k = 0; k < T - 1; k++)
            steps[k] = (uint32_t)(k + 1);
        trc_rng_shuffle(&rng, steps, (uint32_t)(T - 1)); /* the first per: distinct steps */
        for (int k = 0; k < per; k++)
            step[i * (size_t)per + (size_t)k] = (int)steps[k];
    }
    const trc_gen_settings *g = &ds->settings;
    for (size_t r = 0; !rc && r < rows; r++) { /* one plan per number of steps left */
        int L = T - step[r];
        if (plans[L] || unsolvable[L])
            continue;
        rc =
            trc_expert_plan_create(g->expert, sys, g->dt, L, g->bound, g->expert_params, &plans[L]);
        if (rc == TRC_EUNSUPPORTED) /* e.g. min_energy: a 2-D target is out of reach in 1 step */
            unsolvable[L] = 1, rc = TRC_OK;
    }
    if (!rc) {
        label_job j = {.ds = ds,
                       .traj = traj,
                       .step = step,
                       .plans = plans,
                       .out = out,
                       .conv = conv,
                       .rows = rows,
                       .per = (size_t)per};
        atomic_init(&j.next, 0);
        atomic_init(&j.rc, 0);
        trc_parallel_run(label_worker, &j, 0, (size_t)o->threads);
        rc = atomic_load(&j.rc);
        if (rc)
            trc_fail_prefix(rc, "dagger: expert: ");
    }
    /* the converged rows, in order */
    size_t to = 0;
    const size_t S = (size_t)ds->s, U = (size_t)T * (size_t)ds->m;
    for (size_t r = 0; !rc && r < rows; r++) {
        if (!conv[r])
            continue;
        if (to != r) {
            memcpy(out->initial_states + to * S, out->initial_states + r * S, S * sizeof(float));
            memcpy(out->target_states + to * S, out->target_states + r * S, S * sizeof(float));
            memcpy(out->control_sequences + to * U, out->control_sequences + r * U,
                   U * sizeof(float));
            out->steps_left[to] = out->steps_left[r];
        }
        to++;
    }
    *unconverged = rows - to;
    if (!rc && to == 0)
        rc = trc_fail(TRC_ENUMERIC, "dagger: the expert converged from none of the states");
    out->n = to;
    for (int L = 0; plans && L < T; L++)
        trc_expert_plan_free(plans[L]);
    free(plans);
    free(unsolvable);
    free(conv);
    free(steps);
    free(step);
    return rc;
}

int trc_dagger_collect(const trc_model *model, const trc_dataset *ds, const trc_dagger_opts *opts,
                       trc_dataset *out, trc_dagger_summary *summary) {
    if (out)
        memset(out, 0, sizeof *out);
    const trc_system *sys;
    int rc = check_inputs(model, ds, opts, &sys);
    if (rc)
        return rc;
    const size_t n = ds->n, S = (size_t)ds->s, T = (size_t)ds->T;
    loop_ctx ctx = {NULL, ds->T, opts->threads, malloc(n * sizeof(float))};
    float *applied = malloc(n * T * (size_t)ds->m * sizeof(float));
    float *traj = malloc(n * (T + 1) * S * sizeof(float));
    trc_eval_stats st = {0};
    if (!ctx.time_left || !applied || !traj)
        rc = trc_fail(TRC_ENOMEM, "dagger: out of memory for %zu problems", n);
    if (!rc)
        rc = trc_infer_plan_create(model, &ctx.plan);
    if (!rc) {
        const trc_eval_loop loop = {model_policy, &ctx, 0.0, 0};
        rc = trc_eval_closed_loop(sys, ds->settings.dt, ds->T, n, ds->initial_states,
                                  ds->target_states, &loop, 1.0, &st, applied, NULL);
    }
    if (!rc) { /* the states it visited: the applied controls replayed (the same steps) */
        trc_rollout_out ro = {.traj = traj};
        rc = trc_rollout_score(sys, ds->settings.dt, ds->T, n, ds->initial_states,
                               ds->target_states, applied, &ro);
    }
    size_t unconverged = 0;
    if (!rc)
        rc = label(sys, ds, opts, traj, out, &unconverged);
    if (!rc) {
        out->has_settings = 1;
        out->settings = ds->settings;
        out->dt = ds->dt;
        memcpy(out->system, ds->system, sizeof out->system);
    } else {
        trc_dataset_free(out);
    }
    if (!rc && summary) {
        summary->labelled = out->n;
        summary->unconverged = unconverged;
        summary->err_mean = st.err_mean;
        summary->landed_rate = NAN;
        for (int k = 0; k < st.nmetrics; k++)
            if (strcmp(st.metric_names[k], "landed") == 0)
                summary->landed_rate = st.metric_mean[k];
    }
    trc_infer_plan_free(ctx.plan);
    free(ctx.time_left);
    free(applied);
    free(traj);
    return rc;
}

int trc_dataset_concat(const trc_dataset *a, const trc_dataset *b, trc_dataset *out) {
    if (!a || !b || !out)
        return trc_fail(TRC_EINVAL, "concat: NULL dataset");
    memset(out, 0, sizeof *out);
    if (a->s != b->s || a->m != b->m || a->T != b->T)
        return trc_fail(TRC_EINVAL, "concat: shapes differ (s=%d, m=%d, T=%d vs s=%d, m=%d, T=%d)",
                        a->s, a->m, a->T, b->s, b->m, b->T);
    const size_t n = a->n + b->n, S = (size_t)a->s, U = (size_t)a->T * (size_t)a->m;
    int rc = trc_dataset_alloc(out, n, a->s, a->m, a->T);
    if (rc)
        return rc;
    const size_t X = (size_t)(a->T + 1) * S;
    if (!(a->state_trajectories && b->state_trajectories)) {
        free(out->state_trajectories);
        out->state_trajectories = NULL;
    }
    if (!(a->costs && b->costs)) {
        free(out->costs);
        out->costs = NULL;
    }
    if ((a->steps_left || b->steps_left) &&
        !(out->steps_left = malloc(n * sizeof *out->steps_left))) {
        trc_dataset_free(out);
        return trc_fail(TRC_ENOMEM, "concat: out of memory");
    }
    const trc_dataset *part[2] = {a, b};
    for (size_t p = 0, at = 0; p < 2; at += part[p]->n, p++) {
        const trc_dataset *d = part[p];
        memcpy(out->initial_states + at * S, d->initial_states, d->n * S * sizeof(float));
        memcpy(out->target_states + at * S, d->target_states, d->n * S * sizeof(float));
        memcpy(out->control_sequences + at * U, d->control_sequences, d->n * U * sizeof(float));
        if (out->state_trajectories)
            memcpy(out->state_trajectories + at * X, d->state_trajectories,
                   d->n * X * sizeof(float));
        if (out->costs)
            memcpy(out->costs + at, d->costs, d->n * sizeof(float));
        for (size_t i = 0; out->steps_left && i < d->n; i++)
            out->steps_left[at + i] = d->steps_left ? d->steps_left[i] : (float)d->T;
    }
    out->has_settings = a->has_settings;
    out->settings = a->settings;
    out->dt = a->dt;
    memcpy(out->system, a->system, sizeof out->system);
    memcpy(out->cost_label, a->cost_label, sizeof out->cost_label);
    return TRC_OK;
}
