// Server-side bounds on what one device reports (bounds.h). Every check is
// done in double with a relative tolerance (TOL) wide enough for the float
// rounding of an honest client (products of floats, a joint clip scale)
// and far too narrow to matter for the influence bound.
#include "bounds.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"

#define TOL 1e-4
#define TINY 1e-30

void
fri_bounds_of(const fri_agg_config *c, fri_bounds *b)
{
    b->rmin      = c->rating_min;
    b->rmax      = c->rating_max;
    b->span      = b->rmax - b->rmin;
    b->user_norm = c->max_user_norm;
    b->residual  = c->max_residual > 0.0f ? (double) c->max_residual
                                          : 3.0 * b->span;
    b->max_rows  = c->max_ratings > 0 ? (double) c->max_ratings
                                      : (double) c->n_items;
    b->item_norm = c->max_item_norm;
}

// Entry (a, b) of a packed symmetric matrix (upper triangle stored).
static double
pk(const float *G, size_t d, size_t a, size_t b)
{
    return a <= b ? G[fri_packed_index(d, a, b)] : G[fri_packed_index(d, b, a)];
}

// Rank one: G = x x^T (G packed d x d). Reads x off the column of the
// largest diagonal entry and compares every entry.
static int
rank_one(const float *G, size_t d, double tiny)
{
    size_t m  = 0;
    double gm = -1.0;
    for (size_t a = 0; a < d; a++) {
        double g = pk(G, d, a, a);
        if (g < 0.0) {
            return 0;
        }
        if (g > gm) {
            gm = g;
            m  = a;
        }
    }
    if (gm <= 0.0) {
        for (size_t t = 0; t < fri_packed_len(d); t++) {
            if (fabs((double)G[t]) > tiny) {
                return 0;
            }
        }
        return 1;
    }
    double sm = sqrt(gm);
    for (size_t a = 0; a < d; a++) {
        double xa = pk(G, d, a, m) / sm;
        for (size_t b = a; b < d; b++) {
            double xb = pk(G, d, b, m) / sm;
            double e  = fabs(pk(G, d, a, b) - xa * xb);
            if (e > TOL * sqrt(pk(G, d, a, a) * pk(G, d, b, b)) + tiny) {
                return 0;
            }
        }
    }
    return 1;
}

// Positive semi-definite: Cholesky of M + eps I in double, eps relative to
// the trace of M plus extra (what float rounding of an honest PSD matrix
// can leave; extra covers a difference of two larger matrices).
static int
psd(const double *M, size_t d, double extra)
{
    double  tr = 0.0;
    double *L  = malloc(d * d * sizeof(double));
    if (L == NULL) {
        return 0;
    }
    for (size_t a = 0; a < d; a++) {
        tr += fabs(M[a * d + a]);
    }
    double eps = TOL * (tr + extra + TINY);
    int    ok  = fri_chol_d(L, M, d, eps) == 0;
    free(L);
    return ok;
}

#define FAIL(s)                                                               \
    do {                                                                      \
        *why = (s);                                                           \
        return -1;                                                            \
    } while (0)

// Explicit ALS: G = s x x^T, x = [p; 1], s = 1 without clip (s in (0, 1]
// when the client clipped its update), rows h_j = s x res_j.
static int
check_als(const fri_agg_config *c, const fri_bounds *B,
    const fri_agg_update *u, double tiny, const char **why)
{
    const size_t d = (size_t) c->k + 1, k = c->k;
    const float *G = u->gram;
    double       s = pk(G, d, k, k);
    if (c->clip > 0.0f ? !(s > 0.0 && s <= 1.0 + TOL)
                       : fabs(s - 1.0) > 1e-6) {
        FAIL("gram bias coordinate is not 1");
    }
    if (!rank_one(G, d, tiny)) {
        FAIL("gram is not x x^T");
    }
    double pn = 0.0;
    for (size_t a = 0; a < k; a++) {
        double x = pk(G, d, a, k) / s;
        pn += x * x;
    }
    if (pn > B->user_norm * B->user_norm * (1.0 + TOL)) {
        FAIL("user vector norm above max-user-norm");
    }
    for (uint32_t j = 0; j < u->n; j++) {
        const float *h  = u->rows + (size_t) j * d;
        double       hk = h[k];
        if (fabs(hk) > s * B->residual * (1.0 + TOL)) {
            FAIL("row residual above max-residual");
        }
        for (size_t a = 0; a < k; a++) {
            double want = pk(G, d, a, k) / s * hk;
            if (fabs(h[a] - want) > TOL * (fabs(want) + fabs(h[a])) + tiny) {
                FAIL("row is not x * residual");
            }
        }
    }
    return 0;
}

// iALS: G = s p p^T (k x k), rows [s (c - 1), s c p].
static int
check_ials(const fri_agg_config *c, const fri_bounds *B,
    const fri_agg_update *u, double tiny, const char **why)
{
    const size_t k = c->k, d = k + 1;
    const float *G = u->gram;
    if (!rank_one(G, k, tiny)) {
        FAIL("gram is not p p^T");
    }
    double tr = 0.0;
    for (size_t a = 0; a < k; a++) {
        tr += pk(G, k, a, a);
    }
    if (tr > B->user_norm * B->user_norm * (1.0 + TOL)) {
        FAIL("user vector norm above max-user-norm");
    }
    double cmax = (double) c->alpha * B->rmax;
    for (uint32_t j = 0; j < u->n; j++) {
        const float *row = u->rows + (size_t) j * d;
        if (row[0] > cmax * (1.0 + TOL) + tiny) {
            FAIL("confidence above alpha * rating-max");
        }
        double n2 = 0.0;
        for (size_t a = 0; a < k; a++) {
            n2 += (double) row[1 + a] * row[1 + a];
        }
        double lim = (1.0 + cmax) * B->user_norm * (1.0 + TOL);
        if (n2 > lim * lim) {
            FAIL("row norm above (1 + alpha * rating-max) * max-user-norm");
        }
    }
    return 0;
}

// VBMF: G = E[x x^T] = [p p^T + S_pp, p; p^T, 1] (PSD, bias coordinate
// exactly 1), rows E[x a] with |E[x_a a]| <= sqrt(E[x_a^2] E[a^2]), and the
// global block [E[u] (d) | E[u u^T] (packed) | sum E[a^2] | 1].
static int
check_vbmf(const fri_agg_config *c, const fri_bounds *B,
    const fri_agg_update *u, double tiny, const char **why)
{
    const size_t k = c->k, d = k + 1, P = fri_packed_len(d);
    const float *G = u->gram;
    const double R = B->residual, U2 = B->user_norm * B->user_norm;
    if (fabs(pk(G, d, k, k) - 1.0) > 1e-6) {
        FAIL("gram bias coordinate is not 1");
    }
    double *M = malloc(d * d * sizeof(double));
    if (M == NULL) {
        FAIL("out of memory");
    }
    for (size_t a = 0; a < d; a++) {
        for (size_t b = 0; b < d; b++) {
            M[a * d + b] = pk(G, d, a, b);
        }
    }
    int ok = psd(M, d, 0.0);
    if (!ok) {
        free(M);
        FAIL("gram is not positive semi-definite");
    }
    double tr = 0.0;
    for (size_t a = 0; a < k; a++) {
        tr += pk(G, d, a, a);
    }
    if (tr > U2 * (1.0 + TOL)) {
        free(M);
        FAIL("user vector norm above max-user-norm");
    }
    for (uint32_t j = 0; j < u->n; j++) {
        const float *h = u->rows + (size_t) j * d;
        for (size_t a = 0; a < d; a++) {
            if (fabs(h[a]) > sqrt(pk(G, d, a, a)) * R * (1.0 + TOL) + tiny) {
                free(M);
                FAIL("row above sqrt(gram diagonal) * max-residual");
            }
        }
    }
    const float *m  = u->vb;
    const float *Mu = u->vb + d;
    double       sq = u->vb[d + P], nu = u->vb[d + P + 1];
    if (fabs(nu - 1.0) > 1e-6) {
        free(M);
        FAIL("global block user count is not 1");
    }
    double mn = 0.0;
    for (size_t a = 0; a < k; a++) {
        double g = pk(G, d, a, k);
        if (fabs(m[a] - g) > TOL * (fabs(m[a]) + fabs(g)) + tiny) {
            free(M);
            FAIL("global block mean differs from the gram's");
        }
        mn += (double) m[a] * m[a];
        for (size_t b = a; b < k; b++) {
            double x = pk(Mu, d, a, b), y = pk(G, d, a, b);
            if (fabs(x - y) > TOL * (fabs(x) + fabs(y)) + tiny) {
                free(M);
                FAIL("global block second moment differs from the gram's");
            }
        }
    }
    if (mn > U2 * (1.0 + TOL) || fabs(m[k]) > R * (1.0 + TOL) ||
        pk(Mu, d, k, k) > R * R * (1.0 + TOL)) {
        free(M);
        FAIL("global block above the user bounds");
    }
    // E[u u^T] - E[u] E[u]^T is the posterior covariance: PSD (up to the
    // rounding of the two float moments it is the difference of).
    double mtr = 0.0;
    for (size_t a = 0; a < d; a++) {
        mtr += fabs(pk(Mu, d, a, a));
    }
    for (size_t a = 0; a < d; a++) {
        for (size_t b = 0; b < d; b++) {
            M[a * d + b] = pk(Mu, d, a, b) - (double) m[a] * m[b];
        }
    }
    ok = psd(M, d, mtr);
    free(M);
    if (!ok) {
        FAIL("global block covariance is not positive semi-definite");
    }
    if (sq < 0.0
        || sq > u->count * (R * R + pk(Mu, d, k, k)) * (1.0 + TOL) + tiny) {
        FAIL("global block squared error out of range");
    }
    return 0;
}

// Gradient rows without clipping: -e [p; 1] + [reg q_i; reg_bias b_i]
// with |e| <= max-residual, ||p|| <= max-user-norm, ||[q_i; b_i]|| <=
// max-item-norm (the served model is sane).
static int
check_grad(const fri_agg_config *c, const fri_bounds *B,
           const fri_agg_update *u, const char **why)
{
    const size_t d   = (size_t) c->k + 1;
    double       reg = c->reg > c->reg_bias ? c->reg : c->reg_bias;
    double lim = (B->residual * sqrt(1.0 + B->user_norm * B->user_norm) +
                  reg * B->item_norm) *
                 (1.0 + TOL);
    for (uint32_t j = 0; j < u->n; j++) {
        const float *g  = u->rows + (size_t) j * d;
        double       n2 = 0.0;
        for (size_t a = 0; a < d; a++) {
            n2 += (double) g[a] * g[a];
        }
        if (n2 > lim * lim) {
            FAIL("gradient row norm above its bound");
        }
    }
    return 0;
}

// Latest statistics (cfg.stats_latest): an update is the change of the
// device's contribution since its last report, new - old, which has no
// structure to check (a difference of two Grams is indefinite, counts may
// be negative). Each part is bounded by twice what one bounded
// contribution can hold, so one report moves the sums by at most twice a
// plain update's bound (docs/ROBUSTNESS.md).
static int
check_delta(const fri_agg_config *c, const fri_bounds *B,
            const fri_agg_update *u, const char **why)
{
    const size_t d  = (size_t) c->k + 1;
    const double x2 = 1.0 + B->user_norm * B->user_norm; // ||[p; 1]||^2
    const double hi = fmax(fabs(B->rmin), fabs(B->rmax)) + B->span;
    const double n  = u->n;
    if (fabs(u->count) > 2.0 * n + 1e-3 || fabs(u->weight) > 2.0 * n + 1e-3) {
        FAIL("delta count above twice the rows it carries");
    }
    if (fabs(u->sum_ratings) > 2.0 * n * hi * (1.0 + TOL) + 1e-6) {
        FAIL("delta rating sum above twice rows * rating range");
    }
    for (size_t t = 0; t < u->gram_len; t++) {
        if (fabs((double) u->gram[t]) > 2.0 * x2 * (1.0 + TOL)) {
            FAIL("delta gram entry above twice (1 + max-user-norm^2)");
        }
    }
    const double rl = 2.0 * sqrt(x2) * B->residual * (1.0 + TOL);
    for (uint32_t j = 0; j < u->n; j++) {
        const float *h  = u->rows + (size_t) j * d;
        double       n2 = 0.0;
        for (size_t a = 0; a < d; a++) {
            n2 += (double) h[a] * h[a];
        }
        if (n2 > rl * rl) {
            FAIL("delta row above twice sqrt(1 + max-user-norm^2) * "
                 "max-residual");
        }
    }
    // VBMF global block: moments of one user (<= x2, R x2, R^2 x2 each)
    // and its squared errors (<= rows (R^2 + x2 R^2)).
    const double R2 = B->residual * B->residual;
    for (size_t t = 0; t < u->vb_len; t++) {
        if (fabs((double) u->vb[t]) >
            2.0 * (n + 1.0) * x2 * (R2 + 1.0) * (1.0 + TOL)) {
            FAIL("delta global block above twice one user's bound");
        }
    }
    return 0;
}

// The checks of a whole (non-delta) contribution, rows already bounded.
static int
check_whole(const fri_agg_config *c, const fri_agg_update *u, double tiny,
    const char **why)
{
    fri_bounds B;
    fri_bounds_of(c, &B);
    double n = u->n;
    if (u->count < 0.0 || u->count > n + 1e-3) {
        FAIL("rating count above the rows the update carries");
    }
    if (u->weight < 0.0 || u->weight > n + 1e-3) {
        FAIL("weight above the rows the update carries");
    }
    // Pseudo items carry predictions (plus noise) as virtual ratings, so
    // the mean of what a device reports may leave the range by one span.
    double lo = c->implicit ? 0.0 : B.rmin - B.span;
    double hi = c->implicit ? B.rmax : B.rmax + B.span;
    double tl = TOL * u->count * (fabs(lo) + fabs(hi)) + 1e-6;
    if (u->sum_ratings < u->count * lo - tl ||
        u->sum_ratings > u->count * hi + tl) {
        FAIL("rating sum outside count * rating range");
    }
    if (c->algo == FRI_AGG_VBMF) {
        return check_vbmf(c, &B, u, tiny, why);
    }
    if (c->algo == FRI_AGG_GRAD) {
        return c->clip > 0.0f ? 0 : check_grad(c, &B, u, why);
    }
    return c->implicit ? check_ials(c, &B, u, tiny, why)
                       : check_als(c, &B, u, tiny, why);
}

int
fri_bounds_update(
    const fri_agg_config *c, const fri_agg_update *u, const char **why)
{
    fri_bounds B;
    fri_bounds_of(c, &B);
    if ((double)u->n > B.max_rows) {
        FAIL("more rows than max-ratings");
    }
    if (c->stats_latest) {
        return check_delta(c, &B, u, why);
    }
    return check_whole(c, u, TINY, why);
}

int
fri_bounds_standing(
    const fri_agg_config *c, const fri_agg_update *u, const char **why)
{
    fri_bounds B;
    fri_bounds_of(c, &B);
    if ((double)u->n > B.max_rows) {
        FAIL("more rows than max-ratings");
    }
    // A standing contribution is a float sum of the device's reports:
    // besides the relative tolerance, allow rounding of the size of one
    // contribution's largest entries (1 + U^2) max(1, R) times 1e-5.
    double x2 = 1.0 + B.user_norm * B.user_norm;
    return check_whole(c, u, 1e-5 * x2 * fmax(1.0, B.residual), why);
}

void
fri_bounds_grad_clip(const fri_agg_config *c, const fri_agg_update *u,
                     double *row_scale, double *stat_scale)
{
    // Clients clip rows and (sum, count) to C / sqrt(2) each (client/fit.c);
    // the slack keeps honest float rounding from being rescaled.
    double half = c->clip / sqrt(2.0);
    double n2   = 0.0;
    for (size_t t = 0; t < u->rows_len; t++) {
        n2 += (double) u->rows[t] * u->rows[t];
    }
    double nr  = sqrt(n2);
    double ns  = sqrt(u->sum_ratings * u->sum_ratings + u->count * u->count);
    *row_scale = nr > half * (1.0 + TOL) ? half / nr : 1.0;
    *stat_scale = ns > half * (1.0 + TOL) ? half / ns : 1.0;
}

int
fri_bounds_model(const fri_agg_config *c, float mu, float mu_prev,
                 const float *bi, const float *Q, char *why, size_t why_cap)
{
    fri_bounds B;
    fri_bounds_of(c, &B);
    if (!isfinite(mu)) {
        snprintf(why, why_cap, "mu is not finite");
        return -1;
    }
    if (!c->implicit && mu != mu_prev && (mu < B.rmin || mu > B.rmax)) {
        snprintf(why, why_cap, "mu %g outside the rating range [%g, %g]",
                 (double) mu, B.rmin, B.rmax);
        return -1;
    }
    const size_t k = c->k;
    for (uint32_t i = 0; i < c->n_items; i++) {
        double n2 = (double) bi[i] * bi[i];
        for (size_t f = 0; f < k; f++) {
            double q = Q[(size_t) i * k + f];
            n2 += q * q;
        }
        if (!isfinite(n2) || n2 > B.item_norm * B.item_norm) {
            snprintf(why, why_cap,
                     "item %u: |[q; b]| = %g above max-item-norm %g", i,
                     sqrt(n2), B.item_norm);
            return -1;
        }
    }
    return 0;
}
