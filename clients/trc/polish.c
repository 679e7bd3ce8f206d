/* The polish of polish.h: one plan per iteration budget, every sample started from the model's
 * answer alone. */
#include "polish.h"
#include "cli.h"

#include "trc/error.h"
#include "trc/expert.h"
#include "trc/polish.h"
#include "trc/system.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_polish_parse(const char *cmd, const char *spec, char *name, size_t size, int *iters) {
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (len == 0 || len >= size)
        return cli_error(CLI_USAGE, cmd, "--polish: expected EXPERT[:ITERS], got '%s'", spec);
    memcpy(name, spec, len);
    name[len] = '\0';
    *iters = 5;
    if (colon) {
        char *end;
        long v = strtol(colon + 1, &end, 10);
        if (end == colon + 1 || *end || v < 1 || v > TRC_POLISH_MAX_ITERS)
            return cli_error(CLI_USAGE, cmd, "--polish: ITERS must be in 1..%d, got '%s'",
                             TRC_POLISH_MAX_ITERS, colon + 1);
        *iters = (int)v;
    }
    if (trc_polish_check(name, NULL))
        return cli_error(CLI_USAGE, cmd, "--polish: %s", trc_errmsg());
    return CLI_OK;
}

typedef struct polish_run {
    double gap, iters, ms;
    size_t converged;
} polish_run;

/* Every sample from the model's guess with at most `budget` iterations; u_out may be NULL. */
static int run_budget(const char *cmd, const trc_dataset *ds, const trc_system *sys, double dt,
                      const char *expert, int budget, const float *u_model, float *u_out,
                      polish_run *r) {
    double params[TRC_EXPERT_MAX_PARAMS] = {0};
    if (ds->has_settings && strcmp(ds->settings.expert, expert) == 0) /* the data's weights */
        memcpy(params, ds->settings.expert_params, sizeof params);
    const double bound = ds->has_settings ? ds->settings.bound : sys->bound;
    trc_expert_plan *plan;
    int rc = trc_polish_plan_create(expert, sys, dt, ds->T, bound, params, budget, &plan);
    if (rc)
        return cli_lib_error(cmd, rc, 1);
    const int s = ds->s, U = ds->T * ds->m;
    double *ui = malloc(sizeof(double) * (size_t)U), *uo = malloc(sizeof(double) * (size_t)U);
    if (!ui || !uo) {
        free(ui);
        free(uo);
        trc_expert_plan_free(plan);
        return cli_error(CLI_FAIL, cmd, "out of memory");
    }
    memset(r, 0, sizeof *r);
    double x0[TRC_SYSTEM_MAX_S], xt[TRC_SYSTEM_MAX_S];
    for (size_t i = 0; i < ds->n && rc == TRC_OK; i++) {
        for (int k = 0; k < s; k++)
            x0[k] = ds->initial_states[i * s + k], xt[k] = ds->target_states[i * s + k];
        for (int k = 0; k < U; k++)
            ui[k] = u_model[i * (size_t)U + k];
        trc_polish_result c;
        if ((rc = trc_polish_run(plan, x0, xt, ui, uo, &c)))
            break;
        r->iters += c.iterations;
        r->ms += c.ms;
        r->converged += c.converged != 0;
        if (ds->costs)
            r->gap += (c.cost_after - ds->costs[i]) / fmax(fabs(ds->costs[i]), 1e-12);
        if (u_out)
            for (int k = 0; k < U; k++)
                u_out[i * (size_t)U + k] = (float)uo[k];
    }
    r->ms /= (double)ds->n;
    r->iters /= (double)ds->n;
    r->gap = ds->costs ? r->gap / (double)ds->n : NAN;
    free(ui);
    free(uo);
    trc_expert_plan_free(plan);
    return rc ? cli_lib_error(cmd, rc, 0) : CLI_OK;
}

/* The expert's own cold start on every sample, in this run (its warm starts, its max_iters, the
 * data's weights when the data were made by it): the baseline the polish is compared with. */
static int run_cold(const char *cmd, const trc_dataset *ds, const trc_system *sys, double dt,
                    const char *expert, polish_run *r) {
    double params[TRC_EXPERT_MAX_PARAMS] = {0};
    if (ds->has_settings && strcmp(ds->settings.expert, expert) == 0)
        memcpy(params, ds->settings.expert_params, sizeof params);
    const double bound = ds->has_settings ? ds->settings.bound : sys->bound;
    trc_expert_plan *plan;
    int rc = trc_expert_plan_create(expert, sys, dt, ds->T, bound, params, &plan);
    if (rc)
        return cli_lib_error(cmd, rc, 1);
    const int s = ds->s;
    double *u = malloc(sizeof(double) * (size_t)ds->T * ds->m);
    if (!u) {
        trc_expert_plan_free(plan);
        return cli_error(CLI_FAIL, cmd, "out of memory");
    }
    memset(r, 0, sizeof *r);
    double x0[TRC_SYSTEM_MAX_S], xt[TRC_SYSTEM_MAX_S];
    for (size_t i = 0; i < ds->n && rc == TRC_OK; i++) {
        for (int k = 0; k < s; k++)
            x0[k] = ds->initial_states[i * s + k], xt[k] = ds->target_states[i * s + k];
        trc_expert_cost c;
        if ((rc = trc_expert_solve(plan, x0, xt, u, &c)))
            break;
        r->iters += c.iterations;
        r->ms += c.solve_ms;
        r->converged += c.converged != 0;
    }
    r->iters /= (double)ds->n;
    r->ms /= (double)ds->n;
    free(u);
    trc_expert_plan_free(plan);
    return rc ? cli_lib_error(cmd, rc, 0) : CLI_OK;
}

int cli_polish(const char *cmd, const trc_dataset *ds, const trc_system *sys, double dt,
               const char *expert, int iters, const float *u_model, float **u_out,
               char **row_json) {
    *u_out = NULL;
    *row_json = NULL;
    float *u = malloc(sizeof(float) * ds->n * (size_t)ds->T * ds->m);
    if (!u)
        return cli_error(CLI_FAIL, cmd, "out of memory");
    const int budgets[3] = {1, 2, 5};
    polish_run at[3], full, cold;
    int rc = run_budget(cmd, ds, sys, dt, expert, iters, u_model, u, &full);
    for (int b = 0; b < 3 && rc == CLI_OK; b++)
        rc = run_budget(cmd, ds, sys, dt, expert, budgets[b], u_model, NULL, &at[b]);
    if (rc == CLI_OK)
        rc = run_cold(cmd, ds, sys, dt, expert, &cold);
    if (rc) {
        free(u);
        return rc;
    }
    double cold_it = NAN, cold_ms = NAN;
    if (ds->solve_stats && ds->solve_ms) {
        cold_it = cold_ms = 0;
        for (size_t i = 0; i < ds->n; i++)
            cold_it += ds->solve_stats[2 * i], cold_ms += ds->solve_ms[i];
        cold_it /= (double)ds->n, cold_ms /= (double)ds->n;
    }
    printf("polish %s:%d from the model's guess: %.2f iterations, %.4f ms per problem, %zu of %zu "
           "converged (cold start, as recorded in the data: %.2f iterations, %.4f ms); mean cost "
           "gap to the data's costs after 1, 2, 5, %d iterations: %.3g, %.3g, %.3g, %.3g\n",
           expert, iters, full.iters, full.ms, full.converged, ds->n, cold_it, cold_ms, iters,
           at[0].gap, at[1].gap, at[2].gap, full.gap);
    /* side by side in this run: the same solver, from the model's guess and from its own starts
     * (iterations summed over the warm starts it runs) */
    printf("polish %s side by side in this run: cold start %.2f iterations, %.4f ms per problem, "
           "%zu of %zu converged; from the model's guess %.2f iterations, %.4f ms: %.2fx fewer "
           "iterations, %.2fx less time\n",
           expert, cold.iters, cold.ms, cold.converged, ds->n, full.iters, full.ms,
           full.iters > 0 ? cold.iters / full.iters : NAN, full.ms > 0 ? cold.ms / full.ms : NAN);
    char buf[768];
    snprintf(buf, sizeof buf,
             "{\"polish\": \"%s\", \"max_iters\": %d, \"iterations_mean\": %.6g, "
             "\"ms_per_problem\": %.6g, \"converged\": %zu, \"cold_iterations_mean\": %.6g, "
             "\"cold_ms_per_problem\": %.6g, \"cost_gap_after_1\": %.6g, "
             "\"cost_gap_after_2\": %.6g, \"cost_gap_after_5\": %.6g, \"cost_gap\": %.6g, "
             "\"cold_run_iterations_mean\": %.6g, \"cold_run_ms_per_problem\": %.6g, "
             "\"cold_run_converged\": %zu}",
             expert, iters, full.iters, full.ms, full.converged, isnan(cold_it) ? -1.0 : cold_it,
             isnan(cold_ms) ? -1.0 : cold_ms, isnan(at[0].gap) ? 0.0 : at[0].gap,
             isnan(at[1].gap) ? 0.0 : at[1].gap, isnan(at[2].gap) ? 0.0 : at[2].gap,
             isnan(full.gap) ? 0.0 : full.gap, cold.iters, cold.ms, cold.converged);
    *row_json = strdup(buf);
    if (!*row_json) {
        free(u);
        return cli_error(CLI_FAIL, cmd, "out of memory");
    }
    *u_out = u;
    return CLI_OK;
}
