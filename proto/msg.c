// CHECKIN, TASK, GET_MODEL, ACK, ERROR and the fp16 helpers.
// Layouts: SPEC.md §5.
#include <string.h>

#include "frame.h"
#include "msg.h"
#include "wire.h"

#define CHECK_NONNEG(x) (fri_finite(x) && (x) >= 0.0f)

// ---- CHECKIN ----------------------------------------------------------
// u64 client_id | u32 caps | u8 major | u8 minor | u16 flags | u64 model_ver

fr_err
fri_checkin_encode(uint8_t *dst, size_t dst_cap, size_t *dst_len,
                   const fri_checkin *c)
{
    if ((c->flags & ~FRI_CHECKIN_FLAGS_KNOWN) != 0) {
        return FR_EINVAL;
    }
    uint8_t *b;
    fr_err   e = fri_frame_begin(dst, dst_cap, FRI_T_CHECKIN,
                                 FRI_CHECKIN_BODY, &b);
    if (e != FR_OK) {
        return e;
    }
    fri_put64(b, c->client_id);
    fri_put32(b + 8, c->caps);
    b[12] = c->proto_major;
    b[13] = c->proto_minor;
    fri_put16(b + 14, c->flags);
    fri_put64(b + 16, c->model_version);
    *dst_len = FRI_HDR_LEN + FRI_CHECKIN_BODY;
    return FR_OK;
}

fr_err
fri_checkin_decode(fri_checkin *c, const uint8_t *src, size_t src_len)
{
    const uint8_t *b;
    memset(c, 0, sizeof(*c));
    fr_err e = fri_body_fixed(src, src_len, FRI_T_CHECKIN,
                              FRI_CHECKIN_BODY, &b);
    if (e != FR_OK) {
        return e;
    }
    uint16_t flags = fri_get16(b + 14);
    if ((flags & ~FRI_CHECKIN_FLAGS_KNOWN) != 0) {
        return FR_EPROTO; // R10: undefined flags
    }
    c->flags = flags;
    c->client_id = fri_get64(b);
    c->caps = fri_get32(b + 8);
    c->proto_major = b[12];
    c->proto_minor = b[13];
    c->model_version = fri_get64(b + 16);
    return FR_OK;
}

// ---- TASK -------------------------------------------------------------
// u8 status | u8 algo | u8 update_kind | u8 secagg | u64 round |
// u64 model_ver | u32 k | u32 epochs | f32 reg | f32 reg_bias | f32 lr |
// f32 clip | f32 alpha | u32 deadline_ms | u32 retry_after_ms

static fr_err
task_check(const fri_task *t)
{
    if (t->status == FRI_TASK_NONE) {
        return FR_OK;
    }
    if (t->status != FRI_TASK_RUN && t->status != FRI_TASK_MODEL) {
        return FR_EPROTO; // R10
    }
    if (t->status == FRI_TASK_MODEL && t->secagg != 0) {
        return FR_EPROTO; // a model read takes no part in the masking
    }
    if (t->algo < FRI_ALGO_ALS || t->algo > FRI_ALGO_VBMF ||
        t->update_kind < FRI_UPD_ALS || t->update_kind > FRI_UPD_VB ||
        t->secagg > 1 || t->weighted > 2 || t->stats_delta > 1 ||
        (t->stats_delta && t->update_kind != FRI_UPD_ALS &&
         t->update_kind != FRI_UPD_VB)) {
        return FR_EPROTO; // R10
    }
    if (t->k == 0) {
        return FR_EPROTO; // R12
    }
    if (t->k > FRI_MAX_K) {
        return FR_ETOOBIG; // R12
    }
    if (!CHECK_NONNEG(t->reg) || !CHECK_NONNEG(t->reg_bias) ||
        !CHECK_NONNEG(t->lr) || !CHECK_NONNEG(t->clip) ||
        !CHECK_NONNEG(t->alpha)) {
        return FR_EPROTO; // R11
    }
    return FR_OK;
}

fr_err
fri_task_encode(uint8_t *dst, size_t dst_cap, size_t *dst_len,
                const fri_task *t)
{
    fri_task z;
    if (t->status == FRI_TASK_NONE) {
        // R18: a "no task" carries only the retry delay.
        memset(&z, 0, sizeof(z));
        z.status = FRI_TASK_NONE;
        z.retry_after_ms = t->retry_after_ms;
        t = &z;
    } else if (task_check(t) != FR_OK) {
        return FR_EINVAL;
    }
    uint8_t *b;
    fr_err e = fri_frame_begin(dst, dst_cap, FRI_T_TASK, FRI_TASK_BODY, &b);
    if (e != FR_OK) {
        return e;
    }
    b[0] = t->status;
    b[1] = t->algo;
    b[2] = t->update_kind;
    b[3] = t->secagg;
    fri_put64(b + 4, t->round_id);
    fri_put64(b + 12, t->model_version);
    fri_put32(b + 20, t->k);
    fri_put32(b + 24, t->local_epochs);
    fri_putf32(b + 28, t->reg);
    fri_putf32(b + 32, t->reg_bias);
    fri_putf32(b + 36, t->lr);
    fri_putf32(b + 40, t->clip);
    fri_putf32(b + 44, t->alpha);
    fri_put32(b + 48, t->deadline_ms);
    fri_put32(b + 52, t->retry_after_ms);
    b[56] = t->weighted;
    b[57] = t->stats_delta;
    b[58] = b[59] = 0;
    *dst_len = FRI_HDR_LEN + FRI_TASK_BODY;
    return FR_OK;
}

fr_err
fri_task_decode(fri_task *t, const uint8_t *src, size_t src_len)
{
    const uint8_t *b;
    memset(t, 0, sizeof(*t));
    fr_err e = fri_body_fixed(src, src_len, FRI_T_TASK, FRI_TASK_BODY, &b);
    if (e != FR_OK) {
        return e;
    }
    fri_task v;
    v.status = b[0];
    v.algo = b[1];
    v.update_kind = b[2];
    v.secagg = b[3];
    v.round_id = fri_get64(b + 4);
    v.model_version = fri_get64(b + 12);
    v.k = fri_get32(b + 20);
    v.local_epochs = fri_get32(b + 24);
    v.reg = fri_getf32(b + 28);
    v.reg_bias = fri_getf32(b + 32);
    v.lr = fri_getf32(b + 36);
    v.clip = fri_getf32(b + 40);
    v.alpha = fri_getf32(b + 44);
    v.deadline_ms = fri_get32(b + 48);
    v.retry_after_ms = fri_get32(b + 52);
    v.weighted = b[56];
    v.stats_delta = b[57];
    if (b[58] != 0 || b[59] != 0) {
        return FR_EPROTO; // R9
    }
    if (v.status == FRI_TASK_NONE) {
        // R18: everything but retry_after_ms is zero.
        for (size_t i = 1; i < FRI_TASK_BODY; i++) {
            if ((i < 52 || i >= 56) && b[i] != 0) {
                return FR_EPROTO;
            }
        }
    } else if ((e = task_check(&v)) != FR_OK) {
        return e;
    }
    *t = v;
    return FR_OK;
}

// ---- GET_MODEL --------------------------------------------------------
// u64 round | u64 have_version | u8 accept | u8[3] 0

fr_err
fri_get_model_encode(uint8_t *dst, size_t dst_cap, size_t *dst_len,
                     const fri_get_model *g)
{
    if ((g->accept & FRI_ENC_F32_BIT) == 0) {
        return FR_EINVAL; // R10: fp32 is mandatory; other bits are kept
    }
    uint8_t *b;
    fr_err   e = fri_frame_begin(dst, dst_cap, FRI_T_GET_MODEL,
                                 FRI_GET_MODEL_BODY, &b);
    if (e != FR_OK) {
        return e;
    }
    fri_put64(b, g->round_id);
    fri_put64(b + 8, g->have_version);
    b[16] = g->accept;
    b[17] = b[18] = b[19] = 0;
    *dst_len = FRI_HDR_LEN + FRI_GET_MODEL_BODY;
    return FR_OK;
}

fr_err
fri_get_model_decode(fri_get_model *g, const uint8_t *src, size_t src_len)
{
    const uint8_t *b;
    memset(g, 0, sizeof(*g));
    fr_err e = fri_body_fixed(src, src_len, FRI_T_GET_MODEL,
                              FRI_GET_MODEL_BODY, &b);
    if (e != FR_OK) {
        return e;
    }
    if (b[17] != 0 || b[18] != 0 || b[19] != 0) {
        return FR_EPROTO; // R9
    }
    // R10: unknown encodings are ignored (a newer peer may offer more),
    // but fp32 is mandatory.
    if ((b[16] & FRI_ENC_F32_BIT) == 0) {
        return FR_EPROTO;
    }
    g->round_id = fri_get64(b);
    g->have_version = fri_get64(b + 8);
    g->accept = b[16];
    return FR_OK;
}

// ---- ACK --------------------------------------------------------------
// u16 of_type | u16 0 | u64 round

fr_err
fri_ack_encode(uint8_t *dst, size_t dst_cap, size_t *dst_len,
               const fri_ack *a)
{
    uint8_t *b;
    fr_err e = fri_frame_begin(dst, dst_cap, FRI_T_ACK, FRI_ACK_BODY, &b);
    if (e != FR_OK) {
        return e;
    }
    fri_put16(b, a->of_type);
    fri_put16(b + 2, 0);
    fri_put64(b + 4, a->round_id);
    *dst_len = FRI_HDR_LEN + FRI_ACK_BODY;
    return FR_OK;
}

fr_err
fri_ack_decode(fri_ack *a, const uint8_t *src, size_t src_len)
{
    const uint8_t *b;
    memset(a, 0, sizeof(*a));
    fr_err e = fri_body_fixed(src, src_len, FRI_T_ACK, FRI_ACK_BODY, &b);
    if (e != FR_OK) {
        return e;
    }
    if (fri_get16(b + 2) != 0) {
        return FR_EPROTO; // R9
    }
    a->of_type = fri_get16(b);
    a->round_id = fri_get64(b + 4);
    return FR_OK;
}

// ---- ERROR ------------------------------------------------------------
// u32 code | u16 of_type | u16 text_len | u64 round | u32 retry_after_ms |
// u8[text_len] text

size_t
fri_error_size(uint16_t text_len)
{
    if (text_len > FRI_MAX_ERRTEXT) {
        return 0;
    }
    return FRI_HDR_LEN + FRI_ERROR_FIXED + (size_t) text_len;
}

fr_err
fri_error_encode(uint8_t *dst, size_t dst_cap, size_t *dst_len,
                 const fri_error *er)
{
    if (er->code == 0 || er->text_len > FRI_MAX_ERRTEXT ||
        (er->text_len > 0 && er->text == NULL)) {
        return FR_EINVAL;
    }
    uint8_t *b;
    fr_err   e = fri_frame_begin(dst, dst_cap, FRI_T_ERROR,
                                 FRI_ERROR_FIXED + (size_t) er->text_len, &b);
    if (e != FR_OK) {
        return e;
    }
    fri_put32(b, er->code);
    fri_put16(b + 4, er->of_type);
    fri_put16(b + 6, er->text_len);
    fri_put64(b + 8, er->round_id);
    fri_put32(b + 16, er->retry_after_ms);
    if (er->text_len > 0) {
        memcpy(b + FRI_ERROR_FIXED, er->text, er->text_len);
    }
    *dst_len = FRI_HDR_LEN + FRI_ERROR_FIXED + (size_t) er->text_len;
    return FR_OK;
}

fr_err
fri_error_decode(fri_error *er, const uint8_t *src, size_t src_len)
{
    const uint8_t *b;
    size_t         n;
    int            newer;
    memset(er, 0, sizeof(*er));
    fr_err e = fri_body_get(src, src_len, FRI_T_ERROR, FRI_ERROR_FIXED, &b,
                            &n, &newer);
    if (e != FR_OK) {
        return e;
    }
    uint32_t code = fri_get32(b);
    uint16_t tl = fri_get16(b + 6);
    if (code == 0) {
        return FR_EPROTO; // R17
    }
    if (tl > FRI_MAX_ERRTEXT) {
        return FR_ETOOBIG; // R17
    }
    if ((e = fri_body_end(n, FRI_ERROR_FIXED + (size_t) tl, newer)) !=
        FR_OK) {
        return e;
    }
    er->code = code;
    er->of_type = fri_get16(b + 4);
    er->text_len = tl;
    er->round_id = fri_get64(b + 8);
    er->retry_after_ms = fri_get32(b + 16);
    er->text = (const char *) (b + FRI_ERROR_FIXED);
    return FR_OK;
}

// ---- fp16 -------------------------------------------------------------

uint16_t
fri_f32_to_f16(float f)
{
    uint32_t x = fri_f32_bits(f);
    uint16_t sign = (uint16_t) ((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) { // inf or NaN
        return (uint16_t) (sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0));
    }
    if (ax >= 0x477ff000u) { // rounds to >= 65520: overflow to inf
        return (uint16_t) (sign | 0x7c00u);
    }
    if (ax < 0x38800000u) { // below the smallest normal half: subnormal
        if (ax < 0x33000000u) { // < 2^-25: rounds to zero
            return sign;
        }
        uint32_t m = (ax & 0x007fffffu) | 0x00800000u;
        int      shift = 126 - (int) (ax >> 23); // 14..24 for exp 102..112
        uint32_t q = m >> (shift);
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) {
            q++;
        }
        return (uint16_t) (sign | q);
    }
    uint32_t r = ax - 0x38000000u; // rebias exponent 127 -> 15
    uint32_t q = r >> 13;
    uint32_t rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1u))) {
        q++;
    }
    return (uint16_t) (sign | q);
}

float
fri_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t) (h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    uint32_t x;
    if (e == 0) {
        if (m == 0) {
            x = sign;
        } else { // subnormal: normalise
            int sh = 0;
            while ((m & 0x400u) == 0) {
                m <<= 1;
                sh++;
            }
            m &= 0x3ffu;
            x = sign | ((uint32_t) (113 - sh) << 23) | (m << 13);
        }
    } else if (e == 31) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e + 112) << 23) | (m << 13);
    }
    return fri_bits_f32(x);
}
