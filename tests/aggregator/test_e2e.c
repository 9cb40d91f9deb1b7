// In-process end to end: real client handles (libfedrec-client core,
// poll/receive) against fri_agg_handle on synthetic ratings; the item
// model's training RMSE must drop. Also wire-level refusals: garbage,
// replayed frames, non-enrolled keys, unknown sessions.
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "dataset.h"
#include "e2e_harness.h"
#include "fedrec/client.h"
#include "mf.h"

#define NU 40
#define NIT 30
#define KK 3

typedef struct world {
    fri_dataset d;
    fri_csr     by_user;
    fri_agg    *a;
    fr_client  *c[NU];
    uint8_t    *reply;
    size_t      reply_cap;
} world;

static void
world_init(world *w, uint32_t cpr, int allow_all_but_last)
{
    memset(w, 0, sizeof(*w));
    e2e_synth(&w->d, &w->by_user, NU, NIT, 0.4, 11);

    // Clients first, to enrol their keys.
    uint8_t *allow = malloc((size_t) NU * FRI_AGG_KEYBYTES);
    cr_assert_not_null(allow);
    fri_agg_config c;
    fri_agg_config_init(&c);
    c.n_items           = w->d.n_items;
    c.k                 = KK;
    c.clients_per_round = cpr;
    c.min_clients       = 1;
    c.round_deadline_ms = 5000;
    c.has_identity      = 1;
    memset(c.identity_seed, 7, sizeof(c.identity_seed));
    char err[256];
    cr_assert_eq(fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK, "%s",
                 err);
    e2e_clients_create(w->c, NU, w->a, &w->by_user, 100, 1, 0.0f);
    for (uint32_t u = 0; u < NU; u++) {
        uint8_t pk[FR_PUBLICKEYBYTES];
        fr_client_public_key(w->c[u], pk);
        memcpy(allow + (size_t) u * FRI_AGG_KEYBYTES, pk, FRI_AGG_KEYBYTES);
    }
    if (allow_all_but_last) {
        // Same identity (same pinned key), now enforcing an allow-list
        // without the last client.
        fri_agg_destroy(w->a);
        c.allow   = allow;
        c.n_allow = NU - 1;
        memset(c.identity_seed, 7, sizeof(c.identity_seed));
        cr_assert_eq(fri_agg_create(&w->a, &c, 0, err, sizeof(err)), FR_OK,
                     "%s", err);
    }
    free(allow);
    w->reply_cap = fri_agg_reply_bound(w->a);
    w->reply     = malloc(w->reply_cap);
    cr_assert_not_null(w->reply);
}

static void
world_free(world *w)
{
    for (int u = 0; u < NU; u++) {
        fr_client_destroy(w->c[u]);
    }
    fri_agg_destroy(w->a);
    free(w->reply);
    fri_csr_free(&w->by_user);
    fri_dataset_free(&w->d);
}

// One check-in of client u; returns its final status.
static fr_checkin_status
checkin(world *w, uint32_t u, uint64_t now)
{
    return e2e_checkin(w->a, w->reply, w->reply_cap, w->c[u], now);
}

// Training RMSE of the aggregator's item model, users refit centrally.
static double
rmse(world *w)
{
    float    mu;
    float   *bi = malloc(NIT * sizeof(float));
    float   *Q  = malloc(NIT * KK * sizeof(float));
    fri_agg_model_copy(w->a, &mu, bi, NIT, Q, NIT * KK, NULL);
    fri_mf_items it = {.n_items = w->d.n_items, .k = KK, .mu = mu, .bi = bi,
                       .Q = Q};
    double se = 0;
    size_t n  = 0;
    for (uint32_t u = 0; u < NU; u++) {
        size_t b = w->by_user.ptr[u], e = w->by_user.ptr[u + 1];
        float  p[KK], bu;
        cr_assert_eq(fri_mf_user_solve(p, &bu, &it, w->by_user.idx + b,
                                       w->by_user.val + b, e - b, 0.1f, 0.1f,
                                       1, NULL, 0),
                     FR_OK);
        for (size_t j = b; j < e; j++) {
            float r = fri_mf_predict_with(&it, p, bu, w->by_user.idx[j]);
            se += (r - w->by_user.val[j]) * (double) (r - w->by_user.val[j]);
            n++;
        }
    }
    free(bi);
    free(Q);
    return sqrt(se / (double) n);
}

Test(agg_e2e, clients_train_and_rmse_drops)
{
    world w;
    world_init(&w, NU, 0);
    double r0 = rmse(&w);
    double r1 = 0, rl = 0;
    for (int round = 0; round < 6; round++) {
        uint64_t now = (uint64_t) round * 100;
        for (uint32_t u = 0; u < NU; u++) {
            fr_checkin_status st = checkin(&w, u, now);
            cr_assert_eq(st, FR_CHECKIN_CONTRIBUTED, "round %d user %u: %s",
                         round, u, fr_client_errmsg(w.c[u]));
        }
        fri_agg_metrics m;
        fri_agg_metrics_get(w.a, &m);
        cr_assert_eq(m.model_version, (uint64_t) round + 1);
        rl = rmse(&w);
        if (round == 0) {
            r1 = rl;
        }
    }
    cr_assert(rl < r0 - 0.1, "RMSE %f -> %f (after 1 round %f)", r0, rl, r1);
    cr_assert(rl <= r1 + 1e-3, "RMSE rose: %f after round 1, %f at end", r1,
              rl);
    cr_assert(rl < 0.72, "final RMSE %f", rl);
    fri_agg_metrics m;
    fri_agg_metrics_get(w.a, &m);
    cr_assert_eq(m.updates_accepted, 6 * NU);
    cr_assert_eq(m.sessions, 0, "sessions leak: %llu",
                 (unsigned long long) m.sessions);
    world_free(&w);
}

Test(agg_e2e, non_members_wait_and_round_completes)
{
    world w;
    world_init(&w, 5, 0);
    int contributed = 0, waiting = 0;
    for (uint32_t u = 0; u < 8; u++) {
        fr_checkin_status st = checkin(&w, u, 10);
        contributed += st == FR_CHECKIN_CONTRIBUTED;
        waiting += st == FR_CHECKIN_NOT_SELECTED;
    }
    // Five fill the cohort and close round 1; the sixth to eighth join
    // round 2 (which is open at once).
    cr_assert_eq(contributed, 8, "contributed %d waiting %d", contributed,
                 waiting);
    fri_agg_metrics m;
    fri_agg_metrics_get(w.a, &m);
    cr_assert_eq(m.model_version, 1);
    cr_assert_eq(m.reported, 3);
    world_free(&w);
}

Test(agg_e2e, wire_refusals)
{
    world w;
    world_init(&w, NU, 1);
    size_t rl = 0;
    // Garbage: a plain ERROR, counted as malformed.
    uint8_t junk[64];
    memset(junk, 0x5a, sizeof(junk));
    cr_assert_eq(fri_agg_handle(w.a, 0, junk, sizeof(junk), w.reply,
                                w.reply_cap, &rl),
                 FR_OK);
    cr_assert(rl > 0);
    // The non-enrolled client is refused in the handshake.
    cr_assert_eq(checkin(&w, NU - 1, 0), FR_CHECKIN_FAILED);
    // A replayed frame does not open: capture client 0's CHECKIN.
    fr_client *c = w.c[0];
    cr_assert_eq(fr_client_checkin_begin(c, 0), FR_OK);
    size_t   cap = fr_client_request_bound(c);
    uint8_t *buf = malloc(cap), *saved = NULL;
    size_t   len = 0, saved_len = 0;
    for (int step = 0; step < 10; step++) {
        cr_assert_eq(fr_client_poll(c, buf, cap, &len), FR_OK);
        if (len == 0) {
            break;
        }
        if (step == 1) { // the first sealed request
            saved     = malloc(len);
            saved_len = len;
            memcpy(saved, buf, len);
        }
        cr_assert_eq(fri_agg_handle(w.a, 0, buf, len, w.reply, w.reply_cap,
                                    &rl),
                     FR_OK);
        cr_assert_eq(fr_client_receive(c, w.reply, rl), FR_OK,
                     "%s", fr_client_errmsg(c));
    }
    cr_assert_not_null(saved);
    cr_assert_eq(fri_agg_handle(w.a, 0, saved, saved_len, w.reply,
                                w.reply_cap, &rl),
                 FR_OK);
    // Everyone else completes the round.
    for (uint32_t u = 1; u < NU - 1; u++) {
        cr_assert_eq(checkin(&w, u, 1), FR_CHECKIN_CONTRIBUTED);
    }
    fri_agg_tick(w.a, 6000);
    fri_agg_metrics m;
    fri_agg_metrics_get(w.a, &m);
    cr_assert_eq(m.model_version, 1);
    cr_assert_eq(m.rejected[FRI_REJ_DENIED], 1);
    cr_assert(m.rejected[FRI_REJ_MALFORMED] >= 1);
    cr_assert(m.rejected[FRI_REJ_REPLAY] + m.rejected[FRI_REJ_NO_SESSION] >= 1,
              "replay not refused");
    free(buf);
    free(saved);
    world_free(&w);
}
