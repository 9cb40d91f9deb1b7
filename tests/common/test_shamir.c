#include <criterion/criterion.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "shamir.h"

static void
init(void)
{
    cr_assert_geq(sodium_init(), 0);
}

TestSuite(common_shamir, .init = init);

Test(common_shamir, field_inverse_and_primitive_polynomial)
{
    // Every non-zero element has an inverse ...
    for (uint32_t a = 1; a < 65536; a++) {
        cr_assert_eq(fri_gf16_mul((uint16_t)a, fri_gf16_inv((uint16_t)a)), 1,
            "a=%u", a);
    }
    // ... and x generates the whole multiplicative group (order 65535), so
    // the reduction polynomial is primitive, hence irreducible.
    uint16_t p = 1;
    for (uint32_t i = 1; i <= 65535; i++) {
        p = fri_gf16_mul(p, 2);
        if (i < 65535) {
            cr_assert_neq(p, 1, "order of x divides %u", i);
        }
    }
    cr_assert_eq(p, 1);
    cr_assert_eq(fri_gf16_mul(0x1234, 0), 0);
    cr_assert_eq(fri_gf16_mul(0x1234, 1), 0x1234);
}

Test(common_shamir, any_t_shares_recover_32_byte_secret)
{
    uint8_t secret[32], got[32], shares[10 * 32], pick[4 * 32];
    randombytes_buf(secret, sizeof secret);
    cr_assert_eq(
        fri_shamir_split(shares, sizeof shares, 10, 4, secret, 32, NULL),
        FR_OK);
    fri_rng r;
    fri_rng_seed(&r, 5);
    for (int trial = 0; trial < 200; trial++) {
        uint32_t idx[10];
        for (uint32_t i = 0; i < 10; i++) {
            idx[i] = i;
        }
        fri_rng_shuffle_u32(&r, idx, 10);
        uint32_t xs[4];
        for (int i = 0; i < 4; i++) {
            xs[i] = idx[i] + 1;
            memcpy(pick + 32 * i, shares + 32 * idx[i], 32);
        }
        cr_assert_eq(fri_shamir_combine(got, pick, xs, 4, 32), FR_OK);
        cr_assert(memcmp(got, secret, 32) == 0, "trial %d", trial);
    }
    // More than t shares also interpolate to the secret.
    uint32_t all[10];
    for (uint32_t i = 0; i < 10; i++) {
        all[i] = i + 1;
    }
    cr_assert_eq(fri_shamir_combine(got, shares, all, 10, 32), FR_OK);
    cr_assert(memcmp(got, secret, 32) == 0);
}

Test(common_shamir, t_minus_1_shares_leave_secret_undetermined)
{
    // One GF(2^16) element, t = 3. Two real shares plus a forged third at
    // x=3: as the forged value runs over all 65536 values, the combined
    // "secret" runs over all 65536 values exactly once. So two shares are
    // consistent with every secret equally (one polynomial each).
    uint8_t secret[2] = { 0xA7, 0x3C }, shares[5 * 2];
    cr_assert_eq(
        fri_shamir_split(shares, sizeof shares, 5, 3, secret, 2, NULL), FR_OK);
    uint8_t *hit = calloc(65536, 1);
    cr_assert_not_null(hit);
    uint8_t  set[3 * 2];
    uint32_t xs[3] = { 1, 2, 3 };
    memcpy(set, shares, 4);
    for (uint32_t f = 0; f < 65536; f++) {
        set[4] = (uint8_t)f;
        set[5] = (uint8_t)(f >> 8);
        uint8_t s2[2];
        cr_assert_eq(fri_shamir_combine(s2, set, xs, 3, 2), FR_OK);
        uint32_t v = s2[0] | (uint32_t)s2[1] << 8;
        cr_assert_eq(hit[v], 0, "secret %u reached twice", v);
        hit[v] = 1;
    }
    free(hit);
    // With the real third share the true secret comes out.
    uint8_t s3[2];
    memcpy(set + 4, shares + 4, 2);
    cr_assert_eq(fri_shamir_combine(s3, set, xs, 3, 2), FR_OK);
    cr_assert(memcmp(s3, secret, 2) == 0);
    // Two shares alone interpolate a line, not the secret (for this seed).
    fri_rng r;
    fri_rng_seed(&r, 11);
    uint8_t sec2[32], sh[5 * 32], got[32];
    randombytes_buf(sec2, sizeof sec2);
    cr_assert_eq(fri_shamir_split(sh, sizeof sh, 5, 3, sec2, 32, &r), FR_OK);
    cr_assert_eq(fri_shamir_combine(got, sh, xs, 2, 32), FR_OK);
    cr_assert(memcmp(got, sec2, 32) != 0);
}

Test(common_shamir, t_minus_1_shares_are_uniform)
{
    // Statistical view of the same property: for two very different
    // secrets, share 1 of a t=2 split is uniform over GF(2^16) (its low
    // byte histogram passes chi-square; df = 255, bound 400 has a
    // false-failure probability of 1.7e-8; fixed seed, deterministic).
    fri_rng r;
    fri_rng_seed(&r, 99);
    for (int s = 0; s < 2; s++) {
        uint8_t  secret[2] = { (uint8_t)(s ? 0xFF : 0), 0 };
        uint32_t hist[256] = { 0 };
        int      trials    = 1 << 16;
        for (int i = 0; i < trials; i++) {
            uint8_t sh[3 * 2];
            cr_assert_eq(
                fri_shamir_split(sh, sizeof sh, 3, 2, secret, 2, &r), FR_OK);
            hist[sh[0]]++;
        }
        double e = trials / 256.0, chi = 0;
        for (int b = 0; b < 256; b++) {
            chi += (hist[b] - e) * (hist[b] - e) / e;
        }
        cr_assert_lt(chi, 400.0, "secret %d chi2 %f", s, chi);
    }
}

Test(common_shamir, seeded_split_is_reproducible)
{
    uint8_t secret[32] = { 1, 2, 3 }, a[4 * 32], b[4 * 32];
    fri_rng r1, r2;
    fri_rng_seed(&r1, 3);
    fri_rng_seed(&r2, 3);
    cr_assert_eq(fri_shamir_split(a, sizeof a, 4, 2, secret, 32, &r1), FR_OK);
    cr_assert_eq(fri_shamir_split(b, sizeof b, 4, 2, secret, 32, &r2), FR_OK);
    cr_assert(memcmp(a, b, sizeof a) == 0);
}

Test(common_shamir, split_at_arbitrary_points)
{
    uint8_t  secret[32], sh[3 * 32], got[32];
    uint32_t xs[3] = { 700, 65535, 42 };
    randombytes_buf(secret, sizeof secret);
    cr_assert_eq(
        fri_shamir_split_at(sh, sizeof sh, xs, 3, 3, secret, 32, NULL), FR_OK);
    cr_assert_eq(fri_shamir_combine(got, sh, xs, 3, 32), FR_OK);
    cr_assert(memcmp(got, secret, 32) == 0);
}

Test(common_shamir, rejects_bad_arguments)
{
    uint8_t  secret[32] = { 0 }, sh[4 * 32], out[32];
    uint32_t dup[2] = { 3, 3 }, zero[2] = { 0, 1 }, big[2] = { 1, 65536 };
    cr_assert_eq(fri_shamir_split(sh, sizeof sh, 4, 5, secret, 32, NULL),
        FR_EINVAL); // t > n
    cr_assert_eq(
        fri_shamir_split(sh, sizeof sh, 4, 0, secret, 32, NULL), FR_EINVAL);
    cr_assert_eq(fri_shamir_split(sh, sizeof sh, 4, 2, secret, 31, NULL),
        FR_EINVAL); // odd length
    cr_assert_eq(fri_shamir_split(sh, sizeof sh - 1, 4, 2, secret, 32, NULL),
        FR_ENOSPC);
    cr_assert_eq(fri_shamir_split(sh, sizeof sh, 65536, 2, secret, 32, NULL),
        FR_EINVAL);
    cr_assert_eq(
        fri_shamir_split_at(sh, sizeof sh, dup, 2, 2, secret, 32, NULL),
        FR_EINVAL);
    cr_assert_eq(fri_shamir_combine(out, sh, dup, 2, 32), FR_EINVAL);
    cr_assert_eq(fri_shamir_combine(out, sh, zero, 2, 32), FR_EINVAL);
    cr_assert_eq(fri_shamir_combine(out, sh, big, 2, 32), FR_EINVAL);
    cr_assert_eq(fri_shamir_combine(out, sh, big, 0, 32), FR_EINVAL);
}

// The log-table Lagrange weights give the multiplication path's secret
// for random point sets, and refuse duplicate points the same way.
Test(shamir, tables_combine_equals_multiplication)
{
    fri_gf16_tables *gf = fri_gf16_tables_create();
    cr_assert_not_null(gf);
    fri_rng rng;
    fri_rng_seed(&rng, 42);
    for (int rep = 0; rep < 50; rep++) {
        uint8_t  secret[32], sh[60 * 32], a[32], b[32];
        uint32_t xs[60];
        uint32_t count = 2 + fri_rng_below(&rng, 58);
        for (uint32_t i = 0; i < count; i++) {
            int dup;
            do { // distinct points anywhere in 1..65535
                xs[i] = 1 + fri_rng_below(&rng, FRI_SHAMIR_MAX_X);
                dup   = 0;
                for (uint32_t j = 0; j < i; j++) {
                    dup |= xs[j] == xs[i];
                }
            } while (dup);
        }
        for (size_t e = 0; e < sizeof secret; e++) {
            secret[e] = (uint8_t)fri_rng_next(&rng);
        }
        cr_assert_eq(fri_shamir_split_at(sh, sizeof sh, xs, count, count,
                         secret, 32, &rng), FR_OK);
        cr_assert_eq(fri_shamir_combine(a, sh, xs, count, 32), FR_OK);
        cr_assert_eq(fri_shamir_combine_tab(gf, b, sh, xs, count, 32), FR_OK);
        cr_assert(memcmp(a, secret, 32) == 0);
        cr_assert(memcmp(b, secret, 32) == 0, "count %u", count);
    }
    uint8_t  sh[2 * 32] = { 0 }, out[32];
    uint32_t dup[2]     = { 7, 7 };
    cr_assert_eq(fri_shamir_combine_tab(gf, out, sh, dup, 2, 32), FR_EINVAL);
    fri_gf16_tables_destroy(gf);
}
