// Server half of federated VBMF (vbmf.h). Mirrors one sweep of
// fri_train_vbmf (common/bayes.c) after the users' half.
#include "vbmf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bayes.h"
#include "linalg.h"

struct fri_vb {
    uint32_t n_items, k, d;
    size_t   P;
    float    beta, beta0, w0;
    float   *umean, *uprec; // user prior: d, d*d full
    float   *uprec_packed; // served form
    float   *imean, *iprec; // item prior: d, d*d full
    float   *S; // n_items * P: full item covariances
    float   *var; // n_items * d: their diagonals (served)
    // Accumulated global block (under the aggregator's accumulator lock).
    double *sx, *sxx;
    double  sq, n_users;
    int     noisy; // DP: the sums carry Gaussian noise
    // Latest-statistics mode: the running global block (every device's
    // latest), kept apart from the round sums above (closer only).
    double *lsx, *lsxx;
    double  lsq, ln_users;
    // Item content features (fri_vb_set_features): F_rows x G floats; an
    // item's prior mean is M [g_i; 1] (M: d x (G + 1) doubles, row-major),
    // M refitted to the items' posterior means after every solve. G == 0:
    // one prior mean for every item (imean).
    float   *F;
    uint32_t G, F_rows;
    double  *M;
};

// Item i's feature row (G floats), NULL for an item without one.
static const float *
feat_row(const fri_vb *v, size_t i)
{
    return i < v->F_rows ? v->F + i * v->G : NULL;
}

// M [g_i; 1] for item i (d floats): its prior mean under the regression M.
static void
regressed_mean(const fri_vb *v, const double *M, size_t i, float *m)
{
    const size_t g1 = (size_t)v->G + 1;
    const float *g  = feat_row(v, i);
    for (size_t a = 0; a < v->d; a++) {
        const double *row = M + a * g1;
        double        s   = row[v->G];
        for (size_t j = 0; g != NULL && j < v->G; j++) {
            s += row[j] * g[j];
        }
        m[a] = (float)s;
    }
}

// Item i's prior mean (d floats).
static void
item_prior_mean(const fri_vb *v, size_t i, float *m)
{
    if (v->G == 0) {
        memcpy(m, v->imean, v->d * sizeof(float));
        return;
    }
    regressed_mean(v, v->M, i, m);
}

int
fri_vb_features_ok(const float *F, uint32_t G, uint32_t rows)
{
    return G >= 1 && G <= FRI_VB_MAX_FEATURES && (rows == 0 || F != NULL)
        && fri_all_finite(F, (size_t)rows * G);
}

// Ridge weight on the feature coefficients (not the intercept), in units
// of one item: keeps a genre few items have near the overall mean.
#define FEAT_RIDGE 1.0

// M (d x (G + 1)) by ridge regression of the first n items' means
// [q_i; b_i] on [g_i; 1]; with S (n x P, or NULL), the residual statistics
// sx (d), sxx (P: sum of r r^T + S_i) of r_i = y_i - M [g_i; 1].
static fr_err
fit_features(const fri_vb *v, const float *Q, const float *bi,
             const float *S, size_t n, double *M, double *sx, double *sxx)
{
    const size_t g1 = (size_t)v->G + 1, d = v->d, k = v->k, P = v->P;
    double      *A  = calloc(g1 * g1, sizeof(double));
    double      *B  = calloc(g1 * d, sizeof(double));
    double      *x  = malloc(g1 * sizeof(double));
    if (A == NULL || B == NULL || x == NULL) {
        free(A);
        free(B);
        free(x);
        return FR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const float *g = feat_row(v, i);
        for (size_t j = 0; j < v->G; j++) {
            x[j] = g != NULL ? g[j] : 0.0;
        }
        x[v->G] = 1.0;
        for (size_t a = 0; a < g1; a++) {
            for (size_t b = 0; b < g1; b++) {
                A[a * g1 + b] += x[a] * x[b];
            }
            for (size_t c = 0; c < d; c++) {
                double y = c < k ? Q[i * k + c] : bi[i];
                B[a * d + c] += x[a] * y;
            }
        }
    }
    for (size_t j = 0; j < v->G; j++) {
        A[j * g1 + j] += FEAT_RIDGE;
    }
    double *L = malloc(g1 * g1 * sizeof(double));
    fr_err  e = L == NULL                     ? FR_ENOMEM
                : fri_chol_d(L, A, g1, 0.0) != 0 ? FR_EINTERNAL
                                                : FR_OK;
    if (e == FR_OK) {
        fri_chol_d_solve(L, B, g1, d);
    }
    free(L);
    for (size_t a = 0; a < d && e == FR_OK; a++) {
        for (size_t j = 0; j < g1; j++) {
            M[a * g1 + j] = B[j * d + a];
        }
    }
    if (e == FR_OK && S != NULL) {
        float *y = malloc(d * sizeof(float)), *m = malloc(d * sizeof(float));
        e        = y == NULL || m == NULL ? FR_ENOMEM : FR_OK;
        for (size_t i = 0; i < n && e == FR_OK; i++) {
            regressed_mean(v, M, i, m);
            for (size_t c = 0; c < d; c++) {
                y[c] = (c < k ? Q[i * k + c] : bi[i]) - m[c];
            }
            fri_bpmf_hyper_stats(sx, sxx, y, v->d);
            for (size_t t = 0; t < P; t++) {
                sxx[t] += S[i * P + t];
            }
        }
        free(y);
        free(m);
    }
    free(A);
    free(B);
    free(x);
    return e;
}

fr_err
fri_vb_set_features(fri_vb *v, const float *F, uint32_t G, uint32_t rows)
{
    if (v == NULL || !fri_vb_features_ok(F, G, rows)) {
        return FR_EINVAL;
    }
    const size_t g1 = (size_t)G + 1;
    float       *f  = malloc(((size_t)rows * G + 1) * sizeof(float));
    double      *M  = calloc(v->d * g1, sizeof(double));
    if (f == NULL || M == NULL) {
        free(f);
        free(M);
        return FR_ENOMEM;
    }
    memcpy(f, F, (size_t)rows * G * sizeof(float));
    // Until the first fit, every item's prior mean is imean.
    for (size_t a = 0; a < v->d; a++) {
        M[a * g1 + G] = v->imean[a];
    }
    free(v->F);
    free(v->M);
    v->F      = f;
    v->M      = M;
    v->G      = G;
    v->F_rows = rows;
    return FR_OK;
}

fr_err
fri_vb_refit_features(fri_vb *v, const float *Q, const float *bi, uint32_t n)
{
    if (v == NULL || v->G == 0) {
        return FR_OK;
    }
    double *M = calloc(v->d * ((size_t)v->G + 1), sizeof(double));
    if (M == NULL) {
        return FR_ENOMEM;
    }
    fr_err e = fit_features(v, Q, bi, NULL, n, M, NULL, NULL);
    if (e == FR_OK) {
        free(v->M);
        v->M = M;
    } else {
        free(M);
    }
    return e;
}

size_t
fri_vb_glob_len(uint32_t k)
{
    size_t d = (size_t)k + 1;
    return d + fri_packed_len(d) + 2;
}

static void
identity(float *m, size_t d)
{
    memset(m, 0, d * d * sizeof(float));
    for (size_t a = 0; a < d; a++) {
        m[a * d + a] = 1.0f;
    }
}

static void
pack(float *dst, const float *full, size_t d)
{
    for (size_t a = 0; a < d; a++) {
        for (size_t b = a; b < d; b++) {
            dst[fri_packed_index(d, a, b)] = full[a * d + b];
        }
    }
}

fr_err
fri_vb_create(fri_vb **out, uint32_t n_items, uint32_t k, float beta,
    float beta0, float w0)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    *out = NULL;
    fri_vbmf_config def;
    fri_vbmf_config_init(&def);
    beta  = beta == 0.0f ? def.beta : beta;
    beta0 = beta0 == 0.0f ? def.beta0 : beta0;
    w0    = w0 == 0.0f ? def.w0 : w0;
    if (k == 0 || k > FRI_MF_MAX_K || !(beta > 0.0f) || !isfinite(beta)
        || !(beta0 > 0.0f) || !isfinite(beta0) || !(w0 > 0.0f)
        || !isfinite(w0)) {
        return FR_EINVAL;
    }
    const size_t d = (size_t)k + 1, P = fri_packed_len(d);
    if (n_items > SIZE_MAX / sizeof(float) / P) {
        return FR_ETOOBIG;
    }
    fri_vb *v = calloc(1, sizeof(*v));
    if (v == NULL) {
        return FR_ENOMEM;
    }
    v->n_items      = n_items;
    v->k            = k;
    v->d            = (uint32_t)d;
    v->P            = P;
    v->beta         = beta;
    v->beta0        = beta0;
    v->w0           = w0;
    v->umean        = calloc(d, sizeof(float));
    v->uprec        = calloc(d * d, sizeof(float));
    v->uprec_packed = calloc(P, sizeof(float));
    v->imean        = calloc(d, sizeof(float));
    v->iprec        = calloc(d * d, sizeof(float));
    v->S            = calloc((size_t)n_items * P + 1, sizeof(float));
    v->var          = calloc((size_t)n_items * d + 1, sizeof(float));
    v->sx           = calloc(d, sizeof(double));
    v->sxx          = calloc(P, sizeof(double));
    if (v->umean == NULL || v->uprec == NULL || v->uprec_packed == NULL
        || v->imean == NULL || v->iprec == NULL || v->S == NULL
        || v->var == NULL || v->sx == NULL || v->sxx == NULL) {
        fri_vb_destroy(v);
        return FR_ENOMEM;
    }
    identity(v->uprec, d);
    identity(v->iprec, d);
    pack(v->uprec_packed, v->uprec, d);
    *out = v;
    return FR_OK;
}

void
fri_vb_destroy(fri_vb *v)
{
    if (v == NULL) {
        return;
    }
    free(v->umean);
    free(v->uprec);
    free(v->uprec_packed);
    free(v->imean);
    free(v->iprec);
    free(v->S);
    free(v->var);
    free(v->sx);
    free(v->sxx);
    free(v->lsx);
    free(v->lsxx);
    free(v->F);
    free(v->M);
    free(v);
}

int
fri_vb_glob_ok(const fri_vb *v, const float *glob, size_t len)
{
    const size_t d = v->d, P = v->P;
    if (glob == NULL || len != fri_vb_glob_len(v->k)) {
        return 0;
    }
    for (size_t t = 0; t < len; t++) {
        if (!isfinite(glob[t])) {
            return 0;
        }
    }
    for (size_t a = 0; a < d; a++) {
        if (glob[d + fri_packed_index(d, a, a)] < 0.0f) {
            return 0;
        }
    }
    return glob[d + P] >= 0.0f && glob[d + P + 1] >= 0.0f;
}

int
fri_vb_glob_delta_ok(const fri_vb *v, const float *glob, size_t len)
{
    if (glob == NULL || len != fri_vb_glob_len(v->k)) {
        return 0;
    }
    for (size_t t = 0; t < len; t++) {
        if (!isfinite(glob[t])) {
            return 0;
        }
    }
    return 1;
}

// The running global block, zeroed, on first use.
static fr_err
latest_alloc(fri_vb *v)
{
    if (v->lsx != NULL) {
        return FR_OK;
    }
    v->lsx  = calloc(v->d, sizeof(double));
    v->lsxx = calloc(v->P, sizeof(double));
    if (v->lsx == NULL || v->lsxx == NULL) {
        free(v->lsx);
        free(v->lsxx);
        v->lsx = v->lsxx = NULL;
        return FR_ENOMEM;
    }
    return FR_OK;
}

fr_err
fri_vb_latest_fold(fri_vb *v, double dmu, double A, double N)
{
    const size_t d = v->d, P = v->P;
    if (latest_alloc(v) != FR_OK) {
        return FR_ENOMEM;
    }
    for (size_t t = 0; t < d; t++) {
        v->lsx[t] += v->sx[t];
        v->sx[t] = v->lsx[t];
    }
    for (size_t t = 0; t < P; t++) {
        v->lsxx[t] += v->sxx[t];
        v->sxx[t] = v->lsxx[t];
    }
    // Every device's squared residuals move with mu: sum (a - dmu)^2.
    v->lsq += v->sq;
    v->lsq += -2.0 * dmu * A + N * dmu * dmu;
    v->ln_users += v->n_users;
    v->sq      = v->lsq;
    v->n_users = v->ln_users;
    return FR_OK;
}

size_t
fri_vb_latest_len(const fri_vb *v)
{
    return v->lsx != NULL ? v->d + v->P + 2 : 0;
}

// A global block [sum E[u] (d) | packed sum E[u u^T] (P) | squared
// residuals | user count] as d + P + 2 doubles.
static void
glob_pack(double *dst, const fri_vb *v, const double *sx, const double *sxx,
    double sq, double n_users)
{
    memcpy(dst, sx, v->d * sizeof(double));
    memcpy(dst + v->d, sxx, v->P * sizeof(double));
    dst[v->d + v->P]     = sq;
    dst[v->d + v->P + 1] = n_users;
}

void
fri_vb_latest_get(const fri_vb *v, double *dst)
{
    if (v->lsx != NULL) {
        glob_pack(dst, v, v->lsx, v->lsxx, v->lsq, v->ln_users);
    }
}

fr_err
fri_vb_latest_set(fri_vb *v, const double *src, size_t len)
{
    const size_t d = v->d, P = v->P;
    if (src == NULL || len != d + P + 2) {
        return FR_EINVAL;
    }
    for (size_t t = 0; t < len; t++) {
        if (!isfinite(src[t])) {
            return FR_EINVAL;
        }
    }
    if (!(src[d + P] >= 0.0) || !(src[d + P + 1] >= 0.0)) {
        return FR_EINVAL; // a sum of squares and a count
    }
    if (latest_alloc(v) != FR_OK) {
        return FR_ENOMEM;
    }
    memcpy(v->lsx, src, d * sizeof(double));
    memcpy(v->lsxx, src + d, P * sizeof(double));
    v->lsq      = src[d + P];
    v->ln_users = src[d + P + 1];
    return FR_OK;
}

void
fri_vb_acc_add(fri_vb *v, const float *glob)
{
    const size_t d = v->d, P = v->P;
    for (size_t t = 0; t < d; t++) {
        v->sx[t] += glob[t];
    }
    for (size_t t = 0; t < P; t++) {
        v->sxx[t] += glob[d + t];
    }
    v->sq += glob[d + P];
    v->n_users += glob[d + P + 1];
}

void
fri_vb_acc_reset(fri_vb *v)
{
    memset(v->sx, 0, v->d * sizeof(double));
    memset(v->sxx, 0, v->P * sizeof(double));
    v->sq      = 0.0;
    v->n_users = 0.0;
}

// E[(r - mu - b_u - y.x)^2] summed over item i's ratings, from the summed
// statistics: sum_u E[x x^T] = G, sum_u E[x a] = h (a = r - mu - b_u),
// y = [q_i; b_i] with diagonal covariance var (what users saw):
//   y^T G y + sum_a G_aa var_a - 2 h.y   (plus sum E[a^2], added later).
static double
item_sse(const float *G, const float *h, const float *q, float b,
    const float *var, size_t d)
{
    double s = 0.0;
    for (size_t a = 0; a < d; a++) {
        double ya = a + 1 < d ? q[a] : b;
        s += (double)G[fri_packed_index(d, a, a)] * (ya * ya + var[a]);
        s -= 2.0 * h[a] * ya;
        for (size_t c = a + 1; c < d; c++) {
            double yc = c + 1 < d ? q[c] : b;
            s += 2.0 * G[fri_packed_index(d, a, c)] * ya * yc;
        }
    }
    return s;
}

void
fri_vb_set_noisy(fri_vb *v, int noisy)
{
    v->noisy = noisy != 0;
}

// DP post-processing of the (noisy) global sums the solve reads: at least
// one user, a PSD user scatter, non-negative squared residuals.
static fr_err
denoise_glob(fri_vb *v, double n_ratings)
{
    const size_t d = v->d, P = v->P;
    if (!(v->n_users >= 1.0)) {
        v->n_users = 1.0;
    }
    float  *S    = malloc(P * sizeof(float));
    double *work = malloc((2 * d * d + d) * sizeof(double));
    if (S == NULL || work == NULL) {
        free(S);
        free(work);
        return FR_ENOMEM;
    }
    for (size_t a = 0; a < d; a++) {
        for (size_t b = a; b < d; b++) {
            size_t t = fri_packed_index(d, a, b);
            S[t] = (float)(v->sxx[t] - v->sx[a] * v->sx[b] / v->n_users);
        }
    }
    if (fri_psd_project_packed(S, d, 0.0, work) > 0) {
        for (size_t a = 0; a < d; a++) {
            for (size_t b = a; b < d; b++) {
                size_t t = fri_packed_index(d, a, b);
                v->sxx[t] = S[t] + v->sx[a] * v->sx[b] / v->n_users;
            }
        }
    }
    free(S);
    free(work);
    // Squared residuals: at least a tiny fraction of the rating count.
    if (!(v->sq >= 1e-3 * n_ratings)) {
        v->sq = 1e-3 * n_ratings;
    }
    return FR_OK;
}

fr_err
fri_vb_solve(fri_vb *v, float *const *acc, float mu, float mu_old,
    double n_ratings, float *bi, float *Q, size_t *skipped)
{
    if (v == NULL || acc == NULL || bi == NULL || Q == NULL
        || skipped == NULL || !(n_ratings > 0.0)) {
        return FR_EINVAL;
    }
    *skipped = 0;
    const size_t d = v->d, P = v->P, k = v->k, ni = v->n_items;
    const size_t wl   = fri_bpmf_work_len(v->k);
    float       *work = malloc(wl * sizeof(float));
    float       *zero = calloc(P + d, sizeof(float));
    float       *h    = malloc(d * sizeof(float));
    float       *nS   = malloc((ni * P + 1) * sizeof(float));
    float       *nvar = malloc((ni * d + 1) * sizeof(float));
    float *um = malloc(d * sizeof(float)), *up = malloc(d * d * sizeof(float));
    float *im = malloc(d * sizeof(float)), *ip = malloc(d * d * sizeof(float));
    double *sx = calloc(d, sizeof(double)), *sxx = calloc(P, sizeof(double));
    float  *y = malloc(d * sizeof(float));
    float  *y0 = malloc(d * sizeof(float));
    fr_err  e = FR_OK;
    if (work == NULL || zero == NULL || h == NULL || nS == NULL || nvar == NULL
        || um == NULL || up == NULL || im == NULL || ip == NULL || sx == NULL
        || sxx == NULL || y == NULL || y0 == NULL) {
        e = FR_ENOMEM;
    }
    // Items, under the previous item prior and beta.
    if (e == FR_OK && v->noisy) {
        e = denoise_glob(v, n_ratings);
    }
    float         *pm     = malloc(d * sizeof(float));
    double        *nM     = v->G > 0
                                ? calloc(d * ((size_t)v->G + 1), sizeof(double))
                                : NULL;
    if (pm == NULL || (v->G > 0 && nM == NULL)) {
        e = FR_ENOMEM;
    }
    fri_bpmf_prior iprior = { v->d, pm, v->iprec };
    const float    dmu    = mu - mu_old;
    for (size_t i = 0; i < ni && e == FR_OK; i++) {
        const float *G = acc[i] != NULL ? acc[i] : zero;
        item_prior_mean(v, i, pm);
        for (size_t r = 0; r < d; r++) {
            // h was computed with mu_old: h -= dmu * sum_u x_u (the Gram's
            // last column, x = [p; 1]).
            h[r] = G[P + r] - dmu * G[fri_packed_index(d, r, d - 1)];
        }
        memcpy(y0, Q + i * k, k * sizeof(float));
        y0[k] = bi[i];
        e     = fri_bpmf_item_step(Q + i * k, &bi[i], nS + i * P, G, h, v->k,
            &iprior, v->beta, NULL, work, wl);
        if (e != FR_OK && e != FR_ENOMEM) {
            // One item whose step fails (a system that is not positive
            // definite) keeps its mean and covariance; the others go on.
            memcpy(Q + i * k, y0, k * sizeof(float));
            bi[i] = y0[k];
            memcpy(nS + i * P, v->S + i * P, P * sizeof(float));
            (*skipped)++;
            e = FR_OK;
        }
    }
    // User prior from the clients' sums (covariances already included).
    if (e == FR_OK) {
        e = fri_bpmf_hyper_sample(
            um, up, v->sx, v->sxx, v->n_users, v->d, v->beta0, v->w0, NULL);
    }
    // Item prior from the new items and their full covariances; with
    // content features its mean is regressed on them and its precision
    // comes from the residuals.
    for (size_t i = 0; i < ni && e == FR_OK; i++) {
        if (v->G == 0) {
            memcpy(y, Q + i * k, k * sizeof(float));
            y[k] = bi[i];
            fri_bpmf_hyper_stats(sx, sxx, y, v->d);
            for (size_t t = 0; t < P; t++) {
                sxx[t] += nS[i * P + t];
            }
        }
        for (size_t a = 0; a < d; a++) {
            nvar[i * d + a] = nS[i * P + fri_packed_index(d, a, a)];
        }
    }
    if (e == FR_OK && v->G > 0) {
        e = fit_features(v, Q, bi, nS, ni, nM, sx, sxx);
    }
    if (e == FR_OK) {
        e = fri_bpmf_hyper_sample(
            im, ip, sx, sxx, (double)ni, v->d, v->beta0, v->w0, NULL);
    }
    if (e == FR_OK && v->G > 0) {
        // imean: the intercept (what a featureless item's prior mean is).
        for (size_t a = 0; a < d; a++) {
            im[a] = (float)nM[a * ((size_t)v->G + 1) + v->G];
        }
    }
    // Noise precision from the expected squared error under the new items
    // (as users will see them: diagonal covariances).
    double esse = v->sq;
    for (size_t i = 0; i < ni && e == FR_OK; i++) {
        if (acc[i] == NULL) {
            continue;
        }
        for (size_t r = 0; r < d; r++) {
            h[r] = acc[i][P + r] - dmu * acc[i][fri_packed_index(d, r, d - 1)];
        }
        esse += item_sse(acc[i], h, Q + i * k, bi[i], nvar + i * d, d);
    }
    float beta = v->beta;
    if (e == FR_OK && v->noisy && !(esse >= 0.5 * v->sq)) {
        // Noisy item terms: items fitted to the noise of their h would
        // "explain" it; the item effects may explain at most half of the
        // squared residuals around the user biases.
        esse = 0.5 * v->sq;
    }
    if (e == FR_OK) {
        beta = (float)(n_ratings / esse);
        if (!(beta > 0.0f) || !isfinite(beta)) {
            e = FR_EINTERNAL;
        }
    }
    if (e == FR_OK) {
        memcpy(v->umean, um, d * sizeof(float));
        memcpy(v->uprec, up, d * d * sizeof(float));
        pack(v->uprec_packed, up, d);
        memcpy(v->imean, im, d * sizeof(float));
        memcpy(v->iprec, ip, d * d * sizeof(float));
        if (v->G > 0) {
            double *t = v->M;
            v->M      = nM;
            nM        = t;
        }
        float *t = v->S;
        v->S     = nS;
        nS       = t;
        t        = v->var;
        v->var   = nvar;
        nvar     = t;
        v->beta  = beta;
    }
    free(work);
    free(zero);
    free(pm);
    free(nM);
    free(h);
    free(nS);
    free(nvar);
    free(um);
    free(up);
    free(im);
    free(ip);
    free(sx);
    free(sxx);
    free(y);
    free(y0);
    return e;
}

void
fri_vb_view(const fri_vb *v, float *beta, const float **umean,
    const float **uprec, const float **item_var)
{
    *beta     = v->beta;
    *umean    = v->umean;
    *uprec    = v->uprec_packed;
    *item_var = v->var;
}

size_t
fri_vb_state_len(const fri_vb *v)
{
    return 1 + 2 * ((size_t)v->d + v->P) + (size_t)v->n_items * v->P;
}

void
fri_vb_state_get(const fri_vb *v, float *dst)
{
    const size_t d = v->d, P = v->P;
    *dst++ = v->beta;
    memcpy(dst, v->umean, d * sizeof(float));
    dst += d;
    pack(dst, v->uprec, d);
    dst += P;
    memcpy(dst, v->imean, d * sizeof(float));
    dst += d;
    pack(dst, v->iprec, d);
    dst += P;
    memcpy(dst, v->S, (size_t)v->n_items * P * sizeof(float));
}

static void
unpack(float *full, const float *packed, size_t d)
{
    for (size_t a = 0; a < d; a++) {
        for (size_t b = a; b < d; b++) {
            full[a * d + b] = full[b * d + a]
                = packed[fri_packed_index(d, a, b)];
        }
    }
}

fr_err
fri_vb_state_set(fri_vb *v, const float *src, size_t len)
{
    return fri_vb_state_set_prefix(v, src, len, v->n_items);
}

fr_err
fri_vb_state_set_prefix(fri_vb *v, const float *src, size_t len,
                        uint32_t n_old)
{
    const size_t d = v->d, P = v->P;
    if (src == NULL || n_old > v->n_items ||
        len != 1 + 2 * (d + P) + (size_t)n_old * P) {
        return FR_EINVAL;
    }
    for (size_t t = 0; t < len; t++) {
        if (!isfinite(src[t])) {
            return FR_EINVAL;
        }
    }
    if (!(src[0] > 0.0f)) {
        return FR_EINVAL;
    }
    const float *s = src + 1;
    v->beta        = src[0];
    memcpy(v->umean, s, d * sizeof(float));
    s += d;
    unpack(v->uprec, s, d);
    memcpy(v->uprec_packed, s, P * sizeof(float));
    s += P;
    memcpy(v->imean, s, d * sizeof(float));
    s += d;
    unpack(v->iprec, s, d);
    s += P;
    memcpy(v->S, s, (size_t)n_old * P * sizeof(float));
    for (size_t i = 0; i < n_old; i++) {
        for (size_t a = 0; a < d; a++) {
            v->var[i * d + a] = v->S[i * P + fri_packed_index(d, a, a)];
        }
    }
    return FR_OK;
}

fr_err
fri_vb_prior_rows(fri_vb *v, uint32_t from, float *Q, float *bi)
{
    if (v == NULL || Q == NULL || bi == NULL || from > v->n_items) {
        return FR_EINVAL;
    }
    const size_t d = v->d, P = v->P, k = v->k;
    const size_t wl   = fri_bpmf_work_len(v->k);
    float       *work = malloc(wl * sizeof(float));
    float       *zero = calloc(P + d, sizeof(float));
    fr_err       e    = work == NULL || zero == NULL ? FR_ENOMEM : FR_OK;
    // The item step with no statistics is the prior: mean imean,
    // covariance iprec^-1 (what the next solve gives them anyway).
    float         *pm     = malloc(d * sizeof(float));
    fri_bpmf_prior iprior = { v->d, pm, v->iprec };
    if (pm == NULL) {
        e = FR_ENOMEM;
    }
    for (size_t i = from; i < v->n_items && e == FR_OK; i++) {
        item_prior_mean(v, i, pm);
        e = fri_bpmf_item_step(Q + i * k, &bi[i], v->S + i * P, zero,
            zero + P, v->k, &iprior, v->beta, NULL, work, wl);
        for (size_t a = 0; a < d && e == FR_OK; a++) {
            v->var[i * d + a] = v->S[i * P + fri_packed_index(d, a, a)];
        }
    }
    free(work);
    free(zero);
    free(pm);
    return e;
}

fr_err
fri_vb_grow(fri_vb *v, uint32_t n_items, float *Q, float *bi)
{
    if (v == NULL || Q == NULL || bi == NULL || n_items < v->n_items) {
        return FR_EINVAL;
    }
    const size_t d = v->d, P = v->P, n0 = v->n_items;
    if (n_items > SIZE_MAX / sizeof(float) / P - 1) {
        return FR_ETOOBIG;
    }
    float *S = realloc(v->S, ((size_t)n_items * P + 1) * sizeof(float));
    if (S == NULL) {
        return FR_ENOMEM;
    }
    v->S       = S;
    float *var = realloc(v->var, ((size_t)n_items * d + 1) * sizeof(float));
    if (var == NULL) {
        return FR_ENOMEM;
    }
    v->var     = var;
    v->n_items = n_items;
    fr_err e   = fri_vb_prior_rows(v, (uint32_t)n0, Q, bi);
    if (e != FR_OK) {
        v->n_items = (uint32_t)n0;
    }
    return e;
}

void
fri_vb_acc_get(const fri_vb *v, double *glob)
{
    glob_pack(glob, v, v->sx, v->sxx, v->sq, v->n_users);
}

void
fri_vb_acc_add_d(fri_vb *v, const double *glob)
{
    const size_t d = v->d, P = v->P;
    for (size_t t = 0; t < d; t++) {
        v->sx[t] += glob[t];
    }
    for (size_t t = 0; t < P; t++) {
        v->sxx[t] += glob[d + t];
    }
    v->sq += glob[d + P];
    v->n_users += glob[d + P + 1];
}
