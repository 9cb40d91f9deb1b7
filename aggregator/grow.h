// A catalog that grows while the aggregator runs (grow.c).
#ifndef FR_AGGREGATOR_GROW_H
#define FR_AGGREGATOR_GROW_H

#include <stdint.h>

#include "agg_int.h"

// Gives item rows [from, to) of Q and bi their first value: a VBMF model
// the item prior's mean (fri_vb_grow), the others small normal factors
// from a stream keyed by the seed and `from` and a zero bias, so that a
// restart that grows the same checkpoint to the same size gives the same
// model as the running aggregator did.
void fri_agg_init_rows(const fri_agg *a, float *Q, float *bi, uint32_t from,
                       uint32_t to);

// Extends every per-item array of the model and its sums to n_items and
// publishes the new count (under rounds.mtx and the accumulator lock);
// the secure round's vector is sa.c's (fri_sa_reserve before, fri_sa_fit
// after). Exclusive closer between rounds, or create before any I/O.
// FR_ESTATE while a DP-held older model is served (its arrays keep the old
// count). Nothing changes on error but capacity.
FR_NODISCARD fr_err fri_agg_grow_apply(fri_agg *a, uint32_t n_items);

// The closer between rounds: installs features handed to
// fri_agg_set_item_features (VBMF's prior refitted to the served model),
// before a pending growth so that new items start from them.
FR_NODISCARD fr_err fri_agg_take_item_features(fri_agg *a);

// The size asked for by fri_agg_grow_items and not applied yet, 0 none.
uint32_t fri_agg_grow_pending(fri_agg *a);

// What a checkpoint must have been made for (core.c checks it, the closer
// writes it): the hash of the catalog size n_items, k, the algorithm, the
// loss and a gradient run's optimizer.
void fri_agg_fingerprint(const fri_agg *a, uint32_t n_items, uint8_t out[32]);

#endif
