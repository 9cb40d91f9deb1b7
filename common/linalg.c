#include "linalg.h"

#include <math.h>
#include <stdlib.h>

fr_err
fri_work_get(float **w, float **owned, float *work, size_t work_len,
             size_t need)
{
    *owned = NULL;
    if (work != NULL) {
        if (work_len < need) {
            return FR_EINVAL;
        }
        *w = work;
        return FR_OK;
    }
    *owned = malloc(need * sizeof(float));
    if (*owned == NULL) {
        return FR_ENOMEM;
    }
    *w = *owned;
    return FR_OK;
}

int
fri_all_finite(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(v[i])) {
            return 0;
        }
    }
    return 1;
}

void
fri_packed_unpack(float *full, const float *packed, size_t d)
{
    size_t p = 0;
    for (size_t a = 0; a < d; a++) {
        for (size_t b = a; b < d; b++) {
            full[a * d + b] = packed[p++];
        }
    }
}

// Cholesky A = R^T R with R upper triangular, stored over A's upper
// triangle. Row-oriented so the inner loops walk contiguous memory.
fr_err
fri_chol_solve(float *A, float *b, size_t d)
{
    if (A == NULL || b == NULL || d == 0 || d > FRI_LINALG_MAX_N) {
        return FR_EINVAL;
    }
    for (size_t j = 0; j < d; j++) {
        float *rj = A + j * d;
        double s = rj[j];
        for (size_t i = 0; i < j; i++) {
            double v = A[i * d + j];
            s -= v * v;
        }
        if (!(s > 0.0) || !isfinite(s)) {
            return FR_EINTERNAL;
        }
        double rjj = sqrt(s);
        rj[j] = (float)rjj;
        double inv = 1.0 / rjj;
        // R[j][c] = (A[j][c] - sum_i R[i][j] R[i][c]) / R[j][j]
        for (size_t i = 0; i < j; i++) {
            const float *ri = A + i * d;
            float rij = ri[j];
            if (rij == 0.0f) {
                continue;
            }
            for (size_t c = j + 1; c < d; c++) {
                rj[c] -= rij * ri[c];
            }
        }
        for (size_t c = j + 1; c < d; c++) {
            rj[c] = (float)(rj[c] * inv);
        }
    }
    // Forward: R^T y = b.
    for (size_t i = 0; i < d; i++) {
        double s = b[i];
        for (size_t j = 0; j < i; j++) {
            s -= (double)A[j * d + i] * b[j];
        }
        b[i] = (float)(s / A[i * d + i]);
    }
    // Back: R x = y.
    for (size_t ii = d; ii-- > 0;) {
        const float *ri = A + ii * d;
        double s = b[ii];
        for (size_t j = ii + 1; j < d; j++) {
            s -= (double)ri[j] * b[j];
        }
        b[ii] = (float)(s / ri[ii]);
    }
    return FR_OK;
}

size_t
fri_psd_project_packed(float *G, size_t d, double floor, double *work)
{
    double *A = work, *V = work + d * d, *lam = work + 2 * d * d;
    for (size_t a = 0; a < d; a++) {
        for (size_t b = a; b < d; b++) {
            double v = G[fri_packed_index(d, a, b)];
            if (!isfinite(v)) {
                return 0;
            }
            A[a * d + b] = A[b * d + a] = v;
        }
        for (size_t b = 0; b < d; b++) {
            V[a * d + b] = a == b ? 1.0 : 0.0;
        }
    }
    for (int sweep = 0; sweep < 60; sweep++) {
        double off = 0.0, diag = 0.0;
        for (size_t a = 0; a < d; a++) {
            diag += A[a * d + a] * A[a * d + a];
            for (size_t b = a + 1; b < d; b++) {
                off += A[a * d + b] * A[a * d + b];
            }
        }
        if (off <= 1e-24 * (diag + 1e-300)) {
            break;
        }
        for (size_t p = 0; p < d; p++) {
            for (size_t q = p + 1; q < d; q++) {
                double apq = A[p * d + q];
                if (apq == 0.0) {
                    continue;
                }
                double theta = (A[q * d + q] - A[p * d + p]) / (2.0 * apq);
                double t     = (theta >= 0.0 ? 1.0 : -1.0) /
                           (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (size_t r = 0; r < d; r++) {
                    double arp = A[r * d + p], arq = A[r * d + q];
                    A[r * d + p] = c * arp - s * arq;
                    A[r * d + q] = s * arp + c * arq;
                }
                for (size_t r = 0; r < d; r++) {
                    double apr = A[p * d + r], aqr = A[q * d + r];
                    A[p * d + r] = c * apr - s * aqr;
                    A[q * d + r] = s * apr + c * aqr;
                }
                for (size_t r = 0; r < d; r++) {
                    double vrp = V[r * d + p], vrq = V[r * d + q];
                    V[r * d + p] = c * vrp - s * vrq;
                    V[r * d + q] = s * vrp + c * vrq;
                }
            }
        }
    }
    size_t raised = 0;
    for (size_t a = 0; a < d; a++) {
        lam[a] = A[a * d + a];
        if (lam[a] < floor) {
            lam[a] = floor;
            raised++;
        }
    }
    if (raised == 0) {
        return 0;
    }
    for (size_t a = 0; a < d; a++) {
        for (size_t b = a; b < d; b++) {
            double v = 0.0;
            for (size_t e = 0; e < d; e++) {
                v += V[a * d + e] * lam[e] * V[b * d + e];
            }
            G[fri_packed_index(d, a, b)] = (float) v;
        }
    }
    return raised;
}

int
fri_chol_d(double *L, const double *A, size_t n, double shift)
{
    for (size_t j = 0; j < n; j++) {
        double s = A[j * n + j] + shift;
        for (size_t t = 0; t < j; t++) {
            s -= L[j * n + t] * L[j * n + t];
        }
        if (!(s > 0.0)) {
            return -1;
        }
        L[j * n + j] = sqrt(s);
        for (size_t i = j + 1; i < n; i++) {
            double v = A[i * n + j];
            for (size_t t = 0; t < j; t++) {
                v -= L[i * n + t] * L[j * n + t];
            }
            L[i * n + j] = v / L[j * n + j];
        }
    }
    return 0;
}

void
fri_chol_d_solve(const double *L, double *B, size_t n, size_t m)
{
    for (size_t c = 0; c < m; c++) {
        for (size_t i = 0; i < n; i++) { // L y = b
            double r = B[i * m + c];
            for (size_t t = 0; t < i; t++) {
                r -= L[i * n + t] * B[t * m + c];
            }
            B[i * m + c] = r / L[i * n + i];
        }
        for (size_t i = n; i-- > 0;) { // L^T x = y
            double r = B[i * m + c];
            for (size_t t = i + 1; t < n; t++) {
                r -= L[t * n + i] * B[t * m + c];
            }
            B[i * m + c] = r / L[i * n + i];
        }
    }
}
