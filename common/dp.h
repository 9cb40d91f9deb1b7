// User-level differential privacy for federated averaging (DP-FedAvg,
// McMahan et al., ICLR 2018): clip each client's whole round update to L2
// norm C, add Gaussian noise N(0, (z*C)^2) to the SUM of the clipped
// updates, and account with Renyi DP of the Poisson-subsampled Gaussian
// mechanism (Mironov, Talwar, Zhang 2019), converted to (epsilon, delta).
// See docs/DP.md for where each piece runs and how to pick z.
//
// Everything here is reentrant: no global mutable state, no allocation.
#ifndef FR_COMMON_DP_H
#define FR_COMMON_DP_H

#include <stddef.h>
#include <stdint.h>

#include "fedrec/err.h"
#include "rng.h"

// ---------------------------------------------------------------- clipping

// Scales v[0..n) in place so that ||v||_2 <= clip. Returns the factor applied
// (1 when ||v|| <= clip, else slightly below clip/||v|| so that float
// rounding can never leave the norm above clip). *norm_before (may be NULL)
// receives ||v|| before clipping.
// Privacy-safe on bad input: if clip is not a finite positive number, or v
// holds a NaN/Inf, v is zeroed and 0 is returned (*norm_before is then the
// computed, possibly non-finite, norm; 0 for a bad clip). n == 0 returns 1.
float fri_dp_clip_l2(float *v, size_t n, float clip, float *norm_before);

// Same, on the concatenation of n_rows row blocks rows[i][0..lens[i]): a
// client update is a set of rows (its user row plus touched item rows), and
// the sensitivity bound is on the norm of the whole update, not per row. A
// NULL rows[i] with lens[i] == 0 is allowed; a NULL rows[i] with lens[i] > 0
// or NULL rows/lens with n_rows > 0 counts as bad input (nothing is
// touched, returns 0 with *norm_before = 0).
float fri_dp_clip_l2_rows(float *const *rows, const size_t *lens,
                          size_t n_rows, float clip, float *norm_before);

// Same, on a row-major matrix: row i is data[i*stride .. i*stride+cols).
// stride < cols (with rows > 1) or a size overflow is bad input.
float fri_dp_clip_l2_strided(float *data, size_t rows, size_t cols,
                             size_t stride, float clip, float *norm_before);

// ------------------------------------------------- statistics contributions
//
// A device's contribution to the item statistics (ALS, VBMF): its packed
// Gram `gram` (gl values) is added to each of its n_rows rated items, its
// rows (rows_len values) once each, and the block `ext` (n_ext values) once:
// ALS [rating sum | count], VBMF [E[u] (d) | E[u u^T] (P) | squared
// residuals | 1 | rating sum | count]. The L2 norm of what the device adds
// to the released sums is therefore
//   n_rows ||gram||^2 + ||rows||^2 + ||ext||^2,
// with the ext values that grow with the number of ratings (squared
// residuals, rating sum and count: fri_dp_stats_tail) measured in units
// of 1 / FRI_DP_STATS_TAIL_SCALE: the released sums carry them multiplied
// by the scale, so their noise is the common stddev divided by it
// (docs/DP.md, section 6).
#define FRI_DP_STATS_TAIL_SCALE 0.0625

// Whether ext[t] (of n_ext) is a tail value; vb: the VBMF layout.
int fri_dp_stats_tail(size_t t, size_t n_ext, int vb);

// That squared norm (+inf if any value is not finite or a pointer is
// missing).
double fri_dp_stats_norm2(const float *gram, size_t gl, size_t n_rows,
                          const float *rows, size_t rows_len,
                          const float *ext, size_t n_ext, int vb);

// Scales gram, rows and ext together so that the norm above is <= clip
// (one factor: a smaller weight on every rating of the device, so the
// statistics stay those of a weighted least squares). Returns the factor;
// non-finite input or a bad clip zeroes everything and returns 0.
float fri_dp_stats_clip(float *gram, size_t gl, size_t n_rows, float *rows,
                        size_t rows_len, float *ext, size_t n_ext, int vb,
                        float clip, float *norm_before);

// Post-processing of a noisy summed Gram (packed d x d, last coordinate
// the constant 1, so its last diagonal entry is the summed rater weight c):
// positive-part James-Stein shrinkage of its deviation from c * unit,
// where unit is the pooled Gram per unit of weight (summed over every
// item, so nearly free of noise), given the noise stddev of each packed
// entry. Keeps the factor alpha = max(0, 1 - (P - 1) sd^2 / |dev|^2) of
// the deviation (P packed entries, the last of which deviates by 0) and
// returns it; an item whose raters look like everyone's gets the pooled
// shape scaled by its weight, one that differs by far more than the noise
// keeps its own Gram. Non-finite input is left alone (returns 1).
double fri_dp_gram_shrink(float *g, size_t d, const double *unit,
                          double noise_sd);

// ------------------------------------------------------------------- noise

#define FRI_DP_SEEDBYTES 32

// Noise is a discrete Gaussian on a grid (Canonne, Kamath, Steinke 2020):
// value = (round(v / g) + Z) * g with g = fri_dp_grid(stddev) and
// Z ~ N_Z(0, s2), s2 = ceil((stddev / g)^2). The sampler is exact integer
// arithmetic on a ChaCha20 keystream (no Box-Muller, no floating point in
// the noise: Mironov 2012's attacks on floating-point noise do not apply),
// and the noisy value is computed exactly in double before it is stored as
// float. The discrete Gaussian's Renyi DP is at most the continuous one's
// for the same sensitivity and sigma (CKS 2020, section 2), so the RDP
// accountant below stays valid; rounding v to the grid adds at most
// sqrt(n) g to the L2 sensitivity (g <= stddev / 2^FRI_DP_GRID_BITS).
#define FRI_DP_GRID_BITS 16

// The grid for a noise of this stddev: the power of two with
// stddev / g in [2^FRI_DP_GRID_BITS, 2^(FRI_DP_GRID_BITS + 1)). 0 when
// stddev is not positive and finite.
double fri_dp_grid(double stddev);

// n samples of the discrete Gaussian N_Z(0, s2) (P(z) proportional to
// exp(-z^2 / (2 s2))) from the ChaCha20 keystream of seed.
// FR_EINVAL: NULL with n > 0, s2 == 0 or s2 > 2^44.
FR_NODISCARD fr_err fri_dp_discrete_gaussian(int64_t *z, size_t n,
                                             uint64_t s2,
                                             const uint8_t seed[FRI_DP_SEEDBYTES]);

// Adds the grid discrete Gaussian of this stddev to v[0..n), its keystream
// key drawn from the seeded simulator stream r. For reproducible
// simulations only: anyone who knows the seed can subtract the noise, so
// real deployments use the _secret variant.
// FR_EINVAL: v or r NULL with n > 0, stddev negative or not finite.
FR_NODISCARD fr_err fri_dp_add_gaussian(float *v, size_t n, double stddev,
                                        fri_rng *r);

// Adds the grid discrete Gaussian of this stddev to v[0..n), its
// randomness the ChaCha20 keystream of (per 256-value chunk) a BLAKE2b
// subkey of seed. The seed is the secret: it must be fresh per round and
// unguessable (fri_dp_noise_seed_random, or a KDF of a secret key and the
// round number); never derive it from a counter, time or the simulator
// seed. Same seed -> same noise, so a seed must never be reused.
// Intermediate keystream is wiped. Errors as fri_dp_add_gaussian.
FR_NODISCARD fr_err fri_dp_add_gaussian_secret(
    float *v, size_t n, double stddev,
    const uint8_t seed[FRI_DP_SEEDBYTES]);

// Fills seed with randombytes_buf. FR_EINTERNAL if libsodium cannot start.
FR_NODISCARD fr_err fri_dp_noise_seed_random(uint8_t seed[FRI_DP_SEEDBYTES]);

// Per-client standard deviation for distributed noise under secure
// aggregation: each of m clients adds N(0, sigma^2/m) so the sum carries
// N(0, sigma^2), i.e. returns sigma/sqrt(m). Pass for m the MINIMUM number
// of surviving clients the aggregator requires to unmask a round, not the
// number invited: with fewer survivors the sum carries less noise than
// sigma^2 (survivors/m of it). m == 0 or sigma not finite non-negative
// returns sigma unchanged (m == 0 -> every client adds the full noise).
double fri_dp_distributed_stddev(double sigma, uint32_t m_expected);

// -------------------------------------------------------------- accountant

// Renyi orders used by the accountant: 1.1, 1.2, ..., 10.9 (step 0.1),
// 11..63, then 64, 80, 96, 128, 192, 256, 512, 1024. A superset of the
// orders of TensorFlow Privacy's compute_dp_sgd_privacy.
#define FRI_DP_N_ORDERS 160

// The i-th order (i < FRI_DP_N_ORDERS), ascending; NAN out of range.
double fri_dp_order(size_t i);

// RDP of ONE step of the Poisson-subsampled Gaussian mechanism with sampling
// rate q in [0, 1], noise multiplier z = stddev/sensitivity >= 0, at order
// alpha > 1. Integer alpha: exact binomial expansion in log space. Fractional
// alpha: the convergent two-sided series of Mironov et al. 2019 (Sec. 3.3),
// as computed by TensorFlow Privacy's compute_rdp. q == 0 gives 0, q == 1
// the plain Gaussian alpha/(2 z^2), z == 0 (q > 0) gives +INFINITY.
// FR_EINVAL: out of range or non-finite q, z, alpha; alpha > 1e5.
// FR_EINTERNAL: the fractional series failed numerically (never observed on
// the default orders; callers may treat the order as unusable).
FR_NODISCARD fr_err fri_dp_rdp(double q, double z, double alpha,
                               double *rdp_out);

typedef enum fri_dp_conv {
    // eps = rdp + log(1/delta)/(alpha-1) (Mironov 2017, Prop. 3); what
    // TensorFlow Privacy used until 2020 and what its tutorials quote.
    FRI_DP_CONV_CLASSIC = 0,
    // eps = rdp + log((alpha-1)/alpha) - (log delta + log alpha)/(alpha-1)
    // (Canonne, Kamath, Steinke 2020, arXiv:2004.00010v4 Prop. 12;
    // Balle et al. 2020, arXiv:2001.05990 Eq. 20),
    // plus eps = 0 when delta >= sqrt(1 - exp(-rdp)) (KL/TV bound). Never
    // larger than CLASSIC.
    FRI_DP_CONV_TIGHT = 1,
    // Minimum of both per order (equals TIGHT; kept explicit for callers
    // that want "the best bound we can prove").
    FRI_DP_CONV_BEST = 2
} fri_dp_conv;

// Converts an RDP curve (rdp[i] at orders[i], total over all steps) to the
// smallest epsilon over the given orders at the given delta in (0, 1).
// *best_order (may be NULL) receives the minimising order. Orders <= 1 and
// non-finite rdp entries are skipped; +INFINITY when none is usable.
// FR_EINVAL: NULL arrays with n > 0, delta out of (0, 1), eps_out NULL.
FR_NODISCARD fr_err fri_dp_eps_from_rdp(const double *orders,
                                        const double *rdp, size_t n,
                                        double delta, fri_dp_conv conv,
                                        double *eps_out, double *best_order);

// (eps, delta) after `steps` rounds, each sampling clients with probability
// q and adding noise of multiplier z, over the default orders, with the
// BEST conversion. eps is +INFINITY for z == 0 (and q, steps > 0).
FR_NODISCARD fr_err fri_dp_epsilon(double q, double noise_multiplier,
                                   uint64_t steps, double delta,
                                   double *eps_out, double *best_order);

// Same with an explicit conversion.
FR_NODISCARD fr_err fri_dp_epsilon_conv(double q, double noise_multiplier,
                                        uint64_t steps, double delta,
                                        fri_dp_conv conv, double *eps_out,
                                        double *best_order);

// Smallest noise multiplier z (to relative precision 1e-6, rounded up) with
// fri_dp_epsilon(q, z, steps, delta) <= target_eps. FR_EINVAL on bad
// arguments or when even z = 1e4 does not reach the target.
FR_NODISCARD fr_err fri_dp_noise_for_epsilon(double q, uint64_t steps,
                                             double delta, double target_eps,
                                             double *z_out);

// Running accountant for rounds whose q or z vary (e.g. a different number of
// participants per round): RDP adds over rounds, order by order.
typedef struct fri_dp_accountant {
    double rdp[FRI_DP_N_ORDERS];
} fri_dp_accountant;

void fri_dp_accountant_init(fri_dp_accountant *a);
// Composes `steps` rounds of (q, z). On error a is unchanged.
FR_NODISCARD fr_err fri_dp_accountant_add(fri_dp_accountant *a, double q,
                                          double noise_multiplier,
                                          uint64_t steps);
FR_NODISCARD fr_err fri_dp_accountant_epsilon(const fri_dp_accountant *a,
                                              double delta, fri_dp_conv conv,
                                              double *eps_out,
                                              double *best_order);

#endif
