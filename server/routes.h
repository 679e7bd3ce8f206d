/* Route tables of trcd, one registration function per file (routes_<area>.c). The jobs
 * routes are registered by the jobs subsystem (server/jobs.h). */
#ifndef TRCD_ROUTES_H
#define TRCD_ROUTES_H

#include "http.h"

/* POST /v1/control and its alias POST /control. */
int routes_control_register(http_server *srv);
/* GET /v1/models, GET|DELETE /v1/models/{name}, POST /v1/models/{name}/load. */
int routes_models_register(http_server *srv);
/* GET /v1/catalog: what libtrc offers, from its tables (routes_catalog.c). */
int routes_catalog_register(http_server *srv);
/* GET /healthz, /readyz, /metrics. */
int routes_ops_register(http_server *srv);
/* GET /{path*}: the dashboard's static files; register last. */
int routes_static_register(http_server *srv);

#endif
