#ifndef FR_AGGREGATOR_CARRY_H
#define FR_AGGREGATOR_CARRY_H

#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

// The carried / latest item statistics' tables (carry.c), allocated on
// first use; FR_ENOMEM leaves them unallocated.
fr_err fri_agg_carry_ensure(fri_agg *a);

#endif
