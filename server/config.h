/* trcd's configuration: every flag "--name value" (or "--name=value") also read from the
 * environment as TRC_NAME (upper case, '-' -> '_'); a flag wins over the environment, which
 * wins over the default. TRC_API_TOKEN is environment-only (a token on the command line would
 * show in `ps`). */
#ifndef TRCD_CONFIG_H
#define TRCD_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "app.h"

/* Fills cfg from defaults, the environment and argv. Returns 0, 1 when --help or --version
 * was asked (the text is printed to out), or -1 with a one-line message in err. */
int app_config_parse(int argc, char **argv, app_config *cfg, FILE *out, char *err, size_t errlen);
void app_config_usage(FILE *f);

#endif
