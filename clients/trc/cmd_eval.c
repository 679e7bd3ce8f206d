/* `trc eval` and `trc compare`: simulate control sequences from a dataset's initial states and
 * report final-state errors, control cost and success rate, as a table on stdout and optionally
 * a JSON file. compare builds a list of rows (name, controls): random N(0, sigma^2) controls and
 * the dataset's expert controls; another source of controls (a model) is one more row. */
#include "cli.h"
#include "commands.h"
#include "measure.h"
#include "model_run.h"
#include "plots.h"
#include "polish.h"

#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/eval.h"
#include "trc/npz.h"
#include "trc/system.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 8

/* The data a command evaluates against, with the system and time step it is simulated with. */
typedef struct eval_data {
    trc_dataset ds;
    const trc_system *sys;
    double dt;
} eval_data;

static int load_data(const char *cmd, const char *path, const char *system, double dt,
                     eval_data *ed) {
    memset(ed, 0, sizeof *ed);
    int rc = trc_dataset_load(path, &ed->ds);
    if (rc)
        return cli_lib_error(cmd, rc, 0);
    rc = trc_eval_resolve(&ed->ds, system, dt, &ed->sys, &ed->dt);
    if (rc) {
        trc_dataset_free(&ed->ds);
        return cli_lib_error(cmd, rc, 1);
    }
    return CLI_OK;
}

/* The flags eval and compare share: the success threshold, and the system and time step the
 * controls are simulated with. */
#define EVAL_SIM_OPTS(threshold, system, dt)                                                       \
    CLI_RANGE("--threshold", CLI_DOUBLE, &(threshold), "X",                                        \
              "success when the final error is below X (default: the system's)", 0, HUGE_VAL, 1),  \
        CLI_OPT("--system", CLI_STR, &(system), "NAME",                                            \
                "simulate with this system (default: the dataset's, else double_integrator)"),     \
        CLI_RANGE("--dt", CLI_DOUBLE, &(dt), "DT", "time step (default: the dataset's)", 0,        \
                  HUGE_VAL, 1)

/* The report flags eval and compare share: figures, and how many problems are timed. */
typedef struct report_flags {
    const char *plot;
    int timing;
} report_flags;

#define EVAL_REPORT_OPTS(rf)                                                                       \
    CLI_OPT("--plot", CLI_STR, &(rf).plot, "DIR",                                                  \
            "also write SVG figures there: trajectories, final-error histogram, the model's "      \
            "refinement, phase portrait (2 states)"),                                              \
        CLI_RANGE("--timing-samples", CLI_INT, &(rf).timing, "N",                                  \
                  "problems timed one per call for the speed report (default 200; 0: none)", 0,    \
                  1000000, 0)

/* The speed/memory measurement of a model row: merged into its JSON text (*row_json). */
static int measure_model(const char *cmd, const cli_model_flags *mf, const trc_dataset *ds,
                         const report_flags *rf, model_measure *mm, char **row_json) {
    int rc = cli_model_measure(cmd, mf, ds, (size_t)rf->timing, rf->plot != NULL, mm);
    if (rc)
        return rc;
    char *j = cli_model_measure_json(mm);
    if (!j || cli_measure_merge_json(row_json, NULL, j)) {
        free(j);
        return cli_error(CLI_FAIL, cmd, "out of memory");
    }
    free(j);
    return CLI_OK;
}

/* The closed-loop flags eval and compare share. */
typedef struct loop_flags {
    int closed_loop;
    double noise;
    uint64_t seed;
} loop_flags;

#define EVAL_LOOP_OPTS(lf)                                                                         \
    CLI_OPT("--closed-loop", CLI_BOOL, &(lf).closed_loop, NULL,                                    \
            "also run the model in closed loop: its sequence from the current state at every "     \
            "step, the first control applied"),                                                    \
        CLI_RANGE("--process-noise", CLI_DOUBLE, &(lf).noise, "SIGMA",                             \
                  "add N(0, SIGMA^2) to every state component after every step, to every row "     \
                  "(default 0)",                                                                   \
                  0, 1e6, 0),                                                                      \
        CLI_OPT("--noise-seed", CLI_U64, &(lf).seed, "S", "seed of the process noise (default 7)")

/* Parses the command's flags, printing its help for -h/--help, and requires --data (the
 * variable `data` points to). CLI_OK to go on, CLI_HELP once the help is printed, else the exit
 * status. */
static int parse_flags(const char *cmd, int argc, char **argv, cli_opt *opts, size_t nopts,
                       const char *synopsis, const char *about, const char *const *data) {
    int rc = cli_parse(cmd, argc, argv, opts, nopts);
    if (rc == CLI_HELP)
        cli_print_help(stdout, cmd, synopsis, about, opts, nopts);
    if (rc)
        return rc;
    if (!*data)
        return cli_error(CLI_USAGE, cmd, "--data FILE is required");
    return CLI_OK;
}

/* control_sequences of another file, shaped like the data's: [n, T, m], finite floats. */
static int load_controls(const char *cmd, const char *path, const trc_dataset *ds, float **out) {
    *out = NULL;
    trc_npz *z;
    trc_npy_array a;
    int rc = trc_npz_open(path, &z);
    if (rc)
        return cli_lib_error(cmd, rc, 0);
    rc = trc_npz_read(z, "control_sequences", &a);
    trc_npz_close(z);
    if (rc)
        return cli_lib_error(cmd, rc, 0);
    char sh[160];
    trc_npy_shape_str(&a, sh, sizeof sh);
    if (a.dtype != TRC_NPY_F32 && a.dtype != TRC_NPY_F64) {
        char dt[32];
        trc_npy_dtype_str(&a, dt, sizeof dt);
        trc_npy_free(&a);
        return cli_error(CLI_FAIL, cmd,
                         "%s: key 'control_sequences': dtype %s not supported (float32 or "
                         "float64 expected)",
                         path, dt);
    }
    if (a.ndim != 3 || (size_t)a.shape[0] != ds->n || a.shape[1] != ds->T || a.shape[2] != ds->m) {
        trc_npy_free(&a);
        return cli_error(CLI_FAIL, cmd,
                         "%s: key 'control_sequences': expected shape (%zu, %d, %d) like the "
                         "data, got %s",
                         path, ds->n, ds->T, ds->m, sh);
    }
    float *u = malloc(a.numel * sizeof *u);
    if (!u) {
        trc_npy_free(&a);
        return cli_error(CLI_FAIL, cmd, "out of memory");
    }
    trc_npy_to_f32(&a, u);
    for (size_t i = 0; i < a.numel; i++)
        if (!isfinite(u[i])) {
            trc_npy_free(&a);
            free(u);
            return cli_error(CLI_FAIL, cmd,
                             "%s: key 'control_sequences': non-finite value at flat index %zu",
                             path, i);
        }
    trc_npy_free(&a);
    *out = u;
    return CLI_OK;
}

static void print_pct(double v) {
    if (isfinite(v) && fabs(v) < 1e3)
        printf(" %+13.1f%%", 100.0 * v);
    else if (isfinite(v))
        printf(" %+13.3g%%", 100.0 * v);
    else
        printf(" %14s", "n/a");
}

/* The human table: one column per row, then the relative differences. */
static void print_table(const char *title, const trc_eval_row *rows, size_t n,
                        const char *reference, const char *baseline) {
    printf("%s\n\n%-28s", title, "");
    for (size_t i = 0; i < n; i++)
        printf(" %14s", rows[i].name);
    printf("\n");
#define ROW(label, fmt, expr)                                                                      \
    do {                                                                                           \
        printf("%-28s", label);                                                                    \
        for (size_t i = 0; i < n; i++)                                                             \
            printf(" " fmt, (expr));                                                               \
        printf("\n");                                                                              \
    } while (0)
    ROW("final error mean", "%14.6g", rows[i].stats.err_mean);
    ROW("final error std", "%14.6g", rows[i].stats.err_std);
    ROW("final error min", "%14.6g", rows[i].stats.err_min);
    ROW("final error max", "%14.6g", rows[i].stats.err_max);
    for (int k = 0; k < rows[0].stats.s; k++) {
        char label[48];
        snprintf(label, sizeof label, "mean |error| of x[%d]", k);
        ROW(label, "%14.6g", rows[i].stats.comp_mean_abs[k]);
    }
    ROW("control cost mean (sum u^2)", "%14.6g", rows[i].stats.cost_mean);
    char label[48];
    snprintf(label, sizeof label, "success rate (error < %g)", rows[0].stats.threshold);
    ROW(label, "%13.2f%%", 100.0 * rows[i].stats.success_rate);
    for (int k = 0; k < rows[0].stats.nmetrics; k++) { /* the system's task metrics */
        const char *name = rows[0].stats.metric_names[k];
        int rate = strcmp(name, "landed") == 0;
        snprintf(label, sizeof label, "%s%s", name, rate ? " (rate)" : " (mean)");
        if (rate)
            ROW(label, "%13.2f%%", 100.0 * rows[i].stats.metric_mean[k]);
        else
            ROW(label, "%14.6g", rows[i].stats.metric_mean[k]);
    }
#undef ROW
    const trc_eval_row *ref = NULL, *base = NULL;
    for (size_t i = 0; i < n; i++) {
        if (reference && strcmp(rows[i].name, reference) == 0)
            ref = &rows[i];
        if (baseline && strcmp(rows[i].name, baseline) == 0)
            base = &rows[i];
    }
    if (ref && n > 1) {
        printf("\nrelative to %s:\n", ref->name);
        for (size_t i = 0; i < n; i++) {
            if (&rows[i] == ref)
                continue;
            printf("  %-14s final error", rows[i].name);
            print_pct(trc_eval_rel(rows[i].stats.err_mean, ref->stats.err_mean));
            printf("   cost");
            print_pct(trc_eval_rel(rows[i].stats.cost_mean, ref->stats.cost_mean));
            printf("   success %+.1f points\n",
                   100.0 * (rows[i].stats.success_rate - ref->stats.success_rate));
            for (int k = 0; k < rows[i].stats.nmetrics && k < ref->stats.nmetrics; k++) {
                printf("  %-14s %-20s", "", rows[i].stats.metric_names[k]);
                print_pct(trc_eval_rel(rows[i].stats.metric_mean[k], ref->stats.metric_mean[k]));
                printf("\n");
            }
        }
    }
    if (base && n > 1) {
        printf("error reduction vs %s:\n", base->name);
        for (size_t i = 0; i < n; i++)
            if (&rows[i] != base) {
                printf("  %-14s", rows[i].name);
                print_pct(-trc_eval_rel(rows[i].stats.err_mean, base->stats.err_mean));
                printf("\n");
            }
    }
}

/* Controls to evaluate under a name; `owned` ones are freed with the list. A closed-loop row
 * comes with its stats already measured (u NULL). */
typedef struct control_row {
    const char *name;
    const float *u;
    float *owned;
    const char *extra_json;
    const trc_eval_stats *stats;
} control_row;

/* An open-loop sequence as a closed-loop policy (it ignores the state): step t's control. */
typedef struct replay {
    const float *u;
    int T, m;
} replay;

static int replay_policy(void *user, size_t n, const float *x, const float *target, int steps_left,
                         float *u) {
    (void)x;
    (void)target;
    const replay *r = user;
    const size_t U = (size_t)r->T * r->m, t = (size_t)(r->T - steps_left);
    for (size_t i = 0; i < n; i++) {
        memset(u + i * U, 0, U * sizeof *u);
        memcpy(u + i * U, r->u + i * U + t * r->m, (size_t)r->m * sizeof *u);
    }
    return TRC_OK;
}

static void free_rows(control_row *rows, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(rows[i].owned);
}

/* The figures of --plot DIR from the rows that have open-loop controls. */
static int write_plots(const char *cmd, const char *dir, const control_row *rows, size_t n,
                       const trc_system *sys, double dt, double threshold, const trc_dataset *ds,
                       const model_measure *mm) {
    plot_series series[MAX_ROWS + 1];
    size_t k = 0;
    for (size_t i = 0; i < n && k < MAX_ROWS; i++)
        if (rows[i].u)
            series[k++] = (plot_series){rows[i].name, rows[i].u};
    const plot_input in = {
        cmd, sys, dt, threshold, ds, series, k, mm ? mm->iterates : NULL, mm ? mm->K : 0};
    return cli_plots_write(cmd, dir, &in);
}

/* Evaluates every row, writes the JSON report (if asked) and prints the table. */
static int run_rows(const char *cmd, const eval_data *ed, const control_row *rows, size_t n,
                    trc_eval_context *ctx, const char *json_path, const char *reference,
                    const char *baseline, const loop_flags *lf) {
    trc_eval_row out[MAX_ROWS];
    if (!(ctx->threshold > 0.0))
        ctx->threshold = ed->sys->success_threshold;
    for (size_t i = 0; i < n; i++) {
        out[i].name = rows[i].name;
        out[i].extra_json = rows[i].extra_json;
        int rc = TRC_OK;
        if (rows[i].stats) {
            out[i].stats = *rows[i].stats;
        } else if (lf->noise > 0) { /* open loop under the same noise as the closed loop */
            replay r = {rows[i].u, ed->ds.T, ed->ds.m};
            const trc_eval_loop loop = {replay_policy, &r, lf->noise, lf->seed};
            rc = trc_eval_closed_loop(ed->sys, ed->dt, ed->ds.T, ed->ds.n, ed->ds.initial_states,
                                      ed->ds.target_states, &loop, ctx->threshold, &out[i].stats,
                                      NULL, NULL);
        } else {
            rc = trc_eval_controls(ed->sys, ed->dt, ed->ds.T, ed->ds.n, ed->ds.initial_states,
                                   ed->ds.target_states, rows[i].u, ctx->threshold, &out[i].stats,
                                   NULL);
        }
        if (rc)
            return cli_error(CLI_FAIL, cmd, "%s: %s", rows[i].name, trc_errmsg());
    }
    ctx->system = ed->sys->name;
    ctx->dt = ed->dt;
    ctx->T = ed->ds.T;
    ctx->n = ed->ds.n;
    if (json_path) {
        int rc = trc_eval_report_json(json_path, ctx, out, n, reference, baseline);
        if (rc)
            return cli_lib_error(cmd, rc, 0);
    }
    char title[1400];
    char noise[64] = "";
    if (lf->noise > 0)
        snprintf(noise, sizeof noise, ", process noise %g (seed %llu)", lf->noise,
                 (unsigned long long)lf->seed);
    else if (ed->ds.cost_converted_from[0]) /* the original's costs, read in ours */
        snprintf(noise, sizeof noise, ", its costs sum(u^2)*dt read as sum(u^2)");
    snprintf(title, sizeof title, "%s: %s (%zu samples, %s, T=%d, dt=%g%s)%s%s", cmd,
             ctx->data_path, ed->ds.n, ed->sys->name, ed->ds.T, ed->dt, noise,
             ctx->controls_path ? ", controls from " : "",
             ctx->controls_path ? ctx->controls_path : "");
    print_table(title, out, n, reference, baseline);
    if (json_path)
        printf("\nreport: %s\n", json_path);
    return CLI_OK;
}

int cmd_eval(int argc, char **argv) {
    const char *cmd = "eval", *data = NULL, *controls = NULL, *json = NULL, *system = NULL;
    double threshold = 0, dt = 0; /* 0: the system's success threshold */
    cli_model_flags mf = {0};
    loop_flags lf = {0, 0.0, 7};
    report_flags rf = {NULL, 200};
    model_measure mm = {0};
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf), /* evaluate a model's predictions */
        CLI_MODEL_THREADS_OPT(mf),
        EVAL_LOOP_OPTS(lf),
        EVAL_REPORT_OPTS(rf),
        CLI_OPT("--data", CLI_STR, &data, "FILE", "dataset .npz (required)"),
        CLI_OPT("--controls", CLI_STR, &controls, "FILE",
                "evaluate control_sequences of this .npz instead of the dataset's"),
        CLI_OPT("--json", CLI_STR, &json, "FILE", "also write the report as JSON"),
        EVAL_SIM_OPTS(threshold, system, dt),
    };
    int rc =
        parse_flags(cmd, argc, argv, opts, sizeof opts / sizeof opts[0], "--data FILE [options]",
                    "Simulates control sequences from the dataset's initial states and "
                    "reports the final-state error\n(L2 over the whole state), per-component "
                    "errors, control cost and success rate.",
                    &data);
    if (rc)
        return rc == CLI_HELP ? CLI_OK : rc;
    if (controls && mf.checkpoint)
        return cli_error(CLI_USAGE, cmd, "give --controls or --checkpoint, not both");
    if ((rc = cli_model_flags_need_checkpoint(cmd, opts, sizeof opts / sizeof opts[0])))
        return rc;
    if (lf.closed_loop && !mf.checkpoint)
        return cli_error(CLI_USAGE, cmd,
                         "--closed-loop needs --checkpoint (the model asked at "
                         "every step)");
    eval_data ed;
    if ((rc = load_data(cmd, data, system, dt, &ed)))
        return rc;
    if (!(threshold > 0))
        threshold = ed.sys->success_threshold;
    control_row rows[2] = {
        {controls ? "controls" : "dataset", ed.ds.control_sequences, NULL, NULL, NULL}};
    control_row *row = &rows[0];
    size_t nrows = 1;
    char *model_json = NULL, *loop_json = NULL;
    trc_eval_stats loop_stats;
    if (mf.checkpoint) {
        row->name = "model";
        rc = cli_model_controls(cmd, &mf, &ed.ds, data, &row->owned, &model_json);
        if (!rc)
            rc = measure_model(cmd, &mf, &ed.ds, &rf, &mm, &model_json);
        row->extra_json = model_json;
    }
    if (!rc && lf.closed_loop) {
        rc = cli_model_closed_loop(cmd, &mf, &ed.ds, data, ed.sys, ed.dt, threshold, lf.noise,
                                   lf.seed, &loop_stats, &loop_json);
        rows[nrows++] = (control_row){"closed_loop", NULL, NULL, loop_json, &loop_stats};
    }
    if (!rc && controls)
        rc = load_controls(cmd, controls, &ed.ds, &row->owned);
    if (rc) {
        free(mm.iterates);
        free_rows(rows, nrows);
        free(model_json);
        free(loop_json);
        trc_dataset_free(&ed.ds);
        return rc;
    }
    if (row->owned)
        row->u = row->owned;
    trc_eval_context ctx = {
        .command = cmd, .data_path = data, .controls_path = controls, .threshold = threshold};
    if (mf.checkpoint)
        ctx.controls_path = mf.checkpoint;
    rc = run_rows(cmd, &ed, rows, nrows, &ctx, json, NULL, NULL, &lf);
    if (!rc && mf.checkpoint)
        cli_measure_print(&mm, NULL);
    if (!rc && rf.plot) { /* the evaluated controls against the dataset's (the expert's) */
        control_row prow[2] = {{row == &rows[0] && !row->owned ? "dataset" : "expert",
                                ed.ds.control_sequences, NULL, NULL, NULL},
                               *row};
        rc = write_plots(cmd, rf.plot, prow, row->owned ? 2 : 1, ed.sys, ed.dt, threshold, &ed.ds,
                         mf.checkpoint ? &mm : NULL);
    }
    free(mm.iterates);
    free_rows(rows, nrows);
    free(model_json);
    free(loop_json);
    trc_dataset_free(&ed.ds);
    return rc;
}

int cmd_compare(int argc, char **argv) {
    const char *cmd = "compare", *data = NULL, *json = NULL, *system = NULL;
    double threshold = 0, dt = 0, sigma = 2.0; /* 0: the system's success threshold */
    uint64_t seed = 42;
    const char *polish = NULL;
    char polish_expert[32] = "";
    int polish_iters = 5;
    cli_model_flags mf = {0};
    loop_flags lf = {0, 0.0, 7};
    report_flags rf = {NULL, 200};
    model_measure mm = {0};
    expert_measure em = {0};
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf), /* adds a model row */
        CLI_MODEL_THREADS_OPT(mf),
        EVAL_LOOP_OPTS(lf),
        EVAL_REPORT_OPTS(rf),
        CLI_OPT("--data", CLI_STR, &data, "FILE", "dataset .npz with expert controls (required)"),
        CLI_OPT("--json", CLI_STR, &json, "FILE", "also write the comparison as JSON"),
        CLI_OPT("--seed", CLI_U64, &seed, "S", "seed of the random controls (default 42)"),
        CLI_RANGE("--sigma", CLI_DOUBLE, &sigma, "X",
                  "standard deviation of the random controls (default 2)", 0, 1e6, 0),
        CLI_OPT("--polish", CLI_STR, &polish, "EXPERT[:ITERS]",
                "add a row: the model's sequences polished by the expert (ilqr), at most ITERS "
                "iterations (default 5)"),
        EVAL_SIM_OPTS(threshold, system, dt),
    };
    int rc = parse_flags(cmd, argc, argv, opts, sizeof opts / sizeof opts[0],
                         "--data FILE [--json FILE] [options]",
                         "Side by side, as the original comparison: random controls N(0, "
                         "sigma^2) and the dataset's expert controls,\nwith the differences "
                         "relative to the expert and the error reduction relative to random.",
                         &data);
    if (rc)
        return rc == CLI_HELP ? CLI_OK : rc;
    if (lf.closed_loop && !mf.checkpoint)
        return cli_error(CLI_USAGE, cmd,
                         "--closed-loop needs --checkpoint (the model asked at "
                         "every step)");
    if (polish && !mf.checkpoint)
        return cli_error(CLI_USAGE, cmd, "--polish needs --checkpoint (the model gives the guess)");
    if ((rc = cli_model_flags_need_checkpoint(cmd, opts, sizeof opts / sizeof opts[0])))
        return rc;
    if (polish &&
        (rc = cli_polish_parse(cmd, polish, polish_expert, sizeof polish_expert, &polish_iters)))
        return rc;
    eval_data ed;
    if ((rc = load_data(cmd, data, system, dt, &ed)))
        return rc;
    if (!(threshold > 0))
        threshold = ed.sys->success_threshold;
    control_row rows[MAX_ROWS];
    size_t n = 0;
    size_t count = ed.ds.n * (size_t)ed.ds.T * ed.ds.m;
    float *rnd = malloc(count * sizeof *rnd);
    if (!rnd) {
        trc_dataset_free(&ed.ds);
        return cli_error(CLI_FAIL, cmd, "out of memory");
    }
    trc_eval_random_controls(seed, sigma, count, rnd);
    rows[n++] = (control_row){"random", rnd, rnd, NULL, NULL};
    char *model_json = NULL, *loop_json = NULL, *expert_json = NULL, *polish_json = NULL;
    if (ed.ds.solve_ms && ed.ds.solve_stats) { /* an iterative expert recorded its solves */
        double ms = 0, it = 0;
        size_t conv = 0;
        for (size_t i = 0; i < ed.ds.n; i++) {
            ms += ed.ds.solve_ms[i];
            it += ed.ds.solve_stats[2 * i];
            conv += ed.ds.solve_stats[2 * i + 1] != 0;
        }
        ms /= (double)ed.ds.n, it /= (double)ed.ds.n;
        char buf[160];
        snprintf(buf, sizeof buf,
                 "{\"solve_ms_per_problem\": %.6g, \"iterations_mean\": %.6g, \"converged\": %zu}",
                 ms, it, conv);
        expert_json = strdup(buf);
        printf("expert (%s): %.4f ms per problem, %.1f iterations, %zu of %zu converged (as "
               "recorded when the dataset was generated)\n",
               ed.ds.has_settings ? ed.ds.settings.expert : "?", ms, it, conv, ed.ds.n);
    }
    if (rf.timing > 0 && ed.ds.has_settings) { /* the expert re-solved here, timed */
        if ((rc = cli_expert_measure(cmd, &ed.ds, (size_t)rf.timing, &em)) == CLI_OK) {
            char buf[200];
            snprintf(buf, sizeof buf,
                     "{\"solve_ms_per_problem_measured\": %.6g, \"solve_ms_mean_measured\": "
                     "%.6g, \"solves_timed\": %zu}",
                     em.ms_median, em.ms_mean, em.timed);
            if (cli_measure_merge_json(&expert_json, NULL, buf))
                rc = cli_error(CLI_FAIL, cmd, "out of memory");
        }
        if (rc) {
            free_rows(rows, n);
            free(expert_json);
            trc_dataset_free(&ed.ds);
            return rc;
        }
    }
    rows[n++] = (control_row){"expert", ed.ds.control_sequences, NULL, expert_json, NULL};
    trc_eval_stats loop_stats;
    if (mf.checkpoint) {
        float *mu;
        if ((rc = cli_model_controls(cmd, &mf, &ed.ds, data, &mu, &model_json)) == CLI_OK &&
            (rc = measure_model(cmd, &mf, &ed.ds, &rf, &mm, &model_json)))
            free(mu);
        if (rc) {
            free(mm.iterates);
            free(model_json);
            free_rows(rows, n);
            free(expert_json);
            trc_dataset_free(&ed.ds);
            return rc;
        }
        rows[n++] = (control_row){"model", mu, mu, model_json, NULL};
        if (polish) {
            float *pu;
            if ((rc = cli_polish(cmd, &ed.ds, ed.sys, ed.dt, polish_expert, polish_iters, mu, &pu,
                                 &polish_json))) {
                free(mm.iterates);
                free_rows(rows, n);
                free(model_json);
                free(expert_json);
                trc_dataset_free(&ed.ds);
                return rc;
            }
            rows[n++] = (control_row){"polished", pu, pu, polish_json, NULL};
        }
    }
    if (lf.closed_loop) {
        if ((rc = cli_model_closed_loop(cmd, &mf, &ed.ds, data, ed.sys, ed.dt, threshold, lf.noise,
                                        lf.seed, &loop_stats, &loop_json))) {
            free(mm.iterates);
            free_rows(rows, n);
            free(model_json);
            free(expert_json);
            free(polish_json);
            trc_dataset_free(&ed.ds);
            return rc;
        }
        rows[n++] = (control_row){"closed_loop", NULL, NULL, loop_json, &loop_stats};
    }
    trc_eval_context ctx = {
        .command = cmd, .data_path = data, .threshold = threshold, .has_seed = 1, .seed = seed};
    rc = run_rows(cmd, &ed, rows, n, &ctx, json, "expert", "random", &lf);
    if (!rc && (em.timed || mf.checkpoint))
        cli_measure_print(mf.checkpoint ? &mm : NULL, em.timed ? &em : NULL);
    if (!rc && rf.plot)
        rc = write_plots(cmd, rf.plot, rows, n, ed.sys, ed.dt, threshold, &ed.ds,
                         mf.checkpoint ? &mm : NULL);
    free(mm.iterates);
    free_rows(rows, n);
    free(model_json);
    free(loop_json);
    free(expert_json);
    free(polish_json);
    trc_dataset_free(&ed.ds);
    return rc;
}
