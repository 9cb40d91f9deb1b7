// The secure rounds' phases (sa.c); the public entry points are in agg.h.
// A phase that ends the round reports it to the round owner (agg.c).
#ifndef FR_AGGREGATOR_SA_H
#define FR_AGGREGATOR_SA_H

#include <stddef.h>
#include <stdint.h>

#include "agg_int.h"

// Creates the state (cfg.secagg != OFF); err says why on FR_EINVAL.
fr_err fri_sa_create(fri_agg *a, char *err, size_t err_cap);
void   fri_sa_destroy(fri_agg *a);
// A catalog that grows (grow.c): room for the masked vector of n_items
// items (FR_ENOMEM leaves it as it was), then, once the catalog has grown,
// the vector's length for it. Between rounds; they take rounds.mtx.
fr_err fri_sa_reserve(fri_agg *a, uint32_t n_items);
void   fri_sa_fit(fri_agg *a);
// A new round opened at now_ms (under mtx).
void fri_sa_round_open(fri_agg *a, uint64_t now_ms);
// A new member joined (under mtx): records its key, returns its index.
uint32_t fri_sa_join(fri_agg *a, const uint8_t *pk, uint64_t now_ms);
// Whether the open round's cohort still takes members (join phase, not
// full). Under mtx.
int fri_sa_joinable(const fri_agg *a);
// Fills the secure-aggregation fields of a task (under mtx).
void fri_sa_task(const fri_agg *a, uint32_t index, fri_agg_task *t);
// Phase deadlines (not under mtx). Returns what the round owner must do
// with the round, which it moved to RS_CLOSING: 0 nothing, 1 complete,
// 2 abandon (*why, a string literal).
int fri_sa_tick(fri_agg *a, uint64_t now_ms, const char **why);
// A member's revealed shares (fri_agg_sa_unmask without ending the
// round): *act 1 when the round is to complete, 2 to be abandoned.
fr_err fri_sa_unmask(fri_agg *a, const uint8_t pk[FRI_AGG_KEYBYTES],
    uint64_t round, const uint32_t *about, const uint8_t *shares, size_t n,
    const uint32_t *corr, size_t n_corr, int *act);
// The outcome of a member's masked delta (SA_POLL want UPDATE): FR_OK
// when the round completed with pk among its survivors, *retry_after_ms
// > 0 while it is still open or closing, FR_ELATE when it was abandoned
// (or its outcome is no longer kept). Takes mtx.
fr_err fri_agg_sa_outcome(fri_agg *a, const uint8_t *pk, uint64_t round,
    uint32_t *retry_after_ms);

// The round of pk's last applied masked delta (0: none known), for its
// SA_PARAMS; *retry_ms > 0 (and 0 returned) while that round's checkpoint
// is not yet written: ask again then. Takes mtx.
uint64_t fri_agg_sa_applied_round(fri_agg *a, const uint8_t *pk,
                                  uint32_t *retry_ms);

#endif
