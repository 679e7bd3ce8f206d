/* `trc eval --plot DIR` / `trc compare --plot DIR`: the figures of an evaluation, as SVG
 * (trc/svg.h): trajectories of a few cases (every row with controls against the expert),
 * final-error histograms, the model's refinement across its outer cycles, and for 2-state
 * systems a phase portrait with the targets. */
#ifndef TRC_CLI_PLOTS_H
#define TRC_CLI_PLOTS_H

#include "trc/dataset.h"
#include "trc/system.h"

/* A row of the evaluation that has open-loop controls u [n, T*m]. */
typedef struct plot_series {
    const char *name;
    const float *u;
} plot_series;

typedef struct plot_input {
    const char *command; /* "eval" or "compare", for the titles */
    const trc_system *sys;
    double dt, threshold;
    const trc_dataset *ds;
    const plot_series *series;
    size_t nseries;
    /* the model's controls after its initial guess and each outer cycle: [(K+1), n, T*m], or
     * NULL (no model: no refinement figure) */
    const float *iterates;
    int K;
} plot_input;

/* Writes DIR/trajectories.svg, DIR/final_error_hist.svg, DIR/refinement.svg (with iterates)
 * and DIR/phase_portrait.svg (s = 2), creating DIR; prints one line naming them. Prints the
 * error ("trc <cmd>: ...") and returns the exit status. */
int cli_plots_write(const char *cmd, const char *dir, const plot_input *in);

#endif
