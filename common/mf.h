// Biased matrix factorisation: prediction = mu + b_u + b_i + p_u . q_i.
//
// The per-user functions below work over ONE user's interactions and touch
// only that user's parameters plus read-only item parameters, so the
// on-device client and the centralized trainer run the very same code.
// Federated ALS is exact because the item-side normal equations are sums of
// per-user sufficient statistics (fri_mf_user_item_stats): an aggregator
// that sums them and calls fri_mf_item_solve reproduces fri_train_als.
//
// Layouts: factor matrices are row-major, row r (user or item) at
// M + r*k. Symmetric matrices travel as packed upper triangles, see
// linalg.h (fri_packed_len / fri_packed_index).
//
// Regularisation: with weighted == 1 (weighted-lambda, as in ALS-WR) the
// penalty of a row scales with its number of ratings n: Lambda =
// diag(reg*n, ..., reg_bias*n); weighted == 2 scales by sqrt(n); with
// weighted == 0 it is the plain ridge diag(reg, ..., reg_bias), which is
// what the MovieLens tuning selected (docs/TUNING.md). The SGD and gradient paths use the per-rating penalty, which
// summed over a row's ratings is the weighted form.
#ifndef FR_COMMON_MF_H
#define FR_COMMON_MF_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "fedrec/err.h"
#include "rng.h"

#define FRI_MF_MAX_K 256u

// Item side of a model, borrowed pointers: what a client needs to solve for
// its own user factors and to score items.
typedef struct fri_mf_items {
    uint32_t     n_items;
    uint32_t     k;
    float        mu;  // global mean
    const float *bi;  // n_items
    const float *Q;   // n_items * k
} fri_mf_items;

// Full model (owns its arrays).
typedef struct fri_mf_model {
    uint32_t n_users;
    uint32_t n_items;
    uint32_t k;
    float    mu;
    float   *bu; // n_users
    float   *bi; // n_items
    float   *P;  // n_users * k
    float   *Q;  // n_items * k
} fri_mf_model;

// Allocates a zeroed model. FR_EINVAL for k == 0 or k > FRI_MF_MAX_K or zero
// users/items, FR_ETOOBIG on size overflow, FR_ENOMEM.
FR_NODISCARD fr_err fri_mf_create(fri_mf_model **out, uint32_t n_users,
                                  uint32_t n_items, uint32_t k);
void fri_mf_destroy(fri_mf_model *m); // NULL is a no-op
// Biases zero, mu as given, P and Q ~ N(0, stddev^2) from a seeded stream.
void fri_mf_init(fri_mf_model *m, float mu, float stddev, uint64_t seed);
// Copies all parameters; FR_EINVAL if the shapes differ.
FR_NODISCARD fr_err fri_mf_copy(fri_mf_model *dst, const fri_mf_model *src);
fri_mf_items fri_mf_items_of(const fri_mf_model *m);

float fri_mf_dot(const float *a, const float *b, uint32_t k);
// Unclamped predictions.
float fri_mf_predict(const fri_mf_model *m, uint32_t u, uint32_t i);
float fri_mf_predict_with(const fri_mf_items *it, const float *p, float bu,
                          uint32_t i);

// Workspace (in floats) the solves below need for factor dimension k; pass
// work == NULL to have them allocate it (FR_ENOMEM possible).
size_t fri_mf_work_len(uint32_t k);

// ---- explicit feedback: per-user ALS ----------------------------------

// Closed-form ridge solve of x = [p_u; b_u] given the item side:
//   (sum_i z z^T + Lambda) x = sum_i z (r_ui - mu - b_i),  z = [q_i; 1].
// items[j] < it->n_items, ratings finite. With n == 0 writes zeros.
// FR_EINVAL on bad arguments or a too small work buffer.
FR_NODISCARD fr_err fri_mf_user_solve(float *p_out, float *bu_out,
                                      const fri_mf_items *it,
                                      const uint32_t *items,
                                      const float *ratings, size_t n,
                                      float reg, float reg_bias, int weighted,
                                      float *work, size_t work_len);

// Leave-one-out scores of item `target` for the ridge fold-in above:
// loo[j] = the unclamped prediction of target after a fold-in without
// interaction j, exact for every reg weighting: the systems without one
// rating share G + s(n-1) Lambda and differ from it by one rank-one term,
// so one Cholesky factor and a Sherman-Morrison step per rating give all n
// in O(n k^2), the cost of one fold-in. With 0 < top < n only the ratings
// whose effect full - loo[j] (full: the caller's prediction of target) can
// be among the top largest are computed, the others set to NaN: a bound
// on each effect costs O(k) per rating, so an explanation costs about one
// Gram pass. Accumulates in double in work (fri_mf_loo_work_len(k, top)
// doubles; no allocation). FR_EINVAL on bad arguments or n < 2 (without a
// rating the fold-in is the zero vector), FR_EINTERNAL if a system is not
// numerically positive definite.
size_t fri_mf_loo_work_len(uint32_t k, size_t top);
FR_NODISCARD fr_err fri_mf_user_loo(float *loo, const fri_mf_items *it,
                                    const uint32_t *items,
                                    const float *ratings, size_t n,
                                    float reg, float reg_bias, int weighted,
                                    uint32_t target, float full, size_t top,
                                    double *work, size_t work_len);

// The selection behind the leave-one-out functions: exact(ctx, j,
// &pred_j) computes rating j's leave-one-out prediction. With 0 < top < n,
// loo[j] holds on entry an upper bound on its effect full - pred_j (+inf
// if none is known), and on return pred_j for every rating whose effect
// can be among the top largest and NaN for the others (heaps: 2 top
// doubles). With top 0 or >= n every loo[j] = pred_j (heaps unused).
// Returns exact's first error.
typedef fr_err (*fri_loo_exact_fn)(void *ctx, size_t j, double *pred);
FR_NODISCARD fr_err fri_loo_top(float *loo, size_t n, size_t top, float full,
                                fri_loo_exact_fn exact, void *ctx,
                                double *heaps);

// The data part of a user's normal equations with z = [q_i; 1] over the
// rated items: A (d x d, d = k+1, upper triangle) = sum_j z z^T and
// b (d) = sum_j z (ratings[j] - mu - b_i). Overwrites A and b; no checks
// (callers validate items and ratings). Shared by the ALS solve and the
// BPMF/VBMF user step so both see the same sums to the bit.
void fri_mf_user_normal_eq(float *A, float *b, const fri_mf_items *it,
                           const uint32_t *items, const float *ratings,
                           size_t n);

// The user's share of the item-side normal equations. With x = [p_u; 1]
// (k+1 floats) writes the Gram x x^T once as a packed upper triangle into
// gram_out (fri_packed_len(k+1) floats) and, for each rating j, the row
// h_out[j*(k+1) ..] = x * (ratings[j] - mu - b_u). Item i's system is then
//   (sum_{u in U_i} G_u + Lambda_i) [q_i; b_i] = sum_{u in U_i} h_ui
// where n_i = (sum G_u)[k][k] counts the ratings. FR_EINVAL/FR_ENOSPC on
// bad arguments or short buffers.
FR_NODISCARD fr_err fri_mf_user_item_stats(float *gram_out, size_t gram_len,
                                           float *h_out, size_t h_len,
                                           const float *p, float bu,
                                           uint32_t k, float mu,
                                           const float *ratings, size_t n);

// Aggregator side: solves item i from the summed statistics above. If no
// user rated the item (n_i == 0) writes zeros.
FR_NODISCARD fr_err fri_mf_item_solve(float *q_out, float *b_out,
                                      const float *gram_sum_packed,
                                      const float *h_sum, uint32_t k,
                                      float reg, float reg_bias, int weighted,
                                      float *work, size_t work_len);

// Centralized trainers: adds one user's statistics to the per-item sums.
// For each j < n, gram_u (plen floats; one user's Gram is the same for all
// its items) goes into gram_acc + idx[j]*plen and row j of h_u (d floats)
// into h_acc + idx[j]*d. The additions run in the order of a plain loop
// over j, so every trainer that calls it sums bit-identically.
void fri_mf_item_stats_add(float *gram_acc, float *h_acc, const uint32_t *idx,
                           size_t n, const float *gram_u, size_t plen,
                           const float *h_u, size_t d);

// Centralized trainers: lengths, in floats, of the buffers one sweep over
// `train` accumulates into: gram = n_items * plen (a packed Gram per item),
// rhs = n_items * rhs_dim (a right-hand side per item), rows = longest
// user row * row_dim (one user's per-rating statistics). FR_ETOOBIG if a
// product overflows or gram floats do not fit in SIZE_MAX bytes.
typedef struct fri_mf_acc_sizes {
    size_t gram;
    size_t rhs;
    size_t rows;
} fri_mf_acc_sizes;

FR_NODISCARD fr_err fri_mf_acc_sizes_of(fri_mf_acc_sizes *out,
                                        const fri_csr *train, size_t plen,
                                        size_t rhs_dim, size_t row_dim);

// ---- explicit feedback: gradients and local SGD -----------------------

// Gradient of the user's loss
//   L_u = 1/2 sum_j e_j^2 + 1/2 sum_j (reg |q_ij|^2 + reg_bias b_ij^2),
//   e_j = r_j - mu - b_u - b_ij - p_u . q_ij,
// w.r.t. each rated item's [q_i; b_i]: grad_out[j*(k+1) ..] (k+1 floats per
// rating, same order as items). Items rated by many users thus receive the
// weighted-lambda penalty once per rating when summed.
FR_NODISCARD fr_err fri_mf_user_item_grad(float *grad_out, size_t grad_len,
                                          const fri_mf_items *it,
                                          const float *p, float bu,
                                          const uint32_t *items,
                                          const float *ratings, size_t n,
                                          float reg, float reg_bias);

// One SGD pass over the user's ratings (order shuffled by rng if non-NULL,
// else as given). Updates p (k floats) and *bu; if q_local/b_local are
// non-NULL they hold local copies of the rated items' rows (n*k and n
// floats, same order as items) which are used for prediction and updated
// too; otherwise the item side stays fixed. Penalties as in
// fri_mf_user_item_grad (reg on p_u and q_i, reg_bias on b_u and b_i).
FR_NODISCARD fr_err fri_mf_user_sgd(float *p, float *bu, float *q_local,
                                    float *b_local, const fri_mf_items *it,
                                    const uint32_t *items,
                                    const float *ratings, size_t n, float lr,
                                    float reg, float reg_bias, fri_rng *rng);

// ---- implicit feedback: weighted ALS (Hu, Koren, Volinsky 2008) -------
//
// Observed (u, i) with value r gets confidence c = 1 + alpha*r and
// preference 1; every unobserved pair has c = 1, preference 0. No biases
// (mu/bu/bi are ignored and left zero). fedrec federates iALS rather than
// BPR because it has the same "user Gram once + per-item rows" sufficient
// statistics as explicit ALS: item i solves
//   (sum_u G_u + sum_{u in U_i} (c_ui - 1) G_u + reg I) q_i
//     = sum_{u in U_i} c_ui p_u,   G_u = p_u p_u^T,
// so the user emits G_u and per item the row [c_ui - 1, c_ui p_u].

// Packed Gram X^T X of n_rows rows of X (k floats each), k(k+1)/2 floats.
// Uses BLAS when available. This is Q^T Q for the user solve.
FR_NODISCARD fr_err fri_mf_gram(float *gram_out, size_t gram_len,
                                const float *X, size_t n_rows, uint32_t k);

// User solve: (QtQ + sum_j (c_j - 1) q_j q_j^T + reg I) p = sum_j c_j q_j.
// qtq_packed is fri_mf_gram(Q) over all items (computed once per model).
FR_NODISCARD fr_err fri_mf_implicit_user_solve(float *p_out,
                                               const fri_mf_items *it,
                                               const float *qtq_packed,
                                               const uint32_t *items,
                                               const float *values, size_t n,
                                               float alpha, float reg,
                                               float *work, size_t work_len);

// User's share: gram_out = p p^T packed (k(k+1)/2 floats) and per rating
// rows_out[j*(k+1) ..] = [c_j - 1, c_j * p].
FR_NODISCARD fr_err fri_mf_implicit_user_item_stats(
    float *gram_out, size_t gram_len, float *rows_out, size_t rows_len,
    const float *p, uint32_t k, const float *values, size_t n, float alpha);

// Aggregator side: gram_all_packed = sum over ALL users of G_u,
// gram_w_packed = sum_{u in U_i} (c_ui - 1) G_u, h_sum = sum c_ui p_u.
// Both grams are k(k+1)/2 floats.
FR_NODISCARD fr_err fri_mf_implicit_item_solve(float *q_out,
                                               const float *gram_all_packed,
                                               const float *gram_w_packed,
                                               const float *h_sum, uint32_t k,
                                               float reg, float *work,
                                               size_t work_len);

// ---- centralized trainers ----------------------------------------------

typedef enum fri_train_algo { FRI_TRAIN_ALS = 0, FRI_TRAIN_SGD = 1 } fri_train_algo;

typedef struct fri_train_config {
    uint32_t k;
    uint32_t epochs;      // ALS sweeps or SGD passes
    float    lr;          // SGD initial learning rate
    float    lr_decay;    // SGD: lr_t = lr / (1 + lr_decay * t)
    float    reg;         // factor penalty
    float    reg_bias;    // bias penalty
    int      weighted;    // ALS penalty scaling 0/1/2 (see top)
    float    init_std;    // stddev of the Gaussian initial factors
    uint32_t bias_epochs; // ALS: bias-only sweeps before the factors
    int      implicit;    // iALS instead of explicit
    float    alpha;       // iALS confidence slope
    float    recency;     // iALS: user-side recency half-life (recency.h,
                          // needs the CSR's ts), 0 = off
    float    clamp_lo;    // validation predictions clamped to [lo, hi]
    float    clamp_hi;
    uint32_t patience;    // early stop after this many worse val epochs
    uint64_t seed;
} fri_train_config;

// Fills the tuned defaults for algo (see docs/TUNING.md).
void fri_train_config_init(fri_train_config *c, fri_train_algo algo);
// The tuned iALS defaults for implicit feedback (implicit = 1).
void fri_train_config_init_implicit(fri_train_config *c);

// Called after every epoch (1-based); a nonzero return stops training.
typedef int (*fri_train_epoch_fn)(void *ctx, uint32_t epoch,
                                  const fri_mf_model *m);

// Trains a new model on train (CSR by user; values are ratings). If val is
// non-NULL and c->patience > 0 (explicit only), the model with the best
// validation RMSE is kept and training stops after patience epochs without
// improvement. Deterministic for a fixed c->seed. *out is NULL on failure.
FR_NODISCARD fr_err fri_train_als(fri_mf_model **out, const fri_csr *train,
                                  const fri_dataset *val,
                                  const fri_train_config *c,
                                  fri_train_epoch_fn cb, void *ctx);
FR_NODISCARD fr_err fri_train_sgd(fri_mf_model **out, const fri_csr *train,
                                  const fri_dataset *val,
                                  const fri_train_config *c,
                                  fri_train_epoch_fn cb, void *ctx);
// Implicit iALS (c->implicit is implied); early stopping is not applied.
FR_NODISCARD fr_err fri_train_ials(fri_mf_model **out, const fri_csr *train,
                                   const fri_train_config *c,
                                   fri_train_epoch_fn cb, void *ctx);

#endif
