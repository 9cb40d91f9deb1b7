// On-device fold-in, prediction and top-n recommendation against the model
// in use.
#include <math.h>
#include <string.h>

#include "bayes.h"
#include "client_internal.h"
#include "mf.h"
#include "recency.h"
#include "tbias.h"

static fri_mf_items
items_of(const fri_cmodel *m)
{
    fri_mf_items it;
    it.n_items = m->n_items;
    it.k       = m->k;
    it.mu      = m->mu;
    it.bi      = m->bi;
    it.Q       = m->Q;
    return it;
}

// Picks up the newest model the cache holds for our aggregator key when the
// handle has none yet (e.g. another handle of the process fetched it).
static void
adopt_cached(fr_client *c)
{
    if (c->model != NULL) {
        return;
    }
    fri_cmodel *m = fri_model_cache_latest(c->cache, c->server_pk + 32);
    if (m != NULL) {
        fri_client_set_model(c, m);
        fri_cmodel_unref(m);
    }
}

// Number of interactions with catalog items (a prefix: items are sorted;
// interactions outside the catalog are kept but cannot be scored).
static size_t
n_scorable(const fr_client *c, const fri_cmodel *m)
{
    size_t n = 0;
    while (n < c->n_inter && c->items[n] < m->n_items) {
        n++;
    }
    return n;
}

// The implicit fold-in: strengths weighed by recency (common/recency.h)
// when c->recency_hl > 0.
static fr_err
implicit_fit(fr_client *c, const fri_mf_items *it, const uint32_t *items,
             const float *values, const int64_t *ts, size_t n, float *p_out,
             float *work, size_t work_len)
{
    const fri_cmodel *m  = c->model;
    float            *wv = NULL;
    if (c->recency_hl > 0.0f && n > 1) {
        wv              = fri_client_calloc(c, n, sizeof *wv);
        int64_t *scr    = fri_client_calloc(c, n, sizeof *scr);
        fr_err   err    = wv != NULL && scr != NULL ? FR_OK : FR_ENOMEM;
        if (err == FR_OK) {
            err = fri_recency_weigh(wv, values, ts, n, c->recency_hl, scr);
        }
        fri_client_free_wipe(c, scr, n * sizeof *scr);
        if (err != FR_OK) {
            fri_client_free_wipe(c, wv, n * sizeof *wv);
            return err;
        }
        values = wv;
    }
    fr_err err = fri_mf_implicit_user_solve(p_out, it, m->qtq, items, values,
                                            n, c->fit.alpha, c->fit.reg, work,
                                            work_len);
    fri_client_free_wipe(c, wv, n * sizeof *wv);
    return err;
}

// The fold-in proper: the user vector (p_out, k floats; *bu_out) fitted to
// the given interactions (catalog items, sorted; ts their timestamps)
// against c->model with c->fit. Shared by the refit and by explanations,
// which refit without one interaction at a time.
static fr_err
user_fit(fr_client *c, const uint32_t *items, const float *values,
         const int64_t *ts, size_t n, float *p_out, float *bu_out)
{
    const fri_cmodel *m = c->model;
    if (m->vb && !m->implicit && !c->fit.implicit) {
        return fri_client_vb_fit(c, items, values, n, p_out, bu_out, NULL);
    }
    size_t work_len = fri_mf_work_len(m->k);
    float *work     = fri_client_calloc(c, work_len, sizeof *work);
    if (work == NULL) {
        return FR_ENOMEM;
    }
    fri_mf_items it = items_of(m);
    fr_err       err;
    if (m->implicit || c->fit.implicit) {
        err     = !m->implicit ? FR_ESTATE
                                   : implicit_fit(c, &it, items, values, ts, n,
                                                  p_out, work, work_len);
        *bu_out = 0.0f;
    } else {
        err = fri_mf_user_solve(p_out, bu_out, &it, items, values, n,
                                c->fit.reg, c->fit.reg_bias,
                                (int) c->fit.weighted, work, work_len);
    }
    fri_client_free_wipe(c, work, work_len * sizeof *work);
    return err;
}

fr_err
fri_client_refit(fr_client *c)
{
    const fri_cmodel *m = c->model;
    if (m == NULL) {
        return fri_client_fail(c, FR_ESTATE, "no model fetched yet");
    }
    fr_err err = fri_client_set_k(c, m->k);
    if (err != FR_OK) {
        return err;
    }
    if (c->fit.implicit && !m->implicit) {
        return fri_client_fail(c, FR_ESTATE,
                               "implicit fit needs an implicit model");
    }
    err = user_fit(c, c->items, c->values, c->ts, n_scorable(c, m), c->p,
                   &c->bu);
    if (err != FR_OK) {
        c->fitted = 0;
        return fri_client_fail(c, err, "user solve failed: %s",
                               fr_strerror(err));
    }
    c->fitted         = 1;
    c->trans_ready    = 0;
    c->fitted_version = m->version;
    c->fitted_gen     = c->inter_gen;
    return FR_OK;
}

fr_err
fri_client_ensure_fitted(fr_client *c)
{
    adopt_cached(c);
    if (c->model == NULL) {
        return fri_client_fail(c, FR_ESTATE, "no model fetched yet");
    }
    if (c->fitted && c->p_k == c->model->k &&
        c->fitted_version == c->model->version &&
        c->fitted_gen == c->inter_gen) {
        return FR_OK;
    }
    return fri_client_refit(c);
}

fr_err
fr_client_fold_in(fr_client *c)
{
    if (c == NULL) {
        return FR_EINVAL;
    }
    adopt_cached(c);
    return fri_client_refit(c);
}

// The implicit last-item term (common/recency.h) of the current fit:
// profile, kappa and every catalog item's score with the term, computed
// once per fit on first use (one pass over the catalog); the
// rankings and predictions of that fit then read the scores.
static fr_err
trans_prepare(fr_client *c)
{
    if (c->trans_ready) {
        return FR_OK;
    }
    const fri_cmodel *m = c->model;
    c->trans_kappa      = 0.0f;
    if (!m->implicit || !(c->trans_w > 0.0f) || c->trans_t == NULL ||
        c->p_k != m->k || m->q_inv_norm == NULL ||
        !fri_transition_profile(c->trans_t, m->Q, m->q_inv_norm, m->n_items,
                                m->k, c->items, c->ts, c->n_inter)) {
        c->trans_ready = 1;
        return FR_OK;
    }
    if (c->trans_n != m->n_items) {
        float *sc = fri_client_calloc(c, m->n_items, sizeof *sc);
        if (sc == NULL) {
            return fri_client_fail(c, FR_ENOMEM, "out of memory (ranking)");
        }
        fri_client_free_wipe(c, c->trans_scores,
                             c->trans_n * sizeof *c->trans_scores);
        c->trans_scores = sc;
        c->trans_n      = m->n_items;
    }
    float *cs = fri_client_calloc(c, m->n_items, sizeof *cs);
    if (cs == NULL) {
        return fri_client_fail(c, FR_ENOMEM, "out of memory (ranking)");
    }
    c->trans_kappa = fri_transition_scores(
        c->trans_scores, cs, m->Q, m->q_inv_norm, m->bi, m->mu + c->bu,
        m->n_items, m->k, c->p, c->trans_t, c->trans_w);
    fri_client_free_wipe(c, cs, m->n_items * sizeof *cs);
    c->trans_ready = 1;
    return FR_OK;
}

// Item i's score under the fitted model: the factor model's prediction,
// with the last-item term for an implicit model that has one.
static float
item_score(const fr_client *c, const fri_mf_items *it, uint32_t i)
{
    return c->trans_kappa != 0.0f ? c->trans_scores[i]
                                  : fri_mf_predict_with(it, c->p, c->bu, i);
}

fr_err
fr_client_predict(fr_client *c, uint32_t item, float *score)
{
    if (c == NULL || score == NULL) {
        return c == NULL ? FR_EINVAL : fri_client_fail(c, FR_EINVAL,
                                                       "score is NULL");
    }
    fr_err err = fri_client_ensure_fitted(c);
    if (err != FR_OK) {
        return err;
    }
    if (item >= c->model->n_items) {
        return fri_client_fail(c, FR_ENOENT, "item %u outside the catalog",
                               (unsigned) item);
    }
    err = trans_prepare(c);
    if (err != FR_OK) {
        return err;
    }
    fri_mf_items it = items_of(c->model);
    *score          = item_score(c, &it, item);
    return FR_OK;
}

fr_err
fr_client_predict_at(fr_client *c, uint32_t item, int64_t ts, float *score)
{
    fr_err err = fr_client_predict(c, item, score);
    if (err != FR_OK || ts == 0 || c->model->implicit) {
        return err;
    }
    // The user's bias on that day: the ridge mean of the residuals of the
    // day's own ratings under the fitted model (common/tbias.h; it never
    // leaves the device). Interactions without a timestamp never match.
    fri_mf_items it  = items_of(c->model);
    uint32_t     day = fri_tbias_day(ts);
    double       sum = 0.0;
    size_t       n   = 0;
    for (size_t j = 0; j < c->n_inter; j++) {
        if (c->ts[j] == 0 || fri_tbias_day(c->ts[j]) != day ||
            c->items[j] >= c->model->n_items) {
            continue;
        }
        sum += (double) c->values[j] -
               fri_mf_predict_with(&it, c->p, c->bu, c->items[j]);
        n++;
    }
    *score += (float) (sum / ((double) n + FRI_TBIAS_REG_USER_DAY));
    return FR_OK;
}

// A variational model carries each item's posterior variances, and ranks
// item i by the lower bound mean - FRI_RANK_Z sd of its predicted score
// (sd^2 = sum_a p_a^2 var(q_ia) + var(b_i)): an item few or no devices have
// rated keeps a prior-sized variance and does not outrank well-known items
// on its prior mean alone. A point-estimate model ranks by the mean.
// Returns 0 for a non-finite score (never recommended).
#define FRI_RANK_Z 1.0f

static int
rank_score(const fri_cmodel *m, const float *p, float mean, uint32_t i,
           float *key)
{
    *key = mean;
    if (m->vb) {
        const size_t k   = m->k;
        const float *var = m->item_var + (size_t) i * (k + 1);
        double       v   = var[k];
        for (size_t a = 0; a < k; a++) {
            v += (double) p[a] * p[a] * var[a];
        }
        *key = mean - FRI_RANK_Z * (float) sqrt(v);
    }
    return isfinite(*key);
}

// Min-heap on (score, then larger item id counts as smaller) kept in the
// caller's output arrays: the root is the weakest of the current top n.
static int
weaker(float sa, uint32_t ia, float sb, uint32_t ib)
{
    return sa < sb || (sa == sb && ia > ib);
}

static void
sift_down(uint32_t *items, float *scores, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && weaker(scores[l], items[l], scores[w], items[w])) {
            w = l;
        }
        if (r < n && weaker(scores[r], items[r], scores[w], items[w])) {
            w = r;
        }
        if (w == i) {
            return;
        }
        float    ts = scores[i];
        uint32_t ti = items[i];
        scores[i]   = scores[w];
        items[i]    = items[w];
        scores[w]   = ts;
        items[w]    = ti;
        i           = w;
    }
}

static void
sift_up(uint32_t *items, float *scores, size_t i)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!weaker(scores[i], items[i], scores[parent], items[parent])) {
            return;
        }
        float    ts     = scores[i];
        uint32_t ti     = items[i];
        scores[i]       = scores[parent];
        items[i]        = items[parent];
        scores[parent]  = ts;
        items[parent]   = ti;
        i               = parent;
    }
}

// Heap sort of a top-n heap: repeatedly move the weakest to the end, so
// the arrays end best first.
static void
heap_sort(uint32_t *items, float *scores, size_t have)
{
    for (size_t end = have; end > 1; end--) {
        float    ts     = scores[0];
        uint32_t ti     = items[0];
        scores[0]       = scores[end - 1];
        items[0]        = items[end - 1];
        scores[end - 1] = ts;
        items[end - 1]  = ti;
        sift_down(items, scores, end - 1, 0);
    }
}

// The n best-ranked items the user has not interacted with, best first,
// into items/scores (*have of them). The model must be fitted.
static void
top_ranked(
    fr_client *c, uint32_t *items, float *scores, size_t n, size_t *have_out)
{
    fri_mf_items it   = items_of(c->model);
    size_t       have = 0;
    size_t       seen = 0; // walks the sorted interactions alongside i
    for (uint32_t i = 0; i < it.n_items && n > 0; i++) {
        while (seen < c->n_inter && c->items[seen] < i) {
            seen++;
        }
        if (seen < c->n_inter && c->items[seen] == i) {
            continue;
        }
        float s, mean = item_score(c, &it, i);
        // A rank key never exceeds the mean: an item whose mean is below
        // the weakest kept key cannot enter (skips the variance pass).
        if (have == n && mean < scores[0]) {
            continue;
        }
        if (!rank_score(c->model, c->p, mean, i, &s)) {
            continue;
        }
        if (have < n) {
            items[have]  = i;
            scores[have] = s;
            sift_up(items, scores, have);
            have++;
        } else if (weaker(scores[0], items[0], s, i)) {
            items[0]  = i;
            scores[0] = s;
            sift_down(items, scores, have, 0);
        }
    }
    heap_sort(items, scores, have);
    *have_out = have;
}

static fr_err
recommend_begin(fr_client *c, const uint32_t *items, const float *scores,
    size_t n, size_t *n_out)
{
    if (c == NULL) {
        return FR_EINVAL;
    }
    if (n_out == NULL || (n > 0 && (items == NULL || scores == NULL))) {
        return fri_client_fail(c, FR_EINVAL, "NULL output buffer");
    }
    *n_out     = 0;
    fr_err err = fri_client_ensure_fitted(c);
    return err == FR_OK ? trans_prepare(c) : err;
}

fr_err
fr_client_recommend(
    fr_client *c, uint32_t *items, float *scores, size_t n, size_t *n_out)
{
    fr_err err = recommend_begin(c, items, scores, n, n_out);
    if (err == FR_OK) {
        top_ranked(c, items, scores, n, n_out);
    }
    return err;
}

// Maximal marginal relevance over a candidate pool of the best-ranked
// items: relevance is the rank score min-max scaled to [0, 1] over the
// pool, similarity the cosine of the item factors (0 for a zero vector).
// A pool of FRI_MMR_POOL x n (at least FRI_MMR_POOL_MIN) keeps the cost at
// one ranking pass plus pool x n x k, and keeps the picks among items the
// model ranks well.
#define FRI_MMR_POOL 5u
#define FRI_MMR_POOL_MIN 50u

fr_err
fr_client_recommend_diverse(fr_client *c, float lambda, uint32_t *items,
    float *scores, size_t n, size_t *n_out)
{
    fr_err err = recommend_begin(c, items, scores, n, n_out);
    if (err != FR_OK) {
        return err;
    }
    if (!(lambda >= 0.0f && lambda <= 1.0f)) {
        return fri_client_fail(
            c, FR_EINVAL, "diversity lambda must be in [0, 1]");
    }
    if (n == 0) {
        return FR_OK;
    }
    const fri_cmodel *m = c->model;
    const size_t      k = m->k;
    size_t pool         = n > SIZE_MAX / FRI_MMR_POOL ? n : n * FRI_MMR_POOL;
    pool                = pool < FRI_MMR_POOL_MIN ? FRI_MMR_POOL_MIN : pool;
    pool                = pool > m->n_items ? m->n_items : pool;
    if (lambda == 1.0f || pool <= n) {
        top_ranked(c, items, scores, n, n_out); // nothing to trade
        return FR_OK;
    }
    uint32_t *ci  = fri_client_calloc(c, pool, sizeof *ci);
    float    *cs  = fri_client_calloc(c, pool, sizeof *cs);
    float    *sim = fri_client_calloc(c, pool, sizeof *sim); // max so far
    float    *nrm = fri_client_calloc(c, pool, sizeof *nrm);
    if (ci == NULL || cs == NULL || sim == NULL || nrm == NULL) {
        fri_client_free(c, ci);
        fri_client_free(c, cs);
        fri_client_free(c, sim);
        fri_client_free(c, nrm);
        return fri_client_fail(c, FR_ENOMEM, "out of memory (recommend)");
    }
    size_t have = 0;
    top_ranked(c, ci, cs, pool, &have);
    const float lo   = have > 0 ? cs[have - 1] : 0.0f;
    const float span = have > 0 ? cs[0] - lo : 0.0f;
    for (size_t j = 0; j < have; j++) {
        const float *q = m->Q + (size_t)ci[j] * k;
        double       s = 0.0;
        for (size_t a = 0; a < k; a++) {
            s += (double)q[a] * q[a];
        }
        nrm[j] = (float)sqrt(s);
        sim[j] = -1.0f; // nothing picked yet: no redundancy
    }
    size_t out = 0;
    while (out < n && out < have) {
        // Ties go to the better-ranked candidate (lower index).
        size_t best = SIZE_MAX;
        float  bv   = 0.0f;
        for (size_t j = 0; j < have; j++) {
            if (isnan(sim[j])) {
                continue; // picked
            }
            float rel = span > 0.0f ? (cs[j] - lo) / span : 1.0f;
            float red = out == 0 ? 0.0f : sim[j];
            float v   = lambda * rel - (1.0f - lambda) * red;
            if (best == SIZE_MAX || v > bv) {
                best = j;
                bv   = v;
            }
        }
        items[out]  = ci[best];
        scores[out] = cs[best];
        out++;
        sim[best]       = NAN;
        const float *qb = m->Q + (size_t)ci[best] * k;
        for (size_t j = 0; j < have; j++) {
            if (isnan(sim[j])) {
                continue;
            }
            float cos = 0.0f;
            if (nrm[j] > 0.0f && nrm[best] > 0.0f) {
                const float *q   = m->Q + (size_t)ci[j] * k;
                double       dot = 0.0;
                for (size_t a = 0; a < k; a++) {
                    dot += (double)q[a] * qb[a];
                }
                cos = (float)(dot / ((double)nrm[j] * nrm[best]));
            }
            sim[j] = cos > sim[j] ? cos : sim[j];
        }
    }
    fri_client_free(c, ci);
    fri_client_free(c, cs);
    fri_client_free(c, sim);
    fri_client_free(c, nrm);
    *n_out = out;
    return FR_OK;
}

// Leave-one-out scores of item for every scorable interaction j into
// loo[j]: the item's prediction after a fold-in without j. The ridge and
// the variational fold-ins have closed forms (fri_mf_user_loo,
// fri_vbmf_user_loo) that also skip (NaN) every j whose effect full -
// loo[j] provably cannot be among the top largest; the implicit fold-in
// runs once per interaction, the same code path as recommendations.
static fr_err
loo_scores(fr_client *c, uint32_t item, float full, size_t top, size_t nj,
           float *loo)
{
    const fri_cmodel *m  = c->model;
    fri_mf_items      it = items_of(m);
    if (!m->implicit && !c->fit.implicit && nj >= 2) {
        const size_t   tw = top < nj ? top : 0;
        size_t         wl = m->vb ? fri_vbmf_loo_work_len(m->k, tw)
                                  : fri_mf_loo_work_len(m->k, tw);
        double        *w  = fri_client_calloc(c, wl, sizeof *w);
        fri_bpmf_prior pr = {m->k + 1, m->umean, m->uprec};
        if (w == NULL) {
            return FR_ENOMEM;
        }
        fr_err err =
            m->vb ? fri_vbmf_user_loo(loo, &it, m->item_var, c->items,
                                      c->values, nj, &pr, m->beta, c->svdpp,
                                      item, full, top, w, wl)
                  : fri_mf_user_loo(loo, &it, c->items, c->values, nj,
                                    c->fit.reg, c->fit.reg_bias,
                                    (int) c->fit.weighted, item, full, top,
                                    w, wl);
        fri_client_free_wipe(c, w, wl * sizeof *w);
        if (err != FR_EINTERNAL) {
            return err;
        } // else: numerically delicate; the direct refits below decide
    }
    const size_t k = m->k, rest = nj - 1, nr = rest > 0 ? rest : 1;
    uint32_t    *ri  = fri_client_calloc(c, nr, sizeof *ri);
    float       *rv  = fri_client_calloc(c, nr, sizeof *rv);
    int64_t     *rt  = fri_client_calloc(c, nr, sizeof *rt);
    float       *p   = fri_client_calloc(c, k, sizeof *p);
    // An implicit model's score carries the last-item term, which depends
    // on the history (its newest item) and on p (its scale): each
    // leave-one-out score is recomputed with both, one catalog pass each.
    const int term = m->implicit && c->trans_w > 0.0f &&
                     m->q_inv_norm != NULL && c->trans_t != NULL;
    float    *sc   = term ? fri_client_calloc(c, m->n_items, sizeof *sc) : NULL;
    float    *cs   = term ? fri_client_calloc(c, m->n_items, sizeof *cs) : NULL;
    float    *tv   = term ? fri_client_calloc(c, k, sizeof *tv) : NULL;
    fr_err    err  = FR_OK;
    if (ri == NULL || rv == NULL || rt == NULL || p == NULL ||
        (term && (sc == NULL || cs == NULL || tv == NULL))) {
        err = FR_ENOMEM;
    }
    for (size_t j = 0; j < nj && err == FR_OK; j++) {
        // The interactions without j, still sorted.
        memcpy(ri, c->items, j * sizeof *ri);
        memcpy(rv, c->values, j * sizeof *rv);
        memcpy(ri + j, c->items + j + 1, (rest - j) * sizeof *ri);
        memcpy(rv + j, c->values + j + 1, (rest - j) * sizeof *rv);
        memcpy(rt, c->ts, j * sizeof *rt);
        memcpy(rt + j, c->ts + j + 1, (rest - j) * sizeof *rt);
        float bu = 0.0f;
        err      = user_fit(c, ri, rv, rt, rest, p, &bu);
        loo[j]   = fri_mf_predict_with(&it, p, bu, item);
        if (err == FR_OK && term &&
            fri_transition_profile(tv, m->Q, m->q_inv_norm, m->n_items,
                                   m->k, ri, rt, rest) &&
            fri_transition_scores(sc, cs, m->Q, m->q_inv_norm, m->bi,
                                  m->mu + bu, m->n_items, m->k, p, tv,
                                  c->trans_w) != 0.0f) {
            loo[j] = sc[item];
        }
    }
    fri_client_free_wipe(c, sc, term ? m->n_items * sizeof *sc : 0);
    fri_client_free_wipe(c, cs, term ? m->n_items * sizeof *cs : 0);
    fri_client_free_wipe(c, tv, term ? k * sizeof *tv : 0);
    fri_client_free_wipe(c, ri, nr * sizeof *ri);
    fri_client_free_wipe(c, rv, nr * sizeof *rv);
    fri_client_free_wipe(c, rt, nr * sizeof *rt);
    fri_client_free_wipe(c, p, k * sizeof *p);
    return err;
}

// weights[j] = score(item) - its leave-one-out score without interaction
// j (exact, loo_scores), the n largest kept, largest first.
fr_err
fr_client_explain(fr_client *c, uint32_t item, uint32_t *items,
                  float *weights, size_t n, size_t *n_out)
{
    if (c == NULL) {
        return FR_EINVAL;
    }
    if (n_out == NULL || (n > 0 && (items == NULL || weights == NULL))) {
        return fri_client_fail(c, FR_EINVAL, "NULL output buffer");
    }
    *n_out     = 0;
    fr_err err = fri_client_ensure_fitted(c);
    if (err != FR_OK) {
        return err;
    }
    const fri_cmodel *m = c->model;
    if (item >= m->n_items) {
        return fri_client_fail(c, FR_ENOENT, "item %u outside the catalog",
                               (unsigned) item);
    }
    const size_t nj = n_scorable(c, m);
    if (n == 0 || nj == 0) {
        return FR_OK;
    }
    err = trans_prepare(c);
    if (err != FR_OK) {
        return err;
    }
    fri_mf_items it   = items_of(m);
    const float  full = item_score(c, &it, item); // what predict reports
    float       *loo  = fri_client_calloc(c, nj, sizeof *loo);
    if (loo == NULL) {
        return fri_client_fail(c, FR_ENOMEM, "out of memory (explain)");
    }
    err = loo_scores(c, item, full, n, nj, loo);
    if (err != FR_OK) {
        fri_client_free_wipe(c, loo, nj * sizeof *loo);
        return fri_client_fail(c, err, "explanation failed: %s",
                               fr_strerror(err));
    }
    size_t have = 0;
    for (size_t j = 0; j < nj; j++) {
        float    w  = full - loo[j];
        uint32_t id = c->items[j];
        if (!isfinite(w)) {
            continue;
        }
        // Keep the n largest effects (min-heap on the weakest).
        if (have < n) {
            items[have]   = id;
            weights[have] = w;
            sift_up(items, weights, have);
            have++;
        } else if (weaker(weights[0], items[0], w, id)) {
            items[0]   = id;
            weights[0] = w;
            sift_down(items, weights, have, 0);
        }
    }
    fri_client_free_wipe(c, loo, nj * sizeof *loo);
    heap_sort(items, weights, have);
    *n_out = have;
    return FR_OK;
}
