#include "shamir.h"

#include <sodium.h>
#include <stdlib.h>

// x^16 + x^12 + x^3 + x + 1, a primitive polynomial.
#define GF16_POLY 0x1100Bu

uint16_t
fri_gf16_mul(uint16_t a, uint16_t b)
{
    // Shift-and-add with masks instead of branches or log tables, so the
    // running time does not depend on a or b.
    uint32_t r  = 0;
    uint32_t aa = a;
    for (int i = 0; i < 16; i++) {
        r ^= aa & (0u - (uint32_t) ((b >> i) & 1u));
        aa <<= 1;
        aa ^= GF16_POLY & (0u - ((aa >> 16) & 1u));
    }
    return (uint16_t) r;
}

uint16_t
fri_gf16_inv(uint16_t a)
{
    // a^(2^16 - 2) by square-and-multiply over the fixed exponent 0xFFFE.
    uint16_t r = 1;
    for (int i = 15; i >= 0; i--) {
        r = fri_gf16_mul(r, r);
        if ((0xFFFEu >> i) & 1u) { // public exponent bit
            r = fri_gf16_mul(r, a);
        }
    }
    return r;
}

static uint16_t
get16(const uint8_t *p)
{
    return (uint16_t) (p[0] | (uint16_t) p[1] << 8);
}

static void
put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t) v;
    p[1] = (uint8_t) (v >> 8);
}

static void
fill_random(uint8_t *buf, size_t len, fri_rng *rng)
{
    if (rng == NULL) {
        randombytes_buf(buf, len);
        return;
    }
    for (size_t i = 0; i < len; i += 8) {
        uint64_t v = fri_rng_next(rng);
        for (size_t j = 0; j < 8 && i + j < len; j++) {
            buf[i + j] = (uint8_t) (v >> (8 * j));
        }
    }
}

fr_err
fri_shamir_split_at(uint8_t *shares_out, size_t shares_cap,
                    const uint32_t *xs, size_t count, uint32_t t,
                    const uint8_t *secret, size_t len, fri_rng *rng)
{
    if (shares_out == NULL || xs == NULL || secret == NULL || len == 0 ||
        len % 2 != 0 || t == 0 || count == 0 || t > count ||
        count > FRI_SHAMIR_MAX_X) {
        return FR_EINVAL;
    }
    if (len > SIZE_MAX / count || shares_cap < count * len) {
        return FR_ENOSPC;
    }
    for (size_t i = 0; i < count; i++) {
        if (xs[i] == 0 || xs[i] > FRI_SHAMIR_MAX_X) {
            return FR_EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (xs[j] == xs[i]) {
                return FR_EINVAL;
            }
        }
    }
    // Coefficients a_1..a_{t-1} for every element, drawn per element so
    // that only t-1 coefficients (2(t-1) bytes) live at a time.
    size_t   n_coef = (size_t) t - 1;
    uint8_t *coef   = NULL;
    if (n_coef > 0) {
        coef = malloc(n_coef * 2);
        if (coef == NULL) {
            return FR_ENOMEM;
        }
    }
    for (size_t e = 0; e < len / 2; e++) {
        uint16_t a0 = get16(secret + 2 * e);
        if (n_coef > 0) {
            fill_random(coef, n_coef * 2, rng);
        }
        for (size_t i = 0; i < count; i++) {
            uint16_t x = (uint16_t) xs[i];
            // Horner: ((a_{t-1} x + a_{t-2}) x + ...) x + a_0.
            uint16_t acc = 0;
            for (size_t k = n_coef; k > 0; k--) {
                acc = fri_gf16_mul(acc, x) ^ get16(coef + 2 * (k - 1));
            }
            acc = fri_gf16_mul(acc, x) ^ a0;
            put16(shares_out + i * len + 2 * e, acc);
        }
    }
    if (coef != NULL) {
        sodium_memzero(coef, n_coef * 2);
        free(coef);
    }
    return FR_OK;
}

fr_err
fri_shamir_split(uint8_t *shares_out, size_t shares_cap, uint32_t n,
                 uint32_t t, const uint8_t *secret, size_t len, fri_rng *rng)
{
    if (n == 0 || n > FRI_SHAMIR_MAX_X) {
        return FR_EINVAL;
    }
    uint32_t *xs = malloc((size_t) n * sizeof *xs);
    if (xs == NULL) {
        return FR_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        xs[i] = i + 1;
    }
    fr_err rc =
        fri_shamir_split_at(shares_out, shares_cap, xs, n, t, secret, len, rng);
    free(xs);
    return rc;
}

fr_err
fri_shamir_combine(uint8_t *secret_out, const uint8_t *shares,
                   const uint32_t *xs, size_t count, size_t len)
{
    if (secret_out == NULL || shares == NULL || xs == NULL || count == 0 ||
        count > FRI_SHAMIR_MAX_X || len == 0 || len % 2 != 0) {
        return FR_EINVAL;
    }
    for (size_t i = 0; i < count; i++) {
        if (xs[i] == 0 || xs[i] > FRI_SHAMIR_MAX_X) {
            return FR_EINVAL;
        }
    }
    uint16_t *lambda = malloc(count * sizeof *lambda);
    if (lambda == NULL) {
        return FR_ENOMEM;
    }
    // Lagrange basis at 0: l_i = prod_{j != i} x_j / (x_j - x_i); in
    // characteristic 2 subtraction is xor. The xs are public.
    for (size_t i = 0; i < count; i++) {
        uint16_t num = 1, den = 1;
        for (size_t j = 0; j < count; j++) {
            if (j == i) {
                continue;
            }
            num = fri_gf16_mul(num, (uint16_t) xs[j]);
            den = fri_gf16_mul(den, (uint16_t) (xs[j] ^ xs[i]));
        }
        if (den == 0) { // two equal xs
            free(lambda);
            return FR_EINVAL;
        }
        lambda[i] = fri_gf16_mul(num, fri_gf16_inv(den));
    }
    for (size_t e = 0; e < len / 2; e++) {
        uint16_t acc = 0;
        for (size_t i = 0; i < count; i++) {
            acc ^= fri_gf16_mul(lambda[i], get16(shares + i * len + 2 * e));
        }
        put16(secret_out + 2 * e, acc);
    }
    free(lambda);
    return FR_OK;
}
