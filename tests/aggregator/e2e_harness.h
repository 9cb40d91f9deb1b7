// In-process end to end: real client handles (libfedrec-client core,
// poll/receive) against fri_agg_handle, no sockets. Shared by the
// aggregator tests that drive whole rounds.
// Static inline so an executable that uses only part of it does not warn.
#ifndef FR_TESTS_AGGREGATOR_E2E_HARNESS_H
#define FR_TESTS_AGGREGATOR_E2E_HARNESS_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "agg.h"
#include "dataset.h"
#include "fedrec/client.h"

// Seeded synthetic ratings (latent rank 2) and their by-user rows.
static inline void
e2e_synth(fri_dataset *d, fri_csr *by_user, uint32_t n_users, uint32_t n_items,
    double density, uint64_t seed)
{
    fri_synth_config sc;
    fri_synth_config_init(&sc);
    sc.n_users = n_users;
    sc.n_items = n_items;
    sc.k       = 2;
    sc.density = density;
    sc.seed    = seed;
    cr_assert_eq(fri_synth_generate(d, &sc), FR_OK);
    cr_assert_eq(fri_csr_by_user(by_user, d), FR_OK);
}

// The pieces every in-process end-to-end test holds: the ratings, the
// aggregator, one client handle per user and a reply buffer.
#define E2E_MAX_USERS 64
typedef struct e2e_world {
    fri_dataset d;
    fri_csr     by_user;
    fri_agg    *a;
    fr_client  *c[E2E_MAX_USERS];
    uint32_t    n_users;
    uint8_t    *reply;
    size_t      reply_cap;
} e2e_world;

// Client u = 0..n-1 pinned to w->a's key, with seed seed0 + u, identity
// seed filled with the byte id0 + u, pseudo_items_rho rho and user u's
// ratings from w->by_user.
static inline void
e2e_clients_create(
    e2e_world *w, uint32_t n, uint64_t seed0, int id0, float rho)
{
    cr_assert(n <= E2E_MAX_USERS);
    uint8_t spk[FR_PUBLICKEYBYTES];
    fri_agg_public_key(w->a, spk);
    for (uint32_t u = 0; u < n; u++) {
        fr_client_config cc;
        fr_client_config_init(&cc);
        memcpy(cc.server_pk, spk, sizeof(spk));
        cc.seed             = seed0 + u;
        cc.has_identity     = 1;
        cc.pseudo_items_rho = rho;
        memset(cc.identity_seed, id0 + (int)u, FR_SEEDBYTES);
        cr_assert_eq(fr_client_create(&w->c[u], &cc), FR_OK);
        w->n_users       = u + 1;
        const fri_csr *r = &w->by_user;
        for (size_t j = r->ptr[u]; j < r->ptr[u + 1]; j++) {
            cr_assert_eq(
                fr_client_add(w->c[u], r->idx[j], r->val[j], 0), FR_OK);
        }
    }
}

// The reply buffer, sized for w->a (call once the aggregator is final).
static inline void
e2e_reply_alloc(e2e_world *w)
{
    w->reply_cap = fri_agg_reply_bound(w->a);
    w->reply     = malloc(w->reply_cap);
    cr_assert_not_null(w->reply);
}

static inline void
e2e_world_free(e2e_world *w)
{
    for (uint32_t u = 0; u < w->n_users; u++) {
        fr_client_destroy(w->c[u]);
    }
    fri_agg_destroy(w->a);
    free(w->reply);
    fri_csr_free(&w->by_user);
    fri_dataset_free(&w->d);
}

// One check-in of client c, each request answered by fri_agg_handle into
// reply (reply_cap from fri_agg_reply_bound); returns the final status.
static inline fr_checkin_status
e2e_checkin(
    fri_agg *a, uint8_t *reply, size_t reply_cap, fr_client *c, uint64_t now)
{
    cr_assert_eq(fr_client_checkin_begin(c, now), FR_OK);
    size_t   cap = fr_client_request_bound(c);
    uint8_t *buf = malloc(cap);
    cr_assert_not_null(buf);
    for (int step = 0; step < 10; step++) {
        size_t len = 0;
        if (fr_client_poll(c, buf, cap, &len) != FR_OK || len == 0) {
            break;
        }
        size_t rl = 0;
        cr_assert_eq(
            fri_agg_handle(a, now, buf, len, reply, reply_cap, &rl), FR_OK);
        cr_assert(rl > 0);
        if (fr_client_receive(c, reply, rl) != FR_OK) {
            break;
        }
    }
    free(buf);
    fr_checkin_info info;
    fr_client_checkin_info_get(c, &info);
    return info.status;
}

// e2e_checkin for client u of w.
static inline fr_checkin_status
e2e_world_checkin(e2e_world *w, uint32_t u, uint64_t now)
{
    return e2e_checkin(w->a, w->reply, w->reply_cap, w->c[u], now);
}

#endif
