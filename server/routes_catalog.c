/* GET /v1/catalog: systems, experts, architectures, objectives and option descriptors, from
 * core's tables (proto/catalog.c builds it). The dashboard builds its forms from it. */
#include "catalog.h"
#include "routes.h"

static void on_catalog(struct app *a, const http_request *req, http_response *res) {
    (void)a;
    if (http_query_refuse(req, res, NULL))
        return;
    json_t *cat = proto_catalog_json();
    if (!cat) {
        http_reply_error(res, 500, NULL, "out of memory building the catalogue");
        return;
    }
    http_reply_json(res, 200, cat);
}

int routes_catalog_register(http_server *srv) {
    return http_route(srv, "GET", "/v1/catalog", 0, on_catalog);
}
