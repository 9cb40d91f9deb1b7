// Helpers shared by the message codecs (not part of the message API).
#ifndef FR_PROTO_FRAME_H
#define FR_PROTO_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "msg.h"
#include "wire.h"

// Checks a whole plain frame of the given type (R1-R8) and returns its
// body. *newer is set when the frame's minor is newer than ours (R3:
// trailing bytes beyond the fields we know are then ignored).
fr_err fri_body_get(const uint8_t *src, size_t src_len, uint16_t type,
                    size_t min_body, const uint8_t **body, size_t *body_len,
                    int *newer);

// R3: the body must be exactly `used` bytes unless the sender is newer.
static inline fr_err
fri_body_end(size_t body_len, size_t used, int newer)
{
    if (used > body_len) {
        return FR_EPROTO;
    }
    if (used < body_len && !newer) {
        return FR_EPROTO;
    }
    return FR_OK;
}

// fri_body_get then fri_body_end for a message whose body is exactly
// body_size bytes (longer only from a newer sender).
fr_err fri_body_fixed(const uint8_t *src, size_t src_len, uint16_t type,
                      size_t body_size, const uint8_t **body);

// Writes a plain header for type with our version; checks capacity and
// the frame limit. Returns the body pointer in *body.
fr_err fri_frame_begin(uint8_t *dst, size_t dst_cap, uint16_t type,
                       size_t body_len, uint8_t **body);

static inline int
fri_finite(float f)
{
    return (fri_f32_bits(f) & 0x7f800000u) != 0x7f800000u;
}

#endif
