// The sums an edge hands to the root and what the root checks of them
// (docs/DEPLOY-TREE.md, "Bounds on an edge's sums").
#include "agg_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "edge_sums.h"
#include "linalg.h"
#include "vbmf.h"
#include "sorted.h"

void
fri_agg_sums_free(fri_agg_sums *s)
{
    if (s != NULL) {
        free(s->items);
        free(s->rows);
        free(s->glob);
        memset(s, 0, sizeof(*s));
    }
}

void
fri_agg_sums_shape(const fri_agg *a, uint32_t *width, uint32_t *n_glob)
{
    *width  = (uint32_t)a->acc_len;
    *n_glob = a->cfg.implicit ? (uint32_t)a->gram_len
        : a->vb != NULL       ? (uint32_t)fri_vb_glob_len(a->cfg.k)
                              : 0;
}

fr_err
fri_edge_sums_take(
    fri_agg *a, uint64_t round, uint32_t n_devices, fri_agg_sums *out)
{
    memset(out, 0, sizeof(*out));
    fri_agg_sums_shape(a, &out->width, &out->n_glob);
    out->round     = round;
    out->n_devices = n_devices;
    fr_err rv      = FR_OK;
    pthread_mutex_lock(&a->sums.acc_mtx);
    uint32_t n = a->sums.n_touched;
    if (n_devices == 0) {
        rv = FR_ESTATE;
        goto out;
    }
    out->n_rows = n;
    out->items  = malloc(((size_t)n + 1) * sizeof(uint32_t));
    out->rows   = malloc(((size_t)n * out->width + 1) * sizeof(double));
    out->glob = out->n_glob > 0 ? malloc(out->n_glob * sizeof(double)) : NULL;
    if (out->items == NULL || out->rows == NULL
        || (out->n_glob > 0 && out->glob == NULL)) {
        rv = FR_ENOMEM;
        goto out;
    }
    memcpy(out->items, a->sums.touched, (size_t)n * sizeof(uint32_t));
    qsort(out->items, n, sizeof(uint32_t), fri_cmp_u32);
    for (uint32_t j = 0; j < n; j++) {
        memcpy(out->rows + (size_t)j * out->width, a->sums.acc[out->items[j]],
            out->width * sizeof(double));
    }
    if (a->cfg.implicit) {
        memcpy(out->glob, a->sums.gram_all, out->n_glob * sizeof(double));
    } else if (a->vb != NULL) {
        fri_vb_acc_get(a->vb, out->glob);
    }
    out->sum_ratings = a->sums.sum_ratings;
    out->count       = a->sums.count;
    out->weight      = a->sums.weight;
out:
    pthread_mutex_unlock(&a->sums.acc_mtx);
    if (rv != FR_OK) {
        fri_agg_sums_free(out);
    }
    return rv;
}

// x <= lim with a relative tolerance for summation order (1e-4, as the
// per-device bounds) and an absolute one for values near zero.
static int
le(double x, double lim)
{
    return x <= lim + 1e-4 * fabs(lim) + 1e-6;
}

// Slack per claimed device, in units of one device's bound: sums an edge
// unmasked under secure aggregation carry fixed-point rounding (at most
// 2^-(f+1) of a device's scale per member, f >= 16), which the exact
// structure checks below would otherwise refuse (a Gram diagonal of an
// unrated coordinate a hair below 0). It lets an edge add 1e-5 of a
// device per device it claims, nothing measurable.
#define SLACK 1e-5

// Explicit ALS and VBMF rows [packed Gram over d | h (d)]: every Gram
// diagonal >= 0, the bias entry (the item's raters, each weighing at
// most 1) in [0, m], the factor block's trace <= m U^2, and by
// Cauchy-Schwarz over the raters |h_a| <= R sqrt(c G_aa).
static const char *
check_stats_row(const fri_agg *a, const double *row, double m, double *raters)
{
    const uint32_t d = a->d, k = a->cfg.k;
    const double   U  = a->cfg.max_user_norm;
    const double   R  = a->cfg.max_residual > 0.0f
           ? a->cfg.max_residual
           : 3.0 * (a->cfg.rating_max - a->cfg.rating_min);
    const double  *h  = row + a->gram_len;
    const double   sl = m * SLACK;
    double         tr = 0.0;
    for (uint32_t r = 0; r < d; r++) {
        double sc = r < k ? U * U : 1.0;
        if (!le(-sl * sc, row[fri_packed_index(d, r, r)])) {
            return "negative gram diagonal";
        }
        if (r < k) {
            tr += row[fri_packed_index(d, r, r)];
        }
    }
    double c = row[fri_packed_index(d, k, k)];
    if (!le(c, m + sl)) {
        return "item rater count above the devices";
    }
    if (!le(tr, (m + sl) * U * U)) {
        return "user vectors above the user-norm bound";
    }
    for (uint32_t r = 0; r < d; r++) {
        double g  = row[fri_packed_index(d, r, r)];
        double sc = r < k ? U : 1.0;
        if (!le(fabs(h[r]),
                R * sqrt(fmax(c, 0.0) * fmax(g, 0.0)) + sl * sc * R)) {
            return "item row above the residual bound";
        }
    }
    *raters += c;
    return NULL;
}

static const char *
check_rows(const fri_agg *a, const fri_agg_sums *s, double m, double maxr)
{
    const uint32_t k      = a->cfg.k;
    const double   U      = a->cfg.max_user_norm;
    double         raters = 0.0, g2 = 0.0;
    for (uint32_t j = 0; j < s->n_rows; j++) {
        const double *row = s->rows + (size_t)j * s->width;
        if (a->cfg.algo == FRI_AGG_GRAD) {
            for (uint32_t r = 0; r < s->width; r++) {
                g2 += row[r] * row[r];
            }
        } else if (a->cfg.implicit) {
            // [sum (c - 1) p p^T (packed k) | sum c p]: weights c - 1 >= 0.
            for (uint32_t r = 0; r < k; r++) {
                if (!le(-m * SLACK * U * U, row[fri_packed_index(k, r, r)])) {
                    return "negative gram diagonal";
                }
            }
        } else {
            const char *why = check_stats_row(a, row, m, &raters);
            if (why != NULL) {
                return why;
            }
        }
    }
    if (!le(raters, m * maxr + m * SLACK * s->n_rows)) {
        return "item rater counts above the devices' rows";
    }
    if (a->cfg.algo == FRI_AGG_GRAD) {
        // One device's rows: C / sqrt(2) with a clip (the server clips),
        // else each of its <= maxr rows within the per-row bound.
        const double R   = a->cfg.max_residual > 0.0f
              ? a->cfg.max_residual
              : 3.0 * (a->cfg.rating_max - a->cfg.rating_min);
        double       one = a->cfg.clip > 0.0f ? a->cfg.clip / sqrt(2.0)
                                              : sqrt(maxr)
                * (R * sqrt(1.0 + U * U)
                    + fmax(a->cfg.reg, a->cfg.reg_bias)
                        * a->cfg.max_item_norm);
        if (!le(sqrt(g2), m * one)) {
            return "gradient rows above the devices' bound";
        }
    }
    return NULL;
}

static const char *
check_glob(const fri_agg *a, const fri_agg_sums *s, double m)
{
    const double U = a->cfg.max_user_norm;
    if (a->cfg.implicit) {
        double tr = 0.0;
        for (uint32_t r = 0; r < a->cfg.k; r++) {
            double g = s->glob[fri_packed_index(a->cfg.k, r, r)];
            if (!le(0.0, g)) {
                return "negative global gram diagonal";
            }
            tr += g;
        }
        return le(tr, m * U * U) ? NULL : "global gram above the user norms";
    }
    if (a->vb != NULL) {
        // [E[u] (d) | E[u u^T] packed (P) | squared residuals | users]
        const uint32_t d = a->d;
        const size_t   P = fri_packed_len(d);
        for (uint32_t r = 0; r < d; r++) {
            if (!le(0.0, s->glob[d + fri_packed_index(d, r, r)])) {
                return "negative second moment";
            }
        }
        double sq = s->glob[d + P], users = s->glob[d + P + 1];
        if (!le(0.0, sq) || !le(0.0, users) || !le(users, m)) {
            return "global block outside the devices' bounds";
        }
    }
    return NULL;
}

fr_err
fri_edge_sums_check(const fri_agg *a, const fri_agg_sums *s, const char **why)
{
    uint32_t width, n_glob;
    fri_agg_sums_shape(a, &width, &n_glob);
    *why = "shape";
    if (s == NULL || s->width != width || s->n_glob != n_glob
        || s->n_rows > a->cfg.n_items || (s->n_rows > 0 && s->items == NULL)
        || (s->n_rows > 0 && s->rows == NULL)
        || (n_glob > 0 && s->glob == NULL)) {
        return FR_EPROTO;
    }
    if (s->n_devices == 0) {
        *why = "no devices";
        return FR_EPROTO;
    }
    if (s->n_devices > a->cfg.root_max_devices) {
        *why = "more devices than an edge may sum";
        return FR_ETOOBIG;
    }
    *why = "items not increasing or out of range";
    for (uint32_t j = 0; j < s->n_rows; j++) {
        if (s->items[j] >= a->cfg.n_items
            || (j > 0 && s->items[j] <= s->items[j - 1])) {
            return FR_EPROTO;
        }
    }
    *why = "non-finite value";
    for (size_t t = 0; t < (size_t)s->n_rows * width; t++) {
        if (!isfinite(s->rows[t])) {
            return FR_EPROTO;
        }
    }
    for (uint32_t t = 0; t < n_glob; t++) {
        if (!isfinite(s->glob[t])) {
            return FR_EPROTO;
        }
    }
    if (!isfinite(s->sum_ratings) || !isfinite(s->count)
        || !isfinite(s->weight)) {
        return FR_EPROTO;
    }
    const double m = s->n_devices;
    const double maxr
        = a->cfg.max_ratings > 0 ? a->cfg.max_ratings : a->cfg.n_items;
    const double span = a->cfg.rating_max - a->cfg.rating_min;
    *why              = "counts outside the devices' bounds";
    const double sl   = m * SLACK * maxr;
    if (!le(-sl, s->count) || !le(s->count, m * maxr + sl)
        || !le(-sl, s->weight) || !le(s->weight, m * maxr + sl)) {
        return FR_EPROTO;
    }
    double lo = a->cfg.implicit ? 0.0 : s->count * (a->cfg.rating_min - span);
    double hi = s->count
        * (a->cfg.implicit ? a->cfg.rating_max : a->cfg.rating_max + span);
    *why = "rating sum outside the count's range";
    if (!le(lo, s->sum_ratings) || !le(s->sum_ratings, hi)) {
        return FR_EPROTO;
    }
    const char *w = check_rows(a, s, m, maxr);
    if (w == NULL && n_glob > 0) {
        w = check_glob(a, s, m);
    }
    if (w != NULL) {
        *why = w;
        return FR_EPROTO;
    }
    *why = NULL;
    return FR_OK;
}

fr_err
fri_edge_sums_add(fri_agg *a, const fri_agg_sums *s)
{
    pthread_mutex_lock(&a->sums.acc_mtx);
    for (uint32_t j = 0; j < s->n_rows; j++) {
        uint32_t i = s->items[j];
        if (a->sums.acc[i] == NULL) {
            a->sums.acc[i] = calloc(a->acc_len, sizeof(double));
            if (a->sums.acc[i] == NULL) {
                pthread_mutex_unlock(&a->sums.acc_mtx);
                return FR_ENOMEM;
            }
            a->sums.touched[a->sums.n_touched++] = i;
        }
    }
    for (uint32_t j = 0; j < s->n_rows; j++) {
        double       *acc = a->sums.acc[s->items[j]];
        const double *row = s->rows + (size_t)j * s->width;
        for (uint32_t r = 0; r < s->width; r++) {
            acc[r] += row[r];
        }
    }
    if (a->cfg.implicit) {
        for (uint32_t t = 0; t < s->n_glob; t++) {
            a->sums.gram_all[t] += s->glob[t];
        }
    } else if (a->vb != NULL) {
        fri_vb_acc_add_d(a->vb, s->glob);
    }
    a->sums.sum_ratings += s->sum_ratings;
    a->sums.count += s->count;
    a->sums.weight += s->weight;
    pthread_mutex_unlock(&a->sums.acc_mtx);
    return FR_OK;
}
