// Aggregator accumulation: validating one device's update and adding it to
// the round's sums (plain path), and setting the sums from an unmasked
// secure-aggregation total (agg.h, agg_int.h).
#include "agg_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accumulate.h"
#include "bounds.h"
#include "fixpt.h"
#include "latest_sa.h"
#include "linalg.h"
#include "log.h"
#include "robust.h"
#include "secagg_als.h"
#include "secagg_ials.h"
#include "secagg_stats.h"
#include "dp.h"
#include "vbmf.h"
#include "sorted.h"

// ---- accumulators ---------------------------------------------------------

// Drops all partial sums (closer or abandoner, exclusive).
void
fri_agg_acc_reset(fri_agg *a)
{
    pthread_mutex_lock(&a->sums.acc_mtx);
    for (uint32_t j = 0; j < a->sums.n_touched; j++) {
        uint32_t i = a->sums.touched[j];
        free(a->sums.acc[i]);
        a->sums.acc[i] = NULL;
        free(a->sums.accf[i]);
        a->sums.accf[i] = NULL;
    }
    a->sums.n_touched = 0;
    if (a->sums.gram_all != NULL) {
        memset(a->sums.gram_all, 0, fri_packed_len(a->cfg.k) * sizeof(double));
    }
    a->sums.sum_ratings = 0;
    a->sums.count       = 0;
    a->sums.weight      = 0;
    if (a->vb != NULL) {
        fri_vb_acc_reset(a->vb);
    }
    pthread_mutex_unlock(&a->sums.acc_mtx);
    fri_robust_next_round(a->robust);
}

// y += alpha * x, accumulated in double.
static void
daxpy(size_t n, double alpha, const float *x, double *y)
{
    for (size_t i = 0; i < n; i++) {
        y[i] += alpha * (double) x[i];
    }
}

// Adds one validated update. All-or-nothing: accumulators are allocated
// before anything is added.
fr_err
fri_agg_acc_add(fri_agg *a, const fri_agg_update *u0)
{
    const uint32_t d  = a->d;
    const size_t   gl = a->gram_len;
    // Robust bounds on what one device adds (robust.h): u is the bounded
    // copy of u0.
    fri_agg_update        ub = *u0;
    float                *rbuf = NULL;
    const fri_agg_update *u = &ub;
    if (a->robust != NULL) {
        fr_err rrv = fri_robust_bound(a->robust, u0, &ub, &rbuf);
        if (rrv != FR_OK) {
            return rrv;
        }
    }
    // Gradient FedAvg with a clip: the server clips each plain update
    // itself (rows and (sum, count) to C / sqrt(2) each, as clients do)
    // instead of trusting devices to have done it.
    double rs = 1.0, ss = 1.0;
    if (a->cfg.algo == FRI_AGG_GRAD && a->cfg.clip > 0.0f) {
        fri_bounds_grad_clip(&a->cfg, u, &rs, &ss);
    }
    // Buffered mode. A stale gradient points where the model was: FedBuff
    // down-weights it by 1/sqrt(1 + staleness). Statistics stay exact:
    // h = E[x (r - mu - b_u)] computed against the mu of their version
    // moves to the current one by -dmu E[x] (the Gram's last column), and
    // VBMF's squared residuals by -2 dmu A + n dmu^2 (A: the residuals'
    // sum, the rows' last entries; n: the rating count), as for the
    // running sum on every new mu (latest.c).
    if (a->cfg.algo == FRI_AGG_GRAD && u->staleness > 0) {
        rs /= sqrt(1.0 + (double) u->staleness);
    }
    const double dmu = a->cfg.algo != FRI_AGG_GRAD && !a->cfg.implicit
                           ? (double) u->stale_dmu
                           : 0.0;
    float *vbc = NULL; // the re-centred global block
    if (dmu != 0.0 && a->vb != NULL && u->vb != NULL) {
        vbc = malloc(u->vb_len * sizeof(float));
        if (vbc == NULL) {
            free(rbuf);
            return FR_ENOMEM;
        }
        double A = 0.0;
        for (uint32_t j = 0; j < u->n; j++) {
            A += u->rows[(size_t) j * d + d - 1];
        }
        memcpy(vbc, u->vb, u->vb_len * sizeof(float));
        size_t sq = (size_t) d + gl; // [sum E[u] | sum E[uu^T] | sq | n]
        vbc[sq] = (float) ((double) vbc[sq] - 2.0 * dmu * A +
                           u->count * dmu * dmu);
    }
    pthread_mutex_lock(&a->sums.acc_mtx);
    for (uint32_t j = 0; j < u->n; j++) {
        uint32_t i = u->items[j];
        if (a->sums.acc[i] == NULL) {
            a->sums.acc[i] = calloc(a->acc_len, sizeof(double));
            if (a->sums.acc[i] == NULL) {
                pthread_mutex_unlock(&a->sums.acc_mtx);
                free(vbc);
                free(rbuf);
                return FR_ENOMEM;
            }
            a->sums.touched[a->sums.n_touched++] = i;
        }
    }
    for (uint32_t j = 0; j < u->n; j++) {
        double      *acc = a->sums.acc[u->items[j]];
        const float *row = u->rows + (size_t) j * d;
        if (a->cfg.algo == FRI_AGG_GRAD) {
            daxpy(d, rs, row, acc);
        } else if (!a->cfg.implicit) {
            // [packed Gram (gl) | h (d)]
            daxpy(gl, 1.0, u->gram, acc);
            daxpy(d, 1.0, row, acc + gl);
            for (uint32_t r = 0; dmu != 0.0 && r < d; r++) {
                acc[gl + r] -=
                    dmu * (double) u->gram[fri_packed_index(d, r, d - 1)];
            }
        } else {
            // [sum (c-1) G_u (gl) | sum c p (k)]; row = [c - 1, c p]
            daxpy(gl, row[0], u->gram, acc);
            daxpy(d - 1, 1.0, row + 1, acc + gl);
        }
    }
    if (a->cfg.implicit) {
        daxpy(gl, 1.0, u->gram, a->sums.gram_all);
    }
    a->sums.sum_ratings += ss * u->sum_ratings;
    a->sums.count += ss * u->count;
    a->sums.weight += u->weight;
    if (a->vb != NULL) {
        fri_vb_acc_add(a->vb, vbc != NULL ? vbc : u->vb);
    }
    pthread_mutex_unlock(&a->sums.acc_mtx);
    free(vbc);
    free(rbuf);
    return FR_OK;
}

// Shape, index and value checks, outside every lock. *bounds is set when
// the update is well-formed but its values break the server-side bounds.
static fr_err
validate_shape(const fri_agg *a, const fri_agg_update *u);

fr_err
fri_agg_dp_stats_norm2(const fri_agg *a, const fri_agg_update *u,
                       double *n2)
{
    // ext = [VBMF global block | rating sum | count]; its tail (squared
    // residuals, user count, sum, count) is measured at the tail scale,
    // as on the device (fri_dp_stats_norm2).
    const size_t nvb = a->vb != NULL ? u->vb_len : 0;
    float       *ext = malloc((nvb + 2) * sizeof(float));
    if (ext == NULL) {
        return FR_ENOMEM;
    }
    if (nvb > 0) {
        memcpy(ext, u->vb, nvb * sizeof(float));
    }
    ext[nvb]     = (float) u->sum_ratings;
    ext[nvb + 1] = (float) u->count;
    *n2 = fri_dp_stats_norm2(u->gram, u->gram_len, u->n, u->rows, u->rows_len,
                             ext, nvb + 2, nvb > 0);
    free(ext);
    return FR_OK;
}

fr_err
fri_agg_validate(const fri_agg *a, const fri_agg_update *u, int *bounds)
{
    *bounds   = 0;
    fr_err rv = validate_shape(a, u);
    if (rv != FR_OK) {
        return rv;
    }
    if (a->cfg.dp != FRI_AGG_DP_OFF && a->cfg.stats_latest) {
        // The DP bound is enforced here, not trusted: an honest device's
        // report (contribution or delta) is within clip by construction
        // (client/stats_delta.c); anything above it is refused, not
        // scaled, since scaling would desynchronise the device's record
        // of what the aggregator holds for it.
        double n2 = 0.0;
        rv        = fri_agg_dp_stats_norm2(a, u, &n2);
        if (rv != FR_OK) {
            return rv;
        }
        double cl = (double) a->cfg.clip * (1.0 + 1e-5);
        if (!(n2 <= cl * cl)) {
            *bounds = 1;
            fri_agg_log(a, FR_LOG_WARN,
                        "msg=\"update refused: statistics norm above the "
                        "DP bound\" round=%llu norm=%g clip=%g",
                        (unsigned long long) u->round, sqrt(n2),
                        (double) a->cfg.clip);
            return FR_EPROTO;
        }
    }
    const char *why = NULL;
    if (fri_bounds_update(&a->cfg, u, &why) != 0) {
        *bounds = 1;
        fri_agg_log(a, FR_LOG_WARN,
                    "msg=\"update refused: out of bounds\" round=%llu "
                    "reason=\"%s\"",
                    (unsigned long long) u->round, why);
        return FR_EPROTO;
    }
    return FR_OK;
}

static fr_err
validate_shape(const fri_agg *a, const fri_agg_update *u)
{
    const uint32_t ni = fri_agg_n_items(a);
    if (u == NULL || u->n > ni || (u->n > 0 && u->items == NULL)) {
        return FR_EPROTO;
    }
    if (u->rows_len != (size_t) u->n * a->d || (u->n > 0 && u->rows == NULL)) {
        return FR_EPROTO;
    }
    if ((a->cfg.algo == FRI_AGG_ALS || a->cfg.algo == FRI_AGG_VBMF) &&
        (u->gram == NULL || u->gram_len != a->gram_len ||
         !fri_all_finite(u->gram, u->gram_len))) {
        return FR_EPROTO;
    }
    if (a->vb != NULL &&
        !(a->cfg.stats_latest ? fri_vb_glob_delta_ok(a->vb, u->vb, u->vb_len)
                              : fri_vb_glob_ok(a->vb, u->vb, u->vb_len))) {
        return FR_EPROTO;
    }
    // A latest-statistics delta may lower the count (a device retracting
    // its contribution); check_delta bounds its size.
    int neg_ok = a->cfg.stats_latest != 0;
    if (!fri_all_finite(u->rows, u->rows_len) || !isfinite(u->sum_ratings) ||
        !isfinite(u->count) || (u->count < 0 && !neg_ok) ||
        !isfinite(u->weight) || (u->weight < 0 && !neg_ok)) {
        return FR_EPROTO;
    }
    if (a->cfg.implicit) {
        // Confidence weights c - 1 >= 0.
        for (uint32_t j = 0; j < u->n; j++) {
            if (u->rows[(size_t) j * a->d] < 0.0f) {
                return FR_EPROTO;
            }
        }
    }
    // Items in range and distinct (a repeated item would count twice).
    int sorted = 1;
    for (uint32_t j = 0; j < u->n; j++) {
        if (u->items[j] >= ni) {
            return FR_EPROTO;
        }
        if (j > 0 && u->items[j] <= u->items[j - 1]) {
            sorted = 0;
        }
    }
    if (!sorted) {
        uint32_t *tmp = malloc((size_t) u->n * sizeof(uint32_t));
        if (tmp == NULL) {
            return FR_ENOMEM;
        }
        memcpy(tmp, u->items, (size_t) u->n * sizeof(uint32_t));
        qsort(tmp, u->n, sizeof(uint32_t), fri_cmp_u32);
        fr_err rv = FR_OK;
        for (uint32_t j = 1; j < u->n; j++) {
            if (tmp[j] == tmp[j - 1]) {
                rv = FR_EPROTO;
                break;
            }
        }
        free(tmp);
        return rv;
    }
    return FR_OK;
}

// The item rows (w values each) of a released dense sum become the round's
// accumulators (under sums.acc_mtx, after a reset). Only items some
// survivor rated, as in the plain path: the masks cancel exactly, so an
// item nobody rated sums to exact zeros (a rated item has its rater
// count, >= 1, in its Gram).
static fr_err
set_item_rows(fri_agg *a, const float *v, uint32_t ni, size_t w)
{
    for (uint32_t i = 0; i < ni; i++) {
        const float *row = v + (size_t) i * w;
        int          nz  = 0;
        for (size_t r = 0; r < w && !nz; r++) {
            nz = row[r] != 0.0f;
        }
        if (!nz) {
            continue;
        }
        // The accumulator is the block's first acc_len values (iALS
        // blocks carry one more, for acc_set_ials' check).
        a->sums.acc[i] = malloc(a->acc_len * sizeof(double));
        if (a->sums.acc[i] == NULL) {
            return FR_ENOMEM;
        }
        a->sums.touched[a->sums.n_touched++] = i;
        for (size_t r = 0; r < a->acc_len; r++) {
            a->sums.acc[i][r] = row[r];
        }
    }
    return FR_OK;
}

// Explicit ALS: v is the decoded sum of the survivors' dense statistics
// (secagg_als.h): per item [packed Gram | h], then rating sum and count.
// sa.c already checked every coordinate against the survivors' bounds;
// here the parts must also agree with each other the way honest
// statistics do: every Gram diagonal is a sum of squares (>= 0), an
// item's bias-bias entry counts its raters (<= members), and those counts
// add up to the rating count. A sum that breaks this holds a member's
// values outside the encoding of its statistics: the round is refused.
static fr_err
acc_set_als(fri_agg *a, const float *v, size_t n)
{
    const uint32_t k  = a->cfg.k, d = a->d;
    const size_t   gl = a->gram_len, w = gl + d;
    const uint32_t ni = a->cfg.n_items;
    if (a->cfg.implicit || a->acc_len != w || n != fri_sa_als_dim(ni, k)) {
        return FR_EINVAL;
    }
    pthread_mutex_lock(&a->rs.mtx);
    double m = a->rs.n_members;
    pthread_mutex_unlock(&a->rs.mtx);
    // Quantization: <= 2^-(f+1) per member and coordinate in normalized
    // units; the counts' scales are 1 (per item) and n_items (total).
    double   q    = fri_sa_quant_tol(m, a->cfg.clients_per_round);
    double   tot  = 0.0;
    double   cnt  = v[n - 1];
    double   umax = (double) a->cfg.max_user_norm;
    const char *why = NULL;
    for (uint32_t i = 0; i < ni && why == NULL; i++) {
        const float *row = v + (size_t) i * w;
        for (uint32_t r = 0; r < d && why == NULL; r++) {
            double sc = r < k ? umax * umax : 1.0;
            if (!(row[fri_packed_index(d, r, r)] >= -q * sc * (1.0 + 1e-6))) {
                why = "negative gram diagonal";
            }
        }
        double c = row[fri_packed_index(d, k, k)];
        if (!(c <= m + q + 1e-6)) {
            why = "item rater count above the members";
        }
        tot += c;
    }
    double tol = 0.5 + (double) ni * q * 2.0 + 1e-6 * fabs(cnt);
    if (why == NULL && !(cnt >= -tol && fabs(tot - cnt) <= tol)) {
        why = "item rater counts do not add up to the rating count";
    }
    if (why != NULL) {
        atomic_fetch_add(&a->ctr.models_refused, 1);
        fri_agg_log(a, FR_LOG_ERROR,
                    "msg=\"unmasked ALS statistics inconsistent, round "
                    "refused\" members=%.0f reason=\"%s\" count=%g "
                    "item_counts=%g alert=1",
                    m, why, cnt, tot);
        return FR_EPROTO;
    }
    fri_agg_acc_reset(a);
    pthread_mutex_lock(&a->sums.acc_mtx);
    if (set_item_rows(a, v, ni, w) != FR_OK) {
        pthread_mutex_unlock(&a->sums.acc_mtx);
        return FR_ENOMEM;
    }
    a->sums.sum_ratings = v[n - 2];
    a->sums.count       = cnt > 0.0 ? cnt : 0.0;
    a->sums.weight      = a->sums.count;
    pthread_mutex_unlock(&a->sums.acc_mtx);
    return FR_OK;
}

// Latest statistics under secure aggregation: the checked sum of the
// survivors' masked deltas (secagg_stats.h layout) becomes the round's
// accumulators, which latest.c folds into the running sum.
static fr_err
acc_set_latest(fri_agg *a, const float *v, size_t n)
{
    fr_err e = fri_latest_sa_check(a, v, n);
    if (e != FR_OK) {
        return e;
    }
    const uint32_t k  = a->cfg.k, ni = a->cfg.n_items;
    const size_t   w  = a->gram_len + a->d;
    const int      vb = a->vb != NULL;
    fri_agg_acc_reset(a);
    pthread_mutex_lock(&a->sums.acc_mtx);
    if (set_item_rows(a, v, ni, w) != FR_OK) {
        pthread_mutex_unlock(&a->sums.acc_mtx);
        return FR_ENOMEM;
    }
    const float *tail = v + (size_t) ni * w;
    if (vb) {
        fri_vb_acc_add(a->vb, tail);
        tail += fri_sa_stats_glob_len(k);
    }
    a->sums.sum_ratings = tail[0];
    a->sums.count       = tail[1] > 0.0f ? tail[1] : 0.0;
    a->sums.weight      = a->sums.count;
    pthread_mutex_unlock(&a->sums.acc_mtx);
    return FR_OK;
}

// iALS: v is the decoded sum of the survivors' statistics
// (secagg_ials.h): per item [packed sum w p p^T | sum c p | sum c], then
// the packed sum of p p^T (Y^T Y), the value sum and the count. As for
// ALS, the parts must agree the way honest statistics do: Gram diagonals
// are sums of squares (>= 0), and every interaction adds c in [1, C + 1]
// to its item's last entry, so those add up to between count and
// (C + 1) count. A sum that breaks this is refused.
static fr_err
acc_set_ials(fri_agg *a, const float *v, size_t n)
{
    const uint32_t k  = a->cfg.k;
    const size_t   gl = a->gram_len, w = gl + a->d;
    const uint32_t ni = a->cfg.n_items;
    if (!a->cfg.implicit || a->acc_len != gl + k ||
        n != fri_sa_ials_dim(ni, k)) {
        return FR_EINVAL;
    }
    pthread_mutex_lock(&a->rs.mtx);
    double m = a->rs.n_members;
    pthread_mutex_unlock(&a->rs.mtx);
    fri_bounds b;
    fri_bounds_of(&a->cfg, &b);
    const double U2 = b.user_norm * b.user_norm;
    const double C  = (double) a->cfg.alpha * b.rmax;
    // Quantization, in normalized units (words are scaled back by C U^2,
    // U^2 and C + 1 below).
    double       q    = fri_sa_quant_tol(m, a->cfg.clients_per_round);
    const float *yy   = v + (size_t) ni * w;
    double       cnt  = v[n - 1], csum = 0.0;
    const char  *why  = NULL;
    for (uint32_t r = 0; r < k && why == NULL; r++) {
        if (!(yy[fri_packed_index(k, r, r)] >= -q * U2 * (1.0 + 1e-6))) {
            why = "negative Y^T Y diagonal";
        }
    }
    for (uint32_t i = 0; i < ni && why == NULL; i++) {
        const float *row = v + (size_t) i * w;
        for (uint32_t r = 0; r < k && why == NULL; r++) {
            if (!(row[fri_packed_index(k, r, r)] >=
                  -q * C * U2 * (1.0 + 1e-6))) {
                why = "negative gram diagonal";
            }
        }
        csum += row[gl + k];
    }
    double tol = (double) ni * q * (C + 1.0) * 2.0 + 1e-4 * fabs(cnt) + 0.5;
    if (why == NULL && !(cnt >= -tol && csum >= cnt - tol &&
                         csum <= (C + 1.0) * cnt + tol)) {
        why = "item confidences do not add up to the interaction count";
    }
    if (why != NULL) {
        atomic_fetch_add(&a->ctr.models_refused, 1);
        fri_agg_log(a, FR_LOG_ERROR,
                    "msg=\"unmasked iALS statistics inconsistent, round "
                    "refused\" members=%.0f reason=\"%s\" count=%g "
                    "confidence_sum=%g alert=1",
                    m, why, cnt, csum);
        return FR_EPROTO;
    }
    fri_agg_acc_reset(a);
    pthread_mutex_lock(&a->sums.acc_mtx);
    // The solver's accumulator is [sum w p p^T | sum c p]: the block
    // without its last entry.
    fr_err rv = set_item_rows(a, v, ni, w);
    for (size_t t = 0; t < gl && rv == FR_OK; t++) {
        a->sums.gram_all[t] = yy[t];
    }
    a->sums.sum_ratings = v[n - 2];
    a->sums.count       = cnt > 0.0 ? cnt : 0.0;
    a->sums.weight      = a->sums.count;
    pthread_mutex_unlock(&a->sums.acc_mtx);
    return rv;
}

fr_err
fri_agg_acc_set_dense(fri_agg *a, const float *v, size_t n)
{
    if (a->cfg.stats_latest) {
        return acc_set_latest(a, v, n);
    }
    if (a->cfg.algo == FRI_AGG_ALS && a->cfg.implicit) {
        return acc_set_ials(a, v, n);
    }
    if (a->cfg.algo == FRI_AGG_ALS) {
        return acc_set_als(a, v, n);
    }
    const uint32_t d  = a->d;
    const size_t   nr = (size_t) a->cfg.n_items * d;
    if (a->cfg.algo != FRI_AGG_GRAD || n != nr + 2) {
        return FR_EINVAL;
    }
    // The server cannot check a masked member's update, but every honest
    // member clipped its rows and its (sum, count) to C / sqrt(2) each, so
    // the sum of m members has both norms <= m C / sqrt(2), plus the
    // fixed-point rounding and, under distributed DP, the summed noise. A
    // sum above that budget holds a member's values outside the encoding
    // of a clipped update: the round is refused rather than stepped.
    pthread_mutex_lock(&a->rs.mtx);
    double m = a->rs.n_members;
    pthread_mutex_unlock(&a->rs.mtx);
    double rows2 = 0.0;
    for (size_t t = 0; t < nr; t++) {
        rows2 += (double) v[t] * v[t];
    }
    double stat    = sqrt((double) v[nr] * v[nr] + (double) v[nr + 1] * v[nr + 1]);
    unsigned fb    = fri_sa_frac_bits(a->cfg.clip, a->cfg.clients_per_round);
    double   quant = m * ldexp(1.0, -(int) fb - 1) * sqrt((double) n);
    double   noise = 0.0;
    if (a->cfg.dp == FRI_AGG_DP_DISTRIBUTED) {
        double m0 = a->cfg.min_clients > 2 ? a->cfg.min_clients : 2;
        noise = a->cfg.noise_multiplier * a->cfg.clip * sqrt(m / m0) *
                (sqrt((double) n) + 10.0);
    }
    double budget = m * a->cfg.clip / sqrt(2.0) * (1.0 + 1e-4) + quant + noise;
    if (!(sqrt(rows2) <= budget) || !(stat <= budget)) {
        atomic_fetch_add(&a->ctr.models_refused, 1);
        fri_agg_log(a, FR_LOG_ERROR,
                    "msg=\"unmasked sum above the cohort's clip budget, "
                    "round refused\" members=%.0f rows_norm=%g "
                    "stats_norm=%g budget=%g alert=1",
                    m, sqrt(rows2), stat, budget);
        return FR_EPROTO;
    }
    fri_agg_acc_reset(a);
    pthread_mutex_lock(&a->sums.acc_mtx);
    for (uint32_t i = 0; i < a->cfg.n_items; i++) {
        // Only items some survivor rated, as in the plain path: the masks
        // cancel exactly, so an item nobody rated sums to exact zeros.
        // Stepping it anyway would let the optimizer's momentum move items
        // that had no gradient this round (Adam drifts every item every
        // round), which plain FedAvg never does. Under DP every item is
        // stepped (dp_grad_step), noised or not.
        const float *row = v + (size_t) i * d;
        int          nz  = a->cfg.dp != FRI_AGG_DP_OFF;
        for (uint32_t r = 0; r < d && !nz; r++) {
            nz = row[r] != 0.0f;
        }
        if (!nz) {
            continue;
        }
        a->sums.acc[i] = malloc((size_t) d * sizeof(double));
        if (a->sums.acc[i] == NULL) {
            pthread_mutex_unlock(&a->sums.acc_mtx);
            return FR_ENOMEM;
        }
        a->sums.touched[a->sums.n_touched++] = i;
        for (uint32_t r = 0; r < d; r++) {
            a->sums.acc[i][r] = v[(size_t) i * d + r];
        }
    }
    a->sums.sum_ratings = v[nr];
    a->sums.count       = v[nr + 1];
    // FedAvg weight: the (clipped) counts, summed like everything else.
    a->sums.weight = v[nr + 1] > 0.0f ? v[nr + 1] : 0.0;
    pthread_mutex_unlock(&a->sums.acc_mtx);
    return FR_OK;
}

