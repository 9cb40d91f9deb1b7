// The root's model at an edge (upstream.c; docs/DEPLOY-TREE.md).
#ifndef FR_AGGREGATOR_UPSTREAM_H
#define FR_AGGREGATOR_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

// Edge: verifies the root's signed MODEL frame (cfg.upstream_pk), checks
// its shape and that its round is above `after`, installs its model as
// the served one (under rs.mtx) and returns a snapshot serving the frame
// byte for byte (*snap, one reference) and its round id. The caller is
// the exclusive opener.
fr_err fri_edge_model_load(fri_agg *a, const uint8_t *frame, size_t len,
    uint64_t after, uint64_t *round, fri_snap **snap);

// Edge: the catalog size of the root's signed MODEL frame (verified as
// above), so that the edge can grow to it before loading it (a root's
// catalog grows: README, "A catalog that grows"). FR_EPROTO / FR_ECRYPTO
// as above.
fr_err fri_edge_model_items(const fri_agg *a, const uint8_t *frame,
    size_t len, uint32_t *n_items);

#endif
