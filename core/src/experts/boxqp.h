/* Small dense kernels of the iLQR solver: Cholesky of a few-by-few matrix, and the box QP
 * of its backward pass. Internal to libtrc. */
#ifndef TRC_BOXQP_H
#define TRC_BOXQP_H

#define TRC_BOXQP_MAX 16 /* largest n (control dimension) the box QP handles */

/* Cholesky factor A = L L' of a symmetric positive definite matrix. A, L: [n*n], L lower
 * triangular (may alias A). Returns 0, or -1 when a pivot is not above tol * (1 + max|A_ii|). */
int trc_chol(int n, const double *A, double *L, double tol);
/* Solves L L' x = b in place. L: [n*n] from trc_chol, b: [n]. */
void trc_chol_solve(int n, const double *L, double *b);

/* Minimises 0.5 x'Hx + g'x over lo <= x <= hi by projected Newton (Bertsekas 1982).
 * H: [n*n] symmetric, g, lo, hi: [n] (lo <= hi); x: [n] the start in, the solution out.
 * free_out: [n] 1 where x_i is free (not held at a bound by the gradient); L: [n*n] the Cholesky
 * factor of H on the free set, packed as an nf x nf matrix. Returns nf (0..n), or -1 when H is
 * not positive definite on the free set. */
int trc_boxqp(int n, const double *H, const double *g, const double *lo, const double *hi,
              double *x, int *free_out, double *L);

#endif
