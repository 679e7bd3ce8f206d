/* Small dense linear algebra in double precision for the experts (matrices of a few rows:
 * state and control dimensions). Row-major; internal to libtrc (not a public header). */
#ifndef TRC_LINALG_H
#define TRC_LINALG_H

/* C = A B. A: [n, k], B: [k, p] -> C: [n, p]. C may not alias A or B. */
void trc_la_mul(int n, int k, int p, const double *A, const double *B, double *C);
/* C = A^T B. A: [k, n], B: [k, p] -> C: [n, p]. */
void trc_la_mul_tn(int n, int k, int p, const double *A, const double *B, double *C);
/* C = A B^T. A: [n, k], B: [p, k] -> C: [n, p]. */
void trc_la_mul_nt(int n, int k, int p, const double *A, const double *B, double *C);
/* Solves A X = B in place (B becomes X) by Gaussian elimination with partial pivoting.
 * A: [n, n] (overwritten), B: [n, p]. Returns TRC_ENUMERIC when A is singular to working
 * precision (a pivot below 1e-13 times the largest entry of A). */
int trc_la_solve(int n, int p, double *A, double *B);
/* Largest absolute entry of x[0..len). */
double trc_la_maxabs(int len, const double *x);

#endif
