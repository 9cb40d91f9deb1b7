// Formatted error text for the caller's (err, cap) buffer, the detail the
// aggregator's fallible setup functions (config, arguments, checkpoints,
// transport) hand back next to their fr_err.
#ifndef FR_AGGREGATOR_ERRBUF_H
#define FR_AGGREGATOR_ERRBUF_H

#include <stddef.h>

// printf into err (truncated to cap - 1 chars); a NULL err or cap 0 is a
// no-op, so callers may pass no buffer.
void fri_agg_seterr(char *err, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
