#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "mf.h"

Test(metrics, rmse_mae_hand_values)
{
    float pred[4] = {3, 4, 2, 5};
    float truth[4] = {4, 4, 4, 4};
    double rmse, mae;
    cr_assert_eq(fri_rmse_mae(&rmse, &mae, pred, truth, 4), FR_OK);
    // errors 1, 0, 2, -1: MSE = 6/4, MAE = 4/4
    cr_assert_float_eq(rmse, sqrt(1.5), 1e-12);
    cr_assert_float_eq(mae, 1.0, 1e-12);
    cr_assert_eq(fri_rmse_mae(&rmse, &mae, pred, truth, 0), FR_EINVAL);
}

// 2 users x 5 items, k = 1: user 0 scores items 5,4,3,2,1; user 1 the
// negatives, so its order is reversed.
static fri_mf_model *
hand_model(void)
{
    fri_mf_model *m = NULL;
    cr_assert_eq(fri_mf_create(&m, 2, 5, 1), FR_OK);
    m->mu = 0.0f;
    m->P[0] = 1.0f;
    m->P[1] = -1.0f;
    for (int i = 0; i < 5; i++) {
        m->Q[i] = (float)(5 - i);
    }
    return m;
}

Test(metrics, eval_rating_clamps_and_falls_back)
{
    fri_mf_model *m = hand_model();
    m->mu = 1.0f;
    fri_triplet t[3] = {
        {0, 0, 5.0f, 0}, // pred 1 + 5 = 6 -> clamped 5, error 0
        {1, 0, 1.0f, 0}, // pred 1 - 5 = -4 -> clamped 1, error 0
        {7, 9, 3.0f, 0}, // unknown: mu = 1, error 2
    };
    fri_rating_metrics r;
    cr_assert_eq(fri_eval_rating(&r, m, t, 3, 1.0f, 5.0f), FR_OK);
    cr_assert_float_eq(r.rmse, sqrt(4.0 / 3.0), 1e-6);
    cr_assert_float_eq(r.mae, 2.0 / 3.0, 1e-6);
    fri_mf_destroy(m);
}

Test(metrics, topk_selects_excludes_and_breaks_ties)
{
    float s[8] = {0.5f, 2.0f, 2.0f, -1.0f, 3.0f, NAN, 0.7f, 2.0f};
    uint32_t idx[4];
    float sc[4];
    size_t n;
    uint32_t ex[2] = {4, 6};
    cr_assert_eq(fri_topk(idx, sc, 4, &n, s, 8, ex, 2), FR_OK);
    cr_assert_eq(n, 4);
    // 4 and 6 excluded, NaN skipped; ties at 2.0 go to lower index.
    uint32_t want[4] = {1, 2, 7, 0};
    for (int j = 0; j < 4; j++) {
        cr_assert_eq(idx[j], want[j], "pos %d: %u", j, idx[j]);
        cr_assert_eq(sc[j], s[want[j]]);
    }
    // Fewer candidates than k.
    cr_assert_eq(fri_topk(idx, NULL, 4, &n, s, 3, NULL, 0), FR_OK);
    cr_assert_eq(n, 3);
    cr_assert_eq(idx[0], 1);
    cr_assert_eq(idx[2], 0);
    uint32_t unsorted[2] = {5, 1};
    cr_assert_eq(fri_topk(idx, NULL, 2, &n, s, 8, unsorted, 2), FR_EINVAL);
}

Test(metrics, topk_matches_full_sort_on_random_scores)
{
    enum { N = 500, KK = 20 };
    float s[N];
    fri_rng r;
    fri_rng_seed(&r, 4);
    for (int i = 0; i < N; i++) {
        s[i] = (float)fri_rng_below(&r, 50); // many ties
    }
    uint32_t idx[KK];
    size_t n;
    cr_assert_eq(fri_topk(idx, NULL, KK, &n, s, N, NULL, 0), FR_OK);
    cr_assert_eq(n, KK);
    // Reference: selection by repeated max with lower-index tie-break.
    uint8_t used[N] = {0};
    for (int t = 0; t < KK; t++) {
        int best = -1;
        for (int i = 0; i < N; i++) {
            if (!used[i] && (best < 0 || s[i] > s[best])) {
                best = i;
            }
        }
        used[best] = 1;
        cr_assert_eq(idx[t], (uint32_t)best, "rank %d", t);
    }
}

Test(metrics, score_users_matches_predict)
{
    fri_mf_model *m = NULL;
    cr_assert_eq(fri_mf_create(&m, 7, 9, 3), FR_OK);
    fri_mf_init(m, 3.0f, 0.5f, 1);
    for (int u = 0; u < 7; u++) {
        m->bu[u] = 0.1f * u;
    }
    for (int i = 0; i < 9; i++) {
        m->bi[i] = -0.05f * i;
    }
    uint32_t users[3] = {6, 0, 3};
    float out[27];
    cr_assert_eq(fri_score_users(out, 27, m, users, 3), FR_OK);
    for (int r = 0; r < 3; r++) {
        for (uint32_t i = 0; i < 9; i++) {
            cr_assert_float_eq(out[r * 9 + i], fri_mf_predict(m, users[r], i),
                               1e-5f);
        }
    }
    cr_assert_eq(fri_score_users(out, 26, m, users, 3), FR_ENOSPC);
    fri_mf_destroy(m);
}

Test(metrics, ranking_full_protocol_hand_values)
{
    fri_mf_model *m = hand_model();
    // train: u0 {0}, u1 {4}; test: u0 {2, 4}, u1 {0}
    size_t tr_ptr[3] = {0, 1, 2};
    uint32_t tr_idx[2] = {0, 4};
    float tr_val[2] = {5, 5};
    fri_csr train = {2, 5, tr_ptr, tr_idx, tr_val, NULL};
    size_t te_ptr[3] = {0, 2, 3};
    uint32_t te_idx[3] = {2, 4, 0};
    float te_val[3] = {4, 4, 4};
    fri_csr test = {2, 5, te_ptr, te_idx, te_val, NULL};
    fri_rank_config c;
    fri_rank_config_init(&c);
    c.k = 2;
    fri_rank_metrics r;
    cr_assert_eq(fri_eval_ranking(&r, m, &train, &test, &c), FR_OK);
    // u0 top-2 = [1, 2]: hit at position 1 -> DCG 1/log2(3), IDCG
    // 1 + 1/log2(3). u1 top-2 = [3, 2]: no hit.
    double ndcg0 = (1.0 / log2(3.0)) / (1.0 + 1.0 / log2(3.0));
    cr_assert_eq(r.n_users, 2);
    cr_assert_float_eq(r.hr, 0.5, 1e-12);
    cr_assert_float_eq(r.ndcg, ndcg0 / 2.0, 1e-9);
    cr_assert_float_eq(r.precision, 0.25, 1e-12);
    cr_assert_float_eq(r.recall, 0.25, 1e-12);
    cr_assert_float_eq(r.coverage, 3.0 / 5.0, 1e-12); // {1, 2, 3}
    // A relevance threshold above every test rating leaves nothing.
    c.min_rating = 4.5f;
    cr_assert_eq(fri_eval_ranking(&r, m, &train, &test, &c), FR_EINVAL);
    fri_mf_destroy(m);
}

Test(metrics, ranking_sampled_protocol_best_and_worst)
{
    fri_mf_model *m = hand_model();
    // u0's test item 1 outranks every unrated item; u1's test item 0 is
    // its lowest-scored item.
    size_t tr_ptr[3] = {0, 1, 2};
    uint32_t tr_idx[2] = {0, 4};
    float tr_val[2] = {5, 5};
    fri_csr train = {2, 5, tr_ptr, tr_idx, tr_val, NULL};
    size_t te_ptr[3] = {0, 1, 2};
    uint32_t te_idx[2] = {1, 0};
    float te_val[2] = {4, 4};
    fri_csr test = {2, 5, te_ptr, te_idx, te_val, NULL};
    fri_rank_config c;
    fri_rank_config_init(&c);
    c.k = 2;
    c.protocol = FRI_RANK_SAMPLED;
    c.n_neg = 2; // u1 has 3 candidates {1, 2, 3}: 2 are sampled
    fri_rank_metrics r;
    cr_assert_eq(fri_eval_ranking(&r, m, &train, &test, &c), FR_OK);
    // u0: rank 0 -> HR 1, NDCG 1. u1: rank 2 (both negatives above) -> 0.
    cr_assert_eq(r.n_cases, 2);
    cr_assert_float_eq(r.hr, 0.5, 1e-12);
    cr_assert_float_eq(r.ndcg, 0.5, 1e-12);
    cr_assert_float_eq(r.recall, 0.5, 1e-12);
    cr_assert_float_eq(r.precision, 0.25, 1e-12);
    // Same seed, same result; the sampling itself is seeded.
    fri_rank_metrics r2;
    cr_assert_eq(fri_eval_ranking(&r2, m, &train, &test, &c), FR_OK);
    cr_assert_eq(memcmp(&r, &r2, sizeof(r)), 0);
    fri_mf_destroy(m);
}

// A model that is not MF: fixed scores per item, the same for every user.
static fr_err
fixed_scores(const void *ctx, float *out, size_t out_len,
             const uint32_t *users, size_t n_users)
{
    const float *s = ctx;
    if (out_len < n_users * 4) {
        return FR_ENOSPC;
    }
    (void)users;
    for (size_t r = 0; r < n_users; r++) {
        memcpy(out + r * 4, s, 4 * sizeof(float));
    }
    return FR_OK;
}

Test(metrics, ranking_and_lists_through_a_scorer)
{
    // One user, 4 items: trained on item 0, test item 2.
    size_t   tr_ptr[2] = {0, 1}, te_ptr[2] = {0, 1};
    uint32_t tr_idx[1] = {0}, te_idx[1] = {2};
    float    tr_val[1] = {1}, te_val[1] = {1};
    fri_csr  tr = {1, 4, tr_ptr, tr_idx, tr_val, NULL};
    fri_csr  te = {1, 4, te_ptr, te_idx, te_val, NULL};
    fri_rank_config rc;
    fri_rank_config_init(&rc);
    rc.k = 1;
    // Item 0 scores highest but is excluded (trained on): item 2 is first.
    float      good[4] = {9, 1, 5, 3};
    fri_scorer s = {fixed_scores, good, 1, 4, NULL, 0};
    fri_rank_metrics rm;
    cr_assert_eq(fri_eval_ranking_with(&rm, &s, &tr, &te, &rc), FR_OK);
    cr_assert_float_eq(rm.hr, 1.0, 1e-12);
    cr_assert_float_eq(rm.ndcg, 1.0, 1e-12);
    // Item 1 ahead of item 2: a miss at 1, NDCG 1/log2(3) at 2.
    float bad[4] = {9, 5, 1, 0};
    s.ctx = bad;
    cr_assert_eq(fri_eval_ranking_with(&rm, &s, &tr, &te, &rc), FR_OK);
    cr_assert_float_eq(rm.hr, 0.0, 1e-12);
    rc.k = 2;
    cr_assert_eq(fri_eval_ranking_with(&rm, &s, &tr, &te, &rc), FR_OK);
    cr_assert_float_eq(rm.ndcg, 1.0 / log2(3.0), 1e-12);
    // Lists: the user's top 2 are items 1 and 2; no factors, no ILD.
    fri_list_metrics lm;
    cr_assert_eq(fri_eval_lists_with(&lm, &s, &tr, 2), FR_OK);
    cr_assert_float_eq(lm.coverage, 0.5, 1e-12);
    cr_assert(isnan(lm.ild));
    s.score = NULL;
    cr_assert_eq(fri_eval_ranking_with(&rm, &s, &tr, &te, &rc), FR_EINVAL);
    cr_assert_eq(fri_eval_lists_with(&lm, &s, &tr, 2), FR_EINVAL);
}
