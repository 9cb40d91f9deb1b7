// On-device fold-in, prediction and top-n recommendation against the model
// in use.
#include <math.h>
#include <string.h>

#include "client_internal.h"
#include "mf.h"

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

fr_err
fri_client_refit(fr_client *c)
{
    const fri_cmodel *m = c->model;
    if (m == NULL) {
        return fri_client_fail(c, FR_ESTATE, "no model fetched yet");
    }
    // Interactions outside the catalog cannot be scored; they are kept but
    // skipped, so count the usable prefix (items are sorted).
    size_t n = 0;
    while (n < c->n_inter && c->items[n] < m->n_items) {
        n++;
    }
    fr_err err = fri_client_set_k(c, m->k);
    if (err != FR_OK) {
        return err;
    }
    size_t work_len = fri_mf_work_len(m->k);
    float *work     = fri_client_calloc(c, work_len, sizeof *work);
    if (work == NULL) {
        return fri_client_fail(c, FR_ENOMEM, "out of memory (fold-in)");
    }
    fri_mf_items it = items_of(m);
    if (m->implicit || c->fit.implicit) {
        if (!m->implicit) {
            fri_client_free_wipe(c, work, work_len * sizeof *work);
            return fri_client_fail(c, FR_ESTATE,
                                   "implicit fit needs an implicit model");
        }
        err   = fri_mf_implicit_user_solve(c->p, &it, m->qtq, c->items,
                                           c->values, n, c->fit.alpha,
                                           c->fit.reg, work, work_len);
        c->bu = 0.0f;
    } else if (m->vb) {
        err = fri_client_vb_solve(c, NULL); // posterior mean
    } else {
        err = fri_mf_user_solve(c->p, &c->bu, &it, c->items, c->values, n,
                                c->fit.reg, c->fit.reg_bias,
                                (int) c->fit.weighted, work, work_len);
    }
    fri_client_free_wipe(c, work, work_len * sizeof *work);
    if (err != FR_OK) {
        c->fitted = 0;
        return fri_client_fail(c, err, "user solve failed: %s",
                               fr_strerror(err));
    }
    c->fitted         = 1;
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
    fri_mf_items it = items_of(c->model);
    *score          = fri_mf_predict_with(&it, c->p, c->bu, item);
    return FR_OK;
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

fr_err
fr_client_recommend(fr_client *c, uint32_t *items, float *scores, size_t n,
                    size_t *n_out)
{
    if (c == NULL) {
        return FR_EINVAL;
    }
    if (n_out == NULL || (n > 0 && (items == NULL || scores == NULL))) {
        return fri_client_fail(c, FR_EINVAL, "NULL output buffer");
    }
    *n_out     = 0;
    fr_err err = fri_client_ensure_fitted(c);
    if (err != FR_OK) {
        return err;
    }
    if (n == 0) {
        return FR_OK;
    }
    fri_mf_items it   = items_of(c->model);
    size_t       have = 0;
    size_t       seen = 0; // walks the sorted interactions alongside i
    for (uint32_t i = 0; i < it.n_items; i++) {
        while (seen < c->n_inter && c->items[seen] < i) {
            seen++;
        }
        if (seen < c->n_inter && c->items[seen] == i) {
            continue;
        }
        float s = fri_mf_predict_with(&it, c->p, c->bu, i);
        if (!isfinite(s)) {
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
    // Heap sort: repeatedly move the weakest to the end -> best first.
    for (size_t end = have; end > 1; end--) {
        float    ts    = scores[0];
        uint32_t ti    = items[0];
        scores[0]      = scores[end - 1];
        items[0]       = items[end - 1];
        scores[end - 1] = ts;
        items[end - 1]  = ti;
        sift_down(items, scores, end - 1, 0);
    }
    *n_out = have;
    return FR_OK;
}
