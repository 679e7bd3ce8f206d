/* One classic RK4 step over a continuous-time field, with the exact Jacobian of the discrete RK4
 * map, for the systems that integrate an ODE (van_der_pol.c, ...). Internal to libtrc. */
#ifndef TRC_RK4_H
#define TRC_RK4_H

#define TRC_RK4_MAX 16 /* largest s + m the helper handles */

typedef struct trc_rk4_field {
    int s, m;
    /* dx = f(x, u): x [s], u [m] -> dx [s] */
    void (*f)(const double *x, const double *u, double *dx);
    /* Fx = df/dx [s*s], Fu = df/du [s*m] at (x, u), row-major. */
    void (*jac)(const double *x, const double *u, double *Fx, double *Fu);
} trc_rk4_field;

/* x: [s], u: [m] (held over the step) -> xn: [s] after one step of length h; A: [s*s] and
 * B: [s*m] (the step's Jacobians) when not NULL. */
void trc_rk4_step(const trc_rk4_field *F, const double *x, const double *u, double h, double *xn,
                  double *A, double *B);

#endif
