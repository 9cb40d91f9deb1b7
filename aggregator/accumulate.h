#ifndef FR_AGGREGATOR_ACCUMULATE_H
#define FR_AGGREGATOR_ACCUMULATE_H

#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

// Accumulation (accumulate.c). validate: shape and bounds of a plain
// update (*bounds = 1 when refused by the bounds); acc_add: adds a
// validated update (robust bounds first); acc_reset: drops the round's
// sums (closer or abandoner, exclusive) and fixes the next round's
// robust bounds.
fr_err fri_agg_validate(
    const fri_agg *a, const fri_agg_update *u, int *bounds);
fr_err fri_agg_acc_add(fri_agg *a, const fri_agg_update *u);
// The statistics norm of a plain latest-statistics update as DP bounds it
// (fri_dp_stats_norm2 on the device's layout).
fr_err fri_agg_dp_stats_norm2(const fri_agg *a, const fri_agg_update *u,
                              double *n2);
void   fri_agg_acc_reset(fri_agg *a);
// Replaces the accumulators with a dense released vector (grad: n_items
// rows of k + 1, rating sum, count); sa.c, as the closer.
fr_err fri_agg_acc_set_dense(fri_agg *a, const float *v, size_t n);

#endif
