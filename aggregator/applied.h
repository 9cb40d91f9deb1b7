// Latest statistics under secure aggregation: for each device, the round
// of its last masked delta the aggregator applied to the running sum.
//
// A member commits its pending delta when it learns the round applied it
// (SPEC §9.6 S6). One that vanished before asking would otherwise take its
// next delta against a contribution the sum no longer holds, and the sum
// would keep a stale delta of it for good. The aggregator therefore
// remembers, per device key, the last round that applied a delta of it and
// tells the device in its next SA_PARAMS (applied_round), which lets it
// commit or drop what it still holds as pending.
//
// Cost: one entry (key and round, 40 bytes, about 80 with the table's
// slack) per device whose delta was ever applied, at most
// FRI_APPLIED_MAX entries; beyond that new devices are not recorded (they
// then drop an unresolved pending delta: the gap above, for them only).
// Keys are hashed with a secret SipHash key, so chosen keys cannot make
// lookups slow.
#ifndef FR_AGGREGATOR_APPLIED_H
#define FR_AGGREGATOR_APPLIED_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"

#define FRI_APPLIED_KEYBYTES 32
#define FRI_APPLIED_MAX ((size_t) 1 << 22)

typedef struct fri_applied fri_applied;

// An empty table, or NULL when out of memory.
fri_applied *fri_applied_create(void);
void         fri_applied_destroy(fri_applied *t);

// Records that round applied a delta of the device key (a later round
// replaces an earlier one; round 0 is refused: FR_EINVAL). FR_ETOOBIG when
// the table holds FRI_APPLIED_MAX devices and key is not among them;
// FR_ENOMEM if it could not grow (the table is unchanged either way).
FR_NODISCARD fr_err fri_applied_set(fri_applied *t, const uint8_t *key,
                                    uint64_t round);

// The round last recorded for key, 0 if none.
uint64_t fri_applied_get(const fri_applied *t, const uint8_t *key);

size_t fri_applied_count(const fri_applied *t);

// Copies every entry into keys (count x 32 bytes) and rounds (count),
// in no particular order; cap is the room in entries. FR_ENOSPC if short.
FR_NODISCARD fr_err fri_applied_export(const fri_applied *t, uint8_t *keys,
                                       uint64_t *rounds, size_t cap);

#endif
