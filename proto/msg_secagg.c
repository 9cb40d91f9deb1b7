// Secure-aggregation messages. Layouts: SPEC.md §9 and msg_secagg.h.
#include "msg_secagg.h"

#include <string.h>

#include "frame.h"
#include "msg.h"
#include "wire.h"

fr_err
fri_sa_advert_encode(uint8_t *dst, size_t dst_cap, size_t *dst_len,
                     const fri_sa_advert_msg *m)
{
    if (m == NULL || m->id_pk == NULL || m->advert == NULL) {
        return FR_EINVAL;
    }
    uint8_t *b;
    fr_err   e = fri_frame_begin(dst, dst_cap, FRI_T_SA_ADVERT,
                                 FRI_SA_ADVERT_BODY, &b);
    if (e != FR_OK) {
        return e;
    }
    fri_put64(b, m->round_id);
    memcpy(b + 8, m->id_pk, 32);
    memcpy(b + 40, m->advert, FRI_SA_ADVERTBYTES);
    *dst_len = FRI_HDR_LEN + FRI_SA_ADVERT_BODY;
    return FR_OK;
}

fr_err
fri_sa_advert_decode(fri_sa_advert_msg *m, const uint8_t *src,
                     size_t src_len)
{
    const uint8_t *b;
    memset(m, 0, sizeof(*m));
    fr_err e = fri_body_fixed(src, src_len, FRI_T_SA_ADVERT,
                              FRI_SA_ADVERT_BODY, &b);
    if (e != FR_OK) {
        return e;
    }
    m->round_id = fri_get64(b);
    m->id_pk    = b + 8;
    m->advert   = b + 40;
    return FR_OK;
}

size_t
fri_sa_rec_len(uint16_t type)
{
    switch (type) {
    case FRI_T_SA_ROSTER:
        return FRI_SA_REC_ROSTER;
    case FRI_T_SA_SHARES:
    case FRI_T_SA_SHARES_FWD:
        return FRI_SA_REC_SHARE;
    case FRI_T_SA_UNMASK:
        return FRI_SA_REC_UNMASK;
    default:
        return 0;
    }
}

size_t
fri_sa_list_size(uint16_t type, uint32_t count)
{
    size_t rl = fri_sa_rec_len(type);
    if (rl == 0 || count > FRI_SA_MAX_MEMBERS) {
        return 0;
    }
    size_t sz = FRI_HDR_LEN + FRI_SA_LIST_FIXED + (size_t) count * (4 + rl);
    return sz > FRI_MAX_FRAME ? 0 : sz;
}

size_t
fri_sa_unmask_size(uint32_t count, uint32_t n_corr)
{
    size_t sz = fri_sa_list_size(FRI_T_SA_UNMASK, count);
    if (sz == 0 || n_corr == 0) {
        return sz;
    }
    if (n_corr > (FRI_MAX_FRAME - sz - 4) / 4) {
        return 0;
    }
    return sz + 4 + (size_t) n_corr * 4;
}

fr_err
fri_sa_list_encode(uint8_t *dst, size_t dst_cap, size_t *dst_len,
                   uint16_t type, const fri_sa_list *l)
{
    size_t rl = fri_sa_rec_len(type);
    size_t sz = l == NULL                ? 0
                : type == FRI_T_SA_UNMASK ? fri_sa_unmask_size(l->count,
                                                               l->n_corr)
                                          : fri_sa_list_size(type, l->count);
    if (sz == 0 || (l->count > 0 && (l->ids == NULL || l->recs == NULL)) ||
        (type != FRI_T_SA_UNMASK && l->n_corr > 0) ||
        (l->n_corr > 0 && l->corr == NULL)) {
        return FR_EINVAL;
    }
    for (uint32_t j = 1; j < l->count; j++) {
        if (l->ids[j] <= l->ids[j - 1]) {
            return FR_EINVAL;
        }
    }
    uint8_t *b;
    fr_err   e = fri_frame_begin(dst, dst_cap, type, sz - FRI_HDR_LEN, &b);
    if (e != FR_OK) {
        return e;
    }
    fri_put64(b, l->round_id);
    fri_put32(b + 8, l->count);
    uint8_t *p = b + FRI_SA_LIST_FIXED;
    for (uint32_t j = 0; j < l->count; j++) {
        fri_put32(p, l->ids[j]);
        memcpy(p + 4, l->recs + (size_t) j * rl, rl);
        p += 4 + rl;
    }
    if (l->n_corr > 0) {
        fri_put32(p, l->n_corr);
        for (uint32_t w = 0; w < l->n_corr; w++) {
            fri_put32(p + 4 + (size_t) w * 4, l->corr[w]);
        }
    }
    *dst_len = sz;
    return FR_OK;
}

fr_err
fri_sa_list_decode(fri_sa_list *l, uint16_t type, const uint8_t *src,
                   size_t src_len)
{
    memset(l, 0, sizeof(*l));
    size_t rl = fri_sa_rec_len(type);
    if (rl == 0) {
        return FR_EINVAL;
    }
    const uint8_t *b;
    size_t         n;
    int            newer;
    fr_err e = fri_body_get(src, src_len, type, FRI_SA_LIST_FIXED, &b, &n,
                            &newer);
    if (e != FR_OK) {
        return e;
    }
    uint32_t count = fri_get32(b + 8);
    if (count > FRI_SA_MAX_MEMBERS) {
        return FR_ETOOBIG;
    }
    size_t used = FRI_SA_LIST_FIXED + (size_t) count * (4 + rl);
    if (type == FRI_T_SA_UNMASK && n >= used + 4) {
        // The dropout correction: a positive word count and exactly them.
        uint32_t nc = fri_get32(b + used);
        if (nc == 0 || nc > (n - used - 4) / 4) {
            return FR_EPROTO;
        }
        l->corr_raw = b + used + 4;
        l->n_corr   = nc;
        used += 4 + (size_t) nc * 4;
    }
    if ((e = fri_body_end(n, used, newer)) != FR_OK) {
        l->corr_raw = NULL;
        l->n_corr   = 0;
        return e;
    }
    const uint8_t *p = b + FRI_SA_LIST_FIXED;
    for (uint32_t j = 1; j < count; j++) {
        if (fri_get32(p + (size_t) j * (4 + rl)) <=
            fri_get32(p + (size_t) (j - 1) * (4 + rl))) {
            return FR_EPROTO; // ids strictly increasing
        }
    }
    l->round_id = fri_get64(b);
    l->count    = count;
    l->raw      = p;
    return FR_OK;
}

void
fri_sa_list_corr_get(const fri_sa_list *l, uint32_t *out)
{
    for (uint32_t w = 0; w < l->n_corr; w++) {
        out[w] = fri_get32(l->corr_raw + (size_t) w * 4);
    }
}

void
fri_sa_list_get(const fri_sa_list *l, uint16_t type, uint32_t j,
                uint32_t *id, const uint8_t **rec)
{
    size_t         rl = fri_sa_rec_len(type);
    const uint8_t *p  = l->raw + (size_t) j * (4 + rl);
    *id               = fri_get32(p);
    *rec              = p + 4;
}

static int
poll_type_ok(uint16_t type)
{
    return type == FRI_T_SA_POLL || type == FRI_T_SA_WAIT;
}

static int
want_ok(uint16_t want)
{
    // 7 (UPDATE): the outcome of the member's masked statistics delta
    // (latest-statistics mode, SPEC §9.6 S6).
    return want == FRI_T_SA_ROSTER || want == FRI_T_SA_SHARES_FWD ||
           want == FRI_T_SA_UNMASK_REQ || want == FRI_T_SA_PARAMS ||
           want == FRI_T_UPDATE;
}

fr_err
fri_sa_poll_encode(uint8_t *dst, size_t dst_cap, size_t *dst_len,
                   uint16_t type, const fri_sa_poll *p)
{
    if (p == NULL || !poll_type_ok(type) || !want_ok(p->want) ||
        (type == FRI_T_SA_WAIT && p->retry_after_ms == 0)) {
        return FR_EINVAL;
    }
    size_t   body = type == FRI_T_SA_POLL ? FRI_SA_POLL_BODY
                                          : FRI_SA_WAIT_BODY;
    uint8_t *b;
    fr_err   e = fri_frame_begin(dst, dst_cap, type, body, &b);
    if (e != FR_OK) {
        return e;
    }
    fri_put64(b, p->round_id);
    fri_put16(b + 8, p->want);
    fri_put16(b + 10, 0);
    if (type == FRI_T_SA_WAIT) {
        fri_put32(b + 12, p->retry_after_ms);
    }
    *dst_len = FRI_HDR_LEN + body;
    return FR_OK;
}

fr_err
fri_sa_poll_decode(fri_sa_poll *p, uint16_t type, const uint8_t *src,
                   size_t src_len)
{
    memset(p, 0, sizeof(*p));
    if (!poll_type_ok(type)) {
        return FR_EINVAL;
    }
    size_t body = type == FRI_T_SA_POLL ? FRI_SA_POLL_BODY : FRI_SA_WAIT_BODY;
    const uint8_t *b;
    fr_err e = fri_body_fixed(src, src_len, type, body, &b);
    if (e != FR_OK) {
        return e;
    }
    p->round_id = fri_get64(b);
    p->want     = fri_get16(b + 8);
    if (fri_get16(b + 10) != 0 || !want_ok(p->want)) {
        return FR_EPROTO;
    }
    if (type == FRI_T_SA_WAIT) {
        p->retry_after_ms = fri_get32(b + 12);
        if (p->retry_after_ms == 0) {
            return FR_EPROTO;
        }
    }
    return FR_OK;
}

// The ALS bounds: all 0 (GRAD) or all finite and > 0.
static int
als_ok(const fri_sa_params *p)
{
    if (p->user_norm == 0.0f && p->residual == 0.0f &&
        p->rating_abs == 0.0f) {
        return 1;
    }
    return fri_finite(p->user_norm) && p->user_norm > 0.0f &&
           fri_finite(p->residual) && p->residual > 0.0f &&
           fri_finite(p->rating_abs) && p->rating_abs > 0.0f;
}

static int
params_ok(const fri_sa_params *p)
{
    return p->n >= 2 && p->n <= FRI_SA_MAX_MEMBERS && p->index < p->n &&
           p->threshold >= 1 && p->threshold < p->n && p->frac_bits <= 30 &&
           fri_finite(p->clip) && p->clip > 0.0f && p->dim >= 1 &&
           fri_finite(p->noise_sd) && p->noise_sd >= 0.0f && als_ok(p) &&
           p->applied_round < p->round_id;
}

fr_err
fri_sa_params_encode(uint8_t *dst, size_t dst_cap, size_t *dst_len,
                     const fri_sa_params *p)
{
    if (p == NULL || !params_ok(p)) {
        return FR_EINVAL;
    }
    uint8_t *b;
    fr_err   e = fri_frame_begin(dst, dst_cap, FRI_T_SA_PARAMS,
                                 FRI_SA_PARAMS_BODY, &b);
    if (e != FR_OK) {
        return e;
    }
    fri_put64(b, p->round_id);
    fri_put32(b + 8, p->index);
    fri_put32(b + 12, p->n);
    fri_put32(b + 16, p->degree);
    fri_put32(b + 20, p->threshold);
    fri_put32(b + 24, p->frac_bits);
    fri_putf32(b + 28, p->clip);
    fri_put64(b + 32, p->dim);
    memcpy(b + 40, p->graph_seed, 32);
    fri_putf32(b + 72, p->noise_sd);
    fri_putf32(b + 76, p->user_norm);
    fri_putf32(b + 80, p->residual);
    fri_putf32(b + 84, p->rating_abs);
    fri_put64(b + 88, p->applied_round);
    *dst_len = FRI_HDR_LEN + FRI_SA_PARAMS_BODY;
    return FR_OK;
}

fr_err
fri_sa_params_decode(fri_sa_params *p, const uint8_t *src, size_t src_len)
{
    memset(p, 0, sizeof(*p));
    const uint8_t *b;
    fr_err e = fri_body_fixed(src, src_len, FRI_T_SA_PARAMS,
                              FRI_SA_PARAMS_BODY, &b);
    if (e != FR_OK) {
        return e;
    }
    p->round_id  = fri_get64(b);
    p->index     = fri_get32(b + 8);
    p->n         = fri_get32(b + 12);
    p->degree    = fri_get32(b + 16);
    p->threshold = fri_get32(b + 20);
    p->frac_bits = fri_get32(b + 24);
    p->clip      = fri_getf32(b + 28);
    p->dim       = fri_get64(b + 32);
    memcpy(p->graph_seed, b + 40, 32);
    p->noise_sd   = fri_getf32(b + 72);
    p->user_norm  = fri_getf32(b + 76);
    p->residual   = fri_getf32(b + 80);
    p->rating_abs    = fri_getf32(b + 84);
    p->applied_round = fri_get64(b + 88);
    return params_ok(p) ? FR_OK : FR_EPROTO;
}

size_t
fri_sa_unmask_req_size(uint32_t n_surv, uint32_t n_drop)
{
    if ((uint64_t) n_surv + n_drop > FRI_SA_MAX_MEMBERS) {
        return 0;
    }
    return FRI_HDR_LEN + FRI_SA_UNMASK_REQ_FIXED +
           4 * ((size_t) n_surv + n_drop);
}

static int
increasing(const uint32_t *v, uint32_t n)
{
    for (uint32_t j = 1; j < n; j++) {
        if (v[j] <= v[j - 1]) {
            return 0;
        }
    }
    return 1;
}

fr_err
fri_sa_unmask_req_encode(uint8_t *dst, size_t dst_cap, size_t *dst_len,
                         const fri_sa_unmask_req *r)
{
    size_t sz = r != NULL ? fri_sa_unmask_req_size(r->n_surv, r->n_drop) : 0;
    if (sz == 0 || (r->n_surv > 0 && r->surv == NULL) ||
        (r->n_drop > 0 && r->drop == NULL) || !increasing(r->surv, r->n_surv) ||
        !increasing(r->drop, r->n_drop)) {
        return FR_EINVAL;
    }
    uint8_t *b;
    fr_err   e = fri_frame_begin(dst, dst_cap, FRI_T_SA_UNMASK_REQ,
                                 sz - FRI_HDR_LEN, &b);
    if (e != FR_OK) {
        return e;
    }
    fri_put64(b, r->round_id);
    fri_put32(b + 8, r->n_surv);
    fri_put32(b + 12, r->n_drop);
    uint8_t *p = b + FRI_SA_UNMASK_REQ_FIXED;
    for (uint32_t j = 0; j < r->n_surv; j++, p += 4) {
        fri_put32(p, r->surv[j]);
    }
    for (uint32_t j = 0; j < r->n_drop; j++, p += 4) {
        fri_put32(p, r->drop[j]);
    }
    *dst_len = sz;
    return FR_OK;
}

fr_err
fri_sa_unmask_req_decode(fri_sa_unmask_req *r, const uint8_t *src,
                         size_t src_len)
{
    memset(r, 0, sizeof(*r));
    const uint8_t *b;
    size_t         n;
    int            newer;
    fr_err e = fri_body_get(src, src_len, FRI_T_SA_UNMASK_REQ,
                            FRI_SA_UNMASK_REQ_FIXED, &b, &n, &newer);
    if (e != FR_OK) {
        return e;
    }
    uint32_t ns = fri_get32(b + 8), nd = fri_get32(b + 12);
    if ((uint64_t) ns + nd > FRI_SA_MAX_MEMBERS) {
        return FR_ETOOBIG;
    }
    size_t used = FRI_SA_UNMASK_REQ_FIXED + 4 * ((size_t) ns + nd);
    if ((e = fri_body_end(n, used, newer)) != FR_OK) {
        return e;
    }
    const uint8_t *p = b + FRI_SA_UNMASK_REQ_FIXED;
    for (uint32_t j = 1; j < ns + nd; j++) {
        if (j != ns && fri_get32(p + 4 * (size_t) j) <=
                           fri_get32(p + 4 * (size_t) (j - 1))) {
            return FR_EPROTO;
        }
    }
    r->round_id = fri_get64(b);
    r->n_surv   = ns;
    r->n_drop   = nd;
    r->ids_le   = p;
    return FR_OK;
}

uint32_t
fri_sa_unmask_req_id(const fri_sa_unmask_req *r, uint32_t j)
{
    return fri_get32(r->ids_le + 4 * (size_t) j);
}
