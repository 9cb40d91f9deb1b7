#include "metrics.h"
#include "recency.h"
#include "sorted.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef FR_WITH_BLAS
#include <cblas.h>
#endif

fr_err
fri_rmse_mae(double *rmse, double *mae, const float *pred, const float *truth,
             size_t n)
{
    if (rmse == NULL || mae == NULL || pred == NULL || truth == NULL ||
        n == 0) {
        return FR_EINVAL;
    }
    double se = 0.0, ae = 0.0;
    for (size_t j = 0; j < n; j++) {
        double e = (double)truth[j] - (double)pred[j];
        se += e * e;
        ae += fabs(e);
    }
    *rmse = sqrt(se / (double)n);
    *mae = ae / (double)n;
    return FR_OK;
}

fr_err
fri_eval_rating(fri_rating_metrics *out, const fri_mf_model *m,
                const fri_triplet *t, size_t n, float clamp_lo,
                float clamp_hi)
{
    if (out == NULL || m == NULL || t == NULL || n == 0) {
        return FR_EINVAL;
    }
    double se = 0.0, ae = 0.0;
    for (size_t j = 0; j < n; j++) {
        uint32_t u = t[j].user, i = t[j].item;
        float pr;
        if (u < m->n_users && i < m->n_items) {
            pr = fri_mf_predict(m, u, i);
        } else {
            pr = m->mu + (u < m->n_users ? m->bu[u] : 0.0f) +
                 (i < m->n_items ? m->bi[i] : 0.0f);
        }
        if (clamp_lo < clamp_hi) {
            pr = pr < clamp_lo ? clamp_lo : (pr > clamp_hi ? clamp_hi : pr);
        }
        double e = (double)t[j].rating - (double)pr;
        se += e * e;
        ae += fabs(e);
    }
    out->rmse = sqrt(se / (double)n);
    out->mae = ae / (double)n;
    out->n = n;
    return FR_OK;
}

// "a ranks before b": higher score, ties to the lower index.
static int
better(float sa, uint32_t ia, float sb, uint32_t ib)
{
    return sa > sb || (sa == sb && ia < ib);
}

fr_err
fri_topk(uint32_t *out_idx, float *out_score, size_t k, size_t *n_out,
         const float *scores, uint32_t n, const uint32_t *exclude,
         size_t n_exclude)
{
    if (n_out == NULL) {
        return FR_EINVAL;
    }
    *n_out = 0;
    if ((k > 0 && out_idx == NULL) || (n > 0 && scores == NULL) ||
        (n_exclude > 0 && exclude == NULL)) {
        return FR_EINVAL;
    }
    for (size_t j = 1; j < n_exclude; j++) {
        if (exclude[j] < exclude[j - 1]) {
            return FR_EINVAL;
        }
    }
    if (k == 0) {
        return FR_OK;
    }
    // Min-heap (root = worst kept candidate) of indices held in out_idx;
    // scores are looked up in the input, so no extra memory is needed.
    size_t h = 0, e = 0;
    for (uint32_t i = 0; i < n; i++) {
        while (e < n_exclude && exclude[e] < i) {
            e++;
        }
        if (e < n_exclude && exclude[e] == i) {
            continue;
        }
        float s = scores[i];
        if (isnan(s)) {
            continue;
        }
        if (h < k) {
            out_idx[h++] = i;
            size_t c = h - 1;
            while (c > 0) {
                size_t p = (c - 1) / 2;
                if (!better(scores[out_idx[p]], out_idx[p],
                            scores[out_idx[c]], out_idx[c])) {
                    break;
                }
                uint32_t t = out_idx[p];
                out_idx[p] = out_idx[c];
                out_idx[c] = t;
                c = p;
            }
        } else if (better(s, i, scores[out_idx[0]], out_idx[0])) {
            out_idx[0] = i;
            size_t r = 0;
            for (;;) {
                size_t l = 2 * r + 1, w = r;
                if (l < h && better(scores[out_idx[w]], out_idx[w],
                                    scores[out_idx[l]], out_idx[l])) {
                    w = l;
                }
                if (l + 1 < h &&
                    better(scores[out_idx[w]], out_idx[w],
                           scores[out_idx[l + 1]], out_idx[l + 1])) {
                    w = l + 1;
                }
                if (w == r) {
                    break;
                }
                uint32_t t = out_idx[r];
                out_idx[r] = out_idx[w];
                out_idx[w] = t;
                r = w;
            }
        }
    }
    // Heap-sort in place: repeatedly move the worst to the end.
    for (size_t end = h; end > 1; end--) {
        uint32_t t = out_idx[0];
        out_idx[0] = out_idx[end - 1];
        out_idx[end - 1] = t;
        size_t r = 0, lim = end - 1;
        for (;;) {
            size_t l = 2 * r + 1, w = r;
            if (l < lim && better(scores[out_idx[w]], out_idx[w],
                                  scores[out_idx[l]], out_idx[l])) {
                w = l;
            }
            if (l + 1 < lim && better(scores[out_idx[w]], out_idx[w],
                                      scores[out_idx[l + 1]], out_idx[l + 1])) {
                w = l + 1;
            }
            if (w == r) {
                break;
            }
            uint32_t tt = out_idx[r];
            out_idx[r] = out_idx[w];
            out_idx[w] = tt;
            r = w;
        }
    }
    if (out_score != NULL) {
        for (size_t j = 0; j < h; j++) {
            out_score[j] = scores[out_idx[j]];
        }
    }
    *n_out = h;
    return FR_OK;
}

fr_err
fri_score_users(float *out, size_t out_len, const fri_mf_model *m,
                const uint32_t *users, size_t n_users)
{
    if (out == NULL || m == NULL || (n_users > 0 && users == NULL)) {
        return FR_EINVAL;
    }
    const size_t ni = m->n_items;
    if (n_users > 0 && out_len / n_users < ni) {
        return FR_ENOSPC;
    }
    for (size_t r = 0; r < n_users; r++) {
        if (users[r] >= m->n_users) {
            return FR_EINVAL;
        }
    }
#ifdef FR_WITH_BLAS
    const size_t k = m->k;
    if (n_users > 1 && n_users <= INT32_MAX && ni <= INT32_MAX) {
        float *Pb = malloc(n_users * k * sizeof(float));
        if (Pb == NULL) {
            return FR_ENOMEM;
        }
        for (size_t r = 0; r < n_users; r++) {
            memcpy(Pb + r * k, m->P + (size_t)users[r] * k,
                   k * sizeof(float));
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n_users,
                    (int)ni, (int)k, 1.0f, Pb, (int)k, m->Q, (int)k, 0.0f,
                    out, (int)ni);
        free(Pb);
        for (size_t r = 0; r < n_users; r++) {
            float base = m->mu + m->bu[users[r]];
            float *o = out + r * ni;
            for (size_t i = 0; i < ni; i++) {
                o[i] += base + m->bi[i];
            }
        }
        return FR_OK;
    }
#endif
    for (size_t r = 0; r < n_users; r++) {
        uint32_t u = users[r];
        float *o = out + r * ni;
        for (size_t i = 0; i < ni; i++) {
            o[i] = fri_mf_predict(m, u, (uint32_t)i);
        }
    }
    return FR_OK;
}

void
fri_rank_config_init(fri_rank_config *c)
{
    memset(c, 0, sizeof(*c));
    c->k = 10;
    c->protocol = FRI_RANK_FULL;
    c->n_neg = 100;
    c->seed = 1;
    c->min_rating = 0.0f;
}

// Items of the sorted list v (n entries) that are < n_items, without those
// also in the sorted list w: the exclusion count for the candidate pool.
static size_t
count_excluded(uint32_t n_items, const uint32_t *v, size_t n,
               const uint32_t *w, size_t nw)
{
    size_t cnt = 0;
    for (size_t j = 0; j < n; j++) {
        if (v[j] < n_items && (j == 0 || v[j] != v[j - 1]) &&
            !fri_in_sorted(w, nw, v[j])) {
            cnt++;
        }
    }
    return cnt;
}

fr_err
fri_sample_negatives(uint32_t *out, size_t out_cap, size_t *n_out,
                     fri_rng *rng, uint32_t n_items, const uint32_t *excl_a,
                     size_t n_a, const uint32_t *excl_b, size_t n_b,
                     uint32_t n_neg, uint8_t *mark)
{
    if (n_out == NULL) {
        return FR_EINVAL;
    }
    *n_out = 0;
    if (rng == NULL || mark == NULL || (out_cap > 0 && out == NULL) ||
        (n_a > 0 && excl_a == NULL) || (n_b > 0 && excl_b == NULL)) {
        return FR_EINVAL;
    }
    for (size_t j = 1; j < n_a; j++) {
        if (excl_a[j] < excl_a[j - 1]) {
            return FR_EINVAL;
        }
    }
    for (size_t j = 1; j < n_b; j++) {
        if (excl_b[j] < excl_b[j - 1]) {
            return FR_EINVAL;
        }
    }
    size_t n_excl = count_excluded(n_items, excl_a, n_a, NULL, 0) +
                    count_excluded(n_items, excl_b, n_b, excl_a, n_a);
    size_t n_cand = n_items - n_excl;
    if (n_neg == 0 || n_cand <= n_neg) {
        // Every candidate, ascending; no randomness consumed.
        if (out_cap < n_cand) {
            return FR_ENOSPC;
        }
        size_t got = 0;
        for (uint32_t i = 0; i < n_items; i++) {
            if (!fri_in_sorted(excl_a, n_a, i) && !fri_in_sorted(excl_b, n_b, i)) {
                out[got++] = i;
            }
        }
        *n_out = got;
        return FR_OK;
    }
    if (out_cap < n_neg) {
        return FR_ENOSPC;
    }
    // Rejection sampling: n_cand > n_neg, so each draw succeeds with
    // probability >= 1/n_items; the bound only guards a pathological rng.
    size_t   got = 0;
    uint64_t tries = 0, max_tries = (uint64_t)n_items * 64u + 1024u;
    while (got < n_neg && tries++ < max_tries) {
        uint32_t i = fri_rng_below(rng, n_items);
        if (mark[i] || fri_in_sorted(excl_a, n_a, i) ||
            fri_in_sorted(excl_b, n_b, i)) {
            continue;
        }
        mark[i] = 1;
        out[got++] = i;
    }
    // Completes deterministically from a random offset if the bound hit, so
    // the count is always exactly n_neg.
    uint32_t off = got < n_neg ? fri_rng_below(rng, n_items) : 0;
    for (uint32_t s = 0; got < n_neg && s < n_items; s++) {
        uint32_t i = (uint32_t)(((uint64_t)off + s) % n_items);
        if (!mark[i] && !fri_in_sorted(excl_a, n_a, i) &&
            !fri_in_sorted(excl_b, n_b, i)) {
            mark[i] = 1;
            out[got++] = i;
        }
    }
    for (size_t j = 0; j < got; j++) {
        mark[out[j]] = 0;
    }
    *n_out = got;
    return FR_OK;
}

#define SCORE_BATCH 128u

static fr_err
score_mf(const void *ctx, float *out, size_t out_len, const uint32_t *users,
         size_t n_users)
{
    return fri_score_users(out, out_len, ctx, users, n_users);
}

fri_scorer
fri_scorer_of_mf(const fri_mf_model *m)
{
    fri_scorer s = {score_mf, m, 0, 0, NULL, 0};
    if (m != NULL) {
        s.n_users = m->n_users;
        s.n_items = m->n_items;
        s.Q = m->Q;
        s.k = m->k;
    }
    return s;
}

fr_err
fri_eval_ranking(fri_rank_metrics *out, const fri_mf_model *m,
                 const fri_csr *train, const fri_csr *test,
                 const fri_rank_config *c)
{
    if (m == NULL) {
        return FR_EINVAL;
    }
    fri_scorer s = fri_scorer_of_mf(m);
    return fri_eval_ranking_with(out, &s, train, test, c);
}

fr_err
fri_eval_ranking_with(fri_rank_metrics *out, const fri_scorer *m,
                      const fri_csr *train, const fri_csr *test,
                      const fri_rank_config *c)
{
    if (out == NULL || m == NULL || m->score == NULL || train == NULL ||
        test == NULL || c == NULL || c->k == 0 || c->k > m->n_items ||
        train->ptr == NULL || test->ptr == NULL) {
        return FR_EINVAL;
    }
    memset(out, 0, sizeof(*out));
    const uint32_t K = c->k, ni = m->n_items;
    uint32_t nu = m->n_users;
    nu = test->n_rows < nu ? test->n_rows : nu;
    float *scores = malloc((size_t)SCORE_BATCH * ni * sizeof(float));
    uint32_t *users = malloc(SCORE_BATCH * sizeof(uint32_t));
    uint32_t *top = malloc(K * sizeof(uint32_t));
    uint32_t *rel = malloc(((size_t)ni + 1) * sizeof(uint32_t));
    uint8_t *covered = calloc(ni, 1);
    uint8_t *picked = calloc(ni, 1);
    // n_neg == 0 ranks against every candidate: room for the catalog.
    size_t plist_cap = c->n_neg == 0 || c->n_neg > ni ? ni : c->n_neg;
    uint32_t *plist = malloc((plist_cap + 1) * sizeof(uint32_t));
    if (scores == NULL || users == NULL || top == NULL || rel == NULL ||
        covered == NULL || picked == NULL || plist == NULL) {
        free(picked);
        free(plist);
        free(scores);
        free(users);
        free(top);
        free(rel);
        free(covered);
        return FR_ENOMEM;
    }
    fri_rng rng;
    fri_rng_seed(&rng, c->seed);
    double s_hr = 0, s_ndcg = 0, s_prec = 0, s_rec = 0;
    size_t n_cases = 0, n_eval_users = 0;
    fr_err e = FR_OK;
    uint32_t u0 = 0;
    while (u0 < nu && e == FR_OK) {
        // Next batch of users with relevant test items.
        size_t nb = 0;
        uint32_t u = u0;
        for (; u < nu && nb < SCORE_BATCH; u++) {
            int any = 0;
            for (size_t j = test->ptr[u]; j < test->ptr[u + 1]; j++) {
                if (test->idx[j] < ni && test->val[j] >= c->min_rating) {
                    any = 1;
                    break;
                }
            }
            if (any) {
                users[nb++] = u;
            }
        }
        u0 = u;
        if (nb == 0) {
            continue;
        }
        e = m->score(m->ctx, scores, (size_t)SCORE_BATCH * ni, users, nb);
        for (size_t r = 0; r < nb && e == FR_OK; r++) {
            uint32_t uu = users[r];
            const float *s = scores + r * ni;
            const uint32_t *seen = NULL;
            size_t n_seen = 0;
            if (uu < train->n_rows) {
                seen = train->idx + train->ptr[uu];
                n_seen = train->ptr[uu + 1] - train->ptr[uu];
            }
            size_t n_rel = 0;
            for (size_t j = test->ptr[uu]; j < test->ptr[uu + 1]; j++) {
                uint32_t i = test->idx[j];
                if (i < ni && test->val[j] >= c->min_rating &&
                    !fri_in_sorted(seen, n_seen, i)) {
                    rel[n_rel++] = i;
                }
            }
            if (n_rel == 0) {
                continue;
            }
            n_eval_users++;
            size_t n_top = 0;
            e = fri_topk(top, NULL, K, &n_top, s, ni, seen, n_seen);
            if (e != FR_OK) {
                break;
            }
            for (size_t t = 0; t < n_top; t++) {
                covered[top[t]] = 1;
            }
            if (c->protocol == FRI_RANK_FULL) {
                double dcg = 0.0, idcg = 0.0;
                size_t hits = 0;
                for (size_t t = 0; t < n_top; t++) {
                    if (fri_in_sorted(rel, n_rel, top[t])) {
                        hits++;
                        dcg += 1.0 / log2((double)t + 2.0);
                    }
                }
                for (size_t t = 0; t < K && t < n_rel; t++) {
                    idcg += 1.0 / log2((double)t + 2.0);
                }
                s_hr += hits > 0 ? 1.0 : 0.0;
                s_prec += (double)hits / K;
                s_rec += (double)hits / (double)n_rel;
                s_ndcg += dcg / idcg;
                n_cases++;
                continue;
            }
            // Sampled: each relevant item against fresh negatives.
            const uint32_t *tst = test->idx + test->ptr[uu];
            size_t n_tst = test->ptr[uu + 1] - test->ptr[uu];
            // One stream per user: the negatives do not depend on which
            // other users are evaluated, or in what order (a device can
            // draw its own).
            fri_rng_seed2(&rng, c->seed, uu);
            for (size_t t = 0; t < n_rel; t++) {
                float target = s[rel[t]];
                size_t got = 0;
                e = fri_sample_negatives(plist, plist_cap, &got, &rng, ni,
                                         seen, n_seen, tst, n_tst, c->n_neg,
                                         picked);
                if (e != FR_OK) {
                    break;
                }
                uint32_t rank = 0;
                for (size_t j = 0; j < got; j++) {
                    // Ties (and NaN) count against the held-out item.
                    if (!(s[plist[j]] < target)) {
                        rank++;
                    }
                }
                int hit = rank < K;
                s_hr += hit;
                s_rec += hit;
                s_prec += (double)hit / K;
                s_ndcg += hit ? 1.0 / log2((double)rank + 2.0) : 0.0;
                n_cases++;
            }
        }
    }
    if (e == FR_OK && n_cases == 0) {
        e = FR_EINVAL;
    }
    if (e == FR_OK) {
        size_t n_cov = 0;
        for (uint32_t i = 0; i < ni; i++) {
            n_cov += covered[i];
        }
        out->hr = s_hr / (double)n_cases;
        out->ndcg = s_ndcg / (double)n_cases;
        out->precision = s_prec / (double)n_cases;
        out->recall = s_rec / (double)n_cases;
        out->coverage = (double)n_cov / (double)ni;
        out->n_users = n_eval_users;
        out->n_cases = n_cases;
    }
    free(scores);
    free(users);
    free(top);
    free(rel);
    free(covered);
    free(picked);
    free(plist);
    return e;
}

fr_err
fri_eval_lists(fri_list_metrics *out, const fri_mf_model *m,
               const fri_csr *train, uint32_t K)
{
    if (m == NULL) {
        return FR_EINVAL;
    }
    fri_scorer s = fri_scorer_of_mf(m);
    return fri_eval_lists_with(out, &s, train, K);
}

fr_err
fri_eval_lists_with(fri_list_metrics *out, const fri_scorer *m,
                    const fri_csr *train, uint32_t K)
{
    if (out == NULL || m == NULL || m->score == NULL || train == NULL ||
        K == 0 || K > 255 || K > m->n_items) {
        return FR_EINVAL;
    }
    const uint32_t ni = m->n_items;
    const uint32_t nu = train->n_rows < m->n_users ? train->n_rows
                                                   : m->n_users;
    float    *scores = malloc((size_t)SCORE_BATCH * ni * sizeof(float));
    uint32_t *users  = malloc(SCORE_BATCH * sizeof(uint32_t));
    uint32_t *lists  = malloc(((size_t)nu + 1) * K * sizeof(uint32_t));
    uint8_t  *lens   = calloc((size_t)nu + 1, 1);
    uint32_t *pop    = calloc(ni, sizeof(uint32_t));
    fr_err    e      = FR_OK;
    if (scores == NULL || users == NULL || lists == NULL || lens == NULL ||
        pop == NULL) {
        e = FR_ENOMEM;
    }
    for (uint32_t u = 0; u < nu && e == FR_OK; u++) {
        for (size_t j = train->ptr[u]; j < train->ptr[u + 1]; j++) {
            if (train->idx[j] < ni) {
                pop[train->idx[j]]++;
            }
        }
    }
    size_t n_lists = 0;
    for (uint32_t u0 = 0; u0 < nu && e == FR_OK;) {
        size_t nb = 0;
        for (; u0 < nu && nb < SCORE_BATCH; u0++) {
            if (train->ptr[u0 + 1] > train->ptr[u0]) {
                users[nb++] = u0;
            }
        }
        if (nb == 0) {
            continue;
        }
        e = m->score(m->ctx, scores, (size_t)SCORE_BATCH * ni, users, nb);
        for (size_t r = 0; r < nb && e == FR_OK; r++) {
            uint32_t u = users[r];
            size_t   got = 0;
            e = fri_topk(lists + n_lists * K, NULL, K, &got, scores + r * ni,
                         ni, train->idx + train->ptr[u],
                         train->ptr[u + 1] - train->ptr[u]);
            lens[n_lists++] = (uint8_t)got;
        }
    }
    if (e == FR_OK) {
        e = fri_list_metrics_eval(out, lists, lens, n_lists, K, ni, pop, nu,
                                  m->Q, m->k);
    }
    free(scores);
    free(users);
    free(lists);
    free(lens);
    free(pop);
    return e;
}

static fr_err
score_last_item(const void *ctx, float *out, size_t out_len,
    const uint32_t *users, size_t n_users)
{
    const fri_last_item_scorer *ls = ctx;
    const uint32_t              ni = ls->base.n_items, k = ls->base.k;
    fr_err e = ls->base.score(ls->base.ctx, out, out_len, users, n_users);
    for (size_t r = 0; r < n_users && e == FR_OK; r++) {
        uint32_t u = users[r];
        if (u >= ls->train->n_rows) {
            continue;
        }
        size_t a = ls->train->ptr[u], n = ls->train->ptr[u + 1] - a;
        if (fri_transition_profile(ls->t, ls->base.Q, ls->inv_norm, ni, k,
                ls->train->idx + a, ls->ts + a, n)) {
            (void)fri_transition_add(out + r * (size_t)ni, ls->scratch,
                ls->base.Q, ls->inv_norm, ni, k, ls->t, ls->w);
        }
    }
    return e;
}

fr_err
fri_last_item_scorer_init(fri_last_item_scorer *ls, fri_scorer *out,
    const fri_scorer *base, const fri_csr *train, const int64_t *ts,
    float w)
{
    memset(ls, 0, sizeof(*ls));
    if (out == NULL || base == NULL || train == NULL || !(w >= 0.0f)) {
        return FR_EINVAL;
    }
    if (!(w > 0.0f) || ts == NULL || base->Q == NULL || base->k == 0) {
        *out = *base; // no term to add: the base scorer as it is
        return FR_OK;
    }
    ls->base     = *base;
    ls->train    = train;
    ls->ts       = ts;
    ls->w        = w;
    ls->inv_norm = calloc(base->n_items > 0 ? base->n_items : 1, sizeof(float));
    ls->scratch  = calloc(base->n_items > 0 ? base->n_items : 1, sizeof(float));
    ls->t        = calloc(base->k, sizeof(float));
    if (ls->inv_norm == NULL || ls->scratch == NULL || ls->t == NULL) {
        fri_last_item_scorer_free(ls);
        return FR_ENOMEM;
    }
    fri_transition_inv_norms(ls->inv_norm, base->Q, base->n_items, base->k);
    *out       = *base;
    out->score = score_last_item;
    out->ctx   = ls;
    return FR_OK;
}

void
fri_last_item_scorer_free(fri_last_item_scorer *ls)
{
    if (ls == NULL) {
        return;
    }
    free(ls->inv_norm);
    free(ls->scratch);
    free(ls->t);
    ls->inv_norm = ls->scratch = ls->t = NULL;
}
