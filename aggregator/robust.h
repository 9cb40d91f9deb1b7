// Robust aggregation: statistical bounds on what one device can add to a
// round, applied to every validated update before it is accumulated
// (fri_agg_config.robust, on by default). The hard validity checks
// (finiteness, magnitudes, structure) come first (accumulate.c,
// bounds.c); this layer bounds influence that passes them:
//
//  - unit weight: an ALS/VBMF Gram describes x x^T with x_k = 1, so its
//    corner is 1 for one user; an update whose corner exceeds 1 (the
//    whole update scaled up, i.e. one device claiming to be many users) is
//    divided by it;
//  - user-vector norm: the Gram's factor trace E||p_u||^2 is bounded by
//    M^2 times the running median; a larger one is shrunk by transforming
//    p_u -> c p_u consistently in the Gram, the rows and the VBMF block;
//  - per-item contribution caps: each row's residual (its bias entry,
//    r - mu - b_u for ALS/VBMF) is bounded by M_RES times the running
//    median |residual|, and the whole row by the norm an honest row with
//    bounded p_u and residual can have; gradient rows by M times the median
//    row norm;
//  - global mean and weight: the device's mean rating sum/count is clamped
//    to median +- 4 IQR of recent devices' means, its count to its number
//    of rows (a heavy honest user keeps its whole say in the mean: capping
//    it at M times the median count re-weighted mu and cost accuracy) and
//    its FedAvg weight to its number of rows and M times the median count.
//    One device thus moves mu by at most n_rows / total count x 4 IQR.
//
// Medians come from sliding windows of recent values across rounds, so a
// minority of devices (< 50%) cannot move a bound. The bounds a round
// applies are fixed when it opens, from the updates of earlier rounds:
// the round's sum does not depend on the order updates arrive in, and
// devices of a round cannot shape the bounds applied to it. A bound
// applies once its window holds 16 values (until then, in the first
// round after a start, only the hard bounds of bounds.c hold). Values
// are clipped, never refused: an honest device with an unusual update
// loses little.
// Implicit (iALS) updates pass unchanged.
#ifndef FR_AGGREGATOR_ROBUST_H
#define FR_AGGREGATOR_ROBUST_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"

typedef struct fri_robust fri_robust;

// Bound multiplier M (see above), chosen on ML-100K u1 so that honest
// runs lose <= 0.3% RMSE (docs/BENCHMARKS.md, robust aggregation).
#define FRI_ROBUST_M 6.0
// Multiplier of the residual bound (|r - mu - b_u| of one rating): tighter,
// since it is what a fake rating of the maximum uses to push an item. On
// Gaussian-like residuals 4 x the median |residual| is 2.7 sigma (0.7% of
// honest rows clipped). 3 (2 sigma) blunted a 5% promotion more but cost
// 0.7-1.2% RMSE on data whose large residuals are signal (the seeded
// synthetic sets); 4 costs <= 0.11% there and keeps the 1% promotion out
// (docs/BENCHMARKS.md, robust aggregation: how it was chosen).
#define FRI_ROBUST_M_RES 4.0

// State for the configuration's algorithm; FR_ENOMEM.
FR_NODISCARD fr_err fri_robust_create(
    fri_robust **out, const fri_agg_config *cfg);
void fri_robust_destroy(fri_robust *r); // NULL is a no-op

// Bounds one validated update (thread-safe). On FR_OK *out describes the
// bounded update: its arrays live in *buf (free() it; NULL when out simply
// aliases u's arrays). items is always u's. FR_ENOMEM.
FR_NODISCARD fr_err fri_robust_bound(
    fri_robust *r, const fri_agg_update *u, fri_agg_update *out, float **buf);

// Fixes the bounds of the next round from the values observed so far.
void fri_robust_next_round(fri_robust *r); // NULL is a no-op

typedef struct fri_robust_stats {
    uint64_t updates; // updates seen
    uint64_t clipped; // updates with at least one bound applied
    uint64_t rows_clipped; // rows scaled down
} fri_robust_stats;

void fri_robust_stats_get(fri_robust *r, fri_robust_stats *s);

#endif
