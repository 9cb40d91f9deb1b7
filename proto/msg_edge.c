// EDGE_SUMS codec (SPEC.md §10).
#include "msg_edge.h"

#include <string.h>

#include "frame.h"
#include "linalg.h"
#include "msg.h"

static uint64_t
f64_bits(double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

static double
bits_f64(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

static int
finite64(uint64_t u)
{
    return (u & 0x7ff0000000000000ull) != 0x7ff0000000000000ull;
}

fr_err
fri_edge_sums_shape(
    uint8_t algo, uint32_t k, uint32_t *width, uint32_t *n_glob)
{
    if (k == 0) {
        return FR_EPROTO;
    }
    if (k > FRI_MAX_K) {
        return FR_ETOOBIG;
    }
    const uint32_t d = k + 1;
    const uint32_t P = (uint32_t)fri_packed_len(d);
    switch (algo) {
    case FRI_EDGE_ALS:
        *width  = P + d;
        *n_glob = 0;
        return FR_OK;
    case FRI_EDGE_IALS:
        *width  = (uint32_t)fri_packed_len(k) + k;
        *n_glob = (uint32_t)fri_packed_len(k);
        return FR_OK;
    case FRI_EDGE_GRAD:
        *width  = d;
        *n_glob = 0;
        return FR_OK;
    case FRI_EDGE_VBMF:
        *width  = P + d;
        *n_glob = d + P + 2;
        return FR_OK;
    default:
        return FR_EPROTO;
    }
}

size_t
fri_edge_sums_size(uint32_t n_glob, uint32_t width, uint32_t n_rows)
{
    // 64-bit arithmetic: every factor is below 2^25 (R13).
    uint64_t len = (uint64_t)FRI_HDR_LEN + FRI_EDGE_SUMS_FIXED + 8ull * n_glob
        + (uint64_t)n_rows * (4ull + 8ull * width);
    return len > FRI_MAX_FRAME ? 0 : (size_t)len;
}

// The fixed fields both sides check: algo, shape, counts.
static fr_err
check_fixed(const fri_edge_sums_msg *m)
{
    uint32_t w, g;
    fr_err   e = fri_edge_sums_shape(m->algo, m->k, &w, &g);
    if (e != FR_OK) {
        return e;
    }
    if (m->n_devices == 0 || m->width != w || m->n_glob != g) {
        return FR_EPROTO;
    }
    if (m->n_devices > FRI_EDGE_MAX_DEVICES || m->n_items > FRI_MAX_ITEMS
        || m->n_rows > FRI_MAX_ITEMS) {
        return FR_ETOOBIG;
    }
    if (m->n_rows > m->n_items) {
        return FR_EPROTO;
    }
    if (!finite64(f64_bits(m->sum_ratings)) || !finite64(f64_bits(m->count))
        || !finite64(f64_bits(m->weight)) || m->count < 0.0
        || m->weight < 0.0) {
        return FR_EPROTO;
    }
    return FR_OK;
}

fr_err
fri_edge_sums_encode(
    uint8_t *dst, size_t dst_cap, size_t *dst_len, const fri_edge_sums_msg *m)
{
    if (m == NULL || dst_len == NULL) {
        return FR_EINVAL;
    }
    fr_err e = check_fixed(m);
    if (e != FR_OK) {
        return e == FR_EPROTO ? FR_EINVAL : e;
    }
    if ((m->n_rows > 0 && (m->items == NULL || m->rows == NULL))
        || (m->n_glob > 0 && m->glob == NULL)) {
        return FR_EINVAL;
    }
    for (uint32_t j = 0; j < m->n_rows; j++) {
        if (m->items[j] >= m->n_items
            || (j > 0 && m->items[j] <= m->items[j - 1])) {
            return FR_EINVAL;
        }
    }
    for (size_t t = 0; t < (size_t)m->n_rows * m->width; t++) {
        if (!finite64(f64_bits(m->rows[t]))) {
            return FR_EINVAL;
        }
    }
    for (uint32_t t = 0; t < m->n_glob; t++) {
        if (!finite64(f64_bits(m->glob[t]))) {
            return FR_EINVAL;
        }
    }
    size_t len = fri_edge_sums_size(m->n_glob, m->width, m->n_rows);
    if (len == 0) {
        return FR_ETOOBIG;
    }
    uint8_t *b;
    if ((e = fri_frame_begin(
             dst, dst_cap, FRI_T_EDGE_SUMS, len - FRI_HDR_LEN, &b))
        != FR_OK) {
        return e;
    }
    memset(b, 0, FRI_EDGE_SUMS_FIXED);
    fri_put64(b, m->round_id);
    fri_put32(b + 8, m->n_devices);
    b[12] = m->algo;
    fri_put32(b + 16, m->k);
    fri_put32(b + 20, m->width);
    fri_put32(b + 24, m->n_rows);
    fri_put32(b + 28, m->n_glob);
    fri_put64(b + 32, f64_bits(m->sum_ratings));
    fri_put64(b + 40, f64_bits(m->count));
    fri_put64(b + 48, f64_bits(m->weight));
    fri_put32(b + 56, m->n_items);
    uint8_t *p = b + FRI_EDGE_SUMS_FIXED;
    for (uint32_t t = 0; t < m->n_glob; t++, p += 8) {
        fri_put64(p, f64_bits(m->glob[t]));
    }
    for (uint32_t j = 0; j < m->n_rows; j++) {
        fri_put32(p, m->items[j]);
        p += 4;
        const double *row = m->rows + (size_t)j * m->width;
        for (uint32_t r = 0; r < m->width; r++, p += 8) {
            fri_put64(p, f64_bits(row[r]));
        }
    }
    *dst_len = len;
    return FR_OK;
}

fr_err
fri_edge_sums_decode(fri_edge_sums_msg *m, const uint8_t *src, size_t src_len)
{
    memset(m, 0, sizeof(*m));
    const uint8_t *b;
    size_t         n;
    int            newer;
    fr_err         e = fri_body_get(
                src, src_len, FRI_T_EDGE_SUMS, FRI_EDGE_SUMS_FIXED, &b, &n, &newer);
    if (e != FR_OK) {
        return e;
    }
    if (b[13] != 0 || b[14] != 0 || b[15] != 0 || fri_get32(b + 60) != 0) {
        return FR_EPROTO; // R9
    }
    fri_edge_sums_msg t;
    memset(&t, 0, sizeof(t));
    t.round_id    = fri_get64(b);
    t.n_devices   = fri_get32(b + 8);
    t.algo        = b[12];
    t.k           = fri_get32(b + 16);
    t.width       = fri_get32(b + 20);
    t.n_rows      = fri_get32(b + 24);
    t.n_glob      = fri_get32(b + 28);
    t.sum_ratings = bits_f64(fri_get64(b + 32));
    t.count       = bits_f64(fri_get64(b + 40));
    t.weight      = bits_f64(fri_get64(b + 48));
    t.n_items     = fri_get32(b + 56);
    // Shape and counts first (R13): only then is the size computed.
    if ((e = check_fixed(&t)) != FR_OK) {
        return e;
    }
    size_t len = fri_edge_sums_size(t.n_glob, t.width, t.n_rows);
    if (len == 0) {
        return FR_ETOOBIG;
    }
    if ((e = fri_body_end(n, len - FRI_HDR_LEN, newer)) != FR_OK) {
        return e;
    }
    const uint8_t *p = b + FRI_EDGE_SUMS_FIXED;
    for (uint32_t g = 0; g < t.n_glob; g++) {
        if (!finite64(fri_get64(p + 8 * (size_t)g))) {
            return FR_EPROTO; // R11
        }
    }
    const uint8_t *rows = p + 8 * (size_t)t.n_glob;
    const size_t   rl   = 4 + 8 * (size_t)t.width;
    for (uint32_t j = 0; j < t.n_rows; j++) {
        const uint8_t *r    = rows + (size_t)j * rl;
        uint32_t       item = fri_get32(r);
        if (item >= t.n_items || (j > 0 && item <= fri_get32(r - rl))) {
            return FR_EPROTO; // R14
        }
        for (uint32_t v = 0; v < t.width; v++) {
            if (!finite64(fri_get64(r + 4 + 8 * (size_t)v))) {
                return FR_EPROTO;
            }
        }
    }
    t.glob_le  = p;
    t.rows_raw = rows;
    *m         = t;
    return FR_OK;
}

void
fri_edge_sums_get(
    const fri_edge_sums_msg *m, uint32_t *items, double *rows, double *glob)
{
    const size_t rl = 4 + 8 * (size_t)m->width;
    if (glob != NULL) {
        for (uint32_t g = 0; g < m->n_glob; g++) {
            glob[g] = bits_f64(fri_get64(m->glob_le + 8 * (size_t)g));
        }
    }
    for (uint32_t j = 0; j < m->n_rows; j++) {
        const uint8_t *r = m->rows_raw + (size_t)j * rl;
        if (items != NULL) {
            items[j] = fri_get32(r);
        }
        if (rows != NULL) {
            for (uint32_t v = 0; v < m->width; v++) {
                rows[(size_t)j * m->width + v]
                    = bits_f64(fri_get64(r + 4 + 8 * (size_t)v));
            }
        }
    }
}
