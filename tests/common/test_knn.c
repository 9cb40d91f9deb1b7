// Neighbourhood CF against values worked out by hand.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "knn.h"

// Ratings (users x items, '-' unrated); item 5 nobody rated, user 4 has
// no ratings:
//        i0 i1 i2 i3 i4 i5
//   u0    5  3  4  -  -  -
//   u1    3  1  -  2  -  -
//   u2    -  1  5  -  1  -
//   u3    1  -  -  -  5  -
//   u4    -  -  -  -  -  -
// Global mean mu = 31 / 11.
static const size_t   ptr[6]  = { 0, 3, 6, 9, 11, 11 };
static const uint32_t idx[11] = { 0, 1, 2, 0, 1, 3, 1, 2, 4, 0, 4 };
static const float    val[11] = { 5, 3, 4, 3, 1, 2, 1, 5, 1, 1, 5 };

static fri_csr
example(void)
{
    return (fri_csr) { 5, 6, (size_t *)ptr, (uint32_t *)idx, (float *)val, NULL };
}

static fri_knn *
fit(fri_knn_kind kind, uint32_t k, uint32_t min_support, fri_knn_norm norm)
{
    fri_csr        c = example();
    fri_knn_config kc;
    fri_knn_config_init(&kc);
    kc.kind        = kind;
    kc.k           = k;
    kc.min_support = min_support;
    kc.norm        = norm;
    fri_knn *m     = NULL;
    cr_assert_eq(fri_knn_fit(&m, &c, &kc), FR_OK);
    return m;
}

Test(knn, user_cosine_by_hand)
{
    fri_knn *m = fit(FRI_KNN_USER, 40, 1, FRI_KNN_NORM_COMMON);
    // sim(u0,u2) over i1, i2: (3*1 + 4*5) / sqrt((9+16)(1+25)) = 23/sqrt(650)
    // sim(u0,u3) over i0: 5*1 / sqrt(25*1) = 1
    // sim(u0,u1) over i0, i1: 18 / sqrt(34*10)
    cr_assert_float_eq(fri_knn_similarity(m, 0, 2), 23.0 / sqrt(650.0), 1e-6);
    cr_assert_float_eq(fri_knn_similarity(m, 0, 3), 1.0, 1e-6);
    cr_assert_float_eq(fri_knn_similarity(m, 2, 0), 23.0 / sqrt(650.0), 1e-6);
    cr_assert_float_eq(fri_knn_similarity(m, 0, 1), 18.0 / sqrt(340.0), 1e-6);
    cr_assert_eq(fri_knn_similarity(m, 0, 0), 0.0f);
    cr_assert_eq(fri_knn_similarity(m, 0, 4), 0.0f);
    // (u0, i4): raters u2 (1) and u3 (5):
    // (0.902134 * 1 + 1 * 5) / (0.902134 + 1) = 3.102901; a plain mean of
    // the neighbours' ratings would be 3.
    float p  = 0.0f;
    int   fb = -1;
    cr_assert_eq(fri_knn_predict(m, 0, 4, &p, &fb), FR_OK);
    cr_assert_eq(fb, 0);
    cr_assert_float_eq(p, 3.1029010, 1e-5);
    fri_knn_destroy(m);

    // k = 1: only the nearest rater, u3, counts.
    m = fit(FRI_KNN_USER, 1, 1, FRI_KNN_NORM_COMMON);
    cr_assert_eq(fri_knn_predict(m, 0, 4, &p, &fb), FR_OK);
    cr_assert_float_eq(p, 5.0, 1e-6);
    fri_knn_destroy(m);

    // min_support 2: u3 shares one item with u0, so only u2 is left.
    m = fit(FRI_KNN_USER, 40, 2, FRI_KNN_NORM_COMMON);
    cr_assert_eq(fri_knn_similarity(m, 0, 3), 0.0f);
    cr_assert_eq(fri_knn_predict(m, 0, 4, &p, &fb), FR_OK);
    cr_assert_float_eq(p, 1.0, 1e-6);
    fri_knn_destroy(m);

    // Whole-vector norms: 5 / sqrt(50 * 26).
    m = fit(FRI_KNN_USER, 40, 1, FRI_KNN_NORM_FULL);
    cr_assert_float_eq(fri_knn_similarity(m, 0, 3), 5.0 / sqrt(1300.0), 1e-6);
    fri_knn_destroy(m);
}

Test(knn, item_cosine_by_hand)
{
    fri_knn *m = fit(FRI_KNN_ITEM, 40, 1, FRI_KNN_NORM_COMMON);
    // sim(i1,i0) over u0, u1: (3*5 + 1*3) / sqrt((9+1)(25+9)) = 18/sqrt(340)
    // sim(i1,i4) over u2: 1*1 / 1 = 1
    cr_assert_float_eq(fri_knn_similarity(m, 1, 0), 18.0 / sqrt(340.0), 1e-6);
    cr_assert_float_eq(fri_knn_similarity(m, 1, 4), 1.0, 1e-6);
    // (u3, i1): u3 rated i0 (1) and i4 (5):
    // (0.976187 * 1 + 1 * 5) / (0.976187 + 1) = 3.024100.
    float p  = 0.0f;
    int   fb = -1;
    cr_assert_eq(fri_knn_predict(m, 3, 1, &p, &fb), FR_OK);
    cr_assert_eq(fb, 0);
    cr_assert_float_eq(p, 3.0241000, 1e-5);
    fri_knn_destroy(m);
}

Test(knn, fallbacks)
{
    const double mu = 31.0 / 11.0;
    fri_knn     *m  = fit(FRI_KNN_USER, 40, 1, FRI_KNN_NORM_COMMON);
    cr_assert_float_eq(fri_knn_global_mean(m), mu, 1e-6);
    float p  = 0.0f;
    int   fb = 0;
    // A user without ratings has no neighbours: i0's damped mean,
    // (5 + 3 + 1 + 5 mu) / (3 + 5).
    cr_assert_eq(fri_knn_predict(m, 4, 0, &p, &fb), FR_OK);
    cr_assert_eq(fb, 1);
    cr_assert_float_eq(p, (9.0 + 5.0 * mu) / 8.0, 1e-5);
    // Nobody rated i5: the global mean.
    fb = 0;
    cr_assert_eq(fri_knn_predict(m, 0, 5, &p, &fb), FR_OK);
    cr_assert_eq(fb, 1);
    cr_assert_float_eq(p, mu, 1e-5);
    // Indices beyond the training data.
    fb = 0;
    cr_assert_eq(fri_knn_predict(m, 99, 99, &p, &fb), FR_OK);
    cr_assert_eq(fb, 1);
    cr_assert_float_eq(p, mu, 1e-5);
    fri_knn_destroy(m);
    // Item-based: u4 rated nothing, so no neighbour item.
    m  = fit(FRI_KNN_ITEM, 40, 1, FRI_KNN_NORM_COMMON);
    fb = 0;
    cr_assert_eq(fri_knn_predict(m, 4, 1, &p, &fb), FR_OK);
    cr_assert_eq(fb, 1);
    cr_assert_float_eq(p, (3.0 + 1.0 + 1.0 + 5.0 * mu) / 8.0, 1e-5);
    fri_knn_destroy(m);
}

Test(knn, ranking_scores_by_hand)
{
    float    s[6];
    uint32_t u = 0;
    // User-based, k = 1: u0's nearest user is u3 (similarity 1), who rated
    // i0 = 1 and i4 = 5.
    fri_knn *m = fit(FRI_KNN_USER, 1, 1, FRI_KNN_NORM_COMMON);
    cr_assert_eq(fri_knn_score_users(m, s, 6, &u, 1), FR_OK);
    const float want_u[6] = { 1, 0, 0, 0, 5, 0 };
    for (int i = 0; i < 6; i++) {
        cr_assert_float_eq(s[i], want_u[i], 1e-6, "item %d: %g", i, s[i]);
    }
    fri_knn_destroy(m);
    // Item-based, k = 1: u3 rated i0 (1) and i4 (5). i0's neighbours i2,
    // i3, i4 all have similarity 1 (one co-rater each): the lowest index,
    // i2, wins; i4's best are i0, i1, i2 at 1: i0. So i2 += 1*1, i0 += 1*5.
    m = fit(FRI_KNN_ITEM, 1, 1, FRI_KNN_NORM_COMMON);
    u = 3;
    cr_assert_eq(fri_knn_score_users(m, s, 6, &u, 1), FR_OK);
    const float want_i[6] = { 5, 0, 1, 0, 0, 0 };
    for (int i = 0; i < 6; i++) {
        cr_assert_float_eq(s[i], want_i[i], 1e-6, "item %d: %g", i, s[i]);
    }
    // Bad calls.
    cr_assert_eq(fri_knn_score_users(m, s, 5, &u, 1), FR_ENOSPC);
    u = 5;
    cr_assert_eq(fri_knn_score_users(m, s, 6, &u, 1), FR_EINVAL);
    fri_knn_destroy(m);
}

Test(knn, bad_input)
{
    fri_csr        c = example();
    fri_knn_config kc;
    fri_knn_config_init(&kc);
    fri_knn *m = (fri_knn *)&c; // must be reset to NULL
    kc.k       = 0;
    cr_assert_eq(fri_knn_fit(&m, &c, &kc), FR_EINVAL);
    cr_assert_null(m);
    fri_knn_config_init(&kc);
    cr_assert_eq(fri_knn_fit(&m, NULL, &kc), FR_EINVAL);
    cr_assert_eq(fri_knn_fit(NULL, &c, &kc), FR_EINVAL);
    kc.kind = (fri_knn_kind)7;
    cr_assert_eq(fri_knn_fit(&m, &c, &kc), FR_EINVAL);
    fri_knn_config_init(&kc);
    // A column index beyond n_cols.
    uint32_t bad_idx[11];
    for (int j = 0; j < 11; j++) {
        bad_idx[j] = idx[j];
    }
    bad_idx[4] = 6;
    fri_csr b  = c;
    b.idx      = bad_idx;
    cr_assert_eq(fri_knn_fit(&m, &b, &kc), FR_EINVAL);
    // A non-finite rating.
    float bad_val[11];
    for (int j = 0; j < 11; j++) {
        bad_val[j] = val[j];
    }
    bad_val[2] = NAN;
    b          = c;
    b.val      = bad_val;
    cr_assert_eq(fri_knn_fit(&m, &b, &kc), FR_EINVAL);
    // No ratings at all.
    const size_t zero_ptr[3] = { 0, 0, 0 };
    fri_csr      empty
        = { 2, 2, (size_t *)zero_ptr, (uint32_t *)idx, (float *)val, NULL };
    cr_assert_eq(fri_knn_fit(&m, &empty, &kc), FR_EINVAL);
    float p;
    cr_assert_eq(fri_knn_predict(NULL, 0, 0, &p, NULL), FR_EINVAL);
    fri_knn_destroy(NULL);
}

// Item features (2 columns) for the example's 6 items; i5 has none.
static const float feat[12] = { 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 0 };

Test(knn, content_by_hand)
{
    fri_csr        c = example();
    fri_knn_config kc;
    fri_knn_config_init(&kc);
    kc.kind    = FRI_KNN_ITEM;
    fri_knn *m = NULL;
    cr_assert_eq(fri_knn_fit_content(&m, &c, feat, 12, 2, &kc), FR_OK);
    // cos(x0, x1) = 1/sqrt(2), cos(x0, x3) = 1, cos(x0, x2) = 0.
    cr_assert_float_eq(fri_knn_similarity(m, 0, 1), 1.0 / sqrt(2.0), 1e-6);
    cr_assert_float_eq(fri_knn_similarity(m, 0, 3), 1.0, 1e-6);
    cr_assert_eq(fri_knn_similarity(m, 0, 2), 0.0f);
    cr_assert_eq(fri_knn_similarity(m, 0, 5), 0.0f);
    // (u0, i3): u0 rated i0 = 5 (sim 1), i1 = 3 (sim 1/sqrt 2), i2 = 4
    // (sim 0, left out): (5 + 3/sqrt 2) / (1 + 1/sqrt 2) = 4.171573.
    float p  = 0.0f;
    int   fb = -1;
    cr_assert_eq(fri_knn_predict(m, 0, 3, &p, &fb), FR_OK);
    cr_assert_eq(fb, 0);
    cr_assert_float_eq(p, 4.1715729, 1e-5);
    // i5 has no features: no similar item, the global mean.
    cr_assert_eq(fri_knn_predict(m, 0, 5, &p, &fb), FR_OK);
    cr_assert_eq(fb, 1);
    cr_assert_float_eq(p, 31.0 / 11.0, 1e-5);
    // Ranking, centred: u0's mean is 4, weights +1, -1, 0, profile
    // (1,0) - (1,1) = (0,-1); scores cos(profile, x_i).
    float    s[6];
    uint32_t u = 0;
    cr_assert_eq(fri_knn_score_users(m, s, 6, &u, 1), FR_OK);
    const float want[6] = { 0, (float)(-1.0 / sqrt(2.0)), -1, 0, -1, 0 };
    for (int i = 0; i < 6; i++) {
        cr_assert_float_eq(s[i], want[i], 1e-6, "item %d: %g", i, s[i]);
    }
    fri_knn_destroy(m);
    // Not centred: profile 5(1,0) + 3(1,1) + 4(0,1) = (8,7).
    kc.centre = 0;
    cr_assert_eq(fri_knn_fit_content(&m, &c, feat, 12, 2, &kc), FR_OK);
    cr_assert_eq(fri_knn_score_users(m, s, 6, &u, 1), FR_OK);
    cr_assert_float_eq(s[3], 8.0 / sqrt(113.0), 1e-6);
    fri_knn_destroy(m);
    // Bad input: user kind, short or non-finite features.
    kc.kind = FRI_KNN_USER;
    cr_assert_eq(fri_knn_fit_content(&m, &c, feat, 12, 2, &kc), FR_EINVAL);
    kc.kind = FRI_KNN_ITEM;
    cr_assert_eq(fri_knn_fit_content(&m, &c, feat, 11, 2, &kc), FR_EINVAL);
    cr_assert_eq(fri_knn_fit_content(&m, &c, feat, 12, 0, &kc), FR_EINVAL);
    float bad[12];
    for (int j = 0; j < 12; j++) {
        bad[j] = feat[j];
    }
    bad[7] = INFINITY;
    cr_assert_eq(fri_knn_fit_content(&m, &c, bad, 12, 2, &kc), FR_EINVAL);
    cr_assert_null(m);
}
