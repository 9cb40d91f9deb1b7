#ifndef FR_AGGREGATOR_COUNTERS_H
#define FR_AGGREGATOR_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

// Counts a refusal (metrics.c, which reports the counters).
void fri_agg_reject_count(fri_agg *a, fri_agg_reject r);

#endif
