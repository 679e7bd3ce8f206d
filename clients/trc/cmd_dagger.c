/* `trc dagger`: the training set of the next round of a shrinking-horizon model (DAgger,
 * trc/dagger.h): the problems of --data, K tails of each of their expert solutions, and the
 * states the model's own closed loop visited, labelled by the data's expert for the steps left.
 * `trc train --data OUT --init CHECKPOINT` then fine-tunes on it. Written atomically. */
#include "cli.h"
#include "commands.h"
#include "model_run.h"

#include "trc/dagger.h"
#include "trc/dataset.h"
#include "trc/error.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *CMD = "dagger";

static double seconds_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0->tv_nsec);
}

/* ds, its tails, the DAgger rows and (prev not NULL) the earlier rounds' rows, in that order,
 * into out. */
static int build(const trc_model *model, const trc_dataset *ds, const trc_dataset *prev,
                 int per_sample, int tails, unsigned long long seed, int threads, trc_dataset *out,
                 trc_dagger_summary *sum, size_t *kept) {
    trc_dataset base, rows, both, old;
    memset(&base, 0, sizeof base);
    memset(&rows, 0, sizeof rows);
    memset(&both, 0, sizeof both);
    memset(&old, 0, sizeof old);
    *kept = 0;
    const trc_dagger_opts o = {per_sample, seed, threads};
    int rc = trc_dagger_collect(model, ds, &o, &rows, sum);
    if (!rc && tails > 0) /* the tails trc train --tails would add, from the same seed rule */
        rc = trc_dataset_add_tails(ds, tails, seed ^ 0x7a11ULL, &base);
    if (!rc && prev && (rc = trc_dataset_tail_rows(prev, &old)) == TRC_OK)
        *kept = old.n;
    if (!rc)
        rc = trc_dataset_concat(tails > 0 ? &base : ds, &rows, prev ? &both : out);
    if (!rc && prev)
        rc = trc_dataset_concat(&both, &old, out);
    trc_dataset_free(&base);
    trc_dataset_free(&rows);
    trc_dataset_free(&both);
    trc_dataset_free(&old);
    return rc;
}

int cmd_dagger(int argc, char **argv) {
    cli_model_flags mf = {0};
    const char *data = NULL, *out = NULL, *aggregate = NULL;
    int per_sample = 3, tails = 3;
    double seed = 42;
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        CLI_OPT("--data", CLI_STR, &data, "FILE",
                "whole problems with their expert's settings (trc generate; required)"),
        CLI_OPT("--out", CLI_STR, &out, "FILE", "the next round's training set (.npz; required)"),
        CLI_RANGE("--per-sample", CLI_INT, &per_sample, "K",
                  "visited states labelled per problem (default 3)", 1, 1000, 0),
        CLI_RANGE("--tails", CLI_INT, &tails, "K",
                  "tails of each expert solution kept beside them (default 3; 0: none)", 0, 64, 0),
        CLI_OPT("--aggregate", CLI_STR, &aggregate, "FILE",
                "an earlier round's output: its tails and labelled states are kept too (DAgger "
                "trains on every round's states; default none)"),
        CLI_RANGE("--seed", CLI_DOUBLE, &seed, "S", "which steps and tails (default 42)", 0,
                  9007199254740992.0, 0),
        CLI_RANGE("--threads", CLI_INT, &mf.threads, "N",
                  "model and expert threads (default: one per CPU; the data do not depend on it)",
                  1, 64, 0),
    };
    const size_t nopts = sizeof opts / sizeof opts[0];
    int rc = cli_parse(CMD, argc, argv, opts, nopts);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, CMD, "--checkpoint FILE --data FILE --out FILE",
                       "DAgger for a model trained with --tails: runs its shrinking-horizon "
                       "closed loop from every\nproblem of --data, labels states it visited with "
                       "the data's expert for the steps left, and\nwrites the problems, their "
                       "tails and those rows: train on it with --init CHECKPOINT.",
                       opts, nopts);
        return CLI_OK;
    }
    if (rc)
        return rc;
    if (!mf.checkpoint || !data || !out)
        return cli_error(CLI_USAGE, CMD, "--checkpoint, --data and --out are required");
    if (seed != floor(seed))
        return cli_error(CLI_USAGE, CMD, "--seed must be a whole number");
    if (strcmp(data, out) == 0)
        return cli_error(CLI_USAGE, CMD, "%s: is both --data and --out", out);
    trc_model model;
    if ((rc = cli_model_load(CMD, &mf, &model)) != 0)
        return rc;
    trc_dataset ds, res, prev;
    memset(&res, 0, sizeof res);
    memset(&prev, 0, sizeof prev);
    if ((rc = trc_dataset_load(data, &ds))) {
        trc_model_free(&model);
        return cli_lib_error(CMD, rc, 0);
    }
    if (aggregate && (rc = trc_dataset_load(aggregate, &prev))) {
        trc_dataset_free(&ds);
        trc_model_free(&model);
        return cli_lib_error(CMD, rc, 0);
    }
    int threads = mf.threads ? mf.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    threads = threads < 1 ? 1 : threads > 64 ? 64 : threads;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    trc_dagger_summary sum;
    size_t kept = 0;
    rc = build(&model, &ds, aggregate ? &prev : NULL, per_sample, tails, (unsigned long long)seed,
               threads, &res, &sum, &kept);
    if (rc)
        rc = cli_lib_error(CMD, rc, rc == TRC_EINVAL);
    if (!rc && (rc = trc_dataset_save(out, &res)))
        rc = cli_lib_error(CMD, rc, 0);
    if (!rc) {
        printf("wrote %s: %zu rows (%zu problems, %zu tails, %zu visited states labelled by %s; "
               "%zu left out: not converged, or steps the expert cannot plan; %zu rows of "
               "earlier rounds) in %.3f s\n",
               out, res.n, ds.n, res.n - ds.n - sum.labelled - kept, sum.labelled,
               ds.settings.expert, sum.unconverged, kept, seconds_since(&t0));
        printf("the closed loop that visited them: mean final error %.6g", sum.err_mean);
        if (!isnan(sum.landed_rate))
            printf(", landed %.2f%%", 100.0 * sum.landed_rate);
        printf("\n");
    }
    trc_dataset_free(&res);
    trc_dataset_free(&prev);
    trc_dataset_free(&ds);
    trc_model_free(&model);
    return rc;
}
