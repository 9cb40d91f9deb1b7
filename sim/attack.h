// Attacks of an honest-but-curious aggregator on what it sees of ONE
// client's update (threat model and numbers: docs/PRIVACY.md).
//
//   (a) rated-item inference: score every item from the observed update
//       (sparse rows with ids, dense rows, or masked words under secure
//       aggregation) and measure the scores against the true rated set.
//   (b) rating reconstruction (Chai et al. 2020, "Secure Federated Matrix
//       Factorization", IEEE Intelligent Systems): recover the ratings
//       from ALS statistics or gradient rows plus the public item model of
//       the round, from one round or two consecutive ones.
//
// Independent of the transport: inputs are plain arrays. Rows are k+1
// floats, row r belongs to items[r]. Reentrant, no global state. Functions
// that allocate say so; none prints.
#ifndef FR_SIM_ATTACK_H
#define FR_SIM_ATTACK_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"
#include "mf.h"

// ---------------------------------------------------------------------------
// Ranking metric

// Exact ROC AUC of scores against binary labels (nonzero = positive) by the
// rank-sum (Mann-Whitney U) statistic, ties counted 0.5, O(n log n):
//   AUC = P(score of a random positive > that of a random negative)
//         + 0.5 * P(equal).
// NaN scores are an error. Allocates O(n). Errors: FR_EINVAL (NULL with
// n > 0, NaN, no positive or no negative), FR_ENOMEM.
FR_NODISCARD fr_err fri_atk_auc(double *auc_out, const float *scores,
                                const uint8_t *labels, size_t n);

// ---------------------------------------------------------------------------
// (a) Rated-item inference

// scores[0..n_items) = L2 norm of the row(s) the update holds for each item,
// 0 for items without a row (duplicate ids add up in squares). Works for
// sparse updates (items = the touched ids) and dense ones (items = the
// round's item set). Errors: FR_EINVAL (NULL, width 0, id >= n_items).
FR_NODISCARD fr_err fri_atk_score_rows(float *scores, uint32_t n_items,
                                       const uint32_t *items,
                                       const float *rows, size_t n_rows,
                                       uint32_t width);

// The same scorer on masked fixed-point words (secure aggregation): each
// word is read as the aggregator would dequantize it, (int32)w /
// 2^frac_bits, rows laid out as in fri_atk_score_rows. Errors: as above,
// plus frac_bits > 30.
FR_NODISCARD fr_err fri_atk_score_masked(float *scores, uint32_t n_items,
                                         const uint32_t *items,
                                         const uint32_t *words,
                                         size_t n_rows, uint32_t width,
                                         unsigned frac_bits);

typedef struct fri_atk_membership {
    double prec_at_r;      // precision of the top |I_u| items (= recall@|I_u|)
    double flag_precision; // of the items scoring > threshold ("touched")
    double flag_recall;
    double auc;
    size_t n_rated;
    size_t n_flagged;
} fri_atk_membership;

// Evaluates scores[0..n_items) against the true rated set (strictly
// increasing ids < n_items, 1 <= n_rated < n_items). Ties at the |I_u|
// cut-off count fractionally (expected precision under random
// tie-breaking), so the result does not depend on item order. Items with
// score > flag_threshold are "flagged"; flag_precision is 0 when none is.
// Allocates O(n_items). Errors: FR_EINVAL, FR_ENOMEM.
FR_NODISCARD fr_err fri_atk_membership_eval(fri_atk_membership *out,
                                            const float *scores,
                                            uint32_t n_items,
                                            const uint32_t *rated,
                                            size_t n_rated,
                                            float flag_threshold);

// Mean over users of the membership metrics.
typedef struct fri_atk_membership_acc {
    double   prec_at_r, flag_precision, flag_recall, auc;
    uint64_t n_users;
} fri_atk_membership_acc;

void fri_atk_membership_acc_init(fri_atk_membership_acc *a);
void fri_atk_membership_acc_add(fri_atk_membership_acc *a,
                                const fri_atk_membership *m);
// Means (all NaN for an empty accumulator); n_rated/n_flagged are 0.
fri_atk_membership fri_atk_membership_acc_mean(
    const fri_atk_membership_acc *a);

// ---------------------------------------------------------------------------
// (b) Rating reconstruction

typedef enum fri_atk_kind {
    // ALS statistics: rows h = [p_u; 1] (r - mu - b_u), optional Gram.
    FRI_ATK_ALS = 0,
    // Gradient rows g = -e [p_u; 1] + [reg q_i; reg_bias b_i],
    // e = r - mu - b_u - b_i - p_u.q_i.
    FRI_ATK_GRAD = 1,
} fri_atk_kind;

// One observed update of one user in one round.
typedef struct fri_atk_obs {
    const uint32_t *items;      // n_rows ids, strictly increasing
    const float    *rows;       // n_rows * (k+1)
    size_t          n_rows;
    const float    *gram;       // ALS: packed Gram of [p_u; 1] or NULL
    double          rating_sum; // reported sum of ratings, NaN if hidden
    double          count;      // reported count (0: use n_rows)
    fri_mf_items    model;      // public item model the client fitted to
} fri_atk_obs;

// How b_u (the one unknown the rows leave open: they give r - b_u) is
// found.
typedef enum fri_atk_bu {
    // RATING_SUM if rating_sum is finite, else RIDGE if reg_bias > 0, else
    // TWO_ROUNDS if a second round is given, else b_u = 0.
    FRI_ATK_BU_AUTO = 0,
    // sum_i r_i = rating_sum over the visible rows.
    FRI_ATK_BU_RATING_SUM = 1,
    // The client's closed-form user solve (fri_mf_user_solve) is optimal:
    // its b_u row reads lambda_b b_u = sum_i e_i with lambda_b = reg_bias *
    // scale(count) (weighted: count, 2: sqrt(count), 0: 1). One round.
    FRI_ATK_BU_RIDGE = 2,
    // Two rounds against two models, user refitted in closed form each
    // time: per common item, b_u' - b_u = (r - b_u) - (r - b_u'), and
    // lambda_b b_u = E, lambda_b b_u' = E' with E = sum_i e_i, hence
    // lambda_b = (E' - E) / (b_u' - b_u) and b_u = E / lambda_b: neither
    // reg_bias nor the weighting need to be known (ALS mode). Needs the
    // models to differ (b_u' != b_u).
    FRI_ATK_BU_TWO_ROUNDS = 3,
    // b_u = 0: ratings up to the user's common offset.
    FRI_ATK_BU_ZERO = 4,
} fri_atk_bu;

typedef struct fri_atk_params {
    fri_atk_kind kind;
    uint32_t     k;
    float        reg;      // gradient penalties (GRAD; reg also for p_u)
    float        reg_bias; // GRAD rows and RIDGE
    int          weighted; // as fri_mf_user_solve: 0, 1 (n) or 2 (sqrt n)
    fri_atk_bu   bu;
} fri_atk_params;

void fri_atk_params_init(fri_atk_params *p); // ALS, k 0, AUTO, weighted 1

typedef struct fri_atk_recon_info {
    fri_atk_bu method;  // the b_u method actually used
    double     bu;      // estimated b_u of the first round
    double     lambda_b; // used (RIDGE) or estimated (TWO_ROUNDS)
    size_t     n_common; // TWO_ROUNDS: items visible in both rounds
} fri_atk_recon_info;

// Recovers one rating per row of r1: out[r] for r1->items[r] (out_cap >=
// r1->n_rows). r2 (may be NULL) is the same user's update of the next round
// (against r2->model); with it, ratings of items in both rounds are the mean
// of the two rounds' estimates. p_u comes from the Gram's last column (ALS
// with gram), else by least squares over the rows. An ALS Gram also undoes
// L2 clipping: its corner entry is 1 before clipping, so it equals the
// factor the whole update (rows, rating sum, count) was scaled by. Garbage in (masked or
// noisy rows) gives garbage out, never an error: non-finite intermediate
// results become NaN ratings. info may be NULL.
// Errors: FR_EINVAL (NULL, k mismatch, ids unsorted or out of range, a
// method whose inputs are missing), FR_ENOSPC, FR_ENOMEM.
FR_NODISCARD fr_err fri_atk_reconstruct(float *out, size_t out_cap,
                                        fri_atk_recon_info *info,
                                        const fri_atk_obs *r1,
                                        const fri_atk_obs *r2,
                                        const fri_atk_params *prm);

// Pooled error of recovered ratings against the truth, accumulated over
// users: a rated item counts as "found" if the update has a row for it
// (then its error enters rmse/mae/within), else as "missed"; rows for
// items the user did not rate are "false". NaN estimates count as found
// with error clamped to err_cap.
typedef struct fri_atk_recon_acc {
    double   sse, sae;
    uint64_t n_found, n_missed, n_false, n_within;
    double   within; // tolerance, default 0.5
    double   err_cap; // |error| cap (default 1e6) so one wild user cannot
                      // swamp the pooled mean
} fri_atk_recon_acc;

void fri_atk_recon_acc_init(fri_atk_recon_acc *a);
// vis_items/recovered: the attack's output (strictly increasing ids);
// true_items/true_ratings: the user's ratings (strictly increasing ids).
// Errors: FR_EINVAL (NULL, unsorted).
FR_NODISCARD fr_err fri_atk_recon_acc_add(fri_atk_recon_acc *a,
                                          const uint32_t *vis_items,
                                          const float *recovered,
                                          size_t n_vis,
                                          const uint32_t *true_items,
                                          const float *true_ratings,
                                          size_t n_true);
double fri_atk_recon_rmse(const fri_atk_recon_acc *a);   // NaN if none
double fri_atk_recon_mae(const fri_atk_recon_acc *a);    // NaN if none
double fri_atk_recon_within(const fri_atk_recon_acc *a); // fraction

#endif
