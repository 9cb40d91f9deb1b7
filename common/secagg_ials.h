// iALS statistics under secure aggregation (docs/SECAGG.md §11): the dense,
// normalized vector a cohort member masks, and its decoding at the
// aggregator. Pure functions, no I/O.
//
// Layout (dim = n_items W + Pk + 2, W = Pk + k + 1, Pk = k (k + 1) / 2):
// item i occupies [i W, (i + 1) W) as [packed w p p^T (Pk) | c p (k) | c]
// with confidence c = 1 + w, w = alpha r_ui, when the member interacted
// with i, zeros otherwise (the interacted set stays hidden under the
// masks); then the packed p p^T every member adds once (the aggregator's
// Y^T Y), the value sum and the interaction count. Every coordinate is
// divided by its per-device bound, so an honest member's values lie in
// [-1, 1] and are quantized with clip 1. The bounds are those of explicit
// ALS (fri_sa_als_bounds) with residual read as C, the bound on w.
#ifndef FRI_SECAGG_IALS_H
#define FRI_SECAGG_IALS_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"
#include "secagg_als.h"

// Values per item (Pk + k + 1) and the whole vector; 0 when k or n_items is
// 0 or the length overflows.
size_t fri_sa_ials_width(uint32_t k);
size_t fri_sa_ials_dim(uint32_t n_items, uint32_t k);

// Encodes one member's plain iALS update (SPEC §5.7: gram, the packed
// (k+1) x (k+1) Gram of [p; 1] whose last column is p; rows [w_j, c_j p]
// of k + 1 values for items[], strictly increasing, < n_items) into x (dim
// values in [-1, 1]): p is scaled to norm <= U and each w_j clamped to
// [0, C] (c_j = 1 + w_j recomputed from them), the value sum to
// n_items * rating_abs. *clipped counts the values the clip changed (p
// counts as one). FR_EINVAL on bad arguments (a negative or non-finite w).
FR_NODISCARD fr_err fri_sa_ials_encode_stats(float *x, size_t dim,
    uint32_t n_items, uint32_t k, const fri_sa_als_bounds *b,
    const float *gram, const float *rows, const uint32_t *items, size_t n,
    double value_sum, size_t *clipped);

// Decodes the unmasked sum (dim words, two's complement fixed point with
// frac_bits fractional bits) into v: each coordinate times its bound.
FR_NODISCARD fr_err fri_sa_ials_decode(float *v, const uint32_t *sum,
    size_t dim, unsigned frac_bits, uint32_t n_items, uint32_t k,
    const fri_sa_als_bounds *b);

#endif
