// A map from device key to a nonzero u64, for per-device records the
// aggregator keeps across rounds and restarts:
//  - latest statistics under secure aggregation: the round of the
//    device's last masked delta applied to the running sum (SPEC §9.6
//    S6a: a member that vanished before learning the outcome resolves its
//    pending delta from its next SA_PARAMS);
//  - latest statistics without it: the index of the device's standing
//    contribution in the ledger (ledger.h).
//
// Cost: one entry (key and value, 40 bytes, about 80 with the table's
// slack) per device recorded, at most FRI_KEYMAP_MAX entries; beyond that
// new devices are not recorded (the caller says what that costs). Keys
// are hashed with a secret SipHash key, so chosen keys cannot make
// lookups slow. Entries are never removed (a device's record is replaced).
#ifndef FR_AGGREGATOR_KEYMAP_H
#define FR_AGGREGATOR_KEYMAP_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"

#define FRI_KEYMAP_KEYBYTES 32
#define FRI_KEYMAP_MAX ((size_t)1 << 22)

typedef struct fri_keymap fri_keymap;

// An empty table, or NULL when out of memory.
fri_keymap *fri_keymap_create(void);
void        fri_keymap_destroy(fri_keymap *t);

// Sets the value of key (replacing any earlier one; 0 is refused:
// FR_EINVAL). FR_ETOOBIG when
// the table holds FRI_KEYMAP_MAX devices and key is not among them;
// FR_ENOMEM if it could not grow (the table is unchanged either way).
FR_NODISCARD fr_err fri_keymap_set(
    fri_keymap *t, const uint8_t *key, uint64_t round);

// The round last recorded for key, 0 if none.
uint64_t fri_keymap_get(const fri_keymap *t, const uint8_t *key);

size_t fri_keymap_count(const fri_keymap *t);

// Copies every entry into keys (count x 32 bytes) and rounds (count),
// in no particular order; cap is the room in entries. FR_ENOSPC if short.
FR_NODISCARD fr_err fri_keymap_export(
    const fri_keymap *t, uint8_t *keys, uint64_t *rounds, size_t cap);

#endif
