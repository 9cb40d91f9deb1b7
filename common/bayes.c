#include "bayes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"

size_t
fri_bpmf_work_len(uint32_t k)
{
    size_t d = (size_t)k + 1;
    return 2 * d * d + 2 * d;
}

double
fri_bpmf_gamma(fri_rng *r, double shape)
{
    if (!(shape > 0.0)) {
        return 0.0;
    }
    if (shape < 1.0) {
        // Gamma(a) = Gamma(a + 1) * U^(1/a).
        double u = fri_rng_uniform(r);
        return fri_bpmf_gamma(r, shape + 1.0) * pow(u, 1.0 / shape);
    }
    double dd = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * dd);
    for (;;) {
        double x = fri_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0.0) {
            continue;
        }
        v        = v * v * v;
        double u = fri_rng_uniform(r);
        if (u > 0.0 && log(u) < 0.5 * x * x + dd - dd * v + dd * log(v)) {
            return dd * v;
        }
    }
}

static int
prior_valid(const fri_bpmf_prior *p, size_t d)
{
    return p != NULL && p->d == d && p->mean != NULL && p->prec != NULL;
}

// Completes a conditional posterior: A (d x d, upper triangle holds
// beta * Gram) and b (beta * h) get the prior added, then x = A^-1 b plus,
// with rng, R^-1 eps where A = R^T R (so the draw has covariance A^-1).
// x = [factor; bias] goes to f_out (d - 1 floats) and *bias_out, only when
// the step succeeds.
static fr_err
finish_step(float *f_out, float *bias_out, float *cov_out, float *A, float *b,
    float *eps, float *rinv, size_t d, const fri_bpmf_prior *prior,
    fri_rng *rng)
{
    float x_out[FRI_MF_MAX_K + 1];
    for (size_t a = 0; a < d; a++) {
        const float *la = prior->prec + a * d;
        double       s  = 0.0;
        for (size_t c = 0; c < d; c++) {
            s += (double)la[c] * prior->mean[c];
        }
        b[a] += (float)s;
        for (size_t c = a; c < d; c++) {
            A[a * d + c] += la[c];
        }
    }
    fr_err e = fri_chol_solve(A, b, d);
    if (e != FR_OK) {
        return e;
    }
    // A's upper triangle now holds R.
    if (rng != NULL) {
        for (size_t a = 0; a < d; a++) {
            eps[a] = (float)fri_rng_normal(rng);
        }
        for (size_t ii = d; ii-- > 0;) {
            const float *ri = A + ii * d;
            double       s  = eps[ii];
            for (size_t c = ii + 1; c < d; c++) {
                s -= (double)ri[c] * eps[c];
            }
            eps[ii] = (float)(s / ri[ii]);
        }
    }
    for (size_t a = 0; a < d; a++) {
        x_out[a] = b[a] + (rng != NULL ? eps[a] : 0.0f);
        if (!isfinite(x_out[a])) {
            return FR_EINTERNAL;
        }
    }
    if (cov_out != NULL) {
        // R^-1 (upper) column by column, then A^-1 = R^-1 R^-T.
        memset(rinv, 0, d * d * sizeof(float));
        for (size_t c = 0; c < d; c++) {
            for (size_t ii = c + 1; ii-- > 0;) {
                const float *ri = A + ii * d;
                double       s  = ii == c ? 1.0 : 0.0;
                for (size_t t = ii + 1; t <= c; t++) {
                    s -= (double)ri[t] * rinv[t * d + c];
                }
                rinv[ii * d + c] = (float)(s / ri[ii]);
            }
        }
        size_t t = 0;
        for (size_t a = 0; a < d; a++) {
            for (size_t bb = a; bb < d; bb++) {
                double s = 0.0;
                for (size_t c = bb; c < d; c++) {
                    s += (double)rinv[a * d + c] * rinv[bb * d + c];
                }
                cov_out[t++] = (float)s;
            }
        }
    }
    memcpy(f_out, x_out, (d - 1) * sizeof(float));
    *bias_out = x_out[d - 1];
    return FR_OK;
}

void
fri_vbmf_rated_set_mean(float *mean_out, const fri_bpmf_prior *prior,
    const float *Q, const uint32_t *items, size_t n, uint32_t k, float w)
{
    memcpy(mean_out, prior->mean, prior->d * sizeof(float));
    if (w == 0.0f || n == 0 || k >= prior->d) {
        return;
    }
    double acc[FRI_MF_MAX_K];
    memset(acc, 0, k * sizeof(double));
    for (size_t j = 0; j < n; j++) {
        const float *q = Q + (size_t)(items != NULL ? items[j] : j) * k;
        for (uint32_t a = 0; a < k; a++) {
            acc[a] += q[a];
        }
    }
    const double s = (double)w / sqrt((double)n);
    for (uint32_t a = 0; a < k; a++) {
        mean_out[a] += (float)(s * acc[a]);
    }
}

size_t
fri_vbmf_loo_work_len(uint32_t k, size_t top)
{
    const size_t d = (size_t)k + 1;
    return 5 * d * d + 11 * d + 2 * top;
}

// What every leave-one-out solve of fri_vbmf_user_loo shares.
typedef struct {
    const fri_mf_items *it;
    const float        *item_var, *prec;
    const uint32_t     *items;
    const float        *ratings;
    size_t              k, d;
    double              beta, alpha, gamma; // prior-mean shift: alpha S - gamma q_j
    const double       *A, *b, *sq; // full system, sum of q over the rated set
    double             *Aj, *Lj, *xj; // scratch
    const float        *qt;
    double              bt; // mu + b_target
} vbmf_loo_ctx;

// x_j from A_j = A - beta (z z^T + D_j), b_j = b - beta y_j z +
// prec (alpha S - gamma q_j) in double; pred = mu + b_t + z_t . x_j.
static fr_err
vbmf_loo_exact(void *ctx, size_t j, double *pred)
{
    const vbmf_loo_ctx *c = ctx;
    const size_t        k = c->k, d = c->d;
    const float        *q = c->it->Q + (size_t)c->items[j] * k;
    const float        *v = c->item_var + (size_t)c->items[j] * d;
    double z[FRI_MF_MAX_K + 1], sh[FRI_MF_MAX_K + 1];
    for (size_t a = 0; a < k; a++) {
        z[a]  = q[a];
        sh[a] = c->alpha * c->sq[a] - c->gamma * q[a];
    }
    z[k]      = 1.0;
    sh[k]     = 0.0;
    double yj = (double)c->ratings[j] - c->it->mu - c->it->bi[c->items[j]];
    for (size_t a = 0; a < d; a++) {
        double s = c->b[a] - c->beta * yj * z[a];
        for (size_t e = 0; e < k; e++) {
            s += (double)c->prec[a * d + e] * sh[e];
        }
        c->xj[a] = s;
        for (size_t e = 0; e < d; e++) {
            c->Aj[a * d + e] = c->A[a * d + e] - c->beta * z[a] * z[e];
        }
        if (a < k) {
            c->Aj[a * d + a] -= c->beta * v[a];
        }
    }
    if (fri_chol_d(c->Lj, c->Aj, d, 0.0) != 0) {
        return FR_EINTERNAL;
    }
    fri_chol_d_solve(c->Lj, c->xj, d, 1);
    double p = c->bt + c->xj[k];
    for (size_t a = 0; a < k; a++) {
        p += (double)c->qt[a] * c->xj[a];
    }
    *pred = p;
    return FR_OK;
}

fr_err
fri_vbmf_user_loo(float *loo, const fri_mf_items *it, const float *item_var,
    const uint32_t *items, const float *ratings, size_t n,
    const fri_bpmf_prior *prior, float beta, float svdpp, uint32_t target,
    float full, size_t top, double *work, size_t work_len)
{
    if (loo == NULL || it == NULL || it->k == 0 || it->k > FRI_MF_MAX_K
        || it->Q == NULL || it->bi == NULL || item_var == NULL
        || items == NULL || ratings == NULL || n < 2
        || target >= it->n_items || !prior_valid(prior, (size_t)it->k + 1)
        || !(beta > 0.0f) || !isfinite(beta) || !isfinite(svdpp)
        || work == NULL
        || work_len < fri_vbmf_loo_work_len(it->k, top < n ? top : 0)) {
        return FR_EINVAL;
    }
    for (size_t j = 0; j < n; j++) {
        if (items[j] >= it->n_items || !isfinite(ratings[j])) {
            return FR_EINVAL;
        }
    }
    const size_t k = it->k, d = k + 1;
    double *A = work, *L = A + d * d, *Aj = L + d * d, *Lj = Aj + d * d;
    double *b = Lj + d * d, *x = b + d, *u = x + d, *sq = u + d, *xj = sq + d;
    double *lu = xj + d, *lsq = lu + d, *heaps = lsq + d;
    // The full system, as the device's step builds it: the data sums by
    // the same float code (fri_mf_user_normal_eq), the rest in double.
    // The heaps are there only when some ratings can be skipped (the
    // work length counts them that way).
    const size_t nheap = top < n ? top : 0;
    float *Af = (float *)(heaps + 2 * nheap), *bf = Af + d * d;
    fri_mf_user_normal_eq(Af, bf, it, items, ratings, n);
    memset(sq, 0, d * sizeof(double));
    for (size_t a = 0; a < d; a++) {
        b[a] = bf[a];
        for (size_t c = a; c < d; c++) {
            A[a * d + c] = Af[a * d + c];
        }
    }
    for (size_t j = 0; j < n; j++) {
        const float *q = it->Q + (size_t)items[j] * k;
        const float *v = item_var + (size_t)items[j] * d;
        for (size_t a = 0; a < k; a++) {
            A[a * d + a] += v[a];
            sq[a] += q[a];
        }
    }
    const double w  = svdpp, nn = (double)n;
    const double sn = w / sqrt(nn); // the full set's prior-mean shift
    for (size_t a = 0; a < d; a++) {
        b[a] *= beta;
        for (size_t c = a; c < d; c++) {
            A[a * d + c] = A[a * d + c] * beta + prior->prec[a * d + c];
            A[c * d + a] = A[a * d + c];
        }
        for (size_t c = 0; c < d; c++) {
            double pm = prior->mean[c] + (c < k ? sn * sq[c] : 0.0);
            b[a] += (double)prior->prec[a * d + c] * pm;
        }
    }
    if (fri_chol_d(L, A, d, 0.0) != 0) {
        return FR_EINTERNAL;
    }
    const float *qt = it->Q + (size_t)target * k;
    for (size_t a = 0; a < d; a++) {
        x[a] = b[a];
        u[a] = a < k ? qt[a] : 1.0;
    }
    fri_chol_d_solve(L, x, d, 1);
    fri_chol_d_solve(L, u, d, 1);
    vbmf_loo_ctx ctx = { it, item_var, prior->prec, items, ratings, k, d,
        beta, w != 0.0 ? w / sqrt(nn - 1.0) - sn : 0.0,
        w != 0.0 ? w / sqrt(nn - 1.0) : 0.0, A, b, sq, Aj, Lj, xj, qt,
        (double)it->mu + it->bi[target] };
    if (top == 0 || top >= n) {
        return fri_loo_top(loo, n, top, full, vbmf_loo_exact, &ctx, NULL);
    }
    // Bounds. x_j - x = A_j^-1 r_j with r_j = beta (z (z.x - y_j) + D_j x)
    // + prec (alpha S - gamma q_j) and A_j^-1 = A^-1 + A^-1 E_j A_j^-1, so
    // the effect z_t . (x - x_j) = -u . r_j - (E_j u) . A_j^-1 r_j, the
    // second term at most |E_j u| |r_j| / (lambda_min(A) - |E_j|).
    // lambda_min(A) >= 1 / (A^-1's largest absolute row sum); |prec|_2 <=
    // its largest absolute row sum.
    double g = 0.0, gp = 0.0, nlsq = 0.0;
    for (size_t c = 0; c < d; c++) {
        for (size_t a = 0; a < d; a++) {
            Aj[a * d + c] = a == c ? 1.0 : 0.0; // A^-1 column by column
        }
    }
    fri_chol_d_solve(L, Aj, d, d);
    for (size_t a = 0; a < d; a++) {
        double r = 0.0, rp = 0.0, s1 = 0.0, s2 = 0.0;
        for (size_t c = 0; c < d; c++) {
            r += fabs(Aj[a * d + c]);
            rp += fabs((double)prior->prec[a * d + c]);
            s1 += (double)prior->prec[a * d + c] * u[c];
            s2 += (double)prior->prec[a * d + c] * (c < k ? sq[c] : 0.0);
        }
        g      = r > g ? r : g;
        gp     = rp > gp ? rp : gp;
        lu[a]  = s1;
        lsq[a] = s2;
        nlsq += s2 * s2;
    }
    const double lam = (1.0 - 1e-9) / g; // rounding of the inverse
    nlsq             = sqrt(nlsq);
    double full_pred = ctx.bt + x[k];
    for (size_t a = 0; a < k; a++) {
        full_pred += (double)qt[a] * x[a];
    }
    const double cst = (double)full - full_pred;
    // Per rating only z's products and D_j's largest entry are read; D_j's
    // products are bounded through vmax: |D_j x| <= vmax |x|, |D_j u| <=
    // vmax |u|, |u . D_j x| <= vmax sum |u_a x_a|.
    double nx = 0.0, nu = 0.0, aux = 0.0, luS = 0.0;
    for (size_t a = 0; a < k; a++) {
        nx += x[a] * x[a];
        nu += u[a] * u[a];
        aux += fabs(u[a] * x[a]);
        luS += lu[a] * sq[a];
    }
    nx = sqrt(nx);
    nu = sqrt(nu);
    const double bb = beta; // the noise precision, in double
    for (size_t j = 0; j < n; j++) {
        const float *q = it->Q + (size_t)items[j] * k;
        const float *v = item_var + (size_t)items[j] * d;
        double zx = x[k], zu = u[k], z2 = 1.0, luq = 0.0, vmax = 0.0;
        for (size_t a = 0; a < k; a++) {
            double qa = q[a];
            zx += qa * x[a];
            zu += qa * u[a];
            z2 += qa * qa;
            luq += lu[a] * qa;
            vmax = v[a] > vmax ? v[a] : vmax;
        }
        double yj  = (double)ratings[j] - it->mu - it->bi[items[j]];
        double e   = zx - yj, nz = sqrt(z2);
        // u . r_j without the D_j term, which joins the bound.
        double ur  = bb * zu * e + ctx.alpha * luS - ctx.gamma * luq;
        double nr  = bb * (fabs(e) * nz + vmax * nx) + fabs(ctx.alpha) * nlsq
                     + fabs(ctx.gamma) * gp * sqrt(z2 - 1.0);
        double ne  = bb * (z2 + vmax);
        double neu = bb * (fabs(zu) * nz + vmax * nu);
        double gap = lam - ne;
        // effect = cst - (pred_j - full_pred) = cst - u.r_j - second term
        float ub = (float)(gap > 1e-12 * lam
                ? cst - ur + bb * vmax * aux + neu * nr / gap
                : INFINITY);
        loo[j] = isnan(ub) ? INFINITY : ub;
    }
    return fri_loo_top(loo, n, top, full, vbmf_loo_exact, &ctx, heaps);
}

// The user step with either full packed item covariances (item_cov) or
// their diagonals (item_var, d floats per item), or neither.
static fr_err
user_step(float *p_out, float *bu_out, float *cov_out, const float *item_cov,
    const float *item_var, const fri_mf_items *it, const uint32_t *items,
    const float *ratings, size_t n, const fri_bpmf_prior *prior, float beta,
    fri_rng *rng, float *work, size_t work_len)
{
    if (p_out == NULL || bu_out == NULL || it == NULL || it->k == 0
        || it->k > FRI_MF_MAX_K
        || (it->n_items > 0 && (it->Q == NULL || it->bi == NULL))
        || (n > 0 && (items == NULL || ratings == NULL))
        || !prior_valid(prior, (size_t)it->k + 1) || !(beta > 0.0f)
        || !isfinite(beta)) {
        return FR_EINVAL;
    }
    const size_t k = it->k, d = k + 1;
    for (size_t j = 0; j < n; j++) {
        if (items[j] >= it->n_items || !isfinite(ratings[j])) {
            return FR_EINVAL;
        }
    }
    float *w, *owned;
    fr_err e
        = fri_work_get(&w, &owned, work, work_len, fri_bpmf_work_len(it->k));
    if (e != FR_OK) {
        return e;
    }
    float *A = w, *b = w + d * d, *eps = b + d, *rinv = eps + d;
    fri_mf_user_normal_eq(A, b, it, items, ratings, n);
    if (item_cov != NULL) {
        // E[z z^T] adds the q block of S_i; E[z (r - mu - b_i)] subtracts
        // cov(q_i, b_i).
        const size_t plen = fri_packed_len(d);
        for (size_t j = 0; j < n; j++) {
            const float *S = item_cov + (size_t)items[j] * plen;
            for (size_t a = 0; a < k; a++) {
                const float *Sa  = S + fri_packed_index(d, a, a);
                float       *row = A + a * d;
                for (size_t c = a; c < k; c++) {
                    row[c] += Sa[c - a];
                }
                b[a] -= Sa[k - a];
            }
        }
    } else if (item_var != NULL) {
        for (size_t j = 0; j < n; j++) {
            const float *v = item_var + (size_t)items[j] * d;
            for (size_t a = 0; a < k; a++) {
                A[a * d + a] += v[a];
            }
        }
    }
    for (size_t a = 0; a < d; a++) {
        b[a] *= beta;
        for (size_t c = a; c < d; c++) {
            A[a * d + c] *= beta;
        }
    }
    e = finish_step(p_out, bu_out, cov_out, A, b, eps, rinv, d, prior, rng);
    free(owned);
    return e;
}

fr_err
fri_bpmf_user_step(float *p_out, float *bu_out, float *cov_out,
    const float *item_cov, const fri_mf_items *it, const uint32_t *items,
    const float *ratings, size_t n, const fri_bpmf_prior *prior, float beta,
    fri_rng *rng, float *work, size_t work_len)
{
    return user_step(p_out, bu_out, cov_out, item_cov, NULL, it, items,
        ratings, n, prior, beta, rng, work, work_len);
}

fr_err
fri_vbmf_user_step_diag(float *p_out, float *bu_out, float *cov_out,
    const float *item_var, const fri_mf_items *it, const uint32_t *items,
    const float *ratings, size_t n, const fri_bpmf_prior *prior, float beta,
    float *work, size_t work_len)
{
    if (item_var == NULL) {
        return FR_EINVAL;
    }
    return user_step(p_out, bu_out, cov_out, NULL, item_var, it, items,
        ratings, n, prior, beta, NULL, work, work_len);
}

fr_err
fri_bpmf_item_step(float *q_out, float *b_out, float *cov_out,
    const float *gram_sum_packed, const float *h_sum, uint32_t k,
    const fri_bpmf_prior *prior, float beta, fri_rng *rng, float *work,
    size_t work_len)
{
    if (q_out == NULL || b_out == NULL || gram_sum_packed == NULL
        || h_sum == NULL || k == 0 || k > FRI_MF_MAX_K
        || !prior_valid(prior, (size_t)k + 1) || !(beta > 0.0f)
        || !isfinite(beta)) {
        return FR_EINVAL;
    }
    const size_t d = (size_t)k + 1;
    float       *w, *owned;
    fr_err e = fri_work_get(&w, &owned, work, work_len, fri_bpmf_work_len(k));
    if (e != FR_OK) {
        return e;
    }
    float *A = w, *b = w + d * d, *eps = b + d, *rinv = eps + d;
    fri_packed_unpack(A, gram_sum_packed, d);
    for (size_t a = 0; a < d; a++) {
        b[a] = beta * h_sum[a];
        for (size_t c = a; c < d; c++) {
            A[a * d + c] *= beta;
        }
    }
    e = finish_step(q_out, b_out, cov_out, A, b, eps, rinv, d, prior, rng);
    free(owned);
    return e;
}

fr_err
fri_bpmf_user_item_stats(float *gram_out, size_t gram_len, float *h_out,
    size_t h_len, const float *p, float bu, const float *cov, uint32_t k,
    float mu, const float *ratings, size_t n)
{
    fr_err e = fri_mf_user_item_stats(
        gram_out, gram_len, h_out, h_len, p, bu, k, mu, ratings, n);
    if (e != FR_OK || cov == NULL) {
        return e;
    }
    const size_t d = (size_t)k + 1;
    for (size_t a = 0; a < k; a++) {
        const float *Sa = cov + fri_packed_index(d, a, a);
        float       *ga = gram_out + fri_packed_index(d, a, a);
        for (size_t c = a; c < k; c++) {
            ga[c - a] += Sa[c - a];
        }
    }
    for (size_t j = 0; j < n; j++) {
        float *h = h_out + j * d;
        for (size_t a = 0; a < k; a++) {
            h[a] -= cov[fri_packed_index(d, a, k)];
        }
    }
    return FR_OK;
}

void
fri_bpmf_hyper_stats(double *sum_x, double *sum_xx, const float *x, uint32_t d)
{
    if (sum_x == NULL || sum_xx == NULL || x == NULL) {
        return;
    }
    size_t t = 0;
    for (size_t a = 0; a < d; a++) {
        sum_x[a] += x[a];
        for (size_t c = a; c < d; c++) {
            sum_xx[t++] += (double)x[a] * x[c];
        }
    }
}

// In-place lower Cholesky M = C C^T of a full symmetric d x d matrix (the
// strict upper triangle is zeroed). 0 if not positive definite.
static int
chol_lower(double *M, size_t d)
{
    for (size_t j = 0; j < d; j++) {
        double s = M[j * d + j];
        for (size_t t = 0; t < j; t++) {
            s -= M[j * d + t] * M[j * d + t];
        }
        if (!(s > 0.0) || !isfinite(s)) {
            return 0;
        }
        double cjj   = sqrt(s);
        M[j * d + j] = cjj;
        for (size_t i = j + 1; i < d; i++) {
            double v = M[i * d + j];
            for (size_t t = 0; t < j; t++) {
                v -= M[i * d + t] * M[j * d + t];
            }
            M[i * d + j] = v / cjj;
        }
        for (size_t c = j + 1; c < d; c++) {
            M[j * d + c] = 0.0;
        }
    }
    return 1;
}

fr_err
fri_bpmf_hyper_sample(float *mean_out, float *prec_out, const double *sum_x,
    const double *sum_xx, double n, uint32_t d, double beta0, double w0,
    fri_rng *rng)
{
    if (mean_out == NULL || prec_out == NULL || sum_x == NULL || sum_xx == NULL
        || d == 0 || d > FRI_LINALG_MAX_N || !(n >= 0.0) || !(beta0 > 0.0)
        || !(w0 > 0.0)) {
        return FR_EINVAL;
    }
    const size_t dd = (size_t)d * d;
    double      *M  = malloc(4 * dd * sizeof(double) + 3 * d * sizeof(double));
    if (M == NULL) {
        return FR_ENOMEM;
    }
    double *Am = M + dd, *B = Am + dd, *L = B + dd, *xbar = L + dd;
    double *mstar = xbar + d, *y = mstar + d;
    for (size_t a = 0; a < d; a++) {
        xbar[a] = n > 0.0 ? sum_x[a] / n : 0.0;
    }
    // M = W*^-1 = W0^-1 + (sum_xx - n xbar xbar^T)
    //           + (beta0 n / (beta0 + n)) xbar xbar^T.
    double shrink = beta0 * n / (beta0 + n) - n;
    size_t t      = 0;
    for (size_t a = 0; a < d; a++) {
        for (size_t c = a; c < d; c++) {
            double v = sum_xx[t++] + shrink * xbar[a] * xbar[c];
            if (a == c) {
                v += 1.0 / w0;
            }
            M[a * d + c] = v;
            M[c * d + a] = v;
        }
        mstar[a] = n * xbar[a] / (beta0 + n);
    }
    const double nu = (double)d + n, bstar = beta0 + n;
    fr_err       e = FR_OK;
    if (!chol_lower(M, d)) {
        e = FR_EINTERNAL;
    } else if (rng == NULL) {
        // E[prec] = nu W* = nu (C C^T)^-1: columns of C^-T C^-1 by solves.
        for (size_t c = 0; c < d; c++) {
            for (size_t i = 0; i < d; i++) { // C y = e_c
                double s = i == c ? 1.0 : 0.0;
                for (size_t j = 0; j < i; j++) {
                    s -= M[i * d + j] * y[j];
                }
                y[i] = s / M[i * d + i];
            }
            for (size_t i = d; i-- > 0;) { // C^T z = y
                double s = y[i];
                for (size_t j = i + 1; j < d; j++) {
                    s -= M[j * d + i] * L[j * d + c];
                }
                L[i * d + c] = s / M[i * d + i];
            }
        }
        for (size_t a = 0; a < d; a++) {
            mean_out[a] = (float)mstar[a];
            for (size_t c = 0; c < d; c++) {
                prec_out[a * d + c] = (float)(nu * L[a * d + c]);
            }
        }
    } else {
        // Bartlett: prec = C^-T A A^T C^-1 with A lower, A_ii^2 ~
        // chi2(nu - i), A_ij ~ N(0, 1) below the diagonal.
        memset(Am, 0, dd * sizeof(double));
        for (size_t i = 0; i < d; i++) {
            Am[i * d + i] = sqrt(2.0 * fri_bpmf_gamma(rng, (nu - i) / 2.0));
            for (size_t j = 0; j < i; j++) {
                Am[i * d + j] = fri_rng_normal(rng);
            }
        }
        // B = C^-T A: solve C^T B = A column by column (C^T upper).
        for (size_t c = 0; c < d; c++) {
            for (size_t i = d; i-- > 0;) {
                double s = Am[i * d + c];
                for (size_t j = i + 1; j < d; j++) {
                    s -= M[j * d + i] * B[j * d + c];
                }
                B[i * d + c] = s / M[i * d + i];
            }
        }
        for (size_t a = 0; a < d; a++) {
            for (size_t c = a; c < d; c++) {
                double s = 0.0;
                for (size_t j = 0; j < d; j++) {
                    s += B[a * d + j] * B[c * d + j];
                }
                prec_out[a * d + c] = (float)s;
                prec_out[c * d + a] = (float)s;
            }
        }
        // mean = m* + C A^-T eps / sqrt(beta*): covariance C (A A^T)^-1
        // C^T = (beta* prec)^-1.
        for (size_t i = 0; i < d; i++) {
            y[i] = fri_rng_normal(rng);
        }
        for (size_t i = d; i-- > 0;) { // A^T y' = eps
            double s = y[i];
            for (size_t j = i + 1; j < d; j++) {
                s -= Am[j * d + i] * y[j];
            }
            y[i] = s / Am[i * d + i];
        }
        for (size_t a = 0; a < d; a++) {
            double s = 0.0;
            for (size_t j = 0; j <= a; j++) {
                s += M[a * d + j] * y[j];
            }
            mean_out[a] = (float)(mstar[a] + s / sqrt(bstar));
        }
    }
    for (size_t a = 0; e == FR_OK && a < dd; a++) {
        if (!isfinite(prec_out[a])) {
            e = FR_EINTERNAL;
        }
    }
    free(M);
    return e;
}

// ---- centralized trainer -------------------------------------------------

void
fri_bpmf_config_init(fri_bpmf_config *c)
{
    memset(c, 0, sizeof(*c));
    c->k           = 10;
    c->burnin      = 20;
    c->samples     = 80;
    c->thin        = 1;
    c->beta        = 2.0f;
    c->sample_beta = 1;
    c->beta0       = 2.0f;
    c->w0          = 1.0f;
    c->init_std    = 0.1f;
    c->clamp_lo    = 1.0f;
    c->clamp_hi    = 5.0f;
    c->output      = FRI_BPMF_AVG_FACTORS;
    c->mean_sweeps = 5;
    c->seed        = 42;
}

// Mean of the ratings in train, rejecting an empty matrix, column indices
// out of range and non-finite values (the trainers' input checks).
static int
mean_rating_checked(const fri_csr *train, double *mu_out)
{
    const size_t n_ratings = train->ptr[train->n_rows];
    if (n_ratings == 0) {
        return 0;
    }
    double mu = 0.0;
    for (size_t j = 0; j < n_ratings; j++) {
        if (train->idx[j] >= train->n_cols || !isfinite(train->val[j])) {
            return 0;
        }
        mu += train->val[j];
    }
    *mu_out = mu / (double)n_ratings;
    return 1;
}

static float
predict_any(const fri_mf_model *m, uint32_t u, uint32_t i)
{
    if (u < m->n_users && i < m->n_items) {
        return fri_mf_predict(m, u, i);
    }
    return m->mu + (u < m->n_users ? m->bu[u] : 0.0f)
        + (i < m->n_items ? m->bi[i] : 0.0f);
}

typedef struct gibbs {
    const fri_csr         *train;
    const fri_bpmf_config *c;
    fri_mf_model          *m;
    size_t                 d, plen;
    float                 *umean, *uprec, *imean, *iprec;
    double                *sx, *sxx;
    float                 *gram_acc, *h_acc, *gram_u, *h_u;
    size_t                 h_cap;
    float                 *work;
    size_t                 wlen;
    float                 *xbuf;
} gibbs;

// Item hyperparameters then items from the users' summed statistics.
static fr_err
item_sweep(gibbs *g, float beta, fri_rng *rng)
{
    fri_mf_model  *m  = g->m;
    const fri_csr *tr = g->train;
    const size_t   k = m->k, d = g->d, plen = g->plen;
    memset(g->gram_acc, 0, (size_t)m->n_items * plen * sizeof(float));
    memset(g->h_acc, 0, (size_t)m->n_items * d * sizeof(float));
    fr_err e = FR_OK;
    for (uint32_t u = 0; u < tr->n_rows && e == FR_OK; u++) {
        size_t a = tr->ptr[u], n = tr->ptr[u + 1] - a;
        if (n == 0) {
            continue;
        }
        e = fri_mf_user_item_stats(g->gram_u, plen, g->h_u, g->h_cap,
            m->P + u * k, m->bu[u], m->k, m->mu, tr->val + a, n);
        if (e == FR_OK) {
            fri_mf_item_stats_add(g->gram_acc, g->h_acc, tr->idx + a, n,
                g->gram_u, plen, g->h_u, d);
        }
    }
    fri_bpmf_prior ip = { (uint32_t)d, g->imean, g->iprec };
    for (uint32_t i = 0; i < m->n_items && e == FR_OK; i++) {
        e = fri_bpmf_item_step(m->Q + i * k, &m->bi[i], NULL,
            g->gram_acc + i * plen, g->h_acc + i * d, m->k, &ip, beta, rng,
            g->work, g->wlen);
    }
    return e;
}

static fr_err
user_sweep(gibbs *g, float beta, fri_rng *rng)
{
    fri_mf_model  *m  = g->m;
    const fri_csr *tr = g->train;
    const size_t   k  = m->k;
    fri_mf_items   it = fri_mf_items_of(m);
    fri_bpmf_prior up = { (uint32_t)g->d, g->umean, g->uprec };
    fr_err         e  = FR_OK;
    for (uint32_t u = 0; u < m->n_users && e == FR_OK; u++) {
        size_t a = tr->ptr[u], n = tr->ptr[u + 1] - a;
        e = fri_bpmf_user_step(m->P + u * k, &m->bu[u], NULL, NULL, &it,
            tr->idx + a, tr->val + a, n, &up, beta, rng, g->work, g->wlen);
    }
    return e;
}

// Normal-Wishart update of one side's prior (mean, prec) from its n_rows
// rows x = [F_r; b_r] (k factors): sums of x and x x^T, plus each row's
// posterior covariance S_r (packed) when S is given (VBMF's expectations),
// then a draw (rng) or the mode (rng == NULL). sx, sxx and x are scratch of
// k+1, packed (k+1) and k+1 elements.
static fr_err
hyper_update(float *mean, float *prec, const float *F, const float *b,
    const float *S, uint32_t n_rows, size_t k, double beta0, double w0,
    fri_rng *rng, double *sx, double *sxx, float *x)
{
    const size_t d = k + 1, plen = fri_packed_len(d);
    memset(sx, 0, d * sizeof(double));
    memset(sxx, 0, plen * sizeof(double));
    for (uint32_t r = 0; r < n_rows; r++) {
        memcpy(x, F + r * k, k * sizeof(float));
        x[k] = b[r];
        fri_bpmf_hyper_stats(sx, sxx, x, (uint32_t)d);
        if (S != NULL) {
            for (size_t t = 0; t < plen; t++) {
                sxx[t] += S[r * plen + t];
            }
        }
    }
    return fri_bpmf_hyper_sample(
        mean, prec, sx, sxx, n_rows, (uint32_t)d, beta0, w0, rng);
}

// Hyperparameters of rows [P | b] of m (n rows) drawn into mean/prec.
static fr_err
hyper_rows(gibbs *g, const float *P, const float *b, uint32_t n_rows,
    float *mean, float *prec, fri_rng *rng)
{
    return hyper_update(mean, prec, P, b, NULL, n_rows, g->m->k, g->c->beta0,
        g->c->w0, rng, g->sx, g->sxx, g->xbuf);
}

static int
config_ok(const fri_bpmf_config *c)
{
    return c != NULL && c->k > 0 && c->k <= FRI_MF_MAX_K && c->samples > 0
        && c->thin > 0 && c->beta > 0.0f && isfinite(c->beta)
        && c->beta0 > 0.0f && c->w0 > 0.0f && c->init_std >= 0.0f
        && (c->output == FRI_BPMF_AVG_FACTORS
            || c->output == FRI_BPMF_MEAN_SOLVE);
}

fr_err
fri_train_bpmf(fri_mf_model **out, float *pred_out, const fri_triplet *query,
    size_t n_query, const fri_csr *train, const fri_bpmf_config *c,
    fri_bpmf_fn cb, void *ctx)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    *out = NULL;
    if (!config_ok(c) || train == NULL || train->ptr == NULL
        || train->n_rows == 0 || train->n_cols == 0
        || (n_query > 0 && (pred_out == NULL || query == NULL))) {
        return FR_EINVAL;
    }
    double mu;
    if (!mean_rating_checked(train, &mu)) {
        return FR_EINVAL;
    }
    const size_t   n_ratings = train->ptr[train->n_rows];
    const size_t   k = c->k, d = k + 1, plen = fri_packed_len(d);
    const uint32_t nu = train->n_rows, ni = train->n_cols;
    fri_mf_acc_sizes sz;
    size_t           psz, qsz;
    if (fri_mf_acc_sizes_of(&sz, train, plen, d, d) != FR_OK
        || !fri_mul_ok(nu, k, &psz) || !fri_mul_ok(ni, k, &qsz)
        || psz > SIZE_MAX / sizeof(double)
        || qsz > SIZE_MAX / sizeof(double)) {
        return FR_ETOOBIG;
    }
    const size_t gsz = sz.gram, hsz = sz.rhs, hcap = sz.rows;
    fri_mf_model *m = NULL, *avg = NULL;
    fr_err        e = fri_mf_create(&m, nu, ni, c->k);
    if (e == FR_OK) {
        e = fri_mf_create(&avg, nu, ni, c->k);
    }
    if (e != FR_OK) {
        fri_mf_destroy(m);
        return e;
    }
    fri_mf_init(m, (float)mu, c->init_std, c->seed);
    gibbs g    = { 0 };
    g.train    = train;
    g.c        = c;
    g.m        = m;
    g.d        = d;
    g.plen     = plen;
    g.h_cap    = hcap > 0 ? hcap : 1;
    g.wlen     = fri_bpmf_work_len(c->k);
    g.umean    = malloc(d * sizeof(float));
    g.imean    = malloc(d * sizeof(float));
    g.uprec    = malloc(d * d * sizeof(float));
    g.iprec    = malloc(d * d * sizeof(float));
    g.sx       = malloc(d * sizeof(double));
    g.sxx      = malloc(plen * sizeof(double));
    g.gram_acc = malloc(gsz * sizeof(float));
    g.h_acc    = malloc(hsz * sizeof(float));
    g.gram_u   = malloc(plen * sizeof(float));
    g.h_u      = malloc(g.h_cap * sizeof(float));
    g.work     = malloc(g.wlen * sizeof(float));
    g.xbuf     = malloc(d * sizeof(float));
    // Running sums over kept samples: factors, hyperparameters, predictions.
    double *sP    = calloc(psz + nu, sizeof(double));
    double *sQ    = calloc(qsz + ni, sizeof(double));
    double *shyp  = calloc(2 * (d + d * d), sizeof(double));
    double *spred = calloc(n_query > 0 ? n_query : 1, sizeof(double));
    if (g.umean == NULL || g.imean == NULL || g.uprec == NULL
        || g.iprec == NULL || g.sx == NULL || g.sxx == NULL
        || g.gram_acc == NULL || g.h_acc == NULL || g.gram_u == NULL
        || g.h_u == NULL || g.work == NULL || g.xbuf == NULL || sP == NULL
        || sQ == NULL || shyp == NULL || spred == NULL) {
        e = FR_ENOMEM;
    }
    fri_rng rng;
    fri_rng_seed2(&rng, c->seed, 7);
    float          beta = c->beta;
    const float    lo = c->clamp_lo, hi = c->clamp_hi;
    const int      clamp = lo < hi;
    uint32_t       kept  = 0;
    const uint64_t total
        = (uint64_t)c->burnin + (uint64_t)c->samples * c->thin;
    for (uint64_t t = 1; e == FR_OK && t <= total; t++) {
        e = hyper_rows(&g, m->P, m->bu, nu, g.umean, g.uprec, &rng);
        if (e == FR_OK) {
            e = hyper_rows(&g, m->Q, m->bi, ni, g.imean, g.iprec, &rng);
        }
        if (e == FR_OK) {
            e = user_sweep(&g, beta, &rng);
        }
        if (e == FR_OK) {
            e = item_sweep(&g, beta, &rng);
        }
        if (e != FR_OK) {
            break;
        }
        if (c->sample_beta) {
            // Gamma(1, 1) hyperprior on the noise precision.
            double sse = 0.0;
            for (uint32_t u = 0; u < nu; u++) {
                for (size_t j = train->ptr[u]; j < train->ptr[u + 1]; j++) {
                    double r
                        = train->val[j] - fri_mf_predict(m, u, train->idx[j]);
                    sse += r * r;
                }
            }
            beta = (float)(fri_bpmf_gamma(&rng, 1.0 + 0.5 * n_ratings)
                / (1.0 + 0.5 * sse));
            if (!(beta > 0.0f) || !isfinite(beta)) {
                e = FR_EINTERNAL;
                break;
            }
        }
        int keep = t > c->burnin && (t - c->burnin) % c->thin == 0;
        if (keep) {
            kept++;
            for (size_t j = 0; j < psz; j++) {
                sP[j] += m->P[j];
            }
            for (size_t j = 0; j < nu; j++) {
                sP[psz + j] += m->bu[j];
            }
            for (size_t j = 0; j < qsz; j++) {
                sQ[j] += m->Q[j];
            }
            for (size_t j = 0; j < ni; j++) {
                sQ[qsz + j] += m->bi[j];
            }
            for (size_t j = 0; j < d; j++) {
                shyp[j] += g.umean[j];
                shyp[d + d * d + j] += g.imean[j];
            }
            for (size_t j = 0; j < d * d; j++) {
                shyp[d + j] += g.uprec[j];
                shyp[2 * d + d * d + j] += g.iprec[j];
            }
            for (size_t j = 0; j < n_query; j++) {
                float p = predict_any(m, query[j].user, query[j].item);
                if (clamp) {
                    p = p < lo ? lo : (p > hi ? hi : p);
                }
                spred[j] += p;
                pred_out[j] = (float)(spred[j] / kept);
            }
        }
        if (cb != NULL
            && cb(ctx, (uint32_t)t, kept > 0 ? pred_out : NULL, kept, m)
                != 0) {
            break;
        }
    }
    if (e == FR_OK && kept == 0) {
        e = FR_ESTATE; // stopped by the callback before any kept sample
    }
    if (e == FR_OK) {
        avg->mu = (float)mu;
        for (size_t j = 0; j < psz; j++) {
            avg->P[j] = (float)(sP[j] / kept);
        }
        for (size_t j = 0; j < nu; j++) {
            avg->bu[j] = (float)(sP[psz + j] / kept);
        }
        for (size_t j = 0; j < qsz; j++) {
            avg->Q[j] = (float)(sQ[j] / kept);
        }
        for (size_t j = 0; j < ni; j++) {
            avg->bi[j] = (float)(sQ[qsz + j] / kept);
        }
    }
    if (e == FR_OK && c->output == FRI_BPMF_MEAN_SOLVE) {
        // Conditional-mean sweeps under the averaged hyperparameters,
        // started from the averaged factors.
        for (size_t j = 0; j < d; j++) {
            g.umean[j] = (float)(shyp[j] / kept);
            g.imean[j] = (float)(shyp[d + d * d + j] / kept);
        }
        for (size_t j = 0; j < d * d; j++) {
            g.uprec[j] = (float)(shyp[d + j] / kept);
            g.iprec[j] = (float)(shyp[2 * d + d * d + j] / kept);
        }
        e = fri_mf_copy(m, avg);
        for (uint32_t s = 0; e == FR_OK && s < c->mean_sweeps; s++) {
            e = user_sweep(&g, beta, NULL);
            if (e == FR_OK) {
                e = item_sweep(&g, beta, NULL);
            }
        }
        if (e == FR_OK) {
            e = fri_mf_copy(avg, m);
        }
    }
    free(g.umean);
    free(g.imean);
    free(g.uprec);
    free(g.iprec);
    free(g.sx);
    free(g.sxx);
    free(g.gram_acc);
    free(g.h_acc);
    free(g.gram_u);
    free(g.h_u);
    free(g.work);
    free(g.xbuf);
    free(sP);
    free(sQ);
    free(shyp);
    free(spred);
    fri_mf_destroy(m);
    if (e != FR_OK) {
        fri_mf_destroy(avg);
        return e;
    }
    *out = avg;
    return FR_OK;
}

// ---- centralized variational trainer -------------------------------------

void
fri_vbmf_config_init(fri_vbmf_config *c)
{
    memset(c, 0, sizeof(*c));
    c->k             = 10;
    c->sweeps        = 15;
    c->beta          = 2.0f;
    c->update_beta   = 1;
    c->beta0         = 2.0f;
    c->w0            = 1.0f;
    c->diag_item_cov = 1;
    c->init_std      = 0.1f;
    c->seed          = 42;
    c->svdpp         = FRI_SVDPP_DEFAULT;
}

static double
packed_at(const float *S, size_t d, size_t a, size_t b)
{
    return a <= b ? S[fri_packed_index(d, a, b)]
                  : S[fri_packed_index(d, b, a)];
}

// Expected squared error of one rating: (r - E pred)^2 + Var(u . v) for
// independent u = [p; b_u; 1] (covariance Su over [p; b_u]) and
// v = [q; 1; b_i] (covariance Si over [q; b_i]).
static double
expected_sq_err(double res, const float *p, const float *q, const float *Su,
    const float *Si, size_t k)
{
    const size_t d   = k + 1;
    double       var = 0.0;
    for (size_t a = 0; a < d; a++) {
        double qa = a < k ? q[a] : 1.0, pa = a < k ? p[a] : 1.0;
        for (size_t b = 0; b < d; b++) {
            double qb = b < k ? q[b] : 1.0, pb = b < k ? p[b] : 1.0;
            double su = packed_at(Su, d, a, b), si = packed_at(Si, d, a, b);
            var += qa * qb * su + pa * pb * si;
            if (a < k && b < k) {
                var += su * si;
            }
        }
    }
    return res * res + var;
}

fr_err
fri_train_vbmf(fri_mf_model **out, const fri_csr *train,
    const fri_vbmf_config *c, fri_train_epoch_fn cb, void *ctx)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    *out = NULL;
    if (c == NULL || c->k == 0 || c->k > FRI_MF_MAX_K || c->sweeps == 0
        || !(c->beta > 0.0f) || !isfinite(c->beta) || !(c->beta0 > 0.0f)
        || !(c->w0 > 0.0f) || !(c->init_std >= 0.0f)
        || !(c->svdpp >= 0.0f && c->svdpp <= FRI_SVDPP_MAX) || train == NULL
        || train->ptr == NULL || train->n_rows == 0 || train->n_cols == 0) {
        return FR_EINVAL;
    }
    double mu;
    if (!mean_rating_checked(train, &mu)) {
        return FR_EINVAL;
    }
    const size_t   n_ratings = train->ptr[train->n_rows];
    const size_t   k = c->k, d = k + 1, plen = fri_packed_len(d);
    const uint32_t nu = train->n_rows, ni = train->n_cols;
    fri_mf_acc_sizes sz;
    size_t           usz;
    if (fri_mf_acc_sizes_of(&sz, train, plen, d, d) != FR_OK
        || !fri_mul_ok(nu, plen, &usz) || usz > SIZE_MAX / sizeof(float)) {
        return FR_ETOOBIG;
    }
    const size_t gsz = sz.gram, hsz = sz.rhs;
    size_t       hcap = sz.rows;
    fri_mf_model *m = NULL;
    fr_err        e = fri_mf_create(&m, nu, ni, c->k);
    if (e != FR_OK) {
        return e;
    }
    fri_mf_init(m, (float)mu, c->init_std, c->seed);
    const size_t wlen = fri_bpmf_work_len(c->k);
    hcap              = hcap > 0 ? hcap : 1;
    float *umean = calloc(d, sizeof(float)), *imean = calloc(d, sizeof(float));
    float *uprec = calloc(d * d, sizeof(float));
    float *iprec = calloc(d * d, sizeof(float));
    float *Su = calloc(usz, sizeof(float)), *Si = calloc(gsz, sizeof(float));
    float *Sview    = calloc(gsz, sizeof(float)); // what users see of S_i
    float *gram_acc = malloc(gsz * sizeof(float));
    float *h_acc    = malloc(hsz * sizeof(float));
    float *gram_u   = malloc(plen * sizeof(float));
    float *h_u      = malloc(hcap * sizeof(float));
    float *work     = malloc(wlen * sizeof(float));
    float *x        = malloc(d * sizeof(float));
    double *sx      = malloc(d * sizeof(double));
    double *sxx     = malloc(plen * sizeof(double));
    if (umean == NULL || imean == NULL || uprec == NULL || iprec == NULL
        || Su == NULL || Si == NULL || Sview == NULL || gram_acc == NULL
        || h_acc == NULL || gram_u == NULL || h_u == NULL || work == NULL
        || x == NULL || sx == NULL || sxx == NULL) {
        e = FR_ENOMEM;
    }
    for (size_t a = 0; e == FR_OK && a < d; a++) {
        uprec[a * d + a] = 1.0f;
        iprec[a * d + a] = 1.0f;
    }
    float beta = c->beta;
    float pm[FRI_MF_MAX_K + 1]; // a user's prior mean (rated-set shift)
    for (uint32_t s = 1; e == FR_OK && s <= c->sweeps; s++) {
        fri_mf_items   it = fri_mf_items_of(m);
        fri_bpmf_prior up = { (uint32_t)d, umean, uprec };
        fri_bpmf_prior ip = { (uint32_t)d, imean, iprec };
        // Items start without a covariance (they were not solved yet).
        const float *icov = s > 1 ? Sview : NULL;
        for (uint32_t u = 0; u < nu && e == FR_OK; u++) {
            size_t a = train->ptr[u], n = train->ptr[u + 1] - a;
            fri_vbmf_rated_set_mean(pm, &up, m->Q, train->idx + a, n, m->k,
                c->svdpp);
            fri_bpmf_prior upu = { (uint32_t)d, pm, uprec };
            e = fri_bpmf_user_step(m->P + u * k, &m->bu[u], Su + u * plen,
                icov, &it, train->idx + a, train->val + a, n, &upu, beta,
                NULL, work, wlen);
        }
        if (e == FR_OK) {
            e = hyper_update(umean, uprec, m->P, m->bu, Su, nu, k, c->beta0,
                c->w0, NULL, sx, sxx, x);
        }
        memset(gram_acc, 0, gsz * sizeof(float));
        memset(h_acc, 0, hsz * sizeof(float));
        for (uint32_t u = 0; u < nu && e == FR_OK; u++) {
            size_t a = train->ptr[u], n = train->ptr[u + 1] - a;
            if (n == 0) {
                continue;
            }
            e = fri_bpmf_user_item_stats(gram_u, plen, h_u, hcap, m->P + u * k,
                m->bu[u], Su + u * plen, m->k, m->mu, train->val + a, n);
            if (e == FR_OK) {
                fri_mf_item_stats_add(gram_acc, h_acc, train->idx + a, n,
                    gram_u, plen, h_u, d);
            }
        }
        for (uint32_t i = 0; i < ni && e == FR_OK; i++) {
            e = fri_bpmf_item_step(m->Q + i * k, &m->bi[i], Si + i * plen,
                gram_acc + i * plen, h_acc + i * d, m->k, &ip, beta, NULL,
                work, wlen);
        }
        if (e == FR_OK) {
            e = hyper_update(imean, iprec, m->Q, m->bi, Si, ni, k, c->beta0,
                c->w0, NULL, sx, sxx, x);
        }
        if (e != FR_OK) {
            break;
        }
        memcpy(Sview, Si, gsz * sizeof(float));
        if (c->diag_item_cov) {
            for (uint32_t i = 0; i < ni; i++) {
                for (size_t a = 0; a < d; a++) {
                    for (size_t b = a + 1; b < d; b++) {
                        Sview[i * plen + fri_packed_index(d, a, b)] = 0.0f;
                    }
                }
            }
        }
        if (c->update_beta) {
            double esse = 0.0;
            for (uint32_t u = 0; u < nu; u++) {
                for (size_t j = train->ptr[u]; j < train->ptr[u + 1]; j++) {
                    uint32_t i   = train->idx[j];
                    double   res = train->val[j] - fri_mf_predict(m, u, i);
                    esse += expected_sq_err(res, m->P + u * k, m->Q + i * k,
                        Su + u * plen, Sview + i * plen, k);
                }
            }
            beta = (float)((double)n_ratings / esse);
            if (!(beta > 0.0f) || !isfinite(beta)) {
                e = FR_EINTERNAL;
                break;
            }
        }
        if (cb != NULL && cb(ctx, s, m) != 0) {
            break;
        }
    }
    free(umean);
    free(imean);
    free(uprec);
    free(iprec);
    free(Su);
    free(Si);
    free(Sview);
    free(gram_acc);
    free(h_acc);
    free(gram_u);
    free(h_u);
    free(work);
    free(x);
    free(sx);
    free(sxx);
    if (e != FR_OK) {
        fri_mf_destroy(m);
        return e;
    }
    *out = m;
    return FR_OK;
}
