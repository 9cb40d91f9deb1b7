// MODEL: the signed item model of a round. Layout (SPEC.md §5.6):
//   0  sig[64]            Ed25519 over the rest of the body (channel.c)
//   64 u64 round_id       72 u64 version      80 u64 base_version
//   88 u8 kind  89 u8 enc  90 u16 0   92 u32 k   96 u32 n_items  100 f32 mu
//   104 f32 bias[n_items] (I8C: f16)
//   then per item row: F32: f32[k] | F16: u16[k] | I8: f32 scale, i8[k]
//   | I8C: f16 scale, i8[k]
//   kind VB then: f32 beta, f32 mean[d], f32 prec[d(d+1)/2],
//   f32 var[n_items][d]   (d = k + 1, R31)
//   I8C: the variances as f32 lo, f32 step, u8 code[n_items][d] (R37)
#include <math.h>
#include <string.h>

#include "frame.h"
#include "msg.h"
#include "wire.h"

static uint64_t
row_bytes(uint8_t enc, uint32_t k)
{
    switch (enc) {
    case FRI_MENC_F32:
        return 4ull * k;
    case FRI_MENC_F16:
        return 2ull * k;
    case FRI_MENC_I8:
        return 4ull + k;
    case FRI_MENC_I8C:
        return 2ull + k;
    }
    return 0;
}

static uint64_t
bias_bytes(uint8_t enc)
{
    return enc == FRI_MENC_I8C ? 2 : 4;
}

// Body size, or 0 if enc/k/n_items are out of range or it exceeds R6.
static uint64_t
body_size(uint8_t enc, uint32_t k, uint32_t n_items)
{
    uint64_t rb = row_bytes(enc, k);
    if (rb == 0 || k == 0 || k > FRI_MAX_K || n_items > FRI_MAX_ITEMS) {
        return 0;
    }
    // n_items <= 2^24 and rb <= 2052: no 64-bit overflow.
    uint64_t s = FRI_MODEL_FIXED + (uint64_t) n_items * (bias_bytes(enc) + rb);
    if (s > FRI_MAX_FRAME - FRI_HDR_LEN) {
        return 0;
    }
    return s;
}

size_t
fri_model_size(uint8_t enc, uint32_t k, uint32_t n_items)
{
    uint64_t s = body_size(enc, k, n_items);
    return s == 0 ? 0 : (size_t) (FRI_HDR_LEN + s);
}

// Floats of the VB block (beta, mean, packed precision, variances).
static uint64_t
vb_floats(uint32_t k, uint32_t n_items)
{
    uint64_t d = (uint64_t) k + 1;
    return 1 + d + d * (d + 1) / 2 + (uint64_t) n_items * d;
}

// Bytes of the VB block: all f32, or (I8C) the variances as two f32 and
// one code byte each.
static uint64_t
vb_bytes(uint8_t enc, uint32_t k, uint32_t n_items)
{
    uint64_t d = (uint64_t) k + 1;
    if (enc == FRI_MENC_I8C) {
        return 4 * (1 + d + d * (d + 1) / 2 + 2) + (uint64_t) n_items * d;
    }
    return 4 * vb_floats(k, n_items);
}

// Body size of kind (FULL/DELTA or VB), 0 if out of range.
static uint64_t
kind_body_size(uint8_t kind, uint8_t enc, uint32_t k, uint32_t n_items)
{
    uint64_t s = body_size(enc, k, n_items);
    if (s == 0 || kind != FRI_MODEL_VB) {
        return s;
    }
    s += vb_bytes(enc, k, n_items);
    return s > FRI_MAX_FRAME - FRI_HDR_LEN ? 0 : s;
}

size_t
fri_model_vb_size(uint8_t enc, uint32_t k, uint32_t n_items)
{
    uint64_t s = kind_body_size(FRI_MODEL_VB, enc, k, n_items);
    return s == 0 ? 0 : (size_t) (FRI_HDR_LEN + s);
}

// R31 on host floats: mean finite, precision finite with a positive
// diagonal, variances finite and >= 0.
static int
vb_ok(float beta, const float *mean, const float *prec, const float *var,
      uint32_t k, uint32_t n_items)
{
    const size_t d   = (size_t) k + 1;
    uint32_t     bad = (uint32_t) !(fri_finite(beta) && beta > 0.0f);
    for (size_t a = 0; a < d; a++) {
        bad |= (uint32_t) !fri_finite(mean[a]);
    }
    for (size_t a = 0, t = 0; a < d; a++) {
        for (size_t b = a; b < d; b++, t++) {
            bad |= (uint32_t) !fri_finite(prec[t]);
            if (a == b) {
                bad |= (uint32_t) !(prec[t] > 0.0f);
            }
        }
    }
    for (size_t t = 0; t < (size_t) n_items * d; t++) {
        bad |= (uint32_t) !(fri_finite(var[t]) && var[t] >= 0.0f);
    }
    return bad == 0;
}

static int
all_finite(const float *v, size_t n)
{
    uint32_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        bad |= (uint32_t) !fri_finite(v[i]);
    }
    return bad == 0;
}

static int
kind_ok(uint8_t kind, uint64_t version, uint64_t base)
{
    if (kind == FRI_MODEL_FULL || kind == FRI_MODEL_VB) {
        return base == 0;
    }
    return kind == FRI_MODEL_DELTA && base != 0 && base < version;
}

static int
f16_fits(float x)
{
    return (fri_f32_to_f16(x) & 0x7c00u) != 0x7c00u;
}

static int
f16_ok(uint16_t h)
{
    return (h & 0x7c00u) != 0x7c00u; // exponent 31: inf or NaN
}

// I8C row scale: the f16 nearest to max|x| / 127, raised by one step when
// it rounded below, so every |x| / scale <= 127. Nonzero when the scale
// does not fit f16.
static int
i8c_scale(const float *row, uint32_t k, uint16_t *h, float *scale)
{
    float mx = 0.0f;
    for (uint32_t j = 0; j < k; j++) {
        float a = fabsf(row[j]);
        mx = a > mx ? a : mx;
    }
    uint16_t s = fri_f32_to_f16(mx / 127.0f);
    if (f16_ok(s) && fri_f16_to_f32(s) * 127.0f < mx) {
        s++;
    }
    *h     = s;
    *scale = fri_f16_to_f32(s);
    return !f16_ok(s);
}

// The row's k values as int8 steps of scale (round to nearest, clamped
// to +-127); returns the byte after them.
static uint8_t *
put_i8_row(uint8_t *p, const float *row, uint32_t k, float scale)
{
    for (uint32_t j = 0; j < k; j++) {
        long q = scale > 0.0f ? lrintf(row[j] / scale) : 0;
        q      = q > 127 ? 127 : (q < -127 ? -127 : q);
        *p++   = (uint8_t) (int8_t) q;
    }
    return p;
}

// Largest exponent of an I8C variance code (R37): e^88 < FLT_MAX.
#define VAR_LOG_MAX 88.0

// I8C variance grid: code 0 is 0, code c >= 1 is exp(lo + (c - 1) step),
// lo and lo + 254 step the logs of the smallest positive and the largest
// variance. Nonzero when the largest does not fit (>= e^87.9).
static int
var_grid(const float *var, size_t n, float *lo, float *step)
{
    float vmin = INFINITY, vmax = 0.0f;
    for (size_t t = 0; t < n; t++) {
        if (var[t] > 0.0f) {
            vmin = var[t] < vmin ? var[t] : vmin;
            vmax = var[t] > vmax ? var[t] : vmax;
        }
    }
    *lo   = 0.0f;
    *step = 0.0f;
    if (!(vmax > 0.0f)) {
        return 0;
    }
    double l = log((double) vmin), h = log((double) vmax);
    if (h > VAR_LOG_MAX - 0.1) {
        return 1;
    }
    *lo   = (float) l;
    *step = (float) ((h - l) / 254.0);
    return 0;
}

static uint8_t
var_code(float v, float lo, float step)
{
    if (!(v > 0.0f)) {
        return 0;
    }
    if (!(step > 0.0f)) {
        return 1;
    }
    long c = 1 + lrint((log((double) v) - (double) lo) / (double) step);
    return (uint8_t) (c < 1 ? 1 : (c > 255 ? 255 : c));
}

static int
var_grid_ok(float lo, float step)
{
    return fri_finite(lo) && fri_finite(step) && step >= 0.0f &&
           (double) lo + 254.0 * (double) step <= VAR_LOG_MAX;
}

fr_err
fri_model_encode(uint8_t *dst, size_t dst_cap, size_t *dst_len,
                 const fri_model *m)
{
    size_t   stride = m->stride ? m->stride : m->k;
    uint64_t bs = kind_body_size(m->kind, m->enc, m->k, m->n_items);
    if (m->enc > FRI_MENC_I8C || m->k == 0 || m->kind > FRI_MODEL_VB) {
        return FR_EINVAL;
    }
    if (bs == 0) {
        return FR_ETOOBIG;
    }
    if (stride < m->k || !kind_ok(m->kind, m->version, m->base_version) ||
        !fri_finite(m->mu) ||
        (m->n_items > 0 && (m->bias == NULL || m->factors == NULL))) {
        return FR_EINVAL;
    }
    // R11: refuse non-finite input before writing anything.
    if (!all_finite(m->bias, m->n_items)) {
        return FR_EINVAL;
    }
    for (uint32_t i = 0; i < m->n_items; i++) {
        if (!all_finite(m->factors + (size_t) i * stride, m->k)) {
            return FR_EINVAL;
        }
    }
    // What the encoding cannot carry is refused, never sent as inf.
    for (uint32_t i = 0; i < m->n_items && m->enc == FRI_MENC_I8C; i++) {
        uint16_t h;
        float    sc;
        if (!f16_fits(m->bias[i]) ||
            i8c_scale(m->factors + (size_t) i * stride, m->k, &h, &sc)) {
            return FR_EINVAL;
        }
    }
    for (uint32_t i = 0; i < m->n_items && m->enc == FRI_MENC_F16; i++) {
        for (uint32_t j = 0; j < m->k; j++) {
            if (!f16_fits(m->factors[(size_t) i * stride + j])) {
                return FR_EINVAL;
            }
        }
    }
    if (m->kind == FRI_MODEL_VB &&
        (m->uprior_mean == NULL || m->uprior_prec == NULL ||
         (m->n_items > 0 && m->item_var == NULL) ||
         !vb_ok(m->beta, m->uprior_mean, m->uprior_prec, m->item_var, m->k,
                m->n_items))) {
        return FR_EINVAL;
    }
    float var_lo = 0.0f, var_step = 0.0f;
    if (m->kind == FRI_MODEL_VB && m->enc == FRI_MENC_I8C &&
        var_grid(m->item_var, (size_t) m->n_items * (m->k + 1), &var_lo,
                 &var_step)) {
        return FR_EINVAL;
    }
    uint8_t *b;
    fr_err   e = fri_frame_begin(dst, dst_cap, FRI_T_MODEL, (size_t) bs, &b);
    if (e != FR_OK) {
        return e;
    }
    memset(b, 0, FRI_SIGBYTES);
    fri_put64(b + 64, m->round_id);
    fri_put64(b + 72, m->version);
    fri_put64(b + 80, m->base_version);
    b[88] = m->kind;
    b[89] = m->enc;
    fri_put16(b + 90, 0);
    fri_put32(b + 92, m->k);
    fri_put32(b + 96, m->n_items);
    fri_putf32(b + 100, m->mu);
    uint8_t *p = b + FRI_MODEL_FIXED;
    if (m->enc == FRI_MENC_I8C) {
        for (uint32_t i = 0; i < m->n_items; i++) {
            fri_put16(p, fri_f32_to_f16(m->bias[i]));
            p += 2;
        }
    } else {
        fri_put_array32(p, m->bias, m->n_items);
        p += 4 * (size_t) m->n_items;
    }
    for (uint32_t i = 0; i < m->n_items; i++) {
        const float *row = m->factors + (size_t) i * stride;
        switch (m->enc) {
        case FRI_MENC_F32:
            fri_put_array32(p, row, m->k);
            p += 4 * (size_t) m->k;
            break;
        case FRI_MENC_F16:
            for (uint32_t j = 0; j < m->k; j++) {
                fri_put16(p, fri_f32_to_f16(row[j]));
                p += 2;
            }
            break;
        case FRI_MENC_I8C: {
            uint16_t h;
            float    scale;
            (void) i8c_scale(row, m->k, &h, &scale); // checked above
            fri_put16(p, h);
            p = put_i8_row(p + 2, row, m->k, scale);
            break;
        }
        default: { // FRI_MENC_I8: symmetric per-row scale
            float mx = 0.0f;
            for (uint32_t j = 0; j < m->k; j++) {
                float a = fabsf(row[j]);
                mx = a > mx ? a : mx;
            }
            float scale = mx / 127.0f;
            fri_putf32(p, scale);
            p = put_i8_row(p + 4, row, m->k, scale);
            break;
        }
        }
    }
    if (m->kind == FRI_MODEL_VB) {
        const size_t d = (size_t) m->k + 1;
        fri_putf32(p, m->beta);
        p += 4;
        fri_put_array32(p, m->uprior_mean, d);
        p += 4 * d;
        fri_put_array32(p, m->uprior_prec, d * (d + 1) / 2);
        p += 4 * (d * (d + 1) / 2);
        if (m->enc == FRI_MENC_I8C) {
            fri_putf32(p, var_lo);
            fri_putf32(p + 4, var_step);
            p += 8;
            for (size_t t = 0; t < (size_t) m->n_items * d; t++) {
                p[t] = var_code(m->item_var[t], var_lo, var_step);
            }
        } else {
            fri_put_array32(p, m->item_var, (size_t) m->n_items * d);
        }
    }
    *dst_len = FRI_HDR_LEN + (size_t) bs;
    return FR_OK;
}

fr_err
fri_model_decode(fri_model *m, const uint8_t *src, size_t src_len)
{
    const uint8_t *b;
    size_t         n;
    int            newer;
    memset(m, 0, sizeof(*m));
    fr_err e = fri_body_get(src, src_len, FRI_T_MODEL, FRI_MODEL_FIXED, &b,
                            &n, &newer);
    if (e != FR_OK) {
        return e;
    }
    fri_model v;
    memset(&v, 0, sizeof(v));
    v.round_id = fri_get64(b + 64);
    v.version = fri_get64(b + 72);
    v.base_version = fri_get64(b + 80);
    v.kind = b[88];
    v.enc = b[89];
    v.k = fri_get32(b + 92);
    v.n_items = fri_get32(b + 96);
    v.mu = fri_getf32(b + 100);
    if (fri_get16(b + 90) != 0) {
        return FR_EPROTO; // R9
    }
    if (v.enc > FRI_MENC_I8C || !kind_ok(v.kind, v.version, v.base_version)) {
        return FR_EPROTO; // R10, R16
    }
    if (v.k == 0) {
        return FR_EPROTO; // R12
    }
    if (v.k > FRI_MAX_K || v.n_items > FRI_MAX_ITEMS) {
        return FR_ETOOBIG; // R12, R13
    }
    uint64_t bs = kind_body_size(v.kind, v.enc, v.k, v.n_items);
    if (bs == 0) {
        return FR_ETOOBIG; // R13
    }
    if ((e = fri_body_end(n, (size_t) bs, newer)) != FR_OK) {
        return e; // R13: declared sizes must match the body
    }
    if (!fri_finite(v.mu)) {
        return FR_EPROTO; // R11
    }
    const uint8_t *p = b + FRI_MODEL_FIXED;
    if (v.enc == FRI_MENC_I8C) {
        uint32_t bad = 0;
        for (size_t i = 0; i < v.n_items; i++) {
            bad |= (uint32_t) !f16_ok(fri_get16(p + 2 * i));
        }
        if (bad) {
            return FR_EPROTO; // R37
        }
    } else if (fri_any_nonfinite_le(p, v.n_items)) {
        return FR_EPROTO; // R11
    }
    const uint8_t *f = p + bias_bytes(v.enc) * (size_t) v.n_items;
    size_t         nk = (size_t) v.n_items * v.k;
    if (v.enc == FRI_MENC_F32) {
        if (fri_any_nonfinite_le(f, nk)) {
            return FR_EPROTO; // R11
        }
    } else if (v.enc == FRI_MENC_F16) {
        uint32_t bad = 0;
        for (size_t i = 0; i < nk; i++) {
            bad |= (uint32_t) ((fri_get16(f + 2 * i) & 0x7c00u) == 0x7c00u);
        }
        if (bad) {
            return FR_EPROTO; // R11
        }
    } else if (v.enc == FRI_MENC_I8) {
        size_t rb = 4 + (size_t) v.k;
        for (size_t i = 0; i < v.n_items; i++) {
            float s = fri_getf32(f + i * rb);
            if (!fri_finite(s) || s < 0.0f) {
                return FR_EPROTO; // R16
            }
        }
    } else {
        size_t rb = 2 + (size_t) v.k;
        for (size_t i = 0; i < v.n_items; i++) {
            uint16_t h = fri_get16(f + i * rb);
            if (!f16_ok(h) || fri_f16_to_f32(h) < 0.0f) {
                return FR_EPROTO; // R37
            }
        }
    }
    if (v.kind == FRI_MODEL_VB) {
        // R31: the block follows the factors.
        const uint8_t *q = b + body_size(v.enc, v.k, v.n_items);
        const size_t   d = (size_t) v.k + 1, pl = d * (d + 1) / 2;
        const int      c = v.enc == FRI_MENC_I8C;
        // I8C: beta, mean, precision and the grid are f32, codes bytes.
        const size_t nf = c ? 1 + d + pl + 2
                            : (size_t) vb_floats(v.k, v.n_items);
        if (fri_any_nonfinite_le(q, nf)) {
            return FR_EPROTO;
        }
        v.beta = fri_getf32(q);
        uint32_t bad = (uint32_t) !(v.beta > 0.0f);
        for (size_t a = 0, t = 0; a < d; a++) {
            bad |= (uint32_t) !(fri_getf32(q + 4 * (1 + d + t)) > 0.0f);
            t += d - a; // next diagonal entry of the packed triangle
        }
        const uint8_t *var = q + 4 * (1 + d + pl);
        if (c) {
            bad |= (uint32_t) !var_grid_ok(fri_getf32(var),
                                           fri_getf32(var + 4)); // R37
        } else {
            for (size_t t = 0; t < (size_t) v.n_items * d; t++) {
                bad |= (uint32_t) (fri_getf32(var + 4 * t) < 0.0f);
            }
        }
        if (bad) {
            return FR_EPROTO; // R31
        }
        v.vb_le = q + 4;
    }
    v.sig = b;
    v.bias_le = p;
    v.fac_raw = f;
    *m = v;
    return FR_OK;
}

fr_err
fri_model_get_vb(const fri_model *m, float *mean, float *prec,
                 float *item_var)
{
    if (m == NULL || m->kind != FRI_MODEL_VB || m->vb_le == NULL) {
        return FR_EINVAL;
    }
    const size_t d = (size_t) m->k + 1, pl = d * (d + 1) / 2;
    if (mean != NULL) {
        fri_get_array32(mean, m->vb_le, d);
    }
    if (prec != NULL) {
        fri_get_array32(prec, m->vb_le + 4 * d, pl);
    }
    if (item_var != NULL && m->enc == FRI_MENC_I8C) {
        const uint8_t *g    = m->vb_le + 4 * (d + pl);
        const float    lo   = fri_getf32(g);
        const float    step = fri_getf32(g + 4);
        for (size_t t = 0; t < (size_t) m->n_items * d; t++) {
            uint8_t code = g[8 + t];
            item_var[t]  = code == 0
                               ? 0.0f
                               : expf(lo + (float) (code - 1) * step);
        }
    } else if (item_var != NULL) {
        fri_get_array32(item_var, m->vb_le + 4 * (d + pl),
                        (size_t) m->n_items * d);
    }
    return FR_OK;
}

fr_err
fri_model_get(const fri_model *m, float *bias, float *factors, size_t stride)
{
    if (stride == 0) {
        stride = m->k;
    }
    if (stride < m->k || m->bias_le == NULL || m->fac_raw == NULL ||
        (m->n_items > 0 && (bias == NULL || factors == NULL))) {
        return FR_EINVAL;
    }
    if (m->enc == FRI_MENC_I8C) {
        for (uint32_t i = 0; i < m->n_items; i++) {
            bias[i] = fri_f16_to_f32(fri_get16(m->bias_le + 2 * (size_t) i));
        }
    } else {
        fri_get_array32(bias, m->bias_le, m->n_items);
    }
    const uint8_t *p = m->fac_raw;
    for (uint32_t i = 0; i < m->n_items; i++) {
        float *row = factors + (size_t) i * stride;
        switch (m->enc) {
        case FRI_MENC_F32:
            fri_get_array32(row, p, m->k);
            p += 4 * (size_t) m->k;
            break;
        case FRI_MENC_F16:
            for (uint32_t j = 0; j < m->k; j++) {
                row[j] = fri_f16_to_f32(fri_get16(p));
                p += 2;
            }
            break;
        case FRI_MENC_I8C: {
            float s = fri_f16_to_f32(fri_get16(p));
            p += 2;
            for (uint32_t j = 0; j < m->k; j++) {
                row[j] = (float) (int8_t) p[j] * s;
            }
            p += m->k;
            break;
        }
        default: {
            float s = fri_getf32(p);
            p += 4;
            for (uint32_t j = 0; j < m->k; j++) {
                row[j] = (float) (int8_t) p[j] * s;
            }
            p += m->k;
            break;
        }
        }
    }
    return FR_OK;
}
