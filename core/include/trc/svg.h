/* A small SVG plot writer: a growing text buffer, panels with linear or log axes (ticks, grid,
 * labels), polylines, markers, histogram bars and legends, written atomically. The figures of
 * training (training_curves.svg) and of `trc eval/compare --plot` are drawn with it. Numbers
 * that are not finite are skipped, text is XML-escaped. */
#ifndef TRC_SVG_H
#define TRC_SVG_H

#include <stddef.h>

typedef struct trc_svg {
    char *p;
    size_t len, cap;
    int failed; /* an allocation failed: trc_svg_save reports it */
} trc_svg;

/* Appends printf-formatted raw SVG text. */
void trc_svg_put(trc_svg *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends text with &, <, >, " escaped. */
void trc_svg_text_escaped(trc_svg *b, const char *text);

/* <svg> of w x h pixels on a white background, with a centred title (may be NULL). */
void trc_svg_begin(trc_svg *b, int w, int h, const char *title);
/* Closes the document and writes it to path atomically; frees the buffer either way. */
int trc_svg_save(trc_svg *b, const char *path);
/* Closes the document and hands over the text (malloc'd; NULL on allocation failure). */
char *trc_svg_finish(trc_svg *b);

/* A panel: its pixel box and the data ranges it shows (log: the range in data units, > 0). */
typedef struct trc_svg_axes {
    double left, top, width, height;
    double x0, x1, y0, y1;
    int logx, logy;
    int integer_x; /* x ticks at whole numbers only (counts, iterates, epochs) */
} trc_svg_axes;

/* Pixel coordinates of a data point. */
double trc_svg_px(const trc_svg_axes *a, double x);
double trc_svg_py(const trc_svg_axes *a, double y);

/* Widens [*lo, *hi] to include v (finite only; > 0 when log). */
void trc_svg_range_add(double *lo, double *hi, double v, int log);
/* Makes a range drawable: NAN/empty ranges get defaults, equal ends get padded, linear ranges
 * get `pad` (fraction) of margin, log ranges are rounded out to whole decades. */
void trc_svg_range_fix(double *lo, double *hi, int log, double pad);

/* Frame, grid, tick labels (1-2-5 steps, or decades when log), axis labels and a panel title
 * (each may be NULL). */
void trc_svg_axes_draw(trc_svg *b, const trc_svg_axes *a, const char *xlabel, const char *ylabel,
                       const char *title);

/* A polyline through (x[i*xs], y[i*ys]) for i < n; x NULL means x = x0 + i * dx (a time
 * axis). Points outside the panel's range are clamped to its edge, non-finite ones skipped.
 * style: the attributes, e.g. "stroke=\"#1f77b4\" stroke-width=\"2\"". */
void trc_svg_polyline(trc_svg *b, const trc_svg_axes *a, const float *x, size_t xs, double x0,
                      double dx, const float *y, size_t ys, size_t n, const char *style);
/* A marker at (x, y): 'o' circle, 'x' cross, 's' square, of radius r pixels. */
void trc_svg_marker(trc_svg *b, const trc_svg_axes *a, double x, double y, char shape, double r,
                    const char *color);
/* A horizontal (vertical = 0) or vertical line across the panel at data value v, with a label
 * (may be NULL). */
void trc_svg_refline(trc_svg *b, const trc_svg_axes *a, double v, int vertical, const char *color,
                     const char *label);
/* Histogram as bars: counts[k] over [edges[k], edges[k+1]), k < nbins; drawn as an outlined
 * step shape filled with `color` at the given opacity. */
void trc_svg_histogram(trc_svg *b, const trc_svg_axes *a, const double *edges, const double *counts,
                       int nbins, const char *color, double opacity);

/* A legend box at pixel (x, y): one line per entry, drawn with that entry's style. */
void trc_svg_legend(trc_svg *b, double x, double y, const char *const *names,
                    const char *const *styles, int n);

#endif
