/* libtrc in your own control loop: receding- or shrinking-horizon control of a simulated
 * system.
 *
 *   closed_loop CHECKPOINT X0[,X1...] [STEPS] [SYSTEM] [DT]
 *
 * Loads the checkpoint (its metadata names the system and time step; SYSTEM and DT give them
 * for a checkpoint without metadata: no time step is ever assumed), then at every step asks the
 * network for a control sequence from the current state to the origin, applies only the first
 * control to the simulated system and re-plans from where it lands: a whole horizon each time
 * (receding), or, for a model trained with tails (cfg.time_left), the steps left of one
 * horizon of T steps (shrinking; STEPS <= T). Prints one line per step and the final distance
 * to the target.
 *
 * Build against an installed libtrc:  cc closed_loop.c $(pkg-config --cflags --libs trc) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <trc/checkpoint.h>
#include <trc/error.h>
#include <trc/model.h>
#include <trc/system.h>

static int parse_state(const char *text, int s, double *x) {
    char *end = (char *)text;
    for (int i = 0; i < s; i++) {
        x[i] = strtod(text, &end);
        if (end == text || !isfinite(x[i]))
            return -1;
        text = end + (*end == ',');
    }
    return *end ? -1 : 0;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: closed_loop CHECKPOINT X0[,X1...] [STEPS] [SYSTEM] [DT]\n");
        return 2;
    }
    trc_model model;
    if (trc_checkpoint_load(argv[1], NULL, &model)) {
        fprintf(stderr, "closed_loop: %s\n", trc_errmsg());
        return 1;
    }
    const char *name = model.cfg.system[0] ? model.cfg.system : (argc > 4 ? argv[4] : "");
    const trc_system *sys = trc_system_find(name);
    int rc = 1;
    trc_infer_plan *plan = NULL;
    float *u = NULL;
    if (!sys || sys->s != model.cfg.s || sys->m != model.cfg.m) {
        fprintf(stderr, "closed_loop: the checkpoint names no system this model fits (%s)\n",
                sys ? "dimensions differ" : trc_errmsg());
        goto out;
    }
    const int s = sys->s, m = sys->m, U = model.cfg.T * m;
    /* the checkpoint's time step, else the caller's: never the system's default (a model
     * trained at another dt would be simulated wrongly without a word) */
    const double dt = model.cfg.dt > 0 ? model.cfg.dt : (argc > 5 ? atof(argv[5]) : 0.0);
    if (!(dt > 0 && dt <= 1e3)) {
        fprintf(stderr, "closed_loop: the checkpoint records no time step: give it as DT\n");
        goto out;
    }
    const int steps = argc > 3 ? atoi(argv[3]) : model.cfg.T;
    double x[TRC_SYSTEM_MAX_S], next[TRC_SYSTEM_MAX_S], ud[TRC_SYSTEM_MAX_M];
    float xf[TRC_SYSTEM_MAX_S], target[TRC_SYSTEM_MAX_S] = {0};
    if (steps < 1 || parse_state(argv[2], s, x)) {
        fprintf(stderr, "closed_loop: need %d comma-separated finite values and STEPS >= 1\n", s);
        goto out;
    }
    if (model.cfg.time_left && steps > model.cfg.T) {
        fprintf(stderr,
                "closed_loop: the model plans the rest of a horizon of %d steps: STEPS "
                "<= %d\n",
                model.cfg.T, model.cfg.T);
        goto out;
    }
    u = malloc(sizeof *u * (size_t)U);
    if (!u || trc_infer_plan_create(&model, &plan)) {
        fprintf(stderr, "closed_loop: %s\n", u ? trc_errmsg() : "out of memory");
        goto out;
    }
    printf("system %s, dt %g, %d steps, %s horizon\n", sys->name, dt, steps,
           model.cfg.time_left ? "shrinking" : "receding");
    for (int t = 0; t < steps; t++) {
        for (int i = 0; i < s; i++)
            xf[i] = (float)x[i];
        /* the fraction of the horizon left: T - t steps of T (a receding model: always 1) */
        const float left = model.cfg.time_left ? (float)(model.cfg.T - t) / (float)model.cfg.T : 1;
        if (trc_infer_plan_run(plan, 1, xf, target, &left, u, NULL, 1)) {
            fprintf(stderr, "closed_loop: %s\n", trc_errmsg());
            goto out;
        }
        for (int j = 0; j < m; j++)
            ud[j] = u[j];
        sys->step(x, ud, dt, next);
        memcpy(x, next, sizeof(double) * (size_t)s);
        printf("step %d u0 %.9g x", t, ud[0]);
        for (int i = 0; i < s; i++)
            printf(" %.9g", x[i]);
        printf("\n");
    }
    double err = 0;
    for (int i = 0; i < s; i++)
        err += x[i] * x[i];
    printf("final error %.9g\n", sqrt(err));
    rc = 0;
out:
    trc_infer_plan_free(plan);
    free(u);
    trc_model_free(&model);
    return rc;
}
