#include "coldstart.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "sim.h"
#include "sorted.h"

const uint32_t FRI_SIM_CS_STEPS[FRI_SIM_CS_N] = {1, 3, 5, 10, 20};
#define MAX_STEP 20u
#define LIST_K   10u

// Per held-out user and point of the curve.
typedef struct cs_acc {
    double   sq[FRI_SIM_CS_N], ab[FRI_SIM_CS_N];
    uint64_t n[FRI_SIM_CS_N];   // ratings scored at each point
    double   base_sq;           // item-mean baseline (does not depend on n)
    uint64_t base_n;
    uint8_t  hit[FRI_SIM_CS_N]; // implicit: the device's top 10 hit
    uint8_t  pop_hit[FRI_SIM_CS_N];
    uint8_t  done;
} cs_acc;

struct fri_sim_cold {
    const fri_sim_config *c;
    const fri_sim_pop    *p;
    uint8_t              *mask;  // n_users
    uint32_t             *users; // held out, ascending
    size_t                n;
    float                *item_mean; // training users' mean rating
    uint32_t             *by_pop;    // items by training popularity
    cs_acc               *acc;       // per held-out user
};

// Items by falling training popularity, then by id: (count, ~id) packed.
static int
cmp_desc_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
    return (x < y) - (x > y);
}

fr_err
fri_sim_cold_create(fri_sim_cold **out, const fri_sim_config *c,
                    const fri_sim_pop *p, char *err, size_t err_cap)
{
    *out = NULL;
    if (!c->report_cold_start) {
        return FR_OK;
    }
    const uint32_t nu = p->n_users, ni = p->n_items;
    fri_sim_cold  *cs = calloc(1, sizeof(*cs));
    if (cs == NULL) {
        return FR_ENOMEM;
    }
    cs->c         = c;
    cs->p         = p;
    cs->mask      = calloc(nu ? nu : 1, 1);
    cs->users     = malloc(sizeof(uint32_t) * (nu ? nu : 1));
    cs->item_mean = malloc(sizeof(float) * (ni ? ni : 1));
    cs->by_pop    = malloc(sizeof(uint32_t) * (ni ? ni : 1));
    double   *sum = calloc(ni ? ni : 1, sizeof(double));
    uint32_t *cnt = calloc(ni ? ni : 1, sizeof(uint32_t));
    if (cs->mask == NULL || cs->users == NULL || cs->item_mean == NULL ||
        cs->by_pop == NULL || sum == NULL || cnt == NULL) {
        free(sum);
        free(cnt);
        fri_sim_cold_destroy(cs);
        return FR_ENOMEM;
    }
    // Candidates: enough training ratings for every point and something
    // to score; a seeded tenth of them (at least one) is held out.
    size_t cand = 0;
    for (uint32_t u = 0; u < nu; u++) {
        if (p->train.ptr[u + 1] - p->train.ptr[u] >= MAX_STEP &&
            p->test.ptr[u + 1] > p->test.ptr[u]) {
            cs->users[cand++] = u;
        }
    }
    if (cand < 2) {
        free(sum);
        free(cnt);
        fri_sim_cold_destroy(cs);
        snprintf(err, err_cap, "--report cold-start needs users with at "
                               "least %u training ratings and a test rating",
                 MAX_STEP);
        return FR_EINVAL;
    }
    size_t  want = cand / 10 > 0 ? cand / 10 : 1;
    fri_rng r;
    fri_rng_seed2(&r, c->seed, 0xc01d);
    for (size_t i = 0; i < want; i++) {
        size_t   j = i + fri_rng_below(&r, (uint32_t) (cand - i));
        uint32_t t = cs->users[i];
        cs->users[i] = cs->users[j];
        cs->users[j] = t;
    }
    cs->n = want;
    for (size_t i = 0; i < want; i++) {
        cs->mask[cs->users[i]] = 1;
    }
    for (uint32_t u = 0, k = 0; u < nu; u++) { // ascending
        if (cs->mask[u]) {
            cs->users[k++] = u;
        }
    }
    // Baselines from the users who train.
    double tot = 0.0;
    size_t n_tot = 0;
    for (uint32_t u = 0; u < nu; u++) {
        if (cs->mask[u]) {
            continue;
        }
        for (size_t j = p->train.ptr[u]; j < p->train.ptr[u + 1]; j++) {
            uint32_t i = p->train.idx[j];
            sum[i] += p->train.val[j];
            cnt[i]++;
            tot += p->train.val[j];
            n_tot++;
        }
    }
    double mu = n_tot > 0 ? tot / (double) n_tot : 0.0;
    uint64_t *key = malloc(sizeof(uint64_t) * (ni ? ni : 1));
    if (key == NULL) {
        free(sum);
        free(cnt);
        fri_sim_cold_destroy(cs);
        return FR_ENOMEM;
    }
    for (uint32_t i = 0; i < ni; i++) {
        cs->item_mean[i] = (float) (cnt[i] > 0 ? sum[i] / cnt[i] : mu);
        key[i] = ((uint64_t) cnt[i] << 32) | (uint32_t) ~i;
    }
    qsort(key, ni, sizeof(uint64_t), cmp_desc_u64);
    for (uint32_t i = 0; i < ni; i++) {
        cs->by_pop[i] = ~(uint32_t) key[i];
    }
    free(key);
    free(sum);
    free(cnt);
    cs->acc = calloc(want, sizeof(*cs->acc));
    if (cs->acc == NULL) {
        fri_sim_cold_destroy(cs);
        return FR_ENOMEM;
    }
    *out = cs;
    return FR_OK;
}

void
fri_sim_cold_destroy(fri_sim_cold *cs)
{
    if (cs == NULL) {
        return;
    }
    free(cs->mask);
    free(cs->users);
    free(cs->item_mean);
    free(cs->by_pop);
    free(cs->acc);
    free(cs);
}

int
fri_sim_cold_is(const fri_sim_cold *cs, uint32_t u)
{
    return cs != NULL && u < cs->p->n_users && cs->mask[u];
}

const uint32_t *
fri_sim_cold_users(const fri_sim_cold *cs, size_t *n)
{
    *n = cs != NULL ? cs->n : 0;
    return cs != NULL ? cs->users : NULL;
}

void
fri_sim_cold_device(fri_sim_cold *cs, fr_client *c, uint32_t u)
{
    size_t lo = fri_lower_bound(cs->users, cs->n, u);
    if (lo >= cs->n || cs->users[lo] != u) {
        return;
    }
    cs_acc            *a  = &cs->acc[lo];
    const fri_sim_pop *p  = cs->p;
    const fri_csr     *tr = &p->train, *te = &p->test;
    const size_t       ta = tr->ptr[u], nt = tr->ptr[u + 1] - ta;
    const size_t       ea = te->ptr[u], ne = te->ptr[u + 1] - ea;
    // The order the user rates in: a seeded shuffle of its training row
    // (rows carry no time).
    uint32_t order[MAX_STEP];
    uint32_t *perm = malloc(sizeof(uint32_t) * nt);
    if (perm == NULL) {
        return;
    }
    for (size_t j = 0; j < nt; j++) {
        perm[j] = (uint32_t) j;
    }
    fri_rng r;
    fri_rng_seed2(&r, cs->c->seed ^ 0xc01dc01dull, u);
    for (size_t j = 0; j < MAX_STEP; j++) {
        size_t   t = j + fri_rng_below(&r, (uint32_t) (nt - j));
        uint32_t x = perm[j];
        perm[j]    = perm[t];
        perm[t]    = x;
        order[j]   = perm[j];
    }
    free(perm);
    for (size_t j = 0; j < nt; j++) {
        if (fr_client_remove(c, tr->idx[ta + j]) != FR_OK) {
            return; // the device did not hold its row: not scored
        }
    }
    for (size_t j = 0; j < ne && !cs->c->implicit; j++) {
        double e = (double) cs->item_mean[te->idx[ea + j]] - te->val[ea + j];
        a->base_sq += e * e;
        a->base_n++;
    }
    uint32_t seen[MAX_STEP];
    size_t   have = 0;
    for (size_t s = 0; s < FRI_SIM_CS_N; s++) {
        for (; have < FRI_SIM_CS_STEPS[s]; have++) {
            uint32_t j = order[have];
            if (fr_client_add(c, tr->idx[ta + j], tr->val[ta + j], 0) !=
                FR_OK) {
                return;
            }
            seen[have] = tr->idx[ta + j];
        }
        if (!cs->c->implicit) {
            for (size_t j = 0; j < ne; j++) {
                float v;
                if (fr_client_predict(c, te->idx[ea + j], &v) != FR_OK) {
                    continue;
                }
                v = fminf(fmaxf(v, p->min_rating), p->max_rating);
                double e = (double) v - te->val[ea + j];
                a->sq[s] += e * e;
                a->ab[s] += fabs(e);
                a->n[s]++;
            }
            continue;
        }
        uint32_t top[LIST_K];
        float    sc[LIST_K];
        size_t   got = 0;
        if (fr_client_recommend(c, top, sc, LIST_K, &got) == FR_OK) {
            for (size_t t = 0; t < got && !a->hit[s]; t++) {
                a->hit[s] = fri_in_sorted(te->idx + ea, ne, top[t]);
            }
        }
        // Popularity: the 10 most popular items the user has not rated.
        for (size_t t = 0, listed = 0; t < p->n_items && listed < LIST_K;
             t++) {
            uint32_t i    = cs->by_pop[t];
            int      skip = 0;
            for (size_t q = 0; q < have && !skip; q++) {
                skip = seen[q] == i;
            }
            if (skip) {
                continue;
            }
            listed++;
            a->pop_hit[s] |= (uint8_t) fri_in_sorted(te->idx + ea, ne, i);
        }
        a->n[s]++;
    }
    a->done = 1;
}

void
fri_sim_cold_curve(const fri_sim_cold *cs, fri_sim_cs_point pts[FRI_SIM_CS_N])
{
    for (size_t s = 0; s < FRI_SIM_CS_N; s++) {
        double   sq = 0, ab = 0, bsq = 0, hit = 0, phit = 0;
        uint64_t n = 0, bn = 0, users = 0;
        for (size_t k = 0; cs != NULL && k < cs->n; k++) {
            const cs_acc *a = &cs->acc[k];
            if (!a->done) {
                continue;
            }
            sq += a->sq[s];
            ab += a->ab[s];
            n += a->n[s];
            bsq += a->base_sq;
            bn += a->base_n;
            hit += a->hit[s];
            phit += a->pop_hit[s];
            users++;
        }
        fri_sim_cs_point *pt = &pts[s];
        pt->ratings          = FRI_SIM_CS_STEPS[s];
        if (cs != NULL && cs->c->implicit) {
            pt->rmse = pt->mae = pt->item_mean_rmse = NAN;
            pt->hr10            = users > 0 ? hit / (double) users : NAN;
            pt->popularity_hr10 = users > 0 ? phit / (double) users : NAN;
            pt->n_scored        = users;
        } else {
            pt->rmse            = n > 0 ? sqrt(sq / (double) n) : NAN;
            pt->mae             = n > 0 ? ab / (double) n : NAN;
            pt->item_mean_rmse  = bn > 0 ? sqrt(bsq / (double) bn) : NAN;
            pt->hr10            = NAN;
            pt->popularity_hr10 = NAN;
            pt->n_scored        = n;
        }
    }
}
