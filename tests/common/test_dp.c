#include <criterion/criterion.h>

#include <math.h>
#include <string.h>

#include "dp.h"
#include "rng.h"

// ------------------------------------------------------------ accountant:
// published values

// Abadi et al. 2016, "Deep Learning with Differential Privacy" (CCS), Sec.
// 3.1: q = 0.01, sigma = 4, T = 10000, delta = 1e-5 gives eps ~ 1.26 with
// the moments accountant. The moments accountant bounds the same log-moments
// (integer orders <= 32) from above and converts with the classic formula, so
// our exact RDP with the classic conversion can only match or undercut it:
// [1.20, 1.265] (1.26 is rounded to two decimals). The tighter conversion
// must be strictly smaller still, and not absurdly so (> 0.9).
Test(common_dp, abadi_2016_moments_accountant)
{
    double eps, order;
    cr_assert_eq(fri_dp_epsilon_conv(0.01, 4.0, 10000, 1e-5,
                                     FRI_DP_CONV_CLASSIC, &eps, &order),
                 FR_OK);
    cr_assert(eps >= 1.20 && eps <= 1.265, "classic eps %f", eps);
    double best;
    cr_assert_eq(fri_dp_epsilon(0.01, 4.0, 10000, 1e-5, &best, &order),
                 FR_OK);
    cr_assert(best < eps && best > 0.9, "best eps %f", best);
}

// TensorFlow Privacy, tutorials/README.md ("Measure the Privacy Guarantee"
// and the "Select Parameters" table): compute_dp_sgd_privacy.py --N=60000
// --batch_size=256 --noise_multiplier=1.1 --epochs=60 --delta=1e-5 gives
// "eps = 3.01 and delta = 1e-05"; the table adds noise 1.3 / 15 epochs ->
// 1.19 and noise 0.7 / 45 epochs -> 7.10. That tool used the classic
// conversion and steps = ceil(epochs * N / batch_size). Each value is
// printed to two decimals, so we must land within 0.005.
static double
mnist_eps(double noise, int epochs)
{
    double   q     = 256.0 / 60000.0;
    uint64_t steps = (uint64_t) ceil(epochs * 60000.0 / 256.0);
    double   eps;
    cr_assert_eq(fri_dp_epsilon_conv(q, noise, steps, 1e-5,
                                     FRI_DP_CONV_CLASSIC, &eps, NULL),
                 FR_OK);
    return eps;
}

Test(common_dp, tf_privacy_mnist_tutorial)
{
    double e = mnist_eps(1.1, 60);
    cr_assert(fabs(e - 3.01) <= 0.005, "noise 1.1, 60 epochs: %f", e);
    e = mnist_eps(1.3, 15);
    cr_assert(fabs(e - 1.19) <= 0.005, "noise 1.3, 15 epochs: %f", e);
    e = mnist_eps(0.7, 45);
    cr_assert(fabs(e - 7.10) <= 0.005, "noise 0.7, 45 epochs: %f", e);
}

// TensorFlow Privacy, tensorflow_privacy/privacy/analysis/
// rdp_accountant_test.py, test_compute_rdp_scalar: compute_rdp(q=0.1,
// noise=2, steps=10, order=5) == 0.07737 to 5 places.
Test(common_dp, tf_privacy_rdp_scalar)
{
    double r;
    cr_assert_eq(fri_dp_rdp(0.1, 2.0, 5.0, &r), FR_OK);
    cr_assert(fabs(10.0 * r - 0.07737) < 5e-6, "rdp %f", 10.0 * r);
}

// Same file, test_compute_rdp_sequence: q=0.01, noise=2.5, 50 steps at
// orders 1.5, 2.5, 5, 50, 100 (fractional and integer) within 1e-5.
Test(common_dp, tf_privacy_rdp_sequence)
{
    const double orders[] = { 1.5, 2.5, 5, 50, 100 };
    const double want[]   = { 0.00065, 0.001085, 0.00218075, 0.023846,
                              167.416307 };
    for (size_t i = 0; i < 5; i++) {
        double r;
        cr_assert_eq(fri_dp_rdp(0.01, 2.5, orders[i], &r), FR_OK);
        cr_assert(fabs(50.0 * r - want[i]) < 1e-5, "order %g: %f vs %f",
                  orders[i], 50.0 * r, want[i]);
    }
}

// Same file, test_check_composition: RDP of (q=1e-4, noise .4, 40000 steps)
// plus (q=0.1, noise 2, 100 steps) on their 21 orders, at delta 1e-5, was
// eps = 8.509656 at order 2.5 under the old (classic) conversion.
Test(common_dp, tf_privacy_composition)
{
    const double orders[] = { 1.25, 1.5, 1.75, 2.,  2.5, 3.,  4.,
                              5.,   6.,  7.,   8.,  10., 12., 14.,
                              16.,  20., 24.,  28., 32., 64., 256. };
    double       rdp[21];
    for (size_t i = 0; i < 21; i++) {
        double a, b;
        cr_assert_eq(fri_dp_rdp(1e-4, 0.4, orders[i], &a), FR_OK);
        cr_assert_eq(fri_dp_rdp(0.1, 2.0, orders[i], &b), FR_OK);
        rdp[i] = 40000.0 * a + 100.0 * b;
    }
    double eps, order, tight;
    cr_assert_eq(fri_dp_eps_from_rdp(orders, rdp, 21, 1e-5,
                                     FRI_DP_CONV_CLASSIC, &eps, &order),
                 FR_OK);
    cr_assert(fabs(eps - 8.509656) < 1e-5, "eps %f", eps);
    cr_assert_eq(order, 2.5);
    cr_assert_eq(fri_dp_eps_from_rdp(orders, rdp, 21, 1e-5,
                                     FRI_DP_CONV_TIGHT, &tight, NULL),
                 FR_OK);
    cr_assert_leq(tight, eps);
}

// Same file, test_get_privacy_spent_check_target_delta: constant RDP 1.1 on
// orders 2..32 (pure DP) picks order 32 and eps = 1.32783806176 under the
// current (Canonne-Kamath-Steinke) conversion.
Test(common_dp, tf_privacy_tight_conversion_constant_rdp)
{
    double orders[31], rdp[31];
    for (size_t i = 0; i < 31; i++) {
        orders[i] = (double) (i + 2);
        rdp[i]    = 1.1;
    }
    double eps, order;
    cr_assert_eq(fri_dp_eps_from_rdp(orders, rdp, 31, 1e-5,
                                     FRI_DP_CONV_TIGHT, &eps, &order),
                 FR_OK);
    cr_assert_eq(order, 32.0);
    cr_assert(fabs(eps - 1.32783806176) < 1e-9, "eps %.12f", eps);
    // Classic at order 32 by hand: 1.1 + log(1e5)/31.
    cr_assert_eq(fri_dp_eps_from_rdp(orders, rdp, 31, 1e-5,
                                     FRI_DP_CONV_CLASSIC, &eps, &order),
                 FR_OK);
    cr_assert(fabs(eps - (1.1 + log(1e5) / 31.0)) < 1e-12);
}

// Same test, second half: the plain Gaussian mechanism (q = 1) with sigma =
// 4.530877117 is exactly (1, 1e-6)-DP (Balle & Wang 2018, Thm. 8); on the
// fine orders 1.000..99.999 the tight RDP conversion gives eps = 1 to 7
// places.
Test(common_dp, tf_privacy_gaussian_exact_eps)
{
    enum { N = 99000 };
    static double orders[N], rdp[N];
    for (size_t i = 0; i < N; i++) {
        orders[i] = 0.001 * (double) (i + 1000);
        if (orders[i] > 1.0) {
            cr_assert_eq(fri_dp_rdp(1.0, 4.530877117, orders[i], &rdp[i]),
                         FR_OK);
        } else {
            rdp[i] = 0.0; // order 1 is skipped by the conversion
        }
    }
    double eps;
    cr_assert_eq(fri_dp_eps_from_rdp(orders, rdp, N, 1e-6,
                                     FRI_DP_CONV_TIGHT, &eps, NULL),
                 FR_OK);
    cr_assert(fabs(eps - 1.0) < 1e-6, "eps %.9f", eps);
}

// ------------------------------------------------- accountant: properties

Test(common_dp, q_one_is_plain_gaussian)
{
    for (size_t i = 0; i < FRI_DP_N_ORDERS; i++) {
        double a = fri_dp_order(i), r;
        cr_assert_eq(fri_dp_rdp(1.0, 3.0, a, &r), FR_OK);
        cr_assert_eq(r, a / 18.0);
    }
}

Test(common_dp, q_zero_and_zero_noise)
{
    double r, eps;
    cr_assert_eq(fri_dp_rdp(0.0, 1.0, 7.0, &r), FR_OK);
    cr_assert_eq(r, 0.0);
    cr_assert_eq(fri_dp_rdp(0.5, 0.0, 7.0, &r), FR_OK);
    cr_assert(isinf(r));
    cr_assert_eq(fri_dp_epsilon(0.01, 0.0, 10, 1e-5, &eps, NULL), FR_OK);
    cr_assert(isinf(eps));
}

Test(common_dp, rdp_is_nondecreasing_in_order_across_both_paths)
{
    // The integer (binomial) and fractional (series) computations must agree
    // where they meet: A_alpha is continuous and D_alpha non-decreasing.
    const double qs[] = { 1e-3, 0.01, 0.1, 0.5 };
    const double zs[] = { 0.7, 1.1, 4.0 };
    for (size_t a = 0; a < 4; a++) {
        for (size_t b = 0; b < 3; b++) {
            double prev = 0.0;
            for (size_t i = 0; i < FRI_DP_N_ORDERS; i++) {
                double r;
                cr_assert_eq(fri_dp_rdp(qs[a], zs[b], fri_dp_order(i), &r),
                             FR_OK);
                cr_assert(r >= prev * (1.0 - 1e-9), "q %g z %g order %g",
                          qs[a], zs[b], fri_dp_order(i));
                prev = r;
            }
            double r2, r2f;
            cr_assert_eq(fri_dp_rdp(qs[a], zs[b], 2.0, &r2), FR_OK);
            cr_assert_eq(fri_dp_rdp(qs[a], zs[b], 2.0 + 1e-7, &r2f), FR_OK);
            cr_assert(fabs(r2f - r2) <= 1e-5 * r2 + 1e-15, "%g vs %g", r2,
                      r2f);
        }
    }
}

Test(common_dp, subsampling_never_exceeds_plain_gaussian)
{
    // Sampling can only help: RDP(q, z, a) <= a / (2 z^2), over extreme q
    // and z (tiny z stresses the log-space sums, q near 1 the series split).
    const double qs[] = { 1e-9, 1e-6, 1e-3, 0.1, 0.5, 0.9, 0.99, 0.999999 };
    const double zs[] = { 1e-6, 0.01, 0.1, 0.3, 0.7, 1, 3, 10, 100, 1e4 };
    for (size_t a = 0; a < 8; a++) {
        for (size_t b = 0; b < 10; b++) {
            for (size_t i = 0; i < FRI_DP_N_ORDERS; i++) {
                double o = fri_dp_order(i), r;
                cr_assert_eq(fri_dp_rdp(qs[a], zs[b], o, &r), FR_OK);
                cr_assert(r >= 0.0
                              && r <= o / (2.0 * zs[b] * zs[b]) * (1 + 1e-9)
                                          + 1e-12,
                          "q %g z %g order %g: %g", qs[a], zs[b], o, r);
            }
        }
    }
}

Test(common_dp, eps_monotone_in_noise_steps_and_rate)
{
    double e1, e2;
    cr_assert_eq(fri_dp_epsilon(0.01, 1.0, 1000, 1e-5, &e1, NULL), FR_OK);
    cr_assert_eq(fri_dp_epsilon(0.01, 1.5, 1000, 1e-5, &e2, NULL), FR_OK);
    cr_assert_lt(e2, e1, "more noise, less eps");
    cr_assert_eq(fri_dp_epsilon(0.01, 1.0, 2000, 1e-5, &e2, NULL), FR_OK);
    cr_assert_gt(e2, e1, "more steps, more eps");
    cr_assert_eq(fri_dp_epsilon(0.02, 1.0, 1000, 1e-5, &e2, NULL), FR_OK);
    cr_assert_gt(e2, e1, "higher sampling rate, more eps");
    cr_assert_eq(fri_dp_epsilon(0.01, 1.0, 1000, 1e-7, &e2, NULL), FR_OK);
    cr_assert_gt(e2, e1, "smaller delta, more eps");
}

Test(common_dp, accountant_composes_additively)
{
    fri_dp_accountant acc;
    fri_dp_accountant_init(&acc);
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(fri_dp_accountant_add(&acc, 0.05, 1.2, 30), FR_OK);
    }
    double a, b;
    cr_assert_eq(fri_dp_accountant_epsilon(&acc, 1e-6, FRI_DP_CONV_BEST, &a,
                                           NULL),
                 FR_OK);
    cr_assert_eq(fri_dp_epsilon(0.05, 1.2, 300, 1e-6, &b, NULL), FR_OK);
    cr_assert(fabs(a - b) < 1e-9 * b);
    // A bad round leaves the accountant untouched.
    fri_dp_accountant before = acc;
    cr_assert_eq(fri_dp_accountant_add(&acc, 1.5, 1.0, 1), FR_EINVAL);
    cr_assert(memcmp(&before, &acc, sizeof acc) == 0);
}

Test(common_dp, noise_for_epsilon_inverts_epsilon)
{
    const double targets[] = { 0.5, 1.0, 3.0, 8.0 };
    for (size_t i = 0; i < 4; i++) {
        double z, eps, eps_less;
        cr_assert_eq(fri_dp_noise_for_epsilon(0.01, 5000, 1e-5, targets[i],
                                              &z),
                     FR_OK);
        cr_assert_eq(fri_dp_epsilon(0.01, z, 5000, 1e-5, &eps, NULL), FR_OK);
        cr_assert_leq(eps, targets[i]);
        cr_assert_gt(eps, targets[i] * 0.999, "target %g got %g",
                     targets[i], eps);
        // Slightly less noise must miss the target: z is (near) minimal.
        cr_assert_eq(
            fri_dp_epsilon(0.01, z * 0.999, 5000, 1e-5, &eps_less, NULL),
            FR_OK);
        cr_assert_gt(eps_less, targets[i]);
    }
}

Test(common_dp, accountant_rejects_bad_input)
{
    double r, eps;
    cr_assert_eq(fri_dp_rdp(-0.1, 1.0, 2.0, &r), FR_EINVAL);
    cr_assert_eq(fri_dp_rdp(1.1, 1.0, 2.0, &r), FR_EINVAL);
    cr_assert_eq(fri_dp_rdp(0.1, NAN, 2.0, &r), FR_EINVAL);
    cr_assert_eq(fri_dp_rdp(0.1, 1.0, 1.0, &r), FR_EINVAL);
    cr_assert_eq(fri_dp_rdp(0.1, 1.0, INFINITY, &r), FR_EINVAL);
    cr_assert_eq(fri_dp_rdp(0.1, 1.0, 2.0, NULL), FR_EINVAL);
    cr_assert_eq(fri_dp_epsilon(0.1, 1.0, 10, 0.0, &eps, NULL), FR_EINVAL);
    cr_assert_eq(fri_dp_epsilon(0.1, 1.0, 10, 1.0, &eps, NULL), FR_EINVAL);
    cr_assert_eq(fri_dp_noise_for_epsilon(0.1, 10, 1e-5, 0.0, &r),
                 FR_EINVAL);
    cr_assert(isnan(fri_dp_order(FRI_DP_N_ORDERS)));
}

// ---------------------------------------------------------------- clipping

static double
norm2(const float *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        s += (double) v[i] * v[i];
    }
    return sqrt(s);
}

Test(common_dp, clip_bounds_norm_and_keeps_direction)
{
    fri_rng r;
    fri_rng_seed(&r, 11);
    float v[257], orig[257];
    for (int trial = 0; trial < 200; trial++) {
        size_t n    = 1 + fri_rng_below(&r, 257);
        float  clip = (float) (0.01 + 3.0 * fri_rng_uniform(&r));
        double sc   = 10.0 * fri_rng_uniform(&r);
        for (size_t i = 0; i < n; i++) {
            orig[i] = v[i] = (float) (sc * fri_rng_normal(&r));
        }
        float before;
        float f = fri_dp_clip_l2(v, n, clip, &before);
        cr_assert(fabs(before - norm2(orig, n)) <= 1e-5 * norm2(orig, n));
        cr_assert(norm2(v, n) <= (double) clip + 1e-6, "norm %g > %g",
                  norm2(v, n), clip);
        if (before <= clip) {
            cr_assert_eq(f, 1.0f);
            cr_assert(memcmp(v, orig, n * sizeof *v) == 0);
        } else {
            cr_assert(f < 1.0f && f > 0.0f);
            cr_assert(norm2(v, n) > (double) clip * (1.0 - 1e-5));
            for (size_t i = 0; i < n; i++) {
                cr_assert_eq(v[i], orig[i] * f);
            }
        }
    }
}

Test(common_dp, clip_rows_equals_clip_of_concatenation)
{
    float a[5] = { 3, 0, 4, 1, 2 }, b[3] = { -5, 6, 0.5f }, c[8];
    memcpy(c, a, sizeof a);
    memcpy(c + 5, b, sizeof b);
    float *rows[3] = { a, NULL, b };
    size_t lens[3] = { 5, 0, 3 };
    float  nb1, nb2;
    float  f1 = fri_dp_clip_l2_rows(rows, lens, 3, 2.0f, &nb1);
    float  f2 = fri_dp_clip_l2(c, 8, 2.0f, &nb2);
    cr_assert_eq(f1, f2);
    cr_assert_eq(nb1, nb2);
    cr_assert(memcmp(a, c, sizeof a) == 0);
    cr_assert(memcmp(b, c + 5, sizeof b) == 0);
    cr_assert(sqrt(norm2(a, 5) * norm2(a, 5) + norm2(b, 3) * norm2(b, 3))
              <= 2.0 + 1e-6);
    // A NULL row with a length is rejected without touching anything.
    float *bad[2]  = { a, NULL };
    size_t blen[2] = { 5, 1 };
    float  keep[5];
    memcpy(keep, a, sizeof a);
    cr_assert_eq(fri_dp_clip_l2_rows(bad, blen, 2, 1.0f, NULL), 0.0f);
    cr_assert(memcmp(keep, a, sizeof a) == 0);
}

Test(common_dp, clip_strided_skips_padding)
{
    // 3 rows of 2 values in a stride of 4; padding must stay untouched.
    float m[12] = { 3, 4, 99, 99, 0, 0, 99, 99, 0, 0, 99, 99 };
    float nb;
    float f = fri_dp_clip_l2_strided(m, 3, 2, 4, 1.0f, &nb);
    cr_assert(fabs(nb - 5.0f) < 1e-6f);
    cr_assert(f > 0.199f && f <= 0.2f);
    cr_assert(fabs(m[0] - 0.6f) < 1e-5f && fabs(m[1] - 0.8f) < 1e-5f);
    cr_assert_eq(m[2], 99.0f);
    cr_assert_eq(m[7], 99.0f);
    cr_assert_eq(fri_dp_clip_l2_strided(m, 3, 4, 2, 1.0f, NULL), 0.0f);
    cr_assert_eq(m[2], 99.0f, "bad stride must not touch data");
}

Test(common_dp, clip_is_privacy_safe_on_bad_input)
{
    float v[3] = { 1, NAN, 2 };
    cr_assert_eq(fri_dp_clip_l2(v, 3, 1.0f, NULL), 0.0f);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(v[i], 0.0f);
    }
    float w[2] = { 1e30f, 1e30f }; // norm overflows float but not double
    fri_dp_clip_l2(w, 2, 1.0f, NULL);
    cr_assert(norm2(w, 2) <= 1.0 + 1e-6);
    float u[2] = { 0.1f, 0.1f };
    cr_assert_eq(fri_dp_clip_l2(u, 2, -1.0f, NULL), 0.0f);
    cr_assert_eq(u[0], 0.0f);
    float x[2] = { 0.1f, 0.1f };
    cr_assert_eq(fri_dp_clip_l2(x, 2, NAN, NULL), 0.0f);
    cr_assert_eq(x[1], 0.0f);
    cr_assert_eq(fri_dp_clip_l2(NULL, 0, 1.0f, NULL), 1.0f);
}

// ------------------------------------------------------------------- noise

// Sample mean and variance of n deviates of stddev s: the mean has standard
// error s/sqrt(n), the variance about s^2*sqrt(2/n); bounds of 5 standard
// errors fail with probability < 1e-6 for a random seed (the seeds here are
// fixed, so the test is deterministic).
static void
check_moments(const float *v, size_t n, double s)
{
    double m = 0, m2 = 0;
    for (size_t i = 0; i < n; i++) {
        m += v[i];
    }
    m /= (double) n;
    for (size_t i = 0; i < n; i++) {
        m2 += (v[i] - m) * (v[i] - m);
    }
    m2 /= (double) (n - 1);
    cr_assert(fabs(m) < 5.0 * s / sqrt((double) n), "mean %g", m);
    cr_assert(fabs(m2 - s * s) < 5.0 * s * s * sqrt(2.0 / (double) n),
              "var %g want %g", m2, s * s);
}

Test(common_dp, seeded_gaussian_moments_and_reproducible)
{
    enum { N = 200000 };
    static float v[N], w[N];
    fri_rng      r;
    fri_rng_seed(&r, 2024);
    cr_assert_eq(fri_dp_add_gaussian(v, N, 0.75, &r), FR_OK);
    check_moments(v, N, 0.75);
    fri_rng_seed(&r, 2024);
    cr_assert_eq(fri_dp_add_gaussian(w, N, 0.75, &r), FR_OK);
    cr_assert(memcmp(v, w, sizeof v) == 0);
    cr_assert_eq(fri_dp_add_gaussian(v, N, -1.0, &r), FR_EINVAL);
    cr_assert_eq(fri_dp_add_gaussian(v, N, NAN, &r), FR_EINVAL);
    cr_assert_eq(fri_dp_add_gaussian(NULL, 1, 1.0, &r), FR_EINVAL);
}

Test(common_dp, secret_gaussian_moments_and_seed_dependence)
{
    enum { N = 200001 }; // odd: the last Box-Muller pair is half used
    static float v[N], w[N], x[N];
    uint8_t      seed[FRI_DP_SEEDBYTES];
    for (size_t i = 0; i < sizeof seed; i++) {
        seed[i] = (uint8_t) (i * 7 + 1);
    }
    cr_assert_eq(fri_dp_add_gaussian_secret(v, N, 2.0, seed), FR_OK);
    check_moments(v, N, 2.0);
    cr_assert_eq(fri_dp_add_gaussian_secret(w, N, 2.0, seed), FR_OK);
    cr_assert(memcmp(v, w, sizeof v) == 0, "same seed, same noise");
    seed[31] ^= 1;
    cr_assert_eq(fri_dp_add_gaussian_secret(x, N, 2.0, seed), FR_OK);
    size_t same = 0;
    for (size_t i = 0; i < N; i++) {
        same += v[i] == x[i];
    }
    cr_assert_lt(same, 10u, "a different seed gives different noise");
    // Noise adds to the input; stddev 0 leaves it unchanged.
    float y[3] = { 1, 2, 3 };
    cr_assert_eq(fri_dp_add_gaussian_secret(y, 3, 0.0, seed), FR_OK);
    cr_assert(y[0] == 1 && y[1] == 2 && y[2] == 3);
    cr_assert_eq(fri_dp_add_gaussian_secret(y, 3, INFINITY, seed),
                 FR_EINVAL);
    uint8_t rs[FRI_DP_SEEDBYTES], rs2[FRI_DP_SEEDBYTES];
    cr_assert_eq(fri_dp_noise_seed_random(rs), FR_OK);
    cr_assert_eq(fri_dp_noise_seed_random(rs2), FR_OK);
    cr_assert(memcmp(rs, rs2, sizeof rs) != 0);
}

Test(common_dp, distributed_noise_sums_to_central)
{
    cr_assert_eq(fri_dp_distributed_stddev(2.0, 4), 1.0);
    cr_assert_eq(fri_dp_distributed_stddev(2.0, 0), 2.0);
    cr_assert_eq(fri_dp_distributed_stddev(3.0, 1), 3.0);
    // m clients each adding N(0, sigma^2/m): the sum has variance sigma^2.
    enum { M = 25, N = 20000 };
    static float sum[N];
    double       s = fri_dp_distributed_stddev(1.5, M);
    for (int c = 0; c < M; c++) {
        fri_rng r;
        fri_rng_seed2(&r, 77, (uint64_t) c);
        cr_assert_eq(fri_dp_add_gaussian(sum, N, s, &r), FR_OK);
    }
    check_moments(sum, N, 1.5);
}

// Discrete Gaussian N_Z(0, 100) from a fixed key: integer values, mean 0,
// variance 100 (the discrete variance is within 1e-40 of sigma^2 here),
// the two-sided tail beyond 3 sigma, P(0), symmetric.
Test(common_dp, discrete_gaussian_statistics)
{
    enum { N = 200000 };
    static int64_t z[N];
    uint8_t        seed[FRI_DP_SEEDBYTES];
    memset(seed, 0x42, sizeof seed);
    cr_assert_eq(fri_dp_discrete_gaussian(z, N, 100, seed), FR_OK);
    double s = 0, s2 = 0;
    size_t tail = 0, pos = 0, neg = 0, zero = 0;
    for (size_t i = 0; i < N; i++) {
        s += (double) z[i];
        s2 += (double) z[i] * (double) z[i];
        tail += z[i] > 30 || z[i] < -30;
        pos += z[i] > 0;
        neg += z[i] < 0;
        zero += z[i] == 0;
    }
    double mean = s / N, var = s2 / N - mean * mean;
    cr_log_info("mean %.4f var %.3f tail %zu zero %zu", mean, var, tail, zero);
    cr_assert(fabs(mean) < 5 * 10 / sqrt(N), "mean %f", mean); // 5 sigma
    // sd of the sample variance ~ sigma^2 sqrt(2/N) = 0.32.
    cr_assert(fabs(var - 100) < 1.6, "var %f", var);
    // P(|Z| >= 31) ~ P(|X| > 30.5) = 0.00229 (X continuous, 3.05 sigma):
    // 458 expected, binomial sd ~ 21.
    cr_assert(tail > 458 - 100 && tail < 458 + 100, "tail %zu", tail);
    // P(Z = 0) = 1 / sum exp(-k^2/200) = 0.0399.
    cr_assert(fabs((double) zero / N - 0.03989) < 0.0025, "zero %zu", zero);
    cr_assert(fabs((double) pos - (double) neg) < 5 * sqrt((double) N),
              "pos %zu neg %zu", pos, neg);
    // Same key, same samples; another key, others.
    static int64_t w[1000];
    cr_assert_eq(fri_dp_discrete_gaussian(w, 1000, 100, seed), FR_OK);
    cr_assert(memcmp(w, z, sizeof w) == 0);
    seed[0] ^= 1;
    cr_assert_eq(fri_dp_discrete_gaussian(w, 1000, 100, seed), FR_OK);
    cr_assert(memcmp(w, z, sizeof w) != 0);
    cr_assert_eq(fri_dp_discrete_gaussian(w, 10, 0, seed), FR_EINVAL);
    cr_assert_eq(fri_dp_discrete_gaussian(NULL, 10, 4, seed), FR_EINVAL);
}

// The noisy values lie exactly on the grid g = fri_dp_grid(sd): no
// floating-point residue of the sampler or of the input's low bits, in both
// the secret and the seeded mode; the noise has the requested spread.
Test(common_dp, noise_on_the_grid_with_requested_spread)
{
    enum { N = 50000 };
    static float v[N], orig[N];
    const double sd = 0.37;
    double       g  = fri_dp_grid(sd);
    cr_assert(g > 0 && sd / g >= 65536 && sd / g < 131072);
    for (int mode = 0; mode < 2; mode++) {
        for (size_t i = 0; i < N; i++) {
            orig[i] = v[i] = (float) (0.001 * (double) i - 7.3) / 3.0f;
        }
        if (mode == 0) {
            uint8_t seed[FRI_DP_SEEDBYTES];
            memset(seed, 7, sizeof seed);
            cr_assert_eq(fri_dp_add_gaussian_secret(v, N, sd, seed), FR_OK);
        } else {
            fri_rng r;
            fri_rng_seed(&r, 99);
            cr_assert_eq(fri_dp_add_gaussian(v, N, sd, &r), FR_OK);
        }
        double s = 0, s2 = 0;
        for (size_t i = 0; i < N; i++) {
            double q = (double) v[i] / g;
            cr_assert(q == nearbyint(q), "mode %d: value %zu off the grid", mode,
                      i);
            double e = (double) v[i] - nearbyint((double) orig[i] / g) * g;
            s += e;
            s2 += e * e;
        }
        double mean = s / N, var = s2 / N - mean * mean;
        cr_assert(fabs(mean) < 5 * sd / sqrt(N), "mode %d mean %f", mode,
                  mean);
        cr_assert(fabs(sqrt(var) / sd - 1) < 0.02, "mode %d sd %f", mode,
                  sqrt(var));
    }
}

// Known answers from the 128-bit sampler as first built with the compiler's
// unsigned __int128 (x86-64): every target, including 32-bit ones that use
// the two-word arithmetic, must draw exactly this noise from this seed.
// s2 = 2^40 and 2^44 take the rationals past 64 bits.
Test(common_dp, discrete_gaussian_known_answers_on_every_target)
{
    uint8_t seed[FRI_DP_SEEDBYTES];
    for (size_t i = 0; i < sizeof seed; i++) {
        seed[i] = (uint8_t) i;
    }
    static const uint64_t s2[3]   = {100, (uint64_t) 1 << 40,
                                     (uint64_t) 1 << 44};
    static const int64_t  want[3][6] = {
        {-16, -9, -2, -8, 12, -15},
        {-864306, -264640, -2454515, -534753, 33027, -1662450},
        {-6201896, 791743, -5868234, -490960, 1149646, -5697242},
    };
    for (int j = 0; j < 3; j++) {
        int64_t z[6];
        cr_assert_eq(fri_dp_discrete_gaussian(z, 6, s2[j], seed), FR_OK);
        for (int i = 0; i < 6; i++) {
            cr_assert_eq(z[i], want[j][i], "s2=%llu sample %d: %lld",
                         (unsigned long long) s2[j], i, (long long) z[i]);
        }
    }
}

// ---- statistics contributions (docs/DP.md, section 6) ----------------------

// The Gram counts once per rated item, the tail (sq, sum, count; not the
// user count) at FRI_DP_STATS_TAIL_SCALE.
Test(common_dp, stats_norm_counts_the_gram_per_item_and_scales_the_tail)
{
    float gram[3] = {3.0f, 0.0f, 4.0f}; // ||gram|| = 5
    float rows[2] = {1.0f, 2.0f};
    // VBMF ext: [E[u] (2) | ... | sq | 1 | sum | count]
    float  ext[6] = {0.0f, 0.0f, 16.0f, 1.0f, 32.0f, 48.0f};
    double n2     = fri_dp_stats_norm2(gram, 3, 4, rows, 2, ext, 6, 1);
    // 4 * 25 + 5 + (1 + 4 + 9) * 1 (scaled tail) + 1 (user count)
    cr_assert_float_eq(n2, 100.0 + 5.0 + 14.0 + 1.0, 1e-9, "%f", n2);
    cr_assert(fri_dp_stats_tail(2, 6, 1) && !fri_dp_stats_tail(3, 6, 1) &&
              fri_dp_stats_tail(5, 6, 1) && !fri_dp_stats_tail(1, 6, 1));
    // ALS ext: [sum | count], both tail.
    float als[2] = {16.0f, 16.0f};
    cr_assert_float_eq(fri_dp_stats_norm2(NULL, 0, 0, NULL, 0, als, 2, 0),
                       2.0, 1e-12);
    float bad[2] = {NAN, 1.0f};
    cr_assert(isinf(fri_dp_stats_norm2(NULL, 0, 0, NULL, 0, bad, 2, 0)));
}

// Worst case: a heavy device (many items, huge values) ends within the
// bound after one clip, scaled by one factor; non-finite input is zeroed.
Test(common_dp, stats_clip_bounds_the_worst_case)
{
    enum { GL = 66, N = 5000, D = 11, NE = 11 + 66 + 4 };
    static float gram[GL], rows[N * D], ext[NE];
    for (size_t t = 0; t < GL; t++) {
        gram[t] = 1e6f;
    }
    for (size_t t = 0; t < (size_t) N * D; t++) {
        rows[t] = (t % 2 ? -1.0f : 1.0f) * 3e5f;
    }
    for (size_t t = 0; t < NE; t++) {
        ext[t] = 1e7f;
    }
    const float g0 = gram[0], r0 = rows[0], e0 = ext[0];
    float       before = 0.0f;
    float f = fri_dp_stats_clip(gram, GL, N, rows, (size_t) N * D, ext, NE, 1,
                                2.5f, &before);
    cr_assert(f > 0.0f && f < 1e-6f, "factor %g", (double) f);
    cr_assert(before > 1e8f, "norm before %g", (double) before);
    double after = sqrt(fri_dp_stats_norm2(gram, GL, N, rows, (size_t) N * D,
                                           ext, NE, 1));
    cr_assert(after <= 2.5, "norm after %.9f", after);
    cr_assert(after > 2.5 * (1.0 - 1e-5), "norm after %.9f", after);
    cr_assert_float_eq(gram[0], g0 * f, 1e-6 * fabs(g0 * f));
    cr_assert_float_eq(rows[0], r0 * f, 1e-6 * fabs(r0 * f));
    cr_assert_float_eq(ext[0], e0 * f, 1e-6 * fabs(e0 * f));
    // Within the bound: untouched.
    float small[2] = {0.1f, 0.2f};
    cr_assert_eq(fri_dp_stats_clip(NULL, 0, 0, NULL, 0, small, 2, 0, 1.0f,
                                   NULL),
                 1.0f);
    cr_assert_eq(small[0], 0.1f);
    rows[7] = INFINITY;
    cr_assert_eq(fri_dp_stats_clip(gram, GL, N, rows, (size_t) N * D, ext, NE,
                                   1, 2.5f, NULL),
                 0.0f);
    cr_assert_eq(gram[0], 0.0f);
    cr_assert_eq(rows[7], 0.0f);
}

// The solve-side post-processing of noisy item Grams: items whose raters
// look like everyone's (true Gram = weight x the pooled shape) lose most
// of their noise; items that differ from it by far more than the noise
// keep their own Gram; non-finite input is left alone.
Test(common_dp, gram_shrink_removes_noise_where_items_look_alike)
{
    enum { D = 4, P = D * (D + 1) / 2, N = 400 };
    const double sd = 3.0;
    // A pooled shape per unit weight ([u; 1] outer products: last 1).
    const double unit[P] = {0.5, 0.1, -0.05, 0.2, 0.4, 0.05, -0.1,
                            0.3, 0.15, 1.0};
    fri_rng r;
    fri_rng_seed(&r, 77);
    double before[2] = {0, 0}, after[2] = {0, 0}, kept[2] = {0, 0};
    for (int i = 0; i < N; i++) {
        const int differs = i % 2; // half the items have their own shape
        const double c    = 50.0 + 450.0 * fri_rng_uniform(&r);
        double truth[P];
        float  g[P];
        for (size_t e = 0; e < P; e++) {
            truth[e] = c * unit[e];
            if (differs && e + 1 < P) {
                truth[e] += (e % 3 == 0 ? 1.0 : -0.5) * 10.0 * sd;
            }
            g[e] = (float) (truth[e] + sd * fri_rng_normal(&r));
        }
        for (size_t e = 0; e < P; e++) {
            before[differs] += (g[e] - truth[e]) * (g[e] - truth[e]);
        }
        kept[differs] += fri_dp_gram_shrink(g, D, unit, sd);
        for (size_t e = 0; e < P; e++) {
            after[differs] += (g[e] - truth[e]) * (g[e] - truth[e]);
        }
    }
    cr_log_info("alike: error %.1f -> %.1f (kept %.3f); differing: "
                "%.1f -> %.1f (kept %.3f)",
                before[0], after[0], kept[0] / (N / 2), before[1], after[1],
                kept[1] / (N / 2));
    cr_assert(after[0] < 0.25 * before[0], "alike %f -> %f", before[0],
              after[0]);
    cr_assert(kept[1] / (N / 2) > 0.9, "differing kept %f", kept[1]);
    cr_assert(after[1] < 1.05 * before[1], "differing %f -> %f", before[1],
              after[1]);
    // Non-finite: untouched, factor 1.
    float bad[P] = {NAN};
    cr_assert_eq(fri_dp_gram_shrink(bad, D, unit, sd), 1.0);
    cr_assert(isnan(bad[0]));
    cr_assert_eq(fri_dp_gram_shrink(NULL, D, unit, sd), 1.0);
}
