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
// Stops the thread (a pending send is given up) and frees u. NULL is a
// no-op.
void fri_uplink_stop(fri_uplink *u);

// The link without its thread, for a caller that runs the steps on its
// own clock (the simulator's edges): fri_uplink_step does what the thread
// does once. Freed with fri_uplink_stop.
FR_NODISCARD fr_err fri_uplink_open(fri_uplink **out, fri_agg *a,
    const char *url, uint64_t margin_ms, char *err, size_t err_cap);
// One step at now_ms (the edge's clock): when the edge's round has closed,
// sends its sums (kept for the next step while the root is unreachable),
// then checks in and, when the root's task names a newer round, opens it
// from the root's signed model. FR_OK when a round was opened; FR_ESTATE
// when there was nothing to do (the edge's round is open, or the root has
// no newer round yet); a transport or refusal error otherwise. *retry_ms:
// when a thread would try again.
FR_NODISCARD fr_err fri_uplink_step(fri_uplink *u, uint64_t now_ms,
    uint32_t *retry_ms);

#endif
