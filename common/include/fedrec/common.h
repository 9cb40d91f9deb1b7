// Definitions shared by every fedrec library and tool: error codes, export
// and warning attributes, the version, key sizes and the logging hook.
// Included by fedrec/client.h; the aggregator and the simulator use it
// without the client's API.
#ifndef FEDREC_COMMON_H
#define FEDREC_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"     // fr_err, FR_API, FR_NODISCARD
#include "fedrec/version.h" // FR_VERSION_* (generated)

#ifdef __cplusplus
extern "C" {
#endif

// The version of the library in use (linked or loaded), as
// FR_VERSION_NUMBER and FR_VERSION_STRING describe the header compiled
// against. A program may compare fr_version() / 10000 with FR_VERSION_MAJOR
// to detect a mismatch. The string is static.
FR_API unsigned    fr_version(void);
FR_API const char *fr_version_string(void);

#define FR_SEEDBYTES 32      // identity seed (secret)
#define FR_PUBLICKEYBYTES 64 // X25519 key + Ed25519 key of an identity
#define FR_STATEKEYBYTES 32  // key for the state file's encryption at rest

typedef enum fr_log_level {
    FR_LOG_ERROR = 0,
    FR_LOG_WARN  = 1,
    FR_LOG_INFO  = 2,
    FR_LOG_DEBUG = 3,
} fr_log_level;

// Log hook: msg is valid only for the duration of the call.
typedef void (*fr_log_fn)(void *ctx, fr_log_level level, const char *msg);

#ifdef __cplusplus
}
#endif
#endif // FEDREC_COMMON_H
