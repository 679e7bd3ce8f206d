/* `trc catalog`: what libtrc offers (systems, experts, architectures, objectives, option
 * descriptors) as the JSON GET /v1/catalog serves; `--openapi` prints the TrainSpec schema
 * block of proto/openapi.yaml, generated from the option tables (scripts/openapi_trainspec.py
 * splices it in; tests check that the file agrees). */
#include "cli.h"
#include "commands.h"

#include "catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *CMD = "catalog";

/* Prints JSON text with every exponent number given a fraction (1e-5 -> 1.0e-5): YAML 1.1
 * readers (PyYAML) take "1e-5" for a string. */
static void print_yaml_json(const char *t) {
    int in_str = 0;
    for (const char *p = t; *p; p++) {
        if (in_str) {
            putchar(*p);
            if (*p == '\\' && p[1])
                putchar(*++p);
            else if (*p == '"')
                in_str = 0;
            continue;
        }
        if (*p == '"') {
            in_str = 1;
            putchar(*p);
            continue;
        }
        if ((*p >= '0' && *p <= '9') || *p == '-') {
            size_t n = strspn(p, "0123456789-+.eE");
            int dot = memchr(p, '.', n) != NULL;
            for (size_t i = 0; i < n; i++) {
                if ((p[i] == 'e' || p[i] == 'E') && !dot)
                    fputs(".0", stdout);
                putchar(p[i]);
            }
            p += n - 1;
            continue;
        }
        putchar(*p);
    }
}

/* YAML flow style is JSON: one line per property keeps the file readable and diffable. */
static int print_openapi(void) {
    json_t *schema = proto_train_spec_schema();
    if (!schema)
        return cli_error(CLI_FAIL, CMD, "out of memory");
    printf("    TrainSpec:\n      type: object\n      additionalProperties: false\n"
           "      description: '%s'\n      properties:\n",
           json_string_value(json_object_get(schema, "description")));
    const char *key;
    json_t *val;
    json_object_foreach(json_object_get(schema, "properties"), key, val) {
        char *text = json_dumps(val, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
        if (!text) {
            json_decref(schema);
            return cli_error(CLI_FAIL, CMD, "out of memory");
        }
        printf("        %s: ", key);
        print_yaml_json(text);
        putchar('\n');
        free(text);
    }
    json_decref(schema);
    return CLI_OK;
}

int cmd_catalog(int argc, char **argv) {
    int openapi = 0;
    cli_opt opts[] = {
        CLI_OPT("--openapi", CLI_BOOL, &openapi, "",
                "print the TrainSpec schema block of proto/openapi.yaml instead"),
    };
    const size_t nopts = sizeof opts / sizeof opts[0];
    int rc = cli_parse(CMD, argc, argv, opts, nopts);
    if (rc == CLI_HELP) {
        cli_print_help(stdout, CMD, "[--openapi]",
                       "Prints what this build offers as JSON, the same document trcd serves at "
                       "GET /v1/catalog:\nsystems, experts, architectures, objectives and "
                       "every option with its type, default and range.",
                       opts, nopts);
        return CLI_OK;
    }
    if (rc)
        return rc;
    if (openapi)
        return print_openapi();
    json_t *cat = proto_catalog_json();
    char *text = cat ? json_dumps(cat, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(cat);
    if (!text)
        return cli_error(CLI_FAIL, CMD, "out of memory");
    printf("%s\n", text);
    free(text);
    return CLI_OK;
}
