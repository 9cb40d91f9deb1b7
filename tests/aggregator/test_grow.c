// A catalog that grows while the aggregator runs (aggregator/grow.c): real
// client handles against fri_agg_handle. The devices rate items the
// catalog does not have yet; after fri_agg_grow_items and the next
// completed round the model has them, the devices fetch the larger model,
// secure rounds go on at the new length, and the new items are learned.
// A restart keeps the larger catalog and the same model; shrinking and
// out-of-range sizes are refused.
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "e2e_harness.h"
#include "state_dir.h"
#include "fedrec/client.h"

#define NU 12
#define NIT 30
#define NIT0 22 // the catalog at the start: items 22..29 come later
#define KK 3
#define COHORT 6
#define DEADLINE 2000

typedef e2e_world world;

static const uint32_t R_A[COHORT] = { 0, 1, 2, 3, 4, 5 };
static const uint32_t R_B[COHORT] = { 6, 7, 8, 9, 10, 11 };

static void
agg_config(fri_agg_config *c, uint32_t n_items, int secagg, const char *dir)
{
    fri_agg_config_init(c);
    c->n_items           = n_items;
    c->k                 = KK;
    c->algo              = FRI_AGG_VBMF;
    c->stats_latest      = 1;
    c->clients_per_round = COHORT;
    c->min_clients       = 2;
    c->round_deadline_ms = DEADLINE;
    c->robust            = 0;
    c->secagg            = secagg ? FRI_AGG_SECAGG_PLUS : FRI_AGG_SECAGG_OFF;
    c->state_dir         = dir;
    c->has_identity      = 1;
    memset(c->identity_seed, 5, sizeof(c->identity_seed));
}

static void
world_init(world *w, uint32_t n_items, int secagg, const char *dir)
{
    memset(w, 0, sizeof(*w));
    e2e_synth(&w->d, &w->by_user, NU, NIT, 0.5, 29);
    fri_agg_config c;
    agg_config(&c, n_items, secagg, dir);
    char err[256];
    cr_assert_eq(
        fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK, "%s", err);
    e2e_clients_create(w, NU, 700, 21, 0.0f);
    e2e_reply_alloc(w);
}

// The reply bound grows with the catalog.
static void
reply_realloc(world *w)
{
    free(w->reply);
    w->reply = NULL;
    e2e_reply_alloc(w);
}

static int
round_of(world *w, const uint32_t *users, int secagg, uint64_t t0)
{
    if (secagg) {
        fr_checkin_status st[COHORT];
        return e2e_secure_round(w, users, COHORT, NULL, NULL, t0, NULL, st);
    }
    int n = 0;
    for (uint32_t j = 0; j < COHORT; j++) {
        n += e2e_world_checkin(w, users[j], t0) == FR_CHECKIN_CONTRIBUTED;
    }
    fri_agg_tick(w->a, t0 + DEADLINE + 1);
    return n;
}

static fri_agg_metrics
metrics(world *w)
{
    fri_agg_metrics m;
    fri_agg_metrics_get(w->a, &m);
    return m;
}

// Ratings of the items that came later (>= NIT0), as a check that the
// synthetic data has some.
static size_t
late_ratings(const world *w)
{
    size_t n = 0;
    for (size_t j = 0; j < w->by_user.ptr[NU]; j++) {
        n += w->by_user.idx[j] >= NIT0;
    }
    return n;
}

static void
grows_between_rounds(int secagg)
{
    world *w = malloc(sizeof(*w));
    cr_assert_not_null(w);
    world_init(w, NIT0, secagg, NULL);
    cr_assert_gt(late_ratings(w), 10);
    uint64_t t = 10;
    cr_assert_eq(round_of(w, R_A, secagg, t), COHORT);
    cr_assert_eq(round_of(w, R_B, secagg, t += 10000), COHORT);
    cr_assert_eq(metrics(w).n_items, NIT0);

    char err[256];
    cr_assert_eq(fri_agg_grow_items(w->a, NIT, err, sizeof(err)), FR_OK, "%s",
                 err);
    fri_agg_metrics m = metrics(w);
    cr_assert_eq(m.n_items, NIT0, "applied only after the next round");
    cr_assert_eq(m.n_items_pending, NIT);
    cr_assert_eq(fri_agg_grow_items(w->a, NIT - 1, err, sizeof(err)),
                 FR_EINVAL, "below the pending size");
    // The round in flight keeps the old length; the closer grows after it.
    cr_assert_eq(round_of(w, R_A, secagg, t += 10000), COHORT);
    m = metrics(w);
    cr_assert_eq(m.n_items, NIT);
    cr_assert_eq(m.n_items_pending, 0);
    uint64_t v_grown = m.model_version;

    // The new items as they entered: finite, the same prior for all (VBMF).
    float mu, bi[NIT], Q[NIT * KK];
    fri_agg_model_copy(w->a, &mu, bi, NIT, Q, NIT * KK, NULL);
    for (uint32_t i = NIT0 + 1; i < NIT; i++) {
        cr_assert_float_eq(bi[i], bi[NIT0], 1e-6f);
        for (uint32_t f = 0; f < KK; f++) {
            cr_assert(isfinite(Q[i * KK + f]));
            cr_assert_float_eq(Q[i * KK + f], Q[NIT0 * KK + f], 1e-6f);
        }
    }

    // Devices fetch the larger model and go on (secure rounds at the new
    // length); the new items are learned from their ratings.
    reply_realloc(w);
    cr_assert_eq(round_of(w, R_B, secagg, t += 10000), COHORT);
    cr_assert_eq(round_of(w, R_A, secagg, t += 10000), COHORT);
    cr_assert_eq(round_of(w, R_B, secagg, t += 10000), COHORT);
    m = metrics(w);
    cr_assert_eq(m.model_version, v_grown + 3, "every round completed");
    float bi2[NIT], Q2[NIT * KK];
    fri_agg_model_copy(w->a, &mu, bi2, NIT, Q2, NIT * KK, NULL);
    double moved = 0.0;
    for (uint32_t i = NIT0; i < NIT; i++) {
        moved = fmax(moved, fabs((double) bi2[i] - bi[i]));
    }
    cr_assert_gt(moved, 0.05, "new items' biases moved by %g", moved);
    // The device ranks from the larger model: a new item can be predicted.
    float score = 0.0f;
    cr_assert_eq(fr_client_predict(w->c[0], NIT - 1, &score), FR_OK);
    cr_assert(isfinite(score));
    e2e_world_free(w);
    free(w);
}

Test(agg_grow, plain_rounds_grow_the_catalog) { grows_between_rounds(0); }

Test(agg_grow, secure_rounds_grow_the_catalog) { grows_between_rounds(1); }

Test(agg_grow, bad_requests_are_refused)
{
    world *w = malloc(sizeof(*w));
    cr_assert_not_null(w);
    world_init(w, NIT0, 0, NULL);
    char err[256];
    err[0] = 0;
    cr_assert_eq(fri_agg_grow_items(w->a, NIT0 - 1, err, sizeof(err)),
                 FR_EINVAL);
    cr_assert(strstr(err, "only grows") != NULL, "%s", err);
    cr_assert_eq(fri_agg_grow_items(w->a, FRI_AGG_MAX_ITEMS + 1, err,
                                    sizeof(err)),
                 FR_EINVAL);
    cr_assert_eq(fri_agg_grow_items(w->a, NIT0, err, sizeof(err)), FR_OK,
                 "the current size is no change");
    cr_assert_eq(metrics(w).n_items_pending, 0);
    cr_assert_eq(fri_agg_grow_items(NULL, NIT, err, sizeof(err)), FR_EINVAL);
    e2e_world_free(w);
    free(w);
}

// A restart after the growth, before the next checkpoint (which would
// carry the new size): the checkpoint has the old size, --items the new
// one, and the restored model is the one the running aggregator served.
// Then a restart with the old --items keeps the newer, larger checkpoint.
Test(agg_grow, restart_keeps_the_grown_model)
{
    char dir[64];
    state_dir_make(dir, sizeof(dir), "/tmp/fedrec-grow-XXXXXX");
    world *w = malloc(sizeof(*w));
    cr_assert_not_null(w);
    world_init(w, NIT0, 0, dir);
    uint64_t t = 10;
    cr_assert_eq(round_of(w, R_A, 0, t), COHORT);
    char err[256];
    cr_assert_eq(fri_agg_grow_items(w->a, NIT, err, sizeof(err)), FR_OK);
    cr_assert_eq(round_of(w, R_B, 0, t += 10000), COHORT);
    cr_assert_eq(metrics(w).n_items, NIT);
    float mu1, bi1[NIT], Q1[NIT * KK];
    uint64_t v1;
    fri_agg_model_copy(w->a, &mu1, bi1, NIT, Q1, NIT * KK, &v1);
    fri_agg_destroy(w->a);
    w->a = NULL;

    fri_agg_config c;
    agg_config(&c, NIT, 0, dir);
    cr_assert_eq(fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    float mu2, bi2[NIT], Q2[NIT * KK];
    uint64_t v2;
    fri_agg_model_copy(w->a, &mu2, bi2, NIT, Q2, NIT * KK, &v2);
    cr_assert_eq(v2, v1);
    cr_assert_eq(metrics(w).n_items, NIT);
    cr_assert_eq(mu2, mu1);
    cr_assert_eq(memcmp(bi1, bi2, sizeof(bi1)), 0);
    cr_assert_eq(memcmp(Q1, Q2, sizeof(Q1)), 0);

    // One more round writes a checkpoint of NIT items; a restart with
    // the old --items keeps them.
    reply_realloc(w);
    cr_assert_eq(round_of(w, R_A, 0, t += 10000), COHORT);
    fri_agg_destroy(w->a);
    w->a = NULL;
    agg_config(&c, NIT0, 0, dir);
    cr_assert_eq(fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    cr_assert_eq(metrics(w).n_items, NIT);
    uint64_t v3 = metrics(w).model_version;
    reply_realloc(w);
    cr_assert_eq(round_of(w, R_B, 0, t += 10000), COHORT);
    cr_assert_eq(metrics(w).model_version, v3 + 1);
    e2e_world_free(w);
    free(w);
    state_dir_remove(dir);
}
