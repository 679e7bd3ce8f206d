/* Small dense linear algebra for the experts; see linalg.h. */
#include "linalg.h"
#include "trc/error.h"

#include <math.h>
#include <string.h>

void trc_la_mul(int n, int k, int p, const double *A, const double *B, double *C) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < p; j++) {
            double acc = 0.0;
            for (int l = 0; l < k; l++)
                acc += A[i * k + l] * B[l * p + j];
            C[i * p + j] = acc;
        }
}

void trc_la_mul_tn(int n, int k, int p, const double *A, const double *B, double *C) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < p; j++) {
            double acc = 0.0;
            for (int l = 0; l < k; l++)
                acc += A[l * n + i] * B[l * p + j];
            C[i * p + j] = acc;
        }
}

void trc_la_mul_nt(int n, int k, int p, const double *A, const double *B, double *C) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < p; j++) {
            double acc = 0.0;
            for (int l = 0; l < k; l++)
                acc += A[i * k + l] * B[j * k + l];
            C[i * p + j] = acc;
        }
}

double trc_la_maxabs(int len, const double *x) {
    double m = 0.0;
    for (int i = 0; i < len; i++)
        if (fabs(x[i]) > m)
            m = fabs(x[i]);
    return m;
}

int trc_la_solve(int n, int p, double *A, double *B) {
    double scale = trc_la_maxabs(n * n, A);
    if (!(scale > 0.0) || !isfinite(scale))
        return trc_fail(TRC_ENUMERIC, "singular or non-finite %dx%d matrix", n, n);
    for (int c = 0; c < n; c++) {
        int piv = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(A[r * n + c]) > fabs(A[piv * n + c]))
                piv = r;
        if (fabs(A[piv * n + c]) <= 1e-13 * scale)
            return trc_fail(TRC_ENUMERIC, "singular %dx%d matrix (pivot %d)", n, n, c);
        if (piv != c) {
            for (int j = 0; j < n; j++) {
                double t = A[c * n + j];
                A[c * n + j] = A[piv * n + j];
                A[piv * n + j] = t;
            }
            for (int j = 0; j < p; j++) {
                double t = B[c * p + j];
                B[c * p + j] = B[piv * p + j];
                B[piv * p + j] = t;
            }
        }
        for (int r = c + 1; r < n; r++) {
            double f = A[r * n + c] / A[c * n + c];
            if (f == 0.0)
                continue;
            for (int j = c; j < n; j++)
                A[r * n + j] -= f * A[c * n + j];
            for (int j = 0; j < p; j++)
                B[r * p + j] -= f * B[c * p + j];
        }
    }
    for (int c = n - 1; c >= 0; c--)
        for (int j = 0; j < p; j++) {
            double acc = B[c * p + j];
            for (int l = c + 1; l < n; l++)
                acc -= A[c * n + l] * B[l * p + j];
            B[c * p + j] = acc / A[c * n + c];
        }
    return TRC_OK;
}
