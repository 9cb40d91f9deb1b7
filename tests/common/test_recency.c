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
