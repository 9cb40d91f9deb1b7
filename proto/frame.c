#include "frame.h"

#include <string.h>

#include "wire.h"

static const uint8_t magic[4] = { 'F', 'R', 'M', 'F' };

void
fri_hdr_put(uint8_t dst[FRI_HDR_LEN], const fri_hdr *h)
{
    memcpy(dst, magic, 4);
    dst[4] = h->major;
    dst[5] = h->minor;
    fri_put16(dst + 6, h->type);
    fri_put32(dst + 8, h->flags);
    fri_put32(dst + 12, h->body_len);
}

fr_err
fri_hdr_get(fri_hdr *h, const uint8_t *src, size_t src_len)
{
    memset(h, 0, sizeof(*h));
    if (src == NULL || src_len < FRI_HDR_LEN) {
        return FR_EPROTO; // R7: shorter than a header
    }
    if (memcmp(src, magic, 4) != 0) {
        return FR_EPROTO; // R1
    }
    h->major = src[4];
    h->minor = src[5];
    h->type = fri_get16(src + 6);
    h->flags = fri_get32(src + 8);
    h->body_len = fri_get32(src + 12);
    if (h->major != FRI_PROTO_MAJOR) {
        return FR_EVERSION; // R2
    }
    if ((h->flags & ~FRI_F_DEFINED) != 0 ||
        (h->flags & (FRI_F_SEALED | FRI_F_CLEAR)) == FRI_F_CLEAR) {
        return FR_EPROTO; // R4: CLEAR only with SEALED
    }
    if ((size_t) h->body_len > FRI_MAX_FRAME - FRI_HDR_LEN) {
        return FR_ETOOBIG; // R6
    }
    return FR_OK;
}

fr_err
fri_frame_check(fri_hdr *h, const uint8_t *src, size_t src_len)
{
    fr_err e = fri_hdr_get(h, src, src_len);
    if (e != FR_OK) {
        return e;
    }
    if ((size_t) h->body_len != src_len - FRI_HDR_LEN) {
        return FR_EPROTO; // R7
    }
    return FR_OK;
}

fr_err
fri_body_get(const uint8_t *src, size_t src_len, uint16_t type,
             size_t min_body, const uint8_t **body, size_t *body_len,
             int *newer)
{
    fri_hdr h;
    fr_err  e = fri_frame_check(&h, src, src_len);
    if (e != FR_OK) {
        return e;
    }
    if (h.type != type) {
        return FR_EPROTO; // R5
    }
    if ((h.flags & FRI_F_SEALED) != 0) {
        return FR_EPROTO; // R4: open sealed frames with the channel first
    }
    if (h.body_len < min_body) {
        return FR_EPROTO; // R8
    }
    *body = src + FRI_HDR_LEN;
    *body_len = h.body_len;
    *newer = h.minor > FRI_PROTO_MINOR;
    return FR_OK;
}

fr_err
fri_body_fixed(const uint8_t *src, size_t src_len, uint16_t type,
               size_t body_size, const uint8_t **body)
{
    size_t n;
    int    newer;
    fr_err e = fri_body_get(src, src_len, type, body_size, body, &n, &newer);
    if (e != FR_OK) {
        return e;
    }
    return fri_body_end(n, body_size, newer);
}

fr_err
fri_frame_begin(uint8_t *dst, size_t dst_cap, uint16_t type, size_t body_len,
                uint8_t **body)
{
    if (body_len > FRI_MAX_FRAME - FRI_HDR_LEN) {
        return FR_ETOOBIG;
    }
    if (dst == NULL || dst_cap < FRI_HDR_LEN + body_len) {
        return FR_ENOSPC;
    }
    fri_hdr h = { FRI_PROTO_MAJOR, FRI_PROTO_MINOR, type, 0,
                  (uint32_t) body_len };
    fri_hdr_put(dst, &h);
    *body = dst + FRI_HDR_LEN;
    return FR_OK;
}
