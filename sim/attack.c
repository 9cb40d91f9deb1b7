// Aggregator-side attacks on single client updates; see attack.h and
// docs/PRIVACY.md.
#include "attack.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"

// ---------------------------------------------------------------- AUC

typedef struct scored {
    float   s;
    uint8_t pos;
} scored;

static int
cmp_scored(const void *a, const void *b)
{
    float x = ((const scored *)a)->s, y = ((const scored *)b)->s;
    return x < y ? -1 : (x > y);
}

// Sorted copy of (score, label) pairs; NULL on allocation failure.
static scored *
sorted_pairs(const float *scores, const uint8_t *labels, size_t n)
{
    if (n > SIZE_MAX / sizeof(scored)) {
        return NULL;
    }
    scored *v = malloc((n > 0 ? n : 1) * sizeof(scored));
    if (v == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        v[i].s = scores[i];
        v[i].pos = labels[i] != 0;
    }
    qsort(v, n, sizeof(scored), cmp_scored);
    return v;
}

// Rank-sum over an ascending array: tied blocks share their mean rank.
static fr_err
auc_sorted(double *auc_out, const scored *v, size_t n)
{
    double n_pos = 0.0, rank_sum = 0.0;
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        double pos_in_block = 0.0;
        while (j < n && v[j].s == v[i].s) {
            pos_in_block += v[j].pos;
            j++;
        }
        // 1-based ranks i+1 .. j, mean (i + 1 + j) / 2.
        rank_sum += pos_in_block * ((double)i + 1.0 + (double)j) / 2.0;
        n_pos += pos_in_block;
        i = j;
    }
    double n_neg = (double)n - n_pos;
    if (n_pos == 0.0 || n_neg == 0.0) {
        return FR_EINVAL;
    }
    *auc_out = (rank_sum - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg);
    return FR_OK;
}

fr_err
fri_atk_auc(double *auc_out, const float *scores, const uint8_t *labels,
            size_t n)
{
    if (auc_out == NULL || (n > 0 && (scores == NULL || labels == NULL))) {
        return FR_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (isnan(scores[i])) {
            return FR_EINVAL;
        }
    }
    scored *v = sorted_pairs(scores, labels, n);
    if (v == NULL) {
        return FR_ENOMEM;
    }
    fr_err e = auc_sorted(auc_out, v, n);
    free(v);
    return e;
}

// ------------------------------------------------------- (a) membership

static int
strictly_increasing(const uint32_t *v, size_t n, uint32_t bound)
{
    for (size_t j = 0; j < n; j++) {
        if (v[j] >= bound || (j > 0 && v[j] <= v[j - 1])) {
            return 0;
        }
    }
    return 1;
}

fr_err
fri_atk_score_rows(float *scores, uint32_t n_items, const uint32_t *items,
                   const float *rows, size_t n_rows, uint32_t width)
{
    if (scores == NULL || width == 0 ||
        (n_rows > 0 && (items == NULL || rows == NULL))) {
        return FR_EINVAL;
    }
    for (size_t r = 0; r < n_rows; r++) {
        if (items[r] >= n_items) {
            return FR_EINVAL;
        }
    }
    memset(scores, 0, (size_t)n_items * sizeof(float));
    for (size_t r = 0; r < n_rows; r++) {
        const float *row = rows + r * width;
        double ss = (double)scores[items[r]] * scores[items[r]];
        for (uint32_t a = 0; a < width; a++) {
            ss += (double)row[a] * row[a];
        }
        scores[items[r]] = (float)sqrt(ss);
    }
    return FR_OK;
}

fr_err
fri_atk_score_masked(float *scores, uint32_t n_items, const uint32_t *items,
                     const uint32_t *words, size_t n_rows, uint32_t width,
                     unsigned frac_bits)
{
    if (scores == NULL || width == 0 || frac_bits > 30 ||
        (n_rows > 0 && (items == NULL || words == NULL))) {
        return FR_EINVAL;
    }
    for (size_t r = 0; r < n_rows; r++) {
        if (items[r] >= n_items) {
            return FR_EINVAL;
        }
    }
    memset(scores, 0, (size_t)n_items * sizeof(float));
    const double scale = ldexp(1.0, -(int)frac_bits);
    for (size_t r = 0; r < n_rows; r++) {
        const uint32_t *row = words + r * width;
        double ss = (double)scores[items[r]] * scores[items[r]];
        for (uint32_t a = 0; a < width; a++) {
            // Two's complement read without implementation-defined casts.
            int64_t v = row[a] >= 0x80000000u ? (int64_t)row[a] - 0x100000000
                                               : (int64_t)row[a];
            double x = (double)v * scale;
            ss += x * x;
        }
        scores[items[r]] = (float)sqrt(ss);
    }
    return FR_OK;
}

fr_err
fri_atk_membership_eval(fri_atk_membership *out, const float *scores,
                        uint32_t n_items, const uint32_t *rated,
                        size_t n_rated, float flag_threshold)
{
    if (out == NULL || scores == NULL || rated == NULL || n_rated == 0 ||
        n_rated >= n_items || !strictly_increasing(rated, n_rated, n_items)) {
        return FR_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    uint8_t *lab = calloc(n_items, 1);
    if (lab == NULL) {
        return FR_ENOMEM;
    }
    for (size_t j = 0; j < n_rated; j++) {
        lab[rated[j]] = 1;
    }
    for (uint32_t i = 0; i < n_items; i++) {
        if (isnan(scores[i])) {
            free(lab);
            return FR_EINVAL;
        }
    }
    scored *v = sorted_pairs(scores, lab, n_items);
    if (v == NULL) {
        free(lab);
        return FR_ENOMEM;
    }
    fr_err e = auc_sorted(&out->auc, v, n_items);
    if (e == FR_OK) {
        // The |I_u|-th largest score and how the cut splits its tie block.
        float t = v[n_items - n_rated].s;
        double above = 0, pos_above = 0, tied = 0, pos_tied = 0;
        size_t flagged = 0, pos_flagged = 0;
        for (uint32_t i = 0; i < n_items; i++) {
            if (v[i].s > t) {
                above++;
                pos_above += v[i].pos;
            } else if (v[i].s == t) {
                tied++;
                pos_tied += v[i].pos;
            }
            if (v[i].s > flag_threshold) {
                flagged++;
                pos_flagged += v[i].pos;
            }
        }
        double hits = pos_above + ((double)n_rated - above) * pos_tied / tied;
        out->prec_at_r = hits / (double)n_rated;
        out->flag_recall = (double)pos_flagged / (double)n_rated;
        out->flag_precision =
            flagged > 0 ? (double)pos_flagged / (double)flagged : 0.0;
        out->n_rated = n_rated;
        out->n_flagged = flagged;
    }
    free(v);
    free(lab);
    return e;
}

void
fri_atk_membership_acc_init(fri_atk_membership_acc *a)
{
    if (a != NULL) {
        memset(a, 0, sizeof(*a));
    }
}

void
fri_atk_membership_acc_add(fri_atk_membership_acc *a,
                           const fri_atk_membership *m)
{
    if (a == NULL || m == NULL) {
        return;
    }
    a->prec_at_r += m->prec_at_r;
    a->flag_precision += m->flag_precision;
    a->flag_recall += m->flag_recall;
    a->auc += m->auc;
    a->n_users++;
}

fri_atk_membership
fri_atk_membership_acc_mean(const fri_atk_membership_acc *a)
{
    fri_atk_membership m;
    memset(&m, 0, sizeof(m));
    double n = a != NULL ? (double)a->n_users : 0.0;
    if (n == 0.0) {
        m.prec_at_r = m.flag_precision = m.flag_recall = m.auc = NAN;
        return m;
    }
    m.prec_at_r = a->prec_at_r / n;
    m.flag_precision = a->flag_precision / n;
    m.flag_recall = a->flag_recall / n;
    m.auc = a->auc / n;
    return m;
}

// ---------------------------------------------------- (b) reconstruction

void
fri_atk_params_init(fri_atk_params *p)
{
    if (p == NULL) {
        return;
    }
    memset(p, 0, sizeof(*p));
    p->kind = FRI_ATK_ALS;
    p->bu = FRI_ATK_BU_AUTO;
    p->weighted = 1;
}

// What one round's rows say: per row c_i = r_i - b_u, and E = sum of the
// residuals e_i (both computable without b_u).
typedef struct round_view {
    double *c; // n_rows
    double  E;
    double  n; // count for the penalty scale
    double  f; // scale the client applied to its whole update (clipping)
} round_view;

static int
obs_valid(const fri_atk_obs *o, const fri_atk_params *prm)
{
    const fri_mf_items *m = &o->model;
    return m->k == prm->k && m->n_items > 0 && m->bi != NULL &&
           m->Q != NULL && (o->n_rows == 0 || (o->rows != NULL)) &&
           strictly_increasing(o->items, o->n_rows, m->n_items) &&
           o->count >= 0.0;
}

static double
dotd(const double *a, const float *b, uint32_t k)
{
    double s = 0.0;
    for (uint32_t f = 0; f < k; f++) {
        s += a[f] * (double)b[f];
    }
    return s;
}

// Fills v->c and v->E from one observed update. p_u: from the Gram if
// present (its last column is [p_u; 1]), else least squares over the rows.
static void
read_round(round_view *v, const fri_atk_obs *o, const fri_atk_params *prm,
           double *p)
{
    const uint32_t k = prm->k;
    const size_t d = (size_t)k + 1;
    const fri_mf_items *m = &o->model;
    const size_t n = o->n_rows;
    double num = 0.0;
    memset(p, 0, k * sizeof(double));
    v->f = 1.0;
    if (prm->kind == FRI_ATK_ALS) {
        if (o->gram != NULL) {
            // The Gram's corner is 1 * 1: anything else is the factor an L2
            // clip scaled the whole update by, which is thereby undone.
            double corner = o->gram[fri_packed_index(d, k, k)];
            if (isfinite(corner) && corner > 0.0) {
                v->f = corner;
            }
            for (uint32_t a = 0; a < k; a++) {
                p[a] = o->gram[fri_packed_index(d, a, k)] / v->f;
            }
        } else {
            // h_i[:k] = s_i p_u with s_i = h_i[k].
            for (size_t r = 0; r < n; r++) {
                const float *h = o->rows + r * d;
                for (uint32_t a = 0; a < k; a++) {
                    p[a] += (double)h[k] * h[a];
                }
                num += (double)h[k] * h[k];
            }
            for (uint32_t a = 0; a < k; a++) {
                p[a] /= num;
            }
        }
        v->E = 0.0;
        for (size_t r = 0; r < n; r++) {
            uint32_t i = o->items[r];
            double s = o->rows[r * d + k] / v->f; // r - mu - b_u
            const float *q = m->Q + (size_t)i * k;
            v->c[r] = s + m->mu;
            v->E += s - m->bi[i] - dotd(p, q, k);
        }
    } else {
        // e_i from the bias entry g[k] = -e_i + reg_bias b_i, then
        // g[:k] - reg q_i = -e_i p_u gives p_u by least squares.
        v->E = 0.0;
        for (size_t r = 0; r < n; r++) {
            uint32_t i = o->items[r];
            const float *g = o->rows + r * d;
            const float *q = m->Q + (size_t)i * k;
            double e = (double)prm->reg_bias * m->bi[i] - g[k];
            for (uint32_t a = 0; a < k; a++) {
                p[a] -= e * ((double)g[a] - (double)prm->reg * q[a]);
            }
            num += e * e;
            v->c[r] = e; // temporarily
            v->E += e;
        }
        for (uint32_t a = 0; a < k; a++) {
            p[a] /= num;
        }
        for (size_t r = 0; r < n; r++) {
            uint32_t i = o->items[r];
            const float *q = m->Q + (size_t)i * k;
            v->c[r] += m->mu + m->bi[i] + dotd(p, q, k);
        }
    }
    v->n = o->count > 0.0 ? o->count / v->f : (double)n;
}

static double
penalty_scale(int weighted, double n)
{
    switch (weighted) {
    case 0:
        return 1.0;
    case 2:
        return sqrt(n);
    default:
        return n;
    }
}

static double
bu_single(fri_atk_bu method, const round_view *v, const fri_atk_obs *o,
          const fri_atk_params *prm, double *lambda)
{
    switch (method) {
    case FRI_ATK_BU_RATING_SUM: {
        double sc = 0.0;
        for (size_t r = 0; r < o->n_rows; r++) {
            sc += v->c[r];
        }
        return o->n_rows > 0
                   ? (o->rating_sum / v->f - sc) / (double)o->n_rows
                   : 0.0;
    }
    case FRI_ATK_BU_RIDGE:
        *lambda = (double)prm->reg_bias * penalty_scale(prm->weighted, v->n);
        return v->E / *lambda;
    default:
        return 0.0;
    }
}

fr_err
fri_atk_reconstruct(float *out, size_t out_cap, fri_atk_recon_info *info,
                    const fri_atk_obs *r1, const fri_atk_obs *r2,
                    const fri_atk_params *prm)
{
    if (r1 == NULL || prm == NULL || prm->k == 0 || prm->k > FRI_MF_MAX_K ||
        (prm->kind != FRI_ATK_ALS && prm->kind != FRI_ATK_GRAD) ||
        !(prm->reg >= 0.0f) || !(prm->reg_bias >= 0.0f) ||
        (unsigned)prm->bu > (unsigned)FRI_ATK_BU_ZERO ||
        (r1->n_rows > 0 && (out == NULL || r1->items == NULL)) ||
        !obs_valid(r1, prm) ||
        (r2 != NULL && ((r2->n_rows > 0 && r2->items == NULL) ||
                        !obs_valid(r2, prm)))) {
        return FR_EINVAL;
    }
    if (out_cap < r1->n_rows) {
        return FR_ENOSPC;
    }
    fri_atk_bu method = prm->bu;
    if (method == FRI_ATK_BU_AUTO) {
        method = isfinite(r1->rating_sum) ? FRI_ATK_BU_RATING_SUM
                 : prm->reg_bias > 0.0f   ? FRI_ATK_BU_RIDGE
                 : r2 != NULL             ? FRI_ATK_BU_TWO_ROUNDS
                                          : FRI_ATK_BU_ZERO;
    }
    if ((method == FRI_ATK_BU_TWO_ROUNDS && r2 == NULL) ||
        (method == FRI_ATK_BU_RATING_SUM &&
         (!isfinite(r1->rating_sum) ||
          (r2 != NULL && !isfinite(r2->rating_sum)))) ||
        (method == FRI_ATK_BU_RIDGE && !(prm->reg_bias > 0.0f))) {
        return FR_EINVAL;
    }
    size_t n1 = r1->n_rows, n2 = r2 != NULL ? r2->n_rows : 0;
    if (n1 > SIZE_MAX / sizeof(double) - n2 - 2 * FRI_MF_MAX_K) {
        return FR_ETOOBIG;
    }
    double *buf = malloc((n1 + n2 + 2 * FRI_MF_MAX_K) * sizeof(double));
    if (buf == NULL) {
        return FR_ENOMEM;
    }
    double *p = buf + n1 + n2;
    round_view v1 = {.c = buf}, v2 = {.c = buf + n1};
    read_round(&v1, r1, prm, p);
    if (r2 != NULL) {
        read_round(&v2, r2, prm, p + FRI_MF_MAX_K);
    }
    double b1 = 0.0, b2 = 0.0, lambda = NAN;
    size_t n_common = 0;
    if (method == FRI_ATK_BU_TWO_ROUNDS || r2 != NULL) {
        // Common items: each gives b_u' - b_u = c_i - c_i'.
        double dsum = 0.0;
        size_t a = 0, b = 0;
        while (a < n1 && b < n2) {
            if (r1->items[a] < r2->items[b]) {
                a++;
            } else if (r1->items[a] > r2->items[b]) {
                b++;
            } else {
                dsum += v1.c[a] - v2.c[b];
                n_common++;
                a++;
                b++;
            }
        }
        if (method == FRI_ATK_BU_TWO_ROUNDS) {
            double delta = n_common > 0 ? dsum / (double)n_common : NAN;
            lambda = (v2.E - v1.E) / delta;
            b1 = v1.E / lambda;
            b2 = v2.E / lambda;
        }
    }
    if (method != FRI_ATK_BU_TWO_ROUNDS) {
        b1 = bu_single(method, &v1, r1, prm, &lambda);
        if (r2 != NULL) {
            double l2 = NAN;
            b2 = bu_single(method, &v2, r2, prm, &l2);
        }
    }
    // Ratings: round 1's estimate, averaged with round 2's on common items.
    size_t b = 0;
    for (size_t a = 0; a < n1; a++) {
        double r = v1.c[a] + b1;
        while (b < n2 && r2->items[b] < r1->items[a]) {
            b++;
        }
        if (b < n2 && r2->items[b] == r1->items[a]) {
            r = 0.5 * (r + v2.c[b] + b2);
        }
        out[a] = isfinite(r) ? (float)r : NAN;
    }
    if (info != NULL) {
        info->method = method;
        info->bu = b1;
        info->lambda_b = lambda;
        info->n_common = n_common;
    }
    free(buf);
    return FR_OK;
}

void
fri_atk_recon_acc_init(fri_atk_recon_acc *a)
{
    if (a == NULL) {
        return;
    }
    memset(a, 0, sizeof(*a));
    a->within = 0.5;
    a->err_cap = 1e6;
}

fr_err
fri_atk_recon_acc_add(fri_atk_recon_acc *a, const uint32_t *vis_items,
                      const float *recovered, size_t n_vis,
                      const uint32_t *true_items, const float *true_ratings,
                      size_t n_true)
{
    if (a == NULL || (n_vis > 0 && (vis_items == NULL || recovered == NULL)) ||
        (n_true > 0 && (true_items == NULL || true_ratings == NULL)) ||
        !strictly_increasing(vis_items, n_vis, UINT32_MAX) ||
        !strictly_increasing(true_items, n_true, UINT32_MAX)) {
        return FR_EINVAL;
    }
    size_t i = 0, j = 0;
    while (i < n_vis || j < n_true) {
        if (j >= n_true || (i < n_vis && vis_items[i] < true_items[j])) {
            a->n_false++;
            i++;
        } else if (i >= n_vis || true_items[j] < vis_items[i]) {
            a->n_missed++;
            j++;
        } else {
            double err = fabs((double)recovered[i] - true_ratings[j]);
            if (!(err <= a->err_cap)) { // also NaN
                err = a->err_cap;
            }
            a->sse += err * err;
            a->sae += err;
            a->n_found++;
            a->n_within += err <= a->within;
            i++;
            j++;
        }
    }
    return FR_OK;
}

double
fri_atk_recon_rmse(const fri_atk_recon_acc *a)
{
    return a != NULL && a->n_found > 0 ? sqrt(a->sse / (double)a->n_found)
                                       : NAN;
}

double
fri_atk_recon_mae(const fri_atk_recon_acc *a)
{
    return a != NULL && a->n_found > 0 ? a->sae / (double)a->n_found : NAN;
}

double
fri_atk_recon_within(const fri_atk_recon_acc *a)
{
    return a != NULL && a->n_found > 0
               ? (double)a->n_within / (double)a->n_found
               : NAN;
}
