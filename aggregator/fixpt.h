// Fixed-point parameters of secure aggregation, shared by the
// configuration check (config.c), the accumulator (accumulate.c) and the
// secure round (sa.c). A leaf.
#ifndef FR_AGGREGATOR_FIXPT_H
#define FR_AGGREGATOR_FIXPT_H

#include <math.h>
#include <stdint.h>

#include "secagg.h"

// Fractional bits for a cohort of n at clip C, 0 if none fits.
static inline unsigned
fri_sa_frac_bits(float clip, uint32_t n)
{
    for (unsigned f = 24; f >= 8; f--) {
        if (fri_secagg_max_cohort(clip, f) >= n) {
            return f;
        }
    }
    return 0;
}

// Tolerance of an unmasked sum of `members` normalized inputs (clip 1,
// the fractional bits of a cohort of `cohort`): each input's word is
// rounded by at most 2^-(f+1).
static inline double
fri_sa_quant_tol(double members, uint32_t cohort)
{
    return members * ldexp(1.0, -(int) fri_sa_frac_bits(1.0f, cohort) - 1);
}

#endif
