#ifndef FR_AGGREGATOR_CONFIG_H
#define FR_AGGREGATOR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

// Expected cohort size of a round under DP (config.c): the fixed
// denominator of DP-FedAvg; 0 when not determined.
double fri_agg_dp_expected_cohort(const fri_agg_config *c);

#endif
