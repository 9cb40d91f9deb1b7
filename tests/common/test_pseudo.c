#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mf.h"
#include "pseudo.h"
#include "rng.h"

#define N_ITEMS 400u
#define K 8u
#define D (K + 1u)

// A random public item model and one user with ratings = prediction +
// N(0, 0.8^2) on n distinct random items.
typedef struct fixture {
    float        Q[N_ITEMS * K], bi[N_ITEMS], p[K], bu;
    fri_mf_items it;
    uint32_t     items[N_ITEMS];
    float        ratings[N_ITEMS];
    size_t       n;
} fixture;

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : (x > y);
}

static void
fixture_make(fixture *f, size_t n, uint64_t seed)
{
    fri_rng r;
    fri_rng_seed(&r, seed);
    for (size_t i = 0; i < N_ITEMS * K; i++) {
        f->Q[i] = (float)(0.3 * fri_rng_normal(&r));
    }
    for (size_t i = 0; i < N_ITEMS; i++) {
        f->bi[i] = (float)(0.3 * fri_rng_normal(&r));
    }
    for (size_t a = 0; a < K; a++) {
        f->p[a] = (float)(0.3 * fri_rng_normal(&r));
    }
    f->bu = 0.2f;
    f->it = (fri_mf_items){ .n_items = N_ITEMS, .k = K, .mu = 3.5f,
                            .bi = f->bi, .Q = f->Q };
    uint32_t perm[N_ITEMS];
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        perm[i] = i;
    }
    fri_rng_shuffle_u32(&r, perm, N_ITEMS);
    memcpy(f->items, perm, n * sizeof(uint32_t));
    qsort(f->items, n, sizeof(uint32_t), cmp_u32);
    for (size_t j = 0; j < n; j++) {
        f->ratings[j] = fri_mf_predict_with(&f->it, f->p, f->bu, f->items[j]) +
                        (float)(0.8 * fri_rng_normal(&r));
    }
    f->n = n;
}

static int
contains(const uint32_t *v, size_t n, uint32_t x)
{
    for (size_t j = 0; j < n; j++) {
        if (v[j] == x) {
            return 1;
        }
    }
    return 0;
}

Test(common_pseudo, count_is_rounded_and_capped)
{
    cr_assert_eq(fri_pseudo_count(10, 1.0, 100), 10);
    cr_assert_eq(fri_pseudo_count(7, 0.5, 100), 4);  // 3.5 -> 4
    cr_assert_eq(fri_pseudo_count(5, 0.3, 100), 2);  // 1.5 -> 2
    cr_assert_eq(fri_pseudo_count(10, 0.24, 100), 2);
    cr_assert_eq(fri_pseudo_count(0, 3.0, 100), 0);
    cr_assert_eq(fri_pseudo_count(60, 1.0, 100), 40); // only 40 unrated
    cr_assert_eq(fri_pseudo_count(10, -1.0, 100), 0);
    cr_assert_eq(fri_pseudo_count(10, NAN, 100), 0);
}

static void
check_sample(const fri_pseudo_config *c, uint64_t seed)
{
    fixture f;
    for (size_t n = 1; n < 200; n += 37) {
        fixture_make(&f, n, seed + n);
        fri_rng r;
        fri_rng_seed(&r, seed);
        uint32_t out[N_ITEMS];
        size_t m = 0;
        cr_assert_eq(fri_pseudo_sample(out, N_ITEMS, &m, f.items, n, N_ITEMS,
                                       c, &r),
                     FR_OK);
        cr_assert_eq(m, fri_pseudo_count(n, c->rho, N_ITEMS));
        for (size_t j = 0; j < m; j++) {
            cr_assert_lt(out[j], N_ITEMS);
            cr_assert(j == 0 || out[j] > out[j - 1], "sorted and distinct");
            cr_assert(!contains(f.items, n, out[j]), "item %u is rated",
                      out[j]);
        }
        // Reproducible for a seed, different for another.
        fri_rng r2;
        fri_rng_seed(&r2, seed);
        uint32_t again[N_ITEMS];
        size_t m2 = 0;
        cr_assert_eq(fri_pseudo_sample(again, N_ITEMS, &m2, f.items, n,
                                       N_ITEMS, c, &r2),
                     FR_OK);
        cr_assert_eq(m2, m);
        cr_assert_arr_eq(again, out, m * sizeof(uint32_t));
        fri_rng_seed(&r2, seed + 1000);
        cr_assert_eq(fri_pseudo_sample(again, N_ITEMS, &m2, f.items, n,
                                       N_ITEMS, c, &r2),
                     FR_OK);
        // (unless every unrated item is taken)
        cr_assert(m < 3 || m == N_ITEMS - n ||
                  memcmp(again, out, m * sizeof(uint32_t)) != 0);
    }
}

Test(common_pseudo, uniform_sample_distinct_disjoint_reproducible)
{
    fri_pseudo_config c;
    fri_pseudo_config_init(&c);
    check_sample(&c, 11);
    c.rho = 0.5;
    check_sample(&c, 12);
    c.rho = 2.5; // capped by the unrated items for the heavy users
    check_sample(&c, 13);
}

Test(common_pseudo, popularity_sample_distinct_disjoint_reproducible)
{
    float pop[N_ITEMS];
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        pop[i] = (float)(1000.0 / (1.0 + i)); // Zipf-like
    }
    fri_pseudo_config c;
    fri_pseudo_config_init(&c);
    c.popularity = pop;
    c.popularity_len = N_ITEMS;
    check_sample(&c, 21);
    c.rho = 3.0;
    check_sample(&c, 22);
}

Test(common_pseudo, uniform_sample_covers_items_evenly)
{
    // 20000 draws of 10 items among 390 unrated: each unrated item ~513
    // times (sd ~22); rated items never.
    fixture f;
    fixture_make(&f, 10, 5);
    fri_pseudo_config c;
    fri_pseudo_config_init(&c);
    fri_rng r;
    fri_rng_seed(&r, 6);
    static unsigned hist[N_ITEMS];
    memset(hist, 0, sizeof(hist));
    for (int t = 0; t < 20000; t++) {
        uint32_t out[10];
        size_t m;
        cr_assert_eq(fri_pseudo_sample(out, 10, &m, f.items, 10, N_ITEMS, &c,
                                       &r),
                     FR_OK);
        for (size_t j = 0; j < m; j++) {
            hist[out[j]]++;
        }
    }
    double want = 20000.0 * 10.0 / (N_ITEMS - 10);
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        if (contains(f.items, 10, i)) {
            cr_assert_eq(hist[i], 0);
        } else {
            cr_assert(fabs(hist[i] - want) < 6.0 * sqrt(want),
                      "item %u drawn %u times, want ~%.0f", i, hist[i], want);
        }
    }
}

Test(common_pseudo, popularity_sample_prefers_popular_items)
{
    fixture f;
    fixture_make(&f, 10, 7);
    float pop[N_ITEMS];
    for (uint32_t i = 0; i < N_ITEMS; i++) {
        pop[i] = i < 20 ? 500.0f : 0.0f;
    }
    fri_pseudo_config c;
    fri_pseudo_config_init(&c);
    c.popularity = pop;
    c.popularity_len = N_ITEMS;
    fri_rng r;
    fri_rng_seed(&r, 8);
    size_t head = 0, total = 0;
    for (int t = 0; t < 200; t++) {
        uint32_t out[10];
        size_t m;
        cr_assert_eq(fri_pseudo_sample(out, 10, &m, f.items, 10, N_ITEMS, &c,
                                       &r),
                     FR_OK);
        for (size_t j = 0; j < m; j++) {
            head += out[j] < 20;
        }
        total += m;
    }
    // Head items weigh 501 vs 1: nearly all draws come from the head.
    cr_assert(head > 0.8 * (double)total, "head %zu of %zu", head, total);
}

Test(common_pseudo, bad_arguments)
{
    fixture f;
    fixture_make(&f, 10, 9);
    fri_pseudo_config c;
    fri_pseudo_config_init(&c);
    fri_rng r;
    fri_rng_seed(&r, 1);
    uint32_t out[N_ITEMS];
    size_t m = 99;
    uint32_t unsorted[3] = { 5, 3, 9 };
    cr_assert_eq(fri_pseudo_sample(out, N_ITEMS, &m, unsorted, 3, N_ITEMS,
                                   &c, &r),
                 FR_EINVAL);
    uint32_t dup[3] = { 3, 3, 9 };
    cr_assert_eq(fri_pseudo_sample(out, N_ITEMS, &m, dup, 3, N_ITEMS, &c, &r),
                 FR_EINVAL);
    uint32_t big[1] = { N_ITEMS };
    cr_assert_eq(fri_pseudo_sample(out, N_ITEMS, &m, big, 1, N_ITEMS, &c, &r),
                 FR_EINVAL);
    // Size query.
    cr_assert_eq(fri_pseudo_sample(NULL, 0, &m, f.items, 10, N_ITEMS, &c, &r),
                 FR_ENOSPC);
    cr_assert_eq(m, 10);
    float pop[3] = { 1, 2, 3 };
    c.popularity = pop;
    c.popularity_len = 3; // wrong length
    cr_assert_eq(fri_pseudo_sample(out, N_ITEMS, &m, f.items, 10, N_ITEMS,
                                   &c, &r),
                 FR_EINVAL);
}

static void
merge(fixture *f, fri_pseudo_rows kind, const fri_pseudo_config *c,
      fri_rng *r, uint32_t *items_out, float *rows_out, uint8_t *is_fake,
      size_t *n_out, double *vsum, float reg, float reg_bias)
{
    float rows[N_ITEMS * D];
    if (kind == FRI_PSEUDO_ROWS_GRAD) {
        cr_assert_eq(fri_mf_user_item_grad(rows, N_ITEMS * D, &f->it, f->p,
                                           f->bu, f->items, f->ratings, f->n,
                                           reg, reg_bias),
                     FR_OK);
    } else {
        float gram[(D * (D + 1)) / 2];
        cr_assert_eq(fri_mf_user_item_stats(gram, sizeof(gram) / 4, rows,
                                            N_ITEMS * D, f->p, f->bu, K,
                                            f->it.mu, f->ratings, f->n),
                     FR_OK);
    }
    cr_assert_eq(fri_pseudo_merge(items_out, rows_out, is_fake, N_ITEMS,
                                  n_out, vsum, kind, &f->it, f->p, f->bu, reg,
                                  reg_bias, f->items, f->ratings, rows, f->n,
                                  c, r),
                 FR_OK);
    // Real rows pass through unchanged, in order.
    size_t j = 0;
    for (size_t t = 0; t < *n_out; t++) {
        cr_assert(t == 0 || items_out[t] > items_out[t - 1]);
        if (!is_fake[t]) {
            cr_assert_eq(items_out[t], f->items[j]);
            cr_assert_arr_eq(rows_out + t * D, rows + j * D,
                             D * sizeof(float));
            j++;
        } else {
            cr_assert(!contains(f->items, f->n, items_out[t]));
        }
    }
    cr_assert_eq(j, f->n);
}

Test(common_pseudo, merge_keeps_real_rows_and_adds_round_rho_n)
{
    fixture f;
    fixture_make(&f, 31, 10);
    fri_pseudo_config c;
    fri_pseudo_config_init(&c);
    c.rho = 0.5;
    fri_rng r;
    fri_rng_seed(&r, 2);
    static uint32_t items[N_ITEMS];
    static float rows[N_ITEMS * D];
    uint8_t fake[N_ITEMS];
    size_t n = 0;
    double vsum = 0.0;
    for (int kind = 0; kind < 2; kind++) {
        merge(&f, (fri_pseudo_rows)kind, &c, &r, items, rows, fake, &n, &vsum,
              0.05f, 0.05f);
        cr_assert_eq(n, 31 + 16); // round(15.5)
        size_t nf = 0;
        for (size_t t = 0; t < n; t++) {
            nf += fake[t];
        }
        cr_assert_eq(nf, 16);
        // Virtual ratings are predictions plus noise: plausible values.
        cr_assert(vsum / 16.0 > 1.5 && vsum / 16.0 < 5.5, "mean %f",
                  vsum / 16.0);
    }
    // Size query and too small a buffer.
    float rreal[N_ITEMS * D];
    cr_assert_eq(fri_mf_user_item_grad(rreal, N_ITEMS * D, &f.it, f.p, f.bu,
                                       f.items, f.ratings, f.n, 0.05f, 0.05f),
                 FR_OK);
    cr_assert_eq(fri_pseudo_merge(items, rows, NULL, 10, &n, NULL,
                                  FRI_PSEUDO_ROWS_GRAD, &f.it, f.p, f.bu,
                                  0.05f, 0.05f, f.items, f.ratings, rreal,
                                  f.n, &c, &r),
                 FR_ENOSPC);
    cr_assert_eq(n, 47);
}

Test(common_pseudo, user_mean_fill_uses_the_mean_rating)
{
    fixture f;
    fixture_make(&f, 20, 14);
    fri_pseudo_config c;
    fri_pseudo_config_init(&c);
    c.fill = FRI_PSEUDO_FILL_USER_MEAN;
    double mean = 0.0;
    for (size_t j = 0; j < f.n; j++) {
        mean += f.ratings[j];
    }
    mean /= (double)f.n;
    fri_rng r;
    fri_rng_seed(&r, 3);
    uint32_t fake[4] = { 1, 2, 3, 4 };
    float v[4];
    cr_assert_eq(fri_pseudo_virtual_ratings(v, fake, 4, &f.it, f.p, f.bu,
                                            f.items, f.ratings, f.n, &c, &r),
                 FR_OK);
    for (int j = 0; j < 4; j++) {
        cr_assert(fabs(v[j] - mean) < 1e-5);
    }
}

// The zero-mean variant: fake gradient rows are -eps [p_u; 1] with eps
// zero-mean, so their average over many draws goes to 0 (sd of the mean
// ~ s_u |x| / sqrt(draws)). The default PREDICT fill keeps the penalty:
// its rows minus reg [q_i; b_i] average to 0 instead.
Test(common_pseudo, zero_mean_fake_gradient_rows_average_to_zero)
{
    fixture f;
    fixture_make(&f, 40, 15);
    const float reg = 0.1f, reg_bias = 0.1f;
    for (int variant = 0; variant < 2; variant++) {
        fri_pseudo_config c;
        fri_pseudo_config_init(&c);
        c.fill = variant == 0 ? FRI_PSEUDO_FILL_ZERO_MEAN
                              : FRI_PSEUDO_FILL_PREDICT;
        fri_rng r;
        fri_rng_seed(&r, 100 + (uint64_t)variant);
        double mean[D] = { 0 };
        double xnorm2 = 1.0;
        for (size_t a = 0; a < K; a++) {
            xnorm2 += (double)f.p[a] * f.p[a];
        }
        size_t n_fake = 0;
        static uint32_t items[N_ITEMS];
        static float rows[N_ITEMS * D];
        uint8_t fake[N_ITEMS];
        size_t n;
        for (int t = 0; t < 500; t++) {
            merge(&f, FRI_PSEUDO_ROWS_GRAD, &c, &r, items, rows, fake, &n,
                  NULL, reg, reg_bias);
            for (size_t s = 0; s < n; s++) {
                if (!fake[s]) {
                    continue;
                }
                const float *g = rows + s * D;
                const float *q = f.Q + (size_t)items[s] * K;
                for (size_t a = 0; a < D; a++) {
                    double pen = variant == 0 ? 0.0
                                 : a < K     ? reg * q[a]
                                             : reg_bias * f.bi[items[s]];
                    mean[a] += g[a] - pen;
                }
                n_fake++;
            }
        }
        cr_assert_eq(n_fake, 500u * 40u);
        double m2 = 0.0;
        for (size_t a = 0; a < D; a++) {
            mean[a] /= (double)n_fake;
            m2 += mean[a] * mean[a];
        }
        // s_u ~ 0.8; allow 5 sd of the mean's norm.
        double bound = 5.0 * 0.8 * sqrt(xnorm2) / sqrt((double)n_fake);
        cr_assert(sqrt(m2) < bound, "variant %d: |mean| %g >= %g", variant,
                  sqrt(m2), bound);
        if (variant == 0) {
            // And it is not trivially zero: each row carries noise.
            cr_assert(fabs(rows[0]) + fabs(rows[D]) > 0.0f);
        }
    }
}

// Default fill: fake rows have the norm distribution of real ones (mean
// norms within 15%), in both row kinds.
Test(common_pseudo, predict_fill_matches_real_row_norms)
{
    for (int kind = 0; kind < 2; kind++) {
        double real = 0.0, fk = 0.0;
        size_t n_real = 0, n_fk = 0;
        for (uint64_t u = 0; u < 200; u++) {
            fixture f;
            fixture_make(&f, 30, 1000 + u);
            fri_pseudo_config c;
            fri_pseudo_config_init(&c);
            fri_rng r;
            fri_rng_seed(&r, 5000 + u);
            static uint32_t items[N_ITEMS];
            static float rows[N_ITEMS * D];
            uint8_t fake[N_ITEMS];
            size_t n;
            merge(&f, (fri_pseudo_rows)kind, &c, &r, items, rows, fake, &n,
                  NULL, 0.05f, 0.05f);
            for (size_t s = 0; s < n; s++) {
                double ss = 0.0;
                for (size_t a = 0; a < D; a++) {
                    ss += (double)rows[s * D + a] * rows[s * D + a];
                }
                if (fake[s]) {
                    fk += sqrt(ss);
                    n_fk++;
                } else {
                    real += sqrt(ss);
                    n_real++;
                }
            }
        }
        real /= (double)n_real;
        fk /= (double)n_fk;
        cr_assert(fabs(fk - real) < 0.15 * real,
                  "kind %d: fake mean norm %f, real %f", kind, fk, real);
    }
}
