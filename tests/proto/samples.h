// Deterministic sample messages shared by the golden-vector generator
// (gen_vectors.c) and the tests that compare against tests/vectors/*.bin.
// Changing anything here changes the vectors: regenerate them on purpose.
#ifndef FR_TESTS_PROTO_SAMPLES_H
#define FR_TESTS_PROTO_SAMPLES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "channel.h"
#include "keys.h"
#include "msg.h"

#define S_K 3
#define S_ITEMS 4

static const float s_bias[S_ITEMS] = { 0.5f, -0.25f, 0.125f, 1.0f };
static const float s_fac[S_ITEMS * S_K] = {
    0.1f, -0.2f, 0.3f,  1.5f, 0.0f,  -1.25f,
    2.0f, 0.75f, -0.5f, 0.01f, 0.02f, -3.0f,
};
// ALS: width k+1 = 4, extra = (k+1)(k+2)/2 + 2 = 12.
static const float s_extra[12] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 42.5f, 11 };
static const float s_rows[S_ITEMS * (S_K + 1)] = {
    0.5f, 1, 2,  3,  -1, -2, -3, -4,
    0,    0, 0,  0,  9,  8,  7,  6.5f,
};
static const uint32_t s_items[2] = { 3, 1000 };
static const uint32_t s_fixed[S_ITEMS * (S_K + 1)] = {
    1, 2, 3, 4, 0xffffffffu, 0x80000000u, 7, 8,
    9, 10, 11, 12, 13, 14, 15, 16,
};

static inline void
sample_identity(fri_identity *id, uint8_t base)
{
    uint8_t seed[FRI_SEEDBYTES];
    for (int i = 0; i < FRI_SEEDBYTES; i++) {
        seed[i] = (uint8_t) (base + i);
    }
    if (fri_identity_from_seed(id, seed) != FR_OK) {
        memset(id, 0, sizeof(*id));
    }
}

static inline fri_checkin
sample_checkin(void)
{
    fri_checkin c = { 0x0102030405060708ull, FRI_CAP_ALS | FRI_CAP_FP16,
                      1, 0, 42, 0 };
    return c;
}

static inline fri_task
sample_task(void)
{
    fri_task t;
    memset(&t, 0, sizeof(t));
    t.status = FRI_TASK_RUN;
    t.algo = FRI_ALGO_ALS;
    t.update_kind = FRI_UPD_ALS;
    t.round_id = 7;
    t.model_version = 6;
    t.k = S_K;
    t.local_epochs = 1;
    t.reg = 0.1f;
    t.reg_bias = 0.01f;
    t.lr = 0.05f;
    t.deadline_ms = 30000;
    return t;
}

static inline fri_task
sample_task_none(void)
{
    fri_task t;
    memset(&t, 0, sizeof(t));
    t.status = FRI_TASK_NONE;
    t.retry_after_ms = 5000;
    return t;
}

static inline fri_get_model
sample_get_model(void)
{
    fri_get_model g = { 7, 5, FRI_ENC_F32_BIT | FRI_ENC_F16_BIT };
    return g;
}

static inline fri_model
sample_model(uint8_t enc)
{
    fri_model m;
    memset(&m, 0, sizeof(m));
    m.round_id = 7;
    m.version = 6;
    m.kind = FRI_MODEL_FULL;
    m.enc = enc;
    m.k = S_K;
    m.n_items = S_ITEMS;
    m.mu = 3.5f;
    m.bias = s_bias;
    m.factors = s_fac;
    return m;
}

// VB model block (d = S_K + 1 = 4): beta, user prior, item variances.
static const float s_vb_mean[S_K + 1] = { 0.25f, -0.5f, 0.0f, 0.125f };
static const float s_vb_prec[(S_K + 1) * (S_K + 2) / 2] = {
    2.0f, 0.5f, 0.0f, -0.25f, 1.5f, 0.0f, 0.0f, 1.0f, 0.0f, 3.0f
};
static const float s_vb_var[S_ITEMS * (S_K + 1)] = {
    0.5f,  0.25f, 0.125f, 0.0625f, 1.0f, 0.5f,  0.25f, 0.0f,
    0.75f, 0.5f,  0.25f,  0.125f,  2.0f, 1.0f, 0.5f,  0.25f
};

static inline fri_model
sample_model_vb(void)
{
    fri_model m = sample_model(FRI_MENC_F32);
    m.kind = FRI_MODEL_VB;
    m.beta = 1.25f;
    m.uprior_mean = s_vb_mean;
    m.uprior_prec = s_vb_prec;
    m.item_var = s_vb_var;
    return m;
}

static inline fri_update
sample_update_als(void)
{
    fri_update u;
    memset(&u, 0, sizeof(u));
    u.round_id = 7;
    u.kind = FRI_UPD_ALS;
    u.layout = FRI_UPD_DENSE;
    u.k = S_K;
    u.width = S_K + 1;
    u.n_rows = S_ITEMS;
    u.n_extra = 12;
    u.weight = 11.0f;
    u.extra = s_extra;
    u.rows = s_rows;
    return u;
}

static inline fri_update
sample_update_sparse(void)
{
    fri_update u;
    memset(&u, 0, sizeof(u));
    u.round_id = 7;
    u.kind = FRI_UPD_GRAD;
    u.layout = FRI_UPD_SPARSE;
    u.k = S_K;
    u.width = S_K + 1;
    u.n_rows = 2;
    u.weight = 2.0f;
    u.rows = s_rows;
    u.items = s_items;
    return u;
}

static inline fri_update
sample_update_fixed(void)
{
    fri_update u;
    memset(&u, 0, sizeof(u));
    u.round_id = 7;
    u.kind = FRI_UPD_GRAD;
    u.layout = FRI_UPD_DENSE;
    u.vtype = FRI_VAL_FIXED;
    u.frac_bits = 16;
    u.k = S_K;
    u.width = S_K + 1;
    u.n_rows = S_ITEMS;
    u.weight = 1.0f;
    u.rows = s_fixed;
    return u;
}

static inline fri_ack
sample_ack(void)
{
    fri_ack a = { FRI_T_UPDATE, 7 };
    return a;
}

static inline fri_error
sample_error(void)
{
    fri_error e;
    memset(&e, 0, sizeof(e));
    e.code = FR_ELATE;
    e.of_type = FRI_T_UPDATE;
    e.round_id = 6;
    e.retry_after_ms = 1000;
    e.text = "round 6 is closed";
    e.text_len = (uint16_t) strlen(e.text);
    return e;
}

// Every golden vector: file name and an encoder writing it into (dst,cap).
typedef fr_err (*sample_fn)(uint8_t *dst, size_t cap, size_t *len);

// Encoders that just put one sample message on the wire; the vector table
// below names them all.
#define SAMPLE_ENCODER(name, type, sample, encode)                          \
    static inline fr_err name(uint8_t *d, size_t c, size_t *n)              \
    {                                                                       \
        type x = sample();                                                  \
        return encode(d, c, n, &x);                                         \
    }
SAMPLE_ENCODER(v_checkin, fri_checkin, sample_checkin, fri_checkin_encode)
SAMPLE_ENCODER(v_task, fri_task, sample_task, fri_task_encode)
SAMPLE_ENCODER(v_task_none, fri_task, sample_task_none, fri_task_encode)
SAMPLE_ENCODER(v_get_model, fri_get_model, sample_get_model,
               fri_get_model_encode)
// MODEL frames are signed by the sample identity 100.
static inline fr_err
v_model_signed(uint8_t *d, size_t c, size_t *n, const fri_model *x)
{
    fri_identity id;
    fr_err       e = fri_model_encode(d, c, n, x);
    if (e != FR_OK) {
        return e;
    }
    sample_identity(&id, 100);
    e = fri_model_sign(d, *n, &id);
    fri_identity_wipe(&id);
    return e;
}
static inline fr_err
v_model_enc(uint8_t *d, size_t c, size_t *n, uint8_t enc)
{
    fri_model x = sample_model(enc);
    return v_model_signed(d, c, n, &x);
}
static inline fr_err
v_model_f32(uint8_t *d, size_t c, size_t *n)
{
    return v_model_enc(d, c, n, FRI_MENC_F32);
}
static inline fr_err
v_model_f16(uint8_t *d, size_t c, size_t *n)
{
    return v_model_enc(d, c, n, FRI_MENC_F16);
}
static inline fr_err
v_model_i8(uint8_t *d, size_t c, size_t *n)
{
    return v_model_enc(d, c, n, FRI_MENC_I8);
}
static inline fr_err
v_model_vb(uint8_t *d, size_t c, size_t *n)
{
    fri_model x = sample_model_vb();
    return v_model_signed(d, c, n, &x);
}
static inline fr_err
v_model_vb_i8c(uint8_t *d, size_t c, size_t *n)
{
    fri_model x = sample_model_vb();
    x.enc       = FRI_MENC_I8C;
    return v_model_signed(d, c, n, &x);
}
SAMPLE_ENCODER(v_update_als, fri_update, sample_update_als, fri_update_encode)
SAMPLE_ENCODER(v_update_sparse, fri_update, sample_update_sparse,
               fri_update_encode)
SAMPLE_ENCODER(v_update_fixed, fri_update, sample_update_fixed,
               fri_update_encode)
SAMPLE_ENCODER(v_ack, fri_ack, sample_ack, fri_ack_encode)
SAMPLE_ENCODER(v_error, fri_error, sample_error, fri_error_encode)
static inline fr_err
v_keyfile(uint8_t *d, size_t c, size_t *n)
{
    fri_identity id;
    if (c < FRI_KEYFILE_LEN) {
        return FR_ENOSPC;
    }
    sample_identity(&id, 100);
    fri_keyfile_encode(d, id.seed);
    fri_identity_wipe(&id);
    *n = FRI_KEYFILE_LEN;
    return FR_OK;
}
static inline fr_err
v_pubfile(uint8_t *d, size_t c, size_t *n)
{
    fri_identity id;
    fri_pubkeys  pk;
    if (c < FRI_PUBFILE_LEN) {
        return FR_ENOSPC;
    }
    sample_identity(&id, 100);
    fri_identity_pub(&pk, &id);
    fri_identity_wipe(&id);
    fri_pubfile_encode(d, &pk);
    *n = FRI_PUBFILE_LEN;
    return FR_OK;
}

static const struct {
    const char *name;
    sample_fn   fn;
} s_vectors[] = {
    { "checkin.bin", v_checkin },
    { "task.bin", v_task },
    { "task_none.bin", v_task_none },
    { "get_model.bin", v_get_model },
    { "model_f32.bin", v_model_f32 },
    { "model_f16.bin", v_model_f16 },
    { "model_i8.bin", v_model_i8 },
    { "model_vb.bin", v_model_vb },
    { "model_vb_i8c.bin", v_model_vb_i8c },
    { "update_als_dense.bin", v_update_als },
    { "update_grad_sparse.bin", v_update_sparse },
    { "update_fixed.bin", v_update_fixed },
    { "ack.bin", v_ack },
    { "error.bin", v_error },
    { "keyfile.bin", v_keyfile },
    { "pubfile.bin", v_pubfile },
};
#define S_N_VECTORS (sizeof(s_vectors) / sizeof(s_vectors[0]))

#endif
