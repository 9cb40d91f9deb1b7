// Time-aware biases on top of any rating model (timeSVD++-style, Koren
// 2009, biases only): a rating at time t gets
//   pred(u, i) + b_{i,bin(t)} + b_{u,day(t)}
// where bin(t) splits the training time span into equal bins and day(t) is
// the day of t. Both are ridge estimates on the base model's residuals,
// alternated a few times.
//
// Federated shape: b_{i,bin} needs only per-(item, bin) sums of residuals
// and counts over the raters, the same kind of statistic as the item bias
// (summable, so secure aggregation applies unchanged); b_{u,day} is the
// device's own business and never leaves it. Data without timestamps (every
// ts 0) fits to all-zero offsets, so predictions are the base model's.
#ifndef FR_COMMON_TBIAS_H
#define FR_COMMON_TBIAS_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h"
#include "fedrec/err.h"

typedef struct fri_tbias_config {
    uint32_t item_bins; // 0: no item time bins
    float    reg_item_bin; // ridge of b_{i,bin} (in ratings)
    int      user_day; // fit b_{u,day}
    float    reg_user_day;
    uint32_t iters; // alternations (>= 1)
} fri_tbias_config;

// Defaults chosen on validation slices (docs/BENCHMARKS.md).
void fri_tbias_config_init(fri_tbias_config *c);

typedef struct fri_tbias {
    int64_t   t0, t1; // time span of the fitted ratings
    uint32_t  bins; // 0 when no item bins were fitted
    uint32_t  n_items;
    float    *bib; // n_items * bins, item i bin b at i * bins + b
    size_t    n_ud; // user-day biases, keys sorted ascending
    uint64_t *ud_key; // user << 32 | day
    float    *ud_val;
} fri_tbias;

// Ridge of b_{u,day} chosen on validation (docs/BENCHMARKS.md); the device
// (fr_client_predict_at) uses the same value.
#define FRI_TBIAS_REG_USER_DAY 6.0f

// Day index of t (seconds since the epoch, UTC), as used for b_{u,day}.
// Inline: the device uses it without linking the fitting code.
static inline uint32_t
fri_tbias_day(int64_t t)
{
    int64_t d = t >= 0 ? t / 86400 : -((-(t + 1)) / 86400) - 1;
    return (uint32_t)d; // wraps for far pasts; only equality matters
}
// Bin of t in [t0, t1] split into bins bins (t outside is clamped).
uint32_t fri_tbias_bin(int64_t t, int64_t t0, int64_t t1, uint32_t bins);

// Fits the offsets to resid[j] = r[j].rating - base prediction of r[j]
// (n entries, items < n_items). FR_EINVAL on bad arguments, FR_ENOMEM.
// *out is zeroed on failure; release with fri_tbias_free.
FR_NODISCARD fr_err fri_tbias_fit(fri_tbias *out, const fri_triplet *r,
    const float *resid, size_t n, uint32_t n_items, const fri_tbias_config *c);

// Offset for (u, i) at time ts: 0 for what the fit never saw.
float fri_tbias_offset(const fri_tbias *t, uint32_t u, uint32_t i, int64_t ts);

void fri_tbias_free(fri_tbias *t);

#endif
