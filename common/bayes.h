// Bayesian matrix factorisation: BPMF (Salakhutdinov & Mnih 2008) by Gibbs
// sampling, with the biases folded into the factor vectors.
//
// Model: r_ui ~ N(mu + b_u + b_i + p_u . q_i, 1/beta). The user unknown is
// x_u = [p_u; b_u], the item unknown y_i = [q_i; b_i] (d = k + 1 floats
// each), with Gaussian priors x_u ~ N(m_U, L_U^-1), y_i ~ N(m_V, L_V^-1)
// whose means and precisions get Normal-Wishart hyperpriors and are
// resampled every sweep. mu is the fixed training mean.
//
// The federated shape of ALS (mf.h) is kept exactly:
//   - the user step (fri_bpmf_user_step) reads only the user's ratings and
//     the item side, like fri_mf_user_solve;
//   - the item step (fri_bpmf_item_step) reads only SUMS over the item's
//     raters of the per-user statistics fri_mf_user_item_stats already
//     emits (Gram of [p_u; 1] once per user, a row per rating);
//   - the user hyperparameters need sum_u [p_u; b_u] and sum_u [p_u; b_u]
//     [p_u; b_u]^T over all users (fri_bpmf_hyper_stats, one extra packed
//     Gram of [p_u; b_u; 1] per user per round), the item hyperparameters
//     are the aggregator's own business;
//   - a sampled noise precision needs sum_u sum_j e_uj^2 (one scalar).
// Every step takes an rng: non-NULL draws from the conditional posterior,
// NULL returns its mean (a ridge solve with the learned prior).
//
// Layouts as in mf.h / linalg.h: packed upper triangles, row-major full
// matrices.
#ifndef FR_COMMON_BAYES_H
#define FR_COMMON_BAYES_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "fedrec/err.h"
#include "mf.h"
#include "rng.h"

// Gaussian prior of a d-dimensional factor vector (d = k + 1): mean (d
// floats) and precision (d x d, row-major, symmetric), borrowed.
typedef struct fri_bpmf_prior {
    uint32_t     d;
    const float *mean;
    const float *prec;
} fri_bpmf_prior;

// Workspace (floats) for the steps below with factor dimension k.
size_t fri_bpmf_work_len(uint32_t k);

// Draws (rng != NULL) or computes the mean (rng == NULL) of the user's
// conditional posterior of [p_u; b_u]:
//   precision A = L + beta sum_j z_j z_j^T,  z_j = [q_ij; 1]
//   mean      A^-1 (L m + beta sum_j z_j (r_j - mu - b_ij)).
// With n == 0 this is the prior. If cov_out is non-NULL, writes the
// posterior covariance A^-1 packed (fri_packed_len(k + 1) floats).
// If item_cov is non-NULL it holds every item's posterior covariance of
// [q_i; b_i] (packed, fri_packed_len(k + 1) floats per item, item i at
// i * fri_packed_len(k + 1)) and the step uses the expectations
// E[z z^T] and E[z (r - mu - b_i)] instead (variational MF, Lim & Teh
// 2007). prior->d must be k + 1. work == NULL allocates. FR_EINVAL on bad
// arguments, FR_EINTERNAL if A is not positive definite.
FR_NODISCARD fr_err fri_bpmf_user_step(float *p_out, float *bu_out,
    float *cov_out, const float *item_cov, const fri_mf_items *it,
    const uint32_t *items, const float *ratings, size_t n,
    const fri_bpmf_prior *prior, float beta, fri_rng *rng, float *work,
    size_t work_len);

// The variational mean step above when only the covariance diagonals are
// known (what a device holds): item_var holds k + 1 floats per item
// (item i at i * (k + 1); the bias variance is not used), the same numbers
// as packed covariances with zero off-diagonals, without building them.
FR_NODISCARD fr_err fri_vbmf_user_step_diag(float *p_out, float *bu_out,
    float *cov_out, const float *item_var, const fri_mf_items *it,
    const uint32_t *items, const float *ratings, size_t n,
    const fri_bpmf_prior *prior, float beta, float *work, size_t work_len);

// SVD++'s implicit term (Koren 2008) with the implicit factors tied to
// the item factors, y_j = w q_j: a user's prior mean over [p_u; b_u] is
// prior->mean shifted by w |N(u)|^-1/2 sum_{j in N(u)} q_j on the factor
// part, N(u) the user's items (the set it chose to rate, whatever the
// values). The shift depends only on served item factors and on the
// device's own items, so nothing new goes on the wire or into the masked
// statistics; the item step treats it as fixed (an alternating step).
// Writes prior->d floats to mean_out. Q: item factor rows, k floats each,
// indexed by items[j], or by position j when items is NULL. w = 0 or
// n = 0 copies the mean.
void fri_vbmf_rated_set_mean(float *mean_out, const fri_bpmf_prior *prior,
    const float *Q, const uint32_t *items, size_t n, uint32_t k, float w);

// Leave-one-out predictions of item `target` for the device's variational
// user step (fri_bpmf_user_step with the diagonal item variances the model
// carries, item_var: d floats per item, and the rated-set prior mean of
// fri_vbmf_rated_set_mean with weight svdpp): loo[j] = mu + b_target +
// [q_target; 1] . x_j, x_j the posterior mean without rating j. Without
// j the precision loses beta (z_j z_j^T + D_j), a rank-d change, and the
// prior mean moves; each x_j is an exact d x d solve in double (O(k^3)),
// not a refit over the n ratings. With 0 < top < n only the ratings whose
// effect full - loo[j] can be among the top largest are solved, the
// others set to NaN: with u = A^-1 z_target and r_j = A (x_j - x)'s
// right side, the effect is -u . r_j up to |E_j u| |r_j| / (lambda_min(A)
// - |E_j|), all O(k) per rating. work: fri_vbmf_loo_work_len(k, top)
// doubles. FR_EINVAL on bad arguments or n < 2, FR_EINTERNAL if a system
// is not numerically positive definite.
size_t fri_vbmf_loo_work_len(uint32_t k, size_t top);
FR_NODISCARD fr_err fri_vbmf_user_loo(float *loo, const fri_mf_items *it,
    const float *item_var, const uint32_t *items, const float *ratings,
    size_t n, const fri_bpmf_prior *prior, float beta, float svdpp,
    uint32_t target, float full, size_t top, double *work, size_t work_len);

// Default and bound of that weight (chosen on validation splits of
// ML-100K u1.base and u3.base, docs/BEHAVIOUR.md).
#define FRI_SVDPP_DEFAULT 0.3f
#define FRI_SVDPP_MAX 10.0f

// Aggregator side: the same for item i from the summed per-user statistics
// of fri_mf_user_item_stats (gram_sum_packed: fri_packed_len(k + 1) floats,
// h_sum: k + 1 floats):
//   precision L + beta G,  mean (L + beta G)^-1 (L m + beta h).
// An item nobody rated (G == 0) gets a draw from the prior.
FR_NODISCARD fr_err fri_bpmf_item_step(float *q_out, float *b_out,
    float *cov_out, const float *gram_sum_packed, const float *h_sum,
    uint32_t k, const fri_bpmf_prior *prior, float beta, fri_rng *rng,
    float *work, size_t work_len);

// Variational form of fri_mf_user_item_stats: with the user's posterior
// covariance cov (packed over [p_u; b_u], fri_packed_len(k + 1) floats) the
// Gram becomes E[x x^T], x = [p_u; 1], and each row E[x (r - mu - b_u)]:
// the client adds its uncertainty into what it already sends. cov == NULL
// is fri_mf_user_item_stats. Same buffers and errors.
FR_NODISCARD fr_err fri_bpmf_user_item_stats(float *gram_out, size_t gram_len,
    float *h_out, size_t h_len, const float *p, float bu, const float *cov,
    uint32_t k, float mu, const float *ratings, size_t n);

// Adds one factor vector x (d floats) into the hyperparameter statistics:
// sum_x (d doubles) += x, sum_xx (fri_packed_len(d) doubles) += x x^T.
// Any NULL pointer makes it a no-op.
void fri_bpmf_hyper_stats(
    double *sum_x, double *sum_xx, const float *x, uint32_t d);

// Draws (mean, precision) of a prior from its Normal-Wishart posterior given
// n vectors with sums sum_x / sum_xx (above). Hyperprior (as in the BPMF
// paper): mean ~ N(0, (beta0 prec)^-1), prec ~ Wishart(W0 = w0 I, nu0 = d),
// beta0, w0 > 0. rng == NULL
// returns the posterior means (E[mean], E[precision]). mean_out d floats,
// prec_out d x d full. FR_EINVAL on bad arguments, FR_EINTERNAL if not
// positive definite, FR_ENOMEM.
FR_NODISCARD fr_err fri_bpmf_hyper_sample(float *mean_out, float *prec_out,
    const double *sum_x, const double *sum_xx, double n, uint32_t d,
    double beta0, double w0, fri_rng *rng);

// Gamma(shape, 1) draw, shape > 0 (Marsaglia-Tsang).
double fri_bpmf_gamma(fri_rng *r, double shape);

// ---- centralized Gibbs trainer ------------------------------------------

typedef enum fri_bpmf_output {
    FRI_BPMF_AVG_FACTORS = 0, // model = factors averaged over kept samples
    FRI_BPMF_MEAN_SOLVE  = 1 // model = conditional-mean sweeps afterwards
} fri_bpmf_output;

typedef struct fri_bpmf_config {
    uint32_t        k;
    uint32_t        burnin; // discarded sweeps
    uint32_t        samples; // kept sweeps (>= 1)
    uint32_t        thin; // keep every thin-th sweep after burn-in (>= 1)
    float           beta; // noise precision (initial value if sampled)
    int             sample_beta; // resample beta from Gamma(a0, b0) posterior
    float           beta0; // Normal-Wishart mean strength
    float           w0; // Wishart scale: W0 = w0 I
    float           init_std; // initial factors N(0, init_std^2), biases 0
    float           clamp_lo; // each sample's predictions clamped to [lo, hi]
    float           clamp_hi; // when lo < hi
    fri_bpmf_output output;
    uint32_t mean_sweeps; // FRI_BPMF_MEAN_SOLVE: conditional-mean sweeps
    uint64_t seed;
} fri_bpmf_config;

// Defaults from docs/BAYES.md (validation-tuned on ML-100K).
void fri_bpmf_config_init(fri_bpmf_config *c);

// Called after every sweep t (1-based). pred_avg is the running average of
// the kept samples' predictions of the query triplets (NULL before the
// first kept sample), n_kept their number. Nonzero return stops.
typedef int (*fri_bpmf_fn)(void *ctx, uint32_t sweep, const float *pred_avg,
    uint32_t n_kept, const fri_mf_model *sample);

// Gibbs sampling over train (CSR by user). If n_query > 0, pred_out
// (n_query floats) receives the averaged predictions of the query triplets
// (users/items beyond the model get mu plus the known biases). *out is the
// model chosen by c->output. Deterministic for a fixed c->seed. *out NULL
// on failure.
FR_NODISCARD fr_err fri_train_bpmf(fri_mf_model **out, float *pred_out,
    const fri_triplet *query, size_t n_query, const fri_csr *train,
    const fri_bpmf_config *c, fri_bpmf_fn cb, void *ctx);

// ---- centralized variational trainer ------------------------------------
//
// Deterministic mean-field VB (Lim & Teh 2007 style) over the same steps:
// each sweep solves every user with the items' posterior covariances
// (fri_bpmf_user_step with item_cov), sums the users' covariance-augmented
// statistics (fri_bpmf_user_item_stats) into the item steps, sets both
// priors to their Normal-Wishart posterior means (fri_bpmf_hyper_sample,
// rng NULL, with the covariances added into sum_xx) and, if update_beta,
// beta = n_ratings / E[sum of squared errors].

typedef struct fri_vbmf_config {
    uint32_t k;
    uint32_t sweeps;
    float    beta; // noise precision (initial value if updated)
    int      update_beta;
    float    beta0; // as in fri_bpmf_config
    float    w0;
    int      diag_item_cov; // users see only the diagonal of S_i
    float    init_std;
    uint64_t seed;
    float    svdpp; // fri_vbmf_rated_set_mean's weight, 0 = off
} fri_vbmf_config;

void fri_vbmf_config_init(fri_vbmf_config *c);

// Trains on train (CSR by user); *out holds the posterior means. cb as in
// mf.h, after every sweep. Deterministic for a fixed seed.
FR_NODISCARD fr_err fri_train_vbmf(fri_mf_model **out, const fri_csr *train,
    const fri_vbmf_config *c, fri_train_epoch_fn cb, void *ctx);

#endif
