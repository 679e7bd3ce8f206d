/* Option descriptors (trc/option.h) on the wire: a JSON field read into its struct field with
 * the table's type, range (job_max applies: the wire feeds a shared server) and choices; a field
 * back to JSON; a descriptor as the catalogue lists it; and its OpenAPI schema. */
#ifndef TRC_PROTO_OPTION_JSON_H
#define TRC_PROTO_OPTION_JSON_H

#include <jansson.h>

#include "proto.h"
#include "trc/option.h"

/* obj[o->name] into the field at base: 0 when absent (field untouched), 1 when read, -1 with a
 * 400 naming the field ("epochs must be between 1 and 10000, got 0"). */
int proto_option_read(const json_t *obj, const trc_option *o, void *base, proto_error *err);
/* Checks the field's value as proto_option_read would have: 0 or -1 with a 400. */
int proto_option_check(const trc_option *o, const void *base, proto_error *err);
/* The field as JSON (a u64 past INT64_MAX as a decimal string); NULL on allocation failure. */
json_t *proto_option_value(const trc_option *o, const void *base);
/* The descriptor for GET /v1/catalog: name, flag, type, default (or default_text), minimum,
 * maximum (the served limit), exclusive ends, choices, help, unit, where. */
json_t *proto_option_descriptor(const trc_option *o);
/* The OpenAPI 3.0 schema of the field: type, default, bounds, enum, description. */
json_t *proto_option_schema(const trc_option *o);

#endif
