// Secure aggregation on the wire (handle_sa.c), called by handle.c.
#ifndef FR_AGGREGATOR_HANDLE_SA_H
#define FR_AGGREGATOR_HANDLE_SA_H

#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

// Whether a sealed request of this type goes to fri_agg_sa_wire when
// secure aggregation is on (UPDATE included: the masked input).
int fri_agg_sa_wire_type(uint16_t type);
// Largest plain reply fri_agg_sa_wire can write (0 when off).
size_t fri_agg_sa_reply_bound(const fri_agg *a);
// Handles one opened request of an authenticated member; writes a plain
// reply frame (ACK, SA_* or ERROR) into out. *last is set when the
// member's part of the round is over (the session may be dropped).
fr_err fri_agg_sa_wire(fri_agg *a, uint64_t now_ms,
    const uint8_t pk[FRI_AGG_KEYBYTES], uint16_t type, const uint8_t *plain,
    size_t plain_len, uint8_t *out, size_t cap, size_t *len, int *last);

#endif
