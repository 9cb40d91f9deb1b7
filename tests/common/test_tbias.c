// Time-aware biases (tbias.h): the fit is the minimiser of its ridge
// objective (checked by finite differences), user-day biases by hand, and
// data without timestamps fits to zero offsets.
#include <criterion/criterion.h>
#include <math.h>

#include "tbias.h"

#define DAY 86400

// Ridge objective of the offsets on residuals e_j.
static double
objective(const fri_tbias *t, const fri_triplet *r, const float *e, size_t n,
    const fri_tbias_config *c)
{
    double j = 0.0;
    for (size_t q = 0; q < n; q++) {
        double d = e[q] - fri_tbias_offset(t, r[q].user, r[q].item, r[q].ts);
        j += d * d;
    }
    for (size_t s = 0; s < (size_t)t->n_items * t->bins; s++) {
        j += c->reg_item_bin * (double)t->bib[s] * t->bib[s];
    }
    for (size_t s = 0; s < t->n_ud; s++) {
        j += c->reg_user_day * (double)t->ud_val[s] * t->ud_val[s];
    }
    return j;
}

Test(tbias, user_day_by_hand)
{
    const int64_t     t0   = 1000 * (int64_t)DAY + 50;
    const fri_triplet r[4] = { { 0, 1, 4.0f, t0 }, { 0, 2, 3.0f, t0 + 3600 },
        { 0, 1, 5.0f, t0 + DAY }, { 1, 2, 2.0f, t0 } };
    const float       e[4] = { 1.0f, 0.5f, -2.0f, 3.0f };
    fri_tbias_config  c;
    fri_tbias_config_init(&c);
    c.item_bins    = 0;
    c.reg_user_day = 6.0f;
    fri_tbias t;
    cr_assert_eq(fri_tbias_fit(&t, r, e, 4, 3, &c), FR_OK);
    cr_assert_eq(t.n_ud, 3);
    // User 0, first day: (1 + 0.5) / (2 + 6); any time of that day.
    cr_assert_float_eq(
        fri_tbias_offset(&t, 0, 0, t0 + 7200), 1.5f / 8.0f, 1e-6f);
    cr_assert_float_eq(
        fri_tbias_offset(&t, 0, 2, t0 + DAY + 5), -2.0f / 7.0f, 1e-6f);
    cr_assert_float_eq(fri_tbias_offset(&t, 1, 0, t0), 3.0f / 7.0f, 1e-6f);
    // A day, or a user, the fit never saw, and ts 0: no offset.
    cr_assert_eq(fri_tbias_offset(&t, 0, 1, t0 + 2 * DAY), 0.0f);
    cr_assert_eq(fri_tbias_offset(&t, 2, 1, t0), 0.0f);
    cr_assert_eq(fri_tbias_offset(&t, 0, 1, 0), 0.0f);
    fri_tbias_free(&t);
}

Test(tbias, joint_fit_is_stationary)
{
    // Item bins and user days together: after enough alternations every
    // coordinate's finite-difference derivative of the objective is ~0.
    enum { N = 60 };
    fri_triplet r[N];
    float       e[N];
    for (size_t q = 0; q < N; q++) {
        r[q].user   = (uint32_t)(q % 5);
        r[q].item   = (uint32_t)((q * 7) % 4);
        r[q].rating = 3.0f;
        r[q].ts     = 500 * (int64_t)DAY + (int64_t)((q * 13) % 9) * DAY + 11;
        e[q]        = (float)sin((double)q * 1.3) + 0.1f * (float)(q % 3);
    }
    fri_tbias_config c;
    fri_tbias_config_init(&c);
    c.item_bins    = 3;
    c.reg_item_bin = 2.0f;
    c.reg_user_day = 1.5f;
    c.iters        = 200;
    fri_tbias t;
    cr_assert_eq(fri_tbias_fit(&t, r, e, N, 4, &c), FR_OK);
    cr_assert_eq(t.bins, 3);
    cr_assert(t.n_ud > 5);
    const double h         = 1e-3;
    double       base      = objective(&t, r, e, N, &c);
    float       *coords[2] = { t.bib, t.ud_val };
    size_t       lens[2]   = { (size_t)t.n_items * t.bins, t.n_ud };
    int          moved     = 0;
    for (int a = 0; a < 2; a++) {
        for (size_t s = 0; s < lens[a]; s++) {
            float v = coords[a][s];
            moved += v != 0.0f;
            coords[a][s] = (float)(v + h);
            double jp    = objective(&t, r, e, N, &c);
            coords[a][s] = (float)(v - h);
            double jm    = objective(&t, r, e, N, &c);
            coords[a][s] = v;
            double g     = (jp - jm) / (2.0 * h);
            cr_assert(
                fabs(g) < 2e-3, "block %d coord %zu gradient %g", a, s, g);
            cr_assert(jp >= base - 1e-6 && jm >= base - 1e-6);
        }
    }
    cr_assert(moved > 0);
    fri_tbias_free(&t);
}

Test(tbias, no_timestamps_no_offsets)
{
    const fri_triplet r[3]
        = { { 0, 0, 4.0f, 0 }, { 0, 1, 2.0f, 0 }, { 1, 0, 5.0f, 0 } };
    const float      e[3] = { 1.0f, -1.0f, 2.0f };
    fri_tbias_config c;
    fri_tbias_config_init(&c);
    c.item_bins = 4;
    fri_tbias t;
    cr_assert_eq(fri_tbias_fit(&t, r, e, 3, 2, &c), FR_OK);
    cr_assert_eq(t.bins, 0);
    cr_assert_eq(t.n_ud, 0);
    for (int u = 0; u < 2; u++) {
        cr_assert_eq(fri_tbias_offset(&t, (uint32_t)u, 0, 12345), 0.0f);
    }
    fri_tbias_free(&t);
}

Test(tbias, bins_days_and_bad_arguments)
{
    cr_assert_eq(fri_tbias_bin(0, 0, 99, 4), 0);
    cr_assert_eq(fri_tbias_bin(99, 0, 99, 4), 3);
    cr_assert_eq(fri_tbias_bin(50, 0, 99, 4), 2);
    cr_assert_eq(fri_tbias_bin(-5, 0, 99, 4), 0);
    cr_assert_eq(fri_tbias_bin(500, 0, 99, 4), 3);
    cr_assert_eq(fri_tbias_bin(5, 7, 7, 4), 0);
    cr_assert_eq(fri_tbias_day(DAY - 1), 0);
    cr_assert_eq(fri_tbias_day(DAY), 1);
    cr_assert_eq(fri_tbias_day(-1), UINT32_MAX);
    cr_assert_eq(fri_tbias_day(-DAY), UINT32_MAX);
    cr_assert_eq(fri_tbias_day(-DAY - 1), UINT32_MAX - 1);
    fri_tbias_config c;
    fri_tbias_config_init(&c);
    fri_tbias_config_init(&c);
    const fri_triplet r[1] = { { 0, 3, 4.0f, 10 } };
    const float       e[1] = { 1.0f };
    fri_tbias         t;
    cr_assert_eq(fri_tbias_fit(&t, r, e, 1, 3, &c), FR_EINVAL); // item 3
    cr_assert_eq(fri_tbias_fit(&t, r, NULL, 1, 4, &c), FR_EINVAL);
    c.reg_user_day = 0.0f;
    cr_assert_eq(fri_tbias_fit(&t, r, e, 1, 4, &c), FR_EINVAL);
    fri_tbias_config_init(&c);
    c.iters = 0;
    cr_assert_eq(fri_tbias_fit(&t, r, e, 1, 4, &c), FR_EINVAL);
    cr_assert_eq(fri_tbias_fit(NULL, r, e, 1, 4, &c), FR_EINVAL);
}
