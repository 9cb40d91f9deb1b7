#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bayes.h"
#include "dataset.h"
#include "items_fixture.h"
#include "linalg.h"
#include "mf.h"
#include "rng.h"

#define K 3
#define D (K + 1)
#define NI 10
#define NU 7

static float Q[NI * K], BI[NI];

static fri_mf_items
make_items(uint64_t seed)
{
    return fixture_items(Q, BI, NI, K, 0.6, seed);
}

// A symmetric positive definite prior with a nonzero mean.
static float PMEAN[D] = { 0.1f, -0.2f, 0.05f, 0.3f };
static float PPREC[D * D];

static fri_bpmf_prior
make_prior(void)
{
    for (size_t a = 0; a < D; a++) {
        for (size_t c = 0; c < D; c++) {
            PPREC[a * D + c] = a == c ? 2.0f + 0.5f * (float)a : 0.3f;
        }
    }
    fri_bpmf_prior p = { D, PMEAN, PPREC };
    return p;
}

// Direct dense solve of (L + beta sum z z^T) x = L m + beta sum z t.
static void
direct_posterior(double *x, double cov[D][D], double G[D][D], const double *h,
    const fri_bpmf_prior *pr, double beta)
{
    float A[D * D], b[D];
    for (size_t a = 0; a < D; a++) {
        double s = beta * h[a];
        for (size_t c = 0; c < D; c++) {
            A[a * D + c] = (float)(pr->prec[a * D + c] + beta * G[a][c]);
            s += (double)pr->prec[a * D + c] * pr->mean[c];
        }
        b[a] = (float)s;
    }
    float A2[D * D];
    memcpy(A2, A, sizeof(A));
    cr_assert_eq(fri_chol_solve(A, b, D), FR_OK);
    for (size_t a = 0; a < D; a++) {
        x[a] = b[a];
    }
    for (size_t c = 0; c < D; c++) {
        float Ac[D * D], e[D] = { 0 };
        memcpy(Ac, A2, sizeof(Ac));
        e[c] = 1.0f;
        cr_assert_eq(fri_chol_solve(Ac, e, D), FR_OK);
        for (size_t a = 0; a < D; a++) {
            cov[a][c] = e[a];
        }
    }
}

Test(common_bayes, user_mean_step_matches_direct_solve)
{
    fri_mf_items   it       = make_items(3);
    fri_bpmf_prior pr       = make_prior();
    uint32_t       items[5] = { 0, 2, 4, 7, 9 };
    float          r[5]     = { 4, 2, 5, 3, 1 };
    const double   beta     = 1.7;
    double         G[D][D] = { { 0 } }, h[D] = { 0 };
    for (int j = 0; j < 5; j++) {
        double z[D];
        for (int a = 0; a < K; a++) {
            z[a] = Q[items[j] * K + a];
        }
        z[K]     = 1.0;
        double t = r[j] - it.mu - BI[items[j]];
        for (int a = 0; a < D; a++) {
            h[a] += z[a] * t;
            for (int c = 0; c < D; c++) {
                G[a][c] += z[a] * z[c];
            }
        }
    }
    double want[D], wcov[D][D];
    direct_posterior(want, wcov, G, h, &pr, beta);
    float p[K], bu, cov[D * (D + 1) / 2];
    cr_assert_eq(fri_bpmf_user_step(p, &bu, cov, NULL, &it, items, r, 5, &pr,
                     (float)beta, NULL, NULL, 0),
        FR_OK);
    for (int a = 0; a < K; a++) {
        cr_assert(
            fabs(p[a] - want[a]) < 1e-4, "p[%d] %g vs %g", a, p[a], want[a]);
    }
    cr_assert(fabs(bu - want[K]) < 1e-4);
    for (size_t a = 0; a < D; a++) {
        for (size_t c = a; c < D; c++) {
            float got = cov[fri_packed_index(D, a, c)];
            cr_assert(fabs(got - wcov[a][c]) < 1e-4, "cov %zu %zu", a, c);
        }
    }
    // No ratings: the prior mean.
    cr_assert_eq(fri_bpmf_user_step(p, &bu, NULL, NULL, &it, NULL, NULL, 0,
                     &pr, (float)beta, NULL, NULL, 0),
        FR_OK);
    for (int a = 0; a < K; a++) {
        cr_assert(fabs(p[a] - PMEAN[a]) < 1e-5);
    }
    cr_assert(fabs(bu - PMEAN[K]) < 1e-5);
}

Test(common_bayes, user_draws_have_posterior_moments)
{
    fri_mf_items   it       = make_items(5);
    fri_bpmf_prior pr       = make_prior();
    uint32_t       items[4] = { 1, 3, 5, 8 };
    float          r[4]     = { 5, 3, 4, 2 };
    float          mean[K], mbu, cov[D * (D + 1) / 2];
    cr_assert_eq(fri_bpmf_user_step(mean, &mbu, cov, NULL, &it, items, r, 4,
                     &pr, 2.0f, NULL, NULL, 0),
        FR_OK);
    fri_rng rng;
    fri_rng_seed(&rng, 11);
    const int n    = 20000;
    double    s[D] = { 0 }, ss[D] = { 0 };
    float     work[64];
    cr_assert_geq(64, fri_bpmf_work_len(K));
    for (int t = 0; t < n; t++) {
        float p[K], bu;
        cr_assert_eq(fri_bpmf_user_step(p, &bu, NULL, NULL, &it, items, r, 4,
                         &pr, 2.0f, &rng, work, 64),
            FR_OK);
        for (int a = 0; a < D; a++) {
            double v = a < K ? p[a] : bu;
            double m = a < K ? mean[a] : mbu;
            s[a] += v;
            ss[a] += (v - m) * (v - m);
        }
    }
    for (size_t a = 0; a < D; a++) {
        double m   = a < K ? mean[a] : mbu;
        double var = cov[fri_packed_index(D, a, a)];
        cr_assert(fabs(s[a] / n - m) < 4.0 * sqrt(var / n), "mean %zu", a);
        cr_assert(fabs(ss[a] / n / var - 1.0) < 0.05, "var %zu: %g vs %g", a,
            ss[a] / n, var);
    }
}

// The item step from summed per-user statistics (what an aggregator sees)
// equals the posterior computed directly from the raters' vectors.
Test(common_bayes, summed_user_stats_equal_direct_item_step)
{
    fri_rng r;
    fri_rng_seed(&r, 21);
    float       P[NU * K], BU[NU], rating[NU];
    double      G[D][D] = { { 0 } }, h[D] = { 0 };
    const float mu                    = 3.6f;
    float       gsum[D * (D + 1) / 2] = { 0 }, hsum[D] = { 0 };
    for (int u = 0; u < NU; u++) {
        for (int a = 0; a < K; a++) {
            P[u * K + a] = (float)(0.5 * fri_rng_normal(&r));
        }
        BU[u]     = (float)(0.4 * fri_rng_normal(&r));
        rating[u] = (float)(1 + fri_rng_below(&r, 5));
        double x[D];
        for (int a = 0; a < K; a++) {
            x[a] = P[u * K + a];
        }
        x[K]     = 1.0;
        double t = rating[u] - mu - BU[u];
        for (int a = 0; a < D; a++) {
            h[a] += x[a] * t;
            for (int c = 0; c < D; c++) {
                G[a][c] += x[a] * x[c];
            }
        }
        // This user rated just this item: one Gram, one row.
        float g[D * (D + 1) / 2], hu[D];
        cr_assert_eq(fri_mf_user_item_stats(g, D * (D + 1) / 2, hu, D,
                         P + u * K, BU[u], K, mu, &rating[u], 1),
            FR_OK);
        for (size_t t2 = 0; t2 < D * (D + 1) / 2; t2++) {
            gsum[t2] += g[t2];
        }
        for (size_t a = 0; a < D; a++) {
            hsum[a] += hu[a];
        }
    }
    fri_bpmf_prior pr = make_prior();
    double         want[D], wcov[D][D];
    direct_posterior(want, wcov, G, h, &pr, 2.5);
    float q[K], b, cov[D * (D + 1) / 2];
    cr_assert_eq(fri_bpmf_item_step(
                     q, &b, cov, gsum, hsum, K, &pr, 2.5f, NULL, NULL, 0),
        FR_OK);
    for (int a = 0; a < K; a++) {
        cr_assert(fabs(q[a] - want[a]) < 1e-4);
    }
    cr_assert(fabs(b - want[K]) < 1e-4);
    for (size_t a = 0; a < D; a++) {
        cr_assert(fabs(cov[fri_packed_index(D, a, a)] - wcov[a][a]) < 1e-4);
    }
    // A draw with the same stream is the mean plus the same noise either
    // way: two calls with equal seeds agree exactly.
    fri_rng r1, r2;
    fri_rng_seed(&r1, 5);
    fri_rng_seed(&r2, 5);
    float q1[K], b1, q2[K], b2;
    cr_assert_eq(fri_bpmf_item_step(
                     q1, &b1, NULL, gsum, hsum, K, &pr, 2.5f, &r1, NULL, 0),
        FR_OK);
    cr_assert_eq(fri_bpmf_item_step(
                     q2, &b2, NULL, gsum, hsum, K, &pr, 2.5f, &r2, NULL, 0),
        FR_OK);
    cr_assert(memcmp(q1, q2, sizeof(q1)) == 0 && b1 == b2);
    cr_assert(fabs(q1[0] - q[0]) > 0.0f || fabs(b1 - b) > 0.0f);
}

Test(common_bayes, wishart_draws_average_to_the_posterior_mean)
{
    const uint32_t d = 3;
    // 50 vectors' sums.
    fri_rng r;
    fri_rng_seed(&r, 9);
    double sx[3] = { 0 }, sxx[6] = { 0 };
    for (int n = 0; n < 50; n++) {
        float x[3] = { (float)fri_rng_normal(&r),
            (float)(0.5 * fri_rng_normal(&r) + 1.0),
            (float)(2.0 * fri_rng_normal(&r)) };
        fri_bpmf_hyper_stats(sx, sxx, x, d);
    }
    float em[3], ep[9];
    cr_assert_eq(
        fri_bpmf_hyper_sample(em, ep, sx, sxx, 50, d, 2.0, 1.0, NULL), FR_OK);
    // The precision of the second coordinate ~ 1/0.25, the third ~ 1/4.
    cr_assert(ep[4] > 2.0f && ep[4] < 8.0f, "prec %g", ep[4]);
    cr_assert(ep[8] > 0.1f && ep[8] < 0.5f, "prec %g", ep[8]);
    cr_assert(fabs(em[1] - 1.0f) < 0.3f);
    double    am[3] = { 0 }, ap[9] = { 0 };
    const int n = 4000;
    for (int t = 0; t < n; t++) {
        float m[3], p[9];
        cr_assert_eq(
            fri_bpmf_hyper_sample(m, p, sx, sxx, 50, d, 2.0, 1.0, &r), FR_OK);
        for (int a = 0; a < 9; a++) {
            ap[a] += p[a];
            cr_assert_eq(p[a], p[(a % 3) * 3 + a / 3]); // symmetric
        }
        for (int a = 0; a < 3; a++) {
            am[a] += m[a];
        }
    }
    for (int a = 0; a < 9; a++) {
        double tol
            = 0.03 * sqrt(fabs(ep[(a / 3) * 4]) * fabs(ep[(a % 3) * 4]));
        cr_assert(fabs(ap[a] / n - ep[a]) < tol, "prec[%d] %g vs %g", a,
            ap[a] / n, ep[a]);
    }
    for (int a = 0; a < 3; a++) {
        cr_assert(fabs(am[a] / n - em[a]) < 0.05, "mean[%d]", a);
    }
    cr_assert_eq(fri_bpmf_hyper_sample(em, ep, sx, sxx, 50, 0, 2.0, 1.0, NULL),
        FR_EINVAL);
    cr_assert_eq(fri_bpmf_hyper_sample(em, ep, sx, sxx, 50, d, 0.0, 1.0, NULL),
        FR_EINVAL);
}

Test(common_bayes, gamma_moments)
{
    fri_rng r;
    fri_rng_seed(&r, 4);
    const double shapes[3] = { 0.5, 2.0, 40.0 };
    for (int s = 0; s < 3; s++) {
        double    sum = 0.0, sq = 0.0;
        const int n = 20000;
        for (int t = 0; t < n; t++) {
            double g = fri_bpmf_gamma(&r, shapes[s]);
            cr_assert(g >= 0.0);
            sum += g;
            sq += g * g;
        }
        double m = sum / n, v = sq / n - m * m;
        cr_assert(fabs(m / shapes[s] - 1.0) < 0.04, "mean %g", m);
        cr_assert(fabs(v / shapes[s] - 1.0) < 0.1, "var %g", v);
    }
}

static double
rmse(const float *pred, const fri_dataset *t)
{
    double s = 0.0;
    for (size_t j = 0; j < t->n; j++) {
        double e = t->r[j].rating - pred[j];
        s += e * e;
    }
    return sqrt(s / (double)t->n);
}

typedef struct synth_run {
    fri_dataset train, test;
    fri_csr     csr;
} synth_run;

static void
synth_setup(synth_run *s)
{
    fri_synth_config sc;
    fri_synth_config_init(&sc);
    sc.n_users    = 300;
    sc.n_items    = 200;
    sc.k          = 3;
    sc.density    = 0.15;
    sc.noise      = 0.5;
    sc.continuous = 1;
    sc.seed       = 3;
    fri_dataset all;
    cr_assert_eq(fri_synth_generate(&all, &sc), FR_OK);
    cr_assert_eq(fri_split_random(&all, 0.2, 1, &s->train, &s->test), FR_OK);
    fri_dataset_free(&all);
    cr_assert_eq(fri_csr_by_user(&s->csr, &s->train), FR_OK);
}

static void
synth_teardown(synth_run *s)
{
    fri_csr_free(&s->csr);
    fri_dataset_free(&s->train);
    fri_dataset_free(&s->test);
}

Test(common_bayes, sampler_reaches_noise_level_on_synthetic_data)
{
    synth_run s;
    synth_setup(&s);
    fri_bpmf_config c;
    fri_bpmf_config_init(&c);
    c.k           = 5;
    c.burnin      = 20;
    c.samples     = 40;
    c.sample_beta = 1;
    c.clamp_lo = c.clamp_hi = 0.0f; // continuous ratings
    float *pred             = malloc(s.test.n * sizeof(float));
    cr_assert_not_null(pred);
    fri_mf_model *m = NULL;
    cr_assert_eq(
        fri_train_bpmf(&m, pred, s.test.r, s.test.n, &s.csr, &c, NULL, NULL),
        FR_OK);
    double r = rmse(pred, &s.test);
    // Noise stddev 0.5: the Bayes-optimal RMSE is 0.5 (0.547 measured).
    cr_assert(r < 0.57, "averaged prediction RMSE %g", r);
    // The global mean alone is far worse.
    double mean = 0.0;
    for (size_t j = 0; j < s.train.n; j++) {
        mean += s.train.r[j].rating;
    }
    mean /= (double)s.train.n;
    double base = 0.0;
    for (size_t j = 0; j < s.test.n; j++) {
        double e = s.test.r[j].rating - mean;
        base += e * e;
    }
    base = sqrt(base / (double)s.test.n);
    cr_assert(r < 0.75 * base, "rmse %g vs mean-only %g", r, base);
    fri_mf_destroy(m);
    free(pred);
    synth_teardown(&s);
}

Test(common_bayes, seeded_runs_are_reproducible)
{
    synth_run s;
    synth_setup(&s);
    fri_bpmf_config c;
    fri_bpmf_config_init(&c);
    c.k           = 4;
    c.burnin      = 3;
    c.samples     = 4;
    c.sample_beta = 1;
    c.output      = FRI_BPMF_MEAN_SOLVE;
    c.mean_sweeps = 2;
    size_t n      = s.test.n;
    float *p1 = malloc(n * sizeof(float)), *p2 = malloc(n * sizeof(float));
    float *p3 = malloc(n * sizeof(float));
    cr_assert(p1 != NULL && p2 != NULL && p3 != NULL);
    fri_mf_model *m1 = NULL, *m2 = NULL, *m3 = NULL;
    cr_assert_eq(
        fri_train_bpmf(&m1, p1, s.test.r, n, &s.csr, &c, NULL, NULL), FR_OK);
    cr_assert_eq(
        fri_train_bpmf(&m2, p2, s.test.r, n, &s.csr, &c, NULL, NULL), FR_OK);
    c.seed++;
    cr_assert_eq(
        fri_train_bpmf(&m3, p3, s.test.r, n, &s.csr, &c, NULL, NULL), FR_OK);
    cr_assert(memcmp(p1, p2, n * sizeof(float)) == 0);
    cr_assert(memcmp(m1->P, m2->P, (size_t)m1->n_users * m1->k * 4) == 0);
    cr_assert(memcmp(m1->bi, m2->bi, (size_t)m1->n_items * 4) == 0);
    cr_assert(memcmp(p1, p3, n * sizeof(float)) != 0);
    fri_mf_destroy(m1);
    fri_mf_destroy(m2);
    fri_mf_destroy(m3);
    free(p1);
    free(p2);
    free(p3);
    synth_teardown(&s);
}

Test(common_bayes, rejects_bad_arguments)
{
    fri_mf_items   it = make_items(1);
    fri_bpmf_prior pr = make_prior();
    float          p[K], bu;
    uint32_t       bad_item = NI;
    float          r        = 3.0f;
    cr_assert_eq(fri_bpmf_user_step(p, &bu, NULL, NULL, &it, &bad_item, &r, 1,
                     &pr, 1.0f, NULL, NULL, 0),
        FR_EINVAL);
    cr_assert_eq(fri_bpmf_user_step(p, &bu, NULL, NULL, &it, NULL, NULL, 0,
                     &pr, 0.0f, NULL, NULL, 0),
        FR_EINVAL);
    fri_bpmf_prior wrong = { D + 1, PMEAN, PPREC };
    cr_assert_eq(fri_bpmf_user_step(p, &bu, NULL, NULL, &it, NULL, NULL, 0,
                     &wrong, 1.0f, NULL, NULL, 0),
        FR_EINVAL);
    float small[4];
    cr_assert_eq(fri_bpmf_user_step(p, &bu, NULL, NULL, &it, NULL, NULL, 0,
                     &pr, 1.0f, NULL, small, 4),
        FR_EINVAL);
    fri_bpmf_config c;
    fri_bpmf_config_init(&c);
    fri_mf_model *m     = (fri_mf_model *)&c; // must be reset to NULL
    fri_csr       empty = { 0 };
    cr_assert_eq(
        fri_train_bpmf(&m, NULL, NULL, 0, &empty, &c, NULL, NULL), FR_EINVAL);
    cr_assert_null(m);
    c.samples = 0;
    cr_assert_eq(
        fri_train_bpmf(&m, NULL, NULL, 0, &empty, &c, NULL, NULL), FR_EINVAL);
}

// A random symmetric positive definite covariance, packed.
static void
make_cov(float *packed, uint64_t seed)
{
    fri_rng r;
    fri_rng_seed(&r, seed);
    double B[D][D], S[D][D];
    for (int a = 0; a < D; a++) {
        for (int c = 0; c < D; c++) {
            B[a][c] = 0.3 * fri_rng_normal(&r);
        }
    }
    for (int a = 0; a < D; a++) {
        for (int c = 0; c < D; c++) {
            S[a][c] = a == c ? 0.05 : 0.0;
            for (int t = 0; t < D; t++) {
                S[a][c] += B[a][t] * B[c][t];
            }
        }
    }
    for (int a = 0; a < D; a++) {
        for (int c = a; c < D; c++) {
            packed[fri_packed_index(D, a, c)] = (float)S[a][c];
        }
    }
}

static double
cov_at(const float *packed, int a, int c)
{
    return a <= c ? packed[fri_packed_index(D, a, c)]
                  : packed[fri_packed_index(D, c, a)];
}

// The client's variational statistics are E[x x^T] and E[x (r - mu - b_u)]
// under its posterior, x = [p_u; 1].
Test(common_bayes, variational_user_stats_are_expectations)
{
    const float p[K] = { 0.3f, -0.5f, 0.8f }, bu = 0.2f, mu = 3.5f;
    const float r[2] = { 4.0f, 2.0f };
    float       S[D * (D + 1) / 2];
    make_cov(S, 8);
    float g[D * (D + 1) / 2], h[2 * D];
    cr_assert_eq(fri_bpmf_user_item_stats(
                     g, D * (D + 1) / 2, h, 2 * D, p, bu, S, K, mu, r, 2),
        FR_OK);
    for (int a = 0; a < D; a++) {
        double xa = a < K ? p[a] : 1.0;
        for (int c = a; c < D; c++) {
            double xc   = c < K ? p[c] : 1.0;
            double want = xa * xc + (a < K && c < K ? cov_at(S, a, c) : 0.0);
            cr_assert(fabs(g[fri_packed_index(D, a, c)] - want) < 1e-6);
        }
        for (int j = 0; j < 2; j++) {
            double want
                = xa * (r[j] - mu - bu) - (a < K ? cov_at(S, a, K) : 0);
            cr_assert(fabs(h[j * D + a] - want) < 1e-5);
        }
    }
    // Without a covariance it is the plain ALS statistic.
    float g0[D * (D + 1) / 2], h0[2 * D], g1[D * (D + 1) / 2], h1[2 * D];
    cr_assert_eq(fri_bpmf_user_item_stats(
                     g0, D * (D + 1) / 2, h0, 2 * D, p, bu, NULL, K, mu, r, 2),
        FR_OK);
    cr_assert_eq(fri_mf_user_item_stats(
                     g1, D * (D + 1) / 2, h1, 2 * D, p, bu, K, mu, r, 2),
        FR_OK);
    cr_assert(
        memcmp(g0, g1, sizeof(g0)) == 0 && memcmp(h0, h1, sizeof(h0)) == 0);
    cr_assert_eq(
        fri_bpmf_user_item_stats(g, 1, h, 2 * D, p, bu, S, K, mu, r, 2),
        FR_ENOSPC);
}

// With item covariances the user step solves the expected normal equations.
Test(common_bayes, user_step_with_item_covariances)
{
    fri_mf_items   it = make_items(13);
    fri_bpmf_prior pr = make_prior();
    static float   icov[NI * D * (D + 1) / 2];
    for (int i = 0; i < NI; i++) {
        make_cov(icov + i * D * (D + 1) / 2, 100 + (uint64_t)i);
    }
    uint32_t     items[4] = { 0, 4, 6, 9 };
    float        r[4]     = { 3, 5, 1, 4 };
    const double beta     = 1.3;
    double       G[D][D] = { { 0 } }, h[D] = { 0 };
    for (int j = 0; j < 4; j++) {
        const float *S = icov + items[j] * D * (D + 1) / 2;
        double       z[D];
        for (int a = 0; a < K; a++) {
            z[a] = Q[items[j] * K + a];
        }
        z[K]     = 1.0;
        double t = r[j] - it.mu - BI[items[j]];
        for (int a = 0; a < D; a++) {
            h[a] += z[a] * t - (a < K ? cov_at(S, a, K) : 0.0);
            for (int c = 0; c < D; c++) {
                G[a][c]
                    += z[a] * z[c] + (a < K && c < K ? cov_at(S, a, c) : 0);
            }
        }
    }
    double want[D], wcov[D][D];
    direct_posterior(want, wcov, G, h, &pr, beta);
    float p[K], bu, plain[K], pbu;
    cr_assert_eq(fri_bpmf_user_step(p, &bu, NULL, icov, &it, items, r, 4, &pr,
                     (float)beta, NULL, NULL, 0),
        FR_OK);
    for (int a = 0; a < K; a++) {
        cr_assert(fabs(p[a] - want[a]) < 1e-4, "p[%d]", a);
    }
    cr_assert(fabs(bu - want[K]) < 1e-4);
    // The uncertainty shrinks the solution relative to plain ALS-style use.
    cr_assert_eq(fri_bpmf_user_step(plain, &pbu, NULL, NULL, &it, items, r, 4,
                     &pr, (float)beta, NULL, NULL, 0),
        FR_OK);
    cr_assert(memcmp(p, plain, sizeof(p)) != 0);
}

Test(common_bayes, variational_trainer_fits_synthetic_data)
{
    synth_run s;
    synth_setup(&s);
    fri_vbmf_config c;
    fri_vbmf_config_init(&c);
    c.k              = 5;
    fri_mf_model *m1 = NULL, *m2 = NULL;
    cr_assert_eq(fri_train_vbmf(&m1, &s.csr, &c, NULL, NULL), FR_OK);
    cr_assert_eq(fri_train_vbmf(&m2, &s.csr, &c, NULL, NULL), FR_OK);
    cr_assert(memcmp(m1->Q, m2->Q, (size_t)m1->n_items * m1->k * 4) == 0);
    float *pred = malloc(s.test.n * sizeof(float));
    cr_assert_not_null(pred);
    for (size_t j = 0; j < s.test.n; j++) {
        pred[j] = fri_mf_predict(m1, s.test.r[j].user, s.test.r[j].item);
    }
    double r = rmse(pred, &s.test);
    cr_assert(r < 0.57, "VB RMSE %g (noise 0.5)", r);
    fri_mf_destroy(m1);
    fri_mf_destroy(m2);
    free(pred);
    fri_vbmf_config_init(&c);
    c.sweeps = 0;
    cr_assert_eq(fri_train_vbmf(&m1, &s.csr, &c, NULL, NULL), FR_EINVAL);
    cr_assert_null(m1);
    synth_teardown(&s);
}

Test(common_bayes, rated_set_mean_shifts_the_prior_by_the_scaled_sum)
{
    fri_mf_items   it = make_items(11);
    fri_bpmf_prior pr = make_prior();
    const uint32_t items[3] = { 2, 5, 9 };
    float          out[D], pos[D];
    fri_vbmf_rated_set_mean(out, &pr, it.Q, items, 3, K, 0.0f);
    cr_assert(memcmp(out, PMEAN, sizeof out) == 0, "w = 0 copies the mean");
    fri_vbmf_rated_set_mean(out, &pr, it.Q, items, 0, K, 0.7f);
    cr_assert(memcmp(out, PMEAN, sizeof out) == 0, "no items: the mean");
    fri_vbmf_rated_set_mean(out, &pr, it.Q, items, 3, K, 0.7f);
    for (size_t a = 0; a < K; a++) {
        double s = 0.0;
        for (size_t j = 0; j < 3; j++) {
            s += it.Q[items[j] * K + a];
        }
        double want = PMEAN[a] + 0.7 / sqrt(3.0) * s;
        cr_assert(fabs(out[a] - want) < 1e-6, "dim %zu: %g vs %g", a,
            out[a], want);
    }
    cr_assert_eq(out[K], PMEAN[K], "the bias part keeps its mean");
    // items NULL: rows by position.
    float rows[3 * K];
    for (size_t j = 0; j < 3; j++) {
        memcpy(rows + j * K, it.Q + items[j] * K, K * sizeof(float));
    }
    fri_vbmf_rated_set_mean(pos, &pr, rows, NULL, 3, K, 0.7f);
    cr_assert(memcmp(out, pos, sizeof out) == 0);
}

Test(common_bayes, variational_trainer_refuses_a_bad_rated_set_weight)
{
    synth_run s;
    synth_setup(&s);
    fri_vbmf_config c;
    const float     bad[] = { -0.1f, FRI_SVDPP_MAX * 1.01f, NAN };
    for (size_t t = 0; t < sizeof bad / sizeof bad[0]; t++) {
        fri_vbmf_config_init(&c);
        c.svdpp         = bad[t];
        fri_mf_model *m = NULL;
        cr_assert_eq(fri_train_vbmf(&m, &s.csr, &c, NULL, NULL), FR_EINVAL);
        cr_assert_null(m);
    }
    synth_teardown(&s);
}

// The SVD++ term (tied factors) is the default because it lowered the
// held-out error on validation splits of ML-100K; this pins the effect on
// one such split of u1.base (10% held out, seeded), never on u1.test.
Test(common_bayes, rated_set_prior_lowers_validation_error_on_movielens,
    .timeout = 120)
{
    const char *dir = getenv("FR_DATA_DIR");
    cr_assert(dir != NULL, "FR_DATA_DIR is not set");
    char path[4096];
    snprintf(path, sizeof path, "%s/u1.base", dir);
    cr_assert_eq(access(path, R_OK), 0, "MovieLens 100K missing: %s", path);
    fri_idmap *U = NULL, *I = NULL;
    cr_assert_eq(fri_idmap_create(&U), FR_OK);
    cr_assert_eq(fri_idmap_create(&I), FR_OK);
    fri_dataset all, tr, va;
    char        err[256];
    cr_assert_eq(fri_dataset_load(&all, path, U, I, NULL, err, sizeof err),
        FR_OK, "%s", err);
    cr_assert_eq(fri_split_random(&all, 0.1, 101, &tr, &va), FR_OK);
    fri_csr csr;
    cr_assert_eq(fri_csr_by_user(&csr, &tr), FR_OK);
    double got[2];
    for (int w = 0; w < 2; w++) {
        fri_vbmf_config c;
        fri_vbmf_config_init(&c);
        cr_assert_float_eq(c.svdpp, FRI_SVDPP_DEFAULT, 0, "the default");
        c.svdpp         = w ? FRI_SVDPP_DEFAULT : 0.0f;
        fri_mf_model *m = NULL;
        cr_assert_eq(fri_train_vbmf(&m, &csr, &c, NULL, NULL), FR_OK);
        double se = 0.0;
        for (size_t j = 0; j < va.n; j++) {
            double p = fri_mf_predict(m, va.r[j].user, va.r[j].item);
            p        = p < 1.0 ? 1.0 : p > 5.0 ? 5.0 : p;
            se += (p - va.r[j].rating) * (p - va.r[j].rating);
        }
        got[w] = sqrt(se / (double)va.n);
        fri_mf_destroy(m);
    }
    cr_log_info("validation RMSE: %.5f off, %.5f with w = %g", got[0], got[1],
        (double)FRI_SVDPP_DEFAULT);
    cr_assert(got[1] < got[0] - 0.0002, "%.5f with the term vs %.5f off",
        got[1], got[0]);
    fri_csr_free(&csr);
    fri_dataset_free(&all);
    fri_dataset_free(&tr);
    fri_dataset_free(&va);
    fri_idmap_destroy(U);
    fri_idmap_destroy(I);
}

// The prediction of target by a direct variational user step over the n
// ratings without j (the rated-set prior shift recomputed).
static double
direct_loo(const fri_mf_items *it, const float *cov, const uint32_t *items,
    const float *r, size_t n, size_t j, const fri_bpmf_prior *pr, float beta,
    float svdpp, uint32_t target)
{
    const size_t k = it->k;
    uint32_t     rest[256];
    float        rv[256], pm[FRI_MF_MAX_K + 1], p[FRI_MF_MAX_K], bu;
    size_t       m = 0;
    cr_assert(n <= 256);
    for (size_t t = 0; t < n; t++) {
        if (t != j) {
            rest[m] = items[t];
            rv[m++] = r[t];
        }
    }
    fri_vbmf_rated_set_mean(pm, pr, it->Q, rest, m, it->k, svdpp);
    fri_bpmf_prior pj = { pr->d, pm, pr->prec };
    cr_assert_eq(fri_bpmf_user_step(p, &bu, NULL, cov, it, rest, rv, m, &pj,
                     beta, NULL, NULL, 0),
        FR_OK);
    double pred = it->mu + it->bi[target] + bu;
    for (size_t a = 0; a < k; a++) {
        pred += (double)p[a] * it->Q[target * k + a];
    }
    return pred;
}

// The variational leave-one-out: every closed-form prediction equals a
// direct user step without that rating (rated-set prior shift included),
// and the pruned top effects equal the full computation's, most pruned.
Test(common_bayes, variational_leave_one_out_is_exact_and_prunes)
{
    enum { NB = 300, KB = 6, DB = KB + 1, NR = 200, TOP = 3 };
    static float Qb[NB * KB], Bb[NB], var[NB * DB], cov[NB * 28];
    fri_mf_items it = fixture_items(Qb, Bb, NB, KB, 0.3, 21);
    const size_t plen = fri_packed_len(DB);
    cr_assert_eq(plen, 28);
    fri_rng g;
    fri_rng_seed(&g, 9);
    memset(cov, 0, sizeof cov);
    for (size_t i = 0; i < NB; i++) {
        for (size_t a = 0; a < DB; a++) {
            var[i * DB + a] = 0.01f + 0.04f * (float)fri_rng_uniform(&g);
            cov[i * plen + fri_packed_index(DB, a, a)] = var[i * DB + a];
        }
    }
    float mean[DB], prec[DB * DB];
    for (size_t a = 0; a < DB; a++) {
        mean[a] = 0.05f * (float)a - 0.1f;
        for (size_t c = 0; c < DB; c++) {
            prec[a * DB + c] = a == c ? 1.5f + 0.2f * (float)a : 0.1f;
        }
    }
    fri_bpmf_prior pr = { DB, mean, prec };
    uint32_t items[NR];
    float    r[NR], all[NR], part[NR];
    for (uint32_t j = 0; j < NR; j++) {
        items[j] = j;
        r[j]     = (float)(1 + fri_rng_below(&g, 5));
    }
    const float beta = 1.3f, svdpp = 0.3f;
    size_t      wl   = fri_vbmf_loo_work_len(KB, TOP);
    double     *w    = calloc(wl, sizeof *w);
    cr_assert(w != NULL);
    for (uint32_t target = 250; target < 300; target += 9) {
        const float full = 3.6f;
        cr_assert_eq(fri_vbmf_user_loo(all, &it, var, items, r, NR, &pr, beta,
                         svdpp, target, full, 0, w, wl),
            FR_OK);
        // Direct steps without j, for a few j.
        for (size_t j = 0; j < NR; j += 37) {
            double pred = direct_loo(&it, cov, items, r, NR, j, &pr, beta,
                svdpp, target);
            cr_assert(fabs(pred - all[j]) < 1e-4, "j %zu: %g vs %g", j, pred,
                (double)all[j]);
        }
        cr_assert_eq(fri_vbmf_user_loo(part, &it, var, items, r, NR, &pr,
                         beta, svdpp, target, full, TOP, w, wl),
            FR_OK);
        float  kth = INFINITY;
        size_t pruned = 0;
        for (size_t t = 0; t < TOP; t++) { // the TOP-th largest effect
            float best = -INFINITY;
            for (size_t j = 0; j < NR; j++) {
                float e = full - all[j];
                if (e < kth && e > best) {
                    best = e;
                }
            }
            kth = best;
        }
        for (size_t j = 0; j < NR; j++) {
            if (isnan(part[j])) {
                pruned++;
                cr_assert(full - all[j] < kth, "pruned %zu is in the top", j);
            } else {
                cr_assert_eq(part[j], all[j]);
            }
        }
        cr_assert(pruned > NR / 2, "only %zu of %d pruned", pruned, NR);
    }
    // Few ratings: the prior-mean shift moves most with each one.
    for (size_t n = 2; n <= 5; n++) {
        cr_assert_eq(fri_vbmf_user_loo(all, &it, var, items, r, n, &pr, beta,
                         svdpp, 260, 3.0f, 0, w, wl),
            FR_OK);
        for (size_t j = 0; j < n; j++) {
            double pred
                = direct_loo(&it, cov, items, r, n, j, &pr, beta, svdpp, 260);
            cr_assert(fabs(pred - all[j]) < 1e-5, "n %zu j %zu: %g vs %g", n,
                j, pred, (double)all[j]);
        }
    }
    // top at or above n: every rating, in a work buffer of exactly the
    // length asked for that case (no heaps).
    double *w0 = malloc(fri_vbmf_loo_work_len(KB, 0) * sizeof *w0);
    cr_assert(w0 != NULL);
    cr_assert_eq(fri_vbmf_user_loo(part, &it, var, items, r, 5, &pr, beta,
                     svdpp, 260, 3.0f, 64, w0, fri_vbmf_loo_work_len(KB, 0)),
        FR_OK);
    cr_assert_eq(fri_vbmf_user_loo(all, &it, var, items, r, 5, &pr, beta,
                     svdpp, 260, 3.0f, 0, w, wl),
        FR_OK);
    for (size_t j = 0; j < 5; j++) {
        cr_assert_eq(part[j], all[j]);
    }
    free(w0);
    cr_assert_eq(fri_vbmf_user_loo(part, &it, var, items, r, 1, &pr, beta,
                     svdpp, 0, 3.0f, 0, w, wl),
        FR_EINVAL, "one rating: no leave-one-out");
    cr_assert_eq(fri_vbmf_user_loo(part, &it, var, items, r, NR, &pr, beta,
                     svdpp, NB, 3.0f, 0, w, wl),
        FR_EINVAL, "target outside the catalog");
    free(w);
}
