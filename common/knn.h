// Neighbourhood collaborative filtering with cosine similarity, the
// classic baselines next to matrix factorisation.
//
// User-based (FRI_KNN_USER): the similarity of users a and b is the cosine
// of their rating vectors; the rating of user u for item i is predicted
// from the k users most similar to u among those who rated i:
//   r^_ui = sum_v sim(u,v) r_vi / sum_v |sim(u,v)|,  sim(u,v) > 0.
// Item-based (FRI_KNN_ITEM) is the same on the transposed matrix: item
// similarities, and the k items most similar to i among those u rated.
// This is KNNBasic of the Surprise library with sim_options cosine.
//
// Cosine norms (fri_knn_norm):
//   COMMON  the norms run over the co-rated entries only (Surprise): the
//           right notion for rating prediction, but on 0/1 data every
//           pair with a co-rated entry has similarity 1.
//   FULL    the norms run over each whole vector: |A and B| /
//           sqrt(|A| |B|) on 0/1 data, the usual top-N neighbourhood.
// Pairs with fewer than min_support co-rated entries have similarity 0.
//
// When no neighbour with positive similarity rated the item (or the user or
// item is unknown) the prediction falls back to the item's training mean
// shrunk toward the global mean, (sum r + FRI_KNN_DAMP mu) / (n + DAMP),
// or to the global mean for an item nobody rated.
//
// Ranking scores (fri_knn_score_users) use each entity's k nearest
// neighbours overall: user-based, score(u, i) = sum over u's neighbours v
// of sim(u,v) r_vi; item-based, score(u, i) = sum over the items j u rated
// with i among j's neighbours of sim(j,i) r_uj.
//
// The similarity matrix is dense (n_rows^2 floats for the user or item
// side), fine for MovieLens-sized data (943 users: 3.6 MB; 1682 items:
// 11 MB); FR_ETOOBIG above FRI_KNN_MAX_ROWS rows.
#ifndef FR_COMMON_KNN_H
#define FR_COMMON_KNN_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "fedrec/err.h"

#define FRI_KNN_MAX_ROWS 16384u
#define FRI_KNN_DAMP 5.0f

typedef enum fri_knn_kind { FRI_KNN_USER = 0, FRI_KNN_ITEM = 1 } fri_knn_kind;
typedef enum fri_knn_norm {
    FRI_KNN_NORM_COMMON = 0,
    FRI_KNN_NORM_FULL   = 1
} fri_knn_norm;

typedef struct fri_knn_config {
    fri_knn_kind kind;
    uint32_t     k; // neighbours, >= 1 (40)
    uint32_t     min_support; // co-rated entries for a similarity (1)
    fri_knn_norm norm; // (COMMON)
    int          centre; // content profiles mean-centred (1)
} fri_knn_config;

void fri_knn_config_init(fri_knn_config *c);

typedef struct fri_knn fri_knn;

// Fits on train (CSR by user, values are ratings; rows sorted by column as
// fri_csr_by_user makes them). Copies what it needs: train may be freed
// afterwards. FR_EINVAL on NULL, k == 0, an empty matrix, a column index
// out of range or a non-finite value; FR_ETOOBIG, FR_ENOMEM.
FR_NODISCARD fr_err fri_knn_fit(
    fri_knn **out, const fri_csr *train, const fri_knn_config *c);
// Content-based: item-item similarity is the cosine of the items'
// features (features[i*n_feat ..], n_items = train->n_cols rows; zero rows
// are items without features, similarity 0), c->kind must be
// FRI_KNN_ITEM; ratings are then predicted as by item-based CF. Ranking
// scores are cos(p_u, x_i) with the user profile p_u = sum over rated
// items of w_j x_j, w_j = r_uj minus the user's mean if c->centre, else
// r_uj. FR_EINVAL also on short or non-finite features.
FR_NODISCARD fr_err fri_knn_fit_content(fri_knn **out, const fri_csr *train,
    const float *features, size_t features_len, uint32_t n_feat,
    const fri_knn_config *c);
void                fri_knn_destroy(fri_knn *m); // NULL is a no-op

uint32_t fri_knn_n_users(const fri_knn *m);
uint32_t fri_knn_n_items(const fri_knn *m);
float    fri_knn_global_mean(const fri_knn *m);

// Similarity of two users (FRI_KNN_USER) or two items (FRI_KNN_ITEM); 0
// for a == b or an index out of range.
float fri_knn_similarity(const fri_knn *m, uint32_t a, uint32_t b);

// Unclamped prediction of user u for item i (any indices: unknown ones
// fall back). *fell_back (if non-NULL) is 1 when the fallback was used.
// FR_EINVAL on NULL m or out.
FR_NODISCARD fr_err fri_knn_predict(
    const fri_knn *m, uint32_t u, uint32_t i, float *out, int *fell_back);

// Ranking scores of users[0..n_users) against all items:
// out[r*n_items + i]. FR_EINVAL on NULL arguments or a user >= n_users,
// FR_ENOSPC if out_len is too small.
FR_NODISCARD fr_err fri_knn_score_users(const fri_knn *m, float *out,
    size_t out_len, const uint32_t *users, size_t n_users);

#endif
