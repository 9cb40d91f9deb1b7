// Per-user attributes for the simulator's per-group report (accuracy
// across groups of users): gender and age band from a MovieLens u.user
// file ("id|age|gender|occupation|zip", '|'-separated).
#ifndef FR_SIM_USERATTR_H
#define FR_SIM_USERATTR_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "fedrec/err.h"

#define FRI_ATTR_UNKNOWN 255u

enum { FRI_GENDER_F = 0, FRI_GENDER_M = 1, FRI_GENDER_N = 2 };
// Age bands: under 25, 25-34, 35-44, 45 and over.
enum { FRI_AGE_N = 4 };

// The band of an age in years (FRI_ATTR_UNKNOWN outside 1..120).
uint8_t fri_age_band(long age);

// Reads path and sets gender[u] and age_band[u] (n_users entries each,
// first set to FRI_ATTR_UNKNOWN) for every user u of the map; ids the map
// does not hold are skipped (users without ratings). FR_EIO (cannot read),
// FR_EFORMAT (a malformed line: fewer than 3 fields, a bad id or age, a
// gender other than M/F, a line over 4 KiB, an id twice), with "path:line:
// what" in err.
FR_NODISCARD fr_err fri_user_attrs_load(const char *path, fri_idmap *users,
                                        uint32_t n_users, uint8_t *gender,
                                        uint8_t *age_band, char *err,
                                        size_t err_cap);

#endif
