/* `trc info`: what a checkpoint holds: its configuration, the parameter count of each
 * component of the network, and the training summary stored with it (if any). */
#include "cli.h"
#include "commands.h"
#include "model_run.h"

#include "trc/checkpoint.h"
#include "trc/cpu.h"
#include "trc/error.h"
#include "trc/safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *CMD = "info";

/* Components in the order of model.md, by parameter-name prefix. */
static const struct {
    const char *label, *prefix, *prefix2;
} components[] = {
    {"state_encoder", "state_encoder.", NULL},
    {"error_encoder", "error_encoder.", NULL},
    /* single: reasoning_blocks; two_level / trm_style: one set of L_level layers */
    {"reasoning_blocks", "recursive_reasoning.reasoning_blocks.",
     "recursive_reasoning.L_level.layers."},
    {"embeddings", "recursive_reasoning.control_embedding.",
     "recursive_reasoning.error_embedding."},
    {"generator", "initial_control_generator.", NULL},
    {"decoder", "control_decoder.", NULL},
    /* two_level: trained parameters; trm_style: fixed buffers */
    {"initial_states", "recursive_reasoning.H_init", "recursive_reasoning.L_init"},
};
#define NCOMP (sizeof components / sizeof components[0])

static int starts(const char *s, const char *prefix) {
    return prefix && strncmp(s, prefix, strlen(prefix)) == 0;
}

/* counts[NCOMP] per component, per_block[blocks], and what matched nothing in *other. */
static void count_params(const trc_model *m, size_t *counts, size_t *per_block, size_t *other) {
    *other = 0;
    for (size_t i = 0; i < m->num_views; i++) {
        const trc_param_view *v = &m->views[i];
        size_t k = 0;
        while (k < NCOMP && !starts(v->name, components[k].prefix) &&
               !starts(v->name, components[k].prefix2))
            k++;
        if (k == NCOMP) {
            *other += v->numel;
            continue;
        }
        counts[k] += v->numel;
        if (k == 2) {
            const char *p = starts(v->name, components[2].prefix) ? components[2].prefix
                                                                  : components[2].prefix2;
            int b = atoi(v->name + strlen(p));
            if (b >= 0 && b < m->cfg.blocks)
                per_block[b] += v->numel;
        }
    }
}

/* The "training" summary of our checkpoints (NULL for a bare export or on error) and the key
 * spelling the file uses (its FFN keys: ffn.0 / ffn.3 are ec6511d's). */
static json_t *training_summary(const char *path, const char **names) {
    trc_safetensors st;
    *names = TRC_NAMES_NEW;
    if (trc_st_read_file(path, &st) != TRC_OK)
        return NULL;
    for (size_t i = 0; i < st.count; i++)
        if (strstr(st.tensors[i].name, ".ffn.0.") || strstr(st.tensors[i].name, ".ffn.3."))
            *names = TRC_NAMES_OLD;
    const char *text = trc_st_meta(&st, "training");
    json_t *j = text ? json_loads(text, 0, NULL) : NULL;
    trc_st_free(&st);
    return j;
}

static void print_text(const char *path, const trc_model *m, const size_t *counts,
                       const size_t *per_block, json_t *training, const char *names) {
    const trc_model_config *c = &m->cfg;
    printf("checkpoint  %s\n", path);
    printf("arch        %s\n", cli_model_arch(c));
    printf("size        %s (d=%d, h=%d, %d reasoning blocks, %d heads)\n", c->size, c->d, c->h,
           c->blocks, c->heads);
    printf("problem     s=%d, m=%d, T=%d, bound=%g\n", c->s, c->m, c->T, (double)c->bound);
    printf("cycles      K=%d outer, n=%d inner\n", c->K, c->n);
    printf("system      %s", c->system[0] ? c->system : "(not recorded)");
    if (c->dt > 0)
        printf(", dt=%g", c->dt);
    printf("\nfeedback    %s", c->feedback ? "on (simulates the system every cycle)" : "off");
    printf("\nnames       %s (ffn keys %s)", names,
           strcmp(names, TRC_NAMES_OLD) ? "ffn.fc_in/ffn.fc_out" : "ffn.0/ffn.3");
    printf("\nnormalise   %s",
           c->norm ? "per component, (x - mean) / std; u = mean + std y" : "no");
    for (int v = 0; c->norm && v < 4; v++) {
        static const char *const labels[] = {"x_mean", "x_std", "u_mean", "u_std"};
        const float *a = v == 0 ? c->x_mean : v == 1 ? c->x_std : v == 2 ? c->u_mean : c->u_std;
        printf("\n  %-9s", labels[v]);
        for (int i = 0; i < (v < 2 ? c->s : c->m); i++)
            printf(" %.6g", (double)a[i]);
    }
    printf("\nkernels     %s (%s)", trc_isa_name(trc_isa_active()), trc_isa_reason());
    printf("\n\nparameters  %zu\n", m->num_params);
    for (size_t k = 0; k < NCOMP; k++) {
        printf("  %-18s %9zu\n", components[k].label, counts[k]);
        for (int b = 0; k == 2 && b < c->blocks; b++)
            printf("    block %-10d %9zu\n", b, per_block[b]);
    }
    if (training) {
        printf("\ntraining\n");
        const char *key;
        json_t *v;
        json_object_foreach(training, key, v) {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(6));
            printf("  %-18s %s\n", key, s ? s : "?");
            free(s);
        }
    } else {
        printf("\ntraining    (no summary: a checkpoint without our metadata)\n");
    }
}

static int print_json(const char *path, const trc_model *m, const size_t *counts,
                      const size_t *per_block, json_t *training, const char *names) {
    const trc_model_config *c = &m->cfg;
    json_t *comp = json_object(), *blocks = json_array();
    for (size_t k = 0; k < NCOMP; k++)
        json_object_set_new(comp, components[k].label, json_integer((json_int_t)counts[k]));
    for (int b = 0; b < c->blocks; b++)
        json_array_append_new(blocks, json_integer((json_int_t)per_block[b]));
    json_t *j = json_pack(
        "{s:s, s:{s:s, s:s, s:i, s:i, s:i, s:f, s:i, s:i, s:i, s:i, s:i, s:i, s:s, "
        "s:f}, s:I, s:o, s:o, s:O, s:{s:s, s:s, s:s}}",
        "checkpoint", path, "config", "arch", cli_model_arch(c), "size", c->size, "s", c->s, "m",
        c->m, "T", c->T, "bound", (double)c->bound, "d", c->d, "h", c->h, "blocks", c->blocks,
        "heads", c->heads, "K", c->K, "n", c->n, "system", c->system, "dt", c->dt, "parameters",
        (json_int_t)m->num_params, "components", comp, "block_parameters", blocks, "training",
        training ? training : json_null(), "kernels", "isa", trc_isa_name(trc_isa_active()), "best",
        trc_isa_name(trc_isa_best()), "reason", trc_isa_reason());
    json_t *cj = j ? json_object_get(j, "config") : NULL;
    if (cj) { /* named as trcd's /v1/models names them */
        json_object_set_new(cj, "feedback", json_boolean(c->feedback));
        json_object_set_new(cj, "normalised", json_boolean(c->norm));
        json_object_set_new(cj, "time_left", json_boolean(c->time_left));
    }
    if (j)
        json_object_set_new(j, "names", json_string(names));
    if (j && c->norm) { /* the normalisation statistics (docs/checkpoints.md) */
        json_t *nm = json_object();
        for (int v = 0; v < 4; v++) {
            static const char *const labels[] = {"x_mean", "x_std", "u_mean", "u_std"};
            const float *a = v == 0 ? c->x_mean : v == 1 ? c->x_std : v == 2 ? c->u_mean : c->u_std;
            json_t *arr = json_array();
            for (int i = 0; i < (v < 2 ? c->s : c->m); i++)
                json_array_append_new(arr, json_real((double)a[i]));
            json_object_set_new(nm, labels[v], arr);
        }
        json_object_set_new(json_object_get(j, "config"), "normalisation", nm);
    }
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(j);
    if (!text)
        return cli_error(CLI_FAIL, CMD, "out of memory");
    printf("%s\n", text);
    free(text);
    return CLI_OK;
}

int cmd_info(int argc, char **argv) {
    cli_model_flags mf = {0};
    int as_json = 0;
    const char *names = NULL, *out = NULL;
    cli_opt opts[] = {
        CLI_MODEL_OPTS(mf),
        CLI_OPT("--json", CLI_BOOL, &as_json, "", "print JSON instead of text"),
        CLI_OPT("--names", CLI_STR, &names, "NAMES",
                "with --out: the key spelling to write, " TRC_NAMES_NEW " (ffn.fc_in/fc_out, "
                "the default) or " TRC_NAMES_OLD " (ffn.0/ffn.3)"),
        CLI_OPT("--out", CLI_STR, &out, "FILE",
                "also write the checkpoint (configuration in its metadata) spelled as --names "
                "says"),
    };
    const size_t nopts = sizeof opts / sizeof opts[0];
    int rc = cli_parse(CMD, argc, argv, opts, nopts);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, CMD, "--checkpoint FILE [--json] [--out FILE [--names NAMES]]",
                       "Shows a checkpoint's configuration, the parameter count of each component "
                       "and its training summary.",
                       opts, nopts);
        return CLI_OK;
    }
    if (rc)
        return rc;
    if (names && strcmp(names, TRC_NAMES_NEW) && strcmp(names, TRC_NAMES_OLD))
        return cli_error(CLI_USAGE, CMD,
                         "--names must be " TRC_NAMES_NEW " or " TRC_NAMES_OLD ", got '%s'", names);
    if (names && !out)
        return cli_error(CLI_USAGE, CMD, "--names says how --out FILE is spelled: give --out");
    trc_model m;
    if ((rc = cli_model_load(CMD, &mf, &m)) != 0)
        return rc;
    size_t counts[NCOMP] = {0}, per_block[TRC_MAX_BLOCKS] = {0}, other = 0;
    count_params(&m, counts, per_block, &other);
    if (other) {
        trc_model_free(&m);
        return cli_error(CLI_FAIL, CMD, "%s: %zu parameters belong to no known component",
                         mf.checkpoint, other);
    }
    const char *spelled;
    json_t *training = training_summary(mf.checkpoint, &spelled);
    if (out) { /* the same summary, the parameters spelled as asked */
        char *summary = training ? json_dumps(training, JSON_COMPACT) : NULL;
        rc = trc_checkpoint_save_names(out, &m, names ? names : TRC_NAMES_NEW, summary);
        free(summary);
        if (rc) {
            json_decref(training);
            trc_model_free(&m);
            return cli_lib_error(CMD, rc, 0);
        }
    }
    if (as_json)
        rc = print_json(mf.checkpoint, &m, counts, per_block, training, spelled);
    else
        print_text(mf.checkpoint, &m, counts, per_block, training, spelled);
    json_decref(training);
    trc_model_free(&m);
    return rc;
}
