/* The optimal-control objective of a model's controls, open and closed loop, against the
 * expert's: how far from the optimum a network controls, in the expert's own terms.
 *
 *   expert_cost CHECKPOINT DATA.npz [LQR_Q LQR_R LQR_QF]
 *
 * J = sum_{t<T} [e_t' Q e_t + r |u_t|^2] + e_T' Qf e_T, e_t = x_t - target, with Q = lqr_q
 * diag(the system's cost_q), Qf = lqr_qf Q: the ilqr expert's cost with its defaults (1, 0.1,
 * the system's cost_qf), so on an ilqr dataset the expert's J is the dataset's `costs` (checked
 * and printed). Closed loop: at every step the network plans from the current state and the
 * first control is applied (trc_eval_closed_loop, all samples at once).
 *
 * Build against an installed libtrc:  cc expert_cost.c $(pkg-config --cflags --libs trc) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <trc/checkpoint.h>
#include <trc/dataset.h>
#include <trc/error.h>
#include <trc/eval.h>
#include <trc/model.h>
#include <trc/system.h>

typedef struct weights {
    double q, r, qf;
} weights;

static int plan(void *user, size_t n, const float *x, const float *target, int steps_left,
                float *u) {
    (void)steps_left; /* a whole horizon at every step (receding), whatever is left */
    return trc_model_infer_mt(user, n, x, target, NULL, u, NULL, 2);
}

/* J of one sample's controls u [T*m] from x0, simulated with the system's step. */
static double cost(const trc_system *sys, double dt, int T, const weights *w, const float *x0,
                   const float *tg, const float *u) {
    const int s = sys->s, m = sys->m;
    double x[TRC_SYSTEM_MAX_S], xn[TRC_SYSTEM_MAX_S], uu[TRC_SYSTEM_MAX_M], c = 0.0;
    for (int j = 0; j < s; j++)
        x[j] = x0[j];
    for (int t = 0; t <= T; t++) {
        double scale = t < T ? w->q : w->q * w->qf;
        for (int j = 0; j < s; j++)
            c += scale * trc_system_cost_q(sys, j) * (x[j] - tg[j]) * (x[j] - tg[j]);
        if (t == T)
            break;
        for (int j = 0; j < m; j++) {
            uu[j] = u[(size_t)t * m + j];
            c += w->r * uu[j] * uu[j];
        }
        sys->step(x, uu, dt, xn);
        memcpy(x, xn, sizeof x);
    }
    return c;
}

int main(int argc, char **argv) {
    if (argc != 3 && argc != 6) {
        fprintf(stderr, "usage: expert_cost CHECKPOINT DATA.npz [LQR_Q LQR_R LQR_QF]\n");
        return 2;
    }
    trc_model model;
    trc_dataset ds;
    if (trc_checkpoint_load(argv[1], NULL, &model) != TRC_OK) {
        fprintf(stderr, "expert_cost: %s\n", trc_errmsg());
        return 1;
    }
    if (trc_dataset_load(argv[2], &ds) != TRC_OK) {
        fprintf(stderr, "expert_cost: %s\n", trc_errmsg());
        trc_model_free(&model);
        return 1;
    }
    const trc_system *sys = NULL;
    double dt = 0.0;
    int rc = trc_eval_resolve(&ds, NULL, 0.0, &sys, &dt);
    weights w = {1.0, 0.1, sys ? trc_system_cost_qf(sys) : 0.0};
    if (argc == 6)
        w = (weights){atof(argv[3]), atof(argv[4]), atof(argv[5])};
    const size_t n = ds.n, U = (size_t)ds.T * (size_t)ds.m, s = (size_t)ds.s;
    float *closed = malloc(n * U * sizeof *closed), *open = malloc(n * U * sizeof *open);
    trc_eval_loop loop = {plan, &model, 0.0, 7};
    trc_eval_stats st;
    if (!rc && (!closed || !open))
        rc = trc_fail(TRC_ENOMEM, "out of memory");
    if (!rc)
        rc = trc_eval_closed_loop(sys, dt, ds.T, n, ds.initial_states, ds.target_states, &loop,
                                  sys->success_threshold, &st, closed, NULL);
    if (!rc)
        rc =
            trc_model_infer_mt(&model, n, ds.initial_states, ds.target_states, NULL, open, NULL, 2);
    if (!rc) {
        double je = 0.0, jc = 0.0, jo = 0.0, off = 0.0;
        size_t worse = 0;
        for (size_t i = 0; i < n; i++) {
            const float *x0 = ds.initial_states + i * s, *tg = ds.target_states + i * s;
            double e = cost(sys, dt, ds.T, &w, x0, tg, ds.control_sequences + i * U);
            double c = cost(sys, dt, ds.T, &w, x0, tg, closed + i * U);
            je += e;
            jc += c;
            jo += cost(sys, dt, ds.T, &w, x0, tg, open + i * U);
            worse += c > 1.05 * e;
            if (ds.costs)
                off = fmax(off, fabs(e - ds.costs[i]) / fmax(fabs(ds.costs[i]), 1e-12));
        }
        printf("J (Q = %g diag(cost_q), R = %g, Qf = %g Q), mean over %zu samples of %s:\n", w.q,
               w.r, w.qf, n, sys->name);
        printf("  expert       %.4f (the dataset's costs within %.1e relative)\n", je / n, off);
        printf("  closed loop  %.4f (%+.3f%%), above 1.05 x the expert's on %zu samples\n", jc / n,
               100.0 * (jc / je - 1.0), worse);
        printf("  open loop    %.4f (%+.3f%%)\n", jo / n, 100.0 * (jo / je - 1.0));
    } else {
        fprintf(stderr, "expert_cost: %s\n", trc_errmsg());
    }
    free(closed);
    free(open);
    trc_dataset_free(&ds);
    trc_model_free(&model);
    return rc ? 1 : 0;
}
