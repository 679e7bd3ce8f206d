/* `trc predict`: the controls a trained model gives. For one initial/target pair it prints JSON
 * (controls [T][m], the simulated final state, its error and the control cost; every iterate
 * and the trajectory on request); for a dataset it writes the predictions as a dataset file
 * (initial and target states, control_sequences, simulated trajectories, costs), so that
 * `trc eval --data cases.npz --controls preds.npz` evaluates them. */
#include "cli.h"
#include "commands.h"
#include "model_run.h"

#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/rollout.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *CMD = "predict";

/* [rows][cols] of floats as nested JSON arrays. */
static json_t *matrix(const float *x, int rows, int cols) {
    json_t *a = json_array();
    for (int r = 0; a && r < rows; r++) {
        json_t *row = json_array();
        for (int c = 0; c < cols; c++)
            json_array_append_new(row, json_real(x[r * cols + c]));
        json_array_append_new(a, row);
    }
    return a;
}

static json_t *vector_d(const double *x, int n) {
    json_t *a = json_array();
    for (int i = 0; a && i < n; i++)
        json_array_append_new(a, json_real(x[i]));
    return a;
}

/* One key per line, each value compact: readable, and still one JSON document. */
static int print_object(const json_t *j) {
    const char *key;
    json_t *v;
    size_t i = 0, n = json_object_size(j);
    printf("{\n");
    json_object_foreach((json_t *)j, key, v) {
        char *text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(9));
        if (!text)
            return -1;
        printf("  \"%s\": %s%s\n", key, text, ++i < n ? "," : "");
        free(text);
    }
    printf("}\n");
    return 0;
}

/* One pair; steps_left L (0: the whole horizon T) plans and simulates the last L steps. */
static int predict_one(const trc_model *model, const trc_system *sys, double dt,
                       const cli_list *state, const cli_list *target, int steps_left,
                       int iterations, int trajectory, trc_precision precision) {
    const trc_model_config *c = &model->cfg;
    const int S = c->s, U = c->T * c->m, L = steps_left ? steps_left : c->T;
    if (state->n != S || target->n != S)
        return cli_error(CLI_USAGE, CMD, "--state and --target need %d values each (got %d and %d)",
                         S, state->n, target->n);
    if (L > c->T)
        return cli_error(CLI_USAGE, CMD, "--steps-left must be in 1..%d (the model's horizon)",
                         c->T);
    const float time_left = (float)L / (float)c->T;
    if (trc_model_check_time_left(c, 1, &time_left))
        return cli_error(CLI_USAGE, CMD,
                         "--steps-left %d: the model was not trained with tails (trc train "
                         "--tails); it plans a whole horizon of %d steps",
                         L, c->T);
    float x0[CLI_LIST_MAX], tg[CLI_LIST_MAX];
    for (int i = 0; i < S; i++) {
        x0[i] = (float)state->v[i];
        tg[i] = (float)target->v[i];
    }
    float *u = malloc((size_t)U * sizeof *u);
    float *its = iterations ? malloc((size_t)(c->K + 1) * (size_t)U * sizeof *its) : NULL;
    double *traj = malloc((size_t)(c->T + 1) * (size_t)S * sizeof *traj);
    int rc = CLI_OK;
    if (!u || !traj || (iterations && !its)) {
        rc = cli_error(CLI_FAIL, CMD, "out of memory");
        goto done;
    }
    int lrc;
    if (precision == TRC_PRECISION_FP32)
        lrc = trc_model_infer_mt(model, 1, x0, tg, &time_left, u, its, 1);
    else { /* an explicit --precision: through a plan of those weights */
        trc_infer_plan *plan = NULL;
        lrc = trc_infer_plan_create_precision(model, precision, &plan);
        if (!lrc)
            lrc = trc_infer_plan_run(plan, 1, x0, tg, &time_left, u, its, 1);
        trc_infer_plan_free(plan);
    }
    if (lrc) {
        rc = cli_lib_error(CMD, lrc, 0);
        goto done;
    }
    double cost = 0.0, err = 0.0;
    trc_rollout_out ro = {.traj_d = traj, .final_error = &err, .cost = &cost};
    if (trc_rollout_score(sys, dt, L, 1, x0, tg, u, &ro) != TRC_OK) {
        rc = cli_error(CLI_FAIL, CMD, "the simulated trajectory is not finite");
        goto done;
    }
    const double *xf = traj + (size_t)L * (size_t)S;
    json_t *j = json_pack("{s:o, s:o, s:f, s:f, s:s, s:f, s:o}", "controls", matrix(u, L, c->m),
                          "final_state", vector_d(xf, S), "final_error", err, "cost", cost,
                          "system", sys->name, "dt", dt, "model", cli_model_json(model));
    if (j && precision != TRC_PRECISION_FP32)
        json_object_set_new(json_object_get(j, "model"), "precision",
                            json_string(trc_precision_name(precision)));
    if (j && iterations) {
        json_t *a = json_array();
        for (int k = 0; k <= c->K; k++)
            json_array_append_new(a, matrix(its + (size_t)k * (size_t)U, L, c->m));
        json_object_set_new(j, "iterations", a);
    }
    if (j && trajectory) {
        json_t *a = json_array();
        for (int t = 0; t <= L; t++)
            json_array_append_new(a, vector_d(traj + (size_t)t * (size_t)S, S));
        json_object_set_new(j, "trajectory", a);
    }
    if (!j || print_object(j) != 0)
        rc = cli_error(CLI_FAIL, CMD, "out of memory");
    json_decref(j);
done:
    free(u);
    free(its);
    free(traj);
    return rc;
}

static int predict_data(const trc_model *model, int threads, trc_precision precision,
                        const trc_system *sys, double dt, const char *data, const char *out) {
    trc_dataset ds, pred;
    memset(&pred, 0, sizeof pred);
    int lrc = trc_dataset_load(data, &ds);
    if (lrc)
        return cli_lib_error(CMD, lrc, 0);
    int rc = cli_model_fits(CMD, model, &ds, data);
    const size_t S = (size_t)ds.s;
    if (!rc && (lrc = trc_dataset_alloc(&pred, ds.n, ds.s, ds.m, ds.T)) != 0)
        rc = cli_lib_error(CMD, lrc, 0);
    double seconds = 0;
    if (!rc)
        rc = cli_model_predict_precision(CMD, model, &ds, threads, precision,
                                         pred.control_sequences, &seconds);
    if (!rc) {
        memcpy(pred.initial_states, ds.initial_states, ds.n * S * sizeof(float));
        memcpy(pred.target_states, ds.target_states, ds.n * S * sizeof(float));
        double *cost = malloc(ds.n * sizeof *cost);
        trc_rollout_out ro = {.traj = pred.state_trajectories, .cost = cost};
        lrc = cost ? trc_rollout_score(sys, dt, ds.T, ds.n, pred.initial_states, pred.target_states,
                                       pred.control_sequences, &ro)
                   : trc_fail(TRC_ENOMEM, "out of memory");
        for (size_t i = 0; lrc == TRC_OK && i < ds.n; i++)
            pred.costs[i] = (float)cost[i];
        free(cost);
        if (lrc)
            rc = cli_lib_error(CMD, lrc, 0);
    }
    if (!rc) {
        /* The predictions keep the data's settings (system, dt, box) so that eval simulates
         * them the same way; their controls come from the model, not an expert. */
        if (ds.has_settings) {
            pred.has_settings = 1;
            pred.settings = ds.settings;
            snprintf(pred.settings.expert, sizeof pred.settings.expert, "model");
        }
        /* what they were simulated with, recorded even for a foreign file without settings */
        pred.dt = dt;
        snprintf(pred.system, sizeof pred.system, "%s", sys->name);
        snprintf(pred.cost_label, sizeof pred.cost_label, "sum_u2");
        if ((lrc = trc_dataset_save(out, &pred)) != 0)
            rc = cli_lib_error(CMD, lrc, 0);
    }
    if (!rc) {
        json_t *j = json_pack("{s:s, s:s, s:I, s:s, s:f, s:o, s:f, s:f}", "data", data, "out", out,
                              "n", (json_int_t)ds.n, "system", sys->name, "dt", dt, "model",
                              cli_model_json(model), "seconds", seconds, "samples_per_sec",
                              seconds > 0 ? (double)ds.n / seconds : 0.0);
        char *text = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
        json_decref(j);
        if (text)
            printf("%s\n", text);
        free(text);
    }
    trc_dataset_free(&pred);
    trc_dataset_free(&ds);
    return rc;
}

int cmd_predict(int argc, char **argv) {
    cli_model_flags mf = {0};
    cli_list state = {.n = 0}, target = {.n = 0};
    int iterations = 0, trajectory = 0, steps_left = 0;
    const char *data = NULL, *out = NULL, *system = NULL, *precision_name = "fp32";
    double dt = 0;
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        CLI_MODEL_THREADS_OPT(mf),
        CLI_OPT("--state", CLI_LIST, &state, "X,..", "initial state, e.g. 1.0,0.5"),
        CLI_OPT("--target", CLI_LIST, &target, "X,..", "target state, e.g. 0,0"),
        CLI_OPT("--iterations", CLI_BOOL, &iterations, "",
                "also print every iterate (after the initial generator and each outer cycle)"),
        CLI_OPT("--trajectory", CLI_BOOL, &trajectory, "", "also print the simulated trajectory"),
        CLI_RANGE("--steps-left", CLI_INT, &steps_left, "N",
                  "steps of the horizon left (a model trained with --tails): plan and simulate "
                  "those only (default: the whole horizon)",
                  1, 100000, 0),
        CLI_OPT("--data", CLI_STR, &data, "FILE",
                "predict every initial/target pair of this dataset (.npz) instead"),
        CLI_OPT("--out", CLI_STR, &out, "FILE", "with --data: where the predictions go (.npz)"),
        CLI_OPT("--system", CLI_STR, &system, "NAME",
                "simulate with this system (default: the checkpoint's, else double_integrator)"),
        CLI_RANGE("--dt", CLI_DOUBLE, &dt, "DT", "time step (default: the checkpoint's)", 0,
                  HUGE_VAL, 1),
        CLI_OPT("--precision", CLI_STR, &precision_name, "P",
                "weights: fp32 (default) or bf16 (rounded to bfloat16; a CPU with AVX512_BF16, "
                "single architecture; controls differ by ~1e-2 of the bound)"),
    };
    const size_t nopts = sizeof opts / sizeof opts[0];
    int rc = cli_parse(CMD, argc, argv, opts, nopts);
    if (rc == CLI_HELP) {
        cli_print_help(
            stdout, CMD, "--checkpoint FILE (--state X,.. --target X,.. | --data FILE --out FILE)",
            "Runs a trained model. One pair: prints JSON with controls [T][m], the "
            "simulated final_state,\nfinal_error (L2), cost (sum of u^2) and the model (arch, "
            "size, K, n, bound, feedback, normalised, time_left).\nA dataset: "
            "writes control_sequences (with the simulated trajectories and costs) for every "
            "pair,\nfor `trc eval --data FILE --controls OUT`, and prints one JSON line (the "
            "same model object).",
            opts, nopts);
        return CLI_OK;
    }
    if (rc)
        return rc;
    if (!mf.checkpoint)
        return cli_error(CLI_USAGE, CMD, "--checkpoint FILE is required");
    int one = cli_find(opts, nopts, "--state")->seen || cli_find(opts, nopts, "--target")->seen;
    if (data && one)
        return cli_error(CLI_USAGE, CMD, "give either --state/--target or --data, not both");
    if (data && !out)
        return cli_error(CLI_USAGE, CMD, "--data needs --out FILE for the predictions");
    if (!data && out)
        return cli_error(CLI_USAGE, CMD, "--out needs --data FILE");
    if (data && (iterations || trajectory || steps_left))
        return cli_error(CLI_USAGE, CMD,
                         "--iterations, --trajectory and --steps-left apply to one pair only");
    if (!data && cli_find(opts, nopts, "--threads")->seen)
        return cli_error(CLI_USAGE, CMD,
                         "--threads applies to --data (one pair runs on one thread)");
    if (!data &&
        (!cli_find(opts, nopts, "--state")->seen || !cli_find(opts, nopts, "--target")->seen))
        return cli_error(CLI_USAGE, CMD, "--state and --target are required (or --data FILE)");

    trc_precision precision;
    const char *why;
    if (trc_precision_parse(precision_name, &precision))
        return cli_error(CLI_USAGE, CMD, "--precision: %s", trc_errmsg());
    if (!trc_precision_available(precision, &why))
        return cli_error(CLI_FAIL, CMD, "--precision %s: %s", precision_name, why);

    trc_model model;
    if ((rc = cli_model_load(CMD, &mf, &model)) != 0)
        return rc;
    const trc_system *sys;
    rc = cli_model_system(CMD, &model, system, dt, &sys, &dt);
    if (rc == CLI_OK) { /* what a model with trajectory feedback simulates, too */
        snprintf(model.cfg.system, sizeof model.cfg.system, "%s", sys->name);
        model.cfg.dt = dt;
    }
    if (!rc)
        rc = data ? predict_data(&model, mf.threads, precision, sys, dt, data, out)
                  : predict_one(&model, sys, dt, &state, &target, steps_left, iterations,
                                trajectory, precision);
    trc_model_free(&model);
    return rc;
}
