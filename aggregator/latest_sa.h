// Latest statistics under secure aggregation (latest_sa.c).
#ifndef FR_AGGREGATOR_LATEST_SA_H
#define FR_AGGREGATOR_LATEST_SA_H

#include <stddef.h>

#include "agg_int.h"

// Checks the decoded sum of the survivors' masked deltas (secagg_stats.h)
// as honest deltas add up (FR_EPROTO, logged and counted, when they do
// not; FR_EINVAL for a vector of the wrong shape). Closer only.
fr_err fri_latest_sa_check(fri_agg *a, const float *v, size_t n);

#endif
