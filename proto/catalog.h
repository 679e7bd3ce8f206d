/* GET /v1/catalog: what libtrc offers, built from core's tables so that clients (the dashboard)
 * spell nothing themselves: systems with their dimensions and defaults, experts with the
 * systems they accept and their parameters, architectures and sizes, objectives, and the
 * option descriptors of every option set. Also the TrainSpec schema of openapi.yaml. */
#ifndef TRC_PROTO_CATALOG_H
#define TRC_PROTO_CATALOG_H

#include <jansson.h>

/* The whole catalogue; NULL on allocation failure. */
json_t *proto_catalog_json(void);
/* {"type": "object", "additionalProperties": false, "properties": {...}}: POST /v1/train's
 * body, one property per wire option (and "name"); openapi.yaml's TrainSpec is generated from
 * it (`trc catalog --openapi`). */
json_t *proto_train_spec_schema(void);

#endif
