/* trc: the command line over libtrc. Dispatches to the subcommands of commands.h. */
#include "commands.h"

#include "trc/version.h"

#include <stdio.h>
#include <string.h>

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

/* One line per subcommand. */
static const command commands[] = {
    {"generate", cmd_generate, "generate a dataset of expert controls (.npz)"},
    {"merge", cmd_merge, "join the shards of `generate --shard I/N` into the run's dataset"},
    {"eval", cmd_eval, "simulate a dataset's (or another file's) controls and report errors"},
    {"compare", cmd_compare, "compare random controls with the expert (side by side)"},
    {"train", cmd_train, "train a model on a dataset (checkpoints, stats, loss curves, resume)"},
    {"dagger", cmd_dagger,
     "the next training set of a --tails model: its closed loop's states, labelled"},
    {"predict", cmd_predict, "controls from a trained model, for one pair or a whole dataset"},
    {"info", cmd_info, "a checkpoint's configuration and parameter count per component"},
    {"catalog", cmd_catalog, "systems, experts, sizes and every option (as GET /v1/catalog)"},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
    fprintf(out, "usage: trc <command> [options]   (trc <command> --help for its options)\n\n"
                 "Tiny Recursive Control: datasets, evaluation and models for optimal control.\n\n"
                 "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "  %-10s %s\n", "help", "this text, or `trc help <command>`");
    fprintf(out, "\nexit status: 0 success, 1 the run failed, 2 bad usage.\n");
}

static const command *find(const char *name) {
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "trc: missing command (see trc --help)\n");
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 ||
        (strcmp(name, "help") == 0 && argc == 2)) {
        usage(stdout);
        return 0;
    }
    if (strcmp(name, "--version") == 0 || strcmp(name, "version") == 0) {
        printf("trc %s\n", TRC_VERSION);
        return 0;
    }
    if (strcmp(name, "help") == 0) {
        const command *c = find(argv[2]);
        if (!c) {
            fprintf(stderr, "trc: unknown command '%s' (see trc --help)\n", argv[2]);
            return 2;
        }
        char *help_argv[] = {(char *)c->name, "--help", NULL};
        return c->run(2, help_argv);
    }
    const command *c = find(name);
    if (!c) {
        fprintf(stderr, "trc: unknown command '%s' (see trc --help)\n", name);
        return 2;
    }
    return c->run(argc - 1, argv + 1);
}
