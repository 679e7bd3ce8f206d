/* The bearer token of a trcd that listens beyond loopback. Like Jupyter: with no TRC_API_TOKEN
 * and no --insecure-no-auth, a server reachable from other hosts makes a random token, logs it
 * once and keeps it in <data-dir>/api-token (mode 0600, reused on restart), so nobody who can
 * merely reach the port can train, load or delete models. */
#ifndef TRCD_API_TOKEN_H
#define TRCD_API_TOKEN_H

#include <stddef.h>

#include "app.h"

/* 1 when host names only this machine (127.0.0.0/8, ::1, localhost). */
int api_token_host_is_loopback(const char *host);
/* Sets cfg->api_token when the rule above asks for one. Returns 0, or -1 with err. */
int api_token_ensure(app_config *cfg, char *err, size_t errlen);

#endif
