/* `trc merge`: joins the shards of one run (`trc generate --shard I/N`, e.g. made by the
 * Kubernetes Indexed Job of docker/k8s/) into the dataset a single `trc generate` with the same
 * settings writes, written atomically. The shards are the arguments that are not flags. */
#include "cli.h"
#include "commands.h"

#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/fileio.h"

#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static const char *CMD = "merge";

int cmd_merge(int argc, char **argv) {
    const char *out = NULL;
    int threads = 0;
    cli_opt opts[] = {
        CLI_OPT("--out", CLI_STR, &out, "FILE", "the merged dataset .npz (required)"),
        CLI_RANGE("--threads", CLI_INT, &threads, "N",
                  "solver threads for the replacements of unconverged samples (default: one per "
                  "CPU)",
                  1, 1024, 0),
    };
    const size_t nopts = sizeof opts / sizeof opts[0];
    /* Split the shard files from the flags (and their values) so cli_parse sees flags only. */
    char **flags = malloc(sizeof *flags * ((size_t)argc + 1));
    const char **files = malloc(sizeof *files * ((size_t)argc + 1));
    if (!flags || !files) {
        free(flags);
        free(files);
        return cli_error(CLI_FAIL, CMD, "out of memory");
    }
    int nf = 0, nfiles = 0;
    flags[nf++] = argv[0];
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-' || strcmp(argv[i], "-") == 0) {
            files[nfiles++] = argv[i];
            continue;
        }
        flags[nf++] = argv[i];
        const cli_opt *o = cli_find(opts, nopts, argv[i]);
        if (o && o->kind != CLI_BOOL && i + 1 < argc)
            flags[nf++] = argv[++i];
    }
    int rc = cli_parse(CMD, nf, flags, opts, nopts);
    free(flags);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, CMD, "--out FILE SHARD.npz...",
                       "Joins the N shards of one run (trc generate --shard I/N, any order) into "
                       "exactly the dataset\na single trc generate with the same settings writes. "
                       "Shards of different runs, a missing\nor a duplicated shard are refused; "
                       "nothing is written then.",
                       opts, nopts);
        free(files);
        return CLI_OK;
    }
    if (!rc && !out)
        rc = cli_error(CLI_USAGE, CMD, "--out FILE is required");
    if (!rc && nfiles == 0)
        rc = cli_error(CLI_USAGE, CMD, "no shard given (trc merge --out FILE SHARD.npz...)");
    struct stat st;
    if (!rc && stat(out, &st) == 0 && S_ISDIR(st.st_mode))
        rc = cli_error(CLI_FAIL, CMD, "%s: is a directory", out);
    for (int i = 0; !rc && i < nfiles; i++)
        if (strcmp(files[i], out) == 0)
            rc = cli_error(CLI_USAGE, CMD, "%s: is both a shard and --out", out);
    trc_dataset *sh = rc ? NULL : calloc((size_t)nfiles, sizeof *sh);
    if (!rc && !sh)
        rc = cli_error(CLI_FAIL, CMD, "out of memory");
    int loaded = 0;
    for (; !rc && loaded < nfiles; loaded++)
        if ((rc = trc_dataset_load(files[loaded], &sh[loaded])))
            rc = cli_lib_error(CMD, rc, 0);
    trc_dataset ds;
    trc_gen_summary sum;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!rc) {
        const trc_gen_options gopt = {.threads = threads};
        if ((rc = trc_dataset_merge(sh, (size_t)nfiles, files, &gopt, &ds, &sum)))
            rc = cli_lib_error(CMD, rc, rc == TRC_EINVAL);
    }
    for (int i = 0; i < loaded; i++)
        trc_dataset_free(&sh[i]);
    free(sh);
    free(files);
    if (rc)
        return rc;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    char *parent = strdup(out); /* parent folders are created, as by trc generate */
    if (!parent || trc_mkdir_p(dirname(parent)) != TRC_OK) {
        free(parent);
        trc_dataset_free(&ds);
        return parent ? cli_lib_error(CMD, TRC_EIO, 0) : cli_error(CLI_FAIL, CMD, "out of memory");
    }
    free(parent);
    if ((rc = trc_dataset_save(out, &ds))) {
        trc_dataset_free(&ds);
        return cli_lib_error(CMD, rc, 0);
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    size_t replaced = sum.drawn - ds.n;
    printf("wrote %s: %zu samples of %s by %s (seed %llu) from %d shards in %.3f s; %zu "
           "unconverged, %zu replaced by candidates solved here\n",
           out, ds.n, ds.settings.system, ds.settings.expert, (unsigned long long)ds.settings.seed,
           nfiles, secs, sum.unconverged, sum.drawn > ds.n ? replaced : 0);
    trc_dataset_free(&ds);
    return CLI_OK;
}
