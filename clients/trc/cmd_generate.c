/* `trc generate`: draws initial/target pairs uniformly from a box, solves each with an expert
 * and writes the dataset as .npz (atomically; parent folders are created). */
#include "cli.h"
#include "commands.h"

#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/expert.h"
#include "trc/fileio.h"
#include "trc/settings.h"
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
    /* Flags are parsed into `given` (the default system's values), then the chosen system's
     * defaults are filled and only the flags given are copied over them. */
    trc_gen_request given, req;
    trc_gen_request_default(NULL, &given);
    const char *out = NULL;
    cli_list box = {{0}, 0}, tbox = {{0}, 0};
    int threads = 0, keep_unconverged = 0, shard_i = 0, shard_n = 0;
    const char *shard = NULL;
    cli_opt opts[48];
    const trc_option_set *set = trc_gen_option_set();
    size_t nopts = cli_add_options(opts, 0, sizeof opts / sizeof opts[0] - 6, set->options,
                                   set->count, &given);
    /* Every expert's parameters are flags too (once per name), each parsed into its own slot
     * by the expert's descriptor and set by name once the expert is known. */
    enum { MAX_PFLAGS = 16 };
    const trc_option *pdesc[MAX_PFLAGS];
    double pval[MAX_PFLAGS][TRC_EXPERT_MAX_PARAMS];
    char pflag[MAX_PFLAGS][48];
    size_t np = 0;
    memset(pval, 0, sizeof pval);
    for (size_t e = 0; e < trc_expert_count(); e++) {
        const trc_expert *ex = trc_expert_at(e);
        for (size_t k = 0; k < ex->nparams && np < MAX_PFLAGS; k++) {
            int dup = 0;
            for (size_t i = 0; i < np; i++)
                dup |= strcmp(pdesc[i]->name, ex->params[k].name) == 0;
            if (dup || !(ex->params[k].where & TRC_OPT_CLI))
                continue;
            pdesc[np] = &ex->params[k];
            trc_option_flag(pdesc[np], pflag[np], sizeof pflag[np]);
            nopts = cli_add_options(opts, nopts, sizeof opts / sizeof opts[0] - 6, pdesc[np], 1,
                                    pval[np]);
            np++;
        }
    }
    /* How to run it, not what to make (and the list forms of the box options). */
    const cli_opt run_opts[] = {
        CLI_OPT("--out", CLI_STR, &out, "FILE", "output .npz (required)"),
        CLI_OPT("--box", CLI_LIST, &box, "LO,HI", "sampling box of the initial states, both edges"),
        CLI_OPT("--target-box", CLI_LIST, &tbox, "LO,HI",
                "sampling box of the targets (default: the system's; LO = HI fixes the target)"),
        CLI_RANGE("--threads", CLI_INT, &threads, "N",
                  "solver threads (default: one per CPU; the data do not depend on it)", 1, 1024,
                  0),
        CLI_OPT("--keep-unconverged", CLI_BOOL, &keep_unconverged, NULL,
                "keep ilqr samples that did not converge (default: replaced by the next draws)"),
        CLI_OPT("--shard", CLI_STR, &shard, "I/N",
                "write only shard I of N (0 <= I < N) of the run; `trc merge` joins the N "
                "shards into the run's dataset"),
    };
    for (size_t i = 0; i < sizeof run_opts / sizeof run_opts[0]; i++)
        opts[nopts++] = run_opts[i];
    int rc = cli_parse(CMD, argc, argv, opts, nopts);
    if (rc == CLI_HELP) {
        help(opts, nopts);
        return CLI_OK;
    }
    if (rc)
        return rc;
    if (!out)
        return cli_error(CLI_USAGE, CMD, "--out FILE is required");

    if ((rc = trc_gen_request_default(given.settings.system, &req)))
        return lib_fail(trc_fail(rc, "unknown system '%s'", given.settings.system));
    for (size_t i = 0; i < nopts; i++)
        if (opts[i].kind == CLI_OPTION && opts[i].seen)
            trc_option_copy(opts[i].desc, &req, &given);
    trc_gen_settings *g = &req.settings;
    int lo_seen = cli_find(opts, nopts, "--box-lo")->seen;
    int hi_seen = cli_find(opts, nopts, "--box-hi")->seen;
    if (cli_find(opts, nopts, "--box")->seen) {
        if (lo_seen || hi_seen)
            return cli_error(CLI_USAGE, CMD, "give --box or --box-lo/--box-hi, not both");
        if (box.n != 2)
            return cli_error(CLI_USAGE, CMD, "--box: expected two numbers LO,HI, got %d", box.n);
        g->box_lo = box.v[0];
        g->box_hi = box.v[1];
    }
    if (!(g->box_lo < g->box_hi))
        return cli_error(CLI_USAGE, CMD, "the box needs LO < HI, got [%g, %g]", g->box_lo,
                         g->box_hi);
    if (cli_find(opts, nopts, "--target-box")->seen) {
        if (tbox.n != 2 || !(tbox.v[0] <= tbox.v[1]))
            return cli_error(CLI_USAGE, CMD,
                             "--target-box: expected two numbers LO,HI with LO <= HI");
        g->target_lo = tbox.v[0];
        g->target_hi = tbox.v[1];
    }
    /* The expert's parameters, by their descriptors' names (--lqr-q sets lqr_q). */
    for (size_t i = 0; i < np; i++) {
        const cli_opt *po = cli_find(opts, nopts, pflag[i]);
        double v = pval[i][pdesc[i]->offset / sizeof(double)];
        if (po->seen && trc_gen_settings_set_param(g, pdesc[i]->name, v) != TRC_OK)
            return cli_error(CLI_USAGE, CMD, "%s%s", pflag[i],
                             trc_errmsg() + strlen(pdesc[i]->name)); /* "lqr_q applies to" */
    }
    if ((rc = trc_gen_settings_validate(g)))
        return lib_fail(rc);
    const int num = req.num_samples;
    if (shard && cli_parse_shard(shard, &shard_i, &shard_n))
        return cli_error(CLI_USAGE, CMD,
                         "--shard: expected I/N with 0 <= I < N <= 100000 (e.g. 0/4), got '%s'",
                         shard);
    if (shard && shard_n > num)
        return cli_error(CLI_USAGE, CMD,
                         "--shard %s: %d shards of %d samples (--num-samples): every shard needs "
                         "one sample",
                         shard, shard_n, num);
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
    if ((rc = shard ? trc_dataset_generate_shard(g, (size_t)num, shard_i, shard_n, &gopt, &ds, &sum)
                    : trc_dataset_generate_with(g, (size_t)num, &gopt, &ds, &sum)))
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
        clipped += a >= (float)g->bound;
    }
    printf("wrote %s: %zu samples of %s by %s (T=%d, dt=%g, bound=%g, box [%g, %g], seed %llu) "
           "in %.3f s; mean cost %.4g, max |u| %.4g, %zu controls at the bound\n",
           out, ds.n, g->system, g->expert, g->T, g->dt, g->bound, g->box_lo, g->box_hi,
           (unsigned long long)g->seed, secs, cost / (double)ds.n, umax, clipped);
    if (shard)
        printf("shard %d/%d: samples %zu..%zu of the %d-sample run (merge the %d shards with trc "
               "merge)\n",
               shard_i, shard_n, ds.shard.first, ds.shard.first + ds.n, num, shard_n);
    if (ds.solve_stats)
        printf("%s: %zu solved, %zu unconverged (%s), %.1f iterations and %.3f ms per solve "
               "(mean; median %.3f ms, p95 %.3f ms)\n",
               g->expert, sum.drawn, sum.unconverged,
               keep_unconverged ? "kept" : "replaced by the next draws", sum.iters_mean,
               sum.solve_ms_mean, sum.solve_ms_median, sum.solve_ms_p95);
    trc_dataset_free(&ds);
    return CLI_OK;
}
