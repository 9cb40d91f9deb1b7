// Seeded deterministic pseudo-random numbers (xoshiro256**, seeded through
// splitmix64). Used wherever results must be reproducible from a seed:
// initialisation, sampling, shuffles, synthetic data. Not for secrets: key
// material comes from libsodium's randombytes.
#ifndef FR_COMMON_RNG_H
#define FR_COMMON_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct fri_rng {
    uint64_t s[4];
} fri_rng;

// Seeds r from a 64-bit seed; the same seed gives the same stream.
void fri_rng_seed(fri_rng *r, uint64_t seed);
// Derives an independent stream: same (parent seed, stream) -> same child.
void fri_rng_seed2(fri_rng *r, uint64_t seed, uint64_t stream);
uint64_t fri_rng_next(fri_rng *r);
// Uniform in [0, 1).
double fri_rng_uniform(fri_rng *r);
// Uniform integer in [0, n); n > 0. Unbiased (Lemire's method).
uint32_t fri_rng_below(fri_rng *r, uint32_t n);
// Standard normal (Box-Muller, no cached second value so state stays plain).
double fri_rng_normal(fri_rng *r);
// Fisher-Yates shuffle of n uint32 values.
void fri_rng_shuffle_u32(fri_rng *r, uint32_t *v, size_t n);

#endif
