// MODEL encoding I8C (SPEC 5.6, R37): f16 biases, int8 rows with an f16
// scale, VB item variances as 8-bit log codes. Round-trip error bounds,
// the size against F32, and refusals at both ends.
#include <criterion/criterion.h>
#include <float.h>
#include <math.h>
#include <string.h>

#include "samples.h"
#include "wire.h"

#define K 10
#define D (K + 1)
#define P (D * (D + 1) / 2)
#define N 300

static uint8_t buf[1 << 17];
static float   bias[N], fac[N * K], var[N * D], mean[D], prec[P];

static float
rnd(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / (float)(1u << 24); // [0, 1)
}

// A VB model with the spread a trained one has: biases in [-2, 2],
// factors in [-1, 1] (some rows all zero), variances over five decades
// (and some exact zeros).
static fri_model
model(void)
{
    uint32_t s = 12345;
    for (int i = 0; i < N; i++) {
        bias[i] = 4.0f * rnd(&s) - 2.0f;
        for (int j = 0; j < K; j++) {
            fac[i * K + j] = i % 50 == 7 ? 0.0f : 2.0f * rnd(&s) - 1.0f;
        }
        for (int j = 0; j < D; j++) {
            var[i * D + j]
                = i % 40 == 3 ? 0.0f : powf(10.0f, -4.0f + 5.0f * rnd(&s));
        }
    }
    memset(prec, 0, sizeof prec);
    for (int a = 0, t = 0; a < D; a++) {
        mean[a] = 0.1f * (float)a;
        for (int b = a; b < D; b++, t++) {
            prec[t] = a == b ? 2.0f : 0.01f;
        }
    }
    fri_model m;
    memset(&m, 0, sizeof m);
    m.round_id    = 3;
    m.version     = 2;
    m.kind        = FRI_MODEL_VB;
    m.enc         = FRI_MENC_I8C;
    m.k           = K;
    m.n_items     = N;
    m.mu          = 3.5f;
    m.bias        = bias;
    m.factors     = fac;
    m.beta        = 1.5f;
    m.uprior_mean = mean;
    m.uprior_prec = prec;
    m.item_var    = var;
    return m;
}

Test(proto_i8c, vb_round_trip_within_the_bounds)
{
    fri_model m = model(), d;
    size_t    n = 0;
    cr_assert_eq(fri_model_encode(buf, sizeof buf, &n, &m), FR_OK);
    cr_assert_eq(n, fri_model_vb_size(FRI_MENC_I8C, K, N));
    // 2 + (2 + k) + d bytes per item against 4 + 4k + 4d in F32.
    cr_assert_eq(n,
        fri_model_size(FRI_MENC_F32, K, 0) + N * (2 + 2 + K + D)
            + 4 * (1 + D + P + 2));
    double ratio = (double)n / (double)fri_model_vb_size(FRI_MENC_F32, K, N);
    cr_assert(ratio < 0.30, "I8C / F32 = %.3f", ratio);
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_OK);
    cr_assert_eq(d.enc, FRI_MENC_I8C);
    cr_assert_eq(d.beta, 1.5f);
    float b2[N], f2[N * K], v2[N * D], mean2[D], prec2[P];
    cr_assert_eq(fri_model_get(&d, b2, f2, 0), FR_OK);
    cr_assert_eq(fri_model_get_vb(&d, mean2, prec2, v2), FR_OK);
    cr_assert_eq(memcmp(mean2, mean, sizeof mean), 0); // f32 as sent
    cr_assert_eq(memcmp(prec2, prec, sizeof prec), 0);
    for (int i = 0; i < N; i++) {
        // f16: half an ulp, 2^-11 relative.
        cr_assert(fabsf(b2[i] - bias[i]) <= fabsf(bias[i]) * 0x1p-11f,
            "bias %d: %g vs %g", i, b2[i], bias[i]);
        float mx = 0.0f;
        for (int j = 0; j < K; j++) {
            mx = fmaxf(mx, fabsf(fac[i * K + j]));
        }
        // Half a step of a scale at most one f16 ulp above max/127.
        float step = mx / 127.0f * (1.0f + 0x1p-10f);
        for (int j = 0; j < K; j++) {
            cr_assert(
                fabsf(f2[i * K + j] - fac[i * K + j]) <= step * 0.5f + 1e-7f,
                "row %d col %d: %g vs %g", i, j, f2[i * K + j],
                fac[i * K + j]);
        }
    }
    // Log grid over 5 decades in 254 steps: half a step is ~2.3%.
    const double half = 0.5 * log(1e5) / 254.0;
    for (int t = 0; t < N * D; t++) {
        if (var[t] == 0.0f) {
            cr_assert_eq(v2[t], 0.0f);
        } else {
            cr_assert(fabs(log((double)v2[t] / var[t])) <= half * 1.01 + 1e-6,
                "var %d: %g vs %g", t, v2[t], var[t]);
        }
    }
}

Test(proto_i8c, full_model_and_constant_variances)
{
    fri_model m = model(), d;
    m.kind      = FRI_MODEL_FULL;
    size_t n    = 0;
    cr_assert_eq(fri_model_encode(buf, sizeof buf, &n, &m), FR_OK);
    cr_assert_eq(n, fri_model_size(FRI_MENC_I8C, K, N));
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_OK);
    cr_assert_eq(fri_model_get_vb(&d, NULL, NULL, NULL), FR_EINVAL);
    // One variance value (step 0) and all zeros both come back exactly.
    m = model();
    for (int t = 0; t < N * D; t++) {
        var[t] = t % 3 == 0 ? 0.0f : 0.25f;
    }
    cr_assert_eq(fri_model_encode(buf, sizeof buf, &n, &m), FR_OK);
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_OK);
    float v2[N * D];
    cr_assert_eq(fri_model_get_vb(&d, NULL, NULL, v2), FR_OK);
    cr_assert_eq(memcmp(v2, var, sizeof v2), 0);
    memset(var, 0, sizeof var);
    cr_assert_eq(fri_model_encode(buf, sizeof buf, &n, &m), FR_OK);
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_OK);
    cr_assert_eq(fri_model_get_vb(&d, NULL, NULL, v2), FR_OK);
    cr_assert_eq(memcmp(v2, var, sizeof v2), 0);
}

Test(proto_i8c, encoder_refuses_what_does_not_fit)
{
    size_t    n;
    fri_model m = model();
    bias[5]     = 70000.0f; // beyond f16
    cr_assert_eq(fri_model_encode(buf, sizeof buf, &n, &m), FR_EINVAL);
    m          = model();
    fac[K + 2] = 1e7f; // scale 1e7 / 127 beyond f16
    cr_assert_eq(fri_model_encode(buf, sizeof buf, &n, &m), FR_EINVAL);
    m.enc = FRI_MENC_I8; // the f32-scale encoding carries it
    cr_assert_eq(fri_model_encode(buf, sizeof buf, &n, &m), FR_OK);
    m.enc = FRI_MENC_F16; // F16 rows do not (they were sent as inf)
    cr_assert_eq(fri_model_encode(buf, sizeof buf, &n, &m), FR_EINVAL);
    m       = model();
    var[17] = FLT_MAX; // beyond the grid's e^88
    cr_assert_eq(fri_model_encode(buf, sizeof buf, &n, &m), FR_EINVAL);
    m.enc = FRI_MENC_F32;
    cr_assert_eq(fri_model_encode(buf, sizeof buf, &n, &m), FR_OK);
    m.enc = 4;
    cr_assert_eq(fri_model_encode(buf, sizeof buf, &n, &m), FR_EINVAL);
}

// Offsets in the frame of model(): header, fixed body, biases, rows, VB.
#define BODY FRI_HDR_LEN
#define BIAS (BODY + FRI_MODEL_FIXED)
#define ROWS (BIAS + 2 * N)
#define VB (ROWS + N * (2 + K))
#define GRID (VB + 4 * (1 + D + P))

static size_t
fresh(void)
{
    fri_model m = model();
    size_t    n = 0;
    cr_assert_eq(fri_model_encode(buf, sizeof buf, &n, &m), FR_OK);
    return n;
}

Test(proto_rules, R37_i8c_fields)
{
    fri_model d;
    size_t    n = fresh();
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_OK);
    fri_put16(buf + BIAS + 2 * 9, 0x7c00); // bias inf
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_EPROTO);
    n = fresh();
    fri_put16(buf + BIAS, 0x7e00); // bias NaN
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_EPROTO);
    n = fresh();
    fri_put16(buf + ROWS + 3 * (2 + K), 0xbc00); // scale -1
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_EPROTO);
    n = fresh();
    fri_put16(buf + ROWS, 0x7c00); // scale inf
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_EPROTO);
    n = fresh();
    fri_put16(buf + ROWS, 0x8000); // -0 is >= 0
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_OK);
    n = fresh();
    fri_putf32(buf + GRID + 4, -0.01f); // negative step
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_EPROTO);
    n = fresh();
    fri_putf32(buf + GRID, 80.0f); // lo + 254 step > 88: variances overflow
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_EPROTO);
    n = fresh();
    fri_putf32(buf + GRID, NAN);
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_EPROTO);
    n = fresh();
    fri_putf32(buf + GRID, -1e30f); // tiny variances are fine
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_OK);
    // Every byte value decodes to a finite variance >= 0.
    n = fresh();
    fri_putf32(buf + GRID, -10.0f);
    fri_putf32(buf + GRID + 4, 98.0f / 254.0f); // exactly up to e^88
    for (int t = 0; t < N * D; t++) {
        buf[GRID + 8 + t] = (uint8_t)t;
    }
    cr_assert_eq(fri_model_decode(&d, buf, n), FR_OK);
    float v2[N * D];
    cr_assert_eq(fri_model_get_vb(&d, NULL, NULL, v2), FR_OK);
    for (int t = 0; t < N * D; t++) {
        cr_assert(
            isfinite(v2[t]) && v2[t] >= 0.0f, "code %d: %g", t % 256, v2[t]);
    }
}
