// Little-endian byte access for the wire format (SPEC.md §1). Every
// multi-byte field is read and written byte by byte through these helpers;
// bulk float arrays use memcpy on little-endian hosts (checked at compile
// time) and a per-element path elsewhere.
#ifndef FR_PROTO_WIRE_H
#define FR_PROTO_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) &&          \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FRI_HOST_LE 1
#elif defined(__BYTE_ORDER__) && defined(__ORDER_BIG_ENDIAN__) &&           \
    __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define FRI_HOST_LE 0
#else
#error "cannot determine host byte order"
#endif

static inline void
fri_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
}

static inline void
fri_put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
    p[2] = (uint8_t) (v >> 16);
    p[3] = (uint8_t) (v >> 24);
}

static inline void
fri_put64(uint8_t *p, uint64_t v)
{
    fri_put32(p, (uint32_t) v);
    fri_put32(p + 4, (uint32_t) (v >> 32));
}

static inline uint16_t
fri_get16(const uint8_t *p)
{
    return (uint16_t) (p[0] | ((uint16_t) p[1] << 8));
}

static inline uint32_t
fri_get32(const uint8_t *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8) |
           ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

static inline uint64_t
fri_get64(const uint8_t *p)
{
    return (uint64_t) fri_get32(p) | ((uint64_t) fri_get32(p + 4) << 32);
}

static inline uint32_t
fri_f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float
fri_bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline void
fri_putf32(uint8_t *p, float f)
{
    fri_put32(p, fri_f32_bits(f));
}

static inline float
fri_getf32(const uint8_t *p)
{
    return fri_bits_f32(fri_get32(p));
}

// Copies n 4-byte host values (float or uint32) to little-endian bytes.
static inline void
fri_put_array32(uint8_t *dst, const void *src, size_t n)
{
#if FRI_HOST_LE
    if (n > 0) {
        memcpy(dst, src, n * 4);
    }
#else
    const uint8_t *s = src;
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        memcpy(&v, s + 4 * i, 4);
        fri_put32(dst + 4 * i, v);
    }
#endif
}

// Copies n little-endian 4-byte values to host order (float or uint32).
static inline void
fri_get_array32(void *dst, const uint8_t *src, size_t n)
{
#if FRI_HOST_LE
    if (n > 0) {
        memcpy(dst, src, n * 4);
    }
#else
    uint8_t *d = dst;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = fri_get32(src + 4 * i);
        memcpy(d + 4 * i, &v, 4);
    }
#endif
}

// Nonzero if any of the n little-endian floats at p is NaN or infinite.
static inline int
fri_any_nonfinite_le(const uint8_t *p, size_t n)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = fri_get32(p + 4 * i);
        bad |= (uint32_t) ((v & 0x7f800000u) == 0x7f800000u);
    }
    return bad != 0;
}

#endif
