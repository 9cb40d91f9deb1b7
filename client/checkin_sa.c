// The client's side of secure aggregation (Bonawitz et al. 2017) inside a
// check-in: SA_POLL(PARAMS) -> SA_ADVERT -> SA_POLL(ROSTER) -> SA_SHARES
// -> SA_POLL(SHARES_FWD) -> masked UPDATE -> SA_POLL(UNMASK_REQ) ->
// SA_UNMASK. Produces plain frames (checkin.c seals them) and consumes
// opened replies. A SA_WAIT reply pauses the check-in: fr_client_poll
// then returns no bytes with the status still RUNNING and retry_after_ms
// set, and the caller polls again after that delay.
#include "checkin_sa.h"

#include <string.h>

#include <sodium.h>

#include "client_fit.h"
#include "dp.h"
#include "keys.h"
#include "linalg.h"
#include "msg.h"
#include "msg_secagg.h"
#include "secagg.h"
#include "secagg_als.h"
#include "secagg_ials.h"
#include "secagg_stats.h"
#include "shamir.h"

// The share of a member's mask partners that must have dropped before it
// sends a dropout correction (S4a).
#define FRI_SA_CORRECT_SHARE 0.2

typedef enum sa_step {
    SA_POLL_PARAMS,
    SA_ADVERT,
    SA_POLL_ROSTER,
    SA_SHARES,
    SA_POLL_INBOX,
    SA_MASKED,
    SA_POLL_UNMASK,
    SA_UNMASK,
    SA_POLL_COMMIT, // latest statistics: was the delta applied?
    SA_OVER,
} sa_step;

struct fri_sa_client {
    sa_step         step;
    int             waiting_reply; // a request is out
    uint16_t        expect;        // reply type expected
    uint64_t        round;
    fri_sa_params   p;
    fri_secagg_keys keys;
    uint8_t         b[FRI_SECAGG_SEEDBYTES];
    // Roster: per member index (p.n entries), keys and a flag.
    uint8_t *c_pk;
    uint8_t *s_pk;
    uint8_t *in_roster;
    // Share keys with the neighbours shared to (p.n x 32, has_skey flags):
    // agreed once, used to seal the outgoing and open the incoming shares.
    uint8_t *skey;
    uint8_t *has_skey;
    // Shares received (inbox): sender ids and the opened plaintexts.
    uint32_t *from;
    uint8_t  *held; // n_from * FRI_SECAGG_SHAREMSGBYTES
    size_t    n_from;
    // The SA_UNMASK answer, built when the request arrives.
    uint8_t *pending;
    size_t   pending_len;
    // The aggregator takes a dropout correction with it (SA_CORRECT).
    int correct;
};

// n records of size bytes, zeroed; NULL on overflow (n is a cohort size
// from the aggregator, bounded by max_sa_members).
static void *
zalloc(fr_client *c, size_t n, size_t size)
{
    return fri_client_calloc(c, n > 0 ? n : 1, size);
}

fr_err
fri_sa_client_create(fr_client *c, struct fri_sa_client **out, uint64_t round,
                     int correct)
{
    *out                   = NULL;
    struct fri_sa_client *s = zalloc(c, 1, sizeof(*s));
    if (s == NULL) {
        return FR_ENOMEM;
    }
    s->round   = round;
    s->step    = SA_POLL_PARAMS;
    s->correct = correct;
    *out     = s;
    return FR_OK;
}

void
fri_sa_client_free(fr_client *c, struct fri_sa_client *s)
{
    if (s == NULL) {
        return;
    }
    size_t n = s->p.n;
    fri_secagg_keys_wipe(&s->keys);
    sodium_memzero(s->b, sizeof(s->b));
    fri_client_free(c, s->c_pk);
    fri_client_free(c, s->s_pk);
    fri_client_free(c, s->in_roster);
    fri_client_free_wipe(c, s->skey, s->skey != NULL ? n * 32 : 0);
    fri_client_free(c, s->has_skey);
    fri_client_free(c, s->from);
    fri_client_free_wipe(c, s->pending, s->pending_len);
    fri_client_free_wipe(c, s->held,
                         s->held != NULL ? n * FRI_SECAGG_SHAREMSGBYTES : 0);
    fri_client_free_wipe(c, s, sizeof(*s));
}

static fr_err
poll_msg(struct fri_sa_client *s, uint16_t want, uint8_t *dst, size_t cap,
         size_t *len)
{
    fri_sa_poll p = {.round_id = s->round, .want = want};
    s->expect     = want;
    return fri_sa_poll_encode(dst, cap, len, FRI_T_SA_POLL, &p);
}

static fr_err
build_advert(fr_client *c, struct fri_sa_client *s, uint8_t *dst, size_t cap,
             size_t *len)
{
    fri_identity id;
    fr_err       rv = fri_identity_from_seed(&id, c->identity_seed);
    if (rv == FR_OK) {
        rv = fri_secagg_keygen(&s->keys, NULL);
    }
    fri_secagg_advert adv;
    if (rv == FR_OK) {
        uint8_t commit[FRI_SECAGG_COMMITBYTES];
        randombytes_buf(s->b, sizeof(s->b));
        // The server checks the b it rebuilds from shares against this.
        fri_secagg_seed_commit(commit, s->b, s->round, s->p.index);
        rv = fri_secagg_advert_sign(&adv, s->round, s->p.index, s->keys.c_pk,
                                    s->keys.s_pk, commit, id.sign_sk);
    }
    uint8_t w[FRI_SA_ADVERTBYTES];
    size_t  wl = 0;
    if (rv == FR_OK) {
        rv = fri_secagg_advert_encode(w, sizeof(w), &wl, &adv);
    }
    if (rv == FR_OK) {
        fri_sa_advert_msg m = {
            .round_id = s->round, .id_pk = id.sign_pk, .advert = w};
        rv = fri_sa_advert_encode(dst, cap, len, &m);
    }
    fri_identity_wipe(&id);
    s->expect = FRI_T_ACK;
    return rv;
}

// Shares of b and c_sk for every advertised neighbour, sealed to each.
static fr_err
build_shares(fr_client *c, struct fri_sa_client *s, uint8_t *dst, size_t cap,
             size_t *len)
{
    size_t    n   = s->p.n;
    uint32_t *nb  = fri_client_calloc(c, n, sizeof(uint32_t));
    uint32_t *xs  = fri_client_calloc(c, n, sizeof(uint32_t));
    uint8_t  *bsh = zalloc(c, n, 32);
    uint8_t  *csh = zalloc(c, n, 32);
    uint8_t  *rec = zalloc(c, n, FRI_SA_REC_SHARE);
    size_t    nn = 0, k = 0;
    fr_err    rv = FR_ENOMEM;
    if (nb == NULL || xs == NULL || bsh == NULL || csh == NULL ||
        rec == NULL) {
        goto out;
    }
    rv = fri_secagg_neighbors(nb, n, &nn, s->p.index, s->p.n, s->p.degree,
                              s->p.graph_seed);
    if (rv != FR_OK) {
        goto out;
    }
    for (size_t j = 0; j < nn; j++) {
        if (s->in_roster[nb[j]]) {
            nb[k]   = nb[j];
            xs[k++] = nb[j] + 1;
        }
    }
    if (k < s->p.threshold) {
        rv = FR_ESTATE; // too few neighbours left to hold t shares
        goto out;
    }
    rv = fri_shamir_split_at(bsh, n * 32, xs, k, s->p.threshold, s->b, 32,
                             NULL);
    if (rv == FR_OK) {
        rv = fri_shamir_split_at(csh, n * 32, xs, k, s->p.threshold,
                                 s->keys.c_sk, 32, NULL);
    }
    for (size_t j = 0; j < k && rv == FR_OK; j++) {
        uint8_t msg[FRI_SECAGG_SHAREMSGBYTES];
        size_t  sl;
        memcpy(msg, bsh + j * 32, 32);
        memcpy(msg + 32, csh + j * 32, 32);
        uint8_t *key = s->skey + (size_t) nb[j] * 32;
        rv = fri_secagg_share_key(key, s->keys.s_sk,
                                  s->s_pk + (size_t) nb[j] * 32, s->round);
        if (rv == FR_OK) {
            s->has_skey[nb[j]] = 1;
            rv = fri_secagg_share_seal_k(rec + j * FRI_SA_REC_SHARE,
                                         FRI_SA_REC_SHARE, &sl, msg,
                                         sizeof(msg), s->round, s->p.index,
                                         nb[j], key);
        }
        sodium_memzero(msg, sizeof(msg));
    }
    if (rv == FR_OK) {
        fri_sa_list l = {.round_id = s->round,
                         .count    = (uint32_t) k,
                         .ids      = nb,
                         .recs     = rec};
        rv = fri_sa_list_encode(dst, cap, len, FRI_T_SA_SHARES, &l);
    }
out:
    fri_client_free(c, nb);
    fri_client_free(c, xs);
    fri_client_free_wipe(c, bsh, bsh != NULL ? n * 32 : 0);
    fri_client_free_wipe(c, csh, csh != NULL ? n * 32 : 0);
    fri_client_free(c, rec);
    s->expect = FRI_T_ACK;
    return rv;
}

// Quantizes x (dim values, the last n_extra of them the UPDATE's extra),
// masks it against the member's neighbours and encodes it as a FIXED
// dense UPDATE of n_rows rows of width values plus those.
static fr_err
seal_masked(fr_client *c, struct fri_sa_client *s, const fri_task *t,
            uint8_t kind, size_t width, uint32_t n_rows, uint32_t n_extra,
            const float *x, size_t dim, uint8_t *dst, size_t cap, size_t *len)
{
    uint32_t *q  = fri_client_calloc(c, dim, sizeof(uint32_t));
    uint8_t  *pk = zalloc(c, s->n_from, 32);
    fr_err    rv = q == NULL || pk == NULL ? FR_ENOMEM : FR_OK;
    if (rv == FR_OK) {
        rv = fri_secagg_quantize(q, x, dim, s->p.clip, s->p.frac_bits, NULL);
    }
    for (size_t j = 0; j < s->n_from && rv == FR_OK; j++) {
        memcpy(pk + j * 32, s->c_pk + (size_t) s->from[j] * 32, 32);
    }
    if (rv == FR_OK) {
        rv = fri_secagg_mask(q, q, dim, s->p.index, s->from, pk, s->n_from,
                             s->keys.c_sk, s->b, s->round);
    }
    if (rv == FR_OK) {
        fri_update wu;
        memset(&wu, 0, sizeof wu);
        wu.round_id  = s->round;
        wu.kind      = kind;
        wu.layout    = FRI_UPD_DENSE;
        wu.vtype     = FRI_VAL_FIXED;
        wu.frac_bits = (uint8_t) s->p.frac_bits;
        wu.k         = t->k;
        wu.width     = (uint32_t) width;
        wu.n_rows    = n_rows;
        wu.n_extra   = n_extra;
        wu.weight    = 0.0f; // the count stays on the device
        wu.extra     = q + dim - n_extra;
        wu.rows      = q;
        rv           = fri_update_encode(dst, cap, len, &wu);
    }
    fri_client_free_wipe(c, q, q != NULL ? dim * sizeof(uint32_t) : 0);
    fri_client_free(c, pk);
    return rv;
}

// The task's fit without pseudo-items (they would only add bias: a
// dense masked vector already hides the rated set). clip: the L2 clip of
// a gradient update, 0 for statistics.
static fr_err
compute_dense(fr_client *c, const fri_task *t, fri_fit_algo algo, float clip,
              fri_update_buf *u)
{
    fri_fit_task ft;
    memset(&ft, 0, sizeof ft);
    ft.algo       = algo;
    ft.k          = t->k;
    ft.reg        = t->reg;
    ft.reg_bias   = t->reg_bias;
    ft.alpha      = t->alpha;
    ft.clip       = clip;
    ft.weighted   = t->weighted;
    float rho     = c->pseudo_rho;
    c->pseudo_rho = 0.0f;
    fr_err rv     = fri_client_compute_update(c, &ft, u);
    c->pseudo_rho = rho;
    return rv;
}

// Per-round ALS statistics (c->model checked by build_masked): over every
// item of the catalog, so that the masked vector has the same length
// whatever the device rated, clipped by the device itself to the bounds of
// SA_PARAMS (the aggregator cannot check a masked member) and normalized
// to [-1, 1] per coordinate. Explicit ALS (docs/SECAGG.md §10,
// secagg_als.h): [packed Gram | h] on the rated items, zeros elsewhere,
// then (rating sum, count). iALS (§11, secagg_ials.h): [w p p^T | c p | c]
// on the interacted items, then the device's p p^T once (its share of
// Y^T Y) and (value sum, count); SA_PARAMS' residual is the bound C on
// the confidence weight w = alpha r.
static fr_err
build_masked_als(fr_client *c, struct fri_sa_client *s, const fri_task *t,
                 int implicit, uint8_t *dst, size_t cap, size_t *len)
{
    const fri_cmodel *m   = c->model;
    size_t            w   = implicit ? fri_sa_ials_width(t->k)
                                     : fri_sa_als_width(t->k);
    size_t            dim = implicit ? fri_sa_ials_dim(m->n_items, t->k)
                                     : fri_sa_als_dim(m->n_items, t->k);
    if (dim == 0 || dim != s->p.dim) {
        return FR_EPROTO;
    }
    fri_sa_als_bounds ab = {s->p.user_norm, s->p.residual, s->p.rating_abs};
    fri_update_buf    u;
    fr_err            rv = compute_dense(
        c, t, implicit ? FRI_FIT_IALS : FRI_FIT_ALS, 0.0f, &u);
    if (rv != FR_OK) {
        return rv;
    }
    float *x       = fri_client_calloc(c, dim, sizeof(float));
    size_t clipped = 0;
    if (x == NULL) {
        rv = FR_ENOMEM;
        goto out;
    }
    rv = (implicit ? fri_sa_ials_encode_stats : fri_sa_als_encode_stats)(
        x, dim, m->n_items, t->k, &ab, u.extra, u.rows, u.items, u.n_rows,
        u.extra[u.n_extra - 2], &clipped);
    if (rv == FR_OK && clipped > 0) {
        fri_client_logf(c, FR_LOG_INFO,
                        "msg=\"%s statistics clipped to the secure "
                        "aggregation bounds\" values=%zu",
                        implicit ? "iALS" : "ALS", clipped);
    }
    if (rv == FR_OK) {
        size_t ne = implicit ? fri_packed_len(t->k) + 2 : 2;
        rv = seal_masked(c, s, t, FRI_UPD_ALS, w, m->n_items, (uint32_t) ne,
                         x, dim, dst, cap, len);
    }
out:
    fri_client_free_wipe(c, x, x != NULL ? dim * sizeof(float) : 0);
    fri_update_buf_free(c, &u);
    s->expect = FRI_T_ACK;
    return rv;
}

// Latest statistics (docs/SECAGG.md §9): the change of the device's ALS
// or VBMF contribution since its last committed one, dense over every
// item like build_masked_als. The contribution is clamped to the bounds
// of SA_PARAMS before the delta is taken, so that the contribution the
// device stores (pending until the round commits, SA_POLL_COMMIT) is
// exactly the one the aggregator's running sum holds for it.
static fr_err
build_masked_stats(fr_client *c, struct fri_sa_client *s, const fri_task *t,
                   uint8_t *dst, size_t cap, size_t *len)
{
    const fri_cmodel *m = c->model;
    int    vb  = t->algo == FRI_ALGO_VBMF;
    size_t w   = fri_sa_als_width(t->k);
    size_t dim = fri_sa_stats_dim(m->n_items, t->k, vb);
    if (dim == 0 || dim != s->p.dim) {
        return FR_EPROTO;
    }
    fri_sa_als_bounds ab = {s->p.user_norm, s->p.residual, s->p.rating_abs};
    fri_update_buf    u;
    fr_err            rv =
        compute_dense(c, t, vb ? FRI_FIT_VBMF : FRI_FIT_ALS, 0.0f, &u);
    if (rv != FR_OK) {
        return rv;
    }
    float          *x = NULL, *xo = NULL;
    fri_stats_last *old = NULL;
    if (u.n_extra != fri_sa_stats_extra_len(t->k, vb)) {
        rv = FR_EINTERNAL;
        goto out;
    }
    size_t clipped = fri_sa_stats_clip(u.rows, u.n_rows, u.extra, t->k, vb,
                                       m->n_items, &ab);
    rv = fri_client_stats_delta(c, &u, m->mu, vb, &old);
    if (rv != FR_OK) {
        goto out;
    }
    x = fri_client_calloc(c, dim, sizeof(float));
    if (x == NULL) {
        rv = FR_ENOMEM;
        goto out;
    }
    size_t dclip = 0;
    rv = fri_sa_stats_encode(x, dim, m->n_items, t->k, vb, &ab, u.rows,
                             u.extra, u.items, u.n_rows, &dclip);
    if (rv == FR_OK && old != NULL) {
        // The rated items changed: the new contribution minus the old one,
        // slot by slot (each was inside the contribution bounds, so the
        // difference is inside the delta bounds the encoding uses).
        xo = fri_client_calloc(c, dim, sizeof(float));
        rv = xo == NULL ? FR_ENOMEM
                        : fri_sa_stats_encode(xo, dim, m->n_items, t->k, vb,
                                              &ab, old->rows, old->extra,
                                              old->items, old->n, NULL);
        for (size_t i = 0; rv == FR_OK && i < dim; i++) {
            x[i] -= xo[i];
        }
    }
    if (rv == FR_OK && clipped + dclip > 0) {
        fri_client_logf(c, FR_LOG_INFO,
                        "msg=\"statistics clipped to the secure "
                        "aggregation bounds\" values=%zu delta_values=%zu",
                        clipped, dclip);
    }
    if (rv == FR_OK) {
        size_t ne = u.n_extra - fri_packed_len((size_t) t->k + 1);
        rv = seal_masked(c, s, t, vb ? FRI_UPD_VB : FRI_UPD_ALS, w,
                         m->n_items, (uint32_t) ne, x, dim, dst, cap, len);
    }
    if (rv == FR_OK && c->pending != NULL) {
        c->pending_round = t->round_id;
    }
out:
    fri_client_free_wipe(c, x, x != NULL ? dim * sizeof(float) : 0);
    fri_client_free_wipe(c, xo, xo != NULL ? dim * sizeof(float) : 0);
    fri_stats_last_free(old);
    fri_update_buf_free(c, &u);
    s->expect = FRI_T_ACK;
    return rv;
}

// The dense update, quantized and masked, as a FIXED dense UPDATE, against
// the model the task is for.
static fr_err
build_masked(fr_client *c, struct fri_sa_client *s, const fri_task *t,
             uint8_t *dst, size_t cap, size_t *len)
{
    const fri_cmodel *m = c->model;
    if (m == NULL || m->k != t->k) {
        return FR_ESTATE;
    }
    if (t->stats_delta) {
        return build_masked_stats(c, s, t, dst, cap, len);
    }
    if (t->algo == FRI_ALGO_ALS || t->algo == FRI_ALGO_IALS) {
        return build_masked_als(c, s, t, t->algo == FRI_ALGO_IALS, dst, cap,
                                len);
    }
    size_t d = (size_t) t->k + 1, nr = (size_t) m->n_items * d;
    if (nr + 2 != s->p.dim) {
        return FR_EPROTO;
    }
    fri_update_buf u;
    fr_err         rv = compute_dense(
        c, t, FRI_FIT_GRAD, t->clip > 0.0f ? t->clip : s->p.clip, &u);
    if (rv != FR_OK) {
        return rv;
    }
    float *x = fri_client_calloc(c, nr + 2, sizeof(float));
    if (x == NULL) {
        rv = FR_ENOMEM;
        goto out;
    }
    for (uint32_t r = 0; r < u.n_rows; r++) {
        memcpy(x + (size_t) u.items[r] * d, u.rows + (size_t) r * d,
               d * sizeof(float));
    }
    x[nr]     = u.extra[u.n_extra - 2];
    x[nr + 1] = u.extra[u.n_extra - 1];
    rv        = FR_OK;
    if (s->p.noise_sd > 0.0f) {
        // Distributed DP: this member's share of the noise, on every
        // coordinate, from a fresh secret seed (docs/DP.md).
        uint8_t seed[FRI_DP_SEEDBYTES];
        rv = fri_dp_noise_seed_random(seed);
        if (rv == FR_OK) {
            rv = fri_dp_add_gaussian_secret(x, nr + 2, s->p.noise_sd, seed);
        }
        sodium_memzero(seed, sizeof(seed));
    }
    if (rv == FR_OK) {
        rv = seal_masked(c, s, t, FRI_UPD_GRAD, d, m->n_items, 2, x, nr + 2,
                         dst, cap, len);
    }
out:
    fri_client_free_wipe(c, x, x != NULL ? (nr + 2) * sizeof(float) : 0);
    fri_update_buf_free(c, &u);
    s->expect = FRI_T_ACK;
    return rv;
}

size_t
fri_sa_client_bound(const struct fri_sa_client *s, uint32_t k,
                    uint32_t n_items, int als, int vb, int ials)
{
    // Before SA_PARAMS the cohort size is unknown, but no list is sent
    // before it either.
    uint32_t n  = s != NULL ? s->p.n : 0;
    uint32_t ne = vb     ? (uint32_t) fri_sa_stats_glob_len(k) + 2
                  : ials ? (uint32_t) fri_packed_len(k) + 2
                         : 2;
    // iALS rows are narrower than ALS ones: the ALS width bounds both.
    size_t   a  = fri_sa_list_size(FRI_T_SA_SHARES, n);
    size_t   b  = fri_update_size(FRI_UPD_DENSE,
                                  als || vb || ials
                                      ? (uint32_t) fri_sa_als_width(k)
                                      : k + 1,
                                  n_items, ne);
    // SA_UNMASK: the shares and, to an aggregator that takes it, the
    // dropout correction (one word per word of the masked vector).
    size_t   dw = (size_t) (als || vb || ials ? fri_sa_als_width(k) : k + 1) *
                    n_items + ne;
    size_t   u  = s != NULL && s->correct && dw <= UINT32_MAX
                      ? fri_sa_unmask_size(n, (uint32_t) dw)
                      : 0;
    u           = u > 0 ? u : fri_sa_list_size(FRI_T_SA_UNMASK, n);
    size_t   m = a > b ? a : b;
    m          = m > u ? m : u;
    return m > FRI_HDR_LEN + FRI_SA_ADVERT_BODY ? m
                                                : FRI_HDR_LEN + FRI_SA_ADVERT_BODY;
}

fr_err
fri_sa_client_poll(fr_client *c, struct fri_sa_client *s, const fri_task *t,
                   uint8_t *dst, size_t cap, size_t *len)
{
    fr_err rv;
    switch (s->step) {
    case SA_POLL_PARAMS:
        rv = poll_msg(s, FRI_T_SA_PARAMS, dst, cap, len);
        break;
    case SA_ADVERT:
        rv = build_advert(c, s, dst, cap, len);
        break;
    case SA_POLL_ROSTER:
        rv = poll_msg(s, FRI_T_SA_ROSTER, dst, cap, len);
        break;
    case SA_SHARES:
        rv = build_shares(c, s, dst, cap, len);
        break;
    case SA_POLL_INBOX:
        rv = poll_msg(s, FRI_T_SA_SHARES_FWD, dst, cap, len);
        break;
    case SA_MASKED:
        rv = build_masked(c, s, t, dst, cap, len);
        break;
    case SA_POLL_UNMASK:
        rv = poll_msg(s, FRI_T_SA_UNMASK_REQ, dst, cap, len);
        break;
    case SA_POLL_COMMIT:
        rv = poll_msg(s, FRI_T_UPDATE, dst, cap, len);
        break;
    case SA_UNMASK:
        if (s->pending == NULL) {
            rv = FR_ESTATE;
        } else if (cap < s->pending_len) {
            rv = FR_ENOSPC;
        } else {
            memcpy(dst, s->pending, s->pending_len);
            *len      = s->pending_len;
            s->expect = FRI_T_ACK;
            rv        = FR_OK;
        }
        break;
    default:
        rv = FR_ESTATE;
        break;
    }
    return rv;
}

static fr_err
recv_params(fr_client *c, struct fri_sa_client *s, const fri_task *t,
            const uint8_t *plain, size_t plain_len)
{
    fr_err rv = fri_sa_params_decode(&s->p, plain, plain_len);
    if (rv != FR_OK) {
        return rv;
    }
    if (s->p.round_id != s->round || (t->clip > 0.0f && s->p.clip != t->clip)) {
        return FR_EPROTO;
    }
    // ALS and VBMF statistics need their bounds (and no DP noise, which
    // the aggregator does not ask for with them); a gradient task has none.
    int      als = t->algo == FRI_ALGO_ALS || t->algo == FRI_ALGO_VBMF ||
              t->algo == FRI_ALGO_IALS;
    uint32_t ni  = c->model != NULL ? c->model->n_items : 0;
    size_t   dim = t->stats_delta
                       ? fri_sa_stats_dim(ni, t->k, t->algo == FRI_ALGO_VBMF)
                   : t->algo == FRI_ALGO_IALS ? fri_sa_ials_dim(ni, t->k)
                                              : fri_sa_als_dim(ni, t->k);
    if (als != (s->p.user_norm > 0.0f) ||
        (als && (s->p.noise_sd != 0.0f || s->p.dim != dim))) {
        return FR_EPROTO;
    }
    if (t->stats_delta) {
        // Before this round's delta is taken: is what the device still
        // holds as pending in the aggregator's running sum?
        fri_client_stats_resolve(c, s->p.applied_round);
    }
    if (s->p.n > c->max_sa_members) {
        // The device's bound on cohort size (and on the replies it accepts).
        return FR_ETOOBIG;
    }
    size_t n     = s->p.n;
    s->c_pk      = zalloc(c, n, 32);
    s->s_pk      = zalloc(c, n, 32);
    s->in_roster = zalloc(c, n, 1);
    s->skey      = zalloc(c, n, 32);
    s->has_skey  = zalloc(c, n, 1);
    s->from      = fri_client_calloc(c, n, sizeof(uint32_t));
    s->held      = zalloc(c, n, FRI_SECAGG_SHAREMSGBYTES);
    if (s->c_pk == NULL || s->s_pk == NULL || s->in_roster == NULL ||
        s->skey == NULL || s->has_skey == NULL ||
        s->from == NULL || s->held == NULL) {
        return FR_ENOMEM;
    }
    s->step = SA_ADVERT;
    return FR_OK;
}

static fr_err
recv_roster(const fr_client *c, struct fri_sa_client *s, const uint8_t *plain,
            size_t plain_len)
{
    fri_sa_list l;
    fr_err      rv = fri_sa_list_decode(&l, FRI_T_SA_ROSTER, plain, plain_len);
    if (rv != FR_OK) {
        return rv;
    }
    if (l.round_id != s->round) {
        return FR_EPROTO;
    }
    int me = 0;
    for (uint32_t j = 0; j < l.count; j++) {
        uint32_t       id;
        const uint8_t *rec;
        fri_sa_list_get(&l, FRI_T_SA_ROSTER, j, &id, &rec);
        if (id >= s->p.n) {
            return FR_EPROTO;
        }
        fri_secagg_advert adv;
        rv = fri_secagg_advert_decode(&adv, rec + 32, FRI_SA_ADVERTBYTES);
        if (rv == FR_OK && c->verify_adverts) {
            // Signed by the member's identity key for this round and
            // index (the aggregator checked it on arrival: S2).
            rv = fri_secagg_advert_verify(&adv, s->round, id, rec);
        } else if (rv == FR_OK && (adv.round_id != s->round ||
                                   adv.client != id)) {
            rv = FR_ECRYPTO; // for this round and index, signed or not
        }
        if (rv != FR_OK) {
            return rv;
        }
        if (id == s->p.index) {
            me = sodium_memcmp(adv.c_pk, s->keys.c_pk, 32) == 0;
            continue;
        }
        memcpy(s->c_pk + (size_t) id * 32, adv.c_pk, 32);
        memcpy(s->s_pk + (size_t) id * 32, adv.s_pk, 32);
        s->in_roster[id] = 1;
    }
    if (!me) {
        return FR_ECRYPTO; // our own advert is missing or was replaced
    }
    s->step = SA_SHARES;
    return FR_OK;
}

static fr_err
recv_inbox(struct fri_sa_client *s, const uint8_t *plain, size_t plain_len)
{
    fri_sa_list l;
    fr_err rv = fri_sa_list_decode(&l, FRI_T_SA_SHARES_FWD, plain, plain_len);
    if (rv != FR_OK) {
        return rv;
    }
    if (l.round_id != s->round || l.count > s->p.n) {
        return FR_EPROTO;
    }
    s->n_from = 0;
    for (uint32_t j = 0; j < l.count; j++) {
        uint32_t       id;
        const uint8_t *rec;
        fri_sa_list_get(&l, FRI_T_SA_SHARES_FWD, j, &id, &rec);
        if (id >= s->p.n || !s->in_roster[id]) {
            return FR_EPROTO;
        }
        size_t ml = 0;
        // The key agreed when sharing to id (a sender this member did not
        // share to is not a neighbour it accepts shares from).
        rv = s->has_skey[id]
                 ? fri_secagg_share_open_k(
                       s->held + s->n_from * FRI_SECAGG_SHAREMSGBYTES,
                       FRI_SECAGG_SHAREMSGBYTES, &ml, rec, FRI_SA_REC_SHARE,
                       s->round, id, s->p.index, s->skey + (size_t) id * 32)
                 : FR_EPROTO;
        if (rv != FR_OK) {
            return rv;
        }
        s->from[s->n_from++] = id;
    }
    s->step = SA_MASKED;
    return FR_OK;
}

// Reveals, per sender, the b-share of a survivor or the c_sk-share of a
// dropped member; never both, and nothing about members in neither list.
// Builds the SA_UNMASK answer into s->pending (its exact size).
static fr_err
recv_unmask_req(fr_client *c, struct fri_sa_client *s, const uint8_t *plain,
                size_t plain_len)
{
    fri_sa_unmask_req q;
    fr_err            rv = fri_sa_unmask_req_decode(&q, plain, plain_len);
    if (rv != FR_OK) {
        return rv;
    }
    if (q.round_id != s->round) {
        return FR_EPROTO;
    }
    uint32_t *about = fri_client_calloc(c, s->n_from + 1, sizeof(uint32_t));
    uint8_t  *sh    = zalloc(c, s->n_from, 32);
    // Per member id: 1 survivor, 2 dropped, 3 listed as both (O(n), not
    // O(n x neighbours)).
    uint8_t *kinds = zalloc(c, s->p.n, 1);
    if (about == NULL || sh == NULL || kinds == NULL) {
        fri_client_free(c, about);
        fri_client_free(c, sh);
        fri_client_free(c, kinds);
        return FR_ENOMEM;
    }
    for (uint32_t i = 0; i < q.n_surv + q.n_drop; i++) {
        uint32_t id = fri_sa_unmask_req_id(&q, i);
        if (id < s->p.n) {
            kinds[id] |= i < q.n_surv ? 1 : 2;
        }
    }
    size_t k = 0;
    int    self_ok = 0;
    for (size_t j = 0; j < s->n_from; j++) {
        int kind = kinds[s->from[j]]; // 1 survivor, 2 dropped
        if (kind == 3) {
            rv = FR_EPROTO; // listed as both
            break;
        }
        if (kind == 0) {
            continue;
        }
        about[k] = s->from[j];
        memcpy(sh + k * 32,
               s->held + j * FRI_SECAGG_SHAREMSGBYTES + (kind == 1 ? 0 : 32),
               32);
        k++;
    }
    for (uint32_t i = 0; i < q.n_surv; i++) {
        self_ok |= fri_sa_unmask_req_id(&q, i) == s->p.index;
    }
    if (rv == FR_OK && !self_ok) {
        rv = FR_EPROTO; // we sent our input: we must be a survivor
    }
    // The dropout correction (S4a): the pair masks this member added with
    // the dropped it reveals shares of, so that the aggregator need not
    // recompute each pair (docs/SECAGG.md §5). It costs a second vector
    // up and saves the aggregator one agreement and one expansion per
    // dropped neighbour: sent when at least FRI_SA_CORRECT_SHARE of the
    // members this one masked with dropped (with 30% dropout nearly
    // every survivor, with 10% nearly none).
    uint32_t *corr = NULL;
    size_t    nd   = 0;
    for (size_t j = 0; s->correct && j < k; j++) {
        nd += kinds[about[j]] == 2;
    }
    if (rv == FR_OK && s->correct &&
        (double) nd >= FRI_SA_CORRECT_SHARE * (double) s->n_from && nd > 0) {
        uint32_t *dp  = fri_client_calloc(c, nd, sizeof(uint32_t));
        uint8_t  *dpk = zalloc(c, nd, 32);
        corr          = fri_client_calloc(c, s->p.dim, sizeof(uint32_t));
        if (dp == NULL || dpk == NULL || corr == NULL) {
            rv = FR_ENOMEM;
        } else {
            size_t t = 0;
            for (size_t j = 0; j < k; j++) {
                if (kinds[about[j]] == 2) {
                    dp[t] = about[j];
                    memcpy(dpk + t * 32, s->c_pk + (size_t) about[j] * 32,
                           32);
                    t++;
                }
            }
            rv = fri_secagg_correction(corr, s->p.dim, s->p.index, dp, dpk,
                                       nd, s->keys.c_sk, s->round);
        }
        fri_client_free(c, dp);
        fri_client_free(c, dpk);
    }
    size_t cap = fri_sa_unmask_size((uint32_t) k,
                                    corr != NULL ? s->p.dim : 0);
    if (rv == FR_OK && cap == 0) {
        rv = FR_EPROTO;
    }
    if (rv == FR_OK) {
        s->pending = zalloc(c, cap, 1);
        rv         = s->pending == NULL ? FR_ENOMEM : FR_OK;
    }
    if (rv == FR_OK) {
        fri_sa_list l = {
            .round_id = s->round, .count = (uint32_t) k, .ids = about,
            .recs = sh, .corr = corr, .n_corr = corr != NULL ? s->p.dim : 0};
        rv = fri_sa_list_encode(s->pending, cap, &s->pending_len,
                                FRI_T_SA_UNMASK, &l);
        if (rv != FR_OK) {
            fri_client_free_wipe(c, s->pending, cap);
            s->pending     = NULL;
            s->pending_len = 0;
        }
    }
    fri_client_free_wipe(c, corr, corr != NULL ? s->p.dim * sizeof(uint32_t)
                                               : 0);
    fri_client_free(c, about);
    fri_client_free(c, kinds);
    fri_client_free_wipe(c, sh, s->n_from * 32);
    return rv;
}

fr_err
fri_sa_client_receive(fr_client *c, struct fri_sa_client *s,
                      const fri_task *t, uint16_t type, const uint8_t *plain,
                      size_t plain_len, uint32_t *retry_after_ms, int *done)
{
    *retry_after_ms = 0;
    *done           = 0;
    if (type == FRI_T_SA_WAIT) {
        fri_sa_poll w;
        fr_err rv = fri_sa_poll_decode(&w, FRI_T_SA_WAIT, plain, plain_len);
        if (rv != FR_OK || w.round_id != s->round || w.want != s->expect) {
            return rv != FR_OK ? rv : FR_EPROTO;
        }
        *retry_after_ms = w.retry_after_ms; // same step, later
        return FR_OK;
    }
    if (type == FRI_T_ACK && s->step == SA_POLL_COMMIT) {
        // The round completed with this member among the survivors: its
        // delta is in the aggregator's running sum (SPEC §9.6 S6).
        fri_ack a;
        fr_err  rv = fri_ack_decode(&a, plain, plain_len);
        if (rv != FR_OK || a.of_type != FRI_T_UPDATE ||
            a.round_id != s->round) {
            return rv != FR_OK ? rv : FR_EPROTO;
        }
        fri_client_stats_commit(c);
        s->step = SA_OVER;
        *done   = 1;
        return FR_OK;
    }
    if (type == FRI_T_ACK) {
        fri_ack a;
        fr_err  rv = fri_ack_decode(&a, plain, plain_len);
        if (rv != FR_OK || s->expect != FRI_T_ACK || a.round_id != s->round) {
            return rv != FR_OK ? rv : FR_EPROTO;
        }
        switch (s->step) {
        case SA_ADVERT:
            s->step = a.of_type == FRI_T_SA_ADVERT ? SA_POLL_ROSTER : SA_OVER;
            break;
        case SA_SHARES:
            s->step = a.of_type == FRI_T_SA_SHARES ? SA_POLL_INBOX : SA_OVER;
            break;
        case SA_MASKED:
            s->step = a.of_type == FRI_T_UPDATE ? SA_POLL_UNMASK : SA_OVER;
            break;
        case SA_UNMASK:
            if (a.of_type != FRI_T_SA_UNMASK) {
                s->step = SA_OVER;
                return FR_EPROTO;
            }
            // Latest statistics: commit only once the round is known to
            // have applied this member's delta.
            s->step = t->stats_delta ? SA_POLL_COMMIT : SA_OVER;
            *done   = !t->stats_delta;
            return FR_OK;
        default:
            return FR_EPROTO;
        }
        return s->step == SA_OVER ? FR_EPROTO : FR_OK;
    }
    if (type != s->expect) {
        return FR_EPROTO;
    }
    switch (type) {
    case FRI_T_SA_PARAMS:
        return recv_params(c, s, t, plain, plain_len);
    case FRI_T_SA_ROSTER:
        return recv_roster(c, s, plain, plain_len);
    case FRI_T_SA_SHARES_FWD:
        return recv_inbox(s, plain, plain_len);
    case FRI_T_SA_UNMASK_REQ: {
        // The answer is built now (the request names who survived) and
        // sent by the next poll.
        fr_err rv = recv_unmask_req(c, s, plain, plain_len);
        if (rv == FR_OK) {
            s->step = SA_UNMASK;
        }
        return rv;
    }
    default:
        return FR_EPROTO;
    }
}
