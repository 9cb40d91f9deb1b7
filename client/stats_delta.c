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
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "client_fit.h"
#include "dp.h"
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

// The last contribution as the aggregator holds it now: re-centred from
// the mu it was computed against to mu (rows: h -= dmu E[x]; VBMF: the
// squared-error sum sum_j (a_j - dmu)^2 = sq - 2 dmu A + n dmu^2 with A
// the sum of the stored residuals).
static void
recentre(const fri_stats_last *l, float mu, int vb, float *rows, float *extra)
{
    const size_t d   = l->width;
    const size_t P   = fri_packed_len(d);
    const double dmu = (double) mu - (double) l->mu;
    double       A   = 0.0;
    for (size_t j = 0; j < l->n; j++) {
        const float *o = l->rows + j * d;
        A += o[d - 1];
        for (size_t a = 0; a < d; a++) {
            rows[j * d + a] = (float) ((double) o[a] -
                                       dmu * (double) l->extra[fri_packed_index(
                                                 d, a, d - 1)]);
        }
    }
    for (size_t t = 0; t < l->n_extra; t++) {
        double old = l->extra[t];
        if (vb && t == 2 * P + d) {
            old += -2.0 * dmu * A + (double) l->n * dmu * dmu;
        }
        extra[t] = (float) old;
    }
}

static int
same_items(const fri_stats_last *l, const fri_update_buf *u)
{
    return l->n == u->n_rows &&
           (l->n == 0 ||
            memcmp(l->items, u->items, (size_t) l->n * sizeof *l->items) == 0);
}

// Plain path, rated items changed: u becomes the retraction of the whole
// last contribution (one Gram per update cannot express a contribution
// that leaves some items and enters others), and the pending contribution
// is the empty one; the device's new contribution goes whole into its
// next report.
static fr_err
retract(fr_client *c, fri_update_buf *u, float mu, int vb)
{
    const fri_stats_last *l  = c->last;
    const size_t          nr = l->n, d = l->width;
    uint32_t *items = fri_client_calloc(c, nr > 0 ? nr : 1, sizeof *items);
    float    *rows  = fri_client_calloc2(c, nr > 0 ? nr : 1, d, sizeof *rows);
    fri_stats_last *empty = calloc(1, sizeof *empty);
    float          *ez    = calloc(l->n_extra > 0 ? l->n_extra : 1, sizeof(float));
    if (items == NULL || rows == NULL || empty == NULL || ez == NULL) {
        fri_client_free_wipe(c, items, (nr > 0 ? nr : 1) * sizeof *items);
        fri_client_free_wipe(c, rows, (nr > 0 ? nr : 1) * d * sizeof *rows);
        free(empty);
        free(ez);
        return fri_client_fail(c, FR_ENOMEM, "out of memory (statistics)");
    }
    recentre(l, mu, vb, rows, u->extra);
    for (size_t t = 0; t < nr * d; t++) {
        rows[t] = -rows[t];
    }
    for (size_t t = 0; t < u->n_extra; t++) {
        u->extra[t] = -u->extra[t];
    }
    if (nr > 0) {
        memcpy(items, l->items, nr * sizeof *items);
    }
    fri_client_free_wipe(c, u->rows, (size_t) u->n_rows * d * sizeof *u->rows);
    fri_client_free_wipe(c, u->items, (size_t) u->n_rows * sizeof *u->items);
    u->rows        = rows;
    u->items       = items;
    u->n_rows      = (uint32_t) nr;
    u->weight      = 0.0f;
    empty->width   = (uint32_t) d;
    empty->n_extra = l->n_extra;
    empty->extra   = ez;
    empty->mu      = mu;
    c->pending     = empty;
    fri_client_logf(c, FR_LOG_INFO,
                    "msg=\"rated items changed: this report retracts the "
                    "last contribution, the next one sends the new one\" "
                    "items=%zu",
                    nr);
    return FR_OK;
}

static fri_stats_last *
snapshot_last(const fri_stats_last *l)
{
    fri_update_buf u;
    memset(&u, 0, sizeof u);
    u.items   = l->items;
    u.rows    = l->rows;
    u.n_rows  = l->n;
    u.width   = l->width;
    u.extra   = l->extra;
    u.n_extra = l->n_extra;
    return snapshot(&u, l->mu);
}

fr_err
fri_client_stats_delta(fr_client *c, fri_update_buf *u, float mu, int vb,
                       fri_stats_last **old)
{
    fri_stats_last_free(c->pending);
    c->pending       = NULL;
    c->pending_round = 0;
    if (old != NULL) {
        *old = NULL;
    }
    if (c->model == NULL || c->model->version == 0) {
        // Census round (no global mean yet): the aggregator takes only mu
        // from it, so this report is sent whole and not recorded.
        return FR_OK;
    }
    const fri_stats_last *l = c->last;
    if (l != NULL && (l->width != u->width || l->n_extra != u->n_extra)) {
        return fri_client_fail(c, FR_ESTATE,
                               "statistics layout changed since the last "
                               "report");
    }
    if (l != NULL && l->n > 0 && !same_items(l, u) && old == NULL) {
        return retract(c, u, mu, vb);
    }
    c->pending = snapshot(u, mu);
    if (c->pending == NULL) {
        return fri_client_fail(c, FR_ENOMEM, "out of memory (statistics)");
    }
    if (l == NULL || l->n == 0) {
        return FR_OK; // first report (or after a retraction): whole
    }
    if (!same_items(l, u)) {
        // Dense deltas (one slot per item): the caller subtracts the old
        // contribution, re-centred, slot by slot.
        fri_stats_last *o = snapshot_last(l);
        if (o == NULL) {
            return fri_client_fail(c, FR_ENOMEM, "out of memory (statistics)");
        }
        recentre(l, mu, vb, o->rows, o->extra);
        o->mu = mu;
        *old  = o;
        return FR_OK;
    }
    const size_t d  = u->width;
    float       *ro = malloc((l->n * d > 0 ? l->n * d : 1) * sizeof(float));
    float       *eo = malloc((u->n_extra > 0 ? u->n_extra : 1) * sizeof(float));
    if (ro == NULL || eo == NULL) {
        free(ro);
        free(eo);
        return fri_client_fail(c, FR_ENOMEM, "out of memory (statistics)");
    }
    recentre(l, mu, vb, ro, eo);
    for (size_t t = 0; t < l->n * d; t++) {
        u->rows[t] = (float) ((double) u->rows[t] - (double) ro[t]);
    }
    for (size_t t = 0; t < u->n_extra; t++) {
        u->extra[t] = (float) ((double) u->extra[t] - (double) eo[t]);
    }
    sodium_memzero(ro, l->n * d * sizeof(float));
    sodium_memzero(eo, u->n_extra * sizeof(float));
    free(ro);
    free(eo);
    return FR_OK;
}

static double
dp_norm2(const fri_update_buf *u, size_t P, int vb)
{
    return fri_dp_stats_norm2(u->extra, P, u->n_rows, u->rows,
                              (size_t) u->n_rows * u->width, u->extra + P,
                              u->n_extra - P, vb);
}

fr_err
fri_client_stats_delta_dp(fr_client *c, fri_update_buf *u, float mu, int vb,
                          float clip)
{
    const size_t d = u->width, P = fri_packed_len(d);
    if (!(clip > 0.0f) || !isfinite(clip) || d == 0 ||
        u->n_extra < P + (vb ? 4u : 2u)) {
        return fri_client_fail(c, FR_EINVAL,
                               "bounded statistics need clip > 0 and the "
                               "statistics layout");
    }
    // The contribution itself within the bound: every stored one, hence
    // every retraction, then is too.
    float f0 = fri_dp_stats_clip(u->extra, P, u->n_rows, u->rows,
                                 (size_t) u->n_rows * d, u->extra + P,
                                 u->n_extra - P, vb, clip, NULL);
    if (f0 == 0.0f) {
        return fri_client_fail(c, FR_EINVAL,
                               "statistics not finite: nothing sent");
    }
    fr_err rv = fri_client_stats_delta(c, u, mu, vb, NULL);
    if (rv != FR_OK || c->pending == NULL) {
        return rv; // census round: the bounded contribution goes whole
    }
    double n2 = dp_norm2(u, P, vb);
    float  f  = 1.0f;
    if (!(n2 <= (double) clip * (double) clip)) {
        f = fri_dp_stats_clip(u->extra, P, u->n_rows, u->rows,
                              (size_t) u->n_rows * d, u->extra + P,
                              u->n_extra - P, vb, clip, NULL);
        if (f == 0.0f) {
            return fri_client_fail(c, FR_EINVAL,
                                   "statistics delta not finite");
        }
    }
    if (f == 1.0f) {
        return FR_OK;
    }
    // u now holds f * delta; the aggregator will hold old + f * delta =
    // new - (1 - f) delta = new - ((1 - f) / f) u.
    const double g = (1.0 - (double) f) / (double) f;
    fri_stats_last *p = c->pending;
    if (p->n == 0 && u->n_rows > 0) {
        // A retraction (rated items changed): the aggregator keeps
        // (1 - f) of the old contribution, which the next report retracts.
        fri_stats_last *r = snapshot(u, mu);
        if (r == NULL) {
            return fri_client_fail(c, FR_ENOMEM, "out of memory (statistics)");
        }
        for (size_t t = 0; t < (size_t) r->n * d; t++) {
            r->rows[t] = (float) (-g * (double) r->rows[t]);
        }
        for (size_t t = 0; t < r->n_extra; t++) {
            r->extra[t] = (float) (-g * (double) r->extra[t]);
        }
        fri_stats_last_free(c->pending);
        c->pending = r;
        return FR_OK;
    }
    if (p->n != u->n_rows || p->n_extra != u->n_extra) {
        return fri_client_fail(c, FR_EINTERNAL, "statistics delta layout");
    }
    for (size_t t = 0; t < (size_t) p->n * d; t++) {
        p->rows[t] = (float) ((double) p->rows[t] - g * (double) u->rows[t]);
    }
    for (size_t t = 0; t < p->n_extra; t++) {
        p->extra[t] = (float) ((double) p->extra[t] - g * (double) u->extra[t]);
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
    c->pending_round = 0;
}

void
fri_client_stats_forget(fr_client *c)
{
    fri_client_logf(c, FR_LOG_INFO,
        "msg=\"aggregator asked for the whole contribution: "
        "record of the last one dropped\"");
    fri_stats_last_free(c->last);
    fri_stats_last_free(c->pending);
    c->last          = NULL;
    c->pending       = NULL;
    c->pending_round = 0;
}

void
fri_client_stats_resolve(fr_client *c, uint64_t applied_round)
{
    if (c->pending == NULL || c->pending_round == 0) {
        return;
    }
    if (applied_round == c->pending_round) {
        fri_client_logf(c, FR_LOG_INFO,
                        "msg=\"pending statistics resolved: applied\" "
                        "round=%llu",
                        (unsigned long long) applied_round);
        fri_client_stats_commit(c);
        return;
    }
    fri_client_logf(c, FR_LOG_INFO,
                    "msg=\"pending statistics resolved: not applied\" "
                    "round=%llu applied_round=%llu",
                    (unsigned long long) c->pending_round,
                    (unsigned long long) applied_round);
    fri_stats_last_free(c->pending);
    c->pending       = NULL;
    c->pending_round = 0;
}
