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

fr_err
fri_client_compute_update(fr_client *c, const fri_fit_task *t,
                          fri_update_buf *u)
{
    memset(u, 0, sizeof *u);
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
    size_t   n_extra;
    if (t->algo == FRI_FIT_IALS) {
        n_extra = fri_packed_len(k) + 2;
    } else if (t->algo == FRI_FIT_ALS) {
        n_extra = fri_packed_len(k + 1) + 2;
    } else {
        n_extra = 2;
    }
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
        err = fri_mf_implicit_user_item_stats(u->extra, n_extra - 2, u->rows,
                                              n * width, c->p, k, c->values,
                                              n, t->alpha);
        break;
    case FRI_FIT_GRAD:
        err = fri_mf_user_item_grad(u->rows, n * width, &it, c->p, c->bu,
                                    c->items, c->values, n, t->reg,
                                    t->reg_bias);
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
    if (t->clip > 0.0f) {
        // The sensitivity bound is on the whole update: the rows and the
        // statistics vector together.
        float *blocks[2] = {u->extra, u->rows};
        size_t lens[2]   = {n_extra, n * width};
        (void) fri_dp_clip_l2_rows(blocks, lens, 2, t->clip, NULL);
    }
    return FR_OK;
}
