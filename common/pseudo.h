// Pseudo-items: hiding which items a user rated (FedRec, Lin et al. 2020,
// "FedRec: Federated Recommendation with Explicit Feedback", IEEE
// Intelligent Systems). Besides the rows of its rated set I_u a client
// sends rows for round(rho * |I_u|) items it did NOT rate, filled with a
// virtual rating, so the aggregator sees a superset of I_u whose fake rows
// look like real ones.
//
// Cost: every pseudo item adds one row of k+1 floats plus its 4-byte id to
// the upload (and, in ALS mode, one more item the aggregator adds the
// user's Gram to). rho = 1 doubles the update.
//
// Bias: a fake row is a rating that does not exist, so it moves the item
// model (the FedRec paper's privacy/accuracy trade-off). The fills below:
//
//   FRI_PSEUDO_FILL_PREDICT (default): virtual rating = the current
//     prediction mu + b_u + b_i + p_u.q_i plus N(0, (noise_scale * s_u)^2),
//     s_u the spread (RMS) of the user's residuals on its real ratings.
//     The error term of the row is then zero-mean and has the spread of
//     the real rows, so row norms match in distribution; the penalty term
//     (gradient mode) is kept, so every fake row is exactly what a real
//     rating of that value would give. Remaining bias: gradient mode adds
//     one extra penalty reg*[q_i; b_i] per fake row (extra shrinkage of the
//     pseudo items); ALS mode adds the Gram and x*(predicted residual),
//     which the current [q_i; b_i] satisfies exactly, so a fake row pulls
//     item i towards its current value (damping) instead of elsewhere.
//   FRI_PSEUDO_FILL_ZERO_MEAN: same virtual rating, but in gradient mode
//     the penalty term is dropped, so a fake row is -eps*[p_u; 1] with eps
//     zero-mean: its expected contribution to the summed gradient is
//     exactly zero (it only adds variance). Price: an aggregator that
//     knows q_i, b_i and reg can tell such rows apart (a real row minus
//     reg*[q_i; b_i] is parallel to [p_u; 1], a fake one is not), and with
//     a strong penalty even the row norm gives them away (MovieLens 100K,
//     reg 13: AUC 0.997 among the visible rows, docs/PRIVACY.md). In ALS
//     mode it is identical to PREDICT (the per-item Gram makes a
//     zero-contribution fake row impossible).
//   FRI_PSEUDO_FILL_USER_MEAN: FedRec's "user averaging": virtual rating =
//     the mean of the user's ratings, no noise. Biased: it pulls every
//     pseudo item towards the user's mean.
//
// Sampling: pseudo items are distinct, disjoint from I_u, drawn uniformly
// among the unrated items or, if popularity weights are given, without
// replacement with probability proportional to (weight + 1) (add-one, so
// every unrated item stays possible; Efraimidis-Spirakis keys). Real rated
// items are mostly popular ones, and in gradient mode the penalty term
// reg*q_i is larger for well-trained (popular) items, so uniform fakes are
// partly recognisable there; popularity weights (e.g. the rating counts
// the aggregator publishes) close most of that gap.
//
// Reentrant, no global state; randomness only from the caller's fri_rng.
// For a deployment the rng must be seeded from a device secret (a
// predictable stream tells the aggregator which rows are fake). Fresh fakes
// every round can be intersected away across rounds (real items persist),
// so seed the stream per user and round-independently (e.g. a KDF of a
// device secret) to keep the same fake set while I_u is unchanged.
#ifndef FR_COMMON_PSEUDO_H
#define FR_COMMON_PSEUDO_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"
#include "mf.h"
#include "rng.h"

typedef enum fri_pseudo_fill {
    FRI_PSEUDO_FILL_PREDICT   = 0,
    FRI_PSEUDO_FILL_ZERO_MEAN = 1,
    FRI_PSEUDO_FILL_USER_MEAN = 2,
} fri_pseudo_fill;

// What a row is: gradient rows of fri_mf_user_item_grad, or the ALS rows
// h = [p_u; 1] * (r - mu - b_u) of fri_mf_user_item_stats.
typedef enum fri_pseudo_rows {
    FRI_PSEUDO_ROWS_GRAD = 0,
    FRI_PSEUDO_ROWS_ALS  = 1,
} fri_pseudo_rows;

typedef struct fri_pseudo_config {
    double          rho;         // pseudo items per rated item (>= 0)
    fri_pseudo_fill fill;
    float           noise_scale; // multiplies s_u (PREDICT, ZERO_MEAN)
    const float    *popularity;  // n_items weights >= 0, NULL = uniform
    size_t          popularity_len;
} fri_pseudo_config;

// rho 1, FRI_PSEUDO_FILL_PREDICT, noise_scale 1, uniform sampling.
void fri_pseudo_config_init(fri_pseudo_config *c);

// Number of pseudo items for n_rated rated items: round(rho * n_rated)
// (half away from zero), capped at the number of unrated items
// n_items - n_rated. 0 for invalid input (rho negative or not finite,
// n_rated > n_items).
size_t fri_pseudo_count(size_t n_rated, double rho, uint32_t n_items);

// Samples fri_pseudo_count(n_rated, c->rho, n_items) distinct unrated items
// into out, sorted ascending. rated must be strictly increasing and
// < n_items. *n_out is set even on FR_ENOSPC (size query; out may be NULL
// with cap 0). Same rng state -> same items.
// Errors: FR_EINVAL (NULL, unsorted or out-of-range rated ids, bad rho,
// popularity_len != n_items or a negative/non-finite weight), FR_ENOSPC,
// FR_ENOMEM.
FR_NODISCARD fr_err fri_pseudo_sample(uint32_t *out, size_t cap,
                                      size_t *n_out, const uint32_t *rated,
                                      size_t n_rated, uint32_t n_items,
                                      const fri_pseudo_config *c,
                                      fri_rng *rng);

// Virtual ratings for the pseudo items fake[0..n_fake) of a user with
// factors (p, bu), following c->fill; the real ratings (items, ratings, n)
// give s_u and the user mean. fake ids < it->n_items.
// Errors: FR_EINVAL.
FR_NODISCARD fr_err fri_pseudo_virtual_ratings(
    float *out, const uint32_t *fake, size_t n_fake, const fri_mf_items *it,
    const float *p, float bu, const uint32_t *items, const float *ratings,
    size_t n, const fri_pseudo_config *c, fri_rng *rng);

// The whole hidden-item-set step of a client. Given the user's real rows
// (rows[j*(k+1) ..] for items[j], strictly increasing, as produced by
// fri_mf_user_item_grad or fri_mf_user_item_stats from ratings), samples
// the pseudo items, computes their rows with the same formula and a
// virtual rating, and writes the merged set sorted by item id:
// items_out[r], rows_out[r*(k+1) ..] for r < *n_out = n +
// fri_pseudo_count(n, c->rho, it->n_items). is_fake (may be NULL) marks
// the fake rows (for the simulator's bookkeeping; never send it).
// *virtual_sum (may be NULL) receives the sum of the virtual ratings, so a
// client that reports (sum of ratings, count) can report them over the
// whole visible set (reporting the real count would reveal |I_u|).
// reg/reg_bias are the gradient penalties (unused for ALS rows).
// *n_out is set even on FR_ENOSPC (cap_rows counts rows).
// Errors: FR_EINVAL, FR_ENOSPC, FR_ENOMEM. On error the outputs are
// unspecified.
FR_NODISCARD fr_err fri_pseudo_merge(
    uint32_t *items_out, float *rows_out, uint8_t *is_fake, size_t cap_rows,
    size_t *n_out, double *virtual_sum, fri_pseudo_rows kind,
    const fri_mf_items *it, const float *p, float bu, float reg,
    float reg_bias, const uint32_t *items, const float *ratings,
    const float *rows, size_t n, const fri_pseudo_config *c, fri_rng *rng);

#endif
