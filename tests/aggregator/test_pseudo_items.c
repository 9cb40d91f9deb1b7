// Pseudo-items in real clients against the real aggregator: updates carry
// round(rho |I_u|) extra unrated rows, (sum, count) and the weight cover the
// visible set, the fake set is stable across rounds, and training works.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "dataset.h"
#include "e2e_harness.h"
#include "e2e_rmse.h"
#include "fedrec/client.h"
#include "mf.h"

#define NU 30
#define NIT 60
#define KK 3
#define MAXR NIT

typedef struct seen {
    uint32_t n[NU];
    uint32_t items[NU][MAXR];
    double   count[NU];
    double   weight[NU];
    int      calls;
} seen;

typedef struct world {
    e2e_world e;
    uint8_t   pks[NU][FR_PUBLICKEYBYTES];
    seen      s;
} world;

static world *g_w;

static void
on_update(void *ctx, const uint8_t pk[FRI_AGG_KEYBYTES],
          const fri_agg_update *u)
{
    world *w = ctx;
    for (uint32_t i = 0; i < NU; i++) {
        if (memcmp(w->pks[i], pk, FRI_AGG_KEYBYTES) == 0) {
            cr_assert(u->n <= MAXR);
            w->s.n[i] = u->n;
            memcpy(w->s.items[i], u->items, u->n * sizeof(uint32_t));
            w->s.count[i]  = u->count;
            w->s.weight[i] = u->weight;
            w->s.calls++;
            return;
        }
    }
    cr_assert_fail("update from an unknown key");
}

static void
world_init(world *w, fri_agg_algo algo, float rho)
{
    memset(w, 0, sizeof(*w));
    g_w = w;
    e2e_synth(&w->e.d, &w->e.by_user, NU, NIT, 0.2, 21);
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items           = w->e.d.n_items;
    c.k                 = KK;
    c.algo              = algo;
    c.server_lr         = 0.05f;
    c.clients_per_round = NU;
    c.round_deadline_ms = 5000;
    char err[256];
    cr_assert_eq(fri_agg_create(&w->e.a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    fri_agg_set_update_hook(w->e.a, on_update, w);
    e2e_clients_create(&w->e, NU, 500, 1, rho);
    for (uint32_t u = 0; u < NU; u++) {
        fr_client_public_key(w->e.c[u], w->pks[u]);
    }
    e2e_reply_alloc(&w->e);
}

static void
run_round(world *w, uint64_t now)
{
    for (uint32_t u = 0; u < NU; u++) {
        cr_assert_eq(e2e_world_checkin(&w->e, u, now),
                     FR_CHECKIN_CONTRIBUTED, "user %u: %s", u,
                     fr_client_errmsg(w->e.c[u]));
    }
}

static int
contains(const uint32_t *v, uint32_t n, uint32_t x)
{
    for (uint32_t i = 0; i < n; i++) {
        if (v[i] == x) {
            return 1;
        }
    }
    return 0;
}

static void
check_rows(world *w, float rho)
{
    const fri_csr *r = &w->e.by_user;
    for (uint32_t u = 0; u < NU; u++) {
        uint32_t nr   = (uint32_t) (r->ptr[u + 1] - r->ptr[u]);
        uint32_t want = nr + (uint32_t) lround(rho * nr);
        if (want > NIT) {
            want = NIT;
        }
        cr_assert_eq(w->s.n[u], want, "user %u: %u rows, want %u (rated %u)",
                     u, w->s.n[u], want, nr);
        for (size_t j = r->ptr[u]; j < r->ptr[u + 1]; j++) {
            cr_assert(contains(w->s.items[u], w->s.n[u], r->idx[j]),
                      "user %u: rated item %u missing", u, r->idx[j]);
        }
        // Neither the count nor the weight reveals |I_u|.
        cr_assert_eq(w->s.count[u], (double) want);
        cr_assert_eq(w->s.weight[u], (double) want);
    }
}

static void
stable_and_trains(fri_agg_algo algo)
{
    world *w = malloc(sizeof(*w));
    cr_assert_not_null(w);
    world_init(w, algo, 1.0f);
    double r0 = e2e_train_rmse(&w->e, KK);
    run_round(w, 0);
    check_rows(w, 1.0f);
    static uint32_t first[NU][MAXR];
    memcpy(first, w->s.items, sizeof(first));
    for (int r = 1; r < 8; r++) {
        run_round(w, (uint64_t) r * 10);
        // Same fake set while the interactions do not change.
        cr_assert_eq(memcmp(first, w->s.items, sizeof(first)), 0,
                     "fake set changed in round %d", r);
    }
    double r1 = e2e_train_rmse(&w->e, KK);
    cr_log_info("pseudo rho 1, %s: RMSE %.4f -> %.4f after 8 rounds",
                algo == FRI_AGG_ALS ? "als" : "grad", r0, r1);
    cr_assert(r1 < r0 - 0.05, "RMSE %f -> %f", r0, r1);
    e2e_world_free(&w->e);
    free(w);
}

Test(pseudo_items, als_rows_stable_and_training_works)
{
    stable_and_trains(FRI_AGG_ALS);
}

Test(pseudo_items, grad_rows_stable_and_training_works)
{
    stable_and_trains(FRI_AGG_GRAD);
}

Test(pseudo_items, off_sends_only_rated_rows_and_bad_rho_refused)
{
    world *w = malloc(sizeof(*w));
    cr_assert_not_null(w);
    world_init(w, FRI_AGG_ALS, 0.0f);
    run_round(w, 0);
    check_rows(w, 0.0f);
    e2e_world_free(&w->e);
    free(w);
    fr_client_config cc;
    fr_client_config_init(&cc);
    fr_client *c = NULL;
    cc.pseudo_items_rho = -1.0f;
    cr_assert_eq(fr_client_create(&c, &cc), FR_EINVAL);
    cc.pseudo_items_rho = NAN;
    cr_assert_eq(fr_client_create(&c, &cc), FR_EINVAL);
    cc.pseudo_items_rho = 0.5f;
    cc.pseudo_fill      = 3;
    cr_assert_eq(fr_client_create(&c, &cc), FR_EINVAL);
    cr_assert_null(c);
}
