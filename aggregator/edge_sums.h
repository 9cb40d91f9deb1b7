// An edge's round sums and the root's model at the edge (edge_sums.c;
// docs/DEPLOY-TREE.md). The public part is in tree.h.
#ifndef FR_AGGREGATOR_EDGE_SUMS_H
#define FR_AGGREGATOR_EDGE_SUMS_H

#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

// Edge, as the closer: a copy of the round's sums (rows in item order)
// for round, from n_devices updates. FR_ESTATE when they are empty.
fr_err fri_edge_sums_take(
    fri_agg *a, uint64_t round, uint32_t n_devices, fri_agg_sums *out);
// Root: FR_OK when s has a's shape and lies within the bounds that
// s->n_devices bounded devices satisfy; else FR_EPROTO (FR_ETOOBIG for
// too many devices) and *why names the broken bound.
fr_err fri_edge_sums_check(
    const fri_agg *a, const fri_agg_sums *s, const char **why);
// Root: adds checked sums to the round's (all or nothing).
fr_err fri_edge_sums_add(fri_agg *a, const fri_agg_sums *s);
#endif
