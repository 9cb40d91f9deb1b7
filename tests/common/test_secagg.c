#include <criterion/criterion.h>

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/secagg_round.h"
#include "rng.h"
#include "secagg.h"
#include "shamir.h"

static void
init(void)
{
    cr_assert_geq(sodium_init(), 0);
}

TestSuite(common_secagg, .init = init);

// ---------------------------------------------------------------------------
// Fixed point

Test(common_secagg, quantize_round_trip_within_half_step)
{
    const float    clips[2] = { 2.0f, 0.04f };
    const unsigned fracs[2] = { 8, 14 };
    fri_rng        r;
    fri_rng_seed(&r, 1);
    for (int c = 0; c < 2; c++) {
        enum { N = 5000 };
        static float    in[N], out[N];
        static uint32_t q[N];
        for (int i = 0; i < N; i++) {
            in[i] = (float)((fri_rng_uniform(&r) * 2 - 1) * clips[c]);
        }
        cr_assert_eq(
            fri_secagg_quantize(q, in, N, clips[c], fracs[c], NULL), FR_OK);
        cr_assert_eq(fri_secagg_dequantize(out, q, N, fracs[c], 1), FR_OK);
        double half = ldexp(1.0, -(int)fracs[c] - 1);
        for (int i = 0; i < N; i++) {
            // Half a step, plus float rounding of the decoded value.
            double tol = half + ldexp(fabs((double)in[i]), -23);
            cr_assert_leq(fabs((double)out[i] - in[i]), tol, "%d: %g vs %g", i,
                in[i], out[i]);
        }
    }
}

Test(common_secagg, quantize_clips_and_wraps_negative)
{
    float    in[6] = { 5.0f, -5.0f, INFINITY, -INFINITY, -0.5f, 0.0f };
    uint32_t q[6];
    float    out[6];
    cr_assert_eq(fri_secagg_quantize(q, in, 6, 2.0f, 8, NULL), FR_OK);
    cr_assert_eq(q[0], 512u);
    cr_assert_eq(q[1], (uint32_t)-512);
    cr_assert_eq(q[2], 512u);
    cr_assert_eq(q[3], (uint32_t)-512);
    cr_assert_eq(q[4], (uint32_t)-128);
    cr_assert_eq(q[5], 0u);
    cr_assert_eq(fri_secagg_dequantize(out, q, 6, 8, 1), FR_OK);
    cr_assert_float_eq(out[0], 2.0f, 0);
    cr_assert_float_eq(out[1], -2.0f, 0);
    cr_assert_float_eq(out[4], -0.5f, 0);
    // Mean of two summands.
    uint32_t s = (uint32_t)-512 + (uint32_t)-128;
    cr_assert_eq(fri_secagg_dequantize(out, &s, 1, 8, 2), FR_OK);
    cr_assert_float_eq(out[0], -1.25f, 0);
    // Ties round away from zero, deterministically.
    float t[2] = { 1.5f / 256, -1.5f / 256 };
    cr_assert_eq(fri_secagg_quantize(q, t, 2, 2.0f, 8, NULL), FR_OK);
    cr_assert_eq(q[0], 2u);
    cr_assert_eq(q[1], (uint32_t)-2);
}

Test(common_secagg, quantize_rejects_bad_input)
{
    float    nan = NAN, one = 1.0f;
    uint32_t q;
    cr_assert_eq(fri_secagg_quantize(&q, &nan, 1, 2.0f, 8, NULL), FR_EINVAL);
    cr_assert_eq(fri_secagg_quantize(&q, &one, 1, 0.0f, 8, NULL), FR_EINVAL);
    cr_assert_eq(fri_secagg_quantize(&q, &one, 1, NAN, 8, NULL), FR_EINVAL);
    cr_assert_eq(fri_secagg_quantize(&q, &one, 1, 2.0f, 31, NULL), FR_EINVAL);
    cr_assert_eq(fri_secagg_quantize(&q, &one, 1, 4.0f, 30, NULL), FR_EINVAL);
    cr_assert_eq(fri_secagg_dequantize(&one, &q, 1, 8, 0), FR_EINVAL);
}

Test(common_secagg, stochastic_rounding_is_unbiased_and_bounded)
{
    fri_rng r;
    fri_rng_seed(&r, 2);
    float    x = 0.3f / 256; // 0.3 of a step
    uint32_t q;
    long     ones = 0;
    for (int i = 0; i < 20000; i++) {
        cr_assert_eq(fri_secagg_quantize(&q, &x, 1, 2.0f, 8, &r), FR_OK);
        cr_assert(q == 0 || q == 1);
        ones += q;
    }
    // Binomial(20000, 0.3): sd 65; 6 sd margin.
    cr_assert(labs(ones - 6000) < 390, "ones=%ld", ones);
    // At the clip the result never exceeds ceil(clip * 2^f).
    float c = 0.04f;
    for (int i = 0; i < 1000; i++) {
        cr_assert_eq(fri_secagg_quantize(&q, &c, 1, 0.04f, 14, &r), FR_OK);
        cr_assert(q == 655 || q == 656, "q=%u", q);
    }
}

Test(common_secagg, max_cohort)
{
    // 2 * 2^8 = 512 per summand: n * 512 <= 2^31 - 1.
    cr_assert_eq(fri_secagg_max_cohort(2.0f, 8), 4194303u);
    // 0.04 * 2^14 = 655.36, rounded values reach 656.
    cr_assert_eq(fri_secagg_max_cohort(0.04f, 14), 3273603u);
    cr_assert_eq(fri_secagg_max_cohort(0.0f, 8), 0u);
    // The bound is tight: max_cohort summands at +clip stay positive.
    uint32_t n = fri_secagg_max_cohort(2.0f, 8), s = 0;
    s = (uint32_t)((uint64_t)n * 512u);
    float out;
    cr_assert_eq(fri_secagg_dequantize(&out, &s, 1, 8, 1), FR_OK);
    cr_assert_gt(out, 0.0f);
    s = (uint32_t)((uint64_t)(n + 1) * 512u); // one more wraps
    cr_assert_eq(fri_secagg_dequantize(&out, &s, 1, 8, 1), FR_OK);
    cr_assert_lt(out, 0.0f);
}

// ---------------------------------------------------------------------------
// Keys, adverts, seeds

static void
seeded_keys(fri_secagg_keys *k, uint8_t tag)
{
    uint8_t seed[32];
    memset(seed, tag, sizeof seed);
    cr_assert_eq(fri_secagg_keygen(k, seed), FR_OK);
}

Test(common_secagg, advert_verify_and_forgeries)
{
    uint8_t id_pk[32], id_sk[64], ev_pk[32], ev_sk[64];
    crypto_sign_keypair(id_pk, id_sk);
    crypto_sign_keypair(ev_pk, ev_sk);
    fri_secagg_keys k;
    cr_assert_eq(fri_secagg_keygen(&k, NULL), FR_OK);
    fri_secagg_advert a, b;
    uint8_t           bseed[32] = { 4 }, commit[FRI_SECAGG_COMMITBYTES];
    fri_secagg_seed_commit(commit, bseed, 7, 3);
    cr_assert_eq(fri_secagg_advert_sign(&a, 7, 3, k.c_pk, k.s_pk, commit, id_sk),
        FR_OK);
    cr_assert_eq(fri_secagg_advert_verify(&a, 7, 3, id_pk), FR_OK);
    // Replay into another round, or as another client.
    cr_assert_eq(fri_secagg_advert_verify(&a, 8, 3, id_pk), FR_ECRYPTO);
    cr_assert_eq(fri_secagg_advert_verify(&a, 7, 4, id_pk), FR_ECRYPTO);
    b          = a;
    b.round_id = 8; // relabelled replay: signature no longer matches
    cr_assert_eq(fri_secagg_advert_verify(&b, 8, 3, id_pk), FR_ECRYPTO);
    // Every single bit flip of the signed content or signature.
    uint8_t wire[FRI_SECAGG_ADVERTBYTES], flip[FRI_SECAGG_ADVERTBYTES];
    size_t  len = 0;
    cr_assert_eq(fri_secagg_advert_encode(wire, sizeof wire, &len, &a), FR_OK);
    cr_assert_eq(len, FRI_SECAGG_ADVERTBYTES);
    for (size_t bit = 0; bit < 8 * sizeof wire; bit++) {
        memcpy(flip, wire, sizeof wire);
        flip[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        cr_assert_eq(fri_secagg_advert_decode(&b, flip, sizeof flip), FR_OK);
        cr_assert_eq(fri_secagg_advert_verify(&b, 7, 3, id_pk), FR_ECRYPTO,
            "bit %zu", bit);
    }
    cr_assert_eq(fri_secagg_advert_decode(&b, wire, sizeof wire), FR_OK);
    cr_assert_eq(fri_secagg_advert_verify(&b, 7, 3, id_pk), FR_OK);
    cr_assert_eq(
        fri_secagg_advert_decode(&b, wire, sizeof wire - 1), FR_EPROTO);
    cr_assert_eq(
        fri_secagg_advert_encode(wire, sizeof wire - 1, &len, &a), FR_ENOSPC);
    // Wrong signer: the adversary signs the same keys with its own key.
    cr_assert_eq(
        fri_secagg_advert_sign(&b, 7, 3, k.c_pk, k.s_pk, commit, ev_sk), FR_OK);
    cr_assert_eq(fri_secagg_advert_verify(&b, 7, 3, id_pk), FR_ECRYPTO);
    cr_assert_eq(fri_secagg_advert_verify(&b, 7, 3, ev_pk), FR_OK);
    fri_secagg_keys_wipe(&k);
    cr_assert(sodium_is_zero((const unsigned char *)&k, sizeof k));
}

// Verified reconstruction: a wrong share among more than t is routed
// around (the result matches the commitment), two wrong ones too; with
// exactly t shares, or too many wrong ones, FR_ECRYPTO and a zeroed out.
Test(common_secagg, recover_checks_and_routes_around_wrong_shares)
{
    uint8_t  b[32], got[32], commit[32];
    uint8_t  sh[12 * 32];
    uint32_t xs[12];
    for (int i = 0; i < 32; i++) {
        b[i] = (uint8_t)(7 * i + 1);
    }
    for (uint32_t i = 0; i < 12; i++) {
        xs[i] = 3 * i + 2;
    }
    const size_t t = 7;
    // Every other call with the public-value tables: same results.
    fri_gf16_tables *gf = fri_gf16_tables_create();
    cr_assert_not_null(gf);
    cr_assert_eq(fri_shamir_split_at(sh, sizeof sh, xs, 12, t, b, 32, NULL),
        FR_OK);
    fri_secagg_seed_commit(commit, b, 11, 4);
    fri_secagg_seed_check ck = { commit, 11, 4 };
    size_t                tries;
    cr_assert_eq(fri_secagg_recover(got, sh, xs, 12, t, fri_secagg_check_seed,
                     &ck, 1, 64, &tries, NULL),
        FR_OK);
    cr_assert_eq(tries, 1);
    cr_assert(memcmp(got, b, 32) == 0);
    // Another round or client: the commitment does not match.
    fri_secagg_seed_check other = { commit, 12, 4 };
    cr_assert_eq(fri_secagg_recover(got, sh, xs, 12, t, fri_secagg_check_seed,
                     &other, 1, 64, &tries, gf),
        FR_ECRYPTO);
    cr_assert(sodium_is_zero(got, 32));
    // One wrong share in the first subset: found on a later window.
    sh[2 * 32 + 5] ^= 1;
    cr_assert_eq(fri_secagg_recover(got, sh, xs, 12, t, fri_secagg_check_seed,
                     &ck, 1, 64, &tries, NULL),
        FR_OK);
    cr_assert(tries > 1);
    cr_assert(memcmp(got, b, 32) == 0);
    // A second wrong share far from the first: random subsets find it.
    sh[8 * 32 + 0] ^= 0x80;
    cr_assert_eq(fri_secagg_recover(got, sh, xs, 12, t, fri_secagg_check_seed,
                     &ck, 1, 256, &tries, gf),
        FR_OK);
    cr_assert(memcmp(got, b, 32) == 0);
    // Exactly t shares with one wrong: nothing to fall back on.
    cr_assert_eq(fri_secagg_recover(got, sh, xs, t, t, fri_secagg_check_seed,
                     &ck, 1, 256, &tries, NULL),
        FR_ECRYPTO);
    cr_assert_eq(tries, 1);
    cr_assert(sodium_is_zero(got, 32));
    // Six of twelve wrong (only 6 < t right): never accepted.
    for (int i = 0; i < 6; i++) {
        sh[(size_t)(2 * i) * 32 + 9] ^= 0x11;
    }
    cr_assert_eq(fri_secagg_recover(got, sh, xs, 12, t, fri_secagg_check_seed,
                     &ck, 1, 256, &tries, gf),
        FR_ECRYPTO);
    cr_assert_eq(fri_secagg_recover(got, sh, xs, 6, t, fri_secagg_check_seed,
                     &ck, 1, 256, &tries, NULL),
        FR_ESTATE);
    // The mask-key check: c_sk against its public key.
    fri_secagg_keys k;
    seeded_keys(&k, 3);
    uint32_t kx[5] = { 1, 2, 3, 4, 5 };
    uint8_t  ksh[5 * 32];
    cr_assert_eq(
        fri_shamir_split_at(ksh, sizeof ksh, kx, 5, 3, k.c_sk, 32, NULL), FR_OK);
    ksh[10] ^= 1; // not a clamped bit: a distinct public key
    cr_assert_eq(fri_secagg_recover(got, ksh, kx, 5, 3, fri_secagg_check_sk,
                     k.c_pk, 1, 16, &tries, gf),
        FR_OK);
    cr_assert(memcmp(got, k.c_sk, 32) == 0);
    fri_secagg_keys_wipe(&k);
    fri_gf16_tables_destroy(gf);
}

Test(common_secagg, pair_seed_is_symmetric_and_rejects_low_order)
{
    fri_secagg_keys a, b;
    seeded_keys(&a, 1);
    seeded_keys(&b, 2);
    uint8_t sab[32], sba[32], s2[32], zero[32] = { 0 };
    cr_assert_eq(fri_secagg_pair_seed(sab, a.c_sk, b.c_pk, 5, 0, 9), FR_OK);
    cr_assert_eq(fri_secagg_pair_seed(sba, b.c_sk, a.c_pk, 5, 9, 0), FR_OK);
    cr_assert(memcmp(sab, sba, 32) == 0);
    cr_assert_eq(fri_secagg_pair_seed(s2, a.c_sk, b.c_pk, 6, 0, 9), FR_OK);
    cr_assert(memcmp(sab, s2, 32) != 0, "round id must change the seed");
    cr_assert_eq(fri_secagg_pair_seed(s2, a.c_sk, zero, 5, 0, 9), FR_ECRYPTO);
    cr_assert_eq(fri_secagg_pair_seed(s2, a.c_sk, b.c_pk, 5, 4, 4), FR_EINVAL);
}

Test(common_secagg, prg_is_a_stream)
{
    uint8_t   seed[32] = { 9 };
    uint32_t *a = malloc(5000 * 4), *b = malloc(5000 * 4);
    cr_assert(a && b);
    cr_assert_eq(fri_secagg_prg(a, 5000, seed), FR_OK);
    cr_assert_eq(fri_secagg_prg(b, 1501, seed), FR_OK);
    cr_assert(memcmp(a, b, 1501 * 4) == 0);
    memset(b, 0, 5000 * 4);
    cr_assert_eq(fri_secagg_prg_add(b, 5000, seed, 1), FR_OK);
    cr_assert(memcmp(a, b, 5000 * 4) == 0);
    cr_assert_eq(fri_secagg_prg_add(b, 5000, seed, -1), FR_OK);
    for (int i = 0; i < 5000; i++) {
        cr_assert_eq(b[i], 0u);
    }
    free(a);
    free(b);
}

Test(common_secagg, share_seal_binds_round_and_parties)
{
    fri_secagg_keys u, v, w;
    seeded_keys(&u, 3);
    seeded_keys(&v, 4);
    seeded_keys(&w, 5);
    uint8_t msg[FRI_SECAGG_SHAREMSGBYTES], got[FRI_SECAGG_SHAREMSGBYTES];
    uint8_t box[FRI_SECAGG_SEALEDBYTES];
    size_t  len = 0, glen = 0;
    randombytes_buf(msg, sizeof msg);
    cr_assert_eq(fri_secagg_share_seal(box, sizeof box, &len, msg, sizeof msg,
                     11, 1, 2, u.s_sk, v.s_pk),
        FR_OK);
    cr_assert_eq(len, FRI_SECAGG_SEALEDBYTES);
    cr_assert_eq(fri_secagg_share_open(got, sizeof got, &glen, box, len, 11, 1,
                     2, v.s_sk, u.s_pk),
        FR_OK);
    cr_assert_eq(glen, sizeof msg);
    cr_assert(memcmp(got, msg, sizeof msg) == 0);
    // Other round, swapped direction, other receiver index, wrong key.
    cr_assert_eq(fri_secagg_share_open(got, sizeof got, &glen, box, len, 12, 1,
                     2, v.s_sk, u.s_pk),
        FR_ECRYPTO);
    cr_assert_eq(fri_secagg_share_open(got, sizeof got, &glen, box, len, 11, 2,
                     1, v.s_sk, u.s_pk),
        FR_ECRYPTO);
    cr_assert_eq(fri_secagg_share_open(got, sizeof got, &glen, box, len, 11, 1,
                     3, v.s_sk, u.s_pk),
        FR_ECRYPTO);
    cr_assert_eq(fri_secagg_share_open(got, sizeof got, &glen, box, len, 11, 1,
                     2, w.s_sk, u.s_pk),
        FR_ECRYPTO);
    for (size_t i = 0; i < len; i += 7) {
        box[i] ^= 0x10;
        cr_assert_eq(fri_secagg_share_open(got, sizeof got, &glen, box, len,
                         11, 1, 2, v.s_sk, u.s_pk),
            FR_ECRYPTO, "byte %zu", i);
        box[i] ^= 0x10;
    }
    cr_assert_eq(fri_secagg_share_open(got, sizeof got, &glen, box, 39, 11, 1,
                     2, v.s_sk, u.s_pk),
        FR_EPROTO);
    // Precomputed keys agree at both ends and interoperate.
    uint8_t ku[32], kv[32];
    cr_assert_eq(fri_secagg_share_key(ku, u.s_sk, v.s_pk, 11), FR_OK);
    cr_assert_eq(fri_secagg_share_key(kv, v.s_sk, u.s_pk, 11), FR_OK);
    cr_assert(memcmp(ku, kv, 32) == 0);
    cr_assert_eq(fri_secagg_share_open_k(
                     got, sizeof got, &glen, box, len, 11, 1, 2, kv),
        FR_OK);
    cr_assert_eq(fri_secagg_share_seal_k(
                     box, sizeof box, &len, msg, sizeof msg, 11, 2, 1, kv),
        FR_OK);
    cr_assert_eq(fri_secagg_share_open(got, sizeof got, &glen, box, len, 11, 2,
                     1, u.s_sk, v.s_pk),
        FR_OK);
    cr_assert(memcmp(got, msg, sizeof msg) == 0);
    cr_assert_eq(fri_secagg_share_seal(box, sizeof box - 1, &len, msg,
                     sizeof msg, 11, 1, 2, u.s_sk, v.s_pk),
        FR_ENOSPC);
}

// ---------------------------------------------------------------------------
// Masking and unmasking with the bare API

// n clients, complete graph, no dropout: sum of masked vectors minus the
// self masks equals the plain sum exactly (pair masks cancel).
static void
masked_sum_equals_plain(uint32_t n, size_t d)
{
    fri_rng r;
    fri_rng_seed(&r, n);
    fri_secagg_keys *k     = calloc(n, sizeof *k);
    uint8_t         *c_pk  = malloc((size_t)n * 32);
    uint8_t         *pk    = malloc((size_t)n * 32);
    uint8_t         *b     = malloc((size_t)n * 32);
    uint32_t        *peers = malloc((size_t)n * 4);
    uint32_t        *idx   = malloc((size_t)n * 4);
    uint32_t        *x = malloc(d * 4), *y = malloc(d * 4);
    uint32_t        *plain = calloc(d, 4), *sum = calloc(d, 4);
    cr_assert(k && c_pk && pk && b && peers && idx && x && y && plain && sum);
    for (uint32_t u = 0; u < n; u++) {
        cr_assert_eq(fri_secagg_keygen(&k[u], NULL), FR_OK);
        memcpy(c_pk + 32 * u, k[u].c_pk, 32);
        randombytes_buf(b + 32 * u, 32);
        idx[u] = u;
    }
    for (uint32_t u = 0; u < n; u++) {
        size_t np = 0;
        for (uint32_t v = 0; v < n; v++) {
            if (v != u) {
                peers[np] = v;
                memcpy(pk + 32 * np, c_pk + 32 * v, 32);
                np++;
            }
        }
        for (size_t i = 0; i < d; i++) {
            x[i] = (uint32_t)fri_rng_next(&r);
            plain[i] += x[i];
        }
        cr_assert_eq(fri_secagg_mask(
                         y, x, d, u, peers, pk, np, k[u].c_sk, b + 32 * u, 77),
            FR_OK);
        cr_assert(memcmp(x, y, d * 4) != 0);
        for (size_t i = 0; i < d; i++) {
            sum[i] += y[i];
        }
    }
    cr_assert(memcmp(sum, plain, d * 4) != 0);
    fri_secagg_unmask_input in = { .round_id = 77,
        .survivors                           = idx,
        .survivor_c_pk                       = c_pk,
        .survivor_b                          = b,
        .n_survivors                         = n };
    cr_assert_eq(fri_secagg_unmask(sum, d, &in), FR_OK);
    cr_assert(memcmp(sum, plain, d * 4) == 0, "n=%u: sum differs", n);
    for (uint32_t u = 0; u < n; u++) {
        fri_secagg_keys_wipe(&k[u]);
    }
    free(k);
    free(c_pk);
    free(pk);
    free(b);
    free(peers);
    free(idx);
    free(x);
    free(y);
    free(plain);
    free(sum);
}

Test(common_secagg, masked_sum_equals_plain_sum_n10)
{
    masked_sum_equals_plain(10, 1000);
}

Test(common_secagg, masked_sum_equals_plain_sum_n50)
{
    masked_sum_equals_plain(50, 1000);
}

static double
chi2_bytes(const uint32_t *w, size_t n)
{
    uint64_t hist[256] = { 0 };
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < 4; j++) {
            hist[(w[i] >> (8 * j)) & 0xFF]++;
        }
    }
    double e = (double)n * 4 / 256, chi = 0;
    for (int i = 0; i < 256; i++) {
        chi += ((double)hist[i] - e) * ((double)hist[i] - e) / e;
    }
    return chi;
}

static double
chi2_nibbles_top(const uint32_t *w, size_t n)
{
    uint64_t hist[16] = { 0 };
    for (size_t i = 0; i < n; i++) {
        hist[w[i] >> 28]++;
    }
    double e = (double)n / 16, chi = 0;
    for (int i = 0; i < 16; i++) {
        chi += ((double)hist[i] - e) * ((double)hist[i] - e) / e;
    }
    return chi;
}

Test(common_secagg, masked_update_looks_uniform)
{
    // 2^16 words of a highly structured update (quantized constant 0.5),
    // masked by client 2 of 4 with fixed keys and self-mask seed.
    // Byte histogram: chi-square with 255 df, bound 400, false-failure
    // probability 1.7e-8. Top nibble: 15 df, bound 55, 1.8e-6.
    enum { D = 1 << 16 };
    uint32_t       *x = malloc(D * 4), *y = malloc(D * 4);
    fri_secagg_keys k[4];
    for (int i = 0; i < 4; i++) {
        seeded_keys(&k[i], (uint8_t)(40 + i));
    }
    uint32_t peers[3] = { 0, 1, 3 };
    uint8_t  pk[3 * 32], b[32];
    memcpy(pk, k[0].c_pk, 32);
    memcpy(pk + 32, k[1].c_pk, 32);
    memcpy(pk + 64, k[3].c_pk, 32);
    memset(b, 0x5A, sizeof b);
    float half = 0.5f;
    for (int i = 0; i < D; i++) {
        cr_assert_eq(
            fri_secagg_quantize(&x[i], &half, 1, 2.0f, 8, NULL), FR_OK);
    }
    // Control: the plain vector is maximally non-uniform.
    cr_assert_gt(chi2_bytes(x, D), 1e5);
    cr_assert_eq(
        fri_secagg_mask(y, x, D, 2, peers, pk, 3, k[2].c_sk, b, 1), FR_OK);
    double cb = chi2_bytes(y, D), cn = chi2_nibbles_top(y, D);
    cr_assert_lt(cb, 400.0, "byte chi2 %f", cb);
    cr_assert_lt(cn, 55.0, "nibble chi2 %f", cn);
    free(x);
    free(y);
}

Test(common_secagg, unmask_rejects_duplicate_clients)
{
    uint32_t                s[2]   = { 1, 1 };
    uint8_t                 pk[64] = { 0 }, b[64] = { 0 };
    uint32_t                sum[4] = { 0 };
    fri_secagg_unmask_input in     = {
            .survivors = s, .survivor_c_pk = pk, .survivor_b = b, .n_survivors = 2
    };
    cr_assert_eq(fri_secagg_unmask(sum, 4, &in), FR_EINVAL);
    fri_secagg_graph g = { .n_clients = 1, .degree = 0 };
    s[1]               = 0;
    in.graph           = &g; // index 1 out of range for one client
    cr_assert_eq(fri_secagg_unmask(sum, 4, &in), FR_EINVAL);
}

// ---------------------------------------------------------------------------
// Round driver: dropout recovery

static void
run_round(uint32_t n, uint32_t degree, double drop_frac, uint32_t n_silent,
    size_t d, uint64_t seed)
{
    fri_secagg_round_config cfg;
    fri_secagg_round_config_init(&cfg);
    cfg.n_clients       = n;
    cfg.degree          = degree;
    cfg.dim             = d;
    cfg.seed            = seed;
    cfg.round_id        = 1000 + seed;
    fri_secagg_round *r = NULL;
    cr_assert_eq(fri_secagg_round_create(&r, &cfg), FR_OK);
    fri_rng rng;
    fri_rng_seed(&rng, seed);
    uint32_t *order = malloc(n * 4);
    uint32_t *x = malloc(d * 4), *plain = calloc(d, 4), *got = malloc(d * 4);
    cr_assert(order && x && plain && got);
    for (uint32_t i = 0; i < n; i++) {
        order[i] = i;
    }
    fri_rng_shuffle_u32(&rng, order, n);
    uint32_t n_drop = (uint32_t)(drop_frac * n);
    // order[0..n_drop) drop before sending their masked vector.
    for (uint32_t i = n_drop; i < n; i++) {
        float v[64];
        for (size_t j = 0; j < d; j += 64) {
            size_t m = d - j < 64 ? d - j : 64;
            for (size_t l = 0; l < m; l++) {
                v[l] = (float)(fri_rng_normal(&rng) * 0.5);
            }
            cr_assert_eq(
                fri_secagg_quantize(x + j, v, m, 2.0f, 8, NULL), FR_OK);
        }
        for (size_t j = 0; j < d; j++) {
            plain[j] += x[j];
        }
        cr_assert_eq(fri_secagg_round_submit(r, order[i], x), FR_OK);
    }
    cr_assert_eq(fri_secagg_round_submit(r, order[n - 1], x), FR_EDUP);
    // A few survivors go silent after sending their masked vector.
    for (uint32_t i = 0; i < n_silent; i++) {
        cr_assert_eq(fri_secagg_round_go_silent(r, order[n_drop + i]), FR_OK);
    }
    uint32_t ns = 0;
    cr_assert_eq(fri_secagg_round_finish(r, got, d, &ns), FR_OK);
    cr_assert_eq(ns, n - n_drop);
    cr_assert(memcmp(got, plain, d * 4) == 0, "sum not exact");
    float mean[4];
    cr_assert_eq(fri_secagg_dequantize(mean, got, 4, 8, ns), FR_OK);
    for (int i = 0; i < 4; i++) {
        cr_assert(fabsf(mean[i]) < 2.0f);
    }
    fri_secagg_round_destroy(r);
    free(order);
    free(x);
    free(plain);
    free(got);
}

Test(common_secagg, round_exact_with_30pct_dropout_complete_graph)
{
    run_round(50, 0, 0.30, 2, 1000, 1);
}

Test(common_secagg, round_exact_without_dropout_n10)
{
    run_round(10, 0, 0.0, 0, 1000, 2);
}

Test(common_secagg, round_fails_cleanly_below_threshold)
{
    fri_secagg_round_config cfg;
    fri_secagg_round_config_init(&cfg);
    cfg.n_clients       = 6;
    cfg.dim             = 16;
    fri_secagg_round *r = NULL;
    cr_assert_eq(fri_secagg_round_create(&r, &cfg), FR_OK);
    uint32_t x[16] = { 0 }, out[16];
    // t = 3 of 5 holders; only two clients respond.
    cr_assert_eq(fri_secagg_round_submit(r, 0, x), FR_OK);
    cr_assert_eq(fri_secagg_round_submit(r, 1, x), FR_OK);
    cr_assert_eq(fri_secagg_round_finish(r, out, 16, NULL), FR_ESTATE);
    cr_assert_eq(fri_secagg_round_finish(r, out, 16, NULL), FR_ESTATE);
    fri_secagg_round_destroy(r);
    fri_secagg_round_destroy(NULL);
    cfg.threshold = 6; // more than the 5 holders
    cr_assert_eq(fri_secagg_round_create(&r, &cfg), FR_EINVAL);
    cr_assert_null(r);
}

// ---------------------------------------------------------------------------
// SecAgg+ graph

Test(common_secagg, neighbor_graph_is_symmetric_regular)
{
    uint8_t  seed[32]   = { 1, 2, 3 };
    uint32_t cases[][2] = { { 120, 0 }, { 100, 7 }, { 1000, 0 }, { 9, 8 } };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint32_t  n   = cases[c][0];
        uint32_t  deg = cases[c][1] ? cases[c][1] : fri_secagg_plus_degree(n);
        uint32_t  k   = fri_secagg_graph_degree(n, deg);
        uint8_t  *adj = calloc((size_t)n * n, 1);
        uint32_t *nb  = malloc(n * 4);
        cr_assert(adj && nb);
        for (uint32_t u = 0; u < n; u++) {
            size_t got = 0;
            cr_assert_eq(
                fri_secagg_neighbors(nb, n, &got, u, n, deg, seed), FR_OK);
            cr_assert_eq(got, k, "n=%u u=%u", n, u);
            for (size_t i = 0; i < got; i++) {
                cr_assert_neq(nb[i], u);
                cr_assert_lt(nb[i], n);
                if (i > 0) {
                    cr_assert_lt(nb[i - 1], nb[i], "sorted, no duplicates");
                }
                adj[(size_t)u * n + nb[i]] = 1;
            }
        }
        // The O(1) adjacency from ring positions agrees with the lists.
        // The O(1) adjacency from ring positions agrees with the lists,
        // and the neighbour slots are a bijection onto [0, k).
        uint32_t *pos = malloc(n * 4), *perm = malloc(n * 4);
        uint8_t  *used = malloc(k + 1);
        cr_assert(pos && perm && used);
        cr_assert_eq(fri_secagg_ring_positions(pos, perm, n, seed), FR_OK);
        for (uint32_t u = 0; u < n; u++) {
            memset(used, 0, k + 1);
            for (uint32_t v = 0; v < n; v++) {
                cr_assert_eq(adj[(size_t)u * n + v], adj[(size_t)v * n + u]);
                cr_assert_eq(fri_secagg_ring_adjacent(pos, n, deg, u, v),
                             adj[(size_t)u * n + v] != 0,
                             "n=%u deg=%u u=%u v=%u", n, deg, u, v);
                if (adj[(size_t)u * n + v]) {
                    uint32_t sl = fri_secagg_ring_slot(pos, n, deg, u, v);
                    cr_assert_lt(sl, k);
                    cr_assert(!used[sl], "slot %u twice", sl);
                    used[sl] = 1;
                    cr_assert_eq(fri_secagg_ring_peer(perm, pos, n, deg, u, sl),
                                 v);
                }
            }
        }
        free(used);
        free(perm);
        free(pos);
        free(adj);
        free(nb);
    }
    cr_assert(!fri_secagg_ring_adjacent(NULL, 5, 4, 1, 5), "out of range");
    cr_assert_eq(fri_secagg_plus_degree(120), 70u);
    cr_assert_eq(fri_secagg_plus_degree(1024), 100u);
    cr_assert_eq(fri_secagg_plus_degree(1000), 100u);
    cr_assert_eq(fri_secagg_plus_degree(20), 19u); // complete
    cr_assert_eq(fri_secagg_graph_degree(100, 7), 8u);
    size_t q = 0;
    cr_assert_eq(
        fri_secagg_neighbors(NULL, 0, &q, 0, 100, 7, seed), FR_ENOSPC);
    cr_assert_eq(q, 8u);
    cr_assert_eq(
        fri_secagg_neighbors(NULL, 0, &q, 100, 100, 7, seed), FR_EINVAL);
}

Test(common_secagg, neighbor_graph_depends_on_seed)
{
    uint8_t  s1[32] = { 1 }, s2[32] = { 2 };
    uint32_t a[20], b[20];
    size_t   na = 0, nb = 0;
    cr_assert_eq(fri_secagg_neighbors(a, 20, &na, 5, 1000, 20, s1), FR_OK);
    cr_assert_eq(fri_secagg_neighbors(b, 20, &nb, 5, 1000, 20, s2), FR_OK);
    cr_assert(memcmp(a, b, sizeof a) != 0);
    cr_assert_eq(fri_secagg_neighbors(b, 20, &nb, 5, 1000, 20, s1), FR_OK);
    cr_assert(memcmp(a, b, sizeof a) == 0);
}

Test(common_secagg, secagg_plus_round_exact_with_30pct_dropout)
{
    // n = 120: degree 70 (of 119 possible), threshold 36.
    run_round(120, fri_secagg_plus_degree(120), 0.30, 3, 1000, 3);
}

// ---------------------------------------------------------------------------
// Communication

Test(common_secagg, client_cost_formula)
{
    fri_secagg_cost c = fri_secagg_client_cost(1023, 1u << 20);
    cr_assert_eq(c.masked, 4u << 20);
    cr_assert_eq(c.plain, 4u << 20);
    cr_assert_eq(c.advert, 172u);
    cr_assert_eq(c.shares, 1023u * (104u + 8u));
    cr_assert_eq(c.unmask, 1023u * 36u);
    cr_assert_eq(c.total, c.advert + c.shares + c.masked + c.unmask);
    cr_assert(c.expansion > 1.03 && c.expansion < 1.04, "%f", c.expansion);
    fri_secagg_cost p = fri_secagg_client_cost(100, 1u << 20);
    cr_assert_lt(p.expansion, c.expansion);
}

// Unmasking with dropped members gives the survivors' plain sum whatever
// the number of threads it is spread over (one, three, as many as
// members, automatic).
Test(secagg, unmask_same_sum_on_any_number_of_threads)
{
    enum { N = 9, D = 70000 };
    const uint8_t    drop[N] = {0, 1, 0, 0, 1, 0, 0, 1, 0};
    fri_secagg_keys  k[N];
    uint8_t          c_pk[N * 32], b[N * 32], pk[N * 32];
    uint32_t         peers[N];
    uint32_t        *x = malloc(D * 4), *y = malloc(D * 4);
    uint32_t        *plain = calloc(D, 4), *masked = calloc(D, 4);
    uint32_t        *sum = malloc(D * 4);
    cr_assert(x && y && plain && masked && sum);
    fri_rng r;
    fri_rng_seed(&r, 5);
    for (uint32_t u = 0; u < N; u++) {
        cr_assert_eq(fri_secagg_keygen(&k[u], NULL), FR_OK);
        memcpy(c_pk + 32 * u, k[u].c_pk, 32);
        randombytes_buf(b + 32 * u, 32);
    }
    uint32_t surv[N], dropped[N], ns = 0, nd = 0;
    uint8_t  s_pk[N * 32], s_b[N * 32], d_sk[N * 32];
    for (uint32_t u = 0; u < N; u++) {
        if (drop[u]) {
            memcpy(d_sk + 32 * nd, k[u].c_sk, 32);
            dropped[nd++] = u;
            continue;
        }
        size_t np = 0;
        for (uint32_t v = 0; v < N; v++) {
            if (v != u) {
                peers[np] = v;
                memcpy(pk + 32 * np, c_pk + 32 * v, 32);
                np++;
            }
        }
        for (size_t i = 0; i < D; i++) {
            x[i] = (uint32_t) fri_rng_next(&r);
            plain[i] += x[i];
        }
        cr_assert_eq(fri_secagg_mask(y, x, D, u, peers, pk, np, k[u].c_sk,
                                     b + 32 * u, 91),
                     FR_OK);
        for (size_t i = 0; i < D; i++) {
            masked[i] += y[i];
        }
        memcpy(s_pk + 32 * ns, c_pk + 32 * u, 32);
        memcpy(s_b + 32 * ns, b + 32 * u, 32);
        surv[ns++] = u;
    }
    const uint32_t threads[] = {1, 3, N, 0};
    for (size_t t = 0; t < sizeof(threads) / sizeof(threads[0]); t++) {
        memcpy(sum, masked, D * 4);
        fri_secagg_unmask_input in = {.round_id      = 91,
                                      .survivors     = surv,
                                      .survivor_c_pk = s_pk,
                                      .survivor_b    = s_b,
                                      .n_survivors   = ns,
                                      .dropped       = dropped,
                                      .dropped_c_sk  = d_sk,
                                      .n_dropped     = nd,
                                      .threads       = threads[t]};
        cr_assert_eq(fri_secagg_unmask(sum, D, &in), FR_OK);
        cr_assert(memcmp(sum, plain, D * 4) == 0, "threads %u: sum differs",
                  threads[t]);
    }
    for (uint32_t u = 0; u < N; u++) {
        fri_secagg_keys_wipe(&k[u]);
    }
    free(x);
    free(y);
    free(plain);
    free(masked);
    free(sum);
}

// The mask PRG is RFC 8439's ChaCha20 keystream (key = seed, nonce 0,
// counter from 0) read as little-endian words, whichever implementation
// the build uses (OpenSSL's with FR_WITH_OPENSSL, libsodium's otherwise):
// devices and aggregators built either way must expand identical masks.
// Lengths cross the 16-word block and the 4096-word chunk boundaries.
Test(common_secagg, prg_is_the_chacha20_ietf_keystream)
{
    static const size_t lens[] = { 1, 15, 16, 17, 4095, 4096, 4097,
                                   3 * 4096 + 5, 100003 };
    static const uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = { 0 };
    enum { MAXW = 100003 };
    static uint32_t got[MAXW], acc[MAXW];
    static uint8_t  ks[MAXW * 4 + 64];
    for (size_t t = 0; t < sizeof lens / sizeof lens[0]; t++) {
        size_t  n = lens[t];
        uint8_t seed[32];
        for (int i = 0; i < 32; i++) {
            seed[i] = (uint8_t) (t * 31 + i * 7);
        }
        cr_assert_eq(fri_secagg_prg(got, n, seed), FR_OK);
        memset(ks, 0, sizeof ks);
        crypto_stream_chacha20_ietf_xor(ks, ks, n * 4, nonce, seed);
        for (size_t w = 0; w < n; w++) {
            uint32_t want = (uint32_t) ks[4 * w] |
                            (uint32_t) ks[4 * w + 1] << 8 |
                            (uint32_t) ks[4 * w + 2] << 16 |
                            (uint32_t) ks[4 * w + 3] << 24;
            cr_assert_eq(got[w], want, "n %zu word %zu", n, w);
        }
        // Adding then subtracting the same mask restores the input.
        for (size_t w = 0; w < n; w++) {
            acc[w] = (uint32_t) (w * 2654435761u);
        }
        cr_assert_eq(fri_secagg_prg_add(acc, n, seed, 1), FR_OK);
        cr_assert_eq(acc[0], (uint32_t) (0u + got[0]));
        cr_assert_eq(fri_secagg_prg_add(acc, n, seed, -1), FR_OK);
        for (size_t w = 0; w < n; w++) {
            cr_assert_eq(acc[w], (uint32_t) (w * 2654435761u));
        }
    }
}
