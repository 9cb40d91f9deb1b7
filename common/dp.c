#include "dp.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include <sodium.h>

#define DP_PI 3.14159265358979323846
#define DP_SQRT2 1.41421356237309504880

// ---------------------------------------------------------------- clipping

static int
clip_ok(float clip)
{
    return isfinite(clip) && clip > 0.0f;
}

// Factor that brings a vector of norm `norm` to at most `clip`. Scaling in
// float rounds each element by up to 2^-24 relative, so shrink by a few ulps
// more than clip/norm: the sensitivity bound must hold exactly.
static float
clip_factor(double norm, float clip)
{
    if (norm <= (double) clip) {
        return 1.0f;
    }
    return (float) ((double) clip / norm * (1.0 - 4.0 * FLT_EPSILON));
}

static double
sumsq(const float *v, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += (double) v[i] * (double) v[i];
    }
    return s;
}

static void
scale(float *v, size_t n, float f)
{
    if (f == 0.0f) {
        // Zero explicitly: NaN * 0 is still NaN.
        memset(v, 0, n * sizeof *v);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        v[i] *= f;
    }
}

// Scale factor for a vector whose squared norm is s: 0 for a bad clip or
// a non-finite norm (the update is dropped), else clip_factor. The norm is
// reported in *norm_before only when the clip is valid.
static float
factor_of_sumsq(double s, float clip, float *norm_before)
{
    if (!clip_ok(clip)) {
        return 0.0f;
    }
    double norm = sqrt(s);
    if (norm_before) {
        *norm_before = (float) norm;
    }
    return isfinite(norm) ? clip_factor(norm, clip) : 0.0f;
}

float
fri_dp_clip_l2(float *v, size_t n, float clip, float *norm_before)
{
    if (norm_before) {
        *norm_before = 0.0f;
    }
    if (n == 0) {
        return 1.0f;
    }
    if (v == NULL) {
        return 0.0f;
    }
    if (!clip_ok(clip)) {
        scale(v, n, 0.0f);
        return 0.0f;
    }
    float f = factor_of_sumsq(sumsq(v, n), clip, norm_before);
    if (f != 1.0f) {
        scale(v, n, f);
    }
    return f;
}

float
fri_dp_clip_l2_rows(float *const *rows, const size_t *lens, size_t n_rows,
                    float clip, float *norm_before)
{
    if (norm_before) {
        *norm_before = 0.0f;
    }
    if (n_rows == 0) {
        return 1.0f;
    }
    if (rows == NULL || lens == NULL) {
        return 0.0f;
    }
    for (size_t r = 0; r < n_rows; r++) {
        if (rows[r] == NULL && lens[r] > 0) {
            return 0.0f;
        }
    }
    double s = 0.0;
    for (size_t r = 0; r < n_rows; r++) {
        if (lens[r] > 0) {
            s += sumsq(rows[r], lens[r]);
        }
    }
    float f = factor_of_sumsq(s, clip, norm_before);
    if (f != 1.0f) {
        for (size_t r = 0; r < n_rows; r++) {
            if (lens[r] > 0) {
                scale(rows[r], lens[r], f);
            }
        }
    }
    return f;
}

int
fri_dp_stats_tail(size_t t, size_t n_ext, int vb)
{
    if (t >= n_ext || n_ext < (vb ? 4u : 2u)) {
        return 0;
    }
    // ALS: [sum | count]; VBMF: [... | sq | 1 | sum | count] (the user
    // count stays unscaled: one per device).
    return t + 2 >= n_ext || (vb && t + 4 == n_ext);
}

double
fri_dp_stats_norm2(const float *gram, size_t gl, size_t n_rows,
                   const float *rows, size_t rows_len, const float *ext,
                   size_t n_ext, int vb)
{
    if ((gl > 0 && gram == NULL) || (rows_len > 0 && rows == NULL) ||
        (n_ext > 0 && ext == NULL)) {
        return INFINITY;
    }
    const double ts = FRI_DP_STATS_TAIL_SCALE;
    double       s = (double) n_rows * sumsq(gram, gl) + sumsq(rows, rows_len);
    for (size_t t = 0; t < n_ext; t++) {
        double v = ext[t];
        if (fri_dp_stats_tail(t, n_ext, vb)) {
            v *= ts;
        }
        s += v * v;
    }
    return isfinite(s) ? s : INFINITY;
}

float
fri_dp_stats_clip(float *gram, size_t gl, size_t n_rows, float *rows,
                  size_t rows_len, float *ext, size_t n_ext, int vb,
                  float clip, float *norm_before)
{
    if (norm_before) {
        *norm_before = 0.0f;
    }
    double s = fri_dp_stats_norm2(gram, gl, n_rows, rows, rows_len, ext, n_ext,
                                  vb);
    float  f = factor_of_sumsq(s, clip, norm_before);
    if (f != 1.0f) {
        if (gl > 0 && gram != NULL) {
            scale(gram, gl, f);
        }
        if (rows_len > 0 && rows != NULL) {
            scale(rows, rows_len, f);
        }
        if (n_ext > 0 && ext != NULL) {
            scale(ext, n_ext, f);
        }
    }
    return f;
}

double
fri_dp_gram_shrink(float *g, size_t d, const double *unit, double noise_sd)
{
    if (g == NULL || unit == NULL || d == 0) {
        return 1.0;
    }
    const size_t P    = d * (d + 1) / 2;
    const double c    = g[P - 1] > 0.0f ? (double) g[P - 1] : 0.0;
    double       dev2 = 0.0;
    for (size_t e = 0; e < P; e++) {
        double t = (double) g[e] - c * unit[e];
        dev2 += t * t;
    }
    if (!isfinite(dev2) || !isfinite(noise_sd)) {
        return 1.0;
    }
    double al = dev2 > 0.0
                    ? 1.0 - (double) (P - 1) * noise_sd * noise_sd / dev2
                    : 0.0;
    al = al < 0.0 ? 0.0 : al;
    for (size_t e = 0; e < P; e++) {
        double t = c * unit[e];
        g[e]     = (float) (t + al * ((double) g[e] - t));
    }
    return al;
}

float
fri_dp_clip_l2_strided(float *data, size_t rows, size_t cols, size_t stride,
                       float clip, float *norm_before)
{
    if (norm_before) {
        *norm_before = 0.0f;
    }
    if (rows == 0 || cols == 0) {
        return 1.0f;
    }
    if (data == NULL || (rows > 1 && stride < cols)) {
        return 0.0f;
    }
    // Last element index: (rows-1)*stride + cols - 1 must not overflow.
    if (rows > 1 && stride > (SIZE_MAX - cols) / (rows - 1)) {
        return 0.0f;
    }
    double s = 0.0;
    for (size_t i = 0; i < rows; i++) {
        s += sumsq(data + i * stride, cols);
    }
    float f = factor_of_sumsq(s, clip, norm_before);
    if (f != 1.0f) {
        for (size_t i = 0; i < rows; i++) {
            scale(data + i * stride, cols, f);
        }
    }
    return f;
}

// ------------------------------------------------------------------- noise

static int
stddev_ok(double s)
{
    return isfinite(s) && s >= 0.0;
}

// Keystream chunk: 8 ChaCha20 blocks = 64 uint64 = 32 normal pairs.
#define KS_BLOCKS 8
#define KS_BYTES (64 * KS_BLOCKS)

static uint64_t
load64le(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--) {
        x = (x << 8) | p[i];
    }
    return x;
}

// Discrete Gaussian noise (Canonne, Kamath, Steinke, "The Discrete
// Gaussian for Differential Privacy", NeurIPS 2020, Algorithms 1-3): exact
// integer arithmetic on a ChaCha20 keystream, no floating point in the
// sampler, so the noise cannot leak the input through rounding (Mironov,
// CCS 2012). Rationals are 128-bit: the compiler's unsigned __int128 where
// it has one (64-bit targets), else a two-word struct with the same
// wrap-around arithmetic (32-bit targets such as armv7), so every target
// draws the same noise from the same seed.
#if defined(__SIZEOF_INT128__) && !defined(FRI_DP_NO_INT128)
__extension__ typedef unsigned __int128 u128;

static inline u128 u128_of(uint64_t x) { return x; }
static inline u128 u128_hl(uint64_t hi, uint64_t lo)
{
    return ((u128) hi << 64) | lo;
}
static inline u128 u128_add(u128 a, u128 b) { return a + b; }
static inline u128 u128_sub(u128 a, u128 b) { return a - b; }
static inline u128 u128_mul(u128 a, u128 b) { return a * b; }
static inline u128 u128_mod(u128 a, u128 b) { return a % b; }
static inline int u128_lt(u128 a, u128 b) { return a < b; }
static inline uint64_t u128_lo(u128 a) { return (uint64_t) a; }
#else
typedef struct u128 {
    uint64_t hi, lo;
} u128;

static inline u128
u128_hl(uint64_t hi, uint64_t lo)
{
    u128 r = {hi, lo};
    return r;
}
static inline u128 u128_of(uint64_t x) { return u128_hl(0, x); }
static inline uint64_t u128_lo(u128 a) { return a.lo; }
static inline int
u128_lt(u128 a, u128 b)
{
    return a.hi < b.hi || (a.hi == b.hi && a.lo < b.lo);
}
static inline u128
u128_add(u128 a, u128 b)
{
    uint64_t lo = a.lo + b.lo;
    return u128_hl(a.hi + b.hi + (lo < a.lo), lo);
}
static inline u128
u128_sub(u128 a, u128 b)
{
    return u128_hl(a.hi - b.hi - (a.lo < b.lo), a.lo - b.lo);
}
// Full 64 x 64 -> 128 product from 32-bit halves.
static inline u128
u128_mul64(uint64_t a, uint64_t b)
{
    uint64_t a0 = a & 0xffffffffu, a1 = a >> 32;
    uint64_t b0 = b & 0xffffffffu, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
    return u128_hl(p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32),
                   (mid << 32) | (p00 & 0xffffffffu));
}
// Product modulo 2^128, as unsigned __int128 multiplies.
static inline u128
u128_mul(u128 a, u128 b)
{
    u128 r = u128_mul64(a.lo, b.lo);
    r.hi += a.hi * b.lo + a.lo * b.hi;
    return r;
}
// a mod b, b != 0: restoring division, one bit at a time.
static u128
u128_mod(u128 a, u128 b)
{
    if (a.hi == 0 && b.hi == 0) {
        return u128_of(a.lo % b.lo);
    }
    if (b.hi == 0 && b.lo <= 0xffffffffu) {
        // Short divisor (the common case): 32 bits at a time, as on paper.
        uint64_t r = 0;
        r = ((r << 32) | (a.hi >> 32)) % b.lo;
        r = ((r << 32) | (a.hi & 0xffffffffu)) % b.lo;
        r = ((r << 32) | (a.lo >> 32)) % b.lo;
        r = ((r << 32) | (a.lo & 0xffffffffu)) % b.lo;
        return u128_of(r);
    }
    u128 r = u128_of(0);
    for (int i = 127; i >= 0; i--) {
        uint64_t carry = r.hi >> 63; // 2r may not fit: r < b < 2^128
        uint64_t bit   = i >= 64 ? (a.hi >> (i - 64)) & 1 : (a.lo >> i) & 1;
        r              = u128_hl((r.hi << 1) | (r.lo >> 63), (r.lo << 1) | bit);
        if (carry || !u128_lt(r, b)) {
            r = u128_sub(r, b); // the true 2r + bit - b is < b: exact
        }
    }
    return r;
}
#endif

typedef struct ks_src {
    uint8_t  key[32];
    uint8_t  buf[KS_BYTES];
    size_t   pos;
    uint64_t ic; // block counter
} ks_src;

static void
ks_init(ks_src *k, const uint8_t key[32])
{
    memcpy(k->key, key, 32);
    k->pos = KS_BYTES;
    k->ic  = 0;
}

static void
ks_wipe(ks_src *k)
{
    sodium_memzero(k, sizeof *k);
}

static uint64_t
ks_u64(ks_src *k)
{
    if (k->pos + 8 > KS_BYTES) {
        static const uint8_t zeros[KS_BYTES];
        uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {0};
        crypto_stream_chacha20_xor_ic(k->buf, zeros, KS_BYTES, nonce, k->ic,
                                      k->key);
        k->ic += KS_BLOCKS;
        k->pos = 0;
    }
    uint64_t x = load64le(k->buf + k->pos);
    k->pos += 8;
    return x;
}

// Uniform in [0, n), n >= 1, by rejection (unbiased).
static u128
ks_below(ks_src *k, u128 n)
{
    const u128 max = u128_hl(UINT64_MAX, UINT64_MAX);
    const u128 lim = u128_sub(max, u128_mod(max, n)); // multiple of n
    for (;;) {
        uint64_t hi = ks_u64(k); // the high word is drawn first
        uint64_t lo = ks_u64(k);
        u128     x  = u128_hl(hi, lo);
        if (u128_lt(x, lim)) {
            return u128_mod(x, n);
        }
    }
}

// Bernoulli(num/den), 0 <= num <= den, den > 0.
static int
bern(ks_src *k, u128 num, u128 den)
{
    return u128_lt(ks_below(k, den), num);
}

// Bernoulli(exp(-num/den)) (CKS Algorithm 1), num >= 0, den > 0.
static int
bern_exp(ks_src *k, u128 num, u128 den)
{
    const u128 one = u128_of(1);
    while (u128_lt(den, num)) { // exp(-g) = exp(-1)^floor(g) * exp(-(g - floor g))
        if (!bern_exp(k, one, one)) {
            return 0;
        }
        num = u128_sub(num, den);
    }
    u128 kk = one;
    for (;;) { // gamma in [0, 1]: K = first k with Bernoulli(gamma/k) = 0
        if (!bern(k, num, u128_mul(den, kk))) {
            break;
        }
        kk = u128_add(kk, one);
    }
    return (int) (u128_lo(kk) & 1);
}

// One sample of N_Z(0, s2) with integer variance parameter s2 >= 1
// (CKS Algorithm 3 with t = floor(sqrt(s2)) + 1).
static int64_t
dgauss_one(ks_src *k, uint64_t s2, uint64_t t)
{
    for (;;) {
        // Discrete Laplace of scale t (CKS Algorithm 2, s = 1).
        const u128 one = u128_of(1);
        uint64_t   u   = u128_lo(ks_below(k, u128_of(t)));
        if (!bern_exp(k, u128_of(u), u128_of(t))) {
            continue;
        }
        uint64_t v = 0;
        while (bern_exp(k, one, one)) {
            v++;
        }
        uint64_t mag = u + t * v;
        int      neg = (int) (ks_u64(k) & 1);
        if (neg && mag == 0) {
            continue;
        }
        // Accept with exp(-(|y| - s2/t)^2 / (2 s2)) = exp(-(|y| t - s2)^2 /
        // (2 s2 t^2)).
        u128 a   = u128_mul(u128_of(mag), u128_of(t));
        u128 s   = u128_of(s2);
        u128 d   = u128_lt(s, a) ? u128_sub(a, s) : u128_sub(s, a);
        u128 num = u128_mul(d, d);
        u128 den = u128_mul(u128_mul(u128_mul(u128_of(2), s), u128_of(t)),
                            u128_of(t));
        if (bern_exp(k, num, den)) {
            return neg ? -(int64_t) mag : (int64_t) mag;
        }
    }
}

fr_err
fri_dp_discrete_gaussian(int64_t *z, size_t n, uint64_t s2,
                         const uint8_t seed[FRI_DP_SEEDBYTES])
{
    if (n > 0 && (z == NULL || seed == NULL)) {
        return FR_EINVAL;
    }
    if (s2 == 0 || s2 > ((uint64_t) 1 << 44)) {
        return FR_EINVAL; // keeps the 128-bit rationals exact
    }
    uint64_t t = 1;
    while ((t + 1) * (t + 1) <= s2) {
        t++;
    }
    t++; // floor(sqrt(s2)) + 1
    ks_src k;
    ks_init(&k, seed);
    for (size_t i = 0; i < n; i++) {
        z[i] = dgauss_one(&k, s2, t);
    }
    ks_wipe(&k);
    return FR_OK;
}

double
fri_dp_grid(double stddev)
{
    if (!(stddev > 0.0) || !isfinite(stddev)) {
        return 0.0;
    }
    int e;
    frexp(stddev, &e); // stddev in [2^(e-1), 2^e)
    return ldexp(1.0, e - 1 - FRI_DP_GRID_BITS);
}

// Rounds v to the grid g, adds g * z[i] (exact in double: both are small
// integer multiples of a power of two), stores as float (post-processing of
// the exact noisy value).
static fr_err
add_discrete(float *v, size_t n, double stddev, const uint8_t seed[32])
{
    if (n == 0 || stddev == 0.0) {
        return FR_OK;
    }
    double   g  = fri_dp_grid(stddev);
    double   sz = stddev / g; // in [2^GRID_BITS, 2^(GRID_BITS+1))
    uint64_t s2 = (uint64_t) ceil(sz * sz); // never less noise
    int64_t  z[256];
    for (size_t i = 0; i < n; i += 256) {
        size_t m  = n - i < 256 ? n - i : 256;
        uint8_t sub[32];
        // Independent stream per chunk: BLAKE2b(key = seed, chunk index).
        uint8_t idx[8];
        for (int b = 0; b < 8; b++) {
            idx[b] = (uint8_t) ((uint64_t) i >> (8 * b));
        }
        crypto_generichash(sub, sizeof sub, idx, sizeof idx, seed, 32);
        fr_err rv = fri_dp_discrete_gaussian(z, m, s2, sub);
        sodium_memzero(sub, sizeof sub);
        if (rv != FR_OK) {
            sodium_memzero(z, sizeof z);
            return rv;
        }
        for (size_t j = 0; j < m; j++) {
            double x = nearbyint((double) v[i + j] / g);
            v[i + j] = (float) ((x + (double) z[j]) * g);
        }
    }
    sodium_memzero(z, sizeof z);
    return FR_OK;
}

fr_err
fri_dp_add_gaussian(float *v, size_t n, double stddev, fri_rng *r)
{
    if (!stddev_ok(stddev) || (n > 0 && (v == NULL || r == NULL))) {
        return FR_EINVAL;
    }
    // Seeded (reproducible) mode: the keystream key comes from the
    // simulator stream, so the noise is the same discrete Gaussian.
    uint8_t seed[FRI_DP_SEEDBYTES];
    for (int i = 0; i < 4; i++) {
        uint64_t x = fri_rng_next(r);
        for (int b = 0; b < 8; b++) {
            seed[8 * i + b] = (uint8_t) (x >> (8 * b));
        }
    }
    fr_err rv = add_discrete(v, n, stddev, seed);
    sodium_memzero(seed, sizeof seed);
    return rv;
}

fr_err
fri_dp_add_gaussian_secret(float *v, size_t n, double stddev,
                           const uint8_t seed[FRI_DP_SEEDBYTES])
{
    if (!stddev_ok(stddev) || (n > 0 && (v == NULL || seed == NULL))) {
        return FR_EINVAL;
    }
    return add_discrete(v, n, stddev, seed);
}

fr_err
fri_dp_noise_seed_random(uint8_t seed[FRI_DP_SEEDBYTES])
{
    if (seed == NULL) {
        return FR_EINVAL;
    }
    if (sodium_init() < 0) {
        return FR_EINTERNAL;
    }
    randombytes_buf(seed, FRI_DP_SEEDBYTES);
    return FR_OK;
}

double
fri_dp_distributed_stddev(double sigma, uint32_t m_expected)
{
    if (!stddev_ok(sigma) || m_expected == 0) {
        return sigma;
    }
    return sigma / sqrt((double) m_expected);
}

// -------------------------------------------------------------- accountant

double
fri_dp_order(size_t i)
{
    static const double tail[] = { 64, 80, 96, 128, 192, 256, 512, 1024 };
    if (i < 99) {
        return 1.0 + (double) (i + 1) / 10.0; // 1.1 .. 10.9, integers exact
    }
    if (i < 99 + 53) {
        return (double) (11 + (i - 99)); // 11 .. 63
    }
    if (i < FRI_DP_N_ORDERS) {
        return tail[i - 99 - 53];
    }
    return NAN;
}

// log(exp(a) + exp(b)) without overflow; -INFINITY is log(0).
static double
log_add(double a, double b)
{
    double hi = a > b ? a : b;
    double lo = a > b ? b : a;
    if (hi == -INFINITY) {
        return -INFINITY;
    }
    return hi + log1p(exp(lo - hi));
}

// log(exp(a) - exp(b)) for a >= b; NAN when the result would be negative.
static double
log_sub(double a, double b)
{
    if (b == -INFINITY) {
        return a;
    }
    if (b > a) {
        return NAN;
    }
    if (b == a) {
        return -INFINITY;
    }
    return a + log1p(-exp(b - a));
}

// log(erfc(x)), accurate where erfc underflows.
static double
log_erfc(double x)
{
    if (x < 20.0) {
        return log(erfc(x));
    }
    // Asymptotic series of log erfc at +infinity:
    // -x^2 - log(x) - log(pi)/2 - 1/(2x^2) + 5/(8x^4) - 37/(24x^6) + ...
    double x2 = x * x;
    return -0.5 * log(DP_PI) - log(x) - x2 - 0.5 / x2 + 0.625 / (x2 * x2)
           - 37.0 / 24.0 / (x2 * x2 * x2)
           + 353.0 / 64.0 / (x2 * x2 * x2 * x2);
}

// log A_alpha for integer alpha, A_alpha = E_{x~mu0}[(mu(x)/mu0(x))^alpha]
// = sum_k binom(alpha,k) q^k (1-q)^(alpha-k) exp((k^2-k)/(2 sigma^2)).
// All terms are positive; log binom is built incrementally (lgamma writes the
// global signgam, which is not thread-safe).
static double
log_a_int(double q, double sigma, uint64_t alpha)
{
    double lq = log(q), l1q = log1p(-q), inv2s2 = 0.5 / (sigma * sigma);
    double acc = -INFINITY, lbin = 0.0;
    for (uint64_t k = 0; k <= alpha; k++) {
        double kd = (double) k;
        if (k > 0) {
            lbin += log((double) (alpha - k + 1)) - log(kd);
        }
        double t = lbin + kd * lq + (double) (alpha - k) * l1q
                   + (kd * kd - kd) * inv2s2;
        acc = log_add(acc, t);
    }
    return acc;
}

// log A_alpha for fractional alpha: Mironov, Talwar, Zhang 2019, Sec. 3.3,
// splitting the integral at z0 where mu0 and mu cross; both halves are
// binomial series in i (coefficients change sign once i > alpha) that
// converge absolutely. Stops when both new terms fall below e^-30 of unity.
static double
log_a_frac(double q, double sigma, double alpha)
{
    double la0 = -INFINITY, la1 = -INFINITY;
    double s2  = sigma * sigma;
    double z0  = s2 * log(1.0 / q - 1.0) + 0.5;
    double lq = log(q), l1q = log1p(-q);
    double lcoef = 0.0; // log |binom(alpha, i)|
    int    neg   = 0;   // sign of binom(alpha, i)
    for (uint32_t i = 0; i < 1000000; i++) {
        double id = (double) i;
        if (i > 0) {
            double f = alpha - id + 1.0;
            lcoef += log(fabs(f)) - log(id);
            if (f < 0) {
                neg = !neg;
            }
        }
        double j   = alpha - id;
        double lt0 = lcoef + id * lq + j * l1q;
        double lt1 = lcoef + j * lq + id * l1q;
        double le0 = log(0.5) + log_erfc((id - z0) / (DP_SQRT2 * sigma));
        double le1 = log(0.5) + log_erfc((z0 - j) / (DP_SQRT2 * sigma));
        double ls0 = lt0 + (id * id - id) / (2.0 * s2) + le0;
        double ls1 = lt1 + (j * j - j) / (2.0 * s2) + le1;
        if (!neg) {
            la0 = log_add(la0, ls0);
            la1 = log_add(la1, ls1);
        } else {
            la0 = log_sub(la0, ls0);
            la1 = log_sub(la1, ls1);
        }
        if (isnan(la0) || isnan(la1)) {
            return NAN;
        }
        if ((ls0 > ls1 ? ls0 : ls1) < -30.0) {
            return log_add(la0, la1);
        }
    }
    return NAN;
}

fr_err
fri_dp_rdp(double q, double z, double alpha, double *rdp_out)
{
    if (rdp_out == NULL || !isfinite(q) || q < 0.0 || q > 1.0
        || !isfinite(z) || z < 0.0 || !isfinite(alpha) || !(alpha > 1.0)
        || alpha > 1e5) {
        return FR_EINVAL;
    }
    if (q == 0.0) {
        *rdp_out = 0.0;
        return FR_OK;
    }
    if (z == 0.0) {
        *rdp_out = INFINITY;
        return FR_OK;
    }
    if (q == 1.0) {
        *rdp_out = alpha / (2.0 * z * z);
        return FR_OK;
    }
    double la = alpha == floor(alpha) ? log_a_int(q, z, (uint64_t) alpha)
                                      : log_a_frac(q, z, alpha);
    if (isnan(la)) {
        return FR_EINTERNAL;
    }
    // A_alpha >= 1 in exact arithmetic; clamp rounding below zero.
    *rdp_out = la > 0.0 ? la / (alpha - 1.0) : 0.0;
    return FR_OK;
}

static double
eps_one(double a, double r, double delta, fri_dp_conv conv)
{
    double classic = r - log(delta) / (a - 1.0);
    if (conv == FRI_DP_CONV_CLASSIC) {
        return classic;
    }
    double tight;
    if (delta * delta + expm1(-r) >= 0.0) {
        // delta >= sqrt(1 - exp(-KL)) >= TV distance, and KL <= D_alpha.
        tight = 0.0;
    } else {
        tight = r + log1p(-1.0 / a) - (log(delta) + log(a)) / (a - 1.0);
    }
    if (tight < 0.0) {
        tight = 0.0;
    }
    return tight < classic ? tight : classic;
}

fr_err
fri_dp_eps_from_rdp(const double *orders, const double *rdp, size_t n,
                    double delta, fri_dp_conv conv, double *eps_out,
                    double *best_order)
{
    if (eps_out == NULL || (n > 0 && (orders == NULL || rdp == NULL))
        || !(delta > 0.0 && delta < 1.0)
        || (conv != FRI_DP_CONV_CLASSIC && conv != FRI_DP_CONV_TIGHT
            && conv != FRI_DP_CONV_BEST)) {
        return FR_EINVAL;
    }
    double best = INFINITY, bo = NAN;
    for (size_t i = 0; i < n; i++) {
        double a = orders[i], r = rdp[i];
        if (!(a > 1.0) || !isfinite(a) || !isfinite(r) || r < 0.0) {
            continue;
        }
        double e = eps_one(a, r, delta, conv);
        if (e < best) {
            best = e;
            bo   = a;
        }
    }
    *eps_out = best;
    if (best_order) {
        *best_order = bo;
    }
    return FR_OK;
}

void
fri_dp_accountant_init(fri_dp_accountant *a)
{
    if (a) {
        memset(a, 0, sizeof *a);
    }
}

fr_err
fri_dp_accountant_add(fri_dp_accountant *a, double q,
                      double noise_multiplier, uint64_t steps)
{
    if (a == NULL) {
        return FR_EINVAL;
    }
    double add[FRI_DP_N_ORDERS];
    for (size_t i = 0; i < FRI_DP_N_ORDERS; i++) {
        fr_err e = fri_dp_rdp(q, noise_multiplier, fri_dp_order(i), &add[i]);
        if (e == FR_EINTERNAL) {
            add[i] = INFINITY; // order unusable; others still bound eps
        } else if (e != FR_OK) {
            return e;
        }
    }
    for (size_t i = 0; i < FRI_DP_N_ORDERS; i++) {
        if (steps > 0) {
            a->rdp[i] += add[i] * (double) steps;
        }
    }
    return FR_OK;
}

fr_err
fri_dp_accountant_epsilon(const fri_dp_accountant *a, double delta,
                          fri_dp_conv conv, double *eps_out,
                          double *best_order)
{
    if (a == NULL) {
        return FR_EINVAL;
    }
    double orders[FRI_DP_N_ORDERS];
    for (size_t i = 0; i < FRI_DP_N_ORDERS; i++) {
        orders[i] = fri_dp_order(i);
    }
    return fri_dp_eps_from_rdp(orders, a->rdp, FRI_DP_N_ORDERS, delta, conv,
                               eps_out, best_order);
}

fr_err
fri_dp_epsilon_conv(double q, double noise_multiplier, uint64_t steps,
                    double delta, fri_dp_conv conv, double *eps_out,
                    double *best_order)
{
    fri_dp_accountant acc;
    fri_dp_accountant_init(&acc);
    fr_err e = fri_dp_accountant_add(&acc, q, noise_multiplier, steps);
    if (e != FR_OK) {
        return e;
    }
    return fri_dp_accountant_epsilon(&acc, delta, conv, eps_out, best_order);
}

fr_err
fri_dp_epsilon(double q, double noise_multiplier, uint64_t steps,
               double delta, double *eps_out, double *best_order)
{
    return fri_dp_epsilon_conv(q, noise_multiplier, steps, delta,
                               FRI_DP_CONV_BEST, eps_out, best_order);
}

fr_err
fri_dp_noise_for_epsilon(double q, uint64_t steps, double delta,
                         double target_eps, double *z_out)
{
    if (z_out == NULL || !isfinite(target_eps) || !(target_eps > 0.0)) {
        return FR_EINVAL;
    }
    double eps;
    // eps is non-increasing in z at every order, hence after the minimum.
    double hi = 1.0;
    for (;;) {
        fr_err e = fri_dp_epsilon(q, hi, steps, delta, &eps, NULL);
        if (e != FR_OK) {
            return e;
        }
        if (eps <= target_eps) {
            break;
        }
        if (hi >= 1e4) {
            return FR_EINVAL;
        }
        hi *= 2.0;
    }
    double lo = 0.0;
    while (hi - lo > 1e-6 * hi) {
        double mid = 0.5 * (lo + hi);
        fr_err e   = fri_dp_epsilon(q, mid, steps, delta, &eps, NULL);
        if (e != FR_OK) {
            return e;
        }
        if (eps <= target_eps) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    *z_out = hi;
    return FR_OK;
}
