// Latest statistics (latest.c, cfg.stats_latest).
#ifndef FR_AGGREGATOR_LATEST_H
#define FR_AGGREGATOR_LATEST_H

#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

// Folds the round's delta sums into the running sum of every device's
// latest statistics (a->stats.carry), sets mu from its rating sum and count,
// re-centres it on that mu and solves every item from it. Closer only.
fr_err fri_latest_solve(fri_agg *a, float mu_old, float *mu, float *bi,
    float *Q, float *work, size_t wl);

#endif
