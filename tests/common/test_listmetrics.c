// Beyond-accuracy metrics of recommendation lists against values worked
// out by hand.
#include <criterion/criterion.h>
#include <math.h>

#include "listmetrics.h"

Test(listmetrics, hand_computed_example)
{
    // Four items, lists of up to 2: [0 1], [0 2], [0], [].
    const uint32_t lists[8] = {0, 1, 0, 2, 0, 0, 0, 0};
    const uint8_t  lens[4]  = {2, 2, 1, 0};
    const uint32_t pop[4]   = {10, 2, 0, 5};
    const float    Q[8]     = {1, 0, 0, 1, 1, 1, 0, 0};
    fri_list_metrics m;
    cr_assert_eq(fri_list_metrics_eval(&m, lists, lens, 4, 2, 4, pop, 10, Q, 2),
                 FR_OK);
    cr_assert_eq(m.n_lists, 3);
    cr_assert_float_eq(m.coverage, 0.75, 1e-12);
    // Exposure 3,1,1,0 -> sorted 0,1,1,3: (-1 + 1 + 9) / (4 * 5).
    cr_assert_float_eq(m.gini, 0.45, 1e-12);
    cr_assert_float_eq(m.avg_popularity, 32.0 / 5.0, 1e-12);
    double nov = (-log2(3.0 / 11.0) - log2(1.0 / 11.0)) / 5.0;
    cr_assert_float_eq(m.novelty, nov, 1e-12);
    double ild = (1.0 + (1.0 - 1.0 / sqrt(2.0))) / 2.0;
    cr_assert_float_eq(m.ild, ild, 1e-6);
    // Without factors there is no diversity figure.
    cr_assert_eq(fri_list_metrics_eval(&m, lists, lens, 4, 2, 4, pop, 10,
                                       NULL, 2), FR_OK);
    cr_assert(isnan(m.ild));
}

Test(listmetrics, equal_exposure_and_bad_input)
{
    const uint32_t lists[4] = {0, 1, 2, 3};
    const uint8_t  lens[2]  = {2, 2};
    const uint32_t pop[4]   = {1, 1, 1, 1};
    fri_list_metrics m;
    cr_assert_eq(fri_list_metrics_eval(&m, lists, lens, 2, 2, 4, pop, 4, NULL,
                                       0), FR_OK);
    cr_assert_float_eq(m.gini, 0.0, 1e-12);
    cr_assert_float_eq(m.coverage, 1.0, 1e-12);
    const uint32_t bad[2] = {0, 4}; // item 4 outside a 4-item catalog
    cr_assert_eq(fri_list_metrics_eval(&m, bad, lens, 1, 2, 4, pop, 4, NULL,
                                       0), FR_EINVAL);
    const uint8_t long_len[1] = {3};
    cr_assert_eq(fri_list_metrics_eval(&m, lists, long_len, 1, 2, 4, pop, 4,
                                       NULL, 0), FR_EINVAL);
    cr_assert_eq(fri_list_metrics_eval(NULL, lists, lens, 2, 2, 4, pop, 4,
                                       NULL, 0), FR_EINVAL);
    cr_assert_eq(fri_list_metrics_eval(&m, lists, lens, 2, 0, 4, pop, 4,
                                       NULL, 0), FR_EINVAL);
    // No lists at all: nothing recommended, nothing covered.
    cr_assert_eq(fri_list_metrics_eval(&m, NULL, NULL, 0, 2, 4, pop, 4, NULL,
                                       0), FR_OK);
    cr_assert_eq(m.n_lists, 0);
    cr_assert_float_eq(m.coverage, 0.0, 1e-12);
    cr_assert(isnan(m.novelty));
}
