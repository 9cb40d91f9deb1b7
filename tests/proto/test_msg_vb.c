// MODEL kind VB (R27) and UPDATE kind VB (R28): round trips, the golden
// vector, and refusals of malformed variational blocks.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "samples.h"

#define D (S_K + 1)
#define P (D * (D + 1) / 2)

static size_t
encode_vb(uint8_t *b, size_t cap, const fri_model *m)
{
    size_t n = 0;
    cr_assert_eq(fri_model_encode(b, cap, &n, m), FR_OK);
    return n;
}

Test(proto_vb, model_round_trip)
{
    static uint8_t b[1024];
    fri_model      m = sample_model_vb();
    size_t         n = encode_vb(b, sizeof(b), &m);
    cr_assert_eq(n, fri_model_vb_size(FRI_MENC_F32, S_K, S_ITEMS));
    cr_assert_eq(n,
        fri_model_size(FRI_MENC_F32, S_K, S_ITEMS)
            + 4 * (1 + D + P + S_ITEMS * D));
    fri_model d;
    cr_assert_eq(fri_model_decode(&d, b, n), FR_OK);
    cr_assert_eq(d.kind, FRI_MODEL_VB);
    cr_assert_eq(d.beta, 1.25f);
    float bias[S_ITEMS], fac[S_ITEMS * S_K];
    cr_assert_eq(fri_model_get(&d, bias, fac, 0), FR_OK);
    cr_assert_eq(memcmp(bias, s_bias, sizeof(bias)), 0);
    cr_assert_eq(memcmp(fac, s_fac, sizeof(fac)), 0);
    float mean[D], prec[P], var[S_ITEMS * D];
    cr_assert_eq(fri_model_get_vb(&d, mean, prec, var), FR_OK);
    cr_assert_eq(memcmp(mean, s_vb_mean, sizeof(mean)), 0);
    cr_assert_eq(memcmp(prec, s_vb_prec, sizeof(prec)), 0);
    cr_assert_eq(memcmp(var, s_vb_var, sizeof(var)), 0);
    // A FULL model has no variational block.
    fri_model full = sample_model(FRI_MENC_F32);
    n              = encode_vb(b, sizeof(b), &full);
    cr_assert_eq(fri_model_decode(&d, b, n), FR_OK);
    cr_assert_eq(fri_model_get_vb(&d, mean, prec, var), FR_EINVAL);
}

Test(proto_vb, golden_vector)
{
    static uint8_t want[1024], got[1024];
    char           path[1024];
    snprintf(path, sizeof(path), "%s/model_vb.bin", FR_TEST_VECTORS);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "missing golden vector %s", path);
    size_t wn = fread(want, 1, sizeof(want), f);
    fclose(f);
    size_t gn = 0;
    cr_assert_eq(v_model_vb(got, sizeof(got), &gn), FR_OK);
    cr_assert_eq(gn, wn);
    cr_assert_eq(memcmp(got, want, wn), 0);
    fri_model    d;
    fri_identity id;
    sample_identity(&id, 100);
    cr_assert_eq(fri_model_decode(&d, want, wn), FR_OK);
    cr_assert_eq(fri_model_verify(want, wn, id.sign_pk), FR_OK);
    fri_identity_wipe(&id);
}

Test(proto_vb, encoder_refuses_bad_blocks)
{
    static uint8_t b[1024];
    size_t         n;
    float          var[S_ITEMS * D], prec[P];
    fri_model      m = sample_model_vb();
    m.beta           = 0.0f;
    cr_assert_eq(fri_model_encode(b, sizeof(b), &n, &m), FR_EINVAL);
    m.beta = NAN;
    cr_assert_eq(fri_model_encode(b, sizeof(b), &n, &m), FR_EINVAL);
    m = sample_model_vb();
    memcpy(var, s_vb_var, sizeof(var));
    var[5]     = -0.5f; // negative variance
    m.item_var = var;
    cr_assert_eq(fri_model_encode(b, sizeof(b), &n, &m), FR_EINVAL);
    var[5] = INFINITY;
    cr_assert_eq(fri_model_encode(b, sizeof(b), &n, &m), FR_EINVAL);
    m = sample_model_vb();
    memcpy(prec, s_vb_prec, sizeof(prec));
    prec[4]       = 0.0f; // diagonal entry (1,1) of the packed triangle
    m.uprior_prec = prec;
    cr_assert_eq(fri_model_encode(b, sizeof(b), &n, &m), FR_EINVAL);
    m             = sample_model_vb();
    m.uprior_mean = NULL;
    cr_assert_eq(fri_model_encode(b, sizeof(b), &n, &m), FR_EINVAL);
    // VB is a full model: a delta base is refused.
    m              = sample_model_vb();
    m.base_version = 1;
    cr_assert_eq(fri_model_encode(b, sizeof(b), &n, &m), FR_EINVAL);
}

// Overwrites float j of the variational block of an encoded frame.
static void
poke_vb(uint8_t *b, size_t j, float v)
{
    size_t off = fri_model_size(FRI_MENC_F32, S_K, S_ITEMS) + 4 * j;
    memcpy(b + off, &v, 4); // little-endian host (as the tests assume)
}

Test(proto_vb, decoder_refuses_bad_blocks)
{
    static uint8_t b[1024], t[1024];
    fri_model      m    = sample_model_vb(), d;
    size_t         n    = encode_vb(b, sizeof(b), &m);
    const size_t   var0 = 1 + D + P; // first variance
    struct {
        size_t j;
        float  v;
    } bad[] = {
        { 0, 0.0f },
        { 0, -1.0f },
        { 0, NAN },
        { 1, INFINITY },
        { 1 + D, 0.0f },
        { 1 + D + 4, -2.0f },
        { var0, -0.125f },
        { var0 + 7, NAN },
        { var0 + 15, -INFINITY },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memcpy(t, b, n);
        poke_vb(t, bad[i].j, bad[i].v);
        cr_assert_eq(fri_model_decode(&d, t, n), FR_EPROTO, "case %zu", i);
    }
    // An off-diagonal precision entry may be negative or zero.
    memcpy(t, b, n);
    poke_vb(t, 1 + D + 1, -3.0f);
    cr_assert_eq(fri_model_decode(&d, t, n), FR_OK);
    // Truncated block: the header length no longer matches (R7/R13).
    cr_assert_neq(fri_model_decode(&d, b, n - 4), FR_OK);
    // A FULL header with the VB block appended is refused (R13).
    memcpy(t, b, n);
    t[FRI_HDR_LEN + 88] = FRI_MODEL_FULL;
    cr_assert_eq(fri_model_decode(&d, t, n), FR_EPROTO);
    // Unknown kind 3 stays refused (R10).
    t[FRI_HDR_LEN + 88] = 3;
    cr_assert_eq(fri_model_decode(&d, t, n), FR_EPROTO);
}

Test(proto_vb, update_vb_extra_rule)
{
    const uint32_t ne = fri_update_vb_extra(S_K);
    cr_assert_eq(ne, 2 * P + D + 4);
    cr_assert_eq(fri_update_vb_extra(0), 0);
    cr_assert_eq(fri_update_vb_extra(FRI_MAX_K), 0); // above FRI_MAX_EXTRA
    cr_assert_gt(fri_update_vb_extra(300), 0);
    static float   extra[2 * P + D + 4];
    static uint8_t b[1024];
    for (size_t i = 0; i < ne; i++) {
        extra[i] = (float)i * 0.5f;
    }
    fri_update u = sample_update_als();
    u.kind       = FRI_UPD_VB;
    u.n_extra    = ne;
    u.extra      = extra;
    size_t n     = 0;
    cr_assert_eq(fri_update_encode(b, sizeof(b), &n, &u), FR_OK);
    fri_update d;
    cr_assert_eq(fri_update_decode(&d, b, n), FR_OK);
    cr_assert_eq(d.kind, FRI_UPD_VB);
    float back[2 * P + D + 4];
    fri_update_get_extra(&d, back);
    cr_assert_eq(memcmp(back, extra, sizeof(back)), 0);
    // The ALS extra length is not a VB update (and vice versa).
    u.n_extra = P + 2;
    cr_assert_eq(fri_update_encode(b, sizeof(b), &n, &u), FR_EINVAL);
    u.kind    = FRI_UPD_ALS;
    u.n_extra = ne;
    cr_assert_eq(fri_update_encode(b, sizeof(b), &n, &u), FR_EINVAL);
}

Test(proto_vb, task_algo_vbmf)
{
    static uint8_t b[256];
    fri_task       t = sample_task();
    t.algo           = FRI_ALGO_VBMF;
    t.update_kind    = FRI_UPD_VB;
    size_t n         = 0;
    cr_assert_eq(fri_task_encode(b, sizeof(b), &n, &t), FR_OK);
    fri_task d;
    cr_assert_eq(fri_task_decode(&d, b, n), FR_OK);
    cr_assert_eq(d.algo, FRI_ALGO_VBMF);
    cr_assert_eq(d.update_kind, FRI_UPD_VB);
    b[FRI_HDR_LEN + 1] = 5; // undefined algorithm
    cr_assert_eq(fri_task_decode(&d, b, n), FR_EPROTO);
}
