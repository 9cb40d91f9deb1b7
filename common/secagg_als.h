// Explicit-ALS statistics under secure aggregation (docs/SECAGG.md §10):
// the dense, normalized vector a cohort member masks, and its decoding at
// the aggregator. Pure functions, no I/O.
//
// Layout (dim = n_items * W + 2 values, W = P + d, d = k + 1,
// P = d (d + 1) / 2): item i occupies [i W, (i + 1) W) as
// [packed Gram x x^T (P) | h = x res (d)] with x = [p; 1] when the member
// rated i, zeros otherwise (the rated set stays hidden under the masks);
// then the rating sum and the rating count. Every coordinate is divided by
// its per-device bound (fri_sa_als_scale), so an honest member's values lie
// in [-1, 1] and are quantized with clip 1.
#ifndef FRI_SECAGG_ALS_H
#define FRI_SECAGG_ALS_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"

// What a member clips its statistics to before masking (the aggregator's
// bounds, sent in SA_PARAMS): ||p|| <= user_norm, |r - mu - b_u| <= residual,
// |r| <= rating_abs. All finite and > 0.
typedef struct fri_sa_als_bounds {
    float user_norm;
    float residual;
    float rating_abs;
} fri_sa_als_bounds;

// Whether the bounds are usable (finite, > 0).
int fri_sa_als_bounds_ok(const fri_sa_als_bounds *b);

// Values per item (P + d), and the whole vector (n_items W + 2); 0 when
// k or n_items is 0 or the length overflows.
size_t fri_sa_als_width(uint32_t k);
size_t fri_sa_als_dim(uint32_t n_items, uint32_t k);

// The per-device bound of coordinate j of an item block (j < W): Gram
// entry (a, b): s_a s_b, h entry a: s_a R, with s_a = U for a < k and 1
// for the bias coordinate. Of the tail: n_items * rating_abs (sum) and
// n_items (count; one rating per item at most).
double fri_sa_als_scale(uint32_t k, const fri_sa_als_bounds *b, size_t j);

// Encodes one member's statistics into x (dim values, normalized to
// [-1, 1]): p (k values) is scaled to norm <= U, each residual res[j] of
// rated item items[j] (strictly increasing, < n_items) clamped to
// [-R, R], the rating sum clamped to n_items * rating_abs. *clipped
// counts the values the clip changed (p counts as one). FR_EINVAL on bad
// arguments.
FR_NODISCARD fr_err fri_sa_als_encode(float *x, size_t dim, uint32_t n_items,
    uint32_t k, const fri_sa_als_bounds *b, const float *p,
    const uint32_t *items, const float *res, size_t n, double rating_sum,
    size_t *clipped);

// The same from a plain ALS update (SPEC §5.7): the packed Gram of
// x = [p; 1] (p is its last column) and rows h_j = x res_j (res_j is the
// last entry), n rows of k + 1 values for items[].
FR_NODISCARD fr_err fri_sa_als_encode_stats(float *x, size_t dim,
    uint32_t n_items, uint32_t k, const fri_sa_als_bounds *b,
    const float *gram, const float *rows, const uint32_t *items, size_t n,
    double rating_sum, size_t *clipped);

// v[i w + j] = sum[i w + j] (two's complement) 2^-frac_bits scale[j] for
// n_blocks blocks of w words: the item blocks of a decoded statistics sum.
void fri_sa_decode_blocks(float *v, const uint32_t *sum, size_t n_blocks,
    size_t w, const double *scale, unsigned frac_bits);

// Decodes the unmasked sum (dim words, two's complement fixed point with
// frac_bits fractional bits) into v: each coordinate times its scale, in
// double. FR_EINVAL on bad arguments.
FR_NODISCARD fr_err fri_sa_als_decode(float *v, const uint32_t *sum,
    size_t dim, unsigned frac_bits, uint32_t n_items, uint32_t k,
    const fri_sa_als_bounds *b);

#endif
