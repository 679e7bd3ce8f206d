/* The box QP of the control-limited backward pass: projected Newton on a few variables. Each
 * iteration fixes the variables held at a bound by the gradient, takes the Newton step on the
 * others and backtracks along the projected path (Armijo). A strictly convex QP with an interior
 * solution is solved by the first step; active bounds are found in a few. */
#include "boxqp.h"

#include <math.h>
#include <string.h>

#define QP_MAX_ITERS 100
#define QP_ARMIJO 0.1 /* sufficient decrease along the projected path */
#define QP_MIN_STEP 1e-12
#define QP_PD_TOL 1e-12 /* pivot tolerance of the Cholesky on the free set */

int trc_chol(int n, const double *A, double *L, double tol) {
    double scale = 0.0;
    for (int i = 0; i < n; i++)
        scale = fmax(scale, fabs(A[i * n + i]));
    for (int j = 0; j < n; j++) {
        double d = A[j * n + j];
        for (int k = 0; k < j; k++)
            d -= L[j * n + k] * L[j * n + k];
        if (!(d > tol * (1.0 + scale)))
            return -1;
        double ljj = sqrt(d);
        L[j * n + j] = ljj;
        for (int i = j + 1; i < n; i++) {
            double v = A[i * n + j];
            for (int k = 0; k < j; k++)
                v -= L[i * n + k] * L[j * n + k];
            L[i * n + j] = v / ljj;
        }
        for (int i = 0; i < j; i++)
            L[i * n + j] = 0.0;
    }
    return 0;
}

void trc_chol_solve(int n, const double *L, double *b) {
    for (int i = 0; i < n; i++) { /* L y = b */
        double v = b[i];
        for (int k = 0; k < i; k++)
            v -= L[i * n + k] * b[k];
        b[i] = v / L[i * n + i];
    }
    for (int i = n - 1; i >= 0; i--) { /* L' x = y */
        double v = b[i];
        for (int k = i + 1; k < n; k++)
            v -= L[k * n + i] * b[k];
        b[i] = v / L[i * n + i];
    }
}

static double qp_value(int n, const double *H, const double *g, const double *x) {
    double v = 0.0;
    for (int i = 0; i < n; i++) {
        double hx = 0.0;
        for (int j = 0; j < n; j++)
            hx += H[i * n + j] * x[j];
        v += x[i] * (0.5 * hx + g[i]);
    }
    return v;
}

/* grad = g + H x; free_out[i] = 0 where x_i sits on a bound the gradient pushes against.
 * Factors H on the free set into L. Returns nf or -1 (not positive definite there). */
static int free_set(int n, const double *H, const double *g, const double *lo, const double *hi,
                    const double *x, double *grad, int *free_out, double *L) {
    int idx[TRC_BOXQP_MAX], nf = 0;
    for (int i = 0; i < n; i++) {
        double v = g[i];
        for (int j = 0; j < n; j++)
            v += H[i * n + j] * x[j];
        grad[i] = v;
        int held = (x[i] <= lo[i] && v > 0.0) || (x[i] >= hi[i] && v < 0.0);
        free_out[i] = !held;
        if (!held)
            idx[nf++] = i;
    }
    double Hf[TRC_BOXQP_MAX * TRC_BOXQP_MAX];
    for (int a = 0; a < nf; a++)
        for (int b = 0; b < nf; b++)
            Hf[a * nf + b] = H[idx[a] * n + idx[b]];
    return nf == 0 ? 0 : (trc_chol(nf, Hf, L, QP_PD_TOL) ? -1 : nf);
}

/* One variable (the common single-control case) in closed form: the clipped minimiser. */
static int boxqp1(double H, double g, double lo, double hi, double *x, int *free_out, double *L) {
    if (!(H > QP_PD_TOL * (1.0 + fabs(H))))
        return -1;
    double v = -g / H;
    *free_out = v >= lo && v <= hi;
    *x = v < lo ? lo : (v > hi ? hi : v);
    *L = sqrt(H);
    return *free_out;
}

int trc_boxqp(int n, const double *H, const double *g, const double *lo, const double *hi,
              double *x, int *free_out, double *L) {
    if (n == 1)
        return boxqp1(H[0], g[0], lo[0], hi[0], x, free_out, L);
    double grad[TRC_BOXQP_MAX], d[TRC_BOXQP_MAX], xn[TRC_BOXQP_MAX], rhs[TRC_BOXQP_MAX];
    for (int i = 0; i < n; i++)
        x[i] = fmin(hi[i], fmax(lo[i], x[i]));
    double value = qp_value(n, H, g, x);
    for (int it = 0; it < QP_MAX_ITERS; it++) {
        int nf = free_set(n, H, g, lo, hi, x, grad, free_out, L);
        if (nf <= 0)
            return nf;
        /* Newton direction on the free variables, zero on the held ones. */
        int k = 0;
        double gmax = 0.0;
        for (int i = 0; i < n; i++)
            if (free_out[i]) {
                rhs[k++] = -grad[i];
                gmax = fmax(gmax, fabs(grad[i]));
            }
        if (gmax == 0.0)
            break;
        trc_chol_solve(nf, L, rhs);
        k = 0;
        double slope = 0.0;
        for (int i = 0; i < n; i++) {
            d[i] = free_out[i] ? rhs[k++] : 0.0;
            slope += grad[i] * d[i];
        }
        if (!(slope < 0.0))
            break;
        double step = 1.0, vn = value;
        int accepted = 0;
        while (step >= QP_MIN_STEP) {
            for (int i = 0; i < n; i++)
                xn[i] = fmin(hi[i], fmax(lo[i], x[i] + step * d[i]));
            vn = qp_value(n, H, g, xn);
            if ((value - vn) >= -QP_ARMIJO * step * slope) {
                accepted = 1;
                break;
            }
            step *= 0.5;
        }
        if (!accepted)
            break;
        int moved = memcmp(x, xn, sizeof(double) * (size_t)n) != 0;
        memcpy(x, xn, sizeof(double) * (size_t)n);
        double gain = value - vn;
        value = vn;
        if (!moved || gain <= 1e-15 * (1.0 + fabs(value)))
            break;
    }
    return free_set(n, H, g, lo, hi, x, grad, free_out, L);
}
