// Latest-statistics mode: the aggregator keeps the sum of every device's
// latest contribution, so a device sends the change of its own
// contribution since its last acknowledged one. A difference of sums is
// still a sum, so the aggregator's running total stays exact (and the
// deltas can be masked like any update).
//
// The aggregator re-centres its running total on each new global mean mu
// (h -= dmu * sum_u E[x_u], the Gram's last column; the squared errors of
// VBMF likewise), so the device re-centres its stored contribution the
// same way before subtracting it: what it subtracts is exactly what the
// aggregator holds for it.
#include <stdlib.h>
#include <string.h>

#include "client_fit.h"
#include "linalg.h"

#include <sodium.h>

void
fri_stats_last_free(fri_stats_last *l)
{
    if (l == NULL) {
        return;
    }
    if (l->items != NULL) {
        sodium_memzero(l->items, (size_t) l->n * sizeof *l->items);
    }
    if (l->rows != NULL) {
        sodium_memzero(l->rows, (size_t) l->n * l->width * sizeof *l->rows);
    }
    if (l->extra != NULL) {
        sodium_memzero(l->extra, l->n_extra * sizeof *l->extra);
    }
    free(l->items);
    free(l->rows);
    free(l->extra);
    sodium_memzero(l, sizeof *l);
    free(l);
}

static fri_stats_last *
snapshot(const fri_update_buf *u, float mu)
{
    fri_stats_last *l = calloc(1, sizeof *l);
    if (l == NULL) {
        return NULL;
    }
    size_t nr = (size_t) u->n_rows;
    l->items  = malloc((nr > 0 ? nr : 1) * sizeof *l->items);
    l->rows   = malloc((nr > 0 ? nr * u->width : 1) * sizeof *l->rows);
    l->extra  = malloc((u->n_extra > 0 ? u->n_extra : 1) * sizeof *l->extra);
    if (l->items == NULL || l->rows == NULL || l->extra == NULL) {
        fri_stats_last_free(l);
        return NULL;
    }
    l->n       = u->n_rows;
    l->width   = u->width;
    l->n_extra = u->n_extra;
    l->mu      = mu;
    if (nr > 0) {
        memcpy(l->items, u->items, nr * sizeof *l->items);
        memcpy(l->rows, u->rows, nr * u->width * sizeof *l->rows);
    }
    memcpy(l->extra, u->extra, u->n_extra * sizeof *l->extra);
    return l;
}

fr_err
fri_client_stats_delta(fr_client *c, fri_update_buf *u, float mu, int vb)
{
    fri_stats_last_free(c->pending);
    c->pending = NULL;
    if (c->model == NULL || c->model->version == 0) {
        // Census round (no global mean yet): the aggregator takes only mu
        // from it, so this report is sent whole and not recorded.
        return FR_OK;
    }
    const fri_stats_last *l = c->last;
    if (l != NULL &&
        (l->n != u->n_rows || l->width != u->width ||
         l->n_extra != u->n_extra ||
         (l->n > 0 &&
          memcmp(l->items, u->items, (size_t) l->n * sizeof *l->items) !=
              0))) {
        // One Gram per update cannot express a contribution that leaves
        // some items and enters others.
        return fri_client_fail(c, FR_ESTATE,
                               "rated items changed since the last "
                               "statistics report");
    }
    c->pending = snapshot(u, mu);
    if (c->pending == NULL) {
        return fri_client_fail(c, FR_ENOMEM, "out of memory (statistics)");
    }
    if (l == NULL) {
        return FR_OK; // first report: the delta is the whole contribution
    }
    const size_t d   = u->width;
    const size_t P   = fri_packed_len(d);
    const double dmu = (double) mu - (double) l->mu;
    // E[x] = the stored Gram's last column (x = [p; 1]).
    double A = 0.0; // sum of the stored residuals r - mu_old - b_u
    for (size_t j = 0; j < l->n; j++) {
        const float *o = l->rows + j * d;
        float       *r = u->rows + j * d;
        A += o[d - 1];
        for (size_t a = 0; a < d; a++) {
            double old = (double) o[a] -
                         dmu * (double) l->extra[fri_packed_index(d, a, d - 1)];
            r[a] = (float) ((double) r[a] - old);
        }
    }
    for (size_t t = 0; t < u->n_extra; t++) {
        double old = l->extra[t];
        if (vb && t == 2 * P + d) {
            // sum_j (a_j - dmu)^2 = sq - 2 dmu A + n dmu^2
            old += -2.0 * dmu * A + (double) l->n * dmu * dmu;
        }
        u->extra[t] = (float) ((double) u->extra[t] - old);
    }
    return FR_OK;
}

void
fri_client_stats_commit(fr_client *c)
{
    if (c->pending != NULL) {
        fri_stats_last_free(c->last);
        c->last    = c->pending;
        c->pending = NULL;
    }
}
