// Latest statistics without secure aggregation (cfg.stats_latest, plain):
// the standing contribution of each device, i.e. what the running sum
// holds for it.
//
// A device reports the change of its contribution (new - old, SPEC
// §5.4.1). Bounding each change (bounds.c, check_delta) does not bound the
// device: changes add up round after round, and negative counts could
// drive the running rating count to 0, which stops the model. The ledger
// closes that: the aggregator adds each accepted change to the device's
// standing contribution and accepts the change only if the result is
// empty (a retraction) or one whole contribution within the bounds a
// plain, non-delta update is held to (the caller checks it). So at every
// moment one device holds at most one bounded contribution in the sum,
// whatever it sent before.
//
// A device whose change does not land on a valid contribution (its record
// and the aggregator's differ: a crash between its ACK and the round's
// checkpoint, or a deviating device) is put back in step: the aggregator
// takes the standing contribution out of the sum itself (fri_ledger_
// retraction, added to the round's sums), stages the empty record and
// refuses the report with FR_ERESYNC; the device then forgets its record and
// sends its contribution whole (SPEC §5.4.1).
//
// Cost: per device key, its rated items (4 bytes each), its rows (4 (k+1)
// bytes each), one packed Gram and, for VBMF, one global block: bounded by
// max-ratings rows, at most FRI_KEYMAP_MAX devices (a device beyond that
// is refused with FR_ETOOBIG).
#ifndef FR_AGGREGATOR_LEDGER_H
#define FR_AGGREGATOR_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"
#include "fedrec/err.h"

typedef struct fri_ledger       fri_ledger;
typedef struct fri_ledger_entry fri_ledger_entry;

// d = k + 1 (row width), gram_len and vb_len as in fri_agg_update;
// implicit: no re-centring on mu (iALS statistics do not depend on it).
fri_ledger *fri_ledger_create(
    uint32_t d, size_t gram_len, size_t vb_len, int implicit);
void fri_ledger_destroy(fri_ledger *L);
void fri_ledger_entry_free(fri_ledger_entry *e);

// The device's standing contribution plus the shape-checked change u,
// both expressed against mu (the served mean u was computed with), as a
// new entry in *next (owned by the caller until committed). *empty is set
// when the result is the empty contribution (every value within rounding
// of 0: a retraction). FR_ESTATE with a reason in *why when u names other
// items than the standing contribution (in the same order, as a device
// sends them) and is not a whole first contribution; FR_ETOOBIG for a
// device without record when the ledger holds FRI_KEYMAP_MAX devices.
FR_NODISCARD fr_err fri_ledger_apply(const fri_ledger *L, const uint8_t *key,
    const fri_agg_update *u, float mu, fri_ledger_entry **next, int *empty,
    const char **why);

// A view of e as an update (pointers into e), for the caller's checks.
void fri_ledger_view(
    const fri_ledger_entry *e, uint64_t round, fri_agg_update *u);

// Reserves room for one fri_ledger_stage (FR_ENOMEM), so that staging
// cannot fail after the report entered the round's sums; release returns
// an unused reservation.
FR_NODISCARD fr_err fri_ledger_reserve(fri_ledger *L);
void                fri_ledger_release(fri_ledger *L);

// A new empty standing contribution expressed against mu.
FR_NODISCARD fr_err fri_ledger_empty(
    const fri_ledger *L, float mu, fri_ledger_entry **out);

// Stages e as key's standing contribution once the round it was reported
// in is kept (taking ownership of e, also on error; a later stage of the
// same key replaces it); uses a reservation. FR_ENOMEM without one.
FR_NODISCARD fr_err fri_ledger_stage(
    fri_ledger *L, const uint8_t *key, fri_ledger_entry *e);

// Ends the round: keep != 0 (its sums were added to the running sum)
// makes the staged entries standing; otherwise they are dropped, so the
// ledger always holds what the running sum holds (a device that committed
// a report of an abandoned round is then out of step and put back in step
// as above). FR_ETOOBIG when a new device did not fit (FRI_KEYMAP_MAX; it
// is left without a record and gets FR_ERESYNC next time), FR_ENOMEM.
fr_err fri_ledger_settle(fri_ledger *L, int keep);

// The negation of key's standing contribution, re-centred on mu, as a new
// entry (NULL in *out when the device has none or it is empty).
FR_NODISCARD fr_err fri_ledger_retraction(
    const fri_ledger *L, const uint8_t *key, float mu, fri_ledger_entry **out);

size_t fri_ledger_devices(const fri_ledger *L);

// Serialized form (for the checkpoint), little-endian: u32 n | n records of
// key[32] | f32 mu | u32 rows | f64 sum | f64 count | f64 weight |
// rows u32 items | rows * d f32 | gram_len f32 | vb_len f32.
// fri_ledger_save writes at most cap bytes; *len gets the size (FR_ENOSPC
// when cap is short, with *len the size needed).
FR_NODISCARD fr_err fri_ledger_save(
    const fri_ledger *L, uint8_t *buf, size_t cap, size_t *len);
// Replaces L's records with those in buf, each checked (items below
// n_items, at most max_rows of them, every value finite). FR_EFORMAT with
// L unchanged if anything is wrong.
FR_NODISCARD fr_err fri_ledger_load(fri_ledger *L, const uint8_t *buf,
    size_t len, uint32_t n_items, double max_rows);

#endif
