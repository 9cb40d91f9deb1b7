// Round state (agg.c): the cohort, check-in and submit, deadlines, opening
// rounds and the hand-over to the closer. The public entry points are in
// agg.h.
#ifndef FR_AGGREGATOR_ROUNDS_H
#define FR_AGGREGATOR_ROUNDS_H

#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

// Opens the first round and starts the closer thread (cfg.closer_thread);
// FR_EINTERNAL when the thread cannot start. rounds_stop lets a pending
// close finish and stops it (after a failed start too).
fr_err fri_agg_rounds_start(fri_agg *a, uint64_t now_ms);
void   fri_agg_rounds_stop(fri_agg *a);
// Deadlines of the round (fri_agg_tick without the sessions).
void fri_agg_round_tick(fri_agg *a, uint64_t now_ms);
// Whether pk is enrolled (allow-list, or open enrolment).
int fri_agg_allowed(const fri_agg *a, const uint8_t pk[FRI_AGG_KEYBYTES]);
// Whether pk is a member of the open round that has not reported yet.
int fri_agg_is_member(
    fri_agg *a, const uint8_t pk[FRI_AGG_KEYBYTES], uint64_t round);

#endif
