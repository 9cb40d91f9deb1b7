#ifndef FR_AGGREGATOR_CARRY_H
#define FR_AGGREGATOR_CARRY_H

#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

// The carried / latest item statistics' tables (carry.c), allocated on
// first use, with a zeroed row for every item the round touched that has
// none yet. FR_ENOMEM leaves the tables unallocated or some rows missing
// (the carried sums themselves are unchanged either way).
fr_err fri_agg_carry_ensure(fri_agg *a);

// Sets the carried statistics from a checkpoint: rows (n x a->acc_len) of
// the distinct items, and the carried rating sum and count. The tables
// must be empty (a fresh aggregator). FR_ENOMEM (tables left empty).
fr_err fri_agg_carry_restore(fri_agg *a, const uint32_t *items,
                             const float *rows, uint32_t n, double sum,
                             double count);

#endif
