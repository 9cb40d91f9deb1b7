// Secure aggregation inside a check-in (checkin_sa.c): plain frames out,
// opened replies in; checkin.c seals, opens and drives the steps.
#ifndef FR_CLIENT_CHECKIN_SA_H
#define FR_CLIENT_CHECKIN_SA_H

#include <stddef.h>
#include <stdint.h>

#include "client_internal.h"
#include "msg.h"

struct fri_sa_client;

// correct: the aggregator announced SA_CORRECT (its WELCOME caps).
fr_err fri_sa_client_create(fr_client *c, struct fri_sa_client **out,
                            uint64_t round, int correct);
void   fri_sa_client_free(fr_client *c, struct fri_sa_client *s);
// Largest plain request of the exchange for a model of (k, n_items);
// als: the masked vector holds ALS statistics (rows of (k+1)(k+2)/2 + k + 1);
// vb: VBMF statistics deltas (the same rows and a global block); ials:
// iALS statistics (narrower rows, a k(k+1)/2-word global block).
size_t fri_sa_client_bound(const struct fri_sa_client *s, uint32_t k,
    uint32_t n_items, int als, int vb, int ials);
// Writes the next plain request frame into dst.
fr_err fri_sa_client_poll(fr_client *c, struct fri_sa_client *s,
                          const fri_task *t, uint8_t *dst, size_t cap,
                          size_t *len);
// Consumes an opened reply of the given type (not ERROR). On a SA_WAIT,
// *retry_after_ms > 0 and the same request is to be repeated later;
// *done once the member's part of the round is acknowledged (with
// latest statistics: once the round applied its delta, which commits it).
fr_err fri_sa_client_receive(fr_client *c, struct fri_sa_client *s,
                             const fri_task *t, uint16_t type,
                             const uint8_t *plain, size_t plain_len,
                             uint32_t *retry_after_ms, int *done);

#endif
