// The published model: the aggregator's identity, the signed MODEL frame
// of each round (built once, shared by reference) and the served model
// arrays (under DP, possibly an older model held until a checkpoint holds
// its privacy accounting). Includes proto/msg.h, not common/mf.h.
#include "agg_int.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "channel.h"
#include "log.h"
#include "msg.h"
#include "snap.h"
#include "vbmf.h"

void
fri_snap_unref(fri_snap *s)
{
    if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1) {
        free(s->frame);
        for (int j = 0; j < FRI_SNAP_ALTS; j++) {
            free(s->alt[j]);
        }
        free(s);
    }
}

fri_snap *
fri_agg_snap_get(fri_agg *a)
{
    pthread_mutex_lock(&a->rs.mtx);
    fri_snap *s = a->model.snap;
    if (s != NULL) {
        atomic_fetch_add(&s->refs, 1);
    }
    pthread_mutex_unlock(&a->rs.mtx);
    return s;
}

fr_err
fri_agg_identity_init(fri_agg *a)
{
    fr_err rv = a->cfg.has_identity
                    ? fri_identity_from_seed(&a->id, a->cfg.identity_seed)
                    : fri_identity_generate(&a->id);
    sodium_memzero(a->cfg.identity_seed, sizeof(a->cfg.identity_seed));
    if (rv != FR_OK) {
        return rv;
    }
    memcpy(a->pk, a->id.kx_pk, 32);
    memcpy(a->pk + 32, a->id.sign_pk, 32);
    return FR_OK;
}

// One signed MODEL frame of the current model with rows encoded as enc.
static fr_err
snap_encode(
    fri_agg *a, const fri_snap *s, uint8_t enc, uint8_t **out, size_t *out_len)
{
    fri_model m;
    memset(&m, 0, sizeof(m));
    m.round_id = s->round;
    m.version  = s->version;
    m.kind     = FRI_MODEL_FULL;
    m.enc      = enc;
    m.k        = a->cfg.k;
    m.n_items  = a->cfg.n_items;
    fri_agg_model_view(a, &m.mu, &m.bias, &m.factors);
    m.stride = a->cfg.k;
    size_t len = fri_model_size(enc, m.k, m.n_items);
    if (a->vb != NULL) {
        m.kind = FRI_MODEL_VB;
        fri_vb_view(a->vb, &m.beta, &m.uprior_mean, &m.uprior_prec,
                    &m.item_var);
        len = fri_model_vb_size(enc, m.k, m.n_items);
    }
    if (len == 0) {
        return FR_ETOOBIG;
    }
    uint8_t *f = malloc(len);
    if (f == NULL) {
        return FR_ENOMEM;
    }
    size_t flen = 0;
    fr_err rv   = fri_model_encode(f, len, &flen, &m);
    if (rv == FR_OK) {
        rv = fri_model_sign(f, flen, &a->id);
    }
    if (rv != FR_OK) {
        free(f);
        return rv;
    }
    *out     = f;
    *out_len = flen;
    return FR_OK;
}

// Encoding, accept bit and the --model-format that serves it, per alt.
static const struct {
    uint8_t enc, bit;
    int     format;
} alts[FRI_SNAP_ALTS] = {
    [FRI_SNAP_ALT_F16] = { FRI_MENC_F16, FRI_ENC_F16_BIT, FRI_AGG_MF_FP16 },
    [FRI_SNAP_ALT_I8]  = { FRI_MENC_I8, FRI_ENC_I8_BIT, FRI_AGG_MF_INT8 },
    [FRI_SNAP_ALT_I8C] = { FRI_MENC_I8C, FRI_ENC_I8C_BIT, FRI_AGG_MF_INT8 },
};

fr_err
fri_agg_snap_frame(fri_agg *a, fri_snap *s)
{
    fr_err rv = snap_encode(a, s, FRI_MENC_F32, &s->frame, &s->frame_len);
    // The compact encodings the configuration may serve (built once per
    // model, like the F32 frame, and shared by every session). A model
    // an encoding cannot carry (FR_EINVAL: values beyond f16) is served
    // in the others.
    const int mf = a->cfg.model_format;
    for (int j = 0; j < FRI_SNAP_ALTS && rv == FR_OK; j++) {
        if (mf != FRI_AGG_MF_AUTO && mf != alts[j].format) {
            continue;
        }
        rv = snap_encode(a, s, alts[j].enc, &s->alt[j], &s->alt_len[j]);
        if (rv == FR_EINVAL) {
            fri_agg_log(a, FR_LOG_WARN,
                        "msg=\"model not representable, encoding not "
                        "served\" enc=%u version=%llu",
                        (unsigned) alts[j].enc,
                        (unsigned long long) s->version);
            rv = FR_OK;
        }
    }
    if (rv != FR_OK) {
        free(s->frame);
        s->frame     = NULL;
        s->frame_len = 0;
        for (int j = 0; j < FRI_SNAP_ALTS; j++) {
            free(s->alt[j]);
            s->alt[j]     = NULL;
            s->alt_len[j] = 0;
        }
    }
    return rv;
}

void
fri_snap_pick(
    const fri_snap *s, uint8_t accept, const uint8_t **frame, size_t *len)
{
    *frame = s->frame;
    *len   = s->frame_len;
    // The smallest of those built and accepted.
    for (int j = 0; j < FRI_SNAP_ALTS; j++) {
        if (s->alt[j] != NULL && (accept & alts[j].bit) != 0 &&
            s->alt_len[j] < *len) {
            *frame = s->alt[j];
            *len   = s->alt_len[j];
        }
    }
}

void
fri_agg_model_copy(fri_agg *a, float *mu, float *bi, size_t bi_len, float *Q,
                   size_t Q_len, uint64_t *version)
{
    pthread_mutex_lock(&a->rs.mtx);
    size_t nb = fri_agg_n_items(a);
    size_t nq = nb * a->cfg.k;
    // The released model (under DP, possibly an older one: close_round).
    const float *sbi = a->model.held ? a->model.pub_bi : a->model.bi;
    const float *sQ  = a->model.held ? a->model.pub_Q : a->model.Q;
    if (mu != NULL) {
        *mu = a->model.held ? a->model.pub_mu : a->model.mu;
    }
    if (bi != NULL) {
        memcpy(bi, sbi, (bi_len < nb ? bi_len : nb) * sizeof(float));
    }
    if (Q != NULL) {
        memcpy(Q, sQ, (Q_len < nq ? Q_len : nq) * sizeof(float));
    }
    if (version != NULL) {
        *version = a->model.held ? a->model.pub_version : a->model.version;
    }
    pthread_mutex_unlock(&a->rs.mtx);
}

// Model arrays of the current version for the frame builder (exclusive
// closer/opener only).
void
fri_agg_model_view(const fri_agg *a, float *mu, const float **bi,
                   const float **Q)
{
    *mu = a->model.held ? a->model.pub_mu : a->model.mu;
    *bi = a->model.held ? a->model.pub_bi : a->model.bi;
    *Q  = a->model.held ? a->model.pub_Q : a->model.Q;
}

void
fri_agg_public_key(const fri_agg *a, uint8_t pk[FR_PUBLICKEYBYTES])
{
    memcpy(pk, a->pk, FR_PUBLICKEYBYTES);
}

