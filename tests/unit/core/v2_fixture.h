/* Helpers of the v2 parity tests (tests/data/v2/README.md): loading a two-level model from a
 * fixture's state_dict, the fixtures' float32 ZOH double integrator (dt = 5/15) as a simulator,
 * and tolerance checks. Header-only; include after <cmocka.h>. */
#ifndef TRC_TESTS_V2_FIXTURE_H
#define TRC_TESTS_V2_FIXTURE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "trc/two_level.h"

#define V2_NB 8

/* Loads tests/data/v2/<name>.safetensors strictly into a model whose configuration comes from
 * the shapes (as a bare state_dict export), with feedback as asked. */
static inline void v2_load(const char *name, int feedback, trc_tl_model *model) {
    char file[256];
    snprintf(file, sizeof file, "v2/%s.safetensors", name);
    trc_safetensors st;
    read_st(file, &st);
    trc_tl_config cfg;
    if (trc_tl_config_from_tensors(&st, 1, 0, &cfg))
        fail_msg("%s: %s", file, trc_errmsg());
    cfg.feedback = feedback;
    assert_int_equal(trc_tl_create(&cfg, model), TRC_OK);
    if (trc_tl_load_tensors(&st, model))
        fail_msg("%s: %s", file, trc_errmsg());
    trc_st_free(&st);
}

/* The fixtures' simulator: float32, constants rounded to float,
 * pos' = (pos + dt*vel) + (dt*dt/2)*u, vel' = vel + dt*u. */
static inline void v2_zoh_rollout(void *ctx, const float *x0, const float *u, float *traj,
                                  double *A, double *Bm) {
    (void)ctx;
    const double dt = 5.0 / 15.0;
    const float c1 = (float)dt, c2 = (float)(dt * dt / 2.0);
    float p = x0[0], v = x0[1];
    traj[0] = p, traj[1] = v;
    for (int t = 0; t < 15; t++) {
        float pn = (p + c1 * v) + c2 * u[t];
        v = v + c1 * u[t];
        p = pn;
        traj[2 * t + 2] = p, traj[2 * t + 3] = v;
        if (A && Bm) {
            double *At = A + 4 * t;
            At[0] = 1, At[1] = dt, At[2] = 0, At[3] = 1;
            Bm[2 * t] = dt * dt / 2.0, Bm[2 * t + 1] = dt;
        }
    }
}

static inline trc_tl_sim v2_zoh_sim(void) {
    return (trc_tl_sim){2, 1, 15, v2_zoh_rollout, NULL};
}

static inline void v2_check_close(const float *got, const float *want, size_t n, float tol,
                                  const char *what) {
    if (getenv("V2_VERBOSE")) { /* the margin: largest difference against the tolerance */
        float worst = 0.0f;
        for (size_t i = 0; i < n; i++)
            worst = fmaxf(worst, fabsf(got[i] - want[i]));
        fprintf(stderr, "%s: largest difference %.3g (tolerance %.3g)\n", what, (double)worst,
                (double)tol);
    }
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= tol))
            fail_msg("%s[%zu]: got %.8g, want %.8g (tolerance %g)", what, i, (double)got[i],
                     (double)want[i], (double)tol);
}

/* Every gradient within rtol of the reference tensor's largest magnitude ("<prefix><name>"
 * tensors of st; a missing entry is skipped when `partial`). Returns the tensors compared. */
static inline size_t v2_check_grads(const trc_tl_model *m, const float *g,
                                    const trc_safetensors *st, const char *prefix, float rtol,
                                    int partial) {
    size_t compared = 0;
    for (size_t i = 0; i < m->num_views; i++) {
        const trc_param_view *v = &m->views[i];
        char gname[TRC_PARAM_NAME_MAX + 32];
        snprintf(gname, sizeof gname, "%s%s", prefix, v->name);
        if (m->role[i] == TRC_TL_BUFFER) { /* buffers are not parameters: no gradient entry */
            assert_null(trc_st_find(st, gname));
            continue;
        }
        if (partial && !trc_st_find(st, gname))
            continue;
        float *want = tensor(st, gname, v->numel), maxabs = 0.0f;
        for (size_t j = 0; j < v->numel; j++)
            maxabs = fmaxf(maxabs, fabsf(want[j]));
        v2_check_close(g + v->offset, want, v->numel, rtol * maxabs, gname);
        free(want);
        compared++;
    }
    return compared;
}

#endif
