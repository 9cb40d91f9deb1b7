// Robust aggregation bounds (aggregator/robust.h): honest updates pass,
// what exceeds an honest device's influence is cut back to it.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "args.h"
#include "linalg.h"
#include "rng.h"
#include "robust.h"

#define K 4
#define D (K + 1)
#define NR 20

typedef struct upd {
    uint32_t       items[NR];
    float          gram[D * (D + 1) / 2];
    float          rows[NR * D];
    fri_agg_update u;
} upd;

// An honest explicit-ALS update: x = [p; 1], rows x s_j, s_j ~ N(0, 1).
static void
honest(upd *h, fri_rng *r)
{
    float x[D];
    for (int a = 0; a < K; a++) {
        x[a] = (float)(0.3 * fri_rng_normal(r));
    }
    x[K] = 1.0f;
    for (int a = 0; a < D; a++) {
        for (int b = a; b < D; b++) {
            h->gram[fri_packed_index(D, a, b)] = x[a] * x[b];
        }
    }
    double sum = 0.0;
    for (int j = 0; j < NR; j++) {
        h->items[j] = (uint32_t)j * 3;
        float s     = (float)fri_rng_normal(r);
        for (int a = 0; a < D; a++) {
            h->rows[j * D + a] = x[a] * s;
        }
        sum += 3.5 + 0.5 * fri_rng_normal(r);
    }
    memset(&h->u, 0, sizeof(h->u));
    h->u.round       = 1;
    h->u.n           = NR;
    h->u.items       = h->items;
    h->u.gram        = h->gram;
    h->u.gram_len    = fri_packed_len(D);
    h->u.rows        = h->rows;
    h->u.rows_len    = NR * D;
    h->u.sum_ratings = sum;
    h->u.count       = NR;
    h->u.weight      = NR;
}

static fri_robust *
make(fri_agg_algo algo)
{
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items = 100;
    c.k       = K;
    c.algo    = algo;
    cr_assert_eq(c.robust, 1, "robust is on by default");
    fri_robust *r = NULL;
    cr_assert_eq(fri_robust_create(&r, &c), FR_OK);
    return r;
}

// Feeds n honest updates (warms the medians).
static void
warm(fri_robust *r, fri_rng *rng, int n)
{
    for (int i = 0; i < n; i++) {
        upd            h;
        fri_agg_update o;
        float         *buf = NULL;
        honest(&h, rng);
        cr_assert_eq(fri_robust_bound(r, &h.u, &o, &buf), FR_OK);
        free(buf);
    }
    fri_robust_next_round(r); // what the aggregator does between rounds
}

Test(robust, honest_updates_pass_unchanged)
{
    fri_robust *r = make(FRI_AGG_ALS);
    fri_rng     rng;
    fri_rng_seed2(&rng, 1, 2);
    warm(r, &rng, 200);
    fri_robust_stats st0, st1;
    fri_robust_stats_get(r, &st0);
    int changed_rows = 0, other = 0;
    for (int i = 0; i < 100; i++) {
        upd            h;
        fri_agg_update o;
        float         *buf = NULL;
        honest(&h, &rng);
        cr_assert_eq(fri_robust_bound(r, &h.u, &o, &buf), FR_OK);
        for (int j = 0; j < NR; j++) {
            changed_rows
                += memcmp(o.rows + j * D, h.rows + j * D, D * sizeof(float))
                != 0;
        }
        other += memcmp(o.gram, h.gram, sizeof(h.gram)) != 0
            || o.count != h.u.count || o.weight != h.u.weight
            || fabs(o.sum_ratings - h.u.sum_ratings) > 1e-9;
        free(buf);
    }
    fri_robust_stats_get(r, &st1);
    // Only Gaussian residuals beyond 4 median |s| (~2.7 sigma, 0.7%: 14
    // expected) are cut; Grams, means and counts of honest devices pass.
    cr_assert_leq(
        changed_rows, 40, "%d of 2000 honest rows changed", changed_rows);
    cr_assert_eq(other, 0, "%d honest updates changed elsewhere", other);
    cr_assert_eq(st1.rows_clipped - st0.rows_clipped, (uint64_t)changed_rows);
    cr_assert_eq(st1.updates - st0.updates, 100);
    fri_robust_destroy(r);
}

// A heavy honest user (10 times the median number of ratings) keeps its
// whole count: the global mean is the mean over ratings, not devices.
Test(robust, heavy_honest_device_keeps_its_count)
{
    fri_robust *r = make(FRI_AGG_ALS);
    fri_rng     rng;
    fri_rng_seed2(&rng, 5, 6);
    for (int i = 0; i < 100; i++) {
        upd            h;
        fri_agg_update o;
        float         *buf = NULL;
        honest(&h, &rng);
        h.u.n = 2; // light users: 2 ratings each
        h.u.rows_len = 2 * D;
        h.u.sum_ratings *= 2.0 / NR;
        h.u.count = h.u.weight = 2;
        cr_assert_eq(fri_robust_bound(r, &h.u, &o, &buf), FR_OK);
        free(buf);
    }
    fri_robust_next_round(r);
    upd h;
    honest(&h, &rng);
    fri_agg_update o;
    float         *buf = NULL;
    cr_assert_eq(fri_robust_bound(r, &h.u, &o, &buf), FR_OK);
    cr_assert_eq(o.count, (double)NR, "count %g of %d", o.count, NR);
    cr_assert_float_eq(o.sum_ratings, h.u.sum_ratings, 1e-9);
    // Its FedAvg weight (gradient rounds) is still capped at M x median.
    cr_assert_leq(o.weight, FRI_ROBUST_M * 2.0 + 1e-9, "weight %g", o.weight);
    free(buf);
    fri_robust_destroy(r);
}

Test(robust, scaled_update_gets_unit_weight)
{
    fri_robust *r = make(FRI_AGG_ALS);
    fri_rng     rng;
    fri_rng_seed2(&rng, 3, 4);
    warm(r, &rng, 100);
    upd h;
    honest(&h, &rng);
    for (size_t i = 0; i < h.u.gram_len; i++) {
        h.gram[i] *= 1000.0f;
    }
    for (size_t i = 0; i < h.u.rows_len; i++) {
        h.rows[i] *= 1000.0f;
    }
    h.u.sum_ratings *= 1000.0;
    h.u.count *= 1000.0;
    h.u.weight *= 1000.0;
    fri_agg_update o;
    float         *buf = NULL;
    cr_assert_eq(fri_robust_bound(r, &h.u, &o, &buf), FR_OK);
    cr_assert_float_eq(o.gram[fri_packed_index(D, K, K)], 1.0f, 1e-5);
    cr_assert_leq(o.count, (double)NR, "count %g", o.count);
    cr_assert_leq(o.weight, (double)NR);
    double m = o.sum_ratings / o.count;
    cr_assert(m > 2.0 && m < 5.0, "mean %g", m);
    for (size_t i = 0; i < o.rows_len; i++) {
        cr_assert_leq(fabsf(o.rows[i]), 20.0f);
    }
    free(buf);
    fri_robust_destroy(r);
}

Test(robust, per_item_caps_bound_residuals_and_norms)
{
    fri_robust *r = make(FRI_AGG_ALS);
    fri_rng     rng;
    fri_rng_seed2(&rng, 5, 6);
    warm(r, &rng, 200);
    upd h;
    honest(&h, &rng);
    // One item's residual 1000 (a boosted fake rating), one row with a
    // huge factor part inconsistent with the Gram.
    for (int a = 0; a < D; a++) {
        h.rows[a] = h.gram[fri_packed_index(D, a, K)] * 1000.0f;
    }
    h.rows[D * 1 + 0] = 1e6f;
    fri_agg_update o;
    float         *buf = NULL;
    cr_assert_eq(fri_robust_bound(r, &h.u, &o, &buf), FR_OK);
    // median |N(0,1)| = 0.674: residual bound ~ 4 * 0.674.
    cr_assert_leq(fabsf(o.rows[K]), 3.2f, "residual %g", o.rows[K]);
    double n1 = 0.0;
    for (int a = 0; a < D; a++) {
        n1 += (double)o.rows[D + a] * o.rows[D + a];
    }
    cr_assert_leq(sqrt(n1), 20.0, "row norm %g", sqrt(n1));
    // The other rows are those of the honest update.
    cr_assert_eq(
        memcmp(o.rows + 2 * D, h.rows + 2 * D, (NR - 2) * D * sizeof(float)),
        0);
    fri_robust_stats st;
    fri_robust_stats_get(r, &st);
    cr_assert_geq(st.rows_clipped, 2);
    free(buf);
    fri_robust_destroy(r);
}

Test(robust, absurd_values_are_cut_to_honest_ranges)
{
    fri_robust *r = make(FRI_AGG_ALS);
    fri_rng     rng;
    fri_rng_seed2(&rng, 7, 8);
    warm(r, &rng, 100);
    upd h;
    honest(&h, &rng);
    for (size_t i = 0; i < h.u.gram_len; i++) {
        h.gram[i] = 1e30f;
    }
    for (size_t i = 0; i < h.u.rows_len; i++) {
        h.rows[i] = 1e30f;
    }
    h.u.sum_ratings = 1e30;
    h.u.weight      = 1e30;
    fri_agg_update o;
    float         *buf = NULL;
    cr_assert_eq(fri_robust_bound(r, &h.u, &o, &buf), FR_OK);
    double m = o.sum_ratings / o.count;
    cr_assert(m > 1.0 && m < 6.0, "mean %g", m);
    cr_assert_leq(o.weight, (double)NR);
    cr_assert_leq(o.gram[fri_packed_index(D, K, K)], 1.0f);
    double tr = 0.0;
    for (int a = 0; a < K; a++) {
        tr += o.gram[fri_packed_index(D, a, a)];
    }
    cr_assert_leq(tr, 10.0, "trace %g", tr);
    for (size_t i = 0; i < o.rows_len; i++) {
        cr_assert(isfinite(o.rows[i]) && fabsf(o.rows[i]) < 100.0f);
    }
    free(buf);
    fri_robust_destroy(r);
}

Test(robust, gradient_rows_clipped_by_norm)
{
    fri_robust *r = make(FRI_AGG_GRAD);
    fri_rng     rng;
    fri_rng_seed2(&rng, 9, 10);
    for (int i = 0; i < 100; i++) {
        upd h;
        honest(&h, &rng);
        h.u.gram     = NULL;
        h.u.gram_len = 0;
        fri_agg_update o;
        float         *buf = NULL;
        if (i == 99) {
            fri_robust_next_round(r); // a new round, bounds from the last
            for (int a = 0; a < D; a++) {
                h.rows[3 * D + a] *= 1e4f;
            }
        }
        cr_assert_eq(fri_robust_bound(r, &h.u, &o, &buf), FR_OK);
        if (i == 99) {
            double n3 = 0.0;
            for (int a = 0; a < D; a++) {
                n3 += (double)o.rows[3 * D + a] * o.rows[3 * D + a];
            }
            // Median honest gradient row norm ~ 1: bound 6.
            cr_assert_leq(sqrt(n3), 8.0, "norm %g", sqrt(n3));
        }
        free(buf);
    }
    fri_robust_destroy(r);
}

// fedrec-aggregator --robust on|off (also in --config files).
Test(robust, aggregator_flag)
{
    char         err[256];
    fri_agg_args a;
    const char  *on[] = { "fedrec-aggregator", "--listen", "tcp://127.0.0.1:1",
         "--items", "10" };
    cr_assert_eq(fri_agg_args_parse(&a, 5, (char **)on, err, sizeof(err)),
        FR_OK, "%s", err);
    cr_assert_eq(a.cfg.robust, 1, "on by default");
    fri_agg_args_free(&a);
    const char *off[] = { "fedrec-aggregator", "--listen", "tcp://127.0.0.1:1",
        "--items", "10", "--robust", "off" };
    cr_assert_eq(fri_agg_args_parse(&a, 7, (char **)off, err, sizeof(err)),
        FR_OK, "%s", err);
    cr_assert_eq(a.cfg.robust, 0);
    fri_agg_args_free(&a);
    const char *bad[] = { "fedrec-aggregator", "--listen", "tcp://127.0.0.1:1",
        "--items", "10", "--robust", "maybe" };
    cr_assert_eq(
        fri_agg_args_parse(&a, 7, (char **)bad, err, sizeof(err)), FR_EINVAL);
    cr_assert(strstr(err, "--robust") != NULL, "%s", err);
    fri_agg_args_free(&a);
}

// Bounds are fixed per round: the same updates in two arrival orders are
// bounded identically, and a round's own updates (however many extreme
// ones come first) do not move the bounds applied to it.
Test(robust, bounds_fixed_per_round_order_independent)
{
    enum { N = 40 };
    static upd hs[N];
    fri_rng    rng;
    fri_rng_seed2(&rng, 11, 12);
    for (int i = 0; i < N; i++) {
        honest(&hs[i], &rng);
    }
    // 20 extreme residuals (x 50) in the round, first in one order.
    for (int i = 0; i < N / 2; i++) {
        for (int j = 0; j < NR * D; j++) {
            hs[i].rows[j] *= 50.0f;
        }
    }
    float out[2][N][NR * D];
    for (int order = 0; order < 2; order++) {
        fri_robust *r = make(FRI_AGG_ALS);
        fri_rng     w;
        fri_rng_seed2(&w, 13, 14);
        warm(r, &w, 100);
        for (int t = 0; t < N; t++) {
            int            i = order == 0 ? t : N - 1 - t;
            fri_agg_update o;
            float         *buf = NULL;
            cr_assert_eq(fri_robust_bound(r, &hs[i].u, &o, &buf), FR_OK);
            memcpy(out[order][i], o.rows, sizeof(out[order][i]));
            free(buf);
        }
        fri_robust_destroy(r);
    }
    cr_assert_eq(memcmp(out[0], out[1], sizeof(out[0])), 0,
                 "the bounded updates depend on arrival order");
    // The extreme residuals were cut to the bound of the warm-up devices
    // (4 median |N(0,1)| ~ 2.7), though half of the round sent 50x.
    for (int i = 0; i < N / 2; i++) {
        for (int j = 0; j < NR; j++) {
            cr_assert_leq(fabsf(out[0][i][j * D + K]), 3.2f);
        }
    }
}

// Before any round has been observed no statistical bound applies (the
// hard bounds of the aggregator do), and one next_round later they do.
Test(robust, no_bounds_before_history)
{
    fri_robust *r = make(FRI_AGG_ALS);
    fri_rng     rng;
    fri_rng_seed2(&rng, 15, 16);
    upd h;
    honest(&h, &rng);
    h.rows[K] *= 100.0f;
    fri_agg_update o;
    float         *buf = NULL;
    cr_assert_eq(fri_robust_bound(r, &h.u, &o, &buf), FR_OK);
    cr_assert_eq(o.rows[K], h.rows[K]);
    free(buf);
    warm(r, &rng, 100);
    cr_assert_eq(fri_robust_bound(r, &h.u, &o, &buf), FR_OK);
    cr_assert_lt(fabsf(o.rows[K]), fabsf(h.rows[K]) / 10.0f);
    free(buf);
    fri_robust_destroy(r);
}
