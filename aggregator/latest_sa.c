// Latest statistics under secure aggregation (docs/SECAGG.md §9): the
// round releases only the sum of the survivors' masked deltas
// (secagg_stats.h). It is checked the way honest deltas add up and then
// set as the round's sums, which fri_latest_solve folds into the running
// sum exactly as a plain round's.
#include "agg_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bounds.h"
#include "fixpt.h"
#include "latest_sa.h"
#include "log.h"
#include "linalg.h"
#include "secagg_stats.h"
#include "vbmf.h"

// Why the decoded sum cannot be a sum of m honest deltas, or NULL. An
// honest delta adds, per item, 1 to the bias-bias Gram entry when the
// device starts rating the item, -1 when it stops (a rating removed on
// the device) and 0 otherwise (that entry of every contribution is 1);
// its user count (VBMF) 1 on its first report and 0 after; and those item
// counts add up to the change of its rating count. Every running Gram
// diagonal is a sum of squares (the bias-bias one counts the item's
// raters), so it must stay >= 0 once the round's deltas are added.
static const char *
check_deltas(const fri_agg *a, const float *v, double m, double q,
             const fri_sa_als_bounds *b, int vb, double *tot)
{
    const uint32_t k = a->cfg.k, d = a->d, ni = a->cfg.n_items;
    const size_t   w = a->gram_len + d;
    double         U = b->user_norm;
    *tot             = 0.0;
    for (uint32_t i = 0; i < ni; i++) {
        const float *row = v + (size_t) i * w;
        const float *run = a->stats.carry != NULL ? a->stats.carry[i] : NULL;
        for (uint32_t r = 0; r < d; r++) {
            size_t t  = fri_packed_index(d, r, r);
            double sc = r < k ? 2.0 * U * U : 2.0;
            double g  = row[t] + (run != NULL ? run[t] : 0.0);
            // The running sum carries every round's rounding: 1e-3 of
            // the scale is far above it and far below a real violation.
            if (!(g >= -(q + 1e-3) * sc)) {
                return "negative running gram diagonal";
            }
        }
        double c = row[fri_packed_index(d, k, k)];
        if (!(c >= -m - 2.0 * q - 1e-6 && c <= m + 2.0 * q + 1e-6)) {
            return "item rater count change outside [-members, members]";
        }
        *tot += c;
    }
    const float *tail = v + (size_t) ni * w;
    if (vb) {
        double uc = tail[fri_sa_stats_glob_len(k) - 1];
        if (!(uc >= -2.0 * q - 1e-6 && uc <= m + 2.0 * q + 1e-6)) {
            return "user newcomer count outside [0, members]";
        }
        tail += fri_sa_stats_glob_len(k);
    }
    double cnt = tail[1];
    double tol = 0.5 + (double) ni * q * 4.0 + 1e-6 * fabs(cnt);
    if (!(fabs(*tot - cnt) <= tol)) {
        return "item rater count changes do not add up to the rating "
               "count change";
    }
    return NULL;
}

fr_err
fri_latest_sa_check(fri_agg *a, const float *v, size_t n)
{
    const uint32_t k  = a->cfg.k, ni = a->cfg.n_items;
    const size_t   w  = a->gram_len + a->d;
    const int      vb = a->vb != NULL;
    if (a->cfg.implicit || a->acc_len != w ||
        n != fri_sa_stats_dim(ni, k, vb)) {
        return FR_EINVAL;
    }
    fri_bounds bb;
    fri_bounds_of(&a->cfg, &bb);
    fri_sa_als_bounds b = {(float) bb.user_norm, (float) bb.residual,
                           (float) fmax(fabs(bb.rmin), fabs(bb.rmax))};
    pthread_mutex_lock(&a->rs.mtx);
    double m = a->rs.n_members;
    pthread_mutex_unlock(&a->rs.mtx);
    double      q   = fri_sa_quant_tol(m, a->cfg.clients_per_round);
    double      tot = 0.0;
    const char *why = check_deltas(a, v, m, q, &b, vb, &tot);
    if (why != NULL) {
        atomic_fetch_add(&a->ctr.models_refused, 1);
        fri_agg_log(a, FR_LOG_ERROR,
                    "msg=\"unmasked statistics deltas inconsistent, round "
                    "refused\" members=%.0f reason=\"%s\" item_counts=%g "
                    "alert=1",
                    m, why, tot);
        return FR_EPROTO;
    }
    return FR_OK;
}
