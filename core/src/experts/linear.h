/* What the experts for linear systems (min_energy.c, lqr.c, lqr_finite.c) share: the capability
 * check, the discrete matrices (A, B) with the check that there is no affine drift, the Riccati
 * step of both LQR experts and the closed-loop feedback rollout. Internal to libtrc. */
#ifndef TRC_EXPERT_LINEAR_H
#define TRC_EXPERT_LINEAR_H

#include "expert_impl.h"

/* The state of every linear expert; each fills the matrices it needs (the rest stay NULL). */
typedef struct trc_linear_state {
    double *A, *B;       /* [s*s], [s*m] */
    double *AT;          /* min_energy: A^T (matrix power) [s*s] */
    double *M;           /* min_energy: u = M (target - A^T x0), [T*m, s] */
    double *W;           /* min_energy: Gramian [s*s] */
    double *P;           /* lqr: [s*s]; lqr_finite: [(T+1)*s*s] */
    double *K;           /* lqr: [m*s]; lqr_finite: [T*m*s] */
    double *F;           /* lqr_finite: feed-forward on c = (A - I) target, [T*m*s] */
    double q, r, qf;     /* LQR weights: Q = q diag(sys cost_q), R = r I, Qf = qf Q */
    struct trc_ilqr *nl; /* lqr_finite on a nonlinear system: its linearised LQR (trc/ilqr.h) */
} trc_linear_state;

/* accepts(): 0 for a linear system, else TRC_EUNSUPPORTED naming the expert. */
int trc_linear_accepts(const char *expert, const trc_system *sys);

/* Allocates p->state with A and B from the system's Jacobian at 0 (exact for a linear system),
 * refusing an affine drift term. */
int trc_linear_begin(trc_expert_plan *p);
void trc_linear_free(void *state);
/* Fills A, B, W, P, K of info from the state. */
void trc_linear_info(const trc_expert_plan *p, trc_expert_info *out);

/* P = (P + P') / 2 for a symmetric [s*s] matrix built with rounding. */
void trc_symmetrize(int s, double *P);

/* One Riccati step: given P' (next), returns K = (R + B'P'B)^-1 B'P'A and
 * P = Q + A'P'A - (B'P'A)' K. Also S^-1 B' for the caller's feed-forward when SinvBt != NULL. */
int trc_riccati_step(const trc_expert_plan *p, const trc_linear_state *ls, const double *Pn,
                     double *K, double *P, double *SinvBt);

/* The open-loop solve of the minimum-energy experts (min_energy, min_energy_ct): with d =
 * target - AT x0, u_k = M_k d clipped to the bound; the objective is the effort sum |u|^2. */
int trc_linear_open_loop(const trc_expert_plan *p, const double *x0, const double *target,
                         double *u, trc_expert_cost *cost);

/* The LQR experts' solve: closed loop through the system's own step function (so clipping is
 * felt), u_t = -K_t e_t (- F_t c for the finite horizon), with the quadratic objective. */
int trc_linear_feedback(const trc_expert_plan *p, int finite, const double *x0,
                        const double *target, double *u, trc_expert_cost *cost);

#endif
