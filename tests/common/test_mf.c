#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dataset.h"
#include "items_fixture.h"
#include "linalg.h"
#include "metrics.h"
#include "mf.h"
#include "rng.h"

#define K 4
#define NI 12

static float Q[NI * K], BI[NI];

static fri_mf_items
make_items(uint64_t seed)
{
    return fixture_items(Q, BI, NI, K, 0.5, seed);
}

Test(linalg, cholesky_solves_known_system)
{
    // A = [[4,2],[2,3]], b = [2, 1] -> x = [0.5, 0]
    float A[4] = {4, 2, 2, 3};
    float b[2] = {2, 1};
    cr_assert_eq(fri_chol_solve(A, b, 2), FR_OK);
    cr_assert_float_eq(b[0], 0.5f, 1e-6f);
    cr_assert_float_eq(b[1], 0.0f, 1e-6f);
    float N[4] = {1, 2, 2, 1}; // indefinite
    float c[2] = {1, 1};
    cr_assert_eq(fri_chol_solve(N, c, 2), FR_EINTERNAL);
    cr_assert_eq(fri_chol_solve(N, c, 0), FR_EINVAL);
}

// Gradient of the user's ridge objective at x must vanish at the solve.
static void
check_user_solve(int weighted)
{
    fri_mf_items it = make_items(7);
    uint32_t items[6] = {0, 2, 3, 5, 8, 11};
    float r[6] = {4, 2, 5, 3, 1, 4};
    float p[K], bu;
    float reg = 0.3f, rb = 0.1f;
    cr_assert_eq(fri_mf_user_solve(p, &bu, &it, items, r, 6, reg, rb,
                                   weighted, NULL, 0),
                 FR_OK);
    double g[K + 1] = {0};
    for (int j = 0; j < 6; j++) {
        const float *q = Q + items[j] * K;
        double e = r[j] - it.mu - BI[items[j]] - bu;
        for (int f = 0; f < K; f++) {
            e -= (double)p[f] * q[f];
        }
        for (int f = 0; f < K; f++) {
            g[f] -= e * q[f];
        }
        g[K] -= e;
    }
    double s = weighted ? 6.0 : 1.0;
    for (int f = 0; f < K; f++) {
        g[f] += reg * s * p[f];
    }
    g[K] += rb * s * bu;
    for (int f = 0; f <= K; f++) {
        cr_assert(fabs(g[f]) < 1e-4, "grad[%d] = %g", f, g[f]);
    }
}

Test(mf, user_solve_is_minimizer_weighted) { check_user_solve(1); }
Test(mf, user_solve_is_minimizer_constant) { check_user_solve(0); }

Test(mf, user_solve_rejects_bad_input)
{
    fri_mf_items it = make_items(1);
    uint32_t bad[1] = {NI};
    float r[1] = {3};
    float p[K], bu;
    float work[4];
    cr_assert_eq(fri_mf_user_solve(p, &bu, &it, bad, r, 1, 0.1f, 0.1f, 1,
                                   NULL, 0),
                 FR_EINVAL);
    uint32_t ok[1] = {0};
    cr_assert_eq(fri_mf_user_solve(p, &bu, &it, ok, r, 1, 0.1f, 0.1f, 1,
                                   work, 4),
                 FR_EINVAL); // work too small
    cr_assert_eq(fri_mf_user_solve(p, &bu, &it, ok, r, 0, 0.1f, 0.1f, 1,
                                   NULL, 0),
                 FR_OK);
    cr_assert_eq(bu, 0.0f);
}

// Summed per-user statistics must give the item's direct ridge solution.
Test(mf, item_stats_reproduce_direct_item_solve)
{
    enum { NU = 5 };
    float P[NU * K], BU[NU], r[NU] = {5, 3, 4, 1, 2};
    fri_rng g;
    fri_rng_seed(&g, 3);
    for (size_t j = 0; j < NU * K; j++) {
        P[j] = (float)(0.7 * fri_rng_normal(&g));
    }
    for (size_t j = 0; j < NU; j++) {
        BU[j] = (float)(0.2 * fri_rng_normal(&g));
    }
    const size_t d = K + 1, pl = fri_packed_len(d);
    float gram[64], gsum[64] = {0}, h[K + 1], hsum[K + 1] = {0};
    float mu = 3.2f, reg = 0.2f, rb = 0.05f;
    for (int u = 0; u < NU; u++) {
        cr_assert_eq(fri_mf_user_item_stats(gram, pl, h, d, P + u * K, BU[u],
                                            K, mu, &r[u], 1),
                     FR_OK);
        for (size_t t = 0; t < pl; t++) {
            gsum[t] += gram[t];
        }
        for (size_t t = 0; t < d; t++) {
            hsum[t] += h[t];
        }
    }
    cr_assert_float_eq(gsum[fri_packed_index(d, K, K)], (float)NU, 1e-6f);
    float q[K], b;
    cr_assert_eq(fri_mf_item_solve(q, &b, gsum, hsum, K, reg, rb, 1, NULL, 0),
                 FR_OK);
    // Direct: gradient of sum_u (r - mu - bu - b - p.q)^2/2 + n*reg/2 |q|^2
    // + n*rb/2 b^2 vanishes.
    double gr[K + 1] = {0};
    for (int u = 0; u < NU; u++) {
        double e = r[u] - mu - BU[u] - b;
        for (int f = 0; f < K; f++) {
            e -= (double)P[u * K + f] * q[f];
        }
        for (int f = 0; f < K; f++) {
            gr[f] -= e * P[u * K + f];
        }
        gr[K] -= e;
    }
    for (int f = 0; f < K; f++) {
        gr[f] += NU * reg * q[f];
    }
    gr[K] += NU * rb * b;
    for (int f = 0; f <= K; f++) {
        cr_assert(fabs(gr[f]) < 1e-4, "grad[%d] = %g", f, gr[f]);
    }
    // An item nobody rated solves to zero.
    float zero_g[64] = {0}, zero_h[K + 1] = {0};
    q[0] = 1;
    cr_assert_eq(fri_mf_item_solve(q, &b, zero_g, zero_h, K, reg, rb, 1,
                                   NULL, 0),
                 FR_OK);
    cr_assert_eq(q[0], 0.0f);
}

static double
user_loss(const fri_mf_items *it, const float *p, float bu,
          const uint32_t *items, const float *r, size_t n, float reg,
          float rb)
{
    double L = 0;
    for (size_t j = 0; j < n; j++) {
        const float *q = it->Q + items[j] * it->k;
        double e = r[j] - it->mu - bu - it->bi[items[j]];
        double qq = 0;
        for (uint32_t f = 0; f < it->k; f++) {
            e -= (double)p[f] * q[f];
            qq += (double)q[f] * q[f];
        }
        L += 0.5 * e * e + 0.5 * reg * qq +
             0.5 * rb * (double)it->bi[items[j]] * it->bi[items[j]];
    }
    return L;
}

Test(mf, item_grad_matches_finite_differences)
{
    fri_mf_items it = make_items(11);
    uint32_t items[4] = {1, 4, 6, 9};
    float r[4] = {3, 5, 2, 4};
    float p[K] = {0.3f, -0.2f, 0.5f, 0.1f}, bu = 0.15f;
    float reg = 0.1f, rb = 0.05f;
    float grad[4 * (K + 1)];
    cr_assert_eq(fri_mf_user_item_grad(grad, sizeof(grad) / sizeof(float),
                                       &it, p, bu, items, r, 4, reg, rb),
                 FR_OK);
    const float eps = 1e-2f;
    for (int j = 0; j < 4; j++) {
        for (int f = 0; f <= K; f++) {
            float *x = f < K ? &Q[items[j] * K + f] : &BI[items[j]];
            float x0 = *x;
            *x = x0 + eps;
            double lp = user_loss(&it, p, bu, items, r, 4, reg, rb);
            *x = x0 - eps;
            double lm = user_loss(&it, p, bu, items, r, 4, reg, rb);
            *x = x0;
            double fd = (lp - lm) / (2.0 * eps);
            cr_assert(fabs(fd - grad[j * (K + 1) + f]) < 2e-3,
                      "item %d coord %d: fd %g analytic %g", j, f, fd,
                      grad[j * (K + 1) + f]);
        }
    }
    cr_assert_eq(fri_mf_user_item_grad(grad, 3, &it, p, bu, items, r, 4, reg,
                                       rb),
                 FR_ENOSPC);
}

Test(mf, user_sgd_lowers_loss)
{
    fri_mf_items it = make_items(5);
    uint32_t items[5] = {0, 3, 4, 7, 10};
    float r[5] = {5, 1, 4, 2, 5};
    float p[K] = {0}, bu = 0;
    double before = user_loss(&it, p, bu, items, r, 5, 0, 0);
    fri_rng g;
    fri_rng_seed(&g, 9);
    for (int t = 0; t < 30; t++) {
        cr_assert_eq(fri_mf_user_sgd(p, &bu, NULL, NULL, &it, items, r, 5,
                                     0.05f, 0.01f, 0.01f, &g),
                     FR_OK);
    }
    double after = user_loss(&it, p, bu, items, r, 5, 0, 0);
    cr_assert(after < 0.5 * before, "loss %g -> %g", before, after);
    // Local item copies move, the shared item side does not.
    float ql[5 * K], bl[5];
    for (int j = 0; j < 5; j++) {
        memcpy(ql + j * K, Q + items[j] * K, K * sizeof(float));
        bl[j] = BI[items[j]];
    }
    float q0 = Q[0];
    cr_assert_eq(fri_mf_user_sgd(p, &bu, ql, bl, &it, items, r, 5, 0.05f,
                                 0.01f, 0.01f, NULL),
                 FR_OK);
    cr_assert_eq(Q[0], q0);
    cr_assert_neq(ql[0], q0);
}

Test(mf, implicit_user_solve_is_minimizer_and_stats_exact)
{
    fri_mf_items it = make_items(21);
    const size_t pl = fri_packed_len(K);
    float qtq[64];
    cr_assert_eq(fri_mf_gram(qtq, pl, Q, NI, K), FR_OK);
    uint32_t items[3] = {2, 5, 7};
    float v[3] = {1, 2, 1};
    float alpha = 4.0f, reg = 0.5f, p[K];
    cr_assert_eq(fri_mf_implicit_user_solve(p, &it, qtq, items, v, 3, alpha,
                                            reg, NULL, 0),
                 FR_OK);
    // J = sum_i c_i (pref_i - p.q_i)^2 / 2 + reg/2 |p|^2 over ALL items.
    double g[K] = {0};
    for (uint32_t i = 0; i < NI; i++) {
        double c = 1, pref = 0;
        for (int j = 0; j < 3; j++) {
            if (items[j] == i) {
                c = 1 + alpha * v[j];
                pref = 1;
            }
        }
        double e = pref;
        for (int f = 0; f < K; f++) {
            e -= (double)p[f] * Q[i * K + f];
        }
        for (int f = 0; f < K; f++) {
            g[f] -= c * e * Q[i * K + f];
        }
    }
    for (int f = 0; f < K; f++) {
        g[f] += reg * p[f];
        cr_assert(fabs(g[f]) < 1e-4, "grad[%d] = %g", f, g[f]);
    }
    // Item side: two users, item rated by user 0 only.
    float P2[2 * K] = {0.2f, -0.1f, 0.4f, 0.3f, -0.5f, 0.1f, 0.2f, 0.6f};
    float gu[64], rows[K + 1], gall[64] = {0}, gw[64] = {0};
    float h[K] = {0};
    for (int u = 0; u < 2; u++) {
        float one = 1.0f;
        cr_assert_eq(fri_mf_implicit_user_item_stats(gu, pl, rows, K + 1,
                                                     P2 + u * K, K, &one,
                                                     u == 0 ? 1 : 0, alpha),
                     FR_OK);
        for (size_t t = 0; t < pl; t++) {
            gall[t] += gu[t];
            if (u == 0) {
                gw[t] += rows[0] * gu[t];
            }
        }
        if (u == 0) {
            for (int f = 0; f < K; f++) {
                h[f] += rows[1 + f];
            }
        }
    }
    float q[K];
    cr_assert_eq(fri_mf_implicit_item_solve(q, gall, gw, h, K, reg, NULL, 0),
                 FR_OK);
    double gi[K] = {0};
    for (int u = 0; u < 2; u++) {
        double c = u == 0 ? 1 + alpha : 1, pref = u == 0 ? 1 : 0;
        double e = pref;
        for (int f = 0; f < K; f++) {
            e -= (double)P2[u * K + f] * q[f];
        }
        for (int f = 0; f < K; f++) {
            gi[f] -= c * e * P2[u * K + f];
        }
    }
    for (int f = 0; f < K; f++) {
        gi[f] += reg * q[f];
        cr_assert(fabs(gi[f]) < 1e-4, "item grad[%d] = %g", f, gi[f]);
    }
}

// ---- trainers --------------------------------------------------------

static void
synth_split(fri_dataset *train, fri_dataset *test, double noise)
{
    fri_synth_config sc;
    fri_synth_config_init(&sc);
    sc.n_users = 400;
    sc.n_items = 200;
    sc.k = 3;
    sc.density = 0.15;
    sc.noise = noise;
    sc.continuous = 1;
    sc.seed = 5;
    fri_dataset all;
    cr_assert_eq(fri_synth_generate(&all, &sc), FR_OK);
    cr_assert_eq(fri_split_random(&all, 0.2, 1, train, test), FR_OK);
    train->n_users = all.n_users;
    train->n_items = all.n_items;
    fri_dataset_free(&all);
}

typedef fr_err (*trainer_fn)(fri_mf_model **out, const fri_csr *train,
                             const fri_dataset *val, const fri_train_config *c,
                             fri_train_epoch_fn cb, void *ctx);

// Test RMSE of train with config c on synth_split(noise).
static double
synth_test_rmse(trainer_fn train_fn, const fri_train_config *c, double noise)
{
    fri_dataset train, test;
    synth_split(&train, &test, noise);
    fri_csr csr;
    cr_assert_eq(fri_csr_by_user(&csr, &train), FR_OK);
    fri_mf_model *m = NULL;
    cr_assert_eq(train_fn(&m, &csr, NULL, c, NULL, NULL), FR_OK);
    fri_rating_metrics rm;
    cr_assert_eq(fri_eval_rating(&rm, m, test.r, test.n, 0, 0), FR_OK);
    fri_mf_destroy(m);
    fri_csr_free(&csr);
    fri_dataset_free(&train);
    fri_dataset_free(&test);
    return rm.rmse;
}

Test(train, als_recovers_synthetic_ground_truth)
{
    const double noise = 0.3;
    fri_train_config c;
    fri_train_config_init(&c, FRI_TRAIN_ALS);
    c.k = 3;
    c.reg = 0.02f;
    c.reg_bias = 0.01f;
    c.weighted = 1;
    c.epochs = 20;
    double rmse = synth_test_rmse(fri_train_als, &c, noise);
    cr_assert(rmse < 1.2 * noise, "test rmse %g vs noise %g", rmse, noise);
}

Test(train, sgd_recovers_synthetic_ground_truth)
{
    const double noise = 0.3;
    fri_train_config c;
    fri_train_config_init(&c, FRI_TRAIN_SGD);
    c.k = 3;
    c.reg = 0.02f;
    c.reg_bias = 0.01f;
    c.lr = 0.02f;
    c.epochs = 60;
    double rmse = synth_test_rmse(fri_train_sgd, &c, noise);
    cr_assert(rmse < 1.25 * noise, "test rmse %g vs noise %g", rmse, noise);
}

static int
same_model(const fri_mf_model *a, const fri_mf_model *b)
{
    return a->n_users == b->n_users && a->n_items == b->n_items &&
           a->k == b->k && a->mu == b->mu &&
           memcmp(a->P, b->P, (size_t)a->n_users * a->k * 4) == 0 &&
           memcmp(a->Q, b->Q, (size_t)a->n_items * a->k * 4) == 0 &&
           memcmp(a->bu, b->bu, (size_t)a->n_users * 4) == 0 &&
           memcmp(a->bi, b->bi, (size_t)a->n_items * 4) == 0;
}

Test(train, fixed_seed_is_bit_reproducible)
{
    fri_dataset train, test;
    synth_split(&train, &test, 0.5);
    fri_csr csr;
    cr_assert_eq(fri_csr_by_user(&csr, &train), FR_OK);
    fri_train_config c;
    for (int algo = 0; algo < 3; algo++) {
        fri_train_config_init(&c, algo == 1 ? FRI_TRAIN_SGD : FRI_TRAIN_ALS);
        c.k = 5;
        c.epochs = 4;
        c.seed = 77;
        fri_mf_model *a = NULL, *b = NULL;
        fr_err e1, e2;
        if (algo == 0) {
            e1 = fri_train_als(&a, &csr, NULL, &c, NULL, NULL);
            e2 = fri_train_als(&b, &csr, NULL, &c, NULL, NULL);
        } else if (algo == 1) {
            e1 = fri_train_sgd(&a, &csr, NULL, &c, NULL, NULL);
            e2 = fri_train_sgd(&b, &csr, NULL, &c, NULL, NULL);
        } else {
            c.reg = 0.5f;
            e1 = fri_train_ials(&a, &csr, &c, NULL, NULL);
            e2 = fri_train_ials(&b, &csr, &c, NULL, NULL);
        }
        cr_assert_eq(e1, FR_OK);
        cr_assert_eq(e2, FR_OK);
        cr_assert(same_model(a, b), "algo %d not reproducible", algo);
        fri_mf_destroy(b);
        // A different seed gives a different model.
        c.seed = 78;
        e2 = algo == 0   ? fri_train_als(&b, &csr, NULL, &c, NULL, NULL)
             : algo == 1 ? fri_train_sgd(&b, &csr, NULL, &c, NULL, NULL)
                         : fri_train_ials(&b, &csr, &c, NULL, NULL);
        cr_assert_eq(e2, FR_OK);
        cr_assert(!same_model(a, b));
        fri_mf_destroy(a);
        fri_mf_destroy(b);
    }
    fri_csr_free(&csr);
    fri_dataset_free(&train);
    fri_dataset_free(&test);
}

Test(train, early_stopping_keeps_best_validation_model)
{
    fri_dataset train, test;
    synth_split(&train, &test, 0.5);
    fri_csr csr;
    cr_assert_eq(fri_csr_by_user(&csr, &train), FR_OK);
    fri_train_config c;
    fri_train_config_init(&c, FRI_TRAIN_SGD);
    c.k = 20;
    c.reg = 0.0f; // overfits, so validation error turns up
    c.lr = 0.03f;
    c.epochs = 200;
    c.patience = 2;
    fri_mf_model *m = NULL;
    cr_assert_eq(fri_train_sgd(&m, &csr, &test, &c, NULL, NULL), FR_OK);
    fri_rating_metrics best;
    cr_assert_eq(fri_eval_rating(&best, m, test.r, test.n, c.clamp_lo,
                                 c.clamp_hi),
                 FR_OK);
    fri_mf_destroy(m);
    c.patience = 0;
    c.epochs = 60;
    cr_assert_eq(fri_train_sgd(&m, &csr, NULL, &c, NULL, NULL), FR_OK);
    fri_rating_metrics late;
    cr_assert_eq(fri_eval_rating(&late, m, test.r, test.n, c.clamp_lo,
                                 c.clamp_hi),
                 FR_OK);
    cr_assert(best.rmse <= late.rmse, "best %g late %g", best.rmse,
              late.rmse);
    fri_mf_destroy(m);
    fri_csr_free(&csr);
    fri_dataset_free(&train);
    fri_dataset_free(&test);
}

Test(train, tiny_example_predicts_unrated_cell)
{
    fri_dataset d;
    cr_assert_eq(fri_dataset_tiny(&d), FR_OK);
    cr_assert_eq(d.n, 49);
    fri_csr csr;
    cr_assert_eq(fri_csr_by_user(&csr, &d), FR_OK);
    fri_train_config c;
    fri_train_config_init(&c, FRI_TRAIN_ALS);
    c.k = 2;
    c.epochs = 10;
    fri_mf_model *m = NULL;
    cr_assert_eq(fri_train_als(&m, &csr, NULL, &c, NULL, NULL), FR_OK);
    // User 1, movie 4 in the article's numbering: dense (0, 3).
    float p = fri_mf_predict(m, 0, 3);
    cr_assert(isfinite(p) && p >= 1.0f && p <= 5.0f, "prediction %g", p);
    // It is not in train, so it is the only candidate besides nothing:
    // top-1 excluding the user's rated items must be item 3.
    float s[5];
    uint32_t u0 = 0, top;
    size_t got;
    cr_assert_eq(fri_score_users(s, 5, m, &u0, 1), FR_OK);
    cr_assert_eq(fri_topk(&top, NULL, 1, &got, s, 5, csr.idx, 4), FR_OK);
    cr_assert_eq(got, 1);
    cr_assert_eq(top, 3);
    fri_mf_destroy(m);
    fri_csr_free(&csr);
    fri_dataset_free(&d);
}

Test(train, rejects_bad_config)
{
    fri_dataset d;
    cr_assert_eq(fri_dataset_tiny(&d), FR_OK);
    fri_csr csr;
    cr_assert_eq(fri_csr_by_user(&csr, &d), FR_OK);
    fri_train_config c;
    fri_train_config_init(&c, FRI_TRAIN_ALS);
    c.k = 0;
    fri_mf_model *m = (fri_mf_model *)&c;
    cr_assert_eq(fri_train_als(&m, &csr, NULL, &c, NULL, NULL), FR_EINVAL);
    cr_assert_null(m);
    c.k = FRI_MF_MAX_K + 1;
    cr_assert_eq(fri_train_sgd(&m, &csr, NULL, &c, NULL, NULL), FR_EINVAL);
    fri_csr_free(&csr);
    fri_dataset_free(&d);
}

// The pruned leave-one-out (only the top largest effects) gives the same
// top effects, to the bit, as computing all of them, and skips most.
Test(mf, loo_top_equals_full_and_prunes)
{
    enum { NB = 400, KB = 8, NR = 300, TOP = 3 };
    static float Qb[NB * KB], Bb[NB];
    fri_mf_items it = fixture_items(Qb, Bb, NB, KB, 0.3, 11);
    uint32_t     items[NR];
    float        r[NR], all[NR], part[NR];
    fri_rng      g;
    fri_rng_seed(&g, 5);
    for (uint32_t j = 0; j < NR; j++) {
        items[j] = j; // sorted, distinct
        r[j]     = (float) (1 + fri_rng_below(&g, 5));
    }
    size_t  wl = fri_mf_loo_work_len(KB, TOP);
    double *w  = calloc(wl, sizeof *w);
    cr_assert(w != NULL);
    cr_assert_eq(fri_mf_user_loo(part, &it, items, r, NR, 0.1f, 0.05f, 1, 7,
                                 0.0f, TOP, w, fri_mf_loo_work_len(KB, 0)),
                 FR_EINVAL, "a work buffer without the heaps is refused");
    for (uint32_t wt = 0; wt <= 2; wt++) {
        for (uint32_t target = 350; target < 400; target += 7) {
            const float full = 3.7f;
            cr_assert_eq(fri_mf_user_loo(all, &it, items, r, NR, 0.1f, 0.05f,
                                         (int) wt, target, full, 0, w, wl),
                         FR_OK);
            cr_assert_eq(fri_mf_user_loo(part, &it, items, r, NR, 0.1f,
                                         0.05f, (int) wt, target, full, TOP,
                                         w, wl),
                         FR_OK);
            // The TOP largest effects of the full list.
            size_t best[TOP];
            for (size_t t = 0; t < TOP; t++) {
                size_t b = NR;
                for (size_t j = 0; j < NR; j++) {
                    int used = 0;
                    for (size_t u = 0; u < t; u++) {
                        used |= best[u] == j;
                    }
                    if (!used && (b == NR || full - all[j] > full - all[b])) {
                        b = j;
                    }
                }
                best[t] = b;
                cr_assert(!isnan(part[b]), "top effect %zu was pruned", t);
                cr_assert_eq(part[b], all[b], "effect %zu differs", t);
            }
            size_t pruned = 0;
            for (size_t j = 0; j < NR; j++) {
                if (isnan(part[j])) {
                    pruned++;
                    cr_assert(full - all[j] <= full - all[best[TOP - 1]],
                              "pruned %zu is in the top", j);
                } else {
                    cr_assert_eq(part[j], all[j]);
                }
            }
            cr_assert(pruned > NR / 2, "only %zu of %d pruned", pruned, NR);
        }
    }
    free(w);
}
