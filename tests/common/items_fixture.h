// Seeded random item side for the per-user solve tests of the MF and
// Bayesian MF code (test_mf.c, test_bayes.c).
#ifndef FR_TESTS_COMMON_ITEMS_FIXTURE_H
#define FR_TESTS_COMMON_ITEMS_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "mf.h"
#include "rng.h"

// Fills Q (n_items x k) with N(0, q_std^2) and bi (n_items) with
// N(0, 0.3^2), in that order from one stream seeded with seed, and returns
// the item view over them with mu = 3.5. Q and bi are the caller's.
static inline fri_mf_items
fixture_items(float *Q, float *bi, uint32_t n_items, uint32_t k,
              double q_std, uint64_t seed)
{
    fri_rng r;
    fri_rng_seed(&r, seed);
    for (size_t j = 0; j < (size_t) n_items * k; j++) {
        Q[j] = (float) (q_std * fri_rng_normal(&r));
    }
    for (size_t j = 0; j < n_items; j++) {
        bi[j] = (float) (0.3 * fri_rng_normal(&r));
    }
    fri_mf_items it = {n_items, k, 3.5f, bi, Q};
    return it;
}

#endif
