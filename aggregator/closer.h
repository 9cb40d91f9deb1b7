// The end of a round (closer.c); the exclusive closer only.
#ifndef FR_AGGREGATOR_CLOSER_H
#define FR_AGGREGATOR_CLOSER_H

#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

// Completes the round in RS_CLOSING: solve, sanity check, commit, DP
// accounting, checkpoint (or abandons it when the solve fails or the
// model is refused). Does not open the next round.
void fri_closer_close(fri_agg *a);
// Abandons it (why: a string literal, for the log).
void fri_closer_abandon(fri_agg *a, const char *why);
// The signed MODEL frame of round id for the served model, one reference
// held; NULL when out of memory (frame NULL when it cannot be built).
fri_snap *fri_closer_snap(fri_agg *a, uint64_t id);

#endif
