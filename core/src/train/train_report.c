/* What a person reads or looks at after a run: training_stats.json (settings, split, model,
 * per-epoch history, outcome) and training_curves.svg (train and validation loss against
 * epoch, log-scale y axis), both written atomically. The SVG text goes through trc/svg.h. */
#include "trc/error.h"
#include "trc/fileio.h"
#include "trc/svg.h"
#include "train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *real_or_null(double x) {
    return isfinite(x) ? json_real(x) : json_null();
}

json_t *trc_train_terms_json(const trc_objective *obj, const double *v, int n) {
    json_t *j = json_object();
    for (int k = 0; j && k < n && obj && obj->terms; k++)
        json_object_set_new(j, obj->terms[k], real_or_null(v[k]));
    return j;
}

void trc_train_terms_parse(const json_t *j, const trc_objective *obj, double *v, int n) {
    for (int k = 0; k < n; k++) {
        const json_t *x = obj && obj->terms ? json_object_get(j, obj->terms[k]) : NULL;
        v[k] = json_is_number(x) ? json_number_value(x) : NAN;
    }
}

int trc_train_write_stats(const trc_run *run, const char *path) {
    const trc_model_config *c = &run->model.cfg;
    double total = 0.0, samples = 0.0, train_time = 0.0;
    json_t *epochs = json_array();
    for (int i = 0; epochs && i < run->epoch_done; i++) {
        const trc_epoch_stats *h = &run->history[i];
        total += h->seconds;
        if (h->samples_per_sec > 0) {
            samples += (double)run->n_train;
            train_time += (double)run->n_train / h->samples_per_sec;
        }
        json_t *e = json_pack("{s:i, s:o, s:o, s:o, s:o, s:o}", "epoch", h->epoch, "train_loss",
                              real_or_null(h->train_loss), "val_loss", real_or_null(h->val_loss),
                              "lr", json_real(h->lr), "seconds", json_real(h->seconds),
                              "samples_per_sec", json_real(h->samples_per_sec));
        if (e && h->nterms > 0) {
            json_object_set_new(e, "train_terms",
                                trc_train_terms_json(run->objective, h->train_terms, h->nterms));
            if (run->n_val)
                json_object_set_new(e, "val_terms",
                                    trc_train_terms_json(run->objective, h->val_terms, h->nterms));
        }
        json_array_append_new(epochs, e);
    }
    json_t *j = json_pack(
        "{s:o, s:{s:s, s:I, s:I, s:I, s:i, s:i, s:i}, s:{s:s, s:I, s:i, s:i, s:i, s:i, s:i, s:f, "
        "s:s, s:f}, s:o, s:i, s:i, s:o, s:s, s:b, s:b, s:f, s:o}",
        "settings", trc_train_settings_json(&run->o), "data", "path", run->o.data_path, "n",
        (json_int_t)run->ds->n, "n_train", (json_int_t)run->n_train, "n_val",
        (json_int_t)run->n_val, "s", run->ds->s, "m", run->ds->m, "T", run->ds->T, "model", "size",
        c->size, "num_params", (json_int_t)run->model.num_params, "d", c->d, "h", c->h, "blocks",
        c->blocks, "K", c->K, "n", c->n, "bound", (double)c->bound, "system", c->system, "dt",
        c->dt, "epochs", epochs ? epochs : json_array(), "epochs_run", run->epoch_done,
        "best_epoch", run->best_epoch, "best_loss", real_or_null(run->best_loss), "monitor",
        run->n_val ? "val_loss" : "train_loss", "stopped_early", run->stopped_early, "cancelled",
        run->cancelled, "total_seconds", total, "mean_samples_per_sec",
        real_or_null(train_time > 0 ? samples / train_time : NAN));
    if (!j)
        return trc_fail(TRC_ENOMEM, "%s: cannot build the training statistics", path);
    char *text = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(12));
    json_decref(j);
    if (!text)
        return trc_fail(TRC_ENOMEM, "%s: cannot format the training statistics", path);
    size_t len = strlen(text);
    int rc = TRC_OK;
    char *withnl = malloc(len + 2);
    if (!withnl) {
        rc = trc_fail(TRC_ENOMEM, "%s: out of memory", path);
    } else {
        memcpy(withnl, text, len);
        withnl[len] = '\n';
        rc = trc_write_file_atomic(path, withnl, len + 1);
        free(withnl);
    }
    free(text);
    return rc;
}

/* Plot geometry. */
enum { W = 760, H = 440, ML = 84, MR = 24, MT = 44, MB = 62 };

typedef struct axes {
    double x0, x1;   /* epoch range */
    double ly0, ly1; /* log10 loss range (whole decades) */
} axes;

static double px(const axes *a, double epoch) {
    return ML + (epoch - a->x0) / (a->x1 - a->x0) * (W - ML - MR);
}

static double py(const axes *a, double loss) {
    return H - MB - (log10(loss) - a->ly0) / (a->ly1 - a->ly0) * (H - MT - MB);
}

/* A 1-2-5 step giving at most about 10 ticks over span. */
static double nice_step(double span) {
    double raw = span / 10.0, mag = pow(10.0, floor(log10(raw)));
    double steps[3] = {1, 2, 5};
    for (int i = 0; i < 3; i++)
        if (steps[i] * mag >= raw)
            return steps[i] * mag;
    return 10 * mag;
}

/* which: -1 train loss, -2 validation loss, k >= 0 the k-th term of the training loss */
static double curve_value(const trc_epoch_stats *h, int which) {
    if (which == -1)
        return h->train_loss;
    if (which == -2)
        return h->val_loss;
    return which < h->nterms ? h->train_terms[which] : NAN;
}

static void polyline(trc_svg *b, const axes *a, const trc_epoch_stats *h, int count, int which,
                     double floor_loss, const char *style) {
    trc_svg_put(b, "<polyline fill=\"none\" %s points=\"", style);
    for (int i = 0; i < count; i++) {
        double y = curve_value(&h[i], which);
        if (!isfinite(y))
            continue;
        trc_svg_put(b, "%.1f,%.1f ", px(a, h[i].epoch), py(a, fmax(y, floor_loss)));
    }
    trc_svg_put(b, "\"/>\n");
}

static const char *const term_colors[TRC_OBJECTIVE_MAX_TERMS] = {"#9467bd", "#d62728", "#8c564b",
                                                                 "#17becf"};

static char *curves_svg(const trc_epoch_stats *h, int count, int best_epoch,
                        const char *const *term_names) {
    trc_svg b = {0};
    double lo = INFINITY, hi = 0;
    int has_val = 0, nterms = term_names && count > 0 ? h[0].nterms : 0;
    for (int i = 0; i < count; i++) {
        for (int which = -2; which < nterms; which++) {
            double v = curve_value(&h[i], which);
            if (isfinite(v) && v > 0) {
                lo = fmin(lo, v);
                hi = fmax(hi, v);
                has_val |= which == -2;
            }
        }
    }
    if (!(hi > 0)) {
        lo = 1e-3;
        hi = 1.0;
    }
    axes a = {1, count > 1 ? count : 2, floor(log10(lo)), ceil(log10(hi))};
    if (a.ly1 <= a.ly0)
        a.ly1 = a.ly0 + 1;

    trc_svg_put(&b,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
                W, H, W, H);
    trc_svg_put(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    trc_svg_put(&b,
                "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">Training curves "
                "(%s)</text>\n",
                W / 2, nterms ? "loss and its terms" : "MSE on expert controls");
    /* y grid: one line per decade, lighter lines at 2 and 5 when few decades show */
    int decades = (int)(a.ly1 - a.ly0);
    for (int d = (int)a.ly0; d <= (int)a.ly1; d++) {
        double y = py(&a, pow(10.0, d));
        trc_svg_put(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ccc\"/>\n", ML,
                    y, W - MR, y);
        trc_svg_put(&b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">1e%d</text>\n", ML - 6,
                    y + 4, d);
        for (int k = 2; decades <= 3 && d < (int)a.ly1 && k <= 5; k += 3) {
            double ym = py(&a, k * pow(10.0, d));
            trc_svg_put(&b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#eee\"/>\n",
                        ML, ym, W - MR, ym);
            trc_svg_put(
                &b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" fill=\"#888\">%de%d</text>\n",
                ML - 6, ym + 4, k, d);
        }
    }
    /* x ticks */
    double step = fmax(1.0, nice_step(a.x1 - a.x0)); /* whole epochs */
    for (double e = ceil(a.x0 / step) * step; e <= a.x1 + 1e-9; e += step) {
        double x = px(&a, e);
        trc_svg_put(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#333\"/>\n", x,
                    H - MB, x, H - MB + 5);
        trc_svg_put(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n", x,
                    H - MB + 19, e);
    }
    /* axes and their labels */
    trc_svg_put(&b, "<path d=\"M%d %d V%d H%d\" fill=\"none\" stroke=\"#333\"/>\n", ML, MT, H - MB,
                W - MR);
    trc_svg_put(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">epoch</text>\n",
                (ML + W - MR) / 2, H - 16);
    trc_svg_put(&b,
                "<text transform=\"translate(20 %d) rotate(-90)\" text-anchor=\"middle\">%s loss "
                "(log scale)</text>\n",
                (MT + H - MB) / 2, nterms ? "training" : "MSE");
    if (count == 0)
        trc_svg_put(
            &b,
            "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#888\">no epoch finished "
            "yet</text>\n",
            (ML + W - MR) / 2, (MT + H - MB) / 2);
    if (best_epoch > 0 && best_epoch <= count) {
        double x = px(&a, best_epoch);
        trc_svg_put(&b,
                    "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#2ca02c\" "
                    "stroke-dasharray=\"4 3\"/>\n",
                    x, MT, x, H - MB);
        /* label inside the plot, on the side of the line with more room */
        int right = x > (ML + W - MR) / 2.0;
        trc_svg_put(&b,
                    "<text x=\"%.1f\" y=\"%d\" text-anchor=\"%s\" fill=\"#2ca02c\">best: epoch "
                    "%d</text>\n",
                    right ? x - 4 : x + 4, H - MB - 8, right ? "end" : "start", best_epoch);
    }
    polyline(&b, &a, h, count, -1, lo, "stroke=\"#1f77b4\" stroke-width=\"2\"");
    if (has_val)
        polyline(&b, &a, h, count, -2, lo, "stroke=\"#ff7f0e\" stroke-width=\"2\"");
    for (int k = 0; k < nterms; k++) { /* the terms of the training loss, dashed */
        char style[96];
        snprintf(style, sizeof style, "stroke=\"%s\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"",
                 term_colors[k]);
        polyline(&b, &a, h, count, k, lo, style);
    }
    /* legend */
    int lx = W - MR - 150, ly = MT + 8;
    trc_svg_put(&b,
                "<rect x=\"%d\" y=\"%d\" width=\"140\" height=\"%d\" fill=\"white\" "
                "stroke=\"#ccc\"/>\n",
                lx, ly, (has_val ? 44 : 24) + 20 * nterms);
    for (int k = 0; term_names && k < nterms; k++) {
        int y = ly + (has_val ? 53 : 33) + 20 * k;
        trc_svg_put(
            &b,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"1.5\" "
            "stroke-dasharray=\"5 3\"/><text x=\"%d\" y=\"%d\">train: %s</text>\n",
            lx + 8, y, lx + 32, y, term_colors[k], lx + 40, y + 4, term_names[k]);
    }
    trc_svg_put(&b,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#1f77b4\" "
                "stroke-width=\"2\"/><text x=\"%d\" y=\"%d\">train loss</text>\n",
                lx + 8, ly + 13, lx + 32, ly + 13, lx + 40, ly + 17);
    if (has_val)
        trc_svg_put(&b,
                    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ff7f0e\" "
                    "stroke-width=\"2\"/><text x=\"%d\" y=\"%d\">validation loss</text>\n",
                    lx + 8, ly + 33, lx + 32, ly + 33, lx + 40, ly + 37);
    return trc_svg_finish(&b);
}

int trc_train_write_curves(const trc_epoch_stats *hist, int count, int best_epoch,
                           const char *path) {
    return trc_train_write_curves_terms(hist, count, best_epoch, NULL, path);
}

int trc_train_write_curves_terms(const trc_epoch_stats *hist, int count, int best_epoch,
                                 const char *const *term_names, const char *path) {
    char *svg = curves_svg(hist, count, best_epoch, term_names);
    if (!svg)
        return trc_fail(TRC_ENOMEM, "%s: cannot build the loss curves", path);
    int rc = trc_write_file_atomic(path, svg, strlen(svg));
    free(svg);
    return rc;
}
