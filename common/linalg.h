// Small dense linear algebra for the factor solves: symmetric positive
// definite systems of dimension <= FRI_LINALG_MAX_N, row-major, float.
// No LAPACK dependency so the same code runs on-device.
#ifndef FR_COMMON_LINALG_H
#define FR_COMMON_LINALG_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"

#define FRI_LINALG_MAX_N 257u

// Length of the packed upper triangle of a d x d symmetric matrix.
// Layout: rows in order, row a holds columns a..d-1, so element (a, b),
// a <= b, is at a*d - a*(a-1)/2 + (b - a).
static inline size_t
fri_packed_len(size_t d)
{
    return d * (d + 1) / 2;
}

// Packed position of element (a, b) with a <= b < d.
static inline size_t
fri_packed_index(size_t d, size_t a, size_t b)
{
    return a * d - (a * (a - 1)) / 2 + (b - a);
}

// a * b into *out; 0 (and *out untouched) if the product overflows size_t.
static inline int
fri_mul_ok(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a) {
        return 0;
    }
    *out = a * b;
    return 1;
}

// Workspace of at least need floats for the per-row solves: the caller's
// work (FR_EINVAL if shorter than need) or, when work is NULL, a fresh one
// that is also stored in *owned for the caller to free (*owned is NULL
// otherwise). Lets one code path serve callers with and without scratch.
FR_NODISCARD fr_err fri_work_get(
    float **w, float **owned, float *work, size_t work_len, size_t need);

// Nonzero when every v[0..n) is finite (no NaN or infinity).
int fri_all_finite(const float *v, size_t n);

// Expands a packed upper triangle into the upper triangle of a full d x d
// row-major matrix (the strict lower triangle is left untouched).
void fri_packed_unpack(float *full, const float *packed, size_t d);

// Solves A x = b in place for symmetric positive definite A (d x d,
// row-major, only the upper triangle is read; A is overwritten by its
// Cholesky factor). Accumulates in double. FR_EINVAL if d is 0 or too
// large, FR_EINTERNAL if A is not numerically positive definite.
FR_NODISCARD fr_err fri_chol_solve(float *A, float *b, size_t d);

// Cholesky factor in double: L (n x n, row-major, lower triangle written)
// of A + shift I (A read from its lower triangle). 0, or -1 when that is
// not numerically positive definite.
int fri_chol_d(double *L, const double *A, size_t n, double shift);
// Solves (L L^T) X = B in place for the n x m right-hand sides B.
void fri_chol_d_solve(const double *L, double *B, size_t n, size_t m);

// Replaces the symmetric matrix held as a packed upper triangle G (d x d)
// by its nearest positive semidefinite matrix in Frobenius norm: the
// eigenvalues below `floor` are raised to it (cyclic Jacobi in double).
// work holds 2 d^2 + d doubles. Returns how many eigenvalues were raised;
// a non-finite G is left as it is (returns 0).
size_t fri_psd_project_packed(float *G, size_t d, double floor, double *work);

#endif
