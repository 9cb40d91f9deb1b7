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
#include "msg.h"

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

// The configuration of client u: pinned to w->a's key, seed seed0 + u,
// identity seed filled with the byte id0 + u.
static inline void
e2e_client_config(
    const e2e_world *w, uint32_t u, uint64_t seed0, int id0,
    fr_client_config *cc)
{
    fr_client_config_init(cc);
    fri_agg_public_key(w->a, cc->server_pk);
    cc->seed         = seed0 + u;
    cc->has_identity = 1;
    memset(cc->identity_seed, id0 + (int)u, FR_SEEDBYTES);
}

// User u's ratings from w->by_user into client c.
static inline void
e2e_client_add_ratings(const e2e_world *w, uint32_t u, fr_client *c)
{
    const fri_csr *r = &w->by_user;
    for (size_t j = r->ptr[u]; j < r->ptr[u + 1]; j++) {
        cr_assert_eq(fr_client_add(c, r->idx[j], r->val[j], 0), FR_OK);
    }
}

// Client u = 0..n-1 as e2e_client_config makes it, with pseudo_items_rho
// rho and user u's ratings from w->by_user.
static inline void
e2e_clients_create(
    e2e_world *w, uint32_t n, uint64_t seed0, int id0, float rho)
{
    cr_assert(n <= E2E_MAX_USERS);
    for (uint32_t u = 0; u < n; u++) {
        fr_client_config cc;
        e2e_client_config(w, u, seed0, id0, &cc);
        cc.pseudo_items_rho = rho;
        cr_assert_eq(fr_client_create(&w->c[u], &cc), FR_OK);
        w->n_users = u + 1;
        e2e_client_add_ratings(w, u, w->c[u]);
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

// One secure-aggregation round: clients users[0..n) of w, each driven
// through its check-in round-robin (a paused client, one that got SA_WAIT,
// is skipped for the pass; the clock advances 100 ms per pass and the
// aggregator ticks). drop[j]: client j stops right before sending its
// masked UPDATE; vanish[j]: right after it was answered (either may be
// NULL). upd_len[j] (may be NULL): the size of the sealed masked UPDATE.
// st[j]: the final status (RUNNING for a client that stopped; FAILED for
// one whose check-in failed, e.g. its round was abandoned). Returns the
// number of CONTRIBUTED clients.
static inline int
e2e_secure_round(e2e_world *w, const uint32_t *users, uint32_t n,
    const uint8_t *drop, const uint8_t *vanish, uint64_t t0, size_t *upd_len,
    fr_checkin_status *st)
{
    uint64_t now    = t0;
    int      done   = 0;
    uint8_t *active = calloc(n + 1, 1);
    cr_assert_not_null(active);
    for (uint32_t j = 0; j < n; j++) {
        cr_assert_eq(fr_client_checkin_begin(w->c[users[j]], now), FR_OK);
        active[j] = 1;
        st[j]     = FR_CHECKIN_RUNNING;
    }
    for (int pass = 0; pass < 400; pass++) {
        int any = 0;
        for (uint32_t j = 0; j < n; j++) {
            fr_client *c = w->c[users[j]];
            if (!active[j]) {
                continue;
            }
            any          = 1;
            size_t   cap = fr_client_request_bound(c);
            uint8_t *buf = malloc(cap);
            size_t   len = 0, rl = 0;
            cr_assert_not_null(buf);
            cr_assert_eq(fr_client_poll(c, buf, cap, &len), FR_OK,
                "user %u: %s", users[j], fr_client_errmsg(c));
            uint16_t type = len >= 8 ? (uint16_t)(buf[6] | (buf[7] << 8)) : 0;
            if (len == 0 || (drop != NULL && drop[j] && type == FRI_T_UPDATE)) {
                fr_checkin_info info;
                fr_client_checkin_info_get(c, &info);
                if (len > 0 || info.status != FR_CHECKIN_RUNNING) {
                    active[j] = 0;
                    st[j]     = len > 0 ? FR_CHECKIN_RUNNING : info.status;
                    done += st[j] == FR_CHECKIN_CONTRIBUTED;
                }
                free(buf);
                continue;
            }
            if (upd_len != NULL && type == FRI_T_UPDATE) {
                upd_len[j] = len; // the sealed masked UPDATE
            }
            cr_assert_eq(fri_agg_handle(w->a, now, buf, len, w->reply,
                             w->reply_cap, &rl),
                FR_OK);
            free(buf);
            if (fr_client_receive(c, w->reply, rl) != FR_OK) {
                active[j] = 0; // an ERROR reply ends the check-in
                st[j]     = FR_CHECKIN_FAILED;
                continue;
            }
            if (vanish != NULL && vanish[j] && type == FRI_T_UPDATE) {
                active[j] = 0; // gone after its masked input
            }
        }
        if (!any) {
            break;
        }
        now += 100;
        fri_agg_tick(w->a, now);
    }
    // Members that vanished never answer the unmask request: the phase
    // ends at its deadline and the round completes from the shares in.
    fri_agg_tick(w->a, now + 2100);
    for (uint32_t j = 0; j < n; j++) {
        cr_assert(!active[j], "user %u never finished", users[j]);
    }
    free(active);
    return done;
}

#endif
