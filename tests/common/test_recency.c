// Recency weights (common/recency.c) against hand-computed values.
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "recency.h"

Test(recency, weights_by_number_of_newer_interactions)
{
    const float   v[5]  = { 1, 2, 3, 4, 5 };
    const int64_t ts[5] = { 10, 30, 20, 30, 5 };
    float         out[5];
    int64_t       scr[5];
    cr_assert_eq(fri_recency_weigh(out, v, ts, 5, 1.0f, scr), FR_OK);
    // newer: 10 -> 3 (20, 30, 30), 30 -> 0 (ties share), 20 -> 2, 5 -> 4.
    const float want[5] = { 1.0f / 8, 2, 3.0f / 4, 4, 5.0f / 16 };
    for (int j = 0; j < 5; j++) {
        cr_assert_float_eq(out[j], want[j], 1e-6f, "entry %d", j);
    }
    // Half-life 2: 2^(-r/2).
    cr_assert_eq(fri_recency_weigh(out, v, ts, 5, 2.0f, scr), FR_OK);
    cr_assert_float_eq(out[0], 1.0f * powf(2.0f, -1.5f), 1e-6f);
    cr_assert_float_eq(out[2], 3.0f * 0.5f, 1e-6f);
    // In place.
    float w[5];
    memcpy(w, v, sizeof w);
    cr_assert_eq(fri_recency_weigh(w, w, ts, 5, 1.0f, scr), FR_OK);
    cr_assert_eq(memcmp(w, want, sizeof w), 0);
}

Test(recency, off_single_and_untimed_histories_are_unchanged)
{
    const float   v[3]   = { 1.5f, 2, 3 };
    const int64_t ts0[3] = { 0, 0, 0 };
    const int64_t ts[3]  = { 1, 2, 3 };
    float         out[3];
    int64_t       scr[3];
    cr_assert_eq(fri_recency_weigh(out, v, ts, 3, 0.0f, scr), FR_OK);
    cr_assert_eq(memcmp(out, v, sizeof out), 0);
    cr_assert_eq(fri_recency_weigh(out, v, ts0, 3, 3.0f, scr), FR_OK);
    cr_assert_eq(memcmp(out, v, sizeof out), 0);
    cr_assert_eq(fri_recency_weigh(out, v, ts, 1, 3.0f, NULL), FR_OK);
    cr_assert_eq(out[0], v[0]);
    cr_assert_eq(fri_recency_weigh(NULL, NULL, NULL, 0, 3.0f, NULL), FR_OK);
}

Test(recency, bad_arguments)
{
    const float   v[2]  = { 1, 2 };
    const int64_t ts[2] = { 1, 2 };
    float         out[2];
    int64_t       scr[2];
    cr_assert_eq(fri_recency_weigh(out, v, ts, 2, -1.0f, scr), FR_EINVAL);
    cr_assert_eq(fri_recency_weigh(out, v, ts, 2, NAN, scr), FR_EINVAL);
    cr_assert_eq(fri_recency_weigh(out, v, ts, 2, 2e6f, scr), FR_EINVAL);
    cr_assert_eq(fri_recency_weigh(out, v, ts, 2, 3.0f, NULL), FR_EINVAL);
    cr_assert_eq(fri_recency_weigh(out, NULL, ts, 2, 3.0f, scr), FR_EINVAL);
    cr_assert_eq(fri_recency_weigh(out, v, NULL, 2, 3.0f, scr), FR_EINVAL);
}

// Items 0..3 in two dimensions: 0 and 1 along x, 2 along y, 3 zero.
static const float TQ[8] = { 2.0f, 0.0f, 0.5f, 0.0f, 0.0f, 3.0f, 0.0f, 0.0f };

// 1 / |q_i| of TQ, checked against fri_transition_inv_norms.
static void
tq_inv_norms(float inv[4])
{
    fri_transition_inv_norms(inv, TQ, 4, 2);
    const float want[4] = { 0.5f, 2.0f, 1.0f / 3.0f, 0.0f };
    for (int i = 0; i < 4; i++) {
        cr_assert_float_eq(inv[i], want[i], 1e-7, "item %d", i);
    }
}

// cos(t, q) computed directly (0 for a zero row).
static double
cos_direct(const float *t, const float *q)
{
    double dot = (double)t[0] * q[0] + (double)t[1] * q[1];
    double qq  = (double)q[0] * q[0] + (double)q[1] * q[1];
    return qq > 0.0 ? dot / sqrt(qq) : 0.0;
}

Test(common_recency, transition_profile_is_the_newest_unit_vector)
{
    float          t[2], inv[4];
    tq_inv_norms(inv);
    const uint32_t items[3] = { 0, 2, 7 }; // 7 is beyond the catalog
    const int64_t  ts[3]    = { 5, 9, 50 };
    cr_assert_eq(fri_transition_profile(t, TQ, inv, 4, 2, items, ts, 3), 1);
    cr_assert_float_eq(t[0], 0.0f, 1e-7);
    cr_assert_float_eq(t[1], 1.0f, 1e-7); // item 2, normalized
    // Two at the newest time: the mean of their unit vectors.
    const int64_t tie[3] = { 9, 9, 1 };
    const uint32_t it2[3] = { 0, 2, 1 };
    cr_assert_eq(fri_transition_profile(t, TQ, inv, 4, 2, it2, tie, 3), 1);
    cr_assert_float_eq(t[0], 0.5f, 1e-7);
    cr_assert_float_eq(t[1], 0.5f, 1e-7);
    // All at one time (no order), nothing in the catalog, zero vectors.
    const int64_t same[2] = { 4, 4 };
    cr_assert_eq(fri_transition_profile(t, TQ, inv, 4, 2, items, same, 2), 0);
    cr_assert_float_eq(t[0], 0.0f, 0);
    const uint32_t out[1] = { 9 };
    cr_assert_eq(fri_transition_profile(t, TQ, inv, 4, 2, out, ts, 1), 0);
    const uint32_t zero[1] = { 3 };
    cr_assert_eq(fri_transition_profile(t, TQ, inv, 4, 2, zero, ts, 1), 0);
    // One interaction is an order of its own.
    cr_assert_eq(fri_transition_profile(t, TQ, inv, 4, 2, items, same, 1), 1);
}

Test(common_recency, transition_apply_standardizes_the_term)
{
    const float p[2] = { 1.0f, 2.0f }, t[2] = { 1.0f, 0.0f };
    float       inv[4], sc[4], cs[4];
    double      s[4], c[4], ms = 0, mc = 0;
    tq_inv_norms(inv);
    for (int i = 0; i < 4; i++) {
        s[i]   = p[0] * TQ[2 * i] + p[1] * TQ[2 * i + 1];
        sc[i]  = (float)s[i];
        c[i]   = cos_direct(t, TQ + 2 * i);
        ms += s[i] / 4;
        mc += c[i] / 4;
    }
    double vs = 0, vc = 0;
    for (int i = 0; i < 4; i++) {
        vs += (s[i] - ms) * (s[i] - ms) / 4;
        vc += (c[i] - mc) * (c[i] - mc) / 4;
    }
    const float bi[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
    float k = fri_transition_scores(sc, cs, TQ, inv, bi, 0.0f, 4, 2, p, t, 1.5f);
    cr_assert(fabs(k - 1.5 * sqrt(vs / vc)) < 1e-5, "%g", (double)k);
    for (int i = 0; i < 4; i++) {
        cr_assert(fabs(sc[i] - (s[i] + k * c[i])) < 1e-5, "item %d", i);
    }
    cr_assert_float_eq(cs[3], 0.0f, 0, "a zero row has no similarity");
    // No spread of the similarity: no term, scores unchanged.
    // (with an offset and biases: the scores are the factor model's).
    const float flat[4] = { 1.0f, 0.0f, 2.0f, 0.0f }, finv[2] = { 1.0f, 0.5f };
    const float fbi[2]  = { 0.5f, -0.5f };
    float       fs[2]   = { 0.0f, 0.0f };
    cr_assert_eq(fri_transition_scores(fs, cs, flat, finv, fbi, 2.0f, 2, 2,
                     p, t, 1.0f), 0.0f);
    cr_assert_float_eq(fs[0], 2.0f + 0.5f + 1.0f, 1e-6);
    cr_assert_float_eq(fs[1], 2.0f - 0.5f + 2.0f, 1e-6);
}
