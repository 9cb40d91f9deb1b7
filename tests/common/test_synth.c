#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dataset.h"

static int
cmp_desc(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

Test(common_synth, defaults)
{
    fri_synth_config c;
    fri_synth_config_init(&c);
    cr_assert_eq(c.n_users, 600);
    cr_assert_eq(c.n_items, 400);
    cr_assert_eq(c.k, 8);
    cr_assert_eq(c.seed, 1);
    cr_assert_eq(c.continuous, 0);
}

Test(common_synth, parse_spec)
{
    fri_synth_config c;
    char             err[128];
    fri_synth_config_init(&c);
    cr_assert_eq(fri_synth_config_parse(&c,
                     "users=1000,items=50,k=4,density=0.1,"
                     "zipf=1.2,noise=0.25,seed=99,"
                     "continuous=1",
                     err, sizeof(err)),
        FR_OK, "%s", err);
    cr_assert_eq(c.n_users, 1000);
    cr_assert_eq(c.n_items, 50);
    cr_assert_eq(c.k, 4);
    cr_assert_float_eq(c.density, 0.1, 1e-12);
    cr_assert_float_eq(c.zipf, 1.2, 1e-12);
    cr_assert_float_eq(c.noise, 0.25, 1e-12);
    cr_assert_eq(c.seed, 99);
    cr_assert_eq(c.continuous, 1);
    // Partial spec changes only what it names.
    cr_assert_eq(
        fri_synth_config_parse(&c, "seed=5", err, sizeof(err)), FR_OK);
    cr_assert_eq(c.seed, 5);
    cr_assert_eq(c.n_users, 1000);
    cr_assert_eq(fri_synth_config_parse(&c, "", err, sizeof(err)), FR_OK);
}

Test(common_synth, parse_rejects_and_names_key)
{
    static const struct {
        const char *spec;
        const char *needle;
    } bad[] = {
        { "users=10,colour=3", "colour" },
        { "users=abc", "users" },
        { "users=0", "users" },
        { "items=-3", "items" },
        { "k=2000", "k" },
        { "density=0", "density" },
        { "density=1.5", "density" },
        { "density=nan", "density" },
        { "zipf=-1", "zipf" },
        { "noise=inf", "noise" },
        { "continuous=2", "continuous" },
        { "seed=1x", "seed" },
        { "users", "users" },
        { "users=5,,k=3", "empty" },
        { "users=99999999999999999999", "users" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        fri_synth_config c, before;
        char             err[128] = "";
        fri_synth_config_init(&c);
        before = c;
        cr_assert_eq(fri_synth_config_parse(&c, bad[i].spec, err, sizeof(err)),
            FR_EINVAL, "%s accepted", bad[i].spec);
        cr_assert(
            strstr(err, bad[i].needle) != NULL, "%s: '%s'", bad[i].spec, err);
        cr_assert_eq(memcmp(&c, &before, sizeof(c)), 0,
            "%s changed the config", bad[i].spec);
    }
}

Test(common_synth, reproducible_and_seed_dependent)
{
    fri_synth_config c;
    fri_synth_config_init(&c);
    fri_dataset a, b, d;
    cr_assert_eq(fri_synth_generate(&a, &c), FR_OK);
    cr_assert_eq(fri_synth_generate(&b, &c), FR_OK);
    cr_assert_eq(a.n, b.n);
    cr_assert_eq(memcmp(a.r, b.r, a.n * sizeof(*a.r)), 0);
    c.seed = 2;
    cr_assert_eq(fri_synth_generate(&d, &c), FR_OK);
    cr_assert(d.n != a.n || memcmp(a.r, d.r, a.n * sizeof(*a.r)) != 0);
    fri_dataset_free(&a);
    fri_dataset_free(&b);
    fri_dataset_free(&d);
}

Test(common_synth, shape_density_range_distinct)
{
    fri_synth_config c;
    fri_synth_config_init(&c);
    fri_dataset d;
    cr_assert_eq(fri_synth_generate(&d, &c), FR_OK);
    cr_assert_eq(d.n_users, 600);
    cr_assert_eq(d.n_items, 400);
    double dens = (double)d.n / (600.0 * 400.0);
    cr_assert(dens > 0.04 && dens < 0.08, "density %g", dens);

    uint32_t *per_user = calloc(600, sizeof(*per_user));
    uint32_t *per_item = calloc(400, sizeof(*per_item));
    uint8_t  *cell     = calloc(600 * 400, 1);
    double    sum = 0, sq = 0;
    int       hist[6] = { 0 };
    for (size_t i = 0; i < d.n; i++) {
        const fri_triplet *t = &d.r[i];
        cr_assert_lt(t->user, 600);
        cr_assert_lt(t->item, 400);
        cr_assert_eq(cell[t->user * 400 + t->item], 0, "duplicate pair");
        cell[t->user * 400 + t->item] = 1;
        cr_assert(t->rating >= 1 && t->rating <= 5);
        cr_assert_float_eq(t->rating, roundf(t->rating), 0);
        hist[(int)t->rating]++;
        per_user[t->user]++;
        per_item[t->item]++;
        sum += t->rating;
        sq += (double)t->rating * t->rating;
    }
    double mean = sum / (double)d.n;
    double sd   = sqrt(sq / (double)d.n - mean * mean);
    cr_assert(mean > 3.2 && mean < 3.8, "mean %g", mean);
    cr_assert(sd > 0.6 && sd < 1.4, "sd %g", sd);
    for (int r = 1; r <= 5; r++) {
        cr_assert_gt(hist[r], 0, "no rating %d", r);
    }
    // Activity varies and every user has a few ratings.
    uint32_t lo = UINT32_MAX, hi = 0;
    for (int u = 0; u < 600; u++) {
        lo = per_user[u] < lo ? per_user[u] : lo;
        hi = per_user[u] > hi ? per_user[u] : hi;
    }
    cr_assert_geq(lo, 5);
    cr_assert_gt(hi, 3 * lo, "activity barely varies (%u..%u)", lo, hi);
    // Popularity is skewed: the top 10% items get far more than 10%.
    qsort(per_item, 400, sizeof(*per_item), cmp_desc);
    size_t top = 0;
    for (int i = 0; i < 40; i++) {
        top += per_item[i];
    }
    cr_assert_gt((double)top / (double)d.n, 0.2, "top 10%% items: %g",
        (double)top / (double)d.n);
    free(per_user);
    free(per_item);
    free(cell);
    fri_dataset_free(&d);
}

Test(common_synth, continuous_and_edge_configs)
{
    fri_synth_config c;
    fri_synth_config_init(&c);
    c.continuous = 1;
    fri_dataset d;
    cr_assert_eq(fri_synth_generate(&d, &c), FR_OK);
    int frac = 0;
    for (size_t i = 0; i < d.n; i++) {
        cr_assert(d.r[i].rating >= 1 && d.r[i].rating <= 5);
        frac += d.r[i].rating != roundf(d.r[i].rating);
    }
    cr_assert_gt(frac, (int)(d.n / 2));
    fri_dataset_free(&d);
    // Fewer items than the per-user minimum, steep popularity, full
    // density: every user rates every item.
    c.n_users = 20;
    c.n_items = 3;
    c.zipf    = 4;
    c.density = 1;
    cr_assert_eq(fri_synth_generate(&d, &c), FR_OK);
    cr_assert_eq(d.n, 60);
    fri_dataset_free(&d);
    c.n_items = 50;
    c.density = 0.9;
    cr_assert_eq(fri_synth_generate(&d, &c), FR_OK);
    fri_csr csr;
    cr_assert_eq(fri_csr_by_user(&csr, &d), FR_OK);
    for (uint32_t u = 0; u < csr.n_rows; u++) {
        for (size_t j = csr.ptr[u] + 1; j < csr.ptr[u + 1]; j++) {
            cr_assert_lt(csr.idx[j - 1], csr.idx[j], "duplicate item");
        }
    }
    fri_csr_free(&csr);
    fri_dataset_free(&d);
    c.k = 0;
    cr_assert_eq(fri_synth_generate(&d, &c), FR_EINVAL);
    cr_assert_null(d.r);
}

// The 1M-client scale test generates data of this size; keep it fast.
Test(common_synth, million_users_is_fast)
{
    fri_synth_config c;
    char             err[128];
    fri_synth_config_init(&c);
    cr_assert_eq(fri_synth_config_parse(&c,
                     "users=1000000,items=2000,"
                     "density=0.005",
                     err, sizeof(err)),
        FR_OK, "%s", err);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    fri_dataset d;
    cr_assert_eq(fri_synth_generate(&d, &c), FR_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec)
        + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    cr_log_info("1e6 users: %zu ratings in %.2f s", d.n, s);
    cr_assert_eq(d.n_users, 1000000);
    cr_assert(d.n > 7000000 && d.n < 14000000, "n %zu", d.n);
    cr_assert_eq(d.r[d.n - 1].user, 999999);
    fri_dataset_free(&d);
}
