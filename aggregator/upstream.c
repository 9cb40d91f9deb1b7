// The root's signed model installed at an edge (docs/DEPLOY-TREE.md).
// Includes proto/msg.h (the MODEL decoder), not common/mf.h (agg_int.h).
#include "agg_int.h"

#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "msg.h"
#include "snap.h"
#include "upstream.h"

fr_err
fri_edge_model_load(fri_agg *a, const uint8_t *frame, size_t len,
    uint64_t after, uint64_t *round, fri_snap **snap)
{
    *snap = NULL;
    fri_model m;
    if (frame == NULL || fri_model_decode(&m, frame, len) != FR_OK
        || m.kind == FRI_MODEL_DELTA || m.k != a->cfg.k
        || m.n_items != a->cfg.n_items
        || (a->vb != NULL) != (m.kind == FRI_MODEL_VB)) {
        return FR_EPROTO;
    }
    // The Ed25519 half of the root's key signs its models (R26).
    if (fri_model_verify(frame, len, a->cfg.upstream_pk + FRI_PKBYTES)
        != FR_OK) {
        return FR_ECRYPTO;
    }
    if (m.round_id <= after) {
        return FR_ELATE;
    }
    const size_t nq = (size_t)a->cfg.n_items * a->cfg.k;
    float       *bi = malloc(((size_t)a->cfg.n_items + 1) * sizeof(float));
    float       *Q  = malloc((nq + 1) * sizeof(float));
    fri_snap    *s  = calloc(1, sizeof(*s));
    uint8_t     *f  = malloc(len);
    if (bi == NULL || Q == NULL || s == NULL || f == NULL
        || fri_model_get(&m, bi, Q, a->cfg.k) != FR_OK) {
        free(bi);
        free(Q);
        free(s);
        free(f);
        return FR_ENOMEM;
    }
    memcpy(f, frame, len);
    atomic_init(&s->refs, 1);
    s->version   = m.version;
    s->round     = m.round_id;
    s->frame     = f;
    s->frame_len = len;
    pthread_mutex_lock(&a->rs.mtx);
    float *obi = a->model.bi, *oQ = a->model.Q;
    a->model.bi      = bi;
    a->model.Q       = Q;
    a->model.mu      = m.mu;
    a->model.version = m.version;
    pthread_mutex_unlock(&a->rs.mtx);
    free(obi);
    free(oQ);
    *round = m.round_id;
    *snap  = s;
    return FR_OK;
}

fr_err
fri_edge_model_items(const fri_agg *a, const uint8_t *frame, size_t len,
    uint32_t *n_items)
{
    fri_model m;
    if (frame == NULL || fri_model_decode(&m, frame, len) != FR_OK
        || m.k != a->cfg.k) {
        return FR_EPROTO;
    }
    if (fri_model_verify(frame, len, a->cfg.upstream_pk + FRI_PKBYTES)
        != FR_OK) {
        return FR_ECRYPTO;
    }
    *n_items = m.n_items;
    return FR_OK;
}
