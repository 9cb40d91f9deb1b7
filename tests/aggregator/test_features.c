// Item content features in VBMF's item prior (fri_agg_config.item_features,
// aggregator/vbmf.c): real client handles against fri_agg_handle. Items of
// genre A are liked, items of genre B are not; one item of each genre has
// no rating. With the features the unrated A item is predicted well above
// the unrated B item (its prior follows its genre); without them both sit
// at the same prior. A restart from the checkpoint refits the regression,
// so the next round gives the model of a run that did not restart.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "e2e_harness.h"
#include "state_dir.h"
#include "fedrec/client.h"

#define NU 12
#define NIT 20 // 0..9 genre A, 10..19 genre B; 9 and 19 unrated
#define KK 2
#define DEADLINE 2000

typedef e2e_world world;

static const float FEAT[NIT * 2] = {
    1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0,
    0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1};

// Each user rates 6 of the A items 4-5 and 6 of the B items 1-2.
static void
ratings(world *w)
{
    fri_dataset *d = &w->d;
    d->n_users     = NU;
    d->n_items     = NIT;
    d->r           = calloc(NU * 12, sizeof(fri_triplet));
    cr_assert_not_null(d->r);
    for (uint32_t u = 0; u < NU; u++) {
        for (uint32_t j = 0; j < 6; j++) {
            uint32_t a = (u + j) % 9, b = 10 + (u + 2 * j) % 9;
            d->r[d->n++] = (fri_triplet){u, a, 4.0f + (float) ((u + j) % 2), 0};
            d->r[d->n++] = (fri_triplet){u, b, 1.0f + (float) ((u * j) % 2), 0};
        }
    }
    // (u + j) % 9 and (u + 2j) % 9 repeat for some u: keep one of each.
    size_t m = 0;
    for (size_t i = 0; i < d->n; i++) {
        int dup = 0;
        for (size_t t = 0; t < m && !dup; t++) {
            dup = d->r[t].user == d->r[i].user && d->r[t].item == d->r[i].item;
        }
        if (!dup) {
            d->r[m++] = d->r[i];
        }
    }
    d->n = m;
    cr_assert_eq(fri_csr_by_user(&w->by_user, d), FR_OK);
}

static void
agg_config(fri_agg_config *c, int features, const char *dir)
{
    fri_agg_config_init(c);
    c->n_items           = NIT;
    c->k                 = KK;
    c->algo              = FRI_AGG_VBMF;
    c->min_clients       = 2;
    c->round_deadline_ms = DEADLINE;
    c->state_dir         = dir;
    c->has_identity      = 1;
    memset(c->identity_seed, 7, sizeof(c->identity_seed));
    if (features) {
        c->item_features     = FEAT;
        c->n_item_features   = 2;
        c->item_feature_rows = NIT;
    }
}

static void
world_init(world *w, int features, const char *dir)
{
    memset(w, 0, sizeof(*w));
    ratings(w);
    fri_agg_config c;
    agg_config(&c, features, dir);
    char err[256];
    cr_assert_eq(fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    e2e_clients_create(w, NU, 300, 41, 0.0f);
    e2e_reply_alloc(w);
}

static void
round_all(world *w, uint64_t t0)
{
    for (uint32_t u = 0; u < NU; u++) {
        cr_assert_eq(e2e_world_checkin(w, u, t0), FR_CHECKIN_CONTRIBUTED,
                     "user %u", u);
    }
    fri_agg_tick(w->a, t0 + DEADLINE + 1);
}

static void
model(world *w, float *bi, float *Q, uint64_t *v)
{
    float mu;
    fri_agg_model_copy(w->a, &mu, bi, NIT, Q, NIT * KK, v);
}

Test(agg_features, unrated_items_follow_their_genre)
{
    world *f = malloc(sizeof(*f)), *p = malloc(sizeof(*p));
    cr_assert(f != NULL && p != NULL);
    world_init(f, 1, NULL);
    world_init(p, 0, NULL);
    for (int r = 0; r < 4; r++) {
        round_all(f, 10 + 10000 * (uint64_t) r);
        round_all(p, 10 + 10000 * (uint64_t) r);
    }
    float    bf[NIT], qf[NIT * KK], bp[NIT], qp[NIT * KK];
    uint64_t vf, vp;
    model(f, bf, qf, &vf);
    model(p, bp, qp, &vp);
    cr_assert_eq(vf, 4);
    cr_assert_eq(vp, 4);
    // Without features both unrated items have the one prior.
    cr_assert_float_eq(bp[9], bp[19], 1e-6f);
    // With them, each follows its genre.
    cr_assert_gt(bf[9] - bf[19], 1.0f, "A %g, B %g", bf[9], bf[19]);
    float sa = 0, sb = 0;
    cr_assert_eq(fr_client_predict(f->c[0], 9, &sa), FR_OK);
    cr_assert_eq(fr_client_predict(f->c[0], 19, &sb), FR_OK);
    cr_assert_gt(sa - sb, 1.0f, "predicted A %g, B %g", sa, sb);
    cr_assert_gt(sa, 3.5f);
    cr_assert_lt(sb, 2.5f);
    e2e_world_free(f);
    e2e_world_free(p);
    free(f);
    free(p);
}

// A restart between rounds 2 and 3 against a run without it: the same
// model after round 3 (the regression is refitted from the checkpoint).
Test(agg_features, restart_refits_the_prior)
{
    char da[64], db[64];
    state_dir_make(da, sizeof(da), "/tmp/fedrec-feat-a-XXXXXX");
    state_dir_make(db, sizeof(db), "/tmp/fedrec-feat-b-XXXXXX");
    world *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    cr_assert(a != NULL && b != NULL);
    world_init(a, 1, da);
    world_init(b, 1, db);
    for (int r = 0; r < 2; r++) {
        round_all(a, 10 + 10000 * (uint64_t) r);
        round_all(b, 10 + 10000 * (uint64_t) r);
    }
    fri_agg_destroy(b->a);
    b->a = NULL;
    fri_agg_config c;
    agg_config(&c, 1, db);
    char err[256];
    cr_assert_eq(fri_agg_create(&b->a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    round_all(a, 30010);
    round_all(b, 30010);
    float    ba[NIT], qa[NIT * KK], bb[NIT], qb[NIT * KK];
    uint64_t va, vb;
    model(a, ba, qa, &va);
    model(b, bb, qb, &vb);
    cr_assert_eq(va, 3);
    cr_assert_eq(vb, 3);
    cr_assert_eq(memcmp(ba, bb, sizeof(ba)), 0);
    cr_assert_eq(memcmp(qa, qb, sizeof(qa)), 0);
    e2e_world_free(a);
    e2e_world_free(b);
    free(a);
    free(b);
    state_dir_remove(da);
    state_dir_remove(db);
}

Test(agg_features, bad_features_are_refused)
{
    fri_agg_config c;
    agg_config(&c, 1, NULL);
    c.algo = FRI_AGG_ALS;
    char     err[256] = "";
    fri_agg *a        = NULL;
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_EINVAL);
    cr_assert(strstr(err, "vbmf") != NULL, "%s", err);
    c.algo = FRI_AGG_VBMF;
    float bad[NIT * 2];
    memcpy(bad, FEAT, sizeof(bad));
    bad[3]          = NAN;
    c.item_features = bad;
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_EINVAL);
    c.item_features   = NULL; // rows without data
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_EINVAL);
    c.n_item_features = FRI_AGG_MAX_FEATURES + 1;
    c.item_features   = FEAT;
    cr_assert_eq(fri_agg_create(&a, &c, 0, err, sizeof(err)), FR_EINVAL);
    cr_assert_null(a);
}

// Features handed in while the aggregator runs (SIGHUP re-reads the file):
// item 19 (genre B, unrated) has no feature row at first, so its prior is
// the intercept's; once its row arrives, the next round boundary refits
// and its prior follows genre B.
Test(agg_features, features_replaced_between_rounds)
{
    world *w = malloc(sizeof(*w));
    cr_assert_not_null(w);
    memset(w, 0, sizeof(*w));
    ratings(w);
    fri_agg_config c;
    agg_config(&c, 1, NULL);
    c.item_feature_rows = NIT - 1; // no row for item 19
    char err[256];
    cr_assert_eq(fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    e2e_clients_create(w, NU, 300, 41, 0.0f);
    e2e_reply_alloc(w);
    for (int r = 0; r < 3; r++) {
        round_all(w, 10 + 10000 * (uint64_t) r);
    }
    float    b0[NIT], q0[NIT * KK], b1[NIT], q1[NIT * KK];
    uint64_t v;
    model(w, b0, q0, &v);
    cr_assert_eq(fri_agg_set_item_features(w->a, FEAT, 2, NIT, err,
                                           sizeof(err)),
                 FR_OK, "%s", err);
    cr_assert_eq(fri_agg_set_item_features(w->a, FEAT, 0, NIT, err,
                                           sizeof(err)),
                 FR_EINVAL);
    round_all(w, 30010); // its boundary installs them
    round_all(w, 40010); // this round's solve uses them
    model(w, b1, q1, &v);
    cr_assert_eq(v, 5);
    cr_assert_lt(b1[19], b0[19] - 0.5f, "item 19: %g then %g", b0[19],
                 b1[19]);
    cr_assert_gt(b1[9] - b1[19], 1.0f);
    e2e_world_free(w);
    free(w);
}
