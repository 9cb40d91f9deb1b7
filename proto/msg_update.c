// UPDATE: a client's statistics, gradient or delta rows. Layout (SPEC.md
// §5.7):
//   0  u64 round_id
//   8  u8 kind  9 u8 layout  10 u8 vtype  11 u8 frac_bits
//   12 u32 k    16 u32 width  20 u32 n_rows  24 u32 n_extra  28 f32 weight
//   32 extra[n_extra] (4 bytes each)
//   then n_rows rows: [u32 item if SPARSE] value[width] (4 bytes each)
// Values are f32 (vtype F32) or u32 (vtype FIXED, arithmetic mod 2^32).
#include <string.h>

#include "frame.h"
#include "msg.h"
#include "wire.h"

static uint64_t
rec_bytes(uint8_t layout, uint32_t width)
{
    return (layout == FRI_UPD_SPARSE ? 4ull : 0ull) + 4ull * width;
}

// Body size, 0 if a limit (R13, R6) is exceeded.
static uint64_t
body_size(uint8_t layout, uint32_t width, uint32_t n_rows, uint32_t n_extra)
{
    if (width == 0 || width > FRI_MAX_WIDTH || n_rows > FRI_MAX_ITEMS ||
        n_extra > FRI_MAX_EXTRA || layout > FRI_UPD_SPARSE) {
        return 0;
    }
    // <= 2^24 * 4100 + 2^19: no 64-bit overflow.
    uint64_t s = FRI_UPDATE_FIXED + 4ull * n_extra +
                 (uint64_t) n_rows * rec_bytes(layout, width);
    if (s > FRI_MAX_FRAME - FRI_HDR_LEN) {
        return 0;
    }
    return s;
}

size_t
fri_update_size(uint8_t layout, uint32_t width, uint32_t n_rows,
                uint32_t n_extra)
{
    uint64_t s = body_size(layout, width, n_rows, n_extra);
    return s == 0 ? 0 : (size_t) (FRI_HDR_LEN + s);
}

static uint64_t
als_extra(uint32_t k)
{
    return (uint64_t) (k + 1) * (k + 2) / 2 + 2;
}

uint32_t
fri_update_vb_extra(uint32_t k)
{
    if (k == 0 || k > FRI_MAX_K) {
        return 0;
    }
    uint64_t p = (uint64_t) (k + 1) * (k + 2) / 2;
    uint64_t n = 2 * p + (k + 1) + 4;
    return n > FRI_MAX_EXTRA ? 0 : (uint32_t) n;
}

// Field rules shared by encoder and decoder (sizes checked separately).
static fr_err
fields_check(const fri_update *u)
{
    if (u->kind < FRI_UPD_ALS || u->kind > FRI_UPD_VB ||
        u->layout > FRI_UPD_SPARSE || u->vtype > FRI_VAL_FIXED) {
        return FR_EPROTO; // R10
    }
    if (u->k == 0 || u->width == 0) {
        return FR_EPROTO; // R12, R13
    }
    if (u->k > FRI_MAX_K || u->width > FRI_MAX_WIDTH ||
        u->n_rows > FRI_MAX_ITEMS || u->n_extra > FRI_MAX_EXTRA) {
        return FR_ETOOBIG; // R12, R13
    }
    if ((u->vtype == FRI_VAL_F32 && u->frac_bits != 0) || u->frac_bits > 31) {
        return FR_EPROTO; // R15
    }
    if (u->kind == FRI_UPD_ALS && u->vtype == FRI_VAL_FIXED) {
        // R15a: masked ALS statistics, dense rows [packed Gram | h] and
        // (rating sum, count); R15c: masked iALS statistics, dense rows
        // [packed k x k Gram | c p | c] and (packed p p^T, value sum,
        // count).
        uint64_t d = (uint64_t)u->k + 1, Pk = (uint64_t)u->k * d / 2;
        int      als  = u->width == d * (d + 1) / 2 + d && u->n_extra == 2;
        int      ials = u->width == Pk + d && u->n_extra == Pk + 2;
        if (u->layout != FRI_UPD_DENSE || !(als || ials)) {
            return FR_EPROTO;
        }
    } else if (u->kind == FRI_UPD_VB && u->vtype == FRI_VAL_FIXED) {
        // R15b: a masked VB statistics delta, dense rows [packed Gram | h]
        // and (global block, rating sum, count).
        uint64_t d = (uint64_t) u->k + 1, P = d * (d + 1) / 2;
        if (u->layout != FRI_UPD_DENSE || u->width != P + d ||
            u->n_extra != d + P + 4) {
            return FR_EPROTO;
        }
        return fri_finite(u->weight) && u->weight >= 0.0f ? FR_OK
                                                           : FR_EPROTO;
    } else if (u->width != u->k + 1) {
        return FR_EPROTO; // R15: every defined kind sends [q_i; b_i]
    } else if (u->kind == FRI_UPD_ALS && u->n_extra != als_extra(u->k)) {
        return FR_EPROTO; // R15: packed Gram + (sum ratings, count)
    }
    if (u->kind == FRI_UPD_VB &&
        (fri_update_vb_extra(u->k) == 0 ||
         u->n_extra != fri_update_vb_extra(u->k))) {
        return FR_EPROTO; // R32
    }
    if (!fri_finite(u->weight) || u->weight < 0.0f) {
        return FR_EPROTO; // R11
    }
    return FR_OK;
}

static int
host_nonfinite(const void *v, size_t n)
{
    const uint8_t *p = v;
    uint32_t       bad = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t x;
        memcpy(&x, p + 4 * i, 4);
        bad |= (uint32_t) ((x & 0x7f800000u) == 0x7f800000u);
    }
    return bad != 0;
}

fr_err
fri_update_encode(uint8_t *dst, size_t dst_cap, size_t *dst_len,
                  const fri_update *u)
{
    fr_err e = fields_check(u);
    if (e != FR_OK) {
        return e == FR_ETOOBIG ? e : FR_EINVAL;
    }
    size_t   stride = u->stride ? u->stride : u->width;
    uint64_t bs = body_size(u->layout, u->width, u->n_rows, u->n_extra);
    if (bs == 0) {
        return FR_ETOOBIG;
    }
    if (stride < u->width || (u->n_extra > 0 && u->extra == NULL) ||
        (u->n_rows > 0 && u->rows == NULL) ||
        (u->layout == FRI_UPD_SPARSE && u->n_rows > 0 && u->items == NULL)) {
        return FR_EINVAL;
    }
    const int f32 = u->vtype == FRI_VAL_F32;
    if (f32 && host_nonfinite(u->extra, u->n_extra)) {
        return FR_EINVAL; // R11
    }
    if (u->layout == FRI_UPD_SPARSE) {
        for (uint32_t r = 0; r < u->n_rows; r++) {
            if (u->items[r] >= FRI_MAX_ITEMS ||
                (r > 0 && u->items[r] <= u->items[r - 1])) {
                return FR_EINVAL; // R14
            }
        }
    }
    uint8_t *b;
    if ((e = fri_frame_begin(dst, dst_cap, FRI_T_UPDATE, (size_t) bs, &b)) !=
        FR_OK) {
        return e;
    }
    fri_put64(b, u->round_id);
    b[8] = u->kind;
    b[9] = u->layout;
    b[10] = u->vtype;
    b[11] = u->frac_bits;
    fri_put32(b + 12, u->k);
    fri_put32(b + 16, u->width);
    fri_put32(b + 20, u->n_rows);
    fri_put32(b + 24, u->n_extra);
    fri_putf32(b + 28, u->weight);
    uint8_t *p = b + FRI_UPDATE_FIXED;
    fri_put_array32(p, u->extra, u->n_extra);
    p += 4 * (size_t) u->n_extra;
    const uint8_t *rows = u->rows;
    size_t         rb = 4 * (size_t) u->width;
    if (u->layout == FRI_UPD_DENSE && stride == u->width) {
        fri_put_array32(p, rows, (size_t) u->n_rows * u->width);
    } else {
        for (uint32_t r = 0; r < u->n_rows; r++) {
            if (u->layout == FRI_UPD_SPARSE) {
                fri_put32(p, u->items[r]);
                p += 4;
            }
            fri_put_array32(p, rows + 4 * stride * r, u->width);
            p += rb;
        }
    }
    // R11 on the encoded bytes: one pass over what is already in cache,
    // cheaper than a separate scan of a strided input.
    if (f32) {
        const uint8_t *q = b + FRI_UPDATE_FIXED + 4 * (size_t) u->n_extra;
        int            bad;
        if (u->layout == FRI_UPD_DENSE) {
            bad = fri_any_nonfinite_le(q, (size_t) u->n_rows * u->width);
        } else {
            bad = 0;
            for (uint32_t r = 0; r < u->n_rows; r++) {
                bad |= fri_any_nonfinite_le(q + 4 + (rb + 4) * r, u->width);
            }
        }
        if (bad) {
            memset(dst, 0, FRI_HDR_LEN); // not a valid frame any more
            return FR_EINVAL;
        }
    }
    *dst_len = FRI_HDR_LEN + (size_t) bs;
    return FR_OK;
}

fr_err
fri_update_decode(fri_update *u, const uint8_t *src, size_t src_len)
{
    const uint8_t *b;
    size_t         n;
    int            newer;
    memset(u, 0, sizeof(*u));
    fr_err e = fri_body_get(src, src_len, FRI_T_UPDATE, FRI_UPDATE_FIXED, &b,
                            &n, &newer);
    if (e != FR_OK) {
        return e;
    }
    fri_update v;
    memset(&v, 0, sizeof(v));
    v.round_id = fri_get64(b);
    v.kind = b[8];
    v.layout = b[9];
    v.vtype = b[10];
    v.frac_bits = b[11];
    v.k = fri_get32(b + 12);
    v.width = fri_get32(b + 16);
    v.n_rows = fri_get32(b + 20);
    v.n_extra = fri_get32(b + 24);
    v.weight = fri_getf32(b + 28);
    if ((e = fields_check(&v)) != FR_OK) {
        return e;
    }
    uint64_t bs = body_size(v.layout, v.width, v.n_rows, v.n_extra);
    if (bs == 0) {
        return FR_ETOOBIG; // R13
    }
    if ((e = fri_body_end(n, (size_t) bs, newer)) != FR_OK) {
        return e; // R13
    }
    const uint8_t *x = b + FRI_UPDATE_FIXED;
    const uint8_t *rows = x + 4 * (size_t) v.n_extra;
    const int      f32 = v.vtype == FRI_VAL_F32;
    if (f32 && fri_any_nonfinite_le(x, v.n_extra)) {
        return FR_EPROTO; // R11
    }
    if (v.layout == FRI_UPD_DENSE) {
        if (f32 && fri_any_nonfinite_le(rows, (size_t) v.n_rows * v.width)) {
            return FR_EPROTO; // R11
        }
    } else {
        size_t   rb = 4 + 4 * (size_t) v.width;
        uint32_t prev = 0;
        for (uint32_t r = 0; r < v.n_rows; r++) {
            const uint8_t *p = rows + rb * r;
            uint32_t       id = fri_get32(p);
            if (id >= FRI_MAX_ITEMS || (r > 0 && id <= prev)) {
                return FR_EPROTO; // R14
            }
            prev = id;
            if (f32 && fri_any_nonfinite_le(p + 4, v.width)) {
                return FR_EPROTO; // R11
            }
        }
    }
    v.extra_le = x;
    v.rows_le = rows;
    *u = v;
    return FR_OK;
}

void
fri_update_get_row(const fri_update *u, uint32_t r, void *out,
                   uint32_t *item)
{
    if (u->layout == FRI_UPD_SPARSE) {
        const uint8_t *p = u->rows_le + (4 + 4 * (size_t) u->width) * r;
        if (item != NULL) {
            *item = fri_get32(p);
        }
        fri_get_array32(out, p + 4, u->width);
    } else {
        if (item != NULL) {
            *item = r;
        }
        fri_get_array32(out, u->rows_le + 4 * (size_t) u->width * r,
                        u->width);
    }
}

void
fri_update_get_extra(const fri_update *u, void *out)
{
    fri_get_array32(out, u->extra_le, u->n_extra);
}
