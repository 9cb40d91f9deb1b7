// The local fit of a round: refits the user vector against the model in
// use and computes the item-side update rows (kept apart from checkin.c,
// which speaks the wire format, so the math headers and the message
// headers never meet in one translation unit).
#include <math.h>
#include <string.h>

#include "client_fit.h"
#include "dp.h"
#include "linalg.h"
#include "mf.h"
#include "pseudo.h"

#include <sodium.h>

void
fri_update_buf_free(fr_client *c, fri_update_buf *u)
{
    fri_client_free_wipe(c, u->extra, u->n_extra * sizeof *u->extra);
    fri_client_free_wipe(c, u->rows,
                         (size_t) u->n_rows * u->width * sizeof *u->rows);
    fri_client_free_wipe(c, u->items, (size_t) u->n_rows * sizeof *u->items);
    memset(u, 0, sizeof *u);
}

static fri_mf_items
items_of(const fri_cmodel *m)
{
    fri_mf_items it;
    it.n_items = m->n_items;
    it.k       = m->k;
    it.mu      = m->mu;
    it.bi      = m->bi;
    it.Q       = m->Q;
    return it;
}

// iALS: rows [c_j - 1, c_j p_u] (fri_mf_implicit_user_item_stats) and, in
// extra, the packed Gram of [p_u; 1] like explicit ALS (its top-left k x k
// block is p_u p_u^T, the rest is [p_u; 1] and the count), so one UPDATE
// layout serves both.
static fr_err
implicit_stats(fr_client *c, fri_update_buf *u, uint32_t k, size_t n,
               float alpha)
{
    size_t glen = fri_packed_len(k);
    float *g    = fri_client_calloc(c, glen, sizeof *g);
    if (g == NULL) {
        return FR_ENOMEM;
    }
    fr_err err = fri_mf_implicit_user_item_stats(
        g, glen, u->rows, n * u->width, c->p, k, c->values, n, alpha);
    fri_client_free_wipe(c, g, glen * sizeof *g);
    if (err != FR_OK) {
        return err;
    }
    size_t d = (size_t) k + 1;
    for (size_t a = 0; a < d; a++) {
        float xa = a < k ? c->p[a] : 1.0f;
        for (size_t b = a; b < d; b++) {
            float xb = b < k ? c->p[b] : 1.0f;
            u->extra[fri_packed_index(d, a, b)] = xa * xb;
        }
    }
    return FR_OK;
}

// Local SGD (FedAvg-style): local_epochs passes over the user's ratings on
// private copies of the rated items' rows, then the change [dq_i; db_i].
static fr_err
local_delta(fr_client *c, fri_update_buf *u, const fri_mf_items *it,
            size_t n, const fri_fit_task *t)
{
    uint32_t k  = it->k;
    float   *ql = fri_client_calloc2(c, n + 1, k, sizeof *ql);
    float   *bl = fri_client_calloc(c, n + 1, sizeof *bl);
    if (ql == NULL || bl == NULL) {
        fri_client_free(c, ql);
        fri_client_free(c, bl);
        return FR_ENOMEM;
    }
    for (size_t j = 0; j < n; j++) {
        memcpy(ql + j * k, it->Q + (size_t) c->items[j] * k,
               k * sizeof *ql);
        bl[j] = it->bi[c->items[j]];
    }
    fr_err   err    = FR_OK;
    uint32_t epochs = t->local_epochs == 0 ? 1 : t->local_epochs;
    for (uint32_t e = 0; e < epochs && err == FR_OK; e++) {
        err = fri_mf_user_sgd(c->p, &c->bu, ql, bl, it, c->items, c->values,
                              n, t->lr, t->reg, t->reg_bias, &c->rng);
    }
    if (err == FR_OK) {
        for (size_t j = 0; j < n; j++) {
            const float *q0 = it->Q + (size_t) c->items[j] * k;
            float       *row = u->rows + j * u->width;
            for (uint32_t f = 0; f < k; f++) {
                row[f] = ql[j * k + f] - q0[f];
            }
            row[k] = bl[j] - it->bi[c->items[j]];
        }
    }
    fri_client_free_wipe(c, ql, (n * k + 1) * sizeof *ql);
    fri_client_free_wipe(c, bl, (n + 1) * sizeof *bl);
    return err;
}

// Adds the pseudo-items to a computed ALS or gradient update of n real
// rows: merges real and fake rows sorted by item and reports (sum, count)
// and the weight over the whole visible set, so none of them reveals
// |I_u|. The fake set comes from a stream keyed by the identity seed (and
// nothing round-dependent), so it is stable while I_u is.
static fr_err
add_pseudo(fr_client *c, fri_update_buf *u, const fri_fit_task *t,
           const fri_mf_items *it, size_t n)
{
    fri_pseudo_config pc;
    fri_pseudo_config_init(&pc);
    pc.rho  = c->pseudo_rho;
    pc.fill = (fri_pseudo_fill) c->pseudo_fill;
    size_t n_fake = fri_pseudo_count(n, pc.rho, it->n_items);
    if (n_fake == 0) {
        return FR_OK;
    }
    size_t   total = n + n_fake;
    size_t   width = u->width;
    uint32_t *items = fri_client_calloc(c, total, sizeof *items);
    float    *rows  = fri_client_calloc2(c, total, width, sizeof *rows);
    if (items == NULL || rows == NULL) {
        fri_client_free(c, items);
        fri_client_free(c, rows);
        return FR_ENOMEM;
    }
    // 64 secret bits for the stream: BLAKE2b of the identity seed under a
    // domain-separation key (never the simulator seed or a counter).
    static const uint8_t dom[16] = "fedrec-pseudo-v1";
    uint8_t              h[8];
    crypto_generichash(h, sizeof h, c->identity_seed,
                       sizeof c->identity_seed, dom, sizeof dom);
    uint64_t s64 = 0;
    for (int i = 7; i >= 0; i--) {
        s64 = (s64 << 8) | h[i];
    }
    sodium_memzero(h, sizeof h);
    fri_rng rng;
    fri_rng_seed(&rng, s64);
    s64 = 0;
    size_t n_out = 0;
    double vsum  = 0.0;
    fr_err err   = fri_pseudo_merge(
        items, rows, NULL, total, &n_out, &vsum,
        t->algo == FRI_FIT_ALS ? FRI_PSEUDO_ROWS_ALS : FRI_PSEUDO_ROWS_GRAD,
        it, c->p, c->bu, t->reg, t->reg_bias, u->items, c->values, u->rows, n,
        &pc, &rng);
    sodium_memzero(&rng, sizeof rng);
    if (err != FR_OK || n_out != total) {
        fri_client_free_wipe(c, items, total * sizeof *items);
        fri_client_free_wipe(c, rows, total * width * sizeof *rows);
        return err != FR_OK ? err : FR_EINTERNAL;
    }
    fri_client_free_wipe(c, u->rows, n * width * sizeof *u->rows);
    fri_client_free_wipe(c, u->items, n * sizeof *u->items);
    u->rows                  = rows;
    u->items                 = items;
    u->n_rows                = (uint32_t) total;
    u->extra[u->n_extra - 2] += (float) vsum;
    u->extra[u->n_extra - 1] = (float) total;
    u->weight                = (float) total;
    return FR_OK;
}

fr_err
fri_client_compute_update(fr_client *c, const fri_fit_task *t,
                          fri_update_buf *u)
{
    memset(u, 0, sizeof *u);
    if (t->algo == FRI_FIT_VBMF) {
        fr_err ve = fri_client_vb_update(c, t, u); // fit_vbmf.c
        if (ve == FR_OK && t->stats_delta) {
            ve = t->clip > 0.0f ? fri_client_stats_delta_dp(
                                      c, u, c->model->mu, 1, t->clip)
                                : fri_client_stats_delta(c, u, c->model->mu,
                                                         1, NULL);
            if (ve != FR_OK) {
                fri_update_buf_free(c, u);
            }
        }
        return ve;
    }
    const fri_cmodel *m = c->model;
    if (m == NULL) {
        return fri_client_fail(c, FR_ESTATE, "no model for the round");
    }
    if (t->k != m->k) {
        return fri_client_fail(c, FR_EPROTO,
                               "task k=%u differs from model k=%u",
                               (unsigned) t->k, (unsigned) m->k);
    }
    c->fit.reg      = t->reg;
    c->fit.reg_bias = t->reg_bias;
    c->fit.weighted = t->weighted;
    c->fit.alpha    = t->alpha;
    c->fit.implicit = t->algo == FRI_FIT_IALS;
    if (c->fit.implicit && !m->implicit) {
        return fri_client_fail(c, FR_EPROTO,
                               "implicit task with an explicit model");
    }
    // Refit the user vector (closed form) to this round's model.
    fr_err err = fri_client_refit(c);
    if (err != FR_OK) {
        return err;
    }
    // Only items inside the catalog contribute (sorted: a prefix).
    size_t n = 0;
    while (n < c->n_inter && c->items[n] < m->n_items) {
        n++;
    }
    uint32_t k     = m->k;
    uint32_t width = k + 1;
    // Every kind carries (sum of values, count) last; the statistics kinds
    // put the packed Gram of x = [p_u; 1] first.
    int    stats   = t->algo == FRI_FIT_ALS || t->algo == FRI_FIT_IALS;
    size_t n_extra = stats ? fri_packed_len(k + 1) + 2 : 2;
    if (n > SIZE_MAX / width / sizeof(float) || n > UINT32_MAX) {
        return fri_client_fail(c, FR_ETOOBIG, "too many interactions");
    }
    u->width   = width;
    u->n_rows  = (uint32_t) n;
    u->n_extra = n_extra;
    u->extra   = fri_client_calloc(c, n_extra, sizeof *u->extra);
    u->rows    = fri_client_calloc(c, n * width, sizeof *u->rows);
    u->items   = fri_client_calloc(c, n, sizeof *u->items);
    if (u->extra == NULL || u->rows == NULL || u->items == NULL) {
        fri_update_buf_free(c, u);
        return fri_client_fail(c, FR_ENOMEM, "out of memory (update)");
    }
    if (n > 0) {
        memcpy(u->items, c->items, n * sizeof *u->items);
    }
    double sum = 0.0;
    for (size_t j = 0; j < n; j++) {
        sum += c->values[j];
    }
    u->extra[n_extra - 2] = (float) sum;
    u->extra[n_extra - 1] = (float) n;
    u->weight             = (float) n;

    fri_mf_items it = items_of(m);
    switch (t->algo) {
    case FRI_FIT_ALS:
        err = fri_mf_user_item_stats(u->extra, n_extra - 2, u->rows,
                                     n * width, c->p, c->bu, k, m->mu,
                                     c->values, n);
        break;
    case FRI_FIT_IALS:
        err = implicit_stats(c, u, k, n, t->alpha);
        break;
    case FRI_FIT_GRAD:
        err = fri_mf_user_item_grad(u->rows, n * width, &it, c->p, c->bu,
                                    c->items, c->values, n, t->reg,
                                    t->reg_bias);
        break;
    case FRI_FIT_DELTA:
        err = local_delta(c, u, &it, n, t);
        break;
    default:
        err = FR_EPROTO;
        break;
    }
    if (err != FR_OK) {
        fri_update_buf_free(c, u);
        return fri_client_fail(c, err, "computing the update failed: %s",
                               fr_strerror(err));
    }
    if (c->pseudo_rho > 0.0f) {
        if (t->algo == FRI_FIT_ALS || t->algo == FRI_FIT_GRAD) {
            err = add_pseudo(c, u, t, &it, n);
            if (err != FR_OK) {
                fri_update_buf_free(c, u);
                return fri_client_fail(c, err, "pseudo-items failed: %s",
                                       fr_strerror(err));
            }
            n = u->n_rows; // the clip below covers the fake rows too
        } else {
            fri_client_logf(c, FR_LOG_WARN,
                            "msg=\"pseudo-items not applied to this task "
                            "kind\" algo=%d",
                            (int) t->algo);
        }
    }
    const int bounded = t->stats_delta && t->algo == FRI_FIT_ALS &&
                        t->clip > 0.0f;
    if (bounded) {
        // Latest statistics: the contribution and its delta are bounded
        // below (fri_client_stats_delta_dp).
    } else if (t->clip > 0.0f && stats) {
        // The sensitivity bound is on the whole update: the rows and the
        // statistics vector together.
        float *blocks[2] = {u->extra, u->rows};
        size_t lens[2]   = {n_extra, n * width};
        (void) fri_dp_clip_l2_rows(blocks, lens, 2, t->clip, NULL);
    } else if (t->clip > 0.0f) {
        // Gradient kinds: (sum, count) would dominate a joint norm (it
        // grows with the number of ratings) and crush the gradient rows.
        // Clip the rows and (sum, count) separately to C/sqrt(2) each, so
        // the whole update still has norm <= C. The aggregator's mean
        // then weighs users about equally (sum/count is kept per user).
        // (1 - 1e-6 so that float rounding of C/sqrt(2) cannot exceed C.)
        float half = (float) (t->clip / 1.41421356237309515 * (1.0 - 1e-6));
        (void) fri_dp_clip_l2(u->extra, n_extra, half, NULL);
        (void) fri_dp_clip_l2(u->rows, n * width, half, NULL);
    }
    if (t->stats_delta && t->algo == FRI_FIT_ALS) {
        err = bounded ? fri_client_stats_delta_dp(c, u, m->mu, 0, t->clip)
                      : fri_client_stats_delta(c, u, m->mu, 0, NULL);
        if (err != FR_OK) {
            fri_update_buf_free(c, u);
            return err;
        }
    }
    return FR_OK;
}
