// Bounded influence of one device (docs/ROBUSTNESS.md, "What one device can
// do"): server-side bounds on every quantity an UPDATE reports, derived
// from the configuration (rating range, user-vector norm, residual bound,
// ratings per device), the structure each algorithm implies (a Gram of the
// form s x x^T with x = [p; 1]), and the sanity check a new model passes
// before it is committed, signed, served or checkpointed.
//
// Pure functions of (config, update) or (config, model): no lock, no
// aggregator state. Includes no proto/ header (see agg_int.h).
#ifndef FR_AGGREGATOR_BOUNDS_H
#define FR_AGGREGATOR_BOUNDS_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"

// The effective bounds of a configuration (defaults resolved).
typedef struct fri_bounds {
    double rmin, rmax;  // rating range
    double span;        // rmax - rmin
    double user_norm;   // ||p_u|| (and ||E[u]||, the user bias included)
    double residual;    // |r - mu - b_u| or |r - prediction| of one rating
    double max_rows;    // rows (ratings incl. pseudo items) per update
    double item_norm;   // ||[q_i; b_i]|| of a served model
} fri_bounds;

void fri_bounds_of(const fri_agg_config *c, fri_bounds *b);

// Checks the values of a shape-checked update u (rows_len, gram_len and
// vb_len are right, items distinct and in range, everything finite) against
// the bounds and the structure the algorithm implies. 0 if acceptable,
// else -1 with a short reason (a static string) in *why.
int fri_bounds_update(const fri_agg_config *c, const fri_agg_update *u,
                      const char **why);

// Latest statistics: the checks of a whole contribution (what
// fri_bounds_update holds a non-delta update to) on a device's standing
// contribution, a float sum of its reports (ledger.h), with a rounding
// allowance for that sum.
int fri_bounds_standing(
    const fri_agg_config *c, const fri_agg_update *u, const char **why);

// Gradient FedAvg with clip C > 0: the server's own clip of one plain
// update (what honest clients already do): returns the factors to multiply
// the rows and (sum, count) by, each <= 1 (1 for an honest update).
void fri_bounds_grad_clip(const fri_agg_config *c, const fri_agg_update *u,
                          double *row_scale, double *stat_scale);

// Sanity of a model before it is committed or after it is loaded: mu
// finite and in the rating range (or equal to mu_prev, a model that never
// saw a rating), every bias and factor finite, every item's ||[q_i; b_i]||
// within the bound. 0 if sane, else -1 with a reason (written to why).
int fri_bounds_model(const fri_agg_config *c, float mu, float mu_prev,
                     const float *bi, const float *Q, char *why,
                     size_t why_cap);

#endif
