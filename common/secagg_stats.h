// Latest-statistics deltas under secure aggregation (docs/SECAGG.md §9):
// the dense, normalized vector a device masks when it sends the change of
// its ALS or VBMF contribution, and its decoding at the aggregator. Pure
// functions, no I/O. The per-item layout and the bounds are those of the
// per-round ALS statistics (secagg_als.h); only the scales differ (a
// delta is a difference of two bounded contributions).
//
// Layout (dim = n_items W + G + 2, W = P + d, d = k + 1,
// P = d (d + 1) / 2, G = d + P + 2 for VBMF and 0 for ALS): item i holds
// [packed Gram delta | h delta] when the device rated i, zeros otherwise;
// then (VBMF) the global block [E[u] (d) | packed E[u u^T] (P) |
// sum E[(r - mu - b_u)^2] | user count], u = [p_u; b_u]; then the rating
// sum and the rating count. The plain update (client/fit.c) carries the
// same values sparsely: rows h, extra [Gram | global block | sum | count].
#ifndef FRI_SECAGG_STATS_H
#define FRI_SECAGG_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"
#include "secagg_als.h"

// Floats of the VBMF global block: d + P + 2.
size_t fri_sa_stats_glob_len(uint32_t k);
// The whole vector; 0 when k or n_items is 0 or the length overflows.
size_t fri_sa_stats_dim(uint32_t n_items, uint32_t k, int vb);
// Values of the plain update's extra: P + (vb ? G : 0) + 2.
size_t fri_sa_stats_extra_len(uint32_t k, int vb);

// The scale of word j of the vector: the largest |delta| an honest device
// within the bounds can send there (so that delta / scale lies in
// [-1, 1]). With s_a = U (a < k), 1 (a = k), c_a = U (a < k), R (a = k)
// and A = rating_abs: Gram (a, b) 2 s_a s_b; h_a s_a (2R + 2A) (a new h
// within s_a R minus a stored one re-centred by |dmu| <= 2A); E[u_a]
// 2 c_a; E[u_a u_b] 2 c_a c_b; squared residuals 2 n_items (R + 2A)^2;
// user count 1; rating sum n_items A; count n_items.
double fri_sa_stats_scale(uint32_t n_items, uint32_t k, int vb,
    const fri_sa_als_bounds *b, size_t j);

// Clamps a whole contribution in the plain layout (n rows of d values,
// extra of fri_sa_stats_extra_len values) to the per-device bounds, in
// place, so that the stored contribution and every delta built from it
// stay within the scales above: Gram (a, b) to s_a s_b, h_a to s_a R,
// the global block to c_a, c_a c_b, [0, n_items R^2] and [0, 1], the
// rating sum to n_items A and the count to [0, n_items]. Returns the
// number of values changed. Honest devices within the bounds are
// unchanged.
size_t fri_sa_stats_clip(float *rows, size_t n, float *extra, uint32_t k,
    int vb, uint32_t n_items, const fri_sa_als_bounds *b);

// Encodes one delta in the plain layout (items strictly increasing,
// < n_items) into x (dim values, each divided by its scale and clamped
// to [-1, 1]; *clipped counts the clamped ones, which an honest device
// never has). FR_EINVAL on bad arguments or non-finite values.
FR_NODISCARD fr_err fri_sa_stats_encode(float *x, size_t dim, uint32_t n_items,
    uint32_t k, int vb, const fri_sa_als_bounds *b, const float *rows,
    const float *extra, const uint32_t *items, size_t n, size_t *clipped);

// Decodes the unmasked sum (dim words, two's complement fixed point with
// frac_bits fractional bits) into v: word j as int32 2^-f scale_j.
FR_NODISCARD fr_err fri_sa_stats_decode(float *v, const uint32_t *sum,
    size_t dim, unsigned frac_bits, uint32_t n_items, uint32_t k, int vb,
    const fri_sa_als_bounds *b);

#endif
