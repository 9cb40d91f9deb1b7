// In-process end to end: real client handles (libfedrec-client core,
// poll/receive) against fri_agg_handle, no sockets. Shared by the
// aggregator tests that drive whole rounds; each keeps its own world.
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

// Client u = 0..n-1 pinned to a's key, with seed seed0 + u, identity seed
// filled with the byte id0 + u, pseudo_items_rho rho and user u's ratings.
static inline void
e2e_clients_create(fr_client **c, uint32_t n, const fri_agg *a,
    const fri_csr *by_user, uint64_t seed0, int id0, float rho)
{
    uint8_t spk[FR_PUBLICKEYBYTES];
    fri_agg_public_key(a, spk);
    for (uint32_t u = 0; u < n; u++) {
        fr_client_config cc;
        fr_client_config_init(&cc);
        memcpy(cc.server_pk, spk, sizeof(spk));
        cc.seed             = seed0 + u;
        cc.has_identity     = 1;
        cc.pseudo_items_rho = rho;
        memset(cc.identity_seed, id0 + (int)u, FR_SEEDBYTES);
        cr_assert_eq(fr_client_create(&c[u], &cc), FR_OK);
        for (size_t j = by_user->ptr[u]; j < by_user->ptr[u + 1]; j++) {
            cr_assert_eq(
                fr_client_add(c[u], by_user->idx[j], by_user->val[j], 0),
                FR_OK);
        }
    }
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

#endif
