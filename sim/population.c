// The simulated population: the data split into per-user training and
// test rows, kept as two shared CSRs so that an idle device costs only its
// row pointers.
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "itemfeat.h"
#include "sim.h"
#include "userattr.h"

static fr_err
fail(char *err, size_t cap, fr_err e, const char *what)
{
    if (cap > 0) {
        snprintf(err, cap, "%s: %s", what, fr_strerror(e));
    }
    return e;
}

static void
rating_range(fri_sim_pop *p, const fri_dataset *d)
{
    float lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < d->n; i++) {
        lo = fminf(lo, d->r[i].rating);
        hi = fmaxf(hi, d->r[i].rating);
    }
    if (!(lo < hi)) {
        lo = 1.0f, hi = 5.0f;
    }
    p->min_rating = lo;
    p->max_rating = hi;
}

// Timestamps of d in the order of its rows c (fri_csr_by_user(c, d)): each
// rating is found in its user's row, sorted by item. A repeated (user,
// item) pair keeps one of its timestamps.
static fr_err
csr_ts(int64_t **out, const fri_csr *c, const fri_dataset *d)
{
    size_t n = c->ptr[c->n_rows];
    *out = calloc(n > 0 ? n : 1, sizeof(int64_t));
    if (*out == NULL) {
        return FR_ENOMEM;
    }
    for (size_t j = 0; j < d->n; j++) {
        const fri_triplet *t = &d->r[j];
        if (t->user >= c->n_rows) {
            continue;
        }
        size_t lo = c->ptr[t->user], hi = c->ptr[t->user + 1];
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (c->idx[mid] < t->item) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (lo < c->ptr[t->user + 1] && c->idx[lo] == t->item) {
            (*out)[lo] = t->ts;
        }
    }
    return FR_OK;
}

fr_err
fri_sim_pop_load(fri_sim_pop *p, const fri_sim_config *c, char *err,
                 size_t err_cap)
{
    fri_dataset train = {0}, test = {0};
    fr_err      e;
    memset(p, 0, sizeof(*p));
    if (err_cap > 0) {
        err[0] = '\0';
    }
    if (!c->synthetic) {
        fri_idmap    *users = NULL, *items = NULL;
        fri_load_opts lo;
        fri_load_opts_init(&lo);
        if ((e = fri_idmap_create(&users)) != FR_OK ||
            (e = fri_idmap_create(&items)) != FR_OK) {
            fri_idmap_destroy(users);
            return fail(err, err_cap, e, "id maps");
        }
        e = fri_dataset_load(&train, c->train_path, users, items, &lo, err,
                             err_cap);
        if (e == FR_OK && c->leave_last) {
            // One file, each user's latest interaction held out.
            fri_dataset all = train;
            train = (fri_dataset){0};
            if (!fri_dataset_has_ts(&all)) {
                if (err_cap > 0) {
                    snprintf(err, err_cap, "%s has no timestamps: --split "
                             "leave-last-out needs them to know each user's "
                             "latest interaction", c->train_path);
                }
                e = FR_EFORMAT;
            } else {
                e = fri_split_leave_last_out(&all, &train, NULL, &test);
            }
            fri_dataset_free(&all);
        } else if (e == FR_OK) {
            e = fri_dataset_load(&test, c->test_path, users, items, &lo, err,
                                 err_cap);
        }
        if (e == FR_OK) {
            // Both sides over the final id space.
            train.n_users = test.n_users = fri_idmap_size(users);
            train.n_items = test.n_items = fri_idmap_size(items);
        }
        if (e == FR_OK && c->users_path != NULL) {
            uint32_t nu = train.n_users;
            p->gender   = malloc(nu > 0 ? nu : 1);
            p->age_band = malloc(nu > 0 ? nu : 1);
            e           = p->gender == NULL || p->age_band == NULL
                              ? FR_ENOMEM
                              : fri_user_attrs_load(c->users_path, users, nu,
                                                    p->gender, p->age_band,
                                                    err, err_cap);
            if (e != FR_OK) {
                free(p->gender);
                free(p->age_band);
                p->gender = p->age_band = NULL;
            }
        }
        if (e == FR_OK && c->item_features_path != NULL) {
            uint32_t rows = 0;
            e = fri_item_features_load(c->item_features_path, items, 0,
                                       &p->item_feat, &rows, &p->n_feat, err,
                                       err_cap);
        }
        fri_idmap_destroy(users);
        fri_idmap_destroy(items);
        if (e != FR_OK) {
            fri_dataset_free(&train);
            fri_dataset_free(&test);
            free(p->gender);
            free(p->age_band);
            free(p->item_feat);
            p->gender = p->age_band = NULL;
            p->item_feat            = NULL;
            return e;
        }
        const char *b = strrchr(c->train_path, '/');
        snprintf(p->name, sizeof(p->name), "%s", b ? b + 1 : c->train_path);
    } else {
        fri_dataset all = {0};
        if ((e = fri_synth_generate(&all, &c->synth)) != FR_OK) {
            return fail(err, err_cap, e, "synthetic generator");
        }
        e = fri_split_random(&all, c->holdout, c->seed, &train, &test);
        fri_dataset_free(&all);
        if (e != FR_OK) {
            return fail(err, err_cap, e, "split");
        }
        snprintf(p->name, sizeof(p->name), "synthetic:users=%u,items=%u,k=%u,"
                 "seed=%llu",
                 c->synth.n_users, c->synth.n_items, c->synth.k,
                 (unsigned long long) c->synth.seed);
    }
    if (train.n == 0 || train.n_users == 0 || train.n_items == 0) {
        fri_dataset_free(&train);
        fri_dataset_free(&test);
        if (err_cap > 0) {
            snprintf(err, err_cap, "no training ratings");
        }
        return FR_EFORMAT;
    }
    rating_range(p, &train);
    p->n_users = train.n_users;
    p->n_items = train.n_items;
    test.n_users = train.n_users;
    test.n_items = train.n_items;
    e = fri_csr_by_user(&p->train, &train);
    if (e == FR_OK) {
        e = fri_csr_by_user(&p->test, &test);
    }
    if (e == FR_OK && fri_dataset_has_ts(&train)) {
        e = csr_ts(&p->train_ts, &p->train, &train);
        if (e == FR_OK) {
            e = csr_ts(&p->test_ts, &p->test, &test);
        }
    }
    fri_dataset_free(&train);
    fri_dataset_free(&test);
    if (e != FR_OK) {
        fri_sim_pop_free(p);
        return fail(err, err_cap, e, "per-user rows");
    }
    // Identities are a pure function of the seed, so a run can be
    // replayed; this is a simulation, never a deployment key.
    uint8_t in[24] = "fedrec-sim population";
    for (int i = 0; i < 8; i++) {
        in[16 + i] = (uint8_t) (c->seed >> (8 * i));
    }
    crypto_generichash(p->key, sizeof(p->key), in, sizeof(in), NULL, 0);
    return FR_OK;
}

void
fri_sim_pop_free(fri_sim_pop *p)
{
    if (p == NULL) {
        return;
    }
    fri_csr_free(&p->train);
    fri_csr_free(&p->test);
    free(p->train_ts);
    free(p->test_ts);
    free(p->gender);
    free(p->age_band);
    free(p->item_feat);
    sodium_memzero(p->key, sizeof(p->key));
    memset(p, 0, sizeof(*p));
}

void
fri_sim_pop_identity(const fri_sim_pop *p, uint32_t u,
                     uint8_t seed[FRI_SIM_SEEDBYTES])
{
    uint8_t in[4] = {(uint8_t) u, (uint8_t) (u >> 8), (uint8_t) (u >> 16),
                     (uint8_t) (u >> 24)};
    crypto_generichash(seed, FRI_SIM_SEEDBYTES, in, sizeof(in), p->key,
                       sizeof(p->key));
}

size_t
fri_sim_pop_overhead(const fri_sim_pop *p)
{
    // Two row-pointer arrays; the ratings (idx, val) are the devices' data.
    return 2 * ((size_t) p->n_users + 1) * sizeof(size_t);
}
