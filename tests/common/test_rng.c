#include <criterion/criterion.h>

#include <math.h>

#include "rng.h"

Test(common_rng, same_seed_same_stream)
{
    fri_rng a, b;
    fri_rng_seed(&a, 42);
    fri_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(fri_rng_next(&a), fri_rng_next(&b));
    }
}

Test(common_rng, streams_differ)
{
    fri_rng a, b;
    fri_rng_seed2(&a, 42, 1);
    fri_rng_seed2(&b, 42, 2);
    cr_assert_neq(fri_rng_next(&a), fri_rng_next(&b));
}

Test(common_rng, below_is_in_range_and_roughly_uniform)
{
    fri_rng r;
    fri_rng_seed(&r, 7);
    int hist[10] = { 0 };
    for (int i = 0; i < 100000; i++) {
        uint32_t v = fri_rng_below(&r, 10);
        cr_assert_lt(v, 10u);
        hist[v]++;
    }
    for (int i = 0; i < 10; i++) {
        cr_assert(hist[i] > 9500 && hist[i] < 10500, "bucket %d: %d", i,
                  hist[i]);
    }
}

Test(common_rng, normal_has_unit_moments)
{
    fri_rng r;
    fri_rng_seed(&r, 9);
    double s = 0, s2 = 0;
    int    n = 200000;
    for (int i = 0; i < n; i++) {
        double x = fri_rng_normal(&r);
        s += x;
        s2 += x * x;
    }
    cr_assert(fabs(s / n) < 0.01);
    cr_assert(fabs(s2 / n - 1.0) < 0.02);
}
