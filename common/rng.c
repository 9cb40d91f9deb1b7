#include "rng.h"

#include <math.h>

static uint64_t
splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z          = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z          = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t
rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void
fri_rng_seed(fri_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        r->s[i] = splitmix64(&x);
    }
}

void
fri_rng_seed2(fri_rng *r, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed;
    uint64_t m = splitmix64(&x) ^ (stream * 0xd1342543de82ef95ULL);
    fri_rng_seed(r, m ^ splitmix64(&m));
}

uint64_t
fri_rng_next(fri_rng *r)
{
    uint64_t *s      = r->s;
    uint64_t  result = rotl(s[1] * 5, 7) * 9;
    uint64_t  t      = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double
fri_rng_uniform(fri_rng *r)
{
    return (double) (fri_rng_next(r) >> 11) * 0x1.0p-53;
}

uint32_t
fri_rng_below(fri_rng *r, uint32_t n)
{
    uint64_t m = (uint64_t) (uint32_t) fri_rng_next(r) * n;
    uint32_t l = (uint32_t) m;
    if (l < n) {
        uint32_t t = (uint32_t) (-n) % n;
        while (l < t) {
            m = (uint64_t) (uint32_t) fri_rng_next(r) * n;
            l = (uint32_t) m;
        }
    }
    return (uint32_t) (m >> 32);
}

double
fri_rng_normal(fri_rng *r)
{
    double u1 = fri_rng_uniform(r);
    double u2 = fri_rng_uniform(r);
    if (u1 < 1e-300) {
        u1 = 1e-300;
    }
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void
fri_rng_shuffle_u32(fri_rng *r, uint32_t *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t   j = fri_rng_below(r, (uint32_t) i);
        uint32_t t = v[i - 1];
        v[i - 1]   = v[j];
        v[j]       = t;
    }
}
