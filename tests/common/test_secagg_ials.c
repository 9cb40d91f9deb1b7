// The masked iALS statistics (common/secagg_ials.h): layout, the device's
// clip of p and of the confidence weights, refusals of bad input, and an
// encode -> quantize -> sum -> decode round trip that reproduces the
// plain sums the aggregator's iALS solve takes.
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "linalg.h"
#include "secagg.h"
#include "secagg_ials.h"

#define NIT 6
#define K 3
#define D (K + 1)
#define PD (D * (D + 1) / 2)
#define PK (K * (K + 1) / 2)
#define W (PK + K + 1)
#define DIM (NIT * W + PK + 2)

// U 2, C = alpha * rating-max 4, rating_abs 1.
static const fri_sa_als_bounds B = { 2.0f, 4.0f, 1.0f };

// The plain iALS update of a device: the packed Gram of [p; 1] and rows
// [w, c p] with w = alpha v, alpha 2.
static void
plain_update(
    const float *p, const float *v, size_t n, float *gram, float *rows)
{
    float x[D] = { p[0], p[1], p[2], 1.0f };
    for (int a = 0; a < D; a++) {
        for (int b = a; b < D; b++) {
            gram[fri_packed_index(D, a, b)] = x[a] * x[b];
        }
    }
    for (size_t j = 0; j < n; j++) {
        float w     = 2.0f * v[j];
        rows[j * D] = w;
        for (int a = 0; a < K; a++) {
            rows[j * D + 1 + a] = (1.0f + w) * p[a];
        }
    }
}

Test(secagg_ials, layout)
{
    cr_assert_eq(fri_sa_ials_width(K), W);
    cr_assert_eq(fri_sa_ials_dim(NIT, K), DIM);
    cr_assert_eq(fri_sa_ials_dim(0, K), 0);
    cr_assert_eq(fri_sa_ials_width(0), 0);
    // Narrower than explicit ALS rows, so the ALS bound covers it.
    cr_assert(fri_sa_ials_width(K) < fri_sa_als_width(K));
}

Test(secagg_ials, round_trip_equals_plain_sums)
{
    // Two devices; device 1 interacts with items 1 and 4, device 2 with 4.
    const float p1[K] = { 0.5f, -1.0f, 0.25f }, p2[K] = { -0.3f, 0.2f, 1.1f };
    const uint32_t i1[2] = { 1, 4 }, i2[1] = { 4 };
    const float    v1[2] = { 1.0f, 2.0f }, v2[1] = { 1.0f };
    float          g1[PD], g2[PD], r1[2 * D], r2[D];
    plain_update(p1, v1, 2, g1, r1);
    plain_update(p2, v2, 1, g2, r2);
    static float    x1[DIM], x2[DIM], v[DIM];
    static uint32_t q1[DIM], q2[DIM], sum[DIM];
    size_t          clipped = 9;
    cr_assert_eq(fri_sa_ials_encode_stats(
                     x1, DIM, NIT, K, &B, g1, r1, i1, 2, 3.0, &clipped),
        FR_OK);
    cr_assert_eq(clipped, 0);
    cr_assert_eq(fri_sa_ials_encode_stats(
                     x2, DIM, NIT, K, &B, g2, r2, i2, 1, 1.0, &clipped),
        FR_OK);
    for (size_t t = 0; t < DIM; t++) {
        cr_assert(fabsf(x1[t]) <= 1.0f && fabsf(x2[t]) <= 1.0f,
            "word %zu not normalized", t);
    }
    // Items 0, 2, 3, 5: nobody interacted, so the rows are zero.
    for (size_t t = 0; t < W; t++) {
        cr_assert_eq(x1[0 * W + t], 0.0f);
        cr_assert_eq(x1[2 * W + t], 0.0f);
    }
    const unsigned f = 24;
    cr_assert_eq(fri_secagg_quantize(q1, x1, DIM, 1.0f, f, NULL), FR_OK);
    cr_assert_eq(fri_secagg_quantize(q2, x2, DIM, 1.0f, f, NULL), FR_OK);
    for (size_t t = 0; t < DIM; t++) {
        sum[t] = q1[t] + q2[t];
    }
    cr_assert_eq(fri_sa_ials_decode(v, sum, DIM, f, NIT, K, &B), FR_OK);
    // Item 4: sum w p p^T, sum c p, sum c over both devices.
    const float *it  = v + 4 * W;
    double       tol = 1e-5;
    for (int a = 0; a < K; a++) {
        for (int b = a; b < K; b++) {
            double want = 4.0 * p1[a] * p1[b] + 2.0 * p2[a] * p2[b];
            cr_assert_float_eq(it[fri_packed_index(K, a, b)], want, tol);
        }
        cr_assert_float_eq(it[PK + a], 5.0 * p1[a] + 3.0 * p2[a], tol);
    }
    cr_assert_float_eq(it[PK + K], 8.0, tol);
    // Item 1: device 1 alone (w = 2).
    cr_assert_float_eq(
        v[1 * W + fri_packed_index(K, 0, 1)], 2.0 * p1[0] * p1[1], tol);
    // Y^T Y, the value sum, the count.
    const float *yy = v + NIT * W;
    for (int a = 0; a < K; a++) {
        for (int b = a; b < K; b++) {
            cr_assert_float_eq(yy[fri_packed_index(K, a, b)],
                p1[a] * p1[b] + p2[a] * p2[b], tol);
        }
    }
    cr_assert_float_eq(v[DIM - 2], 4.0, tol);
    cr_assert_float_eq(v[DIM - 1], 3.0, tol);
}

Test(secagg_ials, device_clips_to_the_bounds)
{
    // |p| = 4 > U = 2, and a weight 10 > C = 4.
    const float    p[K]  = { 4.0f, 0.0f, 0.0f };
    const uint32_t it[1] = { 2 };
    float          g[PD], r[D];
    const float    val[1] = { 5.0f };
    plain_update(p, val, 1, g, r);
    static float x[DIM];
    size_t       clipped = 0;
    cr_assert_eq(fri_sa_ials_encode_stats(
                     x, DIM, NIT, K, &B, g, r, it, 1, 5.0, &clipped),
        FR_OK);
    cr_assert_eq(clipped, 2); // p and the weight
    // Gram (0, 0): w/C p_0^2/U^2 = 1 (just inside), c p / ((C+1) U) = 1.
    cr_assert_float_eq(x[2 * W + 0], 1.0f, 1e-5f);
    cr_assert_float_eq(x[2 * W + PK], 1.0f, 1e-5f);
    cr_assert_float_eq(x[2 * W + PK + K], 1.0f, 1e-6f);
}

Test(secagg_ials, bad_input_refused)
{
    const float    p[K]  = { 0.1f, 0.2f, 0.3f };
    const uint32_t it[2] = { 3, 1 }; // not increasing
    const uint32_t ok[2] = { 1, 3 }, out[1] = { NIT };
    const float    v[2] = { 1.0f, 1.0f };
    float          g[PD], r[2 * D];
    plain_update(p, v, 2, g, r);
    static float x[DIM];
    cr_assert_eq(
        fri_sa_ials_encode_stats(x, DIM, NIT, K, &B, g, r, it, 2, 2.0, NULL),
        FR_EINVAL);
    cr_assert_eq(
        fri_sa_ials_encode_stats(x, DIM, NIT, K, &B, g, r, out, 1, 2.0, NULL),
        FR_EINVAL);
    cr_assert_eq(fri_sa_ials_encode_stats(
                     x, DIM - 1, NIT, K, &B, g, r, ok, 2, 2.0, NULL),
        FR_EINVAL);
    r[0] = -1.0f; // a negative confidence weight
    cr_assert_eq(
        fri_sa_ials_encode_stats(x, DIM, NIT, K, &B, g, r, ok, 2, 2.0, NULL),
        FR_EINVAL);
    r[0] = NAN;
    cr_assert_eq(
        fri_sa_ials_encode_stats(x, DIM, NIT, K, &B, g, r, ok, 2, 2.0, NULL),
        FR_EINVAL);
    fri_sa_als_bounds bad = B;
    bad.residual          = 0.0f;
    r[0]                  = 1.0f;
    cr_assert_eq(
        fri_sa_ials_encode_stats(x, DIM, NIT, K, &bad, g, r, ok, 2, 2.0, NULL),
        FR_EINVAL);
    static uint32_t s[DIM];
    cr_assert_eq(fri_sa_ials_decode(x, s, DIM, 31, NIT, K, &B), FR_EINVAL);
    cr_assert_eq(fri_sa_ials_decode(x, s, DIM + 1, 20, NIT, K, &B), FR_EINVAL);
}
