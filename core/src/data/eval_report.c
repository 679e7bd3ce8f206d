/* The JSON report of `trc eval` / `trc compare` (see trc_eval_report_json in eval.h). */
#include "trc/error.h"
#include "trc/eval.h"
#include "trc/fileio.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A real, or null when not finite (JSON has no NaN). */
static json_t *jreal(double v) {
    return isfinite(v) ? json_real(v) : json_null();
}

static json_t *stats_json(const trc_eval_stats *st) {
    json_t *o = json_object();
    json_object_set_new(o, "num_samples", json_integer((json_int_t)st->n));
    json_object_set_new(o, "error_mean", jreal(st->err_mean));
    json_object_set_new(o, "error_std", jreal(st->err_std));
    json_object_set_new(o, "error_min", jreal(st->err_min));
    json_object_set_new(o, "error_max", jreal(st->err_max));
    json_t *comp = json_array();
    for (int r = 0; r < st->s; r++)
        json_array_append_new(comp, jreal(st->comp_mean_abs[r]));
    json_object_set_new(o, "component_mean_abs_error", comp);
    json_object_set_new(o, "cost_mean", jreal(st->cost_mean));
    json_object_set_new(o, "cost_std", jreal(st->cost_std));
    json_object_set_new(o, "threshold", jreal(st->threshold));
    json_object_set_new(o, "successes", json_integer((json_int_t)st->successes));
    json_object_set_new(o, "success_rate", jreal(st->success_rate));
    if (st->nmetrics > 0) { /* the system's task metrics (system.h), means */
        json_t *mo = json_object();
        for (int k = 0; k < st->nmetrics; k++)
            json_object_set_new(mo, st->metric_names[k], jreal(st->metric_mean[k]));
        json_object_set_new(o, "metrics", mo);
    }
    return o;
}

static const trc_eval_row *find_row(const trc_eval_row *rows, size_t n, const char *name) {
    for (size_t i = 0; name && i < n; i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    return NULL;
}

int trc_eval_report_json(const char *path, const trc_eval_context *ctx, const trc_eval_row *rows,
                         size_t nrows, const char *reference, const char *baseline) {
    json_t *o = json_object();
    if (!o)
        return trc_fail(TRC_ENOMEM, "%s: out of memory", path);
    json_object_set_new(o, "command", json_string(ctx->command ? ctx->command : "eval"));
    json_object_set_new(o, "data", ctx->data_path ? json_string(ctx->data_path) : json_null());
    json_object_set_new(o, "controls",
                        ctx->controls_path ? json_string(ctx->controls_path) : json_null());
    json_object_set_new(o, "system", ctx->system ? json_string(ctx->system) : json_null());
    json_object_set_new(o, "dt", jreal(ctx->dt));
    json_object_set_new(o, "T", json_integer(ctx->T));
    json_object_set_new(o, "num_samples", json_integer((json_int_t)ctx->n));
    json_object_set_new(o, "threshold", jreal(ctx->threshold));
    if (ctx->has_seed) {
        char b[32];
        snprintf(b, sizeof b, "%llu", (unsigned long long)ctx->seed);
        json_object_set_new(o, "seed",
                            ctx->seed <= (uint64_t)INT64_MAX ? json_integer((json_int_t)ctx->seed)
                                                             : json_string(b));
    }
    json_t *res = json_object(), *rel = json_object();
    int rc = TRC_OK;
    const trc_eval_row *ref = find_row(rows, nrows, reference);
    const trc_eval_row *base = find_row(rows, nrows, baseline);
    for (size_t i = 0; i < nrows && rc == TRC_OK; i++) {
        json_t *row = stats_json(&rows[i].stats);
        if (rows[i].extra_json) {
            json_error_t je;
            json_t *extra = json_loads(rows[i].extra_json, 0, &je);
            if (!extra || !json_is_object(extra))
                rc = trc_fail(TRC_EINVAL, "report row '%s': extra is not a JSON object",
                              rows[i].name);
            else
                json_object_update(row, extra);
            json_decref(extra);
        }
        json_object_set_new(res, rows[i].name, row);
        json_t *r = json_object();
        char key[96];
        if (ref && ref != &rows[i]) {
            snprintf(key, sizeof key, "error_mean_vs_%s", ref->name);
            json_object_set_new(r, key,
                                jreal(trc_eval_rel(rows[i].stats.err_mean, ref->stats.err_mean)));
            snprintf(key, sizeof key, "cost_mean_vs_%s", ref->name);
            json_object_set_new(r, key,
                                jreal(trc_eval_rel(rows[i].stats.cost_mean, ref->stats.cost_mean)));
            snprintf(key, sizeof key, "success_rate_diff_vs_%s", ref->name);
            json_object_set_new(r, key,
                                jreal(rows[i].stats.success_rate - ref->stats.success_rate));
        }
        if (base && base != &rows[i]) {
            snprintf(key, sizeof key, "error_reduction_vs_%s", base->name);
            json_object_set_new(r, key,
                                jreal(-trc_eval_rel(rows[i].stats.err_mean, base->stats.err_mean)));
        }
        if (json_object_size(r))
            json_object_set_new(rel, rows[i].name, r);
        else
            json_decref(r);
    }
    json_object_set_new(o, "results", res);
    json_object_set_new(o, "relative", rel);
    char *text = rc == TRC_OK
                     ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10))
                     : NULL;
    json_decref(o);
    if (rc)
        return rc;
    if (!text)
        return trc_fail(TRC_ENOMEM, "%s: cannot encode the report", path);
    size_t len = strlen(text);
    /* one trailing newline, like every text file */
    char *withnl = realloc(text, len + 2);
    if (!withnl) {
        free(text);
        return trc_fail(TRC_ENOMEM, "%s: out of memory", path);
    }
    withnl[len] = '\n';
    withnl[len + 1] = 0;
    rc = trc_write_file_atomic(path, withnl, len + 1);
    free(withnl);
    return rc;
}
