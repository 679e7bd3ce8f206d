/* The figures of `trc eval/compare --plot DIR`; see plots.h. Every figure is built from the same
 * simulation the report's numbers come from (trc_eval_controls, trc_simulate). */
#include "plots.h"
#include "cli.h"

#include "trc/error.h"
#include "trc/eval.h"
#include "trc/fileio.h"
#include "trc/svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CASES 3   /* trajectory rows */
#define MAX_COMPS 4   /* state panels per row (then one control panel) */
#define PHASE_CASES 8 /* cases in the phase portrait */
#define HIST_BINS 30

/* One colour and dash per row name, the same in every figure: the expert dashed grey, the model
 * blue, anything else from a small palette. */
static void series_style(const char *name, size_t i, char *buf, size_t size, double width) {
    static const char *palette[] = {"#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"};
    const char *color = palette[i % 5], *dash = "";
    if (strcmp(name, "expert") == 0 || strcmp(name, "dataset") == 0) {
        color = "#555555";
        dash = " stroke-dasharray=\"6 3\"";
    } else if (strcmp(name, "model") == 0) {
        color = "#1f77b4";
    } else if (strcmp(name, "random") == 0) {
        color = "#d62728";
    } else if (strcmp(name, "polished") == 0) {
        color = "#ff7f0e";
    }
    snprintf(buf, size, "class=\"series-%s\" stroke=\"%s\" stroke-width=\"%.1f\"%s", name, color,
             width, dash);
}

static const char *series_color(const char *style) {
    static char c[16];
    const char *p = strstr(style, "stroke=\"#");
    snprintf(c, sizeof c, "%.7s", p ? p + 8 : "#000000");
    return c;
}

static const char *comp_name(const trc_system *sys, int k, char *buf, size_t size) {
    char plain[16];
    snprintf(plain, sizeof plain, "x%d", k + 1);
    if (sys->state_names && sys->state_names[k] && strcmp(sys->state_names[k], plain) != 0)
        snprintf(buf, size, "x%d: %s", k + 1, sys->state_names[k]);
    else
        snprintf(buf, size, "x%d", k + 1);
    return buf;
}

/* Simulated trajectories of the first `cases` samples for every series: [nseries][cases, T+1, s].
 */
static float *simulate_cases(const plot_input *in, size_t cases) {
    const trc_dataset *ds = in->ds;
    const size_t X = ((size_t)ds->T + 1) * (size_t)ds->s;
    float *traj = malloc(sizeof(float) * X * cases * (in->nseries ? in->nseries : 1));
    if (!traj)
        return NULL;
    for (size_t r = 0; r < in->nseries; r++)
        if (trc_simulate(in->sys, in->dt, ds->T, cases, ds->initial_states, in->series[r].u,
                         traj + r * X * cases)) {
            free(traj);
            return NULL;
        }
    return traj;
}

/* Rows drawn as trajectories: not the random baseline (its scale would hide the others). */
static int drawn(const plot_series *s) {
    return strcmp(s->name, "random") != 0;
}

static int plot_trajectories(const plot_input *in, const float *traj, size_t cases,
                             const char *path) {
    const trc_dataset *ds = in->ds;
    const int s = ds->s, m = ds->m, T = ds->T;
    const int comps = s < MAX_COMPS ? s : MAX_COMPS, cols = comps + 1;
    const double PW = 230, PH = 150, ML = 70, MT = 70, GX = 80, GY = 70;
    const int W = (int)(ML + cols * (PW + GX) + 110), H = (int)(MT + cases * (PH + GY) + 30);
    const size_t X = ((size_t)T + 1) * (size_t)s, U = (size_t)T * m;
    char title[160], buf[200], style[160];
    snprintf(title, sizeof title, "trc %s: trajectories of the first %zu cases (%s, dt=%g)",
             in->command, cases, in->sys->name, in->dt);
    trc_svg b;
    trc_svg_begin(&b, W, H, title);
    const char *names[8], *styles[8];
    char stbuf[8][160];
    int nleg = 0;
    for (size_t r = 0; r < in->nseries && nleg < 7; r++)
        if (drawn(&in->series[r])) {
            series_style(in->series[r].name, r, stbuf[nleg], sizeof stbuf[nleg], 2);
            names[nleg] = in->series[r].name;
            styles[nleg] = stbuf[nleg];
            nleg++;
        }
    names[nleg] = "target";
    styles[nleg++] = "stroke=\"#2ca02c\" stroke-dasharray=\"2 3\"";
    trc_svg_legend(&b, W - 180, MT, names, styles, nleg);
    for (size_t c = 0; c < cases; c++) {
        for (int k = 0; k <= comps; k++) {
            const int is_u = k == comps;
            trc_svg_axes a = {
                ML + k * (PW + GX), MT + c * (PH + GY), PW, PH, 0, T * in->dt, NAN, NAN, 0, 0, 0};
            for (size_t r = 0; r < in->nseries; r++) {
                if (!drawn(&in->series[r]))
                    continue;
                for (int t = 0; t <= T; t++) {
                    double v = is_u ? (t < T ? in->series[r].u[c * U + (size_t)t * m] : NAN)
                                    : traj[r * X * cases + c * X + (size_t)t * s + k];
                    trc_svg_range_add(&a.y0, &a.y1, v, 0);
                }
            }
            if (!is_u)
                trc_svg_range_add(&a.y0, &a.y1, ds->target_states[c * s + k], 0);
            trc_svg_range_fix(&a.y0, &a.y1, 0, 0.05);
            snprintf(buf, sizeof buf, "case %zu: %s", c, is_u ? "control u1" : "");
            if (!is_u)
                comp_name(in->sys, k, buf + strlen(buf), sizeof buf - strlen(buf));
            trc_svg_put(&b, "<g class=\"panel\" id=\"case%zu-%s%d\">\n", c, is_u ? "u" : "x",
                        is_u ? 1 : k + 1);
            trc_svg_axes_draw(&b, &a, "time", NULL, buf);
            if (!is_u)
                trc_svg_refline(&b, &a, ds->target_states[c * s + k], 0, "#2ca02c", "target");
            for (size_t r = 0; r < in->nseries; r++) {
                if (!drawn(&in->series[r]))
                    continue;
                series_style(in->series[r].name, r, style, sizeof style, 1.8);
                if (is_u) /* controls: step t holds over [t dt, (t+1) dt) */
                    trc_svg_polyline(&b, &a, NULL, 0, 0.0, in->dt, in->series[r].u + c * U,
                                     (size_t)m, (size_t)T, style);
                else
                    trc_svg_polyline(&b, &a, NULL, 0, 0.0, in->dt, traj + r * X * cases + c * X + k,
                                     (size_t)s, (size_t)T + 1, style);
            }
            trc_svg_put(&b, "</g>\n");
        }
    }
    return trc_svg_save(&b, path);
}

static int plot_phase(const plot_input *in, const float *traj, size_t cases, const char *path) {
    const trc_dataset *ds = in->ds;
    const int T = ds->T;
    const size_t X = ((size_t)T + 1) * 2;
    char title[160], xl[64], yl[64], style[160];
    snprintf(title, sizeof title, "trc %s: phase portrait of the first %zu cases (%s)", in->command,
             cases, in->sys->name);
    trc_svg_axes a = {90, 60, 520, 520, NAN, NAN, NAN, NAN, 0, 0, 0};
    for (size_t r = 0; r < in->nseries; r++)
        for (size_t c = 0; drawn(&in->series[r]) && c < cases; c++)
            for (int t = 0; t <= T; t++) {
                trc_svg_range_add(&a.x0, &a.x1, traj[r * X * cases + c * X + (size_t)t * 2], 0);
                trc_svg_range_add(&a.y0, &a.y1, traj[r * X * cases + c * X + (size_t)t * 2 + 1], 0);
            }
    for (size_t c = 0; c < cases; c++) {
        trc_svg_range_add(&a.x0, &a.x1, ds->target_states[c * 2], 0);
        trc_svg_range_add(&a.y0, &a.y1, ds->target_states[c * 2 + 1], 0);
    }
    trc_svg_range_fix(&a.x0, &a.x1, 0, 0.05);
    trc_svg_range_fix(&a.y0, &a.y1, 0, 0.05);
    trc_svg b;
    trc_svg_begin(&b, 800, 650, title);
    trc_svg_axes_draw(&b, &a, comp_name(in->sys, 0, xl, sizeof xl),
                      comp_name(in->sys, 1, yl, sizeof yl), NULL);
    const char *names[9], *styles[9];
    char stbuf[6][160];
    int nleg = 0;
    for (size_t r = 0; r < in->nseries; r++) {
        if (!drawn(&in->series[r]))
            continue;
        series_style(in->series[r].name, r, style, sizeof style, 1.8);
        if (nleg < 6) {
            snprintf(stbuf[nleg], sizeof stbuf[nleg], "%s", style);
            names[nleg] = in->series[r].name;
            styles[nleg] = stbuf[nleg];
            nleg++;
        }
        for (size_t c = 0; c < cases; c++)
            trc_svg_polyline(&b, &a, traj + r * X * cases + c * X, 2, 0, 0,
                             traj + r * X * cases + c * X + 1, 2, (size_t)T + 1, style);
    }
    for (size_t c = 0; c < cases; c++) {
        trc_svg_marker(&b, &a, ds->initial_states[c * 2], ds->initial_states[c * 2 + 1], 'o', 4,
                       "#000000");
        trc_svg_marker(&b, &a, ds->target_states[c * 2], ds->target_states[c * 2 + 1], 'x', 6,
                       "#2ca02c");
    }
    names[nleg] = "start (dot)";
    styles[nleg++] = "stroke=\"#000000\" stroke-width=\"4\"";
    names[nleg] = "target (cross)";
    styles[nleg++] = "stroke=\"#2ca02c\" stroke-width=\"3\"";
    trc_svg_legend(&b, 630, 60, names, styles, nleg);
    return trc_svg_save(&b, path);
}

static int plot_histogram(const plot_input *in, float *const *err, const char *path) {
    const size_t n = in->ds->n;
    trc_svg_axes a = {90, 60, 640, 360, NAN, NAN, 0, 1, 1, 0, 0};
    for (size_t r = 0; r < in->nseries; r++)
        for (size_t i = 0; i < n; i++)
            trc_svg_range_add(&a.x0, &a.x1, err[r][i], 1);
    trc_svg_range_add(&a.x0, &a.x1, in->threshold, 1);
    if (!(a.x0 > 0)) /* every error exactly 0 */
        a.x0 = a.x1 = 1e-6;
    trc_svg_range_fix(&a.x0, &a.x1, 1, 0);
    double edges[HIST_BINS + 1], counts[8][HIST_BINS];
    const double l0 = log10(a.x0), l1 = log10(a.x1);
    for (int k = 0; k <= HIST_BINS; k++)
        edges[k] = pow(10.0, l0 + (l1 - l0) * k / HIST_BINS);
    size_t rows = in->nseries < 8 ? in->nseries : 8;
    double top = 1;
    for (size_t r = 0; r < rows; r++) {
        memset(counts[r], 0, sizeof counts[r]);
        for (size_t i = 0; i < n; i++) {
            double e = err[r][i] > a.x0 ? err[r][i] : a.x0; /* 0 lands in the first bin */
            int k = (int)floor((log10(e) - l0) / (l1 - l0) * HIST_BINS);
            counts[r][k < 0 ? 0 : k >= HIST_BINS ? HIST_BINS - 1 : k] += 1;
        }
        for (int k = 0; k < HIST_BINS; k++)
            top = fmax(top, counts[r][k]);
    }
    a.y1 = top * 1.08;
    char title[200], style[160], label[64];
    snprintf(title, sizeof title, "trc %s: final error |x_T - target| over %zu cases (%s)",
             in->command, n, in->sys->name);
    trc_svg b;
    trc_svg_begin(&b, 980, 480, title);
    trc_svg_axes_draw(&b, &a, "final error (log scale)", "cases", NULL);
    const char *names[8], *styles[8];
    char stbuf[8][160], nmbuf[8][64];
    for (size_t r = 0; r < rows; r++) {
        series_style(in->series[r].name, r, style, sizeof style, 1.5);
        trc_svg_put(&b, "<g class=\"hist-%s\">\n", in->series[r].name);
        trc_svg_histogram(&b, &a, edges, counts[r], HIST_BINS, series_color(style), 0.18);
        trc_svg_put(&b, "</g>\n");
        size_t ok = 0;
        for (size_t i = 0; i < n; i++)
            ok += err[r][i] < in->threshold;
        snprintf(nmbuf[r], sizeof nmbuf[r], "%s (%.1f%% < %g)", in->series[r].name,
                 100.0 * (double)ok / (double)n, in->threshold);
        snprintf(stbuf[r], sizeof stbuf[r], "stroke=\"%s\" stroke-width=\"6\"",
                 series_color(style));
        names[r] = nmbuf[r];
        styles[r] = stbuf[r];
    }
    snprintf(label, sizeof label, "success threshold %g", in->threshold);
    trc_svg_refline(&b, &a, in->threshold, 1, "#2ca02c", label);
    trc_svg_legend(&b, 745, 60, names, styles, (int)rows);
    return trc_svg_save(&b, path);
}

static int cmp_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

/* Final error after each iterate of the model: mean and median, and the success rate. */
static int plot_refinement(const plot_input *in, const float *expert_err, const char *path) {
    const trc_dataset *ds = in->ds;
    const size_t n = ds->n, U = (size_t)ds->T * ds->m;
    const int K1 = in->K + 1;
    float *mean = calloc((size_t)K1, sizeof *mean), *med = calloc((size_t)K1, sizeof *med);
    float *err = malloc(sizeof(float) * n);
    double *rate = calloc((size_t)K1, sizeof *rate);
    int rc = mean && med && err && rate ? TRC_OK : TRC_ENOMEM;
    for (int k = 0; rc == TRC_OK && k < K1; k++) {
        trc_eval_stats st;
        rc = trc_eval_controls(in->sys, in->dt, ds->T, n, ds->initial_states, ds->target_states,
                               in->iterates + (size_t)k * n * U, in->threshold, &st, err);
        if (rc)
            break;
        qsort(err, n, sizeof *err, cmp_float);
        mean[k] = (float)st.err_mean;
        med[k] = err[n / 2];
        rate[k] = st.success_rate;
    }
    if (rc) {
        free(mean), free(med), free(err), free(rate);
        return rc;
    }
    double expert_mean = NAN;
    if (expert_err) {
        expert_mean = 0;
        for (size_t i = 0; i < n; i++)
            expert_mean += expert_err[i];
        expert_mean /= (double)n;
    }
    trc_svg_axes a = {90, 60, 600, 360, -0.3, in->K + 0.3, NAN, NAN, 0, 1, 1};
    for (int k = 0; k < K1; k++) {
        trc_svg_range_add(&a.y0, &a.y1, mean[k], 1);
        trc_svg_range_add(&a.y0, &a.y1, med[k], 1);
    }
    trc_svg_range_add(&a.y0, &a.y1, in->threshold, 1);
    trc_svg_range_add(&a.y0, &a.y1, expert_mean, 1);
    trc_svg_range_fix(&a.y0, &a.y1, 1, 0);
    char title[200], label[96];
    snprintf(title, sizeof title,
             "trc %s: the model's refinement, final error after each outer cycle (%zu cases)",
             in->command, n);
    trc_svg b;
    trc_svg_begin(&b, 960, 480, title);
    trc_svg_axes_draw(&b, &a, "iterate (0 = initial guess, k = after outer cycle k)",
                      "final error (log scale)", NULL);
    const char *mstyle = "class=\"series-mean\" stroke=\"#1f77b4\" stroke-width=\"2.5\"";
    const char *dstyle =
        "class=\"series-median\" stroke=\"#1f77b4\" stroke-width=\"1.5\" stroke-dasharray=\"5 3\"";
    trc_svg_polyline(&b, &a, NULL, 0, 0, 1, mean, 1, (size_t)K1, mstyle);
    trc_svg_polyline(&b, &a, NULL, 0, 0, 1, med, 1, (size_t)K1, dstyle);
    for (int k = 0; k < K1; k++) {
        trc_svg_marker(&b, &a, k, mean[k], 'o', 4, "#1f77b4");
        snprintf(label, sizeof label, "%.1f%%", 100.0 * rate[k]);
        trc_svg_put(&b,
                    "<text class=\"success\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" "
                    "fill=\"#1f77b4\">",
                    trc_svg_px(&a, k), trc_svg_py(&a, mean[k]) - 10);
        trc_svg_text_escaped(&b, label);
        trc_svg_put(&b, "</text>\n");
    }
    snprintf(label, sizeof label, "success threshold %g", in->threshold);
    trc_svg_refline(&b, &a, in->threshold, 0, "#2ca02c", label);
    if (expert_err)
        trc_svg_refline(&b, &a, expert_mean, 0, "#555555", "expert (mean)");
    const char *names[2] = {"mean (label: success)", "median"};
    const char *styles[2] = {mstyle, dstyle};
    trc_svg_legend(&b, 700, 60, names, styles, 2);
    free(mean), free(med), free(err), free(rate);
    return trc_svg_save(&b, path);
}

int cli_plots_write(const char *cmd, const char *dir, const plot_input *in) {
    const trc_dataset *ds = in->ds;
    if (trc_mkdir_p(dir) != TRC_OK)
        return cli_lib_error(cmd, TRC_EIO, 0);
    const size_t cases = ds->n < MAX_CASES ? ds->n : MAX_CASES;
    const size_t pcases = ds->n < PHASE_CASES ? ds->n : PHASE_CASES;
    float **err = calloc(in->nseries ? in->nseries : 1, sizeof *err);
    float *traj = simulate_cases(in, pcases > cases ? pcases : cases);
    int rc = err && traj ? TRC_OK : trc_fail(TRC_ENOMEM, "plots: cannot allocate");
    const float *expert_err = NULL;
    for (size_t r = 0; rc == TRC_OK && r < in->nseries; r++) {
        trc_eval_stats st;
        if (!(err[r] = malloc(sizeof(float) * ds->n)))
            rc = trc_fail(TRC_ENOMEM, "plots: cannot allocate");
        else
            rc = trc_eval_controls(in->sys, in->dt, ds->T, ds->n, ds->initial_states,
                                   ds->target_states, in->series[r].u, in->threshold, &st, err[r]);
        if (rc == TRC_OK && (strcmp(in->series[r].name, "expert") == 0 ||
                             strcmp(in->series[r].name, "dataset") == 0))
            expert_err = err[r];
    }
    char path[4096], list[512] = "";
    size_t len = 0;
#define FIGURE(name, call)                                                                         \
    do {                                                                                           \
        if (rc == TRC_OK) {                                                                        \
            snprintf(path, sizeof path, "%s/%s", dir, name);                                       \
            rc = (call);                                                                           \
            if (rc == TRC_OK && len < sizeof list)                                                 \
                len += (size_t)snprintf(list + len, sizeof list - len, " %s", name);               \
        }                                                                                          \
    } while (0)
    /* the trajectories use the first `cases` of the simulated cases: same layout, fewer rows */
    float *tcases = NULL;
    if (rc == TRC_OK && pcases > cases) { /* re-pack [r][pcases] into [r][cases] */
        const size_t X = ((size_t)ds->T + 1) * (size_t)ds->s;
        tcases = malloc(sizeof(float) * X * cases * (in->nseries ? in->nseries : 1));
        if (!tcases)
            rc = trc_fail(TRC_ENOMEM, "plots: cannot allocate");
        for (size_t r = 0; tcases && r < in->nseries; r++)
            memcpy(tcases + r * X * cases, traj + r * X * pcases, sizeof(float) * X * cases);
    }
    FIGURE("trajectories.svg", plot_trajectories(in, tcases ? tcases : traj, cases, path));
    FIGURE("final_error_hist.svg", plot_histogram(in, err, path));
    if (in->iterates)
        FIGURE("refinement.svg", plot_refinement(in, expert_err, path));
    if (ds->s == 2)
        FIGURE("phase_portrait.svg", plot_phase(in, traj, pcases, path));
#undef FIGURE
    for (size_t r = 0; err && r < in->nseries; r++)
        free(err[r]);
    free(err);
    free(traj);
    free(tcases);
    if (rc)
        return cli_lib_error(cmd, rc, 0);
    printf("plots in %s:%s\n", dir, list);
    return CLI_OK;
}
