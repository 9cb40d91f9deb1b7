// The masked latest-statistics delta (common/secagg_stats.h): layout,
// scales derived from the bounds, the contribution clamp, and an exact
// encode -> quantize -> sum -> decode round trip.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "secagg.h"
#include "secagg_stats.h"

#define NIT 7
#define K 2
#define D (K + 1)
#define P (D * (D + 1) / 2)
#define W (P + D)
#define G (D + P + 2)

static const fri_sa_als_bounds B = { 3.0f, 12.0f, 5.0f };

Test(secagg_stats, layout_and_scales)
{
    cr_assert_eq(fri_sa_stats_glob_len(K), G);
    cr_assert_eq(fri_sa_stats_dim(NIT, K, 0), (size_t)NIT * W + 2);
    cr_assert_eq(fri_sa_stats_dim(NIT, K, 1), (size_t)NIT * W + G + 2);
    cr_assert_eq(fri_sa_stats_extra_len(K, 1), P + G + 2);
    cr_assert_eq(fri_sa_stats_dim(0, K, 1), 0);
    double U = 3, R = 12, A = 5;
    // Item block of item 3: Gram (0, 1) 2 U^2, Gram (k, k) 2, h_0 and the
    // residual h_k.
    size_t it = 3 * W;
    cr_assert_float_eq(
        fri_sa_stats_scale(NIT, K, 1, &B, it + 1), 2 * U * U, 1e-9);
    cr_assert_float_eq(
        fri_sa_stats_scale(NIT, K, 1, &B, it + fri_packed_index(D, K, K)), 2.0,
        1e-9);
    cr_assert_float_eq(
        fri_sa_stats_scale(NIT, K, 1, &B, it + P), U * (2 * R + 2 * A), 1e-9);
    cr_assert_float_eq(
        fri_sa_stats_scale(NIT, K, 1, &B, it + P + K), 2 * R + 2 * A, 1e-9);
    // Global block: E[b_u] 2R, E[b_u^2] 2R^2, squared residuals, user count.
    size_t g = (size_t)NIT * W;
    cr_assert_float_eq(fri_sa_stats_scale(NIT, K, 1, &B, g + K), 2 * R, 1e-9);
    cr_assert_float_eq(
        fri_sa_stats_scale(NIT, K, 1, &B, g + D + fri_packed_index(D, K, K)),
        2 * R * R, 1e-9);
    cr_assert_float_eq(fri_sa_stats_scale(NIT, K, 1, &B, g + D + P),
        2.0 * NIT * (R + 2 * A) * (R + 2 * A), 1e-6);
    cr_assert_float_eq(
        fri_sa_stats_scale(NIT, K, 1, &B, g + D + P + 1), 1.0, 1e-9);
    // Tail: rating sum and count; ALS has no global block.
    cr_assert_float_eq(
        fri_sa_stats_scale(NIT, K, 1, &B, g + G), NIT * A, 1e-9);
    cr_assert_float_eq(fri_sa_stats_scale(NIT, K, 0, &B, g + 1), NIT, 1e-9);
}

Test(secagg_stats, contribution_clamped_to_the_bounds)
{
    float rows[2 * D] = { 0.5f, -0.2f, 1.0f, 0.1f, 0.3f, -2.0f };
    float extra[P + G + 2];
    memset(extra, 0, sizeof(extra));
    extra[fri_packed_index(D, 0, 0)] = 0.8f;
    extra[fri_packed_index(D, K, K)] = 1.0f;
    extra[P + D + P]                 = 3.0f; // squared residuals
    extra[P + D + P + 1]             = 1.0f; // user count
    extra[P + G]                     = 7.0f; // rating sum
    extra[P + G + 1]                 = 2.0f; // count
    float r0[2 * D], e0[P + G + 2];
    memcpy(r0, rows, sizeof(rows));
    memcpy(e0, extra, sizeof(extra));
    cr_assert_eq(fri_sa_stats_clip(rows, 2, extra, K, 1, NIT, &B), 0,
        "an honest contribution is unchanged");
    cr_assert_eq(memcmp(rows, r0, sizeof(rows)), 0);
    cr_assert_eq(memcmp(extra, e0, sizeof(extra)), 0);
    rows[0]                          = 100.0f; // h_0 above U R = 36
    extra[fri_packed_index(D, 0, 1)] = -50.0f; // Gram above U^2 = 9
    extra[P + D + P]                 = -1.0f; // squared residuals < 0
    cr_assert_eq(fri_sa_stats_clip(rows, 2, extra, K, 1, NIT, &B), 3);
    cr_assert_float_eq(rows[0], 36.0f, 1e-4);
    cr_assert_float_eq(extra[fri_packed_index(D, 0, 1)], -9.0f, 1e-5);
    cr_assert_float_eq(extra[P + D + P], 0.0f, 1e-9);
}

// Three members' deltas, encoded, quantized, summed mod 2^32 and decoded,
// give the sum of the deltas placed on their items within 2^-(f+1) of
// each word's scale per member; a delta beyond its scale is clamped and
// counted.
Test(secagg_stats, encode_sum_decode_round_trip)
{
    const size_t   dim = fri_sa_stats_dim(NIT, K, 1);
    const unsigned f   = 24;
    uint32_t       sum[NIT * W + G + 2];
    float          want[NIT * W + G + 2], got[NIT * W + G + 2];
    float          x[NIT * W + G + 2];
    uint32_t       q[NIT * W + G + 2];
    cr_assert_eq(dim, sizeof(sum) / sizeof(sum[0]));
    memset(sum, 0, sizeof(sum));
    memset(want, 0, sizeof(want));
    const uint32_t items[3][2] = { { 0, 4 }, { 4, 6 }, { 1, 2 } };
    for (int m = 0; m < 3; m++) {
        float rows[2 * D], extra[P + G + 2];
        for (int t = 0; t < 2 * D; t++) {
            rows[t] = (float)(0.37 * (m + 1) - 0.11 * t);
        }
        for (int t = 0; t < P + G + 2; t++) {
            extra[t] = (float)(0.05 * (t + 1) * (m % 2 ? -1 : 1));
        }
        size_t clipped = 9;
        cr_assert_eq(fri_sa_stats_encode(x, dim, NIT, K, 1, &B, rows, extra,
                         items[m], 2, &clipped),
            FR_OK);
        cr_assert_eq(clipped, 0);
        for (int j = 0; j < 2; j++) {
            float *w = want + (size_t)items[m][j] * W;
            for (int t = 0; t < P; t++) {
                w[t] += extra[t];
            }
            for (int t = 0; t < D; t++) {
                w[P + t] += rows[j * D + t];
            }
        }
        for (int t = 0; t < G + 2; t++) {
            want[NIT * W + t] += extra[P + t];
        }
        cr_assert_eq(fri_secagg_quantize(q, x, dim, 1.0f, f, NULL), FR_OK);
        for (size_t t = 0; t < dim; t++) {
            sum[t] += q[t];
        }
    }
    cr_assert_eq(fri_sa_stats_decode(got, sum, dim, f, NIT, K, 1, &B), FR_OK);
    for (size_t t = 0; t < dim; t++) {
        double tol = 3 * ldexp(1.0, -(int)f - 1)
                * fri_sa_stats_scale(NIT, K, 1, &B, t)
            + 1e-6 * fabs(want[t]);
        cr_assert(fabs((double)got[t] - want[t]) <= tol,
            "word %zu: got %g want %g", t, got[t], want[t]);
    }
    // An unsorted item list, a wrong dimension and a clamped delta.
    float          rows[2 * D] = { 1e4f, 0, 0, 0, 0, 0 };
    float          extra[P + G + 2];
    const uint32_t bad[2] = { 4, 4 };
    memset(extra, 0, sizeof(extra));
    cr_assert_eq(
        fri_sa_stats_encode(x, dim, NIT, K, 1, &B, rows, extra, bad, 2, NULL),
        FR_EINVAL);
    cr_assert_eq(fri_sa_stats_encode(x, dim - 1, NIT, K, 1, &B, rows, extra,
                     items[0], 2, NULL),
        FR_EINVAL);
    size_t clipped = 0;
    cr_assert_eq(fri_sa_stats_encode(x, dim, NIT, K, 1, &B, rows, extra,
                     items[0], 1, &clipped),
        FR_OK);
    cr_assert_eq(clipped, 1);
    cr_assert_float_eq(x[P], 1.0f, 1e-9);
}
