// Shamir t-of-n secret sharing over GF(2^16).
//
// A secret of len bytes (len even) is read as len/2 little-endian GF(2^16)
// elements; each element gets its own random polynomial of degree t-1 whose
// constant term is the element. A share is the polynomial evaluated at a
// non-zero x in 1..65535 (x = 0 is the secret), len bytes, same layout.
// GF(2^16) rather than GF(2^8) so that a cohort can exceed 255 share holders.
//
// Field arithmetic is branch-free and table-free (shift-and-xor loop with
// masks), so timing does not depend on secret shares or coefficients.
// Any t-1 shares are independent of the secret: for every candidate secret
// there is exactly one polynomial through those shares.
//
// Pure functions, no global state; thread-safe on distinct buffers.
#ifndef FR_COMMON_SHAMIR_H
#define FR_COMMON_SHAMIR_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"
#include "rng.h"

// Largest share index (and hence number of holders).
#define FRI_SHAMIR_MAX_X 65535u

// Splits secret into n shares with threshold t (1 <= t <= n <= 65535),
// share i (0-based) evaluated at x = i+1 and written to shares_out + i*len.
// shares_cap is the size of shares_out in bytes (>= n*len, else FR_ENOSPC).
// len must be even and non-zero. Coefficients come from randombytes_buf
// when rng is NULL; a fri_rng makes the split reproducible (tests and
// simulation only: xoshiro is not a cryptographic generator).
// Errors: FR_EINVAL, FR_ENOSPC, FR_ENOMEM, FR_ETOOBIG. Internal
// coefficients are wiped.
FR_NODISCARD fr_err fri_shamir_split(uint8_t *shares_out, size_t shares_cap,
    uint32_t n, uint32_t t, const uint8_t *secret, size_t len, fri_rng *rng);

// Like fri_shamir_split but evaluates at the count given points xs (each in
// 1..65535, pairwise distinct), share i at shares_out + i*len. Used when
// only some clients (graph neighbours) hold shares. t <= count.
FR_NODISCARD fr_err fri_shamir_split_at(uint8_t *shares_out, size_t shares_cap,
    const uint32_t *xs, size_t count, uint32_t t, const uint8_t *secret,
    size_t len, fri_rng *rng);

// Reconstructs the secret from count shares (share i at shares + i*len,
// evaluated at xs[i]) by Lagrange interpolation at 0. count must be at least
// the threshold used when splitting: with fewer shares the result is some
// value consistent with them, not the secret (this cannot be detected).
// Errors: FR_EINVAL (count 0, len odd/0, x out of range, duplicate xs),
// FR_ENOMEM. Cost O(count^2 + count*len) field multiplications.
FR_NODISCARD fr_err fri_shamir_combine(uint8_t *secret_out,
    const uint8_t *shares, const uint32_t *xs, size_t count, size_t len);

// Log and antilog tables of GF(2^16) (256 KiB), for arithmetic on PUBLIC
// values only: a lookup's address depends on its operands. With them the
// Lagrange weights of a combine (the xs are public) cost O(count^2)
// additions instead of field multiplications; an aggregator that
// reconstructs a secret per cohort member each round keeps one.
typedef struct fri_gf16_tables fri_gf16_tables;
// NULL when out of memory.
fri_gf16_tables *fri_gf16_tables_create(void);
void             fri_gf16_tables_destroy(fri_gf16_tables *t);

// fri_shamir_combine with the Lagrange weights from tab (NULL: computed
// by multiplication). Same result, errors and constant-time treatment of
// the shares.
FR_NODISCARD fr_err fri_shamir_combine_tab(const fri_gf16_tables *tab,
    uint8_t *secret_out, const uint8_t *shares, const uint32_t *xs,
    size_t count, size_t len);

// GF(2^16) arithmetic (reduction polynomial x^16+x^12+x^3+x+1), exposed
// for tests. fri_gf16_inv(0) returns 0.
uint16_t fri_gf16_mul(uint16_t a, uint16_t b);
uint16_t fri_gf16_inv(uint16_t a);

#endif
