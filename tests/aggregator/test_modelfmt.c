// Model downloads (--model-format, SPEC 5.6 row encodings): the aggregator
// builds and signs each encoding once per model and gives every device the
// smallest one it accepts that the configuration allows; a device that
// accepts only F32 gets F32. Every frame verifies with the aggregator's
// key and decodes to the model within the encoding's rounding.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "channel.h"
#include "msg.h"
#include "snap.h"

#define NI 30
#define K 8

static fri_agg *
make(int mf, fri_agg_algo algo)
{
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items      = NI;
    c.k            = K;
    c.algo         = algo;
    c.model_format = mf;
    fri_agg *a     = NULL;
    char     err[256];
    cr_assert_eq(
        fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_OK, "%s", err);
    return a;
}

// The frame a device with accept bits gets, checked: signed by a, of the
// served model, rows within the encoding's error. Returns its encoding.
static uint8_t
served(fri_agg *a, uint8_t accept, size_t *len)
{
    fri_snap *s = fri_agg_snap_get(a);
    cr_assert(s != NULL && s->frame != NULL);
    const uint8_t *f  = NULL;
    size_t         fl = 0;
    fri_snap_pick(s, accept, &f, &fl);
    uint8_t pk[FR_PUBLICKEYBYTES];
    fri_agg_public_key(a, pk);
    cr_assert_eq(fri_model_verify(f, fl, pk + 32), FR_OK);
    fri_model m;
    cr_assert_eq(fri_model_decode(&m, f, fl), FR_OK);
    float bi[NI], Q[NI * K], wbi[NI], wQ[NI * K], mu;
    cr_assert_eq(fri_model_get(&m, bi, Q, K), FR_OK);
    fri_agg_model_copy(a, &mu, wbi, NI, wQ, NI * K, NULL);
    for (uint32_t i = 0; i < NI; i++) {
        if (m.enc == FRI_MENC_I8C) { // f16 biases: half an ulp
            cr_assert(fabsf(bi[i] - wbi[i]) <= fabsf(wbi[i]) * 0x1p-11f);
        } else {
            cr_assert_eq(bi[i], wbi[i]); // biases stay f32
        }
        double mx = 0.0;
        for (int f2 = 0; f2 < K; f2++) {
            mx = fmax(mx, fabs(wQ[i * K + f2]));
        }
        for (int f2 = 0; f2 < K; f2++) {
            double e   = fabs(Q[i * K + f2] - wQ[i * K + f2]);
            // I8C's f16 scale is at most one f16 ulp above max / 127.
            double tol = m.enc == FRI_MENC_I8 ? mx / 127.0 / 2.0 * 1.001
                : m.enc == FRI_MENC_I8C       ? mx / 127.0 / 2.0 * 1.002
                : m.enc == FRI_MENC_F16       ? mx * 1e-3
                                              : 0.0;
            cr_assert(e <= tol + 1e-12, "enc %u item %u: error %g > %g", m.enc,
                i, e, tol);
        }
    }
    *len        = fl;
    uint8_t enc = m.enc;
    fri_snap_unref(s);
    return enc;
}

Test(agg_modelfmt, smallest_accepted_encoding_is_served)
{
    const uint8_t all = FRI_ENC_F32_BIT | FRI_ENC_F16_BIT | FRI_ENC_I8_BIT;
    for (int vb = 0; vb <= 1; vb++) {
        fri_agg_algo algo = vb ? FRI_AGG_VBMF : FRI_AGG_ALS;
        size_t       l32, l16, l8, l;
        fri_agg     *a = make(FRI_AGG_MF_AUTO, algo);
        size_t       lc;
        cr_assert_eq(served(a, all | FRI_ENC_I8C_BIT, &lc), FRI_MENC_I8C);
        cr_assert_eq(served(a, all, &l8), FRI_MENC_I8);
        cr_assert_eq(
            served(a, FRI_ENC_F32_BIT | FRI_ENC_F16_BIT, &l16), FRI_MENC_F16);
        cr_assert(lc < l8, "%zu %zu", lc, l8);
        cr_assert_eq(lc,
            vb ? fri_model_vb_size(FRI_MENC_I8C, K, NI)
               : fri_model_size(FRI_MENC_I8C, K, NI));
        cr_assert_eq(served(a, FRI_ENC_F32_BIT, &l32), FRI_MENC_F32);
        cr_assert(l8 < l16 && l16 < l32, "%zu %zu %zu", l8, l16, l32);
        cr_assert_eq(l32,
            vb ? fri_model_vb_size(FRI_MENC_F32, K, NI)
               : fri_model_size(FRI_MENC_F32, K, NI));
        fri_agg_destroy(a);
        // fp32: every device gets F32; fp16: F16 even if I8 is accepted.
        a = make(FRI_AGG_MF_FP32, algo);
        cr_assert_eq(served(a, all, &l), FRI_MENC_F32);
        fri_agg_destroy(a);
        a = make(FRI_AGG_MF_FP16, algo);
        cr_assert_eq(served(a, all, &l), FRI_MENC_F16);
        cr_assert_eq(
            served(a, FRI_ENC_F32_BIT | FRI_ENC_I8_BIT, &l), FRI_MENC_F32);
        fri_agg_destroy(a);
        a = make(FRI_AGG_MF_INT8, algo);
        cr_assert_eq(served(a, all, &l), FRI_MENC_I8);
        cr_assert_eq(served(a, all | FRI_ENC_I8C_BIT, &l), FRI_MENC_I8C);
        cr_assert_eq(
            served(a, FRI_ENC_F32_BIT | FRI_ENC_F16_BIT, &l), FRI_MENC_F32);
        fri_agg_destroy(a);
    }
    // An unknown format is refused by the configuration check.
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items      = NI;
    c.model_format = 7;
    fri_agg *x     = NULL;
    char     err[256];
    cr_assert_eq(fri_agg_create(&x, &c, 0, err, sizeof(err)), FR_EINVAL);
    cr_assert_eq(fri_agg_model_format_parse("int8"), FRI_AGG_MF_INT8);
    cr_assert_eq(fri_agg_model_format_parse("int4"), -1);
}
