// Recency weighting of implicit feedback: interests drift, and what a user
// touched last says most about what they touch next. A device fits its
// user vector with each interaction's strength scaled by
//   2^(-r / h),  r = the number of the user's interactions newer than it
// (by timestamp; equal timestamps share a weight), h = the half-life in
// interactions. Counting interactions rather than seconds needs no time
// scale per data set, and a history without timestamps (all equal) keeps
// every weight at 1. Only the user side is weighted: the item statistics
// a device reports carry the unweighted strengths, so the item factors
// still learn from whole histories (measured: docs/BENCHMARKS.md,
// "Recency").
#ifndef FR_COMMON_RECENCY_H
#define FR_COMMON_RECENCY_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"

// Half-life of the device default, chosen on ML-100K's leave-last-out
// validation item (docs/BENCHMARKS.md).
#define FRI_RECENCY_DEFAULT 3.0f
// Largest half-life accepted (larger is "off" in all but name).
#define FRI_RECENCY_MAX 1e6f

// out[j] = values[j] * 2^(-r_j / h) for the n entries (ts[j] their
// timestamps; out may alias values). h == 0: out = values. scratch holds
// n int64_t (may be NULL when n <= 1). FR_EINVAL: h negative, not finite
// or above FRI_RECENCY_MAX, or NULL arrays with n > 0.
FR_NODISCARD fr_err fri_recency_weigh(float *out, const float *values,
    const int64_t *ts, size_t n, float h, int64_t *scratch);

// ---- the last-item term of implicit ranking --------------------------
//
// What a user touched last predicts what it touches next beyond what its
// (recency-weighted) user vector says: FPMC's transition term with the
// transition factors tied to the item factors. A device adds to item i's
// implicit score
//   kappa * cos(t, q_i),   t = the mean unit factor vector of its newest
//                              interaction(s) by timestamp,
//   kappa = w * sd_i(p . q_i) / sd_i(cos(t, q_i)) over the catalog,
// i.e. the two scores standardized over the catalog and added with weight
// w on the second (docs/BEHAVIOUR.md). Device-side only: nothing changes
// on the wire.

// Weight of the device default, chosen on ML-100K's leave-last-out
// validation item (docs/BENCHMARKS.md, "A last-item term"); at most MAX.
#define FRI_TRANSITION_DEFAULT 1.0f
#define FRI_TRANSITION_MAX 100.0f

// t_out (k floats) = the mean of q_i / |q_i| over the interactions (items
// below n_items only) whose timestamp is the largest; inv_norm as below.
// Returns 1 with a profile; 0 (t_out zeroed) when there is none: no
// catalog interaction, or more than one and all at one timestamp (no
// order to follow), or only zero factor vectors.
int fri_transition_profile(float *t_out, const float *Q,
    const float *inv_norm, uint32_t n_items, uint32_t k,
    const uint32_t *items, const int64_t *ts, size_t n);

// Every catalog item's score with the term, in one pass over Q (the two
// dot products of a row share its read): scores[i] = offset + bi[i] +
// p . q_i + kappa cos(t, q_i); returns kappa, 0 (scores without the term)
// when either score does not vary over the catalog. Q: the item rows (k
// floats each), inv_norm[i] = 1 / |q_i| (0 for a zero row), bi: item
// biases, offset: the global mean plus the user's bias, cos_scratch:
// n_items floats.
float fri_transition_scores(float *scores, float *cos_scratch, const float *Q,
    const float *inv_norm, const float *bi, float offset, uint32_t n_items,
    uint32_t k, const float *p, const float *t, float w);

// The same term added to scores already computed by any model (in: its
// scores of the catalog, out: with the term); returns kappa as above.
// Two passes where fri_transition_scores makes one; for evaluation.
float fri_transition_add(float *scores, float *cos_scratch, const float *Q,
    const float *inv_norm, uint32_t n_items, uint32_t k, const float *t,
    float w);

// inv_norm[i] = 1 / |q_i| over n_items rows of Q (0 for a zero row).
void fri_transition_inv_norms(float *inv_norm, const float *Q,
    uint32_t n_items, uint32_t k);

#endif
