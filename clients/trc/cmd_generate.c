/* `trc generate`: draws initial/target pairs uniformly from a box, solves each with an expert
 * and writes the dataset as .npz (atomically; parent folders are created). */
#include "cli.h"
#include "commands.h"

#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/expert.h"
#include "trc/fileio.h"
#include "trc/system.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *CMD = "generate";

/* Library statuses caused by what the user asked for are usage errors (exit 2). */
static int lib_fail(int rc) {
    int usage = rc == TRC_EINVAL || rc == TRC_ENOTFOUND || rc == TRC_EUNSUPPORTED;
    return cli_lib_error(CMD, rc, usage);
}

static void help(const cli_opt *opts, size_t n) {
    char about[2048];
    size_t len = (size_t)snprintf(about, sizeof about,
                                  "Generates a dataset: initial and target states drawn uniformly "
                                  "from the box, controls from the expert.\nsystems:");
    for (size_t i = 0; i < trc_system_count() && len < sizeof about; i++) {
        const trc_system *s = trc_system_at(i);
        len += (size_t)snprintf(about + len, sizeof about - len,
                                "\n  %-18s s=%d m=%d T=%d dt=%g bound=%g box=[%g, %g] experts:",
                                s->name, s->s, s->m, s->T, s->dt, s->bound, s->box_lo, s->box_hi);
        size_t before = len;
        for (size_t e = 0; e < trc_expert_count() && len < sizeof about; e++)
            if (trc_expert_at(e)->accepts(s) == TRC_OK)
                len += (size_t)snprintf(about + len, sizeof about - len, " %s",
                                        trc_expert_at(e)->name);
        if (len == before && len < sizeof about)
            len += (size_t)snprintf(about + len, sizeof about - len, " none yet");
    }
    for (size_t e = 0; e < trc_expert_count() && len < sizeof about; e++)
        len += (size_t)snprintf(about + len, sizeof about - len, "%s  %-12s %s",
                                e ? "\n" : "\nexperts:\n", trc_expert_at(e)->name,
                                trc_expert_at(e)->about);
    cli_print_help(stdout, CMD, "--out FILE [options]", about, opts, n);
}

/* Creates the parent folder of path when it is missing. */
static int ensure_parent(const char *path) {
    char *copy = strdup(path);
    if (!copy)
        return cli_error(CLI_FAIL, CMD, "out of memory");
    const char *dir = dirname(copy);
    struct stat st;
    int rc = CLI_OK;
    if (stat(dir, &st) != 0) {
        if (trc_mkdir_p(dir) != TRC_OK)
            rc = cli_lib_error(CMD, TRC_EIO, 0);
    } else if (!S_ISDIR(st.st_mode)) {
        rc = cli_error(CLI_FAIL, CMD, "%s: cannot create: %s is not a directory", path, dir);
    }
    free(copy);
    return rc;
}

int cmd_generate(int argc, char **argv) {
    const char *system = "double_integrator", *expert = "min_energy", *out = NULL;
    int num = 10000, horizon = 0;
    uint64_t seed = 42;
    double dt = 0, bound = 0, box_lo = 0, box_hi = 0, q = 0, r = 0, qf = 0, max_iters = 0;
    int threads = 0, keep_unconverged = 0;
    cli_list box = {{0}, 0}, tbox = {{0}, 0};
    cli_opt opts[] = {
        CLI_OPT("--system", CLI_STR, &system, "NAME",
                "dynamical system (default double_integrator)"),
        CLI_OPT("--expert", CLI_STR, &expert, "NAME",
                "min_energy (default), lqr, lqr_finite or ilqr"),
        CLI_RANGE("--num-samples", CLI_INT, &num, "N", "number of samples (default 10000)", 1, 1e8,
                  0),
        CLI_OPT("--seed", CLI_U64, &seed, "S", "random seed (default 42)"),
        CLI_OPT("--out", CLI_STR, &out, "FILE", "output .npz (required)"),
        CLI_RANGE("--horizon", CLI_INT, &horizon, "T", "control steps (default: the system's)", 1,
                  100000, 0),
        CLI_RANGE("--dt", CLI_DOUBLE, &dt, "DT", "time step in seconds (default: the system's)", 0,
                  HUGE_VAL, 1),
        CLI_RANGE("--bound", CLI_DOUBLE, &bound, "B",
                  "control bound |u| <= B (default: the system's)", 0, HUGE_VAL, 1),
        CLI_OPT("--box", CLI_LIST, &box, "LO,HI",
                "sampling box of the initial states (default -2,2)"),
        CLI_OPT("--target-box", CLI_LIST, &tbox, "LO,HI",
                "sampling box of the targets (default: the system's; LO = HI fixes the target)"),
        CLI_RANGE("--box-lo", CLI_DOUBLE, &box_lo, "LO", "lower edge of the box", -1e12, 1e12, 0),
        CLI_RANGE("--box-hi", CLI_DOUBLE, &box_hi, "HI", "upper edge of the box", -1e12, 1e12, 0),
        CLI_RANGE("--lqr-q", CLI_DOUBLE, &q, "Q",
                  "state weight, Q = q diag(the system's: 1,1 double_integrator, 10,5 "
                  "van_der_pol) (default 1)",
                  0, HUGE_VAL, 1),
        CLI_RANGE("--lqr-r", CLI_DOUBLE, &r, "R", "control weight, R = r I (default 0.1)", 0,
                  HUGE_VAL, 1),
        CLI_RANGE("--lqr-qf", CLI_DOUBLE, &qf, "QF",
                  "terminal weight of lqr_finite and ilqr, Qf = qf Q (default: the system's, 100 "
                  "double_integrator, 20 van_der_pol)",
                  0, HUGE_VAL, 1),
        CLI_RANGE("--max-iters", CLI_DOUBLE, &max_iters, "N",
                  "ilqr iterations per warm start (default 100)", 1, 100000, 0),
        CLI_RANGE("--threads", CLI_INT, &threads, "N",
                  "solver threads (default: one per CPU; the data do not depend on it)", 1, 1024,
                  0),
        CLI_OPT("--keep-unconverged", CLI_BOOL, &keep_unconverged, NULL,
                "keep ilqr samples that did not converge (default: replaced by the next draws)"),
    };
    const size_t nopts = sizeof opts / sizeof opts[0];
    int rc = cli_parse(CMD, argc, argv, opts, nopts);
    if (rc == CLI_HELP) {
        help(opts, nopts);
        return CLI_OK;
    }
    if (rc)
        return rc;
    if (!out)
        return cli_error(CLI_USAGE, CMD, "--out FILE is required");

    trc_gen_settings g;
    if ((rc = trc_gen_settings_default(system, &g)))
        return lib_fail(rc);
    if ((rc = trc_expert_check_name(expert)))
        return lib_fail(rc);
    snprintf(g.expert, sizeof g.expert, "%s", expert);
    g.seed = seed;
    if (cli_find(opts, nopts, "--horizon")->seen)
        g.T = horizon;
    if (dt > 0)
        g.dt = dt;
    if (bound > 0)
        g.bound = bound;
    int lo_seen = cli_find(opts, nopts, "--box-lo")->seen;
    int hi_seen = cli_find(opts, nopts, "--box-hi")->seen;
    if (cli_find(opts, nopts, "--box")->seen) {
        if (lo_seen || hi_seen)
            return cli_error(CLI_USAGE, CMD, "give --box or --box-lo/--box-hi, not both");
        if (box.n != 2)
            return cli_error(CLI_USAGE, CMD, "--box: expected two numbers LO,HI, got %d", box.n);
        g.box_lo = box.v[0];
        g.box_hi = box.v[1];
    }
    if (lo_seen)
        g.box_lo = box_lo;
    if (hi_seen)
        g.box_hi = box_hi;
    if (!(g.box_lo < g.box_hi))
        return cli_error(CLI_USAGE, CMD, "the box needs LO < HI, got [%g, %g]", g.box_lo, g.box_hi);
    if (cli_find(opts, nopts, "--target-box")->seen) {
        if (tbox.n != 2 || !(tbox.v[0] <= tbox.v[1]))
            return cli_error(CLI_USAGE, CMD,
                             "--target-box: expected two numbers LO,HI with LO <= HI");
        g.target_lo = tbox.v[0];
        g.target_hi = tbox.v[1];
    }
    /* The expert's parameters, by their descriptors' names (--lqr-q sets lqr_q). */
    const struct {
        const char *flag, *name;
        double value;
    } params[] = {{"--lqr-q", "lqr_q", q},
                  {"--lqr-r", "lqr_r", r},
                  {"--lqr-qf", "lqr_qf", qf},
                  {"--max-iters", "max_iters", max_iters}};
    for (size_t i = 0; i < sizeof params / sizeof params[0]; i++)
        if (cli_find(opts, nopts, params[i].flag)->seen &&
            trc_gen_settings_set_param(&g, params[i].name, params[i].value) != TRC_OK)
            return cli_error(CLI_USAGE, CMD, "%s%s", params[i].flag,
                             trc_errmsg() + strlen(params[i].name)); /* "lqr_q applies to" */
    if ((rc = trc_gen_settings_validate(&g)))
        return lib_fail(rc);
    struct stat st;
    if (stat(out, &st) == 0 && S_ISDIR(st.st_mode))
        return cli_error(CLI_FAIL, CMD, "%s: is a directory", out);
    if ((rc = ensure_parent(out)))
        return rc;

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    trc_dataset ds;
    trc_gen_summary sum;
    const trc_gen_options gopt = {.threads = threads, .keep_unconverged = keep_unconverged};
    if ((rc = trc_dataset_generate_with(&g, (size_t)num, &gopt, &ds, &sum)))
        return lib_fail(rc);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if ((rc = trc_dataset_save(out, &ds))) {
        trc_dataset_free(&ds);
        return cli_lib_error(CMD, rc, 0);
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    double cost = 0, umax = 0;
    size_t clipped = 0, nu = ds.n * (size_t)ds.T * ds.m;
    for (size_t i = 0; i < ds.n; i++)
        cost += ds.costs[i];
    for (size_t i = 0; i < nu; i++) {
        double a = fabs(ds.control_sequences[i]);
        umax = fmax(umax, a);
        clipped += a >= (float)g.bound;
    }
    printf("wrote %s: %zu samples of %s by %s (T=%d, dt=%g, bound=%g, box [%g, %g], seed %llu) "
           "in %.3f s; mean cost %.4g, max |u| %.4g, %zu controls at the bound\n",
           out, ds.n, g.system, g.expert, g.T, g.dt, g.bound, g.box_lo, g.box_hi,
           (unsigned long long)g.seed, secs, cost / (double)ds.n, umax, clipped);
    if (ds.solve_stats)
        printf("%s: %zu solved, %zu unconverged (%s), %.1f iterations and %.3f ms per solve "
               "(mean; median %.3f ms, p95 %.3f ms)\n",
               g.expert, sum.drawn, sum.unconverged,
               keep_unconverged ? "kept" : "replaced by the next draws", sum.iters_mean,
               sum.solve_ms_mean, sum.solve_ms_median, sum.solve_ms_p95);
    trc_dataset_free(&ds);
    return CLI_OK;
}
