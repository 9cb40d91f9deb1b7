// An edge's link to its root (uplink.c; docs/DEPLOY-TREE.md): one thread
// that, as an authenticated client of the root (the edge's own key,
// pinned root key), hands each closed round's sums up (EDGE_SUMS) and
// opens the edge's next round from the root's task and signed model.
#ifndef FR_AGGREGATOR_UPLINK_H
#define FR_AGGREGATOR_UPLINK_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"

typedef struct fri_uplink fri_uplink;

// Starts the link of edge a (cfg.edge, cfg.upstream_pk) to the root at
// url (NNG tcp:// or ipc://). margin_ms: how long before the root's
// deadline the edge closes its round, so that its sums arrive in time.
// FR_EINVAL when a is not an edge, FR_ENET (message in err) when the
// socket cannot be made.
FR_NODISCARD fr_err fri_uplink_start(fri_uplink **out, fri_agg *a,
    const char *url, uint64_t margin_ms, char *err, size_t err_cap);
// Stops the thread (a pending send is given up). NULL is a no-op.
void fri_uplink_stop(fri_uplink *u);

#endif
