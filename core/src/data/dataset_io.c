/* The .npz form of a dataset: the original project's lqr_dataset.npz keys (float32 on write,
 * float32 or float64 on read) plus `metadata`, a 0-d unicode array holding the generation
 * settings as JSON, which numpy.load reads without allow_pickle:
 *   json.loads(str(np.load("train.npz")["metadata"]))
 * A `metadata` entry that is not ours (not a JSON object with "format": "trc-dataset") is
 * ignored, so files from other tools still load. */
#include "trc/dataset.h"
#include "trc/error.h"
#include "trc/expert.h"
#include "trc/npz.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_FORMAT "trc-dataset"
#define META_VERSION 1

/* Reads `key` as float32 into a new buffer, checking its dtype and that every value is finite.
 * ndim/shape are returned for the caller's shape checks. */
static int read_floats(trc_npz *z, const char *path, const char *key, trc_npy_array *a,
                       float **out) {
    *out = NULL;
    int rc = trc_npz_read(z, key, a);
    if (rc)
        return rc;
    if (a->dtype != TRC_NPY_F32 && a->dtype != TRC_NPY_F64) {
        char dt[32];
        trc_npy_dtype_str(a, dt, sizeof dt);
        trc_npy_free(a);
        return trc_fail(TRC_EUNSUPPORTED,
                        "%s: key '%s': dtype %s not supported (float32 or "
                        "float64 expected)",
                        path, key, dt);
    }
    float *f = malloc(a->numel ? a->numel * sizeof(float) : 1);
    if (!f) {
        trc_npy_free(a);
        return trc_fail(TRC_ENOMEM, "%s: key '%s': cannot allocate", path, key);
    }
    trc_npy_to_f32(a, f);
    for (size_t i = 0; i < a->numel; i++)
        if (!isfinite(f[i])) {
            free(f);
            trc_npy_free(a);
            return trc_fail(TRC_EFORMAT, "%s: key '%s': non-finite value at flat index %zu", path,
                            key, i);
        }
    free(a->data); /* keep the shape, drop the raw bytes */
    a->data = NULL;
    *out = f;
    return TRC_OK;
}

static int shape_fail(const char *path, const char *key, const trc_npy_array *a,
                      const char *expect) {
    char sh[160];
    trc_npy_shape_str(a, sh, sizeof sh);
    return trc_fail(TRC_EFORMAT, "%s: key '%s': expected shape %s, got %s", path, key, expect, sh);
}

static int meta_get_num(json_t *o, const char *k, double *v) {
    json_t *j = json_object_get(o, k);
    if (!j || !json_is_number(j))
        return -1;
    *v = json_number_value(j);
    return 0;
}

static int meta_get_int(json_t *o, const char *k, json_int_t *v) {
    json_t *j = json_object_get(o, k);
    if (!j || !json_is_integer(j))
        return -1;
    *v = json_integer_value(j);
    return 0;
}

static int meta_get_str(json_t *o, const char *k, char *dst, size_t size) {
    json_t *j = json_object_get(o, k);
    if (!j || !json_is_string(j) || strlen(json_string_value(j)) >= size)
        return -1;
    snprintf(dst, size, "%s", json_string_value(j));
    return 0;
}

/* The expert's parameters, each under its own name (absent = default); nothing for an expert
 * this library does not know. -1 when one is not a number. */
static int meta_get_params(json_t *o, trc_gen_settings *g) {
    const trc_expert *e = trc_expert_find(g->expert);
    for (size_t i = 0; e && i < e->nparams; i++) {
        json_t *j = json_object_get(o, e->params[i].name);
        if (j && !json_is_number(j))
            return -1;
        if (j)
            g->expert_params[e->params[i].offset / sizeof(double)] = json_number_value(j);
    }
    return 0;
}

/* The "shard" object of a shard's metadata (absent: not a shard). */
static int parse_shard(json_t *o, const char *path, trc_dataset *ds) {
    json_t *j = json_object_get(o, "shard");
    if (!j)
        return TRC_OK;
    json_int_t index = -1, count = 0, total = 0, first = -1;
    json_t *keep = json_object_get(j, "keep_unconverged");
    if (!json_is_object(j) || meta_get_int(j, "index", &index) ||
        meta_get_int(j, "count", &count) || meta_get_int(j, "total", &total) ||
        meta_get_int(j, "first", &first) || !json_is_boolean(keep) || count < 1 || count > 100000 ||
        index < 0 || index >= count || total < count || first < 0 || first >= total)
        return trc_fail(TRC_EFORMAT,
                        "%s: key 'metadata': bad shard (needs 0 <= index < count <= total, "
                        "0 <= first < total, keep_unconverged)",
                        path);
    ds->shard =
        (trc_shard_info){(int)index, (int)count, (size_t)total, (size_t)first, json_is_true(keep)};
    return TRC_OK;
}

/* Parses our metadata into ds->settings (has_settings = 1) after checking it agrees with the
 * arrays. Foreign metadata is ignored. */
static int parse_metadata(trc_npz *z, const char *path, trc_dataset *ds, int *ours) {
    *ours = 0;
    trc_npy_array a;
    int rc = trc_npz_read(z, "metadata", &a);
    if (rc == TRC_ENOTFOUND)
        return TRC_OK;
    if (rc)
        return rc;
    char *text = NULL;
    if (a.dtype != TRC_NPY_STR || a.numel != 1 || trc_npy_string(&a, 0, &text) != TRC_OK) {
        trc_npy_free(&a);
        return TRC_OK; /* not ours */
    }
    trc_npy_free(&a);
    json_t *o = json_loads(text, 0, NULL);
    free(text);
    json_t *fmt = o ? json_object_get(o, "format") : NULL;
    if (!o || !json_is_object(o) || !json_is_string(fmt) ||
        strcmp(json_string_value(fmt), META_FORMAT) != 0) {
        json_decref(o);
        return TRC_OK; /* not ours */
    }
    *ours = 1;
    rc = TRC_OK;
    json_int_t num = 0, s = 0, m = 0, T = 0;
    if (meta_get_int(o, "num_samples", &num) || meta_get_int(o, "s", &s) ||
        meta_get_int(o, "m", &m) || meta_get_int(o, "T", &T))
        rc = trc_fail(TRC_EFORMAT, "%s: key 'metadata': needs integers num_samples, s, m and T",
                      path);
    else if (num != (json_int_t)ds->n || s != ds->s || m != ds->m || T != ds->T)
        rc = trc_fail(TRC_EFORMAT,
                      "%s: key 'metadata': says N=%lld, s=%lld, m=%lld, T=%lld but the arrays "
                      "have N=%zu, s=%d, m=%d, T=%d",
                      path, (long long)num, (long long)s, (long long)m, (long long)T, ds->n, ds->s,
                      ds->m, ds->T);
    /* recorded without generation settings (a foreign file saved again): dt, system, cost */
    if (rc == TRC_OK && !json_object_get(o, "expert")) {
        double dt = 0;
        if (json_object_get(o, "dt") && (meta_get_num(o, "dt", &dt) || !(dt > 0 && isfinite(dt))))
            rc = trc_fail(TRC_EFORMAT, "%s: key 'metadata': bad dt", path);
        else if (json_object_get(o, "system") &&
                 meta_get_str(o, "system", ds->system, sizeof ds->system))
            rc = trc_fail(TRC_EFORMAT, "%s: key 'metadata': bad system", path);
        ds->dt = dt;
    }
    if (rc == TRC_OK && json_object_get(o, "cost") &&
        meta_get_str(o, "cost", ds->cost_label, sizeof ds->cost_label))
        rc = trc_fail(TRC_EFORMAT, "%s: key 'metadata': bad cost", path);
    if (rc == TRC_OK && json_object_get(o, "expert")) {
        trc_gen_settings *g = &ds->settings;
        memset(g, 0, sizeof *g);
        json_t *seed = json_object_get(o, "seed");
        double bl = 0, bh = 0;
        if (meta_get_str(o, "system", g->system, sizeof g->system) ||
            meta_get_str(o, "expert", g->expert, sizeof g->expert) ||
            meta_get_num(o, "dt", &g->dt) || meta_get_num(o, "bound", &g->bound) ||
            meta_get_num(o, "box_lo", &bl) || meta_get_num(o, "box_hi", &bh) || !seed ||
            meta_get_params(o, g)) {
            rc = trc_fail(TRC_EFORMAT, "%s: key 'metadata': incomplete generation settings", path);
        } else {
            g->T = ds->T;
            g->box_lo = bl;
            g->box_hi = bh;
            g->target_lo = g->target_hi = NAN; /* absent: the states' box */
            if (json_object_get(o, "target_lo") && (meta_get_num(o, "target_lo", &g->target_lo) ||
                                                    meta_get_num(o, "target_hi", &g->target_hi)))
                rc = trc_fail(TRC_EFORMAT, "%s: key 'metadata': bad target box", path);
            /* seeds above INT64_MAX are stored as decimal strings (JSON integers are int64 in
             * jansson) */
            if (json_is_integer(seed) && json_integer_value(seed) >= 0)
                g->seed = (uint64_t)json_integer_value(seed);
            else if (json_is_string(seed))
                g->seed = strtoull(json_string_value(seed), NULL, 10);
            else
                rc = trc_fail(TRC_EFORMAT, "%s: key 'metadata': bad seed", path);
            if (rc == TRC_OK && !(g->dt > 0 && isfinite(g->dt)))
                rc = trc_fail(TRC_EFORMAT, "%s: key 'metadata': bad dt", path);
            if (rc == TRC_OK)
                rc = parse_shard(o, path, ds);
            if (rc == TRC_OK) {
                ds->has_settings = 1;
                ds->dt = g->dt;
                snprintf(ds->system, sizeof ds->system, "%s", g->system);
            }
        }
    }
    json_decref(o);
    return rc;
}

/* The sidecar "<stem>.json" of a file without our metadata (see trc_dataset_load). */
static int read_sidecar(const char *path, trc_dataset *ds) {
    size_t n = strlen(path);
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (dot && slash && dot < slash)
        dot = NULL;
    size_t stem = dot ? (size_t)(dot - path) : n;
    char *side = malloc(stem + 6);
    if (!side)
        return trc_fail(TRC_ENOMEM, "%s: out of memory", path);
    snprintf(side, stem + 6, "%.*s.json", (int)stem, path);
    FILE *f = fopen(side, "rb");
    if (!f) {
        free(side);
        return TRC_OK; /* none */
    }
    fclose(f);
    json_error_t je;
    json_t *o = json_load_file(side, JSON_REJECT_DUPLICATES, &je);
    int rc = TRC_OK;
    if (!o || !json_is_object(o)) {
        rc = trc_fail(TRC_EFORMAT, "%s (sidecar of %s): not a JSON object (line %d: %s)", side,
                      path, je.line, je.text);
    } else {
        const char *key;
        json_t *v;
        json_object_foreach(o, key, v) {
            if (strcmp(key, "dt") != 0 && strcmp(key, "system") != 0 && strcmp(key, "cost") != 0) {
                rc = trc_fail(TRC_EFORMAT,
                              "%s (sidecar of %s): unknown key '%s' (keys: dt, system, cost)", side,
                              path, key);
                break;
            }
        }
        double dt = 0;
        if (rc == TRC_OK && json_object_get(o, "dt") &&
            (meta_get_num(o, "dt", &dt) || !(dt > 0 && dt <= 1e6)))
            rc = trc_fail(TRC_EFORMAT, "%s (sidecar of %s): dt must be a number in (0, 1e6]", side,
                          path);
        if (rc == TRC_OK && json_object_get(o, "system") &&
            meta_get_str(o, "system", ds->system, sizeof ds->system))
            rc = trc_fail(TRC_EFORMAT, "%s (sidecar of %s): system must be a short string", side,
                          path);
        if (rc == TRC_OK && json_object_get(o, "cost") &&
            meta_get_str(o, "cost", ds->cost_label, sizeof ds->cost_label))
            rc = trc_fail(TRC_EFORMAT, "%s (sidecar of %s): cost must be a short string", side,
                          path);
        if (rc == TRC_OK && strcmp(ds->cost_label, "sum_u2_dt") == 0 && !(dt > 0))
            rc = trc_fail(TRC_EFORMAT,
                          "%s (sidecar of %s): cost \"sum_u2_dt\" needs the file's \"dt\"", side,
                          path);
        ds->dt = dt;
    }
    json_decref(o);
    free(side);
    return rc;
}

/* Sum of u^2 of sample i. */
static double sum_u2(const trc_dataset *ds, size_t i) {
    const size_t U = (size_t)ds->T * (size_t)ds->m;
    double c = 0;
    for (size_t k = 0; k < U; k++)
        c += (double)ds->control_sequences[i * U + k] * ds->control_sequences[i * U + k];
    return c;
}

/* 1 when every cost is within float32 rounding of scale * sum(u^2) of its controls. */
static int costs_are(const trc_dataset *ds, double scale) {
    for (size_t i = 0; i < ds->n; i++) {
        double want = scale * sum_u2(ds, i);
        if (fabs((double)ds->costs[i] - want) > 1e-4 * fmax(fabs(want), 1e-6))
            return 0;
    }
    return 1;
}

/* Brings costs to our convention, sum(u^2): declared "sum_u2_dt" (the original's later files),
 * or, when nothing declares it and the dt is known, recognised from the controls. */
static void normalise_costs(trc_dataset *ds) {
    if (!ds->costs)
        return;
    int theirs = strcmp(ds->cost_label, "sum_u2_dt") == 0;
    if (!ds->cost_label[0] && ds->dt > 0 && fabs(ds->dt - 1.0) > 1e-6) {
        if (costs_are(ds, 1.0))
            snprintf(ds->cost_label, sizeof ds->cost_label, "sum_u2");
        else if (costs_are(ds, ds->dt))
            theirs = 1;
    }
    if (!theirs || !(ds->dt > 0))
        return;
    for (size_t i = 0; i < ds->n; i++)
        ds->costs[i] = (float)((double)ds->costs[i] / ds->dt);
    snprintf(ds->cost_label, sizeof ds->cost_label, "sum_u2");
    snprintf(ds->cost_converted_from, sizeof ds->cost_converted_from, "sum_u2_dt");
}

int trc_dataset_load(const char *path, trc_dataset *ds) {
    memset(ds, 0, sizeof *ds);
    trc_npz *z;
    int rc = trc_npz_open(path, &z);
    if (rc)
        return rc;
    trc_npy_array ai = {0}, at = {0}, au = {0}, ax = {0}, ac = {0}, as = {0}, am = {0}, al = {0};
    float *fi = NULL, *ft = NULL, *fu = NULL, *fx = NULL, *fc = NULL, *fs = NULL, *fm = NULL,
          *fl = NULL;
    if ((rc = read_floats(z, path, "initial_states", &ai, &fi)))
        goto out;
    if (ai.ndim != 2 || ai.shape[0] < 1 || ai.shape[1] < 1 || ai.shape[1] > 4096) {
        rc = shape_fail(path, "initial_states", &ai, "(N, s) with N >= 1");
        goto out;
    }
    const size_t n = (size_t)ai.shape[0];
    const int s = (int)ai.shape[1];
    char want[128];
    if ((rc = read_floats(z, path, "target_states", &at, &ft)))
        goto out;
    if (at.ndim != 2 || (size_t)at.shape[0] != n || at.shape[1] != s) {
        snprintf(want, sizeof want, "(%zu, %d) like initial_states", n, s);
        rc = shape_fail(path, "target_states", &at, want);
        goto out;
    }
    if ((rc = read_floats(z, path, "control_sequences", &au, &fu)))
        goto out;
    if (au.ndim != 3 || (size_t)au.shape[0] != n || au.shape[1] < 1 || au.shape[2] < 1 ||
        au.shape[1] > 100000 || au.shape[2] > 4096) {
        snprintf(want, sizeof want, "(%zu, T, m)", n);
        rc = shape_fail(path, "control_sequences", &au, want);
        goto out;
    }
    const int T = (int)au.shape[1], m = (int)au.shape[2];
    if (trc_npz_has(z, "state_trajectories")) {
        if ((rc = read_floats(z, path, "state_trajectories", &ax, &fx)))
            goto out;
        if (ax.ndim != 3 || (size_t)ax.shape[0] != n || ax.shape[1] != T + 1 || ax.shape[2] != s) {
            snprintf(want, sizeof want, "(%zu, %d, %d) = (N, T+1, s)", n, T + 1, s);
            rc = shape_fail(path, "state_trajectories", &ax, want);
            goto out;
        }
    }
    if (trc_npz_has(z, "costs")) {
        if ((rc = read_floats(z, path, "costs", &ac, &fc)))
            goto out;
        if (ac.ndim != 1 || (size_t)ac.shape[0] != n) {
            snprintf(want, sizeof want, "(%zu,)", n);
            rc = shape_fail(path, "costs", &ac, want);
            goto out;
        }
    }
    if (trc_npz_has(z, "steps_left")) { /* tails: whole numbers of steps in 1..T */
        if ((rc = read_floats(z, path, "steps_left", &al, &fl)))
            goto out;
        if (al.ndim != 1 || (size_t)al.shape[0] != n) {
            snprintf(want, sizeof want, "(%zu,)", n);
            rc = shape_fail(path, "steps_left", &al, want);
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (!(fl[i] >= 1.0f && fl[i] <= (float)T && fl[i] == floorf(fl[i]))) {
                rc =
                    trc_fail(TRC_EFORMAT, "%s: steps_left[%zu] = %g is not a whole number in 1..%d",
                             path, i, (double)fl[i], T);
                goto out;
            }
    }
    if (trc_npz_has(z, "expert_solve")) { /* an iterative expert's per-sample records */
        if ((rc = read_floats(z, path, "expert_solve", &as, &fs)))
            goto out;
        if (as.ndim != 2 || (size_t)as.shape[0] != n || as.shape[1] != 2) {
            snprintf(want, sizeof want, "(%zu, 2)", n);
            rc = shape_fail(path, "expert_solve", &as, want);
            goto out;
        }
        if ((rc = read_floats(z, path, "expert_solve_ms", &am, &fm)))
            goto out;
        if (am.ndim != 1 || (size_t)am.shape[0] != n) {
            snprintf(want, sizeof want, "(%zu,)", n);
            rc = shape_fail(path, "expert_solve_ms", &am, want);
            goto out;
        }
    }
    ds->n = n;
    ds->s = s;
    ds->m = m;
    ds->T = T;
    ds->solve_stats = fs;
    ds->solve_ms = fm;
    fs = fm = NULL;
    ds->initial_states = fi;
    ds->target_states = ft;
    ds->control_sequences = fu;
    ds->state_trajectories = fx;
    ds->costs = fc;
    ds->steps_left = fl;
    fi = ft = fu = fx = fc = fl = NULL;
    int ours = 0;
    rc = parse_metadata(z, path, ds, &ours);
    if (rc == TRC_OK && !ours)
        rc = read_sidecar(path, ds);
    if (rc == TRC_OK)
        normalise_costs(ds);
    if (rc)
        trc_dataset_free(ds);
out:
    free(fi);
    free(ft);
    free(fu);
    free(fx);
    free(fc);
    free(fs);
    free(fm);
    free(fl);
    trc_npy_free(&al);
    trc_npy_free(&as);
    trc_npy_free(&am);
    trc_npy_free(&ai);
    trc_npy_free(&at);
    trc_npy_free(&au);
    trc_npy_free(&ax);
    trc_npy_free(&ac);
    trc_npz_close(z);
    return rc;
}

/* What the `costs` of a dataset made by `expert` are: the expert's cost label (its objective),
 * and sum u^2 for the predictions of a model (trc predict --data). NULL for an expert this
 * library does not know. */
static const char *cost_meaning(const char *expert) {
    if (strcmp(expert, "model") == 0)
        return "sum_u2";
    const trc_expert *e = trc_expert_find(expert);
    return e ? e->cost_label : NULL;
}

/* The metadata JSON text (malloc'd). */
static char *metadata_json(const trc_dataset *ds) {
    json_t *o = json_object();
    json_object_set_new(o, "format", json_string(META_FORMAT));
    json_object_set_new(o, "version", json_integer(META_VERSION));
    json_object_set_new(o, "num_samples", json_integer((json_int_t)ds->n));
    json_object_set_new(o, "s", json_integer(ds->s));
    json_object_set_new(o, "m", json_integer(ds->m));
    json_object_set_new(o, "T", json_integer(ds->T));
    if (ds->has_settings) {
        const trc_gen_settings *g = &ds->settings;
        json_object_set_new(o, "system", json_string(g->system));
        json_object_set_new(o, "expert", json_string(g->expert));
        json_object_set_new(o, "dt", json_real(g->dt));
        json_object_set_new(o, "bound", json_real(g->bound));
        if (g->seed <= (uint64_t)INT64_MAX) {
            json_object_set_new(o, "seed", json_integer((json_int_t)g->seed));
        } else {
            char b[32];
            snprintf(b, sizeof b, "%llu", (unsigned long long)g->seed);
            json_object_set_new(o, "seed", json_string(b));
        }
        json_object_set_new(o, "box_lo", json_real(g->box_lo));
        json_object_set_new(o, "box_hi", json_real(g->box_hi));
        if (!isnan(g->target_lo)) {
            json_object_set_new(o, "target_lo", json_real(g->target_lo));
            json_object_set_new(o, "target_hi", json_real(g->target_hi));
        }
        const trc_expert *e = trc_expert_find(g->expert);
        for (size_t i = 0; e && i < e->nparams; i++) /* the expert's parameters by name */
            json_object_set_new(o, e->params[i].name,
                                json_real(g->expert_params[e->params[i].offset / sizeof(double)]));
        if (ds->shard.count > 0) /* where a shard sits (trc_dataset_generate_shard) */
            json_object_set_new(o, "shard",
                                json_pack("{s:i, s:i, s:I, s:I, s:b}", "index", ds->shard.index,
                                          "count", ds->shard.count, "total",
                                          (json_int_t)ds->shard.total, "first",
                                          (json_int_t)ds->shard.first, "keep_unconverged",
                                          ds->shard.keep_unconverged));
        const char *cost = cost_meaning(g->expert);
        if (cost) /* what `costs` holds; unsaid when nothing here computed them */
            json_object_set_new(o, "cost", json_string(cost));
    } else {
        /* a foreign file saved again keeps what it recorded (its sidecar, or a --dt) */
        if (ds->dt > 0)
            json_object_set_new(o, "dt", json_real(ds->dt));
        if (ds->system[0])
            json_object_set_new(o, "system", json_string(ds->system));
        if (ds->costs && ds->cost_label[0])
            json_object_set_new(o, "cost", json_string(ds->cost_label));
    }
    char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER |
                                   JSON_REAL_PRECISION(17));
    json_decref(o);
    return text;
}

int trc_dataset_save(const char *path, const trc_dataset *ds) {
    if (!ds || ds->n == 0 || ds->s <= 0 || ds->m <= 0 || ds->T <= 0 || !ds->initial_states ||
        !ds->target_states || !ds->control_sequences)
        return trc_fail(TRC_EINVAL, "%s: cannot save an empty or incomplete dataset", path);
    char *meta = metadata_json(ds);
    if (!meta)
        return trc_fail(TRC_ENOMEM, "%s: cannot encode the metadata", path);
    const int64_t n = (int64_t)ds->n;
    trc_npz_item items[9];
    size_t k = 0;
    items[k++] = (trc_npz_item){"initial_states", TRC_NPY_F32, 2, {n, ds->s}, ds->initial_states};
    items[k++] = (trc_npz_item){"target_states", TRC_NPY_F32, 2, {n, ds->s}, ds->target_states};
    items[k++] = (trc_npz_item){
        "control_sequences", TRC_NPY_F32, 3, {n, ds->T, ds->m}, ds->control_sequences};
    if (ds->state_trajectories)
        items[k++] = (trc_npz_item){
            "state_trajectories", TRC_NPY_F32, 3, {n, ds->T + 1, ds->s}, ds->state_trajectories};
    if (ds->costs)
        items[k++] = (trc_npz_item){"costs", TRC_NPY_F32, 1, {n}, ds->costs};
    if (ds->steps_left)
        items[k++] = (trc_npz_item){"steps_left", TRC_NPY_F32, 1, {n}, ds->steps_left};
    if (ds->solve_stats && ds->solve_ms) {
        items[k++] = (trc_npz_item){"expert_solve", TRC_NPY_F32, 2, {n, 2}, ds->solve_stats};
        items[k++] = (trc_npz_item){"expert_solve_ms", TRC_NPY_F32, 1, {n}, ds->solve_ms};
    }
    items[k++] = (trc_npz_item){"metadata", TRC_NPY_STR, 0, {0}, meta};
    int rc = trc_npz_write(path, items, k);
    free(meta);
    return rc;
}
