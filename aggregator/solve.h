#ifndef FR_AGGREGATOR_SOLVE_H
#define FR_AGGREGATOR_SOLVE_H

#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

// The end-of-round model step (solve.c): new mu, biases and factors from
// the round's sums (and the previous model in them); the closer only.
fr_err fri_agg_solve(
    fri_agg *a, uint64_t round, float *mu, float *bi, float *Q);

#endif
