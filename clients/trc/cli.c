/* Flag parsing and one-line error reporting for the trc subcommands; see cli.h. */
#include "cli.h"

#include "trc/error.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int cli_error(int status, const char *cmd, const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) /* one line, whatever the message holds */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    fprintf(stderr, "trc %s: %s\n", cmd, msg);
    return status;
}

int cli_lib_error(const char *cmd, int status, int usage) {
    const char *msg = trc_errmsg();
    return cli_error(usage ? CLI_USAGE : CLI_FAIL, cmd, "%s",
                     msg && msg[0] ? msg : trc_strerror(status));
}

int cli_parse_int(const char *text, long long *out) {
    if (!text || !*text || (*text != '-' && *text != '+' && (*text < '0' || *text > '9')))
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_u64(const char *text, uint64_t *out) {
    if (!text || *text < '0' || *text > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int cli_parse_shard(const char *text, int *index, int *count) {
    const char *slash = text ? strchr(text, '/') : NULL;
    if (!slash || slash == text || slash - text > 20)
        return -1;
    char head[24];
    memcpy(head, text, (size_t)(slash - text));
    head[slash - text] = 0;
    uint64_t i, n;
    if (cli_parse_u64(head, &i) || cli_parse_u64(slash + 1, &n) || n < 1 || n > 100000 || i >= n)
        return -1;
    *index = (int)i;
    *count = (int)n;
    return 0;
}

int cli_parse_double(const char *text, double *out) {
    if (!text || !*text || *text == ' ' || *text == '\t')
        return -1;
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (*end || !isfinite(v) || (errno == ERANGE && fabs(v) > 1.0))
        return -1;
    *out = v;
    return 0;
}

int cli_parse_list(const char *text, cli_list *out) {
    out->n = 0;
    if (!text || !*text)
        return -1;
    const char *p = text;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[64];
        if (len == 0 || len >= sizeof item || out->n >= CLI_LIST_MAX)
            return -1;
        memcpy(item, p, len);
        item[len] = 0;
        if (cli_parse_double(item, &out->v[out->n]) != 0)
            return -1;
        out->n++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

cli_opt *cli_find(cli_opt *opts, size_t nopts, const char *name) {
    for (size_t i = 0; i < nopts; i++)
        if (strcmp(opts[i].name, name) == 0)
            return &opts[i];
    return NULL;
}

static int in_range(const cli_opt *o, double v) {
    if (o->min == 0 && o->max == 0)
        return 1;
    return (o->min_open ? v > o->min : v >= o->min) && v <= o->max;
}

static void range_text(const cli_opt *o, char *buf, size_t size) {
    if (o->min == 0 && o->max == 0)
        snprintf(buf, size, "a number");
    else if (o->kind == CLI_INT)
        snprintf(buf, size, "an integer in %.0f..%.0f", o->min, o->max);
    else if (isinf(o->max))
        snprintf(buf, size, "a number %s %g", o->min_open ? ">" : ">=", o->min);
    else
        snprintf(buf, size, "a number in %s%g, %g]", o->min_open ? "(" : "[", o->min, o->max);
}

static int set_value(const char *cmd, cli_opt *o, const char *val) {
    char want[96];
    switch (o->kind) {
    case CLI_STR:
        if (!*val)
            return cli_error(CLI_USAGE, cmd, "%s: empty value", o->name);
        *(const char **)o->dst = val;
        return CLI_OK;
    case CLI_INT: {
        long long v;
        range_text(o, want, sizeof want);
        if (cli_parse_int(val, &v) != 0 || !in_range(o, (double)v))
            return cli_error(CLI_USAGE, cmd, "%s: expected %s, got '%s'", o->name, want, val);
        *(int *)o->dst = (int)v;
        return CLI_OK;
    }
    case CLI_U64: {
        uint64_t v;
        if (cli_parse_u64(val, &v) != 0)
            return cli_error(CLI_USAGE, cmd, "%s: expected a non-negative integer, got '%s'",
                             o->name, val);
        *(uint64_t *)o->dst = v;
        return CLI_OK;
    }
    case CLI_DOUBLE: {
        double v;
        range_text(o, want, sizeof want);
        if (cli_parse_double(val, &v) != 0 || !in_range(o, v))
            return cli_error(CLI_USAGE, cmd, "%s: expected %s, got '%s'", o->name, want, val);
        *(double *)o->dst = v;
        return CLI_OK;
    }
    case CLI_LIST:
        if (cli_parse_list(val, (cli_list *)o->dst) != 0)
            return cli_error(CLI_USAGE, cmd,
                             "%s: expected comma-separated numbers like 1.0,0.5, got '%s'", o->name,
                             val);
        return CLI_OK;
    case CLI_BOOL:
        *(int *)o->dst = 1;
        return CLI_OK;
    case CLI_OPTION:
        if (trc_option_parse(o->desc, o->desc->type == TRC_OPT_BOOL ? "1" : val, o->name, o->dst) !=
            TRC_OK)
            return cli_error(CLI_USAGE, cmd, "%s", trc_errmsg());
        return CLI_OK;
    }
    return CLI_USAGE;
}

static const char *type_metavar(const trc_option *d) {
    switch (d->type) {
    case TRC_OPT_INT:
    case TRC_OPT_U64:
        return "N";
    case TRC_OPT_DOUBLE:
        return "X";
    default:
        return "NAME";
    }
}

size_t cli_add_options(cli_opt *opts, size_t count, size_t cap, const trc_option *set, size_t nset,
                       void *base) {
    for (size_t i = 0; i < nset && count < cap; i++) {
        const trc_option *d = &set[i];
        if (!(d->where & TRC_OPT_CLI))
            continue;
        cli_opt *o = &opts[count++];
        memset(o, 0, sizeof *o);
        trc_option_flag(d, o->flag, sizeof o->flag);
        o->name = o->flag;
        o->kind = CLI_OPTION;
        o->dst = base;
        o->desc = d;
        o->metavar = d->metavar ? d->metavar : type_metavar(d);
        o->help = d->help;
    }
    return count;
}

/* The help line of a descriptor: its text, the choices and the default. */
static void option_help(const trc_option *d, char *buf, size_t size) {
    char def[160], what[400];
    trc_option_default_text(d, def, sizeof def);
    size_t len = (size_t)snprintf(buf, size, "%s", d->help);
    if (trc_option_choice(d, 0) && len < size) {
        trc_option_describe(d, 0, what, sizeof what);
        len += (size_t)snprintf(buf + len, size - len, ": %s", what + strlen("one of "));
    }
    if (len < size)
        snprintf(buf + len, size - len, " (default %s)", def);
}

int cli_parse(const char *cmd, int argc, char **argv, cli_opt *opts, size_t nopts) {
    for (size_t i = 0; i < nopts; i++)
        opts[i].seen = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0)
            return CLI_HELP;
        /* "--name" flags, and "-X" short flags a command lists under that name (-K, -n) */
        int is_short = arg[0] == '-' && arg[1] && arg[1] != '-' && arg[2] == 0;
        if ((strncmp(arg, "--", 2) != 0 || arg[2] == 0) && !is_short)
            return cli_error(CLI_USAGE, cmd, "unexpected argument '%s' (see trc %s --help)", arg,
                             cmd);
        char name[64];
        const char *eq = strchr(arg, '=');
        size_t len = eq ? (size_t)(eq - arg) : strlen(arg);
        if (len >= sizeof name)
            return cli_error(CLI_USAGE, cmd, "unknown flag '%.40s...' (see trc %s --help)", arg,
                             cmd);
        memcpy(name, arg, len);
        name[len] = 0;
        cli_opt *o = cli_find(opts, nopts, name);
        if (!o)
            return cli_error(CLI_USAGE, cmd, "unknown flag '%s' (see trc %s --help)", name, cmd);
        if (o->seen)
            return cli_error(CLI_USAGE, cmd, "%s given twice", name);
        o->seen = 1;
        const char *val;
        if (o->kind == CLI_BOOL || (o->kind == CLI_OPTION && o->desc->type == TRC_OPT_BOOL)) {
            if (eq)
                return cli_error(CLI_USAGE, cmd, "%s takes no value", name);
            val = "";
        } else if (eq) {
            val = eq + 1;
        } else {
            if (i + 1 >= argc)
                return cli_error(CLI_USAGE, cmd, "%s needs a value (%s)", name, o->metavar);
            val = argv[++i];
        }
        int rc = set_value(cmd, o, val);
        if (rc)
            return rc;
    }
    return CLI_OK;
}

void cli_print_help(FILE *out, const char *cmd, const char *synopsis, const char *about,
                    const cli_opt *opts, size_t nopts) {
    fprintf(out, "usage: trc %s %s\n\n%s\n\noptions:\n", cmd, synopsis, about);
    for (size_t i = 0; i < nopts; i++) {
        char left[64];
        if (opts[i].kind == CLI_BOOL ||
            (opts[i].kind == CLI_OPTION && opts[i].desc->type == TRC_OPT_BOOL))
            snprintf(left, sizeof left, "%s", opts[i].name);
        else
            snprintf(left, sizeof left, "%s %s", opts[i].name, opts[i].metavar);
        char line[1024];
        if (opts[i].kind == CLI_OPTION)
            option_help(opts[i].desc, line, sizeof line);
        else
            snprintf(line, sizeof line, "%s", opts[i].help);
        fprintf(out, "  %-24s %s\n", left, line);
    }
    fprintf(out, "  %-24s %s\n", "-h, --help", "show this help");
}
