// Robust aggregation bounds (robust.h).
#include "robust.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "linalg.h"
#include "vbmf.h"

// Values remembered per quantity: about two rounds of ML-100K devices, so
// a bound follows the population but one round's attackers stay a
// minority of the window.
#define WIN 2048
// Rows of one update entered into the residual window (strided): a device
// with many rows must not fill it alone.
#define ROWS_PER_UPDATE 16

typedef struct window {
    float  v[WIN];
    size_t n; // values held (<= WIN)
    size_t next; // ring position
    size_t fresh; // inserts since the quantiles were computed
    double q25, q50, q75;
} window;

enum { W_RES, W_TRACE, W_GNORM, W_MEAN, W_COUNT, W_SSE, W_BU, W_N_ };

// Values a window needs before its bound applies: a median of fewer is
// one or two devices' say.
#define MIN_OBS 16

// The bounds a round applies (0: off; the mean interval +-inf), fixed
// when the round opens (fri_robust_next_round).
typedef struct bounds {
    double res, tr, g, cnt, sse, bu, m_lo, m_hi;
} bounds;

struct fri_robust {
    pthread_mutex_t  mtx;
    fri_agg_algo     algo;
    int              implicit;
    uint32_t         k;
    uint32_t         d;
    size_t           gram_len;
    size_t           vb_len;
    window           w[W_N_];
    bounds           b;
    fri_robust_stats st;
    float           *scratch; // WIN floats for the quantiles
};

static int
cmp_float(const void *x, const void *y)
{
    float a = *(const float *)x, b = *(const float *)y;
    return (a > b) - (a < b);
}

static void
win_add(window *w, double v)
{
    if (!isfinite(v)) {
        return;
    }
    w->v[w->next] = (float)(v > 3e38 ? 3e38 : v < -3e38 ? -3e38 : v);
    w->next       = (w->next + 1) % WIN;
    if (w->n < WIN) {
        w->n++;
    }
    w->fresh++;
}

// Quartiles of the window when anything is new: a sort of at most WIN
// floats per window per round.
static void
win_update(window *w, float *scratch)
{
    if (w->n == 0 || w->fresh == 0) {
        return;
    }
    memcpy(scratch, w->v, w->n * sizeof(float));
    qsort(scratch, w->n, sizeof(float), cmp_float);
    w->q25   = scratch[(w->n - 1) / 4];
    w->q50   = w->n % 2
          ? scratch[w->n / 2]
          : 0.5 * ((double)scratch[w->n / 2 - 1] + scratch[w->n / 2]);
    w->q75   = scratch[(3 * (w->n - 1)) / 4];
    w->fresh = 0;
}

fr_err
fri_robust_create(fri_robust **out, const fri_agg_config *cfg)
{
    *out          = NULL;
    fri_robust *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return FR_ENOMEM;
    }
    r->scratch = malloc(WIN * sizeof(float));
    if (r->scratch == NULL) {
        free(r);
        return FR_ENOMEM;
    }
    pthread_mutex_init(&r->mtx, NULL);
    r->algo     = cfg->algo;
    r->implicit = cfg->implicit;
    r->k        = cfg->k;
    r->d        = cfg->k + 1;
    r->gram_len = fri_packed_len(r->d);
    r->vb_len   = cfg->algo == FRI_AGG_VBMF ? fri_vb_glob_len(cfg->k) : 0;
    r->b.m_lo   = -INFINITY;
    r->b.m_hi   = INFINITY;
    *out        = r;
    return FR_OK;
}

void
fri_robust_destroy(fri_robust *r)
{
    if (r == NULL) {
        return;
    }
    pthread_mutex_destroy(&r->mtx);
    free(r->scratch);
    free(r);
}

// q * the window's median, or 0 (off) while it holds too few values.
static double
med_bound(const window *w, double q)
{
    return w->n >= MIN_OBS ? q * w->q50 : 0.0;
}

void
fri_robust_next_round(fri_robust *r)
{
    if (r == NULL) {
        return;
    }
    const double M = FRI_ROBUST_M;
    pthread_mutex_lock(&r->mtx);
    window *w = r->w;
    for (int i = 0; i < W_N_; i++) {
        win_update(&w[i], r->scratch);
    }
    r->b.res  = med_bound(&w[W_RES], FRI_ROBUST_M_RES);
    r->b.tr   = med_bound(&w[W_TRACE], M * M);
    r->b.g    = med_bound(&w[W_GNORM], M);
    r->b.cnt  = med_bound(&w[W_COUNT], M);
    r->b.sse  = med_bound(&w[W_SSE], M * M);
    r->b.bu   = med_bound(&w[W_BU], M * M);
    r->b.m_lo = -INFINITY;
    r->b.m_hi = INFINITY;
    if (w[W_MEAN].n >= MIN_OBS) {
        double iqr = w[W_MEAN].q75 - w[W_MEAN].q25;
        r->b.m_lo  = w[W_MEAN].q50 - 4.0 * iqr;
        r->b.m_hi  = w[W_MEAN].q50 + 4.0 * iqr;
    }
    pthread_mutex_unlock(&r->mtx);
}

void
fri_robust_stats_get(fri_robust *r, fri_robust_stats *s)
{
    memset(s, 0, sizeof(*s));
    if (r == NULL) {
        return;
    }
    pthread_mutex_lock(&r->mtx);
    *s = r->st;
    pthread_mutex_unlock(&r->mtx);
}

static double
norm2(const float *v, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        s += (double)v[i] * v[i];
    }
    return sqrt(s);
}

static void
scale(float *v, size_t n, double f)
{
    for (size_t i = 0; i < n; i++) {
        v[i] = (float)(v[i] * f);
    }
}

// Trace of the first k diagonal entries of a packed d x d matrix: E||p||^2
// of x = [p; 1] (Gram) or u = [p; b_u] (VBMF block).
static double
p_trace(const float *P, uint32_t d)
{
    double t = 0.0;
    for (uint32_t a = 0; a + 1 < d; a++) {
        t += P[fri_packed_index(d, a, a)];
    }
    return t;
}

// P -> D P D with D = diag(c, ..., c, e) (packed d x d).
static void
packed_dscale(float *P, uint32_t d, double c, double e)
{
    for (uint32_t a = 0; a < d; a++) {
        for (uint32_t b = a; b < d; b++) {
            double f = (a + 1 < d ? c : e) * (b + 1 < d ? c : e);
            float *x = &P[fri_packed_index(d, a, b)];
            *x       = (float)(*x * f);
        }
    }
}

fr_err
fri_robust_bound(
    fri_robust *r, const fri_agg_update *u, fri_agg_update *out, float **buf)
{
    *out = *u;
    *buf = NULL;
    if (r->implicit) {
        return FR_OK;
    }
    const uint32_t d = r->d, k = r->k;
    const int      stats = r->algo != FRI_AGG_GRAD; // ALS / VBMF shape
    const size_t   gl    = stats ? u->gram_len : 0;
    const size_t   vl    = r->vb_len > 0 ? u->vb_len : 0;
    float         *b     = malloc((gl + u->rows_len + vl + 1) * sizeof(float));
    if (b == NULL) {
        return FR_ENOMEM;
    }
    float *gram = b, *rows = b + gl, *vb = b + gl + u->rows_len;
    if (gl > 0) {
        memcpy(gram, u->gram, gl * sizeof(float));
        out->gram = gram;
    }
    if (u->rows_len > 0) {
        memcpy(rows, u->rows, u->rows_len * sizeof(float));
    }
    out->rows = rows;
    if (vl > 0) {
        memcpy(vb, u->vb, vl * sizeof(float));
        out->vb = vb;
    }
    *buf                = b;
    int    clipped      = 0;
    size_t rows_clipped = 0;
    double sum = u->sum_ratings, count = u->count, weight = u->weight;

    // Unit weight: one device is one user (Gram corner 1).
    if (stats && gl == r->gram_len) {
        double corner = gram[fri_packed_index(d, k, k)];
        if (corner > 1.0) {
            double f = 1.0 / corner;
            scale(gram, gl, f);
            scale(rows, u->rows_len, f);
            scale(vb, vl, f);
            sum *= f;
            count *= f;
            weight *= f;
            clipped = 1;
        }
    }

    pthread_mutex_lock(&r->mtx);
    // Observe for the next rounds' bounds (before clipping: medians of
    // what devices send are robust to a minority however extreme its
    // values).
    window *w      = r->w;
    double  t      = stats && gl == r->gram_len ? p_trace(gram, d) : 0.0;
    size_t  stride = u->n > ROWS_PER_UPDATE ? u->n / ROWS_PER_UPDATE : 1;
    for (size_t j = 0; j < u->n; j += stride) {
        const float *row = rows + j * d;
        if (stats) {
            win_add(&w[W_RES], fabs((double)row[k]));
        } else {
            win_add(&w[W_GNORM], norm2(row, d));
        }
    }
    if (stats) {
        win_add(&w[W_TRACE], t);
    }
    if (count > 0.0) {
        win_add(&w[W_MEAN], sum / count);
        win_add(&w[W_COUNT], count);
    }
    if (vl > 0) {
        const float *U = vb + d;
        size_t       P = fri_packed_len(d);
        if (count > 0.0) {
            win_add(&w[W_SSE], vb[d + P] / count);
        }
        win_add(&w[W_BU], U[fri_packed_index(d, k, k)]);
    }
    const bounds B     = r->b;
    pthread_mutex_unlock(&r->mtx);
    const double res_b = B.res, tr_b = B.tr, g_b = B.g, cnt_b = B.cnt;
    const double sse_b = B.sse, bu_b = B.bu, m_lo = B.m_lo, m_hi = B.m_hi;

    // User-vector norm: p -> c p everywhere it appears.
    if (stats && t > tr_b && tr_b > 0.0) {
        double c = sqrt(tr_b / t);
        packed_dscale(gram, d, c, 1.0);
        for (uint32_t j = 0; j < u->n; j++) {
            scale(rows + (size_t)j * d, k, c);
        }
        t       = tr_b;
        clipped = 1;
    }
    if (vl > 0) {
        float *U  = vb + d;
        double tv = p_trace(U, d), bu = U[fri_packed_index(d, k, k)];
        double c = tv > tr_b && tr_b > 0.0 ? sqrt(tr_b / tv) : 1.0;
        double e = bu > bu_b && bu_b > 0.0 ? sqrt(bu_b / bu) : 1.0;
        if (c < 1.0 || e < 1.0) {
            scale(vb, k, c);
            vb[k] = (float)(vb[k] * e);
            packed_dscale(U, d, c, e);
            clipped = 1;
        }
        size_t P = fri_packed_len(d);
        // One device is one user; its expected squared error is bounded
        // like its residuals.
        if (vb[d + P + 1] > 1.0f) {
            vb[d + P + 1] = 1.0f;
            clipped       = 1;
        }
    }
    // Per-item contribution caps.
    for (uint32_t j = 0; j < u->n; j++) {
        float *row = rows + (size_t)j * d;
        int    hit = 0;
        if (stats) {
            double s = fabs((double)row[k]);
            if (s > res_b && res_b > 0.0) {
                scale(row, d, res_b / s);
                hit = 1;
            }
            double rb = 1.5 * sqrt(t + 1.0) * res_b, nr = norm2(row, d);
            if (nr > rb && rb > 0.0) {
                scale(row, d, rb / nr);
                hit = 1;
            }
        } else {
            double nr = norm2(row, d);
            if (nr > g_b && g_b > 0.0) {
                scale(row, d, g_b / nr);
                hit = 1;
            }
        }
        rows_clipped += (size_t)hit;
    }
    // Global mean, count and weight.
    double n_rows = (double)u->n;
    double m      = count > 0.0 ? sum / count : 0.0;
    double w_cap  = cnt_b > 0.0 && cnt_b < n_rows ? cnt_b : n_rows;
    if (count > n_rows) {
        count   = n_rows;
        clipped = 1;
    }
    if (weight > w_cap) {
        weight  = w_cap;
        clipped = 1;
    }
    if (m < m_lo || m > m_hi) {
        m       = m < m_lo ? m_lo : m_hi;
        clipped = 1;
    }
    out->sum_ratings = m * count;
    out->count       = count;
    out->weight      = weight;
    if (vl > 0 && count > 0.0) {
        size_t P   = fri_packed_len(d);
        double sse = vb[d + P];
        if (sse > sse_b * count && sse_b > 0.0) {
            vb[d + P] = (float)(sse_b * count);
            clipped   = 1;
        }
    }
    pthread_mutex_lock(&r->mtx);
    r->st.updates++;
    r->st.clipped += (uint64_t)(clipped || rows_clipped > 0);
    r->st.rows_clipped += rows_clipped;
    pthread_mutex_unlock(&r->mtx);
    return FR_OK;
}
