#include "shamir.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

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
        r ^= aa & (0u - (uint32_t)((b >> i) & 1u));
        aa <<= 1;
        aa ^= GF16_POLY & (0u - ((aa >> 16) & 1u));
    }
    return (uint16_t)r;
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
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static void
put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

// Multiplication by a PUBLIC constant c is GF(2)-linear: a*c is the xor of
// c*x^i over the set bits i of a. The table depends on c only; the use is
// masked, so the (secret) a never selects a branch or an address.
static void
mul_table(uint16_t tab[16], uint16_t c)
{
    for (int i = 0; i < 16; i++) {
        tab[i] = fri_gf16_mul(c, (uint16_t)(1u << i));
    }
}

static uint16_t
mul_by_table(uint16_t a, const uint16_t tab[16])
{
    uint16_t r = 0;
    for (int i = 0; i < 16; i++) {
        r ^= tab[i] & (uint16_t)(0u - ((a >> i) & 1u));
    }
    return r;
}

// acc[e] *= c for n <= SPLIT_LANES elements, c PUBLIC: the xor of
// acc * x^j over the set bits j of c, the doubling masked (acc is
// secret). Lanes side by side, so the compiler vectorizes the element
// loops; c's highest bit bounds the doublings (the evaluation points are
// small).
#define SPLIT_LANES 16
static void
mul_pub_lanes(uint16_t *acc, size_t n, uint16_t c)
{
    uint16_t r[SPLIT_LANES] = { 0 };
    for (int j = 0; j < 16 && (c >> j) != 0; j++) {
        if ((c >> j) & 1u) {
            for (size_t e = 0; e < n; e++) {
                r[e] ^= acc[e];
            }
        }
        for (size_t e = 0; e < n; e++) {
            uint16_t top = (uint16_t)(0u - (unsigned)(acc[e] >> 15));
            acc[e]       = (uint16_t)((uint16_t)(acc[e] << 1)
                ^ ((uint16_t)GF16_POLY & top));
        }
    }
    memcpy(acc, r, n * sizeof *acc);
    sodium_memzero(r, sizeof r);
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
            buf[i + j] = (uint8_t)(v >> (8 * j));
        }
    }
}

fr_err
fri_shamir_split_at(uint8_t *shares_out, size_t shares_cap, const uint32_t *xs,
    size_t count, uint32_t t, const uint8_t *secret, size_t len, fri_rng *rng)
{
    if (shares_out == NULL || xs == NULL || secret == NULL || len == 0
        || len % 2 != 0 || t == 0 || count == 0 || t > count
        || count > FRI_SHAMIR_MAX_X) {
        return FR_EINVAL;
    }
    if (len > SIZE_MAX / count || shares_cap < count * len) {
        return FR_ENOSPC;
    }
    uint8_t *seen = calloc((FRI_SHAMIR_MAX_X + 1) / 8, 1);
    if (seen == NULL) {
        return FR_ENOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        uint32_t x = xs[i];
        if (x == 0 || x > FRI_SHAMIR_MAX_X
            || ((seen[x / 8] >> (x % 8)) & 1u)) {
            free(seen);
            return FR_EINVAL;
        }
        seen[x / 8] |= (uint8_t)(1u << (x % 8));
    }
    free(seen);
    // Coefficients a_1..a_{t-1} of every element: coef + (k-1)*len holds
    // a_k for all elements, in the secret's layout.
    size_t n_coef = (size_t)t - 1;
    if (n_coef > SIZE_MAX / len) {
        return FR_ETOOBIG;
    }
    uint8_t *coef = NULL;
    if (n_coef > 0) {
        coef = malloc(n_coef * len);
        if (coef == NULL) {
            return FR_ENOMEM;
        }
        fill_random(coef, n_coef * len, rng);
    }
    const size_t n_el = len / 2;
    for (size_t i = 0; i < count; i++) {
        const uint16_t x = (uint16_t)xs[i];
        for (size_t b = 0; b < n_el; b += SPLIT_LANES) {
            size_t   n = n_el - b < SPLIT_LANES ? n_el - b : SPLIT_LANES;
            uint16_t acc[SPLIT_LANES] = { 0 };
            // Horner: ((a_{t-1} x + a_{t-2}) x + ...) x + a_0.
            for (size_t k = n_coef; k > 0; k--) {
                mul_pub_lanes(acc, n, x);
                const uint8_t *a = coef + (k - 1) * len + 2 * b;
                for (size_t e = 0; e < n; e++) {
                    acc[e] ^= get16(a + 2 * e);
                }
            }
            mul_pub_lanes(acc, n, x);
            for (size_t e = 0; e < n; e++) {
                put16(shares_out + i * len + 2 * (b + e),
                    acc[e] ^ get16(secret + 2 * (b + e)));
            }
            sodium_memzero(acc, sizeof acc);
        }
    }
    if (coef != NULL) {
        sodium_memzero(coef, n_coef * len);
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
    uint32_t *xs = malloc((size_t)n * sizeof *xs);
    if (xs == NULL) {
        return FR_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        xs[i] = i + 1;
    }
    fr_err rc = fri_shamir_split_at(
        shares_out, shares_cap, xs, n, t, secret, len, rng);
    free(xs);
    return rc;
}

struct fri_gf16_tables {
    uint16_t log[65536]; // log[0] unused
    uint16_t exp[65535]; // exp[i] = x^i, x generates the field
};

fri_gf16_tables *
fri_gf16_tables_create(void)
{
    fri_gf16_tables *t = malloc(sizeof *t);
    if (t == NULL) {
        return NULL;
    }
    uint32_t v = 1;
    for (uint32_t i = 0; i < 65535; i++) {
        t->exp[i] = (uint16_t)v;
        t->log[v] = (uint16_t)i;
        v <<= 1; // times x, reduced
        if (v & 0x10000u) {
            v ^= GF16_POLY;
        }
    }
    t->log[0] = 0;
    return t;
}

void
fri_gf16_tables_destroy(fri_gf16_tables *t)
{
    free(t);
}

// Lagrange basis at 0 for the public xs: l_i = prod_{j != i} x_j /
// (x_j - x_i); in characteristic 2 subtraction is xor. FR_EINVAL on two
// equal xs.
static fr_err
lagrange_mul(uint16_t *lambda, const uint32_t *xs, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        uint16_t num = 1, den = 1;
        for (size_t j = 0; j < count; j++) {
            if (j == i) {
                continue;
            }
            num = fri_gf16_mul(num, (uint16_t)xs[j]);
            den = fri_gf16_mul(den, (uint16_t)(xs[j] ^ xs[i]));
        }
        if (den == 0) {
            return FR_EINVAL;
        }
        lambda[i] = fri_gf16_mul(num, fri_gf16_inv(den));
    }
    return FR_OK;
}

// The same in the log domain: log l_i = sum_{j != i} log x_j - sum_{j !=
// i} log (x_j ^ x_i) mod 2^16 - 1.
static fr_err
lagrange_tab(const fri_gf16_tables *t, uint16_t *lambda, const uint32_t *xs,
    size_t count)
{
    uint64_t all = 0;
    for (size_t j = 0; j < count; j++) {
        all += t->log[xs[j]];
    }
    for (size_t i = 0; i < count; i++) {
        uint64_t den = 0;
        for (size_t j = 0; j < count; j++) {
            uint32_t d = xs[j] ^ xs[i];
            if (j != i && d == 0) {
                return FR_EINVAL;
            }
            den += j == i ? 0 : t->log[d];
        }
        uint64_t num = (all - t->log[xs[i]]) % 65535u;
        lambda[i]    = t->exp[(num + 65535u - den % 65535u) % 65535u];
    }
    return FR_OK;
}

fr_err
fri_shamir_combine(uint8_t *secret_out, const uint8_t *shares,
    const uint32_t *xs, size_t count, size_t len)
{
    return fri_shamir_combine_tab(NULL, secret_out, shares, xs, count, len);
}

fr_err
fri_shamir_combine_tab(const fri_gf16_tables *tab, uint8_t *secret_out,
    const uint8_t *shares, const uint32_t *xs, size_t count, size_t len)
{
    if (secret_out == NULL || shares == NULL || xs == NULL || count == 0
        || count > FRI_SHAMIR_MAX_X || len == 0 || len % 2 != 0) {
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
    fr_err rc = tab != NULL ? lagrange_tab(tab, lambda, xs, count)
                            : lagrange_mul(lambda, xs, count);
    if (rc != FR_OK) {
        free(lambda);
        return rc;
    }
    for (size_t e = 0; e < len; e += 2) {
        put16(secret_out + e, 0);
    }
    for (size_t i = 0; i < count; i++) {
        uint16_t tb[16];
        if (tab != NULL) {
            // lambda x^b for each bit b: public, so from the tables.
            uint32_t l = tab->log[lambda[i]];
            for (int b = 0; b < 16; b++) {
                tb[b] = tab->exp[(l + (uint32_t)b) % 65535u];
            }
        } else {
            mul_table(tb, lambda[i]);
        }
        for (size_t e = 0; e < len; e += 2) {
            uint16_t acc = get16(secret_out + e);
            acc ^= mul_by_table(get16(shares + i * len + e), tb);
            put16(secret_out + e, acc);
        }
    }
    free(lambda);
    return FR_OK;
}
