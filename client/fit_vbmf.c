// The client's half of federated VBMF (docs/BAYES.md): the variational user
// step against the served item means and covariance diagonals, and the
// covariance-augmented statistics of an UPDATE of kind VB.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bayes.h"
#include "client_fit.h"
#include "linalg.h"
#include "mf.h"

fr_err
fri_cmodel_vb_alloc(fri_cmodel *m)
{
    const size_t d = (size_t)m->k + 1, P = fri_packed_len(d);
    if ((size_t)m->n_items > SIZE_MAX / sizeof(float) / d) {
        return FR_ETOOBIG;
    }
    m->umean        = calloc(d, sizeof(float));
    m->uprec_packed = calloc(P, sizeof(float));
    m->uprec        = calloc(d * d, sizeof(float));
    m->item_var     = calloc((size_t)m->n_items * d, sizeof(float));
    if (m->umean == NULL || m->uprec_packed == NULL || m->uprec == NULL
        || m->item_var == NULL) {
        fri_cmodel_vb_free(m);
        return FR_ENOMEM;
    }
    m->vb = 1;
    return FR_OK;
}

fr_err
fri_cmodel_vb_finish(fri_cmodel *m)
{
    const size_t d = (size_t)m->k + 1;
    if (!m->vb || !(m->beta > 0.0f) || !isfinite(m->beta)) {
        return FR_EINVAL;
    }
    for (size_t a = 0; a < d; a++) {
        for (size_t b = a; b < d; b++) {
            float v             = m->uprec_packed[fri_packed_index(d, a, b)];
            m->uprec[a * d + b] = m->uprec[b * d + a] = v;
        }
    }
    return FR_OK;
}

void
fri_cmodel_vb_free(fri_cmodel *m)
{
    free(m->umean);
    free(m->uprec_packed);
    free(m->uprec);
    free(m->item_var);
    m->umean        = NULL;
    m->uprec_packed = NULL;
    m->uprec        = NULL;
    m->item_var     = NULL;
    m->vb           = 0;
}

// Number of interactions with catalog items (a prefix: items are sorted).
static size_t
n_in_catalog(const fr_client *c, const fri_cmodel *m)
{
    size_t n = 0;
    while (n < c->n_inter && c->items[n] < m->n_items) {
        n++;
    }
    return n;
}

fr_err
fri_client_vb_fit(fr_client *c, const uint32_t *items, const float *values,
                  size_t n, float *p_out, float *bu_out, float *cov_out)
{
    const fri_cmodel *m  = c->model;
    const size_t      wl = fri_bpmf_work_len(m->k);
    float            *work = fri_client_calloc(c, wl, sizeof(float));
    if (work == NULL) {
        return FR_ENOMEM;
    }
    fri_mf_items it = { m->n_items, m->k, m->mu, m->bi, m->Q };
    // The prior moves towards the rated items (SVD++, tied factors).
    float          pm[FRI_MF_MAX_K + 1];
    fri_bpmf_prior up = { m->k + 1, m->umean, m->uprec };
    fri_vbmf_rated_set_mean(pm, &up, m->Q, items, n, m->k, c->svdpp);
    fri_bpmf_prior pr  = { m->k + 1, pm, m->uprec };
    fr_err         err = fri_vbmf_user_step_diag(p_out, bu_out, cov_out,
        m->item_var, &it, items, values, n, &pr, m->beta, work, wl);
    fri_client_free_wipe(c, work, wl * sizeof(float));
    return err;
}

fr_err
fri_client_vb_solve(fr_client *c, float *cov_out)
{
    const fri_cmodel *m = c->model;
    if (m == NULL || !m->vb) {
        return fri_client_fail(c, FR_ESTATE, "no variational model");
    }
    fr_err err = fri_client_set_k(c, m->k);
    if (err != FR_OK) {
        return err;
    }
    err = fri_client_vb_fit(c, c->items, c->values, n_in_catalog(c, m), c->p,
                            &c->bu, cov_out);
    if (err != FR_OK) {
        c->fitted = 0;
        return fri_client_fail(
            c, err, "variational user step failed: %s", fr_strerror(err));
    }
    c->fitted         = 1;
    c->trans_ready    = 0;
    c->fitted_version = m->version;
    c->fitted_gen     = c->inter_gen;
    return FR_OK;
}

fr_err
fri_client_vb_update(fr_client *c, const fri_fit_task *t, fri_update_buf *u)
{
    memset(u, 0, sizeof *u);
    const fri_cmodel *m = c->model;
    if (m == NULL || !m->vb) {
        return fri_client_fail(
            c, FR_EPROTO, "variational task without a VB model");
    }
    if (t->k != m->k) {
        return fri_client_fail(c, FR_EPROTO,
            "task k=%u differs from model k=%u", (unsigned)t->k,
            (unsigned)m->k);
    }
    c->fit.implicit = 0;
    const size_t k = m->k, d = k + 1, P = fri_packed_len(d);
    float       *S = fri_client_calloc(c, P, sizeof(float));
    if (S == NULL) {
        return fri_client_fail(c, FR_ENOMEM, "out of memory (update)");
    }
    fr_err       err = fri_client_vb_solve(c, S);
    const size_t n   = n_in_catalog(c, m);
    if (err == FR_OK && (n > SIZE_MAX / d / sizeof(float) || n > UINT32_MAX)) {
        err = fri_client_fail(c, FR_ETOOBIG, "too many interactions");
    }
    const size_t n_extra = 2 * P + d + 4;
    if (err == FR_OK) {
        u->width   = (uint32_t)d;
        u->n_rows  = (uint32_t)n;
        u->n_extra = n_extra;
        u->extra   = fri_client_calloc(c, n_extra, sizeof *u->extra);
        u->rows    = fri_client_calloc(c, n > 0 ? n * d : 1, sizeof *u->rows);
        u->items   = fri_client_calloc(c, n > 0 ? n : 1, sizeof *u->items);
        if (u->extra == NULL || u->rows == NULL || u->items == NULL) {
            err = fri_client_fail(c, FR_ENOMEM, "out of memory (update)");
        }
    }
    if (err == FR_OK && n > 0) {
        memcpy(u->items, c->items, n * sizeof *u->items);
        err = fri_bpmf_user_item_stats(u->extra, P, u->rows, n * d, c->p,
            c->bu, S, m->k, m->mu, c->values, n);
        if (err != FR_OK) {
            err = fri_client_fail(
                c, err, "variational statistics: %s", fr_strerror(err));
        }
    }
    if (err == FR_OK) {
        // Global block: E[u], E[u u^T] = u u^T + S, E[(r - mu - b_u)^2].
        float *g = u->extra + P;
        memcpy(g, c->p, k * sizeof(float));
        g[k] = c->bu;
        for (size_t a = 0; a < d; a++) {
            for (size_t b = a; b < d; b++) {
                size_t t2 = fri_packed_index(d, a, b);
                g[d + t2] = g[a] * g[b] + S[t2];
            }
        }
        double sq = 0.0, sum = 0.0;
        for (size_t j = 0; j < n; j++) {
            double r = (double)c->values[j] - m->mu - c->bu;
            sq += r * r;
            sum += c->values[j];
        }
        sq += (double)n * S[fri_packed_index(d, k, k)];
        g[d + P]              = (float)sq;
        g[d + P + 1]          = 1.0f;
        u->extra[n_extra - 2] = (float)sum;
        u->extra[n_extra - 1] = (float)n;
        u->weight             = (float)n;
    }
    fri_client_free_wipe(c, S, P * sizeof(float));
    if (err != FR_OK) {
        fri_update_buf_free(c, u);
    }
    return err;
}
