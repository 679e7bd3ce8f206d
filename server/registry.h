/* The model registry: models by name, each a reference-counted read-only snapshot. A request
 * takes a reference for its whole life; a reload swaps the pointer under a lock and the old
 * snapshot is freed when its last reader lets go, so a reload never disturbs a request. */
#ifndef TRCD_REGISTRY_H
#define TRCD_REGISTRY_H

#include <jansson.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "proto.h"
#include "trc/model.h"
#include "trc/system.h"

typedef struct model_snapshot {
    atomic_long refs;
    char name[PROTO_NAME_MAX + 1];
    trc_model model;
    trc_infer_plan *plan;     /* the model's weights prepared for small batches (batcher.c) */
    const trc_system *system; /* the system simulated for final_state/cost */
    double dt;
    char checkpoint[1024]; /* path relative to the models directory */
    char sha256[65];       /* hex digest of the checkpoint bytes: the model's version */
    char loaded_at[32];    /* RFC 3339 UTC */
} model_snapshot;

typedef struct registry registry;

int registry_create(const char *models_dir, registry **out);
/* At most max models loaded at once (0 = no limit): a load or upload of a new name beyond it
 * is refused with 507. */
void registry_set_max_models(registry *reg, size_t max);
/* The time step of checkpoints that record none (trcd --dt); 0 (the default): they are
 * refused with a 400 saying how to give one. Set before loading. */
void registry_set_default_dt(registry *reg, double dt);
/* --precision: the weights of the plans of models loaded from now on (TRC_PRECISION_FP32 by
 * default); a model whose architecture has no plan of that precision is refused (400). */
void registry_set_precision(registry *reg, trc_precision precision);
/* 0 when `name` is loaded or one more model fits, else 507 in err. */
int registry_check_room(registry *reg, const char *name, proto_error *err);
void registry_free(registry *reg);
/* Start-up: deletes stale temporary files (an interrupted write), loads the served set recorded
 * in <models-dir>/.trcd-served.json (kept up to date by every load, upload and delete), then
 * every other *.safetensors no entry of it serves, named by file stem (all of them on a first
 * start). A file that fails is logged (one line on stderr) and skipped. Returns the number
 * loaded. */
int registry_load_dir(registry *reg);

/* The snapshot named `name` (NULL or "" = "default") with a reference taken, or NULL. */
model_snapshot *registry_get(registry *reg, const char *name);
void snapshot_retain(model_snapshot *snap);
void snapshot_release(model_snapshot *snap);

/* Loads relpath (inside the models directory; absolute paths, ".." and symlinks leading out are
 * refused with 400) and publishes it as `name`, replacing any model of that name atomically.
 * On failure (400 with the loader's reason, 404 for a missing file) the old model stays. */
int registry_load_file(registry *reg, const char *name, const char *relpath, proto_error *err);
/* Validates a checkpoint given as bytes, stores it atomically as <models_dir>/<name>.safetensors
 * and publishes it. The old model and file stay when validation fails. dt > 0 (an upload's
 * ?dt=) is the time step of a checkpoint whose metadata and sidecar record none, then recorded
 * in its sidecar <name>.json (so a restart serves it the same); where they record one, dt
 * must agree (400 naming "dt"). 0: none given. */
int registry_load_bytes(registry *reg, const char *name, const uint8_t *buf, size_t len, double dt,
                        proto_error *err);
/* Unloads `name` and deletes its checkpoint file unless another model uses it (404 if absent). */
int registry_remove(registry *reg, const char *name, proto_error *err);

size_t registry_count(registry *reg);
/* {"models": [ModelInfo...]} sorted by name. */
json_t *registry_list_json(registry *reg);
/* ModelInfo of one snapshot. */
json_t *snapshot_info_json(const model_snapshot *snap);
/* Counters for /metrics. */
void registry_load_counts(registry *reg, uint64_t *loads, uint64_t *failures);

#endif
