// Federated variational Bayes MF (docs/BAYES.md, "Federating them"): the
// aggregator's half of fri_train_vbmf. Clients send ALS-shaped statistics
// with their posterior covariance folded in (per item: the Gram of
// E[x x^T], x = [p_u; 1], and rows E[x (r - mu - b_u)]) plus one global
// block per client (fri_update_vb_extra in proto/msg.h):
//   sum E[u], sum E[u u^T] (packed), u = [p_u; b_u]   -> the user prior
//   sum_j E[(r_j - mu - b_u)^2], user count           -> the noise precision
// The item step, the item prior and beta are computed here. Includes
// neither proto/msg.h nor common/mf.h (see agg_int.h).
#ifndef FR_AGGREGATOR_VBMF_H
#define FR_AGGREGATOR_VBMF_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"

typedef struct fri_vb fri_vb;

// State for n_items items and k factors; beta: initial noise precision,
// beta0 / w0: the Normal-Wishart hyperprior (as fri_vbmf_config; 0 takes
// the fri_vbmf_config_init default). Priors
// start at N(0, I), covariances at 0 (what the first sweep of
// fri_train_vbmf sees).
FR_NODISCARD fr_err fri_vb_create(fri_vb **out, uint32_t n_items, uint32_t k,
    float beta, float beta0, float w0);
void                fri_vb_destroy(fri_vb *v); // NULL is a no-op

// Floats of a client's global block (between its Gram and the trailing
// sum of ratings and count): d + P + 2, P = (k+1)(k+2)/2.
size_t fri_vb_glob_len(uint32_t k);
// 1 if a global block is acceptable (finite, squared error and user
// count >= 0, the Gram part's diagonal >= 0).
int fri_vb_glob_ok(const fri_vb *v, const float *glob, size_t len);
// Accumulation (caller holds the aggregator's accumulator lock).
void fri_vb_acc_add(fri_vb *v, const float *glob);
void fri_vb_acc_reset(fri_vb *v);
// The accumulated global block as doubles (fri_vb_glob_len(k) of them),
// and adding such a block (a tree's edge sums; same lock as above).
void fri_vb_acc_get(const fri_vb *v, double *glob);
void fri_vb_acc_add_d(fri_vb *v, const double *glob);
// Latest-statistics mode: any finite global block (a device's change since
// its last report may be negative anywhere).
int fri_vb_glob_delta_ok(const fri_vb *v, const float *glob, size_t len);
// Latest-statistics mode: adds the round's (delta) global sums into the
// running global block, re-centres its squared residuals on the new mu
// (dmu = mu_new - mu_old; A = sum of all residuals r - mu_old - b_u, N =
// their count) and makes the running block the one fri_vb_solve uses.
fr_err fri_vb_latest_fold(fri_vb *v, double dmu, double A, double N);

// Under DP the global sums are noisy: fri_vb_solve then reads them as a
// post-processing (user count >= 1, the user scatter sum_xx - sx sx^T / n
// projected to PSD, the squared residuals and E[SSE] kept positive).
void fri_vb_set_noisy(fri_vb *v, int noisy);

// One sweep's server half (the exclusive closer): acc[i] is item i's
// summed [Gram (P) | h (d)] or NULL if nobody rated it; h was computed by
// clients with mu_old and is re-centred on mu. Steps every item (bi, Q
// updated in place, n_items and n_items * k floats), then the user prior
// (from the global sums), the item prior and beta, exactly in the order of
// fri_train_vbmf; beta = n_ratings / E[SSE]. An item whose step fails
// keeps its previous mean and covariance and is counted in *skipped. On
// error the state is unchanged (bi/Q may be partly written: the caller
// discards them).
FR_NODISCARD fr_err fri_vb_solve(fri_vb *v, float *const *acc, float mu,
    float mu_old, double n_ratings, float *bi, float *Q, size_t *skipped);

// What the MODEL carries (valid until the next fri_vb_solve / set):
// beta, the user prior (mean d, packed precision P) and the items'
// covariance diagonals (n_items * d).
void fri_vb_view(const fri_vb *v, float *beta, const float **umean,
    const float **uprec, const float **item_var);

// Latest-statistics mode, checkpoint: the running global block [sum E[u]
// (d) | packed sum E[u u^T] (P) | squared residuals | user count] as
// fri_vb_latest_len doubles (0 before the first fold).
size_t              fri_vb_latest_len(const fri_vb *v);
void                fri_vb_latest_get(const fri_vb *v, double *dst);
FR_NODISCARD fr_err fri_vb_latest_set(fri_vb *v, const double *src,
    size_t len);

// Checkpoint state: beta, user prior (d + P), item prior (d + P), full
// item covariances (n_items * P) as one float vector of fri_vb_state_len.
size_t              fri_vb_state_len(const fri_vb *v);
void                fri_vb_state_get(const fri_vb *v, float *dst);
FR_NODISCARD fr_err fri_vb_state_set(fri_vb *v, const float *src, size_t len);
// The state of a checkpoint made before the catalog grew: the same layout
// for n_old <= n_items items; the items after n_old keep what
// fri_vb_grow gave them.
FR_NODISCARD fr_err fri_vb_state_set_prefix(fri_vb *v, const float *src,
                                            size_t len, uint32_t n_old);
// The catalog grows to n_items (>= the current count): the new items get
// the posterior of an item nobody rated, the item prior (mean in Q's and
// bi's new rows, which have room for n_items, covariance its inverse
// precision), so that they rank by their prior uncertainty. On error
// nothing changes but the covariance arrays' capacity.
FR_NODISCARD fr_err fri_vb_grow(fri_vb *v, uint32_t n_items, float *Q,
                                float *bi);
// The same for the items from `from` on of a state already that large (a
// checkpoint restored into a larger catalog).
FR_NODISCARD fr_err fri_vb_prior_rows(fri_vb *v, uint32_t from, float *Q,
                                      float *bi);

// Item content features (genres, tags): rows x G floats (items
// from `rows` on have none), copied. Each item's prior mean becomes
// M [g_i; 1], M regressed on the items' posterior means after every solve
// (ridge on the feature coefficients), the prior precision estimated from
// the residuals; an item with little evidence, a new one above all, is
// pulled toward the mean of items with its features. Until the first
// solve (or fri_vb_refit_features) every prior mean is imean.
FR_NODISCARD fr_err fri_vb_set_features(fri_vb *v, const float *F, uint32_t G,
                                        uint32_t rows);
#define FRI_VB_MAX_FEATURES 64
// What fri_vb_set_features accepts: 1..FRI_VB_MAX_FEATURES features, a
// table when there are rows, every value finite.
int fri_vb_features_ok(const float *F, uint32_t G, uint32_t rows);
// M refitted to the first n items' means (Q, bi), as the last solve left it
// (a restored checkpoint). No-op without features.
FR_NODISCARD fr_err fri_vb_refit_features(fri_vb *v, const float *Q,
                                          const float *bi, uint32_t n);

#endif
