// A minimal in-test aggregator built from proto's server-side functions:
// handshake, TASK, signed MODEL, ACK. Header only; one session at a time.
#ifndef FR_TESTS_CLIENT_FAKEAGG_H
#define FR_TESTS_CLIENT_FAKEAGG_H

#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "keys.h"
#include "msg.h"
#include "rng.h"

typedef struct fake_agg {
    fri_identity id;
    fri_session *sess;
    // What to hand out.
    fri_task     task;
    uint32_t     n_items;
    uint32_t     k;
    float        mu;
    float       *bi;
    float       *Q;
    uint8_t      enc;
    int          bad_signature; // flip a signature byte
    int          reply_error;   // answer UPDATE with this ERROR code
    // What was received.
    int      n_hello, n_checkin, n_get_model, n_update;
    uint64_t checkin_model_version;
    uint32_t upd_rows, upd_width, upd_extra, upd_kind;
    float    upd_weight;
    float   *upd_extra_vals; // malloc'd copy
    float   *upd_row_vals;   // malloc'd copy, n_rows * width
    uint32_t *upd_items;
} fake_agg;

static inline void
fake_agg_init(fake_agg *a, uint32_t n_items, uint32_t k, uint64_t seed)
{
    memset(a, 0, sizeof *a);
    uint8_t s[32];
    memset(s, 0x42, sizeof s);
    if (fri_identity_from_seed(&a->id, s) != FR_OK) {
        abort();
    }
    a->n_items = n_items;
    a->k       = k;
    a->mu      = 3.5f;
    a->bi      = calloc(n_items, sizeof *a->bi);
    a->Q       = calloc((size_t) n_items * k, sizeof *a->Q);
    fri_rng r;
    fri_rng_seed(&r, seed);
    for (size_t i = 0; i < n_items; i++) {
        a->bi[i] = (float) (0.2 * fri_rng_normal(&r));
        for (size_t f = 0; f < k; f++) {
            a->Q[i * k + f] = (float) (0.3 * fri_rng_normal(&r));
        }
    }
    a->task.status        = FRI_TASK_RUN;
    a->task.algo          = FRI_ALGO_ALS;
    a->task.update_kind   = FRI_UPD_ALS;
    a->task.round_id      = 7;
    a->task.model_version = 3;
    a->task.k             = k;
    a->task.reg           = 0.05f;
    a->task.reg_bias      = 0.05f;
    a->task.deadline_ms   = 60000;
    a->enc                = FRI_MENC_F32;
}

static inline void
fake_agg_pk(const fake_agg *a, uint8_t pk[64])
{
    memcpy(pk, a->id.kx_pk, 32);
    memcpy(pk + 32, a->id.sign_pk, 32);
}

static inline void
fake_agg_free(fake_agg *a)
{
    fri_session_destroy(a->sess);
    fri_identity_wipe(&a->id);
    free(a->bi);
    free(a->Q);
    free(a->upd_extra_vals);
    free(a->upd_row_vals);
    free(a->upd_items);
}

// Seals the plain frame at out + FRI_SEAL_HEADROOM.
static inline fr_err
fake_seal(fake_agg *a, uint8_t *out, size_t cap, size_t plain,
          size_t *out_len)
{
    return fri_seal(a->sess, out, cap, plain, out_len);
}

// Handles one request; writes the reply into *out (malloc'd).
static inline fr_err
fake_agg_handle(fake_agg *a, const uint8_t *req, size_t req_len,
                uint8_t **out, size_t *out_len)
{
    *out = NULL;
    fri_hdr h;
    fr_err  err = fri_frame_check(&h, req, req_len);
    if (err != FR_OK) {
        return err;
    }
    if (h.type == FRI_T_HELLO) {
        a->n_hello++;
        fri_session_destroy(a->sess);
        a->sess = NULL;
        *out    = malloc(FRI_WELCOME_LEN);
        return fri_hs_server_accept(&a->sess, *out, FRI_WELCOME_LEN,
                                    out_len, &a->id, NULL,
                                    FRI_CAP_ALS | FRI_CAP_GRAD |
                                        FRI_CAP_IALS,
                                    req, req_len);
    }
    uint8_t *buf = malloc(req_len);
    memcpy(buf, req, req_len);
    const uint8_t *plain;
    size_t         plain_len;
    err = fri_open(a->sess, buf, req_len, &plain, &plain_len);
    if (err != FR_OK) {
        free(buf);
        return err;
    }
    size_t cap = 4096;
    switch (h.type) {
    case FRI_T_CHECKIN: {
        fri_checkin ci;
        err = fri_checkin_decode(&ci, plain, plain_len);
        if (err != FR_OK) {
            break;
        }
        a->n_checkin++;
        a->checkin_model_version = ci.model_version;
        *out  = malloc(cap);
        size_t pl;
        err = fri_task_encode(*out + FRI_SEAL_HEADROOM,
                              cap - FRI_SEAL_HEADROOM, &pl, &a->task);
        if (err == FR_OK) {
            err = fake_seal(a, *out, cap, pl, out_len);
        }
        break;
    }
    case FRI_T_GET_MODEL: {
        fri_get_model g;
        err = fri_get_model_decode(&g, plain, plain_len);
        if (err != FR_OK) {
            break;
        }
        a->n_get_model++;
        fri_model m;
        memset(&m, 0, sizeof m);
        m.round_id = a->task.round_id;
        m.version  = a->task.model_version;
        m.kind     = FRI_MODEL_FULL;
        m.enc      = a->enc;
        m.k        = a->k;
        m.n_items  = a->n_items;
        m.mu       = a->mu;
        m.bias     = a->bi;
        m.factors  = a->Q;
        size_t   msz   = fri_model_size(a->enc, a->k, a->n_items);
        uint8_t *frame = malloc(msz);
        size_t   flen;
        err = fri_model_encode(frame, msz, &flen, &m);
        if (err == FR_OK) {
            err = fri_model_sign(frame, flen, &a->id);
        }
        if (err == FR_OK && a->bad_signature) {
            frame[FRI_HDR_LEN + 5] ^= 0x01;
        }
        if (err == FR_OK) {
            *out = malloc(flen + FRI_SEAL_OVERHEAD);
            err  = fri_seal_copy(a->sess, *out, flen + FRI_SEAL_OVERHEAD,
                                 out_len, frame, flen);
        }
        free(frame);
        break;
    }
    case FRI_T_UPDATE: {
        fri_update u;
        err = fri_update_decode(&u, plain, plain_len);
        if (err != FR_OK) {
            break;
        }
        a->n_update++;
        a->upd_rows   = u.n_rows;
        a->upd_width  = u.width;
        a->upd_extra  = u.n_extra;
        a->upd_kind   = u.kind;
        a->upd_weight = u.weight;
        free(a->upd_extra_vals);
        free(a->upd_row_vals);
        free(a->upd_items);
        a->upd_extra_vals = calloc(u.n_extra + 1, sizeof(float));
        a->upd_row_vals = calloc((size_t) u.n_rows * u.width + 1,
                                 sizeof(float));
        a->upd_items = calloc(u.n_rows + 1, sizeof(uint32_t));
        fri_update_get_extra(&u, a->upd_extra_vals);
        for (uint32_t r = 0; r < u.n_rows; r++) {
            fri_update_get_row(&u, r, a->upd_row_vals + (size_t) r * u.width,
                               &a->upd_items[r]);
        }
        *out = malloc(cap);
        size_t pl;
        if (a->reply_error != 0) {
            fri_error e;
            memset(&e, 0, sizeof e);
            e.code     = (uint32_t) a->reply_error;
            e.of_type  = FRI_T_UPDATE;
            e.round_id = a->task.round_id;
            e.text     = "round closed";
            e.text_len = 12;
            err        = fri_error_encode(*out + FRI_SEAL_HEADROOM,
                                          cap - FRI_SEAL_HEADROOM, &pl, &e);
        } else {
            fri_ack ack = {FRI_T_UPDATE, a->task.round_id};
            err = fri_ack_encode(*out + FRI_SEAL_HEADROOM,
                                 cap - FRI_SEAL_HEADROOM, &pl, &ack);
        }
        if (err == FR_OK) {
            err = fake_seal(a, *out, cap, pl, out_len);
        }
        break;
    }
    default:
        err = FR_EPROTO;
    }
    free(buf);
    if (err != FR_OK) {
        free(*out);
        *out = NULL;
    }
    return err;
}

#endif
