/* The SVG plot writer; see trc/svg.h. Plain text, no library: a figure is a few hundred
 * elements. */
#include "trc/svg.h"
#include "trc/error.h"
#include "trc/fileio.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void trc_svg_put(trc_svg *b, const char *f, ...) {
    if (b->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, f);
        int w = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, f, ap);
        va_end(ap);
        if (w < 0) {
            b->failed = 1;
            return;
        }
        if (b->p && b->len + (size_t)w < b->cap) {
            b->len += (size_t)w;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)w;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->failed = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

void trc_svg_text_escaped(trc_svg *b, const char *t) {
    for (; t && *t; t++) {
        switch (*t) {
        case '&':
            trc_svg_put(b, "&amp;");
            break;
        case '<':
            trc_svg_put(b, "&lt;");
            break;
        case '>':
            trc_svg_put(b, "&gt;");
            break;
        case '"':
            trc_svg_put(b, "&quot;");
            break;
        default:
            trc_svg_put(b, "%c", *t);
        }
    }
}

static void text_at(trc_svg *b, double x, double y, const char *anchor, const char *extra,
                    const char *text) {
    trc_svg_put(b, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%s\"%s%s>", x, y, anchor,
                extra ? " " : "", extra ? extra : "");
    trc_svg_text_escaped(b, text);
    trc_svg_put(b, "</text>\n");
}

void trc_svg_begin(trc_svg *b, int w, int h, const char *title) {
    memset(b, 0, sizeof *b);
    trc_svg_put(b,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n",
                w, h, w, h);
    trc_svg_put(b, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    if (title)
        text_at(b, w / 2.0, 24, "middle", "font-size=\"15\"", title);
}

char *trc_svg_finish(trc_svg *b) {
    trc_svg_put(b, "</svg>\n");
    if (b->failed) {
        free(b->p);
        memset(b, 0, sizeof *b);
        return NULL;
    }
    char *p = b->p;
    memset(b, 0, sizeof *b);
    return p;
}

int trc_svg_save(trc_svg *b, const char *path) {
    char *text = trc_svg_finish(b);
    if (!text)
        return trc_fail(TRC_ENOMEM, "%s: cannot build the figure", path);
    int rc = trc_write_file_atomic(path, text, strlen(text));
    free(text);
    return rc;
}

/* ---- axes ---- */

static double tr(double v, int log) {
    return log ? log10(v) : v;
}

double trc_svg_px(const trc_svg_axes *a, double x) {
    double l0 = tr(a->x0, a->logx), l1 = tr(a->x1, a->logx);
    return a->left + (tr(x, a->logx) - l0) / (l1 - l0) * a->width;
}

double trc_svg_py(const trc_svg_axes *a, double y) {
    double l0 = tr(a->y0, a->logy), l1 = tr(a->y1, a->logy);
    return a->top + a->height - (tr(y, a->logy) - l0) / (l1 - l0) * a->height;
}

void trc_svg_range_add(double *lo, double *hi, double v, int log) {
    if (!isfinite(v) || (log && !(v > 0)))
        return;
    if (!(*lo <= v)) /* NAN lo included */
        *lo = v;
    if (!(*hi >= v))
        *hi = v;
}

void trc_svg_range_fix(double *lo, double *hi, int log, double pad) {
    if (!isfinite(*lo) || !isfinite(*hi)) {
        *lo = log ? 1e-3 : 0.0;
        *hi = 1.0;
    }
    if (log) {
        *lo = pow(10.0, floor(log10(*lo)));
        *hi = pow(10.0, ceil(log10(*hi)));
        if (*hi <= *lo)
            *hi = *lo * 10.0;
        return;
    }
    if (*hi <= *lo) {
        double d = fabs(*lo) > 0 ? 0.1 * fabs(*lo) : 1.0;
        *lo -= d;
        *hi += d;
    }
    double m = pad * (*hi - *lo);
    *lo -= m;
    *hi += m;
}

/* A 1-2-5 step giving at most about `want` ticks over span. */
static double nice_step(double span, int want) {
    double raw = span / want, mag = pow(10.0, floor(log10(raw)));
    const double steps[3] = {1, 2, 5};
    for (int i = 0; i < 3; i++)
        if (steps[i] * mag >= raw)
            return steps[i] * mag;
    return 10 * mag;
}

static void tick_label(char *buf, size_t size, double v, int log) {
    if (log)
        snprintf(buf, size, "1e%d", (int)lround(log10(v)));
    else
        snprintf(buf, size, "%g", fabs(v) < 1e-12 ? 0.0 : v);
}

/* The tick values of one axis into t (at most cap). */
static int ticks(double lo, double hi, int log, int want, int integer, double *t, int cap) {
    int n = 0;
    if (log) {
        int d0 = (int)floor(log10(lo) + 1e-9), d1 = (int)ceil(log10(hi) - 1e-9);
        int every = (d1 - d0) / want + 1;
        for (int d = d0; d <= d1 && n < cap; d += every)
            t[n++] = pow(10.0, d);
        return n;
    }
    double step = nice_step(hi - lo, want);
    if (integer && step < 1)
        step = 1;
    for (double v = ceil(lo / step - 1e-9) * step; v <= hi + 1e-9 * step && n < cap; v += step)
        t[n++] = v;
    return n;
}

void trc_svg_axes_draw(trc_svg *b, const trc_svg_axes *a, const char *xlabel, const char *ylabel,
                       const char *title) {
    double t[64];
    char lab[32];
    const double L = a->left, T = a->top, R = a->left + a->width, B = a->top + a->height;
    int nx = ticks(a->x0, a->x1, a->logx, a->width > 300 ? 8 : 4, a->integer_x, t, 64);
    for (int i = 0; i < nx; i++) {
        double x = trc_svg_px(a, t[i]);
        trc_svg_put(b,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                    x, T, x, B, x, B, x, B + 4);
        tick_label(lab, sizeof lab, t[i], a->logx);
        text_at(b, x, B + 16, "middle", NULL, lab);
    }
    int ny = ticks(a->y0, a->y1, a->logy, a->height > 250 ? 8 : 4, 0, t, 64);
    for (int i = 0; i < ny; i++) {
        double y = trc_svg_py(a, t[i]);
        trc_svg_put(b,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>"
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#333\"/>\n",
                    L, y, R, y, L - 4, y, L, y);
        tick_label(lab, sizeof lab, t[i], a->logy);
        text_at(b, L - 6, y + 4, "end", NULL, lab);
    }
    trc_svg_put(b,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" "
                "stroke=\"#333\"/>\n",
                L, T, a->width, a->height);
    if (xlabel)
        text_at(b, (L + R) / 2, B + 34, "middle", NULL, xlabel);
    if (ylabel) {
        char tf[96];
        snprintf(tf, sizeof tf, "transform=\"rotate(-90 %.1f %.1f)\"", L - 46, (T + B) / 2);
        text_at(b, L - 46, (T + B) / 2, "middle", tf, ylabel);
    }
    if (title)
        text_at(b, (L + R) / 2, T - 8, "middle", "font-weight=\"bold\"", title);
}

static double clampd(double v, double lo, double hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

void trc_svg_polyline(trc_svg *b, const trc_svg_axes *a, const float *x, size_t xs, double x0,
                      double dx, const float *y, size_t ys, size_t n, const char *style) {
    trc_svg_put(b, "<polyline fill=\"none\" %s points=\"", style);
    for (size_t i = 0; i < n; i++) {
        double xv = x ? (double)x[i * xs] : x0 + (double)i * dx, yv = y[i * ys];
        if (!isfinite(xv) || !isfinite(yv) || (a->logx && !(xv > 0)) || (a->logy && !(yv > 0)))
            continue;
        double px = clampd(trc_svg_px(a, xv), a->left, a->left + a->width);
        double py = clampd(trc_svg_py(a, yv), a->top, a->top + a->height);
        trc_svg_put(b, "%.1f,%.1f ", px, py);
    }
    trc_svg_put(b, "\"/>\n");
}

void trc_svg_marker(trc_svg *b, const trc_svg_axes *a, double x, double y, char shape, double r,
                    const char *color) {
    if (!isfinite(x) || !isfinite(y))
        return;
    double px = trc_svg_px(a, x), py = trc_svg_py(a, y);
    if (shape == 'x')
        trc_svg_put(b,
                    "<path d=\"M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f\" stroke=\"%s\" "
                    "stroke-width=\"2.5\"/>\n",
                    px - r, py - r, px + r, py + r, px - r, py + r, px + r, py - r, color);
    else if (shape == 's')
        trc_svg_put(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"/>\n",
                    px - r, py - r, 2 * r, 2 * r, color);
    else
        trc_svg_put(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%.1f\" fill=\"%s\"/>\n", px, py, r,
                    color);
}

void trc_svg_refline(trc_svg *b, const trc_svg_axes *a, double v, int vertical, const char *color,
                     const char *label) {
    if (!isfinite(v) || (vertical ? (a->logx && !(v > 0)) : (a->logy && !(v > 0))))
        return;
    if (vertical) {
        double x = trc_svg_px(a, v);
        if (x < a->left || x > a->left + a->width)
            return;
        trc_svg_put(b,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                    "stroke-dasharray=\"5 3\" stroke-width=\"1.5\"/>\n",
                    x, a->top, x, a->top + a->height, color);
        if (label) {
            char fill[64];
            snprintf(fill, sizeof fill, "fill=\"%s\"", color);
            text_at(b, x + 4, a->top + 14, "start", fill, label);
        }
    } else {
        double y = trc_svg_py(a, v);
        if (y < a->top || y > a->top + a->height)
            return;
        trc_svg_put(b,
                    "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
                    "stroke-dasharray=\"2 3\" stroke-width=\"1.2\"/>\n",
                    a->left, y, a->left + a->width, y, color);
        if (label) {
            char fill[64];
            snprintf(fill, sizeof fill, "fill=\"%s\"", color);
            text_at(b, a->left + a->width - 4, y - 4, "end", fill, label);
        }
    }
}

void trc_svg_histogram(trc_svg *b, const trc_svg_axes *a, const double *edges, const double *counts,
                       int nbins, const char *color, double opacity) {
    const double base = a->top + a->height;
    trc_svg_put(b,
                "<path fill=\"%s\" fill-opacity=\"%.2f\" stroke=\"%s\" stroke-width=\"1.5\" "
                "d=\"M%.1f %.1f",
                color, opacity, color, trc_svg_px(a, edges[0]), base);
    for (int k = 0; k < nbins; k++) {
        double y = clampd(trc_svg_py(a, counts[k]), a->top, base);
        trc_svg_put(b, " V%.1f H%.1f", y, trc_svg_px(a, edges[k + 1]));
    }
    trc_svg_put(b, " V%.1f Z\"/>\n", base);
}

void trc_svg_legend(trc_svg *b, double x, double y, const char *const *names,
                    const char *const *styles, int n) {
    double w = 40;
    for (int i = 0; i < n; i++)
        w = fmax(w, 48 + 7.0 * (double)strlen(names[i]));
    trc_svg_put(b,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" fill=\"white\" "
                "fill-opacity=\"0.9\" stroke=\"#ccc\"/>\n",
                x, y, w, 8 + 18 * n);
    for (int i = 0; i < n; i++) {
        double ly = y + 13 + 18 * i;
        trc_svg_put(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" %s/>", x + 8, ly,
                    x + 32, ly, styles[i]);
        text_at(b, x + 40, ly + 4, "start", NULL, names[i]);
    }
}
