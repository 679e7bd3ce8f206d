/* The model registry (see registry.h): loading checkpoints from the models directory or from
 * bytes, deciding each model's system, versions (sha256), and atomic swaps of snapshots.
 *
 * A checkpoint without __metadata__ (a bare PyTorch export) cannot tell b, K, n, m or its system.
 * An optional sidecar "<stem>.json" beside it gives them: {"system": "double_integrator",
 * "dt": 0.333, "bound": 4, "K": 3, "n": 3, "m": 1, "norm": {"x_mean": [..], "x_std": [..],
 * "u_mean": [..], "u_std": [..]}} (every key optional; they win over the file's metadata).
 * Otherwise b = 4, K = n = 3, m = 1, and the system is the one entry of the system table whose s, m
 * and default T match the model; none or several: the load fails. The time step is never
 * assumed: without the sidecar's, the metadata's or trcd's --dt the load fails (400) saying so. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "files.h"
#include "log.h"
#include "registry.h"
#include "trc/arch.h"
#include "sha256.h"
#include "trc/checkpoint.h"
#include "trc/error.h"
#include "trc/fileio.h"

#define EXT ".safetensors"
/* The served set (name -> checkpoint), rewritten atomically at every change so that a restart
 * serves the same models: {"models": [{"name": "alias", "checkpoint": "default.safetensors"}]} */
#define MANIFEST ".trcd-served.json"

struct registry {
    char dir[PATH_MAX];        /* the models directory as given */
    char real[PATH_MAX];       /* and resolved */
    pthread_mutex_t lock;      /* guards snaps/count (held only for pointer work) */
    pthread_mutex_t load_lock; /* serializes loads, stores and removals */
    model_snapshot **snaps;
    size_t count, cap;
    size_t max_models;       /* 0 = no limit */
    double dt;               /* --dt: for checkpoints recording none (0: refused) */
    trc_precision precision; /* --precision of the plans */
    int batch;               /* loading the directory at start-up: manifest written once after */
    _Atomic uint64_t loads, failures;
};

int registry_create(const char *models_dir, registry **out) {
    registry *r = calloc(1, sizeof *r);
    if (!r)
        return trc_fail(TRC_ENOMEM, "registry: out of memory");
    snprintf(r->dir, sizeof r->dir, "%s", models_dir);
    if (trc_mkdir_p(models_dir) || !realpath(models_dir, r->real)) {
        free(r);
        return trc_fail(TRC_EIO, "models directory '%s': %s", models_dir, strerror(errno));
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->load_lock, NULL);
    *out = r;
    return 0;
}

static void snapshot_free(model_snapshot *s) {
    trc_infer_plan_free(s->plan);
    trc_model_free(&s->model);
    free(s);
}

void snapshot_retain(model_snapshot *snap) {
    atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
}

void snapshot_release(model_snapshot *snap) {
    if (snap && atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) == 1)
        snapshot_free(snap);
}

void registry_free(registry *reg) {
    if (!reg)
        return;
    for (size_t i = 0; i < reg->count; i++)
        snapshot_release(reg->snaps[i]);
    free(reg->snaps);
    pthread_mutex_destroy(&reg->lock);
    pthread_mutex_destroy(&reg->load_lock);
    free(reg);
}

static long find_locked(registry *reg, const char *name) {
    for (size_t i = 0; i < reg->count; i++)
        if (strcmp(reg->snaps[i]->name, name) == 0)
            return (long)i;
    return -1;
}

model_snapshot *registry_get(registry *reg, const char *name) {
    if (!name || !name[0])
        name = "default";
    pthread_mutex_lock(&reg->lock);
    long i = find_locked(reg, name);
    model_snapshot *s = i >= 0 ? reg->snaps[i] : NULL;
    if (s)
        snapshot_retain(s);
    pthread_mutex_unlock(&reg->lock);
    return s;
}

size_t registry_count(registry *reg) {
    pthread_mutex_lock(&reg->lock);
    size_t n = reg->count;
    pthread_mutex_unlock(&reg->lock);
    return n;
}

void registry_load_counts(registry *reg, uint64_t *loads, uint64_t *failures) {
    *loads = atomic_load(&reg->loads);
    *failures = atomic_load(&reg->failures);
}

/* Puts snap in the table under its name; the replaced snapshot (if any) is released, and
 * freed once the requests still holding it finish. */
static int publish(registry *reg, model_snapshot *snap) {
    pthread_mutex_lock(&reg->lock);
    long i = find_locked(reg, snap->name);
    model_snapshot *old = NULL;
    if (i >= 0) {
        old = reg->snaps[i];
        reg->snaps[i] = snap;
    } else {
        if (reg->count == reg->cap) {
            size_t cap = reg->cap ? reg->cap * 2 : 8;
            model_snapshot **p = realloc(reg->snaps, cap * sizeof *p);
            if (!p) {
                pthread_mutex_unlock(&reg->lock);
                return -1;
            }
            reg->snaps = p;
            reg->cap = cap;
        }
        reg->snaps[reg->count++] = snap;
    }
    pthread_mutex_unlock(&reg->lock);
    snapshot_release(old);
    return 0;
}

/* ---- sidecar and system ---- */

typedef struct sidecar {
    trc_load_overrides ov;
    char system[32];
    double dt;
    char *norm;      /* "norm": normalisation statistics as JSON text (malloc'd), or NULL */
    double given_dt; /* an upload's ?dt= (0: none) */
    int store_dt;    /* given_dt is the model's only time step: record it in the sidecar */
} sidecar;

/* Reads "<stem>.json" beside the checkpoint if it exists. */
static int read_sidecar(const char *ckpt_path, sidecar *sc, proto_error *err) {
    memset(sc, 0, sizeof *sc);
    char path[PATH_MAX];
    size_t n = strlen(ckpt_path);
    size_t ext = strlen(EXT);
    if (n < ext || strcmp(ckpt_path + n - ext, EXT) != 0)
        return 0;
    snprintf(path, sizeof path, "%.*s.json", (int)(n - ext), ckpt_path);
    if (access(path, F_OK) != 0)
        return 0;
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        return proto_fail(err, 400, "checkpoint", "sidecar %s: malformed JSON at line %d: %s", path,
                          je.line, je.text);
    }
    static const char *const keys[] = {"system", "dt", "bound", "K", "n", "m", "norm", NULL};
    const char *system = NULL;
    double dt = 0, bound = 0;
    long long K = 0, nn = 0, m = 0;
    proto_error e;
    int rc = 0;
    if (proto_check_keys(root, keys, &e) || proto_get_string(root, "system", &system, &e) < 0 ||
        proto_get_number(root, "dt", 1e-9, 1e6, &dt, &e) < 0 ||
        proto_get_number(root, "bound", 1e-9, 1e9, &bound, &e) < 0 ||
        proto_get_int(root, "K", 1, 1000, &K, &e) < 0 ||
        proto_get_int(root, "n", 1, 1000, &nn, &e) < 0 ||
        proto_get_int(root, "m", 1, PROTO_MAX_DIM, &m, &e) < 0)
        rc = proto_fail(err, 400, "checkpoint", "sidecar %s: %s", path, e.message);
    if (!rc) {
        snprintf(sc->system, sizeof sc->system, "%s", system ? system : "");
        sc->dt = dt;
        sc->ov.bound = (float)bound;
        sc->ov.K = (int)K;
        sc->ov.n = (int)nn;
        sc->ov.m = (int)m;
        json_t *norm = json_object_get(root, "norm");
        if (norm && !(sc->norm = json_dumps(norm, JSON_COMPACT | JSON_ENCODE_ANY)))
            rc = proto_fail(err, 500, NULL, "out of memory");
    }
    json_decref(root);
    return rc;
}

/* The system of a model: sidecar, metadata, or the unique match of (s, m, T). */
static int pick_system(const registry *reg, model_snapshot *snap, sidecar *sc, proto_error *err) {
    trc_model_config *c = &snap->model.cfg;
    /* the one rule (trc_system_resolve): sidecar, metadata, else the one system of the shape */
    const char *name = sc->system[0] ? sc->system : c->system;
    int rc = trc_system_resolve(name, "the model", c->s, c->m, c->T, &snap->system);
    if (rc == TRC_EINVAL && !name[0])
        return proto_fail(err, 400, "checkpoint",
                          "checkpoint: %s: add a sidecar <stem>.json with {\"system\": ...}",
                          trc_errmsg());
    if (rc)
        return proto_fail(err, 400, "checkpoint", "checkpoint: %s", trc_errmsg());
    /* a time step is never assumed (the original project used 5/15, later 0.33) */
    double own = sc->dt > 0                                                            ? sc->dt
                 : (!sc->system[0] || strcmp(sc->system, c->system) == 0) && c->dt > 0 ? c->dt
                                                                                       : 0;
    if (sc->given_dt > 0 && own > 0 && fabs(own - sc->given_dt) > 1e-12 * own)
        return proto_fail(err, 400, "dt",
                          "dt=%.9g differs from the time step the %s records (%.9g): leave "
                          "out dt, or fix the %s",
                          sc->given_dt, sc->dt > 0 ? "sidecar <name>.json" : "checkpoint", own,
                          sc->dt > 0 ? "sidecar" : "checkpoint");
    sc->store_dt = sc->given_dt > 0 && !(own > 0);
    snap->dt = own > 0 ? own : sc->given_dt > 0 ? sc->given_dt : reg->dt;
    if (!(snap->dt > 0))
        return proto_fail(err, 400, "checkpoint",
                          "checkpoint records no time step (dt) for %s: add a sidecar <stem>.json "
                          "beside it in the models directory with {\"dt\": ...}, or start trcd "
                          "with --dt (the original project used 5/15 in its first version and "
                          "0.33 later)",
                          snap->system->name);
    snprintf(c->system, sizeof c->system, "%s", snap->system->name);
    c->dt = snap->dt;
    return 0;
}

/* Decodes buf (the bytes of relpath) into a new snapshot named `name`; given_dt (an upload's
 * ?dt=, 0: none) is its time step when neither its sidecar nor its metadata records one
 * (*store_dt set: the caller records it in the sidecar) and must agree with them otherwise. */
static int build_snapshot(registry *reg, const char *name, const char *relpath, const uint8_t *buf,
                          size_t len, double given_dt, int *store_dt, model_snapshot **out,
                          proto_error *err) {
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", reg->real, relpath);
    sidecar sc;
    if (read_sidecar(path, &sc, err))
        return -1;
    sc.given_dt = given_dt;
    model_snapshot *snap = calloc(1, sizeof *snap);
    if (!snap) {
        free(sc.norm);
        return proto_fail(err, 500, NULL, "out of memory");
    }
    if (trc_checkpoint_decode(buf, len, &sc.ov, &snap->model)) {
        free(sc.norm);
        free(snap);
        return proto_fail(err, 400, "checkpoint", "%s", trc_errmsg());
    }
    /* the sidecar's normalisation statistics (a checkpoint without them, the original's) */
    if (sc.norm && trc_model_norm_from_json(&snap->model.cfg, sc.norm)) {
        free(sc.norm);
        snapshot_free(snap);
        return proto_fail(err, 400, "checkpoint", "sidecar: %s", trc_errmsg());
    }
    free(sc.norm);
    if (pick_system(reg, snap, &sc, err)) {
        snapshot_free(snap);
        return -1;
    }
    if (store_dt)
        *store_dt = sc.store_dt;
    int prc = trc_infer_plan_create_precision(&snap->model, reg->precision, &snap->plan);
    if (prc) {
        snapshot_free(snap);
        return proto_fail(err, prc == TRC_EUNSUPPORTED ? 400 : 500,
                          prc == TRC_EUNSUPPORTED ? "checkpoint" : NULL, "%s", trc_errmsg());
    }
    atomic_init(&snap->refs, 1);
    snprintf(snap->name, sizeof snap->name, "%s", name);
    snprintf(snap->checkpoint, sizeof snap->checkpoint, "%s", relpath);
    sha256_hex(buf, len, snap->sha256);
    log_now_rfc3339(snap->loaded_at);
    *out = snap;
    return 0;
}

/* Resolves relpath inside the models directory (no escape through symlinks either). */
static int resolve(registry *reg, const char *relpath, char resolved[PATH_MAX], proto_error *err) {
    if (proto_check_relpath(relpath, "checkpoint", err))
        return -1;
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%s", reg->real, relpath);
    if (!realpath(path, resolved)) {
        if (errno == ENOENT || errno == ENOTDIR)
            return proto_fail(err, 404, "checkpoint",
                              "checkpoint '%s' not found in the models "
                              "directory",
                              relpath);
        return proto_fail(err, 400, "checkpoint", "checkpoint '%s': %s", relpath, strerror(errno));
    }
    size_t n = strlen(reg->real);
    if (strncmp(resolved, reg->real, n) != 0 || resolved[n] != '/')
        return proto_fail(err, 400, "checkpoint",
                          "checkpoint '%s' leads outside the models directory", relpath);
    struct stat st;
    if (stat(resolved, &st) || !S_ISREG(st.st_mode))
        return proto_fail(err, 400, "checkpoint", "checkpoint '%s' is not a regular file", relpath);
    return 0;
}

void registry_set_default_dt(registry *reg, double dt) {
    reg->dt = dt;
}

void registry_set_precision(registry *reg, trc_precision precision) {
    reg->precision = precision;
}

void registry_set_max_models(registry *reg, size_t max) {
    reg->max_models = max;
}

int registry_check_room(registry *reg, const char *name, proto_error *err) {
    pthread_mutex_lock(&reg->lock);
    size_t n = reg->count;
    int full = reg->max_models && n >= reg->max_models && find_locked(reg, name) < 0;
    pthread_mutex_unlock(&reg->lock);
    if (full)
        return proto_fail(err, 507, "name",
                          "%zu models are loaded, the limit (--max-models): delete one "
                          "(DELETE /v1/models/{name}) before adding '%s'",
                          n, name);
    return 0;
}

/* Writes the served set to MANIFEST (load_lock held). A failure is logged: the models stay
 * served, only a restart would fall back to loading every file by its stem. */
static void write_manifest_locked(registry *reg) {
    if (reg->batch)
        return;
    json_t *arr = json_array();
    pthread_mutex_lock(&reg->lock);
    for (size_t i = 0; arr && i < reg->count; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "name", reg->snaps[i]->name,
                                             "checkpoint", reg->snaps[i]->checkpoint));
    pthread_mutex_unlock(&reg->lock);
    json_t *root = arr ? json_pack("{s:o}", "models", arr) : NULL;
    char *text = root ? json_dumps(root, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
    json_decref(root);
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/" MANIFEST, reg->real);
    if (!text || trc_write_file_atomic(path, text, strlen(text)) != TRC_OK)
        log_msg("models directory: cannot record the served models in " MANIFEST ": %s",
                text ? trc_errmsg() : "out of memory");
    free(text);
}

/* Server paths never reach a client: messages name files relative to the models directory. */
static void scrub(registry *reg, proto_error *err) {
    if (err) {
        files_scrub(err->message, reg->real);
        files_scrub(err->message, reg->dir);
    }
}

static int load_file_locked(registry *reg, const char *name, const char *relpath,
                            proto_error *err) {
    char resolved[PATH_MAX];
    if (proto_check_name(name, "name", err) || resolve(reg, relpath, resolved, err) ||
        registry_check_room(reg, name, err))
        return -1;
    uint8_t *buf;
    size_t len;
    if (trc_read_file(resolved, &buf, &len))
        return proto_fail(err, 400, "checkpoint", "%s", trc_errmsg());
    model_snapshot *snap = NULL;
    int rc = build_snapshot(reg, name, relpath, buf, len, 0, NULL, &snap, err);
    free(buf);
    if (!rc && publish(reg, snap)) {
        snapshot_free(snap);
        rc = proto_fail(err, 500, NULL, "out of memory");
    }
    if (!rc)
        write_manifest_locked(reg);
    return rc;
}

int registry_load_file(registry *reg, const char *name, const char *relpath, proto_error *err) {
    pthread_mutex_lock(&reg->load_lock);
    int rc = load_file_locked(reg, name, relpath, err);
    pthread_mutex_unlock(&reg->load_lock);
    if (rc)
        scrub(reg, err);
    atomic_fetch_add(rc ? &reg->failures : &reg->loads, 1);
    if (!rc)
        log_msg("model '%s' loaded from %s", name, relpath);
    else
        log_msg("model '%s' not loaded from %s: %s", name, relpath, err ? err->message : "");
    return rc;
}

/* Records dt in the sidecar <stem>.json of relpath (its other entries kept), atomically. The
 * previous text is returned in *old (NULL when there was no sidecar) to undo it. */
static int store_sidecar_dt(registry *reg, const char *relpath, double dt, uint8_t **old,
                            size_t *old_len, proto_error *err) {
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%.*s.json", reg->real, (int)(strlen(relpath) - strlen(EXT)),
             relpath);
    *old = NULL;
    *old_len = 0;
    if (access(path, F_OK) == 0 && trc_read_file(path, old, old_len))
        return proto_fail(err, 500, NULL, "reading the sidecar: %s", trc_errmsg());
    json_error_t je;
    json_t *root = *old ? json_loadb((const char *)*old, *old_len, 0, &je) : json_object();
    char *text = NULL;
    if (!root || json_object_set_new(root, "dt", json_real(dt)) ||
        !(text = json_dumps(root, JSON_INDENT(1) | JSON_REAL_PRECISION(17)))) {
        json_decref(root);
        return proto_fail(err, 500, NULL, "writing the sidecar: out of memory");
    }
    json_decref(root);
    int rc = trc_write_file_atomic(path, text, strlen(text));
    free(text);
    if (rc)
        return proto_fail(err, 500, NULL, "writing the sidecar: %s", trc_errmsg());
    return 0;
}

/* Puts back the sidecar store_sidecar_dt replaced (old NULL: there was none). */
static void restore_sidecar(registry *reg, const char *relpath, const uint8_t *old,
                            size_t old_len) {
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/%.*s.json", reg->real, (int)(strlen(relpath) - strlen(EXT)),
             relpath);
    if (old ? trc_write_file_atomic(path, old, old_len) != TRC_OK : unlink(path) != 0)
        log_msg("models directory: cannot restore the sidecar of %s", relpath);
}

int registry_load_bytes(registry *reg, const char *name, const uint8_t *buf, size_t len, double dt,
                        proto_error *err) {
    if (proto_check_name(name, "name", err)) {
        atomic_fetch_add(&reg->failures, 1);
        return -1;
    }
    char relpath[PROTO_NAME_MAX + sizeof EXT];
    snprintf(relpath, sizeof relpath, "%s" EXT, name);
    pthread_mutex_lock(&reg->load_lock);
    model_snapshot *snap = NULL;
    int store_dt = 0;
    /* validate first: a bad upload never replaces the file on disk nor the loaded model */
    int rc = registry_check_room(reg, name, err);
    if (!rc)
        rc = build_snapshot(reg, name, relpath, buf, len, dt, &store_dt, &snap, err);
    if (!rc) {
        char path[PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/%s", reg->real, relpath);
        uint8_t *old = NULL;
        size_t old_len = 0;
        /* the given dt goes to the sidecar first, so that a restart serves the file as now */
        if (store_dt)
            rc = store_sidecar_dt(reg, relpath, dt, &old, &old_len, err);
        if (!rc && trc_write_file_atomic(path, buf, len)) {
            rc = proto_fail(err, 500, NULL, "storing the checkpoint: %s", trc_errmsg());
            if (store_dt)
                restore_sidecar(reg, relpath, old, old_len);
        } else if (!rc && publish(reg, snap)) {
            rc = proto_fail(err, 500, NULL, "out of memory");
        }
        free(old);
        if (rc)
            snapshot_free(snap);
        else
            write_manifest_locked(reg);
    }
    pthread_mutex_unlock(&reg->load_lock);
    if (rc)
        scrub(reg, err);
    atomic_fetch_add(rc ? &reg->failures : &reg->loads, 1);
    if (!rc)
        log_msg("model '%s' uploaded (%zu bytes)%s", name, len,
                store_dt ? "; its dt recorded in its sidecar" : "");
    else
        log_msg("model '%s' upload refused: %s", name, err ? err->message : "");
    return rc;
}

/* Loads the models the manifest lists (the served set when trcd stopped). */
static int load_manifest(registry *reg, json_t **claimed) {
    char path[PATH_MAX * 2];
    snprintf(path, sizeof path, "%s/" MANIFEST, reg->real);
    *claimed = NULL;
    if (access(path, F_OK) != 0)
        return 0;
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    json_t *list = json_object_get(root, "models");
    if (!json_is_array(list)) {
        log_msg("models directory: " MANIFEST " is malformed (%s); loading every checkpoint",
                root ? "no \"models\" array" : je.text);
        json_decref(root);
        return 0;
    }
    int loaded = 0;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *ckpt = json_string_value(json_object_get(e, "checkpoint"));
        proto_error err;
        if (!name || !ckpt) {
            log_msg("models directory: " MANIFEST " entry %zu has no name or checkpoint", i);
            continue;
        }
        if (registry_load_file(reg, name, ckpt, &err) == 0)
            loaded++;
    }
    *claimed = json_incref(list);
    json_decref(root);
    return loaded;
}

/* 1 when a manifest entry serves file (a checkpoint's relative path). */
static int is_claimed(const json_t *claimed, const char *file) {
    size_t i;
    json_t *e;
    json_array_foreach(claimed, i, e) {
        const char *ckpt = json_string_value(json_object_get(e, "checkpoint"));
        if (ckpt && strcmp(ckpt, file) == 0)
            return 1;
    }
    return 0;
}

int registry_load_dir(registry *reg) {
    int stale = files_remove_stale_tmp(reg->real);
    if (stale > 0)
        log_msg("models directory: removed %d stale temporary file(s) left by an interrupted "
                "write",
                stale);
    DIR *d = opendir(reg->real);
    if (!d) {
        log_msg("models directory %s: %s", reg->dir, strerror(errno));
        return 0;
    }
    reg->batch = 1;
    json_t *claimed = NULL;
    int loaded = load_manifest(reg, &claimed);
    /* then every checkpoint no manifest entry serves (all of them on a first start): files
     * added while trcd was stopped, named by their stem */
    struct dirent *e;
    size_t ext = strlen(EXT);
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || n <= ext || strcmp(e->d_name + n - ext, EXT) != 0 ||
            is_claimed(claimed, e->d_name))
            continue;
        char stem[PROTO_NAME_MAX + 1];
        if (n - ext > PROTO_NAME_MAX) {
            log_msg("skipping %s: name too long", e->d_name);
            continue;
        }
        snprintf(stem, sizeof stem, "%.*s", (int)(n - ext), e->d_name);
        proto_error err;
        if (proto_check_name(stem, "name", &err)) {
            log_msg("skipping %s: %s", e->d_name, err.message);
            continue;
        }
        model_snapshot *have = registry_get(reg, stem);
        snapshot_release(have);
        if (have) {
            log_msg("skipping %s: the manifest serves another checkpoint as '%s'", e->d_name, stem);
            continue;
        }
        if (registry_load_file(reg, stem, e->d_name, &err) == 0)
            loaded++;
    }
    closedir(d);
    json_decref(claimed);
    pthread_mutex_lock(&reg->load_lock);
    reg->batch = 0;
    write_manifest_locked(reg);
    pthread_mutex_unlock(&reg->load_lock);
    return loaded;
}

int registry_remove(registry *reg, const char *name, proto_error *err) {
    pthread_mutex_lock(&reg->load_lock);
    pthread_mutex_lock(&reg->lock);
    long i = find_locked(reg, name);
    model_snapshot *snap = NULL;
    int shared = 0;
    if (i >= 0) {
        snap = reg->snaps[i];
        reg->snaps[i] = reg->snaps[--reg->count];
        for (size_t j = 0; j < reg->count; j++)
            if (strcmp(reg->snaps[j]->checkpoint, snap->checkpoint) == 0)
                shared = 1;
    }
    pthread_mutex_unlock(&reg->lock);
    int rc = 0;
    if (!snap) {
        rc = proto_fail(err, 404, "name", "model '%s' not found", name);
    } else {
        if (!shared) {
            char path[PATH_MAX * 2];
            snprintf(path, sizeof path, "%s/%s", reg->real, snap->checkpoint);
            if (unlink(path) && errno != ENOENT)
                log_msg("model '%s': removing %s: %s", name, snap->checkpoint, strerror(errno));
        }
        log_msg("model '%s' deleted", name);
        snapshot_release(snap);
        write_manifest_locked(reg);
    }
    pthread_mutex_unlock(&reg->load_lock);
    return rc;
}

/* ---- JSON ---- */

json_t *snapshot_info_json(const model_snapshot *s) {
    const trc_model_config *c = &s->model.cfg;
    json_t *cfg = json_pack(
        "{s:i, s:i, s:i, s:f, s:i, s:i, s:i, s:i, s:i, s:i, s:s, s:f, s:b, s:b, s:b}", "s", c->s,
        "m", c->m, "T", c->T, "bound", (double)c->bound, "d", c->d, "h", c->h, "blocks", c->blocks,
        "heads", c->heads, "K", c->K, "n", c->n, "system", s->system->name, "dt", s->dt, "feedback",
        c->feedback != 0, "normalised", c->norm != 0, "time_left", c->time_left != 0);
    const trc_arch *arch = trc_arch_of(c);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:o, s:s, s:s, s:s}", "name", s->name, "arch",
                     arch ? arch->name : c->arch, "system", s->system->name, "size", c->size,
                     "num_params", (json_int_t)s->model.num_params, "config", cfg, "checkpoint",
                     s->checkpoint, "sha256", s->sha256, "loaded_at", s->loaded_at);
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(model_snapshot *const *)a)->name, (*(model_snapshot *const *)b)->name);
}

json_t *registry_list_json(registry *reg) {
    pthread_mutex_lock(&reg->lock);
    size_t n = reg->count;
    model_snapshot **copy = malloc((n ? n : 1) * sizeof *copy);
    for (size_t i = 0; copy && i < n; i++) {
        copy[i] = reg->snaps[i];
        snapshot_retain(copy[i]);
    }
    pthread_mutex_unlock(&reg->lock);
    if (!copy)
        return NULL;
    qsort(copy, n, sizeof *copy, by_name);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        if (arr)
            json_array_append_new(arr, snapshot_info_json(copy[i]));
        snapshot_release(copy[i]);
    }
    free(copy);
    return arr ? json_pack("{s:o}", "models", arr) : NULL;
}
