/* Normalisation of a model's inputs and outputs (model.h, docs/checkpoints.md): the checks of
 * the statistics, their computation from data, the affine maps inference and the trainer apply,
 * and the statistics given as JSON for a checkpoint that has none (the original's). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "trc/error.h"
#include "trc/model.h"

/* Normalisation statistics: finite, std positive, within sane magnitudes, and a network bound
 * that stays finite (a tiny std would make the network's controls astronomically large). */
#define NORM_MAX_ABS 1e9
#define NORM_MIN_STD 1e-9

static int check_norm_vec(const char *what, const float *mean, const float *std, int n) {
    for (int i = 0; i < n; i++) {
        if (!isfinite(mean[i]) || fabsf(mean[i]) > NORM_MAX_ABS)
            return trc_fail(TRC_EINVAL,
                            "model config: %s_mean[%d] = %g is not a finite number "
                            "of magnitude <= %g",
                            what, i, (double)mean[i], NORM_MAX_ABS);
        if (!isfinite(std[i]) || !(std[i] >= NORM_MIN_STD) || std[i] > NORM_MAX_ABS)
            return trc_fail(TRC_EINVAL, "model config: %s_std[%d] = %g must be in [%g, %g]", what,
                            i, (double)std[i], NORM_MIN_STD, NORM_MAX_ABS);
    }
    return TRC_OK;
}

int trc_model_norm_check(const trc_model_config *cfg) {
    if (cfg->norm == 0)
        return TRC_OK;
    if (cfg->norm != 1)
        return trc_fail(TRC_EINVAL, "model config: norm must be 0 or 1, got %d", cfg->norm);
    if (cfg->s > TRC_NORM_MAX || cfg->m > TRC_NORM_MAX)
        return trc_fail(TRC_EINVAL, "model config: normalisation supports s and m up to %d",
                        TRC_NORM_MAX);
    int rc;
    if ((rc = check_norm_vec("x", cfg->x_mean, cfg->x_std, cfg->s)) ||
        (rc = check_norm_vec("u", cfg->u_mean, cfg->u_std, cfg->m)))
        return rc;
    float nb = trc_model_net_bound(cfg);
    if (!isfinite(nb) || nb > 1e6f)
        return trc_fail(TRC_EINVAL,
                        "model config: the bound in normalised units, (b + |u_mean|) / u_std = "
                        "%g, is above 1e6 (u_std too small for b = %g)",
                        (double)nb, (double)cfg->bound);
    return TRC_OK;
}

float trc_model_net_bound(const trc_model_config *cfg) {
    if (!cfg->norm)
        return cfg->bound;
    double nb = 0.0;
    for (int i = 0; i < cfg->m && i < TRC_NORM_MAX; i++) {
        double v = ((double)cfg->bound + fabs((double)cfg->u_mean[i])) / (double)cfg->u_std[i];
        nb = v > nb || !(v == v) ? v : nb;
    }
    return (float)nb;
}

/* mean and std of column j of rows [n, stride] (two passes in double) */
static void col_stats(const float *a, size_t n, int stride, int j, float *mean, float *std) {
    double s = 0.0, q = 0.0;
    for (size_t r = 0; r < n; r++)
        s += a[r * (size_t)stride + (size_t)j];
    double mu = n ? s / (double)n : 0.0;
    for (size_t r = 0; r < n; r++) {
        double e = a[r * (size_t)stride + (size_t)j] - mu;
        q += e * e;
    }
    double sd = n ? sqrt(q / (double)n) : 0.0;
    *mean = (float)mu;
    *std = sd < 1e-6 * fmax(1.0, fabs(mu)) ? 1.0f : (float)sd;
}

int trc_model_norm_from_data(trc_model_config *cfg, size_t n, const float *x, size_t nu,
                             const float *u) {
    if (!cfg || !x || !u || n == 0 || nu == 0)
        return trc_fail(TRC_EINVAL, "normalisation: no data");
    if (cfg->s > TRC_NORM_MAX || cfg->m > TRC_NORM_MAX)
        return trc_fail(TRC_EINVAL, "normalisation supports s and m up to %d", TRC_NORM_MAX);
    for (int j = 0; j < cfg->s; j++)
        col_stats(x, n, cfg->s, j, &cfg->x_mean[j], &cfg->x_std[j]);
    for (int j = 0; j < cfg->m; j++)
        col_stats(u, nu, cfg->m, j, &cfg->u_mean[j], &cfg->u_std[j]);
    cfg->norm = 1;
    return trc_model_norm_check(cfg);
}

void trc_model_norm_states(const trc_model_config *cfg, size_t B, const float *x, float *xn) {
    size_t s = (size_t)cfg->s;
    if (!cfg->norm) {
        if (xn != x)
            memcpy(xn, x, B * s * sizeof *xn);
        return;
    }
    for (size_t r = 0; r < B; r++)
        for (size_t j = 0; j < s; j++)
            xn[r * s + j] = (x[r * s + j] - cfg->x_mean[j]) / cfg->x_std[j];
}

void trc_model_norm_controls(const trc_model_config *cfg, size_t rows, const float *u, float *un) {
    size_t m = (size_t)cfg->m;
    if (!cfg->norm) {
        if (un != u) /* in place is allowed: nothing to do */
            memcpy(un, u, rows * m * sizeof *un);
        return;
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < m; j++)
            un[r * m + j] = (u[r * m + j] - cfg->u_mean[j]) / cfg->u_std[j];
}

void trc_model_denorm_controls(const trc_model_config *cfg, size_t rows, float *y) {
    if (!cfg->norm)
        return;
    size_t m = (size_t)cfg->m;
    float b = cfg->bound;
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < m; j++) {
            float v = cfg->u_mean[j] + cfg->u_std[j] * y[r * m + j];
            y[r * m + j] = v < -b ? -b : (v > b ? b : v);
        }
}

/* A JSON array of exactly n finite numbers into out. */
static int json_floats(json_t *root, const char *key, int n, const char *dim, float *out) {
    json_t *a = json_object_get(root, key);
    if (!json_is_array(a))
        return trc_fail(TRC_EINVAL, "normalisation: '%s' must be an array of %d numbers", key, n);
    if ((int)json_array_size(a) != n)
        return trc_fail(TRC_EINVAL, "normalisation: '%s' has %zu values, expected %s = %d", key,
                        json_array_size(a), dim, n);
    for (int i = 0; i < n; i++) {
        json_t *v = json_array_get(a, (size_t)i);
        if (!json_is_number(v))
            return trc_fail(TRC_EINVAL, "normalisation: '%s'[%d] is not a number", key, i);
        out[i] = (float)json_number_value(v);
    }
    return TRC_OK;
}

int trc_model_norm_from_json(trc_model_config *cfg, const char *text) {
    if (!cfg || !text)
        return trc_fail(TRC_EINVAL, "normalisation: NULL argument");
    if (cfg->s > TRC_NORM_MAX || cfg->m > TRC_NORM_MAX)
        return trc_fail(TRC_EINVAL, "normalisation supports s and m up to %d", TRC_NORM_MAX);
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(root)) {
        json_decref(root);
        return trc_fail(TRC_EINVAL, "normalisation: not a JSON object (line %d: %s)", je.line,
                        je.text);
    }
    trc_model_config c = *cfg;
    int rc = TRC_OK;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (strcmp(key, "x_mean") && strcmp(key, "x_std") && strcmp(key, "u_mean") &&
            strcmp(key, "u_std")) {
            rc = trc_fail(TRC_EINVAL,
                          "normalisation: unknown key '%s' (x_mean, x_std, u_mean, u_std)", key);
            break;
        }
    }
    if (!rc && !(rc = json_floats(root, "x_mean", c.s, "s", c.x_mean)) &&
        !(rc = json_floats(root, "x_std", c.s, "s", c.x_std)) &&
        !(rc = json_floats(root, "u_mean", c.m, "m", c.u_mean)) &&
        !(rc = json_floats(root, "u_std", c.m, "m", c.u_std))) {
        c.norm = 1;
        rc = trc_model_norm_check(&c);
    }
    json_decref(root);
    if (!rc)
        *cfg = c;
    return rc;
}
