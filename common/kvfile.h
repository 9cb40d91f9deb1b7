// Configuration files of 'name = value' lines, the format of
// fedrec-aggregator --config and fedrec-sim --config: '#' starts a
// comment, blank lines are skipped, spaces around the name and the value
// are dropped, a leading "--" on the name is allowed (names are the flags'
// names). "config" (no nesting) and "help" are refused.
#ifndef FR_COMMON_KVFILE_H
#define FR_COMMON_KVFILE_H

#include <stddef.h>

#include "fedrec/err.h"

// Called for each setting in file order; where is "PATH:LINE" for
// messages. A non-FR_OK return stops the reading and is returned.
typedef fr_err (*fri_kv_fn)(void *ctx, const char *name, const char *value,
                            const char *where, char *err, size_t err_cap);

// Reads path (flag names the option it came from, for messages: "--config
// PATH: cannot open: ..."). FR_EIO when the file cannot be opened,
// FR_EINVAL (err says where) for a malformed line or a line of 1023
// characters or more.
FR_NODISCARD fr_err fri_kv_file_read(const char *path, const char *flag,
                                     fri_kv_fn fn, void *ctx, char *err,
                                     size_t err_cap);

#endif
