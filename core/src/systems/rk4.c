/* RK4 over a continuous-time field, with the exact Jacobian of the RK4 map (rk4.h).
 * k1 = f(x), k2 = f(x + h/2 k1), k3 = f(x + h/2 k2), k4 = f(x + h k3) (u held over the step),
 * x+ = x + h/6 (k1 + 2 k2 + 2 k3 + k4). Differentiating each stage by the chain rule gives
 * dk_i = Fx(y_i) dy_i + Fu(y_i) du with dy_i the derivative of the stage's argument, so the
 * Jacobians are exact for the discrete map (not a finite-difference approximation). */
#include "rk4.h"

#include <stddef.h>

void trc_rk4_step(const trc_rk4_field *F, const double *x, const double *u, double h, double *xn,
                  double *A, double *B) {
    const int s = F->s, m = F->m, w = s + m; /* derivatives w.r.t. (x, u): [s, s+m] */
    double k[4][TRC_RK4_MAX], y[TRC_RK4_MAX], dk[4][TRC_RK4_MAX * TRC_RK4_MAX],
        dy[TRC_RK4_MAX * TRC_RK4_MAX];
    double Fx[TRC_RK4_MAX * TRC_RK4_MAX], Fu[TRC_RK4_MAX * TRC_RK4_MAX];
    const double c[4] = {0.0, 0.5, 0.5, 1.0};
    const int want = A != NULL || B != NULL;
    for (int i = 0; i < 4; i++) {
        for (int r = 0; r < s; r++)
            y[r] = x[r] + (i ? c[i] * h * k[i - 1][r] : 0.0);
        F->f(y, u, k[i]);
        if (!want)
            continue;
        /* dy = [I 0] + c h dk_{i-1}: [s, s+m] */
        for (int r = 0; r < s; r++)
            for (int q = 0; q < w; q++)
                dy[r * w + q] = (q == r ? 1.0 : 0.0) + (i ? c[i] * h * dk[i - 1][r * w + q] : 0.0);
        F->jac(y, u, Fx, Fu);
        for (int r = 0; r < s; r++)
            for (int q = 0; q < w; q++) {
                double acc = q >= s ? Fu[r * m + (q - s)] : 0.0;
                for (int l = 0; l < s; l++)
                    acc += Fx[r * s + l] * dy[l * w + q];
                dk[i][r * w + q] = acc;
            }
    }
    for (int r = 0; r < s; r++)
        xn[r] = x[r] + h / 6.0 * (k[0][r] + 2.0 * k[1][r] + 2.0 * k[2][r] + k[3][r]);
    if (!want)
        return;
    for (int r = 0; r < s; r++)
        for (int q = 0; q < w; q++) {
            double d = (q == r ? 1.0 : 0.0) + h / 6.0 *
                                                  (dk[0][r * w + q] + 2.0 * dk[1][r * w + q] +
                                                   2.0 * dk[2][r * w + q] + dk[3][r * w + q]);
            if (q < s && A)
                A[r * s + q] = d;
            else if (q >= s && B)
                B[r * m + (q - s)] = d;
        }
}
