// Evaluation: rating accuracy (RMSE, MAE) and top-K ranking quality (HR,
// NDCG, precision, recall, catalog coverage), plus the top-K selection the
// on-device client reuses to recommend.
//
// Ranking protocols:
//   FRI_RANK_FULL     each user's relevant test items are ranked among all
//                     items the user did not rate in train.
//   FRI_RANK_SAMPLED  each relevant test item is ranked against n_neg
//                     (default 100; 99 is the NCF leave-one-out protocol)
//                     distinct seeded random items the user rated in
//                     neither train nor test (all of them if there are
//                     fewer, or if n_neg == 0); ties count against the
//                     item: rank = #negatives scoring >= it, a hit when
//                     rank < K, NDCG = 1/log2(rank + 2).
//                     User u's negatives come from the stream
//                     fri_rng_seed2(seed, u), in test-row order.
// Per user (full) or per test item (sampled), with hits among the top K:
//   HR = 1 if hits > 0, precision = hits / K, recall = hits / |relevant|,
//   NDCG = sum over hits of 1/log2(pos+2) divided by the ideal DCG of
//   min(K, |relevant|) hits. Means are over users (full) or cases (sampled).
// Coverage is |union of every evaluated user's full top-K| / n_items.
#ifndef FR_COMMON_METRICS_H
#define FR_COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "listmetrics.h"
#include "fedrec/err.h"
#include "mf.h"

// RMSE and MAE of pred against truth (n > 0).
FR_NODISCARD fr_err fri_rmse_mae(double *rmse, double *mae, const float *pred,
                                 const float *truth, size_t n);

typedef struct fri_rating_metrics {
    double rmse;
    double mae;
    size_t n;
} fri_rating_metrics;

// Scores triplets with m, predictions clamped to [clamp_lo, clamp_hi] when
// clamp_lo < clamp_hi. Users/items outside the model fall back to mu plus
// the known bias. FR_EINVAL if n == 0.
FR_NODISCARD fr_err fri_eval_rating(fri_rating_metrics *out,
                                    const fri_mf_model *m,
                                    const fri_triplet *t, size_t n,
                                    float clamp_lo, float clamp_hi);

// Top-k selection: writes the indices (and scores if out_score != NULL) of
// the k highest scores among n, best first, skipping indices listed in
// exclude (sorted ascending, n_exclude entries) and NaN scores. Ties go to
// the lower index. *n_out < k when fewer items qualify. No allocation.
// FR_EINVAL on NULL arguments or an unsorted exclude list.
FR_NODISCARD fr_err fri_topk(uint32_t *out_idx, float *out_score, size_t k,
                             size_t *n_out, const float *scores, uint32_t n,
                             const uint32_t *exclude, size_t n_exclude);

// Scores rows users[0..n_users) of m against all items into
// out[r*n_items + i] = mu + b_u + b_i + p_u . q_i (sgemm with BLAS).
FR_NODISCARD fr_err fri_score_users(float *out, size_t out_len,
                                    const fri_mf_model *m,
                                    const uint32_t *users, size_t n_users);

typedef enum fri_rank_protocol {
    FRI_RANK_FULL = 0,
    FRI_RANK_SAMPLED = 1
} fri_rank_protocol;

// Negative sampling of FRI_RANK_SAMPLED: writes min(n_neg, #candidates)
// distinct items drawn uniformly without replacement from [0, n_items)
// minus the sorted lists excl_a and excl_b (a user's interactions and
// held-out items; entries >= n_items are ignored) into out, in draw order.
// n_neg == 0, or no more candidates than n_neg: every candidate, ascending,
// without consuming rng. mark is n_items zeroed bytes of scratch, returned
// zeroed. FR_ENOSPC if out_cap is too small, FR_EINVAL on NULL arguments or
// an unsorted list.
FR_NODISCARD fr_err fri_sample_negatives(uint32_t *out, size_t out_cap,
                                         size_t *n_out, fri_rng *rng,
                                         uint32_t n_items,
                                         const uint32_t *excl_a, size_t n_a,
                                         const uint32_t *excl_b, size_t n_b,
                                         uint32_t n_neg, uint8_t *mark);

typedef struct fri_rank_config {
    uint32_t          k;          // list length, default 10
    fri_rank_protocol protocol;   // default FRI_RANK_FULL
    uint32_t          n_neg;      // sampled negatives, default 100; 0 = all
    uint64_t          seed;       // sampling seed
    float             min_rating; // test items >= this are relevant (0)
} fri_rank_config;

void fri_rank_config_init(fri_rank_config *c);

typedef struct fri_rank_metrics {
    double hr;
    double ndcg;
    double precision;
    double recall;
    double coverage;
    size_t n_users; // users with at least one relevant test item
    size_t n_cases; // averaging units (users or test items)
} fri_rank_metrics;

// train and test are CSRs by user over the model's dense ids (test rows or
// items beyond the model are ignored). FR_EINVAL if nothing to evaluate.
FR_NODISCARD fr_err fri_eval_ranking(fri_rank_metrics *out,
                                     const fri_mf_model *m,
                                     const fri_csr *train,
                                     const fri_csr *test,
                                     const fri_rank_config *c);

// Any model that scores users against all items: score writes
// out[r*n_items + i] for users[0..n_users) (as fri_score_users does) and
// returns an error code. Q (n_items x k factors, or NULL) is only used for
// the intra-list diversity of fri_eval_lists_with.
typedef fr_err (*fri_score_fn)(const void *ctx, float *out, size_t out_len,
                               const uint32_t *users, size_t n_users);
typedef struct fri_scorer {
    fri_score_fn score;
    const void  *ctx;
    uint32_t     n_users;
    uint32_t     n_items;
    const float *Q;
    uint32_t     k;
} fri_scorer;

// The scorer of a matrix factorisation model (borrows m).
fri_scorer fri_scorer_of_mf(const fri_mf_model *m);

// fri_eval_ranking and fri_eval_lists for any scorer (neighbourhood
// models, ...); the fri_mf_model versions call these.
FR_NODISCARD fr_err fri_eval_ranking_with(fri_rank_metrics *out,
                                          const fri_scorer *s,
                                          const fri_csr *train,
                                          const fri_csr *test,
                                          const fri_rank_config *c);

// A scorer that adds the devices' last-item term (recency.h) to another
// scorer's scores, each user's term from its own training interactions
// and their timestamps (ts, parallel to train's entries), so a
// centralized model is ranked as a device holding that user's history
// ranks. Without a term to add (w 0, ts NULL, or a base without factors
// Q and k, which fri_scorer_of_mf gives) *out is *base. Owns buffers:
// fri_last_item_scorer_free.
typedef struct fri_last_item_scorer {
    fri_scorer     base;
    const fri_csr *train;
    const int64_t *ts;
    float          w;
    float         *inv_norm, *t, *scratch;
} fri_last_item_scorer;

// Fills *out (a scorer over ls, which must outlive it). FR_EINVAL for
// NULL arguments or a negative or NaN w, FR_ENOMEM.
FR_NODISCARD fr_err fri_last_item_scorer_init(fri_last_item_scorer *ls,
    fri_scorer *out, const fri_scorer *base, const fri_csr *train,
    const int64_t *ts, float w);
void fri_last_item_scorer_free(fri_last_item_scorer *ls);

// Beyond accuracy (listmetrics.h) of the model's own top-K lists: every
// user with training rows gets the K best items it did not rate in train;
// popularity is each item's number of training users. FR_EINVAL if K is 0,
// above 255 or above the catalog.
FR_NODISCARD fr_err fri_eval_lists(fri_list_metrics *out,
                                   const fri_mf_model *m,
                                   const fri_csr *train, uint32_t K);
FR_NODISCARD fr_err fri_eval_lists_with(fri_list_metrics *out,
                                        const fri_scorer *s,
                                        const fri_csr *train, uint32_t K);

#endif
