#include "mf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "recency.h"

#ifdef FR_WITH_BLAS
#include <cblas.h>
#endif

// ---- model ---------------------------------------------------------------


fr_err
fri_mf_create(fri_mf_model **out, uint32_t n_users, uint32_t n_items,
              uint32_t k)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    *out = NULL;
    if (k == 0 || k > FRI_MF_MAX_K || n_users == 0 || n_items == 0) {
        return FR_EINVAL;
    }
    size_t np, nq;
    if (!fri_mul_ok(n_users, k, &np) || !fri_mul_ok(n_items, k, &nq) ||
        np > SIZE_MAX / sizeof(float) || nq > SIZE_MAX / sizeof(float)) {
        return FR_ETOOBIG;
    }
    fri_mf_model *m = calloc(1, sizeof(*m));
    if (m == NULL) {
        return FR_ENOMEM;
    }
    m->n_users = n_users;
    m->n_items = n_items;
    m->k = k;
    m->bu = calloc(n_users, sizeof(float));
    m->bi = calloc(n_items, sizeof(float));
    m->P = calloc(np, sizeof(float));
    m->Q = calloc(nq, sizeof(float));
    if (m->bu == NULL || m->bi == NULL || m->P == NULL || m->Q == NULL) {
        fri_mf_destroy(m);
        return FR_ENOMEM;
    }
    *out = m;
    return FR_OK;
}

void
fri_mf_destroy(fri_mf_model *m)
{
    if (m == NULL) {
        return;
    }
    free(m->bu);
    free(m->bi);
    free(m->P);
    free(m->Q);
    free(m);
}

void
fri_mf_init(fri_mf_model *m, float mu, float stddev, uint64_t seed)
{
    fri_rng r;
    m->mu = mu;
    memset(m->bu, 0, (size_t)m->n_users * sizeof(float));
    memset(m->bi, 0, (size_t)m->n_items * sizeof(float));
    // Separate streams so P does not depend on n_items and vice versa.
    fri_rng_seed2(&r, seed, 1);
    for (size_t j = 0; j < (size_t)m->n_users * m->k; j++) {
        m->P[j] = (float)(stddev * fri_rng_normal(&r));
    }
    fri_rng_seed2(&r, seed, 2);
    for (size_t j = 0; j < (size_t)m->n_items * m->k; j++) {
        m->Q[j] = (float)(stddev * fri_rng_normal(&r));
    }
}

fr_err
fri_mf_copy(fri_mf_model *dst, const fri_mf_model *src)
{
    if (dst == NULL || src == NULL || dst->n_users != src->n_users ||
        dst->n_items != src->n_items || dst->k != src->k) {
        return FR_EINVAL;
    }
    dst->mu = src->mu;
    memcpy(dst->bu, src->bu, (size_t)src->n_users * sizeof(float));
    memcpy(dst->bi, src->bi, (size_t)src->n_items * sizeof(float));
    memcpy(dst->P, src->P, (size_t)src->n_users * src->k * sizeof(float));
    memcpy(dst->Q, src->Q, (size_t)src->n_items * src->k * sizeof(float));
    return FR_OK;
}

fri_mf_items
fri_mf_items_of(const fri_mf_model *m)
{
    fri_mf_items it = {m->n_items, m->k, m->mu, m->bi, m->Q};
    return it;
}

float
fri_mf_dot(const float *a, const float *b, uint32_t k)
{
    float s = 0.0f;
    for (uint32_t f = 0; f < k; f++) {
        s += a[f] * b[f];
    }
    return s;
}

float
fri_mf_predict(const fri_mf_model *m, uint32_t u, uint32_t i)
{
    return m->mu + m->bu[u] + m->bi[i] +
           fri_mf_dot(m->P + (size_t)u * m->k, m->Q + (size_t)i * m->k, m->k);
}

float
fri_mf_predict_with(const fri_mf_items *it, const float *p, float bu,
                    uint32_t i)
{
    return it->mu + bu + it->bi[i] +
           fri_mf_dot(p, it->Q + (size_t)i * it->k, it->k);
}

size_t
fri_mf_work_len(uint32_t k)
{
    size_t d = (size_t)k + 1;
    return d * d + d;
}


static int
items_valid(const fri_mf_items *it)
{
    return it != NULL && it->k > 0 && it->k <= FRI_MF_MAX_K &&
           (it->n_items == 0 || (it->bi != NULL && it->Q != NULL));
}

// Penalty multiplier of a row with n ratings (see mf.h).
static float
reg_scale(int weighted, double n)
{
    switch (weighted) {
    case 0:
        return 1.0f;
    case 2:
        return (float)sqrt(n);
    default:
        return (float)n;
    }
}

// Adds the ridge penalties (lam on the factor diagonal, lam_bias on the
// bias) to the d x d system A x = b, d = k+1, solves it and splits x into
// factor and bias; the outputs are written only on success.
static fr_err
ridge_solve(float *f_out, float *bias_out, float *A, float *b, size_t k,
            float lam, float lam_bias)
{
    const size_t d = k + 1;
    for (size_t a = 0; a < k; a++) {
        A[a * d + a] += lam;
    }
    A[k * d + k] += lam_bias;
    fr_err e = fri_chol_solve(A, b, d);
    if (e == FR_OK) {
        memcpy(f_out, b, k * sizeof(float));
        *bias_out = b[k];
    }
    return e;
}

// ---- explicit ALS --------------------------------------------------------

void
fri_mf_user_normal_eq(float *A, float *b, const fri_mf_items *it,
                      const uint32_t *items, const float *ratings, size_t n)
{
    const size_t k = it->k, d = k + 1;
    memset(A, 0, d * d * sizeof(float));
    memset(b, 0, d * sizeof(float));
    for (size_t j = 0; j < n; j++) {
        const float *q = it->Q + (size_t)items[j] * k;
        float res = ratings[j] - it->mu - it->bi[items[j]];
        for (size_t a = 0; a < k; a++) {
            float qa = q[a];
            float *row = A + a * d;
            for (size_t c = a; c < k; c++) {
                row[c] += qa * q[c];
            }
            row[k] += qa;
            b[a] += qa * res;
        }
        b[k] += res;
    }
    A[k * d + k] = (float)n;
}

fr_err
fri_mf_user_solve(float *p_out, float *bu_out, const fri_mf_items *it,
                  const uint32_t *items, const float *ratings, size_t n,
                  float reg, float reg_bias, int weighted, float *work,
                  size_t work_len)
{
    if (p_out == NULL || bu_out == NULL || !items_valid(it) ||
        (n > 0 && (items == NULL || ratings == NULL)) || !(reg >= 0.0f) ||
        !(reg_bias >= 0.0f)) {
        return FR_EINVAL;
    }
    const uint32_t k = it->k;
    const size_t d = (size_t)k + 1;
    if (n == 0) {
        memset(p_out, 0, k * sizeof(float));
        *bu_out = 0.0f;
        return FR_OK;
    }
    for (size_t j = 0; j < n; j++) {
        if (items[j] >= it->n_items || !isfinite(ratings[j])) {
            return FR_EINVAL;
        }
    }
    float *w, *owned;
    fr_err e = fri_work_get(&w, &owned, work, work_len, fri_mf_work_len(k));
    if (e != FR_OK) {
        return e;
    }
    float *A = w;     // d x d, upper triangle used
    float *b = w + d * d; // d
    fri_mf_user_normal_eq(A, b, it, items, ratings, n);
    float scale = reg_scale(weighted, (double)n);
    e = ridge_solve(p_out, bu_out, A, b, k, reg * scale, reg_bias * scale);
    free(owned);
    return e;
}

size_t
fri_mf_loo_work_len(uint32_t k, size_t top)
{
    size_t d = (size_t)k + 1;
    return 2 * d * d + 6 * d + 2 * top;
}

// The leave-one-out system shared by every rating: M = A'^-1 (floats, d x
// d), x' = M b, u = M z_target, zix = z_target . x'.
typedef struct {
    size_t       k, d;
    const float *M;
    const double *x, *u;
    double       zix;
} loo_sys;

// v_j = z_target . x_j - zix for rating j, exactly. Without j: A_j =
// A' - z z^T, b_j = b - z y_j; with h = z^T M z and w = z_target^T M z,
// Sherman-Morrison gives z_target . x_j = zix - w y_j + w (z . x' - h y_j)
// / (1 - h). FR_EINTERNAL if 1 - h is not safely positive.
static fr_err
loo_one(double *v_out, const loo_sys *S, const fri_mf_items *it,
        uint32_t item, float rating, float *z, float *y)
{
    const size_t k = S->k, d = S->d;
    const float *q = it->Q + (size_t)item * k;
    memcpy(z, q, k * sizeof(float));
    z[k] = 1.0f;
    // M z as a sum of M's rows (axpy: vectorizes without reassociation).
    memcpy(y, S->M + k * d, d * sizeof(float));
    for (size_t a = 0; a < k; a++) {
        const float *row = S->M + a * d;
        const float  za  = z[a];
        for (size_t c = 0; c < d; c++) {
            y[c] += za * row[c];
        }
    }
    double h = 0.0, w = 0.0, zx = 0.0;
    for (size_t a = 0; a < d; a++) {
        h += (double)z[a] * y[a];
        w += S->u[a] * z[a];
        zx += (double)z[a] * S->x[a];
    }
    if (!(1.0 - h > 1e-6)) {
        return FR_EINTERNAL;
    }
    double yj = (double)rating - it->mu - it->bi[item];
    *v_out    = -w * yj + w * (zx - h * yj) / (1.0 - h);
    return FR_OK;
}

// Min-heap of doubles (the weakest of the kept values at the root).
static void
dheap_push(double *h, size_t *n, size_t cap, double v)
{
    if (*n == cap) {
        if (!(v > h[0])) {
            return;
        }
        // Replace the root and sift down.
        size_t i = 0;
        for (;;) {
            size_t l = 2 * i + 1, r = l + 1, m = i;
            double mv = v;
            if (l < *n && h[l] < mv) {
                m  = l;
                mv = h[l];
            }
            if (r < *n && h[r] < mv) {
                m = r;
            }
            if (m == i) {
                break;
            }
            h[i] = h[m];
            i    = m;
        }
        h[i] = v;
        return;
    }
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i    = (i - 1) / 2;
    }
    h[i] = v;
}

fr_err
fri_loo_top(float *loo, size_t n, size_t top, float full,
            fri_loo_exact_fn exact, void *ctx, double *heaps)
{
    // With top 0 or >= n every rating is wanted and loo[] holds no bounds.
    const int all = top == 0 || top >= n;
    double    thr = -INFINITY;
    if (!all) {
        double *heap = heaps, *seed = heaps + top;
        size_t  ns = 0, nh = 0;
        // Seeds: the `top` largest bounds (as stored, rounded to float).
        for (size_t j = 0; j < n; j++) {
            dheap_push(seed, &ns, top, (double)loo[j]);
        }
        // The seeds' exact effects: the top-th largest of them is a lower
        // bound on the top-th largest effect of all. Then every rating
        // whose bound reaches it is evaluated (the seeds again: the heap
        // holds values, not indices), the others pruned.
        const double seed_min = seed[0];
        for (size_t j = 0; j < n; j++) {
            if ((double)loo[j] >= seed_min) {
                double pred;
                fr_err e = exact(ctx, j, &pred);
                if (e != FR_OK) {
                    return e;
                }
                dheap_push(heap, &nh, top, (double)full - pred);
            }
        }
        if (nh == top) {
            thr = heap[0] - 1e-5 * (1.0 + fabs(heap[0]));
        }
    }
    for (size_t j = 0; j < n; j++) {
        if (!all && !((double)loo[j] >= thr)) {
            loo[j] = NAN;
            continue;
        }
        double pred;
        fr_err e = exact(ctx, j, &pred);
        if (e != FR_OK) {
            return e;
        }
        loo[j] = (float)pred;
    }
    return FR_OK;
}

typedef struct {
    const loo_sys      *S;
    const fri_mf_items *it;
    const uint32_t     *items;
    const float        *ratings;
    float              *z, *y;
    double              base;
} als_loo_ctx;

static fr_err
als_loo_exact(void *ctx, size_t j, double *pred)
{
    const als_loo_ctx *c = ctx;
    double             v = 0.0;
    fr_err e = loo_one(&v, c->S, c->it, c->items[j], c->ratings[j], c->z, c->y);
    *pred    = c->base + v;
    return e;
}

fr_err
fri_mf_user_loo(float *loo, const fri_mf_items *it, const uint32_t *items,
                const float *ratings, size_t n, float reg, float reg_bias,
                int weighted, uint32_t target, float full, size_t top,
                double *work, size_t work_len)
{
    if (loo == NULL || !items_valid(it) || items == NULL || ratings == NULL ||
        n < 2 || target >= it->n_items || !(reg >= 0.0f) ||
        !(reg_bias >= 0.0f) || work == NULL ||
        work_len < fri_mf_loo_work_len(it->k, top < n ? top : 0)) {
        return FR_EINVAL;
    }
    for (size_t j = 0; j < n; j++) {
        if (items[j] >= it->n_items || !isfinite(ratings[j])) {
            return FR_EINVAL;
        }
    }
    const size_t k = it->k, d = k + 1;
    // Doubles: L (d x d), x, u, inv, then the two top-sized heaps; floats
    // after the first four: G then M (d x d, the same storage), b, z, y.
    double *L = work, *x = L + d * d, *u = x + d, *inv = u + d;
    float  *M = (float *)(inv + d), *bf = M + d * d, *z = bf + d, *y = z + d;
    double *heap = work + 2 * d * d + 6 * d;
    // A' = sum_j z z^T + s(n-1) Lambda: the fold-in's own data sums (the
    // same float code, so both see the same numbers), factored in double.
    fri_mf_user_normal_eq(M, bf, it, items, ratings, n);
    double s = reg_scale(weighted, (double)(n - 1));
    for (size_t a = 0; a < d; a++) {
        for (size_t c = 0; c <= a; c++) {
            L[a * d + c] = M[c * d + a]; // upper triangle -> lower
        }
        L[a * d + a] += (a < k ? (double)reg : (double)reg_bias) * s;
    }
    for (size_t a = 0; a < d; a++) {
        for (size_t c = 0; c <= a; c++) {
            double v = L[a * d + c];
            for (size_t e = 0; e < c; e++) {
                v -= L[a * d + e] * L[c * d + e];
            }
            if (c == a) {
                if (!(v > 0.0)) {
                    return FR_EINTERNAL;
                }
                L[a * d + a] = sqrt(v);
                inv[a]       = 1.0 / L[a * d + a];
            } else {
                L[a * d + c] = v * inv[c];
            }
        }
    }
    // M = A'^-1, column by column (M is symmetric): L L^T m_c = e_c.
    for (size_t c = 0; c < d; c++) {
        for (size_t a = 0; a < d; a++) {
            double v = a == c ? 1.0 : 0.0;
            for (size_t e = 0; e < a; e++) {
                v -= L[a * d + e] * u[e];
            }
            u[a] = v * inv[a];
        }
        for (size_t a = d; a-- > 0;) {
            double v = u[a];
            for (size_t e = a + 1; e < d; e++) {
                v -= L[e * d + a] * u[e];
            }
            u[a] = v * inv[a];
        }
        for (size_t a = 0; a < d; a++) {
            M[a * d + c] = (float)u[a];
        }
    }
    // x' = M b and u = M z_target, in double.
    const float *qt = it->Q + (size_t)target * k;
    for (size_t a = 0; a < d; a++) {
        double xa = 0.0, ua = 0.0;
        for (size_t c = 0; c < d; c++) {
            xa += (double)M[a * d + c] * bf[c];
            ua += (double)M[a * d + c] * (c < k ? qt[c] : 1.0f);
        }
        x[a] = xa;
        u[a] = ua;
    }
    loo_sys S = { k, d, M, x, u, (double)x[k] };
    for (size_t a = 0; a < k; a++) {
        S.zix += (double)qt[a] * x[a];
    }
    const double base = (double)it->mu + it->bi[target] + S.zix;
    als_loo_ctx  ctx  = { &S, it, items, ratings, z, y, base };
    if (top == 0 || top >= n) {
        return fri_loo_top(loo, n, top, full, als_loo_exact, &ctx, NULL);
    }
    // Only the `top` largest effects full - loo[j] are wanted. The exact
    // v_j = t_j / (1 - h_j) with t_j = w_j (z_j . x' - y_j) costs O(k);
    // h_j = z_j^T M z_j costs O(k^2), but 0 <= h_j <= |z_j|^2 lambda_max(M)
    // <= |z_j|^2 g (g: M's largest absolute row sum, Gershgorin), so the
    // effect is bounded in O(k). Ratings whose bound cannot reach the
    // top-th exact effect seen so far get NaN and are never computed.
    double g = 0.0;
    for (size_t a = 0; a < d; a++) {
        double r = 0.0;
        for (size_t c = 0; c < d; c++) {
            r += fabs((double)M[a * d + c]);
        }
        g = r > g ? r : g;
    }
    g *= 1.0 + 1e-6; // the float rows' rounding
    const double cst = (double)full - base;
    for (size_t j = 0; j < n; j++) {
        const float *q = it->Q + (size_t)items[j] * k;
        double w = u[k], zx = x[k], z2 = 1.0;
        for (size_t a = 0; a < k; a++) {
            w += u[a] * q[a];
            zx += x[a] * q[a];
            z2 += (double)q[a] * q[a];
        }
        double yj = (double)ratings[j] - it->mu - it->bi[items[j]];
        double t  = w * (zx - yj), H = z2 * g;
        // effect = cst - t / (1 - h): largest at h = H when t < 0.
        loo[j] = (float)(t >= 0.0 ? cst - t
                         : H < 1.0 - 1e-6 ? cst - t / (1.0 - H)
                                          : INFINITY);
    }
    return fri_loo_top(loo, n, top, full, als_loo_exact, &ctx, heap);
}

fr_err
fri_mf_user_item_stats(float *gram_out, size_t gram_len, float *h_out,
                       size_t h_len, const float *p, float bu, uint32_t k,
                       float mu, const float *ratings, size_t n)
{
    if (gram_out == NULL || p == NULL || k == 0 || k > FRI_MF_MAX_K ||
        (n > 0 && (h_out == NULL || ratings == NULL))) {
        return FR_EINVAL;
    }
    const size_t d = (size_t)k + 1;
    if (gram_len < fri_packed_len(d) || (n > 0 && h_len / d < n)) {
        return FR_ENOSPC;
    }
    size_t t = 0;
    for (size_t a = 0; a < d; a++) {
        float xa = a < k ? p[a] : 1.0f;
        for (size_t c = a; c < d; c++) {
            float xc = c < k ? p[c] : 1.0f;
            gram_out[t++] = xa * xc;
        }
    }
    for (size_t j = 0; j < n; j++) {
        float res = ratings[j] - mu - bu;
        float *h = h_out + j * d;
        for (size_t a = 0; a < k; a++) {
            h[a] = p[a] * res;
        }
        h[k] = res;
    }
    return FR_OK;
}

fr_err
fri_mf_item_solve(float *q_out, float *b_out, const float *gram_sum_packed,
                  const float *h_sum, uint32_t k, float reg, float reg_bias,
                  int weighted, float *work, size_t work_len)
{
    if (q_out == NULL || b_out == NULL || gram_sum_packed == NULL ||
        h_sum == NULL || k == 0 || k > FRI_MF_MAX_K || !(reg >= 0.0f) ||
        !(reg_bias >= 0.0f)) {
        return FR_EINVAL;
    }
    const size_t d = (size_t)k + 1;
    float n_i = gram_sum_packed[fri_packed_index(d, k, k)];
    if (!(n_i > 0.0f)) {
        memset(q_out, 0, k * sizeof(float));
        *b_out = 0.0f;
        return FR_OK;
    }
    float *w, *owned;
    fr_err e = fri_work_get(&w, &owned, work, work_len, fri_mf_work_len(k));
    if (e != FR_OK) {
        return e;
    }
    float *A = w;
    float *b = w + d * d;
    fri_packed_unpack(A, gram_sum_packed, d);
    memcpy(b, h_sum, d * sizeof(float));
    float scale = reg_scale(weighted, n_i);
    e = ridge_solve(q_out, b_out, A, b, k, reg * scale, reg_bias * scale);
    free(owned);
    return e;
}

// ---- explicit gradients and SGD -----------------------------------------

void
fri_mf_item_stats_add(float *gram_acc, float *h_acc, const uint32_t *idx,
                      size_t n, const float *gram_u, size_t plen,
                      const float *h_u, size_t d)
{
    for (size_t j = 0; j < n; j++) {
        float *g = gram_acc + (size_t)idx[j] * plen;
        for (size_t t = 0; t < plen; t++) {
            g[t] += gram_u[t];
        }
        float *h = h_acc + (size_t)idx[j] * d;
        const float *hj = h_u + j * d;
        for (size_t t = 0; t < d; t++) {
            h[t] += hj[t];
        }
    }
}

fr_err
fri_mf_acc_sizes_of(fri_mf_acc_sizes *out, const fri_csr *train, size_t plen,
                    size_t rhs_dim, size_t row_dim)
{
    const size_t n_items = train->n_cols;
    if (!fri_mul_ok(n_items, plen, &out->gram) ||
        !fri_mul_ok(n_items, rhs_dim, &out->rhs) ||
        !fri_mul_ok(fri_csr_max_row_len(train), row_dim, &out->rows) ||
        out->gram > SIZE_MAX / sizeof(float)) {
        return FR_ETOOBIG;
    }
    return FR_OK;
}

fr_err
fri_mf_user_item_grad(float *grad_out, size_t grad_len,
                      const fri_mf_items *it, const float *p, float bu,
                      const uint32_t *items, const float *ratings, size_t n,
                      float reg, float reg_bias)
{
    if (!items_valid(it) || p == NULL ||
        (n > 0 && (grad_out == NULL || items == NULL || ratings == NULL))) {
        return FR_EINVAL;
    }
    const uint32_t k = it->k;
    const size_t d = (size_t)k + 1;
    if (n > 0 && grad_len / d < n) {
        return FR_ENOSPC;
    }
    for (size_t j = 0; j < n; j++) {
        uint32_t i = items[j];
        if (i >= it->n_items) {
            return FR_EINVAL;
        }
        const float *q = it->Q + (size_t)i * k;
        float e = ratings[j] - fri_mf_predict_with(it, p, bu, i);
        float *g = grad_out + j * d;
        for (uint32_t f = 0; f < k; f++) {
            g[f] = -e * p[f] + reg * q[f];
        }
        g[k] = -e + reg_bias * it->bi[i];
    }
    return FR_OK;
}

fr_err
fri_mf_user_sgd(float *p, float *bu, float *q_local, float *b_local,
                const fri_mf_items *it, const uint32_t *items,
                const float *ratings, size_t n, float lr, float reg,
                float reg_bias, fri_rng *rng)
{
    if (p == NULL || bu == NULL || !items_valid(it) ||
        (n > 0 && (items == NULL || ratings == NULL)) ||
        ((q_local == NULL) != (b_local == NULL)) || !(lr > 0.0f)) {
        return FR_EINVAL;
    }
    if (n > UINT32_MAX) {
        return FR_ETOOBIG;
    }
    const uint32_t k = it->k;
    for (size_t j = 0; j < n; j++) {
        if (items[j] >= it->n_items) {
            return FR_EINVAL;
        }
    }
    uint32_t *order = NULL;
    if (rng != NULL && n > 1) {
        order = malloc(n * sizeof(uint32_t));
        if (order == NULL) {
            return FR_ENOMEM;
        }
        for (size_t j = 0; j < n; j++) {
            order[j] = (uint32_t)j;
        }
        fri_rng_shuffle_u32(rng, order, n);
    }
    for (size_t t = 0; t < n; t++) {
        size_t j = order != NULL ? order[t] : t;
        uint32_t i = items[j];
        float *q = q_local != NULL ? q_local + j * k
                                   : (float *)(it->Q + (size_t)i * k);
        float bi = b_local != NULL ? b_local[j] : it->bi[i];
        float e = ratings[j] - (it->mu + *bu + bi + fri_mf_dot(p, q, k));
        *bu += lr * (e - reg_bias * *bu);
        if (q_local != NULL) {
            b_local[j] += lr * (e - reg_bias * bi);
            for (uint32_t f = 0; f < k; f++) {
                float pf = p[f], qf = q[f];
                p[f] += lr * (e * qf - reg * pf);
                q[f] += lr * (e * pf - reg * qf);
            }
        } else {
            for (uint32_t f = 0; f < k; f++) {
                p[f] += lr * (e * q[f] - reg * p[f]);
            }
        }
    }
    free(order);
    return FR_OK;
}

// ---- implicit ALS --------------------------------------------------------

fr_err
fri_mf_gram(float *gram_out, size_t gram_len, const float *X, size_t n_rows,
            uint32_t k)
{
    if (gram_out == NULL || (X == NULL && n_rows > 0) || k == 0 ||
        k > FRI_MF_MAX_K) {
        return FR_EINVAL;
    }
    if (gram_len < fri_packed_len(k)) {
        return FR_ENOSPC;
    }
#ifdef FR_WITH_BLAS
    if (n_rows > 0 && n_rows <= INT32_MAX) {
        float *C = malloc((size_t)k * k * sizeof(float));
        if (C == NULL) {
            return FR_ENOMEM;
        }
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)k,
                    (int)n_rows, 1.0f, X, (int)k, 0.0f, C, (int)k);
        size_t t = 0;
        for (size_t a = 0; a < k; a++) {
            for (size_t c = a; c < k; c++) {
                gram_out[t++] = C[a * k + c];
            }
        }
        free(C);
        return FR_OK;
    }
#endif
    memset(gram_out, 0, fri_packed_len(k) * sizeof(float));
    for (size_t r = 0; r < n_rows; r++) {
        const float *x = X + r * k;
        size_t t = 0;
        for (size_t a = 0; a < k; a++) {
            for (size_t c = a; c < k; c++) {
                gram_out[t++] += x[a] * x[c];
            }
        }
    }
    return FR_OK;
}

fr_err
fri_mf_implicit_user_solve(float *p_out, const fri_mf_items *it,
                           const float *qtq_packed, const uint32_t *items,
                           const float *values, size_t n, float alpha,
                           float reg, float *work, size_t work_len)
{
    if (p_out == NULL || !items_valid(it) || qtq_packed == NULL ||
        (n > 0 && (items == NULL || values == NULL)) || !(alpha >= 0.0f) ||
        !(reg > 0.0f)) {
        return FR_EINVAL;
    }
    const size_t k = it->k;
    for (size_t j = 0; j < n; j++) {
        if (items[j] >= it->n_items || !isfinite(values[j])) {
            return FR_EINVAL;
        }
    }
    float *w, *owned;
    fr_err e =
        fri_work_get(&w, &owned, work, work_len, fri_mf_work_len(it->k));
    if (e != FR_OK) {
        return e;
    }
    float *A = w;
    float *b = w + k * k;
    fri_packed_unpack(A, qtq_packed, k);
    memset(b, 0, k * sizeof(float));
    for (size_t j = 0; j < n; j++) {
        const float *q = it->Q + (size_t)items[j] * k;
        float cm1 = alpha * values[j]; // c - 1
        float c = 1.0f + cm1;
        for (size_t a = 0; a < k; a++) {
            float wa = cm1 * q[a];
            float *row = A + a * k;
            for (size_t cc = a; cc < k; cc++) {
                row[cc] += wa * q[cc];
            }
            b[a] += c * q[a];
        }
    }
    for (size_t a = 0; a < k; a++) {
        A[a * k + a] += reg;
    }
    e = fri_chol_solve(A, b, k);
    if (e == FR_OK) {
        memcpy(p_out, b, k * sizeof(float));
    }
    free(owned);
    return e;
}

fr_err
fri_mf_implicit_user_item_stats(float *gram_out, size_t gram_len,
                                float *rows_out, size_t rows_len,
                                const float *p, uint32_t k,
                                const float *values, size_t n, float alpha)
{
    if (gram_out == NULL || p == NULL || k == 0 || k > FRI_MF_MAX_K ||
        (n > 0 && (rows_out == NULL || values == NULL)) ||
        !(alpha >= 0.0f)) {
        return FR_EINVAL;
    }
    const size_t d = (size_t)k + 1;
    if (gram_len < fri_packed_len(k) || (n > 0 && rows_len / d < n)) {
        return FR_ENOSPC;
    }
    size_t t = 0;
    for (size_t a = 0; a < k; a++) {
        for (size_t c = a; c < k; c++) {
            gram_out[t++] = p[a] * p[c];
        }
    }
    for (size_t j = 0; j < n; j++) {
        float cm1 = alpha * values[j];
        float *row = rows_out + j * d;
        row[0] = cm1;
        for (size_t a = 0; a < k; a++) {
            row[1 + a] = (1.0f + cm1) * p[a];
        }
    }
    return FR_OK;
}

fr_err
fri_mf_implicit_item_solve(float *q_out, const float *gram_all_packed,
                           const float *gram_w_packed, const float *h_sum,
                           uint32_t k, float reg, float *work,
                           size_t work_len)
{
    if (q_out == NULL || gram_all_packed == NULL || gram_w_packed == NULL ||
        h_sum == NULL || k == 0 || k > FRI_MF_MAX_K || !(reg > 0.0f)) {
        return FR_EINVAL;
    }
    float *w, *owned;
    fr_err e = fri_work_get(&w, &owned, work, work_len, fri_mf_work_len(k));
    if (e != FR_OK) {
        return e;
    }
    float *A = w;
    float *b = w + (size_t)k * k;
    size_t t = 0;
    for (size_t a = 0; a < k; a++) {
        for (size_t c = a; c < k; c++, t++) {
            A[a * k + c] = gram_all_packed[t] + gram_w_packed[t];
        }
        A[a * k + a] += reg;
    }
    memcpy(b, h_sum, k * sizeof(float));
    e = fri_chol_solve(A, b, k);
    if (e == FR_OK) {
        memcpy(q_out, b, k * sizeof(float));
    }
    free(owned);
    return e;
}

// ---- trainers ------------------------------------------------------------

void
fri_train_config_init(fri_train_config *c, fri_train_algo algo)
{
    memset(c, 0, sizeof(*c));
    // Tuned on validation slices of MovieLens 100K (docs/TUNING.md).
    if (algo == FRI_TRAIN_SGD) {
        c->k = 50;
        c->epochs = 80;
        c->reg = 0.1f;
        c->reg_bias = 0.01f;
    } else {
        c->k = 10;
        c->epochs = 15;
        c->reg = 13.0f;
        c->reg_bias = 3.0f;
        c->bias_epochs = 5;
    }
    c->lr = 0.01f;
    c->lr_decay = 0.02f;
    c->weighted = 0;
    c->init_std = 0.1f;
    c->implicit = 0;
    c->alpha = 10.0f;
    c->clamp_lo = 1.0f;
    c->clamp_hi = 5.0f;
    c->patience = 0;
    c->seed = 42;
}

void
fri_train_config_init_implicit(fri_train_config *c)
{
    fri_train_config_init(c, FRI_TRAIN_ALS);
    // iALS, tuned on a validation slice of u1.base (docs/TUNING.md).
    c->implicit    = 1;
    c->k           = 32;
    c->epochs      = 10;
    c->reg         = 50.0f;
    c->alpha       = 5.0f;
    c->init_std    = 0.1f;
    c->bias_epochs = 0;
    // What the devices do (client/recommend.c); chosen on next-item
    // validation (docs/BENCHMARKS.md, "Recency").
    c->recency = FRI_RECENCY_DEFAULT;
}

static int
config_valid(const fri_train_config *c)
{
    return c != NULL && c->k > 0 && c->k <= FRI_MF_MAX_K && c->epochs > 0 &&
           c->reg >= 0.0f && c->reg_bias >= 0.0f && c->init_std >= 0.0f &&
           isfinite(c->reg) && isfinite(c->reg_bias);
}

static int
csr_valid(const fri_csr *t)
{
    return t != NULL && t->n_rows > 0 && t->n_cols > 0 && t->ptr != NULL &&
           (t->ptr[t->n_rows] == 0 || (t->idx != NULL && t->val != NULL));
}

static float
mean_rating(const fri_csr *t)
{
    size_t nnz = t->ptr[t->n_rows];
    double s = 0.0;
    for (size_t j = 0; j < nnz; j++) {
        s += t->val[j];
    }
    return nnz > 0 ? (float)(s / (double)nnz) : 0.0f;
}

static double
val_rmse(const fri_mf_model *m, const fri_dataset *val, float lo, float hi)
{
    double se = 0.0;
    size_t cnt = 0;
    for (size_t j = 0; j < val->n; j++) {
        const fri_triplet *t = &val->r[j];
        float pr = m->mu;
        if (t->user < m->n_users) {
            pr += m->bu[t->user];
        }
        if (t->item < m->n_items) {
            pr += m->bi[t->item];
        }
        if (t->user < m->n_users && t->item < m->n_items) {
            pr = fri_mf_predict(m, t->user, t->item);
        }
        if (lo < hi) {
            pr = pr < lo ? lo : (pr > hi ? hi : pr);
        }
        double e = (double)t->rating - pr;
        se += e * e;
        cnt++;
    }
    return cnt > 0 ? sqrt(se / (double)cnt) : 0.0;
}

// Early-stopping bookkeeping shared by the explicit trainers.
typedef struct stopper {
    const fri_dataset *val;
    const fri_train_config *c;
    fri_mf_model *best;
    double best_rmse;
    uint32_t bad;
} stopper;

static fr_err
stopper_init(stopper *s, const fri_mf_model *m, const fri_dataset *val,
             const fri_train_config *c)
{
    memset(s, 0, sizeof(*s));
    s->c = c;
    s->best_rmse = INFINITY;
    if (val == NULL || c->patience == 0 || val->n == 0) {
        return FR_OK;
    }
    s->val = val;
    return fri_mf_create(&s->best, m->n_users, m->n_items, m->k);
}

// Returns 1 when training should stop.
static int
stopper_step(stopper *s, const fri_mf_model *m)
{
    if (s->best == NULL) {
        return 0;
    }
    double r = val_rmse(m, s->val, s->c->clamp_lo, s->c->clamp_hi);
    if (r < s->best_rmse) {
        s->best_rmse = r;
        s->bad = 0;
        // Same shapes by construction, so the copy cannot fail.
        fr_err ce = fri_mf_copy(s->best, m);
        (void)ce;
        return 0;
    }
    return ++s->bad >= s->c->patience;
}

static void
stopper_finish(stopper *s, fri_mf_model *m)
{
    if (s->best != NULL && isfinite(s->best_rmse)) {
        fr_err ce = fri_mf_copy(m, s->best);
        (void)ce;
    }
    fri_mf_destroy(s->best);
    s->best = NULL;
}

// Bias-only alternating sweeps: b_u, then b_i, ridge with the same scaling.
static void
bias_sweep(fri_mf_model *m, const fri_csr *t, const fri_train_config *c,
           double *item_sum, double *item_cnt)
{
    for (uint32_t u = 0; u < t->n_rows; u++) {
        size_t a = t->ptr[u], z = t->ptr[u + 1];
        double s = 0.0;
        for (size_t j = a; j < z; j++) {
            s += t->val[j] - m->mu - m->bi[t->idx[j]];
        }
        double n = (double)(z - a);
        double lam = c->reg_bias * reg_scale(c->weighted, n);
        m->bu[u] = n > 0 ? (float)(s / (n + lam)) : 0.0f;
    }
    memset(item_sum, 0, m->n_items * sizeof(double));
    memset(item_cnt, 0, m->n_items * sizeof(double));
    for (uint32_t u = 0; u < t->n_rows; u++) {
        for (size_t j = t->ptr[u]; j < t->ptr[u + 1]; j++) {
            item_sum[t->idx[j]] += t->val[j] - m->mu - m->bu[u];
            item_cnt[t->idx[j]] += 1.0;
        }
    }
    for (uint32_t i = 0; i < m->n_items; i++) {
        double n = item_cnt[i];
        double lam = c->reg_bias * reg_scale(c->weighted, n);
        m->bi[i] = n > 0 ? (float)(item_sum[i] / (n + lam)) : 0.0f;
    }
}

fr_err
fri_train_als(fri_mf_model **out, const fri_csr *train,
              const fri_dataset *val, const fri_train_config *c,
              fri_train_epoch_fn cb, void *ctx)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    *out = NULL;
    if (!config_valid(c) || !csr_valid(train)) {
        return FR_EINVAL;
    }
    const uint32_t k = c->k;
    const size_t d = (size_t)k + 1;
    const size_t plen = fri_packed_len(d);
    const uint32_t n_users = train->n_rows, n_items = train->n_cols;
    fri_mf_acc_sizes sz;
    fr_err e = fri_mf_acc_sizes_of(&sz, train, plen, d, d);
    if (e != FR_OK) {
        return e;
    }
    const size_t gsz = sz.gram, hsz = sz.rhs, max_n = sz.rows;
    fri_mf_model *m = NULL;
    e = fri_mf_create(&m, n_users, n_items, k);
    if (e != FR_OK) {
        return e;
    }
    fri_mf_init(m, mean_rating(train), c->init_std, c->seed);
    const size_t wlen = fri_mf_work_len(k);
    float *work = malloc(wlen * sizeof(float));
    float *gram_acc = malloc(gsz * sizeof(float));
    float *h_acc = malloc(hsz * sizeof(float));
    float *gram_u = malloc(plen * sizeof(float));
    float *h_u = malloc((max_n > 0 ? max_n : 1) * sizeof(float));
    double *isum = malloc(n_items * sizeof(double));
    double *icnt = malloc(n_items * sizeof(double));
    stopper st;
    e = stopper_init(&st, m, val, c);
    if (work == NULL || gram_acc == NULL || h_acc == NULL || gram_u == NULL ||
        h_u == NULL || isum == NULL || icnt == NULL) {
        e = FR_ENOMEM;
    }
    if (e == FR_OK) {
        for (uint32_t t = 0; t < c->bias_epochs; t++) {
            bias_sweep(m, train, c, isum, icnt);
        }
    }
    for (uint32_t ep = 1; e == FR_OK && ep <= c->epochs; ep++) {
        fri_mf_items it = fri_mf_items_of(m);
        for (uint32_t u = 0; u < n_users && e == FR_OK; u++) {
            size_t a = train->ptr[u], n = train->ptr[u + 1] - a;
            e = fri_mf_user_solve(m->P + (size_t)u * k, &m->bu[u], &it,
                                  train->idx + a, train->val + a, n, c->reg,
                                  c->reg_bias, c->weighted, work, wlen);
        }
        // Item side from the per-user statistics, summed in user order.
        memset(gram_acc, 0, gsz * sizeof(float));
        memset(h_acc, 0, hsz * sizeof(float));
        for (uint32_t u = 0; u < n_users && e == FR_OK; u++) {
            size_t a = train->ptr[u], n = train->ptr[u + 1] - a;
            if (n == 0) {
                continue;
            }
            e = fri_mf_user_item_stats(gram_u, plen, h_u, max_n,
                                       m->P + (size_t)u * k, m->bu[u], k,
                                       m->mu, train->val + a, n);
            if (e == FR_OK) {
                fri_mf_item_stats_add(gram_acc, h_acc, train->idx + a, n,
                                      gram_u, plen, h_u, d);
            }
        }
        for (uint32_t i = 0; i < n_items && e == FR_OK; i++) {
            e = fri_mf_item_solve(m->Q + (size_t)i * k, &m->bi[i],
                                  gram_acc + (size_t)i * plen,
                                  h_acc + (size_t)i * d, k, c->reg,
                                  c->reg_bias, c->weighted, work, wlen);
        }
        if (e != FR_OK) {
            break;
        }
        int stop = stopper_step(&st, m);
        if (cb != NULL && cb(ctx, ep, m) != 0) {
            stop = 1;
        }
        if (stop) {
            break;
        }
    }
    stopper_finish(&st, m);
    free(work);
    free(gram_acc);
    free(h_acc);
    free(gram_u);
    free(h_u);
    free(isum);
    free(icnt);
    if (e != FR_OK) {
        fri_mf_destroy(m);
        return e;
    }
    *out = m;
    return FR_OK;
}

fr_err
fri_train_sgd(fri_mf_model **out, const fri_csr *train,
              const fri_dataset *val, const fri_train_config *c,
              fri_train_epoch_fn cb, void *ctx)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    *out = NULL;
    if (!config_valid(c) || !csr_valid(train) || !(c->lr > 0.0f) ||
        !(c->lr_decay >= 0.0f)) {
        return FR_EINVAL;
    }
    const size_t nnz = train->ptr[train->n_rows];
    if (nnz > UINT32_MAX) {
        return FR_ETOOBIG;
    }
    const uint32_t k = c->k;
    fri_mf_model *m = NULL;
    fr_err e = fri_mf_create(&m, train->n_rows, train->n_cols, k);
    if (e != FR_OK) {
        return e;
    }
    fri_mf_init(m, mean_rating(train), c->init_std, c->seed);
    uint32_t *order = malloc((nnz > 0 ? nnz : 1) * sizeof(uint32_t));
    uint32_t *row_of = malloc((nnz > 0 ? nnz : 1) * sizeof(uint32_t));
    stopper st;
    e = stopper_init(&st, m, val, c);
    if (order == NULL || row_of == NULL) {
        e = FR_ENOMEM;
    }
    if (e == FR_OK) {
        for (uint32_t u = 0; u < train->n_rows; u++) {
            for (size_t j = train->ptr[u]; j < train->ptr[u + 1]; j++) {
                row_of[j] = u;
            }
        }
        for (size_t j = 0; j < nnz; j++) {
            order[j] = (uint32_t)j;
        }
    }
    fri_rng rng;
    fri_rng_seed2(&rng, c->seed, 3);
    for (uint32_t ep = 1; e == FR_OK && ep <= c->epochs; ep++) {
        float lr = c->lr / (1.0f + c->lr_decay * (float)(ep - 1));
        fri_rng_shuffle_u32(&rng, order, nnz);
        for (size_t t = 0; t < nnz; t++) {
            uint32_t j = order[t];
            uint32_t u = row_of[j], i = train->idx[j];
            float *p = m->P + (size_t)u * k;
            float *q = m->Q + (size_t)i * k;
            float err = train->val[j] -
                        (m->mu + m->bu[u] + m->bi[i] + fri_mf_dot(p, q, k));
            m->bu[u] += lr * (err - c->reg_bias * m->bu[u]);
            m->bi[i] += lr * (err - c->reg_bias * m->bi[i]);
            for (uint32_t f = 0; f < k; f++) {
                float pf = p[f], qf = q[f];
                p[f] += lr * (err * qf - c->reg * pf);
                q[f] += lr * (err * pf - c->reg * qf);
            }
        }
        int stop = stopper_step(&st, m);
        if (cb != NULL && cb(ctx, ep, m) != 0) {
            stop = 1;
        }
        if (stop) {
            break;
        }
    }
    stopper_finish(&st, m);
    free(order);
    free(row_of);
    if (e != FR_OK) {
        fri_mf_destroy(m);
        return e;
    }
    *out = m;
    return FR_OK;
}

fr_err
fri_train_ials(fri_mf_model **out, const fri_csr *train,
               const fri_train_config *c, fri_train_epoch_fn cb, void *ctx)
{
    if (out == NULL) {
        return FR_EINVAL;
    }
    *out = NULL;
    if (!config_valid(c) || !csr_valid(train) || !(c->reg > 0.0f) ||
        !(c->alpha >= 0.0f)) {
        return FR_EINVAL;
    }
    const uint32_t k = c->k;
    const size_t d = (size_t)k + 1;
    const size_t plen = fri_packed_len(k);
    const uint32_t n_users = train->n_rows, n_items = train->n_cols;
    fri_mf_acc_sizes sz;
    fr_err e = fri_mf_acc_sizes_of(&sz, train, plen, k, d);
    if (e != FR_OK) {
        return e;
    }
    const size_t gsz = sz.gram, hsz = sz.rhs, max_n = sz.rows;
    fri_mf_model *m = NULL;
    e = fri_mf_create(&m, n_users, n_items, k);
    if (e != FR_OK) {
        return e;
    }
    fri_mf_init(m, 0.0f, c->init_std, c->seed);
    const size_t wlen = fri_mf_work_len(k);
    float *work = malloc(wlen * sizeof(float));
    float *qtq = malloc(plen * sizeof(float));
    float *gram_all = malloc(plen * sizeof(float));
    float *gw_acc = malloc(gsz * sizeof(float));
    float *h_acc = malloc(hsz * sizeof(float));
    float *gram_u = malloc(plen * sizeof(float));
    float *rows = malloc((max_n > 0 ? max_n : 1) * sizeof(float));
    // Recency (user side only, as on the devices): weighed strengths.
    const int rec = c->recency > 0.0f && train->ts != NULL;
    float *wv = malloc((rec && max_n > 0 ? max_n : 1) * sizeof(float));
    int64_t *scr = malloc((rec && max_n > 0 ? max_n : 1) * sizeof(int64_t));
    if (work == NULL || qtq == NULL || gram_all == NULL || gw_acc == NULL ||
        h_acc == NULL || gram_u == NULL || rows == NULL || wv == NULL ||
        scr == NULL) {
        e = FR_ENOMEM;
    }
    for (uint32_t ep = 1; e == FR_OK && ep <= c->epochs; ep++) {
        fri_mf_items it = fri_mf_items_of(m);
        e = fri_mf_gram(qtq, plen, m->Q, n_items, k);
        for (uint32_t u = 0; u < n_users && e == FR_OK; u++) {
            size_t a = train->ptr[u], n = train->ptr[u + 1] - a;
            const float *v = train->val + a;
            if (rec) {
                e = fri_recency_weigh(wv, v, train->ts + a, n, c->recency,
                                      scr);
                v = wv;
            }
            if (e == FR_OK) {
                e = fri_mf_implicit_user_solve(m->P + (size_t)u * k, &it,
                                               qtq, train->idx + a, v, n,
                                               c->alpha, c->reg, work, wlen);
            }
        }
        memset(gram_all, 0, plen * sizeof(float));
        memset(gw_acc, 0, gsz * sizeof(float));
        memset(h_acc, 0, hsz * sizeof(float));
        for (uint32_t u = 0; u < n_users && e == FR_OK; u++) {
            size_t a = train->ptr[u], n = train->ptr[u + 1] - a;
            e = fri_mf_implicit_user_item_stats(gram_u, plen, rows, max_n,
                                                m->P + (size_t)u * k, k,
                                                train->val + a, n, c->alpha);
            for (size_t t = 0; t < plen && e == FR_OK; t++) {
                gram_all[t] += gram_u[t];
            }
            for (size_t j = 0; j < n && e == FR_OK; j++) {
                uint32_t i = train->idx[a + j];
                const float *row = rows + j * d;
                float *g = gw_acc + (size_t)i * plen;
                for (size_t t = 0; t < plen; t++) {
                    g[t] += row[0] * gram_u[t];
                }
                float *h = h_acc + (size_t)i * k;
                for (size_t t = 0; t < k; t++) {
                    h[t] += row[1 + t];
                }
            }
        }
        for (uint32_t i = 0; i < n_items && e == FR_OK; i++) {
            e = fri_mf_implicit_item_solve(m->Q + (size_t)i * k, gram_all,
                                           gw_acc + (size_t)i * plen,
                                           h_acc + (size_t)i * k, k, c->reg,
                                           work, wlen);
        }
        if (e == FR_OK && cb != NULL && cb(ctx, ep, m) != 0) {
            break;
        }
    }
    free(work);
    free(qtq);
    free(gram_all);
    free(gw_acc);
    free(h_acc);
    free(gram_u);
    free(rows);
    free(wv);
    free(scr);
    if (e != FR_OK) {
        fri_mf_destroy(m);
        return e;
    }
    *out = m;
    return FR_OK;
}
