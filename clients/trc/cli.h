/* Flag parsing shared by the trc subcommands. A command describes its flags in a table of
 * cli_opt; cli_parse fills the destinations, validates syntax and ranges, and reports any
 * problem as ONE line "trc <cmd>: <message>" on stderr. Nothing here exits: commands return
 * an exit status (0 ok, CLI_FAIL for a failed run, CLI_USAGE for bad flags). */
#ifndef TRC_CLI_H
#define TRC_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "trc/option.h"

enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2, CLI_HELP = -1 };

#define CLI_LIST_MAX 16

typedef enum {
    CLI_STR,    /* const char **: the argument as given (must not be empty) */
    CLI_INT,    /* int *: integer in [min, max] */
    CLI_U64,    /* uint64_t *: non-negative integer (seeds) */
    CLI_DOUBLE, /* double *: finite number in [min, max] (or (min, max] with min_open) */
    CLI_LIST,   /* cli_list *: comma-separated finite numbers, "1.0,0.5" */
    CLI_BOOL,   /* int *: a flag without a value, set to 1 */
    CLI_OPTION, /* an option descriptor (trc/option.h) bound to the struct at dst */
} cli_kind;

typedef struct cli_list {
    double v[CLI_LIST_MAX];
    int n;
} cli_list;

typedef struct cli_opt {
    const char *name; /* "--num-samples" */
    cli_kind kind;
    void *dst;
    const char *metavar;    /* "N" (for help) */
    const char *help;       /* one line, default included when there is one */
    double min, max;        /* range for CLI_INT / CLI_DOUBLE; ignored when min == max == 0;
                               max = HUGE_VAL for "no upper bound" */
    int min_open;           /* 1: the value must be strictly greater than min */
    int seen;               /* set by cli_parse when the flag was given */
    const trc_option *desc; /* CLI_OPTION: the descriptor (name, help, metavar, range) */
    char flag[48];          /* CLI_OPTION: storage of the flag name */
} cli_opt;

/* Table entries: a flag without a range check, and one with [lo, hi] ((lo, hi] when open). */
#define CLI_OPT(n, k, d, mv, h)                                                                    \
    { .name = (n), .kind = (k), .dst = (d), .metavar = (mv), .help = (h) }
#define CLI_RANGE(n, k, d, mv, h, lo, hi, open)                                                    \
    {                                                                                              \
        .name = (n), .kind = (k), .dst = (d), .metavar = (mv), .help = (h), .min = (lo),           \
        .max = (hi), .min_open = (open)                                                            \
    }

/* Appends a flag for every option of `set` that applies to the command line (TRC_OPT_CLI),
 * bound to the struct at base: flag, metavar and help line from the descriptor, value parsed
 * and range-checked by it. Returns the new count (at most cap). */
size_t cli_add_options(cli_opt *opts, size_t count, size_t cap, const trc_option *set, size_t nset,
                       void *base);

/* Parses argv[1..argc) (argv[0] is the command name). Returns CLI_OK, CLI_HELP when
 * -h/--help was given (nothing printed), or CLI_USAGE after printing the problem. */
int cli_parse(const char *cmd, int argc, char **argv, cli_opt *opts, size_t nopts);

/* Help text: synopsis, description, one line per flag. */
void cli_print_help(FILE *out, const char *cmd, const char *synopsis, const char *about,
                    const cli_opt *opts, size_t nopts);

/* The flag named `name` in the table, or NULL. */
cli_opt *cli_find(cli_opt *opts, size_t nopts, const char *name);

/* Prints "trc <cmd>: <message>" (one line) to stderr; returns the given status. */
int cli_error(int status, const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prints the library's last error message for `status` and returns CLI_FAIL, or CLI_USAGE when
 * `usage` is set (a setting the user gave was refused). */
int cli_lib_error(const char *cmd, int status, int usage);

/* Syntax helpers (no printing): 0 on success, -1 on bad text. */
int cli_parse_int(const char *text, long long *out);
int cli_parse_u64(const char *text, uint64_t *out);
int cli_parse_double(const char *text, double *out);
int cli_parse_list(const char *text, cli_list *out);
/* "I/N" with 0 <= I < N <= 100000 (a shard of a run). */
int cli_parse_shard(const char *text, int *index, int *count);

#endif
